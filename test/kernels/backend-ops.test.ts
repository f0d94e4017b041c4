// The non-GEMM ops of every backend against float64 references (STYLE rules 1 and 2): pooling
// (max with argmax, average with count_include_pad on and off; forward and backward; odd
// shapes, padding, stride > kernel, windows wholly in padding, global pooling), biasGrad,
// sumsqCheck (with NaN/inf counting and a multi-chunk n), dropout (the mask equal, bit for bit,
// to the CPU backend's and to a BigInt splitmix64 reference), softmax cross-entropy forward
// and backward with label smoothing, and the SGD step (momentum, weight decay, Nesterov).
// Every output is pre-filled with NaN (argmax with -7), so an unwritten element is caught.
//
// Tolerances, in U = 2^-24 (float32 half-ulp); the references are float64 on the same float32
// inputs, so each bound is the kernel's own rounding:
//   - max pool forward is a selection: y and argmax compared exactly. Max-pool backward adds
//     the dy routed to an element (<= ceil(k/s)^2 terms): 4 U per term of the largest |dy|.
//   - average pool: a float32 sum of <= kh*kw terms, one division: 4 U per term of the
//     largest |value| absolute, plus 4 U relative. Global pooling sums a plane (blocked plus
//     a tree on webgpu): 48 U of sum|x| / HW.
//   - biasGrad: float32 sums on webgpu in blocks of 32 and a 256-wide tree (at most ~45
//     sequential roundings of partial sums of |dy|): 64 U of sum|dy| per channel. The CPU sums
//     in double (<= 1 U), well inside the same bound.
//   - sumsqCheck: webgpu sums squares in float32 (32-term strides, blocked partials, two trees;
//     power-of-two rescaling is exact): relative 64 U of the (all-positive) sum, also for finite
//     values whose float32 squares would overflow; the count is exact.
//   - softmax forward: exp/log in float32 (WGSL allows exp an error of 3 + 2|x| ulp; lavapipe's
//     is within a few ulp): probs 2e-6 absolute + 64 U relative, loss 1e-6 + 64 U relative.
//     Backward scale * (probs - t): the float32 probs the forward wrote, compared against the
//     reference formula on those probs, 4 U of scale relative to max(1, |p - t|).
//   - SGD: float32 formula (as PyTorch and the CPU kernel); a GPU may fuse a multiply-add,
//     so 4 U of the largest term, per step, against a float32-rounded JS replay.
import { describe, expect, it } from 'vitest';
import type { Backend, BufferHandle, Pool2dParams } from '../../src/backend/backend.js';
import { openBackend } from '../../src/backend/registry.js';
import { forEachBackend } from '../helpers/backends.js';
import { Tol, expectClose } from '../helpers/assert_close.js';
import { distinctShuffled, randLabels, randn } from '../helpers/finite_diff.js';
import {
  avgpool2dBwdRef, avgpool2dFwdRef, maxpool2dBwdRef, maxpool2dFwdRef, pool2dParams, type PoolShape,
} from '../reference/pool_ref.js';
import { softmaxXentRef } from '../reference/ref_ops.js';

const U = 2 ** -24;

class Bufs {
  private all: BufferHandle[] = [];
  constructor(private be: Backend) {}
  up(data: Float32Array | Int32Array): BufferHandle {
    const b = this.be.alloc(Math.max(4, data.byteLength));
    this.all.push(b);
    this.be.upload(b, data);
    return b;
  }
  nan(n: number): BufferHandle { return this.up(new Float32Array(n).fill(NaN)); }
  ints(n: number, v: number): BufferHandle { return this.up(new Int32Array(n).fill(v)); }
  async f32(b: BufferHandle, n: number): Promise<Float32Array> { return new Float32Array(await this.be.download(b, 4 * n)); }
  async i32(b: BufferHandle, n: number): Promise<Int32Array> { return new Int32Array(await this.be.download(b, 4 * n)); }
  async f64(b: BufferHandle, n: number): Promise<Float64Array> { return new Float64Array(await this.be.download(b, 8 * n)); }
  free(): void { for (const b of this.all) this.be.free(b); }
}

