// AlexNet, single tower: the ILSVRC-2012 net of Krizhevsky et al. in the "one weird trick"
// form (Krizhevsky 2014, arXiv:1404.5997) that torchvision ships, 61,100,840 parameters at
// 1000 classes:
//
//   conv 11x11/4 pad 2, 64 -> ReLU -> [LRN] -> max-pool 3/2      224 -> 55 -> 27
//   conv 5x5 pad 2, 192    -> ReLU -> [LRN] -> max-pool 3/2       27 -> 27 -> 13
//   conv 3x3 pad 1, 384 -> ReLU -> conv 3x3, 256 -> ReLU -> conv 3x3, 256 -> ReLU -> max-pool 3/2 -> 6
//   dropout 0.5 -> fc 4096 -> ReLU -> dropout 0.5 -> fc 4096 -> ReLU -> fc numClasses
//
// LRN (`lrn: true`): the 2012 paper's response normalisation after the ReLU of conv1 and conv2,
// before pooling, with k = 2, n = 5, alpha = 1e-4, beta = 0.75, i.e. tf.nn.lrn(depth_radius 2,
// bias 2, alpha 1e-4, beta 0.75); the paper, like TF, does not divide alpha by n. (PyTorch's
// LocalResponseNorm does: there the same layer is LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2).)
// It is off by default because torchvision and the one-weird-trick paper drop it: later work
// (Simonyan & Zisserman 2014, section 4.1) found it does not help accuracy, and it costs memory
// traffic. With it, the parameter count is unchanged.
//
// Input: 224x224 by default. torchvision puts an adaptive average pool to 6x6 before the
// classifier; we have no adaptive pool, so instead fc6 is sized to whatever the features give
// (256*6*6 = 9216 at 224, where torchvision's pool is the identity). Initialisation: convs and
// the hidden fc layers He normal (fan_in), the last fc Glorot uniform; torchvision keeps
// PyTorch's defaults (Kaiming-uniform with a = sqrt(5)).
import type { Backend } from '../backend/backend.js';
import { Rng } from '../util/rng.js';
import { Module } from '../nn/module.js';
import { Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import { LocalResponseNorm } from '../nn/norm.js';
import { UserError } from '../util/errors.js';

export interface AlexNetOptions {
  numClasses?: number;
  inputSize?: number;
  /** The 2012 paper's LRN after conv1 and conv2 (default false, as torchvision). */
  lrn?: boolean;
}

export const ALEXNET_LRN = { radius: 2, bias: 2, alpha: 1e-4, beta: 0.75 } as const;

const out = (s: number, k: number, stride: number, pad: number) => Math.floor((s + 2 * pad - k) / stride) + 1;

/** Spatial side of the feature maps before the classifier (6 at 224). */
export function alexnetFeatureSide(inputSize: number): number {
  let s = out(inputSize, 11, 4, 2);
  s = out(s, 3, 2, 0);
  s = out(s, 3, 2, 0); // conv2 keeps the size (5x5 pad 2)
  return out(s, 3, 2, 0); // conv3-5 keep it (3x3 pad 1)
}

export function alexnet(be: Backend, seed: number, opts: AlexNetOptions = {}): Sequential {
  const rng = new Rng(seed, 'init');
  const numClasses = opts.numClasses ?? 1000;
  const side = alexnetFeatureSide(opts.inputSize ?? 224);
  if (!(side >= 1)) throw new UserError(`alexnet: input ${opts.inputSize} is too small (the features need at least 63x63)`);
  const pool = () => new MaxPool2d({ kernel: 3, stride: 2 });
  const lrn = (): Module[] => (opts.lrn ? [new LocalResponseNorm(ALEXNET_LRN)] : []);
  return new Sequential([
    new Conv2d(be, rng, 3, 64, 11, { stride: 4, padding: 2 }), new ReLU(), ...lrn(), pool(),
    new Conv2d(be, rng, 64, 192, 5, { padding: 2 }), new ReLU(), ...lrn(), pool(),
    new Conv2d(be, rng, 192, 384, 3, { padding: 1 }), new ReLU(),
    new Conv2d(be, rng, 384, 256, 3, { padding: 1 }), new ReLU(),
    new Conv2d(be, rng, 256, 256, 3, { padding: 1 }), new ReLU(),
    pool(),
    new Flatten(),
    new Dropout(0.5, seed), // two streams, so the two dropout layers draw different masks
    new Linear(be, rng, 256 * side * side, 4096, 'he'), new ReLU(),
    new Dropout(0.5, seed + 1),
    new Linear(be, rng, 4096, 4096, 'he'), new ReLU(),
    new Linear(be, rng, 4096, numClasses, 'glorot'),
  ]);
}
