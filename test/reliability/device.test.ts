// Device failure, the CPU part (docs/reliability.md): an absurd allocation (ResNet-50's input
// at batch 10^7, 6 TB) is a catchable JS error naming the backend and the bytes, nothing is
// left allocated, and the backend keeps working. (WebGPU and CUDA are not part of this build:
// their out-of-memory and device-lost paths are not tested yet.)
import { describe, expect, it } from 'vitest';
import { getBackend } from '../../src/backend/registry.js';
import { getModelSpec } from '../../src/models/index.js';
import { Tensor } from '../../src/tensor.js';
import { tidy } from '../../src/autograd/scope.js';
import { add } from '../../src/ops/index.js';

describe('absurd allocations on the cpu backend', () => {
  it('batch 10^7 for resnet50 is a JS error naming the backend and the bytes; the process stays usable', async () => {
    const be = getBackend('cpu');
    const before = be.stats();
    const [c, h, w] = getModelSpec('resnet50').input;
    const bytes = 1e7 * c * h * w * 4;
    let err: unknown = null;
    try {
      tidy(() => {
        Tensor.filled(be, [4, 4], 1); // freed by the scope when the next line throws
        return Tensor.empty(be, [1e7, c, h, w]);
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(`cpu: out of memory allocating ${bytes} bytes`);
    expect(be.stats().liveBuffers).toBe(before.liveBuffers);
    expect(be.stats().liveBytes).toBe(before.liveBytes);
    // Still usable: a small op runs and reads back.
    const y = tidy(() => add(Tensor.fromArray(be, [3], [1, 2, 3]), Tensor.fromArray(be, [3], [10, 20, 30])));
    expect(Array.from(await y.data())).toEqual([11, 22, 33]);
    y.dispose();
  });

  it('a model forward at that batch fails the same way, before any work is queued', () => {
    const be = getBackend('cpu');
    const net = getModelSpec('lenet5').build(be, 1);
    try {
      expect(() => tidy(() => net.forward(Tensor.empty(be, [1e9, 1, 28, 28])))).toThrow(/^cpu: out of memory allocating 3136000000000 bytes$/);
    } finally {
      net.dispose();
    }
  });
});
