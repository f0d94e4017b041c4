// conv2d.cc: 2-D convolution (groups = 1) forward, backward-data and backward-filter, by
// im2col + gemm_f32, one image at a time.
//
// Layouts: x, dx [N, C, H, W]; w, dw [K, C, R, S] (OIHW); y, dy [N, K, P, Q]; bias, db [K].
// Any stride, padding and dilation. Per image n, with col_n = im2col(x_n) [C*R*S, P*Q]:
//   forward      y_n[K, PQ]    = w[K, CRS] . col_n            (+ bias[k] on row k)
//   bwd-data     col[CRS, PQ]  = w^T . dy_n, then dx_n = col2im(col)   (overwrites dx)
//   bwd-filter   dw[K, CRS]   += dy_n . col_n^T over all n;  db[k] = sum dy[:, k]  (overwrite)
// "Direct" layers (1x1, stride 1, no padding) skip im2col: col_n is x_n itself, and
// bwd-data writes w^T . dy_n straight into dx_n.
//
// Column blocks: the columns of one image are processed in blocks of whole output rows
// [p0, p1), sized so that one im2col block stays near kBlockBytes (L2-resident between the
// im2col that writes it and the GEMM that reads it). Workspaces are thread_local vectors that
// grow and are reused, so steady-state calls do not allocate.
//
// Thread mapping (variants; IMAGERATE_CONV2D_VARIANT=tiles|channels|gemm forces one, for
// tests and benchmarks; by default each call picks as described):
//   tiles    parallel_for over tasks, each thread running its own single-threaded GEMMs
//            (gemm_f32 runs serially inside a parallel region) on its own im2col workspace.
//            Images are cut into pieces only when the batch alone would leave threads idle
//            or unevenly loaded (pieces_for_balance: task count a multiple of the thread
//            count, or at least 4x it); LeNet's batch of 64 is never cut.
//            forward: task = (image, column block) -> writes its own slice of y.
//            bwd-data: task = (image, channel block) -> writes its own channels of dx
//            (col2im of a channel block only touches those channels).
//            bwd-filter: task = (image, column block); each chunk of tasks accumulates into
//            its own partial dw (chunk 0 into dw itself), then the partials are added in
//            chunk order, so results depend on the thread count but never on timing.
//            Default when there are enough tasks (and, for bwd-filter, the partials are small).
//   channels bwd-filter only: parallel_for over input channels; each thread owns the dw
//            columns of its channels and loops over all images (no partials). Default when
//            per-thread copies of dw would be large.
//   gemm     images in sequence, im2col / col2im split over channels with parallel_for, and
//            gemm_f32 called outside any parallel region so that it threads itself. Default
//            for a batch smaller than the thread count on a big layer (>= kBigImageFlops per
//            image), or when there are fewer tasks than threads.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "im2col.h"
#include "kernels.h"
#include "parallel.h"

