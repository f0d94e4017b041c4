// Kernel problem shapes for `imagerate bench kernels`: the real layer shapes of the project's
// models, found by running the model (flops.ts's traceForward: one image through the net,
// every Conv2d / Linear / pool module seen with its input and output), never typed by hand,
// plus a small subset of Baidu's DeepBench shape lists.
//
// A model suite holds, per distinct layer shape (repeated blocks of ResNet-50 share shapes;
// `count` says how many layers have it):
//   conv    -> conv2dFwd, conv2dBwdData, conv2dBwdFilter
//   linear  -> gemm forward (x W^T, NT), and for training the two backward GEMMs
//              (dX = dY W, NN; dW = dY^T X, TN), exactly the calls ops/linear.ts makes
//   pool    -> maxpool2dFwd/Bwd or avgpool2dFwd/Bwd (GlobalAvgPool2d is an average pool with
//              the whole feature map as window, as ops/norm.ts computes it)
// at the suite's batch size.
import type { Backend, Conv2dParams, GemmParams, Pool2dParams } from '../backend/backend.js';
import { Tensor } from '../tensor.js';
import { tidy } from '../autograd/scope.js';
import { noGrad } from '../autograd/tape.js';
import { traceForward } from '../models/flops.js';
import { getModelSpec } from '../models/index.js';
import { AvgPool2d, Conv2d, Linear, MaxPool2d } from '../nn/layers.js';
import { GlobalAvgPool2d } from '../nn/norm.js';
import { conv2dParams, pool2dParams } from '../ops/index.js';

export type KernelOp =
  | 'gemm' | 'conv2dFwd' | 'conv2dBwdData' | 'conv2dBwdFilter'
  | 'maxpool2dFwd' | 'maxpool2dBwd' | 'avgpool2dFwd' | 'avgpool2dBwd';

export type KernelProblem =
  | { op: 'gemm'; label: string; count: number; gemm: GemmParams }
  | { op: 'conv2dFwd' | 'conv2dBwdData' | 'conv2dBwdFilter'; label: string; count: number; conv: Conv2dParams }
  | { op: 'maxpool2dFwd' | 'maxpool2dBwd' | 'avgpool2dFwd' | 'avgpool2dBwd'; label: string; count: number; pool: Pool2dParams };

export interface KernelSuite {
  name: string;
  /** Where the shapes come from. */
  source: string;
  batch: number | null;
  problems: KernelProblem[];
}

/** The suites `bench kernels --suite` accepts, with the model and batch each walks. */
export const MODEL_SUITES: Record<string, { model: string; batch: number }> = {
  lenet: { model: 'lenet5', batch: 64 },
  cifar: { model: 'cifar10-tf', batch: 64 },
  resnet50: { model: 'resnet50', batch: 8 },
};
export const SUITE_NAMES = [...Object.keys(MODEL_SUITES), 'deepbench'] as const;

/** Row-major GEMM parameters with tight leading dimensions. */
export function gemmParams(m: number, n: number, k: number, transA = false, transB = false): GemmParams {
  return { transA, transB, m, n, k, alpha: 1, beta: 0, lda: transA ? m : k, ldb: transB ? k : n, ldc: n };
}

