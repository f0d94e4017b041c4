// lrn.cc: local response normalisation across channels (TensorFlow's tf.nn.lrn), forward and
// backward (kernels.h has the contract).
//
// Layout: x, y, scale, dy, dx are [n, c, hw] (NCHW with hw = H*W). For element (n, k, j):
//   s[k]  = bias + alpha * sum_{k' = max(0, k-r)}^{min(c-1, k+r)} x[k']^2      (written to `scale`)
//   y[k]  = x[k] * s[k]^-beta
//   dx[k] = dy[k] * s[k]^-beta - 2 * alpha * beta * x[k] * sum_{k' in window(k)} dy[k'] * y[k'] / s[k']
// The last line is TF's LRNGrad: d y[i] / d x[k] = [i == k] s[i]^-beta
// - 2 alpha beta x[i] x[k] s[i]^(-beta-1) for |i - k| <= r, and the window is symmetric, so
// the sum over the outputs i whose window holds k is the sum over k's own window.
//
// Numerics: squares are summed in double (a float squared is exact in double) directly over
// each window, not with a running add/subtract, so a large value leaving the window leaves no
// residue behind; s^-beta is evaluated in double (sqrt-only forms for beta = 0.5, 0.75, 1,
// packed with SSE2; std::pow otherwise) and results are rounded to float once. The backward recomputes
// s^-beta from the float `scale` the forward wrote.
//
// Threading: work items are (image, run of kChunk positions of hw); parallel_for over items.
// Every output depends on its own item only, so results are the same for any thread count.
// Each item walks the channels with contiguous rows of up to kChunk floats (vectorisable).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "parallel.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace imagerate {
namespace {

constexpr int64_t kChunk = 256;            // positions of hw per work item
constexpr int64_t kParallelMin = 1 << 15;  // elements below which one thread does it all

enum class PowKind { kHalf, kThreeQuarters, kOne, kGeneral };

PowKind pow_kind(float beta) {
  if (beta == 0.5f) return PowKind::kHalf;
  if (beta == 0.75f) return PowKind::kThreeQuarters;
  if (beta == 1.0f) return PowKind::kOne;
  return PowKind::kGeneral;
}

// s^-beta for the kind chosen once per call.
template <PowKind K>
inline double pow_neg(double s, double beta) {
  if constexpr (K == PowKind::kHalf) return 1.0 / std::sqrt(s);
  else if constexpr (K == PowKind::kThreeQuarters) {
    const double r = std::sqrt(s);
    return 1.0 / (r * std::sqrt(r));
  } else if constexpr (K == PowKind::kOne) return 1.0 / s;
  else return std::pow(s, -beta);
}

// v[j] = v[j]^-beta over a run, in place. Without -fno-math-errno a scalar std::sqrt keeps an
// errno branch that stops the compiler from vectorising, so the sqrt-only kinds use SSE2's
// packed sqrt/div where available. IEEE sqrt and div are correctly rounded in both forms, so
// the packed and scalar paths give the same bits (run length never changes a result).
template <PowKind K>
void pow_neg_run(double* v, int64_t len, double beta) {
  int64_t j = 0;
#if defined(__SSE2__)
  if constexpr (K != PowKind::kGeneral) {
    const __m128d one = _mm_set1_pd(1.0);
    for (; j + 2 <= len; j += 2) {
      const __m128d s = _mm_loadu_pd(v + j);
      __m128d d = s;
      if constexpr (K == PowKind::kHalf) d = _mm_sqrt_pd(s);
      else if constexpr (K == PowKind::kThreeQuarters) {
        const __m128d r = _mm_sqrt_pd(s);
        d = _mm_mul_pd(r, _mm_sqrt_pd(r));
      }
      _mm_storeu_pd(v + j, _mm_div_pd(one, d));
    }
  }
#endif
  for (; j < len; ++j) v[j] = pow_neg<K>(v[j], beta);
}

// Calls fn(image, j0, j1) for every work item, in parallel when the tensor is large enough.
template <typename Fn>
void for_items(int64_t n, int64_t c, int64_t hw, Fn&& fn) {
  const int64_t chunks = (hw + kChunk - 1) / kChunk;
  auto run = [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t img = it / chunks, j0 = (it % chunks) * kChunk;
      fn(img, j0, std::min(hw, j0 + kChunk));
    }
  };
  if (n * c * hw < kParallelMin) run(0, n * chunks);
  else parallel_for(n * chunks, [&](int64_t b, int64_t e, int) { run(b, e); });
}

