// validate_gemm.cc: checks of the CUDA GEMM (gemm_f32) against plain float64 loops, and of
// the fp32 SIMT GEMM against the CPU gemm_f32 too, for every math mode (conv2d:
// validate_conv.cc).
//
// Error bound per output: |got - ref| <= mode_tolerance(mode, k) * sum_k |a_k * b_k| (+ the
// beta * C term), i.e. a bound relative to the magnitude of the terms, not of the result, so
// cancellation cannot make a correct kernel fail. FP32 uses the worst-case bound of k fp32
// FMAs; TF32/FP16/BF16 add the operands' rounding (2^-11 / 2^-11 / 2^-8 each).
// FP16 adds an absolute k * 2^-24 for operands rounded into its subnormal range (mode_atol).
// Shapes are chosen to hit every launch variant: both SIMT tile configs and the tensor-core
// one, the float4 and scalar load paths (aligned and odd leading dimensions, a misaligned
// pointer), partial tiles in m, n and k, K < 8, and a GEMM with more than 65535 row tiles
// (more than one launch along gridDim.y). The GEMM tuning variants (gemm_variant) get the
// same NN checks in their own math mode ("gemm variant <name> ...").
// Exact checks ("gemm rounding"): C = A * I and C = I * B, so every output is one operand
// element rounded to the mode's format (TF32 to nearest with ties away, BF16/FP16 to nearest
// even, with tie cases placed on purpose): they pin down the rounding and which k of a 16-bit
// pair is which, independently of any tolerance.
// A CUDA error returned by a launch fails that check and the run goes on (launched()); an
// error inside a kernel (sticky) stops the run at the next download.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "harness.h"
#include "kernels.h"

