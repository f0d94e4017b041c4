// addon.test.ts: the CPU addon's machinery (native/cpu_*.cc): buffers and the caching
// allocator, stream ordering and error propagation, argument checks, IMAGERATE_CPU_SYNC, and
// loading in several worker threads. The kernels' numerics are in pointwise-kernels.test.ts.
//
// The addon is build/Release/imagerate_cpu.node (cmake-js), or the file named by
// IMAGERATE_CPU_ADDON (e.g. the node-gyp build printed by scripts/build-gyp.sh).
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ADDON = process.env.IMAGERATE_CPU_ADDON || join(ROOT, 'build/Release/imagerate_cpu.node');
if (!existsSync(ADDON)) throw new Error(`CPU addon not built: ${ADDON} is missing (run npm run build:native)`);
type Fn = (...args: any[]) => any;
const cpu = createRequire(import.meta.url)(ADDON) as Record<string, Fn>;

function f32(id: number, bytes?: number): Promise<Float32Array> {
  return cpu.download(id, bytes).then((b: ArrayBuffer) => new Float32Array(b));
}
function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean { // fast exact compare of big arrays
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
function bufferOf(data: Float32Array | Int32Array): number {
  const id = cpu.alloc(data.byteLength);
  cpu.upload(id, data);
  return id;
}

describe('cpu addon: info', () => {
  it('reports the build, ISA and threads', () => {
    const info = cpu.info();
    console.log(`cpu addon ${ADDON}: ${JSON.stringify(info)}`);
    expect(['cmake', 'gyp']).toContain(info.addon);
    expect(['avx2-fma', 'generic']).toContain(info.isa);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(info.simdWidth).toBe(info.isa === 'avx2-fma' ? 8 : 4);
    expect(typeof info.cpuModel).toBe('string');
    expect(['thread', 'inline']).toContain(info.stream);
  });
});

describe('cpu addon: buffers', () => {
  it('round-trips uploads through download, including partial and offset views', async () => {
    for (const n of [1, 3, 7, 17, 1000, 70001]) {
      const data = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 3);
      const id = bufferOf(data);
      expect(sameBytes(await f32(id), data), `n=${n}`).toBe(true);
      expect(await f32(id, 4 * Math.min(n, 2))).toEqual(data.subarray(0, Math.min(n, 2)));
      cpu.free(id);
    }
    const big = Int32Array.from({ length: 10 }, (_, i) => i - 5);
    const id = cpu.alloc(12);
    cpu.upload(id, big.subarray(4, 7)); // a view with a byte offset
    expect(new Int32Array(await cpu.download(id))).toEqual(Int32Array.from([-1, 0, 1]));
    expect((await cpu.download(id, 0)).byteLength).toBe(0);
    cpu.free(id);
  });

  it('stages uploads: changing the source array afterwards does not change the buffer', async () => {
    const src = new Float32Array([1, 2, 3, 4]);
    const id = bufferOf(src);
    src.fill(99);
    expect(await f32(id)).toEqual(new Float32Array([1, 2, 3, 4]));
    cpu.free(id);
  });

  it('uploads typed arrays over a SharedArrayBuffer (decode workers fill those), including offset views', async () => {
    const sab = new Float32Array(new SharedArrayBuffer(6 * 4));
    sab.set([9, 1, 2, 3, 4, 9]);
    const id = cpu.alloc(16);
    cpu.upload(id, sab.subarray(1, 5));
    expect(await f32(id)).toEqual(new Float32Array([1, 2, 3, 4]));
    cpu.free(id);
  });

  it('reuses freed blocks: live buffers stay flat and emptyCache releases the pool', () => {
    const before = cpu.stats();
    for (let i = 0; i < 100; i++) {
      const a = cpu.alloc(4000 + (i % 3)); // same size class
      const b = cpu.alloc(1 << 20);
      expect(cpu.stats().liveBuffers).toBe(before.liveBuffers + 2);
      cpu.free(a);
      cpu.free(b);
    }
    const after = cpu.stats();
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.pooledBuffers).toBeLessThanOrEqual(before.pooledBuffers + 2);
    cpu.emptyCache();
    expect(cpu.stats()).toMatchObject({ pooledBuffers: 0, pooledBytes: 0 });
  });

  it('throws on unknown, freed and malformed ids instead of crashing', () => {
    const id = cpu.alloc(64);
    cpu.free(id);
    expect(() => cpu.free(id)).toThrow(`free: unknown or freed buffer id ${id} (argument id)`);
    expect(() => cpu.download(123456789)).toThrow('download: unknown or freed buffer id 123456789');
    expect(() => cpu.reluFwd(4, id, id)).toThrow(`reluFwd: unknown or freed buffer id ${id} (argument x)`);
    expect(() => cpu.free('7')).toThrow(/free: argument id must be a buffer id, got a string/);
    expect(() => cpu.upload(cpu.alloc(4), [1])).toThrow(/upload: data must be a TypedArray/);
  });

  it('reports allocation failure as a JS error', () => {
    expect(() => cpu.alloc(2 ** 52)).toThrow(`cpu: out of memory allocating ${2 ** 52} bytes`);
    expect(() => cpu.alloc(-1)).toThrow(/alloc: bytes must be a non-negative integer, got -1/);
  });
});

