// cuda_ops_nn.cc: the gemm, conv2d and pool2d exports of imagerate_cuda.node: the checks of
// op_checks_nn.cc (the CPU addon's, message for message), then the kernel of
// kernels/cuda/kernels.cuh launched on the addon's stream. GEMM and conv run in the math mode
// set by setMathMode() (fp32 unless asked).
//
// CUDA-only extras:
//   gemmKernelName(transA, transB, m, n, k, alpha) -> the kernel gemm would launch now
//   conv2dFwdBiasRelu(p, x, w, bias | -1, y)      -> y = relu(conv2d(x, w) + bias), one pass
#include "cuda_addon.h"

namespace imagerate {

namespace {
cuda::Conv2dParams conv(const Conv2dShape& s) { return kernel_params<cuda::Conv2dParams>(s); }
cuda::Pool2dParams pool(const Pool2dShape& s) { return kernel_params<cuda::Pool2dParams>(s); }
}  // namespace

void CudaAddon::define_nn_ops(Napi::Object exports) {
  define(exports, kGemm, [](const GemmCall& c, const Launch& l) {
    return cuda::gemm_f32(c.ta, c.tb, c.m, c.n, c.k, c.alpha, c.a, c.lda, c.b, c.ldb, c.beta, c.c, c.ldc, l.mode, l.stream);
  });
  define(exports, kConv2dFwd, [](const Conv2dFwdCall& c, const Launch& l) {
    return cuda::conv2d_fwd(conv(c.cp), c.x, c.w, c.bias, c.y, l.mode, l.stream);
  });
  define(exports, kConv2dFwdBiasRelu, [](const Conv2dFwdCall& c, const Launch& l) {
    return cuda::conv2d_fwd_bias_relu(conv(c.cp), c.x, c.w, c.bias, c.y, l.mode, l.stream);
  });
  define(exports, kConv2dBwdData, [](const Conv2dBwdDataCall& c, const Launch& l) {
    return cuda::conv2d_bwd_data(conv(c.cp), c.dy, c.w, c.dx, l.mode, l.stream);
  });
  define(exports, kConv2dBwdFilter, [](const Conv2dBwdFilterCall& c, const Launch& l) {
    return cuda::conv2d_bwd_filter(conv(c.cp), c.x, c.dy, c.dw, c.db, l.mode, l.stream);
  });
  define(exports, kMaxpool2dFwd, [](const Maxpool2dFwdCall& c, const Launch& l) {
    return cuda::maxpool2d_fwd(pool(c.pp), c.x, c.y, c.argmax, l.stream);
  });
  define(exports, kMaxpool2dBwd, [](const Maxpool2dBwdCall& c, const Launch& l) {
    return cuda::maxpool2d_bwd(pool(c.pp), c.dy, c.argmax, c.dx, l.stream);
  });
  define(exports, kAvgpool2dFwd, [](const Pool2dCall& c, const Launch& l) {
    return cuda::avgpool2d_fwd(pool(c.pp), c.in, c.out, l.stream);
  });
  define(exports, kAvgpool2dBwd, [](const Pool2dCall& c, const Launch& l) {
    return cuda::avgpool2d_bwd(pool(c.pp), c.in, c.out, l.stream);
  });
}

Napi::Value CudaAddon::GemmKernelName(const Napi::CallbackInfo& info) {
  Args a(info, "gemmKernelName", 6);
  const bool ta = a.flag(0, "transA"), tb = a.flag(1, "transB");
  const int64_t m = a.dim(2, "m"), n = a.dim(3, "n"), k = a.dim(4, "k");
  const float alpha = (float)a.number(5, "alpha");
  stream(a);  // the answer depends on the current device
  return Napi::String::New(info.Env(), cuda::gemm_kernel_name(ta, tb, m, n, k, alpha, math()));
}

}  // namespace imagerate
