// lmcodec entropy coder: interleaved 64-bit rANS, 32-bit renormalisation.
// See rans.h for the contract and the stream layout.
//
// Hot loops: the lanes' states live in registers; renormalisation is
// branch-free on the state (conditional move + always-load/always-store with
// predictable bounds checks); symbol search is a per-table bucket table
// (slot >> shift -> first candidate symbol) followed by a binary search in
// the (usually one-symbol) candidate range. Table preparation (validation,
// bucket tables) happens once per call for the tables actually used.
#include "core/rans.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <queue>
#include <string>
#include <utility>

#include "util/error.h"

#if defined(__GNUC__) || defined(__clang__)
#define LMC_LIKELY(x) __builtin_expect(!!(x), 1)
#define LMC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LMC_NOINLINE __attribute__((noinline))
#define LMC_INLINE inline __attribute__((always_inline))
#else
#define LMC_LIKELY(x) (x)
#define LMC_UNLIKELY(x) (x)
#define LMC_NOINLINE
#define LMC_INLINE inline
#endif

namespace lmc {
namespace {

constexpr uint64_t kRansL = uint64_t(1) << 31;         // lower bound of the state interval
constexpr uint64_t kRansMaxState = uint64_t(1) << 63;  // exclusive upper bound
constexpr int kLanes = kRansLanes;
constexpr int kEscHeaderBits = 6;  // 1 sign bit + 5 bits (payload length 0..31)
constexpr size_t kMaxWordsPerSymbol = 4;  // escape: symbol + header + 2 payload chunks

static_assert(kCdfPrecision == 16, "the coder is written for 16-bit CDFs");
static_assert(kLanes >= 1 && kLanes <= 8, "lane count");

// --------------------------------------------------------------- bytes ---

inline void store_le32(uint8_t* p, uint32_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  std::memcpy(p, &v, 4);
#else
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
#endif
}

inline uint32_t load_le32(const uint8_t* p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
#else
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
#endif
}

inline uint64_t load_le64(const uint8_t* p) { return uint64_t(load_le32(p)) | uint64_t(load_le32(p + 4)) << 32; }

[[noreturn]] LMC_NOINLINE void corrupt(const char* what) { fail(Status::CorruptStream, std::string("rans: ") + what); }

// ------------------------------------------------------------- tables ---

// Validates table t only (validate_tables does all of them).
void validate_table(const CdfTables& tables, size_t t) {
  const int32_t len = tables.cdf_lengths[t];
  const size_t max_len = std::min(tables.stride, size_t(kMaxCdfLength));
  if (len < 3 || size_t(len) > max_len)
    fail(Status::InvalidArgument, "cdf table " + std::to_string(t) + ": length " + std::to_string(len) +
                                      " not in [3, " + std::to_string(max_len) + "]");
  const uint32_t* c = tables.cdfs + t * tables.stride;
  if (c[0] != 0 || c[len - 1] != kCdfTotal)
    fail(Status::InvalidArgument, "cdf table " + std::to_string(t) + ": must start at 0 and end at 65536");
  for (int32_t k = 1; k < len; ++k)
    if (c[k] <= c[k - 1])
      fail(Status::InvalidArgument, "cdf table " + std::to_string(t) + ": not strictly increasing at entry " +
                                        std::to_string(k));
}

void check_tables_header(const CdfTables& tables) {
  if (tables.count == 0) return;
  LMC_CHECK(tables.cdfs && tables.cdf_lengths && tables.offsets, Status::InvalidArgument,
            "cdf tables: null pointer");
}

// Checks every index (InvalidArgument naming the first bad one) and returns
// which tables the n symbols use (all of them when that is cheaper to find
// out than to mark).
std::vector<uint8_t> used_tables(const int32_t* indexes, size_t n, const CdfTables& tables) {
  const size_t count = tables.count;
  uint32_t top = 0;
  for (size_t i = 0; i < n; ++i) top = std::max(top, uint32_t(indexes[i]));  // negatives wrap high
  if (top >= count) {
    for (size_t i = 0; i < n; ++i)
      if (uint32_t(indexes[i]) >= count)
        fail(Status::InvalidArgument, "rans: index " + std::to_string(indexes[i]) + " of symbol " +
                                          std::to_string(i) + " is out of range (" + std::to_string(count) +
                                          " tables)");
  }
  if (n >= count * std::min<size_t>(tables.stride, kMaxCdfLength)) return std::vector<uint8_t>(count, 1);
  std::vector<uint8_t> used(count, 0);
  for (size_t i = 0; i < n; ++i) used[size_t(indexes[i])] = 1;
  return used;
}

// One past the last regular symbol whose value offset+k is an int32.
inline uint32_t regular_limit(int32_t offset, uint32_t n) {
  const int64_t room = int64_t(INT32_MAX) - int64_t(offset) + 1;  // >= 1
  return room < int64_t(n) ? uint32_t(room) : n;
}

// ------------------------------------------------------------- encoder ---

struct EncTable {
  const uint32_t* cdf = nullptr;
  int64_t offset = 0;
  uint64_t n = 0;  // regular symbols; escape is symbol n
};

// Pushes symbol [start, start+freq) (16-bit scale) onto state x. At least
// one free word at wp.
LMC_INLINE void enc_put(uint64_t& x, uint32_t start, uint32_t freq, uint32_t*& wp) {
  const uint64_t x_max = uint64_t(freq) << (63 - kCdfPrecision);  // ((L >> 16) << 32) * freq
  const bool emit = x >= x_max;
  *wp = uint32_t(x);
  wp += emit ? 1 : 0;
  uint64_t y = emit ? x >> 32 : x;
  const uint64_t q = y / freq;
  x = (q << kCdfPrecision) + (y - q * freq) + start;
}

// Pushes `bits` raw bits (1..16) of value v: a uniform symbol at scale 2^bits.
inline void enc_put_bits(uint64_t& x, uint32_t v, int bits, uint32_t*& wp) {
  const uint64_t x_max = uint64_t(1) << (63 - bits);
  if (x >= x_max) {
    *wp++ = uint32_t(x);
    x >>= 32;
  }
  x = (x << bits) | v;
}

struct EscEnc {
  uint64_t x;
  uint32_t* wp;
};

// Escape: value v outside [offset, offset+n). Pushed in reverse of the order
// the decoder reads: ESCAPE, header (sign | payload_bits << 1), low payload
// chunk (<= 16 bits), high payload chunk. At most 4 words.
LMC_NOINLINE EscEnc enc_escape(uint64_t x, uint32_t* wp, int64_t v, const EncTable& e) {
  uint32_t sign;
  uint64_t d;
  if (v < e.offset) {
    sign = 0;
    d = uint64_t(e.offset - 1 - v);
  } else {
    sign = 1;
    d = uint64_t(v - (e.offset + int64_t(e.n)));
  }
  const uint64_t m = d + 1;  // 1 .. 2^32 - 1
  int nb = 0;
  while ((m >> nb) > 1) ++nb;  // nb = floor(log2 m) = payload bits, 0..31
  const uint64_t payload = m - (uint64_t(1) << nb);
  if (nb > 16) enc_put_bits(x, uint32_t(payload >> 16), nb - 16, wp);
  if (nb > 0) enc_put_bits(x, uint32_t(payload & 0xFFFF), std::min(nb, 16), wp);
  enc_put_bits(x, sign | uint32_t(nb) << 1, kEscHeaderBits, wp);
  const uint32_t start = e.cdf[e.n];
  enc_put(x, start, e.cdf[e.n + 1] - start, wp);
  return {x, wp};
}

LMC_INLINE void enc_symbol(uint64_t& x, uint32_t*& wp, const EncTable& e, int32_t v) {
  const int64_t d = int64_t(v) - e.offset;
  if (LMC_LIKELY(uint64_t(d) < e.n)) {
    const uint32_t start = e.cdf[d];
    enc_put(x, start, e.cdf[d + 1] - start, wp);
  } else {
    const EscEnc r = enc_escape(x, wp, v, e);
    x = r.x;
    wp = r.wp;
  }
}

// ------------------------------------------------------------- decoder ---

struct DecTable {
  const uint32_t* cdf = nullptr;
  const uint16_t* lut = nullptr;  // 2^bits + 1 entries
  int32_t offset = 0;
  uint32_t n = 0;      // escape symbol
  uint32_t limit = 0;  // symbols >= limit take the slow path (escape or invalid)
  uint32_t shift = 0;  // slot >> shift = bucket
};

// Bucket table size: ~16 buckets per symbol (so few buckets straddle a
// symbol boundary), 256 .. 4096 buckets.
int lut_bits(uint32_t n) {
  int b = 0;
  while ((1u << b) < n + 1) ++b;  // ceil(log2(symbols))
  return std::min(12, std::max(8, b + 4));
}

// lut[b] = symbol containing slot b << shift; lut[2^bits] = n.
void build_lut(const uint32_t* cdf, uint32_t n, int bits, uint16_t* lut) {
  const int shift = kCdfPrecision - bits;
  const uint32_t buckets = 1u << bits;
  uint32_t k = 0;
  for (uint32_t b = 0; b < buckets; ++b) {
    const uint32_t slot = b << shift;
    while (cdf[k + 1] <= slot) ++k;  // terminates: cdf[n+1] = 65536 > slot
    lut[b] = uint16_t(k);
  }
  lut[buckets] = uint16_t(n);
}

// Entries of table t's bucket LUT (2^bits + 1).
size_t lut_entries(uint32_t n) { return (size_t(1) << lut_bits(n)) + 1; }

// Fills the decoder's view of table t (validated by the caller), building its
// bucket LUT into `lut` (lut_entries of it). Returns the entries used.
size_t fill_dec_table(DecTable& d, const CdfTables& tables, size_t t, uint16_t* lut) {
  d.cdf = tables.cdfs + t * tables.stride;
  d.offset = tables.offsets[t];
  d.n = uint32_t(tables.cdf_lengths[t] - 2);
  d.limit = regular_limit(d.offset, d.n);
  const int bits = lut_bits(d.n);
  d.shift = uint32_t(kCdfPrecision - bits);
  build_lut(d.cdf, d.n, bits, lut);
  d.lut = lut;
  return (size_t(1) << bits) + 1;
}

// Renormalisation for the raw-bit paths (checked, branchy).
inline void dec_renorm(uint64_t& x, const uint8_t*& p, const uint8_t* end) {
  if (x < kRansL) {
    if (end - p < 4) corrupt("stream truncated");
    x = (x << 32) | load_le32(p);
    p += 4;
  }
}

inline uint32_t dec_get_bits(uint64_t& x, const uint8_t*& p, const uint8_t* end, int bits) {
  const uint32_t v = uint32_t(x) & ((1u << bits) - 1);
  x >>= bits;
  dec_renorm(x, p, end);
  return v;
}

struct EscDec {
  uint64_t x;
  const uint8_t* p;
  int32_t value;
};

// Called after symbol k >= limit was decoded (state already renormalised).
LMC_NOINLINE EscDec dec_escape(uint64_t x, const uint8_t* p, const uint8_t* end, uint32_t k, const DecTable& d) {
  if (k != d.n) corrupt("symbol value outside the int32 range");
  const uint32_t h = dec_get_bits(x, p, end, kEscHeaderBits);
  const uint32_t sign = h & 1;
  const int nb = int(h >> 1);
  uint64_t payload = 0;
  if (nb > 0) payload = dec_get_bits(x, p, end, std::min(nb, 16));
  if (nb > 16) payload |= uint64_t(dec_get_bits(x, p, end, nb - 16)) << 16;
  const int64_t dist = int64_t((uint64_t(1) << nb) + payload - 1);  // < 2^32
  const int64_t v = sign ? int64_t(d.offset) + int64_t(d.n) + dist : int64_t(d.offset) - 1 - dist;
  if (v < INT32_MIN || v > INT32_MAX) corrupt("escaped value outside the int32 range");
  return {x, p, int32_t(v)};
}

LMC_INLINE void dec_symbol(uint64_t& x, const uint8_t*& p, const uint8_t* end, const DecTable& d, int32_t* out) {
  const uint32_t s = uint32_t(x) & (kCdfTotal - 1);
  const uint32_t b = s >> d.shift;
  uint32_t lo = d.lut[b], hi = d.lut[b + 1];
  const uint32_t* c = d.cdf;
  while (lo < hi) {  // largest k in [lo, hi] with c[k] <= s
    const uint32_t mid = (lo + hi + 1) >> 1;
    if (c[mid] <= s)
      lo = mid;
    else
      hi = mid - 1;
  }
  const uint32_t start = c[lo];
  uint64_t y = uint64_t(c[lo + 1] - start) * (x >> kCdfPrecision) + s - start;
  // Renormalise without a data-dependent branch; the bounds check is
  // predictable (it only fails at the very end of a corrupt stream).
  const uint32_t refill = y < kRansL;  // 0 or 1
  uint32_t w = 0;
  if (LMC_LIKELY(end - p >= 4))
    w = load_le32(p);
  else if (refill)
    corrupt("stream truncated");
  const unsigned sh = refill << 5;  // 0 or 32
  y = (y << sh) | (w & (0u - refill));
  p += sh >> 3;
  if (LMC_LIKELY(lo < d.limit)) {
    x = y;
    *out = int32_t(uint32_t(d.offset) + lo);  // no overflow: lo < limit
  } else {
    const EscDec r = dec_escape(y, p, end, lo, d);
    x = r.x;
    p = r.p;
    *out = r.value;
  }
}

}  // namespace

// ------------------------------------------------------------ CDF builder ---

std::vector<uint32_t> pmf_to_quantized_cdf(const double* pmf, size_t n) {
  LMC_CHECK(n >= 1, Status::InvalidArgument, "pmf_to_quantized_cdf: need at least one symbol");
  LMC_CHECK(n + 2 <= size_t(kMaxCdfLength), Status::InvalidArgument,
            "pmf_to_quantized_cdf: " + std::to_string(n) + " symbols is more than the 16-bit CDF allows (max " +
                std::to_string(kMaxCdfLength - 2) + ")");
  LMC_CHECK(pmf != nullptr, Status::InvalidArgument, "pmf_to_quantized_cdf: null pmf");
  const size_t m = n + 1;  // with escape
  std::vector<double> w(m, 0.0);
  double sum = 0.0, wmax = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double p = pmf[i];
    w[i] = (std::isfinite(p) && p > 0.0) ? p : 0.0;
    sum += w[i];
    wmax = std::max(wmax, w[i]);
  }
  if (!std::isfinite(sum)) {  // huge finite entries: rescale so the sum is finite (and >= 1)
    sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
      w[i] /= wmax;
      sum += w[i];
    }
  }
  // Escape gets the missing mass; a sum > 1 is normalised.
  w[n] = sum < 1.0 ? 1.0 - sum : 0.0;
  const double total_mass = std::max(sum, 1.0);
  const double scale = double(kCdfTotal) / total_mass;

  std::vector<int64_t> f(m);
  int64_t total = 0;
  for (size_t i = 0; i < m; ++i) {
    const double x = w[i] * scale;  // in [0, 65536]
    f[i] = std::max<int64_t>(1, std::lround(x));
    total += f[i];
  }

  // Fix the total greedily: each step changes the bin whose change costs the
  // least code length (sum_i w_i log f_i is concave and separable). Ties go
  // to the lower index, so the result is deterministic.
  using Item = std::pair<double, size_t>;  // (key, index)
  struct Less {  // max-heap on key, then min index
    bool operator()(const Item& a, const Item& b) const {
      return a.first < b.first || (a.first == b.first && a.second > b.second);
    }
  };
  if (total > int64_t(kCdfTotal)) {
    // Remove counts from bins with f > 1; key = -cost of one decrement.
    std::priority_queue<Item, std::vector<Item>, Less> heap;
    for (size_t i = 0; i < m; ++i)
      if (f[i] > 1) heap.push({-w[i] * std::log(double(f[i]) / double(f[i] - 1)), i});
    while (total > int64_t(kCdfTotal)) {
      // Non-empty: total - (n + 1) = sum_i (f_i - 1) counts are removable and
      // total - 65536 <= total - (n + 1).
      const size_t i = heap.top().second;
      heap.pop();
      --f[i];
      --total;
      if (f[i] > 1) heap.push({-w[i] * std::log(double(f[i]) / double(f[i] - 1)), i});
    }
  } else if (total < int64_t(kCdfTotal)) {
    std::priority_queue<Item, std::vector<Item>, Less> heap;
    for (size_t i = 0; i < m; ++i) heap.push({w[i] * std::log(double(f[i] + 1) / double(f[i])), i});
    while (total < int64_t(kCdfTotal)) {
      const size_t i = heap.top().second;
      heap.pop();
      ++f[i];
      ++total;
      heap.push({w[i] * std::log(double(f[i] + 1) / double(f[i])), i});
    }
  }

  std::vector<uint32_t> cdf(m + 1);
  cdf[0] = 0;
  for (size_t i = 0; i < m; ++i) cdf[i + 1] = cdf[i] + uint32_t(f[i]);
  if (cdf[m] != kCdfTotal) fail(Status::Internal, "pmf_to_quantized_cdf: bad total");
  return cdf;
}

