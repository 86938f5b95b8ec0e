#include "core/residual.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/rans.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/threadpool.h"

namespace lmc {
namespace {

// ---- The model (shared, sample for sample, by the encoder and the decoder).

constexpr int kMethodRaw = 0;   // the samples as they are (when modelling would cost more: noise)
constexpr int kMethod = 1;      // MED + subtract-green + context tables
constexpr int kContexts = 16;   // tables per plane
constexpr int kMaxSymbols = 511;  // q in [-255, 255]
constexpr size_t kFixedHeader = 8;
// Tables (write_table): a table sent with P = (bits of its sample count) - 2
// bits of precision, covering the values seen at least kTableMinCount times
// (both chosen on training images, docs/lossless.md).
constexpr int kTablePrecisionDrop = 2;
constexpr uint32_t kTableMinCount = 4;
// Context: the activity a = grad + 4*(eW + eN) + 2*(eNW + eNE) + link (run_strip;
// in units of 3*s) against these edges (the bin is how many edges are <= a).
// The weights were chosen on 16 held-out training images (docs/lossless.md).
constexpr int kEdges[kContexts - 1] = {0, 1, 2, 3, 5, 7, 10, 14, 20, 28, 40, 56, 80, 112, 160};

inline int med(int a, int b, int c) {  // a = W, b = N, c = NW
  const int mx = std::max(a, b), mn = std::min(a, b);
  if (c >= mx) return mn;
  if (c <= mn) return mx;
  return a + b - c;
}

inline int clamp255(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }
inline int iabs(int v) { return v < 0 ? -v : v; }

struct Model {
  int k, s, planes;
  int act_cap;                  // activities above it share the last context
  std::vector<uint8_t> ctx_of;  // activity (0 ..= act_cap) -> context
  std::vector<int16_t> q_of;    // e + 255 -> quantised residual

