// bench.cc: --bench mode of imagerate_cuda_harness: device timings of the GEMM and conv2d
// kernels, written as JSON lines (one object per measurement).
//
// Method (per measurement): one spot-check of 64 sampled outputs against float64 (a failure is
// a failed check and the shape is not timed); `warmup` untimed runs; then `iters` timed runs,
// each preceded by an L2 flush (a cudaMemsetAsync over a buffer of 2x the L2 size, outside the
// timed region) and bracketed by cudaEvents on the same stream. Reported: median, p10, p90
// (nearest-rank) in ms, and GFLOP/s from the median (2*M*N*K; conv: 2*N*K*P*Q*C*R*S for each
// of the three passes). Record fields: kernel, op, shape, mathMode, medianMs, p10Ms, p90Ms,
// gflops, iters, warmup, l2Flush, device, cc, driver, runtime, date, source.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "harness.h"

namespace harness {
namespace {

namespace cu = imagerate::cuda;
using cu::MathMode;

struct Env {
  std::string device, date;
  int cc = 0, driver = 0, runtime = 0;
  size_t l2 = 0;
  FILE* out = stdout;
  int warmup = 3, iters = 20;
};

struct Timing {
  double median, p10, p90;
};

// Times fn on the default stream: warm-up, then iters x (L2 flush, event, fn, event).
Timing time_it(const Env& env, float* flush, size_t flush_bytes, const std::function<void()>& fn) {
  for (int i = 0; i < env.warmup; ++i) fn();
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  std::vector<double> ms;
  try {
    for (int i = 0; i < env.iters; ++i) {
      CK(cudaMemsetAsync(flush, i & 0xff, flush_bytes, nullptr));
      CK(cudaEventRecord(a, nullptr));
      fn();
      CK(cudaEventRecord(b, nullptr));
      CK(cudaEventSynchronize(b));
      float t = 0;
      CK(cudaEventElapsedTime(&t, a, b));
      ms.push_back(t);
    }
  } catch (...) {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    throw;
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  std::sort(ms.begin(), ms.end());
  auto rank = [&](double q) { return ms[(size_t)std::min<double>((double)ms.size() - 1, std::floor(q * (double)(ms.size() - 1) + 0.5))]; };
  return Timing{rank(0.5), rank(0.1), rank(0.9)};
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if ((unsigned char)c >= 0x20) o += c;
  }
  return o;
}

// What multiplied: a GEMM kernel's name says (gemm_<mode>_mma_..., gemm_<mode>_wgmma_...); the
// convolutions run whichever loop set_use_wgmma chose.
const char* tensor_core_loop(const std::string& kernel, MathMode mode) {
  if (mode == MathMode::FP32) return "none";
  if (kernel.find("_wgmma_") != std::string::npos) return "wgmma";
  if (kernel.find("_mma_") != std::string::npos) return "mma.sync";
  return cu::use_wgmma() ? "wgmma" : "mma.sync";
}

void emit(const Env& env, const std::string& kernel, const std::string& op, const std::string& shape, MathMode mode,
          const Timing& t, double flops) {
  const double gflops = flops / (t.median * 1e-3) / 1e9;
  std::fprintf(env.out,
               "{\"source\":\"imagerate_cuda_harness\",\"kernel\":\"%s\",\"op\":\"%s\",\"shape\":\"%s\","
               "\"mathMode\":\"%s\",\"tensorCoreLoop\":\"%s\",\"medianMs\":%.6f,\"p10Ms\":%.6f,\"p90Ms\":%.6f,\"gflops\":%.2f,"
               "\"iters\":%d,\"warmup\":%d,\"l2Flush\":true,\"device\":\"%s\",\"cc\":\"%d.%d\","
               "\"driver\":\"%d.%d\",\"runtime\":\"%d.%d\",\"date\":\"%s\"}\n",
               json_escape(kernel).c_str(), op.c_str(), shape.c_str(), cu::math_mode_name(mode),
               tensor_core_loop(kernel, mode),
               t.median, t.p10,
               t.p90, gflops, env.iters, env.warmup, json_escape(env.device).c_str(), env.cc / 10, env.cc % 10,
               env.driver / 1000, (env.driver % 1000) / 10, env.runtime / 1000, (env.runtime % 1000) / 10,
               env.date.c_str());
  std::fflush(env.out);
  std::printf("BENCH %-10s %-34s %-5s median %9.4f ms  p10 %9.4f  p90 %9.4f  %9.1f GFLOP/s  (%s)\n", op.c_str(),
              shape.c_str(), cu::math_mode_name(mode), t.median, t.p10, t.p90, gflops, kernel.c_str());
  std::fflush(stdout);
}

// Checks `samples` outputs: |got - ref| <= tol * scale for each sampled index.
bool spot_check(Report& rep, const std::string& name, const std::vector<float>& got,
                const std::function<void(size_t, double*, double*)>& ref, size_t count, double tol, Rng& rng) {
  size_t bad = 0;
  double worst = 0;
  for (int s = 0; s < 64; ++s) {
    const size_t i = (size_t)(rng.next() % count);
    double r = 0, sc = 0;
    ref(i, &r, &sc);
    const double err = std::fabs((double)got[i] - r), lim = tol * sc + 1e-30;
    if (!(err <= lim)) ++bad;
    worst = std::max(worst, err / lim);
  }
  if (bad) rep.fail("bench spot-check " + name, fmt("%zu/64 samples outside the bound", bad));
  else rep.pass("bench spot-check " + name, fmt("64 samples, worst err/bound %.3f", worst));
  return bad == 0;
}

void bench_gemm(const Options& opt, Report& rep, const Env& env, float* flush, size_t flush_bytes) {
  struct G {
    int64_t M, N, K;
    bool ta, tb;
  };
  std::vector<G> shapes = {{4096, 4096, 4096, false, false}, {4096, 4096, 4096, true, false},
                           {4096, 4096, 4096, false, true},  {2048, 2048, 2048, false, false},
                           {1024, 1024, 1024, false, false}, {4095, 4097, 4093, false, false},
                           {8192, 8192, 1024, false, false}, {256, 1000, 2048, false, true},   // ResNet-50 fc fwd
                           {1000, 2048, 256, true, false},   {512, 512, 512, false, false}};
  if (opt.quick) shapes = {{4096, 4096, 4096, false, false}, {1024, 1024, 1024, false, false}};
  const MathMode modes[] = {MathMode::FP32, MathMode::TF32, MathMode::BF16, MathMode::FP16};
  // One GEMM: spot-checked against float64, then timed; `tuned` >= 0 runs that GEMM tuning
  // variant (kernels.cuh: NN, in its own math mode, which `mode` must be) instead of gemm_f32.
  auto measure = [&](const G& g, MathMode mode, int tuned) {
    const std::string shape = fmt("%lldx%lldx%lld %s%s", (long long)g.M, (long long)g.N, (long long)g.K,
                                  g.ta ? "T" : "N", g.tb ? "T" : "N");
    const std::string kernel = tuned < 0 ? cu::gemm_kernel_name(g.ta, g.tb, g.M, g.N, g.K, 1.f, mode)
                                         : std::string("gemm_") + cu::gemm_variant_name(tuned);
    if (!rep.wants("gemm " + shape + " " + kernel)) return;
    Rng rng(77);
    const std::vector<float> A = rng.vec((size_t)(g.M * g.K)), B = rng.vec((size_t)(g.K * g.N));
    DevBuf<float> dA(A), dB(B), dC((size_t)(g.M * g.N));
    const int64_t lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N;
    auto run = [&]() {
      if (tuned < 0)
        CK(cu::gemm_f32(g.ta, g.tb, g.M, g.N, g.K, 1.f, dA.get(), lda, dB.get(), ldb, 0.f, dC.get(), g.N, mode, nullptr));
      else
        CK(cu::gemm_variant(tuned, g.M, g.N, g.K, 1.f, dA.get(), lda, dB.get(), ldb, 0.f, dC.get(), g.N, nullptr));
    };
    run();
    const std::vector<float> C = dC.download();
    const bool ok = spot_check(rep, "gemm " + shape + " " + (tuned < 0 ? cu::math_mode_name(mode) : kernel.c_str()), C,
                               [&](size_t idx, double* r, double* sc) {
                                 const int64_t i = (int64_t)idx / g.N, j = (int64_t)idx % g.N;
                                 double s = 0, a = 0;
                                 for (int64_t k = 0; k < g.K; ++k) {
                                   const double x = g.ta ? A[(size_t)(k * lda + i)] : A[(size_t)(i * lda + k)];
                                   const double y = g.tb ? B[(size_t)(j * ldb + k)] : B[(size_t)(k * ldb + j)];
                                   s += x * y;
                                   a += std::fabs(x * y);
                                 }
                                 *r = s;
                                 *sc = a;
                               },
                               C.size(), mode_tolerance(mode, g.K), rng);
    if (!ok) return;
    const Timing t = time_it(env, flush, flush_bytes, run);
    emit(env, kernel, "gemm", shape, mode, t, 2.0 * (double)g.M * (double)g.N * (double)g.K);
  };
  for (const G& g : shapes)
    for (MathMode mode : modes) measure(g, mode, -1);
  // The GEMM tuning variants at the square NN sizes, all of them, the defaults' configs included
  // (below about 132 tiles of 128x128 gemm_f32 runs the 64x64 SIMT kernel in fp32).
  for (const G& g : shapes)
    if (!g.ta && !g.tb && g.M == g.N && g.N == g.K)
      for (int v = 0; v < cu::gemm_variant_count(); ++v)
        if (cu::gemm_variant_supported(v)) measure(g, cu::gemm_variant_mode(v), v);
}

struct ConvShape {
  const char* net;
  int64_t n, c, h, w, k, r, s, stride, pad;
};

void bench_conv(const Options& opt, Report& rep, const Env& env, float* flush, size_t flush_bytes) {
  std::vector<ConvShape> shapes = {
      // ResNet-50 v1.5, batch 64 (stem, then the distinct bottleneck convs of each stage)
      {"resnet50.conv1", 64, 3, 224, 224, 64, 7, 7, 2, 3},
      {"resnet50.l1.1x1a", 64, 64, 56, 56, 64, 1, 1, 1, 0},
      {"resnet50.l1.3x3", 64, 64, 56, 56, 64, 3, 3, 1, 1},
      {"resnet50.l1.1x1b", 64, 64, 56, 56, 256, 1, 1, 1, 0},
      {"resnet50.l1.1x1c", 64, 256, 56, 56, 64, 1, 1, 1, 0},
      {"resnet50.l2.3x3s2", 64, 128, 56, 56, 128, 3, 3, 2, 1},
      {"resnet50.l2.down", 64, 256, 56, 56, 512, 1, 1, 2, 0},
      {"resnet50.l2.3x3", 64, 128, 28, 28, 128, 3, 3, 1, 1},
      {"resnet50.l3.3x3", 64, 256, 14, 14, 256, 3, 3, 1, 1},
      {"resnet50.l3.1x1b", 64, 256, 14, 14, 1024, 1, 1, 1, 0},
      {"resnet50.l4.3x3", 64, 512, 7, 7, 512, 3, 3, 1, 1},
      {"resnet50.l4.1x1c", 64, 2048, 7, 7, 512, 1, 1, 1, 0},
      // LeNet-5 (MNIST 28x28, padded conv1), batch 64
      {"lenet.conv1", 64, 1, 28, 28, 6, 5, 5, 1, 2},
      {"lenet.conv2", 64, 6, 14, 14, 16, 5, 5, 1, 0},
      // CIFAR-10 VGG-style net, batch 128
      {"cifar.conv1", 128, 3, 32, 32, 64, 3, 3, 1, 1},
      {"cifar.conv2", 128, 64, 32, 32, 64, 3, 3, 1, 1},
      {"cifar.conv3", 128, 64, 16, 16, 128, 3, 3, 1, 1},
      {"cifar.conv4", 128, 128, 8, 8, 256, 3, 3, 1, 1},
  };
  if (opt.quick) shapes = {shapes[2], shapes[8], shapes[13], shapes[15]};
  const MathMode modes[] = {MathMode::FP32, MathMode::TF32, MathMode::BF16};
  for (const ConvShape& cs : shapes)
    for (MathMode mode : modes) {
      cu::Conv2dParams cp{cs.n, cs.c, cs.h, cs.w, cs.k, cs.r, cs.s, cs.stride, cs.stride, cs.pad, cs.pad, 1, 1, 0, 0};
      cp.p = (cs.h + 2 * cs.pad - cs.r) / cs.stride + 1;
      cp.q = (cs.w + 2 * cs.pad - cs.s) / cs.stride + 1;
      const std::string shape = fmt("%s n%lld c%lld %lldx%lld k%lld %lldx%lld s%lld", cs.net, (long long)cs.n,
                                    (long long)cs.c, (long long)cs.h, (long long)cs.w, (long long)cs.k,
                                    (long long)cs.r, (long long)cs.s, (long long)cs.stride);
      if (!rep.wants("conv " + shape)) continue;
      Rng rng(99);
      const size_t xs = (size_t)(cp.n * cp.c * cp.h * cp.w), ws = (size_t)(cp.k * cp.c * cp.r * cp.s);
      const size_t ys = (size_t)(cp.n * cp.k * cp.p * cp.q);
      const std::vector<float> x = rng.vec(xs), w = rng.vec(ws), dy = rng.vec(ys);
      DevBuf<float> dX(x), dW(w), dDY(dy), dY(ys), dDX(xs), dDW(ws);
      const double flops = 2.0 * (double)cp.n * cp.k * cp.p * cp.q * cp.c * cp.r * cp.s;
      const int64_t crs = cp.c * cp.r * cp.s, P = cp.p, Q = cp.q;
      auto xat = [&](int64_t n, int64_t c, int64_t h, int64_t ww) -> double {
        if (h < 0 || h >= cp.h || ww < 0 || ww >= cp.w) return 0.0;
        return x[(size_t)(((n * cp.c + c) * cp.h + h) * cp.w + ww)];
      };
      // forward
      auto fwd = [&]() { CK(cu::conv2d_fwd(cp, dX.get(), dW.get(), nullptr, dY.get(), mode, nullptr)); };
      fwd();
      bool ok = spot_check(rep, "conv fwd " + shape + " " + cu::math_mode_name(mode), dY.download(),
                           [&](size_t i, double* r, double* sc) {
                             const int64_t q = (int64_t)i % Q, p = ((int64_t)i / Q) % P, k = ((int64_t)i / (P * Q)) % cp.k,
                                           n = (int64_t)i / (P * Q * cp.k);
                             double s = 0, a = 0;
                             for (int64_t c = 0; c < cp.c; ++c)
                               for (int64_t rr = 0; rr < cp.r; ++rr)
                                 for (int64_t ss = 0; ss < cp.s; ++ss) {
                                   const double t = xat(n, c, p * cs.stride - cs.pad + rr, q * cs.stride - cs.pad + ss) *
                                                    w[(size_t)(((k * cp.c + c) * cp.r + rr) * cp.s + ss)];
                                   s += t;
                                   a += std::fabs(t);
                                 }
                             *r = s;
                             *sc = a;
                           },
                           ys, mode_tolerance(mode, crs), rng);
      if (ok) emit(env, "conv2d_fwd_implicit_gemm", "conv_fwd", shape, mode, time_it(env, flush, flush_bytes, fwd), flops);
      // backward data (spot-checked through the adjoint identity on sampled inputs is costly; check directly)
      auto bwd_data = [&]() { CK(cu::conv2d_bwd_data(cp, dDY.get(), dW.get(), dDX.get(), mode, nullptr)); };
      bwd_data();
      ok = spot_check(rep, "conv bwd-data " + shape + " " + cu::math_mode_name(mode), dDX.download(),
                      [&](size_t i, double* r, double* sc) {
                        const int64_t ww = (int64_t)i % cp.w, h = ((int64_t)i / cp.w) % cp.h,
                                      c = ((int64_t)i / (cp.w * cp.h)) % cp.c, n = (int64_t)i / (cp.w * cp.h * cp.c);
                        double s = 0, a = 0;
                        for (int64_t k = 0; k < cp.k; ++k)
                          for (int64_t rr = 0; rr < cp.r; ++rr)
                            for (int64_t ss = 0; ss < cp.s; ++ss) {
                              const int64_t th = h + cs.pad - rr, tw = ww + cs.pad - ss;
                              if (th < 0 || tw < 0 || th % cs.stride || tw % cs.stride) continue;
                              const int64_t p = th / cs.stride, q = tw / cs.stride;
                              if (p >= P || q >= Q) continue;
                              const double t = dy[(size_t)(((n * cp.k + k) * P + p) * Q + q)] *
                                               w[(size_t)(((k * cp.c + c) * cp.r + rr) * cp.s + ss)];
                              s += t;
                              a += std::fabs(t);
                            }
                        *r = s;
                        *sc = a;
                      },
                      xs, mode_tolerance(mode, cp.k * cp.r * cp.s), rng);
      if (ok)
        emit(env, "conv2d_bwd_data_implicit_gemm", "conv_bwd_data", shape, mode,
             time_it(env, flush, flush_bytes, bwd_data), flops);
      // backward filter
      auto bwd_filter = [&]() { CK(cu::conv2d_bwd_filter(cp, dX.get(), dDY.get(), dDW.get(), nullptr, mode, nullptr)); };
      bwd_filter();
      ok = spot_check(rep, "conv bwd-filter " + shape + " " + cu::math_mode_name(mode), dDW.download(),
                      [&](size_t i, double* r, double* sc) {
                        const int64_t ss = (int64_t)i % cp.s, rr = ((int64_t)i / cp.s) % cp.r,
                                      c = ((int64_t)i / (cp.s * cp.r)) % cp.c, k = (int64_t)i / (cp.s * cp.r * cp.c);
                        double s = 0, a = 0;
                        for (int64_t n = 0; n < cp.n; ++n)
                          for (int64_t p = 0; p < P; ++p)
                            for (int64_t q = 0; q < Q; ++q) {
                              const double t = dy[(size_t)(((n * cp.k + k) * P + p) * Q + q)] *
                                               xat(n, c, p * cs.stride - cs.pad + rr, q * cs.stride - cs.pad + ss);
                              s += t;
                              a += std::fabs(t);
                            }
                        *r = s;
                        *sc = a;
                      },
                      ws, mode_tolerance(mode, cp.n * P * Q), rng);
      if (ok)
        emit(env, "conv2d_bwd_filter_implicit_gemm", "conv_bwd_filter", shape, mode,
             time_it(env, flush, flush_bytes, bwd_filter), flops);
    }
}

}  // namespace

int run_bench(const Options& opt, Report& rep) {
  Env env;
  int dev = 0;
  CK(cudaGetDevice(&dev));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, dev));
  env.device = prop.name;
  env.cc = prop.major * 10 + prop.minor;
  env.l2 = (size_t)prop.l2CacheSize;
  CK(cudaDriverGetVersion(&env.driver));
  CK(cudaRuntimeGetVersion(&env.runtime));
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  env.date = date;
  env.warmup = opt.quick ? 2 : 5;
  env.iters = opt.iters > 0 ? opt.iters : (opt.quick ? 10 : 30);
  if (!opt.out.empty()) {
    env.out = std::fopen(opt.out.c_str(), "a");
    if (!env.out) throw HarnessError("cannot open --out file " + opt.out);
  }
  const size_t flush_bytes = std::max<size_t>(2 * env.l2, 64u << 20);
  int status = 0;
  try {
    DevBuf<float> flush(flush_bytes / sizeof(float));
    if (opt.suite == "gemm" || opt.suite == "all") bench_gemm(opt, rep, env, flush.get(), flush_bytes);
    if (opt.suite == "conv" || opt.suite == "all") bench_conv(opt, rep, env, flush.get(), flush_bytes);
  } catch (...) {
    if (env.out != stdout) std::fclose(env.out);
    throw;
  }
  if (env.out != stdout && std::fclose(env.out) != 0) status = 1;
  return status;
}

}  // namespace harness
