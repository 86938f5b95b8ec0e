// lmcodec core: the linear baseline codec. See pca_codec.h and
// docs/weights.md ("PCA model"); training/pca_reference.py is the bit-exact reference.
#include "core/pca_codec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "util/error.h"

namespace lmc {
namespace {

constexpr int kDim = PcaCodec::kDim;
constexpr int kBasisFrac = 14;
constexpr int64_t kLsUnit = 64;                  // log2-step units per octave
constexpr int64_t kLsLowest = -4 * kLsUnit;      // step >= 1/16
constexpr int64_t kLsHighest = 10 * kLsUnit - 1;  // step < 1024
constexpr int64_t kChatLimit = int64_t(1) << 28;  // |q| * step_fp <= 2^28 (|coefficient| <= 4096)
constexpr int kReconShift = 24 + kBasisFrac;      // chat in 2^-24 units, basis in 2^-14
constexpr size_t kMaxTableEntries = size_t(1) << 22;

[[noreturn]] void bad(const std::string& msg) { fail(Status::InvalidArgument, "pca weights: " + msg); }

int64_t floor_shift(int64_t v, int s) { return v >= 0 ? (v >> s) : ~((~v) >> s); }

int64_t floor_div64(int64_t v) { return v >= 0 ? v / kLsUnit : -((-v + kLsUnit - 1) / kLsUnit); }

int64_t med(int64_t a, int64_t b, int64_t c) {
  const int64_t mx = std::max(a, b), mn = std::min(a, b);
  if (c >= mx) return mn;
  if (c <= mn) return mx;
  return a + b - c;
}

int64_t checked_i64(const Weights& w, const char* key, int64_t lo, int64_t hi) {
  const int64_t v = w.get_i64(key);
  if (v < lo || v > hi)
    bad(std::string(key) + " = " + std::to_string(v) + " not in [" + std::to_string(lo) + ", " +
        std::to_string(hi) + "]");
  return v;
}

}  // namespace

PcaCodec::PcaCodec(const Weights& w) {
  if (w.get_str("model") != "pca") bad("model is '" + w.get_str("model") + "', expected 'pca'");
  checked_i64(w, "pca.block", kBlock, kBlock);
  checked_i64(w, "pca.channels", kChannels, kChannels);
  checked_i64(w, "pca.basis_frac", kBasisFrac, kBasisFrac);

  ls_min_ = checked_i64(w, "quant.logstep_min", kLsLowest, kLsHighest);
  ls_max_ = checked_i64(w, "quant.logstep_max", ls_min_, kLsHighest);
  const std::vector<int64_t>& e = w.get_i64_array("quant.exp2_q16");
  if (e.size() != exp2_.size()) bad("quant.exp2_q16 must have 64 entries");
  for (size_t i = 0; i < e.size(); ++i) {
    if (e[i] < 65536 || e[i] >= 131072 || (i > 0 && e[i] < e[i - 1])) bad("quant.exp2_q16 is not an exp2 table");
    exp2_[i] = e[i];
  }
  round_q8_ = checked_i64(w, "quant.round_q8", 0, 128);
  recon_q8_ = checked_i64(w, "quant.recon_q8", 0, 255);
  t_count_ = checked_i64(w, "tables.count", 1, 4096);
  t_base_ = checked_i64(w, "tables.base", -(int64_t(1) << 20), int64_t(1) << 20);
  t_step_ = checked_i64(w, "tables.step", 1, int64_t(1) << 20);

  const int16_t* mean = w.as<int16_t>("pca.mean", DType::I16, kDim);
  for (int j = 0; j < kDim; ++j) {
    if (mean[j] < 0 || mean[j] > 255) bad("pca.mean entries must be in [0, 255]");
    mean_[j] = mean[j];
  }
  const int16_t* basis = w.as<int16_t>("pca.basis", DType::I16, size_t(kDim) * kDim);
  basis_.resize(size_t(kDim) * kDim);
  basis_t_.resize(size_t(kDim) * kDim);
  int64_t l1_max = 0;
  for (int k = 0; k < kDim; ++k) {
    int64_t l1 = 0;
    for (int j = 0; j < kDim; ++j) {
      const int32_t b = basis[j * kDim + k];
      if (b < -(1 << kBasisFrac) || b > (1 << kBasisFrac)) bad("pca.basis entries must be in [-2^14, 2^14]");
      basis_[j * kDim + k] = int16_t(b);
      basis_t_[k * kDim + j] = b;
      l1 += b < 0 ? -b : b;
    }
    l1_max = std::max(l1_max, l1);
  }
  // Every coefficient the encoder can produce must satisfy the decoder's
  // bound |q| * step_fp <= 2^28: |c| <= 255 * l1 (2^-14 units) and
  // q * step_fp <= 4 |c| + round * step_fp / 256.
  if (4 * 255 * l1_max + (step_fp(ls_max_) * round_q8_ + 255) / 256 > kChatLimit)
    bad("basis and largest step exceed the coefficient range");

  const int32_t* lb = w.as<int32_t>("pca.logscale", DType::I32, kDim);
  const int32_t* pr = w.as<int32_t>("pca.predict", DType::I32, kDim);
  for (int k = 0; k < kDim; ++k) {
    if (lb[k] < -(1 << 20) || lb[k] > (1 << 20)) bad("pca.logscale out of range");
    if (pr[k] != 0 && pr[k] != 1) bad("pca.predict entries must be 0 or 1");
    logscale_[k] = lb[k];
    predict_[k] = pr[k] != 0;
  }

  const size_t T = size_t(t_count_);
  const int32_t* lengths = w.as<int32_t>("tables.lengths", DType::I32, T);
  const int32_t* offsets = w.as<int32_t>("tables.offsets", DType::I32, T);
  const TensorRef& fref = w.tensor("tables.freqs");
  if (fref.dtype != DType::U16) bad("tables.freqs must be u16");
  const size_t nfreq = fref.count();
  const uint16_t* freqs = w.as<uint16_t>("tables.freqs", DType::U16, nfreq);
  size_t total = 0, max_len = 0;
  for (size_t t = 0; t < T; ++t) {
    if (lengths[t] < 2 || lengths[t] + 1 > kMaxCdfLength) bad("tables.lengths out of range");
    if (offsets[t] < -(1 << 30) || offsets[t] > (1 << 30)) bad("tables.offsets out of range");
    total += size_t(lengths[t]);
    max_len = std::max(max_len, size_t(lengths[t]));
  }
  if (total != nfreq) bad("tables.freqs size does not match tables.lengths");
  if (T * (max_len + 1) > kMaxTableEntries) bad("tables too large");
  tables_ = cdf_tables_from_freqs(freqs, lengths, offsets, T);  // validated
}

CdfTables PcaCodec::tables() const { return tables_.view(); }

int64_t PcaCodec::log_step(uint16_t quality_x100) const {
  if (quality_x100 < 100 || quality_x100 > 10000)
    fail(Status::InvalidArgument, "pca: quality_x100 must be in [100, 10000], got " + std::to_string(quality_x100));
  return ls_max_ - ((int64_t(quality_x100) - 100) * (ls_max_ - ls_min_) + 4950) / 9900;
}

int64_t PcaCodec::step_fp(int64_t ls) const {
  const int64_t o = floor_div64(ls);
  const int64_t r = ls - o * kLsUnit;
  return (exp2_[size_t(r)] << (o + 4)) >> 4;  // ls >= -256: o + 4 >= 0
}

int32_t PcaCodec::table_index(int k, int64_t ls) const {
  const int64_t d = logscale_[size_t(k)] - ls - t_base_;
  if (d < 0) return 0;
  return int32_t(std::min(d / t_step_, t_count_ - 1));
}

PcaCodec::Setup PcaCodec::setup(uint16_t quality_x100) const {
  Setup s;
  const int64_t ls = log_step(quality_x100);
  s.step_fp = step_fp(ls);
  for (int k = 0; k < kDim; ++k) s.idx[size_t(k)] = table_index(k, ls);
  return s;
}

size_t PcaCodec::symbol_count(uint32_t width, uint32_t height, size_t* bx, size_t* by) const {
  if (width == 0 || height == 0) fail(Status::InvalidArgument, "pca: empty image");
  *bx = (size_t(width) + kBlock - 1) / kBlock;
  *by = (size_t(height) + kBlock - 1) / kBlock;
  const size_t max = std::numeric_limits<size_t>::max() / (kDim * 2 * sizeof(int32_t));
  if (*bx > max / *by) fail(Status::LimitExceeded, "pca: image too large");
  return *bx * *by * kDim;
}

std::vector<uint8_t> PcaCodec::encode(const uint8_t* rgb, uint32_t width, uint32_t height, size_t row_stride_bytes,
                                      uint16_t quality_x100) const {
  const Setup s = setup(quality_x100);
  size_t bx = 0, by = 0;
  const size_t n = symbol_count(width, height, &bx, &by);
  if (rgb == nullptr) fail(Status::InvalidArgument, "pca: null image");
  if (row_stride_bytes < size_t(width) * kChannels) fail(Status::InvalidArgument, "pca: row stride too small");

  std::vector<int32_t> sym(n);
  const int64_t step = s.step_fp;
  const int64_t denom = 256 * step;
  const int64_t bias = round_q8_ * step;
  int16_t d[kDim];
  int32_t c[kDim];
  for (size_t yb = 0; yb < by; ++yb) {
    for (size_t xb = 0; xb < bx; ++xb) {
      for (int yy = 0; yy < kBlock; ++yy) {
        const size_t sy = std::min(yb * kBlock + size_t(yy), size_t(height) - 1);
        const uint8_t* row = rgb + sy * row_stride_bytes;
        for (int xx = 0; xx < kBlock; ++xx) {
          const size_t sx = std::min(xb * kBlock + size_t(xx), size_t(width) - 1);
          for (int ch = 0; ch < kChannels; ++ch) {
            const int j = (yy * kBlock + xx) * kChannels + ch;
            d[j] = int16_t(int32_t(row[sx * kChannels + ch]) - mean_[size_t(j)]);
          }
        }
      }
      // |d| <= 255, |basis| <= 2^14, 192 terms: every partial sum fits int32,
      // so the result is exact whatever the order.
      std::fill(c, c + kDim, 0);
      for (int j = 0; j < kDim; ++j) {
        const int32_t dj = d[j];
        if (dj == 0) continue;
        const int16_t* b = &basis_[size_t(j) * kDim];
        for (int k = 0; k < kDim; ++k) c[k] += dj * int32_t(b[k]);
      }
      int32_t* q = &sym[(yb * bx + xb) * kDim];
      for (int k = 0; k < kDim; ++k) {
        const int64_t a = c[k] < 0 ? -int64_t(c[k]) : int64_t(c[k]);
        const int64_t m = (1024 * a + bias) / denom;
        q[k] = int32_t(c[k] < 0 ? -m : m);
      }
    }
  }
  // Residuals against the MED predictor, in reverse raster order so that the
  // neighbours still hold quantized values.
  bool any_pred = false;
  for (int k = 0; k < kDim; ++k) any_pred |= predict_[size_t(k)];
  if (any_pred) {
    for (size_t b = bx * by; b-- > 0;) {
      const size_t yb = b / bx, xb = b % bx;
      int32_t* q = &sym[b * kDim];
      for (int k = 0; k < kDim; ++k) {
        if (!predict_[size_t(k)]) continue;
        int64_t pred = 0;
        if (yb == 0) {
          pred = xb > 0 ? q[k - kDim] : 0;
        } else if (xb == 0) {
          pred = q[k - int64_t(bx) * kDim];
        } else {
          pred = med(q[k - kDim], q[k - int64_t(bx) * kDim], q[k - int64_t(bx + 1) * kDim]);
        }
        q[k] = int32_t(q[k] - pred);
      }
    }
  }
  std::vector<int32_t> idx(n);
  for (size_t b = 0; b < bx * by; ++b) std::copy(s.idx.begin(), s.idx.end(), idx.begin() + b * kDim);
  std::vector<uint8_t> out;
  rans_encode(sym.data(), idx.data(), n, tables(), out);
  return out;
}

void PcaCodec::check_payload(size_t size, uint32_t width, uint32_t height, uint16_t quality_x100) const {
  const Setup s = setup(quality_x100);
  size_t bx = 0, by = 0;
  symbol_count(width, height, &bx, &by);
  // Refuse a payload too short for n symbols before allocating n-sized
  // buffers (a 2 KB file with a 16384x16384 header must not cost 7 GB).
  // rANS (rans.h): decoding a symbol of frequency f changes log2(state) by
  // at most -log2(2^16 / f) + 2^-15/ln 2, a word read by at most 32 + 2^-15/ln 2,
  // the states start below 2^63 and must end at 2^31; so a stream that
  // decodes has sum_i (log2(2^16 / max_freq_i) - 4.41e-5) < 8 * size + 1e-5 * size.
  {
    std::vector<double> table_bits(tables_.lengths.size(), 1e300);
    double block_bits = 0.0;
    for (int k = 0; k < kDim; ++k) {
      const size_t t = size_t(s.idx[size_t(k)]);
      if (table_bits[t] == 1e300) {
        const uint32_t* c = &tables_.cdfs[t * tables_.stride];
        uint32_t fmax = 1;
        for (int32_t i = 1; i < tables_.lengths[t]; ++i) fmax = std::max(fmax, c[i] - c[i - 1]);
        table_bits[t] = std::log2(double(kCdfTotal) / double(fmax)) - 5e-5;
      }
      block_bits += table_bits[t];
    }
    if (block_bits * double(bx * by) > 8.001 * double(size) + 64.0)
      fail(Status::CorruptStream, "pca: a " + std::to_string(size) + "-byte payload cannot hold " +
                                      std::to_string(width) + "x" + std::to_string(height) + " pixels");
  }

}

void PcaCodec::decode(const uint8_t* payload, size_t size, uint32_t width, uint32_t height, uint16_t quality_x100,
                      uint8_t* rgb_out) const {
  const Setup s = setup(quality_x100);
  size_t bx = 0, by = 0;
  const size_t n = symbol_count(width, height, &bx, &by);
  if (rgb_out == nullptr || (payload == nullptr && size != 0)) fail(Status::InvalidArgument, "pca: null buffer");
  check_payload(size, width, height, quality_x100);

  // Decoded one block row at a time (the MED predictor needs the row above):
  // memory is two rows of symbols, whatever the image size.
  const size_t row_syms = bx * kDim;
  std::vector<int32_t> idx(row_syms), cur(row_syms), prev(row_syms);
  for (size_t b = 0; b < bx; ++b) std::copy(s.idx.begin(), s.idx.end(), idx.begin() + b * kDim);
  RansDecoder dec(payload, size, n, tables());
  const int64_t step = s.step_fp;
  int64_t acc[kDim];
  const int64_t half = int64_t(1) << (kReconShift - 1);
  for (size_t yb = 0; yb < by; ++yb) {
    dec.decode(idx.data(), row_syms, cur.data());
    for (size_t xb = 0; xb < bx; ++xb) {
      int32_t* q = &cur[xb * kDim];
      const int32_t* up = &prev[xb * kDim];
      std::fill(acc, acc + kDim, 0);
      for (int k = 0; k < kDim; ++k) {
        int64_t v = q[k];
        if (predict_[size_t(k)]) {
          if (yb == 0) {
            v += xb > 0 ? q[k - kDim] : 0;
          } else if (xb == 0) {
            v += up[k];
          } else {
            v += med(q[k - kDim], up[k], up[k - kDim]);
          }
        }
        const int64_t mag = v < 0 ? -v : v;  // < 2^32
        if (mag * step > kChatLimit) fail(Status::CorruptStream, "pca: coefficient out of range");
        q[k] = int32_t(v);
        if (v == 0) continue;
        // |chat| <= 2^36, |basis| <= 2^14, 192 terms: no overflow.
        const int64_t chat = (v > 0 ? 256 * mag - recon_q8_ : recon_q8_ - 256 * mag) * step;
        const int32_t* b = &basis_t_[size_t(k) * kDim];
        for (int j = 0; j < kDim; ++j) acc[j] += chat * b[j];
      }
      const size_t y_end = std::min(size_t(kBlock), size_t(height) - yb * kBlock);
      const size_t x_end = std::min(size_t(kBlock), size_t(width) - xb * kBlock);
      for (size_t yy = 0; yy < y_end; ++yy) {
        uint8_t* row = rgb_out + ((yb * kBlock + yy) * size_t(width) + xb * kBlock) * kChannels;
        for (size_t xx = 0; xx < x_end; ++xx) {
          for (int ch = 0; ch < kChannels; ++ch) {
            const size_t j = (yy * kBlock + xx) * kChannels + size_t(ch);
            // round half to even of acc / 2^38
            int64_t v = floor_shift(acc[j], kReconShift);
            const int64_t rem = acc[j] - v * (int64_t(1) << kReconShift);
            if (rem > half || (rem == half && (v & 1))) ++v;
            v += mean_[j];
            row[xx * kChannels + size_t(ch)] = uint8_t(std::min<int64_t>(255, std::max<int64_t>(0, v)));
          }
        }
      }
    }
    cur.swap(prev);
  }
  dec.finish();
}

}  // namespace lmc
