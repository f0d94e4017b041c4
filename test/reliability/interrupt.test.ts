// Interruption (docs/reliability.md): `imagerate train` is killed with SIGKILL mid-epoch, after
// its first step checkpoint, and resumed with --resume. Checks that
//   (a) at most the unfinished --save-every interval was lost (the checkpoint's step against
//       the last step the killed run reported),
//   (b) the loss curve continues: every step the resumed run takes has exactly the loss the
//       uninterrupted run had at that step (and the killed run, where it got that far),
//   (c) the resumed run ends with exactly the uninterrupted run's weights, buffers and
//       momentum (one thread, fixed seed: the CPU backend is deterministic).
// LeNet-5 on the embedded MNIST split (8,000 images), batch 16: 500 steps an epoch, 2 epochs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readSafetensors } from '../../src/train/safetensors.js';

const CLI = join(resolve(import.meta.dirname, '../..'), 'dist', 'cli.js');
const EVERY = 50;
const STEPS_PER_EPOCH = 500;
const KILL_AFTER_STEP = 130; // mid-epoch 1, after checkpoints at steps 50 and 100
const ENV = { ...process.env, IMAGERATE_PROGRESS_SECONDS: '0' }; // one progress line per step, full-precision loss
const args = (save: string) => ['train', 'lenet5', '--epochs', '2', '--batch', '16', '--threads', '1', '--seed', '7', '--save', save, '--save-every', String(EVERY)];

/** Global step -> loss, from the per-step progress lines on stderr. */
function losses(stderr: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of stderr.matchAll(/^epoch (\d+): step (\d+)\/(\d+), loss (\S+),/gm)) {
    out.set((Number(m[1]) - 1) * Number(m[3]) + Number(m[2]) - 1, Number(m[4]));
  }
  return out;
}

async function readCheckpoint(file: string) {
  const { tensors, metadata } = await readSafetensors(file);
  return { tensors, meta: JSON.parse(metadata.imagerate) as { step: number; epoch: number; stepInEpoch: number } };
}

describe('SIGKILL mid-epoch, then --resume', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'imagerate-interrupt-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loses at most the unfinished interval, continues the loss curve and ends with the uninterrupted weights', async () => {
    // The uninterrupted run.
    const full = join(dir, 'full.safetensors');
    const ref = spawnSync(process.execPath, [CLI, ...args(full)], { encoding: 'utf8', env: ENV, timeout: 300_000 });
    expect(ref.status, ref.stderr.slice(-2000)).toBe(0);
    const refLoss = losses(ref.stderr);
    expect(refLoss.size).toBe(2 * STEPS_PER_EPOCH);

    // The run that is killed.
    const ck = join(dir, 'ck.safetensors');
    const child = spawn(process.execPath, [CLI, ...args(ck)], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let killedAt = -1;
    const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_code, signal) => res(signal)));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      if (killedAt < 0) {
        const seen = losses(stderr);
        const last = Math.max(-1, ...seen.keys());
        if (last >= KILL_AFTER_STEP && existsSync(ck)) {
          killedAt = last;
          child.kill('SIGKILL');
        }
      }
    });
    expect(await exited).toBe('SIGKILL');
    const killedLoss = losses(stderr);
    const lastReported = Math.max(...killedLoss.keys());
    expect(lastReported).toBeLessThan(STEPS_PER_EPOCH - 1); // mid-epoch 1

    // (a) the checkpoint is intact and at most the unfinished interval was lost.
    const saved = await readCheckpoint(ck);
    expect(saved.meta.epoch).toBe(0);
    expect(saved.meta.step % EVERY).toBe(0);
    expect(saved.meta.stepInEpoch).toBe(saved.meta.step);
    const lost = lastReported + 1 - saved.meta.step; // steps completed (and reported) after the save
    console.log(`interrupt: killed after step ${lastReported} was reported; checkpoint at step ${saved.meta.step}; ${lost} steps to redo (interval ${EVERY})`);
    expect(lost).toBeGreaterThanOrEqual(0);
    expect(lost).toBeLessThanOrEqual(EVERY);

    // The resumed run.
    const res = spawnSync(process.execPath, [CLI, 'train', 'lenet5', '--resume', ck, '--save', ck, '--save-every', String(EVERY), '--threads', '1'],
      { encoding: 'utf8', env: ENV, timeout: 300_000 });
    expect(res.status, res.stderr.slice(-2000)).toBe(0);
    const resLoss = losses(res.stderr);

    // (b) the curve continues where the checkpoint left it, step for step.
    expect(Math.min(...resLoss.keys())).toBe(saved.meta.step);
    expect(resLoss.size).toBe(2 * STEPS_PER_EPOCH - saved.meta.step);
    for (const [s, v] of resLoss) {
      expect(v, `step ${s}`).toBe(refLoss.get(s));
      if (killedLoss.has(s)) expect(v, `step ${s} (killed run)`).toBe(killedLoss.get(s));
    }

    // (c) the same weights, buffers and momentum as the uninterrupted run, bit for bit.
    const a = await readCheckpoint(full), b = await readCheckpoint(ck);
    expect(b.meta.step).toBe(a.meta.step);
    expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort());
    for (const [name, t] of a.tensors) {
      const u = b.tensors.get(name)!;
      expect(Buffer.compare(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), name).toBe(0);
    }
  }, 600_000);
});
