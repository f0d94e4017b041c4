// BatchSource implementations for uint8 image data (see source.ts for the interface):
//
//   cifarBinarySource   CIFAR-10 binary batches held in memory as uint8 (150 MB for the
//                       training set); stage-2 transform on the main thread (a 32x32 crop +
//                       flip + normalise costs a few microseconds an image).
//   packedSource        a packed record file (records.ts); worker threads pread the records
//                       and run the transform straight into the batch buffer.
//   imageFolderSource   a raw ImageFolder; worker threads decode each file with sharp (resized
//                       as the transform needs, e.g. shorter side 256 for imagenet) and run the
//                       transform. Slow next to a pack: it decodes every image every epoch.
//
// Order: a training source visits a permutation of 0..n-1 drawn from Rng(seed,
// 'shuffle:<epoch>') (the same order BatchLoader uses), so it depends only on (seed, epoch).
// Each image of the epoch gets its own transform seed, the next u32 of Rng(seed,
// 'augment:<epoch>') in visiting order, and the transform draws from Rng(that seed,
// 'transform'): augmented batches are the same whichever worker renders which image, and the
// same for a CIFAR binary source and a pack of the same images. Evaluation sources visit
// 0..n-1 in order with the deterministic eval transform.
//
// Buffers and prefetching: a source keeps three batch buffers per batch size and fills the
// next batch while the current one is being consumed; a yielded batch stays valid until the
// next-but-one batch is requested (slots k, k+1 and the prefetched k+2 never coincide).
// With workers, the x buffers are over SharedArrayBuffers so that workers write into them.
// One epoch iterator per source at a time (a new one retires the previous).
//
// Corrupt files in an ImageFolder (onError 'skip', the default): the file is named in a
// warning on stderr once, left out of that batch (which is one image shorter; a batch with
// no image left is not yielded) and of every later epoch. onError 'fail' throws an
// ImagerateDataError naming the file.
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Rng } from '../util/rng.js';
import type { Batch, BatchSource } from './source.js';
import { ImagerateDataError, type Normalisation } from './dataset.js';
import { CIFAR_IMAGE_BYTES, loadCifar10Binary, type CifarBinaryData } from './cifar-binary.js';
import { DecodePool, runTask, type RenderItem } from './decode.js';
import { displayName, scanImageFolder, type ImageFolderIndex } from './imagefolder.js';
import { PackReader } from './records.js';
import { renderImage, resolveTransform, type ResolvedTransform, type TransformConfig, type TransformName } from './transforms.js';

export interface ImageSourceOptions {
  /** Training (shuffled, random transform) or evaluation (in order, eval transform). */
  train: boolean;
  /** Seed for shuffling and augmentation (default 0). */
  seed?: number;
  /** The stage-2 transform (its `train` is set from the option above). */
  transform: TransformName | Omit<TransformConfig, 'train'>;
  /** Worker threads (default: available cores; 0 = on this thread). Not used by cifarBinarySource. */
  workers?: number;
  /** A pool to share (e.g. between the train and test source); the source then does not close it. */
  pool?: DecodePool;
  /** ImageFolder: a file that cannot be decoded is skipped with a warning (default) or fails. */
  onError?: 'skip' | 'fail';
  /** Where warnings go (default: stderr). */
  warn?: (message: string) => void;
  name?: string;
}

interface Slots {
  x: Float32Array[];
  y: Int32Array[];
}

function configOf(opts: ImageSourceOptions): TransformConfig {
  const base = typeof opts.transform === 'string' ? { name: opts.transform } : opts.transform;
  return { ...base, train: opts.train };
}

/** The shared machinery: order, per-image seeds, triple buffering, prefetch. */
export abstract class ImageBatchSource implements BatchSource {
  readonly name: string;
  readonly n: number;
  readonly shape: readonly [number, number, number];
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly normalisation: Normalisation;
  readonly transform: string;
  readonly train: boolean;
  readonly seed: number;
  readonly resolved: ResolvedTransform;
  /** Label of every image, in index order. */
  readonly labels: Int32Array;
  protected readonly sharedBuffers: boolean;
  private slots = new Map<number, Slots>();
  private produced = 0;
  private generation = 0;

  protected constructor(name: string, labels: Int32Array, classNames: readonly string[], t: ResolvedTransform, train: boolean, seed: number, sharedBuffers: boolean) {
    this.name = name;
    this.labels = labels;
    this.n = labels.length;
    this.classNames = classNames;
    this.numClasses = classNames.length;
    this.resolved = t;
    this.shape = t.shape;
    this.normalisation = t.normalisation;
    this.transform = t.description;
    this.train = train;
    this.seed = seed;
    this.sharedBuffers = sharedBuffers;
  }

