// `imagerate bench overhead`: what the host spends around the kernels, per backend. These are
// figures of many cheap calls, which is what the `benchmark` npm package (Benchmark.js) is built
// for: it calibrates how many calls make one cycle (at least its minTime), then takes cycles as
// samples until maxTime has passed and it has minSamples; each sample is one cycle's seconds per
// call. Every case here is a deferred benchmark: one call ends with `await be.sync()`, so the
// work it queued is finished before the next call starts, and the cycle's clock covers it.
//
//   overhead/fence         `await be.sync()` with nothing queued: the submit-and-wait fence
//                          that every synced figure (kernels, models) includes once per call;
//   overhead/enqueue       the host cost of enqueueing one tiny op: `opsPerCall` (1000) x
//                          be.fill(1, 0, buf) then one sync; per op = (call - fence) /
//                          opsPerCall. The launch overhead that decides whether small nets
//                          are host-bound. The fence subtracted is overhead/fence's fastest
//                          cycle: it is measured separately, and a slow phase of a shared
//                          machine while it ran inflates its median (by milliseconds, seen
//                          here while a browser started), which made enqueue samples negative;
//                          the fastest cycle is the fence's uncontended cost. With 1000 ops
//                          per call (~0.3-0.6 ms on the 2-core CPU) the fence is ~2 % of a call;
//   overhead/lenet5-*      LeNet-5 at batch 1: a forward in inference (eval mode, noGrad +
//                          tidy, synced) and one training step (forward, loss, backward, SGD
//                          momentum update, zeroGrad, synced). At batch 1 LeNet's arithmetic
//                          is ~0.8 MFLOP, so these are mostly autograd and dispatch work; the
//                          record's shape says how many backend calls one iteration makes.
//
// The records are kind 'kernel' with suite 'overhead' and names 'overhead/...', timing from
// Benchmark.js's per-cycle sample (stats.sample, seconds per call) through timingFromSeconds,
// so median and p10/p90 are over cycles; the notes keep Benchmark.js's own mean +- relative
// margin of error, the cycle count and the calls per cycle. A case that cannot run on a
// backend (an op not implemented yet) is written as a MissingRecord with the reason.
import Benchmark from 'benchmark';
import { OP_NAMES, type Backend } from '../backend/backend.js';
import { openBackend } from '../backend/registry.js';
import { tidy } from '../autograd/scope.js';
import { backward, noGrad } from '../autograd/tape.js';
import { softmaxCrossEntropy } from '../ops/loss.js';
import { getModelSpec } from '../models/index.js';
import { Sgd } from '../train/sgd.js';
import { Tensor } from '../tensor.js';
import { Rng } from '../util/rng.js';
import { describeBackendHost, imagerateInfo, type HostInfo } from './host.js';
import { appendRecord, timingFromSeconds, type BenchRecord, type MissingRecord, type ResultLine } from './record.js';

export interface OverheadBenchOptions {
  backend?: string;
  threads?: number;
  /** Benchmark.js maxTime per case, seconds (default 1). */
  maxTime?: number;
  /** Benchmark.js minSamples per case (default 5). */
  minSamples?: number;
  /** Benchmark.js minTime, the shortest cycle, seconds (default: its own, >= 0.05). */
  minTime?: number;
  /** Calls before Benchmark.js starts (its calibration cycles, not sampled, follow). Default 5. */
  warmup?: number;
  /** fill calls per timed call of overhead/enqueue (default 1000). */
  opsPerCall?: number;
  /** Also time one LeNet-5 training step at batch 1 (default true). */
  training?: boolean;
  out?: string;
  onRecord?: (r: ResultLine) => void;
}

