// conv_operands.cuh: implicit-GEMM views of a 2-D convolution for the main loops of
// gemm_tile.cuh (loaders), and the NCHW epilogue. Nothing is materialised: each loader computes
// the address of element (row, k) of its GEMM operand from the convolution geometry, and
// returns 0 for padding taps and for anything outside the problem.
//
// Layouts: x [N,C,H,W], w [K,C,R,S], y/dy [N,K,P,Q], dx like x, dw like w (all dense).
//   forward     rows m = k (output channel), cols n = (n, p, q), reduction over (c, r, s):
//               A = w as a K x CRS matrix (MatLoader, along-K);
//               B = ImcolLoader, element (npq, crs) = x[n, c, p*sh-ph+r*dh, q*sw-pw+s*dw]
//               (along-row: 4 consecutive npq of one crs per float4).
//   bwd-data    rows m = c, cols n = (n, h, w), reduction over (k, r, s):
//               A = WeightTLoader, element (c, krs) = w[k, c, r, s]            (along-row);
//               B = DyGatherLoader, element (nhw, krs) = dy[n, k, p, q] where
//               h + ph - r*dh = p*sh and w + pw - s*dw = q*sw, else 0        (along-row).
//               A stride > 1 leaves most taps 0 (they are multiplied anyway).
//   bwd-filter  rows m = k, cols n = (c, r, s), reduction over (n, p, q):
//               A = DyRowsLoader, element (k, npq) = dy[n, k, p, q]           (along-K);
//               B = XColsLoader, element (crs, npq) = x[n, c, p*sh-ph+r*dh, ...] (along-K).
// Along-row loaders keep the same 4 rows for the whole k loop, so their per-row geometry (image
// offset, top-left input corner) is computed once in init() (DyGatherLoader keeps the first
// row's only and steps to the other three); along-K loaders keep per-vector rows, computed
// once as well. Every loader has a float4 fast path for the pointwise case
// (1x1 kernel, stride 1, no padding, H*W % 4 == 0, aligned base): then 4 consecutive n (or
// npq) are 4 consecutive floats of one image plane.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gemm_tile.cuh"

