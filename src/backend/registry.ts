// Backend registry: one place that turns a backend name into a Backend, or into a clear
// "<name> unavailable: <reason>" error. Backends are created once per process.
import { Backend, BackendUnavailableError } from './backend.js';
import { CpuBackend } from './cpu.js';
import { cudaUnavailable } from './cuda.js';
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
    case 'cuda': {
      throw cudaUnavailable() ?? new BackendUnavailableError('cuda', 'unknown');
    }
    case 'webgpu':
      throw new BackendUnavailableError('webgpu', 'the WebGPU backend is not part of this build yet');
    default:
      throw new UserError(`unknown backend '${name}' (valid: ${BACKEND_NAMES.join(', ')})`);
  }
  instances.set(name, be);
  return be;
}

/** For tests: which backends can run here, and why the others cannot. */
export function backendAvailability(): { name: string; available: boolean; reason?: string }[] {
  return BACKEND_NAMES.map((name) => {
    try {
      getBackend(name);
      return { name, available: true };
    } catch (e) {
      return { name, available: false, reason: e instanceof BackendUnavailableError ? e.reason : (e as Error).message };
    }
  });
}

// Numeric precision, a per-run option (DESIGN.md: reduced precision is a GPU option and is
// printed next to every figure it produced). Asked for where a backend cannot run it, it is
// refused up front, naming the backend and the option (docs/reliability.md).
export const PRECISIONS = ['fp32', 'tf32', 'bf16', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** The precisions each backend of this build computes in. */
const BACKEND_PRECISIONS: Record<string, readonly Precision[]> = { cpu: ['fp32'] };

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
