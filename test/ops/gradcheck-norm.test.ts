// Gradient check of the normalisation ops (STYLE rule 5, second half): batchNorm2d (training
// and evaluation mode; gradients for x, gamma, beta), lrn and globalAvgPool2d. Our analytic
// gradients (float32 kernels, through the public tape: ops -> backward()) against central
// finite differences of the plain-loop float64 forwards of test/reference/norm_ref.ts, on
// small odd shapes; the forward output is checked against the same reference on the way.
//
// Scalarisation as in gradcheck.test.ts: loss = softplus(-<y, r>) through the head of
// test/helpers/scalar_head.ts, mirrored exactly in float64 by projectionLossRef.
// The functions are smooth (no kinks); the FD step is 1e-6 (test/helpers/finite_diff.ts), and
// batch norm's eps (1e-5) is far below the batch variances here (O(0.1..1)).
//
// The layers of src/nn/norm.ts are checked at the end: names (PyTorch's), initial values,
// train/eval switching and the running-statistic update, against the same references.
//
// Tolerances |ours - fd| <= atol + rtol * |fd| (STYLE rule 4): the kernels sum in double and
// round once, so forward errors are ~1 float32 ulp of O(1) outputs; the gradients pass through
// the head's float32 GEMM row and softmax (~1e-8), then the op's backward (a few ulp of its
// largest term). Observed (IMAGERATE_TEST_VERBOSE=1): forward <= 2.2e-7 on outputs up to
// ~4.4, gradients <= 5e-8 on gradients up to ~0.6. The tolerances below are ~10x that.
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { Tensor } from '../../src/tensor.js';
import { backward } from '../../src/autograd/tape.js';
import { tidy } from '../../src/autograd/scope.js';
import * as ops from '../../src/ops/index.js';
import { BatchNorm2d, GlobalAvgPool2d, LocalResponseNorm } from '../../src/nn/norm.js';
import { forEachBackend } from '../helpers/backends.js';
import { Tol, expectClose } from '../helpers/assert_close.js';
import { centralDiff, randn } from '../helpers/finite_diff.js';
import { projection, projectionLoss, projectionLossRef } from '../helpers/scalar_head.js';
import { LrnParams, batchnorm2dEvalRef, batchnorm2dTrainRef, globalAvgPoolRef, lrnFwdRef } from '../reference/norm_ref.js';

const FWD: Tol = { atol: 2e-6, rtol: 1e-5 };
const GRAD: Tol = { atol: 5e-7, rtol: 1e-5 };

const VERBOSE = !!process.env.IMAGERATE_TEST_VERBOSE;

interface Input { name: string; shape: number[]; values: Float32Array; grad: boolean }
interface Case {
  inputs: Input[];
  ours(ts: Tensor[]): Tensor;
  ref(xs: Float64Array[]): Float64Array;
}
const inp = (name: string, shape: number[], values: Float32Array, grad = true): Input => ({ name, shape, values, grad });

async function check(be: Backend, c: Case, seed = 7): Promise<void> {
  const ts = c.inputs.map((i) => {
    const t = Tensor.fromArray(be, i.shape, i.values);
    t.requiresGrad = i.grad;
    return t;
  });
  const xs = c.inputs.map((i) => Float64Array.from(i.values));
  const yRef = c.ref(xs);
  const r = projection(yRef.length, seed);
  const { y, grads } = tidy(() => {
    const y = c.ours(ts);
    backward(projectionLoss(be, y, r), 1);
    return { y, grads: ts.map((t) => t.grad) };
  });
  try {
    const fd = expectClose(await y.data(), yRef, FWD, 'forward');
    if (VERBOSE) console.log(`  forward max|diff| ${fd.maxAbs.toExponential(2)} (max|ref| ${fd.maxRef.toExponential(2)})`);
    const f = (a: Float64Array[]) => projectionLossRef(c.ref(a), r);
    for (let i = 0; i < c.inputs.length; i++) {
      const g = grads[i];
      if (!c.inputs[i].grad) {
        expect(g, `no gradient for ${c.inputs[i].name}`).toBeNull();
        continue;
      }
      expect(g, `gradient of ${c.inputs[i].name}`).not.toBeNull();
      const d = expectClose(await g!.data(), centralDiff(f, xs, i), GRAD, `d/d${c.inputs[i].name}`);
      if (VERBOSE) console.log(`  d/d${c.inputs[i].name} max|diff| ${d.maxAbs.toExponential(2)} (max|fd| ${d.maxRef.toExponential(2)})`);
    }
  } finally {
    y.dispose();
    for (const t of ts) t.dispose();
  }
}

