// Whole-model parity with TensorFlow.js (STYLE rule 3): lenet5 and lenet-caffe
// (src/models/lenet.ts), forward and backward, from identical weights.
//
// Our model is built with a fixed seed; its parameters are read back (`await p.data()`) and
// the same network is written out in tfjs below with tf.conv2d / tf.maxPool / tf.matMul, not
// tf.layers, so every step of the math is visible. A batch of 8 standard-normal 28x28 images
// with fixed labels goes through both; we compare logits, the mean cross-entropy loss and
// the gradient of every parameter.
//
// Layout: tfjs runs NHWC with HWIO filters. Before the first fully connected layer the tfjs
// activations are transposed back to NCHW and flattened, because our Flatten (and so the
// fc weight's column order) is C-major: fc1.weight[:, c*H*W + h*W + w].
//
// Kinks: with real-valued random inputs and weights, a ReLU input exactly at 0 or a max-pool
// tie between distinct positive values has probability ~0. Windows whose values are all 0
// after a ReLU are ties, but every candidate there has a zero ReLU gradient, so which one
// either framework picks does not change any gradient.
//
// Tolerances (per tensor, STYLE rule 4): normalised error ||ours - tfjs|| / ||tfjs|| and max
// |ours - tfjs| relative to max |tfjs|. Both sides are float32 with different summation
// orders; the longest reductions are conv1's weight gradient (8 * 28 * 28 = 6272 terms) and
// fc1 (400 or 800 inputs), so a few 1e-7 relative per element is expected and
// at most 8e-7 (norm) and 1.2e-6 (max) are observed (IMAGERATE_TEST_VERBOSE=1 prints
// them). Limits: 5e-6 for both, ~4-6x the worst observed.
import { describe, expect, it } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import type { Backend } from '../../src/backend/backend.js';
import { Tensor } from '../../src/tensor.js';
import { backward } from '../../src/autograd/tape.js';
import { tidy } from '../../src/autograd/scope.js';
import { softmaxCrossEntropy } from '../../src/ops/index.js';
import type { Sequential } from '../../src/nn/layers.js';
import { lenet5, lenetCaffe } from '../../src/models/lenet.js';
import { forEachBackend } from '../helpers/backends.js';
import { diff, expectNormClose } from '../helpers/assert_close.js';
import { randLabels, randn } from '../helpers/finite_diff.js';
import { hwioToOihw, nchwToNhwc, oihwToHwio, oneHot, tfCpu } from '../helpers/tfjs.js';

type Tf = typeof TF;
type Params = Record<string, TF.Tensor>;

const VERBOSE = !!process.env.IMAGERATE_TEST_VERBOSE;
const NORM_TOL = 5e-6;
const MAX_TOL = 5e-6; // max |diff| / max |tfjs|
const BATCH = 8;

/**
 * Stride-1 conv2d (NHWC, HWIO, symmetric padding) whose filter gradient is computed by tfjs's
 * forward conv2d instead of its Conv2DBackpropFilter kernel, which is ~10x slower in the
 * pure-JS backend (about 5 s for lenet-caffe's conv2 at batch 8). For stride 1,
 *   dW[r, s, c, k] = sum_{n,p,q} xpad[n, p+r, q+s, c] * dy[n, p, q, k]
 * is itself a convolution: batch c, channels n, of x^T [C, H, W, N] with dy^T [P, Q, N, K]
 * as the filter, giving [C, R, S, K]. The input gradient is tfjs's own conv2dTranspose
 * (Conv2DBackpropInput). The test 'fast conv gradient equals tfjs's native gradient' below
 * checks this construction against tf.grads of plain tf.conv2d.
 */
function conv2dS1(tf: Tf, x: TF.Tensor4D, w: TF.Tensor4D, pad: number): TF.Tensor4D {
  const op = tf.customGrad((...args: (TF.Tensor | TF.GradSaveFunc)[]) => {
    const [xi, wi, save] = args as [TF.Tensor4D, TF.Tensor4D, TF.GradSaveFunc];
    save([xi, wi]);
    return {
      value: tf.conv2d(xi, wi, 1, pad),
      gradFunc: (dy: TF.Tensor4D, [xs, ws]: TF.Tensor[]) => {
        const xT = tf.transpose(xs, [3, 1, 2, 0]) as TF.Tensor4D; // [C, H, W, N]
        const dyT = tf.transpose(dy, [1, 2, 0, 3]) as TF.Tensor4D; // [P, Q, N, K]
        const dw = tf.transpose(tf.conv2d(xT, dyT, 1, pad), [1, 2, 0, 3]); // [C, R, S, K] -> [R, S, C, K]
        const dx = tf.conv2dTranspose(dy, ws as TF.Tensor4D, xs.shape as [number, number, number, number], 1, pad);
        return [dx, dw];
      },
    };
  });
  return op(x, w) as TF.Tensor4D;
}

