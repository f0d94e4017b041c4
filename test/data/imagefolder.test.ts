// ImageFolder: listing, the decode worker pool (worker count, errors), a source decoding on
// the fly (corrupt files skipped with a warning or failing, shuffling determinism and
// coverage, prefetch), resolveSources on train/val folders, and the real CIFAR-10 JPEG archive
// of ../shared/datasets when it is there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImagerateDataError } from '../../src/data/dataset.js';
import { DecodePool, defaultWorkerCount } from '../../src/data/decode.js';
import { extractCifarJpeg, looksLikeImageFolder, scanImageFolder } from '../../src/data/imagefolder.js';
import { imageFolderSource, resolveSources } from '../../src/data/sources.js';
import { PROJECT_ROOT, tempDir } from './helpers.js';

/** A 32x32 RGB PNG whose every pixel is (v, v, v). */
async function png(file: string, v: number): Promise<void> {
  await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: v, g: v, b: v } } }).png().toFile(file);
}

/** root/<class>/<i>.png, image value = 10 * class + i (so each image is identifiable). */
async function folder(root: string, classes: string[], per: number): Promise<void> {
  for (let c = 0; c < classes.length; c++) {
    mkdirSync(join(root, classes[c]), { recursive: true });
    for (let i = 0; i < per; i++) await png(join(root, classes[c], `${i}.png`), 10 * c + i);
  }
}

/** The grey level (0..255) of image j of a batch, from the normalised red channel's first pixel. */
function level(x: Float32Array, j: number, size: number, mean: number, std: number): number {
  return Math.round((x[j * size] * std + mean) * 255) || 0; // no -0
}

describe('scanImageFolder', () => {
  let dir: string;
  let cleanup: () => void;
  beforeAll(() => ({ dir, cleanup } = tempDir()));
  afterAll(() => cleanup());

  it('sorts classes and files, matches extensions case-insensitively, recurses, ignores other files', () => {
    for (const d of ['zebra', 'Ant', 'bee/sub']) mkdirSync(join(dir, 'f', d), { recursive: true });
    for (const f of ['zebra/b.JPG', 'zebra/a.jpeg', 'zebra/notes.txt', 'Ant/x.PNG', 'bee/sub/y.png', 'bee/c.Jpeg']) writeFileSync(join(dir, 'f', f), '');
    const idx = scanImageFolder(join(dir, 'f'));
    expect(idx.classNames).toEqual(['Ant', 'bee', 'zebra']);
    expect(idx.files.map((f) => f.slice(idx.root.length + 1))).toEqual(['Ant/x.PNG', 'bee/c.Jpeg', 'bee/sub/y.png', 'zebra/a.jpeg', 'zebra/b.JPG']);
    expect([...idx.labels]).toEqual([0, 1, 1, 2, 2]);
    expect(looksLikeImageFolder(join(dir, 'f'))).toBe(true);
  });

  it('names a missing root, a root without classes, and classes without images', () => {
    expect(() => scanImageFolder(join(dir, 'none'))).toThrow(/none: directory not found/);
    mkdirSync(join(dir, 'flat'));
    writeFileSync(join(dir, 'flat', 'a.jpg'), '');
    expect(() => scanImageFolder(join(dir, 'flat'))).toThrow(/has no class sub-directories/);
    mkdirSync(join(dir, 'holes', 'a'), { recursive: true });
    mkdirSync(join(dir, 'holes', 'b'), { recursive: true });
    writeFileSync(join(dir, 'holes', 'a', '1.png'), '');
    expect(() => scanImageFolder(join(dir, 'holes'))).toThrow(ImagerateDataError);
    expect(() => scanImageFolder(join(dir, 'holes'))).toThrow(/class directory with no \.jpg\/\.jpeg\/\.png files: b/);
  });
});

