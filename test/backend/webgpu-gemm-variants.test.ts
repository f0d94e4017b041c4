// Every variant of kernels/wgsl/gemm.wgsl (GEMM_VARIANTS in src/backend/webgpu/ops/gemm.ts, the
// set the benchmark sweeps and IMAGERATE_WEBGPU_GEMM may pick, and two odd shapes outside it)
// against the float64 reference, on shapes sized from the variant's own block so that none is
// a multiple of it:
//   NN   M = BM + 5, N = BN + 4, K = 2 BK + 4 (three panels, the last partial): vec4 loads of A
//        along k and of B along n, vec4 stores of C; alpha 1, beta 0 with C filled with NaN;
//   TT   M = BM/2 + 3, N = BN + 7, K = BK - 1 (one partial panel): scalar loads of both
//        transposed operands and scalar stores; alpha 0.5, beta -1.5, every stride padded by 1;
//   NT   M = BM + 3, N = 2 BN + 1, K = BK + 4: scalar loads of A (lda = K + 1), vec4 loads of
//        transposed B along k (ldb = K + 4), scalar stores (N odd); alpha -2, beta 1;
//   TN   M = BM + 12, N = 20, K = 2 BK + 3: vec4 loads of transposed A along m, scalar loads of B
//        (ldb = N + 1), vec4 stores of C (ldc = N + 4); alpha 1.5, beta 0.25.
// Together they take each operand's four load paths (plain or transposed, vec4 or scalar) and
// both store paths, with every panel pipeline (p0, p1, p2) in the set; a test below checks that
// coverage from the glue's own vec4 rule (gemmVecFlags), so a change of shapes cannot lose a
// path silently. Padding of A and B is NaN (a read past a row poisons the result) and C's
// padding is 777 (must come back unchanged).
//
// Tolerance: as test/kernels/backend-gemm-conv.test.ts, |got - ref| <= 2 (K + 4) 2^-24
// (|alpha| sum |a b| + |beta C|) per element (any float32 summation order); an indexing bug
// (a missing product) is ~0.1. Skipped, with the reason printed, without a webgpu adapter.
// The first use of each pipeline compiles it (0.5-7 s on lavapipe; Mesa caches them on disk).
import { afterEach, describe, expect, it } from 'vitest';
import type { GemmParams } from '../../src/backend/backend.js';
import type { WebGpuBackend } from '../../src/backend/webgpu/backend.js';
import {
  GEMM_DEFAULTS, GEMM_VARIANTS, gemmDispatch, gemmTile, gemmVariantCost, gemmVariantMisfit, gemmVariantName, gemmVecFlags,
  parseGemmVariant, type GemmVariant,
} from '../../src/backend/webgpu/ops/gemm.js';
import { getBackend } from '../../src/backend/registry.js';
import { Rng } from '../../src/util/rng.js';
import { backendAvailable } from '../helpers/backends.js';
import { gemmRef } from '../reference/ref_ops.js';

const U = 2 ** -24;
const webgpuAvailable = backendAvailable('webgpu', 'webgpu gemm variant tests');

interface Case { what: string; m: number; n: number; k: number; transA: boolean; transB: boolean; alpha: number; beta: number; pad: [number, number, number] }

function cases(v: GemmVariant): Case[] {
  return [
    { what: 'NN vec4', m: v.BM + 5, n: v.BN + 4, k: 2 * v.BK + 4, transA: false, transB: false, alpha: 1, beta: 0, pad: [0, 0, 0] },
    { what: 'TT scalar, K < BK', m: v.BM / 2 + 3, n: v.BN + 7, k: v.BK - 1, transA: true, transB: true, alpha: 0.5, beta: -1.5, pad: [1, 1, 1] },
    { what: 'NT scalar A, vec4 B, scalar C', m: v.BM + 3, n: 2 * v.BN + 1, k: v.BK + 4, transA: false, transB: true, alpha: -2, beta: 1, pad: [1, 4, 4] },
    { what: 'TN vec4 A, scalar B, vec4 C', m: v.BM + 12, n: 20, k: 2 * v.BK + 3, transA: true, transB: false, alpha: 1.5, beta: 0.25, pad: [0, 1, 4] },
  ];
}

