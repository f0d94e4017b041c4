// Fuzz generators for every file loader, shared by test/reliability/fuzz.test.ts (a few
// hundred cases per loader, in CI) and scripts/fuzz-long.ts (as many as you ask for).
//
// Each target makes one small valid file, then each case derives a mutant from it with a
// fixed seed: truncation (at any point, more often inside the header), bit flips, random
// bytes (a whole random file or an overwritten range), appended bytes, and structured
// mutations that set header fields to huge or contradictory values (with checksums fixed up
// where the format has them, so the reader gets past them). The mutant is written to its own
// temporary file and read through the loader's public entry point. A case passes when the
// loader either accepts the file (a bit flip in pixel data is still a valid file) or throws
// the loader's documented error type (ImagerateDataError) whose message names that file;
// anything else (another error type, a message without the file name, a case over its time
// bound, memory growth over the bound) is a failure.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Rng } from '../../src/util/rng.js';
import { ImagerateDataError } from '../../src/data/dataset.js';
import { readIdxImages, readIdxLabels } from '../../src/data/idx.js';
import { readCifarBinaryFile } from '../../src/data/cifar-binary.js';
import { PackReader, PackWriter } from '../../src/data/records.js';
import { DecodePool, decodeImage, loadSharp } from '../../src/data/decode.js';
import { encodeSafetensors, readSafetensors, type SafetensorsTensor } from '../../src/train/safetensors.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';

/** A field a structured mutation can set: a function of the valid bytes, returning a mutant. */
type Structured = (base: Uint8Array, rng: Rng, k: number) => Uint8Array;

export interface FuzzTarget {
  name: string;
  ext: string;
  /** Valid files to mutate (one is picked per case). */
  bases: Uint8Array[];
  /** Where the header (the bytes that drive allocation) ends, per base: mutations favour it. */
  headerBytes: number[];
  structured: Structured[];
  /** Loads `file` (case i, a mutant of bases[k]) through the loader; rejects with its error. */
  load(file: string, i: number, k: number): Promise<unknown>;
  close?(): Promise<void>;
}

export interface FuzzStats {
  target: string;
  cases: number;
  rejected: number;
  accepted: number;
  maxCaseMs: number;
  /** Growth of rss over the run (includes garbage not yet collected). */
  maxRssGrowthMB: number;
  /** The largest rss growth across one case, and that case. */
  maxCaseRssMB: number;
  maxRssCase: string;
  maxArrayBuffersGrowthMB: number;
  failures: string[];
}

// Huge values a header field can be set to.
const HUGE32 = [0xffffffff, 0x80000000, 0x7fffffff, 1e8 + 1, 1e8, 65536, 4097, 4096, 0];
const HUGE64 = [2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n, 2n ** 53n, 2n ** 40n, 2n ** 32n, 2n ** 31n];
const pick = <T>(rng: Rng, a: readonly T[]): T => a[rng.int(a.length)];

function copyOf(b: Uint8Array): Buffer {
  return Buffer.from(b);
}

/** A position, inside the header half of the time. */
function position(rng: Rng, len: number, header: number): number {
  if (len === 0) return 0;
  return rng.uniform() < 0.5 ? rng.int(Math.max(1, Math.min(len, header))) : rng.int(len);
}

/** One mutant of `base` (chosen by kind, then randomly). */
export function mutate(t: FuzzTarget, rng: Rng): { bytes: Uint8Array; kind: string; k: number } {
  const k = rng.int(t.bases.length);
  const base = t.bases[k];
  const header = t.headerBytes[k];
  const r = rng.uniform();
  if (r < 0.25) { // truncation
    return { bytes: base.subarray(0, position(rng, base.length, header)), kind: 'truncate', k };
  }
  if (r < 0.5) { // 1-8 bit flips
    const b = copyOf(base);
    const flips = 1 + rng.int(8);
    for (let i = 0; i < flips; i++) b[position(rng, b.length, header)] ^= 1 << rng.int(8);
    return { bytes: b, kind: 'bitflip', k };
  }
  if (r < 0.6) { // random bytes: a whole random file, or a random range overwritten
    if (rng.uniform() < 0.3) {
      const b = Buffer.alloc(rng.int(2 * base.length + 1));
      for (let i = 0; i < b.length; i++) b[i] = rng.int(256);
      return { bytes: b, kind: 'random', k };
    }
    const b = copyOf(base);
    const at = position(rng, b.length, header);
    const n = 1 + rng.int(32);
    for (let i = at; i < Math.min(b.length, at + n); i++) b[i] = rng.int(256);
    return { bytes: b, kind: 'overwrite', k };
  }
  if (r < 0.65) { // appended bytes
    const extra = Buffer.alloc(1 + rng.int(64));
    for (let i = 0; i < extra.length; i++) extra[i] = rng.int(256);
    return { bytes: Buffer.concat([base, extra]), kind: 'append', k };
  }
  const s = rng.int(t.structured.length);
  return { bytes: t.structured[s](base, rng, k), kind: `field${s}`, k };
}

