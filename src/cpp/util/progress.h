// lmcodec core: progress reports and cancellation for long calls.
//
// The C API installs the caller's callback for the duration of one
// lmc_encode / lmc_decode (ProgressScope, thread-local: the codecs' strip
// loops run on the calling thread; worker threads never report). After each
// strip the codec calls progress(done, total); a callback that returns
// nonzero cancels the call, which then fails with Status::Cancelled and
// returns no output. Without a callback, progress() costs a branch.
#pragma once

#include <cstdint>

namespace lmc {

using ProgressFn = int (*)(void* user, uint32_t done, uint32_t total);

class ProgressScope {
 public:
  ProgressScope(ProgressFn fn, void* user);
  ~ProgressScope();
  ProgressScope(const ProgressScope&) = delete;
  ProgressScope& operator=(const ProgressScope&) = delete;

 private:
  ProgressFn prev_fn_;
  void* prev_user_;
};

// Reports `done` of `total` steps to the calling thread's callback, if any;
// throws Error(Status::Cancelled) when the callback asks to stop.
void progress(uint32_t done, uint32_t total);

}  // namespace lmc
