// elementwise.cc: the pointwise and per-channel CPU kernels of kernels.h (bias add/grad,
// ReLU, add/mul/axpby/scale/fill, inverted dropout, sum-of-squares check).
//
// Layouts: flat float32 arrays; bias_add/bias_grad see a tensor as [outer, ch, inner]
// (NCHW: outer = N, ch = C, inner = H*W; a [rows, cols] matrix: outer = rows, ch = cols,
// inner = 1). Every pointwise kernel reads element i before writing element i, so y may
// alias any input (in-place use is allowed).
//
// Threading: below kParallelMin elements a kernel runs on the calling thread; above it the
// range is split into contiguous chunks with parallel_for. Reductions (bias_grad,
// sumsq_check) accumulate in double per block, with a block count set by the size alone, and
// combine blocks in order: the result is bitwise the same for any thread count.
//
// Dropout uses a counter-based hash (splitmix64 of seed + (i+1)*golden), so mask element i
// depends only on (seed, i, p): the same on every machine and for every thread count.
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace imagerate {
namespace {

constexpr int64_t kParallelMin = 1 << 15;  // ~32K elements: below this threads cost more than they save

// Runs fn(begin, end) over [0, n): serially when small, else in parallel chunks.
template <typename Fn>
void for_range(int64_t n, Fn&& fn) {
  if (n < kParallelMin) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  parallel_for(n, [&](int64_t b, int64_t e, int) { fn(b, e); });
}

// Reductions split their range into a block count that depends on the size only (never on
// the thread count), so their rounding, and hence their result, is the same for any pool size.
int64_t reduction_blocks(int64_t n, int64_t items) {
  int64_t b = n / kParallelMin;
  if (b > 256) b = 256;
  if (b > items) b = items;
  return b < 1 ? 1 : b;
}

// Runs fn(block) for block in [0, nblocks), in parallel when there is more than one.
template <typename Fn>
void for_blocks(int64_t nblocks, Fn&& fn) {
  if (nblocks == 1) {
    fn(int64_t{0});
    return;
  }
  parallel_for(nblocks, [&](int64_t b, int64_t e, int) {
    for (int64_t k = b; k < e; ++k) fn(k);
  });
}

inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

void bias_add(int64_t outer, int64_t ch, int64_t inner, const float* x, const float* b, float* y) {
  const int64_t rows = outer * ch;  // one "row" = the inner block of one (outer, channel) pair
  auto body = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float bv = b[r % ch];
      const float* xr = x + r * inner;
      float* yr = y + r * inner;
      for (int64_t i = 0; i < inner; ++i) yr[i] = xr[i] + bv;
    }
  };
  if (rows * inner < kParallelMin) body(0, rows);
  else parallel_for(rows, [&](int64_t b0, int64_t b1, int) { body(b0, b1); });
}

void bias_grad(int64_t outer, int64_t ch, int64_t inner, const float* dy, float* db) {
  // Partials: one row of ch doubles per block of `outer`, summed in block order afterwards.
  const int64_t total = outer * ch * inner;
  const int64_t nblocks = reduction_blocks(total, outer);
  std::vector<double> part((size_t)(nblocks * ch), 0.0);  // allocated outside any parallel region
  if (inner == 1) {  // [rows, cols]: each block walks whole rows (contiguous)
    for_blocks(nblocks, [&](int64_t blk) {
      double* acc = part.data() + blk * ch;
      for (int64_t o = outer * blk / nblocks, o1 = outer * (blk + 1) / nblocks; o < o1; ++o) {
        const float* d = dy + o * ch;
        for (int64_t c = 0; c < ch; ++c) acc[c] += d[c];
      }
    });
  } else {  // NCHW: work items are (block of outer, channel), so N = 1 still spreads over channels
    auto item = [&](int64_t it) {
      const int64_t blk = it / ch, c = it % ch;
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // 4 accumulators for instruction-level parallelism
      for (int64_t o = outer * blk / nblocks, o1 = outer * (blk + 1) / nblocks; o < o1; ++o) {
        const float* dc = dy + (o * ch + c) * inner;
        int64_t i = 0;
        for (; i + 4 <= inner; i += 4) {
          s0 += dc[i];
          s1 += dc[i + 1];
          s2 += dc[i + 2];
          s3 += dc[i + 3];
        }
        for (; i < inner; ++i) s0 += dc[i];
      }
      part[(size_t)it] = (s0 + s1) + (s2 + s3);
    };
    if (total < kParallelMin) {
      for (int64_t it = 0; it < nblocks * ch; ++it) item(it);
    } else {
      for_blocks(nblocks * ch, item);
    }
  }
  for (int64_t c = 0; c < ch; ++c) {
    double s = 0;
    for (int64_t k = 0; k < nblocks; ++k) s += part[(size_t)(k * ch + c)];
    db[c] = (float)s;
  }
}

