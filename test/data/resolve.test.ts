// Dataset resolution for the CLI: names, directories, errors; Fashion-MNIST from the Debian
// package dataset-fashion-mnist when it is installed.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labelHistogram, validateDataset } from '../../src/data/dataset.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD } from '../../src/data/idx.js';
import { DATASET_NAMES, FASHION_MNIST_DIR, projectRoot, resolveDataset, sharedDatasetsDir } from '../../src/data/resolve.js';
import { PROJECT_ROOT, SHARED_MNIST, idxBytes, tempDir, writeFile } from './helpers.js';

const haveFashion = existsSync(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
if (!haveFashion) {
  console.log(`skipping Fashion-MNIST tests: ${FASHION_MNIST_DIR} is not present ` +
    '(apt-get install dataset-fashion-mnist)');
}
const haveShared = existsSync(join(SHARED_MNIST, 't10k-images-idx3-ubyte.gz'));
if (!haveShared) console.log(`skipping mnist-test resolution: ${SHARED_MNIST} is not present`);

describe('resolveDataset', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => { tmp = tempDir(); });
  afterAll(() => tmp?.cleanup());

  it('finds the project root and ../shared/datasets', () => {
    expect(projectRoot()).toBe(PROJECT_ROOT.replace(/\/$/, ''));
    expect(sharedDatasetsDir()).toBe(join(SHARED_MNIST, '..'));
  });

  it('mnist is the embedded set (8,000 train, 2,000 test, 10,000 all)', () => {
    expect(resolveDataset('mnist', 'train').n).toBe(8000);
    expect(resolveDataset('mnist', 'test').n).toBe(2000);
    expect(resolveDataset('mnist', 'all').n).toBe(10000);
  });

  it.skipIf(!haveShared)('mnist-test is the official test set, test split only', () => {
    const ds = resolveDataset('mnist-test', 'test');
    expect([ds.name, ds.n, ds.labels[0]]).toEqual(['mnist-test', 10000, 7]);
    expect(resolveDataset('mnist-test', 'all').n).toBe(10000);
    expect(() => resolveDataset('mnist-test', 'train')).toThrow(/^mnist-test: .*test set only.*no 'train' split/);
  });

  it('mnist-test says where it looked when ../shared is missing', () => {
    expect(() => resolveDataset('mnist-test', 'test', { projectRoot: join(tmp.dir, 'proj') }))
      .toThrow(/^mnist-test: the official MNIST test set is not at .*shared\/datasets\/mnist/);
  });

  it('unknown names list the valid ones; bad paths say so', () => {
    expect(() => resolveDataset('cifar100', 'train')).toThrow(
      `cifar100: unknown dataset; valid names are ${DATASET_NAMES.join(', ')}, or a directory holding MNIST-format IDX files ` +
      '(colour images: cifar10:<dir> for CIFAR-10 binaries, imagefolder:<dir|train.pack> for an image folder or a pack)');
    expect(() => resolveDataset('./no/such/dir', 'train')).toThrow(/^\.\/no\/such\/dir: directory not found/);
    expect(() => resolveDataset('mnist', 'validation' as never)).toThrow(/unknown split 'validation'/);
  });

  it('fashion-mnist missing gives the apt-get hint', () => {
    expect(() => resolveDataset('fashion-mnist', 'train', { fashionMnistDir: join(tmp.dir, 'none') }))
      .toThrow(/^fashion-mnist: Fashion-MNIST is not installed: run `apt-get install dataset-fashion-mnist`.*or pass a directory/);
  });

  it('a directory path loads IDX files; all = train followed by test', () => {
    const d = join(tmp.dir, 'digits');
    mkdirSync(d);
    writeFile(d, 'train-images-idx3-ubyte.gz', idxBytes([3, 2, 2], new Uint8Array(12).fill(255)), true);
    writeFile(d, 'train-labels-idx1-ubyte.gz', idxBytes([3], Uint8Array.of(1, 2, 3)), true);
    writeFile(d, 't10k-images-idx3-ubyte', idxBytes([2, 2, 2], new Uint8Array(8)));
    writeFile(d, 't10k-labels-idx1-ubyte', idxBytes([2], Uint8Array.of(8, 9)));
    expect(resolveDataset(d, 'train').n).toBe(3);
    const all = resolveDataset(d, 'all');
    expect([all.n, all.split, all.name]).toEqual([5, 'all', 'digits']);
    expect(Array.from(all.labels)).toEqual([1, 2, 3, 8, 9]);
  });
});

describe.skipIf(!haveFashion)('Fashion-MNIST (Debian dataset-fashion-mnist)', () => {
  it('loads 60,000 train and 10,000 test images with its classes and normalisation', () => {
    let t0 = performance.now();
    const train = resolveDataset('fashion-mnist', 'train');
    const tTrain = performance.now() - t0;
    t0 = performance.now();
    const test = resolveDataset('fashion-mnist', 'test');
    console.log(`IDX load (gzip) of Fashion-MNIST: train 60,000 in ${tTrain.toFixed(0)} ms, ` +
      `test 10,000 in ${(performance.now() - t0).toFixed(0)} ms`);
    validateDataset(train);
    validateDataset(test);
    expect([train.n, train.c, train.h, train.w, test.n]).toEqual([60000, 1, 28, 28, 10000]);
    expect(labelHistogram(train)).toEqual(new Array(10).fill(6000));
    expect(labelHistogram(test)).toEqual(new Array(10).fill(1000));
    expect(train.classNames).toEqual([...FASHION_MNIST_CLASSES]);
    expect(train.normalisation).toEqual({ mean: [FASHION_MNIST_MEAN], std: [FASHION_MNIST_STD] });
    // The constants are Fashion-MNIST's own: normalised train pixels have mean ~0 and std ~1.
    let s = 0, s2 = 0;
    for (const v of train.images) { s += v; s2 += v * v; }
    const m = s / train.images.length;
    expect(Math.abs(m)).toBeLessThan(0.01);
    expect(Math.abs(Math.sqrt(s2 / train.images.length - m * m) - 1)).toBeLessThan(0.01);
    // First training label in the official release is 9 (Ankle boot); first test label is 9.
    expect(train.labels[0]).toBe(9);
    expect(test.labels[0]).toBe(9);
  }, 60_000);
});
