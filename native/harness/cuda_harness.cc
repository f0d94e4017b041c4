// cuda_harness.cc: main() of imagerate_cuda_harness, the standalone validation and timing
// program for the CUDA kernels (kernels/cuda), with no Node.js needed.
//
//   imagerate_cuda_harness [--validate] [--bench] [--suite gemm|conv|all] [--quick]
//                          [--out FILE.jsonl] [--filter TEXT] [--skip TEXT] [--device N] [--iters N]
//                          [--wgmma]
//
//   --validate (default)  every CUDA kernel against the CPU kernels (kernels/cpu) and, for GEMM
//                         and conv, against a float64 reference, on awkward shapes; one line per
//                         check, then "N passed, M failed".
//   --bench               times GEMM / conv shapes (cudaEvents, warm-up, L2 flush between
//                         iterations; median, p10, p90, GFLOP/s) and writes one JSON object per
//                         measurement to --out (stdout when absent). Each shape is spot-checked
//                         against float64 before it is timed.
//   --quick               fewer shapes and iterations.
//   --filter / --skip     run only the checks whose name contains / does not contain TEXT.
//   --wgmma               GEMM and conv at tf32/bf16/fp16 on the wgmma main loop instead of
//                         mma.sync (kernels.cuh set_use_wgmma): every such check and timing
//                         then runs it; needs an sm_90a build and a compute capability 9.0 GPU.
// Exit codes: 0 all checks passed; 1 a check failed or a CUDA call failed; 2 no CUDA device
// (prints "no CUDA device: <reason>"), or --wgmma where wgmma cannot run; 3 bad command line.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "device_probe.h"
#include "harness.h"

namespace harness {

void cuda_fail(cudaError_t e, const char* what, const char* file, int line) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s failed: %s (%s) at %s:%d", what, cudaGetErrorName(e), cudaGetErrorString(e),
                file, line);
  throw HarnessError(buf);
}

void Report::pass(const std::string& name, const std::string& detail) {
  ++passed_;
  std::printf("PASS  %-58s %s\n", name.c_str(), detail.c_str());
  std::fflush(stdout);
}
void Report::fail(const std::string& name, const std::string& detail) {
  ++failed_;
  std::printf("FAIL  %-58s %s\n", name.c_str(), detail.c_str());
  std::fflush(stdout);
}
bool Report::wants(const std::string& name) const {
  return (filter.empty() || name.find(filter) != std::string::npos) &&
         (skip.empty() || name.find(skip) == std::string::npos);
}

static bool same_nan(double a, double b) { return std::isnan(a) && std::isnan(b); }

void compare(Report& rep, const std::string& name, const std::vector<float>& got, const std::vector<float>& want,
             double atol, double rtol) {
  if (got.size() != want.size()) {
    rep.fail(name, "size mismatch");
    return;
  }
  double worst = 0.0;
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    if (same_nan(g, w) || (std::isinf(w) && g == w)) continue;
    const double err = std::fabs(g - w);
    const double lim = atol + rtol * std::fabs(w);
    if (!(err <= lim)) {
      if (bad++ == 0) first_bad = i;
    }
    if (lim > 0 && err / lim > worst) worst = std::isnan(err) ? INFINITY : err / lim;
  }
  char d[256];
  if (bad) {
    std::snprintf(d, sizeof d, "%zu/%zu bad; first [%zu] got %.9g want %.9g (atol %.1e rtol %.1e)", bad, got.size(),
                  first_bad, (double)got[first_bad], (double)want[first_bad], atol, rtol);
    rep.fail(name, d);
  } else {
    std::snprintf(d, sizeof d, "n=%zu worst err/tol %.3f", got.size(), worst);
    rep.pass(name, d);
  }
}

