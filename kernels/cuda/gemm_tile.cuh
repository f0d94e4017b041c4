// gemm_tile.cuh: the tiled GEMM main loops shared by gemm.cu and conv2d.cu.
//
// Both compute, for one thread block, a BM x BN tile of  acc[m][n] = sum_k A(m, k) * B(n, k)
// over a k range, where A and B are *loaders* (the operand's memory layout: a plain row-major
// matrix, a transposed one, or an implicit-GEMM view of a convolution) and the result goes to
// an *epilogue* (alpha/beta store, NCHW scatter with bias + ReLU, split-K partials...). One main
// loop serves GEMM and all three convolution passes; only loaders and epilogues differ.
//
// Operand tiles: R rows (m for A, n for B) x BK values of k, read from global memory into
// registers as float4 "vectors" and then stored into shared memory in one layout, k-major:
// smem[kw][row] with a row pitch of R + 8 words. Two thread->element maps exist (TileMap):
//   along-K    each vector is 4 consecutive k of one row (A row-major, B transposed, ...)
//   along-row  each vector is 4 consecutive rows at one k (A transposed, B row-major, ...)
// A loader picks the map that makes its global reads contiguous (coalesced, and 16-byte
// vector loads when the addresses allow); both maps store into the same smem layout.
// For 16-bit math modes one smem word packs the k-pair (2j, 2j+1) of a row (low half = even k),
// so kw = k/2; "paired" along-row maps load the two k rows of a pair together.
//
// Main loops (both double-buffered: the next k tile is loaded into registers while the current
// one is multiplied from shared memory; one __syncthreads per k tile):
//   simt_kernel  fp32 FMA. Cfg BM x BN x BK with TM x TN outputs per thread; the thread's rows
//                are TM/4 groups of 4, BM/(TM/4) apart (same for columns), so every smem read
//                is a float4; a warp covers 4 x 8 threads (4 distinct A vectors, 8 distinct B
//                vectors per k: broadcast, no bank conflicts). 128x128x8 / 8x8 / 256 threads
//                is the main config, 64x64x8 / 8x8 / 64 threads the one for small problems.
//   mma_kernel   tensor cores (mma.sync, sm_80+), 128x128 tile, 8 warps as 2 (m) x 4 (n), each
//                warp 64 x 32 = 4 x 4 mma tiles of 16 x 8. TF32: m16n8k8, BK = 16; BF16/FP16:
//                m16n8k16, BK = 32; both are 16 smem words of k per stage, so fragment loads
//                are the same code: a word (kw, row) with kw = t or t+4, row = g or g+8
//                (g = lane/4, t = lane%4), conflict-free because the pitch is 8 mod 32 words.
//                Operands are rounded to tf32 (cvt.rna) / bf16 / fp16 (round to nearest even)
//                when they are staged; accumulation is fp32. MIN_BLOCKS is __launch_bounds__'s
//                blocks per SM: 1 (what gemm_f32 and the convolutions run; ptxas, sm_90a: 161-212
//                registers by loader pair, no spills) or 2 (tuning variants capped at 128 registers, for a GPU
//                session to time: gemm_variant() in gemm.cu).
//   wgmma_kernel the same tile, loaders and epilogues on Hopper's warpgroup MMA (sm_90a).
//   wgmma_tma_kernel  TF32 GEMM with both operands k-contiguous plain matrices: the TMA copy
//                engine fills 4 stages of shared memory, no loaders (its own comment below).
// Edges: loaders return 0 outside [0, rows) x [k_begin, k_end), so partial tiles multiply
// zeros; epilogues drop out-of-range outputs. No access leaves the operands' bounds.
// Split-K: blockIdx.z selects the k range [z*k_chunk, min(K, (z+1)*k_chunk)); k_chunk is a
// multiple of BK (or >= K), and the epilogue offsets its output by z.
// Grid: x = column tiles, y = row tiles, z = splits. gridDim.y is limited to 65535, so the
// launch helpers cut the row tiles into launches of at most that many; each launch passes its
// first row tile (m_tile0) and a block's rows start at (m_tile0 + blockIdx.y) * BM. The host
// keeps K + 64 within int32 (k indices run up to K + BK - 1).
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "kernels.cuh"
#include "tma.cuh"
#include "wgmma.cuh"

namespace imagerate {
namespace cuda {
namespace tile {

// ------------------------------------------------------------ thread -> element maps
template <int R_, int BK_, int T_, bool kPair_>
struct Shape {
  static constexpr int R = R_, BK = BK_, T = T_;
  static constexpr bool kPair = kPair_;  // one smem word = a k pair (16-bit modes)
};

template <class S, bool kAlongK_>
struct TileMap {
  static constexpr int R = S::R, BK = S::BK, T = S::T;
  static constexpr bool kAlongK = kAlongK_, kPair = S::kPair;
  static constexpr int kVecs = R * BK / (4 * T);  // float4 registers per thread
  static_assert(R * BK % (4 * T) == 0, "tile must split into whole float4s per thread");
  static_assert(kAlongK || T % (R / 4) == 0, "along-row: a thread's rows must not change with i");
  static_assert(!(kPair && !kAlongK) || kVecs % 2 == 0, "paired along-row needs vector pairs");

