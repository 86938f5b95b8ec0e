// lmcodec core: the mean-scale hyperprior codec (the learned one).
//
// The network is built from the layer sequence the weights file declares
// (arch.g_a / g_s / h_a / h_s; see docs/weights.md), so the training model
// (training/models.py) and this one are the same declared architecture.
// Stream semantics are those of training/reference_codec.py:
//
//   pad to a multiple of 64 (edge replication); t = position(quality)
//   y = g_a(x) * gain(t);  z = round(h_a(y))        -> SIDE (table = channel)
//   (mean, ls) = integer h_s(z)  [bit-exact]        -> mu = mean / 2^F, k(ls)
//   r = round(y - mu)                               -> LATN (table = k)
//   decoder: x = g_s((r + mu) * inv_gain(t)), crop, round(clamp(x) * 255)
//
// Only the h_s path decides what the entropy decoder does, and it is integer
// arithmetic, so a stream decodes identically on every CPU, kernel path and
// thread count. g_a / g_s / h_a are float (fused GDN, FMA on AVX2).
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <cstdint>
#include <memory>
#include <vector>

#include "util/buffers.h"
#include "core/container.h"
#include "core/rans.h"
#include "core/scale_index.h"
#include "core/weights.h"
#include "dsp/conv.h"
#include "util/threadpool.h"

namespace lmc {

// The z or y tables of a hyperprior weights file (<prefix>.lengths /
// .offsets / .freqs), checked; throws lmc::Error(InvalidArgument) otherwise.
OwnedTables load_tables(const Weights& w, const std::string& prefix);

class FloatNet;
class IntNet;
class ContextModel;
namespace dsp {
class BlockAnalysis;
class BlockSynthesis;
}  // namespace dsp

struct Latents {
  int M = 0, N = 0;
  int yh = 0, yw = 0, zh = 0, zw = 0;
  std::vector<int32_t> z;  // [N][zh][zw]
  std::vector<int32_t> r;  // [M][yh][yw]
  std::vector<int32_t> idx;  // [M][yh][yw] scale-table index of each r
};

// A spatial quality map (docs/format.md, QMAP): one quality per block of
// kQualityBlock x kQualityBlock pixels of the padded image (= one z
// position), bw x bh blocks, row-major, each quality_x100 in 100..=10000.
// The encoder multiplies the latents of a block by gain(quality of the block)
// and weighs its RDO costs at that quality; the decoder multiplies them by
// inv_gain(quality of the block). Empty qx = no map (every block at the
// header's quality; the stream has no QMAP chunk).
struct QualityMap {
  static constexpr int kBlock = 64;  // pixels per block side (4 latent positions)
  int bw = 0, bh = 0;
  std::vector<uint16_t> qx;  // [bh][bw]
  bool empty() const { return qx.empty(); }
};

// Rows [r0, r0 + n) of C planes of H x W, as C planes of n x W in out.
template <typename T>
void plane_rows(const T* src, int C, int H, int W, int r0, int n, Buf<T>& out) {
  out.resize(size_t(C) * n * W);
  for (int c = 0; c < C; ++c)
    std::memcpy(&out[size_t(c) * n * W], &src[(size_t(c) * H + r0) * W], sizeof(T) * size_t(n) * W);
}

// Hyper-latents as h_s takes them: int16, clamped to +-32767.
inline void z_to_i16(const int32_t* z, size_t n, Buf<int16_t>& zi) {
  zi.resize(n);
  for (size_t i = 0; i < n; ++i) zi[i] = int16_t(std::max(-32767, std::min(32767, z[i])));
}

// The RDO's reference scale: the smallest index with at least half of the n
// elements at or below it (an exact integer histogram over 0..count-1).
int median_scale_index(const int32_t* idx, size_t n, int count);

class HyperpriorModel {
 public:
  // Strip processing (bounded memory, identical results to whole-image runs).
  // strip_rows arguments: image rows per strip (encode: rounded down to a
  // multiple of 16, at least 16; decode: a multiple of 64, at least 64); 0 =
  // the default (see strip_latent_rows in the .cc: 512 to 1024 rows up to
  // 4096 px wide, proportionally fewer beyond).
  static constexpr int kStripLatentRows = 32;      // 512 image rows per strip at 4096 px wide
  static constexpr int kMaxStripLatentRows = 64;   // at most 1024 rows per strip (narrow images)
  static constexpr int kEncodeHaloRows = 3;
  // Decoder halo (latent rows above and below a strip) and the strip height
  // multiple it holds for: g_s's F(4x2) Winograd layers (dsp/conv.h) also
  // need the input rows their blocks mix in rounding inside the strip.
  static constexpr int kDecodeHaloRows = 2;
  static constexpr int kDecodeStripMultiple = 4;

