// gemm.cc: single-precision GEMM, C = alpha * op(A) * op(B) + beta * C (row-major; kernels.h).
//
// Algorithm (GotoBLAS / BLIS): five loops around a register-blocked micro-kernel.
//
//   for jc in N step NC            B panel  op(B)[pc:pc+kc, jc:jc+nc] -> packed NR-col slivers (L3)
//     for pc in K step KC
//       pack B panel
//       for ic in M step MC        A block  op(A)[ic:ic+mc, pc:pc+kc] -> packed MR-row slivers (L2)
//         pack A block
//         for jr in nc step NR     one B sliver (kc x NR) stays in L1 ...
//           for ir in mc step MR   ... while the A slivers stream from L2
//             micro-kernel: C[ir:ir+MR, jr:jr+NR] (+)= A sliver * B sliver
//
// Packing absorbs the transposes: both trans_a and trans_b only change how pack_a / pack_b
// read, the micro-kernel always sees the same k-major slivers. Slivers are zero-padded past the
// edge of the matrix, and edge tiles (fewer than MR rows or NR columns of C) are computed into
// a scratch tile and copied out, so the micro-kernel only ever stores full tiles. alpha and
// beta are applied at the store; the first KC block uses the caller's beta, later ones beta=1.
// beta == 0 never reads C. K == 0 or alpha == 0 only scales C by beta (BLAS semantics: A and B
// are not read).
//
// Blocking (AVX2 6x16 kernel; the generic 6x8 kernel uses the same numbers): KC = 256 makes the
// B sliver 256 x 16 x 4 B = 16 KiB, half of the 32 KiB L1d, leaving room for the A sliver
// (6 KiB) and C. MC = 144 makes the A block 144 KiB, well inside the private L2 (512 KiB on
// Zen 3, 1 MiB on Zen 4) so it survives the B panel streaming past. NC = 4080 makes the B panel
// 4 MiB, a fraction of the shared L3. K and M are split into near-equal blocks (K = 300 gives
// two blocks of 150, not 256 + 44) so no block is a sliver. Measured alternatives (1024^3, one
// thread): see the sweep in the report of the commit that added this file; KC 192..384 and
// MC 96..192 are all within noise of each other here, KC < 128 loses ~10 %.
//
// Threading: with T threads the problem is cut into T independent sub-GEMMs along the larger
// of M and N (in whole MR/NR slivers), one per thread via parallel_for, each with its own
// thread-local pack buffers. Cutting M duplicates B packing (T x K x N floats), cutting N
// duplicates A packing (T x M x K); cutting the larger dimension keeps the duplicate the smaller
// one, and one dispatch per call (no barrier between "pack B" and "compute") is what measured
// best on 2 cores. Problems under kThreadMinFlops run on the calling thread: waking the pool
// costs tens of microseconds.
//
// Small problems: below kTinyFlops a plain triple loop (no packing at all). When op(B) is not
// transposed and M is small (kDirectBMaxM), B is not packed: the micro-kernel reads B in place
// with stride ldb (only a ragged last sliver is packed), because with one or two A slivers each
// B element is used once or twice and packing it would double the memory traffic (LeNet's
// conv layers: M = 6..16 output channels, N = thousands of pixels).
//
// ISA: chosen once (first call) from __builtin_cpu_supports("avx2") && ("fma");
// IMAGERATE_CPU_ISA=generic forces the portable kernel; gemm_force_isa() switches at run time
// ("avx2-fma" | "generic"; "auto" re-runs detection; anything unsupported is ignored).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "gemm_internal.h"
#include "kernels.h"
#include "parallel.h"