void validate_tables(const CdfTables& tables) {
  check_tables_header(tables);
  for (size_t t = 0; t < tables.count; ++t) validate_table(tables, t);
}

CdfTables OwnedTables::view() const {
  CdfTables t;
  t.cdfs = cdfs.data();
  t.stride = stride;
  t.cdf_lengths = lengths.data();
  t.offsets = offsets.data();
  t.count = lengths.size();
  return t;
}

OwnedTables cdf_tables_from_freqs(const uint16_t* freqs, const int32_t* freq_counts, const int32_t* offsets,
                                  size_t count) {
  size_t maxlen = 0;
  for (size_t t = 0; t < count; ++t) maxlen = std::max(maxlen, size_t(freq_counts[t]));
  OwnedTables o;
  o.stride = maxlen + 1;
  o.cdfs.assign(count * o.stride, 0);
  o.lengths.resize(count);
  o.offsets.assign(offsets, offsets + count);
  size_t pos = 0;
  for (size_t t = 0; t < count; ++t) {
    uint32_t* c = &o.cdfs[t * o.stride];
    const size_t n = size_t(freq_counts[t]);
    for (size_t i = 0; i < n; ++i) c[i + 1] = c[i] + freqs[pos + i];
    for (size_t i = n + 1; i < o.stride; ++i) c[i] = c[n];
    pos += n;
    o.lengths[t] = int32_t(n + 1);
  }
  validate_tables(o.view());  // every frequency >= 1 and total 2^16
  return o;
}

