// Central finite differences of a float64 function, and seeded test data.
//
// With f evaluated in float64 and inputs of size O(1), a step h = 1e-6 leaves a truncation
// error of about h^2 |f'''| ~ 1e-12 and a rounding error of about 1e-16 |f| / h ~ 1e-10: the
// numerical gradient is exact to far below any float32 tolerance, as long as no kink (ReLU
// at 0, a max-pool tie) lies within h of the input. Tests build inputs that keep kinks at
// least 1e-2 away instead of loosening tolerances (STYLE rule 5).
import { Rng } from '../../src/util/rng.js';

export const FD_STEP = 1e-6;

/** d f(xs) / d xs[which], element by element; xs are not modified. */
export function centralDiff(f: (xs: Float64Array[]) => number, xs: ArrayLike<number>[], which: number, h = FD_STEP): Float64Array {
  const args = xs.map((x) => Float64Array.from(x));
  const x = args[which];
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    x[i] = v + h;
    const fp = f(args);
    x[i] = v - h;
    const fm = f(args);
    x[i] = v;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** n standard-normal float32 values scaled by `std`, from a seeded stream. */
export function randn(n: number, seed: number, std = 1): Float32Array {
  const rng = new Rng(seed, 'test-data');
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
  return a;
}

/** Normal values pushed at least `gap` away from 0 (ReLU inputs with no kink within reach). */
export function randnAwayFromZero(n: number, seed: number, gap = 0.05): Float32Array {
  const a = randn(n, seed);
  for (let i = 0; i < n; i++) a[i] = a[i] >= 0 ? a[i] + gap : a[i] - gap;
  return a;
}

/**
 * n distinct values spaced `step` apart, in a seeded random order, centred on 0 (max-pool
 * inputs with no ties: any two elements differ by at least `step`, far more than FD_STEP).
 */
export function distinctShuffled(n: number, seed: number, step = 0.02): Float32Array {
  const rng = new Rng(seed, 'test-data');
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (i - (n - 1) / 2) * step;
  return rng.shuffle(a);
}

/** Random class labels in [0, c). */
export function randLabels(n: number, c: number, seed: number): Int32Array {
  const rng = new Rng(seed, 'labels');
  return Int32Array.from({ length: n }, () => rng.int(c));
}