void compare_bound(Report& rep, const std::string& name, const std::vector<float>& got, const std::vector<double>& ref,
                   const std::vector<double>& scale, double tol, double atol) {
  if (got.size() != ref.size()) {
    rep.fail(name, "size mismatch");
    return;
  }
  double worst = 0.0;
  size_t bad = 0, first_bad = 0, worst_i = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = ref[i];
    if (same_nan(g, w)) continue;
    const double err = std::fabs(g - w);
    const double lim = tol * scale[i] + atol;
    if (!(err <= lim)) {
      if (bad++ == 0) first_bad = i;
    }
    const double r = lim > 0 ? err / lim : (err > 0 ? INFINITY : 0.0);
    if (std::isnan(r) || r > worst) {
      if (!(worst == INFINITY)) worst_i = i;  // keep the first NaN/inf
      worst = std::isnan(r) ? INFINITY : r;
    }
  }
  char d[384];
  if (bad) {
    // Flat indices; the check's name gives the shape (row-major: i = row * ld + col, NCHW).
    std::snprintf(d, sizeof d,
                  "%zu/%zu bad; first [%zu] got %.9g want %.9g (bound %.3g); worst [%zu] got %.9g want %.9g "
                  "err/bound %.3g",
                  bad, got.size(), first_bad, (double)got[first_bad], ref[first_bad], tol * scale[first_bad] + atol,
                  worst_i, (double)got[worst_i], ref[worst_i], worst);
    rep.fail(name, d);
  } else {
    std::snprintf(d, sizeof d, "n=%zu worst err/bound %.3f", got.size(), worst);
    rep.pass(name, d);
  }
}

template <typename T>
void compare_exact(Report& rep, const std::string& name, const std::vector<T>& got, const std::vector<T>& want) {
  if (got.size() != want.size()) {
    rep.fail(name, "size mismatch");
    return;
  }
  for (size_t i = 0; i < got.size(); ++i) {
    bool eq = std::memcmp(&got[i], &want[i], sizeof(T)) == 0;
    if (!eq && std::is_floating_point<T>::value) eq = same_nan((double)got[i], (double)want[i]);  // NaN payloads differ by ISA
    if (!eq) {
      char d[256];
      std::snprintf(d, sizeof d, "first difference at [%zu]: got %.9g want %.9g (bitwise check)", i, (double)got[i],
                    (double)want[i]);
      rep.fail(name, d);
      return;
    }
  }
  char d[64];
  std::snprintf(d, sizeof d, "n=%zu bit-identical", got.size());
  rep.pass(name, d);
}
template void compare_exact<float>(Report&, const std::string&, const std::vector<float>&, const std::vector<float>&);
template void compare_exact<int32_t>(Report&, const std::string&, const std::vector<int32_t>&,
                                     const std::vector<int32_t>&);
template void compare_exact<double>(Report&, const std::string&, const std::vector<double>&,
                                    const std::vector<double>&);

bool launched(Report& rep, const std::string& name, cudaError_t e) {
  if (e == cudaSuccess) return true;
  cudaGetLastError();
  rep.fail(name, fmt("launch returned %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e)));
  return false;
}

const char* mode_str(imagerate::cuda::MathMode m) { return imagerate::cuda::math_mode_name(m); }

// Bound on |computed - exact| relative to sum_k |a_k * b_k|:
//   operand rounding: 2u (u = 2^-11 for tf32 and fp16, 2^-8 for bf16), plus fp32 accumulation
//   over k terms (k + 2) * 2^-24, doubled for margin (tensor cores may accumulate in a
//   different order and with a truncating add).
double mode_tolerance(imagerate::cuda::MathMode m, int64_t k) {
  const double acc = 2.0 * (double)(k + 2) * std::ldexp(1.0, -24);
  switch (m) {
    case imagerate::cuda::MathMode::FP32: return acc;
    case imagerate::cuda::MathMode::TF32: return 2.0 * 2.0 * std::ldexp(1.0, -11) + 2.0 * acc;
    case imagerate::cuda::MathMode::FP16: return 2.0 * 2.0 * std::ldexp(1.0, -11) + 2.0 * acc;
    case imagerate::cuda::MathMode::BF16: return 2.0 * 2.0 * std::ldexp(1.0, -8) + 2.0 * acc;
  }
  return 1.0;
}

// The relative bound above does not hold for an operand that lands in fp16's subnormal range
// (|x| < 2^-14), where the rounding error is absolute, up to 2^-25. With operands in [-1, 1]
// each product then errs by at most 2^-24 beyond the relative bound: k * 2^-24, doubled for an
// |alpha| up to 2. Other modes have fp32's exponent range: no absolute term.
double mode_atol(imagerate::cuda::MathMode m, int64_t k) {
  return m == imagerate::cuda::MathMode::FP16 ? 2.0 * (double)(k < 1 ? 1 : k) * std::ldexp(1.0, -24) : 1e-30;
}

void validate_gemm_conv(const Options& opt, Report& rep) {
  if (opt.suite == "gemm" || opt.suite == "all") validate_gemm(opt, rep);
  if (opt.suite == "conv" || opt.suite == "all") validate_conv(opt, rep);
}

bool select_wgmma() {
  if (!imagerate::cuda::gemm_wgmma_supported()) {
    int dev = 0, major = 0, minor = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    std::printf("no wgmma: it needs this build's sm_90a code (CMAKE_CUDA_ARCHITECTURES with 90a) and a "
                "compute capability 9.0 GPU; this is sm_%d%d\n", major, minor);
    return false;
  }
  imagerate::cuda::set_use_wgmma(true);
  std::printf("tensor-core main loop: wgmma\n");
  return true;
}

}  // namespace harness

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: imagerate_cuda_harness [--validate] [--bench] [--suite gemm|conv|all] [--quick]\n"
               "                              [--out FILE.jsonl] [--filter TEXT] [--skip TEXT] [--device N]\n"
               "                              [--iters N] [--wgmma]\n");
}

}  // namespace

