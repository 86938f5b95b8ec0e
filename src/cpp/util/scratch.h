// lmcodec util: scratch buffers for the kernels' drivers.
//
// There is one process-wide cache of idle storage, util/buffers.h's: the
// activation buffers (Buf<T>) and the drivers' scratch (padded inputs,
// packed tiles) come from it and go back to it, under its one bound on what
// is kept idle (so a huge image's scratch is freed, not kept for the life of
// the process). A Lease takes a page-aligned block for a scope:
//
//   Lease padded(cache, bytes);      // uninitialised, >= bytes
//   float* p = padded.as<float>();
//
// ScratchCache is the handle the drivers pass around (dsp/conv_run.h,
// scratch_cache()); it holds nothing itself.
#pragma once

#include <cstddef>

#include "util/buffers.h"

namespace lmc {

struct ScratchCache {
  buffers::Block take(size_t bytes) { return buffers::take(bytes); }
  void give(buffers::Block b) noexcept { buffers::give(std::move(b)); }
};

class Lease {
 public:
  Lease(ScratchCache* c, size_t bytes) : c_(c), b_(c->take(bytes)) {}
  ~Lease() { c_->give(std::move(b_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  template <class T>
  T* as() const {
    return reinterpret_cast<T*>(b_.p.get());
  }

 private:
  ScratchCache* c_;
  buffers::Block b_;
};

}  // namespace lmc
