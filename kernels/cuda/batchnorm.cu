// batchnorm.cu: 2-D batch normalisation over NCHW (training forward, evaluation forward,
// backward of the training forward) and the fused BN + ReLU variants (kernels.cuh). Same math
// as kernels/cpu/batchnorm.cc.
//
// Layout: x, y, dy, dx are [outer, ch, inner] (NCHW: outer = N, inner = H*W); per-channel
// vectors are [ch].
// Passes (all on `stream`; per-channel coefficients live in a stream-ordered scratch buffer):
//   training forward  1. per-channel sums of (x - x0) and (x - x0)^2 in double, where x0 is
//                        the channel's first element (a shift that removes the cancellation
//                        of E[x^2] - E[x]^2 when |mean| >> std; channel_reduce.cuh);
//                     2. finish: mean, biased var, invstd = 1/sqrt(var + eps), save_mean/
//                        save_invstd (float), running stats with the unbiased var (m/(m-1)),
//                        and the double coefficients (mean, gamma*invstd);
//                     3. y = (x - mean) * scale + beta in double, rounded once [ReLU].
//   evaluation        coefficients (running_mean, gamma/sqrt(running_var + eps)) per channel,
//                     then the same pointwise pass.
//   backward          1. sums of dy, dy*(x - save_mean), (x - save_mean) in double (dy masked
//                        by y > 0 in the fused ReLU variant);
//                     2. finish: the save_mean rounding correction of the CPU code, dbeta,
//                        dgamma and the dx coefficients;
//                     3. dx = gamma*invstd * ((dy - mean(dy)) - (x - mean) * b), in double.
// Thread mapping: reductions as in channel_reduce.cuh; pointwise passes are grid-stride with
// the channel index (i / inner) % ch. Deterministic (fixed reduction order).
#include <cuda_runtime.h>

#include <cmath>

#include "channel_reduce.cuh"
#include "common.cuh"
#include "kernels.cuh"

