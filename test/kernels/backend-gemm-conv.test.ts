// gemm and conv2d (forward, backward-data, backward-filter with db) through the Backend
// interface, on every available backend (forEachBackend: cpu and webgpu here), against the
// float64 references (test/reference/ref_ops.ts, conv_ref.ts).
//
// GEMM: shapes 1x1x1 to 129x257x63 in every transpose combination, each twice: alpha 1, beta 0
// with C filled with NaN (must not leak), and alpha/beta other than 1/0 with leading dimensions
// larger than the minimum whose padding is NaN (read past a row and the result is NaN) and C's
// padding 777 (must come back unchanged). The pads 1 and 4 switch the webgpu kernel between
// its scalar and vec4 loaders; 132x136x20 takes the 128 x 128 block with vec4 loads.
//
// conv2d: odd sizes, stride 2, pad, dilation 2, asymmetric kernels/strides, 1x1 and 7x7,
// channels that are not multiples of 4, batch 1 and 3; channel counts reach all three block
// tiles of the webgpu implicit GEMMs (<= 8, <= 16, <= 64, > 64 rows) and the LeNet shapes reach the
// split-K path of backward-filter. On webgpu the forward and backward-data also run with both
// algorithms (direct and implicit GEMM), whichever the glue's rule would pick. Outputs start as NaN, so an
// element a kernel forgets to write fails.
//
// Tolerance. Every output is a float32 sum of T products (T = K for GEMM; C*R*S, K*R*S and
// N*P*Q for the three convolutions) accumulated in some order (blocked, split, fma or not).
// Any such order satisfies |fl(s) - s| <= gamma_T * sum |terms| with gamma_T ~ T * 2^-24
// (Higham, Accuracy and Stability of Numerical Algorithms, 3.1); scaling and the bias / beta
// term add a few roundings. Per element:
//   |got - ref| <= 2 * (T + 4) * 2^-24 * (sum |terms| + |bias or beta*C term|)
// sum |terms| is the reference run on |inputs|. This is a worst-case bound that needs no tuning
// by shape or backend; an indexing bug (a missing or extra product, ~0.1 here) is far above it.
import { describe, expect, it } from 'vitest';
import type { Backend, BufferHandle, Conv2dParams } from '../../src/backend/backend.js';
import { Rng } from '../../src/util/rng.js';
import { forEachBackend } from '../helpers/backends.js';
import {
  conv2dBwdDataRef, conv2dBwdFilterRef, conv2dFwdRef, conv2dParams, convSizes, type ConvShape,
} from '../reference/conv_ref.js';

const U = 2 ** -24;
// The first use of each webgpu pipeline compiles its shader (0.2-6 s on lavapipe).
const COMPILE_TIMEOUT = { timeout: 60_000 };

function rand(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * rng.uniform() - 1);
}

const abs = (x: ArrayLike<number>): Float64Array => Float64Array.from(x, Math.abs);

async function run(be: Backend, inputs: Array<Float32Array | null>, outputs: Float32Array[],
  call: (bufs: Array<BufferHandle | null>) => void): Promise<Float32Array[]> {
  const bufs = [...inputs, ...outputs].map((h) => {
    if (!h) return null;
    const b = be.alloc(h.byteLength);
    be.upload(b, h);
    return b;
  });
  try {
    call(bufs);
    const res: Float32Array[] = [];
    for (let i = 0; i < outputs.length; i++) res.push(new Float32Array(await be.download(bufs[inputs.length + i]!)));
    return res;
  } finally {
    for (const b of bufs) if (b) be.free(b);
  }
}

/** Checks |got - ref| <= 2 (T + 4) u bound per element; `idx` maps element i to where it sits in `got`. */
function checkBound(got: Float32Array, ref: ArrayLike<number>, absRef: ArrayLike<number>, terms: number, what: string,
  idx: (i: number) => number = (i) => i): void {
  for (let i = 0; i < ref.length; i++) {
    const v = got[idx(i)];
    const bound = 2 * (terms + 4) * U * absRef[i];
    if (!(Math.abs(v - ref[i]) <= bound)) {
      expect.fail(`${what}: element ${i} = ${v}, reference ${ref[i]} (|diff| ${Math.abs(v - ref[i]).toExponential(2)} > bound ${bound.toExponential(2)})`);
    }
  }
}

// ------------------------------------------------------------------ GEMM
const GEMM_SHAPES: Array<[number, number, number]> = [
  [1, 1, 1], [3, 7, 17], [17, 33, 65], [64, 10, 84], [129, 257, 63], [132, 136, 20],
];

// Stores a logical rows x cols matrix as `trans ? cols x rows : rows x cols` with row stride ld, padding NaN.
function store(x: Float32Array, rows: number, cols: number, trans: boolean, ld: number): Float32Array {
  const out = new Float32Array((trans ? cols : rows) * ld).fill(NaN);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[trans ? c * ld + r : r * ld + c] = x[r * cols + c];
  return out;
}

