// SGEMM (kernels/cpu/gemm.cc) through the CPU addon against a float64 reference, on odd shapes,
// every transpose combination, alpha/beta other than 1/0, leading dimensions larger than the
// minimum, 1 and 2 threads, and both micro-kernels (forceIsa 'generic' and 'avx2-fma').
//
// The shapes reach every path of the driver: the triple loop for tiny problems (1x1x1, 3x7x17);
// B streamed in place for M <= 24 (6x1000x25; 7x2000x150 and 20x600x200, also threaded by
// column chunks); the unpacked NT dot-product path when transB (6x25x784, 64x10x84, 16x200x150,
// and 20x600x200 threaded); edge tiles in both dimensions (17x33x65, 129x257x63); several K and M
// cache blocks with threading by rows over a shared B panel (301x299x300); LeNet/Linear layers.
//
// Sentinels: the padding of A and B (the columns between the logical width and lda/ldb) is NaN,
// so a kernel that reads past a row poisons its result; the padding of C holds 777 and must come
// back unchanged; with beta == 0, C starts as NaN, which must not leak through (kernels.h).
//
// The addon is loaded from build/Release/imagerate_cpu.node or $IMAGERATE_CPU_ADDON; without it
// the suite is skipped with the reason printed. K == 0 cannot be passed through the addon (it
// checks k >= 1); gemm_f32 treats it like alpha == 0, which is tested here.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/rng.js';
import { formatGemmTable, runGemmBench } from '../../src/bench/gemm-bench.js';
import { summarise } from '../../src/bench/record.js';
import { ADDON_PATH, loadTestAddon } from '../helpers/addon.js';

interface CpuAddon {
  alloc(bytes: number): number;
  free(id: number): void;
  upload(id: number, data: Float32Array): void;
  download(id: number, bytes: number): Promise<ArrayBuffer>;
  setThreads(n: number): number;
  forceIsa(name: string): string;
  info(): { isa: string; threads: number };
  gemm(ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number, a: number, lda: number,
    b: number, ldb: number, beta: number, c: number, ldc: number): void;
  gemmTimed?(m: number, n: number, k: number, threads: number, iters: number, warmup: number): Float64Array;
  blasInfo?(): { available: boolean; reason?: string; library?: string; config?: string };
  blasTimed?(m: number, n: number, k: number, threads: number, iters: number, warmup: number): Float64Array;
}

const { addon, skipReason } = loadTestAddon<CpuAddon>('gemm kernel');

// forceIsa returns the ISA in effect, which stays 'generic' on a CPU without AVX2+FMA.
const ISAS: string[] = [];
if (addon) {
  const initial = addon.info().isa;
  for (const isa of ['generic', 'avx2-fma']) {
    if (addon.forceIsa(isa) === isa) ISAS.push(isa);
    else console.warn(`gemm: ISA ${isa} skipped: not supported by this CPU`);
  }
  addon.forceIsa(initial);
}
const THREADS = [1, 2];

// [M, N, K]
const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1], [3, 7, 17], [17, 33, 65], [1, 1000, 1], [100, 1, 100], [129, 257, 63], [301, 299, 300],
  [6, 1000, 25], [7, 2000, 150], [16, 200, 150], [64, 120, 400], [64, 10, 84], [6, 25, 784],
  [20, 600, 200],
];
// [alpha, beta]; beta == 0 runs with a NaN-filled C.
const SCALARS: Array<[number, number]> = [[1, 0], [0.5, -1.5], [-2, 1]];

// Tolerance. A float32 dot product of K terms computed in any order (blocked over KC, with or
// without FMA) satisfies |fl(s) - s| <= gamma_K * sum_p |a_ip b_pj| with gamma_K ~ K * u,
// u = 2^-24 (Higham, "Accuracy and Stability of Numerical Algorithms", 3.1). Scaling by alpha
// and adding beta*C cost a few more roundings, so per element:
//   |got - ref| <= 2 * (K + 4) * u * (|alpha| * sum_p |a_ip b_pj| + |beta * c_ij|)
// The factor 2 keeps the bound from being tight; it is still a worst-case bound that needs no
// tuning by shape, and an indexing bug (a missing or extra product, ~0.1 here) is far above it.
const U = 2 ** -24;

