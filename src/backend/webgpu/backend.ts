// The webgpu backend: the Backend interface over WebGpuRuntime (runtime.ts) and the op glue
// in ops/*.ts, which turns each op into dispatches of kernels/wgsl/*.wgsl. Open it with
// openWebGpu() (async: adapter and device requests are promises).
import { Backend, BackendStats, BufferHandle, OP_NAMES, OpName } from '../backend.js';
import { openGpu } from './device.js';
import { Dispatcher, WebGpuRuntime } from './runtime.js';
import { OP_IMPLS, OpImpls } from './ops/index.js';

type Impl<K extends OpName> = (d: Dispatcher, ...args: Parameters<Backend[K]>) => void;

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly device: string;
  readonly ops: ReadonlySet<OpName>;
  readonly deviceTimer?: 'webgpu-timestamp';

  constructor(readonly rt: WebGpuRuntime, private readonly impls: Partial<OpImpls> = OP_IMPLS) {
    this.device = `${rt.description}, WebGPU via Dawn`;
    this.ops = new Set(OP_NAMES.filter((op) => impls[op] !== undefined));
    if (rt.timestampsAvailable) this.deviceTimer = 'webgpu-timestamp';
  }

  private run<K extends OpName>(op: K, ...args: Parameters<Backend[K]>): void {
    const f = this.impls[op] as Impl<K> | undefined;
    if (!f) throw new Error(`not implemented on webgpu: ${op}`);
    f(this.rt, ...args);
  }

  alloc(bytes: number): BufferHandle { return this.rt.alloc(bytes); }
  free(buf: BufferHandle): void { this.rt.free(buf); }
  upload(buf: BufferHandle, data: Float32Array | Int32Array): void { this.rt.upload(buf, data); }
  download(buf: BufferHandle, bytes?: number): Promise<ArrayBuffer> { return this.rt.download(buf, bytes); }
  sync(): Promise<void> { return this.rt.sync(); }
  stats(): BackendStats { return this.rt.stats(); }
  emptyCache(): void { this.rt.emptyCache(); }
  /** Device seconds of the work `call` enqueues (timestamp-query), or null where the adapter has none. */
  timeOnDevice(call: () => void): Promise<number | null> { return this.rt.timeOnDevice(call); }

  gemm(...a: Parameters<Backend['gemm']>) { this.run('gemm', ...a); }
  conv2dFwd(...a: Parameters<Backend['conv2dFwd']>) { this.run('conv2dFwd', ...a); }
  conv2dBwdData(...a: Parameters<Backend['conv2dBwdData']>) { this.run('conv2dBwdData', ...a); }
  conv2dBwdFilter(...a: Parameters<Backend['conv2dBwdFilter']>) { this.run('conv2dBwdFilter', ...a); }
  maxpool2dFwd(...a: Parameters<Backend['maxpool2dFwd']>) { this.run('maxpool2dFwd', ...a); }
  maxpool2dBwd(...a: Parameters<Backend['maxpool2dBwd']>) { this.run('maxpool2dBwd', ...a); }
  avgpool2dFwd(...a: Parameters<Backend['avgpool2dFwd']>) { this.run('avgpool2dFwd', ...a); }
  avgpool2dBwd(...a: Parameters<Backend['avgpool2dBwd']>) { this.run('avgpool2dBwd', ...a); }
  biasAdd(...a: Parameters<Backend['biasAdd']>) { this.run('biasAdd', ...a); }
  biasGrad(...a: Parameters<Backend['biasGrad']>) { this.run('biasGrad', ...a); }
  reluFwd(...a: Parameters<Backend['reluFwd']>) { this.run('reluFwd', ...a); }
  reluBwd(...a: Parameters<Backend['reluBwd']>) { this.run('reluBwd', ...a); }
  add(...a: Parameters<Backend['add']>) { this.run('add', ...a); }
  mul(...a: Parameters<Backend['mul']>) { this.run('mul', ...a); }
  axpby(...a: Parameters<Backend['axpby']>) { this.run('axpby', ...a); }
  scale(...a: Parameters<Backend['scale']>) { this.run('scale', ...a); }
  fill(...a: Parameters<Backend['fill']>) { this.run('fill', ...a); }
  copy(...a: Parameters<Backend['copy']>) { this.run('copy', ...a); }
  dropoutFwd(...a: Parameters<Backend['dropoutFwd']>) { this.run('dropoutFwd', ...a); }
  sumsqCheck(...a: Parameters<Backend['sumsqCheck']>) { this.run('sumsqCheck', ...a); }
  softmaxXentFwd(...a: Parameters<Backend['softmaxXentFwd']>) { this.run('softmaxXentFwd', ...a); }
  softmaxXentBwd(...a: Parameters<Backend['softmaxXentBwd']>) { this.run('softmaxXentBwd', ...a); }
  sgdUpdate(...a: Parameters<Backend['sgdUpdate']>) { this.run('sgdUpdate', ...a); }
  batchnorm2dFwdTrain(...a: Parameters<Backend['batchnorm2dFwdTrain']>) { this.run('batchnorm2dFwdTrain', ...a); }
  batchnorm2dFwdEval(...a: Parameters<Backend['batchnorm2dFwdEval']>) { this.run('batchnorm2dFwdEval', ...a); }
  batchnorm2dBwd(...a: Parameters<Backend['batchnorm2dBwd']>) { this.run('batchnorm2dBwd', ...a); }
  lrnFwd(...a: Parameters<Backend['lrnFwd']>) { this.run('lrnFwd', ...a); }
  lrnBwd(...a: Parameters<Backend['lrnBwd']>) { this.run('lrnBwd', ...a); }
}

/** Opens the default adapter's device; throws BackendUnavailableError with the reason when there is none. */
export async function openWebGpu(): Promise<WebGpuBackend> {
  return new WebGpuBackend(new WebGpuRuntime(await openGpu()));
}
