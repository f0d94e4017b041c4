// gemm_kernel_avx2.cc: the AVX2 + FMA SGEMM kernel set (compiled with -mavx2 -mfma; gemm.cc
// only calls it after __builtin_cpu_supports("avx2") && ("fma")): the 6 x 16 micro-kernel, its
// masked edge kernels, two register-transpose packers, and the unpacked A x B^T dot kernel.
//
// Micro-kernel register tile: 6 rows x 16 columns of C = 12 ymm accumulators (row r:
// c[r][0..7], c[r][8..15]). Per k step: two ymm loads of the B sliver, six vbroadcastss of the
// A sliver, twelve FMAs: 12 + 2 + 1 = 15 of the 16 ymm registers, and 12 FMAs per 8 loads, so
// the two FMA pipes are the bound. The k loop is inline asm (4 steps per trip) with fixed
// scratch registers; the accumulators stay C++ variables ("+x" operands).
//
// Variants measured on the dev VM (Zen 4 EPYC, 3.7 GHz, peak 118 GFLOP/s per core):
//   L1-resident, one tile, kc = 384:  6x16 asm 115, 6x16 intrinsics 115, 4x24 intrinsics 115,
//                                     8x8 intrinsics 100 (8 FMAs per 9 loads: load-bound)
//   whole SGEMM 1024^3, one thread:   6x16 asm 104-105, 6x16 intrinsics 93-95
// GCC's allocation of the intrinsics loop adds ~20 register moves per 48 FMAs, which costs
// ~10 % once B comes partly from L2. 4x24 has no edge over 6x16 and wider ragged edges, so
// 6x16 in asm it is. Blocking (MC/KC/NC) is chosen in gemm.cc's header comment.
//
// Store: C = alpha*acc + beta*C, with beta == 0 never loading C.
#include "gemm_internal.h"

