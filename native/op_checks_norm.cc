// op_checks_norm.cc: the checks of the normalisation exports (see op_checks.h):
//
//   batchnorm2dFwdTrain(outer, ch, inner, eps, momentum, x, gamma, beta, y, saveMean, saveInvstd,
//                       runningMean, runningVar)
//   batchnorm2dFwdEval(outer, ch, inner, eps, x, gamma, beta, runningMean, runningVar, y)
//   batchnorm2dBwd(outer, ch, inner, x, dy, gamma, saveMean, saveInvstd, dx | -1, dgamma, dbeta)
//   lrnFwd(n, c, hw, radius, bias, alpha, beta, x, y, scale)
//   lrnBwd(n, c, hw, radius, bias, alpha, beta, x, y, scale, dy, dx)
// and the CUDA addon's fused forms: batchnorm2dFwdTrainRelu and batchnorm2dFwdEvalRelu take the
// arguments of their unfused forms; batchnorm2dBwdRelu(outer, ch, inner, x, y, dy, gamma,
// saveMean, saveInvstd, dx | -1, dgamma, dbeta) also takes the fused forward's output y.
//
// Counts are elements; buffers are float32 ids. Aliasing: the batch-norm data outputs (y, dx)
// may be their data input (x, dy: each element is read before it is written, channel by
// channel), but not the fused output y; every other output must be a buffer of its own,
// because a kernel still reads the inputs (or the other outputs) after writing it. LRN reads
// neighbouring channels after writing one, so its outputs alias nothing.
#include <climits>
#include <string>

#include "op_checks.h"

