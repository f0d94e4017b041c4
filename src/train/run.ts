// `imagerate train`: resolves the model, data and backend from CLI options, trains, and
// returns the summary object that --json prints.
import { PRECISIONS, checkPrecision, openBackend } from '../backend/registry.js';
import { getModelSpec } from '../models/index.js';
import { resolveDataset } from '../data/resolve.js';
import { subset, type ImageDataset } from '../data/dataset.js';
import { datasetSource, type BatchSource } from '../data/source.js';
import { resolveSources } from '../data/sources.js';
import type { ModelSpec } from '../models/index.js';
import { UserError } from '../util/errors.js';
import { LoopCheckpoint, TrainHooks, TrainOutcome, trainModel } from './loop.js';
import {
  type Checkpoint, RESUMED_OPTIONS, checkModelName, evalTransformName, loadCheckpoint, restoreModel, restoreOptimiser, resumedOptions, saveCheckpoint,
} from './checkpoint.js';
import { accessSync, constants as fsConstants } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { LR_REFERENCE_BATCH, scaledLr, warmupCosine } from './schedule.js';
import { type LossScaleMode, describeLossScale, parseLossScale } from './loss-scale.js';
import { cudaGraphRefusal } from './graph-step.js';

export interface TrainCliOptions {
  model: string;
  dataset: string;
  testDataset?: string;
  backend: string;
  threads?: number;
  /** fp32 | tf32 | bf16 | fp16; the CPU backend runs fp32 only (checked by checkPrecision). Default fp32. */
  precision?: string;
  /**
   * --loss-scale: dynamic, dynamic:<initial scale>, none or a fixed scale (src/train/loss-scale.ts).
   * Default: dynamic with --precision fp16, none otherwise. Allowed on every backend.
   */
  lossScale?: string;
  epochs: number;
  batch: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  labelSmoothing: number;
  shift: number;
  warmupEpochs: number;
  target: number | null;
  seed: number;
  /** Hold out this fraction of the training set and evaluate on it instead of the test set (for tuning). */
  validation?: number;
  /** Save a checkpoint here after every epoch (and every `saveEvery` steps). */
  save?: string;
  saveEvery?: number;
  /** Continue from this checkpoint (weights, buffers, optimiser state, epoch/step counters). */
  resume?: string;
  /**
   * The options the user gave explicitly (CLI). With `resume`, every other option in
   * RESUMED_OPTIONS is taken from the checkpoint's recipe. Absent: all options are explicit.
   */
  explicit?: ReadonlySet<string>;
  /** Decode/transform worker threads for packed and ImageFolder data (default: all cores). */
  workers?: number;
  /** An image that cannot be decoded: skip it with a warning (default) or fail. */
  onBadImage?: 'skip' | 'fail';
  /** Capture the training step into a CUDA graph and replay it (cuda; graph-step.ts). */
  cudaGraph?: boolean;
}

/** Recipe options a model's defaults fill in when the user did not give them. */
const RECIPE_KEYS = ['epochs', 'batch', 'lr', 'momentum', 'weightDecay', 'warmupEpochs', 'labelSmoothing'] as const;

/** Options not given explicitly take the model's recipe (ModelSpec.defaults). */
export function applyModelDefaults(o: TrainCliOptions, spec: ModelSpec): TrainCliOptions {
  if (!o.explicit) return o;
  const out: TrainCliOptions = { ...o };
  for (const k of RECIPE_KEYS) if (!o.explicit.has(k)) out[k] = spec.defaults[k];
  return out;
}

/** Defaults: the recipe `npm start` and `imagerate train <model>` use when no option is given. */
export const TRAIN_DEFAULTS = {
  dataset: 'mnist',
  backend: 'cpu',
  epochs: 15,
  batch: 64,
  lr: 0.05, // base learning rate for a batch of 64; scaled linearly with --batch
  momentum: 0.9,
  weightDecay: 1e-3,
  nesterov: false,
  labelSmoothing: 0,
  shift: 2,
  warmupEpochs: 1,
  seed: 1,
};

