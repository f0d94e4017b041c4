// emu_runtime.cc: the CPU side of the CUDA emulator (emu.h): fibers and their scheduler, the
// access checks, warp exchanges (shuffles) and the mma.sync model. The other parts are listed in
// emu_internal.h (shared window, device memory, runtime API, wgmma, TMA and mbarrier, async proxy).
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
#include <cstdarg>
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
  // kSpin: in mbarrier.try_wait, which found its phase incomplete (spin_bar, spin_parity).
  enum State { kRun, kBlockBarrier, kWarpBarrier, kSpin, kDone } state = kRun;
  unsigned mma_calls = 0;
  unsigned exchanges = 0;
  uint32_t spin_bar = 0, spin_parity = 0;
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
unsigned long long g_progress = 0;      // anything but a fruitless mbarrier look (see progress())
unsigned long long g_launches = 0, g_switches = 0;
// ASan's bookkeeping of the scheduler's stack (used by the EMU_SWITCH_* macros under ASan only)
[[maybe_unused]] void* g_sched_fake = nullptr;
[[maybe_unused]] const void* g_sched_bottom = nullptr;
[[maybe_unused]] size_t g_sched_size = 0;

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
  if (s != Fiber::kSpin) ++g_progress;
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

}  // namespace

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

void faultf(int lin, const char* fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (lin < 0) fault(msg, nullptr, 0);
  fault_thread(msg, lin);
}

void check_access(const void* p, size_t bytes, size_t align, bool global_only) {
  if (((uintptr_t)p & (align - 1)) != 0) fault("misaligned vector access", p, bytes);
  if (global_only && !is_device(p, bytes)) fault("read outside every device allocation", p, bytes);
}

// ------------------------------------------------------------ launches
bool launch_config_ok(const char* name, const void* func, dim3 grid, dim3 block, size_t smem) {
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535u || grid.z > 65535u ||
      threads == 0 || threads > 1024 || block.z > 64) {
    std::fprintf(stderr, "EMU: launch of %s with grid (%u,%u,%u) block (%u,%u,%u): invalid configuration\n", name,
                 grid.x, grid.y, grid.z, block.x, block.y, block.z);
    set_last_error(cudaErrorInvalidConfiguration);
    return false;
  }
  if (!dynamic_smem_ok(name, func, smem)) {
    set_last_error(cudaErrorInvalidValue);
    return false;
  }
  return true;
}

void progress() { ++g_progress; }

void spin_yield(uint32_t bar, uint32_t parity) {
  g_cur->spin_bar = bar;
  g_cur->spin_parity = parity;
  yield(Fiber::kSpin);
}

bool on_fiber_stack(const void* p, size_t bytes) {
  const uintptr_t lo = (uintptr_t)g_cur->stack, a = (uintptr_t)p;
  return a >= lo && a + bytes <= lo + kStack;
}

namespace {

// No thread of the block can go on: some spin on mbarriers whose phases nothing will complete.
[[noreturn]] void deadlock(int n) {
  int spin = -1, spinning = 0, at_sync = 0, at_warp = 0, done = 0;
  for (int i = 0; i < n; ++i) {
    const Fiber::State s = g_fibers[i].state;
    if (s == Fiber::kSpin && spinning++ == 0) spin = i;
    at_sync += s == Fiber::kBlockBarrier;
    at_warp += s == Fiber::kWarpBarrier;
    done += s == Fiber::kDone;
  }
  if (spin < 0) fault("deadlock: no thread of the block can make progress", nullptr, 0);
  const Fiber& f = g_fibers[spin];
  char msg[768];
  std::snprintf(msg, sizeof msg,
                "deadlock: no thread of the block can make progress. This thread spins in mbarrier.try_wait.parity "
                "(parity %u) on the mbarrier at shared 0x%x, %s; of the block's %d threads %d spin on mbarriers, "
                "%d wait at __syncthreads, %d at a warp-collective, %d have exited",
                f.spin_parity, f.spin_bar, mbarrier_state(f.spin_bar).c_str(), n, spinning, at_sync, at_warp, done);
  fault_thread(msg, spin);
}

// One block: sweeps over its warps until every thread has exited. A sweep runs each warp's lanes
// in rounds (a warp-collective releases when all its lanes reach it) until they wait at the block
// barrier, exit, or spin on an mbarrier; a warp-collective that waits for spinning lanes waits for
// the next sweep. When every thread waits at the block barrier it is released; when some spin, the
// sweep is repeated while anything progresses, and a sweep without progress is a deadlock.
void run_block(int n, int warps, int salt) {
  for (int sweep = 0;; ++sweep) {
    const unsigned long long before = g_progress;
    const std::vector<int> worder = order_of(warps, sweep + salt);
    for (int w : worder) {
      const int l0 = w * 32, l1 = std::min(n, l0 + 32);
      for (int round = 0;; ++round) {
        const std::vector<int> lorder = order_of(l1 - l0, round * 7 + sweep);
        for (int l : lorder) {
          Fiber& f = g_fibers[l0 + l];
          if (f.state != Fiber::kRun && f.state != Fiber::kSpin) continue;
          resume(f);
          proxy_after_run(f.lin);
        }
        int warp_bar = 0, spin = 0, other = 0;
        for (int i = l0; i < l1; ++i) {
          const Fiber::State s = g_fibers[i].state;
          if (s == Fiber::kWarpBarrier) ++warp_bar;
          else if (s == Fiber::kSpin) ++spin;
          else ++other;  // at the block barrier, or finished
        }
        if (warp_bar == 0) break;
        if (other != 0) fault("warp divergence at a warp-collective operation", nullptr, 0);
        if (spin != 0) break;  // the collective waits for lanes that spin: the next sweep
        for (int i = l0; i < l1; ++i)
          if (g_fibers[i].state == Fiber::kWarpBarrier) g_fibers[i].state = Fiber::kRun;
      }
    }
    int at_barrier = 0, done = 0, waiting = 0;
    for (int i = 0; i < n; ++i) {
      const Fiber::State s = g_fibers[i].state;
      if (s == Fiber::kBlockBarrier) ++at_barrier;
      else if (s == Fiber::kDone) ++done;
      else waiting += s == Fiber::kSpin || s == Fiber::kWarpBarrier;
    }
    if (waiting != 0) {
      if (g_progress == before) deadlock(n);
      continue;
    }
    if (at_barrier == 0) return;  // all done
    if (done != 0) fault("__syncthreads reached by only some threads of the block", nullptr, 0);
    for (int i = 0; i < n; ++i) g_fibers[i].state = Fiber::kRun;
    tma_block_sync();
  }
}

}  // namespace

void launch_impl(const char* name, const void* func, dim3 grid, dim3 block, size_t smem, void (*thunk)(void*),
                 void* ctx) {
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  ++g_launches;
  g_kernel = name;
  window_launch(func, smem);  // this launch's arrays get their addresses as they are reached
  proxy_launch(func);
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
  const unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
  unsigned long long block_no = 0;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx, ++block_no) {
        blockIdx = uint3{bx, by, bz};
        window_block(++g_block_serial);
        for (int i = 0; i < n; ++i) {
          Fiber& f = g_fibers[i];
          f.state = Fiber::kRun;
          f.mma_calls = 0;
          f.exchanges = 0;
        }
        wgmma_block_begin(n);
        tma_block_begin(n);
        proxy_block_begin(block_no == 0, block_no + 1 == blocks);
        run_block(n, warps, (int)block_no);
        wgmma_block_end();
        tma_block_end();
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
