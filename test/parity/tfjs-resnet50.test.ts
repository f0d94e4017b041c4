// Whole-model parity with TensorFlow.js (STYLE rule 3): ResNet-50 v1.5 (src/models/resnet.ts),
// forward and backward, batch 2 x 3 x 64 x 64, 10 classes, training mode (batch-norm batch
// statistics), from identical weights. The tfjs network is written below op by op with
// tf.conv2d / tf.batchNorm (+ tf.moments) / tf.relu / tf.maxPool / tf.add / tf.mean / tf.matMul
// (see tfjs-nets.ts for the layouts and the fast filter gradient), so every step is visible.
//
// Compared (normalised error ||ours - tfjs|| / ||tfjs|| per tensor): the logits, the mean
// cross-entropy loss, 129 intermediate outputs (every conv and every BN output, the stem's
// max-pool, each projection shortcut, each of the 16 block outputs, each stage output and the
// global average pool) and the gradients of all 161 parameters.
//
// Inputs: x ~ N(0, 1); the BN gammas/betas and the fc bias are set to seeded values around
// 1 / 0 (perturbVectors) so a swapped or ignored affine term would show in the forward pass.
//
// Size and time: tfjs's pure-JS 'cpu' backend does the full forward + backward at 64x64 in
// about 10-15 s here (with the forward-conv filter gradient; its own Conv2DBackpropFilter would
// take several minutes), so neither the wasm backend nor a 32x32 input is needed.
//
// Tolerances. Both sides are float32 with different summation orders, so every conv output
// differs by a few ulps of its partial sums (~1e-7 relative). BN then divides by the batch
// standard deviation, which keeps these relative errors from growing with depth (observed
// ~1e-6 at the stem up to ~5e-6 at the last blocks; IMAGERATE_TEST_VERBOSE=1 prints each).
// Gradients see the same ~1e-6 forward differences plus their own reductions (filter
// gradients sum over N*P*Q up to 2048 terms, BN backward over N*H*W) and pass through 50
// layers back to the stem: observed up to ~3e-5 (the first conv's gradient, the longest path).
// A ReLU input within ~1e-6 of zero can flip between the frameworks; inputs are continuous
// random values, so that needs |z| < 1e-6 among ~1.3M ReLU inputs and moves one position's
// gradient; with this seed it does not happen, and it would show as a single larger outlier,
// not a uniform error. Limits: forward taps 5e-5, gradients 3e-4 (~10x the worst observed),
// logits 5e-5, loss 1e-5 relative.
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import { ResNet, resnet50 } from '../../src/models/resnet.js';
import { forEachBackend } from '../helpers/backends.js';
import { expectNormClose } from '../helpers/assert_close.js';
import { randn } from '../helpers/finite_diff.js';
import { tfCpu } from '../helpers/tfjs.js';
import { TfGraph, compareWithTfjs, conv2dFast, perturbVectors } from './tfjs-nets.js';

type T4 = TF.Tensor4D;

/** One v1.5 bottleneck: the stride is on the 3x3 conv; projection (1x1/stride + BN) if given. */
function bottleneckTf(g: TfGraph, x: T4, name: string, stride: number, projection: boolean): T4 {
  let h = g.relu(g.bn(g.conv(x, `${name}.conv1`, 1, 0), `${name}.bn1`));
  h = g.relu(g.bn(g.conv(h, `${name}.conv2`, stride, 1), `${name}.bn2`));
  h = g.bn(g.conv(h, `${name}.conv3`, 1, 0), `${name}.bn3`);
  const shortcut = projection
    ? g.tap(`${name}.downsample`, g.bn(g.conv(x, `${name}.downsample.0`, stride, 0), `${name}.downsample.1`))
    : x;
  return g.tap(name, g.relu(g.tf.add(h, shortcut)));
}

/** ResNet-50 v1.5 in tfjs: stem, [3, 4, 6, 3] bottlenecks, global average pool, fc. */
function resnet50Tf(g: TfGraph, x: T4): TF.Tensor2D {
  let h = g.relu(g.bn(g.conv(x, 'conv1', 2, 3), 'bn1'));
  h = g.maxPool(h, 'maxpool', 3, 2, 1);
  [3, 4, 6, 3].forEach((blocks, i) => {
    for (let b = 0; b < blocks; b++) h = bottleneckTf(g, h, `layer${i + 1}.${b}`, b === 0 && i > 0 ? 2 : 1, b === 0);
    g.tap(`layer${i + 1}`, h);
  });
  return g.fc(g.globalAvgPool(h, 'avgpool'), 'fc');
}

describe('the tfjs side', () => {
  it("fast conv gradient equals tfjs's native gradient (strides 1 and 2, 1x1 to 7x7)", async () => {
    const tf = await tfCpu();
    // [kernel, stride, pad, input size]: every conv shape ResNet-50 uses, on small tensors;
    // odd and even sizes, so that the stride-2 filter-gradient conv has extra rows to slice off.
    for (const [k, st, pad, s] of [[1, 1, 0, 6], [3, 1, 1, 7], [3, 2, 1, 8], [3, 2, 1, 7], [1, 2, 0, 8], [1, 2, 0, 7], [7, 2, 3, 11]]) {
      const x = tf.tensor4d(randn(2 * s * s * 3, 41), [2, s, s, 3]);
      const w = tf.tensor4d(randn(k * k * 3 * 4, 42, 0.1), [k, k, 3, 4]);
      const p = Math.floor((s + 2 * pad - k) / st) + 1;
      const r = tf.tensor4d(randn(2 * p * p * 4, 43), [2, p, p, 4]);
      const f = (conv: (a: T4, b: T4) => T4) => tf.grads((a: TF.Tensor, b: TF.Tensor) => tf.sum(tf.mul(conv(a as T4, b as T4), r)))([x, w]);
      const native = f((a, b) => tf.conv2d(a, b, st, pad));
      const fast = f((a, b) => conv2dFast(tf, a, b, st, pad));
      for (let i = 0; i < 2; i++) {
        // Same float32 products, summed in a different order.
        expectNormClose(await fast[i].data(), await native[i].data(), 1e-6, `k ${k} stride ${st} pad ${pad} size ${s} ${i ? 'dW' : 'dX'}`);
      }
      tf.dispose([x, w, r, ...native, ...fast]);
    }
  });
});

forEachBackend((be) => {
  describe('ResNet-50 v1.5 parity with tfjs (2x3x64x64, 10 classes, training mode)', () => {
    let model: ResNet;
    beforeAll(() => {
      model = resnet50(be, 2024, { numClasses: 10 });
      perturbVectors(model, 77);
    });
    afterAll(() => model.dispose());

    it('logits, loss, every conv/BN/block output and all 161 parameter gradients', async () => {
      const r = await compareWithTfjs({
        what: 'resnet50', be, model, xShape: [2, 3, 64, 64], numClasses: 10, tfNet: resnet50Tf, seed: 51, noiseFloor: !!process.env.IMAGERATE_NOISE_FLOOR,
        tol: { logits: 5e-5, loss: 1e-5, taps: 5e-5, grads: 3e-4 },
      });
      expect(r.grads).toBe(161);
      // 53 convs + 53 BNs + maxpool + 4 projection outputs + 16 blocks + 4 stages + avgpool + fc.
      expect(r.taps).toBe(53 + 53 + 1 + 4 + 16 + 4 + 1 + 1);
      console.log(`resnet50 vs tfjs: worst tap ${r.worst.taps[0]} ${r.worst.taps[1].toExponential(2)}, worst gradient ${r.worst.grads[0]} ${r.worst.grads[1].toExponential(2)}`);
    }, 120_000);
  });
});