// ---------------------------------------------------------------------------------------
// IDX

function idx(dims: number[], payload: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, payload]);
}

function idxBases(rng: Rng): Uint8Array[] {
  const px = new Uint8Array(5 * 4 * 4).map(() => rng.int(256));
  const labels = new Uint8Array(5).map(() => rng.int(10));
  return [idx([5, 4, 4], px), idx([5], labels)];
}

const idxStructured: Structured[] = [
  (b, rng) => { const o = copyOf(b); const nd = o[3]; o.writeUInt32BE(pick(rng, HUGE32), 4 + 4 * rng.int(Math.max(1, Math.min(nd, 3)))); return o; },
  (b, rng) => { const o = copyOf(b); o[3] = pick(rng, [0, 2, 3, 4, 255]); return o; }, // ndims
  (b, rng) => { const o = copyOf(b); o[2] = pick(rng, [0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0xff]); return o; }, // dtype
  (b, rng) => { const o = copyOf(b); for (let d = 0; d < o[3] && d < 3; d++) o.writeUInt32BE(pick(rng, HUGE32), 4 + 4 * d); return o; },
];

export function idxTarget(rng: Rng, gzip: boolean): FuzzTarget {
  const bases = idxBases(rng);
  return {
    name: gzip ? 'idx-gzip' : 'idx',
    ext: gzip ? '-ubyte.gz' : '-ubyte',
    // gzip: mutate the compressed bytes, and (structured) compress a mutated header.
    bases: gzip ? bases.map((b) => gzipSync(b)) : bases,
    headerBytes: gzip ? [30, 30] : [16, 8],
    structured: gzip ? idxStructured.map((s): Structured => (_b, r, k) => gzipSync(s(bases[k], r, k))) : idxStructured,
    load: async (file, _i, k) => (k === 0 ? readIdxImages(file) : readIdxLabels(file)),
  };
}

// ---------------------------------------------------------------------------------------
// CIFAR-10 binary

export function cifarTarget(rng: Rng): FuzzTarget {
  const base = new Uint8Array(3 * 3073).map(() => rng.int(256));
  for (let r = 0; r < 3; r++) base[r * 3073] = rng.int(10);
  return {
    name: 'cifar-binary',
    ext: '.bin',
    bases: [base],
    headerBytes: [3073],
    structured: [
      (b, r) => { const o = copyOf(b); o[3073 * r.int(3)] = pick(r, [10, 11, 127, 255]); return o; }, // label out of range
      (b) => Buffer.concat([b, Buffer.alloc(3)]), // 3074-byte records (CIFAR-100 size)
      (b, r) => b.subarray(0, 3073 * (1 + r.int(2)) + pick(r, [-1, 1, 2])),
    ],
    load: async (file) => readCifarBinaryFile(file),
  };
}

// ---------------------------------------------------------------------------------------
// Packed records