describe('DecodePool', () => {
  let dir: string;
  let cleanup: () => void;
  beforeAll(async () => {
    ({ dir, cleanup } = tempDir());
    await png(join(dir, 'a.png'), 100);
    writeFileSync(join(dir, 'bad.jpg'), 'nope');
  });
  afterAll(() => cleanup());

  it('starts the number of worker threads asked for (default: available cores; 0 = inline)', async () => {
    expect(defaultWorkerCount()).toBe(availableParallelism());
    expect(new DecodePool().workers).toBe(availableParallelism());
    for (const n of [0, 1, 3]) {
      const pool = new DecodePool({ workers: n });
      const img = await pool.decode(join(dir, 'a.png'), { channels: 3 });
      expect([img.h, img.w, img.c, img.data[0]]).toEqual([32, 32, 3, 100]);
      expect(pool.threads).toBe(n);
      await pool.close();
    }
    expect(() => new DecodePool({ workers: -1 })).toThrow(RangeError);
  });

  it('decodes on workers with resizing, and rejects a corrupt file with an error naming it', async () => {
    const pool = new DecodePool({ workers: 2 });
    const imgs = await Promise.all([1, 2, 3, 4].map(() => pool.decode(join(dir, 'a.png'), { channels: 1, resize: { mode: 'exact', width: 8, height: 4 } })));
    for (const img of imgs) expect([img.h, img.w, img.c]).toEqual([4, 8, 1]);
    const e = await pool.decode(join(dir, 'bad.jpg'), { channels: 3 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ImagerateDataError);
    expect((e as Error).message).toMatch(/^bad\.jpg: cannot decode image/);
    expect((e as ImagerateDataError).file).toBe(join(dir, 'bad.jpg'));
    await pool.close();
    await expect(pool.decode(join(dir, 'a.png'), { channels: 3 })).rejects.toThrow(/closed/);
  });
});

describe('ImageFolder source (decoding on the fly)', () => {
  let dir: string;
  let cleanup: () => void;
  const MEAN = 0.4914;
  const STD = 0.2470;
  beforeAll(async () => {
    ({ dir, cleanup } = tempDir());
    await folder(join(dir, 'ds', 'train'), ['a', 'b', 'c'], 5);
    await folder(join(dir, 'ds', 'val'), ['a', 'b', 'c'], 2);
  });
  afterAll(() => cleanup());

  it('evaluation visits every image in order with the right label', async () => {
    const src = imageFolderSource(join(dir, 'ds', 'val'), { train: false, transform: 'cifar-crop32', workers: 2 });
    const got: Array<[number, number]> = [];
    for await (const b of src.batches(0, 4, { dropLast: false })) {
      for (let j = 0; j < b.size; j++) got.push([b.y[j], level(b.x, j, 3072, MEAN, STD)]);
    }
    expect(got).toEqual([[0, 0], [0, 1], [1, 10], [1, 11], [2, 20], [2, 21]]);
    await src.close();
  });

  it('training: shuffled from (seed, epoch), every image once per epoch, same for any worker count', async () => {
    const epoch = async (seed: number, e: number, workers: number) => {
      const src = imageFolderSource(join(dir, 'ds', 'train'), { train: true, seed, transform: { name: 'cifar-crop32', padding: 0 }, workers });
      const seen: number[] = [];
      for await (const b of src.batches(e, 4, { dropLast: false })) for (let j = 0; j < b.size; j++) seen.push(level(b.x, j, 3072, MEAN, STD));
      await src.close();
      return seen;
    };
    const a = await epoch(7, 0, 2);
    expect([...a].sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24]);
    expect(await epoch(7, 0, 0)).toEqual(a);
    expect(await epoch(7, 0, 3)).toEqual(a);
    expect(await epoch(7, 1, 2)).not.toEqual(a);
    expect(await epoch(8, 0, 2)).not.toEqual(a);
  });

  it('a corrupt file is skipped with one warning naming it (batch one shorter), or fails naming it', async () => {
    const root = join(dir, 'bad');
    await folder(root, ['a', 'b'], 3);
    writeFileSync(join(root, 'b', '1.png'), 'corrupt');
    const warnings: string[] = [];
    const src = imageFolderSource(root, { train: false, transform: 'cifar-crop32', workers: 2, warn: (m) => warnings.push(m) });
    for (let e = 0; e < 2; e++) {
      const sizes: number[] = [];
      const levels: number[] = [];
      for await (const b of src.batches(e, 3, { dropLast: false })) {
        sizes.push(b.size);
        for (let j = 0; j < b.size; j++) levels.push(level(b.x, j, 3072, MEAN, STD));
      }
      expect(sizes).toEqual([3, 2]);
      expect(levels).toEqual([0, 1, 2, 10, 12]);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/bad\/b\/1\.png: cannot decode image: .*; skipped$/);
    await src.close();
    const strict = imageFolderSource(root, { train: false, transform: 'cifar-crop32', workers: 1, onError: 'fail' });
    const run = async () => {
      for await (const _ of strict.batches(0, 3, { dropLast: false })) { /* consume */ }
    };
    await expect(run()).rejects.toThrow(/^b\/1\.png: cannot decode image/);
    await strict.close();
  });

  it('breaking out of an epoch early leaves the source usable', async () => {
    const src = imageFolderSource(join(dir, 'ds', 'train'), { train: true, seed: 1, transform: 'cifar-crop32', workers: 2 });
    for await (const b of src.batches(0, 2, { dropLast: true })) {
      expect(b.size).toBe(2);
      break;
    }
    let n = 0;
    for await (const b of src.batches(1, 2, { dropLast: true })) n += b.size;
    expect(n).toBe(14);
    await src.close();
  });

  it('resolveSources("imagefolder:<dir>") uses <dir>/train and <dir>/val, and checks their classes agree', async () => {
    const { train, test } = await resolveSources(`imagefolder:${join(dir, 'ds')}`, { transform: 'imagenet', inputSize: 16, seed: 0, workers: 1 });
    expect([train.n, test.n]).toEqual([15, 6]);
    expect(train.shape).toEqual([3, 16, 16]);
    expect(train.transform).toMatch(/RandomResizedCrop 16/);
    expect(test.transform).toMatch(/resize shorter side to 18, centre crop 16/);
    let n = 0;
    for await (const b of train.batches(0, 4, { dropLast: false })) n += b.size;
    expect(n).toBe(15);
    await train.close?.();
    await test.close?.();
    mkdirSync(join(dir, 'ds2'));
    await folder(join(dir, 'ds2', 'train'), ['a', 'b'], 1);
    await folder(join(dir, 'ds2', 'test'), ['a', 'c'], 1);
    await expect(resolveSources(`imagefolder:${join(dir, 'ds2')}`, { transform: 'cifar-crop32', seed: 0, workers: 0 }))
      .rejects.toThrow(/train and test classes differ.*not in test: b; only in test: c/);
    await expect(resolveSources(`imagefolder:${join(dir, 'ds', 'train')}`, { transform: 'cifar-crop32', seed: 0 }))
      .rejects.toThrow(/holds neither train\.pack nor a train\/ directory/);
  });
});

