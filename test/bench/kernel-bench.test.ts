// `bench kernels` records (src/bench/kernel-bench.ts): every figure with its shape, timing,
// GFLOP/s or GB/s, intensity and % of peak. Tiny iteration counts: this checks the records,
// not the speed.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatKernelTable, runKernelBench } from '../../src/bench/kernel-bench.js';

const ROOT = resolve(import.meta.dirname, '../..');

describe('bench kernels', () => {
  it('lenet suite: one record per kernel and shape, plus the measured bandwidth', async () => {
    const r = await runKernelBench({ suites: ['lenet'], iters: 2, warmup: 1 });
    expect(r.bandwidth.name).toBe('stream-scale');
    expect(r.bandwidth.gbps).toBeGreaterThan(0.5);
    const ops = new Set(r.records.map((x) => x.name));
    for (const op of ['gemm', 'conv2dFwd', 'conv2dBwdData', 'conv2dBwdFilter', 'maxpool2dFwd', 'maxpool2dBwd']) expect(ops.has(op)).toBe(true);
    for (const x of r.records.filter((y) => y.name !== 'stream-scale')) {
      expect(x.kind).toBe('kernel');
      expect(x.suite).toBe('lenet');
      expect(x.iters).toBe(2);
      expect(x.timing.medianMs).toBeGreaterThan(0);
      expect(x.gflops).toBeGreaterThan(0);
      expect(x.gbps).toBeGreaterThan(0);
      expect(x.arithmeticIntensity).toBeGreaterThan(0);
      expect(x.precision).toBe('fp32');
      expect(x.threads).toBeGreaterThan(0);
      if (x.name.includes('pool')) expect(x.pctOfPeak).toBeNull();
      else if (x.peakGflops) expect(x.pctOfPeak).toBeCloseTo((100 * x.gflops!) / x.peakGflops, 6);
    }
    const conv1 = r.records.find((x) => x.name === 'conv2dFwd' && x.shape.c === 1)!;
    expect(conv1.flops).toBe(2 * 64 * 6 * 28 * 28 * 1 * 5 * 5);
    expect(formatKernelTable(r.records)).toMatch(/conv2dBwdFilter/);
  }, 60_000);

  it('the CLI writes JSONL records and refuses an unknown suite', () => {
    const dir = mkdtempSync(join(tmpdir(), 'imagerate-kb-'));
    try {
      const out = join(dir, 'k.jsonl');
      const ok = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'bench', 'kernels', '--suite', 'lenet', '--iters', '1', '--warmup', '0', '--forward-only', '--out', out], { encoding: 'utf8', timeout: 60_000 });
      expect(ok.status).toBe(0);
      expect(ok.stdout).toMatch(/conv2dFwd/);
      const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.some((l) => l.name === 'conv2dBwdData')).toBe(false);
      const bad = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'bench', 'kernels', '--suite', 'vgg'], { encoding: 'utf8', timeout: 30_000 });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/--suite: 'vgg' is not one of lenet, cifar, resnet50, deepbench/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