OwnedTables cdf_tables_from_cdfs(const std::vector<std::vector<uint32_t>>& cdfs, const std::vector<int32_t>& offsets) {
  LMC_CHECK(cdfs.size() == offsets.size(), Status::InvalidArgument, "one offset per table");
  OwnedTables o;
  for (const auto& c : cdfs) {
    LMC_CHECK(!c.empty(), Status::InvalidArgument, "empty CDF");
    o.stride = std::max(o.stride, c.size());
  }
  o.cdfs.assign(cdfs.size() * o.stride, 0);
  for (size_t t = 0; t < cdfs.size(); ++t) {
    std::copy(cdfs[t].begin(), cdfs[t].end(), o.cdfs.begin() + t * o.stride);
    std::fill(o.cdfs.begin() + t * o.stride + cdfs[t].size(), o.cdfs.begin() + (t + 1) * o.stride, cdfs[t].back());
    o.lengths.push_back(int32_t(cdfs[t].size()));
  }
  o.offsets = offsets;
  return o;
}

std::vector<uint16_t> cdf_to_freqs(const std::vector<uint32_t>& cdf) {
  std::vector<uint16_t> f;
  for (size_t i = 1; i < cdf.size(); ++i) f.push_back(uint16_t(cdf[i] - cdf[i - 1]));
  return f;
}

