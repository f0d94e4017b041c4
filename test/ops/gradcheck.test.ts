// Gradient check of every differentiable op (STYLE rule 5, second half): the analytic
// gradients our backend computes (float32 kernels, through the public tape: ops -> backward())
// against central finite differences of a plain-loop float64 reference forward
// (test/reference/*), on small odd shapes. Forward outputs are checked against the same
// reference on the way.
//
// Scalarisation: backward() can only start at softmaxCrossEntropy's scalar loss, so every
// op output y goes through the head of test/helpers/scalar_head.ts:
//   loss = softplus(-<y, r>)   (linear onto [<y,r>, 0], then cross-entropy with label 0)
// with a fixed random projection r; the float64 side computes the same function exactly. The
// head's own ops (linear, softmaxCrossEntropy) are checked here too, so a bug in them shows
// up in their own cases as well as everywhere.
//
// Kinks are kept out of the inputs, not hidden by tolerance: ReLU inputs are at least 0.05
// away from 0, max-pool inputs are distinct values spaced 0.02 apart (no ties), while the FD
// step is 1e-6 (test/helpers/finite_diff.ts).
//
// Tolerances |ours - fd| <= atol + rtol * |fd| (STYLE rule 4). Inputs are O(1), so outputs
// and gradients are O(0.01..1); float32 kernels round each product and sum at ~6e-8
// relative, and the longest reduction here is ~200 terms, so errors of a few 1e-7 absolute
// are expected. The FD side is exact to ~1e-10. Per-op values are in TOL below; they are
// float32 tolerances: a backend that computes in TF32/fp16 must get its own, with the reason.
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { Tensor } from '../../src/tensor.js';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { tidy } from '../../src/autograd/scope.js';
import * as ops from '../../src/ops/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { Tol, expectClose } from '../helpers/assert_close.js';
import { centralDiff, distinctShuffled, randLabels, randn, randnAwayFromZero } from '../helpers/finite_diff.js';
import { projection, projectionLoss, projectionLossRef } from '../helpers/scalar_head.js';
import { conv2dFwdRef, conv2dParams as convRefParams } from '../reference/conv_ref.js';
import { avgpool2dFwdRef, maxpool2dFwdRef, pool2dParams as poolRefParams } from '../reference/pool_ref.js';
import { addRef, linearRef, matmulRef, mulRef, reluRef, scaleRef, softmaxXentRef } from '../reference/ref_ops.js';

// Observed errors (IMAGERATE_TEST_VERBOSE=1): forward <= 5e-7 on outputs up to ~5,
// gradients <= 1.2e-7 on gradients up to ~1. Each tolerance is ~5-10x that.
// Forward: up to 75 float32 products summed per output.
const FWD: Tol = { atol: 1e-6, rtol: 1e-5 };
const TOL = {
  // Pure elementwise/view ops: the gradient is one float32 product (or a copy) of the head's
  // gradient, itself a float32 GEMM row and a softmax difference (observed <= 4e-8).
  pointwise: { atol: 2e-7, rtol: 1e-6 },
  // conv/linear/matmul/pool: sums of up to ~200 float32 products (dW sums over N*P*Q;
  // observed <= 1.2e-7).
  reduction: { atol: 1e-6, rtol: 1e-5 },
  // Cross-entropy straight from the root: (probs - target) / N with exp/log in float32
  // (observed <= 1e-8).
  xent: { atol: 1e-7, rtol: 1e-6 },
} satisfies Record<string, Tol>;

interface Input {
  name: string;
  shape: number[];
  values: Float32Array | Int32Array;
  grad: boolean;
}

interface Case {
  inputs: Input[];
  /** The op on our backend. */
  ours(ts: Tensor[]): Tensor;
  /** The float64 reference forward of the same op. */
  ref(xs: Float64Array[]): Float64Array;
  /** True when ours() already returns the scalar loss (softmaxCrossEntropy): no head. */
  scalar?: boolean;
  grad: Tol;
}

// IMAGERATE_TEST_VERBOSE=1 prints the observed errors (how the tolerances were chosen).
const VERBOSE = !!process.env.IMAGERATE_TEST_VERBOSE;

