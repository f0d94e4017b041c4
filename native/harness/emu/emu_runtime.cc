// emu_runtime.cc: the CPU side of the CUDA emulator (emu.h): fibers and their scheduler, the
// device allocations and their checks, the runtime API stubs, and the mma.sync model.
#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "device_probe.h"

uint3 blockIdx;
dim3 blockDim, gridDim;

namespace emu {

// ------------------------------------------------------------ fibers
struct Fiber {
  ucontext_t ctx;
  uint3 tid;
  int lin = 0;
  enum State { kRun, kBlockBarrier, kWarpBarrier, kDone } state = kRun;
  unsigned mma_calls = 0;
};

namespace {

constexpr size_t kStack = 256 * 1024;
std::vector<Fiber> g_fibers;
std::vector<std::vector<char>> g_stacks;
ucontext_t g_sched;
Fiber* g_cur = nullptr;
void (*g_thunk)(void*) = nullptr;
void* g_ctx = nullptr;
const char* g_kernel = "";
cudaError_t g_last_error = cudaSuccess;
int g_order = 0;  // 0 fwd, 1 rev, 2 shuffle
unsigned long long g_launches = 0, g_switches = 0;

void fiber_main() {
  g_thunk(g_ctx);
  g_cur->state = Fiber::kDone;
}  // uc_link returns to the scheduler

void yield(Fiber::State s) {
  Fiber* f = g_cur;
  f->state = s;
  ++g_switches;
  swapcontext(&f->ctx, &g_sched);
}

void resume(Fiber& f) {
  g_cur = &f;
  f.state = Fiber::kRun;
  swapcontext(&g_sched, &f.ctx);
  g_cur = nullptr;
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

// ------------------------------------------------------------ allocations
constexpr size_t kGuard = 256;
struct Alloc {
  size_t bytes;
  char* base;  // allocation start, kGuard before the user pointer
};
std::map<uintptr_t, Alloc> g_allocs;  // by user pointer

const Alloc* find_alloc(const void* p, size_t bytes) {
  const uintptr_t a = (uintptr_t)p;
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  if (a + bytes <= it->first + it->second.bytes) return &it->second;
  return nullptr;
}

bool guards_ok(const Alloc& al, std::string* where) {
  const unsigned char* lo = (const unsigned char*)al.base;
  const unsigned char* hi = lo + kGuard + al.bytes;
  for (size_t i = 0; i < kGuard; ++i) {
    if (lo[i] != 0xA5) {
      *where = "before start, offset -" + std::to_string(kGuard - i);
      return false;
    }
    if (hi[i] != 0xA5) {
      *where = "past end, offset +" + std::to_string(i);
      return false;
    }
  }
  return true;
}

void* alloc(size_t bytes) {
  const size_t total = (bytes + 2 * kGuard + 255) / 256 * 256;
  char* base = static_cast<char*>(std::aligned_alloc(256, total));
  if (!base) return nullptr;
  std::memset(base, 0xA5, kGuard);
  std::memset(base + kGuard, 0xFF, bytes);  // NaN everywhere until written
  std::memset(base + kGuard + bytes, 0xA5, kGuard);
  void* p = base + kGuard;
  g_allocs[(uintptr_t)p] = Alloc{bytes, base};
  return p;
}

cudaError_t release(void* p) {
  if (!p) return cudaSuccess;
  auto it = g_allocs.find((uintptr_t)p);
  if (it == g_allocs.end()) return cudaErrorInvalidValue;
  std::string where;
  if (!guards_ok(it->second, &where)) {
    std::fprintf(stderr, "EMU FAULT: guard of allocation %p (%zu bytes) overwritten %s (found at free)\n", p,
                 it->second.bytes, where.c_str());
    std::abort();
  }
  std::free(it->second.base);
  g_allocs.erase(it);
  return cudaSuccess;
}

}  // namespace

Fiber* current() { return g_cur; }
const uint3& current_tid() { return g_cur->tid; }
int lane_linear() { return g_cur->lin; }
void syncthreads() { yield(Fiber::kBlockBarrier); }
void warp_barrier() { yield(Fiber::kWarpBarrier); }

void fault(const char* what, const void* p, size_t bytes) {
  std::fprintf(stderr, "EMU FAULT in %s: %s at %p (%zu bytes), block (%u,%u,%u) thread (%u,%u,%u)\n", g_kernel, what,
               p, bytes, blockIdx.x, blockIdx.y, blockIdx.z, g_cur ? g_cur->tid.x : 0u, g_cur ? g_cur->tid.y : 0u,
               g_cur ? g_cur->tid.z : 0u);
  std::abort();
}

void check_access(const void* p, size_t bytes, size_t align, bool global_only) {
  if (((uintptr_t)p & (align - 1)) != 0) fault("misaligned vector access", p, bytes);
  if (global_only && !find_alloc(p, bytes)) fault("read outside every device allocation", p, bytes);
}

// ------------------------------------------------------------ launches
void launch_impl(const char* name, dim3 grid, dim3 block, void (*thunk)(void*), void* ctx) {
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535u || grid.z > 65535u ||
      threads == 0 || threads > 1024 || block.z > 64) {
    std::fprintf(stderr, "EMU: launch of %s with grid (%u,%u,%u) block (%u,%u,%u): invalid configuration\n", name,
                 grid.x, grid.y, grid.z, block.x, block.y, block.z);
    g_last_error = cudaErrorInvalidConfiguration;
    return;
  }
  ++g_launches;
  g_kernel = name;
  g_thunk = thunk;
  g_ctx = ctx;
  gridDim = grid;
  blockDim = block;
  const int n = (int)threads;
  if ((int)g_fibers.size() < n) {
    g_fibers.resize(n);
    while ((int)g_stacks.size() < n) g_stacks.emplace_back(kStack);
  }
  const int warps = (n + 31) / 32;
  unsigned long long block_no = 0;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx, ++block_no) {
        blockIdx = uint3{bx, by, bz};
        for (int i = 0; i < n; ++i) {
          Fiber& f = g_fibers[i];
          f.lin = i;
          f.tid = uint3{(unsigned)(i % block.x), (unsigned)((i / block.x) % block.y), (unsigned)(i / (block.x * block.y))};
          f.state = Fiber::kRun;
          f.mma_calls = 0;
          getcontext(&f.ctx);
          f.ctx.uc_stack.ss_sp = g_stacks[i].data();
          f.ctx.uc_stack.ss_size = kStack;
          f.ctx.uc_link = &g_sched;
          makecontext(&f.ctx, fiber_main, 0);
        }
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
      }
  for (auto& kv : g_allocs) {
    std::string where;
    if (!guards_ok(kv.second, &where)) {
      std::fprintf(stderr, "EMU FAULT in %s: allocation %p (%zu bytes) written %s\n", name, (void*)kv.first,
                   kv.second.bytes, where.c_str());
      std::abort();
    }
  }
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

void set_order_from_env() {
  const char* o = std::getenv("EMU_ORDER");
  g_order = !o ? 0 : std::string(o) == "rev" ? 1 : std::string(o) == "shuffle" ? 2 : 0;
}
void stats(unsigned long long* launches, unsigned long long* switches) {
  *launches = g_launches;
  *switches = g_switches;
}

}  // namespace emu

