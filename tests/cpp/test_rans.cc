// Unit tests for the rANS entropy coder (core/rans.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "check.h"
#include "core/rans.h"

using lmc::Status;

namespace {

using Rng = std::mt19937_64;

// A set of tables owned by the test, padded to a common stride (the
// padding is poisoned, so reading past a table's length shows).
struct Tables : lmc::OwnedTables {
  void add(const std::vector<uint32_t>& cdf, int32_t offset) {
    std::vector<std::vector<uint32_t>> rows;
    for (size_t t = 0; t < lengths.size(); ++t)
      rows.emplace_back(cdfs.begin() + t * stride, cdfs.begin() + t * stride + lengths[t]);
    rows.push_back(cdf);
    lengths.push_back(int32_t(cdf.size()));
    offsets.push_back(offset);
    stride = std::max(stride, cdf.size() + 1);  // +1: keep some padding
    cdfs.assign(rows.size() * stride, 0xDEADBEEFu);
    for (size_t t = 0; t < rows.size(); ++t) std::copy(rows[t].begin(), rows[t].end(), cdfs.begin() + t * stride);
  }
  size_t count() const { return lengths.size(); }
  const uint32_t* cdf(size_t t) const { return cdfs.data() + t * stride; }
};

bool is_valid_cdf(const std::vector<uint32_t>& c, size_t n) {
  if (c.size() != n + 2 || c.front() != 0 || c.back() != lmc::kCdfTotal) return false;
  for (size_t i = 1; i < c.size(); ++i)
    if (c[i] <= c[i - 1]) return false;
  return true;
}

std::vector<double> random_pmf(Rng& rng, size_t n) {
  std::vector<double> p(n);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const int kind = int(rng() % 4);
  double s = 0;
  for (size_t i = 0; i < n; ++i) {
    double v = u(rng);
    if (kind == 1) v = v * v * v * v;                          // peaky
    if (kind == 2 && rng() % 3 == 0) v = 0;                     // zeros
    if (kind == 3) v = std::exp(-0.5 * std::pow((double(i) - n / 2.0) / (1 + n / 8.0), 2));  // gaussian
    p[i] = v;
    s += v;
  }
  if (s > 0)
    for (auto& v : p) v /= s;
  if (rng() % 3 == 0)
    for (auto& v : p) v *= 0.9;  // leave mass for the escape
  return p;
}

Tables random_tables(Rng& rng, size_t count, size_t max_n) {
  Tables tb;
  for (size_t t = 0; t < count; ++t) {
    const size_t n = 1 + rng() % max_n;
    auto pmf = random_pmf(rng, n);
    const int32_t offset = int32_t(int64_t(rng() % 2001) - 1000) - int32_t(n / 2);
    tb.add(lmc::pmf_to_quantized_cdf(pmf.data(), n), offset);
  }
  return tb;
}

// Samples a value from table t (escape -> some out-of-range value).
int32_t sample(Rng& rng, const Tables& tb, size_t t) {
  const uint32_t* c = tb.cdf(t);
  const size_t n = size_t(tb.lengths[t]) - 2;
  const uint32_t u = uint32_t(rng() & 0xFFFF);
  const size_t k = size_t(std::upper_bound(c, c + n + 2, u) - c) - 1;
  const int64_t off = tb.offsets[t];
  if (k < n) return int32_t(off + int64_t(k));
  switch (rng() % 4) {
    case 0: return int32_t(off - 1 - int64_t(rng() % 50));
    case 1: return int32_t(std::min<int64_t>(INT32_MAX, off + int64_t(n) + int64_t(rng() % 50)));
    case 2: return int32_t(uint32_t(rng()));
    default: return (rng() & 1) ? INT32_MIN : INT32_MAX;
  }
}

std::vector<uint8_t> encode(const std::vector<int32_t>& sym, const std::vector<int32_t>& idx, const Tables& tb) {
  std::vector<uint8_t> out;
  lmc::rans_encode(sym.data(), idx.data(), sym.size(), tb.view(), out);
  return out;
}

std::vector<int32_t> decode(const std::vector<uint8_t>& s, const std::vector<int32_t>& idx, const Tables& tb) {
  std::vector<int32_t> out(idx.size() + 1, 0x5A5A5A5A);
  lmc::rans_decode(s.data(), s.size(), idx.data(), idx.size(), tb.view(), out.data());
  CHECK_EQ(out.back(), 0x5A5A5A5A);  // no write past n
  out.pop_back();
  return out;
}

bool roundtrip(const std::vector<int32_t>& sym, const std::vector<int32_t>& idx, const Tables& tb) {
  auto s = encode(sym, idx, tb);
  return decode(s, idx, tb) == sym;
}

// ---------------------------------------------------------------- tests ---

void test_cdf_builder() {
  Rng rng(1);
  // Random PMFs of many sizes.
  for (size_t n : {1u, 2u, 3u, 7u, 100u, 1000u, 30000u, 65534u}) {
    for (int r = 0; r < 3; ++r) {
      auto p = random_pmf(rng, n);
      auto c = lmc::pmf_to_quantized_cdf(p.data(), n);
      CHECK(is_valid_cdf(c, n));
      CHECK(c == lmc::pmf_to_quantized_cdf(p.data(), n));  // deterministic
    }
  }
  // Proportionality for a well-conditioned PMF.
  {
    std::vector<double> p = {0.5, 0.25, 0.125, 0.125};
    auto c = lmc::pmf_to_quantized_cdf(p.data(), p.size());
    CHECK(is_valid_cdf(c, 4));
    CHECK(c[1] >= 32760 && c[1] <= 32768);
    CHECK(c[5] - c[4] >= 1 && c[5] - c[4] <= 4);  // escape: tiny
  }
  // Sum < 1: escape gets the missing mass.
  {
    std::vector<double> p = {0.25, 0.25};
    auto c = lmc::pmf_to_quantized_cdf(p.data(), 2);
    CHECK(is_valid_cdf(c, 2));
    CHECK(c[3] - c[2] == 32768);
  }
  // Sum > 1: normalised.
  {
    std::vector<double> p = {3.0, 1.0};
    auto c = lmc::pmf_to_quantized_cdf(p.data(), 2);
    CHECK(is_valid_cdf(c, 2));
    CHECK(c[1] >= 49140 && c[1] <= 49152);
  }
  // One symbol, zeros, non-finite, negative, huge.
  {
    double one = 1.0;
    auto c = lmc::pmf_to_quantized_cdf(&one, 1);
    CHECK(is_valid_cdf(c, 1));
    CHECK(c[1] == lmc::kCdfTotal - 1);
    std::vector<double> z(10, 0.0);
    c = lmc::pmf_to_quantized_cdf(z.data(), z.size());
    CHECK(is_valid_cdf(c, 10));
    const double inf = std::numeric_limits<double>::infinity();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> bad = {nan, inf, -inf, -1.0, 0.5, 1e-300, 4.9e-324, 0.25};
    c = lmc::pmf_to_quantized_cdf(bad.data(), bad.size());
    CHECK(is_valid_cdf(c, bad.size()));
    CHECK(c[5] - c[4] >= 32760 && c[5] - c[4] <= 32768);
    std::vector<double> huge = {1e308, 1e308, 1e308, 0.0};
    c = lmc::pmf_to_quantized_cdf(huge.data(), huge.size());
    CHECK(is_valid_cdf(c, huge.size()));
    std::vector<double> allnan(5, nan);
    c = lmc::pmf_to_quantized_cdf(allnan.data(), allnan.size());
    CHECK(is_valid_cdf(c, allnan.size()));
  }
  // Largest table: every symbol needs a count; a peaked PMF forces a big fix-up.
  {
    const size_t n = lmc::kMaxCdfLength - 2;
    std::vector<double> p(n, 0.5 / double(n));
    p[17] += 0.5;
    auto c = lmc::pmf_to_quantized_cdf(p.data(), n);
    CHECK(is_valid_cdf(c, n));
    std::vector<double> u(n, 1.0 / double(n));
    c = lmc::pmf_to_quantized_cdf(u.data(), n);
    CHECK(is_valid_cdf(c, n));
  }
  // Rejections.
  std::vector<double> big(lmc::kMaxCdfLength, 1.0);
  CHECK_THROWS(lmc::pmf_to_quantized_cdf(big.data(), big.size() - 1), Status::InvalidArgument);
  CHECK_THROWS(lmc::pmf_to_quantized_cdf(big.data(), big.size()), Status::InvalidArgument);
  CHECK_THROWS(lmc::pmf_to_quantized_cdf(big.data(), 0), Status::InvalidArgument);
  CHECK_THROWS(lmc::pmf_to_quantized_cdf(nullptr, 3), Status::InvalidArgument);
}

void test_validate_tables() {
  Tables tb;
  tb.add({0, 100, 65536}, 0);
  tb.add({0, 1, 2, 65536}, -1);
  lmc::validate_tables(tb.view());
  lmc::CdfTables empty;
  lmc::validate_tables(empty);  // zero tables are fine

  auto expect_bad = [&](auto mutate) {
    Tables b = tb;
    lmc::CdfTables v = b.view();
    mutate(b, v);
    CHECK_THROWS(lmc::validate_tables(v), Status::InvalidArgument);
  };
  expect_bad([](Tables& b, lmc::CdfTables&) { b.cdfs[0] = 1; });
  expect_bad([](Tables& b, lmc::CdfTables&) { b.cdfs[2] = 65535; });
  expect_bad([](Tables& b, lmc::CdfTables&) { b.cdfs[b.stride + 2] = 1; });  // not increasing
  expect_bad([](Tables& b, lmc::CdfTables&) { b.lengths[0] = 2; });
  expect_bad([](Tables& b, lmc::CdfTables&) { b.lengths[1] = int32_t(b.stride) + 1; });
  expect_bad([](Tables& b, lmc::CdfTables&) { b.lengths[1] = -5; });
  expect_bad([](Tables&, lmc::CdfTables& v) { v.cdfs = nullptr; });
  expect_bad([](Tables&, lmc::CdfTables& v) { v.offsets = nullptr; });
  expect_bad([](Tables&, lmc::CdfTables& v) { v.stride = 2; });
}

void test_empty() {
  Rng rng(2);
  Tables tb = random_tables(rng, 3, 10);
  std::vector<int32_t> none;
  auto s = encode(none, none, tb);
  CHECK(s.empty());
  CHECK(decode(s, none, tb).empty());
  std::vector<uint8_t> junk = {1, 2, 3};
  CHECK_THROWS(decode(junk, none, tb), Status::CorruptStream);
  // Zero-length data with n > 0.
  std::vector<int32_t> idx = {0};
  CHECK_THROWS(decode(s, idx, tb), Status::CorruptStream);
  std::vector<int32_t> out(1);
  CHECK_THROWS(lmc::rans_decode(nullptr, 0, idx.data(), 1, tb.view(), out.data()), Status::CorruptStream);
  // Empty input with no tables at all.
  lmc::CdfTables zero;
  std::vector<uint8_t> o;
  lmc::rans_encode(nullptr, nullptr, 0, zero, o);
  CHECK(o.empty());
  lmc::rans_decode(nullptr, 0, nullptr, 0, zero, nullptr);
  // encode appends.
  std::vector<int32_t> sym = {5};
  std::vector<uint8_t> pre = {9, 9};
  lmc::rans_encode(sym.data(), idx.data(), 1, tb.view(), pre);
  std::vector<uint8_t> alone = encode(sym, idx, tb);
  CHECK(pre.size() == 2 + alone.size());
  CHECK(std::equal(alone.begin(), alone.end(), pre.begin() + 2));
}

void test_roundtrip_random() {
  Rng rng(3);
  const size_t lengths[] = {1, 2, 3, 4, 5, 17, 100, 1000, 10000, 100000};
  for (size_t len : lengths) {
    for (int rep = 0; rep < (len > 10000 ? 2 : 6); ++rep) {
      const size_t count = 1 + rng() % 40;
      Tables tb = random_tables(rng, count, rep % 2 ? 8 : 600);
      std::vector<int32_t> sym(len), idx(len);
      for (size_t i = 0; i < len; ++i) {
        idx[i] = int32_t(rng() % count);
        sym[i] = sample(rng, tb, size_t(idx[i]));
      }
      auto s = encode(sym, idx, tb);
      CHECK(s.size() >= 8);
      CHECK(decode(s, idx, tb) == sym);
    }
  }
}

void test_extremes() {
  const int32_t kMin = INT32_MIN, kMax = INT32_MAX;
  std::vector<int32_t> vals = {kMin, kMin + 1, kMax, kMax - 1, -kMax, 0, -1, 1, 65535, -65536, 1 << 16, 1 << 30};
  for (int32_t off : {kMin, kMin + 1, -3, 0, kMax - 2, kMax - 1, kMax}) {
    for (size_t n : {1u, 2u, 5u, 300u}) {
      std::vector<double> pmf(n, 1.0 / double(n + 1));
      Tables tb;
      tb.add(lmc::pmf_to_quantized_cdf(pmf.data(), n), off);
      std::vector<int32_t> sym = vals;
      for (size_t k = 0; k < n && k < 10; ++k)
        if (int64_t(off) + int64_t(k) <= kMax) sym.push_back(int32_t(int64_t(off) + int64_t(k)));
      sym.push_back(int32_t(std::max<int64_t>(kMin, int64_t(off) - 1)));
      sym.push_back(int32_t(std::min<int64_t>(kMax, int64_t(off) + int64_t(n))));
      std::vector<int32_t> idx(sym.size(), 0);
      CHECK(roundtrip(sym, idx, tb));
      // Each value alone (lane edge cases) and reversed order.
      for (int32_t v : sym) CHECK(roundtrip({v}, {0}, tb));
      std::reverse(sym.begin(), sym.end());
      CHECK(roundtrip(sym, idx, tb));
    }
  }
  // Random int32 bit patterns, all escapes.
  Rng rng(4);
  Tables tb;
  std::vector<double> pmf = {0.3, 0.4, 0.3};
  tb.add(lmc::pmf_to_quantized_cdf(pmf.data(), 3), -1);
  std::vector<int32_t> sym(20000), idx(20000, 0);
  for (auto& v : sym) v = int32_t(uint32_t(rng()));
  CHECK(roundtrip(sym, idx, tb));
}

void test_one_symbol_tables() {
  Tables tb;
  double one = 1.0;
  for (int32_t off : {0, -7, 1000}) tb.add(lmc::pmf_to_quantized_cdf(&one, 1), off);
  Rng rng(5);
  for (size_t len : {1u, 2u, 3u, 1000u, 100000u}) {
    std::vector<int32_t> sym(len), idx(len);
    for (size_t i = 0; i < len; ++i) {
      idx[i] = int32_t(rng() % 3);
      sym[i] = tb.offsets[size_t(idx[i])];
      if (rng() % 1000 == 0) sym[i] += int32_t(rng() % 5) - 2;
    }
    auto s = encode(sym, idx, tb);
    CHECK(decode(s, idx, tb) == sym);
    if (len == 100000) CHECK(s.size() < 2000);  // ~0.0003 bits per certain symbol
  }
}

void test_big_tables() {
  Rng rng(6);
  Tables tb;
  const size_t n = lmc::kMaxCdfLength - 2;
  std::vector<double> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = std::exp(-0.5 * std::pow((double(i) - 30000.0) / 3000.0, 2));
  tb.add(lmc::pmf_to_quantized_cdf(p.data(), n), -30000);
  auto u = random_pmf(rng, n);
  tb.add(lmc::pmf_to_quantized_cdf(u.data(), n), INT32_MAX - 10);  // range leaves int32
  std::vector<int32_t> sym(50000), idx(50000);
  for (size_t i = 0; i < sym.size(); ++i) {
    idx[i] = int32_t(rng() % 2);
    sym[i] = sample(rng, tb, size_t(idx[i]));
  }
  CHECK(roundtrip(sym, idx, tb));
}

void test_bad_indexes() {
  Rng rng(7);
  Tables tb = random_tables(rng, 4, 20);
  std::vector<int32_t> sym(100, 0), idx(100, 1);
  auto s = encode(sym, idx, tb);
  for (int32_t bad : {4, 5, -1, INT32_MIN, INT32_MAX}) {
    auto bidx = idx;
    bidx[57] = bad;
    std::vector<uint8_t> o;
    CHECK_THROWS(lmc::rans_encode(sym.data(), bidx.data(), sym.size(), tb.view(), o), Status::InvalidArgument);
    std::vector<int32_t> out(100);
    CHECK_THROWS(lmc::rans_decode(s.data(), s.size(), bidx.data(), bidx.size(), tb.view(), out.data()),
                 Status::InvalidArgument);
  }
  // Invalid table used by an encode/decode call directly (without validate_tables).
  Tables bad = tb;
  bad.cdfs[bad.stride * 1 + 1] = 0;  // zero frequency
  std::vector<uint8_t> o;
  CHECK_THROWS(lmc::rans_encode(sym.data(), idx.data(), sym.size(), bad.view(), o), Status::InvalidArgument);
  std::vector<int32_t> out(100);
  CHECK_THROWS(lmc::rans_decode(s.data(), s.size(), idx.data(), idx.size(), bad.view(), out.data()),
               Status::InvalidArgument);
}

void test_corruption() {
  Rng rng(8);
  Tables tb = random_tables(rng, 8, 200);
  for (size_t len : {1u, 2u, 3u, 50u, 2000u}) {
    std::vector<int32_t> sym(len), idx(len);
    for (size_t i = 0; i < len; ++i) {
      idx[i] = int32_t(rng() % 8);
      sym[i] = sample(rng, tb, size_t(idx[i]));
    }
    const auto s = encode(sym, idx, tb);
    // Every truncation.
    for (size_t cut = 0; cut < s.size(); ++cut) {
      std::vector<uint8_t> t(s.begin(), s.begin() + cut);
      CHECK_THROWS(decode(t, idx, tb), Status::CorruptStream);
    }
    // Trailing garbage.
    for (size_t extra : {1u, 3u, 4u, 8u}) {
      auto t = s;
      for (size_t k = 0; k < extra; ++k) t.push_back(uint8_t(rng()));
      CHECK_THROWS(decode(t, idx, tb), Status::CorruptStream);
    }
    // Bit flips: throw CorruptStream or decode to something else (rANS is a
    // near-complete code, so some flipped streams are valid encodings of
    // other sequences; integrity is the container's CRC's job).
    size_t flips = 0, thrown = 0;
    for (size_t pos = 0; pos < s.size(); pos += 1 + s.size() / 200) {
      for (int bit = 0; bit < 8; bit += 3) {
        auto t = s;
        t[pos] ^= uint8_t(1u << bit);
        ++flips;
        try {
          auto d = decode(t, idx, tb);
          CHECK(d != sym);
        } catch (const lmc::Error& e) {
          CHECK(e.code() == Status::CorruptStream);
          ++thrown;
        }
      }
    }
    std::printf("len %zu: %zu of %zu bit flips detected by the coder\n", len, thrown, flips);
    CHECK(thrown * 2 > flips);
    // Decoding with fewer / more symbols than encoded.
    if (len > 1) {
      std::vector<int32_t> fewer(idx.begin(), idx.end() - 1);
      CHECK_THROWS(decode(s, fewer, tb), Status::CorruptStream);
    }
    auto more = idx;
    more.push_back(0);
    CHECK_THROWS(decode(s, more, tb), Status::CorruptStream);
  }
  // Arbitrary bytes: must throw CorruptStream or decode, never crash or hang.
  size_t ok = 0;
  for (int rep = 0; rep < 3000; ++rep) {
    const size_t len = 1 + rng() % 300;
    std::vector<int32_t> idx(len);
    for (auto& v : idx) v = int32_t(rng() % 8);
    std::vector<uint8_t> junk(rng() % 600);
    for (auto& b : junk) b = uint8_t(rng());
    if (rep % 2 && junk.size() >= 16) {  // valid-looking initial states
      junk[7] = 0x3F;
      junk[15] = 0x3F;
    }
    try {
      decode(junk, idx, tb);
      ++ok;
    } catch (const lmc::Error& e) {
      CHECK(e.code() == Status::CorruptStream);
    }
  }
  CHECK(ok == 0);
  // Crafted: escape-only table fed garbage (bypass-bit paths).
  Tables esc;
  std::vector<double> tiny = {1e-9};
  esc.add(lmc::pmf_to_quantized_cdf(tiny.data(), 1), INT32_MAX);  // almost everything escapes
  for (int rep = 0; rep < 2000; ++rep) {
    const size_t len = 1 + rng() % 50;
    std::vector<int32_t> idx(len, 0);
    std::vector<uint8_t> junk(16 + 4 * (rng() % 40));
    for (auto& b : junk) b = uint8_t(rng());
    junk[7] &= 0x7F;
    junk[7] |= 0x01;
    junk[15] &= 0x7F;
    junk[15] |= 0x01;
    try {
      decode(junk, idx, esc);
    } catch (const lmc::Error& e) {
      CHECK(e.code() == Status::CorruptStream);
    }
  }
}

void test_compression() {
  // Coded size close to the ideal information content of the quantized model.
  Rng rng(9);
  Tables tb = random_tables(rng, 16, 300);
  const size_t len = 200000;
  std::vector<int32_t> sym(len), idx(len);
  double bits = 0;
  for (size_t i = 0; i < len; ++i) {
    idx[i] = int32_t(rng() % 16);
    const uint32_t* c = tb.cdf(size_t(idx[i]));
    const size_t n = size_t(tb.lengths[size_t(idx[i])]) - 2;
    uint32_t u;
    size_t k;
    do {  // regular symbols only
      u = uint32_t(rng() & 0xFFFF);
      k = size_t(std::upper_bound(c, c + n + 2, u) - c) - 1;
    } while (k >= n);
    sym[i] = tb.offsets[size_t(idx[i])] + int32_t(k);
    bits += 16.0 - std::log2(double(c[k + 1] - c[k]));
  }
  auto s = encode(sym, idx, tb);
  CHECK(decode(s, idx, tb) == sym);
  const double actual = 8.0 * double(s.size());
  std::printf("compression: %.1f bits ideal, %.1f bits coded (+%.4f%%)\n", bits, actual,
              100.0 * (actual / bits - 1));
  CHECK(actual < bits * 1.001 + 128);
}

}  // namespace

int main() {
  test_cdf_builder();
  test_validate_tables();
  test_empty();
  test_roundtrip_random();
  test_extremes();
  test_one_symbol_tables();
  test_big_tables();
  test_bad_indexes();
  test_corruption();
  test_compression();
  return check_summary();
}
