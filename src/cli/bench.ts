// `imagerate bench ...`: kernels, models, gemm, overhead, all (and the internal `profile` the --profile
// option runs in a child process). Every figure is written as a JSONL record (--out).
import { Command, Option } from 'commander';
import { runDeviceGemmBench, runGemmBench, formatGemmTable } from '../bench/gemm-bench.js';
import { formatGemmSweep, runGemmVariantSweep } from '../bench/gemm-variants.js';
import { ALL_FRAMEWORKS, formatModelTable, runModelBench, type FrameworkName } from '../bench/model-bench.js';
import { formatKernelTable, runKernelBench } from '../bench/kernel-bench.js';
import { SUITE_NAMES } from '../bench/shapes.js';
import { inlineStream, profileInChild, profileModel } from '../bench/profile.js';
import { runBenchAll } from '../bench/bench-all.js';
import { formatOverheadTable, runOverheadBench } from '../bench/overhead.js';
import { appendRecord, type BenchRecord } from '../bench/record.js';
import { checkPrecision } from '../bench/peaks.js';
import { MODELS } from '../models/index.js';
import { UserError } from '../util/errors.js';
import { parseIntList, parseNumber, parseCount } from './args.js';

function listOf<T extends string>(name: string, value: string, valid: readonly T[], orElse = ''): T[] {
  const out = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const v of out) if (!(valid as readonly string[]).includes(v)) throw new UserError(`${name}: '${v}' is not one of ${valid.join(', ')}${orElse}`);
  return out as T[];
}

const MODES = ['training', 'inference'] as const;

/** --frameworks: a list of ALL_FRAMEWORKS, or 'none'. */
function frameworksOf(value: string): FrameworkName[] {
  return value === 'none' ? [] : listOf('--frameworks', String(value), ALL_FRAMEWORKS, ', or none alone');
}

function layerSummary(records: BenchRecord[], mode: string): string {
  const total = new Map<string, { ms: number; op: string }>();
  for (const r of records) {
    const t = total.get(r.layer!.module) ?? { ms: 0, op: r.layer!.op };
    t.ms += r.timing.medianMs;
    total.set(r.layer!.module, t);
  }
  const step = records[0]?.layer?.stepMedianMs ?? 0;
  const rows = [...total].sort((a, b) => b[1].ms - a[1].ms);
  const w = Math.max(...rows.map(([m]) => m.length), 6);
  const lines = rows.map(([m, t]) => `  ${m.padEnd(w)} ${t.ms.toFixed(3).padStart(9)} ms ${((100 * t.ms) / (step || 1)).toFixed(1).padStart(5)} %  ${t.op}`);
  const what = mode === 'inference' ? "each module's forward" : "each module's forward + the backward of its ops";
  return [`per-layer time (${what}), step median ${step.toFixed(2)} ms:`, ...lines].join('\n');
}