namespace imagerate {
namespace {

constexpr int64_t kBlockBytes = 512 * 1024;         // target size of one im2col block
constexpr int64_t kSmallPartialBytes = 8 << 20;     // all bwd-filter partials together
constexpr int64_t kMaxPartialBytes = 256 << 20;
constexpr double kBigImageFlops = 16e6;             // per image; see small_batch_big_layer

enum class Variant { kAuto, kTiles, kChannels, kGemm };

Variant forced_variant() {
  const char* v = std::getenv("IMAGERATE_CONV2D_VARIANT");
  if (v == nullptr) return Variant::kAuto;
  if (std::strcmp(v, "tiles") == 0) return Variant::kTiles;
  if (std::strcmp(v, "channels") == 0) return Variant::kChannels;
  if (std::strcmp(v, "gemm") == 0) return Variant::kGemm;
  return Variant::kAuto;
}

// Thread-local workspaces. tl_col is used by whichever thread runs a task; the others belong
// to the thread that called the kernel (workers reach them through pointers).
thread_local std::vector<float> tl_col;
thread_local std::vector<float> tl_partial;
thread_local std::vector<double> tl_dbpart;
thread_local std::vector<char> tl_used;

template <typename T>
T* scratch(std::vector<T>& v, size_t n) {
  if (v.size() < n) {
    std::vector<T>().swap(v);
    v.resize(n);
  }
  return v.data();
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Sum of a float row in double, with 8 independent accumulators (one serial chain of double
// adds would cost 4 cycles per element and rival the GEMM on LeNet-sized layers).
double row_sum(const float* v, int64_t n) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) a[j] += v[i + j];
  for (; i < n; ++i) a[i & 7] += v[i];
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

struct Geo {
  int64_t N, C, K, HW, PQ, RS, CRS, P, Q;
  bool direct;
  explicit Geo(const Conv2dParams& cp)
      : N(cp.n), C(cp.c), K(cp.k), HW(cp.h * cp.w), PQ(cp.p * cp.q), RS(cp.r * cp.s),
        CRS(cp.c * cp.r * cp.s), P(cp.p), Q(cp.q),
        direct(cp.r == 1 && cp.s == 1 && cp.stride_h == 1 && cp.stride_w == 1 &&
               cp.pad_h == 0 && cp.pad_w == 0 && cp.p == cp.h && cp.q == cp.w) {}
};

// How many pieces (column or channel blocks) to cut each image into so that N * pieces tasks
// keep nt threads evenly busy: a multiple of nt, or at least 4 * nt (imbalance under 25 %).
int64_t pieces_for_balance(int64_t N, int64_t max_pieces, int nt) {
  int64_t b = 1;
  while (nt > 1 && b < max_pieces && (N * b) % nt != 0 && N * b < 4 * nt) ++b;
  return b;
}

// Output rows per column block: the im2col block of `rows` rows stays under `limit` bytes,
// and each image yields at least `min_blocks` blocks.
int64_t rows_per_block(int64_t rows, const Geo& g, int64_t min_blocks,
                       int64_t limit = kBlockBytes) {
  int64_t pb = limit / std::max<int64_t>(1, rows * g.Q * (int64_t)sizeof(float));
  pb = std::clamp<int64_t>(pb, 1, g.P);
  if (min_blocks > 1) pb = std::min(pb, std::max<int64_t>(1, ceil_div(g.P, min_blocks)));
  return pb;
}

// A batch smaller than the thread count on a layer big enough for the GEMM to thread well.
bool small_batch_big_layer(const Geo& g, int nt) {
  return nt > 1 && g.N < nt && 2.0 * (double)g.K * (double)g.CRS * (double)g.PQ >= kBigImageFlops;
}

int threads_here() { return in_parallel_region() ? 1 : num_threads(); }

// Column block [p0, p1) of image x_n, channels [c0, c1): either a pointer into x_n (direct) or
// im2col'd into `col`. Returns the block and its row stride. parallel: split im2col over
// channels with parallel_for (gemm variant).
const float* columns(const Conv2dParams& cp, const Geo& g, const float* x_n, int64_t c0,
                     int64_t c1, int64_t p0, int64_t p1, float* col, bool parallel,
                     int64_t* ld) {
  if (g.direct) {
    *ld = g.HW;
    return x_n + c0 * g.HW + p0 * g.Q;
  }
  const int64_t cols = (p1 - p0) * g.Q;
  *ld = cols;
  if (!parallel) {
    im2col(cp, x_n, c0, c1, p0, p1, col);
  } else {
    parallel_for(c1 - c0, [&](int64_t b, int64_t e, int) {
      im2col(cp, x_n, c0 + b, c0 + e, p0, p1, col + b * g.RS * cols);
    });
  }
  return col;
}

// y_n[:, p0*Q : p1*Q] = w . col (+ bias).
void fwd_block(const Conv2dParams& cp, const Geo& g, const float* x_n, const float* w,
               const float* bias, float* y_n, int64_t p0, int64_t p1, bool parallel) {
  const int64_t cols = (p1 - p0) * g.Q;
  float* col = g.direct ? nullptr : scratch(tl_col, (size_t)(g.CRS * cols));
  int64_t ldb;
  const float* b = columns(cp, g, x_n, 0, g.C, p0, p1, col, parallel, &ldb);
  float* yb = y_n + p0 * g.Q;
  gemm_f32(false, false, g.K, cols, g.CRS, 1.0f, w, g.CRS, b, ldb, 0.0f, yb, g.PQ);
  if (bias != nullptr) {
    for (int64_t k = 0; k < g.K; ++k) {
      float* row = yb + k * g.PQ;
      const float bk = bias[k];
      for (int64_t i = 0; i < cols; ++i) row[i] += bk;
    }
  }
}

}  // namespace

void conv2d_fwd(const Conv2dParams& cp, const float* x, const float* w, const float* bias,
                float* y) {
  const Geo g(cp);
  if (g.N <= 0 || g.K <= 0 || g.PQ <= 0) return;
  if (g.CRS <= 0) {  // no input channels: y = bias (or 0)
    for (int64_t i = 0; i < g.N * g.K; ++i)
      std::fill(y + i * g.PQ, y + (i + 1) * g.PQ, bias ? bias[i % g.K] : 0.0f);
    return;
  }
  const int nt = threads_here();
  const Variant v = forced_variant();
  const int64_t pb = rows_per_block(g.CRS, g, pieces_for_balance(g.N, g.P, nt));
  const int64_t nblk = ceil_div(g.P, pb), tasks = g.N * nblk;
  const bool tiles = v == Variant::kTiles || v == Variant::kChannels ||
                     (v == Variant::kAuto &&
                      (nt == 1 || (tasks >= nt && !small_batch_big_layer(g, nt))));
  if (tiles) {
    parallel_for(tasks, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t n = t / nblk, p0 = (t % nblk) * pb;
        fwd_block(cp, g, x + n * g.C * g.HW, w, bias, y + n * g.K * g.PQ, p0,
                  std::min(g.P, p0 + pb), false);
      }
    });
    return;
  }
  // gemm variant: whole images (up to the threads' combined L2) so the GEMM has work to split.
  const int64_t pbg = rows_per_block(g.CRS, g, 1, nt * kBlockBytes);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t p0 = 0; p0 < g.P; p0 += pbg)
      fwd_block(cp, g, x + n * g.C * g.HW, w, bias, y + n * g.K * g.PQ, p0,
                std::min(g.P, p0 + pbg), true);
}