  // First element (row, k) of vector i of thread tid (tile-relative).
  //   along-K:            elements (row, k .. k+3)
  //   along-row:          elements (row .. row+3, k); paired: vectors 2j, 2j+1 are k, k+1
  __device__ __forceinline__ static void coord(int tid, int i, int& row, int& k) {
    if (kAlongK) {
      const int c = tid + i * T;
      row = c / (BK / 4);
      k = (c % (BK / 4)) * 4;
    } else if (!kPair) {
      const int c = tid + i * T;
      row = (c % (R / 4)) * 4;
      k = c / (R / 4);
    } else {
      const int c = tid + (i >> 1) * T;
      row = (c % (R / 4)) * 4;
      k = 2 * (c / (R / 4)) + (i & 1);
    }
  }
};

// Loader state for loaders that need nothing per thread beyond the tile origin.
struct RowState {
  int row0, tid;
};

// ------------------------------------------------------------ conversions while staging
__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}
// Two floats -> one word of two 16-bit values, lo in bits 0..15 (round to nearest even).
template <MathMode MODE>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t r;
  if (MODE == MathMode::BF16) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  }
  return r;
}

// Word type in shared memory: raw fp32 for the SIMT loop, 32-bit patterns for tensor cores.
template <MathMode MODE>
struct SmemWord {
  using type = uint32_t;
};
template <>
struct SmemWord<MathMode::FP32> {
  using type = float;
};

template <MathMode MODE>
__device__ __forceinline__ typename SmemWord<MODE>::type word1(float x) {
  if constexpr (MODE == MathMode::FP32) return x;
  else return to_tf32(x);
}

// Stores one thread's loaded vectors into the k-major tile s[kw * LD + row].
template <class Map, MathMode MODE, int LD>
__device__ __forceinline__ void stage(typename SmemWord<MODE>::type* s, int tid,
                                      const float4 (&v)[Map::kVecs]) {
  constexpr bool kPair = Map::kPair;
  static_assert(kPair == (MODE == MathMode::BF16 || MODE == MathMode::FP16), "pairing follows the mode");
#pragma unroll
  for (int i = 0; i < Map::kVecs; ++i) {
    int row, k;
    Map::coord(tid, i, row, k);
    if constexpr (Map::kAlongK) {
      if constexpr (!kPair) {
        s[(k + 0) * LD + row] = word1<MODE>(v[i].x);
        s[(k + 1) * LD + row] = word1<MODE>(v[i].y);
        s[(k + 2) * LD + row] = word1<MODE>(v[i].z);
        s[(k + 3) * LD + row] = word1<MODE>(v[i].w);
      } else {
        s[(k / 2) * LD + row] = pack2<MODE>(v[i].x, v[i].y);
        s[(k / 2 + 1) * LD + row] = pack2<MODE>(v[i].z, v[i].w);
      }
    } else {
      if constexpr (MODE == MathMode::FP32) {
        *reinterpret_cast<float4*>(&s[k * LD + row]) = v[i];
      } else if constexpr (!kPair) {
        *reinterpret_cast<uint4*>(&s[k * LD + row]) =
            make_uint4(to_tf32(v[i].x), to_tf32(v[i].y), to_tf32(v[i].z), to_tf32(v[i].w));
      } else if ((i & 1) == 0) {  // vectors i (k even) and i + 1 (k + 1): one word per row
        const float4 a = v[i], b = v[i + 1];
        *reinterpret_cast<uint4*>(&s[(k / 2) * LD + row]) =
            make_uint4(pack2<MODE>(a.x, b.x), pack2<MODE>(a.y, b.y), pack2<MODE>(a.z, b.z),
                       pack2<MODE>(a.w, b.w));
      }
    }
  }
}

// A block's output tile origin (rows m0.., columns n0..) and its k range [k_begin, k_end) of
// ktiles k tiles: split-K's chunk z = blockIdx.z (see the header).
struct BlockRange {
  int m0, n0, k_begin, k_end, ktiles;
};
template <int BM, int BN, int BK>
__device__ __forceinline__ BlockRange block_range(int K, int k_chunk, int m_tile0) {
  const int k_begin = blockIdx.z * k_chunk;
  const int k_end = (int)min((int64_t)K, (int64_t)k_begin + k_chunk);  // the sum may pass INT32_MAX
  return BlockRange{(m_tile0 + (int)blockIdx.y) * BM, (int)blockIdx.x * BN, k_begin, k_end,
                    k_end > k_begin ? (k_end - k_begin + BK - 1) / BK : 0};
}

// ------------------------------------------------------------ SIMT fp32 main loop
template <int BM_, int BN_, int BK_, int TM_, int TN_, int MIN_BLOCKS_>
struct SimtCfg {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int kMinBlocks = MIN_BLOCKS_;  // __launch_bounds__ min blocks per SM
  static constexpr int RT = BM / TM, CT = BN / TN;  // thread grid (rows x cols)
  static constexpr int T = RT * CT;
  static constexpr int LDA = BM + 8, LDB = BN + 8;  // smem pitch in words (keeps float4 alignment)
  static_assert(TM % 4 == 0 && TN % 4 == 0 && CT % 8 == 0 && RT % 4 == 0, "4 x 8 threads per warp");
  using ShapeA = Shape<BM, BK, T, false>;
  using ShapeB = Shape<BN, BK, T, false>;
};
using SimtBig = SimtCfg<128, 128, 8, 8, 8, 2>;   // 256 threads, 2 blocks (16 warps) per SM
using SimtSmall = SimtCfg<64, 64, 8, 8, 8, 1>;   // 64 threads (~6 blocks per SM by registers)

