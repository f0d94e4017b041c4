// The CUDA backend: a thin TypeScript face over the CUDA addon (native/cuda_addon.cc), loaded
// lazily. The addon (build/Release/imagerate_cuda.node) exists only where the build made it
// (CMake option IMAGERATE_CUDA: by default only where nvcc and an NVIDIA driver were both
// found), and it can run only where a driver and a device exist. Either way a missing piece
// becomes `cuda unavailable: <reason>` (BackendUnavailableError), never a crash.
//
// The op methods are AddonBackend's (addon-backend.ts), as for the CPU backend. Every op only
// enqueues: the addon launches kernels on its own CUDA stream and returns at once;
// download()/sync() are Promises settled from the addon's completion thread, so the event loop never blocks on the GPU. Beyond the Backend interface:
//   setPrecision('fp32' | 'tf32' | 'bf16' | 'fp16')  the GEMM/conv math mode (kernels.cuh)
//   timeOnDevice(fn)   seconds of GPU time for the work `fn` enqueues (a cudaEvent pair)
//   flushL2()          cold-cache timing: overwrite 2 x L2 on the stream
//   captureGraph(fn)   record the ops `fn` enqueues into a CUDA graph, replay it later
//   emptyCache(), info()
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BackendStats, BackendUnavailableError, BufferHandle, Conv2dParams, GemmParams } from './backend.js';
import { AddonBackend, NativeAddon, bufferId, convArgs } from './addon-backend.js';
import { addonPathFromEnv } from '../util/paths.js';

export interface CudaDevice {
  index: number;
  name: string;
  computeCapability: string;
  totalMemoryBytes: number;
  multiprocessors?: number;
  l2CacheBytes?: number;
  sharedMemPerBlockOptin?: number;
  pciBusId?: string;
}

export interface CudaProbe {
  available: boolean;
  reason?: string;
  driverVersion?: number;
  runtimeVersion?: number;
  devices?: CudaDevice[];
}

/** The open device, as the addon's info() reports it. Versions in CUDA's encoding (13000 = 13.0). */
export interface CudaInfo {
  name: string;
  computeCapability: string;
  multiprocessors: number;
  totalMemoryBytes: number;
  freeMemoryBytes: number;
  l2CacheBytes: number;
  sharedMemPerBlockOptin: number;
  clockMhz: number;
  memClockMhz: number;
  memBusWidthBits: number;
  driverVersion: number;
  runtimeVersion: number;
  device: number;
  pciBusId: string;
  mathMode: CudaMathMode;
  /** The tensor-core main loop of GEMM and conv at tf32/bf16/fp16: wgmma with IMAGERATE_CUDA_WGMMA=1 on an sm_90a build and a 9.0 GPU. */
  tensorCoreLoop: 'mma.sync' | 'wgmma' | 'none';
  stream: 'async' | 'sync-each-op';
  addon: string;
  /** True for imagerate_cuda_emu.node: the CUDA kernels on the CPU emulator (tests only, no timing). */
  emulated: boolean;
}

export interface CudaStats extends BackendStats {
  heldBuffers: number;
  heldBytes: number;
  deviceBytes: number;
  mallocCalls: number;
  pinnedBytes: number;
  graphs: number;
}

/** GEMM/conv math modes of the CUDA kernels (the same names as the CLI's --precision). */
export const CUDA_MATH_MODES = ['fp32', 'tf32', 'bf16', 'fp16'] as const;
export type CudaMathMode = (typeof CUDA_MATH_MODES)[number];

/** The raw addon exports (see native/cuda_addon.cc and cuda_graph.cc for the authoritative list). */
export interface CudaAddon extends NativeAddon {
  probe(): CudaProbe;
  info(): CudaInfo;
  setMathMode(mode: CudaMathMode): CudaMathMode;
  alloc(bytes: number): number;
  free(id: number): void;
  upload(id: number, data: ArrayBufferView | ArrayBuffer): void;
  download(id: number, bytes?: number): Promise<ArrayBuffer>;
  sync(): Promise<void>;
  stats(): CudaStats;
  emptyCache(): void;
  captureBegin(): void;
  captureEnd(): { id: number; nodes: number };
  replay(id: number, times?: number): void;
  graphDestroy(id: number): void;
  eventRecord(): number;
  eventElapsed(start: number, end: number): Promise<number>;
  flushL2(): void;
  gemmKernelName(transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number): string;
  [op: string]: unknown;
}

