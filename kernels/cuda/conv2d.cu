// conv2d.cu: 2-D convolution (groups = 1) forward, backward-data and backward-filter as
// implicit GEMMs on the main loops of gemm_tile.cuh, with the loaders of conv_operands.cuh.
// Layouts and GEMM views are described there; the contract is kernels.cuh (= the CPU one).
//
//   forward      [K x NPQ] = w[K x CRS] . im2col(x)[CRS x NPQ]; epilogue adds bias and, for
//                conv2d_fwd_bias_relu, applies ReLU before the single store of y.
//   bwd-data     [C x NHW] = w^T[C x KRS] . gather(dy)[KRS x NHW]; overwrites dx (every dx
//                element is one GEMM output, so no zero-fill and no atomics).
//   bwd-filter   [K x CRS] = dy[K x NPQ] . im2col(x)^T[NPQ x CRS]. The reduction (N*P*Q) is
//                long and the output small, so it is cut into `splits` k ranges (split-K):
//                each writes its partial tile to a stream-ordered workspace and a second
//                kernel sums the partials in split order (deterministic; the split count
//                depends on the shape only). db = bias_grad(dy) (elementwise.cu).
// Tile config per call: tensor cores (128x128) for TF32/BF16/FP16 on sm_80+ (mma.sync, or wgmma
// when use_wgmma()); otherwise SIMT 128x128, or 64x64 when the GEMM has <= 64 rows or too few
// 128x128 tiles to fill the GPU.
#include <cuda_runtime.h>

#include "common.cuh"
#include "conv_operands.cuh"
#include "gemm_operands.cuh"
#include "kernels.cuh"

