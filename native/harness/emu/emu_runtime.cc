// emu_runtime.cc: the CPU side of the CUDA emulator (emu.h): fibers and their scheduler, the
// access checks, the shared window, warp exchanges (shuffles) and the mma.sync model. Device
// memory is emu_memory.cc; the runtime API (streams, events, graphs, copies) is emu_api.cc; the
// wgmma model is emu_wgmma.cc.
//
// Threads: kernels run on the thread that launches them (the JS thread in the addon), and
// only that thread allocates or frees device memory, so the scheduler and the allocation
// table take no locks. The addon's completion thread only waits on events (emu_api.cc).
//
// Fibers: each is started once on its own stack with makecontext/setcontext and then lives on,
// parked between blocks; switches are _setjmp/_longjmp (no signal-mask system call, unlike
// swapcontext), which makes a barrier about 50 times cheaper. Jumping between stacks is what
// glibc's fortified longjmp refuses, hence the #undef.
#undef _FORTIFY_SOURCE
#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "emu_internal.h"

// Under AddressSanitizer (IMAGERATE_SANITIZE), every switch between the scheduler's stack and
// a fiber's is announced, so that ASan follows the stacks instead of reporting false errors.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_SWITCH_START(save, bottom, size) __sanitizer_start_switch_fiber((save), (bottom), (size))
#define EMU_SWITCH_FINISH(save, bottom, size) __sanitizer_finish_switch_fiber((save), (bottom), (size))
#else
#define EMU_SWITCH_START(save, bottom, size) ((void)0)
#define EMU_SWITCH_FINISH(save, bottom, size) ((void)0)
#endif

uint3 blockIdx;
dim3 blockDim, gridDim;

