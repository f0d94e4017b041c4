// cuda_addon.cc: module entry of imagerate_cuda.node, the device, stream and completion
// helpers, and the probe/info/setMathMode exports (see cuda_addon.h for the whole addon; the
// memory exports are in cuda_memory.cc).
//
//   probe() -> { available, reason?, driverVersion, runtimeVersion, devices?: [{ index, name,
//                computeCapability: "9.0", totalMemoryBytes, multiprocessors, l2CacheBytes,
//                sharedMemPerBlockOptin, pciBusId }] }            (never opens the device)
//   info()  -> { name, computeCapability, multiprocessors, totalMemoryBytes, freeMemoryBytes,
//                l2CacheBytes, sharedMemPerBlockOptin, clockMhz, memClockMhz, memBusWidthBits,
//                driverVersion, runtimeVersion, device, pciBusId, mathMode, tensorCoreLoop, stream, addon }
//   setMathMode('fp32' | 'tf32' | 'bf16' | 'fp16') -> the mode now in force
// Versions use CUDA's encoding (13000 = 13.0); driverVersion 0 means no driver is installed.
//
// Promises are settled as in the CPU addon (cpu_addon.cc): the completion thread hands a
// CudaCompletion to a thread-safe function (TSFN), unref'd while nothing is pending so an idle
// addon never keeps the process alive. The TSFN is created in the constructor, before the
// cleanup hook, so the hook (which stops the completion thread) runs before Node closes it.
#include "cuda_addon.h"

#include <cstdio>
#include <cstdlib>

#include "cuda_check.h"
#include "device_probe.h"