const conv = (tf: Tf, x: TF.Tensor4D, p: Params, name: string, pad: number): TF.Tensor4D =>
  tf.add(conv2dS1(tf, x, p[`${name}.weight`] as TF.Tensor4D, pad), p[`${name}.bias`]);
const fc = (tf: Tf, x: TF.Tensor2D, p: Params, name: string): TF.Tensor2D =>
  tf.add(tf.matMul(x, p[`${name}.weight`] as TF.Tensor2D, false, true), p[`${name}.bias`]); // W is [out, in]
const pool2 = (tf: Tf, x: TF.Tensor4D): TF.Tensor4D => tf.maxPool(x, 2, 2, 0);
/** NHWC -> NCHW, then [N, C*H*W], matching our Flatten. */
const flattenNchw = (tf: Tf, x: TF.Tensor4D): TF.Tensor2D => tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [x.shape[0], -1]);

/** lenet5: conv5-6 (pad 2), relu, pool2, conv5-16, relu, pool2, fc120, relu, fc84, relu, fc10. */
function lenet5Tf(tf: Tf, x: TF.Tensor4D, p: Params): TF.Tensor2D {
  let h = pool2(tf, tf.relu(conv(tf, x, p, '0', 2)));
  h = pool2(tf, tf.relu(conv(tf, h, p, '3', 0)));
  let f = flattenNchw(tf, h);
  f = tf.relu(fc(tf, f, p, '7'));
  f = tf.relu(fc(tf, f, p, '9'));
  return fc(tf, f, p, '11');
}

/** lenet-caffe: conv5-20, pool2, conv5-50, pool2, fc500, relu, fc10 (no ReLU after the convs). */
function lenetCaffeTf(tf: Tf, x: TF.Tensor4D, p: Params): TF.Tensor2D {
  let h = pool2(tf, conv(tf, x, p, '0', 0));
  h = pool2(tf, conv(tf, h, p, '2', 0));
  const f = tf.relu(fc(tf, flattenNchw(tf, h), p, '5'));
  return fc(tf, f, p, '7');
}

const MODELS = [
  { name: 'lenet5', build: lenet5, tfNet: lenet5Tf, params: 10 },
  { name: 'lenet-caffe', build: lenetCaffe, tfNet: lenetCaffeTf, params: 8 },
];