namespace emu {

// ------------------------------------------------------------ fibers
struct Fiber {
  jmp_buf jb;          // where it resumes (set when it yields or parks)
  ucontext_t boot;     // its first start only
  bool started = false;
  void* stack = nullptr;   // its stack's lowest address (kStack bytes)
  void* asan_fake = nullptr;
  uint3 tid;
  int lin = 0;
  enum State { kRun, kBlockBarrier, kWarpBarrier, kDone } state = kRun;
  unsigned mma_calls = 0;
  unsigned exchanges = 0;
};

namespace {

constexpr size_t kStack = 256 * 1024;
std::deque<Fiber> g_fibers;  // a deque: a started fiber's context must not move
std::vector<std::vector<char>> g_stacks;
jmp_buf g_sched;
Fiber* g_cur = nullptr;
void (*g_thunk)(void*) = nullptr;
void* g_ctx = nullptr;
const char* g_kernel = "";
// EMU_ORDER, read once at load (in the harness and the addon alike): 0 fwd, 1 rev, 2 shuffle.
int order_from_env() {
  const char* o = std::getenv("EMU_ORDER");
  return !o ? 0 : std::string(o) == "rev" ? 1 : std::string(o) == "shuffle" ? 2 : 0;
}
const int g_order = order_from_env();
unsigned long long g_block_serial = 0;  // counts blocks over all launches
unsigned long long g_launches = 0, g_switches = 0;
void* g_sched_fake = nullptr;  // ASan's bookkeeping of the scheduler's stack
const void* g_sched_bottom = nullptr;
size_t g_sched_size = 0;

// Back to the scheduler from the running fiber f; returns when f is resumed.
void to_scheduler(Fiber* f) {
  if (!_setjmp(f->jb)) {
    EMU_SWITCH_START(&f->asan_fake, g_sched_bottom, g_sched_size);
    _longjmp(g_sched, 1);
  }
  EMU_SWITCH_FINISH(f->asan_fake, &g_sched_bottom, &g_sched_size);
}

// A fiber's whole life: run the current kernel's thread body, park, and run it again when a
// later block (of this launch or another) resumes it.
void fiber_main() {
  EMU_SWITCH_FINISH(nullptr, &g_sched_bottom, &g_sched_size);
  for (;;) {
    g_thunk(g_ctx);
    wgmma_thread_exit();  // nothing of its asynchronous MMAs left behind
    Fiber* f = g_cur;
    f->state = Fiber::kDone;
    to_scheduler(f);
  }
}

void yield(Fiber::State s) {
  Fiber* f = g_cur;
  f->state = s;
  ++g_switches;
  to_scheduler(f);
}

void resume(Fiber& f) {
  g_cur = &f;
  f.state = Fiber::kRun;
  if (!_setjmp(g_sched)) {
    EMU_SWITCH_START(&g_sched_fake, f.stack, kStack);
    if (f.started) _longjmp(f.jb, 1);
    f.started = true;
    setcontext(&f.boot);  // does not return: the fiber comes back through g_sched
  }
  EMU_SWITCH_FINISH(g_sched_fake, nullptr, nullptr);
  g_cur = nullptr;
}

void add_fibers(int n) {
  while ((int)g_fibers.size() < n) {
    g_stacks.emplace_back(kStack);
    g_fibers.emplace_back();
    Fiber& f = g_fibers.back();
    f.stack = g_stacks.back().data();
    getcontext(&f.boot);
    f.boot.uc_stack.ss_sp = g_stacks.back().data();
    f.boot.uc_stack.ss_size = kStack;
    f.boot.uc_link = nullptr;
    makecontext(&f.boot, fiber_main, 0);
  }
}

// A fixed permutation of 0..n-1 for `order`.
std::vector<int> order_of(int n, int salt) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  if (g_order == 1) std::reverse(v.begin(), v.end());
  if (g_order == 2) {
    uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(salt + 1);
    for (int i = n - 1; i > 0; --i) {
      s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
      const int j = (int)((s * 2685821657736338717ull) % (uint64_t)(i + 1));
      std::swap(v[i], v[j]);
    }
  }
  return v;
}

// ------------------------------------------------------------ shared window
// Each __shared__ array of the running launch gets an address in an emulated shared window
// when a thread first reaches its declaration; kernels see it through __cvta_generic_to_shared
// and wgmma descriptors (start address >> 4 in 14 bits: the window must end below 256 KiB).
// It starts at 1 KiB, so that address 0 lies in no array, and ends at 228 KiB (227 KiB of
// arrays, the H100's opt-in maximum per block). Each array sits at an odd multiple of its
// declared alignment: exactly what it asked for, no more.
constexpr uint32_t kWindowBase = 1024, kWindowEnd = 228 * 1024;
struct WindowSlot {
  uint32_t addr;
  size_t bytes;
  unsigned long long block;  // the block (g_block_serial) that last poisoned it
};
std::map<uintptr_t, WindowSlot> g_window;         // host start -> slot (this launch's arrays)
std::map<uint32_t, uintptr_t> g_window_by_addr;  // window address -> host start
uint32_t g_window_next = kWindowBase;

void window_reset() {
  g_window.clear();
  g_window_by_addr.clear();
  g_window_next = kWindowBase;
}

WindowSlot& window_place(void* p, size_t bytes, size_t align) {
  auto it = g_window.find((uintptr_t)p);
  if (it != g_window.end()) return it->second;
  if (align == 0 || (align & (align - 1)) != 0)
    fault("__shared__ array with an alignment that is not a power of two", p, bytes);
  uint64_t a = ((uint64_t)g_window_next + align - 1) / align * align;
  if ((a / align) % 2 == 0) a += align;
  if (a + bytes > kWindowEnd)
    fault("the kernel's __shared__ arrays pass the end of the 227 KiB shared window", p, bytes);
  g_window_by_addr[(uint32_t)a] = (uintptr_t)p;
  g_window_next = (uint32_t)(a + bytes);
  return g_window[(uintptr_t)p] = WindowSlot{(uint32_t)a, bytes, 0};
}

}  // namespace

void shared_fresh(void* p, size_t bytes, size_t align) {
  WindowSlot& w = window_place(p, bytes, align);
  if (w.block == g_block_serial) return;
  w.block = g_block_serial;
  std::memset(p, 0xFF, bytes);
}

size_t shared_address(const void* p) {
  auto it = g_window.upper_bound((uintptr_t)p);
  if (it != g_window.begin()) {
    --it;
    if ((uintptr_t)p <= it->first + it->second.bytes) return it->second.addr + ((uintptr_t)p - it->first);
  }
  fault("__cvta_generic_to_shared of an address outside every __shared__ array", p, 0);
}

