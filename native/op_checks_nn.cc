// op_checks_nn.cc: the checks of the gemm, conv2d and pool2d exports (see op_checks.h): dims,
// output-size formulas, exact byte needs of every buffer, no aliasing between an output and
// the inputs it reads.
//
//   gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
//   conv2dFwd(p, x, w, bias | -1, y)        conv2dBwdData(p, dy, w, dx)
//   conv2dBwdFilter(p, x, dy, dw, db | -1)
//   maxpool2dFwd(pp, x, y, argmax)          maxpool2dBwd(pp, dy, argmax, dx)
//   avgpool2dFwd(pp, x, y)                  avgpool2dBwd(pp, dy, dx)
//
// Parameter arrays (plain JS arrays of integers):
//   conv p  = [n,c,h,w, k,r,s, strideH,strideW, padH,padW, dilH,dilW, p,q]
//   pool pp = [n,c,h,w, kh,kw, strideH,strideW, padH,padW, p,q, countIncludePad]
// with p = floor((h + 2*padH - dilH*(r-1) - 1) / strideH) + 1 (pools: dil 1, r = kh), and
// the same for q; a mismatch is an error naming both values. Every entry must fit in int32,
// so the kernels' extent arithmetic cannot overflow.
#include <climits>
#include <string>

#include "op_checks.h"

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

// The parameter array at i: `len` integers, each in [0 or 1, INT32_MAX] (pads may be 0).
std::vector<int64_t> param_array(const Args& a, size_t i, const char* array, const char* const* names, size_t len,
                                 size_t checked, size_t pad0) {
  const std::vector<int64_t> v = a.ints(i, array, len);
  for (size_t k = 0; k < checked; ++k) {
    const bool is_pad = k == pad0 || k == pad0 + 1;
    if (v[k] > INT32_MAX) a.fail(std::string(array) + "." + names[k] + " is too large: " + std::to_string(v[k]));
    if (v[k] < (is_pad ? 0 : 1))
      a.fail(std::string(array) + "." + names[k] + " must be " + (is_pad ? "a non-negative" : "a positive") +
             " integer, got " + std::to_string(v[k]));
  }
  return v;
}

Conv2dShape conv_params(const Args& a, size_t i) {
  static const char* names[15] = {"n", "c", "h", "w", "k", "r", "s", "strideH", "strideW",
                                  "padH", "padW", "dilH", "dilW", "p", "q"};
  const std::vector<int64_t> v = param_array(a, i, "p", names, 15, 15, 9);
  Conv2dShape cp{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14]};
  auto f = [](const char* in, const char* pad, const char* dil, const char* win, const char* st) {
    return std::string("(") + in + " + 2*" + pad + " - " + dil + "*(" + win + "-1) - 1)/" + st + " + 1";
  };
  check_extent(a, "p.p", cp.p, out_extent(cp.h, cp.pad_h, cp.dil_h, cp.r, cp.stride_h), f("h", "padH", "dilH", "r", "strideH"));
  check_extent(a, "p.q", cp.q, out_extent(cp.w, cp.pad_w, cp.dil_w, cp.s, cp.stride_w), f("w", "padW", "dilW", "s", "strideW"));
  return cp;
}

Pool2dShape pool_params(const Args& a, size_t i) {
  static const char* names[13] = {"n", "c", "h", "w", "kh", "kw", "strideH", "strideW",
                                  "padH", "padW", "p", "q", "countIncludePad"};
  const std::vector<int64_t> v = param_array(a, i, "pp", names, 13, 12, 8);
  if (v[12] != 0 && v[12] != 1) a.fail("pp.countIncludePad must be 0 or 1, got " + std::to_string(v[12]));
  Pool2dShape pp{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12] == 1};
  check_extent(a, "pp.p", pp.p, out_extent(pp.h, pp.pad_h, 1, pp.kh, pp.stride_h), "(h + 2*padH - kh)/strideH + 1");
  check_extent(a, "pp.q", pp.q, out_extent(pp.w, pp.pad_w, 1, pp.kw, pp.stride_w), "(w + 2*padW - kw)/strideW + 1");
  if (pp.h * pp.w > INT32_MAX) a.fail("h*w must fit in int32 (argmax holds h*W+w indices)");
  return pp;
}

GemmCall gemm(const Args& a, BufferTable& t) {
  const bool ta = a.flag(0, "transA"), tb = a.flag(1, "transB");
  const int64_t m = a.dim(2, "m"), n = a.dim(3, "n"), k = a.dim(4, "k");
  const float alpha = (float)a.number(5, "alpha");
  const Buf A = a.buf(6, "a", t);
  const int64_t lda = a.dim(7, "lda");
  const Buf B = a.buf(8, "b", t);
  const int64_t ldb = a.dim(9, "ldb");
  const float beta = (float)a.number(10, "beta");
  const Buf C = a.buf(11, "c", t);
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
  return GemmCall{ta, tb, m, n, k, alpha, beta, A.f32(), B.f32(), C.f32(), lda, ldb, ldc};
}

Conv2dFwdCall conv2d_fwd(const Args& a, BufferTable& t) {
  const Conv2dShape cp = conv_params(a, 0);
  const Buf x = a.buf(1, "x", t), w = a.buf(2, "w", t), bias = a.opt_buf(3, "bias", t), y = a.buf(4, "y", t);
  a.need(x, "x", a.bytes({cp.n, cp.c, cp.h, cp.w}));
  a.need(w, "w", a.bytes({cp.k, cp.c, cp.r, cp.s}));
  if (bias.ptr) a.need(bias, "bias", a.bytes({cp.k}));
  a.need(y, "y", a.bytes({cp.n, cp.k, cp.p, cp.q}));
  a.outputs_distinct({{&y, "y"}}, {{&x, "x"}, {&w, "w"}, {&bias, "bias"}});
  return Conv2dFwdCall{cp, x.f32(), w.f32(), bias.f32(), y.f32()};
}

