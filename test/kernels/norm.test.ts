// Normalisation kernels (kernels/cpu/batchnorm.cc, lrn.cc) through the backend interface,
// against the plain-loop float64 references of test/reference/norm_ref.ts (STYLE rule 1), on
// odd shapes: N 1/3, C 1/3/7/17, H*W 1 / 5x5 / 9x7, plus one shape per op past the kernels'
// parallel threshold (32768 elements), so the threaded path runs. Every output buffer is
// pre-filled with NaN, so an element a kernel fails to write is caught.
//
//   batch norm: training forward (y, saved mean/invstd, running-statistic updates), evaluation
//               forward, backward (dx, dgamma, dbeta; and with dx = null); a channel with
//               mean 1000 and std 1 (where a one-pass E[x^2] - E[x]^2 variance in float would
//               lose every digit); 1 and 2 threads give identical bits.
//   LRN:        radius 0/1/2/5 (5 >= C for small C: the window is clipped at both ends), the
//               AlexNet (r 2, bias 2, alpha 1e-4, beta 0.75) and TF CIFAR-10 (r 4, bias 1,
//               alpha 0.001/9, beta 0.75) settings, and strong settings (alpha 0.1..0.5) that
//               make the cross-channel terms of the gradient large; beta 0.5, 0.75, 1 and 0.6
//               (the kernel's sqrt-only and general pow paths).
//
// Tolerances, in units of U = 2^-24 (float32 half-ulp). The references are float64 on the
// same float32 inputs, so the error is the kernels' own rounding:
//   - BN statistics, y and dgamma/dbeta: sums are in double, each value rounded to float
//     once (<= 1 U relative); the forward uses the exact batch statistics. Bound 4 U rel.
//   - BN dx: the kernel uses save_invstd rounded to float (1 U relative) in a difference
//     dy - mean(dy) - xhat mean(dy xhat) whose terms are up to max|dx| in size, so the
//     bound is 8 U of max|dx| absolute plus 4 U relative.
//   - LRN y: s in double, s^-beta in double, one rounding: 4 U relative. scale likewise.
//   - LRN dx: built from the float y and scale (1 U each) in a difference of terms up to
//     max|dx|: 8 U of max|dx| absolute plus 8 U relative.
// Observed (IMAGERATE_TEST_VERBOSE=1): statistics, y and scale within 1 U relative; BN and
// LRN dx within 2 U of max|dx|; so every bound has a margin of 4x or more.
//
// Backends whose kernels compute in float32 (webgpu: WGSL has no f64) get their own bounds,
// F32_TOL below. Their reductions are float32 sums in a fixed order: per thread in blocks of
// 32, blocks added in sequence, then a 256-wide tree, so a sum's error is at most ~48 U of the
// sum of its terms' magnitudes (S = sum |term|; 32 + M/8192 + 8 roundings for M values, and
// M <= 2175 here), and each pointwise formula rounds 3-6 times
// in float32 (WGSL's sqrt, division and pow are allowed a few ulp more than IEEE):
//   - BN y (train and eval): ~6 roundings of terms up to max|y| (cancellation near y = 0):
//     16 U of max|y| absolute + 8 U relative. The mean's float rounding does not enter: the
//     kernel keeps the mean as mean0 + delta (two floats), so a channel at mean 1000 passes
//     the same bound.
//   - saveMean: a sum of x, 48 U of S/M = mean|x| absolute; saveInvstd and the unbiased
//     running variance: the variance is a sum of squared deviations (all positive): 64 U
//     relative. runningMean: as on the CPU plus the mean's bound.
//   - dgamma, dbeta: sums of dy * xhat and dy: 48 U of S per channel (computed below).
//   - BN dx: k * ((dy - mean dy) - xhat * mean(dy xhat)), the two means carrying 48 U of
//     S/M each: 48 U of max|dx| absolute plus 8 U relative.
//   - LRN y and scale: a window sum of <= 11 squares and s^-beta (sqrt forms or pow): 16 U
//     relative. LRN dx: float32 y/scale quotients summed over the window, then a difference
//     of terms up to max|dx|: 32 U of max|dx| absolute plus 16 U relative.
// Observed on lavapipe (IMAGERATE_TEST_VERBOSE=1, in U of the largest reference value): BN y
// <= 2.3, statistics and running statistics <= 2, dgamma/dbeta <= 7, BN and LRN dx <= 4,
// LRN y and scale <= 4; each bound above is 4x or more away.
import { describe, expect, it } from 'vitest';
import type { Backend, BufferHandle } from '../../src/backend/backend.js';
import { forEachBackend } from '../helpers/backends.js';
import { Tol, expectClose } from '../helpers/assert_close.js';
import { randn } from '../helpers/finite_diff.js';
import {
  LrnParams, batchnorm2dBwdRef, batchnorm2dEvalRef, batchnorm2dTrainRef, lrnBwdRef, lrnFwdRef,
} from '../reference/norm_ref.js';

