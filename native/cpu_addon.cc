// cpu_addon.cc: module entry of imagerate_cpu.node, plus its memory, stream and info exports.
//
// Promises (sync, download) are settled on the JS thread: the stream's fence callback hands a
// Completion to a thread-safe function (TSFN) whose CallJs resolves or rejects it. The TSFN is
// unref'd while nothing is pending, so an idle addon never keeps the process alive, and ref'd
// while a Promise is outstanding, so `await sync()` at the end of a script is not cut short.
//
// Teardown order (per environment): our cleanup hook, registered after the TSFN was created,
// runs before Node closes the TSFN, stops the stream and joins its thread; Node then deletes
// the instance (freeing all buffers) when it drops the instance data.
#include "cpu_addon.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "kernels.h"
#include "parallel.h"

#if __has_include("gemm_bench.h")
#include "gemm_bench.h"
#define IMAGERATE_HAVE_GEMM_BENCH 1
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace imagerate {

struct Completion {
  explicit Completion(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::ArrayBuffer> out;  // download target; empty for sync()
  std::string error;
};

namespace {

std::string cpu_model() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned regs[12] = {0};
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000004u) {
    for (unsigned k = 0; k < 3; ++k)
      __get_cpuid(0x80000002u + k, &regs[4 * k], &regs[4 * k + 1], &regs[4 * k + 2], &regs[4 * k + 3]);
    std::string s(reinterpret_cast<const char*>(regs), sizeof(regs));
    s = s.c_str();  // cut at the first NUL
    const size_t b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
    if (b != std::string::npos) return s.substr(b, e - b + 1);
  }
#endif
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      const size_t start = line.find_first_not_of(" \t", line.find(':') + 1);
      if (line.find(':') != std::string::npos && start != std::string::npos) return line.substr(start);
    }
  }
  return "unknown";
}

bool cpu_has(const char* feature) {
#if defined(__x86_64__) || defined(__i386__)
  if (!std::strcmp(feature, "avx2")) return __builtin_cpu_supports("avx2");
  if (!std::strcmp(feature, "fma")) return __builtin_cpu_supports("fma");
  if (!std::strcmp(feature, "avx512f")) return __builtin_cpu_supports("avx512f");
#endif
  (void)feature;
  return false;
}

// The TSFN's CallJs must be a function of internal linkage: with -fsanitize (CI's ASan/UBSan
// build) GCC cannot fold node-addon-api's `call == nullptr` test for a template instance.
void call_js(Napi::Env env, Napi::Function f, CpuAddon* addon, Completion* c) { settle_on_js(env, f, addon, c); }

}  // namespace

using Tsfn = Napi::TypedThreadSafeFunction<CpuAddon, Completion, call_js>;
constexpr auto Method = export_method<CpuAddon, Napi::Value (CpuAddon::*)(const Napi::CallbackInfo&)>;
struct CpuAddon::Delivery {
  Tsfn tsfn;
};

CpuAddon::CpuAddon(Napi::Env env, Napi::Object exports) {
  stream_ = std::make_unique<CpuStream>(env_flag("IMAGERATE_CPU_SYNC"));
  if (!stream_->inline_mode()) {
    delivery_ = std::make_unique<Delivery>();
    delivery_->tsfn = Tsfn::New(env, "imagerate_cpu_stream", 0, 1, this);
    delivery_->tsfn.Unref(env);
  }
  env.AddCleanupHook([this] { shutdown(); });  // after the TSFN: runs before Node closes it

  // The registration table: every export of imagerate_cpu.node.
  DefineAddon(exports, {
    Method("info", &CpuAddon::Info),
    Method("setThreads", &CpuAddon::SetThreads),
    Method("forceIsa", &CpuAddon::ForceIsa),
    Method("alloc", &CpuAddon::Alloc),
    Method("free", &CpuAddon::Free),
    Method("upload", &CpuAddon::Upload),
    Method("download", &CpuAddon::Download),
    Method("sync", &CpuAddon::Sync),
    Method("stats", &CpuAddon::Stats),
    Method("emptyCache", &CpuAddon::EmptyCache),
  });
  // copy (here: a memmove), then the op families of cpu_ops_*.cc.
  define(exports, kCopy, [](const CopyCall& c) { std::memmove(c.d, c.s, (size_t)c.n * 4); });  // overlap is fine
  define_nn_ops(exports);
  define_pointwise_ops(exports);
  define_norm_ops(exports);
#ifdef IMAGERATE_HAVE_GEMM_BENCH
  RegisterGemmBench(env, exports);
#endif
}

