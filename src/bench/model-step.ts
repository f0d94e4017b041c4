// model-step.ts: our side of a model benchmark (model-bench.ts): the data feed (synthetic,
// one batch of a dataset, or batches drawn every step) and the timed loop of steps, each a
// training step (forward + backward + SGD) or a forward, ending with a sync.
//
// CUDA graphs (cudaGraph, `bench models --cuda-graph`, cuda only): after the eager warm-up, one
// step (forward + backward + SGD, or the forward) is captured into a CUDA graph, and each timed
// iteration is one replay of it and a sync. It removes the per-op launch cost that dominates
// small nets at small batches; the records carry `cudaGraph: true` and say so. A captured step
// replays its kernel arguments as captured: the same input buffers, the same learning rate and
// the same dropout seed every step. With compute loading the inputs were uploaded once anyway;
// end to end, each iteration first draws the next batch and uploads it into the captured input
// buffers (Feed.into), as `train --cuda-graph` does (src/train/graph-step.ts, which also moves
// the learning rate and the dropout seeds to device memory; a benchmark keeps them fixed).
import { Tensor } from '../tensor.js';
import { tidy } from '../autograd/scope.js';
import { backward, noGrad } from '../autograd/tape.js';
import { softmaxCrossEntropy } from '../ops/loss.js';
import type { Backend } from '../backend/backend.js';
import type { CudaBackend, CudaGraph } from '../backend/cuda.js';
import type { ModelSpec } from '../models/index.js';
import type { Module } from '../nn/module.js';
import { Sgd } from '../train/sgd.js';
import { prepareSources, TRAIN_DEFAULTS, type TrainCliOptions } from '../train/run.js';
import type { BatchSource } from '../data/source.js';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { BenchMode } from './model-bench.js';

/** A stream of batches for one (mode, batch): synthetic, or drawn from a dataset's BatchSource. */
export interface Feed {
  /** Tensors for the next iteration; `owned`: the step disposes them (drawn for this step only). */
  next(): Promise<{ x: Tensor; y: Tensor; owned: boolean }>;
  /** End to end only: draws the next batch and uploads it into `x` and `y` (a captured graph's inputs). */
  into?(x: Tensor, y: Tensor): Promise<void>;
  describe: string;
  close(): Promise<void>;
}

async function datasetSources(spec: ModelSpec, data: string, seed: number): Promise<{ train: BatchSource; test: BatchSource }> {
  const o: TrainCliOptions = { ...TRAIN_DEFAULTS, model: spec.name, dataset: data, target: null, seed };
  const s = await prepareSources(o, spec);
  const want = spec.input.join('x'), got = s.train.shape.join('x');
  if (want !== got) {
    await s.train.close?.();
    await s.test.close?.();
    throw new UserError(`--data ${data} yields ${got} images but ${spec.name} takes ${want}`);
  }
  return s;
}

export async function makeFeed(be: Backend, spec: ModelSpec, batch: number, mode: BenchMode, data: string, loading: 'compute' | 'end-to-end'): Promise<Feed> {
  const [c, h, w] = spec.input;
  if (data === 'synthetic') {
    const rng = new Rng(1, 'bench-data');
    const x = Tensor.fromArray(be, [batch, c, h, w], new Float32Array(batch * c * h * w).map(() => rng.normal()));
    const y = Tensor.fromArray(be, [batch], Int32Array.from({ length: batch }, () => rng.int(spec.numClasses)));
    return {
      next: async () => ({ x, y, owned: false }), describe: 'synthetic N(0, 1) images uploaded once',
      close: async () => { x.dispose(); y.dispose(); },
    };
  }
  const sources = await datasetSources(spec, data, 1);
  const src = mode === 'training' ? sources.train : sources.test;
  if (src.n < batch) throw new UserError(`--data ${data}: ${src.n} images, fewer than one batch of ${batch}`);
  let epoch = 0;
  let it = src.batches(epoch, batch, { dropLast: true })[Symbol.asyncIterator]();
  const drawHost = async () => {
    let r = await it.next();
    if (r.done) {
      it = src.batches(++epoch, batch, { dropLast: true })[Symbol.asyncIterator]();
      r = await it.next();
    }
    const b = r.value;
    return { x: b.x.subarray(0, b.size * c * h * w), y: b.y.subarray(0, b.size), size: b.size };
  };
  const draw = async () => {
    const b = await drawHost();
    return { x: Tensor.fromArray(be, [b.size, c, h, w], b.x), y: Tensor.fromArray(be, [b.size], b.y) };
  };
  const close = async () => { await sources.train.close?.(); await sources.test.close?.(); };
  const what = `${src.name} (${mode === 'training' ? 'training' : 'evaluation'} source, transform: ${src.transform})`;
  if (loading === 'compute') {
    const first = await draw();
    return {
      next: async () => ({ ...first, owned: false }), describe: `one batch of ${what} uploaded once`,
      close: async () => { first.x.dispose(); first.y.dispose(); await close(); },
    };
  }
  const into = async (x: Tensor, y: Tensor) => {
    const b = await drawHost();
    be.upload(x.buf, b.x);
    be.upload(y.buf, b.y);
  };
  return { next: async () => ({ ...(await draw()), owned: true }), into, describe: `batches drawn from ${what} and uploaded every step (prefetching source)`, close };
}

