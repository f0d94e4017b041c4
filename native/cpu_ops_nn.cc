// cpu_ops_nn.cc: the gemm, conv2d and pool2d exports of imagerate_cpu.node. Each checks its
// arguments on the JS thread (dims, output-size formulas, exact byte needs of every buffer,
// no aliasing between an output and the inputs it reads), then queues the kernel of
// kernels.h on the stream.
//
// Parameter arrays (plain JS arrays of integers):
//   conv p  = [n,c,h,w, k,r,s, strideH,strideW, padH,padW, dilH,dilW, p,q]
//   pool pp = [n,c,h,w, kh,kw, strideH,strideW, padH,padW, p,q, countIncludePad]
// with p = floor((h + 2*padH - dilH*(r-1) - 1) / strideH) + 1 (pools: dil 1, r = kh), and
// the same for q; a mismatch is an error naming both values. Every entry must fit in int32,
// so the extent arithmetic cannot overflow.
#include <climits>

#include "cpu_addon.h"
#include "kernels.h"

namespace imagerate {
namespace {

// Output extent of a strided window; < 1 when the window does not fit the padded input.
int64_t out_extent(int64_t in, int64_t pad, int64_t dil, int64_t win, int64_t stride) {
  const int64_t span = in + 2 * pad - dil * (win - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

void check_extent(const Args& a, const char* what, int64_t got, int64_t want, const std::string& formula) {
  if (want < 1) a.fail("window does not fit the padded input along " + formula);
  if (got != want)
    a.fail(std::string(what) + " is " + std::to_string(got) + " but " + formula + " gives " + std::to_string(want));
}

Conv2dParams conv_params(const Args& a, size_t i) {
  const std::vector<int64_t> v = a.ints(i, "p", 15);
  static const char* names[15] = {"n", "c", "h", "w", "k", "r", "s", "strideH", "strideW",
                                  "padH", "padW", "dilH", "dilW", "p", "q"};
  for (int k = 0; k < 15; ++k) {
    const bool is_pad = k == 9 || k == 10;
    if (v[k] > INT32_MAX) a.fail(std::string("p.") + names[k] + " is too large: " + std::to_string(v[k]));
    if (v[k] < (is_pad ? 0 : 1))
      a.fail(std::string("p.") + names[k] + " must be " + (is_pad ? "a non-negative" : "a positive") +
             " integer, got " + std::to_string(v[k]));
  }
  Conv2dParams cp{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14]};
  auto f = [](const char* in, const char* pad, const char* dil, const char* win, const char* st) {
    return std::string("(") + in + " + 2*" + pad + " - " + dil + "*(" + win + "-1) - 1)/" + st + " + 1";
  };
  check_extent(a, "p.p", cp.p, out_extent(cp.h, cp.pad_h, cp.dil_h, cp.r, cp.stride_h), f("h", "padH", "dilH", "r", "strideH"));
  check_extent(a, "p.q", cp.q, out_extent(cp.w, cp.pad_w, cp.dil_w, cp.s, cp.stride_w), f("w", "padW", "dilW", "s", "strideW"));
  return cp;
}

Pool2dParams pool_params(const Args& a, size_t i) {
  const std::vector<int64_t> v = a.ints(i, "pp", 13);
  static const char* names[13] = {"n", "c", "h", "w", "kh", "kw", "strideH", "strideW",
                                  "padH", "padW", "p", "q", "countIncludePad"};
  for (int k = 0; k < 12; ++k) {
    const bool is_pad = k == 8 || k == 9;
    if (v[k] > INT32_MAX) a.fail(std::string("pp.") + names[k] + " is too large: " + std::to_string(v[k]));
    if (v[k] < (is_pad ? 0 : 1))
      a.fail(std::string("pp.") + names[k] + " must be " + (is_pad ? "a non-negative" : "a positive") +
             " integer, got " + std::to_string(v[k]));
  }
  if (v[12] != 0 && v[12] != 1) a.fail("pp.countIncludePad must be 0 or 1, got " + std::to_string(v[12]));
  Pool2dParams pp{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12] == 1};
  check_extent(a, "pp.p", pp.p, out_extent(pp.h, pp.pad_h, 1, pp.kh, pp.stride_h), "(h + 2*padH - kh)/strideH + 1");
  check_extent(a, "pp.q", pp.q, out_extent(pp.w, pp.pad_w, 1, pp.kw, pp.stride_w), "(w + 2*padW - kw)/strideW + 1");
  if (pp.h * pp.w > INT32_MAX) a.fail("h*w must fit in int32 (argmax holds h*W+w indices)");
  return pp;
}

}  // namespace

Napi::Value CpuAddon::Gemm(const Napi::CallbackInfo& info) {
  Args a(info, "gemm", 13);
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
  enqueue("gemm", [=] { gemm_f32(ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc); });
  return info.Env().Undefined();
}

Napi::Value CpuAddon::Conv2dFwd(const Napi::CallbackInfo& info) {
  Args a(info, "conv2dFwd", 5);
  const Conv2dParams cp = conv_params(a, 0);
  const Buf x = buf(a, 1, "x"), w = buf(a, 2, "w"), bias = opt_buf(a, 3, "bias"), y = buf(a, 4, "y");
  a.need(x, "x", a.bytes({cp.n, cp.c, cp.h, cp.w}));
  a.need(w, "w", a.bytes({cp.k, cp.c, cp.r, cp.s}));
  if (bias.ptr) a.need(bias, "bias", a.bytes({cp.k}));
  a.need(y, "y", a.bytes({cp.n, cp.k, cp.p, cp.q}));
  a.distinct(y, "y", x, "x");
  a.distinct(y, "y", w, "w");
  a.distinct(y, "y", bias, "bias");
  const float *px = x.f32(), *pw = w.f32(), *pb = bias.f32();
  float* py = y.f32();
  enqueue("conv2dFwd", [=] { conv2d_fwd(cp, px, pw, pb, py); });
  return info.Env().Undefined();
}

Napi::Value CpuAddon::Conv2dBwdData(const Napi::CallbackInfo& info) {
  Args a(info, "conv2dBwdData", 4);
  const Conv2dParams cp = conv_params(a, 0);
  const Buf dy = buf(a, 1, "dy"), w = buf(a, 2, "w"), dx = buf(a, 3, "dx");
  a.need(dy, "dy", a.bytes({cp.n, cp.k, cp.p, cp.q}));
  a.need(w, "w", a.bytes({cp.k, cp.c, cp.r, cp.s}));
  a.need(dx, "dx", a.bytes({cp.n, cp.c, cp.h, cp.w}));
  a.distinct(dx, "dx", dy, "dy");
  a.distinct(dx, "dx", w, "w");
  const float *pdy = dy.f32(), *pw = w.f32();
  float* pdx = dx.f32();
  enqueue("conv2dBwdData", [=] { conv2d_bwd_data(cp, pdy, pw, pdx); });
  return info.Env().Undefined();
}

Napi::Value CpuAddon::Conv2dBwdFilter(const Napi::CallbackInfo& info) {
  Args a(info, "conv2dBwdFilter", 5);
  const Conv2dParams cp = conv_params(a, 0);
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
  enqueue("conv2dBwdFilter", [=] { conv2d_bwd_filter(cp, px, pdy, pdw, pdb); });
  return info.Env().Undefined();
}

Napi::Value CpuAddon::Maxpool2dFwd(const Napi::CallbackInfo& info) {
  Args a(info, "maxpool2dFwd", 4);
  const Pool2dParams pp = pool_params(a, 0);
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
  enqueue("maxpool2dFwd", [=] { maxpool2d_fwd(pp, px, py, pam); });
  return info.Env().Undefined();
}

Napi::Value CpuAddon::Maxpool2dBwd(const Napi::CallbackInfo& info) {
  Args a(info, "maxpool2dBwd", 4);
  const Pool2dParams pp = pool_params(a, 0);
  const Buf dy = buf(a, 1, "dy"), am = buf(a, 2, "argmax"), dx = buf(a, 3, "dx");
  a.need(dy, "dy", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.need(am, "argmax", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.need(dx, "dx", a.bytes({pp.n, pp.c, pp.h, pp.w}));
  a.distinct(dx, "dx", dy, "dy");
  a.distinct(dx, "dx", am, "argmax");
  const float* pdy = dy.f32();
  const int32_t* pam = am.i32();
  float* pdx = dx.f32();
  enqueue("maxpool2dBwd", [=] { maxpool2d_bwd(pp, pdy, pam, pdx); });
  return info.Env().Undefined();
}

Napi::Value CpuAddon::Avgpool2dFwd(const Napi::CallbackInfo& info) {
  Args a(info, "avgpool2dFwd", 3);
  const Pool2dParams pp = pool_params(a, 0);
  const Buf x = buf(a, 1, "x"), y = buf(a, 2, "y");
  a.need(x, "x", a.bytes({pp.n, pp.c, pp.h, pp.w}));
  a.need(y, "y", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.distinct(y, "y", x, "x");
  const float* px = x.f32();
  float* py = y.f32();
  enqueue("avgpool2dFwd", [=] { avgpool2d_fwd(pp, px, py); });
  return info.Env().Undefined();
}

Napi::Value CpuAddon::Avgpool2dBwd(const Napi::CallbackInfo& info) {
  Args a(info, "avgpool2dBwd", 3);
  const Pool2dParams pp = pool_params(a, 0);
  const Buf dy = buf(a, 1, "dy"), dx = buf(a, 2, "dx");
  a.need(dy, "dy", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.need(dx, "dx", a.bytes({pp.n, pp.c, pp.h, pp.w}));
  a.distinct(dx, "dx", dy, "dy");
  const float* pdy = dy.f32();
  float* pdx = dx.f32();
  enqueue("avgpool2dBwd", [=] { avgpool2d_bwd(pp, pdy, pdx); });
  return info.Env().Undefined();
}

}  // namespace imagerate