describe('cpu addon: argument checks name the op', () => {
  const small = cpu.alloc(100);
  const big = cpu.alloc(1 << 16);
  // conv: n=1 c=2 h=w=8, k=4 r=s=3, stride 1, pad 1, dil 1 -> p=q=8
  const conv = [1, 2, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 8, 8];
  it('buffer sizes', () => {
    expect(() => cpu.conv2dFwd(conv, big, big, -1, small)).toThrow('conv2dFwd: buffer y has 100 bytes, needs 1024');
    expect(() => cpu.conv2dBwdFilter(conv, big, big, big, small)).toThrow(/conv2dBwdFilter: dw and x must be different buffers/);
    expect(() => cpu.add(26, small, big, big)).toThrow('add: buffer a has 100 bytes, needs 104');
    expect(() => cpu.sumsqCheck(25, big, small)).not.toThrow();
    expect(() => cpu.copy(10, small, 20, big, 0)).toThrow('copy: buffer src has 100 bytes, needs 120');
    expect(() => cpu.maxpool2dFwd([1, 1, 8, 8, 2, 2, 2, 2, 0, 0, 4, 4, 0], big, big, small))
      .toThrow(/maxpool2dFwd: y and x must be different buffers/);
  });
  it('dims and output-size formulas', () => {
    expect(() => cpu.reluFwd(0, big, big)).toThrow('reluFwd: n must be a positive integer, got 0');
    expect(() => cpu.reluFwd(1.5, big, big)).toThrow(/reluFwd: n must be a positive integer/);
    const badP = [...conv.slice(0, 13), 7, 8];
    expect(() => cpu.conv2dFwd(badP, big, big, -1, big)).toThrow(/conv2dFwd: p\.p is 7 but .* gives 8/);
    expect(() => cpu.conv2dFwd(conv.slice(1), big, big, -1, big)).toThrow(/conv2dFwd: p must have 15 entries, got 14/);
    expect(() => cpu.avgpool2dFwd([1, 1, 8, 8, 3, 3, 2, 2, 0, 0, 4, 3, 0], big, small))
      .toThrow(/avgpool2dFwd: pp\.p is 4 but .* gives 3/);
    expect(() => cpu.gemm(false, false, 4, 4, 4, 1, big, 3, big, 4, 0, small, 4)).toThrow('gemm: lda is 3, needs at least 4');
    expect(() => cpu.gemm(false, false, 4, 4, 4, 1, big, 4, small, 4, 0, big, 4)).toThrow(/gemm: c and a must be different/);
    expect(() => cpu.dropoutFwd(4, 1.5, 1, big, big, small)).toThrow(/dropoutFwd: p must be in \[0, 1\]/);
    expect(() => cpu.sgdUpdate(4, NaN, 0, 0, false, big, small, cpu.alloc(16))).toThrow(/sgdUpdate: lr must be finite/);
    expect(() => cpu.fill(4, 1)).toThrow('fill: expected 3 arguments, got 2');
  });
});

