// Whole-codec bit-identity across kernel paths, through the public C API:
// for every path this build and CPU can run (scalar, avx2, avx512 -- the
// latter also in the SIMDe-emulation test build), the committed golden
// streams must decode to the same pixels as on the scalar path (1 and 2
// threads), and the encoder must write the same bytes (RGB and RGBA images,
// several qualities, RDO and plain rounding, strips). The golden pixels
// themselves are checked against their hash by tests/test_golden.py.
//
//   test_paths [model_dir] [data_dir]
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "check.h"
#include "lmcodec.h"

namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

struct Run {
  std::vector<uint8_t> bytes;
  lmc_status status = LMC_OK;
};

Run decode(const lmc_model* m, const std::vector<uint8_t>& data, int threads, int strip_rows) {
  lmc_decode_options o;
  std::memset(&o, 0, sizeof(o));
  o.threads = threads;
  o.strip_rows = strip_rows;
  uint8_t* px = nullptr;
  lmc_image_info info;
  Run r;
  r.status = lmc_decode(m, data.data(), data.size(), &o, &px, &info);
  if (r.status == LMC_OK) r.bytes.assign(px, px + size_t(info.width) * info.height * info.channels);
  lmc_free(px);
  return r;
}

Run encode_with(const lmc_model* m, const std::vector<uint8_t>& img, uint32_t w, uint32_t h, uint32_t ch, float q,
                const lmc_encode_options& o) {
  uint8_t* data = nullptr;
  size_t n = 0;
  Run r;
  r.status = lmc_encode(m, img.data(), w, h, size_t(w) * ch, ch, q, &o, &data, &n);
  if (r.status == LMC_OK) r.bytes.assign(data, data + n);
  lmc_free(data);
  return r;
}

Run encode(const lmc_model* m, const std::vector<uint8_t>& img, uint32_t w, uint32_t h, uint32_t ch, float q,
           int threads, int strip_rows, int plain) {
  lmc_encode_options o;
  std::memset(&o, 0, sizeof(o));
  o.threads = threads;
  o.strip_rows = strip_rows;
  o.plain_rounding = plain;
  return encode_with(m, img, w, h, ch, q, o);
}

