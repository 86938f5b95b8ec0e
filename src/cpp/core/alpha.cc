#include "core/alpha.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"
#include "core/rans.h"

namespace lmc {
namespace {

inline int med(int a, int b, int c) {  // a = left, b = up, c = up-left
  int mx = std::max(a, b), mn = std::min(a, b);
  if (c >= mx) return mn;
  if (c <= mn) return mx;
  return a + b - c;
}

template <typename Get>
inline int predict(Get get, uint32_t x, uint32_t y) {
  if (y == 0) return x == 0 ? 255 : get(x - 1, 0);
  if (x == 0) return get(0, y - 1);
  return med(get(x - 1, y), get(x, y - 1), get(x - 1, y - 1));
}

}  // namespace

std::vector<uint8_t> encode_alpha(const uint8_t* a, uint32_t w, uint32_t h, size_t stride, size_t step) {
  auto get = [&](uint32_t x, uint32_t y) { return int(a[size_t(y) * stride + size_t(x) * step]); };
  uint8_t first = a[0];
  bool constant = true;
  for (uint32_t y = 0; y < h && constant; ++y)
    for (uint32_t x = 0; x < w; ++x)
      if (get(x, y) != first) {
        constant = false;
        break;
      }
  if (constant) return {0, first};
  size_t n = size_t(w) * h;
  std::vector<int32_t> res(n);
  std::vector<double> hist(256, 0.0);
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x) {
      int r = (get(x, y) - predict(get, x, y)) & 255;
      res[size_t(y) * w + x] = r;
      hist[size_t(r)] += 1.0;
    }
  for (double& v : hist) v /= double(n);
  const std::vector<uint32_t> cdf = pmf_to_quantized_cdf(hist.data(), 256);  // 258 entries
  std::vector<uint8_t> out;
  out.push_back(1);
  for (uint16_t f : cdf_to_freqs(cdf)) {  // 257
    out.push_back(uint8_t(f & 255));
    out.push_back(uint8_t(f >> 8));
  }
  const OwnedTables tables = cdf_tables_from_cdfs({cdf}, {0});
  const CdfTables t = tables.view();
  std::vector<int32_t> idx(n, 0);
  rans_encode(res.data(), idx.data(), n, t, out);
  return out;
}

namespace {
// Reads and validates a mode-1 table (257 frequencies, 258 CDF entries).
OwnedTables alpha_table(const uint8_t* data, size_t size) {
  LMC_CHECK(size >= 1 + 2 * 257, Status::CorruptStream, "alpha chunk truncated");
  uint16_t freqs[257];
  uint32_t total = 0;
  for (size_t i = 0; i < 257; ++i) {
    uint32_t f = uint32_t(data[1 + 2 * i]) | uint32_t(data[2 + 2 * i]) << 8;
    LMC_CHECK(f >= 1, Status::CorruptStream, "alpha table has a zero frequency");
    freqs[i] = uint16_t(f);
    total += f;
  }
  LMC_CHECK(total == kCdfTotal, Status::CorruptStream, "alpha table does not sum to 2^16");
  const int32_t count = 257, offset = 0;
  return cdf_tables_from_freqs(freqs, &count, &offset, 1);
}
}  // namespace

void check_alpha(const uint8_t* data, size_t size, uint32_t w, uint32_t h) {
  LMC_CHECK(size >= 1, Status::CorruptStream, "alpha chunk is empty");
  if (data[0] == 0) {
    LMC_CHECK(size == 2, Status::CorruptStream, "bad constant alpha chunk");
    return;
  }
  LMC_CHECK(data[0] == 1, Status::CorruptStream, "unknown alpha coding mode");
  const OwnedTables tables = alpha_table(data, size);
  const double bits = double(w) * double(h) * rans_min_symbol_bits(rans_max_frequency(tables.view(), 0));
  const size_t stream = size - 1 - 2 * 257;
  LMC_CHECK(bits <= rans_capacity_bits(stream), Status::CorruptStream,
            "alpha stream of " + std::to_string(stream) + " bytes cannot hold a " + std::to_string(w) + "x" +
                std::to_string(h) + " alpha plane");
}

void decode_alpha(const uint8_t* data, size_t size, uint32_t w, uint32_t h, uint8_t* out, size_t step) {
  check_alpha(data, size, w, h);
  size_t n = size_t(w) * h;
  if (data[0] == 0) {
    for (size_t i = 0; i < n; ++i) out[i * step] = data[1];
    return;
  }
  const OwnedTables tables = alpha_table(data, size);
  const CdfTables t = tables.view();
  RansDecoder dec(data + 1 + 2 * 257, size - 1 - 2 * 257, n, t);
  std::vector<int32_t> idx(w, 0), res(w);
  auto get = [&](uint32_t x, uint32_t y) { return int(out[(size_t(y) * w + x) * step]); };
  for (uint32_t y = 0; y < h; ++y) {
    dec.decode(idx.data(), w, res.data());
    for (uint32_t x = 0; x < w; ++x) {
      int32_t r = res[x];
      LMC_CHECK(r >= 0 && r < 256, Status::CorruptStream, "alpha residual out of range");
      out[(size_t(y) * w + x) * step] = uint8_t((predict(get, x, y) + r) & 255);
    }
  }
  dec.finish();
}

}  // namespace lmc
