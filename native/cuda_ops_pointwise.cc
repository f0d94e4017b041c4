// cuda_ops_pointwise.cc: the elementwise, loss and optimiser exports of imagerate_cuda.node
// (kernels in kernels/cuda/elementwise.cu, softmax_xent.cu, sgd.cu). Arguments, byte needs
// and aliasing rules are cpu_ops_pointwise.cc's, message for message; the kernels launch on
// the addon's stream.
//
// One visible difference (kernels.cuh): a label outside [0, C) cannot throw from a GPU kernel;
// softmaxXentFwd/Bwd give that row NaN instead, which sumsqCheck then reports.
#include "cuda_addon.h"

namespace imagerate {

Napi::Value CudaAddon::BiasAdd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "biasAdd", 6);
  const int64_t outer = a.dim(0, "outer"), ch = a.dim(1, "ch"), inner = a.dim(2, "inner");
  const Buf x = buf(a, 3, "x"), b = buf(a, 4, "b"), y = buf(a, 5, "y");
  a.need(x, "x", a.bytes({outer, ch, inner}));
  a.need(b, "b", a.bytes({ch}));
  a.need(y, "y", a.bytes({outer, ch, inner}));
  a.distinct(y, "y", b, "b");
  const float *px = x.f32(), *pb = b.f32();
  float* py = y.f32();
  launch(a, [=](cudaStream_t s) { return cuda::bias_add(outer, ch, inner, px, pb, py, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::BiasGrad(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "biasGrad", 5);
  const int64_t outer = a.dim(0, "outer"), ch = a.dim(1, "ch"), inner = a.dim(2, "inner");
  const Buf dy = buf(a, 3, "dy"), db = buf(a, 4, "db");
  a.need(dy, "dy", a.bytes({outer, ch, inner}));
  a.need(db, "db", a.bytes({ch}));
  a.distinct(db, "db", dy, "dy");
  const float* pdy = dy.f32();
  float* pdb = db.f32();
  launch(a, [=](cudaStream_t s) { return cuda::bias_grad(outer, ch, inner, pdy, pdb, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::ReluFwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "reluFwd", 3);
  const int64_t n = a.dim(0, "n");
  const Buf x = buf(a, 1, "x"), y = buf(a, 2, "y");
  a.need(x, "x", a.bytes({n}));
  a.need(y, "y", a.bytes({n}));
  const float* px = x.f32();
  float* py = y.f32();
  launch(a, [=](cudaStream_t s) { return cuda::relu_fwd(n, px, py, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::ReluBwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "reluBwd", 4);
  const int64_t n = a.dim(0, "n");
  const Buf y = buf(a, 1, "y"), dy = buf(a, 2, "dy"), dx = buf(a, 3, "dx");
  a.need(y, "y", a.bytes({n}));
  a.need(dy, "dy", a.bytes({n}));
  a.need(dx, "dx", a.bytes({n}));
  const float *py = y.f32(), *pdy = dy.f32();
  float* pdx = dx.f32();
  launch(a, [=](cudaStream_t s) { return cuda::relu_bwd(n, py, pdy, pdx, s); });
  return info.Env().Undefined();
}

// add and mul share their checks: y = a (op) b over n elements.
void CudaAddon::binary_args(const CudaArgs& a, int64_t& n, Buf& x0, Buf& x1, Buf& y) {
  n = a.dim(0, "n");
  x0 = buf(a, 1, "a");
  x1 = buf(a, 2, "b");
  y = buf(a, 3, "y");
  a.need(x0, "a", a.bytes({n}));
  a.need(x1, "b", a.bytes({n}));
  a.need(y, "y", a.bytes({n}));
}

Napi::Value CudaAddon::Add(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "add", 4);
  int64_t n;
  Buf x0, x1, y;
  binary_args(a, n, x0, x1, y);
  const float *p0 = x0.f32(), *p1 = x1.f32();
  float* py = y.f32();
  launch(a, [=](cudaStream_t s) { return cuda::add_f32(n, p0, p1, py, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Mul(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "mul", 4);
  int64_t n;
  Buf x0, x1, y;
  binary_args(a, n, x0, x1, y);
  const float *p0 = x0.f32(), *p1 = x1.f32();
  float* py = y.f32();
  launch(a, [=](cudaStream_t s) { return cuda::mul_f32(n, p0, p1, py, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Axpby(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "axpby", 5);
  const int64_t n = a.dim(0, "n");
  const float alpha = (float)a.number(1, "alpha");
  const Buf x = buf(a, 2, "x");
  const float beta = (float)a.number(3, "beta");
  const Buf y = buf(a, 4, "y");
  a.need(x, "x", a.bytes({n}));
  a.need(y, "y", a.bytes({n}));
  const float* px = x.f32();
  float* py = y.f32();
  launch(a, [=](cudaStream_t s) { return cuda::axpby_f32(n, alpha, px, beta, py, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Scale(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "scale", 4);
  const int64_t n = a.dim(0, "n");
  const float alpha = (float)a.number(1, "alpha");
  const Buf x = buf(a, 2, "x"), y = buf(a, 3, "y");
  a.need(x, "x", a.bytes({n}));
  a.need(y, "y", a.bytes({n}));
  const float* px = x.f32();
  float* py = y.f32();
  launch(a, [=](cudaStream_t s) { return cuda::scale_f32(n, alpha, px, py, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Fill(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "fill", 3);
  const int64_t n = a.dim(0, "n");
  const float value = (float)a.number(1, "value");  // NaN and +-inf allowed (e.g. -inf init)
  const Buf y = buf(a, 2, "y");
  a.need(y, "y", a.bytes({n}));
  float* py = y.f32();
  launch(a, [=](cudaStream_t s) { return cuda::fill_f32(n, value, py, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::DropoutFwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "dropoutFwd", 6);
  const int64_t n = a.dim(0, "n");
  const double p = a.finite(1, "p");
  if (p < 0 || p > 1) a.fail("p must be in [0, 1], got " + std::to_string(p));
  const uint64_t seed = (uint64_t)a.index(2, "seed");
  const Buf x = buf(a, 3, "x"), mask = buf(a, 4, "mask"), y = buf(a, 5, "y");
  a.need(x, "x", a.bytes({n}));
  a.need(mask, "mask", a.bytes({n}));
  a.need(y, "y", a.bytes({n}));
  a.distinct(mask, "mask", y, "y");
  const float* px = x.f32();
  float *pm = mask.f32(), *py = y.f32();
  const float pf = (float)p;
  launch(a, [=](cudaStream_t s) { return cuda::dropout_fwd(n, pf, seed, px, pm, py, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::SumsqCheck(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "sumsqCheck", 3);
  const int64_t n = a.dim(0, "n");
  const Buf x = buf(a, 1, "x"), out = buf(a, 2, "out");
  a.need(x, "x", a.bytes({n}));
  a.need(out, "out", 16);  // two float64
  a.distinct(out, "out", x, "x");
  const float* px = x.f32();
  double* po = static_cast<double*>(out.ptr);
  launch(a, [=](cudaStream_t s) { return cuda::sumsq_check(n, px, po, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::SoftmaxXentFwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "softmaxXentFwd", 7);
  const int64_t n = a.dim(0, "n"), c = a.dim(1, "c");
  const double eps = a.finite(2, "eps");
  if (eps < 0 || eps > 1) a.fail("eps must be in [0, 1], got " + std::to_string(eps));
  if (c > INT32_MAX) a.fail("c must fit in int32 (labels are int32)");
  const Buf logits = buf(a, 3, "logits"), labels = buf(a, 4, "labels");
  const Buf probs = buf(a, 5, "probs"), loss = buf(a, 6, "loss");
  a.need(logits, "logits", a.bytes({n, c}));
  a.need(labels, "labels", a.bytes({n}));
  a.need(probs, "probs", a.bytes({n, c}));
  a.need(loss, "loss", a.bytes({n}));
  a.distinct(probs, "probs", labels, "labels");
  a.distinct(loss, "loss", logits, "logits");
  a.distinct(loss, "loss", labels, "labels");
  a.distinct(loss, "loss", probs, "probs");
  const float* px = logits.f32();
  const int32_t* pl = labels.i32();
  float *pp = probs.f32(), *ploss = loss.f32();
  const float e = (float)eps;
  launch(a, [=](cudaStream_t s) { return cuda::softmax_xent_fwd(n, c, e, px, pl, pp, ploss, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::SoftmaxXentBwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "softmaxXentBwd", 7);
  const int64_t n = a.dim(0, "n"), c = a.dim(1, "c");
  const double eps = a.finite(2, "eps");
  if (eps < 0 || eps > 1) a.fail("eps must be in [0, 1], got " + std::to_string(eps));
  if (c > INT32_MAX) a.fail("c must fit in int32 (labels are int32)");
  const float scale = (float)a.finite(3, "scale");
  const Buf probs = buf(a, 4, "probs"), labels = buf(a, 5, "labels"), dl = buf(a, 6, "dlogits");
  a.need(probs, "probs", a.bytes({n, c}));
  a.need(labels, "labels", a.bytes({n}));
  a.need(dl, "dlogits", a.bytes({n, c}));
  a.distinct(dl, "dlogits", labels, "labels");
  const float* pp = probs.f32();
  const int32_t* pl = labels.i32();
  float* pd = dl.f32();
  const float e = (float)eps;
  launch(a, [=](cudaStream_t s) { return cuda::softmax_xent_bwd(n, c, e, scale, pp, pl, pd, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::SgdUpdate(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "sgdUpdate", 8);
  const int64_t n = a.dim(0, "n");
  const float lr = (float)a.finite(1, "lr"), momentum = (float)a.finite(2, "momentum");
  const float wd = (float)a.finite(3, "weightDecay");
  const bool nesterov = a.flag(4, "nesterov");
  const Buf w = buf(a, 5, "w"), g = buf(a, 6, "g"), v = buf(a, 7, "v");
  a.need(w, "w", a.bytes({n}));
  a.need(g, "g", a.bytes({n}));
  a.need(v, "v", a.bytes({n}));
  a.distinct(w, "w", g, "g");
  a.distinct(v, "v", w, "w");
  a.distinct(v, "v", g, "g");
  float *pw = w.f32(), *pv = v.f32();
  const float* pg = g.f32();
  launch(a, [=](cudaStream_t s) { return cuda::sgd_momentum_update(n, lr, momentum, wd, nesterov, pw, pg, pv, s); });
  return info.Env().Undefined();
}

}  // namespace imagerate
