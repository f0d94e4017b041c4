// emu_api.cc: the CUDA runtime API of the emulator (cuda_runtime_api.h), over the scheduler and
// allocations of emu_runtime.cc. Work runs when it is enqueued, on the calling thread, so a
// stream is always idle once a call returns: events complete at once, synchronisation only
// reports, and the addon's completion thread (native/cuda_stream.cc) finds every event done.
// What it keeps of CUDA's semantics:
//   - errors: the same codes; the last error is per thread; an invalid launch configuration
//     sets it and runs nothing; out-of-memory past the emulated capacity is
//     cudaErrorMemoryAllocation and leaves everything usable;
//   - copies and memsets check that their device side lies in one live allocation;
//   - graphs: while a stream is captured, launches, copies, memsets and event records on it
//     are recorded (by value), not run; cudaGraphLaunch replays them in order. cudaMallocAsync
//     during capture allocates at once and the graph and its execs own the memory until the
//     last of them is destroyed (CUDA's alloc/free nodes re-allocate per launch; the graph's
//     node count here leaves them out); cudaStreamSynchronize on a capturing stream
//     invalidates the capture.
//   - kernels: cudaFuncSetAttribute's MaxDynamicSharedMemorySize (emu_shared.cc applies it to
//     launches); driver entry points: cuTensorMapEncodeTiled only (emu_tensormap.cc).
// The device it reports: "imagerate CUDA emulator (CPU)", compute capability 9.0 and 132 SMs
// (an H100 SXM), so that the kernels' tile and split choices are the H100's; clocks 0.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "emu_internal.h"

struct CUstream_st {
  bool invalidated = false;
  CUgraph_st* graph = nullptr;
};
struct CUevent_st {
  double ms = 0.0;  // host clock at the record
  bool recorded = false;
};
// Memory cudaMallocAsync'd during a capture: the graph and every exec made from it share it,
// and the last of them to be destroyed frees it (CUDA lets a graph go right after instantiating).
struct GraphMemory {
  std::vector<void*> ptrs;
  ~GraphMemory() {
    for (void* p : ptrs) emu::device_free(p);
  }
};
struct CUgraph_st {
  std::vector<std::function<void()>> nodes;
  std::shared_ptr<GraphMemory> owned = std::make_shared<GraphMemory>();
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> nodes;
  std::shared_ptr<GraphMemory> owned;
};

namespace emu {

namespace {
thread_local cudaError_t t_last_error = cudaSuccess;
constexpr int kRuntimeVersion = CUDART_VERSION;  // cuda_runtime_api.h

cudaError_t fail(cudaError_t e) {
  t_last_error = e;
  return e;
}

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

bool capturing(cudaStream_t s) { return s && s->graph; }
}  // namespace

void set_last_error(cudaError_t e) { t_last_error = e; }

size_t device_capacity() {
  static const size_t cap = [] {
    const char* v = std::getenv("EMU_DEVICE_MEMORY_MIB");
    const long long mib = v ? std::atoll(v) : 0;
    return (size_t)(mib > 0 ? mib : 4096) << 20;
  }();
  return cap;
}

void enqueue(cudaStream_t s, std::function<void()> work) {
  if (capturing(s)) s->graph->nodes.push_back(std::move(work));
  else work();
}

}  // namespace emu

using emu::fail;

// ------------------------------------------------------------ errors and versions
cudaError_t cudaGetLastError() {
  const cudaError_t e = emu::t_last_error;
  emu::t_last_error = cudaSuccess;
  return e;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    default: return "(emulated) error";
  }
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = emu::kRuntimeVersion;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = emu::kRuntimeVersion;
  return cudaSuccess;
}

// ------------------------------------------------------------ devices
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
constexpr int kCcMajor = 9, kCcMinor = 0, kSms = 132;  // the H100's (see the header)
cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int dev) {
  if (dev != 0) return fail(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "imagerate CUDA emulator (CPU)");
  p->totalGlobalMem = emu::device_capacity();
  p->major = kCcMajor;
  p->minor = kCcMinor;
  p->multiProcessorCount = kSms;
  p->l2CacheSize = 50 << 20;
  p->sharedMemPerBlockOptin = 227 << 10;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int dev) {
  if (dev != 0) return fail(cudaErrorInvalidDevice);
  switch (a) {
    case cudaDevAttrComputeCapabilityMajor: *v = kCcMajor; break;
    case cudaDevAttrComputeCapabilityMinor: *v = kCcMinor; break;
    case cudaDevAttrMultiProcessorCount: *v = kSms; break;
    default: *v = 0;  // clocks and bus width: an emulator has none
  }
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

// ------------------------------------------------------------ kernels and driver entry points
// cudaFuncSetAttribute (runtime API reference): MaxDynamicSharedMemorySize per kernel (emu_shared.cc
// checks it against launches); the carveout is a hint (-1..100 percent); others are not emulated.
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (!func) return fail(cudaErrorInvalidDeviceFunction);
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    const cudaError_t e = emu::set_max_dynamic_smem(func, value);
    return e == cudaSuccess ? e : fail(e);
  }
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout && value >= -1 && value <= 100) return cudaSuccess;
  return fail(cudaErrorInvalidValue);
}

