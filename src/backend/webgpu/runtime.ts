// The WebGPU runtime under the webgpu backend: WebGpuRuntime implements the Dispatcher that the
// op glue (ops/*.ts) sees (dispatcher.ts); kernels live in kernels/wgsl/. It checks bindings,
// handles aliasing, and moves data in and out; the parts it is made of are
//   - buffer-pool.ts: buffers and their pool, by size class;
//   - command-batch.ts: batched command encoding and submission, uniforms, bind groups;
//   - error-scopes.ts: Dawn's errors, reported by the next sync() or download(), and device loss;
//   - fault-slots.ts: bad data a kernel counts on the device (labels outside [0, C));
//   - device-timing.ts: device time from timestamp queries.
//
// Aliasing. WebGPU refuses a buffer bound writable and also bound read-only in the same
// dispatch, whatever the ranges (one usage scope per buffer), and refuses two writable
// bindings of one buffer whose ranges overlap (in-place ops such as y = relu(y)). The
// dispatcher therefore runs every writable binding whose buffer is bound again in the same
// dispatch (whole or as a view, overlapping or not) into a pooled temporary the size of the
// bound range, seeded with a copy of that range, and copies it back after the dispatch.
//
// Bindings and views. A buffer may be as large as maxBufferSize, but one storage binding
// covers at most maxStorageBufferBindingSize bytes (128 MiB on lavapipe), lowered for tests by
// IMAGERATE_WEBGPU_MAX_BINDING=<bytes>. Op glue binds a whole buffer, or a view: a byte range
// whose offset is a multiple of minStorageBufferOffsetAlignment (view()). The glue of the
// ops on parameter-sized buffers (flat ops, SGD, sumsq, dropout, GEMM) splits its work into
// views when a buffer is too large to bind whole (ops/chunk.ts, ops/gemm.ts); every other
// op's dispatch refuses such a buffer with the op name, its size and the limit.
import { BufferHandle, BackendStats } from '../backend.js';
import { PipelineCache } from './shaders.js';
import type { GpuContext } from './device.js';
import { BufferPool } from './buffer-pool.js';
import { BindGroupCache, CommandBatcher } from './command-batch.js';
import { DeviceTimer } from './device-timing.js';
import { ErrorScopes } from './error-scopes.js';
import { FaultSlots } from './fault-slots.js';
import {
  Binding, Dispatcher, FaultRecord, Kernel, Params, WebGpuError, WgpuBuffer, WgpuView, fmtBytes,
} from './dispatcher.js';

export * from './dispatcher.js';

export class WebGpuRuntime implements Dispatcher {
  readonly device: GPUDevice;
  readonly limits: GPUSupportedLimits;
  readonly pipelines: PipelineCache;
  private readonly ctx: GpuContext;
  private readonly errors: ErrorScopes;
  private readonly pool: BufferPool;
  private readonly bindGroups: BindGroupCache;
  private readonly batcher: CommandBatcher;
  private readonly faults: FaultSlots;
  private readonly timer: DeviceTimer;
  readonly timestampsAvailable: boolean;
  /** Counters for tests and reports: queue submits, GPU buffers and bind groups created (cache misses), dispatches. */
  readonly counters = { submits: 0, buffersCreated: 0, bindGroupsCreated: 0, dispatches: 0 };
  readonly maxBinding: number;
  readonly viewAlign: number;
  /** ", lowered by IMAGERATE_WEBGPU_MAX_BINDING" where the variable is in effect, for error messages. */
  private readonly lowered: string;