async function compareModel(be: Backend, build: (be: Backend, seed: number) => Sequential,
                            tfNet: (tf: Tf, x: TF.Tensor4D, p: Params) => TF.Tensor2D, nParams: number): Promise<void> {
  const tf = await tfCpu();
  const xShape = [BATCH, 1, 28, 28];
  const xv = randn(BATCH * 28 * 28, 31);
  const labels = randLabels(BATCH, 10, 32);

  // Ours: forward, mean cross-entropy, backward.
  const model = build(be, 2024);
  const named = model.namedParameters();
  expect(named.length).toBe(nParams);
  const x = Tensor.fromArray(be, xShape, xv);
  const y = Tensor.fromArray(be, [BATCH], labels);
  const out = tidy(() => {
    const logits = model.forward(x);
    const { loss } = softmaxCrossEntropy(logits, y);
    backward(loss, 1);
    return { logits, loss, grads: named.map(([, p]) => p.grad!) };
  });
  const ourLogits = await out.logits.data();
  const ourLoss = (await out.loss.data())[0];
  const ourGrads = await Promise.all(out.grads.map((g) => g.data()));
  const weights = await Promise.all(named.map(([, p]) => p.data()));
  for (const t of [x, y, out.logits, out.loss]) t.dispose();
  model.dispose();

  // tfjs: the same weights in its layouts (conv OIHW -> HWIO; fc [out, in] kept, used as W^T).
  const shapes = named.map(([, p]) => [...p.shape]);
  const toTf = (i: number) => shapes[i].length === 4
    ? tf.tensor4d(oihwToHwio(weights[i], shapes[i]), [shapes[i][2], shapes[i][3], shapes[i][1], shapes[i][0]])
    : tf.tensor(weights[i], shapes[i]);
  const fromTf = (i: number, g: Float32Array) => (shapes[i].length === 4 ? hwioToOihw(g, shapes[i]) : g);
  const pTf = named.map((_, i) => toTf(i));
  const xTf = tf.tensor4d(nchwToNhwc(xv, xShape), [BATCH, 28, 28, 1]);
  const onehot = tf.tensor2d(oneHot(labels, 10), [BATCH, 10]);
  const asParams = (ts: TF.Tensor[]): Params => Object.fromEntries(named.map(([n], i) => [n, ts[i]]));
  const lossFn = (...ps: TF.Tensor[]) => tf.losses.softmaxCrossEntropy(onehot, tfNet(tf, xTf, asParams(ps))) as TF.Scalar;
  const tfLogits = tf.tidy(() => tfNet(tf, xTf, asParams(pTf)));
  const { value: tfLoss, grads: tfGrads } = tf.valueAndGrads(lossFn)(pTf);
  const theirLogits = await tfLogits.data();
  const theirLoss = (await tfLoss.data())[0];
  const theirGrads = await Promise.all(tfGrads.map(async (g, i) => fromTf(i, (await g.data()) as Float32Array)));
  tf.dispose([...pTf, xTf, onehot, tfLogits, tfLoss, ...tfGrads]);

  const report = (what: string, a: ArrayLike<number>, b: ArrayLike<number>) => {
    const d = diff(a, b);
    const rel = d.maxAbs / Math.max(d.maxRef, 1e-30);
    if (VERBOSE) console.log(`  ${what.padEnd(12)} norm err ${d.normErr.toExponential(2)}  max|diff| ${d.maxAbs.toExponential(2)}  max|tfjs| ${d.maxRef.toExponential(2)}`);
    expect(d.normErr, `${what}: ||ours - tfjs|| / ||tfjs||`).toBeLessThanOrEqual(NORM_TOL);
    expect(rel, `${what}: max|ours - tfjs| / max|tfjs| (max |diff| ${d.maxAbs})`).toBeLessThanOrEqual(MAX_TOL);
  };
  report('logits', ourLogits, theirLogits);
  expect(Math.abs(ourLoss - theirLoss), `loss ${ourLoss} vs tfjs ${theirLoss}`).toBeLessThanOrEqual(1e-6 * Math.abs(theirLoss));
  named.forEach(([n], i) => report(`d/d${n}`, ourGrads[i], theirGrads[i]));
}

describe('the tfjs side', () => {
  it("fast conv gradient equals tfjs's native gradient", async () => {
    const tf = await tfCpu();
    for (const pad of [0, 2]) {
      const x = tf.tensor4d(randn(3 * 9 * 9 * 4, 41), [3, 9, 9, 4]);
      const w = tf.tensor4d(randn(5 * 5 * 4 * 6, 42, 0.1), [5, 5, 4, 6]);
      const r = tf.tensor4d(randn(3 * (5 + 2 * pad) ** 2 * 6, 43), [3, 5 + 2 * pad, 5 + 2 * pad, 6]);
      const native = tf.grads((a: TF.Tensor, b: TF.Tensor) => tf.sum(tf.mul(tf.conv2d(a as TF.Tensor4D, b as TF.Tensor4D, 1, pad), r)))([x, w]);
      const fast = tf.grads((a: TF.Tensor, b: TF.Tensor) => tf.sum(tf.mul(conv2dS1(tf, a as TF.Tensor4D, b as TF.Tensor4D, pad), r)))([x, w]);
      for (let i = 0; i < 2; i++) {
        // Same float32 products, summed in a different order.
        expectNormClose(await fast[i].data(), await native[i].data(), 1e-6, `pad ${pad} ${i ? 'dW' : 'dX'}`);
      }
      tf.dispose([x, w, r, ...native, ...fast]);
    }
  });
});

forEachBackend((be) => {
  describe('whole-model parity with tfjs (batch 8, mean cross-entropy)', () => {
    for (const m of MODELS) {
      it(`${m.name}: logits, loss and every parameter gradient`, () => compareModel(be, m.build, m.tfNet, m.params), 30_000);
    }
  });
});
