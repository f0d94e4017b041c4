// emu.h: a CPU emulator for the CUDA kernels (every file of kernels/cuda), so that their real
// source runs, checked, on a machine without a GPU: under the harness's checks (build.sh) and
// as the CUDA addon itself (cmake/cuda_emu.cmake, with the runtime API of emu_api.cc).
// The files: emu_internal.h lists them (scheduler, shared window, device memory, runtime API,
// wgmma, TMA and mbarrier, tensor maps, async proxy).
//
// Model: a launch runs its blocks one after another. A block's threads are fibers on one OS
// thread; the scheduler runs warp by warp, each warp's lanes in turn, up to the next
// __syncthreads() (block barrier), warp-collective operation (warp barrier: mma.sync,
// __shfl_*_sync, __syncwarp, wgmma.wait_group, which must be called by a whole, full warp with a full mask)
// or mbarrier.try_wait that finds its phase incomplete (the thread yields and looks again after
// the others ran; a block where no thread can progress is a deadlock, reported).
// The order of warps and of lanes is forward, reversed, or a fixed shuffle
// (EMU_ORDER=fwd|rev|shuffle), so that a missing barrier shows up as a wrong result under some order.
//   __shared__      static storage (one block at a time), filled with NaN bytes when the
//                   block's first thread reaches the declaration (reads of unwritten data show).
//                   Each array also gets an address in an emulated shared window, per launch,
//                   in the order the arrays are first reached: from 1 KiB up to 256 KiB (the
//                   descriptors' 18 address bits), each at a multiple of its declared alignment
//                   but an odd one (As declared __align__(128) sits at 128 mod 256), so a kernel
//                   that counts on more alignment than it declared gets wrong addresses.
//                   __cvta_generic_to_shared maps a pointer into an array to its window address.
//   extern __shared__  the launch's dynamic shared memory (its third configuration argument),
//                   placed and poisoned like an array of that size (emu_shared.cc). A launch
//                   above the kernel's limit (48 KiB, or cudaFuncSetAttribute's
//                   MaxDynamicSharedMemorySize, at most 232448 bytes) fails with
//                   cudaErrorInvalidValue and runs nothing, as on a GPU.
//   mma.sync        emulated per warp from the PTX ISA fragment tables (9.7.14.5.7/.8):
//                   each lane deposits its fragments, the warp meets, each lane computes its
//                   own D elements from the holders of A(row, k) and B(k, col)
//   wgmma           (emu_wgmma.cc; PTX ISA 9.7.15) mma_async.m64n128k{8 tf32, 16 bf16/f16}.f32
//                   with both operands K-major in shared memory, no swizzle. mma_async only
//                   records (per thread: the accumulator's address, descriptors, scale-d);
//                   commit_group closes a group; wait_group N is a warp collective that
//                   completes all but the N newest committed groups, in order, reading shared
//                   memory at that moment: each warp computes its own 16 rows (16 (warp % 4) .. of
//                   the warpgroup's 64), D = A * B^T (+ D when scale-d), summed in double, into each
//                   lane's registers per the accumulator fragment (9.7.15.5.1.1). So a kernel
//                   that overwrites an operand before every warp of the warpgroup has waited
//                   reads the new data, as a GPU may. Groups may chain into the accumulators of a
//                   pending one (wait_group 1 pipelines).
//   mbarrier, TMA   (emu_tma.cc; PTX ISA 9.7.13.15, 9.7.9.25.5.2, 5.5) mbarrier init /
//                   arrive.expect_tx / try_wait.parity with phases, arrival counts and tx-count;
//                   cp.async.bulk.tensor global -> shared in tile mode, zero fill outside the
//                   tensor, the whole box counted as tx bytes, performed when a try_wait first
//                   looks at its mbarrier (the box holds NaN bytes until then). Tensor maps come
//                   from the emulator's cuTensorMapEncodeTiled (emu_tensormap.cc, through
//                   cudaGetDriverEntryPointByVersion; cuda.h here declares it), which validates
//                   as the driver documents and stops on valid modes it does not model.
//   async proxy     (emu_proxy.cc) in sampled blocks (EMU_PROXY=all: every block) each ordinary
//                   shared store is attributed to its thread (by comparing the arrays after each
//                   fiber ran); wgmma operands and TMA destinations must not hold stores their
//                   thread has not followed by fence.proxy.async. Elsewhere: some thread of the
//                   block executed one.
//   cvt             tf32 round-to-nearest ties-away, bf16/fp16 round-to-nearest-even
//   atomics         plain read-modify-writes (a fiber switches only at barriers), checked
// Checks (each aborts with the kernel, block, thread and address):
//   __ldg           the address lies in one live device allocation, naturally aligned (16 B
//                   for float4): what a GPU faults on or compute-sanitizer reports
//   float4/float2/uint4 loads and stores through pointers: naturally aligned
//   after each launch: 256-byte guards around every allocation are intact (stray writes)
//   barriers        every thread of a block reaches the same barriers (no divergence)
//   launch config   grid.y, grid.z <= 65535, grid.x < 2^31, 1..1024 threads (an invalid one is
//                   a launch error, not a fault); dynamic shared memory as above; static arrays
//                   over 48 KiB, or static + dynamic over the kernel's limit (known only once it
//                   runs: CUDA would refuse the launch)
//   shared window   __cvta_generic_to_shared of a pointer outside every __shared__ array; a
//                   kernel's arrays past the window's end
//   wgmma           a descriptor with a swizzle mode other than none, a nonzero base offset or
//                   bits set outside its fields; an operand core matrix (8 rows x 16 bytes)
//                   outside every __shared__ array; a partial warpgroup; an mma_async with no
//                   wgmma.fence since the thread's last wait_group (stricter than PTX, which asks
//                   for one only after the accumulators were touched: the emulator cannot see
//                   reads of them); operand bytes holding ordinary stores not fenced by their
//                   thread's fence.proxy.async (sampled blocks; elsewhere an mma_async before any
//                   fence.proxy.async in a block that used no TMA); lanes of a warp, or the 4 warps
//                   of a warpgroup, issuing different operations or groups; a thread writing an
//                   accumulator while an mma_async on it is pending; a thread exiting with
//                   mma_asyncs not committed or not waited for; a warpgroup whose warps did not
//                   all complete a group
//   mbarrier, TMA   emu_tma.cc's header lists them: misaligned or unpublished mbarriers, tx-count
//                   and arrival overflows, deadlocks, copies racing wgmma reads or each other,
//                   wgmma reading copies in flight or unobserved, bad tensor maps and boxes, the
//                   block ending with copies in flight
// Fresh device memory is filled with NaN bytes (0xFF), so reading what was never written shows.
// Plain pointer reads and writes (not __ldg) are not bounds-checked one by one: a stray write
// within 256 bytes of an allocation shows in its guards, a stray read does not.
// Not modelled: timing, caches, bank conflicts, clusters (one CTA: .shared::cluster is the
// CTA's own shared memory), swizzled layouts (wgmma and TMA), TMA stores, reductions, im2col and
// prefetch, tensor maps in global memory, mbarrier.inval and plain arrive/test_wait, the order in
// which a GPU would complete copies (the model's is the latest allowed), ordinary loads of TMA
// data before the wait (they see the NaN fill, not a fault), and the asm
// text itself: transform.py replaces each cvt/mma/wgmma/mbarrier/TMA asm statement by its
// documented meaning only when the statement reads exactly as expected (operand order included),
// so a change there stops the build instead of being emulated. The mma and wgmma models sum in
// double, which is more exact than a tensor core; checks compare against bounds, not bits, except
// the exact "gemm rounding" ones whose sums are exact either way.
// Build and run: native/harness/emu/build.sh (g++ only); the addon: scripts/cuda-emu-tests.sh;
// the models' own checks: build-emu/imagerate_cuda_emu --selftest-wgmma, --selftest-tma
// (emu_selftest*.cc).
#pragma once
#include <math.h>  // the global float/double overloads (exp, log, sqrt, fmaxf...) device code calls

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

