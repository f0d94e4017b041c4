// Device time of enqueued work for the WebGPU runtime (runtime.ts), from `timestamp-query`:
// an empty pass writes a timestamp before the work and another after it. The pending batch is
// submitted first, so the first stamp comes after any earlier work, and the batch that ends with
// the second stamp is submitted before waiting on it.
import type { GpuContext } from './device.js';
import type { ErrorScopes } from './error-scopes.js';
import type { CommandBatcher } from './command-batch.js';

export class DeviceTimer {
  private timing: { querySet: GPUQuerySet; resolve: GPUBuffer } | null = null;

  constructor(private readonly ctx: GpuContext, private readonly errors: ErrorScopes, private readonly batcher: CommandBatcher) {}

  /** Seconds of device time of the work `call` enqueues; null when the adapter has no timestamps. */
  async time(call: () => void): Promise<number | null> {
    if (!this.ctx.hasTimestamps) return null;
    this.errors.alive();
    const device = this.ctx.device;
    const u = this.ctx.usage;
    if (!this.timing) {
      this.timing = {
        querySet: device.createQuerySet({ type: 'timestamp', count: 2 }),
        resolve: device.createBuffer({ size: 16, usage: u.QUERY_RESOLVE | u.COPY_SRC }),
      };
    }
    const { querySet, resolve } = this.timing;
    this.batcher.flush();
    let b = this.batcher.open();
    b.encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0 } }).end();
    call();
    b = this.batcher.open();
    this.batcher.endPass(b);
    b.encoder.beginComputePass({ timestampWrites: { querySet, endOfPassWriteIndex: 1 } }).end();
    b.encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
    const staging = device.createBuffer({ size: 16, usage: u.MAP_READ | u.COPY_DST });
    b.encoder.copyBufferToBuffer(resolve, 0, staging, 0, 16);
    b.ops.push('timestamps');
    this.batcher.flush();
    try {
      await staging.mapAsync(this.ctx.mapRead);
      const t = new BigInt64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      await this.errors.check();
      return Number(t[1] - t[0]) * 1e-9;
    } finally {
      staging.destroy();
    }
  }
}
