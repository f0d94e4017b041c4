// Packed record files: pack -> read round trip (PNG pixels identical), random access through
// the index, reader validation (magic, version, truncation, index), atomic writes, resizing
// at pack time, and batches from a pack matching batches from CIFAR binary data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImagerateDataError } from '../../src/data/dataset.js';
import {
  PACK_HEADER_BYTES, PackReader, PackWriter, packImageFolder, parsePackResize,
} from '../../src/data/records.js';
import { cifarBinarySource, packedSource, resolveSources } from '../../src/data/sources.js';
import { tempDir } from './helpers.js';

/** Deterministic pixels of image k: (y*13 + x*7 + ch*31 + k*17) & 255, HWC. */
function pixels(k: number, h: number, w: number, c = 3): Uint8Array {
  const a = new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) a[(y * w + x) * c + ch] = (y * 13 + x * 7 + ch * 31 + k * 17) & 255;
  return a;
}

async function writePng(file: string, px: Uint8Array, h: number, w: number): Promise<void> {
  await sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
}

/** root/<class>/<k>.png for classes and per-class counts; image k (global) has pixels(k). */
async function writeFolder(root: string, classes: string[], per: number, h = 8, w = 8): Promise<Uint8Array[]> {
  const all: Uint8Array[] = [];
  let k = 0;
  for (const c of classes) {
    mkdirSync(join(root, c), { recursive: true });
    for (let i = 0; i < per; i++, k++) {
      const px = pixels(k, h, w);
      all.push(px);
      await writePng(join(root, c, `${String(i).padStart(3, '0')}.png`), px, h, w);
    }
  }
  return all;
}

