// Op parity with TensorFlow.js (STYLE rules 3 and 5, first half): forward outputs and
// gradients of conv2d, max/avg pooling, linear, matmul, relu and softmax cross-entropy,
// ours (every available backend) against tfjs's pure-JS 'cpu' backend, from identical
// float32 inputs and weights.
//
// Layouts: tfjs is NHWC with HWIO filters; inputs are converted explicitly with the index
// loops of test/helpers/tfjs.ts, and tfjs's gradients are mapped back with the inverse loops.
// Padding is passed to tfjs as explicit [[0,0],[ph,ph],[pw,pw],[0,0]] (conv) or a number
// (pool), which both frameworks apply symmetrically with floor-mode output sizes.
//
// Gradients: both sides differentiate the same scalar, softplus(-<y, r>) with a fixed random
// projection r (ours through test/helpers/scalar_head.ts, tfjs with tf.softplus/tf.sum and
// tf.grads); softmax cross-entropy is differentiated directly.
//
// Special cases, explained where they occur:
//   - tfjs has no gradient for dilated conv2d. A conv with dilation d equals a conv with the
//     kernel "dilated" by inserting d-1 zeros between taps, so tfjs gets that kernel, and the
//     gradient of each real tap is read back from its position in the dilated kernel.
//   - tf.avgPool excludes padding from its divisor in the forward pass but not in its
//     gradient (a tfjs bug, see "pooling" below), so padded average pooling is judged
//     against an explicit depthwise-sum / count formulation in tfjs, in both modes.
//   - Max-pool inputs are distinct values 0.02 apart and ReLU inputs stay 0.05 from 0, so the
//     two frameworks cannot pick different elements on a tie or a kink.
//
// Tolerances |ours - tfjs| <= atol + rtol * |tfjs|: both sides are float32 with different
// summation orders (our im2col/GEMM blocking vs tfjs's direct loops), so each element may
// differ by a few float32 roundings of its largest partial sums: observed max |diff| is a few
// 1e-7 on O(1) values. Each tolerance below is ~3-10x the largest error observed
// (IMAGERATE_TEST_VERBOSE=1 prints them).
import { describe, it } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import type { Backend } from '../../src/backend/backend.js';
import { Tensor } from '../../src/tensor.js';
import { backward } from '../../src/autograd/tape.js';
import { tidy } from '../../src/autograd/scope.js';
import * as ops from '../../src/ops/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { Tol, expectClose } from '../helpers/assert_close.js';
import { distinctShuffled, randLabels, randn, randnAwayFromZero } from '../helpers/finite_diff.js';
import { projection, projectionLoss } from '../helpers/scalar_head.js';
import { hwioToOihw, nchwToNhwc, nhwcToNchw, oihwToHwio, oneHot, tfCpu } from '../helpers/tfjs.js';

const TOL = {
  // Sums of at most ~150 products of O(1) values; outputs up to ~5.
  forward: { atol: 2e-6, rtol: 1e-5 },
  // Gradients are O(0.01..1); dW sums over N*P*Q (up to ~200) products.
  grad: { atol: 1e-6, rtol: 1e-5 },
  // Pointwise (relu) and pooling move or average values without long sums.
  pointwise: { atol: 2e-7, rtol: 1e-6 },
  // Softmax cross-entropy: exp/log in float32 on both sides; tfjs computes log-softmax via
  // logSumExp and its gradient as exp(logp) - t, ours as p - t (observed <= 1e-8).
  xent: { atol: 1e-7, rtol: 1e-6 },
} satisfies Record<string, Tol>;

type Tf = typeof TF;

// IMAGERATE_TEST_VERBOSE=1 prints the observed errors (how the tolerances were chosen).
const VERBOSE = !!process.env.IMAGERATE_TEST_VERBOSE;

