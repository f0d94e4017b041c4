// Determinism on the CPU backend (docs/reliability.md, "Determinism"): the same seed and the
// same thread count give bit-identical weights after training steps; a different thread count
// may change the last bits (conv bwd-filter sums per-thread partials in chunk order), and this
// test prints by how much. The SIGKILL/resume test (interrupt.test.ts) checks the same
// guarantee across processes and a checkpoint.
import { describe, expect, it } from 'vitest';
import { getBackend } from '../../src/backend/registry.js';
import { getModelSpec } from '../../src/models/index.js';
import { Tensor } from '../../src/tensor.js';
import { tidy } from '../../src/autograd/scope.js';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { softmaxCrossEntropy } from '../../src/ops/loss.js';
import { Sgd } from '../../src/train/sgd.js';
import { Rng } from '../../src/util/rng.js';

async function train(model: string, threads: number, steps: number, batch: number): Promise<Float32Array> {
  const be = getBackend('cpu');
  const prev = be.threads!();
  be.setThreads!(threads);
  const spec = getModelSpec(model);
  const net = spec.build(be, 3);
  const opt = new Sgd(net.parameters(), { momentum: 0.9, weightDecay: 1e-4 });
  const rng = new Rng(5, 'determinism');
  const [c, h, w] = spec.input;
  try {
    for (let s = 0; s < steps; s++) {
      const xs = Float32Array.from({ length: batch * c * h * w }, () => rng.normal());
      const ys = Int32Array.from({ length: batch }, () => rng.int(spec.numClasses));
      tidy(() => {
        const { loss } = softmaxCrossEntropy(net.forward(Tensor.fromArray(be, [batch, c, h, w], xs)), Tensor.fromArray(be, [batch], ys));
        backward(loss);
        noGrad(() => opt.step(0.05));
        opt.zeroGrad();
      });
    }
    const parts = await Promise.all([...net.parameters(), ...net.namedBuffers().map(([, t]) => t)].map((t) => t.data()));
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(new Float32Array(p.buffer, p.byteOffset, p.length), at); at += p.length; }
    return out;
  } finally {
    opt.dispose();
    net.dispose();
    be.setThreads!(prev);
  }
}

const same = (a: Float32Array, b: Float32Array) => Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer)) === 0;
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('cpu determinism', () => {
  for (const [model, steps, batch] of [['lenet5', 10, 64], ['resnet20', 2, 16]] as const) {
    it(`${model}: bit-identical for the same seed and thread count (1 and 2 threads)`, async () => {
      const one = await train(model, 1, steps, batch), oneAgain = await train(model, 1, steps, batch);
      const two = await train(model, 2, steps, batch), twoAgain = await train(model, 2, steps, batch);
      expect(same(one, oneAgain)).toBe(true);
      expect(same(two, twoAgain)).toBe(true);
      console.log(`determinism ${model}: ${steps} steps of batch ${batch}; 1 vs 2 threads: ${same(one, two) ? 'identical' : `max |diff| ${maxDiff(one, two).toExponential(2)}`}`);
    }, 120_000);
  }
});
