// Dawn's errors and device loss, for the WebGPU runtime (runtime.ts).
//
// A validation / out-of-memory / internal error scope is open around every batch (and each
// allocation has its own out-of-memory scope, buffer-pool.ts); their results are collected and
// the next sync() or download() rejects with Dawn's message and the ops of the failing batch.
// Errors no scope caught (uncapturederror) are reported the same way. A lost device makes every
// later call throw `webgpu device lost (<reason>): <message>`.
import type { PipelineCache } from './shaders.js';
import { WebGpuError } from './dispatcher.js';

export class ErrorScopes {
  private readonly checks: Promise<string | null>[] = [];
  private readonly uncaptured: string[] = [];
  private lostMessage: string | null = null;
  private readonly onLost: Array<() => void> = [];

  constructor(private readonly device: GPUDevice, private readonly pipelines: PipelineCache) {
    void device.lost.then((info) => {
      this.lostMessage = `webgpu device lost (${info.reason}): ${info.message || 'no message'}`;
      for (const f of this.onLost) f();
    });
    device.addEventListener('uncapturederror', (ev) => {
      this.uncaptured.push((ev as GPUUncapturedErrorEvent).error.message);
    });
  }

  get lost(): boolean { return this.lostMessage !== null; }
  /** Runs `f` once the device is lost, after the callbacks registered before it. */
  whenLost(f: () => void): void { this.onLost.push(f); }

  /** Throws the device-lost message once the device is gone. */
  alive(): void {
    if (this.lostMessage) throw new WebGpuError(this.lostMessage);
  }

  /** One set of scopes is always open, so every Dawn call lands in some batch's scopes. */
  open(): void {
    this.device.pushErrorScope('internal');
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
  }

  /** Closes the scopes of a batch of `ops` (its result is kept for check()) and opens the next set. */
  close(ops: string[]): void {
    const pops = [this.device.popErrorScope(), this.device.popErrorScope(), this.device.popErrorScope()];
    const what = ops.length ? `in a batch of ${ops.length} ops (${summariseOps(ops)})` : 'outside any op';
    this.checks.push(Promise.all(pops).then((errs) => {
      const kinds = ['validation', 'out-of-memory', 'internal'];
      const i = errs.findIndex((e) => e !== null);
      if (i < 0) return null;
      const compile = [...this.pipelines.compileErrors.values()].join('\n');
      return `webgpu ${kinds[i]} error ${what}: ${errs[i]!.message.trim()}${compile ? `\nshader compile errors:\n${compile}` : ''}`;
    }, (e: Error) => (this.lostMessage ? null : `webgpu: error scope failed: ${e.message}`)));
    this.open();
  }

  /** Keeps a check of one's own (an allocation's scope): its message, or null, for check(). */
  track(check: Promise<string | null>): void {
    this.checks.push(check);
  }

  /** Rejects with the first error Dawn reported since the last check. */
  async check(): Promise<void> {
    const pending = this.checks.splice(0);
    const msgs = (await Promise.all(pending)).filter((m): m is string => m !== null);
    if (this.uncaptured.length) msgs.push(...this.uncaptured.splice(0).map((m) => `webgpu uncaptured error: ${m}`));
    this.alive();
    if (msgs.length) throw new WebGpuError(msgs[0] + (msgs.length > 1 ? ` (and ${msgs.length - 1} more)` : ''));
  }
}

function summariseOps(ops: string[]): string {
  const counts = new Map<string, number>();
  for (const o of ops) counts.set(o, (counts.get(o) ?? 0) + 1);
  const parts = [...counts].map(([o, c]) => (c > 1 ? `${o} x${c}` : o));
  return parts.length > 8 ? `${parts.slice(0, 8).join(', ')}, ...` : parts.join(', ');
}