// ---------------------------------------------------------------- encode ---

void rans_encode(const int32_t* symbols, const int32_t* indexes, size_t n, const CdfTables& tables,
                 std::vector<uint8_t>& out) {
  if (n == 0) return;  // the empty stream
  LMC_CHECK(symbols && indexes, Status::InvalidArgument, "rans_encode: null symbols or indexes");
  check_tables_header(tables);
  const std::vector<uint8_t> used = used_tables(indexes, n, tables);
  std::vector<EncTable> et(tables.count);
  for (size_t t = 0; t < tables.count; ++t) {
    if (!used[t]) continue;
    validate_table(tables, t);
    et[t].cdf = tables.cdfs + t * tables.stride;
    et[t].offset = tables.offsets[t];
    et[t].n = uint64_t(tables.cdf_lengths[t] - 2);
  }
  const EncTable* etab = et.data();

  // Words are produced in reverse stream order into buf.
  std::vector<uint32_t> buf(n / 4 + 64);
  uint32_t* wp = buf.data();
  uint32_t* wend = buf.data() + buf.size();
  const size_t room = kMaxWordsPerSymbol * kLanes;
  auto grow = [&] {
    const size_t used_words = size_t(wp - buf.data());
    buf.resize(std::max(buf.size() * 2, used_words + room));
    wp = buf.data() + used_words;
    wend = buf.data() + buf.size();
  };

  uint64_t x[kLanes];
  for (int j = 0; j < kLanes; ++j) x[j] = kRansL;
  // Symbol i uses lane i % kLanes; rANS is LIFO, so go backwards: first the
  // incomplete last group, then whole groups.
  const size_t full = n - n % kLanes;
  if (size_t(wend - wp) < room) grow();
#pragma GCC unroll 8
  for (int j = kLanes - 1; j >= 0; --j)
    if (full + size_t(j) < n) enc_symbol(x[j], wp, etab[indexes[full + j]], symbols[full + j]);
  for (size_t i = full; i > 0;) {
    i -= kLanes;
    if (LMC_UNLIKELY(size_t(wend - wp) < room)) grow();
#pragma GCC unroll 8
    for (int j = kLanes - 1; j >= 0; --j) enc_symbol(x[j], wp, etab[indexes[i + j]], symbols[i + j]);
  }

  // Layout: states of the used lanes (u64 LE, lane 0 first), then the words
  // in the order the decoder reads them (reverse of production).
  const size_t lanes = std::min<size_t>(n, kLanes);
  const size_t nwords = size_t(wp - buf.data());
  const size_t base = out.size();
  out.resize(base + 8 * lanes + 4 * nwords);
  uint8_t* o = out.data() + base;
  for (size_t j = 0; j < lanes; ++j, o += 8) {
    store_le32(o, uint32_t(x[j]));
    store_le32(o + 4, uint32_t(x[j] >> 32));
  }
  const uint32_t* w = buf.data();
  for (size_t k = nwords; k > 0; --k, o += 4) store_le32(o, w[k - 1]);
}

