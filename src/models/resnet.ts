// Residual networks: the two block kinds, and ResNet-50 v1.5 for ImageNet-shaped input.
// (The CIFAR ResNet-20 that reuses BasicBlock is in cifar.ts.)
//
// resnet50  He et al., "Deep Residual Learning for Image Recognition" (2015), 50-layer
//           bottleneck net, in the "v1.5" form of the MLPerf reference (seed 004) and of
//           torchvision: the stride-2 of the first block of stages 2-4 sits on the 3x3 conv,
//           not on the first 1x1 (v1 puts it on the 1x1, which skips 3/4 of the input pixels).
//
//             conv 7x7/2, 64, pad 3, no bias -> BN -> ReLU -> max-pool 3x3/2 pad 1
//             layer1..layer4: [3, 4, 6, 3] bottlenecks of width 64/128/256/512, output 4x width
//             global average pool -> fc(numClasses)
//
//           Bottleneck: 1x1 (width) -> BN -> ReLU -> 3x3/stride (width) -> BN -> ReLU ->
//           1x1 (4 width) -> BN, plus the shortcut, then ReLU. The first block of each stage
//           has a projection shortcut, 1x1 conv with the block's stride + BN ("option B" of
//           the paper); the others are identities.
//
//           Names follow torchvision's state_dict (conv1, bn1, layer2.0.downsample.0, fc...), so
//           a PyTorch checkpoint maps one to one; torchvision's resnet50 has 25,557,032
//           parameters at 1000 classes and so does this one.
//
// Initialisation, as torchvision's ResNet does: convs He normal with fan_out = K*R*S,
// N(0, 2/fan_out) (mode='fan_out', nonlinearity='relu'); BN gamma 1, beta 0; with
// zeroInitResidual, the last BN gamma of every block is 0, so each block starts as the identity
// (Goyal et al. 2017, "Accurate, Large Minibatch SGD", section 5.1). One deviation: the fc
// layer is Glorot-uniform (the project's classifier default) where torchvision keeps
// PyTorch's default U(±1/sqrt(fan_in)) and the MLPerf TF reference draws N(0, 0.01^2).
//
// The network is input-size agnostic (global pooling): 224 is the ImageNet default, and 64 or
// 32 work too (at 32 the last stage is 1x1).
import type { Backend } from '../backend/backend.js';
import { Tensor } from '../tensor.js';
import { Rng } from '../util/rng.js';
import { Module } from '../nn/module.js';
import { Conv2d, Linear, MaxPool2d, Sequential } from '../nn/layers.js';
import { BatchNorm2d, GlobalAvgPool2d } from '../nn/norm.js';
import { add, relu } from '../ops/index.js';

/** BN settings of torchvision and the MLPerf reference (TF momentum 0.9 = PyTorch 0.1). */
export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

export interface ResidualOptions {
  /** Zero the last BN gamma of every residual block (each block starts as the identity). */
  zeroInitResidual?: boolean;
  /** Conv weight initialisation: He normal over fan_in (Conv2d's own) or fan_out (torchvision). */
  convInit?: 'fan_in' | 'fan_out';
}

/**
 * Overwrites a parameter's values, outside autograd (initialisation only). Conv2d and Linear
 * draw their own He/Glorot values; models that follow another recipe redraw here.
 */
export function setValues(t: Tensor, values: Float32Array): void {
  if (values.length !== t.size) throw new Error(`setValues: ${t.name ?? 'tensor'} has ${t.size} elements, got ${values.length}`);
  t.backend.upload(t.buf, values);
}

/** Redraws a conv weight [K, C, R, S] as He normal over fan_out: N(0, 2 / (K*R*S)). */
export function heNormalFanOut(conv: Conv2d, rng: Rng): void {
  const [k, , r, s] = conv.weight.shape;
  const std = Math.sqrt(2 / (k * r * s));
  const v = new Float32Array(conv.weight.size);
  for (let i = 0; i < v.length; i++) v[i] = rng.normal() * std;
  setValues(conv.weight, v);
}

function conv(be: Backend, rng: Rng, opts: ResidualOptions, cin: number, cout: number, k: number, stride: number): Conv2d {
  const c = new Conv2d(be, rng, cin, cout, k, { stride, padding: (k - 1) >> 1, bias: false });
  if (opts.convInit === 'fan_out') heNormalFanOut(c, rng);
  return c;
}

const bn = (be: Backend, channels: number, zeroInitGamma = false) =>
  new BatchNorm2d(be, channels, { eps: BN_EPS, momentum: BN_MOMENTUM, zeroInitGamma });

/** Projection shortcut: 1x1 conv with the block's stride, then BN ("option B"). */
function projection(be: Backend, rng: Rng, opts: ResidualOptions, cin: number, cout: number, stride: number): Sequential {
  return new Sequential([conv(be, rng, opts, cin, cout, 1, stride), bn(be, cout)]);
}

