// cuda_graph.cc: CUDA graphs, cudaEvent timing and the L2 flush of imagerate_cuda.node.
//
//   captureBegin()                 start capturing the stream: ops from now on are recorded
//                                  into a graph instead of running
//   captureEnd() -> { id, nodes }  stop, instantiate the graph; nodes = every node (kernels, copies, memsets, memory alloc/free)
//   replay(id, times = 1)          launch the graph `times` times on the stream
//   graphDestroy(id)
//   eventRecord() -> id            record a timing event on the stream now
//   eventElapsed(start, end) -> Promise<number>   ms between two recorded events, once the
//                                  stream has passed `end`; consumes both ids
//   flushL2()                      overwrite a scratch buffer of 2 x L2 on the stream, so the
//                                  next kernel starts with a cold cache (STYLE: timing)
//
// Graphs are for small nets, where launch overhead dominates: capture one training step (the
// same buffers every step), then replay it. The graph keeps the device pointers it was
// captured with, so every buffer an op touched during capture is held (cuda_allocator.h):
// free() on it only marks it, and its memory is reused after graphDestroy(). Upload, download,
// sync, events and emptyCache are refused during capture (they would be baked into the graph
// or would wait on it); upload new inputs into the captured buffers between replays.
// Capture uses cudaStreamCaptureModeRelaxed, so alloc() (cudaMalloc) stays usable meanwhile.
//
// Holds: a buffer is held from the first op that touches it during the capture, not from
// captureEnd. An op's buffer freed later in the same capture (a step's activations, its
// gradients) would otherwise go back to the pool at once: the capture itself could hand its
// block to a later buffer (which the replays would then overwrite with the earlier op's
// output), an alloc() after the capture could share memory with the graph, and emptyCache()
// or an out-of-memory retry could cudaFree a block that the next replay writes. So a graph
// keeps every buffer its capture touched, and needs the sum of them, not the peak.
#include "cuda_addon.h"
#include "cuda_check.h"