/** How an input or output of ours maps to tfjs's layout and back. */
interface Layout {
  tfShape: number[];
  toTf(a: ArrayLike<number>): Float32Array;
  fromTf(a: ArrayLike<number>): Float32Array;
}
const plain = (shape: number[]): Layout => ({ tfShape: shape, toTf: (a) => Float32Array.from(a), fromTf: (a) => Float32Array.from(a) });
const nchw = (s: number[]): Layout => ({ tfShape: [s[0], s[2], s[3], s[1]], toTf: (a) => nchwToNhwc(a, s), fromTf: (a) => nhwcToNchw(a, s) });
const oihw = (s: number[]): Layout => ({ tfShape: [s[2], s[3], s[1], s[0]], toTf: (a) => oihwToHwio(a, s), fromTf: (a) => hwioToOihw(a, s) });

/** OIHW weight -> HWIO kernel with (d-1) zeros between taps; fromTf reads the real taps back. */
function oihwDilated([K, C, R, S]: number[], dh: number, dw: number): Layout {
  const RD = (R - 1) * dh + 1, SD = (S - 1) * dw + 1;
  const dilated = [K, C, RD, SD];
  const tap = (k: number, c: number, r: number, s: number) => ((k * C + c) * RD + r * dh) * SD + s * dw;
  return {
    tfShape: [RD, SD, C, K],
    toTf(a) {
      const big = new Float32Array(K * C * RD * SD);
      for (let k = 0; k < K; k++) for (let c = 0; c < C; c++) for (let r = 0; r < R; r++) for (let s = 0; s < S; s++)
        big[tap(k, c, r, s)] = a[((k * C + c) * R + r) * S + s];
      return oihwToHwio(big, dilated);
    },
    fromTf(a) {
      const big = hwioToOihw(a, dilated);
      const out = new Float32Array(K * C * R * S);
      for (let k = 0; k < K; k++) for (let c = 0; c < C; c++) for (let r = 0; r < R; r++) for (let s = 0; s < S; s++)
        out[((k * C + c) * R + r) * S + s] = big[tap(k, c, r, s)];
      return out;
    },
  };
}

interface PInput { name: string; shape: number[]; values: Float32Array; layout: Layout }
const pin = (name: string, shape: number[], values: Float32Array, layout: (s: number[]) => Layout = plain): PInput =>
  ({ name, shape, values, layout: layout(shape) });

interface ParityCase {
  /** All differentiable, in our layout. */
  inputs: PInput[];
  ours(ts: Tensor[]): Tensor;
  /** The same op in tfjs, on inputs in tfjs's layout; returns its output in tfjs's layout. */
  theirs(tf: Tf, xs: TF.Tensor[]): TF.Tensor;
  /** Our output shape and how tfjs's output maps onto it. */
  outShape: number[];
  outLayout: (s: number[]) => Layout;
  /** ours()/theirs() already return the scalar loss (no projection head). */
  scalar?: boolean;
  fwd: Tol;
  grad: Tol;
}

async function check(be: Backend, c: ParityCase, seed = 5): Promise<void> {
  const tf = await tfCpu();
  const n = c.outShape.reduce((a, b) => a * b, 1);
  const r = projection(n, seed);
  const outL = c.outLayout(c.outShape);

  // Ours.
  const ts = c.inputs.map((i) => {
    const t = Tensor.fromArray(be, i.shape, i.values);
    t.requiresGrad = true;
    return t;
  });
  const { y, grads } = tidy(() => {
    const y = c.ours(ts);
    backward(c.scalar ? y : projectionLoss(be, y, r), 1);
    return { y, grads: ts.map((t) => t.grad!) };
  });
  const ourY = await y.data();
  const ourG = await Promise.all(grads.map((g) => g.data()));
  y.dispose();
  for (const t of ts) t.dispose();

  // tfjs.
  const xs = c.inputs.map((i) => tf.tensor(i.layout.toTf(i.values), i.layout.tfShape));
  const rTf = tf.tensor(outL.toTf(r), outL.tfShape);
  const f = (...a: TF.Tensor[]): TF.Scalar =>
    (c.scalar ? c.theirs(tf, a) : tf.softplus(tf.neg(tf.sum(tf.mul(c.theirs(tf, a), rTf))))) as TF.Scalar;
  const tfY = tf.tidy(() => c.theirs(tf, xs));
  const tfG = tf.grads(f)(xs);
  const theirY = outL.fromTf(await tfY.data());
  const theirG = await Promise.all(tfG.map(async (g, i) => c.inputs[i].layout.fromTf(await g.data())));
  tf.dispose([...xs, rTf, tfY, ...tfG]);

  const d = expectClose(ourY, theirY, c.fwd, 'forward vs tfjs');
  if (VERBOSE) console.log(`  forward max|diff| ${d.maxAbs.toExponential(2)} (max|tfjs| ${d.maxRef.toExponential(2)})`);
  c.inputs.forEach((inp, i) => {
    const d = expectClose(ourG[i], theirG[i], c.grad, `d/d${inp.name} vs tfjs`);
    if (VERBOSE) console.log(`  d/d${inp.name} max|diff| ${d.maxAbs.toExponential(2)} norm ${d.normErr.toExponential(2)} (max|tfjs| ${d.maxRef.toExponential(2)})`);
  });
}

