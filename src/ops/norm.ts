// Normalisation ops over NCHW: batch norm (training and evaluation), TensorFlow-style local
// response normalisation, and global average pooling. Formulas: kernels/cpu/kernels.h.
import { Tensor } from '../tensor.js';
import { needsGrad, record } from '../autograd/tape.js';
import { ShapeError, fmtShape } from '../util/errors.js';
import { avgPool2d } from './pool.js';
import { reshape } from './shape.js';
import { empty, expectRank, expectSameBackend, opLabel } from './util.js';

export interface BatchNorm2dOptions {
  /** Batch statistics (and a running-statistics update) when true; running statistics when false. */
  training: boolean;
  eps?: number; // default 1e-5
  /** PyTorch's convention: running = (1 - momentum) * running + momentum * batch. Default 0.1. */
  momentum?: number;
}

/**
 * y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel of x [N, C, H, W].
 *
 * Training: mean/var are the batch's (biased var), and runningMean/runningVar are updated in
 * place (running_var with the unbiased var), whether or not gradients are recorded, as in
 * PyTorch. Backward gives dx, dgamma, dbeta through the batch statistics.
 * Evaluation: mean/var are runningMean/runningVar, left untouched. Backward is the affine map
 * dx = dy * gamma / sqrt(var + eps), dgamma = sum dy * xhat, dbeta = sum dy, using copies of
 * the running statistics taken at forward time (a later training step cannot skew it).
 */
export function batchNorm2d(x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor,
                            opts: BatchNorm2dOptions): Tensor {
  const op = opLabel('batchNorm2d', gamma); // names the layer in shape errors (docs/reliability.md)
  expectRank(op, 'input', x, 4);
  const [N, C, H, W] = x.shape;
  for (const [what, t] of [['gamma', gamma], ['beta', beta], ['runningMean', runningMean], ['runningVar', runningVar]] as const) {
    if (t.rank !== 1 || t.shape[0] !== C) throw new ShapeError(op, `${what} must have shape [${C}] for input ${fmtShape(x.shape)}, got ${fmtShape(t.shape)}`);
  }
  if (runningMean.requiresGrad || runningVar.requiresGrad) throw new ShapeError(op, 'running statistics are buffers and cannot require a gradient');
  const eps = opts.eps ?? 1e-5, momentum = opts.momentum ?? 0.1;
  if (!(eps >= 0 && Number.isFinite(eps))) throw new ShapeError(op, `eps must be a finite number >= 0, got ${eps}`);
  if (!(momentum >= 0 && momentum <= 1)) throw new ShapeError(op, `momentum must be in [0, 1], got ${momentum}`);
  const be = expectSameBackend(op, x, gamma, beta, runningMean, runningVar);
  const HW = H * W;
  const y = empty(be, x.shape);
  if (x.size === 0) return y;

  if (!opts.training) {
    be.batchnorm2dFwdEval(N, C, HW, eps, x.buf, gamma.buf, beta.buf, runningMean.buf, runningVar.buf, y.buf);
    if (!needsGrad(x, gamma, beta)) return y;
    const mean = empty(be, [C]), variance = empty(be, [C]);
    be.copy(C, runningMean.buf, 0, mean.buf, 0);
    be.copy(C, runningVar.buf, 0, variance.buf, 0);
    return record(y, 'batchNorm2dEval', [x, gamma, beta], (gy) => {
      const g = gy as Tensor;
      const zeros = Tensor.filled(be, [C], 0);
      const temps: Tensor[] = [zeros];
      let dx: Tensor | null = null, dgamma: Tensor | null = null, dbeta: Tensor | null = null;
      // dx = gy * gamma / sqrt(var + eps): the eval forward with mean 0 and beta 0.
      if (x.requiresGrad) {
        dx = empty(be, x.shape);
        be.batchnorm2dFwdEval(N, C, HW, eps, g.buf, gamma.buf, zeros.buf, zeros.buf, variance.buf, dx.buf);
      }
      if (beta.requiresGrad) {
        dbeta = empty(be, [C]);
        be.biasGrad(N, C, HW, g.buf, dbeta.buf); // sum of gy per channel
      }
      if (gamma.requiresGrad) {
        // xhat = (x - mean) / sqrt(var + eps) is the eval forward with gamma 1 and beta 0;
        // dgamma = sum of gy * xhat per channel.
        const ones = Tensor.filled(be, [C], 1), xhat = empty(be, x.shape);
        temps.push(ones, xhat);
        be.batchnorm2dFwdEval(N, C, HW, eps, x.buf, ones.buf, zeros.buf, mean.buf, variance.buf, xhat.buf);
        be.mul(x.size, g.buf, xhat.buf, xhat.buf);
        dgamma = empty(be, [C]);
        be.biasGrad(N, C, HW, xhat.buf, dgamma.buf);
      }
      for (const t of temps) t.dispose();
      return [dx, dgamma, dbeta];
    }, { saved: [mean, variance] });
  }

  if (N * HW < 2) {
    throw new ShapeError(op, `training needs more than 1 value per channel (input ${fmtShape(x.shape)}): the batch variance is undefined`);
  }
  const saveMean = empty(be, [C]), saveInvstd = empty(be, [C]);
  be.batchnorm2dFwdTrain(N, C, HW, eps, momentum, x.buf, gamma.buf, beta.buf, y.buf, saveMean.buf, saveInvstd.buf,
    runningMean.buf, runningVar.buf);
  return record(y, 'batchNorm2d', [x, gamma, beta], (gy) => {
    const dx = x.requiresGrad ? empty(be, x.shape) : null;
    const dgamma = empty(be, [C]), dbeta = empty(be, [C]);
    be.batchnorm2dBwd(N, C, HW, x.buf, (gy as Tensor).buf, gamma.buf, saveMean.buf, saveInvstd.buf, dx ? dx.buf : null,
      dgamma.buf, dbeta.buf);
    return [dx, dgamma, dbeta];
  }, { saved: [saveMean, saveInvstd] });
}

