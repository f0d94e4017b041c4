// gemm.cc: single-precision GEMM, C = alpha * op(A) * op(B) + beta * C (row-major; kernels.h).
// Dispatch, blocking, packing, threading and edges; the micro-kernels live in gemm_kernel_*.cc.
//
// Algorithm (GotoBLAS / BLIS): five loops around a register-blocked micro-kernel.
//
//   for jc in N step NC            B panel  op(B)[pc:pc+kc, jc:jc+nc] -> packed NR-col slivers (L3)
//     for pc in K step KC
//       pack B panel
//       for ic in M step MC        A block  op(A)[ic:ic+mc, pc:pc+kc] -> packed MR-row slivers (L2)
//         pack A block
//         for jr in nc step NR     one B sliver (kc x NR) is reused from L1/L2 ...
//           for ir in mc step MR   ... while the A slivers stream from L2
//             micro-kernel: C[ir:ir+MR, jr:jr+NR] (+)= A sliver * B sliver
//
// Packing absorbs the transposes (only pack_a / pack_b read op(A), op(B) differently; the AVX2
// kernel set brings 8x8 register-transpose packers for the two strided cases). Slivers are
// zero-padded past the matrix edge. Edge tiles (< MR rows or < NR columns of C) go to the
// kernel's masked edge kernel, or, for the generic kernel, through a scratch tile. alpha and
// beta are applied at the store; the first KC block uses the caller's beta, later ones 1.
// beta == 0 never reads C. K == 0 or alpha == 0 only scales C by beta (BLAS: A, B unread).
//
// Blocking (both kernels): MC = 96, KC = 384, NC = 4080: A block 96 x 384 x 4 B = 144 KiB in
// the private L2 (512 KiB Zen 3, 1 MiB Zen 4), B sliver 384 x 16 x 4 B = 24 KiB of the 32 KiB
// L1d, B panel 6 MiB in the shared L3. K and M are cut into near-equal blocks (K = 400 is
// 2 x 200, not 384 + 16). Measured on the dev VM (Zen 4, 1 thread, 1024^3, thread CPU time):
// KC 256 / 384 / 512 gave ~102 / 104-106 / 107-108 GFLOP/s, MC 96..192 within noise; 512 fills
// all of L1 with the B sliver, so 384 is kept as margin for Zen 3 (1-2 %, inside the noise).
//
// Threading (T = num_threads() > 1 and >= kThreadMinFlops; serial inside a parallel region):
//   rows  M >= 4*T*MR: per (jc, pc) the threads pack the B panel together, then claim MC-row
//         blocks (MC lowered to give >= 4 per thread) from an atomic counter, each packing its
//         own A block against the shared panel. Two pool dispatches per panel.
//   cols  smaller M: column chunks (>= 4 per thread) claimed from a counter, each a serial
//         GEMM with its own (small) A pack and its own part of B. One dispatch.
// Claiming beats a static split on a 2-core machine shared with the JS thread and other
// processes: a statically halved GEMM runs at the speed of the busier core (static split:
// same speed idle, 5-10 % lower median under load).
//
// Small problems (LeNet: M = 6..150, K = 6..784): below kTinyFlops a plain triple loop; op(B)
// untransposed and M <= kDirectBMaxM: B is streamed in place with stride ldb, not packed (each
// element is used by <= 4 A slivers, so packing costs what it saves); A x B^T with a short side
// (use_nt_dot): no packing at all, each output a dot product of two contiguous rows.
//
// ISA: chosen at the first call from __builtin_cpu_supports("avx2") && ("fma");
// IMAGERATE_CPU_ISA=generic forces the portable kernel; gemm_force_isa() switches at run time
// ("avx2-fma" | "generic"; "auto" re-runs detection; anything unsupported is ignored).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>

#include "gemm_internal.h"
#include "kernels.h"
#include "parallel.h"