/** Every kernel problem of `model` at batch `batch`, deduplicated by shape. */
export function modelKernelProblems(be: Backend, modelName: string, batch: number, opts: { training?: boolean } = {}): KernelProblem[] {
  const training = opts.training ?? true;
  const spec = getModelSpec(modelName);
  const net = spec.build(be, 1);
  const found: KernelProblem[] = [];
  const seen = new Map<string, KernelProblem>();
  const add = (p: KernelProblem) => {
    const { label: _l, count: _c, ...shape } = p;
    const key = JSON.stringify(shape);
    const hit = seen.get(key);
    if (hit) {
      hit.count++;
      return;
    }
    seen.set(key, p);
    found.push(p);
  };
  try {
    net.eval();
    tidy(() => noGrad(() => {
      const x = Tensor.filled(be, [1, ...spec.input], 0);
      traceForward(net, (name, m, xin) => {
        const xs = [batch, ...xin.shape.slice(1)];
        const label = `${spec.name} ${name}`;
        if (m instanceof Conv2d) {
          const conv = conv2dParams(xs, m.weight.shape, m.cfg);
          add({ op: 'conv2dFwd', label, count: 1, conv });
          if (training) {
            add({ op: 'conv2dBwdData', label, count: 1, conv });
            add({ op: 'conv2dBwdFilter', label, count: 1, conv });
          }
        } else if (m instanceof Linear) {
          const [out, inF] = m.weight.shape;
          add({ op: 'gemm', label: `${label} (fwd)`, count: 1, gemm: gemmParams(batch, out, inF, false, true) });
          if (training) {
            add({ op: 'gemm', label: `${label} (bwd data)`, count: 1, gemm: gemmParams(batch, inF, out, false, false) });
            add({ op: 'gemm', label: `${label} (bwd filter)`, count: 1, gemm: gemmParams(out, inF, batch, true, false) });
          }
        } else if (m instanceof MaxPool2d || m instanceof AvgPool2d || m instanceof GlobalAvgPool2d) {
          const isMax = m instanceof MaxPool2d;
          const opts = m instanceof GlobalAvgPool2d ? { kernel: [xs[2], xs[3]] as [number, number], stride: [xs[2], xs[3]] as [number, number] } : m.opts;
          const pool = pool2dParams(isMax ? 'maxPool2d' : 'avgPool2d', xs, opts);
          add({ op: isMax ? 'maxpool2dFwd' : 'avgpool2dFwd', label, count: 1, pool });
          if (training) add({ op: isMax ? 'maxpool2dBwd' : 'avgpool2dBwd', label, count: 1, pool });
        }
      }, () => net.forward(x));
    }));
  } finally {
    net.dispose();
  }
  for (const p of found) if (p.count > 1) p.label += ` (x${p.count} layers)`;
  return found;
}

// DeepBench (github.com/baidu-research/DeepBench, code/kernels/gemm_problems.h and
// conv_problems.h): a small representative subset of its training sets, chosen to span the
// shapes' character on a 2-core CPU in seconds each:
//   GEMM (m, n, k, a_t, b_t), column-major there; run here row-major with the same m, n, k and
//   transposes (the same FLOPs; the memory order of C differs):
//     (1760, 16, 1760, N, N), (1760, 128, 1760, N, N)   speech RNN, small and medium batch
//     (2560, 64, 2560, N, N), (2560, 64, 2560, T, N)    the same at hidden size 2560
//     (35, 8457, 2048, N, N)                            skinny output layer
//     (3072, 128, 1024, N, N)                           LSTM-style
//   Conv (w, h, c, n, k, s, r, pad_w, pad_h, stride_w, stride_h):
//     (700, 161, 1, 4, 32, 20, 5, 0, 0, 2, 2)           DeepSpeech first layer
//     (54, 54, 64, 8, 64, 3, 3, 1, 1, 1, 1)             VGG-style 3x3
//     (224, 224, 3, 16, 64, 7, 7, 3, 3, 2, 2)           ResNet stem
//     (28, 28, 192, 16, 32, 5, 5, 2, 2, 1, 1)           GoogLeNet inception 5x5
//     (14, 14, 256, 8, 256, 3, 3, 1, 1, 1, 1)           ResNet stage-3 3x3
//     (7, 7, 832, 16, 256, 1, 1, 0, 0, 1, 1)            GoogLeNet 1x1
const DEEPBENCH_GEMM: [number, number, number, boolean, boolean][] = [
  [1760, 16, 1760, false, false],
  [1760, 128, 1760, false, false],
  [2560, 64, 2560, false, false],
  [2560, 64, 2560, true, false],
  [35, 8457, 2048, false, false],
  [3072, 128, 1024, false, false],
];
const DEEPBENCH_CONV: [number, number, number, number, number, number, number, number, number, number, number][] = [
  [700, 161, 1, 4, 32, 20, 5, 0, 0, 2, 2],
  [54, 54, 64, 8, 64, 3, 3, 1, 1, 1, 1],
  [224, 224, 3, 16, 64, 7, 7, 3, 3, 2, 2],
  [28, 28, 192, 16, 32, 5, 5, 2, 2, 1, 1],
  [14, 14, 256, 8, 256, 3, 3, 1, 1, 1, 1],
  [7, 7, 832, 16, 256, 1, 1, 0, 0, 1, 1],
];