namespace imagerate {
namespace {

double eps_arg(const Args& a, size_t i) {
  const double eps = a.finite(i, "eps");
  if (eps < 0) a.fail("eps must be >= 0, got " + std::to_string(eps));
  return eps;
}

// Validates (outer, ch, inner) at 0..2 and returns the byte size of one activation tensor.
uint64_t nchw_bytes(const Args& a, int64_t* outer, int64_t* ch, int64_t* inner) {
  *outer = a.dim(0, "outer");
  *ch = a.dim(1, "ch");
  *inner = a.dim(2, "inner");
  return a.bytes({*outer, *ch, *inner});
}

BnFwdTrainCall bn_fwd_train(const Args& a, BufferTable& t) {
  BnFwdTrainCall k;
  const uint64_t act = nchw_bytes(a, &k.outer, &k.ch, &k.inner);
  k.eps = (float)eps_arg(a, 3);
  const double mom = a.finite(4, "momentum");
  if (mom < 0 || mom > 1) a.fail("momentum must be in [0, 1], got " + std::to_string(mom));
  if (k.outer * k.inner < 2)
    a.fail("expected more than 1 value per channel when training (outer * inner = " + std::to_string(k.outer * k.inner) +
           "): the batch variance is undefined");
  k.momentum = (float)mom;
  const Buf x = a.buf(5, "x", t), gamma = a.buf(6, "gamma", t), beta = a.buf(7, "beta", t);
  const Buf y = a.buf(8, "y", t), sm = a.buf(9, "saveMean", t), si = a.buf(10, "saveInvstd", t);
  const Buf rm = a.buf(11, "runningMean", t), rv = a.buf(12, "runningVar", t);
  const uint64_t vec = a.bytes({k.ch});
  a.need(x, "x", act);
  a.need(gamma, "gamma", vec);
  a.need(beta, "beta", vec);
  a.need(y, "y", act);
  a.need(sm, "saveMean", vec);
  a.need(si, "saveInvstd", vec);
  a.need(rm, "runningMean", vec);
  a.need(rv, "runningVar", vec);
  // y may be x; the statistics and running buffers are written while x, gamma, beta are read.
  a.outputs_distinct({{&y, "y"}, {&sm, "saveMean"}, {&si, "saveInvstd"}, {&rm, "runningMean"}, {&rv, "runningVar"}},
                     {{&gamma, "gamma"}, {&beta, "beta"}});
  a.outputs_distinct({{&sm, "saveMean"}, {&si, "saveInvstd"}, {&rm, "runningMean"}, {&rv, "runningVar"}}, {{&x, "x"}});
  return BnFwdTrainCall{k.outer, k.ch, k.inner, k.eps, k.momentum, x.f32(), gamma.f32(), beta.f32(),
                        y.f32(), sm.f32(), si.f32(), rm.f32(), rv.f32()};
}

BnFwdEvalCall bn_fwd_eval(const Args& a, BufferTable& t) {
  BnFwdEvalCall k;
  const uint64_t act = nchw_bytes(a, &k.outer, &k.ch, &k.inner);
  k.eps = (float)eps_arg(a, 3);
  const Buf x = a.buf(4, "x", t), gamma = a.buf(5, "gamma", t), beta = a.buf(6, "beta", t);
  const Buf rm = a.buf(7, "runningMean", t), rv = a.buf(8, "runningVar", t), y = a.buf(9, "y", t);
  const uint64_t vec = a.bytes({k.ch});
  a.need(x, "x", act);
  a.need(gamma, "gamma", vec);
  a.need(beta, "beta", vec);
  a.need(rm, "runningMean", vec);
  a.need(rv, "runningVar", vec);
  a.need(y, "y", act);
  a.outputs_distinct({{&y, "y"}}, {{&gamma, "gamma"}, {&beta, "beta"}, {&rm, "runningMean"}, {&rv, "runningVar"}});
  return BnFwdEvalCall{k.outer, k.ch, k.inner, k.eps, x.f32(), gamma.f32(), beta.f32(), rm.f32(), rv.f32(), y.f32()};
}

// batchnorm2dBwd, and with `fused` batchnorm2dBwdRelu: the forward's output y comes right
// after x and the other arguments shift by one.
BnBwdCall bn_bwd(const Args& a, BufferTable& t, bool fused) {
  BnBwdCall k;
  const size_t o = fused ? 1 : 0;
  const uint64_t act = nchw_bytes(a, &k.outer, &k.ch, &k.inner);
  const Buf x = a.buf(3, "x", t), y = fused ? a.buf(4, "y", t) : Buf{}, dy = a.buf(4 + o, "dy", t);
  const Buf gamma = a.buf(5 + o, "gamma", t), sm = a.buf(6 + o, "saveMean", t), si = a.buf(7 + o, "saveInvstd", t);
  const Buf dx = a.opt_buf(8 + o, "dx", t), dg = a.buf(9 + o, "dgamma", t), db = a.buf(10 + o, "dbeta", t);
  const uint64_t vec = a.bytes({k.ch});
  a.need(x, "x", act);
  if (fused) a.need(y, "y", act);
  a.need(dy, "dy", act);
  a.need(gamma, "gamma", vec);
  a.need(sm, "saveMean", vec);
  a.need(si, "saveInvstd", vec);
  if (dx.ptr) a.need(dx, "dx", act);
  a.need(dg, "dgamma", vec);
  a.need(db, "dbeta", vec);
  // dx may be x or dy (not the fused output y); dgamma and dbeta are written while everything
  // else is still read.
  a.outputs_distinct({{&dx, "dx"}}, {{&gamma, "gamma"}, {&sm, "saveMean"}, {&si, "saveInvstd"}});
  if (fused) a.outputs_distinct({{&dx, "dx"}}, {{&y, "y"}});
  a.outputs_distinct({{&dg, "dgamma"}, {&db, "dbeta"}},
                     {{&x, "x"}, {&dy, "dy"}, {&gamma, "gamma"}, {&sm, "saveMean"}, {&si, "saveInvstd"}, {&dx, "dx"}});
  if (fused) a.outputs_distinct({{&dg, "dgamma"}, {&db, "dbeta"}}, {{&y, "y"}});
  return BnBwdCall{k.outer, k.ch, k.inner, x.f32(), y.f32(), dy.f32(), gamma.f32(), sm.f32(), si.f32(),
                   dx.f32(), dg.f32(), db.f32()};
}

// lrnFwd, and with `backward` lrnBwd (which also takes dy and dx).
LrnCall lrn(const Args& a, BufferTable& t, bool backward) {
  LrnCall l;
  l.n = a.dim(0, "n");
  l.c = a.dim(1, "c");
  l.hw = a.dim(2, "hw");
  l.radius = a.index(3, "radius");
  if (l.radius > INT32_MAX) a.fail("radius is too large: " + std::to_string(l.radius));
  l.bias = (float)a.finite(4, "bias");
  l.alpha = (float)a.finite(5, "alpha");
  l.beta = (float)a.finite(6, "beta");
  const uint64_t bytes = a.bytes({l.n, l.c, l.hw});
  const Buf x = a.buf(7, "x", t), y = a.buf(8, "y", t), s = a.buf(9, "scale", t);
  const Buf dy = backward ? a.buf(10, "dy", t) : Buf{}, dx = backward ? a.buf(11, "dx", t) : Buf{};
  a.need(x, "x", bytes);
  a.need(y, "y", bytes);
  a.need(s, "scale", bytes);
  if (backward) {
    a.need(dy, "dy", bytes);
    a.need(dx, "dx", bytes);
    a.outputs_distinct({{&dx, "dx"}}, {{&x, "x"}, {&y, "y"}, {&s, "scale"}, {&dy, "dy"}});
  } else {
    a.outputs_distinct({{&y, "y"}, {&s, "scale"}}, {{&x, "x"}});
  }
  return LrnCall{l.n, l.c, l.hw, l.radius, l.bias, l.alpha, l.beta, x.f32(), y.f32(), s.f32(), dy.f32(), dx.f32()};
}

}  // namespace

const OpSpec<BnFwdTrainCall> kBatchnorm2dFwdTrain{"batchnorm2dFwdTrain", 13, bn_fwd_train};
const OpSpec<BnFwdTrainCall> kBatchnorm2dFwdTrainRelu{"batchnorm2dFwdTrainRelu", 13, bn_fwd_train};
const OpSpec<BnFwdEvalCall> kBatchnorm2dFwdEval{"batchnorm2dFwdEval", 10, bn_fwd_eval};
const OpSpec<BnFwdEvalCall> kBatchnorm2dFwdEvalRelu{"batchnorm2dFwdEvalRelu", 10, bn_fwd_eval};
const OpSpec<BnBwdCall> kBatchnorm2dBwd{"batchnorm2dBwd", 11, [](const Args& a, BufferTable& t) { return bn_bwd(a, t, false); }};
const OpSpec<BnBwdCall> kBatchnorm2dBwdRelu{"batchnorm2dBwdRelu", 12, [](const Args& a, BufferTable& t) { return bn_bwd(a, t, true); }};
const OpSpec<LrnCall> kLrnFwd{"lrnFwd", 10, [](const Args& a, BufferTable& t) { return lrn(a, t, false); }};
const OpSpec<LrnCall> kLrnBwd{"lrnBwd", 12, [](const Args& a, BufferTable& t) { return lrn(a, t, true); }};

}  // namespace imagerate
