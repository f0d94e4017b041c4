// Backend registry: one place that turns a backend name into a Backend, or into a clear
// "<name> unavailable: <reason>" error. Backends are created once per process.
//
// openBackend(name) is the entry point: WebGPU's adapter and device requests are promises, so
// opening is async. getBackend(name) is the synchronous lookup for code that runs after the
// backend was opened (the CPU and CUDA backends open synchronously, so it opens those itself).
// A WebGPU device that is lost is dropped here, so the next openBackend('webgpu') gets a new one.
import { Backend, BackendUnavailableError } from './backend.js';
import { CpuBackend } from './cpu.js';
import { createCudaBackend } from './cuda.js';
import { UserError } from '../util/errors.js';

export const BACKEND_NAMES = ['cpu', 'cuda', 'webgpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

const instances = new Map<string, Backend>();

export function getBackend(name: string = 'cpu'): Backend {
  const hit = instances.get(name);
  if (hit) return hit;
  let be: Backend;
  switch (name) {
    case 'cpu':
      be = new CpuBackend();
      break;
    case 'cuda':
      be = createCudaBackend();
      break;
    case 'webgpu':
      throw webgpuFailure ?? new Error("the webgpu backend must be opened first: await openBackend('webgpu')");
    default:
      throw new UserError(`unknown backend '${name}' (valid: ${BACKEND_NAMES.join(', ')})`);
  }
  instances.set(name, be);
  return be;
}

let webgpuFailure: BackendUnavailableError | null = null;
let webgpuEverOpened = false;

/** True once this process has opened a WebGPU device (the CLI then exits explicitly). */
export function webgpuOpened(): boolean {
  return webgpuEverOpened;
}
let webgpuOpening: Promise<Backend> | null = null;

/** Opens (once) and returns the backend `name`; rejects with BackendUnavailableError and its reason. */
export async function openBackend(name: string = 'cpu'): Promise<Backend> {
  if (name !== 'webgpu') return getBackend(name);
  const hit = instances.get(name);
  if (hit) return hit;
  if (webgpuFailure) throw webgpuFailure;
  webgpuOpening ??= (async () => {
    try {
      const { openWebGpu } = await import('./webgpu/backend.js');
      const be = await openWebGpu();
      webgpuEverOpened = true;
      be.rt.whenLost(() => {
        if (instances.get('webgpu') === be) instances.delete('webgpu');
      });
      instances.set('webgpu', be);
      return be as Backend;
    } catch (e) {
      if (e instanceof BackendUnavailableError) webgpuFailure = e;
      throw e;
    } finally {
      webgpuOpening = null;
    }
  })();
  return webgpuOpening;
}

/** A backend that opened here (with its device), or why it cannot. */
export interface BackendAvailability { name: string; available: boolean; device?: string; reason?: string }

/** Which backends can run here (`imagerate info`, tests), and why the others cannot. */
export async function backendAvailability(): Promise<BackendAvailability[]> {
  const out: BackendAvailability[] = [];
  for (const name of BACKEND_NAMES) {
    try {
      const be = await openBackend(name);
      out.push({ name, available: true, device: be.device });
    } catch (e) {
      out.push({ name, available: false, reason: e instanceof BackendUnavailableError ? e.reason : (e as Error).message });
    }
  }
  return out;
}

// Numeric precision, a per-run option (DESIGN.md: reduced precision is a GPU option and is
// printed next to every figure it produced). Asked for where a backend cannot run it, it is
// refused up front, naming the backend and the option (docs/reliability.md).
export const PRECISIONS = ['fp32', 'tf32', 'bf16', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** The precisions each backend of this build computes in. */
const BACKEND_PRECISIONS: Record<string, readonly Precision[]> = { cpu: ['fp32'], webgpu: ['fp32'], cuda: ['fp32', 'tf32', 'bf16', 'fp16'] };

/** Checks `--precision <precision>` for `backend`; returns it typed, or throws a UserError. */
export function checkPrecision(backend: string, precision: string, option = '--precision'): Precision {
  if (!(PRECISIONS as readonly string[]).includes(precision)) {
    throw new UserError(`unknown ${option} '${precision}' (valid: ${PRECISIONS.join(', ')})`);
  }
  const supported = BACKEND_PRECISIONS[backend];
  if (supported && !supported.includes(precision as Precision)) {
    throw new UserError(`${option} ${precision} is not supported on the ${backend} backend (it computes in ${supported.join(', ')} only; ` +
      `${PRECISIONS.filter((p) => !supported.includes(p)).join(', ')} are for GPU backends)`);
  }
  return precision as Precision;
}
