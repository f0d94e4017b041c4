// cpu_ops_nn.cc: the gemm, conv2d and pool2d exports of imagerate_cpu.node: the checks of
// op_checks_nn.cc (argument lists, output-size formulas, byte needs, aliasing), then the
// kernel of kernels.h queued on the stream.
#include "cpu_addon.h"
#include "kernels.h"

namespace imagerate {

void CpuAddon::define_nn_ops(Napi::Object exports) {
  define(exports, kGemm, [](const GemmCall& c) {
    gemm_f32(c.ta, c.tb, c.m, c.n, c.k, c.alpha, c.a, c.lda, c.b, c.ldb, c.beta, c.c, c.ldc);
  });
  define(exports, kConv2dFwd, [](const Conv2dFwdCall& c) {
    conv2d_fwd(kernel_params<Conv2dParams>(c.cp), c.x, c.w, c.bias, c.y);
  });
  define(exports, kConv2dBwdData, [](const Conv2dBwdDataCall& c) {
    conv2d_bwd_data(kernel_params<Conv2dParams>(c.cp), c.dy, c.w, c.dx);
  });
  define(exports, kConv2dBwdFilter, [](const Conv2dBwdFilterCall& c) {
    conv2d_bwd_filter(kernel_params<Conv2dParams>(c.cp), c.x, c.dy, c.dw, c.db);
  });
  define(exports, kMaxpool2dFwd, [](const Maxpool2dFwdCall& c) {
    maxpool2d_fwd(kernel_params<Pool2dParams>(c.pp), c.x, c.y, c.argmax);
  });
  define(exports, kMaxpool2dBwd, [](const Maxpool2dBwdCall& c) {
    maxpool2d_bwd(kernel_params<Pool2dParams>(c.pp), c.dy, c.argmax, c.dx);
  });
  define(exports, kAvgpool2dFwd, [](const Pool2dCall& c) { avgpool2d_fwd(kernel_params<Pool2dParams>(c.pp), c.in, c.out); });
  define(exports, kAvgpool2dBwd, [](const Pool2dCall& c) { avgpool2d_bwd(kernel_params<Pool2dParams>(c.pp), c.in, c.out); });
}

}  // namespace imagerate
