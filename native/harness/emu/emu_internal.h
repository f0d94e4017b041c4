// emu_internal.h: what emu_runtime.cc (scheduler), emu_memory.cc (device memory) and
// emu_api.cc (the runtime API) share; not part of the emulated CUDA headers.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda_runtime_api.h"

namespace emu {

// Device memory: 256-byte guarded, NaN-filled allocations (emu.h). device_alloc returns null
// past the emulated capacity (device_capacity(), EMU_DEVICE_MEMORY_MIB, default 4 GiB), as
// cudaMalloc reports out-of-memory. JS/launching thread only.
void* device_alloc(size_t bytes);
cudaError_t device_free(void* p);  // cudaErrorInvalidValue for a pointer it did not give out
bool is_device(const void* p, size_t bytes);
size_t device_used();
size_t device_capacity();
// Aborts naming `kernel` when a stray write has touched any allocation's guard bytes.
void check_guards(const char* kernel);

// The calling thread's last-error slot (cudaGetLastError), per thread as in CUDA.
void set_last_error(cudaError_t e);

// The shared window (emu_runtime.cc): the host bytes at window address addr .. addr + bytes,
// when they lie in one of this launch's __shared__ arrays, else null.
unsigned char* shared_host(uint32_t addr, size_t bytes);
// A fault that names a thread of the running block by its linear index (not the running one).
[[noreturn]] void fault_thread(const char* what, int lin);

// The wgmma model's (emu_wgmma.cc) hooks in the scheduler: a block starts with `threads`
// threads; a thread's kernel body returned (the running fiber); every thread of the block is done.
void wgmma_block_begin(int threads);
void wgmma_thread_exit();
void wgmma_block_end();

}  // namespace emu
