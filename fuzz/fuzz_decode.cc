// libFuzzer target: arbitrary bytes -> lmc_info and lmc_decode with both
// shipped models (hyperprior and PCA), through the public C API.
//
// Every .lmc chunk is CRC-32 protected, so almost every mutation of a seed
// would stop at the first CRC check. Each input is therefore tried twice:
//   1. as it is (signature, chunk framing and CRC paths);
//   2. "repaired": the HEAD model_id is set to the id of the model whose codec
//      the HEAD names, and every chunk CRC that frames correctly is recomputed,
//      so mutations reach the header validation, the layout rules, the rANS
//      decoders, alpha decoding and the networks.
// Repairing the model id also keeps the seed corpus useful after the
// hyperprior weights are re-exported (regenerate it anyway: make_corpus.py).
//
// Models: $LMC_FUZZ_MODEL_DIR/{hyperprior,pca}.lmw, else the compiled-in
// source-tree default. Limits are small (max_pixels 2^20, chunks <= 4 MiB) so
// the fuzzer explores rather than allocates; decoding is single-threaded.
//
// A successful decode must return consistent info and fully initialised
// pixels (MSan/valgrind would see a read of uninitialised bytes; ASan sees
// out-of-bounds reads of the buffer).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "util/crc32.h"
#include "lmcodec.h"

#ifndef LMC_FUZZ_MODEL_DIR
#define LMC_FUZZ_MODEL_DIR "python/lmcodec/models"
#endif

namespace {

lmc_model* g_models[2] = {nullptr, nullptr};  // [0] hyperprior (codec 1), [1] pca (codec 2)
uint8_t g_ids[2][16];

lmc_model* load(const std::string& dir, const char* name) {
  const std::string path = dir + "/" + name;
  lmc_model* m = nullptr;
  if (lmc_model_open(path.c_str(), &m) != LMC_OK) {
    std::fprintf(stderr, "fuzz_decode: cannot open %s: %s\n", path.c_str(), lmc_last_error());
    std::abort();
  }
  return m;
}

uint32_t rd32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

// Repairs model id and CRCs in place (see the top comment). Returns true if
// anything changed.
bool repair(std::vector<uint8_t>& b) {
  bool changed = false;
  size_t pos = 8;
  bool first = true;
  while (b.size() - pos >= 12 && pos >= 8) {
    const uint32_t len = rd32(&b[pos + 4]);
    if (uint64_t(len) + 12 > b.size() - pos) break;
    uint8_t* d = &b[pos + 8];
    if (first && std::memcmp(&b[pos], "HEAD", 4) == 0 && len >= 32 && (d[12] == 1 || d[12] == 2)) {
      const uint8_t* id = g_ids[d[12] - 1];
      if (std::memcmp(d + 16, id, 16) != 0) {
        std::memcpy(d + 16, id, 16);
        changed = true;
      }
    }
    const uint32_t crc = lmc::crc32(&b[pos], size_t(8) + len);
    if (rd32(d + len) != crc) {
      put32(d + len, crc);
      changed = true;
    }
    pos += 12 + size_t(len);
    first = false;
  }
  return changed;
}

void check_decoded(const uint8_t* px, const lmc_image_info& info, const lmc_image_info& header) {
  if (info.width != header.width || info.height != header.height || info.channels != header.channels ||
      !(info.channels == 1 || info.channels == 3 || info.channels == 4) || info.width == 0 || info.height == 0)
    __builtin_trap();
  const size_t n = size_t(info.width) * info.height * info.channels;
  unsigned sum = 0;
  for (size_t i = 0; i < n; ++i) sum += px[i];  // ASan: the whole buffer must be there
  if (sum == 0xFFFFFFFFu) std::fputc(' ', stderr);  // keep the loop
}

void run_one(const uint8_t* data, size_t size) {
  lmc_limits lim{};
  lim.max_pixels = uint64_t(1) << 20;
  lim.max_chunk_bytes = uint64_t(1) << 22;
  lmc_image_info header{};
  const lmc_status st_info = lmc_info(data, size, &lim, &header);
  if (st_info == LMC_OK && (header.width == 0 || header.height == 0 || uint64_t(header.width) * header.height > lim.max_pixels))
    __builtin_trap();  // info accepted a header the limits forbid
  lmc_decode_options opt{};
  opt.threads = 1;
  opt.limits = lim;
  for (lmc_model* m : g_models) {
    uint8_t* px = nullptr;
    lmc_image_info info{};
    const lmc_status st = lmc_decode(m, data, size, &opt, &px, &info);
    if (st == LMC_OK) {
      if (st_info != LMC_OK || !px) __builtin_trap();  // decode accepted what info refused
      check_decoded(px, info, header);
      lmc_free(px);
    } else {
      if (px) __builtin_trap();  // out-pointer must stay NULL on failure
      if (st == LMC_ERR_INTERNAL || st == LMC_ERR_INVALID_ARGUMENT) {
        // Bad input must be reported as a stream error, never as a bug.
        std::fprintf(stderr, "fuzz_decode: status %d: %s\n", int(st), lmc_last_error());
        __builtin_trap();
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("LMC_FUZZ_MODEL_DIR");
  const std::string dir = env && *env ? env : LMC_FUZZ_MODEL_DIR;
  g_models[0] = load(dir, "hyperprior.lmw");
  g_models[1] = load(dir, "pca.lmw");
  if (lmc_model_codec(g_models[0]) != 1 || lmc_model_codec(g_models[1]) != 2) std::abort();
  lmc_model_id(g_models[0], g_ids[0]);
  lmc_model_id(g_models[1], g_ids[1]);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run_one(data, size);
  if (size >= 8 + 12) {
    std::vector<uint8_t> fixed(data, data + size);
    if (repair(fixed)) run_one(fixed.data(), fixed.size());
  }
  return 0;
}