export function registerBenchCommand(program: Command): void {
  const bench = program.command('bench').description('benchmarks: kernels, models, gemm, overhead, all; JSONL records with every condition');
  bench
    .command('gemm')
    .description('SGEMM GFLOP/s at square sizes, ours beside OpenBLAS when libopenblas is installed')
    .option('--sizes <list>', 'square matrix sizes', parseIntList('--sizes'), [1024, 2048])
    .option('--threads <list>', 'thread counts', parseIntList('--threads'), [1, 2])
    .option('--iters <n>', 'timed iterations per point (default: enough for a stable median)', parseCount('--iters'))
    .option('--backend <name>', 'cpu (beside OpenBLAS), or a device backend: webgpu, cuda', 'cpu')
    .option('--variants <list>', "webgpu: time these gemm.wgsl variants (BMxBN_kBK_tTMxTN_pP names, comma-separated) or 'all', checked against float64 first; prints the best")
    .option('--rounds <n>', 'with --variants: interleaved passes over the variants, samples pooled', parseCount('--rounds'), 3)
    .option('--out <file>', 'append JSONL records to this file')
    .option('--json', 'print the records as JSON lines instead of a table')
    .action(async (o) => {
      if (o.variants !== undefined) {
        if (o.backend !== 'webgpu') throw new UserError(`--variants applies to --backend webgpu (the WGSL GEMM variants), not ${o.backend}`);
        const variants = String(o.variants).split(',').map((s) => s.trim()).filter(Boolean);
        const { parseGemmVariant } = await import('../backend/webgpu/ops/gemm.js');
        for (const v of variants) {
          if (v === 'all') continue;
          try {
            parseGemmVariant(v);
          } catch (e) {
            throw new UserError(`--variants: ${(e as Error).message}`);
          }
        }
        if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new UserError(`--rounds must be a positive integer, got ${o.rounds}`);
        const res = await runGemmVariantSweep(o.backend, { sizes: o.sizes, variants, iters: o.iters, rounds: o.rounds, out: o.out });
        if (o.json) for (const r of res.records) process.stdout.write(JSON.stringify(r) + '\n');
        else process.stdout.write(formatGemmSweep(res) + '\n');
        if (o.out) process.stderr.write(`records appended to ${o.out}\n`);
        return;
      }
      const records = o.backend === 'cpu'
        ? await runGemmBench({ sizes: o.sizes, threads: o.threads, iters: o.iters, out: o.out })
        : await runDeviceGemmBench(o.backend, { sizes: o.sizes, iters: o.iters, out: o.out });
      if (o.json) for (const r of records) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(formatGemmTable(records) + '\n');
      if (o.out) process.stderr.write(`records appended to ${o.out}\n`);
    });

  bench
    .command('kernels')
    .description('GEMM, conv fwd/bwd-data/bwd-filter and pooling at the layer shapes of the models (and a DeepBench subset): time, GFLOP/s or GB/s, % of peak')
    .option('--backend <name>', 'backend', 'cpu')
    .option('--suite <list>', `shape suites: ${SUITE_NAMES.join(', ')} (comma-separated)`, 'lenet,cifar')
    .option('--batch <n>', 'batch size of the model suites (default: lenet/cifar 64, resnet50 8)', parseCount('--batch'))
    .option('--threads <n>', 'CPU threads (default: all cores)', parseCount('--threads'))
    .option('--warmup <n>', 'warm-up calls per kernel', parseCount('--warmup', 0), 2)
    .option('--iters <n>', 'timed calls per kernel (default: enough for ~0.25 s, 5..100)', parseCount('--iters'))
    .option('--rounds <n>', 'passes over the whole shape list, samples pooled', parseCount('--rounds'), 3)
    .option('--forward-only', 'inference shapes only (no backward kernels)')
    .option('--out <file>', 'append JSONL records to this file')
    .option('--json', 'print the records as JSON lines instead of a table')
    .action(async (o) => {
      const suites = listOf('--suite', String(o.suite), SUITE_NAMES);
      const r = await runKernelBench({ backend: o.backend, suites, batch: o.batch, threads: o.threads, warmup: o.warmup, iters: o.iters, forwardOnly: o.forwardOnly, out: o.out, rounds: o.rounds });
      if (o.json) for (const x of r.records) process.stdout.write(JSON.stringify(x) + '\n');
      else process.stdout.write(formatKernelTable(r.records) + '\n');
      if (o.out) process.stderr.write(`records appended to ${o.out}\n`);
    });

  bench
    .command('overhead')
    .description('host-side overhead with Benchmark.js: the empty sync fence, enqueueing one tiny op, and LeNet-5 forward / training step at batch 1 (autograd + dispatch)')
    .option('--backend <name>', 'backend', 'cpu')
    .option('--threads <n>', 'CPU threads (default: all cores)', parseCount('--threads'))
    .option('--max-time <s>', 'Benchmark.js maxTime per figure, seconds', parseNumber('--max-time'), 1)
    .option('--ops <n>', 'fill(1) calls per sync in overhead/enqueue', parseCount('--ops'), 1000)
    .option('--no-training', 'skip the LeNet-5 training step')
    .option('--out <file>', 'append JSONL records to this file')
    .option('--json', 'print the records as JSON lines instead of a table')
    .action(async (o) => {
      if (!(o.maxTime > 0)) throw new UserError(`--max-time must be positive, got ${o.maxTime}`);
      if (!Number.isInteger(o.ops) || o.ops < 1) throw new UserError(`--ops must be a positive integer, got ${o.ops}`);
      const figures = await runOverheadBench({ backend: o.backend, threads: o.threads, maxTime: o.maxTime, opsPerCall: o.ops, training: o.training, out: o.out });
      if (o.json) for (const f of figures) process.stdout.write(JSON.stringify(f.line) + '\n');
      else process.stdout.write(formatOverheadTable(figures) + '\n');
      if (o.out) process.stderr.write(`records appended to ${o.out}\n`);
    });

  bench
    .command('models')
    .description('model images/s: training (forward + backward + SGD) and inference (forward only), kept apart, with FLOPs and TFLOP/s, beside ONNX Runtime / TensorFlow.js wasm / PyTorch CPU where they run')
    .option('--model <list>', 'comma-separated model names', 'lenet5')
    .option('--batch <list>', 'batch sizes', parseIntList('--batch'), [64])
    .option('--mode <list>', 'training, inference, or both (also as a comma-separated list)', 'training,inference')
    .option('--backend <name>', 'backend', 'cpu')
    .option('--precision <p>', 'fp32 (the CPU backend runs fp32 only; tf32/fp16/bf16 are GPU options)', 'fp32')
    .option('--data <spec>', "'synthetic', or a dataset as `imagerate train --dataset` takes (mnist, fashion-mnist, cifar10:<dir>, imagefolder:<dir>...)", 'synthetic')
    .addOption(new Option('--loading <kind>', "'compute' (data uploaded once) or 'end-to-end' (batches drawn from the dataset every step); default: end-to-end with a dataset").choices(['compute', 'end-to-end']))
    .option('--threads <n>', 'CPU threads (default: all cores)', parseCount('--threads'))
    .option('--warmup <n>', 'warm-up iterations', parseCount('--warmup', 0), 10)
    .option('--iters <n>', 'timed iterations (with --seconds: at most this many)', parseCount('--iters'), 50)
    .option('--seconds <s>', 'time about this long per point instead of a fixed count (at least 5 iterations)', parseNumber('--seconds'))
    .option('--rounds <n>', 'passes over all the points, samples pooled (spreads a slow phase of the machine over every figure)', parseCount('--rounds'), 1)
    .option('--frameworks <list>', `frameworks beside ours: ${ALL_FRAMEWORKS.join(', ')}, or none`, ALL_FRAMEWORKS.join(','))
    .option('--no-pytorch', 'do not run the PyTorch CPU baseline')
    .option('--profile', 'also record the per-layer time of one step (forward and backward per module), kind "layer"')
    .option('--cuda-graph', 'cuda: capture one step as a CUDA graph after the warm-up and time its replays (no per-op launch cost; end to end, each batch is uploaded into the captured inputs first)')
    .option('--out <file>', 'append JSONL records to this file')
    .option('--json', 'print the records as JSON lines instead of a table')
    .action(async (o) => {
      const modes = o.mode === 'both' ? [...MODES] : listOf('--mode', String(o.mode), MODES);
      const models = String(o.model).split(',').map((m: string) => m.trim());
      for (const m of models) if (!MODELS[m]) throw new UserError(`unknown model '${m}' (valid: ${Object.keys(MODELS).join(', ')})`);
      try {
        checkPrecision(o.backend, o.precision);
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      let frameworks = frameworksOf(o.frameworks);
      if (o.pytorch === false) frameworks = frameworks.filter((f) => f !== 'pytorch');
      const rows = [];
      for (const model of models) {
        rows.push(...await runModelBench({
          model, batches: o.batch, modes, backend: o.backend, threads: o.threads, warmup: o.warmup, iters: o.iters, targetSeconds: o.seconds,
          precision: o.precision, data: o.data, loading: o.loading, frameworks, out: o.out, rounds: o.rounds, cudaGraph: o.cudaGraph === true,
        }));
      }
      if (o.json) for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(formatModelTable(rows) + '\n');
      if (o.profile) {
        for (const model of models) {
          for (const mode of modes) {
            const batch = Math.max(...(o.batch as number[]));
            const opts = { model, batch, mode, backend: o.backend, threads: o.threads, warmup: 1, iters: Math.min(o.iters, 5) };
            const recs = inlineStream(o.backend) ? await profileModel(opts) : profileInChild(opts);
            if (o.out) for (const r of recs) appendRecord(o.out, r);
            if (!o.json) process.stdout.write(`\n${model} ${mode} batch ${batch}: ${layerSummary(recs, mode)}\n`);
          }
        }
      }
      if (o.out) process.stderr.write(`records appended to ${o.out}\n`);
    });

  bench
    .command('profile', { hidden: true })
    .description('per-layer timing in this process (needs IMAGERATE_CPU_SYNC=1); prints JSON records')
    .requiredOption('--model <name>', 'model')
    .option('--batch <n>', 'batch size', parseCount('--batch'), 64)
    .option('--mode <m>', 'training or inference', 'training')
    .option('--backend <name>', 'backend', 'cpu')
    .option('--threads <n>', 'threads', parseCount('--threads'))
    .option('--warmup <n>', 'warm-up steps', parseCount('--warmup', 0), 1)
    .option('--iters <n>', 'profiled steps', parseCount('--iters'), 5)
    .action(async (o) => {
      if (!MODELS[o.model]) throw new UserError(`unknown model '${o.model}'`);
      if (!inlineStream(o.backend)) throw new UserError('bench profile needs IMAGERATE_CPU_SYNC=1 (use bench models --profile)');
      const recs = await profileModel({ model: o.model, batch: o.batch, mode: o.mode, backend: o.backend, threads: o.threads, warmup: o.warmup, iters: o.iters });
      for (const r of recs) process.stdout.write(JSON.stringify(r) + '\n');
    });

  bench
    .command('all')
    .description('the default set (~10 min on a 2-core CPU): lenet+cifar kernel suites, host-side overhead (Benchmark.js), lenet5/cifar10-tf/resnet50 training and inference beside the frameworks, per-layer profiles; JSONL + HTML report under results/')
    .option('--out-dir <dir>', 'folder for records.jsonl and report.html (default results/bench-<host>-<time>)')
    .option('--backend <name>', 'backend', 'cpu')
    .option('--threads <n>', 'CPU threads (default: all cores)', parseCount('--threads'))
    .option('--frameworks <list>', `frameworks beside ours: ${ALL_FRAMEWORKS.join(', ')}, or none`, ALL_FRAMEWORKS.join(','))
    .option('--quick', 'a seconds-long subset (lenet only), to check the pipeline')
    .action(async (o) => {
      const frameworks = frameworksOf(o.frameworks);
      const r = await runBenchAll({ outDir: o.outDir, backend: o.backend, threads: o.threads, quick: o.quick, frameworks, log: (l) => process.stderr.write(l + '\n') });
      process.stdout.write(`${r.jsonl}\n${r.html}\n`);
    });
}
