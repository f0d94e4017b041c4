// pointwise-kernels.test.ts: kernels/cpu/elementwise.cc, softmax_xent.cc and sgd.cc through the
// CPU addon, against plain float64 references (STYLE rule 1) on odd sizes. 70001 elements
// crosses the kernels' parallel threshold (32768), so both the serial and the threaded paths
// run. Tolerances are in units of float32 rounding (U = 2^-24, one half-ulp) and say why.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectClose } from '../helpers/assert_close.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ADDON = process.env.IMAGERATE_CPU_ADDON || join(ROOT, 'build/Release/imagerate_cpu.node');
if (!existsSync(ADDON)) throw new Error(`CPU addon not built: ${ADDON} is missing (run npm run build:native)`);
type Fn = (...args: any[]) => any;
const cpu = createRequire(import.meta.url)(ADDON) as Record<string, Fn>;

const U = 2 ** -24;
const SIZES = [1, 3, 7, 17, 1000, 70001];

function rng(seed: number): () => number { // mulberry32, uniform in [-1, 1)
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  };
}
function randf(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => scale * r());
}
function put(data: Float32Array | Int32Array): number {
  const id = cpu.alloc(data.byteLength);
  cpu.upload(id, data);
  return id;
}
async function get(id: number): Promise<Float32Array> {
  return new Float32Array(await cpu.download(id));
}
const freeAll = (...ids: number[]) => ids.forEach((id) => cpu.free(id));
// Per-element bounds without one expect() per element (70001 of them would be slow):
// bound(i) returns [got, expected, allowed |diff|]; reports the first violation.
function expectEach(n: number, what: string, bound: (i: number) => [number, number, number]): void {
  for (let i = 0; i < n; i++) {
    const [got, ref, tol] = bound(i);
    if (!(Math.abs(got - ref) <= tol)) {
      expect.fail(`${what}[${i}]: got ${got}, expected ${ref}, |diff| ${Math.abs(got - ref)} > ${tol}`);
    }
  }
}