// ------------------------------------------------------------ language keywords
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__
#define __grid_constant__  // kernel parameters live on each fiber's stack: their address is valid

namespace emu {

struct Fiber;
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
// A warp barrier, like the warp collectives: the whole warp, with the full mask.
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  if (mask != 0xffffffffu) emu::fault("__syncwarp with a partial mask (not modelled)", nullptr, 0);
  emu::warp_barrier();
}

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
// cvt.rna.tf32.f32: nearest, ties away from zero; the low 13 bits are zero. A NaN becomes the
// canonical NaN (a NaN whose payload sat only in the low 13 bits would otherwise read as Inf).
inline uint32_t cvt_tf32_rna(float x) {
  const uint32_t u = bits(x);
  if (std::isnan(x)) return 0x7fffffffu;
  if (std::isinf(x)) return u;
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

// wgmma (emu_wgmma.cc; the model and its checks: the header comment). kind as for mma_sync;
// d is the calling thread's accumulator fragment of wgmma.mma_async.m64n128k{8,16}.f32.
void wgmma_fence();
void wgmma_mma_async(int kind, float (&d)[64], uint64_t desc_a, uint64_t desc_b, int scale_d);
void wgmma_commit_group();
void wgmma_wait_group(int n);
void fence_proxy_async();
// The window address of p, which must lie in (or just past) one of the running block's
// __shared__ arrays or its dynamic shared memory (__cvta_generic_to_shared).
size_t shared_address(const void* p);

// mbarrier and cp.async.bulk.tensor (emu_tma.cc; the model and its checks: the header comment),
// for the inline PTX of kernels/cuda/tma.cuh. bar, dst: shared-window addresses; map: the
// generic address of a tensor map (cuTensorMapEncodeTiled's, emu_tensormap.cc).
void mbarrier_init(uint32_t bar, uint32_t count);
void fence_mbarrier_init();
void mbarrier_arrive_expect_tx(uint32_t bar, uint32_t tx_bytes);
uint32_t mbarrier_try_wait_parity(uint32_t bar, uint32_t parity);  // 1: that phase has completed
void tma_load_2d(uint32_t dst, uint64_t map, int c0, int c1, uint32_t bar);

// Launches. transform.py rewrites  k<<<grid, block, smem, stream>>>(args);  into
//   emu::launch("k", grid, block, smem, stream, &k, args);
// which converts the arguments to the kernel's parameter types at once (as a launch does),
// checks the configuration (an invalid one sets the last error, as CUDA does, and nothing
// runs; smem: the dynamic shared memory, within the kernel's limit), and hands the launch to the
// stream (emu_api.cc): run now, or recorded while the stream is being captured into a graph. A
// launch runs every thread of every block (the model above); launch_impl is the scheduler. func
// identifies the kernel (cudaFuncSetAttribute's attributes).
void launch_impl(const char* name, const void* func, dim3 grid, dim3 block, size_t smem, void (*thunk)(void*),
                 void* ctx);
// Called (by transform.py's edit) at each __shared__ array's declaration: the first thread of
// a block to reach it fills the array with 0xFF bytes (NaN), the others leave it alone; the
// first thread of a launch gives it its window address (align: its declared alignment).
void shared_fresh(void* p, size_t bytes, size_t align);
// An extern __shared__ declaration (transform.py's edit): the launch's dynamic shared memory,
// placed and poisoned like an array of that many bytes at the declared alignment.
void* shared_dynamic(size_t align);
bool launch_config_ok(const char* name, const void* func, dim3 grid, dim3 block, size_t smem);
void enqueue(cudaStream_t s, std::function<void()> work);

template <class F>
void run_grid(const char* name, const void* func, dim3 grid, dim3 block, size_t smem, F& fn) {
  launch_impl(name, func, grid, block, smem, [](void* c) { (*static_cast<F*>(c))(); }, (void*)&fn);
}

template <class... P, class... A>
void launch(const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t s, void (*kernel)(P...), A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  const void* func = reinterpret_cast<const void*>(kernel);
  if (!launch_config_ok(name, func, grid, block, smem)) return;
  std::tuple<std::decay_t<P>...> t(std::forward<A>(args)...);
  enqueue(s, [name, func, grid, block, smem, kernel, t]() {
    auto body = [&] { std::apply(kernel, t); };
    run_grid(name, func, grid, block, smem, body);
  });
}

// Launch configurations written with ints.
inline dim3 as_dim3(dim3 d) { return d; }
inline dim3 as_dim3(unsigned long long x) { return dim3((unsigned)x); }

}  // namespace emu

