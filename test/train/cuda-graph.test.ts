// `train --cuda-graph` (src/train/graph-step.ts): the training step captured once into a CUDA
// graph and replayed every step must be the eager run. The same losses step by step, the same
// weights bit for bit, and the same divergence report. The learning rate changes every step
// (warm-up, then cosine), so a rate baked into the graph would show. The dropout model draws a
// new mask every step, so a baked seed would show too. The cuda cases run on a GPU, or in CI on
// the CUDA emulator (scripts/cuda-emu-tests.sh); the refusals run everywhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../src/backend/backend.js';
import { getBackend } from '../../src/backend/registry.js';
import { DivergenceError, trainModel, type TrainConfig, type TrainOutcome } from '../../src/train/loop.js';
import { TRAIN_DEFAULTS, runTraining } from '../../src/train/run.js';
import { cudaGraphRefusal } from '../../src/train/graph-step.js';
import { warmupCosine } from '../../src/train/schedule.js';
import type { LossScaleSpec } from '../../src/train/loss-scale.js';
import { getModelSpec } from '../../src/models/index.js';
import { resolveDataset } from '../../src/data/resolve.js';
import { subset } from '../../src/data/dataset.js';
import { datasetSource } from '../../src/data/source.js';
import { Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../../src/nn/layers.js';
import { BatchNorm2d } from '../../src/nn/norm.js';
import type { CudaBackend } from '../../src/backend/cuda.js';
import type { Module } from '../../src/nn/module.js';
import { Rng } from '../../src/util/rng.js';
import { UserError } from '../../src/util/errors.js';
import { backendAvailable, timeoutFor } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { idxBytes, writeFile } from '../data/helpers.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';

const BATCH = 8;
const idx = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + i);

/** Trains `build(be)` for `epochs` on 4 batches of the embedded MNIST; returns the losses, the weights and the outcome (or the error). */
async function run(be: Backend, build: (be: Backend) => Module, o: { cudaGraph: boolean; epochs?: number; lr?: number; lossScale?: LossScaleSpec }) {
  const full = resolveDataset('mnist', 'train');
  const train = datasetSource(subset(full, idx(0, 4 * BATCH)), { shuffle: true, seed: 5, augment: { translate: 2 } });
  const test = datasetSource(subset(full, idx(4000, 16)), { shuffle: false, seed: 5 });
  const net = build(be);
  const epochs = o.epochs ?? 1, lr = o.lr ?? 0.05;
  const cfg: TrainConfig = {
    epochs, batch: BATCH, lr, momentum: 0.9, weightDecay: 5e-4, nesterov: false, labelSmoothing: 0.1, seed: 5, target: null,
    evalBatch: 16, cudaGraph: o.cudaGraph, lossScale: o.lossScale,
  };
  const losses: number[] = [], rates: number[] = [], scaling: [number | undefined, boolean | undefined][] = [];
  try {
    const out: TrainOutcome | unknown = await trainModel(be, net, 'test', [1, 28, 28], train, test, cfg, warmupCosine(lr, 4 * epochs, 3),
      { onStep: (s) => { losses.push(s.loss); rates.push(s.lr); scaling.push([s.lossScale, s.skipped]); } }).catch((e: unknown) => e);
    const weights = await Promise.all(net.parameters().map(async (p) => Array.from(await p.data())));
    const buffers = await Promise.all(net.namedBuffers().map(async ([, b]) => Array.from(await b.data())));
    return { out, losses, rates, scaling, weights, buffers };
  } finally {
    net.dispose();
  }
}

const lenet5 = (be: Backend) => getModelSpec('lenet5').build(be, 3);
/** Batch norm: its running statistics, updated by every replay, are what the evaluation uses. */
const convBn = (be: Backend) => {
  const rng = new Rng(3, 'init');
  return new Sequential([new Conv2d(be, rng, 1, 4, 3, { padding: 1 }), new BatchNorm2d(be, 4), new ReLU(), new MaxPool2d({ kernel: 2 }),
    new Flatten(), new Linear(be, rng, 4 * 14 * 14, 10, 'glorot')]);
};
/** A small MLP with dropout: each step's mask must be the eager loop's. */
const dropoutMlp = (be: Backend) => {
  const rng = new Rng(3, 'init');
  return new Sequential([new Flatten(), new Linear(be, rng, 784, 32, 'he'), new ReLU(), new Dropout(0.5, 3), new Linear(be, rng, 32, 10, 'glorot')]);
};

