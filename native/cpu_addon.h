// cpu_addon.h: the CPU backend's Node-API addon, one instance per Node environment (main
// thread or worker_thread), so vitest may load it in several workers at once.
//
// Each instance owns a caching allocator (cpu_allocator.h) and a stream (cpu_stream.h).
// Op exports check their arguments on the JS thread, resolve buffer ids to pointers and
// queue the kernel call; sync()/download() return Promises settled on the JS thread through
// a thread-safe function once the stream reaches them.
//
// The method bodies live by family: cpu_addon.cc (memory, stream, info), cpu_ops_nn.cc
// (gemm, conv, pool), cpu_ops_pointwise.cc (elementwise, loss, optimiser).
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "cpu_allocator.h"
#include "cpu_args.h"
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
  Napi::Value Copy(const Napi::CallbackInfo& info);

  // ---- gemm, conv, pool (cpu_ops_nn.cc)
  Napi::Value Gemm(const Napi::CallbackInfo& info);
  Napi::Value Conv2dFwd(const Napi::CallbackInfo& info);
  Napi::Value Conv2dBwdData(const Napi::CallbackInfo& info);
  Napi::Value Conv2dBwdFilter(const Napi::CallbackInfo& info);
  Napi::Value Maxpool2dFwd(const Napi::CallbackInfo& info);
  Napi::Value Maxpool2dBwd(const Napi::CallbackInfo& info);
  Napi::Value Avgpool2dFwd(const Napi::CallbackInfo& info);
  Napi::Value Avgpool2dBwd(const Napi::CallbackInfo& info);

  // ---- elementwise, loss, optimiser (cpu_ops_pointwise.cc)
  Napi::Value BiasAdd(const Napi::CallbackInfo& info);
  Napi::Value BiasGrad(const Napi::CallbackInfo& info);
  Napi::Value ReluFwd(const Napi::CallbackInfo& info);
  Napi::Value ReluBwd(const Napi::CallbackInfo& info);
  Napi::Value Add(const Napi::CallbackInfo& info);
  Napi::Value Mul(const Napi::CallbackInfo& info);
  Napi::Value Axpby(const Napi::CallbackInfo& info);
  Napi::Value Scale(const Napi::CallbackInfo& info);
  Napi::Value Fill(const Napi::CallbackInfo& info);
  Napi::Value DropoutFwd(const Napi::CallbackInfo& info);
  Napi::Value SumsqCheck(const Napi::CallbackInfo& info);
  Napi::Value SoftmaxXentFwd(const Napi::CallbackInfo& info);
  Napi::Value SoftmaxXentBwd(const Napi::CallbackInfo& info);
  Napi::Value SgdUpdate(const Napi::CallbackInfo& info);

  // Called on the JS thread by the thread-safe function: settles one Promise.
  void Settle(Napi::Env env, Completion* c);

 private:
  Buf buf(const Args& a, size_t i, const char* name) const { return a.buf(i, name, alloc_); }
  Buf opt_buf(const Args& a, size_t i, const char* name) const { return a.opt_buf(i, name, alloc_); }
  void enqueue(const char* op, CpuStream::Task fn) { stream_->enqueue(op, std::move(fn)); }
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
