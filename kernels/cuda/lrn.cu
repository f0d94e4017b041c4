// lrn.cu: local response normalisation across channels, TensorFlow's tf.nn.lrn, forward and
// backward (kernels.cuh); the math of kernels/cpu/lrn.cc:
//   s[k]  = bias + alpha * sum_{k' = max(0, k-r)}^{min(C-1, k+r)} x[k']^2      (written to `scale`)
//   y[k]  = x[k] * s[k]^-beta
//   dx[k] = dy[k] * s[k]^-beta - 2 * alpha * beta * x[k] * sum_{k' in window(k)} dy[k'] * y[k'] / s[k']
// Layout [n, c, hw]; one thread per element (n, k, j), grid-stride, consecutive threads on
// consecutive j (coalesced across the channel walk). Each thread sums its window directly in
// double (no running sums, as the CPU), evaluates s^-beta in double (sqrt forms for beta = 0.5,
// 0.75, 1; pow otherwise) and rounds once. The backward recomputes dy*y/s of the window's
// channels from the float `scale` the forward wrote, in the CPU's expression order.
#include <cuda_runtime.h>

#include <cmath>

#include "common.cuh"
#include "kernels.cuh"

namespace imagerate {
namespace cuda {
namespace {

__device__ __forceinline__ double pow_neg(double s, double beta, int kind) {
  switch (kind) {
    case 0: return 1.0 / sqrt(s);
    case 1: {
      const double r = sqrt(s);
      return 1.0 / (r * sqrt(r));
    }
    case 2: return 1.0 / s;
    default: return pow(s, -beta);
  }
}

int pow_kind(float beta) {
  if (beta == 0.5f) return 0;
  if (beta == 0.75f) return 1;
  if (beta == 1.0f) return 2;
  return 3;
}

__global__ void lrn_fwd_kernel(int64_t n, int64_t c, int64_t hw, int64_t radius, float bias, float alpha, float beta,
                               int kind, const float* x, float* y, float* scale) {
  const int64_t total = n * c * hw;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t j = idx % hw, k = (idx / hw) % c, img = idx / (hw * c);
    const int64_t base = img * c * hw + j;
    const int64_t lo = k - radius < 0 ? 0 : k - radius, hi = k + radius > c - 1 ? c - 1 : k + radius;
    double acc = 0.0;
    for (int64_t kk = lo; kk <= hi; ++kk) {
      const double v = x[base + kk * hw];
      acc += v * v;
    }
    const double s = (double)bias + (double)alpha * acc;
    const float xi = x[idx];
    scale[idx] = (float)s;
    y[idx] = (float)((double)xi * pow_neg(s, beta, kind));
  }
}

__global__ void lrn_bwd_kernel(int64_t n, int64_t c, int64_t hw, int64_t radius, float alpha, float beta, int kind,
                               const float* x, const float* y, const float* scale, const float* dy, float* dx) {
  const int64_t total = n * c * hw;
  const double coef = 2.0 * (double)alpha * (double)beta;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t j = idx % hw, k = (idx / hw) % c, img = idx / (hw * c);
    const int64_t base = img * c * hw + j;
    const int64_t lo = k - radius < 0 ? 0 : k - radius, hi = k + radius > c - 1 ? c - 1 : k + radius;
    double acc = 0.0;
    for (int64_t kk = lo; kk <= hi; ++kk) {
      const int64_t o = base + kk * hw;
      acc += (double)dy[o] * (double)y[o] / (double)scale[o];
    }
    const double pw = pow_neg((double)scale[idx], beta, kind);
    dx[idx] = (float)((double)dy[idx] * pw - coef * (double)x[idx] * acc);
  }
}

}  // namespace

cudaError_t lrn_fwd(int64_t n, int64_t c, int64_t hw, int64_t radius, float bias, float alpha, float beta,
                    const float* x, float* y, float* scale, cudaStream_t stream) {
  const int64_t total = n * c * hw;
  if (total <= 0) return cudaSuccess;
  lrn_fwd_kernel<<<detail::grid_for(total, 256, 2), 256, 0, stream>>>(n, c, hw, radius, bias, alpha, beta,
                                                                      pow_kind(beta), x, y, scale);
  return detail::launch_status();
}

cudaError_t lrn_bwd(int64_t n, int64_t c, int64_t hw, int64_t radius, float bias, float alpha, float beta,
                    const float* x, const float* y, const float* scale, const float* dy, float* dx,
                    cudaStream_t stream) {
  (void)bias;  // s = bias + alpha * sum x^2 arrives precomputed in `scale`
  const int64_t total = n * c * hw;
  if (total <= 0) return cudaSuccess;
  lrn_bwd_kernel<<<detail::grid_for(total, 256, 2), 256, 0, stream>>>(n, c, hw, radius, alpha, beta,
                                                                      pow_kind(beta), x, y, scale, dy, dx);
  return detail::launch_status();
}

}  // namespace cuda
}  // namespace imagerate
