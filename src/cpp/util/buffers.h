// lmcodec util: reusable, uninitialised activation buffers.
//
// A decode of a Kodak image writes ~50 MB of activations. Fresh std::vectors
// would zero-fill them and, being large, come straight from mmap, so every
// call paid for page faults and memset (~8 % of a decode). Buf<T> instead
// takes its storage from a small process-wide cache and gives it back when
// destroyed; resize() never initialises. The cache keeps at most kKeepBytes
// of idle storage, in blocks of at most kMaxKeptBlock (the strips of huge
// images are freed as plain vectors would be, and a process that once decoded
// one does not keep the memory), and is thread-safe: concurrent calls get
// different blocks. Blocks too large to be kept are mapped from the system
// and unmapped when freed (kMapBytes), so the peak and what a process keeps
// after a huge image do not depend on malloc's arenas. Peak memory of one
// call stays what plain vectors would need (benchmarks/memory.py). The
// kernels' scratch has its own grow-on-demand cache (util/scratch.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>

namespace lmc {
namespace buffers {

constexpr size_t kKeepBytes = size_t(96) << 20;     // idle storage kept for reuse
constexpr size_t kMaxKeptBlock = size_t(32) << 20;  // larger blocks are freed at once

// Blocks are aligned to kAlign bytes, so that where a tensor's rows fall
// relative to cache lines and pages does not depend on the allocator's state
// (a plain new[] gives 16 bytes, and a different address modulo 4 KiB
// depending on what the process allocated and freed before).
constexpr size_t kAlign = 4096;
// Blocks of at least this size (the ones the cache never keeps) are mapped
// from the system directly (mmap on POSIX) and unmapped when freed, never
// taken from malloc's heap: glibc raises its mmap threshold to the size of
// each large block freed (up to 32 MiB) and then serves such sizes from its
// arenas, which keep the memory after free and fragment per thread, so a
// 24 MP decode peaked anywhere from 566 to 710 MiB run to run (537 in every
// run with this). Smaller blocks stay on the heap: mapping them too cost
// 2-3 % on Kodak (fresh pages fault in on every miss of the cache).
constexpr size_t kMapBytes = kMaxKeptBlock;
struct BlockFree {
  size_t mapped = 0;  // bytes mapped (0: from operator new[])
  void operator()(unsigned char* p) const noexcept;
};
struct Block {
  std::unique_ptr<unsigned char[], BlockFree> p;
  size_t bytes = 0;
};

// A block of at least `bytes`: an idle one when one fits without wasting more
// than a quarter of it (a much larger block would leave the next, larger
// request to a fresh allocation while it sits half used), else a new one;
// throws std::bad_alloc.
Block take(size_t bytes);
// Returns a block to the cache (freed when the cache is full).
void give(Block b) noexcept;
// Frees every idle block.
void release_all() noexcept;
// Idle bytes held by the cache (for tests).
size_t idle_bytes() noexcept;

}  // namespace buffers

template <class T>
class Buf {
  static_assert(std::is_trivially_copyable<T>::value && std::is_trivially_destructible<T>::value,
                "Buf holds plain numbers");

 public:
  Buf() = default;
  ~Buf() { reset(); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  Buf(Buf&& o) noexcept : b_(std::move(o.b_)), n_(o.n_) { o.n_ = 0; o.b_.bytes = 0; }
  Buf& operator=(Buf&& o) noexcept {
    if (this != &o) {
      reset();
      b_ = std::move(o.b_);
      n_ = o.n_;
      o.n_ = 0;
      o.b_.bytes = 0;
    }
    return *this;
  }

  // n elements; contents are unspecified (kept only when n <= capacity()).
  // Growing frees the old block instead of caching it: it is too small for
  // this buffer's next use, and an idle block would only add to the peak.
  void resize(size_t n) {
    if (n > capacity()) {
      b_ = buffers::Block();
      n_ = 0;
      b_ = buffers::take(n * sizeof(T));
    }
    n_ = n;
  }
  // Frees the storage now, without caching it (for buffers whose size will
  // not be asked for again in this call).
  void release() noexcept {
    b_ = buffers::Block();
    n_ = 0;
  }
  void reset() noexcept {
    if (b_.p) buffers::give(std::move(b_));
    b_ = buffers::Block();
    n_ = 0;
  }
  size_t size() const { return n_; }
  size_t capacity() const { return b_.bytes / sizeof(T); }
  T* data() { return reinterpret_cast<T*>(b_.p.get()); }
  const T* data() const { return reinterpret_cast<const T*>(b_.p.get()); }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }

 private:
  buffers::Block b_;
  size_t n_ = 0;
};

}  // namespace lmc
