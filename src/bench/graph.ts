// A model's inference graph, read off our own model by running it once: the layer list that
// the ONNX exporter (onnx.ts) and the TensorFlow.js runner (frameworks.ts) rebuild, with our
// weights, so that every framework column runs the same network with the same numbers.
//
// How: one forward of a [1, C, H, W] input in evaluation mode with gradients on, every
// module's forward wrapped (as flops.ts's traceForward does). The autograd tape then links
// every tensor to the op that made it. Walking back from the output:
//   - a tensor that a known layer module returned (Conv2d, Linear, ReLU, MaxPool2d, AvgPool2d,
//     Flatten, Dropout, BatchNorm2d, LocalResponseNorm, GlobalAvgPool2d) becomes that layer,
//     with the module's attributes and parameters, and the walk continues at the module's input;
//   - any other tensor is a functional op written in a container's forward (the residual
//     blocks' relu(...) and add(...)): its tape node names it ('relu', 'add', 'reshape');
//   - the input tensor ends the walk.
// An op the exporter does not know throws, naming it, instead of exporting a wrong graph.
// Dropout in evaluation mode returns its input itself; for the trace it returns a view, so that
// it shows up as a node (ONNX Dropout, the identity at inference).
import type { Backend } from '../backend/backend.js';
import { Tensor } from '../tensor.js';
import { tidy } from '../autograd/scope.js';
import type { Module } from '../nn/module.js';
import { AvgPool2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU } from '../nn/layers.js';
import { BatchNorm2d, GlobalAvgPool2d, LocalResponseNorm } from '../nn/norm.js';
import { namedModules } from '../models/flops.js';
import { pair } from '../ops/util.js';

export interface PoolAttrs {
  kernel: [number, number];
  stride: [number, number];
  pad: [number, number];
  countIncludePad: boolean;
}

export type GraphNode = { name: string; inputs: string[]; output: string; outShape: number[] } & (
  | { op: 'conv'; weight: string; bias: string | null; kernel: [number, number]; stride: [number, number]; pad: [number, number]; dilation: [number, number] }
  | { op: 'linear'; weight: string; bias: string | null }
  | { op: 'relu' }
  | { op: 'add' }
  | { op: 'flatten' }
  | { op: 'dropout'; p: number }
  | ({ op: 'maxpool' } & PoolAttrs)
  | ({ op: 'avgpool' } & PoolAttrs)
  | { op: 'globalavgpool' }
  | { op: 'batchnorm'; weight: string; bias: string; mean: string; var: string; eps: number }
  | { op: 'lrn'; radius: number; bias: number; alpha: number; beta: number }
);

export interface GraphWeight {
  shape: number[];
  data: Float32Array;
}

export interface ModelGraph {
  /** [C, H, W] of one image; the batch dimension is free. */
  input: [number, number, number];
  outputShape: number[];
  nodes: GraphNode[];
  weights: Map<string, GraphWeight>;
}

const LEAVES = [Conv2d, Linear, ReLU, MaxPool2d, AvgPool2d, Flatten, Dropout, BatchNorm2d, LocalResponseNorm, GlobalAvgPool2d];
const isLeaf = (m: Module) => LEAVES.some((C) => m instanceof C);

function poolAttrs(o: { kernel: number | [number, number]; stride?: number | [number, number]; padding?: number | [number, number]; countIncludePad?: boolean }): PoolAttrs {
  return {
    kernel: pair(o.kernel), stride: pair(o.stride ?? o.kernel), pad: pair(o.padding ?? 0), countIncludePad: o.countIncludePad ?? true,
  };
}

