// Per-layer time of one training step (or one forward), for `imagerate bench models --profile`.
//
// Timing a layer needs the device to be idle at the layer's start and end. Module.forward and
// backward() are synchronous and only enqueue work, so layer boundaries are made synchronous
// by running the backend's stream inline: the CPU addon with IMAGERATE_CPU_SYNC=1 runs each op
// on the calling thread, so the wall clock around a call is the time of its kernels. The
// command therefore profiles in a child process started with that variable
// (profileInChild); within it, profileModel() does the work. (A GPU backend would need a
// sync between layers in the same way; none of ours profiles yet.)
//
// What is timed, per step (after warm-up steps), with performance.now():
//   forward   each module's forward. Layer modules (conv, bn, relu, pool, fc...) count whole;
//             a container (residual block, Sequential, the model) counts only its own
//             functional ops (the blocks' relu(add(...))), i.e. its time minus its children's,
//             shown as "<block> (own ops)".
//   backward  the backward function of every autograd node, charged to the module whose
//             forward created the node (found by walking back from the module's output to
//             its input); nodes of the loss are charged to 'loss'.
//   loss      softmax cross-entropy forward (its backward is under 'loss' backward).
//   update    the SGD step and zeroing the gradients.
//   other     the rest of the step: gradient accumulation and frees inside backward(), scope
//             bookkeeping. It is the step time minus every part above, so the parts add up.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Tensor } from '../tensor.js';
import { tidy } from '../autograd/scope.js';
import { backward, noGrad, type GradNode } from '../autograd/tape.js';
import { softmaxCrossEntropy } from '../ops/loss.js';
import { getBackend, openBackend } from '../backend/registry.js';
import { getModelSpec } from '../models/index.js';
import { namedModules } from '../models/flops.js';
import type { Module } from '../nn/module.js';
import { Sgd } from '../train/sgd.js';
import { Rng } from '../util/rng.js';
import { PACKAGE_ROOT } from '../util/paths.js';
import { describeBackendHost, imagerateInfo } from './host.js';
import { timingFromSeconds, type BenchRecord } from './record.js';

export interface ProfileOptions {
  model: string;
  batch: number;
  mode: 'training' | 'inference';
  backend?: string;
  threads?: number;
  warmup?: number;
  iters?: number;
}

type Pass = 'forward' | 'backward' | 'loss' | 'update' | 'data' | 'other';

/** True when the CPU addon runs ops on the calling thread (IMAGERATE_CPU_SYNC=1). */
export function inlineStream(backendName: string): boolean {
  if (backendName !== 'cpu') return false;
  const be = getBackend('cpu') as unknown as { info?: () => { stream?: string } };
  return be.info?.().stream === 'inline';
}

