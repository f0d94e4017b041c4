// softmax_xent.cu: softmax + cross-entropy with label smoothing, forward and backward
// (kernels.cuh); the math of kernels/cpu/softmax_xent.cc.
//
// Layout: logits/probs/dlogits [N, C] row-major, labels int32 [N], loss [N];
// targets t_ij = (1 - eps) * [j == label_i] + eps / C.
// Forward, one block per row (grid-stride over rows), in double like the CPU:
//   m = max_j x_j (float); s = sum_j exp(x_j - m); logZ = m + log(s);
//   probs_j = (float)((double)(float)exp(x_j - m) * (1 / s))   (as the CPU: exp rounded to
//   float first, then scaled by the double reciprocal of s);
//   loss = (1 - eps) * (logZ - x_label) + eps * (logZ - mean_j x_j).
// The sums use a fixed block tree (deterministic); the CPU sums left to right, so the last
// bits of s may differ. probs may alias logits: every read of x happens before the barrier
// that precedes the writes.
// Backward, one block per row: dlogits_ij = scale * (probs_ij - t_ij) in float, the label
// probability read (and a barrier passed) before any write, so dlogits may alias probs.
// A label outside [0, C) gives a NaN loss (probs still written) / a NaN row of dlogits and is
// counted by the row's thread 0 in the fault slot (kernels.cuh, "Faults"); the CPU kernel
// throws after doing the same, which a kernel cannot do, so the addon raises it from the slot.
#include <cuda_runtime.h>

#include <cmath>

#include "common.cuh"
#include "kernels.cuh"

namespace imagerate {
namespace cuda {
namespace {

constexpr int kThreads = 256;

// Counts bad row i, its label y, in `fault` (kernels.cuh, "Faults"); one thread per row calls it.
__device__ __forceinline__ void count_bad_label(uint32_t* fault, int64_t i, int32_t y, int64_t C) {
  if (!fault) return;
  const uint32_t key = (uint32_t)y ^ 0x80000000u;  // orders as the int32 labels do
  atomicAdd(&fault[0], 1u);
  atomicMax(&fault[1], ~(uint32_t)i);
  atomicMax(&fault[2], (uint32_t)C);
  atomicMax(&fault[3], key);
  atomicMax(&fault[4], ~key);
}

__device__ __forceinline__ float block_max(float v, float* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  float r = sh[0];
  for (int k = 1; k < (int)(blockDim.x >> 5); ++k) r = fmaxf(r, sh[k]);
  __syncthreads();
  return r;
}

__global__ void __launch_bounds__(kThreads) xent_fwd(int64_t N, int64_t C, float eps, const float* logits,
                                                     const int32_t* labels, float* probs, float* loss,
                                                     uint32_t* fault) {
  __shared__ float shf[32];
  __shared__ double shd[32];
  for (int64_t i = blockIdx.x; i < N; i += gridDim.x) {
    const float* x = logits + i * C;
    float* pr = probs + i * C;
    const int32_t y = labels[i];
    const bool bad = y < 0 || y >= C;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, x[j]);
    m = block_max(m, shf);
    double s = 0.0, sx = 0.0;
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
      const double xj = x[j];
      s += exp(xj - (double)m);
      sx += xj;
    }
    s = detail::block_sum(s, shd);
    sx = detail::block_sum(sx, shd);
    if (threadIdx.x == 0) {
      shd[0] = s;
      shd[1] = bad ? 0.0 : (double)x[y];
    }
    __syncthreads();  // all reads of x are done (x may alias probs)
    s = shd[0];
    const double x_label = shd[1];
    const double inv_s = 1.0 / s;
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
      const float ex = (float)exp((double)x[j] - (double)m);
      pr[j] = (float)((double)ex * inv_s);
    }
    if (threadIdx.x == 0) {
      const double log_z = (double)m + log(s), e = eps;
      loss[i] = bad ? NAN : (float)((1.0 - e) * (log_z - x_label) + e * (log_z - sx / (double)C));
      if (bad) count_bad_label(fault, i, y, C);
    }
    __syncthreads();  // shd is reused by the next row
  }
}

__global__ void __launch_bounds__(kThreads) xent_bwd(int64_t N, int64_t C, float eps, float scale, const float* probs,
                                                     const int32_t* labels, float* dlogits, uint32_t* fault) {
  const float off = eps / (float)C;    // t_ij for j != label
  const float on = (1.f - eps) + off;  // t_ij for j == label
  for (int64_t i = blockIdx.x; i < N; i += gridDim.x) {
    const float* pr = probs + i * C;
    float* d = dlogits + i * C;
    const int32_t y = labels[i];
    if (y < 0 || y >= C) {
      for (int64_t j = threadIdx.x; j < C; j += blockDim.x) d[j] = NAN;
      if (threadIdx.x == 0) count_bad_label(fault, i, y, C);
      continue;  // uniform over the block: no barrier is skipped by only some threads
    }
    const float p_label = pr[y];
    __syncthreads();  // every thread has read p_label before d (may alias probs) is written
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
      const float t = j == y ? on : off;
      const float pj = j == y ? p_label : pr[j];
      d[j] = __fmul_rn(scale, __fsub_rn(pj, t));
    }
    __syncthreads();  // the next row's reads come after this row's writes
  }
}

unsigned row_grid(int64_t N) { return (unsigned)(N < 65536 * 4 ? N : 65536 * 4); }

}  // namespace

cudaError_t softmax_xent_fwd(int64_t N, int64_t C, float eps, const float* logits, const int32_t* labels,
                             float* probs, float* loss, uint32_t* fault, cudaStream_t stream) {
  if (N <= 0 || C <= 0) return cudaSuccess;
  xent_fwd<<<row_grid(N), kThreads, 0, stream>>>(N, C, eps, logits, labels, probs, loss, fault);
  return detail::launch_status();
}

cudaError_t softmax_xent_bwd(int64_t N, int64_t C, float eps, float scale, const float* probs,
                             const int32_t* labels, float* dlogits, uint32_t* fault, cudaStream_t stream) {
  if (N <= 0 || C <= 0) return cudaSuccess;
  xent_bwd<<<row_grid(N), kThreads, 0, stream>>>(N, C, eps, scale, probs, labels, dlogits, fault);
  return detail::launch_status();
}

}  // namespace cuda
}  // namespace imagerate
