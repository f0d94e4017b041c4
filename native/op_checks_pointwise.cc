// op_checks_pointwise.cc: the checks of the copy, elementwise, loss and optimiser exports (see
// op_checks.h):
//
//   copy(n, src, srcOffset, dst, dstOffset)     biasAdd(outer, ch, inner, x, b, y)
//   biasGrad(outer, ch, inner, dy, db)          reluFwd(n, x, y)    reluBwd(n, y, dy, dx)
//   add(n, a, b, y)    mul(n, a, b, y)          axpby(n, alpha, x, beta, y)
//   scale(n, alpha, x, y)                       fill(n, value, y)
//   dropoutFwd(n, p, seed, x, mask, y)          sumsqCheck(n, x, out)
//   softmaxXentFwd(n, c, eps, logits, labels, probs, loss)
//   softmaxXentBwd(n, c, eps, scale, probs, labels, dlogits)
//   sgdUpdate(n, lr, momentum, weightDecay, nesterov, w, g, v)
//
// Counts are elements, buffers are ids, byte needs are exact (float32/int32: 4 bytes each).
// In-place use (y == x) is allowed wherever the kernel reads element i before writing it;
// outputs that would overwrite data a kernel still has to read (a bias vector, the labels,
// another row) must be distinct buffers, and the error says which two collide.
#include <climits>
#include <string>

#include "op_checks.h"

