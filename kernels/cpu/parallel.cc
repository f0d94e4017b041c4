// parallel.cc: see parallel.h. One generation counter + condition variables; workers sleep
// between jobs (no spinning), because on a 2-core machine the JS thread needs a core too.
#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace imagerate {
namespace {

thread_local bool tl_in_region = false;

class Pool {
 public:
  explicit Pool(int n) : n_(std::max(1, n)) {
    for (int t = 1; t < n_; ++t) workers_.emplace_back([this, t] { loop(t); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      ++gen_;
    }
    cv_job_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return n_; }

  // Callers hold g_run_mu (see parallel_for), so one job runs at a time.
  void run(int chunks, const std::function<void(int)>& job) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &job;
      chunks_ = chunks;
      pending_ = chunks - 1;
      ++gen_;
    }
    cv_job_.notify_all();
    tl_in_region = true;
    job(0);
    tl_in_region = false;
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop(int tid) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_job_.wait(lk, [&] { return gen_ != seen; });
        seen = gen_;
        if (stop_) return;
        if (tid >= chunks_) continue;
        job = job_;
      }
      tl_in_region = true;
      (*job)(tid);
      tl_in_region = false;
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (--pending_ == 0) cv_done_.notify_one();
      }
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_job_, cv_done_;
  const std::function<void(int)>* job_ = nullptr;
  int chunks_ = 0;
  int pending_ = 0;
  uint64_t gen_ = 0;
  bool stop_ = false;
};

std::mutex g_pool_mu;
// Held for the whole of a parallel job and while the pool is replaced: two streams (e.g. two
// Node environments in worker threads) may call in at once, and one may resize the pool.
std::mutex g_run_mu;
Pool* g_pool = nullptr;
int g_threads = 0;

int hw_threads() {
  unsigned h = std::thread::hardware_concurrency();
  return h == 0 ? 1 : (int)h;
}

Pool& pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (!g_pool) g_pool = new Pool(g_threads > 0 ? g_threads : hw_threads());
  return *g_pool;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  std::lock_guard<std::mutex> run_lk(g_run_mu);
  std::lock_guard<std::mutex> lk(g_pool_mu);
  int want = n > 0 ? n : hw_threads();
  if (g_pool && g_pool->size() == want) return;
  delete g_pool;
  g_pool = nullptr;
  g_threads = want;
}

bool in_parallel_region() { return tl_in_region; }

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  if (tl_in_region || n == 1) {
    fn(0, n, 0);
    return;
  }
  std::lock_guard<std::mutex> run_lk(g_run_mu);
  Pool& p = pool();
  int chunks = (int)std::min<int64_t>(p.size(), n);
  if (chunks <= 1) {
    fn(0, n, 0);
    return;
  }
  std::function<void(int)> job = [&](int c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    if (b < e) fn(b, e, c);
  };
  p.run(chunks, job);
}

}  // namespace imagerate