/** One Benchmark.js run of an async call: the finished benchmark, or the call's error. */
function measure(name: string, call: () => Promise<void>, o: { maxTime: number; minSamples: number; minTime?: number }): Promise<Benchmark> {
  return new Promise((resolve, reject) => {
    let failure: unknown = null;
    const bench: Benchmark = new Benchmark(name, {
      defer: true,
      maxTime: o.maxTime,
      minSamples: o.minSamples,
      ...(o.minTime !== undefined ? { minTime: o.minTime } : {}),
      fn: (deferred: Benchmark.Deferred) => {
        call().then(() => deferred.resolve(), (e) => {
          failure = e;
          bench.abort();
          deferred.resolve();
        });
      },
      onComplete: () => {
        if (failure !== null) reject(failure);
        else if (bench.error) reject(bench.error);
        else resolve(bench);
      },
    });
    bench.run({ async: true });
  });
}

/** The shortest cycle Benchmark.js used (its default: 0.05 s or more, from the timer's resolution). */
function cycleMinTime(b: Benchmark): string {
  const t = (b as unknown as { minTime?: number }).minTime;
  return typeof t === 'number' ? String(+t.toPrecision(3)) : '?';
}

/** Backend op calls and allocations one run of `fn` makes (counted by wrapping the instance's methods). */
function countBackendCalls(be: Backend, fn: () => void): { ops: number; allocs: number } | null {
  const names = [...OP_NAMES, 'alloc'] as const;
  const target = be as unknown as Record<string, unknown>;
  const saved = names.map((n) => [n, Object.getOwnPropertyDescriptor(be, n)] as const);
  const count = { ops: 0, allocs: 0 };
  try {
    for (const n of names) {
      const f = target[n];
      if (typeof f !== 'function') continue;
      const wrapped = (...args: unknown[]) => {
        if (n === 'alloc') count.allocs++;
        else count.ops++;
        return (f as (...a: unknown[]) => unknown).apply(be, args);
      };
      Object.defineProperty(be, n, { value: wrapped, configurable: true, writable: true });
    }
    fn();
    return count;
  } catch {
    return null;
  } finally {
    for (const [n, d] of saved) {
      if (d) Object.defineProperty(be, n, d);
      else delete target[n];
    }
  }
}

interface Case {
  name: string;
  label: string;
  mode: 'inference' | 'training' | null;
  batch: number | null;
  shape: Record<string, unknown>;
  call: () => Promise<void>;
  /** What one timed call covered, for the notes. */
  covers: string;
  dispose?: () => void;
}

/** Per-call seconds to the record's unit: overhead/enqueue is per op, net of the fence. */
type Adjust = (callSeconds: number) => number;

/** One figure: its record (or why it is missing) and Benchmark.js's own statistics of the timed call. */
export interface OverheadFigure {
  line: ResultLine;
  /** Benchmark.js stats of one timed call (before any per-op adjustment); null when missing. */
  stats: { meanSeconds: number; rme: number; samples: number; callsPerCycle: number } | null;
}