namespace imagerate {
namespace {

using gemm_detail::GemmKernel;

constexpr double kTinyFlops = 2.0 * 16 * 16 * 16;         // triple loop below this
constexpr double kThreadMinFlops = 2.0 * 64 * 64 * 64 * 4;  // ~2 MFLOP: single thread below this
constexpr int64_t kDirectBMaxM = 12;                       // <= 2 A slivers: stream B in place
constexpr int kMaxMR = 6, kMaxNR = 16;

// ---------------------------------------------------------------- ISA selection

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const GemmKernel* detect_kernel() {
  const char* env = std::getenv("IMAGERATE_CPU_ISA");
  if (env && std::strcmp(env, "generic") == 0) return gemm_detail::gemm_kernel_generic();
  if (gemm_detail::gemm_kernel_avx2() && cpu_has_avx2_fma()) return gemm_detail::gemm_kernel_avx2();
  return gemm_detail::gemm_kernel_generic();
}

std::atomic<const GemmKernel*> g_kernel{nullptr};
GemmKernel g_tune; bool g_tune_on = false; int g_shared = 0;  // TUNING ONLY (remove)

const GemmKernel& active_kernel() {
  if (g_tune_on) return g_tune;  // TUNING ONLY (remove)
  const GemmKernel* k = g_kernel.load(std::memory_order_acquire);
  if (!k) {
    // A racing first call computes the same answer, so a plain store is enough.
    k = detect_kernel();
    const GemmKernel* expected = nullptr;
    if (!g_kernel.compare_exchange_strong(expected, k)) k = expected;
  }
  return *k;
}

// ---------------------------------------------------------------- operands and buffers

// op(X) as (pointer, row stride, transposed): op(A)(i, p) and op(B)(p, j) in one accessor.
struct Operand {
  const float* p;
  int64_t ld;
  bool trans;
  // Element (r, c) of op(X).
  float at(int64_t r, int64_t c) const { return trans ? p[c * ld + r] : p[r * ld + c]; }
  // op(X) restricted to rows r0.. and columns c0.. (same ld and transposition).
  Operand sub(int64_t r0, int64_t c0) const {
    return {trans ? p + c0 * ld + r0 : p + r0 * ld + c0, ld, trans};
  }
};

// Per-thread, 64-byte aligned, grow-only scratch (pool workers keep theirs between calls).
struct PackBuffer {
  float* p = nullptr;
  size_t cap = 0;
  ~PackBuffer() { std::free(p); }
  float* get(size_t floats) {
    if (floats > cap) {
      std::free(p);
      size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) {
        cap = 0;
        throw std::bad_alloc();
      }
      cap = floats;
    }
    return p;
  }
};
thread_local PackBuffer tl_a_buf, tl_b_buf, tl_edge_buf;

// ---------------------------------------------------------------- packing

// A block op(A)[0:mc, 0:kc] -> MR-row slivers, each kc x MR k-major, zero-padded to MR rows.
template <int MR>
void pack_a(const Operand& A, int64_t mc, int64_t kc, float* dst) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int64_t m = std::min<int64_t>(MR, mc - ir);
    float* d = dst + ir * kc;
    if (A.trans) {  // A stored K x M: the MR values of one k are contiguous
      const float* src = A.p + ir;
      for (int64_t p = 0; p < kc; ++p) {
        const float* s = src + p * A.ld;
        if (m == MR) {
          for (int r = 0; r < MR; ++r) d[p * MR + r] = s[r];
        } else {
          for (int r = 0; r < MR; ++r) d[p * MR + r] = r < m ? s[r] : 0.0f;
        }
      }
    } else {  // A stored M x K: read each row sequentially, scatter with stride MR
      for (int r = 0; r < MR; ++r) {
        if (r < m) {
          const float* s = A.p + (ir + r) * A.ld;
          for (int64_t p = 0; p < kc; ++p) d[p * MR + r] = s[p];
        } else {
          for (int64_t p = 0; p < kc; ++p) d[p * MR + r] = 0.0f;
        }
      }
    }
  }
}