const inp = (name: string, shape: number[], values: Float32Array | Int32Array, grad = true): Input => ({ name, shape, values, grad });
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

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
    backward(c.scalar ? y : projectionLoss(be, y, r), 1);
    return { y, grads: ts.map((t) => t.grad) };
  });
  try {
    const fd = expectClose(await y.data(), yRef, FWD, 'forward');
    if (VERBOSE) console.log(`  forward max|diff| ${fd.maxAbs.toExponential(2)} (max|ref| ${fd.maxRef.toExponential(2)})`);
    const f = c.scalar ? (a: Float64Array[]) => c.ref(a)[0] : (a: Float64Array[]) => projectionLossRef(c.ref(a), r);
    for (let i = 0; i < c.inputs.length; i++) {
      if (!c.inputs[i].grad) continue;
      const g = grads[i];
      expect(g, `gradient of ${c.inputs[i].name}`).not.toBeNull();
      const d = expectClose(await g!.data(), centralDiff(f, xs, i), c.grad, `d/d${c.inputs[i].name}`);
      if (VERBOSE) console.log(`  d/d${c.inputs[i].name} max|diff| ${d.maxAbs.toExponential(2)} norm ${d.normErr.toExponential(2)} (max|fd| ${d.maxRef.toExponential(2)})`);
    }
  } finally {
    y.dispose();
    for (const t of ts) t.dispose();
  }
}

// ---------------------------------------------------------------- conv2d
interface ConvCase {
  name: string; n: number; c: number; h: number; w: number; k: number; r: number; s: number;
  stride?: number | [number, number]; pad?: number | [number, number]; dil?: number | [number, number]; bias: boolean;
}
const CONVS: ConvCase[] = [
  { name: '3x3 s1 p0 + bias', n: 2, c: 3, h: 7, w: 7, k: 4, r: 3, s: 3, bias: true },
  { name: '3x3 s2 p1 + bias', n: 2, c: 3, h: 7, w: 7, k: 4, r: 3, s: 3, stride: 2, pad: 1, bias: true },
  { name: '5x5 s1 p2 (same), no bias', n: 2, c: 3, h: 5, w: 5, k: 2, r: 5, s: 5, pad: 2, bias: false },
  { name: '3x3 dilation 2 p2', n: 2, c: 3, h: 7, w: 7, k: 3, r: 3, s: 3, pad: 2, dil: 2, bias: true },
  { name: '3x2 stride (2,1) pad (1,0), 7x5 input', n: 2, c: 3, h: 7, w: 5, k: 3, r: 3, s: 2, stride: [2, 1], pad: [1, 0], bias: true },
  { name: '1x1 s2', n: 1, c: 5, h: 7, w: 7, k: 3, r: 1, s: 1, stride: 2, bias: true },
];

function convCase(cc: ConvCase): Case {
  const p = convRefParams(cc);
  const wStd = 1 / Math.sqrt(cc.c * cc.r * cc.s);
  const inputs = [
    inp('x', [cc.n, cc.c, cc.h, cc.w], randn(cc.n * cc.c * cc.h * cc.w, 1)),
    inp('w', [cc.k, cc.c, cc.r, cc.s], randn(cc.k * cc.c * cc.r * cc.s, 2, wStd)),
  ];
  if (cc.bias) inputs.push(inp('b', [cc.k], randn(cc.k, 3, 0.1)));
  return {
    inputs,
    ours: ([x, w, b]) => ops.conv2d(x, w, b ?? null, { stride: cc.stride, padding: cc.pad, dilation: cc.dil }),
    ref: ([x, w, b]) => conv2dFwdRef(p, x, w, b ?? null),
    grad: TOL.reduction,
  };
}

// ---------------------------------------------------------------- pooling
interface PoolCase { name: string; kernel: number; stride: number; pad: number; h: number; countIncludePad?: boolean }
const MAXPOOLS: PoolCase[] = [
  { name: '2x2 s2 on 7x7 (floor drops the last row/column)', kernel: 2, stride: 2, pad: 0, h: 7 },
  { name: '3x3 s2 p1 (overlapping windows)', kernel: 3, stride: 2, pad: 1, h: 7 },
  { name: '3x3 s1 p1', kernel: 3, stride: 1, pad: 1, h: 5 },
];
const AVGPOOLS: PoolCase[] = [
  { name: '2x2 s2 on 7x7', kernel: 2, stride: 2, pad: 0, h: 7, countIncludePad: true },
  { name: '3x3 s2 p1, countIncludePad', kernel: 3, stride: 2, pad: 1, h: 7, countIncludePad: true },
  { name: '3x3 s2 p1, exclude padding', kernel: 3, stride: 2, pad: 1, h: 7, countIncludePad: false },
  { name: '3x3 s1 p1, exclude padding', kernel: 3, stride: 1, pad: 1, h: 5, countIncludePad: false },
];

