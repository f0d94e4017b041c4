// op_args.h: argument checking for the exports of both addons (imagerate_cpu.node and
// imagerate_cuda.node), on the JS thread, before any work is queued. Every failure throws a JS
// Error whose message starts with the op name, e.g. "conv2dFwd: buffer y has 100 bytes, needs
// 4096" or "add: unknown or freed buffer id 17 (argument b)", word for word the same on every
// backend, so one test body checks them all. Sizes are computed in checked 64-bit arithmetic, so
// absurd dimensions give "size overflow" instead of a wrapped, too-small need.
//
// Buffer ids are resolved through a BufferTable (buffer_table.h), which each backend's
// allocator implements. The checks of each op family are in op_checks.h.
// Host compiler only: this header includes napi.h, which nvcc never sees.
#pragma once
#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "buffer_table.h"

namespace imagerate {

// A view of host memory handed to upload(): a TypedArray, ArrayBuffer or DataView.
struct HostBytes {
  const uint8_t* ptr = nullptr;
  size_t bytes = 0;
};

class Args {
 public:
  // Checks min_count <= number of arguments <= max_count (max_count 0 means == min_count).
  Args(const Napi::CallbackInfo& info, const char* op, size_t min_count, size_t max_count = 0);

  const char* op() const { return op_; }
  Napi::Env env() const { return info_.Env(); }
  size_t count() const { return info_.Length(); }
  bool present(size_t i) const { return i < info_.Length() && !info_[i].IsUndefined(); }

  int64_t dim(size_t i, const char* name) const;      // integer >= 1
  int64_t index(size_t i, const char* name) const;    // integer >= 0
  double number(size_t i, const char* name) const;   // any JS number (NaN and inf allowed)
  double finite(size_t i, const char* name) const;    // a finite JS number
  bool flag(size_t i, const char* name) const;        // boolean, or the number 0 or 1
  std::string str(size_t i, const char* name) const;
  // A plain JS array of exactly `len` integers (the conv/pool parameter arrays).
  std::vector<int64_t> ints(size_t i, const char* name, size_t len) const;
  // Upload data: a TypedArray (also over a SharedArrayBuffer), ArrayBuffer or DataView.
  HostBytes host_bytes(size_t i, const char* name) const;

  // A live buffer id, resolved to its pointer now (ids are checked on the JS thread).
  Buf buf(size_t i, const char* name, BufferTable& table) const;
  // Like buf(), but the number -1 means "no buffer" and yields a Buf with ptr == nullptr.
  Buf opt_buf(size_t i, const char* name, BufferTable& table) const;

  // Throws unless b holds at least `bytes` bytes.
  void need(const Buf& b, const char* name, uint64_t bytes) const;
  // Throws unless the two buffers are different (for outputs that must not alias an input).
  void distinct(const Buf& a, const char* an, const Buf& b, const char* bn) const;
  using NamedBuf = std::pair<const Buf*, const char*>;
  // Throws unless every output differs from every other output and from every listed input.
  void outputs_distinct(std::initializer_list<NamedBuf> outs, std::initializer_list<NamedBuf> ins) const;

  // Checked products: elements * elem_size, throwing "<op>: size overflow" on wrap-around.
  uint64_t bytes(std::initializer_list<int64_t> dims, uint64_t elem_size = 4) const;
  // Bytes touched by a row-major matrix of rows x cols with row stride ld: ((rows-1)*ld + cols)*elem.
  uint64_t span(int64_t rows, int64_t ld, int64_t cols, uint64_t elem_size = 4) const;

  [[noreturn]] void fail(const std::string& what) const;       // Error("<op>: what")
  [[noreturn]] void type_fail(const std::string& what) const;  // TypeError("<op>: what")

 private:
  const Napi::CallbackInfo& info_;
  const char* op_;
};

}  // namespace imagerate
