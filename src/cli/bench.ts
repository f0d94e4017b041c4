// `imagerate bench gemm`: SGEMM GFLOP/s of our kernel beside OpenBLAS (when installed),
// measured in the same run, written as JSONL records.
import { Command } from 'commander';
import { runGemmBench, formatGemmTable } from '../bench/gemm-bench.js';
import { formatModelTable, runModelBench } from '../bench/model-bench.js';
import { MODELS } from '../models/index.js';
import { UserError } from '../util/errors.js';
import { parseIntList, parseNumber } from './args.js';

export function registerBenchCommand(program: Command): void {
  const bench = program.command('bench').description('benchmarks (kernels and models)');
  bench
    .command('gemm')
    .description('SGEMM GFLOP/s at square sizes, ours beside OpenBLAS when libopenblas is installed')
    .option('--sizes <list>', 'square matrix sizes', parseIntList('--sizes'), [1024, 2048])
    .option('--threads <list>', 'thread counts', parseIntList('--threads'), [1, 2])
    .option('--iters <n>', 'timed iterations per point (default: enough for a stable median)', parseNumber('--iters'))
    .option('--out <file>', 'append JSONL records to this file')
    .option('--json', 'print the records as JSON lines instead of a table')
    .action(async (o) => {
      const records = await runGemmBench({ sizes: o.sizes, threads: o.threads, iters: o.iters, out: o.out });
      if (o.json) for (const r of records) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(formatGemmTable(records) + '\n');
      if (o.out) process.stderr.write(`records appended to ${o.out}\n`);
    });

  bench
    .command('models')
    .description('model images/s: training (forward + backward + SGD) and inference (forward only), kept apart, beside PyTorch CPU when present')
    .option('--model <list>', 'comma-separated model names', 'lenet5')
    .option('--batch <list>', 'batch sizes', parseIntList('--batch'), [64])
    .option('--mode <list>', 'training, inference, or both (comma-separated)', 'training,inference')
    .option('--backend <name>', 'backend', 'cpu')
    .option('--threads <n>', 'CPU threads (default: all cores)', parseNumber('--threads'))
    .option('--warmup <n>', 'warm-up iterations', parseNumber('--warmup'), 10)
    .option('--iters <n>', 'timed iterations', parseNumber('--iters'), 50)
    .option('--no-pytorch', 'do not run the PyTorch CPU baseline')
    .option('--out <file>', 'append JSONL records to this file')
    .option('--json', 'print the records as JSON lines instead of a table')
    .action(async (o) => {
      const modes = String(o.mode).split(',').map((m: string) => m.trim()) as ('training' | 'inference')[];
      for (const m of modes) if (m !== 'training' && m !== 'inference') throw new UserError(`--mode must be training and/or inference, got '${m}'`);
      const models = String(o.model).split(',').map((m: string) => m.trim());
      for (const m of models) if (!MODELS[m]) throw new UserError(`unknown model '${m}' (valid: ${Object.keys(MODELS).join(', ')})`);
      const rows = [];
      for (const model of models) {
        rows.push(...await runModelBench({ model, batches: o.batch, modes, backend: o.backend, threads: o.threads,
          warmup: o.warmup, iters: o.iters, pytorch: o.pytorch, out: o.out }));
      }
      if (o.json) for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(formatModelTable(rows) + '\n');
      if (o.out) process.stderr.write(`records appended to ${o.out}\n`);
    });
}
