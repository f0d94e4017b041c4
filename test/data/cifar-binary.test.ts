// CIFAR-10 binary reader: format validation, class names, uint8 storage, and the batches a
// CIFAR binary source yields (order, determinism, crop/flip, dropLast, buffer lifetime).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CIFAR10_CLASSES, CIFAR10_TRAIN_FILES, findCifarBinaryDir, loadCifar10Binary, readCifarBinaryFile, readCifarClassNames,
} from '../../src/data/cifar-binary.js';
import { ImagerateDataError } from '../../src/data/dataset.js';
import { cifarBinarySource, resolveSources } from '../../src/data/sources.js';
import { CIFAR10_MEAN, CIFAR10_STD } from '../../src/data/transforms.js';
import { tempDir } from './helpers.js';

/** n records; record i has label labels(i) and pixel p of channel c = (i*7 + c*3 + p) & 255. */
export function cifarBytes(n: number, label: (i: number) => number = (i) => i % 10): Buffer {
  const b = Buffer.alloc(n * 3073);
  for (let i = 0; i < n; i++) {
    b[i * 3073] = label(i);
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) b[i * 3073 + 1 + c * 1024 + p] = (i * 7 + c * 3 + p) & 255;
  }
  return b;
}

/** A CIFAR-10 directory with `perFile` records in each of the five train files and `test` test records. */
export function writeCifarDir(dir: string, perFile = 4, test = 6): void {
  mkdirSync(dir, { recursive: true });
  CIFAR10_TRAIN_FILES.forEach((f, k) => writeFileSync(join(dir, f), cifarBytes(perFile, (i) => (i + k) % 10)));
  writeFileSync(join(dir, 'test_batch.bin'), cifarBytes(test));
}

async function collect(src: { batches: (e: number, b: number, o: { dropLast: boolean }) => AsyncIterable<{ x: Float32Array; y: Int32Array; size: number }> }, epoch: number, bs: number, dropLast = false) {
  const xs: Float32Array[] = [];
  const ys: number[] = [];
  const sizes: number[] = [];
  for await (const b of src.batches(epoch, bs, { dropLast })) {
    xs.push(b.x.slice());
    ys.push(...b.y);
    sizes.push(b.size);
  }
  return { xs, ys, sizes };
}

