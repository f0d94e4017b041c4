// Tape, scope and tensor-lifetime behaviour (src/autograd/tape.ts, scope.ts, src/tensor.ts),
// on every backend: gradient accumulation, noGrad, tidy/keep, dispose, views, shape errors,
// and flat memory across training steps. Buffer counts come from the backend's allocator
// (`be.stats().liveBuffers`), read as deltas because other tests in the file hold tensors.
//
// backward() starts at a scalar loss, so gradients are taken through the projection head of
// test/helpers/scalar_head.ts: loss = softplus(-<y, r>), dloss/dy = -sigmoid(-<y, r>) * r.
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { Tensor } from '../../src/tensor.js';
import { backward, isGradEnabled, noGrad } from '../../src/autograd/tape.js';
import { keep, scopeDepth, tidy } from '../../src/autograd/scope.js';
import * as ops from '../../src/ops/index.js';
import { lenet5 } from '../../src/models/lenet.js';
import { Sgd } from '../../src/train/sgd.js';
import { ShapeError } from '../../src/util/errors.js';
import { forEachBackend } from '../helpers/backends.js';
import { expectClose } from '../helpers/assert_close.js';
import { randLabels, randn, randnAwayFromZero } from '../helpers/finite_diff.js';
import { projection, projectionLoss } from '../helpers/scalar_head.js';

// A gradient here is one or two float32 products of the head's gradient (see gradcheck).
const TOL = { atol: 2e-7, rtol: 1e-6 };

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i], 0);

function leaf(be: Backend, shape: number[], values: Float32Array): Tensor {
  const t = Tensor.fromArray(be, shape, values);
  t.requiresGrad = true;
  return t;
}

/** Runs f(x) -> head -> backward inside tidy; returns x.grad's values and frees it. */
async function gradOf(be: Backend, x: Tensor, f: (x: Tensor) => Tensor, r: Float32Array): Promise<Float32Array> {
  const g = tidy(() => {
    backward(projectionLoss(be, f(x), r), 1);
    return x.grad!;
  });
  const v = (await g.data()) as Float32Array;
  g.dispose();
  x.grad = null;
  return v;
}

const live = (be: Backend) => be.stats().liveBuffers;

