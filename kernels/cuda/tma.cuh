// tma.cuh: the Hopper (sm_90a) tensor-memory-accelerator copy and the shared-memory barrier
// that signals its arrival, one inline-PTX statement per function (the CPU emulator,
// native/harness/emu, replaces each statement by its documented meaning; transform.py matches
// them exactly). gemm_tile.cuh's wgmma_tma_kernel is their one user.
//
// cp.async.bulk.tensor (PTX ISA 9.7.9.25) copies a box of a tensor from global to shared memory
// without the threads: the box is described by a *tensor map* (Map below; built on the host by
// the driver's cuTensorMapEncodeTiled, tma.cu), issued by one thread, and its arrival is
// counted in bytes on an mbarrier (PTX ISA 9.7.13.15) in shared memory:
//   mbar_init(bar, n)         a barrier for n arriving threads per phase (phase 0 running)
//   fence_mbar_init()         makes the initialised barriers visible to the async proxy (the
//                             copy engine); then a __syncthreads() publishes them to the block
//                             (init_barriers does the three for one-arrival barriers)
//   mbar_expect_tx(bar, b)    the calling thread arrives, and the current phase will also wait
//                             for b bytes of copies to complete on it
//   load_2d(dst, map, c0, c1, bar)  copy the box at coordinates (c0 innermost, c1) of the map's
//                             tensor to shared memory at dst; elements outside the tensor are
//                             written as zeros; the bytes complete on `bar`
//   mbar_try_wait(bar, p)     whether the phase of parity p has completed (p = the number of
//                             phases completed before it, mod 2); mbar_wait spins on it
// A thread that has seen the phase complete sees the copied bytes with ordinary loads.
// Shared memory that ordinary stores then modify must be fenced again (wgmma.cuh's
// fence_proxy_async) before the tensor core reads it.
//
// Addresses: bar and dst are shared-window byte addresses (wg::smem_addr); bar 8-byte aligned,
// dst 128-byte aligned. The map is a kernel parameter declared `const __grid_constant__`, so
// its generic address is valid for the copy.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "wgmma.cuh"

namespace imagerate {
namespace cuda {
namespace tma {

// The driver's CUtensorMap: 128 opaque bytes (cuda.h's CUtensorMap_st; the driver asks for
// 64-byte alignment, CUDA 13's header declares 128).
struct alignas(128) Map {
  unsigned long long opaque[16];
};

#if IMAGERATE_WGMMA

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void fence_mbar_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.b32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  while (!mbar_try_wait(bar, parity)) {
  }
}
// The prologue of a kernel that waits on copies: thread 0 (tid) initialises `count` barriers,
// 8 bytes apart from `bars`, for one arrival each (the thread that issues the copies) and
// fences them for the copy engine; the block barrier then publishes them to every thread.
__device__ __forceinline__ void init_barriers(uint32_t bars, int count, int tid) {
  if (tid == 0) {
    for (int s = 0; s < count; ++s) mbar_init(bars + 8 * s, 1);
    fence_mbar_init();
  }
  __syncthreads();
}
__device__ __forceinline__ void load_2d(uint32_t dst, const Map* map, int c0, int c1, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
      ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}

#endif  // IMAGERATE_WGMMA

}  // namespace tma

// Host side (tma.cu): fills *out with the tensor map of a row-major fp32 matrix of `rows` x
// `cols` (row stride ld elements) for boxes of box_rows x box_cols, no swizzle, zero fill out
// of bounds. False when the driver has no cuTensorMapEncodeTiled or refuses the arguments (the
// caller then uses a kernel that loads through registers).
bool tma_encode_f32_2d(tma::Map* out, const float* base, int64_t rows, int64_t cols, int64_t ld, int box_rows,
                       int box_cols);

}  // namespace cuda
}  // namespace imagerate
