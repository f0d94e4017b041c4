// Command encoding and submission for the WebGPU runtime (runtime.ts).
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
import type { BufferPool } from './buffer-pool.js';
import type { ErrorScopes } from './error-scopes.js';
import type { PipelineCache } from './shaders.js';
import type { Kernel, Params, WgpuBuffer, WgpuView } from './dispatcher.js';

/** Dispatches per batch before it is submitted without waiting. */
const MAX_DISPATCHES = 256;
const UNIFORM_STRIDE = 256;
/** Bind groups kept (see the header); the whole cache is dropped when it grows past this. */
const BIND_GROUP_CACHE = 4096;

export interface Batch {
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

/** Bind groups by pipeline and exact bindings (see the header). */
export class BindGroupCache {
  private readonly groups = new Map<string, GPUBindGroup>();
  /** Small ids of GPU objects, for the keys. */
  private readonly objectIds = new WeakMap<object, number>();
  private nextObjectId = 1;

  constructor(private readonly device: GPUDevice, private readonly counters: { bindGroupsCreated: number }) {}

  /** The group of `pipeline` binding `uniform` (if any) at 0 and `views` at 1.., made on a miss. */
  get(op: string, pipeline: GPUComputePipeline, uniform: GPUBufferBinding | null, views: WgpuView[]): GPUBindGroup {
    let key = `${this.objectId(pipeline)}`;
    if (uniform) key += `|u${uniform.offset}`;
    for (const x of views) key += `|${this.objectId(x.buffer.gpu)}:${x.offset}:${x.size}`;
    let group = this.groups.get(key);
    if (!group) { // the entries only on a miss: after the first step nearly every dispatch hits
      const entries: GPUBindGroupEntry[] = uniform ? [{ binding: 0, resource: uniform }] : [];
      views.forEach((x, i) => entries.push({ binding: i + 1, resource: { buffer: x.buffer.gpu, offset: x.offset, size: x.size } }));
      if (this.groups.size >= BIND_GROUP_CACHE) this.groups.clear();
      group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: op });
      this.groups.set(key, group);
      this.counters.bindGroupsCreated++;
    }
    return group;
  }

  clear(): void {
    this.groups.clear();
  }

  private objectId(o: object): number {
    let id = this.objectIds.get(o);
    if (id === undefined) this.objectIds.set(o, (id = this.nextObjectId++));
    return id;
  }
}

/** The batch being encoded, and its submission. */
export class CommandBatcher {
  private batch: Batch | null = null;
  private readonly uniformBuf: GPUBuffer;
  /** Every batch's uniform words, staged here: queue.writeBuffer copies them at flush. */
  private readonly uniforms = new Uint8Array(MAX_DISPATCHES * UNIFORM_STRIDE);

  constructor(
    private readonly device: GPUDevice,
    usage: { UNIFORM: number; COPY_DST: number },
    private readonly pipelines: PipelineCache,
    private readonly bindGroups: BindGroupCache,
    private readonly pool: BufferPool,
    private readonly errors: ErrorScopes,
    private readonly counters: { submits: number; dispatches: number },
  ) {
    this.uniformBuf = device.createBuffer({
      label: 'imagerate uniforms', size: MAX_DISPATCHES * UNIFORM_STRIDE, usage: usage.UNIFORM | usage.COPY_DST,
    });
  }

  /** The current batch, begun if there is none. */
  open(): Batch {
    this.errors.alive();
    if (!this.batch) {
      this.batch = {
        encoder: this.device.createCommandEncoder(), pass: null, dispatches: 0, ops: [],
        uniforms: this.uniforms, touched: new Set(), temps: [],
      };
    }
    return this.batch;
  }

  /** Ends the batch's compute pass, for commands that cannot run inside one (copies, clears, timestamps). */
  endPass(b: Batch): void {
    if (b.pass) {
      b.pass.end();
      b.pass = null;
    }
  }

  /** Whether the unsubmitted batch uses `gpu`. */
  touches(gpu: GPUBuffer): boolean {
    return this.batch?.touched.has(gpu) ?? false;
  }

  /** Forgets the unsubmitted batch (the device is lost). */
  drop(): void {
    this.batch = null;
  }

  /** Submits the current batch (if any) without waiting for it. */
  flush(): void {
    const b = this.batch;
    if (!b || this.errors.lost) return;
    this.batch = null;
    this.endPass(b);
    if (b.dispatches > 0) this.device.queue.writeBuffer(this.uniformBuf, 0, b.uniforms.buffer, 0, b.dispatches * UNIFORM_STRIDE);
    this.device.queue.submit([b.encoder.finish()]);
    this.counters.submits++;
    for (const t of b.temps) this.pool.free(t);
    this.errors.close(b.ops);
  }

  /** Encodes one dispatch of `k` with `views` bound at 1.. (reads, then writes); the batch is submitted first when full. */
  dispatch(op: string, k: Kernel, p: Params | null, views: WgpuView[], groups: readonly number[]): Batch {
    let b = this.open();
    if (b.dispatches >= MAX_DISPATCHES) {
      this.flush();
      b = this.open();
    }
    const pipeline = this.pipelines.get(k.file, k.entry, k.defines ?? {});
    let uniform: GPUBufferBinding | null = null;
    if (p) {
      const off = b.dispatches * UNIFORM_STRIDE;
      // The whole 256-byte slot is bound: a kernel's Params struct may be longer than what this op sets (the rest reads 0).
      b.uniforms.set(new Uint8Array(p.words.buffer, 0, p.count * 4), off);
      uniform = { buffer: this.uniformBuf, offset: off, size: UNIFORM_STRIDE };
    }
    for (const x of views) b.touched.add(x.buffer.gpu);
    const group = this.bindGroups.get(op, pipeline, uniform, views);
    if (!b.pass) b.pass = b.encoder.beginComputePass();
    b.pass.setPipeline(pipeline);
    b.pass.setBindGroup(0, group);
    b.pass.dispatchWorkgroups(groups[0], groups[1] ?? 1, groups[2] ?? 1);
    b.dispatches++;
    this.counters.dispatches++;
    b.ops.push(op);
    return b;
  }

  /** Copies `size` bytes inside the batch (the pass is ended for it). */
  copyRange(op: string, src: WgpuBuffer, srcOff: number, dst: WgpuBuffer, dstOff: number, size: number): void {
    const b = this.open();
    this.endPass(b);
    b.encoder.copyBufferToBuffer(src.gpu, srcOff, dst.gpu, dstOff, size);
    b.touched.add(src.gpu);
    b.touched.add(dst.gpu);
    b.ops.push(`${op}:copy`);
  }
}