// Built without -mavx2 -mfma (another build system, another CPU family), this file compiles to
// a stub and the driver falls back to the portable kernel.
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace imagerate {
namespace gemm_detail {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

#define IMAGERATE_FMA_ROW(r)                                  \
  {                                                           \
    const __m256 ar = _mm256_broadcast_ss(a + (r));           \
    c##r##0 = _mm256_fmadd_ps(ar, b0, c##r##0);               \
    c##r##1 = _mm256_fmadd_ps(ar, b1, c##r##1);               \
  }

#define IMAGERATE_KSTEP()                                     \
  {                                                           \
    const __m256 b0 = _mm256_loadu_ps(b);                     \
    const __m256 b1 = _mm256_loadu_ps(b + 8);                 \
    IMAGERATE_FMA_ROW(0) IMAGERATE_FMA_ROW(1) IMAGERATE_FMA_ROW(2) \
    IMAGERATE_FMA_ROW(3) IMAGERATE_FMA_ROW(4) IMAGERATE_FMA_ROW(5) \
    a += kMR;                                                 \
    b += bstride;                                             \
  }

#define IMAGERATE_STORE_ROW(r)                                                        \
  {                                                                                   \
    float* cr = c + (r) * ldc;                                                        \
    if (beta == 0.0f) {                                                               \
      _mm256_storeu_ps(cr, _mm256_mul_ps(va, c##r##0));                               \
      _mm256_storeu_ps(cr + 8, _mm256_mul_ps(va, c##r##1));                           \
    } else {                                                                          \
      _mm256_storeu_ps(cr, _mm256_fmadd_ps(va, c##r##0, _mm256_mul_ps(vb, _mm256_loadu_ps(cr)))); \
      _mm256_storeu_ps(cr + 8,                                                        \
                       _mm256_fmadd_ps(va, c##r##1, _mm256_mul_ps(vb, _mm256_loadu_ps(cr + 8)))); \
    }                                                                                 \
  }

// One k step in asm: B row into ymm12/13, A values broadcast alternately into ymm14/15.
#define IMAGERATE_ASM_FMA(off, areg, c0, c1)                   \
  "vbroadcastss " off "(%[a]), %%" areg "\n\t"                \
  "vfmadd231ps %%ymm12, %%" areg ", %t[" c0 "]\n\t"           \
  "vfmadd231ps %%ymm13, %%" areg ", %t[" c1 "]\n\t"
#define IMAGERATE_ASM_KSTEP(o0, o1, o2, o3, o4, o5)            \
  "vmovups (%[b]), %%ymm12\n\t"                               \
  "vmovups 32(%[b]), %%ymm13\n\t"                             \
  "add %[bs], %[b]\n\t"                                       \
  IMAGERATE_ASM_FMA(o0, "ymm14", "c00", "c01")                \
  IMAGERATE_ASM_FMA(o1, "ymm15", "c10", "c11")                \
  IMAGERATE_ASM_FMA(o2, "ymm14", "c20", "c21")                \
  IMAGERATE_ASM_FMA(o3, "ymm15", "c30", "c31")                \
  IMAGERATE_ASM_FMA(o4, "ymm14", "c40", "c41")                \
  IMAGERATE_ASM_FMA(o5, "ymm15", "c50", "c51")

void ukernel_6x16_avx2(int64_t kc, const float* a, const float* b, int64_t bstride, float* c,
                       int64_t ldc, float alpha, float beta) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

  // Warm the C tile while the k loop runs (its rows are ldc apart, two lines each).
  for (int r = 0; r < kMR; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 15), _MM_HINT_T0);
  }

  // Main loop, four k steps per trip, in asm (see the header); the k % 4 tail and the stores
  // are intrinsics on the same accumulator variables.
  const int64_t k4 = kc / 4;
  const int64_t bstride_bytes = bstride * static_cast<int64_t>(sizeof(float));
  const float* const a_end = a + k4 * 4 * kMR;  // loop bound (asm has a 30-operand limit)
  if (k4 > 0) {
    __asm__ volatile(
        "1:\n\t"
        "prefetcht0 192(%[a])\n\t"
        IMAGERATE_ASM_KSTEP("0", "4", "8", "12", "16", "20")
        IMAGERATE_ASM_KSTEP("24", "28", "32", "36", "40", "44")
        IMAGERATE_ASM_KSTEP("48", "52", "56", "60", "64", "68")
        IMAGERATE_ASM_KSTEP("72", "76", "80", "84", "88", "92")
        "add $96, %[a]\n\t"
        "cmp %[a_end], %[a]\n\t"
        "jb 1b\n\t"
        : [a] "+r"(a), [b] "+r"(b), [c00] "+x"(c00), [c01] "+x"(c01),
          [c10] "+x"(c10), [c11] "+x"(c11), [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30),
          [c31] "+x"(c31), [c40] "+x"(c40), [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51)
        : [bs] "r"(bstride_bytes), [a_end] "r"(a_end)
        : "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
  }
  for (int64_t p = kc / 4 * 4; p < kc; ++p) IMAGERATE_KSTEP()

  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  IMAGERATE_STORE_ROW(0) IMAGERATE_STORE_ROW(1) IMAGERATE_STORE_ROW(2)
  IMAGERATE_STORE_ROW(3) IMAGERATE_STORE_ROW(4) IMAGERATE_STORE_ROW(5)
}

#undef IMAGERATE_FMA_ROW
#undef IMAGERATE_KSTEP
#undef IMAGERATE_STORE_ROW
#undef IMAGERATE_ASM_FMA
#undef IMAGERATE_ASM_KSTEP

// Edge tiles: m < 6 rows and/or n < 16 columns, written straight to C (no scratch tile). Same
// sliver layout as the full kernel (A stride 6 per k, B stride `bstride`), only the first m
// rows are computed and the last column vector is stored through a lane mask. Register use is
// at most that of the full tile, so plain intrinsics are fine here.
alignas(32) const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

template <int M, int NV>
void edge_kernel(int64_t kc, const float* a, const float* b, int64_t bstride, float* c,
                 int64_t ldc, float alpha, float beta, int n) {
  __m256 acc[M][NV];
#pragma GCC unroll 6
  for (int r = 0; r < M; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 6
    for (int r = 0; r < M; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
    }
    a += kMR;
    b += bstride;
  }
  const int tail = n - 8 * (NV - 1);  // 1..8 valid lanes in the last vector
  const __m256i mask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - tail));
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int r = 0; r < M; ++r) {
    float* cr = c + r * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const bool last = v == NV - 1;
      __m256 out = _mm256_mul_ps(va, acc[r][v]);
      if (beta != 0.0f) {
        const __m256 old = last ? _mm256_maskload_ps(cr + 8 * v, mask) : _mm256_loadu_ps(cr + 8 * v);
        out = _mm256_fmadd_ps(vb, old, out);
      }
      if (last) _mm256_maskstore_ps(cr + 8 * v, mask, out);
      else _mm256_storeu_ps(cr + 8 * v, out);
    }
  }
}

using EdgeFn = void (*)(int64_t, const float*, const float*, int64_t, float*, int64_t, float, float, int);
const EdgeFn kEdge[kMR][2] = {
    {edge_kernel<1, 1>, edge_kernel<1, 2>}, {edge_kernel<2, 1>, edge_kernel<2, 2>},
    {edge_kernel<3, 1>, edge_kernel<3, 2>}, {edge_kernel<4, 1>, edge_kernel<4, 2>},
    {edge_kernel<5, 1>, edge_kernel<5, 2>}, {edge_kernel<6, 1>, edge_kernel<6, 2>},
};

void ukernel_edge_avx2(int m, int n, int64_t kc, const float* a, const float* b, int64_t bstride,
                       float* c, int64_t ldc, float alpha, float beta) {
  kEdge[m - 1][n > 8 ? 1 : 0](kc, a, b, bstride, c, ldc, alpha, beta, n);
}

// NT without packing: C[i, j] = alpha * dot(A row i, B row j) + beta * C[i, j], A stored M x K,
// B stored N x K, both rows contiguous in k. A tile of MI (<= 3) A rows x NJ (<= 4) B rows
// keeps MI*NJ <= 12 eight-lane partial sums; per 8 k: MI + NJ loads, MI*NJ FMAs. The last
// k % 8 values come in through a lane mask (maskload reads nothing past the row). At the end
// each row's NJ sums are reduced with three hadds and a 128-bit fold. The driver uses this when
// packing would cost more than it saves (small M or N, K long enough to amortise the reduction).
template <int MI, int NJ>
void dot_tile(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
              int64_t ldc, float alpha, float beta) {
  __m256 acc[MI][NJ];
#pragma GCC unroll 3
  for (int i = 0; i < MI; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NJ; ++j) acc[i][j] = _mm256_setzero_ps();
  auto step = [&](int64_t p, __m256i mask, bool masked) {
    __m256 av[MI];
#pragma GCC unroll 3
    for (int i = 0; i < MI; ++i)
      av[i] = masked ? _mm256_maskload_ps(A + i * lda + p, mask) : _mm256_loadu_ps(A + i * lda + p);
#pragma GCC unroll 4
    for (int j = 0; j < NJ; ++j) {
      const __m256 bj = masked ? _mm256_maskload_ps(B + j * ldb + p, mask) : _mm256_loadu_ps(B + j * ldb + p);
#pragma GCC unroll 3
      for (int i = 0; i < MI; ++i) acc[i][j] = _mm256_fmadd_ps(av[i], bj, acc[i][j]);
    }
  };
  const __m256i all = _mm256_set1_epi32(-1);
  int64_t p = 0;
  for (; p + 8 <= K; p += 8) step(p, all, false);
  if (p < K) step(p, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - (K - p))), true);
  const __m128 va = _mm_set1_ps(alpha), vb = _mm_set1_ps(beta);
#pragma GCC unroll 3
  for (int i = 0; i < MI; ++i) {
    __m256 h[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) h[j] = j < NJ ? acc[i][j] : _mm256_setzero_ps();
    const __m256 h4 = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
    __m128 sum = _mm_mul_ps(va, _mm_add_ps(_mm256_castps256_ps128(h4), _mm256_extractf128_ps(h4, 1)));
    float out[4];
    float* c = C + i * ldc;
    if (NJ == 4) {
      if (beta != 0.0f) sum = _mm_fmadd_ps(vb, _mm_loadu_ps(c), sum);
      _mm_storeu_ps(c, sum);
    } else {
      _mm_storeu_ps(out, sum);
      for (int j = 0; j < NJ; ++j) c[j] = beta == 0.0f ? out[j] : out[j] + beta * c[j];
    }
  }
}

using DotFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, float, float);
const DotFn kDot[3][4] = {
    {dot_tile<1, 1>, dot_tile<1, 2>, dot_tile<1, 3>, dot_tile<1, 4>},
    {dot_tile<2, 1>, dot_tile<2, 2>, dot_tile<2, 3>, dot_tile<2, 4>},
    {dot_tile<3, 1>, dot_tile<3, 2>, dot_tile<3, 3>, dot_tile<3, 4>},
};

void gemm_nt_dot_avx2(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                      const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; i += 3) {
    const int64_t mi = M - i < 3 ? M - i : 3;
    for (int64_t j = 0; j < N; j += 4) {
      const int64_t nj = N - j < 4 ? N - j : 4;
      kDot[mi - 1][nj - 1](K, A + i * lda, lda, B + j * ldb, ldb, C + i * ldc + j, ldc, alpha, beta);
    }
  }
}

