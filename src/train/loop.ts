// The training loop: SGD over shuffled, augmented mini-batches, evaluation (top-1/top-5)
// after every epoch, optional early stop at a target accuracy, and the figures a report
// needs (time to target, training and evaluation images/s).
//
// Pipelining: the loss of step k is read back while step k+1 is being queued, so the host
// never waits for the device in the middle of a step; at most two steps are in flight.
//
// Numerical failure (docs/reliability.md): every step also checks every gradient for NaN/Inf
// (GradientCheck, src/autograd/finite.ts: the backend's sumsqCheck kernel, one 16-byte result
// per parameter, read back with the loss). A non-finite loss or gradient stops training with a
// DivergenceError naming the step, the epoch, the first parameter in forward order whose
// gradient went non-finite, and the hint to lower --lr; no checkpoint is written after it.
//
// Loss scaling (--loss-scale, src/train/loss-scale.ts): with a scaler, backward() is seeded
// with the scale and the gradient check decides whether the step's update runs at all, so the
// step waits for the check's read-back before the update (one host-device sync per step, paid
// only when scaling is on; without a scaler the loop is pipelined as above). Finite gradients
// are multiplied by 1/scale in place (the backend's `scale` op) and the update runs; non-finite
// gradients are discarded, the step is skipped (onStep reports skipped: true) and the dynamic
// scale backs off. A non-finite loss still stops training (scaling cannot help a forward
// overflow), and so do more than MAX_CONSECUTIVE_SKIPS skips in a row.
//
// CUDA graphs (cudaGraph, `train --cuda-graph`, src/train/graph-step.ts): the unscaled step is
// captured once and replayed for every batch, pipelined as above; the learning rate, the batch
// and the dropout seeds reach the replays through device buffers, so the run is the eager one.
// With loss scaling the step is two graphs (forward + check, then unscale + update), captured
// again when the scale changes; the host decides between them as in the eager scaled step.
import type { Backend } from '../backend/backend.js';
import { Tensor } from '../tensor.js';
import { keep, tidy } from '../autograd/scope.js';
import { backward, noGrad } from '../autograd/tape.js';
import { softmaxCrossEntropy } from '../ops/loss.js';
import type { Module } from '../nn/module.js';
import type { BatchSource } from '../data/source.js';
import type { Batch } from '../data/loader.js';
import { Sgd } from './sgd.js';
import { Schedule } from './schedule.js';
import { topKCorrect } from './metrics.js';
import { UserError } from '../util/errors.js';
import { GradientCheck, type GradientStats, type NonFiniteReport } from '../autograd/finite.js';
import { setTrainingStep } from '../nn/layers.js';
import { GraphStep, cudaGraphRefusal } from './graph-step.js';
import type { CudaBackend } from '../backend/cuda.js';
import { DynamicLossScaler, MAX_CONSECUTIVE_SKIPS, NO_LOSS_SCALE, type LossScaleSpec, type LossScaleState } from './loss-scale.js';

export interface TrainConfig {
  epochs: number;
  batch: number;
  /** Peak learning rate actually used (already scaled for the batch size). */
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  labelSmoothing: number;
  seed: number;
  target: number | null;
  evalBatch: number;
  /** Loss scaling (default none: the pipelined loop). */
  lossScale?: LossScaleSpec;
  /** Replay a captured CUDA graph for every step (cuda backend): graph-step.ts. */
  cudaGraph?: boolean;
}

export interface EpochStats {
  epoch: number;
  lr: number;
  trainLoss: number;
  testLoss: number;
  testTop1: number;
  testTop5: number;
  trainSeconds: number;
  evalSeconds: number;
  trainImagesPerSec: number;
  evalImagesPerSec: number;
}

export interface TrainOutcome {
  epochs: EpochStats[];
  testTop1: number;
  testTop5: number;
  bestTop1: number;
  secondsToTarget: number | null;
  wallSecondsToTarget: number | null;
  epochsToTarget: number | null;
  /** Time to accuracy: the first epoch at which test top-1 reached each level, and the training seconds by then. */
  milestones: Milestone[];
  trainSeconds: number;
  evalSeconds: number;
  totalSeconds: number;
  trainImages: number;
  trainImagesPerSec: number;
  evalImagesPerSec: number;
  /** The loss scaler's state at the end (null without scaling). */
  lossScale: LossScaleState | null;
  /**
   * The captured training step (cudaGraph; null when none was captured): its nodes (kernels,
   * copies, memsets, scratch alloc/free; both graphs with loss scaling), and how often it was
   * captured (once, or with loss scaling again at every change of the scale).
   */
  cudaGraph: { nodes: number; captures: number } | null;
}

