// Framework columns, measured in the same run as our figures, on the same network with the
// same weights (graph.ts traces our model; onnx.ts writes it as ONNX):
//
//   onnxruntime-node  inference: the ONNX export of our graph, CPU execution provider,
//                     intra-op threads = ours, inter-op 1, all graph optimisations. Its CPU
//                     binaries ship inside the npm package (install with
//                     ONNXRUNTIME_NODE_INSTALL=skip: the install script would otherwise fetch
//                     CUDA provider libraries).
//   tfjs-wasm         inference: TensorFlow.js's wasm backend (XNNPACK), our graph rebuilt op by
//                     op in NHWC with our weights (OIHW -> HWIO). Where the wasm backend has no
//                     kernel for an op (e.g. LRN), the column is empty and says so. No training:
//                     the wasm backend has no convolution backprop kernels.
//   pytorch           training and inference: bench/baselines/pytorch_cpu.py (python3 + torch),
//                     the same layer sizes (its own weights: speed does not depend on them).
//
// Every runner returns a timing or a reason; a missing framework never yields a number.
// Each timed call covers the whole forward and the read-back of its (small) output, so all the
// work is done when the clock stops; the input is created once, in the framework's layout,
// outside the clock (as ours is uploaded once for 'compute' figures).
import { createRequire } from 'node:module';
import type { ModelGraph } from './graph.js';

export interface FrameworkTiming {
  framework: string;
  /** Seconds per timed call. */
  times: number[];
  threads: number | null;
  notes: string;
}

export type FrameworkOutcome = { ok: true; result: FrameworkTiming } | { ok: false; framework: string; reason: string };

const require = createRequire(import.meta.url);

function packageVersion(name: string): string | null {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return null;
  }
}

function errorText(e: unknown): string {
  const m = (e as Error)?.message ?? String(e);
  return m.split('\n')[0].slice(0, 300);
}

// ---------------------------------------------------------------- ONNX Runtime (Node)

// onnxruntime-node is an optional dependency: it may be absent (its install step failed, or
// it was left out), so the build must not need its type declarations. This is the small part
// of its API used here.
interface OrtTensor { data: unknown }
interface OrtSession { run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>; release(): Promise<void> }
interface Ort {
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => OrtTensor;
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
}
let ortModule: Promise<Ort> | null = null;
const ORT_MODULE = 'onnxruntime-node';

export async function loadOrt(): Promise<Ort> {
  ortModule ??= import(ORT_MODULE) as Promise<Ort>;
  return ortModule;
}

/** An ONNX Runtime session over `onnx` bytes; `run(x)` returns the output values. */
export async function ortSession(onnx: Uint8Array, threads: number) {
  const ort = await loadOrt();
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential', logSeverityLevel: 3,
  });
  return {
    ort,
    session,
    async run(x: Float32Array, shape: number[]): Promise<Float32Array> {
      const out = await session.run({ input: new ort.Tensor('float32', x, shape) });
      return out.output.data as Float32Array;
    },
  };
}

export async function timeOnnxRuntime(onnx: Uint8Array, x: Float32Array, shape: number[], threads: number, warmup: number, iters: number): Promise<FrameworkOutcome> {
  const version = packageVersion('onnxruntime-node');
  const framework = `onnxruntime-node ${version ?? '?'}`;
  if (!version) return { ok: false, framework: 'onnxruntime-node', reason: 'onnxruntime-node is not installed (npm install onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=skip)' };
  let s: Awaited<ReturnType<typeof ortSession>>;
  try {
    s = await ortSession(onnx, threads);
  } catch (e) {
    return { ok: false, framework, reason: `onnxruntime-node could not load the model: ${errorText(e)}` };
  }
  try {
    const tensor = new s.ort.Tensor('float32', x, shape);
    const times: number[] = [];
    for (let i = 0; i < warmup + iters; i++) {
      const t0 = performance.now();
      await s.session.run({ input: tensor });
      if (i >= warmup) times.push((performance.now() - t0) / 1000);
    }
    return {
      ok: true,
      result: {
        framework, times, threads,
        notes: `ONNX Runtime CPU EP on the ONNX export of our graph and weights (opset 13), intra-op threads ${threads}, inter-op 1, all graph optimisations`,
      },
    };
  } finally {
    await s.session.release();
  }
}