  explicit HyperpriorModel(const Weights& w);
  ~HyperpriorModel();

  int N() const { return N_; }
  int M() const { return M_; }
  int anchors() const { return anchors_; }
  int64_t parameter_count() const { return params_; }

  // Whether the weights carry the rate-distortion cost table (rdo.cost) that
  // rate-distortion optimised quantisation needs; without it the encoder
  // always rounds to the nearest integer.
  bool has_rdo() const { return !log_rdo_.empty(); }
  // Whether the weights declare a context model (arch.ctx: core/context_model.h).
  // Its streams carry the latents in a LATC chunk (docs/format.md) instead of LATN.
  bool has_context() const { return ctx_ != nullptr; }
  // Latent rows per independent rANS stream of a LATC chunk (bands decode in parallel).
  static constexpr int kContextBandRows = 32;

  // rgb: packed RGB rows (stride bytes per row). Returns SIDE and LATN payloads.
  // rdo: choose each latent's integer by rate-distortion cost (see
  // quantize_latents in the .cc); false = round to nearest. Encoder-only: the
  // decoder reads either kind of stream the same way.
  void encode(const uint8_t* rgb, uint32_t width, uint32_t height, size_t stride, size_t channels_in,
              uint16_t quality_x100, dsp::ThreadPool* pool, std::vector<uint8_t>& side,
              std::vector<uint8_t>& latents, int strip_rows = 0, bool rdo = true,
              const QualityMap* qmap = nullptr) const;
  // CorruptStream when a SIDE / LATN payload of these sizes cannot possibly
  // hold the symbols a width x height image needs (rans.h's minimum bits per
  // symbol). Cheap; decode() calls it first, callers may call it before they
  // allocate the output.
  void check_payload(size_t side_size, size_t lat_size, uint32_t width, uint32_t height) const;
  // Decodes into rgb_out (width*height*3, packed).
  void decode(const uint8_t* side, size_t side_size, const uint8_t* lat, size_t lat_size, uint32_t width,
              uint32_t height, uint16_t quality_x100, dsp::ThreadPool* pool, uint8_t* rgb_out,
              int strip_rows = 0, const QualityMap* qmap = nullptr) const;

  // The coded symbols of a stream's SIDE and LATN / LATC payloads, as the
  // decoder reads them: z, r, the scale index of each r, and the means
  // ([M][yh][yw]; y_hat = mu + r before the inverse gains). CorruptStream on
  // damage (check_payload first).
  void decode_symbols(const uint8_t* side, size_t side_size, const uint8_t* lat, size_t lat_size, uint32_t width,
                      uint32_t height, dsp::ThreadPool* pool, Latents& L, Buf<float>& mu) const;

  // For fuzzing and tests: the latents payload (LATC with a context model,
  // else LATN) that codes the integers r ([M][4 zh][4 zw]) after z, with the
  // scale indexes a decoder derives for them. latents_chunk(): its type.
  std::vector<uint8_t> latents_payload(const int32_t* z, int zh, int zw, const int32_t* r, dsp::ThreadPool* pool) const;
  ChunkType latents_chunk() const;

  // For tests / parity: the symbols the encoder codes and the entropy
  // parameters the integer h_s gives for z.
  Latents analyse(const uint8_t* rgb, uint32_t width, uint32_t height, size_t stride, size_t channels_in,
                  uint16_t quality_x100, dsp::ThreadPool* pool, int strip_rows = 0, bool rdo = true,
                  const QualityMap* qmap = nullptr) const;
  void entropy_params(const int32_t* z, int zh, int zw, dsp::ThreadPool* pool, Buf<float>& mu,
                      std::vector<int32_t>& idx, bool decoding = true) const;

  // The entropy tables (core/explain.cc reads the code length of each symbol).
  const OwnedTables& z_tables() const { return z_tables_; }
  const OwnedTables& y_tables() const { return y_tables_; }
  // The decoder's dequantisation step, in place on y = r + mu ([M][yh][yw]):
  // y *= inv_gain(quality) per channel, or per block of qmap when given
  // (exactly what decode() does).
  void apply_inv_gains(float* y, int yh, int yw, uint16_t quality_x100, const QualityMap* qmap,
                       dsp::ThreadPool* pool) const;
  // g_s (and the shortcut) on dequantised latents y ([M][yh][yw], yh = the
  // padded height / 16, yw = the padded width / 16), cropped to width x height
  // packed RGB: the last stage of decode(), also for explain's channel views.
  void synthesize(const float* y, int yh, int yw, uint32_t width, uint32_t height, dsp::ThreadPool* pool,
                  uint8_t* rgb_out, int strip_rows = 0) const;

