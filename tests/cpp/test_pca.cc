// Unit tests for the linear baseline codec (core/pca_codec.h).
//
// Most tests use a tiny synthetic model written by a minimal .lmw writer
// (identity basis, so at the finest step the codec is lossless); the last
// one uses the committed python/lmcodec/models/pca.lmw when it is present.
// Payload identity with the Python reference is tested in tests/test_pca.py.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "util/crc32.h"
#include "core/pca_codec.h"
#include "core/rans.h"
#include "core/weights.h"

using lmc::PcaCodec;
using lmc::Status;

namespace {

constexpr int kDim = PcaCodec::kDim;

// ------------------------------------------------- minimal .lmw writer ---

struct Tensor {
  uint8_t dtype;
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;
};

struct Spec {
  std::map<std::string, int64_t> ints;
  std::map<std::string, std::vector<int64_t>> arrays;
  std::map<std::string, std::string> strs;
  std::map<std::string, Tensor> tensors;
};

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(uint8_t(uint64_t(v) >> (8 * i)));
}

void put_key(std::vector<uint8_t>& out, const std::string& k) {
  put<uint16_t>(out, uint16_t(k.size()));
  out.insert(out.end(), k.begin(), k.end());
}

std::vector<uint8_t> serialize(const Spec& s) {
  std::vector<uint8_t> out = {'L', 'M', 'C', 'W'};
  put<uint32_t>(out, 1);
  put<uint32_t>(out, uint32_t(s.ints.size() + s.arrays.size() + s.strs.size()));
  put<uint32_t>(out, uint32_t(s.tensors.size()));
  for (const auto& kv : s.ints) {
    put_key(out, kv.first);
    out.push_back(0);
    put<int64_t>(out, kv.second);
  }
  for (const auto& kv : s.arrays) {
    put_key(out, kv.first);
    out.push_back(3);
    put<uint32_t>(out, uint32_t(kv.second.size()));
    for (int64_t v : kv.second) put<int64_t>(out, v);
  }
  for (const auto& kv : s.strs) {
    put_key(out, kv.first);
    out.push_back(2);
    put<uint32_t>(out, uint32_t(kv.second.size()));
    out.insert(out.end(), kv.second.begin(), kv.second.end());
  }
  uint64_t off = 0;
  std::vector<uint8_t> blob;
  for (const auto& kv : s.tensors) {
    put_key(out, kv.first);
    out.push_back(kv.second.dtype);
    out.push_back(uint8_t(kv.second.dims.size()));
    for (uint32_t d : kv.second.dims) put<uint32_t>(out, d);
    put<uint64_t>(out, off);
    put<uint64_t>(out, kv.second.data.size());
    blob.insert(blob.end(), kv.second.data.begin(), kv.second.data.end());
    while (blob.size() % 64) blob.push_back(0);
    off = blob.size();
  }
  while (out.size() % 64) out.push_back(0);
  out.insert(out.end(), blob.begin(), blob.end());
  put<uint32_t>(out, lmc::crc32(out.data(), out.size()));
  return out;
}

template <typename T>
Tensor tensor(uint8_t dtype, std::vector<uint32_t> dims, const std::vector<T>& v) {
  Tensor t{dtype, std::move(dims), {}};
  t.data.resize(v.size() * sizeof(T));
  std::memcpy(t.data.data(), v.data(), t.data.size());
  return t;
}