async function withBufs<T>(be: Backend, body: (b: Bufs) => Promise<T>): Promise<T> {
  const b = new Bufs(be);
  try {
    return await body(b);
  } finally {
    b.free();
  }
}

const maxAbs = (a: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

// ---------------------------------------------------------------- pooling cases
const POOLS: PoolShape[] = [
  { n: 2, c: 3, h: 9, w: 8, kh: 2, kw: 2 },                                   // LeNet-style 2x2/2, odd h
  { n: 1, c: 3, h: 17, w: 15, kh: 3, kw: 3, stride: 2, pad: 1 },               // ResNet stem, overlapping
  { n: 2, c: 2, h: 7, w: 9, kh: 3, kw: 3, stride: 1, pad: 1 },                 // every input in 9 windows
  { n: 1, c: 5, h: 5, w: 11, kh: 2, kw: 3, stride: [1, 2], pad: [1, 0] },      // asymmetric
  { n: 2, c: 3, h: 10, w: 13, kh: 2, kw: 2, stride: 3, pad: 1 },               // stride > kernel
  { n: 1, c: 2, h: 11, w: 11, kh: 1, kw: 1, stride: 4 },                       // 1x1, stride 4 (skipped inputs)
  { n: 1, c: 2, h: 9, w: 7, kh: 5, kw: 5, stride: 3, pad: 2 },                 // big window, padding
  { n: 1, c: 2, h: 1, w: 3, kh: 1, kw: 2, stride: 1, pad: [1, 1] },            // windows wholly in padding
  { n: 3, c: 5, h: 7, w: 7, kh: 7, kw: 7 },                                    // global 7x7
  { n: 2, c: 3, h: 1, w: 1, kh: 1, kw: 1 },                                    // 1x1 plane
  { n: 2, c: 70, h: 33, w: 31, kh: 33, kw: 31 },                               // global, 1023 values a plane
  { n: 1, c: 3, h: 91, w: 93, kh: 91, kw: 93 },                                // global, a whole workgroup a plane
];

const poolLabel = (p: Pool2dParams) =>
  `n${p.n} c${p.c} ${p.h}x${p.w} window ${p.kh}x${p.kw} stride ${p.strideH},${p.strideW} pad ${p.padH},${p.padW} -> ${p.p}x${p.q}`;

/** Contributions an input can receive: windows covering one element along each axis. */
const overlap = (p: Pool2dParams) => Math.ceil(p.kh / p.strideH) * Math.ceil(p.kw / p.strideW);

forEachBackend((be) => {
  const gpu = be.name !== 'cpu';

  describe('pooling vs float64 reference', () => {
    for (const shape of POOLS) {
      const p0 = pool2dParams(shape);
      it(poolLabel(p0), async () => {
        const nx = p0.n * p0.c * p0.h * p0.w, ny = p0.n * p0.c * p0.p * p0.q;
        const x = distinctShuffled(nx, 11, 1 / 1024), dy = randn(ny, 12);
        await withBufs(be, async (b) => {
          // Max pool: y and argmax exactly (a selection), dx within the sum's rounding.
          const xb = b.up(x), dyb = b.up(dy);
          const y = b.nan(ny), am = b.ints(ny, -7), dx = b.nan(nx);
          be.maxpool2dFwd(p0, xb, y, am);
          be.maxpool2dBwd(p0, dyb, am, dx);
          const ref = maxpool2dFwdRef(p0, x);
          expect(Array.from(await b.i32(am, ny)), 'argmax').toEqual(Array.from(ref.argmax));
          expect(Array.from(await b.f32(y, ny)), 'max y').toEqual(Array.from(ref.y));
          const terms = overlap(p0);
          expectClose(await b.f32(dx, nx), maxpool2dBwdRef(p0, x, dy), { atol: 4 * terms * U * maxAbs(dy), rtol: 0 }, 'max dx');
          // Average pool, both divisor rules.
          for (const countIncludePad of [true, false]) {
            const p = { ...p0, countIncludePad };
            const ya = b.nan(ny), dxa = b.nan(nx);
            be.avgpool2dFwd(p, xb, ya);
            be.avgpool2dBwd(p, dyb, dxa);
            const area = p.kh * p.kw;
            const fwdTol: Tol = area > 49 ? { atol: 48 * U * maxAbs(x), rtol: 0 } : { atol: 4 * area * U * maxAbs(x), rtol: 4 * U };
            expectClose(await b.f32(ya, ny), avgpool2dFwdRef(p, x), fwdTol, `avg y (countIncludePad ${countIncludePad})`);
            expectClose(await b.f32(dxa, nx), avgpool2dBwdRef(p, dy), { atol: 4 * terms * U * maxAbs(dy), rtol: 4 * U },
              `avg dx (countIncludePad ${countIncludePad})`);
          }
        });
      });
    }
  });

  describe('biasGrad vs float64 reference', () => {
    const SHAPES: Array<[number, number, number]> = [
      [1, 1, 1], [3, 5, 7], [7, 3, 1], [128, 10, 1], [2, 3, 300], [5, 17, 49], [1, 4, 1], [33, 2, 257], [16, 64, 1024],
    ];
    for (const [outer, ch, inner] of SHAPES) {
      it(`outer ${outer} ch ${ch} inner ${inner}`, async () => {
        const dy = randn(outer * ch * inner, outer + 10 * ch + inner);
        const ref = new Float64Array(ch), mag = new Float64Array(ch);
        for (let i = 0; i < dy.length; i++) {
          const c = Math.floor(i / inner) % ch;
          ref[c] += dy[i];
          mag[c] += Math.abs(dy[i]);
        }
        await withBufs(be, async (b) => {
          const db = b.nan(ch);
          be.biasGrad(outer, ch, inner, b.up(dy), db);
          const got = await b.f32(db, ch);
          for (let c = 0; c < ch; c++) expectClose([got[c]], [ref[c]], { atol: 64 * U * mag[c], rtol: 0 }, `db[${c}]`);
        });
      });
    }
  });

  describe('sumsqCheck', () => {
    const sumsq = (x: Float32Array) => x.reduce((s, v) => (Number.isFinite(v) ? s + v * v : s), 0);
    for (const n of [1, 7, 1000, 8193, 3_000_001]) {
      it(`n ${n}: sum of squares (float64 out) and zero non-finite`, async () => {
        const x = randn(n, n, 3);
        await withBufs(be, async (b) => {
          const out = b.nan(4);
          be.sumsqCheck(n, b.up(x), out);
          const [s, bad] = await b.f64(out, 2);
          expectClose([s], [sumsq(x)], { atol: 0, rtol: 64 * U }, 'sum of squares');
          expect(bad).toBe(0);
        });
      });
    }
    // Finite values whose float32 squares overflow (|x| > 1.8e19) must give the finite double
    // sum and no non-finite count: the webgpu kernel carries a power-of-two scale (reduce.wgsl).
    // Scales: all huge; huge among small ones in the same and in other chunks (the small ones
    // still count); mixed scales up to float32's largest; one huge value alone past chunk 2.
    const SCALED: Array<[string, (i: number, v: number) => number]> = [
      ['all ~1e25', (_i, v) => v * 1e25],
      ['1e30 at a few places among N(0, 1)', (i, v) => (i % 4099 === 5 ? v * 1e30 : v)],
      ['1e-3 .. 3e38 mixed', (i, v) => v * [1e-3, 1, 1e19, 1e30, 3e38 / 4][i % 5]],
      ['one 2e38 at 20000, the rest N(0, 1)', (i, v) => (i === 20_000 ? 2e38 : v)],
    ];
    for (const [what, f] of SCALED) {
      it(`finite values past float32's square range: ${what}`, async () => {
        const n = 30_000;
        const x = Float32Array.from(randn(n, 77), (v, i) => f(i, v));
        await withBufs(be, async (b) => {
          const out = b.nan(4);
          be.sumsqCheck(n, b.up(x), out);
          const [s, bad] = await b.f64(out, 2);
          expect(Number.isFinite(s), `sum ${s}`).toBe(true);
          expectClose([s], [sumsq(x)], { atol: 0, rtol: 64 * U }, 'sum of squares');
          expect(bad).toBe(0);
        });
      });
    }
    it('counts NaN and inf; the sum is NaN with any NaN, inf with only infs', async () => {
      const n = 20_000;
      const x = randn(n, 5);
      const withInf = x.slice();
      withInf[3] = Infinity; withInf[9000] = -Infinity; withInf[19_999] = Infinity;
      const withNan = withInf.slice();
      withNan[17] = NaN; withNan[12_345] = NaN;
      await withBufs(be, async (b) => {
        const o1 = b.nan(4), o2 = b.nan(4);
        be.sumsqCheck(n, b.up(withInf), o1);
        be.sumsqCheck(n, b.up(withNan), o2);
        const [s1, c1] = await b.f64(o1, 2);
        const [s2, c2] = await b.f64(o2, 2);
        expect(s1).toBe(Infinity);
        expect(c1).toBe(3);
        expect(s2).toBeNaN();
        expect(c2).toBe(5);
      });
    });
  });

  describe('dropoutFwd', () => {
    const CASES: Array<{ n: number; p: number; seed: number }> = [
      { n: 1, p: 0.5, seed: 0 },
      { n: 1000, p: 0.1, seed: 12345 },
      { n: 4097, p: 0.5, seed: 2 ** 40 + 7 },           // the seed's high word matters
      { n: 70_001, p: 0.3, seed: Number.MAX_SAFE_INTEGER },
      { n: 999, p: 0, seed: 99 },                       // keeps everything, mask 1
      { n: 999, p: 1, seed: 99 },                       // drops everything, mask 0 (never inf)
    ];
    for (const cs of CASES) {
      it(`n ${cs.n} p ${cs.p} seed ${cs.seed}: the mask is the CPU's, bit for bit`, async () => {
        const x = randn(cs.n, 31);
        const run = async (bk: Backend) => withBufs(bk, async (b) => {
          const m = b.nan(cs.n), y = b.nan(cs.n);
          bk.dropoutFwd(cs.n, cs.p, cs.seed, b.up(x), m, y);
          return [await b.f32(m, cs.n), await b.f32(y, cs.n)];
        });
        const [mask, y] = await run(be);
        const [cpuMask, cpuY] = await run(await openBackend('cpu'));
        const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer));
        expect(bits(mask), 'mask bits vs cpu').toEqual(bits(cpuMask));
        expect(bits(y), 'y bits vs cpu').toEqual(bits(cpuY));
        // And against an independent BigInt splitmix64 (first 2000 elements).
        const ref = dropoutMaskRef(Math.min(cs.n, 2000), cs.p, cs.seed);
        expect(Array.from(mask.subarray(0, ref.length)), 'mask vs BigInt reference').toEqual(Array.from(ref));
      });
    }
  });

  describe('softmax cross-entropy vs float64 reference', () => {
    const CASES: Array<{ n: number; c: number; eps: number; offset?: number }> = [
      { n: 3, c: 10, eps: 0 }, { n: 5, c: 10, eps: 0.1 }, { n: 4, c: 1, eps: 0.2 }, { n: 7, c: 64, eps: 0.1 },
      { n: 3, c: 65, eps: 0.1 }, { n: 2, c: 1000, eps: 0.1 }, { n: 130, c: 17, eps: 0 }, { n: 3, c: 10, eps: 0.1, offset: 1000 },
    ];
    for (const cs of CASES) {
      it(`N ${cs.n} C ${cs.c} eps ${cs.eps}${cs.offset ? ` logits + ${cs.offset}` : ''}`, async () => {
        const { n, c, eps } = cs, scale = 1 / n;
        const logits = randn(n * c, n + c, 3).map((v) => v + (cs.offset ?? 0));
        const labels = randLabels(n, c, 7);
        const ref = softmaxXentRef(n, c, logits, labels, Math.fround(eps));
        await withBufs(be, async (b) => {
          const probs = b.nan(n * c), loss = b.nan(n), dl = b.nan(n * c), lb = b.up(labels);
          be.softmaxXentFwd(n, c, eps, b.up(logits), lb, probs, loss);
          be.softmaxXentBwd(n, c, eps, scale, probs, lb, dl);
          const gp = await b.f32(probs, n * c);
          const probTol: Tol = gpu ? { atol: 2e-6, rtol: 64 * U } : { atol: 1e-30, rtol: 2 * U };
          const lossTol: Tol = gpu ? { atol: 1e-6, rtol: 64 * U } : { atol: 1e-7, rtol: 4 * U };
          expectClose(gp, ref.probs, probTol, 'probs');
          expectClose(await b.f32(loss, n), ref.perExample, lossTol, 'loss');
          const e = Math.fround(eps);
          const refDl = Float64Array.from(gp, (pv, i) => {
            const t = (i % c === labels[Math.floor(i / c)] ? 1 - e : 0) + e / c;
            return scale * (pv - t);
          });
          expectClose(await b.f32(dl, n * c), refDl, { atol: 4 * U * scale, rtol: 4 * U }, 'dlogits');
        });
      });
    }
  });

  // A label outside [0, C): the CPU kernel throws naming the first bad row and its label; a GPU
  // kernel cannot throw, so it counts the bad rows in a fault slot and the next sync/download
  // rejects with the count, the first bad row and the smallest and largest bad label (one bad
  // label: the CPU's message). Each case below: labels, then the GPU's message for them.
  for (const c of [10, 100]) it(`softmax cross-entropy, C ${c}: a label outside [0, C) rejects the next sync/download naming the op, the count, the first bad row and the bad labels; the backend stays usable`, async () => {
    const n = 4;
    const logits = randn(n * c, 5, 3);
    const good = Int32Array.from([0, 1, 2, 3]);
    const rejects = async (p: Promise<unknown>, op: string, gpuMessage: string, cpuMessage: string) => {
      await expect(p).rejects.toHaveProperty('message', `${op}: ${gpu ? gpuMessage : cpuMessage}`);
    };
    await withBufs(be, async (b) => {
      const probs = b.nan(n * c), loss = b.nan(n), dl = b.nan(n * c), x = b.up(logits);
      be.softmaxXentFwd(n, c, 0, x, b.up(Int32Array.from([3, c + 2, 0, -1])), probs, loss);
      await rejects(be.sync(), 'softmaxXentFwd', `2 labels are outside [0, ${c}), the first at row 1 (labels from -1 to ${c + 2})`,
        `label ${c + 2} at row 1 is outside [0, ${c})`);
      be.softmaxXentBwd(n, c, 0, 1, probs, b.up(Int32Array.from([0, 1, c, 2])), dl);
      const one = `label ${c} at row 2 is outside [0, ${c})`;
      await rejects(be.download(dl), 'softmaxXentBwd', one, one);
      // Two dispatches before one check share a GPU slot: the counts add up, the range covers
      // both. The CPU backend reports its first failed op and counts the later ones.
      be.softmaxXentBwd(n, c, 0, 1, probs, b.up(Int32Array.from([0, 1, c, c])), dl);
      be.softmaxXentBwd(n, c, 0, 1, probs, b.up(Int32Array.from([0, c, 2, 3])), dl);
      await rejects(be.sync(), 'softmaxXentBwd', `3 labels are outside [0, ${c}), the first at row 1 (all ${c})`,
        `${one} (and 1 later failed ops)`);
      // Nothing sticks: the same op with good labels runs and is right.
      be.softmaxXentFwd(n, c, 0, x, b.up(good), probs, loss);
      const ref = softmaxXentRef(n, c, logits, good, 0);
      expectClose(await b.f32(loss, n), ref.perExample, { atol: 1e-6, rtol: 64 * U }, 'loss after the error');
    });
  });

  // Many rows (several workgroups / blocks racing on the slot), bad rows spread over them, the
  // int32 extremes among the labels.
  for (const c of [10, 100]) it(`softmax cross-entropy, C ${c}: bad labels among 300 rows are counted with their first row and range`, async () => {
    const n = 300;
    const labels = randLabels(n, c, 11);
    const bad: Array<[number, number]> = [[299, 2147483647], [5, -7], [64, c], [130, -2147483648], [131, -7], [200, c + 1000]];
    for (const [row, label] of bad) labels[row] = label;
    await withBufs(be, async (b) => {
      const probs = b.nan(n * c), loss = b.nan(n), dl = b.nan(n * c), lb = b.up(labels);
      const gpuMessage = `6 labels are outside [0, ${c}), the first at row 5 (labels from -2147483648 to 2147483647)`;
      be.softmaxXentFwd(n, c, 0, b.up(randn(n * c, 6, 3)), lb, probs, loss);
      await rejects(be.sync(), 'softmaxXentFwd', gpuMessage);
      be.softmaxXentBwd(n, c, 0, 1, probs, lb, dl);
      await rejects(be.download(dl), 'softmaxXentBwd', gpuMessage);
    });
    async function rejects(p: Promise<unknown>, op: string, gpuMessage: string) {
      await expect(p).rejects.toHaveProperty('message', `${op}: ${gpu ? gpuMessage : `label -7 at row 5 is outside [0, ${c})`}`);
    }
  });

  describe('sgdUpdate vs float32 replay', () => {
    const CASES = [
      { momentum: 0.9, wd: 5e-4, nesterov: false }, { momentum: 0.9, wd: 5e-4, nesterov: true },
      { momentum: 0.9, wd: 0, nesterov: true }, { momentum: 0, wd: 1e-2, nesterov: false },
    ];
    for (const cs of CASES) {
      it(`momentum ${cs.momentum} wd ${cs.wd} nesterov ${cs.nesterov}, 3 steps`, async () => {
        const n = 1001, lr = 0.05;
        const w0 = randn(n, 41), grads = [randn(n, 42), randn(n, 43), randn(n, 44)];
        // v starts as NaN garbage when momentum is 0 (it must not be read), else as zeros.
        const v0 = cs.momentum === 0 ? new Float32Array(n).fill(NaN) : new Float32Array(n);
        const f = Math.fround, lrf = f(lr), mf = f(cs.momentum), wdf = f(cs.wd);
        const w = Float32Array.from(w0), v = Float32Array.from(v0);
        await withBufs(be, async (b) => {
          const wb = b.up(w0), vb = b.up(v0);
          for (const g of grads) {
            be.sgdUpdate(n, lr, cs.momentum, cs.wd, cs.nesterov, wb, b.up(g), vb);
            for (let i = 0; i < n; i++) {
              const gd = f(g[i] + f(wdf * w[i]));
              const vi = mf === 0 ? gd : f(f(mf * v[i]) + gd);
              v[i] = vi;
              w[i] = f(w[i] - f(lrf * (cs.nesterov ? f(gd + f(mf * vi)) : vi)));
            }
          }
          expectClose(await b.f32(wb, n), w, { atol: 12 * U * maxAbs(w), rtol: 0 }, 'w');
          expectClose(await b.f32(vb, n), v, { atol: 12 * U * maxAbs(v), rtol: 0 }, 'v');
        });
      });
    }
  });
});

/** kernels/cpu/elementwise.cc's mask with BigInt arithmetic: splitmix64(seed + (i+1) * golden). */
function dropoutMaskRef(n: number, p: number, seed: number): Float32Array {
  const M = (1n << 64n) - 1n;
  const golden = 0x9E3779B97F4A7C15n;
  const pf = Math.fround(p);
  const keep = pf < 1 ? Math.fround(1 / Math.fround(1 - pf)) : 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z = (BigInt(seed) + BigInt(i + 1) * golden) & M;
    z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & M;
    z ^= z >> 31n;
    const u = Number(z >> 40n) / 16777216;
    out[i] = u >= pf ? keep : 0;
  }
  return out;
}
