// The webgpu paths for buffers larger than one storage binding (src/backend/webgpu/runtime.ts
// "Bindings and views", ops/chunk.ts, ops/gemm.ts gemmSplit), run on small shapes: this file
// opens its own webgpu backend with IMAGERATE_WEBGPU_MAX_BINDING=4096, so any buffer above
// 4 KiB (1024 floats) is bound as views and its op split into chunks. Compared against the
// CPU backend (flat ops, dropout masks, SGD) and float64 references (GEMM, sum of squares).
// Skipped, with the reason printed, where no webgpu adapter exists.
//
// Tolerances, in U = 2^-24:
//   - GEMM: as test/kernels/backend-gemm-conv.test.ts, 2 * (K + 4) U of sum |terms| plus
//     |beta * C| per element (float32 sums in any order; a cut along K adds one rounding per
//     part, far inside K + 4); an indexing bug (a missing product) is ~0.1.
//   - add, mul, relu, fill, copy and the dropout mask are exact; axpby, scale and SGD may fuse
//     a multiply-add on the GPU: 4 U of the largest term.
//   - sumsqCheck: float32 partial sums, 64 U relative (as backend-ops.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, BufferHandle, GemmParams } from '../../src/backend/backend.js';
import { openBackend } from '../../src/backend/registry.js';
import { backendAvailable } from '../helpers/backends.js';
import { WebGpuBackend } from '../../src/backend/webgpu/backend.js';
import { openGpu } from '../../src/backend/webgpu/device.js';
import { WebGpuRuntime } from '../../src/backend/webgpu/runtime.js';
import { Rng } from '../../src/util/rng.js';
import { gemmRef } from '../reference/ref_ops.js';

const U = 2 ** -24;
const LIMIT = 4096;
const TIMEOUT = { timeout: 120_000 }; // first use of a pipeline compiles it (seconds on lavapipe)

const webgpuAvailable = backendAvailable('webgpu', 'webgpu chunking tests');

function rand(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * rng.uniform() - 1);
}

