// Image decoding (JPEG, PNG) with sharp (libvips; its prebuilt binaries come from npm as the
// optional dependency @img/sharp-<platform>, so it installs offline from the registry), and
// the worker-thread pool that runs decoding and stage-2 transforms off the main thread.
//
//   const pool = new DecodePool({ workers: 4 });           // default: os.availableParallelism()
//   const img = await pool.decode('x.jpg', { channels: 3, resize: { mode: 'shorter', size: 256 } });
//   await pool.close();
//
// workers: 0 runs everything on the calling thread (still asynchronous): for tests, and for
// tiny data where a thread round trip costs more than the work.
//
// Decoded pixels are uint8 HWC (sharp's raw output). Colour images are converted to sRGB
// with any alpha channel dropped (as PIL's convert('RGB')); 'channels: 1' gives luminance.
// EXIF orientation is not applied (torchvision/PIL do not either). Resizing uses sharp's
// 'linear' kernel (antialiased bilinear, the closest to torchvision's Resize on PIL images);
// sharp decodes big JPEGs at 1/2, 1/4 or 1/8 scale when the resize allows it, which is what
// makes decode + resize of ImageNet-sized files cheap.
//
// A file that cannot be decoded (corrupt or truncated JPEG, not an image at all) becomes an
// ImagerateDataError naming the file; sharp is asked to fail on truncated data
// (failOn: 'truncated') rather than return a half-grey image.
//
// Threads: sharp runs each decode on libuv's thread pool, which is shared by all worker
// threads of the process; UV_THREADPOOL_SIZE is raised to the core count when it is unset
// and this module is loaded before the pool starts (the CLI does so). sharp is loaded on the
// main thread before any worker starts, which sharp's documentation asks for on glibc
// (otherwise libvips can be unloaded when a worker exits).
import { availableParallelism } from 'node:os';
import { existsSync, openSync, readSync, closeSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread } from 'node:worker_threads';
import { ImagerateDataError } from './dataset.js';
import { Rng } from '../util/rng.js';
import { PACKAGE_ROOT } from '../util/paths.js';
import { resolveTransform, renderImage, type DecodeSpec, type ResolvedTransform, type TransformConfig } from './transforms.js';
import { parseRecord } from './records.js';
import { checkHeaderSize } from './image-header.js';

if (process.env.UV_THREADPOOL_SIZE === undefined) {
  process.env.UV_THREADPOOL_SIZE = String(Math.max(4, availableParallelism()));
}

/** One decoded image: uint8, HWC. */
export interface DecodedImage {
  data: Uint8Array;
  h: number;
  w: number;
  c: number;
}

type SharpModule = typeof import('sharp');
let sharpModule: Promise<SharpModule['default']> | null = null;

/** sharp, loaded once (lazily, so that importing data/ does not load libvips). */
export function loadSharp(): Promise<SharpModule['default']> {
  if (!sharpModule) {
    sharpModule = import('sharp').then((m) => {
      const s = m.default;
      s.cache(false); // every file is decoded once per epoch at most; the cache only costs memory
      return s;
    }, (e: unknown) => {
      sharpModule = null;
      throw new Error(`cannot load sharp (needed to decode JPEG/PNG): ${(e as Error).message}; ` +
        'reinstall with `npm install sharp` so that its @img/sharp-<platform> package is present');
    });
  }
  return sharpModule;
}

function firstLine(msg: string): string {
  return msg.split('\n')[0].trim();
}

/**
 * Decode one JPEG/PNG file (or encoded bytes) to uint8 HWC with `spec.channels` channels,
 * resized as spec.resize says. Rejects with an ImagerateDataError naming `name` (default: the file).
 */
export async function decodeImage(input: string | Uint8Array, spec: DecodeSpec, name?: string): Promise<DecodedImage> {
  const sharp = await loadSharp();
  const label = name ?? (typeof input === 'string' ? input : '<image bytes>');
  try {
    // Reading the file ourselves and handing sharp the bytes costs less than letting libvips
    // open it (measured: about 0.3 ms less system time per small JPEG).
    const bytes = typeof input === 'string' ? (isMainThread ? await readFile(input) : readFileSync(input)) : input;
    checkHeaderSize(bytes);
    let img = sharp(bytes, { failOn: 'truncated' });
    img = spec.channels === 1 ? img.greyscale() : img.removeAlpha().toColourspace('srgb');
    const r = spec.resize;
    if (r) {
      if (r.mode === 'shorter') img = img.resize({ width: r.size, height: r.size, fit: 'outside', kernel: 'linear' });
      else img = img.resize({ width: r.width, height: r.height, fit: r.mode === 'exact' ? 'fill' : 'cover', position: 'centre', kernel: 'linear' });
    }
    const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    // A fresh, exactly sized ArrayBuffer, so it can be transferred between threads.
    const out = new Uint8Array(data.length);
    out.set(data);
    if (info.channels !== spec.channels) {
      throw new Error(`decoded to ${info.channels} channels, expected ${spec.channels}`);
    }
    return { data: out, h: info.height, w: info.width, c: info.channels };
  } catch (e) {
    if (e instanceof ImagerateDataError) throw e;
    throw new ImagerateDataError(label, `cannot decode image: ${firstLine((e as Error).message)}`);
  }
}