template <class Cfg, class LA, class LB, class Epi>
__global__ void __launch_bounds__(Cfg::T, Cfg::kMinBlocks) simt_kernel(LA la, LB lb, Epi epi, int K, int k_chunk,
                                                                      int m_tile0) {
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, TM = Cfg::TM, TN = Cfg::TN;
  constexpr int LDA = Cfg::LDA, LDB = Cfg::LDB, RT = Cfg::RT, CT = Cfg::CT;
  using MapA = typename LA::Map;
  using MapB = typename LB::Map;
  __shared__ __align__(16) float As[2][BK * LDA];
  __shared__ __align__(16) float Bs[2][BK * LDB];

  const int tid = threadIdx.x;
  const auto [m0, n0, k_begin, k_end, ktiles] = block_range<BM, BN, BK>(K, k_chunk, m_tile0);
  const int warp = tid >> 5, lane = tid & 31;
  const int ty = (warp / (CT / 8)) * 4 + (lane >> 3);
  const int tx = (warp % (CT / 8)) * 8 + (lane & 7);

  const auto sa = la.init(m0, tid);
  const auto sb = lb.init(n0, tid);
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;

  float4 ra[MapA::kVecs], rb[MapB::kVecs];
  if (ktiles > 0) {
    la.load(sa, k_begin, k_end, ra);
    lb.load(sb, k_begin, k_end, rb);
    stage<MapA, MathMode::FP32, LDA>(As[0], tid, ra);
    stage<MapB, MathMode::FP32, LDB>(Bs[0], tid, rb);
  }
  __syncthreads();
  for (int kt = 0; kt < ktiles; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < ktiles;
    if (more) {  // issue the next tile's global loads; they land while we compute
      la.load(sa, k_begin + (kt + 1) * BK, k_end, ra);
      lb.load(sb, k_begin + (kt + 1) * BK, k_end, rb);
    }
    const float* a_s = As[cur];
    const float* b_s = Bs[cur];
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float a[TM], b[TN];
#pragma unroll
      for (int g = 0; g < TM / 4; ++g) {
        const float4 t = *reinterpret_cast<const float4*>(&a_s[kk * LDA + g * RT * 4 + ty * 4]);
        a[g * 4 + 0] = t.x; a[g * 4 + 1] = t.y; a[g * 4 + 2] = t.z; a[g * 4 + 3] = t.w;
      }
#pragma unroll
      for (int g = 0; g < TN / 4; ++g) {
        const float4 t = *reinterpret_cast<const float4*>(&b_s[kk * LDB + g * CT * 4 + tx * 4]);
        b[g * 4 + 0] = t.x; b[g * 4 + 1] = t.y; b[g * 4 + 2] = t.z; b[g * 4 + 3] = t.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    if (more) {  // the other buffer was last read in iteration kt - 1, before its barrier
      stage<MapA, MathMode::FP32, LDA>(As[cur ^ 1], tid, ra);
      stage<MapB, MathMode::FP32, LDB>(Bs[cur ^ 1], tid, rb);
    }
    __syncthreads();
  }

  const int z = blockIdx.z;
#pragma unroll
  for (int gi = 0; gi < TM / 4; ++gi)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int row = m0 + gi * RT * 4 + ty * 4 + i;
#pragma unroll
      for (int gj = 0; gj < TN / 4; ++gj) {
        const int col = n0 + gj * CT * 4 + tx * 4;
        const float* r = &acc[gi * 4 + i][gj * 4];
        epi.store4(z, row, col, r[0], r[1], r[2], r[3]);
      }
    }
}

// ------------------------------------------------------------ tensor-core main loop
template <MathMode MODE>
struct MmaCfg {
  static constexpr int BM = 128, BN = 128, T = 256;
  static constexpr bool kPair = MODE != MathMode::TF32;
  static constexpr int BK = kPair ? 32 : 16;  // 16 smem words of k either way
  static constexpr int KW = 16;
  static constexpr int LD = 128 + 8;          // words; 8 mod 32 -> conflict-free fragments
  using ShapeA = Shape<BM, BK, T, kPair>;
  using ShapeB = Shape<BN, BK, T, kPair>;
};

