// The MNIST-class models. All take [N, 1, 28, 28] and give [N, 10] logits.
//
// lenet5      LeCun et al. 1998 layer sizes (6-16-120-84-10), modernised as most frameworks'
//             tutorials do: ReLU instead of scaled tanh, max-pool instead of trainable
//             subsampling, a padded first conv (28x28 in, as the original's 32x32 input), and a
//             full C3 connection table.
// lenet-caffe The Caffe/Caffe2 MNIST tutorial net (seed 003): conv5-20, pool2, conv5-50, pool2,
//             fc500, ReLU, fc10. As in Caffe, no nonlinearity after the convolutions.
// mnist-tf    The TensorFlow "Deep MNIST" tutorial net: conv5-32 (same), pool2, conv5-64 (same),
//             pool2, fc1024, ReLU, dropout 0.5, fc10.
import type { Backend } from '../backend/backend.js';
import { Rng } from '../util/rng.js';
import { Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';

export function lenet5(be: Backend, seed: number): Sequential {
  const rng = new Rng(seed, 'init');
  return new Sequential([
    new Conv2d(be, rng, 1, 6, 5, { padding: 2 }),
    new ReLU(),
    new MaxPool2d({ kernel: 2 }),
    new Conv2d(be, rng, 6, 16, 5),
    new ReLU(),
    new MaxPool2d({ kernel: 2 }),
    new Flatten(),
    new Linear(be, rng, 16 * 5 * 5, 120, 'he'),
    new ReLU(),
    new Linear(be, rng, 120, 84, 'he'),
    new ReLU(),
    new Linear(be, rng, 84, 10, 'glorot'),
  ]);
}

export function lenetCaffe(be: Backend, seed: number): Sequential {
  const rng = new Rng(seed, 'init');
  return new Sequential([
    new Conv2d(be, rng, 1, 20, 5),
    new MaxPool2d({ kernel: 2 }),
    new Conv2d(be, rng, 20, 50, 5),
    new MaxPool2d({ kernel: 2 }),
    new Flatten(),
    new Linear(be, rng, 50 * 4 * 4, 500, 'he'),
    new ReLU(),
    new Linear(be, rng, 500, 10, 'glorot'),
  ]);
}

export function mnistTf(be: Backend, seed: number): Sequential {
  const rng = new Rng(seed, 'init');
  return new Sequential([
    new Conv2d(be, rng, 1, 32, 5, { padding: 2 }),
    new ReLU(),
    new MaxPool2d({ kernel: 2 }),
    new Conv2d(be, rng, 32, 64, 5, { padding: 2 }),
    new ReLU(),
    new MaxPool2d({ kernel: 2 }),
    new Flatten(),
    new Linear(be, rng, 7 * 7 * 64, 1024, 'he'),
    new ReLU(),
    new Dropout(0.5, seed),
    new Linear(be, rng, 1024, 10, 'glorot'),
  ]);
}
