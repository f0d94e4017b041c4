// cpu_ops_norm.cc: the normalisation exports of imagerate_cpu.node (kernels in
// kernels/cpu/batchnorm.cc and lrn.cc):
//
//   batchnorm2dFwdTrain(outer, ch, inner, eps, momentum, x, gamma, beta, y, saveMean, saveInvstd,
//                       runningMean, runningVar)
//   batchnorm2dFwdEval(outer, ch, inner, eps, x, gamma, beta, runningMean, runningVar, y)
//   batchnorm2dBwd(outer, ch, inner, x, dy, gamma, saveMean, saveInvstd, dx | -1, dgamma, dbeta)
//   lrnFwd(n, c, hw, radius, bias, alpha, beta, x, y, scale)
//   lrnBwd(n, c, hw, radius, bias, alpha, beta, x, y, scale, dy, dx)
//
// As in the other glue files: every argument and the exact byte need of every buffer are
// checked on the JS thread, with errors that start with the op name, then the kernel is
// queued on the addon's stream. Counts are elements; buffers are float32 ids.
// Aliasing: the batch-norm data outputs (y, dx) may be their data input (x, dy: each element
// is read before it is written, channel by channel); every other output must be a buffer of
// its own, because a kernel still reads the inputs (or the other outputs) after writing it.
// LRN reads neighbouring channels after writing one, so its outputs alias nothing.
//
// These exports are not CpuAddon methods: RegisterNormOps (called from the CpuAddon
// constructor, which hands over its allocator and stream) defines them as plain functions
// whose closures hold those two references; both live as long as the addon instance.
#include <climits>
#include <initializer_list>
#include <string>
#include <utility>

#include "cpu_args.h"
#include "cpu_stream.h"
#include "kernels.h"

