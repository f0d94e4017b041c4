// Glue for kernels/wgsl/batchnorm.wgsl and lrn.wgsl: batch norm (training forward: statistics
// then apply; evaluation forward: per-channel scale then apply; backward: reductions then dx) and cross-channel LRN. The
// argument checks and their messages follow native/cpu_ops_norm.cc, including which outputs
// may alias an input (y = x and dx = dy are allowed; the runtime routes those through a
// temporary) and which must be buffers of their own.
import type { OpImpls } from './index.js';
import { params } from '../runtime.js';
import { F, dim, fail, finite, fitsU32, index, outputsDistinct } from './args.js';

const BN = 'batchnorm.wgsl';
const LRN = 'lrn.wgsl';
const WG = 256;

function nchw(op: string, outer: number, ch: number, inner: number): number {
  dim(op, 'outer', outer); dim(op, 'ch', ch); dim(op, 'inner', inner);
  return fitsU32(op, 'outer*ch*inner', outer * ch * inner);
}

function epsArg(op: string, eps: number): number {
  finite(op, 'eps', eps);
  if (eps < 0) fail(op, `eps must be >= 0, got ${eps}`);
  return eps;
}

function bnParams(outer: number, ch: number, inner: number, eps = 0, momentum = 0) {
  const m = outer * inner;
  return params().u(outer).u(ch).u(inner).u(outer * ch * inner).u(Math.floor(WG / inner)).u(WG % inner)
    .f(eps).f(momentum).f(m > 1 ? m / (m - 1) : NaN);
}

function lrnParams(op: string, n: number, c: number, hw: number, radius: number, bias: number, alpha: number, beta: number) {
  dim(op, 'n', n); dim(op, 'c', c); dim(op, 'hw', hw);
  index(op, 'radius', radius);
  if (radius > 0x7fffffff) fail(op, `radius is too large: ${radius}`);
  finite(op, 'bias', bias); finite(op, 'alpha', alpha); finite(op, 'beta', beta);
  const total = fitsU32(op, 'n*c*hw', n * c * hw);
  const bf = Math.fround(beta);
  const kind = bf === 0.5 ? 0 : bf === 0.75 ? 1 : bf === 1 ? 2 : 3;
  const coef = 2 * Math.fround(alpha) * bf;
  return { total, p: params().u(total).u(c).u(hw).u(Math.min(radius, c)).f(bias).f(alpha).f(beta).u(kind).f(coef) };
}