template <MathMode MODE>
__device__ __forceinline__ void mma_tile(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (MODE == MathMode::TF32) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else if constexpr (MODE == MathMode::BF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#else
  (void)d; (void)a; (void)b;  // never launched below sm_80 (the host falls back to FP32)
#endif
}

template <MathMode MODE, int MIN_BLOCKS, class LA, class LB, class Epi>
__global__ void __launch_bounds__(256, MIN_BLOCKS) mma_kernel(LA la, LB lb, Epi epi, int K, int k_chunk, int m_tile0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using Cfg = MmaCfg<MODE>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, LD = Cfg::LD, KW = Cfg::KW;
  using MapA = typename LA::Map;
  using MapB = typename LB::Map;
  __shared__ __align__(16) uint32_t As[2][KW * LD];
  __shared__ __align__(16) uint32_t Bs[2][KW * LD];

  const int tid = threadIdx.x;
  const auto [m0, n0, k_begin, k_end, ktiles] = block_range<BM, BN, BK>(K, k_chunk, m_tile0);
  const int warp = tid >> 5, lane = tid & 31;
  const int wm = warp >> 2, wn = warp & 3;  // 2 x 4 warps, 64 x 32 each
  const int g = lane >> 2, t = lane & 3;

  const auto sa = la.init(m0, tid);
  const auto sb = lb.init(n0, tid);
  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;

  float4 ra[MapA::kVecs], rb[MapB::kVecs];
  if (ktiles > 0) {
    la.load(sa, k_begin, k_end, ra);
    lb.load(sb, k_begin, k_end, rb);
    stage<MapA, MODE, LD>(As[0], tid, ra);
    stage<MapB, MODE, LD>(Bs[0], tid, rb);
  }
  __syncthreads();
  for (int kt = 0; kt < ktiles; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < ktiles;
    if (more) {
      la.load(sa, k_begin + (kt + 1) * BK, k_end, ra);
      lb.load(sb, k_begin + (kt + 1) * BK, k_end, rb);
    }
    const uint32_t* a_s = As[cur];
    const uint32_t* b_s = Bs[cur];
#pragma unroll
    for (int ks = 0; ks < KW; ks += 8) {
      uint32_t af[4][4], bf[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        const int r0 = wm * 64 + mi * 16 + g;
        af[mi][0] = a_s[(ks + t) * LD + r0];
        af[mi][1] = a_s[(ks + t) * LD + r0 + 8];
        af[mi][2] = a_s[(ks + t + 4) * LD + r0];
        af[mi][3] = a_s[(ks + t + 4) * LD + r0 + 8];
      }
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const int c0 = wn * 32 + ni * 8 + g;
        bf[ni][0] = b_s[(ks + t) * LD + c0];
        bf[ni][1] = b_s[(ks + t + 4) * LD + c0];
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma_tile<MODE>(acc[mi][ni], af[mi], bf[ni]);
    }
    if (more) {
      stage<MapA, MODE, LD>(As[cur ^ 1], tid, ra);
      stage<MapB, MODE, LD>(Bs[cur ^ 1], tid, rb);
    }
    __syncthreads();
  }

  const int z = blockIdx.z;
#pragma unroll
  for (int mi = 0; mi < 4; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni) {
      const int row = m0 + wm * 64 + mi * 16 + g;
      const int col = n0 + wn * 32 + ni * 8 + 2 * t;
      epi.store2(z, row, col, acc[mi][ni][0], acc[mi][ni][1]);
      epi.store2(z, row + 8, col, acc[mi][ni][2], acc[mi][ni][3]);
    }
#else
  (void)la; (void)lb; (void)epi; (void)K; (void)k_chunk; (void)m_tile0;
#endif
}

// ------------------------------------------------------------ Hopper warpgroup-MMA main loop
// wgmma_kernel: the same 128x128 tile, loaders, k tiles (MmaCfg's shapes: BK = 16 tf32 or 32
// bf16/fp16 values, 64 bytes of each row) and epilogues as mma_kernel, multiplied by wgmma
// (wgmma.cuh, sm_90a only). 256 threads = 2 warpgroups, each owning 64 rows x all 128 columns:
// per k tile, two m64n128 instructions (k8 tf32 / k16 bf16, fp16: 32 bytes of k each), issued
// asynchronously while the threads stage the next k tile, then waited for before the barrier.
// Shared memory holds each operand tile K-major in the no-swizzle canonical layout: core
// matrices of 8 rows x 16 bytes, the 4 of a row group side by side along k (LBO = 128 bytes),
// row groups one after another (SBO = 512 bytes); in 32-bit words,
//   word(row, kw) = (row / 8) * 128 + (kw / 4) * 32 + (row % 8) * 4 + kw % 4
// with kw the word column (tf32: k; bf16/fp16: the k pair k / 2). 2 stages x 2 operands x 8 KiB.
// Not tuned: the operands go through registers, the layout has no swizzle (the staging stores
// have 4-way bank conflicts), and one k tile is in flight. wgmma_tma_kernel below takes the
// operands of a TF32 GEMM with both operands k-contiguous through the TMA copy engine instead.
template <MathMode MODE>
struct WgmmaCfg {
  static constexpr int BM = 128, BN = 128, T = 256;
  static constexpr int BK = MmaCfg<MODE>::BK, KW = MmaCfg<MODE>::KW;  // KW = 16 words of k per row
  static constexpr int kWords = 128 * KW;                              // one operand tile
  static constexpr uint32_t kLbo = 128, kSbo = 512;                    // bytes
  using ShapeA = typename MmaCfg<MODE>::ShapeA;
  using ShapeB = typename MmaCfg<MODE>::ShapeB;
};

__device__ __forceinline__ int kmajor_word(int row, int kw) {
  return (row >> 3) * 128 + (kw >> 2) * 32 + (row & 7) * 4 + (kw & 3);
}

// Stores one thread's loaded vectors into a K-major tile (kmajor_word), rounded for MODE.
template <class Map, MathMode MODE>
__device__ __forceinline__ void stage_kmajor(uint32_t* s, int tid, const float4 (&v)[Map::kVecs]) {
  static_assert(Map::kPair == (MODE == MathMode::BF16 || MODE == MathMode::FP16), "pairing follows the mode");
#pragma unroll
  for (int i = 0; i < Map::kVecs; ++i) {
    int row, k;
    Map::coord(tid, i, row, k);
    if constexpr (Map::kAlongK) {  // 4 consecutive k of one row (k % 4 == 0)
      if constexpr (!Map::kPair) {
        *reinterpret_cast<uint4*>(&s[kmajor_word(row, k)]) =
            make_uint4(to_tf32(v[i].x), to_tf32(v[i].y), to_tf32(v[i].z), to_tf32(v[i].w));
      } else {  // words k/2 and k/2 + 1: adjacent (k/2 is even)
        s[kmajor_word(row, k / 2)] = pack2<MODE>(v[i].x, v[i].y);
        s[kmajor_word(row, k / 2) + 1] = pack2<MODE>(v[i].z, v[i].w);
      }
    } else if constexpr (!Map::kPair) {  // rows row .. row + 3 at one k
      s[kmajor_word(row + 0, k)] = to_tf32(v[i].x);
      s[kmajor_word(row + 1, k)] = to_tf32(v[i].y);
      s[kmajor_word(row + 2, k)] = to_tf32(v[i].z);
      s[kmajor_word(row + 3, k)] = to_tf32(v[i].w);
    } else if ((i & 1) == 0) {  // vectors i (k even) and i + 1 (k + 1): the pair's word per row
      const float4 a = v[i], b = v[i + 1];
      s[kmajor_word(row + 0, k / 2)] = pack2<MODE>(a.x, b.x);
      s[kmajor_word(row + 1, k / 2)] = pack2<MODE>(a.y, b.y);
      s[kmajor_word(row + 2, k / 2)] = pack2<MODE>(a.z, b.z);
      s[kmajor_word(row + 3, k / 2)] = pack2<MODE>(a.w, b.w);
    }
  }
}

// Hands a 128 x 128 tile's wgmma accumulators (thread tid's fragment of its warpgroup's 64
// rows, wgmma.cuh's layout) to the epilogue, for output z = blockIdx.z.
template <class Epi>
__device__ __forceinline__ void store_wgmma_acc(const Epi& epi, const float (&acc)[64], int m0, int n0, int tid) {
  const int wgi = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int g = lane >> 2, t = lane & 3;
  const int z = blockIdx.z;
  const int row = m0 + wgi * 64 + warp * 16 + g;
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    const int col = n0 + j * 8 + 2 * t;
    epi.store2(z, row, col, acc[4 * j + 0], acc[4 * j + 1]);
    epi.store2(z, row + 8, col, acc[4 * j + 2], acc[4 * j + 3]);
  }
}

