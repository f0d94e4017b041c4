// `imagerate bench kernels`: GEMM, convolution (forward, backward-data, backward-filter) and
// pooling at the real layer shapes of the project's models (shapes.ts), and a DeepBench subset,
// on any backend, through the Backend interface: the same entry points the model uses.
//
// Protocol per problem: buffers allocated and filled with N(0, 1) values; `warmup` calls; then
// timed calls, each one enqueued and followed by `await be.sync()`, timed with performance.now()
// around both (the sync of an idle CPU stream costs ~6 us, measured and kept in the record's
// notes). Calls in all: `iters`, or enough for ~`targetSeconds` of work within [minIters,
// maxIters], spread over `rounds` (3) passes over the whole problem list and pooled. The record holds median, p10/p90, GFLOP/s (or GB/s for pooling), the
// arithmetic intensity (FLOPs per compulsory byte), % of the FLOP peak of the threads used
// (host.ts cpuPeak) and, for memory-bound kernels, % of the measured memory bandwidth.
//
// Memory bandwidth (the roofline's slanted roof): measureBandwidth() times the backend's
// scale kernel (y = 1 * x, split across the threads) over two 64 MiB buffers, far beyond the
// last-level cache, counting 8 bytes per element (one read, one write; write-allocate traffic
// is not counted, as in STREAM). It is recorded as kernel 'stream-scale'.
import type { Backend, BufferHandle } from '../backend/backend.js';
import { openBackend } from '../backend/registry.js';
import { Rng } from '../util/rng.js';
import { describeBackendHost, imagerateInfo, type HostInfo } from './host.js';
import { appendRecord, timingFromSeconds, type BenchRecord, type BenchTiming } from './record.js';
import { kernelSuite, isPoolOp, problemBytes, problemFlops, problemShape, type KernelProblem, type KernelSuite } from './shapes.js';
import { gpuPeak, gpuPeakGflops } from './peaks.js';

export interface KernelBenchOptions {
  backend?: string;
  suites: string[];
  threads?: number;
  warmup?: number;
  /** Fixed timed iterations per problem; default adaptive (targetSeconds). */
  iters?: number;
  targetSeconds?: number;
  minIters?: number;
  maxIters?: number;
  /** Inference-only shapes (forward kernels only). */
  forwardOnly?: boolean;
  /** Override the batch of model suites. */
  batch?: number;
  /** Passes over the whole problem list, samples pooled (default 3). */
  rounds?: number;
  out?: string;
  /** Called after each record (progress lines). */
  onRecord?: (r: BenchRecord) => void;
}

function randomBuffer(be: Backend, n: number, rng: Rng): BufferHandle {
  const buf = be.alloc(Math.max(4, n * 4));
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal();
  if (n > 0) be.upload(buf, v);
  return buf;
}

/** Buffers for one problem and a closure that enqueues one call. */
function prepare(be: Backend, p: KernelProblem, rng: Rng): { call: () => void; free: () => void } {
  const bufs: BufferHandle[] = [];
  const mk = (n: number) => {
    const b = randomBuffer(be, n, rng);
    bufs.push(b);
    return b;
  };
  const free = () => { for (const b of bufs) be.free(b); };
  if (p.op === 'gemm') {
    const g = p.gemm;
    const a = mk(g.m * g.k), b = mk(g.k * g.n), c = mk(g.m * g.n);
    return { call: () => be.gemm(g, a, b, c), free };
  }
  if ('conv' in p) {
    const c = p.conv;
    const x = mk(c.n * c.c * c.h * c.w), w = mk(c.k * c.c * c.r * c.s), y = mk(c.n * c.k * c.p * c.q);
    if (p.op === 'conv2dFwd') return { call: () => be.conv2dFwd(c, x, w, null, y), free };
    if (p.op === 'conv2dBwdData') return { call: () => be.conv2dBwdData(c, y, w, x), free };
    return { call: () => be.conv2dBwdFilter(c, x, y, w, null), free };
  }
  const q = p.pool;
  const x = mk(q.n * q.c * q.h * q.w), y = mk(q.n * q.c * q.p * q.q);
  if (p.op === 'maxpool2dFwd' || p.op === 'maxpool2dBwd') {
    const argmax = be.alloc(Math.max(4, q.n * q.c * q.p * q.q * 4));
    bufs.push(argmax);
    be.maxpool2dFwd(q, x, y, argmax); // valid indices for the backward
    if (p.op === 'maxpool2dFwd') return { call: () => be.maxpool2dFwd(q, x, y, argmax), free };
    return { call: () => be.maxpool2dBwd(q, y, argmax, x), free };
  }
  if (p.op === 'avgpool2dFwd') return { call: () => be.avgpool2dFwd(q, x, y), free };
  return { call: () => be.avgpool2dBwd(q, y, x), free };
}

