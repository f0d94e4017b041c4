// Helpers shared by the op files: shape checks with messages that name the op and both
// shapes, and output-size arithmetic for convolution and pooling.
import type { Backend } from '../backend/backend.js';
import { Tensor, Shape } from '../tensor.js';
import { ShapeError, fmtShape } from '../util/errors.js';

/**
 * "conv2d in layer features.0" when the weight carries its dotted name (ModelSpec.build names
 * every parameter after its path in the model), else the plain op name.
 */
export function opLabel(op: string, weight: Tensor): string {
  const n = weight.name;
  return n && n.includes('.') ? `${op} in layer ${n.replace(/\.weight$/, '')}` : op;
}

export function expectRank(op: string, what: string, t: Tensor, rank: number): void {
  if (t.rank !== rank) throw new ShapeError(op, `${what} must be rank ${rank}, got ${fmtShape(t.shape)}`);
}

export function expectSameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(op, `shapes differ: ${fmtShape(a.shape)} vs ${fmtShape(b.shape)}`);
  }
}

export function expectSameBackend(op: string, ...ts: (Tensor | null)[]): Backend {
  const be = ts.find((t) => t)!.backend;
  for (const t of ts) {
    if (t && t.backend !== be) throw new Error(`${op}: tensors live on different backends (${be.name} and ${t.backend.name})`);
  }
  return be;
}

/** floor((in + 2*pad - dil*(k-1) - 1) / stride) + 1, or a ShapeError if it is < 1. */
export function outSize(op: string, input: number, k: number, stride: number, pad: number, dil = 1): number {
  const out = Math.floor((input + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
  if (out < 1) {
    throw new ShapeError(op, `window ${k} (dilation ${dil}) with stride ${stride} and padding ${pad} does not fit input size ${input}`);
  }
  return out;
}

export function empty(be: Backend, shape: Shape): Tensor {
  return Tensor.empty(be, shape);
}

export type Pair = number | [number, number];
export function pair(v: Pair): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}