template <PowKind K>
void lrn_fwd_impl(int64_t n, int64_t c, int64_t hw, int64_t radius, float bias, float alpha, float beta,
                  const float* x, float* y, float* scale) {
  const double b = bias, a = alpha, be = beta;
  for_items(n, c, hw, [&](int64_t img, int64_t j0, int64_t j1) {
    const int64_t len = j1 - j0;
    double acc[kChunk];
    const int64_t base = img * c * hw + j0;
    for (int64_t k = 0; k < c; ++k) {
      std::fill(acc, acc + len, 0.0);
      const int64_t lo = std::max<int64_t>(0, k - radius), hi = std::min<int64_t>(c - 1, k + radius);
      for (int64_t kk = lo; kk <= hi; ++kk) {
        const float* xr = x + base + kk * hw;
        for (int64_t j = 0; j < len; ++j) acc[j] += (double)xr[j] * xr[j];
      }
      const float* xr = x + base + k * hw;
      float *yr = y + base + k * hw, *sr = scale + base + k * hw;
      for (int64_t j = 0; j < len; ++j) {
        acc[j] = b + a * acc[j];
        sr[j] = (float)acc[j];
      }
      pow_neg_run<K>(acc, len, be);  // acc = s^-beta
      for (int64_t j = 0; j < len; ++j) yr[j] = (float)(xr[j] * acc[j]);
    }
  });
}

template <PowKind K>
void lrn_bwd_impl(int64_t n, int64_t c, int64_t hw, int64_t radius, float alpha, float beta,
                  const float* x, const float* y, const float* scale, const float* dy, float* dx) {
  const double be = beta, coef = 2.0 * (double)alpha * (double)beta;
  const int64_t chunks = (hw + kChunk - 1) / kChunk;
  auto run = [&](int64_t b, int64_t e) {
    std::vector<double> t((size_t)(c * kChunk));  // dy * y / s for every channel of one item
    double acc[kChunk], pw[kChunk];
    for (int64_t it = b; it < e; ++it) {
      const int64_t img = it / chunks, j0 = (it % chunks) * kChunk;
      const int64_t len = std::min(hw, j0 + kChunk) - j0;
      const int64_t base = img * c * hw + j0;
      for (int64_t k = 0; k < c; ++k) {
        const float *dyr = dy + base + k * hw, *yr = y + base + k * hw, *sr = scale + base + k * hw;
        double* tr = t.data() + k * kChunk;
        for (int64_t j = 0; j < len; ++j) tr[j] = (double)dyr[j] * yr[j] / sr[j];
      }
      for (int64_t k = 0; k < c; ++k) {
        std::fill(acc, acc + len, 0.0);
        const int64_t lo = std::max<int64_t>(0, k - radius), hi = std::min<int64_t>(c - 1, k + radius);
        for (int64_t kk = lo; kk <= hi; ++kk) {
          const double* tr = t.data() + kk * kChunk;
          for (int64_t j = 0; j < len; ++j) acc[j] += tr[j];
        }
        const float *xr = x + base + k * hw, *dyr = dy + base + k * hw, *sr = scale + base + k * hw;
        float* dxr = dx + base + k * hw;
        for (int64_t j = 0; j < len; ++j) pw[j] = sr[j];
        pow_neg_run<K>(pw, len, be);  // s^-beta
        for (int64_t j = 0; j < len; ++j) dxr[j] = (float)(dyr[j] * pw[j] - coef * xr[j] * acc[j]);
      }
    }
  };
  if (n * c * hw < kParallelMin) run(0, n * chunks);
  else parallel_for(n * chunks, [&](int64_t b, int64_t e, int) { run(b, e); });
}

}  // namespace

void lrn_fwd(int64_t n, int64_t c, int64_t hw, int64_t radius, float bias, float alpha, float beta,
             const float* x, float* y, float* scale) {
  switch (pow_kind(beta)) {
    case PowKind::kHalf: return lrn_fwd_impl<PowKind::kHalf>(n, c, hw, radius, bias, alpha, beta, x, y, scale);
    case PowKind::kThreeQuarters: return lrn_fwd_impl<PowKind::kThreeQuarters>(n, c, hw, radius, bias, alpha, beta, x, y, scale);
    case PowKind::kOne: return lrn_fwd_impl<PowKind::kOne>(n, c, hw, radius, bias, alpha, beta, x, y, scale);
    case PowKind::kGeneral: return lrn_fwd_impl<PowKind::kGeneral>(n, c, hw, radius, bias, alpha, beta, x, y, scale);
  }
}

void lrn_bwd(int64_t n, int64_t c, int64_t hw, int64_t radius, float bias, float alpha, float beta,
             const float* x, const float* y, const float* scale, const float* dy, float* dx) {
  (void)bias;  // s = bias + alpha * sum x^2 arrives precomputed in `scale`
  switch (pow_kind(beta)) {
    case PowKind::kHalf: return lrn_bwd_impl<PowKind::kHalf>(n, c, hw, radius, alpha, beta, x, y, scale, dy, dx);
    case PowKind::kThreeQuarters: return lrn_bwd_impl<PowKind::kThreeQuarters>(n, c, hw, radius, alpha, beta, x, y, scale, dy, dx);
    case PowKind::kOne: return lrn_bwd_impl<PowKind::kOne>(n, c, hw, radius, alpha, beta, x, y, scale, dy, dx);
    case PowKind::kGeneral: return lrn_bwd_impl<PowKind::kGeneral>(n, c, hw, radius, alpha, beta, x, y, scale, dy, dx);
  }
}

}  // namespace imagerate
