// Closeness checks for op and model tests (STYLE rule 4), with failure messages that name
// the worst element, so a failing case can be reported precisely.
//
//   expectClose(actual, expected, { atol, rtol }, what)   every i: |a-b| <= atol + rtol*|b|
//   expectNormClose(actual, expected, tol, what)           ||a-b|| / ||b|| <= tol  (long reductions)
import { expect } from 'vitest';

export interface Tol {
  atol: number;
  rtol: number;
}

export interface Diff {
  maxAbs: number;
  worst: number; // index of the element with the largest excess over its tolerance
  normErr: number; // ||a-b|| / ||b||
  maxRef: number; // max |b|
}

export function diff(a: ArrayLike<number>, b: ArrayLike<number>, tol: Tol = { atol: 0, rtol: 0 }): Diff {
  let maxAbs = 0, worst = -1, worstExcess = -Infinity, num = 0, den = 0, maxRef = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    const excess = Number.isNaN(d) ? Infinity : d - (tol.atol + tol.rtol * Math.abs(b[i]));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? NaN : d;
    num += d * d;
    den += b[i] * b[i];
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  return { maxAbs, worst, normErr: Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30), maxRef };
}

export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: Tol, what: string): Diff {
  expect(a.length, `${what}: length`).toBe(b.length);
  const d = diff(a, b, tol);
  const i = d.worst;
  const ok = b.length === 0 || (Math.abs(a[i] - b[i]) <= tol.atol + tol.rtol * Math.abs(b[i]));
  expect(ok, `${what}: element ${i}: got ${a[i]}, expected ${b[i]} (|diff| ${Math.abs(a[i] - b[i]).toExponential(2)} > ` +
    `atol ${tol.atol} + rtol ${tol.rtol} * |expected|; max |diff| ${d.maxAbs.toExponential(2)}, norm err ${d.normErr.toExponential(2)})`).toBe(true);
  return d;
}

export function expectNormClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): Diff {
  expect(a.length, `${what}: length`).toBe(b.length);
  const d = diff(a, b);
  expect(d.normErr <= tol, `${what}: ||a-b||/||b|| = ${d.normErr.toExponential(2)} > ${tol} ` +
    `(max |diff| ${d.maxAbs.toExponential(2)} at ${d.worst}, max |b| ${d.maxRef.toExponential(2)})`).toBe(true);
  return d;
}
