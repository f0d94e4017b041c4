// emu_selftest.cc: the wgmma model's own checks, independent of the GEMM kernels that use it
// (imagerate_cuda_emu --selftest-wgmma; CI runs it beside the harness's checks). Compiled like
// the kernels (__CUDA_ARCH__, __CUDA_ARCH_FEAT_SM90_ALL: cmake/cuda_emu.cmake), it calls
// wgmma.cuh's functions as transform.py rewrote them, but places the operands and builds the
// descriptors itself, from the PTX ISA's text (emu_wgmma.cc's header lists the readings):
//   - A (128 rows: 2 warpgroups x 64) and B (128 rows), K-major, no swizzle, in three layouts:
//     core matrices adjacent along k contiguous (LBO 128), row groups contiguous (SBO 128),
//     and both padded; each warpgroup multiplies its 64 rows of A by all of B, two
//     mma_asyncs (two k steps of 32 bytes) per group, in tf32, bf16 and fp16;
//   - every thread's 64 accumulators, written out by the fragment layout, against a double
//     reference (the values are exact in every format, so the comparison is exact);
//   - scale-d 0 (the NaN accumulators are ignored) and 1; one and two mma_asyncs per group;
//     two groups, each waited for before the next k slab is staged;
//   - an operand overwritten after the commit and before the wait: the result is the new
//     operand's (the model reads shared memory when the wait completes the group);
//   - __cvta_generic_to_shared: window addresses at odd multiples of the declared alignment;
//   - every check of the model (bad descriptors, missing fence, commit or wait, lanes or warps
//     that disagree, ...): the kernel must abort with the emulator's message naming the check.
// Each case runs in a forked child, so that a fault fails that case alone.
// Prints one line per check and "N passed, M failed"; returns 0 when all passed.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "emu_selftest.h"
#include "wgmma.cuh"

namespace emu_test {  // emu_selftest.h

bool run_child(const std::function<int()>& body, std::string* err, int* status, bool* aborted) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    const rlimit none{0, 0};
    setrlimit(RLIMIT_CORE, &none);  // no core file per expected abort
    signal(SIGABRT, SIG_DFL);
    const int rc = body();
    std::fflush(stderr);
    _exit(rc);
  }
  close(fds[1]);
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) err->append(buf, (size_t)n);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  *aborted = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return true;
}

}  // namespace emu_test

namespace {

using emu_test::run_child;

using imagerate::cuda::MathMode;
namespace wg = imagerate::cuda::wg;

int g_passed = 0, g_failed = 0;

void report(bool ok, const std::string& name, const std::string& why = "") {
  ++(ok ? g_passed : g_failed);
  std::printf("%s  wgmma self-test: %s%s%s\n", ok ? "ok  " : "FAIL", name.c_str(), why.empty() ? "" : ": ",
              why.c_str());
}

// The matrix descriptor per the PTX ISA's table (9.7.15.5.1.2.2), written apart from wg::desc:
// matrix-descriptor-encode(x) = (x & 0x3FFFF) >> 4 in bits 0-13 (start address), 16-29 (LBO),
// 32-45 (SBO); base offset (49-51) and swizzle mode (62-63) 0.
uint64_t ptx_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  auto enc = [](uint64_t x) { return (x & 0x3FFFF) >> 4; };
  return enc(addr) | enc(lbo) << 16 | enc(sbo) << 32;
}

// Byte offset of element (row, k), e bytes each, of a K-major operand without swizzle: core
// matrices of 8 rows x 16 bytes (128 contiguous bytes), LBO apart along k, SBO along rows.
size_t kmajor_offset(int row, int k, int e, uint32_t lbo, uint32_t sbo) {
  const int at = k * e;
  return (size_t)(row / 8) * sbo + (size_t)(at / 16) * lbo + (row % 8) * 16 + at % 16;
}

// Bytes an operand of `rows` rows and `kbytes` bytes of k occupies from its start.
size_t extent(int rows, int kbytes, uint32_t lbo, uint32_t sbo) {
  return (size_t)(rows / 8 - 1) * sbo + (size_t)(kbytes / 16 - 1) * lbo + 128;
}

constexpr int kShared = 40 * 1024, kRows = 128;

