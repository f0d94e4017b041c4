// The WebGPU runtime's buffers (runtime.ts): live buffers and a pool of free ones by size class.
//
// Sizes are rounded up to a class (dispatcher.ts sizeClass); a freed buffer goes back to its
// class's free list and the next allocation of that class takes it, also within the same
// batch: the queue orders the work, so reuse needs no wait. After the first training steps no
// GPU buffer is created. Each creation runs in its own out-of-memory error scope, reported by
// the next sync() or download() (error-scopes.ts).
import type { BufferHandle, BackendStats } from '../backend.js';
import type { GpuContext } from './device.js';
import type { ErrorScopes } from './error-scopes.js';
import { WebGpuError, WgpuBuffer, fmtBytes, sizeClass } from './dispatcher.js';

export class BufferPool {
  private nextId = 1;
  private readonly live = new Map<number, WgpuBuffer>();
  private liveBytes = 0;
  private readonly pool = new Map<number, GPUBuffer[]>();
  private pooledBuffers = 0;
  private pooledBytes = 0;

  constructor(
    private readonly ctx: GpuContext,
    private readonly errors: ErrorScopes,
    private readonly counters: { buffersCreated: number },
  ) {}

  alloc(bytes: number): WgpuBuffer {
    this.errors.alive();
    if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`webgpu alloc: invalid size ${bytes}`);
    const size = sizeClass(bytes);
    const max = this.ctx.device.limits.maxBufferSize;
    if (size > max) {
      throw new WebGpuError(`webgpu out of memory: a buffer of ${fmtBytes(bytes)} exceeds this device's largest storage buffer ` +
        `(${fmtBytes(max)}, ${this.ctx.description}); use a smaller batch`);
    }
    let gpu = this.pool.get(size)?.pop();
    if (gpu) {
      this.pooledBuffers--;
      this.pooledBytes -= size;
    } else {
      const u = this.ctx.usage;
      const device = this.ctx.device;
      device.pushErrorScope('out-of-memory');
      gpu = device.createBuffer({ size, usage: u.STORAGE | u.COPY_SRC | u.COPY_DST });
      this.counters.buffersCreated++;
      this.errors.track(device.popErrorScope().then((e) => (e ? `webgpu out of memory allocating ${fmtBytes(size)}: ${e.message}` : null)));
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
    if (this.errors.lost) return;
    let list = this.pool.get(buf.size);
    if (!list) this.pool.set(buf.size, (list = []));
    list.push(buf.gpu);
    this.pooledBuffers++;
    this.pooledBytes += buf.size;
  }

  /** Destroys the pooled (free) buffers. */
  empty(): void {
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    this.pooledBuffers = 0;
    this.pooledBytes = 0;
  }

  stats(): BackendStats {
    return { liveBuffers: this.live.size, liveBytes: this.liveBytes, pooledBuffers: this.pooledBuffers, pooledBytes: this.pooledBytes };
  }

  /** `h` as a live webgpu buffer; throws `webgpu <op>: ...` for another backend's handle or a freed one. */
  own(h: BufferHandle, op: string): WgpuBuffer {
    if (!(h instanceof WgpuBuffer)) throw new TypeError(`webgpu ${op}: not a webgpu buffer (id ${h?.id})`);
    if (h.freed) throw new WebGpuError(`webgpu ${op}: buffer ${h.id} was already freed`);
    return h;
  }
}