template <MathMode MODE, class LA, class LB, class Epi>
__global__ void __launch_bounds__(256, 1) wgmma_kernel(LA la, LB lb, Epi epi, int K, int k_chunk, int m_tile0) {
#if IMAGERATE_WGMMA
  using Cfg = WgmmaCfg<MODE>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, W = Cfg::kWords;
  using MapA = typename LA::Map;
  using MapB = typename LB::Map;
  __shared__ __align__(128) uint32_t As[2][W];
  __shared__ __align__(128) uint32_t Bs[2][W];

  const int tid = threadIdx.x;
  const auto [m0, n0, k_begin, k_end, ktiles] = block_range<BM, BN, BK>(K, k_chunk, m_tile0);
  const int wgi = tid >> 7;  // warpgroup: rows 64 wgi .. 64 wgi + 63

  const auto sa = la.init(m0, tid);
  const auto sb = lb.init(n0, tid);
  float acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.f;

  float4 ra[MapA::kVecs], rb[MapB::kVecs];
  if (ktiles > 0) {
    la.load(sa, k_begin, k_end, ra);
    lb.load(sb, k_begin, k_end, rb);
    stage_kmajor<MapA, MODE>(As[0], tid, ra);
    stage_kmajor<MapB, MODE>(Bs[0], tid, rb);
    wg::fence_proxy_async();
  }
  __syncthreads();
  for (int kt = 0; kt < ktiles; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < ktiles;
    if (more) {
      la.load(sa, k_begin + (kt + 1) * BK, k_end, ra);
      lb.load(sb, k_begin + (kt + 1) * BK, k_end, rb);
    }
    // This warpgroup's 64 rows of A start at row group 8 wgi; each instruction takes 32 bytes
    // of k, i.e. the next two core matrices along k (2 * LBO bytes further).
    const uint32_t a_addr = wg::smem_addr(&As[cur][wgi * 8 * 128]);
    const uint32_t b_addr = wg::smem_addr(&Bs[cur][0]);
    wg::fence_operand(acc);
    wg::fence();
#pragma unroll
    for (int ks = 0; ks < 2; ++ks)
      wg::mma_m64n128<MODE>(acc, wg::desc(a_addr + ks * 2 * Cfg::kLbo, Cfg::kLbo, Cfg::kSbo),
                            wg::desc(b_addr + ks * 2 * Cfg::kLbo, Cfg::kLbo, Cfg::kSbo), 1);
    wg::commit();
    if (more) {  // the other stage was last read by the previous tile's wgmma, waited for below
      stage_kmajor<MapA, MODE>(As[cur ^ 1], tid, ra);
      stage_kmajor<MapB, MODE>(Bs[cur ^ 1], tid, rb);
      wg::fence_proxy_async();
    }
    wg::wait_all();
    wg::fence_operand(acc);
    __syncthreads();
  }

  store_wgmma_acc(epi, acc, m0, n0, tid);
#else
  (void)la; (void)lb; (void)epi; (void)K; (void)k_chunk; (void)m_tile0;
#endif
}