struct Case {
  int kind;                             // 1 tf32, 2 bf16, 3 fp16
  uint32_t lbo_a, sbo_a, lbo_b, sbo_b;  // A: 128 rows (64 per warpgroup), B: 128 rows
  uint32_t b_at;                        // B's byte offset in the shared array (A's is 0)
  int ops, iters;                       // mma_asyncs per group; groups (k slabs)
  int scale_d;                          // of the first mma_async (the later ones accumulate)
  int overwrite;                        // restage A from a_new between commit and wait
  const float *a, *a_new, *b;           // 128 x ktot row-major (ktot = iters * ops * K)
  float* out;                           // 128 x 128, every thread's d by the fragment layout
};

int k_of(int kind) { return kind == 1 ? 8 : 16; }
int bytes_of(int kind) { return kind == 1 ? 4 : 2; }

float init_value(int row, int col) { return (float)(((row * 5 + col * 3) % 13) - 6) * 0.5f; }
float a_value(int row, int k, int seed) { return (float)(((row * 3 + k * 5 + seed) % 9) - 4) * 0.25f; }
float b_value(int row, int k) { return (float)(((row * 7 + k * 3) % 11) - 5) * 0.125f; }

uint32_t as_bits(float x, int kind) {
  if (kind == 1) return emu::bits(x);
  return kind == 2 ? emu::cvt_bf16_rn(x) : emu::cvt_f16_rn(x);
}

// Stages slab `it` of a 128-row operand into S at `at` in the K-major layout; all threads share it.
void stage(unsigned char* S, uint32_t at, const float* src, int it, const Case& c, uint32_t lbo, uint32_t sbo) {
  const int e = bytes_of(c.kind), slab = c.ops * k_of(c.kind), ktot = c.iters * slab;
  for (int i = (int)threadIdx.x; i < kRows * slab; i += (int)blockDim.x) {
    const int row = i / slab, k = i % slab;
    const uint32_t v = as_bits(src[(size_t)row * ktot + (size_t)it * slab + k], c.kind);
    std::memcpy(S + at + kmajor_offset(row, k, e, lbo, sbo), &v, e);
  }
}

// The accumulator fragment: d[4 j + q] of lane (g, t) of warp w is row 16 w + g + 8 (q / 2),
// column 8 j + 2 t + q % 2 of the warpgroup's 64 x 128 tile.
void fragment_at(int tid, int i, int* row, int* col) {
  const int wgi = tid / 128, warp = (tid / 32) % 4, lane = tid % 32, g = lane / 4, t = lane % 4;
  *row = 64 * wgi + 16 * warp + g + 8 * ((i % 4) / 2);
  *col = 8 * (i / 4) + 2 * t + i % 2;
}

template <MathMode MODE>
__global__ void wg_case(Case c) {
  __shared__ __align__(128) unsigned char S[kShared];
  emu::shared_fresh(S, sizeof S, __alignof__(S));
  const int tid = (int)threadIdx.x, wgi = tid / 128;
  const int K = k_of(c.kind), e = bytes_of(c.kind);
  float d[64];
  for (int i = 0; i < 64; ++i) {
    int row, col;
    fragment_at(tid, i, &row, &col);
    d[i] = c.scale_d ? init_value(row, col) : NAN;  // scale-d 0: never read
  }
  const uint32_t base = (uint32_t)__cvta_generic_to_shared(S);
  for (int it = 0; it < c.iters; ++it) {
    stage(S, 0, c.a, it, c, c.lbo_a, c.sbo_a);
    stage(S, c.b_at, c.b, it, c, c.lbo_b, c.sbo_b);
    wg::fence_proxy_async();
    __syncthreads();
    wg::fence();
    for (int op = 0; op < c.ops; ++op) {
      const uint32_t a_addr = base + (uint32_t)kmajor_offset(64 * wgi, op * K, e, c.lbo_a, c.sbo_a);
      const uint32_t b_addr = base + c.b_at + (uint32_t)kmajor_offset(0, op * K, e, c.lbo_b, c.sbo_b);
      wg::mma_m64n128<MODE>(d, ptx_desc(a_addr, c.lbo_a, c.sbo_a), ptx_desc(b_addr, c.lbo_b, c.sbo_b),
                            it == 0 && op == 0 ? c.scale_d : 1);
    }
    wg::commit();
    if (c.overwrite) {  // a race on a GPU: here every warp's wait then reads a_new
      __syncthreads();
      stage(S, 0, c.a_new, it, c, c.lbo_a, c.sbo_a);
      wg::fence_proxy_async();
      __syncthreads();
    }
    wg::wait_all();
    __syncthreads();  // every warp's group done before the next slab is staged
  }
  for (int i = 0; i < 64; ++i) {
    int row, col;
    fragment_at(tid, i, &row, &col);
    c.out[row * 128 + col] = d[i];
  }
}

