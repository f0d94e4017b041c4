// gemm_internal.h: the contract between the GEMM driver (gemm.cc) and its micro-kernels
// (gemm_kernel_avx2.cc, gemm_kernel_generic.cc). Not part of the public kernel API.
//
// A micro-kernel computes one MR x NR tile of C from a packed A sliver and a B sliver:
//
//   C[r, j] = alpha * sum_{p < kc} a[p*MR + r] * b[p*bstride + j] + beta * C[r, j]
//   for r < MR, j < NR, with C[r, j] at c[r*ldc + j].
//
// - `a` is an MR-row sliver packed k-major (MR consecutive floats per k step), zero-padded
//   past the matrix edge (the packed block is 64-byte aligned; a sliver need not be).
// - `b` is NR consecutive floats per k step, `bstride` floats apart: bstride == NR for a packed
//   sliver, bstride == ldb when the driver streams an untransposed B in place (small M).
//   It need not be aligned.
// - beta == 0 must not read C (NaN in C must not leak through); the tile is always full (the
//   driver sends edge tiles to the kernel set's `edge` kernel, or through a scratch tile).
//
// A kernel set (GemmKernel) is that micro-kernel, its blocking, and optional ISA-specific
// helpers; every helper left nullptr falls back to gemm.cc's portable code.
//
// This header holds declarations and plain data only, never inline functions: it is included
// by gemm_kernel_avx2.cc, which is compiled with -mavx2 -mfma, and an inline function emitted
// there could be picked by the linker for the portable files too (an ODR trap that ends in
// SIGILL on a CPU without AVX2).
#pragma once
#include <cstdint>

namespace imagerate {
namespace gemm_detail {

using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, int64_t bstride, float* c,
                             int64_t ldc, float alpha, float beta);

// Optional edge-tile kernel: the same computation for the first m <= MR rows and n <= NR
// columns only, storing straight into C (never touching C outside the m x n corner; beta == 0
// does not read C). nullptr: the driver computes a full tile into scratch and copies it out.
using EdgeKernel = void (*)(int m, int n, int64_t kc, const float* a, const float* b,
                            int64_t bstride, float* c, int64_t ldc, float alpha, float beta);

// Optional ISA-specific packing of a transposed B panel: op(B)(p, j) = src[j*ld + p], nc columns
// and kc rows into NR-wide k-major slivers, zero-padded (the layout pack_b in gemm.cc writes).
using PackBTrans = void (*)(const float* src, int64_t ld, int64_t kc, int64_t nc, float* dst);
// Optional ISA-specific packing of an untransposed A block: op(A)(i, p) = src[i*ld + p], mc rows
// into MR-row k-major slivers, zero-padded. May write up to kPackSlack floats past the block.
using PackA = void (*)(const float* src, int64_t ld, int64_t mc, int64_t kc, float* dst);
constexpr int64_t kPackSlack = 8;
// Optional unpacked path for C = alpha * A * B^T + beta * C with A stored M x K and B stored
// N x K (row strides lda, ldb): every output is a dot product of two contiguous rows. beta == 0
// does not read C.
using NtDot = void (*)(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                       const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

struct GemmKernel {
  const char* name;     // "avx2-fma" | "generic"
  int mr, nr;           // register tile
  int64_t mc, kc, nc;   // cache blocks: A block mc x kc (L2), B panel kc x nc (L3), mc % mr == 0, nc % nr == 0
  MicroKernel ukernel;
  EdgeKernel edge;          // nullptr: scratch tile + copy in gemm.cc
  PackBTrans pack_b_trans;  // nullptr: gemm.cc's portable pack_b
  PackA pack_a;             // nullptr: gemm.cc's portable pack_a
  NtDot nt_dot;             // nullptr: NT always goes through packing
};

// Both return a static table. gemm_kernel_avx2() returns nullptr when its file was built without
// -mavx2 -mfma; its ukernel may only run on a CPU with AVX2 and FMA (gemm.cc checks
// __builtin_cpu_supports first).
const GemmKernel* gemm_kernel_generic();
const GemmKernel* gemm_kernel_avx2();

}  // namespace gemm_detail
}  // namespace imagerate