// ---------------------------------------------------------------- batch norm
interface BnCase { name: string; n: number; c: number; h: number; w: number; training: boolean; grads?: [boolean, boolean, boolean] }
const BNS: BnCase[] = [
  { name: 'training [2, 3, 3, 3]', n: 2, c: 3, h: 3, w: 3, training: true },
  { name: 'training [3, 4, 1, 1] (H*W = 1: statistics over the batch only)', n: 3, c: 4, h: 1, w: 1, training: true },
  { name: 'training [1, 2, 5, 3] (N = 1: statistics over the image only)', n: 1, c: 2, h: 5, w: 3, training: true },
  { name: 'training, only x needs a gradient', n: 2, c: 3, h: 2, w: 3, training: true, grads: [true, false, false] },
  { name: 'training, only gamma and beta need gradients', n: 2, c: 3, h: 2, w: 3, training: true, grads: [false, true, true] },
  { name: 'evaluation [2, 3, 3, 3] (running statistics)', n: 2, c: 3, h: 3, w: 3, training: false },
  { name: 'evaluation, only gamma needs a gradient', n: 2, c: 3, h: 2, w: 2, training: false, grads: [false, true, false] },
];

function bnCase(be: Backend, bc: BnCase): Case {
  const { n, c, h, w } = bc, HW = h * w, eps = 1e-5;
  const rm = randn(c, 30, 0.3), rv = Float32Array.from(randn(c, 31), (v) => 0.5 + Math.abs(v));
  const [gx, gg, gb] = bc.grads ?? [true, true, true];
  return {
    inputs: [
      inp('x', [n, c, h, w], randn(n * c * HW, 32), gx),
      inp('gamma', [c], randn(c, 33, 0.3).map((v) => 1 + v), gg),
      inp('beta', [c], randn(c, 34, 0.3), gb),
    ],
    // Fresh running buffers per call: the training forward updates them in place.
    ours: ([x, gamma, beta]) => ops.batchNorm2d(x, gamma, beta, Tensor.fromArray(be, [c], rm), Tensor.fromArray(be, [c], rv),
      { training: bc.training, eps }),
    ref: ([x, gamma, beta]) => bc.training
      ? batchnorm2dTrainRef(n, c, HW, x, gamma, beta, Math.fround(eps), 0.1, rm, rv).y
      : batchnorm2dEvalRef(n, c, HW, x, gamma, beta, rm, rv, Math.fround(eps)),
  };
}

// ---------------------------------------------------------------- LRN
const LRNS: Array<{ name: string; p: LrnParams; std: number }> = [
  { name: 'r 0, bias 1, alpha 0.5, beta 0.5', p: { radius: 0, bias: 1, alpha: 0.5, beta: 0.5 }, std: 1 },
  { name: 'r 1, bias 1, alpha 0.3, beta 1', p: { radius: 1, bias: 1, alpha: 0.3, beta: 1 }, std: 1 },
  { name: 'r 2, bias 2, alpha 0.1, beta 0.75 (AlexNet form, stronger alpha)', p: { radius: 2, bias: 2, alpha: 0.1, beta: 0.75 }, std: 1.5 },
  { name: 'r 5 > C, bias 0.5, alpha 0.2, beta 0.6 (clipped window, general pow)', p: { radius: 5, bias: 0.5, alpha: 0.2, beta: 0.6 }, std: 1 },
];

