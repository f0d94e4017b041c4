// The WebGPU runtime under the webgpu backend: buffers and their pool, batched command
// encoding, uniforms, error translation and device timing. The op glue (ops/*.ts) sees only
// the Dispatcher interface below; kernels live in kernels/wgsl/.
//
// Batching. Every op *enqueues* one or more compute dispatches into the current batch: one
// command encoder with one compute pass. A batch is submitted (one queue.submit) when the
// caller waits (download, sync), when an upload must land after work already enqueued on
// that buffer, when device timing starts or stops, or after MAX_DISPATCHES dispatches. A
// training step is therefore one or two submits, not one per op. Inside a pass WebGPU orders
// dispatches and inserts the barriers between them, so reusing a pooled buffer in the same
// batch is safe.
//
// Uniforms. Each dispatch's parameters (sizes, scalars) are packed into the batch's staging
// area at a 256-byte-aligned offset and written to one uniform buffer right before the
// submit. queue.writeBuffer is ordered after earlier submits, so the buffer can be reused by
// the next batch.
//
// Bind groups. Creating one costs ~30 us of CPU in Dawn (measured on the development VM), as
// much as the rest of a dispatch's encoding: they are cached by pipeline and exact bindings
// (GPU buffer, offset, size; the uniform slot too). The pool hands a training step the same
// GPU buffers in the same order every step, so after the first step nearly every dispatch
// hits. A cached group holds its buffers: the cache is emptied with the pool (emptyCache) and
// when it outgrows BIND_GROUP_CACHE entries.
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
//
// Errors. A validation / out-of-memory / internal error scope is open around every batch (and
// each allocation has its own out-of-memory scope); their results are collected and the next
// sync() or download() rejects with Dawn's message and the ops of the failing batch. A lost
// device makes every later call throw `webgpu device lost (<reason>): <message>`.
//
// Faults. A kernel that meets bad data it cannot refuse up front (a label outside [0, C))
// counts it in a fault slot of FAULT_WORDS u32 (Dispatcher.fault(): [0] the count, [1] ~ the
// first bad index, [2] and [3] the kernel's own); sync() and download() copy the slots armed
// since the last check back in the same submit, clear them, and reject with the op's message.
import { BufferHandle, BackendStats } from '../backend.js';
import { PipelineCache } from './shaders.js';
import type { GpuContext } from './device.js';
import {
  Binding, Dispatcher, FAULT_WORDS, FaultRecord, Kernel, Params, WebGpuError, WgpuBuffer, WgpuView, fmtBytes, sizeClass,
} from './dispatcher.js';

export * from './dispatcher.js';

/** Dispatches per batch before it is submitted without waiting. */
const MAX_DISPATCHES = 256;
const UNIFORM_STRIDE = 256;
/** Bind groups kept (see the header); the whole cache is dropped when it grows past this. */
const BIND_GROUP_CACHE = 4096;
/** Fault slots between two checks (each FAULT_WORDS words, padded to minStorageBufferOffsetAlignment, of one buffer). */
const FAULT_SLOTS = 64;

interface FaultSite { slot: number; op: string; describe: (f: FaultRecord) => string }

interface Batch {
  encoder: GPUCommandEncoder;
  pass: GPUComputePassEncoder | null;
  dispatches: number;
  ops: string[];
  uniforms: Uint8Array;
  /** GPU buffers written or read in this (unsubmitted) batch. */
  touched: Set<GPUBuffer>;
  /** Pooled temporaries to hand back once the batch is encoded. */
  temps: WgpuBuffer[];
}

