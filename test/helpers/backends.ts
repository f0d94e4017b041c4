// One test body, every backend (STYLE rule 2).
//
//   forEachBackend((be) => { it('relu matches the reference', async () => { ... be ... }); });
//
// For each backend in src/backend/registry.ts (cpu, cuda, webgpu) the body runs inside a
// `describe('[<name>]')`. A backend that cannot run on this machine gets a `describe.skip`
// whose title carries the reason, and the reason is also printed once per file as
//   [skip] webgpu unavailable: <reason>
// so a skipped backend is never a silent pass. The body is still collected for a skipped
// backend (its tests are listed as skipped), with a stand-in Backend that throws the
// unavailability reason if it is touched: bodies must use `be` only inside it/hooks.
import { describe } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { backendAvailability, getBackend } from '../../src/backend/registry.js';

function unavailableBackend(name: string, reason: string): Backend {
  return new Proxy({} as Backend, {
    get(_t, prop) {
      if (prop === 'name') return name;
      if (prop === 'then') return undefined; // not a thenable
      throw new Error(`${name} unavailable: ${reason}`);
    },
  });
}

// Opening WebGPU is async (adapter and device requests); test files import this module, so
// the top-level await runs once per file before any describe() is collected.
// IMAGERATE_TEST_BACKENDS=cpu,webgpu restricts the run (CI's extra sanitizer passes use cpu).
const SELECTED = process.env.IMAGERATE_TEST_BACKENDS?.split(',').map((s) => s.trim()).filter(Boolean) ?? null;
const AVAILABILITY = SELECTED
  ? (await backendAvailability()).map((b) => (SELECTED.includes(b.name) ? b
    : { name: b.name, available: false, reason: `not selected (IMAGERATE_TEST_BACKENDS=${SELECTED.join(',')})` }))
  : await backendAvailability();

/**
 * For suites about one backend: whether `name` can run here (and is selected). When it cannot,
 * prints `[skip] <what>: <name> unavailable: <reason>` once, so the skip is never silent.
 */
export function backendAvailable(name: string, what: string): boolean {
  const b = AVAILABILITY.find((x) => x.name === name);
  if (!b) throw new Error(`unknown backend ${name}`);
  if (!b.available) console.log(`[skip] ${what}: ${name} unavailable: ${b.reason}`);
  return b.available;
}

export function forEachBackend(fn: (be: Backend) => void): void {
  for (const { name, available, reason } of AVAILABILITY) {
    if (available) {
      describe(`[${name}]`, () => fn(getBackend(name)));
    } else {
      console.log(`[skip] ${name} unavailable: ${reason}`);
      describe.skip(`[${name}] unavailable: ${reason}`, () => fn(unavailableBackend(name, reason ?? 'unknown')));
    }
  }
}

/**
 * A test's timeout on the backend named `name`: `ms`, or 20 x `ms` on the CUDA emulator
 * (imagerate_cuda_emu.node, every kernel thread a fiber on the CPU: LeNet trains at about
 * 30 img/s there). A timeout is a guard against hangs, never a speed assertion. By name, so
 * that describe() bodies can call it for a backend that is not available.
 */
export function timeoutFor(name: string, ms: number): number {
  if (name !== 'cuda' || !AVAILABILITY.find((b) => b.name === 'cuda')?.available) return ms;
  return (getBackend('cuda') as Backend & { emulated?: boolean }).emulated ? 20 * ms : ms;
}