 private:
  // y *= gain (or inv_gain) of each position's quality: per channel without a
  // map, per block (4 x 4 latent positions) with one.
  void apply_gains(float* y, int yh, int yw, uint16_t quality_x100, const QualityMap* qmap, bool inverse,
                   dsp::ThreadPool* pool) const;
  void gains(uint16_t quality_x100, std::vector<float>& gain, std::vector<float>& inv_gain) const;
  // Per-channel cost, in bits, of a unit squared latent error at this quality.
  std::vector<float> rdo_costs(uint16_t quality_x100) const;
  // Where a quality falls on the anchor axis: anchor i and the fraction f
  // toward anchor i + 1 (0 with a single anchor); gains() and rdo_costs()
  // interpolate there.
  struct AnchorPos {
    int i = 0;
    double f = 0.0;
  };
  AnchorPos anchor_position(uint16_t quality_x100) const;
  // Code length in bits of value v under y table k (escape included).
  float symbol_bits(int k, int32_t v) const;
  // Chooses r for channels [c0, c1) at the positions of phase (-1: all; 0 /
  // 1: the context model's anchors / non-anchors, (i + j) % 2 == phase).
  // t_med: the median scale index the RDO weights are relative to (-1: the
  // median of idx over every element).
  void quantize_latents(const float* y, const float* mu, const int32_t* idx, int yh, int yw, uint16_t qx, bool rdo,
                        const QualityMap* qmap, dsp::ThreadPool* pool, int32_t* r, int c0 = 0, int c1 = -1,
                        int phase = -1, int t_med = -1) const;
  // The integer h_s output [2M][4 zh][4 zw] (Q12 means, then log-scales).
  void hs_output(const int16_t* z, int zh, int zw, dsp::ThreadPool* pool, Buf<int32_t>& out, const char* tag) const;
  // z decoded from SIDE, as h_s's int16 input [N][zh][zw].
  void decode_z(const uint8_t* side, size_t side_size, int zh, int zw, Buf<int16_t>& zi) const;
  // The context model's encoder after z: final means, indexes and r (L.r, L.idx).
  void analyse_context(const float* y, Latents& L, uint16_t qx, bool rdo, const QualityMap* qmap,
                       dsp::ThreadPool* pool) const;
  // Rows [r0, r1) of the integer h_s output ([2M][r1 - r0][4 zw]), from the
  // z rows they depend on (zs, full: scratch).
  void hs_rows(const int16_t* zi, int zh, int zw, int r0, int r1, dsp::ThreadPool* pool, Buf<int32_t>& out,
               Buf<int16_t>& zs, Buf<int32_t>& full, const char* tag) const;
  // LATC: the band streams of r (encode) / their decoding with the context
  // model, band by band: band(r0, r1, mu_q, idx, r) receives each band's
  // Q12 means, scale indexes and integers ([M][r1 - r0][yw]).
  void encode_context_latents(const Latents& L, std::vector<uint8_t>& out) const;
  using BandFn = std::function<void(int r0, int r1, const int32_t* mu_q, const uint16_t* idx, const int32_t* r)>;
  void decode_context(const int16_t* zi, int zh, int zw, const uint8_t* lat, size_t lat_size, dsp::ThreadPool* pool,
                      const BandFn& band) const;

  int N_ = 0, M_ = 0, anchors_ = 0;
  int64_t params_ = 0;
  int frac_ = 0;
  int64_t idx_base_ = 0, idx_step_ = 1;
  int scale_count_ = 0;
  std::vector<float> log_gain_, log_inv_gain_;  // [A][M]
  std::vector<double> log_rdo_;                 // [A][M] log of rdo.cost; empty = no RDO
  double rdo_scale_power_ = 0.0;                // rdo.scale_power (0 = cost independent of the scale)
  double log_scale_step_ = 0.0;                 // log(scale.max / scale.min) / (scale.count - 1)
  std::vector<float> y_bits_;                   // [scale_count][y stride]: -log2(freq / 2^16)
  std::vector<double> z_min_bits_, y_min_bits_;  // per table: least bits a symbol takes (rans_min_symbol_bits)
  double y_min_bits_all_ = 0.0;                 // min of y_min_bits_
  std::unique_ptr<FloatNet> g_a_, g_s_, h_a_;
  std::unique_ptr<IntNet> h_s_;
  std::unique_ptr<ContextModel> ctx_;  // null: plain mean-scale hyperprior
  ScaleIndexRule scale_index_;         // idx_base_, idx_step_, scale_count_ as the rule
  // Optional linear shortcut (arch.g_a_lin / arch.g_s_lin): a 16x16 block
  // transform added to g_a's output and its transpose added to g_s's.
  std::unique_ptr<dsp::BlockAnalysis> g_a_lin_;
  std::unique_ptr<dsp::BlockSynthesis> g_s_lin_;
  OwnedTables z_tables_, y_tables_;
};

}  // namespace lmc