// ------------------------------------------------------------ Hopper TMA + wgmma main loop
// wgmma_tma_kernel: TF32 only, both operands plain row-major matrices with k contiguous (A as
// stored, B transposed: C = A * B^T, the Linear layer's forward), 16-byte aligned with leading
// dimensions a multiple of 4 floats (a tensor map's requirements). The copy engine (TMA,
// tma.cuh) moves the operand tiles from global to shared memory without the threads, kStages
// k tiles deep, so no register holds a prefetched tile. Out-of-range rows, and k past K within a
// 16-byte chunk, are zeros written by the copy itself; a chunk wholly past K is not copied (a
// box wholly outside the tensor is a case public TMA code never relies on) and the rounding
// pass writes its zeros instead, the stage's barrier then expecting only the bytes copied.
// Tile 128 x 128 x 32 (k), 256 threads = 2 warpgroups, each m64n128k8 x 4 per k tile.
// Shared memory (dynamic, 128 KiB + barriers): stage s holds A then B, each 8 k chunks of
// 4 floats (16 bytes) x 128 rows; a chunk is one TMA box {4, 128}, stored row after row, which
// is the no-swizzle K-major core-matrix layout of wgmma.cuh with
//   SBO = 16 * 8 = 128 bytes (the next 8 rows), LBO = 128 * 16 = 2048 bytes (the next k chunk).
// One mbarrier per stage counts the stage's 32 KiB of copies.
// Rounding: the copies bring fp32 words. The other tensor-core loops round each operand to tf32
// to nearest (cvt.rna) when they stage it, and what the tensor core does with the 13 low bits of
// an unrounded word is not specified by the PTX ISA, so here every thread rounds its 1/256 of
// the stage in place (8 16-byte words of each operand tile, read and written back) before the
// tile is multiplied: the same numerics as mma_kernel and wgmma_kernel, bit for bit in
// each product's operands, for one more pass over shared memory per k tile.
// Per k tile kt (stage kt % kStages; its barrier's phase parity (kt / kStages) & 1):
//   wait for the stage's copies; round the thread's share (zeros for chunks past K); fence.proxy.async; __syncthreads
//   (every share rounded, and every warpgroup past the previous iteration's wait_group 1, so
//   the tile kt - 2's stage is free); thread 0 issues the copies of tile kt + kStages - 2 into
//   it; wgmma.fence, 4 mma_asyncs, commit; wait_group 1 (tile kt - 1's group done: it overlaps
//   with this tile's rounding and barrier).
// The copies of kStages - 2 tiles are in flight while a tile is rounded and multiplied.
struct TmaCfg {
  static constexpr int BM = 128, BN = 128, BK = 32, T = 256, kStages = 4;
  static constexpr int kChunks = BK / 4;                                 // 16-byte k chunks
  static constexpr uint32_t kChunkBytes = 128 * 16;                      // one TMA box
  static constexpr uint32_t kOpBytes = kChunks * kChunkBytes;            // 16 KiB per operand
  static constexpr uint32_t kStageBytes = 2 * kOpBytes;
  static constexpr uint32_t kLbo = kChunkBytes, kSbo = 128;              // bytes
  static constexpr int kSmemBytes = kStages * kStageBytes + kStages * 8;  // + the mbarriers
  static_assert(kOpBytes * 2 / 16 % T == 0, "whole 16-byte words per thread in the rounding pass");
};

