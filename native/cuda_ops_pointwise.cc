// cuda_ops_pointwise.cc: the elementwise, loss and optimiser exports of imagerate_cuda.node:
// the checks of op_checks_pointwise.cc (the CPU addon's, message for message), then the kernel
// launched on the addon's stream (kernels/cuda/elementwise.cu, softmax_xent.cu, sgd.cu).
//
// A label outside [0, C) cannot throw from a GPU kernel: softmaxXentFwd/Bwd give that row NaN
// and count it in the op's fault slot (kernels.cuh, "Faults"), so the next sync() or download()
// rejects with the CPU addon's kind of message (cuda_memory.cc).
#include "cuda_addon.h"

namespace imagerate {

void CudaAddon::define_pointwise_ops(Napi::Object exports) {
  define(exports, kBiasAdd, [](const BiasAddCall& c, const Launch& l) {
    return cuda::bias_add(c.outer, c.ch, c.inner, c.x, c.b, c.y, l.stream);
  });
  define(exports, kBiasGrad, [](const BiasGradCall& c, const Launch& l) {
    return cuda::bias_grad(c.outer, c.ch, c.inner, c.dy, c.db, l.stream);
  });
  define(exports, kReluFwd, [](const UnaryCall& c, const Launch& l) { return cuda::relu_fwd(c.n, c.x, c.y, l.stream); });
  define(exports, kReluBwd, [](const ReluBwdCall& c, const Launch& l) { return cuda::relu_bwd(c.n, c.y, c.dy, c.dx, l.stream); });
  define(exports, kAdd, [](const BinaryCall& c, const Launch& l) { return cuda::add_f32(c.n, c.a, c.b, c.y, l.stream); });
  define(exports, kMul, [](const BinaryCall& c, const Launch& l) { return cuda::mul_f32(c.n, c.a, c.b, c.y, l.stream); });
  define(exports, kAxpby, [](const AxpbyCall& c, const Launch& l) {
    return cuda::axpby_f32(c.n, c.alpha, c.x, c.beta, c.y, l.stream);
  });
  define(exports, kScale, [](const AxpbyCall& c, const Launch& l) { return cuda::scale_f32(c.n, c.alpha, c.x, c.y, l.stream); });
  define(exports, kFill, [](const FillCall& c, const Launch& l) { return cuda::fill_f32(c.n, c.value, c.y, l.stream); });
  define(exports, kDropoutFwd, [](const DropoutFwdCall& c, const Launch& l) {
    return cuda::dropout_fwd(c.n, c.p, c.seed, c.x, c.mask, c.y, l.stream);
  });
  define(exports, kSumsqCheck, [](const SumsqCheckCall& c, const Launch& l) { return cuda::sumsq_check(c.n, c.x, c.out, l.stream); });
  define_op(exports, kSoftmaxXentFwd, *this, [this](const Args& a, const SoftmaxXentFwdCall& c) {
    uint32_t* fault = fault_slot(a, cuda::kFaultXentFwd);
    launch(a, [c, fault](cudaStream_t s) {
      return cuda::softmax_xent_fwd(c.n, c.c, c.eps, c.logits, c.labels, c.probs, c.loss, fault, s);
    });
  });
  define_op(exports, kSoftmaxXentBwd, *this, [this](const Args& a, const SoftmaxXentBwdCall& c) {
    uint32_t* fault = fault_slot(a, cuda::kFaultXentBwd);
    launch(a, [c, fault](cudaStream_t s) {
      return cuda::softmax_xent_bwd(c.n, c.c, c.eps, c.scale, c.probs, c.labels, c.dlogits, fault, s);
    });
  });
  define(exports, kSgdUpdate, [](const SgdUpdateCall& c, const Launch& l) {
    return cuda::sgd_momentum_update(c.n, c.lr, c.momentum, c.weight_decay, c.nesterov, c.w, c.g, c.v, l.stream);
  });
  // The learning rate and the dropout seed read from device memory: what a training step
  // captured into a CUDA graph uses, so each replay takes the values the host wrote before it.
  define(exports, kSgdUpdateDeviceLr, [](const SgdUpdateCall& c, const Launch& l) {
    return cuda::sgd_momentum_update_device_lr(c.n, c.lr_dev, c.momentum, c.weight_decay, c.nesterov, c.w, c.g, c.v,
                                               l.stream);
  });
  define(exports, kDropoutFwdDeviceSeed, [](const DropoutFwdCall& c, const Launch& l) {
    return cuda::dropout_fwd_device_seed(c.n, c.p, c.seed_dev, c.x, c.mask, c.y, l.stream);
  });
}

}  // namespace imagerate
