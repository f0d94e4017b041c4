// `imagerate pack` end to end with the compiled CLI (dist/cli.js, built by `pretest`): a tiny
// ImageFolder in, a readable pack out, the summary line, and the user errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { PackReader } from '../../src/data/records.js';
import { tempDir } from './helpers.js';
import { CLI, runCli } from '../helpers/cli.js';

const run = runCli;

function expectUserError(r: { status: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.status).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines[lines.length - 1]).toMatch(/^imagerate: error: /);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('imagerate pack', () => {
  let dir: string;
  let cleanup: () => void;
  beforeAll(async () => {
    ({ dir, cleanup } = tempDir());
    for (const [c, v] of [['cats', 40], ['dogs', 200]] as const) {
      mkdirSync(join(dir, 'imgs', c), { recursive: true });
      for (let i = 0; i < 3; i++) {
        await sharp({ create: { width: 20 + i, height: 16, channels: 3, background: { r: v, g: v + i, b: 7 } } })
          .png().toFile(join(dir, 'imgs', c, `${i}.png`));
      }
    }
  });
  afterAll(() => cleanup());

  it('has been built', () => {
    expect(existsSync(CLI)).toBe(true);
  });

  it('packs a tiny folder and prints images/s', () => {
    const out = join(dir, 'out', 'train.pack');
    const r = run('pack', join(dir, 'imgs'), out, '--workers', '2', '--resize', '8x8');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^packed 6 images of 2 classes into .*train\.pack \([\d.]+ MiB\) in [\d.]+ s: \d+ images\/s decoded with 2 workers, resized to 8x8\n$/);
    const p = PackReader.open(out);
    expect(p.count).toBe(6);
    expect(p.classNames).toEqual(['cats', 'dogs']);
    const rec = p.read(4);
    expect([rec.label, rec.h, rec.w, rec.c]).toEqual([1, 8, 8, 3]);
    expect(rec.pixels[0]).toBe(200);
    p.close();
    expect(readdirSync(join(dir, 'out'))).toEqual(['train.pack']);
  });

  it('--json prints the summary as JSON; --resize N keeps the aspect ratio', () => {
    const out = join(dir, 'short.pack');
    const r = run('pack', join(dir, 'imgs'), out, '--workers', '1', '--resize', '8', '--json');
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout.trim());
    expect(s).toMatchObject({ images: 6, skipped: 0, classes: 2, workers: 1 });
    const p = PackReader.open(out);
    expect([p.read(2).h, p.read(2).w]).toEqual([8, 11]); // 22x16 -> shorter side 8
    p.close();
  });

  it('skips a corrupt file with a warning, or fails naming it with --on-error fail', () => {
    const bad = join(dir, 'bad');
    mkdirSync(join(bad, 'x'), { recursive: true });
    writeFileSync(join(bad, 'x', 'broken.jpg'), 'not a jpeg at all');
    writeFileSync(join(bad, 'x', 'ok.png'), '');
    const skip = run('pack', bad, join(dir, 'bad1.pack'), '--workers', '1');
    expect(skip.status).toBe(2); // both files unreadable: nothing to pack
    expect(skip.stderr).toMatch(/imagerate: warning: .*broken\.jpg: cannot decode image.*; skipped/);
    expect(skip.stderr).toMatch(/imagerate: error: .*no image could be decoded \(2 files tried\)/);
    const s2 = join(dir, 'mixed');
    mkdirSync(join(s2, 'y'), { recursive: true });
    writeFileSync(join(s2, 'y', 'broken.jpg'), 'not a jpeg at all');
    spawnSync('cp', [join(dir, 'imgs', 'cats', '0.png'), join(s2, 'y', 'good.png')]);
    const ok = run('pack', s2, join(dir, 'mixed.pack'), '--workers', '1');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/packed 1 images of 1 classes .*, 1 skipped in/);
    expect(ok.stderr).toMatch(/^imagerate: warning: .*mixed\/y\/broken\.jpg: cannot decode image.*; skipped\n$/);
    const fail = run('pack', s2, join(dir, 'mixed2.pack'), '--on-error', 'fail');
    expectUserError(fail, /imagerate: error: y\/broken\.jpg: cannot decode image/);
    expect(existsSync(join(dir, 'mixed2.pack'))).toBe(false);
  });

  it('refuses bad options and a missing folder with one-line errors', () => {
    expect(run('pack', join(dir, 'imgs'), join(dir, 'x.pack'), '--resize', 'huge').stderr).toMatch(/--resize expects N \(shorter side\) or WxH/);
    expect(run('pack', join(dir, 'imgs'), join(dir, 'x.pack'), '--on-error', 'ignore').stderr).toMatch(/--on-error expects skip or fail/);
    expect(run('pack', join(dir, 'imgs'), join(dir, 'x.pack'), '--workers', 'two').stderr).toMatch(/--workers expects an integer/);
    expectUserError(run('pack', join(dir, 'nowhere'), join(dir, 'x.pack')), /nowhere: directory not found/);
  });
});