  /** Fill x/y with the images `indices` (transform seeds `seeds`); returns how many were written. */
  protected abstract fill(indices: Uint32Array, seeds: Uint32Array | null, x: Float32Array, y: Int32Array): Promise<number>;

  /** The visiting order of an epoch. */
  order(epoch: number): Uint32Array {
    const idx = new Uint32Array(this.n);
    for (let i = 0; i < this.n; i++) idx[i] = i;
    if (this.train) new Rng(this.seed, `shuffle:${epoch}`).shuffle(idx);
    return idx;
  }

  /** The per-image transform seeds of an epoch, in visiting order (null for evaluation). */
  seeds(epoch: number): Uint32Array | null {
    if (!this.train) return null;
    const rng = new Rng(this.seed, `augment:${epoch}`);
    const s = new Uint32Array(this.n);
    for (let i = 0; i < this.n; i++) s[i] = rng.nextU32();
    return s;
  }

  private buffers(batchSize: number): Slots {
    let s = this.slots.get(batchSize);
    if (!s) {
      const floats = batchSize * this.resolved.size;
      const mk = () => (this.sharedBuffers ? new Float32Array(new SharedArrayBuffer(floats * 4)) : new Float32Array(floats));
      s = { x: [mk(), mk(), mk()], y: [new Int32Array(batchSize), new Int32Array(batchSize), new Int32Array(batchSize)] };
      this.slots.clear(); // one batch size at a time keeps memory bounded
      this.slots.set(batchSize, s);
    }
    return s;
  }

  async *batches(epoch: number, batchSize: number, opts: { dropLast: boolean }): AsyncIterable<Batch> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
    if (this.n === 0) throw new RangeError(`${this.name} is empty`);
    if (opts.dropLast && batchSize > this.n) {
      throw new RangeError(`batch ${batchSize} is larger than ${this.name} (${this.n} images); with dropLast no batch would be produced`);
    }
    // One epoch iterator at a time: starting another one retires the previous (which throws if
    // it is resumed), so an iterator that was dropped without return() cannot block the source.
    const gen = ++this.generation;
    const order = this.order(epoch);
    const seeds = this.seeds(epoch);
    const nb = opts.dropLast ? Math.floor(this.n / batchSize) : Math.ceil(this.n / batchSize);
    const bufs = this.buffers(batchSize);
    const produce = (b: number): Promise<{ slot: number; count: number }> => {
      const slot = this.produced++ % 3;
      const start = b * batchSize;
      const end = Math.min(this.n, start + batchSize);
      return this.fill(order.subarray(start, end), seeds ? seeds.subarray(start, end) : null, bufs.x[slot], bufs.y[slot])
        .then((count) => ({ slot, count }));
    };
    const quiet = (p: Promise<unknown> | null): void => { p?.catch(() => undefined); };
    let pending: Promise<{ slot: number; count: number }> | null = nb > 0 ? produce(0) : null;
    quiet(pending);
    let yielded = 0;
    try {
      for (let b = 0; b < nb; b++) {
        const cur = await pending!;
        if (gen !== this.generation) throw new Error(`${this.name}: this batches() iterator was superseded by a later batches() call`);
        pending = b + 1 < nb ? produce(b + 1) : null;
        quiet(pending);
        if (cur.count === 0) continue;
        const sz = this.resolved.size;
        const x = bufs.x[cur.slot];
        const y = bufs.y[cur.slot];
        yield {
          x: cur.count === batchSize ? x : x.subarray(0, cur.count * sz),
          y: cur.count === batchSize ? y : y.subarray(0, cur.count),
          size: cur.count,
          index: yielded++,
          epoch,
        };
      }
    } finally {
      if (pending) await pending.catch(() => undefined);
    }
  }

  async close(): Promise<void> { /* nothing by default */ }
}

// ---------------------------------------------------------------------------------------

class CifarBinarySource extends ImageBatchSource {
  private readonly data: CifarBinaryData;

  constructor(data: CifarBinaryData, opts: ImageSourceOptions) {
    const t = resolveTransform(configOf(opts));
    super(opts.name ?? `${data.name}-${data.split}`, data.labels, data.classNames, t, opts.train, opts.seed ?? 0, false);
    this.data = data;
  }

