// lmcodec core: reusable, uninitialised activation buffers.
//
// A decode of a Kodak image writes ~50 MB of activations. Fresh std::vectors
// would zero-fill them and, being large, come straight from mmap, so every
// call paid for page faults and memset (~8 % of a decode). Buf<T> instead
// takes its storage from a small process-wide cache and gives it back when
// destroyed; resize() never initialises. The cache keeps at most kKeepBytes
// of idle storage (so a process that once decoded a huge image does not keep
// it), and is thread-safe: concurrent calls get different blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

namespace lmc {
namespace buffers {

constexpr size_t kKeepBytes = size_t(96) << 20;  // idle storage kept for reuse

struct Block {
  std::unique_ptr<unsigned char[]> p;
  size_t bytes = 0;
};

// A block of at least `bytes` (reused when possible); throws std::bad_alloc.
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
  void resize(size_t n) {
    if (n > capacity()) {
      reset();
      b_ = buffers::take(n * sizeof(T));
    }
    n_ = n;
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
