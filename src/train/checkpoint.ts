// Checkpoints: one safetensors file (src/train/safetensors.ts) per save, holding
//
//   <param name>          every parameter, by its dotted name ("0.weight"), F32
//   <buffer name>         every buffer (batch-norm running_mean/running_var...), F32 or I32
//   optim.<param name>    the SGD momentum buffer of that parameter, once it has taken a step
//   __metadata__.imagerate  a JSON string: CheckpointMeta below (what the model is, how its
//                         inputs are prepared, and where training stood, loss scaler included)
//
// Writes are atomic (`<file>.tmp-<pid>`, fsync, rename): an interrupted save leaves the
// previous checkpoint intact. Loading validates the file and the metadata; restoring into a
// model checks every name and shape before it changes anything.
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor.js';
import { ImagerateDataError, type Normalisation } from '../data/dataset.js';
import { UserError, fmtShape } from '../util/errors.js';
import { VERSION, gitCommit } from '../util/version.js';
import { readSafetensors, writeSafetensors, type SafetensorsTensor, type TensorToWrite } from './safetensors.js';
import type { Sgd } from './sgd.js';
import type { TrainCliOptions } from './run.js';
import type { BatchSource } from '../data/source.js';
import { isLossScaleState, type LossScaleState } from './loss-scale.js';

export const CHECKPOINT_FORMAT = 'imagerate-checkpoint';
export const CHECKPOINT_VERSION = 1;
/** The __metadata__ key that holds CheckpointMeta as JSON. */
export const METADATA_KEY = 'imagerate';
/** Prefix of the optimiser-state tensors. */
export const OPTIM_PREFIX = 'optim.';

export type Chw = [number, number, number];

/** The JSON stored under __metadata__.imagerate (version 1). */
export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** imagerate version and git commit that wrote the file, and when (ISO 8601). */
  imagerateVersion: string;
  commit: string | null;
  savedAt: string;
  /** The model (a name in src/models/index.ts) and the build options it was made with (ModelSpec.build). */
  model: { name: string; opts: { numClasses: number; inputSize: number } };
  classNames: string[];
  /** Per-channel mean/std of [0,1] pixels: the model's input is (pixel - mean) / std. */
  normalisation: Normalisation;
  /** [C, H, W] of one input image. */
  inputShape: Chw;
  /** The evaluation transform, a TransformName of src/data/transforms.ts ("mnist", "cifar-crop32", ...). */
  transform: string;
  /** Epochs completed. */
  epoch: number;
  /** Optimiser steps taken in all (the LR schedule's position). */
  step: number;
  /** Steps already taken in epoch `epoch + 1` (0 when saved at the end of an epoch). */
  stepInEpoch: number;
  stepsPerEpoch: number | null;
  /** Sum and count of the training losses of epoch `epoch + 1` so far (mid-epoch saves). */
  epochLoss: { sum: number; count: number } | null;
  seed: number;
  /** Best test top-1 seen so far; null before the first evaluation. */
  bestTop1: number | null;
  /** The training recipe (CLI options and derived values), or null outside training. */
  training: Record<string, unknown> | null;
  /**
   * The loss scaler's state (src/train/loss-scale.ts: scale, finite steps since it last
   * changed, skipped steps), or null when the run did not scale the loss. Files written before
   * loss scaling existed lack the field; loading gives null.
   */
  lossScale: LossScaleState | null;
  /** Which tensors of the file are what. */
  tensors: { parameters: string[]; buffers: string[]; optimiser: string[] };
}

/** What a caller hands to saveCheckpoint; the rest of CheckpointMeta is filled in. */
export interface CheckpointInput {
  modelName: string;
  module: Module;
  /** The options the model was built with. */
  buildOpts: { numClasses: number; inputSize: number };
  inputShape: Chw;
  classNames: readonly string[];
  normalisation: Normalisation;
  transform: string;
  epoch: number;
  step: number;
  stepInEpoch?: number;
  stepsPerEpoch?: number | null;
  epochLoss?: { sum: number; count: number } | null;
  seed: number;
  bestTop1: number | null;
  training?: Record<string, unknown> | null;
  optimiser?: Sgd | null;
  lossScale?: LossScaleState | null;
}

