// The WebGPU GEMM variant sweep (src/bench/gemm-variants.ts, `bench gemm --variants`): one
// record per (variant, size) carrying the variant's defines, a variant over the device's limits
// skipped with the limit, the table naming the best. Tiny sizes and iteration counts: this
// checks the records and the table, never a speed. Skipped, with the reason printed, without a
// webgpu adapter (the option checks run everywhere).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { formatGemmSweep, runGemmVariantSweep } from '../../src/bench/gemm-variants.js';
import { backendAvailable } from '../helpers/backends.js';

const ROOT = resolve(import.meta.dirname, '../..');
const webgpuAvailable = backendAvailable('webgpu', 'gemm variant sweep');

describe('bench gemm --variants', () => {
  it.skipIf(!webgpuAvailable)('times each variant after checking it, records its defines, names the best', async () => {
    const variants = ['128x128_k8_t8x8_p2', '64x64_k16_t8x8_p2', '256x256_k32_t8x8_p1'];
    const res = await runGemmVariantSweep('webgpu', { sizes: [68], variants, iters: 2, rounds: 2, warmup: 1 });
    expect(res.rows.map((r) => r.variant)).toEqual(variants);
    const over = res.rows[2];
    expect(over.skipped).toMatch(/threads > maxComputeInvocationsPerWorkgroup|workgroup memory > maxComputeWorkgroupStorageSize/);
    expect(over.record).toBeUndefined();
    expect(res.records).toHaveLength(2);
    for (const r of res.records) {
      expect(r.name).toBe('sgemm');
      expect(r.backend).toBe('webgpu');
      expect(r.iters).toBe(2);
      expect(r.flops).toBe(2 * 68 ** 3);
      expect(r.shape).toMatchObject({ m: 68, n: 68, k: 68, transA: false, transB: false, alpha: 1, beta: 0 });
      expect(r.shape.defines).toMatchObject({ TRANS_A: false, TRANS_B: false, VEC_A: true, VEC_B: true, VEC_C: true });
      expect(r.notes).toMatch(/checked against float64 on 64 sampled elements; dawn options: disable-dawn-features=timestamp_quantization/);
    }
    expect(res.records[0].shape).toMatchObject({ variant: '128x128_k8_t8x8_p2', defines: { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8, PIPELINE: 2 } });
    const table = formatGemmSweep(res);
    expect(table).toMatch(/128x128_k8_t8x8_p2 \(default\)/);
    expect(table).toMatch(/best at 68\^3: (128x128_k8_t8x8_p2|64x64_k16_t8x8_p2) [\d.]+ GFLOP\/s \(run models with it: IMAGERATE_WEBGPU_GEMM=/);
    expect(table).toMatch(/256x256_k32_t8x8_p1: skipped \(/);
  }, 120_000);

  it('the CLI refuses --variants off webgpu and a malformed variant name', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, [resolve(ROOT, 'dist/cli.js'), 'bench', 'gemm', ...args], { encoding: 'utf8' });
    const cpu = cli('--variants', 'all');
    expect(cpu.status).not.toBe(0);
    expect(cpu.stderr).toMatch(/--variants applies to --backend webgpu/);
    if (!webgpuAvailable) return;
    const bad = cli('--backend', 'webgpu', '--variants', '128x128_k8', '--sizes', '64');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/gemm variant '128x128_k8' is not of the form BMxBN_kBK_tTMxTN_pP/);
  }, 60_000);
});
