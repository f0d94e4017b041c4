// BatchSource: what the training loop and the benchmarks consume. A source knows the shape of
// the batches it yields (after any crop), its classes and normalisation, and produces one
// epoch of batches at a time. Training sources shuffle and augment reproducibly from
// (seed, epoch); evaluation sources yield the data in order with the evaluation transform.
//
// In-memory data sets (MNIST, Fashion-MNIST, IDX) adapt through datasetSource(); larger
// formats (CIFAR binary, packed records, ImageFolder) implement the interface themselves and
// may decode on worker threads, which is why batches() is asynchronous.
import type { Batch } from './loader.js';
import { BatchLoader } from './loader.js';
import type { AugmentSpec } from './augment.js';
import type { ImageDataset, Normalisation } from './dataset.js';

export type { Batch } from './loader.js';

export interface BatchSource {
  readonly name: string;
  /** Images in one pass over the data. */
  readonly n: number;
  /** Shape of one image in the yielded batches: [C, H, W]. */
  readonly shape: readonly [number, number, number];
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly normalisation: Normalisation;
  /** What is done to each image (for reports), e.g. "random shift up to 2 px". */
  readonly transform: string;
  /**
   * One epoch of batches. A yielded batch (its x and y arrays) stays valid until the
   * next-but-one batch is requested.
   */
  batches(epoch: number, batchSize: number, opts: { dropLast: boolean }): AsyncIterable<Batch>;
  /** Releases workers and file handles. */
  close?(): Promise<void>;
}

export interface DatasetSourceOptions {
  shuffle: boolean;
  seed: number;
  augment?: AugmentSpec | null;
}

function describeAugment(a: AugmentSpec | null | undefined): string {
  if (!a) return 'none';
  const parts: string[] = [];
  if (a.translate) parts.push(`random shift up to ${a.translate} px`);
  if (a.crop) parts.push(`random crop with ${a.crop.padding} px padding`);
  if (a.hflip) parts.push('horizontal flip');
  return parts.length ? parts.join(', ') : 'none';
}

/** Adapts an in-memory ImageDataset (already normalised) to a BatchSource. */
export function datasetSource(ds: ImageDataset, opts: DatasetSourceOptions): BatchSource {
  const loaders = new Map<string, BatchLoader>();
  const loader = (batchSize: number, dropLast: boolean): BatchLoader => {
    const key = `${batchSize}:${dropLast}`;
    let l = loaders.get(key);
    if (!l) {
      l = new BatchLoader(ds, { batchSize, dropLast, shuffle: opts.shuffle, seed: opts.seed, augment: opts.augment ?? null });
      loaders.set(key, l);
    }
    return l;
  };
  return {
    name: ds.name,
    n: ds.n,
    shape: [ds.c, ds.h, ds.w],
    numClasses: ds.numClasses,
    classNames: ds.classNames,
    normalisation: ds.normalisation,
    transform: describeAugment(opts.augment),
    async *batches(epoch: number, batchSize: number, o: { dropLast: boolean }): AsyncIterable<Batch> {
      yield* loader(batchSize, o.dropLast).epoch(epoch);
    },
  };
}
