// cuda_ops_nn.cc: the gemm, conv2d and pool2d exports of imagerate_cuda.node. Arguments and
// checks are those of cpu_ops_nn.cc (same order, same messages); then the kernel of
// kernels/cuda/kernels.cuh is launched on the addon's stream. GEMM and conv run in the math
// mode set by setMathMode() (fp32 unless asked).
//
// CUDA-only extras:
//   gemmKernelName(transA, transB, m, n, k, alpha) -> the kernel gemm would launch now
//   conv2dFwdBiasRelu(p, x, w, bias | -1, y)      -> y = relu(conv2d(x, w) + bias), one pass
#include "cuda_addon.h"

namespace imagerate {

Napi::Value CudaAddon::Gemm(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "gemm", 13);
  const bool ta = a.flag(0, "transA"), tb = a.flag(1, "transB");
  const int64_t m = a.dim(2, "m"), n = a.dim(3, "n"), k = a.dim(4, "k");
  const float alpha = (float)a.number(5, "alpha");
  const Buf A = buf(a, 6, "a");
  const int64_t lda = a.dim(7, "lda");
  const Buf B = buf(a, 8, "b");
  const int64_t ldb = a.dim(9, "ldb");
  const float beta = (float)a.number(10, "beta");
  const Buf C = buf(a, 11, "c");
  const int64_t ldc = a.dim(12, "ldc");
  // Stored shapes: A is m x k (k x m when transA), B is k x n (n x k when transB), C is m x n.
  const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  if (lda < a_cols) a.fail("lda is " + std::to_string(lda) + ", needs at least " + std::to_string(a_cols));
  if (ldb < b_cols) a.fail("ldb is " + std::to_string(ldb) + ", needs at least " + std::to_string(b_cols));
  if (ldc < n) a.fail("ldc is " + std::to_string(ldc) + ", needs at least " + std::to_string(n));
  a.need(A, "a", a.span(a_rows, lda, a_cols));
  a.need(B, "b", a.span(b_rows, ldb, b_cols));
  a.need(C, "c", a.span(m, ldc, n));
  a.distinct(C, "c", A, "a");
  a.distinct(C, "c", B, "b");
  const float *pa = A.f32(), *pb = B.f32();
  float* pc = C.f32();
  const cuda::MathMode mode = math();
  launch(a, [=](cudaStream_t s) { return cuda::gemm_f32(ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, mode, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::GemmKernelName(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "gemmKernelName", 6);
  const bool ta = a.flag(0, "transA"), tb = a.flag(1, "transB");
  const int64_t m = a.dim(2, "m"), n = a.dim(3, "n"), k = a.dim(4, "k");
  const float alpha = (float)a.number(5, "alpha");
  stream(a);  // the answer depends on the current device
  return Napi::String::New(info.Env(), cuda::gemm_kernel_name(ta, tb, m, n, k, alpha, math()));
}

// conv2dFwd and conv2dFwdBiasRelu share their checks.
CudaAddon::ConvFwdCall CudaAddon::conv_fwd_args(const CudaArgs& a) {
  const cuda::Conv2dParams cp = conv_params(a, 0);
  const Buf x = buf(a, 1, "x"), w = buf(a, 2, "w"), bias = opt_buf(a, 3, "bias"), y = buf(a, 4, "y");
  a.need(x, "x", a.bytes({cp.n, cp.c, cp.h, cp.w}));
  a.need(w, "w", a.bytes({cp.k, cp.c, cp.r, cp.s}));
  if (bias.ptr) a.need(bias, "bias", a.bytes({cp.k}));
  a.need(y, "y", a.bytes({cp.n, cp.k, cp.p, cp.q}));
  a.distinct(y, "y", x, "x");
  a.distinct(y, "y", w, "w");
  a.distinct(y, "y", bias, "bias");
  return ConvFwdCall{cp, x.f32(), w.f32(), bias.f32(), y.f32()};
}

Napi::Value CudaAddon::Conv2dFwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "conv2dFwd", 5);
  const ConvFwdCall f = conv_fwd_args(a);
  const cuda::MathMode mode = math();
  launch(a, [=](cudaStream_t s) { return cuda::conv2d_fwd(f.cp, f.x, f.w, f.bias, f.y, mode, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Conv2dFwdBiasRelu(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "conv2dFwdBiasRelu", 5);
  const ConvFwdCall f = conv_fwd_args(a);
  const cuda::MathMode mode = math();
  launch(a, [=](cudaStream_t s) { return cuda::conv2d_fwd_bias_relu(f.cp, f.x, f.w, f.bias, f.y, mode, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Conv2dBwdData(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "conv2dBwdData", 4);
  const cuda::Conv2dParams cp = conv_params(a, 0);
  const Buf dy = buf(a, 1, "dy"), w = buf(a, 2, "w"), dx = buf(a, 3, "dx");
  a.need(dy, "dy", a.bytes({cp.n, cp.k, cp.p, cp.q}));
  a.need(w, "w", a.bytes({cp.k, cp.c, cp.r, cp.s}));
  a.need(dx, "dx", a.bytes({cp.n, cp.c, cp.h, cp.w}));
  a.distinct(dx, "dx", dy, "dy");
  a.distinct(dx, "dx", w, "w");
  const float *pdy = dy.f32(), *pw = w.f32();
  float* pdx = dx.f32();
  const cuda::MathMode mode = math();
  launch(a, [=](cudaStream_t s) { return cuda::conv2d_bwd_data(cp, pdy, pw, pdx, mode, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Conv2dBwdFilter(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "conv2dBwdFilter", 5);
  const cuda::Conv2dParams cp = conv_params(a, 0);
  const Buf x = buf(a, 1, "x"), dy = buf(a, 2, "dy"), dw = buf(a, 3, "dw"), db = opt_buf(a, 4, "db");
  a.need(x, "x", a.bytes({cp.n, cp.c, cp.h, cp.w}));
  a.need(dy, "dy", a.bytes({cp.n, cp.k, cp.p, cp.q}));
  a.need(dw, "dw", a.bytes({cp.k, cp.c, cp.r, cp.s}));
  if (db.ptr) a.need(db, "db", a.bytes({cp.k}));
  a.distinct(dw, "dw", x, "x");
  a.distinct(dw, "dw", dy, "dy");
  a.distinct(db, "db", x, "x");
  a.distinct(db, "db", dy, "dy");
  a.distinct(db, "db", dw, "dw");
  const float *px = x.f32(), *pdy = dy.f32();
  float *pdw = dw.f32(), *pdb = db.f32();
  const cuda::MathMode mode = math();
  launch(a, [=](cudaStream_t s) { return cuda::conv2d_bwd_filter(cp, px, pdy, pdw, pdb, mode, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Maxpool2dFwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "maxpool2dFwd", 4);
  const cuda::Pool2dParams pp = pool_params(a, 0);
  const Buf x = buf(a, 1, "x"), y = buf(a, 2, "y"), am = buf(a, 3, "argmax");
  a.need(x, "x", a.bytes({pp.n, pp.c, pp.h, pp.w}));
  a.need(y, "y", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.need(am, "argmax", a.bytes({pp.n, pp.c, pp.p, pp.q}));  // int32
  a.distinct(y, "y", x, "x");
  a.distinct(am, "argmax", x, "x");
  a.distinct(am, "argmax", y, "y");
  const float* px = x.f32();
  float* py = y.f32();
  int32_t* pam = am.i32();
  launch(a, [=](cudaStream_t s) { return cuda::maxpool2d_fwd(pp, px, py, pam, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Maxpool2dBwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "maxpool2dBwd", 4);
  const cuda::Pool2dParams pp = pool_params(a, 0);
  const Buf dy = buf(a, 1, "dy"), am = buf(a, 2, "argmax"), dx = buf(a, 3, "dx");
  a.need(dy, "dy", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.need(am, "argmax", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.need(dx, "dx", a.bytes({pp.n, pp.c, pp.h, pp.w}));
  a.distinct(dx, "dx", dy, "dy");
  a.distinct(dx, "dx", am, "argmax");
  const float* pdy = dy.f32();
  const int32_t* pam = am.i32();
  float* pdx = dx.f32();
  launch(a, [=](cudaStream_t s) { return cuda::maxpool2d_bwd(pp, pdy, pam, pdx, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Avgpool2dFwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "avgpool2dFwd", 3);
  const cuda::Pool2dParams pp = pool_params(a, 0);
  const Buf x = buf(a, 1, "x"), y = buf(a, 2, "y");
  a.need(x, "x", a.bytes({pp.n, pp.c, pp.h, pp.w}));
  a.need(y, "y", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.distinct(y, "y", x, "x");
  const float* px = x.f32();
  float* py = y.f32();
  launch(a, [=](cudaStream_t s) { return cuda::avgpool2d_fwd(pp, px, py, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Avgpool2dBwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "avgpool2dBwd", 3);
  const cuda::Pool2dParams pp = pool_params(a, 0);
  const Buf dy = buf(a, 1, "dy"), dx = buf(a, 2, "dx");
  a.need(dy, "dy", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.need(dx, "dx", a.bytes({pp.n, pp.c, pp.h, pp.w}));
  a.distinct(dx, "dx", dy, "dy");
  const float* pdy = dy.f32();
  float* pdx = dx.f32();
  launch(a, [=](cudaStream_t s) { return cuda::avgpool2d_bwd(pp, pdy, pdx, s); });
  return info.Env().Undefined();
}

}  // namespace imagerate