// cudaGetDriverEntryPointByVersion (runtime API reference, "Driver Entry Point Access"): a version
// above the driver's is cudaErrorInvalidValue; a symbol it lacks, or one newer than the version
// asked for, is success with a null pointer and the query result saying which.
cudaError_t cudaGetDriverEntryPointByVersion(const char* symbol, void** func, unsigned cuda_version,
                                             unsigned long long flags, cudaDriverEntryPointQueryResult* status) {
  if (!symbol || !func || flags > cudaEnablePerThreadDefaultStream || cuda_version > (unsigned)emu::kRuntimeVersion)
    return fail(cudaErrorInvalidValue);
  unsigned introduced = 0;
  void* p = emu::driver_entry_point(symbol, &introduced);
  cudaDriverEntryPointQueryResult r = cudaDriverEntryPointSuccess;
  if (!p) r = cudaDriverEntryPointSymbolNotFound;
  else if (cuda_version < introduced) r = cudaDriverEntryPointVersionNotSufficent;
  *func = r == cudaDriverEntryPointSuccess ? p : nullptr;
  if (status) *status = r;
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *total_bytes = emu::device_capacity();
  *free_bytes = *total_bytes - emu::device_used();
  return cudaSuccess;
}

// ------------------------------------------------------------ memory
cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = emu::device_alloc(bytes);
  return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}
cudaError_t cudaFree(void* p) {
  const cudaError_t e = emu::device_free(p);
  return e == cudaSuccess ? e : fail(e);
}
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t s) {
  const cudaError_t e = cudaMalloc(p, bytes);
  if (e == cudaSuccess && emu::capturing(s)) s->graph->owned->ptrs.push_back(*p);
  return e;
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
  if (emu::capturing(s)) {
    for (void* q : s->graph->owned->ptrs)
      if (q == p) return cudaSuccess;  // the graph (and its execs) free it when destroyed
    s->invalidated = true;  // freeing memory from outside the capture: not emulated
    return fail(cudaErrorStreamCaptureUnsupported);
  }
  return cudaFree(p);
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  *p = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
  return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}
cudaError_t cudaFreeHost(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int dev) {
  *pool = nullptr;
  return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t, size_t) { return cudaSuccess; }
// The emulator has no physical memory to keep or release: the attribute is checked, not kept.
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr attr, void* value) {
  return attr == cudaMemPoolAttrReleaseThreshold && value != nullptr ? cudaSuccess : fail(cudaErrorInvalidValue);
}
cudaError_t cudaDeviceGraphMemTrim(int dev) { return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }

namespace {
// The device side(s) of a copy must lie in one live allocation, as on a GPU.
void check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  const bool src_dev = kind != cudaMemcpyHostToDevice, dst_dev = kind != cudaMemcpyDeviceToHost;
  if (src_dev && !emu::is_device(src, bytes)) emu::fault("copy source outside every device allocation", src, bytes);
  if (dst_dev && !emu::is_device(dst, bytes)) emu::fault("copy destination outside every device allocation", dst, bytes);
}
}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);  // the null stream runs it at once
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  check_copy(dst, src, bytes, kind);
  emu::enqueue(s, [=] {
    if (bytes) std::memcpy(dst, src, bytes);
  });
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) { return cudaMemsetAsync(p, value, bytes, nullptr); }
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
  if (!emu::is_device(p, bytes)) emu::fault("memset outside every device allocation", p, bytes);
  emu::enqueue(s, [=] { std::memset(p, value, bytes); });
  return cudaSuccess;
}

// ------------------------------------------------------------ streams and events
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = new CUstream_st();
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (s) delete s->graph;  // a capture still open
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (emu::capturing(s)) {
    s->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported);
  }
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st();
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (!e) return fail(cudaErrorInvalidResourceHandle);
  emu::enqueue(s, [e] {
    e->ms = emu::now_ms();
    e->recorded = true;
  });
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return e ? cudaSuccess : fail(cudaErrorInvalidResourceHandle); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start || !end) return fail(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle);
  *ms = (float)(end->ms - start->ms);
  return cudaSuccess;
}

// ------------------------------------------------------------ graphs
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  if (!s || s->graph) return fail(cudaErrorInvalidValue);
  s->invalidated = false;
  s->graph = new CUgraph_st();
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  if (!s || !s->graph) return fail(cudaErrorInvalidValue);
  CUgraph_st* graph = s->graph;
  s->graph = nullptr;
  if (s->invalidated) {
    cudaGraphDestroy(graph);
    *g = nullptr;
    return fail(cudaErrorStreamCaptureInvalidated);
  }
  *g = graph;
  return cudaSuccess;
}
cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t* nodes, size_t* count) {
  if (!g) return fail(cudaErrorInvalidValue);
  if (nodes) return fail(cudaErrorInvalidValue);  // only the count is emulated
  *count = g->nodes.size();
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t g, unsigned long long) {
  if (!g) return fail(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{g->nodes, g->owned};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  if (!exec) return fail(cudaErrorInvalidValue);
  if (emu::capturing(s)) return fail(cudaErrorStreamCaptureUnsupported);
  for (auto& node : exec->nodes) node();
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}
