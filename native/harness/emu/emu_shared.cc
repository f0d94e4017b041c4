// emu_shared.cc: the emulated shared window (emu.h): the addresses the kernels see through
// __cvta_generic_to_shared, wgmma descriptors, mbarrier and TMA operands, for each __shared__
// array of the running launch and its dynamic shared memory (extern __shared__), and CUDA's
// limits on the latter.
//
// Each array gets its window address when a thread first reaches its declaration (transform.py
// adds emu::shared_fresh there; an extern __shared__ declaration becomes emu::shared_dynamic).
// The window starts at 1 KiB, so that address 0 lies in no array, and ends at 256 KiB, what the
// wgmma descriptors' 14-bit start address >> 4 reaches (CUDA's 227 KiB per block is checked
// below). Each array sits at an odd multiple of its declared alignment: exactly what it asked
// for, no more. The first thread of each block to reach a declaration fills the array with 0xFF bytes
// (NaN), as the contents of shared memory are undefined when a block starts.
//
// Dynamic shared memory (CUDA C++ Programming Guide, "Shared Memory" and cudaFuncSetAttribute in
// the runtime API reference): the launch's third configuration argument sizes it. A launch asking
// for more than the function's limit fails with cudaErrorInvalidValue and runs nothing: the limit
// is 48 KiB minus the kernel's static arrays, or the value of cudaFuncSetAttribute(func,
// cudaFuncAttributeMaxDynamicSharedMemorySize, v), which must itself keep static + v within
// cudaDevAttrMaxSharedMemoryPerBlockOptin (232448 bytes = 227 KiB on sm_90). The emulator learns a
// kernel's static arrays only when it runs, so a launch that those would push past a limit stops
// with a fault at the declaration instead of the launch error; static arrays over 48 KiB (which
// ptxas refuses) likewise.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "cuda_runtime.h"
#include "emu_internal.h"