/** Times `call` + sync: warm-up, a probe, then adaptive or fixed iterations. Seconds per call. */
/**
 * Seconds per call: the device's own timer where the backend has one (timeOnDevice: WebGPU
 * timestamp-query, CUDA events), else host wall clock around call() + sync(), the
 * submit-and-wait fence. timerMethod(be) says which, for the record.
 */
export async function timeCalls(be: Backend, call: () => void, o: { warmup: number; iters?: number; targetSeconds: number; minIters: number; maxIters: number }): Promise<number[]> {
  const once = async (): Promise<number> => {
    if (be.timeOnDevice && be.deviceTimer) {
      const t = await be.timeOnDevice(call);
      if (t !== null) return t;
    }
    const t0 = performance.now();
    call();
    await be.sync();
    return (performance.now() - t0) / 1000;
  };
  for (let i = 0; i < o.warmup; i++) call();
  await be.sync();
  let iters = o.iters;
  if (iters === undefined) {
    const probe = await once();
    iters = Math.min(o.maxIters, Math.max(o.minIters, Math.ceil(o.targetSeconds / Math.max(probe, 1e-6))));
  }
  const times: number[] = [];
  for (let i = 0; i < iters; i++) times.push(await once());
  return times;
}

/** How timeCalls reads the clock on `be`. */
export function timerMethod(be: Backend): BenchTiming['method'] {
  return be.timeOnDevice && be.deviceTimer ? be.deviceTimer : 'wall-clock';
}

/** Empty-sync cost of the backend (seconds, median of 50), for the notes. */
async function syncCost(be: Backend): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    await be.sync();
    t.push((performance.now() - t0) / 1000);
  }
  t.sort((a, b) => a - b);
  return t[25];
}

export interface BandwidthResult {
  gbps: number;
  timing: BenchTiming;
  bytes: number;
  method: string;
}

/** STREAM-scale-style bandwidth of the backend's memory (see the header). */
export async function measureBandwidth(be: Backend, o: { mib?: number; iters?: number } = {}): Promise<BandwidthResult> {
  const n = ((o.mib ?? 64) * 1024 * 1024) / 4;
  const x = be.alloc(n * 4), y = be.alloc(n * 4);
  try {
    be.fill(n, 1, x);
    be.fill(n, 0, y);
    const times = await timeCalls(be, () => be.scale(n, 1, x, y), { warmup: 2, iters: o.iters ?? 10, targetSeconds: 0, minIters: 1, maxIters: 100 });
    const timing = timingFromSeconds(times, timerMethod(be));
    const bytes = 8 * n;
    return { gbps: bytes / (timing.medianMs * 1e-3) / 1e9, timing, bytes, method: `scale kernel y = 1*x over 2 x ${o.mib ?? 64} MiB, 8 bytes per element (read + write; write-allocate not counted, as STREAM)` };
  } finally {
    be.free(x);
    be.free(y);
  }
}

