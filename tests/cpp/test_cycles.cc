// Many small encode/decode cycles through the public C API, with error paths
// mixed in: under LMCODEC_SANITIZE this is the LeakSanitizer run of the
// robustness issue (LSan reports any leak when the process exits); in a plain
// build it checks that resident memory stays flat (Linux /proc/self/statm).
//
//   test_cycles [cycles=10000] [model_dir]
//
// Every 10th cycle uses the hyperprior model, the others the PCA model; each
// cycle encodes a small image (1..40 px a side, gray / RGB / RGBA), decodes
// it, reads its info, and feeds the decoder a truncated and a bit-flipped
// copy (errors are expected; a flip that lands in an unchecked byte may still
// decode, and then the result is freed like any other).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "lmcodec.h"

namespace {

long rss_pages() {
#if defined(__linux__)
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size = 0, resident = -1;
  if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident;
#else
  return -1;
#endif
}

bool sanitized() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#endif
#endif
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const long cycles = argc > 1 ? std::atol(argv[1]) : 10000;
  const std::string dir = argc > 2 ? argv[2] : LMC_TEST_MODEL_DIR;
  lmc_model* models[2] = {nullptr, nullptr};
  if (lmc_model_open((dir + "/hyperprior.lmw").c_str(), &models[0]) != LMC_OK ||
      lmc_model_open((dir + "/pca.lmw").c_str(), &models[1]) != LMC_OK) {
    std::fprintf(stderr, "cannot open the models in %s: %s\n", dir.c_str(), lmc_last_error());
    return 1;
  }
  // a model file that is not one
  const uint8_t junk[64] = {1, 2, 3};
  lmc_model* bad = nullptr;
  CHECK(lmc_model_open_memory(junk, sizeof(junk), &bad) != LMC_OK && bad == nullptr);

  std::mt19937 rng(7);
  std::vector<uint8_t> img;
  lmc_encode_options eo = {1, 0, 0};
  {
    // the quantiser switch: both kinds of stream decode; other values are refused
    const uint32_t W = 128, H = 96;
    img.resize(size_t(W) * H * 3);
    for (size_t i = 0; i < img.size(); ++i) {
      const double x = double((i / 3) % W), y = double((i / 3) / W), c = double(i % 3);
      img[i] = uint8_t(128 + 60 * std::sin(x / 7 + c) * std::cos(y / 5) + 30 * std::sin(x * y / 300));
    }
    uint8_t *a = nullptr, *b = nullptr, *px = nullptr;
    size_t na = 0, nb = 0;
    lmc_encode_options plain = {1, 0, 1}, bogus = {1, 0, 2};
    // RDO trades rate for distortion, so its stream need not be the smaller
    // one on every image; the switch must change the streams, though (on a
    // given image and quality it may happen to flip no latent: with the
    // 22,280-step weights this image at quality 40 gives identical streams)
    int changed = 0;
    for (float q : {10.f, 70.f, 40.f}) {
      lmc_free(a);
      lmc_free(b);
      a = b = nullptr;
      CHECK(lmc_encode(models[0], img.data(), W, H, W * 3, 3, q, &eo, &a, &na) == LMC_OK);
      CHECK(lmc_encode(models[0], img.data(), W, H, W * 3, 3, q, &plain, &b, &nb) == LMC_OK);
      changed += (na != nb || std::memcmp(a, b, na) != 0) ? 1 : 0;
    }
    CHECK(changed >= 1);
    lmc_image_info info;
    lmc_decode_options d1 = {1, {0, 0, 0, 0}, 0};
    CHECK(lmc_decode(models[0], a, na, &d1, &px, &info) == LMC_OK);
    lmc_free(px);
    CHECK(lmc_decode(models[0], b, nb, &d1, &px, &info) == LMC_OK);
    lmc_free(px);
    lmc_free(a);
    lmc_free(b);
    a = nullptr;
    CHECK(lmc_encode(models[0], img.data(), W, H, W * 3, 3, 40.f, &bogus, &a, &na) == LMC_ERR_INVALID_ARGUMENT &&
          a == nullptr);
  }
  lmc_decode_options dopt;
  std::memset(&dopt, 0, sizeof(dopt));
  dopt.threads = 1;
  long before = -1, errors = 0, flip_decodes = 0;
  const long warmup = cycles / 10;
  for (long i = 0; i < cycles; ++i) {
    if (i == warmup) before = rss_pages();
    const lmc_model* m = models[i % 10 == 0 ? 0 : 1];
    const uint32_t w = 1 + rng() % 40, h = 1 + rng() % 40, ch = (i % 3 == 0) ? 1 : (i % 3 == 1 ? 3 : 4);
    img.resize(size_t(w) * h * ch);
    for (auto& v : img) v = uint8_t(rng());
    uint8_t* data = nullptr;
    size_t size = 0;
    if (lmc_encode(m, img.data(), w, h, size_t(w) * ch, ch, float(1 + i % 100), &eo, &data, &size) != LMC_OK) {
      std::fprintf(stderr, "encode failed at cycle %ld: %s\n", i, lmc_last_error());
      ++errors;
      continue;
    }
    uint8_t* px = nullptr;
    lmc_image_info info;
    CHECK(lmc_decode(m, data, size, &dopt, &px, &info) == LMC_OK);
    CHECK(px != nullptr && info.width == w && info.height == h && info.channels == ch);
    lmc_free(px);
    CHECK(lmc_info(data, size, nullptr, &info) == LMC_OK);
    // truncated: always an error, nothing allocated
    px = nullptr;
    CHECK(lmc_decode(m, data, 1 + rng() % (size - 1), &dopt, &px, &info) != LMC_OK && px == nullptr);
    // one flipped bit
    data[rng() % size] ^= uint8_t(1u << (rng() % 8));
    if (lmc_decode(m, data, size, &dopt, &px, &info) == LMC_OK) {
      ++flip_decodes;
      lmc_free(px);
    } else {
      CHECK(px == nullptr && std::strlen(lmc_last_error()) > 0);
    }
    lmc_free(data);
  }
  const long after = rss_pages();
  CHECK_EQ(errors, 0);
  std::printf("%ld cycles; %ld flipped streams still decoded (unchecked bytes)\n", cycles, flip_decodes);
  if (before > 0 && after > 0 && !sanitized()) {
    const double grown_mib = double(after - before) * 4096.0 / (1 << 20);
    std::printf("RSS after warm-up -> end: %+.2f MiB\n", grown_mib);
    CHECK(grown_mib < 8.0);
  }
  lmc_model_close(models[0]);
  lmc_model_close(models[1]);
  return check_summary();
}
