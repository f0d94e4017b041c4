// Forward FLOPs per image of any model, and the module walk that finds them.
//
// What is counted: multiply-accumulates of convolutions and fully connected layers, the
// convention of the papers and of torchvision's "GFLOPS" column (which lists MACs):
//   conv2d  K * C * R * S * P * Q per image  (bias adds not counted)
//   linear  in * out per image
// flops = 2 * macs. Not counted: batch norm, ReLU, pooling, LRN, residual adds, dropout and
// the loss. For ResNet-50 at 224 they are memory-bound work on the 11.1M conv outputs, about
// 0.06 GFLOP (< 1 % of 8.2). Backward costs about twice the forward (data and filter
// gradients), so a training step is ~3x the forward figure.
//
// How: one forward of a single image of zeros, in evaluation mode and without gradients,
// with every module's forward wrapped (traceForward) to see the input and output shape of
// each Conv2d and Linear. Running the model, rather than propagating shapes by hand, gives
// the exact shapes of any model, including those whose forward is custom code (residual
// blocks), with no per-model shape rules to keep in sync. The cost is one forward pass of one
// image (0.2 s for ResNet-50 at 224 on a 2-core CPU). Training/eval flags are restored after.
import type { Backend } from '../backend/backend.js';
import { Tensor } from '../tensor.js';
import { tidy } from '../autograd/scope.js';
import { noGrad } from '../autograd/tape.js';
import { Module } from '../nn/module.js';
import { Conv2d, Linear } from '../nn/layers.js';

/** The child modules of m with their names (Module keeps the list protected). */
function childrenOf(m: Module): readonly [string, Module][] {
  return (m as unknown as { children: [string, Module][] }).children;
}

/** Every module of the tree, depth first, with dotted names ('' for the root). */
export function namedModules(root: Module): [string, Module][] {
  const out: [string, Module][] = [];
  const seen = new Set<Module>();
  const visit = (name: string, m: Module) => {
    if (seen.has(m)) return;
    seen.add(m);
    out.push([name, m]);
    for (const [n, c] of childrenOf(m)) visit(name ? `${name}.${n}` : n, c);
  };
  visit('', root);
  return out;
}

/**
 * Runs `fn` with every module's forward wrapped so that `onOutput(name, module, x, y)` sees
 * each call's input and output, inner modules before the modules that contain them.
 * The wrappers are removed afterwards, also when fn throws. Synchronous, like forward.
 */
export function traceForward<T>(root: Module, onOutput: (name: string, m: Module, x: Tensor, y: Tensor) => void, fn: () => T): T {
  const patched: Module[] = [];
  try {
    for (const [name, m] of namedModules(root)) {
      const inner = m.forward; // the class's method
      m.forward = (x: Tensor): Tensor => {
        const y = inner.call(m, x);
        onOutput(name, m, x, y);
        return y;
      };
      patched.push(m);
    }
    return fn();
  } finally {
    for (const m of patched) Reflect.deleteProperty(m, 'forward'); // back to the prototype's
  }
}

export interface LayerFlops {
  name: string;
  kind: 'conv2d' | 'linear';
  inShape: number[];
  outShape: number[];
  /** Multiply-accumulates per image. */
  macs: number;
  params: number;
}

export interface FlopsReport {
  /** [C, H, W] of the image. */
  input: [number, number, number];
  /** Conv + linear multiply-accumulates per image. */
  macs: number;
  /** 2 * macs. */
  flops: number;
  /** Trainable parameters (every one, not only conv/linear). */
  params: number;
  layers: LayerFlops[];
}

function kindOf(m: Module): LayerFlops['kind'] | null {
  if (m instanceof Conv2d) return 'conv2d';
  if (m instanceof Linear) return 'linear';
  return null;
}

/** Forward MACs and FLOPs per image of `model` on inputs of shape [C, H, W]. */
export function countFlops(model: Module, be: Backend, input: [number, number, number]): FlopsReport {
  const layers: LayerFlops[] = [];
  const modes = namedModules(model).map(([, m]) => [m, m.training] as const);
  model.eval();
  try {
    tidy(() => noGrad(() => {
      const x = Tensor.filled(be, [1, ...input], 0);
      traceForward(model, (name, m, xin, y) => {
        const kind = kindOf(m);
        if (!kind) return;
        const w = (m as Conv2d | Linear).weight;
        // conv: output elements K*P*Q, each a dot product over C*R*S; linear: out * in.
        const macs = kind === 'conv2d' ? (y.size / y.shape[0]) * (w.size / w.shape[0]) : w.size;
        const bias = (m as Conv2d | Linear).bias;
        layers.push({ name, kind, inShape: [...xin.shape.slice(1)], outShape: [...y.shape.slice(1)], macs, params: w.size + (bias?.size ?? 0) });
      }, () => model.forward(x));
    }));
  } finally {
    for (const [m, training] of modes) m.training = training;
  }
  const macs = layers.reduce((s, l) => s + l.macs, 0);
  const params = model.parameters().reduce((s, p) => s + p.size, 0);
  return { input, macs, flops: 2 * macs, params, layers };
}

/** "4.09 GMAC (8.18 GFLOP)" */
export function formatFlops(r: FlopsReport): string {
  const g = (v: number) => (v >= 1e9 ? `${(v / 1e9).toFixed(2)} G` : `${(v / 1e6).toFixed(1)} M`);
  return `${g(r.macs)}MAC (${g(r.flops)}FLOP) per image at ${r.input.join('x')}`;
}
