// The CPU backend must be available wherever the test suite runs: every other suite skips a
// backend it cannot load, so without this check a broken build would pass as "all skipped".
import { describe, expect, it } from 'vitest';
import { backendAvailability, getBackend } from '../../src/backend/registry.js';
import { BackendUnavailableError } from '../../src/backend/backend.js';
import { UserError } from '../../src/util/errors.js';

describe('backend registry', () => {
  it('has a working cpu backend', async () => {
    const cpu = (await backendAvailability()).find((b) => b.name === 'cpu')!;
    expect(cpu.reason ?? '').toBe('');
    expect(cpu.available).toBe(true);
    const be = getBackend('cpu');
    expect(be.device.length).toBeGreaterThan(0);
    // Registration is a table: every op of the interface is there.
    expect(be.ops.size).toBeGreaterThanOrEqual(23);
  });

  it('reports unavailable backends with a reason instead of crashing', async () => {
    for (const b of await backendAvailability()) {
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

// CI installs lavapipe and sets IMAGERATE_REQUIRE_BACKENDS=webgpu: a broken Vulkan setup must
// fail there instead of silently skipping every webgpu test.
describe('required backends', () => {
  const required = process.env.IMAGERATE_REQUIRE_BACKENDS?.split(',').filter(Boolean) ?? [];
  if (!required.length) console.log('[skip] required backends: IMAGERATE_REQUIRE_BACKENDS is not set');
  it.skipIf(!required.length)(`${required.join(', ')} available`, async () => {
    const avail = await backendAvailability();
    for (const name of required) {
      const b = avail.find((x) => x.name === name);
      expect(b, `unknown backend ${name}`).toBeDefined();
      expect(b!.reason ?? '', `${name} must be available here`).toBe('');
    }
  });
});