export interface Checkpoint {
  file: string;
  meta: CheckpointMeta;
  tensors: Map<string, SafetensorsTensor>;
}

function tensorEntry(t: Tensor): TensorToWrite {
  return { dtype: t.dtype === 'int32' ? 'I32' : 'F32', shape: t.shape, data: () => t.data() };
}

/** Saves the model, its buffers, the optimiser state and `input`'s facts to `file`, atomically. */
export async function saveCheckpoint(file: string, input: CheckpointInput): Promise<CheckpointMeta> {
  const params = input.module.namedParameters();
  const buffers = input.module.namedBuffers();
  const entries = new Map<string, TensorToWrite>();
  for (const [name, t] of [...params, ...buffers]) {
    if (name.startsWith(OPTIM_PREFIX)) throw new Error(`checkpoint: tensor name '${name}' collides with the optimiser prefix`);
    entries.set(name, tensorEntry(t));
  }
  const optimiser: string[] = [];
  if (input.optimiser) {
    const state = input.optimiser.state();
    for (const [name, p] of params) {
      const v = state.get(p);
      if (!v) continue;
      entries.set(OPTIM_PREFIX + name, tensorEntry(v));
      optimiser.push(OPTIM_PREFIX + name);
    }
  }
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    imagerateVersion: VERSION,
    commit: gitCommit(),
    savedAt: new Date().toISOString(),
    model: { name: input.modelName, opts: { numClasses: input.buildOpts.numClasses, inputSize: input.buildOpts.inputSize } },
    classNames: [...input.classNames],
    normalisation: { mean: [...input.normalisation.mean], std: [...input.normalisation.std] },
    inputShape: [...input.inputShape],
    transform: input.transform,
    epoch: input.epoch,
    step: input.step,
    stepInEpoch: input.stepInEpoch ?? 0,
    stepsPerEpoch: input.stepsPerEpoch ?? null,
    epochLoss: input.epochLoss ?? null,
    seed: input.seed,
    bestTop1: input.bestTop1,
    training: input.training ?? null,
    lossScale: input.lossScale ? { ...input.lossScale } : null,
    tensors: { parameters: params.map(([n]) => n), buffers: buffers.map(([n]) => n), optimiser },
  };
  await writeSafetensors(file, entries, { [METADATA_KEY]: JSON.stringify(meta) });
  return meta;
}

// ---------------------------------------------------------------------------------------------
// Loading

type Check = (v: unknown) => boolean;
const isInt: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const isNum: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const isStr: Check = (v) => typeof v === 'string';
const listOf = (c: Check): Check => (v) => Array.isArray(v) && v.every(c);
const isChw: Check = (v) => Array.isArray(v) && v.length === 3 && v.every((d) => isInt(d) && d > 0);
const orNull = (c: Check): Check => (v) => v === null || c(v);
const isObj: Check = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

