// sgd.cu: SGD with momentum, weight decay and optional Nesterov (kernels.cuh), PyTorch's
// torch.optim.SGD with dampening 0, as kernels/cpu/sgd.cc:
//   g' = g + wd * w;  v = momentum * v + g';  w -= lr * (nesterov ? g' + momentum * v : v).
// momentum == 0 writes v = g' without reading v (an uninitialised buffer cannot inject NaN).
// Every product and sum is a separately rounded float op (__fmul_rn / __fadd_rn), like the
// CPU code, so the GPU update is bit-identical to the CPU one. One thread per element,
// grid-stride.
#include <cuda_runtime.h>

#include "common.cuh"
#include "kernels.cuh"

namespace imagerate {
namespace cuda {
namespace {

__global__ void sgd_kernel(int64_t n, float lr, float momentum, float wd, int nesterov, float* w, const float* g,
                           float* v) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float wi = w[i];
    const float gd = __fadd_rn(g[i], __fmul_rn(wd, wi));
    if (momentum == 0.f) {
      v[i] = gd;
      w[i] = __fsub_rn(wi, __fmul_rn(lr, gd));
    } else {
      const float vi = __fadd_rn(__fmul_rn(momentum, v[i]), gd);
      v[i] = vi;
      const float upd = nesterov ? __fadd_rn(gd, __fmul_rn(momentum, vi)) : vi;
      w[i] = __fsub_rn(wi, __fmul_rn(lr, upd));
    }
  }
}

}  // namespace

cudaError_t sgd_momentum_update(int64_t n, float lr, float momentum, float weight_decay, bool nesterov, float* w,
                                const float* g, float* v, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  sgd_kernel<<<detail::grid_for(n, 256, 4), 256, 0, stream>>>(n, lr, momentum, weight_decay, nesterov ? 1 : 0, w,
                                                               g, v);
  return detail::launch_status();
}

}  // namespace cuda
}  // namespace imagerate
