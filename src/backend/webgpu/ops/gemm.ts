// Glue for kernels/wgsl/gemm.wgsl: SGEMM with the contract of gemm_f32 (kernels/cpu/kernels.h).
// Picks the transpose flags, the vec4 loaders where strides and sizes allow them, and the block
// tile by shape class (gemm.wgsl's header has the measurements behind it). A problem whose
// buffers are too large to bind whole is split into pieces bound as views (gemmSplit).
import type { BufferHandle, GemmParams } from '../../backend.js';
import type { OpImpls } from './index.js';
import { Binding, Dispatcher, params } from '../runtime.js';
import { viewOf } from './chunk.js';

const F = 4;

/** Block tile defines of gemm_tile.wgsl. */
export interface GemmTile { BM: number; BN: number; BK: number; TM: number; TN: number }

/** Block tiles by shape class (gemm.wgsl's header has the measurements). */
export const GEMM_TILES = {
  small: { BM: 64, BN: 64, BK: 16, TM: 8, TN: 8 },    // 64 threads, 8 KiB of workgroup memory
  large: { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 },  // 256 threads, 16 KiB
} satisfies Record<string, GemmTile>;

/** The 128 x 128 block once both sides fill it, 64 x 64 below (less padding, more workgroups). */
export function gemmTile(m: number, n: number): GemmTile {
  return m >= 128 && n >= 128 ? GEMM_TILES.large : GEMM_TILES.small;
}

/** Elements a row-major operand of `rows` x `cols` with row stride `ld` spans. */
export function spanOf(rows: number, cols: number, ld: number): number {
  return rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
}

/** A GEMM problem or a piece of one: sizes, the element offsets of A[0,0], B[0,0], C[0,0], beta. */
interface Piece { m: number; n: number; k: number; aOff: number; bOff: number; cOff: number; beta: number }
type Dim = 'm' | 'n' | 'k';

/** One operand of a piece: its buffer, stored shape (rows x cols, row stride ld) and offset. */
interface Operand { buf: BufferHandle; rowDim: Dim; colDim: Dim; rows: number; cols: number; ld: number; off: number }

function operands(g: GemmParams, q: Piece, a: BufferHandle, b: BufferHandle, c: BufferHandle): Operand[] {
  return [
    g.transA ? { buf: a, rowDim: 'k', colDim: 'm', rows: q.k, cols: q.m, ld: g.lda, off: q.aOff }
      : { buf: a, rowDim: 'm', colDim: 'k', rows: q.m, cols: q.k, ld: g.lda, off: q.aOff },
    g.transB ? { buf: b, rowDim: 'n', colDim: 'k', rows: q.n, cols: q.k, ld: g.ldb, off: q.bOff }
      : { buf: b, rowDim: 'k', colDim: 'n', rows: q.k, cols: q.n, ld: g.ldb, off: q.bOff },
    { buf: c, rowDim: 'm', colDim: 'n', rows: q.m, cols: q.n, ld: g.ldc, off: q.cOff },
  ];
}

/**
 * Elements a view of the operand binds at worst: its span, plus up to viewAlign - 1 before it
 * (the view starts at the span's start rounded down to the alignment) and 3 after it (vec4).
 */
function worstView(d: Dispatcher, o: Operand): number {
  return spanOf(o.rows, o.cols, o.ld) + d.viewAlign - 1 + 3;
}

const fits = (d: Dispatcher, o: Operand): boolean => d.bindable(o.buf) || worstView(d, o) * F <= d.maxBinding;

/** Binds an operand whole when it can be, else as a view of its span: the binding and the offset of [0,0] in it. */
function bindOperand(d: Dispatcher, o: Operand): { bind: Binding; off: number } {
  if (d.bindable(o.buf)) return { bind: o.buf, off: o.off };
  const { view, skip } = viewOf(d, 'gemm', o.buf, o.off, Math.max(1, spanOf(o.rows, o.cols, o.ld)), 4);
  return { bind: view, off: skip };
}

/** One dispatch of gemm.wgsl for a piece. */
function gemmPiece(d: Dispatcher, g: GemmParams, q: Piece, a: BufferHandle, b: BufferHandle, c: BufferHandle, tile?: GemmTile): void {
  const [oa, ob, oc] = operands(g, q, a, b, c).map((o) => bindOperand(d, o));
  const { m, n, k } = q;
  const { lda, ldb, ldc, transA, transB } = g;
  const vecA = lda % 4 === 0 && (transA ? m : k) % 4 === 0 && oa.off % 4 === 0;
  const vecB = ldb % 4 === 0 && (transB ? k : n) % 4 === 0 && ob.off % 4 === 0;
  tile ??= gemmTile(m, n);
  const tilesN = Math.ceil(n / tile.BN);
  const tiles = tilesN * Math.ceil(m / tile.BM);
  const defines = { ...tile, TRANS_A: transA, TRANS_B: transB, VEC_A: vecA, VEC_B: vecB };
  const p = params().u(m).u(n).u(k).u(lda).u(ldb).u(ldc).f(g.alpha).f(q.beta).u(tilesN).u(tiles).u(oa.off).u(ob.off).u(oc.off);
  d.dispatch('gemm', { file: 'gemm.wgsl', entry: 'gemm', defines }, p, [oa.bind, ob.bind], [oc.bind], d.grid(tiles, 1));
}

