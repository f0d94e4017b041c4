// cuda_memory.cc: the memory and stream exports of imagerate_cuda.node (cuda_addon.h).
//
//   alloc(bytes) -> id; free(id); upload(id, typedArray | ArrayBuffer | DataView)
//   download(id, bytes?) -> Promise<ArrayBuffer>; sync() -> Promise<void>
//   stats() -> { liveBuffers, liveBytes, pooledBuffers, pooledBytes, heldBuffers, heldBytes,
//                deviceBytes, mallocCalls, pinnedBytes, graphs }; emptyCache()
//   copy(n, src, srcOffset, dst, dstOffset)          (float32 elements; overlap allowed)
//
// Uploads are staged in pinned memory and copied in stream order; downloads land in pinned
// memory and are copied into the ArrayBuffer on the completion thread (cuda_addon.cc settles
// the Promise on the JS thread). Without pinned memory both fall back to pageable copies.
//
// Faults (kernels.cuh): once a loss kernel has been given a fault slot, every download() and
// sync() also copies the slots into pinned memory and clears them, in stream order, and the
// Promise rejects when a kernel counted one since the last check, with the CPU kernel's
// `softmaxXentFwd: label 12 at row 1 is outside [0, 10)` for one bad label, or with
// `softmaxXentFwd: 3 labels are outside [0, 10), the first at row 1 (labels from -1 to 12)`
// (as the webgpu backend). The slots are cleared either way, so the addon stays usable.
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "cuda_addon.h"
#include "cuda_check.h"

