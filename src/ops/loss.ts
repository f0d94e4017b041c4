// Softmax + cross-entropy, fused: the mean over the batch of -sum_j t_j log softmax(z)_j with
// t = (1 - eps) * onehot(label) + eps / C (label smoothing; eps = 0 is plain cross-entropy).
// Returns the scalar mean loss and, separately, the per-example losses and probabilities,
// which evaluation uses for top-k without another softmax.
import { Tensor } from '../tensor.js';
import { record } from '../autograd/tape.js';
import { ShapeError, fmtShape } from '../util/errors.js';
import { empty, expectRank } from './util.js';

export interface XentResult {
  /** Scalar [1]: mean loss. The only output that carries a gradient. */
  loss: Tensor;
  /** [N] per-example loss. */
  perExample: Tensor;
  /** [N, C] softmax probabilities. */
  probs: Tensor;
}

export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, labelSmoothing = 0): XentResult {
  expectRank('softmaxCrossEntropy', 'logits', logits, 2);
  const [N, C] = logits.shape;
  if (labels.dtype !== 'int32' || labels.rank !== 1 || labels.shape[0] !== N) {
    throw new ShapeError('softmaxCrossEntropy', `labels must be int32 [${N}] to match logits ${fmtShape(logits.shape)}, got ${labels.dtype} ${fmtShape(labels.shape)}`);
  }
  if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new ShapeError('softmaxCrossEntropy', `label smoothing must be in [0, 1), got ${labelSmoothing}`);
  const be = logits.backend;
  const probs = empty(be, [N, C]);
  const perExample = empty(be, [N]);
  be.softmaxXentFwd(N, C, labelSmoothing, logits.buf, labels.buf, probs.buf, perExample.buf);
  // Mean over the batch as a [1, N] x [N, 1] product with a ones vector.
  const ones = Tensor.filled(be, [N], 1);
  const loss = empty(be, [1]);
  be.gemm({ transA: false, transB: false, m: 1, n: 1, k: N, alpha: 1 / N, beta: 0, lda: N, ldb: 1, ldc: 1 }, ones.buf, perExample.buf, loss.buf);
  ones.dispose();
  // The node keeps its own views of probs and labels, so the caller may dispose its handles.
  const savedProbs = probs.reshape(probs.shape);
  const savedLabels = labels.reshape(labels.shape);
  record(loss, 'softmaxCrossEntropy', [logits], (gy) => {
    if (typeof gy !== 'number') throw new Error('softmaxCrossEntropy: the loss must be the root of backward() (its gradient is a number)');
    const dl = empty(be, [N, C]);
    be.softmaxXentBwd(N, C, labelSmoothing, gy / N, savedProbs.buf, savedLabels.buf, dl.buf);
    return [dl];
  }, { saved: [savedProbs, savedLabels], scalarSeed: true });
  return { loss, perExample, probs };
}