function poolCase(pc: PoolCase, kind: 'max' | 'avg'): Case {
  const shape = [2, 3, pc.h, pc.h];
  const p = poolRefParams({ n: 2, c: 3, h: pc.h, w: pc.h, kh: pc.kernel, kw: pc.kernel, stride: pc.stride, pad: pc.pad, countIncludePad: pc.countIncludePad });
  const opts = { kernel: pc.kernel, stride: pc.stride, padding: pc.pad, countIncludePad: pc.countIncludePad };
  return {
    // max pool: distinct values spaced 0.02 apart, so no window has a tie within the FD step.
    inputs: [inp('x', shape, kind === 'max' ? distinctShuffled(numel(shape), 11) : randn(numel(shape), 11))],
    ours: ([x]) => (kind === 'max' ? ops.maxPool2d(x, opts) : ops.avgPool2d(x, opts)),
    ref: ([x]) => (kind === 'max' ? maxpool2dFwdRef(p, x).y : avgpool2dFwdRef(p, x)),
    grad: TOL.reduction,
  };
}

forEachBackend((be) => {
  describe('conv2d', () => {
    for (const cc of CONVS) it(cc.name, () => check(be, convCase(cc)));
  });

  describe('linear / matmul', () => {
    it('linear [3, 7] -> [3, 5] + bias', () => check(be, {
      inputs: [inp('x', [3, 7], randn(21, 1)), inp('w', [5, 7], randn(35, 2, 0.4)), inp('b', [5], randn(5, 3, 0.1))],
      ours: ([x, w, b]) => ops.linear(x, w, b),
      ref: ([x, w, b]) => linearRef(3, 7, 5, x, w, b),
      grad: TOL.reduction,
    }));
    it('linear without bias, batch 1', () => check(be, {
      inputs: [inp('x', [1, 9], randn(9, 4)), inp('w', [3, 9], randn(27, 5, 0.3))],
      ours: ([x, w]) => ops.linear(x, w, null),
      ref: ([x, w]) => linearRef(1, 9, 3, x, w, null),
      grad: TOL.reduction,
    }));
    it('matmul [3, 7] x [7, 5]', () => check(be, {
      inputs: [inp('a', [3, 7], randn(21, 6)), inp('b', [7, 5], randn(35, 7, 0.4))],
      ours: ([a, b]) => ops.matmul(a, b),
      ref: ([a, b]) => matmulRef(3, 7, 5, a, b),
      grad: TOL.reduction,
    }));
    it('matmul with only one operand requiring a gradient', () => check(be, {
      inputs: [inp('a', [5, 3], randn(15, 8)), inp('b', [3, 1], randn(3, 9), false)],
      ours: ([a, b]) => ops.matmul(a, b),
      ref: ([a, b]) => matmulRef(5, 3, 1, a, b),
      grad: TOL.reduction,
    }));
  });

  describe('maxPool2d', () => {
    for (const pc of MAXPOOLS) it(pc.name, () => check(be, poolCase(pc, 'max')));
  });

  describe('avgPool2d', () => {
    for (const pc of AVGPOOLS) it(pc.name, () => check(be, poolCase(pc, 'avg')));
  });

  describe('activations', () => {
    it('relu (inputs at least 0.05 from the kink)', () => check(be, {
      inputs: [inp('x', [2, 3, 5, 5], randnAwayFromZero(150, 12))],
      ours: ([x]) => ops.relu(x),
      ref: ([x]) => reluRef(x),
      grad: TOL.pointwise,
    }));

    it('dropout p=0.3, fixed seed (the mask is a function of seed and index)', async () => {
      const shape = [2, 3, 5, 5];
      const p = 0.3, seed = 1234;
      // The mask the kernel draws for (seed, p, n), read back through dropout(ones).
      const maskT = noGrad(() => tidy(() => ops.dropout(Tensor.filled(be, shape, 1), p, seed)));
      const mask = await maskT.data();
      maskT.dispose();
      const keep = Math.fround(1 / (1 - p));
      expect(mask.every((m) => m === 0 || m === keep), 'mask values are 0 or 1/(1-p)').toBe(true);
      const dropped = mask.filter((m) => m === 0).length;
      expect(dropped).toBeGreaterThan(0);
      expect(dropped).toBeLessThan(mask.length);
      await check(be, {
        inputs: [inp('x', shape, randn(150, 13))],
        ours: ([x]) => ops.dropout(x, p, seed),
        ref: ([x]) => mulRef(x, mask),
        grad: TOL.pointwise,
      });
    });
  });

  describe('elementwise', () => {
    it('add', () => check(be, {
      inputs: [inp('a', [2, 3, 5], randn(30, 14)), inp('b', [2, 3, 5], randn(30, 15))],
      ours: ([a, b]) => ops.add(a, b),
      ref: ([a, b]) => addRef(a, b),
      grad: TOL.pointwise,
    }));
    it('mul', () => check(be, {
      inputs: [inp('a', [2, 3, 5], randn(30, 16)), inp('b', [2, 3, 5], randn(30, 17))],
      ours: ([a, b]) => ops.mul(a, b),
      ref: ([a, b]) => mulRef(a, b),
      grad: TOL.pointwise,
    }));
    it('scale by -1.7', () => check(be, {
      inputs: [inp('x', [3, 7], randn(21, 18))],
      ours: ([x]) => ops.scale(x, -1.7),
      ref: ([x]) => scaleRef(x, -1.7),
      grad: TOL.pointwise,
    }));
  });

  describe('shape ops', () => {
    // A view: gradient flows through reshape unchanged; scale makes the head see a new tensor.
    it('reshape [2, 3, 5, 5] -> [6, 25] -> scale', () => check(be, {
      inputs: [inp('x', [2, 3, 5, 5], randn(150, 19))],
      ours: ([x]) => ops.scale(ops.reshape(x, [6, 25]), 0.5),
      ref: ([x]) => scaleRef(x, 0.5),
      grad: TOL.pointwise,
    }));
    it('flatten [2, 3, 5, 5] -> [2, 75] -> linear', () => check(be, {
      inputs: [inp('x', [2, 3, 5, 5], randn(150, 20)), inp('w', [4, 75], randn(300, 21, 0.1))],
      ours: ([x, w]) => ops.linear(ops.flatten(x), w, null),
      ref: ([x, w]) => linearRef(2, 75, 4, x, w, null),
      grad: TOL.reduction,
    }));
  });

  describe('softmaxCrossEntropy (the root itself, no head)', () => {
    for (const eps of [0, 0.1]) {
      it(`logits [5, 7], label smoothing ${eps}`, async () => {
        const labels = randLabels(5, 7, 22);
        await check(be, {
          inputs: [inp('logits', [5, 7], randn(35, 23, 2)), inp('labels', [5], labels, false)],
          ours: ([z, l]) => ops.softmaxCrossEntropy(z, l, eps).loss,
          ref: ([z]) => Float64Array.of(softmaxXentRef(5, 7, z, labels, eps).loss),
          scalar: true,
          grad: TOL.xent,
        });
      });
    }
    it('perExample and probs match the reference', async () => {
      const z = randn(35, 24, 3), labels = randLabels(5, 7, 25);
      const ref = softmaxXentRef(5, 7, z, labels, 0.1);
      const out = tidy(() => {
        const r = ops.softmaxCrossEntropy(Tensor.fromArray(be, [5, 7], z), Tensor.fromArray(be, [5], labels), 0.1);
        return [r.perExample, r.probs, r.loss];
      });
      expectClose(await out[0].data(), ref.perExample, FWD, 'perExample');
      expectClose(await out[1].data(), ref.probs, { atol: 1e-6, rtol: 1e-5 }, 'probs');
      expectClose(await out[2].data(), [ref.loss], FWD, 'loss');
      for (const t of out) t.dispose();
    });
  });
});
