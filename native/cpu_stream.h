// cpu_stream.h: an in-order work queue with one native worker thread (one per Node environment),
// the CPU counterpart of a CUDA stream.
//
// The JS thread validates an op's arguments, then enqueue()s a task and returns at once.
// The worker runs tasks strictly in order. A task that throws does not stop the stream: the
// first error (prefixed with the op name) is recorded, and the next fence reports it and
// clears it. Fences carry sync() and download(): their callback runs on the worker after
// every earlier task, with the pending error, and delivers a result to JS (cpu_addon.cc).
//
// Inline mode (IMAGERATE_CPU_SYNC=1) has no thread: tasks and fences run immediately on the
// calling thread, with the same error semantics. Use it for debugging and sanitizer runs.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace imagerate {

class CpuStream {
 public:
  using Task = std::function<void()>;
  using Fence = std::function<void(const std::string& error)>;  // error empty when all went well

  explicit CpuStream(bool inline_mode);
  ~CpuStream();
  CpuStream(const CpuStream&) = delete;
  CpuStream& operator=(const CpuStream&) = delete;

  bool inline_mode() const { return inline_; }
  // `op` must be a string with static storage (an op name); it prefixes any error message.
  void enqueue(const char* op, Task fn);
  void enqueue_fence(Fence fn);
  // Blocks the calling (JS) thread until every task queued so far has run. For rare calls only
  // (setThreads, emptyCache on OOM), never per op.
  void wait_idle();
  // Drops queued tasks, waits for the running one and joins the worker. Idempotent.
  // Called from the environment's cleanup hook, so a terminating worker_thread exits cleanly.
  void stop();

 private:
  struct Item {
    const char* op;  // nullptr for a fence
    Task task;
    Fence fence;
  };
  void loop();
  void run(Item& item);  // runs one item on the current thread, recording errors

  const bool inline_;
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_idle_;
  std::deque<Item> queue_;
  uint64_t submitted_ = 0, finished_ = 0;
  bool stop_ = false;
  // Touched only by the thread that runs items (the worker, or the JS thread when inline).
  std::string error_;
  uint64_t more_errors_ = 0;
};

}  // namespace imagerate