// An encode with a spatial quality map (one offset per 64x64 block).
Run encode_map(const lmc_model* m, const std::vector<uint8_t>& img, uint32_t w, uint32_t h, float q, int threads,
               const int8_t* map, uint32_t cols, uint32_t rows) {
  lmc_encode_options o;
  std::memset(&o, 0, sizeof(o));
  o.threads = threads;
  o.quality_map = map;
  o.quality_map_cols = cols;
  o.quality_map_rows = rows;
  return encode_with(m, img, w, h, 3, q, o);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mdir = argc > 1 ? argv[1] : LMC_TEST_MODEL_DIR;
  const std::string ddir = argc > 2 ? argv[2] : LMC_TEST_DATA_DIR;
  lmc_model* hyper = nullptr;
  lmc_model* pca = nullptr;
  if (lmc_model_open((mdir + "/hyperprior.lmw").c_str(), &hyper) != LMC_OK ||
      lmc_model_open((mdir + "/pca.lmw").c_str(), &pca) != LMC_OK) {
    std::fprintf(stderr, "cannot open the models in %s: %s\n", mdir.c_str(), lmc_last_error());
    return 1;
  }
  const std::vector<uint8_t> golden_h = read_file(ddir + "/golden_hyperprior.lmc");
  const std::vector<uint8_t> golden_p = read_file(ddir + "/golden_pca.lmc");
  CHECK(!golden_h.empty() && !golden_p.empty());

  // test images: smooth + texture (RGB, 97 x 61: odd sizes, partial tiles)
  // and RGBA with an alpha ramp (40 x 33)
  const uint32_t W = 97, H = 61, W2 = 40, H2 = 33;
  std::vector<uint8_t> rgb(size_t(W) * H * 3), rgba(size_t(W2) * H2 * 4);
  for (size_t i = 0; i < rgb.size(); ++i) {
    const double x = double((i / 3) % W), y = double((i / 3) / W), c = double(i % 3);
    rgb[i] = uint8_t(128 + 60 * std::sin(x / 7 + c) * std::cos(y / 5) + 30 * std::sin(x * y / 300));
  }
  for (size_t i = 0; i < rgba.size(); ++i) {
    const size_t p = i / 4;
    const double x = double(p % W2), y = double(p / W2);
    rgba[i] = (i % 4 == 3) ? uint8_t(255 * x / (W2 - 1)) : uint8_t(100 + 80 * std::cos((x + 2 * y) / 4 + double(i % 4)));
  }

  std::vector<std::string> paths;
  for (const char* n : {"scalar", "avx2", "avx512"})
    if (lmc_kernels_available(n)) paths.push_back(n);
  CHECK(!paths.empty() && paths[0] == "scalar");
  CHECK(lmc_set_kernels("neon") == nullptr && std::strlen(lmc_last_error()) > 0);

  // per path: every result, in a fixed order
  std::vector<std::vector<Run>> results;
  for (const std::string& p : paths) {
    const char* active = lmc_set_kernels(p.c_str());
    CHECK(active != nullptr && p == active);
    std::vector<Run> r;
    for (int threads : {1, 2}) {
      r.push_back(decode(hyper, golden_h, threads, 0));
      r.push_back(decode(pca, golden_p, threads, 0));
    }
    for (float q : {15.f, 60.f, 92.f})
      for (int plain : {0, 1}) r.push_back(encode(hyper, rgb, W, H, 3, q, 1, 0, plain));
    r.push_back(encode(hyper, rgb, W, H, 3, 50.f, 2, 32, 0));  // strips, 2 threads
    r.push_back(encode(hyper, rgba, W2, H2, 4, 70.f, 1, 0, 0));
    r.push_back(encode(pca, rgb, W, H, 3, 70.f, 2, 0, 0));
    const size_t nenc = r.size();
    for (size_t i = 4; i < nenc; ++i) r.push_back(decode(i + 1 == nenc ? pca : hyper, r[i].bytes, 2, 0));
    r.push_back(decode(hyper, r[10].bytes, 1, 16));  // the strip stream, other strip height
    // a quality-map stream (QMAP): per-block gains in the encoder and the decoder
    const int8_t qmap[2] = {25, -20};
    const size_t qi = r.size();
    r.push_back(encode_map(hyper, rgb, W, H, 45.f, 1, qmap, 2, 1));
    r.push_back(encode_map(hyper, rgb, W, H, 45.f, 2, qmap, 2, 1));
    r.push_back(decode(hyper, r[qi].bytes, 1, 0));
    r.push_back(decode(hyper, r[qi].bytes, 2, 0));
    CHECK(r[qi].bytes == r[qi + 1].bytes && r[qi + 2].bytes == r[qi + 3].bytes);
    lmc_image_info qinfo, pinfo;
    CHECK(lmc_info(r[qi].bytes.data(), r[qi].bytes.size(), nullptr, &qinfo) == LMC_OK &&
          (qinfo.flags & LMC_INFO_QUALITY_MAP) != 0);
    CHECK(lmc_info(r[4].bytes.data(), r[4].bytes.size(), nullptr, &pinfo) == LMC_OK &&
          (pinfo.flags & LMC_INFO_QUALITY_MAP) == 0);
    CHECK(encode_map(hyper, rgb, W, H, 45.f, 1, qmap, 1, 2).status == LMC_ERR_INVALID_ARGUMENT);  // wrong grid
    CHECK(encode_map(pca, rgb, W, H, 45.f, 1, qmap, 2, 1).status == LMC_ERR_INVALID_ARGUMENT);    // not hyperprior
    for (const Run& x : r) CHECK(x.status == LMC_OK && !x.bytes.empty());
    results.push_back(r);
  }
  for (size_t q = 1; q < results.size(); ++q) {
    int differ = 0;
    for (size_t i = 0; i < results[0].size(); ++i)
      if (results[q][i].bytes != results[0][i].bytes) {
        std::fprintf(stderr, "path %s: result %zu differs from scalar\n", paths[q].c_str(), i);
        ++differ;
      }
    CHECK(differ == 0);
  }
  // one thread == two threads on every path
  for (const auto& r : results) CHECK(r[0].bytes == r[2].bytes && r[1].bytes == r[3].bytes);
  lmc_set_kernels("auto");
  std::printf("paths:");
  for (const std::string& p : paths) std::printf(" %s", p.c_str());
  std::printf(" -> %zu results each, identical to scalar\n", results[0].size());
  lmc_model_close(hyper);
  lmc_model_close(pca);
  return check_summary();
}