// ---------------------------------------------------------------------------------------
// Tasks (run in a worker, or inline)

/** Where one image of a render task comes from. */
export type RenderItem =
  | { file: string; seed: number | null }
  | { record: { offset: number; length: number }; seed: number | null };

export interface RenderTask {
  kind: 'render';
  transform: TransformConfig;
  /** Packed record file that the items' records are in. */
  pack?: string;
  /** Batch buffer (over a SharedArrayBuffer when workers are used); item k goes to dst[(first + k) * size]. */
  dst: Float32Array;
  first: number;
  items: RenderItem[];
}

export interface DecodeTask {
  kind: 'decode';
  file: string;
  spec: DecodeSpec;
}

export type Task = RenderTask | DecodeTask;

export interface RenderResult {
  /** Items that failed (file could not be decoded), with the error message. */
  errors: Array<{ index: number; message: string }>;
}

const transformCache = new Map<string, ResolvedTransform>();
function transformFor(cfg: TransformConfig): ResolvedTransform {
  const key = JSON.stringify(cfg);
  let t = transformCache.get(key);
  if (!t) {
    t = resolveTransform(cfg);
    transformCache.set(key, t);
  }
  return t;
}

const packFds = new Map<string, number>();
function packFd(path: string): number {
  let fd = packFds.get(path);
  if (fd === undefined) {
    fd = openSync(path, 'r');
    packFds.set(path, fd);
  }
  return fd;
}

/** Close the pack files a thread has open (worker exit, or inline pool close). */
export function closePackFds(): void {
  for (const fd of packFds.values()) {
    try { closeSync(fd); } catch { /* already closed */ }
  }
  packFds.clear();
}

/** Read record bytes at `offset` from a pack file (synchronous pread). */
export function readRecordBytes(pack: string, offset: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  const got = readSync(packFd(pack), buf, 0, length, offset);
  if (got !== length) throw new ImagerateDataError(pack, `truncated: record at byte ${offset} needs ${length} bytes, read ${got}`);
  return buf;
}

async function renderOne(t: ResolvedTransform, task: RenderTask, k: number): Promise<void> {
  const item = task.items[k];
  const rng = t.train && item.seed !== null ? new Rng(item.seed, 'transform') : null;
  const off = (task.first + k) * t.size;
  if ('file' in item) {
    const img = await decodeImage(item.file, t.decode);
    renderImage(t, { ...img, layout: 'hwc' }, rng, task.dst, off);
  } else {
    const { offset, length } = item.record;
    const bytes = readRecordBytes(task.pack!, offset, length);
    const rec = parseRecord(bytes, 0, task.pack!, offset);
    renderImage(t, { data: rec.pixels, h: rec.h, w: rec.w, c: rec.c, layout: 'hwc' }, rng, task.dst, off);
  }
}

/** Run one task on this thread. Render tasks decode up to 2 files at a time (sharp works on libuv's pool). */
export async function runTask(task: Task): Promise<DecodedImage | RenderResult> {
  if (task.kind === 'decode') return decodeImage(task.file, task.spec);
  const t = transformFor(task.transform);
  const errors: RenderResult['errors'] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < task.items.length) {
      const k = next++;
      try {
        await renderOne(t, task, k);
      } catch (e) {
        // Records are our own format: a bad one is fatal. Files may be skipped by the caller.
        if (!('file' in task.items[k])) throw e;
        errors.push({ index: k, message: e instanceof ImagerateDataError ? e.problem : (e as Error).message });
      }
    }
  };
  const hasFiles = task.items.length > 0 && 'file' in task.items[0];
  await Promise.all(Array.from({ length: hasFiles ? 2 : 1 }, lane));
  return { errors };
}

// ---------------------------------------------------------------------------------------
// The pool

export interface DecodePoolOptions {
  /** Worker threads (default: os.availableParallelism()); 0 runs tasks on the calling thread. */
  workers?: number;
}

/** Default worker count: the cores Node may use. */
export function defaultWorkerCount(): number {
  return availableParallelism();
}

/** Path of the compiled worker script (dist/data/decode-worker.js when running from src/ under vitest). */
export function workerScript(): string | URL {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return new URL('./decode-worker.js', import.meta.url);
  const built = join(PACKAGE_ROOT, 'dist', 'data', 'decode-worker.js');
  if (!existsSync(built)) {
    throw new Error(`the decode worker is not built (${built} is missing): run \`npx tsc -p .\` first`);
  }
  return built;
}