float* device_copy(const std::vector<float>& v) {
  void* p = nullptr;
  cudaMalloc(&p, v.size() * sizeof(float));
  cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice);
  return (float*)p;
}

struct Layout {
  const char* name;
  uint32_t lbo_a, sbo_a, lbo_b, sbo_b;
};

// Layouts for `ops` k steps (2 ops core matrices along k per row).
Layout layout(int which, int ops) {
  const uint32_t kcm = 2 * ops;  // core matrices along k
  switch (which) {
    case 0: return {"k-adjacent core matrices contiguous", 128, 128 * kcm, 128, 128 * kcm};
    case 1: return {"row groups contiguous", 128 * (kRows / 8), 128, 128 * (kRows / 8), 128};
    default: return {"padded (LBO 160, SBO 48 more than the row group)", 160, 160 * kcm + 48, 160, 160 * kcm + 48};
  }
}

// One case: "" when every accumulator is right, else what was wrong.
std::string run_case(int kind, const Layout& L, int ops, int iters, int scale_d, int overwrite) {
  const int K = k_of(kind), ktot = iters * ops * K;
  std::vector<float> a(kRows * ktot), a_new(kRows * ktot), b(kRows * ktot), out(kRows * 128, NAN);
  for (int r = 0; r < kRows; ++r)
    for (int k = 0; k < ktot; ++k) {
      a[r * ktot + k] = a_value(r, k, 0);
      a_new[r * ktot + k] = a_value(r, k, 1);
      b[r * ktot + k] = b_value(r, k);
    }
  Case c{};
  c.kind = kind;
  c.lbo_a = L.lbo_a, c.sbo_a = L.sbo_a, c.lbo_b = L.lbo_b, c.sbo_b = L.sbo_b;
  const int kbytes = ops * K * bytes_of(kind);
  const size_t ea = extent(kRows, kbytes, L.lbo_a, L.sbo_a), eb = extent(kRows, kbytes, L.lbo_b, L.sbo_b);
  c.b_at = (uint32_t)((ea + 127) / 128 * 128);
  c.ops = ops, c.iters = iters, c.scale_d = scale_d, c.overwrite = overwrite;
  if (c.b_at + eb > (size_t)kShared) return "the test's operands do not fit its shared array";
  c.a = device_copy(a), c.a_new = device_copy(a_new), c.b = device_copy(b), c.out = device_copy(out);
  const dim3 grid(2), block(256);
  if (kind == 1) emu::launch("wgmma_selftest_tf32", grid, block, 0, nullptr, &wg_case<MathMode::TF32>, c);
  if (kind == 2) emu::launch("wgmma_selftest_bf16", grid, block, 0, nullptr, &wg_case<MathMode::BF16>, c);
  if (kind == 3) emu::launch("wgmma_selftest_fp16", grid, block, 0, nullptr, &wg_case<MathMode::FP16>, c);
  cudaMemcpy(out.data(), c.out, out.size() * sizeof(float), cudaMemcpyDeviceToHost);
  // D = (scale-d ? D0 : 0) + A B^T over every k, each warpgroup its own 64 rows of A.
  int bad = 0, same_as_old = 0;
  std::string first;
  for (int m = 0; m < kRows; ++m)
    for (int n = 0; n < 128; ++n) {
      double want = scale_d ? init_value(m, n) : 0.0, old = want;
      for (int k = 0; k < ktot; ++k) {
        want += (double)(overwrite ? a_new : a)[m * ktot + k] * b[n * ktot + k];
        old += (double)a[m * ktot + k] * b[n * ktot + k];
      }
      const float got = out[m * 128 + n];
      if (got == (float)old) ++same_as_old;
      if (!(got == (float)want) && bad++ == 0)
        first = "D(" + std::to_string(m) + ", " + std::to_string(n) + ") = " + std::to_string(got) + ", want " +
                std::to_string(want);
    }
  for (const float* p : {c.a, c.a_new, c.b, (const float*)c.out}) cudaFree((void*)p);
  if (bad) return std::to_string(bad) + " of 16384 wrong, first " + first;
  if (overwrite && same_as_old == kRows * 128) return "the overwrite changed nothing";
  return "";
}

