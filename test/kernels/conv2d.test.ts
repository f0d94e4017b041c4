// conv2d kernels of the CPU addon (kernels/cpu/conv2d.cc) against the float64 reference
// (test/reference/conv_ref.ts) on odd shapes, for every thread mapping the kernel has
// (IMAGERATE_CONV2D_VARIANT = auto | tiles | channels | gemm) with 1 and 2 threads.
//
// Outputs are pre-filled with NaN, so an element a kernel forgets to write (the kernels
// overwrite, never accumulate into, their outputs) fails the comparison.
//
// The addon is loaded from build/Release/imagerate_cpu.node or $IMAGERATE_CPU_ADDON; without
// it the suite is skipped with the reason printed. The variant is read by the kernel with
// getenv on each call, which sees process.env because vitest runs test files in forked
// processes (the default pool); the variants are also checked by the C++ path directly.
import { describe, expect, it } from 'vitest';
import type { Conv2dParams } from '../../src/backend/backend.js';
import { Rng } from '../../src/util/rng.js';
import { loadTestAddon } from '../helpers/addon.js';
import {
  conv2dBwdDataRef, conv2dBwdFilterRef, conv2dFwdRef, conv2dParams, convSizes, type ConvShape,
} from '../reference/conv_ref.js';

interface CpuAddon {
  alloc(bytes: number): number;
  free(id: number): void;
  upload(id: number, data: Float32Array | Int32Array): void;
  download(id: number, bytes: number): Promise<ArrayBuffer>;
  setThreads(n: number): void;
  conv2dFwd(p: number[], x: number, w: number, bias: number, y: number): void;
  conv2dBwdData(p: number[], dy: number, w: number, dx: number): void;
  conv2dBwdFilter(p: number[], x: number, dy: number, dw: number, db: number): void;
}

const { addon, skipReason } = loadTestAddon<CpuAddon>('conv2d kernel');

const VARIANTS = ['auto', 'tiles', 'channels', 'gemm'] as const;
const THREADS = [1, 2];

// Shapes: batch 1/3, channels 1/3/7, sizes 1..33, kernels 1x1 (direct and strided), 3x3,
// 5x5, 7x7/2 pad 3, 11x11/4, asymmetric 3x5, strides 1/2/3, pads 0/1/2, dilation 2.
const KERNELS: Array<Pick<ConvShape, 'r' | 's' | 'stride' | 'pad' | 'dil'>> = [
  { r: 1, s: 1 },
  { r: 1, s: 1, stride: 2 },
  { r: 3, s: 3, pad: 1 },
  { r: 3, s: 3, stride: 2 },
  { r: 5, s: 5, pad: 2 },
  { r: 5, s: 5, stride: 3, pad: 1 },
  { r: 7, s: 7, stride: 2, pad: 3 },
  { r: 11, s: 11, stride: 4, pad: 2 },
  { r: 3, s: 5, stride: [1, 2], pad: [1, 2] },
  { r: 3, s: 3, pad: 2, dil: 2 },
  { r: 3, s: 3, stride: [3, 1], pad: [0, 1], dil: [2, 1] },
];
const SIZES = [1, 5, 7, 17, 33];

function cases(): Conv2dParams[] {
  const out: Conv2dParams[] = [];
  let i = 0;
  for (const kern of KERNELS)
    for (const size of SIZES) {
      const c = [1, 3, 7][i % 3], n = [1, 3][Math.floor(i / 3) % 2], k = [1, 4, 6][(i + 1) % 3];
      i++;
      const p = conv2dParams({ n, c, h: size, w: size + (i % 2) * 2, k, ...kern });
      if (p.p > 0 && p.q > 0) out.push(p);
    }
  // LeNet's layers (smaller batch), and a layer big enough to be cut into column blocks.
  out.push(conv2dParams({ n: 4, c: 1, h: 28, w: 28, k: 6, r: 5, s: 5, pad: 2 }));
  out.push(conv2dParams({ n: 4, c: 6, h: 14, w: 14, k: 16, r: 5, s: 5 }));
  out.push(conv2dParams({ n: 1, c: 16, h: 64, w: 64, k: 4, r: 3, s: 3, pad: 1 }));
  out.push(conv2dParams({ n: 3, c: 24, h: 9, w: 9, k: 8, r: 1, s: 1 }));
  return out;
}

const label = (p: Conv2dParams) =>
  `n${p.n} c${p.c} ${p.h}x${p.w} k${p.k} ${p.r}x${p.s} stride ${p.strideH},${p.strideW} ` +
  `pad ${p.padH},${p.padW} dil ${p.dilH},${p.dilW} -> ${p.p}x${p.q}`;

const paramArray = (p: Conv2dParams) => [p.n, p.c, p.h, p.w, p.k, p.r, p.s, p.strideH, p.strideW,
  p.padH, p.padW, p.dilH, p.dilW, p.p, p.q];

function uniform(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * rng.uniform() - 1;
  return a;
}

// Tolerance for a float32 sum of `terms` products of values in [-1, 1]. Each addition rounds
// with relative error <= 2^-24 ~ 6e-8 of a partial sum whose size grows like sqrt(t)/3, so
// the error is a random walk of about 6e-8 * terms / 4. atol = 1e-7 * terms (several times
// that) covers outputs that cancel to near zero; rtol = 5e-7 * sqrt(terms) is ~8 ulp-sized
// errors per sqrt(term), relative to a typical |b| ~ sqrt(terms) / 3. An indexing bug moves an
// output by a whole product (~0.25), orders of magnitude above both.
function tol(terms: number) {
  return { atol: 1e-7 * terms, rtol: 5e-7 * Math.sqrt(terms) };
}

