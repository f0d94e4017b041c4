// cuda_ops_norm.cc: the normalisation exports of imagerate_cuda.node (kernels in
// kernels/cuda/batchnorm.cu and lrn.cu), with cpu_ops_norm.cc's arguments, checks and
// messages:
//
//   batchnorm2dFwdTrain(outer, ch, inner, eps, momentum, x, gamma, beta, y, saveMean, saveInvstd,
//                       runningMean, runningVar)
//   batchnorm2dFwdEval(outer, ch, inner, eps, x, gamma, beta, runningMean, runningVar, y)
//   batchnorm2dBwd(outer, ch, inner, x, dy, gamma, saveMean, saveInvstd, dx | -1, dgamma, dbeta)
//   lrnFwd(n, c, hw, radius, bias, alpha, beta, x, y, scale)
//   lrnBwd(n, c, hw, radius, bias, alpha, beta, x, y, scale, dy, dx)
//
// CUDA-only extras, batch norm fused with the ReLU after it (same arguments as their unfused
// forms; the backward takes the fused output y after x):
//   batchnorm2dFwdTrainRelu(...as batchnorm2dFwdTrain), batchnorm2dFwdEvalRelu(...as Eval)
//   batchnorm2dBwdRelu(outer, ch, inner, x, y, dy, gamma, saveMean, saveInvstd, dx | -1, dgamma, dbeta)
//
// Aliasing as on the CPU: the batch-norm data outputs (y, dx) may be their data input (x, dy);
// every other output must be a buffer of its own; LRN outputs alias nothing.
#include <climits>
#include <string>

#include "cuda_addon.h"

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

struct LrnArgs {
  int64_t n, c, hw, radius;
  float bias, alpha, beta;
  uint64_t bytes;
};

LrnArgs lrn_args(const Args& a) {
  LrnArgs l;
  l.n = a.dim(0, "n");
  l.c = a.dim(1, "c");
  l.hw = a.dim(2, "hw");
  l.radius = a.index(3, "radius");
  if (l.radius > INT32_MAX) a.fail("radius is too large: " + std::to_string(l.radius));
  l.bias = (float)a.finite(4, "bias");
  l.alpha = (float)a.finite(5, "alpha");
  l.beta = (float)a.finite(6, "beta");
  l.bytes = a.bytes({l.n, l.c, l.hw});
  return l;
}

}  // namespace

Napi::Value CudaAddon::Batchnorm2dFwdTrain(const Napi::CallbackInfo& info) { return bn_fwd_train(info, false); }
Napi::Value CudaAddon::Batchnorm2dFwdTrainRelu(const Napi::CallbackInfo& info) { return bn_fwd_train(info, true); }
Napi::Value CudaAddon::Batchnorm2dFwdEval(const Napi::CallbackInfo& info) { return bn_fwd_eval(info, false); }
Napi::Value CudaAddon::Batchnorm2dFwdEvalRelu(const Napi::CallbackInfo& info) { return bn_fwd_eval(info, true); }
Napi::Value CudaAddon::Batchnorm2dBwd(const Napi::CallbackInfo& info) { return bn_bwd(info, false); }
Napi::Value CudaAddon::Batchnorm2dBwdRelu(const Napi::CallbackInfo& info) { return bn_bwd(info, true); }

