// pool2d.cc: 2-D max and average pooling, forward and backward.
//
// Layouts: x, dx [N, C, H, W]; y, dy, argmax [N, C, P, Q], all NCHW and dense. Any window
// (kh, kw), stride and padding; windows may overlap (3x3 stride 2). Window (p, q) covers input
// rows p*sh - ph .. p*sh - ph + kh - 1 and columns likewise, clipped to the image.
//   max:  y = max over the in-bounds window (padding never wins); argmax = h*W + w of the first
//         maximum in row-major window order (ties keep the earlier element). A NaN in the
//         window wins (the last one, as PyTorch). A window wholly in padding gives y = -inf,
//         argmax = -1.
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
// fixed (deterministic for any thread count).
// Variants: per output row, the outputs whose window lies wholly inside the image (the
// "interior" columns [qi0, qi1), on rows whose window is inside too) take an unclipped loop,
// with the window size a compile-time constant for 2x2 and 3x3 (LeNet, ResNet, AlexNet), so
// it unrolls into a chain of compares/adds; border outputs take the clipped generic loop.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

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

// Outputs o in [0, n) whose window [o*stride - pad, + k) lies inside [0, size): [*lo, *hi).
inline void interior(int64_t stride, int64_t pad, int64_t k, int64_t size, int64_t n,
                     int64_t* lo, int64_t* hi) {
  const int64_t a = (pad + stride - 1) / stride;
  const int64_t last = size + pad - k;  // o*stride <= last
  const int64_t b = last < 0 ? 0 : last / stride + 1;
  *lo = std::min(a, n);
  *hi = std::max(*lo, std::min(b, n));
}

template <typename Fn>
void for_planes(const Pool2dParams& pp, const Fn& fn) {
  parallel_for(pp.n * pp.c, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) fn(i);
  });
}

// Walks one plane's outputs: interior(p, q, h0, w0) for windows wholly inside the image (top-left
// corner h0, w0), border(p, q, hspan, wspan) for the rest.
template <typename Interior, typename Border>
void walk_plane(const Pool2dParams& pp, const Interior& in, const Border& border) {
  int64_t pi0, pi1, qi0, qi1;
  interior(pp.stride_h, pp.pad_h, pp.kh, pp.h, pp.p, &pi0, &pi1);
  interior(pp.stride_w, pp.pad_w, pp.kw, pp.w, pp.q, &qi0, &qi1);
  for (int64_t p = 0; p < pp.p; ++p) {
    const Span sh = span(p, pp.stride_h, pp.pad_h, pp.kh, pp.h);
    const bool row_inside = p >= pi0 && p < pi1;
    for (int64_t q = 0; q < pp.q; ++q) {
      if (row_inside && q == qi0 && qi1 > qi0) {
        for (; q < qi1; ++q) in(p, q, sh.lo, q * pp.stride_w - pp.pad_w);
        if (q == pp.q) break;
      }
      border(p, q, sh, span(q, pp.stride_w, pp.pad_w, pp.kw, pp.w));
    }
  }
}

// Max over an unclipped KH x KW window (runtime size when KH == 0), first max wins, NaN wins.
// The running choice is kept as a window-relative position (a small int) so that each element
// costs one compare and two selects; the flat index is formed once at the end.
template <int KH, int KW>
inline void max_window(const float* xp, int64_t W, int64_t h0, int64_t w0, int64_t kh,
                       int64_t kw, float* y, int32_t* arg) {
  const int nh = KH > 0 ? KH : (int)kh, nw = KW > 0 ? KW : (int)kw;
  const float* x0 = xp + h0 * W + w0;
  float best = x0[0];
  int bi = 0, bj = 0;
  for (int i = 0; i < nh; ++i)
    for (int j = 0; j < nw; ++j) {
      const float v = x0[i * W + j];
      const bool take = (v > best) | (v != v);
      best = take ? v : best;
      bi = take ? i : bi;
      bj = take ? j : bj;
    }
  *y = best;
  *arg = (int32_t)((h0 + bi) * W + w0 + bj);
}

template <int KH, int KW>
void maxpool_plane(const Pool2dParams& pp, const float* xp, float* yp, int32_t* ap) {
  const int64_t W = pp.w, Q = pp.q;
  walk_plane(
      pp,
      [&](int64_t p, int64_t q, int64_t h0, int64_t w0) {
        max_window<KH, KW>(xp, W, h0, w0, pp.kh, pp.kw, yp + p * Q + q, ap + p * Q + q);
      },
      [&](int64_t p, int64_t q, const Span& sh, const Span& sw) {
        float best = -std::numeric_limits<float>::infinity();
        int64_t a = -1;
        for (int64_t h = sh.lo; h < sh.hi; ++h)
          for (int64_t w = sw.lo; w < sw.hi; ++w) {
            const float v = xp[h * W + w];
            if (a < 0 || v > best || v != v) {
              best = v;
              a = h * W + w;
            }
          }
        yp[p * Q + q] = best;
        ap[p * Q + q] = (int32_t)a;
      });
}

