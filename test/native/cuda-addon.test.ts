// cuda-addon.test.ts: the CUDA addon's machinery (native/cuda_*.cc): loading and probe(), the
// export table, "cuda unavailable" where there is no GPU, and on a GPU the buffers and caching
// allocator, pinned up/downloads, stream ordering, out-of-memory recovery, math modes, event
// timing and CUDA graphs. The kernels' numerics are checked by the shared op tests.
//
// The addon exists only where the build made it (CMake IMAGERATE_CUDA: AUTO builds it only
// where nvcc and a driver are found); without it the test is skipped and says why. The file is
// build/Release/imagerate_cuda.node, or the one named by IMAGERATE_CUDA_ADDON.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OP_NAMES, BackendUnavailableError } from '../../src/backend/backend.js';
import { createCudaBackend, probeCuda } from '../../src/backend/cuda.js';
import { describeBackendHost } from '../../src/bench/host.js';
import { runModelBench } from '../../src/bench/model-bench.js';
import { benchStep, timeOurs } from '../../src/bench/model-step.js';
import { Tensor } from '../../src/tensor.js';
import { getModelSpec } from '../../src/models/index.js';
import { Sgd } from '../../src/train/sgd.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ADDON = process.env.IMAGERATE_CUDA_ADDON || join(ROOT, 'build/Release/imagerate_cuda.node');
const built = existsSync(ADDON);
if (!built) {
  const note = join(dirname(ADDON), 'imagerate_cuda.skipped');
  const why = existsSync(note) ? readFileSync(note, 'utf8').trim() : 'no note left by the build';
  console.log(`cuda addon test skipped: ${ADDON} was not built (${why})`);
}

interface Probe {
  available: boolean;
  reason?: string;
  driverVersion: number;
  runtimeVersion: number;
  devices?: { index: number; name: string; computeCapability: string; totalMemoryBytes: number }[];
}
type Fn = (...args: any[]) => any;
const cuda = built ? (createRequire(import.meta.url)(ADDON) as Record<string, Fn>) : ({} as Record<string, Fn>);
const probe: Probe | null = built ? cuda.probe() : null;
const gpu = !!probe?.available;
if (built && !gpu) console.log(`cuda GPU tests skipped: ${probe?.reason}`);

const EXTRAS = ['probe', 'info', 'setMathMode', 'alloc', 'free', 'upload', 'download', 'sync', 'stats', 'emptyCache',
  'gemmKernelName', 'conv2dFwdBiasRelu', 'batchnorm2dFwdTrainRelu', 'batchnorm2dFwdEvalRelu', 'batchnorm2dBwdRelu',
  'captureBegin', 'captureEnd', 'replay', 'graphDestroy', 'eventRecord', 'eventElapsed', 'flushL2',
  'sgdUpdateDeviceLr', 'dropoutFwdDeviceSeed'];