namespace harness {
namespace {

using imagerate::cuda::MathMode;

// ---------------------------------------------------------------- GEMM
struct GemmCase {
  int64_t M, N, K;
};

// The call's arguments beside the shape: alpha, beta, padded leading dimensions, alignment.
struct GemmArgs {
  const char* name;
  float alpha, beta;
  int64_t lda_pad, ldb_pad, ldc_pad;
  size_t misalign;  // elements of offset applied to A, B and C
  bool nan_c;       // fill C with NaN (beta must be 0)
};

// tuned >= 0: the GEMM tuning variant of that index (gemm_variant: NN, in its own math mode,
// which `mode` must be) instead of gemm_f32.
void check_gemm(Report& rep, const GemmCase& gc, bool ta, bool tb, MathMode mode, const GemmArgs& v,
                uint64_t seed, bool also_cpu, int tuned = -1) {
  const std::string what = tuned < 0 ? std::string("gemm") : std::string("gemm variant ") + imagerate::cuda::gemm_variant_name(tuned);
  const std::string name = fmt("%s %s%s %s %lldx%lldx%lld %s", what.c_str(), ta ? "T" : "N", tb ? "T" : "N",
                               mode_str(mode), (long long)gc.M, (long long)gc.N, (long long)gc.K, v.name);
  if (!rep.wants(name)) return;
  const int64_t M = gc.M, N = gc.N, K = gc.K;
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
  const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
  const int64_t lda = std::max<int64_t>(1, a_cols) + v.lda_pad, ldb = std::max<int64_t>(1, b_cols) + v.ldb_pad;
  const int64_t ldc = N + v.ldc_pad;
  Rng rng(seed);
  std::vector<float> A = rng.vec((size_t)std::max<int64_t>(1, a_rows * lda));
  std::vector<float> B = rng.vec((size_t)std::max<int64_t>(1, b_rows * ldb));
  std::vector<float> C0 = rng.vec((size_t)std::max<int64_t>(1, M * ldc));
  if (v.nan_c) std::fill(C0.begin(), C0.end(), NAN);
  // NaN in the leading-dimension padding: a kernel that reads past a row's end (even to
  // multiply it by a zero-filled tail of the other operand) gets NaN.
  for (int64_t r = 0; r < a_rows; ++r)
    for (int64_t c = a_cols; c < lda; ++c) A[(size_t)(r * lda + c)] = NAN;
  for (int64_t r = 0; r < b_rows; ++r)
    for (int64_t c = b_cols; c < ldb; ++c) B[(size_t)(r * ldb + c)] = NAN;
  DevBuf<float> dA(A, v.misalign), dB(B, v.misalign), dC(C0, v.misalign);
  const cudaError_t e = tuned < 0 ? imagerate::cuda::gemm_f32(ta, tb, M, N, K, v.alpha, dA.get(), lda, dB.get(), ldb,
                                                               v.beta, dC.get(), ldc, mode, nullptr)
                                   : imagerate::cuda::gemm_variant(tuned, M, N, K, v.alpha, dA.get(), lda, dB.get(), ldb,
                                                                   v.beta, dC.get(), ldc, nullptr);
  if (!launched(rep, name, e)) return;
  const std::vector<float> got = dC.download();

  std::vector<double> ref(C0.size()), scale(C0.size(), 0.0);
  std::vector<float> got_c(C0.size());
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t o = (size_t)(i * ldc + j);
      if (j >= N) {  // padding columns must be untouched
        ref[o] = C0[o];
        continue;
      }
      double s = 0, sa = 0;
      if (v.alpha != 0.f)
        for (int64_t k = 0; k < K; ++k) {
          const double a = ta ? A[(size_t)(k * lda + i)] : A[(size_t)(i * lda + k)];
          const double b = tb ? B[(size_t)(j * ldb + k)] : B[(size_t)(k * ldb + j)];
          s += a * b;
          sa += std::fabs(a * b);
        }
      const double c = v.beta == 0.f ? 0.0 : (double)v.beta * C0[o];
      ref[o] = (double)v.alpha * s + c;
      scale[o] = std::fabs((double)v.alpha) * sa + std::fabs(c);
    }
  compare_bound(rep, name, got, ref, scale, mode_tolerance(mode, K), mode_atol(mode, K));
  if (also_cpu) {
    std::vector<float> cpu = C0;
    imagerate::gemm_f32(ta, tb, M, N, K, v.alpha, A.data(), lda, B.data(), ldb, v.beta, cpu.data(), ldc);
    std::vector<double> cref(cpu.begin(), cpu.end());
    // Both are fp32 with different summation orders: each within the FP32 bound of the exact value.
    compare_bound(rep, name + " vs cpu", got, cref, scale, 2 * mode_tolerance(MathMode::FP32, K), 1e-30);
  }
}

// x rounded to `bits` significant bits (normal range only): ties to even, or away from zero.
double round_bits(double x, int bits, bool ties_away) {
  if (x == 0.0 || !std::isfinite(x)) return x;
  int e = 0;
  const double m = std::ldexp(std::frexp(x, &e), bits);  // |m| in [2^(bits-1), 2^bits)
  double r = std::nearbyint(m);                          // default rounding: to nearest even
  if (ties_away && std::fabs(m - std::trunc(m)) == 0.5) r = std::trunc(m) + (m > 0 ? 1.0 : -1.0);
  return std::ldexp(r, e - bits);
}
double round_mode(MathMode mode, float x) {
  switch (mode) {
    case MathMode::TF32: return round_bits(x, 11, true);   // cvt.rna.tf32.f32
    case MathMode::BF16: return round_bits(x, 8, false);   // cvt.rn.bf16x2.f32
    case MathMode::FP16:  // cvt.rn.f16x2.f32; below 2^-14 fp16 is subnormal: a fixed step of 2^-24
      return std::fabs(x) < std::ldexp(1.0, -14) ? std::ldexp(std::nearbyint(std::ldexp((double)x, 24)), -24)
                                                 : round_bits(x, 11, false);
    default: return x;
  }
}

// C = A * I (side 0) or I * B (side 1) for M = 37, N = K = 40 (a K tail in every mode, a
// partial 16-bit k pair at the end), all four transposes: C must equal the rounded operand
// exactly. The values: ties for each format, then random in [-4, 4] (normal in fp16).
void check_gemm_rounding(Report& rep, MathMode mode, int side, bool ta, bool tb, uint64_t seed) {
  const std::string name = fmt("gemm rounding %s%s %s %s", ta ? "T" : "N", tb ? "T" : "N", mode_str(mode),
                               side == 0 ? "C=A*I" : "C=I*B");
  if (!rep.wants(name)) return;
  const int64_t M = side == 0 ? 37 : 40, N = side == 0 ? 40 : 37, K = 40;
  const float u = std::ldexp(1.f, -11), v = std::ldexp(1.f, -8);
  const float special[] = {1.f + u / 2,  1.f + u,      1.f + 3 * u,  -(1.f + u),   1.f + v,     1.f + 3 * v,
                           -(1.f + 3 * v), 1.f + v / 2, 3.f + 2 * u, 0.1f,        -0.3f,       1.f + 5 * u,
                           2.f - u / 2,  1.f + v + u, -(1.f + 5 * u)};
  Rng rng(seed);
  // Logical operands: X holds the values (A when side 0, B when side 1), the other is I.
  const int64_t xr = side == 0 ? M : K, xc = side == 0 ? K : N;
  std::vector<float> X = rng.vec((size_t)(xr * xc), -4.f, 4.f);
  for (size_t i = 0; i < X.size(); ++i)
    if (i % 7 < 3) X[i] = special[(i / 7 * 3 + i % 7) % (sizeof special / sizeof special[0])];
  auto logical_a = [&](int64_t i, int64_t k) { return side == 0 ? X[(size_t)(i * K + k)] : (i == k ? 1.f : 0.f); };
  auto logical_b = [&](int64_t k, int64_t j) { return side == 1 ? X[(size_t)(k * N + j)] : (k == j ? 1.f : 0.f); };
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  std::vector<float> A((size_t)(M * K)), B((size_t)(K * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) A[(size_t)(ta ? k * lda + i : i * lda + k)] = logical_a(i, k);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) B[(size_t)(tb ? j * ldb + k : k * ldb + j)] = logical_b(k, j);
  std::vector<float> want((size_t)(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      want[(size_t)(i * N + j)] = (float)round_mode(mode, side == 0 ? logical_a(i, j) : logical_b(i, j));
  std::vector<float> nanc((size_t)(M * N), NAN);
  DevBuf<float> dA(A), dB(B), dC(nanc);
  if (!launched(rep, name,
                imagerate::cuda::gemm_f32(ta, tb, M, N, K, 1.f, dA.get(), lda, dB.get(), ldb, 0.f, dC.get(), N, mode,
                                          nullptr)))
    return;
  compare_exact(rep, name, dC.download(), want);
}

// M = 65535 * 128 + 77 rows: the 128-row tile configs need a second launch along gridDim.y.
void check_gemm_tall(Report& rep, MathMode mode, bool ta, uint64_t seed) {
  const int64_t M = 65535LL * 128 + 77, N = 3, K = 5;
  const std::string name = fmt("gemm tall %s%s %s %lldx%lldx%lld", ta ? "T" : "N", "N", mode_str(mode), (long long)M,
                               (long long)N, (long long)K);
  if (!rep.wants(name)) return;
  Rng rng(seed);
  const int64_t lda = ta ? M : K;
  const std::vector<float> A = rng.vec((size_t)(M * K)), B = rng.vec((size_t)(K * N));
  std::vector<float> nanc((size_t)(M * N), NAN);
  DevBuf<float> dA(A), dB(B), dC(nanc);
  if (!launched(rep, name,
                imagerate::cuda::gemm_f32(ta, false, M, N, K, 1.f, dA.get(), lda, dB.get(), N, 0.f, dC.get(), N, mode,
                                          nullptr)))
    return;
  std::vector<double> ref((size_t)(M * N)), scale((size_t)(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0, sa = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = (double)A[(size_t)(ta ? k * lda + i : i * lda + k)] * B[(size_t)(k * N + j)];
        s += p;
        sa += std::fabs(p);
      }
      ref[(size_t)(i * N + j)] = s;
      scale[(size_t)(i * N + j)] = sa;
    }
  compare_bound(rep, name, dC.download(), ref, scale, mode_tolerance(mode, K), mode_atol(mode, K));
}

}  // namespace

void validate_gemm(const Options& opt, Report& rep) {
  std::vector<GemmCase> shapes = {{1, 1, 1},    {1, 1, 17},    {7, 13, 5},     {17, 33, 9},  {3, 300, 7},
                                  {300, 3, 7},  {64, 64, 64},  {65, 63, 31},   {128, 128, 8}, {129, 127, 31},
                                  {257, 130, 67}, {33, 65, 1000}, {200, 260, 300}};
  const std::vector<GemmCase> big = {{1543, 1551, 43}, {1409, 1411, 129}};  // SIMT 128x128 config
  // {260, 200, 36}: several partial 128x128 tiles with k a multiple of 4, so the tf32 NT checks
  // with aligned operands reach the TMA loop under --wgmma in the quick run too.
  if (opt.quick) shapes = {{1, 1, 1}, {7, 13, 5}, {129, 127, 31}, {33, 65, 1000}, {260, 200, 36}};
  const GemmArgs variants[] = {
      {"a=1 b=0 nanC", 1.f, 0.f, 0, 0, 0, 0, true},
      {"a=.75 b=-1.5 odd-ld", 0.75f, -1.5f, 3, 1, 5, 0, false},
      {"a=1.25 b=.5 ld+4", 1.25f, 0.5f, 4, 4, 4, 0, false},
      {"a=1 b=0 misaligned", 1.f, 0.f, 0, 0, 0, 1, false},
  };
  uint64_t seed = 1;
  for (MathMode mode : kMathModes)
    for (const GemmCase& gc : shapes)
      for (int t = 0; t < 4; ++t)
        for (const GemmArgs& v : variants)
          check_gemm(rep, gc, t & 1, t & 2, mode, v, seed++, mode == MathMode::FP32 && &v == &variants[0]);
  if (!opt.quick)
    for (MathMode mode : kMathModes)
      for (const GemmCase& gc : big)
        for (int t = 0; t < 4; ++t) check_gemm(rep, gc, t & 1, t & 2, mode, variants[t == 3 ? 1 : 0], seed++, false);
  // The GEMM tuning variants, the defaults' configs included (the fp32 shapes above mostly run
  // the 64x64 SIMT config): NN in each variant's mode, every load path and partial tiles, and
  // one shape of several 128x128 tiles.
  for (int tv = 0; tv < imagerate::cuda::gemm_variant_count(); ++tv) {
    const char* vname = imagerate::cuda::gemm_variant_name(tv);
    if (!imagerate::cuda::gemm_variant_supported(tv)) {
      std::printf("SKIP  gemm variant %s: %s\n", vname,
                  std::strstr(vname, "_wgmma_") ? "wgmma needs this build's sm_90a code and a compute capability 9.0 device"
                                                 : "tensor cores need sm_80 or later");
      continue;
    }
    const MathMode vm = imagerate::cuda::gemm_variant_mode(tv);
    for (const GemmCase& gc : shapes)
      for (const GemmArgs& v : variants) check_gemm(rep, gc, false, false, vm, v, seed++, false, tv);
    check_gemm(rep, {515, 387, 77}, false, false, vm, variants[1], seed++, vm == MathMode::FP32, tv);
  }
  for (MathMode mode : kMathModes)
    for (int side = 0; side < 2; ++side)
      for (int t = 0; t < 4; ++t) check_gemm_rounding(rep, mode, side, t & 1, t & 2, seed++);
  if (!opt.quick) {
    check_gemm_tall(rep, MathMode::FP32, false, seed++);
    check_gemm_tall(rep, MathMode::TF32, true, seed++);
  }

  // Degenerate cases: K == 0 and alpha == 0 only scale C (A, B unread: NaN there must not
  // matter); beta == 0 then zeroes C, even if it held NaN; M == 0 leaves C alone.
  for (MathMode mode : {MathMode::FP32, MathMode::TF32}) {
    struct Deg {
      const char* name;
      int64_t M, N, K;
      float alpha, beta;
      bool nan_c;
    } degs[] = {{"K=0 b=.5", 5, 7, 0, 1.f, 0.5f, false},
                {"K=0 b=0 nanC", 5, 7, 0, 1.f, 0.f, true},
                {"alpha=0 b=2 nanAB", 9, 4, 6, 0.f, 2.f, false},
                {"alpha=0 b=0 nanC", 9, 4, 6, 0.f, 0.f, true},
                {"M=0", 0, 4, 6, 1.f, 0.f, false}};
    for (const Deg& d : degs) {
      const std::string name = fmt("gemm degenerate %s %s", mode_str(mode), d.name);
      if (!rep.wants(name)) continue;
      Rng rng(seed++);
      std::vector<float> A((size_t)std::max<int64_t>(1, d.M * d.K), NAN), B((size_t)std::max<int64_t>(1, d.K * d.N), NAN);
      std::vector<float> C = rng.vec((size_t)std::max<int64_t>(1, d.M * d.N) + 8);
      if (d.nan_c) std::fill(C.begin(), C.end(), NAN);
      DevBuf<float> dA(A), dB(B), dC(C);
      CK(imagerate::cuda::gemm_f32(false, false, d.M, d.N, d.K, d.alpha, dA.get(), std::max<int64_t>(1, d.K), dB.get(),
                                   d.N, d.beta, dC.get(), d.N, mode, nullptr));
      std::vector<float> want = C;
      for (int64_t i = 0; i < d.M * d.N; ++i) want[(size_t)i] = d.beta == 0.f ? 0.f : d.beta * C[(size_t)i];
      compare_exact(rep, name, dC.download(), want);
    }
  }
}

}  // namespace harness
