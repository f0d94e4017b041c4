// batchnorm.cc: 2-D batch normalisation over NCHW, training forward, evaluation forward and
// the backward of the training forward (kernels.h has the contract).
//
// Layout: x, y, dy, dx are [outer, ch, inner] (NCHW: outer = N, ch = C, inner = H*W); one
// channel is `outer` contiguous runs of `inner` floats, `ch * inner` apart. gamma, beta and
// every statistic are [ch].
//
// Numerics: per-channel statistics are accumulated in double, in a fixed order (four
// interleaved partial sums per run, runs in order of n), with a two-pass variance
// (mean first, then sum (x - mean)^2), so no cancellation between E[x^2] and E[x]^2.
// Per-element arithmetic is done in double and rounded to float once:
//   train/eval:  y  = (x - mean) * (gamma * invstd) + beta
//   backward:    dx = gamma * invstd * (dy - sum(dy)/M - (x - mean) * invstd^2 * sum(dy*(x-mean))/M)
// with M = outer * inner, and dgamma = invstd * sum(dy * (x - mean)), dbeta = sum(dy).
// The backward takes the float save_mean/save_invstd that the forward wrote, and recovers the
// mean's float rounding in the same pass that sums dy and dy * (x - save_mean) (it also sums
// x - save_mean), so a channel with |mean| >> std (where the rounding of the mean is a
// visible fraction of std) gets the same gradients as one centred at 0. invstd's rounding is
// a relative 2^-24 and is left alone.
//
// Threading: parallel_for over channels (a channel's statistics and outputs belong to one
// thread), and serially below kParallelMin elements. No sum crosses a chunk boundary, so the
// results are bitwise the same for any thread count. The evaluation forward is pointwise
// and is split over (n, c) runs instead.
#include <cmath>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace imagerate {
namespace {

constexpr int64_t kParallelMin = 1 << 15;  // ~32K elements: below this threads cost more than they save

// Runs fn(i) for i in [0, n): serially when the whole tensor is small, else parallel over i.
template <typename Fn>
void for_each_index(int64_t n, int64_t total_elems, Fn&& fn) {
  if (total_elems < kParallelMin || n == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) fn(i);
  });
}

// sum p[i] in double with four interleaved partial sums (latency hiding; fixed order).
inline double sum_f64(const float* p, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  for (; i < n; ++i) s0 += p[i];
  return (s0 + s1) + (s2 + s3);
}

// sum (p[i] - m)^2 in double, same order as sum_f64.
inline double sumsq_dev_f64(const float* p, int64_t n, double m) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const double d0 = p[i] - m, d1 = p[i + 1] - m, d2 = p[i + 2] - m, d3 = p[i + 3] - m;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < n; ++i) {
    const double d = p[i] - m;
    s0 += d * d;
  }
  return (s0 + s1) + (s2 + s3);
}

// Over one run: sdy += sum dy, sdyx += sum dy * (x - m), sx += sum (x - m), in double, with
// four interleaved partial sums each (same order as sum_f64).
inline void bwd_sums(const float* x, const float* dy, int64_t n, double m, double* sdy, double* sdyx, double* sx) {
  double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0}, d[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int l = 0; l < 4; ++l) {
      const double xm = x[i + l] - m;
      a[l] += dy[i + l];
      b[l] += dy[i + l] * xm;
      d[l] += xm;
    }
  }
  for (; i < n; ++i) {
    const double xm = x[i] - m;
    a[0] += dy[i];
    b[0] += dy[i] * xm;
    d[0] += xm;
  }
  *sdy += (a[0] + a[1]) + (a[2] + a[3]);
  *sdyx += (b[0] + b[1]) + (b[2] + b[3]);
  *sx += (d[0] + d[1]) + (d[2] + d[3]);
}

// y = (x - mean) * scale + shift over one run, in double, rounded once.
inline void affine_run(const float* x, float* y, int64_t n, double mean, double scale, double shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = (float)((x[i] - mean) * scale + shift);
}

}  // namespace

