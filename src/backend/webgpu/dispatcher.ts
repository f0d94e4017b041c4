// What the op glue (ops/*.ts) sees of the WebGPU runtime: the Dispatcher interface, kernel
// parameters (Params), buffers and views, the pool's size classes and the backend's error type.
// The implementation is WebGpuRuntime in runtime.ts.
import type { BufferHandle } from '../backend.js';
import type { Defines } from './shaders.js';

const UNIFORM_WORDS = 64; // 256 bytes of parameters per dispatch at most

export class WebGpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebGpuError';
  }
}

export class WgpuBuffer implements BufferHandle {
  freed = false;
  constructor(readonly id: number, readonly bytes: number, readonly gpu: GPUBuffer, readonly size: number) {}
}

/** A byte range of a buffer, bound with GPUBufferBinding offset/size (Dispatcher.view()). */
export class WgpuView {
  constructor(readonly buffer: WgpuBuffer, readonly offset: number, readonly size: number) {}
}

/** What a dispatch binds: a whole buffer or a view of one. */
export type Binding = BufferHandle | WgpuView;

/** Kernel parameters, packed in declaration order: every field of a Params struct is a 4-byte scalar. */
export class Params {
  readonly words = new DataView(new ArrayBuffer(UNIFORM_WORDS * 4));
  count = 0;
  private put(set: (off: number) => void): this {
    if (this.count >= UNIFORM_WORDS) throw new Error(`kernel parameters exceed ${UNIFORM_WORDS} words`);
    set(this.count * 4);
    this.count++;
    return this;
  }
  u(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 parameter out of range: ${v}`);
    return this.put((o) => this.words.setUint32(o, v, true));
  }
  i(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`i32 parameter out of range: ${v}`);
    return this.put((o) => this.words.setInt32(o, v, true));
  }
  f(v: number): this { return this.put((o) => this.words.setFloat32(o, v, true)); }
}
export const params = (): Params => new Params();

export interface Kernel { file: string; entry: string; defines?: Defines }

/** 32-bit words in a fault slot (Dispatcher.fault()). */
export const FAULT_WORDS = 4;

/** A fault slot as read back: its count (word 0), the first bad index (~word 1) and all FAULT_WORDS words. */
export interface FaultRecord { count: number; first: number; words: Uint32Array }

/** What op glue may use. `reads` are bound at 1..r, `writes` at r+1..; the uniform at 0. */
export interface Dispatcher {
  readonly limits: GPUSupportedLimits;
  /** Bytes one storage binding may cover: the device's limit, or IMAGERATE_WEBGPU_MAX_BINDING if lower. */
  readonly maxBinding: number;
  /** Elements (4 bytes) a view's offset must be a multiple of (minStorageBufferOffsetAlignment / 4). */
  readonly viewAlign: number;
  dispatch(op: string, k: Kernel, p: Params | null, reads: Binding[], writes: Binding[], groups: readonly number[]): void;
  /** True when the whole buffer can be bound (its size is within maxBinding). */
  bindable(buf: BufferHandle): boolean;
  /**
   * A view of `length` 4-byte elements from element `offset`: offset a multiple of viewAlign,
   * the range inside the buffer and within maxBinding; throws `<op>: view ...` otherwise.
   */
  view(op: string, buf: BufferHandle, offset: number, length: number): WgpuView;
  /** Throws `<op>: buffer <name> has N bytes, needs M` (a caller bug, never silent corruption). */
  need(op: string, name: string, buf: BufferHandle, bytes: number): void;
  /** Workgroup counts for a 1-D range of `n` items and workgroup size `wg`, folded into x/y when n/wg > 65535. */
  grid(n: number, wg: number): [number, number];
  /**
   * A fault slot, for a kernel that can meet bad data which cannot be refused before it runs
   * (a label outside [0, C) lives on the device). Bound as a writable `array<atomic<u32>, 4>`
   * (FAULT_WORDS), zeroed: the kernel adds 1 to word 0 per bad item and atomicMax-es word 1
   * with ~index, so word 1 ends as ~(the first bad index); words 2 and 3 are the kernel's own
   * (order-independent atomics only, so the message does not depend on thread order). The next
   * sync() or download() reads every slot armed since the last one and rejects with
   * `<op>: <describe(record)>`; the slots are cleared, so the runtime stays usable. Dispatches
   * sharing `op` and `key` share a slot.
   */
  fault(op: string, key: string, describe: (f: FaultRecord) => string): WgpuView;
  /** A pooled scratch buffer, for the glue's own temporaries; release with free(). */
  alloc(bytes: number): BufferHandle;
  free(buf: BufferHandle): void;
}

/** Pool size class: multiples of 256 B up to 4 KiB, then 4 steps per power of two (≤ 25 % waste). */
export function sizeClass(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 4;
  return Math.ceil(b / step) * step;
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