function validateMeta(file: string, m: Record<string, unknown>): CheckpointMeta {
  const fail = (p: string): never => {
    throw new ImagerateDataError(file, `checkpoint metadata: ${p}`);
  };
  const field = (path: string, c: Check, what: string) => {
    let v: unknown = m;
    for (const k of path.split('.')) v = isObj(v) ? (v as Record<string, unknown>)[k] : undefined;
    if (!c(v)) fail(`${path} is ${v === undefined ? 'missing' : JSON.stringify(v)}, expected ${what}`);
  };
  if (m.format !== CHECKPOINT_FORMAT) fail(`format is ${JSON.stringify(m.format)}, expected "${CHECKPOINT_FORMAT}"`);
  if (typeof m.version !== 'number' || m.version > CHECKPOINT_VERSION) {
    fail(`version ${JSON.stringify(m.version)} is newer than this imagerate reads (${CHECKPOINT_VERSION}); upgrade imagerate`);
  }
  field('model.name', isStr, 'a model name');
  field('model.opts.numClasses', (v) => isInt(v) && (v as number) > 0, 'a positive integer');
  field('model.opts.inputSize', (v) => isInt(v) && (v as number) > 0, 'a positive integer');
  field('inputShape', isChw, '[C, H, W]');
  field('classNames', listOf(isStr), 'a list of strings');
  field('normalisation.mean', listOf(isNum), 'a list of numbers');
  field('normalisation.std', listOf((v) => isNum(v) && (v as number) > 0), 'a list of positive numbers');
  field('transform', isStr, 'a string');
  for (const k of ['epoch', 'step', 'stepInEpoch', 'seed']) field(k, k === 'seed' ? Number.isSafeInteger : isInt, 'an integer');
  field('stepsPerEpoch', orNull(isInt), 'an integer or null');
  field('epochLoss', orNull((v) => isObj(v) && isNum((v as { sum: unknown }).sum) && isInt((v as { count: unknown }).count)), '{sum, count} or null');
  field('bestTop1', orNull(isNum), 'a number or null');
  field('training', orNull(isObj), 'an object or null');
  if (m.lossScale === undefined) m.lossScale = null;
  field('lossScale', orNull(isLossScaleState), '{mode, scale, goodSteps, skippedSteps, consecutiveSkips} or null');
  for (const k of ['parameters', 'buffers', 'optimiser']) field(`tensors.${k}`, listOf(isStr), 'a list of tensor names');
  const meta = m as unknown as CheckpointMeta;
  const [c] = meta.inputShape;
  if (meta.normalisation.mean.length !== c || meta.normalisation.std.length !== c) {
    fail(`normalisation has ${meta.normalisation.mean.length} means and ${meta.normalisation.std.length} stds for ${c} channels`);
  }
  if (meta.classNames.length !== meta.model.opts.numClasses) {
    fail(`${meta.classNames.length} class names for ${meta.model.opts.numClasses} classes`);
  }
  return meta;
}