// ------------------------------------------------------------ runtime API
cudaError_t cudaGetLastError() {
  const cudaError_t e = emu::g_last_error;
  emu::g_last_error = cudaSuccess;
  return e;
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    default: return "cudaErrorUnknown(emu)";
  }
}
const char* cudaGetErrorString(cudaError_t e) { return cudaGetErrorName(e); }
cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int) {  // an H100 SXM: sm_90, 132 SMs
  *v = a == cudaDevAttrComputeCapabilityMajor ? 9 : a == cudaDevAttrComputeCapabilityMinor ? 0 : 132;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = emu::alloc(bytes);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) { return emu::release(p); }
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (kind != cudaMemcpyHostToDevice && !emu::find_alloc(src, bytes)) emu::fault("cudaMemcpy source", src, bytes);
  if (kind != cudaMemcpyDeviceToHost && !emu::find_alloc(dst, bytes)) emu::fault("cudaMemcpy destination", dst, bytes);
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  if (!emu::find_alloc(p, bytes)) emu::fault("cudaMemsetAsync outside an allocation", p, bytes);
  std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

int imagerate_cuda_probe(char* reason, int reason_len, int* drv, int* rt, ImagerateCudaDevice*, int) {
  std::snprintf(reason, (size_t)reason_len, "emulator");
  *drv = *rt = 0;
  return 0;
}
