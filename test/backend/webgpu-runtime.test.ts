// The WebGPU runtime (src/backend/webgpu/runtime.ts, shaders.ts) below the ops: kernel
// specialisation, the buffer pool, batched submits, in-place (aliased) dispatches, error
// translation (validation, out-of-memory, device lost), device timestamps, and the
// "unavailable: <reason>" path. Op results themselves are tested per backend in
// test/kernels and test/ops. Skipped, with the reason printed, where no adapter exists.
import { backendAvailable } from '../helpers/backends.js';
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { openBackend } from '../../src/backend/registry.js';
import { specialise } from '../../src/backend/webgpu/shaders.js';
import { sizeClass, WebGpuError } from '../../src/backend/webgpu/runtime.js';
import type { WebGpuBackend } from '../../src/backend/webgpu/backend.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';

const webgpuAvailable = backendAvailable('webgpu', 'webgpu runtime tests');

describe('wgsl specialisation (no device needed)', () => {
  it('replaces defined constants and refuses a define that names nothing', () => {
    const src = specialise('pointwise.wgsl', { WG: 64 });
    expect(src).toMatch(/^const WG: u32 = 64u;/m);
    expect(src).not.toMatch(/^const WG: u32 = 256u;/m);
    expect(() => specialise('pointwise.wgsl', { NO_SUCH_CONST: 1 })).toThrow(/NO_SUCH_CONST matches no/);
    expect(() => specialise('pointwise.wgsl', { WG: -1 })).toThrow(/not a u32/);
  });

  it('pool size classes waste at most a quarter and never shrink a request', () => {
    for (const b of [0, 1, 15, 16, 255, 257, 4096, 4097, 10_000, 1 << 20, (1 << 20) + 1, 123_456_789]) {
      const c = sizeClass(b);
      expect(c).toBeGreaterThanOrEqual(Math.max(b, 16));
      if (b > 4096) expect(c / b).toBeLessThanOrEqual(1.25);
      expect(c % 16).toBe(0);
    }
  });
});

describe.skipIf(!webgpuAvailable)('webgpu runtime', () => {
  const get = async () => (await openBackend('webgpu')) as WebGpuBackend;

  it('runs an in-place op (the same buffer bound for reading and writing)', async () => {
    const be = await get();
    const n = 1000;
    const x = be.alloc(n * 4);
    be.upload(x, Float32Array.from({ length: n }, (_, i) => i - 500));
    be.reluFwd(n, x, x);
    be.axpby(n, 2, x, 1, x); // y = 2x + y with x == y: 3 * relu
    const out = new Float32Array(await be.download(x));
    for (let i = 0; i < n; i++) expect(out[i]).toBe(3 * Math.max(i - 500, 0));
    be.free(x);
  });

  it('batches dispatches: many ops, one submit until the caller waits', async () => {
    const be = await get();
    const n = 4096;
    const a = be.alloc(n * 4), b = be.alloc(n * 4);
    be.fill(n, 1, a);
    await be.sync();
    const before = { ...be.rt.counters };
    for (let i = 0; i < 50; i++) be.add(n, a, a, b);
    await be.sync();
    expect(be.rt.counters.dispatches - before.dispatches).toBe(50);
    expect(be.rt.counters.submits - before.submits).toBe(1);
    be.free(a); be.free(b);
  });

  it('reuses pooled buffers: repeated alloc/free creates no new GPU buffers', async () => {
    const be = await get();
    const sizes = [4000, 123_457, 64, 1 << 20];
    for (const s of sizes) be.free(be.alloc(s));
    const created = be.rt.counters.buffersCreated;
    const live = be.stats().liveBuffers;
    for (let step = 0; step < 100; step++) {
      const bufs = sizes.map((s) => be.alloc(s));
      be.fill(sizes[0] / 4, step, bufs[0]);
      for (const b of bufs) be.free(b);
    }
    await be.sync();
    expect(be.rt.counters.buffersCreated).toBe(created);
    expect(be.stats().liveBuffers).toBe(live);
  });

  it('turns a validation error into an exception carrying Dawn\'s message and the op', async () => {
    const be = await get();
    be.rt.dispatch('bogusOp', { file: 'pointwise.wgsl', entry: 'no_such_entry' }, null, [], [], [1]);
    await expect(be.sync()).rejects.toThrow(/webgpu validation error .*bogusOp.*no_such_entry/s);
    // The device stays usable.
    const x = be.alloc(16);
    be.fill(4, 7, x);
    expect(Array.from(new Float32Array(await be.download(x)))).toEqual([7, 7, 7, 7]);
    be.free(x);
  });

  it('refuses a buffer larger than the device allows, naming the size and the device', async () => {
    const be = await get();
    expect(() => be.alloc(64 * 2 ** 30)).toThrow(WebGpuError);
    expect(() => be.alloc(64 * 2 ** 30)).toThrow(/out of memory: a buffer of 64\.00 GiB exceeds .* use a smaller batch/);
  });

  it('checks buffer sizes in the op glue', async () => {
    const be = await get();
    const small = be.alloc(16), big = be.alloc(4096);
    expect(() => be.add(100, small, big, big)).toThrow(/add: buffer a has 16 bytes, needs 400/);
    be.free(small); be.free(big);
  });

  it('times work on the device with timestamp-query when the adapter has it', async () => {
    const be = await get();
    if (!be.deviceTimer) {
      console.log('[skip] device timing: this adapter has no timestamp-query; benchmarks use wall-clock with a fence');
      return;
    }
    const n = 1 << 20;
    const a = be.alloc(n * 4);
    const t1 = await be.timeOnDevice(() => be.fill(n, 1, a));
    const t10 = await be.timeOnDevice(() => { for (let i = 0; i < 10; i++) be.fill(n, 1, a); });
    expect(t1).toBeGreaterThan(0);
    expect(t10!).toBeGreaterThan(t1!); // ten fills take longer than one
    be.free(a);
  });

  it('reports a lost device on every later call, and openBackend then gives a fresh device', async () => {
    const be = await get();
    const x = be.alloc(16);
    be.rt.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await expect(be.sync()).rejects.toThrow(/webgpu device lost \(destroyed\)/);
    expect(() => be.fill(4, 1, x)).toThrow(/webgpu device lost/);
    const fresh = (await openBackend('webgpu')) as WebGpuBackend;
    expect(fresh).not.toBe(be);
    const y = fresh.alloc(16);
    fresh.fill(4, 2, y);
    expect(Array.from(new Float32Array(await fresh.download(y)))).toEqual([2, 2, 2, 2]);
    fresh.free(y);
  });
});

describe('webgpu unavailable', () => {
  it('says why when no Vulkan driver can be found (imagerate info)', () => {
    const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'dist', 'cli.js'), 'info', '--json'], {
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' }, encoding: 'utf8', timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as { backends: { name: string; available: boolean; reason?: string }[] };
    const w = info.backends.find((b) => b.name === 'webgpu')!;
    expect(w.available).toBe(false);
    expect(w.reason).toMatch(/no WebGPU adapter|cannot load|requestAdapter/);
    console.log(`webgpu with no driver: ${w.reason}`);
  });
});