export interface Milestone {
  top1: number;
  epoch: number;
  trainSeconds: number;
}

/** Accuracy levels reported as "time to accuracy" in every run's summary. */
export const MILESTONES = [0.5, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995];

export interface TrainHooks {
  /**
   * After every step. With loss scaling, `lossScale` is the scale the step ran with and
   * `skipped` says its gradients were not finite, so no update was made.
   */
  onStep?(info: { epoch: number; step: number; stepsPerEpoch: number; loss: number; lr: number; skipped?: boolean; lossScale?: number }): void;
  onEpoch?(stats: EpochStats): void;
}

/** Where training stands at a save point, or where a resumed run picks up. */
export interface LoopPosition {
  /** Epochs completed. */
  epoch: number;
  /** Optimiser steps taken in all (the LR schedule's position). */
  step: number;
  /** Steps already taken in epoch `epoch + 1` (0 at an epoch boundary). */
  stepInEpoch: number;
  bestTop1: number | null;
  /** Training-loss sum and count of the unfinished epoch (mid-epoch positions only). */
  epochLoss: { sum: number; count: number } | null;
  /** The loss scaler's state (null without scaling, or from a checkpoint written without it). */
  lossScale?: LossScaleState | null;
}

/**
 * Checkpoint hooks (the file format lives in checkpoint.ts, not here). `save` runs after every
 * epoch's evaluation (before hooks.onEpoch) and, with `every`, after every `every`-th optimiser
 * step inside an epoch; its time is not counted as training time.
 * `resume` continues from a saved position: the optimiser state is restored, the first
 * `stepInEpoch` batches of the epoch are drawn and skipped (so shuffling and augmentation stay
 * as in the uninterrupted run), and the LR schedule continues from `step`.
 */
export interface LoopCheckpoint {
  save?(at: LoopPosition & { optimiser: Sgd; reason: 'epoch' | 'steps' }): Promise<void>;
  every?: number;
  resume?: LoopPosition & { restoreOptimiser(opt: Sgd): void };
}

export interface EvalResult {
  loss: number;
  top1: number;
  top5: number;
  seconds: number;
  imagesPerSec: number;
}

/** Training stopped because the loss or a gradient became NaN/Inf. */
export class DivergenceError extends UserError {
  constructor(message: string, readonly step: number, readonly epoch: number, readonly layer: string | null) {
    super(message);
    this.name = 'DivergenceError';
  }
}

const g3 = (v: number) => v.toPrecision(3);

function checkInput(model: string, src: BatchSource, input: readonly number[]): void {
  const [c, h, w] = src.shape;
  if (c !== input[0] || h !== input[1] || w !== input[2]) {
    throw new UserError(`model ${model} expects ${input.join('x')} images but dataset ${src.name} gives ${c}x${h}x${w}`);
  }
}

/** Top-1/top-5 accuracy and mean loss of `model` on `src` (no gradients, eval mode). */
export async function evaluate(be: Backend, model: Module, src: BatchSource, batch: number): Promise<EvalResult> {
  model.eval();
  const t0 = performance.now();
  const [C, H, W] = src.shape;
  let c1 = 0, c5 = 0, lossSum = 0, seen = 0;
  const k5 = Math.min(5, Math.max(1, src.numClasses));
  for await (const bt of src.batches(0, batch, { dropLast: false })) {
    const b = bt.size;
    const labels = Int32Array.from(bt.y.subarray(0, b));
    const out = noGrad(() => tidy(() => {
      const x = Tensor.fromArray(be, [b, C, H, W], bt.x.subarray(0, b * C * H * W));
      const y = Tensor.fromArray(be, [b], labels);
      const r = softmaxCrossEntropy(model.forward(x), y);
      return { probs: r.probs, perExample: r.perExample };
    }));
    const [probs, losses] = await Promise.all([out.probs.data(), out.perExample.data()]);
    out.probs.dispose();
    out.perExample.dispose();
    const nc = probs.length / b;
    c1 += topKCorrect(probs as Float32Array, labels, b, nc, 1);
    c5 += topKCorrect(probs as Float32Array, labels, b, nc, k5);
    for (let i = 0; i < b; i++) lossSum += losses[i];
    seen += b;
  }
  const seconds = (performance.now() - t0) / 1000;
  model.train();
  const n = Math.max(1, seen);
  return { loss: lossSum / n, top1: c1 / n, top5: c5 / n, seconds, imagesPerSec: seen / seconds };
}