CpuAddon::~CpuAddon() { shutdown(); }  // alloc_ then frees every block

void CpuAddon::shutdown() {
  if (stream_) stream_->stop();
}

void CpuAddon::Settle(Napi::Env env, Completion* c) {
  try {
    Napi::HandleScope scope(env);
    if (c->error.empty()) c->deferred.Resolve(c->out.IsEmpty() ? env.Undefined() : c->out.Value());
    else c->deferred.Reject(Napi::Error::New(env, c->error).Value());
  } catch (const Napi::Error&) {
    // Settling only fails while the environment is shutting down; nothing is left to tell.
  }
  c->out.Reset();
  delete c;
  if (--pending_ == 0 && delivery_) delivery_->tsfn.Unref(env);
}

void CpuAddon::enqueue_completion(Completion* c) {
  // A download queued its copy as a task just before this fence; here only the Promise settles.
  if (pending_++ == 0 && delivery_) delivery_->tsfn.Ref(c->deferred.Env());
  if (!delivery_) {  // inline stream: the fence runs right here on the JS thread
    Napi::Env env = c->deferred.Env();
    stream_->enqueue_fence([this, c, env](const std::string& err) {
      c->error = err;
      Settle(env, c);
    });
    return;
  }
  Delivery* d = delivery_.get();
  stream_->enqueue_fence([d, c](const std::string& err) {
    c->error = err;
    if (d->tsfn.NonBlockingCall(c) != napi_ok) {  // closing: the environment is going away
      c->out.SuppressDestruct();
      delete c;
    }
  });
}

void CpuAddon::free_pool_in_order() {
  std::vector<void*> blocks = alloc_.release_pool();
  if (blocks.empty()) return;
  auto release = [blocks]() {
    for (void* p : blocks) std::free(p);
  };
  if (stream_->inline_mode()) release();
  else enqueue("emptyCache", release);
}

// ------------------------------------------------------------------ exports

Napi::Value CpuAddon::Info(const Napi::CallbackInfo& info) {
  Args a(info, "info", 0);
  Napi::Env env = info.Env();
  const std::string isa = gemm_isa();
  const bool avx2 = isa == "avx2-fma";
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", isa);
  o.Set("threads", num_threads());
  o.Set("hwThreads", (double)std::thread::hardware_concurrency());
  o.Set("cpuModel", cpu_model());
  o.Set("simdWidth", avx2 ? 8 : 4);  // float lanes of the GEMM path: AVX2 8, SSE2/NEON 4
  o.Set("fmaUnits", avx2 ? 2 : 1);   // a guess: every AVX2-capable x86 core has 2 FMA pipes
  Napi::Object feat = Napi::Object::New(env);
  feat.Set("avx2", cpu_has("avx2"));
  feat.Set("fma", cpu_has("fma"));
  feat.Set("avx512f", cpu_has("avx512f"));
  o.Set("cpuFeatures", feat);
  o.Set("stream", stream_->inline_mode() ? "inline" : "thread");
#if defined(IMAGERATE_BUILT_BY_GYP)
  o.Set("addon", "gyp");
#else
  o.Set("addon", "cmake");
#endif
  return o;
}

Napi::Value CpuAddon::SetThreads(const Napi::CallbackInfo& info) {
  Args a(info, "setThreads", 1);
  const int64_t n = a.index(0, "n");  // 0 = all hardware threads
  if (n > 1024) a.fail("n must be at most 1024, got " + std::to_string(n));
  stream_->wait_idle();  // the pool must not be replaced under a running kernel
  set_num_threads((int)n);
  return Napi::Number::New(info.Env(), num_threads());
}

