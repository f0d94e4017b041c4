// SGEMM benchmark: our kernel (kernels/cpu/gemm.cc) beside OpenBLAS, in the same run, on square
// NN problems (C = A B, alpha 1, beta 0), as benchmark records (record.ts).
//
// Protocol per (size, threads): setThreads(threads) (waits for the addon's stream to idle),
// one untimed call to size the run (iters: ~1 s of calls, 5..200), then `rounds` (default 3)
// alternating blocks: gemmTimed(..., warmup = 2) for ours, blasTimed with the same arguments,
// a pause. Alternating makes both meet the same background load on a shared machine; the
// pause is there because OpenBLAS's pthread workers busy-wait after each call and would steal
// a core from whatever is timed next (on a 2-core machine that halves our 2-thread figure).
// Each call is timed alone with steady_clock in C++ (native/gemm_bench.cc); the record holds
// the median and the p10/p90 spread.
//
// OpenBLAS is dlopen'ed by the addon at run time. When it is missing, our records say
// "OpenBLAS: not installed (<reason>)" and no OpenBLAS figure is produced, never a guess.
//
// Other backends (runDeviceGemmBench: webgpu, cuda) run the same square NN problems through
// Backend.gemm, timed per call by the device's own timer where it has one (timeCalls in
// kernel-bench.ts). Their library column (cuBLAS) comes from the PyTorch GPU baseline script.
// This module prints nothing; the CLI (src/cli/bench.ts) prints formatGemmTable(records).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { addonPathFromEnv } from '../util/paths.js';
import { describeHost, imagerateInfo, type HostInfo } from './host.js';
import { appendRecord, throughput, timingFromSeconds, type BenchRecord, type BenchTiming } from './record.js';
import { openBackend } from '../backend/registry.js';
import { gemmParams } from './shapes.js';
import { backendPeakGflops, timeCalls, timerMethod } from './kernel-bench.js';
import { describeBackendHost } from './host.js';
import { Rng } from '../util/rng.js';

/** The benchmark exports of imagerate_cpu.node (native/gemm_bench.h), plus the two it needs from the glue. */
export interface GemmBenchAddon {
  gemmTimed(m: number, n: number, k: number, threads: number, iters: number, warmup: number): Float64Array;
  blasTimed(m: number, n: number, k: number, threads: number, iters: number, warmup: number): Float64Array;
  blasInfo(): { available: boolean; reason?: string; library?: string; config?: string };
  cpuClockGhz?(): number;
  setThreads(n: number): number | void;
  info(): { isa: string; threads: number };
}

export interface GemmBenchOptions {
  sizes?: number[];
  threads?: number[];
  /** Timed iterations per point; default: enough for ~1 s of calls, at least 5, at most 200. */
  iters?: number;
  warmup?: number;
  /** Append the records to this JSONL file. */
  out?: string;
  /** Addon path; default $IMAGERATE_CPU_ADDON, else build/Release/imagerate_cpu.node. */
  addon?: string;
  /** Pause after each OpenBLAS block, in ms (default 300). */
  pauseMs?: number;
  /** Alternating blocks of ours / OpenBLAS per point (default 3), iters split between them. */
  rounds?: number;
}

const MIN_ITERS = 5;
const MAX_ITERS = 200;
const TARGET_SECONDS = 1.0;

export function loadGemmBenchAddon(path?: string): GemmBenchAddon {
  const p = path ?? addonPathFromEnv('IMAGERATE_CPU_ADDON', 'imagerate_cpu');
  if (!existsSync(p)) throw new Error(`CPU addon not built (${p} is missing; run npm run build:native)`);
  const addon = createRequire(import.meta.url)(p) as Partial<GemmBenchAddon>;
  if (typeof addon.gemmTimed !== 'function') throw new Error(`${p} has no gemmTimed export (built without native/gemm_bench.cc?)`);
  return addon as GemmBenchAddon;
}

/** 'OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ... Cooperlake ...' -> 'openblas 0.3.21'. */
export function openblasName(config: string | undefined): string {
  const m = /OpenBLAS\s+([\w.]+)/i.exec(config ?? '');
  return m ? `openblas ${m[1]}` : 'openblas';
}

function itersFor(secondsPerCall: number, fixed: number | undefined): number {
  if (fixed !== undefined) return Math.max(1, Math.floor(fixed));
  const n = Math.ceil(TARGET_SECONDS / Math.max(secondsPerCall, 1e-6));
  return Math.min(MAX_ITERS, Math.max(MIN_ITERS, n));
}

