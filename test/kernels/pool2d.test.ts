// Pooling kernels of the CPU addon (kernels/cpu/pool2d.cc) against the float64 reference
// (test/reference/pool_ref.ts): max pool (values and argmax) and average pool (with and
// without count_include_pad), forward and backward, odd shapes, overlapping windows,
// 1 and 2 threads. Outputs are pre-filled with NaN (or -7 for argmax) so that an element a
// kernel fails to overwrite is caught.
//
// Max-pool inputs are distinct values (a shuffled ramp), so no window has a tie and the
// argmax is unambiguous (STYLE.md: avoid kinks in the inputs rather than loosen tolerances).
import { describe, expect, it } from 'vitest';
import type { Pool2dParams } from '../../src/backend/backend.js';
import { Rng } from '../../src/util/rng.js';
import { loadTestAddon } from '../helpers/addon.js';
import {
  avgpool2dBwdRef, avgpool2dFwdRef, maxpool2dBwdRef, maxpool2dFwdRef, pool2dParams, type PoolShape,
} from '../reference/pool_ref.js';

interface CpuAddon {
  alloc(bytes: number): number;
  free(id: number): void;
  upload(id: number, data: Float32Array | Int32Array): void;
  download(id: number, bytes: number): Promise<ArrayBuffer>;
  setThreads(n: number): void;
  maxpool2dFwd(pp: number[], x: number, y: number, argmax: number): void;
  maxpool2dBwd(pp: number[], dy: number, argmax: number, dx: number): void;
  avgpool2dFwd(pp: number[], x: number, y: number): void;
  avgpool2dBwd(pp: number[], dy: number, dx: number): void;
}

const { addon, skipReason } = loadTestAddon<CpuAddon>('pool2d kernel');

const THREADS = [1, 2];

// Windows: 2x2/2 (LeNet), 3x3/2 pad 1 (ResNet stem, overlapping), 3x3/2 (AlexNet, overlapping
// without padding), 3x3/1 pad 1 (every input in up to 9 windows), asymmetric 2x3 with
// strides 1,2 and pads 1,0, 5x5/3 pad 2, 1x1, and a global 7x7.
const WINDOWS: Array<Pick<PoolShape, 'kh' | 'kw' | 'stride' | 'pad'>> = [
  { kh: 2, kw: 2, stride: 2 },
  { kh: 3, kw: 3, stride: 2, pad: 1 },
  { kh: 3, kw: 3, stride: 2 },
  { kh: 3, kw: 3, stride: 1, pad: 1 },
  { kh: 2, kw: 3, stride: [1, 2], pad: [1, 0] },
  { kh: 5, kw: 5, stride: 3, pad: 2 },
  { kh: 1, kw: 1, stride: 1 },
  { kh: 7, kw: 7, stride: 1 },
];
const SIZES = [1, 5, 7, 17, 33];

function cases(): Pool2dParams[] {
  const out: Pool2dParams[] = [];
  let i = 0;
  for (const win of WINDOWS)
    for (const size of SIZES) {
      const c = [1, 3, 7][i % 3], n = [1, 3][Math.floor(i / 3) % 2];
      i++;
      const p = pool2dParams({ n, c, h: size, w: size + (i % 2), ...win });
      if (p.p > 0 && p.q > 0) out.push(p);
    }
  out.push(pool2dParams({ n: 8, c: 6, h: 28, w: 28, kh: 2, kw: 2 }));  // LeNet pool1
  return out;
}

const label = (p: Pool2dParams) =>
  `n${p.n} c${p.c} ${p.h}x${p.w} window ${p.kh}x${p.kw} stride ${p.strideH},${p.strideW} ` +
  `pad ${p.padH},${p.padW} -> ${p.p}x${p.q}`;

const paramArray = (p: Pool2dParams) => [p.n, p.c, p.h, p.w, p.kh, p.kw, p.strideH, p.strideW,
  p.padH, p.padW, p.p, p.q, p.countIncludePad ? 1 : 0];

/** Distinct values in [-1, 1): a shuffled ramp (exact in float32 for n < 2^22). */
function distinct(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = -1 + (2 * i) / n;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function uniform(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * rng.uniform() - 1;
  return a;
}

// Pooling sums at most kh*kw float32 values (forward of avg; backward of either, where
// overlapping windows add up to ceil(kh/sh)*ceil(kw/sw) contributions) of size <= 1: the error
// is a few ulp of 1 per term, so atol = rtol = 1e-7 * terms + 1e-7 has several-fold margin.
// Max-pool forward is a selection, compared exactly.
function expectClose(got: Float32Array, ref: Float64Array, terms: number, what: string): void {
  const atol = 1e-7 * terms + 1e-7, rtol = atol;
  expect(got.length, what).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const ok = Math.abs(got[i] - ref[i]) <= atol + rtol * Math.abs(ref[i]);
    if (!ok) throw new Error(`${what}: element ${i} is ${got[i]}, reference ${ref[i]} (atol ${atol})`);
  }
}

class Bufs {
  private ids: number[] = [];
  constructor(private a: CpuAddon) {}
  up(data: Float32Array | Int32Array): number {
    const id = this.a.alloc(data.byteLength);
    this.ids.push(id);
    this.a.upload(id, data);
    return id;
  }
  async f32(id: number, n: number) { return new Float32Array(await this.a.download(id, 4 * n)); }
  async i32(id: number, n: number) { return new Int32Array(await this.a.download(id, 4 * n)); }
  free() { for (const id of this.ids) this.a.free(id); }
}