Conv2dBwdDataCall conv2d_bwd_data(const Args& a, BufferTable& t) {
  const Conv2dShape cp = conv_params(a, 0);
  const Buf dy = a.buf(1, "dy", t), w = a.buf(2, "w", t), dx = a.buf(3, "dx", t);
  a.need(dy, "dy", a.bytes({cp.n, cp.k, cp.p, cp.q}));
  a.need(w, "w", a.bytes({cp.k, cp.c, cp.r, cp.s}));
  a.need(dx, "dx", a.bytes({cp.n, cp.c, cp.h, cp.w}));
  a.outputs_distinct({{&dx, "dx"}}, {{&dy, "dy"}, {&w, "w"}});
  return Conv2dBwdDataCall{cp, dy.f32(), w.f32(), dx.f32()};
}

Conv2dBwdFilterCall conv2d_bwd_filter(const Args& a, BufferTable& t) {
  const Conv2dShape cp = conv_params(a, 0);
  const Buf x = a.buf(1, "x", t), dy = a.buf(2, "dy", t), dw = a.buf(3, "dw", t), db = a.opt_buf(4, "db", t);
  a.need(x, "x", a.bytes({cp.n, cp.c, cp.h, cp.w}));
  a.need(dy, "dy", a.bytes({cp.n, cp.k, cp.p, cp.q}));
  a.need(dw, "dw", a.bytes({cp.k, cp.c, cp.r, cp.s}));
  if (db.ptr) a.need(db, "db", a.bytes({cp.k}));
  a.outputs_distinct({{&dw, "dw"}}, {{&x, "x"}, {&dy, "dy"}});
  a.outputs_distinct({{&db, "db"}}, {{&x, "x"}, {&dy, "dy"}, {&dw, "dw"}});
  return Conv2dBwdFilterCall{cp, x.f32(), dy.f32(), dw.f32(), db.f32()};
}

Maxpool2dFwdCall maxpool2d_fwd(const Args& a, BufferTable& t) {
  const Pool2dShape pp = pool_params(a, 0);
  const Buf x = a.buf(1, "x", t), y = a.buf(2, "y", t), am = a.buf(3, "argmax", t);
  a.need(x, "x", a.bytes({pp.n, pp.c, pp.h, pp.w}));
  a.need(y, "y", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.need(am, "argmax", a.bytes({pp.n, pp.c, pp.p, pp.q}));  // int32
  a.distinct(y, "y", x, "x");
  a.outputs_distinct({{&am, "argmax"}}, {{&x, "x"}, {&y, "y"}});
  return Maxpool2dFwdCall{pp, x.f32(), y.f32(), am.i32()};
}

Maxpool2dBwdCall maxpool2d_bwd(const Args& a, BufferTable& t) {
  const Pool2dShape pp = pool_params(a, 0);
  const Buf dy = a.buf(1, "dy", t), am = a.buf(2, "argmax", t), dx = a.buf(3, "dx", t);
  a.need(dy, "dy", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.need(am, "argmax", a.bytes({pp.n, pp.c, pp.p, pp.q}));
  a.need(dx, "dx", a.bytes({pp.n, pp.c, pp.h, pp.w}));
  a.outputs_distinct({{&dx, "dx"}}, {{&dy, "dy"}, {&am, "argmax"}});
  return Maxpool2dBwdCall{pp, dy.f32(), am.i32(), dx.f32()};
}

// avgpool2dFwd(pp, x, y) and avgpool2dBwd(pp, dy, dx): one input of the input shape and one
// output of the output shape, or the other way round.
Pool2dCall avgpool2d(const Args& a, BufferTable& t, bool backward) {
  const Pool2dShape pp = pool_params(a, 0);
  const char* in_name = backward ? "dy" : "x";
  const char* out_name = backward ? "dx" : "y";
  const Buf in = a.buf(1, in_name, t), out = a.buf(2, out_name, t);
  const uint64_t input = a.bytes({pp.n, pp.c, pp.h, pp.w}), output = a.bytes({pp.n, pp.c, pp.p, pp.q});
  a.need(in, in_name, backward ? output : input);
  a.need(out, out_name, backward ? input : output);
  a.distinct(out, out_name, in, in_name);
  return Pool2dCall{pp, in.f32(), out.f32()};
}

}  // namespace

const OpSpec<GemmCall> kGemm{"gemm", 13, gemm};
const OpSpec<Conv2dFwdCall> kConv2dFwd{"conv2dFwd", 5, conv2d_fwd};
const OpSpec<Conv2dFwdCall> kConv2dFwdBiasRelu{"conv2dFwdBiasRelu", 5, conv2d_fwd};
const OpSpec<Conv2dBwdDataCall> kConv2dBwdData{"conv2dBwdData", 4, conv2d_bwd_data};
const OpSpec<Conv2dBwdFilterCall> kConv2dBwdFilter{"conv2dBwdFilter", 5, conv2d_bwd_filter};
const OpSpec<Maxpool2dFwdCall> kMaxpool2dFwd{"maxpool2dFwd", 4, maxpool2d_fwd};
const OpSpec<Maxpool2dBwdCall> kMaxpool2dBwd{"maxpool2dBwd", 4, maxpool2d_bwd};
const OpSpec<Pool2dCall> kAvgpool2dFwd{"avgpool2dFwd", 3, [](const Args& a, BufferTable& t) { return avgpool2d(a, t, false); }};
const OpSpec<Pool2dCall> kAvgpool2dBwd{"avgpool2dBwd", 3, [](const Args& a, BufferTable& t) { return avgpool2d(a, t, true); }};

}  // namespace imagerate