  constructor(ctx: GpuContext) {
    this.ctx = ctx;
    this.device = ctx.device;
    this.limits = ctx.device.limits;
    this.pipelines = new PipelineCache(this.device);
    this.timestampsAvailable = ctx.hasTimestamps;
    const align = this.limits.minStorageBufferOffsetAlignment;
    this.viewAlign = align / 4;
    const env = process.env.IMAGERATE_WEBGPU_MAX_BINDING;
    let maxBinding = this.limits.maxStorageBufferBindingSize;
    this.lowered = '';
    if (env !== undefined && env !== '') {
      const v = Number(env);
      if (!Number.isInteger(v) || v < 4 * align) {
        throw new WebGpuError(`IMAGERATE_WEBGPU_MAX_BINDING must be an integer number of bytes >= ${4 * align}, got '${env}'`);
      }
      if (v < maxBinding) {
        maxBinding = v;
        this.lowered = ', lowered by IMAGERATE_WEBGPU_MAX_BINDING';
      }
    }
    // A multiple of the view alignment, so that aligned chunks fill a binding exactly.
    this.maxBinding = Math.floor(maxBinding / align) * align;
    this.errors = new ErrorScopes(this.device, this.pipelines);
    this.pool = new BufferPool(ctx, this.errors, this.counters);
    this.bindGroups = new BindGroupCache(this.device, this.counters);
    this.batcher = new CommandBatcher(this.device, ctx.usage, this.pipelines, this.bindGroups, this.pool, this.errors, this.counters);
    this.faults = new FaultSlots(ctx, this.errors, this.batcher);
    this.timer = new DeviceTimer(ctx, this.errors, this.batcher);
    // Registered first, so the batch is gone before any whenLost() callback runs.
    this.errors.whenLost(() => this.batcher.drop());
    this.errors.open();
  }

  get description(): string { return this.ctx.description; }
  get lost(): boolean { return this.errors.lost; }
  whenLost(f: () => void): void { this.errors.whenLost(f); }

  /** Rejects with the first error Dawn reported since the last check. */
  checkErrors(): Promise<void> { return this.errors.check(); }

  // ------------------------------------------------------------------ buffers
  alloc(bytes: number): WgpuBuffer { return this.pool.alloc(bytes); }
  free(h: BufferHandle): void { this.pool.free(h); }

  /** Destroys the pooled (free) buffers; the cached bind groups, which hold them, are dropped first. */
  emptyCache(): void {
    this.bindGroups.clear();
    this.pool.empty();
  }

  stats(): BackendStats { return this.pool.stats(); }

  bindable(h: BufferHandle): boolean {
    return this.pool.own(h, 'bind').size <= this.maxBinding;
  }