  protected fill(indices: Uint32Array, seeds: Uint32Array | null, x: Float32Array, y: Int32Array): Promise<number> {
    const t = this.resolved;
    const px = this.data.pixels;
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      const src = { data: px.subarray(i * CIFAR_IMAGE_BYTES, (i + 1) * CIFAR_IMAGE_BYTES), h: 32, w: 32, c: 3, layout: 'chw' as const };
      renderImage(t, src, seeds ? new Rng(seeds[j], 'transform') : null, x, j * t.size);
      y[j] = this.labels[i];
    }
    return Promise.resolve(indices.length);
  }
}

/** A BatchSource over CIFAR-10 binary data in memory (uint8). */
export function cifarBinarySource(data: CifarBinaryData, opts: ImageSourceOptions): ImageBatchSource {
  return new CifarBinarySource(data, opts);
}

// ---------------------------------------------------------------------------------------

/** A pool owned by one source or shared by several (closed when the last one closes). */
class PoolRef {
  private refs = 0;
  constructor(readonly pool: DecodePool, private readonly owned: boolean) {}
  acquire(): this { this.refs++; return this; }
  async release(): Promise<void> {
    if (--this.refs === 0 && this.owned) await this.pool.close();
  }
}

function poolFor(opts: ImageSourceOptions): PoolRef {
  return (opts.pool ? new PoolRef(opts.pool, false) : new PoolRef(new DecodePool({ workers: opts.workers }), true)).acquire();
}

/** Split `count` items into at most `parts` contiguous chunks. */
function chunks(count: number, parts: number): Array<[number, number]> {
  const k = Math.max(1, Math.min(parts, count));
  const out: Array<[number, number]> = [];
  for (let p = 0; p < k; p++) {
    const a = Math.floor((p * count) / k);
    const b = Math.floor(((p + 1) * count) / k);
    if (b > a) out.push([a, b]);
  }
  return out;
}

abstract class PooledSource extends ImageBatchSource {
  protected readonly poolRef: PoolRef;
  private closed = false;

  protected constructor(name: string, labels: Int32Array, classNames: readonly string[], t: ResolvedTransform, opts: ImageSourceOptions, poolRef: PoolRef) {
    super(name, labels, classNames, t, opts.train, opts.seed ?? 0, poolRef.pool.workers > 0);
    this.poolRef = poolRef;
  }

  /** Render items [first, first + items.length) of a batch on the pool, split over the workers. */
  protected async renderOnPool(items: RenderItem[], x: Float32Array, pack?: string): Promise<Array<{ index: number; message: string }>> {
    const pool = this.poolRef.pool;
    const cfg = this.resolved.config;
    if (pool.workers === 0) {
      const r = await runTask({ kind: 'render', transform: cfg, dst: x, first: 0, items, ...(pack ? { pack } : {}) });
      return (r as { errors: Array<{ index: number; message: string }> }).errors;
    }
    // More chunks than workers, so that a slow chunk (big images) does not hold the batch up.
    const parts = chunks(items.length, pool.workers * 2);
    const results = await Promise.all(parts.map(([a, b]) =>
      pool.render({ transform: cfg, dst: x, first: a, items: items.slice(a, b), ...(pack ? { pack } : {}) })
        .then((r) => r.errors.map((e) => ({ index: e.index + a, message: e.message })))));
    return results.flat();
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.poolRef.release();
  }
}

class PackedSource extends PooledSource {
  readonly reader: PackReader;

  constructor(reader: PackReader, opts: ImageSourceOptions, poolRef: PoolRef) {
    const t = resolveTransform(configOf(opts));
    super(opts.name ?? basename(reader.path), reader.labels, reader.classNames, t, opts, poolRef);
    this.reader = reader;
  }

  protected async fill(indices: Uint32Array, seeds: Uint32Array | null, x: Float32Array, y: Int32Array): Promise<number> {
    const r = this.reader;
    const items: RenderItem[] = new Array(indices.length);
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      items[j] = { record: { offset: r.offsets[i], length: r.lengths[i] }, seed: seeds ? seeds[j] : null };
      y[j] = r.labels[i];
    }
    await this.renderOnPool(items, x, r.path);
    return indices.length;
  }

  override async close(): Promise<void> {
    await super.close();
    this.reader.close();
  }
}

/** A BatchSource over a packed record file (path or an open reader). */
export function packedSource(pack: string | PackReader, opts: ImageSourceOptions): ImageBatchSource {
  const reader = typeof pack === 'string' ? PackReader.open(pack) : pack;
  return new PackedSource(reader, opts, poolFor(opts));
}