describe('elementwise kernels', () => {
  it.each(SIZES)('relu fwd/bwd, n=%i (exact: a select, no arithmetic)', async (n) => {
    const x = randf(n, n), dy = randf(n, n + 1);
    const [ix, iy, idy, idx] = [put(x), cpu.alloc(4 * n), put(dy), cpu.alloc(4 * n)];
    cpu.reluFwd(n, ix, iy);
    cpu.reluBwd(n, iy, idy, idx);
    cpu.reluFwd(n, ix, ix); // in place
    const [y, dx, yInPlace] = [await get(iy), await get(idx), await get(ix)];
    expectEach(n, 'relu y', (i) => [y[i], x[i] < 0 ? 0 : x[i], 0]);
    expectEach(n, 'relu dx', (i) => [dx[i], x[i] > 0 ? dy[i] : 0, 0]);
    expectEach(n, 'relu in place', (i) => [yInPlace[i], y[i], 0]);
    freeAll(ix, iy, idy, idx);
  });

  it.each(SIZES)('add, mul, scale, fill, axpby, n=%i', async (n) => {
    const a = randf(n, 2 * n), b = randf(n, 3 * n, 4);
    const [ia, ib, iy] = [put(a), put(b), cpu.alloc(4 * n)];
    // One float32 rounding of the exact double result: |err| <= U * |ref|.
    const one = { atol: 1e-45, rtol: U };
    cpu.add(n, ia, ib, iy);
    expectClose(await get(iy), Array.from(a, (v, i) => v + b[i]), one, 'add');
    cpu.mul(n, ia, ib, iy);
    expectClose(await get(iy), Array.from(a, (v, i) => v * b[i]), one, 'mul');
    cpu.scale(n, -0.3, ia, iy);
    expectClose(await get(iy), Array.from(a, (v) => Math.fround(-0.3) * v), one, 'scale');
    cpu.fill(n, 2.5, iy);
    const filled = await get(iy);
    expectEach(n, 'fill', (i) => [filled[i], 2.5, 0]);
    // axpby: three roundings (two products, one sum) of terms up to |alpha x| + |beta y|;
    // cancellation makes a relative bound meaningless, so the bound is absolute per element.
    const [al, be] = [Math.fround(1.7), Math.fround(-0.6)];
    cpu.axpby(n, al, ia, be, ib); // y = b, updated in place
    const got = await get(ib);
    expectEach(n, 'axpby', (i) =>
      [got[i], al * a[i] + be * b[i], 3 * U * (Math.abs(al * a[i]) + Math.abs(be * b[i])) + 1e-45]);
    cpu.fill(n, NaN, iy);
    cpu.axpby(n, 2, ia, 0, iy); // beta 0 ignores y: NaN must not leak through
    expectClose(await get(iy), Array.from(a, (v) => 2 * v), one, 'axpby beta=0');
    freeAll(ia, ib, iy);
  });

  it.each([[1, 1, 1], [3, 7, 17], [2, 17, 1000], [70001, 3, 1], [1, 3, 70001], [33, 64, 49]])(
    'biasAdd / biasGrad, [outer, ch, inner] = [%i, %i, %i]', async (outer, ch, inner) => {
      const n = outer * ch * inner;
      const x = randf(n, n + ch), bias = randf(ch, ch + 7);
      const [ix, ib, iy, idb] = [put(x), put(bias), cpu.alloc(4 * n), cpu.alloc(4 * ch)];
      cpu.biasAdd(outer, ch, inner, ix, ib, iy);
      const ref = Array.from(x, (v, i) => v + bias[Math.floor(i / inner) % ch]);
      expectClose(await get(iy), ref, { atol: 1e-45, rtol: U }, 'biasAdd'); // one rounding
      cpu.biasGrad(outer, ch, inner, ix, idb);
      const db = new Float64Array(ch), mag = new Float64Array(ch);
      x.forEach((v, i) => { const c = Math.floor(i / inner) % ch; db[c] += v; mag[c] += Math.abs(v); });
      // Summed in double (error ~ n * 2^-53 * sum|x|, negligible), then rounded once to float32.
      const got = await get(idb);
      expectEach(ch, 'biasGrad', (c) => [got[c], db[c], U * Math.abs(db[c]) + 1e-12 * mag[c]]);
      cpu.biasAdd(outer, ch, inner, ix, ib, ix); // in place
      const [inPlace, y] = [await get(ix), await get(iy)];
      expectEach(n, 'biasAdd in place', (i) => [inPlace[i], y[i], 0]);
      freeAll(ix, ib, iy, idb);
    });

  it.each(SIZES)('sumsqCheck, n=%i (double accumulation: rtol 1e-12)', async (n) => {
    const x = randf(n, 5 * n, 3);
    const [ix, io] = [put(x), cpu.alloc(16)];
    cpu.sumsqCheck(n, ix, io);
    const out = new Float64Array(await cpu.download(io));
    const ref = x.reduce((s, v) => s + v * v, 0);
    expect(Math.abs(out[0] - ref)).toBeLessThanOrEqual(1e-12 * ref);
    expect(out[1]).toBe(0);
    const bad = x.slice();
    bad[0] = NaN;
    bad[n - 1] = n > 1 ? -Infinity : NaN;
    cpu.upload(ix, bad);
    cpu.sumsqCheck(n, ix, io);
    const out2 = new Float64Array(await cpu.download(io));
    expect(Number.isNaN(out2[0])).toBe(true);
    expect(out2[1]).toBe(n > 1 ? 2 : 1);
    freeAll(ix, io);
  });
});

