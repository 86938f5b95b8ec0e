// lmcodec dsp: a small fixed-size thread pool for the compute kernels.
//
//   ThreadPool pool(2);                       // 1 = everything runs inline
//   pool.parallel_for(n, [&](int64_t task, int thread) { ... });
//
// parallel_for runs fn(task, thread) for every task in [0, n) and returns when
// all are done. `thread` is in [0, size()) and is unique among the calls that
// run at the same time, so it can index per-thread scratch buffers. Tasks are
// handed out dynamically (an atomic counter), so which thread runs which task
// varies; kernels therefore make each task compute its outputs completely and
// in a fixed order, which keeps results independent of the thread count.
//
// The calling thread takes part in the work and returns as soon as every task
// is done: it never waits for a worker that has not woken up yet (on a busy
// machine it may simply run all the tasks itself). Calls from several threads
// are serialised; a nested call (from inside a task) runs inline. If tasks
// throw, the remaining tasks are skipped and the first exception is rethrown.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace lmc {
namespace dsp {

class ThreadPool {
 public:
  // n >= 1 threads in total (the caller counts as one); n outside [1, 1024]
  // throws lmc::Error(InvalidArgument). When the system refuses a thread
  // (memory or process limits), the pool keeps the workers that started:
  // size() may then be less than n, down to 1 (the caller alone). Results do
  // not depend on the thread count, so this only costs speed.
  explicit ThreadPool(int n = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_; }
  int requested() const { return requested_; }  // the n asked for

  void parallel_for(int64_t n_tasks, const std::function<void(int64_t task, int thread)>& fn);

  // std::thread::hardware_concurrency(), at least 1.
  static int hardware_threads();

 private:
  struct Job;
  void worker_main(int id);
  static void run_tasks(Job& job, int thread);

  int n_;
  int requested_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises parallel_for callers

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::shared_ptr<Job> job_;  // the current job; workers hold a reference while they look at it
};

// A pool of n threads from a process-wide cache: a codec call takes one and
// gives it back when the lease ends, so repeated calls reuse their threads
// instead of creating and joining them every time (~0.1-0.5 ms a call, which
// on a thumbnail is more than the work). Concurrent leases get different
// pools; at most a few idle pools are kept (their threads sleep on a condition
// variable). A child process made by fork() starts with an empty cache (the
// parent's worker threads do not exist there).
class PoolLease {
 public:
  explicit PoolLease(int n);  // n in [1, 1024], else lmc::Error(InvalidArgument)
  ~PoolLease();
  PoolLease(const PoolLease&) = delete;
  PoolLease& operator=(const PoolLease&) = delete;
  ThreadPool* get() const { return pool_; }

 private:
  ThreadPool* pool_;
};

// Runs fn over [0, n) on `pool`, or inline when pool is null.
void parallel_for(ThreadPool* pool, int64_t n_tasks, const std::function<void(int64_t task, int thread)>& fn);

}  // namespace dsp
}  // namespace lmc
