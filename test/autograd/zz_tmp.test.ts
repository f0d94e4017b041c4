import { it } from 'vitest';
import { getBackend } from '../../src/backend/registry.js';
import { Tensor } from '../../src/tensor.js';
import { backward } from '../../src/autograd/tape.js';
import * as ops from '../../src/ops/index.js';
it('x', async () => {
  const be = getBackend('cpu');
  const z = Tensor.fromArray(be, [2, 3], [1, -2, 3, 4, 0, 1]); z.requiresGrad = true;
  const l = Tensor.fromArray(be, [2], new Int32Array([0, 2]));
  const r = ops.softmaxCrossEntropy(z, l);
  r.probs.dispose(); r.perExample.dispose();
  try { backward(r.loss, 1); console.log('no error', await z.grad!.data()); } catch (e) { console.log('ERR', (e as Error).message); }
  const before = be.stats().liveBuffers;
  const x = Tensor.fromArray(be, [1, 1, 4, 4], Float32Array.from({length: 16}, (_, i) => i)); x.requiresGrad = true;
  const y = ops.maxPool2d(x, { kernel: 2 });
  y.dispose(); x.dispose();
  console.log('leak after dispose of maxpool output:', be.stats().liveBuffers - before);
});