namespace imagerate {
namespace {

CopyCall copy(const Args& a, BufferTable& t) {
  const int64_t n = a.dim(0, "n");
  const Buf src = a.buf(1, "src", t);
  const int64_t so = a.index(2, "srcOffset");
  const Buf dst = a.buf(3, "dst", t);
  const int64_t d_o = a.index(4, "dstOffset");
  a.need(src, "src", a.bytes({so + n}));
  a.need(dst, "dst", a.bytes({d_o + n}));
  return CopyCall{n, so, d_o, src, dst, src.f32() + so, dst.f32() + d_o};
}

BiasAddCall bias_add(const Args& a, BufferTable& t) {
  const int64_t outer = a.dim(0, "outer"), ch = a.dim(1, "ch"), inner = a.dim(2, "inner");
  const Buf x = a.buf(3, "x", t), b = a.buf(4, "b", t), y = a.buf(5, "y", t);
  a.need(x, "x", a.bytes({outer, ch, inner}));
  a.need(b, "b", a.bytes({ch}));
  a.need(y, "y", a.bytes({outer, ch, inner}));
  a.distinct(y, "y", b, "b");
  return BiasAddCall{outer, ch, inner, x.f32(), b.f32(), y.f32()};
}

BiasGradCall bias_grad(const Args& a, BufferTable& t) {
  const int64_t outer = a.dim(0, "outer"), ch = a.dim(1, "ch"), inner = a.dim(2, "inner");
  const Buf dy = a.buf(3, "dy", t), db = a.buf(4, "db", t);
  a.need(dy, "dy", a.bytes({outer, ch, inner}));
  a.need(db, "db", a.bytes({ch}));
  a.distinct(db, "db", dy, "dy");
  return BiasGradCall{outer, ch, inner, dy.f32(), db.f32()};
}

UnaryCall relu_fwd(const Args& a, BufferTable& t) {
  const int64_t n = a.dim(0, "n");
  const Buf x = a.buf(1, "x", t), y = a.buf(2, "y", t);
  a.need(x, "x", a.bytes({n}));
  a.need(y, "y", a.bytes({n}));
  return UnaryCall{n, x.f32(), y.f32()};
}

ReluBwdCall relu_bwd(const Args& a, BufferTable& t) {
  const int64_t n = a.dim(0, "n");
  const Buf y = a.buf(1, "y", t), dy = a.buf(2, "dy", t), dx = a.buf(3, "dx", t);
  a.need(y, "y", a.bytes({n}));
  a.need(dy, "dy", a.bytes({n}));
  a.need(dx, "dx", a.bytes({n}));
  return ReluBwdCall{n, y.f32(), dy.f32(), dx.f32()};
}

// add and mul: y = a (op) b over n elements.
BinaryCall binary(const Args& a, BufferTable& t) {
  const int64_t n = a.dim(0, "n");
  const Buf x0 = a.buf(1, "a", t), x1 = a.buf(2, "b", t), y = a.buf(3, "y", t);
  a.need(x0, "a", a.bytes({n}));
  a.need(x1, "b", a.bytes({n}));
  a.need(y, "y", a.bytes({n}));
  return BinaryCall{n, x0.f32(), x1.f32(), y.f32()};
}

AxpbyCall axpby(const Args& a, BufferTable& t) {
  const int64_t n = a.dim(0, "n");
  const float alpha = (float)a.number(1, "alpha");
  const Buf x = a.buf(2, "x", t);
  const float beta = (float)a.number(3, "beta");
  const Buf y = a.buf(4, "y", t);
  a.need(x, "x", a.bytes({n}));
  a.need(y, "y", a.bytes({n}));
  return AxpbyCall{n, alpha, beta, x.f32(), y.f32()};
}

AxpbyCall scale(const Args& a, BufferTable& t) {
  const int64_t n = a.dim(0, "n");
  const float alpha = (float)a.number(1, "alpha");
  const Buf x = a.buf(2, "x", t), y = a.buf(3, "y", t);
  a.need(x, "x", a.bytes({n}));
  a.need(y, "y", a.bytes({n}));
  return AxpbyCall{n, alpha, 0.0f, x.f32(), y.f32()};
}

FillCall fill(const Args& a, BufferTable& t) {
  const int64_t n = a.dim(0, "n");
  const float value = (float)a.number(1, "value");  // NaN and +-inf allowed (e.g. -inf init)
  const Buf y = a.buf(2, "y", t);
  a.need(y, "y", a.bytes({n}));
  return FillCall{n, value, y.f32()};
}

// dropoutFwd(n, p, seed, x, mask, y), and dropoutFwdDeviceSeed with a buffer at 2 holding
// the seed as one uint32 (read when the kernel runs: CUDA graphs).
DropoutFwdCall dropout_fwd_common(const Args& a, BufferTable& t, bool device_seed) {
  const int64_t n = a.dim(0, "n");
  const double p = a.finite(1, "p");
  if (p < 0 || p > 1) a.fail("p must be in [0, 1], got " + std::to_string(p));
  const Buf x = a.buf(3, "x", t), mask = a.buf(4, "mask", t), y = a.buf(5, "y", t);
  a.need(x, "x", a.bytes({n}));
  a.need(mask, "mask", a.bytes({n}));
  a.need(y, "y", a.bytes({n}));
  a.distinct(mask, "mask", y, "y");
  uint64_t seed = 0;
  const uint32_t* seed_dev = nullptr;
  if (device_seed) {
    const Buf s = a.buf(2, "seed", t);
    a.need(s, "seed", 4);
    a.outputs_distinct({{&mask, "mask"}, {&y, "y"}}, {{&s, "seed"}});  // every thread reads the seed
    seed_dev = reinterpret_cast<const uint32_t*>(s.i32());
  } else {
    seed = (uint64_t)a.index(2, "seed");
  }
  return DropoutFwdCall{n, (float)p, seed, x.f32(), mask.f32(), y.f32(), seed_dev};
}
DropoutFwdCall dropout_fwd(const Args& a, BufferTable& t) { return dropout_fwd_common(a, t, false); }
DropoutFwdCall dropout_fwd_device_seed(const Args& a, BufferTable& t) { return dropout_fwd_common(a, t, true); }

SumsqCheckCall sumsq_check(const Args& a, BufferTable& t) {
  const int64_t n = a.dim(0, "n");
  const Buf x = a.buf(1, "x", t), out = a.buf(2, "out", t);
  a.need(x, "x", a.bytes({n}));
  a.need(out, "out", 16);  // two float64
  a.distinct(out, "out", x, "x");
  return SumsqCheckCall{n, x.f32(), static_cast<double*>(out.ptr)};
}

// (n, c, eps) at 0..2 of softmaxXentFwd/Bwd.
void xent_dims(const Args& a, int64_t* n, int64_t* c, float* eps) {
  *n = a.dim(0, "n");
  *c = a.dim(1, "c");
  const double e = a.finite(2, "eps");
  if (e < 0 || e > 1) a.fail("eps must be in [0, 1], got " + std::to_string(e));
  if (*c > INT32_MAX) a.fail("c must fit in int32 (labels are int32)");
  *eps = (float)e;
}

SoftmaxXentFwdCall softmax_xent_fwd(const Args& a, BufferTable& t) {
  SoftmaxXentFwdCall k;
  xent_dims(a, &k.n, &k.c, &k.eps);
  const Buf logits = a.buf(3, "logits", t), labels = a.buf(4, "labels", t);
  const Buf probs = a.buf(5, "probs", t), loss = a.buf(6, "loss", t);
  a.need(logits, "logits", a.bytes({k.n, k.c}));
  a.need(labels, "labels", a.bytes({k.n}));
  a.need(probs, "probs", a.bytes({k.n, k.c}));
  a.need(loss, "loss", a.bytes({k.n}));
  a.distinct(probs, "probs", labels, "labels");
  a.outputs_distinct({{&loss, "loss"}}, {{&logits, "logits"}, {&labels, "labels"}, {&probs, "probs"}});
  return SoftmaxXentFwdCall{k.n, k.c, k.eps, logits.f32(), labels.i32(), probs.f32(), loss.f32()};
}

SoftmaxXentBwdCall softmax_xent_bwd(const Args& a, BufferTable& t) {
  SoftmaxXentBwdCall k;
  xent_dims(a, &k.n, &k.c, &k.eps);
  k.scale = (float)a.finite(3, "scale");
  const Buf probs = a.buf(4, "probs", t), labels = a.buf(5, "labels", t), dl = a.buf(6, "dlogits", t);
  a.need(probs, "probs", a.bytes({k.n, k.c}));
  a.need(labels, "labels", a.bytes({k.n}));
  a.need(dl, "dlogits", a.bytes({k.n, k.c}));
  a.distinct(dl, "dlogits", labels, "labels");
  return SoftmaxXentBwdCall{k.n, k.c, k.eps, k.scale, probs.f32(), labels.i32(), dl.f32()};
}

// sgdUpdate(n, lr, ...), and sgdUpdateDeviceLr with a buffer at 1 holding lr as one float
// (read when the kernel runs: CUDA graphs).
SgdUpdateCall sgd_update_common(const Args& a, BufferTable& t, bool device_lr) {
  const int64_t n = a.dim(0, "n");
  const float momentum = (float)a.finite(2, "momentum");
  const float wd = (float)a.finite(3, "weightDecay");
  const bool nesterov = a.flag(4, "nesterov");
  const Buf w = a.buf(5, "w", t), g = a.buf(6, "g", t), v = a.buf(7, "v", t);
  a.need(w, "w", a.bytes({n}));
  a.need(g, "g", a.bytes({n}));
  a.need(v, "v", a.bytes({n}));
  a.distinct(w, "w", g, "g");
  a.outputs_distinct({{&v, "v"}}, {{&w, "w"}, {&g, "g"}});
  float lr = 0.f;
  const float* lr_dev = nullptr;
  if (device_lr) {
    const Buf l = a.buf(1, "lr", t);
    a.need(l, "lr", 4);
    a.outputs_distinct({{&w, "w"}, {&v, "v"}}, {{&l, "lr"}});  // every thread reads lr
    lr_dev = l.f32();
  } else {
    lr = (float)a.finite(1, "lr");
  }
  return SgdUpdateCall{n, lr, momentum, wd, nesterov, w.f32(), v.f32(), g.f32(), lr_dev};
}
SgdUpdateCall sgd_update(const Args& a, BufferTable& t) { return sgd_update_common(a, t, false); }
SgdUpdateCall sgd_update_device_lr(const Args& a, BufferTable& t) { return sgd_update_common(a, t, true); }

}  // namespace

const OpSpec<CopyCall> kCopy{"copy", 5, copy};
const OpSpec<BiasAddCall> kBiasAdd{"biasAdd", 6, bias_add};
const OpSpec<BiasGradCall> kBiasGrad{"biasGrad", 5, bias_grad};
const OpSpec<UnaryCall> kReluFwd{"reluFwd", 3, relu_fwd};
const OpSpec<ReluBwdCall> kReluBwd{"reluBwd", 4, relu_bwd};
const OpSpec<BinaryCall> kAdd{"add", 4, binary};
const OpSpec<BinaryCall> kMul{"mul", 4, binary};
const OpSpec<AxpbyCall> kAxpby{"axpby", 5, axpby};
const OpSpec<AxpbyCall> kScale{"scale", 4, scale};
const OpSpec<FillCall> kFill{"fill", 3, fill};
const OpSpec<DropoutFwdCall> kDropoutFwd{"dropoutFwd", 6, dropout_fwd};
const OpSpec<DropoutFwdCall> kDropoutFwdDeviceSeed{"dropoutFwdDeviceSeed", 6, dropout_fwd_device_seed};
const OpSpec<SumsqCheckCall> kSumsqCheck{"sumsqCheck", 3, sumsq_check};
const OpSpec<SoftmaxXentFwdCall> kSoftmaxXentFwd{"softmaxXentFwd", 7, softmax_xent_fwd};
const OpSpec<SoftmaxXentBwdCall> kSoftmaxXentBwd{"softmaxXentBwd", 7, softmax_xent_bwd};
const OpSpec<SgdUpdateCall> kSgdUpdate{"sgdUpdate", 8, sgd_update};
const OpSpec<SgdUpdateCall> kSgdUpdateDeviceLr{"sgdUpdateDeviceLr", 8, sgd_update_device_lr};

}  // namespace imagerate
