// `imagerate train --save/--resume` and `imagerate predict` through the compiled CLI
// (dist/cli.js, built by `pretest`): a short training run saves a checkpoint, the CLI resumes
// it taking the recipe from the checkpoint, and predict classifies PNGs of digits from the
// embedded MNIST test split (a smoke test: an easy digit must come out right). Bad input
// (missing or corrupt image, unknown model, missing checkpoint) is one line naming the thing.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { loadEmbeddedMnist, MNIST_MEAN, MNIST_STD } from '../../src/data/mnist-embedded.js';
import { encodeSafetensors, parseSafetensors } from '../../src/train/safetensors.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist', 'cli.js');

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectUserError(r: { status: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^imagerate: error: /);
  expect(lines[0]).toMatch(pattern);
}

interface Prediction { image: string; top: { rank: number; class: string; index: number; probability: number }[] }

describe('imagerate train --save/--resume and predict', () => {
  let dir: string;
  let ckpt: string;
  const images: string[] = []; // digit d at images[d]: the first test image of class d
  const EASY = 1; // the smoke test's digit (p > 0.99 after one epoch)

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'imagerate-predict-'));
    ckpt = join(dir, 'lenet5.safetensors');
    const test = loadEmbeddedMnist({ split: 'test' });
    for (let d = 0; d < 10; d++) {
      const i = Array.from(test.labels).indexOf(d);
      const px = Buffer.alloc(784);
      for (let j = 0; j < 784; j++) px[j] = Math.round(Math.min(1, Math.max(0, test.images[i * 784 + j] * MNIST_STD + MNIST_MEAN)) * 255);
      const f = join(dir, `digit-${d}.png`);
      await sharp(px, { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(f);
      images.push(f);
    }
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('trains with --save and resumes with the recipe taken from the checkpoint', () => {
    const a = run('train', 'lenet5', '--epochs', '1', '--warmup-epochs', '0.2', '--save', ckpt, '--json');
    expect(a.status, a.stderr).toBe(0);
    const sa = JSON.parse(a.stdout.trim().split('\n').pop()!);
    expect(sa.checkpoint).toBe(ckpt);
    expect(sa.testTop1).toBeGreaterThan(0.85);
    expect(existsSync(ckpt)).toBe(true);

    // --epochs is given again (to train on); --warmup-epochs 0.2 comes from the checkpoint.
    const ckpt2 = join(dir, 'resumed.safetensors');
    const b = run('train', 'lenet5', '--resume', ckpt, '--epochs', '2', '--save', ckpt2, '--json');
    expect(b.status, b.stderr).toBe(0);
    const sb = JSON.parse(b.stdout.trim().split('\n').pop()!);
    expect(sb.resumedFrom).toEqual({ file: ckpt, epoch: 1, step: 125 });
    expect(sb.schedule).toMatch(/^linear warm-up 25 steps, cosine decay over 250 steps/);
    expect(sb.history.map((e: { epoch: number }) => e.epoch)).toEqual([2]);
    expect(sb.checkpoint).toBe(ckpt2);
    expect(b.stdout).not.toContain('resumed from'); // with --json the table goes to stderr
    expect(b.stderr).toContain('resumed from');
  }, 120_000);

  it('classifies PNG digits: top-5 table, and JSON Lines with --json', () => {
    const t = run('predict', '--checkpoint', ckpt, images[EASY]);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toContain(images[EASY]);
    expect(t.stdout).toMatch(/rank.*class.*probability/);
    const rows = t.stdout.split('\n').map((l) => /^│\s*(\d+)\s*│\s*(\S+)\s*│\s*([\d.]+) %\s*│$/.exec(l)).filter((m) => m !== null);
    expect(rows.map((m) => Number(m![1])), t.stdout).toEqual([1, 2, 3, 4, 5]);
    expect(rows[0]![2]).toBe(String(EASY));

    const j = run('predict', '--checkpoint', ckpt, '--json', '--top', '3', ...images);
    expect(j.status, j.stderr).toBe(0);
    const lines = j.stdout.trim().split('\n');
    expect(lines).toHaveLength(10);
    const preds = lines.map((l) => JSON.parse(l) as Prediction);
    preds.forEach((p, d) => {
      expect(p.image).toBe(images[d]);
      expect(p.top).toHaveLength(3);
      expect(p.top.map((r) => r.rank)).toEqual([1, 2, 3]);
      for (let k = 1; k < 3; k++) expect(p.top[k].probability).toBeLessThanOrEqual(p.top[k - 1].probability);
      expect(p.top.reduce((s, r) => s + r.probability, 0)).toBeLessThanOrEqual(1 + 1e-9);
      expect(p.top[0].class).toBe(String(p.top[0].index));
    });
    expect(preds[EASY].top[0].class).toBe(String(EASY));
    expect(preds[EASY].top[0].probability).toBeGreaterThan(0.5);
    const right = preds.filter((p, d) => p.top[0].index === d).length;
    console.log(`predict: ${right}/10 digits right after one epoch; '${EASY}' at p = ${preds[EASY].top[0].probability.toFixed(3)}`);
    expect(right).toBeGreaterThanOrEqual(7);
  }, 60_000);

  it('names a missing image, a corrupt image, a missing checkpoint and an unknown model', () => {
    expectUserError(run('predict', '--checkpoint', ckpt, join(dir, 'nope.png')), /nope\.png/);
    const corrupt = join(dir, 'corrupt.png');
    writeFileSync(corrupt, Buffer.concat([readFileSync(images[0]).subarray(0, 40), Buffer.from('garbage')]));
    expectUserError(run('predict', '--checkpoint', ckpt, images[0], corrupt), /corrupt\.png/);
    expectUserError(run('predict', '--checkpoint', join(dir, 'none.safetensors'), images[0]), /none\.safetensors: no such file/);

    const { tensors, metadata } = parseSafetensors(readFileSync(ckpt), ckpt);
    const meta = JSON.parse(metadata.imagerate);
    meta.model.name = 'lenet9';
    const foreign = join(dir, 'lenet9.safetensors');
    writeFileSync(foreign, encodeSafetensors(tensors, { imagerate: JSON.stringify(meta) }));
    expectUserError(run('predict', '--checkpoint', foreign, images[0]), /lenet9\.safetensors holds model 'lenet9', which this imagerate does not know \(valid: .*lenet5/);

    const truncated = join(dir, 'truncated.safetensors');
    writeFileSync(truncated, readFileSync(ckpt).subarray(0, 5000));
    expectUserError(run('predict', '--checkpoint', truncated, images[0]), /truncated\.safetensors: truncated/);
    expectUserError(run('train', 'lenet-caffe', '--resume', ckpt), /holds model lenet5, but lenet-caffe was asked for/);
  }, 60_000);
});
