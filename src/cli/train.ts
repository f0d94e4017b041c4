// `imagerate train <model>`: progress bar on stderr while training, a summary table at the
// end, and with --json one JSON object as the last line of stdout.
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { TRAIN_DEFAULTS, TrainSummary, runTraining } from '../train/run.js';
import { MODELS } from '../models/index.js';
import { parseNumber, parseCount } from './args.js';
import { fmtScale } from '../train/loss-scale.js';

const pct = (v: number) => `${(v * 100).toFixed(2)} %`;
const secs = (v: number | null) => (v === null ? 'not reached' : `${v.toFixed(1)} s`);

// No colours: the tables often end up in logs and CI output.
const plain = { style: { head: [] as string[], border: [] as string[] } };

function summaryTable(s: TrainSummary): string {
  const t = new Table({ ...plain, head: ['epoch', 'lr', 'train loss', 'test loss', 'top-1', 'top-5', 'train img/s', 'eval img/s'] });
  for (const e of s.history) {
    t.push([e.epoch, e.lr.toPrecision(3), e.trainLoss.toFixed(4), e.testLoss.toFixed(4), pct(e.testTop1), pct(e.testTop5),
      Math.round(e.trainImagesPerSec), Math.round(e.evalImagesPerSec)]);
  }
  const f = new Table({ ...plain, colWidths: [20, 80], wordWrap: true });
  f.push(
    { model: s.model }, { 'train data': `${s.dataset} (${s.trainImagesCount} images)` }, { 'test data': `${s.testDataset} (${s.testImagesCount} images)` },
    { backend: `${s.backend}: ${s.device}${s.threads ? `, ${s.threads} threads` : ''}` },
    { recipe: `batch ${s.batch}, SGD momentum ${s.momentum}, weight decay ${s.weightDecay}, peak lr ${s.lr.toPrecision(3)} (${s.schedule}), ${s.augmentation}, seed ${s.seed}` },
    { 'test top-1 / top-5': `${pct(s.testTop1)} / ${pct(s.testTop5)} (best top-1 ${pct(s.bestTop1)})` },
    { 'time to target': s.target === null ? 'no --target given' : `${pct(s.target)}: ${secs(s.secondsToTarget)} of training${s.epochsToTarget ? ` (epoch ${s.epochsToTarget}, ${secs(s.wallSecondsToTarget)} wall with evaluation)` : ''}` },
    { 'time to accuracy': s.milestones.length === 0 ? 'no milestone reached' : s.milestones.map((m) => `${pct(m.top1)}: ${m.trainSeconds.toFixed(1)} s (epoch ${m.epoch})`).join('; ') + ' (training seconds, evaluated after each epoch)' },
    { 'training img/s': `${Math.round(s.trainImagesPerSec)} (forward + backward + SGD, batch ${s.batch}, ${s.precision}, data loading and augmentation included${s.cudaGraph ? ', each step one replay of a captured CUDA graph' : ''})` },
    { 'evaluation img/s': `${Math.round(s.evalImagesPerSec)} (forward only, batch 500, ${s.precision})` },
    { 'total time': `${s.totalSeconds.toFixed(1)} s (${s.trainSeconds.toFixed(1)} s training)` },
    { 'loss scaling': s.lossScale.mode === 'none' ? 'none'
      : `${s.lossScale.description}: final scale ${fmtScale(s.lossScale.finalScale!)}, ${s.lossScale.skippedSteps} step${s.lossScale.skippedSteps === 1 ? '' : 's'} skipped (non-finite gradients)` },
  );
  if (s.cudaGraph) {
    const captured = s.lossScale.mode === 'none'
      ? `captured once, ${s.cudaGraph.nodes} nodes`
      : `captured as two graphs (forward + backward + check, then unscale + SGD for finite gradients), ${s.cudaGraph.nodes} nodes, ` +
        `captured ${s.cudaGraph.captures} time${s.cudaGraph.captures === 1 ? '' : 's'} (again at every change of the loss scale)`;
    f.push({ 'CUDA graph': `the training step (forward, backward, gradient check, SGD) ${captured}, replayed every step; batch, learning rate and dropout seeds written to device buffers before each replay` });
  }
  if (s.resumedFrom) f.push({ 'resumed from': `${s.resumedFrom.file} (epoch ${s.resumedFrom.epoch}, step ${s.resumedFrom.step})` });
  if (s.checkpoint) f.push({ checkpoint: s.checkpoint });
  return `${t.toString()}\n${f.toString()}`;
}

