// The part of the native backends (cpu.ts, cuda.ts) that is the same for every addon: each op
// of the Backend interface calls the addon export of the same name with buffer ids in the
// argument order the native op checks expect (native/op_checks.h), and alloc/free/upload/
// download/sync/stats go straight through. A subclass names the backend, describes its
// device and adds what only it has (threads on the CPU, precision, timing and graphs on CUDA).
import {
  Backend, BackendStats, BufferHandle, Conv2dParams, GemmParams, OP_NAMES, OpName, Pool2dParams,
} from './backend.js';

/** The exports every native addon has (native/cpu_addon.cc, native/cuda_addon.cc), and one per op. */
export interface NativeAddon {
  alloc(bytes: number): number;
  free(id: number): void;
  upload(id: number, data: Float32Array | Int32Array): void;
  download(id: number, bytes?: number): Promise<ArrayBuffer>;
  sync(): Promise<void>;
  stats(): BackendStats;
  [op: string]: unknown;
}

class AddonBuffer implements BufferHandle {
  constructor(readonly id: number, readonly bytes: number) {}
}

/** A buffer id, or -1 for "no buffer" (optional bias/db/dx). */
export const bufferId = (b: BufferHandle | null): number => (b === null ? -1 : b.id);
const id = bufferId;

/** The conv parameter array: [n,c,h,w, k,r,s, strideH,strideW, padH,padW, dilH,dilW, p,q]. */
export function convArgs(p: Conv2dParams): number[] {
  return [p.n, p.c, p.h, p.w, p.k, p.r, p.s, p.strideH, p.strideW, p.padH, p.padW, p.dilH, p.dilW, p.p, p.q];
}

/** The pool parameter array: [n,c,h,w, kh,kw, strideH,strideW, padH,padW, p,q, countIncludePad]. */
export function poolArgs(p: Pool2dParams): number[] {
  return [p.n, p.c, p.h, p.w, p.kh, p.kw, p.strideH, p.strideW, p.padH, p.padW, p.p, p.q, p.countIncludePad ? 1 : 0];
}

type Fn = (...args: unknown[]) => void;

export abstract class AddonBackend<A extends NativeAddon> implements Backend {
  abstract readonly name: string;
  abstract readonly device: string;
  /** The ops this build of the addon exports. */
  readonly ops: ReadonlySet<OpName>;
  protected readonly a: A;

  constructor(addon: A) {
    this.a = addon;
    this.ops = new Set(OP_NAMES.filter((op) => typeof addon[op] === 'function'));
  }

  /** The raw addon exports. */
  get addon(): A { return this.a; }

  /** The addon's export `name`, or "not implemented on <backend>: <name>". */
  protected op(name: string): Fn {
    const f = this.a[name];
    if (typeof f !== 'function') throw new Error(`not implemented on ${this.name}: ${name}`);
    return f as Fn;
  }

  alloc(bytes: number): BufferHandle { return new AddonBuffer(this.a.alloc(bytes), bytes); }
  free(buf: BufferHandle): void { this.a.free(buf.id); }
  upload(buf: BufferHandle, data: Float32Array | Int32Array): void { this.a.upload(buf.id, data); }
  download(buf: BufferHandle, bytes = buf.bytes): Promise<ArrayBuffer> { return this.a.download(buf.id, bytes); }
  sync(): Promise<void> { return this.a.sync(); }
  stats(): BackendStats { return this.a.stats(); }

