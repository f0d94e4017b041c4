// The CPU backend must be available wherever the test suite runs: every other suite skips a
// backend it cannot load, so without this check a broken build would pass as "all skipped".
import { describe, expect, it } from 'vitest';
import { backendAvailability, getBackend } from '../../src/backend/registry.js';
import { BackendUnavailableError } from '../../src/backend/backend.js';
import { UserError } from '../../src/util/errors.js';

describe('backend registry', () => {
  it('has a working cpu backend', () => {
    const cpu = backendAvailability().find((b) => b.name === 'cpu')!;
    expect(cpu.reason ?? '').toBe('');
    expect(cpu.available).toBe(true);
    const be = getBackend('cpu');
    expect(be.device.length).toBeGreaterThan(0);
    // Registration is a table: every op of the interface is there.
    expect(be.ops.size).toBeGreaterThanOrEqual(23);
  });

  it('reports unavailable backends with a reason instead of crashing', () => {
    for (const b of backendAvailability()) {
      if (!b.available) {
        console.log(`${b.name} unavailable: ${b.reason}`);
        expect(b.reason && b.reason.length > 0).toBe(true);
        expect(() => getBackend(b.name)).toThrow(BackendUnavailableError);
      }
    }
  });

  it('refuses an unknown backend by name', () => {
    expect(() => getBackend('tpu')).toThrow(UserError);
    expect(() => getBackend('tpu')).toThrow(/unknown backend 'tpu' \(valid: cpu, cuda, webgpu\)/);
  });
});
