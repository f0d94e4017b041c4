// channel_reduce.cuh: deterministic per-channel sums over a [outer, ch, inner] tensor (NCHW:
// outer = N, inner = H*W), in double, for bias_grad and batch norm (elementwise.cu,
// batchnorm.cu).
//
// An Op supplies kOut (how many sums), accumulate(idx, c, acc) for element idx of channel c,
// and finish(c, sums) which receives the channel's complete sums. Two stages:
//   1. partial sums, one of two layouts depending on `inner`:
//        planes  (inner >= 32): grid (ch, S); block (c, s) walks rows o = s, s + S, ... of
//                channel c, its threads striding along the contiguous run of `inner`.
//        columns (inner < 32, e.g. [rows, cols] bias with inner = 1): the tensor is an
//                [outer, ch*inner] matrix; grid (ceil(ch*inner / 32), S); a block is 32
//                columns x 8 row-lanes, rows o = s*8 + lane, s*8 + lane + 8*S, ... (coalesced).
//      Each block reduces its threads in a fixed tree (block_sum / fixed smem order) and
//      writes one partial per (unit, s).
//   2. finish: one thread per channel adds its partials in order (and, for columns, its
//      `inner` columns in order) and calls op.finish.
// S is chosen from the shape only, so the result is bitwise the same on every run and GPU.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"

namespace imagerate {
namespace cuda {
namespace detail {

struct ChannelShape {
  int64_t outer, ch, inner;
};

template <class Op>
__global__ void __launch_bounds__(256) reduce_planes(ChannelShape sh, int S, Op op, double* part) {
  __shared__ double red[32];
  const int c = blockIdx.x, s = blockIdx.y;
  double acc[Op::kOut];
#pragma unroll
  for (int q = 0; q < Op::kOut; ++q) acc[q] = 0.0;
  for (int64_t o = s; o < sh.outer; o += S) {
    const int64_t base = (o * sh.ch + c) * sh.inner;
    for (int64_t i = threadIdx.x; i < sh.inner; i += blockDim.x) op.accumulate(base + i, c, acc);
  }
#pragma unroll
  for (int q = 0; q < Op::kOut; ++q) {
    const double t = block_sum(acc[q], red);
    if (threadIdx.x == 0) part[((int64_t)c * S + s) * Op::kOut + q] = t;
  }
}

template <class Op>
__global__ void __launch_bounds__(256) reduce_columns(ChannelShape sh, int S, Op op, double* part) {
  __shared__ double red[Op::kOut][8][33];
  const int lane = threadIdx.x & 31, row_lane = threadIdx.x >> 5;  // 32 columns x 8 rows
  const int64_t L = sh.ch * sh.inner;
  const int64_t col = (int64_t)blockIdx.x * 32 + lane;
  const int s = blockIdx.y;
  double acc[Op::kOut];
#pragma unroll
  for (int q = 0; q < Op::kOut; ++q) acc[q] = 0.0;
  if (col < L) {
    const int c = (int)(col / sh.inner);
    for (int64_t o = (int64_t)s * 8 + row_lane; o < sh.outer; o += (int64_t)S * 8)
      op.accumulate(o * L + col, c, acc);
  }
#pragma unroll
  for (int q = 0; q < Op::kOut; ++q) red[q][row_lane][lane] = acc[q];
  __syncthreads();
  if (row_lane == 0 && col < L) {
#pragma unroll
    for (int q = 0; q < Op::kOut; ++q) {
      double t = 0.0;
      for (int r = 0; r < 8; ++r) t += red[q][r][lane];
      part[(col * S + s) * Op::kOut + q] = t;
    }
  }
}

template <class Op>
__global__ void reduce_finish(ChannelShape sh, int S, int units_per_ch, Op op, const double* part) {
  const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (c >= sh.ch) return;
  double sums[Op::kOut];
#pragma unroll
  for (int q = 0; q < Op::kOut; ++q) sums[q] = 0.0;
  for (int u = 0; u < units_per_ch; ++u)
    for (int s = 0; s < S; ++s) {
      const double* p = part + ((c * units_per_ch + u) * S + s) * Op::kOut;
#pragma unroll
      for (int q = 0; q < Op::kOut; ++q) sums[q] += p[q];
    }
  op.finish((int)c, sums);
}

// Runs both stages on `stream`. ch, outer, inner > 0. The partials live in a stream-ordered
// scratch buffer.
template <class Op>
cudaError_t channel_reduce(const ChannelShape& sh, const Op& op, cudaStream_t stream) {
  const bool planes = sh.inner >= 32;
  int64_t S, units;
  if (planes) {
    if (sh.ch > 65535 * 1024LL) return cudaErrorInvalidValue;
    S = 512 / sh.ch;
    if (S > sh.outer) S = sh.outer;
    units = sh.ch;
  } else {
    const int64_t blocks_x = div_up(sh.ch * sh.inner, 32);
    S = 512 / blocks_x;
    if (S > div_up(sh.outer, 8)) S = div_up(sh.outer, 8);
    units = sh.ch * sh.inner;
  }
  if (S < 1) S = 1;
  if (S > 65535) S = 65535;
  Scratch part((size_t)(units * S * Op::kOut) * sizeof(double), stream);
  if (part.status() != cudaSuccess) return part.status();
  if (planes) {
    if (sh.ch > 0x7fffffff) return cudaErrorInvalidValue;
    reduce_planes<Op><<<dim3((unsigned)sh.ch, (unsigned)S), 256, 0, stream>>>(sh, (int)S, op, part.as<double>());
  } else {
    reduce_columns<Op><<<dim3((unsigned)div_up(sh.ch * sh.inner, 32), (unsigned)S), 256, 0, stream>>>(
        sh, (int)S, op, part.as<double>());
  }
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  reduce_finish<Op><<<(unsigned)div_up(sh.ch, 128), 128, 0, stream>>>(sh, (int)S, planes ? 1 : (int)sh.inner, op,
                                                                       part.as<double>());
  return cudaGetLastError();
}

}  // namespace detail
}  // namespace cuda
}  // namespace imagerate