/** How to build the addon where the default build skipped it. */
export const CUDA_BUILD_HINT = 'npx cmake-js compile --CDIMAGERATE_CUDA=ON';

const require = createRequire(import.meta.url);
let addonCache: CudaAddon | null = null;
let addonError: string | null = null;
let probeCache: CudaProbe | null = null;

function cudaAddonPath(): string {
  return addonPathFromEnv('IMAGERATE_CUDA_ADDON', 'imagerate_cuda');
}

/** Why the addon is missing: CMake leaves imagerate_cuda.skipped next to where it would be. */
function notBuiltReason(path: string): string {
  let why = 'the build skips it unless nvcc and an NVIDIA driver are both found (IMAGERATE_CUDA=AUTO)';
  const marker = join(dirname(path), 'imagerate_cuda.skipped');
  try {
    if (existsSync(marker)) why = `the build skipped it: ${readFileSync(marker, 'utf8').trim()}`;
  } catch {
    // keep the generic reason
  }
  return `CUDA addon not built (${path} is missing; ${why}); build it with \`${CUDA_BUILD_HINT}\``;
}

/** Loads the CUDA addon, or throws BackendUnavailableError('cuda', reason). Loading needs no GPU. */
export function loadCudaAddon(): CudaAddon {
  if (addonCache) return addonCache;
  if (addonError) throw new BackendUnavailableError('cuda', addonError);
  const path = cudaAddonPath();
  if (!existsSync(path)) {
    addonError = notBuiltReason(path);
    throw new BackendUnavailableError('cuda', addonError);
  }
  try {
    addonCache = require(path) as CudaAddon;
  } catch (e) {
    addonError = `cannot load ${path}: ${(e as Error).message}`;
    throw new BackendUnavailableError('cuda', addonError);
  }
  return addonCache;
}

/** Loads the CUDA addon (if built) and asks it whether a usable device exists. Never throws. */
export function probeCuda(): CudaProbe {
  if (probeCache) return probeCache;
  try {
    probeCache = loadCudaAddon().probe();
  } catch (e) {
    probeCache = { available: false, reason: e instanceof BackendUnavailableError ? e.reason : (e as Error).message };
  }
  return probeCache;
}

/** Why the CUDA backend cannot run here, or null when it can. */
export function cudaUnavailable(): BackendUnavailableError | null {
  const p = probeCuda();
  return p.available ? null : new BackendUnavailableError('cuda', p.reason ?? 'unknown reason');
}