namespace imagerate {
namespace cuda {
namespace {

using detail::aligned16;
using detail::div_up;
using detail::fits_i32;
using namespace tile;

enum class Cfg { kSimtBig, kSimtSmall, kTf32, kBf16, kFp16, kTf32Wg, kBf16Wg, kFp16Wg };

Cfg pick_cfg(MathMode mode, const detail::DeviceInfo& di, int64_t M, int64_t N) {
  if (di.cc >= 80 && mode != MathMode::FP32) {
    const bool wg = detail::use_wgmma_on(di);
    if (mode == MathMode::TF32) return wg ? Cfg::kTf32Wg : Cfg::kTf32;
    if (mode == MathMode::BF16) return wg ? Cfg::kBf16Wg : Cfg::kBf16;
    return wg ? Cfg::kFp16Wg : Cfg::kFp16;
  }
  if (M <= 64 || div_up(M, 128) * div_up(N, 128) < di.sms) return Cfg::kSimtSmall;
  return Cfg::kSimtBig;
}

// Calls body.template operator()<Run>() with the launch policy of `cfg`.
template <class Body>
cudaError_t with_cfg(Cfg cfg, const Body& body) {
  switch (cfg) {
    case Cfg::kTf32: return body(MmaRun<MathMode::TF32>{});
    case Cfg::kBf16: return body(MmaRun<MathMode::BF16>{});
    case Cfg::kFp16: return body(MmaRun<MathMode::FP16>{});
    case Cfg::kTf32Wg: return body(WgmmaRun<MathMode::TF32>{});
    case Cfg::kBf16Wg: return body(WgmmaRun<MathMode::BF16>{});
    case Cfg::kFp16Wg: return body(WgmmaRun<MathMode::FP16>{});
    case Cfg::kSimtBig: return body(SimtRun<SimtBig>{});
    default: return body(SimtRun<SimtSmall>{});
  }
}

// Geometry checks shared by all passes: every 32-bit product the loaders form must fit. The
// three GEMM reduction lengths (CRS, KRS, NPQ) get 64 of headroom: the main loops form k
// indices up to K + BK - 1 (gemm_tile.cuh).
bool make_geo(const Conv2dParams& cp, ConvGeo* g) {
  const int64_t vals[] = {cp.n, cp.c, cp.h, cp.w, cp.k, cp.r, cp.s, cp.stride_h, cp.stride_w,
                          cp.pad_h, cp.pad_w, cp.dil_h, cp.dil_w, cp.p, cp.q,
                          cp.n * cp.p * cp.q + 64, cp.n * cp.h * cp.w, cp.c * cp.h * cp.w,
                          cp.k * cp.r * cp.s + 64, cp.c * cp.r * cp.s + 64, cp.k * cp.c * cp.r * cp.s,
                          cp.h + cp.pad_h + cp.r * cp.dil_h, cp.w + cp.pad_w + cp.s * cp.dil_w,
                          cp.p * cp.stride_h + cp.r * cp.dil_h, cp.q * cp.stride_w + cp.s * cp.dil_w};
  for (int64_t v : vals)
    if (!fits_i32(v)) return false;
  if (cp.stride_h < 1 || cp.stride_w < 1 || cp.dil_h < 1 || cp.dil_w < 1) return false;
  *g = ConvGeo{(int)cp.n, (int)cp.c, (int)cp.h, (int)cp.w, (int)cp.k, (int)cp.r, (int)cp.s,
               (int)cp.stride_h, (int)cp.stride_w, (int)cp.pad_h, (int)cp.pad_w, (int)cp.dil_h,
               (int)cp.dil_w, (int)cp.p, (int)cp.q, (int)(cp.h * cp.w), (int)(cp.p * cp.q),
               (int)(cp.r * cp.s), (int)(cp.c * cp.r * cp.s), 0};
  return true;
}

bool is_pointwise(const Conv2dParams& cp) {
  return cp.r == 1 && cp.s == 1 && cp.stride_h == 1 && cp.stride_w == 1 && cp.pad_h == 0 &&
         cp.pad_w == 0 && cp.p == cp.h && cp.q == cp.w && (cp.h * cp.w) % 4 == 0;
}

bool empty(const Conv2dParams& cp) {
  return cp.n <= 0 || cp.c <= 0 || cp.h <= 0 || cp.w <= 0 || cp.k <= 0 || cp.r <= 0 || cp.s <= 0 ||
         cp.p <= 0 || cp.q <= 0;
}

cudaError_t fill_zero(int64_t n, float* p, cudaStream_t stream) {
  return n > 0 ? cudaMemsetAsync(p, 0, (size_t)n * sizeof(float), stream) : cudaSuccess;
}

cudaError_t conv_fwd_impl(const Conv2dParams& cp, const float* x, const float* w, const float* bias,
                          float* y, bool relu, MathMode mode, cudaStream_t stream) {
  if (cp.n <= 0 || cp.k <= 0 || cp.p <= 0 || cp.q <= 0) return cudaSuccess;
  ConvGeo g;
  if (!make_geo(cp, &g)) return cudaErrorInvalidValue;
  if (cp.c <= 0 || cp.r <= 0 || cp.s <= 0) {  // empty reduction: y = act(bias or 0)
    cudaError_t e = fill_zero(cp.n * cp.k * cp.p * cp.q, y, stream);
    if (e != cudaSuccess || (!bias && !relu)) return e;
    return bias ? bias_add(cp.n, cp.k, cp.p * cp.q, y, bias, y, stream) : cudaSuccess;
  }
  g.pointwise = is_pointwise(cp) && aligned16(x);
  detail::DeviceInfo di;
  cudaError_t e = detail::current_device_info(&di);
  if (e != cudaSuccess) return e;
  const int M = g.K, N = g.N * g.PQ, K = g.CRS;
  const int va = aligned16(w) && g.CRS % 4 == 0;
  const NchwEpilogue epi{y, bias, g.K, N, g.PQ, relu ? 1 : 0, (g.PQ % 4 == 0 && aligned16(y)) ? 1 : 0};
  return with_cfg(pick_cfg(mode, di, M, N), [&](auto run) {
    using Run = decltype(run);
    const MatLoader<typename Run::ShapeA, true> la{w, g.CRS, g.K, va};
    const ImcolLoader<typename Run::ShapeB> lb{x, g, N};
    return Run::run(la, lb, epi, M, N, K, 1, K, stream);
  });
}

__global__ void sum_partials(int64_t n, int splits, const float* __restrict__ ws, float* __restrict__ out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float s = ws[i];
    for (int z = 1; z < splits; ++z) s += ws[(int64_t)z * n + i];
    out[i] = s;
  }
}

}  // namespace

cudaError_t conv2d_fwd(const Conv2dParams& cp, const float* x, const float* w, const float* bias,
                       float* y, MathMode mode, cudaStream_t stream) {
  return conv_fwd_impl(cp, x, w, bias, y, false, mode, stream);
}

cudaError_t conv2d_fwd_bias_relu(const Conv2dParams& cp, const float* x, const float* w,
                                 const float* bias, float* y, MathMode mode, cudaStream_t stream) {
  if (cp.c <= 0 || cp.r <= 0 || cp.s <= 0) {  // degenerate: bias (or 0), then ReLU
    cudaError_t e = conv_fwd_impl(cp, x, w, bias, y, false, mode, stream);
    if (e != cudaSuccess) return e;
    return relu_fwd(cp.n * cp.k * cp.p * cp.q, y, y, stream);
  }
  return conv_fwd_impl(cp, x, w, bias, y, true, mode, stream);
}

cudaError_t conv2d_bwd_data(const Conv2dParams& cp, const float* dy, const float* w, float* dx,
                            MathMode mode, cudaStream_t stream) {
  if (cp.n <= 0 || cp.c <= 0 || cp.h <= 0 || cp.w <= 0) return cudaSuccess;
  if (empty(cp)) return fill_zero(cp.n * cp.c * cp.h * cp.w, dx, stream);
  ConvGeo g;
  if (!make_geo(cp, &g)) return cudaErrorInvalidValue;
  g.pointwise = is_pointwise(cp) && aligned16(dy);
  detail::DeviceInfo di;
  cudaError_t e = detail::current_device_info(&di);
  if (e != cudaSuccess) return e;
  const int M = g.C, N = g.N * g.HW, K = g.K * g.RS;
  const int va = g.RS == 1 && g.C % 4 == 0 && aligned16(w);
  const NchwEpilogue epi{dx, nullptr, g.C, N, g.HW, 0, (g.HW % 4 == 0 && aligned16(dx)) ? 1 : 0};
  return with_cfg(pick_cfg(mode, di, M, N), [&](auto run) {
    using Run = decltype(run);
    const WeightTLoader<typename Run::ShapeA> la{w, g, va};
    const DyGatherLoader<typename Run::ShapeB> lb{dy, g, N};
    return Run::run(la, lb, epi, M, N, K, 1, K, stream);
  });
}

cudaError_t conv2d_bwd_filter(const Conv2dParams& cp, const float* x, const float* dy, float* dw,
                              float* db, MathMode mode, cudaStream_t stream) {
  if (cp.k <= 0) return cudaSuccess;
  const int64_t dw_size = cp.k * cp.c * cp.r * cp.s;
  if (cp.n <= 0 || cp.p <= 0 || cp.q <= 0) {  // empty reduction: zeros
    cudaError_t e = fill_zero(dw_size, dw, stream);
    if (e == cudaSuccess && db) e = fill_zero(cp.k, db, stream);
    return e;
  }
  if (dw_size <= 0)  // no weights (C, R or S is 0), but db = sum dy is still defined (as on the CPU)
    return db ? bias_grad(cp.n, cp.k, cp.p * cp.q, dy, db, stream) : cudaSuccess;
  ConvGeo g;
  if (!make_geo(cp, &g)) return cudaErrorInvalidValue;
  g.pointwise = is_pointwise(cp) && aligned16(x);
  detail::DeviceInfo di;
  cudaError_t e = detail::current_device_info(&di);
  if (e != cudaSuccess) return e;
  const int M = g.K, N = g.CRS, K = g.N * g.PQ;
  const Cfg cfg = (mode == MathMode::FP32 || di.cc < 80)
                      ? ((M <= 64 || N <= 64) ? Cfg::kSimtSmall : Cfg::kSimtBig)
                      : pick_cfg(mode, di, M, N);
  const int bm = (cfg == Cfg::kSimtSmall) ? 64 : 128;
  const int bk = cfg == Cfg::kSimtBig || cfg == Cfg::kSimtSmall ? 8 : (cfg == Cfg::kTf32 || cfg == Cfg::kTf32Wg ? 16 : 32);
  // Split-K from the shape only: aim at ~256 blocks, each with >= 512 values of k.
  const int64_t tiles = div_up(M, bm) * div_up(N, bm);
  int64_t splits = 256 / tiles;
  if (splits > div_up(K, 512)) splits = div_up(K, 512);
  if (splits > 1024) splits = 1024;
  if (splits < 1) splits = 1;
  int64_t k_chunk = div_up(div_up(K, splits), bk) * bk;
  splits = div_up(K, k_chunk);
  const int vdy = g.PQ % 4 == 0 && aligned16(dy);

  detail::Scratch ws(splits > 1 ? (size_t)(splits * dw_size) * sizeof(float) : 0, stream);
  if (splits > 1 && ws.status() != cudaSuccess) return ws.status();
  float* out = splits > 1 ? ws.as<float>() : dw;
  const MatEpilogue epi{out, g.CRS, splits > 1 ? dw_size : 0, M, N, 1.f, 0.f,
                        (g.CRS % 4 == 0 && aligned16(out)) ? 1 : 0};
  e = with_cfg(cfg, [&](auto run) {
    using Run = decltype(run);
    const DyRowsLoader<typename Run::ShapeA> la{dy, g, K, vdy};
    const XColsLoader<typename Run::ShapeB> lb{x, g};
    return Run::run(la, lb, epi, M, N, K, (int)splits, (int)k_chunk, stream);
  });
  if (e != cudaSuccess) return e;
  if (splits > 1) {
    sum_partials<<<detail::grid_for(dw_size, 256, 4), 256, 0, stream>>>(dw_size, (int)splits, out, dw);
    e = detail::launch_status();
    if (e != cudaSuccess) return e;
  }
  if (db) return bias_grad(cp.n, cp.k, cp.p * cp.q, dy, db, stream);
  return cudaSuccess;
}

}  // namespace cuda
}  // namespace imagerate
