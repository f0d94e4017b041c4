// safetensors: round trips, files written by the reference Python library, and a reader that
// turns every malformed file (truncated, bad header length, mutated JSON) into an
// ImagerateDataError naming the file, never a crash or a huge allocation.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  encodeHeader, encodeSafetensors, parseSafetensors, readSafetensors, writeFileAtomic, writeSafetensors,
  type SafetensorsTensor,
} from '../../src/train/safetensors.js';
import { ImagerateDataError } from '../../src/data/dataset.js';
import { Rng } from '../../src/util/rng.js';

const GOLDEN = resolve(import.meta.dirname, 'golden', 'python.safetensors');

function iota(n: number, f: (i: number) => number): number[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

function sample(): Map<string, SafetensorsTensor> {
  return new Map<string, SafetensorsTensor>([
    ['conv.weight', { dtype: 'F32', shape: [3, 1, 5, 7], data: Float32Array.from(iota(105, (i) => Math.sin(i) * 1e3)) }],
    ['labels', { dtype: 'I32', shape: [17], data: Int32Array.from(iota(17, (i) => (i - 8) * 123456789)) }],
    ['scalar', { dtype: 'F32', shape: [], data: Float32Array.of(-0.5) }],
    ['empty', { dtype: 'I32', shape: [0, 3], data: new Int32Array(0) }],
    ['odd', { dtype: 'F32', shape: [1, 3, 1, 1, 11], data: Float32Array.from(iota(33, (i) => 1 / (i + 1))) }],
    ['special', { dtype: 'F32', shape: [4], data: Float32Array.of(NaN, Infinity, -0, 3.4e38) }],
    ['bytes', { dtype: 'U8', shape: [2, 3], data: Uint8Array.of(0, 1, 127, 128, 254, 255) }],
    ['wide', { dtype: 'F64', shape: [2], data: Float64Array.of(Math.PI, -1e300) }],
  ]);
}
const META = { note: 'héllo, "quoted" ✓', empty: '', json: JSON.stringify({ a: [1, 2] }) };

function expectSame(a: Map<string, SafetensorsTensor>, b: Map<string, SafetensorsTensor>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [k, t] of a) {
    const u = b.get(k)!;
    expect(u.dtype, k).toBe(t.dtype);
    expect(u.shape, k).toEqual(t.shape);
    expect(u.data.constructor, k).toBe(t.data.constructor);
    expect(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), k).toBe(true);
  }
}

/** Runs parse and returns the error (failing the test if it is not an ImagerateDataError naming `file`). */
function parseError(bytes: Uint8Array, file = 'bad.safetensors'): string | null {
  try {
    const r = parseSafetensors(bytes, file);
    for (const [, t] of r.tensors) expect(t.data.length).toBe(t.shape.reduce((x, y) => x * y, 1));
    return null;
  } catch (e) {
    expect(e).toBeInstanceOf(ImagerateDataError);
    expect((e as Error).message.startsWith(`${file}: `)).toBe(true);
    return (e as Error).message;
  }
}

