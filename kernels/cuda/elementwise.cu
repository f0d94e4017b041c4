// elementwise.cu: pointwise and per-channel kernels of kernels.cuh (bias add/grad, ReLU,
// add/mul/axpby/scale/fill/copy, inverted dropout, sum-of-squares check), same math as
// kernels/cpu/elementwise.cc.
//
// Thread mapping: grid-stride loops, one element per thread per step (int64 indices, grid
// capped by grid_for). Every kernel reads element i before writing element i, so y may alias
// an input, as on the CPU.
// Rounding: products and sums are written with __fmul_rn / __fadd_rn where the CPU code has
// a separate multiply and add, so the compiler cannot fuse them into an FMA: axpby, scale and
// dropout give the CPU's bits exactly.
// Reductions (bias_grad, sumsq_check) accumulate in double and combine partial sums in an
// order fixed by the shape (channel_reduce.cuh; sumsq: fixed blocks, then one block in order),
// so they are deterministic.
// Dropout: mask[i] from splitmix64(seed + (i+1) * 0x9E3779B97F4A7C15), keep iff
// (h >> 40) / 2^24 >= p: bit-identical to the CPU mask.
#include <cuda_runtime.h>

#include "channel_reduce.cuh"
#include "common.cuh"
#include "kernels.cuh"

namespace imagerate {
namespace cuda {
namespace {

using detail::grid_for;
using detail::launch_status;

constexpr int kThreads = 256;

#define GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

__global__ void bias_add_kernel(int64_t total, int64_t ch, int64_t inner, const float* x, const float* b, float* y) {
  GRID_STRIDE(i, total) { y[i] = x[i] + __ldg(b + (i / inner) % ch); }
}
__global__ void relu_fwd_kernel(int64_t n, const float* x, float* y) {
  GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = v < 0.f ? 0.f : v;  // NaN stays NaN
  }
}
__global__ void relu_bwd_kernel(int64_t n, const float* y, const float* dy, float* dx) {
  GRID_STRIDE(i, n) { dx[i] = y[i] > 0.f ? dy[i] : 0.f; }
}
__global__ void add_kernel(int64_t n, const float* a, const float* b, float* y) {
  GRID_STRIDE(i, n) { y[i] = __fadd_rn(a[i], b[i]); }
}
__global__ void mul_kernel(int64_t n, const float* a, const float* b, float* y) {
  GRID_STRIDE(i, n) { y[i] = __fmul_rn(a[i], b[i]); }
}
__global__ void axpby_kernel(int64_t n, float alpha, const float* x, float beta, float* y) {
  if (beta == 0.f) {
    GRID_STRIDE(i, n) { y[i] = __fmul_rn(alpha, x[i]); }
  } else {
    GRID_STRIDE(i, n) { y[i] = __fadd_rn(__fmul_rn(alpha, x[i]), __fmul_rn(beta, y[i])); }
  }
}
__global__ void scale_kernel(int64_t n, float alpha, const float* x, float* y) {
  GRID_STRIDE(i, n) { y[i] = __fmul_rn(alpha, x[i]); }
}
__global__ void fill_kernel(int64_t n, float v, float* y) {
  GRID_STRIDE(i, n) { y[i] = v; }
}

__device__ __forceinline__ uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__global__ void dropout_kernel(int64_t n, float p, float keep_scale, uint64_t seed_arg, const uint32_t* seed_dev,
                               const float* x, float* mask, float* y) {
  const uint64_t seed = seed_dev ? (uint64_t)*seed_dev : seed_arg;
  GRID_STRIDE(i, n) {
    const uint64_t h = splitmix64(seed + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull);
    const float u = __fmul_rn((float)(h >> 40), 1.0f / 16777216.0f);
    const float m = u >= p ? keep_scale : 0.f;
    const float xi = x[i];  // read before writing: x may alias mask or y
    mask[i] = m;
    y[i] = __fmul_rn(xi, m);
  }
}

// sumsq: blocks of a fixed count (by size) each sum a contiguous range; one block then adds
// the partials in order.
__global__ void __launch_bounds__(256) sumsq_partial(int64_t n, int64_t chunk, const float* x, double* part) {
  __shared__ double red[32];
  const int64_t b = blockIdx.x * chunk, e = min(n, b + chunk);
  double s = 0.0, bad = 0.0;
  for (int64_t i = b + threadIdx.x; i < e; i += blockDim.x) {
    const float v = x[i];
    s += (double)v * (double)v;
    bad += isfinite(v) ? 0.0 : 1.0;
  }
  s = detail::block_sum(s, red);
  bad = detail::block_sum(bad, red);
  if (threadIdx.x == 0) {
    part[2 * blockIdx.x] = s;
    part[2 * blockIdx.x + 1] = bad;
  }
}
__global__ void sumsq_final(int nblocks, const double* part, double* out) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  double s = 0.0, bad = 0.0;
  for (int k = 0; k < nblocks; ++k) {
    s += part[2 * k];
    bad += part[2 * k + 1];
  }
  out[0] = s;
  out[1] = bad;
}
__global__ void zero2(double* out) {
  out[0] = 0.0;
  out[1] = 0.0;
}

struct BiasGradOp {
  static constexpr int kOut = 1;
  const float* dy;
  float* db;
  __device__ __forceinline__ void accumulate(int64_t idx, int, double (&acc)[1]) const { acc[0] += dy[idx]; }
  __device__ __forceinline__ void finish(int c, const double (&s)[1]) const { db[c] = (float)s[0]; }
};

}  // namespace

