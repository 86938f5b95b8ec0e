// libFuzzer target: *valid* streams with hostile contents. The input chooses
// the codec, size, channels and quality and supplies the latent symbols (z
// and y for the hyperprior, the 192 coefficients per 8x8 block for PCA, and
// the alpha residuals); the harness entropy-codes them with the model's own
// tables, wraps them in a correct container and decodes through lmc_decode.
// fuzz_decode cannot get here: a random mutation of a rANS stream almost
// never stays a valid stream, so extreme latents (escapes, INT32_MIN/MAX,
// int16 clamping in h_s, huge y feeding g_s) would go untested.
//
// Input layout:
//   byte 0     bit 0: codec (0 hyperprior, 1 PCA); bits 1-2: channels
//              (0 gray, 1 RGB, 2 RGBA with rANS-coded alpha, 3 RGBA with
//              constant alpha)
//   byte 1, 2  width - 1, height - 1 (mod 96)
//   byte 3, 4  quality_x100 = 100 + u16 % 9901
//   bytes 5..  symbol source, read cyclically: 0x00-0x7F -> 0,
//              0x80-0xBF -> -32..31, 0xC0-0xEF -> next 2 bytes as int16,
//              0xF0-0xFD -> next 4 bytes as int32, 0xFE -> INT32_MAX,
//              0xFF -> INT32_MIN
// Expected outcome: LMC_OK, except CorruptStream "coefficient out of range"
// (PCA: the decoder bounds coefficients) and "alpha residual out of range"
// (an escape-coded alpha residual outside 0..255). Anything else -- a crash,
// UB, or a valid stream refused for another reason -- is a bug.
//
// Forge mode (byte 0 bit 3; issue 27): the valid stream is then forged the
// way an attacker would, CRCs recomputed by the writer: bytes 5-10 are
//   byte 5     bit 0: header size replaced by bytes 6-9 (width - 1, height - 1,
//              u16 each, mod 4096: a large header over a small valid
//              payload, or the same blocks re-laid); bit 1: LATN cut to
//              byte 10 / 255 of its length; bit 2: SIDE cut likewise; bit 3:
//              ALPH's stream cut likewise; bit 4: quality replaced by bytes
//              6-7; bit 5: the LATN chunk duplicated; bit 6: LATN bytes
//              flipped where byte 10 says
// and the symbol source starts at byte 11. Decoded with max_pixels 2^22: any
// outcome but LMC_ERR_INTERNAL / INVALID_ARGUMENT (a stream error reported as
// a bug) is fine; libFuzzer's -rss_limit_mb / -malloc_limit_mb / -timeout
// catch a decoder whose work or memory does not follow the payload.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/alpha.h"
#include "core/container.h"
#include "util/error.h"
#include "core/hyperprior.h"
#include "core/pca_codec.h"
#include "core/rans.h"
#include "core/weights.h"
#include "util/threadpool.h"
#include "lmcodec.h"

#ifndef LMC_FUZZ_MODEL_DIR
#define LMC_FUZZ_MODEL_DIR "python/lmcodec/models"
#endif