export async function runOverheadBench(o: OverheadBenchOptions = {}): Promise<OverheadFigure[]> {
  const be = await openBackend(o.backend ?? 'cpu');
  if (o.threads !== undefined) be.setThreads?.(o.threads);
  const threads = be.threads?.() ?? null;
  const host: HostInfo = describeBackendHost(be);
  const bjs = { maxTime: o.maxTime ?? 1, minSamples: o.minSamples ?? 5, minTime: o.minTime };
  const warmup = o.warmup ?? 5;
  const opsPerCall = o.opsPerCall ?? 1000;
  const out: OverheadFigure[] = [];
  const emit = (r: ResultLine, stats: OverheadFigure['stats'] = null) => {
    out.push({ line: r, stats });
    if (o.out) appendRecord(o.out, r);
    o.onRecord?.(r);
  };
  const base = { imagerate: imagerateInfo(), host, backend: be.name, kind: 'kernel' as const, precision: 'fp32' as const, data: 'synthetic', loading: 'compute' as const, framework: null };

  const record = async (c: Case, adjust: Adjust | null, extra: (b: Benchmark) => string): Promise<BenchRecord | null> => {
    try {
      for (let i = 0; i < warmup; i++) await c.call();
      const b = await measure(c.name, c.call, bjs);
      const sample = b.stats.sample.map((s) => (adjust ? adjust(s) : s));
      const r: BenchRecord = {
        ...base, date: new Date().toISOString(), name: c.name, shape: c.shape, mode: c.mode, batch: c.batch, threads,
        warmup, iters: b.stats.sample.length * b.count, timing: timingFromSeconds(sample, 'wall-clock'),
        peakGflops: null, pctOfPeak: null, suite: 'overhead', label: c.label,
        notes: `Benchmark.js ${Benchmark.version} (deferred): ${b.stats.sample.length} sampled cycles of ~${b.count} calls (each cycle >= minTime ${cycleMinTime(b)} s, ` +
          `maxTime ${bjs.maxTime} s, calibration cycles not sampled); mean ${(b.stats.mean * 1e6).toFixed(2)} us per call +- ${b.stats.rme.toFixed(1)} % (rme); ` +
          `median/p10/p90 over the cycles' per-call means; host wall clock (process.hrtime); one call = ${c.covers}${extra(b)}`,
      };
      emit(r, { meanSeconds: b.stats.mean, rme: b.stats.rme, samples: b.stats.sample.length, callsPerCycle: b.count });
      return r;
    } catch (e) {
      const m: MissingRecord = {
        kind: 'missing', imagerate: base.imagerate, date: new Date().toISOString(), for: 'kernel', name: c.name, mode: c.mode, batch: c.batch,
        precision: 'fp32', data: 'synthetic', loading: 'compute', backend: be.name, framework: null, reason: (e as Error).message ?? String(e), host,
      };
      emit(m);
      return null;
    } finally {
      c.dispose?.();
    }
  };

  // (1) The empty fence.
  const fence = await record({
    name: 'overhead/fence', label: 'await sync(), nothing queued', mode: null, batch: null, shape: { queued: 0 },
    call: () => be.sync(), covers: 'await be.sync() with an idle stream',
  }, null, () => '');

  // (2) Enqueueing one tiny op, net of the fence.
  const buf = be.alloc(16);
  const fenceSeconds = fence ? fence.timing.minMs / 1e3 : 0;
  await record({
    name: 'overhead/enqueue', label: `fill(1) enqueue, per op (${opsPerCall} per sync)`, mode: null, batch: null,
    shape: { op: 'fill', elements: 1, opsPerCall },
    call: async () => {
      for (let i = 0; i < opsPerCall; i++) be.fill(1, 0, buf);
      await be.sync();
    },
    covers: `${opsPerCall} x be.fill(1, 0, buf) then await be.sync(); figure per op = ` +
      `${fence ? `(call - fence ${(fenceSeconds * 1e6).toFixed(2)} us, its fastest cycle)` : 'call (the fence could not be measured, so it is not subtracted)'} / ${opsPerCall}, ` +
      'which includes the op running on the device (one element)',
    dispose: () => be.free(buf),
  }, (s) => (s - fenceSeconds) / opsPerCall, (b) => `; raw call mean ${(b.stats.mean * 1e6).toFixed(2)} us for ${opsPerCall} ops + 1 sync`);

  // (3) LeNet-5 at batch 1: autograd + dispatch.
  const spec = getModelSpec('lenet5');
  const [c, h, w] = spec.input;
  const rng = new Rng(1, 'bench-overhead');
  const modes: ('inference' | 'training')[] = o.training === false ? ['inference'] : ['inference', 'training'];
  for (const mode of modes) {
    let net: ReturnType<typeof spec.build> | null = null, opt: Sgd | null = null, x: Tensor | null = null, y: Tensor | null = null;
    const dispose = () => { opt?.dispose(); net?.dispose(); x?.dispose(); y?.dispose(); };
    let step: () => void = () => {};
    let calls: { ops: number; allocs: number } | null = null;
    try {
      net = spec.build(be, 1);
      x = Tensor.fromArray(be, [1, c, h, w], new Float32Array(c * h * w).map(() => rng.normal()));
      y = Tensor.fromArray(be, [1], Int32Array.from([rng.int(spec.numClasses)]));
      const n = net, xs = x, ys = y;
      if (mode === 'inference') {
        n.eval();
        step = () => noGrad(() => tidy(() => { n.forward(xs); }));
      } else {
        const sgd = opt = new Sgd(n.parameters(), { momentum: 0.9, weightDecay: 5e-4 });
        step = () => tidy(() => {
          backward(softmaxCrossEntropy(n.forward(xs), ys).loss);
          noGrad(() => sgd.step(0.01));
          sgd.zeroGrad();
        });
      }
      step();
      await be.sync();
      calls = countBackendCalls(be, step);
      await be.sync();
    } catch (e) {
      dispose();
      emit({
        kind: 'missing', imagerate: base.imagerate, date: new Date().toISOString(), for: 'kernel', name: `overhead/lenet5-${mode === 'inference' ? 'forward' : 'train-step'}`,
        mode, batch: 1, precision: 'fp32', data: 'synthetic', loading: 'compute', backend: be.name, framework: null, reason: (e as Error).message ?? String(e), host,
      });
      continue;
    }
    await record({
      name: `overhead/lenet5-${mode === 'inference' ? 'forward' : 'train-step'}`,
      label: mode === 'inference' ? 'lenet5 forward, batch 1 (noGrad + tidy)' : 'lenet5 training step, batch 1',
      mode, batch: 1,
      shape: { model: 'lenet5', input: [1, c, h, w], ...(calls ? { backendOps: calls.ops, allocs: calls.allocs } : {}) },
      call: async () => {
        step();
        await be.sync();
      },
      covers: mode === 'inference'
        ? 'noGrad(tidy(net.forward(x))) in eval mode, then await be.sync()'
        : 'tidy(backward(softmaxCrossEntropy(net.forward(x), y)); noGrad(sgd.step); sgd.zeroGrad()), SGD momentum 0.9, then await be.sync()',
      dispose,
    }, null, () => (calls ? `; ${calls.ops} backend op calls and ${calls.allocs} allocations per iteration` : ''));
  }
  return out;
}

