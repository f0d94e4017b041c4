// gemm_bench.cc: see gemm_bench.h. Timing protocol, identical for ours and OpenBLAS:
//   1. allocate A (m x k), B (k x n), C (m x n), row-major, 64-byte aligned; fill A and B with
//      uniform [-1, 1) from a fixed-seed xorshift and C with zeros (so every page is touched
//      before the clock starts);
//   2. run `warmup` untimed calls, then `iters` calls, each timed alone with steady_clock;
//   3. return the per-call seconds. Statistics (median, p10/p90) are the caller's job.
// OpenBLAS's pthread workers busy-wait for a while after each call, so anything timed right
// after blasTimed on the same cores is slowed down; the TypeScript driver runs ours first and
// pauses after OpenBLAS (src/bench/gemm-bench.ts).
#include "gemm_bench.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "op_args.h"
#include "kernels.h"
#include "parallel.h"

namespace imagerate {
namespace {

// ---------------------------------------------------------------- OpenBLAS, found at run time

enum { kRowMajor = 101, kNoTrans = 111 };
using CblasSgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*,
                            int, float, float*, int);
using SetThreads = void (*)(int);
using GetConfig = char* (*)();

struct Blas {
  bool available = false;
  std::string reason, library, config;
  CblasSgemm sgemm = nullptr;
  SetThreads set_threads = nullptr;
};

const Blas& blas() {
  static Blas b;
  static std::once_flag once;
  std::call_once(once, [] {
    void* h = nullptr;
    std::string errors;
    for (const char* name : {"libopenblas.so.0", "libopenblas.so"}) {
      h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (h) break;
      const char* e = dlerror();
      errors += std::string(errors.empty() ? "" : "; ") + (e ? e : name);
    }
    if (!h) {
      b.reason = "dlopen failed: " + errors;
      return;
    }
    // Never dlclose: OpenBLAS keeps worker threads alive inside the library.
    b.sgemm = reinterpret_cast<CblasSgemm>(dlsym(h, "cblas_sgemm"));
    b.set_threads = reinterpret_cast<SetThreads>(dlsym(h, "openblas_set_num_threads"));
    auto get_config = reinterpret_cast<GetConfig>(dlsym(h, "openblas_get_config"));
    if (!b.sgemm || !b.set_threads) {
      b.reason = "the library has no cblas_sgemm/openblas_set_num_threads";
      return;
    }
    Dl_info di;
    if (dladdr(reinterpret_cast<void*>(b.sgemm), &di) && di.dli_fname) {
      char* real = realpath(di.dli_fname, nullptr);
      b.library = real ? real : di.dli_fname;
      std::free(real);
    }
    if (get_config) b.config = get_config();
    b.available = true;
  });
  return b;
}

// ---------------------------------------------------------------- matrices and timing

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using Matrix = std::unique_ptr<float[], FreeDeleter>;

Matrix random_matrix(const Args& a, int64_t count, uint64_t seed, bool zero) {
  const size_t bytes = (static_cast<size_t>(count) * sizeof(float) + 63) / 64 * 64;
  Matrix m(static_cast<float*>(std::aligned_alloc(64, bytes)));
  if (!m) a.fail("out of memory allocating " + std::to_string(bytes) + " bytes");
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < count; ++i) {
    if (zero) {
      m[i] = 0.0f;
      continue;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    m[i] = static_cast<float>((s >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0);  // 24 random bits
  }
  return m;
}

struct Shape {
  int64_t m, n, k, threads, iters, warmup;
};

Shape parse(const Args& a) {
  Shape s{a.dim(0, "m"), a.dim(1, "n"), a.dim(2, "k"), a.dim(3, "threads"), a.dim(4, "iters"),
          a.index(5, "warmup")};
  if (s.m > INT_MAX || s.n > INT_MAX || s.k > INT_MAX) a.fail("m, n and k must fit in int32");
  const double bytes = 4.0 * (double(s.m) * s.k + double(s.k) * s.n + double(s.m) * s.n);
  if (bytes > 8.0 * (1ull << 30)) a.fail("the three matrices would need more than 8 GiB");
  if (s.threads > 1024) a.fail("threads must be at most 1024");
  if (s.iters > 100000 || s.warmup > 100000) a.fail("iters and warmup must be at most 100000");
  return s;
}

template <typename Call>
Napi::Value time_calls(const Args& a, const Shape& s, Call call) {
  Matrix A = random_matrix(a, s.m * s.k, 1, false), B = random_matrix(a, s.k * s.n, 2, false);
  Matrix C = random_matrix(a, s.m * s.n, 3, true);
  Napi::Float64Array out = Napi::Float64Array::New(a.env(), static_cast<size_t>(s.iters));
  for (int64_t i = 0; i < s.warmup + s.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    call(A.get(), B.get(), C.get());
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= s.warmup) out[static_cast<size_t>(i - s.warmup)] = std::chrono::duration<double>(t1 - t0).count();
  }
  return out;
}

Napi::Value GemmTimed(const Napi::CallbackInfo& info) {
  Args a(info, "gemmTimed", 6);
  const Shape s = parse(a);
  if (num_threads() != s.threads) set_num_threads(static_cast<int>(s.threads));  // see gemm_bench.h
  return time_calls(a, s, [&](const float* A, const float* B, float* C) {
    gemm_f32(false, false, s.m, s.n, s.k, 1.0f, A, s.k, B, s.n, 0.0f, C, s.n);
  });
}

Napi::Value BlasTimed(const Napi::CallbackInfo& info) {
  Args a(info, "blasTimed", 6);
  const Shape s = parse(a);
  const Blas& b = blas();
  if (!b.available) a.fail("OpenBLAS not available: " + b.reason);
  b.set_threads(static_cast<int>(s.threads));
  const int m = static_cast<int>(s.m), n = static_cast<int>(s.n), k = static_cast<int>(s.k);
  return time_calls(a, s, [&](const float* A, const float* B, float* C) {
    b.sgemm(kRowMajor, kNoTrans, kNoTrans, m, n, k, 1.0f, A, k, B, n, 0.0f, C, n);
  });
}

// The core clock while this thread runs: a chain of dependent register-register adds retires one
// add per cycle on x86 cores (register operands: some cores fold add-immediate chains at
// rename), so adds / second = cycles / second. Best of 7 runs of
// ~2 ms each, so it reports the boosted clock a busy core actually gets, not the nominal one
// /proc/cpuinfo shows under a hypervisor. NaN where there is no x86 asm.
double measure_clock_ghz() {
#if defined(__x86_64__)
  constexpr int64_t kTrips = 1 << 19;  // x 8 adds = 4.2 M cycles, ~1.3 ms at 3.2 GHz
  double best = 0.0;
  for (int rep = 0; rep < 7; ++rep) {
    int64_t x = 0, n = kTrips, y = 1;
    const auto t0 = std::chrono::steady_clock::now();
    __asm__ volatile(
        "1:\n\t"
        "add %[y], %[x]\n\tadd %[y], %[x]\n\tadd %[y], %[x]\n\tadd %[y], %[x]\n\t"
        "add %[y], %[x]\n\tadd %[y], %[x]\n\tadd %[y], %[x]\n\tadd %[y], %[x]\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        : [x] "+r"(x), [n] "+r"(n)
        : [y] "r"(y)
        : "cc");
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (sec > 0) best = std::max(best, 8.0 * kTrips / sec * 1e-9);
  }
  return best;
#else
  return std::nan("");
#endif
}

Napi::Value CpuClockGhz(const Napi::CallbackInfo& info) {
  Args a(info, "cpuClockGhz", 0);
  return Napi::Number::New(info.Env(), measure_clock_ghz());
}

Napi::Value BlasInfo(const Napi::CallbackInfo& info) {
  Args a(info, "blasInfo", 0);
  const Blas& b = blas();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("available", b.available);
  if (!b.available) o.Set("reason", b.reason);
  if (!b.library.empty()) o.Set("library", b.library);
  if (!b.config.empty()) o.Set("config", b.config);
  return o;
}

}  // namespace

void RegisterGemmBench(Napi::Env env, Napi::Object exports) {
  exports.Set("gemmTimed", Napi::Function::New(env, GemmTimed, "gemmTimed"));
  exports.Set("blasInfo", Napi::Function::New(env, BlasInfo, "blasInfo"));
  exports.Set("blasTimed", Napi::Function::New(env, BlasTimed, "blasTimed"));
  exports.Set("cpuClockGhz", Napi::Function::New(env, CpuClockGhz, "cpuClockGhz"));
}

}  // namespace imagerate