  view(op: string, h: BufferHandle, offset: number, length: number): WgpuView {
    const buf = this.pool.own(h, op);
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(length) || length < 1) {
      throw new WebGpuError(`${op}: view of buffer ${buf.id} needs a non-negative integer offset and a positive length, got ${offset}, ${length}`);
    }
    if (offset % this.viewAlign !== 0) {
      throw new WebGpuError(`${op}: view offset ${offset * 4} bytes of buffer ${buf.id} is not a multiple of minStorageBufferOffsetAlignment (${this.viewAlign * 4})`);
    }
    // Up to the pooled size: a vec4 binding may round a range up to 16 bytes past what was asked for.
    if ((offset + length) * 4 > buf.size) {
      throw new WebGpuError(`${op}: view [${offset * 4}, ${(offset + length) * 4}) bytes lies outside buffer ${buf.id} of ${buf.size} bytes`);
    }
    if (length * 4 > this.maxBinding) {
      throw new WebGpuError(`${op}: view of ${fmtBytes(length * 4)} exceeds maxStorageBufferBindingSize (${fmtBytes(this.maxBinding)}${this.lowered}) on ${this.description}`);
    }
    return new WgpuView(buf, offset * 4, length * 4);
  }

  need(op: string, name: string, h: BufferHandle, bytes: number): void {
    const buf = this.pool.own(h, op);
    if (buf.bytes < bytes) throw new WebGpuError(`${op}: buffer ${name} has ${buf.bytes} bytes, needs ${bytes}`);
  }

  upload(h: BufferHandle, data: Float32Array | Int32Array): void {
    this.errors.alive();
    const buf = this.pool.own(h, 'upload');
    if (data.byteLength > buf.bytes) throw new WebGpuError(`upload: buffer ${buf.id} has ${buf.bytes} bytes, data has ${data.byteLength}`);
    // writeBuffer runs at queue time: work already encoded on this buffer must be submitted first.
    if (this.batcher.touches(buf.gpu)) this.flush();
    // Dawn copies from an ArrayBuffer; a view on a SharedArrayBuffer is copied out first.
    const src = data.buffer instanceof ArrayBuffer ? data : data.slice();
    this.device.queue.writeBuffer(buf.gpu, 0, src.buffer as ArrayBuffer, src.byteOffset, src.byteLength);
  }

  async download(h: BufferHandle, bytes?: number): Promise<ArrayBuffer> {
    this.errors.alive();
    const buf = this.pool.own(h, 'download');
    const n = bytes ?? buf.bytes;
    if (n > buf.bytes) throw new WebGpuError(`download: buffer ${buf.id} has ${buf.bytes} bytes, asked for ${n}`);
    const size = Math.max(4, Math.ceil(n / 4) * 4);
    const staging = this.device.createBuffer({ size, usage: this.ctx.usage.MAP_READ | this.ctx.usage.COPY_DST });
    const b = this.batcher.open();
    b.ops.push('download');
    this.batcher.endPass(b);
    b.encoder.copyBufferToBuffer(buf.gpu, 0, staging, 0, size);
    const faults = this.faults.encodeCheck(b);
    this.flush();
    try {
      await staging.mapAsync(this.ctx.mapRead);
      const out = staging.getMappedRange().slice(0, n);
      staging.unmap();
      await this.settle(faults);
      return out;
    } catch (e) {
      await this.settle(faults);
      this.errors.alive();
      throw e;
    } finally {
      staging.destroy();
    }
  }

  async sync(): Promise<void> {
    this.errors.alive();
    const faults = this.faults.armed ? this.faults.encodeCheck(this.batcher.open()) : null;
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.settle(faults);
  }

  /** checkErrors(), then the fault check of the last submit (run to its end whatever checkErrors throws). */
  private async settle(faults: (() => Promise<void>) | null): Promise<void> {
    const pending = faults?.().then(() => null, (e: unknown) => e);
    await this.checkErrors();
    const e = await pending;
    if (e) throw e;
  }

  fault(op: string, key: string, describe: (f: FaultRecord) => string): WgpuView {
    return this.faults.fault(op, key, describe);
  }

  // ------------------------------------------------------------------ dispatches
  /** Submits the current batch (if any) without waiting for it. */
  flush(): void { this.batcher.flush(); }

  grid(n: number, wg: number): [number, number] {
    const groups = Math.max(1, Math.ceil(n / wg));
    const maxX = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= maxX) return [groups, 1];
    const y = Math.ceil(groups / maxX);
    if (y > maxX) throw new WebGpuError(`webgpu: ${n} work items exceed the dispatch limit`);
    return [Math.ceil(groups / y), y];
  }

  dispatch(op: string, k: Kernel, p: Params | null, reads: Binding[], writes: Binding[], groups: readonly number[]): void {
    const range = (x: Binding): WgpuView => {
      if (x instanceof WgpuView) {
        this.pool.own(x.buffer, op);
        return x;
      }
      const buf = this.pool.own(x, op);
      if (buf.size > this.maxBinding) {
        throw new WebGpuError(`${op}: buffer of ${fmtBytes(buf.size)} exceeds maxStorageBufferBindingSize (${fmtBytes(this.maxBinding)}${this.lowered}) on ${this.description}`);
      }
      return new WgpuView(buf, 0, buf.size);
    };
    const r = reads.map(range);
    let w = writes.map(range);
    if (groups.some((g) => g === 0)) return; // empty problem
    // Writable bindings whose buffer is bound again go through a temporary (see the header).
    const all = [...r, ...w];
    const aliased = w.map((x, i) => all.some((y, j) => j !== r.length + i && y.buffer === x.buffer));
    const copies: Array<[WgpuBuffer, WgpuView]> = [];
    if (aliased.some(Boolean)) {
      w = w.map((x, i) => {
        if (!aliased[i]) return x;
        const t = this.alloc(x.size);
        this.batcher.copyRange(op, x.buffer, x.offset, t, 0, x.size);
        copies.push([t, x]);
        return new WgpuView(t, 0, x.size);
      });
    }
    const b = this.batcher.dispatch(op, k, p, copies.length ? [...r, ...w] : all, groups);
    for (const [t, x] of copies) {
      this.batcher.copyRange(op, t, 0, x.buffer, x.offset, x.size);
      b.temps.push(t);
    }
  }

  /**
   * Device time of the work `call` enqueues (device-timing.ts). Null when the adapter has no
   * timestamps.
   */
  timeOnDevice(call: () => void): Promise<number | null> { return this.timer.time(call); }

  /** Ends the device (tests provoke device loss this way). */
  destroy(): void {
    this.device.destroy();
  }
}