// ---------------------------------------------------------------- TensorFlow.js (wasm)

type Tfc = typeof import('@tensorflow/tfjs-core');
type Wasm = typeof import('@tensorflow/tfjs-backend-wasm');
let tfjsReady: Promise<{ tf: Tfc; wasm: Wasm }> | null = null;

export async function loadTfjsWasm(threads: number): Promise<{ tf: Tfc; wasm: Wasm }> {
  tfjsReady ??= (async () => {
    const tf = (await import('@tensorflow/tfjs-core')) as Tfc;
    const wasm = (await import('@tensorflow/tfjs-backend-wasm')) as Wasm;
    try {
      wasm.setThreadsCount(threads);
    } catch {
      // Only meaningful for the threaded build; the Node build is single-threaded.
    }
    const ok = await tf.setBackend('wasm');
    if (!ok) throw new Error('tf.setBackend("wasm") failed');
    await tf.ready();
    return { tf, wasm };
  })();
  return tfjsReady;
}

/** The wasm kernels each graph op needs. */
const TFJS_KERNELS: Record<string, string[]> = {
  conv: ['FusedConv2D'], linear: ['BatchMatMul', 'Add'], relu: ['Relu'], add: ['Add'], flatten: ['Transpose', 'Reshape'], dropout: [],
  maxpool: ['MaxPool'], avgpool: ['AvgPool'], globalavgpool: ['Mean'], batchnorm: ['FusedBatchNorm'], lrn: ['LRN'],
};

/** Why tfjs-wasm cannot run `g`, or null when it can. */
export function tfjsUnsupported(tf: Tfc, g: ModelGraph): string | null {
  const have = new Set(tf.getKernelsForBackend('wasm').map((k) => k.kernelName));
  const missing = new Set<string>();
  for (const n of g.nodes) {
    for (const k of TFJS_KERNELS[n.op] ?? [`(no mapping for ${n.op})`]) if (!have.has(k)) missing.add(`${k} (for ${n.op})`);
    if ((n.op === 'maxpool' || n.op === 'avgpool') && n.pad[0] !== n.pad[1]) missing.add('asymmetric pool padding');
    if (n.op === 'avgpool' && n.countIncludePad && n.pad[0] > 0) missing.add('average pooling that counts padding');
  }
  return missing.size ? `the TensorFlow.js wasm backend has no kernel for ${[...missing].join(', ')}` : null;
}

function oihwToHwio(w: Float32Array, [o, i, h, wd]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let c = 0; c < h; c++) for (let d = 0; d < wd; d++) {
    out[((c * wd + d) * i + b) * o + a] = w[((a * i + b) * h + c) * wd + d];
  }
  return out;
}

export function nchwToNhwc(a: Float32Array, [n, c, h, w]: number[]): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < n; i++) for (let j = 0; j < c; j++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[((i * h + y) * w + x) * c + j] = a[((i * c + j) * h + y) * w + x];
  }
  return out;
}

