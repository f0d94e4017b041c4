// ref_ops.ts: plain-loop float64 references for the ops that conv_ref.ts and pool_ref.ts do
// not cover: linear, matmul, relu, elementwise add/mul/scale, dropout (given its mask) and
// softmax cross-entropy with label smoothing, and the strided GEMM of the backend interface.
// Inputs may be float32 or float64 arrays; every sum is in float64. Layouts match src/ops:
// linear weight [out, in] (y = x W^T + b), matmul row-major [M, K] x [K, N], logits [N, C]
// with int labels [N]; gemmRef as gemm_f32 (kernels/cpu/kernels.h).
import type { GemmParams } from '../../src/backend/backend.js';

/** y[B, out] = x[B, in] W[out, in]^T + b[out]. */
export function linearRef(B: number, inF: number, outF: number, x: ArrayLike<number>, w: ArrayLike<number>,
                          b: ArrayLike<number> | null): Float64Array {
  const y = new Float64Array(B * outF);
  for (let i = 0; i < B; i++)
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let k = 0; k < inF; k++) s += x[i * inF + k] * w[o * inF + k];
      y[i * outF + o] = s;
    }
  return y;
}

/** c[M, N] = a[M, K] b[K, N]. */
export function matmulRef(M: number, K: number, N: number, a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
      c[i * N + j] = s;
    }
  return c;
}

/**
 * C = alpha op(A) op(B) + beta C on the stored operands (row strides lda, ldb, ldc; A stored
 * K x M when transA, B stored N x K when transB; beta 0 ignores C), as a copy of `c` with the
 * M x N elements replaced; `mag` holds |alpha| sum |a b| + |beta C| per element, for error bounds.
 */
export function gemmRef(g: GemmParams, a: ArrayLike<number>, b: ArrayLike<number>, c: ArrayLike<number>): { y: Float64Array; mag: Float64Array } {
  const y = Float64Array.from(c), mag = new Float64Array(c.length);
  for (let i = 0; i < g.m; i++) {
    for (let j = 0; j < g.n; j++) {
      let s = 0, t = 0;
      for (let p = 0; p < g.k; p++) {
        const av = g.transA ? a[p * g.lda + i] : a[i * g.lda + p];
        const bv = g.transB ? b[j * g.ldb + p] : b[p * g.ldb + j];
        s += av * bv;
        t += Math.abs(av * bv);
      }
      const o = i * g.ldc + j;
      const bc = g.beta === 0 ? 0 : g.beta * c[o];
      y[o] = g.alpha * s + bc;
      mag[o] = Math.abs(g.alpha) * t + Math.abs(bc);
    }
  }
  return { y, mag };
}

export function reluRef(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => (v > 0 ? v : 0));
}

export function addRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (v, i) => v + b[i]);
}

/** Elementwise product; also dropout's forward, y = x * mask. */
export function mulRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (v, i) => v * b[i]);
}

export function scaleRef(x: ArrayLike<number>, alpha: number): Float64Array {
  return Float64Array.from(x, (v) => v * alpha);
}

/**
 * Softmax cross-entropy with label smoothing eps: target t = (1 - eps) onehot + eps / C.
 * Returns the per-example losses, the probabilities and their mean (the op's scalar loss).
 */
export function softmaxXentRef(N: number, C: number, logits: ArrayLike<number>, labels: ArrayLike<number>, eps = 0):
    { loss: number; perExample: Float64Array; probs: Float64Array } {
  const perExample = new Float64Array(N);
  const probs = new Float64Array(N * C);
  let total = 0;
  for (let i = 0; i < N; i++) {
    let m = -Infinity;
    for (let j = 0; j < C; j++) m = Math.max(m, logits[i * C + j]);
    let z = 0;
    for (let j = 0; j < C; j++) z += Math.exp(logits[i * C + j] - m);
    const logZ = m + Math.log(z);
    let l = 0;
    for (let j = 0; j < C; j++) {
      const logp = logits[i * C + j] - logZ;
      probs[i * C + j] = Math.exp(logp);
      const t = (j === labels[i] ? 1 - eps : 0) + eps / C;
      l -= t * logp;
    }
    perExample[i] = l;
    total += l;
  }
  return { loss: total / N, perExample, probs };
}