interface Problem {
  m: number; n: number; k: number;
  a: Float64Array; b: Float64Array;     // logical op(A) (m x k) and op(B) (k x n), row-major
  prod: Float64Array; absProd: Float64Array;  // sum_p a*b and sum_p |a*b|, m x n
}

function makeProblem(m: number, n: number, k: number): Problem {
  const rng = new Rng(4321, `gemm ${m}x${n}x${k}`);
  const f32 = (x: number) => Math.fround(x);
  const a = new Float64Array(m * k).map(() => f32(2 * rng.uniform() - 1));
  const b = new Float64Array(k * n).map(() => f32(2 * rng.uniform() - 1));
  const prod = new Float64Array(m * n), absProd = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      for (let j = 0; j < n; j++) {
        const t = aip * b[p * n + j];
        prod[i * n + j] += t;
        absProd[i * n + j] += Math.abs(t);
      }
    }
  return { m, n, k, a, b, prod, absProd };
}

// Stores a logical rows x cols matrix as `trans ? cols x rows : rows x cols` with row stride ld,
// padding NaN.
function store(x: Float64Array, rows: number, cols: number, trans: boolean, ld: number): Float32Array {
  const outer = trans ? cols : rows;
  const out = new Float32Array(outer * ld).fill(NaN);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[trans ? c * ld + r : r * ld + c] = x[r * cols + c];
  return out;
}

async function runGemm(a: CpuAddon, pr: Problem, ta: boolean, tb: boolean, alpha: number, beta: number,
  pad: number, c0: Float32Array, ldc: number): Promise<Float32Array> {
  const { m, n, k } = pr;
  const lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + 2 * pad;
  const hA = store(pr.a, m, k, ta, lda), hB = store(pr.b, k, n, tb, ldb);
  const ids = [hA, hB, c0].map((h) => {
    const id = a.alloc(h.byteLength);
    a.upload(id, h);
    return id;
  });
  try {
    a.gemm(ta, tb, m, n, k, alpha, ids[0], lda, ids[1], ldb, beta, ids[2], ldc);
    return new Float32Array(await a.download(ids[2], c0.byteLength));
  } finally {
    for (const id of ids) a.free(id);
  }
}

function check(got: Float32Array, c0: Float32Array, pr: Problem, alpha: number, beta: number, ldc: number, what: string): void {
  const { m, n, k } = pr;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const cOld = beta === 0 ? 0 : c0[i * ldc + j];
      const ref = alpha * pr.prod[i * n + j] + beta * cOld;
      const bound = 2 * (k + 4) * U * (Math.abs(alpha) * pr.absProd[i * n + j] + Math.abs(beta * cOld));
      const v = got[i * ldc + j];
      if (!(Math.abs(v - ref) <= bound)) {
        throw new Error(`${what}: C[${i},${j}] = ${v}, reference ${ref} (|diff| ${Math.abs(v - ref).toExponential(2)} > bound ${bound.toExponential(2)})`);
      }
    }
    for (let j = n; j < ldc && i * ldc + j < got.length; j++) {
      if (got[i * ldc + j] !== 777) throw new Error(`${what}: padding C[${i},${j}] changed to ${got[i * ldc + j]}`);
    }
  }
}

function makeC(pr: Problem, beta: number, ldc: number, rng: Rng): Float32Array {
  const c = new Float32Array(pr.m * ldc).fill(777);
  for (let i = 0; i < pr.m; i++)
    for (let j = 0; j < pr.n; j++) c[i * ldc + j] = beta === 0 ? NaN : 2 * rng.uniform() - 1;
  return c;
}

