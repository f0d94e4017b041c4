// The classic CIFAR-10 nets.
//
// cifar10-tf  The TensorFlow CIFAR-10 tutorial net (models/tutorials/image/cifar10/cifar10.py,
//             `inference`), on 3x24x24 crops:
//               conv1 5x5-64 SAME + bias, ReLU, pool1 3x3/2, norm1 (LRN),
//               conv2 5x5-64 SAME + bias, ReLU, norm2 (LRN), pool2 3x3/2,
//               local3 fc384 + ReLU, local4 fc192 + ReLU, softmax_linear fc10 (logits).
//             Note the tutorial's order: pool1 then norm1, but norm2 then pool2. LRN is
//             tf.nn.lrn(depth_radius 4, bias 1, alpha 0.001/9, beta 0.75).
//             Initialisation as the tutorial: truncated normal (redrawn beyond 2 std) with std
//             5e-2 for the convs, 0.04 for local3/local4 and 1/192 for the logits; biases 0,
//             0.1, 0.1, 0.1, 0.
//             Deviations:
//             - The pools use symmetric padding 1. TF's SAME padding for a 3x3/2 window on an
//               even size pads 0 before and 1 after; both give 24 -> 12 -> 6, but our windows
//               sit one pixel up/left of TF's. (The parity test builds tfjs with the same
//               explicit padding 1.)
//             - Flatten before local3 is C-major (NCHW), not TF's H-W-C order: a different
//               but equivalent permutation of local3's 2304 input rows.
//             - The tutorial's weight decay (0.004 on local3/local4 only) is part of the
//               training recipe (src/models/index.ts), not of the model.
//
// resnet20    He et al. 2015, section 4.2: the CIFAR ResNet with n = 3, i.e. 6n+2 = 20 layers on
//             3x32x32 input: conv3x3-16 + BN + ReLU, three stages of 3 BasicBlocks with 16, 32
//             and 64 channels (stride 2 at the first block of stages 2 and 3), global average
//             pooling, fc10. Shortcuts where the shape changes are projections, 1x1 conv with
//             stride 2 + BN: the paper's option B. (The paper's CIFAR table used option A,
//             zero-padded identity shortcuts, which have no parameters: 269,722 parameters
//             there, 272,474 here; the difference is the two 1x1 convs, 16*32 + 32*64 = 2,560
//             weights, and their BN, 2*(32 + 64) = 192.) Conv weights are He normal over
//             fan_in, the "forward" case of He et al. 2015 (Delving Deep), which the paper cites.
import type { Backend } from '../backend/backend.js';
import { Tensor } from '../tensor.js';
import { Rng } from '../util/rng.js';
import { Module } from '../nn/module.js';
import { Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import { BatchNorm2d, GlobalAvgPool2d, LocalResponseNorm } from '../nn/norm.js';
import { relu } from '../ops/index.js';
import { BN_EPS, BN_MOMENTUM, BasicBlock, setValues } from './resnet.js';

/** n values of tf.truncated_normal(stddev = std): N(0, std^2) redrawn while |z| > 2 std. */
export function truncatedNormal(rng: Rng, n: number, std: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z = rng.normal();
    while (Math.abs(z) > 2) z = rng.normal();
    a[i] = z * std;
  }
  return a;
}

function tfInit(layer: Conv2d | Linear, rng: Rng, std: number, bias: number): void {
  setValues(layer.weight, truncatedNormal(rng, layer.weight.size, std));
  if (layer.bias) setValues(layer.bias, new Float32Array(layer.bias.size).fill(bias));
}

/** The tutorial's LRN: tf.nn.lrn(x, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75). */
export const CIFAR10_TF_LRN = { radius: 4, bias: 1, alpha: 0.001 / 9, beta: 0.75 } as const;

export interface CifarOptions {
  numClasses?: number;
  /** Side of the square input; 24 (cifar10-tf) and 32 (resnet20) by default. */
  inputSize?: number;
  zeroInitResidual?: boolean;
}

/** Output side of a 3x3/2 pool with padding 1 (= TF's SAME): ceil(s / 2). */
const halve = (s: number) => Math.floor((s - 1) / 2) + 1;

export function cifar10Tf(be: Backend, seed: number, opts: CifarOptions = {}): Sequential {
  const rng = new Rng(seed, 'init');
  const numClasses = opts.numClasses ?? 10;
  const side = halve(halve(opts.inputSize ?? 24)); // 24 -> 12 -> 6
  const conv1 = new Conv2d(be, rng, 3, 64, 5, { padding: 2 });
  const conv2 = new Conv2d(be, rng, 64, 64, 5, { padding: 2 });
  const local3 = new Linear(be, rng, 64 * side * side, 384, 'he');
  const local4 = new Linear(be, rng, 384, 192, 'he');
  const logits = new Linear(be, rng, 192, numClasses, 'glorot');
  // Redraw with the tutorial's initialisers (the layers drew He/Glorot values above).
  tfInit(conv1, rng, 5e-2, 0);
  tfInit(conv2, rng, 5e-2, 0.1);
  tfInit(local3, rng, 0.04, 0.1);
  tfInit(local4, rng, 0.04, 0.1);
  tfInit(logits, rng, 1 / 192, 0);
  const pool = () => new MaxPool2d({ kernel: 3, stride: 2, padding: 1 });
  return new Sequential([
    conv1, new ReLU(), pool(), new LocalResponseNorm(CIFAR10_TF_LRN),
    conv2, new ReLU(), new LocalResponseNorm(CIFAR10_TF_LRN), pool(),
    new Flatten(),
    local3, new ReLU(),
    local4, new ReLU(),
    logits,
  ]);
}

/** He et al.'s CIFAR ResNet-(6n+2) with BasicBlocks and option-B projection shortcuts. */
export class CifarResNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly stages: Sequential[];
  readonly avgpool: GlobalAvgPool2d;
  readonly fc: Linear;

  constructor(be: Backend, seed: number, readonly n: number, readonly numClasses = 10, zeroInitResidual = false) {
    super();
    const rng = new Rng(seed, 'init');
    this.conv1 = this.addChild('conv1', new Conv2d(be, rng, 3, 16, 3, { padding: 1, bias: false }));
    this.bn1 = this.addChild('bn1', new BatchNorm2d(be, 16, { eps: BN_EPS, momentum: BN_MOMENTUM }));
    let cin = 16;
    this.stages = [16, 32, 64].map((ch, i) => {
      const blocks: Module[] = [];
      for (let b = 0; b < n; b++) {
        blocks.push(new BasicBlock(be, rng, cin, ch, b === 0 && i > 0 ? 2 : 1, { zeroInitResidual, convInit: 'fan_in' }));
        cin = ch;
      }
      return this.addChild(`layer${i + 1}`, new Sequential(blocks));
    });
    this.avgpool = this.addChild('avgpool', new GlobalAvgPool2d());
    this.fc = this.addChild('fc', new Linear(be, rng, 64, numClasses, 'glorot'));
  }

  forward(x: Tensor): Tensor {
    let h = relu(this.bn1.forward(this.conv1.forward(x)));
    for (const s of this.stages) h = s.forward(h);
    return this.fc.forward(this.avgpool.forward(h));
  }

  describe(): string {
    return `CIFAR ResNet-${6 * this.n + 2} (BasicBlock x ${this.n} per stage, 16/32/64, option-B shortcuts, ${this.numClasses} classes)`;
  }
}

export function resnet20(be: Backend, seed: number, opts: CifarOptions = {}): CifarResNet {
  return new CifarResNet(be, seed, 3, opts.numClasses ?? 10, opts.zeroInitResidual ?? false);
}
