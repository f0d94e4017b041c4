// The model zoo (src/models): output shapes, parameter counts against the published ones,
// ResNet-50 v1.5's stride placement, zero-init residual, batch-norm running statistics, and
// forward FLOPs (src/models/flops.ts) against independent hand counts.
//
// Known parameter counts:
//   resnet50  25,557,032  torchvision.models.resnet50() at 1000 classes, 161 tensors
//             (53 convs, 53 BN x (gamma, beta), fc weight + bias).
//   alexnet   61,100,840  torchvision.models.alexnet() at 1000 classes.
//   resnet20     272,474  He et al.'s CIFAR ResNet-20 is "0.27M": 269,722 with option-A
//             (parameter-free, zero-padded) shortcuts. We use option B, 1x1 conv + BN where
//             the shape changes: + 16*32 + 32*64 = 2,560 weights + 2*(32 + 64) = 192 BN
//             parameters = 272,474. The test recomputes the sum layer by layer.
//   cifar10-tf 1,068,298  conv1 5*5*3*64 + 64, conv2 5*5*64*64 + 64, local3 2304*384 + 384,
//             local4 384*192 + 192, softmax_linear 192*10 + 10.
//
// Timing: resnet50 and alexnet initialise 25.6M and 61.1M parameters (~3 s each on a shared
// 2-core machine), so each is built once per describe and the forward passes stay small
// (resnet50 at 64x64; alexnet at 224 with batch 1).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { Tensor } from '../../src/tensor.js';
import { tidy } from '../../src/autograd/scope.js';
import { noGrad } from '../../src/autograd/tape.js';
import type { Module } from '../../src/nn/module.js';
import { Conv2d } from '../../src/nn/layers.js';
import { BatchNorm2d, LocalResponseNorm } from '../../src/nn/norm.js';
import { MODELS, getModelSpec, inputShape } from '../../src/models/index.js';
import { lenet5 } from '../../src/models/lenet.js';
import { Bottleneck, ResNet, resnet50 } from '../../src/models/resnet.js';
import { CifarResNet, cifar10Tf, resnet20 } from '../../src/models/cifar.js';
import { alexnet } from '../../src/models/alexnet.js';
import { countFlops, namedModules, traceForward } from '../../src/models/flops.js';
import { UserError } from '../../src/util/errors.js';
import { forEachBackend } from '../helpers/backends.js';
import { randn } from '../helpers/finite_diff.js';

const VERBOSE = !!process.env.IMAGERATE_TEST_VERBOSE;

const countParams = (m: Module) => m.parameters().reduce((s, p) => s + p.size, 0);

/** Output shapes ([C, H, W] or [F], batch dropped) of every module in one forward at batch n. */
async function traceShapes(be: Backend, model: Module, input: readonly number[], n = 2): Promise<{ shapes: Map<string, number[]>; out: number[] }> {
  const shapes = new Map<string, number[]>();
  const xv = randn(n * input[0] * input[1] * input[2], 7);
  const y = tidy(() => {
    const x = Tensor.fromArray(be, [n, ...input], xv);
    return traceForward(model, (name, _m, _x, out) => shapes.set(name, [...out.shape.slice(1)]), () => model.forward(x));
  });
  const out = [...y.shape];
  const v = await y.data();
  y.dispose();
  expect(v.every(Number.isFinite), 'finite outputs').toBe(true);
  return { shapes, out };
}

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}
function std(a: ArrayLike<number>): number {
  const m = mean(a);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - m) ** 2;
  return Math.sqrt(s / a.length);
}

