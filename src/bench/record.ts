// Benchmark records: one JSON object per measured figure, one line of a JSONL file, carrying
// every condition the figure depends on (DESIGN.md "What every figure carries").
//
// Timing statistics come from summarise(): median, p10/p90 (linear interpolation between
// order statistics, as numpy's default), min/max and the coefficient of variation. A figure is
// flagged `noisy` when its p10-p90 spread exceeds 10 % of its median; the figure is still
// reported (with the flag), since a noisy median on a shared machine is the honest result.
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { HostInfo, ImagerateInfo } from './host.js';

export const NOISY_SPREAD = 0.1;

export interface TimingSummary {
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
  /** standard deviation / mean */
  cv: number;
  /** (p90 - p10) / median > NOISY_SPREAD */
  noisy: boolean;
  n: number;
}

export interface BenchTiming {
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
  cv: number;
  noisy: boolean;
  /** How the clock was read: host wall clock around a synchronous call, or a device timer. */
  method: 'wall-clock' | 'cuda-event' | 'webgpu-timestamp';
}

export interface BenchRecord {
  imagerate: ImagerateInfo;
  /** ISO 8601 date of the measurement. */
  date: string;
  host: HostInfo;
  backend: string;
  /** 'layer': one module's share of a training step or a forward (bench models --profile). */
  kind: 'kernel' | 'model' | 'layer';
  /** Kernel name (e.g. 'sgemm', 'conv2dFwd'), model name (e.g. 'lenet5'), or 'model/layer' for kind 'layer'. */
  name: string;
  shape: Record<string, unknown>;
  mode: 'inference' | 'training' | null;
  batch: number | null;
  precision: 'fp32' | 'tf32' | 'fp16' | 'bf16';
  data: string;
  loading: 'compute' | 'end-to-end';
  threads: number | null;
  warmup: number;
  iters: number;
  timing: BenchTiming;
  imagesPerSec?: number;
  flopsPerImage?: number;
  /** FLOPs of one timed iteration. */
  flops?: number;
  gflops?: number;
  tflops?: number;
  /** Peak of the resources used (e.g. the cores the threads ran on); null when unknown. */
  peakGflops: number | null;
  pctOfPeak: number | null;
  /** null for imagerate's own kernels; the comparison library otherwise, e.g. 'openblas 0.3.21'. */
  framework: string | null;
  notes: string;
  /** What the FLOP count covers (e.g. "training = 3 x forward conv+fc FLOPs"). */
  flopsNote?: string;
  /** Memory-bound kernels (pooling, copy): bytes moved per call, GB/s, the bandwidth roof. */
  bytes?: number;
  gbps?: number;
  peakGbps?: number | null;
  /** FLOPs per byte of compulsory traffic (roofline x-axis); null where FLOPs are not counted. */
  arithmeticIntensity?: number | null;
  /** Which shape list a kernel record came from ('lenet', 'cifar', 'resnet50', 'deepbench') and the layer it stands for. */
  suite?: string;
  label?: string;
  /** kind 'model' on cuda: each timed step was one replay of a CUDA graph of the step (bench models --cuda-graph). */
  cudaGraph?: boolean;
  /** kind 'layer': the model, the module path, the op class and the pass measured. */
  layer?: { model: string; module: string; op: string; pass: 'forward' | 'backward' | 'update' | 'loss' | 'data' | 'other'; stepMedianMs?: number };
}

/**
 * A framework or backend that could not be measured: the column stays empty and says why.
 * Written to the same JSONL file as the records, never with a number.
 */
export interface MissingRecord {
  kind: 'missing';
  imagerate: ImagerateInfo;
  date: string;
  /** What would have been measured. */
  for: 'kernel' | 'model';
  name: string;
  mode: 'inference' | 'training' | null;
  batch: number | null;
  precision: BenchRecord['precision'];
  data: string;
  loading: BenchRecord['loading'];
  backend: string;
  framework: string | null;
  reason: string;
  host?: HostInfo;
}

export type ResultLine = BenchRecord | MissingRecord;

export function isMissing(r: ResultLine): r is MissingRecord {
  return r.kind === 'missing';
}