// Identity basis, mean 128, a small bank of Laplacian tables.
Spec tiny_spec() {
  Spec s;
  s.strs["model"] = "pca";
  s.ints["pca.block"] = 8;
  s.ints["pca.channels"] = 3;
  s.ints["pca.basis_frac"] = 14;
  s.ints["quant.logstep_max"] = 448;
  s.ints["quant.logstep_min"] = -256;  // step 1/16: lossless with an identity basis
  std::vector<int64_t> e(64);
  for (int j = 0; j < 64; ++j) e[size_t(j)] = std::llround(std::exp2(j / 64.0) * 65536);
  s.arrays["quant.exp2_q16"] = e;
  s.ints["quant.round_q8"] = 96;
  s.ints["quant.recon_q8"] = 0;
  const int T = 12;
  s.ints["tables.count"] = T;
  s.ints["tables.step"] = 64;
  s.ints["tables.base"] = -4 * 64 - 32;
  std::vector<uint16_t> freqs;
  std::vector<int32_t> lengths, offsets;
  for (int t = 0; t < T; ++t) {
    const double theta = std::exp2(t - 4.0);
    const int H = int(std::min(300.0, std::ceil(8 * theta) + 2));
    std::vector<double> pmf(size_t(2 * H + 1));
    for (int v = -H; v <= H; ++v) pmf[size_t(v + H)] = std::exp(-std::abs(v) / theta);
    double sum = 0;
    for (double p : pmf) sum += p;
    for (double& p : pmf) p /= sum * 1.001;
    std::vector<uint32_t> cdf = lmc::pmf_to_quantized_cdf(pmf.data(), pmf.size());
    for (uint16_t f : lmc::cdf_to_freqs(cdf)) freqs.push_back(f);
    lengths.push_back(int32_t(cdf.size() - 1));
    offsets.push_back(-H);
  }
  s.tensors["tables.freqs"] = tensor<uint16_t>(5, {uint32_t(freqs.size())}, freqs);
  s.tensors["tables.lengths"] = tensor<int32_t>(4, {uint32_t(T)}, lengths);
  s.tensors["tables.offsets"] = tensor<int32_t>(4, {uint32_t(T)}, offsets);
  std::vector<int16_t> mean(kDim, 128), basis(size_t(kDim) * kDim, 0);
  for (int j = 0; j < kDim; ++j) basis[size_t(j) * kDim + size_t(j)] = 1 << 14;
  std::vector<int32_t> logscale(kDim), predict(kDim, 0);
  for (int k = 0; k < kDim; ++k) logscale[size_t(k)] = 5 * 64 - k;  // scale ~ 32 .. 4 pixel units
  predict[0] = predict[5] = 1;
  s.tensors["pca.mean"] = tensor<int16_t>(3, {uint32_t(kDim)}, mean);
  s.tensors["pca.basis"] = tensor<int16_t>(3, {uint32_t(kDim), uint32_t(kDim)}, basis);
  s.tensors["pca.logscale"] = tensor<int32_t>(4, {uint32_t(kDim)}, logscale);
  s.tensors["pca.predict"] = tensor<int32_t>(4, {uint32_t(kDim)}, predict);
  return s;
}

PcaCodec make(const Spec& s) { return PcaCodec(lmc::Weights::from_bytes(serialize(s))); }

std::vector<uint8_t> test_image(uint32_t w, uint32_t h, uint64_t seed, int noise) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> img(size_t(w) * h * 3);
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        double v = 128 + 90 * std::sin(0.05 * x * (c + 1) + 0.03 * y) + (x > w / 2 ? 30 : -30);
        v += noise ? int(rng() % uint64_t(2 * noise + 1)) - noise : 0;
        img[(size_t(y) * w + x) * 3 + size_t(c)] = uint8_t(std::min(255.0, std::max(0.0, v)));
      }
  return img;
}

double psnr(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double se = 0;
  for (size_t i = 0; i < a.size(); ++i) se += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  if (se == 0) return 99;
  return 10 * std::log10(255.0 * 255.0 * a.size() / se);
}

// ---------------------------------------------------------------- tests ---

void test_mappings() {
  PcaCodec c = make(tiny_spec());
  CHECK_EQ(c.log_step(100), 448);
  CHECK_EQ(c.log_step(10000), -256);
  CHECK_EQ(c.step_fp(0), 65536);
  CHECK_EQ(c.step_fp(64), 131072);
  CHECK_EQ(c.step_fp(-256), 4096);
  CHECK_EQ(c.step_fp(-1), std::llround(std::exp2(63 / 64.0) * 65536) >> 1);
  for (int q = 101; q <= 10000; ++q) CHECK(c.log_step(uint16_t(q)) <= c.log_step(uint16_t(q - 1)));
  // index = clamp(floor((320 - k - ls + 288) / 64), 0, 11)
  CHECK_EQ(c.table_index(0, 448), 2);
  CHECK_EQ(c.table_index(0, -256), 11);
  CHECK_EQ(c.table_index(0, 545), 0);
  CHECK_EQ(c.table_index(0, 544), 1);
  CHECK_EQ(c.table_index(1, 544), 0);
  CHECK_EQ(c.table_index(0, 100000), 0);
  CHECK_THROWS(c.log_step(99), Status::InvalidArgument);
  CHECK_THROWS(c.log_step(10001), Status::InvalidArgument);
}

