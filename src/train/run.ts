// `imagerate train`: resolves the model, data and backend from CLI options, trains, and
// returns the summary object that --json prints.
import { getBackend } from '../backend/registry.js';
import { getModelSpec } from '../models/index.js';
import { resolveDataset } from '../data/resolve.js';
import { subset, type ImageDataset } from '../data/dataset.js';
import { datasetSource } from '../data/source.js';
import { UserError } from '../util/errors.js';
import { TrainHooks, TrainOutcome, trainModel } from './loop.js';
import { LR_REFERENCE_BATCH, scaledLr, warmupCosine } from './schedule.js';

export interface TrainCliOptions {
  model: string;
  dataset: string;
  testDataset?: string;
  backend: string;
  threads?: number;
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
  totalSeconds: number;
  trainSeconds: number;
  trainImagesPerSec: number;
  evalImagesPerSec: number;
  history: TrainOutcome['epochs'];
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new UserError(`${name} must be a positive integer, got ${v}`);
}

export function validateTrainOptions(o: TrainCliOptions): void {
  positiveInt('--epochs', o.epochs);
  positiveInt('--batch', o.batch);
  if (o.threads !== undefined) positiveInt('--threads', o.threads);
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) throw new UserError(`--lr must be a positive number, got ${o.lr}`);
  if (!(o.momentum >= 0 && o.momentum < 1)) throw new UserError(`--momentum must be in [0, 1), got ${o.momentum}`);
  if (!(o.weightDecay >= 0) || !Number.isFinite(o.weightDecay)) throw new UserError(`--weight-decay must be >= 0, got ${o.weightDecay}`);
  if (!(o.labelSmoothing >= 0 && o.labelSmoothing < 1)) throw new UserError(`--label-smoothing must be in [0, 1), got ${o.labelSmoothing}`);
  if (!Number.isInteger(o.shift) || o.shift < 0 || o.shift > 8) throw new UserError(`--shift must be an integer in [0, 8], got ${o.shift}`);
  if (!(o.warmupEpochs >= 0)) throw new UserError(`--warmup-epochs must be >= 0, got ${o.warmupEpochs}`);
  if (o.target !== null && !(o.target > 0 && o.target <= 1)) throw new UserError(`--target must be an accuracy in (0, 1] (e.g. 0.98), got ${o.target}`);
  if (o.validation !== undefined && !(o.validation >= 0 && o.validation < 1)) throw new UserError(`--validation must be a fraction in [0, 1), got ${o.validation}`);
  if (!Number.isInteger(o.seed)) throw new UserError(`--seed must be an integer, got ${o.seed}`);
}

export interface PreparedRun {
  trainDs: ImageDataset;
  testDs: ImageDataset;
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

export async function runTraining(o: TrainCliOptions, hooks: TrainHooks = {}): Promise<TrainSummary> {
  validateTrainOptions(o);
  const spec = getModelSpec(o.model);
  const be = getBackend(o.backend);
  if (o.threads !== undefined) be.setThreads?.(o.threads);
  const { trainDs, testDs } = prepareData(o);
  const lr = scaledLr(o.lr, o.batch);
  const stepsPerEpoch = Math.floor(trainDs.n / Math.min(o.batch, trainDs.n));
  const schedule = warmupCosine(lr, o.epochs * stepsPerEpoch, Math.round(o.warmupEpochs * stepsPerEpoch));
  const model = spec.build(be, o.seed);
  try {
    const train = datasetSource(trainDs, { shuffle: true, seed: o.seed, augment: o.shift > 0 ? { translate: o.shift } : null });
    const test = datasetSource(testDs, { shuffle: false, seed: o.seed });
    const out = await trainModel(be, model, spec.name, spec.input, train, test, {
      epochs: o.epochs, batch: o.batch, lr, momentum: o.momentum, weightDecay: o.weightDecay, nesterov: o.nesterov,
      labelSmoothing: o.labelSmoothing, seed: o.seed, target: o.target, evalBatch: 500,
    }, schedule, hooks);
    return {
      model: spec.name, dataset: trainDs.name, testDataset: testDs.name,
      trainImagesCount: trainDs.n, testImagesCount: testDs.n,
      backend: be.name, device: be.device, threads: be.threads?.() ?? null,
      epochs: out.epochs.length, batch: o.batch, lr, baseLr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay,
      schedule: `${schedule.kind}; lr = ${o.lr} x batch/${LR_REFERENCE_BATCH}`,
      augmentation: train.transform, seed: o.seed, target: o.target,
      testTop1: out.testTop1, testTop5: out.testTop5, bestTop1: out.bestTop1,
      secondsToTarget: out.secondsToTarget, wallSecondsToTarget: out.wallSecondsToTarget, epochsToTarget: out.epochsToTarget,
      totalSeconds: out.totalSeconds, trainSeconds: out.trainSeconds,
      trainImagesPerSec: out.trainImagesPerSec, evalImagesPerSec: out.evalImagesPerSec, history: out.epochs,
    };
  } finally {
    model.dispose();
  }
}
