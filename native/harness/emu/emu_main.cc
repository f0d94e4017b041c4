// emu_main.cc: runs the CUDA harness's checks (native/harness/validate_gemm.cc, validate_conv.cc,
// and with --suite all validate_ops.cc) on the CPU emulator (emu.h) instead of a GPU.
//   imagerate_cuda_emu [--suite gemm|conv|all] [--quick] [--filter TEXT] [--skip TEXT] [--wgmma]
//   imagerate_cuda_emu --selftest-wgmma | --selftest-tma
// EMU_ORDER=fwd|rev|shuffle sets the order in which warps and lanes run between barriers.
// --wgmma runs GEMM and conv at tf32/bf16/fp16 on the wgmma main loop (set_use_wgmma), as the
// GPU harness's --wgmma does; the gemm variants *_wgmma_* run either way.
// --selftest-wgmma and --selftest-tma run the wgmma model's, and the TMA/mbarrier/dynamic shared
// memory model's, own checks instead (emu_selftest.cc, emu_selftest_tma.cc).
// Prints the harness's lines and "N passed, M failed"; exit 0 when all passed. A fault
// (out-of-bounds or misaligned access, stray write, barrier divergence) aborts with a message.
#include <cstdio>
#include <cstring>
#include <string>

#include "cuda_runtime.h"
#include "emu_selftest.h"
#include "harness.h"
#include "kernels.cuh"

namespace emu {
void stats(unsigned long long* launches, unsigned long long* switches);
unsigned long long tma_copies();
}  // namespace emu

// cuda_harness.cc's main() (renamed, unused here) refers to this; the emulator times nothing.
namespace harness {
int run_bench(const Options&, Report&) { return 0; }
}  // namespace harness

int main(int argc, char** argv) {
  harness::Options opt;
  opt.suite = "all";
  bool wgmma = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") opt.quick = true;
    else if (a == "--suite" && i + 1 < argc) opt.suite = argv[++i];
    else if (a == "--filter" && i + 1 < argc) opt.filter = argv[++i];
    else if (a == "--skip" && i + 1 < argc) opt.skip = argv[++i];
    else if (a == "--wgmma") wgmma = true;
    else if (a == "--selftest-wgmma" && argc == 2) return emu_selftest_wgmma();
    else if (a == "--selftest-tma" && argc == 2) return emu_selftest_tma();
    else {
      std::fprintf(stderr,
                   "usage: imagerate_cuda_emu [--suite gemm|conv|all] [--quick] [--filter T] [--skip T] [--wgmma]\n"
                   "       imagerate_cuda_emu --selftest-wgmma | --selftest-tma\n");
      return 3;
    }
  }
  if (wgmma && !harness::select_wgmma()) return 2;
  harness::Report rep;
  rep.filter = opt.filter;
  rep.skip = opt.skip;
  try {
    harness::validate_gemm_conv(opt, rep);                   // honours --suite
    if (opt.suite == "all") harness::validate_ops(opt, rep);  // pooling, norms, pointwise, loss, SGD
  } catch (const std::exception& e) {
    std::printf("ERROR %s\n", e.what());
    std::printf("%d passed, %d failed (stopped by the error above)\n", rep.passed(), rep.failed());
    return 1;
  }
  unsigned long long launches = 0, switches = 0;
  emu::stats(&launches, &switches);
  std::printf("emulated %llu launches, %llu fiber switches, %llu TMA copies\n", launches, switches, emu::tma_copies());
  std::printf("%d passed, %d failed\n", rep.passed(), rep.failed());
  return rep.failed() > 0 ? 1 : 0;
}
