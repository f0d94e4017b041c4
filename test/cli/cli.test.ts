// The CLI's bad-input paths: each user error is one line on stderr naming the problem, exit
// status 2, and no stack trace. Runs the compiled CLI (dist/cli.js, built by `pretest`).
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CLI, ROOT, runCli } from '../helpers/cli.js';

const MNIST = resolve(ROOT, '../shared/datasets/mnist');
const run = runCli;

function expectUserError(r: { status: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.status).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^imagerate: error: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe('imagerate CLI, bad input', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'imagerate-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has been built', () => {
    expect(existsSync(CLI)).toBe(true);
  });

  it('refuses an unknown model, naming the valid ones', () => {
    expectUserError(run('train', 'lenet6'), /unknown model 'lenet6'.*lenet5/);
  });

  it('refuses an unknown dataset', () => {
    expectUserError(run('train', 'lenet5', '--dataset', 'imagenet-9000'), /imagenet-9000.*unknown dataset/);
  });

  it('refuses an unknown backend', () => {
    expectUserError(run('train', 'lenet5', '--backend', 'tpu'), /unknown backend 'tpu'/);
  });

  it('refuses a batch larger than the dataset', () => {
    expectUserError(run('train', 'lenet5', '--batch', '20000', '--epochs', '1'), /--batch 20000 is larger than the training set \(8000 images/);
  });

  it('refuses batch 0 and a negative learning rate', () => {
    expectUserError(run('train', 'lenet5', '--batch', '0'), /--batch must be a positive integer/);
    expectUserError(run('train', 'lenet5', '--lr', '-1'), /--lr must be a positive number/);
  });

  it.skipIf(!existsSync(MNIST))('names a truncated IDX file', () => {
    const d = join(dir, 'truncated');
    spawnSync('mkdir', ['-p', d]);
    const images = gunzipSync(readFileSync(join(MNIST, 't10k-images-idx3-ubyte.gz')));
    writeFileSync(join(d, 't10k-images-idx3-ubyte'), images.subarray(0, 5000));
    writeFileSync(join(d, 't10k-labels-idx1-ubyte'), gunzipSync(readFileSync(join(MNIST, 't10k-labels-idx1-ubyte.gz'))));
    expectUserError(run('train', 'lenet5', '--test-dataset', d, '--epochs', '1'), /t10k-images-idx3-ubyte.*truncated/);
  });

  it.skipIf(!existsSync(MNIST))('names an IDX file with the wrong magic number', () => {
    const d = join(dir, 'badmagic');
    spawnSync('mkdir', ['-p', d]);
    const images = Buffer.from(gunzipSync(readFileSync(join(MNIST, 't10k-images-idx3-ubyte.gz'))));
    images.writeUInt32BE(0x00000804, 0);
    writeFileSync(join(d, 't10k-images-idx3-ubyte'), images);
    writeFileSync(join(d, 't10k-labels-idx1-ubyte'), gunzipSync(readFileSync(join(MNIST, 't10k-labels-idx1-ubyte.gz'))));
    expectUserError(run('train', 'lenet5', '--test-dataset', d, '--epochs', '1'), /t10k-images-idx3-ubyte.*magic/);
  });

  it('rejects a non-numeric option value', () => {
    const r = run('train', 'lenet5', '--epochs', 'many');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--epochs expects a number, got 'many'/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('lists the models and reports backend availability', () => {
    const m = run('models');
    expect(m.status).toBe(0);
    expect(m.stdout).toMatch(/lenet5/);
    const i = run('info', '--json');
    expect(i.status).toBe(0);
    const info = JSON.parse(i.stdout.trim().split('\n').pop()!);
    const cuda = info.backends.find((b: { name: string }) => b.name === 'cuda');
    expect(cuda).toBeDefined();
    if (!cuda.available) {
      console.log(`cuda unavailable here: ${cuda.reason}`);
      expect(cuda.reason.length).toBeGreaterThan(0);
    }
  });
});
