// Normalisation parity with TensorFlow.js (STYLE rules 3 and 5, first half): forward outputs
// and gradients of batch norm (training and evaluation), LRN and global average pooling,
// ours (every available backend) against tfjs's pure-JS 'cpu' backend from identical float32
// inputs.
//
// The tfjs formulations:
//   - batch norm, training: m = tf.moments(x, [0, 1, 2]) (NHWC: per channel over N, H, W; the
//     biased variance), then tf.batchNorm(x, m.mean, m.variance, beta, gamma, eps). tf.grads
//     differentiates through tf.moments too, so its gradients include the batch statistics'
//     dependence on x, as ours do. The running-statistic update is checked against the same
//     moments: running = 0.9 running + 0.1 batch, with variance * M / (M - 1) (PyTorch).
//   - batch norm, evaluation: tf.batchNorm with the running statistics as constants.
//   - LRN: tf.localResponseNormalization(x, depthRadius, bias, alpha, beta) on NHWC, which is
//     TF's definition (sum of squares over channels c-r..c+r clipped to [0, C)), the same as
//     ours; its gradient is tfjs's LRNGrad kernel.
//   - global average pooling: tf.mean(x, [1, 2]) on NHWC, giving [N, C] like ours.
// Both sides differentiate softplus(-<y, r>) with a fixed random projection r (ours through
// test/helpers/scalar_head.ts, tfjs with tf.softplus/tf.sum and tf.grads).
//
// Tolerances |ours - tfjs| <= atol + rtol * |tfjs|: tfjs works in float32 throughout (its
// moments are float32 sums of up to 150 values, its LRN uses Math.pow on float32 data), while
// ours sums in double and rounds once, so the difference is tfjs's own float32 rounding: a
// few ulp of the largest intermediate. Observed (IMAGERATE_TEST_VERBOSE=1): forward <= 6e-7
// on outputs up to ~4, gradients <= 1.2e-7 on gradients up to ~0.6; each tolerance is 5-10x.
import { describe, it } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import type { Backend } from '../../src/backend/backend.js';
import { Tensor } from '../../src/tensor.js';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { tidy } from '../../src/autograd/scope.js';
import * as ops from '../../src/ops/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { Tol, expectClose } from '../helpers/assert_close.js';
import { randn } from '../helpers/finite_diff.js';
import { projection, projectionLoss } from '../helpers/scalar_head.js';
import { nchwToNhwc, nhwcToNchw, tfCpu } from '../helpers/tfjs.js';

const TOL = {
  forward: { atol: 1e-6, rtol: 1e-6 },
  grad: { atol: 5e-7, rtol: 5e-6 },
  // Running statistics: one float32 convex combination on each side.
  running: { atol: 1e-6, rtol: 1e-6 },
} satisfies Record<string, Tol>;

type Tf = typeof TF;
const VERBOSE = !!process.env.IMAGERATE_TEST_VERBOSE;

interface Layout { tfShape: number[]; toTf(a: ArrayLike<number>): Float32Array; fromTf(a: ArrayLike<number>): Float32Array }
const plain = (s: number[]): Layout => ({ tfShape: s, toTf: (a) => Float32Array.from(a), fromTf: (a) => Float32Array.from(a) });
const nchw = (s: number[]): Layout => ({ tfShape: [s[0], s[2], s[3], s[1]], toTf: (a) => nchwToNhwc(a, s), fromTf: (a) => nhwcToNchw(a, s) });

interface PInput { name: string; values: Float32Array; layout: Layout; shape: number[] }
const pin = (name: string, shape: number[], values: Float32Array, layout: (s: number[]) => Layout = plain): PInput =>
  ({ name, shape, values, layout: layout(shape) });

interface ParityCase {
  inputs: PInput[];
  ours(ts: Tensor[]): Tensor;
  theirs(tf: Tf, xs: TF.Tensor[]): TF.Tensor;
  outShape: number[];
  outLayout: (s: number[]) => Layout;
}