export interface TrainSummary {
  model: string;
  dataset: string;
  testDataset: string;
  trainImagesCount: number;
  testImagesCount: number;
  backend: string;
  device: string;
  threads: number | null;
  precision: string;
  epochs: number;
  batch: number;
  lr: number;
  baseLr: number;
  momentum: number;
  weightDecay: number;
  schedule: string;
  augmentation: string;
  seed: number;
  target: number | null;
  testTop1: number;
  testTop5: number;
  bestTop1: number;
  secondsToTarget: number | null;
  wallSecondsToTarget: number | null;
  epochsToTarget: number | null;
  /** Time to accuracy (training seconds when test top-1 first reached each level; per-epoch resolution). */
  milestones: TrainOutcome['milestones'];
  totalSeconds: number;
  trainSeconds: number;
  trainImagesPerSec: number;
  evalImagesPerSec: number;
  history: TrainOutcome['epochs'];
  /** Where the checkpoint was saved (--save), or null. */
  checkpoint: string | null;
  /** The checkpoint this run continued from (--resume), or null. */
  resumedFrom: { file: string; epoch: number; step: number } | null;
  /** Which loss scaling ran, the scale at the end and the steps skipped for non-finite gradients (in all, resumed runs included). */
  lossScale: { mode: LossScaleMode; description: string; finalScale: number | null; skippedSteps: number };
  /** The training step ran as captured CUDA graph(s) replayed every step (--cuda-graph; TrainOutcome.cudaGraph); else null. */
  cudaGraph: TrainOutcome['cudaGraph'];
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new UserError(`${name} must be a positive integer, got ${v}`);
}

export function validateTrainOptions(o: TrainCliOptions): void {
  positiveInt('--epochs', o.epochs);
  positiveInt('--batch', o.batch);
  if (o.threads !== undefined) positiveInt('--threads', o.threads);
  if (o.precision !== undefined && !(PRECISIONS as readonly string[]).includes(o.precision)) {
    throw new UserError(`unknown --precision '${o.precision}' (valid: ${PRECISIONS.join(', ')})`);
  }
  parseLossScale(o.lossScale, o.precision ?? 'fp32');
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) throw new UserError(`--lr must be a positive number, got ${o.lr}`);
  if (!(o.momentum >= 0 && o.momentum < 1)) throw new UserError(`--momentum must be in [0, 1), got ${o.momentum}`);
  if (!(o.weightDecay >= 0) || !Number.isFinite(o.weightDecay)) throw new UserError(`--weight-decay must be >= 0, got ${o.weightDecay}`);
  if (!(o.labelSmoothing >= 0 && o.labelSmoothing < 1)) throw new UserError(`--label-smoothing must be in [0, 1), got ${o.labelSmoothing}`);
  if (!Number.isInteger(o.shift) || o.shift < 0 || o.shift > 8) throw new UserError(`--shift must be an integer in [0, 8], got ${o.shift}`);
  if (!(o.warmupEpochs >= 0)) throw new UserError(`--warmup-epochs must be >= 0, got ${o.warmupEpochs}`);
  if (o.target !== null && !(o.target > 0 && o.target <= 1)) throw new UserError(`--target must be an accuracy in (0, 1] (e.g. 0.98), got ${o.target}`);
  if (o.workers !== undefined && !(Number.isInteger(o.workers) && o.workers >= 0)) throw new UserError(`--workers must be an integer >= 0, got ${o.workers}`);
  if (o.onBadImage !== undefined && o.onBadImage !== 'skip' && o.onBadImage !== 'fail') throw new UserError(`--on-bad-image must be skip or fail, got '${o.onBadImage}'`);
  if (o.validation !== undefined && !(o.validation >= 0 && o.validation < 1)) throw new UserError(`--validation must be a fraction in [0, 1), got ${o.validation}`);
  if (!Number.isInteger(o.seed)) throw new UserError(`--seed must be an integer, got ${o.seed}`);
  if (o.saveEvery !== undefined) {
    positiveInt('--save-every', o.saveEvery);
    if (!o.save) throw new UserError('--save-every needs --save <file>');
  }
  if (o.save) {
    const dir = dirname(resolvePath(o.save));
    try {
      accessSync(dir, fsConstants.W_OK);
    } catch {
      throw new UserError(`--save ${o.save}: directory ${dir} does not exist or is not writable`);
    }
  }
}

