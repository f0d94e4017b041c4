// Glue for kernels/wgsl/gemm.wgsl: SGEMM with the contract of gemm_f32 (kernels/cpu/kernels.h).
// Picks the transpose flags, the vec4 loaders where strides and sizes allow them, and the block
// tile by shape class (gemm.wgsl's header has the measurements behind it).
import type { BufferHandle, GemmParams } from '../../backend.js';
import type { OpImpls } from './index.js';
import { Dispatcher, params } from '../runtime.js';

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
  const vecA = lda % 4 === 0 && (transA ? m : k) % 4 === 0;
  const vecB = ldb % 4 === 0 && (transB ? k : n) % 4 === 0;
  tile ??= gemmTile(m, n);
  const tilesN = Math.ceil(n / tile.BN);
  const tiles = tilesN * Math.ceil(m / tile.BM);
  const defines = { ...tile, TRANS_A: transA, TRANS_B: transB, VEC_A: vecA, VEC_B: vecB };
  const p = params().u(m).u(n).u(k).u(lda).u(ldb).u(ldc).f(g.alpha).f(g.beta).u(tilesN).u(tiles);
  d.dispatch('gemm', { file: 'gemm.wgsl', entry: 'gemm', defines }, p, [a, b], [c], d.grid(tiles, 1));
}

export const gemmOps: Partial<OpImpls> = {
  gemm(d, p, a, b, c) { gemmDispatch(d, p, a, b, c); },
};
