// Checkpoints: save → load → restore gives the same weights and the same outputs; a checkpoint
// of another model, or of other shapes, is refused with both sides named; an interrupted save
// leaves the previous file; and an interrupted training run resumed from its checkpoint (at an
// epoch boundary or mid-epoch) ends with bit-identical weights to the uninterrupted run.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBackend } from '../../src/backend/registry.js';
import type { Backend } from '../../src/backend/backend.js';
import { MODELS, getModelSpec } from '../../src/models/index.js';
import { Rng } from '../../src/util/rng.js';
import { Module } from '../../src/nn/module.js';
import { Tensor } from '../../src/tensor.js';
import { tidy } from '../../src/autograd/scope.js';
import { noGrad } from '../../src/autograd/tape.js';
import { Sgd } from '../../src/train/sgd.js';
import { type CheckpointInput, loadCheckpoint, restoreModel, restoreOptimiser, saveCheckpoint } from '../../src/train/checkpoint.js';
import { encodeSafetensors } from '../../src/train/safetensors.js';
import { TRAIN_DEFAULTS, runTraining, type TrainCliOptions } from '../../src/train/run.js';
import { ImagerateDataError } from '../../src/data/dataset.js';
import { loadEmbeddedMnist } from '../../src/data/mnist-embedded.js';

/** A module with a parameter and float and int buffers (as batch norm will have). */
class WithBuffers extends Module {
  constructor(be: Backend, seed: number) {
    super();
    this.addParam('weight', be, [2, 3], Float32Array.from({ length: 6 }, (_, i) => seed + i / 8));
    this.addBuffer('running_mean', be, [3], Float32Array.of(seed, -seed, 0.25));
    const steps = Tensor.fromArray(be, [1], Int32Array.of(seed * 100));
    this.ownBuffers.push(['num_batches_tracked', steps]);
  }
  forward(x: Tensor): Tensor { return x; }
  describe(): string { return 'WithBuffers'; }
}

async function values(m: Module): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const [n, t] of [...m.namedParameters(), ...m.namedBuffers()]) out.set(n, Array.from(await t.data()));
  return out;
}

function info(modelName: string, module: Module, extra: Partial<CheckpointInput> = {}): CheckpointInput {
  const spec = getModelSpec(modelName);
  return {
    modelName, module, buildOpts: { numClasses: spec.numClasses, inputSize: spec.input[1] }, inputShape: spec.input, classNames: '0123456789'.split(''),
    normalisation: { mean: [0.1307], std: [0.3081] }, transform: 'mnist', epoch: 3, step: 375, seed: 7, bestTop1: 0.97,
    training: { options: { batch: 64 } }, ...extra,
  };
}

