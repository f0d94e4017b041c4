// emu.h: a CPU emulator for the CUDA GEMM/conv kernels (kernels/cuda/gemm_tile.cuh and its
// loaders), so that their real source runs, checked, on a machine without a GPU.
//
// Model: a launch runs its blocks one after another. A block's threads are fibers (ucontext)
// on one OS thread; the scheduler runs warp by warp, each warp's lanes in turn, up to the
// next __syncthreads() (block barrier) or warp-collective operation (warp barrier). The order
// of warps and of lanes is forward, reversed, or a fixed shuffle (EMU_ORDER=fwd|rev|shuffle),
// so that a missing barrier shows up as a wrong result under some order.
//   __shared__      static storage (one block at a time)
//   mma.sync        emulated per warp from the PTX ISA fragment tables (9.7.14.5.7/.8):
//                   each lane deposits its fragments, the warp meets, each lane computes its
//                   own D elements from the holders of A(row, k) and B(k, col)
//   cvt             tf32 round-to-nearest ties-away, bf16/fp16 round-to-nearest-even
// Checks (each aborts with the kernel, block, thread and address):
//   __ldg           the address lies in one live device allocation, naturally aligned (16 B
//                   for float4): what a GPU faults on or compute-sanitizer reports
//   float4/float2/uint4 loads and stores through pointers: naturally aligned
//   after each launch: 256-byte guards around every allocation are intact (stray writes)
//   barriers        every thread of a block reaches the same barriers (no divergence)
//   launch config   grid.y, grid.z <= 65535, grid.x < 2^31, 1..1024 threads
// Fresh device memory is filled with NaN bytes (0xFF), so reading what was never written shows.
// Not modelled: timing, caches, bank conflicts, the uninitialised contents of shared memory
// (it is static here, zero at first and then left over from the previous block), and the asm
// text itself: transform.py replaces each cvt/mma asm statement by its documented meaning
// only when the statement reads exactly as expected (operand order included), so a change
// there stops the build instead of being emulated. The mma model sums in double, which is
// more exact than a tensor core; checks compare against bounds, not bits, except the exact
// "gemm rounding" ones whose sums are exact either way.
// Build and run: native/harness/emu/build.sh (g++ only).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

// ------------------------------------------------------------ language keywords
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__

namespace emu {

struct Fiber;
Fiber* current();
const uint3& current_tid();
void syncthreads();
void warp_barrier();
int lane_linear();  // threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)
[[noreturn]] void fault(const char* what, const void* p, size_t bytes);
void check_access(const void* p, size_t bytes, size_t align, bool global_only);

}  // namespace emu

extern uint3 blockIdx;
extern dim3 blockDim, gridDim;
#define threadIdx (::emu::current_tid())
inline void __syncthreads() { emu::syncthreads(); }

// ------------------------------------------------------------ vector types (alignment-checked)
#define EMU_VEC(NAME, T, N, ALIGN, ...)                                                       \
  struct alignas(ALIGN) NAME {                                                                \
    T __VA_ARGS__;                                                                            \
    NAME() = default;                                                                         \
    NAME(const NAME& o) {                                                                     \
      emu::check_access(&o, sizeof(NAME), ALIGN, false);                                      \
      std::memcpy((void*)this, (const void*)&o, sizeof(NAME));                                \
    }                                                                                         \
    NAME& operator=(const NAME& o) {                                                          \
      emu::check_access(this, sizeof(NAME), ALIGN, false);                                    \
      emu::check_access(&o, sizeof(NAME), ALIGN, false);                                      \
      std::memcpy((void*)this, (const void*)&o, sizeof(NAME));                                \
      return *this;                                                                           \
    }                                                                                         \
  };
EMU_VEC(float4, float, 4, 16, x, y, z, w)
EMU_VEC(float2, float, 2, 8, x, y)
EMU_VEC(uint4, unsigned, 4, 16, x, y, z, w)
#undef EMU_VEC
inline float4 make_float4(float x, float y, float z, float w) {
  float4 r;
  r.x = x, r.y = y, r.z = z, r.w = w;
  return r;
}
inline float2 make_float2(float x, float y) {
  float2 r;
  r.x = x, r.y = y;
  return r;
}
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
  uint4 r;
  r.x = x, r.y = y, r.z = z, r.w = w;
  return r;
}

template <class T>
inline T __ldg(const T* p) {
  emu::check_access(p, sizeof(T), sizeof(T) >= 16 ? 16 : sizeof(T), true);
  return *p;
}

template <class T>
inline T min(T a, T b) { return b < a ? b : a; }
template <class T>
inline T max(T a, T b) { return a < b ? b : a; }

// ------------------------------------------------------------ PTX operations
namespace emu {

inline uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
inline float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
// cvt.rna.tf32.f32: nearest, ties away from zero; the low 13 bits are zero.
inline uint32_t cvt_tf32_rna(float x) {
  const uint32_t u = bits(x);
  if (!std::isfinite(x)) return u;
  return (u + 0x1000u) & 0xffffe000u;
}
inline uint16_t cvt_bf16_rn(float x) {
  const uint32_t u = bits(x);
  if (std::isnan(x)) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline uint16_t cvt_f16_rn(float x) {
  const _Float16 h = (_Float16)x;  // round to nearest even (GCC, IEEE binary16 with subnormals)
  uint16_t r;
  std::memcpy(&r, &h, 2);
  return r;
}
// cvt.rn.{bf16x2,f16x2}.f32 d, hi, lo: lo in bits 0..15.
inline uint32_t pack_bf16x2(float lo, float hi) { return (uint32_t)cvt_bf16_rn(lo) | ((uint32_t)cvt_bf16_rn(hi) << 16); }
inline uint32_t pack_f16x2(float lo, float hi) { return (uint32_t)cvt_f16_rn(lo) | ((uint32_t)cvt_f16_rn(hi) << 16); }

// Operand decoding for the emulated tensor core.
inline double dec_tf32(uint32_t u) { return from_bits(u & 0xffffe000u); }
inline double dec_bf16(uint16_t h) { return from_bits((uint32_t)h << 16); }
inline double dec_f16(uint16_t h) {
  _Float16 v;
  std::memcpy(&v, &h, 2);
  return (float)v;
}

// mma.sync.aligned.{m16n8k8 tf32 | m16n8k16 bf16/f16}.row.col.f32, D = A * B + C, for the
// calling lane. kind: 1 tf32, 2 bf16, 3 f16 (MathMode values).
void mma_sync(int kind, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);

// Launch: runs fn once per thread of every block of the grid (see the model above).
template <class F>
void launch(const char* name, dim3 grid, dim3 block, F&& fn);
void launch_impl(const char* name, dim3 grid, dim3 block, void (*thunk)(void*), void* ctx);
template <class F>
void launch(const char* name, dim3 grid, dim3 block, F&& fn) {
  auto thunk = [](void* c) { (*static_cast<F*>(c))(); };
  launch_impl(name, grid, block, thunk, (void*)&fn);
}

// Launch configurations written with ints.
inline dim3 as_dim3(dim3 d) { return d; }
inline dim3 as_dim3(unsigned long long x) { return dim3((unsigned)x); }

}  // namespace emu
