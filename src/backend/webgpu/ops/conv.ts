// Glue for kernels/wgsl/conv2d_{fwd,bwd_data,bwd_filter}.wgsl: conv2d forward, backward-data
// and backward-filter (+ bias gradient) with the contract of kernels/cpu/kernels.h.
//
// Algorithm and tile by shape class, from the lavapipe measurements in conv2d_fwd.wgsl's header:
//   - forward: the direct kernel when K <= 16 (few output channels leave an implicit-GEMM block
//     mostly empty), else the implicit GEMM;
//   - backward-data: the same rule on C;
//   - backward-filter: always the implicit GEMM, its long reduction (N*P*Q) split over
//     workgroups (split-K) into a pooled scratch buffer whose splits are then summed in a fixed
//     order; db is a separate per-channel reduction.
// The implicit-GEMM block follows the GEMM's M: 8 x 32 (backward-filter only) up to 8 rows,
// 16 x 64 up to 16, 64 x 64 up to 64, 128 x 128 above.
import type { BufferHandle, Conv2dParams } from '../../backend.js';
import type { OpImpls } from './index.js';
import { Dispatcher, Params, params } from '../runtime.js';
import type { GemmTile } from './gemm.js';

const F = 4;

export const CONV_TILES = {
  skinny: { BM: 16, BN: 64, BK: 16, TM: 4, TN: 4 },
  tiny: { BM: 8, BN: 32, BK: 16, TM: 4, TN: 4 },  // backward-filter only (16 threads: NT % BN != 0)
  small: { BM: 64, BN: 64, BK: 16, TM: 8, TN: 8 },
  large: { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 },
} satisfies Record<string, GemmTile>;

/** The implicit-GEMM tile for M output rows. */
export function convTile(gm: number): GemmTile {
  return gm <= 16 ? CONV_TILES.skinny : gm <= 64 ? CONV_TILES.small : CONV_TILES.large;
}

/** Forward algorithm: the direct kernel for few output channels (LeNet's 6 and 16), else implicit GEMM. */
export function convFwdAlgo(cp: Conv2dParams): 'direct' | 'gemm' {
  return cp.k <= 16 ? 'direct' : 'gemm';
}

/** Backward-data algorithm: the direct kernel for few input channels (LeNet's 1 and 6), else implicit GEMM. */
export function convBwdDataAlgo(cp: Conv2dParams): 'direct' | 'gemm' {
  return cp.c <= 16 ? 'direct' : 'gemm';
}

/** Backward-filter tile: as convTile, plus an 8 x 32 block for up to 8 output channels. */
export function convFilterTile(gm: number): GemmTile {
  return gm <= 8 ? CONV_TILES.tiny : convTile(gm);
}

/** Splits of the backward-filter reduction: enough workgroups to fill a GPU, at least MIN_CHUNK each. */
const SPLIT_TARGET_WORKGROUPS = 128;
const MIN_CHUNK = 512;
const MAX_PARTIAL_BYTES = 64 * 2 ** 20;