// B panel op(B)[0:kc, 0:nc] -> NR-column slivers, each kc x NR k-major, zero-padded to NR.
template <int NR>
void pack_b(const Operand& B, int64_t kc, int64_t nc, float* dst) {
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int64_t n = std::min<int64_t>(NR, nc - jr);
    float* d = dst + jr * kc;
    if (!B.trans) {  // B stored K x N: NR contiguous values per k
      const float* src = B.p + jr;
      for (int64_t p = 0; p < kc; ++p) {
        const float* s = src + p * B.ld;
        if (n == NR) {
          std::memcpy(d + p * NR, s, NR * sizeof(float));
        } else {
          for (int j = 0; j < NR; ++j) d[p * NR + j] = j < n ? s[j] : 0.0f;
        }
      }
    } else {  // B stored N x K: read each column of op(B) sequentially, scatter with stride NR
      for (int j = 0; j < NR; ++j) {
        if (j < n) {
          const float* s = B.p + (jr + j) * B.ld;
          for (int64_t p = 0; p < kc; ++p) d[p * NR + j] = s[p];
        } else {
          for (int64_t p = 0; p < kc; ++p) d[p * NR + j] = 0.0f;
        }
      }
    }
  }
}

void pack_a_any(const GemmKernel& K, const Operand& A, int64_t mc, int64_t kc, float* dst) {
  if (!A.trans && K.pack_a) K.pack_a(A.p, A.ld, mc, kc, dst);
  else pack_a<6>(A, mc, kc, dst);  // every kernel so far has MR = 6
}

void pack_b_any(const GemmKernel& K, const Operand& B, int64_t kc, int64_t nc, float* dst) {
  const int nr = K.nr;
  if (B.trans && K.pack_b_trans) K.pack_b_trans(B.p, B.ld, kc, nc, dst);
  else if (nr == 16) pack_b<16>(B, kc, nc, dst);
  else pack_b<8>(B, kc, nc, dst);
}

// ---------------------------------------------------------------- compute

// C = alpha * tile + beta * C for an m x n corner of a full-width scratch tile.
void store_edge(const float* tile, int nr, int64_t m, int64_t n, float alpha, float beta, float* C,
                int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float v = alpha * tile[i * nr + j];
      C[i * ldc + j] = beta == 0.0f ? v : v + beta * C[i * ldc + j];
    }
}

// One A block (packed) against nc columns of B (packed slivers, or in place with stride bld).
struct BSource {
  const float* base;  // sliver jr starts at base + jr * step
  int64_t step;       // kc (packed) or 1 (in place)
  int64_t stride;     // NR (packed) or ldb (in place)
  const float* edge;  // packed ragged last sliver when in place, else nullptr
};

void macro_kernel(const GemmKernel& K, int64_t mc, int64_t nc, int64_t kc, const float* a_pack,
                  const BSource& bs, float alpha, float beta, float* C, int64_t ldc) {
  const int MR = K.mr, NR = K.nr;
  alignas(64) float tile[kMaxMR * kMaxNR];
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int64_t n = std::min<int64_t>(NR, nc - jr);
    const float* b = bs.base + jr * bs.step;
    int64_t bstride = bs.stride;
    if (n < NR && bs.edge) {
      b = bs.edge;
      bstride = NR;
    }
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int64_t m = std::min<int64_t>(MR, mc - ir);
      float* c = C + ir * ldc + jr;
      if (m == MR && n == NR) {
        K.ukernel(kc, a_pack + ir * kc, b, bstride, c, ldc, alpha, beta);
      } else {
        K.ukernel(kc, a_pack + ir * kc, b, bstride, tile, NR, 1.0f, 0.0f);
        store_edge(tile, NR, m, n, alpha, beta, c, ldc);
      }
    }
  }
}

// Split `total` into near-equal blocks of at most `cap`, each a multiple of `unit`.
int64_t even_block(int64_t total, int64_t cap, int64_t unit) {
  const int64_t nblocks = (total + cap - 1) / cap;
  const int64_t b = (total + nblocks - 1) / nblocks;
  return std::min(cap, (b + unit - 1) / unit * unit);
}