void test_lossless_and_sizes() {
  PcaCodec c = make(tiny_spec());
  const uint32_t sizes[][2] = {{1, 1}, {7, 9}, {8, 8}, {63, 65}, {40, 17}};
  for (const auto& wh : sizes) {
    const uint32_t w = wh[0], h = wh[1];
    std::vector<uint8_t> img = test_image(w, h, w * 100 + h, 20);
    std::vector<uint8_t> p = c.encode(img.data(), w, h, size_t(w) * 3, 10000);
    std::vector<uint8_t> out(img.size(), 7);
    c.decode(p.data(), p.size(), w, h, 10000, out.data());
    CHECK(out == img);  // identity basis + step 1/16: exact
    // a padded row stride gives the same payload
    const size_t stride = size_t(w) * 3 + 5;
    std::vector<uint8_t> padded(stride * h, 0xAB);
    for (uint32_t y = 0; y < h; ++y) std::memcpy(&padded[y * stride], &img[size_t(y) * w * 3], size_t(w) * 3);
    CHECK(c.encode(padded.data(), w, h, stride, 10000) == p);
    CHECK_THROWS(c.encode(img.data(), w, h, size_t(w) * 3 - 1, 10000), Status::InvalidArgument);
  }
  std::vector<uint8_t> one(3, 0);
  CHECK_THROWS(c.encode(one.data(), 0, 1, 3, 5000), Status::InvalidArgument);
  CHECK_THROWS(c.decode(nullptr, 0, 1, 0, 5000, one.data()), Status::InvalidArgument);
}

void test_rate_monotone() {
  PcaCodec c = make(tiny_spec());
  const uint32_t w = 64, h = 48;
  std::vector<uint8_t> img = test_image(w, h, 1, 6);
  size_t prev = 0;
  double prev_psnr = 0;
  for (int q : {100, 1000, 2500, 5000, 7500, 9000, 10000}) {
    std::vector<uint8_t> p = c.encode(img.data(), w, h, size_t(w) * 3, uint16_t(q));
    std::vector<uint8_t> out(img.size());
    c.decode(p.data(), p.size(), w, h, uint16_t(q), out.data());
    const double ps = psnr(img, out);
    CHECK(p.size() > prev);
    CHECK(ps > prev_psnr || ps == 99);  // 99: exact (the finest steps are lossless here)
    prev = p.size();
    prev_psnr = ps;
  }
}

void test_corrupt() {
  PcaCodec c = make(tiny_spec());
  const uint32_t w = 24, h = 16;
  std::vector<uint8_t> img = test_image(w, h, 3, 10);
  std::vector<uint8_t> p = c.encode(img.data(), w, h, size_t(w) * 3, 6000);
  std::vector<uint8_t> out(img.size());
  std::vector<uint8_t> bad(p.begin(), p.end() - 1);
  CHECK_THROWS(c.decode(bad.data(), bad.size(), w, h, 6000, out.data()), Status::CorruptStream);
  bad = p;
  bad.push_back(0);
  CHECK_THROWS(c.decode(bad.data(), bad.size(), w, h, 6000, out.data()), Status::CorruptStream);
  CHECK_THROWS(c.decode(p.data(), 0, w, h, 6000, out.data()), Status::CorruptStream);
  int thrown = 0, flips = 0;
  for (size_t i = 0; i < p.size(); i += 3) {
    bad = p;
    bad[i] ^= uint8_t(1u << (i % 8));
    ++flips;
    try {
      c.decode(bad.data(), bad.size(), w, h, 6000, out.data());
    } catch (const lmc::Error& e) {
      CHECK(e.code() == Status::CorruptStream);
      ++thrown;
    }
  }
  CHECK(thrown * 2 > flips);
  // a coefficient beyond the decoder's bound (escaped huge value)
  const size_t n = size_t(3) * 2 * kDim;
  std::vector<int32_t> sym(n, 0), idx(n, 0);
  sym[kDim + 7] = 1 << 24;
  Spec s = tiny_spec();  // logscale 0: every coefficient uses table 0 at quality 1
  s.tensors["pca.logscale"] = tensor<int32_t>(4, {uint32_t(kDim)}, std::vector<int32_t>(kDim, 0));
  PcaCodec c0 = make(s);
  std::vector<int32_t> lengths(1), offsets(1, -1);
  // table 0 of the tiny model is the narrowest; rebuild it for rans_encode
  const Tensor& f = s.tensors["tables.freqs"];
  const Tensor& l = s.tensors["tables.lengths"];
  const Tensor& o = s.tensors["tables.offsets"];
  std::memcpy(&lengths[0], l.data.data(), 4);
  std::memcpy(&offsets[0], o.data.data(), 4);
  std::vector<uint16_t> freqs(static_cast<size_t>(lengths[0]));
  std::memcpy(freqs.data(), f.data.data(), 2 * freqs.size());
  const lmc::OwnedTables tables = lmc::cdf_tables_from_freqs(freqs.data(), lengths.data(), offsets.data(), 1);
  const lmc::CdfTables t = tables.view();
  std::vector<uint8_t> big;
  lmc::rans_encode(sym.data(), idx.data(), n, t, big);
  for (int k = 0; k < kDim; ++k) CHECK_EQ(c0.table_index(k, c0.log_step(100)), 0);
  std::vector<uint8_t> out2(size_t(24) * 16 * 3);
  CHECK_THROWS(c0.decode(big.data(), big.size(), 24, 16, 100, out2.data()), Status::CorruptStream);
  sym[kDim + 7] = 3;  // in range: decodes
  big.clear();
  lmc::rans_encode(sym.data(), idx.data(), n, t, big);
  c0.decode(big.data(), big.size(), 24, 16, 100, out2.data());
}

