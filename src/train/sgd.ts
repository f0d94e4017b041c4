// SGD with momentum and (coupled) weight decay, PyTorch's formulation:
//   g' = g + wd * w;  v = momentum * v + g';  w -= lr * (nesterov ? g' + momentum * v : v)
// One fused kernel call per parameter (kernels/<backend>/sgd).
import { Tensor } from '../tensor.js';
import { keep } from '../autograd/scope.js';

export interface SgdOptions {
  momentum: number;
  weightDecay: number;
  nesterov?: boolean;
}

export class Sgd {
  private readonly velocity = new Map<Tensor, Tensor>();
  constructor(readonly params: Tensor[], readonly opts: SgdOptions) {}

  /** Applies one update with learning rate `lr` to every parameter that has a gradient. */
  step(lr: number): void {
    for (const p of this.params) {
      if (!p.grad) continue;
      let v = this.velocity.get(p);
      if (!v) {
        v = keep(Tensor.filled(p.backend, p.shape, 0));
        this.velocity.set(p, v);
      }
      p.backend.sgdUpdate(p.size, lr, this.opts.momentum, this.opts.weightDecay, this.opts.nesterov ?? false, p.buf, p.grad.buf, v.buf);
    }
  }

  zeroGrad(): void {
    for (const p of this.params) {
      if (p.grad) {
        p.grad.dispose();
        p.grad = null;
      }
    }
  }

  /** Momentum buffers, by parameter (for checkpoints). */
  state(): Map<Tensor, Tensor> {
    return this.velocity;
  }

  /** Sets the momentum buffer of parameter `p` (restoring a checkpoint). */
  setState(p: Tensor, values: Float32Array): void {
    if (!this.params.includes(p)) throw new Error(`Sgd.setState: ${p} is not one of this optimiser's parameters`);
    if (values.length !== p.size) throw new Error(`Sgd.setState: ${p} has ${p.size} values, momentum given ${values.length}`);
    this.velocity.get(p)?.dispose();
    this.velocity.set(p, keep(Tensor.fromArray(p.backend, p.shape, values)));
  }

  dispose(): void {
    for (const v of this.velocity.values()) v.dispose();
    this.velocity.clear();
  }
}