describe('cpu addon: stream', () => {
  it('runs queued work in order before download resolves', async () => {
    const n = 70001;
    const id = cpu.alloc(4 * n);
    cpu.fill(n, 1, id);
    for (let i = 0; i < 50; i++) cpu.scale(n, 2, id, id); // in place: y aliases x
    cpu.add(n, id, id, id);
    const out = await f32(id);
    expect(out[0]).toBe(2 ** 51);
    expect(out[n - 1]).toBe(2 ** 51);
    await cpu.sync();
    cpu.free(id);
  });

  it('a failing task rejects the next sync/download with the op name, then the stream goes on', async () => {
    const logits = bufferOf(new Float32Array(20));
    const labels = bufferOf(Int32Array.from([3, 12]));
    const probs = cpu.alloc(80), loss = cpu.alloc(8);
    cpu.softmaxXentFwd(2, 10, 0, logits, labels, probs, loss); // label 12 is out of range: found at run time
    await expect(cpu.sync()).rejects.toThrow('softmaxXentFwd: label 12 at row 1 is outside [0, 10)');
    await expect(cpu.sync()).resolves.toBeUndefined(); // the error was reported once

    cpu.softmaxXentBwd(2, 10, 0, 1, probs, labels, probs);
    await expect(cpu.download(loss)).rejects.toThrow(/softmaxXentBwd: label 12 at row 1/);
    cpu.upload(labels, Int32Array.from([3, 9]));
    cpu.softmaxXentFwd(2, 10, 0, logits, labels, probs, loss);
    const l = await f32(loss);
    expect(l[0]).toBeCloseTo(Math.log(10), 6);
    for (const id of [logits, labels, probs, loss]) cpu.free(id);
  });

  it('IMAGERATE_CPU_SYNC=1 runs ops inline with the same semantics, and exits cleanly', () => {
    const script = `
      const cpu = require(${JSON.stringify(ADDON)});
      const id = cpu.alloc(16);
      cpu.upload(id, new Float32Array([1, -2, 3, -4]));
      cpu.reluFwd(4, id, id);
      const lab = cpu.alloc(4); cpu.upload(lab, new Int32Array([5]));
      const p = cpu.alloc(8), l = cpu.alloc(4);
      cpu.softmaxXentFwd(1, 2, 0, id, lab, p, l);
      cpu.sync().then(() => console.log('no error?'), (e) => {
        cpu.download(id).then((b) => console.log(JSON.stringify({
          stream: cpu.info().stream, y: Array.from(new Float32Array(b)), error: e.message })));
      });`;
    const r = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, IMAGERATE_CPU_SYNC: '1' }, encoding: 'utf8', timeout: 20000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      stream: 'inline', y: [1, 0, 3, 0], error: 'softmaxXentFwd: label 5 at row 0 is outside [0, 2)',
    });
  });

  it('a pending sync keeps the process alive; an idle addon does not', () => {
    const script = `
      const cpu = require(${JSON.stringify(ADDON)});
      const n = 1 << 22, id = cpu.alloc(4 * n);
      for (let i = 0; i < 20; i++) cpu.fill(n, i, id);
      cpu.download(id, 4).then((b) => console.log('value', new Float32Array(b)[0]));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('value 19');
  });

  it('loads in several worker threads at once; terminating one with queued work is clean', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const cpu = require(workerData.addon);
      const n = 1 << 20, id = cpu.alloc(4 * n);
      cpu.fill(n, workerData.k, id);
      cpu.scale(n, 2, id, id);
      cpu.download(id, 8).then((b) => {
        parentPort.postMessage(Array.from(new Float32Array(b)));
        for (let i = 0; i < 200; i++) cpu.fill(n, 0, id); // still queued when terminated
      });`;
    const run = (k: number) => new Promise<{ w: Worker; msg: number[] }>((res, rej) => {
      const w = new Worker(code, { eval: true, workerData: { addon: ADDON, k } });
      w.once('message', (msg) => res({ w, msg }));
      w.once('error', rej);
    });
    const got = await Promise.all([run(1), run(2), run(3)]);
    expect(got.map((g) => g.msg)).toEqual([[2, 2], [4, 4], [6, 6]]);
    await Promise.all(got.map((g) => g.w.terminate()));
    // This environment's addon instance is unaffected.
    const id = bufferOf(new Float32Array([5]));
    expect(await f32(id)).toEqual(new Float32Array([5]));
    cpu.free(id);
  });
});

describe('cpu addon: gemm wiring', () => {
  // Checks the argument order of the binding (trans flags, leading dimensions, alpha/beta) on
  // a small odd shape; the GEMM kernel's own tests cover its tiles. Float64 reference; the
  // 1e-5 relative tolerance covers float32 accumulation over k = 7.
  it.each([[false, false], [true, false], [false, true], [true, true]])('transA=%s transB=%s', async (ta, tb) => {
    const m = 3, n = 5, k = 7, pad = 2;
    const lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const A = Float32Array.from({ length: (ta ? k : m) * lda }, (_, i) => Math.sin(i + 1));
    const B = Float32Array.from({ length: (tb ? n : k) * ldb }, (_, i) => Math.cos(i * 0.7));
    const C = Float32Array.from({ length: m * ldc }, (_, i) => i % 4);
    const [a, b, c] = [bufferOf(A), bufferOf(B), bufferOf(C)];
    cpu.gemm(ta, tb, m, n, k, 1.5, a, lda, b, ldb, 0.5, c, ldc);
    const got = await f32(c);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < ldc; j++) {
        let ref = C[i * ldc + j];
        if (j < n) {
          let s = 0;
          for (let p = 0; p < k; p++) s += (ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? B[j * ldb + p] : B[p * ldb + j]);
          ref = 1.5 * s + 0.5 * C[i * ldc + j];
        }
        expect(Math.abs(got[i * ldc + j] - ref)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(ref)));
      }
    }
    for (const id of [a, b, c]) cpu.free(id);
  });
});