namespace imagerate {
namespace cuda {
namespace tile {

// Convolution geometry in 32-bit ints (the host checks that every product used fits).
struct ConvGeo {
  int N, C, H, W, K, R, S, sh, sw, ph, pw, dh, dw, P, Q;
  int HW, PQ, RS, CRS;
  int pointwise;  // 1x1, stride 1, pad 0 (so P = H, Q = W) and HW % 4 == 0 and the float4 path is aligned
};

// ---------------------------------------------------------------- forward B: im2col
template <class S>
struct ImcolLoader {
  using Map = TileMap<S, false>;
  const float* x;
  ConvGeo g;
  int cols;  // N * P * Q
  struct State {
    int tid;
    int n[4];         // image of each of the thread's 4 rows, -1 when out of range
    int h0[4], w0[4];  // top-left input corner of the row's window (pointwise: h0 = p, w0 = q)
  };
  __device__ __forceinline__ State init(int row0, int tid) const {
    State st;
    st.tid = tid;
    int r, k;
    Map::coord(tid, 0, r, k);
    const int first = row0 + r;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int npq = first + j;
      if (npq < cols) {
        const int n = npq / g.PQ, pq = npq - n * g.PQ;
        const int p = pq / g.Q, q = pq - p * g.Q;
        st.n[j] = n;
        st.h0[j] = p * g.sh - g.ph;
        st.w0[j] = q * g.sw - g.pw;
      } else {
        st.n[j] = -1;
        st.h0[j] = st.w0[j] = 0;
      }
    }
    return st;
  }
  __device__ __forceinline__ void load(const State& st, int k0, int k_end, float4 (&v)[Map::kVecs]) const {
#pragma unroll
    for (int i = 0; i < Map::kVecs; ++i) {
      int r, k;
      Map::coord(st.tid, i, r, k);
      k += k0;
      float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
      if (k < k_end) {
        if (g.pointwise) {  // rows come in whole groups of 4 (cols % 4 == 0), one image
          if (st.n[0] >= 0)
            o = __ldg(reinterpret_cast<const float4*>(
                x + ((int64_t)st.n[0] * g.C + k) * g.HW + st.h0[0] * g.W + st.w0[0]));
        } else {
          const int c = k / g.RS, rs = k - c * g.RS;
          const int rr = rs / g.S, ss = rs - rr * g.S;
          const int dh = rr * g.dh, dw = ss * g.dw;
          float e[4];
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int h = st.h0[j] + dh, w = st.w0[j] + dw;
            e[j] = (st.n[j] >= 0 && (unsigned)h < (unsigned)g.H && (unsigned)w < (unsigned)g.W)
                       ? __ldg(x + ((int64_t)st.n[j] * g.C + c) * g.HW + h * g.W + w)
                       : 0.f;
          }
          o = make_float4(e[0], e[1], e[2], e[3]);
        }
      }
      v[i] = o;
    }
  }
};

// ---------------------------------------------------------------- bwd-data A: w viewed as C x KRS
template <class S>
struct WeightTLoader {
  using Map = TileMap<S, false>;
  const float* w;
  ConvGeo g;
  int vec;  // RS == 1, C % 4 == 0, w aligned: 4 consecutive c are contiguous
  struct State {
    int tid, c0;
  };
  __device__ __forceinline__ State init(int row0, int tid) const {
    int r, k;
    Map::coord(tid, 0, r, k);
    return State{tid, row0 + r};
  }
  __device__ __forceinline__ void load(const State& st, int k0, int k_end, float4 (&v)[Map::kVecs]) const {
#pragma unroll
    for (int i = 0; i < Map::kVecs; ++i) {
      int r, k;
      Map::coord(st.tid, i, r, k);
      k += k0;
      float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
      if (k < k_end && st.c0 < g.C) {
        const int kk = k / g.RS, rs = k - kk * g.RS;
        const float* src = w + (int64_t)kk * g.CRS + (int64_t)st.c0 * g.RS + rs;
        if (vec && st.c0 + 3 < g.C) {
          o = __ldg(reinterpret_cast<const float4*>(src));
        } else {
          o.x = __ldg(src);
          if (st.c0 + 1 < g.C) o.y = __ldg(src + g.RS);
          if (st.c0 + 2 < g.C) o.z = __ldg(src + 2 * g.RS);
          if (st.c0 + 3 < g.C) o.w = __ldg(src + 3 * g.RS);
        }
      }
      v[i] = o;
    }
  }
};

// ---------------------------------------------------------------- bwd-data B: dy gathered per (n, h, w)
// The thread's 4 rows are the consecutive positions nhw .. nhw+3: only the first one's (n, h, w)
// is kept, and load() steps it along w (wrapping into h, then n). Keeping all four (12
// registers) made the SIMT 128x128 instantiation spill.
template <class S>
struct DyGatherLoader {
  using Map = TileMap<S, false>;
  const float* dy;
  ConvGeo g;
  int cols;  // N * H * W
  struct State {
    int tid;
    int nhw;      // first of the thread's 4 rows (may be >= cols: those rows read nothing)
    int n, h, w;  // its image, row and column
  };
  __device__ __forceinline__ State init(int row0, int tid) const {
    State st;
    st.tid = tid;
    int r, k;
    Map::coord(tid, 0, r, k);
    st.nhw = row0 + r;
    st.n = st.nhw / g.HW;
    const int hw = st.nhw - st.n * g.HW;
    st.h = hw / g.W;
    st.w = hw - st.h * g.W;
    return st;
  }
  __device__ __forceinline__ void load(const State& st, int k0, int k_end, float4 (&v)[Map::kVecs]) const {
#pragma unroll
    for (int i = 0; i < Map::kVecs; ++i) {
      int r, k;
      Map::coord(st.tid, i, r, k);
      k += k0;
      float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
      if (k < k_end) {
        if (g.pointwise) {  // rows come in whole groups of 4 (cols % 4 == 0), one image
          if (st.nhw < cols)
            o = __ldg(reinterpret_cast<const float4*>(
                dy + ((int64_t)st.n * g.K + k) * g.HW + st.h * g.W + st.w));
        } else {
          const int kk = k / g.RS, rs = k - kk * g.RS;
          const int rr = rs / g.S, ss = rs - rr * g.S;
          const int oh = rr * g.dh - g.ph, ow = ss * g.dw - g.pw;  // h = p*sh + oh, w = q*sw + ow
          float e[4];
          int n = st.n, h = st.h, w = st.w;
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int th = h - oh, tw = w - ow;  // p*sh, q*sw if this tap is used
            float val = 0.f;
            if (st.nhw + j < cols && th >= 0 && tw >= 0) {
              const int p = th / g.sh, q = tw / g.sw;
              if (p * g.sh == th && q * g.sw == tw && p < g.P && q < g.Q)
                val = __ldg(dy + ((int64_t)n * g.K + kk) * g.PQ + p * g.Q + q);
            }
            e[j] = val;
            if (++w == g.W) {
              w = 0;
              if (++h == g.H) {
                h = 0;
                ++n;
              }
            }
          }
          o = make_float4(e[0], e[1], e[2], e[3]);
        }
      }
      v[i] = o;
    }
  }
};