async function check(be: Backend, c: ParityCase, seed = 5): Promise<void> {
  const tf = await tfCpu();
  const r = projection(c.outShape.reduce((a, b) => a * b, 1), seed);
  const outL = c.outLayout(c.outShape);

  const ts = c.inputs.map((i) => {
    const t = Tensor.fromArray(be, i.shape, i.values);
    t.requiresGrad = true;
    return t;
  });
  const { y, grads } = tidy(() => {
    const y = c.ours(ts);
    backward(projectionLoss(be, y, r), 1);
    return { y, grads: ts.map((t) => t.grad!) };
  });
  const ourY = await y.data();
  const ourG = await Promise.all(grads.map((g) => g.data()));
  y.dispose();
  for (const t of ts) t.dispose();

  const xs = c.inputs.map((i) => tf.tensor(i.layout.toTf(i.values), i.layout.tfShape));
  const rTf = tf.tensor(outL.toTf(r), outL.tfShape);
  const f = (...a: TF.Tensor[]): TF.Scalar => tf.softplus(tf.neg(tf.sum(tf.mul(c.theirs(tf, a), rTf)))) as TF.Scalar;
  const tfY = tf.tidy(() => c.theirs(tf, xs));
  const tfG = tf.grads(f)(xs);
  const theirY = outL.fromTf(await tfY.data());
  const theirG = await Promise.all(tfG.map(async (g, i) => c.inputs[i].layout.fromTf(await g.data())));
  tf.dispose([...xs, rTf, tfY, ...tfG]);

  const d = expectClose(ourY, theirY, TOL.forward, 'forward vs tfjs');
  if (VERBOSE) console.log(`  forward max|diff| ${d.maxAbs.toExponential(2)} (max|tfjs| ${d.maxRef.toExponential(2)})`);
  c.inputs.forEach((inp, i) => {
    const d = expectClose(ourG[i], theirG[i], TOL.grad, `d/d${inp.name} vs tfjs`);
    if (VERBOSE) console.log(`  d/d${inp.name} max|diff| ${d.maxAbs.toExponential(2)} (max|tfjs| ${d.maxRef.toExponential(2)})`);
  });
}

// ---------------------------------------------------------------- batch norm
const EPS = 1e-5;
interface BnShape { name: string; n: number; c: number; h: number; w: number }
const BN_SHAPES: BnShape[] = [
  { name: '[4, 5, 6, 5]', n: 4, c: 5, h: 6, w: 5 },
  { name: '[3, 7, 1, 1] (statistics over the batch only)', n: 3, c: 7, h: 1, w: 1 },
  { name: '[1, 3, 7, 7] (statistics over one image)', n: 1, c: 3, h: 7, w: 7 },
];

function bnInputs(s: BnShape): { x: Float32Array; gamma: Float32Array; beta: Float32Array; rm: Float32Array; rv: Float32Array } {
  const x = randn(s.n * s.c * s.h * s.w, 1);
  const hw = s.h * s.w;
  for (let i = 0; i < x.length; i++) x[i] = x[i] * 1.5 + (Math.floor(i / hw) % s.c) * 0.4 - 1; // per-channel means
  return {
    x,
    gamma: randn(s.c, 2, 0.3).map((v) => 1 + v),
    beta: randn(s.c, 3, 0.3),
    rm: randn(s.c, 4, 0.3),
    rv: Float32Array.from(randn(s.c, 5), (v) => 0.5 + Math.abs(v)),
  };
}

function bnCase(be: Backend, s: BnShape, training: boolean): ParityCase {
  const v = bnInputs(s);
  const shape = [s.n, s.c, s.h, s.w];
  return {
    inputs: [pin('x', shape, v.x, nchw), pin('gamma', [s.c], v.gamma), pin('beta', [s.c], v.beta)],
    ours: ([x, g, b]) => ops.batchNorm2d(x, g, b, Tensor.fromArray(be, [s.c], v.rm), Tensor.fromArray(be, [s.c], v.rv), { training, eps: EPS }),
    theirs: (tf, [x, g, b]) => {
      if (!training) return tf.batchNorm(x as TF.Tensor4D, tf.tensor1d(v.rm), tf.tensor1d(v.rv), b as TF.Tensor1D, g as TF.Tensor1D, EPS);
      const m = tf.moments(x, [0, 1, 2]);
      return tf.batchNorm(x as TF.Tensor4D, m.mean, m.variance, b as TF.Tensor1D, g as TF.Tensor1D, EPS);
    },
    outShape: shape,
    outLayout: nchw,
  };
}

