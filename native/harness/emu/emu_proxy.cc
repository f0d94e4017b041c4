// emu_proxy.cc: which shared-memory bytes the async proxy may read: the tensor core of
// wgmma.mma_async and the TMA copy engine access shared memory through the async proxy, the
// threads' ordinary loads and stores through the generic proxy, and
//   - fence.proxy.async orders the executing thread's prior generic-proxy accesses before its
//     later async-proxy ones (PTX ISA 9.7.13.4, membar/fence: proxy fences);
//   - "An async proxy fence must be used to establish an ordering between prior writes to shared
//     memory matrices and subsequent reads of the same matrices in a wgmma.mma_async
//     instruction" (9.7.15.7.1, wgmma.fence);
//   - the copy's writes (cp.async.bulk.tensor, 9.7.9.25.5.2) are async-proxy writes, seen by the
//     threads after the mbarrier wait that observes their completion (emu_tma.cc checks that).
// So each shared byte is either visible to the async proxy or holds an ordinary store of some
// thread that has not executed fence.proxy.async since.
//
// Ordinary stores are plain C++ stores here, so they are found afterwards: in a tracked block the
// emulator keeps a copy of each shared array and compares it with the array whenever a fiber has
// run (between two fiber switches only that fiber ran, so every changed byte is its store), and
// when a fiber executes a fence, an mma_async or a copy (its stores up to that instruction). A
// store that leaves a byte's value unchanged is not seen, and could not change what the tensor
// core reads in that run either.
// Comparing up to 128 KiB per fiber switch is not free, so only some blocks are tracked (a
// kernel's fence placement is the same in every block and every launch): per kernel (each
// template instantiation), in its first 8 launches and every 8th after, the launch's last block
// (it holds the edge tiles) and, while the kernel is not yet known to use the async proxy, its
// first. EMU_PROXY=all tracks every block, EMU_PROXY=off none (default: sampled). A block is
// tracked from its start once the kernel is known (an earlier block of it used the async proxy),
// else from its first async-proxy instruction, so a kernel's very first block sees only the stores
// after that; emu_wgmma.cc keeps a coarser check for blocks not tracked from their start.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "emu_internal.h"

