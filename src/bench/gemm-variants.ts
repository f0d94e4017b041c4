// The WebGPU SGEMM variant sweep: `imagerate bench gemm --backend webgpu --variants all|<names>`.
//
// Times each variant of kernels/wgsl/gemm.wgsl (GEMM_VARIANTS in src/backend/webgpu/ops/gemm.ts,
// or any names given) on square NN problems (C = A B, alpha 1, beta 0), so that one run on a
// GPU finds the fastest defines. Protocol per size:
//   1. every variant that fits the device's limits (else: skipped, with the limit it exceeds)
//      runs once, and SAMPLES elements of C are checked against a float64 dot product on the
//      host with the tests' bound, 2 (K + 4) 2^-24 sum |a_ik b_kj|: a variant the driver
//      miscompiles is reported wrong and not timed (an indexing bug is off by ~1, far above);
//   2. `rounds` passes over the variants, each timing a block of calls per variant (device time
//      from timestamp queries where the adapter has them; timeCalls in kernel-bench.ts), the
//      blocks pooled: a slow phase of a shared machine is spread over every variant.
// One record per (variant, size): the sgemm record of the plain bench with the variant's name
// and its full defines in `shape` (so each variant is its own figure across runs) and the Dawn
// options in the notes. The best per size is the highest median GFLOP/s.
import type { Backend, BufferHandle } from '../backend/backend.js';
import type { Defines } from '../backend/webgpu/shaders.js';
import type { GemmVariant } from '../backend/webgpu/ops/gemm.js';
import { openBackend } from '../backend/registry.js';
import { describeBackendHost } from './host.js';
import { appendRecord, timingFromSeconds, type BenchRecord } from './record.js';
import { backendPeakGflops, timeCalls, timerMethod } from './kernel-bench.js';
import { gemmParams } from './shapes.js';
import { sgemmRecord } from './gemm-bench.js';
import { Rng } from '../util/rng.js';

const SAMPLES = 64;
const U = 2 ** -24;

export interface GemmSweepOptions {
  sizes?: number[];
  /** Variant names, or ['all'] for GEMM_VARIANTS. */
  variants?: string[];
  /** Timed calls per variant and size (default: ~1 s of calls, 5..200), split over the rounds. */
  iters?: number;
  warmup?: number;
  /** Interleaved passes over the variants (default 3). */
  rounds?: number;
  out?: string;
}

/** One line of the sweep per (variant, size): a record, or why there is none. */
export interface GemmSweepRow {
  variant: string;
  n: number;
  threads: number;
  workgroupBytes: number;
  isDefault: boolean;
  record?: BenchRecord;
  skipped?: string;
  wrong?: string;
}

export interface GemmSweepResult { rows: GemmSweepRow[]; records: BenchRecord[]; device: string; dawnOptions: string }

/** The first of SAMPLES sampled elements of C outside its error bound, described; null when all are inside. */
function spotCheck(n: number, a: Float32Array, b: Float32Array, c: Float32Array, rng: Rng): string | null {
  for (let s = 0; s < SAMPLES; s++) {
    // The corners first (edge blocks), then random elements.
    const i = s < 4 ? (s & 1) * (n - 1) : rng.int(n);
    const j = s < 4 ? (s >> 1) * (n - 1) : rng.int(n);
    let ref = 0, mag = 0;
    for (let p = 0; p < n; p++) {
      const t = a[i * n + p] * b[p * n + j];
      ref += t;
      mag += Math.abs(t);
    }
    const got = c[i * n + j];
    const bound = 2 * (n + 4) * U * mag;
    if (!(Math.abs(got - ref) <= bound)) {
      return `C[${i},${j}] = ${got}, float64 reference ${ref} (|diff| ${Math.abs(got - ref).toExponential(2)} > bound ${bound.toExponential(2)})`;
    }
  }
  return null;
}