/** TensorFlow's tf.nn.lrn parameters (PyTorch's LocalResponseNorm(size, alpha, beta, k) is
 *  radius = (size - 1) / 2, alpha = alpha / size, beta, bias = k). */
export interface LrnOptions {
  radius: number; // channels on each side of the centre (depth_radius)
  bias: number;
  alpha: number;
  beta: number;
}

/** y = x / (bias + alpha * sum_{|c'-c| <= radius} x[c']^2)^beta across channels of x [N, C, H, W]. */
export function lrn(x: Tensor, opts: LrnOptions): Tensor {
  const op = 'lrn';
  expectRank(op, 'input', x, 4);
  const { radius, bias, alpha, beta } = opts;
  if (!Number.isInteger(radius) || radius < 0) throw new ShapeError(op, `radius must be an integer >= 0, got ${radius}`);
  for (const [k, v] of [['bias', bias], ['alpha', alpha], ['beta', beta]] as const) {
    if (!Number.isFinite(v)) throw new ShapeError(op, `${k} must be a finite number, got ${v}`);
  }
  const [N, C, H, W] = x.shape;
  const be = x.backend;
  const y = empty(be, x.shape);
  if (x.size === 0) return y;
  const scale = empty(be, x.shape); // bias + alpha * sum x^2, kept for backward
  be.lrnFwd(N, C, H * W, radius, bias, alpha, beta, x.buf, y.buf, scale.buf);
  return record(y, op, [x], (gy) => {
    const dx = empty(be, x.shape);
    be.lrnBwd(N, C, H * W, radius, bias, alpha, beta, x.buf, y.buf, scale.buf, (gy as Tensor).buf, dx.buf);
    return [dx];
  }, { saved: [scale] });
}

/** Mean over H and W: [N, C, H, W] -> [N, C] (average pooling with the full window). */
export function globalAvgPool2d(x: Tensor): Tensor {
  expectRank('globalAvgPool2d', 'input', x, 4);
  const [N, C, H, W] = x.shape;
  return reshape(avgPool2d(x, { kernel: [H, W], stride: [H, W] }), [N, C]);
}