namespace imagerate {
namespace {

using gemm_detail::GemmKernel;

constexpr double kTinyFlops = 2.0 * 16 * 16 * 16;         // triple loop below this
constexpr double kThreadMinFlops = 2.0 * 64 * 64 * 64 * 4;  // ~2 MFLOP: single thread below this
constexpr int64_t kDirectBMaxM = 24;                       // <= 4 A slivers: stream B in place
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

const GemmKernel& active_kernel() {
  const GemmKernel* k = g_kernel.load(std::memory_order_acquire);
  if (!k) {
    k = detect_kernel();  // a racing first call computes the same answer; keep whichever won
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
    for (int r = 0; r < MR; ++r) {
      if (r >= m) {
        for (int64_t p = 0; p < kc; ++p) d[p * MR + r] = 0.0f;
      } else if (A.trans) {  // A stored K x M: row r of op(A) is a column, stride ld
        const float* s = A.p + ir + r;
        for (int64_t p = 0; p < kc; ++p) d[p * MR + r] = s[p * A.ld];
      } else {  // A stored M x K: row r is contiguous
        const float* s = A.p + (ir + r) * A.ld;
        for (int64_t p = 0; p < kc; ++p) d[p * MR + r] = s[p];
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
    if (!B.trans && n == NR) {  // B stored K x N: NR contiguous values per k
      for (int64_t p = 0; p < kc; ++p) std::memcpy(d + p * NR, B.p + p * B.ld + jr, NR * sizeof(float));
      continue;
    }
    for (int j = 0; j < NR; ++j) {  // one column of op(B) at a time, scattered with stride NR
      if (j >= n) {
        for (int64_t p = 0; p < kc; ++p) d[p * NR + j] = 0.0f;
        continue;
      }
      const float* s = B.trans ? B.p + (jr + j) * B.ld : B.p + jr + j;
      const int64_t step = B.trans ? 1 : B.ld;
      for (int64_t p = 0; p < kc; ++p) d[p * NR + j] = s[p * step];
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

// One A block (packed) against nc columns of B (packed slivers, or in place with stride ldb).
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
      } else if (K.edge) {
        K.edge(static_cast<int>(m), static_cast<int>(n), kc, a_pack + ir * kc, b, bstride, c, ldc,
               alpha, beta);
      } else {
        K.ukernel(kc, a_pack + ir * kc, b, bstride, tile, NR, 1.0f, 0.0f);
        store_edge(tile, NR, m, n, alpha, beta, c, ldc);
      }
    }
  }
}

// Split `total` into near-equal blocks of at most `cap`, each a multiple of `unit`.
int64_t even_block(int64_t total, int64_t cap, int64_t unit) {
  cap = std::max(unit, cap / unit * unit);
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

// Runs body(i) for every i in [0, n) on up to T pool threads, each claiming the next index
// from a shared counter, so a thread that shares its core with another process simply does
// fewer items. An exception (bad_alloc from a pack buffer) is carried back to the caller.
template <typename Body>
void parallel_dynamic(int T, int64_t n, const Body& body) {
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  parallel_for(std::min<int64_t>(T, n), [&](int64_t, int64_t, int) {
    try {
      for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lk(error_mu);
      if (!error) error = std::current_exception();
      next.store(n);
    }
  });
  if (error) std::rethrow_exception(error);
}

// Threads over rows (M large): per (jc, pc) panel, the threads pack the B panel together, then
// claim MC-row blocks of C, each packing its own A block against the shared packed panel. MC
// is lowered so that there are >= 4 blocks per thread to balance. Two dispatches per panel.
void gemm_threaded_rows(const GemmKernel& K, const Operand& A, const Operand& B, int64_t M,
                        int64_t N, int64_t Kd, float alpha, float beta, float* C, int64_t ldc,
                        int T) {
  const int64_t KC = even_block(Kd, K.kc, 1);
  const int64_t MC =
      even_block(M, std::min<int64_t>(K.mc, (M + 4 * T - 1) / (4 * T)), K.mr);
  const int64_t NC = std::min<int64_t>(K.nc, (N + K.nr - 1) / K.nr * K.nr);
  float* b_pack = tl_b_buf.get(static_cast<size_t>(KC) * NC);
  const int64_t m_blocks = (M + MC - 1) / MC;
  constexpr int64_t kPackGroup = 8;  // B slivers per claim while packing
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    const int64_t n_groups = ((nc + K.nr - 1) / K.nr + kPackGroup - 1) / kPackGroup;
    for (int64_t pc = 0; pc < Kd; pc += KC) {
      const int64_t kc = std::min(KC, Kd - pc);
      const float beta_eff = pc == 0 ? beta : 1.0f;
      const Operand Bp = B.sub(pc, jc);
      parallel_dynamic(T, n_groups, [&](int64_t g) {
        const int64_t j0 = g * kPackGroup * K.nr, j1 = std::min(nc, j0 + kPackGroup * K.nr);
        pack_b_any(K, Bp.sub(0, j0), kc, j1 - j0, b_pack + j0 * kc);
      });
      const BSource bs{b_pack, kc, K.nr, nullptr};
      parallel_dynamic(T, m_blocks, [&](int64_t blk) {
        float* a_pack = tl_a_buf.get(static_cast<size_t>(MC) * kc + gemm_detail::kPackSlack);
        const int64_t ic = blk * MC, mc = std::min(MC, M - ic);
        pack_a_any(K, A.sub(ic, pc), mc, kc, a_pack);
        macro_kernel(K, mc, nc, kc, a_pack, bs, alpha, beta_eff, C + ic * ldc + jc, ldc);
      });
    }
  }
}

// Threads over columns (M small): independent sub-GEMMs on column chunks (whole NR slivers,
// >= 4 chunks per thread), claimed dynamically; each packs its own (small) A and its own part
// of B, so there is one dispatch and no shared state.
void gemm_threaded_cols(const GemmKernel& K, const Operand& A, const Operand& B, int64_t M,
                        int64_t N, int64_t Kd, float alpha, float beta, float* C, int64_t ldc,
                        int T) {
  const int64_t n_units = (N + K.nr - 1) / K.nr;
  const int64_t chunk = std::max<int64_t>(1, n_units / (4 * T)) * K.nr;
  parallel_dynamic(T, (N + chunk - 1) / chunk, [&](int64_t c) {
    const int64_t j0 = c * chunk, nc = std::min(chunk, N - j0);
    gemm_serial(K, A, B.sub(0, j0), M, nc, Kd, alpha, beta, C + j0, ldc);
  });
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

// The unpacked NT dot-product path pays off when packing would cost about as much as the
// multiply: one short side (<= 24) so each packed element is used only a few times, K long
// enough (>= 64) to amortise each output's final reduction, and the long side's rows small
// enough (<= 512 KiB) to be re-read from L2 for every 3-row tile instead of from memory.
bool use_nt_dot(int64_t M, int64_t N, int64_t K) {
  return std::min(M, N) <= 24 && K >= 64 && std::max(M, N) * K <= (int64_t{128} << 10);
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
  if (!trans_a && trans_b && kern.nt_dot && use_nt_dot(M, N, K)) {
    const int T = (flops < kThreadMinFlops || in_parallel_region()) ? 1 : num_threads();
    // Cut the longer side into >= 4 chunks per thread of whole 3-row / 4-column dot tiles.
    const bool rows = M >= N;
    const int64_t unit = rows ? 3 : 4, extent = rows ? M : N;
    const int64_t chunk = std::max<int64_t>(1, (extent + unit - 1) / unit / (4 * T)) * unit;
    if (T <= 1 || chunk >= extent) {
      kern.nt_dot(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    }
    parallel_dynamic(T, (extent + chunk - 1) / chunk, [&](int64_t c) {
      const int64_t lo = c * chunk, len = std::min(chunk, extent - lo);
      if (rows) kern.nt_dot(len, N, K, alpha, A + lo * lda, lda, B, ldb, beta, C + lo * ldc, ldc);
      else kern.nt_dot(M, len, K, alpha, A, lda, B + lo * ldb, ldb, beta, C + lo, ldc);
    });
    return;
  }

  // Threads: over rows with a shared B panel when M has >= 4 MR slivers per thread, else over
  // column chunks; serial when the problem is too small to pay for waking the pool.
  const int T = (flops < kThreadMinFlops || in_parallel_region()) ? 1 : num_threads();
  const int64_t m_units = (M + kern.mr - 1) / kern.mr, n_units = (N + kern.nr - 1) / kern.nr;
  if (T > 1 && m_units >= 4 * T)
    gemm_threaded_rows(kern, a, b, M, N, K, alpha, beta, C, ldc, T);
  else if (T > 1 && n_units >= 2)
    gemm_threaded_cols(kern, a, b, M, N, K, alpha, beta, C, ldc, T);
  else
    gemm_serial(kern, a, b, M, N, K, alpha, beta, C, ldc);
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
