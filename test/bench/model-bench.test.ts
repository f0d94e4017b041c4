// `bench models` records (src/bench/model-bench.ts): FLOPs and TFLOP/s in every record,
// precision refused by name, data loading included or not, and framework columns that are a
// measurement or a reason, never both. Tiny iteration counts: records, not speed.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatModelTable, runModelBench, runPytorchPoints } from '../../src/bench/model-bench.js';
import { readRecords, type BenchRecord, type ResultLine } from '../../src/bench/record.js';
import { getBackend } from '../../src/backend/registry.js';
import { getModelSpec } from '../../src/models/index.js';
import { countFlops } from '../../src/models/flops.js';

const be = getBackend('cpu');

function forwardFlops(name: string): number {
  const spec = getModelSpec(name);
  const net = spec.build(be, 1);
  const f = countFlops(net, be, spec.input).flops;
  net.dispose();
  return f;
}

describe('bench models', () => {
  it('lenet5: training and inference records with FLOPs, TFLOP/s and framework columns', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imagerate-mb-'));
    try {
      const out = join(dir, 'm.jsonl');
      const seen: ResultLine[] = [];
      const rows = await runModelBench({ model: 'lenet5', batches: [4], modes: ['training', 'inference'], warmup: 1, iters: 2, out, onRecord: (r) => seen.push(r) });
      const lines = readRecords(out);
      expect(lines).toHaveLength(seen.length);
      const fwd = forwardFlops('lenet5');
      const ours = lines.filter((r): r is BenchRecord => r.kind === 'model' && r.framework === null);
      expect(ours.map((r) => r.mode)).toEqual(['training', 'inference']);
      for (const r of ours) {
        expect(r.flopsPerImage).toBe(r.mode === 'training' ? 3 * fwd : fwd);
        expect(r.tflops).toBeCloseTo((r.flopsPerImage! * r.imagesPerSec!) / 1e12, 9);
        expect(r.flopsNote).toMatch(r.mode === 'training' ? /x 3 for a training step/ : /forward/);
        expect(r.data).toBe('synthetic');
        expect(r.loading).toBe('compute');
        expect(r.precision).toBe('fp32');
        expect(r.notes).toMatch(r.mode === 'training' ? /^training: forward \+ backward \+ SGD update, batch 4/ : /^inference: forward only/);
      }
      // Every framework for every point: a record or a reason, never both, never neither.
      for (const row of rows) {
        expect(row.frameworks.map((f) => f.framework.split(' ')[0]).sort()).toEqual(['onnxruntime-node', 'pytorch', 'tfjs-wasm']);
        for (const f of row.frameworks) expect((f.record === null) !== (f.unavailable === null)).toBe(true);
      }
      const inf = rows.find((r) => r.ours.mode === 'inference')!;
      const ort = inf.frameworks.find((f) => f.framework.startsWith('onnxruntime'))!;
      expect(ort.record?.imagesPerSec).toBeGreaterThan(0);
      expect(ort.record?.flopsPerImage).toBe(fwd);
      const tr = rows.find((r) => r.ours.mode === 'training')!;
      expect(tr.frameworks.find((f) => f.framework.startsWith('tfjs'))!.unavailable).toMatch(/inference only.*no convolution backprop/);
      const missing = lines.filter((r) => r.kind === 'missing');
      expect(missing.every((m) => m.kind === 'missing' && m.reason.length > 0 && !('imagesPerSec' in m))).toBe(true);
      const table = formatModelTable(rows);
      expect(table).toMatch(/onnxruntime-node img\/s/);
      expect(table).toMatch(/\[1\] /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('rounds: the points are measured in passes and the samples pooled', async () => {
    const rows = await runModelBench({ model: 'lenet5', batches: [2, 4], modes: ['inference'], warmup: 1, iters: 5, rounds: 2, frameworks: ['onnxruntime', 'pytorch'] });
    for (const r of rows) {
      expect(r.ours.iters).toBe(5);
      expect(r.ours.notes).toMatch(/2 rounds over all points, samples pooled/);
      const ort = r.frameworks.find((f) => f.framework.startsWith('onnxruntime'))!;
      expect(ort.record?.iters).toBe(5);
      const pt = r.frameworks.find((f) => f.framework.startsWith('pytorch'))!;
      if (pt.record) {
        expect(pt.record.iters).toBe(5);
        expect('samplesMs' in pt.record).toBe(false);
      } else {
        expect(pt.unavailable).toBeTruthy();
      }
    }
  }, 120_000);

  it('refuses a reduced precision on the CPU backend, naming it', async () => {
    await expect(runModelBench({ model: 'lenet5', batches: [2], modes: ['inference'], precision: 'bf16', iters: 1, warmup: 0, frameworks: [] }))
      .rejects.toThrow(/--precision bf16 is not supported on the cpu backend/);
  });

  it('refuses --cuda-graph off the cuda backend (the end-to-end refusal is in cuda-addon.test.ts)', async () => {
    await expect(runModelBench({ model: 'lenet5', batches: [2], modes: ['training'], cudaGraph: true, iters: 1, warmup: 0, frameworks: [] }))
      .rejects.toThrow(/^--cuda-graph needs --backend cuda \(got cpu\)$/);
  });

  it('end-to-end loading draws batches from the dataset (embedded MNIST); synthetic end-to-end is refused', async () => {
    const rows = await runModelBench({ model: 'lenet5', batches: [8], modes: ['training', 'inference'], data: 'mnist', warmup: 1, iters: 3, frameworks: [] });
    for (const r of rows) {
      expect(r.ours.data).toBe('mnist');
      expect(r.ours.loading).toBe('end-to-end');
      expect(r.ours.notes).toMatch(/data loading included.*batches drawn from/);
      expect(r.ours.iters).toBe(3);
    }
    const c = await runModelBench({ model: 'lenet5', batches: [8], modes: ['inference'], data: 'mnist', loading: 'compute', warmup: 0, iters: 1, frameworks: [] });
    expect(c[0].ours.notes).toMatch(/one batch of .* uploaded once/);
    await expect(runModelBench({ model: 'lenet5', batches: [2], modes: ['inference'], loading: 'end-to-end', frameworks: [] })).rejects.toThrow(/needs --data/);
  }, 120_000);

  it('a missing python3 leaves the PyTorch column empty with the reason', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const [r] = runPytorchPoints('lenet5', [{ batch: 2, mode: 'training' }], 1, 0, 1);
      expect(r.record).toBeNull();
      expect(r.unavailable).toMatch(/python3 not runnable/);
    } finally {
      process.env.PATH = path;
    }
  });
});
