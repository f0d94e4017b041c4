// cuda_stream.h: the CUDA addon's stream (one per addon instance, i.e. per Node environment)
// and its completion thread.
//
// Every export enqueues its work on one non-blocking cudaStream_t and returns at once; CUDA
// runs it in order. Work that must happen on the host after the GPU reaches a point (settling
// a sync()/download() Promise, copying a download out of its pinned staging buffer, recycling
// an upload's staging buffer, reading an event pair's elapsed time) is queued with after():
// it records an event on the stream, and a native completion thread waits for that event
// (cudaEventSynchronize, blocking-sync events: no spinning) and then runs the callback with
// the error the wait returned, in queue order. The JS thread never blocks on the GPU, and an
// asynchronous fault (cudaErrorIllegalAddress...) reaches JS as a Promise rejection naming it.
//
// wait_idle() (cudaStreamSynchronize on the calling thread) is for rare calls only: emptying
// the pools, IMAGERATE_CUDA_SYNC=1 debugging, teardown.
#pragma once
#include <cuda_runtime_api.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace imagerate {

class CudaStream {
 public:
  // Runs on the completion thread; error is empty when the wait succeeded, else
  // "cuda <what>: <error name> (<error string>)".
  using Callback = std::function<void(const std::string& error)>;

  // Makes `device` current on the calling thread and on the completion thread, creates the
  // stream; on failure sets *err (and leaves the object unusable: ok() is false).
  CudaStream(int device, cudaError_t* err);
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  bool ok() const { return stream_ != nullptr; }
  cudaStream_t get() const { return stream_; }
  int device() const { return device_; }

  // Queues `fn` to run on the completion thread once all work enqueued so far has finished.
  // `what` (static storage) names the export in the error text. Returns the error of
  // creating/recording the event (then nothing was queued and fn will never run).
  cudaError_t after(const char* what, Callback fn);
  // Blocks the calling thread until the stream is idle; returns the stream's error.
  cudaError_t wait_idle();
  // Drops queued callbacks (never run), waits for the running one and joins the thread.
  // Idempotent; called from the environment's cleanup hook.
  void stop();

 private:
  struct Item {
    const char* what;
    cudaEvent_t event;
    Callback fn;
  };
  void loop();
  cudaEvent_t take_event();  // from the free list, or a new blocking-sync event

  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  std::deque<cudaEvent_t> spare_events_;  // guarded by mu_
  bool stop_ = false;
};

}  // namespace imagerate
