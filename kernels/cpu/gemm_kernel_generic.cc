// gemm_kernel_generic.cc: the portable SGEMM micro-kernel, 6 x 8 (no ISA flags; on x86-64 this
// is SSE2, on other targets whatever 128-bit SIMD GCC/Clang map the vector type to).
//
// Register tile: 6 rows x 8 columns of C = 12 four-float accumulators (GCC/Clang vector
// extension `vector_size(16)`, i.e. one xmm each), plus 2 for the B sliver and 1 for the
// broadcast A value: 15 of the 16 xmm registers. SSE2 has no FMA, so each k step is 12 mul +
// 12 add. Measured (dev VM, 1024^3, one thread, thread CPU time): ~36 GFLOP/s, against
// ~105 for the AVX2 kernel set.
//
// Store: C = alpha*acc + beta*C, with beta == 0 never reading C. Full tiles only (the driver
// routes edge tiles through a scratch tile).
#include <cstring>

#include "gemm_internal.h"

namespace imagerate {
namespace gemm_detail {
namespace {

typedef float v4f __attribute__((vector_size(16)));

constexpr int kMR = 6;
constexpr int kNR = 8;

inline v4f load4(const float* p) {
  v4f v;
  std::memcpy(&v, p, sizeof v);  // unaligned load (movups)
  return v;
}
inline void store4(float* p, v4f v) { std::memcpy(p, &v, sizeof v); }
inline v4f splat(float x) { return v4f{x, x, x, x}; }

void ukernel_6x8_generic(int64_t kc, const float* a, const float* b, int64_t bstride, float* c,
                         int64_t ldc, float alpha, float beta) {
  v4f acc[kMR][2];
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = splat(0.0f);
  for (int64_t p = 0; p < kc; ++p) {
    const v4f b0 = load4(b), b1 = load4(b + 4);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      const v4f ar = splat(a[r]);
      acc[r][0] += ar * b0;
      acc[r][1] += ar * b1;
    }
    a += kMR;
    b += bstride;
  }
  const v4f va = splat(alpha), vb = splat(beta);
  for (int r = 0; r < kMR; ++r) {
    float* cr = c + r * ldc;
    if (beta == 0.0f) {
      store4(cr, va * acc[r][0]);
      store4(cr + 4, va * acc[r][1]);
    } else {
      store4(cr, va * acc[r][0] + vb * load4(cr));
      store4(cr + 4, va * acc[r][1] + vb * load4(cr + 4));
    }
  }
}

// Blocks as for AVX2 (gemm.cc): A block 96 x 384 (144 KiB, L2), B sliver 384 x 8 (12 KiB, L1).
// No edge kernel, packers or dot kernel: gemm.cc's portable ones (scratch-tile edges) are used.
const GemmKernel kGeneric = {"generic", kMR, kNR, 96, 384, 4080, ukernel_6x8_generic, nullptr, nullptr, nullptr, nullptr};

}  // namespace

const GemmKernel* gemm_kernel_generic() { return &kGeneric; }

}  // namespace gemm_detail
}  // namespace imagerate
