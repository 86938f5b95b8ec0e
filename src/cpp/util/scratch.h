// lmcodec util: reusable page-aligned scratch buffers.
// AlignedBuf (one grown-on-demand buffer), ScratchCache (a few of them,
// thread-safe: concurrent users get different buffers) and Lease (takes one
// for a scope). The dsp drivers keep one process-wide cache
// (dsp/conv_run.h, scratch_cache()); release_scratch_buffers() empties it.
// It is kept apart from util/buffers' cache on purpose: scratch is leased
// and returned many times within one layer, and a grow-on-demand buffer that
// any smaller lease may reuse is what keeps those leases free of page faults
// (sharing buffers' bounded, size-matched cache measured 4-6 % slower on
// Kodak). Buffers above kMaxKeptScratch are freed when given back, so a huge
// image's scratch is not kept for the life of the process.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

namespace lmc {

class AlignedBuf {
 public:
  AlignedBuf() = default;
  ~AlignedBuf() { release(); }
  AlignedBuf(const AlignedBuf&) = delete;
  AlignedBuf& operator=(const AlignedBuf&) = delete;
  void* data() const { return p_; }
  size_t bytes() const { return bytes_; }
  void ensure(size_t bytes) {  // throws std::bad_alloc
    if (bytes <= bytes_) return;
    release();
    const size_t rounded = (bytes + 63) / 64 * 64;
    // page-aligned, like the activation buffers (util/buffers.h): the
    // scratch layout relative to pages must not depend on the allocator
    p_ = ::operator new(rounded, std::align_val_t(4096));
    bytes_ = rounded;
  }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;

  void release() {
    if (p_) ::operator delete(p_, std::align_val_t(4096));
    p_ = nullptr;
    bytes_ = 0;
  }
};

// A few reusable buffers, so that repeated runs neither allocate nor fault in
// fresh pages. Thread-safe: concurrent runs get different buffers.
struct ScratchCache {
  std::mutex mu;
  std::vector<std::unique_ptr<AlignedBuf>> free_list;
  static constexpr size_t kKeep = 8;
  static constexpr size_t kMaxKeptScratch = size_t(32) << 20;
  ScratchCache() { free_list.reserve(kKeep); }  // give() never allocates

  std::unique_ptr<AlignedBuf> take(size_t bytes) {
    std::unique_ptr<AlignedBuf> b;
    {
      std::lock_guard<std::mutex> lk(mu);
      // Prefer the smallest buffer that is large enough, else the largest.
      int best = -1;
      for (int i = 0; i < (int)free_list.size(); ++i) {
        const size_t sz = free_list[i]->bytes();
        if (best < 0) {
          best = i;
          continue;
        }
        const size_t bsz = free_list[best]->bytes();
        const bool fits = sz >= bytes, bfits = bsz >= bytes;
        if ((fits && (!bfits || sz < bsz)) || (!fits && !bfits && sz > bsz)) best = i;
      }
      if (best >= 0) {
        b = std::move(free_list[best]);
        free_list.erase(free_list.begin() + best);
      }
    }
    if (!b) b.reset(new AlignedBuf());
    b->ensure(bytes);
    return b;
  }
  void give(std::unique_ptr<AlignedBuf> b) {
    if (b->bytes() > kMaxKeptScratch) return;  // freed here, outside the lock
    std::lock_guard<std::mutex> lk(mu);
    if (free_list.size() < kKeep) free_list.push_back(std::move(b));
  }
};

class Lease {
 public:
  Lease(ScratchCache* c, size_t bytes) : c_(c), b_(c->take(bytes)) {}
  ~Lease() { c_->give(std::move(b_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(b_->data());
  }

 private:
  ScratchCache* c_;
  std::unique_ptr<AlignedBuf> b_;
};

}  // namespace lmc