forEachBackend((be) => {
  describe('batchNorm2d', () => {
    for (const bc of BNS) it(bc.name, () => check(be, bnCase(be, bc)));
  });

  describe('lrn [2, 7, 3, 3]', () => {
    for (const L of LRNS) {
      it(L.name, () => {
        const p = { radius: L.p.radius, bias: Math.fround(L.p.bias), alpha: Math.fround(L.p.alpha), beta: Math.fround(L.p.beta) };
        return check(be, {
          inputs: [inp('x', [2, 7, 3, 3], randn(126, 40, L.std))],
          ours: ([x]) => ops.lrn(x, L.p),
          ref: ([x]) => lrnFwdRef(2, 7, 9, p, x).y,
        });
      });
    }
  });

  describe('globalAvgPool2d', () => {
    it('[2, 3, 5, 7] -> [2, 3]', () => check(be, {
      inputs: [inp('x', [2, 3, 5, 7], randn(210, 41))],
      ours: ([x]) => ops.globalAvgPool2d(x),
      ref: ([x]) => globalAvgPoolRef(2, 3, 35, x),
    }));
    it('[3, 4, 1, 1] -> [3, 4] (a 1x1 window is a copy)', () => check(be, {
      inputs: [inp('x', [3, 4, 1, 1], randn(12, 42))],
      ours: ([x]) => ops.globalAvgPool2d(x),
      ref: ([x]) => globalAvgPoolRef(3, 4, 1, x),
    }));
  });

  describe('layers (src/nn/norm.ts)', () => {
    it('BatchNorm2d: PyTorch names and initial values, train step updates the buffers, eval uses them', async () => {
      const C = 3, shape = [2, C, 3, 2], HW = 6;
      const bn = new BatchNorm2d(be, C, { momentum: 0.2 });
      try {
        expect(bn.namedParameters().map(([n]) => n)).toEqual(['weight', 'bias']);
        expect(bn.namedBuffers().map(([n]) => n)).toEqual(['running_mean', 'running_var']);
        expect(Array.from(await bn.weight.data())).toEqual([1, 1, 1]);
        expect(Array.from(await bn.bias.data())).toEqual([0, 0, 0]);
        expect(Array.from(await bn.runningMean.data())).toEqual([0, 0, 0]);
        expect(Array.from(await bn.runningVar.data())).toEqual([1, 1, 1]);
        expect(bn.describe()).toBe('BatchNorm2d(3, eps=0.00001, momentum=0.2)');
        const x = randn(2 * C * HW, 50, 2);
        const ref = batchnorm2dTrainRef(2, C, HW, x, [1, 1, 1], [0, 0, 0], Math.fround(1e-5), Math.fround(0.2), [0, 0, 0], [1, 1, 1]);
        const y = tidy(() => bn.forward(Tensor.fromArray(be, shape, x)));
        expectClose(await y.data(), ref.y, FWD, 'train-mode forward');
        y.dispose();
        expectClose(await bn.runningMean.data(), ref.runningMean, FWD, 'running_mean after one step');
        expectClose(await bn.runningVar.data(), ref.runningVar, FWD, 'running_var after one step');
        bn.eval();
        const ye = tidy(() => bn.forward(Tensor.fromArray(be, shape, x)));
        expectClose(await ye.data(), batchnorm2dEvalRef(2, C, HW, x, [1, 1, 1], [0, 0, 0], ref.runningMean, ref.runningVar, 1e-5), FWD, 'eval-mode forward');
        ye.dispose();
        expectClose(await bn.runningMean.data(), ref.runningMean, FWD, 'eval leaves running_mean alone');
      } finally {
        bn.dispose();
      }
      const z = new BatchNorm2d(be, 2, { zeroInitGamma: true });
      expect(Array.from(await z.weight.data())).toEqual([0, 0]);
      expect(z.describe()).toContain('gamma=0');
      z.dispose();
    });

    it('LocalResponseNorm and GlobalAvgPool2d', async () => {
      const p = { radius: 2, bias: 2, alpha: 1e-4, beta: 0.75 };
      const lrnLayer = new LocalResponseNorm(p), gap = new GlobalAvgPool2d();
      expect(lrnLayer.describe()).toBe('LocalResponseNorm(radius=2, bias=2, alpha=0.0001, beta=0.75)');
      expect(gap.describe()).toBe('GlobalAvgPool2d');
      const x = randn(2 * 5 * 4 * 3, 51, 10);
      const [y, g] = tidy(() => {
        const t = Tensor.fromArray(be, [2, 5, 4, 3], x);
        return [lrnLayer.forward(t), gap.forward(t)];
      });
      const pf = { ...p, alpha: Math.fround(p.alpha) };
      expectClose(await y.data(), lrnFwdRef(2, 5, 12, pf, x).y, FWD, 'LocalResponseNorm');
      expect(g.shape).toEqual([2, 5]);
      expectClose(await g.data(), globalAvgPoolRef(2, 5, 12, x), FWD, 'GlobalAvgPool2d');
      y.dispose();
      g.dispose();
    });
  });
});
