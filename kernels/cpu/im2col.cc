// im2col.cc: see im2col.h. Row by row: for one (c, r, s) the valid output columns q form one
// contiguous range [qa, qb) (computed once per row), and the valid output rows p another, so
// the inner loops carry no bounds checks: 16-byte block copies (col2im: block adds) when
// stride_w == 1, a strided loop otherwise. Padding becomes explicit zeros.
#include "im2col.h"

#include <algorithm>
#include <cstring>

namespace imagerate {
namespace {

// Output indices i in [0, n) with 0 <= i*stride + off < size form [*lo, *hi).
inline void valid_range(int64_t off, int64_t stride, int64_t size, int64_t n, int64_t* lo,
                        int64_t* hi) {
  int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t last = size - 1 - off;  // i*stride <= last
  int64_t b = last < 0 ? 0 : last / stride + 1;
  a = std::min(a, n);
  b = std::max(a, std::min(b, n));
  *lo = a;
  *hi = b;
}

// Rows here are short (often 10..60 floats), where a call into libc's memcpy / memset costs
// more than the copy; plain loops, kept as loops (GCC would turn them back into calls).
#if defined(__GNUC__) && !defined(__clang__)
#define IR_NO_LIBCALL __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define IR_NO_LIBCALL
#endif

// 16-byte block copies; a ragged tail is one more block ending exactly at n (overlapping the
// previous one; harmless for a copy), so short rows need no scalar remainder loop.
IR_NO_LIBCALL inline void copy_row(float* __restrict d, const float* __restrict s, int64_t n) {
  if (n < 4) {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
    return;
  }
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) std::memcpy(d + i, s + i, 16);
  if (i < n) std::memcpy(d + n - 4, s + n - 4, 16);
}

// d[i] += s[i]: whole 4-float blocks (one SSE add each) and a scalar tail; restrict spares the
// per-row alias check that an auto-vectorised loop would carry.
inline void add_row(float* __restrict d, const float* __restrict s, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) d[i + j] += s[i + j];
  for (; i < n; ++i) d[i] += s[i];
}

IR_NO_LIBCALL inline void fill_zero(float* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = 0.0f;
}

}  // namespace

IR_NO_LIBCALL void im2col(const Conv2dParams& cp, const float* x_n, int64_t c0, int64_t c1,
                          int64_t p0, int64_t p1, float* col) {
  const int64_t H = cp.h, W = cp.w, Q = cp.q, sh = cp.stride_h, sw = cp.stride_w;
  const int64_t np = p1 - p0, cols = np * Q;
  float* dst = col;
  for (int64_t c = c0; c < c1; ++c) {
    const float* xc = x_n + c * H * W;
    for (int64_t r = 0; r < cp.r; ++r) {
      const int64_t hoff = r * cp.dil_h - cp.pad_h;
      int64_t pa, pb;
      valid_range(hoff, sh, H, p1, &pa, &pb);
      pa = std::max(pa, p0);
      pb = std::max(pb, pa);
      for (int64_t s = 0; s < cp.s; ++s, dst += cols) {
        const int64_t woff = s * cp.dil_w - cp.pad_w;
        int64_t qa, qb;
        valid_range(woff, sw, W, Q, &qa, &qb);
        // Output rows whose input row is padding.
        fill_zero(dst, (pa - p0) * Q);
        fill_zero(dst + (pb - p0) * Q, (p1 - pb) * Q);
        for (int64_t p = pa; p < pb; ++p) {
          float* d = dst + (p - p0) * Q;
          const float* src = xc + (p * sh + hoff) * W + (qa * sw + woff);
          for (int64_t q = 0; q < qa; ++q) d[q] = 0.0f;
          if (sw == 1) {
            copy_row(d + qa, src, qb - qa);
          } else {
            for (int64_t q = qa; q < qb; ++q) d[q] = src[(q - qa) * sw];
          }
          for (int64_t q = qb; q < Q; ++q) d[q] = 0.0f;
        }
      }
    }
  }
}

IR_NO_LIBCALL void col2im_add(const Conv2dParams& cp, const float* col, int64_t c0,
                              int64_t c1, int64_t p0, int64_t p1, float* dx_n) {
  const int64_t H = cp.h, W = cp.w, Q = cp.q, sh = cp.stride_h, sw = cp.stride_w;
  const int64_t cols = (p1 - p0) * Q;
  const float* srcrow = col;
  for (int64_t c = c0; c < c1; ++c) {
    float* dc = dx_n + c * H * W;
    for (int64_t r = 0; r < cp.r; ++r) {
      const int64_t hoff = r * cp.dil_h - cp.pad_h;
      int64_t pa, pb;
      valid_range(hoff, sh, H, p1, &pa, &pb);
      pa = std::max(pa, p0);
      pb = std::max(pb, pa);
      for (int64_t s = 0; s < cp.s; ++s, srcrow += cols) {
        const int64_t woff = s * cp.dil_w - cp.pad_w;
        int64_t qa, qb;
        valid_range(woff, sw, W, Q, &qa, &qb);
        for (int64_t p = pa; p < pb; ++p) {
          const float* src = srcrow + (p - p0) * Q;
          float* d = dc + (p * sh + hoff) * W + (qa * sw + woff);
          if (sw == 1) {
            add_row(d, src + qa, qb - qa);
          } else {
            for (int64_t q = qa; q < qb; ++q) d[(q - qa) * sw] += src[q];
          }
        }
      }
    }
  }
}

}  // namespace imagerate
