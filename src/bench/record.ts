// Benchmark records: one JSON object per measured figure, one line of a JSONL file, carrying
// every condition the figure depends on (DESIGN.md "What every figure carries").
//
// Timing statistics come from summarise(): median, p10/p90 (linear interpolation between
// order statistics, as numpy's default), min/max and the coefficient of variation. A figure is
// flagged `noisy` when its p10-p90 spread exceeds 10 % of its median; the figure is still
// reported (with the flag), since a noisy median on a shared machine is the honest result.
import { appendFileSync, mkdirSync } from 'node:fs';
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
  kind: 'kernel' | 'model';
  /** Kernel name (e.g. 'sgemm') or model name (e.g. 'lenet5'). */
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

/** Appends one record as one JSON line (creating the file and its folder if needed). */
export function appendRecord(file: string, record: BenchRecord): void {
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, JSON.stringify(record) + '\n');
}