const U = 2 ** -24;
const VERBOSE = !!process.env.IMAGERATE_TEST_VERBOSE;

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
const relTol = (k: number): Tol => ({ atol: 1e-30, rtol: k * U });
/** k U of the largest reference value, absolute, plus r U relative (differences of large terms). */
const scaledTol = (ref: ArrayLike<number>, k: number, r: number): Tol => ({ atol: k * U * maxAbs(ref), rtol: r * U });

function check(got: Float32Array, ref: ArrayLike<number>, tol: Tol, what: string): void {
  const d = expectClose(got, ref, tol, what);
  if (VERBOSE) console.log(`  ${what}: max|diff| ${d.maxAbs.toExponential(2)} (max|ref| ${d.maxRef.toExponential(2)})`);
}

class Bufs {
  private all: BufferHandle[] = [];
  constructor(private be: Backend) {}
  up(data: Float32Array): BufferHandle {
    const b = this.be.alloc(Math.max(4, data.byteLength));
    this.all.push(b);
    this.be.upload(b, data);
    return b;
  }
  nan(n: number): BufferHandle { return this.up(new Float32Array(n).fill(NaN)); }
  async get(b: BufferHandle, n: number): Promise<Float32Array> { return new Float32Array(await this.be.download(b, 4 * n)); }
  free(): void { for (const b of this.all) this.be.free(b); }
}

/** Runs body once per thread count the backend can be set to (once if it has no threads). */
async function forThreads<T>(be: Backend, body: (threads: number) => Promise<T>): Promise<T[]> {
  if (!be.setThreads || !be.threads) return [await body(0)];
  const before = be.threads();
  try {
    const out: T[] = [];
    for (const t of [1, 2]) {
      be.setThreads(t);
      out.push(await body(t));
    }
    return out;
  } finally {
    be.setThreads(before);
  }
}

function expectSameBits(runs: Float32Array[][], what: string): void {
  for (let r = 1; r < runs.length; r++)
    runs[r].forEach((a, k) => {
      const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(runs[0][k].buffer, runs[0][k].byteOffset, a.length);
      const i = ua.findIndex((v, j) => v !== ub[j]);
      expect(i, `${what}: output ${k} element ${i} differs between 1 and 2 threads`).toBe(-1);
    });
}

// ---------------------------------------------------------------- shapes
interface Shape { n: number; c: number; hw: [number, number]; offset?: number }
const SHAPES: Shape[] = [];
for (const n of [1, 3]) for (const c of [1, 3, 7, 17]) for (const hw of [[1, 1], [5, 5], [9, 7]] as [number, number][]) SHAPES.push({ n, c, hw });
SHAPES.push({ n: 3, c: 17, hw: [29, 25] }); // 36975 elements: the threaded path
SHAPES.push({ n: 3, c: 3, hw: [9, 7], offset: 1000 }); // |mean| >> std
const label = (s: Shape) => `n${s.n} c${s.c} ${s.hw[0]}x${s.hw[1]}${s.offset ? ` mean ${s.offset}` : ''}`;

/** x with a different mean and spread per channel (plus an optional common offset). */
function bnInput(s: Shape, seed: number): Float32Array {
  const hw = s.hw[0] * s.hw[1];
  const x = randn(s.n * s.c * hw, seed);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / hw) % s.c;
    x[i] = (s.offset ?? 0) + (c - s.c / 2) * 0.3 + x[i] * (0.5 + 0.2 * c);
  }
  return x;
}

const LRNS: Array<{ name: string; p: LrnParams; xStd: number }> = [
  { name: 'AlexNet: r 2, bias 2, alpha 1e-4, beta 0.75', p: { radius: 2, bias: 2, alpha: 1e-4, beta: 0.75 }, xStd: 10 },
  { name: 'TF CIFAR-10: r 4, bias 1, alpha 0.001/9, beta 0.75', p: { radius: 4, bias: 1, alpha: 0.001 / 9, beta: 0.75 }, xStd: 10 },
  { name: 'r 0 (pointwise), bias 1, alpha 0.5, beta 0.5', p: { radius: 0, bias: 1, alpha: 0.5, beta: 0.5 }, xStd: 1 },
  { name: 'r 1, bias 1, alpha 0.3, beta 1', p: { radius: 1, bias: 1, alpha: 0.3, beta: 1 }, xStd: 1 },
  { name: 'r 5, bias 0.5, alpha 0.1, beta 0.6 (general pow)', p: { radius: 5, bias: 0.5, alpha: 0.1, beta: 0.6 }, xStd: 1 },
];

