// Non-finite gradients: where a diverging run first went wrong (docs/reliability.md,
// "Numerical failure").
//
// GradientCheck runs the backend's sumsqCheck kernel (sum of squares in float64 and the count
// of NaN/Inf values) over every parameter's gradient after backward() and before the
// optimiser step, gathers the 16-byte results into one buffer with `copy`, and downloads that
// buffer once: one extra read per step, which the training loop makes one step late, beside
// the loss. The parameters are listed in forward order (Module.namedParameters(): registration
// order, which is the order the layers run in for every model of the zoo, except that a
// residual block's projection shortcut is listed after the block's main path).
import type { Backend, BufferHandle } from '../backend/backend.js';
import type { Tensor } from '../tensor.js';

/** Per-parameter gradient statistics of one step. */
export interface GradientStats {
  /** Sum of squares of each parameter's gradient (NaN/Inf when the gradient holds one). */
  sumsq: Float64Array;
  /** Count of non-finite values in each parameter's gradient (0 where it had no gradient). */
  nonFinite: Float64Array;
}

export interface NonFiniteReport {
  /** Forward-order index and name of the first parameter whose gradient holds a NaN/Inf. */
  index: number;
  name: string;
  count: number;
  size: number;
  /** How many parameters in all have non-finite gradients. */
  affected: number;
}

export class GradientCheck {
  private readonly scratch: BufferHandle[];
  private readonly gathered: BufferHandle;
  readonly names: string[];

  constructor(private readonly be: Backend, private readonly params: [string, Tensor][]) {
    this.names = params.map(([n]) => n);
    this.scratch = params.map(() => be.alloc(16));
    this.gathered = be.alloc(Math.max(16, 16 * params.length));
  }

  /**
   * Queues the check of every parameter's current gradient and returns the download of the
   * results (ordered after the check on the backend's stream, so later steps cannot overwrite
   * them first). Call after backward(), before the gradients are freed.
   */
  enqueue(): Promise<ArrayBuffer> {
    this.record();
    return this.read();
  }

  /** Queues the check kernels only (a CUDA graph captures these; read() follows each replay). */
  record(): void {
    const be = this.be;
    this.params.forEach(([, p], i) => {
      if (p.grad && p.grad.size > 0) be.sumsqCheck(p.grad.size, p.grad.buf, this.scratch[i]);
      else be.fill(4, 0, this.scratch[i]); // no gradient: two float64 zeros
      be.copy(4, this.scratch[i], 0, this.gathered, 4 * i); // 16 bytes: two float64
    });
  }

  /** Downloads the results of the last recorded check (in stream order). */
  read(): Promise<ArrayBuffer> {
    return this.be.download(this.gathered, 16 * this.params.length);
  }

  /** Splits a downloaded result into per-parameter statistics. */
  static decode(buf: ArrayBuffer, n: number): GradientStats {
    const all = new Float64Array(buf, 0, 2 * n);
    const sumsq = new Float64Array(n), nonFinite = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      sumsq[i] = all[2 * i];
      nonFinite[i] = all[2 * i + 1];
    }
    return { sumsq, nonFinite };
  }

  /** The first parameter (forward order) with a non-finite gradient, or null when all are finite. */
  firstNonFinite(s: GradientStats): NonFiniteReport | null {
    let first = -1, affected = 0;
    for (let i = 0; i < s.nonFinite.length; i++) {
      if (s.nonFinite[i] > 0 || !Number.isFinite(s.sumsq[i])) {
        affected++;
        if (first < 0) first = i;
      }
    }
    if (first < 0) return null;
    return { index: first, name: this.names[first], count: s.nonFinite[first], size: this.params[first][1].size, affected };
  }

  /** Global gradient norm and the parameter with the largest gradient norm. */
  largest(s: GradientStats): { norm: number; name: string; paramNorm: number } {
    let total = 0, best = -1, bestV = -1;
    for (let i = 0; i < s.sumsq.length; i++) {
      total += s.sumsq[i];
      if (s.sumsq[i] > bestV) { bestV = s.sumsq[i]; best = i; }
    }
    return { norm: Math.sqrt(total), name: best >= 0 ? this.names[best] : '', paramNorm: Math.sqrt(Math.max(0, bestV)) };
  }

  dispose(): void {
    for (const b of this.scratch) this.be.free(b);
    this.be.free(this.gathered);
  }
}