// ------------------------------------------------------------ warp shuffles
namespace emu {
// The value `mine` of every lane of the calling warp, exchanged: returns the value lane `src`
// deposited (or `mine` when src is outside the warp). A warp-collective: every lane of a full
// warp must call it (a divergent or partial warp aborts), mask must be 0xffffffff.
uint64_t warp_exchange(unsigned mask, uint64_t mine, int src);
}  // namespace emu

template <class T>
inline T emu_shfl(unsigned mask, T v, int src) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a 1..8-byte value");
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof v);
  u = emu::warp_exchange(mask, u, src);
  T r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}
// Within segments of `width` lanes (a power of two <= 32), as CUDA defines them.
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = emu::lane_linear() & 31, seg = lane & ~(width - 1);
  const int src = lane + (int)delta;
  return emu_shfl(mask, v, src < seg + width ? src : lane);
}

// ------------------------------------------------------------ atomics
// One OS thread runs every fiber and a fiber switches only at barriers and warp collectives,
// so a plain read-modify-write is atomic here. The address's alignment is checked; a global
// one past its allocation's end faults on the no-access page (emu_memory.cc).
#define EMU_ATOMIC(NAME, EXPR)                                 \
  template <class T>                                           \
  inline T NAME(T* p, T v) {                                   \
    emu::check_access(p, sizeof(T), sizeof(T), false);         \
    const T old = *p;                                          \
    *p = (EXPR);                                               \
    return old;                                                \
  }
EMU_ATOMIC(atomicAdd, old + v)
EMU_ATOMIC(atomicMax, old < v ? v : old)
#undef EMU_ATOMIC

// ------------------------------------------------------------ address-space conversion
inline size_t __cvta_generic_to_shared(const void* p) { return emu::shared_address(p); }

// ------------------------------------------------------------ IEEE round-to-nearest intrinsics
// (never contracted into an FMA: the emulator is built with ISO C++ and no -mfma)
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
