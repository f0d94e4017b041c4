// common.cuh: small helpers shared by the kernels/cuda/*.cu files (not part of the public API,
// which is kernels.cuh): launch-size arithmetic, the post-launch error check, the per-device
// attribute cache, a stream-ordered scratch buffer, and block-wide reductions in double.
//
// Conventions used by every .cu file here:
//   * an entry point returns early with cudaSuccess on an empty problem, launches, and returns
//     launch_status() (cudaGetLastError()), never synchronises, prints or exits;
//   * sizes that a kernel indexes with 32-bit ints are checked on the host (fits_i32) and
//     rejected with cudaErrorInvalidValue instead of overflowing; element offsets into large
//     tensors are formed in int64;
//   * grid-stride loops use int64 indices, so any n works with a bounded grid.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels.cuh"

namespace imagerate {
namespace cuda {
namespace detail {

constexpr int kMaxGridX = 1 << 30;  // grid-stride kernels never need more blocks than this

inline int64_t div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline bool fits_i32(int64_t v) { return v >= 0 && v <= INT32_MAX; }
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Blocks for a grid-stride loop over n items with `threads` per block, `per_thread` items each.
inline unsigned grid_for(int64_t n, int threads, int per_thread = 1) {
  int64_t b = div_up(n, (int64_t)threads * per_thread);
  if (b < 1) b = 1;
  if (b > 65536 * 8) b = 65536 * 8;  // plenty to fill any GPU; the loops stride over the rest
  return (unsigned)b;
}

// The status to return after one or more launches. It also clears the error slot, which
// matters for the non-sticky errors (a bad launch configuration, out of memory); a sticky one
// (an illegal address) has lost the context and stays.
inline cudaError_t launch_status() { return cudaGetLastError(); }

// Compute capability (major*10+minor) and SM count of the current device, cached per device.
struct DeviceInfo {
  int cc = 0;
  int sms = 0;
};
cudaError_t current_device_info(DeviceInfo* out);  // defined in gemm.cu
// Whether GEMM and conv run the wgmma main loop on this device: set_use_wgmma(true) and
// wgmma_runs_on (an sm_90a build on a compute capability 9.0 device). Both in gemm.cu.
bool wgmma_runs_on(const DeviceInfo& di);
bool use_wgmma_on(const DeviceInfo& di);

// A stream-ordered scratch allocation, freed (stream-ordered) when it goes out of scope.
// Every use is enqueued on `stream` between the allocation and the free, so the memory is
// valid for the kernels launched in between, even though the host returns at once.
class Scratch {
 public:
  Scratch(size_t bytes, cudaStream_t stream) : stream_(stream) {
    if (bytes == 0) bytes = 16;
    err_ = cudaMallocAsync(&ptr_, bytes, stream);
    if (err_ != cudaSuccess) ptr_ = nullptr;
  }
  ~Scratch() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  cudaError_t status() const { return err_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
  cudaError_t err_ = cudaSuccess;
};

// ------------------------------------------------------------ device-side helpers
#ifdef __CUDACC__

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024). The result is valid in
// thread 0 only. The order of additions is fixed by the thread layout, so it is deterministic.
// `sh` must hold 32 doubles. Ends with a barrier, so `sh` may be reused right after.
__device__ __forceinline__ double block_sum(double v, double* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  double r = 0.0;
  if (warp == 0) {
    r = lane < nw ? sh[lane] : 0.0;
    r = warp_sum(r);
  }
  __syncthreads();
  return r;
}

#endif  // __CUDACC__

}  // namespace detail
}  // namespace cuda
}  // namespace imagerate