namespace emu {
namespace {

struct Region {  // one shared array (or the dynamic shared memory) of the block
  unsigned char* host;
  uint32_t addr;
  size_t bytes;
  std::vector<unsigned char> copy;  // its bytes as last seen
  std::vector<int16_t> owner;       // per byte: -1 visible to the async proxy; t: thread t's unfenced store
};
struct Span {  // bytes [begin, end) of region r stored by a thread since its last fence
  int r;
  size_t begin, end;
};

int mode_from_env() {  // 0 off, 1 sampled, 2 all
  const char* m = std::getenv("EMU_PROXY");
  return !m ? 1 : std::string(m) == "all" ? 2 : std::string(m) == "off" ? 0 : 1;
}
const int g_mode = mode_from_env();
struct Kernel {
  unsigned long long launches = 0;
  bool async = false;  // used the async proxy in an earlier block
};
std::map<const void*, Kernel> g_kernels;
Kernel* g_kernel = nullptr;     // the running launch's
bool g_launch_sampled = false;
std::vector<Region> g_regions;
std::vector<std::vector<Span>> g_dirty;  // per thread
size_t g_unfenced = 0;                   // bytes with an owner
bool g_tracked = false, g_active = false, g_precise = false;

Region* region_of(uint32_t addr) {
  for (Region& r : g_regions)
    if (addr >= r.addr && addr < r.addr + r.bytes) return &r;
  return nullptr;
}

void note_dirty(int lin, int r, size_t begin, size_t end) {
  if ((size_t)lin >= g_dirty.size()) g_dirty.resize((size_t)lin + 1);
  std::vector<Span>& v = g_dirty[(size_t)lin];
  if (!v.empty() && v.back().r == r && v.back().end == begin) v.back().end = end;
  else v.push_back(Span{r, begin, end});
}

void snapshot_all() {
  for (Region& r : g_regions) {
    std::memcpy(r.copy.data(), r.host, r.bytes);
    std::fill(r.owner.begin(), r.owner.end(), (int16_t)-1);
  }
  g_dirty.clear();
  g_unfenced = 0;
}

}  // namespace

void proxy_launch(const void* func) {
  g_kernel = &g_kernels[func];
  const unsigned long long n = g_kernel->launches++;
  g_launch_sampled = g_mode == 2 || (g_mode == 1 && (n < 8 || n % 8 == 0));
}

void proxy_block_begin(bool first, bool last) {
  g_regions.clear();
  g_dirty.clear();
  g_unfenced = 0;
  g_tracked = g_launch_sampled && (g_mode == 2 || last || (first && !g_kernel->async));
  g_precise = g_active = g_tracked && g_kernel->async;
}

void proxy_region(unsigned char* host, uint32_t addr, size_t bytes) {
  if (!g_tracked) return;
  for (Region& r : g_regions)
    if (r.addr == addr) return;  // poisoned once per block
  g_regions.push_back(Region{host, addr, bytes, std::vector<unsigned char>(host, host + bytes),
                             std::vector<int16_t>(bytes, (int16_t)-1)});
}

void proxy_activate() {
  g_kernel->async = true;
  if (g_active || !g_tracked) return;
  g_active = true;
  snapshot_all();  // what was stored before is taken as visible: not tracked
}

bool proxy_precise() { return g_precise; }

void proxy_attribute(int lin) {
  if (!g_active) return;
  for (size_t ri = 0; ri < g_regions.size(); ++ri) {
    Region& r = g_regions[ri];
    constexpr size_t kChunk = 256;
    for (size_t c = 0; c < r.bytes; c += kChunk) {
      const size_t n = std::min(kChunk, r.bytes - c);
      if (std::memcmp(r.host + c, r.copy.data() + c, n) == 0) continue;
      for (size_t i = c; i < c + n; ++i) {
        if (r.host[i] == r.copy[i]) continue;
        r.copy[i] = r.host[i];
        if (r.owner[i] < 0) ++g_unfenced;
        r.owner[i] = (int16_t)lin;
        note_dirty(lin, (int)ri, i, i + 1);
      }
    }
  }
}

void proxy_after_run(int lin) {
  if (g_active) proxy_attribute(lin);
}

void proxy_fence(int lin) {
  if (!g_active) return;
  proxy_attribute(lin);
  if ((size_t)lin >= g_dirty.size()) return;
  for (const Span& s : g_dirty[(size_t)lin]) {
    Region& r = g_regions[(size_t)s.r];
    for (size_t i = s.begin; i < s.end; ++i)
      if (r.owner[i] == lin) {
        r.owner[i] = -1;
        --g_unfenced;
      }
  }
  g_dirty[(size_t)lin].clear();
}

void proxy_emulator_write(uint32_t addr, size_t bytes) {
  if (!g_active) return;
  for (size_t done = 0; done < bytes;) {
    Region* r = region_of(addr + (uint32_t)done);
    if (!r) return;
    const size_t at = addr + done - r->addr, n = std::min(bytes - done, r->bytes - at);
    std::memcpy(r->copy.data() + at, r->host + at, n);
    for (size_t i = at; i < at + n; ++i)
      if (r->owner[i] >= 0) {
        r->owner[i] = -1;
        --g_unfenced;
      }
    done += n;
  }
}

int proxy_unfenced(uint32_t addr, size_t bytes, uint32_t* at) {
  if (!g_active || g_unfenced == 0) return -1;
  for (size_t done = 0; done < bytes;) {
    const Region* r = region_of(addr + (uint32_t)done);
    if (!r) return -1;
    const size_t off = addr + done - r->addr, n = std::min(bytes - done, r->bytes - off);
    for (size_t i = off; i < off + n; ++i)
      if (r->owner[i] >= 0) {
        *at = r->addr + (uint32_t)i;
        return r->owner[i];
      }
    done += n;
  }
  return -1;
}

}  // namespace emu
