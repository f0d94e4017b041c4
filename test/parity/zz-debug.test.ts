import { it } from 'vitest';
import { getBackend } from '../../src/backend/registry.js';
import { Tensor } from '../../src/tensor.js';
import { backward } from '../../src/autograd/tape.js';
import { tidy } from '../../src/autograd/scope.js';
import * as ops from '../../src/ops/index.js';
import { randn } from '../helpers/finite_diff.js';
import { tfCpu, nchwToNhwc, nhwcToNchw } from '../helpers/tfjs.js';

it('bn + relu + gap, tiny', async () => {
  const be = getBackend('cpu');
  const tf = await tfCpu();
  for (const [N, C, H, W] of [[2, 4, 2, 2], [2, 4, 8, 8], [2, 64, 2, 2]]) {
    const xv = randn(N * C * H * W, 1), gv = randn(C, 2, 0.2).map((v) => v + 1), bv = randn(C, 3, 0.2), rv = randn(N * C, 4);
    const x = Tensor.fromArray(be, [N, C, H, W], xv); x.requiresGrad = true;
    const g = Tensor.fromArray(be, [C], gv); g.requiresGrad = true;
    const b = Tensor.fromArray(be, [C], bv); b.requiresGrad = true;
    const rm = Tensor.fromArray(be, [C], new Float32Array(C)), rvv = Tensor.fromArray(be, [C], new Float32Array(C).fill(1));
    const W2 = Tensor.fromArray(be, [1, N * C], rv);
    const gs = tidy(() => {
      const y = ops.relu(ops.batchNorm2d(x, g, b, rm, rvv, { training: true, eps: 1e-5 }));
      const p = ops.globalAvgPool2d(y);
      const l = ops.linear(ops.reshape(p, [1, N * C]), W2, null);
      const logits = ops.linear(l, Tensor.fromArray(be, [2, 1], new Float32Array([1, 0])), null);
      const { loss } = ops.softmaxCrossEntropy(logits, Tensor.fromArray(be, [1], new Int32Array([0])));
      backward(loss, 1);
      return [x.grad!, g.grad!, b.grad!];
    });
    const ours = [await gs[0].data(), await gs[1].data(), await gs[2].data()];
    const xt = tf.tensor4d(nchwToNhwc(xv, [N, C, H, W]), [N, H, W, C]);
    const f = (xx: any, gg: any, bb: any) => {
      const { mean, variance } = tf.moments(xx, [0, 1, 2]);
      const y = tf.relu(tf.batchNorm(xx, mean, variance, bb, gg, 1e-5));
      const p = tf.mean(y, [1, 2]); // [N, C]
      const L = tf.sum(tf.mul(tf.reshape(p, [N * C]), tf.tensor1d(rv)));
      return tf.softplus(tf.neg(L)) as any;
    };
    const gr = tf.grads(f)([xt, tf.tensor1d(gv), tf.tensor1d(bv)]);
    const theirs = [nhwcToNchw(await gr[0].data(), [N, C, H, W]), await gr[1].data(), await gr[2].data()];
    for (let i = 0; i < 3; i++) {
      let num = 0, den = 0;
      for (let j = 0; j < ours[i].length; j++) { num += (ours[i][j] - theirs[i][j]) ** 2; den += theirs[i][j] ** 2; }
      console.log([N, C, H, W].join('x'), ['dx', 'dgamma', 'dbeta'][i], Math.sqrt(num / den).toExponential(2));
    }
  }
});