void test_validation() {
  auto expect_bad = [](Spec s) { CHECK_THROWS(make(s), Status::InvalidArgument); };
  {
    Spec s = tiny_spec();
    s.strs["model"] = "hyperprior";
    expect_bad(s);
  }
  for (const char* key : {"pca.block", "quant.logstep_max", "quant.round_q8", "tables.count", "tables.step"}) {
    Spec s = tiny_spec();
    s.ints.erase(key);
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();
    s.ints["quant.logstep_min"] = -257;
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();
    s.ints["quant.logstep_max"] = 640;
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();
    s.ints["quant.round_q8"] = 129;
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();
    s.ints["tables.step"] = 0;
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();
    s.arrays["quant.exp2_q16"].pop_back();
    expect_bad(s);
  }
  for (const char* name : {"pca.mean", "pca.basis", "pca.logscale", "pca.predict", "tables.freqs", "tables.lengths",
                           "tables.offsets"}) {
    Spec s = tiny_spec();
    s.tensors.erase(name);
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();  // basis entry out of range
    int16_t v = 20000;
    std::memcpy(s.tensors["pca.basis"].data.data() + 2 * 5, &v, 2);
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();  // a basis too large for the coefficient bound
    std::vector<int16_t> b(size_t(kDim) * kDim, 1 << 14);
    s.tensors["pca.basis"] = tensor<int16_t>(3, {uint32_t(kDim), uint32_t(kDim)}, b);
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();
    int16_t v = 300;
    std::memcpy(s.tensors["pca.mean"].data.data(), &v, 2);
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();
    int32_t v = 2;
    std::memcpy(s.tensors["pca.predict"].data.data(), &v, 4);
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();  // a zero frequency
    std::memset(s.tensors["tables.freqs"].data.data(), 0, 2);
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();  // lengths do not add up
    int32_t v;
    std::memcpy(&v, s.tensors["tables.lengths"].data.data(), 4);
    v += 1;
    std::memcpy(s.tensors["tables.lengths"].data.data(), &v, 4);
    expect_bad(s);
  }
  {
    Spec s = tiny_spec();  // wrong dtype
    std::vector<float> m(kDim, 128.f);
    s.tensors["pca.mean"] = tensor<float>(0, {uint32_t(kDim)}, m);
    expect_bad(s);
  }
}

void test_committed_model() {
  std::string path = __FILE__;
  path = path.substr(0, path.find_last_of("/\\") + 1) + "../../python/lmcodec/models/pca.lmw";
  if (!std::ifstream(path).good()) {
    std::printf("skipping the committed-model test (%s not found)\n", path.c_str());
    return;
  }
  PcaCodec c(lmc::Weights::from_file(path));
  const uint32_t w = 67, h = 45;
  std::vector<uint8_t> img = test_image(w, h, 9, 4);
  double prev_psnr = 0;
  size_t prev = 0;
  for (int q : {100, 2500, 5000, 7500, 10000}) {
    std::vector<uint8_t> p = c.encode(img.data(), w, h, size_t(w) * 3, uint16_t(q));
    std::vector<uint8_t> out(img.size());
    c.decode(p.data(), p.size(), w, h, uint16_t(q), out.data());
    const double ps = psnr(img, out);
    CHECK(ps > prev_psnr && p.size() > prev);
    prev_psnr = ps;
    prev = p.size();
  }
  CHECK(prev_psnr > 40);
}

}  // namespace

int main() {
  test_mappings();
  test_lossless_and_sizes();
  test_rate_monotone();
  test_corrupt();
  test_validation();
  test_committed_model();
  return check_summary();
}