async function gemmCase(be: Backend, m: number, n: number, k: number, ta: boolean, tb: boolean,
  alpha: number, beta: number, pad: number): Promise<void> {
  const rng = new Rng(99, `gemm ${m}x${n}x${k} ${ta} ${tb} ${pad}`);
  const a = rand(m * k, rng), b = rand(k * n, rng);
  const lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
  const c0 = new Float32Array(m * ldc).fill(777);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) c0[i * ldc + j] = beta === 0 ? NaN : 2 * rng.uniform() - 1;
  const [got] = await run(be, [store(a, m, k, ta, lda), store(b, k, n, tb, ldb)], [c0], ([ha, hb, hc]) =>
    be.gemm({ transA: ta, transB: tb, m, n, k, alpha, beta, lda, ldb, ldc }, ha!, hb!, hc!));
  const ref = new Float64Array(m * n), absRef = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0, sa = 0;
      for (let p = 0; p < k; p++) {
        const t = a[i * k + p] * b[p * n + j];
        s += t;
        sa += Math.abs(t);
      }
      const cOld = beta === 0 ? 0 : c0[i * ldc + j];
      ref[i * n + j] = alpha * s + beta * cOld;
      absRef[i * n + j] = Math.abs(alpha) * sa + Math.abs(beta * cOld);
    }
  const what = `gemm ${m}x${n}x${k} transA=${ta} transB=${tb} alpha=${alpha} beta=${beta} pad=${pad}`;
  checkBound(got, ref, absRef, k, what, (i) => Math.floor(i / n) * ldc + (i % n));
  for (let i = 0; i < m; i++)
    for (let j = n; j < ldc; j++) expect(got[i * ldc + j], `${what}: padding C[${i},${j}]`).toBe(777);
}

// ------------------------------------------------------------------ conv2d
const CONV_SHAPES: ConvShape[] = [
  { n: 3, c: 3, h: 11, w: 9, k: 5, r: 3, s: 3, pad: 1 },
  { n: 1, c: 5, h: 13, w: 12, k: 7, r: 3, s: 3, stride: 2, pad: 1 },
  { n: 3, c: 4, h: 10, w: 11, k: 6, r: 3, s: 3, pad: 2, dil: 2 },
  { n: 1, c: 17, h: 7, w: 5, k: 19, r: 1, s: 1 },
  { n: 3, c: 6, h: 9, w: 8, k: 3, r: 1, s: 1, stride: 2 },
  { n: 1, c: 3, h: 23, w: 21, k: 10, r: 7, s: 7, stride: 2, pad: 3 },
  { n: 1, c: 2, h: 12, w: 13, k: 4, r: 3, s: 5, stride: [2, 1], pad: [0, 2], dil: [1, 2] },
  { n: 3, c: 1, h: 28, w: 28, k: 6, r: 5, s: 5, pad: 2 },          // LeNet conv1, batch 3
  { n: 3, c: 6, h: 14, w: 14, k: 16, r: 5, s: 5 },                // LeNet conv2, batch 3
  { n: 1, c: 20, h: 9, w: 9, k: 130, r: 3, s: 3, pad: 1 },        // > 64 output channels
  { n: 1, c: 70, h: 6, w: 7, k: 9, r: 3, s: 2, pad: [1, 0] },     // > 64 input channels
];

const shapeName = (sh: ConvShape): string =>
  `n${sh.n} c${sh.c} ${sh.h}x${sh.w} k${sh.k} ${sh.r}x${sh.s} stride ${sh.stride ?? 1} pad ${sh.pad ?? 0} dil ${sh.dil ?? 1}`;

interface ConvData { p: Conv2dParams; x: Float32Array; w: Float32Array; bias: Float32Array; dy: Float32Array }

function convData(sh: ConvShape): ConvData {
  const p = conv2dParams(sh);
  const sz = convSizes(p);
  const rng = new Rng(7, shapeName(sh));
  return { p, x: rand(sz.x, rng), w: rand(sz.w, rng), bias: rand(p.k, rng), dy: rand(sz.y, rng) };
}

const nan = (n: number): Float32Array => new Float32Array(n).fill(NaN);

type FwdRunner = (be: Backend, p: Conv2dParams, x: BufferHandle, w: BufferHandle, bias: BufferHandle | null, y: BufferHandle) => void;

