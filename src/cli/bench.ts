// `imagerate bench gemm`: SGEMM GFLOP/s of our kernel beside OpenBLAS (when installed),
// measured in the same run, written as JSONL records.
import { Command } from 'commander';
import { runGemmBench, formatGemmTable } from '../bench/gemm-bench.js';
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
}