  Model(int max_error, int n_planes) : k(max_error), s(2 * max_error + 1), planes(n_planes) {
    act_cap = 3 * s * (kEdges[kContexts - 2] + 1);
    ctx_of.resize(size_t(act_cap) + 1);
    for (int a = 0; a <= act_cap; ++a) {
      const int v = a / (3 * s);
      ctx_of[size_t(a)] = uint8_t(std::upper_bound(kEdges, kEdges + kContexts - 1, v) - kEdges);
    }
    q_of.resize(kMaxSymbols);
    for (int e = -255; e <= 255; ++e) q_of[size_t(e + 255)] = int16_t(e >= 0 ? (e + k) / s : -((k - e) / s));
  }
  int tables() const { return planes * kContexts; }
};

// Runs the model over one strip of `rows` rows; rec points at the strip's
// first row (stride, `step` bytes a pixel) and holds the reconstruction as it
// is made. code(t, pred, x, y, c) returns the reconstructed sample of channel
// c at (x, y) coded under table t with prediction pred.
template <typename Code>
void run_strip(const Model& m, uint8_t* rec, size_t stride, size_t step, uint32_t w, uint32_t rows, Code&& code) {
  static const int kOrder3[3] = {1, 0, 2}, kOrder1[1] = {0};
  const int* order = m.planes == 3 ? kOrder3 : kOrder1;
  // |reconstructed residual| of the current and the previous row, per plane
  std::vector<uint16_t> err(size_t(m.planes) * 2 * w, 0);
  for (uint32_t y = 0; y < rows; ++y) {
    uint8_t* row = rec + size_t(y) * stride;
    const uint8_t* up = y ? row - stride : nullptr;
    for (uint32_t x = 0; x < w; ++x) {
      int link = 0;   // mean |residual| of the planes coded before, this pixel
      int err_r = 0;  // R's signed residual (B's prediction takes half of it)
      for (int j = 0; j < m.planes; ++j) {
        const int c = order[j];
        uint16_t* cur = err.data() + (size_t(j) * 2 + (y & 1)) * w;
        const uint16_t* prv = err.data() + (size_t(j) * 2 + ((y + 1) & 1)) * w;
        // plane value at a causal position: the sample, or its difference to G
        auto val = [&](const uint8_t* r, uint32_t xx) {
          const uint8_t* p = r + size_t(xx) * step;
          return j ? int(p[c]) - int(p[1]) : int(p[c]);
        };
        // causal neighbours, replicated at the strip's edges
        int W, N, NW, NE, eW, eN, eNW, eNE;
        if (up == nullptr) {
          if (x == 0) {
            W = N = NW = NE = j ? 0 : 128;
            eW = eN = eNW = eNE = 0;
          } else {
            W = N = NW = NE = val(row, x - 1);
            eW = eN = eNW = eNE = cur[x - 1];
          }
        } else {
          N = val(up, x);
          eN = prv[x];
          if (x) {
            W = val(row, x - 1), NW = val(up, x - 1);
            eW = cur[x - 1], eNW = prv[x - 1];
          } else {
            W = NW = N;
            eW = eNW = eN;
          }
          if (x + 1 < w) {
            NE = val(up, x + 1);
            eNE = prv[x + 1];
          } else {
            NE = N;
            eNE = eN;
          }
        }
        int pred = med(W, N, NW);
        if (j) pred = clamp255(pred + int(row[size_t(x) * step + 1]) + (j == 2 ? err_r / 2 : 0));
        const int grad = iabs(W - NW) + iabs(N - NW) + iabs(N - NE);
        const int act = grad + 4 * (eW + eN) + 2 * (eNW + eNE) + link;
        const int t = j * kContexts + m.ctx_of[size_t(std::min(act, m.act_cap))];
        const int r = code(t, pred, x, y, c);
        row[size_t(x) * step + size_t(c)] = uint8_t(r);
        const int e = iabs(r - pred);
        cur[x] = uint16_t(e);

        link = j ? (link + e) >> 1 : e;
        if (j == 1) err_r = r - pred;
      }
    }
  }
}

// Encoder side of one sample: the quantised residual and the reconstruction.
inline int quantise(const Model& m, int pred, int x, int* q) {
  *q = m.q_of[size_t(x - pred + 255)];
  return clamp255(pred + *q * m.s);
}

// ---- Chunk layout (docs/format.md section 3.1).

void put_varint(std::vector<uint8_t>& out, uint32_t v) {
  while (v >= 0x80) {
    out.push_back(uint8_t(v | 0x80));
    v >>= 7;
  }
  out.push_back(uint8_t(v));
}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

uint32_t get_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

[[noreturn]] void corrupt(const std::string& msg) { fail(Status::CorruptStream, "residual chunk: " + msg); }

struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  uint32_t varint() {
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      if (p == end) corrupt("truncated table");
      const uint8_t b = *p++;
      v |= uint32_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    corrupt("bad number in a table");
  }
};

uint32_t strip_rows_for(uint32_t w, uint32_t h) {
  // ~128 rows of up to 4096 pixels: each strip's first row has no row above
  // (a cost of about one row in 128), and the encoder holds one strip's
  // symbols per thread
  const uint32_t rows = w <= 4096 ? 128 : std::max<uint32_t>(16, uint32_t(128ull * 4096 / w));
  return std::min(rows, h);
}

// The tables the placeholder: an unused context still needs a valid table
// (never used by a valid stream; a forged stream that uses it decodes garbage
// and is caught by the final-state check or the sample range).
constexpr uint16_t kUnusedFreqs[2] = {32768, 32768};

struct Parsed {
  bool raw = false;
  int k = 0, planes = 0;
  uint32_t strip_rows = 0, strips = 0;
  OwnedTables tables;
  uint32_t max_freq = 0;
  std::vector<const uint8_t*> stream;
  std::vector<size_t> stream_size;
};

// One table from a histogram of q (value v at hs[v + 255]): it covers the
// values seen at least kTableMinCount times (the rest escape; if none is, all
// values seen) and is sent at the precision
// its sample count supports: P bits (frequencies summing to 2^P, scaled by
// 2^(16-P) for coding), since finer frequencies would cost more to send than
// they save. Appends the table's bytes to out and its 16-bit frequencies to
// freqs (what the decoder rebuilds).
void write_table(const uint32_t* hs, std::vector<uint8_t>& out, std::vector<uint16_t>& freqs, int32_t* count,
                 int32_t* offset) {
  uint64_t total = 0;
  int lo = kMaxSymbols, hi = -1, lo1 = kMaxSymbols, hi1 = -1;
  for (int v = 0; v < kMaxSymbols; ++v) {
    total += hs[v];
    if (hs[v] >= 1) lo1 = std::min(lo1, v), hi1 = std::max(hi1, v);
    if (hs[v] >= kTableMinCount) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (total == 0) {
    put_varint(out, 0);
    freqs.insert(freqs.end(), kUnusedFreqs, kUnusedFreqs + 2);
    *count = 2;
    *offset = 0;
    return;
  }
  if (hi < 0) lo = lo1, hi = hi1;
  const size_t n = size_t(hi - lo + 1);
  int bits = 0;
  while (bits < 16 && (uint64_t(1) << bits) < total) ++bits;
  int p = std::max(bits - kTablePrecisionDrop, 1);
  while (p < 16 && (size_t(1) << p) < 2 * (n + 1)) ++p;
  const uint64_t target = uint64_t(1) << p;
  // counts -> frequencies >= 1 summing to 2^P (escape last: the rest)
  std::vector<int64_t> f(n + 1);
  uint64_t inside = 0;
  for (size_t i = 0; i < n; ++i) inside += hs[size_t(lo) + i];
  int64_t sum = 0;
  for (size_t i = 0; i <= n; ++i) {
    const uint64_t c = i < n ? hs[size_t(lo) + i] : total - inside;
    f[i] = std::max<int64_t>(1, int64_t((c * target + total / 2) / total));
    sum += f[i];
  }
  while (sum != int64_t(target)) {  // give or take at the largest frequency (stays >= 1: 2^P >= 2(n+1))
    const size_t big = size_t(std::max_element(f.begin(), f.end()) - f.begin());
    const int64_t d = std::max<int64_t>(int64_t(target) - sum, 1 - f[big]);
    f[big] += d;
    sum += d;
  }
  *offset = lo - 255;
  *count = int32_t(n + 1);
  put_varint(out, uint32_t(n));
  put_varint(out, *offset >= 0 ? uint32_t(*offset) * 2 : uint32_t(-*offset - 1) * 2 + 1);
  out.push_back(uint8_t(p));
  for (int64_t v : f) {
    put_varint(out, uint32_t(v));
    freqs.push_back(uint16_t(v << (16 - p)));
  }
}

int planes_for(uint32_t channels) { return channels == 1 ? 1 : 3; }

Parsed parse(const uint8_t* data, size_t size, uint32_t w, uint32_t h, uint32_t channels) {
  Parsed ps;
  if (!data || size < kFixedHeader) corrupt("truncated header");
  if (data[0] != kMethod && data[0] != kMethodRaw)
    fail(Status::Unsupported, "residual chunk: unknown coding method " + std::to_string(data[0]));
  ps.k = data[1];
  ps.planes = data[2];
  if (ps.planes != planes_for(channels))
    corrupt("codes " + std::to_string(ps.planes) + " planes, the image has " + std::to_string(channels) + " channels");
  if (data[0] == kMethodRaw) {
    ps.raw = true;
    if ((size - kFixedHeader) / ps.planes / w != h || (size - kFixedHeader) % (uint64_t(w) * ps.planes) != 0)
      corrupt("raw samples do not match the image size");
    return ps;
  }
  if (data[3] != kContexts) corrupt("unexpected context count " + std::to_string(data[3]));
  ps.strip_rows = get_u32(data + 4);
  if (ps.strip_rows < 1 || ps.strip_rows > h) corrupt("strip height out of range");
  ps.strips = uint32_t((uint64_t(h) + ps.strip_rows - 1) / ps.strip_rows);
  Reader rd{data + kFixedHeader, data + size};
  const size_t n_tables = size_t(ps.planes) * kContexts;
  std::vector<uint16_t> freqs;
  std::vector<int32_t> counts(n_tables), offsets(n_tables);
  for (size_t t = 0; t < n_tables; ++t) {
    const uint32_t n = rd.varint();
    if (n > kMaxSymbols) corrupt("table with too many symbols");
    if (n == 0) {
      freqs.insert(freqs.end(), kUnusedFreqs, kUnusedFreqs + 2);
      counts[t] = 2;
      offsets[t] = 0;
      continue;
    }
    const uint32_t zz = rd.varint();
    const int64_t off = (zz & 1) ? -int64_t(zz >> 1) - 1 : int64_t(zz >> 1);
    if (off < -255 || off + int64_t(n) > 256) corrupt("table outside the residual range");
    if (rd.p == rd.end) corrupt("truncated table");
    const int p = *rd.p++;
    if (p < 1 || p > 16) corrupt("bad table precision");
    uint32_t total = 0;
    for (uint32_t i = 0; i <= n; ++i) {
      const uint32_t f = rd.varint();
      if (f < 1 || f >= (1u << p)) corrupt("bad frequency");
      total += f;
      if (total > (1u << p)) corrupt("frequencies do not sum to 2^P");
      freqs.push_back(uint16_t(f << (16 - p)));
      ps.max_freq = std::max(ps.max_freq, f << (16 - p));
    }
    if (total != (1u << p)) corrupt("frequencies do not sum to 2^P");
    counts[t] = int32_t(n + 1);
    offsets[t] = int32_t(off);
  }
  ps.max_freq = std::max<uint32_t>(ps.max_freq, kUnusedFreqs[0]);
  ps.tables = cdf_tables_from_freqs(freqs.data(), counts.data(), offsets.data(), n_tables);
  if (size_t(rd.end - rd.p) / 4 < ps.strips) corrupt("truncated strip table");
  const uint8_t* s = rd.p + size_t(ps.strips) * 4;
  size_t left = size_t(rd.end - s);
  const double min_bits = rans_min_symbol_bits(ps.max_freq);
  for (uint32_t i = 0; i < ps.strips; ++i) {
    const size_t len = get_u32(rd.p + size_t(i) * 4);
    if (len > left) corrupt("strip " + std::to_string(i) + " runs past the chunk");
    const uint32_t rows = std::min(ps.strip_rows, h - i * ps.strip_rows);
    const double samples = double(w) * rows * ps.planes;
    if (samples * min_bits > rans_capacity_bits(len))
      corrupt("strip " + std::to_string(i) + " of " + std::to_string(len) + " bytes cannot hold its " +
              std::to_string(uint64_t(samples)) + " samples");
    ps.stream.push_back(s);
    ps.stream_size.push_back(len);
    s += len;
    left -= len;
  }
  if (left != 0) corrupt("trailing bytes after the last strip");
  return ps;
}

}  // namespace

std::vector<uint8_t> encode_residual(const uint8_t* px, uint32_t w, uint32_t h, size_t stride, uint32_t channels,
                                     int max_error, dsp::ThreadPool* pool) {
  LMC_CHECK(px && w >= 1 && h >= 1, Status::InvalidArgument, "residual: empty image");
  LMC_CHECK(channels == 1 || channels == 3 || channels == 4, Status::InvalidArgument, "residual: bad channel count");
  LMC_CHECK(max_error >= 0 && max_error <= kMaxResidualError, Status::InvalidArgument,
            "max_error must be in 0.." + std::to_string(kMaxResidualError));
  const Model m(max_error, planes_for(channels));
  const uint32_t strip_rows = strip_rows_for(w, h);
  const uint32_t strips = (h + strip_rows - 1) / strip_rows;
  const size_t n_tables = size_t(m.tables());
  const size_t step = channels;
  // One strip's reconstruction (a copy of the input rows, overwritten by the
  // reconstruction as the model goes).
  auto load = [&](uint32_t i, std::vector<uint8_t>& rec, uint32_t* rows) {
    *rows = std::min(strip_rows, h - i * strip_rows);
    const size_t row_bytes = size_t(w) * step;
    rec.resize(row_bytes * *rows);
    for (uint32_t y = 0; y < *rows; ++y)
      std::memcpy(rec.data() + y * row_bytes, px + (size_t(i) * strip_rows + y) * stride, row_bytes);
  };
  // Pass 1: histograms of q per table (per thread, then summed: integers, so
  // the sum does not depend on which thread ran which strip).
  const int n_threads = pool ? pool->size() : 1;
  std::vector<std::vector<uint32_t>> hist(size_t(n_threads), std::vector<uint32_t>(n_tables * kMaxSymbols, 0));
  dsp::parallel_for(pool, strips, [&](int64_t i, int thread) {
    std::vector<uint8_t> rec;
    uint32_t rows;
    load(uint32_t(i), rec, &rows);
    uint32_t* hs = hist[size_t(thread)].data();
    run_strip(m, rec.data(), size_t(w) * step, step, w, rows, [&](int t, int pred, uint32_t x, uint32_t y, int c) {
      int q;
      const int r = quantise(m, pred, rec[(size_t(y) * w + x) * step + size_t(c)], &q);
      ++hs[size_t(t) * kMaxSymbols + size_t(q + 255)];
      return r;
    });
  });
  for (int i = 1; i < n_threads; ++i)
    for (size_t j = 0; j < hist[0].size(); ++j) hist[0][j] += hist[size_t(i)][j];
  std::vector<uint8_t> out = {uint8_t(kMethod), uint8_t(max_error), uint8_t(m.planes), uint8_t(kContexts)};
  put_u32(out, strip_rows);
  std::vector<uint16_t> freqs;
  std::vector<int32_t> counts(n_tables), offsets(n_tables);
  for (size_t t = 0; t < n_tables; ++t) write_table(hist[0].data() + t * kMaxSymbols, out, freqs, &counts[t], &offsets[t]);
  const OwnedTables tables = cdf_tables_from_freqs(freqs.data(), counts.data(), offsets.data(), n_tables);
  const CdfTables tv = tables.view();
  // Pass 2: the same model again, now coding.
  std::vector<std::vector<uint8_t>> streams(strips);
  dsp::parallel_for(pool, strips, [&](int64_t i, int) {
    std::vector<uint8_t> rec;
    uint32_t rows;
    load(uint32_t(i), rec, &rows);
    std::vector<int32_t> sym, idx;
    sym.reserve(size_t(w) * rows * size_t(m.planes));
    idx.reserve(sym.capacity());
    run_strip(m, rec.data(), size_t(w) * step, step, w, rows, [&](int t, int pred, uint32_t x, uint32_t y, int c) {
      int q;
      const int r = quantise(m, pred, rec[(size_t(y) * w + x) * step + size_t(c)], &q);
      sym.push_back(q);
      idx.push_back(t);
      return r;
    });
    rans_encode(sym.data(), idx.data(), sym.size(), tv, streams[size_t(i)]);
  });
  for (const auto& s : streams) {
    LMC_CHECK(s.size() <= 0xFFFFFFFFu, Status::LimitExceeded, "residual strip over 4 GiB");
    put_u32(out, uint32_t(s.size()));
  }
  for (const auto& s : streams) out.insert(out.end(), s.begin(), s.end());
  const uint64_t raw = kFixedHeader + uint64_t(w) * h * uint64_t(m.planes);
  if (out.size() <= raw) return out;
  // modelling did not pay (noise): the samples as they are, exact
  out.assign({uint8_t(kMethodRaw), uint8_t(max_error), uint8_t(m.planes), 0, 0, 0, 0, 0});
  out.reserve(size_t(raw));
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x)
      for (int c = 0; c < m.planes; ++c) out.push_back(px[size_t(y) * stride + size_t(x) * step + size_t(c)]);
  return out;
}