void conv2d_bwd_data(const Conv2dParams& cp, const float* dy, const float* w, float* dx) {
  const Geo g(cp);
  if (g.N <= 0 || g.C <= 0 || g.HW <= 0) return;
  if (g.K <= 0 || g.PQ <= 0 || g.RS <= 0) {
    std::fill(dx, dx + g.N * g.C * g.HW, 0.0f);
    return;
  }
  const int nt = threads_here();
  const Variant v = forced_variant();
  const int64_t cbs = ceil_div(g.C, pieces_for_balance(g.N, g.C, nt));
  const int64_t ncb = ceil_div(g.C, cbs), tasks = g.N * ncb;
  const bool tiles = v == Variant::kTiles || v == Variant::kChannels ||
                     (v == Variant::kAuto &&
                      (nt == 1 || (tasks >= nt && !small_batch_big_layer(g, nt))));
  if (tiles) {
    parallel_for(tasks, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t n = t / ncb, c0 = (t % ncb) * cbs, c1 = std::min(g.C, c0 + cbs);
        const float* dy_n = dy + n * g.K * g.PQ;
        float* dx_n = dx + n * g.C * g.HW;
        if (g.direct) {  // dx_n[c0:c1] = w[:, c0:c1]^T . dy_n
          gemm_f32(true, false, c1 - c0, g.PQ, g.K, 1.0f, w + c0, g.CRS, dy_n, g.PQ, 0.0f,
                   dx_n + c0 * g.HW, g.HW);
          continue;
        }
        std::fill(dx_n + c0 * g.HW, dx_n + c1 * g.HW, 0.0f);
        const int64_t rows = (c1 - c0) * g.RS, pb = rows_per_block(rows, g, 1);
        for (int64_t p0 = 0; p0 < g.P; p0 += pb) {
          const int64_t p1 = std::min(g.P, p0 + pb), cols = (p1 - p0) * g.Q;
          float* col = scratch(tl_col, (size_t)(rows * cols));
          gemm_f32(true, false, rows, cols, g.K, 1.0f, w + c0 * g.RS, g.CRS, dy_n + p0 * g.Q,
                   g.PQ, 0.0f, col, cols);
          col2im_add(cp, col, c0, c1, p0, p1, dx_n);
        }
      }
    });
    return;
  }
  // gemm variant: the GEMM threads itself; col2im is split over channels.
  if (!g.direct) {
    parallel_for(g.N * g.C, [&](int64_t b, int64_t e, int) {
      std::fill(dx + b * g.HW, dx + e * g.HW, 0.0f);
    });
  }
  const int64_t pb = rows_per_block(g.CRS, g, 1, nt * kBlockBytes);
  for (int64_t n = 0; n < g.N; ++n) {
    const float* dy_n = dy + n * g.K * g.PQ;
    float* dx_n = dx + n * g.C * g.HW;
    if (g.direct) {
      gemm_f32(true, false, g.C, g.PQ, g.K, 1.0f, w, g.CRS, dy_n, g.PQ, 0.0f, dx_n, g.HW);
      continue;
    }
    for (int64_t p0 = 0; p0 < g.P; p0 += pb) {
      const int64_t p1 = std::min(g.P, p0 + pb), cols = (p1 - p0) * g.Q;
      float* col = scratch(tl_col, (size_t)(g.CRS * cols));
      gemm_f32(true, false, g.CRS, cols, g.K, 1.0f, w, g.CRS, dy_n + p0 * g.Q, g.PQ, 0.0f, col,
               cols);
      parallel_for(g.C, [&](int64_t b, int64_t e, int) {
        col2im_add(cp, col + b * g.RS * cols, b, e, p0, p1, dx_n);
      });
    }
  }
}