export function packTarget(rng: Rng, dir: string): FuzzTarget {
  const path = join(dir, 'base.pack');
  const w = new PackWriter(path, { classNames: ['a', 'b', 'c'] });
  for (const [h, wd, c] of [[2, 3, 3], [4, 4, 1], [1, 1, 3]]) {
    w.add(rng.int(3), h, wd, c, new Uint8Array(h * wd * c).map(() => rng.int(256)));
  }
  w.finish();
  const base = new Uint8Array(readFileSync(path));
  rmSync(path);
  const dv = new DataView(base.buffer);
  const metaBytes = dv.getUint32(32, true);
  const indexOffset = Number(dv.getBigUint64(24, true));
  const dataStart = 40 + metaBytes;
  const u64 = (off: number): Structured => (b, r) => { const o = copyOf(b); o.writeBigUInt64LE(pick(r, HUGE64), off); return o; };
  const u32 = (off: number): Structured => (b, r) => { const o = copyOf(b); o.writeUInt32LE(pick(r, HUGE32), off); return o; };
  return {
    name: 'pack',
    ext: '.pack',
    bases: [base],
    headerBytes: [40],
    structured: [
      u64(16), u64(24), u32(32), // count, indexOffset, metaBytes
      (b, r) => { const o = copyOf(b); o.writeUInt16LE(pick(r, [65535, 4096, 0]), dataStart + 4 + 2 * r.int(2)); return o; }, // record h/w
      (b, r, k) => u64(indexOffset + 16 * r.int(3))(b, r, k), // index entry offset
      (b, r, k) => u32(indexOffset + 16 * r.int(3) + 12)(b, r, k), // index entry length
      (b, r, k) => u32(indexOffset + 16 * r.int(3) + 8)(b, r, k), // index entry label
      (b, r, k) => u64(b.length - 16)(b, r, k), // trailer count
      (b, r) => { // metadata JSON replaced by something else of the same length
        const o = copyOf(b);
        const alt = pick(r, ['{"classNames":[]}', '{"classNames":"abc"}', '[1,2,3]', 'null', '{"classNames":[1e309]}']);
        o.fill(0x20, 40, dataStart);
        o.write(alt, 40, 'utf8');
        return o;
      },
    ],
    load: async (file) => {
      const reader = PackReader.open(file);
      try {
        for (let i = 0; i < reader.count; i++) reader.read(i);
      } finally {
        reader.close();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------
// safetensors and checkpoints

/** Rebuilds a safetensors file with header JSON `json` and the data section of `b`. */
function withHeader(b: Uint8Array, json: string): Buffer {
  const n = Number(Buffer.from(b).readBigUInt64LE(0));
  const head = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  return Buffer.concat([len, head, b.subarray(8 + n)]);
}

function headerJson(b: Uint8Array): Record<string, unknown> {
  const n = Number(Buffer.from(b).readBigUInt64LE(0));
  return JSON.parse(Buffer.from(b.subarray(8, 8 + n)).toString('utf8')) as Record<string, unknown>;
}

function safetensorsStructured(): Structured[] {
  const tensorNames = (h: Record<string, unknown>) => Object.keys(h).filter((k) => k !== '__metadata__');
  const edit = (f: (h: Record<string, unknown>, r: Rng) => void): Structured => (b, r) => {
    const h = headerJson(b);
    f(h, r);
    return withHeader(b, JSON.stringify(h));
  };
  const entry = (h: Record<string, unknown>, r: Rng) => h[pick(r, tensorNames(h))] as Record<string, unknown>;
  return [
    (b, r) => { const o = copyOf(b); o.writeBigUInt64LE(pick(r, HUGE64)); return o; }, // header length
    edit((h, r) => { entry(h, r).shape = pick(r, [[2 ** 40, 2 ** 40], [2 ** 53], [-1], [1.5], [1e309], 'x', [2 ** 31, 2 ** 31, 4]]); }),
    edit((h, r) => { entry(h, r).data_offsets = pick(r, [[0, 2 ** 53], [2 ** 53 - 8, 2 ** 53], [8, 0], [0], [-8, 0], [0, 1e20]]); }),
    edit((h, r) => { entry(h, r).dtype = pick(r, ['F128', 'f32', '', 7, null]); }),
    edit((h, r) => { h[pick(r, ['__metadata__', 'x'])] = pick(r, [[1, 2], 'str', { a: 1 }, null, { imagerate: '{' }]); }),
    edit((h, r) => { const e = entry(h, r); delete e[pick(r, ['dtype', 'shape', 'data_offsets'])]; }),
    (b, r) => withHeader(b, pick(r, ['', '[]', '{', '{"a":', 'null', '"x"', '\u{fffe}', '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'])),
  ];
}

export function safetensorsTarget(rng: Rng): FuzzTarget {
  const t = (dtype: SafetensorsTensor['dtype'], shape: number[], data: SafetensorsTensor['data']): SafetensorsTensor => ({ dtype, shape, data });
  const base = encodeSafetensors({
    'conv.weight': t('F32', [2, 1, 3, 3], new Float32Array(18).map(() => rng.normal())),
    'conv.bias': t('F32', [2], new Float32Array([0.5, -0.5])),
    'bn.num_batches': t('I32', [1], new Int32Array([7])),
    'u8': t('U8', [3, 2], new Uint8Array([1, 2, 3, 4, 5, 6])),
  }, { note: 'fuzz base' });
  const n = Number(Buffer.from(base).readBigUInt64LE(0));
  return {
    name: 'safetensors', ext: '.safetensors', bases: [base], headerBytes: [8 + n], structured: safetensorsStructured(),
    load: (file) => readSafetensors(file),
  };
}

/** Checkpoint base: a real saveCheckpoint file (built by the caller, who has a backend). */
export function checkpointTarget(base: Uint8Array): FuzzTarget {
  const n = Number(Buffer.from(base).readBigUInt64LE(0));
  const metaEdit = (f: (m: Record<string, unknown>, r: Rng) => void): Structured => (b, r) => {
    const h = headerJson(b);
    const md = h.__metadata__ as Record<string, string>;
    const m = JSON.parse(md.imagerate) as Record<string, unknown>;
    f(m, r);
    md.imagerate = JSON.stringify(m);
    return withHeader(b, JSON.stringify(h));
  };
  return {
    name: 'checkpoint', ext: '.safetensors', bases: [base], headerBytes: [8 + n],
    structured: [
      ...safetensorsStructured(),
      metaEdit((m, r) => { m[pick(r, ['epoch', 'step', 'stepInEpoch', 'seed', 'stepsPerEpoch', 'bestTop1'])] = pick(r, [-1, 1e300, 0.5, 'x', null, [1]]); }),
      metaEdit((m, r) => { m[pick(r, ['inputShape', 'classNames', 'normalisation', 'tensors', 'model', 'format', 'version'])] = pick(r, [[1e9, 1e9, 1e9], [], {}, null, 99, 'x']); }),
      metaEdit((m, r) => { (m.tensors as Record<string, unknown>)[pick(r, ['parameters', 'buffers', 'optimiser'])] = pick(r, [['nope'], [1], 'x', []]); }),
    ],
    load: (file) => loadCheckpoint(file),
  };
}

// ---------------------------------------------------------------------------------------
// Images through sharp (the decode path of ImageFolder and `imagerate pack`)

const crcTable = new Int32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
function crc32(b: Uint8Array): number {
  let c = -1;
  for (const x of b) c = crcTable[(c ^ x) & 255] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

export async function imageTargets(rng: Rng): Promise<FuzzTarget[]> {
  const sharp = await loadSharp();
  const raw = (w: number, h: number, c: number) => sharp(Buffer.from(new Uint8Array(w * h * c).map(() => rng.int(256))), { raw: { width: w, height: h, channels: c as 3 } });
  const jpegs = [await raw(16, 12, 3).jpeg().toBuffer(), await raw(9, 9, 1).jpeg({ progressive: true }).toBuffer()];
  const pngs = [await raw(16, 12, 3).png().toBuffer(), await raw(7, 5, 4).png().toBuffer()];
  // JPEG: find the SOF marker to set its height/width.
  const sofAt = (b: Uint8Array) => { for (let i = 2; i + 1 < b.length; i++) if (b[i] === 0xff && (b[i + 1] === 0xc0 || b[i + 1] === 0xc2)) return i; return -1; };
  const pool = new DecodePool({ workers: 0 });
  const specs = [
    { channels: 3 as const, resize: null },
    { channels: 1 as const, resize: { mode: 'shorter' as const, size: 8 } },
    { channels: 3 as const, resize: { mode: 'exact' as const, width: 5, height: 7 } },
  ];
  const load = async (file: string, i: number) => (i % 4 === 3 ? pool.decode(file, specs[0]) : decodeImage(file, specs[i % specs.length]));
  const jpeg: FuzzTarget = {
    name: 'jpeg', ext: '.jpg', bases: jpegs, headerBytes: jpegs.map((b) => Math.min(b.length, sofAt(b) + 20)),
    structured: [
      (b, r) => { const o = copyOf(b); const s = sofAt(o); if (s > 0) { o.writeUInt16BE(pick(r, [65535, 16000, 8192, 0]), s + 5); o.writeUInt16BE(pick(r, [65535, 16000, 8192, 1]), s + 7); } return o; },
      (b, r) => { const o = copyOf(b); const s = sofAt(o); if (s > 0) o[s + 9] = pick(r, [0, 2, 5, 255]); return o; }, // component count
      (b, r) => { const o = copyOf(b); const s = sofAt(o); if (s > 0) o.writeUInt16BE(pick(r, [0, 1, 0xffff]), s + 2); return o; }, // segment length
    ],
    load, close: () => pool.close(),
  };
  const ihdr = (f: (o: Buffer, r: Rng) => void): Structured => (b, r) => {
    const o = copyOf(b);
    f(o, r);
    o.writeUInt32BE(crc32(o.subarray(12, 29)), 29); // keep the IHDR CRC valid so libpng reads on
    return o;
  };
  const png: FuzzTarget = {
    name: 'png', ext: '.png', bases: pngs, headerBytes: pngs.map(() => 41),
    structured: [
      ihdr((o, r) => { o.writeUInt32BE(pick(r, [...HUGE32, 16000, 40000]), 16); o.writeUInt32BE(pick(r, [...HUGE32, 16000, 1]), 20); }),
      ihdr((o, r) => { o[24] = pick(r, [0, 3, 7, 16, 255]); o[25] = pick(r, [1, 5, 7, 255]); }), // bit depth, colour type
      ihdr((o, r) => { o[26 + r.int(3)] = pick(r, [1, 2, 255]); }), // compression, filter, interlace
    ],
    load,
  };
  return [jpeg, png];
}

// ---------------------------------------------------------------------------------------
// The runner

/** Time bound of one case (a loader that takes longer counts as hung). */
export const CASE_TIME_LIMIT_MS = 5_000;

function timeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`hung: no result after ${ms} ms`)), ms); }),
  ]);
}

