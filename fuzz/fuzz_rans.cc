// libFuzzer target: lmc::rans_decode (and rans_encode round trips) with a
// fixed set of tables chosen to hit the coder's edge cases.
//
// Input layout:
//   byte 0      mode: bit 0 = 0 decode arbitrary bytes, 1 round trip symbols
//   bytes 1..2  symbol count n (u16 LE, taken modulo 4096)
//   byte 3      index pattern: table of symbol i = (i * a + b) % kTables with
//               a = byte3 >> 4, b = byte3 & 15  (a = 0: every symbol uses b)
//   bytes 4..   decode mode: the rANS stream
//               round-trip mode: n int32 LE symbols (missing ones are 0; the
//               bytes are reused cyclically)
// Properties checked:
//   * decode never crashes / reads out of bounds; failures are CorruptStream;
//   * a stream that decodes re-encodes to exactly the same bytes (the stream
//     format is canonical: see rans.h);
//   * any symbols round-trip through encode/decode.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "util/error.h"
#include "core/rans.h"

namespace {

using TableSet = lmc::OwnedTables;

TableSet make_tables() {
  std::vector<std::vector<uint32_t>> cdfs;
  std::vector<int32_t> offsets;
  auto add = [&](const std::vector<double>& pmf, int32_t offset) {
    cdfs.push_back(lmc::pmf_to_quantized_cdf(pmf.data(), pmf.size()));
    offsets.push_back(offset);
  };
  auto laplace = [](size_t n, double b, double mass) {
    std::vector<double> p(n);
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += p[i] = std::exp(-std::fabs(double(i) - double(n / 2)) / b);
    for (double& v : p) v *= mass / s;
    return p;
  };
  add(laplace(33, 3.0, 0.999), -16);                            // 0: typical latent table
  add({1.0}, 0);                                                // 1: one regular symbol, escape freq 1
  add(laplace(9, 1.0, 0.5), INT32_MAX - 4);                     // 2: range crosses INT32_MAX (regular_limit)
  add(laplace(9, 1.0, 0.9), INT32_MIN);                         // 3: starts at INT32_MIN
  add(std::vector<double>(256, 1.0 / 256), 0);                  // 4: uniform bytes (alpha-like)
  std::vector<double> skew(1000, 1e-9);
  skew[0] = 0.9999;
  add(skew, -500);                                              // 5: extreme skew, many freq-1 symbols
  add(std::vector<double>(2, 0.0), 7);                          // 6: all mass on escape
  add(laplace(4000, 400.0, 0.99), -2000);                       // 7: large table (lut_bits = 12)
  TableSet t = lmc::cdf_tables_from_cdfs(cdfs, offsets);
  lmc::validate_tables(t.view());
  return t;
}

const TableSet& tables() {
  static const TableSet t = make_tables();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const TableSet& ts = tables();
  const lmc::CdfTables tv = ts.view();
  const bool roundtrip = data[0] & 1;
  const size_t n = (size_t(data[1]) | size_t(data[2]) << 8) % 4096;
  const size_t a = data[3] >> 4, b = data[3] & 15;
  std::vector<int32_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = int32_t((i * a + b) % tv.count);
  const uint8_t* body = data + 4;
  const size_t body_size = size - 4;

  if (!roundtrip) {
    std::vector<int32_t> sym(n);
    try {
      lmc::rans_decode(body, body_size, idx.data(), n, tv, sym.data());
    } catch (const lmc::Error& e) {
      if (e.code() != lmc::Status::CorruptStream) {
        std::fprintf(stderr, "fuzz_rans: unexpected status %d: %s\n", int(e.code()), e.what());
        __builtin_trap();
      }
      return 0;
    }
    std::vector<uint8_t> again;
    lmc::rans_encode(sym.data(), idx.data(), n, tv, again);
    if (again.size() != body_size || (body_size && std::memcmp(again.data(), body, body_size) != 0)) {
      std::fprintf(stderr, "fuzz_rans: accepted stream is not canonical (%zu vs %zu bytes)\n", body_size, again.size());
      __builtin_trap();
    }
    return 0;
  }

  std::vector<int32_t> sym(n, 0);
  if (body_size > 0) {
    for (size_t i = 0; i < n; ++i) {
      uint32_t v = 0;
      for (int k = 0; k < 4; ++k) v |= uint32_t(body[(4 * i + k) % body_size]) << (8 * k);
      sym[i] = int32_t(v);
    }
  }
  std::vector<uint8_t> stream;
  lmc::rans_encode(sym.data(), idx.data(), n, tv, stream);
  std::vector<int32_t> out(n, 0x5A5A5A5A);
  lmc::rans_decode(stream.data(), stream.size(), idx.data(), n, tv, out.data());  // must not throw
  if (out != sym) __builtin_trap();
  return 0;
}
