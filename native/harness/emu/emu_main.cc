// emu_main.cc: runs the harness's GEMM and conv2d checks (native/harness/validate_gemm_conv.cc)
// on the CPU emulator (emu.h) instead of a GPU.
//   imagerate_cuda_emu [--suite gemm|conv|all] [--quick] [--filter TEXT] [--skip TEXT]
// EMU_ORDER=fwd|rev|shuffle sets the order in which warps and lanes run between barriers.
// Prints the harness's lines and "N passed, M failed"; exit 0 when all passed. A fault
// (out-of-bounds or misaligned access, stray write, barrier divergence) aborts with a message.
#include <cstdio>
#include <cstring>
#include <string>

#include "cuda_runtime.h"
#include "harness.h"
#include "kernels.cuh"

namespace emu {
void set_order_from_env();
void stats(unsigned long long* launches, unsigned long long* switches);
}  // namespace emu

// elementwise.cu is not emulated: conv2d.cu's calls into it run on the host (same contract).
namespace imagerate {
namespace cuda {
cudaError_t bias_add(int64_t outer, int64_t ch, int64_t inner, const float* x, const float* b, float* y,
                     cudaStream_t) {
  for (int64_t i = 0; i < outer * ch * inner; ++i) y[i] = x[i] + b[(i / inner) % ch];
  return cudaSuccess;
}
cudaError_t relu_fwd(int64_t n, const float* x, float* y, cudaStream_t) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.f ? 0.f : x[i];
  return cudaSuccess;
}
cudaError_t bias_grad(int64_t outer, int64_t ch, int64_t inner, const float* dy, float* db, cudaStream_t) {
  for (int64_t c = 0; c < ch; ++c) {
    double s = 0.0;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) s += dy[(o * ch + c) * inner + i];
    db[c] = (float)s;
  }
  return cudaSuccess;
}
}  // namespace cuda
}  // namespace imagerate

// cuda_harness.cc's main() (renamed, unused here) refers to these; the emulator runs neither.
namespace harness {
void validate_ops(const Options&, Report&) {}
int run_bench(const Options&, Report&) { return 0; }
}  // namespace harness

int main(int argc, char** argv) {
  harness::Options opt;
  opt.suite = "all";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") opt.quick = true;
    else if (a == "--suite" && i + 1 < argc) opt.suite = argv[++i];
    else if (a == "--filter" && i + 1 < argc) opt.filter = argv[++i];
    else if (a == "--skip" && i + 1 < argc) opt.skip = argv[++i];
    else {
      std::fprintf(stderr, "usage: imagerate_cuda_emu [--suite gemm|conv|all] [--quick] [--filter T] [--skip T]\n");
      return 3;
    }
  }
  emu::set_order_from_env();
  harness::Report rep;
  rep.filter = opt.filter;
  rep.skip = opt.skip;
  try {
    harness::validate_gemm_conv(opt, rep);
  } catch (const std::exception& e) {
    std::printf("ERROR %s\n", e.what());
    std::printf("%d passed, %d failed (stopped by the error above)\n", rep.passed(), rep.failed());
    return 1;
  }
  unsigned long long launches = 0, switches = 0;
  emu::stats(&launches, &switches);
  std::printf("emulated %llu launches, %llu fiber switches\n", launches, switches);
  std::printf("%d passed, %d failed\n", rep.passed(), rep.failed());
  return rep.failed() > 0 ? 1 : 0;
}
