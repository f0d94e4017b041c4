// validate_ops.cc: checks of the non-GEMM CUDA kernels against the CPU kernels (kernels/cpu),
// which are the reference implementation of the contract.
//
// Tolerances: bit-identical where the CUDA kernel does the CPU's float operations in the CPU's
// order (pooling, ReLU, add/mul/axpby/scale/fill/copy, dropout, SGD: compare_exact);
// 1-2 float ulps where both compute in double and round once but sum in a different order
// (bias_grad, batch norm, LRN, softmax-xent: rtol 2e-6..1e-5 with a small atol for values
// near zero, where a double sum's rounding is relative to the larger terms);
// sumsq_check in double: rtol 1e-12. Max-pool inputs are quantised to multiples of 1/4, so
// ties happen and the first-maximum rule is exercised.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "harness.h"
#include "kernels.h"

namespace harness {
namespace {

namespace cu = imagerate::cuda;

// ---------------------------------------------------------------- pooling
void check_pool(Report& rep, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s, int64_t pad,
                bool include_pad, uint64_t seed) {
  const std::string tag = fmt("%lldx%lldx%lldx%lld k%lld s%lld p%lld%s", (long long)n, (long long)c, (long long)h,
                              (long long)w, (long long)k, (long long)s, (long long)pad, include_pad ? " incl" : "");
  if (!rep.wants("pool " + tag) && !rep.wants("maxpool") && !rep.wants("avgpool")) return;
  imagerate::Pool2dParams pp{n, c, h, w, k, k, s, s, pad, pad, 0, 0, include_pad};
  pp.p = (h + 2 * pad - k) / s + 1;
  pp.q = (w + 2 * pad - k) / s + 1;
  const cu::Pool2dParams gp{pp.n, pp.c, pp.h, pp.w, pp.kh, pp.kw, pp.stride_h, pp.stride_w,
                            pp.pad_h, pp.pad_w, pp.p, pp.q, pp.count_include_pad};
  Rng rng(seed);
  const size_t xs = (size_t)(n * c * h * w), ys = (size_t)(n * c * pp.p * pp.q);
  std::vector<float> x = rng.vec(xs, -2.f, 2.f);
  for (auto& v : x) v = std::round(v * 4.f) / 4.f;  // ties
  const std::vector<float> dy = rng.vec(ys);
  std::vector<float> y(ys), dx(xs), ay(ys), adx(xs);
  std::vector<int32_t> arg(ys);
  imagerate::maxpool2d_fwd(pp, x.data(), y.data(), arg.data());
  imagerate::maxpool2d_bwd(pp, dy.data(), arg.data(), dx.data());
  imagerate::avgpool2d_fwd(pp, x.data(), ay.data());
  imagerate::avgpool2d_bwd(pp, dy.data(), adx.data());
  DevBuf<float> dX(x), dDY(dy), dY(ys), dDX(xs);
  DevBuf<int32_t> dA(ys);
  CK(cu::maxpool2d_fwd(gp, dX.get(), dY.get(), dA.get(), nullptr));
  compare_exact(rep, "maxpool fwd " + tag, dY.download(), y);
  compare_exact(rep, "maxpool argmax " + tag, dA.download(), arg);
  CK(cu::maxpool2d_bwd(gp, dDY.get(), dA.get(), dDX.get(), nullptr));
  compare_exact(rep, "maxpool bwd " + tag, dDX.download(), dx);
  CK(cu::avgpool2d_fwd(gp, dX.get(), dY.get(), nullptr));
  compare_exact(rep, "avgpool fwd " + tag, dY.download(), ay);
  CK(cu::avgpool2d_bwd(gp, dDY.get(), dDX.get(), nullptr));
  compare_exact(rep, "avgpool bwd " + tag, dDX.download(), adx);
}

// ---------------------------------------------------------------- pointwise
void check_pointwise(Report& rep, int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> a = rng.vec((size_t)n), b = rng.vec((size_t)n), y0 = rng.vec((size_t)n);
  if (n > 3) {
    a[1] = NAN;
    a[2] = -0.f;
    a[3] = INFINITY;
  }
  DevBuf<float> dA(a), dB(b), dY(y0), dM((size_t)n);
  const std::string tag = fmt("n=%lld", (long long)n);
  auto cpu = [&](auto fn) {
    std::vector<float> out = y0;
    fn(out);
    return out;
  };
  auto reset = [&]() { dY.upload(y0); };
  if (rep.wants("relu " + tag)) {
    CK(cu::relu_fwd(n, dA.get(), dY.get(), nullptr));
    compare_exact(rep, "relu fwd " + tag, dY.download(), cpu([&](std::vector<float>& o) { imagerate::relu_fwd(n, a.data(), o.data()); }));
    CK(cu::relu_bwd(n, dA.get(), dB.get(), dY.get(), nullptr));
    compare_exact(rep, "relu bwd " + tag, dY.download(), cpu([&](std::vector<float>& o) { imagerate::relu_bwd(n, a.data(), b.data(), o.data()); }));
  }
  CK(cu::add_f32(n, dA.get(), dB.get(), dY.get(), nullptr));
  compare_exact(rep, "add " + tag, dY.download(), cpu([&](std::vector<float>& o) { imagerate::add_f32(n, a.data(), b.data(), o.data()); }));
  CK(cu::mul_f32(n, dA.get(), dB.get(), dY.get(), nullptr));
  compare_exact(rep, "mul " + tag, dY.download(), cpu([&](std::vector<float>& o) { imagerate::mul_f32(n, a.data(), b.data(), o.data()); }));
  reset();
  CK(cu::axpby_f32(n, 0.3f, dA.get(), -1.7f, dY.get(), nullptr));
  compare_exact(rep, "axpby " + tag, dY.download(), cpu([&](std::vector<float>& o) { imagerate::axpby_f32(n, 0.3f, a.data(), -1.7f, o.data()); }));
  {
    std::vector<float> nan_y((size_t)n, NAN);
    dY.upload(nan_y);
    CK(cu::axpby_f32(n, 0.3f, dB.get(), 0.f, dY.get(), nullptr));
    std::vector<float> want = nan_y;
    imagerate::axpby_f32(n, 0.3f, b.data(), 0.f, want.data());
    compare_exact(rep, "axpby beta=0 nanY " + tag, dY.download(), want);
  }
  CK(cu::scale_f32(n, -2.5f, dA.get(), dY.get(), nullptr));
  compare_exact(rep, "scale " + tag, dY.download(), cpu([&](std::vector<float>& o) { imagerate::scale_f32(n, -2.5f, a.data(), o.data()); }));
  CK(cu::fill_f32(n, 3.25f, dY.get(), nullptr));
  compare_exact(rep, "fill " + tag, dY.download(), cpu([&](std::vector<float>& o) { imagerate::fill_f32(n, 3.25f, o.data()); }));
  CK(cu::copy_f32(n, dB.get(), dY.get(), nullptr));
  compare_exact(rep, "copy " + tag, dY.download(), b);
  for (float p : {0.f, 0.3f, 1.f}) {
    std::vector<float> m((size_t)n), y((size_t)n);
    imagerate::dropout_fwd(n, p, 12345 + seed, b.data(), m.data(), y.data());
    CK(cu::dropout_fwd(n, p, 12345 + seed, dB.get(), dM.get(), dY.get(), nullptr));
    compare_exact(rep, fmt("dropout mask p=%.1f ", p) + tag, dM.download(), m);
    compare_exact(rep, fmt("dropout y p=%.1f ", p) + tag, dY.download(), y);
    // The seed read from device memory (what a replayed CUDA graph does) gives the same mask.
    DevBuf<uint32_t> dSeed(std::vector<uint32_t>{(uint32_t)(12345 + seed)});
    CK(cu::dropout_fwd_device_seed(n, p, dSeed.get(), dB.get(), dM.get(), dY.get(), nullptr));
    compare_exact(rep, fmt("dropout device seed mask p=%.1f ", p) + tag, dM.download(), m);
    compare_exact(rep, fmt("dropout device seed y p=%.1f ", p) + tag, dY.download(), y);
  }
  {
    DevBuf<double> dOut(2);
    double want[2];
    imagerate::sumsq_check(n, b.data(), want);
    CK(cu::sumsq_check(n, dB.get(), dOut.get(), nullptr));
    const std::vector<double> got = dOut.download();
    const bool ok = std::fabs(got[0] - want[0]) <= 1e-12 * std::fabs(want[0]) + 1e-300 && got[1] == want[1];
    (rep.*(ok ? &Report::pass : &Report::fail))("sumsq finite " + tag, fmt("got %.17g/%g want %.17g/%g", got[0], got[1], want[0], want[1]));
    imagerate::sumsq_check(n, a.data(), want);  // a holds NaN and inf when n > 3
    CK(cu::sumsq_check(n, dA.get(), dOut.get(), nullptr));
    const std::vector<double> g2 = dOut.download();
    const bool ok2 = (std::isnan(want[0]) ? std::isnan(g2[0]) : std::fabs(g2[0] - want[0]) <= 1e-12 * std::fabs(want[0])) &&
                     g2[1] == want[1];
    (rep.*(ok2 ? &Report::pass : &Report::fail))("sumsq nonfinite " + tag, fmt("got %g/%g want %g/%g", g2[0], g2[1], want[0], want[1]));
  }
  {
    // SGD, bit-identical to the CPU for each flavour
    const std::vector<float> g = rng.vec((size_t)n), v0 = rng.vec((size_t)n);
    for (int flavour = 0; flavour < 3; ++flavour) {
      const float mom = flavour == 0 ? 0.f : 0.9f, wd = 5e-4f, lr = 0.1f;
      const bool nest = flavour == 2;
      std::vector<float> w = b, v = flavour == 0 ? std::vector<float>((size_t)n, NAN) : v0;
      DevBuf<float> dW(w), dG(g), dV(v), dW2(w), dV2(v);
      DevBuf<float> dLr(std::vector<float>{lr});
      imagerate::sgd_momentum_update(n, lr, mom, wd, nest, w.data(), g.data(), v.data());
      CK(cu::sgd_momentum_update(n, lr, mom, wd, nest, dW.get(), dG.get(), dV.get(), nullptr));
      CK(cu::sgd_momentum_update_device_lr(n, dLr.get(), mom, wd, nest, dW2.get(), dG.get(), dV2.get(), nullptr));
      const std::string nm = fmt("sgd mom=%.1f nesterov=%d ", mom, (int)nest) + tag;
      compare_exact(rep, nm + " w", dW.download(), w);
      compare_exact(rep, nm + " v", dV.download(), v);
      compare_exact(rep, nm + " device lr w", dW2.download(), w);
      compare_exact(rep, nm + " device lr v", dV2.download(), v);
    }
  }
}

void check_bias(Report& rep, int64_t outer, int64_t ch, int64_t inner, uint64_t seed) {
  const std::string tag = fmt("%lldx%lldx%lld", (long long)outer, (long long)ch, (long long)inner);
  Rng rng(seed);
  const size_t total = (size_t)(outer * ch * inner);
  const std::vector<float> x = rng.vec(total), b = rng.vec((size_t)ch);
  std::vector<float> y(total), db((size_t)ch);
  imagerate::bias_add(outer, ch, inner, x.data(), b.data(), y.data());
  imagerate::bias_grad(outer, ch, inner, x.data(), db.data());
  DevBuf<float> dX(x), dB(b), dY(total), dDB((size_t)ch);
  CK(cu::bias_add(outer, ch, inner, dX.get(), dB.get(), dY.get(), nullptr));
  compare_exact(rep, "bias_add " + tag, dY.download(), y);
  CK(cu::bias_grad(outer, ch, inner, dX.get(), dDB.get(), nullptr));
  compare(rep, "bias_grad " + tag, dDB.download(), db, 1e-6, 2e-6);  // double sums, different order
}

// ---------------------------------------------------------------- batch norm
void check_bn(Report& rep, int64_t outer, int64_t ch, int64_t inner, float offset, uint64_t seed) {
  const std::string tag = fmt("%lldx%lldx%lld off=%g", (long long)outer, (long long)ch, (long long)inner, offset);
  if (!rep.wants("batchnorm " + tag) && !rep.wants("batchnorm")) return;
  Rng rng(seed);
  const size_t total = (size_t)(outer * ch * inner), C = (size_t)ch;
  std::vector<float> x = rng.vec(total);
  for (auto& v : x) v += offset;
  const std::vector<float> gamma = rng.vec(C, 0.5f, 1.5f), beta = rng.vec(C), dy = rng.vec(total);
  const std::vector<float> rm0 = rng.vec(C), rv0 = rng.vec(C, 0.5f, 2.f);
  for (int relu = 0; relu < 2; ++relu) {
    const std::string nm = std::string(relu ? "batchnorm+relu " : "batchnorm ") + tag;
    // CPU reference (ReLU variants: relu after the forward, relu_bwd before the backward).
    std::vector<float> y(total), sm(C), si(C), rm = rm0, rv = rv0, dx(total), dg(C), dbt(C), ye(total);
    imagerate::batchnorm2d_fwd_train(outer, ch, inner, 1e-5f, 0.1f, x.data(), gamma.data(), beta.data(), y.data(),
                                     sm.data(), si.data(), rm.data(), rv.data());
    if (relu) imagerate::relu_fwd((int64_t)total, y.data(), y.data());
    std::vector<float> dyr = dy;
    if (relu) imagerate::relu_bwd((int64_t)total, y.data(), dy.data(), dyr.data());
    imagerate::batchnorm2d_bwd(outer, ch, inner, x.data(), dyr.data(), gamma.data(), sm.data(), si.data(), dx.data(),
                               dg.data(), dbt.data());
    imagerate::batchnorm2d_fwd_eval(outer, ch, inner, 1e-5f, x.data(), gamma.data(), beta.data(), rm0.data(),
                                    rv0.data(), ye.data());
    if (relu) imagerate::relu_fwd((int64_t)total, ye.data(), ye.data());

    DevBuf<float> dX(x), dG(gamma), dBt(beta), dY(total), dSM(C), dSI(C), dRM(rm0), dRV(rv0), dDY(dy), dDX(total),
        dDG(C), dDB(C), dYE(total);
    if (relu)
      CK(cu::batchnorm2d_fwd_train_relu(outer, ch, inner, 1e-5f, 0.1f, dX.get(), dG.get(), dBt.get(), dY.get(),
                                        dSM.get(), dSI.get(), dRM.get(), dRV.get(), nullptr));
    else
      CK(cu::batchnorm2d_fwd_train(outer, ch, inner, 1e-5f, 0.1f, dX.get(), dG.get(), dBt.get(), dY.get(), dSM.get(),
                                   dSI.get(), dRM.get(), dRV.get(), nullptr));
    compare(rep, nm + " fwd y", dY.download(), y, 1e-5, 1e-5);
    compare(rep, nm + " save_mean", dSM.download(), sm, 1e-6 * (1 + std::fabs(offset)), 1e-6);
    compare(rep, nm + " save_invstd", dSI.download(), si, 0, 1e-5);
    compare(rep, nm + " running_mean", dRM.download(), rm, 1e-6 * (1 + std::fabs(offset)), 1e-6);
    compare(rep, nm + " running_var", dRV.download(), rv, 0, 1e-5);
    // Backward from the CPU's saved statistics (same inputs for both).
    DevBuf<float> dSMc(sm), dSIc(si), dYc(y);
    if (relu)
      CK(cu::batchnorm2d_bwd_relu(outer, ch, inner, dX.get(), dYc.get(), dDY.get(), dG.get(), dSMc.get(), dSIc.get(),
                                  dDX.get(), dDG.get(), dDB.get(), nullptr));
    else
      CK(cu::batchnorm2d_bwd(outer, ch, inner, dX.get(), dDY.get(), dG.get(), dSMc.get(), dSIc.get(), dDX.get(),
                             dDG.get(), dDB.get(), nullptr));
    compare(rep, nm + " bwd dx", dDX.download(), dx, 1e-5, 1e-4);
    compare(rep, nm + " bwd dgamma", dDG.download(), dg, 1e-5, 1e-5);
    compare(rep, nm + " bwd dbeta", dDB.download(), dbt, 1e-5, 1e-5);
    {
      DevBuf<float> rmE(rm0), rvE(rv0);
      if (relu)
        CK(cu::batchnorm2d_fwd_eval_relu(outer, ch, inner, 1e-5f, dX.get(), dG.get(), dBt.get(), rmE.get(), rvE.get(),
                                         dYE.get(), nullptr));
      else
        CK(cu::batchnorm2d_fwd_eval(outer, ch, inner, 1e-5f, dX.get(), dG.get(), dBt.get(), rmE.get(), rvE.get(),
                                    dYE.get(), nullptr));
      compare(rep, nm + " eval y", dYE.download(), ye, 1e-6, 1e-6);
    }
  }
}

// ---------------------------------------------------------------- LRN
void check_lrn(Report& rep, int64_t n, int64_t c, int64_t hw, int64_t radius, float beta, uint64_t seed) {
  const std::string tag = fmt("%lldx%lldx%lld r%lld beta=%.2f", (long long)n, (long long)c, (long long)hw,
                              (long long)radius, beta);
  Rng rng(seed);
  const size_t total = (size_t)(n * c * hw);
  const std::vector<float> x = rng.vec(total, -2.f, 2.f), dy = rng.vec(total);
  const float bias = 1.f, alpha = 1e-2f;
  std::vector<float> y(total), s(total), dx(total);
  imagerate::lrn_fwd(n, c, hw, radius, bias, alpha, beta, x.data(), y.data(), s.data());
  imagerate::lrn_bwd(n, c, hw, radius, bias, alpha, beta, x.data(), y.data(), s.data(), dy.data(), dx.data());
  DevBuf<float> dX(x), dY(total), dS(total), dDY(dy), dDX(total), cY(y), cS(s);
  CK(cu::lrn_fwd(n, c, hw, radius, bias, alpha, beta, dX.get(), dY.get(), dS.get(), nullptr));
  compare(rep, "lrn fwd y " + tag, dY.download(), y, 1e-7, 2e-6);
  compare(rep, "lrn fwd scale " + tag, dS.download(), s, 0, 2e-6);
  CK(cu::lrn_bwd(n, c, hw, radius, bias, alpha, beta, dX.get(), cY.get(), cS.get(), dDY.get(), dDX.get(), nullptr));
  compare(rep, "lrn bwd " + tag, dDX.download(), dx, 1e-7, 2e-6);
}

// ---------------------------------------------------------------- softmax cross-entropy
void check_xent(Report& rep, int64_t N, int64_t C, float eps, uint64_t seed) {
  const std::string tag = fmt("N=%lld C=%lld eps=%.2f", (long long)N, (long long)C, eps);
  Rng rng(seed);
  const std::vector<float> logits = rng.vec((size_t)(N * C), -6.f, 6.f);
  std::vector<int32_t> labels((size_t)N);
  for (auto& l : labels) l = (int32_t)(rng.next() % (uint64_t)C);
  std::vector<float> probs((size_t)(N * C)), loss((size_t)N), dl((size_t)(N * C));
  imagerate::softmax_xent_fwd(N, C, eps, logits.data(), labels.data(), probs.data(), loss.data());
  imagerate::softmax_xent_bwd(N, C, eps, 1.f / (float)N, probs.data(), labels.data(), dl.data());
  DevBuf<float> dL(logits), dP((size_t)(N * C)), dLoss((size_t)N), dD((size_t)(N * C)), cP(probs);
  DevBuf<int32_t> dLab(labels);
  CK(cu::softmax_xent_fwd(N, C, eps, dL.get(), dLab.get(), dP.get(), dLoss.get(), nullptr, nullptr));
  compare(rep, "xent fwd probs " + tag, dP.download(), probs, 1e-9, 2e-6);
  compare(rep, "xent fwd loss " + tag, dLoss.download(), loss, 1e-6, 2e-6);
  CK(cu::softmax_xent_bwd(N, C, eps, 1.f / (float)N, cP.get(), dLab.get(), dD.get(), nullptr, nullptr));
  compare_exact(rep, "xent bwd " + tag, dD.download(), dl);
  // In place (probs over logits, dlogits over probs), as the CPU allows.
  CK(cu::softmax_xent_fwd(N, C, eps, dL.get(), dLab.get(), dL.get(), dLoss.get(), nullptr, nullptr));
  compare(rep, "xent fwd in-place " + tag, dL.download(), probs, 1e-9, 2e-6);
  CK(cu::softmax_xent_bwd(N, C, eps, 1.f / (float)N, cP.get(), dLab.get(), cP.get(), nullptr, nullptr));
  compare_exact(rep, "xent bwd in-place " + tag, cP.download(), dl);
  // Bad labels (C at row 0, -1 at the last row when N > 2): NaN loss and NaN gradient rows,
  // nothing else touched, and each counted in the fault slots (kernels.cuh, "Faults").
  std::vector<int32_t> bad = labels;
  bad[0] = (int32_t)C;
  if (N > 2) bad[(size_t)(N - 1)] = -1;
  const uint32_t nbad = N > 2 ? 2 : 1;
  dLab.upload(bad);
  DevBuf<uint32_t> faults(std::vector<uint32_t>((size_t)(cu::kFaultSlots * cu::kFaultWords), 0u));
  uint32_t* fwd_slot = faults.get() + cu::kFaultXentFwd * cu::kFaultWords;
  uint32_t* bwd_slot = faults.get() + cu::kFaultXentBwd * cu::kFaultWords;
  CK(cu::softmax_xent_fwd(N, C, eps, dL.get() /*now probs; any finite input*/, dLab.get(), dP.get(), dLoss.get(), fwd_slot, nullptr));
  CK(cu::softmax_xent_bwd(N, C, eps, 1.f, dP.get(), dLab.get(), dD.get(), bwd_slot, nullptr));
  const std::vector<float> lo = dLoss.download(), d = dD.download();
  bool ok = std::isnan(lo[0]);
  for (int64_t j = 0; j < C; ++j) ok = ok && std::isnan(d[(size_t)j]);
  for (int64_t i = 1; i < N; ++i) ok = ok && (std::isfinite(lo[(size_t)i]) != (nbad == 2 && i == N - 1));
  (rep.*(ok ? &Report::pass : &Report::fail))("xent bad label -> NaN row " + tag, ok ? "" : "expected NaN in the bad rows only");
  const std::vector<uint32_t> f = faults.download();
  for (int slot : {(int)cu::kFaultXentFwd, (int)cu::kFaultXentBwd}) {
    const uint32_t* w = f.data() + slot * cu::kFaultWords;
    // Largest and smallest bad label (kernels.cuh, "Faults"): C, and -1 when there are two.
    const int32_t hi = (int32_t)(w[3] ^ 0x80000000u), lo = (int32_t)(~w[4] ^ 0x80000000u);
    const int32_t want_lo = nbad == 2 ? -1 : (int32_t)C;
    const bool good = w[0] == nbad && ~w[1] == 0u && w[2] == (uint32_t)C && hi == (int32_t)C && lo == want_lo;
    (rep.*(good ? &Report::pass : &Report::fail))(
        std::string("xent bad label fault slot ") + (slot == cu::kFaultXentFwd ? "fwd " : "bwd ") + tag,
        good ? "" : fmt("count %u (want %u), first row %u (want 0), C %u (want %lld), labels %d..%d (want %d..%lld)",
                        w[0], nbad, ~w[1], w[2], (long long)C, lo, hi, want_lo, (long long)C));
  }
}

}  // namespace

void validate_ops(const Options& opt, Report& rep) {
  uint64_t seed = 5000;
  // Pooling: overlapping windows, padding, windows wholly in padding (pad >= k), global pool.
  struct P {
    int64_t n, c, h, w, k, s, pad;
  } pools[] = {{2, 3, 7, 9, 3, 2, 1}, {2, 3, 8, 8, 2, 2, 0}, {1, 2, 5, 6, 3, 1, 1}, {1, 1, 1, 1, 1, 1, 0},
               {2, 2, 7, 7, 7, 1, 3}, {1, 2, 3, 4, 2, 1, 2}, {4, 8, 56, 56, 3, 2, 1}, {2, 4, 13, 11, 5, 3, 2}};
  for (const P& p : pools)
    for (int incl = 0; incl < 2; ++incl) check_pool(rep, p.n, p.c, p.h, p.w, p.k, p.s, p.pad, incl, seed++);
  for (int64_t n : {1LL, 5LL, 1000LL, 100003LL}) check_pointwise(rep, n, seed++);
  if (!opt.quick) check_pointwise(rep, 3000017, seed++);
  check_bias(rep, 4, 3, 49, seed++);
  check_bias(rep, 37, 1000, 1, seed++);
  check_bias(rep, 3, 5, 7, seed++);
  check_bias(rep, 64, 32, 196, seed++);
  struct B {
    int64_t outer, ch, inner;
    float off;
  } bns[] = {{4, 3, 49, 0.f}, {2, 5, 1, 0.f}, {3, 7, 31, 0.f}, {16, 32, 196, 0.f}, {8, 4, 50, 1000.f}, {64, 10, 1, 3.f}};
  for (const B& b : bns) check_bn(rep, b.outer, b.ch, b.inner, b.off, seed++);
  check_lrn(rep, 2, 7, 13, 2, 0.75f, seed++);
  check_lrn(rep, 2, 5, 9, 1, 0.5f, seed++);
  check_lrn(rep, 1, 6, 5, 2, 1.0f, seed++);
  check_lrn(rep, 3, 9, 4, 3, 0.6f, seed++);
  check_lrn(rep, 1, 4, 3, 0, 0.75f, seed++);
  check_xent(rep, 1, 10, 0.f, seed++);
  check_xent(rep, 37, 10, 0.1f, seed++);
  check_xent(rep, 5, 1000, 0.1f, seed++);
  check_xent(rep, 3, 1, 0.f, seed++);
}

}  // namespace harness