describe('dropout', () => {
  const G = 0x9e3779b97f4a7c15n, M = (1n << 64n) - 1n;
  function keepRef(n: number, p: number, seed: number): boolean[] { // the splitmix64 hash of elementwise.cc
    const out: boolean[] = [];
    for (let i = 0; i < n; i++) {
      let z = (BigInt(seed) + BigInt(i + 1) * G) & M;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
      z ^= z >> 31n;
      out.push(Number(z >> 40n) / 2 ** 24 >= Math.fround(p));
    }
    return out;
  }

  it.each(SIZES)('matches the reference hash bit for bit, n=%i', async (n) => {
    const p = 0.3, seed = 12345 + n, x = randf(n, n + 9);
    const [ix, im, iy] = [put(x), cpu.alloc(4 * n), cpu.alloc(4 * n)];
    cpu.dropoutFwd(n, p, seed, ix, im, iy);
    const [mask, y] = [await get(im), await get(iy)];
    const keep = keepRef(n, p, seed), s = Math.fround(1 / Math.fround(1 - Math.fround(p)));
    expectEach(n, 'mask', (i) => [mask[i], keep[i] ? s : 0, 0]);
    expectEach(n, 'y', (i) => [y[i], Math.fround(x[i] * mask[i]), 0]); // one exact-then-rounded product
    if (n === 70001) {
      const kept = keep.filter(Boolean).length / n; // sd of the fraction is ~0.0017 here
      expect(Math.abs(kept - (1 - p))).toBeLessThan(0.01);
    }
    cpu.dropoutFwd(n, p, seed, ix, im, ix); // in place; same seed -> same mask
    const yInPlace = await get(ix);
    expectEach(n, 'y in place', (i) => [yInPlace[i], y[i], 0]);
    freeAll(ix, im, iy);
  });

  it('is deterministic per seed, and p = 0 / p = 1 keep / drop everything', async () => {
    const n = 1000, x = randf(n, 1);
    const [ix, im, iy] = [put(x), cpu.alloc(4 * n), cpu.alloc(4 * n)];
    cpu.dropoutFwd(n, 0.5, 7, ix, im, iy);
    const m1 = await get(im);
    cpu.dropoutFwd(n, 0.5, 8, ix, im, iy);
    const m2 = await get(im);
    cpu.dropoutFwd(n, 0.5, 7, ix, im, iy);
    expect(await get(im)).toEqual(m1);
    expect(m2).not.toEqual(m1);
    cpu.dropoutFwd(n, 0, 7, ix, im, iy);
    expect(await get(iy)).toEqual(x);
    cpu.dropoutFwd(n, 1, 7, ix, im, iy);
    expect(await get(im)).toEqual(new Float32Array(n));
    freeAll(ix, im, iy);
  });
});

describe('softmax cross-entropy', () => {
  function ref(x: Float32Array, labels: Int32Array, n: number, c: number, eps64: number) {
    const eps = Math.fround(eps64); // the kernel receives eps as float32
    const probs = new Float64Array(n * c), loss = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const row = x.subarray(i * c, (i + 1) * c);
      const m = Math.max(...row);
      let s = 0;
      for (const v of row) s += Math.exp(v - m);
      const logZ = m + Math.log(s);
      let l = 0;
      for (let j = 0; j < c; j++) {
        probs[i * c + j] = Math.exp(row[j] - logZ);
        l -= ((j === labels[i] ? 1 - eps : 0) + eps / c) * (row[j] - logZ);
      }
      loss[i] = l;
    }
    return { probs, loss };
  }

  it.each([[1, 1], [3, 7], [17, 3], [7, 1000], [70, 1001]])('fwd + bwd, n=%i c=%i, eps 0 and 0.1', async (n, c) => {
    for (const eps of [0, 0.1]) {
      const x = randf(n * c, n * c + 1, 6);
      const labels = Int32Array.from({ length: n }, (_, i) => (i * 7 + 3) % c);
      const [ix, il, ip, iloss, id] = [put(x), put(labels), cpu.alloc(4 * n * c), cpu.alloc(4 * n), cpu.alloc(4 * n * c)];
      cpu.softmaxXentFwd(n, c, eps, ix, il, ip, iloss);
      const r = ref(x, labels, n, c, eps);
      const probs = await get(ip);
      // probs: computed in double, rounded to float32 twice (exp term, then normalised).
      expectClose(probs, r.probs, { atol: 1e-45, rtol: 2 * U }, `probs eps=${eps}`);
      // loss: double arithmetic on the same float inputs, one final rounding; the absolute term
      // covers libm exp/log differences (~1e-16 relative to logZ ~ 10).
      expectClose(await get(iloss), r.loss, { atol: 1e-12, rtol: U }, `loss eps=${eps}`);
      const scale = 1 / n;
      cpu.softmaxXentBwd(n, c, eps, scale, ip, il, id);
      const epsF = Math.fround(eps);
      const t = (i: number, j: number) => (j === labels[i] ? 1 - epsF : 0) + epsF / c;
      const dref = Array.from(probs, (p, k) => scale * (p - t(Math.floor(k / c), k % c)));
      const got = await get(id);
      // float32: eps/C and (1-eps)+eps/C rounded, one subtraction, one product.
      expectEach(n * c, `dlogits eps=${eps}`, (k) =>
        [got[k], dref[k], 3 * U * scale * (probs[k] + t(Math.floor(k / c), k % c)) + 1e-45]);
      freeAll(ix, il, ip, iloss, id);
    }
  });

  it('stays finite for huge logits (max subtraction) and may alias probs with logits', async () => {
    const x = Float32Array.from([1000, -1000, 0, 88, 89, 90]);
    const [ix, il, iloss] = [put(x), put(Int32Array.from([1, 0])), cpu.alloc(8)];
    cpu.softmaxXentFwd(2, 3, 0, ix, il, ix, iloss); // probs written over logits
    const [p, l] = [await get(ix), await get(iloss)];
    const r = ref(x, Int32Array.from([1, 0]), 2, 3, 0);
    expectClose(p, r.probs, { atol: 1e-45, rtol: 2 * U }, 'probs');
    expect(l[0]).toBe(2000); // -log p(-1000 | [1000, -1000, 0]) = 2000, finite though p underflows
    expectClose(l, r.loss, { atol: 0, rtol: U }, 'loss');
    freeAll(ix, il, iloss);
  });
});

