// Glue for kernels/wgsl/gemm.wgsl: SGEMM with the contract of gemm_f32 (kernels/cpu/kernels.h).
// Picks the transpose flags, the vec4 loads and stores where strides and sizes allow them, and
// the kernel variant (block, BK, per-thread tile, panel pipeline) by shape class. A problem whose
// buffers are too large to bind whole is split into pieces bound as views (gemmSplit).
//
// Variants are named BMxBN_kBK_tTMxTN_pPIPELINE (gemm.wgsl's header says what each define
// changes). GEMM_VARIANTS is the set `imagerate bench gemm --backend webgpu --variants all`
// sweeps; IMAGERATE_WEBGPU_GEMM=<name> (any valid name, not only those) replaces the variant of
// the large class, so a model can run with the sweep's winner.
import type { BufferHandle, GemmParams } from '../../backend.js';
import type { OpImpls } from './index.js';
import { Binding, Dispatcher, params } from '../runtime.js';
import { viewOf } from './chunk.js';

const F = 4;

/** Block tile defines of gemm_tile.wgsl (the implicit-GEMM convolutions, ops/conv.ts). */
export interface GemmTile { BM: number; BN: number; BK: number; TM: number; TN: number }

/**
 * Defines of gemm.wgsl: the block tile, and the panel loop: 0 load / barrier / compute /
 * barrier, 1 register prefetch of the next panel, 2 register prefetch into a second panel.
 */
export interface GemmVariant extends GemmTile { PIPELINE: 0 | 1 | 2 }

export function gemmVariantName(v: GemmVariant): string {
  return `${v.BM}x${v.BN}_k${v.BK}_t${v.TM}x${v.TN}_p${v.PIPELINE}`;
}

/** Threads per workgroup and bytes of workgroup memory of a variant. */
export function gemmVariantCost(v: GemmVariant): { threads: number; bytes: number } {
  return { threads: (v.BM / v.TM) * (v.BN / v.TN), bytes: (v.PIPELINE === 2 ? 2 : 1) * F * v.BK * (v.BM + v.BN) };
}

/** Parses a variant name; throws with the expected form and the constraints when it is not one. */
export function parseGemmVariant(name: string): GemmVariant {
  const m = /^(\d+)x(\d+)_k(\d+)_t(\d+)x(\d+)_p(\d)$/.exec(name.trim());
  const form = 'BMxBN_kBK_tTMxTN_pP, e.g. 128x128_k8_t8x8_p2';
  if (!m) throw new Error(`gemm variant '${name}' is not of the form ${form}`);
  const [BM, BN, BK, TM, TN, P] = m.slice(1).map(Number);
  const problems: string[] = [];
  if (TM !== 4 && TM !== 8) problems.push('TM must be 4 or 8');
  if (TN !== 4 && TN !== 8) problems.push('TN must be 4 or 8');
  if (BM % TM !== 0 || BN % TN !== 0) problems.push('BM and BN must be multiples of TM and TN');
  if (BK < 4 || BK % 4 !== 0) problems.push('BK must be a positive multiple of 4');
  if (BM < 4 || BN < 4 || BM % 4 !== 0 || BN % 4 !== 0) problems.push('BM and BN must be positive multiples of 4');
  if (P > 2) problems.push('the pipeline is 0, 1 or 2');
  if (problems.length) throw new Error(`gemm variant '${name}': ${problems.join('; ')}`);
  return { BM, BN, BK, TM, TN, PIPELINE: P as 0 | 1 | 2 };
}

/** Why `v` cannot run on the device of `d` (threads or workgroup memory over its limits), or null. */
export function gemmVariantMisfit(d: Pick<Dispatcher, 'limits'>, v: GemmVariant): string | null {
  const { threads, bytes } = gemmVariantCost(v);
  const maxThreads = d.limits.maxComputeInvocationsPerWorkgroup, maxBytes = d.limits.maxComputeWorkgroupStorageSize;
  if (threads > maxThreads) return `${threads} threads > maxComputeInvocationsPerWorkgroup ${maxThreads}`;
  if (threads > d.limits.maxComputeWorkgroupSizeX) return `${threads} threads > maxComputeWorkgroupSizeX ${d.limits.maxComputeWorkgroupSizeX}`;
  if (bytes > maxBytes) return `${bytes} bytes of workgroup memory > maxComputeWorkgroupStorageSize ${maxBytes}`;
  return null;
}

/**
 * The variants the benchmark sweeps (--variants all), each a set of defines of gemm.wgsl. All
 * fit 256 threads and 32 KiB of workgroup memory (lavapipe's limit; an NVIDIA GPU's is larger).
 * The first is the large-class default: the classic SIMT SGEMM shape (CUTLASS's 128x128x8 with
 * 8 x 8 per thread and two stages), expected fastest on an NVIDIA GPU; lavapipe cannot rank them.
 */
export const GEMM_VARIANTS: readonly GemmVariant[] = [
  '128x128_k8_t8x8_p2',   // default large: 256 threads, 16 KiB
  '128x128_k16_t8x8_p2',  // 32 KiB: half the barriers
  '128x128_k8_t8x8_p1',   // register prefetch, one panel, 8 KiB
  '128x128_k16_t8x8_p1',  // 16 KiB
  '128x128_k32_t8x8_p1',  // 32 KiB
  '128x128_k16_t8x8_p0',  // the earlier design: load, barrier, compute, barrier
  '128x64_k16_t8x8_p2',   // 128 threads, 24 KiB
  '128x64_k16_t8x4_p2',   // 256 threads, 24 KiB
  '64x64_k16_t8x8_p2',    // default small: 64 threads, 16 KiB
  '64x64_k16_t8x4_p2',    // 128 threads
  '64x64_k16_t4x4_p2',    // 256 threads, 4 x 4 per thread
].map(parseGemmVariant);

