// `imagerate bench all` (and `npm run bench`): the default set, sized for about 10 minutes on a
// 2-core CPU, written as one JSONL file of records under results/ with an HTML report beside it.
//
//   kernels  the lenet and cifar suites (every GEMM / conv fwd, bwd-data, bwd-filter / pool
//            shape of lenet5 and cifar10-tf at batch 64) and the measured memory bandwidth;
//   overhead host-side figures with Benchmark.js (overhead.ts): the empty sync fence, the
//            enqueue cost of one tiny op, LeNet-5 forward and training step at batch 1;
//            maxTime 0.5 s each, a few seconds in all;
//   models   lenet5 and cifar10-tf at batches 1, 16, 64 (+256 / 128), ~3 s per figure in 3
//            rounds; ResNet-50 at batches 1 and 8, 6 steps in 2 rounds; training and inference;
//            ONNX Runtime, TensorFlow.js wasm and PyTorch beside us where they run;
//   loading  lenet5 at batch 64 on the embedded MNIST digits, end to end (data loading
//            included), training and inference;
//   profile  per-layer time of one training step: lenet5 (64), cifar10-tf (64), resnet50 (8).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { runKernelBench } from './kernel-bench.js';
import { runOverheadBench } from './overhead.js';
import { runModelBench, type BenchMode, type FrameworkName } from './model-bench.js';
import { profileInChild } from './profile.js';
import { appendRecord, readRecords, type BenchRecord, type ResultLine } from './record.js';
import { buildReport } from '../report/html.js';

export interface BenchAllOptions {
  /** Folder for the JSONL and HTML files (default results/bench-<host>-<date>). */
  outDir?: string;
  backend?: string;
  threads?: number;
  /** Smaller set (seconds, for tests): lenet only, one batch, two iterations. */
  quick?: boolean;
  frameworks?: readonly FrameworkName[];
  log?: (line: string) => void;
}

interface ModelPlan {
  model: string;
  batches: number[];
  modes: BenchMode[];
  warmup: number;
  iters: number;
  targetSeconds?: number;
  data?: string;
  rounds?: number;
}

export function benchAllPlan(quick: boolean): { suites: string[]; models: ModelPlan[]; profiles: { model: string; batch: number; iters: number }[] } {
  if (quick) {
    return {
      suites: ['lenet'],
      models: [{ model: 'lenet5', batches: [8], modes: ['training', 'inference'], warmup: 1, iters: 3 }],
      profiles: [{ model: 'lenet5', batch: 8, iters: 2 }],
    };
  }
  const both: BenchMode[] = ['training', 'inference'];
  return {
    suites: ['lenet', 'cifar'],
    models: [
      { model: 'lenet5', batches: [1, 16, 64, 256], modes: both, warmup: 10, iters: 600, targetSeconds: 3, rounds: 3 },
      { model: 'lenet5', batches: [64], modes: both, warmup: 10, iters: 600, targetSeconds: 3, data: 'mnist', rounds: 3 },
      { model: 'cifar10-tf', batches: [1, 16, 64, 128], modes: both, warmup: 3, iters: 300, targetSeconds: 3, rounds: 3 },
      { model: 'resnet50', batches: [1, 8], modes: both, warmup: 1, iters: 6, rounds: 2 },
    ],
    profiles: [
      { model: 'lenet5', batch: 64, iters: 20 },
      { model: 'cifar10-tf', batch: 64, iters: 10 },
      { model: 'resnet50', batch: 8, iters: 3 },
    ],
  };
}

export function defaultOutDir(): string {
  const host = os.hostname().replace(/[^\w.-]+/g, '_').slice(0, 40) || 'host';
  const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\..*$/, '');
  return join('results', `bench-${host}-${stamp}`);
}

export async function runBenchAll(o: BenchAllOptions = {}): Promise<{ jsonl: string; html: string; records: ResultLine[] }> {
  const log = o.log ?? (() => {});
  const dir = o.outDir ?? defaultOutDir();
  mkdirSync(dir, { recursive: true });
  const jsonl = join(dir, 'records.jsonl');
  const html = join(dir, 'report.html');
  writeFileSync(jsonl, '');
  const plan = benchAllPlan(!!o.quick);
  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;

  log(`kernels: suites ${plan.suites.join(', ')} (+ memory bandwidth)`);
  await runKernelBench({ backend: o.backend, suites: plan.suites, threads: o.threads, out: jsonl, targetSeconds: o.quick ? 0.02 : 0.5, minIters: o.quick ? 2 : 10, maxIters: o.quick ? 3 : 200 });
  log(`kernels done (${elapsed()})`);

  log('overhead: empty fence, enqueue of one op, lenet5 batch 1 forward + training step (Benchmark.js)');
  for (const f of await runOverheadBench({ backend: o.backend, threads: o.threads, out: jsonl, maxTime: o.quick ? 0.02 : 0.5, minTime: o.quick ? 0.005 : undefined, warmup: o.quick ? 1 : 5 })) {
    const r = f.line;
    log(r.kind === 'missing' ? `  ${r.name}: not measured (${r.reason.split('\n')[0]})` : `  ${r.name}: ${(r.timing.medianMs * 1e3).toFixed(2)} us`);
  }

  for (const m of plan.models) {
    log(`models: ${m.model} batches ${m.batches.join(',')} ${m.modes.join('+')}${m.data ? ` data ${m.data} (end-to-end)` : ''}`);
    await runModelBench({
      model: m.model, batches: m.batches, modes: m.modes, backend: o.backend, threads: o.threads, warmup: m.warmup, iters: m.iters,
      targetSeconds: m.targetSeconds, data: m.data, frameworks: m.data ? [] : o.frameworks, out: jsonl, rounds: m.rounds,
      onRecord: (r) => {
        if (r.kind === 'missing') log(`  ${r.name} ${r.mode} b${r.batch} ${r.framework}: not measured (${r.reason})`);
        else log(`  ${r.name} ${r.mode} b${r.batch} ${r.framework ?? 'imagerate'}: ${Math.round((r as BenchRecord).imagesPerSec ?? 0)} img/s`);
      },
    });
    log(`${m.model} done (${elapsed()})`);
  }

  if ((o.backend ?? 'cpu') === 'cpu') {
    for (const p of plan.profiles) {
      log(`profile: ${p.model} training step, batch ${p.batch}`);
      try {
        for (const r of profileInChild({ model: p.model, batch: p.batch, mode: 'training', threads: o.threads, warmup: 1, iters: p.iters })) appendRecord(jsonl, r);
      } catch (e) {
        log(`  profile failed: ${(e as Error).message}`);
      }
    }
  }
  log(`all done (${elapsed()}); records: ${jsonl}`);
  const records = readRecords(jsonl);
  writeFileSync(html, buildReport([{ file: jsonl, records }], { title: 'imagerate bench all' }));
  log(`report: ${html}`);
  return { jsonl, html, records };
}