namespace {

// db[k] = sum over n, p, q of dy[n, k, p, q], in double, parallel over k (fixed order).
void bias_grad_by_channel(const Geo& g, const float* dy, float* db) {
  parallel_for(g.K, [&](int64_t k0, int64_t k1, int) {
    for (int64_t k = k0; k < k1; ++k) {
      double acc = 0.0;
      for (int64_t n = 0; n < g.N; ++n) acc += row_sum(dy + (n * g.K + k) * g.PQ, g.PQ);
      db[k] = (float)acc;
    }
  });
}

void bwd_filter_tiles(const Conv2dParams& cp, const Geo& g, int nt, const float* x,
                      const float* dy, float* dw, float* db) {
  const int64_t dwsize = g.K * g.CRS;
  const int64_t pb = rows_per_block(g.CRS, g, pieces_for_balance(g.N, g.P, nt));
  const int64_t nblk = ceil_div(g.P, pb), tasks = g.N * nblk;
  float* partial = nt > 1 ? scratch(tl_partial, (size_t)((nt - 1) * dwsize)) : nullptr;
  double* dbpart = scratch(tl_dbpart, (size_t)(nt * g.K));
  char* used = scratch(tl_used, (size_t)nt);
  std::fill(used, used + nt, 0);
  parallel_for(tasks, [&](int64_t b, int64_t e, int tid) {
    float* acc = tid == 0 ? dw : partial + (tid - 1) * dwsize;
    double* dbacc = dbpart + tid * g.K;
    std::fill(dbacc, dbacc + g.K, 0.0);
    for (int64_t t = b; t < e; ++t) {
      const int64_t n = t / nblk, p0 = (t % nblk) * pb, p1 = std::min(g.P, p0 + pb);
      const int64_t cols = (p1 - p0) * g.Q;
      const float* dyb = dy + n * g.K * g.PQ + p0 * g.Q;
      float* col = g.direct ? nullptr : scratch(tl_col, (size_t)(g.CRS * cols));
      int64_t ldb;
      const float* xb = columns(cp, g, x + n * g.C * g.HW, 0, g.C, p0, p1, col, false, &ldb);
      gemm_f32(false, true, g.K, g.CRS, cols, 1.0f, dyb, g.PQ, xb, ldb, t == b ? 0.0f : 1.0f,
               acc, g.CRS);
      if (db != nullptr) {
        for (int64_t k = 0; k < g.K; ++k) dbacc[k] += row_sum(dyb + k * g.PQ, cols);
      }
    }
    used[tid] = 1;
  });
  // dw += partials, in chunk order; split over elements only when worth waking the pool.
  auto reduce = [&](int64_t i0, int64_t i1, int) {
    for (int t = 1; t < nt; ++t)
      if (used[t])
        for (int64_t i = i0; i < i1; ++i) dw[i] += partial[(t - 1) * dwsize + i];
  };
  if (nt > 1 && (nt - 1) * dwsize >= (1 << 16)) {
    parallel_for(dwsize, reduce);
  } else if (nt > 1) {
    reduce(0, dwsize, 0);
  }
  if (db != nullptr) {
    for (int64_t k = 0; k < g.K; ++k) {
      double s = 0.0;
      for (int t = 0; t < nt; ++t)
        if (used[t]) s += dbpart[t * g.K + k];
      db[k] = (float)s;
    }
  }
}

void bwd_filter_channels(const Conv2dParams& cp, const Geo& g, const float* x,
                         const float* dy, float* dw) {
  parallel_for(g.C, [&](int64_t c0, int64_t c1, int) {
    const int64_t rows = (c1 - c0) * g.RS, pb = rows_per_block(rows, g, 1);
    bool first = true;
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t p0 = 0; p0 < g.P; p0 += pb) {
        const int64_t p1 = std::min(g.P, p0 + pb), cols = (p1 - p0) * g.Q;
        float* col = g.direct ? nullptr : scratch(tl_col, (size_t)(rows * cols));
        int64_t ldb;
        const float* xb = columns(cp, g, x + n * g.C * g.HW, c0, c1, p0, p1, col, false, &ldb);
        gemm_f32(false, true, g.K, rows, cols, 1.0f, dy + n * g.K * g.PQ + p0 * g.Q, g.PQ, xb,
                 ldb, first ? 0.0f : 1.0f, dw + c0 * g.RS, g.CRS);
        first = false;
      }
    }
  });
}