export async function trainModel(
  be: Backend, model: Module, modelName: string, input: readonly number[],
  train: BatchSource, test: BatchSource, cfg: TrainConfig, schedule: Schedule, hooks: TrainHooks = {},
  checkpoint: LoopCheckpoint = {},
): Promise<TrainOutcome> {
  checkInput(modelName, train, input);
  checkInput(modelName, test, input);
  if (cfg.batch > train.n) {
    throw new UserError(`--batch ${cfg.batch} is larger than the training set (${train.n} images in ${train.name})`);
  }
  const refusal = cfg.cudaGraph ? cudaGraphRefusal(be.name) : null;
  if (refusal) throw new UserError(refusal);
  const [C, H, W] = train.shape;
  const stepsPerEpoch = Math.floor(train.n / cfg.batch);
  const opt = new Sgd(model.parameters(), { momentum: cfg.momentum, weightDecay: cfg.weightDecay, nesterov: cfg.nesterov });
  const wall0 = performance.now();
  const epochs: EpochStats[] = [];
  let trainSeconds = 0, evalSeconds = 0, trainImages = 0, evalImages = 0;
  const milestones: Milestone[] = [];
  let secondsToTarget: number | null = null, wallToTarget: number | null = null, epochsToTarget: number | null = null;
  const resume = checkpoint.resume;
  if (resume && resume.step !== resume.epoch * stepsPerEpoch + resume.stepInEpoch) {
    throw new UserError(`cannot resume at epoch ${resume.epoch} + ${resume.stepInEpoch} steps (step ${resume.step}): this run has ${stepsPerEpoch} steps per epoch; resume with the batch size and data it was saved with`);
  }
  let best = resume?.bestTop1 ?? 0;
  let step = resume?.step ?? 0;
  model.train();
  const gradCheck = new GradientCheck(be, model.namedParameters());
  let lastGood: { step: number; stats: GradientStats } | null = null;
  const lossScale = cfg.lossScale ?? NO_LOSS_SCALE;
  const scaler = lossScale.mode === 'none' ? null : new DynamicLossScaler(lossScale);
  if (scaler && resume?.lossScale) scaler.restore(resume.lossScale);
  let graphStep = null as GraphStep | null; // made at the first step (an assertion: the closure below assigns it)
  const graph = () => (graphStep ??= new GraphStep(be as CudaBackend, model, opt, gradCheck, [cfg.batch, C, H, W], cfg.labelSmoothing));

  /** The training loss of one batch (inside the caller's tidy scope). */
  const batchLoss = (batch: Batch): Tensor => {
    const x = Tensor.fromArray(be, [batch.size, C, H, W], batch.x);
    const y = Tensor.fromArray(be, [batch.size], batch.y);
    return softmaxCrossEntropy(model.forward(x), y, cfg.labelSmoothing).loss;
  };

  /** The DivergenceError of step `s`: its loss, the first non-finite gradient, the last finite step's norms, the hint. */
  const diverged = (s: number, epoch: number, v: number, bad: NonFiniteReport | null, why: string): DivergenceError => {
    const where = bad
      ? `first non-finite gradient (forward order): ${bad.name} (${bad.count} of ${bad.size} values; ${bad.affected} of ${gradCheck.names.length} parameters affected)`
      : 'all gradients still finite: the forward pass overflowed';
    const before = lastGood && lastGood.step === s - 1
      ? (() => { const l = gradCheck.largest(lastGood.stats); return `; at step ${s - 1} the gradient norm was ${g3(l.norm)}, largest in ${l.name} (${g3(l.paramNorm)})`; })()
      : '';
    return new DivergenceError(`training diverged at step ${s} (epoch ${epoch}, step ${s - (epoch - 1) * stepsPerEpoch + 1} of ${stepsPerEpoch}): ` +
      `${why}loss is ${Number.isFinite(v) ? g3(v) : v}; ${where}${before}; lower --lr (now ${g3(cfg.lr)} after batch scaling)`, s, epoch, bad?.name ?? null);
  };

  try {
    resume?.restoreOptimiser(opt);
    for (let epoch = (resume?.epoch ?? 0) + 1; epoch <= cfg.epochs; epoch++) {
      const te0 = performance.now();
      const resumed = resume && epoch === resume.epoch + 1 ? resume : null;
      let skip = resumed?.stepInEpoch ?? 0, inEpoch = skip, epochImages = 0, saveSeconds = 0;
      let lossSum = resumed?.epochLoss?.sum ?? 0, lossCount = resumed?.epochLoss?.count ?? 0;
      let inflight: { loss: Tensor | null; value: Promise<Float32Array | Int32Array>; grads: Promise<ArrayBuffer>; step: number } | null = null;
      const settle = async () => {
        if (!inflight) return;
        const [lv, gb] = await Promise.all([inflight.value, inflight.grads]);
        const v = lv[0];
        inflight.loss?.dispose(); // null: the graph's own loss tensor
        const stats = GradientCheck.decode(gb, gradCheck.names.length);
        const bad = gradCheck.firstNonFinite(stats);
        if (!Number.isFinite(v) || bad) throw diverged(inflight.step, epoch, v, bad, '');
        lastGood = { step: inflight.step, stats };
        lossSum += v;
        lossCount++;
        hooks.onStep?.({ epoch, step: inflight.step, stepsPerEpoch, loss: v, lr: schedule.lr(inflight.step) });
        inflight = null;
      };
      /**
       * One step with loss scaling (not pipelined: the update depends on the gradient check).
       * Backward is seeded with the scale; finite gradients are unscaled in place and applied,
       * non-finite ones are discarded and the step is skipped.
       */
      const scaledStep = async (sc: DynamicLossScaler, batch: Batch, lr: number, ep: number) => {
        const s = sc.scale;
        // The forward half (loss, scaled backward, check), and how to apply its gradients.
        let half: { loss: Promise<Float32Array | Int32Array>; grads: Promise<ArrayBuffer>; update(): void; release(): void };
        if (cfg.cudaGraph) {
          half = { ...graph().runScaled(batch, lr, step, s), release: () => {} };
        } else {
          let check: Promise<ArrayBuffer> | null = null;
          const { loss } = tidy(() => {
            const loss = batchLoss(batch);
            backward(loss, s);
            check = gradCheck.enqueue();
            // The gradients outlive this scope until the check decides what to do with them.
            return { loss: keep(loss), grads: opt.params.flatMap((p) => (p.grad ? [p.grad] : [])) };
          });
          half = {
            loss: loss.data(), grads: check!, release: () => loss.dispose(),
            update: () => {
              noGrad(() => opt.step(lr, s));
              opt.zeroGrad();
            },
          };
        }
        let v: number, stats: GradientStats;
        try {
          const [lv, gb] = await Promise.all([half.loss, half.grads]);
          v = lv[0];
          stats = GradientCheck.decode(gb, gradCheck.names.length);
        } catch (e) {
          opt.zeroGrad();
          throw e;
        } finally {
          half.release();
        }
        const bad = gradCheck.firstNonFinite(stats);
        if (!Number.isFinite(v)) {
          opt.zeroGrad();
          throw diverged(step, ep, v, bad, '');
        }
        if (sc.update(bad === null) === 'skip') {
          opt.zeroGrad();
          if (sc.exhausted()) {
            throw diverged(step, ep, v, bad, `the loss scaler skipped ${sc.consecutiveSkips} steps in a row ` +
              `(limit ${MAX_CONSECUTIVE_SKIPS}; scale now ${g3(sc.scale)}): gradients are not finite at any scale; `);
          }
        } else {
          half.update();
          const inv2 = 1 / (s * s); // the check saw scaled gradients: report true norms
          lastGood = { step, stats: { sumsq: stats.sumsq.map((q) => q * inv2), nonFinite: stats.nonFinite } };
        }
        lossSum += v;
        lossCount++;
        hooks.onStep?.({ epoch: ep, step, stepsPerEpoch, loss: v, lr, skipped: bad !== null, lossScale: s });
      };
      for await (const batch of train.batches(epoch, cfg.batch, { dropLast: true })) {
        if (skip > 0) { // resumed mid-epoch: these batches were trained on before the save
          skip--;
          continue;
        }
        const lr = schedule.lr(step);
        setTrainingStep(step); // dropout masks derive from (seed, step): a resumed run draws the same
        if (scaler) {
          await scaledStep(scaler, batch, lr, epoch);
        } else if (cfg.cudaGraph) {
          const r = graph().run(batch, lr, step);
          await settle();
          inflight = { loss: null, value: r.loss, grads: r.grads, step };
        } else {
          let grads: Promise<ArrayBuffer> | null = null;
          const loss = tidy(() => {
            const loss = batchLoss(batch);
            backward(loss);
            grads = gradCheck.enqueue(); // before the update reads (and zeroGrad frees) the gradients
            noGrad(() => opt.step(lr));
            opt.zeroGrad();
            return keep(loss);
          });
          const value = loss.data();
          await settle();
          inflight = { loss, value, grads: grads!, step };
        }
        step++;
        inEpoch++;
        trainImages += batch.size;
        epochImages += batch.size;
        if (checkpoint.save && checkpoint.every && step % checkpoint.every === 0 && inEpoch < stepsPerEpoch) {
          await settle();
          const ts = performance.now();
          await checkpoint.save({ epoch: epoch - 1, step, stepInEpoch: inEpoch, bestTop1: epochs.length || resume?.bestTop1 != null ? best : null,
            epochLoss: { sum: lossSum, count: lossCount }, lossScale: scaler?.state() ?? null, optimiser: opt, reason: 'steps' });
          saveSeconds += (performance.now() - ts) / 1000;
        }
      }
      await settle();
      await be.sync();
      const epochTrain = (performance.now() - te0) / 1000 - saveSeconds;
      trainSeconds += epochTrain;

      const ev = await evaluate(be, model, test, cfg.evalBatch);
      evalSeconds += ev.seconds;
      evalImages += test.n;
      best = Math.max(best, ev.top1);
      for (const level of MILESTONES) {
        if (ev.top1 >= level && !milestones.some((m) => m.top1 === level)) milestones.push({ top1: level, epoch, trainSeconds });
      }
      const stats: EpochStats = {
        epoch, lr: schedule.lr(Math.max(0, step - 1)), trainLoss: lossSum / Math.max(1, lossCount), testLoss: ev.loss,
        testTop1: ev.top1, testTop5: ev.top5, trainSeconds: epochTrain, evalSeconds: ev.seconds,
        trainImagesPerSec: epochImages / epochTrain, evalImagesPerSec: ev.imagesPerSec,
      };
      epochs.push(stats);
      await checkpoint.save?.({ epoch, step, stepInEpoch: 0, bestTop1: best, epochLoss: null, lossScale: scaler?.state() ?? null, optimiser: opt, reason: 'epoch' });
      hooks.onEpoch?.(stats);
      if (cfg.target !== null && secondsToTarget === null && ev.top1 >= cfg.target) {
        secondsToTarget = trainSeconds;
        wallToTarget = (performance.now() - wall0) / 1000;
        epochsToTarget = epoch;
        break;
      }
    }
  } finally {
    setTrainingStep(null);
    graphStep?.dispose(); // its counts stay readable
    opt.dispose();
    gradCheck.dispose();
  }
  const last = epochs[epochs.length - 1];
  return {
    epochs, testTop1: last?.testTop1 ?? 0, testTop5: last?.testTop5 ?? 0, bestTop1: best,
    secondsToTarget, wallSecondsToTarget: wallToTarget, epochsToTarget, milestones,
    trainSeconds, evalSeconds, totalSeconds: (performance.now() - wall0) / 1000,
    trainImages, trainImagesPerSec: trainImages / Math.max(1e-9, trainSeconds),
    evalImagesPerSec: evalImages / Math.max(1e-9, evalSeconds),
    lossScale: scaler?.state() ?? null,
    cudaGraph: graphStep && graphStep.captures > 0 ? { nodes: graphStep.nodes, captures: graphStep.captures } : null,
  };
}
