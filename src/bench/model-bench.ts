// Model throughput: images/s of one model on one backend, training (forward + backward + SGD
// update) and inference (forward only, eval mode) kept apart. Each timed iteration ends with a
// sync, so its wall-clock time covers all the device work it queued.
//
// Data and loading (every record says which):
//   data 'synthetic', loading 'compute'   N(0, 1) images and random labels uploaded once;
//   data <dataset>, loading 'end-to-end'  each iteration draws the next batch from the
//                                         dataset's BatchSource (src/data/source.ts, as
//                                         `imagerate train` builds it: prepareSources), uploads
//                                         it and runs the step: the clock includes waiting for
//                                         the batch (decode/augment, prefetched) and the upload;
//   data <dataset>, loading 'compute'     one batch of the dataset, uploaded once and reused.
//
// CUDA graphs (`bench models --cuda-graph`): see model-step.ts.
//
// FLOPs: forward conv + fc multiply-adds x 2 per image (models/flops.ts); a training step
// counts 3 x the forward (backward = data gradient + filter gradient, each about one forward),
// as every record's flopsNote says. TFLOP/s = FLOPs per image x images/s; % of peak against
// the peak of the threads used (host.ts cpuPeak on CPU, peaks.ts on GPUs).
//
// Beside ours, in the same run (frameworks.ts): ONNX Runtime (Node) and TensorFlow.js wasm for
// inference on the ONNX export / op-by-op rebuild of our graph with our weights, and PyTorch CPU
// (bench/baselines/pytorch_cpu.py) for both modes when python3 with torch is present. A
// framework that cannot run gives a MissingRecord with its reason, never a number.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { openBackend } from '../backend/registry.js';
import { getModelSpec } from '../models/index.js';
import { countFlops } from '../models/flops.js';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { PACKAGE_ROOT } from '../util/paths.js';
import { describeBackendHost, imagerateInfo, type HostInfo } from './host.js';
import { BenchRecord, MissingRecord, appendRecord, meaning, timingFromSeconds, type ResultLine } from './record.js';
export { meaning } from './record.js';
import { checkPrecision, type Precision } from './peaks.js';
import { backendPeakGflops } from './kernel-bench.js';
import { traceGraph, type ModelGraph } from './graph.js';
import { exportOnnx } from './onnx.js';
import { makeFeed, timeOurs } from './model-step.js';
import { timeOnnxRuntime, timeTfjsWasm, type FrameworkOutcome } from './frameworks.js';

export type BenchMode = 'training' | 'inference';
export type FrameworkName = 'onnxruntime' | 'tfjs-wasm' | 'pytorch';
export const ALL_FRAMEWORKS: readonly FrameworkName[] = ['onnxruntime', 'tfjs-wasm', 'pytorch'];

export interface ModelBenchOptions {
  model: string;
  batches: number[];
  modes: BenchMode[];
  backend?: string;
  threads?: number;
  warmup?: number;
  /** Timed iterations; with targetSeconds, the most iterations (at least minIters). */
  iters?: number;
  /** Adaptive iteration count: enough for about this many seconds (default: off, use iters). */
  targetSeconds?: number;
  minIters?: number;
  precision?: string;
  /** 'synthetic' (default) or a dataset spec as `imagerate train --dataset` takes. */
  data?: string;
  /** Default: 'compute' for synthetic data, 'end-to-end' for a dataset. */
  loading?: 'compute' | 'end-to-end';
  /** Run PyTorch CPU beside us when available (default true). Kept for compatibility. */
  pytorch?: boolean;
  /** Frameworks to measure beside us (default all three on CPU). */
  frameworks?: readonly FrameworkName[];
  out?: string;
  /** Called with each record as it is made (progress lines). */
  onRecord?: (r: ResultLine) => void;
  /** Passes over all the points, samples pooled (default 1). */
  rounds?: number;
  /** cuda only: time replays of one step captured as a CUDA graph (see the header). */
  cudaGraph?: boolean;
}

