// Loss scaling (--loss-scale, src/train/loss-scale.ts; docs/reliability.md, "Numerical failure"):
// the scaler's state machine (growth after the interval, backoff, skip, the stop when skipping
// cannot help), its checkpoint round trip, and lenet5 training on cpu with a scale so large
// that steps overflow: the scaler must back off, skip exactly those steps, and the run must
// still learn and resume to identical weights. The cpu backend computes in fp32 only, so the
// overflow is provoked with an initial scale of 2^127 instead of fp16's narrow range.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_GROWTH_INTERVAL, DEFAULT_INIT_SCALE, DynamicLossScaler, FP32_MAX, MAX_CONSECUTIVE_SKIPS, parseLossScale, type LossScaleSpec,
} from '../../src/train/loss-scale.js';
import { TRAIN_DEFAULTS, runTraining, type TrainCliOptions } from '../../src/train/run.js';
import { DivergenceError, trainModel } from '../../src/train/loop.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/train/safetensors.js';
import { getBackend } from '../../src/backend/registry.js';
import { getModelSpec } from '../../src/models/index.js';
import { resolveDataset } from '../../src/data/resolve.js';
import { subset } from '../../src/data/dataset.js';
import { datasetSource } from '../../src/data/source.js';
import { warmupCosine } from '../../src/train/schedule.js';
import { record } from '../../src/autograd/tape.js';
import { Tensor } from '../../src/tensor.js';
import { UserError } from '../../src/util/errors.js';
import { runCli } from '../helpers/cli.js';

const spec = (o: Partial<LossScaleSpec>): LossScaleSpec => ({ ...parseLossScale('dynamic', 'fp32'), ...o });

describe('--loss-scale', () => {
  it('defaults to dynamic (2^16, x2 every 2000 steps, x0.5 on overflow) with fp16 and to none otherwise', () => {
    expect(parseLossScale(undefined, 'fp16')).toEqual({ mode: 'dynamic', initScale: 2 ** 16, growthInterval: 2000, growthFactor: 2, backoffFactor: 0.5 });
    expect(DEFAULT_INIT_SCALE).toBe(65536);
    expect(DEFAULT_GROWTH_INTERVAL).toBe(2000);
    for (const p of ['fp32', 'tf32', 'bf16']) expect(parseLossScale(undefined, p).mode).toBe('none');
    expect(parseLossScale('none', 'fp16').mode).toBe('none');
    expect(parseLossScale('dynamic:2^127', 'fp32')).toMatchObject({ mode: 'dynamic', initScale: 2 ** 127 });
    expect(parseLossScale('1024', 'fp32')).toMatchObject({ mode: 'static', initScale: 1024 });
    expect(parseLossScale('2^-3', 'fp32')).toMatchObject({ mode: 'static', initScale: 0.125 });
  });

  it('refuses anything else up front, naming the option', async () => {
    for (const bad of ['auto', '0', '-1', 'NaN', 'Infinity', '2^128', '1e39', 'dynamic:0', 'dynamic:', '']) {
      expect(() => parseLossScale(bad, 'fp32'), bad).toThrow(UserError);
      expect(() => parseLossScale(bad, 'fp32'), bad).toThrow(/^--loss-scale must be dynamic, dynamic:<initial scale>, none or a scale in \(0, 2\^127\]/);
    }
    const o: TrainCliOptions = { ...TRAIN_DEFAULTS, model: 'lenet5', epochs: 1, target: null, lossScale: 'auto' };
    await expect(runTraining(o)).rejects.toThrow(/^--loss-scale must be .*, got 'auto'$/);
    const r = runCli('train', 'lenet5', '--loss-scale', 'x2');
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toMatch(/^imagerate: error: --loss-scale must be .*, got 'x2'$/);
  });
});