function params(c: Case): GemmParams {
  const { m, n, k, transA, transB, alpha, beta, pad } = c;
  return { transA, transB, m, n, k, alpha, beta, lda: (transA ? m : k) + pad[0], ldb: (transB ? k : n) + pad[1], ldc: n + pad[2] };
}

/** A rows x cols operand stored with row stride ld, its padding NaN. */
function operand(rows: number, cols: number, ld: number, rng: Rng): Float32Array {
  const x = new Float32Array(rows * ld).fill(NaN);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) x[r * ld + c] = 2 * rng.uniform() - 1;
  return x;
}

async function check(be: WebGpuBackend, v: GemmVariant, c: Case): Promise<void> {
  const g = params(c);
  const rng = new Rng(5, `${gemmVariantName(v)} ${c.what}`);
  const a = g.transA ? operand(g.k, g.m, g.lda, rng) : operand(g.m, g.k, g.lda, rng);
  const b = g.transB ? operand(g.n, g.k, g.ldb, rng) : operand(g.k, g.n, g.ldb, rng);
  const c0 = new Float32Array(g.m * g.ldc).fill(777);
  for (let i = 0; i < g.m; i++) for (let j = 0; j < g.n; j++) c0[i * g.ldc + j] = g.beta === 0 ? NaN : 2 * rng.uniform() - 1;
  const bufs = [a, b, c0].map((x) => {
    const h = be.alloc(x.byteLength);
    be.upload(h, x);
    return h;
  });
  let got: Float32Array;
  try {
    gemmDispatch(be.rt, g, bufs[0], bufs[1], bufs[2], v);
    got = new Float32Array(await be.download(bufs[2]));
  } finally {
    for (const h of bufs) be.free(h);
  }
  const { y, mag } = gemmRef(g, a, b, c0);
  const what = `${gemmVariantName(v)} ${c.what} ${g.m}x${g.n}x${g.k} lda ${g.lda} ldb ${g.ldb} ldc ${g.ldc}`;
  for (let i = 0; i < g.m; i++) {
    for (let j = 0; j < g.ldc; j++) {
      const o = i * g.ldc + j;
      if (j >= g.n) {
        if (got[o] !== 777) expect.fail(`${what}: padding C[${i},${j}] = ${got[o]}, must stay 777`);
        continue;
      }
      const bound = 2 * (g.k + 4) * U * mag[o];
      if (!(Math.abs(got[o] - y[o]) <= bound)) {
        expect.fail(`${what}: C[${i},${j}] = ${got[o]}, reference ${y[o]} (|diff| ${Math.abs(got[o] - y[o]).toExponential(2)} > bound ${bound.toExponential(2)})`);
      }
    }
  }
}