// A case that must pass, run in a child: a wrong result or an emulator fault fails it alone.
void expect_pass(int kind, const Layout& L, int ops, int iters, int scale_d, int overwrite) {
  const char* mode = kind == 1 ? "tf32" : kind == 2 ? "bf16" : "fp16";
  char name[256];
  std::snprintf(name, sizeof name, "%s, %s, %d mma_async per group, %d group%s, scale-d %d%s", mode, L.name, ops, iters,
                iters > 1 ? "s" : "", scale_d, overwrite ? ", A overwritten before the wait" : "");
  std::string err;
  int status = -1;
  bool aborted = false;
  const bool ran = run_child(
      [&] {
        const std::string why = run_case(kind, L, ops, iters, scale_d, overwrite);
        std::fputs(why.c_str(), stderr);
        return why.empty() ? 0 : 1;
      },
      &err, &status, &aborted);
  report(ran && status == 0 && err.empty(), name, err.substr(0, err.find('\n')));
}

// ------------------------------------------------------------ the shared window
__global__ void cvta_kernel(uint32_t* out) {
  __shared__ __align__(16) float X[25];
  emu::shared_fresh(X, sizeof X, __alignof__(X));
  __shared__ __align__(128) uint32_t Y[250];
  emu::shared_fresh(Y, sizeof Y, __alignof__(Y));
  if (threadIdx.x == 0) {
    out[0] = (uint32_t)__cvta_generic_to_shared(X);
    out[1] = (uint32_t)__cvta_generic_to_shared(Y);
    out[2] = (uint32_t)__cvta_generic_to_shared(&Y[10]);
  }
}

void check_window() {
  void* p = nullptr;
  cudaMalloc(&p, 3 * sizeof(uint32_t));
  emu::launch("wgmma_selftest_cvta", dim3(1), dim3(32), 0, nullptr, &cvta_kernel, (uint32_t*)p);
  uint32_t a[3];
  cudaMemcpy(a, p, sizeof a, cudaMemcpyDeviceToHost);
  cudaFree(p);
  const bool ok = a[0] >= 1024 && a[0] % 16 == 0 && (a[0] / 16) % 2 == 1 && a[1] % 128 == 0 && (a[1] / 128) % 2 == 1 &&
                  a[1] >= a[0] + 100 && a[2] == a[1] + 40 && a[1] + 1000 <= 228 * 1024;
  char why[128];
  std::snprintf(why, sizeof why, "X (100 B, align 16) at 0x%x, Y (1000 B, align 128) at 0x%x, &Y[10] at 0x%x", a[0],
                a[1], a[2]);
  report(ok, "__cvta_generic_to_shared: window addresses at odd multiples of the declared alignment", ok ? "" : why);
  report(wg::desc(0x1230, 128, 512) == ptx_desc(0x1230, 128, 512) &&
             wg::desc(0x3fff0, 0x3fff0, 0x10) == ptx_desc(0x3fff0, 0x3fff0, 0x10),
         "wgmma.cuh's desc() packs as the PTX ISA's descriptor table");
}

// ------------------------------------------------------------ the model's checks
enum Bug {
  kNone, kNoFence, kFenceAfterWait, kNoCommit, kNoWait, kSwizzle, kBaseOffset, kReservedBits, kOutside, kLaneDiffers,
  kWarpCount, kWarpIdle, kWritePending, kNoProxyFence, kCvtaGlobal,
};

__global__ void bad_kernel(int bug, const float* global) {
  __shared__ __align__(128) uint32_t S[2048];  // A 64 x 32 bytes at 0, B 128 x 32 bytes at 2048
  emu::shared_fresh(S, sizeof S, __alignof__(S));
  const int tid = (int)threadIdx.x, warp = tid / 32, lane = tid % 32;
  for (int i = tid; i < 2048; i += (int)blockDim.x) S[i] = 0;
  if (bug != kNoProxyFence) wg::fence_proxy_async();
  __syncthreads();
  if (bug == kCvtaGlobal) (void)__cvta_generic_to_shared(global);
  const uint32_t base = wg::smem_addr(S);
  uint64_t da = ptx_desc(base, 128, 256), db = ptx_desc(base + 2048, 128, 256);
  if (bug == kSwizzle) da |= 1ull << 62;
  if (bug == kBaseOffset) da |= 1ull << 49;
  if (bug == kReservedBits) db |= 1ull << 14;
  if (bug == kOutside) db = ptx_desc(base + 6144, 128, 256);  // B's last 2 KiB past S's end
  if (bug == kLaneDiffers && lane == 5) db = ptx_desc(base + 2048 + 16, 128, 256);
  if (bug == kWarpIdle && warp == 3) return;
  float d[64] = {};
  if (bug != kNoFence) wg::fence();
  wg::mma_m64n128<MathMode::TF32>(d, da, db, 1);
  if (!(bug == kWarpCount && warp == 1)) wg::mma_m64n128<MathMode::TF32>(d, da, db, 1);
  if (bug == kWritePending) d[3] = 1.f;
  if (bug == kNoCommit) return;
  wg::commit();
  if (bug == kNoWait) return;
  wg::wait_all();
  if (bug == kFenceAfterWait) {  // touches d, then mma_async with no fence since the wait
    d[0] += 1.f;
    wg::mma_m64n128<MathMode::TF32>(d, da, db, 1);
    wg::commit();
    wg::wait_all();
  }
}