function version(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** A captured CUDA graph: replay() re-launches every op it recorded, on the same buffers. */
export interface CudaGraph {
  readonly nodes: number;
  replay(times?: number): void;
  dispose(): void;
}

export class CudaBackend extends AddonBackend<CudaAddon> {
  readonly name = 'cuda';
  readonly device: string;
  /** "12.8" style versions of the driver (what it supports) and of the runtime linked in. */
  readonly driver: string;
  readonly runtime: string;
  readonly deviceTimer = 'cuda-event' as const;
  /** The addon is the CPU emulator (cmake/cuda_emu.cmake): correct results, meaningless timings. */
  readonly emulated: boolean;

  constructor(addon: CudaAddon = loadCudaAddon()) {
    super(addon);
    const info = addon.info(); // opens the device; throws "cuda unavailable: ..." without one
    this.emulated = info.emulated === true;
    this.driver = version(info.driverVersion);
    this.runtime = version(info.runtimeVersion);
    const gib = (info.totalMemoryBytes / 2 ** 30).toFixed(1), sm = `sm_${info.computeCapability.replace('.', '')}`;
    // Every record names the device; the wgmma opt-in changes what the tensor-core figures measure.
    const wgmma = info.tensorCoreLoop === 'wgmma' ? ', wgmma tensor-core loop' : '';
    this.device = this.emulated
      ? `${info.name}: the CUDA kernels run on the CPU as if on ${sm} with ${info.multiprocessors} SMs, ${gib} GiB emulated memory${wgmma}`
      : `${info.name} (${sm}, ${info.multiprocessors} SMs, ${gib} GiB, driver ${this.driver}, runtime ${this.runtime}${wgmma})`;
  }

  info(): CudaInfo { return this.a.info(); }

  /** GEMM/conv math mode for ops enqueued from now on; returns the mode in force. */
  setPrecision(mode: CudaMathMode): CudaMathMode { return this.a.setMathMode(mode); }
  precision(): CudaMathMode { return this.a.info().mathMode; }

  override stats(): CudaStats { return this.a.stats(); }
  /** Synchronises, then gives pooled device and pinned memory back to the driver. */
  emptyCache(): void { this.a.emptyCache(); }

  /**
   * GPU time (seconds) of the work `fn` enqueues, between two cudaEvents recorded around it
   * (resolution about 0.5 us). `fn` must only enqueue (no awaits inside); the Promise settles
   * once the GPU got past the second event.
   */
  async timeOnDevice(fn: () => void): Promise<number> {
    const start = this.a.eventRecord();
    let end: number;
    try {
      fn();
    } finally {
      end = this.a.eventRecord();
    }
    return (await this.a.eventElapsed(start, end)) / 1000;
  }

  /** Overwrites 2 x L2 on the stream, so the next op starts with a cold cache. */
  flushL2(): void { this.a.flushL2(); }

  /**
   * Records the ops `fn` enqueues into a CUDA graph instead of running them. Every buffer they
   * touch stays allocated until the graph is disposed (free() then only marks it). Upload,
   * download and sync are refused inside `fn`; upload new inputs between replays.
   */
  captureGraph(fn: () => void): CudaGraph {
    this.a.captureBegin();
    try {
      fn();
    } catch (e) {
      // End the capture and drop what it made (a graph holds every buffer it touched); the
      // error that matters is fn's.
      try {
        this.a.graphDestroy(this.a.captureEnd().id);
      } catch { /* an invalidated capture made no graph, and captureEnd released its holds */ }
      throw e;
    }
    const g = this.a.captureEnd();
    const a = this.a;
    let live = true;
    return {
      nodes: g.nodes,
      replay(times = 1) {
        if (!live) throw new Error('cuda graph: replay after dispose');
        a.replay(g.id, times);
      },
      dispose() {
        if (live) a.graphDestroy(g.id);
        live = false;
      },
    };
  }

  /** Name of the GEMM kernel gemm() would launch for `p` in the current math mode. */
  gemmKernelName(p: GemmParams): string {
    return this.a.gemmKernelName(p.transA, p.transB, p.m, p.n, p.k, p.alpha);
  }
  dropoutFwdDeviceSeed(n: number, p: number, seed: BufferHandle, x: BufferHandle, mask: BufferHandle, y: BufferHandle): void {
    this.op('dropoutFwdDeviceSeed')(n, p, seed.id, x.id, mask.id, y.id);
  }
  sgdUpdateDeviceLr(n: number, lr: BufferHandle, momentum: number, weightDecay: number, nesterov: boolean, w: BufferHandle, g: BufferHandle, v: BufferHandle): void {
    this.op('sgdUpdateDeviceLr')(n, lr.id, momentum, weightDecay, nesterov, w.id, g.id, v.id);
  }
  /** Fused y = relu(conv2d(x, w) + bias) (CUDA only). */
  conv2dFwdBiasRelu(p: Conv2dParams, x: BufferHandle, w: BufferHandle, bias: BufferHandle | null, y: BufferHandle): void {
    this.op('conv2dFwdBiasRelu')(convArgs(p), x.id, w.id, bufferId(bias), y.id);
  }
}

/**
 * The CUDA backend, or BackendUnavailableError('cuda', reason) where it cannot run (addon not
 * built, no driver, no device, device cannot be opened). For src/backend/registry.ts.
 */
export function createCudaBackend(): CudaBackend {
  const addon = loadCudaAddon();
  const p = probeCuda();
  if (!p.available) throw new BackendUnavailableError('cuda', p.reason ?? 'unknown reason');
  try {
    return new CudaBackend(addon);
  } catch (e) {
    if (e instanceof BackendUnavailableError) throw e;
    throw new BackendUnavailableError('cuda', (e as Error).message.replace(/^info: (cuda unavailable: )?/, ''));
  }
}