// Packs op(B) = B^T (B stored N x K): `src` points at op(B)(0, 0), column j of op(B) is the
// contiguous row src + j*ld. Writes nc columns as NR-wide k-major slivers (kernel layout),
// zero-padding the last sliver. Full slivers go through 8 x 8 register transposes (8 loads,
// 24 shuffles, 8 stores per 64 floats) instead of 64 scalar scatters.
inline void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

void pack_b_trans_avx2(const float* src, int64_t ld, int64_t kc, int64_t nc, float* dst) {
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t jr = 0; jr < nc; jr += kNR) {
    const int64_t n = nc - jr < kNR ? nc - jr : kNR;  // columns present; the rest are zeros
    const float* s = src + jr * ld;
    float* d = dst + jr * kc;
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      for (int half = 0; half < 2; ++half) {  // columns 0..7, then 8..15
        __m256 r[8];
        for (int j = 0; j < 8; ++j)
          r[j] = half * 8 + j < n ? _mm256_loadu_ps(s + (half * 8 + j) * ld + p) : zero;
        transpose8x8(r);
        for (int q = 0; q < 8; ++q) _mm256_storeu_ps(d + (p + q) * kNR + half * 8, r[q]);
      }
    }
    for (; p < kc; ++p)
      for (int j = 0; j < kNR; ++j) d[p * kNR + j] = j < n ? s[j * ld + p] : 0.0f;
  }
}

