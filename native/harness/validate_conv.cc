// validate_conv.cc: checks of the CUDA conv2d kernels (forward, with bias and with bias +
// ReLU; backward data; backward filter with the bias gradient) against plain float64 loops,
// and of the fp32 forward against the CPU conv2d_fwd too, for every math mode.
//
// Error bound per output: as for GEMM (validate_gemm.cc), mode_tolerance(mode, k) times the
// sum of |terms| plus mode_atol(mode, k), with k the reduction length: C*R*S (forward),
// K*R*S (backward data), N*P*Q (backward filter); the bias gradient is summed in double and
// rounded once (1e-6 relative).
// Cases hit the pointwise fast paths, strides, padding, dilation, split-K in the filter
// gradient (even and ragged last chunks, chunk edges inside an image) and misaligned pointers.
// Every output starts as NaN, so an unwritten element fails.
// A CUDA error returned by a launch fails that check and the run goes on (launched()); an
// error inside a kernel (sticky) stops the run at the next download.
#include <cmath>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "harness.h"
#include "kernels.h"

namespace harness {
namespace {

using imagerate::cuda::MathMode;

// ---------------------------------------------------------------- conv2d
struct ConvCase {
  int64_t n, c, h, w, k, r, s, sh, sw, ph, pw, dh, dw;
};

imagerate::Conv2dParams cpu_params(const ConvCase& t) {
  imagerate::Conv2dParams cp{t.n, t.c, t.h, t.w, t.k, t.r, t.s, t.sh, t.sw, t.ph, t.pw, t.dh, t.dw, 0, 0};
  cp.p = (t.h + 2 * t.ph - t.dh * (t.r - 1) - 1) / t.sh + 1;
  cp.q = (t.w + 2 * t.pw - t.dw * (t.s - 1) - 1) / t.sw + 1;
  return cp;
}
imagerate::cuda::Conv2dParams gpu_params(const imagerate::Conv2dParams& c) {
  return imagerate::cuda::Conv2dParams{c.n, c.c, c.h, c.w, c.k, c.r, c.s, c.stride_h, c.stride_w,
                                       c.pad_h, c.pad_w, c.dil_h, c.dil_w, c.p, c.q};
}

// Double references: y (fwd), dx (bwd-data), dw (bwd-filter), each with sum |terms|.
struct ConvRef {
  std::vector<double> y, ys, dx, dxs, dw, dws, db;
};
ConvRef conv_reference(const imagerate::Conv2dParams& cp, const std::vector<float>& x, const std::vector<float>& w,
                       const std::vector<float>& dy) {
  ConvRef r;
  const int64_t N = cp.n, C = cp.c, H = cp.h, W = cp.w, K = cp.k, R = cp.r, S = cp.s, P = cp.p, Q = cp.q;
  r.y.assign((size_t)(N * K * P * Q), 0.0);
  r.ys = r.y;
  r.dx.assign((size_t)(N * C * H * W), 0.0);
  r.dxs = r.dx;
  r.dw.assign((size_t)(K * C * R * S), 0.0);
  r.dws = r.dw;
  r.db.assign((size_t)K, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q) {
          const size_t yo = (size_t)(((n * K + k) * P + p) * Q + q);
          const double g = dy[yo];
          r.db[(size_t)k] += g;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t rr = 0; rr < R; ++rr) {
              const int64_t h = p * cp.stride_h - cp.pad_h + rr * cp.dil_h;
              if (h < 0 || h >= H) continue;
              for (int64_t ss = 0; ss < S; ++ss) {
                const int64_t ww = q * cp.stride_w - cp.pad_w + ss * cp.dil_w;
                if (ww < 0 || ww >= W) continue;
                const size_t xo = (size_t)(((n * C + c) * H + h) * W + ww);
                const size_t wo = (size_t)(((k * C + c) * R + rr) * S + ss);
                const double xv = x[xo], wv = w[wo];
                r.y[yo] += xv * wv;
                r.ys[yo] += std::fabs(xv * wv);
                r.dx[xo] += g * wv;
                r.dxs[xo] += std::fabs(g * wv);
                r.dw[wo] += g * xv;
                r.dws[wo] += std::fabs(g * xv);
              }
            }
        }
  return r;
}

// misalign > 0 places every tensor that many floats past a 16-byte boundary (the loaders'
// and epilogues' float4 paths must then be off).
void check_conv(const Options& opt, Report& rep, const ConvCase& t, MathMode mode, uint64_t seed, size_t misalign = 0) {
  const imagerate::Conv2dParams cp = cpu_params(t);
  const imagerate::cuda::Conv2dParams gp = gpu_params(cp);
  const std::string tag = fmt("n%lld c%lld %lldx%lld k%lld %lldx%lld s%lld,%lld p%lld,%lld d%lld,%lld %s%s",
                              (long long)t.n, (long long)t.c, (long long)t.h, (long long)t.w, (long long)t.k,
                              (long long)t.r, (long long)t.s, (long long)t.sh, (long long)t.sw, (long long)t.ph,
                              (long long)t.pw, (long long)t.dh, (long long)t.dw, mode_str(mode),
                              misalign ? " misaligned" : "");
  if (!rep.wants("conv fwd+bias+relu " + tag) && !rep.wants("conv bwd-data " + tag) &&
      !rep.wants("conv bwd-filter " + tag) && !rep.wants("conv bwd-bias " + tag))
    return;
  (void)opt;
  Rng rng(seed);
  const size_t xs = (size_t)(cp.n * cp.c * cp.h * cp.w), ws = (size_t)(cp.k * cp.c * cp.r * cp.s);
  const size_t ys = (size_t)(cp.n * cp.k * cp.p * cp.q);
  const std::vector<float> x = rng.vec(xs), w = rng.vec(ws), dy = rng.vec(ys), bias = rng.vec((size_t)cp.k);
  const ConvRef ref = conv_reference(cp, x, w, dy);
  const int64_t crs = cp.c * cp.r * cp.s, krs = cp.k * cp.r * cp.s, npq = cp.n * cp.p * cp.q;
  DevBuf<float> dx_in(x, misalign), dw_in(w, misalign), ddy(dy, misalign), dbias(bias, misalign);

  {  // forward, with and without bias, and the fused bias + ReLU
    std::vector<float> nanfill(ys, NAN);
    DevBuf<float> dyo(nanfill, misalign);
    if (!launched(rep, "conv fwd " + tag,
                  imagerate::cuda::conv2d_fwd(gp, dx_in.get(), dw_in.get(), nullptr, dyo.get(), mode, nullptr)))
      return;
    compare_bound(rep, "conv fwd " + tag, dyo.download(), ref.y, ref.ys, mode_tolerance(mode, crs),
                  mode_atol(mode, crs));
    CK(imagerate::cuda::conv2d_fwd(gp, dx_in.get(), dw_in.get(), dbias.get(), dyo.get(), mode, nullptr));
    std::vector<double> yb(ys), ybs(ys), yr(ys);
    const int64_t pq = cp.p * cp.q;
    for (size_t i = 0; i < ys; ++i) {
      const int64_t k = ((int64_t)i / pq) % cp.k;
      yb[i] = ref.y[i] + bias[(size_t)k];
      ybs[i] = ref.ys[i] + std::fabs(bias[(size_t)k]);
      yr[i] = yb[i] < 0 ? 0.0 : yb[i];
    }
    compare_bound(rep, "conv fwd+bias " + tag, dyo.download(), yb, ybs, mode_tolerance(mode, crs + 1),
                  mode_atol(mode, crs));
    CK(imagerate::cuda::conv2d_fwd_bias_relu(gp, dx_in.get(), dw_in.get(), dbias.get(), dyo.get(), mode, nullptr));
    compare_bound(rep, "conv fwd+bias+relu " + tag, dyo.download(), yr, ybs, mode_tolerance(mode, crs + 1),
                  mode_atol(mode, crs));
    if (mode == MathMode::FP32) {  // the CPU kernel agrees too (both fp32)
      std::vector<float> cpu(ys);
      imagerate::conv2d_fwd(cp, x.data(), w.data(), bias.data(), cpu.data());
      CK(imagerate::cuda::conv2d_fwd(gp, dx_in.get(), dw_in.get(), dbias.get(), dyo.get(), mode, nullptr));
      std::vector<double> cref(cpu.begin(), cpu.end());
      compare_bound(rep, "conv fwd+bias vs cpu " + tag, dyo.download(), cref, ybs,
                    2 * mode_tolerance(mode, crs + 1), 1e-30);
    }
  }
  {  // backward data
    std::vector<float> nanfill(xs, NAN);
    DevBuf<float> ddx(nanfill, misalign);
    if (!launched(rep, "conv bwd-data " + tag,
                  imagerate::cuda::conv2d_bwd_data(gp, ddy.get(), dw_in.get(), ddx.get(), mode, nullptr)))
      return;
    compare_bound(rep, "conv bwd-data " + tag, ddx.download(), ref.dx, ref.dxs, mode_tolerance(mode, krs),
                  mode_atol(mode, krs));
  }
  {  // backward filter + bias gradient
    std::vector<float> nanfill(ws, NAN), nanb((size_t)cp.k, NAN);
    DevBuf<float> ddw(nanfill, misalign), ddb(nanb, misalign);
    if (!launched(rep, "conv bwd-filter " + tag,
                  imagerate::cuda::conv2d_bwd_filter(gp, dx_in.get(), ddy.get(), ddw.get(), ddb.get(), mode, nullptr)))
      return;
    compare_bound(rep, "conv bwd-filter " + tag, ddw.download(), ref.dw, ref.dws, mode_tolerance(mode, npq),
                  mode_atol(mode, npq));
    std::vector<double> dbs((size_t)cp.k, 0.0);
    const int64_t pq = cp.p * cp.q;
    for (size_t i = 0; i < ys; ++i) dbs[(size_t)(((int64_t)i / pq) % cp.k)] += std::fabs(dy[i]);
    // db is summed in double and rounded once: within a float rounding of the exact sum.
    compare_bound(rep, "conv bwd-bias " + tag, ddb.download(), ref.db, dbs, 1e-6, 1e-30);
  }
}

}  // namespace

