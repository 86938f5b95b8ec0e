#include "util/buffers.h"

#include <mutex>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define LMC_HAVE_MMAP 1
#endif

namespace lmc {
namespace buffers {
namespace {

struct Cache {
  std::mutex mu;
  std::vector<Block> idle;
  size_t idle_bytes = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: usable from static destructors
  return *c;
}

}  // namespace

Block take(size_t bytes) {
  if (bytes == 0) bytes = 1;
  // the smallest idle block that fits, and not much larger than asked for
  const size_t most = bytes + bytes / 4 + 65536;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lk(c.mu);
    int best = -1;
    for (int i = 0; i < int(c.idle.size()); ++i) {
      const size_t sz = c.idle[size_t(i)].bytes;
      if (sz >= bytes && sz <= most && (best < 0 || sz < c.idle[size_t(best)].bytes)) best = i;
    }
    if (best >= 0) {
      Block b = std::move(c.idle[size_t(best)]);
      c.idle.erase(c.idle.begin() + best);
      c.idle_bytes -= b.bytes;
      return b;
    }
  }
  Block b;
  const size_t rounded = (bytes + 4095) / 4096 * 4096;
#ifdef LMC_HAVE_MMAP
  if (rounded >= kMapBytes) {
    void* m = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    b.p = std::unique_ptr<unsigned char[], BlockFree>(static_cast<unsigned char*>(m), BlockFree{rounded});
    b.bytes = rounded;
    return b;
  }
#endif
  // default-initialised: no zero fill
  b.p.reset(static_cast<unsigned char*>(::operator new[](rounded, std::align_val_t(kAlign))));
  b.bytes = rounded;
  return b;
}

}  // namespace buffers

void buffers::BlockFree::operator()(unsigned char* p) const noexcept {
#ifdef LMC_HAVE_MMAP
  if (mapped) {
    munmap(p, mapped);
    return;
  }
#endif
  ::operator delete[](p, std::align_val_t(kAlign));
}

namespace buffers {

void give(Block b) noexcept {
  if (!b.p) return;
  Cache& c = cache();
  std::vector<Block> drop;  // freed outside the lock
  try {
    std::lock_guard<std::mutex> lk(c.mu);
    if (b.bytes > kMaxKeptBlock) return;  // b is freed on return
    // make room by dropping the smallest idle blocks (large ones are the costly ones to fault in)
    while (c.idle_bytes + b.bytes > kKeepBytes && !c.idle.empty()) {
      size_t smallest = 0;
      for (size_t i = 1; i < c.idle.size(); ++i)
        if (c.idle[i].bytes < c.idle[smallest].bytes) smallest = i;
      c.idle_bytes -= c.idle[smallest].bytes;
      drop.push_back(std::move(c.idle[smallest]));
      c.idle.erase(c.idle.begin() + long(smallest));
    }
    c.idle_bytes += b.bytes;
    c.idle.push_back(std::move(b));
  } catch (...) {
    // push_back could not allocate: just free b
  }
}

void release_all() noexcept {
  Cache& c = cache();
  std::vector<Block> drop;
  std::lock_guard<std::mutex> lk(c.mu);
  drop.swap(c.idle);
  c.idle_bytes = 0;
}

size_t idle_bytes() noexcept {
  Cache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  return c.idle_bytes;
}

}  // namespace buffers
}  // namespace lmc