namespace {

struct Models {
  lmc::Weights hw, pw;
  std::unique_ptr<lmc::HyperpriorModel> hyper;
  std::unique_ptr<lmc::PcaCodec> pca;
  lmc::OwnedTables z, y, pt;  // pt: the PCA tables, built like PcaCodec does
  lmc_model* api[2] = {nullptr, nullptr};
  std::unique_ptr<lmc::dsp::ThreadPool> pool;
};
Models* g = nullptr;

lmc::OwnedTables pca_tables(const lmc::Weights& w) {
  const size_t T = size_t(w.get_i64("tables.count"));
  const int32_t* len = w.as<int32_t>("tables.lengths", lmc::DType::I32, T);
  const int32_t* off = w.as<int32_t>("tables.offsets", lmc::DType::I32, T);
  const lmc::TensorRef& fr = w.tensor("tables.freqs");
  const uint16_t* f = w.as<uint16_t>("tables.freqs", lmc::DType::U16, fr.count());
  return lmc::cdf_tables_from_freqs(f, len, off, T);  // validated
}

struct Source {
  const uint8_t* p;
  size_t n, i = 0;
  uint8_t byte() { return n ? p[i++ % n] : 0; }
  int32_t value() {
    const uint8_t b = byte();
    if (b < 0x80) return 0;
    if (b < 0xC0) return int32_t(b & 63) - 32;
    if (b < 0xF0) return int16_t(uint16_t(byte() | byte() << 8));
    if (b == 0xFE) return INT32_MAX;
    if (b == 0xFF) return INT32_MIN;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v |= uint32_t(byte()) << (8 * k);
    return int32_t(v);
  }
};

[[noreturn]] void bug(const char* what, const char* detail) {
  std::fprintf(stderr, "fuzz_latents: %s: %s\n", what, detail);
  __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("LMC_FUZZ_MODEL_DIR");
  const std::string dir = env && *env ? env : LMC_FUZZ_MODEL_DIR;
  g = new Models;
  g->hw = lmc::Weights::from_file(dir + "/hyperprior.lmw");
  g->pw = lmc::Weights::from_file(dir + "/pca.lmw");
  g->hyper = std::make_unique<lmc::HyperpriorModel>(g->hw);
  g->pca = std::make_unique<lmc::PcaCodec>(g->pw);
  g->z = lmc::load_tables(g->hw, "z");
  g->y = lmc::load_tables(g->hw, "y");
  g->pt = pca_tables(g->pw);
  g->pool = std::make_unique<lmc::dsp::ThreadPool>(1);
  if (lmc_model_open((dir + "/hyperprior.lmw").c_str(), &g->api[0]) != LMC_OK ||
      lmc_model_open((dir + "/pca.lmw").c_str(), &g->api[1]) != LMC_OK) {
    std::fprintf(stderr, "fuzz_latents: cannot open the models in %s: %s\n", dir.c_str(), lmc_last_error());
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const bool pca = data[0] & 1;
  const int layout = (data[0] >> 1) & 3;
  const uint32_t channels = layout == 0 ? 1 : layout == 1 ? 3 : 4;
  const uint32_t w = 1 + data[1] % 96, h = 1 + data[2] % 96;
  const uint16_t q = uint16_t(100 + (data[3] | data[4] << 8) % 9901);
  const bool forge = (data[0] >> 3) & 1;
  if (forge && size < 11) return 0;
  Source src = forge ? Source{data + 11, size - 11} : Source{data + 5, size - 5};

  lmc::Header hdr;
  hdr.width = w;
  hdr.height = h;
  hdr.channels = uint8_t(channels);
  hdr.codec = pca ? lmc::kCodecPca : lmc::kCodecHyperprior;
  hdr.quality_x100 = q;
  std::vector<lmc::Chunk> chunks;
  if (!pca) {
    const lmc::HyperpriorModel& m = *g->hyper;
    const int zh = int((h + 63) / 64), zw = int((w + 63) / 64);
    const size_t nz = size_t(m.N()) * zh * zw;
    std::vector<int32_t> z(nz), zidx(nz);
    for (size_t i = 0; i < nz; ++i) {
      z[i] = src.value();
      zidx[i] = int32_t(i / (size_t(zh) * zw));
    }
    std::vector<int32_t> r(size_t(m.M()) * 16 * zh * zw);
    for (int32_t& v : r) v = src.value();
    // LATN, or LATC when the model has a context model (the indexes come from its passes over r)
    lmc::Chunk side{lmc::kSideInfo, {}}, lat{m.latents_chunk(), m.latents_payload(z.data(), zh, zw, r.data(),
                                                                                  g->pool.get())};
    lmc::rans_encode(z.data(), zidx.data(), nz, g->z.view(), side.data);
    chunks.push_back(std::move(side));
    chunks.push_back(std::move(lat));
    hdr.model_id = g->hw.model_id();
  } else {
    const int64_t ls = g->pca->log_step(q);
    const size_t blocks = size_t((w + 7) / 8) * ((h + 7) / 8);
    std::vector<int32_t> sym(blocks * 192), idx(blocks * 192);
    for (size_t i = 0; i < sym.size(); ++i) {
      sym[i] = src.value();
      idx[i] = g->pca->table_index(int(i % 192), ls);
    }
    lmc::Chunk lat{lmc::kLatents, {}};
    lmc::rans_encode(sym.data(), idx.data(), sym.size(), g->pt.view(), lat.data);
    chunks.push_back(std::move(lat));
    hdr.model_id = g->pw.model_id();
  }
  bool alpha_may_fail = false;
  if (channels == 4) {
    hdr.flags = lmc::kFlagHasAlpha;
    lmc::Chunk a{lmc::kAlpha, {}};
    if (layout == 3) {
      a.data = {0, src.byte()};
    } else {
      // A table from the input (every frequency >= 1, sum 2^16), then residuals.
      std::vector<double> pmf(256);
      for (double& p : pmf) {
        const uint8_t b = src.byte();
        p = b < 0xF0 ? double(b & 15) : 4096.0;  // mostly flat, a few spikes
      }
      std::vector<uint32_t> cdf = lmc::pmf_to_quantized_cdf(pmf.data(), 256);
      a.data.push_back(1);
      for (uint16_t f : lmc::cdf_to_freqs(cdf)) {
        a.data.push_back(uint8_t(f));
        a.data.push_back(uint8_t(f >> 8));
      }
      const size_t n = size_t(w) * h;
      std::vector<int32_t> res(n), idx(n, 0);
      for (int32_t& v : res) {
        const uint8_t b = src.byte();
        v = b < 0xF8 ? int32_t(b) : src.value();  // now and then an escape
        if (v < 0 || v > 255) alpha_may_fail = true;
      }
      const lmc::OwnedTables t = lmc::cdf_tables_from_cdfs({cdf}, {0});
      lmc::rans_encode(res.data(), idx.data(), n, t.view(), a.data);
    }
    chunks.push_back(std::move(a));
  }
  if (forge) {
    const uint8_t f = data[5], cut = data[10];
    const uint32_t a = uint32_t(data[6] | data[7] << 8), b = uint32_t(data[8] | data[9] << 8);
    if (f & 1) {
      hdr.width = 1 + a % 4096;
      hdr.height = 1 + b % 4096;
    }
    if (f & 16) hdr.quality_x100 = uint16_t(100 + a % 9901);
    for (lmc::Chunk& c : chunks) {
      const bool lat = c.type == lmc::kLatents || c.type == lmc::kLatentsCtx, side = c.type == lmc::kSideInfo,
                 alpha = c.type == lmc::kAlpha;
      if (((f & 2) && lat) || ((f & 4) && side) || ((f & 8) && alpha && c.data.size() > 515)) {
        const size_t keep0 = alpha ? 515 : 0;
        c.data.resize(keep0 + (c.data.size() - keep0) * cut / 255);
      }
      if ((f & 64) && lat && !c.data.empty()) c.data[(size_t(cut) * 977) % c.data.size()] ^= uint8_t(1u << (cut & 7));
    }
    if (f & 32) {
      for (size_t i = 0; i < chunks.size(); ++i)
        if (chunks[i].type == lmc::kLatents || chunks[i].type == lmc::kLatentsCtx) {
          chunks.insert(chunks.begin() + long(i), chunks[i]);
          break;
        }
    }
    std::vector<uint8_t> file;
    try {
      file = lmc::write_container(hdr, chunks);
    } catch (const lmc::Error&) {
      return 0;  // a layout the writer refuses (e.g. duplicated LATN): fuzz_decode's ground
    }
    lmc_decode_options opt{};
    opt.threads = 1;
    opt.limits.max_pixels = uint64_t(1) << 22;
    uint8_t* px = nullptr;
    lmc_image_info info{};
    const lmc_status st = lmc_decode(g->api[pca ? 1 : 0], file.data(), file.size(), &opt, &px, &info);
    if (st == LMC_OK) {
      if (!px || info.width != hdr.width || info.height != hdr.height || info.channels != channels)
        bug("bad info", "forged");
      lmc_free(px);
    } else if (px || st == LMC_ERR_INTERNAL || st == LMC_ERR_INVALID_ARGUMENT) {
      bug("a forged stream was reported as a bug", lmc_last_error());
    }
    return 0;
  }
  const std::vector<uint8_t> file = lmc::write_container(hdr, chunks);

  lmc_decode_options opt{};
  opt.threads = 1;
  uint8_t* px = nullptr;
  lmc_image_info info{};
  const lmc_status st = lmc_decode(g->api[pca ? 1 : 0], file.data(), file.size(), &opt, &px, &info);
  if (st == LMC_OK) {
    if (!px || info.width != w || info.height != h || info.channels != channels) bug("bad info", "");
    unsigned sum = 0;
    for (size_t i = 0, n = size_t(w) * h * channels; i < n; ++i) sum += px[i];
    if (sum == 0xFFFFFFFFu) std::fputc(' ', stderr);
    lmc_free(px);
    return 0;
  }
  const std::string msg = lmc_last_error();
  const bool allowed = st == LMC_ERR_CORRUPT_STREAM &&
                       ((pca && msg.find("coefficient out of range") != std::string::npos) ||
                        (alpha_may_fail && msg.find("alpha residual out of range") != std::string::npos));
  if (!allowed) bug("a valid stream was refused", msg.c_str());
  return 0;
}
