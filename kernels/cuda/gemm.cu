// gemm.cu: C = alpha * op(A) * op(B) + beta * C on the GPU (kernels.cuh), row-major fp32
// storage, any M, N, K, leading dimensions and transposes.
//
// Which kernel runs (gemm_kernel_name says the same):
//   M, N > 0 and (K == 0 or alpha == 0)  gemm_scale_c: C = beta * C (0 when beta == 0), A and
//                                        B unread, exactly as the CPU contract.
//   MathMode TF32/BF16/FP16, sm_80+      gemm_<mode>_mma_128x128 (tensor cores, gemm_tile.cuh),
//                                        or gemm_<mode>_wgmma_128x128 when use_wgmma(); there,
//                                        TF32 with A as stored and B transposed (both k
//                                        contiguous), 16-byte aligned, lda and ldb multiples of
//                                        4, runs gemm_tf32_wgmma_tma_128x128 (operands brought
//                                        by the TMA copy engine; tma_eligible below)
//   otherwise (FP32, or an older GPU)    gemm_f32_simt_128x128, or gemm_f32_simt_64x64 when the
//                                        128x128 grid would not give every SM a block.
// The transposes select the loaders' orientation at compile time (4 instantiations per main
// loop); alignment (16-byte pointers, leading dimensions multiple of 4) is checked here and
// switches the loaders and the epilogue between float4 and scalar accesses at run time, so an
// odd lda costs speed, never correctness. Every output accumulates its k terms in order 0..K-1
// with one fp32 FMA each in the SIMT kernels, so the two SIMT tile configs give identical bits.
#include <cuda_runtime.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "common.cuh"
#include "gemm_operands.cuh"
#include "kernels.cuh"

namespace imagerate {
namespace cuda {
namespace detail {

cudaError_t current_device_info(DeviceInfo* out) {
  static std::mutex mu;
  static DeviceInfo cache[64];
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  std::lock_guard<std::mutex> lock(mu);
  if (dev >= 0 && dev < 64 && cache[dev].cc > 0) {
    *out = cache[dev];
    return cudaSuccess;
  }
  int major = 0, minor = 0, sms = 0;
  if ((e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev)) != cudaSuccess) return e;
  if ((e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev)) != cudaSuccess) return e;
  if ((e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess) return e;
  DeviceInfo d;
  d.cc = major * 10 + minor;
  d.sms = sms;
  if (dev >= 0 && dev < 64) cache[dev] = d;
  *out = d;
  return cudaSuccess;
}

}  // namespace detail

namespace {

using detail::aligned16;
using detail::div_up;
using detail::fits_i32;
using tile::MatEpilogue;
using tile::MatLoader;
using tile::MmaRun;
using tile::SimtRun;
using tile::WgmmaRun;

__global__ void gemm_scale_c(int M, int N, float beta, float* C, int64_t ldc) {
  const int64_t total = (int64_t)M * N;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = idx / N, j = idx - i * N;
    float* c = C + i * ldc + j;
    *c = beta == 0.f ? 0.f : beta * *c;
  }
}

// op(A) rows are m: A as stored is along-K (A[m*lda + k]); transposed it is along-row.
// op(B) rows (of the B operand tile) are n: B as stored is along-row (B[k*ldb + n]).
template <class Run>
cudaError_t dispatch(bool ta, bool tb, int M, int N, int K, const float* A, int64_t lda, int va,
                     const float* B, int64_t ldb, int vb, const MatEpilogue& epi, cudaStream_t s) {
  using SA = typename Run::ShapeA;
  using SB = typename Run::ShapeB;
  if (!ta && !tb)
    return Run::run(MatLoader<SA, true>{A, lda, M, va}, MatLoader<SB, false>{B, ldb, N, vb}, epi, M, N, K, 1, K, s);
  if (!ta && tb)
    return Run::run(MatLoader<SA, true>{A, lda, M, va}, MatLoader<SB, true>{B, ldb, N, vb}, epi, M, N, K, 1, K, s);
  if (ta && !tb)
    return Run::run(MatLoader<SA, false>{A, lda, M, va}, MatLoader<SB, false>{B, ldb, N, vb}, epi, M, N, K, 1, K, s);
  return Run::run(MatLoader<SA, false>{A, lda, M, va}, MatLoader<SB, true>{B, ldb, N, vb}, epi, M, N, K, 1, K, s);
}

enum class Pick { kNone, kScale, kSimtBig, kSimtSmall, kMma, kWgmma };

// The TMA loop's operand conditions (gemm_tile.cuh's wgmma_tma_kernel; a tensor map needs a
// 16-byte aligned base and row strides that are multiples of 16 bytes), given the wgmma pick.
// The maps themselves are built per call; where the driver cannot (tma_encode_f32_2d false) the
// register-staged wgmma loop runs instead.
bool tma_eligible(bool ta, bool tb, MathMode mode, bool va, bool vb) { return mode == MathMode::TF32 && !ta && tb && va && vb; }

Pick pick_kernel(int64_t M, int64_t N, int64_t K, float alpha, MathMode mode, const detail::DeviceInfo& di) {
  if (M <= 0 || N <= 0) return Pick::kNone;
  if (K <= 0 || alpha == 0.f) return Pick::kScale;
  if (mode != MathMode::FP32 && di.cc >= 80) return detail::use_wgmma_on(di) ? Pick::kWgmma : Pick::kMma;
  const int64_t big_tiles = div_up(M, 128) * div_up(N, 128);
  return big_tiles >= di.sms ? Pick::kSimtBig : Pick::kSimtSmall;
}

}  // namespace

