// op_args.cc: see op_args.h.
#include "op_args.h"

#include <cmath>

namespace imagerate {

namespace {
constexpr double kMaxSafeInt = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER

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
}  // namespace

Args::Args(const Napi::CallbackInfo& info, const char* op, size_t min_count, size_t max_count)
    : info_(info), op_(op) {
  if (max_count == 0) max_count = min_count;
  const size_t n = info.Length();
  if (n < min_count || n > max_count) {
    std::string want = std::to_string(min_count);
    if (max_count != min_count) want += " to " + std::to_string(max_count);
    type_fail("expected " + want + " arguments, got " + std::to_string(n));
  }
}

void Args::fail(const std::string& what) const {
  throw Napi::Error::New(info_.Env(), std::string(op_) + ": " + what);
}

void Args::type_fail(const std::string& what) const {
  throw Napi::TypeError::New(info_.Env(), std::string(op_) + ": " + what);
}

double Args::number(size_t i, const char* name) const {
  const Napi::Value v = info_[i];
  if (!v.IsNumber()) type_fail(std::string(name) + " must be a number, got " + describe(v));
  return v.As<Napi::Number>().DoubleValue();
}

double Args::finite(size_t i, const char* name) const {
  const double d = number(i, name);
  if (!std::isfinite(d)) fail(std::string(name) + " must be finite, got " + describe(info_[i]));
  return d;
}

int64_t Args::index(size_t i, const char* name) const {
  const Napi::Value v = info_[i];
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1.0;
  if (!v.IsNumber() || d != std::floor(d) || d < 0 || d > kMaxSafeInt)
    fail(std::string(name) + " must be a non-negative integer, got " + describe(v));
  return (int64_t)d;
}

int64_t Args::dim(size_t i, const char* name) const {
  const Napi::Value v = info_[i];
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0.0;
  if (!v.IsNumber() || d != std::floor(d) || d < 1 || d > kMaxSafeInt)
    fail(std::string(name) + " must be a positive integer, got " + describe(v));
  return (int64_t)d;
}

bool Args::flag(size_t i, const char* name) const {
  const Napi::Value v = info_[i];
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value();
  if (v.IsNumber()) {
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d == 0 || d == 1) return d == 1;
  }
  type_fail(std::string(name) + " must be a boolean, got " + describe(v));
}

std::string Args::str(size_t i, const char* name) const {
  const Napi::Value v = info_[i];
  if (!v.IsString()) type_fail(std::string(name) + " must be a string, got " + describe(v));
  return v.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> Args::ints(size_t i, const char* name, size_t len) const {
  const Napi::Value v = info_[i];
  if (!v.IsArray()) type_fail(std::string(name) + " must be an array of " + std::to_string(len) + " integers");
  const Napi::Array a = v.As<Napi::Array>();
  if (a.Length() != len)
    fail(std::string(name) + " must have " + std::to_string(len) + " entries, got " + std::to_string(a.Length()));
  std::vector<int64_t> out(len);
  for (uint32_t k = 0; k < len; ++k) {
    const Napi::Value e = a.Get(k);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : 0.5;
    if (!e.IsNumber() || d != std::floor(d) || std::fabs(d) > kMaxSafeInt)
      fail(std::string(name) + "[" + std::to_string(k) + "] must be an integer, got " + describe(e));
    out[k] = (int64_t)d;
  }
  return out;
}

HostBytes Args::host_bytes(size_t i, const char* name) const {
  const Napi::Value v = info_[i];
  Napi::Env env = info_.Env();
  HostBytes h;
  if (v.IsTypedArray()) {
    // Ask Node-API for the data pointer directly: TypedArray::ArrayBuffer().Data() fails for
    // arrays over a SharedArrayBuffer (which the decode workers fill).
    napi_typedarray_type type;
    size_t length = 0, offset = 0;
    void* data = nullptr;
    napi_value ab = nullptr;
    NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset), h);
    h.ptr = static_cast<const uint8_t*>(data);
    h.bytes = v.As<Napi::TypedArray>().ByteLength();
  } else if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    h.ptr = static_cast<const uint8_t*>(ab.Data());
    h.bytes = ab.ByteLength();
  } else if (v.IsDataView()) {
    Napi::DataView dv = v.As<Napi::DataView>();
    h.ptr = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    h.bytes = dv.ByteLength();
  } else {
    type_fail(std::string(name) + " must be a TypedArray, ArrayBuffer or DataView");
  }
  return h;
}

Buf Args::buf(size_t i, const char* name, BufferTable& table) const {
  const Napi::Value v = info_[i];
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1.0;
  if (!v.IsNumber() || d != std::floor(d) || d < 1 || d > kMaxSafeInt)
    type_fail(std::string("argument ") + name + " must be a buffer id, got " + describe(v));
  Buf b;
  if (!table.resolve((uint64_t)d, &b)) fail("unknown or freed buffer id " + describe(v) + " (argument " + name + ")");
  return b;
}

Buf Args::opt_buf(size_t i, const char* name, BufferTable& table) const {
  const Napi::Value v = info_[i];
  if (v.IsNumber() && v.As<Napi::Number>().DoubleValue() == -1.0) return Buf{};
  return buf(i, name, table);
}

void Args::need(const Buf& b, const char* name, uint64_t bytes) const {
  if (b.bytes < bytes)
    fail("buffer " + std::string(name) + " has " + std::to_string(b.bytes) + " bytes, needs " + std::to_string(bytes));
}

void Args::distinct(const Buf& a, const char* an, const Buf& b, const char* bn) const {
  if (a.ptr && a.id == b.id) fail(std::string(an) + " and " + bn + " must be different buffers (id " + std::to_string(a.id) + ")");
}

void Args::outputs_distinct(std::initializer_list<NamedBuf> outs, std::initializer_list<NamedBuf> ins) const {
  for (auto o = outs.begin(); o != outs.end(); ++o) {
    for (auto p = o + 1; p != outs.end(); ++p) distinct(*o->first, o->second, *p->first, p->second);
    for (const NamedBuf& i : ins) distinct(*o->first, o->second, *i.first, i.second);
  }
}

uint64_t Args::bytes(std::initializer_list<int64_t> dims, uint64_t elem_size) const {
  uint64_t r = elem_size;
  for (int64_t d : dims) {
    if (d < 0 || __builtin_mul_overflow(r, (uint64_t)d, &r)) fail("size overflow");
  }
  return r;
}

uint64_t Args::span(int64_t rows, int64_t ld, int64_t cols, uint64_t elem_size) const {
  uint64_t r = 0;
  if (rows < 1 || ld < 0 || cols < 0 || __builtin_mul_overflow((uint64_t)(rows - 1), (uint64_t)ld, &r) ||
      __builtin_add_overflow(r, (uint64_t)cols, &r) || __builtin_mul_overflow(r, elem_size, &r))
    fail("size overflow");
  return r;
}

}  // namespace imagerate