describe('CIFAR-10 binary reader', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('reads records as uint8 CHW with labels', () => {
    const f = join(dir, 'data_batch_1.bin');
    writeFileSync(f, cifarBytes(3, (i) => 9 - i));
    const r = readCifarBinaryFile(f);
    expect(r.n).toBe(3);
    expect(r.pixels).toBeInstanceOf(Uint8Array);
    expect(r.pixels.length).toBe(3 * 3072);
    expect([...r.labels]).toEqual([9, 8, 7]);
    // image 2, channel 1 (green), pixel 5
    expect(r.pixels[2 * 3072 + 1024 + 5]).toBe((2 * 7 + 3 + 5) & 255);
  });

  it('refuses a truncated file, naming it', () => {
    const f = join(dir, 'data_batch_1.bin');
    writeFileSync(f, cifarBytes(2).subarray(0, 3073 + 100));
    expect(() => readCifarBinaryFile(f)).toThrow(ImagerateDataError);
    expect(() => readCifarBinaryFile(f)).toThrow(/^data_batch_1\.bin: truncated.*3173 bytes is not a multiple of 3073.*1 whole records and 100 bytes/);
  });

  it('refuses an empty file', () => {
    const f = join(dir, 'test_batch.bin');
    writeFileSync(f, Buffer.alloc(0));
    expect(() => readCifarBinaryFile(f)).toThrow(/test_batch\.bin: is empty/);
  });

  it('refuses a label >= 10, naming the record', () => {
    const f = join(dir, 'data_batch_2.bin');
    writeFileSync(f, cifarBytes(3, (i) => (i === 2 ? 10 : 1)));
    expect(() => readCifarBinaryFile(f)).toThrow(/data_batch_2\.bin: record 2 \(byte 6146\) has label 10; CIFAR-10 labels are 0-9/);
  });

  it('loads the train and test splits, from the directory or its cifar-10-batches-bin', () => {
    writeCifarDir(join(dir, 'cifar-10-batches-bin'), 4, 6);
    expect(findCifarBinaryDir(dir)).toBe(join(dir, 'cifar-10-batches-bin'));
    const train = loadCifar10Binary(dir, 'train');
    expect(train.n).toBe(20);
    expect(train.pixels.length).toBe(20 * 3072);
    expect(train.labels[4]).toBe(1); // first record of data_batch_2: (0 + 1) % 10
    expect(train.classNames).toEqual(CIFAR10_CLASSES);
    const test = loadCifar10Binary(dir, 'test');
    expect(test.n).toBe(6);
  });

  it('names the missing files of an incomplete split', () => {
    writeCifarDir(dir);
    rmSync(join(dir, 'data_batch_3.bin'));
    rmSync(join(dir, 'data_batch_5.bin'));
    expect(() => loadCifar10Binary(dir, 'train')).toThrow(/train split is incomplete: missing data_batch_3\.bin, data_batch_5\.bin/);
    expect(() => loadCifar10Binary(join(dir, 'nope'), 'train')).toThrow(/directory not found/);
  });

  it('reads class names from batches.meta.txt, and checks it', () => {
    writeFileSync(join(dir, 'batches.meta.txt'), 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n');
    expect(readCifarClassNames(dir)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
    writeFileSync(join(dir, 'batches.meta.txt'), 'a\nb\n');
    expect(() => readCifarClassNames(dir)).toThrow(/batches\.meta\.txt: has 2 class names, expected 10/);
  });
});

describe('CIFAR-10 binary source', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    writeCifarDir(dir, 5, 7); // 25 train, 7 test
  });
  afterEach(() => cleanup());

  it('evaluation: in order, normalised with the CIFAR mean/std, no augmentation', async () => {
    const test = loadCifar10Binary(dir, 'test');
    const src = cifarBinarySource(test, { train: false, transform: 'cifar-crop32' });
    expect(src.shape).toEqual([3, 32, 32]);
    expect(src.transform).toMatch(/normalised \(CIFAR-10 mean\/std\)/);
    const { xs, ys, sizes } = await collect(src, 0, 4);
    expect(sizes).toEqual([4, 3]);
    expect(ys).toEqual([...test.labels]);
    for (const [img, ch, p] of [[0, 0, 0], [5, 2, 1000], [6, 1, 33]]) {
      const v = (img * 7 + ch * 3 + p) & 255;
      const x = xs[Math.floor(img / 4)][(img % 4) * 3072 + ch * 1024 + p];
      expect(x).toBeCloseTo((v / 255 - CIFAR10_MEAN[ch]) / CIFAR10_STD[ch], 5);
    }
  });

  it('training: same batches for the same seed and epoch, different for another epoch or seed', async () => {
    const train = loadCifar10Binary(dir, 'train');
    const a = await collect(cifarBinarySource(train, { train: true, seed: 3, transform: 'cifar-crop32' }), 1, 8);
    const b = await collect(cifarBinarySource(train, { train: true, seed: 3, transform: 'cifar-crop32' }), 1, 8);
    const c = await collect(cifarBinarySource(train, { train: true, seed: 3, transform: 'cifar-crop32' }), 2, 8);
    const d = await collect(cifarBinarySource(train, { train: true, seed: 4, transform: 'cifar-crop32' }), 1, 8);
    expect(a.ys).toEqual(b.ys);
    a.xs.forEach((x, i) => expect(Buffer.compare(Buffer.from(x.buffer), Buffer.from(b.xs[i].buffer))).toBe(0));
    expect(c.ys).not.toEqual(a.ys);
    expect(d.ys).not.toEqual(a.ys);
  });

  it('visits every image once per epoch; dropLast drops the partial batch', async () => {
    const train = loadCifar10Binary(dir, 'train');
    const src = cifarBinarySource(train, { train: true, seed: 1, transform: 'cifar-crop32' });
    const order = src.order(0);
    expect([...order].sort((p, q) => p - q)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    const all = await collect(src, 0, 10);
    expect(all.sizes).toEqual([10, 10, 5]);
    expect(all.ys).toEqual([...order].map((i) => train.labels[i]));
    const dropped = await collect(src, 0, 10, true);
    expect(dropped.sizes).toEqual([10, 10]);
    await expect(collect(src, 0, 26, true)).rejects.toThrow(/larger than/);
  });

  it('a yielded batch stays valid until the next-but-one is requested', async () => {
    const train = loadCifar10Binary(dir, 'train');
    const src = cifarBinarySource(train, { train: true, seed: 1, transform: 'cifar-crop32' });
    const ref = await collect(src, 0, 5);
    const it = src.batches(0, 5, { dropLast: false })[Symbol.asyncIterator]();
    const b0 = (await it.next()).value;
    const b1 = (await it.next()).value;
    expect(Buffer.compare(Buffer.from(b0.x.buffer, b0.x.byteOffset, b0.x.byteLength), Buffer.from(ref.xs[0].buffer))).toBe(0);
    expect([...b0.y]).toEqual(ref.ys.slice(0, 5));
    expect(b0.x.buffer).not.toBe(b1.x.buffer);
    await it.return?.();
  });

  it('a new epoch iterator retires an abandoned one instead of being blocked by it', async () => {
    const train = loadCifar10Binary(dir, 'train');
    const src = cifarBinarySource(train, { train: true, seed: 1, transform: 'cifar-crop32' });
    const a = src.batches(0, 5, { dropLast: false })[Symbol.asyncIterator]();
    await a.next(); // dropped without return()
    const b = await collect(src, 1, 5);
    expect(b.sizes).toEqual([5, 5, 5, 5, 5]);
    await expect(a.next()).rejects.toThrow(/superseded by a later batches\(\) call/);
  });

  it('cifar-crop24: 3x24x24, random crop in training, centre crop in evaluation', async () => {
    const test = loadCifar10Binary(dir, 'test');
    const src = cifarBinarySource(test, { train: false, transform: 'cifar-crop24' });
    expect(src.shape).toEqual([3, 24, 24]);
    const { xs } = await collect(src, 0, 7);
    // Centre crop: output (0,0) of image 1, channel 0 is source pixel (4,4) = p 4*32+4.
    const v = (1 * 7 + 0 + 132) & 255;
    expect(xs[0][576 * 3 + 0]).toBeCloseTo((v / 255 - CIFAR10_MEAN[0]) / CIFAR10_STD[0], 5);
  });

  it('resolveSources("cifar10:<dir>") gives a shuffled train and an ordered test source', async () => {
    const { train, test } = await resolveSources(`cifar10:${dir}`, { transform: 'cifar-crop32', seed: 0 });
    expect(train.n).toBe(25);
    expect(test.n).toBe(7);
    expect(train.transform).toMatch(/random crop 32 \(4 px padding\), horizontal flip/);
    expect(test.transform).not.toMatch(/flip/);
  });

  it('resolveSources lists the valid forms for an unknown spec', async () => {
    await expect(resolveSources('cifar100:/x', { transform: 'cifar-crop32', seed: 0 })).rejects.toThrow(/unknown data source; valid forms: cifar10:<dir>.*imagefolder:<dir>/);
    await expect(resolveSources(`cifar10:${join(dir, 'missing')}`, { transform: 'cifar-crop32', seed: 0 })).rejects.toThrow(ImagerateDataError);
  });
});