// ---------------------------------------------------------------- decode ---

void rans_decode(const uint8_t* data, size_t size, const int32_t* indexes, size_t n, const CdfTables& tables,
                 int32_t* symbols_out) {
  if (n == 0) {
    if (size != 0) corrupt("trailing data after an empty stream");
    return;
  }
  LMC_CHECK(indexes && symbols_out, Status::InvalidArgument, "rans_decode: null indexes or output");
  check_tables_header(tables);
  const std::vector<uint8_t> used = used_tables(indexes, n, tables);
  std::vector<DecTable> dt(tables.count);
  size_t lut_total = 0;
  for (size_t t = 0; t < tables.count; ++t) {
    if (!used[t]) continue;
    validate_table(tables, t);
    lut_total += lut_entries(uint32_t(tables.cdf_lengths[t] - 2));
  }
  std::vector<uint16_t> luts(lut_total);
  for (size_t t = 0, pos = 0; t < tables.count; ++t) {
    if (!used[t]) continue;
    pos += fill_dec_table(dt[t], tables, t, luts.data() + pos);
  }
  const DecTable* dtab = dt.data();

  const size_t lanes = std::min<size_t>(n, kLanes);
  if (!data || size < 8 * lanes) corrupt("stream too short");
  if ((size - 8 * lanes) % 4 != 0) corrupt("stream length is not a whole number of words");
  const uint8_t* p = data;
  const uint8_t* const end = data + size;
  uint64_t x[kLanes];
  for (int j = 0; j < kLanes; ++j) x[j] = kRansL;
  for (size_t j = 0; j < lanes; ++j, p += 8) {
    x[j] = load_le64(p);
    if (x[j] < kRansL || x[j] >= kRansMaxState) corrupt("bad initial state");
  }

  const size_t full = n - n % kLanes;
  for (size_t i = 0; i < full; i += kLanes) {
#pragma GCC unroll 8
    for (int j = 0; j < kLanes; ++j) dec_symbol(x[j], p, end, dtab[indexes[i + j]], symbols_out + i + j);
  }
#pragma GCC unroll 8
  for (int j = 0; j < kLanes; ++j)
    if (full + size_t(j) < n) dec_symbol(x[j], p, end, dtab[indexes[full + j]], symbols_out + full + j);

  if (p != end) corrupt("trailing data after the last symbol");
  for (int j = 0; j < kLanes; ++j)
    if (x[j] != kRansL) corrupt("final state mismatch");
}

