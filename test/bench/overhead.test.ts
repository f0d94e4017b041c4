// `bench overhead` records (src/bench/overhead.ts): the empty fence, one op's enqueue cost and
// LeNet-5 at batch 1, timed with Benchmark.js on the cpu backend. A tiny maxTime: this checks
// that every record carries its conditions and sane values, never how fast anything is.
import { describe, expect, it } from 'vitest';
import { formatOverheadTable, runOverheadBench } from '../../src/bench/overhead.js';
import { isMissing, recordKey, type BenchRecord } from '../../src/bench/record.js';
import { buildReport } from '../../src/report/html.js';

const REQUIRED = ['imagerate', 'date', 'host', 'backend', 'kind', 'name', 'shape', 'mode', 'batch', 'precision', 'data', 'loading', 'threads',
  'warmup', 'iters', 'timing', 'peakGflops', 'pctOfPeak', 'framework', 'notes'] as const;

describe('bench overhead (cpu)', () => {
  it('writes one complete record per figure, with Benchmark.js statistics in the notes', async () => {
    const figures = await runOverheadBench({ backend: 'cpu', maxTime: 0.02, minSamples: 5, minTime: 0.005, warmup: 1 });
    const missing = figures.filter((f) => isMissing(f.line));
    expect(missing.map((f) => f.line)).toEqual([]);
    const records = figures.map((f) => f.line as BenchRecord);
    expect(records.map((r) => r.name)).toEqual(['overhead/fence', 'overhead/enqueue', 'overhead/lenet5-forward', 'overhead/lenet5-train-step']);
    for (const r of records) {
      for (const k of REQUIRED) expect(r, `${r.name}: ${k}`).toHaveProperty(k);
      expect(r.kind).toBe('kernel');
      expect(r.suite).toBe('overhead');
      expect(r.backend).toBe('cpu');
      expect(r.precision).toBe('fp32');
      expect(r.framework).toBeNull();
      expect(r.imagerate.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(r.host.cores).toBeGreaterThan(0);
      expect(r.timing.method).toBe('wall-clock');
      for (const v of [r.timing.medianMs, r.timing.p10Ms, r.timing.p90Ms, r.timing.minMs, r.timing.maxMs]) {
        expect(Number.isFinite(v)).toBe(true);
        expect(v).toBeGreaterThan(0);
      }
      expect(r.timing.p10Ms).toBeLessThanOrEqual(r.timing.medianMs);
      expect(r.timing.medianMs).toBeLessThanOrEqual(r.timing.p90Ms);
      expect(r.iters).toBeGreaterThan(0);
      expect(r.notes).toMatch(/^Benchmark\.js \d+\.\d+\.\d+ \(deferred\): \d+ sampled cycles of ~\d+ calls/);
      expect(r.notes).toMatch(/mean [\d.]+ us per call \+- [\d.]+ % \(rme\)/);
      expect(r.notes).toMatch(/one call = /);
    }
    const [fence, enqueue, forward, step] = records;
    expect(fence.mode).toBeNull();
    expect(enqueue.shape).toEqual({ op: 'fill', elements: 1, opsPerCall: 1000 });
    expect(enqueue.notes).toMatch(/call - fence [\d.]+ us, its fastest cycle/);
    for (const [r, mode] of [[forward, 'inference'], [step, 'training']] as const) {
      expect(r.mode).toBe(mode);
      expect(r.batch).toBe(1);
      expect(r.shape.model).toBe('lenet5');
      expect(r.shape.backendOps).toBeGreaterThan(0);
    }
    // A training step makes more backend calls than a forward (backward + update).
    expect(Number(step.shape.backendOps)).toBeGreaterThan(Number(forward.shape.backendOps));
    // Keys are stable across runs (nothing measured in the shape) and distinct.
    expect(new Set(records.map(recordKey)).size).toBe(records.length);
    for (const f of figures) expect(f.stats!.meanSeconds).toBeGreaterThan(0);

    expect(formatOverheadTable(figures)).toMatch(/overhead\/lenet5-train-step/);
    const html = buildReport([{ file: 'run/overhead.jsonl', records }]);
    expect(html).toMatch(/<h2 id="overhead">Host-side overhead<\/h2>/);
    expect(html).toMatch(/overhead\/enqueue/);
  }, 60_000);
});