describe.skipIf(!addon)('gemm_f32 (cpu) vs float64 reference', () => {
  for (const [m, n, k] of SHAPES) {
    it(`${m}x${n}x${k}: 4 transposes x alpha/beta x ld padding x threads x ISAs`, async () => {
      const a = addon!;
      const pr = makeProblem(m, n, k);
      const rng = new Rng(77, `c ${m}x${n}x${k}`);
      const initial = a.info();
      try {
        for (const isa of ISAS) {
          expect(a.forceIsa(isa)).toBe(isa);
          for (const threads of THREADS) {
            a.setThreads(threads);
            for (const ta of [false, true])
              for (const tb of [false, true])
                for (const [alpha, beta] of SCALARS)
                  for (const pad of [0, 3]) {
                    const ldc = n + 2 * pad;
                    const c0 = makeC(pr, beta, ldc, rng);
                    const got = await runGemm(a, pr, ta, tb, alpha, beta, pad, c0, ldc);
                    const what = `${isa}, ${threads} thread(s), transA ${ta}, transB ${tb}, alpha ${alpha}, beta ${beta}, pad ${pad}`;
                    check(got, c0, pr, alpha, beta, ldc, what);
                  }
          }
        }
      } finally {
        a.forceIsa(initial.isa);
        a.setThreads(initial.threads);
      }
    }, 120_000);
  }

  it('alpha == 0 only scales C by beta and reads neither A nor B (BLAS semantics)', async () => {
    const a = addon!;
    const m = 5, n = 9, k = 4;
    const ids = [m * k, k * n].map((len) => {
      const id = a.alloc(4 * len);
      a.upload(id, new Float32Array(len).fill(NaN));
      return id;
    });
    const c = a.alloc(4 * m * n);
    try {
      const c0 = Float32Array.from({ length: m * n }, (_, i) => i - 20);
      for (const [beta, expected] of [[0.5, (x: number) => 0.5 * x], [0, () => 0]] as const) {
        a.upload(c, c0);
        a.gemm(false, false, m, n, k, 0, ids[0], k, ids[1], n, beta, c, n);
        const got = new Float32Array(await a.download(c, 4 * m * n));
        expect(Array.from(got)).toEqual(Array.from(c0, expected));
      }
    } finally {
      for (const id of [...ids, c]) a.free(id);
    }
  });

  it('IMAGERATE_CPU_ISA=generic selects the portable kernel at load time', () => {
    const script = `const a = require(${JSON.stringify(ADDON_PATH)}); process.stdout.write(a.info().isa);`;
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, IMAGERATE_CPU_ISA: 'generic' }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('generic');
  });
});

describe.skipIf(!addon || !addon.gemmTimed)('gemm benchmark exports (run, never timed against a target)', () => {
  it('gemmTimed / blasTimed return per-iteration seconds; the table names a missing OpenBLAS', async () => {
    const a = addon!;
    const before = a.info().threads;
    const ours = a.gemmTimed!(40, 50, 60, 1, 3, 1);
    a.setThreads(before);
    expect(ours).toBeInstanceOf(Float64Array);
    expect(ours.length).toBe(3);
    for (const t of ours) expect(t).toBeGreaterThan(0);
    const info = a.blasInfo!();
    expect(typeof info.available).toBe('boolean');
    if (info.available) {
      expect(Array.from(a.blasTimed!(40, 50, 60, 1, 2, 0)).every((t) => t > 0)).toBe(true);
    } else {
      console.warn(`OpenBLAS comparison not exercised: ${info.reason}`);
      expect(() => a.blasTimed!(40, 50, 60, 1, 2, 0)).toThrow(/OpenBLAS not available/);
    }
    const recs = await runGemmBench({ sizes: [48], threads: [1], iters: 3, addon: ADDON_PATH, pauseMs: 0 });
    expect(recs.length).toBe(info.available ? 2 : 1);
    expect(recs[0]).toMatchObject({ kind: 'kernel', name: 'sgemm', framework: null, precision: 'fp32', iters: 3 });
    const table = formatGemmTable(recs);
    expect(table).toContain('48^3');
    if (!info.available) expect(table).toContain('OpenBLAS: not installed (');
    // Without OpenBLAS the table names the reason and shows no OpenBLAS figure.
    const alone = [{ ...recs[0], notes: 'isa avx2-fma; OpenBLAS: not installed (dlopen failed: test); 3 alternating blocks' }];
    const missing = formatGemmTable(alone);
    expect(missing).toContain('not installed');
    expect(missing).toContain('OpenBLAS: not installed (dlopen failed: test)');
  });

  it('summarise gives interpolated percentiles and flags a wide spread as noisy', () => {
    const s = summarise([5, 1, 4, 2, 3]);
    expect(s).toMatchObject({ median: 3, min: 1, max: 5, n: 5 });
    expect(s.p10).toBeCloseTo(1.4, 12);
    expect(s.p90).toBeCloseTo(4.6, 12);
    expect(s.noisy).toBe(true);
    expect(summarise([1, 1.01, 0.99, 1]).noisy).toBe(false);
  });
});