/**
 * Runs `cases` mutants of `t` in `dir` with `seed`. Memory is sampled before and after each
 * case: a case that grows rss by `caseMemoryLimitMB` or more is a failure (an allocation
 * driven by the file); growth over the whole run is reported (it includes uncollected garbage).
 */
export async function runFuzz(t: FuzzTarget, cases: number, seed: number, dir: string, caseMemoryLimitMB = 200): Promise<FuzzStats> {
  mkdirSync(dir, { recursive: true });
  const stats: FuzzStats = { target: t.name, cases: 0, rejected: 0, accepted: 0, maxCaseMs: 0, maxRssGrowthMB: 0, maxCaseRssMB: 0, maxRssCase: '', maxArrayBuffersGrowthMB: 0, failures: [] };
  const m0 = process.memoryUsage();
  for (let i = 0; i < cases; i++) {
    const rng = new Rng(seed, `${t.name}:${i}`);
    const { bytes, kind, k } = mutate(t, rng);
    const file = join(dir, `case-${String(i).padStart(6, '0')}${t.ext}`);
    writeFileSync(file, bytes);
    const where = `${t.name} case ${i} (${kind}, ${bytes.length} bytes, seed ${seed})`;
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    try {
      await timeout(t.load(file, i, k), CASE_TIME_LIMIT_MS);
      stats.accepted++;
    } catch (e) {
      if (e instanceof ImagerateDataError && e.message.startsWith(basename(file)) && e.problem.length > 0) stats.rejected++;
      else stats.failures.push(`${where}: ${(e as Error)?.name}: ${(e as Error)?.message ?? String(e)}`);
    }
    const ms = performance.now() - t0;
    stats.maxCaseMs = Math.max(stats.maxCaseMs, ms);
    if (ms > CASE_TIME_LIMIT_MS) stats.failures.push(`${where}: took ${ms.toFixed(0)} ms`);
    rmSync(file, { force: true });
    const m = process.memoryUsage();
    stats.maxRssGrowthMB = Math.max(stats.maxRssGrowthMB, (m.rss - m0.rss) / 2 ** 20);
    const jump = (m.rss - rss0) / 2 ** 20;
    if (jump > stats.maxCaseRssMB) {
      stats.maxCaseRssMB = jump;
      stats.maxRssCase = where;
    }
    if (jump >= caseMemoryLimitMB) stats.failures.push(`${where}: rss grew by ${jump.toFixed(0)} MB`);
    stats.maxArrayBuffersGrowthMB = Math.max(stats.maxArrayBuffersGrowthMB, (m.arrayBuffers - m0.arrayBuffers) / 2 ** 20);
    stats.cases++;
  }
  return stats;
}
