// harness.h: shared pieces of imagerate_cuda_harness (a standalone C++ program, no Node): the
// CUDA error check, device buffers, a deterministic RNG, the check reporter and the options.
//
// Errors in the harness itself (a failed CUDA call) throw HarnessError, caught in main();
// kernel results that disagree with their reference are counted as failed checks instead.
#pragma once
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels.cuh"

namespace harness {

// printf into a std::string (check names and failure details; longer text is cut at 1 KiB).
inline std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
inline std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

struct HarnessError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void cuda_fail(cudaError_t e, const char* what, const char* file, int line);
#define CK(call)                                                          \
  do {                                                                    \
    const cudaError_t ck_err_ = (call);                                   \
    if (ck_err_ != cudaSuccess) harness::cuda_fail(ck_err_, #call, __FILE__, __LINE__); \
  } while (0)

// A device allocation of n elements of T, freed on scope exit. upload/download are synchronous.
template <typename T>
class DevBuf {
 public:
  DevBuf() = default;
  explicit DevBuf(size_t n, size_t offset_elems = 0) { alloc(n, offset_elems); }
  DevBuf(const std::vector<T>& h, size_t offset_elems = 0) {
    alloc(h.size(), offset_elems);
    upload(h);
  }
  ~DevBuf() {
    if (raw_) cudaFree(raw_);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  // offset_elems > 0 places the data that many elements past an aligned allocation
  // (to exercise the kernels' unaligned paths).
  void alloc(size_t n, size_t offset_elems = 0) {
    if (raw_) CK(cudaFree(raw_));
    raw_ = nullptr;
    n_ = n;
    CK(cudaMalloc(&raw_, (n + offset_elems + 1) * sizeof(T)));
    p_ = static_cast<T*>(raw_) + offset_elems;
  }
  void upload(const std::vector<T>& h) {
    if (h.size() > n_) throw HarnessError("upload larger than buffer");
    CK(cudaMemcpy(p_, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  void* raw_ = nullptr;
  T* p_ = nullptr;
  size_t n_ = 0;
};

// xorshift64* : deterministic, seedable, platform-independent.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  uint64_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 2685821657736338717ull;
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * (float)((next() >> 40) * (1.0 / 16777216.0)); }
  std::vector<float> vec(size_t n, float lo = -1.f, float hi = 1.f) {
    std::vector<float> v(n);
    for (auto& x : v) x = uniform(lo, hi);
    return v;
  }

 private:
  uint64_t s_;
};

struct Options {
  bool validate = true;
  bool bench = false;
  bool quick = false;
  std::string suite = "all";   // gemm | conv | all
  std::string out;             // JSONL file for --bench (stdout when empty)
  std::string filter;          // only checks / benchmarks whose name contains this
  std::string skip;            // and not those whose name contains this
  int device = 0;
  int iters = 0;               // 0: default per mode
};

// Counts and prints checks: one line each, "PASS|FAIL  name  detail".
class Report {
 public:
  void pass(const std::string& name, const std::string& detail);
  void fail(const std::string& name, const std::string& detail);
  int passed() const { return passed_; }
  int failed() const { return failed_; }
  bool wants(const std::string& name) const;
  std::string filter, skip;

 private:
  int passed_ = 0, failed_ = 0;
};

// Elementwise comparison |got - want| <= atol + rtol * |want| (both NaN counts as equal, a
// NaN on one side only fails). Records one check.
void compare(Report& rep, const std::string& name, const std::vector<float>& got,
             const std::vector<float>& want, double atol, double rtol);
// Comparison against a float64 reference with a per-element error bound
// |got - ref| <= tol * scale[i] + atol (scale: e.g. sum |a_ik * b_kj|).
void compare_bound(Report& rep, const std::string& name, const std::vector<float>& got,
                   const std::vector<double>& ref, const std::vector<double>& scale, double tol,
                   double atol);
template <typename T>
void compare_exact(Report& rep, const std::string& name, const std::vector<T>& got, const std::vector<T>& want);
// A launch's returned status: true for cudaSuccess, else a failed check named `name` (launch
// errors are not sticky, so the run can go on; the error is cleared).
bool launched(Report& rep, const std::string& name, cudaError_t e);

// Every math mode, in the order the GEMM and conv checks run them.
inline constexpr imagerate::cuda::MathMode kMathModes[] = {
    imagerate::cuda::MathMode::FP32, imagerate::cuda::MathMode::TF32, imagerate::cuda::MathMode::BF16,
    imagerate::cuda::MathMode::FP16};

// Relative tolerance per math mode, for a product of two rounded operands accumulated over
// k terms (bound relative to sum |a*b|): see validate_gemm.cc.
double mode_tolerance(imagerate::cuda::MathMode m, int64_t k);
// Absolute term to add to that bound for operands in [-1, 1] (fp16 subnormals; see its comment).
double mode_atol(imagerate::cuda::MathMode m, int64_t k);
const char* mode_str(imagerate::cuda::MathMode m);

void validate_gemm(const Options& opt, Report& rep);  // validate_gemm.cc
void validate_conv(const Options& opt, Report& rep);  // validate_conv.cc
// validate_gemm and/or validate_conv, as --suite says (gemm, conv or all).
void validate_gemm_conv(const Options& opt, Report& rep);
void validate_ops(const Options& opt, Report& rep);
int run_bench(const Options& opt, Report& rep);  // returns 0 or an error count
// --wgmma: puts GEMM and conv at tf32/bf16/fp16 on the wgmma main loop (set_use_wgmma) and says
// so, or prints why the current device cannot run it and returns false (the caller exits 2).
bool select_wgmma();

}  // namespace harness