export interface PreparedRun {
  trainDs: ImageDataset;
  testDs: ImageDataset;
}

/** True for dataset specs served by src/data/sources.ts (cifar10:<dir>, imagefolder:<path>). */
function isSourceSpec(spec: string): boolean {
  return /^(cifar10|imagefolder):/.test(spec);
}

/** The training and evaluation sources of a run, for every kind of dataset spec. */
export async function prepareSources(o: TrainCliOptions, spec: ModelSpec): Promise<{ train: BatchSource; test: BatchSource }> {
  const aug = spec.defaults.augmentation;
  if (isSourceSpec(o.dataset)) {
    const given = o.testDataset ? '--test-dataset' : o.validation ? '--validation' : null;
    if (given) throw new UserError(`${given} is not supported with --dataset ${o.dataset} (it has its own test split)`);
    if (aug === 'mnist-shift') throw new UserError(`model ${spec.name} trains on 1x28x28 digits; --dataset ${o.dataset} holds colour images`);
    return resolveSources(o.dataset, { transform: aug, seed: o.seed, workers: o.workers, onError: o.onBadImage, inputSize: spec.input[1] });
  }
  const { trainDs, testDs } = prepareData(o);
  return {
    train: datasetSource(trainDs, { shuffle: true, seed: o.seed, augment: o.shift > 0 ? { translate: o.shift } : null }),
    test: datasetSource(testDs, { shuffle: false, seed: o.seed }),
  };
}

/** Loads the data for a run. With --test-dataset, the whole of --dataset is used for training. */
export function prepareData(o: TrainCliOptions): PreparedRun {
  if (o.validation !== undefined && o.validation > 0) {
    if (o.testDataset) throw new UserError('--validation and --test-dataset exclude each other');
    // The last `fraction` of the training set (whose order is fixed and class-interleaved for
    // the embedded set) becomes the evaluation set; the test set is not touched.
    const full = resolveDataset(o.dataset, 'train');
    const nVal = Math.round(full.n * o.validation);
    const idx = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
    return {
      trainDs: subset(full, idx(0, full.n - nVal), `${full.name} (train minus validation)`),
      testDs: subset(full, idx(full.n - nVal, full.n), `${full.name} (validation: last ${nVal} training images)`),
    };
  }
  if (o.testDataset) {
    return { trainDs: resolveDataset(o.dataset, 'all'), testDs: resolveDataset(o.testDataset, 'test') };
  }
  return { trainDs: resolveDataset(o.dataset, 'train'), testDs: resolveDataset(o.dataset, 'test') };
}

