// cuda_op_args.cc: see cuda_op_args.h. The conv/pool checks are cpu_ops_nn.cc's, on the
// CUDA parameter structs (same fields): every entry must fit in int32, so the kernels' extent
// arithmetic cannot overflow, and p/q must match the output-size formula.
#include "cuda_op_args.h"

#include <climits>
#include <cmath>
#include <string>

namespace imagerate {

namespace {

constexpr double kMaxSafeInt = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER

// The CPU addon's rendering of a bad argument (cpu_args.cc), for identical messages.
std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) {
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d == std::floor(d) && std::fabs(d) <= kMaxSafeInt) return std::to_string((int64_t)d);
    return std::to_string(d);
  }
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsString()) return "a string";
  if (v.IsArray()) return "an array";
  if (v.IsObject()) return "an object";
  return "a non-number";
}

int64_t out_extent(int64_t in, int64_t pad, int64_t dil, int64_t win, int64_t stride) {
  const int64_t span = in + 2 * pad - dil * (win - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

void check_extent(const Args& a, const char* what, int64_t got, int64_t want, const std::string& formula) {
  if (want < 1) a.fail("window does not fit the padded input along " + formula);
  if (got != want)
    a.fail(std::string(what) + " is " + std::to_string(got) + " but " + formula + " gives " + std::to_string(want));
}

}  // namespace

Buf device_buf(const CudaArgs& a, size_t i, const char* name, const CudaAllocator& alloc) {
  const Napi::Value v = a.raw(i);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1.0;
  if (!v.IsNumber() || d != std::floor(d) || d < 1 || d > kMaxSafeInt)
    a.type_fail(std::string("argument ") + name + " must be a buffer id, got " + describe(v));
  const CudaBlock* b = alloc.find((uint64_t)d);
  if (!b) a.fail("unknown or freed buffer id " + describe(v) + " (argument " + name + ")");
  return Buf{(uint64_t)d, b->ptr, b->bytes};
}

bool is_no_buffer(const CudaArgs& a, size_t i) {
  const Napi::Value v = a.raw(i);
  return v.IsNumber() && v.As<Napi::Number>().DoubleValue() == -1.0;
}

cuda::Conv2dParams conv_params(const Args& a, size_t i) {
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
  cuda::Conv2dParams cp{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14]};
  auto f = [](const char* in, const char* pad, const char* dil, const char* win, const char* st) {
    return std::string("(") + in + " + 2*" + pad + " - " + dil + "*(" + win + "-1) - 1)/" + st + " + 1";
  };
  check_extent(a, "p.p", cp.p, out_extent(cp.h, cp.pad_h, cp.dil_h, cp.r, cp.stride_h), f("h", "padH", "dilH", "r", "strideH"));
  check_extent(a, "p.q", cp.q, out_extent(cp.w, cp.pad_w, cp.dil_w, cp.s, cp.stride_w), f("w", "padW", "dilW", "s", "strideW"));
  return cp;
}

cuda::Pool2dParams pool_params(const Args& a, size_t i) {
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
  cuda::Pool2dParams pp{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12] == 1};
  check_extent(a, "pp.p", pp.p, out_extent(pp.h, pp.pad_h, 1, pp.kh, pp.stride_h), "(h + 2*padH - kh)/strideH + 1");
  check_extent(a, "pp.q", pp.q, out_extent(pp.w, pp.pad_w, 1, pp.kw, pp.stride_w), "(w + 2*padW - kw)/strideW + 1");
  if (pp.h * pp.w > INT32_MAX) a.fail("h*w must fit in int32 (argmax holds h*W+w indices)");
  return pp;
}

void outputs_distinct(const Args& a, std::initializer_list<NamedBuf> outs, std::initializer_list<NamedBuf> ins) {
  for (auto o = outs.begin(); o != outs.end(); ++o) {
    for (auto p = o + 1; p != outs.end(); ++p) a.distinct(*o->first, o->second, *p->first, p->second);
    for (const NamedBuf& i : ins) a.distinct(*o->first, o->second, *i.first, i.second);
  }
}

}  // namespace imagerate
