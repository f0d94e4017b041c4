// norm_ref.ts: plain-loop float64 references for batch norm (training and evaluation forward,
// training backward), TensorFlow-style LRN (forward and backward) and global average pooling.
// The judges of the kernels in kernels/cpu/batchnorm.cc and lrn.cc, and the float64 forward
// that finite differences run through (test/ops/gradcheck-norm.test.ts).
//
// Layout: x, y, dy, dx [N, C, HW] (NCHW with HW = H*W); per-channel vectors [C].
// Formulas (kernels/cpu/kernels.h):
//   BN train: mean, var (biased) over (N, HW); y = gamma (x - mean) / sqrt(var + eps) + beta;
//             running = (1 - momentum) running + momentum batch, with the unbiased var.
//   BN eval:  the same with the running statistics.
//   LRN:      s = bias + alpha * sum_{|c'-c| <= r, 0 <= c' < C} x[c']^2, y = x s^-beta.
// The backward references are written from the Jacobian directly (not from the kernels'
// rearranged forms), so they check the algebra as well as the arithmetic.

export interface BnTrainRef {
  y: Float64Array;
  mean: Float64Array;
  invstd: Float64Array;
  runningMean: Float64Array;
  runningVar: Float64Array;
}

export function batchnorm2dTrainRef(N: number, C: number, HW: number, x: ArrayLike<number>, gamma: ArrayLike<number>,
                                    beta: ArrayLike<number>, eps: number, momentum: number,
                                    runningMean: ArrayLike<number>, runningVar: ArrayLike<number>): BnTrainRef {
  const M = N * HW;
  const y = new Float64Array(N * C * HW);
  const mean = new Float64Array(C), invstd = new Float64Array(C);
  const rm = new Float64Array(C), rv = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let j = 0; j < HW; j++) s += x[(n * C + c) * HW + j];
    const mu = s / M;
    let ss = 0;
    for (let n = 0; n < N; n++) for (let j = 0; j < HW; j++) ss += (x[(n * C + c) * HW + j] - mu) ** 2;
    const v = ss / M;
    mean[c] = mu;
    invstd[c] = 1 / Math.sqrt(v + eps);
    rm[c] = (1 - momentum) * runningMean[c] + momentum * mu;
    rv[c] = (1 - momentum) * runningVar[c] + momentum * (ss / (M - 1));
    for (let n = 0; n < N; n++)
      for (let j = 0; j < HW; j++) {
        const i = (n * C + c) * HW + j;
        y[i] = gamma[c] * (x[i] - mu) * invstd[c] + beta[c];
      }
  }
  return { y, mean, invstd, runningMean: rm, runningVar: rv };
}

export function batchnorm2dEvalRef(N: number, C: number, HW: number, x: ArrayLike<number>, gamma: ArrayLike<number>,
                                   beta: ArrayLike<number>, runningMean: ArrayLike<number>, runningVar: ArrayLike<number>,
                                   eps: number): Float64Array {
  const y = new Float64Array(N * C * HW);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let j = 0; j < HW; j++) {
        const i = (n * C + c) * HW + j;
        y[i] = gamma[c] * (x[i] - runningMean[c]) / Math.sqrt(runningVar[c] + eps) + beta[c];
      }
  return y;
}

/**
 * Backward of the training forward, from the Jacobian of xhat = (x - mean) invstd:
 *   d xhat_i / d x_k = invstd ([i == k] - 1/M - xhat_i xhat_k / M), so
 *   dx_k = gamma invstd (dy_k - mean(dy) - xhat_k mean(dy xhat)).
 */
export function batchnorm2dBwdRef(N: number, C: number, HW: number, x: ArrayLike<number>, dy: ArrayLike<number>,
                                  gamma: ArrayLike<number>, eps: number) {
  const M = N * HW;
  const dx = new Float64Array(N * C * HW), dgamma = new Float64Array(C), dbeta = new Float64Array(C);
  const { mean, invstd } = batchnorm2dTrainRef(N, C, HW, x, gamma, new Float64Array(C), eps, 0, new Float64Array(C), new Float64Array(C));
  for (let c = 0; c < C; c++) {
    const xhat = (i: number) => (x[i] - mean[c]) * invstd[c];
    let sdy = 0, sdyx = 0;
    for (let n = 0; n < N; n++)
      for (let j = 0; j < HW; j++) {
        const i = (n * C + c) * HW + j;
        sdy += dy[i];
        sdyx += dy[i] * xhat(i);
      }
    dbeta[c] = sdy;
    dgamma[c] = sdyx;
    for (let n = 0; n < N; n++)
      for (let j = 0; j < HW; j++) {
        const i = (n * C + c) * HW + j;
        dx[i] = gamma[c] * invstd[c] * (dy[i] - sdy / M - xhat(i) * sdyx / M);
      }
  }
  return { dx, dgamma, dbeta };
}

export interface LrnParams {
  radius: number;
  bias: number;
  alpha: number;
  beta: number;
}

function lrnScale(N: number, C: number, HW: number, p: LrnParams, x: ArrayLike<number>): Float64Array {
  const s = new Float64Array(N * C * HW);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let j = 0; j < HW; j++) {
        let sq = 0;
        for (let k = Math.max(0, c - p.radius); k <= Math.min(C - 1, c + p.radius); k++) sq += x[(n * C + k) * HW + j] ** 2;
        s[(n * C + c) * HW + j] = p.bias + p.alpha * sq;
      }
  return s;
}

export function lrnFwdRef(N: number, C: number, HW: number, p: LrnParams, x: ArrayLike<number>) {
  const scale = lrnScale(N, C, HW, p, x);
  const y = Float64Array.from(scale, (s, i) => x[i] * Math.pow(s, -p.beta));
  return { y, scale };
}

/**
 * dx_k = sum_i dy_i d y_i / d x_k with, for i and k in one (n, position) column,
 *   d y_i / d x_k = [i == k] s_i^-beta - 2 alpha beta x_i x_k s_i^(-beta-1)   when |i - k| <= r.
 */
export function lrnBwdRef(N: number, C: number, HW: number, p: LrnParams, x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  const s = lrnScale(N, C, HW, p, x);
  const dx = new Float64Array(N * C * HW);
  for (let n = 0; n < N; n++)
    for (let j = 0; j < HW; j++)
      for (let k = 0; k < C; k++) {
        const ik = (n * C + k) * HW + j;
        let g = dy[ik] * Math.pow(s[ik], -p.beta);
        for (let i = Math.max(0, k - p.radius); i <= Math.min(C - 1, k + p.radius); i++) {
          const ii = (n * C + i) * HW + j;
          g -= dy[ii] * 2 * p.alpha * p.beta * x[ii] * x[ik] * Math.pow(s[ii], -p.beta - 1);
        }
        dx[ik] = g;
      }
  return dx;
}

/** Mean over HW: [N, C, HW] -> [N, C]. */
export function globalAvgPoolRef(N: number, C: number, HW: number, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(N * C);
  for (let r = 0; r < N * C; r++) {
    let s = 0;
    for (let j = 0; j < HW; j++) s += x[r * HW + j];
    y[r] = s / HW;
  }
  return y;
}