namespace imagerate {

Napi::Value CudaAddon::Alloc(const Napi::CallbackInfo& info) {
  Args a(info, "alloc", 1);
  const int64_t bytes = a.index(0, "bytes");
  open_device(a);
  cudaError_t err = cudaSuccess;
  uint64_t id = alloc_.alloc((uint64_t)bytes, &err);
  if (id == 0 && err == cudaErrorMemoryAllocation && release_caches() == cudaSuccess) id = alloc_.alloc((uint64_t)bytes, &err);
  if (id == 0) throw_cuda(info.Env(), "alloc", err, "allocating " + std::to_string(bytes) + " bytes");
  return Napi::Number::New(info.Env(), (double)id);
}

Napi::Value CudaAddon::Free(const Napi::CallbackInfo& info) {
  Args a(info, "free", 1);
  const Buf b = a.buf(0, "id", alloc_);  // not buf(): freeing is no use of the buffer
  alloc_.free(b.id);
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Upload(const Napi::CallbackInfo& info) {
  Args a(info, "upload", 2);
  not_capturing(a);
  const Buf b = buf(a, 0, "id");
  const HostBytes data = a.host_bytes(1, "data");
  const uint8_t* src = data.ptr;
  const size_t n = data.bytes;
  a.need(b, "id", n);
  if (n == 0) return info.Env().Undefined();
  cudaStream_t s = stream(a);
  // Stage now (the caller may reuse its array at once), copy in stream order, recycle the
  // staging block once the copy is done.
  const PinnedBlock st = pinned_.acquire(n);
  if (!st.ptr) {
    // No pinned memory: copy straight from the caller's pageable array. The runtime may stage
    // such a copy and return before it has read the source, so wait for the stream: the caller
    // may reuse its array as soon as this returns.
    CUDA_CHECK(info.Env(), "upload", cudaMemcpyAsync(b.ptr, src, n, cudaMemcpyHostToDevice, s), "copying " + std::to_string(n) + " bytes");
    CUDA_CHECK(info.Env(), "upload", cudaStreamSynchronize(s), "waiting for a pageable copy of " + std::to_string(n) + " bytes");
    return info.Env().Undefined();
  }
  std::memcpy(st.ptr, src, n);
  const cudaError_t e = cudaMemcpyAsync(b.ptr, st.ptr, n, cudaMemcpyHostToDevice, s);
  if (e != cudaSuccess) {
    pinned_.give_back(st);
    throw_cuda(info.Env(), "upload", e, "copying " + std::to_string(n) + " bytes");
  }
  PinnedPool* pool = &pinned_;
  const cudaError_t q = stream_->after("upload", [pool, st](const std::string&) { pool->give_back(st); });
  if (q != cudaSuccess) throw_cuda(info.Env(), "upload", q);
  return info.Env().Undefined();
}

Napi::Value CudaAddon::Download(const Napi::CallbackInfo& info) {
  Args a(info, "download", 1, 2);
  not_capturing(a);
  const Buf b = buf(a, 0, "id");
  const uint64_t bytes = a.present(1) ? (uint64_t)a.index(1, "bytes") : b.bytes;
  a.need(b, "id", bytes);
  cudaStream_t s = stream(a);
  // The fault check first, before anything that its throw would leak (its copy is ordered
  // before the completion either way).
  std::function<std::string()> faults = enqueue_fault_check(a);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(info.Env(), (size_t)bytes);
  auto* c = new CudaCompletion(info.Env());
  Napi::Promise promise = c->deferred.Promise();
  c->out = Napi::Persistent(ab);
  void* dst = ab.Data();
  std::function<void(CudaCompletion*)> on_host;
  if (bytes > 0) {
    const PinnedBlock st = pinned_.acquire(bytes);
    if (st.ptr) {
      const cudaError_t e = cudaMemcpyAsync(st.ptr, b.ptr, (size_t)bytes, cudaMemcpyDeviceToHost, s);
      if (e != cudaSuccess) {
        pinned_.give_back(st);
        c->out.Reset();
        delete c;
        throw_cuda(info.Env(), "download", e, "copying " + std::to_string(bytes) + " bytes");
      }
      PinnedPool* pool = &pinned_;
      on_host = [pool, st, dst, bytes](CudaCompletion*) {
        std::memcpy(dst, st.ptr, (size_t)bytes);
        pool->give_back(st);
      };
      // (on an error the staging block is not returned: a sticky fault ends the context anyway)
    } else {
      // No pinned memory: a pageable copy into the ArrayBuffer, synchronous on this thread.
      const cudaError_t e = cudaMemcpyAsync(dst, b.ptr, (size_t)bytes, cudaMemcpyDeviceToHost, s);
      if (e != cudaSuccess) {
        c->out.Reset();
        delete c;
        throw_cuda(info.Env(), "download", e, "copying " + std::to_string(bytes) + " bytes");
      }
    }
  }
  enqueue_completion(a, c, on_host, std::move(faults));
  return promise;
}

Napi::Value CudaAddon::Sync(const Napi::CallbackInfo& info) {
  Args a(info, "sync", 0);
  not_capturing(a);
  open_device(a);
  std::function<std::string()> faults = enqueue_fault_check(a);
  auto* c = new CudaCompletion(info.Env());
  Napi::Promise promise = c->deferred.Promise();
  enqueue_completion(a, c, nullptr, std::move(faults));
  return promise;
}

// ------------------------------------------------------------------ faults

namespace {

// "<op>: <what>" for the first slot that counted a fault, else "".
std::string fault_message(const uint32_t* w) {
  for (int s = 0; s < cuda::kFaultSlots; ++s) {
    const uint32_t* f = w + s * cuda::kFaultWords;
    if (f[0] == 0) continue;
    const std::string op = s == cuda::kFaultXentFwd ? "softmaxXentFwd" : "softmaxXentBwd";
    const std::string row = std::to_string(~f[1]), range = "[0, " + std::to_string(f[2]) + ")";
    const int32_t hi = (int32_t)(f[3] ^ 0x80000000u), lo = (int32_t)(~f[4] ^ 0x80000000u);
    if (f[0] == 1) return op + ": label " + std::to_string(lo) + " at row " + row + " is outside " + range;
    return op + ": " + std::to_string(f[0]) + " labels are outside " + range + ", the first at row " + row + " (" +
           (lo == hi ? "all " + std::to_string(lo) : "labels from " + std::to_string(lo) + " to " + std::to_string(hi)) + ")";
  }
  return "";
}

}  // namespace

uint32_t* CudaAddon::fault_slot(const Args& a, cuda::FaultSlot slot) {
  open_device(a);  // allocates the slots (open_device: not while capturing a graph)
  faults_used_ = true;
  return faults_ + slot * cuda::kFaultWords;
}

std::function<std::string()> CudaAddon::enqueue_fault_check(const Args& a) {
  if (!faults_used_) return nullptr;
  cudaStream_t s = stream_->get();
  const PinnedBlock st = pinned_.acquire(kFaultBytes);
  if (!st.ptr) {
    // No pinned memory: a pageable copy (it waits for the stream, then the host has the words).
    auto words = std::make_shared<std::vector<uint32_t>>(kFaultBytes / sizeof(uint32_t));
    CUDA_CHECK(a.env(), a.op(), cudaMemcpyAsync(words->data(), faults_, kFaultBytes, cudaMemcpyDeviceToHost, s), "reading the fault slots");
    CUDA_CHECK(a.env(), a.op(), cudaMemsetAsync(faults_, 0, kFaultBytes, s), "clearing the fault slots");
    return [words] { return fault_message(words->data()); };
  }
  cudaError_t e = cudaMemcpyAsync(st.ptr, faults_, kFaultBytes, cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess) e = cudaMemsetAsync(faults_, 0, kFaultBytes, s);
  if (e != cudaSuccess) {
    pinned_.give_back(st);
    throw_cuda(a.env(), a.op(), e, "reading the fault slots");
  }
  PinnedPool* pool = &pinned_;
  return [pool, st] {
    const std::string m = fault_message(static_cast<const uint32_t*>(st.ptr));
    pool->give_back(st);
    return m;
  };
}

Napi::Value CudaAddon::Stats(const Napi::CallbackInfo& info) {
  Args a(info, "stats", 0);
  const CudaAllocStats s = alloc_.stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("liveBuffers", (double)s.live_buffers);
  o.Set("liveBytes", (double)s.live_bytes);
  o.Set("pooledBuffers", (double)s.pooled_buffers);
  o.Set("pooledBytes", (double)s.pooled_bytes);
  o.Set("heldBuffers", (double)s.held_buffers);
  o.Set("heldBytes", (double)s.held_bytes);
  o.Set("deviceBytes", (double)s.device_bytes);
  o.Set("mallocCalls", (double)s.malloc_calls);
  o.Set("pinnedBytes", (double)pinned_.total_bytes());
  o.Set("graphs", (double)graphs_.size());
  return o;
}

Napi::Value CudaAddon::EmptyCache(const Napi::CallbackInfo& info) {
  Args a(info, "emptyCache", 0);
  not_capturing(a);
  if (!stream_) return info.Env().Undefined();  // nothing was ever allocated
  const cudaError_t e = stream_->wait_idle();
  if (e != cudaSuccess) throw_cuda(info.Env(), "emptyCache", e);
  const cudaError_t r = release_caches();
  if (r != cudaSuccess) throw_cuda(info.Env(), "emptyCache", r);
  return info.Env().Undefined();
}

void CudaAddon::copy(const Args& a, const CopyCall& c) {
  const int64_t n = c.n, so = c.src_offset, d_o = c.dst_offset;
  const float* s = c.s;
  float* d = c.d;
  const Buf& src = c.src;
  const Buf& dst = c.dst;
  const bool overlap = src.id == dst.id && so < d_o + n && d_o < so + n;
  if (!overlap) {
    launch(a, [=](cudaStream_t st) { return cuda::copy_f32(n, s, d, st); });
    return;
  }
  // copy_f32 needs disjoint ranges: bounce through a scratch buffer (pooled, stream-ordered).
  cudaError_t err = cudaSuccess;
  const uint64_t tmp = alloc_.alloc((uint64_t)n * 4, &err);
  if (tmp == 0) throw_cuda(a.env(), "copy", err, "allocating " + std::to_string(n * 4) + " bytes of scratch");
  float* t = static_cast<float*>(alloc_.find(tmp)->ptr);
  touch_in_capture(tmp);
  try {
    launch(a, [=](cudaStream_t st) {
      const cudaError_t e = cuda::copy_f32(n, s, t, st);
      return e != cudaSuccess ? e : cuda::copy_f32(n, t, d, st);
    });
  } catch (...) {
    alloc_.free(tmp);
    throw;
  }
  alloc_.free(tmp);  // stream order keeps the block intact until both copies have run
}

}  // namespace imagerate