template <class Epi>
__global__ void __launch_bounds__(256, 1) wgmma_tma_kernel(const __grid_constant__ tma::Map map_a,
                                                          const __grid_constant__ tma::Map map_b, Epi epi, int K,
                                                          int k_chunk, int m_tile0) {
#if IMAGERATE_WGMMA
  using Cfg = TmaCfg;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, S = Cfg::kStages;
  extern __shared__ __align__(128) unsigned char tma_smem[];

  const int tid = threadIdx.x;
  // (not a structured binding: issue() captures these, which C++17 allows only for variables)
  const BlockRange br = block_range<BM, BN, BK>(K, k_chunk, m_tile0);
  const int m0 = br.m0, n0 = br.n0, k_begin = br.k_begin, ktiles = br.ktiles;
  // br.k_end is not needed: a k tile never crosses a chunk's end (k_chunk % BK == 0), and past K
  // the copy writes zeros.
  const int wgi = tid >> 7;  // warpgroup: rows 64 wgi .. 64 wgi + 63
  const uint32_t base = wg::smem_addr(tma_smem);
  const uint32_t bars = base + S * Cfg::kStageBytes;

  tma::init_barriers(bars, S, tid);
  // The k chunks of tile kt that start before K (1..kChunks: a tile starts before K).
  auto chunks_in = [&](int kt) { return min(Cfg::kChunks, (K - (k_begin + kt * BK) + 3) / 4); };
  // Thread 0: the copies of k tile kt into its stage, counted on the stage's barrier.
  auto issue = [&](int kt) {
    const int s = kt % S;
    const uint32_t a = base + s * Cfg::kStageBytes, b = a + Cfg::kOpBytes, bar = bars + 8 * s;
    const int k0 = k_begin + kt * BK, n = chunks_in(kt);
    tma::mbar_expect_tx(bar, 2u * (uint32_t)n * Cfg::kChunkBytes);
#pragma unroll
    for (int j = 0; j < Cfg::kChunks; ++j) {
      if (j >= n) break;
      tma::load_2d(a + j * Cfg::kChunkBytes, &map_a, k0 + 4 * j, m0, bar);
      tma::load_2d(b + j * Cfg::kChunkBytes, &map_b, k0 + 4 * j, n0, bar);
    }
  };
  if (tid == 0)
    for (int kt = 0; kt < S - 2 && kt < ktiles; ++kt) issue(kt);

  float acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.f;

  for (int kt = 0; kt < ktiles; ++kt) {
    const int s = kt % S;
    tma::mbar_wait(bars + 8 * s, (uint32_t)(kt / S) & 1u);
    unsigned char* stage_bytes = tma_smem + s * Cfg::kStageBytes;
    const int n_in = chunks_in(kt);
#pragma unroll
    for (int i = 0; i < (int)(Cfg::kStageBytes / 16) / Cfg::T; ++i) {
      const int w = tid + i * Cfg::T;  // consecutive threads, consecutive 16-byte words
      const int chunk = (w / (Cfg::kChunkBytes / 16)) % Cfg::kChunks;  // of A (first half) or B
      uint4 r = make_uint4(0u, 0u, 0u, 0u);                             // a chunk not copied
      if (chunk < n_in) {
        const float4 x = reinterpret_cast<const float4*>(stage_bytes)[w];
        r = make_uint4(to_tf32(x.x), to_tf32(x.y), to_tf32(x.z), to_tf32(x.w));
      }
      reinterpret_cast<uint4*>(stage_bytes)[w] = r;
    }
    wg::fence_proxy_async();
    __syncthreads();
    if (tid == 0 && kt + S - 2 < ktiles) issue(kt + S - 2);
    __syncwarp();  // warp 0 whole again before the .sync.aligned wgmma instructions

    // This warpgroup's 64 rows of A: row groups 8 wgi .. 8 wgi + 7 (SBO apart); instruction ks
    // takes k chunks 2 ks and 2 ks + 1 (32 bytes of k), 2 LBO further along.
    const uint32_t a_addr = base + s * Cfg::kStageBytes + wgi * 8 * Cfg::kSbo;
    const uint32_t b_addr = base + s * Cfg::kStageBytes + Cfg::kOpBytes;
    wg::fence_operand(acc);
    wg::fence();
#pragma unroll
    for (int ks = 0; ks < BK / 8; ++ks)
      wg::mma_m64n128<MathMode::TF32>(acc, wg::desc(a_addr + ks * 2 * Cfg::kLbo, Cfg::kLbo, Cfg::kSbo),
                                      wg::desc(b_addr + ks * 2 * Cfg::kLbo, Cfg::kLbo, Cfg::kSbo), 1);
    wg::commit();
    wg::wait_1();
    wg::fence_operand(acc);
  }
  wg::wait_all();
  wg::fence_operand(acc);

  store_wgmma_acc(epi, acc, m0, n0, tid);
#else
  (void)map_a; (void)map_b; (void)epi; (void)K; (void)k_chunk; (void)m_tile0;
#endif
}

// ------------------------------------------------------------ launch helper
// Launches the main loop for an M x N output, k range [0, K) cut into `splits` chunks.
// Loaders/epilogue must have been built for the matching config (Shape / T).
// Row tiles beyond gridDim.y's limit (65535, i.e. M > 8.4M for 128-row tiles) go to further
// launches on the same stream (see m_tile0 above).
constexpr int kMaxGridY = 65535;