namespace imagerate {
namespace cuda {
namespace {

using detail::ChannelShape;
using detail::grid_for;

struct StatsOp {
  static constexpr int kOut = 2;
  const float* x;
  int64_t inner, m;
  float eps, momentum;
  const float* gamma;
  float *save_mean, *save_invstd, *running_mean, *running_var;
  double* coef;  // [ch][2]: mean, gamma * invstd
  __device__ __forceinline__ double shift(int c) const { return x[(int64_t)c * inner]; }  // x[0, c, 0]
  __device__ __forceinline__ void accumulate(int64_t idx, int c, double (&acc)[2]) const {
    const double d = (double)x[idx] - shift(c);
    acc[0] += d;
    acc[1] += d * d;
  }
  __device__ __forceinline__ void finish(int c, const double (&s)[2]) const {
    const double md = (double)m;
    const double d = s[0] / md;
    const double mean = shift(c) + d;
    double var = s[1] / md - d * d;
    if (var < 0.0) var = 0.0;
    const double invstd = 1.0 / sqrt(var + (double)eps);
    const double mom = momentum;
    const double unbias = m > 1 ? md / (double)(m - 1) : (double)NAN;
    save_mean[c] = (float)mean;
    save_invstd[c] = (float)invstd;
    running_mean[c] = (float)((1.0 - mom) * running_mean[c] + mom * mean);
    running_var[c] = (float)((1.0 - mom) * running_var[c] + mom * var * unbias);
    coef[2 * c] = mean;
    coef[2 * c + 1] = (double)gamma[c] * invstd;
  }
};

__global__ void eval_coef(int64_t ch, float eps, const float* gamma, const float* rm, const float* rv, double* coef) {
  const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (c >= ch) return;
  coef[2 * c] = rm[c];
  coef[2 * c + 1] = (double)gamma[c] / sqrt((double)rv[c] + (double)eps);
}

// y = (x - coef.mean) * coef.scale + beta, rounded once; ReLU when `relu`.
__global__ void bn_apply(int64_t total, int64_t ch, int64_t inner, const float* x, const double* coef,
                         const float* beta, float* y, int relu) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = (i / inner) % ch;
    float v = (float)(((double)x[i] - coef[2 * c]) * coef[2 * c + 1] + (double)beta[c]);
    if (relu) v = v < 0.f ? 0.f : v;
    y[i] = v;
  }
}

struct BwdOp {
  static constexpr int kOut = 3;
  const float *x, *y, *dy;  // y non-null: fused ReLU backward (dy masked by y > 0)
  int64_t m;
  const float *gamma, *save_mean, *save_invstd;
  float *dgamma, *dbeta;
  double* coef;  // [ch][4]: k, a, b, mean
  __device__ __forceinline__ float grad(int64_t idx) const {
    return (y && !(y[idx] > 0.f)) ? 0.f : dy[idx];
  }
  __device__ __forceinline__ void accumulate(int64_t idx, int c, double (&acc)[3]) const {
    const double xm = (double)x[idx] - (double)save_mean[c];
    const double g = grad(idx);
    acc[0] += g;
    acc[1] += g * xm;
    acc[2] += xm;
  }
  __device__ __forceinline__ void finish(int c, const double (&s)[3]) const {
    const double md = (double)m;
    const double mean_f = save_mean[c], invstd = save_invstd[c];
    const double sdy = s[0];
    const double delta = s[2] / md, mean = mean_f + delta;
    const double sdyx = s[1] - delta * sdy;  // sum dy * (x - mean)
    dbeta[c] = (float)sdy;
    dgamma[c] = (float)(sdyx * invstd);
    if (coef) {
      coef[4 * c] = (double)gamma[c] * invstd;
      coef[4 * c + 1] = sdy / md;
      coef[4 * c + 2] = sdyx * invstd * invstd / md;
      coef[4 * c + 3] = mean;
    }
  }
};

__global__ void bn_bwd_apply(int64_t total, int64_t ch, int64_t inner, BwdOp op, float* dx) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = (i / inner) % ch;
    const double* k = op.coef + 4 * c;
    const double g = op.grad(i);
    dx[i] = (float)(k[0] * ((g - k[1]) - ((double)op.x[i] - k[3]) * k[2]));
  }
}

cudaError_t fwd_train(int64_t outer, int64_t ch, int64_t inner, float eps, float momentum, const float* x,
                      const float* gamma, const float* beta, float* y, float* save_mean, float* save_invstd,
                      float* running_mean, float* running_var, bool relu, cudaStream_t stream) {
  const int64_t total = outer * ch * inner;
  if (ch <= 0 || total <= 0) return cudaSuccess;
  detail::Scratch coef((size_t)ch * 2 * sizeof(double), stream);
  if (coef.status() != cudaSuccess) return coef.status();
  const StatsOp op{x, inner, outer * inner, eps, momentum, gamma, save_mean, save_invstd,
                   running_mean, running_var, coef.as<double>()};
  cudaError_t e = detail::channel_reduce(ChannelShape{outer, ch, inner}, op, stream);
  if (e != cudaSuccess) return e;
  bn_apply<<<grid_for(total, 256, 4), 256, 0, stream>>>(total, ch, inner, x, coef.as<double>(), beta, y, relu);
  return detail::launch_status();
}

cudaError_t fwd_eval(int64_t outer, int64_t ch, int64_t inner, float eps, const float* x, const float* gamma,
                     const float* beta, const float* rm, const float* rv, float* y, bool relu, cudaStream_t stream) {
  const int64_t total = outer * ch * inner;
  if (ch <= 0 || total <= 0) return cudaSuccess;
  detail::Scratch coef((size_t)ch * 2 * sizeof(double), stream);
  if (coef.status() != cudaSuccess) return coef.status();
  eval_coef<<<(unsigned)detail::div_up(ch, 128), 128, 0, stream>>>(ch, eps, gamma, rm, rv, coef.as<double>());
  cudaError_t e = detail::launch_status();
  if (e != cudaSuccess) return e;
  bn_apply<<<grid_for(total, 256, 4), 256, 0, stream>>>(total, ch, inner, x, coef.as<double>(), beta, y, relu);
  return detail::launch_status();
}