/** ResNet-50 v1.5 MACs per image, counted by hand from the architecture (not from the model). */
function resnet50MacsByHand(size: number, classes: number): number {
  const o = (s: number, k: number, st: number, p: number) => Math.floor((s + 2 * p - k) / st) + 1;
  let s = o(size, 7, 2, 3);
  let macs = 64 * 3 * 49 * s * s; // stem
  s = o(s, 3, 2, 1); // max-pool
  let cin = 64;
  [3, 4, 6, 3].forEach((blocks, i) => {
    const w = 64 << i;
    for (let b = 0; b < blocks; b++) {
      const stride = b === 0 && i > 0 ? 2 : 1;
      const s2 = o(s, 3, stride, 1);
      macs += cin * w * s * s; // 1x1 at the input resolution (v1.5: no stride here)
      macs += w * w * 9 * s2 * s2; // 3x3 with the stride
      macs += w * 4 * w * s2 * s2; // 1x1 expansion
      if (b === 0) macs += cin * 4 * w * s2 * s2; // projection shortcut
      cin = 4 * w;
      s = s2;
    }
  });
  return macs + cin * classes;
}

forEachBackend((be) => {
  describe('registry', () => {
    it('lists every model with a recipe, and keeps the MNIST models as they were', async () => {
      expect(Object.keys(MODELS)).toEqual(['lenet5', 'lenet-caffe', 'mnist-tf', 'cifar10-tf', 'resnet20', 'resnet50', 'alexnet']);
      for (const s of Object.values(MODELS)) {
        const d = s.defaults;
        expect(['mnist-shift', 'cifar-crop24', 'cifar-crop32', 'imagenet']).toContain(d.augmentation);
        for (const v of [d.epochs, d.batch]) expect(Number.isInteger(v) && v > 0).toBe(true);
        expect(d.lr).toBeGreaterThan(0);
        expect(d.momentum >= 0 && d.momentum < 1).toBe(true);
        expect(d.source.length).toBeGreaterThan(0);
      }
      expect(MODELS.lenet5.defaults).toMatchObject({ epochs: 15, batch: 64, lr: 0.05, momentum: 0.9, weightDecay: 1e-3, augmentation: 'mnist-shift' });
      // spec.build(be, seed) is the old call and gives the same network as before.
      const a = getModelSpec('lenet5').build(be, 3), b = lenet5(be, 3);
      const pa = a.namedParameters(), pb = b.namedParameters();
      expect(pa.map(([n]) => n)).toEqual(pb.map(([n]) => n));
      for (let i = 0; i < pa.length; i++) expect(await values(pa[i][1])).toEqual(await values(pb[i][1]));
      a.dispose();
      b.dispose();
    });

    it('rejects options a model does not have, and accepts its fixed values', () => {
      expect(() => getModelSpec('lenet5').build(be, 1, { numClasses: 100 })).toThrow(UserError);
      expect(() => getModelSpec('lenet5').build(be, 1, { inputSize: 32 })).toThrow(/does not support option inputSize/);
      expect(() => getModelSpec('cifar10-tf').build(be, 1, { zeroInitResidual: true })).toThrow(/zeroInitResidual/);
      expect(() => getModelSpec('resnet20').build(be, 1, { numClasses: 0 })).toThrow(/positive integer/);
      expect(() => getModelSpec('alexnet').build(be, 1, { inputSize: 62 })).toThrow(/too small/);
      getModelSpec('lenet5').build(be, 1, { numClasses: 10, inputSize: 28 }).dispose();
      expect(inputShape(MODELS.resnet50)).toEqual([3, 224, 224]);
      expect(inputShape(MODELS.resnet50, { inputSize: 64 })).toEqual([3, 64, 64]);
    });

    it('traceForward sees every module call and restores forward afterwards', () => {
      const m = lenet5(be, 1);
      const names: string[] = [];
      tidy(() => noGrad(() => traceForward(m, (n) => names.push(n), () => m.forward(Tensor.filled(be, [1, 1, 28, 28], 0)))));
      expect(names).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '']); // inner first, root last
      for (const [, mod] of namedModules(m)) expect(Object.prototype.hasOwnProperty.call(mod, 'forward')).toBe(false);
      m.dispose();
    });
  });

  describe('small models: shapes, parameters and FLOPs at the default input', () => {
    // [name, params, MACs per image]; MACs counted by hand in the comments.
    const cases: [string, number, number][] = [
      ['lenet5', 61_706, 416_520], // 6*25*28^2 + 16*150*10^2 + 400*120 + 120*84 + 84*10
      ['lenet-caffe', 431_080, 2_293_000], // 20*25*24^2 + 50*500*8^2 + 800*500 + 500*10
      ['mnist-tf', 3_274_634, 13_883_904], // 32*25*28^2 + 64*800*14^2 + 3136*1024 + 1024*10
      ['cifar10-tf', 1_068_298, 18_470_784], // 64*75*24^2 + 64*1600*12^2 + 2304*384 + 384*192 + 192*10
      ['resnet20', 272_474, 40_813_184], // see the resnet20 test below
    ];
    for (const [name, params, macs] of cases) {
      it(`${name}: [2, 10] logits, ${params.toLocaleString('en')} parameters, ${(macs / 1e6).toFixed(2)} MMAC`, async () => {
        const spec = getModelSpec(name);
        const m = spec.build(be, 11);
        const { out } = await traceShapes(be, m, spec.input);
        expect(out).toEqual([2, 10]);
        expect(countParams(m)).toBe(params);
        const r = countFlops(m, be, spec.input);
        expect(r.macs).toBe(macs);
        expect(r.flops).toBe(2 * macs);
        expect(r.params).toBe(params);
        if (VERBOSE) console.log(`${name}: ${params} params, ${r.macs} MACs`);
        m.dispose();
      });
    }
  });

  describe('cifar10-tf', () => {
    it("follows the tutorial's layer order and sizes (pool1 -> norm1, norm2 -> pool2; 24 -> 12 -> 6)", async () => {
      const m = cifar10Tf(be, 5);
      const kinds = namedModules(m).slice(1).map(([, mod]) => mod.constructor.name);
      expect(kinds).toEqual(['Conv2d', 'ReLU', 'MaxPool2d', 'LocalResponseNorm', 'Conv2d', 'ReLU', 'LocalResponseNorm', 'MaxPool2d',
        'Flatten', 'Linear', 'ReLU', 'Linear', 'ReLU', 'Linear']);
      const lrn = namedModules(m).find(([, mod]) => mod instanceof LocalResponseNorm)![1] as LocalResponseNorm;
      expect(lrn.opts).toEqual({ radius: 4, bias: 1, alpha: 0.001 / 9, beta: 0.75 });
      const { shapes } = await traceShapes(be, m, [3, 24, 24]);
      expect(shapes.get('0')).toEqual([64, 24, 24]);
      expect(shapes.get('2')).toEqual([64, 12, 12]);
      expect(shapes.get('7')).toEqual([64, 6, 6]);
      expect(shapes.get('8')).toEqual([2304]);
      // The tutorial's initialisers: truncated normal (|w| <= 2 std) and biases 0 / 0.1.
      const p = Object.fromEntries(m.namedParameters());
      for (const [n, sd] of [['0', 5e-2], ['4', 5e-2], ['9', 0.04], ['11', 0.04], ['13', 1 / 192]] as const) {
        const w = await p[`${n}.weight`].data();
        expect(maxAbs(w), `${n}.weight within 2 std`).toBeLessThanOrEqual(2 * sd * (1 + 1e-6));
        expect(std(w) / sd, `${n}.weight std`).toBeGreaterThan(0.8); // truncation at 2 std leaves 0.88 std
        expect(std(w) / sd, `${n}.weight std`).toBeLessThan(0.95);
      }
      for (const [n, b] of [['0', 0], ['4', 0.1], ['9', 0.1], ['11', 0.1], ['13', 0]] as const) {
        expect(new Set(await values(p[`${n}.bias`]))).toEqual(new Set([b === 0 ? 0 : Math.fround(b)]));
      }
      m.dispose();
    });

    it('takes numClasses and another input size', async () => {
      const m = getModelSpec('cifar10-tf').build(be, 5, { numClasses: 100, inputSize: 32 });
      const { shapes, out } = await traceShapes(be, m, [3, 32, 32]);
      expect(out).toEqual([2, 100]);
      expect(shapes.get('7')).toEqual([64, 8, 8]);
      m.dispose();
    });
  });

  describe('resnet20', () => {
    it('has 3 stages of 3 BasicBlocks with option-B projections where the shape changes', async () => {
      const m = resnet20(be, 3);
      const { shapes } = await traceShapes(be, m, [3, 32, 32]);
      expect(shapes.get('layer1.2')).toEqual([16, 32, 32]);
      expect(shapes.get('layer2.0')).toEqual([32, 16, 16]);
      expect(shapes.get('layer3.2')).toEqual([64, 8, 8]);
      expect(shapes.get('avgpool')).toEqual([64]);
      const names = m.namedParameters().map(([n]) => n);
      expect(names.filter((n) => n.includes('downsample'))).toEqual([
        'layer2.0.downsample.0.weight', 'layer2.0.downsample.1.weight', 'layer2.0.downsample.1.bias',
        'layer3.0.downsample.0.weight', 'layer3.0.downsample.1.weight', 'layer3.0.downsample.1.bias',
      ]);
      // The count, layer by layer: 3x3 convs (no bias) + BN (2 per channel) + projections + fc.
      const conv3 = (ci: number, co: number) => ci * co * 9 + 2 * co;
      const byHand = conv3(3, 16) + 6 * conv3(16, 16) + conv3(16, 32) + 5 * conv3(32, 32) + conv3(32, 64) + 5 * conv3(64, 64) + 64 * 10 + 10;
      const projections = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64);
      expect(byHand).toBe(269_722); // option A: the paper's 0.27M
      expect(countParams(m)).toBe(byHand + projections);
      expect(countParams(m)).toBe(272_474);
      // MACs: 3x3 convs at 32, 16, 8 + the two 1x1 stride-2 projections + fc.
      const macs = 16 * 27 * 1024 + 6 * 16 * 144 * 1024 + (32 * 144 + 5 * 32 * 288) * 256 + (64 * 288 + 5 * 64 * 576) * 64
        + 32 * 16 * 256 + 64 * 32 * 64 + 640;
      expect(countFlops(m, be, [3, 32, 32]).macs).toBe(macs);
      m.dispose();
    });

    it('updates the BN running statistics in training mode only', async () => {
      const m = resnet20(be, 4);
      const bufs = () => Promise.all(m.namedBuffers().map(([, t]) => values(t)));
      const before = await bufs();
      expect(m.namedBuffers().length).toBe(2 * (1 + 18 + 2)); // stem BN, 2 per block, 2 projections
      const x = Tensor.fromArray(be, [2, 3, 32, 32], randn(2 * 3 * 32 * 32, 9));
      m.eval();
      const yEval1 = tidy(() => noGrad(() => m.forward(x)));
      const afterEval = await bufs();
      expect(afterEval).toEqual(before);
      m.train();
      // Running stats update even without gradients, as in PyTorch.
      const conv1 = tidy(() => noGrad(() => { m.forward(x); return m.conv1.forward(x); }));
      const afterTrain = await bufs();
      m.namedBuffers().forEach(([n], i) => expect(afterTrain[i], `${n} changed`).not.toEqual(before[i]));
      // running = 0.9 running + 0.1 batch (unbiased variance): check the stem's BN, whose input
      // is conv1's output over 2*32*32 values per channel.
      const c1 = await conv1.data();
      const [runMean, runVar] = [afterTrain[0], afterTrain[1]]; // bn1.running_mean, bn1.running_var
      expect(m.namedBuffers().slice(0, 2).map(([n]) => n)).toEqual(['bn1.running_mean', 'bn1.running_var']);
      for (let ch = 0; ch < 16; ch++) {
        const v = Array.from({ length: 2 * 1024 }, (_, i) => c1[(Math.floor(i / 1024) * 16 + ch) * 1024 + (i % 1024)]);
        const mu = mean(v), unbiased = (std(v) ** 2 * v.length) / (v.length - 1);
        expect(runMean[ch]).toBeCloseTo(0.1 * mu, 6);
        expect(runVar[ch]).toBeCloseTo(0.9 + 0.1 * unbiased, 5);
      }
      conv1.dispose();
      // Evaluation now uses the new statistics.
      m.eval();
      const yEval2 = tidy(() => noGrad(() => m.forward(x)));
      expect(await values(yEval2)).not.toEqual(await values(yEval1));
      for (const t of [x, yEval1, yEval2]) t.dispose();
      m.dispose();
    });

    it('zeroInitResidual zeroes the second BN gamma of every block', async () => {
      const m = getModelSpec('resnet20').build(be, 4, { zeroInitResidual: true }) as CifarResNet;
      for (const [n, t] of m.namedParameters()) {
        if (!/\.bn\d\.weight$|^bn1\.weight$|downsample\.1\.weight$/.test(n)) continue;
        expect(new Set(await values(t)), n).toEqual(new Set([/\.bn2\.weight$/.test(n) ? 0 : 1]));
      }
      m.dispose();
    });
  });

  describe('resnet50, 1000 classes (torchvision layout)', () => {
    let m: ResNet;
    beforeAll(() => { m = resnet50(be, 1); });
    afterAll(() => m.dispose());

    it('has 25,557,032 parameters in 161 tensors with torchvision names', () => {
      const named = m.namedParameters();
      expect(countParams(m)).toBe(25_557_032);
      expect(named.length).toBe(161);
      expect(named.slice(0, 6).map(([n]) => n)).toEqual(['conv1.weight', 'bn1.weight', 'bn1.bias', 'layer1.0.conv1.weight', 'layer1.0.bn1.weight', 'layer1.0.bn1.bias']);
      expect(named.slice(-2).map(([n, t]) => [n, [...t.shape]])).toEqual([['fc.weight', [1000, 2048]], ['fc.bias', [1000]]]);
      const shapeOf = (n: string) => [...named.find(([k]) => k === n)![1].shape];
      expect(shapeOf('layer4.2.conv3.weight')).toEqual([2048, 512, 1, 1]);
      expect(shapeOf('layer3.0.downsample.0.weight')).toEqual([1024, 512, 1, 1]);
      expect(m.namedBuffers().length).toBe(2 * 53);
    });

    it('is 4.09 GMAC (8.18 GFLOP) per 224x224 image', () => {
      const r = countFlops(m, be, [3, 224, 224]);
      expect(r.macs).toBe(resnet50MacsByHand(224, 1000));
      expect(r.macs).toBe(4_089_184_256);
      expect(r.macs / 1e9).toBeCloseTo(4.09, 2);
      expect(r.layers.filter((l) => l.kind === 'conv2d').length).toBe(53);
      if (VERBOSE) console.log(`resnet50 @224: ${r.macs} MACs, ${r.flops} FLOPs`);
    });

    it('is initialised as torchvision: He normal over fan_out, BN gamma 1 and beta 0', { timeout: 60_000 }, async () => {
      const p = Object.fromEntries(m.namedParameters());
      // fan_out and fan_in differ for the 1x1 convs that change the width.
      for (const [n, fanOut, fanIn] of [['layer1.0.conv3.weight', 256, 64], ['layer2.0.conv1.weight', 128, 256], ['conv1.weight', 64 * 49, 3 * 49]] as const) {
        const s = std(await p[n].data());
        expect(s / Math.sqrt(2 / fanOut), `${n}: std vs sqrt(2 / fan_out)`).toBeGreaterThan(0.95);
        expect(s / Math.sqrt(2 / fanOut), `${n}: std vs sqrt(2 / fan_out)`).toBeLessThan(1.05);
        expect(Math.abs(s - Math.sqrt(2 / fanIn))).toBeGreaterThan(0.2 * s);
      }
      for (const n of ['bn1', 'layer1.0.bn3', 'layer4.2.bn3', 'layer2.0.downsample.1']) {
        expect(new Set(await values(p[`${n}.weight`])), n).toEqual(new Set([1]));
        expect(new Set(await values(p[`${n}.bias`])), n).toEqual(new Set([0]));
      }
    });
  });

  describe('resnet50 at 64x64, 10 classes, zeroInitResidual', () => {
    let m: ResNet;
    beforeAll(() => { m = getModelSpec('resnet50').build(be, 2, { numClasses: 10, inputSize: 64, zeroInitResidual: true }) as ResNet; });
    afterAll(() => m.dispose());

    it('gives [2, 10] logits, and puts the stride on the 3x3 conv of each first block (v1.5)', async () => {
      const { shapes, out } = await traceShapes(be, m, [3, 64, 64]);
      expect(out).toEqual([2, 10]);
      expect(shapes.get('conv1')).toEqual([64, 32, 32]);
      expect(shapes.get('maxpool')).toEqual([64, 16, 16]);
      // Stage 1 keeps 16x16 and projects 64 -> 256 channels with stride 1.
      expect(shapes.get('layer1.0.downsample')).toEqual([256, 16, 16]);
      const mods = Object.fromEntries(namedModules(m));
      const sizes: Record<string, number> = { layer2: 16, layer3: 8, layer4: 4 };
      for (const [stage, s] of Object.entries(sizes)) {
        const b = mods[`${stage}.0`] as Bottleneck;
        expect(b).toBeInstanceOf(Bottleneck);
        const w = b.width;
        expect([b.conv1.cfg.stride ?? 1, b.conv1.kernel], `${stage}.0.conv1`).toEqual([1, 1]);
        expect([b.conv2.cfg.stride, b.conv2.kernel, b.conv2.cfg.padding], `${stage}.0.conv2`).toEqual([2, 3, 1]);
        expect([(b.downsample!.layers[0] as Conv2d).cfg.stride, (b.downsample!.layers[0] as Conv2d).kernel]).toEqual([2, 1]);
        // The 1x1 reduces at the input resolution; the 3x3 halves it.
        expect(shapes.get(`${stage}.0.conv1`), `${stage}.0.conv1 output`).toEqual([w, s, s]);
        expect(shapes.get(`${stage}.0.conv2`), `${stage}.0.conv2 output`).toEqual([w, s / 2, s / 2]);
        expect(shapes.get(`${stage}.0.conv3`)).toEqual([4 * w, s / 2, s / 2]);
        expect(shapes.get(`${stage}.0.downsample`)).toEqual([4 * w, s / 2, s / 2]);
        expect(mods[`${stage}.1`] instanceof Bottleneck && (mods[`${stage}.1`] as Bottleneck).downsample).toBe(null);
      }
      expect(shapes.get('layer4.2')).toEqual([2048, 2, 2]);
      expect(shapes.get('avgpool')).toEqual([2048]);
    });

    it('zeroInitResidual: last BN gamma 0, so every block starts as relu(shortcut)', async () => {
      const named = m.namedParameters();
      for (const [n, t] of named) {
        if (!/(bn\d|downsample\.1)\.weight$/.test(n)) continue;
        expect(new Set(await values(t)), n).toEqual(new Set([/\.bn3\.weight$/.test(n) ? 0 : 1]));
      }
      // An identity block's input is post-ReLU (>= 0), so with bn3 = 0 its output equals its input.
      const io = new Map<string, [Tensor, Tensor]>();
      const xv = randn(2 * 3 * 64 * 64, 12);
      const keep = tidy(() => {
        const x = Tensor.fromArray(be, [2, 3, 64, 64], xv);
        traceForward(m, (name, _m, xin, y) => { if (name === 'layer1.1' || name === 'layer3.4') io.set(name, [xin, y]); }, () => m.forward(x));
        return [...io.values()].flat();
      });
      for (const [name, [xin, y]] of io) expect(await values(y), `${name}: output = input`).toEqual(await values(xin));
      for (const t of keep) t.dispose();
    });

    it('runs at 32x32 (the last stage is 1x1)', async () => {
      const { shapes, out } = await traceShapes(be, m, [3, 32, 32]);
      expect(out).toEqual([2, 10]);
      expect(shapes.get('layer4.2')).toEqual([2048, 1, 1]);
    });
  });

  // AlexNet's fc6 weight (9216 x 4096 floats, 144 MiB) is one buffer, above lavapipe's 128 MiB
  // storage binding limit: the webgpu backend runs its ops in views of it (docs/webgpu.md).
  describe('alexnet', () => {
    let m: Module;
    beforeAll(() => { m = getModelSpec('alexnet').build(be, 1); });
    afterAll(() => m.dispose());

    it('has 61,100,840 parameters and is 714 MMAC per 224x224 image', () => {
      expect(countParams(m)).toBe(61_100_840);
      const r = countFlops(m, be, [3, 224, 224]);
      // conv1..5 at 55, 27, 13, 13, 13 pixels; fc 9216 -> 4096 -> 4096 -> 1000.
      const byHand = 64 * 363 * 55 ** 2 + 192 * 1600 * 27 ** 2 + (384 * 1728 + 256 * 3456 + 256 * 2304) * 13 ** 2 + 9216 * 4096 + 4096 * 4096 + 4096 * 1000;
      expect(r.macs).toBe(byHand);
      expect(r.macs).toBe(714_188_480);
    });

    it('gives [1, 1000] logits at 224 (conv1 11x11/4 pad 2 -> 55, features 6x6)', async () => {
      m.eval();
      const { shapes, out } = await traceShapes(be, m, [3, 224, 224], 1);
      m.train();
      expect(out).toEqual([1, 1000]);
      expect(shapes.get('0')).toEqual([64, 55, 55]);
      expect(shapes.get('2')).toEqual([64, 27, 27]);
      expect(shapes.get('12')).toEqual([256, 6, 6]);
    });

    it('lrn: true puts the 2012 paper\'s LRN after the ReLU of conv1 and conv2, with no parameters', async () => {
      const a = getModelSpec('alexnet').build(be, 1, { numClasses: 10, inputSize: 63 });
      const b = alexnet(be, 1, { numClasses: 10, inputSize: 63, lrn: true });
      const kinds = namedModules(b).slice(1).map(([, mod]) => mod.constructor.name);
      expect(kinds.slice(0, 9)).toEqual(['Conv2d', 'ReLU', 'LocalResponseNorm', 'MaxPool2d', 'Conv2d', 'ReLU', 'LocalResponseNorm', 'MaxPool2d', 'Conv2d']);
      expect(namedModules(a).some(([, mod]) => mod instanceof LocalResponseNorm)).toBe(false);
      expect((namedModules(b)[3][1] as LocalResponseNorm).opts).toEqual({ radius: 2, bias: 2, alpha: 1e-4, beta: 0.75 });
      expect(countParams(b)).toBe(countParams(a));
      const { out } = await traceShapes(be, b, [3, 63, 63]);
      expect(out).toEqual([2, 10]);
      a.dispose();
      b.dispose();
    });
  });

  describe('every BatchNorm2d of the residual nets uses eps 1e-5, momentum 0.1', () => {
    it('resnet20', () => {
      const m = resnet20(be, 1);
      const bns = namedModules(m).filter(([, mod]) => mod instanceof BatchNorm2d).map(([, mod]) => mod as BatchNorm2d);
      expect(bns.length).toBe(21);
      for (const b of bns) expect([b.eps, b.momentum]).toEqual([1e-5, 0.1]);
      m.dispose();
    });
  });
});
