#include "util/threadpool.h"

#include "util/error.h"

#include <vector>
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

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

ThreadPool::ThreadPool(int n) : n_(1), requested_(n) {
  LMC_CHECK(n >= 1 && n <= 1024, Status::InvalidArgument, "ThreadPool: thread count must be in [1, 1024]");
  // A worker that cannot be started (address-space limit, pids cgroup,
  // RLIMIT_NPROC: std::system_error, or bad_alloc) ends the pool's growth: it
  // keeps the workers that started and the caller, possibly alone, runs the
  // rest. Never an exception here: the started workers would still wait on
  // this object's condition variables while it unwinds.
  try {
    workers_.reserve(size_t(n - 1));
  } catch (...) {
    return;
  }
  for (int i = 1; i < n; ++i) {
    try {
      workers_.emplace_back([this, i] { worker_main(i); });
    } catch (...) {
      break;
    }
    n_ = i + 1;  // read by parallel_for only, after the constructor returned
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

struct ThreadPool::Job {
  const std::function<void(int64_t, int)>* fn = nullptr;
  int64_t n = 0;
  std::atomic<int64_t> next{0};  // next task to claim
  std::atomic<int64_t> done{0};  // tasks finished (or skipped after an error)
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  std::exception_ptr error;
  ThreadPool* pool = nullptr;
};

// Claims and runs tasks until none is left. A task index >= n is never run, so
// a worker that wakes up after the job is over touches only the Job object
// (kept alive by its shared_ptr), never fn.
void ThreadPool::run_tasks(Job& job, int thread) {
  InsideGuard guard(job.pool);
  for (;;) {
    const int64_t t = job.next.fetch_add(1, std::memory_order_relaxed);
    if (t >= job.n) return;
    if (!job.failed.load(std::memory_order_relaxed)) {
      try {
        (*job.fn)(t, thread);
      } catch (...) {
        std::lock_guard<std::mutex> lk(job.err_mu);
        if (!job.error) job.error = std::current_exception();
        job.failed.store(true);
      }
    }
    if (job.done.fetch_add(1, std::memory_order_acq_rel) + 1 == job.n) {
      std::lock_guard<std::mutex> lk(job.pool->mu_);
      job.pool->done_cv_.notify_all();
    }
  }
}

void ThreadPool::worker_main(int id) {
  uint64_t seen = 0;
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      work_cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    if (job) run_tasks(*job, id);
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
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n_tasks;
  job->pool = this;
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = job;
    ++generation_;
  }
  work_cv_.notify_all();
  run_tasks(*job, 0);
  {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return job->done.load(std::memory_order_acquire) == job->n; });
    job_.reset();
  }
  if (job->error) std::rethrow_exception(job->error);
}

namespace {
// Idle pools, never destroyed (usable until exit; a pool's sleeping workers
// end with the process). After fork() the child drops the list without
// touching its pools: their worker threads were not copied, and a pool mutex
// may have been copied locked.
struct IdlePools {
  std::mutex mu;
  std::vector<ThreadPool*> idle;
  static constexpr size_t kKeep = 4;
  IdlePools() {
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork([] { idle_pools().mu.lock(); }, [] { idle_pools().mu.unlock(); },
                   [] {
                     IdlePools& p = idle_pools();
                     p.idle.clear();  // leaked on purpose (see above)
                     p.mu.unlock();
                   });
#endif
  }
  static IdlePools& idle_pools();
};
IdlePools& IdlePools::idle_pools() {
  static IdlePools* p = new IdlePools();
  return *p;
}
}  // namespace

PoolLease::PoolLease(int n) : pool_(nullptr) {
  LMC_CHECK(n >= 1 && n <= 1024, Status::InvalidArgument, "ThreadPool: thread count must be in [1, 1024]");
  IdlePools& p = IdlePools::idle_pools();
  {
    std::lock_guard<std::mutex> lk(p.mu);
    for (size_t i = 0; i < p.idle.size(); ++i)
      if (p.idle[i]->requested() == n) {
        pool_ = p.idle[i];
        p.idle.erase(p.idle.begin() + long(i));
        break;
      }
  }
  if (!pool_) pool_ = new ThreadPool(n);
}

PoolLease::~PoolLease() {
  IdlePools& p = IdlePools::idle_pools();
  {
    std::lock_guard<std::mutex> lk(p.mu);
    if (p.idle.size() < IdlePools::kKeep) {
      try {
        p.idle.push_back(pool_);
        return;
      } catch (...) {  // could not grow the list: fall through and delete the pool
      }
    }
  }
  delete pool_;
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
