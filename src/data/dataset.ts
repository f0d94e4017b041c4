// The in-memory image dataset used by training and benchmarks (DESIGN.md, "data/").
//
// Images are stored as one Float32Array in NCHW order, already normalised per channel with
// (x - mean) / std where x is the pixel in [0, 1]; `normalisation` records the constants so
// that augmentation can fill with "black" (the normalised zero) and reports can state them.
// Labels are class indices in [0, numClasses).
//
// Errors about data (a bad file, a dataset that does not fit) are ImagerateDataError: the
// message names the file (or dataset) first, then the problem, so a user can act on it.

import { basename } from 'node:path';

export interface Normalisation {
  /** Per-channel mean of the [0,1] pixels; length c. */
  mean: number[];
  /** Per-channel standard deviation of the [0,1] pixels; length c. */
  std: number[];
}

export type SplitName = 'train' | 'test' | 'all';

export interface ImageDataset {
  name: string;
  /** N*C*H*W floats, NCHW, already normalised. */
  images: Float32Array;
  labels: Int32Array;
  n: number;
  c: number;
  h: number;
  w: number;
  numClasses: number;
  classNames: string[];
  normalisation: Normalisation;
  /** Which split this is, where the source has splits. */
  split?: SplitName;
  /** Where the data came from (file paths or package), for reports. */
  source?: string;
}

/**
 * An error about input data. `file` is the full path (or dataset name) it concerns; the
 * message starts with its base name, e.g.
 * `t10k-images-idx3-ubyte.gz: truncated: header says 10000x28x28 (...) but the file has 1234`.
 */
export class ImagerateDataError extends Error {
  readonly file: string;
  readonly problem: string;

  /** `label` overrides what the message starts with (default: the base name of `file`). */
  constructor(file: string, problem: string, label?: string) {
    super(`${label ?? (basename(file) || file)}: ${problem}`);
    this.name = 'ImagerateDataError';
    this.file = file;
    this.problem = problem;
  }
}

/** Floats per image: c*h*w. */
export function imageSize(ds: Pick<ImageDataset, 'c' | 'h' | 'w'>): number {
  return ds.c * ds.h * ds.w;
}

/** The value a black pixel (0) has after normalisation, per channel: -mean/std. */
export function normalisedZero(norm: Normalisation): number[] {
  return norm.mean.map((m, i) => -m / norm.std[i]);
}

/**
 * Normalise single-channel u8 pixels (0..255) into a new Float32Array through a 256-entry
 * lookup table: out = (p/255 - mean) / std.
 */
export function normaliseBytes(pixels: Uint8Array, mean: number, std: number): Float32Array {
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = (v / 255 - mean) / std;
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = lut[pixels[i]];
  return out;
}

/** Count of each label, length numClasses. */
export function labelHistogram(ds: Pick<ImageDataset, 'labels' | 'numClasses'>): number[] {
  const hist = new Array<number>(ds.numClasses).fill(0);
  for (let i = 0; i < ds.labels.length; i++) hist[ds.labels[i]]++;
  return hist;
}

/** Check the invariants of an ImageDataset; throws ImagerateDataError naming the dataset. */
export function validateDataset(ds: ImageDataset): void {
  const fail = (p: string): never => {
    throw new ImagerateDataError(ds.name, p, ds.name);
  };
  for (const k of ['n', 'c', 'h', 'w', 'numClasses'] as const) {
    if (!Number.isInteger(ds[k]) || ds[k] < (k === 'n' ? 0 : 1)) fail(`${k} is ${ds[k]}`);
  }
  if (ds.images.length !== ds.n * imageSize(ds)) {
    fail(`images has ${ds.images.length} floats, expected ${ds.n}x${ds.c}x${ds.h}x${ds.w}`);
  }
  if (ds.labels.length !== ds.n) fail(`labels has ${ds.labels.length} entries, expected ${ds.n}`);
  if (ds.classNames.length !== ds.numClasses) {
    fail(`${ds.classNames.length} class names for ${ds.numClasses} classes`);
  }
  if (ds.normalisation.mean.length !== ds.c || ds.normalisation.std.length !== ds.c) {
    fail(`normalisation has ${ds.normalisation.mean.length} means and ` +
      `${ds.normalisation.std.length} stds for ${ds.c} channels`);
  }
  for (let i = 0; i < ds.n; i++) {
    const l = ds.labels[i];
    if (l < 0 || l >= ds.numClasses) fail(`label ${l} of image ${i} is outside [0, ${ds.numClasses})`);
  }
}

/**
 * A new dataset holding copies of the images at `indices` (in that order; repeats allowed).
 * Throws RangeError on an index outside [0, n).
 */
export function subset(ds: ImageDataset, indices: ArrayLike<number>, name?: string): ImageDataset {
  const sz = imageSize(ds);
  const m = indices.length;
  const images = new Float32Array(m * sz);
  const labels = new Int32Array(m);
  for (let j = 0; j < m; j++) {
    const i = indices[j];
    if (!Number.isInteger(i) || i < 0 || i >= ds.n) {
      throw new RangeError(`subset of ${ds.name}: index ${i} is outside [0, ${ds.n})`);
    }
    images.set(ds.images.subarray(i * sz, (i + 1) * sz), j * sz);
    labels[j] = ds.labels[i];
  }
  return {
    ...ds,
    name: name ?? ds.name,
    images,
    labels,
    n: m,
    classNames: [...ds.classNames],
    normalisation: { mean: [...ds.normalisation.mean], std: [...ds.normalisation.std] },
  };
}

function sameNumbers(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * A new dataset with the images of `a` followed by those of `b`. Both must agree on shape,
 * classes and normalisation (otherwise their floats would mean different things).
 */
export function concat(a: ImageDataset, b: ImageDataset, name?: string): ImageDataset {
  const what = `concat(${a.name}, ${b.name})`;
  if (a.c !== b.c || a.h !== b.h || a.w !== b.w) {
    throw new ImagerateDataError(what, `image shapes differ: ${a.c}x${a.h}x${a.w} vs ${b.c}x${b.h}x${b.w}`, what);
  }
  if (a.numClasses !== b.numClasses || !a.classNames.every((c, i) => c === b.classNames[i])) {
    throw new ImagerateDataError(what, 'class lists differ', what);
  }
  if (!sameNumbers(a.normalisation.mean, b.normalisation.mean) ||
      !sameNumbers(a.normalisation.std, b.normalisation.std)) {
    throw new ImagerateDataError(what, 'normalisation constants differ', what);
  }
  const images = new Float32Array(a.images.length + b.images.length);
  images.set(a.images, 0);
  images.set(b.images, a.images.length);
  const labels = new Int32Array(a.n + b.n);
  labels.set(a.labels, 0);
  labels.set(b.labels, a.n);
  const split = a.split === b.split ? a.split : undefined;
  const source = a.source === b.source ? a.source : [a.source, b.source].filter(Boolean).join(' + ');
  return {
    name: name ?? (a.name === b.name ? a.name : `${a.name}+${b.name}`),
    images,
    labels,
    n: a.n + b.n,
    c: a.c,
    h: a.h,
    w: a.w,
    numClasses: a.numClasses,
    classNames: [...a.classNames],
    normalisation: { mean: [...a.normalisation.mean], std: [...a.normalisation.std] },
    ...(split !== undefined ? { split } : {}),
    ...(source ? { source } : {}),
  };
}