/** Reads and validates a checkpoint. Errors (missing file, corrupt data, foreign file) name the file. */
export async function loadCheckpoint(file: string): Promise<Checkpoint> {
  const { tensors, metadata } = await readSafetensors(file);
  const raw = metadata[METADATA_KEY];
  if (raw === undefined) {
    throw new ImagerateDataError(file, `not an imagerate checkpoint: a safetensors file without '${METADATA_KEY}' metadata (${tensors.size} tensors)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new ImagerateDataError(file, `checkpoint metadata is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObj(parsed)) throw new ImagerateDataError(file, 'checkpoint metadata is not a JSON object');
  const meta = validateMeta(file, parsed as Record<string, unknown>);
  const listed = [...meta.tensors.parameters, ...meta.tensors.buffers, ...meta.tensors.optimiser];
  for (const name of listed) {
    const t = tensors.get(name);
    if (!t) throw new ImagerateDataError(file, `checkpoint lists tensor '${name}' but the file does not hold it`);
    if (t.dtype !== 'F32' && t.dtype !== 'I32') throw new ImagerateDataError(file, `tensor '${name}' is ${t.dtype}; checkpoints hold F32 and I32 only`);
  }
  const extra = [...tensors.keys()].filter((n) => !listed.includes(n));
  if (extra.length) throw new ImagerateDataError(file, `tensors not listed in the checkpoint metadata: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''}`);
  return { file, meta, tensors };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Refuses a checkpoint of another model, naming both. */
export function checkModelName(ckpt: Checkpoint, modelName: string): void {
  if (ckpt.meta.model.name !== modelName) {
    throw new UserError(`checkpoint ${ckpt.file} holds model ${ckpt.meta.model.name}, but ${modelName} was asked for`);
  }
}

/**
 * Copies the checkpoint's parameters and buffers into `model` (built as `modelName`). Every
 * name and shape is checked first; on any mismatch nothing is changed.
 */
export function restoreModel(model: Module, ckpt: Checkpoint, modelName: string): void {
  checkModelName(ckpt, modelName);
  const where = `checkpoint ${ckpt.file}`;
  const targets = [...model.namedParameters(), ...model.namedBuffers()];
  const wanted = new Set(targets.map(([n]) => n));
  const saved = [...ckpt.meta.tensors.parameters, ...ckpt.meta.tensors.buffers];
  for (const [name, t] of targets) {
    const s = ckpt.tensors.get(name);
    if (!s || !saved.includes(name)) throw new UserError(`${where} lacks tensor ${name} of model ${modelName}`);
    if (!sameShape(s.shape, t.shape)) {
      throw new UserError(`${where}: tensor ${name} has shape ${fmtShape(s.shape)} in the checkpoint but ${fmtShape(t.shape)} in model ${modelName}`);
    }
    if ((s.dtype === 'I32') !== (t.dtype === 'int32')) {
      throw new UserError(`${where}: tensor ${name} is ${s.dtype} in the checkpoint but ${t.dtype} in model ${modelName}`);
    }
  }
  const unexpected = saved.filter((n) => !wanted.has(n));
  if (unexpected.length) {
    throw new UserError(`${where} has tensors that model ${modelName} does not: ${unexpected.join(', ')}`);
  }
  for (const [name, t] of targets) t.backend.upload(t.buf, ckpt.tensors.get(name)!.data as Float32Array | Int32Array);
}

/** Restores the momentum buffers saved for `model`'s parameters into `opt`. */
export function restoreOptimiser(opt: Sgd, model: Module, ckpt: Checkpoint): void {
  const byName = new Map(model.namedParameters());
  for (const key of ckpt.meta.tensors.optimiser) {
    const name = key.slice(OPTIM_PREFIX.length);
    const p = byName.get(name);
    const s = ckpt.tensors.get(key)!;
    if (!key.startsWith(OPTIM_PREFIX) || !p) throw new UserError(`checkpoint ${ckpt.file}: optimiser state ${key} is for no parameter of the model`);
    if (!sameShape(s.shape, p.shape) || s.dtype !== 'F32') {
      throw new UserError(`checkpoint ${ckpt.file}: optimiser state ${key} has shape ${fmtShape(s.shape)} but parameter ${name} has ${fmtShape(p.shape)}`);
    }
    opt.setState(p, s.data as Float32Array);
  }
}

// ---------------------------------------------------------------------------------------------
// Training runs (src/train/run.ts): what a checkpoint records of the recipe, and how --resume
// takes it back.

/** The recipe options a checkpoint records and --resume takes back unless given again. */
export const RESUMED_OPTIONS = ['dataset', 'testDataset', 'validation', 'epochs', 'batch', 'lr', 'momentum', 'weightDecay',
  'nesterov', 'labelSmoothing', 'shift', 'warmupEpochs', 'target', 'seed', 'lossScale'] as const;

/**
 * The evaluation transform a checkpoint records, by its TransformName: an image source's own
 * (ImageBatchSource.resolved, read without importing the decoders), or 'mnist' for the
 * in-memory grey sets (MNIST, Fashion-MNIST, IDX), whose evaluation transform is that one.
 */
export function evalTransformName(src: BatchSource): string {
  const resolved = (src as { resolved?: { name?: unknown } }).resolved;
  if (typeof resolved?.name === 'string') return resolved.name;
  return src.shape[0] === 1 ? 'mnist' : src.transform;
}

/** Options for a resumed run: the checkpoint's recipe, overridden by what the user gave again. */
export function resumedOptions(o: TrainCliOptions, ckpt: Checkpoint): TrainCliOptions {
  const saved = (ckpt.meta.training?.options ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = { ...o };
  if (o.explicit) {
    for (const k of RESUMED_OPTIONS) {
      if (!o.explicit.has(k) && Object.hasOwn(saved, k)) out[k] = saved[k] === null && k !== 'target' ? undefined : saved[k];
    }
  }
  const merged = out as unknown as TrainCliOptions;
  for (const k of ['batch', 'dataset', 'validation'] as const) {
    if (Object.hasOwn(saved, k) && (saved[k] ?? null) !== (merged[k] ?? null)) {
      throw new UserError(`cannot resume ${o.resume} with --${k} ${merged[k]}: it was trained with ${saved[k]}`);
    }
  }
  if (ckpt.meta.epoch >= merged.epochs) {
    throw new UserError(`checkpoint ${o.resume} has already completed ${ckpt.meta.epoch} of ${merged.epochs} epochs; give a larger --epochs to train on`);
  }
  return merged;
}
