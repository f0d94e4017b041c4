// Leaks (docs/reliability.md): 1,000 training steps of LeNet-5 (batch 8: one epoch of the
// embedded MNIST split) must leave the backend's live-buffer count and bytes exactly where
// they were after warm-up, and process memory (rss) within a small bound. On webgpu the same
// run must also create no GPU buffer after warm-up (the pool serves every step), and almost
// no bind group (the runtime's cache serves them). On cuda: no cudaMalloc after warm-up (the
// caching allocator serves every step), and device and pinned bytes flat.
import { backendAvailable } from '../helpers/backends.js';
import { describe, expect, it } from 'vitest';
import { TRAIN_DEFAULTS, runTraining } from '../../src/train/run.js';
import { getBackend, openBackend } from '../../src/backend/registry.js';
import type { WebGpuBackend } from '../../src/backend/webgpu/backend.js';
import type { CudaBackend } from '../../src/backend/cuda.js';

const WARMUP = 50;

/**
 * Checks that the samples (taken every 10 steps from WARMUP on) reach step 990 and that each
 * named field holds the first sample's value in every one; returns the first and last sample.
 */
function expectFlat<T extends { step: number }>(samples: T[], fields: Partial<Record<keyof T, string>>): [T, T] {
  const first = samples[0], last = samples[samples.length - 1];
  expect(last.step).toBeGreaterThanOrEqual(990);
  for (const x of samples) {
    for (const [k, what] of Object.entries(fields) as Array<[keyof T, string]>) {
      expect(x[k], `${what} at step ${x.step}`).toBe(first[k]);
    }
  }
  return [first, last];
}
const RSS_GROWTH_LIMIT_MB = 64;
const LATE_RSS_GROWTH_LIMIT_MB = 12;

describe('memory stays flat over 1,000 training steps', () => {
  it('live buffers, live bytes and rss', async () => {
    const be = getBackend('cpu');
    const before = be.stats();
    const samples: { step: number; live: number; bytes: number; rss: number }[] = [];
    const s = await runTraining({ ...TRAIN_DEFAULTS, model: 'lenet5', epochs: 1, batch: 8, target: null, threads: 1 }, {
      onStep: ({ step }) => {
        if (step >= WARMUP && step % 10 === 0) {
          const st = be.stats();
          samples.push({ step, live: st.liveBuffers, bytes: st.liveBytes, rss: process.memoryUsage().rss });
        }
      },
    });
    expect(s.trainImagesCount / s.batch).toBe(1000);
    // Exactly flat: every sample after warm-up holds the same buffers.
    const [first, last] = expectFlat(samples, { live: 'live buffers', bytes: 'live bytes' });
    // rss settles as the JS heap and the buffer pool reach their working size (measured: +20 MB
    // by step ~450, then under 2 MB more); a leak keeps growing through the second half.
    const mb = (v: number) => v / 2 ** 20;
    const mid = samples.find((x) => x.step >= 500)!;
    const growth = mb(Math.max(...samples.map((x) => x.rss)) - first.rss);
    const lateGrowth = mb(Math.max(...samples.filter((x) => x.step >= 500).map((x) => x.rss)) - mid.rss);
    console.log(`leaks: ${samples.length} samples from step ${first.step} to ${last.step}: ${first.live} live buffers (${first.bytes} bytes) throughout; ` +
      `rss +${growth.toFixed(1)} MB in all, +${lateGrowth.toFixed(1)} MB after step ${mid.step}`);
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT_MB);
    expect(lateGrowth).toBeLessThan(LATE_RSS_GROWTH_LIMIT_MB);
    // And everything the run allocated is freed when it returns.
    const after = be.stats();
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
  }, 120_000);
});

const webgpuAvailable = backendAvailable('webgpu', 'webgpu leak test');

describe.skipIf(!webgpuAvailable)('webgpu: GPU memory stays flat over 1,000 training steps', () => {
  it('live buffers, live bytes, GPU buffers created, and queue submits per step', async () => {
    const be = (await openBackend('webgpu')) as WebGpuBackend;
    const before = be.stats();
    const samples: { step: number; live: number; bytes: number; created: number; submits: number; dispatches: number; groups: number }[] = [];
    const s = await runTraining({ ...TRAIN_DEFAULTS, model: 'lenet5', backend: 'webgpu', epochs: 1, batch: 8, target: null }, {
      onStep: ({ step }) => {
        if (step >= WARMUP && step % 10 === 0) {
          const st = be.stats();
          samples.push({ step, live: st.liveBuffers, bytes: st.liveBytes, created: be.rt.counters.buffersCreated, submits: be.rt.counters.submits,
            dispatches: be.rt.counters.dispatches, groups: be.rt.counters.bindGroupsCreated });
        }
      },
    });
    expect(s.trainImagesCount / s.batch).toBe(1000);
    const [first, last] = expectFlat(samples, { live: 'live buffers', bytes: 'live bytes', created: 'GPU buffers created' });
    // Batched encoding: a step is a few submits (uploads and the per-step checks), not one per op.
    const steps = last.step - first.step;
    const submitsPerStep = (last.submits - first.submits) / steps;
    // The bind-group cache (command-batch.ts): after warm-up a step's dispatches find their groups.
    const dispatchesPerStep = (last.dispatches - first.dispatches) / steps;
    const groupsPerStep = (last.groups - first.groups) / steps;
    console.log(`webgpu leaks: ${first.live} live buffers (${first.bytes} bytes) and ${first.created} GPU buffers created, flat from step ${first.step} to ${last.step}; ` +
      `${submitsPerStep.toFixed(2)} submits, ${dispatchesPerStep.toFixed(1)} dispatches and ${groupsPerStep.toFixed(2)} new bind groups per step`);
    expect(submitsPerStep).toBeLessThanOrEqual(4);
    expect(groupsPerStep).toBeLessThanOrEqual(0.05 * dispatchesPerStep);
    const after = be.stats();
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
  }, 600_000);
});

const cudaAvailable = backendAvailable('cuda', 'cuda leak test');

describe.skipIf(!cudaAvailable)('cuda: device memory stays flat over 1,000 training steps', () => {
  it('live buffers, live bytes, cudaMalloc calls, device and pinned bytes', async () => {
    const be = getBackend('cuda') as CudaBackend;
    const before = be.stats();
    const samples: { step: number; live: number; bytes: number; mallocs: number; device: number; pinned: number }[] = [];
    const s = await runTraining({ ...TRAIN_DEFAULTS, model: 'lenet5', backend: 'cuda', epochs: 1, batch: 8, target: null }, {
      onStep: ({ step }) => {
        if (step >= WARMUP && step % 10 === 0) {
          const st = be.stats();
          samples.push({ step, live: st.liveBuffers, bytes: st.liveBytes, mallocs: st.mallocCalls, device: st.deviceBytes, pinned: st.pinnedBytes });
        }
      },
    });
    expect(s.trainImagesCount / s.batch).toBe(1000);
    const [first, last] = expectFlat(samples, { live: 'live buffers', bytes: 'live bytes', mallocs: 'cudaMalloc calls', device: 'device bytes', pinned: 'pinned bytes' });
    console.log(`cuda leaks: ${first.live} live buffers (${first.bytes} bytes), ${first.mallocs} cudaMalloc calls, ${first.device} device and ` +
      `${first.pinned} pinned bytes, flat from step ${first.step} to ${last.step}`);
    const after = be.stats();
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
  }, 1_200_000);
});