async function convFwdCase(be: Backend, d: ConvData, withBias: boolean, fwd: FwdRunner, what: string): Promise<void> {
  const { p } = d;
  const [y] = await run(be, [d.x, d.w, withBias ? d.bias : null], [nan(convSizes(p).y)], ([x, w, b, out]) => fwd(be, p, x!, w!, b, out!));
  const bias = withBias ? d.bias : null;
  checkBound(y, conv2dFwdRef(p, d.x, d.w, bias), conv2dFwdRef(p, abs(d.x), abs(d.w), bias ? abs(bias) : null),
    p.c * p.r * p.s, what);
}

type BwdDataRunner = (be: Backend, p: Conv2dParams, dy: BufferHandle, w: BufferHandle, dx: BufferHandle) => void;

async function convBwdDataCase(be: Backend, d: ConvData, bwd: BwdDataRunner, what: string): Promise<void> {
  const { p } = d;
  const [dx] = await run(be, [d.dy, d.w], [nan(convSizes(p).x)], ([dy, w, out]) => bwd(be, p, dy!, w!, out!));
  checkBound(dx, conv2dBwdDataRef(p, d.dy, d.w), conv2dBwdDataRef(p, abs(d.dy), abs(d.w)), p.k * p.r * p.s, what);
}

/** The webgpu forward and backward-data with a forced algorithm (both are checked on every shape). */
async function webgpuForced(algo: 'direct' | 'gemm'): Promise<{ fwd: FwdRunner; bwdData: BwdDataRunner }> {
  const { conv2dFwdDispatch, conv2dBwdDataDispatch } = await import('../../src/backend/webgpu/ops/conv.js');
  const { WebGpuBackend } = await import('../../src/backend/webgpu/backend.js');
  const rt = (be: Backend) => (be as InstanceType<typeof WebGpuBackend>).rt;
  return {
    fwd: (be, p, x, w, b, y) => conv2dFwdDispatch(rt(be), p, x, w, b, y, { algo }),
    bwdData: (be, p, dy, w, dx) => conv2dBwdDataDispatch(rt(be), p, dy, w, dx, { algo }),
  };
}

forEachBackend((be) => {
  describe('gemm vs float64 reference', COMPILE_TIMEOUT, () => {
    for (const [m, n, k] of GEMM_SHAPES) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          it(`${m}x${n}x${k} transA=${ta} transB=${tb}`, async () => {
            await gemmCase(be, m, n, k, ta, tb, 1, 0, 0);
            await gemmCase(be, m, n, k, ta, tb, 0.5, -1.5, 1);
            await gemmCase(be, m, n, k, ta, tb, -2, 1, 4);
          });
        }
      }
    }
  });

  describe('conv2d vs float64 reference', COMPILE_TIMEOUT, () => {
    for (const sh of CONV_SHAPES) {
      const d = convData(sh);
      const name = shapeName(sh);
      it(`forward ${name}`, async () => {
        const viaBackend: FwdRunner = (b, p, x, w, bias, y) => b.conv2dFwd(p, x, w, bias, y);
        await convFwdCase(be, d, true, viaBackend, `conv2dFwd ${name} with bias`);
        await convFwdCase(be, d, false, viaBackend, `conv2dFwd ${name} no bias`);
        if (be.name === 'webgpu') {
          for (const algo of ['direct', 'gemm'] as const) {
            await convFwdCase(be, d, algo === 'gemm', (await webgpuForced(algo)).fwd, `conv2dFwd ${name} ${algo}`);
          }
        }
      });

      it(`backward-data ${name}`, async () => {
        await convBwdDataCase(be, d, (b, p, dy, w, dx) => b.conv2dBwdData(p, dy, w, dx), `conv2dBwdData ${name}`);
        if (be.name === 'webgpu') {
          for (const algo of ['direct', 'gemm'] as const) {
            await convBwdDataCase(be, d, (await webgpuForced(algo)).bwdData, `conv2dBwdData ${name} ${algo}`);
          }
        }
      });

      it(`backward-filter ${name} (with and without db)`, async () => {
        const { p } = d;
        const ref = conv2dBwdFilterRef(p, d.x, d.dy), absRef = conv2dBwdFilterRef(p, abs(d.x), abs(d.dy));
        const terms = p.n * p.p * p.q;
        const [dw, db] = await run(be, [d.x, d.dy], [nan(convSizes(p).w), nan(p.k)],
          ([x, dy, ow, ob]) => be.conv2dBwdFilter(p, x!, dy!, ow!, ob!));
        checkBound(dw, ref.dw, absRef.dw, terms, `conv2dBwdFilter dw ${name}`);
        checkBound(db, ref.db, absRef.db, terms, `conv2dBwdFilter db ${name}`);
        const [dw2] = await run(be, [d.x, d.dy], [nan(convSizes(p).w)], ([x, dy, ow]) => be.conv2dBwdFilter(p, x!, dy!, ow!, null));
        checkBound(dw2, ref.dw, absRef.dw, terms, `conv2dBwdFilter dw ${name} (no db)`);
      });
    }
  });
});