void expect_fault(const char* name, int bug, int threads, const char* want, const float* global) {
  std::string err;
  int status = -1;
  bool aborted = false;
  const bool ran = run_child(
      [&] {
        emu::launch("wgmma_selftest_bad", dim3(1), dim3(threads), 0, nullptr, &bad_kernel, bug, global);
        return 0;
      },
      &err, &status, &aborted);
  const std::string line = err.substr(0, err.find('\n'));
  if (!want) return report(ran && status == 0 && err.empty(), name, line);  // the control: no fault
  const bool ok = ran && aborted && err.find("EMU FAULT in wgmma_selftest_bad") != std::string::npos &&
                  err.find(want) != std::string::npos;
  report(ok, name, ok ? "" : (aborted ? "aborted with: " + line : "did not abort: " + line));
}

void check_faults() {
  void* global = nullptr;
  cudaMalloc(&global, 256);
  const float* g = (const float*)global;
  expect_fault("control: the fault kernel without a bug runs through", kNone, 128, nullptr, g);
  expect_fault("fault: mma_async with no wgmma.fence", kNoFence, 128, "without a wgmma.fence", g);
  expect_fault("fault: mma_async with no wgmma.fence after a wait", kFenceAfterWait, 128, "without a wgmma.fence", g);
  expect_fault("fault: exit with mma_async not committed", kNoCommit, 128, "not committed", g);
  expect_fault("fault: exit with a group not waited for", kNoWait, 128, "not waited for", g);
  expect_fault("fault: 128-byte swizzle descriptor", kSwizzle, 128, "swizzle mode 1", g);
  expect_fault("fault: nonzero base offset", kBaseOffset, 128, "base offset 1", g);
  expect_fault("fault: descriptor bits outside its fields", kReservedBits, 128, "bits set outside its fields", g);
  expect_fault("fault: operand outside every __shared__ array", kOutside, 128, "outside every __shared__ array", g);
  expect_fault("fault: a lane with another descriptor", kLaneDiffers, 128, "lanes of a warp issued different", g);
  expect_fault("fault: warps of a warpgroup with different groups", kWarpCount, 128, "warps of warpgroup 0", g);
  expect_fault("fault: a warp of the warpgroup that never issues", kWarpIdle, 128, "by only 3 of its 4 warps", g);
  expect_fault("fault: accumulator written while pending", kWritePending, 128, "accumulator registers written", g);
  expect_fault("fault: no fence.proxy.async in the block", kNoProxyFence, 128, "fence.proxy.async", g);
  expect_fault("fault: __cvta_generic_to_shared of a global pointer", kCvtaGlobal, 128, "outside every __shared__", g);
  expect_fault("fault: a partial warpgroup (96 threads)", kNone, 96, "partial warpgroup", g);
  cudaFree(global);
}

}  // namespace

int emu_selftest_wgmma() {
  check_window();
  for (int kind = 1; kind <= 3; ++kind)
    for (int l = 0; l < 3; ++l) expect_pass(kind, layout(l, 2), 2, 1, 1, 0);
  for (int kind = 1; kind <= 3; ++kind) {
    expect_pass(kind, layout(0, 2), 2, 1, 0, 0);  // scale-d 0
    expect_pass(kind, layout(1, 1), 1, 2, 1, 0);  // one mma_async per group, two groups
    expect_pass(kind, layout(2, 2), 2, 2, 0, 0);  // two groups, the first from scale-d 0
    expect_pass(kind, layout(0, 2), 2, 1, 1, 1);  // A overwritten between commit and wait
  }
  check_faults();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