describe.skipIf(!built)('cuda addon: loading', () => {
  it('loads and probes without a crash', () => {
    const p = probe!;
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

  it('exports every op of the Backend interface, plus the CUDA extras', () => {
    const keys = Object.keys(cuda);
    for (const op of [...OP_NAMES, ...EXTRAS]) expect(keys, op).toContain(op);
  });

  it('checks arguments before touching the device', () => {
    expect(() => cuda.setMathMode('fp8')).toThrow(/^setMathMode: unknown math mode 'fp8'/);
    expect(() => cuda.free(123456)).toThrow(/^free: unknown or freed buffer id 123456 \(argument id\)$/);
    expect(() => cuda.gemm(false, false, 1, 1, 1, 1, 'x', 1, 1, 1, 0, 1, 1)).toThrow(TypeError);
    expect(() => cuda.alloc(-1)).toThrow(/^alloc: bytes must be a non-negative integer, got -1$/);
  });
});

describe.skipIf(!built || gpu)('cuda addon: no usable GPU', () => {
  it('says why on every call that needs the device, and stays usable', () => {
    for (const call of [() => cuda.alloc(16), () => cuda.info(), () => cuda.sync(), () => cuda.captureBegin(), () => cuda.eventRecord()]) {
      expect(call).toThrow(`cuda unavailable: ${probe!.reason}`);
    }
    expect(cuda.stats()).toMatchObject({ liveBuffers: 0, liveBytes: 0, pooledBuffers: 0, pooledBytes: 0 });
    expect(() => cuda.emptyCache()).not.toThrow();
  });

  it('createCudaBackend() throws BackendUnavailableError with the reason', () => {
    let err: unknown;
    try {
      createCudaBackend();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as BackendUnavailableError).message).toBe(`cuda unavailable: ${probeCuda().reason}`);
  });
});

describe.skipIf(!gpu)('cuda addon: on the GPU', () => {
  const f32 = async (id: number, bytes?: number) => new Float32Array(await cuda.download(id, bytes));
  const upload = (data: Float32Array | Int32Array) => {
    const id = cuda.alloc(data.byteLength);
    cuda.upload(id, data);
    return id;
  };

  it('reports the device', () => {
    const info = cuda.info();
    console.log(`cuda info: ${JSON.stringify(info)}`);
    expect(info.name.length).toBeGreaterThan(0);
    expect(info.multiprocessors).toBeGreaterThan(0);
    expect(info.mathMode).toBe('fp32');
    expect(info.driverVersion).toBeGreaterThan(0);
  });

  it('round-trips uploads through download, including partial downloads and offset views', async () => {
    for (const n of [1, 3, 7, 17, 1000, 70001, 1 << 22]) {
      const data = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 3);
      const id = upload(data);
      expect(Buffer.from((await f32(id)).buffer).equals(Buffer.from(data.buffer)), `n=${n}`).toBe(true);
      expect(await f32(id, 4 * Math.min(n, 2))).toEqual(data.subarray(0, Math.min(n, 2)));
      cuda.free(id);
    }
    const big = Int32Array.from({ length: 10 }, (_, i) => i - 5);
    const id = cuda.alloc(12);
    cuda.upload(id, big.subarray(4, 7));
    expect(new Int32Array(await cuda.download(id))).toEqual(Int32Array.from([-1, 0, 1]));
    expect((await cuda.download(id, 0)).byteLength).toBe(0);
    expect(() => cuda.upload(id, new Float32Array(4))).toThrow(/^upload: buffer id has 12 bytes, needs 16$/);
    cuda.free(id);
  });

  it('runs ops in stream order and reuses freed blocks from the pool', async () => {
    const n = 1 << 20;
    const before = cuda.stats();
    const x = cuda.alloc(4 * n), y = cuda.alloc(4 * n);
    cuda.fill(n, 2, x);
    cuda.scale(n, 3, x, y); // y = 6
    cuda.add(n, y, x, x); // x = 8
    cuda.copy(n - 1, x, 0, x, 1); // overlapping copy within one buffer
    const got = await f32(x);
    expect(got[0]).toBe(8);
    expect(got[n - 1]).toBe(8);
    cuda.free(x);
    cuda.free(y);
    const mid = cuda.stats();
    expect(mid.liveBuffers).toBe(before.liveBuffers);
    expect(mid.pooledBuffers).toBeGreaterThanOrEqual(2);
    const z = cuda.alloc(4 * n); // same size class: from the pool, no cudaMalloc
    expect(cuda.stats().mallocCalls).toBe(mid.mallocCalls);
    cuda.free(z);
    cuda.emptyCache();
    expect(cuda.stats()).toMatchObject({ pooledBuffers: 0, pooledBytes: 0 });
  });

  it('turns out-of-memory into a catchable error and stays usable', async () => {
    let err: any;
    try {
      cuda.alloc(4 * 2 ** 50); // 4 PiB
    } catch (e) {
      err = e;
    }
    expect(err?.message).toMatch(/^cuda alloc: cudaErrorMemoryAllocation \(out of memory\) allocating 4503599627370496 bytes$/);
    expect(err?.code).toBe('cudaErrorMemoryAllocation');
    const id = upload(Float32Array.from([1, 2, 3]));
    expect(Array.from(await f32(id))).toEqual([1, 2, 3]);
    cuda.free(id);
    await cuda.sync();
  });

  it('says whether it is the CPU emulator, and the benchmarks refuse the emulator', () => {
    const be = createCudaBackend();
    expect(cuda.info().emulated).toBe(be.emulated);
    if (!be.emulated) {
      console.log('emulator refusal not checked: this addon runs on a GPU');
      expect(() => describeBackendHost(be)).not.toThrow();
      return;
    }
    expect(be.device).toMatch(/^imagerate CUDA emulator \(CPU\): the CUDA kernels run on the CPU as if on sm_90/);
    expect(() => describeBackendHost(be)).toThrow(/is the CPU emulator \(IMAGERATE_CUDA_ADDON\).*the benchmarks refuse it$/);
  });

  it('times work with cudaEvents and switches math modes', async () => {
    const n = cuda.info().emulated ? 256 : 1024; // the emulator takes seconds per 1024^3
    const a = cuda.alloc(4 * n * n), b = cuda.alloc(4 * n * n), c = cuda.alloc(4 * n * n);
    cuda.fill(n * n, 1, a);
    cuda.fill(n * n, 1, b);
    for (const mode of ['fp32', 'tf32', 'bf16', 'fp16']) {
      expect(cuda.setMathMode(mode)).toBe(mode);
      const kernel = cuda.gemmKernelName(false, false, n, n, n, 1);
      cuda.flushL2();
      const t0 = cuda.eventRecord();
      cuda.gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n);
      const t1 = cuda.eventRecord();
      const ms = await cuda.eventElapsed(t0, t1);
      console.log(`gemm ${n}^3 ${mode} (${kernel}): ${ms.toFixed(3)} ms`);
      expect(ms).toBeGreaterThan(0);
      expect((await f32(c, 16))[0]).toBe(n); // sums of ones are exact in every mode
    }
    cuda.setMathMode('fp32');
    expect(() => cuda.eventElapsed(1e9, 1e9 + 1)).toThrow(/^eventElapsed: unknown or consumed event id/);
    for (const id of [a, b, c]) cuda.free(id);
  });

  it('IMAGERATE_CUDA_WGMMA=1 puts tf32/bf16/fp16 GEMMs and convolutions on the wgmma loop where sm_90a code runs', () => {
    const hopper = cuda.info().computeCapability === '9.0';
    const optedIn = !!process.env.IMAGERATE_CUDA_WGMMA && process.env.IMAGERATE_CUDA_WGMMA !== '0';
    expect(cuda.info().tensorCoreLoop).toBe(optedIn && hopper ? 'wgmma' : 'mma.sync');
    // A child process opts in (the addon reads the variable when it loads) and runs tf32 GEMMs
    // whose exact answers it knows: small integers are exact in tf32 and their sums in fp32.
    // NN runs the register-staged wgmma loop; NT (B stored N x K, rows padded to 40 floats with
    // NaN that must never be read) the TMA-fed one, on A scaled by 1 - 2^-13: tf32 rounding to
    // nearest gives back the integer, whereas dropping the 13 low bits (what the tensor core
    // may do with an unrounded word) or no rounding at all would not, so this also checks the
    // TMA loop's in-place rounding pass.
    const script = `
      const a = require(process.argv[1]);
      const M = 130, N = 70, K = 37, LD = 40, up = (v) => { const id = a.alloc(v.byteLength); a.upload(id, v); return id; };
      const A = new Float32Array(M * K).map((_, i) => (i % 7) - 3), B = new Float32Array(K * N).map((_, i) => (i % 5) - 2);
      const dA = up(A), dB = up(B), dC = a.alloc(4 * M * N);
      a.setMathMode('tf32');
      a.gemm(false, false, M, N, K, 1, dA, K, dB, N, 0, dC, N);
      // NT: A2 = A (1 - 2^-13) (exact in fp32; tf32 rounds it back to A), Bt[j][k] = B[k][j],
      // both with LD-float rows.
      const A2 = new Float32Array(M * LD).fill(NaN), Bt = new Float32Array(N * LD).fill(NaN);
      for (let i = 0; i < M; ++i) for (let k = 0; k < K; ++k) A2[i * LD + k] = A[i * K + k] * (1 - 2 ** -13);
      for (let j = 0; j < N; ++j) for (let k = 0; k < K; ++k) Bt[j * LD + k] = B[k * N + j];
      const dA2 = up(A2), dBt = up(Bt), dC2 = a.alloc(4 * M * N);
      a.gemm(false, true, M, N, K, 1, dA2, LD, dBt, LD, 0, dC2, N);
      Promise.all([a.download(dC), a.download(dC2)]).then(([b1, b2]) => {
        const C = new Float32Array(b1), C2 = new Float32Array(b2);
        let bad = 0, badNT = 0;
        for (let i = 0; i < M; ++i) for (let j = 0; j < N; ++j) {
          let s = 0;
          for (let k = 0; k < K; ++k) s += A[i * K + k] * B[k * N + j];
          if (C[i * N + j] !== s) ++bad;
          if (C2[i * N + j] !== s) ++badNT;
        }
        console.log(JSON.stringify({ loop: a.info().tensorCoreLoop, kernel: a.gemmKernelName(false, false, M, N, K, 1),
          kernelNT: a.gemmKernelName(false, true, M, N, K, 1), bad, badNT }));
      });`;
    const r = spawnSync(process.execPath, ['-e', script, ADDON], {
      env: { ...process.env, IMAGERATE_CUDA_WGMMA: '1' }, encoding: 'utf8', timeout: 600_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    console.log(`IMAGERATE_CUDA_WGMMA=1 on sm_${cuda.info().computeCapability.replace('.', '')}: ${JSON.stringify(out)}`);
    expect(out.bad).toBe(0);
    expect(out.badNT).toBe(0);
    expect(out.loop).toBe(hopper ? 'wgmma' : 'mma.sync');
    expect(out.kernel).toBe(hopper ? 'gemm_tf32_wgmma_128x128' : 'gemm_tf32_mma_128x128');
    expect(out.kernelNT).toBe(hopper ? 'gemm_tf32_wgmma_tma_128x128' : 'gemm_tf32_mma_128x128');
  });

  it('captures a sequence of ops into a graph and replays it', async () => {
    const n = 4096;
    const x = upload(new Float32Array(n).fill(1));
    const y = cuda.alloc(4 * n);
    cuda.captureBegin();
    expect(() => cuda.upload(x, new Float32Array(1))).toThrow(/^upload: not allowed while a CUDA graph is being captured/);
    // The flush buffer lives outside the allocator (emptyCache frees it), so no graph may hold it.
    expect(() => cuda.flushL2()).toThrow(/^flushL2: not allowed while a CUDA graph is being captured/);
    cuda.scale(n, 2, x, y); // y = 2x
    cuda.add(n, y, x, x); // x = 3x
    const g = cuda.captureEnd();
    expect(g.nodes).toBeGreaterThanOrEqual(2);
    expect((await f32(x))[0]).toBe(1); // captured, not run
    cuda.replay(g.id, 3);
    expect((await f32(x))[n - 1]).toBe(27);
    cuda.free(y); // held by the graph: memory stays until graphDestroy
    expect(cuda.stats().heldBuffers).toBe(1);
    cuda.replay(g.id);
    expect((await f32(x))[0]).toBe(81);
    cuda.graphDestroy(g.id);
    expect(cuda.stats().heldBuffers).toBe(0);
    cuda.free(x);
  });

  it('a graph keeps the buffers its capture freed: no later alloc shares its memory, and emptyCache() keeps it', async () => {
    const n = 1024;
    const x = upload(new Float32Array(n).fill(1)), out = cuda.alloc(4 * n);
    const held0 = cuda.stats().heldBuffers;
    cuda.captureBegin();
    const t = cuda.alloc(4 * n);
    cuda.scale(n, 2, x, t); // t = 2
    cuda.add(n, t, x, out); // out = 3
    cuda.free(t); // freed inside the capture: its block must not be handed out again
    const t2 = cuda.alloc(4 * n);
    cuda.fill(n, 5, t2);
    cuda.add(n, t2, out, out); // out = 8
    cuda.free(t2);
    const g = cuda.captureEnd();
    expect(cuda.stats().heldBuffers - held0).toBe(2);
    const probe = cuda.alloc(4 * n); // the same size class
    cuda.fill(n, -1, probe);
    cuda.emptyCache(); // gives the pool back to the driver: none of it may be the graph's
    cuda.replay(g.id, 2);
    expect(Array.from(new Set(await f32(out)))).toEqual([8]);
    expect(Array.from(new Set(await f32(probe)))).toEqual([-1]);
    cuda.graphDestroy(g.id);
    expect(cuda.stats().heldBuffers).toBe(held0);
    for (const id of [x, out, probe]) cuda.free(id);
  });

  it('a capture whose ops throw leaves no graph and no held buffer behind (CudaBackend.captureGraph)', () => {
    const be = createCudaBackend();
    const before = be.stats();
    const x = be.alloc(64), y = be.alloc(16);
    expect(() => be.captureGraph(() => {
      be.reluFwd(16, x, x);
      be.reluFwd(16, x, y); // y is too small: the op refuses it
    })).toThrow(/^reluFwd: buffer y has 16 bytes, needs 64$/);
    be.free(x);
    be.free(y);
    expect(be.stats()).toMatchObject({ graphs: before.graphs, heldBuffers: before.heldBuffers, liveBuffers: before.liveBuffers });
  });

  it('SGD and dropout read the learning rate and the seed from device memory, so a replayed graph takes new values', async () => {
    const n = 3000;
    const w0 = Float32Array.from({ length: n }, (_, i) => Math.sin(i)), g = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.7));
    const w1 = upload(w0), v1 = upload(new Float32Array(n)), w2 = upload(w0), v2 = upload(new Float32Array(n)), gb = upload(g);
    const lr = upload(Float32Array.of(0.25)), seed = upload(Int32Array.of(0x9abcdef0 | 0));
    const mask1 = cuda.alloc(4 * n), y1 = cuda.alloc(4 * n), mask2 = cuda.alloc(4 * n), y2 = cuda.alloc(4 * n);
    const same = async (a: number, b: number) => Buffer.from(await cuda.download(a)).equals(Buffer.from(await cuda.download(b)));
    cuda.captureBegin();
    cuda.sgdUpdateDeviceLr(n, lr, 0.9, 1e-3, true, w2, gb, v2);
    cuda.dropoutFwdDeviceSeed(n, 0.3, seed, gb, mask2, y2);
    const graph = cuda.captureEnd();
    for (const [rate, s] of [[0.25, 0x9abcdef0], [0.5, 7], [0.125, 123456]]) {
      cuda.upload(lr, Float32Array.of(rate));
      cuda.upload(seed, Int32Array.of(s | 0));
      cuda.replay(graph.id);
      cuda.sgdUpdate(n, rate, 0.9, 1e-3, true, w1, gb, v1);
      cuda.dropoutFwd(n, 0.3, s, gb, mask1, y1);
      expect(await same(w2, w1), `w at lr ${rate}`).toBe(true);
      expect(await same(v2, v1), `v at lr ${rate}`).toBe(true);
      expect(await same(mask2, mask1), `mask at seed ${s}`).toBe(true);
      expect(await same(y2, y1), `y at seed ${s}`).toBe(true);
    }
    cuda.graphDestroy(graph.id);
    expect(() => cuda.sgdUpdateDeviceLr(n, 0.1, 0.9, 0, false, w1, gb, v1)).toThrow(TypeError);
    expect(() => cuda.sgdUpdateDeviceLr(n, w1, 0.9, 0, false, w1, gb, v1)).toThrow(/^sgdUpdateDeviceLr: w and lr must be different buffers/);
    expect(() => cuda.dropoutFwdDeviceSeed(n, 0.3, y1, gb, mask1, y1)).toThrow(/^dropoutFwdDeviceSeed: y and seed must be different buffers/);
    const tiny = cuda.alloc(0);
    expect(() => cuda.dropoutFwdDeviceSeed(n, 0.3, tiny, gb, mask1, y1)).toThrow(/^dropoutFwdDeviceSeed: buffer seed has 0 bytes/);
    for (const id of [w1, v1, w2, v2, gb, lr, seed, mask1, y1, mask2, y2, tiny]) cuda.free(id);
  });

  it('CudaBackend: device, precision, device timing and graphs through the TypeScript face', async () => {
    const be = createCudaBackend();
    console.log(`cuda backend: ${be.device}; ops ${be.ops.size}/${OP_NAMES.length}`);
    expect(be.device).toContain(cuda.info().name);
    expect(be.ops.size).toBe(OP_NAMES.length);
    expect(be.deviceTimer).toBe('cuda-event');
    expect(be.setPrecision('tf32')).toBe('tf32');
    expect(be.precision()).toBe('tf32');
    be.setPrecision('fp32');
    const n = 1 << 20;
    const x = be.alloc(4 * n);
    const s = await be.timeOnDevice(() => be.fill(n, 1, x));
    expect(s).toBeGreaterThan(0);
    expect(s).toBeLessThan(1);
    const g = be.captureGraph(() => be.scale(n, 2, x, x));
    g.replay(10);
    expect(new Float32Array(await be.download(x, 8))[1]).toBe(1024);
    g.dispose();
    be.free(x);
  });

  it('a LeNet-5 training step captured as a CUDA graph and replayed 3 times gives 3 eager steps\' weights, bit for bit', async () => {
    // What `bench models --cuda-graph` times (its benchStep): one eager step (it creates the SGD
    // velocities), the capture (which runs nothing), then replays on the same input buffers.
    const be = createCudaBackend();
    const x = Tensor.fromArray(be, [4, 1, 28, 28], Float32Array.from({ length: 4 * 784 }, (_, i) => Math.sin(i * 0.37)));
    const y = Tensor.fromArray(be, [4], new Int32Array([3, 1, 4, 1]));
    const weights = (ps: Tensor[]) => Promise.all(ps.map(async (p) => Array.from(await p.data())));
    const train = async (graph: boolean) => {
      const net = getModelSpec('lenet5').build(be, 1);
      const opt = new Sgd(net.parameters(), { momentum: 0.9, weightDecay: 5e-4 });
      const body = benchStep(net, opt, 'training', 0.05);
      const step = () => body(x, y);
      try {
        step();
        const first = await weights(net.parameters());
        if (graph) {
          const g = be.captureGraph(step);
          expect(g.nodes).toBeGreaterThan(20);
          expect(await weights(net.parameters())).toEqual(first); // capturing ran nothing
          g.replay(3);
          g.dispose();
        } else {
          for (let i = 0; i < 3; i++) step();
        }
        const last = await weights(net.parameters());
        expect(last).not.toEqual(first);
        return last;
      } finally {
        opt.dispose();
        net.dispose();
      }
    };
    const eager = await train(false);
    expect(await train(true)).toEqual(eager);
    x.dispose();
    y.dispose();
    expect(cuda.stats().heldBuffers).toBe(0);
  });

  it('bench models --cuda-graph: eager and graph-replayed records side by side, each saying which', async () => {
    const emulated = cuda.info().emulated === true;
    if (emulated) process.env.IMAGERATE_BENCH_EMULATOR = '1'; // the pipeline only: no figure is kept
    try {
      const run = (cudaGraph: boolean) => runModelBench({ model: 'lenet5', batches: [4], modes: ['training', 'inference'], backend: 'cuda',
        warmup: 1, iters: 2, frameworks: [], cudaGraph });
      const [eager, graphed] = [await run(false), await run(true)];
      for (const [i, r] of graphed.entries()) {
        expect(r.ours.cudaGraph).toBe(true);
        expect(eager[i].ours.cudaGraph).toBeUndefined();
        expect(r.ours.notes).toMatch(/, replayed as one CUDA graph;.*each step one replay of a CUDA graph/);
        expect(r.ours.iters).toBe(2);
        expect(r.ours.imagesPerSec).toBeGreaterThan(0);
        if (emulated) expect(r.ours.host.gpu).toMatch(/emulator/);
      }
      // End to end: every replay is preceded by drawing a batch and uploading it into the captured inputs.
      const [e2e] = await runModelBench({ model: 'lenet5', batches: [4], modes: ['training'], backend: 'cuda', data: 'mnist',
        warmup: 1, iters: 3, cudaGraph: true, frameworks: [] });
      expect(e2e.ours).toMatchObject({ loading: 'end-to-end', cudaGraph: true, iters: 3 });
      expect(e2e.ours.notes).toMatch(/data loading included .*, replayed as one CUDA graph;.*each batch uploaded into the captured input buffers before the replay\)/);
    } finally {
      delete process.env.IMAGERATE_BENCH_EMULATOR;
    }
    expect(cuda.stats().heldBuffers).toBe(0);
  });

  it('bench --cuda-graph end to end: every replay is preceded by one upload into the same captured inputs', async () => {
    const be = createCudaBackend();
    const spec = getModelSpec('lenet5');
    const x = Tensor.filled(be, [4, ...spec.input], 0.5), y = Tensor.fromArray(be, [4], Int32Array.of(1, 2, 3, 4));
    const into: [number, number][] = [];
    const feed = {
      next: async () => ({ x, y, owned: false }),
      into: async (gx: Tensor, gy: Tensor) => {
        into.push([gx.buf.id, gy.buf.id]);
        gx.backend.upload(gx.buf, new Float32Array(gx.size).fill(into.length));
        gy.backend.upload(gy.buf, new Int32Array(gy.size).fill(into.length % 10));
      },
      describe: 'stub', close: async () => {},
    };
    const times = await timeOurs(be, spec, 4, 'training', feed, 2, { iters: 3, minIters: 1, cudaGraph: true });
    expect(times).toHaveLength(3);
    expect(into).toHaveLength(2 + 3); // the replays' own warm-up (min(warmup, 3)), then the timed ones
    expect(new Set(into.map((ids) => ids.join(','))).size).toBe(1); // always the captured buffers
    expect(into[0]).not.toEqual([x.buf.id, y.buf.id]);
    x.dispose();
    y.dispose();
    expect(be.stats().heldBuffers).toBe(0);
  });

  it('rejects a download with the CUDA error of a failed kernel (sticky faults are not tested here)', async () => {
    // Argument errors are caught before launch; a fault inside a kernel would end the context
    // for the whole process, so it is left to compute-sanitizer runs of the kernel harness.
    const id = cuda.alloc(16);
    expect(() => cuda.reluFwd(5, id, id)).toThrow(/^reluFwd: buffer x has 16 bytes, needs 20$/);
    cuda.free(id);
    await expect(cuda.sync()).resolves.toBeUndefined();
  });
});
