// gemm_operands.cuh: loaders and epilogues for plain row-major matrices, used by the GEMM
// entry point (gemm.cu) and by conv2d's backward-filter pass (its dw output is a plain matrix).
//
// MatLoader<S, kAlongK> reads an operand tile for the main loops of gemm_tile.cuh:
//   kAlongK = true   element (row, k) at p[row * ld + k]   (A as stored, or B transposed)
//   kAlongK = false  element (row, k) at p[k * ld + row]   (A transposed, or B as stored)
// Each float4 is one 16-byte load when `vec` (p 16-byte aligned and ld % 4 == 0) and all four
// elements are in range; otherwise four guarded scalar loads. Out-of-range elements are 0.
//
// MatEpilogue writes C[row, col] = alpha * acc + beta * C (beta == 0: C is not read, so NaN
// garbage cannot leak), with 16-byte stores when `vec` and the four columns are in range.
// Split-K writes partials: output z goes to C + z * split_stride (alpha 1, beta 0).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gemm_tile.cuh"

namespace imagerate {
namespace cuda {
namespace tile {

template <class S, bool kAlongK>
struct MatLoader {
  using Map = TileMap<S, kAlongK>;
  using State = RowState;
  const float* p;
  int64_t ld;
  int rows;
  int vec;

  __device__ __forceinline__ State init(int row0, int tid) const { return State{row0, tid}; }

  __device__ __forceinline__ void load(const State& st, int k0, int k_end,
                                       float4 (&v)[Map::kVecs]) const {
#pragma unroll
    for (int i = 0; i < Map::kVecs; ++i) {
      int r, k;
      Map::coord(st.tid, i, r, k);
      r += st.row0;
      k += k0;
      float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
      if (kAlongK) {
        if (r < rows) {
          const float* src = p + (int64_t)r * ld + k;
          if (vec && k + 3 < k_end) {
            x = __ldg(reinterpret_cast<const float4*>(src));
          } else {
            if (k < k_end) x.x = __ldg(src);
            if (k + 1 < k_end) x.y = __ldg(src + 1);
            if (k + 2 < k_end) x.z = __ldg(src + 2);
            if (k + 3 < k_end) x.w = __ldg(src + 3);
          }
        }
      } else {
        if (k < k_end) {
          const float* src = p + (int64_t)k * ld + r;
          if (vec && r + 3 < rows) {
            x = __ldg(reinterpret_cast<const float4*>(src));
          } else {
            if (r < rows) x.x = __ldg(src);
            if (r + 1 < rows) x.y = __ldg(src + 1);
            if (r + 2 < rows) x.z = __ldg(src + 2);
            if (r + 3 < rows) x.w = __ldg(src + 3);
          }
        }
      }
      v[i] = x;
    }
  }
};

struct MatEpilogue {
  float* C;
  int64_t ldc;
  int64_t split_stride;  // elements between split-K partial outputs (0 without split-K)
  int M, N;
  float alpha, beta;
  int vec;  // C 16-byte aligned and ldc % 4 == 0

  __device__ __forceinline__ float apply(float acc, const float* c) const {
    return beta == 0.f ? alpha * acc : alpha * acc + beta * *c;
  }
  __device__ __forceinline__ void store4(int z, int row, int col, float v0, float v1, float v2,
                                         float v3) const {
    if (row >= M || col >= N) return;
    float* c = C + (int64_t)z * split_stride + (int64_t)row * ldc + col;
    if (vec && col + 3 < N) {
      float4 o;
      if (beta == 0.f) {
        o = make_float4(alpha * v0, alpha * v1, alpha * v2, alpha * v3);
      } else {
        const float4 old = *reinterpret_cast<const float4*>(c);
        o = make_float4(alpha * v0 + beta * old.x, alpha * v1 + beta * old.y,
                        alpha * v2 + beta * old.z, alpha * v3 + beta * old.w);
      }
      *reinterpret_cast<float4*>(c) = o;
      return;
    }
    c[0] = apply(v0, c);
    if (col + 1 < N) c[1] = apply(v1, c + 1);
    if (col + 2 < N) c[2] = apply(v2, c + 2);
    if (col + 3 < N) c[3] = apply(v3, c + 3);
  }
  __device__ __forceinline__ void store2(int z, int row, int col, float v0, float v1) const {
    if (row >= M || col >= N) return;
    float* c = C + (int64_t)z * split_stride + (int64_t)row * ldc + col;
    if (vec && col + 1 < N) {  // col is even, so 8-byte aligned when vec
      float2 o;
      if (beta == 0.f) {
        o = make_float2(alpha * v0, alpha * v1);
      } else {
        const float2 old = *reinterpret_cast<const float2*>(c);
        o = make_float2(alpha * v0 + beta * old.x, alpha * v1 + beta * old.y);
      }
      *reinterpret_cast<float2*>(c) = o;
      return;
    }
    c[0] = apply(v0, c);
    if (col + 1 < N) c[1] = apply(v1, c + 1);
  }
};

}  // namespace tile
}  // namespace cuda
}  // namespace imagerate