describe('checkpoints', () => {
  let dir: string;
  const be = getBackend('cpu');
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'imagerate-ckpt-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('save → load → restore gives identical weights and identical outputs', async () => {
    const spec = getModelSpec('lenet5');
    const a = spec.build(be, 1);
    const b = spec.build(be, 2);
    const f = join(dir, 'lenet5.safetensors');
    const meta = await saveCheckpoint(f, info('lenet5', a));
    expect(meta.tensors.parameters).toEqual(a.namedParameters().map(([n]) => n));
    const ckpt = await loadCheckpoint(f);
    expect(ckpt.meta).toEqual(meta);
    expect(ckpt.meta).toMatchObject({ format: 'imagerate-checkpoint', version: 1, model: { name: 'lenet5', opts: { numClasses: 10, inputSize: 28 } },
      inputShape: [1, 28, 28], transform: 'mnist', epoch: 3, step: 375, stepInEpoch: 0, seed: 7, bestTop1: 0.97 });
    expect(await values(b)).not.toEqual(await values(a));
    restoreModel(b, ckpt, 'lenet5');
    expect(await values(b)).toEqual(await values(a));

    const ds = loadEmbeddedMnist({ split: 'test' });
    const x = ds.images.subarray(0, 16 * 784);
    const logits = async (m: Module) => {
      m.eval();
      const out = noGrad(() => tidy(() => m.forward(Tensor.fromArray(be, [16, 1, 28, 28], x))));
      const v = await out.data();
      out.dispose();
      return Array.from(v);
    };
    expect(await logits(b)).toEqual(await logits(a));
    a.dispose();
    b.dispose();
  });

  it('keeps buffers (F32 and I32) and the optimiser momentum', async () => {
    const a = new WithBuffers(be, 3);
    const opt = new Sgd(a.parameters(), { momentum: 0.9, weightDecay: 0 });
    const [, w] = a.namedParameters()[0];
    w.grad = Tensor.fromArray(be, w.shape, Float32Array.from({ length: 6 }, (_, i) => i - 2.5));
    opt.step(0.1);
    const f = join(dir, 'buffers.safetensors');
    const meta = await saveCheckpoint(f, info('lenet5', a, { optimiser: opt }));
    expect(meta.tensors).toEqual({ parameters: ['weight'], buffers: ['running_mean', 'num_batches_tracked'], optimiser: ['optim.weight'] });
    const ckpt = await loadCheckpoint(f);
    expect(ckpt.tensors.get('num_batches_tracked')).toMatchObject({ dtype: 'I32', shape: [1] });

    const b = new WithBuffers(be, 5);
    const opt2 = new Sgd(b.parameters(), { momentum: 0.9, weightDecay: 0 });
    restoreModel(b, ckpt, 'lenet5');
    restoreOptimiser(opt2, b, ckpt);
    expect(await values(b)).toEqual(await values(a));
    expect(await values(b)).toEqual(new Map([['weight', expect.any(Array)], ['running_mean', [3, -3, 0.25]], ['num_batches_tracked', [300]]]));
    const v1 = await opt.state().get(w)!.data();
    const v2 = await opt2.state().get(b.namedParameters()[0][1])!.data();
    expect(Array.from(v2)).toEqual(Array.from(v1));
    opt.dispose(); opt2.dispose(); a.dispose(); b.dispose();
  });

  it.skipIf(!Object.hasOwn(MODELS, 'resnet20'))('keeps batch-norm running statistics (resnet20): same eval outputs after restore', async () => {
    const spec = getModelSpec('resnet20');
    const a = spec.build(be, 1);
    const rng = new Rng(3, 'bn-input');
    const x = Float32Array.from({ length: 4 * 3 * 32 * 32 }, () => rng.normal());
    noGrad(() => tidy(() => { a.forward(Tensor.fromArray(be, [4, 3, 32, 32], x)); })); // training mode: updates running stats
    const f = join(dir, 'resnet20.safetensors');
    const meta = await saveCheckpoint(f, info('resnet20', a, { normalisation: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, transform: 'cifar-crop32' }));
    expect(meta.tensors.buffers).toContain('bn1.running_mean');
    expect(meta.tensors.buffers.filter((n) => n.endsWith('.running_var'))).toHaveLength(meta.tensors.buffers.length / 2);
    const b = spec.build(be, 2);
    restoreModel(b, await loadCheckpoint(f), 'resnet20');
    const av = await values(a);
    expect(av.get('bn1.running_mean')!.some((v) => v !== 0)).toBe(true);
    expect(await values(b)).toEqual(av);
    const logits = async (m: Module) => {
      m.eval();
      const out = noGrad(() => tidy(() => m.forward(Tensor.fromArray(be, [4, 3, 32, 32], x))));
      const v = Array.from(await out.data());
      out.dispose();
      return v;
    };
    expect(await logits(b)).toEqual(await logits(a));
    a.dispose();
    b.dispose();
  });

  it('refuses a checkpoint of another model, naming both', async () => {
    const caffe = getModelSpec('lenet-caffe').build(be, 1);
    const f = join(dir, 'caffe.safetensors');
    await saveCheckpoint(f, info('lenet-caffe', caffe));
    const lenet = getModelSpec('lenet5').build(be, 1);
    const ckpt = await loadCheckpoint(f);
    expect(() => restoreModel(lenet, ckpt, 'lenet5')).toThrow(`checkpoint ${f} holds model lenet-caffe, but lenet5 was asked for`);
    // Same name, different tensors (a checkpoint edited or written by another version):
    ckpt.meta.model.name = 'lenet5';
    expect(() => restoreModel(lenet, ckpt, 'lenet5')).toThrow(/tensor 0\.weight has shape \[20, 1, 5, 5\] in the checkpoint but \[6, 1, 5, 5\] in model lenet5/);
    caffe.dispose();
    lenet.dispose();
  });

  it('names missing and unexpected tensors, and changes nothing on a mismatch', async () => {
    const spec = getModelSpec('lenet5');
    const a = spec.build(be, 1);
    const b = spec.build(be, 2);
    const f = join(dir, 'l5.safetensors');
    await saveCheckpoint(f, info('lenet5', a));
    const ckpt = await loadCheckpoint(f);
    const before = await values(b);
    ckpt.meta.tensors.parameters = ckpt.meta.tensors.parameters.filter((n) => n !== '11.bias');
    expect(() => restoreModel(b, ckpt, 'lenet5')).toThrow(/lacks tensor 11\.bias of model lenet5/);
    ckpt.meta.tensors.parameters.push('11.bias', '12.weight');
    expect(() => restoreModel(b, ckpt, 'lenet5')).toThrow(/has tensors that model lenet5 does not: 12\.weight/);
    ckpt.meta.tensors.parameters.pop();
    ckpt.tensors.set('11.bias', { dtype: 'F32', shape: [11], data: new Float32Array(11) });
    expect(() => restoreModel(b, ckpt, 'lenet5')).toThrow(/tensor 11\.bias has shape \[11\] in the checkpoint but \[10\] in model lenet5/);
    expect(await values(b)).toEqual(before);
    a.dispose();
    b.dispose();
  });

  it('leaves the previous checkpoint and no temporary file when a save fails midway', async () => {
    const spec = getModelSpec('lenet5');
    const a = spec.build(be, 1);
    const f = join(dir, 'atomic.safetensors');
    await saveCheckpoint(f, info('lenet5', a));
    const before = readFileSync(f);
    const b = spec.build(be, 2);
    b.namedParameters()[6][1].dispose(); // the writer reaches this tensor after writing six others
    await expect(saveCheckpoint(f, info('lenet5', b))).rejects.toThrow(/used after dispose/);
    expect(readFileSync(f).equals(before)).toBe(true);
    expect(readdirSync(dir).filter((x) => x.includes('.tmp-'))).toEqual([]);
    await expect(loadCheckpoint(f)).resolves.toBeDefined();
    a.dispose();
    b.dispose();
  });

  it('names the file when it is missing, foreign or has bad metadata', async () => {
    await expect(loadCheckpoint(join(dir, 'missing.safetensors'))).rejects.toThrow(/^missing\.safetensors: no such file/);
    const plain = join(dir, 'plain.safetensors');
    writeFileSync(plain, encodeSafetensors({ w: { dtype: 'F32', shape: [1], data: Float32Array.of(1) } }, { format: 'pt' }));
    await expect(loadCheckpoint(plain)).rejects.toThrow(/^plain\.safetensors: not an imagerate checkpoint/);
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, encodeSafetensors({}, { imagerate: '{"format": "imagerate-checkpoint", "version": 1' }));
    await expect(loadCheckpoint(bad)).rejects.toThrow(/^bad\.safetensors: checkpoint metadata is not valid JSON/);
    const a = getModelSpec('lenet5').build(be, 1);
    const ok = join(dir, 'ok.safetensors');
    await saveCheckpoint(ok, info('lenet5', a));
    const meta = JSON.parse((await import('../../src/train/safetensors.js')).parseSafetensors(readFileSync(ok), ok).metadata.imagerate);
    const { tensors } = await (await import('../../src/train/safetensors.js')).readSafetensors(ok);
    for (const [mutate, re] of [
      [(m: any) => { delete m.model.name; }, /model\.name is missing, expected a model name/],
      [(m: any) => { m.inputShape = [1, 28]; }, /inputShape is \[1,28\], expected \[C, H, W\]/],
      [(m: any) => { m.normalisation.std = [0]; }, /normalisation\.std is \[0\]/],
      [(m: any) => { m.classNames.pop(); }, /9 class names for 10 classes/],
      [(m: any) => { m.version = 99; }, /version 99 is newer/],
      [(m: any) => { m.tensors.parameters.push('ghost'); }, /lists tensor 'ghost' but the file does not hold it/],
    ] as [(m: any) => void, RegExp][]) {
      const m = structuredClone(meta);
      mutate(m);
      writeFileSync(bad, encodeSafetensors(tensors, { imagerate: JSON.stringify(m) }));
      const err = await loadCheckpoint(bad).catch((e) => e);
      expect(err).toBeInstanceOf(ImagerateDataError);
      expect(err.message).toMatch(/^bad\.safetensors: /);
      expect(err.message).toMatch(re);
    }
    a.dispose();
  });
});

