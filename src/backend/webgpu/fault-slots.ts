// Fault slots of the WebGPU runtime (runtime.ts; Dispatcher.fault() in dispatcher.ts).
//
// A kernel that meets bad data it cannot refuse up front (a label outside [0, C)) counts it in
// a fault slot of FAULT_WORDS u32 ([0] the count, [1] ~ the first bad index, [2] and [3] the
// kernel's own); sync() and download() copy the slots armed since the last check back in the
// same submit, clear them, and reject with the op's message.
import type { GpuContext } from './device.js';
import type { ErrorScopes } from './error-scopes.js';
import type { Batch, CommandBatcher } from './command-batch.js';
import { FAULT_WORDS, FaultRecord, WebGpuError, WgpuBuffer, WgpuView } from './dispatcher.js';

/** Fault slots between two checks (each FAULT_WORDS words, padded to minStorageBufferOffsetAlignment, of one buffer). */
const FAULT_SLOTS = 64;

interface FaultSite { slot: number; op: string; describe: (f: FaultRecord) => string }

export class FaultSlots {
  private faultBuf: WgpuBuffer | null = null;
  /** Fault sites armed since the last check, by op and key. */
  private readonly faults = new Map<string, FaultSite>();

  constructor(private readonly ctx: GpuContext, private readonly errors: ErrorScopes, private readonly batcher: CommandBatcher) {}

  /** Whether a site was armed since the last check. */
  get armed(): boolean {
    return this.faults.size > 0;
  }

  fault(op: string, key: string, describe: (f: FaultRecord) => string): WgpuView {
    this.errors.alive();
    const stride = this.faultStride();
    if (!this.faultBuf) {
      const size = FAULT_SLOTS * stride;
      const u = this.ctx.usage;
      // Not a pooled buffer: it lives as long as the runtime and is not counted in stats(). WebGPU zero-fills it.
      const gpu = this.ctx.device.createBuffer({ label: 'imagerate faults', size, usage: u.STORAGE | u.COPY_SRC | u.COPY_DST });
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
    const align = this.ctx.device.limits.minStorageBufferOffsetAlignment;
    return Math.ceil((FAULT_WORDS * 4) / align) * align;
  }

  /**
   * Copies the armed fault slots out and clears them at the end of batch `b`; the returned
   * function (to call once `b` was submitted; calling it again returns the same promise)
   * rejects with the first site that counted a fault.
   */
  encodeCheck(b: Batch): (() => Promise<void>) | null {
    if (this.faults.size === 0 || !this.faultBuf) return null;
    const sites = [...this.faults.values()];
    this.faults.clear();
    const stride = this.faultStride();
    const bytes = sites.length * stride;
    const staging = this.ctx.device.createBuffer({ size: bytes, usage: this.ctx.usage.MAP_READ | this.ctx.usage.COPY_DST });
    this.batcher.endPass(b);
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
}