export interface FrameworkResult {
  framework: string;
  record: BenchRecord | null;
  unavailable: string | null;
}

export interface ModelBenchRow {
  ours: BenchRecord;
  /** PyTorch's column (null when not run), as before. */
  pytorch: FrameworkResult | null;
  /** Every framework column of this (mode, batch), measured or with its reason. */
  frameworks: FrameworkResult[];
}

/**
 * Runs the PyTorch CPU baseline script for one or more (batch, mode) points in one process
 * (torch's import costs seconds); returns one result per point, in order.
 */
export function runPytorchPoints(model: string, points: { batch: number; mode: BenchMode }[], threads: number, warmup: number, iters: number, targetSeconds?: number): FrameworkResult[] {
  const script = join(PACKAGE_ROOT, 'bench', 'baselines', 'pytorch_cpu.py');
  const args = [script, '--model', model, '--points', points.map((p) => `${p.mode}:${p.batch}`).join(','), '--threads', String(threads),
    '--iters', String(iters), '--warmup', String(warmup), ...(targetSeconds !== undefined ? ['--target-seconds', String(targetSeconds)] : [])];
  const r = spawnSync('python3', args, { encoding: 'utf8', timeout: 1_800_000, maxBuffer: 64 << 20 });
  const fail = (why: string) => points.map(() => ({ framework: 'pytorch', record: null, unavailable: why }));
  if (r.error) return fail(`python3 not runnable: ${r.error.message}`);
  if (r.status !== 0) {
    const err = r.stderr ?? '';
    if (err.includes("No module named 'torch'")) return fail('torch is not installed for python3');
    if (err.includes('invalid choice')) return fail(`the PyTorch baseline script has no model '${model}'`);
    return fail(err.trim().split('\n').pop() ?? `exit ${r.status}`);
  }
  const recs = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as BenchRecord);
  return points.map((p) => {
    const rec = recs.find((x) => x.batch === p.batch && x.mode === p.mode);
    return rec ? { framework: rec.framework ?? 'pytorch', record: rec, unavailable: null } : { framework: 'pytorch', record: null, unavailable: 'no record for this point in the script output' };
  });
}

/** Runs the PyTorch CPU baseline script; returns its record or why it could not run. */
export function runPytorchCpu(model: string, batch: number, mode: BenchMode, threads: number, warmup: number, iters: number): FrameworkResult {
  return runPytorchPoints(model, [{ batch, mode }], threads, warmup, iters)[0];
}

const FLOPS_NOTE = {
  training: 'forward conv+fc multiply-adds x 2 per image, x 3 for a training step (backward = data + filter gradients, ~2 forwards); BN/ReLU/pool/LRN/loss/update not counted',
  inference: 'forward conv+fc multiply-adds x 2 per image; BN/ReLU/pool/LRN not counted',
} as const;