const char* math_mode_name(MathMode m) {
  switch (m) {
    case MathMode::FP32: return "fp32";
    case MathMode::TF32: return "tf32";
    case MathMode::BF16: return "bf16";
    case MathMode::FP16: return "fp16";
  }
  return "unknown";
}

const char* gemm_kernel_name(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                             float alpha, MathMode mode) {
  detail::DeviceInfo di;
  if (detail::current_device_info(&di) != cudaSuccess) return "none (no CUDA device)";
  const Pick pick = pick_kernel(M, N, K, alpha, mode, di);
  switch (pick) {
    case Pick::kNone: return "none (empty)";
    case Pick::kScale: return "gemm_scale_c";
    case Pick::kSimtBig: return "gemm_f32_simt_128x128";
    case Pick::kSimtSmall: return "gemm_f32_simt_64x64";
    case Pick::kMma:
    case Pick::kWgmma: {
      static const char* const kNames[2][3] = {
          {"gemm_tf32_mma_128x128", "gemm_bf16_mma_128x128", "gemm_fp16_mma_128x128"},
          {"gemm_tf32_wgmma_128x128", "gemm_bf16_wgmma_128x128", "gemm_fp16_wgmma_128x128"}};
      if (mode == MathMode::FP32) break;
      // The name assumes aligned operands (the TMA loop's other condition; gemm_f32 falls back
      // to the register-staged wgmma loop for misaligned ones).
      if (pick == Pick::kWgmma && tma_eligible(trans_a, trans_b, mode, true, true)) return "gemm_tf32_wgmma_tma_128x128";
      return kNames[pick == Pick::kWgmma ? 1 : 0][(int)mode - 1];  // TF32, BF16, FP16 = 1, 2, 3
    }
  }
  return "unknown";
}