/** FLOP peak (GFLOP/s) of the resources a kernel ran on. */
export function backendPeakGflops(be: Backend, host: HostInfo, threads: number | null): number | null {
  if (be.name === 'cpu') {
    const per = host.cpuPeak.perCoreGflops;
    return per === null ? null : per * Math.min(threads ?? host.cores, host.cores);
  }
  // A software WebGPU adapter (Mesa lavapipe) runs its shaders on every CPU core.
  if (be.name === 'webgpu' && /llvmpipe|lavapipe|software|swiftshader/i.test(be.device)) {
    const per = host.cpuPeak.perCoreGflops;
    return per === null ? null : per * host.cores;
  }
  return gpuPeakGflops(be.device, 'fp32');
}

function baseRecord(be: Backend, host: HostInfo, threads: number | null): Omit<BenchRecord, 'name' | 'shape' | 'warmup' | 'iters' | 'timing' | 'notes' | 'peakGflops' | 'pctOfPeak'> {
  return {
    imagerate: imagerateInfo(), date: new Date().toISOString(), host, backend: be.name, kind: 'kernel', mode: null, batch: null,
    precision: 'fp32', data: 'synthetic', loading: 'compute', threads, framework: null,
  };
}

export interface KernelBenchResult {
  records: BenchRecord[];
  bandwidth: BenchRecord;
  suites: KernelSuite[];
}

export async function runKernelBench(o: KernelBenchOptions): Promise<KernelBenchResult> {
  const be = await openBackend(o.backend ?? 'cpu');
  if (o.threads !== undefined) be.setThreads?.(o.threads);
  const threads = be.threads?.() ?? null;
  const host = describeBackendHost(be);
  const warmup = o.warmup ?? 2;
  const timingOpts = { warmup, iters: o.iters, targetSeconds: o.targetSeconds ?? 0.25, minIters: o.minIters ?? 5, maxIters: o.maxIters ?? 100 };
  const rng = new Rng(7, 'kernel-bench');
  const sync = await syncCost(be);
  const peak = backendPeakGflops(be, host, threads);
  const records: BenchRecord[] = [];
  const emit = (r: BenchRecord) => {
    records.push(r);
    if (o.out) appendRecord(o.out, r);
    o.onRecord?.(r);
  };

  // The bandwidth roof first: it is what the pooling kernels are measured against.
  const bw = await measureBandwidth(be);
  const gpuBw = be.name === 'cpu' ? null : gpuPeak(be.device)?.memGbps ?? null;
  const bandwidth: BenchRecord = {
    ...baseRecord(be, host, threads), name: 'stream-scale', shape: { elements: bw.bytes / 8, bytesPerElement: 8 }, warmup: 2,
    iters: 10, timing: bw.timing, bytes: bw.bytes, gbps: bw.gbps, peakGbps: gpuBw, arithmeticIntensity: 0, peakGflops: null, pctOfPeak: null,
    suite: 'bandwidth', label: 'memory bandwidth (measured)', notes: `roofline bandwidth roof: ${bw.method}`,
  };
  emit(bandwidth);

  // Rounds: every problem of every suite is timed in `rounds` passes over the whole list, its
  // samples pooled. A slow phase of the machine (seconds long on a shared VM) then lands on
  // every problem a little instead of on a few problems entirely, which is what makes two runs'
  // medians agree.
  const rounds = Math.max(1, o.rounds ?? 3);
  const suites: KernelSuite[] = o.suites.map((name) => kernelSuite(be, name, { batch: o.batch, training: !o.forwardOnly }));
  const work = suites.flatMap((suite) => suite.problems.map((p) => ({ suite, p, times: [] as number[], total: 0 })));
  const share = (total: number, r: number) => Math.floor((total * (r + 1)) / rounds) - Math.floor((total * r) / rounds);
  for (let r = 0; r < rounds; r++) {
    for (const w of work) {
      if (r > 0 && share(w.total, r) === 0) continue;
      const { call, free } = prepare(be, w.p, rng);
      try {
        if (r === 0) {
          // Size the run on the first round: `iters` calls in all, or ~targetSeconds of calls.
          if (o.iters !== undefined) w.total = Math.max(1, Math.floor(o.iters));
          else {
            const probe = (await timeCalls(be, call, { ...timingOpts, iters: 1 }))[0];
            w.total = Math.min(timingOpts.maxIters, Math.max(timingOpts.minIters, Math.ceil(timingOpts.targetSeconds / Math.max(probe, 1e-6))));
            w.times.push(probe);
          }
          const n = share(w.total, 0) - w.times.length;
          if (n > 0) w.times.push(...await timeCalls(be, call, { ...timingOpts, warmup: o.iters !== undefined ? timingOpts.warmup : 0, iters: n }));
        } else {
          w.times.push(...await timeCalls(be, call, { ...timingOpts, iters: share(w.total, r) }));
        }
      } finally {
        free();
      }
    }
  }
  for (const { suite, p, times } of work) {
    {
      const timing = timingFromSeconds(times, timerMethod(be));
      const flops = problemFlops(p);
      const bytes = problemBytes(p);
      const seconds = timing.medianMs * 1e-3;
      const gflops = flops / seconds / 1e9;
      const gbps = bytes / seconds / 1e9;
      const pool = isPoolOp(p.op);
      const roofGbps = gpuBw ?? bw.gbps;
      emit({
        ...baseRecord(be, host, threads),
        name: p.op, shape: problemShape(p), batch: suite.batch ?? ('conv' in p ? p.conv.n : 'pool' in p ? p.pool.n : null),
        warmup, iters: times.length, timing, flops, gflops, tflops: gflops / 1e3, bytes, gbps,
        arithmeticIntensity: flops / bytes,
        peakGflops: peak, pctOfPeak: !pool && peak ? (100 * gflops) / peak : null,
        peakGbps: roofGbps,
        suite: suite.name, label: p.label,
        flopsNote: pool ? 'pooling: one compare/add per window element; reported as GB/s against the measured bandwidth' : 'multiply-adds x 2 (bias not counted)',
        notes: `${pool ? `memory-bound: ${((100 * gbps) / roofGbps).toFixed(1)} % of the measured ${roofGbps.toFixed(1)} GB/s; ` : ''}` +
          `${timerMethod(be) === 'wall-clock' ? `each call enqueued then synced (empty sync ${(sync * 1e6).toFixed(1)} us)` : `device time from ${timerMethod(be)} around each call`}; ${rounds} rounds over the suite, ${warmup} warm-up calls each; ${suite.source}`,
      });
    }
  }
  return { records, bandwidth, suites };
}