export async function profileModel(o: ProfileOptions): Promise<BenchRecord[]> {
  const backendName = o.backend ?? 'cpu';
  if (!inlineStream(backendName)) throw new Error('profileModel needs a synchronous stream (run with IMAGERATE_CPU_SYNC=1; see profileInChild)');
  const be = await openBackend(backendName);
  if (o.threads !== undefined) be.setThreads?.(o.threads);
  const threads = be.threads?.() ?? null;
  const spec = getModelSpec(o.model);
  const net = spec.build(be, 1);
  const [c, h, w] = spec.input;
  const rng = new Rng(1, 'bench-data');
  const x = Tensor.fromArray(be, [o.batch, c, h, w], new Float32Array(o.batch * c * h * w).map(() => rng.normal()));
  const yl = Tensor.fromArray(be, [o.batch], Int32Array.from({ length: o.batch }, () => rng.int(spec.numClasses)));
  const opt = new Sgd(net.parameters(), { momentum: 0.9, weightDecay: 5e-4 });
  const training = o.mode === 'training';
  if (!training) net.eval();

  const modules = namedModules(net);
  const describe = new Map<string, string>();
  const isContainer = new Map<string, boolean>();
  for (const [name, m] of modules) {
    const kids = (m as unknown as { children: unknown[] }).children.length;
    isContainer.set(name, kids > 0);
    describe.set(name, kids > 0 ? `${m.constructor.name} (own ops)` : m.describe());
  }
  const label = (name: string) => (name === '' ? '(model)' : name) + (isContainer.get(name) ? ' (own ops)' : '');

  let acc = new Map<string, number>(); // `${label}\u0000${pass}` -> seconds in this step
  const add = (module: string, pass: Pass, s: number) => {
    const k = `${module}\u0000${pass}`;
    acc.set(k, (acc.get(k) ?? 0) + s);
  };
  const owner = new Map<GradNode, string>();
  const stack: { childTime: number }[] = [];
  const patched: Module[] = [];
  for (const [name, m] of modules) {
    const inner = m.forward;
    m.forward = (xin: Tensor): Tensor => {
      const frame = { childTime: 0 };
      stack.push(frame);
      const t0 = performance.now();
      const y = inner.call(m, xin);
      const dt = (performance.now() - t0) / 1000;
      stack.pop();
      if (stack.length) stack[stack.length - 1].childTime += dt;
      add(label(name), 'forward', dt - frame.childTime);
      // Claim the autograd nodes this call made: walk back from y to xin. Inner modules have
      // claimed theirs already (they return first); the walk goes on through them, so that a
      // container also finds its functional ops that sit between its children (a residual
      // block's relu(bn1(...)) feeding conv2).
      const todo: Tensor[] = [y];
      const seen = new Set<GradNode>();
      while (todo.length) {
        const t = todo.pop()!;
        if (t === xin || !t.node || seen.has(t.node)) continue;
        seen.add(t.node);
        if (!owner.has(t.node)) owner.set(t.node, label(name));
        for (const i of t.node.inputs) if (i) todo.push(i);
      }
      return y;
    };
    patched.push(m);
  }
  const wrapBackward = (node: GradNode, who: string) => {
    const inner = node.backward;
    node.backward = (gy) => {
      const t0 = performance.now();
      const r = inner(gy);
      add(who, 'backward', (performance.now() - t0) / 1000);
      return r;
    };
  };

  const steps: number[] = [];
  const parts = new Map<string, number[]>();
  const warmup = o.warmup ?? 2, iters = o.iters ?? 5;
  try {
    for (let it = 0; it < warmup + iters; it++) {
      acc = new Map();
      owner.clear();
      const t0 = performance.now();
      if (training) {
        tidy(() => {
          const logits = net.forward(x);
          const tl = performance.now();
          const { loss } = softmaxCrossEntropy(logits, yl);
          add('loss', 'loss', (performance.now() - tl) / 1000);
          if (loss.node) owner.set(loss.node, 'loss');
          // Every node from the loss back to the input, charged to its module.
          const seen = new Set<GradNode>();
          const todo: Tensor[] = [loss];
          while (todo.length) {
            const t = todo.pop()!;
            if (!t.node || seen.has(t.node)) continue;
            seen.add(t.node);
            wrapBackward(t.node, owner.get(t.node) ?? 'other');
            for (const i of t.node.inputs) if (i) todo.push(i);
          }
          backward(loss);
          const tu = performance.now();
          noGrad(() => opt.step(0.01));
          opt.zeroGrad();
          add('sgd', 'update', (performance.now() - tu) / 1000);
        });
      } else {
        noGrad(() => tidy(() => { net.forward(x); }));
      }
      await be.sync();
      const step = (performance.now() - t0) / 1000;
      if (it < warmup) continue;
      steps.push(step);
      let sum = 0;
      for (const v of acc.values()) sum += v;
      add('other', 'other', Math.max(0, step - sum));
      for (const [k, v] of acc) {
        const arr = parts.get(k) ?? [];
        arr.push(v);
        parts.set(k, arr);
      }
    }
  } finally {
    for (const m of patched) Reflect.deleteProperty(m, 'forward');
    opt.dispose();
    net.dispose();
    x.dispose();
    yl.dispose();
  }

  const host = describeBackendHost(be);
  const stepTiming = timingFromSeconds(steps);
  const records: BenchRecord[] = [];
  const what = training ? 'training step (forward + backward + SGD)' : 'forward (inference, eval mode)';
  for (const [k, v] of parts) {
    const [module, pass] = k.split('\u0000') as [string, Pass];
    while (v.length < steps.length) v.push(0); // a part absent from some steps took no time there
    const timing = timingFromSeconds(v);
    const moduleName = module.replace(/ \(own ops\)$/, '').replace(/^\(model\)$/, '');
    records.push({
      imagerate: imagerateInfo(), date: new Date().toISOString(), host, backend: backendName, kind: 'layer',
      name: `${spec.name}/${module}`, shape: { input: spec.input }, mode: o.mode, batch: o.batch, precision: 'fp32', data: 'synthetic',
      loading: 'compute', threads, warmup, iters: v.length, timing, peakGflops: null, pctOfPeak: null, framework: null,
      layer: { model: spec.name, module, op: module === 'loss' ? 'softmax cross-entropy' : module === 'sgd' ? 'SGD momentum update + zero grads' : module === 'other' ? 'grad accumulation, frees, bookkeeping' : describe.get(moduleName) ?? module, pass, stepMedianMs: stepTiming.medianMs },
      notes: `per-layer time of one ${what}, batch ${o.batch}; ops run inline (IMAGERATE_CPU_SYNC=1) so each layer is timed alone; step median ${stepTiming.medianMs.toFixed(2)} ms`,
    });
  }
  return records;
}

/** Runs profileModel in a child process with the CPU stream inline; returns its records. */
export function profileInChild(o: ProfileOptions): BenchRecord[] {
  const cli = join(PACKAGE_ROOT, 'dist', 'cli.js');
  const args = [cli, 'bench', 'profile', '--model', o.model, '--batch', String(o.batch), '--mode', o.mode, '--backend', o.backend ?? 'cpu',
    '--warmup', String(o.warmup ?? 2), '--iters', String(o.iters ?? 5), ...(o.threads !== undefined ? ['--threads', String(o.threads)] : [])];
  const r = spawnSync(process.execPath, args, { env: { ...process.env, IMAGERATE_CPU_SYNC: '1' }, encoding: 'utf8', timeout: 900_000, maxBuffer: 256 << 20 });
  if (r.error) throw new Error(`profile child failed to start: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`profile child exited ${r.status}: ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as BenchRecord);
}
