// emu_memory.cc: the emulator's device memory (emu_internal.h). Layout of one allocation of
// `bytes` (span = bytes rounded up to 256, as cudaMalloc aligns):
//   [no-access page][guard bytes >= 256][user: bytes][guard: span - bytes][no-access page]
// The user span ends right at the second no-access page, so any access past it faults at
// once (a SIGSEGV that the handler below names); the guard bytes (0xA5) before the start and
// in the rounding slack are checked after every launch (check_guards: the 256 bytes next to the
// start) and at free (all of them), for stray writes. An overrun of more than a page can land
// in the next mapping; only the first page past the end is sure to fault. Fresh memory is 0xFF bytes: NaN as floats. Launching thread only (no locks).
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "cuda_runtime.h"
#include "emu_internal.h"

namespace emu {
namespace {

constexpr size_t kGuard = 256, kPage = 4096;
struct Alloc {
  size_t bytes, span;
  char* map;        // the mapping's start (the first no-access page)
  size_t map_bytes;
};
std::map<uintptr_t, Alloc> g_allocs;  // by user pointer
size_t g_used = 0;
struct sigaction g_old_segv;
pthread_t g_owner;  // the thread that allocates and launches (the only one the handler judges)

const Alloc* find_alloc(const void* p, size_t bytes) {
  const uintptr_t a = (uintptr_t)p;
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  if (a + bytes <= it->first + it->second.bytes) return &it->second;
  return nullptr;
}

// The guard bytes before the user start (the last 256 of them, or from the mapping's first
// accessible byte when `whole`) and in the rounding slack after its end.
bool guards_ok(uintptr_t user, const Alloc& al, std::string* where, bool whole = false) {
  const unsigned char* first = whole ? (const unsigned char*)al.map + kPage : (const unsigned char*)user - kGuard;
  for (const unsigned char* q = first; q < (const unsigned char*)user; ++q) {
    if (*q != 0xA5) {
      *where = "before start, offset -" + std::to_string((const unsigned char*)user - q);
      return false;
    }
  }
  const unsigned char* slack = (const unsigned char*)user + al.bytes;
  for (size_t i = 0; i < al.span - al.bytes; ++i) {
    if (slack[i] != 0xA5) {
      *where = "past end, offset +" + std::to_string(i);
      return false;
    }
  }
  return true;
}

// A fault in a no-access page of an allocation: name it, the kernel and the thread. Any other
// SIGSEGV goes to the handler that was there before (Node's, V8's).
void on_segv(int sig, siginfo_t* info, void* uctx) {
  const uintptr_t addr = (uintptr_t)info->si_addr;
  // g_allocs belongs to the launching thread: a fault on any other thread is not ours to read.
  if (pthread_equal(pthread_self(), g_owner)) {
    for (const auto& kv : g_allocs) {
      const Alloc& al = kv.second;
      const uintptr_t m = (uintptr_t)al.map, end = m + al.map_bytes;
      const bool before = addr >= m && addr < m + kPage, past = addr >= end - kPage && addr < end;
      if (!before && !past) continue;
      char msg[96];
      std::snprintf(msg, sizeof msg, "access %s allocation %p (%zu bytes)", before ? "before the start of" : "past the end of",
                    (void*)kv.first, al.bytes);
      fault(msg, (void*)addr, 0);
    }
  }
  if (g_old_segv.sa_flags & SA_SIGINFO) {
    g_old_segv.sa_sigaction(sig, info, uctx);
  } else if (g_old_segv.sa_handler != SIG_DFL && g_old_segv.sa_handler != SIG_IGN) {
    g_old_segv.sa_handler(sig);
  } else {
    sigaction(SIGSEGV, &g_old_segv, nullptr);  // the default action, when the access repeats
  }
}

void install_segv_handler() {
  static bool done = false;
  if (done) return;
  done = true;
  g_owner = pthread_self();
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_old_segv);
}

}  // namespace

size_t device_used() { return g_used; }
bool is_device(const void* p, size_t bytes) { return find_alloc(p, bytes) != nullptr; }

void* device_alloc(size_t bytes) {
  if (bytes > device_capacity() || g_used + bytes > device_capacity()) return nullptr;
  install_segv_handler();
  const size_t span = std::max<size_t>(256, (bytes + 255) / 256 * 256);
  const size_t data = (span + kGuard + kPage - 1) / kPage * kPage;
  const size_t map_bytes = data + 2 * kPage;
  void* m = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  char* map = static_cast<char*>(m);
  if (mprotect(map, kPage, PROT_NONE) != 0 || mprotect(map + kPage + data, kPage, PROT_NONE) != 0) {
    std::perror("EMU: mprotect of an allocation's no-access pages (vm.max_map_count?)");
    std::abort();
  }
  char* p = map + kPage + data - span;
  std::memset(map + kPage, 0xA5, (size_t)(p - (map + kPage)));
  std::memset(p, 0xFF, bytes);  // NaN everywhere until written
  std::memset(p + bytes, 0xA5, span - bytes);
  g_allocs[(uintptr_t)p] = Alloc{bytes, span, map, map_bytes};
  g_used += bytes;
  return p;
}

cudaError_t device_free(void* p) {
  if (!p) return cudaSuccess;
  auto it = g_allocs.find((uintptr_t)p);
  if (it == g_allocs.end()) return cudaErrorInvalidValue;
  std::string where;
  if (!guards_ok(it->first, it->second, &where, true)) {
    std::fprintf(stderr, "EMU FAULT: guard of allocation %p (%zu bytes) overwritten %s (found at free)\n", p,
                 it->second.bytes, where.c_str());
    std::abort();
  }
  munmap(it->second.map, it->second.map_bytes);
  g_used -= it->second.bytes;
  g_allocs.erase(it);
  return cudaSuccess;
}

void check_guards(const char* kernel) {
  for (auto& kv : g_allocs) {
    std::string where;
    if (!guards_ok(kv.first, kv.second, &where)) {
      std::fprintf(stderr, "EMU FAULT in %s: allocation %p (%zu bytes) written %s\n", kernel, (void*)kv.first,
                   kv.second.bytes, where.c_str());
      std::abort();
    }
  }
}

}  // namespace emu
