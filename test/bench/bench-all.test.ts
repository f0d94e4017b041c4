// `imagerate bench all --quick`: the whole pipeline in seconds (kernels, models with the
// framework columns, a per-layer profile), written as JSONL with the HTML report beside it.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchAllPlan, runBenchAll } from '../../src/bench/bench-all.js';

describe('bench all', () => {
  it('the default plan: lenet + cifar kernel suites, lenet5 / cifar10-tf / resnet50 both modes, end-to-end MNIST, profiles', () => {
    const p = benchAllPlan(false);
    expect(p.suites).toEqual(['lenet', 'cifar']);
    expect(p.models.map((m) => m.model)).toEqual(['lenet5', 'lenet5', 'cifar10-tf', 'resnet50']);
    expect(p.models.every((m) => m.modes.includes('training') && m.modes.includes('inference'))).toBe(true);
    expect(p.models.find((m) => m.data === 'mnist')).toBeTruthy();
    expect(p.models.find((m) => m.model === 'resnet50')!.iters).toBeLessThanOrEqual(6);
  });

  it('--quick writes records of every kind and a report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imagerate-all-'));
    try {
      const r = await runBenchAll({ outDir: dir, quick: true, frameworks: ['onnxruntime', 'tfjs-wasm'] });
      expect(existsSync(r.jsonl)).toBe(true);
      const kinds = new Set(r.records.map((x) => x.kind));
      for (const k of ['kernel', 'model', 'layer', 'missing']) expect(kinds.has(k as never)).toBe(true);
      const html = readFileSync(r.html, 'utf8');
      expect(html).toMatch(/lenet5 &middot; training/);
      expect(html).toMatch(/<canvas id="roofline">/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