export async function runGemmBench(opts: GemmBenchOptions = {}): Promise<BenchRecord[]> {
  const sizes = opts.sizes ?? [1024, 2048];
  const threadList = opts.threads ?? [1, 2];
  const warmup = opts.warmup ?? 2;
  const addon = loadGemmBenchAddon(opts.addon);
  const blas = addon.blasInfo();
  const framework = blas.available ? openblasName(blas.config) : null;
  const previousThreads = addon.info().threads;
  const clock = addon.cpuClockGhz?.();
  const host: HostInfo = describeHost({ measuredClockGhz: clock });
  const isa = addon.info().isa;
  const records: BenchRecord[] = [];

  const record = (n: number, threads: number, times: Float64Array, fw: string | null, notes: string): BenchRecord => {
    const perCore = host.cpuPeak.perCoreGflops;
    const peak = perCore === null ? null : perCore * Math.min(threads, host.cores);
    return sgemmRecord({ host, backend: 'cpu', n, threads, warmup, iters: times.length, timing: timingFromSeconds(times), peak, framework: fw, notes });
  };

  try {
    for (const n of sizes) {
      for (const threads of threadList) {
        addon.setThreads(threads);
        const probe = addon.gemmTimed(n, n, n, threads, 1, 0)[0];
        const iters = itersFor(probe, opts.iters);
        // Alternate blocks of ours and OpenBLAS, so that both meet the same background load.
        const rounds = Math.max(1, Math.min(opts.rounds ?? 3, iters));
        const ours: number[] = [], theirs: number[] = [];
        for (let r = 0; r < rounds; r++) {
          const block = Math.floor(iters * (r + 1) / rounds) - Math.floor(iters * r / rounds);
          ours.push(...addon.gemmTimed(n, n, n, threads, block, warmup));
          if (!blas.available) continue;
          theirs.push(...addon.blasTimed(n, n, n, threads, block, warmup));
          await sleep(opts.pauseMs ?? 300);
        }
        const blasNote = blas.available
          ? `compared with ${blas.config ?? 'OpenBLAS'} (${blas.library ?? 'libopenblas'})`
          : `OpenBLAS: not installed (${blas.reason ?? 'unknown reason'})`;
        const protocol = `${rounds} alternating blocks, ${warmup} warm-up calls each`;
        records.push(record(n, threads, Float64Array.from(ours), null, `isa ${isa}; ${blasNote}; ${protocol}`));
        if (blas.available) {
          records.push(record(n, threads, Float64Array.from(theirs), framework,
            `cblas_sgemm via dlopen (${blas.library ?? 'libopenblas'}); ${protocol}`));
        }
      }
    }
  } finally {
    addon.setThreads(previousThreads);
  }
  if (opts.out) for (const r of records) appendRecord(opts.out, r);
  return records;
}

