// Kernel problem shapes come from running the models (src/bench/shapes.ts).
import { describe, expect, it } from 'vitest';
import { getBackend } from '../../src/backend/registry.js';
import { deepbenchProblems, kernelSuite, modelKernelProblems, problemBytes, problemFlops } from '../../src/bench/shapes.js';
import { countFlops } from '../../src/models/flops.js';
import { getModelSpec } from '../../src/models/index.js';

const be = getBackend('cpu');

describe('kernel shapes from the models', () => {
  it('lenet5 at batch 64: both convs (fwd, bwd-data, bwd-filter), both pools, three fc layers', () => {
    const ps = modelKernelProblems(be, 'lenet5', 64);
    const convs = ps.filter((p) => p.op === 'conv2dFwd');
    expect(convs.map((p) => 'conv' in p && [p.conv.n, p.conv.c, p.conv.h, p.conv.k, p.conv.r, p.conv.padH, p.conv.p])).toEqual([
      [64, 1, 28, 6, 5, 2, 28],
      [64, 6, 14, 16, 5, 0, 10],
    ]);
    expect(ps.filter((p) => p.op === 'conv2dBwdData')).toHaveLength(2);
    expect(ps.filter((p) => p.op === 'conv2dBwdFilter')).toHaveLength(2);
    expect(ps.filter((p) => p.op === 'maxpool2dFwd')).toHaveLength(2);
    expect(ps.filter((p) => p.op === 'maxpool2dBwd')).toHaveLength(2);
    const fwd = ps.filter((p) => p.op === 'gemm' && p.label.endsWith('(fwd)'));
    expect(fwd.map((p) => 'gemm' in p && [p.gemm.m, p.gemm.n, p.gemm.k, p.gemm.transB])).toEqual([[64, 120, 400, true], [64, 84, 120, true], [64, 10, 84, true]]);
    expect(ps.filter((p) => p.op === 'gemm')).toHaveLength(9);
    // Forward FLOPs of the suite = the model's forward FLOPs per image x batch.
    const spec = getModelSpec('lenet5');
    const net = spec.build(be, 1);
    const perImage = countFlops(net, be, spec.input).flops;
    net.dispose();
    const fwdFlops = ps.filter((p) => p.op === 'conv2dFwd' || (p.op === 'gemm' && p.label.endsWith('(fwd)'))).reduce((s, p) => s + problemFlops(p) * p.count, 0);
    expect(fwdFlops).toBe(64 * perImage);
  });

  it('forward-only suites have no backward kernels; repeated shapes are counted once with their multiplicity', () => {
    const ps = modelKernelProblems(be, 'resnet20', 2, { training: false });
    expect(ps.every((p) => !/Bwd/.test(p.op) && !/bwd/.test(p.label))).toBe(true);
    const convLayers = ps.filter((p) => p.op === 'conv2dFwd').reduce((s, p) => s + p.count, 0);
    expect(convLayers).toBe(21); // 19 3x3 convs + 2 projection shortcuts
    expect(ps.some((p) => p.count > 1 && /x\d+ layers/.test(p.label))).toBe(true);
    expect(ps.some((p) => p.op === 'avgpool2dFwd')).toBe(true); // global average pool
  });

  it('the cifar suite walks cifar10-tf; the DeepBench subset is cited and sized', () => {
    const s = kernelSuite(be, 'cifar');
    expect(s.source).toMatch(/cifar10-tf at batch 64/);
    expect(s.problems.some((p) => 'pool' in p && p.pool.kh === 3 && p.pool.padH === 1)).toBe(true);
    const db = deepbenchProblems();
    expect(db.filter((p) => p.op === 'gemm')).toHaveLength(6);
    expect(db.filter((p) => p.op === 'conv2dFwd')).toHaveLength(6);
    const stem = db.find((p) => 'conv' in p && p.conv.r === 7)!;
    expect('conv' in stem && [stem.conv.p, stem.conv.q]).toEqual([112, 112]);
    expect(problemBytes(stem)).toBeGreaterThan(0);
    expect(() => kernelSuite(be, 'nope')).toThrow(/valid: lenet, cifar, resnet50, deepbench/);
  });
});