// ------------------------------------------------------ incremental ---

struct RansDecoder::Impl {
  const uint8_t* p = nullptr;
  const uint8_t* end = nullptr;
  uint64_t x[kLanes];
  size_t pos = 0, n_total = 0;
  CdfTables tables;
  std::vector<DecTable> dt;
  std::vector<std::unique_ptr<uint16_t[]>> luts;
  std::vector<uint8_t> ready;

  void prepare(size_t t) {
    validate_table(tables, t);
    luts[t].reset(new uint16_t[lut_entries(uint32_t(tables.cdf_lengths[t] - 2))]);
    fill_dec_table(dt[t], tables, t, luts[t].get());
    ready[t] = 1;
  }
};

RansDecoder::RansDecoder(const uint8_t* data, size_t size, size_t n_total, const CdfTables& tables)
    : impl_(new Impl) {
  Impl& s = *impl_;
  check_tables_header(tables);
  s.tables = tables;
  s.n_total = n_total;
  s.dt.resize(tables.count);
  s.luts.resize(tables.count);
  s.ready.assign(tables.count, 0);
  for (int j = 0; j < kLanes; ++j) s.x[j] = kRansL;
  if (n_total == 0) {
    if (size != 0) corrupt("trailing data after an empty stream");
    s.p = s.end = data;
    return;
  }
  const size_t lanes = std::min<size_t>(n_total, kLanes);
  if (!data || size < 8 * lanes) corrupt("stream too short");
  if ((size - 8 * lanes) % 4 != 0) corrupt("stream length is not a whole number of words");
  s.p = data;
  s.end = data + size;
  for (size_t j = 0; j < lanes; ++j, s.p += 8) {
    s.x[j] = load_le64(s.p);
    if (s.x[j] < kRansL || s.x[j] >= kRansMaxState) corrupt("bad initial state");
  }
}

