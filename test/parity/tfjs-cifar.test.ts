// Whole-model parity with TensorFlow.js (STYLE rule 3) for the CIFAR nets of
// src/models/cifar.ts, forward and backward, from identical weights (see tfjs-nets.ts for the
// method, the layouts and the two kinds of comparison):
//
//   cifar10-tf  batch 8 x 3 x 24 x 24: conv (SAME = pad 2) + bias, ReLU, max-pool 3/2 pad 1,
//               tf.localResponseNormalization (TF's definition, as ours), conv, ReLU, LRN, pool,
//               flatten (NCHW order), fc384, fc192, fc10. Every layer's output is tapped.
//   resnet20    batch 4 x 3 x 32 x 32, training-mode BN (tf.moments), option-B projections;
//               every conv/BN/block/stage output is tapped, and the stem, the 9 blocks and the
//               head are also compared unit by unit.
//
// Inputs: x ~ N(0, 1); BN gammas/betas and biases get seeded values around 1 / 0
// (perturbVectors), so every affine term matters in the forward pass.
//
// Tolerances (normalised error ||ours - tfjs|| / ||tfjs|| per tensor; loss: relative error),
// about 10x the worst observed (IMAGERATE_TEST_VERBOSE=1 prints every tensor's error). Both
// sides are float32 with different summation orders.
//   cifar10-tf  five layers, no BN. Observed: logits 1.3e-7, loss 1.1e-7, layer outputs
//               <= 7.9e-7, gradients <= 9.3e-7 (the longest sums: conv2's filter gradient
//               over 8*12*12 positions, local3's 2304 inputs). Limits 1e-5, loss 1e-6.
//   resnet20    20 layers with BN over 4*H*W values per channel (256 in the last stage), so
//               rounding differences grow with depth (see tfjs-resnet50.test.ts), but stay
//               far from ReLU-flipping size. Observed end to end: logits 5.0e-7, loss 1.1e-7,
//               outputs <= 3.3e-6 (layer3.2.bn2), gradients <= 3.3e-6; limits 1e-5 (logits),
//               1e-6 (loss), 3e-5. Unit by unit: outputs <= 4.4e-7, gradients <= 2.3e-6;
//               limits 5e-6 and 2e-5.
// Max-pool ties: cifar10-tf pools after ReLU, where windows of zeros tie. Any zero chosen has
// a zero ReLU gradient (and LRN maps 0 to 0 with no cross-channel gradient through it), so
// the choice does not change any gradient.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import type { Sequential } from '../../src/nn/layers.js';
import { relu } from '../../src/ops/index.js';
import { BasicBlock } from '../../src/models/resnet.js';
import { CIFAR10_TF_LRN, CifarResNet, cifar10Tf, resnet20 } from '../../src/models/cifar.js';
import { forEachBackend } from '../helpers/backends.js';
import { TfGraph, Unit, compareWithTfjs, perturbVectors } from './tfjs-nets.js';

type T4 = TF.Tensor4D;

/** cifar10-tf with our Sequential's indices as names (conv1 = '0', ..., logits = '13'). */
function cifar10TfTf(g: TfGraph, x: T4): TF.Tensor2D {
  let h = g.relu(g.conv(x, '0', 1, 2), '1');
  h = g.lrn(g.maxPool(h, '2', 3, 2, 1), '3', CIFAR10_TF_LRN); // pool1 -> norm1
  h = g.relu(g.conv(h, '4', 1, 2), '5');
  h = g.maxPool(g.lrn(h, '6', CIFAR10_TF_LRN), '7', 3, 2, 1); // norm2 -> pool2
  let f = g.flattenNchw(h, '8');
  f = g.relu(g.fc(f, '9'), '10');
  f = g.relu(g.fc(f, '11'), '12');
  return g.fc(f, '13');
}

/** A BasicBlock: conv3x3/stride, BN, ReLU, conv3x3, BN, + shortcut (1x1/stride + BN), ReLU. */
function basicBlockTf(g: TfGraph, x: T4, name: string, stride: number, projection: boolean): T4 {
  const h = g.relu(g.bn(g.conv(x, `${name}.conv1`, stride, 1), `${name}.bn1`));
  const y = g.bn(g.conv(h, `${name}.conv2`, 1, 1), `${name}.bn2`);
  const shortcut = projection
    ? g.tap(`${name}.downsample`, g.bn(g.conv(x, `${name}.downsample.0`, stride, 0), `${name}.downsample.1`))
    : x;
  return g.tap(name, g.relu(g.tf.add(y, shortcut)));
}