describe('sgd', () => {
  // float32 arithmetic, as PyTorch's CPU SGD: a few roundings of terms bounded by `mag`.
  it.each(SIZES)('momentum/nesterov/weight decay over 3 steps, n=%i', async (n) => {
    for (const [momentum, nesterov, wd] of [[0, false, 0], [0.9, false, 5e-4], [0.9, true, 1e-2]] as const) {
      const w = Float64Array.from(randf(n, n + 2)), v = new Float64Array(n);
      const [iw, ig, iv] = [put(Float32Array.from(w)), cpu.alloc(4 * n), cpu.alloc(4 * n)];
      cpu.fill(n, momentum === 0 ? NaN : 0, iv); // at momentum 0 the buffer must not be read
      const lr = 0.1;
      const [lrF, mF, wdF] = [Math.fround(lr), Math.fround(momentum), Math.fround(wd)]; // the kernel's float32 hyper-parameters
      for (let step = 0; step < 3; step++) {
        const g = randf(n, 100 * n + step);
        cpu.upload(ig, g);
        cpu.sgdUpdate(n, lr, momentum, wd, nesterov, iw, ig, iv);
        const [gotW, gotV] = [await get(iw), await get(iv)];
        const gd = (i: number) => g[i] + wdF * w[i];
        const vNew = (i: number) => mF * v[i] + gd(i);
        const what = `sgd step ${step} momentum ${momentum} nesterov ${nesterov}`;
        // v: roundings of wd*w, +g, m*v, + (bounded by the terms, since g + wd*w may cancel)
        const vmag = (i: number) => mF * Math.abs(v[i]) + Math.abs(g[i]) + wdF * Math.abs(w[i]);
        expectEach(n, `${what}: v`, (i) => [gotV[i], vNew(i), 4 * U * vmag(i) + 1e-30]);
        expectEach(n, `${what}: w`, (i) => {
          const upd = nesterov ? gd(i) + mF * vNew(i) : vNew(i);
          const mag = Math.abs(w[i]) + lrF * (Math.abs(g[i]) + wdF * Math.abs(w[i]) + 2 * Math.abs(vNew(i)));
          return [gotW[i], w[i] - lrF * upd, 6 * U * mag];
        });
        w.set(gotW); // follow the kernel, so errors do not compound across steps
        v.set(gotV);
      }
      freeAll(iw, ig, iv);
    }
  });
});