describe.skipIf(!addon)('max pool kernels (cpu) vs float64 reference', () => {
  for (const p of cases()) {
    it(label(p), async () => {
      const a = addon!, pa = paramArray(p);
      const rng = new Rng(4321, `max ${label(p)}`);
      const nx = p.n * p.c * p.h * p.w, ny = p.n * p.c * p.p * p.q;
      const x = distinct(rng, nx), dy = uniform(rng, ny);
      const ref = maxpool2dFwdRef(p, x), refDx = maxpool2dBwdRef(p, x, dy);
      const terms = Math.ceil(p.kh / p.strideH) * Math.ceil(p.kw / p.strideW);
      for (const threads of THREADS) {
        a.setThreads(threads);
        const b = new Bufs(a);
        const y = b.up(new Float32Array(ny).fill(NaN)), arg = b.up(new Int32Array(ny).fill(-7));
        const dx = b.up(new Float32Array(nx).fill(NaN)), dyId = b.up(dy);
        a.maxpool2dFwd(pa, b.up(x), y, arg);
        a.maxpool2dBwd(pa, dyId, arg, dx);
        const gotY = await b.f32(y, ny), gotArg = await b.i32(arg, ny), gotDx = await b.f32(dx, nx);
        b.free();
        const tag = `${threads} thread(s)`;
        expect(Array.from(gotY), `forward values (${tag})`).toEqual(Array.from(ref.y));
        expect(Array.from(gotArg), `argmax (${tag})`).toEqual(Array.from(ref.argmax));
        expectClose(gotDx, refDx, terms, `backward (${tag})`);
      }
    });
  }

  it('keeps the first maximum on ties and never picks padding', async () => {
    const a = addon!;
    // One 3x3 plane of equal values, 3x3 windows, stride 1, pad 1: every window's first
    // in-bounds element wins; the padding (which would be the first in row-major order) never.
    const p = pool2dParams({ n: 1, c: 1, h: 3, w: 3, kh: 3, kw: 3, stride: 1, pad: 1 });
    const b = new Bufs(a);
    const y = b.up(new Float32Array(9)), arg = b.up(new Int32Array(9));
    a.maxpool2dFwd(paramArray(p), b.up(new Float32Array(9).fill(-5)), y, arg);
    const gotArg = await b.i32(arg, 9), gotY = await b.f32(y, 9);
    b.free();
    expect(Array.from(gotY)).toEqual(new Array(9).fill(-5));
    expect(Array.from(gotArg)).toEqual([0, 0, 1, 0, 0, 1, 3, 3, 4]);
  });

  it('propagates NaN (the window containing it yields NaN and points at it)', async () => {
    const a = addon!;
    const p = pool2dParams({ n: 1, c: 1, h: 4, w: 4, kh: 2, kw: 2 });
    const x = new Float32Array(16).map((_, i) => i);
    x[5] = NaN;  // window (0, 0)
    const b = new Bufs(a);
    const y = b.up(new Float32Array(4)), arg = b.up(new Int32Array(4));
    a.maxpool2dFwd(paramArray(p), b.up(x), y, arg);
    const gotY = await b.f32(y, 4), gotArg = await b.i32(arg, 4);
    b.free();
    expect(Array.from(gotY)).toEqual([NaN, 7, 13, 15]);
    expect(Array.from(gotArg)).toEqual([5, 7, 13, 15]);
  });
});

describe.skipIf(!addon)('avg pool kernels (cpu) vs float64 reference', () => {
  for (const base of cases()) {
    for (const countIncludePad of [true, false]) {
      if (!countIncludePad && base.padH === 0 && base.padW === 0) continue;  // same as true
      const p = { ...base, countIncludePad };
      it(`${label(p)} count_include_pad=${countIncludePad}`, async () => {
        const a = addon!, pa = paramArray(p);
        const rng = new Rng(777, `avg ${label(p)} ${countIncludePad}`);
        const nx = p.n * p.c * p.h * p.w, ny = p.n * p.c * p.p * p.q;
        const x = uniform(rng, nx), dy = uniform(rng, ny);
        const refY = avgpool2dFwdRef(p, x), refDx = avgpool2dBwdRef(p, dy);
        const terms = p.kh * p.kw;
        for (const threads of THREADS) {
          a.setThreads(threads);
          const b = new Bufs(a);
          const y = b.up(new Float32Array(ny).fill(NaN)), dx = b.up(new Float32Array(nx).fill(NaN));
          a.avgpool2dFwd(pa, b.up(x), y);
          a.avgpool2dBwd(pa, b.up(dy), dx);
          const gotY = await b.f32(y, ny), gotDx = await b.f32(dx, nx);
          b.free();
          expectClose(gotY, refY, terms, `forward (${threads} thread(s))`);
          expectClose(gotDx, refDx, terms, `backward (${threads} thread(s))`);
        }
      });
    }
  }
});

if (!addon) {
  describe('pool2d kernels (cpu)', () => {
    it.skip(`skipped: ${skipReason}`, () => {});
  });
}