export async function runModelBench(o: ModelBenchOptions): Promise<ModelBenchRow[]> {
  const backend = o.backend ?? 'cpu';
  const precision: Precision = checkPrecision(backend, o.precision ?? 'fp32');
  const be = await openBackend(backend);
  be.setPrecision?.(precision);
  if (o.threads !== undefined) be.setThreads?.(o.threads);
  const threads = be.threads?.() ?? null;
  const warmup = o.warmup ?? 10;
  const iters = o.iters ?? 50;
  const minIters = o.minIters ?? 5;
  const spec = getModelSpec(o.model);
  const data = o.data ?? 'synthetic';
  const loading = o.loading ?? (data === 'synthetic' ? 'compute' : 'end-to-end');
  if (data === 'synthetic' && loading === 'end-to-end') throw new UserError('--loading end-to-end needs --data <dataset> (synthetic data is made once, so there is nothing to load)');
  if (o.cudaGraph && backend !== 'cuda') throw new UserError(`--cuda-graph needs --backend cuda (got ${backend})`);
  const host: HostInfo = describeBackendHost(be);
  const peak = backendPeakGflops(be, host, threads);
  const frameworks = backend === 'cpu' ? (o.frameworks ?? (o.pytorch === false ? ['onnxruntime', 'tfjs-wasm'] : ALL_FRAMEWORKS)) : [];
  const flopsNet = spec.build(be, 1);
  const fwdFlops = countFlops(flopsNet, be, spec.input).flops;
  // The graph the framework columns run: our model's layers with our weights (seed 1, as timed).
  let graph: ModelGraph | null = null, onnx: Uint8Array | null = null, graphError: string | null = null;
  if (frameworks.some((f) => f !== 'pytorch') && o.modes.includes('inference')) {
    try {
      graph = await traceGraph(flopsNet, be, spec.input);
      onnx = exportOnnx(graph, { modelName: spec.name });
    } catch (e) {
      graphError = `could not export our graph: ${(e as Error).message}`;
    }
  }
  flopsNet.dispose();

  const emit = (r: ResultLine) => {
    if (o.out) appendRecord(o.out, r);
    o.onRecord?.(r);
  };
  const base = (mode: BenchMode, batch: number) => ({
    imagerate: imagerateInfo(), date: new Date().toISOString(), host, backend, kind: 'model' as const, name: spec.name,
    shape: { input: spec.input, numClasses: spec.numClasses }, mode, batch, precision, data, loading, threads,
    ...(o.cudaGraph ? { cudaGraph: true } : {}),
  });
  const figures = (mode: BenchMode, batch: number, times: number[]) => {
    const timing = timingFromSeconds(times);
    const ips = batch / (timing.medianMs / 1000);
    const perImage = mode === 'training' ? 3 * fwdFlops : fwdFlops;
    const gflops = (perImage * ips) / 1e9;
    return {
      timing, imagesPerSec: ips, flopsPerImage: perImage, flops: perImage * batch, gflops, tflops: gflops / 1e3,
      peakGflops: peak, pctOfPeak: peak ? (100 * gflops) / peak : null, flopsNote: FLOPS_NOTE[mode],
    };
  };
  const missing = (mode: BenchMode, batch: number, framework: string, reason: string): MissingRecord => ({
    kind: 'missing', imagerate: imagerateInfo(), date: new Date().toISOString(), for: 'model', name: spec.name, mode, batch, precision, data, loading,
    backend, framework, reason, host,
  });

  // Rounds: the whole list of points (mode x batch; ours, then each framework) is measured
  // `rounds` times and each figure's samples are pooled, so that a slow phase of a shared
  // machine spreads over every figure instead of landing on a few. PyTorch runs once per round
  // for all points (one python process: torch's import costs seconds).
  const rounds = Math.max(1, o.rounds ?? 1);
  const points = o.modes.flatMap((mode) => o.batches.map((batch) => ({ mode, batch })));
  interface Acc { ours: number[]; feed: string; fw: Map<string, { framework: string; times: number[]; threads: number | null; notes: string } | { framework: string; reason: string }> }
  const acc: Acc[] = points.map(() => ({ ours: [], feed: '', fw: new Map() }));
  const perRound = (total: number, r: number) => Math.floor((total * (r + 1)) / rounds) - Math.floor((total * r) / rounds);
  const fwWarmup = Math.min(warmup, 5);
  const pyPoints: FrameworkResult[][] = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < points.length; i++) {
      const { mode, batch } = points[i];
      const a = acc[i];
      const feed = await makeFeed(be, spec, batch, mode, data, loading);
      let times: number[];
      try {
        times = await timeOurs(be, spec, batch, mode, feed, warmup, {
          iters: Math.max(1, perRound(iters, r)), targetSeconds: o.targetSeconds === undefined ? undefined : o.targetSeconds / rounds,
          minIters: Math.max(1, Math.ceil(minIters / rounds)), cudaGraph: o.cudaGraph,
        });
      } finally {
        await feed.close();
      }
      a.ours.push(...times);
      a.feed = feed.describe;
      const input = spec.input;
      const xs = new Float32Array(batch * input[0] * input[1] * input[2]);
      const rng = new Rng(1, 'bench-data');
      for (let k = 0; k < xs.length; k++) xs[k] = rng.normal();
      const shape = [batch, ...input];
      for (const f of frameworks) {
        if (f === 'pytorch') continue;
        const label = f === 'onnxruntime' ? 'onnxruntime-node' : 'tfjs-wasm';
        if (a.fw.has(label) && 'reason' in a.fw.get(label)!) continue;
        let outcome: FrameworkOutcome;
        if (mode === 'training') outcome = { ok: false, framework: label, reason: `${label} is measured for inference only (${f === 'onnxruntime' ? 'ONNX Runtime for Node has no training API in this package' : 'the wasm backend has no convolution backprop kernels'})` };
        else if (!graph || !onnx) outcome = { ok: false, framework: label, reason: graphError ?? 'no graph' };
        else if (data !== 'synthetic' && loading === 'end-to-end') outcome = { ok: false, framework: label, reason: 'framework columns are measured on synthetic, pre-made input only' };
        else {
          // As many calls as ours made this round: the same share of the clock.
          outcome = f === 'onnxruntime'
            ? await timeOnnxRuntime(onnx, xs, shape, threads ?? 1, fwWarmup, times.length)
            : await timeTfjsWasm(graph, xs, shape, threads ?? 1, fwWarmup, times.length);
        }
        if (outcome.ok) {
          const prev = a.fw.get(label);
          const t = outcome.result;
          a.fw.set(label, { framework: t.framework, times: [...(prev && 'times' in prev ? prev.times : []), ...t.times], threads: t.threads, notes: t.notes });
        } else {
          a.fw.set(label, { framework: outcome.framework, reason: outcome.reason });
        }
      }
    }
    if (frameworks.includes('pytorch')) {
      pyPoints.push(data !== 'synthetic'
        ? points.map(() => ({ framework: 'pytorch', record: null, unavailable: 'the PyTorch baseline runs on synthetic data only' }))
        : runPytorchPoints(o.model, points, threads ?? 1, fwWarmup, Math.max(1, perRound(iters, r)), o.targetSeconds === undefined ? undefined : o.targetSeconds / rounds));
    }
  }

  const rows: ModelBenchRow[] = [];
  const roundsNote = rounds > 1 ? `; ${rounds} rounds over all points, samples pooled` : '';
  points.forEach(({ mode, batch }, i) => {
    const a = acc[i];
    const ours: BenchRecord = {
      ...base(mode, batch), warmup, iters: a.ours.length, ...figures(mode, batch, a.ours), framework: null,
      notes: `${meaning({ mode, batch, precision, data, loading, cudaGraph: o.cudaGraph })}; ${a.feed}; synced every step${roundsNote}` +
        (o.cudaGraph ? '; each step one replay of a CUDA graph captured after the eager warm-up (same learning rate and dropout seed every step' +
          `${loading === 'end-to-end' ? '; each batch uploaded into the captured input buffers before the replay' : ''})` : ''),
    };
    emit(ours);
    const row: ModelBenchRow = { ours, pytorch: null, frameworks: [] };
    rows.push(row);
    for (const [, v] of a.fw) {
      if ('reason' in v) {
        emit(missing(mode, batch, v.framework, v.reason));
        row.frameworks.push({ framework: v.framework, record: null, unavailable: v.reason });
        continue;
      }
      const rec: BenchRecord = {
        ...base(mode, batch), threads: v.threads, warmup: fwWarmup, iters: v.times.length, ...figures(mode, batch, v.times), framework: v.framework,
        data: 'synthetic', loading: 'compute',
        notes: `${meaning({ mode, batch, precision, data: 'synthetic', loading: 'compute' })}; ${v.notes}${roundsNote}`,
      };
      if (data !== 'synthetic') rec.notes += ' (input: synthetic, the same N(0, 1) values as ours)';
      emit(rec);
      row.frameworks.push({ framework: v.framework, record: rec, unavailable: null });
    }
    if (!frameworks.includes('pytorch')) return;
    const results = pyPoints.map((round) => round[i]);
    const ok = results.filter((x) => x.record);
    if (ok.length === 0 || ok.length < results.length) {
      const why = results.find((x) => !x.record)?.unavailable ?? 'unknown';
      emit(missing(mode, batch, 'pytorch', why));
      const res = { framework: 'pytorch', record: null, unavailable: why };
      row.pytorch = res;
      row.frameworks.push(res);
      return;
    }
    // Pool the rounds' samples (the script reports them in samplesMs).
    const rec = ok[ok.length - 1].record!;
    const samples = ok.flatMap((x) => ((x.record as unknown as { samplesMs?: number[] }).samplesMs ?? [x.record!.timing.medianMs]).map((ms) => ms / 1000));
    const py = (rec.host as unknown as { python?: string })?.python;
    const pooled: BenchRecord = {
      ...rec, ...base(mode, batch), threads: rec.threads, warmup: rec.warmup, iters: samples.length, ...figures(mode, batch, samples), framework: rec.framework,
      notes: `${meaning({ mode, batch, precision, data: 'synthetic', loading: 'compute' })}; ${rec.notes}${py ? `; Python ${py}` : ''}${roundsNote}`,
    };
    delete (pooled as unknown as { samplesMs?: number[] }).samplesMs;
    emit(pooled);
    const res = { framework: pooled.framework!, record: pooled, unavailable: null };
    row.pytorch = res;
    row.frameworks.push(res);
  });
  return rows;
}

