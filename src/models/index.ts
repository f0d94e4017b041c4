// The model zoo: name -> constructor and the facts every report needs (input shape, classes,
// and the training recipe defaults that the CLI starts from).
import type { Backend } from '../backend/backend.js';
import type { Module } from '../nn/module.js';
import { UserError } from '../util/errors.js';
import { lenet5, lenetCaffe, mnistTf } from './lenet.js';
import { cifar10Tf, resnet20 } from './cifar.js';
import { resnet50 } from './resnet.js';
import { alexnet } from './alexnet.js';

export interface BuildOptions {
  /** Size of the classifier's output (the spec's numClasses by default). */
  numClasses?: number;
  /**
   * Side of the square input image (the spec's input H = W by default). It sizes the first fc
   * layer of cifar10-tf and alexnet; the ResNets pool globally and take any size, so for them
   * it only changes inputShape().
   */
  inputSize?: number;
  /** Residual nets: zero the last BN gamma of every block, so each block starts as the identity. */
  zeroInitResidual?: boolean;
}

/** The augmentation a recipe trains with (implemented by src/data). */
export type AugmentationKind =
  | 'mnist-shift' // random shift of up to 2 pixels
  | 'cifar-crop24' // random 24x24 crop of the 32x32 image + flip (TF tutorial; centre crop to evaluate)
  | 'cifar-crop32' // pad 4, random 32x32 crop + flip (He et al.)
  | 'imagenet'; // random-resized crop to the input size + flip; resize + centre crop to evaluate

/** The recipe a model trains with: what `imagerate train <model>` uses when no option is given. */
export interface TrainRecipe {
  epochs: number;
  batch: number;
  /** Base learning rate for a batch of 64 (the CLI scales it linearly with the batch). */
  lr: number;
  momentum: number;
  weightDecay: number;
  augmentation: AugmentationKind;
  warmupEpochs: number;
  labelSmoothing: number;
  /** Where the numbers come from, and what differs from the source. */
  source: string;
}

export interface ModelSpec {
  name: string;
  description: string;
  input: [number, number, number]; // C, H, W (the default input size)
  numClasses: number;
  /** The build options this model accepts; others are rejected with a UserError. */
  options: readonly (keyof BuildOptions)[];
  defaults: TrainRecipe;
  build(be: Backend, seed: number, opts?: BuildOptions): Module;
}

/** The MNIST recipe of TRAIN_DEFAULTS in src/train/run.ts (15 epochs, ~99 % test top-1). */
const MNIST_RECIPE: TrainRecipe = {
  epochs: 15, batch: 64, lr: 0.05, momentum: 0.9, weightDecay: 1e-3, augmentation: 'mnist-shift', warmupEpochs: 1, labelSmoothing: 0,
  source: 'imagerate default for the MNIST nets (SGD momentum, warm-up + cosine)',
};

type Builder = (be: Backend, seed: number, opts: BuildOptions) => Module;

function spec(s: Omit<ModelSpec, 'build'> & { make: Builder }): ModelSpec {
  const { make, ...rest } = s;
  return {
    ...rest,
    build(be: Backend, seed: number, opts: BuildOptions = {}): Module {
      const given = (Object.keys(opts) as (keyof BuildOptions)[]).filter((k) => opts[k] !== undefined);
      for (const k of given) {
        // An option equal to the model's fixed value is harmless (the CLI may pass numClasses = 10).
        const isDefault = (k === 'numClasses' && opts.numClasses === s.numClasses) || (k === 'inputSize' && opts.inputSize === s.input[1]);
        if (!s.options.includes(k) && !isDefault) {
          throw new UserError(`model '${s.name}' does not support option ${k}${s.options.length ? ` (it supports: ${s.options.join(', ')})` : ''}`);
        }
      }
      for (const k of ['numClasses', 'inputSize'] as const) {
        const v = opts[k];
        if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new UserError(`${k} must be a positive integer, got ${v}`);
      }
      const m = make(be, seed, opts);
      // Reliability: each parameter carries its dotted name ("layer1.0.conv1.weight"), so that a
      // shape error inside an op names the layer (src/ops/util.ts, opLabel).
      for (const [name, t] of m.namedParameters()) t.name = name;
      return m;
    },
  };
}