/** The sample file with its header replaced by `mutate(header)`. */
function withHeader(mutate: (h: Record<string, any>) => void): Uint8Array {
  const bytes = encodeSafetensors(sample(), META);
  const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
  const h = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
  mutate(h);
  const json = Buffer.from(JSON.stringify(h), 'utf8');
  const out = Buffer.alloc(8 + json.length + bytes.length - 8 - n);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  Buffer.from(bytes.subarray(8 + n)).copy(out, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'imagerate-st-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips F32/I32/U8/F64 tensors of odd shapes, and the metadata', async () => {
    const t = sample();
    const bytes = encodeSafetensors(t, META);
    const back = parseSafetensors(bytes, 'mem');
    expectSame(t, back.tensors);
    expect({ ...back.metadata }).toEqual(META);
    // Data section 8-byte aligned, header padded with spaces.
    const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);

    const f = join(dir, 'rt.safetensors');
    await writeSafetensors(f, Object.fromEntries(t), META);
    expect(readFileSync(f).equals(Buffer.from(bytes))).toBe(true);
    const fromFile = await readSafetensors(f);
    expectSame(t, fromFile.tensors);
    expect(readdirSync(dir).filter((x) => x.includes('.tmp-'))).toEqual([]);
  });

  it('writes no metadata block when there is none, and reads files without one', () => {
    const bytes = encodeSafetensors({ x: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } });
    expect(Buffer.from(bytes).toString('utf8')).not.toContain('__metadata__');
    expect(parseSafetensors(bytes, 'm').metadata).toEqual({});
  });

  it('reads the golden file written by the Python safetensors library', async () => {
    const { tensors, metadata } = await readSafetensors(GOLDEN);
    expect({ ...metadata }).toEqual({ format: 'np', writer: 'make_safetensors_golden.py' });
    const get = (k: string) => tensors.get(k)!;
    expect(get('f32_odd')).toMatchObject({ dtype: 'F32', shape: [3, 7, 5] });
    expect(get('f32_odd').data).toEqual(Float32Array.from(iota(105, (i) => (i * 0.25 - 13) / 3)));
    expect(get('i32_vec').data).toEqual(Int32Array.from(iota(17, (i) => i * i - 100)));
    expect(get('f64_mat')).toMatchObject({ dtype: 'F64', shape: [2, 3] });
    expect(get('f64_mat').data).toEqual(Float64Array.from(iota(6, (i) => i / 7)));
    expect(get('i64_col')).toMatchObject({ dtype: 'I64', shape: [5, 1] });
    expect(get('i64_col').data).toEqual(BigInt64Array.from(iota(5, (i) => i), (i) => BigInt(i - 2) * 2n ** 40n));
    expect(get('u8_img').data).toEqual(Uint8Array.from(iota(16, (i) => (i * 16 + 3) % 256)));
    expect(get('bool_m')).toMatchObject({ dtype: 'BOOL', shape: [3] });
    expect(get('bool_m').data).toEqual(Uint8Array.of(1, 0, 1));
    expect(get('f16_h')).toMatchObject({ dtype: 'F16', shape: [4] });
    expect(get('f16_h').data).toEqual(Uint16Array.of(0x3c00, 0xc100, 0x0000, 0x7bff)); // raw half bits
    expect(get('scalar')).toMatchObject({ dtype: 'F32', shape: [] });
    expect(get('scalar').data).toEqual(Float32Array.of(3.5));
    expect(get('empty')).toMatchObject({ dtype: 'F32', shape: [0, 4] });
    expect(get('empty').data.length).toBe(0);
  });

  it('refuses to write inconsistent tensors before opening the file', async () => {
    expect(() => encodeSafetensors({ x: { dtype: 'F32', shape: [3], data: Float32Array.of(1, 2) } })).toThrow(/shape \[3\].*2 values/);
    expect(() => encodeSafetensors({ x: { dtype: 'I32', shape: [2], data: Float32Array.of(1, 2) } })).toThrow(/I32.*Float32Array/);
    expect(() => encodeHeader([['__metadata__', { dtype: 'F32', shape: [1] }]])).toThrow(/cannot name a tensor/);
    expect(() => encodeHeader([['a', { dtype: 'F32', shape: [1] }], ['a', { dtype: 'F32', shape: [1] }]])).toThrow(/given twice/);
    expect(() => encodeHeader([['a', { dtype: 'F32', shape: [1.5] }]])).toThrow(/invalid shape/);
  });

  it('names the file when it is missing or not a file', async () => {
    await expect(readSafetensors(join(dir, 'nope.safetensors'))).rejects.toThrow(/^nope\.safetensors: no such file \(looked for \/.*\/nope\.safetensors\)$/);
    await expect(readSafetensors(dir)).rejects.toThrow(ImagerateDataError);
  });

  it('rejects a file truncated at every sixteenth of its length', () => {
    const bytes = encodeSafetensors(sample(), META);
    for (let k = 0; k < 16; k++) {
      const cut = Math.floor((bytes.length * k) / 16);
      const msg = parseError(bytes.subarray(0, cut));
      expect(msg, `cut at ${cut}`).not.toBeNull();
      expect(msg).toMatch(/too short|truncated|beyond the end/);
    }
    expect(parseError(bytes.subarray(0, bytes.length - 1))).toMatch(/truncated: the tensors need \d+ bytes .* but the file has \d+/);
  });

  it('rejects a corrupted header length without allocating from it', () => {
    const bytes = encodeSafetensors(sample(), META);
    for (const n of [0n, 1n, BigInt(bytes.length), BigInt(bytes.length - 7), 2n ** 63n, 2n ** 64n - 1n, 99n]) {
      const b = Buffer.from(bytes);
      b.writeBigUInt64LE(n, 0);
      expect(parseError(b), `length ${n}`).not.toBeNull();
    }
    const big = Buffer.from(bytes);
    big.writeBigUInt64LE(2n ** 62n, 0);
    expect(parseError(big)).toMatch(/header length 4611686018427387904 goes beyond the end of the file/);
  });

  it('explains each kind of bad header', () => {
    const cases: [string, (h: Record<string, any>) => void, RegExp][] = [
      ['overlap', (h) => { h.labels.data_offsets = [416, 484]; }, /tensor 'labels': data_offsets \[416, 484\] overlap the previous tensor, which ends at 420/],
      ['out of range', (h) => { h.wide.shape = [3]; h.wide.data_offsets[1] += 8; }, /truncated: the tensors need \d+ bytes/],
      ['gap', (h) => { delete h.labels; }, /gap/],
      ['dtype vs size', (h) => { h.labels.dtype = 'F64'; }, /F64 shape \[17\] needs 136 bytes but data_offsets .* span 68/],
      ['shape vs size', (h) => { h.odd.shape = [1, 3, 1, 1, 12]; }, /tensor 'odd': F32 shape \[1, 3, 1, 1, 12\] needs 144 bytes/],
      ['unknown dtype', (h) => { h.odd.dtype = 'F33'; }, /unknown dtype "F33"/],
      ['negative dim', (h) => { h.odd.shape = [-1, 33]; }, /shape \[-1,33\] is not a list of non-negative integers/],
      ['bad offsets', (h) => { h.odd.data_offsets = [5]; }, /data_offsets \[5\] is not a pair/],
      ['reversed offsets', (h) => { h.odd.data_offsets = [h.odd.data_offsets[1], h.odd.data_offsets[0]]; }, /end before they begin/],
      ['metadata value', (h) => { h.__metadata__.n = 3; }, /__metadata__\.n is 3, not a string/],
      ['metadata type', (h) => { h.__metadata__ = ['x']; }, /__metadata__ is not an object/],
      ['entry type', (h) => { h.odd = 'x'; }, /tensor 'odd': entry is "x", not an object/],
      ['trailing data', (h) => { delete h.wide; }, /trailing bytes/],
    ];
    for (const [what, mutate, re] of cases) expect(parseError(withHeader(mutate)), what).toMatch(re);
    const notJson = Buffer.from(encodeSafetensors(sample(), META));
    notJson[20] = 0x7b; // '{' inside a string breaks nothing; a bare quote does
    notJson[9] = 0x7d;
    expect(parseError(notJson)).toMatch(/header is not valid JSON/);
    const arr = Buffer.alloc(8 + 8);
    arr.writeBigUInt64LE(8n, 0);
    arr.write('[1,2,3] ', 8);
    expect(parseError(arr)).toMatch(/does not start with '\{'/);
    const badUtf8 = Buffer.from(encodeSafetensors(sample(), META));
    badUtf8[12] = 0xff;
    expect(parseError(badUtf8)).toMatch(/not valid UTF-8/);
  });

  it('survives random header mutations (fixed seed) with a clean error or a consistent result', () => {
    const rng = new Rng(20240607, 'safetensors-fuzz');
    const base = encodeSafetensors(sample(), META);
    const n = Number(Buffer.from(base).readBigUInt64LE(0));
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rng.uniform() * a.length)];
    const values = [0, 1, -1, 4, 7, 8, 1e9, 2 ** 53, 0.5, null, 'x', [], {}, true, [1, 2, 3]];
    let errors = 0;
    for (let trial = 0; trial < 400; trial++) {
      let bytes: Uint8Array;
      if (trial % 2 === 0) {
        // Byte-level: overwrite 1-3 bytes of the JSON with printable or structural characters.
        const b = Buffer.from(base);
        const hits = 1 + Math.floor(rng.uniform() * 3);
        for (let j = 0; j < hits; j++) b[8 + Math.floor(rng.uniform() * n)] = pick([...'{}[]",:0123456789-.eE ax\\'].map((c) => c.charCodeAt(0)));
        bytes = b;
      } else {
        // Structured: change one field of one entry to a random value.
        bytes = withHeader((h) => {
          const name = pick(Object.keys(h));
          const entry = h[name];
          const field = pick(['dtype', 'shape', 'data_offsets', 'extra', 'whole']);
          const v = pick(values);
          if (field === 'whole') h[name] = v;
          else if (entry && typeof entry === 'object' && !Array.isArray(entry)) {
            if (field === 'shape' && Array.isArray(entry.shape) && entry.shape.length) entry.shape[Math.floor(rng.uniform() * entry.shape.length)] = v;
            else if (field === 'data_offsets' && Array.isArray(entry.data_offsets)) entry.data_offsets[Math.floor(rng.uniform() * 2)] = v;
            else entry[field] = v;
          }
        });
      }
      if (parseError(bytes) !== null) errors++;
    }
    expect(errors).toBeGreaterThan(300); // almost every mutation breaks the file; none crashed
  });

  it('writes atomically: a writer that throws midway leaves the old file and no temporary', async () => {
    const f = join(dir, 'atomic.safetensors');
    await writeSafetensors(f, { a: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } });
    const before = readFileSync(f);
    await expect(writeSafetensors(f, {
      a: { dtype: 'F32', shape: [1000], data: new Float32Array(1000) },
      b: { dtype: 'F32', shape: [1], data: () => { throw new Error('device lost'); } },
    })).rejects.toThrow('device lost');
    expect(readFileSync(f).equals(before)).toBe(true);
    await expect(writeFileAtomic(join(dir, 'new.safetensors'), async (write) => {
      await write(new Uint8Array(100));
      throw new Error('disk full (simulated)');
    })).rejects.toThrow('simulated');
    expect(readdirSync(dir).filter((x) => x.startsWith('new.') || x.includes('.tmp-'))).toEqual([]);
    await expect(writeSafetensors(join(dir, 'no', 'such', 'dir.safetensors'), {})).rejects.toThrow(/^dir\.safetensors: cannot write: no such directory/);
  });

  it('names a truncated file on disk', async () => {
    const f = join(dir, 'corrupt.safetensors');
    const bytes = Buffer.from(encodeSafetensors(sample(), META));
    writeFileSync(f, bytes.subarray(0, bytes.length - 3));
    await expect(readSafetensors(f)).rejects.toThrow(/^corrupt\.safetensors: truncated/);
  });
});