export async function runTraining(opts: TrainCliOptions, hooks: TrainHooks = {}): Promise<TrainSummary> {
  const spec = getModelSpec(opts.model);
  let o = applyModelDefaults(opts, spec);
  let ckpt: Checkpoint | null = null;
  if (o.resume) {
    ckpt = await loadCheckpoint(o.resume);
    checkModelName(ckpt, spec.name);
    o = resumedOptions(o, ckpt);
  }
  validateTrainOptions(o);
  const be = await openBackend(o.backend);
  const precision = checkPrecision(be.name, o.precision ?? 'fp32');
  be.setPrecision?.(precision);
  const lossScale = parseLossScale(o.lossScale, precision);
  const refusal = o.cudaGraph ? cudaGraphRefusal(be.name) : null;
  if (refusal) throw new UserError(refusal);
  if (o.threads !== undefined) be.setThreads?.(o.threads);
  const { train, test } = await prepareSources(o, spec);
  const lr = scaledLr(o.lr, o.batch);
  const stepsPerEpoch = Math.floor(train.n / Math.min(o.batch, train.n));
  const schedule = warmupCosine(lr, o.epochs * stepsPerEpoch, Math.round(o.warmupEpochs * stepsPerEpoch));
  const buildOpts = { numClasses: spec.numClasses, inputSize: spec.input[1] };
  const model = spec.build(be, o.seed, buildOpts);
  try {
    const checkpoint: LoopCheckpoint = {};
    if (ckpt) {
      const c = ckpt;
      restoreModel(model, c, spec.name);
      const { epoch, step, stepInEpoch, bestTop1, epochLoss } = c.meta;
      checkpoint.resume = { epoch, step, stepInEpoch, bestTop1, epochLoss, lossScale: c.meta.lossScale,
        restoreOptimiser: (opt) => restoreOptimiser(opt, model, c) };
    }
    if (o.save) {
      const file = o.save;
      const options = Object.fromEntries(RESUMED_OPTIONS.map((k) => [k, o[k] ?? null]));
      const training = { options, lr, stepsPerEpoch, schedule: schedule.kind, trainDataset: train.name, trainImages: train.n,
        testDataset: test.name, augmentation: train.transform };
      checkpoint.every = o.saveEvery;
      checkpoint.save = (at) => saveCheckpoint(file, {
        modelName: spec.name, module: model, buildOpts, inputShape: spec.input,
        classNames: test.classNames, normalisation: test.normalisation, transform: evalTransformName(test),
        epoch: at.epoch, step: at.step, stepInEpoch: at.stepInEpoch, epochLoss: at.epochLoss, bestTop1: at.bestTop1,
        stepsPerEpoch, seed: o.seed, training, optimiser: at.optimiser, lossScale: at.lossScale,
      }).then(() => undefined);
    }
    const out = await trainModel(be, model, spec.name, spec.input, train, test, {
      epochs: o.epochs, batch: o.batch, lr, momentum: o.momentum, weightDecay: o.weightDecay, nesterov: o.nesterov,
      labelSmoothing: o.labelSmoothing, seed: o.seed, target: o.target, evalBatch: 500, lossScale, cudaGraph: o.cudaGraph,
    }, schedule, hooks, checkpoint);
    return {
      model: spec.name, dataset: train.name, testDataset: test.name,
      trainImagesCount: train.n, testImagesCount: test.n,
      backend: be.name, device: be.device, threads: be.threads?.() ?? null, precision,
      epochs: out.epochs.length, batch: o.batch, lr, baseLr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay,
      schedule: `${schedule.kind}; lr = ${o.lr} x batch/${LR_REFERENCE_BATCH}`,
      augmentation: train.transform, seed: o.seed, target: o.target,
      testTop1: out.testTop1, testTop5: out.testTop5, bestTop1: out.bestTop1,
      secondsToTarget: out.secondsToTarget, wallSecondsToTarget: out.wallSecondsToTarget, epochsToTarget: out.epochsToTarget, milestones: out.milestones,
      totalSeconds: out.totalSeconds, trainSeconds: out.trainSeconds,
      trainImagesPerSec: out.trainImagesPerSec, evalImagesPerSec: out.evalImagesPerSec, history: out.epochs,
      checkpoint: o.save ? resolvePath(o.save) : null,
      resumedFrom: ckpt ? { file: resolvePath(ckpt.file), epoch: ckpt.meta.epoch, step: ckpt.meta.step } : null,
      lossScale: { mode: lossScale.mode, description: describeLossScale(lossScale),
        finalScale: out.lossScale?.scale ?? null, skippedSteps: out.lossScale?.skippedSteps ?? 0 },
      cudaGraph: out.cudaGraph,
    };
  } finally {
    model.dispose();
    await train.close?.();
    await test.close?.();
  }
}