unsigned char* shared_host(uint32_t addr, size_t bytes) {
  auto it = g_window_by_addr.upper_bound(addr);
  if (it == g_window_by_addr.begin()) return nullptr;
  --it;
  const WindowSlot& w = g_window.at(it->second);
  if ((uint64_t)addr + bytes > (uint64_t)w.addr + w.bytes) return nullptr;
  return (unsigned char*)it->second + (addr - w.addr);
}

const uint3& current_tid() { return g_cur->tid; }
int lane_linear() { return g_cur->lin; }
void syncthreads() { yield(Fiber::kBlockBarrier); }
void warp_barrier() { yield(Fiber::kWarpBarrier); }

namespace {
[[noreturn]] void fault_at(const char* what, const void* p, size_t bytes, uint3 tid) {
  char at[64] = "";
  if (p || bytes) std::snprintf(at, sizeof at, " at %p (%zu bytes)", p, bytes);
  std::fprintf(stderr, "EMU FAULT in %s: %s%s, block (%u,%u,%u) thread (%u,%u,%u)\n", g_kernel, what, at, blockIdx.x,
               blockIdx.y, blockIdx.z, tid.x, tid.y, tid.z);
  std::abort();
}
}  // namespace

void fault(const char* what, const void* p, size_t bytes) {
  fault_at(what, p, bytes, g_cur ? g_cur->tid : uint3{0, 0, 0});
}

void fault_thread(const char* what, int lin) {
  const unsigned i = (unsigned)lin;
  fault_at(what, nullptr, 0, uint3{i % blockDim.x, (i / blockDim.x) % blockDim.y, i / (blockDim.x * blockDim.y)});
}

void check_access(const void* p, size_t bytes, size_t align, bool global_only) {
  if (((uintptr_t)p & (align - 1)) != 0) fault("misaligned vector access", p, bytes);
  if (global_only && !is_device(p, bytes)) fault("read outside every device allocation", p, bytes);
}

// ------------------------------------------------------------ launches
bool launch_config_ok(const char* name, dim3 grid, dim3 block, size_t smem) {
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535u || grid.z > 65535u ||
      threads == 0 || threads > 1024 || block.z > 64 || smem != 0) {
    std::fprintf(stderr, "EMU: launch of %s with grid (%u,%u,%u) block (%u,%u,%u) smem %zu: invalid configuration%s\n",
                 name, grid.x, grid.y, grid.z, block.x, block.y, block.z, smem,
                 smem ? " (dynamic shared memory is not emulated)" : "");
    set_last_error(cudaErrorInvalidConfiguration);
    return false;
  }
  return true;
}

void launch_impl(const char* name, dim3 grid, dim3 block, void (*thunk)(void*), void* ctx) {
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  ++g_launches;
  g_kernel = name;
  window_reset();  // this launch's arrays get their addresses as they are reached
  g_thunk = thunk;
  g_ctx = ctx;
  gridDim = grid;
  blockDim = block;
  const int n = (int)threads;
  add_fibers(n);
  const int warps = (n + 31) / 32;
  for (int i = 0; i < n; ++i) {  // a thread's index is the same in every block
    g_fibers[i].lin = i;
    g_fibers[i].tid = uint3{(unsigned)(i % block.x), (unsigned)((i / block.x) % block.y), (unsigned)(i / (block.x * block.y))};
  }
  unsigned long long block_no = 0;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx, ++block_no) {
        blockIdx = uint3{bx, by, bz};
        ++g_block_serial;
        for (int i = 0; i < n; ++i) {
          Fiber& f = g_fibers[i];
          f.state = Fiber::kRun;
          f.mma_calls = 0;
          f.exchanges = 0;
        }
        wgmma_block_begin(n);
        for (int phase = 0;; ++phase) {
          const std::vector<int> worder = order_of(warps, phase + (int)block_no);
          for (int w : worder) {
            const int l0 = w * 32, l1 = std::min(n, l0 + 32);
            for (int round = 0;; ++round) {
              const std::vector<int> lorder = order_of(l1 - l0, round * 7 + phase);
              for (int l : lorder) {
                Fiber& f = g_fibers[l0 + l];
                if (f.state == Fiber::kDone || f.state == Fiber::kBlockBarrier) continue;
                resume(f);
              }
              int warp_bar = 0, other = 0;
              for (int i = l0; i < l1; ++i) {
                if (g_fibers[i].state == Fiber::kWarpBarrier) ++warp_bar;
                else ++other;  // at the block barrier, or finished
              }
              if (warp_bar == 0) break;
              if (other != 0) fault("warp divergence at a warp-collective operation", nullptr, 0);
              for (int i = l0; i < l1; ++i)
                if (g_fibers[i].state == Fiber::kWarpBarrier) g_fibers[i].state = Fiber::kRun;
            }
          }
          int at_barrier = 0, done = 0;
          for (int i = 0; i < n; ++i) {
            if (g_fibers[i].state == Fiber::kBlockBarrier) ++at_barrier;
            else if (g_fibers[i].state == Fiber::kDone) ++done;
          }
          if (at_barrier == 0) break;  // all done
          if (done != 0) fault("__syncthreads reached by only some threads of the block", nullptr, 0);
          for (int i = 0; i < n; ++i) g_fibers[i].state = Fiber::kRun;
        }
        wgmma_block_end();
      }
  check_guards(name);
  g_kernel = "";
}

