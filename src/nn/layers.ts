// The layers a LeNet-class convnet needs. Each wraps one op from src/ops and owns its
// parameters; initialisation is deterministic given the Rng passed in.
import type { Backend, BufferHandle } from '../backend/backend.js';
import { Tensor } from '../tensor.js';
import { Module, init } from './module.js';
import { Rng } from '../util/rng.js';
import * as ops from '../ops/index.js';
import type { Pair } from '../ops/util.js';
import { pair } from '../ops/util.js';

export interface Conv2dConfig {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(be: Backend, rng: Rng, readonly inChannels: number, readonly outChannels: number, readonly kernel: Pair, readonly cfg: Conv2dConfig = {}) {
    super();
    const [kh, kw] = pair(kernel);
    const fanIn = inChannels * kh * kw;
    this.weight = this.addParam('weight', be, [outChannels, inChannels, kh, kw], init.heNormal(rng, outChannels * fanIn, fanIn));
    this.bias = cfg.bias === false ? null : this.addParam('bias', be, [outChannels], init.zeros(outChannels));
  }
  forward(x: Tensor): Tensor {
    return ops.conv2d(x, this.weight, this.bias, this.cfg);
  }
  describe(): string {
    const [kh, kw] = pair(this.kernel);
    const [sh] = pair(this.cfg.stride ?? 1);
    const [ph] = pair(this.cfg.padding ?? 0);
    return `Conv2d(${this.inChannels}, ${this.outChannels}, k=${kh}x${kw}, s=${sh}, p=${ph})`;
  }
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  /** 'he' for layers followed by ReLU, 'glorot' for the classifier. */
  constructor(be: Backend, rng: Rng, readonly inFeatures: number, readonly outFeatures: number, initKind: 'he' | 'glorot' = 'glorot', bias = true) {
    super();
    const n = inFeatures * outFeatures;
    const w = initKind === 'he' ? init.heNormal(rng, n, inFeatures) : init.glorotUniform(rng, n, inFeatures, outFeatures);
    this.weight = this.addParam('weight', be, [outFeatures, inFeatures], w);
    this.bias = bias ? this.addParam('bias', be, [outFeatures], init.zeros(outFeatures)) : null;
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
  describe(): string {
    return `Linear(${this.inFeatures}, ${this.outFeatures})`;
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor { return ops.relu(x); }
  describe(): string { return 'ReLU'; }
}

export class MaxPool2d extends Module {
  constructor(readonly opts: ops.Pool2dOptions) { super(); }
  forward(x: Tensor): Tensor { return ops.maxPool2d(x, this.opts); }
  describe(): string { return `MaxPool2d(k=${this.opts.kernel}, s=${this.opts.stride ?? this.opts.kernel}, p=${this.opts.padding ?? 0})`; }
}

export class AvgPool2d extends Module {
  constructor(readonly opts: ops.Pool2dOptions) { super(); }
  forward(x: Tensor): Tensor { return ops.avgPool2d(x, this.opts); }
  describe(): string { return `AvgPool2d(k=${this.opts.kernel}, s=${this.opts.stride ?? this.opts.kernel}, p=${this.opts.padding ?? 0})`; }
}

export class Flatten extends Module {
  forward(x: Tensor): Tensor { return ops.flatten(x); }
  describe(): string { return 'Flatten'; }
}

// Dropout's mask seed (docs/reliability.md, "Interruption"): while the training loop has set
// the step (setTrainingStep), the seed is drawn from a stream keyed by (layer seed, step), so a
// run resumed from a checkpoint draws the same masks as the uninterrupted run. Without a step
// (benchmarks, tests that call forward directly) each call takes the next number of the
// layer's own stream, as before.
let trainingStep: number | null = null;

/** Called by the training loop before each step's forward pass; null when training ends. */
export function setTrainingStep(step: number | null): void {
  trainingStep = step;
}

/**
 * While a training step is captured into a CUDA graph (src/train/graph-step.ts), the kernels
 * are recorded once and replayed every step, so a seed passed as a kernel argument would give
 * every step the same mask. Each Dropout then hands `seedOf` to the capture instead and reads
 * its seed from the device buffer it gets back, which the graph's runner fills with
 * seedOf(step) before every replay: the masks are the eager loop's, step for step.
 */
export interface DeviceSeeds {
  seedBuffer(seedOf: (step: number) => number): BufferHandle;
}
let deviceSeeds: DeviceSeeds | null = null;

/** Set by graph-step.ts around a capture; null otherwise. */
export function setDeviceSeeds(s: DeviceSeeds | null): void {
  deviceSeeds = s;
}

export class Dropout extends Module {
  private readonly rng: Rng;
  constructor(readonly p: number, private readonly seed: number) {
    super();
    this.rng = new Rng(seed, 'dropout');
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const at = (step: number) => new Rng(this.seed, `dropout@${step}`).nextU32();
    if (deviceSeeds) return ops.dropout(x, this.p, deviceSeeds.seedBuffer(at));
    return ops.dropout(x, this.p, trainingStep === null ? this.rng.nextU32() : at(trainingStep));
  }
  describe(): string { return `Dropout(${this.p})`; }
}

export class Sequential extends Module {
  readonly layers: Module[];
  constructor(layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.addChild(String(i), l));
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const l of this.layers) h = l.forward(h);
    return h;
  }
  describe(): string {
    return this.layers.map((l) => l.describe()).join(' -> ');
  }
}