// ---------------------------------------------------------------- LRN
const LRNS: Array<{ name: string; p: ops.LrnOptions; std: number }> = [
  { name: 'AlexNet: r 2, bias 2, alpha 1e-4, beta 0.75', p: { radius: 2, bias: 2, alpha: 1e-4, beta: 0.75 }, std: 10 },
  { name: 'TF CIFAR-10: r 4, bias 1, alpha 0.001/9, beta 0.75', p: { radius: 4, bias: 1, alpha: 0.001 / 9, beta: 0.75 }, std: 10 },
  { name: 'r 1, bias 1, alpha 0.3, beta 0.5 (strong normalisation)', p: { radius: 1, bias: 1, alpha: 0.3, beta: 0.5 }, std: 1 },
  { name: 'r 5 > C/2, bias 0.5, alpha 0.2, beta 0.6', p: { radius: 5, bias: 0.5, alpha: 0.2, beta: 0.6 }, std: 1 },
];

forEachBackend((be) => {
  describe('batch norm vs tf.moments + tf.batchNorm', () => {
    for (const s of BN_SHAPES) {
      it(`training ${s.name}`, () => check(be, bnCase(be, s, true)));
      it(`evaluation ${s.name}`, () => check(be, bnCase(be, s, false)));
    }
    it('running statistics after one training step match tf.moments', async () => {
      const tf = await tfCpu();
      const s = BN_SHAPES[0], shape = [s.n, s.c, s.h, s.w], M = s.n * s.h * s.w;
      const v = bnInputs(s);
      const [rm, rv] = [Tensor.fromArray(be, [s.c], v.rm), Tensor.fromArray(be, [s.c], v.rv)];
      noGrad(() => tidy(() => {
        ops.batchNorm2d(Tensor.fromArray(be, shape, v.x), Tensor.fromArray(be, [s.c], v.gamma), Tensor.fromArray(be, [s.c], v.beta),
          rm, rv, { training: true, eps: EPS, momentum: 0.1 });
      }));
      const [ourM, ourV] = [await rm.data(), await rv.data()];
      rm.dispose();
      rv.dispose();
      const m = tf.moments(tf.tensor4d(nchwToNhwc(v.x, shape), [s.n, s.h, s.w, s.c]), [0, 1, 2]);
      const [mean, variance] = [await m.mean.data(), await m.variance.data()];
      tf.dispose([m.mean, m.variance]);
      expectClose(ourM, Array.from(mean, (b, c) => 0.9 * v.rm[c] + 0.1 * b), TOL.running, 'running_mean');
      expectClose(ourV, Array.from(variance, (b, c) => 0.9 * v.rv[c] + 0.1 * b * M / (M - 1)), TOL.running, 'running_var (unbiased)');
    });
  });

  describe('lrn vs tf.localResponseNormalization', () => {
    for (const L of LRNS) {
      it(`[2, 9, 5, 3], ${L.name}`, () => check(be, {
        inputs: [pin('x', [2, 9, 5, 3], randn(270, 6, L.std), nchw)],
        ours: ([x]) => ops.lrn(x, L.p),
        theirs: (tf, [x]) => tf.localResponseNormalization(x as TF.Tensor4D, L.p.radius, L.p.bias, L.p.alpha, L.p.beta),
        outShape: [2, 9, 5, 3],
        outLayout: nchw,
      }));
    }
  });

  describe('globalAvgPool2d vs tf.mean', () => {
    it('[3, 4, 7, 5] -> [3, 4]', () => check(be, {
      inputs: [pin('x', [3, 4, 7, 5], randn(420, 7), nchw)],
      ours: ([x]) => ops.globalAvgPool2d(x),
      theirs: (tf, [x]) => tf.mean(x, [1, 2]),
      outShape: [3, 4],
      outLayout: plain,
    }));
  });
});
