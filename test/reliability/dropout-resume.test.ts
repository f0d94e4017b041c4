// Resuming a model with dropout (mnist-tf) reproduces the uninterrupted run exactly: dropout
// masks derive from (layer seed, step) during training (src/nn/layers.ts, setTrainingStep), not
// from an RNG whose state the checkpoint does not hold. In-process: the interrupted run is
// stopped by an exception from onStep mid-epoch, after a --save-every checkpoint.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRAIN_DEFAULTS, runTraining, type TrainCliOptions } from '../../src/train/run.js';
import { readSafetensors } from '../../src/train/safetensors.js';
import { Rng } from '../../src/util/rng.js';

function idx(dims: number[], payload: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, payload]);
}

describe('resuming mnist-tf (dropout)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'imagerate-dropout-'));
    const rng = new Rng(11, 'data');
    for (const [prefix, n] of [['train', 256], ['t10k', 64]] as const) {
      writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), idx([n, 28, 28], new Uint8Array(n * 784).map(() => rng.int(256))));
      writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), idx([n], new Uint8Array(n).map(() => rng.int(10))));
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a run stopped mid-epoch and resumed ends with the uninterrupted weights, bit for bit', async () => {
    const o: TrainCliOptions = { ...TRAIN_DEFAULTS, model: 'mnist-tf', dataset: dir, epochs: 2, batch: 32, threads: 1, seed: 3, warmupEpochs: 0, target: null };
    const full = join(dir, 'full.safetensors'), ck = join(dir, 'ck.safetensors');
    await runTraining({ ...o, save: full });
    const stop = new Error('interrupted');
    await expect(runTraining({ ...o, save: ck, saveEvery: 3 }, { onStep: ({ step }) => { if (step === 12) throw stop; } })).rejects.toBe(stop);
    const mid = JSON.parse((await readSafetensors(ck)).metadata.imagerate) as { step: number; stepInEpoch: number };
    expect(mid).toMatchObject({ step: 12, stepInEpoch: 4 }); // 8 steps an epoch: mid-epoch 2
    await runTraining({ ...o, resume: ck, save: ck, saveEvery: 3 });
    const a = await readSafetensors(full), b = await readSafetensors(ck);
    expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort());
    for (const [name, t] of a.tensors) {
      const u = b.tensors.get(name)!;
      expect(Buffer.compare(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), name).toBe(0);
    }
  }, 120_000);
});