// Packs an untransposed A block (row i of op(A) is the contiguous src + i*ld) into MR-row
// k-major slivers, zero-padding the last one. Eight k values of the six rows (plus two zero
// rows) are transposed in registers, and each k's 8-float result is stored at d + 6k: the two
// junk lanes are overwritten by the next store, and the last store of a sliver writes 2 floats
// past it (into the next sliver, rewritten later, or the buffer's slack; see gemm.cc).
void pack_a_avx2(const float* src, int64_t ld, int64_t mc, int64_t kc, float* dst) {
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t ir = 0; ir < mc; ir += kMR) {
    const int64_t m = mc - ir < kMR ? mc - ir : kMR;
    const float* s = src + ir * ld;
    float* d = dst + ir * kc;
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = i < m ? _mm256_loadu_ps(s + i * ld + p) : zero;
      transpose8x8(r);
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(d + (p + q) * kMR, r[q]);
    }
    for (; p < kc; ++p)
      for (int i = 0; i < kMR; ++i) d[p * kMR + i] = i < m ? s[i * ld + p] : 0.0f;
  }
}

// MC x KC (A block, 96 x 384 x 4 B = 144 KiB) lives in L2; KC x NR (B sliver, 24 KiB) in L1;
// KC x NC (B panel, 6 MiB) in L3. See gemm.cc for how these were chosen.
const GemmKernel kAvx2 = {"avx2-fma", kMR, kNR, 96, 384, 4080, ukernel_6x16_avx2, ukernel_edge_avx2,
                           pack_b_trans_avx2, pack_a_avx2, gemm_nt_dot_avx2};

}  // namespace

const GemmKernel* gemm_kernel_avx2() { return &kAvx2; }

}  // namespace gemm_detail
}  // namespace imagerate

#else  // no AVX2/FMA at compile time

namespace imagerate {
namespace gemm_detail {
const GemmKernel* gemm_kernel_avx2() { return nullptr; }
}  // namespace gemm_detail
}  // namespace imagerate

#endif
