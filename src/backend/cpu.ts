// The CPU backend: a thin TypeScript face over the native addon (native/cpu_addon.cc); the op
// methods are AddonBackend's (addon-backend.ts).
// The addon queues every op on its own worker thread (a "stream"), so calls here return at
// once and the event loop stays free; download()/sync() wait for the queue.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { BackendStats, BackendUnavailableError } from './backend.js';
import { AddonBackend, NativeAddon } from './addon-backend.js';
import { addonPathFromEnv } from '../util/paths.js';

/** The raw addon exports (see native/cpu_addon.cc for the authoritative list). */
export interface CpuAddon extends NativeAddon {
  info(): { isa: string; threads: number; hwThreads: number; cpuModel: string; simdWidth: number; fmaUnits: number; addon: string };
  setThreads(n: number): void;
  forceIsa(name: string): void;
  alloc(bytes: number): number;
  free(id: number): void;
  upload(id: number, data: Float32Array | Int32Array): void;
  download(id: number, bytes: number): Promise<ArrayBuffer>;
  sync(): Promise<void>;
  stats(): BackendStats;
  emptyCache(): void;
  [op: string]: unknown;
}

const require = createRequire(import.meta.url);
let cached: CpuAddon | null = null;
let cachedError: string | null = null;

export function loadCpuAddon(): CpuAddon {
  if (cached) return cached;
  if (cachedError) throw new BackendUnavailableError('cpu', cachedError);
  const path = addonPathFromEnv('IMAGERATE_CPU_ADDON', 'imagerate_cpu');
  if (!existsSync(path)) {
    cachedError = `native addon not built (${path} is missing; run \`npm run build:native\`)`;
    throw new BackendUnavailableError('cpu', cachedError);
  }
  try {
    cached = require(path) as CpuAddon;
  } catch (e) {
    cachedError = `cannot load ${path}: ${(e as Error).message}`;
    throw new BackendUnavailableError('cpu', cachedError);
  }
  return cached;
}

export class CpuBackend extends AddonBackend<CpuAddon> {
  readonly name = 'cpu';
  readonly device: string;

  constructor(addon: CpuAddon = loadCpuAddon()) {
    super(addon);
    const info = addon.info();
    this.device = `${info.cpuModel} (${info.hwThreads} threads, ${info.isa})`;
  }

  info() { return this.a.info(); }
  setThreads(n: number): void { this.a.setThreads(n); }
  threads(): number { return this.a.info().threads; }
}