class ImageFolderSource extends PooledSource {
  readonly index: ImageFolderIndex;
  readonly onError: 'skip' | 'fail';
  /** Files that failed to decode (skipped from then on). */
  readonly bad = new Set<number>();
  private readonly warn: (m: string) => void;

  constructor(index: ImageFolderIndex, opts: ImageSourceOptions, poolRef: PoolRef) {
    const t = resolveTransform(configOf(opts));
    super(opts.name ?? basename(index.root), index.labels, index.classNames, t, opts, poolRef);
    this.index = index;
    this.onError = opts.onError ?? 'skip';
    if (this.onError !== 'skip' && this.onError !== 'fail') throw new RangeError(`onError must be 'skip' or 'fail', got '${String(this.onError)}'`);
    this.warn = opts.warn ?? ((m) => process.stderr.write(`imagerate: warning: ${m}\n`));
  }

  protected async fill(indices: Uint32Array, seeds: Uint32Array | null, x: Float32Array, y: Int32Array): Promise<number> {
    const keep: number[] = []; // positions within the batch that are attempted
    const items: RenderItem[] = [];
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      if (this.bad.has(i)) continue;
      keep.push(i);
      items.push({ file: this.index.files[i], seed: seeds ? seeds[j] : null });
    }
    const errors = await this.renderOnPool(items, x);
    const failed = new Set<number>();
    for (const e of errors) {
      const i = keep[e.index];
      const file = this.index.files[i];
      const problem = e.message;
      if (this.onError === 'fail') throw new ImagerateDataError(file, problem, displayName(file, this.index.root));
      if (!this.bad.has(i)) this.warn(`${file}: ${problem}; skipped`);
      this.bad.add(i);
      failed.add(e.index);
    }
    // Compact: move the images that rendered down over the failed ones.
    const sz = this.resolved.size;
    let w = 0;
    for (let k = 0; k < keep.length; k++) {
      if (failed.has(k)) continue;
      if (w !== k) x.copyWithin(w * sz, k * sz, (k + 1) * sz);
      y[w] = this.labels[keep[k]];
      w++;
    }
    return w;
  }
}

/** A BatchSource over an ImageFolder tree, decoding on the fly in workers. */
export function imageFolderSource(root: string | ImageFolderIndex, opts: ImageSourceOptions): ImageBatchSource {
  const index = typeof root === 'string' ? scanImageFolder(root) : root;
  return new ImageFolderSource(index, opts, poolFor(opts));
}

// ---------------------------------------------------------------------------------------
// resolveSources

export interface ResolveSourcesOptions {
  transform: 'cifar-crop32' | 'cifar-crop24' | 'imagenet';
  seed: number;
  /** Decode/transform worker threads for packs and ImageFolders (default: available cores). */
  workers?: number;
  onError?: 'skip' | 'fail';
  /** imagenet: output side (default 224). */
  inputSize?: number;
  /** Extra transform settings (brightness, contrast, ...). */
  transformOptions?: Omit<TransformConfig, 'name' | 'train' | 'inputSize'>;
  warn?: (message: string) => void;
}

export const SOURCE_SPEC_FORMS =
  'cifar10:<dir> (CIFAR-10 binary batches: data_batch_1..5.bin and test_batch.bin in <dir> or <dir>/cifar-10-batches-bin), ' +
  'imagefolder:<dir> (<dir>/train.pack with <dir>/test.pack or val.pack; else ImageFolder trees <dir>/train with <dir>/test or <dir>/val), ' +
  'or imagefolder:<file.pack> (a pack whose name contains "train"; the test pack is the same name with "test" or "val")';

const TEST_NAMES = ['test', 'val'] as const;

function isFile(p: string): boolean {
  try { return statSync(p).isFile(); } catch { return false; }
}
function isDir(p: string): boolean {
  try { return statSync(p).isDirectory(); } catch { return false; }
}

function checkSameClasses(train: readonly string[], test: readonly string[], what: string): void {
  if (train.length !== test.length || train.some((c, i) => c !== test[i])) {
    const missing = train.filter((c) => !test.includes(c)).slice(0, 5);
    const extra = test.filter((c) => !train.includes(c)).slice(0, 5);
    throw new ImagerateDataError(what,
      `train and test classes differ (${train.length} vs ${test.length} classes` +
      (missing.length ? `; not in test: ${missing.join(', ')}` : '') + (extra.length ? `; only in test: ${extra.join(', ')}` : '') +
      '); label indices would not match', what);
  }
}

