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

  it('refuses a negative learning rate', () => {
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

  it('a count option given 0 or a fraction is refused by the option parser, naming it, with status 2', () => {
    for (const args of [['bench', 'kernels', '--batch', '0'], ['train', 'lenet5', '--batch', '0'], ['train', 'lenet5', '--workers', '0'], ['train', 'lenet5', '--threads', '1.5']]) {
      const r = run(...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^imagerate: error: option '${args[2]} <n>' argument '${args[3].replace('.', '\\.')}' is invalid\\. ${args[2]} expects a whole number of at least 1`));
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stdout).toBe('');
    }
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

describe('IMAGERATE_CPU_ADDON', () => {
  // A relative path means the working directory's, as with any path a user types; require()
  // alone would resolve it against dist/backend/ and report the addon missing.
  const built = existsSync(join(ROOT, 'build', 'Release', 'imagerate_cpu.node'));
  it.skipIf(!built)('a relative path is taken from the working directory', () => {
    const r = spawnSync(process.execPath, [CLI, 'info', '--json'], {
      cwd: ROOT, encoding: 'utf8', timeout: 120_000,
      env: { ...process.env, IMAGERATE_CPU_ADDON: 'build/Release/imagerate_cpu.node' },
    });
    expect(r.status).toBe(0);
    const info = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const cpu = info.backends.find((b: { name: string }) => b.name === 'cpu');
    expect(cpu.reason).toBeUndefined();
    expect(cpu.available).toBe(true);
  });
  if (!built) console.log('IMAGERATE_CPU_ADDON test skipped: build/Release/imagerate_cpu.node is not built');
});
