// Device failure (docs/reliability.md): an absurd allocation (ResNet-50's input at batch 10^7,
// 6 TB) is a catchable JS error naming the backend and the bytes, nothing is left allocated,
// and the backend keeps working. On webgpu (lavapipe in CI) the same for a batch past the
// device's buffer limits, and a lost device (provoked with GPUDevice.destroy()) fails the
// running training step with a clear error while a new device can be opened. The device-lost
// and validation paths of the runtime itself are in test/backend/webgpu-runtime.test.ts.
// On cuda (the H100, or the CPU emulator's addon: cmake/cuda_emu.cmake) a batch whose input
// fits in the device's memory but whose first conv output does not: the forward fails at that
// conv with the CUDA error name and the bytes, the input and weights survive, the layer's
// partial allocations are freed, and the device keeps working.
import { backendAvailable } from '../helpers/backends.js';
import { describe, expect, it } from 'vitest';
import { getBackend, openBackend } from '../../src/backend/registry.js';
import type { WebGpuBackend } from '../../src/backend/webgpu/backend.js';
import type { CudaBackend } from '../../src/backend/cuda.js';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { softmaxCrossEntropy } from '../../src/ops/index.js';
import { Sgd } from '../../src/train/sgd.js';
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

const webgpuAvailable = backendAvailable('webgpu', 'webgpu device-failure tests');

describe.skipIf(!webgpuAvailable)('device failure on the webgpu backend', () => {
  it('an absurd batch is a JS error naming the device and the size; nothing stays allocated; the device keeps working', async () => {
    const be = await openBackend('webgpu');
    const before = be.stats();
    const net = getModelSpec('lenet5').build(be, 1);
    const built = be.stats().liveBuffers;
    try {
      expect(() => tidy(() => net.forward(Tensor.empty(be, [1e7, 1, 28, 28]))))
        .toThrow(/^webgpu out of memory: a buffer of 29\.21 GiB exceeds this device's largest storage buffer \(.*\); use a smaller batch$/);
      expect(be.stats().liveBuffers).toBe(built);
      const y = tidy(() => add(Tensor.fromArray(be, [3], [1, 2, 3]), Tensor.fromArray(be, [3], [10, 20, 30])));
      expect(Array.from(await y.data())).toEqual([11, 22, 33]);
      y.dispose();
    } finally {
      net.dispose();
    }
    expect(be.stats().liveBuffers).toBe(before.liveBuffers);
  });

  it('a device lost during training fails the step with "device lost", and a new device can be opened', async () => {
    const be = (await openBackend('webgpu')) as WebGpuBackend;
    const net = getModelSpec('lenet5').build(be, 1);
    const x = Tensor.fromArray(be, [2, 1, 28, 28], new Float32Array(2 * 784).fill(0.5));
    const labels = Tensor.fromArray(be, [2], new Int32Array([3, 7]));
    const opt = new Sgd(net.parameters(), { momentum: 0.9, weightDecay: 0 });
    // One training step as the loop runs it: forward, loss, backward, SGD update.
    const step = async () => {
      tidy(() => {
        backward(softmaxCrossEntropy(net.forward(x), labels).loss);
        noGrad(() => opt.step(0.01));
        opt.zeroGrad();
      });
      await be.sync();
    };
    await step();
    // A real loss (driver reset, GPU hang) arrives asynchronously, while work is being enqueued.
    be.rt.destroy();
    let err: unknown = null;
    try {
      await step();
    } catch (e) {
      err = e;
    }
    expect((err as Error)?.message).toMatch(/^webgpu device lost \(destroyed\)/);
    const fresh = await openBackend('webgpu');
    expect(fresh).not.toBe(be);
    const y = noGrad(() => tidy(() => add(Tensor.fromArray(fresh, [2], [1, 2]), Tensor.fromArray(fresh, [2], [3, 4]))));
    expect(Array.from(await y.data())).toEqual([4, 6]);
    y.dispose();
  });
});

const cudaAvailable = backendAvailable('cuda', 'cuda device-failure tests');

describe.skipIf(!cudaAvailable)('device failure on the cuda backend', () => {
  it('a batch whose conv1 output exceeds the device memory is a JS error naming the CUDA error and the bytes; the device keeps working', async () => {
    const be = getBackend('cuda') as CudaBackend;
    const total = be.info().totalMemoryBytes;
    // LeNet-5: the input is 1x28x28 floats per image, conv1's output 6x28x28: with the input
    // at about 45 % of the device's memory, conv1's output needs 2.7 times the whole device.
    const batch = Math.floor((0.45 * total) / (28 * 28 * 4));
    const before = be.stats().liveBuffers;
    const net = getModelSpec('lenet5').build(be, 1);
    const built = be.stats();
    const x = Tensor.empty(be, [batch, 1, 28, 28]);
    try {
      expect(() => tidy(() => net.forward(x)))
        .toThrow(new RegExp(`^cuda alloc: cudaErrorMemoryAllocation \\(out of memory\\) allocating ${batch * 6 * 28 * 28 * 4} bytes`));
      expect(be.stats().liveBuffers).toBe(built.liveBuffers + 1); // only x
      x.dispose();
      const y = tidy(() => add(Tensor.fromArray(be, [3], [1, 2, 3]), Tensor.fromArray(be, [3], [10, 20, 30])));
      expect(Array.from(await y.data())).toEqual([11, 22, 33]);
      y.dispose();
      // And the model still runs at a sane batch.
      const out = tidy(() => net.forward(Tensor.filled(be, [2, 1, 28, 28], 0.5)));
      expect(out.shape).toEqual([2, 10]);
      expect(Array.from(await out.data()).every(Number.isFinite)).toBe(true);
      out.dispose();
    } finally {
      if (!x.disposed) x.dispose();
      net.dispose();
    }
    expect(be.stats().liveBuffers).toBe(before);
  });
});
