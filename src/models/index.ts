// The model zoo: name -> constructor and the facts every report needs (input shape, classes,
// and the training recipe defaults that the CLI starts from).
import type { Backend } from '../backend/backend.js';
import type { Module } from '../nn/module.js';
import { UserError } from '../util/errors.js';
import { lenet5, lenetCaffe, mnistTf } from './lenet.js';

export interface ModelSpec {
  name: string;
  description: string;
  input: [number, number, number]; // C, H, W
  numClasses: number;
  build(be: Backend, seed: number): Module;
}

export const MODELS: Record<string, ModelSpec> = {
  lenet5: {
    name: 'lenet5',
    description: 'LeNet-5 (6-16-120-84-10), ReLU + max-pool',
    input: [1, 28, 28],
    numClasses: 10,
    build: lenet5,
  },
  'lenet-caffe': {
    name: 'lenet-caffe',
    description: 'Caffe/Caffe2 tutorial LeNet (20-50-500-10)',
    input: [1, 28, 28],
    numClasses: 10,
    build: lenetCaffe,
  },
  'mnist-tf': {
    name: 'mnist-tf',
    description: 'TensorFlow Deep-MNIST tutorial net (32-64-1024-10, dropout 0.5)',
    input: [1, 28, 28],
    numClasses: 10,
    build: mnistTf,
  },
};

export function getModelSpec(name: string): ModelSpec {
  const spec = MODELS[name];
  if (!spec) throw new UserError(`unknown model '${name}' (valid: ${Object.keys(MODELS).join(', ')})`);
  return spec;
}