function short(f: string): string {
  return f.split(' ')[0];
}

export function formatModelTable(rows: ModelBenchRow[]): string {
  const fws = [...new Set(rows.flatMap((r) => r.frameworks.map((f) => short(f.framework))))];
  const head = ['model', 'mode', 'batch', 'data', 'loading', 'threads', 'ours img/s', 'p10-p90 ms', 'GFLOP/s', '% peak', ...fws.map((f) => `${f} img/s`)];
  const reasons: string[] = [];
  const lines = rows.map(({ ours, frameworks }) => {
    const cols = fws.map((f) => {
      const res = frameworks.find((x) => short(x.framework) === f);
      if (!res) return '';
      if (!res.record) {
        let k = reasons.indexOf(`${f}: ${res.unavailable}`);
        if (k < 0) k = reasons.push(`${f}: ${res.unavailable}`) - 1;
        return `- [${k + 1}]`;
      }
      const r = res.record;
      return `${Math.round(r.imagesPerSec!)}${r.timing.noisy ? '*' : ''} (${(ours.imagesPerSec! / r.imagesPerSec!).toFixed(2)}x)`;
    });
    return [
      ours.name, ours.mode ?? '', String(ours.batch), ours.data, ours.loading + (ours.cudaGraph ? ', graph' : ''), String(ours.threads ?? ''),
      `${Math.round(ours.imagesPerSec!)}${ours.timing.noisy ? '*' : ''}`,
      `${ours.timing.p10Ms.toFixed(2)}-${ours.timing.p90Ms.toFixed(2)}`,
      ours.gflops === undefined ? '' : ours.gflops.toFixed(1), ours.pctOfPeak == null ? '' : ours.pctOfPeak.toFixed(1), ...cols,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [fmt(head), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt), '',
    'fp32; training = forward + backward + SGD update, inference = forward only (eval mode); (Nx) = ours / framework;',
    'GFLOP/s counts conv+fc multiply-adds x 2 (training: 3 x forward); * = noisy (p10-p90 spread > 10 % of median)',
    ...reasons.map((r, i) => `[${i + 1}] ${r}`)].join('\n');
}