describe('the scaler', () => {
  it('grows by 2 after growthInterval finite steps in a row, and a skip restarts the count', () => {
    const s = new DynamicLossScaler(spec({ initScale: 8, growthInterval: 3 }));
    expect([s.update(true), s.update(true)]).toEqual(['step', 'step']);
    expect(s.scale).toBe(8);
    s.update(true);
    expect(s.scale).toBe(16);
    s.update(true); s.update(true);
    expect(s.update(false)).toBe('skip'); // two finite steps, then a skip: no growth, backoff
    expect(s.scale).toBe(8);
    s.update(true); s.update(true);
    expect(s.scale).toBe(8);
    s.update(true);
    expect(s.scale).toBe(16);
    expect(s.state()).toEqual({ mode: 'dynamic', scale: 16, goodSteps: 0, skippedSteps: 1, consecutiveSkips: 0 });
  });

  it('halves on every non-finite step, counts the skips, and never grows past the largest float32', () => {
    const s = new DynamicLossScaler(spec({ initScale: 2 ** 127, growthInterval: 1 }));
    expect(s.update(true)).toBe('step');
    expect(s.scale).toBe(2 ** 127); // 2^128 is Inf in float32
    expect(FP32_MAX).toBeLessThan(2 ** 128);
    for (let i = 1; i <= 5; i++) {
      expect(s.update(false)).toBe('skip');
      expect(s.scale).toBe(2 ** (127 - i));
    }
    expect(s.state()).toMatchObject({ skippedSteps: 5, consecutiveSkips: 5 });
    expect(s.update(true)).toBe('step');
    expect(s.state()).toMatchObject({ scale: 2 ** 123, skippedSteps: 5, consecutiveSkips: 0 });
  });

  it(`is exhausted after more than ${MAX_CONSECUTIVE_SKIPS} skips in a row, or below 2^-24`, () => {
    const s = new DynamicLossScaler(spec({}));
    for (let i = 0; i < MAX_CONSECUTIVE_SKIPS; i++) s.update(false);
    expect(s.exhausted()).toBe(false);
    s.update(false);
    expect(s.exhausted()).toBe(true);
    const low = new DynamicLossScaler(spec({ initScale: 2 ** -24 }));
    low.update(false);
    expect(low.scale).toBe(2 ** -25);
    expect(low.exhausted()).toBe(true);
  });

  it('static: skips non-finite steps but keeps its scale', () => {
    const s = new DynamicLossScaler(parseLossScale('512', 'fp32'));
    for (let i = 0; i < 3000; i++) s.update(true);
    expect(s.update(false)).toBe('skip');
    expect(s.state()).toEqual({ mode: 'static', scale: 512, goodSteps: 0, skippedSteps: 1, consecutiveSkips: 1 });
  });

  it('restores a saved state of the same mode; another mode starts afresh', () => {
    const a = new DynamicLossScaler(spec({}));
    a.update(false); a.update(true); a.update(true);
    const b = new DynamicLossScaler(spec({}));
    b.restore(a.state());
    expect(b.state()).toEqual(a.state());
    const c = new DynamicLossScaler(parseLossScale('64', 'fp32'));
    c.restore(a.state());
    expect(c.state()).toMatchObject({ scale: 64, skippedSteps: 0 });
  });
});

describe('checkpoints keep the scaler state', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'imagerate-lossscale-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('save → load round trip; files written without it load as null; bad state is refused', async () => {
    const be = getBackend('cpu');
    const m = getModelSpec('lenet5');
    const net = m.build(be, 1);
    const file = join(dir, 'ls.safetensors');
    const state = { mode: 'dynamic' as const, scale: 2 ** 13, goodSteps: 17, skippedSteps: 4, consecutiveSkips: 1 };
    const input = {
      modelName: 'lenet5', module: net, buildOpts: { numClasses: 10, inputSize: 28 }, inputShape: m.input, classNames: '0123456789'.split(''),
      normalisation: { mean: [0.1307], std: [0.3081] }, transform: 'mnist', epoch: 0, step: 21, seed: 1, bestTop1: null,
    };
    await saveCheckpoint(file, { ...input, lossScale: state });
    const back = await loadCheckpoint(file);
    expect(back.meta.lossScale).toEqual(state);
    const s = new DynamicLossScaler(spec({}));
    s.restore(back.meta.lossScale!);
    expect(s.state()).toEqual(state);

    // The same file with the metadata field removed (as written before loss scaling existed), or broken.
    const { tensors, metadata } = await readSafetensors(file);
    const entries = new Map<string, TensorToWrite>([...tensors].map(([k, t]) => [k, { dtype: t.dtype as 'F32', shape: t.shape, data: async () => t.data as Float32Array }]));
    const meta = JSON.parse(metadata.imagerate) as Record<string, unknown>;
    delete meta.lossScale;
    await writeSafetensors(file, entries, { imagerate: JSON.stringify(meta) });
    expect((await loadCheckpoint(file)).meta.lossScale).toBeNull();
    await writeSafetensors(file, entries, { imagerate: JSON.stringify({ ...meta, lossScale: { ...state, scale: -1 } }) });
    await expect(loadCheckpoint(file)).rejects.toThrow(/checkpoint metadata: lossScale is .*, expected \{mode, scale, goodSteps, skippedSteps, consecutiveSkips\} or null/);
    net.dispose();
  });
});