// ------------------------------------------------------------ mma.sync
namespace {
struct MmaSlot {
  uint32_t a[4], b[2];
};
MmaSlot g_slots[32][2][32];  // [warp][call parity][lane]
}  // namespace

void mma_sync(int kind, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  Fiber* f = g_cur;
  const int warp = f->lin >> 5, lane = f->lin & 31, par = (int)(f->mma_calls++ & 1);
  MmaSlot& mine = g_slots[warp][par][lane];
  std::memcpy(mine.a, a, sizeof mine.a);
  std::memcpy(mine.b, b, sizeof mine.b);
  warp_barrier();  // every lane has deposited its fragments
  const MmaSlot* s = g_slots[warp][par];
  const int K = kind == 1 ? 8 : 16;
  // A(row, k), B(k, col) from their holders (PTX ISA, matrix fragments for mma.m16n8k8 .tf32
  // and mma.m16n8k16 .f16/.bf16).
  auto A = [&](int row, int k) -> double {
    if (kind == 1) return dec_tf32(s[(row % 8) * 4 + k % 4].a[(row >= 8 ? 1 : 0) + (k >= 4 ? 2 : 0)]);
    const uint32_t r = s[(row % 8) * 4 + (k % 8) / 2].a[(row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0)];
    const uint16_t h = (uint16_t)(k & 1 ? r >> 16 : r & 0xffffu);
    return kind == 2 ? dec_bf16(h) : dec_f16(h);
  };
  auto B = [&](int k, int col) -> double {
    if (kind == 1) return dec_tf32(s[col * 4 + k % 4].b[k >= 4 ? 1 : 0]);
    const uint32_t r = s[col * 4 + (k % 8) / 2].b[k >= 8 ? 1 : 0];
    const uint16_t h = (uint16_t)(k & 1 ? r >> 16 : r & 0xffffu);
    return kind == 2 ? dec_bf16(h) : dec_f16(h);
  };
  const int g = lane >> 2, t = lane & 3;
  float out[4];
  for (int i = 0; i < 4; ++i) {
    const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    double acc = 0.0;
    for (int k = 0; k < K; ++k) acc += A(row, k) * B(k, col);
    out[i] = (float)(acc + (double)d[i]);
  }
  std::memcpy(d, out, sizeof out);
}

// ------------------------------------------------------------ warp exchange (shuffles)
namespace {
uint64_t g_xslots[32][2][32];  // [warp][call parity][lane]
}  // namespace

uint64_t warp_exchange(unsigned mask, uint64_t mine, int src) {
  Fiber* f = g_cur;
  if (mask != 0xffffffffu) fault("shuffle with a partial lane mask (not emulated)", nullptr, 0);
  const int warp = f->lin >> 5, lane = f->lin & 31, par = (int)(f->exchanges++ & 1);
  if ((warp + 1) * 32 > (int)(blockDim.x * blockDim.y * blockDim.z))
    fault("shuffle in a partial warp (the block size is not a multiple of 32)", nullptr, 0);
  g_xslots[warp][par][lane] = mine;
  warp_barrier();  // every lane has deposited its value; the parity keeps the next exchange apart
  return src >= 0 && src < 32 ? g_xslots[warp][par][src] : mine;
}

void stats(unsigned long long* launches, unsigned long long* switches) {
  *launches = g_launches;
  *switches = g_switches;
}

}  // namespace emu