void validate_conv(const Options& opt, Report& rep) {
  std::vector<ConvCase> cases = {
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},     {2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1},
      {3, 4, 11, 10, 6, 3, 2, 2, 2, 1, 0, 2, 1},   {2, 8, 4, 4, 12, 1, 1, 1, 1, 0, 0, 1, 1},
      {2, 8, 5, 3, 12, 1, 1, 1, 1, 0, 0, 1, 1},    {2, 16, 9, 9, 8, 1, 1, 2, 2, 0, 0, 1, 1},
      {4, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1},   {2, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1},
      {2, 16, 14, 14, 32, 3, 3, 2, 2, 1, 1, 1, 1}, {8, 8, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1},
      {2, 3, 17, 17, 70, 7, 7, 2, 2, 3, 3, 1, 1},  {1, 130, 6, 6, 129, 3, 3, 1, 1, 1, 1, 1, 1},
      {2, 5, 6, 7, 3, 3, 3, 3, 2, 2, 1, 1, 2},     {9, 16, 32, 32, 136, 3, 3, 1, 1, 1, 1, 1, 1},
      {9, 136, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1}, {4, 64, 8, 8, 132, 1, 1, 1, 1, 0, 0, 1, 1},
      // bwd-filter split-K with a ragged last chunk whose edges fall inside an image (PQ = 437,
      // chunks of 440 / 448 k): scalar paths; and the same for the pointwise float4 paths
      // (PQ = 196, chunks of 496 / 512 of N*P*Q = 980).
      {3, 5, 23, 19, 7, 3, 3, 1, 1, 1, 1, 1, 1},   {5, 12, 14, 14, 20, 1, 1, 1, 1, 0, 0, 1, 1},
  };
  // Misaligned pointers: the pointwise case (float4 everywhere when aligned) and a general one.
  const std::vector<ConvCase> misaligned = {{2, 8, 4, 4, 12, 1, 1, 1, 1, 0, 0, 1, 1},
                                            {2, 16, 14, 14, 32, 3, 3, 2, 2, 1, 1, 1, 1}};
  if (opt.quick) cases = {cases[1], cases[2], cases[3], cases[9], cases[16]};
  uint64_t seed = 1000;
  for (MathMode mode : kMathModes) {
    for (const ConvCase& t : cases) check_conv(opt, rep, t, mode, seed++);
    for (const ConvCase& t : misaligned) check_conv(opt, rep, t, mode, seed++, 1);
  }
}

}  // namespace harness
