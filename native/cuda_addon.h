// cuda_addon.h: the CUDA backend's Node-API addon (imagerate_cuda.node), one instance per Node
// environment (main thread or worker_thread), the counterpart of cpu_addon.h.
//
// Loading the addon never touches the GPU: probe() works on any machine, and the device is
// opened on the first call that needs it (alloc, an op, info...), which throws
// "cuda unavailable: <reason>" where there is none. Once open, each instance owns:
//   - a caching device allocator and a pinned staging pool (cuda_allocator.h);
//   - one stream with its completion thread (cuda_stream.h);
//   - the math mode for GEMM/conv (setMathMode), CUDA graphs captured from the stream
//     (cuda_graph.cc), and cudaEvent pairs for device-side timing.
// Op exports check their arguments on the JS thread with the checks both addons share
// (op_checks.h: identical messages), then launch the kernel of kernels/cuda/kernels.cuh on
// the stream and return. sync()/download()/eventElapsed() return Promises settled on the JS
// thread through a thread-safe function once the completion thread sees the stream get there.
//
// The bodies live by family: cuda_addon.cc (module entry, device, stream, probe/info),
// cuda_memory.cc (alloc/free/upload/download/sync/stats/emptyCache, copy), cuda_graph.cc
// (graphs, events, L2 flush), cuda_ops_nn.cc (gemm, conv, pool), cuda_ops_pointwise.cc
// (elementwise, loss, optimiser), cuda_ops_norm.cc (batch norm, LRN): each op file says which
// kernel of kernels.cuh each op launches.
#pragma once
#include <napi.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cuda_allocator.h"
#include "addon_common.h"
#include "cuda_stream.h"
#include "kernels.cuh"

namespace imagerate {

constexpr size_t kFaultBytes = cuda::kFaultSlots * cuda::kFaultWords * sizeof(uint32_t);

// A pending sync()/download()/eventElapsed() Promise, settled on the JS thread (cuda_addon.cc).
struct CudaCompletion {
  explicit CudaCompletion(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::ArrayBuffer> out;  // download target; empty otherwise
  bool has_number = false;                 // eventElapsed: resolve with `number`
  double number = 0;
  std::string error;                       // set on the completion thread: reject with it
};

// What info() reports about the open device.
struct CudaDeviceInfo {
  int index = 0;
  std::string name, pci_bus_id;
  int major = 0, minor = 0, multiprocessors = 0;
  uint64_t total_memory = 0, l2_cache_bytes = 0, shared_mem_per_block_optin = 0;
  int clock_khz = 0, mem_clock_khz = 0, mem_bus_width = 0;
  int driver_version = 0, runtime_version = 0;
};

// What an op's kernel launch gets besides its checked call.
struct Launch {
  cudaStream_t stream;
  cuda::MathMode mode;  // GEMM/conv math mode when the op was enqueued (setMathMode)
};

// The addon is also the BufferTable its op checks resolve ids in: the allocator's, plus the
// ids a graph capture touches (see buf() below).
class CudaAddon : public Napi::Addon<CudaAddon>, private BufferTable {
 public:
  CudaAddon(Napi::Env env, Napi::Object exports);
  ~CudaAddon();