cudaError_t gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc, MathMode mode, cudaStream_t stream) {
  if (M <= 0 || N <= 0) return cudaSuccess;
  // K + 64: the main loops form k indices up to K + BK - 1 in int32 (gemm_tile.cuh).
  if (!fits_i32(M) || !fits_i32(N) || !fits_i32(K < 0 ? 0 : K + 64)) return cudaErrorInvalidValue;
  if (K <= 0 || alpha == 0.f) {
    if (beta == 1.f) return cudaSuccess;
    const int64_t total = M * N;
    gemm_scale_c<<<detail::grid_for(total, 256, 4), 256, 0, stream>>>((int)M, (int)N, beta, C, ldc);
    return detail::launch_status();
  }
  detail::DeviceInfo di;
  cudaError_t e = detail::current_device_info(&di);
  if (e != cudaSuccess) return e;
  const Pick pick = pick_kernel(M, N, K, alpha, mode, di);
  const int va = aligned16(A) && lda % 4 == 0;
  const int vb = aligned16(B) && ldb % 4 == 0;
  const MatEpilogue epi{C, ldc, 0, (int)M, (int)N, alpha, beta, aligned16(C) && ldc % 4 == 0};
  const int m = (int)M, n = (int)N, k = (int)K;
  switch (pick) {
    case Pick::kMma:
      if (mode == MathMode::TF32)
        return dispatch<MmaRun<MathMode::TF32>>(trans_a, trans_b, m, n, k, A, lda, va, B, ldb, vb, epi, stream);
      if (mode == MathMode::BF16)
        return dispatch<MmaRun<MathMode::BF16>>(trans_a, trans_b, m, n, k, A, lda, va, B, ldb, vb, epi, stream);
      return dispatch<MmaRun<MathMode::FP16>>(trans_a, trans_b, m, n, k, A, lda, va, B, ldb, vb, epi, stream);
    case Pick::kWgmma:
      if (tma_eligible(trans_a, trans_b, mode, va, vb)) {
        tma::Map map_a, map_b;
        if (tma_encode_f32_2d(&map_a, A, M, K, lda, tile::TmaCfg::BM, 4) &&
            tma_encode_f32_2d(&map_b, B, N, K, ldb, tile::TmaCfg::BN, 4))
          return tile::launch_wgmma_tma(map_a, map_b, epi, m, n, k, 1, k, stream);
      }
      if (mode == MathMode::TF32)
        return dispatch<WgmmaRun<MathMode::TF32>>(trans_a, trans_b, m, n, k, A, lda, va, B, ldb, vb, epi, stream);
      if (mode == MathMode::BF16)
        return dispatch<WgmmaRun<MathMode::BF16>>(trans_a, trans_b, m, n, k, A, lda, va, B, ldb, vb, epi, stream);
      return dispatch<WgmmaRun<MathMode::FP16>>(trans_a, trans_b, m, n, k, A, lda, va, B, ldb, vb, epi, stream);
    case Pick::kSimtBig:
      return dispatch<SimtRun<tile::SimtBig>>(trans_a, trans_b, m, n, k, A, lda, va, B, ldb, vb, epi, stream);
    case Pick::kSimtSmall:
      return dispatch<SimtRun<tile::SimtSmall>>(trans_a, trans_b, m, n, k, A, lda, va, B, ldb, vb, epi, stream);
    default:
      return cudaSuccess;
  }
}

// ------------------------------------------------------------ tuning variants
// SIMT, ptxas, sm_90 (CUDA 13.0): k8_b2 127-128 registers (the cap), k8_b1 153, k16_b1 165, none
// spilling; a k16 with the 2-block cap spilled 72 bytes and is left out. Tensor cores, NN: b1 (no
// cap, what gemm_f32 runs) 168 (tf32) or 200 (bf16, fp16) registers, b2 (2 blocks per SM) 128
// with no spill (tf32) or 128 bytes of spill stores (bf16, fp16: the paired along-row loads).
// wgmma (sm_90a builds on compute capability 9.0 only; gemm_tile.cuh's wgmma_kernel): 135 (tf32)
// or 168 (bf16, fp16) registers, no spill. (ptxas, CUDA 13.0, sm_90a, NN.)
namespace {

// dispatch()'s NN case alone: the variants are timed NN only, and dispatch() would instantiate
// all four transposes of each.
template <class Run>
cudaError_t run_nn(int m, int n, int k, const float* A, int64_t lda, int va, const float* B, int64_t ldb, int vb,
                   const MatEpilogue& epi, cudaStream_t s) {
  return Run::run(MatLoader<typename Run::ShapeA, true>{A, lda, m, va},
                  MatLoader<typename Run::ShapeB, false>{B, ldb, n, vb}, epi, m, n, k, 1, k, s);
}

struct GemmVariant {
  const char* name;
  MathMode mode;
  cudaError_t (*run)(int, int, int, const float*, int64_t, int, const float*, int64_t, int, const MatEpilogue&,
                     cudaStream_t);
};
const GemmVariant kGemmVariants[] = {
    {"f32_simt_128x128_k8_b2", MathMode::FP32, &run_nn<SimtRun<tile::SimtBig>>},
    {"f32_simt_128x128_k8_b1", MathMode::FP32, &run_nn<SimtRun<tile::SimtCfg<128, 128, 8, 8, 8, 1>>>},
    {"f32_simt_128x128_k16_b1", MathMode::FP32, &run_nn<SimtRun<tile::SimtCfg<128, 128, 16, 8, 8, 1>>>},
    {"tf32_mma_128x128_b1", MathMode::TF32, &run_nn<MmaRun<MathMode::TF32, 1>>},
    {"tf32_mma_128x128_b2", MathMode::TF32, &run_nn<MmaRun<MathMode::TF32, 2>>},
    {"bf16_mma_128x128_b1", MathMode::BF16, &run_nn<MmaRun<MathMode::BF16, 1>>},
    {"bf16_mma_128x128_b2", MathMode::BF16, &run_nn<MmaRun<MathMode::BF16, 2>>},
    {"fp16_mma_128x128_b1", MathMode::FP16, &run_nn<MmaRun<MathMode::FP16, 1>>},
    {"fp16_mma_128x128_b2", MathMode::FP16, &run_nn<MmaRun<MathMode::FP16, 2>>},
    {"tf32_wgmma_128x128", MathMode::TF32, &run_nn<WgmmaRun<MathMode::TF32>>},
    {"bf16_wgmma_128x128", MathMode::BF16, &run_nn<WgmmaRun<MathMode::BF16>>},
    {"fp16_wgmma_128x128", MathMode::FP16, &run_nn<WgmmaRun<MathMode::FP16>>},
};
bool is_wgmma(int v) { return std::strstr(kGemmVariants[v].name, "_wgmma_") != nullptr; }
constexpr int kGemmVariantCount = (int)(sizeof kGemmVariants / sizeof kGemmVariants[0]);

}  // namespace