cudaError_t bias_add(int64_t outer, int64_t ch, int64_t inner, const float* x, const float* b,
                     float* y, cudaStream_t stream) {
  const int64_t total = outer * ch * inner;
  if (total <= 0) return cudaSuccess;
  bias_add_kernel<<<grid_for(total, kThreads, 4), kThreads, 0, stream>>>(total, ch, inner, x, b, y);
  return launch_status();
}

cudaError_t bias_grad(int64_t outer, int64_t ch, int64_t inner, const float* dy, float* db,
                      cudaStream_t stream) {
  if (ch <= 0) return cudaSuccess;
  if (outer <= 0 || inner <= 0) return cudaMemsetAsync(db, 0, (size_t)ch * sizeof(float), stream);
  return detail::channel_reduce(detail::ChannelShape{outer, ch, inner}, BiasGradOp{dy, db}, stream);
}

cudaError_t relu_fwd(int64_t n, const float* x, float* y, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  relu_fwd_kernel<<<grid_for(n, kThreads, 4), kThreads, 0, stream>>>(n, x, y);
  return launch_status();
}

cudaError_t relu_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  relu_bwd_kernel<<<grid_for(n, kThreads, 4), kThreads, 0, stream>>>(n, y, dy, dx);
  return launch_status();
}

cudaError_t add_f32(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  add_kernel<<<grid_for(n, kThreads, 4), kThreads, 0, stream>>>(n, a, b, y);
  return launch_status();
}

cudaError_t mul_f32(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  mul_kernel<<<grid_for(n, kThreads, 4), kThreads, 0, stream>>>(n, a, b, y);
  return launch_status();
}

cudaError_t axpby_f32(int64_t n, float alpha, const float* x, float beta, float* y, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  axpby_kernel<<<grid_for(n, kThreads, 4), kThreads, 0, stream>>>(n, alpha, x, beta, y);
  return launch_status();
}

cudaError_t scale_f32(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  scale_kernel<<<grid_for(n, kThreads, 4), kThreads, 0, stream>>>(n, alpha, x, y);
  return launch_status();
}

cudaError_t fill_f32(int64_t n, float value, float* y, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  fill_kernel<<<grid_for(n, kThreads, 4), kThreads, 0, stream>>>(n, value, y);
  return launch_status();
}

cudaError_t copy_f32(int64_t n, const float* x, float* y, cudaStream_t stream) {
  if (n <= 0 || x == y) return cudaSuccess;
  return cudaMemcpyAsync(y, x, (size_t)n * sizeof(float), cudaMemcpyDeviceToDevice, stream);
}

static cudaError_t launch_dropout(int64_t n, float p, uint64_t seed, const uint32_t* seed_dev, const float* x,
                                  float* mask, float* y, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const float keep_scale = p < 1.f ? 1.f / (1.f - p) : 0.f;  // host float math = the CPU's
  dropout_kernel<<<grid_for(n, kThreads, 4), kThreads, 0, stream>>>(n, p, keep_scale, seed, seed_dev, x, mask, y);
  return launch_status();
}

cudaError_t dropout_fwd(int64_t n, float p, uint64_t seed, const float* x, float* mask, float* y,
                        cudaStream_t stream) {
  return launch_dropout(n, p, seed, nullptr, x, mask, y, stream);
}

cudaError_t dropout_fwd_device_seed(int64_t n, float p, const uint32_t* seed, const float* x, float* mask, float* y,
                                    cudaStream_t stream) {
  return launch_dropout(n, p, 0, seed, x, mask, y, stream);
}

cudaError_t sumsq_check(int64_t n, const float* x, double* out, cudaStream_t stream) {
  if (n <= 0) {
    zero2<<<1, 1, 0, stream>>>(out);
    return launch_status();
  }
  int64_t nblocks = detail::div_up(n, 1 << 16);  // ~64K elements per block, by size only
  if (nblocks > 4096) nblocks = 4096;
  const int64_t chunk = detail::div_up(n, nblocks);
  nblocks = detail::div_up(n, chunk);
  detail::Scratch part((size_t)nblocks * 2 * sizeof(double), stream);
  if (part.status() != cudaSuccess) return part.status();
  sumsq_partial<<<(unsigned)nblocks, 256, 0, stream>>>(n, chunk, x, part.as<double>());
  cudaError_t e = launch_status();
  if (e != cudaSuccess) return e;
  sumsq_final<<<1, 32, 0, stream>>>((int)nblocks, part.as<double>(), out);
  return launch_status();
}

}  // namespace cuda
}  // namespace imagerate