RansDecoder::~RansDecoder() = default;

size_t RansDecoder::position() const { return impl_->pos; }

void RansDecoder::decode(const int32_t* indexes, size_t n, int32_t* symbols_out) {
  Impl& s = *impl_;
  if (n == 0) return;
  LMC_CHECK(indexes && symbols_out, Status::InvalidArgument, "rans: null indexes or output");
  LMC_CHECK(n <= s.n_total - s.pos, Status::InvalidArgument, "rans: more symbols than the stream was opened for");
  const size_t count = s.tables.count;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t t = uint32_t(indexes[i]);
    if (LMC_UNLIKELY(t >= count))
      fail(Status::InvalidArgument, "rans: index " + std::to_string(indexes[i]) + " of symbol " +
                                        std::to_string(s.pos + i) + " is out of range (" + std::to_string(count) +
                                        " tables)");
    if (LMC_UNLIKELY(!s.ready[t])) s.prepare(t);
  }
  const DecTable* dtab = s.dt.data();
  const uint8_t* p = s.p;
  const uint8_t* const end = s.end;
  uint64_t x[kLanes];
  for (int j = 0; j < kLanes; ++j) x[j] = s.x[j];
  size_t i = 0;
  // Head: up to the next lane-0 symbol.
  for (; i < n && (s.pos + i) % kLanes != 0; ++i) {
    const size_t lane = (s.pos + i) % kLanes;
    dec_symbol(x[lane], p, end, dtab[indexes[i]], symbols_out + i);
  }
  const size_t full = i + (n - i) / kLanes * kLanes;
  for (; i < full; i += kLanes) {
#pragma GCC unroll 8
    for (int j = 0; j < kLanes; ++j) dec_symbol(x[j], p, end, dtab[indexes[i + j]], symbols_out + i + j);
  }
  for (int j = 0; i < n; ++i, ++j) dec_symbol(x[j], p, end, dtab[indexes[i]], symbols_out + i);
  for (int j = 0; j < kLanes; ++j) s.x[j] = x[j];
  s.p = p;
  s.pos += n;
}

