// The ONNX export of our own graph with our weights (graph.ts + onnx.ts): ONNX Runtime for Node
// must give our outputs, and so must the TensorFlow.js wasm rebuild of the same graph.
import { describe, expect, it } from 'vitest';
import { getBackend } from '../../src/backend/registry.js';
import { getModelSpec } from '../../src/models/index.js';
import { traceGraph, describeGraph } from '../../src/bench/graph.js';
import { decodeOnnx, exportOnnx } from '../../src/bench/onnx.js';
import { loadTfjsWasm, nchwToNhwc, ortSession, tfjsModel, tfjsUnsupported } from '../../src/bench/frameworks.js';
import { Tensor } from '../../src/tensor.js';
import { noGrad } from '../../src/autograd/tape.js';
import { tidy } from '../../src/autograd/scope.js';
import { Rng } from '../../src/util/rng.js';

const be = getBackend('cpu');

async function oursAndInput(name: string, batch: number) {
  const spec = getModelSpec(name);
  const net = spec.build(be, 3);
  const shape = [batch, ...spec.input];
  const rng = new Rng(5, 'onnx-test');
  const x = new Float32Array(shape.reduce((a, b) => a * b)).map(() => rng.normal());
  // Non-trivial BN statistics, so the export of running mean/var is exercised.
  for (const [n, t] of net.namedBuffers()) {
    const v = new Float32Array(t.size).map(() => (n.endsWith('running_var') ? 0.5 + rng.uniform() : rng.normal() * 0.1));
    t.backend.upload(t.buf, v);
  }
  net.eval();
  const y = tidy(() => noGrad(() => net.forward(Tensor.fromArray(be, shape, x))));
  const ours = new Float32Array(await y.data());
  y.dispose();
  const graph = await traceGraph(net, be, spec.input);
  net.dispose();
  return { x, shape, ours, graph };
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(a[i]));
  }
  return d / Math.max(m, 1e-6);
}

describe('ONNX export of our graph', () => {
  it('lenet5: the layer list and the protobuf round trip', async () => {
    const { graph } = await oursAndInput('lenet5', 2);
    expect(describeGraph(graph).split('\n')).toHaveLength(12);
    const bytes = exportOnnx(graph, { modelName: 'lenet5' });
    const m = decodeOnnx(bytes) as { ir_version: number; opset_import: { version: number }[]; graph: { node: { op_type: string }[]; initializer: { name: string; dims: number[] }[]; input: { name: string }[] } };
    expect(m.ir_version).toBe(7);
    expect(m.opset_import[0].version).toBe(13);
    expect(m.graph.node.map((n) => n.op_type)).toEqual(['Conv', 'Relu', 'MaxPool', 'Conv', 'Relu', 'MaxPool', 'Flatten', 'Gemm', 'Relu', 'Gemm', 'Relu', 'Gemm', 'Identity']);
    expect(m.graph.initializer.find((t) => t.name === '0.weight')?.dims).toEqual([6, 1, 5, 5]);
    expect(m.graph.input[0].name).toBe('input');
  });

  for (const [name, batch] of [['lenet5', 3], ['cifar10-tf', 2], ['resnet20', 2], ['mnist-tf', 2]] as const) {
    it(`${name}: ONNX Runtime and TensorFlow.js wasm give our outputs`, async () => {
      const { x, shape, ours, graph } = await oursAndInput(name, batch);
      const s = await ortSession(exportOnnx(graph, { modelName: name }), 1);
      try {
        const theirs = await s.run(x, shape);
        expect(theirs.length).toBe(ours.length);
        expect(maxRel(ours, theirs)).toBeLessThan(1e-4);
      } finally {
        await s.session.release();
      }
      const { tf } = await loadTfjsWasm(1);
      expect(tfjsUnsupported(tf, graph)).toBeNull();
      const m = tfjsModel(tf, graph);
      const xt = tf.tensor4d(nchwToNhwc(x, shape), [shape[0], shape[2], shape[3], shape[1]]);
      const y = m.run(xt);
      expect(maxRel(ours, y.dataSync() as Float32Array)).toBeLessThan(1e-4);
      y.dispose();
      xt.dispose();
      m.dispose();
    }, 60_000);
  }

  it('ResNet-50 v1.5 exports (bottlenecks, projections, BN, global pool): ONNX Runtime agrees at 64x64', async () => {
    const spec = getModelSpec('resnet50');
    const net = spec.build(be, 1, { inputSize: 64, numClasses: 10 });
    const shape = [1, 3, 64, 64];
    const rng = new Rng(2, 'onnx-r50');
    const x = new Float32Array(3 * 64 * 64).map(() => rng.normal());
    net.eval();
    const y = tidy(() => noGrad(() => net.forward(Tensor.fromArray(be, shape, x))));
    const ours = new Float32Array(await y.data());
    y.dispose();
    const graph = await traceGraph(net, be, [3, 64, 64]);
    net.dispose();
    const ops = graph.nodes.map((n) => n.op);
    expect(ops.filter((o) => o === 'conv')).toHaveLength(53);
    expect(ops.filter((o) => o === 'add')).toHaveLength(16);
    const s = await ortSession(exportOnnx(graph, { modelName: 'resnet50' }), 2);
    try {
      expect(maxRel(ours, await s.run(x, shape))).toBeLessThan(1e-3);
    } finally {
      await s.session.release();
    }
  }, 120_000);
});
