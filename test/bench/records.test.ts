// Records, keys and the run-vs-run comparison (src/bench/record.ts, src/bench/compare.ts).
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { meaning, readRecords, recordKey, summarise, timingFromSeconds, type BenchRecord, type MissingRecord } from '../../src/bench/record.js';
import { compareRuns, formatCompareTable } from '../../src/bench/compare.js';
import { checkPrecision, gpuPeak, gpuPeakGflops } from '../../src/bench/peaks.js';
import { describeHost, imagerateInfo } from '../../src/bench/host.js';

const host = describeHost();

function model(over: Partial<BenchRecord> = {}, seconds = [0.01, 0.0101, 0.0099]): BenchRecord {
  const timing = timingFromSeconds(seconds);
  return {
    imagerate: imagerateInfo(), date: '2026-11-23T00:00:00Z', host, backend: 'cpu', kind: 'model', name: 'lenet5', shape: { input: [1, 28, 28] },
    mode: 'training', batch: 64, precision: 'fp32', data: 'synthetic', loading: 'compute', threads: 2, warmup: 1, iters: seconds.length, timing,
    imagesPerSec: 64 / (timing.medianMs / 1000), peakGflops: null, pctOfPeak: null, framework: null, notes: '', ...over,
  };
}

describe('records', () => {
  it('summarise gives median and p10/p90 by linear interpolation', () => {
    const s = summarise([5, 1, 4, 2, 3]);
    expect(s.median).toBe(3);
    expect(s.p10).toBeCloseTo(1.4);
    expect(s.p90).toBeCloseTo(4.6);
    expect(s.noisy).toBe(true);
    expect(summarise([1, 1.01, 0.99, 1]).noisy).toBe(false);
  });

  it('keys separate every condition, and kernels by shape', () => {
    const a = model();
    expect(recordKey(a)).toBe(recordKey(model()));
    for (const over of [{ mode: 'inference' as const }, { batch: 32 }, { data: 'mnist' }, { loading: 'end-to-end' as const }, { framework: 'pytorch 2' }, { backend: 'cuda' }]) {
      expect(recordKey(model(over))).not.toBe(recordKey(a));
    }
    const k1 = model({ kind: 'kernel', name: 'conv2dFwd', shape: { n: 1 } }), k2 = model({ kind: 'kernel', name: 'conv2dFwd', shape: { n: 2 } });
    expect(recordKey(k1)).not.toBe(recordKey(k2));
  });

  it('reads JSONL back, and names the line of a bad record', () => {
    const dir = mkdtempSync(join(tmpdir(), 'imagerate-rec-'));
    try {
      const f = join(dir, 'r.jsonl');
      writeFileSync(f, JSON.stringify(model()) + '\n\n' + JSON.stringify(model({ batch: 1 })) + '\n');
      expect(readRecords(f)).toHaveLength(2);
      writeFileSync(f, JSON.stringify(model()) + '\n{oops\n');
      expect(() => readRecords(f)).toThrow(/r\.jsonl:2: not a JSON record/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says what a figure means', () => {
    expect(meaning(model({ batch: 64 }))).toBe('training: forward + backward + SGD update, batch 64, fp32, synthetic data, data loading excluded');
    expect(meaning(model({ mode: 'inference', data: 'mnist', loading: 'end-to-end' }))).toMatch(/^inference: forward only.*data: mnist, data loading included/);
  });
});

describe('compare', () => {
  it('matches records by key, gives B/A ratios, and flags > 5 % on the same machine as noisy', () => {
    const a = [model(), model({ mode: 'inference' }), model({ batch: 1 })];
    const b = [model({}, [0.005, 0.005, 0.005]), model({ mode: 'inference' }, [0.0102, 0.0102, 0.0102]), model({ batch: 2 })];
    const rows = compareRuns(a, b);
    const both = rows.filter((r) => r.a && r.b);
    expect(both).toHaveLength(2);
    expect(both[0].ratio).toBeCloseTo(2, 5);
    expect(both[0].flag).toBe('noisy');
    expect(both[0].why).toMatch(/same machine/);
    expect(both[1].flag).toBe(''); // 2 % apart: agrees
    expect(rows.filter((r) => !r.a || !r.b)).toHaveLength(2);
    const text = formatCompareTable(both, ['a.jsonl', 'b.jsonl'], [a, b]);
    expect(text).toMatch(/2\.00x/);
    expect(text).toMatch(/noisy/);
  });

  it("calls a gap between different machines 'differs', and a wide spread 'noisy'", () => {
    const other = { ...host, cpuModel: 'Other CPU' };
    const rows = compareRuns([model()], [model({ host: other }, [0.02, 0.02, 0.02])]);
    expect(rows[0].flag).toBe('differs');
    expect(rows[0].ratio).toBeCloseTo(0.5, 5);
    const wide = compareRuns([model({}, [0.01, 0.02, 0.03])], [model({}, [0.02, 0.02, 0.02])]);
    expect(wide[0].flag).toBe('noisy');
  });

  it('ignores missing records', () => {
    const m: MissingRecord = { kind: 'missing', imagerate: imagerateInfo(), date: '', for: 'model', name: 'lenet5', mode: 'training', batch: 64, precision: 'fp32', data: 'synthetic', loading: 'compute', backend: 'cpu', framework: 'x', reason: 'r' };
    expect(compareRuns([m], [m])).toHaveLength(0);
  });
});

describe('peaks', () => {
  it('knows the GPUs of the table, dense figures', () => {
    expect(gpuPeak('NVIDIA H100 80GB HBM3')?.name).toMatch(/SXM5/);
    expect(gpuPeakGflops('NVIDIA H100 80GB HBM3', 'fp32')).toBe(67000);
    expect(gpuPeakGflops('NVIDIA A100-SXM4-80GB', 'tf32')).toBe(156000);
    expect(gpuPeakGflops('NVIDIA H200', 'bf16')).toBeCloseTo(989400);
    expect(gpuPeakGflops('Tesla V100-SXM2-16GB', 'bf16')).toBeNull();
    expect(gpuPeak('Some GPU')).toBeNull();
  });

  it('refuses a precision the backend cannot run, naming the backend', () => {
    expect(checkPrecision('cpu', 'fp32')).toBe('fp32');
    expect(() => checkPrecision('cpu', 'bf16')).toThrow(/--precision bf16 is not supported on the cpu backend \(it computes in fp32 only/);
  });
});