Napi::Value CpuAddon::ForceIsa(const Napi::CallbackInfo& info) {
  Args a(info, "forceIsa", 1);
  const std::string name = a.str(0, "name");
  if (name != "avx2-fma" && name != "generic")
    a.fail("unknown ISA '" + name + "' (expected 'avx2-fma' or 'generic')");
  stream_->wait_idle();
  gemm_force_isa(name.c_str());
  return Napi::String::New(info.Env(), gemm_isa());  // unchanged if the CPU lacks it
}

Napi::Value CpuAddon::Alloc(const Napi::CallbackInfo& info) {
  Args a(info, "alloc", 1);
  const int64_t bytes = a.index(0, "bytes");
  uint64_t id = alloc_.alloc((uint64_t)bytes);
  if (id == 0) {  // give the pool back to the OS (after queued work) and try once more
    stream_->wait_idle();
    for (void* p : alloc_.release_pool()) std::free(p);
    id = alloc_.alloc((uint64_t)bytes);
  }
  if (id == 0)
    throw Napi::Error::New(info.Env(), "cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
  return Napi::Number::New(info.Env(), (double)id);
}

Napi::Value CpuAddon::Free(const Napi::CallbackInfo& info) {
  Args a(info, "free", 1);
  const Buf b = buf(a, 0, "id");
  alloc_.free(b.id);
  return info.Env().Undefined();
}

Napi::Value CpuAddon::Upload(const Napi::CallbackInfo& info) {
  Args a(info, "upload", 2);
  const Buf b = buf(a, 0, "id");
  const HostBytes data = a.host_bytes(1, "data");
  const uint8_t* src = data.ptr;
  const size_t n = data.bytes;
  a.need(b, "id", n);
  if (n == 0) return info.Env().Undefined();
  if (stream_->inline_mode()) {
    std::memcpy(b.ptr, src, n);
    return info.Env().Undefined();
  }
  // Stage now (the caller may reuse its array at once), copy in stream order.
  std::shared_ptr<uint8_t> staging(static_cast<uint8_t*>(std::malloc(n)), std::free);
  if (!staging)
    throw Napi::Error::New(info.Env(), "cpu: out of memory allocating " + std::to_string(n) + " bytes (upload staging)");
  std::memcpy(staging.get(), src, n);
  void* dst = b.ptr;
  enqueue("upload", [staging, dst, n] { std::memcpy(dst, staging.get(), n); });
  return info.Env().Undefined();
}

Napi::Value CpuAddon::Download(const Napi::CallbackInfo& info) {
  Args a(info, "download", 1, 2);
  const Buf b = buf(a, 0, "id");
  const uint64_t bytes = a.present(1) ? (uint64_t)a.index(1, "bytes") : b.bytes;
  a.need(b, "id", bytes);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(info.Env(), (size_t)bytes);
  auto* c = new Completion(info.Env());
  Napi::Promise promise = c->deferred.Promise();
  c->out = Napi::Persistent(ab);
  // The copy is its own task, just before the fence: it runs after all earlier work, and a
  // failed earlier op still rejects the Promise at the fence.
  void* dst = ab.Data();
  const void* src = b.ptr;
  if (bytes > 0) enqueue("download", [dst, src, bytes] { std::memcpy(dst, src, (size_t)bytes); });
  enqueue_completion(c);
  return promise;
}

Napi::Value CpuAddon::Sync(const Napi::CallbackInfo& info) {
  Args a(info, "sync", 0);
  auto* c = new Completion(info.Env());
  Napi::Promise promise = c->deferred.Promise();
  enqueue_completion(c);
  return promise;
}

Napi::Value CpuAddon::Stats(const Napi::CallbackInfo& info) {
  Args a(info, "stats", 0);
  const CpuAllocStats s = alloc_.stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("liveBuffers", (double)s.live_buffers);
  o.Set("liveBytes", (double)s.live_bytes);
  o.Set("pooledBuffers", (double)s.pooled_buffers);
  o.Set("pooledBytes", (double)s.pooled_bytes);
  return o;
}

Napi::Value CpuAddon::EmptyCache(const Napi::CallbackInfo& info) {
  Args a(info, "emptyCache", 0);
  free_pool_in_order();
  return info.Env().Undefined();
}

}  // namespace imagerate

// One instance per environment: the addon is context-aware and safe in worker_threads.
using imagerate::CpuAddon;
NODE_API_NAMED_ADDON(imagerate_cpu, CpuAddon)