describe('pack format', () => {
  let dir: string;
  let cleanup: () => void;
  let images: Uint8Array[];
  let pack: string;
  beforeAll(async () => {
    ({ dir, cleanup } = tempDir());
    images = await writeFolder(join(dir, 'folder'), ['cat', 'ant', 'bee'], 4, 8, 8);
    pack = join(dir, 'out.pack');
  });
  afterAll(() => cleanup());

  it('pack -> read round trip keeps PNG pixels identical, classes sorted, labels by class', async () => {
    const s = await packImageFolder(join(dir, 'folder'), pack, { workers: 2, warn: () => undefined });
    expect(s.images).toBe(12);
    expect(s.skipped).toBe(0);
    expect(s.workers).toBe(2);
    expect(s.imagesPerSecond).toBeGreaterThan(0);
    const r = PackReader.open(pack);
    expect(r.count).toBe(12);
    expect(r.classNames).toEqual(['ant', 'bee', 'cat']);
    expect(r.classCounts()).toEqual([4, 4, 4]);
    expect(r.metadata.decoder).toMatch(/^sharp /);
    expect(r.metadata.images).toBe(12);
    // Files are visited class by class in sorted order: ant (written 2nd), bee (3rd), cat (1st).
    const written = [4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3];
    for (let i = 0; i < 12; i++) {
      const rec = r.read(i);
      expect(rec.label).toBe(Math.floor(i / 4));
      expect([rec.h, rec.w, rec.c]).toEqual([8, 8, 3]);
      expect(Buffer.compare(Buffer.from(rec.pixels), Buffer.from(images[written[i]]))).toBe(0);
    }
    r.close();
    // No temporary file is left beside it.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('random access through the index, in any order, with records of different sizes', () => {
    const file = join(dir, 'sizes.pack');
    const w = new PackWriter(file, { classNames: ['a', 'b'], metadata: { note: 'test' } });
    const dims: Array<[number, number, number]> = [[3, 5, 3], [7, 2, 1], [1, 1, 3], [4, 4, 3], [9, 6, 1]];
    dims.forEach(([h, ww, c], k) => w.add(k % 2, h, ww, c, pixels(k, h, ww, c)));
    expect(existsSync(file)).toBe(false); // nothing at the final name until finish()
    w.finish({ extra: 1 });
    const r = PackReader.open(file);
    expect(r.metadata).toMatchObject({ note: 'test', extra: 1 });
    for (const i of [4, 0, 3, 1, 2, 4]) {
      const rec = r.read(i);
      const [h, ww, c] = dims[i];
      expect([rec.label, rec.h, rec.w, rec.c]).toEqual([i % 2, h, ww, c]);
      expect(Buffer.compare(Buffer.from(rec.pixels), Buffer.from(pixels(i, h, ww, c)))).toBe(0);
    }
    expect(() => r.read(5)).toThrow(RangeError);
    r.close();
  });

  it('the reader refuses a bad magic, an unknown version, truncation and a corrupt index, naming the file', () => {
    const good = readFileSync(pack);
    const put = (name: string, bytes: Uint8Array) => {
      const f = join(dir, name);
      writeFileSync(f, bytes);
      return f;
    };
    const bad = Buffer.from(good);
    bad.write('NOTAPACK', 0, 'latin1');
    expect(() => PackReader.open(put('magic.pack', bad))).toThrow(/^magic\.pack: not an imagerate pack file \(magic "NOTAPACK"/);
    const v2 = Buffer.from(good);
    v2.writeUInt32LE(2, 8);
    expect(() => PackReader.open(put('v2.pack', v2))).toThrow(/v2\.pack: pack format version 2 is not supported/);
    expect(() => PackReader.open(put('cut.pack', good.subarray(0, good.length - 100)))).toThrow(/cut\.pack: truncated or corrupt: header says 12 records/);
    expect(() => PackReader.open(put('tiny.pack', good.subarray(0, 20)))).toThrow(/tiny\.pack: not an imagerate pack file: 20 bytes is too small/);
    const idx = Buffer.from(good);
    const indexOffset = Number(idx.readBigUInt64LE(24));
    idx.writeUInt32LE(7, indexOffset + 16 * 3 + 8); // label 7 of 3 classes
    expect(() => PackReader.open(put('label.pack', idx))).toThrow(/label\.pack: corrupt index entry 3: label 7 but there are 3 classes/);
    const rec = Buffer.from(good);
    const off = Number(rec.readBigUInt64LE(indexOffset + 16 * 2));
    rec.writeUInt16LE(99, off + 4); // height 99
    const r = PackReader.open(put('rec.pack', rec));
    expect(() => r.read(2)).toThrow(ImagerateDataError);
    expect(() => r.read(2)).toThrow(/rec\.pack: corrupt record at byte \d+: header says 99x8x3/);
    r.close();
    expect(() => PackReader.open(join(dir, 'missing.pack'))).toThrow(/missing\.pack: pack file not found/);
    expect(PACK_HEADER_BYTES).toBe(40);
  });

  it('resizes at pack time: shorter side N, or exactly WxH', async () => {
    const root = join(dir, 'rect');
    mkdirSync(join(root, 'x'), { recursive: true });
    await writePng(join(root, 'x', 'a.png'), pixels(0, 20, 40), 20, 40);
    const s1 = join(dir, 'short.pack');
    await packImageFolder(root, s1, { resize: parsePackResize('10'), workers: 0 });
    const r1 = PackReader.open(s1);
    expect([r1.read(0).h, r1.read(0).w]).toEqual([10, 20]);
    expect(r1.metadata.resize).toEqual({ mode: 'shorter', size: 10 });
    r1.close();
    const s2 = join(dir, 'exact.pack');
    await packImageFolder(root, s2, { resize: parsePackResize('16x12'), workers: 0 });
    const r2 = PackReader.open(s2);
    expect([r2.read(0).h, r2.read(0).w]).toEqual([12, 16]);
    r2.close();
    expect(() => parsePackResize('big')).toThrow(/--resize expects N \(shorter side\) or WxH/);
  });

  it('a corrupt image is skipped with a warning naming it, or fails the pack naming it', async () => {
    const root = join(dir, 'corrupt');
    await writeFolder(root, ['a', 'b'], 2, 4, 4);
    const jpg = await sharp(Buffer.from(pixels(1, 16, 16)), { raw: { width: 16, height: 16, channels: 3 } }).jpeg().toBuffer();
    writeFileSync(join(root, 'b', 'truncated.jpg'), jpg.subarray(0, jpg.length >> 1));
    writeFileSync(join(root, 'a', 'garbage.JPEG'), 'this is not an image');
    const warnings: string[] = [];
    const s = await packImageFolder(root, join(dir, 'c.pack'), { workers: 2, warn: (m) => warnings.push(m) });
    expect(s.images).toBe(4);
    expect(s.skipped).toBe(2);
    expect(s.skippedFiles).toEqual([join('a', 'garbage.JPEG'), join('b', 'truncated.jpg')]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/corrupt\/a\/garbage\.JPEG: cannot decode image: .*; skipped$/);
    expect(warnings[1]).toMatch(/corrupt\/b\/truncated\.jpg: cannot decode image: .*(premature end|truncated|corrupt).*; skipped$/i);
    await expect(packImageFolder(root, join(dir, 'd.pack'), { workers: 2, onError: 'fail' }))
      .rejects.toThrow(/^a\/garbage\.JPEG: cannot decode image/);
    expect(existsSync(join(dir, 'd.pack'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('an empty or missing folder is an error naming it', async () => {
    mkdirSync(join(dir, 'empty', 'cls'), { recursive: true });
    await expect(packImageFolder(join(dir, 'empty'), join(dir, 'e.pack'))).rejects.toThrow(/class directory with no \.jpg\/\.jpeg\/\.png files: cls/);
    await expect(packImageFolder(join(dir, 'nothere'), join(dir, 'e.pack'))).rejects.toThrow(/nothere: directory not found/);
  });
});

describe('packed source', () => {
  let dir: string;
  let cleanup: () => void;
  beforeAll(async () => {
    ({ dir, cleanup } = tempDir());
    // 32x32 images in train/ and test/, packed as train.pack and test.pack.
    for (const split of ['train', 'test']) {
      const root = join(dir, 'src', split);
      await writeFolder(root, ['c0', 'c1', 'c2'], split === 'train' ? 7 : 3, 32, 32);
      await packImageFolder(root, join(dir, 'packs', `${split}.pack`), { workers: 0 });
    }
  });
  afterAll(() => cleanup());

  it('gives the same batches as CIFAR binary data of the same images (same seed), with or without workers', async () => {
    const r = PackReader.open(join(dir, 'packs', 'train.pack'));
    const px = new Uint8Array(r.count * 3072);
    for (let i = 0; i < r.count; i++) {
      const rec = r.read(i);
      for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) px[i * 3072 + c * 1024 + p] = rec.pixels[p * 3 + c];
    }
    const cifar = cifarBinarySource({ name: 't', pixels: px, labels: r.labels, n: r.count, classNames: r.classNames, files: [], split: 'train' },
      { train: true, seed: 42, transform: 'cifar-crop32' });
    const a = packedSource(join(dir, 'packs', 'train.pack'), { train: true, seed: 42, transform: 'cifar-crop32', workers: 2 });
    const b = packedSource(r, { train: true, seed: 42, transform: 'cifar-crop32', workers: 0 });
    const grab = async (s: typeof a) => {
      const out: number[][] = [];
      for await (const batch of s.batches(3, 4, { dropLast: false })) out.push([...batch.y], Array.from(batch.x.subarray(0, 50)), [batch.x.reduce((p, v) => p + v, 0)]);
      return out;
    };
    const ga = await grab(a);
    expect(ga).toEqual(await grab(b));
    const gc = await grab(cifar);
    expect(ga.length).toBe(gc.length);
    ga.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(gc[i][j], 3)));
    await a.close();
    await b.close();
  });

  it('resolveSources("imagefolder:<dir>") finds train.pack and test.pack; a train pack finds its test pack', async () => {
    const { train, test } = await resolveSources(`imagefolder:${join(dir, 'packs')}`, { transform: 'cifar-crop32', seed: 1, workers: 1 });
    expect([train.n, test.n]).toEqual([21, 9]);
    expect(train.classNames).toEqual(['c0', 'c1', 'c2']);
    let n = 0;
    for await (const b of test.batches(0, 4, { dropLast: false })) n += b.size;
    expect(n).toBe(9);
    await train.close?.();
    await test.close?.();
    const one = await resolveSources(`imagefolder:${join(dir, 'packs', 'train.pack')}`, { transform: 'cifar-crop32', seed: 1, workers: 0 });
    expect(one.test.n).toBe(9);
    await one.train.close?.();
    await one.test.close?.();
    await expect(resolveSources(`imagefolder:${join(dir, 'packs', 'test.pack')}`, { transform: 'cifar-crop32', seed: 1 }))
      .rejects.toThrow(/must have "train" in its name/);
  });
});
