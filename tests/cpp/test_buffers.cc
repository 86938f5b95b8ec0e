// Unit tests for the reusable activation buffers (util/buffers.h) and the
// opt-in stage profiler (util/profile.h).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "check.h"
#include "util/buffers.h"
#include "util/profile.h"

using lmc::Buf;
namespace buffers = lmc::buffers;

namespace {

void test_reuse_and_contents() {
  buffers::release_all();
  CHECK_EQ(buffers::idle_bytes(), size_t(0));
  const float* first = nullptr;
  {
    Buf<float> a;
    a.resize(1000);
    CHECK(a.size() == 1000 && a.capacity() >= 1000);
    for (size_t i = 0; i < a.size(); ++i) a[i] = float(i);
    first = a.data();
    a.resize(10);  // shrinking keeps the storage and the contents
    CHECK(a.data() == first && a[9] == 9.0f);
  }
  CHECK(buffers::idle_bytes() >= 1000 * sizeof(float));
  {
    Buf<int32_t> b;  // a smaller request reuses the idle block
    b.resize(500);
    CHECK(static_cast<const void*>(b.data()) == static_cast<const void*>(first));
    CHECK_EQ(buffers::idle_bytes(), size_t(0));
    Buf<int32_t> c = std::move(b);
    CHECK(b.size() == 0 && b.data() == nullptr && c.size() == 500);
  }
  buffers::release_all();
  CHECK_EQ(buffers::idle_bytes(), size_t(0));
}

// Every block is page-aligned, whatever was allocated before (the layout of
// tensors relative to cache lines and pages must not depend on it).
void test_alignment() {
  buffers::release_all();
  std::vector<std::vector<char>> noise;
  for (size_t n : {size_t(17), size_t(5000), size_t(1) << 20, size_t(3) << 20, size_t(123457)}) {
    noise.emplace_back(n);  // the allocator's state before each request differs
    Buf<float> a;
    a.resize(n);
    CHECK(reinterpret_cast<uintptr_t>(a.data()) % buffers::kAlign == 0);
  }
  buffers::release_all();
}

void test_no_oversized_reuse_and_growth_frees() {
  buffers::release_all();
  const void* big_block = nullptr;
  {
    Buf<uint8_t> big;
    big.resize(size_t(4) << 20);
    big_block = big.data();
  }
  CHECK(buffers::idle_bytes() >= (size_t(4) << 20));
  {
    Buf<uint8_t> small;  // a 4 MiB idle block is not handed out for 1 MiB
    small.resize(size_t(1) << 20);
    CHECK(static_cast<const void*>(small.data()) != big_block);
    const size_t idle = buffers::idle_bytes();
    small.resize(size_t(2) << 20);  // growing frees the old block: nothing new goes idle
    CHECK_EQ(buffers::idle_bytes(), idle);
    small.resize(size_t(4) << 20);  // and the matching idle block is reused
    CHECK(static_cast<const void*>(small.data()) == big_block);
    const size_t idle2 = buffers::idle_bytes();
    small.release();  // freed, not cached
    CHECK_EQ(buffers::idle_bytes(), idle2);
    CHECK(small.data() == nullptr && small.size() == 0);
  }
  buffers::release_all();
}

void test_idle_bound() {
  buffers::release_all();
  {
    // blocks that may be kept, 1.5x the bound in total
    const size_t blk = std::min(buffers::kKeepBytes / 4, buffers::kMaxKeptBlock);
    std::vector<Buf<uint8_t>> v((buffers::kKeepBytes * 3 / 2 + blk - 1) / blk);
    for (auto& b : v) {
      b.resize(blk);
      std::memset(b.data(), 7, blk);
    }
    Buf<uint8_t> huge;
    huge.resize(buffers::kMaxKeptBlock + 1);  // never kept (and mapped from the system: kMapBytes)
    std::memset(huge.data(), 1, huge.size());
  }
  CHECK(buffers::idle_bytes() <= buffers::kKeepBytes);
  CHECK(buffers::idle_bytes() >= buffers::kKeepBytes / 2);
  buffers::release_all();
}

void test_threads() {
  buffers::release_all();
  std::vector<std::thread> ts;
  std::vector<int> ok(4, 1);
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([t, &ok] {
      for (int i = 0; i < 200; ++i) {
        Buf<int32_t> b;
        b.resize(size_t(1 + (i * 37 + t) % 5000));
        for (size_t j = 0; j < b.size(); ++j) b[j] = t;
        for (size_t j = 0; j < b.size(); ++j)
          if (b[j] != t) ok[size_t(t)] = 0;  // another thread wrote into our block
      }
    });
  for (auto& th : ts) th.join();
  for (int v : ok) CHECK_EQ(v, 1);
  CHECK(buffers::idle_bytes() <= buffers::kKeepBytes);
  buffers::release_all();
}

void test_profile() {
  namespace profile = lmc::profile;
  profile::take();
  profile::enable(false);
  { profile::Scope s(true, [] { return std::string("off"); }, 5); }
  CHECK(profile::take().empty());
  profile::enable(true);
  {
    profile::Scope a(true, [] { return std::string("b stage"); }, 10);
    profile::Scope skipped(false, [] { return std::string("never"); });
  }
  { profile::Scope a(true, [] { return std::string("a stage"); }, 10); }
  {
    profile::Scope a(true, [] { return std::string("b stage"); }, 5);
    a.stop();
    a.stop();  // idempotent
  }
  profile::enable(false);
  std::vector<profile::Entry> e = profile::take();
  CHECK_EQ(e.size(), size_t(2));
  if (e.size() == 2) {
    CHECK(e[0].name == "b stage" && e[0].calls == 2 && e[0].macs == 15 && e[0].seconds >= 0);
    CHECK(e[1].name == "a stage" && e[1].calls == 1);
  }
  CHECK(profile::take().empty());
}

}  // namespace

int main() {
  test_reuse_and_contents();
  test_alignment();
  test_no_oversized_reuse_and_growth_frees();
  test_idle_bound();
  test_threads();
  test_profile();
  return check_summary();
}
