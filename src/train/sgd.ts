// SGD with momentum and (coupled) weight decay, PyTorch's formulation:
//   g' = g + wd * w;  v = momentum * v + g';  w -= lr * (nesterov ? g' + momentum * v : v)
// One fused kernel call per parameter (kernels/<backend>/sgd).
import { Tensor } from '../tensor.js';
import { keep } from '../autograd/scope.js';
import type { BufferHandle } from '../backend/backend.js';

export interface SgdOptions {
  momentum: number;
  weightDecay: number;
  nesterov?: boolean;
}

export class Sgd {
  private readonly velocity = new Map<Tensor, Tensor>();
  constructor(readonly params: Tensor[], readonly opts: SgdOptions) {}

  /**
   * Applies one update with learning rate `lr` to every parameter that has a gradient. `lr` may
   * be a device buffer holding it (one float, read when the kernels run: a training step
   * captured into a CUDA graph, src/train/graph-step.ts). `lossScale`: the gradients were
   * computed from a loss multiplied by it, so they are divided by it first, in place.
   */
  step(lr: number | BufferHandle, lossScale = 1): void {
    const { momentum, weightDecay, nesterov = false } = this.opts;
    for (const p of this.params) {
      if (!p.grad) continue;
      const v = this.velocityOf(p);
      const be = p.backend;
      if (lossScale !== 1) be.scale(p.grad.size, 1 / lossScale, p.grad.buf, p.grad.buf);
      if (typeof lr === 'number') be.sgdUpdate(p.size, lr, momentum, weightDecay, nesterov, p.buf, p.grad.buf, v.buf);
      else if (be.sgdUpdateDeviceLr) be.sgdUpdateDeviceLr(p.size, lr, momentum, weightDecay, nesterov, p.buf, p.grad.buf, v.buf);
      else throw new Error(`Sgd.step: ${be.name} cannot read the learning rate from a device buffer (CUDA only)`);
    }
  }

  /**
   * Creates the momentum buffers (zeros) that do not exist yet, for the parameters that train.
   * A captured CUDA graph needs them to exist before the capture: created inside it, their zero
   * fill would be replayed every step.
   */
  createState(): void {
    for (const p of this.params) if (p.requiresGrad) this.velocityOf(p);
  }

  private velocityOf(p: Tensor): Tensor {
    let v = this.velocity.get(p);
    if (!v) {
      v = keep(Tensor.filled(p.backend, p.shape, 0));
      this.velocity.set(p, v);
    }
    return v;
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