/**
 * The work of one benchmark step on (x, y), what `--cuda-graph` captures: training = forward,
 * loss, backward and an SGD update at `lr` inside one tidy scope; inference = the forward.
 */
export function benchStep(net: Module, opt: Sgd, mode: BenchMode, lr: number): (x: Tensor, y: Tensor) => void {
  return (x, y) => {
    if (mode === 'training') {
      tidy(() => {
        backward(softmaxCrossEntropy(net.forward(x), y).loss);
        noGrad(() => opt.step(lr));
        opt.zeroGrad();
      });
    } else {
      noGrad(() => tidy(() => { net.forward(x); }));
    }
  };
}

export async function timeOurs(be: Backend, spec: ModelSpec, batch: number, mode: BenchMode, feed: Feed, warmup: number,
  o: { iters: number; targetSeconds?: number; minIters: number; cudaGraph?: boolean }): Promise<number[]> {
  const net = spec.build(be, 1);
  const opt = new Sgd(net.parameters(), { momentum: 0.9, weightDecay: 5e-4 });
  const times: number[] = [];
  const body = benchStep(net, opt, mode, 0.01);
  let graph: CudaGraph | null = null;
  // End to end under a graph: the captured step reads these, and every iteration uploads into them.
  const inputs = o.cudaGraph && feed.into ? { x: Tensor.empty(be, [batch, ...spec.input]), y: Tensor.empty(be, [batch], 'int32') } : null;
  const step = async () => {
    const t0 = performance.now();
    if (graph) {
      if (inputs) await feed.into!(inputs.x, inputs.y);
      graph.replay();
    } else {
      const { x, y, owned } = await feed.next();
      body(x, y);
      if (owned) { x.dispose(); y.dispose(); }
    }
    await be.sync();
    return (performance.now() - t0) / 1000;
  };
  try {
    if (mode === 'inference') net.eval();
    // At least one eager step first: it creates the optimiser's velocity buffers, which a
    // captured first step would re-zero on every replay.
    for (let i = 0; i < Math.max(warmup, o.cudaGraph ? 1 : 0); i++) await step();
    if (o.cudaGraph) {
      // Compute loading: the feed's tensors, the same every step; end to end: `inputs`, which
      // every replay uploads into first (the capture itself runs nothing).
      const { x, y } = inputs ?? await feed.next();
      graph = (be as CudaBackend).captureGraph(() => body(x, y));
      for (let i = 0; i < Math.min(warmup, 3); i++) await step(); // the replays' own warm-up
    }
    let iters = o.iters;
    if (o.targetSeconds !== undefined) {
      const probe = await step();
      times.push(probe);
      iters = Math.min(o.iters, Math.max(o.minIters, Math.ceil(o.targetSeconds / Math.max(probe, 1e-6))));
    }
    while (times.length < iters) times.push(await step());
  } finally {
    graph?.dispose();
    inputs?.x.dispose();
    inputs?.y.dispose();
    opt.dispose();
    net.dispose();
  }
  return times;
}