// Calls launch(grid, y0) for the row tiles of an M x N output (BM x BN tiles, `splits` in z)
// in chunks of at most kMaxGridY, y0 the chunk's first row tile; stops at a launch error.
template <class Launch>
cudaError_t launch_row_chunks(int M, int BM, int N, int BN, int splits, const Launch& launch) {
  const int tiles_m = (int)(((int64_t)M + BM - 1) / BM);
  for (int y0 = 0; y0 < tiles_m; y0 += kMaxGridY) {
    const int rows = tiles_m - y0 < kMaxGridY ? tiles_m - y0 : kMaxGridY;
    launch(dim3((unsigned)(((int64_t)N + BN - 1) / BN), (unsigned)rows, (unsigned)splits), y0);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

template <class Cfg, class LA, class LB, class Epi>
cudaError_t launch_simt(const LA& la, const LB& lb, const Epi& epi, int M, int N, int K, int splits,
                        int k_chunk, cudaStream_t stream) {
  return launch_row_chunks(M, Cfg::BM, N, Cfg::BN, splits, [&](dim3 grid, int y0) {
    simt_kernel<Cfg, LA, LB, Epi><<<grid, Cfg::T, 0, stream>>>(la, lb, epi, K, k_chunk, y0);
  });
}

template <MathMode MODE, int MIN_BLOCKS, class LA, class LB, class Epi>
cudaError_t launch_mma(const LA& la, const LB& lb, const Epi& epi, int M, int N, int K, int splits,
                       int k_chunk, cudaStream_t stream) {
  using Cfg = MmaCfg<MODE>;
  return launch_row_chunks(M, Cfg::BM, N, Cfg::BN, splits, [&](dim3 grid, int y0) {
    mma_kernel<MODE, MIN_BLOCKS, LA, LB, Epi><<<grid, Cfg::T, 0, stream>>>(la, lb, epi, K, k_chunk, y0);
  });
}

template <MathMode MODE, class LA, class LB, class Epi>
cudaError_t launch_wgmma(const LA& la, const LB& lb, const Epi& epi, int M, int N, int K, int splits,
                         int k_chunk, cudaStream_t stream) {
  using Cfg = WgmmaCfg<MODE>;
  return launch_row_chunks(M, Cfg::BM, N, Cfg::BN, splits, [&](dim3 grid, int y0) {
    wgmma_kernel<MODE, LA, LB, Epi><<<grid, Cfg::T, 0, stream>>>(la, lb, epi, K, k_chunk, y0);
  });
}

// The TMA loop over an M x N output; map_a / map_b from tma_encode_f32_2d with boxes of
// 128 rows x 4 floats (A: M x K, B: N x K). It needs more than the default 48 KiB of dynamic
// shared memory, which cudaFuncSetAttribute allows, per device: set at the first call on each
// (a host-side attribute write, not a stream operation, so also legal during graph capture).
template <class Epi>
cudaError_t launch_wgmma_tma(const tma::Map& map_a, const tma::Map& map_b, const Epi& epi, int M, int N, int K,
                             int splits, int k_chunk, cudaStream_t stream) {
  using Cfg = TmaCfg;
  static std::atomic<uint64_t> attr_set{0};  // devices 0..63 whose attribute is set
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  const uint64_t bit = dev >= 0 && dev < 64 ? uint64_t{1} << dev : 0;
  if (!bit || !(attr_set.load(std::memory_order_relaxed) & bit)) {
    e = cudaFuncSetAttribute(wgmma_tma_kernel<Epi>, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kSmemBytes);
    if (e != cudaSuccess) return e;
    attr_set.fetch_or(bit, std::memory_order_relaxed);
  }
  return launch_row_chunks(M, Cfg::BM, N, Cfg::BN, splits, [&](dim3 grid, int y0) {
    wgmma_tma_kernel<Epi><<<grid, Cfg::T, Cfg::kSmemBytes, stream>>>(map_a, map_b, epi, K, k_chunk, y0);
  });
}

// Launch policies: a tile config plus the main loop that runs it, so that callers can write
// one dispatch body for every config (their loaders are built from ShapeA / ShapeB).
template <class Cfg>
struct SimtRun {
  using ShapeA = typename Cfg::ShapeA;
  using ShapeB = typename Cfg::ShapeB;
  static constexpr int BK = Cfg::BK;
  template <class LA, class LB, class E>
  static cudaError_t run(const LA& la, const LB& lb, const E& e, int M, int N, int K, int splits,
                         int k_chunk, cudaStream_t s) {
    return launch_simt<Cfg>(la, lb, e, M, N, K, splits, k_chunk, s);
  }
};

template <MathMode MODE, int MIN_BLOCKS = 1>
struct MmaRun {
  using ShapeA = typename MmaCfg<MODE>::ShapeA;
  using ShapeB = typename MmaCfg<MODE>::ShapeB;
  static constexpr int BK = MmaCfg<MODE>::BK;
  template <class LA, class LB, class E>
  static cudaError_t run(const LA& la, const LB& lb, const E& e, int M, int N, int K, int splits,
                         int k_chunk, cudaStream_t s) {
    return launch_mma<MODE, MIN_BLOCKS>(la, lb, e, M, N, K, splits, k_chunk, s);
  }
};

// Hopper only (sm_90a code on a compute capability 9.0 device: gemm_wgmma_supported()).
template <MathMode MODE>
struct WgmmaRun {
  using ShapeA = typename WgmmaCfg<MODE>::ShapeA;
  using ShapeB = typename WgmmaCfg<MODE>::ShapeB;
  static constexpr int BK = WgmmaCfg<MODE>::BK;
  template <class LA, class LB, class E>
  static cudaError_t run(const LA& la, const LB& lb, const E& e, int M, int N, int K, int splits,
                         int k_chunk, cudaStream_t s) {
    return launch_wgmma<MODE>(la, lb, e, M, N, K, splits, k_chunk, s);
  }
};

}  // namespace tile
}  // namespace cuda
}  // namespace imagerate