function checkConv(d: Dispatcher, op: string, cp: Conv2dParams, bufs: Array<[string, BufferHandle | null, number]>): void {
  for (const [name, buf, n] of bufs) if (buf) d.need(op, name, buf, n * F);
  for (const [k, v] of Object.entries(cp)) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${op}: ${k} = ${v} is not a non-negative integer`);
  }
  if (cp.strideH < 1 || cp.strideW < 1 || cp.dilH < 1 || cp.dilW < 1) throw new RangeError(`${op}: stride and dilation must be >= 1`);
}

function sizes(cp: Conv2dParams) {
  return { x: cp.n * cp.c * cp.h * cp.w, w: cp.k * cp.c * cp.r * cp.s, y: cp.n * cp.k * cp.p * cp.q };
}

/** Params of conv2d_common.wgsl for a GEMM of gm x gn over gk on `tile`. */
function convParams(cp: Conv2dParams, gm: number, gn: number, gk: number, tile: GemmTile, kChunk = 0): { p: Params; tiles: number } {
  const tilesN = Math.ceil(gn / tile.BN);
  const tiles = tilesN * Math.ceil(gm / tile.BM);
  const p = params().u(cp.n).u(cp.c).u(cp.h).u(cp.w).u(cp.k).u(cp.r).u(cp.s)
    .u(cp.strideH).u(cp.strideW).u(cp.padH).u(cp.padW).u(cp.dilH).u(cp.dilW).u(cp.p).u(cp.q)
    .u(gm).u(gn).u(gk).u(tilesN).u(tiles).u(kChunk);
  return { p, tiles };
}

export interface ConvOptions { algo?: 'direct' | 'gemm'; tile?: GemmTile; kb?: number }

/** Channels per thread of a direct kernel: the largest of 8, 6, 4, 2, 1 that wastes fewest. */
function directKb(k: number): number {
  let best = 8;
  for (const kb of [6, 4, 2, 1]) if (Math.ceil(k / kb) * kb - k < Math.ceil(k / best) * best - k) best = kb;
  return best;
}

export function conv2dFwdDispatch(d: Dispatcher, cp: Conv2dParams, x: BufferHandle, w: BufferHandle, bias: BufferHandle | null,
  y: BufferHandle, opt: ConvOptions = {}): void {
  const n = sizes(cp);
  checkConv(d, 'conv2dFwd', cp, [['x', x, n.x], ['w', w, n.w], ['bias', bias, cp.k], ['y', y, n.y]]);
  if (n.y === 0) return;
  const algo = opt.algo ?? convFwdAlgo(cp);
  if (algo === 'direct') {
    const kb = opt.kb ?? directKb(cp.k);
    const { p } = convParams(cp, 0, 0, 0, CONV_TILES.small);
    const items = cp.n * Math.ceil(cp.k / kb) * cp.p * cp.q;
    d.dispatch('conv2dFwd', { file: 'conv2d_fwd.wgsl', entry: 'conv2d_fwd_direct', defines: { HAS_BIAS: bias !== null, KB: kb } },
      p, [x, w, bias ?? w], [y], d.grid(items, 64));
    return;
  }
  const gm = cp.k, gn = cp.n * cp.p * cp.q, gk = cp.c * cp.r * cp.s;
  const tile = opt.tile ?? convTile(gm);
  const { p, tiles } = convParams(cp, gm, gn, gk, tile);
  d.dispatch('conv2dFwd', { file: 'conv2d_fwd.wgsl', entry: 'conv2d_fwd_gemm', defines: { ...tile, HAS_BIAS: bias !== null } },
    p, [x, w, bias ?? w], [y], d.grid(tiles, 1));
}

export function conv2dBwdDataDispatch(d: Dispatcher, cp: Conv2dParams, dy: BufferHandle, w: BufferHandle, dx: BufferHandle,
  opt: ConvOptions = {}): void {
  const n = sizes(cp);
  checkConv(d, 'conv2dBwdData', cp, [['dy', dy, n.y], ['w', w, n.w], ['dx', dx, n.x]]);
  if (n.x === 0) return;
  if ((opt.algo ?? convBwdDataAlgo(cp)) === 'direct') {
    const cb = opt.kb ?? directKb(cp.c);
    const { p } = convParams(cp, 0, 0, 0, CONV_TILES.small);
    const items = cp.n * Math.ceil(cp.c / cb) * cp.h * cp.w;
    d.dispatch('conv2dBwdData', { file: 'conv2d_bwd_data.wgsl', entry: 'conv2d_bwd_data_direct', defines: { CB: cb } },
      p, [dy, w], [dx], d.grid(items, 64));
    return;
  }
  const gm = cp.c, gn = cp.n * cp.h * cp.w, gk = cp.k * cp.r * cp.s;
  const tile = opt.tile ?? convTile(gm);
  const { p, tiles } = convParams(cp, gm, gn, gk, tile);
  d.dispatch('conv2dBwdData', { file: 'conv2d_bwd_data.wgsl', entry: 'conv2d_bwd_data_gemm', defines: { ...tile, UNIT_STRIDE: cp.strideH === 1 && cp.strideW === 1 } },
    p, [dy, w], [dx], d.grid(tiles, 1));
}

export function conv2dBwdFilterDispatch(d: Dispatcher, cp: Conv2dParams, x: BufferHandle, dy: BufferHandle, dw: BufferHandle,
  db: BufferHandle | null, opt: ConvOptions = {}): void {
  const n = sizes(cp);
  checkConv(d, 'conv2dBwdFilter', cp, [['x', x, n.x], ['dy', dy, n.y], ['dw', dw, n.w], ['db', db, cp.k]]);
  const file = 'conv2d_bwd_filter.wgsl';
  if (db && cp.k > 0) {
    if (cp.k > 65535) throw new RangeError(`conv2dBwdFilter: ${cp.k} output channels exceed one dispatch dimension`);
    d.dispatch('conv2dBwdFilter', { file, entry: 'conv2d_bias_grad' }, convParams(cp, 0, 0, 0, CONV_TILES.small).p, [dy], [db], [cp.k]);
  }
  if (n.w === 0) return;
  const gm = cp.k, gn = cp.c * cp.r * cp.s, gk = cp.n * cp.p * cp.q;
  const tile = opt.tile ?? convFilterTile(gm);
  const tiles = Math.ceil(gn / tile.BN) * Math.ceil(gm / tile.BM);
  let splits = Math.max(1, Math.min(Math.ceil(SPLIT_TARGET_WORKGROUPS / tiles), Math.floor(gk / MIN_CHUNK),
    Math.floor(MAX_PARTIAL_BYTES / (n.w * F))));
  const kChunk = Math.max(tile.BK, Math.ceil(Math.ceil(gk / splits) / tile.BK) * tile.BK);
  splits = Math.max(1, Math.ceil(gk / kChunk));
  const { p } = convParams(cp, gm, gn, gk, tile, kChunk);
  const [gx, gy] = d.grid(tiles, 1);
  const kernel = { file, entry: 'conv2d_bwd_filter_gemm', defines: { ...tile } };
  if (splits === 1) {
    d.dispatch('conv2dBwdFilter', kernel, p, [x, dy], [dw], [gx, gy, 1]);
    return;
  }
  const part = d.alloc(splits * n.w * F);
  d.dispatch('conv2dBwdFilter', kernel, p, [x, dy], [part], [gx, gy, splits]);
  d.dispatch('conv2dBwdFilter', { file, entry: 'conv2d_splitk_sum' }, params().u(n.w).u(splits), [part], [dw], d.grid(n.w, 256));
  d.free(part);
}

export const convOps: Partial<OpImpls> = {
  conv2dFwd(d, cp, x, w, bias, y) { conv2dFwdDispatch(d, cp, x, w, bias, y); },
  conv2dBwdData(d, cp, dy, w, dx) { conv2dBwdDataDispatch(d, cp, dy, w, dx); },
  conv2dBwdFilter(d, cp, x, dy, dw, db) { conv2dBwdFilterDispatch(d, cp, x, dy, dw, db); },
};
