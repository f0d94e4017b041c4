// cuda_op_args.h: the argument checks of the CUDA addon's op exports that the CPU addon keeps
// private to its op files: buffer ids resolved against the device allocator, the conv/pool
// parameter arrays and their output-size formulas, and the "outputs must not alias" rule.
// Messages are the CPU addon's, word for word (cpu_ops_nn.cc, cpu_ops_norm.cc), so one test
// body checks both backends. Everything else (dims, numbers, byte needs, overflow) is
// cpu_args.h's Args, shared as is.
//
// (These few functions could move to a backend-neutral native/op_args.{h,cc} that the CPU op
// files use too; until then they mirror cpu_ops_nn.cc's anonymous-namespace helpers.)
#pragma once
#include <initializer_list>
#include <utility>

#include "cpu_args.h"
#include "cuda_allocator.h"
#include "kernels.cuh"

namespace imagerate {

// Args (cpu_args.h) that can also hand back a raw argument, for the checks below.
class CudaArgs : public Args {
 public:
  CudaArgs(const Napi::CallbackInfo& info, const char* op, size_t min_count, size_t max_count = 0)
      : Args(info, op, min_count, max_count), info_(info) {}
  Napi::Value raw(size_t i) const { return info_[i]; }  // undefined past the end

 private:
  const Napi::CallbackInfo& info_;
};

// A live device buffer id, resolved now; messages as Args::buf:
//   TypeError "<op>: argument <name> must be a buffer id, got <v>"
//   Error     "<op>: unknown or freed buffer id <v> (argument <name>)"
Buf device_buf(const CudaArgs& a, size_t i, const char* name, const CudaAllocator& alloc);
// True when argument i is the number -1 ("no buffer", as Args::opt_buf).
bool is_no_buffer(const CudaArgs& a, size_t i);

// conv p = [n,c,h,w, k,r,s, strideH,strideW, padH,padW, dilH,dilW, p,q]
cuda::Conv2dParams conv_params(const Args& a, size_t i);
// pool pp = [n,c,h,w, kh,kw, strideH,strideW, padH,padW, p,q, countIncludePad]
cuda::Pool2dParams pool_params(const Args& a, size_t i);

using NamedBuf = std::pair<const Buf*, const char*>;
// Throws unless every output differs from every other output and from every listed input.
void outputs_distinct(const Args& a, std::initializer_list<NamedBuf> outs, std::initializer_list<NamedBuf> ins);

}  // namespace imagerate