void relu_fwd(int64_t n, const float* x, float* y) {
  // x < 0 ? 0 : x keeps NaN as NaN (a diverging run stays visible to sumsq_check).
  for_range(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = x[i] < 0.f ? 0.f : x[i];
  });
}

void relu_bwd(int64_t n, const float* y, const float* dy, float* dx) {
  for_range(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] = y[i] > 0.f ? dy[i] : 0.f;
  });
}

void add_f32(int64_t n, const float* a, const float* b, float* y) {
  for_range(n, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] = a[i] + b[i];
  });
}

void mul_f32(int64_t n, const float* a, const float* b, float* y) {
  for_range(n, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] = a[i] * b[i];
  });
}

void axpby_f32(int64_t n, float alpha, const float* x, float beta, float* y) {
  // beta == 0 ignores y's old contents (like GEMM's beta): NaN garbage in y cannot leak through.
  if (beta == 0.f) {
    for_range(n, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) y[i] = alpha * x[i];
    });
    return;
  }
  for_range(n, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] = alpha * x[i] + beta * y[i];
  });
}

void scale_f32(int64_t n, float alpha, const float* x, float* y) {
  for_range(n, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] = alpha * x[i];
  });
}

void fill_f32(int64_t n, float value, float* y) {
  for_range(n, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] = value;
  });
}

void dropout_fwd(int64_t n, float p, uint64_t seed, const float* x, float* mask, float* y) {
  // keep element i iff u_i >= p, with u_i = top 24 bits of the hash / 2^24, uniform in [0, 1).
  // p == 1 drops everything (mask 0, never inf); p == 0 keeps everything with mask 1.
  const float keep_scale = p < 1.f ? 1.f / (1.f - p) : 0.f;
  const uint64_t golden = 0x9E3779B97F4A7C15ull;
  for_range(n, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      const uint64_t h = splitmix64(seed + (uint64_t)(i + 1) * golden);
      const float u = (float)(h >> 40) * (1.0f / 16777216.0f);
      const float m = u >= p ? keep_scale : 0.f;
      const float xi = x[i];  // read before writing: x may alias mask or y
      mask[i] = m;
      y[i] = xi * m;
    }
  });
}

void sumsq_check(int64_t n, const float* x, double* out) {
  const int64_t nblocks = reduction_blocks(n, n);
  std::vector<double> sums((size_t)nblocks, 0.0), bad((size_t)nblocks, 0.0);
  for_blocks(nblocks, [&](int64_t blk) {
    const int64_t b = n * blk / nblocks, e = n * (blk + 1) / nblocks;
    double s0 = 0, s1 = 0;
    int64_t nonfinite = 0;
    int64_t i = b;
    for (; i + 2 <= e; i += 2) {
      const double v0 = x[i], v1 = x[i + 1];
      s0 += v0 * v0;
      s1 += v1 * v1;
      nonfinite += !std::isfinite(x[i]) + !std::isfinite(x[i + 1]);
    }
    for (; i < e; ++i) {
      s0 += (double)x[i] * (double)x[i];
      nonfinite += !std::isfinite(x[i]);
    }
    sums[(size_t)blk] = s0 + s1;
    bad[(size_t)blk] = (double)nonfinite;
  });
  double s = 0, nb = 0;
  for (int64_t k = 0; k < nblocks; ++k) {
    s += sums[(size_t)k];
    nb += bad[(size_t)k];
  }
  out[0] = s;  // includes non-finite values: inf/NaN in x make the sum inf/NaN too
  out[1] = nb;
}

}  // namespace imagerate
