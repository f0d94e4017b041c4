// Argument checks shared by the webgpu op glue, with the CPU addon's messages (native/op_checks_*.cc):
// every error starts with the op name, so the same test expectations hold on both backends.
// Buffer sizes go through Dispatcher.need(); aliasing that the kernels cannot do in place is
// refused here (the runtime copes with aliasing it can handle, see runtime.ts "Aliasing").
import type { BufferHandle } from '../../backend.js';

const F = 4;
export { F };

function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : v === null ? 'null' : v === undefined ? 'undefined' : typeof v === 'string' ? 'a string' : 'a non-number';
}

/** A positive integer (a size). */
export function dim(op: string, name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > Number.MAX_SAFE_INTEGER) {
    throw new Error(`${op}: ${name} must be a positive integer, got ${show(v)}`);
  }
  return v;
}

/** A non-negative integer. */
export function index(op: string, name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) {
    throw new Error(`${op}: ${name} must be a non-negative integer, got ${show(v)}`);
  }
  return v;
}

export function finite(op: string, name: string, v: number): number {
  if (typeof v !== 'number') throw new TypeError(`${op}: ${name} must be a number, got ${show(v)}`);
  if (!Number.isFinite(v)) throw new Error(`${op}: ${name} must be finite, got ${v}`);
  return v;
}

export function fail(op: string, what: string): never {
  throw new Error(`${op}: ${what}`);
}

/** Refuses `a` and `b` being one buffer (a null `a` is an absent optional output). */
export function distinct(op: string, a: BufferHandle | null, an: string, b: BufferHandle | null, bn: string): void {
  if (a && b && a === b) throw new Error(`${op}: ${an} and ${bn} must be different buffers (id ${a.id})`);
}

/** Every output differs from every other output and from every listed input. */
export function outputsDistinct(op: string, outs: Array<[BufferHandle | null, string]>, ins: Array<[BufferHandle | null, string]>): void {
  for (let i = 0; i < outs.length; i++) {
    for (let j = i + 1; j < outs.length; j++) distinct(op, outs[i][0], outs[i][1], outs[j][0], outs[j][1]);
    for (const [b, bn] of ins) distinct(op, outs[i][0], outs[i][1], b, bn);
  }
}

/** A u32 kernel parameter that must not overflow the shader's 32-bit index arithmetic. */
export function fitsU32(op: string, what: string, v: number): number {
  if (v > 0xffffffff) fail(op, `${what} (${v}) exceeds the 32-bit index range of the webgpu kernels`);
  return v;
}
