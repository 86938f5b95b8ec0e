// Issue 27: thread pools under resource limits, incremental rANS decoding
// and the minimum-bits bound.
//
// The pool test runs in a forked child with a low address-space limit (each
// thread's stack is 8 MiB of address space, so most of 1024 cannot start)
// and an alarm: a hang (the old pthread_cond_destroy deadlock) kills the
// child with SIGALRM and fails the test.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "core/rans.h"
#include "util/threadpool.h"

using lmc::Status;

namespace {

// kind 0: RLIMIT_AS = limit bytes; kind 1: RLIMIT_NPROC = limit processes
// (root is not bound by it, so a root child first becomes `nobody`).
int run_pool_under_limit(int kind, rlim_t limit) {
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(60);
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = limit;
    if (kind == 1 && getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(4);
    if (setrlimit(kind == 0 ? RLIMIT_AS : RLIMIT_NPROC, &rl) != 0) _exit(3);
    int bad = 0;
    for (int round = 0; round < 3; ++round) {
      lmc::dsp::PoolLease lease(1024);
      lmc::dsp::ThreadPool* pool = lease.get();
      if (pool->size() < 1 || pool->size() > 1024 || pool->requested() != 1024) bad = 1;
      std::vector<std::atomic<int>> hits(5000);
      pool->parallel_for(5000, [&](int64_t t, int thread) {
        if (thread < 0 || thread >= pool->size()) bad = 1;
        hits[size_t(t)].fetch_add(1);
      });
      for (auto& h : hits)
        if (h.load() != 1) bad = 1;
    }
    {
      lmc::dsp::ThreadPool own(1024);  // constructed and destroyed directly
      if (own.size() < 1) bad = 1;
    }
    _exit(bad ? 2 : 0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  if (WIFSIGNALED(status)) return 100 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

using Tables = lmc::OwnedTables;

Tables make_tables() {
  std::vector<std::vector<uint32_t>> cdfs;
  for (int t = 0; t < 3; ++t) {
    std::vector<double> pmf(33);
    for (int i = 0; i < 33; ++i) pmf[size_t(i)] = std::exp(-std::abs(i - 16) / (0.3 + 2.0 * t));
    double s = 0;
    for (double v : pmf) s += v;
    for (double& v : pmf) v = v / s * 0.999;
    cdfs.push_back(lmc::pmf_to_quantized_cdf(pmf.data(), pmf.size()));
  }
  return lmc::cdf_tables_from_cdfs(cdfs, {-16, -16, -16});
}

}  // namespace

int main() {
  // 1. Pools under a 1 GiB address-space limit, and under a process limit
  // of 4: shrink, never hang.
  // (Not under ASan: its shadow memory alone is terabytes of address space.)
#if defined(__SANITIZE_ADDRESS__)
  const bool asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  const bool asan = true;
#else
  const bool asan = false;
#endif
#else
  const bool asan = false;
#endif
  if (!asan) {
    const int r = run_pool_under_limit(0, rlim_t(1) << 30);
    if (r != 0) std::fprintf(stderr, "pool child under RLIMIT_AS returned %d (>100: killed by signal %d)\n", r, r - 100);
    CHECK_EQ(r, 0);
  }
  const int rp = run_pool_under_limit(1, 4);
  if (rp != 0) std::fprintf(stderr, "pool child under RLIMIT_NPROC returned %d (>100: killed by signal %d)\n", rp, rp - 100);
  CHECK(rp == 0 || rp == 4);  // 4: could not drop root (no such user): not tested

  // 2. RansDecoder in pieces of every size == rans_decode, same errors.
  const Tables tb = make_tables();
  std::mt19937 rng(5);
  for (size_t n : {size_t(1), size_t(3), size_t(4), size_t(5), size_t(257), size_t(5000)}) {
    std::vector<int32_t> sym(n), idx(n);
    for (size_t i = 0; i < n; ++i) {
      idx[i] = int32_t(rng() % 3);
      sym[i] = int32_t(rng() % 9) - 4;
      if (i % 97 == 5) sym[i] = 1 << 20;  // an escape
    }
    std::vector<uint8_t> s;
    lmc::rans_encode(sym.data(), idx.data(), n, tb.view(), s);
    for (size_t piece : {size_t(1), size_t(2), size_t(3), size_t(7), size_t(64), n}) {
      lmc::RansDecoder dec(s.data(), s.size(), n, tb.view());
      std::vector<int32_t> out(n);
      for (size_t off = 0; off < n; off += piece) {
        const size_t m = std::min(piece, n - off);
        dec.decode(idx.data() + off, m, out.data() + off);
      }
      dec.finish();
      CHECK(out == sym);
    }
    // too few symbols decoded, too many asked, truncated stream
    {
      lmc::RansDecoder dec(s.data(), s.size(), n, tb.view());
      std::vector<int32_t> out(n);
      if (n > 1) {
        dec.decode(idx.data(), n - 1, out.data());
        CHECK_THROWS(dec.finish(), Status::CorruptStream);
      }
      lmc::RansDecoder dec2(s.data(), s.size(), n, tb.view());
      std::vector<int32_t> big(n + 1), bidx(n + 1, 0);
      CHECK_THROWS(dec2.decode(bidx.data(), n + 1, big.data()), Status::InvalidArgument);
      if (s.size() > 8 * std::min<size_t>(n, 4) + 4) {
        lmc::RansDecoder dec3(s.data(), s.size() - 4, n, tb.view());
        CHECK_THROWS({
          dec3.decode(idx.data(), n, out.data());
          dec3.finish();
        }, Status::CorruptStream);
      }
      std::vector<int32_t> oob(idx);
      oob[n / 2] = 3;
      lmc::RansDecoder dec4(s.data(), s.size(), n, tb.view());
      CHECK_THROWS(dec4.decode(oob.data(), n, out.data()), Status::InvalidArgument);
    }
    // the minimum-bits bound never refuses a stream the encoder made
    double bits = 0;
    for (size_t i = 0; i < n; ++i)
      bits += lmc::rans_min_symbol_bits(lmc::rans_max_frequency(tb.view(), size_t(idx[i])));
    CHECK(bits <= lmc::rans_capacity_bits(s.size()));
  }
  CHECK_THROWS(lmc::RansDecoder(nullptr, 0, 5, tb.view()), Status::CorruptStream);
  {
    lmc::RansDecoder empty(nullptr, 0, 0, tb.view());
    empty.finish();
  }
  CHECK_THROWS(lmc::RansDecoder(reinterpret_cast<const uint8_t*>("x"), 1, 0, tb.view()), Status::CorruptStream);

  // 3. The bound is tight enough to matter and sound at the extremes.
  CHECK(lmc::rans_min_symbol_bits(1) > 15.9);
  CHECK(lmc::rans_min_symbol_bits(32768) > 0.99 && lmc::rans_min_symbol_bits(32768) <= 1.0);
  CHECK(lmc::rans_min_symbol_bits(65535) == 0.0);
  {
    // a worst case for the bound: many symbols of the most likely value of a
    // very skewed table still fit the capacity of what the encoder wrote
    std::vector<double> pmf(3, 1e-7);
    pmf[1] = 1.0 - 3e-7;
    std::vector<uint32_t> cdf = lmc::pmf_to_quantized_cdf(pmf.data(), pmf.size());
    const lmc::OwnedTables tables = lmc::cdf_tables_from_cdfs({cdf}, {0});
    const lmc::CdfTables t = tables.view();
    const size_t n = 2000000;
    std::vector<int32_t> sym(n, 1), idx(n, 0);
    std::vector<uint8_t> s;
    lmc::rans_encode(sym.data(), idx.data(), n, t, s);
    const double need = double(n) * lmc::rans_min_symbol_bits(lmc::rans_max_frequency(t, 0));
    CHECK(need <= lmc::rans_capacity_bits(s.size()));
  }
  return check_summary();
}
