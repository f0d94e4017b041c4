// cuda_ops_norm.cc: the normalisation exports of imagerate_cuda.node: the checks of
// op_checks_norm.cc (the CPU addon's, message for message), then the kernel launched on the
// addon's stream (kernels/cuda/batchnorm.cu and lrn.cu).
//
// CUDA-only extras, batch norm fused with the ReLU after it (same arguments as their unfused
// forms; the backward takes the fused output y after x):
//   batchnorm2dFwdTrainRelu(...as batchnorm2dFwdTrain), batchnorm2dFwdEvalRelu(...as Eval)
//   batchnorm2dBwdRelu(outer, ch, inner, x, y, dy, gamma, saveMean, saveInvstd, dx | -1, dgamma, dbeta)
#include "cuda_addon.h"

namespace imagerate {

void CudaAddon::define_norm_ops(Napi::Object exports) {
  define(exports, kBatchnorm2dFwdTrain, [](const BnFwdTrainCall& c, const Launch& l) {
    return cuda::batchnorm2d_fwd_train(c.outer, c.ch, c.inner, c.eps, c.momentum, c.x, c.gamma, c.beta, c.y, c.save_mean,
                                       c.save_invstd, c.running_mean, c.running_var, l.stream);
  });
  define(exports, kBatchnorm2dFwdEval, [](const BnFwdEvalCall& c, const Launch& l) {
    return cuda::batchnorm2d_fwd_eval(c.outer, c.ch, c.inner, c.eps, c.x, c.gamma, c.beta, c.running_mean, c.running_var,
                                      c.y, l.stream);
  });
  define(exports, kBatchnorm2dBwd, [](const BnBwdCall& c, const Launch& l) {
    return cuda::batchnorm2d_bwd(c.outer, c.ch, c.inner, c.x, c.dy, c.gamma, c.save_mean, c.save_invstd, c.dx, c.dgamma,
                                 c.dbeta, l.stream);
  });
  define(exports, kLrnFwd, [](const LrnCall& c, const Launch& l) {
    return cuda::lrn_fwd(c.n, c.c, c.hw, c.radius, c.bias, c.alpha, c.beta, c.x, c.y, c.scale, l.stream);
  });
  define(exports, kLrnBwd, [](const LrnCall& c, const Launch& l) {
    return cuda::lrn_bwd(c.n, c.c, c.hw, c.radius, c.bias, c.alpha, c.beta, c.x, c.y, c.scale, c.dy, c.dx, l.stream);
  });
  // Fused with the ReLU after it (CUDA only).
  define(exports, kBatchnorm2dFwdTrainRelu, [](const BnFwdTrainCall& c, const Launch& l) {
    return cuda::batchnorm2d_fwd_train_relu(c.outer, c.ch, c.inner, c.eps, c.momentum, c.x, c.gamma, c.beta, c.y,
                                            c.save_mean, c.save_invstd, c.running_mean, c.running_var, l.stream);
  });
  define(exports, kBatchnorm2dFwdEvalRelu, [](const BnFwdEvalCall& c, const Launch& l) {
    return cuda::batchnorm2d_fwd_eval_relu(c.outer, c.ch, c.inner, c.eps, c.x, c.gamma, c.beta, c.running_mean,
                                           c.running_var, c.y, l.stream);
  });
  define(exports, kBatchnorm2dBwdRelu, [](const BnBwdCall& c, const Launch& l) {
    return cuda::batchnorm2d_bwd_relu(c.outer, c.ch, c.inner, c.x, c.y, c.dy, c.gamma, c.save_mean, c.save_invstd, c.dx,
                                      c.dgamma, c.dbeta, l.stream);
  });
}

}  // namespace imagerate
