// Numerical failure (docs/reliability.md): a huge learning rate makes LeNet-5 diverge within a
// few steps; training must stop with a one-line message giving the step, the epoch, the first
// parameter (forward order) whose gradient went non-finite and the hint to lower --lr, and
// must not write a checkpoint after it. Dynamic loss scaling (the fp16 default, allowed on cpu)
// does not change that: the forward pass overflows, which no scale can help, so the run stops
// the same way instead of skipping steps (skipping: test/train/loss-scale.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TRAIN_DEFAULTS, runTraining, type TrainCliOptions } from '../../src/train/run.js';
import { DivergenceError } from '../../src/train/loop.js';
import { GradientCheck } from '../../src/autograd/finite.js';
import { getBackend } from '../../src/backend/registry.js';
import { Tensor } from '../../src/tensor.js';
import { readSafetensors } from '../../src/train/safetensors.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist', 'cli.js');
const LENET5_PARAMS = ['0.weight', '0.bias', '3.weight', '3.bias', '7.weight', '7.bias', '9.weight', '9.bias', '11.weight', '11.bias'];

function opts(o: Partial<TrainCliOptions>): TrainCliOptions {
  return { ...TRAIN_DEFAULTS, model: 'lenet5', epochs: 1, batch: 8, lr: 1e6, warmupEpochs: 0, target: null, threads: 1, ...o };
}

describe('divergence', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'imagerate-diverge-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('GradientCheck names the first parameter (forward order) whose gradient holds a NaN/Inf', async () => {
    const be = getBackend('cpu');
    const ps = ['a', 'b', 'c'].map((n) => { const t = Tensor.fromArray(be, [3], [1, 2, 3]); t.name = n; return [n, t] as [string, Tensor]; });
    ps[1][1].grad = Tensor.fromArray(be, [3], [1, NaN, Infinity]);
    ps[2][1].grad = Tensor.fromArray(be, [3], [Infinity, 0, 0]);
    ps[0][1].grad = Tensor.fromArray(be, [3], [3, 4, 0]);
    const check = new GradientCheck(be, ps);
    const stats = GradientCheck.decode(await check.enqueue(), 3);
    expect(Array.from(stats.nonFinite)).toEqual([0, 2, 1]);
    expect(stats.sumsq[0]).toBe(25);
    expect(check.firstNonFinite(stats)).toMatchObject({ index: 1, name: 'b', count: 2, size: 3, affected: 2 });
    ps[1][1].grad!.dispose(); ps[1][1].grad = null; // no gradient counts as finite
    ps[2][1].grad!.dispose(); ps[2][1].grad = Tensor.fromArray(be, [3], [0, 0, 1]);
    expect(check.firstNonFinite(GradientCheck.decode(await check.enqueue(), 3))).toBeNull();
    check.dispose();
    for (const [, t] of ps) t.dispose();
  });

  it('runTraining with --lr 1e6 stops at the step it diverged, naming the layer and the hint', async () => {
    const err = await runTraining(opts({})).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(DivergenceError);
    const e = err as DivergenceError;
    console.log(`divergence: ${e.message}`);
    expect(e.step).toBeGreaterThanOrEqual(1);
    expect(e.step).toBeLessThan(20);
    expect(e.epoch).toBe(1);
    expect(LENET5_PARAMS).toContain(e.layer);
    expect(e.message).toMatch(new RegExp(`^training diverged at step ${e.step} \\(epoch 1, step ${e.step + 1} of 1000\\): loss is .*; ` +
      `first non-finite gradient \\(forward order\\): ${e.layer!.replace('.', '\\.')} \\(\\d+ of \\d+ values; \\d+ of 10 parameters affected\\).*; lower --lr \\(now 1\\.25e\\+5 after batch scaling\\)$`));
  }, 60_000);

  it('under dynamic loss scaling --lr 1e6 still stops at the step, naming the layer and the hint', async () => {
    const steps: { step: number; skipped?: boolean; lossScale?: number }[] = [];
    const err = await runTraining(opts({ lossScale: 'dynamic' }), { onStep: (i) => steps.push(i) }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(DivergenceError);
    const e = err as DivergenceError;
    console.log(`divergence with dynamic loss scaling: ${e.message}`);
    expect(steps.length).toBe(e.step); // every step before it was reported, scaled by 2^16
    expect(steps.every((s) => s.lossScale === 2 ** 16)).toBe(true);
    expect(e.step).toBeGreaterThanOrEqual(1);
    expect(e.step).toBeLessThan(20);
    expect(LENET5_PARAMS).toContain(e.layer);
    expect(e.message).toMatch(new RegExp(`^training diverged at step ${e.step} \\(epoch 1, step ${e.step + 1} of 1000\\): loss is .*; ` +
      `first non-finite gradient \\(forward order\\): ${e.layer!.replace('.', '\\.')} \\(\\d+ of \\d+ values; \\d+ of 10 parameters affected\\).*; lower --lr \\(now 1\\.25e\\+5 after batch scaling\\)$`));
  }, 60_000);

  it('writes no checkpoint after the divergence: the last one holds finite weights from before it', async () => {
    const save = join(dir, 'diverge.safetensors');
    const err = await runTraining(opts({ save, saveEvery: 1 })).then(() => null, (e: unknown) => e) as DivergenceError;
    expect(err).toBeInstanceOf(DivergenceError);
    expect(existsSync(save)).toBe(true);
    const { tensors, metadata } = await readSafetensors(save);
    const meta = JSON.parse(metadata.imagerate) as { step: number };
    expect(meta.step).toBeLessThanOrEqual(err.step); // saved after step meta.step - 1 completed
    for (const name of LENET5_PARAMS) {
      const v = tensors.get(name)!.data as Float32Array;
      expect(v.every(Number.isFinite), name).toBe(true);
    }
  }, 60_000);

  it('the CLI prints one line and exits with status 2', () => {
    const r = spawnSync(process.execPath, [CLI, 'train', 'lenet5', '--lr', '1e6', '--epochs', '1', '--batch', '8', '--threads', '1', '--warmup-epochs', '0'],
      { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^imagerate: error: training diverged at step \d+ \(epoch 1, .*first non-finite gradient \(forward order\): \d+\.(weight|bias) .*lower --lr/);
  }, 120_000);
});