void check_residual(const uint8_t* data, size_t size, uint32_t w, uint32_t h, uint32_t channels) {
  parse(data, size, w, h, channels);
}

int residual_max_error(const uint8_t* data, size_t size) {
  if (!data || size < kFixedHeader) corrupt("truncated header");
  return data[1];
}

void decode_residual(const uint8_t* data, size_t size, uint32_t w, uint32_t h, uint32_t channels, uint8_t* out,
                     dsp::ThreadPool* pool) {
  const Parsed ps = parse(data, size, w, h, channels);
  const size_t n = size_t(w) * h;
  if (ps.raw) {
    const uint8_t* p = data + kFixedHeader;
    for (size_t i = 0; i < n; ++i)
      for (int c = 0; c < 3; ++c) out[i * 3 + size_t(c)] = p[i * size_t(ps.planes) + size_t(ps.planes == 3 ? c : 0)];
    return;
  }
  const Model m(ps.k, ps.planes);
  const CdfTables tv = ps.tables.view();
  const size_t step = 3, stride = size_t(w) * 3;
  dsp::parallel_for(pool, ps.strips, [&](int64_t i, int) {
    const uint32_t y0 = uint32_t(i) * ps.strip_rows, rows = std::min(ps.strip_rows, h - y0);
    RansDecoder dec(ps.stream[size_t(i)], ps.stream_size[size_t(i)], size_t(w) * rows * size_t(ps.planes), tv);
    run_strip(m, out + size_t(y0) * stride, stride, step, w, rows, [&](int t, int pred, uint32_t, uint32_t, int) {
      int32_t q;
      const int32_t ti = t;
      dec.decode(&ti, 1, &q);
      if (q < -255 || q > 255) corrupt("residual out of range");
      return clamp255(pred + q * m.s);
    });
    dec.finish();
    if (ps.planes == 1)  // gray: the plane in all three channels
      for (uint8_t *p = out + size_t(y0) * stride, *e = p + size_t(rows) * stride; p < e; p += 3) p[1] = p[2] = p[0];
  });
}

void ResidualCodec::encode(const EncodeRequest& r, std::vector<Chunk>& chunks) const {
  progress(0, 1);
  chunks.push_back(Chunk{kResidual, encode_residual(r.pixels, r.width, r.height, r.stride, r.channels, max_error_, r.pool)});
  progress(1, 1);
}

namespace {
const ChunkView& resd_chunk(const ContainerView& v) {
  const ChunkView* c = v.find(kResidual);
  LMC_CHECK(c != nullptr, Status::CorruptStream, "stream has no residual chunk");
  return *c;
}
}  // namespace

void ResidualCodec::check(const ContainerView& v) const {
  const ChunkView& c = resd_chunk(v);
  check_residual(c.data, c.size, v.header.width, v.header.height, v.header.channels);
}

void ResidualCodec::decode(const ContainerView& v, const DecodeRequest& r, uint8_t* rgb) const {
  const ChunkView& c = resd_chunk(v);
  progress(0, 1);
  decode_residual(c.data, c.size, v.header.width, v.header.height, v.header.channels, rgb, r.pool);
  progress(1, 1);
}

}  // namespace lmc
