// pool2d.cc: 2-D max and average pooling, forward and backward.
//
// Layouts: x, dx [N, C, H, W]; y, dy, argmax [N, C, P, Q], all NCHW and dense. Any window
// (kh, kw), stride and padding; windows may overlap (3x3 stride 2). Window (p, q) covers input
// rows p*sh - ph .. p*sh - ph + kh - 1 and columns likewise, clipped to the image.
//   max:  y = max over the in-bounds window (padding never wins); argmax = h*W + w of the first
//         maximum in row-major window order (ties keep the earlier element). NaN propagates.
//         A window wholly in padding gives y = -inf, argmax = -1.
//         bwd: dx = 0, then dx[argmax] += dy for every output (overlapping windows add up).
//   avg:  y = sum(in-bounds window) / divisor. count_include_pad: divisor = window size clipped
//         to the padded input (PyTorch's rule; kh*kw whenever the window lies inside the padded
//         input, which is always the case for floor-mode output sizes); otherwise the number
//         of in-bounds elements (0 elements -> y = 0).
//         bwd: dx = 0, then each dy / divisor is added to its window's in-bounds elements.
// Every kernel overwrites its outputs.
//
// Thread mapping: parallel_for over the N*C planes; a plane's outputs, and in backward its dx
// plane, belong to one thread, so the scatters need no atomics and the order of additions is
// fixed (deterministic for any thread count). Plain scalar loops: pooling is memory bound and
// cheap next to the convolutions around it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels.h"
#include "parallel.h"

namespace imagerate {
namespace {

// Clipped window of one output position along one axis.
struct Span {
  int64_t lo, hi;  // in-bounds input range [lo, hi)
  int64_t padded;  // window length clipped to the padded input (count_include_pad divisor)
};

inline Span span(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size) {
  const int64_t start = o * stride - pad;
  const int64_t end = std::min(start + k, size + pad);
  return Span{std::max<int64_t>(start, 0), std::min(end, size), end - start};
}

template <typename Fn>
void for_planes(const Pool2dParams& pp, const Fn& fn) {
  parallel_for(pp.n * pp.c, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) fn(i);
  });
}

}  // namespace

void maxpool2d_fwd(const Pool2dParams& pp, const float* x, float* y, int32_t* argmax) {
  const int64_t H = pp.h, W = pp.w, P = pp.p, Q = pp.q;
  for_planes(pp, [&](int64_t plane) {
    const float* xp = x + plane * H * W;
    float* yp = y + plane * P * Q;
    int32_t* ap = argmax + plane * P * Q;
    for (int64_t p = 0; p < P; ++p) {
      const Span sh = span(p, pp.stride_h, pp.pad_h, pp.kh, H);
      for (int64_t q = 0; q < Q; ++q) {
        const Span sw = span(q, pp.stride_w, pp.pad_w, pp.kw, W);
        float best = -std::numeric_limits<float>::infinity();
        int64_t arg = -1;
        for (int64_t h = sh.lo; h < sh.hi; ++h) {
          const float* row = xp + h * W;
          for (int64_t w = sw.lo; w < sw.hi; ++w) {
            const float v = row[w];
            // First element, a strictly larger one, or the first NaN (which then sticks).
            if (arg < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
              best = v;
              arg = h * W + w;
            }
          }
        }
        yp[p * Q + q] = best;
        ap[p * Q + q] = (int32_t)arg;
      }
    }
  });
}

void maxpool2d_bwd(const Pool2dParams& pp, const float* dy, const int32_t* argmax, float* dx) {
  const int64_t HW = pp.h * pp.w, PQ = pp.p * pp.q;
  for_planes(pp, [&](int64_t plane) {
    float* dxp = dx + plane * HW;
    const float* dyp = dy + plane * PQ;
    const int32_t* ap = argmax + plane * PQ;
    std::fill(dxp, dxp + HW, 0.0f);
    for (int64_t i = 0; i < PQ; ++i) {
      const int64_t a = ap[i];
      if (a >= 0 && a < HW) dxp[a] += dyp[i];
    }
  });
}

void avgpool2d_fwd(const Pool2dParams& pp, const float* x, float* y) {
  const int64_t H = pp.h, W = pp.w, P = pp.p, Q = pp.q;
  for_planes(pp, [&](int64_t plane) {
    const float* xp = x + plane * H * W;
    float* yp = y + plane * P * Q;
    for (int64_t p = 0; p < P; ++p) {
      const Span sh = span(p, pp.stride_h, pp.pad_h, pp.kh, H);
      for (int64_t q = 0; q < Q; ++q) {
        const Span sw = span(q, pp.stride_w, pp.pad_w, pp.kw, W);
        float sum = 0.0f;
        for (int64_t h = sh.lo; h < sh.hi; ++h)
          for (int64_t w = sw.lo; w < sw.hi; ++w) sum += xp[h * W + w];
        const int64_t div = pp.count_include_pad
                                ? sh.padded * sw.padded
                                : std::max<int64_t>(0, sh.hi - sh.lo) * std::max<int64_t>(0, sw.hi - sw.lo);
        yp[p * Q + q] = div > 0 ? sum / (float)div : 0.0f;
      }
    }
  });
}

void avgpool2d_bwd(const Pool2dParams& pp, const float* dy, float* dx) {
  const int64_t H = pp.h, W = pp.w, P = pp.p, Q = pp.q;
  for_planes(pp, [&](int64_t plane) {
    float* dxp = dx + plane * H * W;
    const float* dyp = dy + plane * P * Q;
    std::fill(dxp, dxp + H * W, 0.0f);
    for (int64_t p = 0; p < P; ++p) {
      const Span sh = span(p, pp.stride_h, pp.pad_h, pp.kh, H);
      for (int64_t q = 0; q < Q; ++q) {
        const Span sw = span(q, pp.stride_w, pp.pad_w, pp.kw, W);
        const int64_t div = pp.count_include_pad
                                ? sh.padded * sw.padded
                                : std::max<int64_t>(0, sh.hi - sh.lo) * std::max<int64_t>(0, sw.hi - sw.lo);
        if (div <= 0) continue;
        const float g = dyp[p * Q + q] / (float)div;
        for (int64_t h = sh.lo; h < sh.hi; ++h)
          for (int64_t w = sw.lo; w < sw.hi; ++w) dxp[h * W + w] += g;
      }
    }
  });
}

}  // namespace imagerate