export const normOps: Partial<OpImpls> = {
  batchnorm2dFwdTrain(d, outer, ch, inner, eps, momentum, x, gamma, beta, y, saveMean, saveInvstd, runningMean, runningVar) {
    const op = 'batchnorm2dFwdTrain';
    const n = nchw(op, outer, ch, inner);
    epsArg(op, eps);
    finite(op, 'momentum', momentum);
    if (momentum < 0 || momentum > 1) fail(op, `momentum must be in [0, 1], got ${momentum}`);
    if (outer * inner < 2) {
      fail(op, `expected more than 1 value per channel when training (outer * inner = ${outer * inner}): the batch variance is undefined`);
    }
    d.need(op, 'x', x, n * F); d.need(op, 'gamma', gamma, ch * F); d.need(op, 'beta', beta, ch * F);
    d.need(op, 'y', y, n * F); d.need(op, 'saveMean', saveMean, ch * F); d.need(op, 'saveInvstd', saveInvstd, ch * F);
    d.need(op, 'runningMean', runningMean, ch * F); d.need(op, 'runningVar', runningVar, ch * F);
    outputsDistinct(op, [[y, 'y'], [saveMean, 'saveMean'], [saveInvstd, 'saveInvstd'], [runningMean, 'runningMean'], [runningVar, 'runningVar']],
      [[gamma, 'gamma'], [beta, 'beta']]);
    outputsDistinct(op, [[saveMean, 'saveMean'], [saveInvstd, 'saveInvstd'], [runningMean, 'runningMean'], [runningVar, 'runningVar']], [[x, 'x']]);
    const p = bnParams(outer, ch, inner, eps, momentum);
    const stats = d.alloc(ch * 4 * F);
    d.dispatch(op, { file: BN, entry: 'bn_train_stats' }, p, [x, gamma, beta], [saveMean, saveInvstd, runningMean, runningVar, stats], d.grid(ch * WG, WG));
    d.dispatch(op, { file: BN, entry: 'bn_train_apply' }, p, [x, stats], [y], d.grid(n, WG));
    d.free(stats);
  },
  batchnorm2dFwdEval(d, outer, ch, inner, eps, x, gamma, beta, runningMean, runningVar, y) {
    const op = 'batchnorm2dFwdEval';
    const n = nchw(op, outer, ch, inner);
    epsArg(op, eps);
    d.need(op, 'x', x, n * F); d.need(op, 'gamma', gamma, ch * F); d.need(op, 'beta', beta, ch * F);
    d.need(op, 'runningMean', runningMean, ch * F); d.need(op, 'runningVar', runningVar, ch * F); d.need(op, 'y', y, n * F);
    outputsDistinct(op, [[y, 'y']], [[gamma, 'gamma'], [beta, 'beta'], [runningMean, 'runningMean'], [runningVar, 'runningVar']]);
    const p = bnParams(outer, ch, inner, eps);
    const stats = d.alloc(ch * 4 * F);
    d.dispatch(op, { file: BN, entry: 'bn_eval_stats' }, p, [gamma, beta, runningMean, runningVar], [stats], d.grid(ch, WG));
    d.dispatch(op, { file: BN, entry: 'bn_train_apply' }, p, [x, stats], [y], d.grid(n, WG));
    d.free(stats);
  },
  batchnorm2dBwd(d, outer, ch, inner, x, dy, gamma, saveMean, saveInvstd, dx, dgamma, dbeta) {
    const op = 'batchnorm2dBwd';
    const n = nchw(op, outer, ch, inner);
    d.need(op, 'x', x, n * F); d.need(op, 'dy', dy, n * F); d.need(op, 'gamma', gamma, ch * F);
    d.need(op, 'saveMean', saveMean, ch * F); d.need(op, 'saveInvstd', saveInvstd, ch * F);
    if (dx) d.need(op, 'dx', dx, n * F);
    d.need(op, 'dgamma', dgamma, ch * F); d.need(op, 'dbeta', dbeta, ch * F);
    outputsDistinct(op, [[dx, 'dx']], [[gamma, 'gamma'], [saveMean, 'saveMean'], [saveInvstd, 'saveInvstd']]);
    outputsDistinct(op, [[dgamma, 'dgamma'], [dbeta, 'dbeta']],
      [[x, 'x'], [dy, 'dy'], [gamma, 'gamma'], [saveMean, 'saveMean'], [saveInvstd, 'saveInvstd'], [dx, 'dx']]);
    const p = bnParams(outer, ch, inner);
    const coef = d.alloc(ch * 4 * F);
    d.dispatch(op, { file: BN, entry: 'bn_bwd_reduce' }, p, [x, dy, gamma, saveMean, saveInvstd], [dgamma, dbeta, coef], d.grid(ch * WG, WG));
    if (dx) d.dispatch(op, { file: BN, entry: 'bn_bwd_dx' }, p, [x, dy, saveMean, coef], [dx], d.grid(n, WG));
    d.free(coef);
  },
  lrnFwd(d, n, c, hw, radius, bias, alpha, beta, x, y, scale) {
    const op = 'lrnFwd';
    const { total, p } = lrnParams(op, n, c, hw, radius, bias, alpha, beta);
    d.need(op, 'x', x, total * F); d.need(op, 'y', y, total * F); d.need(op, 'scale', scale, total * F);
    outputsDistinct(op, [[y, 'y'], [scale, 'scale']], [[x, 'x']]);
    d.dispatch(op, { file: LRN, entry: 'lrn_fwd' }, p, [x], [y, scale], d.grid(total, WG));
  },
  lrnBwd(d, n, c, hw, radius, bias, alpha, beta, x, y, scale, dy, dx) {
    const op = 'lrnBwd';
    const { total, p } = lrnParams(op, n, c, hw, radius, bias, alpha, beta);
    d.need(op, 'x', x, total * F); d.need(op, 'y', y, total * F); d.need(op, 'scale', scale, total * F);
    d.need(op, 'dy', dy, total * F); d.need(op, 'dx', dx, total * F);
    outputsDistinct(op, [[dx, 'dx']], [[x, 'x'], [y, 'y'], [scale, 'scale'], [dy, 'dy']]);
    d.dispatch(op, { file: LRN, entry: 'lrn_bwd' }, p, [x, y, scale, dy], [dx], d.grid(total, WG));
  },
};