namespace emu {
namespace {

constexpr uint32_t kWindowBase = 1024, kWindowEnd = 256 * 1024;
struct WindowSlot {
  uint32_t addr;
  size_t bytes;
  unsigned long long block;  // the block (block serial) that last poisoned it
  bool dynamic;
};
std::map<uintptr_t, WindowSlot> g_window;         // host start -> slot (this launch's arrays)
std::map<uint32_t, uintptr_t> g_window_by_addr;  // window address -> host start
uint32_t g_window_next = kWindowBase;
size_t g_static_bytes = 0;  // this launch's static arrays placed so far

// The running launch's dynamic shared memory: a host buffer (4 KiB aligned, grown as needed).
unsigned char* g_dyn = nullptr;
size_t g_dyn_capacity = 0, g_dyn_bytes = 0;
int g_dyn_attr = -1;  // the kernel's MaxDynamicSharedMemorySize attribute, -1: never set
std::map<const void*, int> g_max_dynamic;  // cudaFuncSetAttribute's values, per kernel
unsigned long long g_block = 0;            // the running block (set by the scheduler)

// The limits above, checked when an array is placed (static sizes are known only then).
void check_limits(void* p, size_t bytes) {
  char msg[320];
  if (g_static_bytes > kDefaultSmemLimit) {
    std::snprintf(msg, sizeof msg,
                  "the kernel's static __shared__ arrays take %zu bytes, over the 48 KiB a kernel may declare "
                  "statically (ptxas refuses it; use dynamic shared memory)",
                  g_static_bytes);
    fault(msg, p, bytes);
  }
  if (g_dyn_attr < 0 && g_static_bytes + g_dyn_bytes > kDefaultSmemLimit) {
    std::snprintf(msg, sizeof msg,
                  "static __shared__ arrays (%zu bytes) plus dynamic shared memory (%zu bytes) exceed the default 48 "
                  "KiB per block: CUDA refuses this launch (cudaErrorInvalidValue) unless cudaFuncSetAttribute raised "
                  "cudaFuncAttributeMaxDynamicSharedMemorySize",
                  g_static_bytes, g_dyn_bytes);
    fault(msg, p, bytes);
  }
  if (g_dyn_attr >= 0 && g_static_bytes + (size_t)g_dyn_attr > kMaxSmemPerBlock) {
    std::snprintf(msg, sizeof msg,
                  "static __shared__ arrays (%zu bytes) plus the kernel's MaxDynamicSharedMemorySize (%d bytes) "
                  "exceed sm_90's 232448 bytes per block: CUDA refuses the cudaFuncSetAttribute (cudaErrorInvalidValue)",
                  g_static_bytes, g_dyn_attr);
    fault(msg, p, bytes);
  }
}

WindowSlot& window_place(void* p, size_t bytes, size_t align, bool dynamic) {
  auto it = g_window.find((uintptr_t)p);
  if (it != g_window.end()) return it->second;
  if (align == 0 || (align & (align - 1)) != 0)
    fault("__shared__ array with an alignment that is not a power of two", p, bytes);
  uint64_t a = ((uint64_t)g_window_next + align - 1) / align * align;
  if ((a / align) % 2 == 0) a += align;
  if (a + bytes > kWindowEnd)
    fault("the kernel's shared memory (static arrays and dynamic) passes the end of the 256 KiB shared window", p,
          bytes);
  if (!dynamic) g_static_bytes += bytes;
  check_limits(p, bytes);
  g_window_by_addr[(uint32_t)a] = (uintptr_t)p;
  g_window_next = (uint32_t)(a + bytes);
  return g_window[(uintptr_t)p] = WindowSlot{(uint32_t)a, bytes, 0, dynamic};
}

// The first thread of the block to reach the declaration poisons the array.
void fresh(void* p, WindowSlot& w) {
  if (w.block == g_block) return;
  w.block = g_block;
  proxy_attribute(lane_linear());  // what the thread stored so far is its own, not the poison's
  std::memset(p, 0xFF, w.bytes);
  proxy_region((unsigned char*)p, w.addr, w.bytes);
}

}  // namespace

void window_block(unsigned long long serial) { g_block = serial; }

void window_launch(const void* func, size_t dynamic_bytes) {
  g_window.clear();
  g_window_by_addr.clear();
  g_window_next = kWindowBase;
  g_static_bytes = 0;
  if (dynamic_bytes + 1 > g_dyn_capacity) {
    std::free(g_dyn);
    g_dyn_capacity = (dynamic_bytes + 4096) / 4096 * 4096;
    g_dyn = static_cast<unsigned char*>(std::aligned_alloc(4096, g_dyn_capacity));
    if (!g_dyn) {
      std::perror("EMU: dynamic shared memory buffer");
      std::abort();
    }
  }
  g_dyn_bytes = dynamic_bytes;
  auto it = g_max_dynamic.find(func);
  g_dyn_attr = it == g_max_dynamic.end() ? -1 : it->second;
}

bool dynamic_smem_ok(const char* name, const void* func, size_t bytes) {
  auto it = g_max_dynamic.find(func);
  const size_t limit = it == g_max_dynamic.end() ? kDefaultSmemLimit : (size_t)it->second;
  if (bytes <= limit && bytes <= kMaxSmemPerBlock) return true;
  std::fprintf(stderr,
               "EMU: launch of %s with %zu bytes of dynamic shared memory: invalid argument (the function's limit is "
               "%zu bytes%s)\n",
               name, bytes, limit,
               it == g_max_dynamic.end() ? ", the default: cudaFuncSetAttribute(MaxDynamicSharedMemorySize) raises it"
                                         : ", set by cudaFuncSetAttribute");
  return false;
}

cudaError_t set_max_dynamic_smem(const void* func, int value) {
  if (value < 0 || (size_t)value > kMaxSmemPerBlock) return cudaErrorInvalidValue;
  g_max_dynamic[func] = value;
  return cudaSuccess;
}

void shared_fresh(void* p, size_t bytes, size_t align) { fresh(p, window_place(p, bytes, align, false)); }

void* shared_dynamic(size_t align) {
  WindowSlot& w = window_place(g_dyn, g_dyn_bytes, align, true);
  if (w.addr % align != 0)
    fault("extern __shared__ declarations with different alignments: the region was placed for a smaller one",
          g_dyn, g_dyn_bytes);
  fresh(g_dyn, w);
  return g_dyn;
}

size_t shared_address(const void* p) {
  auto it = g_window.upper_bound((uintptr_t)p);
  if (it != g_window.begin()) {
    --it;
    if ((uintptr_t)p <= it->first + it->second.bytes) return it->second.addr + ((uintptr_t)p - it->first);
  }
  fault("__cvta_generic_to_shared of an address outside every __shared__ array and the dynamic shared memory", p, 0);
}

unsigned char* shared_host(uint32_t addr, size_t bytes) {
  auto it = g_window_by_addr.upper_bound(addr);
  if (it == g_window_by_addr.begin()) return nullptr;
  --it;
  const WindowSlot& w = g_window.at(it->second);
  if ((uint64_t)addr + bytes > (uint64_t)w.addr + w.bytes) return nullptr;
  return (unsigned char*)it->second + (addr - w.addr);
}

}  // namespace emu