const ARCHIVE = join(PROJECT_ROOT, '..', 'shared', 'datasets', 'cifar10-jpg.tar.gz');
const haveArchive = existsSync(ARCHIVE);
if (!haveArchive) console.warn(`skipping the CIFAR-10 JPEG extraction test: ${ARCHIVE} is not present`);

describe.skipIf(!haveArchive)('the CIFAR-10 JPEG archive (../shared/datasets/cifar10-jpg.tar.gz)', () => {
  it('extracts (once, into a cache under the temp dir keyed by size and mtime) to a complete ImageFolder tree', async () => {
    // Extracting 60,000 files takes 30-50 s on the 2-core machines, so the tree is kept
    // between runs; extractCifarJpeg itself returns at once when its marker matches.
    const st = statSync(ARCHIVE);
    const cache = join(tmpdir(), `imagerate-cifar10-jpg-${st.size}-${Math.round(st.mtimeMs)}`);
    const r = await extractCifarJpeg(ARCHIVE, cache);
    const again = await extractCifarJpeg(ARCHIVE, cache);
    expect(again.extracted).toBe(false);
    expect(again.seconds).toBeLessThan(1);
    const train = scanImageFolder(join(r.root, 'train'));
    const test = scanImageFolder(join(r.root, 'test'));
    expect(train.classNames).toEqual(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    expect(train.files.length).toBe(50000);
    expect(test.files.length).toBe(10000);
    const pool = new DecodePool({ workers: 2 });
    const img = await pool.decode(test.files[0], { channels: 3 });
    expect([img.h, img.w, img.c]).toEqual([32, 32, 3]);
    await pool.close();
  }, 240_000);
});
