// cpu_stream.cc: see cpu_stream.h. One mutex and two condition variables; the worker sleeps
// while the queue is empty (no spinning: on a 2-core machine the JS thread needs a core).
#include "cpu_stream.h"

#include <new>
#include <utility>

#if defined(__linux__)
#include <pthread.h>
#endif

namespace imagerate {

CpuStream::CpuStream(bool inline_mode) : inline_(inline_mode) {
  if (inline_) return;
  worker_ = std::thread([this] { loop(); });
#if defined(__linux__)
  pthread_setname_np(worker_.native_handle(), "imagerate-cpu");
#endif
}

CpuStream::~CpuStream() { stop(); }

void CpuStream::enqueue(const char* op, Task fn) {
  Item item{op, std::move(fn), nullptr};
  if (inline_) {
    run(item);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return;
    queue_.push_back(std::move(item));
    ++submitted_;
  }
  cv_work_.notify_one();
}

void CpuStream::enqueue_fence(Fence fn) {
  Item item{nullptr, nullptr, std::move(fn)};
  if (inline_) {
    run(item);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return;
    queue_.push_back(std::move(item));
    ++submitted_;
  }
  cv_work_.notify_one();
}

void CpuStream::wait_idle() {
  if (inline_) return;
  std::unique_lock<std::mutex> lk(mu_);
  const uint64_t target = submitted_;
  cv_idle_.wait(lk, [&] { return finished_ >= target || stop_; });
}

void CpuStream::stop() {
  if (inline_) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ && !worker_.joinable()) return;
    stop_ = true;
    queue_.clear();  // pending fences are dropped: their promises die with the environment
  }
  cv_work_.notify_all();
  cv_idle_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void CpuStream::loop() {
  for (;;) {
    Item item;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    run(item);
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++finished_;
    }
    cv_idle_.notify_all();
  }
}

void CpuStream::run(Item& item) {
  if (!item.op) {  // fence: report and clear the pending error
    std::string err;
    if (!error_.empty()) {
      err = std::move(error_);
      if (more_errors_ > 0) err += " (and " + std::to_string(more_errors_) + " later failed ops)";
      error_.clear();
      more_errors_ = 0;
    }
    item.fence(err);  // the fence callbacks in cpu_addon.cc do not throw
    return;
  }
  std::string what;
  try {
    item.task();
    return;
  } catch (const std::bad_alloc&) {
    what = "out of memory (std::bad_alloc)";
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown native exception";
  }
  if (error_.empty()) error_ = std::string(item.op) + ": " + what;
  else ++more_errors_;
}

}  // namespace imagerate