export function registerTrainCommand(program: Command): void {
  const d = TRAIN_DEFAULTS;
  program
    .command('train')
    .description('train a model and evaluate it after every epoch')
    .argument('<model>', `model name (${Object.keys(MODELS).join(', ')})`)
    .option('--dataset <name|dir>', 'mnist (embedded, 8,000/2,000 split), fashion-mnist, a directory of IDX files, cifar10:<dir> (CIFAR-10 binary) or imagefolder:<dir|train.pack> (packed or JPEG/PNG ImageFolder)', d.dataset)
    .option('--test-dataset <name|dir>', 'evaluate on this set instead (mnist-test: the official MNIST test set, 10,000 digits; or mnist, fashion-mnist or an IDX directory, whose test split is used); then all of --dataset is used for training')
    .option('--backend <name>', 'cpu, cuda or webgpu', d.backend)
    .option('--threads <n>', 'CPU threads (default: all cores)', parseCount('--threads'))
    .option('--precision <p>', 'fp32, tf32, bf16 or fp16 (the cpu backend runs fp32 only)', 'fp32')
    .option('--loss-scale <s>', 'loss scaling: dynamic, dynamic:<initial scale>, none or a fixed scale such as 1024 or 2^10 (default: dynamic with --precision fp16, none otherwise)')
    .option('--epochs <n>', 'epochs to train (the LR schedule spans all of them)', parseNumber('--epochs'), d.epochs)
    .option('--batch <n>', 'mini-batch size', parseCount('--batch'), d.batch)
    .option('--lr <x>', `base learning rate for batch 64 (scaled linearly with --batch)`, parseNumber('--lr'), d.lr)
    .option('--momentum <x>', 'SGD momentum', parseNumber('--momentum'), d.momentum)
    .option('--weight-decay <x>', 'L2 weight decay', parseNumber('--weight-decay'), d.weightDecay)
    .option('--nesterov', 'Nesterov momentum', d.nesterov)
    .option('--label-smoothing <x>', 'label smoothing epsilon', parseNumber('--label-smoothing'), d.labelSmoothing)
    .option('--shift <px>', 'random-shift augmentation, in pixels (0 = off)', parseNumber('--shift'), d.shift)
    .option('--warmup-epochs <x>', 'linear LR warm-up length', parseNumber('--warmup-epochs'), d.warmupEpochs)
    .option('--target <acc>', 'stop once test top-1 reaches this (e.g. 0.98) and report the time to it', parseNumber('--target'))
    .option('--seed <n>', 'seed for initialisation, shuffling and augmentation', parseNumber('--seed'), d.seed)
    .option('--validation <fraction>', 'evaluate on this held-out fraction of the training set instead of the test set (for tuning)', parseNumber('--validation'))
    .option('--save <file>', 'save a checkpoint (safetensors) here after every epoch, atomically')
    .option('--save-every <steps>', 'with --save, also save every this many optimiser steps', parseNumber('--save-every'))
    .option('--resume <file>', 'continue from this checkpoint; recipe options not given again are taken from it')
    .option('--workers <n>', 'decode/augmentation worker threads for packed and ImageFolder data (default: all cores)', parseCount('--workers'))
    .option('--on-bad-image <mode>', 'an image that cannot be decoded: skip (with a warning) or fail', 'skip')
    .option('--cuda-graph', 'cuda: capture the training step into a CUDA graph once and replay it every step (small nets, where kernel launches dominate)')
    .option('--json', 'print the summary as one JSON object on the last line of stdout')
    .action(async (model: string, o, cmd: Command) => {
      const json = Boolean(o.json);
      const log = (s: string) => (json ? process.stderr : process.stdout).write(s + '\n');
      const tty = Boolean(process.stderr.isTTY);
      const bar = tty
        ? new cliProgress.SingleBar({
          format: 'epoch {epoch} |{bar}| {value}/{total} steps | loss {loss} | lr {lr}',
          stream: process.stderr, hideCursor: true, clearOnComplete: true,
        }, cliProgress.Presets.shades_classic)
        : null;
      let barEpoch = -1;
      let lastLog = performance.now();
      const progressMs = 1000 * Number(process.env.IMAGERATE_PROGRESS_SECONDS ?? 30);
      const summary = await runTraining({
        model, dataset: o.dataset, testDataset: o.testDataset, backend: o.backend, threads: o.threads, precision: o.precision, lossScale: o.lossScale,
        epochs: o.epochs, batch: o.batch, lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay,
        nesterov: Boolean(o.nesterov), labelSmoothing: o.labelSmoothing, shift: o.shift, warmupEpochs: o.warmupEpochs,
        target: o.target ?? null, seed: o.seed, validation: o.validation, workers: o.workers, onBadImage: o.onBadImage,
        save: o.save, saveEvery: o.saveEvery, resume: o.resume, cudaGraph: Boolean(o.cudaGraph),
        explicit: new Set(Object.keys(o).filter((k) => cmd.getOptionValueSource(k) === 'cli')),
      }, {
        onStep: ({ epoch, step, stepsPerEpoch, loss, lr, skipped, lossScale }) => {
          if (!bar) {
            // Not a terminal (a log file, CI): one progress line every 30 s instead of a bar.
            // IMAGERATE_PROGRESS_SECONDS changes the interval (0: every step; the SIGKILL/resume
            // test in test/reliability/interrupt.test.ts reads the per-step losses).
            const now = performance.now();
            if (now - lastLog > progressMs || progressMs === 0) {
              lastLog = now;
              const inEpoch = step - (epoch - 1) * stepsPerEpoch + 1;
              const scaled = lossScale === undefined ? '' : `, loss scale ${fmtScale(lossScale)}${skipped ? ' (non-finite gradients: step skipped)' : ''}`;
              process.stderr.write(`epoch ${epoch}: step ${inEpoch}/${stepsPerEpoch}, loss ${progressMs === 0 ? loss : loss.toFixed(4)}, lr ${lr.toPrecision(3)}${scaled}, ${new Date().toISOString()}\n`);
            }
            return;
          }
          const inEpoch = step - (epoch - 1) * stepsPerEpoch + 1;
          if (barEpoch !== epoch) {
            bar.start(stepsPerEpoch, inEpoch, { epoch, loss: loss.toFixed(4), lr: lr.toPrecision(3) });
            barEpoch = epoch;
          } else bar.update(inEpoch, { epoch, loss: loss.toFixed(4), lr: lr.toPrecision(3) });
        },
        onEpoch: (e) => {
          bar?.stop();
          barEpoch = -1;
          process.stderr.write(`epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}, test top-1 ${pct(e.testTop1)}, top-5 ${pct(e.testTop5)}, ${Math.round(e.trainImagesPerSec)} train img/s, ${e.trainSeconds.toFixed(1)} s\n`);
        },
      });
      log(summaryTable(summary));
      if (json) process.stdout.write(JSON.stringify(summary) + '\n');
    });
}
