// Normalisation layers: BatchNorm2d (PyTorch's parameter and buffer names, so checkpoints map
// one to one), LocalResponseNorm (TensorFlow's parameters) and GlobalAvgPool2d.
import type { Backend } from '../backend/backend.js';
import { Tensor } from '../tensor.js';
import { Module } from './module.js';
import * as ops from '../ops/index.js';

export interface BatchNorm2dConfig {
  eps?: number; // default 1e-5
  momentum?: number; // default 0.1 (PyTorch's convention)
  /** Start gamma at 0 instead of 1 (the last BN of a residual branch, "zero-init residual"). */
  zeroInitGamma?: boolean;
}

/**
 * Batch norm over [N, C, H, W]. Parameters 'weight' (gamma) and 'bias' (beta); buffers
 * 'running_mean' (zeros) and 'running_var' (ones). In training mode the batch statistics are
 * used and the running ones updated; in eval mode the running ones are used.
 * (PyTorch's num_batches_tracked buffer is not kept: it only matters with momentum=None.)
 */
export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly eps: number;
  readonly momentum: number;
  constructor(be: Backend, readonly channels: number, readonly opts: BatchNorm2dConfig = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.weight = this.addParam('weight', be, [channels], new Float32Array(channels).fill(opts.zeroInitGamma ? 0 : 1));
    this.bias = this.addParam('bias', be, [channels], new Float32Array(channels));
    this.runningMean = this.addBuffer('running_mean', be, [channels], new Float32Array(channels));
    this.runningVar = this.addBuffer('running_var', be, [channels], new Float32Array(channels).fill(1));
  }
  forward(x: Tensor): Tensor {
    return ops.batchNorm2d(x, this.weight, this.bias, this.runningMean, this.runningVar,
      { training: this.training, eps: this.eps, momentum: this.momentum });
  }
  describe(): string {
    return `BatchNorm2d(${this.channels}, eps=${this.eps}, momentum=${this.momentum}${this.opts.zeroInitGamma ? ', gamma=0' : ''})`;
  }
}

/** Cross-channel LRN with TensorFlow's parameters (tf.nn.lrn's depth_radius, bias, alpha, beta). */
export class LocalResponseNorm extends Module {
  constructor(readonly opts: ops.LrnOptions) { super(); }
  forward(x: Tensor): Tensor { return ops.lrn(x, this.opts); }
  describe(): string {
    const o = this.opts;
    return `LocalResponseNorm(radius=${o.radius}, bias=${o.bias}, alpha=${o.alpha}, beta=${o.beta})`;
  }
}

/** [N, C, H, W] -> [N, C], the mean over H and W. */
export class GlobalAvgPool2d extends Module {
  forward(x: Tensor): Tensor { return ops.globalAvgPool2d(x); }
  describe(): string { return 'GlobalAvgPool2d'; }
}
