// Opening a WebGPU device through Dawn (the `webgpu` npm package, dawn.node).
//
// The Dawn instance returned by create() lives in a module-level constant for the whole
// process: if it is garbage-collected while a device is alive, Dawn crashes the process
// (PLATFORM.md). dawn.node (21 MB) is loaded only when the webgpu backend is asked for.
//
// No adapter (no Vulkan/Metal/D3D12 driver, or one Dawn rejects such as Debian 12's own
// Mesa) is not an error of the program: it becomes `webgpu unavailable: <reason>`.
import { BackendUnavailableError } from '../backend.js';

export interface GpuContext {
  device: GPUDevice;
  adapterInfo: GPUAdapterInfo;
  /** "llvmpipe (Mesa 25.0.7, software)" style description. */
  description: string;
  hasTimestamps: boolean;
  /** GPUBufferUsage / GPUMapMode / GPUShaderStage constants from Dawn's globals. */
  usage: { MAP_READ: number; MAP_WRITE: number; COPY_SRC: number; COPY_DST: number; STORAGE: number; UNIFORM: number; QUERY_RESOLVE: number };
  mapRead: number;
}

interface DawnModule { create(options: string[]): GPU; globals: Record<string, unknown> }

// Kept for the life of the process (see the header).
let dawn: { gpu: GPU; globals: Record<string, unknown> } | null = null;

async function loadDawn(): Promise<{ gpu: GPU; globals: Record<string, unknown> }> {
  if (dawn) return dawn;
  let mod: DawnModule;
  try {
    mod = (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    throw new BackendUnavailableError('webgpu', `cannot load the 'webgpu' package (dawn.node): ${(e as Error).message.split('\n')[0]}`);
  }
  dawn = { gpu: mod.create(dawnOptions()), globals: mod.globals };
  return dawn;
}

/**
 * The options the Dawn instance is created with (benchmark records quote them). Dawn rounds
 * timestamps to 2^16 ns by default (a browser's guard against timing attacks); a benchmark
 * needs them as the GPU counts them. IMAGERATE_WEBGPU_BACKEND=vulkan|null|... is passed to
 * Dawn as backend=<value> (PLATFORM.md); IMAGERATE_WEBGPU_DAWN adds raw Dawn options
 * (space-separated, e.g. "enable-dawn-features=dump_shaders").
 */
export function dawnOptions(): string[] {
  const opts: string[] = ['disable-dawn-features=timestamp_quantization'];
  if (process.env.IMAGERATE_WEBGPU_BACKEND) opts.push(`backend=${process.env.IMAGERATE_WEBGPU_BACKEND}`);
  if (process.env.IMAGERATE_WEBGPU_DAWN) opts.push(...process.env.IMAGERATE_WEBGPU_DAWN.split(' ').filter(Boolean));
  return opts;
}

/** The limits we raise to the adapter's maximum: big activations and 8+ bindings per kernel. */
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupsPerDimension',
] as const;

export async function openGpu(): Promise<GpuContext> {
  const { gpu, globals } = await loadDawn();
  const power = process.env.IMAGERATE_WEBGPU_POWER === 'low-power' ? 'low-power' : 'high-performance';
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: power });
  } catch (e) {
    throw new BackendUnavailableError('webgpu', `requestAdapter failed: ${(e as Error).message}`);
  }
  if (!adapter) {
    throw new BackendUnavailableError('webgpu', 'no WebGPU adapter (Dawn found no Vulkan driver it accepts; on Linux without a GPU install ' +
      'Mesa >= 24 lavapipe, e.g. `apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1`; see README "WebGPU without a GPU")');
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of RAISED_LIMITS) requiredLimits[k] = (adapter.limits as unknown as Record<string, number>)[k];
  const hasTimestamps = adapter.features.has('timestamp-query') && process.env.IMAGERATE_WEBGPU_TIMESTAMPS !== '0';
  const requiredFeatures: GPUFeatureName[] = hasTimestamps ? ['timestamp-query'] : [];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'imagerate' });
  } catch (e) {
    throw new BackendUnavailableError('webgpu', `requestDevice failed on ${adapter.info.description || adapter.info.vendor}: ${(e as Error).message}`);
  }
  const info = adapter.info;
  const description = [info.description || info.device || info.vendor || 'unknown adapter',
    `(${[info.vendor, info.architecture].filter(Boolean).join(' ')})`].join(' ');
  const u = globals.GPUBufferUsage as GpuContext['usage'];
  const m = globals.GPUMapMode as { READ: number };
  return { device, adapterInfo: info, description, hasTimestamps, usage: u, mapRead: m.READ };
}
