// sgd.cc: SGD with momentum, weight decay and optional Nesterov, as PyTorch's torch.optim.SGD
// (dampening 0). Flat float32 arrays w (weights), g (gradients), v (momentum buffer), all n long.
//
// Per element:  g' = g + wd * w;  v = momentum * v + g';
//               w -= lr * (nesterov ? g' + momentum * v : v).
// With momentum == 0 the buffer is not read (v = g' is written), so an uninitialised buffer
// cannot inject NaN; this matches PyTorch, which keeps no buffer at momentum 0.
// Arithmetic is float32, like PyTorch's CPU path for float32 parameters.
// Threading: elementwise, parallel_for above kParallelMin elements.
#include "kernels.h"
#include "parallel.h"

namespace imagerate {
namespace {
constexpr int64_t kParallelMin = 1 << 15;
}  // namespace

void sgd_momentum_update(int64_t n, float lr, float momentum, float weight_decay, bool nesterov,
                         float* w, const float* g, float* v) {
  auto body = [&](int64_t b, int64_t e) {
    if (momentum == 0.f) {
      for (int64_t i = b; i < e; ++i) {
        const float gd = g[i] + weight_decay * w[i];
        v[i] = gd;
        w[i] -= lr * gd;
      }
      return;
    }
    for (int64_t i = b; i < e; ++i) {
      const float gd = g[i] + weight_decay * w[i];
      const float vi = momentum * v[i] + gd;
      v[i] = vi;
      w[i] -= lr * (nesterov ? gd + momentum * vi : vi);
    }
  };
  if (n < kParallelMin) {
    if (n > 0) body(0, n);
    return;
  }
  parallel_for(n, [&](int64_t b, int64_t e, int) { body(b, e); });
}

}  // namespace imagerate