/**
 * The identity of a figure across runs and machines: (kind, name, mode, batch, precision,
 * data, loading, backend, framework), plus the shape for kernels (the same kernel name runs
 * at many shapes) and the pass (forward, backward...) for layers.
 */
export function recordKey(r: ResultLine): string {
  const kind = r.kind === 'missing' ? r.for : r.kind;
  const shape = r.kind === 'kernel' ? JSON.stringify(r.shape ?? {}) : r.kind === 'layer' ? `${r.layer?.pass ?? ''}` : '';
  const graph = r.kind !== 'missing' && r.cudaGraph ? 'cuda-graph' : '';
  return [kind, r.name, r.mode ?? '-', r.batch ?? '-', r.precision, r.data, r.loading, r.backend, r.framework ?? 'imagerate', shape, ...(graph ? [graph] : [])].join('|');
}

/** Reads a JSONL file of records; blank lines are skipped, a malformed line throws with its number. */
export function readRecords(file: string): ResultLine[] {
  const out: ResultLine[] = [];
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line) as ResultLine);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not a JSON record (${(e as Error).message})`);
    }
  });
  return out;
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarise(times: ArrayLike<number>): TimingSummary {
  const v = Array.from(times);
  if (v.length === 0) throw new Error('summarise: no samples');
  if (v.some((t) => !Number.isFinite(t))) throw new Error('summarise: non-finite sample');
  v.sort((a, b) => a - b);
  const mean = v.reduce((s, t) => s + t, 0) / v.length;
  const variance = v.reduce((s, t) => s + (t - mean) ** 2, 0) / v.length;
  const median = quantile(v, 0.5), p10 = quantile(v, 0.1), p90 = quantile(v, 0.9);
  return {
    median,
    p10,
    p90,
    min: v[0],
    max: v[v.length - 1],
    cv: mean > 0 ? Math.sqrt(variance) / mean : 0,
    noisy: median > 0 && (p90 - p10) / median > NOISY_SPREAD,
    n: v.length,
  };
}

/** BenchTiming in milliseconds from per-iteration times in seconds. */
export function timingFromSeconds(timesSeconds: ArrayLike<number>, method: BenchTiming['method'] = 'wall-clock'): BenchTiming {
  const s = summarise(timesSeconds);
  return {
    medianMs: s.median * 1e3,
    p10Ms: s.p10 * 1e3,
    p90Ms: s.p90 * 1e3,
    minMs: s.min * 1e3,
    maxMs: s.max * 1e3,
    cv: s.cv,
    noisy: s.noisy,
    method,
  };
}

/**
 * Throughput fields from the FLOPs of one iteration and the median time: gflops, tflops and
 * % of `peakGflops` (null when the peak is unknown).
 */
export function throughput(flops: number, timing: BenchTiming, peakGflops: number | null):
  Pick<BenchRecord, 'flops' | 'gflops' | 'tflops' | 'peakGflops' | 'pctOfPeak'> {
  const gflops = flops / (timing.medianMs * 1e-3) / 1e9;
  return {
    flops,
    gflops,
    tflops: gflops / 1e3,
    peakGflops,
    pctOfPeak: peakGflops && peakGflops > 0 ? (100 * gflops) / peakGflops : null,
  };
}

/** The sentence a figure stands on: what one timed iteration covered. */
export function meaning(r: { mode: 'inference' | 'training' | null; batch: number | null; precision: string; data: string; loading: string; framework?: string | null; cudaGraph?: boolean }): string {
  const what = r.mode === 'training' ? 'training: forward + backward + SGD update' : 'inference: forward only, eval mode';
  const load = r.loading === 'end-to-end' ? 'data loading included (batches drawn from the dataset and uploaded every step)' : 'data loading excluded';
  return `${what}, batch ${r.batch}, ${r.precision}, ${r.data === 'synthetic' ? 'synthetic data' : `data: ${r.data}`}, ${load}` +
    (r.cudaGraph ? ', replayed as one CUDA graph' : '');
}

/** Appends one record as one JSON line (creating the file and its folder if needed). */
export function appendRecord(file: string, record: ResultLine): void {
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, JSON.stringify(record) + '\n');
}
