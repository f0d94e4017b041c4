// ReLU and (inverted) dropout.
import { Tensor } from '../tensor.js';
import { record } from '../autograd/tape.js';
import { ShapeError } from '../util/errors.js';
import { empty } from './util.js';
import type { BufferHandle } from '../backend/backend.js';

export function relu(x: Tensor): Tensor {
  const be = x.backend;
  const y = empty(be, x.shape);
  be.reluFwd(x.size, x.buf, y.buf);
  // The gradient uses the output: dx = dy * (y > 0), so x need not be kept.
  return record(y, 'relu', [x], (gy) => {
    const dx = empty(be, x.shape);
    be.reluBwd(x.size, y.buf, (gy as Tensor).buf, dx.buf);
    return [dx];
  });
}

/**
 * Inverted dropout: in training, zeroes each element with probability p and scales the rest
 * by 1/(1-p); the mask comes from a counter-based hash of `seed`, so it is reproducible.
 * `seed` may be a device buffer holding it (one uint32, read when the kernel runs: a training
 * step captured into a CUDA graph, src/train/graph-step.ts).
 */
export function dropout(x: Tensor, p: number, seed: number | BufferHandle): Tensor {
  if (!(p >= 0 && p < 1)) throw new ShapeError('dropout', `probability must be in [0, 1), got ${p}`);
  const be = x.backend;
  if (typeof seed !== 'number' && !be.dropoutFwdDeviceSeed) throw new Error(`dropout: ${be.name} cannot read the seed from a device buffer (CUDA only)`);
  const y = empty(be, x.shape);
  const mask = empty(be, x.shape);
  if (typeof seed === 'number') be.dropoutFwd(x.size, p, seed, x.buf, mask.buf, y.buf);
  else be.dropoutFwdDeviceSeed!(x.size, p, seed, x.buf, mask.buf, y.buf);
  return record(y, 'dropout', [x], (gy) => {
    const dx = empty(be, x.shape);
    be.mul(x.size, (gy as Tensor).buf, mask.buf, dx.buf);
    return [dx];
  }, { saved: [mask] });
}