void bwd_filter_gemm(const Conv2dParams& cp, const Geo& g, int nt, const float* x,
                     const float* dy, float* dw) {
  const int64_t pb = rows_per_block(g.CRS, g, 1, nt * kBlockBytes);
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t p0 = 0; p0 < g.P; p0 += pb) {
      const int64_t p1 = std::min(g.P, p0 + pb), cols = (p1 - p0) * g.Q;
      float* col = g.direct ? nullptr : scratch(tl_col, (size_t)(g.CRS * cols));
      int64_t ldb;
      const float* xb = columns(cp, g, x + n * g.C * g.HW, 0, g.C, p0, p1, col, true, &ldb);
      gemm_f32(false, true, g.K, g.CRS, cols, 1.0f, dy + n * g.K * g.PQ + p0 * g.Q, g.PQ, xb,
               ldb, (n == 0 && p0 == 0) ? 0.0f : 1.0f, dw, g.CRS);
    }
  }
}

}  // namespace

void conv2d_bwd_filter(const Conv2dParams& cp, const float* x, const float* dy, float* dw,
                       float* db) {
  const Geo g(cp);
  if (g.K <= 0) return;
  if (g.N <= 0 || g.PQ <= 0) {
    std::fill(dw, dw + g.K * g.CRS, 0.0f);
    if (db != nullptr) std::fill(db, db + g.K, 0.0f);
    return;
  }
  if (g.CRS <= 0) {
    if (db != nullptr) bias_grad_by_channel(g, dy, db);
    return;
  }
  const int nt = threads_here();
  const int64_t partial_bytes = (int64_t)nt * g.K * g.CRS * (int64_t)sizeof(float);
  const int64_t tasks =
      g.N * ceil_div(g.P, rows_per_block(g.CRS, g, pieces_for_balance(g.N, g.P, nt)));
  Variant v = forced_variant();
  if (v == Variant::kAuto) {
    if (nt == 1 || (partial_bytes <= kSmallPartialBytes && tasks >= nt)) {
      v = Variant::kTiles;
    } else if (g.C >= nt) {
      v = Variant::kChannels;
    } else if (tasks >= nt && partial_bytes <= kMaxPartialBytes) {
      v = Variant::kTiles;
    } else {
      v = Variant::kGemm;
    }
  }
  if (v == Variant::kTiles) {
    bwd_filter_tiles(cp, g, nt, x, dy, dw, db);
    return;
  }
  if (v == Variant::kChannels) {
    bwd_filter_channels(cp, g, x, dy, dw);
  } else {
    bwd_filter_gemm(cp, g, nt, x, dy, dw);
  }
  if (db != nullptr) bias_grad_by_channel(g, dy, db);
}

}  // namespace imagerate