function expectClose(got: Float32Array, ref: Float64Array, terms: number, what: string): void {
  const { atol, rtol } = tol(terms);
  expect(got.length, what).toBe(ref.length);
  let worst = -1, worstRatio = 0;
  for (let i = 0; i < ref.length; i++) {
    const ratio = Math.abs(got[i] - ref[i]) / (atol + rtol * Math.abs(ref[i]));
    if (!(ratio <= worstRatio)) { worstRatio = ratio; worst = i; }  // NaN counts as worst
    if (Number.isNaN(ratio)) break;
  }
  if (worst >= 0 && !(worstRatio <= 1)) {
    throw new Error(`${what}: element ${worst} is ${got[worst]}, reference ${ref[worst]} ` +
      `(atol ${atol.toExponential(2)}, rtol ${rtol.toExponential(2)})`);
  }
}

async function runConv(a: CpuAddon, p: Conv2dParams, x: Float32Array, w: Float32Array,
                       bias: Float32Array, dy: Float32Array) {
  const ids: number[] = [];
  const buf = (data: Float32Array) => {
    const id = a.alloc(data.byteLength);
    ids.push(id);
    a.upload(id, data);
    return id;
  };
  const nans = (n: number) => buf(new Float32Array(n).fill(NaN));
  const sz = convSizes(p), pa = paramArray(p);
  const xId = buf(x), wId = buf(w), bId = buf(bias), dyId = buf(dy);
  const y = nans(sz.y), yNoBias = nans(sz.y), dx = nans(sz.x), dw = nans(sz.w), db = nans(p.k),
    dwNoBias = nans(sz.w);
  a.conv2dFwd(pa, xId, wId, bId, y);
  a.conv2dFwd(pa, xId, wId, -1, yNoBias);
  a.conv2dBwdData(pa, dyId, wId, dx);
  a.conv2dBwdFilter(pa, xId, dyId, dw, db);
  a.conv2dBwdFilter(pa, xId, dyId, dwNoBias, -1);
  const get = async (id: number, n: number) => new Float32Array(await a.download(id, 4 * n));
  const out = {
    y: await get(y, sz.y), yNoBias: await get(yNoBias, sz.y), dx: await get(dx, sz.x),
    dw: await get(dw, sz.w), db: await get(db, p.k), dwNoBias: await get(dwNoBias, sz.w),
  };
  for (const id of ids) a.free(id);
  return out;
}

describe.skipIf(!addon)('conv2d kernels (cpu) vs float64 reference', () => {
  for (const p of cases()) {
    it(label(p), async () => {
      const a = addon!;
      const rng = new Rng(1234, label(p));
      const sz = convSizes(p);
      const x = uniform(rng, sz.x), w = uniform(rng, sz.w), bias = uniform(rng, p.k);
      const dy = uniform(rng, sz.y);
      const ref = {
        y: conv2dFwdRef(p, x, w, bias), yNoBias: conv2dFwdRef(p, x, w, null),
        dx: conv2dBwdDataRef(p, dy, w), ...conv2dBwdFilterRef(p, x, dy),
      };
      const terms = {
        fwd: p.c * p.r * p.s + 1,
        data: p.k * Math.ceil(p.r / p.strideH) * Math.ceil(p.s / p.strideW),
        filter: p.n * p.p * p.q,
      };
      try {
        for (const threads of THREADS) {
          a.setThreads(threads);
          for (const variant of VARIANTS) {
            process.env.IMAGERATE_CONV2D_VARIANT = variant;
            const got = await runConv(a, p, x, w, bias, dy);
            const tag = `${variant}, ${threads} thread(s)`;
            expectClose(got.y, ref.y, terms.fwd, `forward (${tag})`);
            expectClose(got.yNoBias, ref.yNoBias, terms.fwd, `forward without bias (${tag})`);
            expectClose(got.dx, ref.dx, terms.data, `backward-data (${tag})`);
            expectClose(got.dw, ref.dw, terms.filter, `backward-filter dw (${tag})`);
            expectClose(got.dwNoBias, ref.dw, terms.filter, `backward-filter dw, no db (${tag})`);
            expectClose(got.db, ref.db, terms.filter, `backward-filter db (${tag})`);
          }
        }
      } finally {
        delete process.env.IMAGERATE_CONV2D_VARIANT;
      }
    });
  }

  it('gives bit-identical results on repeated calls (deterministic reduction)', async () => {
    const a = addon!;
    const p = conv2dParams({ n: 9, c: 3, h: 12, w: 12, k: 5, r: 3, s: 3, pad: 1 });
    const rng = new Rng(99, 'determinism');
    const sz = convSizes(p);
    const x = uniform(rng, sz.x), w = uniform(rng, sz.w), b = uniform(rng, p.k), dy = uniform(rng, sz.y);
    a.setThreads(2);
    const first = await runConv(a, p, x, w, b, dy);
    for (let rep = 0; rep < 5; rep++) {
      const again = await runConv(a, p, x, w, b, dy);
      expect(Buffer.from(again.dw.buffer).equals(Buffer.from(first.dw.buffer))).toBe(true);
      expect(Buffer.from(again.db.buffer).equals(Buffer.from(first.db.buffer))).toBe(true);
    }
  });
});

if (!addon) {
  describe('conv2d kernels (cpu)', () => {
    it.skip(`skipped: ${skipReason}`, () => {});
  });
}