// Splits a flat (n, p, q) index into n and pq, and steps it by one.
struct NpqCursor {
  int n, pq;
  __device__ __forceinline__ NpqCursor(int npq, int PQ) : n(npq / PQ), pq(npq - (npq / PQ) * PQ) {}
  __device__ __forceinline__ void next(int PQ) {
    if (++pq == PQ) {
      pq = 0;
      ++n;
    }
  }
};

// ---------------------------------------------------------------- bwd-filter A: dy as K x NPQ
template <class S>
struct DyRowsLoader {
  using Map = TileMap<S, true>;
  const float* dy;
  ConvGeo g;
  int npq_total;
  int vec;  // PQ % 4 == 0 and dy aligned
  using State = RowState;
  __device__ __forceinline__ State init(int row0, int tid) const { return State{row0, tid}; }
  __device__ __forceinline__ void load(const State& st, int k0, int k_end, float4 (&v)[Map::kVecs]) const {
#pragma unroll
    for (int i = 0; i < Map::kVecs; ++i) {
      int r, k;
      Map::coord(st.tid, i, r, k);
      r += st.row0;
      k += k0;
      float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
      if (r < g.K && k < k_end) {
        NpqCursor cur(k, g.PQ);
        if (vec && k + 3 < k_end) {
          o = __ldg(reinterpret_cast<const float4*>(dy + ((int64_t)cur.n * g.K + r) * g.PQ + cur.pq));
        } else {
          float e[4];
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            e[j] = k + j < k_end ? __ldg(dy + ((int64_t)cur.n * g.K + r) * g.PQ + cur.pq) : 0.f;
            cur.next(g.PQ);
          }
          o = make_float4(e[0], e[1], e[2], e[3]);
        }
      }
      v[i] = o;
    }
  }
};

