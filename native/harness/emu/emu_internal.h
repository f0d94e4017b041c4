// emu_internal.h: what the emulator's files share; not part of the emulated CUDA headers.
//   emu_runtime.cc   fibers, the scheduler, faults, mma.sync, shuffles
//   emu_shared.cc    the shared window: __shared__ arrays, dynamic shared memory, its limits
//   emu_memory.cc    device memory
//   emu_api.cc       the runtime API
//   emu_wgmma.cc     wgmma
//   emu_tma.cc       mbarrier and cp.async.bulk.tensor (device side)
//   emu_tensormap.cc cuTensorMapEncodeTiled (host side) and the tensor map's decoding
//   emu_proxy.cc     which shared bytes the async proxy may read (fence.proxy.async)
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "cuda_runtime_api.h"

namespace emu {

// ------------------------------------------------------------ device memory (emu_memory.cc)
// 256-byte guarded, NaN-filled allocations (emu.h). device_alloc returns null past the emulated
// capacity (device_capacity(), EMU_DEVICE_MEMORY_MIB, default 4 GiB), as cudaMalloc reports
// out-of-memory. JS/launching thread only.
void* device_alloc(size_t bytes);
cudaError_t device_free(void* p);  // cudaErrorInvalidValue for a pointer it did not give out
bool is_device(const void* p, size_t bytes);
size_t device_used();
size_t device_capacity();
// Aborts naming `kernel` when a stray write has touched any allocation's guard bytes.
void check_guards(const char* kernel);

// The calling thread's last-error slot (cudaGetLastError), per thread as in CUDA.
void set_last_error(cudaError_t e);

// ------------------------------------------------------------ scheduler (emu_runtime.cc)
// A fault that names a thread of the running block by its linear index (not the running one).
[[noreturn]] void fault_thread(const char* what, int lin);
// fault() or fault_thread() with a printf message: thread `lin` of the block, -1 the running one.
[[noreturn]] void faultf(int lin, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Something happened that may let a waiting thread go on (an mbarrier changed, a copy was
// issued or landed): the deadlock detector's notion of progress.
void progress();
// mbarrier.try_wait found its phase incomplete: the running fiber yields (other threads run)
// and comes back later to look again. bar/parity name what it waits for in a deadlock report.
void spin_yield(uint32_t bar, uint32_t parity);
// Whether [p, p + bytes) lies in the running fiber's own stack (its kernel parameters live there).
bool on_fiber_stack(const void* p, size_t bytes);

// ------------------------------------------------------------ shared window (emu_shared.cc)
// The host bytes at window address addr .. addr + bytes, when they lie in one of this launch's
// __shared__ arrays or its dynamic shared memory, else null.
unsigned char* shared_host(uint32_t addr, size_t bytes);
// A new launch: its dynamic shared memory (bytes) and kernel (for cudaFuncSetAttribute's limit).
void window_launch(const void* func, size_t dynamic_bytes);
void window_block(unsigned long long serial);  // a new block (arrays are poisoned again)
// The launch configuration check of dynamic shared memory; false (and a message) when CUDA would
// refuse the launch with cudaErrorInvalidValue.
bool dynamic_smem_ok(const char* name, const void* func, size_t dynamic_bytes);
// cudaFuncSetAttribute(func, cudaFuncAttributeMaxDynamicSharedMemorySize, value).
cudaError_t set_max_dynamic_smem(const void* func, int value);
constexpr size_t kMaxSmemPerBlock = 232448;   // sm_90's sharedMemPerBlockOptin: 227 KiB
constexpr size_t kDefaultSmemLimit = 49152;   // 48 KiB without the opt-in attribute

// ------------------------------------------------------------ wgmma (emu_wgmma.cc)
// Hooks in the scheduler: a block starts with `threads` threads; a thread's kernel body returned
// (the running fiber); every thread of the block is done.
void wgmma_block_begin(int threads);
void wgmma_thread_exit();
void wgmma_block_end();
// A thread (lane 0 of its warp) with an mma_async issued and not completed whose operand core
// matrices overlap window bytes [lo, hi), or -1.
int wgmma_pending_reader(uint32_t lo, uint32_t hi);

// ------------------------------------------------------------ TMA and mbarrier (emu_tma.cc)
void tma_block_begin(int threads);
void tma_block_sync();  // a __syncthreads completed: every thread knows what any knew
void tma_block_end();
bool tma_block_used();  // the block issued a cp.async.bulk.tensor
// An mma_async of thread lin reads the n ranges of len window bytes at starts (its core
// matrices): faults if a copy into them is still in flight or has landed unseen by lin (no true
// try_wait of its own on that phase, no __syncthreads after another thread's).
void tma_check_async_read(const uint32_t* starts, int n, uint32_t len, int lin, const char* what);
// The tensor core reads those ranges now (a wgmma completes): faults if a copy in flight will write them.
void tma_check_pending_write(const uint32_t* starts, int n, uint32_t len, const char* what);
void tma_fence(int lin);  // fence.mbarrier_init or fence.proxy.async by lin: its mbarrier inits are visible
std::string mbarrier_state(uint32_t bar);   // for a deadlock report

// ------------------------------------------------------------ tensor maps (emu_tensormap.cc)
struct TensorMapDesc {
  uint64_t global = 0;     // the tensor's base address
  int dtype = 0, rank = 0, elem_bytes = 0;
  int interleave = 0, swizzle = 0, l2 = 0, oob = 0;
  uint64_t dim[5] = {};    // elements per dimension, innermost first
  uint64_t stride[5] = {}; // bytes between consecutive coordinates (stride[0] = elem_bytes)
  uint32_t box[5] = {}, elem_stride[5] = {};
};
// Decodes a map written by the emulator's cuTensorMapEncodeTiled; false for any other 128 bytes.
bool tensormap_decode(const void* map, TensorMapDesc* out);
// cudaGetDriverEntryPointByVersion's lookup: the emulator's own driver function for `symbol`, or
// null; *introduced: the CUDA version that introduced it.
void* driver_entry_point(const char* symbol, unsigned* introduced);

// ------------------------------------------------------------ async proxy (emu_proxy.cc)
// In a tracked block (emu_proxy.cc says which) every ordinary store to shared memory is found
// and attributed to its thread; a thread's fence.proxy.async makes its stores visible to the
// async proxy. Elsewhere every query answers "visible".
void proxy_launch(const void* func);  // a launch of kernel func (sampling: emu_proxy.cc)
void proxy_block_begin(bool first, bool last);
void proxy_region(unsigned char* host, uint32_t addr, size_t bytes);  // an array poisoned for this block
void proxy_activate();               // the block uses the async proxy (wgmma, TMA, mbarrier, fences)
bool proxy_precise();                // tracked since the block's start
void proxy_after_run(int lin);       // the scheduler: fiber lin ran (and may have stored)
void proxy_attribute(int lin);       // the same, from inside the running fiber
void proxy_fence(int lin);           // fence.proxy.async by lin
void proxy_emulator_write(uint32_t addr, size_t bytes);  // the emulator wrote these (TMA, poison)
// The thread whose ordinary store into [addr, addr + bytes) is not yet fenced, or -1; *at: its byte.
int proxy_unfenced(uint32_t addr, size_t bytes, uint32_t* at);

}  // namespace emu