  // ---- device and stream (cuda_addon.cc); memory (cuda_memory.cc)
  Napi::Value Probe(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value SetMathMode(const Napi::CallbackInfo& info);
  Napi::Value Alloc(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Download(const Napi::CallbackInfo& info);
  Napi::Value Sync(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value EmptyCache(const Napi::CallbackInfo& info);
  // ---- graphs, events, L2 flush (cuda_graph.cc)
  Napi::Value CaptureBegin(const Napi::CallbackInfo& info);
  Napi::Value CaptureEnd(const Napi::CallbackInfo& info);
  Napi::Value Replay(const Napi::CallbackInfo& info);
  Napi::Value GraphDestroy(const Napi::CallbackInfo& info);
  Napi::Value EventRecord(const Napi::CallbackInfo& info);
  Napi::Value EventElapsed(const Napi::CallbackInfo& info);
  Napi::Value FlushL2(const Napi::CallbackInfo& info);

  // ---- op exports: the checks of op_checks.h, then the kernel launched on the stream
  Napi::Value GemmKernelName(const Napi::CallbackInfo& info);  // cuda_ops_nn.cc
  void define_nn_ops(Napi::Object exports);                    // cuda_ops_nn.cc
  void define_pointwise_ops(Napi::Object exports);             // cuda_ops_pointwise.cc
  void define_norm_ops(Napi::Object exports);                  // cuda_ops_norm.cc

  // Called on the JS thread by the thread-safe function: settles one Promise.
  void Settle(Napi::Env env, CudaCompletion* c);

 private:
  // ---- helpers for the op files
  // Opens the device on first use; throws "<op>: cuda unavailable: <reason>".
  cudaStream_t stream(const Args& a);
  // A live device buffer; while a graph is being captured, also remembers its id (see
  // cuda_graph.cc) so the buffer outlives any free() until the graph is destroyed.
  Buf buf(const Args& a, size_t i, const char* name) { return a.buf(i, name, *this); }
  bool resolve(uint64_t id, Buf* out) override;
  // Runs one kernel launch. On cudaErrorMemoryAllocation (a kernel's scratch allocation),
  // empties the caches and tries once more; any error then throws "cuda <op>: <error>".
  // With IMAGERATE_CUDA_SYNC=1 it also waits for the kernel, so an asynchronous fault is
  // reported by the op that caused it.
  void launch(const Args& a, const std::function<cudaError_t(cudaStream_t)>& fn);
  cuda::MathMode math() const { return math_; }
  // Defines the export of `spec`: its checks, then kernel(call, Launch) launched on the stream.
  template <class Call, class Kernel>
  void define(Napi::Object exports, const OpSpec<Call>& spec, Kernel kernel) {
    define_op(exports, spec, *this, [this, kernel](const Args& a, const Call& c) {
      const cuda::MathMode mode = math_;
      launch(a, [kernel, c, mode](cudaStream_t s) { return kernel(c, Launch{s, mode}); });
    });
  }
  void copy(const Args& a, const CopyCall& c);  // copy(), with its overlap handling
  // Throws "<op>: not allowed while a CUDA graph is being captured ..." when capturing.
  void not_capturing(const Args& a) const;

  void open_device(const Args& a);
  // Settles `c` once the stream gets here: `on_host` runs first on the completion thread (if
  // the stream had no error), and `faults` (enqueue_fault_check) turns a counted fault into
  // the rejection.
  void enqueue_completion(const Args& a, CudaCompletion* c, std::function<void(CudaCompletion*)> on_host,
                          std::function<std::string()> faults = nullptr);
  // ---- faults (cuda_memory.cc): bad data a kernel cannot refuse up front (kernels.cuh, "Faults")
  // The device address of fault slot `slot` (cuda::FaultSlot; the slots are allocated and
  // zeroed when the device opens); from then on every sync()/download() reads them back.
  uint32_t* fault_slot(const Args& a, cuda::FaultSlot slot);
  // Enqueues the read-back and clearing of the fault slots; the function returned (null when no
  // slot was ever used) runs on the completion thread and gives "<op>: <what>" or "".
  std::function<std::string()> enqueue_fault_check(const Args& a);
  void deliver(CudaCompletion* c);  // completion thread -> JS thread
  cudaError_t release_caches();     // synchronises, cudaFree of the pools; the first failure
  void shutdown();                  // env cleanup hook

  CudaAllocator alloc_;
  PinnedPool pinned_;
  std::unique_ptr<CudaStream> stream_;
  std::string unavailable_;  // why the device could not be opened (sticky)
  CudaDeviceInfo dev_;
  cuda::MathMode math_ = cuda::MathMode::FP32;
  bool sync_each_op_ = false;  // IMAGERATE_CUDA_SYNC=1
  struct Delivery;             // the thread-safe function, hidden from the op files
  std::unique_ptr<Delivery> delivery_;
  uint64_t pending_ = 0;  // unsettled Promises (the TSFN keeps the loop alive while > 0)
  uint32_t* faults_ = nullptr;  // cuda::kFaultSlots x cuda::kFaultWords on the device
  bool faults_used_ = false;    // a kernel was given a slot: sync/download read them back

  // ---- graphs and events (cuda_graph.cc)
  struct Graph {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    std::set<uint64_t> ids;  // held buffers
    size_t nodes = 0;
  };
  bool capturing_ = false;
  // Buffers touched while capturing, each held from its first touch (so a buffer freed later in
  // the same capture is not reused by it, nor by anyone after it, while the graph lives).
  std::set<uint64_t> capture_ids_;
  void touch_in_capture(uint64_t id);  // no-op unless capturing
  void drop_capture_holds();           // a capture that produced no graph: release its holds
  std::map<uint64_t, std::unique_ptr<Graph>> graphs_;
  uint64_t next_graph_ = 1;
  std::map<uint64_t, cudaEvent_t> events_;  // recorded, not yet consumed by eventElapsed
  std::mutex spare_mu_;
  std::vector<cudaEvent_t> spare_timing_events_;  // returned by the completion thread
  uint64_t next_event_ = 1;
  void* l2_flush_ = nullptr;  // FlushL2's scratch (2 x L2), outside the pool
  uint64_t l2_flush_bytes_ = 0;
  void destroy_graphs_and_events();
};

}  // namespace imagerate