/** Traces `model` (see the header) and reads its weights. The model's train/eval flags are restored. */
export async function traceGraph(model: Module, be: Backend, input: [number, number, number]): Promise<ModelGraph> {
  const modules = namedModules(model);
  const flags = modules.map(([, m]) => [m, m.training] as const);
  const paramName = new Map<number, string>();
  for (const [n, t] of model.namedParameters()) paramName.set(t.id, n);
  for (const [n, t] of model.namedBuffers()) paramName.set(t.id, n);
  const weightTensors = new Map<string, Tensor>();
  const nodes: GraphNode[] = [];
  let outputShape: number[] = [];
  model.eval();
  try {
    tidy(() => {
      const calls = new Map<number, { name: string; m: Module; x: Tensor; y: Tensor }>();
      const patched: Module[] = [];
      try {
        for (const [name, m] of modules) {
          if (!isLeaf(m)) continue;
          const inner = m.forward;
          m.forward = (x: Tensor): Tensor => {
            let y = inner.call(m, x);
            if (y === x) y = x.reshape(x.shape); // eval Dropout: a view, so it is a node of its own
            if (!calls.has(y.id)) calls.set(y.id, { name, m, x, y });
            return y;
          };
          patched.push(m);
        }
        const x = Tensor.filled(be, [1, ...input], 0);
        const y = model.forward(x);
        outputShape = [...y.shape.slice(1)];
        const names = new Map<number, string>([[x.id, 'input']]);
        let anon = 0;
        const used = new Set<string>(['input']);
        const unique = (n: string) => {
          let u = n, k = 1;
          while (used.has(u)) u = `${n}_${++k}`;
          used.add(u);
          return u;
        };
        const weight = (t: Tensor | null): string | null => {
          if (!t) return null;
          const n = paramName.get(t.id);
          if (!n) throw new Error('graph export: a layer uses a tensor that is not a parameter of the model');
          weightTensors.set(n, t);
          return n;
        };
        const visit = (t: Tensor): string => {
          const known = names.get(t.id);
          if (known) return known;
          const call = calls.get(t.id);
          let node: GraphNode;
          const outShape = [...t.shape.slice(1)];
          if (call) {
            const xin = visit(call.x);
            const m = call.m;
            const out = unique(call.name || 'root');
            const base = { name: out, inputs: [xin], output: out, outShape };
            if (m instanceof Conv2d) {
              node = { ...base, op: 'conv', weight: weight(m.weight)!, bias: weight(m.bias), kernel: [m.weight.shape[2], m.weight.shape[3]],
                stride: pair(m.cfg.stride ?? 1), pad: pair(m.cfg.padding ?? 0), dilation: pair(m.cfg.dilation ?? 1) };
            } else if (m instanceof Linear) {
              node = { ...base, op: 'linear', weight: weight(m.weight)!, bias: weight(m.bias) };
            } else if (m instanceof ReLU) node = { ...base, op: 'relu' };
            else if (m instanceof MaxPool2d) node = { ...base, op: 'maxpool', ...poolAttrs(m.opts) };
            else if (m instanceof AvgPool2d) node = { ...base, op: 'avgpool', ...poolAttrs(m.opts) };
            else if (m instanceof Flatten) node = { ...base, op: 'flatten' };
            else if (m instanceof Dropout) node = { ...base, op: 'dropout', p: m.p };
            else if (m instanceof GlobalAvgPool2d) node = { ...base, op: 'globalavgpool' };
            else if (m instanceof BatchNorm2d) {
              node = { ...base, op: 'batchnorm', weight: weight(m.weight)!, bias: weight(m.bias)!, mean: weight(m.runningMean)!, var: weight(m.runningVar)!, eps: m.eps };
            } else if (m instanceof LocalResponseNorm) node = { ...base, op: 'lrn', ...m.opts };
            else throw new Error(`graph export: no rule for module ${call.name} (${m.describe()})`);
          } else {
            const g = t.node;
            if (!g) throw new Error(`graph export: tensor ${t} has no producing op (a constant?)`);
            const ins = g.inputs.filter((i): i is Tensor => i !== null).map(visit);
            const name = unique(`${g.op}_${++anon}`);
            const base = { name, inputs: ins, output: name, outShape };
            if (g.op === 'relu') node = { ...base, op: 'relu' };
            else if (g.op === 'add') node = { ...base, op: 'add' };
            else if (g.op === 'reshape' && t.shape.length === 2) node = { ...base, op: 'flatten' };
            else throw new Error(`graph export: op '${g.op}' outside a layer module is not supported`);
          }
          names.set(t.id, node.output);
          nodes.push(node);
          return node.output;
        };
        visit(y);
      } finally {
        for (const m of patched) Reflect.deleteProperty(m, 'forward');
      }
    });
  } finally {
    for (const [m, training] of flags) m.training = training;
  }
  const weights = new Map<string, GraphWeight>();
  for (const [n, t] of weightTensors) weights.set(n, { shape: [...t.shape], data: new Float32Array(await t.data()) });
  return { input, outputShape, nodes, weights };
}

/** One line per node, for logs and tests: "conv1: conv(input) -> [64, 12, 12]". */
export function describeGraph(g: ModelGraph): string {
  return g.nodes.map((n) => `${n.name}: ${n.op}(${n.inputs.join(', ')}) -> [${n.outShape.join(', ')}]`).join('\n');
}