describe('train --cuda-graph: refusals', () => {
  it('needs the cuda backend, and says so before training', async () => {
    expect(cudaGraphRefusal('cpu')).toBe('--cuda-graph needs --backend cuda (this run uses cpu)');
    expect(cudaGraphRefusal('cuda')).toBeNull();
    const err = await runTraining({ ...TRAIN_DEFAULTS, model: 'lenet5', target: null, epochs: 1, cudaGraph: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe('--cuda-graph needs --backend cuda (this run uses cpu)');
    const r = await run(getBackend('cpu'), lenet5, { cudaGraph: true });
    expect((r.out as Error).message).toBe('--cuda-graph needs --backend cuda (this run uses cpu)');
    expect(r.losses).toEqual([]);
  });

  it('imagerate train --cuda-graph on cpu: one line, status 2', () => {
    const r = runCli('train', 'lenet5', '--cuda-graph', '--epochs', '1');
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('imagerate: error: --cuda-graph needs --backend cuda (this run uses cpu)');
  });
});

describe.skipIf(!backendAvailable('cuda', 'train --cuda-graph on cuda'))('train --cuda-graph on cuda', () => {
  const be = () => getBackend('cuda');
  /** A guard against hangs (x20 on the CUDA emulator), not a speed assertion. */
  const hangGuard = (ms: number) => timeoutFor('cuda', ms);
  /** After a run the graph is gone, and with it every buffer it held. */
  const nothingHeld = () => expect((be() as CudaBackend).stats()).toMatchObject({ graphs: 0, heldBuffers: 0 });

  it('LeNet-5: the replayed graph gives the eager run\'s losses and weights bit for bit, across an evaluation', async () => {
    const eager = await run(be(), lenet5, { cudaGraph: false, epochs: 2 });
    const graph = await run(be(), lenet5, { cudaGraph: true, epochs: 2 });
    expect(eager.out).not.toBeInstanceOf(Error);
    expect(graph.out).not.toBeInstanceOf(Error);
    expect(new Set(eager.rates).size).toBeGreaterThanOrEqual(7); // a new learning rate (almost) every step
    expect(graph.losses).toEqual(eager.losses);
    expect(graph.weights).toEqual(eager.weights);
    const [e, g] = [eager.out as TrainOutcome, graph.out as TrainOutcome];
    expect(g.epochs.map((s) => [s.testLoss, s.testTop1])).toEqual(e.epochs.map((s) => [s.testLoss, s.testTop1]));
    expect(e.cudaGraph).toBeNull();
    expect(g.cudaGraph).toMatchObject({ captures: 1 });
    expect(g.cudaGraph!.nodes).toBeGreaterThan(20);
    nothingHeld();
    console.log(`lenet5 --cuda-graph: ${g.cudaGraph!.nodes} graph nodes; losses ${graph.losses.map((v) => v.toFixed(4)).join(' ')}`);
  }, hangGuard(120_000));

  it('batch norm: the replays update the running statistics as the eager steps do, and the evaluations agree', async () => {
    const eager = await run(be(), convBn, { cudaGraph: false, epochs: 2 });
    const graph = await run(be(), convBn, { cudaGraph: true, epochs: 2 });
    expect((graph.out as TrainOutcome).cudaGraph?.nodes).toBeGreaterThan(0);
    expect(graph.losses).toEqual(eager.losses);
    expect(graph.weights).toEqual(eager.weights);
    expect(graph.buffers).toEqual(eager.buffers);
    const [e, g] = [eager.out as TrainOutcome, graph.out as TrainOutcome];
    expect(g.epochs.map((s) => s.testLoss)).toEqual(e.epochs.map((s) => s.testLoss));
    nothingHeld();
  }, hangGuard(60_000));

  describe('checkpoints', () => {
    // A tiny IDX data set (64 training and 16 test images of noise), so that a run is a few
    // seconds even on the emulator: 8 steps per epoch at batch 8.
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'imagerate-graph-'));
      const rng = new Rng(11, 'pixels');
      const images = (n: number) => idxBytes([n, 28, 28], Uint8Array.from({ length: n * 784 }, () => rng.int(256)));
      const labels = (n: number) => idxBytes([n], Uint8Array.from({ length: n }, () => rng.int(10)));
      writeFile(dir, 'train-images-idx3-ubyte', images(64));
      writeFile(dir, 'train-labels-idx1-ubyte', labels(64));
      writeFile(dir, 't10k-images-idx3-ubyte', images(16));
      writeFile(dir, 't10k-labels-idx1-ubyte', labels(16));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    class Interrupt extends Error {}
    const tensorsOf = async (file: string) => {
      const c = await loadCheckpoint(file);
      return new Map([...c.tensors].map(([k, t]) => [k, Array.from(t.data as Float32Array)]));
    };

    it('--save-every, interrupted, then --resume, all under --cuda-graph: the uninterrupted eager run\'s losses and checkpoint', async () => {
      const base = { ...TRAIN_DEFAULTS, model: 'lenet5', backend: 'cuda', dataset: dir, epochs: 2, batch: 8, warmupEpochs: 0.5, target: null };
      const full = join(dir, 'full.safetensors'), mid = join(dir, 'mid.safetensors');
      const eager = await runTraining({ ...base, save: full });
      await expect(runTraining({ ...base, cudaGraph: true, save: mid, saveEvery: 5 }, {
        onStep: ({ step }) => { if (step === 7) throw new Interrupt(); },
      })).rejects.toThrow(Interrupt);
      nothingHeld();
      expect((await loadCheckpoint(mid)).meta).toMatchObject({ epoch: 0, step: 5, stepInEpoch: 5 });
      const resumed = await runTraining({ ...base, cudaGraph: true, save: mid, saveEvery: 5, resume: mid });
      expect(resumed.cudaGraph?.nodes).toBeGreaterThan(0);
      expect(resumed.history.map((e) => [e.trainLoss, e.testLoss])).toEqual(eager.history.map((e) => [e.trainLoss, e.testLoss]));
      expect(await tensorsOf(mid)).toEqual(await tensorsOf(full));
      nothingHeld();
    }, hangGuard(60_000));
  });

  it('loss scaling: two graphs per scale, captured again when it changes; the eager run\'s skips, scales, losses and weights', async () => {
    // From 2^127 the scaled gradients overflow: steps are skipped and the scale halves until they
    // are finite; a growth interval of 2 then doubles it every 2 finite steps, into overflows again.
    const lossScale: LossScaleSpec = { mode: 'dynamic', initScale: 2 ** 127, growthInterval: 2, growthFactor: 2, backoffFactor: 0.5 };
    const eager = await run(be(), lenet5, { cudaGraph: false, epochs: 2, lossScale });
    const graph = await run(be(), lenet5, { cudaGraph: true, epochs: 2, lossScale });
    const skips = eager.scaling.filter(([, skipped]) => skipped).length;
    expect(skips).toBeGreaterThan(0);
    expect(skips).toBeLessThan(eager.scaling.length);
    expect(graph.scaling).toEqual(eager.scaling);
    expect(graph.losses).toEqual(eager.losses);
    expect(graph.weights).toEqual(eager.weights);
    const g = graph.out as TrainOutcome;
    expect(g.lossScale).toEqual((eager.out as TrainOutcome).lossScale);
    const changes = eager.scaling.filter(([scale], i) => i > 0 && scale !== eager.scaling[i - 1][0]).length;
    expect(g.cudaGraph!.captures).toBe(1 + changes); // captured again at every change of scale
    nothingHeld();
    console.log(`--cuda-graph with loss scaling: ${skips} of ${eager.scaling.length} steps skipped, ${g.cudaGraph!.captures} captures, scales ${eager.scaling.map(([sc]) => Math.log2(sc!)).join(' ')} (log2)`);
  }, hangGuard(120_000));

  it('dropout draws the eager loop\'s mask every step (the seed is read from device memory)', async () => {
    const eager = await run(be(), dropoutMlp, { cudaGraph: false });
    const graph = await run(be(), dropoutMlp, { cudaGraph: true });
    expect((graph.out as TrainOutcome).cudaGraph?.nodes).toBeGreaterThan(0);
    expect(graph.losses).toEqual(eager.losses);
    expect(graph.weights).toEqual(eager.weights);
    nothingHeld();
  }, hangGuard(60_000));

  it('a diverging graph run stops at the eager run\'s step with the same report', async () => {
    const eager = await run(be(), dropoutMlp, { cudaGraph: false, lr: 1e7 });
    const graph = await run(be(), dropoutMlp, { cudaGraph: true, lr: 1e7 });
    expect(eager.out).toBeInstanceOf(DivergenceError);
    expect(graph.out).toBeInstanceOf(DivergenceError);
    expect((graph.out as DivergenceError).message).toBe((eager.out as DivergenceError).message);
    expect(graph.losses.length).toBeGreaterThan(0); // it diverged after replays, not before the first
    nothingHeld();
    console.log(`diverged under --cuda-graph: ${(graph.out as Error).message}`);
  }, hangGuard(60_000));
});