function fmt(x: number | null | undefined, d = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d);
}

/** Plain-text table of kernel records. */
export function formatKernelTable(records: BenchRecord[]): string {
  const head = ['suite', 'kernel', 'layer', 'median ms', 'p10-p90 ms', 'GFLOP/s', 'GB/s', '% peak'];
  const rows = records.map((r) => [
    r.suite ?? '', r.name, r.label ?? '', fmt(r.timing.medianMs, 3) + (r.timing.noisy ? '*' : ''),
    `${fmt(r.timing.p10Ms, 3)}-${fmt(r.timing.p90Ms, 3)}`,
    r.name.includes('pool') || r.name === 'stream-scale' ? '' : fmt(r.gflops),
    fmt(r.gbps), r.name.includes('pool') ? (r.gbps && r.peakGbps ? `${fmt((100 * r.gbps) / r.peakGbps)} bw` : '') : fmt(r.pctOfPeak),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const first = records[0];
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), ''];
  if (first) {
    const p = first.host.cpuPeak;
    out.push(`fp32; median of the timed calls, each synced; * = noisy (p10-p90 spread > 10 % of median); ${first.threads ? `threads ${first.threads}` : `${first.backend}: threads not applicable`}`);
    if (first.backend === 'cpu') out.push(`peak: ${p.formula}, scaled to the threads used${p.note ? `; ${p.note}` : ''}`);
  }
  return out.join('\n');
}
