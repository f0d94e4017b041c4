// Shapes and arguments refused up front (docs/reliability.md): a wrong input size names the
// layer, and unknown backend/precision, batch 0 and a negative learning rate are refused
// before any data is read, naming the option. (A checkpoint of another model or with other
// shapes: test/train/checkpoint.test.ts, "refuses a checkpoint of another model" and "names
// missing and unexpected tensors".)
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { backendAvailability, getBackend } from '../../src/backend/registry.js';
import { BackendUnavailableError } from '../../src/backend/backend.js';
import { getModelSpec } from '../../src/models/index.js';
import { Tensor } from '../../src/tensor.js';
import { tidy } from '../../src/autograd/scope.js';
import { ShapeError, UserError } from '../../src/util/errors.js';
import { TRAIN_DEFAULTS, runTraining, type TrainCliOptions } from '../../src/train/run.js';

const CLI = join(resolve(import.meta.dirname, '../..'), 'dist', 'cli.js');

function forward(model: string, shape: number[]): () => void {
  return () => tidy(() => {
    const be = getBackend('cpu');
    const net = getModelSpec(model).build(be, 1);
    try {
      net.forward(Tensor.filled(be, shape, 0.5));
    } finally {
      net.dispose();
    }
  });
}

function opts(o: Partial<TrainCliOptions>): TrainCliOptions {
  return { ...TRAIN_DEFAULTS, model: 'lenet5', epochs: 1, target: null, ...o };
}

describe('wrong input sizes name the layer', () => {
  it('resnet20 fed 1x28x28 digits: its first conv', () => {
    expect(forward('resnet20', [2, 1, 28, 28])).toThrow(ShapeError);
    expect(forward('resnet20', [2, 1, 28, 28])).toThrow('conv2d in layer conv1: input [2, 1, 28, 28] has 1 channels but weight [16, 3, 3, 3] expects 3');
  });
  it('lenet5 fed 32x32: the first fully connected layer', () => {
    expect(forward('lenet5', [2, 1, 32, 32])).toThrow('linear in layer 7: input [2, 576] has 576 features but weight [120, 400] expects 400');
  });
  it('cifar10-tf fed 32x32 instead of 24x24 crops: local3 (layer 9 of its Sequential)', () => {
    expect(forward('cifar10-tf', [1, 3, 32, 32])).toThrow(/^linear in layer 9: input \[1, 4096\] has 4096 features but weight \[384, 2304\] expects 2304$/);
  });
  it('resnet20 fed one 4x4 image: the batch-norm layer whose batch variance is undefined', () => {
    expect(forward('resnet20', [1, 3, 4, 4])).toThrow(/^batchNorm2d in layer layer3\.0\.bn1: training needs more than 1 value per channel \(input \[1, 64, 1, 1\]\)/);
  });
  it('training a model on a dataset of another shape is refused before the first step', async () => {
    await expect(runTraining(opts({ model: 'resnet20' }))).rejects.toThrow(/^model resnet20 expects 3x32x32 images but dataset mnist.* gives 1x28x28$/);
  });
});

describe('options refused up front, naming the option', () => {
  const cases: [string, Partial<TrainCliOptions>, RegExp][] = [
    ['unknown backend', { backend: 'tpu' }, /^unknown backend 'tpu' \(valid: cpu, cuda, webgpu\)$/],
    ['unknown precision', { precision: 'fp8' }, /^unknown --precision 'fp8' \(valid: fp32, tf32, bf16, fp16\)$/],
    ['bf16 on the cpu backend', { precision: 'bf16' }, /^--precision bf16 is not supported on the cpu backend \(it computes in fp32 only; tf32, bf16, fp16 are for GPU backends\)$/],
    ['fp16 on the cpu backend', { precision: 'fp16' }, /--precision fp16 is not supported on the cpu backend/],
    ['batch 0', { batch: 0 }, /^--batch must be a positive integer, got 0$/],
    ['a fractional batch', { batch: 2.5 }, /^--batch must be a positive integer, got 2.5$/],
    ['a negative learning rate', { lr: -0.1 }, /^--lr must be a positive number, got -0.1$/],
    ['a learning rate of 0', { lr: 0 }, /^--lr must be a positive number, got 0$/],
    ['an infinite learning rate', { lr: Infinity }, /^--lr must be a positive number, got Infinity$/],
    ['a negative momentum', { momentum: -1 }, /^--momentum must be in \[0, 1\)/],
    ['0 epochs', { epochs: 0 }, /^--epochs must be a positive integer, got 0$/],
    ['--test-dataset with a folder that has its own test split', { dataset: 'imagefolder:/no/such/dir', testDataset: 'mnist-test' },
      /^--test-dataset is not supported with --dataset imagefolder:\/no\/such\/dir \(it has its own test split\)$/],
    ['--validation with CIFAR-10 binaries', { dataset: 'cifar10:/no/such/dir', validation: 0.1 },
      /^--validation is not supported with --dataset cifar10:\/no\/such\/dir \(it has its own test split\)$/],
  ];
  for (const [what, o, message] of cases) {
    it(`runTraining refuses ${what}`, async () => {
      const err = await runTraining(opts(o)).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(message);
    });
  }
  it('a backend that cannot run here says why', async (ctx) => {
    const missing = (await backendAvailability()).find((b) => !b.available);
    if (!missing) {
      console.log('[skip] every backend is available on this machine: no unavailable backend to ask for');
      ctx.skip();
      return;
    }
    const err = await runTraining(opts({ backend: missing.name })).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toBe(`${missing.name} unavailable: ${missing.reason}`);
  });
  it('fp32 is accepted on cpu, and the summary says so', async () => {
    const s = await runTraining(opts({ precision: 'fp32', validation: 0.95, batch: 200, threads: 1 }));
    expect(s.precision).toBe('fp32');
  }, 60_000);

  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  for (const [cmd, args] of [['train', ['train', 'lenet5', '--precision', 'fp16']], ['bench models', ['bench', 'models', '--precision', 'bf16', '--no-pytorch']]] as const) {
    it(`imagerate ${cmd} refuses a precision the cpu backend lacks: one line, status 2`, () => {
      const r = cli(...args);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      // (bench models checks with src/bench/peaks.ts's checkPrecision, whose wording differs)
      expect(r.stderr).toMatch(/^imagerate: error: (--)?precision (fp16|bf16) is not (supported|available) on the cpu backend/);
    });
  }
});