inline int64_t avg_divisor(const Pool2dParams& pp, const Span& sh, const Span& sw) {
  if (pp.count_include_pad) return sh.padded * sw.padded;
  return std::max<int64_t>(0, sh.hi - sh.lo) * std::max<int64_t>(0, sw.hi - sw.lo);
}

template <int KH, int KW>
void avgpool_plane(const Pool2dParams& pp, const float* xp, float* yp) {
  const int64_t W = pp.w, Q = pp.q;
  const int64_t nh = KH > 0 ? KH : pp.kh, nw = KW > 0 ? KW : pp.kw;
  const float inv = 1.0f / (float)(nh * nw);  // interior windows: both divisors are kh*kw
  walk_plane(
      pp,
      [&](int64_t p, int64_t q, int64_t h0, int64_t w0) {
        float sum = 0.0f;
        for (int64_t i = 0; i < nh; ++i)
          for (int64_t j = 0; j < nw; ++j) sum += xp[(h0 + i) * W + w0 + j];
        yp[p * Q + q] = sum * inv;
      },
      [&](int64_t p, int64_t q, const Span& sh, const Span& sw) {
        float sum = 0.0f;
        for (int64_t h = sh.lo; h < sh.hi; ++h)
          for (int64_t w = sw.lo; w < sw.hi; ++w) sum += xp[h * W + w];
        const int64_t div = avg_divisor(pp, sh, sw);
        yp[p * Q + q] = div > 0 ? sum / (float)div : 0.0f;
      });
}

template <int KH, int KW>
void avgpool_bwd_plane(const Pool2dParams& pp, const float* dyp, float* dxp) {
  const int64_t W = pp.w, Q = pp.q;
  const int64_t nh = KH > 0 ? KH : pp.kh, nw = KW > 0 ? KW : pp.kw;
  const float inv = 1.0f / (float)(nh * nw);
  walk_plane(
      pp,
      [&](int64_t p, int64_t q, int64_t h0, int64_t w0) {
        const float g = dyp[p * Q + q] * inv;
        for (int64_t i = 0; i < nh; ++i)
          for (int64_t j = 0; j < nw; ++j) dxp[(h0 + i) * W + w0 + j] += g;
      },
      [&](int64_t p, int64_t q, const Span& sh, const Span& sw) {
        const int64_t div = avg_divisor(pp, sh, sw);
        if (div <= 0) return;
        const float g = dyp[p * Q + q] / (float)div;
        for (int64_t h = sh.lo; h < sh.hi; ++h)
          for (int64_t w = sw.lo; w < sw.hi; ++w) dxp[h * W + w] += g;
      });
}

// Calls fn.template operator()<KH, KW>() with the window as template arguments for the sizes
// that have a specialised loop, <0, 0> (runtime size) otherwise.
template <typename Fn>
void dispatch_window(const Pool2dParams& pp, const Fn& fn) {
  if (pp.kh == 2 && pp.kw == 2) {
    fn(std::integral_constant<int, 2>{}, std::integral_constant<int, 2>{});
  } else if (pp.kh == 3 && pp.kw == 3) {
    fn(std::integral_constant<int, 3>{}, std::integral_constant<int, 3>{});
  } else {
    fn(std::integral_constant<int, 0>{}, std::integral_constant<int, 0>{});
  }
}

}  // namespace

void maxpool2d_fwd(const Pool2dParams& pp, const float* x, float* y, int32_t* argmax) {
  const int64_t HW = pp.h * pp.w, PQ = pp.p * pp.q;
  dispatch_window(pp, [&](auto kh, auto kw) {
    for_planes(pp, [&](int64_t i) {
      maxpool_plane<decltype(kh)::value, decltype(kw)::value>(pp, x + i * HW, y + i * PQ,
                                                              argmax + i * PQ);
    });
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
  const int64_t HW = pp.h * pp.w, PQ = pp.p * pp.q;
  dispatch_window(pp, [&](auto kh, auto kw) {
    for_planes(pp, [&](int64_t i) {
      avgpool_plane<decltype(kh)::value, decltype(kw)::value>(pp, x + i * HW, y + i * PQ);
    });
  });
}

void avgpool2d_bwd(const Pool2dParams& pp, const float* dy, float* dx) {
  const int64_t HW = pp.h * pp.w, PQ = pp.p * pp.q;
  dispatch_window(pp, [&](auto kh, auto kw) {
    for_planes(pp, [&](int64_t i) {
      float* dxp = dx + i * HW;
      std::fill(dxp, dxp + HW, 0.0f);
      avgpool_bwd_plane<decltype(kh)::value, decltype(kw)::value>(pp, dy + i * PQ, dxp);
    });
  });
}

}  // namespace imagerate