void batchnorm2d_fwd_train(int64_t outer, int64_t ch, int64_t inner, float eps, float momentum,
                           const float* x, const float* gamma, const float* beta, float* y,
                           float* save_mean, float* save_invstd, float* running_mean, float* running_var) {
  const int64_t m = outer * inner;  // values per channel (the caller guarantees m > 1)
  const int64_t cstride = ch * inner;
  const double mom = momentum;
  // Bessel's correction for the running variance (PyTorch); m == 1 has no unbiased estimate.
  const double unbias = m > 1 ? (double)m / (double)(m - 1) : NAN;
  for_each_index(ch, outer * cstride, [&](int64_t c) {
    const float* xc = x + c * inner;
    double sum = 0;
    for (int64_t n = 0; n < outer; ++n) sum += sum_f64(xc + n * cstride, inner);
    const double mean = sum / (double)m;
    double ss = 0;
    for (int64_t n = 0; n < outer; ++n) ss += sumsq_dev_f64(xc + n * cstride, inner, mean);
    const double var = ss / (double)m;  // biased: the one the batch is normalised with
    const double invstd = 1.0 / std::sqrt(var + (double)eps);
    save_mean[c] = (float)mean;
    save_invstd[c] = (float)invstd;
    running_mean[c] = (float)((1.0 - mom) * running_mean[c] + mom * mean);
    running_var[c] = (float)((1.0 - mom) * running_var[c] + mom * var * unbias);
    const double scale = (double)gamma[c] * invstd, shift = beta[c];
    float* yc = y + c * inner;
    for (int64_t n = 0; n < outer; ++n) affine_run(xc + n * cstride, yc + n * cstride, inner, mean, scale, shift);
  });
}

void batchnorm2d_fwd_eval(int64_t outer, int64_t ch, int64_t inner, float eps, const float* x,
                          const float* gamma, const float* beta, const float* running_mean,
                          const float* running_var, float* y) {
  std::vector<double> scale((size_t)ch);
  for (int64_t c = 0; c < ch; ++c) scale[c] = (double)gamma[c] / std::sqrt((double)running_var[c] + (double)eps);
  const int64_t rows = outer * ch;
  for_each_index(rows, rows * inner, [&](int64_t r) {
    const int64_t c = r % ch;
    affine_run(x + r * inner, y + r * inner, inner, running_mean[c], scale[c], beta[c]);
  });
}

void batchnorm2d_bwd(int64_t outer, int64_t ch, int64_t inner, const float* x, const float* dy,
                     const float* gamma, const float* save_mean, const float* save_invstd,
                     float* dx, float* dgamma, float* dbeta) {
  const int64_t m = outer * inner;
  const int64_t cstride = ch * inner;
  for_each_index(ch, outer * cstride, [&](int64_t c) {
    const double mean_f = save_mean[c], invstd = save_invstd[c];
    const float *xc = x + c * inner, *dyc = dy + c * inner;
    double sdy = 0, sdyx = 0, sx = 0;
    for (int64_t n = 0; n < outer; ++n) bwd_sums(xc + n * cstride, dyc + n * cstride, inner, mean_f, &sdy, &sdyx, &sx);
    // save_mean is the batch mean rounded to float; the same pass measured that rounding
    // (delta = mean(x) - mean_f), so the sums below are about the exact mean, as in forward.
    const double delta = sx / (double)m, mean = mean_f + delta;
    sdyx -= delta * sdy;  // sum dy * (x - mean)
    dbeta[c] = (float)sdy;
    dgamma[c] = (float)(sdyx * invstd);
    if (!dx) return;
    const double k = (double)gamma[c] * invstd;
    const double a = sdy / (double)m;                    // mean of dy
    const double b = sdyx * invstd * invstd / (double)m;  // mean(dy * xhat) per unit of xhat, times invstd
    float* dxc = dx + c * inner;
    for (int64_t n = 0; n < outer; ++n) {
      const float *xr = xc + n * cstride, *dyr = dyc + n * cstride;
      float* dxr = dxc + n * cstride;
      for (int64_t i = 0; i < inner; ++i) dxr[i] = (float)(k * ((dyr[i] - a) - (xr[i] - mean) * b));
    }
  });
}

}  // namespace imagerate