describe('gemm variants: names, limits, selection', () => {
  const saved = process.env.IMAGERATE_WEBGPU_GEMM;
  afterEach(() => {
    if (saved === undefined) delete process.env.IMAGERATE_WEBGPU_GEMM;
    else process.env.IMAGERATE_WEBGPU_GEMM = saved;
  });

  it('names round-trip and bad names say what is expected', () => {
    for (const v of GEMM_VARIANTS) expect(parseGemmVariant(gemmVariantName(v))).toEqual(v);
    expect(() => parseGemmVariant('128x128')).toThrow(/form BMxBN_kBK_tTMxTN_pP/);
    expect(() => parseGemmVariant('128x128_k8_t6x8_p2')).toThrow(/TM must be 4 or 8/);
    expect(() => parseGemmVariant('128x128_k6_t8x8_p2')).toThrow(/BK must be a positive multiple of 4/);
    expect(() => parseGemmVariant('128x128_k8_t8x8_p3')).toThrow(/pipeline is 0, 1 or 2/);
  });

  it('every variant fits 256 threads and 32 KiB (lavapipe), and limits are enforced', () => {
    const limits = { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupStorageSize: 32768 } as GPUSupportedLimits;
    for (const v of GEMM_VARIANTS) expect(gemmVariantMisfit({ limits }, v), gemmVariantName(v)).toBeNull();
    expect(gemmVariantCost(parseGemmVariant('128x128_k16_t8x8_p2'))).toEqual({ threads: 256, bytes: 32768 });
    expect(gemmVariantMisfit({ limits }, parseGemmVariant('128x128_k32_t8x8_p2'))).toMatch(/65536 bytes of workgroup memory > maxComputeWorkgroupStorageSize 32768/);
    expect(gemmVariantMisfit({ limits }, parseGemmVariant('128x128_k8_t8x4_p2'))).toMatch(/512 threads > maxComputeInvocationsPerWorkgroup 256/);
  });

  it('IMAGERATE_WEBGPU_GEMM replaces the large-class variant only', () => {
    delete process.env.IMAGERATE_WEBGPU_GEMM;
    expect(gemmTile(4096, 4096)).toBe(GEMM_DEFAULTS.large);
    expect(gemmTile(64, 4096)).toBe(GEMM_DEFAULTS.small);
    process.env.IMAGERATE_WEBGPU_GEMM = '128x64_k16_t8x4_p1';
    expect(gemmTile(4096, 4096)).toEqual(parseGemmVariant('128x64_k16_t8x4_p1'));
    expect(gemmTile(64, 4096)).toBe(GEMM_DEFAULTS.small);
    process.env.IMAGERATE_WEBGPU_GEMM = 'fastest';
    expect(() => gemmTile(4096, 4096)).toThrow(/IMAGERATE_WEBGPU_GEMM: gemm variant 'fastest' is not of the form/);
  });

  it('the cases take every load and store path, and the set every pipeline', () => {
    const paths = new Set<string>();
    for (const v of GEMM_VARIANTS) {
      for (const c of cases(v)) {
        const g = params(c);
        const f = gemmVecFlags(g, g.m, g.n, g.k);
        paths.add(`A trans=${g.transA} vec=${f.VEC_A}`).add(`B trans=${g.transB} vec=${f.VEC_B}`).add(`C vec=${f.VEC_C}`);
        expect(g.k % v.BK, `${gemmVariantName(v)} ${c.what}: K is not a multiple of BK`).not.toBe(0);
        expect(g.m % v.BM !== 0 || g.n % v.BN !== 0, `${gemmVariantName(v)} ${c.what}: M or N is not a multiple of the block`).toBe(true);
      }
    }
    expect([...paths].sort()).toEqual([
      'A trans=false vec=false', 'A trans=false vec=true', 'A trans=true vec=false', 'A trans=true vec=true',
      'B trans=false vec=false', 'B trans=false vec=true', 'B trans=true vec=false', 'B trans=true vec=true',
      'C vec=false', 'C vec=true',
    ]);
    // Each variant alone takes every path (the four cases are not shared out over variants).
    for (const v of GEMM_VARIANTS) {
      const own = new Set(cases(v).flatMap((c) => {
        const g = params(c);
        const f = gemmVecFlags(g, g.m, g.n, g.k);
        return [`A${+g.transA}${+f.VEC_A}`, `B${+g.transB}${+f.VEC_B}`, `C${+f.VEC_C}`];
      }));
      expect(own.size, gemmVariantName(v)).toBe(10);
    }
    expect(new Set(GEMM_VARIANTS.map((v) => v.PIPELINE))).toEqual(new Set([0, 1, 2]));
  });
});

// Two shapes outside the set that any valid name may ask for (IMAGERATE_WEBGPU_GEMM,
// --variants): fewer vec4 groups in a panel than threads (guarded loads, BK 4), and TM != TN.
const EXTRA = ['32x32_k4_t4x4_p2', '16x64_k8_t4x8_p1'].map(parseGemmVariant);

describe.skipIf(!webgpuAvailable)('gemm variants vs float64 reference', { timeout: 120_000 }, () => {
  for (const v of [...GEMM_VARIANTS, ...EXTRA]) {
    it(gemmVariantName(v), async () => {
      const be = getBackend('webgpu') as WebGpuBackend;
      for (const c of cases(v)) await check(be, v, c);
    });
  }
});