void RansDecoder::finish() {
  Impl& s = *impl_;
  if (s.pos != s.n_total) corrupt("stream ended before its last symbol was decoded");
  if (s.p != s.end) corrupt("trailing data after the last symbol");
  for (int j = 0; j < kLanes; ++j)
    if (s.x[j] != kRansL) corrupt("final state mismatch");
}

// Decoding a symbol of frequency f from state x in [2^31, 2^63): with
// q = floor(x / 2^16), the new state is f * q + r with r < f, so
// x' < f * (x / 2^16 + 1) <= x * (f / 2^16) * (1 + 2^-15): log2(x) drops by at
// least log2(2^16 / f) - log2(1 + 2^-15) >= log2(2^16 / f) - 4.41e-5. A word
// read sets x = (y << 32) | w < (y + 1) * 2^32 with y >= 2^15: log2(x) rises by
// at most 32 + 4.41e-5. Raw bits (escapes) only lower the state. The lane
// states start below 2^63 and must end at 2^31, so the symbols' bits add up
// to at most 32 per lane + (32 + 4.41e-5) per word <= 8.0001 * size bits.
double rans_min_symbol_bits(uint32_t max_freq) {
  if (max_freq == 0 || max_freq >= kCdfTotal) return 0.0;
  return std::max(0.0, std::log2(double(kCdfTotal) / double(max_freq)) - 4.5e-5);
}

double rans_capacity_bits(size_t size) { return 8.0001 * double(size) + 64.0; }

uint32_t rans_max_frequency(const CdfTables& tables, size_t t) {
  check_tables_header(tables);
  LMC_CHECK(t < tables.count, Status::InvalidArgument, "rans: table index out of range");
  validate_table(tables, t);
  const uint32_t* c = tables.cdfs + t * tables.stride;
  uint32_t fmax = 1;
  for (int32_t i = 1; i < tables.cdf_lengths[t]; ++i) fmax = std::max(fmax, c[i] - c[i - 1]);
  return fmax;
}

}  // namespace lmc
