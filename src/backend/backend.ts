// The backend interface (DESIGN.md, "backend interface"): a small allocator
// (alloc/free/upload/download/sync) plus one method per op family. Every method except
// download/sync only *enqueues* work: backends execute in order on their own stream, so a
// caller never sees a half-finished result as long as it reads through download().
//
// Buffers are opaque handles owned by the backend. Sizes are in bytes; element counts and
// offsets in elements. The autograd layer (src/ops) is the only caller; it has checked
// shapes before calling, and backends check buffer bounds again (a mismatch is a bug, so it
// throws with the op name rather than corrupting memory).

export type DType = 'float32' | 'int32';

export interface BufferHandle {
  readonly id: number;
  readonly bytes: number;
}

export interface BackendStats {
  liveBuffers: number;
  liveBytes: number;
  pooledBuffers: number;
  pooledBytes: number;
}

export interface Conv2dParams {
  n: number; c: number; h: number; w: number;
  k: number; r: number; s: number;
  strideH: number; strideW: number; padH: number; padW: number; dilH: number; dilW: number;
  p: number; q: number;
}

export interface Pool2dParams {
  n: number; c: number; h: number; w: number;
  kh: number; kw: number; strideH: number; strideW: number; padH: number; padW: number;
  p: number; q: number;
  countIncludePad: boolean;
}

export interface GemmParams {
  transA: boolean; transB: boolean;
  m: number; n: number; k: number;
  alpha: number; beta: number;
  lda: number; ldb: number; ldc: number;
}

/** The op families every backend implements. Names match kernels/<backend>/ entry points. */
export const OP_NAMES = [
  'gemm', 'conv2dFwd', 'conv2dBwdData', 'conv2dBwdFilter',
  'maxpool2dFwd', 'maxpool2dBwd', 'avgpool2dFwd', 'avgpool2dBwd',
  'biasAdd', 'biasGrad', 'reluFwd', 'reluBwd',
  'add', 'mul', 'axpby', 'scale', 'fill', 'copy',
  'dropoutFwd', 'sumsqCheck',
  'softmaxXentFwd', 'softmaxXentBwd', 'sgdUpdate',
  'batchnorm2dFwdTrain', 'batchnorm2dFwdEval', 'batchnorm2dBwd', 'lrnFwd', 'lrnBwd',
] as const;
export type OpName = (typeof OP_NAMES)[number];

export interface Backend {
  readonly name: string;
  /** Human-readable device description (CPU model and ISA, GPU name...). */
  readonly device: string;
  /** Which ops this backend registers; asking for another raises "not implemented on <backend>: <op>". */
  readonly ops: ReadonlySet<OpName>;

  alloc(bytes: number): BufferHandle;
  free(buf: BufferHandle): void;
  upload(buf: BufferHandle, data: Float32Array | Int32Array): void;
  download(buf: BufferHandle, bytes?: number): Promise<ArrayBuffer>;
  sync(): Promise<void>;
  stats(): BackendStats;
  setThreads?(n: number): void;
  threads?(): number;
  /**
   * Device seconds of the work `call` enqueues, from the device's own clock (WebGPU
   * timestamp-query, CUDA events); null when this device has no such timer. Backends without
   * it are timed on the host around a submit-and-wait fence (sync()).
   */
  timeOnDevice?(call: () => void): Promise<number | null>;
  /** The math mode of GEMM/conv on backends with more than fp32 (checked first by checkPrecision). */
  setPrecision?(p: 'fp32' | 'tf32' | 'bf16' | 'fp16'): unknown;
  /** The device timer timeOnDevice uses, as recorded in BenchTiming.method. */
  readonly deviceTimer?: 'webgpu-timestamp' | 'cuda-event';