/** Per-channel sum of |term| over the (n, hw) values of each channel. */
function channelMagnitude(N: number, C: number, HW: number, term: (i: number, c: number) => number): number {
  let worst = 0;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let j = 0; j < HW; j++) s += Math.abs(term((n * C + c) * HW + j, c));
    worst = Math.max(worst, s);
  }
  return worst;
}

forEachBackend((be) => {
  // Float32 reductions (see the header): webgpu; the CPU accumulates in double.
  const f32 = be.name !== 'cpu';

  describe('batchnorm2d kernels vs float64 reference', () => {
    const eps = 1e-5, momentum = 0.1;
    for (const s of SHAPES) {
      it(label(s), async () => {
        const HW = s.hw[0] * s.hw[1], C = s.c, nx = s.n * C * HW;
        const x = bnInput(s, 1), dy = randn(nx, 2);
        const gamma = randn(C, 3, 0.5).map((v) => 1 + v), beta = randn(C, 4, 0.5);
        const rm0 = randn(C, 5, 0.2), rv0 = Float32Array.from(randn(C, 6), (v) => 0.5 + Math.abs(v));
        const training = s.n * HW > 1;
        const evalRef = batchnorm2dEvalRef(s.n, C, HW, x, gamma, beta, rm0, rv0, Math.fround(eps));

        const runs = await forThreads(be, async (threads) => {
          const tag = threads ? ` (${threads} thread${threads > 1 ? 's' : ''})` : '';
          const b = new Bufs(be);
          try {
            const [xb, dyb, gb, bb] = [b.up(x), b.up(dy), b.up(gamma), b.up(beta)];
            const out: Float32Array[] = [];
            // Evaluation forward.
            const ye = b.nan(nx);
            be.batchnorm2dFwdEval(s.n, C, HW, eps, xb, gb, bb, b.up(rm0), b.up(rv0), ye);
            const yEval = await b.get(ye, nx);
            check(yEval, evalRef, f32 ? scaledTol(evalRef, 16, 8) : relTol(4), `eval y${tag}`);
            out.push(yEval);
            if (!training) return out;
            // Training forward, then backward (with and without dx).
            const [y, sm, si, rm, rv] = [b.nan(nx), b.nan(C), b.nan(C), b.up(rm0), b.up(rv0)];
            be.batchnorm2dFwdTrain(s.n, C, HW, eps, momentum, xb, gb, bb, y, sm, si, rm, rv);
            const [dx, dg, db, dg2, db2] = [b.nan(nx), b.nan(C), b.nan(C), b.nan(C), b.nan(C)];
            be.batchnorm2dBwd(s.n, C, HW, xb, dyb, gb, sm, si, dx, dg, db);
            be.batchnorm2dBwd(s.n, C, HW, xb, dyb, gb, sm, si, null, dg2, db2);
            const [gy, gsm, gsi, grm, grv, gdx, gdg, gdb, gdg2, gdb2] = await Promise.all(
              [[y, nx], [sm, C], [si, C], [rm, C], [rv, C], [dx, nx], [dg, C], [db, C], [dg2, C], [db2, C]]
                .map(([h, n]) => b.get(h as BufferHandle, n as number)));
            // eps and momentum reach the kernel as float32 arguments.
            const ref = batchnorm2dTrainRef(s.n, C, HW, x, gamma, beta, Math.fround(eps), Math.fround(momentum), rm0, rv0);
            // running = 0.9 running + 0.1 batch may cancel: 4 U of the larger term, absolute.
            const runTol = (a: ArrayLike<number>, bb: ArrayLike<number>): Tol => ({ atol: 4 * U * Math.max(maxAbs(a), maxAbs(bb)), rtol: 4 * U });
            const bwd = batchnorm2dBwdRef(s.n, C, HW, x, dy, gamma, Math.fround(eps));
            if (!f32) {
              check(gy, ref.y, relTol(4), `train y${tag}`);
              check(gsm, ref.mean, relTol(4), `saveMean${tag}`);
              check(gsi, ref.invstd, relTol(4), `saveInvstd${tag}`);
              check(grm, ref.runningMean, runTol(rm0, ref.mean), `runningMean${tag}`);
              check(grv, ref.runningVar, runTol(rv0, ref.runningVar), `runningVar (unbiased)${tag}`);
              check(gdx, bwd.dx, scaledTol(bwd.dx, 8, 4), `dx${tag}`);
              check(gdg, bwd.dgamma, scaledTol(bwd.dgamma, 4, 4), `dgamma${tag}`);
              check(gdb, bwd.dbeta, scaledTol(bwd.dbeta, 4, 4), `dbeta${tag}`);
            } else {
              const M = s.n * HW, meanAbs = channelMagnitude(s.n, C, HW, (i) => x[i]) / M;
              const xhat = (i: number, c: number) => (x[i] - ref.mean[c]) * ref.invstd[c];
              const sDy = channelMagnitude(s.n, C, HW, (i) => dy[i]), sDyXhat = channelMagnitude(s.n, C, HW, (i, c) => dy[i] * xhat(i, c));
              check(gy, ref.y, scaledTol(ref.y, 16, 8), `train y${tag}`);
              check(gsm, ref.mean, { atol: 48 * U * meanAbs, rtol: 4 * U }, `saveMean${tag}`);
              check(gsi, ref.invstd, relTol(64), `saveInvstd${tag}`);
              const rmTol = runTol(rm0, ref.mean);
              check(grm, ref.runningMean, { atol: rmTol.atol + 48 * U * meanAbs * Math.fround(momentum), rtol: rmTol.rtol }, `runningMean${tag}`);
              check(grv, ref.runningVar, { atol: runTol(rv0, ref.runningVar).atol, rtol: 64 * U }, `runningVar (unbiased)${tag}`);
              check(gdx, bwd.dx, scaledTol(bwd.dx, 48, 8), `dx${tag}`);
              check(gdg, bwd.dgamma, { atol: 48 * U * sDyXhat, rtol: 4 * U }, `dgamma${tag}`);
              check(gdb, bwd.dbeta, { atol: 48 * U * sDy, rtol: 4 * U }, `dbeta${tag}`);
            }
            expect(Array.from(gdg2), 'dgamma without dx').toEqual(Array.from(gdg));
            expect(Array.from(gdb2), 'dbeta without dx').toEqual(Array.from(gdb));
            out.push(gy, gsm, gsi, grm, grv, gdx, gdg, gdb);
            return out;
          } finally {
            b.free();
          }
        });
        expectSameBits(runs, 'batch norm');
      });
    }

    it('in place: y = x (train and eval) and dx = dy give the same values', async () => {
      const s = { n: 3, c: 7, hw: [5, 5] as [number, number] }, C = 7, HW = 25, nx = 3 * C * HW;
      const x = bnInput(s, 7), dy = randn(nx, 8), gamma = randn(C, 9), beta = randn(C, 10);
      const b = new Bufs(be);
      try {
        const [gb, bb] = [b.up(gamma), b.up(beta)];
        const [y, sm, si, dx, dg, db] = [b.nan(nx), b.nan(C), b.nan(C), b.nan(nx), b.nan(C), b.nan(C)];
        const [xb, dyb] = [b.up(x), b.up(dy)];
        be.batchnorm2dFwdTrain(3, C, HW, 1e-5, 0.1, xb, gb, bb, y, sm, si, b.up(new Float32Array(C)), b.up(new Float32Array(C)));
        be.batchnorm2dBwd(3, C, HW, xb, dyb, gb, sm, si, dx, dg, db);
        const xin = b.up(x), dyin = b.up(dy);
        be.batchnorm2dFwdTrain(3, C, HW, 1e-5, 0.1, xin, gb, bb, xin, b.nan(C), b.nan(C), b.up(new Float32Array(C)), b.up(new Float32Array(C)));
        be.batchnorm2dBwd(3, C, HW, xb, dyin, gb, sm, si, dyin, b.nan(C), b.nan(C));
        const ev = b.nan(nx), evin = b.up(x), rm = b.up(randn(C, 11)), rv = b.up(new Float32Array(C).fill(2));
        be.batchnorm2dFwdEval(3, C, HW, 1e-5, b.up(x), gb, bb, rm, rv, ev);
        be.batchnorm2dFwdEval(3, C, HW, 1e-5, evin, gb, bb, rm, rv, evin);
        expect(Array.from(await b.get(xin, nx))).toEqual(Array.from(await b.get(y, nx)));
        expect(Array.from(await b.get(dyin, nx))).toEqual(Array.from(await b.get(dx, nx)));
        expect(Array.from(await b.get(evin, nx))).toEqual(Array.from(await b.get(ev, nx)));
      } finally {
        b.free();
      }
    });
  });

  describe('lrn kernels vs float64 reference', () => {
    for (const L of LRNS) {
      it(L.name, async () => {
        const shapes = [...SHAPES.filter((s) => !s.offset), { n: 3, c: 17, hw: [33, 25] as [number, number] }];
        for (const s of shapes) {
          const HW = s.hw[0] * s.hw[1], nx = s.n * s.c * HW;
          const x = randn(nx, 20 + s.c, L.xStd), dy = randn(nx, 21 + s.c);
          // The reference sees alpha/bias/beta as the kernel does: float32 arguments.
          const p: LrnParams = { radius: L.p.radius, bias: Math.fround(L.p.bias), alpha: Math.fround(L.p.alpha), beta: Math.fround(L.p.beta) };
          const ref = lrnFwdRef(s.n, s.c, HW, p, x), refDx = lrnBwdRef(s.n, s.c, HW, p, x, dy);
          const runs = await forThreads(be, async (threads) => {
            const tag = `${label(s)}${threads ? `, ${threads} thread(s)` : ''}`;
            const b = new Bufs(be);
            try {
              const [xb, y, sc, dyb, dx] = [b.up(x), b.nan(nx), b.nan(nx), b.up(dy), b.nan(nx)];
              be.lrnFwd(s.n, s.c, HW, L.p.radius, L.p.bias, L.p.alpha, L.p.beta, xb, y, sc);
              be.lrnBwd(s.n, s.c, HW, L.p.radius, L.p.bias, L.p.alpha, L.p.beta, xb, y, sc, dyb, dx);
              const [gy, gs, gdx] = [await b.get(y, nx), await b.get(sc, nx), await b.get(dx, nx)];
              check(gy, ref.y, relTol(f32 ? 16 : 4), `y ${tag}`);
              check(gs, ref.scale, relTol(f32 ? 16 : 4), `scale ${tag}`);
              check(gdx, refDx, f32 ? scaledTol(refDx, 32, 16) : scaledTol(refDx, 8, 8), `dx ${tag}`);
              return [gy, gs, gdx];
            } finally {
              b.free();
            }
          });
          expectSameBits(runs, `lrn ${label(s)}`);
        }
      });
    }
  });

  describe('argument checks (errors name the op)', () => {
    it('batch-norm training needs more than one value per channel', () => {
      const b = new Bufs(be);
      try {
        const v = () => b.up(new Float32Array(3));
        expect(() => be.batchnorm2dFwdTrain(1, 3, 1, 1e-5, 0.1, v(), v(), v(), v(), v(), v(), v(), v()))
          .toThrow(/batchnorm2dFwdTrain: .*more than 1 value per channel/);
      } finally {
        b.free();
      }
    });
    it('buffers too small, aliased statistics, bad momentum and radius', () => {
      const b = new Bufs(be);
      try {
        const v = (n = 12) => b.up(new Float32Array(n));
        expect(() => be.batchnorm2dFwdTrain(2, 3, 2, 1e-5, 0.1, v(), v(3), v(3), v(11), v(3), v(3), v(3), v(3)))
          .toThrow(/batchnorm2dFwdTrain: buffer y has 44 bytes, needs 48/);
        const shared = v(3);
        expect(() => be.batchnorm2dFwdTrain(2, 3, 2, 1e-5, 0.1, v(), v(3), v(3), v(), shared, v(3), shared, v(3)))
          .toThrow(/batchnorm2dFwdTrain: .*must be different buffers/);
        expect(() => be.batchnorm2dFwdTrain(2, 3, 2, 1e-5, 1.5, v(), v(3), v(3), v(), v(3), v(3), v(3), v(3)))
          .toThrow(/batchnorm2dFwdTrain: momentum must be in \[0, 1\]/);
        expect(() => be.batchnorm2dBwd(2, 3, 2, v(), v(), v(3), v(3), v(3), null, v(2), v(3)))
          .toThrow(/batchnorm2dBwd: buffer dgamma has 8 bytes, needs 12/);
        expect(() => be.batchnorm2dFwdEval(2, 3, 2, -1, v(), v(3), v(3), v(3), v(3), v()))
          .toThrow(/batchnorm2dFwdEval: eps must be >= 0/);
        expect(() => be.lrnFwd(2, 3, 2, -1, 1, 1, 0.75, v(), v(), v())).toThrow(/lrnFwd: radius/);
        const x = v();
        expect(() => be.lrnFwd(2, 3, 2, 1, 1, 1, 0.75, x, x, v())).toThrow(/lrnFwd: .*must be different buffers/);
        expect(() => be.lrnBwd(2, 3, 2, 1, 1, 1, 0.75, v(), v(), v(), v(), v(5))).toThrow(/lrnBwd: buffer dx has 20 bytes, needs 48/);
      } finally {
        b.free();
      }
    });
  });
});