/** The piece's rows [d0, d0 + s) along `dim`; a split along k keeps beta for the first part only (C accumulates the rest). */
function part(g: GemmParams, q: Piece, dim: Dim, d0: number, s: number): Piece {
  const r = { ...q, [dim]: s };
  if (dim === 'm') {
    r.aOff += g.transA ? d0 : d0 * g.lda;
    r.cOff += d0 * g.ldc;
  } else if (dim === 'n') {
    r.bOff += g.transB ? d0 * g.ldb : d0;
    r.cOff += d0;
  } else {
    r.aOff += g.transA ? d0 * g.lda : d0;
    r.bOff += g.transB ? d0 : d0 * g.ldb;
    if (d0 > 0) r.beta = 1;
  }
  return r;
}

/**
 * Runs a piece, split so that every operand fits a storage binding. An operand too large to
 * bind whole is bound as a view of its span (rows - 1) * ld + cols, which shrinks in
 * proportion when the piece is cut along the operand's row dimension (A: m, or k when
 * transposed; B: k, or n when transposed; C: m), and also along its column dimension when it
 * has one row. Each level cuts along one dimension into the longest parts that make the views
 * along it fit (a multiple of 128 where possible, the large tile, else of 4 so vec4 offsets
 * stay aligned), preferring a cut after which everything fits, and m or n over k (a cut along
 * k sums C in parts with beta = 1). Where no cut helps (a view whose rows are each longer
 * than a binding), it first cuts the rows short along the operand's column dimension.
 * Operands that fit stay fitting in smaller pieces, and every level or two makes one more fit.
 */
function gemmSplit(d: Dispatcher, g: GemmParams, q: Piece, a: BufferHandle, b: BufferHandle, c: BufferHandle, tile?: GemmTile): void {
  const ops = operands(g, q, a, b, c);
  const misfits = ops.filter((o) => !fits(d, o));
  if (misfits.length === 0) {
    gemmPiece(d, g, q, a, b, c, tile);
    return;
  }
  const limit = d.maxBinding / F;
  const plans: Array<{ dim: Dim; s: number; all: boolean }> = [];
  for (const dim of ['m', 'n', 'k'] as const) {
    if (q[dim] < 2) continue;
    // The longest s that makes each view along `dim` fit: span (s - 1) * ld + cols where `dim`
    // is the operand's rows, (rows - 1) * ld + s where it is its columns; a view that no s
    // makes fit is left to a later cut.
    let s = q[dim] - 1;
    let helps = false;
    for (const o of ops) {
      if (d.bindable(o.buf)) continue;
      const room = limit - (d.viewAlign + 2);
      const most = o.rowDim === dim ? Math.floor((room - o.cols) / o.ld) + 1 : o.colDim === dim ? room - (o.rows - 1) * o.ld : 0;
      if (most < 1) continue;
      s = Math.min(s, most);
      if (misfits.includes(o)) helps = true;
    }
    if (!helps || s < 1) continue;
    s = s >= 128 ? s - (s % 128) : s >= 4 ? s - (s % 4) : s;
    const all = operands(g, part(g, q, dim, 0, s), a, b, c).every((o) => fits(d, o));
    plans.push({ dim, s, all });
  }
  let plan = plans.find((p) => p.all && p.dim !== 'k') ?? plans.find((p) => p.all) ?? plans.find((p) => p.dim !== 'k') ?? plans[0];
  if (!plan) {
    // Every misfit has rows longer than a binding and a column dimension no other view's cut
    // shortens: cut along that column dimension to rows that fit, so the next level can cut
    // along its rows.
    const o = misfits.find((x) => q[x.colDim] >= 2 && x.cols + d.viewAlign + 2 > limit);
    const s = limit - (d.viewAlign + 2);
    if (o && s >= 1) plan = { dim: o.colDim, s: s >= 128 ? s - (s % 128) : s >= 4 ? s - (s % 4) : s, all: false };
  }
  if (!plan) {
    const o = misfits[0];
    throw new Error(`gemm: cannot split ${q.m}x${q.n}x${q.k} (transA ${g.transA}, transB ${g.transB}) so that an operand of ` +
      `${o.rows}x${o.cols} with row stride ${o.ld} fits a storage binding of ${d.maxBinding} bytes`);
  }
  for (let d0 = 0; d0 < q[plan.dim]; d0 += plan.s) {
    gemmSplit(d, g, part(g, q, plan.dim, d0, Math.min(plan.s, q[plan.dim] - d0)), a, b, c, tile);
  }
}

/** Enqueues C = alpha * op(A) op(B) + beta * C; `tile` overrides the block shape (benchmarks). */
export function gemmDispatch(d: Dispatcher, g: GemmParams, a: BufferHandle, b: BufferHandle, c: BufferHandle,
  tile?: GemmTile): void {
  const { m, n, k, lda, ldb, ldc, transA, transB } = g;
  if (lda < (transA ? m : k) || ldb < (transB ? k : n) || ldc < n) {
    throw new RangeError(`gemm: leading dimension too small (lda ${lda}, ldb ${ldb}, ldc ${ldc} for ${m}x${n}x${k}, transA ${transA}, transB ${transB})`);
  }
  d.need('gemm', 'A', a, spanOf(transA ? k : m, transA ? m : k, lda) * F);
  d.need('gemm', 'B', b, spanOf(transB ? n : k, transB ? k : n, ldb) * F);
  d.need('gemm', 'C', c, spanOf(m, n, ldc) * F);
  if (m === 0 || n === 0) return;
  gemmSplit(d, g, { m, n, k, aOff: 0, bOff: 0, cOff: 0, beta: g.beta }, a, b, c, tile);
}

export const gemmOps: Partial<OpImpls> = {
  gemm(d, p, a, b, c) { gemmDispatch(d, p, a, b, c); },
};
