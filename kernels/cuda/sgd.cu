// sgd.cu: SGD with momentum, weight decay and optional Nesterov (kernels.cuh), PyTorch's
// torch.optim.SGD with dampening 0, as kernels/cpu/sgd.cc:
//   g' = g + wd * w;  v = momentum * v + g';  w -= lr * (nesterov ? g' + momentum * v : v).
// momentum == 0 writes v = g' without reading v (an uninitialised buffer cannot inject NaN).
// Every product and sum is a separately rounded float op (__fmul_rn / __fadd_rn), like the
// CPU code, so the GPU update is bit-identical to the CPU one. One thread per element,
// grid-stride.
// sgd_momentum_update_device_lr reads lr from device memory when the kernel runs, so a
// training step captured into a CUDA graph (src/train/graph-step.ts) takes each step's
// learning rate from a buffer the host rewrites between replays.
#include <cuda_runtime.h>

#include "common.cuh"
#include "kernels.cuh"

namespace imagerate {
namespace cuda {
namespace {

__global__ void sgd_kernel(int64_t n, float lr_arg, const float* lr_dev, float momentum, float wd, int nesterov,
                           float* w, const float* g, float* v) {
  const float lr = lr_dev ? *lr_dev : lr_arg;
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

cudaError_t launch_sgd(int64_t n, float lr, const float* lr_dev, float momentum, float weight_decay, bool nesterov,
                       float* w, const float* g, float* v, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  sgd_kernel<<<detail::grid_for(n, 256, 4), 256, 0, stream>>>(n, lr, lr_dev, momentum, weight_decay, nesterov ? 1 : 0,
                                                               w, g, v);
  return detail::launch_status();
}

}  // namespace

cudaError_t sgd_momentum_update(int64_t n, float lr, float momentum, float weight_decay, bool nesterov, float* w,
                                const float* g, float* v, cudaStream_t stream) {
  return launch_sgd(n, lr, nullptr, momentum, weight_decay, nesterov, w, g, v, stream);
}

cudaError_t sgd_momentum_update_device_lr(int64_t n, const float* lr, float momentum, float weight_decay,
                                          bool nesterov, float* w, const float* g, float* v, cudaStream_t stream) {
  return launch_sgd(n, 0.f, lr, momentum, weight_decay, nesterov, w, g, v, stream);
}

}  // namespace cuda
}  // namespace imagerate
