// pool2d.cu: 2-D max and average pooling, forward and backward (kernels.cuh); same math and
// the same order of floating-point operations as kernels/cpu/pool2d.cc, so results match the
// CPU bit for bit.
//
// Layouts: x, dx [N, C, H, W]; y, dy, argmax [N, C, P, Q]. Window (p, q) covers input rows
// p*sh - ph .. + kh - 1 and columns likewise, clipped to the image.
// Forward: one thread per output (grid-stride over N*C*P*Q).
//   max: first maximum in row-major window order, a NaN wins (the last one), padding never
//        wins; a window wholly in padding gives -inf and argmax -1. argmax = h*W + w.
//   avg: windows wholly inside the image are sum * (1/(kh*kw)) (the CPU's interior path);
//        others sum / divisor, divisor = window clipped to the padded input
//        (count_include_pad) or the in-bounds count (0 -> y = 0).
// Backward: one thread per *input* element (a gather, no atomics): it visits, in ascending
// (p, q) order, the outputs whose window contains it, and adds dy (max: when argmax points at
// it; avg: dy * inv or dy / divisor, as in forward). The CPU scatters outputs in the same
// ascending order onto a zeroed dx, so every sum has the same terms in the same order.
#include <cuda_runtime.h>

#include <cmath>

#include "common.cuh"
#include "kernels.cuh"

namespace imagerate {
namespace cuda {
namespace {

using detail::grid_for;

struct PoolGeo {
  int64_t planes;
  int H, W, kh, kw, sh, sw, ph, pw, P, Q;
  int include_pad;
};

// Clipped window of output o along one axis.
struct Span {
  int lo, hi, padded, inside;  // in-bounds [lo, hi), length clipped to the padded input, wholly in image
};
__device__ __forceinline__ Span span(int o, int stride, int pad, int k, int size) {
  const int start = o * stride - pad;
  const int end = min(start + k, size + pad);
  Span s;
  s.lo = max(start, 0);
  s.hi = min(end, size);
  s.padded = end - start;
  s.inside = start >= 0 && start + k <= size;
  return s;
}

// Outputs o whose window contains input index i along one axis: [*o0, *o1).
__device__ __forceinline__ void covering(int i, int stride, int pad, int k, int n_out, int* o0, int* o1) {
  // o*stride - pad <= i  and  i < o*stride - pad + k
  const int t = i + pad;             // o*stride <= t, o*stride > t - k
  int lo = t - k + 1;                // o >= ceil(lo / stride) when lo > 0
  lo = lo <= 0 ? 0 : (lo + stride - 1) / stride;
  int hi = t / stride + 1;           // o <= floor(t / stride)
  *o0 = lo;
  *o1 = min(hi, n_out);
}

__global__ void maxpool_fwd_kernel(PoolGeo g, const float* x, float* y, int32_t* argmax) {
  const int64_t total = g.planes * g.P * g.Q;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
    const int q = (int)(idx % g.Q);
    const int p = (int)((idx / g.Q) % g.P);
    const int64_t plane = idx / ((int64_t)g.P * g.Q);
    const float* xp = x + plane * g.H * g.W;
    const Span sh = span(p, g.sh, g.ph, g.kh, g.H), sw = span(q, g.sw, g.pw, g.kw, g.W);
    float best = -INFINITY;
    int a = -1;
    for (int h = sh.lo; h < sh.hi; ++h)
      for (int w = sw.lo; w < sw.hi; ++w) {
        const float v = __ldg(xp + h * g.W + w);
        if (a < 0 || v > best || v != v) {
          best = v;
          a = h * g.W + w;
        }
      }
    y[idx] = best;
    argmax[idx] = a;
  }
}

__global__ void avgpool_fwd_kernel(PoolGeo g, const float* x, float* y) {
  const int64_t total = g.planes * g.P * g.Q;
  const float inv = 1.0f / (float)(g.kh * g.kw);
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
    const int q = (int)(idx % g.Q);
    const int p = (int)((idx / g.Q) % g.P);
    const int64_t plane = idx / ((int64_t)g.P * g.Q);
    const float* xp = x + plane * g.H * g.W;
    const Span sh = span(p, g.sh, g.ph, g.kh, g.H), sw = span(q, g.sw, g.pw, g.kw, g.W);
    float sum = 0.f;
    for (int h = sh.lo; h < sh.hi; ++h)
      for (int w = sw.lo; w < sw.hi; ++w) sum = __fadd_rn(sum, __ldg(xp + h * g.W + w));
    if (sh.inside && sw.inside) {
      y[idx] = __fmul_rn(sum, inv);
    } else {
      const int div = g.include_pad ? sh.padded * sw.padded : max(0, sh.hi - sh.lo) * max(0, sw.hi - sw.lo);
      y[idx] = div > 0 ? __fdiv_rn(sum, (float)div) : 0.f;
    }
  }
}

__global__ void maxpool_bwd_kernel(PoolGeo g, const float* dy, const int32_t* argmax, float* dx) {
  const int64_t total = g.planes * g.H * g.W;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
    const int w = (int)(idx % g.W);
    const int h = (int)((idx / g.W) % g.H);
    const int64_t plane = idx / ((int64_t)g.H * g.W);
    const int64_t out0 = plane * g.P * g.Q;
    const int self = h * g.W + w;
    int p0, p1, q0, q1;
    covering(h, g.sh, g.ph, g.kh, g.P, &p0, &p1);
    covering(w, g.sw, g.pw, g.kw, g.Q, &q0, &q1);
    float s = 0.f;
    for (int p = p0; p < p1; ++p)
      for (int q = q0; q < q1; ++q) {
        const int64_t o = out0 + p * g.Q + q;
        if (__ldg(argmax + o) == self) s = __fadd_rn(s, __ldg(dy + o));
      }
    dx[idx] = s;
  }
}