// ---------------------------------------------------------------- conv2d
interface ConvCase {
  name: string; n: number; c: number; h: number; w: number; k: number; r: number; s: number;
  stride?: [number, number]; pad?: [number, number]; dil?: [number, number]; bias: boolean;
}
const CONVS: ConvCase[] = [
  { name: '3x3 s1 p0 + bias', n: 2, c: 3, h: 7, w: 7, k: 4, r: 3, s: 3, bias: true },
  { name: '3x3 s2 p1 + bias', n: 2, c: 3, h: 7, w: 7, k: 4, r: 3, s: 3, stride: [2, 2], pad: [1, 1], bias: true },
  { name: '5x5 s1 p2 (same), no bias', n: 2, c: 3, h: 9, w: 9, k: 5, r: 5, s: 5, pad: [2, 2], bias: false },
  { name: '7x7 s2 p3 (ResNet stem shape) on 17x17', n: 1, c: 3, h: 17, w: 17, k: 4, r: 7, s: 7, stride: [2, 2], pad: [3, 3], bias: true },
  { name: '3x2 stride (2,1) pad (1,0) on 7x5', n: 2, c: 3, h: 7, w: 5, k: 3, r: 3, s: 2, stride: [2, 1], pad: [1, 0], bias: true },
  { name: '1x1 s2', n: 2, c: 5, h: 7, w: 7, k: 3, r: 1, s: 1, stride: [2, 2], bias: true },
  { name: '3x3 dilation 2 p2 (tfjs: zero-dilated kernel)', n: 2, c: 3, h: 9, w: 9, k: 3, r: 3, s: 3, pad: [2, 2], dil: [2, 2], bias: true },
];

function convCase(cc: ConvCase): ParityCase {
  const [sh, sw] = cc.stride ?? [1, 1];
  const [ph, pw] = cc.pad ?? [0, 0];
  const [dh, dw] = cc.dil ?? [1, 1];
  const p = Math.floor((cc.h + 2 * ph - dh * (cc.r - 1) - 1) / sh) + 1;
  const q = Math.floor((cc.w + 2 * pw - dw * (cc.s - 1) - 1) / sw) + 1;
  const inputs = [
    pin('x', [cc.n, cc.c, cc.h, cc.w], randn(cc.n * cc.c * cc.h * cc.w, 1), nchw),
    pin('w', [cc.k, cc.c, cc.r, cc.s], randn(cc.k * cc.c * cc.r * cc.s, 2, 1 / Math.sqrt(cc.c * cc.r * cc.s)),
      dh * dw > 1 ? (s) => oihwDilated(s, dh, dw) : oihw),
  ];
  if (cc.bias) inputs.push(pin('b', [cc.k], randn(cc.k, 3, 0.1)));
  return {
    inputs,
    ours: ([x, w, b]) => ops.conv2d(x, w, b ?? null, { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw] }),
    theirs: (tf, [x, w, b]) => {
      const y = tf.conv2d(x as TF.Tensor4D, w as TF.Tensor4D, [sh, sw], [[0, 0], [ph, ph], [pw, pw], [0, 0]]);
      return b ? tf.add(y, b) : y; // b [K] broadcasts over NHWC's last axis
    },
    outShape: [cc.n, cc.k, p, q],
    outLayout: nchw,
    fwd: TOL.forward,
    grad: TOL.grad,
  };
}

