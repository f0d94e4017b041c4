// IDX reader: the real MNIST test set from ../shared/datasets/mnist (gzip, plus plain and
// re-gzipped copies in a temp dir) and every validation error on small synthetic files.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labelHistogram, validateDataset, type ImageDataset } from '../../src/data/dataset.js';
import {
  FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, ImagerateDataError, findIdxFiles, loadIdxDataset, parseIdx,
  readIdxImages, readIdxLabels,
} from '../../src/data/idx.js';
import { MNIST_MEAN, MNIST_STD } from '../../src/data/mnist-embedded.js';
import { SHARED_MNIST, idxBytes, sameBytes, tempDir, writeFile } from './helpers.js';

const haveShared = existsSync(join(SHARED_MNIST, 't10k-images-idx3-ubyte.gz'));
if (!haveShared) console.log(`skipping real-MNIST IDX tests: ${SHARED_MNIST} is not present`);

const T10K_HIST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
const NAMES = ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];

describe.skipIf(!haveShared)('IDX reader on the official MNIST test set', () => {
  let tmp: ReturnType<typeof tempDir>;
  let gz: ImageDataset;
  beforeAll(() => {
    tmp = tempDir();
    mkdirSync(join(tmp.dir, 'plain'));
    mkdirSync(join(tmp.dir, 'regz'));
    for (const f of NAMES) {
      const plain = gunzipSync(readFileSync(join(SHARED_MNIST, `${f}.gz`)));
      writeFileSync(join(tmp.dir, 'plain', f), plain);
      writeFileSync(join(tmp.dir, 'regz', `${f}.gz`), gzipSync(plain, { level: 1 }));
    }
    const t0 = performance.now();
    gz = loadIdxDataset(SHARED_MNIST, { split: 'test', name: 'mnist-test' });
    console.log(`IDX load (gzip) of MNIST t10k, 10,000 images: ${(performance.now() - t0).toFixed(0)} ms`);
  }, 30_000);
  afterAll(() => tmp?.cleanup());

  it('loads the gzip files: 10,000 images, first label 7, sensible histogram', () => {
    validateDataset(gz);
    expect([gz.n, gz.c, gz.h, gz.w]).toEqual([10000, 1, 28, 28]);
    expect(gz.labels[0]).toBe(7);
    expect(labelHistogram(gz)).toEqual(T10K_HIST);
    expect(gz.normalisation).toEqual({ mean: [MNIST_MEAN], std: [MNIST_STD] });
    expect(gz.classNames[7]).toBe('7');
    expect(gz.split).toBe('test');
    expect(gz.images[0]).toBeCloseTo(-MNIST_MEAN / MNIST_STD, 6); // corner pixels are black
    let max = -Infinity;
    for (const v of gz.images) if (v > max) max = v;
    expect(max).toBeCloseTo((1 - MNIST_MEAN) / MNIST_STD, 5);
  });

  it('reads plain and re-gzipped copies identically', () => {
    const t0 = performance.now();
    const plain = loadIdxDataset(join(tmp.dir, 'plain'), { split: 'test' });
    console.log(`IDX load (plain) of MNIST t10k: ${(performance.now() - t0).toFixed(0)} ms`);
    const regz = loadIdxDataset(join(tmp.dir, 'regz'), { split: 'test' });
    expect(plain.name).toBe('plain');
    for (const ds of [plain, regz]) {
      expect(ds.n).toBe(10000);
      expect(sameBytes(ds.images, gz.images)).toBe(true);
      expect(sameBytes(ds.labels, gz.labels)).toBe(true);
    }
  });

  it('says which files are missing', () => {
    expect(() => loadIdxDataset(SHARED_MNIST, { split: 'train' })).toThrow(
      /no train split: missing train-images-idx3-ubyte\[\.gz\] and train-labels-idx1-ubyte\[\.gz\] \(IDX files present: t10k-images-idx3-ubyte\.gz, t10k-labels-idx1-ubyte\.gz\)/);
  });
});