/** Resolve a dataset spec into a training source and an evaluation source. See SOURCE_SPEC_FORMS. */
export async function resolveSources(spec: string, opts: ResolveSourcesOptions): Promise<{ train: BatchSource; test: BatchSource }> {
  const colon = spec.indexOf(':');
  const kind = colon > 0 ? spec.slice(0, colon) : '';
  const path = colon > 0 ? spec.slice(colon + 1) : '';
  if (!['cifar-crop32', 'cifar-crop24', 'imagenet'].includes(opts.transform)) {
    throw new RangeError(`unknown transform '${String(opts.transform)}' (valid: cifar-crop32, cifar-crop24, imagenet)`);
  }
  const transform = { ...(opts.transformOptions ?? {}), name: opts.transform, ...(opts.inputSize !== undefined ? { inputSize: opts.inputSize } : {}) };
  const base = { seed: opts.seed, transform, ...(opts.onError ? { onError: opts.onError } : {}), ...(opts.warn ? { warn: opts.warn } : {}) };
  if (kind === 'cifar10' && path) {
    const train = loadCifar10Binary(path, 'train');
    const test = loadCifar10Binary(path, 'test');
    return {
      train: cifarBinarySource(train, { ...base, train: true, name: 'cifar10-train' }),
      test: cifarBinarySource(test, { ...base, train: false, name: 'cifar10-test' }),
    };
  }
  if (kind === 'imagefolder' && path) {
    const p = resolve(path);
    let trainPack: string | null = null;
    let testPack: string | null = null;
    let trainDir: string | null = null;
    let testDir: string | null = null;
    if (isFile(p)) {
      const name = basename(p);
      if (!/train/.test(name)) {
        throw new ImagerateDataError(p, 'a single pack file must have "train" in its name, with its test pack beside it ' +
          '(same name with "test" or "val"); or give the directory holding train.pack and test.pack', spec);
      }
      trainPack = p;
      testPack = TEST_NAMES.map((t) => join(dirname(p), name.replace(/train/, t))).find(isFile) ?? null;
      if (!testPack) {
        throw new ImagerateDataError(p, `no test pack beside it (looked for ${TEST_NAMES.map((t) => name.replace(/train/, t)).join(' and ')})`, spec);
      }
    } else if (isDir(p)) {
      if (isFile(join(p, 'train.pack'))) {
        trainPack = join(p, 'train.pack');
        testPack = TEST_NAMES.map((t) => join(p, `${t}.pack`)).find(isFile) ?? null;
        if (!testPack) throw new ImagerateDataError(p, 'has train.pack but no test.pack or val.pack', spec);
      } else if (isDir(join(p, 'train'))) {
        trainDir = join(p, 'train');
        testDir = TEST_NAMES.map((t) => join(p, t)).find(isDir) ?? null;
        if (!testDir) throw new ImagerateDataError(p, 'has train/ but no test/ or val/ directory', spec);
      } else {
        throw new ImagerateDataError(p, 'holds neither train.pack nor a train/ directory (ImageFolder layout: train/<class>/*.jpg, test/<class>/*.jpg)', spec);
      }
    } else {
      throw new ImagerateDataError(p, existsSync(p) ? 'is neither a file nor a directory' : 'not found', spec);
    }
    const pool = new DecodePool({ workers: opts.workers });
    const ref = new PoolRef(pool, true);
    try {
      if (trainPack && testPack) {
        const trainReader = PackReader.open(trainPack);
        const testReader = PackReader.open(testPack);
        checkSameClasses(trainReader.classNames, testReader.classNames, spec);
        return {
          train: new PackedSource(trainReader, { ...base, train: true, pool }, ref.acquire()),
          test: new PackedSource(testReader, { ...base, train: false, pool }, ref.acquire()),
        };
      }
      const trainIndex = scanImageFolder(trainDir!);
      const testIndex = scanImageFolder(testDir!);
      checkSameClasses(trainIndex.classNames, testIndex.classNames, spec);
      return {
        train: new ImageFolderSource(trainIndex, { ...base, train: true, pool, name: `${basename(p)}/train` }, ref.acquire()),
        test: new ImageFolderSource(testIndex, { ...base, train: false, pool, name: `${basename(p)}/${basename(testDir!)}` }, ref.acquire()),
      };
    } catch (e) {
      await pool.close();
      throw e;
    }
  }
  throw new ImagerateDataError(spec, `unknown data source; valid forms: ${SOURCE_SPEC_FORMS}`, spec);
}
