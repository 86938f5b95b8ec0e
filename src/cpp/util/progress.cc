#include "util/progress.h"

#include "util/error.h"

namespace lmc {
namespace {
thread_local ProgressFn t_fn = nullptr;
thread_local void* t_user = nullptr;
}  // namespace

ProgressScope::ProgressScope(ProgressFn fn, void* user) : prev_fn_(t_fn), prev_user_(t_user) {
  t_fn = fn;
  t_user = user;
}

ProgressScope::~ProgressScope() {
  t_fn = prev_fn_;
  t_user = prev_user_;
}

void progress(uint32_t done, uint32_t total) {
  if (t_fn && t_fn(t_user, done, total) != 0) fail(Status::Cancelled, "cancelled by the progress callback");
}

}  // namespace lmc