describe('training with loss scaling (lenet5 on cpu)', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'imagerate-lossscale-train-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // 2,000 training images (the first quarter of the embedded split), evaluated on the other
  // 6,000; batch 8 gives 250 steps per epoch.
  const base: TrainCliOptions = { ...TRAIN_DEFAULTS, model: 'lenet5', backend: 'cpu', threads: 1, epochs: 1, batch: 8, warmupEpochs: 0, target: null, validation: 0.75 };
  type Step = { step: number; loss: number; skipped: boolean; scale: number };
  const recorder = () => {
    const steps: Step[] = [];
    return { steps, hooks: { onStep: (i: { step: number; loss: number; skipped?: boolean; lossScale?: number }) => steps.push({ step: i.step, loss: i.loss, skipped: i.skipped ?? false, scale: i.lossScale ?? NaN }) } };
  };
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

  it('an initial scale of 2^127 overflows: the scaler backs off, skips those steps, and training learns', async () => {
    const r = recorder();
    const s = await runTraining({ ...base, lossScale: 'dynamic:2^127' }, r.hooks);
    const skipped = r.steps.filter((x) => x.skipped);
    console.log(`loss scale 2^127, lenet5 batch 8: skipped steps ${skipped.map((x) => `${x.step} (scale 2^${Math.log2(x.scale)})`).join(', ')}; ` +
      `final scale 2^${Math.log2(s.lossScale.finalScale!)}; test top-1 ${(s.testTop1 * 100).toFixed(2)} %`);
    expect(skipped.length).toBeGreaterThanOrEqual(1);
    expect(r.steps[skipped[0].step].scale).toBe(2 ** 127);
    // Every skip halves the scale for the next step; a finite step keeps it (2,000 finite steps are needed to grow).
    for (let i = 1; i < r.steps.length; i++) {
      const prev = r.steps[i - 1];
      expect(r.steps[i].scale, `step ${r.steps[i].step}`).toBe(prev.skipped ? prev.scale / 2 : prev.scale);
    }
    expect(s.lossScale).toMatchObject({ mode: 'dynamic', finalScale: 2 ** (127 - skipped.length), skippedSteps: skipped.length });
    expect(s.lossScale.description).toBe('dynamic (initial 2^127, x2 after 2000 finite steps, x0.5 on overflow)');
    expect(mean(r.steps.slice(-50).map((x) => x.loss))).toBeLessThan(mean(r.steps.slice(0, 50).map((x) => x.loss)) / 2);
    expect(s.testTop1).toBeGreaterThan(0.8);
  }, 60_000);

  it('a power-of-two scale that never overflows trains bit-identically to no scaling', async () => {
    const a = recorder(), b = recorder();
    const none = await runTraining({ ...base, batch: 64, lossScale: 'none' }, a.hooks);
    const fixed = await runTraining({ ...base, batch: 64, lossScale: '2^20' }, b.hooks);
    expect(none.lossScale).toEqual({ mode: 'none', description: 'none', finalScale: null, skippedSteps: 0 });
    expect(fixed.lossScale).toMatchObject({ mode: 'static', finalScale: 2 ** 20, skippedSteps: 0 });
    expect(b.steps.map((x) => x.loss)).toEqual(a.steps.map((x) => x.loss));
    expect(fixed.testTop1).toBe(none.testTop1);
  }, 60_000);

  it('a run resumed from a mid-epoch checkpoint continues with the saved scale, to identical weights', async () => {
    const o = { ...base, epochs: 2, lossScale: 'dynamic:2^127' };
    const full = join(dir, 'full.safetensors');
    const a = await runTraining({ ...o, save: full });
    const mid = join(dir, 'mid.safetensors');
    await expect(runTraining({ ...o, save: mid, saveEvery: 100 }, {
      onStep: ({ step }) => { if (step === 320) throw new Error('interrupted'); },
    })).rejects.toThrow('interrupted');
    const saved = (await loadCheckpoint(mid)).meta;
    expect(saved).toMatchObject({ step: 300, lossScale: { mode: 'dynamic' } });
    expect(saved.lossScale!.scale).toBeLessThan(2 ** 127);
    const b = await runTraining({ ...o, save: mid, saveEvery: 100, resume: mid });
    expect(b.lossScale).toEqual(a.lossScale);
    expect(b.history.map((e) => e.trainLoss)).toEqual(a.history.slice(1).map((e) => e.trainLoss)); // resumed in epoch 2
    const tensors = async (f: string) => new Map([...(await loadCheckpoint(f)).tensors].map(([k, t]) => [k, Array.from(t.data as Float32Array)]));
    expect(await tensors(mid)).toEqual(await tensors(full));
    expect((await loadCheckpoint(mid)).meta.lossScale).toEqual((await loadCheckpoint(full)).meta.lossScale);
  }, 120_000);

  it(`stops with a DivergenceError when gradients stay non-finite for more than ${MAX_CONSECUTIVE_SKIPS} steps in a row`, async () => {
    // lenet5 whose 7.weight gets a NaN gradient on every step while the loss stays finite: no
    // scale can help, so the loop must stop rather than skip forever.
    const be = getBackend('cpu');
    const m = getModelSpec('lenet5');
    const net = m.build(be, 1);
    const w7 = new Map(net.namedParameters()).get('7.weight')!;
    const forward = net.forward.bind(net);
    net.forward = (x: Tensor) => {
      const y = forward(x);
      const out = Tensor.empty(be, y.shape);
      be.copy(y.size, y.buf, 0, out.buf, 0);
      return record(out, 'nanGradTo7Weight', [y, w7], (gy) => [gy as Tensor, Tensor.filled(be, w7.shape, NaN)]);
    };
    const full = resolveDataset('mnist', 'train');
    const idx = (n: number) => Array.from({ length: n }, (_, i) => i);
    const train = datasetSource(subset(full, idx(512)), { shuffle: true, seed: 1 });
    const test = datasetSource(subset(full, idx(64)), { shuffle: false, seed: 1 });
    const seen: boolean[] = [];
    const err = await trainModel(be, net, 'lenet5', m.input, train, test, {
      epochs: 1, batch: 8, lr: 0.01, momentum: 0.9, weightDecay: 0, nesterov: false, labelSmoothing: 0, seed: 1, target: null, evalBatch: 64,
      lossScale: parseLossScale('dynamic', 'fp32'),
    }, warmupCosine(0.01, 64, 0), { onStep: (i) => seen.push(i.skipped ?? false) }).then(() => null, (e: unknown) => e);
    net.dispose();
    expect(err).toBeInstanceOf(DivergenceError);
    const e = err as DivergenceError;
    console.log(`exhausted: ${e.message}`);
    expect(seen).toEqual(Array(MAX_CONSECUTIVE_SKIPS).fill(true));
    expect(e).toMatchObject({ step: MAX_CONSECUTIVE_SKIPS, epoch: 1, layer: '7.weight' });
    expect(e.message).toMatch(new RegExp(`^training diverged at step ${MAX_CONSECUTIVE_SKIPS} \\(epoch 1, step ${MAX_CONSECUTIVE_SKIPS + 1} of 64\\): ` +
      `the loss scaler skipped ${MAX_CONSECUTIVE_SKIPS + 1} steps in a row \\(limit ${MAX_CONSECUTIVE_SKIPS}; scale now 0\\.0313\\): gradients are not finite at any scale; ` +
      'loss is [\\d.]+; first non-finite gradient \\(forward order\\): 7\\.weight \\(48000 of 48000 values; 1 of 10 parameters affected\\); lower --lr \\(now 0\\.0100 after batch scaling\\)$'));
  }, 60_000);

  it('the CLI reports the loss scaling in the summary table and the JSON', () => {
    const r = runCli('train', 'lenet5', '--loss-scale', 'dynamic:2^127', '--batch', '8', '--epochs', '1', '--validation', '0.75',
      '--warmup-epochs', '0', '--threads', '1', '--json');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const json = JSON.parse(lines[lines.length - 1]) as { lossScale: { mode: string; finalScale: number; skippedSteps: number } };
    expect(json.lossScale.mode).toBe('dynamic');
    expect(json.lossScale.skippedSteps).toBeGreaterThanOrEqual(1);
    const table = r.stderr.replace(/[│\s]+/g, ' '); // the summary table wraps long cells
    expect(table).toContain(`loss scaling dynamic (initial 2^127, x2 after 2000 finite steps, x0.5 on overflow): final scale 2^${127 - json.lossScale.skippedSteps}, ` +
      `${json.lossScale.skippedSteps} step${json.lossScale.skippedSteps === 1 ? '' : 's'} skipped (non-finite gradients)`);
  }, 60_000);
});
