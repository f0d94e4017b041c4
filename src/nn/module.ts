// Module: the base of every layer and model. A module owns named parameters (leaf tensors
// that require gradients, kept out of every scope) and child modules, and knows whether it
// is training (dropout active) or evaluating.
import type { Backend } from '../backend/backend.js';
import { Tensor, Shape } from '../tensor.js';
import { keep } from '../autograd/scope.js';
import { Rng } from '../util/rng.js';

export abstract class Module {
  training = true;
  protected readonly children: [string, Module][] = [];
  protected readonly own: [string, Tensor][] = [];
  /** Non-trainable state saved in checkpoints (batch-norm running statistics). */
  protected readonly ownBuffers: [string, Tensor][] = [];

  abstract forward(x: Tensor): Tensor;

  /** Human-readable description of the layer, e.g. "Conv2d(1, 6, k=5, p=2)". */
  abstract describe(): string;

  protected addChild<M extends Module>(name: string, m: M): M {
    this.children.push([name, m]);
    return m;
  }

  protected addParam(name: string, be: Backend, shape: Shape, values: Float32Array): Tensor {
    const t = keep(Tensor.fromArray(be, shape, values));
    t.requiresGrad = true;
    t.name = name;
    this.own.push([name, t]);
    return t;
  }

  protected addBuffer(name: string, be: Backend, shape: Shape, values: Float32Array): Tensor {
    const t = keep(Tensor.fromArray(be, shape, values));
    t.name = name;
    this.ownBuffers.push([name, t]);
    return t;
  }

  /** All buffers (non-trainable state) with dotted names, in a stable order. */
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.ownBuffers) out.push([prefix + n, t]);
    for (const [n, c] of this.children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** All parameters with dotted names ("features.0.weight"), in a stable order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.own) out.push([prefix + n, t]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  train(on = true): this {
    this.training = on;
    for (const [, c] of this.children) c.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  dispose(): void {
    for (const [, t] of this.own) t.dispose();
    for (const [, t] of this.ownBuffers) t.dispose();
    for (const [, c] of this.children) c.dispose();
  }
}

/** Initialisers. fanIn/fanOut follow PyTorch: in_channels * kh * kw for convs. */
export const init = {
  /** He/Kaiming normal for ReLU layers: N(0, 2 / fanIn). */
  heNormal(rng: Rng, n: number, fanIn: number): Float32Array {
    const std = Math.sqrt(2 / fanIn);
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
    return a;
  },
  /** Glorot/Xavier uniform: U(-l, l), l = sqrt(6 / (fanIn + fanOut)). */
  glorotUniform(rng: Rng, n: number, fanIn: number, fanOut: number): Float32Array {
    const l = Math.sqrt(6 / (fanIn + fanOut));
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (rng.uniform() * 2 - 1) * l;
    return a;
  },
  zeros(n: number): Float32Array {
    return new Float32Array(n);
  },
};
