// Mini-batches over an in-memory ImageDataset.
//
//   const loader = new BatchLoader(ds, { batchSize: 64, shuffle: true, seed: 1, augment: { translate: 2 } });
//   for (let e = 0; e < epochs; e++) for (const b of loader.epoch(e)) step(b.x, b.y, b.size);
//
// Order: with shuffle, epoch e visits a permutation of 0..n-1 drawn from
// Rng(seed, 'shuffle:<e>'), so it depends only on (seed, epoch): re-running an epoch, or
// resuming at epoch e, gives the same order. Without shuffle the order is 0..n-1. Every
// index is visited exactly once per epoch (the last partial batch is yielded unless
// dropLast). Augmentation draws from Rng(seed, 'augment:<e>'), also reproducible.
//
// Memory: the loader owns two preallocated batch buffers and alternates between them
// (double buffering), so a yielded batch's x and y stay valid until the next-but-one batch
// is produced: a consumer may upload batch k while batch k+1 is being filled, but must
// copy anything it keeps longer. The alternation continues across epochs.

import { Rng } from '../util/rng.js';
import { Augmenter, type AugmentSpec } from './augment.js';
import { imageSize, normalisedZero, type ImageDataset } from './dataset.js';

export interface BatchLoaderOptions {
  batchSize: number;
  /** Shuffle each epoch (default false). */
  shuffle?: boolean;
  /** Seed for shuffling and augmentation (default 0). */
  seed?: number;
  /** Drop the last batch when it would be smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Augmentation, applied to every image of every batch; fill is the dataset's normalised zero. */
  augment?: AugmentSpec | Augmenter | null;
  /** Shorthand for augment: { translate: shift } (random shift by up to ±shift pixels); 0 = off. */
  shift?: number;
}

export interface Batch {
  /** size*C*H*W floats (a view of one of the loader's two buffers). */
  x: Float32Array;
  /** size labels (a view of one of the loader's two buffers). */
  y: Int32Array;
  /** Number of images in this batch (batchSize, or fewer for a last partial batch). */
  size: number;
  /** Batch number within the epoch, from 0. */
  index: number;
  epoch: number;
}

export class BatchLoader {
  readonly dataset: ImageDataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly augmenter: Augmenter | null;
  private readonly xBuf: [Float32Array, Float32Array];
  private readonly yBuf: [Int32Array, Int32Array];
  private produced = 0;

  constructor(dataset: ImageDataset, opts: BatchLoaderOptions) {
    const { batchSize } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
    }
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = opts.shuffle ?? false;
    this.seed = opts.seed ?? 0;
    this.dropLast = opts.dropLast ?? false;
    if (dataset.n === 0) throw new RangeError(`dataset ${dataset.name} is empty`);
    if (this.dropLast && batchSize > dataset.n) {
      throw new RangeError(`batch ${batchSize} is larger than the dataset (${dataset.n} images); ` +
        'with dropLast no batch would be produced');
    }
    const shape = { c: dataset.c, h: dataset.h, w: dataset.w };
    if (opts.shift && opts.augment) throw new RangeError('give shift or augment, not both');
    const aug = opts.augment ?? (opts.shift ? { translate: opts.shift } : null);
    this.augmenter = aug instanceof Augmenter ? aug
      : aug ? new Augmenter(aug, shape, normalisedZero(dataset.normalisation)) : null;
    if (this.augmenter && (this.augmenter.shape.c !== shape.c || this.augmenter.shape.h !== shape.h ||
        this.augmenter.shape.w !== shape.w)) {
      throw new RangeError(`augmentation is for ${this.augmenter.shape.c}x${this.augmenter.shape.h}x` +
        `${this.augmenter.shape.w} images but ${dataset.name} has ${shape.c}x${shape.h}x${shape.w}`);
    }
    const cap = Math.min(batchSize, dataset.n);
    const sz = imageSize(dataset);
    this.xBuf = [new Float32Array(cap * sz), new Float32Array(cap * sz)];
    this.yBuf = [new Int32Array(cap), new Int32Array(cap)];
  }

  /** Batches per epoch. */
  get batchesPerEpoch(): number {
    const n = this.dataset.n;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Images per epoch (n, or fewer with dropLast). */
  get imagesPerEpoch(): number {
    return this.dropLast ? this.batchesPerEpoch * this.batchSize : this.dataset.n;
  }

  /** The order in which epoch `epoch` visits the dataset's indices. */
  order(epoch: number): Uint32Array {
    const n = this.dataset.n;
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    if (this.shuffle) new Rng(this.seed, `shuffle:${epoch}`).shuffle(idx);
    return idx;
  }

  /** The batches of one epoch. See the header comment for how long a batch stays valid. */
  *epoch(epoch = 0): Generator<Batch, void, undefined> {
    const ds = this.dataset;
    const sz = imageSize(ds);
    const order = this.order(epoch);
    const rng = this.augmenter?.active ? new Rng(this.seed, `augment:${epoch}`) : null;
    const nb = this.batchesPerEpoch;
    for (let b = 0; b < nb; b++) {
      const start = b * this.batchSize;
      const size = Math.min(this.batchSize, ds.n - start);
      const slot = this.produced++ & 1;
      const xb = this.xBuf[slot];
      const yb = this.yBuf[slot];
      for (let j = 0; j < size; j++) {
        const i = order[start + j];
        const src = ds.images.subarray(i * sz, (i + 1) * sz);
        if (rng && this.augmenter) {
          this.augmenter.apply(src, xb.subarray(j * sz, (j + 1) * sz), rng);
        } else {
          xb.set(src, j * sz);
        }
        yb[j] = ds.labels[i];
      }
      const full = size === xb.length / sz;
      yield {
        x: full ? xb : xb.subarray(0, size * sz),
        y: full ? yb : yb.subarray(0, size),
        size,
        index: b,
        epoch,
      };
    }
  }
}

/** Generator form: the batches of one epoch of `dataset` (a fresh BatchLoader each call). */
export function batches(dataset: ImageDataset, opts: BatchLoaderOptions, epoch = 0): Generator<Batch, void, undefined> {
  return new BatchLoader(dataset, opts).epoch(epoch);
}