cudaError_t bwd(int64_t outer, int64_t ch, int64_t inner, const float* x, const float* y, const float* dy,
                const float* gamma, const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                float* dbeta, cudaStream_t stream) {
  const int64_t total = outer * ch * inner;
  if (ch <= 0 || total <= 0) return cudaSuccess;
  detail::Scratch coef(dx ? (size_t)ch * 4 * sizeof(double) : 0, stream);
  if (coef.status() != cudaSuccess) return coef.status();
  const BwdOp op{x, y, dy, outer * inner, gamma, save_mean, save_invstd, dgamma, dbeta,
                 dx ? coef.as<double>() : nullptr};
  cudaError_t e = detail::channel_reduce(ChannelShape{outer, ch, inner}, op, stream);
  if (e != cudaSuccess || !dx) return e;
  bn_bwd_apply<<<grid_for(total, 256, 4), 256, 0, stream>>>(total, ch, inner, op, dx);
  return detail::launch_status();
}

}  // namespace

cudaError_t batchnorm2d_fwd_train(int64_t outer, int64_t ch, int64_t inner, float eps, float momentum,
                                  const float* x, const float* gamma, const float* beta, float* y,
                                  float* save_mean, float* save_invstd, float* running_mean,
                                  float* running_var, cudaStream_t stream) {
  return fwd_train(outer, ch, inner, eps, momentum, x, gamma, beta, y, save_mean, save_invstd, running_mean,
                   running_var, false, stream);
}

cudaError_t batchnorm2d_fwd_train_relu(int64_t outer, int64_t ch, int64_t inner, float eps, float momentum,
                                       const float* x, const float* gamma, const float* beta, float* y,
                                       float* save_mean, float* save_invstd, float* running_mean,
                                       float* running_var, cudaStream_t stream) {
  return fwd_train(outer, ch, inner, eps, momentum, x, gamma, beta, y, save_mean, save_invstd, running_mean,
                   running_var, true, stream);
}

cudaError_t batchnorm2d_fwd_eval(int64_t outer, int64_t ch, int64_t inner, float eps, const float* x,
                                 const float* gamma, const float* beta, const float* running_mean,
                                 const float* running_var, float* y, cudaStream_t stream) {
  return fwd_eval(outer, ch, inner, eps, x, gamma, beta, running_mean, running_var, y, false, stream);
}

cudaError_t batchnorm2d_fwd_eval_relu(int64_t outer, int64_t ch, int64_t inner, float eps, const float* x,
                                      const float* gamma, const float* beta, const float* running_mean,
                                      const float* running_var, float* y, cudaStream_t stream) {
  return fwd_eval(outer, ch, inner, eps, x, gamma, beta, running_mean, running_var, y, true, stream);
}

cudaError_t batchnorm2d_bwd(int64_t outer, int64_t ch, int64_t inner, const float* x, const float* dy,
                            const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                            float* dgamma, float* dbeta, cudaStream_t stream) {
  return bwd(outer, ch, inner, x, nullptr, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta, stream);
}

cudaError_t batchnorm2d_bwd_relu(int64_t outer, int64_t ch, int64_t inner, const float* x, const float* y,
                                 const float* dy, const float* gamma, const float* save_mean,
                                 const float* save_invstd, float* dx, float* dgamma, float* dbeta,
                                 cudaStream_t stream) {
  return bwd(outer, ch, inner, x, y, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta, stream);
}

}  // namespace cuda
}  // namespace imagerate
