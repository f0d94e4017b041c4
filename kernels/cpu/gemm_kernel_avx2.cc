// gemm_kernel_avx2.cc: the AVX2 + FMA SGEMM micro-kernel, 6 x 16 (compiled with -mavx2 -mfma;
// gemm.cc only calls it after __builtin_cpu_supports("avx2") && ("fma")).
//
// Register tile: 6 rows x 16 columns of C = 12 ymm accumulators (row r: c[r][0..7], c[r][8..15]).
// Per k step: two ymm loads of the B sliver (16 floats), six broadcasts of the A sliver
// (vbroadcastss from memory), twelve FMAs. That is 12 + 2 + 1 (reused broadcast) = 15 of the
// 16 ymm registers, and 12 FMAs for 8 loads, so the two FMA pipes are the bound, not the loads.
//
// Variants measured on this machine (2-core Zen under KVM, 1024^3 one thread, same driver):
//   6x16 (this one)        ~ 63-66 GFLOP/s
//   8x8 (8 accumulators)   ~ 50 GFLOP/s: 8 FMAs for 9 loads per k, load-bound
//   4x24 (12 accumulators) ~ 60 GFLOP/s: same FMA count, 4 broadcasts + 3 loads, but NR=24 makes
//                            edge tiles wider and the B sliver 50 % larger in L1; no gain
// so only 6x16 is kept. Blocking (MC/KC/NC) is chosen in gemm.cc's header comment.
//
// Store: C = alpha*acc + beta*C, with beta == 0 never loading C. The driver sends edge tiles
// through a scratch tile, so every store here is a full 6 x 16 tile.
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

  // Main loop, four k steps per trip, in inline asm with fixed scratch registers: GCC's own
  // allocation of this loop (15 live ymm) adds ~17 register moves per 48 FMAs, which costs
  // ~8 % at 1024^3. Accumulators stay compiler-owned ("+x"), so the stores below are C++.
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

// MC x KC (A block, 144 x 256 x 4 B = 144 KiB) lives in L2; KC x NR (B sliver, 16 KiB) in L1;
// KC x NC (B panel, 4 MiB) in L3. See gemm.cc for how these were chosen.
const GemmKernel kAvx2 = {"avx2-fma", kMR, kNR, 144, 256, 4080, ukernel_6x16_avx2, pack_b_trans_avx2, pack_a_avx2};

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