int main(int argc, char** argv) {
  harness::Options opt;
  bool explicit_validate = false, wgmma = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", flag);
        usage();
        std::exit(3);
      }
      return argv[++i];
    };
    if (a == "--validate") explicit_validate = true;
    else if (a == "--bench") opt.bench = true;
    else if (a == "--quick") opt.quick = true;
    else if (a == "--suite") opt.suite = value("--suite");
    else if (a == "--out") opt.out = value("--out");
    else if (a == "--filter") opt.filter = value("--filter");
    else if (a == "--skip") opt.skip = value("--skip");
    else if (a == "--device") opt.device = std::atoi(value("--device").c_str());
    else if (a == "--iters") opt.iters = std::atoi(value("--iters").c_str());
    else if (a == "--wgmma") wgmma = true;
    else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", a.c_str());
      usage();
      return 3;
    }
  }
  if (opt.suite != "gemm" && opt.suite != "conv" && opt.suite != "all") {
    std::fprintf(stderr, "--suite must be gemm, conv or all\n");
    return 3;
  }
  opt.validate = !opt.bench || explicit_validate;

  char reason[512] = {0};
  int drv = 0, rt = 0;
  ImagerateCudaDevice devs[16];
  const int count = imagerate_cuda_probe(reason, sizeof reason, &drv, &rt, devs, 16);
  if (count <= 0) {
    std::printf("no CUDA device: %s\n", reason[0] ? reason : "unknown reason");
    return 2;
  }
  if (opt.device < 0 || opt.device >= count) {
    std::printf("no CUDA device: --device %d, but only %d device(s)\n", opt.device, count);
    return 2;
  }
  const ImagerateCudaDevice& d = devs[opt.device < 16 ? opt.device : 0];
  std::printf("device %d: %s (sm_%d%d, %d SMs, %.1f GiB), driver %d.%d, runtime %d.%d\n", opt.device, d.name, d.major,
              d.minor, d.multiprocessors, d.total_mem / 1073741824.0, drv / 1000, (drv % 1000) / 10, rt / 1000,
              (rt % 1000) / 10);

  harness::Report rep;
  rep.filter = opt.filter;
  rep.skip = opt.skip;
  int status = 0;
  try {
    CK(cudaSetDevice(opt.device));
    CK(imagerate::cuda::keep_scratch_pool(opt.device));  // timed scratch users must not remap the pool
    if (wgmma && !harness::select_wgmma()) return 2;
    if (opt.validate) {
      harness::validate_gemm_conv(opt, rep);                   // honours --suite
      if (opt.suite == "all") harness::validate_ops(opt, rep);  // pooling, norms, pointwise, loss, SGD
    }
    if (opt.bench) status = harness::run_bench(opt, rep);
    CK(cudaDeviceSynchronize());
  } catch (const std::exception& e) {
    std::printf("ERROR %s\n", e.what());
    std::printf("%d passed, %d failed (stopped by the error above)\n", rep.passed(), rep.failed());
    return 1;
  }
  std::printf("%d passed, %d failed\n", rep.passed(), rep.failed());
  return (rep.failed() > 0 || status != 0) ? 1 : 0;
}