void gemm_serial(const GemmKernel& K, const Operand& A, const Operand& B, int64_t M, int64_t N,
                 int64_t Kd, float alpha, float beta, float* C, int64_t ldc) {
  const int64_t KC = even_block(Kd, K.kc, 1);
  const int64_t MC = even_block(M, K.mc, K.mr);
  const int64_t NC = std::min<int64_t>(K.nc, (N + K.nr - 1) / K.nr * K.nr);
  const bool direct_b = !B.trans && M <= kDirectBMaxM;

  float* a_pack = tl_a_buf.get(static_cast<size_t>(MC) * KC + gemm_detail::kPackSlack);
  float* b_pack = direct_b ? tl_edge_buf.get(static_cast<size_t>(KC) * K.nr)
                           : tl_b_buf.get(static_cast<size_t>(KC) * NC);

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < Kd; pc += KC) {
      const int64_t kc = std::min(KC, Kd - pc);
      const float beta_eff = pc == 0 ? beta : 1.0f;
      const Operand Bp = B.sub(pc, jc);
      BSource bs;
      if (direct_b) {
        const int64_t full = nc / K.nr * K.nr;
        bs = {Bp.p, 1, B.ld, nullptr};
        if (full < nc) {
          pack_b_any(K, Bp.sub(0, full), kc, nc - full, b_pack);
          bs.edge = b_pack;
        }
      } else {
        pack_b_any(K, Bp, kc, nc, b_pack);
        bs = {b_pack, kc, K.nr, nullptr};
      }
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        pack_a_any(K, A.sub(ic, pc), mc, kc, a_pack);
        macro_kernel(K, mc, nc, kc, a_pack, bs, alpha, beta_eff, C + ic * ldc + jc, ldc);
      }
    }
  }
}

// Shared-B variant: per (jc, pc) panel, the threads pack the B panel together (one dispatch),
// then claim MC-row blocks of C from an atomic counter, packing their own A blocks (second
// dispatch). Dynamic claiming: a thread that shares its core with another process does less.
void gemm_shared_b(const GemmKernel& K, const Operand& A, const Operand& B, int64_t M, int64_t N,
                   int64_t Kd, float alpha, float beta, float* C, int64_t ldc, int T) {
  const int64_t KC = even_block(Kd, K.kc, 1);
  const int64_t MC = even_block(M, K.mc, K.mr);
  const int64_t NC = std::min<int64_t>(K.nc, (N + K.nr - 1) / K.nr * K.nr);
  float* b_pack = tl_b_buf.get(static_cast<size_t>(KC) * NC);
  const int64_t m_blocks = (M + MC - 1) / MC;
  constexpr int64_t kPackGroup = 8;  // slivers per claim when packing B
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    const int64_t n_groups = ((nc + K.nr - 1) / K.nr + kPackGroup - 1) / kPackGroup;
    for (int64_t pc = 0; pc < Kd; pc += KC) {
      const int64_t kc = std::min(KC, Kd - pc);
      const float beta_eff = pc == 0 ? beta : 1.0f;
      const Operand Bp = B.sub(pc, jc);
      std::atomic<int64_t> next_group{0}, next_block{0};
      parallel_for(T, [&](int64_t, int64_t, int) {
        for (int64_t g; (g = next_group.fetch_add(1, std::memory_order_relaxed)) < n_groups;) {
          const int64_t j0 = g * kPackGroup * K.nr, j1 = std::min(nc, j0 + kPackGroup * K.nr);
          pack_b_any(K, Bp.sub(0, j0), kc, j1 - j0, b_pack + j0 * kc);
        }
      });
      const BSource bs{b_pack, kc, K.nr, nullptr};
      parallel_for(T, [&](int64_t, int64_t, int) {
        float* a_pack = tl_a_buf.get(static_cast<size_t>(MC) * kc + gemm_detail::kPackSlack);
        for (int64_t blk; (blk = next_block.fetch_add(1, std::memory_order_relaxed)) < m_blocks;) {
          const int64_t ic = blk * MC, mc = std::min(MC, M - ic);
          pack_a_any(K, A.sub(ic, pc), mc, kc, a_pack);
          macro_kernel(K, mc, nc, kc, a_pack, bs, alpha, beta_eff, C + ic * ldc + jc, ldc);
        }
      });
    }
  }
}