describe('resuming training', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'imagerate-resume-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  class Interrupt extends Error {}
  // 2,000 training images (31 steps of 64 per epoch) and threads 1: small, and deterministic.
  const base: TrainCliOptions = { ...TRAIN_DEFAULTS, model: 'lenet5', backend: 'cpu', threads: 1, epochs: 2, target: null, validation: 0.75 };

  async function tensorsOf(file: string): Promise<Map<string, number[]>> {
    const c = await loadCheckpoint(file);
    return new Map([...c.tensors].map(([k, t]) => [k, Array.from(t.data as Float32Array)]));
  }

  it('continues from an epoch-boundary or a mid-epoch checkpoint to bit-identical weights', async () => {
    const full = join(dir, 'full.safetensors');
    const a = await runTraining({ ...base, save: full });
    expect(a.checkpoint).toBe(full);
    expect(a.resumedFrom).toBeNull();
    const want = await tensorsOf(full);
    expect([...want.keys()].filter((k) => k.startsWith('optim.'))).toHaveLength(10);

    // Interrupted after epoch 1 (its checkpoint is written before onEpoch runs), then resumed.
    const part = join(dir, 'part.safetensors');
    await expect(runTraining({ ...base, save: part }, { onEpoch: (e) => { if (e.epoch === 1) throw new Interrupt(); } })).rejects.toThrow(Interrupt);
    expect((await loadCheckpoint(part)).meta).toMatchObject({ epoch: 1, step: 31, stepInEpoch: 0 });
    const b = await runTraining({ ...base, save: part, resume: part });
    expect(b.resumedFrom).toEqual({ file: part, epoch: 1, step: 31 });
    expect(b.history.map((e) => e.epoch)).toEqual([2]);
    expect(b.history[0].trainLoss).toBe(a.history[1].trainLoss);
    expect(b.testTop1).toBe(a.testTop1);
    expect(await tensorsOf(part)).toEqual(want);

    // Interrupted mid-epoch 1 with --save-every 10: the last save is at step 20 (11 batches of
    // epoch 1 left); the resumed run skips the 20 batches already trained on.
    const mid = join(dir, 'mid.safetensors');
    await expect(runTraining({ ...base, save: mid, saveEvery: 10 }, {
      onStep: ({ step }) => { if (step === 25) throw new Interrupt(); },
    })).rejects.toThrow(Interrupt);
    const midMeta = (await loadCheckpoint(mid)).meta;
    expect(midMeta).toMatchObject({ epoch: 0, step: 20, stepInEpoch: 20, bestTop1: null, epochLoss: { count: 20 } });
    const c = await runTraining({ ...base, save: mid, saveEvery: 10, resume: mid });
    expect(c.history.map((e) => e.trainLoss)).toEqual(a.history.map((e) => e.trainLoss));
    expect(await tensorsOf(mid)).toEqual(want);
    expect((await loadCheckpoint(mid)).meta).toMatchObject({ epoch: 2, step: 62, stepInEpoch: 0, bestTop1: a.bestTop1 });
  }, 120_000);

  it('refuses to resume another model, another batch size, or a finished run', async () => {
    const f = join(dir, 'one.safetensors');
    await runTraining({ ...base, epochs: 1, save: f });
    await expect(runTraining({ ...base, model: 'lenet-caffe', resume: f })).rejects.toThrow(`checkpoint ${f} holds model lenet5, but lenet-caffe was asked for`);
    await expect(runTraining({ ...base, batch: 32, resume: f })).rejects.toThrow(/cannot resume .* with --batch 32: it was trained with 64/);
    await expect(runTraining({ ...base, epochs: 1, resume: f })).rejects.toThrow(/already completed 1 of 1 epochs/);
    await expect(runTraining({ ...base, saveEvery: 5 })).rejects.toThrow(/--save-every needs --save/);
    await expect(runTraining({ ...base, save: join(dir, 'no', 'dir', 'x.safetensors') })).rejects.toThrow(/directory .* does not exist or is not writable/);
  }, 60_000);
});