interface Pending {
  task: Task;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, Pending>;
}

/** Reply from a worker. */
export type WorkerReply =
  | { id: number; ok: true; result: DecodedImage | RenderResult }
  | { id: number; ok: false; error: { message: string; dataError?: { file: string; problem: string } } };

export class DecodePool {
  readonly workers: number;
  private slots: Slot[] = [];
  private queue: Pending[] = [];
  private nextId = 1;
  private starting: Promise<void> | null = null;
  private closed = false;
  private failure: Error | null = null;
  /** Tasks a worker runs at once (overlaps sharp's decoding with the thread's JS work). */
  private readonly perWorker = 2;

  constructor(opts: DecodePoolOptions = {}) {
    const n = opts.workers ?? defaultWorkerCount();
    if (!Number.isInteger(n) || n < 0 || n > 256) throw new RangeError(`workers must be an integer in [0, 256], got ${n}`);
    this.workers = n;
  }

  /** Threads actually started (0 until the first task, or with workers: 0). */
  get threads(): number {
    return this.slots.length;
  }

  private start(): Promise<void> {
    if (!this.starting) {
      this.starting = (async () => {
        await loadSharp(); // on the main thread first (see header)
        const script = workerScript();
        for (let i = 0; i < this.workers; i++) {
          const worker = new Worker(script);
          const slot: Slot = { worker, inFlight: new Map() };
          worker.on('message', (m: WorkerReply) => this.onReply(slot, m));
          worker.on('error', (e) => this.onCrash(slot, e));
          worker.on('exit', (code) => {
            if (!this.closed) this.onCrash(slot, new Error(`decode worker exited with code ${code}`));
          });
          worker.unref();
          this.slots.push(slot);
        }
      })();
    }
    return this.starting;
  }

  private onReply(slot: Slot, m: WorkerReply): void {
    const p = slot.inFlight.get(m.id);
    if (!p) return;
    slot.inFlight.delete(m.id);
    if (slot.inFlight.size === 0) slot.worker.unref();
    if (m.ok) p.resolve(m.result);
    else if (m.error.dataError) p.reject(new ImagerateDataError(m.error.dataError.file, m.error.dataError.problem));
    else p.reject(new Error(m.error.message));
    this.pump();
  }

  private onCrash(slot: Slot, e: Error): void {
    this.failure ??= e;
    for (const p of slot.inFlight.values()) p.reject(e);
    slot.inFlight.clear();
    for (const p of this.queue.splice(0)) p.reject(e);
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let best: Slot | null = null;
      for (const s of this.slots) if (s.inFlight.size < this.perWorker && (!best || s.inFlight.size < best.inFlight.size)) best = s;
      if (!best) return;
      const p = this.queue.shift()!;
      const id = this.nextId++;
      best.inFlight.set(id, p);
      best.worker.ref();
      best.worker.postMessage({ id, task: p.task });
    }
  }

  /** Run a task on a worker (or inline with workers: 0). */
  run<T extends DecodedImage | RenderResult>(task: Task): Promise<T> {
    if (this.closed) return Promise.reject(new Error('decode pool is closed'));
    if (this.failure) return Promise.reject(this.failure);
    if (this.workers === 0) return runTask(task) as Promise<T>;
    return this.start().then(() => new Promise<T>((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      this.queue.push({ task, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    }));
  }

  /** Decode one file on a worker. */
  decode(file: string, spec: DecodeSpec): Promise<DecodedImage> {
    return this.run<DecodedImage>({ kind: 'decode', file, spec });
  }

  /** Render items into a batch buffer on a worker. */
  render(task: Omit<RenderTask, 'kind'>): Promise<RenderResult> {
    return this.run<RenderResult>({ kind: 'render', ...task });
  }

  /**
   * Stop the workers: queued tasks are rejected, tasks already running finish first (a worker
   * terminated in the middle of a libvips call can take the process down), then the threads exit.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('decode pool closed');
    for (const p of this.queue.splice(0)) p.reject(err);
    if (this.starting) await this.starting.catch(() => undefined);
    await Promise.all(this.slots.map(async (s) => {
      const exited = new Promise<void>((resolve) => s.worker.once('exit', () => resolve()));
      s.worker.ref();
      s.worker.postMessage({ close: true });
      const timer = setTimeout(() => void s.worker.terminate(), 30_000);
      await exited;
      clearTimeout(timer);
      for (const p of s.inFlight.values()) p.reject(err);
      s.inFlight.clear();
    }));
    this.slots = [];
    if (this.workers === 0) closePackFds();
  }
}