// Tiny problems: no packing, no dispatch; accumulate in float in k order like the kernels.
void gemm_tiny(const Operand& A, const Operand& B, int64_t M, int64_t N, int64_t Kd, float alpha,
               float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float acc = 0.0f;
      for (int64_t p = 0; p < Kd; ++p) acc += A.at(i, p) * B.at(p, j);
      float* c = C + i * ldc + j;
      *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
    }
}

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  if (beta == 1.0f) return;
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f) std::fill(c, c + N, 0.0f);
    else for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

}  // namespace

void gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  const Operand a{A, lda, trans_a}, b{B, ldb, trans_b};
  const double flops = 2.0 * M * N * K;
  if (flops <= kTinyFlops) {
    gemm_tiny(a, b, M, N, K, alpha, beta, C, ldc);
    return;
  }
  const GemmKernel& kern = active_kernel();

  // Threads: one independent sub-GEMM per thread, cut along the larger of M and N.
  int T = (flops < kThreadMinFlops || in_parallel_region()) ? 1 : num_threads();
  const int64_t m_units = (M + kern.mr - 1) / kern.mr, n_units = (N + kern.nr - 1) / kern.nr;
  const bool cut_m = M >= N ? m_units >= T : n_units < T;
  T = static_cast<int>(std::min<int64_t>(T, cut_m ? m_units : n_units));
  if (T <= 1) {
    gemm_serial(kern, a, b, M, N, K, alpha, beta, C, ldc);
    return;
  }
  if (g_shared && cut_m) {
    gemm_shared_b(kern, a, b, M, N, K, alpha, beta, C, ldc, T);
    return;
  }
  const int64_t units = cut_m ? m_units : n_units, unit = cut_m ? kern.mr : kern.nr;
  const int64_t extent = cut_m ? M : N;
  parallel_for(T, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t lo = std::min(extent, units * t / T * unit);
      const int64_t hi = std::min(extent, units * (t + 1) / T * unit);
      if (lo >= hi) continue;
      if (cut_m)
        gemm_serial(kern, a.sub(lo, 0), b, hi - lo, N, K, alpha, beta, C + lo * ldc, ldc);
      else
        gemm_serial(kern, a, b.sub(0, lo), M, hi - lo, K, alpha, beta, C + lo, ldc);
    }
  });
}

void gemm_tune_set(int mc, int kc, int nc, int shared) {  // TUNING ONLY (remove)
  g_tune = *gemm_detail::gemm_kernel_avx2(); g_tune.mc = mc; g_tune.kc = kc; g_tune.nc = nc;
  g_tune_on = mc > 0; g_shared = shared;
}

const char* gemm_isa() { return active_kernel().name; }

void gemm_force_isa(const char* isa) {
  if (!isa) return;
  if (std::strcmp(isa, "generic") == 0) {
    g_kernel.store(gemm_detail::gemm_kernel_generic(), std::memory_order_release);
  } else if (std::strcmp(isa, "avx2-fma") == 0) {
    if (gemm_detail::gemm_kernel_avx2() && cpu_has_avx2_fma())
      g_kernel.store(gemm_detail::gemm_kernel_avx2(), std::memory_order_release);
  } else if (std::strcmp(isa, "auto") == 0) {
    g_kernel.store(detect_kernel(), std::memory_order_release);
  }
}

}  // namespace imagerate
