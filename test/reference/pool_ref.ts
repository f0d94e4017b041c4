// pool_ref.ts: plain-loop float64 reference for 2-D max and average pooling, forward and
// backward, the judge for every backend's pooling kernels (and reusable by finite-difference
// and parity tests).
//
// Layouts: x, dx [N, C, H, W]; y, dy, argmax [N, C, P, Q]. Window (p, q) covers input rows
// p*strideH - padH .. + kh - 1 (columns likewise); elements outside the image are padding.
// Semantics (PyTorch's, as in kernels/cpu/kernels.h):
//   max: padding never wins; first maximum in row-major window order on ties; argmax is the
//        flat index h*W + w inside the plane; a window wholly in padding gives -inf and -1.
//   avg: countIncludePad divides by the window clipped to the padded input (kh*kw for every
//        floor-mode output), otherwise by the number of in-bounds elements.
import type { Pool2dParams } from '../../src/backend/backend.js';

/** Output length along one axis (floor mode). */
export function poolOutSize(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

export interface PoolShape {
  n: number; c: number; h: number; w: number; kh: number; kw: number;
  stride?: number | [number, number]; pad?: number | [number, number]; countIncludePad?: boolean;
}

const pair = (v: number | [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;

/** Full parameter block; stride defaults to the window (non-overlapping). */
export function pool2dParams(sh: PoolShape): Pool2dParams {
  const [strideH, strideW] = sh.stride === undefined ? [sh.kh, sh.kw] : pair(sh.stride, 1);
  const [padH, padW] = pair(sh.pad, 0);
  return {
    n: sh.n, c: sh.c, h: sh.h, w: sh.w, kh: sh.kh, kw: sh.kw, strideH, strideW, padH, padW,
    p: poolOutSize(sh.h, sh.kh, strideH, padH), q: poolOutSize(sh.w, sh.kw, strideW, padW),
    countIncludePad: sh.countIncludePad ?? true,
  };
}

interface Window { plane: number; yi: number; h0: number; h1: number; w0: number; w1: number; divInc: number }

/** Visits every output with its clipped in-bounds window [h0,h1) x [w0,w1). */
function forEachWindow(p: Pool2dParams, fn: (win: Window) => void): void {
  for (let plane = 0; plane < p.n * p.c; plane++)
    for (let op = 0; op < p.p; op++)
      for (let oq = 0; oq < p.q; oq++) {
        const hs = op * p.strideH - p.padH, ws = oq * p.strideW - p.padW;
        const he = Math.min(hs + p.kh, p.h + p.padH), we = Math.min(ws + p.kw, p.w + p.padW);
        fn({
          plane, yi: (plane * p.p + op) * p.q + oq,
          h0: Math.max(hs, 0), h1: Math.min(he, p.h), w0: Math.max(ws, 0), w1: Math.min(we, p.w),
          divInc: (he - hs) * (we - ws),
        });
      }
}

export function maxpool2dFwdRef(p: Pool2dParams, x: ArrayLike<number>): { y: Float64Array; argmax: Int32Array } {
  const y = new Float64Array(p.n * p.c * p.p * p.q);
  const argmax = new Int32Array(y.length);
  forEachWindow(p, ({ plane, yi, h0, h1, w0, w1 }) => {
    let best = -Infinity, arg = -1;
    for (let h = h0; h < h1; h++)
      for (let w = w0; w < w1; w++) {
        const v = x[(plane * p.h + h) * p.w + w];
        if (arg < 0 || v > best) { best = v; arg = h * p.w + w; }
      }
    y[yi] = best;
    argmax[yi] = arg;
  });
  return { y, argmax };
}

/** dx of max pooling, routing dy to the argmax that the reference forward picks from x. */
export function maxpool2dBwdRef(p: Pool2dParams, x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  const { argmax } = maxpool2dFwdRef(p, x);
  const dx = new Float64Array(p.n * p.c * p.h * p.w);
  for (let i = 0; i < argmax.length; i++) {
    const plane = Math.floor(i / (p.p * p.q));
    if (argmax[i] >= 0) dx[plane * p.h * p.w + argmax[i]] += dy[i];
  }
  return dx;
}

function divisor(p: Pool2dParams, win: Window): number {
  return p.countIncludePad ? win.divInc : Math.max(0, win.h1 - win.h0) * Math.max(0, win.w1 - win.w0);
}

export function avgpool2dFwdRef(p: Pool2dParams, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(p.n * p.c * p.p * p.q);
  forEachWindow(p, (win) => {
    let sum = 0;
    for (let h = win.h0; h < win.h1; h++)
      for (let w = win.w0; w < win.w1; w++) sum += x[(win.plane * p.h + h) * p.w + w];
    const d = divisor(p, win);
    y[win.yi] = d > 0 ? sum / d : 0;
  });
  return y;
}

export function avgpool2dBwdRef(p: Pool2dParams, dy: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(p.n * p.c * p.h * p.w);
  forEachWindow(p, (win) => {
    const d = divisor(p, win);
    if (d <= 0) return;
    for (let h = win.h0; h < win.h1; h++)
      for (let w = win.w0; w < win.w1; w++) dx[(win.plane * p.h + h) * p.w + w] += dy[win.yi] / d;
  });
  return dx;
}