// ---------------------------------------------------------------- pooling
// tf.avgPool's forward excludes padding from the divisor but its gradient (tfjs-backend-cpu
// AvgPoolGrad, 4.22) always divides by the full window, so with padding tfjs's own gradient
// disagrees with its forward (and with finite differences). Padded average pooling is
// therefore judged against an explicit tfjs formulation whose gradient is correct:
//   windowed sum = depthwiseConv2d(x, ones[k, k, C, 1], stride, explicit padding)
//   divisor      = k*k (countIncludePad) or the same depthwise conv of ones(x) (padding excluded)
// and tf.avgPool itself is used only where there is no padding (and checked forward-only
// against the formulation above).
interface PoolCase {
  name: string; kind: 'max' | 'avg'; kernel: number; stride: number; pad: number; h: number;
  countIncludePad?: boolean; via?: 'tf.avgPool' | 'depthwise';
}
const POOLS: PoolCase[] = [
  { name: 'max 2x2 s2 on 7x7', kind: 'max', kernel: 2, stride: 2, pad: 0, h: 7 },
  { name: 'max 3x3 s2 p1 (overlapping)', kind: 'max', kernel: 3, stride: 2, pad: 1, h: 7 },
  { name: 'avg 2x2 s2 on 8x8 (tf.avgPool)', kind: 'avg', kernel: 2, stride: 2, pad: 0, h: 8, via: 'tf.avgPool' },
  { name: 'avg 3x3 s2 p1, padding excluded (depthwise sum / count)', kind: 'avg', kernel: 3, stride: 2, pad: 1, h: 7, countIncludePad: false, via: 'depthwise' },
  { name: 'avg 3x3 s1 p1, padding excluded (depthwise sum / count)', kind: 'avg', kernel: 3, stride: 1, pad: 1, h: 5, countIncludePad: false, via: 'depthwise' },
  { name: 'avg 3x3 s2 p1, countIncludePad (depthwise sum / 9)', kind: 'avg', kernel: 3, stride: 2, pad: 1, h: 7, countIncludePad: true, via: 'depthwise' },
];

/** Average pooling in tfjs as a depthwise sum over the window divided by the divisor. */
function avgPoolDepthwise(tf: Tf, x: TF.Tensor4D, k: number, stride: number, pad: number, countIncludePad: boolean): TF.Tensor4D {
  const ones = tf.ones([k, k, x.shape[3], 1]) as TF.Tensor4D;
  const padding: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [pad, pad], [pad, pad], [0, 0]];
  const sum = tf.depthwiseConv2d(x, ones, stride, padding);
  const count = countIncludePad ? tf.scalar(k * k) : tf.depthwiseConv2d(tf.onesLike(x), ones, stride, padding);
  return tf.div(sum, count);
}

function poolCase(pc: PoolCase): ParityCase {
  const shape = [2, 3, pc.h, pc.h];
  const n = shape.reduce((a, b) => a * b, 1);
  const out = Math.floor((pc.h + 2 * pc.pad - pc.kernel) / pc.stride) + 1;
  const opts = { kernel: pc.kernel, stride: pc.stride, padding: pc.pad, countIncludePad: pc.countIncludePad ?? false };
  return {
    inputs: [pin('x', shape, pc.kind === 'max' ? distinctShuffled(n, 11) : randn(n, 11), nchw)],
    ours: ([x]) => (pc.kind === 'max' ? ops.maxPool2d(x, opts) : ops.avgPool2d(x, opts)),
    theirs: (tf, [x]) => pc.kind === 'max' ? tf.maxPool(x as TF.Tensor4D, pc.kernel, pc.stride, pc.pad)
      : pc.via === 'depthwise' ? avgPoolDepthwise(tf, x as TF.Tensor4D, pc.kernel, pc.stride, pc.pad, opts.countIncludePad)
      : tf.avgPool(x as TF.Tensor4D, pc.kernel, pc.stride, pc.pad),
    outShape: [2, 3, out, out],
    outLayout: nchw,
    // max pool copies values and routes gradients; avg pool sums <= 9 terms.
    fwd: TOL.pointwise,
    grad: TOL.pointwise,
  };
}

