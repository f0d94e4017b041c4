// Model throughput: images/s of one model on one backend, training (forward + backward + SGD
// update) and inference (forward only, eval mode) kept apart, on synthetic data that is
// uploaded once (so the figure is "compute", data loading excluded). Each timed iteration
// ends with a sync, so its wall-clock time covers all the device work it queued.
//
// Beside it, in the same run: PyTorch CPU through bench/baselines/pytorch_cpu.py, when
// python3 with torch is present; otherwise the record says why the column is empty.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Tensor } from '../tensor.js';
import { tidy } from '../autograd/scope.js';
import { backward, noGrad } from '../autograd/tape.js';
import { softmaxCrossEntropy } from '../ops/loss.js';
import { getBackend } from '../backend/registry.js';
import { getModelSpec } from '../models/index.js';
import { Sgd } from '../train/sgd.js';
import { Rng } from '../util/rng.js';
import { PACKAGE_ROOT } from '../util/paths.js';
import { describeHost, imagerateInfo } from './host.js';
import { BenchRecord, appendRecord, timingFromSeconds } from './record.js';

export type BenchMode = 'training' | 'inference';

export interface ModelBenchOptions {
  model: string;
  batches: number[];
  modes: BenchMode[];
  backend?: string;
  threads?: number;
  warmup?: number;
  iters?: number;
  /** Run PyTorch CPU beside us when available (default true). */
  pytorch?: boolean;
  out?: string;
}

export interface FrameworkResult {
  framework: string;
  record: BenchRecord | null;
  unavailable: string | null;
}

async function timeOurs(model: string, backendName: string, batch: number, mode: BenchMode, warmup: number, iters: number): Promise<number[]> {
  const be = getBackend(backendName);
  const spec = getModelSpec(model);
  const net = spec.build(be, 1);
  const [c, h, w] = spec.input;
  const rng = new Rng(1, 'bench-data');
  const xs = new Float32Array(batch * c * h * w).map(() => rng.normal());
  const ys = Int32Array.from({ length: batch }, () => rng.int(spec.numClasses));
  const x = Tensor.fromArray(be, [batch, c, h, w], xs);
  const y = Tensor.fromArray(be, [batch], ys);
  const opt = new Sgd(net.parameters(), { momentum: 0.9, weightDecay: 5e-4 });
  const times: number[] = [];
  try {
    if (mode === 'inference') net.eval();
    for (let i = 0; i < warmup + iters; i++) {
      const t0 = performance.now();
      if (mode === 'training') {
        tidy(() => {
          backward(softmaxCrossEntropy(net.forward(x), y).loss);
          noGrad(() => opt.step(0.01));
          opt.zeroGrad();
        });
      } else {
        noGrad(() => tidy(() => { net.forward(x); }));
      }
      await be.sync();
      if (i >= warmup) times.push((performance.now() - t0) / 1000);
    }
  } finally {
    opt.dispose();
    net.dispose();
    x.dispose();
    y.dispose();
  }
  return times;
}

/** Runs the PyTorch CPU baseline script; returns its record or why it could not run. */
export function runPytorchCpu(model: string, batch: number, mode: BenchMode, threads: number, warmup: number, iters: number): FrameworkResult {
  const script = join(PACKAGE_ROOT, 'bench', 'baselines', 'pytorch_cpu.py');
  const r = spawnSync('python3', [script, '--model', model, '--batch', String(batch), '--threads', String(threads),
    '--iters', String(iters), '--warmup', String(warmup), '--mode', mode], { encoding: 'utf8', timeout: 600_000 });
  if (r.error) return { framework: 'pytorch', record: null, unavailable: `python3 not runnable: ${r.error.message}` };
  if (r.status !== 0) {
    const msg = r.stderr.includes("No module named 'torch'") ? 'torch is not installed for python3' : r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`;
    return { framework: 'pytorch', record: null, unavailable: msg };
  }
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    const rec = JSON.parse(line) as BenchRecord;
    return { framework: rec.framework ?? 'pytorch', record: rec, unavailable: null };
  } catch {
    return { framework: 'pytorch', record: null, unavailable: `unparseable output: ${line.slice(0, 200)}` };
  }
}

export interface ModelBenchRow {
  ours: BenchRecord;
  pytorch: FrameworkResult | null;
}

export async function runModelBench(o: ModelBenchOptions): Promise<ModelBenchRow[]> {
  const backend = o.backend ?? 'cpu';
  const be = getBackend(backend);
  if (o.threads !== undefined) be.setThreads?.(o.threads);
  const threads = be.threads?.() ?? null;
  const warmup = o.warmup ?? 10;
  const iters = o.iters ?? 50;
  const spec = getModelSpec(o.model);
  const host = describeHost();
  const rows: ModelBenchRow[] = [];
  for (const mode of o.modes) {
    for (const batch of o.batches) {
      const times = await timeOurs(o.model, backend, batch, mode, warmup, iters);
      const timing = timingFromSeconds(times);
      const ours: BenchRecord = {
        imagerate: imagerateInfo(), date: new Date().toISOString(), host, backend, kind: 'model', name: spec.name,
        shape: { input: spec.input, numClasses: spec.numClasses }, mode, batch, precision: 'fp32', data: 'synthetic',
        loading: 'compute', threads, warmup, iters, timing, imagesPerSec: batch / (timing.medianMs / 1000),
        peakGflops: null, pctOfPeak: null, framework: null,
        notes: mode === 'training' ? 'forward + backward + SGD momentum update, synced every step' : 'forward only, eval mode, synced every batch',
      };
      let pytorch: FrameworkResult | null = null;
      if (o.pytorch !== false && backend === 'cpu') pytorch = runPytorchCpu(o.model, batch, mode, threads ?? 1, warmup, iters);
      if (o.out) {
        appendRecord(o.out, ours);
        if (pytorch?.record) appendRecord(o.out, pytorch.record);
      }
      rows.push({ ours, pytorch });
    }
  }
  return rows;
}

export function formatModelTable(rows: ModelBenchRow[]): string {
  const head = ['model', 'mode', 'batch', 'threads', 'ours img/s', 'p10-p90 ms', 'PyTorch img/s', 'ours/PyTorch'];
  const lines = rows.map(({ ours, pytorch }) => {
    const pt = pytorch?.record?.imagesPerSec ?? null;
    return [
      ours.name, ours.mode ?? '', String(ours.batch), String(ours.threads ?? ''),
      `${Math.round(ours.imagesPerSec!)}${ours.timing.noisy ? '*' : ''}`,
      `${ours.timing.p10Ms.toFixed(2)}-${ours.timing.p90Ms.toFixed(2)}`,
      pt === null ? `(${pytorch ? pytorch.unavailable : 'not run'})` : `${Math.round(pt)}${pytorch?.record?.timing?.noisy ? '*' : ''}`,
      pt === null ? '' : (ours.imagesPerSec! / pt).toFixed(2),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [fmt(head), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt),
    '', 'synthetic data uploaded once (compute only, data loading excluded), fp32; * = noisy (p10-p90 spread > 10 % of median)'].join('\n');
}