forEachBackend((be) => {
  describe('gradient accumulation', () => {
    const n = 12;
    const xv = randn(n, 1), r = projection(n, 2);

    it('a tensor used twice sums its gradients: add(x, x)', async () => {
      const x = leaf(be, [3, 4], xv);
      const g = await gradOf(be, x, (t) => ops.add(t, t), r);
      const y = Array.from(xv, (v) => 2 * v);
      const s = -sigmoid(-dot(y, r)); // dloss/dL
      expectClose(g, Array.from(r, (ri) => 2 * s * ri), TOL, 'd/dx of add(x, x)');
      x.dispose();
    });

    it('mul(x, x) gives 2 x dy', async () => {
      const x = leaf(be, [3, 4], xv);
      const g = await gradOf(be, x, (t) => ops.mul(t, t), r);
      const s = -sigmoid(-dot(Array.from(xv, (v) => v * v), r));
      expectClose(g, Array.from(r, (ri, i) => 2 * xv[i] * s * ri), TOL, 'd/dx of mul(x, x)');
      x.dispose();
    });

    it('two branches through different ops meet: add(scale(x, 3), relu(x))', async () => {
      const xa = randnAwayFromZero(n, 3);
      const x = leaf(be, [3, 4], xa);
      const g = await gradOf(be, x, (t) => ops.add(ops.scale(t, 3), ops.relu(t)), r);
      const y = Array.from(xa, (v) => 3 * v + Math.max(v, 0));
      const s = -sigmoid(-dot(y, r));
      expectClose(g, Array.from(r, (ri, i) => (3 + (xa[i] > 0 ? 1 : 0)) * s * ri), TOL, 'd/dx');
      x.dispose();
    });

    it('leaf gradients accumulate across backward() calls', async () => {
      const x = leaf(be, [3, 4], xv);
      const run = () => backward(projectionLoss(be, ops.scale(x, 1.5), r), 1);
      const g1 = tidy(() => { run(); return x.grad!; });
      const once = Float32Array.from(await g1.data());
      const g2 = tidy(() => { run(); return x.grad!; }); // g1 + new gradient, g1 freed
      expect(g1.disposed).toBe(true);
      const twice = await g2.data();
      expect(Array.from(twice)).toEqual(Array.from(once, (v) => v + v)); // one float32 add of equal values: exact
      x.dispose(); // frees x.grad too
      expect(g2.disposed).toBe(true);
    });

    it('the numeric seed scales every gradient: backward(loss, 2) = 2 x backward(loss, 1)', async () => {
      const z = leaf(be, [4, 5], randn(20, 6, 2));
      const labels = Tensor.fromArray(be, [4], randLabels(4, 5, 7));
      const gradFor = async (seed: number) => {
        const g = tidy(() => {
          backward(ops.softmaxCrossEntropy(z, labels).loss, seed);
          return z.grad!;
        });
        z.grad = null;
        const v = Float32Array.from(await g.data());
        g.dispose();
        return v;
      };
      const g1 = await gradFor(1), g2 = await gradFor(2);
      expectClose(g2, Array.from(g1, (v) => 2 * v), TOL, 'seed 2');
      z.dispose();
      labels.dispose();
    });

    it('backward() from a tensor that does not require a gradient throws', () => {
      const x = Tensor.fromArray(be, [2], [1, 2]);
      expect(() => backward(x)).toThrow(/does not require a gradient/);
      x.dispose();
    });

    it('backward() from a non-loss root seeds every output element (d sum(root))', async () => {
      const x = leaf(be, [2, 3], Float32Array.from([1, -2, 3, -4, 5, 6]));
      const y = ops.relu(ops.reshape(x, [3, 2]));
      backward(y, 2);
      expect(Array.from(await x.grad!.data())).toEqual([2, 0, 2, 0, 2, 2]);
      y.dispose();
      x.dispose();
    });
  });

  describe('saved tensors', () => {
    it('disposing probs, perExample or labels before backward() keeps the loss differentiable', async () => {
      const z = leaf(be, [3, 4], randn(12, 5));
      const labels = Tensor.fromArray(be, [3], Int32Array.from([0, 3, 1]));
      const r = ops.softmaxCrossEntropy(z, labels);
      const probs = Float32Array.from(await r.probs.data());
      r.probs.dispose();
      r.perExample.dispose();
      labels.dispose();
      backward(r.loss);
      const g = await z.grad!.data();
      const want = Array.from(probs, (p, i) => (p - (i % 4 === [0, 3, 1][Math.floor(i / 4)] ? 1 : 0)) / 3);
      expectClose(g, want, TOL, 'dlogits');
      r.loss.dispose();
      z.dispose();
    });

    it('disposing a maxPool2d/dropout output frees what it saved for backward', () => {
      const x = leaf(be, [1, 2, 4, 4], randn(32, 6));
      const before = live(be);
      const y = ops.maxPool2d(x, { kernel: 2 });
      const d = ops.dropout(x, 0.5, 7);
      expect(live(be)).toBeGreaterThan(before + 2); // outputs plus argmax and mask
      y.dispose();
      d.dispose();
      expect(live(be)).toBe(before);
      x.dispose();
    });
  });

  describe('noGrad', () => {
    it('records nothing: outputs do not require gradients and carry no node', () => {
      const x = leaf(be, [1, 2, 4, 4], randn(32, 4));
      const w = leaf(be, [3, 2, 3, 3], randn(54, 5));
      const before = live(be);
      const outs = noGrad(() => {
        expect(isGradEnabled()).toBe(false);
        const c = ops.conv2d(x, w, null, { padding: 1 });
        return [c, ops.relu(c), ops.maxPool2d(c, { kernel: 2 }), ops.dropout(c, 0.5, 1), ops.scale(c, 2)];
      });
      expect(isGradEnabled()).toBe(true);
      for (const t of outs) {
        expect(t.requiresGrad).toBe(false);
        expect(t.node).toBeNull();
      }
      // Only the five outputs are alive: no argmax or dropout mask was kept for backward.
      expect(live(be) - before).toBe(outs.length);
      for (const t of [...outs, x, w]) t.dispose();
    });

    it('restores gradient recording when the function throws', () => {
      expect(() => noGrad(() => { throw new Error('boom'); })).toThrow('boom');
      expect(isGradEnabled()).toBe(true);
    });
  });

  describe('tidy / keep', () => {
    it('disposes intermediates and keeps what it returns', async () => {
      const x = Tensor.fromArray(be, [2, 3], [1, -2, 3, -4, 5, -6]);
      const before = live(be);
      let a: Tensor | null = null;
      const b = tidy(() => {
        a = ops.relu(x);
        return ops.scale(a, 2);
      });
      expect(a!.disposed).toBe(true);
      expect(b.disposed).toBe(false);
      expect(x.disposed).toBe(false); // created outside the scope
      expect(live(be) - before).toBe(1);
      expect(Array.from(await b.data())).toEqual([2, 0, 6, 0, 10, 0]);
      b.dispose();
      x.dispose();
      expect(live(be)).toBe(before - 1);
    });

    it('keeps tensors returned inside arrays and plain objects', () => {
      const before = live(be);
      const out = tidy(() => {
        const t = Tensor.filled(be, [4], 1);
        Tensor.filled(be, [4], 2); // dropped
        return { list: [t, ops.scale(t, 3)], one: ops.scale(t, 4) };
      });
      expect(live(be) - before).toBe(3);
      for (const t of [...out.list, out.one]) t.dispose();
      expect(live(be)).toBe(before);
    });

    it('nested scopes: a returned tensor moves to the parent scope', () => {
      const before = live(be);
      let inner: Tensor | null = null;
      const outer = tidy(() => {
        inner = tidy(() => ops.scale(Tensor.filled(be, [3], 1), 2));
        expect(inner.disposed).toBe(false);
        return ops.scale(inner, 2);
      });
      expect(inner!.disposed).toBe(true); // freed by the outer scope
      expect(live(be) - before).toBe(1);
      outer.dispose();
      expect(scopeDepth()).toBe(0);
    });

    it('keep() exempts a tensor from every scope', () => {
      const before = live(be);
      let k: Tensor | null = null;
      tidy(() => {
        k = keep(Tensor.filled(be, [2], 7));
        Tensor.filled(be, [2], 0);
      });
      expect(k!.disposed).toBe(false);
      expect(live(be) - before).toBe(1);
      k!.dispose();
      expect(live(be)).toBe(before);
    });

    it('frees everything when the function throws', () => {
      const before = live(be);
      expect(() => tidy(() => {
        Tensor.filled(be, [8], 1);
        throw new Error('inside tidy');
      })).toThrow('inside tidy');
      expect(live(be)).toBe(before);
      expect(scopeDepth()).toBe(0);
    });

    it('rejects an async function', () => {
      expect(() => tidy((async () => 1) as unknown as () => number)).toThrow(/synchronous/);
      expect(scopeDepth()).toBe(0);
    });
  });

  describe('dispose and views', () => {
    it('dispose is idempotent', () => {
      const t = Tensor.filled(be, [5], 1);
      const before = live(be);
      t.dispose();
      t.dispose();
      expect(t.disposed).toBe(true);
      expect(live(be)).toBe(before - 1);
    });

    it('use after dispose throws a clear error naming the tensor', async () => {
      const t = Tensor.filled(be, [2, 3], 1);
      t.name = 'fc1.weight';
      t.dispose();
      expect(() => t.buf).toThrow('tensor fc1.weight [2, 3] used after dispose()');
      await expect(t.data()).rejects.toThrow(/used after dispose\(\)/);
      expect(() => ops.relu(t)).toThrow(/fc1\.weight \[2, 3\] used after dispose\(\)/);
      expect(() => t.reshape([6])).toThrow(/used after dispose\(\)/);
    });

    it('reshape views share storage and free it only with the last view', async () => {
      const before = live(be);
      const a = Tensor.fromArray(be, [2, 6], Float32Array.from({ length: 12 }, (_, i) => i));
      const v = a.reshape([3, 4]);
      const mid = ops.reshape(a, [2, 3, 2]);
      const f = ops.flatten(mid);
      expect(live(be) - before).toBe(1); // one buffer for all four tensors
      expect(v.shape).toEqual([3, 4]);
      expect(f.shape).toEqual([2, 6]);
      a.dispose();
      expect(live(be) - before).toBe(1);
      expect(Array.from(await v.data())).toEqual(Array.from({ length: 12 }, (_, i) => i));
      v.dispose();
      mid.dispose();
      expect(live(be) - before).toBe(1); // f still holds it
      expect(Array.from(await f.data())).toEqual(Array.from({ length: 12 }, (_, i) => i));
      f.dispose();
      expect(live(be)).toBe(before);
    });

    it('the last of several views frees the buffer', () => {
      const before = live(be);
      const a = Tensor.filled(be, [4, 4], 1);
      const views = [a.reshape([16]), a.reshape([2, 8]), a.reshape([-1, 2])];
      expect(views[2].shape).toEqual([8, 2]);
      a.dispose();
      views[0].dispose();
      views[1].dispose();
      expect(live(be) - before).toBe(1);
      views[2].dispose();
      expect(live(be)).toBe(before);
    });

    it('reshape to a different size is a ShapeError naming both shapes', () => {
      const a = Tensor.filled(be, [2, 6], 1);
      expect(() => a.reshape([5, 2])).toThrow('reshape: cannot view [2, 6] as [5, 2]');
      a.dispose();
    });
  });

  describe('shape errors name the op and both shapes, and allocate nothing', () => {
    const cases: [string, () => Tensor[], (ts: Tensor[]) => unknown, RegExp][] = [
      ['linear with wrong in-features', () => [Tensor.filled(be, [3, 7], 1), Tensor.filled(be, [5, 6], 1)],
        ([x, w]) => ops.linear(x, w, null), /^linear: .*\[3, 7\].*\[5, 6\]/],
      ['conv2d channel mismatch', () => [Tensor.filled(be, [2, 3, 7, 7], 1), Tensor.filled(be, [4, 2, 3, 3], 1)],
        ([x, w]) => ops.conv2d(x, w, null), /^conv2d: .*\[2, 3, 7, 7\].*\[4, 2, 3, 3\]/],
      ['conv2d bias of the wrong length', () => [Tensor.filled(be, [1, 3, 5, 5], 1), Tensor.filled(be, [4, 3, 3, 3], 1), Tensor.filled(be, [3], 0)],
        ([x, w, b]) => ops.conv2d(x, w, b), /^conv2d: .*\[3\].*\[4, 3, 3, 3\]/],
      ['matmul inner dimensions', () => [Tensor.filled(be, [3, 4], 1), Tensor.filled(be, [5, 2], 1)],
        ([a, b]) => ops.matmul(a, b), /^matmul: .*\[3, 4\].*\[5, 2\]/],
      ['add of different shapes', () => [Tensor.filled(be, [2, 3], 1), Tensor.filled(be, [3, 2], 1)],
        ([a, b]) => ops.add(a, b), /^add: .*\[2, 3\].*\[3, 2\]/],
      ['softmaxCrossEntropy labels for another batch', () => [Tensor.filled(be, [4, 10], 0), Tensor.fromArray(be, [3], new Int32Array(3))],
        ([z, l]) => ops.softmaxCrossEntropy(z, l), /^softmaxCrossEntropy: .*\[4, 10\].*\[3\]/],
      ['maxPool2d window larger than the input', () => [Tensor.filled(be, [1, 1, 3, 3], 1)],
        ([x]) => ops.maxPool2d(x, { kernel: 5 }), /^maxPool2d: .*window 5.*input size 3/],
    ];
    for (const [name, make, op, msg] of cases) {
      it(name, () => {
        const ts = make();
        const before = live(be);
        let err: unknown = null;
        try { op(ts); } catch (e) { err = e; }
        expect(err).toBeInstanceOf(ShapeError);
        expect((err as Error).message).toMatch(msg);
        expect(live(be)).toBe(before);
        for (const t of ts) t.dispose();
      });
    }
  });

  describe('memory stays flat across training steps', () => {
    it('lenet5, 30 SGD steps inside tidy: live buffers and bytes identical from step 5 on', async () => {
      const B = 16;
      const model = lenet5(be, 7);
      const opt = new Sgd(model.parameters(), { momentum: 0.9, weightDecay: 5e-4 });
      const x = Tensor.fromArray(be, [B, 1, 28, 28], randn(B * 28 * 28, 8));
      const y = Tensor.fromArray(be, [B], randLabels(B, 10, 9));
      const start = be.stats();
      const stats: { liveBuffers: number; liveBytes: number }[] = [];
      const losses: number[] = [];
      for (let step = 1; step <= 30; step++) {
        const loss = tidy(() => {
          const { loss } = ops.softmaxCrossEntropy(model.forward(x), y);
          backward(loss, 1);
          noGrad(() => opt.step(0.01));
          opt.zeroGrad();
          return keep(loss);
        });
        losses.push((await loss.data())[0]);
        loss.dispose();
        await be.sync();
        const s = be.stats();
        stats.push({ liveBuffers: s.liveBuffers, liveBytes: s.liveBytes });
      }
      // Steady state from step 5 (the momentum buffers appear at step 1).
      for (let step = 5; step <= 30; step++) expect(stats[step - 1], `step ${step}`).toEqual(stats[4]);
      // What stays between steps is exactly the parameters' momentum buffers.
      const nParams = model.parameters().length;
      expect(stats[29].liveBuffers - start.liveBuffers).toBe(nParams);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[29]).toBeLessThan(losses[0]); // the same batch every step: SGD must fit it
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
      expect(be.stats().liveBuffers).toBe(start.liveBuffers - 2 - nParams);
    });
  });
});