/** The defaults by shape class: the 128 x 128 block once M and N both fill it, 64 x 64 below. */
export const GEMM_DEFAULTS = {
  large: GEMM_VARIANTS[0],
  small: parseGemmVariant('64x64_k16_t8x8_p2'),
};

let envVariant: { value: string; variant: GemmVariant } | null = null;

/** IMAGERATE_WEBGPU_GEMM's variant, parsed once per value; null when unset. */
export function gemmEnvVariant(): GemmVariant | null {
  const value = process.env.IMAGERATE_WEBGPU_GEMM?.trim();
  if (!value) return null;
  if (envVariant?.value !== value) {
    try {
      envVariant = { value, variant: parseGemmVariant(value) };
    } catch (e) {
      throw new Error(`IMAGERATE_WEBGPU_GEMM: ${(e as Error).message}`);
    }
  }
  return envVariant.variant;
}

/** The variant for an M x N problem: large (or IMAGERATE_WEBGPU_GEMM's) when M, N >= 128, small below. */
export function gemmTile(m: number, n: number): GemmVariant {
  if (m >= 128 && n >= 128) return gemmEnvVariant() ?? GEMM_DEFAULTS.large;
  return GEMM_DEFAULTS.small;
}

/** The vec4 flags gemm.wgsl gets for a piece: an operand is read (C also written) as vec4 when its stride, contiguous size and offset are multiples of 4. */
export function gemmVecFlags(g: Pick<GemmParams, 'transA' | 'transB' | 'lda' | 'ldb' | 'ldc'>, m: number, n: number, k: number,
  aOff = 0, bOff = 0, cOff = 0): { VEC_A: boolean; VEC_B: boolean; VEC_C: boolean } {
  return {
    VEC_A: g.lda % 4 === 0 && (g.transA ? m : k) % 4 === 0 && aOff % 4 === 0,
    VEC_B: g.ldb % 4 === 0 && (g.transB ? k : n) % 4 === 0 && bOff % 4 === 0,
    VEC_C: g.ldc % 4 === 0 && n % 4 === 0 && cOff % 4 === 0,
  };
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
function gemmPiece(d: Dispatcher, g: GemmParams, q: Piece, a: BufferHandle, b: BufferHandle, c: BufferHandle, variant?: GemmVariant): void {
  const [oa, ob, oc] = operands(g, q, a, b, c).map((o) => bindOperand(d, o));
  const { m, n, k } = q;
  const { lda, ldb, ldc, transA, transB } = g;
  const v = variant ?? gemmTile(m, n);
  const misfit = gemmVariantMisfit(d, v);
  if (misfit) throw new Error(`gemm: variant ${gemmVariantName(v)} does not fit this device (${misfit})`);
  const tilesN = Math.ceil(n / v.BN);
  const tiles = tilesN * Math.ceil(m / v.BM);
  const defines = { ...v, TRANS_A: transA, TRANS_B: transB, ...gemmVecFlags(g, m, n, k, oa.off, ob.off, oc.off) };
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
function gemmSplit(d: Dispatcher, g: GemmParams, q: Piece, a: BufferHandle, b: BufferHandle, c: BufferHandle, variant?: GemmVariant): void {
  const ops = operands(g, q, a, b, c);
  const misfits = ops.filter((o) => !fits(d, o));
  if (misfits.length === 0) {
    gemmPiece(d, g, q, a, b, c, variant);
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
    gemmSplit(d, g, part(g, q, plan.dim, d0, Math.min(plan.s, q[plan.dim] - d0)), a, b, c, variant);
  }
}

/** Enqueues C = alpha * op(A) op(B) + beta * C; `variant` overrides the shape class's choice (benchmarks, tests). */
export function gemmDispatch(d: Dispatcher, g: GemmParams, a: BufferHandle, b: BufferHandle, c: BufferHandle,
  variant?: GemmVariant): void {
  const { m, n, k, lda, ldb, ldc, transA, transB } = g;
  if (lda < (transA ? m : k) || ldb < (transB ? k : n) || ldc < n) {
    throw new RangeError(`gemm: leading dimension too small (lda ${lda}, ldb ${ldb}, ldc ${ldc} for ${m}x${n}x${k}, transA ${transA}, transB ${transB})`);
  }
  d.need('gemm', 'A', a, spanOf(transA ? k : m, transA ? m : k, lda) * F);
  d.need('gemm', 'B', b, spanOf(transB ? n : k, transB ? k : n, ldb) * F);
  d.need('gemm', 'C', c, spanOf(m, n, ldc) * F);
  if (m === 0 || n === 0) return;
  gemmSplit(d, g, { m, n, k, aOff: 0, bOff: 0, cOff: 0, beta: g.beta }, a, b, c, variant);
}

export const gemmOps: Partial<OpImpls> = {
  gemm(d, p, a, b, c) { gemmDispatch(d, p, a, b, c); },
};
