// A scalar "head" that turns any op output y into a loss the tape can backpropagate from.
//
// backward() starts only at the scalar loss of softmaxCrossEntropy (its root gradient is a
// number; every other op's backward expects a tensor), and there is no sum op. So the head
// is built from two ops whose own gradients are checked separately:
//
//   L     = <y, r>                      linear(reshape(y, [1, n]), W = [r; 0], no bias) gives
//                                       logits [1, 2] = [L, 0]
//   loss  = xent(logits, label 0)       = -log(e^L / (e^L + 1)) = softplus(-L)
//
// so dloss/dy = -sigmoid(-L) * r: a fixed random projection r of the output gradient, times
// a smooth scalar. The float64 mirror is projectionLossRef. r is drawn with variance 1/n so
// that L stays O(1) and sigmoid(-L) is well away from 0 and 1 (no float32 cancellation in
// probs - onehot). tfjs tests build the same function with tf.softplus(-sum(y * r)).
import type { Backend } from '../../src/backend/backend.js';
import { Tensor } from '../../src/tensor.js';
import { linear, reshape, softmaxCrossEntropy } from '../../src/ops/index.js';
import { Rng } from '../../src/util/rng.js';

/** A projection vector with variance 1/n (float32 values, so both sides see the same r). */
export function projection(n: number, seed: number): Float32Array {
  const rng = new Rng(seed, 'projection');
  const r = new Float32Array(n);
  const s = 1 / Math.sqrt(n);
  for (let i = 0; i < n; i++) r[i] = rng.normal() * s;
  return r;
}

/** softplus(-<y, r>) through linear + softmaxCrossEntropy; call inside tidy(). */
export function projectionLoss(be: Backend, y: Tensor, r: Float32Array): Tensor {
  const n = y.size;
  const w = new Float32Array(2 * n);
  w.set(r, 0); // row 0 = r, row 1 = 0
  const W = Tensor.fromArray(be, [2, n], w);
  const labels = Tensor.fromArray(be, [1], new Int32Array([0]));
  const logits = linear(reshape(y, [1, n]), W, null);
  return softmaxCrossEntropy(logits, labels).loss;
}

/** float64 mirror of projectionLoss. */
export function projectionLossRef(y: ArrayLike<number>, r: ArrayLike<number>): number {
  let L = 0;
  for (let i = 0; i < y.length; i++) L += y[i] * r[i];
  // softplus(-L) = log(1 + e^-L), computed stably
  return Math.max(-L, 0) + Math.log1p(Math.exp(-Math.abs(L)));
}