/** Builds a function running `g` in tfjs (NHWC inside, our NCHW flatten order at Flatten). */
export function tfjsModel(tf: Tfc, g: ModelGraph) {
  const weights = new Map<string, import('@tensorflow/tfjs-core').Tensor>();
  const w = (name: string, layout: 'hwio' | 'plain' = 'plain') => {
    const key = `${name}:${layout}`;
    let t = weights.get(key);
    if (!t) {
      const src = g.weights.get(name);
      if (!src) throw new Error(`tfjs: missing weight ${name}`);
      t = layout === 'hwio'
        ? tf.tensor4d(oihwToHwio(src.data, src.shape), [src.shape[2], src.shape[3], src.shape[1], src.shape[0]])
        : tf.tensor(src.data, src.shape);
      weights.set(key, t);
    }
    return t;
  };
  // Prepare every weight up front (outside the clock).
  for (const n of g.nodes) {
    if (n.op === 'conv') { w(n.weight, 'hwio'); if (n.bias) w(n.bias); }
    if (n.op === 'linear') { w(n.weight); if (n.bias) w(n.bias); }
    if (n.op === 'batchnorm') for (const k of [n.weight, n.bias, n.mean, n.var]) w(k);
  }
  type T = import('@tensorflow/tfjs-core').Tensor;
  const run = (x: T): T => tf.tidy(() => {
    const vals = new Map<string, T>([['input', x]]);
    let last: T = x;
    for (const n of g.nodes) {
      const a = vals.get(n.inputs[0])!;
      let y: T;
      switch (n.op) {
        case 'conv': {
          const [ph, pw] = n.pad;
          y = tf.fused.conv2d({ x: a as import('@tensorflow/tfjs-core').Tensor4D, filter: w(n.weight, 'hwio') as import('@tensorflow/tfjs-core').Tensor4D, strides: n.stride,
            pad: [[0, 0], [ph, ph], [pw, pw], [0, 0]], dataFormat: 'NHWC', dilations: n.dilation, bias: n.bias ? w(n.bias) : undefined });
          break;
        }
        case 'linear': {
          // Not tf.fused.matMul: in tfjs-backend-wasm 4.22 its bias path gives wrong results
          // with transposeB (seen here: errors of 20-140 on N(0, 1) data; test/bench/onnx.test.ts).
          const mm = tf.matMul(a, w(n.weight), false, true);
          y = n.bias ? tf.add(mm, w(n.bias)) : mm;
          break;
        }
        case 'relu': y = tf.relu(a); break;
        case 'add': y = tf.add(a, vals.get(n.inputs[1])!); break;
        case 'dropout': y = a; break;
        case 'flatten': y = a.rank === 4 ? tf.reshape(tf.transpose(a, [0, 3, 1, 2]), [a.shape[0], -1]) : tf.reshape(a, [a.shape[0], -1]); break;
        case 'maxpool': y = tf.maxPool(a as import('@tensorflow/tfjs-core').Tensor4D, n.kernel, n.stride, n.pad[0] === 0 ? 'valid' : n.pad[0]); break;
        case 'avgpool': y = tf.avgPool(a as import('@tensorflow/tfjs-core').Tensor4D, n.kernel, n.stride, n.pad[0] === 0 ? 'valid' : n.pad[0]); break;
        case 'globalavgpool': y = tf.mean(a, [1, 2]); break;
        case 'batchnorm': y = tf.batchNorm(a, w(n.mean), w(n.var), w(n.bias), w(n.weight), n.eps); break;
        case 'lrn': y = tf.localResponseNormalization(a as import('@tensorflow/tfjs-core').Tensor4D, n.radius, n.bias, n.alpha, n.beta); break;
      }
      vals.set(n.output, y);
      last = y;
    }
    return last;
  });
  return { run, dispose: () => { for (const t of weights.values()) t.dispose(); } };
}

export async function timeTfjsWasm(g: ModelGraph, x: Float32Array, shape: number[], threads: number, warmup: number, iters: number): Promise<FrameworkOutcome> {
  const version = packageVersion('@tensorflow/tfjs-backend-wasm');
  if (!version) return { ok: false, framework: 'tfjs-wasm', reason: '@tensorflow/tfjs-backend-wasm is not installed' };
  const framework = `tfjs-wasm ${version}`;
  let tfw: { tf: Tfc; wasm: Wasm };
  try {
    tfw = await loadTfjsWasm(threads);
  } catch (e) {
    return { ok: false, framework, reason: `TensorFlow.js wasm backend did not start: ${errorText(e)}` };
  }
  const { tf, wasm } = tfw;
  const why = tfjsUnsupported(tf, g);
  if (why) return { ok: false, framework, reason: why };
  const m = tfjsModel(tf, g);
  const xt = tf.tensor4d(nchwToNhwc(x, shape), [shape[0], shape[2], shape[3], shape[1]]);
  try {
    const times: number[] = [];
    for (let i = 0; i < warmup + iters; i++) {
      const t0 = performance.now();
      const y = m.run(xt);
      y.dataSync();
      y.dispose();
      if (i >= warmup) times.push((performance.now() - t0) / 1000);
    }
    let wasmThreads: number | null = null;
    try { wasmThreads = wasm.getThreadsCount(); } catch { wasmThreads = null; }
    return {
      ok: true,
      result: {
        framework, times, threads: wasmThreads,
        notes: `TensorFlow.js wasm backend (XNNPACK), our graph rebuilt op by op in NHWC with our weights; wasm threads ${wasmThreads ?? '?'} (the Node build of the wasm backend is single-threaded)`,
      },
    };
  } finally {
    xt.dispose();
    m.dispose();
  }
}