export function deepbenchProblems(opts: { training?: boolean } = {}): KernelProblem[] {
  const training = opts.training ?? true;
  const out: KernelProblem[] = [];
  for (const [m, n, k, ta, tb] of DEEPBENCH_GEMM) {
    out.push({ op: 'gemm', label: `deepbench gemm ${m}x${n}x${k}${ta ? ' A^T' : ''}${tb ? ' B^T' : ''}`, count: 1, gemm: gemmParams(m, n, k, ta, tb) });
  }
  for (const [w, h, c, n, k, s, r, padW, padH, strideW, strideH] of DEEPBENCH_CONV) {
    const conv = conv2dParams([n, c, h, w], [k, c, r, s], { stride: [strideH, strideW], padding: [padH, padW] });
    const label = `deepbench conv ${w}x${h}x${c} n${n} k${k} ${r}x${s}/${strideH}`;
    out.push({ op: 'conv2dFwd', label, count: 1, conv });
    if (training) {
      out.push({ op: 'conv2dBwdData', label, count: 1, conv });
      out.push({ op: 'conv2dBwdFilter', label, count: 1, conv });
    }
  }
  return out;
}

export function kernelSuite(be: Backend, name: string, opts: { batch?: number; training?: boolean } = {}): KernelSuite {
  if (name === 'deepbench') {
    return { name, source: 'DeepBench training-set subset (baidu-research/DeepBench code/kernels/*_problems.h)', batch: null, problems: deepbenchProblems(opts) };
  }
  const s = MODEL_SUITES[name];
  if (!s) throw new Error(`unknown kernel suite '${name}' (valid: ${SUITE_NAMES.join(', ')})`);
  const batch = opts.batch ?? s.batch;
  return { name, source: `layer shapes of ${s.model} at batch ${batch}, found by running the model (traceForward)`, batch, problems: modelKernelProblems(be, s.model, batch, opts) };
}

/** FLOPs of one call (multiply-adds x 2; pooling: one op per window element). */
export function problemFlops(p: KernelProblem): number {
  if (p.op === 'gemm') return 2 * p.gemm.m * p.gemm.n * p.gemm.k;
  if ('conv' in p) {
    const c = p.conv;
    return 2 * c.n * c.k * c.p * c.q * c.c * c.r * c.s;
  }
  const q = p.pool;
  return q.n * q.c * q.p * q.q * q.kh * q.kw;
}

/** Compulsory bytes of one call: every operand read once and every result written once (fp32). */
export function problemBytes(p: KernelProblem): number {
  if (p.op === 'gemm') {
    const g = p.gemm;
    return 4 * (g.m * g.k + g.k * g.n + g.m * g.n);
  }
  if ('conv' in p) {
    const c = p.conv;
    return 4 * (c.n * c.c * c.h * c.w + c.k * c.c * c.r * c.s + c.n * c.k * c.p * c.q);
  }
  const q = p.pool;
  const x = q.n * q.c * q.h * q.w, y = q.n * q.c * q.p * q.q;
  switch (p.op) {
    case 'maxpool2dFwd': return 4 * (x + 2 * y); // x in; y and the int32 argmax out
    case 'maxpool2dBwd': return 4 * (2 * y + x); // dy and argmax in; dx out
    default: return 4 * (x + y); // avg: x in, y out (or dy in, dx out)
  }
}

/** The shape a record carries for a problem. */
export function problemShape(p: KernelProblem): Record<string, unknown> {
  if (p.op === 'gemm') return { ...p.gemm, layout: 'row-major' };
  if ('conv' in p) return { ...p.conv, layout: 'NCHW/OIHW' };
  return { ...p.pool, layout: 'NCHW' };
}

export function isPoolOp(op: KernelOp): boolean {
  return op.includes('pool');
}
