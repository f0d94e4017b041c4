// cpu_addon.h: the CPU backend's Node-API addon, one instance per Node environment (main
// thread or worker_thread), so vitest may load it in several workers at once.
//
// Each instance owns a caching allocator (cpu_allocator.h) and a stream (cpu_stream.h).
// Op exports check their arguments on the JS thread with the checks both addons share
// (op_checks.h: the buffer ids resolve to pointers in the allocator), then queue the kernel
// call; sync()/download() return Promises settled on the JS thread through a thread-safe
// function once the stream reaches them.
//
// The bodies live by family: cpu_addon.cc (memory, stream, info, copy), cpu_ops_nn.cc
// (gemm, conv, pool), cpu_ops_pointwise.cc (elementwise, loss, optimiser), cpu_ops_norm.cc
// (batch norm, LRN): each op file says which kernel of kernels.h runs each op.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "cpu_allocator.h"
#include "addon_common.h"
#include "cpu_stream.h"

namespace imagerate {

struct Completion;  // a pending sync()/download() Promise (cpu_addon.cc)

class CpuAddon : public Napi::Addon<CpuAddon> {
 public:
  CpuAddon(Napi::Env env, Napi::Object exports);
  ~CpuAddon();

  // ---- memory and stream (cpu_addon.cc)
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value SetThreads(const Napi::CallbackInfo& info);
  Napi::Value ForceIsa(const Napi::CallbackInfo& info);
  Napi::Value Alloc(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Download(const Napi::CallbackInfo& info);
  Napi::Value Sync(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value EmptyCache(const Napi::CallbackInfo& info);

  // ---- op exports: the checks of op_checks.h, then the kernel queued on the stream
  void define_nn_ops(Napi::Object exports);         // cpu_ops_nn.cc
  void define_pointwise_ops(Napi::Object exports);  // cpu_ops_pointwise.cc
  void define_norm_ops(Napi::Object exports);       // cpu_ops_norm.cc

  // Called on the JS thread by the thread-safe function: settles one Promise.
  void Settle(Napi::Env env, Completion* c);

 private:
  Buf buf(const Args& a, size_t i, const char* name) { return a.buf(i, name, alloc_); }
  void enqueue(const char* op, CpuStream::Task fn) { stream_->enqueue(op, std::move(fn)); }
  // Defines the export of `spec`: its checks, then kernel(call) queued on the stream.
  template <class Call, class Kernel>
  void define(Napi::Object exports, const OpSpec<Call>& spec, Kernel kernel) {
    CpuStream* stream = stream_.get();
    define_op(exports, spec, alloc_, [stream, kernel](const Args& a, const Call& c) {
      stream->enqueue(a.op(), [kernel, c] { kernel(c); });
    });
  }
  // Queues a fence that settles `c` (a Promise) after all earlier work.
  void enqueue_completion(Completion* c);
  void free_pool_in_order();  // hands pooled memory back to the OS after queued work
  void shutdown();            // env cleanup hook: stop the stream first, then the rest dies

  CpuAllocator alloc_;
  std::unique_ptr<CpuStream> stream_;
  struct Delivery;  // the thread-safe function, hidden from the op files
  std::unique_ptr<Delivery> delivery_;
  uint64_t pending_ = 0;  // unsettled Promises (the TSFN keeps the loop alive while > 0)
};

}  // namespace imagerate