export const MODELS: Record<string, ModelSpec> = {
  lenet5: spec({
    name: 'lenet5',
    description: 'LeNet-5 (6-16-120-84-10), ReLU + max-pool',
    input: [1, 28, 28],
    numClasses: 10,
    options: [],
    defaults: MNIST_RECIPE,
    make: (be, seed) => lenet5(be, seed),
  }),
  'lenet-caffe': spec({
    name: 'lenet-caffe',
    description: 'Caffe/Caffe2 tutorial LeNet (20-50-500-10)',
    input: [1, 28, 28],
    numClasses: 10,
    options: [],
    defaults: MNIST_RECIPE,
    make: (be, seed) => lenetCaffe(be, seed),
  }),
  'mnist-tf': spec({
    name: 'mnist-tf',
    description: 'TensorFlow Deep-MNIST tutorial net (32-64-1024-10, dropout 0.5)',
    input: [1, 28, 28],
    numClasses: 10,
    options: [],
    defaults: MNIST_RECIPE,
    make: (be, seed) => mnistTf(be, seed),
  }),
  'cifar10-tf': spec({
    name: 'cifar10-tf',
    description: 'TensorFlow CIFAR-10 tutorial net on 24x24 crops (conv64-LRN-conv64-LRN-384-192-10)',
    input: [3, 24, 24],
    numClasses: 10,
    options: ['numClasses', 'inputSize'],
    defaults: {
      epochs: 60, batch: 128, lr: 0.05, momentum: 0, weightDecay: 0.004, augmentation: 'cifar-crop24', warmupEpochs: 0, labelSmoothing: 0,
      source: 'TF tutorial cifar10.py: plain SGD, lr 0.1 at batch 128, decay 0.004 (tutorial: on local3/local4 only; the CLI applies it to every weight), ' +
        'lr x0.1 every 350 epochs over ~2,560 epochs; here 60 epochs with cosine decay',
    },
    make: (be, seed, o) => cifar10Tf(be, seed, o),
  }),
  resnet20: spec({
    name: 'resnet20',
    description: 'CIFAR ResNet-20 (He et al. 2015, 3x3 BasicBlocks 16/32/64, BN, option-B projection shortcuts)',
    input: [3, 32, 32],
    numClasses: 10,
    options: ['numClasses', 'inputSize', 'zeroInitResidual'],
    defaults: {
      epochs: 164, batch: 128, lr: 0.05, momentum: 0.9, weightDecay: 1e-4, augmentation: 'cifar-crop32', warmupEpochs: 1, labelSmoothing: 0,
      source: 'He et al. 2015 section 4.2: lr 0.1 at batch 128, momentum 0.9, decay 1e-4, 64k iterations (164 epochs of 50k), ' +
        'lr /10 at 32k and 48k; here warm-up + cosine over the same length',
    },
    make: (be, seed, o) => resnet20(be, seed, o),
  }),
  resnet50: spec({
    name: 'resnet50',
    description: 'ResNet-50 v1.5 (MLPerf reference / torchvision: stride on the 3x3 conv)',
    input: [3, 224, 224],
    numClasses: 1000,
    options: ['numClasses', 'inputSize', 'zeroInitResidual'],
    defaults: {
      epochs: 90, batch: 256, lr: 0.025, momentum: 0.9, weightDecay: 1e-4, augmentation: 'imagenet', warmupEpochs: 5, labelSmoothing: 0,
      source: 'MLPerf ResNet-50 v1.5 reference (TF official/resnet): lr 0.1 x batch/256, momentum 0.9, decay 1e-4, 90 epochs; ' +
        '5 warm-up epochs as Goyal et al. 2017; step decay there, cosine here',
    },
    make: (be, seed, o) => resnet50(be, seed, o),
  }),
  alexnet: spec({
    name: 'alexnet',
    description: 'AlexNet, single tower (one weird trick / torchvision: 64-192-384-256-256, fc4096 x2)',
    input: [3, 224, 224],
    numClasses: 1000,
    options: ['numClasses', 'inputSize'],
    defaults: {
      epochs: 90, batch: 128, lr: 0.005, momentum: 0.9, weightDecay: 5e-4, augmentation: 'imagenet', warmupEpochs: 0, labelSmoothing: 0,
      source: 'Krizhevsky et al. 2012: lr 0.01 at batch 128, momentum 0.9, decay 5e-4, ~90 epochs, lr /10 on plateaus; here cosine',
    },
    make: (be, seed, o) => alexnet(be, seed, o),
  }),
};

export function getModelSpec(name: string): ModelSpec {
  const spec = MODELS[name];
  if (!spec) throw new UserError(`unknown model '${name}' (valid: ${Object.keys(MODELS).join(', ')})`);
  return spec;
}

/** [C, H, W] a model is built for with these options. */
export function inputShape(spec: ModelSpec, opts: BuildOptions = {}): [number, number, number] {
  const s = opts.inputSize ?? spec.input[1];
  return [spec.input[0], s, s];
}
