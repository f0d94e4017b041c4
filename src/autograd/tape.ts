// Reverse-mode autograd. Each op that runs while gradients are enabled and has an input that
// requires a gradient attaches a GradNode to its output: the inputs, and a backward function
// that maps the output gradient to one gradient per input (null where none is needed).
// backward(root) walks the graph in reverse topological order, summing gradients that meet
// at a tensor used twice, and stores the sums of leaves in `leaf.grad`.
import { Tensor } from '../tensor.js';

export interface GradNode {
  op: string;
  inputs: (Tensor | null)[];
  /** gy is the output gradient; a number only for the root of backward() when scalarSeed is set. */
  backward(gy: Tensor | number): (Tensor | null)[];
  /** True for losses whose backward takes the seed as a plain number. */
  scalarSeed?: boolean;
  /** Tensors the node owns for backward (argmax, masks, views of probabilities); freed with the output. */
  saved?: Tensor[];
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn with gradient recording off (evaluation, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** True when an op on these inputs must record a node. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/** Attaches a node to `out` if any input needs a gradient. Returns `out`. */
export function record(
  out: Tensor, op: string, inputs: (Tensor | null)[], backward: GradNode['backward'],
  extra: { saved?: Tensor[]; scalarSeed?: boolean } = {},
): Tensor {
  if (!needsGrad(...inputs)) {
    for (const t of extra.saved ?? []) t.dispose();
    return out;
  }
  out.requiresGrad = true;
  out.node = { op, inputs, backward, ...extra };
  return out;
}

function addInto(a: Tensor, b: Tensor): Tensor {
  const be = a.backend;
  const out = Tensor.empty(be, a.shape);
  be.add(a.size, a.buf, b.buf, out.buf);
  return out;
}

/**
 * Backpropagates from `root` (usually a scalar loss), seeding its gradient with `seed`.
 * Leaf gradients accumulate into `.grad`; intermediate gradients are freed as soon as they
 * have been used.
 */
export function backward(root: Tensor, seed = 1): void {
  if (!root.requiresGrad) throw new Error(`backward(): ${root} does not require a gradient`);
  // Reverse topological order by iterative DFS.
  const order: Tensor[] = [];
  const seen = new Set<number>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root.id);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const inp = inputs[i];
      if (inp && inp.requiresGrad && !seen.has(inp.id)) {
        seen.add(inp.id);
        stack.push([inp, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  const grads = new Map<number, Tensor | number>();
  // Losses take the seed as a number; any other root gets a tensor of seeds (d sum(root) * seed).
  grads.set(root.id, root.node?.scalarSeed ? seed : Tensor.filled(root.backend, root.shape, seed));
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k];
    const g = grads.get(t.id);
    if (g === undefined) continue;
    grads.delete(t.id);
    if (!t.node) {
      // Leaf: accumulate.
      if (typeof g === 'number') throw new Error('backward(): the root must be the output of an op');
      if (t.grad) {
        const sum = addInto(t.grad, g);
        t.grad.dispose();
        g.dispose();
        t.grad = sum;
      } else {
        t.grad = g;
      }
      continue;
    }
    const node = t.node;
    const ins = node.backward(g);
    // A backward that hands gy straight through must not lose it when gy is freed below.
    for (let j = 0; j < ins.length; j++) if (ins[j] && ins[j] === g) ins[j] = (g as Tensor).reshape((g as Tensor).shape);
    if (typeof g !== 'number') g.dispose();
    for (let j = 0; j < node.inputs.length; j++) {
      const inp = node.inputs[j];
      const gi = ins[j];
      if (!inp || !gi || !inp.requiresGrad) {
        if (gi) gi.dispose();
        continue;
      }
      const prev = grads.get(inp.id);
      if (prev === undefined) grads.set(inp.id, gi);
      else {
        const sum = addInto(prev as Tensor, gi);
        (prev as Tensor).dispose();
        gi.dispose();
        grads.set(inp.id, sum);
      }
    }
  }
}
