// Whole-model parity with TensorFlow.js (STYLE rule 3): ResNet-50 v1.5 (src/models/resnet.ts),
// forward and backward, batch 2 x 3 x 64 x 64, 10 classes, training mode (batch-norm batch
// statistics), from identical weights. The tfjs network is written below op by op with
// tf.conv2d / tf.batchNorm (+ tf.moments) / tf.relu / tf.maxPool / tf.add / tf.mean / tf.matMul
// (see tfjs-nets.ts for the layouts, the fast filter gradient and the two kinds of comparison).
//
// Compared, as normalised errors ||ours - tfjs|| / ||tfjs|| per tensor:
//   end to end  the logits, the mean cross-entropy loss, 133 intermediate outputs (every conv
//               and BN output, the stem's max-pool, the 4 projection shortcuts, the 16 blocks,
//               the 4 stages, the global average pool, fc) and all 161 parameter gradients;
//   unit by unit  the stem, each of the 16 bottlenecks and the head, from the same input on
//               both sides: 18 outputs and 179 gradients (each unit's input and parameters).
//
// Inputs: x ~ N(0, 1); BN gammas/betas and the fc bias are set to seeded values around 1 / 0
// (perturbVectors), so a swapped or ignored affine term would show in the forward pass.
//
// Size and time: tfjs's pure-JS 'cpu' backend runs the full forward + backward at 64x64 in
// ~11 s on this 2-core machine and the 18 units in about as long again (with the filter
// gradients of conv2dFast; tfjs's own Conv2DBackpropFilter would take minutes). So 64x64 it
// is: no wasm backend (not a dependency of the project), and no 32x32 input, where the last
// stage is 1x1 and its BN would normalise 2 values per channel to +-1.
//
// Observed (IMAGERATE_TEST_VERBOSE=1 prints every tensor) and limits, ~10x:
//   unit by unit  outputs <= 1.3e-6 (limit 1e-5), gradients <= 2.4e-6 (limit 2e-5). Float32
//               rounding in different summation orders; BN normalisation keeps it ~1e-6.
//   end to end  outputs grow from 2.6e-7 (conv1) to 2.1e-4 (layer4.2.bn3): each layer adds its
//               rounding and each BN over few values (8 per channel in the last stage)
//               amplifies what comes in. This is the network's float32 conditioning, not our
//               kernels: tfjs against itself with every input and weight jittered by one
//               rounding (IMAGERATE_NOISE_FLOOR=1) spreads by 0.7-0.9x our error on every
//               tap. Limits: outputs 2e-3, logits 1e-3 (observed 1.0e-4), loss 2e-4 (2.3e-5).
//               Gradients: at that size a few of the ~1.5M ReLU inputs sit within rounding
//               distance of 0 and land on different sides (6 here, counted exactly from the
//               taps); each moves the gradients of every layer under it by ~1e-2 (observed
//               <= 2.1e-2; tfjs against jittered tfjs: <= 1.5e-2). With flips the limit is
//               0.1 (flipGrads; a structural error gives O(1)), without 3e-3. The tight check
//               of every gradient is the unit-by-unit one. A unit whose own ReLUs flip
//               (none with this seed; one in layer1.0 with seed 53) uses flipGrads too.
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import { Bottleneck, ResNet, resnet50 } from '../../src/models/resnet.js';
import { relu } from '../../src/ops/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { expectNormClose } from '../helpers/assert_close.js';
import { randn } from '../helpers/finite_diff.js';
import { tfCpu } from '../helpers/tfjs.js';
import { TfGraph, Unit, compareWithTfjs, conv2dFast, perturbVectors } from './tfjs-nets.js';

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

/** The stem, the 16 blocks and the head, each compared from the same input on both sides. */
function resnet50Units(m: ResNet): Unit[] {
  const units: Unit[] = [{
    name: 'maxpool', input: 'input', params: ['conv1.weight', 'bn1.weight', 'bn1.bias'], reluTaps: ['bn1'],
    ours: (x) => m.maxpool.forward(relu(m.bn1.forward(m.conv1.forward(x)))),
    tf: (g, x) => g.maxPool(g.relu(g.bn(g.conv(x, 'conv1', 2, 3), 'bn1')), 'maxpool', 3, 2, 1),
  }];
  let prev = 'maxpool';
  m.stages.forEach((stage, i) => stage.layers.forEach((mod, b) => {
    const block = mod as Bottleneck, name = `layer${i + 1}.${b}`;
    units.push({
      name, input: prev, params: block.namedParameters(`${name}.`).map(([n]) => n), reluTaps: [`${name}.bn1`, `${name}.bn2`, name],
      ours: (x) => block.forward(x),
      tf: (g, x) => bottleneckTf(g, x, name, block.stride, block.downsample !== null),
    });
    prev = name;
  }));
  units.push({
    name: 'fc', input: prev, params: ['fc.weight', 'fc.bias'], reluTaps: [],
    ours: (x) => m.fc.forward(m.avgpool.forward(x)),
    tf: (g, x) => g.fc(g.globalAvgPool(x, 'avgpool'), 'fc'),
  });
  return units;
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
        what: 'resnet50', be, model, xShape: [2, 3, 64, 64], numClasses: 10, tfNet: resnet50Tf, seed: 51, units: resnet50Units(model), noiseFloor: !!process.env.IMAGERATE_NOISE_FLOOR,
        tol: { logits: 1e-3, loss: 2e-4, taps: 2e-3, grads: 3e-3, flipGrads: 0.1, unitOut: 1e-5, unitGrads: 2e-5 },
      });
      // 53 convs + 53 BNs + maxpool + 4 projection outputs + 16 blocks + 4 stages + avgpool + fc.
      expect(r.counts.taps).toBe(53 + 53 + 1 + 4 + 16 + 4 + 1 + 1);
      expect(r.counts.grads).toBe(161);
      expect(r.counts.unitOut).toBe(18);
      expect(r.counts.unitGrads).toBe(18 + 161); // d/d input of each unit + every parameter once
      for (const k of ['taps', 'grads', 'unitOut', 'unitGrads'] as const) console.log(`resnet50 vs tfjs: ${r.counts[k]} ${k}, worst ${r.worst[k][0]} ${r.worst[k][1].toExponential(2)}`);
      console.log(`resnet50 vs tfjs: ReLU flips end to end ${r.endToEndFlips}; units with flips: ${r.unitFlips.map(([n, k]) => `${n} (${k})`).join(', ') || 'none'}`);
    }, 120_000);
  });
});
