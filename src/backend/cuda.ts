// The CUDA backend, loaded lazily: the addon (build/Release/imagerate_cuda.node) exists only
// where nvcc was found at build time, and it can be used only where a driver and a device
// exist. Either way a missing piece becomes `cuda unavailable: <reason>`, never a crash.
// The CUDA kernels themselves arrive with the CUDA issue; until then a machine with a GPU
// reports that the op table is empty.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { BackendUnavailableError } from './backend.js';
import { addonPath } from '../util/paths.js';

export interface CudaDevice {
  index: number;
  name: string;
  computeCapability: string;
  totalMemoryBytes: number;
}

export interface CudaProbe {
  available: boolean;
  reason?: string;
  driverVersion?: number;
  runtimeVersion?: number;
  devices?: CudaDevice[];
}

const require = createRequire(import.meta.url);
let probeCache: CudaProbe | null = null;

/** Loads the CUDA addon (if built) and asks it whether a usable device exists. */
export function probeCuda(): CudaProbe {
  if (probeCache) return probeCache;
  const path = process.env.IMAGERATE_CUDA_ADDON || addonPath('imagerate_cuda');
  if (!existsSync(path)) {
    probeCache = { available: false, reason: `CUDA addon not built (nvcc was not found when the project was built; ${path} is missing)` };
    return probeCache;
  }
  try {
    const addon = require(path) as { probe(): CudaProbe };
    probeCache = addon.probe();
  } catch (e) {
    probeCache = { available: false, reason: `cannot load ${path}: ${(e as Error).message}` };
  }
  return probeCache;
}

export function cudaUnavailable(): BackendUnavailableError | null {
  const p = probeCuda();
  if (!p.available) return new BackendUnavailableError('cuda', p.reason ?? 'unknown reason');
  // A device exists, but this build has no CUDA kernels registered yet.
  return new BackendUnavailableError('cuda', `device found (${p.devices?.[0]?.name ?? 'unknown'}) but no CUDA kernels are registered in this build yet`);
}