function resnet20Tf(g: TfGraph, x: T4): TF.Tensor2D {
  let h = g.relu(g.bn(g.conv(x, 'conv1', 1, 1), 'bn1'));
  for (let i = 0; i < 3; i++) {
    for (let b = 0; b < 3; b++) h = basicBlockTf(g, h, `layer${i + 1}.${b}`, b === 0 && i > 0 ? 2 : 1, b === 0 && i > 0);
    g.tap(`layer${i + 1}`, h);
  }
  return g.fc(g.globalAvgPool(h, 'avgpool'), 'fc');
}

/** Stem (conv1 + bn1), the 9 blocks (the first one applies the stem's ReLU), the head. */
function resnet20Units(m: CifarResNet): Unit[] {
  const units: Unit[] = [{
    name: 'bn1', input: 'input', params: ['conv1.weight', 'bn1.weight', 'bn1.bias'], reluTaps: [],
    ours: (x) => m.bn1.forward(m.conv1.forward(x)),
    tf: (g, x) => g.bn(g.conv(x, 'conv1', 1, 1), 'bn1'),
  }];
  let prev = 'bn1';
  m.stages.forEach((stage, i) => stage.layers.forEach((mod, b) => {
    const block = mod as BasicBlock, name = `layer${i + 1}.${b}`, first = prev === 'bn1';
    units.push({
      name, input: prev, params: block.namedParameters(`${name}.`).map(([n]) => n), reluTaps: [`${name}.bn1`, name],
      ours: (x) => block.forward(first ? relu(x) : x),
      tf: (g, x) => basicBlockTf(g, first ? g.relu(x) : x, name, block.stride, block.downsample !== null),
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

const report = (what: string, r: Awaited<ReturnType<typeof compareWithTfjs>>) => {
  for (const k of ['taps', 'grads', 'unitOut', 'unitGrads'] as const) {
    if (r.counts[k]) console.log(`${what} vs tfjs: ${r.counts[k]} ${k}, worst ${r.worst[k][0]} ${r.worst[k][1].toExponential(2)}`);
  }
  if (r.counts.unitOut || r.endToEndFlips) {
    console.log(`${what} vs tfjs: ReLU flips end to end ${r.endToEndFlips}; units with flips: ${r.unitFlips.map(([n, k]) => `${n} (${k})`).join(', ') || 'none'}`);
  }
};

forEachBackend((be) => {
  describe('CIFAR nets: parity with tfjs (mean cross-entropy, training mode)', () => {
    describe('cifar10-tf', () => {
      let model: Sequential;
      beforeAll(() => {
        model = cifar10Tf(be, 2024);
        perturbVectors(model, 78);
      });
      afterAll(() => model.dispose());

      it('logits, loss, every layer output and all 10 parameter gradients (8x3x24x24)', async () => {
        const r = await compareWithTfjs({
          what: 'cifar10-tf', be, model, xShape: [8, 3, 24, 24], numClasses: 10, tfNet: cifar10TfTf, seed: 61, reluTaps: ['1', '5', '10', '12'],
          tol: { logits: 1e-5, loss: 1e-6, taps: 1e-5, grads: 1e-5, flipGrads: 5e-2 },
        });
        expect(r.counts.taps).toBe(14); // every module of the Sequential; '13' is the logits
        expect(r.counts.grads).toBe(10);
        report('cifar10-tf', r);
      }, 30_000);
    });

    describe('resnet20', () => {
      let model: CifarResNet;
      beforeAll(() => {
        model = resnet20(be, 2024);
        perturbVectors(model, 79);
      });
      afterAll(() => model.dispose());

      it('logits, loss, every conv/BN/block output and all 65 parameter gradients (4x3x32x32), and unit by unit', async () => {
        const r = await compareWithTfjs({
          what: 'resnet20', be, model, xShape: [4, 3, 32, 32], numClasses: 10, tfNet: resnet20Tf, seed: 62, units: resnet20Units(model),
          tol: { logits: 1e-5, loss: 1e-6, taps: 3e-5, grads: 3e-5, flipGrads: 5e-2, unitOut: 5e-6, unitGrads: 2e-5 },
        });
        // 21 convs + 21 BNs + 2 projection outputs + 9 blocks + 3 stages + avgpool + fc.
        expect(r.counts.taps).toBe(21 + 21 + 2 + 9 + 3 + 1 + 1);
        expect(r.counts.grads).toBe(65);
        expect(r.counts.unitOut).toBe(11);
        expect(r.counts.unitGrads).toBe(11 + 65);
        report('resnet20', r);
      }, 30_000);
    });
  });
});
