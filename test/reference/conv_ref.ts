// conv_ref.ts: plain-loop float64 reference for 2-D convolution (groups = 1), the judge for
// every backend's conv2d kernels and the base for finite-difference and parity tests.
//
// Layouts as in kernels/cpu/kernels.h: x, dx [N, C, H, W]; w, dw [K, C, R, S] (OIHW);
// y, dy [N, K, P, Q]; bias, db [K]. Inputs may be float32 or float64 arrays; all sums are in
// float64, so the only rounding left is float64's (about 1e-16 relative), far below any
// float32 kernel's error. The three functions share one definition of which input element
// meets which weight tap (forEachTap), so they are adjoint to each other by construction.
import type { Conv2dParams } from '../../src/backend/backend.js';

/** Output length along one axis (floor mode, as PyTorch and cuDNN). */
export function convOutSize(size: number, k: number, stride: number, pad: number, dil: number): number {
  return Math.floor((size + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
}

export interface ConvShape {
  n: number; c: number; h: number; w: number; k: number; r: number; s: number;
  stride?: number | [number, number]; pad?: number | [number, number]; dil?: number | [number, number];
}

const pair = (v: number | [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;

/** Full parameter block (output size computed) from a compact shape. */
export function conv2dParams(sh: ConvShape): Conv2dParams {
  const [strideH, strideW] = pair(sh.stride, 1);
  const [padH, padW] = pair(sh.pad, 0);
  const [dilH, dilW] = pair(sh.dil, 1);
  return {
    n: sh.n, c: sh.c, h: sh.h, w: sh.w, k: sh.k, r: sh.r, s: sh.s,
    strideH, strideW, padH, padW, dilH, dilW,
    p: convOutSize(sh.h, sh.r, strideH, padH, dilH),
    q: convOutSize(sh.w, sh.s, strideW, padW, dilW),
  };
}

export const convSizes = (p: Conv2dParams) => ({
  x: p.n * p.c * p.h * p.w,
  w: p.k * p.c * p.r * p.s,
  y: p.n * p.k * p.p * p.q,
});

/**
 * Calls fn(xi, wi, yi) for every (input element, weight, output element) triple that the
 * convolution multiplies together; taps that fall into padding are skipped.
 */
export function forEachTap(p: Conv2dParams, fn: (xi: number, wi: number, yi: number) => void): void {
  for (let n = 0; n < p.n; n++)
    for (let k = 0; k < p.k; k++)
      for (let op = 0; op < p.p; op++)
        for (let oq = 0; oq < p.q; oq++) {
          const yi = ((n * p.k + k) * p.p + op) * p.q + oq;
          for (let c = 0; c < p.c; c++)
            for (let r = 0; r < p.r; r++) {
              const h = op * p.strideH - p.padH + r * p.dilH;
              if (h < 0 || h >= p.h) continue;
              for (let s = 0; s < p.s; s++) {
                const w = oq * p.strideW - p.padW + s * p.dilW;
                if (w < 0 || w >= p.w) continue;
                fn(((n * p.c + c) * p.h + h) * p.w + w, ((k * p.c + c) * p.r + r) * p.s + s, yi);
              }
            }
        }
}

/** y = conv(x, w) + bias. */
export function conv2dFwdRef(p: Conv2dParams, x: ArrayLike<number>, w: ArrayLike<number>,
                             bias: ArrayLike<number> | null): Float64Array {
  const y = new Float64Array(p.n * p.k * p.p * p.q);
  if (bias) for (let i = 0; i < y.length; i++) y[i] = bias[Math.floor(i / (p.p * p.q)) % p.k];
  forEachTap(p, (xi, wi, yi) => { y[yi] += x[xi] * w[wi]; });
  return y;
}

/** dx = dL/dx given dy = dL/dy. */
export function conv2dBwdDataRef(p: Conv2dParams, dy: ArrayLike<number>, w: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(p.n * p.c * p.h * p.w);
  forEachTap(p, (xi, wi, yi) => { dx[xi] += dy[yi] * w[wi]; });
  return dx;
}

/** dw = dL/dw and db = dL/dbias given dy. */
export function conv2dBwdFilterRef(p: Conv2dParams, x: ArrayLike<number>, dy: ArrayLike<number>):
    { dw: Float64Array; db: Float64Array } {
  const dw = new Float64Array(p.k * p.c * p.r * p.s);
  const db = new Float64Array(p.k);
  forEachTap(p, (xi, wi, yi) => { dw[wi] += dy[yi] * x[xi]; });
  for (let i = 0; i < p.n * p.k * p.p * p.q; i++) db[Math.floor(i / (p.p * p.q)) % p.k] += dy[i];
  return { dw, db };
}