namespace imagerate {

namespace {

std::string pci_id(int domain, int bus, int device) {
  char pci[32];
  std::snprintf(pci, sizeof pci, "%04x:%02x:%02x.0", domain, bus, device);
  return pci;
}

// The TSFN's CallJs must be a function of internal linkage: with -fsanitize (CI's ASan/UBSan
// build) GCC cannot fold node-addon-api's `call == nullptr` test for a template instance.
void call_js(Napi::Env env, Napi::Function f, CudaAddon* addon, CudaCompletion* c) { settle_on_js(env, f, addon, c); }

}  // namespace

using Tsfn = Napi::TypedThreadSafeFunction<CudaAddon, CudaCompletion, call_js>;
struct CudaAddon::Delivery {
  Tsfn tsfn;
};

constexpr auto Method = export_method<CudaAddon, Napi::Value (CudaAddon::*)(const Napi::CallbackInfo&)>;

CudaAddon::CudaAddon(Napi::Env env, Napi::Object exports) {
  sync_each_op_ = env_flag("IMAGERATE_CUDA_SYNC");
  // Tensor-core main loop: wgmma instead of mma.sync where the build and the GPU allow it.
  if (env_flag("IMAGERATE_CUDA_WGMMA")) cuda::set_use_wgmma(true);
  delivery_ = std::make_unique<Delivery>();
  delivery_->tsfn = Tsfn::New(env, "imagerate_cuda_stream", 0, 1, this);
  delivery_->tsfn.Unref(env);
  env.AddCleanupHook([this] { shutdown(); });  // after the TSFN: runs before Node closes it

  // The registration table: every export of imagerate_cuda.node. The memory and stream
  // exports, then the CUDA-only extras (graphs, timing), then the ops: the OP_NAMES of
  // src/backend/backend.ts and the fused extras (conv2dFwdBiasRelu, batchnorm2d*Relu).
  DefineAddon(exports, {
    Method("probe", &CudaAddon::Probe),
    Method("info", &CudaAddon::Info),
    Method("setMathMode", &CudaAddon::SetMathMode),
    Method("alloc", &CudaAddon::Alloc),
    Method("free", &CudaAddon::Free),
    Method("upload", &CudaAddon::Upload),
    Method("download", &CudaAddon::Download),
    Method("sync", &CudaAddon::Sync),
    Method("stats", &CudaAddon::Stats),
    Method("emptyCache", &CudaAddon::EmptyCache),
    Method("gemmKernelName", &CudaAddon::GemmKernelName),
    Method("captureBegin", &CudaAddon::CaptureBegin),
    Method("captureEnd", &CudaAddon::CaptureEnd),
    Method("replay", &CudaAddon::Replay),
    Method("graphDestroy", &CudaAddon::GraphDestroy),
    Method("eventRecord", &CudaAddon::EventRecord),
    Method("eventElapsed", &CudaAddon::EventElapsed),
    Method("flushL2", &CudaAddon::FlushL2),
  });
  define_op(exports, kCopy, *this, [this](const Args& a, const CopyCall& c) { copy(a, c); });
  define_nn_ops(exports);
  define_pointwise_ops(exports);
  define_norm_ops(exports);
}

CudaAddon::~CudaAddon() {
  shutdown();
  destroy_graphs_and_events();
  // The stream first: it synchronises (so no queued kernel still uses the buffers below) and
  // is destroyed; alloc_ and pinned_ then free all.
  void* l2 = l2_flush_;
  uint32_t* faults = faults_;
  stream_.reset();
  if (l2) cudaFree(l2);
  if (faults) cudaFree(faults);
  (void)cudaGetLastError();
}

void CudaAddon::shutdown() {
  if (stream_) stream_->stop();
}

// ------------------------------------------------------------------ helpers

void CudaAddon::open_device(const Args& a) {
  if (stream_) return;
  if (unavailable_.empty()) {
    constexpr int kMax = 16;
    ImagerateCudaDevice devs[kMax];
    char reason[512] = {0};
    int drv = 0, rt = 0;
    const int count = imagerate_cuda_probe(reason, sizeof reason, &drv, &rt, devs, kMax);
    int index = 0;
    if (const char* s = std::getenv("IMAGERATE_CUDA_DEVICE")) index = std::atoi(s);
    if (count <= 0) {
      unavailable_ = reason[0] ? reason : "unknown CUDA error";
    } else if (index < 0 || index >= count || index >= kMax) {
      unavailable_ = "IMAGERATE_CUDA_DEVICE=" + std::to_string(index) + " but " + std::to_string(count) + " device(s) found";
    } else {
      cudaError_t err = cudaSuccess;
      auto s = std::make_unique<CudaStream>(index, &err);
      void* faults = nullptr;
      if (s->ok()) {
        // The fault slots (kernels.cuh), zeroed in the addon's stream before any kernel can
        // count into them (a plain cudaMemset runs on the legacy stream, which a non-blocking
        // stream is not ordered after).
        err = cudaMalloc(&faults, kFaultBytes);
        if (err == cudaSuccess) err = cudaMemsetAsync(faults, 0, kFaultBytes, s->get());
        // The kernels' scratch (Scratch in common.cuh) comes from the device's default
        // cudaMallocAsync pool, whose release threshold is 0 by default: every stream or event
        // synchronisation would hand its memory back and the next step map it again. Keep it;
        // release_caches trims it explicitly.
        if (err == cudaSuccess) err = cuda::keep_scratch_pool(index);
      }
      if (!s->ok() || err != cudaSuccess) {
        if (faults) cudaFree(faults);
        (void)cudaGetLastError();
        unavailable_ = "cannot open device " + std::to_string(index) + ": " + cuda_error_text(err);
      } else {
        faults_ = static_cast<uint32_t*>(faults);
        const ImagerateCudaDevice& d = devs[index];
        dev_.index = index;
        dev_.name = d.name;
        dev_.major = d.major;
        dev_.minor = d.minor;
        dev_.multiprocessors = d.multiprocessors;
        dev_.total_memory = d.total_mem;
        dev_.l2_cache_bytes = (uint64_t)d.l2_cache_bytes;
        dev_.shared_mem_per_block_optin = (uint64_t)d.shared_mem_per_block_optin;
        dev_.pci_bus_id = pci_id(d.pci_domain, d.pci_bus, d.pci_device);
        cudaDeviceGetAttribute(&dev_.clock_khz, cudaDevAttrClockRate, index);
        cudaDeviceGetAttribute(&dev_.mem_clock_khz, cudaDevAttrMemoryClockRate, index);
        cudaDeviceGetAttribute(&dev_.mem_bus_width, cudaDevAttrGlobalMemoryBusWidth, index);
        (void)cudaGetLastError();
        dev_.driver_version = drv;
        dev_.runtime_version = rt;
        stream_ = std::move(s);
        return;
      }
    }
  }
  a.fail("cuda unavailable: " + unavailable_);
}

cudaStream_t CudaAddon::stream(const Args& a) {
  open_device(a);
  return stream_->get();
}

bool CudaAddon::resolve(uint64_t id, Buf* out) {
  if (!alloc_.resolve(id, out)) return false;
  touch_in_capture(id);
  return true;
}

void CudaAddon::not_capturing(const Args& a) const {
  if (capturing_) a.fail("not allowed while a CUDA graph is being captured (call captureEnd() first)");
}

void CudaAddon::launch(const Args& a, const std::function<cudaError_t(cudaStream_t)>& fn) {
  cudaStream_t s = stream(a);
  cudaError_t e = fn(s);
  if (e == cudaErrorMemoryAllocation && !capturing_) {
    (void)cudaGetLastError();
    if (release_caches() == cudaSuccess) e = fn(s);  // kernels' scratch comes from cudaMallocAsync
  }
  if (e != cudaSuccess) throw_cuda(a.env(), a.op(), e);
  if (sync_each_op_ && !capturing_) {
    const cudaError_t w = stream_->wait_idle();
    if (w != cudaSuccess) throw_cuda(a.env(), a.op(), w, "(IMAGERATE_CUDA_SYNC=1: while running this op)");
  }
}

cudaError_t CudaAddon::release_caches() {
  if (!stream_) return cudaErrorInvalidResourceHandle;
  if (capturing_) return cudaErrorStreamCaptureUnsupported;
  cudaError_t first = stream_->wait_idle();
  if (first != cudaSuccess) return first;
  const auto keep = [&first](cudaError_t e) {
    if (first == cudaSuccess) first = e;
  };
  for (void* p : alloc_.release_pool()) keep(cudaFree(p));
  keep(pinned_.trim());
  if (l2_flush_) {  // flushL2 is refused while capturing, so no graph holds a memset of it
    keep(cudaFree(l2_flush_));
    l2_flush_ = nullptr;
    l2_flush_bytes_ = 0;
  }
  // The kernels' scratch pool (cudaMallocAsync on the device's default pool), and the memory
  // that graphs' own allocations (scratch inside a captured step) left reserved: give them
  // back too.
  cudaMemPool_t pool;
  cudaError_t e = cudaDeviceGetDefaultMemPool(&pool, stream_->device());
  if (e == cudaSuccess) e = cudaMemPoolTrimTo(pool, 0);
  keep(e);
  keep(cudaDeviceGraphMemTrim(stream_->device()));
  (void)cudaGetLastError();  // every failure above is in `first`
  return first;
}

void CudaAddon::Settle(Napi::Env env, CudaCompletion* c) {
  try {
    Napi::HandleScope scope(env);
    if (!c->error.empty()) {
      Napi::Error err = Napi::Error::New(env, c->error);
      const size_t at = c->error.find("cudaError");
      if (at != std::string::npos) err.Set("code", c->error.substr(at, c->error.find(' ', at) - at));
      c->deferred.Reject(err.Value());
    } else if (!c->out.IsEmpty()) {
      c->deferred.Resolve(c->out.Value());
    } else if (c->has_number) {
      c->deferred.Resolve(Napi::Number::New(env, c->number));
    } else {
      c->deferred.Resolve(env.Undefined());
    }
  } catch (const Napi::Error&) {
    // Settling only fails while the environment is shutting down; nothing is left to tell.
  }
  c->out.Reset();
  delete c;
  if (--pending_ == 0) delivery_->tsfn.Unref(env);
}

void CudaAddon::deliver(CudaCompletion* c) {
  if (delivery_->tsfn.NonBlockingCall(c) != napi_ok) {  // closing: the environment is going away
    c->out.SuppressDestruct();
    delete c;
  }
}

void CudaAddon::enqueue_completion(const Args& a, CudaCompletion* c, std::function<void(CudaCompletion*)> on_host,
                                   std::function<std::string()> faults) {
  const cudaError_t e = stream_->after(a.op(), [this, c, on_host, faults](const std::string& err) {
    c->error = err;
    if (faults) {
      const std::string f = faults();  // always run: it returns its staging block
      if (c->error.empty()) c->error = f;
    }
    if (c->error.empty() && on_host) on_host(c);
    deliver(c);
  });
  if (e != cudaSuccess) {
    c->out.Reset();
    delete c;
    throw_cuda(a.env(), a.op(), e);
  }
  if (pending_++ == 0) delivery_->tsfn.Ref(a.env());
}

// ------------------------------------------------------------------ exports

Napi::Value CudaAddon::Probe(const Napi::CallbackInfo& info) {
  Args a(info, "probe", 0);
  Napi::Env env = info.Env();
  constexpr int kMaxDevices = 16;
  ImagerateCudaDevice devs[kMaxDevices];
  char reason[512] = {0};
  int drv = 0, rt = 0;
  const int count = imagerate_cuda_probe(reason, sizeof reason, &drv, &rt, devs, kMaxDevices);

  Napi::Object o = Napi::Object::New(env);
  o.Set("available", count > 0);
  o.Set("driverVersion", drv);
  o.Set("runtimeVersion", rt);
  if (count <= 0) {
    o.Set("reason", std::string(reason[0] ? reason : "unknown CUDA error"));
    return o;
  }
  Napi::Array list = Napi::Array::New(env);
  for (int i = 0; i < count && i < kMaxDevices; ++i) {
    const ImagerateCudaDevice& d = devs[i];
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("index", i);
    dev.Set("name", std::string(d.name));
    dev.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    dev.Set("totalMemoryBytes", (double)d.total_mem);
    dev.Set("multiprocessors", d.multiprocessors);
    dev.Set("l2CacheBytes", d.l2_cache_bytes);
    dev.Set("sharedMemPerBlockOptin", d.shared_mem_per_block_optin);
    dev.Set("pciBusId", pci_id(d.pci_domain, d.pci_bus, d.pci_device));
    list.Set((uint32_t)i, dev);
  }
  o.Set("devices", list);
  return o;
}

Napi::Value CudaAddon::Info(const Napi::CallbackInfo& info) {
  Args a(info, "info", 0);
  open_device(a);
  Napi::Env env = info.Env();
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", dev_.name);
  o.Set("computeCapability", std::to_string(dev_.major) + "." + std::to_string(dev_.minor));
  o.Set("multiprocessors", dev_.multiprocessors);
  o.Set("totalMemoryBytes", (double)dev_.total_memory);
  o.Set("freeMemoryBytes", (double)free_b);
  o.Set("l2CacheBytes", (double)dev_.l2_cache_bytes);
  o.Set("sharedMemPerBlockOptin", (double)dev_.shared_mem_per_block_optin);
  o.Set("clockMhz", dev_.clock_khz / 1000.0);
  o.Set("memClockMhz", dev_.mem_clock_khz / 1000.0);
  o.Set("memBusWidthBits", dev_.mem_bus_width);
  o.Set("driverVersion", dev_.driver_version);
  o.Set("runtimeVersion", dev_.runtime_version);
  o.Set("device", dev_.index);
  o.Set("pciBusId", dev_.pci_bus_id);
  o.Set("mathMode", cuda::math_mode_name(math_));
  o.Set("tensorCoreLoop", cuda::use_wgmma() ? "wgmma" : dev_.major * 10 + dev_.minor >= 80 ? "mma.sync" : "none");
  o.Set("stream", sync_each_op_ ? "sync-each-op" : "async");
  o.Set("addon", "cmake");
#ifdef IMAGERATE_CUDA_EMULATED
  o.Set("emulated", true);  // imagerate_cuda_emu.node: the kernels run on the CPU emulator
#else
  o.Set("emulated", false);
#endif
  return o;
}

Napi::Value CudaAddon::SetMathMode(const Napi::CallbackInfo& info) {
  Args a(info, "setMathMode", 1);
  const std::string m = a.str(0, "mode");
  if (m == "fp32") math_ = cuda::MathMode::FP32;
  else if (m == "tf32") math_ = cuda::MathMode::TF32;
  else if (m == "bf16") math_ = cuda::MathMode::BF16;
  else if (m == "fp16") math_ = cuda::MathMode::FP16;
  else a.fail("unknown math mode '" + m + "' (expected 'fp32', 'tf32', 'bf16' or 'fp16')");
  // Takes effect for GEMM/conv launched from now on; work already queued keeps its mode.
  return Napi::String::New(info.Env(), cuda::math_mode_name(math_));
}

}  // namespace imagerate

// One instance per environment: the addon is context-aware and safe in worker_threads.
using imagerate::CudaAddon;
NODE_API_NAMED_ADDON(imagerate_cuda, CudaAddon)
