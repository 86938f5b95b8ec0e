#include "dsp/threadpool.h"

#include "core/error.h"

namespace lmc {
namespace dsp {
namespace {
thread_local const ThreadPool* tls_inside_pool = nullptr;

struct InsideGuard {
  const ThreadPool* prev;
  explicit InsideGuard(const ThreadPool* p) : prev(tls_inside_pool) { tls_inside_pool = p; }
  ~InsideGuard() { tls_inside_pool = prev; }
};
}  // namespace

int ThreadPool::hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int n) : n_(n) {
  LMC_CHECK(n >= 1 && n <= 1024, Status::InvalidArgument, "ThreadPool: thread count must be in [1, 1024]");
  workers_.reserve(n - 1);
  for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_tasks(int thread) {
  InsideGuard guard(this);
  for (;;) {
    if (failed_.load(std::memory_order_relaxed)) return;
    const int64_t t = next_->fetch_add(1, std::memory_order_relaxed);
    if (t >= n_tasks_) return;
    try {
      (*fn_)(t, thread);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true);
    }
  }
}

void ThreadPool::worker_main(int id) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      work_cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    run_tasks(id);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (--pending_workers_ == 0) done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n_tasks, const std::function<void(int64_t, int)>& fn) {
  if (n_tasks <= 0) return;
  if (n_ == 1 || n_tasks == 1 || tls_inside_pool != nullptr) {
    // Inline: single thread, a single task, or a nested call.
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  std::atomic<int64_t> next{0};
  {
    std::lock_guard<std::mutex> lk(mu_);
    fn_ = &fn;
    n_tasks_ = n_tasks;
    next_ = &next;
    error_ = nullptr;
    failed_.store(false);
    pending_workers_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  work_cv_.notify_all();
  run_tasks(0);
  std::exception_ptr err;
  {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_workers_ == 0; });
    fn_ = nullptr;
    next_ = nullptr;
    err = error_;
    error_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

void parallel_for(ThreadPool* pool, int64_t n_tasks, const std::function<void(int64_t, int)>& fn) {
  if (pool != nullptr) {
    pool->parallel_for(n_tasks, fn);
  } else {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
  }
}

}  // namespace dsp
}  // namespace lmc