Napi::Value CudaAddon::bn_fwd_train(const Napi::CallbackInfo& info, bool relu) {
  CudaArgs a(info, relu ? "batchnorm2dFwdTrainRelu" : "batchnorm2dFwdTrain", 13);
  int64_t outer, ch, inner;
  const uint64_t act = nchw_bytes(a, &outer, &ch, &inner);
  const float eps = (float)eps_arg(a, 3);
  const double mom = a.finite(4, "momentum");
  if (mom < 0 || mom > 1) a.fail("momentum must be in [0, 1], got " + std::to_string(mom));
  if (outer * inner < 2)
    a.fail("expected more than 1 value per channel when training (outer * inner = " + std::to_string(outer * inner) +
           "): the batch variance is undefined");
  const Buf x = buf(a, 5, "x"), gamma = buf(a, 6, "gamma"), beta = buf(a, 7, "beta");
  const Buf y = buf(a, 8, "y"), sm = buf(a, 9, "saveMean"), si = buf(a, 10, "saveInvstd");
  const Buf rm = buf(a, 11, "runningMean"), rv = buf(a, 12, "runningVar");
  const uint64_t vec = a.bytes({ch});
  a.need(x, "x", act);
  a.need(gamma, "gamma", vec);
  a.need(beta, "beta", vec);
  a.need(y, "y", act);
  a.need(sm, "saveMean", vec);
  a.need(si, "saveInvstd", vec);
  a.need(rm, "runningMean", vec);
  a.need(rv, "runningVar", vec);
  // y may be x; the statistics and running buffers are written while x, gamma, beta are read.
  outputs_distinct(a, {{&y, "y"}, {&sm, "saveMean"}, {&si, "saveInvstd"}, {&rm, "runningMean"}, {&rv, "runningVar"}},
                   {{&gamma, "gamma"}, {&beta, "beta"}});
  outputs_distinct(a, {{&sm, "saveMean"}, {&si, "saveInvstd"}, {&rm, "runningMean"}, {&rv, "runningVar"}}, {{&x, "x"}});
  const float *px = x.f32(), *pg = gamma.f32(), *pb = beta.f32();
  float *py = y.f32(), *psm = sm.f32(), *psi = si.f32(), *prm = rm.f32(), *prv = rv.f32();
  const float m = (float)mom;
  launch(a, [=](cudaStream_t st) {
    return relu ? cuda::batchnorm2d_fwd_train_relu(outer, ch, inner, eps, m, px, pg, pb, py, psm, psi, prm, prv, st)
                : cuda::batchnorm2d_fwd_train(outer, ch, inner, eps, m, px, pg, pb, py, psm, psi, prm, prv, st);
  });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::bn_fwd_eval(const Napi::CallbackInfo& info, bool relu) {
  CudaArgs a(info, relu ? "batchnorm2dFwdEvalRelu" : "batchnorm2dFwdEval", 10);
  int64_t outer, ch, inner;
  const uint64_t act = nchw_bytes(a, &outer, &ch, &inner);
  const float eps = (float)eps_arg(a, 3);
  const Buf x = buf(a, 4, "x"), gamma = buf(a, 5, "gamma"), beta = buf(a, 6, "beta");
  const Buf rm = buf(a, 7, "runningMean"), rv = buf(a, 8, "runningVar"), y = buf(a, 9, "y");
  const uint64_t vec = a.bytes({ch});
  a.need(x, "x", act);
  a.need(gamma, "gamma", vec);
  a.need(beta, "beta", vec);
  a.need(rm, "runningMean", vec);
  a.need(rv, "runningVar", vec);
  a.need(y, "y", act);
  outputs_distinct(a, {{&y, "y"}}, {{&gamma, "gamma"}, {&beta, "beta"}, {&rm, "runningMean"}, {&rv, "runningVar"}});
  const float *px = x.f32(), *pg = gamma.f32(), *pb = beta.f32(), *prm = rm.f32(), *prv = rv.f32();
  float* py = y.f32();
  launch(a, [=](cudaStream_t st) {
    return relu ? cuda::batchnorm2d_fwd_eval_relu(outer, ch, inner, eps, px, pg, pb, prm, prv, py, st)
                : cuda::batchnorm2d_fwd_eval(outer, ch, inner, eps, px, pg, pb, prm, prv, py, st);
  });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::bn_bwd(const Napi::CallbackInfo& info, bool relu) {
  // The fused form takes the forward's output y right after x; the other arguments shift by one.
  CudaArgs a(info, relu ? "batchnorm2dBwdRelu" : "batchnorm2dBwd", relu ? 12 : 11);
  const size_t o = relu ? 1 : 0;
  int64_t outer, ch, inner;
  const uint64_t act = nchw_bytes(a, &outer, &ch, &inner);
  const Buf x = buf(a, 3, "x"), y = relu ? buf(a, 4, "y") : Buf{}, dy = buf(a, 4 + o, "dy"), gamma = buf(a, 5 + o, "gamma");
  const Buf sm = buf(a, 6 + o, "saveMean"), si = buf(a, 7 + o, "saveInvstd");
  const Buf dx = opt_buf(a, 8 + o, "dx"), dg = buf(a, 9 + o, "dgamma"), db = buf(a, 10 + o, "dbeta");
  const uint64_t vec = a.bytes({ch});
  a.need(x, "x", act);
  if (relu) a.need(y, "y", act);
  a.need(dy, "dy", act);
  a.need(gamma, "gamma", vec);
  a.need(sm, "saveMean", vec);
  a.need(si, "saveInvstd", vec);
  if (dx.ptr) a.need(dx, "dx", act);
  a.need(dg, "dgamma", vec);
  a.need(db, "dbeta", vec);
  // dx may be x or dy (not the fused output y); dgamma and dbeta are written while everything
  // else is still read.
  outputs_distinct(a, {{&dx, "dx"}}, {{&gamma, "gamma"}, {&sm, "saveMean"}, {&si, "saveInvstd"}});
  if (relu) outputs_distinct(a, {{&dx, "dx"}}, {{&y, "y"}});
  outputs_distinct(a, {{&dg, "dgamma"}, {&db, "dbeta"}},
                   {{&x, "x"}, {&dy, "dy"}, {&gamma, "gamma"}, {&sm, "saveMean"}, {&si, "saveInvstd"}, {&dx, "dx"}});
  if (relu) outputs_distinct(a, {{&dg, "dgamma"}, {&db, "dbeta"}}, {{&y, "y"}});
  const float *px = x.f32(), *py = y.f32(), *pdy = dy.f32(), *pg = gamma.f32(), *psm = sm.f32(), *psi = si.f32();
  float *pdx = dx.f32(), *pdg = dg.f32(), *pdb = db.f32();
  launch(a, [=](cudaStream_t st) {
    return relu ? cuda::batchnorm2d_bwd_relu(outer, ch, inner, px, py, pdy, pg, psm, psi, pdx, pdg, pdb, st)
                : cuda::batchnorm2d_bwd(outer, ch, inner, px, pdy, pg, psm, psi, pdx, pdg, pdb, st);
  });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::LrnFwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "lrnFwd", 10);
  const LrnArgs l = lrn_args(a);
  const Buf x = buf(a, 7, "x"), y = buf(a, 8, "y"), s = buf(a, 9, "scale");
  a.need(x, "x", l.bytes);
  a.need(y, "y", l.bytes);
  a.need(s, "scale", l.bytes);
  outputs_distinct(a, {{&y, "y"}, {&s, "scale"}}, {{&x, "x"}});
  const float* px = x.f32();
  float *py = y.f32(), *ps = s.f32();
  launch(a, [=](cudaStream_t st) { return cuda::lrn_fwd(l.n, l.c, l.hw, l.radius, l.bias, l.alpha, l.beta, px, py, ps, st); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::LrnBwd(const Napi::CallbackInfo& info) {
  CudaArgs a(info, "lrnBwd", 12);
  const LrnArgs l = lrn_args(a);
  const Buf x = buf(a, 7, "x"), y = buf(a, 8, "y"), s = buf(a, 9, "scale");
  const Buf dy = buf(a, 10, "dy"), dx = buf(a, 11, "dx");
  a.need(x, "x", l.bytes);
  a.need(y, "y", l.bytes);
  a.need(s, "scale", l.bytes);
  a.need(dy, "dy", l.bytes);
  a.need(dx, "dx", l.bytes);
  outputs_distinct(a, {{&dx, "dx"}}, {{&x, "x"}, {&y, "y"}, {&s, "scale"}, {&dy, "dy"}});
  const float *px = x.f32(), *py = y.f32(), *ps = s.f32(), *pdy = dy.f32();
  float* pdx = dx.f32();
  launch(a, [=](cudaStream_t st) { return cuda::lrn_bwd(l.n, l.c, l.hw, l.radius, l.bias, l.alpha, l.beta, px, py, ps, pdy, pdx, st); });
  return info.Env().Undefined();
}

}  // namespace imagerate