describe('the tfjs side', () => {
  it('tf.avgPool forward (padding excluded) agrees with the depthwise formulation', async () => {
    const tf = await tfCpu();
    const x = tf.tensor4d(randn(2 * 7 * 7 * 3, 12), [2, 7, 7, 3]);
    const [a, b] = [tf.avgPool(x, 3, 2, 1), avgPoolDepthwise(tf, x, 3, 2, 1, false)];
    expectClose(await a.data(), await b.data(), TOL.pointwise, 'tf.avgPool vs depthwise');
    tf.dispose([x, a, b]);
  });
});

forEachBackend((be) => {
  describe('conv2d vs tfjs', () => {
    for (const cc of CONVS) it(cc.name, () => check(be, convCase(cc)));
  });

  describe('pooling vs tfjs', () => {
    for (const pc of POOLS) it(pc.name, () => check(be, poolCase(pc)));
  });

  describe('dense vs tfjs', () => {
    it('linear [8, 50] -> [8, 20] + bias', () => check(be, {
      inputs: [pin('x', [8, 50], randn(400, 1)), pin('w', [20, 50], randn(1000, 2, 0.15)), pin('b', [20], randn(20, 3, 0.1))],
      ours: ([x, w, b]) => ops.linear(x, w, b),
      theirs: (tf, [x, w, b]) => tf.add(tf.matMul(x as TF.Tensor2D, w as TF.Tensor2D, false, true), b),
      outShape: [8, 20],
      outLayout: plain,
      fwd: TOL.forward,
      grad: TOL.grad,
    }));
    it('matmul [5, 17] x [17, 3]', () => check(be, {
      inputs: [pin('a', [5, 17], randn(85, 4)), pin('b', [17, 3], randn(51, 5, 0.25))],
      ours: ([a, b]) => ops.matmul(a, b),
      theirs: (tf, [a, b]) => tf.matMul(a as TF.Tensor2D, b as TF.Tensor2D),
      outShape: [5, 3],
      outLayout: plain,
      fwd: TOL.forward,
      grad: TOL.grad,
    }));
    it('relu [2, 3, 5, 5] (inputs 0.05 away from the kink)', () => check(be, {
      inputs: [pin('x', [2, 3, 5, 5], randnAwayFromZero(150, 6), nchw)],
      ours: ([x]) => ops.relu(x),
      theirs: (tf, [x]) => tf.relu(x),
      outShape: [2, 3, 5, 5],
      outLayout: nchw,
      fwd: TOL.pointwise,
      grad: TOL.pointwise,
    }));
  });

  describe('softmax cross-entropy vs tf.losses.softmaxCrossEntropy', () => {
    for (const eps of [0, 0.1]) {
      it(`logits [8, 10], label smoothing ${eps}`, () => {
        const labels = randLabels(8, 10, 7);
        return check(be, {
          inputs: [pin('logits', [8, 10], randn(80, 8, 2))],
          ours: ([z]) => ops.softmaxCrossEntropy(z, Tensor.fromArray(be, [8], labels), eps).loss,
          // Default reduction SUM_BY_NONZERO_WEIGHTS with no weights = mean over the batch, and
          // smoothing t = (1 - eps) onehot + eps / C, as ours.
          theirs: (tf, [z]) => tf.losses.softmaxCrossEntropy(tf.tensor2d(oneHot(labels, 10), [8, 10]), z, undefined, eps),
          outShape: [1],
          outLayout: plain,
          scalar: true,
          fwd: TOL.xent,
          grad: TOL.xent,
        });
      });
    }
  });
});