/** Plain-text table of the figures (microseconds). */
export function formatOverheadTable(figures: OverheadFigure[]): string {
  const us = (ms: number) => (ms * 1e3).toFixed(2);
  const head = ['backend', 'figure', 'what', 'median us', 'p10-p90 us', 'call mean (Benchmark.js)', 'cycles x ~calls'];
  const rows = figures.map(({ line: r, stats }) => {
    if (r.kind === 'missing') return [r.backend, r.name, `not measured: ${r.reason.split('\n')[0]}`, '', '', '', ''];
    return [
      r.backend, r.name, r.label ?? '', us(r.timing.medianMs) + (r.timing.noisy ? '*' : ''), `${us(r.timing.p10Ms)}-${us(r.timing.p90Ms)}`,
      stats ? `${(stats.meanSeconds * 1e6).toFixed(2)} us +- ${stats.rme.toFixed(1)} %` : '', stats ? `${stats.samples} x ${stats.callsPerCycle}` : '',
    ];
  });
  const widths = head.map((hd, i) => Math.max(hd.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [
    line(head), widths.map((wd) => '-'.repeat(wd)).join('  '), ...rows.map(line), '',
    'host wall clock, every call synced; median and p10-p90 over Benchmark.js cycles (each the mean of many calls); * = noisy (p10-p90 > 10 % of median).',
    'call mean: Benchmark.js mean +- relative margin of error of one timed call (for overhead/enqueue, all its ops and the sync, before the fence is subtracted).',
  ].join('\n');
}
