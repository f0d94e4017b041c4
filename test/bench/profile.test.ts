// Per-layer timing (src/bench/profile.ts), in a child process with the CPU stream inline.
import { describe, expect, it } from 'vitest';
import { profileInChild } from '../../src/bench/profile.js';

describe('bench models --profile', () => {
  it('lenet5 training step: forward and backward of every layer, loss, update and the rest add up to the step', () => {
    const recs = profileInChild({ model: 'lenet5', batch: 8, mode: 'training', warmup: 1, iters: 3 });
    expect(recs.every((r) => r.kind === 'layer' && r.layer?.model === 'lenet5' && r.batch === 8 && r.mode === 'training')).toBe(true);
    const key = (m: string, p: string) => recs.find((r) => r.layer!.module === m && r.layer!.pass === p);
    // Sequential children are named 0..11: conv 0, relu 1, pool 2, conv 3, ..., fc 11.
    for (const m of ['0', '2', '3', '7', '11']) {
      expect(key(m, 'forward'), `${m} forward`).toBeTruthy();
      expect(key(m, 'backward'), `${m} backward`).toBeTruthy();
    }
    expect(key('0', 'forward')!.layer!.op).toMatch(/^Conv2d\(1, 6/);
    expect(key('loss', 'loss')).toBeTruthy();
    expect(key('sgd', 'update')).toBeTruthy();
    expect(key('other', 'other')).toBeTruthy();
    const step = recs[0].layer!.stepMedianMs!;
    const sum = recs.reduce((s, r) => s + r.timing.medianMs, 0);
    expect(step).toBeGreaterThan(0);
    // Medians of parts need not add up exactly to the median step, but closely.
    expect(sum / step).toBeGreaterThan(0.5);
    expect(sum / step).toBeLessThan(1.5);
  }, 120_000);

  it('resnet20: residual blocks charge their own add + relu to "(own ops)"', () => {
    const recs = profileInChild({ model: 'resnet20', batch: 2, mode: 'training', warmup: 0, iters: 1 });
    expect(recs.some((r) => r.layer!.module === 'layer1.0 (own ops)' && r.layer!.pass === 'forward')).toBe(true);
    expect(recs.some((r) => r.layer!.module === 'layer2.0.downsample.0' && r.layer!.pass === 'backward')).toBe(true);
    // Every autograd node belongs to a module: nothing is charged to 'other' but the bookkeeping.
    expect(recs.filter((r) => r.layer!.module === 'other').map((r) => r.layer!.pass)).toEqual(['other']);
    // The stem's functional relu (between bn1 and layer1) is the model's own op.
    expect(recs.some((r) => r.layer!.module === '(model) (own ops)' && r.layer!.pass === 'backward')).toBe(true);
  }, 120_000);
});