function fmt(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

/** A plain-text table: size, threads, ours and OpenBLAS GFLOP/s (median), ratio, % of peak. */
export function formatGemmTable(records: BenchRecord[]): string {
  const rows: string[][] = [['size', 'threads', 'ours GFLOP/s', 'OpenBLAS GFLOP/s', 'ours/OpenBLAS', 'ours % of peak', 'OpenBLAS % of peak']];
  const ours = records.filter((r) => r.name === 'sgemm' && r.framework === null);
  const notes: string[] = [];
  for (const r of ours) {
    const n = Number(r.shape.n);
    const theirs = records.find((b) => b.name === 'sgemm' && b.framework !== null && Number(b.shape.n) === n && b.threads === r.threads);
    const missing = /OpenBLAS: not installed \(.*\)/.exec(r.notes);
    const mark = (x: BenchRecord) => (x.timing.noisy ? '*' : '');
    rows.push([
      `${n}^3`,
      String(r.threads ?? "-"),
      fmt(r.gflops) + mark(r),
      theirs ? fmt(theirs.gflops) + mark(theirs) : missing ? 'not installed' : '-',
      theirs && r.gflops && theirs.gflops ? fmt(r.gflops / theirs.gflops, 2) : '-',
      fmt(r.pctOfPeak),
      theirs ? fmt(theirs.pctOfPeak) : '-',
    ]);
    if (missing && !notes.includes(missing[0])) notes.push(missing[0]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => row.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  const first = ours[0] ?? records[0];
  if (first) {
    const lo = Math.min(...records.map((r) => r.iters)), hi = Math.max(...records.map((r) => r.iters));
    const p = first.host.cpuPeak;
    const protocol = first.notes.split('; ').find((x) => x.includes('alternating')) ?? `${first.warmup} warm-up calls`;
    out.push('', `timing: median of ${lo === hi ? lo : `${lo}-${hi}`} timed calls per point (${protocol}); ` +
      'NN, alpha 1, beta 0; * = noisy (p10-p90 spread > 10 % of median)');
    out.push(`peak: ${p.formula}, scaled to the threads used${p.note ? `; ${p.note}` : ''}`);
    const theirs = records.find((r) => r.framework !== null);
    if (theirs) out.push(`OpenBLAS: ${theirs.framework}: ${first.notes.split('; ')[1].replace(/^compared with /, '')}`);
    out.push(`ours: ${first.notes.split(';')[0]}`);
  }
  out.push(...notes);
  return out.join('\n');
}

/**
 * The record of one square NN SGEMM point (C = A B, alpha 1, beta 0), ours or a library's. A
 * kernel variant (the WebGPU sweep, gemm-variants.ts) goes into the shape, so that each
 * variant is a figure of its own across runs.
 */
export function sgemmRecord(o: { host: HostInfo; backend: string; n: number; threads: number | null; warmup: number; iters: number; timing: BenchTiming;
  peak: number | null; framework: string | null; notes: string; variant?: { name: string; defines: Record<string, number | boolean> } }): BenchRecord {
  const { n } = o;
  return {
    imagerate: imagerateInfo(), date: new Date().toISOString(), host: o.host, backend: o.backend, kind: 'kernel', name: 'sgemm',
    shape: { m: n, n, k: n, transA: false, transB: false, alpha: 1, beta: 0, layout: 'row-major', ...(o.variant ? { variant: o.variant.name, defines: o.variant.defines } : {}) },
    mode: null, batch: null, precision: 'fp32', data: 'synthetic', loading: 'compute', threads: o.threads,
    warmup: o.warmup, iters: o.iters, timing: o.timing,
    ...throughput(2 * n * n * n, o.timing, o.peak), framework: o.framework, notes: o.notes,
  };
}

/** Which WebGPU GEMM variant an n^3 problem runs, and the Dawn options, for the notes ('' on other backends). */
async function kernelNote(backend: string, n: number): Promise<string> {
  if (backend !== 'webgpu') return '';
  const g = await import('../backend/webgpu/ops/gemm.js');
  const { dawnOptions } = await import('../backend/webgpu/device.js');
  const v = g.gemmTile(n, n);
  const env = g.gemmEnvVariant() === v ? ` (IMAGERATE_WEBGPU_GEMM=${process.env.IMAGERATE_WEBGPU_GEMM})` : '';
  return `gemm.wgsl variant ${g.gemmVariantName(v)}${env}; dawn options: ${dawnOptions().join(' ')}; `;
}

/** SGEMM at square sizes on a device backend (webgpu, cuda) through Backend.gemm. */
export async function runDeviceGemmBench(backend: string, opts: Pick<GemmBenchOptions, 'sizes' | 'iters' | 'warmup' | 'out'> = {}): Promise<BenchRecord[]> {
  const be = await openBackend(backend);
  const host = describeBackendHost(be);
  const warmup = opts.warmup ?? 2;
  const peak = backendPeakGflops(be, host, null);
  const rng = new Rng(11, 'gemm-bench');
  const records: BenchRecord[] = [];
  for (const n of opts.sizes ?? [1024, 2048]) {
    const bytes = n * n * 4;
    const a = be.alloc(bytes), b = be.alloc(bytes), c = be.alloc(bytes);
    try {
      const fill = () => Float32Array.from({ length: n * n }, () => rng.normal());
      be.upload(a, fill());
      be.upload(b, fill());
      const p = gemmParams(n, n, n);
      const call = () => be.gemm(p, a, b, c);
      const times = await timeCalls(be, call, { warmup, iters: opts.iters, targetSeconds: TARGET_SECONDS, minIters: MIN_ITERS, maxIters: MAX_ITERS });
      const timing = timingFromSeconds(times, timerMethod(be));
      const r = sgemmRecord({
        host, backend: be.name, n, threads: null, warmup, iters: times.length, timing, peak, framework: null,
        notes: `${be.device}; ${await kernelNote(be.name, n)}${timing.method === 'wall-clock' ? 'host clock around each call and a fence' : `device time from ${timing.method}`}; ${warmup} warm-up calls`,
      });
      records.push(r);
      if (opts.out) appendRecord(opts.out, r);
    } finally {
      be.free(a); be.free(b); be.free(c);
    }
  }
  return records;
}
