// cuda-addon.test.ts: the CUDA addon (native/cuda_addon.cc + kernels/cuda/device_probe.cu).
// It exists only where nvcc was found at build time; without it the test is skipped and says
// why. With it, probe() must answer without crashing: on a machine with no driver or GPU,
// available:false with a printable reason (printed here); on a GPU machine, the devices.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ADDON = process.env.IMAGERATE_CUDA_ADDON || join(ROOT, 'build/Release/imagerate_cuda.node');
const built = existsSync(ADDON);
if (!built) console.log(`cuda addon test skipped: ${ADDON} was not built (nvcc not found at build time)`);

interface Probe {
  available: boolean;
  reason?: string;
  driverVersion: number;
  runtimeVersion: number;
  devices?: { index: number; name: string; computeCapability: string; totalMemoryBytes: number }[];
}

describe.skipIf(!built)('cuda addon', () => {
  it('loads and probes without a crash', () => {
    const cuda = createRequire(import.meta.url)(ADDON) as { probe(): Probe };
    const p = cuda.probe();
    expect(typeof p.driverVersion).toBe('number');
    expect(p.runtimeVersion).toBeGreaterThan(0); // static runtime: known even with no driver
    if (!p.available) {
      console.log(`cuda unavailable: ${p.reason} (driver ${p.driverVersion}, runtime ${p.runtimeVersion})`);
      expect(typeof p.reason).toBe('string');
      expect(p.reason!.length).toBeGreaterThan(0);
      expect(p.devices).toBeUndefined();
    } else {
      console.log(`cuda devices: ${JSON.stringify(p.devices)}`);
      expect(p.devices!.length).toBeGreaterThan(0);
      for (const d of p.devices!) {
        expect(d.name.length).toBeGreaterThan(0);
        expect(d.computeCapability).toMatch(/^\d+\.\d+$/);
        expect(d.totalMemoryBytes).toBeGreaterThan(0);
      }
    }
  });
});
