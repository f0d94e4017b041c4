// wgmma.cuh: the Hopper (sm_90a) warpgroup-MMA instructions that gemm_tile.cuh's wgmma main loop
// uses, one inline-PTX statement per function (the CPU emulator, native/harness/emu, replaces
// each statement by its documented meaning; transform.py matches them exactly).
//
// wgmma.mma_async (PTX ISA 9.7.15) multiplies a 64 x N x K tile on the four warps of a warpgroup
// (128 consecutive threads), reading both operands from shared memory through 64-bit matrix
// descriptors and accumulating into fp32 registers. It is asynchronous:
//   fence()          wgmma.fence: orders the warpgroup's earlier accesses to the accumulator
//                    registers before the next mma_async (needed before the first one, and
//                    whenever the accumulators were touched in between; shared memory needs
//                    fence_proxy_async() instead, below)
//   mma_m64n128()    issue one  D(64 x 128) = A(64 x k) * B(128 x k)^T + (scale_d ? D : 0)
//   commit()         close the issued mma_asyncs into a group
//   wait_all()       wait until every committed group has completed (its D registers are
//                    written and its shared-memory reads done)
//   wait_1()         wait until at most the newest committed group is pending (the TMA loop
//                    keeps one in flight while it prepares the next k tile)
// Shared memory written with ordinary stores must be made visible to the tensor core's "async
// proxy" before it reads it: every writer calls fence_proxy_async() after its stores and before
// the barrier that publishes them. fence_operand() keeps the compiler from moving accesses of
// the accumulator registers across the asynchronous region (it emits no instruction).
//
// Operand layout: no swizzle ("interleave", descriptor layout type 0), both operands K-major
// (a row's k values contiguous; tf32 requires it). The unit is the core matrix: 8 rows x 16
// bytes, stored as 128 contiguous bytes (row r of it at byte 16 r). Core matrices adjacent in
// k are LBO bytes apart (leading-dimension byte offset), adjacent in rows (m or n) SBO bytes
// apart (stride byte offset). Descriptor bits: 0-13 start address >> 4 (shared window),
// 16-29 LBO >> 4, 32-45 SBO >> 4, 49-51 base offset (0), 62-63 swizzle mode (0: none).
// K per instruction: 8 (tf32) or 16 (bf16, fp16), i.e. 32 bytes of each row: two core matrices.
// D fragment (fp32, 64 registers for N = 128): warp w of the warpgroup holds rows 16 w .. 16 w + 15;
// with g = lane / 4 and t = lane % 4, d[4 j + 0], d[4 j + 1] are row 16 w + g, columns 8 j + 2 t
// and 8 j + 2 t + 1, and d[4 j + 2], d[4 j + 3] the same columns of row 16 w + g + 8.
//
// Compiled only for sm_90a (IMAGERATE_WGMMA below): the 'a' target's arch-specific features
// do not exist on other GPUs, and its code runs on compute capability 9.0 only. The host picks
// the wgmma loop only where kernels.cuh's gemm_wgmma_supported() says so.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define IMAGERATE_WGMMA 1
#else
#define IMAGERATE_WGMMA 0
#endif

namespace imagerate {
namespace cuda {
namespace wg {

// Byte address of p in the block's shared-memory window.
__device__ __forceinline__ uint32_t smem_addr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// Matrix descriptor, no swizzle, base offset 0; addr, lbo and sbo multiples of 16 bytes.
__device__ __forceinline__ uint64_t desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return (uint64_t)((addr >> 4) & 0x3FFFu) | ((uint64_t)((lbo >> 4) & 0x3FFFu) << 16) |
         ((uint64_t)((sbo >> 4) & 0x3FFFu) << 32);
}

#if IMAGERATE_WGMMA

#define IMAGERATE_WG_D64 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define IMAGERATE_WG_OUT64(d) \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
  "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
  "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
  "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
  "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
  "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
  "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
__device__ __forceinline__ void wait_1() { asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); }
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void fence_operand(float (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// D (64 x 128, fp32) = A (64 x k) * B (128 x k)^T + (scale_d ? D : 0), both operands from the
// descriptors; k = 8 (TF32) or 16 (BF16, FP16).
template <MathMode MODE>
__device__ __forceinline__ void mma_m64n128(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {
  if constexpr (MODE == MathMode::TF32) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 " IMAGERATE_WG_D64 ", %64, %65, p, 1, 1;\n}\n"
        : IMAGERATE_WG_OUT64(d)
        : "l"(da), "l"(db), "r"(scale_d));
  } else if constexpr (MODE == MathMode::BF16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " IMAGERATE_WG_D64 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
        : IMAGERATE_WG_OUT64(d)
        : "l"(da), "l"(db), "r"(scale_d));
  } else {
    static_assert(MODE == MathMode::FP16, "wgmma: tf32, bf16 or fp16");
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 " IMAGERATE_WG_D64 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
        : IMAGERATE_WG_OUT64(d)
        : "l"(da), "l"(db), "r"(scale_d));
  }
}

#undef IMAGERATE_WG_D64
#undef IMAGERATE_WG_OUT64

#endif  // IMAGERATE_WGMMA

}  // namespace wg
}  // namespace cuda
}  // namespace imagerate