describe.skipIf(!webgpuAvailable)('webgpu ops past the storage binding limit', () => {
  let gpu: WebGpuBackend;
  let cpu: Backend;
  const rng = new Rng(7);

  beforeAll(async () => {
    const before = process.env.IMAGERATE_WEBGPU_MAX_BINDING;
    process.env.IMAGERATE_WEBGPU_MAX_BINDING = String(LIMIT);
    try {
      gpu = new WebGpuBackend(new WebGpuRuntime(await openGpu()));
    } finally {
      if (before === undefined) delete process.env.IMAGERATE_WEBGPU_MAX_BINDING;
      else process.env.IMAGERATE_WEBGPU_MAX_BINDING = before;
    }
    cpu = await openBackend('cpu');
  }, 60_000);
  afterAll(() => gpu?.rt.destroy());

  const up = (be: Backend, x: Float32Array): BufferHandle => {
    const h = be.alloc(x.byteLength);
    be.upload(h, x);
    return h;
  };
  const down = async (be: Backend, h: BufferHandle, n: number) => new Float32Array(await be.download(h, n * 4));

  it('lowers the binding limit and checks views', () => {
    expect(gpu.rt.maxBinding).toBe(LIMIT);
    const buf = gpu.alloc(10_000 * 4);
    expect(gpu.rt.bindable(buf)).toBe(false);
    expect(() => gpu.rt.view('t', buf, 3, 10)).toThrow(/t: view offset 12 bytes .* not a multiple of minStorageBufferOffsetAlignment/);
    expect(() => gpu.rt.view('t', buf, 9984, 1024)).toThrow(/t: view .* lies outside buffer/);
    expect(() => gpu.rt.view('t', buf, 0, 1025)).toThrow(/t: view of 4\.0 KiB exceeds maxStorageBufferBindingSize \(4\.0 KiB, lowered by IMAGERATE_WEBGPU_MAX_BINDING\)/);
    expect(gpu.rt.view('t', buf, 64, 1024).offset).toBe(256);
    gpu.free(buf);
  });

  it('refuses a too-large buffer for an op that does not chunk, naming the op, the size and the limit', async () => {
    const x = gpu.alloc(2 * 3 * 20 * 20 * 4), w = gpu.alloc(4 * 3 * 3 * 3 * 4), y = gpu.alloc(2 * 4 * 18 * 18 * 4);
    const p = { n: 2, c: 3, h: 20, w: 20, k: 4, r: 3, s: 3, p: 18, q: 18, padH: 0, padW: 0, strideH: 1, strideW: 1, dilH: 1, dilW: 1 };
    expect(() => gpu.conv2dFwd(p, x, w, null, y))
      .toThrow(/^conv2dFwd: buffer of [\d.]+ KiB exceeds maxStorageBufferBindingSize \(4\.0 KiB, lowered by IMAGERATE_WEBGPU_MAX_BINDING\) on /);
    for (const b of [x, w, y]) gpu.free(b);
    await gpu.sync();
  });

  describe('flat ops in chunks match the cpu backend', () => {
    const n = 5000 + 37; // five chunks of 1024 and an uneven tail
    const close = (got: Float32Array, want: Float32Array, rel: number) => {
      for (let i = 0; i < want.length; i++) {
        if (Math.abs(got[i] - want[i]) > rel * Math.max(1, Math.abs(want[i]))) {
          throw new Error(`element ${i}: got ${got[i]}, want ${want[i]}`);
        }
      }
    };
    type Run = (be: Backend, a: BufferHandle, b: BufferHandle, y: BufferHandle) => void;
    const cases: Array<[string, Run, number]> = [
      ['add', (be, a, b, y) => be.add(n, a, b, y), 0],
      ['mul', (be, a, b, y) => be.mul(n, a, b, y), 0],
      ['reluFwd', (be, a, _b, y) => be.reluFwd(n, a, y), 0],
      ['reluFwd in place', (be, a) => be.reluFwd(n, a, a), 0],
      ['reluBwd', (be, a, b, y) => be.reluBwd(n, a, b, y), 0],
      ['axpby', (be, a, _b, y) => be.axpby(n, 1.5, a, -0.25, y), 4 * U],
      ['axpby beta 0', (be, a, _b, y) => be.axpby(n, 1.5, a, 0, y), 4 * U],
      ['scale', (be, a, _b, y) => be.scale(n, -3, a, y), 4 * U],
      ['fill', (be, _a, _b, y) => be.fill(n, 2.5, y), 0],
      ['copy at unaligned offsets', (be, a, _b, y) => be.copy(n - 200, a, 3, y, 130), 0],
      ['copy inside one buffer', (be, a) => be.copy(2000, a, 17, a, 3000), 0],
    ];
    for (const [name, run, rel] of cases) {
      it(name, TIMEOUT, async () => {
        const a = rand(n, rng), b = rand(n, rng), y0 = rand(n, rng);
        const outs: Float32Array[] = [];
        for (const be of [gpu, cpu] as Backend[]) {
          const ha = up(be, a), hb = up(be, b), hy = up(be, y0);
          const before = gpu.rt.counters.dispatches;
          run(be, ha, hb, hy);
          if (be === gpu) expect(gpu.rt.counters.dispatches - before).toBeGreaterThanOrEqual(2);
          outs.push(await down(be, hy, n), await down(be, ha, n));
          for (const h of [ha, hb, hy]) be.free(h);
        }
        close(outs[0], outs[2], rel);
        close(outs[1], outs[3], rel);
      });
    }

    it('dropout: the same mask as the cpu backend', TIMEOUT, async () => {
      const x = rand(n, rng);
      const got: Float32Array[] = [];
      for (const be of [gpu, cpu] as Backend[]) {
        const hx = up(be, x), hm = be.alloc(n * 4), hy = be.alloc(n * 4);
        be.dropoutFwd(n, 0.3, 12345, hx, hm, hy);
        got.push(await down(be, hm, n), await down(be, hy, n));
        for (const h of [hx, hm, hy]) be.free(h);
      }
      expect(got[0]).toEqual(got[2]);
      expect(got[1]).toEqual(got[3]);
    });

    it('sgdUpdate with momentum, weight decay and Nesterov', TIMEOUT, async () => {
      const w = rand(n, rng), g = rand(n, rng), v = rand(n, rng);
      const got: Float32Array[] = [];
      for (const be of [gpu, cpu] as Backend[]) {
        const hw = up(be, w), hg = up(be, g), hv = up(be, v);
        be.sgdUpdate(n, 0.1, 0.9, 5e-4, true, hw, hg, hv);
        be.sgdUpdate(n, 0.1, 0.9, 5e-4, false, hw, hg, hv);
        got.push(await down(be, hw, n), await down(be, hv, n));
        for (const h of [hw, hg, hv]) be.free(h);
      }
      close(got[0], got[2], 16 * U);
      close(got[1], got[3], 16 * U);
    });

    it('sumsqCheck: one total over all chunks, non-finite values counted', TIMEOUT, async () => {
      const x = rand(n, rng);
      const want = x.reduce((s, v) => s + v * v, 0);
      const hx = up(gpu, x), out = gpu.alloc(16);
      gpu.sumsqCheck(n, hx, out);
      let [s, bad] = new Float64Array(await gpu.download(out));
      expect(Math.abs(s - want)).toBeLessThanOrEqual(64 * U * want);
      expect(bad).toBe(0);
      x[4500] = Infinity;
      x[10] = Infinity;
      gpu.upload(hx, x);
      gpu.sumsqCheck(n, hx, out);
      [s, bad] = new Float64Array(await gpu.download(out));
      expect(s).toBe(Infinity);
      expect(bad).toBe(2);
      gpu.free(hx); gpu.free(out);
    });
  });

  describe('gemm split into views matches a float64 reference', () => {
    // [m, n, k, pad]: pad is added to every leading dimension (NaN in A and B's pads, 777 in
    // C's, which must come back unchanged). Chosen so that each transpose case cuts along
    // different dimensions, with uneven last parts, nested cuts and a cut along K.
    const shapes: Array<[number, number, number, number]> = [
      [37, 45, 70, 0], [130, 7, 33, 1], [9, 300, 5, 4], [2, 700, 3, 0], [200, 150, 9, 3], [6, 5, 900, 0],
      [1, 1000, 3, 1000], // rows of 1000+ floats: cut short along the columns before the rows
    ];
    for (const [m, n, k, pad] of shapes) {
      for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        for (const [alpha, beta] of [[1, 0], [0.5, -1.5]] as const) {
          it(`${m}x${n}x${k} pad ${pad} transA ${transA} transB ${transB} alpha ${alpha} beta ${beta}`, TIMEOUT, async () => {
            const g: GemmParams = {
              transA, transB, m, n, k, alpha, beta,
              lda: (transA ? m : k) + pad, ldb: (transB ? k : n) + pad, ldc: n + pad,
            };
            const aRows = transA ? k : m, bRows = transB ? n : k;
            const a = rand(aRows * g.lda, rng), b = rand(bRows * g.ldb, rng), c = rand(m * g.ldc, rng);
            for (let i = 0; i < a.length; i++) if (i % g.lda >= (transA ? m : k)) a[i] = NaN;
            for (let i = 0; i < b.length; i++) if (i % g.ldb >= (transB ? k : n)) b[i] = NaN;
            for (let i = 0; i < c.length; i++) if (i % g.ldc >= n) c[i] = 777;
            if (beta === 0) for (let i = 0; i < c.length; i++) if (i % g.ldc < n) c[i] = NaN;
            const ha = up(gpu, a), hb = up(gpu, b), hc = up(gpu, c);
            const before = gpu.rt.counters.dispatches;
            gpu.gemm(g, ha, hb, hc);
            const dispatches = gpu.rt.counters.dispatches - before;
            const split = [ha, hb, hc].some((h) => !gpu.rt.bindable(h));
            const got = await down(gpu, hc, c.length);
            for (const h of [ha, hb, hc]) gpu.free(h);
            if (split) expect(dispatches).toBeGreaterThanOrEqual(2);
            const { y, mag } = gemmRef(g, a, b, c);
            for (let i = 0; i < c.length; i++) {
              if (i % g.ldc >= n) {
                if (got[i] !== 777) throw new Error(`C padding ${i} changed to ${got[i]}`);
                continue;
              }
              const tol = 2 * (k + 4) * U * mag[i];
              if (!(Math.abs(got[i] - y[i]) <= tol)) {
                throw new Error(`C[${Math.floor(i / g.ldc)}, ${i % g.ldc}]: got ${got[i]}, want ${y[i]} (tolerance ${tol}, ${dispatches} dispatches)`);
              }
            }
          });
        }
      }
    }
  });
});