int gemm_variant_count() { return kGemmVariantCount; }
const char* gemm_variant_name(int v) { return v >= 0 && v < kGemmVariantCount ? kGemmVariants[v].name : nullptr; }
MathMode gemm_variant_mode(int v) { return v >= 0 && v < kGemmVariantCount ? kGemmVariants[v].mode : MathMode::FP32; }

namespace detail {
std::atomic<bool> g_use_wgmma{false};

bool wgmma_runs_on(const DeviceInfo& di) {
#if defined(IMAGERATE_CUDA_SM90A)
  return di.cc == 90;  // sm_90a code runs on compute capability 9.0 only
#else
  (void)di;
  return false;  // the build has no sm_90a code (CMAKE_CUDA_ARCHITECTURES without 90a)
#endif
}

bool use_wgmma_on(const DeviceInfo& di) { return g_use_wgmma.load(std::memory_order_relaxed) && wgmma_runs_on(di); }
}  // namespace detail

bool gemm_wgmma_supported() {
  detail::DeviceInfo di;
  return detail::current_device_info(&di) == cudaSuccess && detail::wgmma_runs_on(di);
}

void set_use_wgmma(bool on) { detail::g_use_wgmma.store(on); }
bool use_wgmma() {
  detail::DeviceInfo di;
  return detail::current_device_info(&di) == cudaSuccess && detail::use_wgmma_on(di);
}

bool gemm_variant_supported(int v) {
  if (v < 0 || v >= kGemmVariantCount) return false;
  if (kGemmVariants[v].mode == MathMode::FP32) return true;
  if (is_wgmma(v)) return gemm_wgmma_supported();
  detail::DeviceInfo di;  // mma.sync: sm_80 and later
  return detail::current_device_info(&di) == cudaSuccess && di.cc >= 80;
}

cudaError_t gemm_variant(int v, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                         const float* B, int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t stream) {
  if (v < 0 || v >= kGemmVariantCount || M <= 0 || N <= 0 || K <= 0) return cudaErrorInvalidValue;
  if (!fits_i32(M) || !fits_i32(N) || !fits_i32(K + 64)) return cudaErrorInvalidValue;
  if (!gemm_variant_supported(v)) return cudaErrorNotSupported;
  const int va = aligned16(A) && lda % 4 == 0;
  const int vb = aligned16(B) && ldb % 4 == 0;
  const MatEpilogue epi{C, ldc, 0, (int)M, (int)N, alpha, beta, aligned16(C) && ldc % 4 == 0};
  return kGemmVariants[v].run((int)M, (int)N, (int)K, A, lda, va, B, ldb, vb, epi, stream);
}

}  // namespace cuda
}  // namespace imagerate
