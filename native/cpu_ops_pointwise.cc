// cpu_ops_pointwise.cc: the elementwise, loss and optimiser exports of imagerate_cpu.node: the
// checks of op_checks_pointwise.cc (argument lists, byte needs, aliasing), then the kernel
// queued on the stream (kernels/cpu/elementwise.cc, softmax_xent.cc, sgd.cc).
#include "cpu_addon.h"
#include "kernels.h"

namespace imagerate {

void CpuAddon::define_pointwise_ops(Napi::Object exports) {
  define(exports, kBiasAdd, [](const BiasAddCall& c) { bias_add(c.outer, c.ch, c.inner, c.x, c.b, c.y); });
  define(exports, kBiasGrad, [](const BiasGradCall& c) { bias_grad(c.outer, c.ch, c.inner, c.dy, c.db); });
  define(exports, kReluFwd, [](const UnaryCall& c) { relu_fwd(c.n, c.x, c.y); });
  define(exports, kReluBwd, [](const ReluBwdCall& c) { relu_bwd(c.n, c.y, c.dy, c.dx); });
  define(exports, kAdd, [](const BinaryCall& c) { add_f32(c.n, c.a, c.b, c.y); });
  define(exports, kMul, [](const BinaryCall& c) { mul_f32(c.n, c.a, c.b, c.y); });
  define(exports, kAxpby, [](const AxpbyCall& c) { axpby_f32(c.n, c.alpha, c.x, c.beta, c.y); });
  define(exports, kScale, [](const AxpbyCall& c) { scale_f32(c.n, c.alpha, c.x, c.y); });
  define(exports, kFill, [](const FillCall& c) { fill_f32(c.n, c.value, c.y); });
  define(exports, kDropoutFwd, [](const DropoutFwdCall& c) { dropout_fwd(c.n, c.p, c.seed, c.x, c.mask, c.y); });
  define(exports, kSumsqCheck, [](const SumsqCheckCall& c) { sumsq_check(c.n, c.x, c.out); });
  define(exports, kSoftmaxXentFwd, [](const SoftmaxXentFwdCall& c) {
    softmax_xent_fwd(c.n, c.c, c.eps, c.logits, c.labels, c.probs, c.loss);
  });
  define(exports, kSoftmaxXentBwd, [](const SoftmaxXentBwdCall& c) {
    softmax_xent_bwd(c.n, c.c, c.eps, c.scale, c.probs, c.labels, c.dlogits);
  });
  define(exports, kSgdUpdate, [](const SgdUpdateCall& c) {
    sgd_momentum_update(c.n, c.lr, c.momentum, c.weight_decay, c.nesterov, c.w, c.g, c.v);
  });
}

}  // namespace imagerate