export async function runGemmVariantSweep(backend: string, opts: GemmSweepOptions = {}): Promise<GemmSweepResult> {
  if (backend !== 'webgpu') throw new Error(`--variants applies to the webgpu backend (its WGSL GEMM variants), not ${backend}`);
  const g = await import('../backend/webgpu/ops/gemm.js');
  const names = opts.variants ?? ['all'];
  const variants: GemmVariant[] = names.includes('all') ? [...g.GEMM_VARIANTS] : names.map(g.parseGemmVariant);
  const be = await openBackend(backend);
  const rt = (be as Backend & { rt: Parameters<typeof g.gemmDispatch>[0] }).rt;
  const host = describeBackendHost(be);
  const peak = backendPeakGflops(be, host, null);
  const warmup = opts.warmup ?? 2;
  const rounds = Math.max(1, Math.floor(opts.rounds ?? 3));
  const dawnOptions = (await import('../backend/webgpu/device.js')).dawnOptions().join(' ');
  const rng = new Rng(11, 'gemm-variants');
  const rows: GemmSweepRow[] = [];
  const records: BenchRecord[] = [];
  for (const n of opts.sizes ?? [1024, 2048]) {
    const fill = () => Float32Array.from({ length: n * n }, () => rng.normal());
    const ha = fill(), hb = fill();
    const bufs: BufferHandle[] = [];
    const alloc = () => {
      const h = be.alloc(n * n * 4);
      bufs.push(h);
      return h;
    };
    try {
      const a = alloc(), b = alloc(), c = alloc();
      be.upload(a, ha);
      be.upload(b, hb);
      const p = gemmParams(n, n, n);
      const live: Array<{ row: GemmSweepRow; v: GemmVariant; defines: Defines; times: number[]; iters?: number }> = [];
      for (const v of variants) {
        const name = g.gemmVariantName(v);
        const cost = g.gemmVariantCost(v);
        const row: GemmSweepRow = {
          variant: name, n, threads: cost.threads, workgroupBytes: cost.bytes,
          isDefault: name === g.gemmVariantName(g.GEMM_DEFAULTS.large),
        };
        rows.push(row);
        const misfit = g.gemmVariantMisfit(rt, v);
        if (misfit) {
          row.skipped = misfit;
          continue;
        }
        be.upload(c, new Float32Array(n * n).fill(NaN));
        g.gemmDispatch(rt, p, a, b, c, v);
        const wrong = spotCheck(n, ha, hb, new Float32Array(await be.download(c)), rng);
        if (wrong) {
          row.wrong = wrong;
          continue;
        }
        const defines: Defines = { ...v, TRANS_A: false, TRANS_B: false, ...g.gemmVecFlags(p, n, n, n) };
        live.push({ row, v, defines, times: [] });
      }
      for (let r = 0; r < rounds; r++) {
        for (const x of live) {
          const share = (total: number) => Math.max(1, Math.ceil(total / rounds));
          const iters = opts.iters !== undefined ? share(opts.iters) : x.iters;
          const times = await timeCalls(be, () => g.gemmDispatch(rt, p, a, b, c, x.v), {
            warmup: r === 0 ? warmup : 1, iters, targetSeconds: 1 / rounds, minIters: share(5), maxIters: share(200),
          });
          x.iters ??= times.length;
          x.times.push(...times);
        }
      }
      for (const x of live) {
        const timing = timingFromSeconds(x.times, timerMethod(be));
        const clock = timing.method === 'wall-clock' ? 'host clock around each call and a fence' : `device time from ${timing.method}`;
        const rec = sgemmRecord({
          host, backend: be.name, n, threads: null, warmup, iters: x.times.length, timing, peak, framework: null,
          variant: { name: x.row.variant, defines: x.defines },
          notes: `${be.device}; gemm.wgsl variant ${x.row.variant} (${x.row.threads} threads, ${x.row.workgroupBytes} B workgroup memory); ` +
            `${clock}; ${rounds} rounds interleaved with the other variants, ${warmup} warm-up calls; ` +
            `checked against float64 on ${SAMPLES} sampled elements; dawn options: ${dawnOptions}`,
        });
        x.row.record = rec;
        records.push(rec);
        if (opts.out) appendRecord(opts.out, rec);
      }
    } finally {
      for (const h of bufs) be.free(h);
    }
  }
  return { rows, records, device: be.device, dawnOptions };
}

/** The best variant per size (highest median GFLOP/s), by size. */
export function bestVariants(rows: GemmSweepRow[]): Map<number, GemmSweepRow> {
  const best = new Map<number, GemmSweepRow>();
  for (const r of rows) {
    const cur = best.get(r.n);
    if (r.record?.gflops && (!cur || r.record.gflops > (cur.record!.gflops ?? 0))) best.set(r.n, r);
  }
  return best;
}

/** Variant x size table of median GFLOP/s (p10-p90 range), skipped and wrong variants, and the best per size. */
export function formatGemmSweep(res: GemmSweepResult): string {
  const sizes = [...new Set(res.rows.map((r) => r.n))];
  const names = [...new Set(res.rows.map((r) => r.variant))];
  const best = bestVariants(res.rows);
  const gf = (rec: BenchRecord, ms: number) => (rec.flops! / (ms * 1e-3) / 1e9);
  const header = ['variant', 'threads', 'wg mem', ...sizes.map((n) => `${n}^3 GFLOP/s`)];
  const table: string[][] = [header];
  const notes: string[] = [];
  for (const name of names) {
    const first = res.rows.find((r) => r.variant === name)!;
    const cells = sizes.map((n) => {
      const r = res.rows.find((x) => x.variant === name && x.n === n)!;
      if (r.skipped) return 'skipped';
      if (r.wrong) return 'WRONG';
      const t = r.record!.timing;
      const mark = best.get(n) === r ? ' <- best' : '';
      return `${r.record!.gflops!.toFixed(1)} (${gf(r.record!, t.p90Ms).toFixed(1)}-${gf(r.record!, t.p10Ms).toFixed(1)})${t.noisy ? '*' : ''}${mark}`;
    });
    for (const r of res.rows.filter((x) => x.variant === name)) {
      if (r.skipped && !notes.some((l) => l.startsWith(`${name}: skipped`))) notes.push(`${name}: skipped (${r.skipped})`);
      if (r.wrong) notes.push(`${name} at ${r.n}^3: WRONG, not timed: ${r.wrong}`);
    }
    table.push([`${name}${first.isDefault ? ' (default)' : ''}`, String(first.threads), `${first.workgroupBytes / 1024} KiB`, ...cells]);
  }
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  const out = [line(table[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...table.slice(1).map(line), ''];
  const rec = res.records[0];
  if (rec) {
    out.push(`${res.device}; ${rec.timing.method}; NN, alpha 1, beta 0; GFLOP/s of the median time (in brackets: of the p90 and p10 times); ` +
      '* = noisy (p10-p90 spread > 10 % of median)');
  }
  out.push(`dawn options: ${res.dawnOptions}`);
  for (const [n, r] of best) out.push(`best at ${n}^3: ${r.variant} ${r.record!.gflops!.toFixed(1)} GFLOP/s (run models with it: IMAGERATE_WEBGPU_GEMM=${r.variant})`);
  out.push(...notes);
  return out.join('\n');
}