  gemm(p: GemmParams, a: BufferHandle, b: BufferHandle, c: BufferHandle): void {
    this.op('gemm')(p.transA, p.transB, p.m, p.n, p.k, p.alpha, a.id, p.lda, b.id, p.ldb, p.beta, c.id, p.ldc);
  }
  conv2dFwd(p: Conv2dParams, x: BufferHandle, w: BufferHandle, bias: BufferHandle | null, y: BufferHandle): void {
    this.op('conv2dFwd')(convArgs(p), x.id, w.id, id(bias), y.id);
  }
  conv2dBwdData(p: Conv2dParams, dy: BufferHandle, w: BufferHandle, dx: BufferHandle): void {
    this.op('conv2dBwdData')(convArgs(p), dy.id, w.id, dx.id);
  }
  conv2dBwdFilter(p: Conv2dParams, x: BufferHandle, dy: BufferHandle, dw: BufferHandle, db: BufferHandle | null): void {
    this.op('conv2dBwdFilter')(convArgs(p), x.id, dy.id, dw.id, id(db));
  }
  maxpool2dFwd(p: Pool2dParams, x: BufferHandle, y: BufferHandle, argmax: BufferHandle): void {
    this.op('maxpool2dFwd')(poolArgs(p), x.id, y.id, argmax.id);
  }
  maxpool2dBwd(p: Pool2dParams, dy: BufferHandle, argmax: BufferHandle, dx: BufferHandle): void {
    this.op('maxpool2dBwd')(poolArgs(p), dy.id, argmax.id, dx.id);
  }
  avgpool2dFwd(p: Pool2dParams, x: BufferHandle, y: BufferHandle): void {
    this.op('avgpool2dFwd')(poolArgs(p), x.id, y.id);
  }
  avgpool2dBwd(p: Pool2dParams, dy: BufferHandle, dx: BufferHandle): void {
    this.op('avgpool2dBwd')(poolArgs(p), dy.id, dx.id);
  }
  biasAdd(outer: number, ch: number, inner: number, x: BufferHandle, b: BufferHandle, y: BufferHandle): void {
    this.op('biasAdd')(outer, ch, inner, x.id, b.id, y.id);
  }
  biasGrad(outer: number, ch: number, inner: number, dy: BufferHandle, db: BufferHandle): void {
    this.op('biasGrad')(outer, ch, inner, dy.id, db.id);
  }
  reluFwd(n: number, x: BufferHandle, y: BufferHandle): void { this.op('reluFwd')(n, x.id, y.id); }
  reluBwd(n: number, y: BufferHandle, dy: BufferHandle, dx: BufferHandle): void { this.op('reluBwd')(n, y.id, dy.id, dx.id); }
  add(n: number, a: BufferHandle, b: BufferHandle, y: BufferHandle): void { this.op('add')(n, a.id, b.id, y.id); }
  mul(n: number, a: BufferHandle, b: BufferHandle, y: BufferHandle): void { this.op('mul')(n, a.id, b.id, y.id); }
  axpby(n: number, alpha: number, x: BufferHandle, beta: number, y: BufferHandle): void { this.op('axpby')(n, alpha, x.id, beta, y.id); }
  scale(n: number, alpha: number, x: BufferHandle, y: BufferHandle): void { this.op('scale')(n, alpha, x.id, y.id); }
  fill(n: number, value: number, y: BufferHandle): void { this.op('fill')(n, value, y.id); }
  copy(n: number, src: BufferHandle, srcOffset: number, dst: BufferHandle, dstOffset: number): void {
    this.op('copy')(n, src.id, srcOffset, dst.id, dstOffset);
  }
  dropoutFwd(n: number, p: number, seed: number, x: BufferHandle, mask: BufferHandle, y: BufferHandle): void {
    this.op('dropoutFwd')(n, p, seed, x.id, mask.id, y.id);
  }
  sumsqCheck(n: number, x: BufferHandle, out: BufferHandle): void { this.op('sumsqCheck')(n, x.id, out.id); }
  softmaxXentFwd(n: number, c: number, eps: number, logits: BufferHandle, labels: BufferHandle, probs: BufferHandle, loss: BufferHandle): void {
    this.op('softmaxXentFwd')(n, c, eps, logits.id, labels.id, probs.id, loss.id);
  }
  softmaxXentBwd(n: number, c: number, eps: number, scale: number, probs: BufferHandle, labels: BufferHandle, dlogits: BufferHandle): void {
    this.op('softmaxXentBwd')(n, c, eps, scale, probs.id, labels.id, dlogits.id);
  }
  sgdUpdate(n: number, lr: number, momentum: number, weightDecay: number, nesterov: boolean, w: BufferHandle, g: BufferHandle, v: BufferHandle): void {
    this.op('sgdUpdate')(n, lr, momentum, weightDecay, nesterov, w.id, g.id, v.id);
  }
  batchnorm2dFwdTrain(outer: number, ch: number, inner: number, eps: number, momentum: number, x: BufferHandle, gamma: BufferHandle, beta: BufferHandle,
    y: BufferHandle, saveMean: BufferHandle, saveInvstd: BufferHandle, runningMean: BufferHandle, runningVar: BufferHandle): void {
    this.op('batchnorm2dFwdTrain')(outer, ch, inner, eps, momentum, x.id, gamma.id, beta.id, y.id, saveMean.id, saveInvstd.id, runningMean.id, runningVar.id);
  }
  batchnorm2dFwdEval(outer: number, ch: number, inner: number, eps: number, x: BufferHandle, gamma: BufferHandle, beta: BufferHandle,
    runningMean: BufferHandle, runningVar: BufferHandle, y: BufferHandle): void {
    this.op('batchnorm2dFwdEval')(outer, ch, inner, eps, x.id, gamma.id, beta.id, runningMean.id, runningVar.id, y.id);
  }
  batchnorm2dBwd(outer: number, ch: number, inner: number, x: BufferHandle, dy: BufferHandle, gamma: BufferHandle, saveMean: BufferHandle,
    saveInvstd: BufferHandle, dx: BufferHandle | null, dgamma: BufferHandle, dbeta: BufferHandle): void {
    this.op('batchnorm2dBwd')(outer, ch, inner, x.id, dy.id, gamma.id, saveMean.id, saveInvstd.id, id(dx), dgamma.id, dbeta.id);
  }
  lrnFwd(n: number, c: number, hw: number, radius: number, bias: number, alpha: number, beta: number, x: BufferHandle, y: BufferHandle, scale: BufferHandle): void {
    this.op('lrnFwd')(n, c, hw, radius, bias, alpha, beta, x.id, y.id, scale.id);
  }
  lrnBwd(n: number, c: number, hw: number, radius: number, bias: number, alpha: number, beta: number, x: BufferHandle, y: BufferHandle,
    scale: BufferHandle, dy: BufferHandle, dx: BufferHandle): void {
    this.op('lrnBwd')(n, c, hw, radius, bias, alpha, beta, x.id, y.id, scale.id, dy.id, dx.id);
  }
}
