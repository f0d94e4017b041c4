// softmax_xent.cc: softmax + cross-entropy with label smoothing (kernels.h, "loss").
//
// Layout: logits/probs/dlogits are [N, C] row-major float32, labels int32 [N], loss [N].
// Targets t_ij = (1 - eps) * [j == label_i] + eps / C.
//
// Forward, per row (all in double): m = max_j x_j; s = sum_j exp(x_j - m);
// logZ = m + log(s); probs_j = exp(x_j - m) / s; and the loss from log-probabilities
// (x_j - logZ), never from log(probs), so it stays finite when a probability underflows:
//   loss_i = (1 - eps) * (logZ - x_label) + eps * (logZ - mean_j x_j).
// Backward: dlogits_ij = scale * (probs_ij - t_ij).
//
// probs may alias logits and dlogits may alias probs (each row reads what it needs first).
// Threading: rows are independent; parallel_for over rows when N*C is large.
// A label outside [0, C) cannot be caught before the kernel runs (the labels live in a
// buffer filled by an earlier upload), so the kernel writes NaN for that row and, after the
// parallel region has finished, throws std::out_of_range naming the first bad row.
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "parallel.h"

namespace imagerate {
namespace {

constexpr int64_t kParallelMin = 1 << 15;  // elements (N*C) below which one thread is faster

template <typename Fn>
void for_rows(int64_t rows, int64_t cols, Fn&& fn) {
  if (rows * cols < kParallelMin) {
    fn(int64_t{0}, rows);
    return;
  }
  parallel_for(rows, [&](int64_t b, int64_t e, int) { fn(b, e); });
}

// Keeps the smallest bad row index seen by any thread (-1 = none).
void note_bad_row(std::atomic<int64_t>& first_bad, int64_t row) {
  int64_t cur = first_bad.load(std::memory_order_relaxed);
  while ((cur < 0 || row < cur) &&
         !first_bad.compare_exchange_weak(cur, row, std::memory_order_relaxed)) {
  }
}

[[noreturn]] void throw_bad_label(int64_t row, int32_t label, int64_t C) {
  throw std::out_of_range("label " + std::to_string(label) + " at row " + std::to_string(row) +
                          " is outside [0, " + std::to_string(C) + ")");
}

}  // namespace

void softmax_xent_fwd(int64_t N, int64_t C, float eps, const float* logits, const int32_t* labels,
                      float* probs, float* loss) {
  std::atomic<int64_t> first_bad{-1};
  const double e = eps;
  for_rows(N, C, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const float* x = logits + i * C;
      float* pr = probs + i * C;
      const int32_t y = labels[i];
      const bool bad_label = y < 0 || y >= C;
      const double x_label = bad_label ? 0.0 : (double)x[y];  // read before probs (may alias x) is written
      float m = x[0];
      for (int64_t j = 1; j < C; ++j) m = x[j] > m ? x[j] : m;
      double s = 0, sum_x = 0;
      for (int64_t j = 0; j < C; ++j) {
        const double xj = x[j];
        const double ex = std::exp(xj - (double)m);
        pr[j] = (float)ex;  // unnormalised for now
        s += ex;
        sum_x += xj;
      }
      const double inv_s = 1.0 / s;
      for (int64_t j = 0; j < C; ++j) pr[j] = (float)((double)pr[j] * inv_s);
      const double log_z = (double)m + std::log(s);
      if (bad_label) {
        loss[i] = NAN;
        note_bad_row(first_bad, i);
        continue;
      }
      loss[i] = (float)((1.0 - e) * (log_z - x_label) + e * (log_z - sum_x / (double)C));
    }
  });
  const int64_t bad = first_bad.load();
  if (bad >= 0) throw_bad_label(bad, labels[bad], C);
}

void softmax_xent_bwd(int64_t N, int64_t C, float eps, float scale, const float* probs,
                      const int32_t* labels, float* dlogits) {
  std::atomic<int64_t> first_bad{-1};
  const float off = eps / (float)C;         // t_ij for j != label
  const float on = (1.f - eps) + off;       // t_ij for j == label
  for_rows(N, C, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const float* pr = probs + i * C;
      float* d = dlogits + i * C;
      const int32_t y = labels[i];
      if (y < 0 || y >= C) {
        for (int64_t j = 0; j < C; ++j) d[j] = NAN;
        note_bad_row(first_bad, i);
        continue;
      }
      const float p_label = pr[y];  // read before dlogits (may alias probs) is written
      for (int64_t j = 0; j < C; ++j) d[j] = scale * (pr[j] - off);
      d[y] = scale * (p_label - on);
    }
  });
  const int64_t bad = first_bad.load();
  if (bad >= 0) throw_bad_label(bad, labels[bad], C);
}

}  // namespace imagerate
