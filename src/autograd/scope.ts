// Scopes: explicit memory management in the style of tf.tidy. Every tensor created while a
// scope is open is recorded in it; when the scope closes, all of them are disposed except the
// ones returned from the scope function and the ones marked with keep(). A returned tensor
// moves to the enclosing scope, so nested scopes compose.
import type { Tensor } from '../tensor.js';

const stack: Set<Tensor>[] = [];
const kept = new WeakSet<Tensor>();

export function trackTensor(t: Tensor): void {
  const top = stack[stack.length - 1];
  if (top) top.add(t);
}

/** Exempts a tensor from disposal by any scope (parameters, optimiser state). */
export function keep<T extends Tensor>(t: T): T {
  kept.add(t);
  for (const s of stack) s.delete(t);
  return t;
}

function collect(result: unknown, out: Set<Tensor>): void {
  if (!result || typeof result !== 'object') return;
  if ('shape' in result && 'dispose' in result) {
    out.add(result as Tensor);
    return;
  }
  if (Array.isArray(result)) for (const r of result) collect(r, out);
  else if (Object.getPrototypeOf(result) === Object.prototype) {
    for (const v of Object.values(result)) collect(v, out);
  }
}

/** Runs fn in a new scope; disposes every tensor it created except what it returns. Synchronous only. */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope) if (!kept.has(t)) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) throw new Error('tidy(): the function must be synchronous (await outside the scope)');
  const survivors = new Set<Tensor>();
  collect(result, survivors);
  const parent = stack[stack.length - 1];
  for (const t of scope) {
    if (survivors.has(t)) {
      if (parent) parent.add(t);
    } else if (!kept.has(t)) {
      t.dispose();
    }
  }
  return result;
}

/** Number of open scopes (for tests). */
export function scopeDepth(): number {
  return stack.length;
}
