// cuda_stream.cc: see cuda_stream.h. One mutex, one condition variable; the completion thread
// sleeps in cudaEventSynchronize (blocking-sync events) or on the condition variable, never
// spins, so a training loop costs no extra core.
#include "cuda_stream.h"

#include <utility>

#include "cuda_check.h"

#if defined(__linux__)
#include <pthread.h>
#endif

namespace imagerate {

CudaStream::CudaStream(int device, cudaError_t* err) : device_(device) {
  cudaError_t e = cudaSetDevice(device);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    stream_ = nullptr;
    if (err) *err = e;
    return;
  }
  worker_ = std::thread([this] { loop(); });
#if defined(__linux__)
  pthread_setname_np(worker_.native_handle(), "imagerate-cuda");
#endif
}

CudaStream::~CudaStream() {
  stop();
  if (stream_) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
  for (cudaEvent_t ev : spare_events_) cudaEventDestroy(ev);
  (void)cudaGetLastError();  // at process exit the runtime may already be unloading
}

cudaEvent_t CudaStream::take_event() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!spare_events_.empty()) {
      cudaEvent_t ev = spare_events_.front();
      spare_events_.pop_front();
      return ev;
    }
  }
  cudaEvent_t ev = nullptr;
  if (cudaEventCreateWithFlags(&ev, cudaEventBlockingSync | cudaEventDisableTiming) != cudaSuccess) return nullptr;
  return ev;
}

cudaError_t CudaStream::after(const char* what, Callback fn) {
  cudaEvent_t ev = take_event();
  if (!ev) {
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? cudaErrorMemoryAllocation : e;
  }
  const cudaError_t e = cudaEventRecord(ev, stream_);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    cudaEventDestroy(ev);
    return e;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) {
      spare_events_.push_back(ev);
      return cudaSuccess;  // shutting down: the callback is dropped, like queued CPU fences
    }
    queue_.push_back(Item{what, ev, std::move(fn)});
  }
  cv_.notify_one();
  return cudaSuccess;
}

cudaError_t CudaStream::wait_idle() {
  if (!stream_) return cudaSuccess;
  const cudaError_t e = cudaStreamSynchronize(stream_);
  if (e != cudaSuccess) (void)cudaGetLastError();
  return e;
}

void CudaStream::stop() {
  std::deque<Item> dropped;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ && !worker_.joinable()) return;
    stop_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  for (Item& it : dropped) cudaEventDestroy(it.event);
}

void CudaStream::loop() {
  cudaSetDevice(device_);  // the runtime's current device is per thread
  for (;;) {
    Item item;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    const cudaError_t e = cudaEventSynchronize(item.event);
    std::string error;
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      error = cuda_failure(item.what, e);
    }
    item.fn(error);  // the callbacks in cuda_addon.cc do not throw
    std::lock_guard<std::mutex> lk(mu_);
    spare_events_.push_back(item.event);
  }
}

}  // namespace imagerate