__global__ void avgpool_bwd_kernel(PoolGeo g, const float* dy, float* dx) {
  const int64_t total = g.planes * g.H * g.W;
  const float inv = 1.0f / (float)(g.kh * g.kw);
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
    const int w = (int)(idx % g.W);
    const int h = (int)((idx / g.W) % g.H);
    const int64_t plane = idx / ((int64_t)g.H * g.W);
    const int64_t out0 = plane * g.P * g.Q;
    int p0, p1, q0, q1;
    covering(h, g.sh, g.ph, g.kh, g.P, &p0, &p1);
    covering(w, g.sw, g.pw, g.kw, g.Q, &q0, &q1);
    float s = 0.f;
    for (int p = p0; p < p1; ++p) {
      const Span sh = span(p, g.sh, g.ph, g.kh, g.H);
      for (int q = q0; q < q1; ++q) {
        const Span sw = span(q, g.sw, g.pw, g.kw, g.W);
        const float d = __ldg(dy + out0 + p * g.Q + q);
        if (sh.inside && sw.inside) {
          s = __fadd_rn(s, __fmul_rn(d, inv));
        } else {
          const int div = g.include_pad ? sh.padded * sw.padded : max(0, sh.hi - sh.lo) * max(0, sw.hi - sw.lo);
          if (div > 0) s = __fadd_rn(s, __fdiv_rn(d, (float)div));
        }
      }
    }
    dx[idx] = s;
  }
}

bool make_geo(const Pool2dParams& pp, PoolGeo* g) {
  const int64_t v[] = {pp.h, pp.w, pp.kh, pp.kw, pp.stride_h, pp.stride_w, pp.pad_h, pp.pad_w, pp.p, pp.q,
                       pp.h * pp.w, pp.p * pp.q, pp.kh * pp.kw, pp.h + 2 * pp.pad_h + pp.kh,
                       pp.w + 2 * pp.pad_w + pp.kw, pp.p * pp.stride_h + pp.kh, pp.q * pp.stride_w + pp.kw};
  for (int64_t x : v)
    if (!detail::fits_i32(x)) return false;
  if (pp.stride_h < 1 || pp.stride_w < 1) return false;
  *g = PoolGeo{pp.n * pp.c, (int)pp.h, (int)pp.w, (int)pp.kh, (int)pp.kw, (int)pp.stride_h, (int)pp.stride_w,
               (int)pp.pad_h, (int)pp.pad_w, (int)pp.p, (int)pp.q, pp.count_include_pad ? 1 : 0};
  return true;
}

}  // namespace

cudaError_t maxpool2d_fwd(const Pool2dParams& pp, const float* x, float* y, int32_t* argmax, cudaStream_t stream) {
  const int64_t total = pp.n * pp.c * pp.p * pp.q;
  if (total <= 0) return cudaSuccess;
  PoolGeo g;
  if (!make_geo(pp, &g)) return cudaErrorInvalidValue;
  maxpool_fwd_kernel<<<grid_for(total, 256, 2), 256, 0, stream>>>(g, x, y, argmax);
  return detail::launch_status();
}

cudaError_t maxpool2d_bwd(const Pool2dParams& pp, const float* dy, const int32_t* argmax, float* dx,
                          cudaStream_t stream) {
  const int64_t total = pp.n * pp.c * pp.h * pp.w;
  if (total <= 0) return cudaSuccess;
  PoolGeo g;
  if (!make_geo(pp, &g)) return cudaErrorInvalidValue;
  maxpool_bwd_kernel<<<grid_for(total, 256, 2), 256, 0, stream>>>(g, dy, argmax, dx);
  return detail::launch_status();
}

cudaError_t avgpool2d_fwd(const Pool2dParams& pp, const float* x, float* y, cudaStream_t stream) {
  const int64_t total = pp.n * pp.c * pp.p * pp.q;
  if (total <= 0) return cudaSuccess;
  PoolGeo g;
  if (!make_geo(pp, &g)) return cudaErrorInvalidValue;
  avgpool_fwd_kernel<<<grid_for(total, 256, 2), 256, 0, stream>>>(g, x, y);
  return detail::launch_status();
}

cudaError_t avgpool2d_bwd(const Pool2dParams& pp, const float* dy, float* dx, cudaStream_t stream) {
  const int64_t total = pp.n * pp.c * pp.h * pp.w;
  if (total <= 0) return cudaSuccess;
  PoolGeo g;
  if (!make_geo(pp, &g)) return cudaErrorInvalidValue;
  avgpool_bwd_kernel<<<grid_for(total, 256, 2), 256, 0, stream>>>(g, dy, dx);
  return detail::launch_status();
}

}  // namespace cuda
}  // namespace imagerate