/** The two-3x3 block of ResNet-18/34 and the CIFAR ResNets; stride on the first conv. */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(be: Backend, rng: Rng, readonly inChannels: number, readonly channels: number, readonly stride: number, opts: ResidualOptions = {}) {
    super();
    this.conv1 = this.addChild('conv1', conv(be, rng, opts, inChannels, channels, 3, stride));
    this.bn1 = this.addChild('bn1', bn(be, channels));
    this.conv2 = this.addChild('conv2', conv(be, rng, opts, channels, channels, 3, 1));
    this.bn2 = this.addChild('bn2', bn(be, channels, opts.zeroInitResidual));
    this.downsample = stride !== 1 || inChannels !== channels
      ? this.addChild('downsample', projection(be, rng, opts, inChannels, channels, stride))
      : null;
  }

  forward(x: Tensor): Tensor {
    const h = relu(this.bn1.forward(this.conv1.forward(x)));
    const y = this.bn2.forward(this.conv2.forward(h));
    return relu(add(y, this.downsample ? this.downsample.forward(x) : x));
  }

  describe(): string {
    return `BasicBlock(${this.inChannels} -> ${this.channels}, stride ${this.stride}${this.downsample ? ', projection' : ''})`;
  }
}

/** The 1x1-3x3-1x1 bottleneck, v1.5: the stride is on the 3x3 conv. */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Sequential | null;
  readonly outChannels: number;

  constructor(be: Backend, rng: Rng, readonly inChannels: number, readonly width: number, readonly stride: number, opts: ResidualOptions = {}) {
    super();
    this.outChannels = width * Bottleneck.expansion;
    this.conv1 = this.addChild('conv1', conv(be, rng, opts, inChannels, width, 1, 1));
    this.bn1 = this.addChild('bn1', bn(be, width));
    this.conv2 = this.addChild('conv2', conv(be, rng, opts, width, width, 3, stride));
    this.bn2 = this.addChild('bn2', bn(be, width));
    this.conv3 = this.addChild('conv3', conv(be, rng, opts, width, this.outChannels, 1, 1));
    this.bn3 = this.addChild('bn3', bn(be, this.outChannels, opts.zeroInitResidual));
    this.downsample = stride !== 1 || inChannels !== this.outChannels
      ? this.addChild('downsample', projection(be, rng, opts, inChannels, this.outChannels, stride))
      : null;
  }

  forward(x: Tensor): Tensor {
    let h = relu(this.bn1.forward(this.conv1.forward(x)));
    h = relu(this.bn2.forward(this.conv2.forward(h)));
    h = this.bn3.forward(this.conv3.forward(h));
    return relu(add(h, this.downsample ? this.downsample.forward(x) : x));
  }

  describe(): string {
    return `Bottleneck(${this.inChannels} -> ${this.width} -> ${this.outChannels}, stride ${this.stride} on the 3x3${this.downsample ? ', projection' : ''})`;
  }
}

export interface ResNetOptions {
  numClasses?: number;
  zeroInitResidual?: boolean;
}

/** ImageNet-style ResNet with bottleneck blocks (ResNet-50/101/152 v1.5 by `layers`). */
export class ResNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly maxpool: MaxPool2d;
  readonly stages: Sequential[];
  readonly avgpool: GlobalAvgPool2d;
  readonly fc: Linear;

  constructor(be: Backend, seed: number, readonly layers: readonly number[], readonly numClasses = 1000, zeroInitResidual = false) {
    super();
    const rng = new Rng(seed, 'init');
    const opts: ResidualOptions = { zeroInitResidual, convInit: 'fan_out' };
    this.conv1 = this.addChild('conv1', new Conv2d(be, rng, 3, 64, 7, { stride: 2, padding: 3, bias: false }));
    heNormalFanOut(this.conv1, rng);
    this.bn1 = this.addChild('bn1', bn(be, 64));
    this.maxpool = this.addChild('maxpool', new MaxPool2d({ kernel: 3, stride: 2, padding: 1 }));
    let cin = 64;
    this.stages = layers.map((blocks, i) => {
      const width = 64 << i;
      const stage: Module[] = [];
      for (let b = 0; b < blocks; b++) {
        const block = new Bottleneck(be, rng, cin, width, b === 0 && i > 0 ? 2 : 1, opts);
        cin = block.outChannels;
        stage.push(block);
      }
      return this.addChild(`layer${i + 1}`, new Sequential(stage));
    });
    this.avgpool = this.addChild('avgpool', new GlobalAvgPool2d());
    this.fc = this.addChild('fc', new Linear(be, rng, cin, numClasses, 'glorot'));
  }

  forward(x: Tensor): Tensor {
    let h = this.maxpool.forward(relu(this.bn1.forward(this.conv1.forward(x))));
    for (const s of this.stages) h = s.forward(h);
    return this.fc.forward(this.avgpool.forward(h));
  }

  describe(): string {
    return `ResNet v1.5 (bottleneck, stages [${this.layers.join(', ')}], ${this.numClasses} classes)`;
  }
}

/** ResNet-50 v1.5: stages [3, 4, 6, 3]. */
export function resnet50(be: Backend, seed: number, opts: ResNetOptions = {}): ResNet {
  return new ResNet(be, seed, [3, 4, 6, 3], opts.numClasses ?? 1000, opts.zeroInitResidual ?? false);
}