  gemm(p: GemmParams, a: BufferHandle, b: BufferHandle, c: BufferHandle): void;
  conv2dFwd(p: Conv2dParams, x: BufferHandle, w: BufferHandle, bias: BufferHandle | null, y: BufferHandle): void;
  conv2dBwdData(p: Conv2dParams, dy: BufferHandle, w: BufferHandle, dx: BufferHandle): void;
  conv2dBwdFilter(p: Conv2dParams, x: BufferHandle, dy: BufferHandle, dw: BufferHandle, db: BufferHandle | null): void;
  maxpool2dFwd(p: Pool2dParams, x: BufferHandle, y: BufferHandle, argmax: BufferHandle): void;
  maxpool2dBwd(p: Pool2dParams, dy: BufferHandle, argmax: BufferHandle, dx: BufferHandle): void;
  avgpool2dFwd(p: Pool2dParams, x: BufferHandle, y: BufferHandle): void;
  avgpool2dBwd(p: Pool2dParams, dy: BufferHandle, dx: BufferHandle): void;
  biasAdd(outer: number, ch: number, inner: number, x: BufferHandle, b: BufferHandle, y: BufferHandle): void;
  biasGrad(outer: number, ch: number, inner: number, dy: BufferHandle, db: BufferHandle): void;
  reluFwd(n: number, x: BufferHandle, y: BufferHandle): void;
  reluBwd(n: number, y: BufferHandle, dy: BufferHandle, dx: BufferHandle): void;
  add(n: number, a: BufferHandle, b: BufferHandle, y: BufferHandle): void;
  mul(n: number, a: BufferHandle, b: BufferHandle, y: BufferHandle): void;
  axpby(n: number, alpha: number, x: BufferHandle, beta: number, y: BufferHandle): void;
  scale(n: number, alpha: number, x: BufferHandle, y: BufferHandle): void;
  fill(n: number, value: number, y: BufferHandle): void;
  copy(n: number, src: BufferHandle, srcOffset: number, dst: BufferHandle, dstOffset: number): void;
  dropoutFwd(n: number, p: number, seed: number, x: BufferHandle, mask: BufferHandle, y: BufferHandle): void;
  /** out (16 bytes) receives two float64: sum of squares and count of non-finite values. */
  sumsqCheck(n: number, x: BufferHandle, out: BufferHandle): void;
  softmaxXentFwd(n: number, c: number, eps: number, logits: BufferHandle, labels: BufferHandle, probs: BufferHandle, loss: BufferHandle): void;
  softmaxXentBwd(n: number, c: number, eps: number, scale: number, probs: BufferHandle, labels: BufferHandle, dlogits: BufferHandle): void;
  sgdUpdate(n: number, lr: number, momentum: number, weightDecay: number, nesterov: boolean, w: BufferHandle, g: BufferHandle, v: BufferHandle): void;
  /**
   * CUDA only: dropoutFwd and sgdUpdate with the seed (one uint32) or the learning rate (one
   * float) read from a device buffer when the kernel runs. A training step captured into a CUDA
   * graph (src/train/graph-step.ts) uses them, and the host writes each step's values there
   * before each replay.
   */
  dropoutFwdDeviceSeed?(n: number, p: number, seed: BufferHandle, x: BufferHandle, mask: BufferHandle, y: BufferHandle): void;
  sgdUpdateDeviceLr?(n: number, lr: BufferHandle, momentum: number, weightDecay: number, nesterov: boolean, w: BufferHandle, g: BufferHandle, v: BufferHandle): void;
  /** Batch norm, NCHW as (outer = N, ch = C, inner = H*W); see kernels/cpu/kernels.h for the exact formulas. */
  batchnorm2dFwdTrain(outer: number, ch: number, inner: number, eps: number, momentum: number, x: BufferHandle, gamma: BufferHandle, beta: BufferHandle,
    y: BufferHandle, saveMean: BufferHandle, saveInvstd: BufferHandle, runningMean: BufferHandle, runningVar: BufferHandle): void;
  batchnorm2dFwdEval(outer: number, ch: number, inner: number, eps: number, x: BufferHandle, gamma: BufferHandle, beta: BufferHandle,
    runningMean: BufferHandle, runningVar: BufferHandle, y: BufferHandle): void;
  batchnorm2dBwd(outer: number, ch: number, inner: number, x: BufferHandle, dy: BufferHandle, gamma: BufferHandle, saveMean: BufferHandle,
    saveInvstd: BufferHandle, dx: BufferHandle | null, dgamma: BufferHandle, dbeta: BufferHandle): void;
  /** Cross-channel LRN, TensorFlow's definition (depth radius, bias, alpha, beta). */
  lrnFwd(n: number, c: number, hw: number, radius: number, bias: number, alpha: number, beta: number, x: BufferHandle, y: BufferHandle, scale: BufferHandle): void;
  lrnBwd(n: number, c: number, hw: number, radius: number, bias: number, alpha: number, beta: number, x: BufferHandle, y: BufferHandle,
    scale: BufferHandle, dy: BufferHandle, dx: BufferHandle): void;
}

/** Raised when a backend cannot be used on this machine; `reason` is printed by CLI and tests. */
export class BackendUnavailableError extends Error {
  constructor(readonly backend: string, readonly reason: string) {
    super(`${backend} unavailable: ${reason}`);
    this.name = 'BackendUnavailableError';
  }
}