// ---------------------------------------------------------------- bwd-filter B: im2col^T, CRS x NPQ
template <class S>
struct XColsLoader {
  using Map = TileMap<S, true>;
  const float* x;
  ConvGeo g;
  struct State {
    int tid;
    int cb[Map::kVecs];    // c * HW of vector i's row, -1 when the row is out of range
    int roff[Map::kVecs];  // r * dh - ph
    int soff[Map::kVecs];  // s * dw - pw
  };
  __device__ __forceinline__ State init(int row0, int tid) const {
    State st;
    st.tid = tid;
#pragma unroll
    for (int i = 0; i < Map::kVecs; ++i) {
      int r, k;
      Map::coord(tid, i, r, k);
      const int crs = row0 + r;
      if (crs < g.CRS) {
        const int c = crs / g.RS, rs = crs - c * g.RS;
        const int rr = rs / g.S, ss = rs - rr * g.S;
        st.cb[i] = c * g.HW;
        st.roff[i] = rr * g.dh - g.ph;
        st.soff[i] = ss * g.dw - g.pw;
      } else {
        st.cb[i] = -1;
        st.roff[i] = st.soff[i] = 0;
      }
    }
    return st;
  }
  __device__ __forceinline__ void load(const State& st, int k0, int k_end, float4 (&v)[Map::kVecs]) const {
#pragma unroll
    for (int i = 0; i < Map::kVecs; ++i) {
      int r, k;
      Map::coord(st.tid, i, r, k);
      k += k0;
      float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
      if (st.cb[i] >= 0 && k < k_end) {
        NpqCursor cur(k, g.PQ);
        if (g.pointwise && k + 3 < k_end) {  // x[n, c, pq]: 4 consecutive pq of one plane
          o = __ldg(reinterpret_cast<const float4*>(x + (int64_t)cur.n * g.C * g.HW + st.cb[i] + cur.pq));
        } else {
          float e[4];
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            float val = 0.f;
            if (k + j < k_end) {
              const int p = cur.pq / g.Q, q = cur.pq - p * g.Q;
              const int h = p * g.sh + st.roff[i], w = q * g.sw + st.soff[i];
              if ((unsigned)h < (unsigned)g.H && (unsigned)w < (unsigned)g.W)
                val = __ldg(x + (int64_t)cur.n * g.C * g.HW + st.cb[i] + h * g.W + w);
            }
            e[j] = val;
            cur.next(g.PQ);
          }
          o = make_float4(e[0], e[1], e[2], e[3]);
        }
      }
      v[i] = o;
    }
  }
};

// ---------------------------------------------------------------- NCHW epilogue
// Output (row, col) of a GEMM whose rows are channels and whose cols are (n, plane position):
// out[(n * rows + row) * plane + pos] = act(acc + bias[row]). act is ReLU when `relu`
// (x < 0 ? 0 : x, so NaN stays NaN, like relu_fwd). Overwrites the output.
struct NchwEpilogue {
  float* out;
  const float* bias;  // may be null
  int rows, cols, plane;
  int relu;
  int vec;  // plane % 4 == 0 and out aligned: 4 columns starting at a multiple of 4 are contiguous

  __device__ __forceinline__ float act(int row, float v) const {
    if (bias) v += __ldg(bias + row);
    return relu ? (v < 0.f ? 0.f : v) : v;
  }
  __device__ __forceinline__ float* addr(int row, int col) const {
    const int n = col / plane, pos = col - n * plane;
    return out + ((int64_t)n * rows + row) * plane + pos;
  }
  __device__ __forceinline__ void store4(int, int row, int col, float v0, float v1, float v2, float v3) const {
    if (row >= rows || col >= cols) return;
    if (vec && col + 3 < cols) {
      *reinterpret_cast<float4*>(addr(row, col)) = make_float4(act(row, v0), act(row, v1), act(row, v2), act(row, v3));
      return;
    }
    *addr(row, col) = act(row, v0);
    if (col + 1 < cols) *addr(row, col + 1) = act(row, v1);
    if (col + 2 < cols) *addr(row, col + 2) = act(row, v2);
    if (col + 3 < cols) *addr(row, col + 3) = act(row, v3);
  }
  __device__ __forceinline__ void store2(int, int row, int col, float v0, float v1) const {
    if (row >= rows || col >= cols) return;
    if (vec && col + 1 < cols) {  // col even and plane % 4 == 0: both in one plane, 8-byte aligned
      *reinterpret_cast<float2*>(addr(row, col)) = make_float2(act(row, v0), act(row, v1));
      return;
    }
    *addr(row, col) = act(row, v0);
    if (col + 1 < cols) *addr(row, col + 1) = act(row, v1);
  }
};

}  // namespace tile
}  // namespace cuda
}  // namespace imagerate
