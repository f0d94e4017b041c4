// Tensor: a shape, a dtype and a reference-counted device buffer on one backend.
//
// Views (reshape/flatten) share the buffer; the buffer is freed when the last tensor that
// refers to it is disposed. Reading values is asynchronous (`await t.data()`), because the
// backend may still be computing them. Every tensor created while a scope is open (see
// autograd/scope.ts) is disposed when that scope closes, unless it is returned or kept.
import type { Backend, BufferHandle, DType } from './backend/backend.js';
import { trackTensor } from './autograd/scope.js';
import type { GradNode } from './autograd/tape.js';
import { ShapeError, fmtShape } from './util/errors.js';

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

class Storage {
  refs = 1;
  constructor(readonly backend: Backend, readonly buf: BufferHandle) {}
  release(): void {
    if (--this.refs === 0) this.backend.free(this.buf);
  }
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  /** Set on parameters (leaves) and on every op output that depends on one. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf after backward(). */
  grad: Tensor | null = null;
  /** The op that produced this tensor, while gradients are recorded. */
  node: GradNode | null = null;
  /** Optional name used in error messages and checkpoints (e.g. "conv1.weight"). */
  name: string | null = null;
  private storage: Storage | null;

  private constructor(readonly shape: Shape, readonly dtype: DType, storage: Storage) {
    this.size = sizeOf(shape);
    this.storage = storage;
    trackTensor(this);
  }

  /** Allocates an uninitialised tensor. */
  static empty(backend: Backend, shape: Shape, dtype: DType = 'float32'): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError('empty', `invalid shape ${fmtShape(shape)}`);
    }
    const bytes = Math.max(4, sizeOf(shape) * 4);
    return new Tensor(shape, dtype, new Storage(backend, backend.alloc(bytes)));
  }

  static fromArray(backend: Backend, shape: Shape, values: Float32Array | Int32Array | number[], dtype?: DType): Tensor {
    const dt: DType = dtype ?? (values instanceof Int32Array ? 'int32' : 'float32');
    const n = sizeOf(shape);
    if (values.length !== n) {
      throw new ShapeError('fromArray', `shape ${fmtShape(shape)} needs ${n} values, got ${values.length}`);
    }
    const t = Tensor.empty(backend, shape, dt);
    let arr: Float32Array | Int32Array;
    if (Array.isArray(values)) arr = dt === 'int32' ? Int32Array.from(values) : Float32Array.from(values);
    else if (dt === 'int32' && !(values instanceof Int32Array)) arr = Int32Array.from(values);
    else if (dt === 'float32' && !(values instanceof Float32Array)) arr = Float32Array.from(values);
    else arr = values;
    if (n > 0) backend.upload(t.buf, arr);
    return t;
  }

  static filled(backend: Backend, shape: Shape, value: number): Tensor {
    const t = Tensor.empty(backend, shape);
    if (t.size > 0) backend.fill(t.size, value, t.buf);
    return t;
  }

  get backend(): Backend {
    return this.live().backend;
  }

  get buf(): BufferHandle {
    return this.live().buf;
  }

  get disposed(): boolean {
    return this.storage === null;
  }

  get rank(): number {
    return this.shape.length;
  }

  private live(): Storage {
    if (!this.storage) throw new Error(`tensor ${this.name ?? '#' + this.id} ${fmtShape(this.shape)} used after dispose()`);
    return this.storage;
  }

  /** A view with a new shape over the same buffer (no copy). One dimension may be -1. */
  reshape(shape: Shape): Tensor {
    const dims = [...shape];
    const neg = dims.indexOf(-1);
    if (neg >= 0) {
      const rest = sizeOf(dims.filter((_, i) => i !== neg));
      dims[neg] = rest === 0 ? 0 : this.size / rest;
    }
    if (sizeOf(dims) !== this.size || dims.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new ShapeError('reshape', `cannot view ${fmtShape(this.shape)} as ${fmtShape(shape)}`);
    }
    const s = this.live();
    s.refs++;
    return new Tensor(dims, this.dtype, s);
  }

  /** Values, after all queued work that writes them has finished. */
  async data(): Promise<Float32Array | Int32Array> {
    const s = this.live();
    if (this.size === 0) return this.dtype === 'int32' ? new Int32Array(0) : new Float32Array(0);
    const ab = await s.backend.download(s.buf, this.size * 4);
    return this.dtype === 'int32' ? new Int32Array(ab) : new Float32Array(ab);
  }

  async toArray(): Promise<number[]> {
    return Array.from(await this.data());
  }

  /** Frees this tensor's reference to its buffer. Idempotent. */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    if (this.node?.saved) for (const t of this.node.saved) t.dispose();
    this.node = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  toString(): string {
    return `Tensor(${this.name ? this.name + ' ' : ''}${fmtShape(this.shape)} ${this.dtype} on ${this.storage?.backend.name ?? 'disposed'})`;
  }
}