export class WebGpuRuntime implements Dispatcher {
  readonly device: GPUDevice;
  readonly limits: GPUSupportedLimits;
  readonly pipelines: PipelineCache;
  private readonly ctx: GpuContext;
  private nextId = 1;
  private readonly live = new Map<number, WgpuBuffer>();
  private liveBytes = 0;
  private readonly pool = new Map<number, GPUBuffer[]>();
  private pooledBuffers = 0;
  private pooledBytes = 0;
  private readonly uniformBuf: GPUBuffer;
  private batch: Batch | null = null;
  private readonly checks: Promise<string | null>[] = [];
  private readonly uncaptured: string[] = [];
  private lostMessage: string | null = null;
  private timing: { querySet: GPUQuerySet; resolve: GPUBuffer } | null = null;
  private faultBuf: WgpuBuffer | null = null;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  /** Small ids of GPU objects, for the bind-group keys. */
  private readonly objectIds = new WeakMap<object, number>();
  private nextObjectId = 1;
  /** Fault sites armed since the last check, by op and key. */
  private readonly faults = new Map<string, FaultSite>();
  readonly timestampsAvailable: boolean;
  private readonly onLost: Array<() => void> = [];
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
    this.uniformBuf = this.device.createBuffer({
      label: 'imagerate uniforms', size: MAX_DISPATCHES * UNIFORM_STRIDE, usage: ctx.usage.UNIFORM | ctx.usage.COPY_DST,
    });
    void this.device.lost.then((info) => {
      this.lostMessage = `webgpu device lost (${info.reason}): ${info.message || 'no message'}`;
      this.batch = null;
      for (const f of this.onLost) f();
    });
    this.device.addEventListener('uncapturederror', (ev) => {
      this.uncaptured.push((ev as GPUUncapturedErrorEvent).error.message);
    });
    this.openScopes();
  }

  get description(): string { return this.ctx.description; }
  get lost(): boolean { return this.lostMessage !== null; }
  whenLost(f: () => void): void { this.onLost.push(f); }

  private alive(): void {
    if (this.lostMessage) throw new WebGpuError(this.lostMessage);
  }

  // ------------------------------------------------------------------ errors
  // One set of scopes is always open, so every Dawn call lands in some batch's scopes.
  private openScopes(): void {
    this.device.pushErrorScope('internal');
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
  }

  private closeScopes(ops: string[]): void {
    const pops = [this.device.popErrorScope(), this.device.popErrorScope(), this.device.popErrorScope()];
    const what = ops.length ? `in a batch of ${ops.length} ops (${summariseOps(ops)})` : 'outside any op';
    this.checks.push(Promise.all(pops).then((errs) => {
      const kinds = ['validation', 'out-of-memory', 'internal'];
      const i = errs.findIndex((e) => e !== null);
      if (i < 0) return null;
      const compile = [...this.pipelines.compileErrors.values()].join('\n');
      return `webgpu ${kinds[i]} error ${what}: ${errs[i]!.message.trim()}${compile ? `\nshader compile errors:\n${compile}` : ''}`;
    }, (e: Error) => (this.lostMessage ? null : `webgpu: error scope failed: ${e.message}`)));
    this.openScopes();
  }

  /** Rejects with the first error Dawn reported since the last check. */
  async checkErrors(): Promise<void> {
    const pending = this.checks.splice(0);
    const msgs = (await Promise.all(pending)).filter((m): m is string => m !== null);
    if (this.uncaptured.length) msgs.push(...this.uncaptured.splice(0).map((m) => `webgpu uncaptured error: ${m}`));
    this.alive();
    if (msgs.length) throw new WebGpuError(msgs[0] + (msgs.length > 1 ? ` (and ${msgs.length - 1} more)` : ''));
  }

  // ------------------------------------------------------------------ buffers
  alloc(bytes: number): WgpuBuffer {
    this.alive();
    if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`webgpu alloc: invalid size ${bytes}`);
    const size = sizeClass(bytes);
    const max = this.limits.maxBufferSize;
    if (size > max) {
      throw new WebGpuError(`webgpu out of memory: a buffer of ${fmtBytes(bytes)} exceeds this device's largest storage buffer ` +
        `(${fmtBytes(max)}, ${this.description}); use a smaller batch`);
    }
    let gpu = this.pool.get(size)?.pop();
    if (gpu) {
      this.pooledBuffers--;
      this.pooledBytes -= size;
    } else {
      const u = this.ctx.usage;
      this.device.pushErrorScope('out-of-memory');
      gpu = this.device.createBuffer({ size, usage: u.STORAGE | u.COPY_SRC | u.COPY_DST });
      this.counters.buffersCreated++;
      this.checks.push(this.device.popErrorScope().then((e) => (e ? `webgpu out of memory allocating ${fmtBytes(size)}: ${e.message}` : null)));
    }
    const buf = new WgpuBuffer(this.nextId++, bytes, gpu, size);
    this.live.set(buf.id, buf);
    this.liveBytes += bytes;
    return buf;
  }

  free(h: BufferHandle): void {
    const buf = this.own(h, 'free');
    buf.freed = true;
    this.live.delete(buf.id);
    this.liveBytes -= buf.bytes;
    if (this.lostMessage) return;
    let list = this.pool.get(buf.size);
    if (!list) this.pool.set(buf.size, (list = []));
    list.push(buf.gpu);
    this.pooledBuffers++;
    this.pooledBytes += buf.size;
  }

  /** Destroys the pooled (free) buffers. */
  emptyCache(): void {
    this.bindGroups.clear();
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    this.pooledBuffers = 0;
    this.pooledBytes = 0;
  }

  stats(): BackendStats {
    return { liveBuffers: this.live.size, liveBytes: this.liveBytes, pooledBuffers: this.pooledBuffers, pooledBytes: this.pooledBytes };
  }

  private own(h: BufferHandle, op: string): WgpuBuffer {
    if (!(h instanceof WgpuBuffer)) throw new TypeError(`webgpu ${op}: not a webgpu buffer (id ${h?.id})`);
    if (h.freed) throw new WebGpuError(`webgpu ${op}: buffer ${h.id} was already freed`);
    return h;
  }

  bindable(h: BufferHandle): boolean {
    return this.own(h, 'bind').size <= this.maxBinding;
  }

  view(op: string, h: BufferHandle, offset: number, length: number): WgpuView {
    const buf = this.own(h, op);
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
    const buf = this.own(h, op);
    if (buf.bytes < bytes) throw new WebGpuError(`${op}: buffer ${name} has ${buf.bytes} bytes, needs ${bytes}`);
  }

  upload(h: BufferHandle, data: Float32Array | Int32Array): void {
    this.alive();
    const buf = this.own(h, 'upload');
    if (data.byteLength > buf.bytes) throw new WebGpuError(`upload: buffer ${buf.id} has ${buf.bytes} bytes, data has ${data.byteLength}`);
    // writeBuffer runs at queue time: work already encoded on this buffer must be submitted first.
    if (this.batch?.touched.has(buf.gpu)) this.flush();
    // Dawn copies from an ArrayBuffer; a view on a SharedArrayBuffer is copied out first.
    const src = data.buffer instanceof ArrayBuffer ? data : data.slice();
    this.device.queue.writeBuffer(buf.gpu, 0, src.buffer as ArrayBuffer, src.byteOffset, src.byteLength);
  }

  async download(h: BufferHandle, bytes?: number): Promise<ArrayBuffer> {
    this.alive();
    const buf = this.own(h, 'download');
    const n = bytes ?? buf.bytes;
    if (n > buf.bytes) throw new WebGpuError(`download: buffer ${buf.id} has ${buf.bytes} bytes, asked for ${n}`);
    const size = Math.max(4, Math.ceil(n / 4) * 4);
    const staging = this.device.createBuffer({ size, usage: this.ctx.usage.MAP_READ | this.ctx.usage.COPY_DST });
    const b = this.open();
    b.ops.push('download');
    this.endPass(b);
    b.encoder.copyBufferToBuffer(buf.gpu, 0, staging, 0, size);
    const faults = this.encodeFaultCheck(b);
    this.flush();
    try {
      await staging.mapAsync(this.ctx.mapRead);
      const out = staging.getMappedRange().slice(0, n);
      staging.unmap();
      await this.settle(faults);
      return out;
    } catch (e) {
      await this.settle(faults);
      this.alive();
      throw e;
    } finally {
      staging.destroy();
    }
  }

  async sync(): Promise<void> {
    this.alive();
    const faults = this.faults.size ? this.encodeFaultCheck(this.open()) : null;
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

  // ------------------------------------------------------------------ faults
  fault(op: string, key: string, describe: (f: FaultRecord) => string): WgpuView {
    this.alive();
    const stride = this.faultStride();
    if (!this.faultBuf) {
      const size = FAULT_SLOTS * stride;
      const u = this.ctx.usage;
      // Not a pooled buffer: it lives as long as the runtime and is not counted in stats(). WebGPU zero-fills it.
      const gpu = this.device.createBuffer({ label: 'imagerate faults', size, usage: u.STORAGE | u.COPY_SRC | u.COPY_DST });
      this.faultBuf = new WgpuBuffer(0, size, gpu, size);
    }
    const id = `${op}\0${key}`;
    let site = this.faults.get(id);
    if (!site) {
      if (this.faults.size >= FAULT_SLOTS) throw new WebGpuError(`${op}: more than ${FAULT_SLOTS} fault sites between two syncs`);
      site = { slot: this.faults.size, op, describe };
      this.faults.set(id, site);
    }
    return new WgpuView(this.faultBuf, site.slot * stride, FAULT_WORDS * 4);
  }

  /** Bytes between fault slots: FAULT_WORDS words rounded up to minStorageBufferOffsetAlignment. */
  private faultStride(): number {
    const align = this.limits.minStorageBufferOffsetAlignment;
    return Math.ceil((FAULT_WORDS * 4) / align) * align;
  }

  /**
   * Copies the armed fault slots out and clears them at the end of batch `b`; the returned
   * function (to call once `b` was submitted; calling it again returns the same promise)
   * rejects with the first site that counted a fault.
   */
  private encodeFaultCheck(b: Batch): (() => Promise<void>) | null {
    if (this.faults.size === 0 || !this.faultBuf) return null;
    const sites = [...this.faults.values()];
    this.faults.clear();
    const stride = this.faultStride();
    const bytes = sites.length * stride;
    const staging = this.device.createBuffer({ size: bytes, usage: this.ctx.usage.MAP_READ | this.ctx.usage.COPY_DST });
    this.endPass(b);
    b.encoder.copyBufferToBuffer(this.faultBuf.gpu, 0, staging, 0, bytes);
    b.encoder.clearBuffer(this.faultBuf.gpu, 0, bytes);
    b.ops.push('fault check');
    let done: Promise<void> | null = null;
    const read = async (): Promise<void> => {
      try {
        await staging.mapAsync(this.ctx.mapRead);
        const w = new Uint32Array(staging.getMappedRange().slice(0));
        staging.unmap();
        for (const s of sites) {
          const words = w.subarray((s.slot * stride) / 4, (s.slot * stride) / 4 + FAULT_WORDS);
          if (words[0] > 0) throw new WebGpuError(`${s.op}: ${s.describe({ count: words[0], first: 0xffffffff - words[1], words })}`);
        }
      } finally {
        staging.destroy();
      }
    };
    return () => (done ??= read());
  }

  // ------------------------------------------------------------------ batches
  private open(): Batch {
    this.alive();
    if (!this.batch) {
      this.batch = {
        encoder: this.device.createCommandEncoder(), pass: null, dispatches: 0, ops: [],
        uniforms: new Uint8Array(MAX_DISPATCHES * UNIFORM_STRIDE), touched: new Set(), temps: [],
      };
    }
    return this.batch;
  }

  private endPass(b: Batch): void {
    if (b.pass) {
      b.pass.end();
      b.pass = null;
    }
  }

  /** Submits the current batch (if any) without waiting for it. */
  flush(): void {
    const b = this.batch;
    if (!b || this.lostMessage) return;
    this.batch = null;
    this.endPass(b);
    if (b.dispatches > 0) this.device.queue.writeBuffer(this.uniformBuf, 0, b.uniforms.buffer, 0, b.dispatches * UNIFORM_STRIDE);
    this.device.queue.submit([b.encoder.finish()]);
    this.counters.submits++;
    for (const t of b.temps) this.free(t);
    this.closeScopes(b.ops);
  }

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
        this.own(x.buffer, op);
        return x;
      }
      const buf = this.own(x, op);
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
        this.copyRange(op, x.buffer, x.offset, t, 0, x.size);
        copies.push([t, x]);
        return new WgpuView(t, 0, x.size);
      });
    }
    let b = this.open();
    if (b.dispatches >= MAX_DISPATCHES) {
      this.flush();
      b = this.open();
    }
    const pipeline = this.pipelines.get(k.file, k.entry, k.defines ?? {});
    const entries: GPUBindGroupEntry[] = [];
    let key = `${this.objectId(pipeline)}`;
    if (p) {
      const off = b.dispatches * UNIFORM_STRIDE;
      // The whole 256-byte slot is bound: a kernel's Params struct may be longer than what this op sets (the rest reads 0).
      b.uniforms.set(new Uint8Array(p.words.buffer, 0, p.count * 4), off);
      entries.push({ binding: 0, resource: { buffer: this.uniformBuf, offset: off, size: UNIFORM_STRIDE } });
      key += `|u${off}`;
    }
    [...r, ...w].forEach((x, i) => {
      entries.push({ binding: i + 1, resource: { buffer: x.buffer.gpu, offset: x.offset, size: x.size } });
      b.touched.add(x.buffer.gpu);
      key += `|${this.objectId(x.buffer.gpu)}:${x.offset}:${x.size}`;
    });
    let group = this.bindGroups.get(key);
    if (!group) {
      if (this.bindGroups.size >= BIND_GROUP_CACHE) this.bindGroups.clear();
      group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: op });
      this.bindGroups.set(key, group);
      this.counters.bindGroupsCreated++;
    }
    if (!b.pass) b.pass = b.encoder.beginComputePass();
    b.pass.setPipeline(pipeline);
    b.pass.setBindGroup(0, group);
    b.pass.dispatchWorkgroups(groups[0], groups[1] ?? 1, groups[2] ?? 1);
    b.dispatches++;
    this.counters.dispatches++;
    b.ops.push(op);
    for (const [t, x] of copies) {
      this.copyRange(op, t, 0, x.buffer, x.offset, x.size);
      b.temps.push(t);
    }
  }

  private objectId(o: object): number {
    let id = this.objectIds.get(o);
    if (id === undefined) this.objectIds.set(o, (id = this.nextObjectId++));
    return id;
  }

  /** Copies `size` bytes inside the batch (the pass is ended for it). */
  private copyRange(op: string, src: WgpuBuffer, srcOff: number, dst: WgpuBuffer, dstOff: number, size: number): void {
    const b = this.open();
    this.endPass(b);
    b.encoder.copyBufferToBuffer(src.gpu, srcOff, dst.gpu, dstOff, size);
    b.touched.add(src.gpu);
    b.touched.add(dst.gpu);
    b.ops.push(`${op}:copy`);
  }

  // ------------------------------------------------------------------ timing
  /**
   * Device time of the work `call` enqueues, from `timestamp-query`: an empty pass writes a
   * timestamp before the work and another after it. Null when the adapter has no timestamps.
   */
  async timeOnDevice(call: () => void): Promise<number | null> {
    if (!this.timestampsAvailable) return null;
    this.alive();
    const u = this.ctx.usage;
    if (!this.timing) {
      this.timing = {
        querySet: this.device.createQuerySet({ type: 'timestamp', count: 2 }),
        resolve: this.device.createBuffer({ size: 16, usage: u.QUERY_RESOLVE | u.COPY_SRC }),
      };
    }
    const { querySet, resolve } = this.timing;
    this.flush();
    let b = this.open();
    b.encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0 } }).end();
    call();
    b = this.open();
    this.endPass(b);
    b.encoder.beginComputePass({ timestampWrites: { querySet, endOfPassWriteIndex: 1 } }).end();
    b.encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
    const staging = this.device.createBuffer({ size: 16, usage: u.MAP_READ | u.COPY_DST });
    b.encoder.copyBufferToBuffer(resolve, 0, staging, 0, 16);
    b.ops.push('timestamps');
    this.flush();
    try {
      await staging.mapAsync(this.ctx.mapRead);
      const t = new BigInt64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      await this.checkErrors();
      return Number(t[1] - t[0]) * 1e-9;
    } finally {
      staging.destroy();
    }
  }

  /** Ends the device (tests provoke device loss this way). */
  destroy(): void {
    this.device.destroy();
  }
}

function summariseOps(ops: string[]): string {
  const counts = new Map<string, number>();
  for (const o of ops) counts.set(o, (counts.get(o) ?? 0) + 1);
  const parts = [...counts].map(([o, c]) => (c > 1 ? `${o} x${c}` : o));
  return parts.length > 8 ? `${parts.slice(0, 8).join(', ')}, ...` : parts.join(', ');
}
