// Loads the CPU addon for kernel-level tests: build/Release/imagerate_cpu.node, or the file
// named by IMAGERATE_CPU_ADDON (CI points it at the node-gyp and sanitizer builds). When it
// cannot be loaded the caller's suite is skipped and the reason printed (never a silent pass;
// test/backend/registry.test.ts fails outright when the CPU backend is missing).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { addonPathFromEnv } from '../../src/util/paths.js';

export const ADDON_PATH = addonPathFromEnv('IMAGERATE_CPU_ADDON', 'imagerate_cpu');

export function loadTestAddon<T>(label: string): { addon: T | null; skipReason: string } {
  let addon: T | null = null;
  let skipReason = '';
  if (!existsSync(ADDON_PATH)) {
    skipReason = `CPU addon not built (${ADDON_PATH} missing; run npm run build:native)`;
  } else {
    try {
      addon = createRequire(import.meta.url)(ADDON_PATH) as T;
    } catch (e) {
      skipReason = `CPU addon failed to load: ${(e as Error).message}`;
    }
  }
  if (!addon) console.warn(`${label} tests skipped: ${skipReason}`);
  return { addon, skipReason };
}
