// cpu_ops_norm.cc: the normalisation exports of imagerate_cpu.node: the checks of
// op_checks_norm.cc (argument lists, byte needs, aliasing), then the kernel queued on the
// stream (kernels/cpu/batchnorm.cc and lrn.cc).
#include "cpu_addon.h"
#include "kernels.h"

namespace imagerate {

void CpuAddon::define_norm_ops(Napi::Object exports) {
  define(exports, kBatchnorm2dFwdTrain, [](const BnFwdTrainCall& c) {
    batchnorm2d_fwd_train(c.outer, c.ch, c.inner, c.eps, c.momentum, c.x, c.gamma, c.beta, c.y, c.save_mean,
                          c.save_invstd, c.running_mean, c.running_var);
  });
  define(exports, kBatchnorm2dFwdEval, [](const BnFwdEvalCall& c) {
    batchnorm2d_fwd_eval(c.outer, c.ch, c.inner, c.eps, c.x, c.gamma, c.beta, c.running_mean, c.running_var, c.y);
  });
  define(exports, kBatchnorm2dBwd, [](const BnBwdCall& c) {
    batchnorm2d_bwd(c.outer, c.ch, c.inner, c.x, c.dy, c.gamma, c.save_mean, c.save_invstd, c.dx, c.dgamma, c.dbeta);
  });
  define(exports, kLrnFwd, [](const LrnCall& c) {
    lrn_fwd(c.n, c.c, c.hw, c.radius, c.bias, c.alpha, c.beta, c.x, c.y, c.scale);
  });
  define(exports, kLrnBwd, [](const LrnCall& c) {
    lrn_bwd(c.n, c.c, c.hw, c.radius, c.bias, c.alpha, c.beta, c.x, c.y, c.scale, c.dy, c.dx);
  });
}

}  // namespace imagerate