namespace imagerate {

void CudaAddon::touch_in_capture(uint64_t id) {
  if (capturing_ && capture_ids_.insert(id).second) alloc_.hold(id);
}

void CudaAddon::drop_capture_holds() {
  for (uint64_t id : capture_ids_) alloc_.release(id);
  capture_ids_.clear();
}

void CudaAddon::destroy_graphs_and_events() {
  for (auto& kv : graphs_) {
    if (kv.second->exec) cudaGraphExecDestroy(kv.second->exec);
    if (kv.second->graph) cudaGraphDestroy(kv.second->graph);
    for (uint64_t id : kv.second->ids) alloc_.release(id);
  }
  graphs_.clear();
  for (auto& kv : events_) cudaEventDestroy(kv.second);
  events_.clear();
  std::lock_guard<std::mutex> lk(spare_mu_);
  for (cudaEvent_t ev : spare_timing_events_) cudaEventDestroy(ev);
  spare_timing_events_.clear();
  (void)cudaGetLastError();
}

Napi::Value CudaAddon::CaptureBegin(const Napi::CallbackInfo& info) {
  Args a(info, "captureBegin", 0);
  if (capturing_) a.fail("a capture is already in progress (call captureEnd() first)");
  cudaStream_t s = stream(a);
  CUDA_CHECK(info.Env(), "captureBegin", cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
  capturing_ = true;
  drop_capture_holds();  // empty unless an earlier capture ended abnormally
  return info.Env().Undefined();
}

Napi::Value CudaAddon::CaptureEnd(const Napi::CallbackInfo& info) {
  Args a(info, "captureEnd", 0);
  if (!capturing_) a.fail("no capture in progress (call captureBegin() first)");
  cudaStream_t s = stream(a);
  capturing_ = false;
  auto g = std::make_unique<Graph>();
  cudaError_t e = cudaStreamEndCapture(s, &g->graph);
  if (e != cudaSuccess) {
    drop_capture_holds();
    throw_cuda(info.Env(), "captureEnd", e, "(an op failed during capture?)");
  }
  e = cudaGraphGetNodes(g->graph, nullptr, &g->nodes);
  if (e == cudaSuccess) e = cudaGraphInstantiate(&g->exec, g->graph, 0);
  if (e != cudaSuccess) {
    cudaGraphDestroy(g->graph);
    drop_capture_holds();
    throw_cuda(info.Env(), "captureEnd", e, "instantiating the graph");
  }
  g->ids.swap(capture_ids_);  // the holds taken at first touch pass to the graph
  const uint64_t id = next_graph_++;
  const size_t nodes = g->nodes;
  graphs_.emplace(id, std::move(g));
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("id", (double)id);
  o.Set("nodes", (double)nodes);
  return o;
}

Napi::Value CudaAddon::Replay(const Napi::CallbackInfo& info) {
  Args a(info, "replay", 1, 2);
  const int64_t id = a.index(0, "id");
  const int64_t times = a.present(1) ? a.dim(1, "times") : 1;
  not_capturing(a);
  auto it = graphs_.find((uint64_t)id);
  if (it == graphs_.end()) a.fail("unknown or destroyed graph id " + std::to_string(id));
  cudaGraphExec_t exec = it->second->exec;
  // One launch() per replay, so an out-of-memory retry repeats only the launch that failed.
  for (int64_t k = 0; k < times; ++k) launch(a, [exec](cudaStream_t s) { return cudaGraphLaunch(exec, s); });
  return info.Env().Undefined();
}

Napi::Value CudaAddon::GraphDestroy(const Napi::CallbackInfo& info) {
  Args a(info, "graphDestroy", 1);
  const int64_t id = a.index(0, "id");
  auto it = graphs_.find((uint64_t)id);
  if (it == graphs_.end()) a.fail("unknown or destroyed graph id " + std::to_string(id));
  // An executing graph is freed by CUDA when it completes; held blocks go back to the pool,
  // and stream order keeps later users of those blocks behind the graph's last launch.
  cudaGraphExecDestroy(it->second->exec);
  cudaGraphDestroy(it->second->graph);
  (void)cudaGetLastError();
  for (uint64_t b : it->second->ids) alloc_.release(b);
  graphs_.erase(it);
  return info.Env().Undefined();
}

Napi::Value CudaAddon::EventRecord(const Napi::CallbackInfo& info) {
  Args a(info, "eventRecord", 0);
  not_capturing(a);
  cudaStream_t s = stream(a);
  cudaEvent_t ev = nullptr;
  {
    std::lock_guard<std::mutex> lk(spare_mu_);
    if (!spare_timing_events_.empty()) {
      ev = spare_timing_events_.back();
      spare_timing_events_.pop_back();
    }
  }
  if (!ev) CUDA_CHECK(info.Env(), "eventRecord", cudaEventCreate(&ev));
  const cudaError_t e = cudaEventRecord(ev, s);
  if (e != cudaSuccess) {
    cudaEventDestroy(ev);
    throw_cuda(info.Env(), "eventRecord", e);
  }
  const uint64_t id = next_event_++;
  events_.emplace(id, ev);
  return Napi::Number::New(info.Env(), (double)id);
}

Napi::Value CudaAddon::EventElapsed(const Napi::CallbackInfo& info) {
  Args a(info, "eventElapsed", 2);
  const int64_t i0 = a.index(0, "start"), i1 = a.index(1, "end");
  not_capturing(a);
  auto s = events_.find((uint64_t)i0), e = events_.find((uint64_t)i1);
  if (s == events_.end()) a.fail("unknown or consumed event id " + std::to_string(i0) + " (argument start)");
  if (e == events_.end()) a.fail("unknown or consumed event id " + std::to_string(i1) + " (argument end)");
  if (i0 == i1) a.fail("start and end must be different events");
  cudaEvent_t ev0 = s->second, ev1 = e->second;
  auto* c = new CudaCompletion(info.Env());
  Napi::Promise promise = c->deferred.Promise();
  c->has_number = true;
  // The completion runs after everything queued so far, hence after `end` completed.
  enqueue_completion(a, c, [this, ev0, ev1](CudaCompletion* done) {
    float ms = 0;
    const cudaError_t err = cudaEventElapsedTime(&ms, ev0, ev1);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      done->error = cuda_failure("eventElapsed", err);
    }
    done->number = ms;
    std::lock_guard<std::mutex> lk(spare_mu_);
    spare_timing_events_.push_back(ev0);
    spare_timing_events_.push_back(ev1);
  });
  events_.erase(s);
  events_.erase(e);
  return promise;
}

Napi::Value CudaAddon::FlushL2(const Napi::CallbackInfo& info) {
  Args a(info, "flushL2", 0);
  not_capturing(a);  // its buffer lives outside the allocator, so a graph must not record it
  stream(a);         // opens the device (dev_ then knows the L2 size)
  const uint64_t bytes = 2 * (dev_.l2_cache_bytes ? dev_.l2_cache_bytes : (64u << 20));
  if (!l2_flush_) {
    void* p = nullptr;
    CUDA_CHECK(info.Env(), "flushL2", cudaMalloc(&p, (size_t)bytes), "allocating " + std::to_string(bytes) + " bytes");
    l2_flush_ = p;
    l2_flush_bytes_ = bytes;
  }
  void* p = l2_flush_;
  const size_t n = (size_t)l2_flush_bytes_;
  launch(a, [p, n](cudaStream_t st) { return cudaMemsetAsync(p, 0, n, st); });
  return info.Env().Undefined();
}

}  // namespace imagerate