describe('IDX validation', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => { tmp = tempDir(); });
  afterAll(() => tmp?.cleanup());

  const pix = (n: number, r: number, c: number): Uint8Array => Uint8Array.from({ length: n * r * c }, (_, i) => i % 256);
  const err = (f: () => unknown): ImagerateDataError => {
    try { f(); } catch (e) { expect(e).toBeInstanceOf(ImagerateDataError); return e as ImagerateDataError; }
    throw new Error('expected an ImagerateDataError');
  };

  it('reads small plain and gzip files with the right dims and values', () => {
    const data = pix(3, 4, 5);
    for (const gzip of [false, true]) {
      const f = writeFile(tmp.dir, `ok-${gzip}.idx3`, idxBytes([3, 4, 5], data), gzip);
      const img = readIdxImages(f);
      expect([img.count, img.rows, img.cols]).toEqual([3, 4, 5]);
      expect(sameBytes(img.pixels, data)).toBe(true);
      const l = writeFile(tmp.dir, `ok-${gzip}.idx1`, idxBytes([3], Uint8Array.of(0, 9, 4)), gzip);
      expect(Array.from(readIdxLabels(l))).toEqual([0, 9, 4]);
    }
  });

  it('rejects a wrong magic, naming the file', () => {
    const f = writeFile(tmp.dir, 'notidx-images', Buffer.from('GIF89a this is not IDX at all'));
    const e = err(() => readIdxImages(f));
    expect(e.message).toMatch(/^notidx-images: not an IDX file: magic is 0x47494638, expected 0x00000803/);
    expect(e.file).toBe(f);
    const g = writeFile(tmp.dir, 'notidx-images.gz', Buffer.from('GIF89a this is not IDX at all'), true);
    expect(() => readIdxImages(g)).toThrow(/^notidx-images\.gz: not an IDX file/);
  });

  it('rejects other dtypes and wrong dims, saying which', () => {
    const f32 = writeFile(tmp.dir, 'f32', idxBytes([1, 2, 2], new Uint8Array(16), 0x0d));
    expect(() => readIdxImages(f32)).toThrow(/^f32: IDX data type float32 \(0x0d\) is not supported: only unsigned byte \(0x08\)/);
    const odd = writeFile(tmp.dir, 'odd', idxBytes([1, 2, 2], new Uint8Array(4), 0x42));
    expect(() => readIdxImages(odd)).toThrow(/unknown code 0x42/);
    const labels = writeFile(tmp.dir, 'labels-as-images', idxBytes([4], new Uint8Array(4)));
    expect(() => readIdxImages(labels)).toThrow(/expected images: 3-D.*but the file is 1-D \(magic 0x00000801\) \(this looks like a label file\)/);
    const images = writeFile(tmp.dir, 'images-as-labels', idxBytes([1, 2, 2], new Uint8Array(4)));
    expect(() => readIdxLabels(images)).toThrow(/expected labels: 1-D.*this looks like an image file/);
    const twoD = writeFile(tmp.dir, 'twod', idxBytes([2, 2], new Uint8Array(4)));
    expect(() => readIdxImages(twoD)).toThrow(/is 2-D/);
  });

  it('rejects truncated files with the sizes in the message', () => {
    const body = pix(10000, 28, 28).subarray(0, 1234);
    const f = writeFile(tmp.dir, 't10k-images-idx3-ubyte', idxBytes([10000, 28, 28], body));
    expect(() => readIdxImages(f)).toThrow(
      'header says 10000x28x28 (7840000 bytes of pixels) but the file has 1234 (1250 bytes in all)');
    const g = writeFile(tmp.dir, 't10k-images-idx3-ubyte.gz', idxBytes([10000, 28, 28], body), true);
    expect(() => readIdxImages(g)).toThrow(
      't10k-images-idx3-ubyte.gz: truncated: header says 10000x28x28 (7840000 bytes of pixels) but the file has 1234');
    // A gzip stream cut short (a partial download).
    const full = gzipSync(idxBytes([50, 28, 28], pix(50, 28, 28)));
    const cut = writeFile(tmp.dir, 'cut.gz', full.subarray(0, Math.floor(full.length / 2)));
    expect(() => readIdxImages(cut)).toThrow(/^cut\.gz: truncated: /);
    const noTrailer = writeFile(tmp.dir, 'notrailer.gz', full.subarray(0, full.length - 8));
    expect(() => readIdxImages(noTrailer)).toThrow(/^notrailer\.gz: truncated: the gzip stream ends early.*checksum is missing/);
    const tiny = writeFile(tmp.dir, 'tiny', Uint8Array.of(0, 0, 8, 3, 0, 0));
    expect(() => readIdxImages(tiny)).toThrow(/^tiny: truncated: the header needs 16 bytes but the file has 6/);
    const lab = writeFile(tmp.dir, 'lab', idxBytes([10], new Uint8Array(3)));
    expect(() => readIdxLabels(lab)).toThrow(/^lab: truncated: header says 10 labels \(10 bytes\) but the file has 3/);
  });

  it('rejects trailing data (header/size mismatch), plain and gzip', () => {
    const bytes = idxBytes([2, 3, 3], pix(3, 3, 3));
    const f = writeFile(tmp.dir, 'long', bytes);
    expect(() => readIdxImages(f)).toThrow(/^long: size mismatch: header says 2x3x3 \(18 bytes of pixels\), so the file should be 34 bytes, but it is 43 \(9 extra\)/);
    const g = writeFile(tmp.dir, 'long.gz', bytes, true);
    expect(() => readIdxImages(g)).toThrow(/^long\.gz: size mismatch: .*should decompress to 34 bytes, but it decompresses to more/);
  });

  it('rejects absurd dims before allocating anything', () => {
    const cases: Array<[number[], RegExp]> = [
      [[10, 5000, 28], /images of 5000x28; rows and columns must be in 1\.\.4096/],
      [[10, 28, 0], /images of 28x0/],
      [[200_000_000, 1, 1], /header says 200000000 images, more than the limit of 100000000/],
      [[100_000_000, 4096, 4096], /more than the limit of 2147483648 bytes/],
      [[0, 28, 28], /header says 0 images/],
    ];
    for (const [dims, re] of cases) {
      // The header alone, gzip-compressed and plain: a lying header must fail fast.
      const g = writeFile(tmp.dir, 'absurd.gz', idxBytes(dims, new Uint8Array(0)), true);
      expect(() => readIdxImages(g)).toThrow(re);
      const p = writeFile(tmp.dir, 'absurd', idxBytes(dims, new Uint8Array(0)));
      expect(() => readIdxImages(p)).toThrow(re);
    }
  });

  it('bounds decompression by the header: a zip bomb stops at header + pixels', () => {
    // Header says 1x28x28, but the stream holds 64 MiB more zeros.
    const bomb = gzipSync(Buffer.concat([idxBytes([1, 28, 28], new Uint8Array(784)), Buffer.alloc(64 << 20)]));
    const f = writeFile(tmp.dir, 'bomb.gz', bomb);
    expect(() => parseIdx(readFileSync(f), f, 'images')).toThrow(/^bomb\.gz: size mismatch.*should decompress to 800 bytes/);
  });

  it('rejects label values >= numClasses and count mismatches', () => {
    const d = join(tmp.dir, 'mismatch');
    mkdirSync(d);
    writeFile(d, 'train-images-idx3-ubyte', idxBytes([3, 2, 2], pix(3, 2, 2)));
    writeFile(d, 'train-labels-idx1-ubyte.gz', idxBytes([4], Uint8Array.of(1, 2, 3, 4)), true);
    expect(() => loadIdxDataset(d, { split: 'train' })).toThrow(
      /^train-labels-idx1-ubyte\.gz: count mismatch: 4 labels but train-images-idx3-ubyte has 3 images/);
    writeFile(d, 'train-labels-idx1-ubyte.gz', idxBytes([3], Uint8Array.of(1, 12, 3)), true);
    expect(() => loadIdxDataset(d, { split: 'train' })).toThrow(
      /^train-labels-idx1-ubyte\.gz: label 12 at index 1 is not a valid class \(expected 0\.\.9\)/);
    writeFile(d, 'train-labels-idx1-ubyte.gz', idxBytes([3], Uint8Array.of(1, 2, 3)), true);
    const ds = loadIdxDataset(d, { split: 'train' });
    expect([ds.n, ds.h, ds.w, ds.name]).toEqual([3, 2, 2, 'mismatch']);
    expect(ds.images[1]).toBeCloseTo((1 / 255 - MNIST_MEAN) / MNIST_STD, 6);
    expect(findIdxFiles(d, 'train').labels.endsWith('.gz')).toBe(true);
  });

  it('uses Fashion-MNIST classes and normalisation for a fashion name', () => {
    const d = join(tmp.dir, 'my-fashion-mnist');
    mkdirSync(d);
    writeFile(d, 't10k-images-idx3-ubyte.gz', idxBytes([2, 2, 2], Uint8Array.of(0, 0, 0, 0, 255, 255, 255, 255)), true);
    writeFile(d, 't10k-labels-idx1-ubyte.gz', idxBytes([2], Uint8Array.of(9, 0)), true);
    const ds = loadIdxDataset(d, { split: 'test' });
    expect(ds.classNames).toEqual([...FASHION_MNIST_CLASSES]);
    expect(ds.normalisation.mean).toEqual([FASHION_MNIST_MEAN]);
    expect(ds.images[0]).toBeCloseTo(-0.2860 / 0.3530, 6);
    expect(() => loadIdxDataset(join(tmp.dir, 'nowhere'), { split: 'test' })).toThrow(/nowhere: directory not found/);
  });
});