namespace imagerate {
namespace {

struct Ctx {
  const CpuAllocator* alloc;
  CpuStream* stream;
};

using Named = std::pair<const Buf*, const char*>;

// Throws unless every output differs from every other output and from every listed input.
void outputs_distinct(const Args& a, std::initializer_list<Named> outs, std::initializer_list<Named> ins) {
  for (auto o = outs.begin(); o != outs.end(); ++o) {
    for (auto p = o + 1; p != outs.end(); ++p) a.distinct(*o->first, o->second, *p->first, p->second);
    for (const Named& i : ins) a.distinct(*o->first, o->second, *i.first, i.second);
  }
}

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

Napi::Value bn_fwd_train(const Napi::CallbackInfo& info, const Ctx& cx) {
  Args a(info, "batchnorm2dFwdTrain", 13);
  int64_t outer, ch, inner;
  const uint64_t act = nchw_bytes(a, &outer, &ch, &inner);
  const float eps = (float)eps_arg(a, 3);
  const double mom = a.finite(4, "momentum");
  if (mom < 0 || mom > 1) a.fail("momentum must be in [0, 1], got " + std::to_string(mom));
  if (outer * inner < 2)
    a.fail("expected more than 1 value per channel when training (outer * inner = " + std::to_string(outer * inner) +
           "): the batch variance is undefined");
  const Buf x = a.buf(5, "x", *cx.alloc), gamma = a.buf(6, "gamma", *cx.alloc), beta = a.buf(7, "beta", *cx.alloc);
  const Buf y = a.buf(8, "y", *cx.alloc), sm = a.buf(9, "saveMean", *cx.alloc), si = a.buf(10, "saveInvstd", *cx.alloc);
  const Buf rm = a.buf(11, "runningMean", *cx.alloc), rv = a.buf(12, "runningVar", *cx.alloc);
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
  cx.stream->enqueue("batchnorm2dFwdTrain", [=] {
    batchnorm2d_fwd_train(outer, ch, inner, eps, m, px, pg, pb, py, psm, psi, prm, prv);
  });
  return info.Env().Undefined();
}

Napi::Value bn_fwd_eval(const Napi::CallbackInfo& info, const Ctx& cx) {
  Args a(info, "batchnorm2dFwdEval", 10);
  int64_t outer, ch, inner;
  const uint64_t act = nchw_bytes(a, &outer, &ch, &inner);
  const float eps = (float)eps_arg(a, 3);
  const Buf x = a.buf(4, "x", *cx.alloc), gamma = a.buf(5, "gamma", *cx.alloc), beta = a.buf(6, "beta", *cx.alloc);
  const Buf rm = a.buf(7, "runningMean", *cx.alloc), rv = a.buf(8, "runningVar", *cx.alloc), y = a.buf(9, "y", *cx.alloc);
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
  cx.stream->enqueue("batchnorm2dFwdEval", [=] {
    batchnorm2d_fwd_eval(outer, ch, inner, eps, px, pg, pb, prm, prv, py);
  });
  return info.Env().Undefined();
}

Napi::Value bn_bwd(const Napi::CallbackInfo& info, const Ctx& cx) {
  Args a(info, "batchnorm2dBwd", 11);
  int64_t outer, ch, inner;
  const uint64_t act = nchw_bytes(a, &outer, &ch, &inner);
  const Buf x = a.buf(3, "x", *cx.alloc), dy = a.buf(4, "dy", *cx.alloc), gamma = a.buf(5, "gamma", *cx.alloc);
  const Buf sm = a.buf(6, "saveMean", *cx.alloc), si = a.buf(7, "saveInvstd", *cx.alloc);
  const Buf dx = a.opt_buf(8, "dx", *cx.alloc), dg = a.buf(9, "dgamma", *cx.alloc), db = a.buf(10, "dbeta", *cx.alloc);
  const uint64_t vec = a.bytes({ch});
  a.need(x, "x", act);
  a.need(dy, "dy", act);
  a.need(gamma, "gamma", vec);
  a.need(sm, "saveMean", vec);
  a.need(si, "saveInvstd", vec);
  if (dx.ptr) a.need(dx, "dx", act);
  a.need(dg, "dgamma", vec);
  a.need(db, "dbeta", vec);
  // dx may be x or dy; dgamma and dbeta are written while everything else is still read.
  outputs_distinct(a, {{&dx, "dx"}}, {{&gamma, "gamma"}, {&sm, "saveMean"}, {&si, "saveInvstd"}});
  outputs_distinct(a, {{&dg, "dgamma"}, {&db, "dbeta"}},
                   {{&x, "x"}, {&dy, "dy"}, {&gamma, "gamma"}, {&sm, "saveMean"}, {&si, "saveInvstd"}, {&dx, "dx"}});
  const float *px = x.f32(), *pdy = dy.f32(), *pg = gamma.f32(), *psm = sm.f32(), *psi = si.f32();
  float *pdx = dx.f32(), *pdg = dg.f32(), *pdb = db.f32();
  cx.stream->enqueue("batchnorm2dBwd", [=] {
    batchnorm2d_bwd(outer, ch, inner, px, pdy, pg, psm, psi, pdx, pdg, pdb);
  });
  return info.Env().Undefined();
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

Napi::Value lrn_fwd_export(const Napi::CallbackInfo& info, const Ctx& cx) {
  Args a(info, "lrnFwd", 10);
  const LrnArgs l = lrn_args(a);
  const Buf x = a.buf(7, "x", *cx.alloc), y = a.buf(8, "y", *cx.alloc), s = a.buf(9, "scale", *cx.alloc);
  a.need(x, "x", l.bytes);
  a.need(y, "y", l.bytes);
  a.need(s, "scale", l.bytes);
  outputs_distinct(a, {{&y, "y"}, {&s, "scale"}}, {{&x, "x"}});
  const float* px = x.f32();
  float *py = y.f32(), *ps = s.f32();
  cx.stream->enqueue("lrnFwd", [=] { lrn_fwd(l.n, l.c, l.hw, l.radius, l.bias, l.alpha, l.beta, px, py, ps); });
  return info.Env().Undefined();
}

Napi::Value lrn_bwd_export(const Napi::CallbackInfo& info, const Ctx& cx) {
  Args a(info, "lrnBwd", 12);
  const LrnArgs l = lrn_args(a);
  const Buf x = a.buf(7, "x", *cx.alloc), y = a.buf(8, "y", *cx.alloc), s = a.buf(9, "scale", *cx.alloc);
  const Buf dy = a.buf(10, "dy", *cx.alloc), dx = a.buf(11, "dx", *cx.alloc);
  a.need(x, "x", l.bytes);
  a.need(y, "y", l.bytes);
  a.need(s, "scale", l.bytes);
  a.need(dy, "dy", l.bytes);
  a.need(dx, "dx", l.bytes);
  outputs_distinct(a, {{&dx, "dx"}}, {{&x, "x"}, {&y, "y"}, {&s, "scale"}, {&dy, "dy"}});
  const float *px = x.f32(), *py = y.f32(), *ps = s.f32(), *pdy = dy.f32();
  float* pdx = dx.f32();
  cx.stream->enqueue("lrnBwd", [=] { lrn_bwd(l.n, l.c, l.hw, l.radius, l.bias, l.alpha, l.beta, px, py, ps, pdy, pdx); });
  return info.Env().Undefined();
}

}  // namespace

void RegisterNormOps(Napi::Env env, Napi::Object exports, const CpuAllocator& alloc, CpuStream& stream) {
  const Ctx cx{&alloc, &stream};
  using Body = Napi::Value (*)(const Napi::CallbackInfo&, const Ctx&);
  // Enumerable, like the CpuAddon methods, so Object.keys(addon) lists these ops too.
  const auto attrs = static_cast<napi_property_attributes>(napi_writable | napi_enumerable | napi_configurable);
  const std::pair<const char*, Body> table[] = {
    {"batchnorm2dFwdTrain", bn_fwd_train},
    {"batchnorm2dFwdEval", bn_fwd_eval},
    {"batchnorm2dBwd", bn_bwd},
    {"lrnFwd", lrn_fwd_export},
    {"lrnBwd", lrn_bwd_export},
  };
  for (const auto& [name, body] : table) {
    Napi::Function fn = Napi::Function::New(env, [cx, body](const Napi::CallbackInfo& info) { return body(info, cx); }, name);
    exports.DefineProperty(Napi::PropertyDescriptor::Value(name, fn, attrs));
  }
}

}  // namespace imagerate
