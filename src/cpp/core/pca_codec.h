// lmcodec core: the linear baseline codec (8x8x3 KLT + uniform quantization
// + rANS with a fixed bank of discretized-Laplacian tables).
//
// The whole coding path is integer arithmetic (int16 basis, int32/int64
// accumulators, integer quality -> step and table-index mappings), so the
// payload and the decoded pixels are identical on every CPU and identical to
// the Python reference (training/pca_reference.py, PcaReference). The model file keys
// and the exact formulas are in docs/weights.md, section "PCA model".
//
// Payload: one rANS stream of ceil(H/8) * ceil(W/8) * 192 symbols, blocks in
// raster order, the 192 coefficients of a block consecutive. Coefficients
// flagged in `pca.predict` carry the residual against the MED predictor of
// the same coefficient in the left / top / top-left blocks.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/rans.h"
#include "core/weights.h"

namespace lmc {

class PcaCodec {
 public:
  static constexpr int kBlock = 8;
  static constexpr int kChannels = 3;
  static constexpr int kDim = kBlock * kBlock * kChannels;  // 192

  // Validates every key and tensor it uses (InvalidArgument); copies what it
  // needs, so `w` may be destroyed afterwards.
  explicit PcaCodec(const Weights& w);

  // rgb: height rows of width*3 bytes, row_stride_bytes apart.
  // quality_x100 in [100, 10000] (InvalidArgument otherwise).
  std::vector<uint8_t> encode(const uint8_t* rgb, uint32_t width, uint32_t height, size_t row_stride_bytes,
                              uint16_t quality_x100) const;

  // CorruptStream when a payload of `size` bytes cannot possibly hold the
  // coefficients of a width x height image at this quality (rans.h's minimum
  // bits per symbol). Cheap; decode() calls it first.
  void check_payload(size_t size, uint32_t width, uint32_t height, uint16_t quality_x100) const;
  // rgb_out: width*height*3 bytes, packed. CorruptStream on a bad payload.
  void decode(const uint8_t* payload, size_t size, uint32_t width, uint32_t height, uint16_t quality_x100,
              uint8_t* rgb_out) const;

  // Integer mappings (exposed for tests): quality -> log2-step (1/64 octave),
  // log2-step -> step * 2^16, and the table of coefficient k.
  int64_t log_step(uint16_t quality_x100) const;
  int64_t step_fp(int64_t log_step) const;
  int32_t table_index(int k, int64_t log_step) const;

 private:
  struct Setup {
    int64_t step_fp;
    std::array<int32_t, kDim> idx;
  };
  Setup setup(uint16_t quality_x100) const;
  CdfTables tables() const;
  size_t symbol_count(uint32_t width, uint32_t height, size_t* bx, size_t* by) const;

  std::array<int32_t, kDim> mean_{};
  std::vector<int16_t> basis_;    // [j][k]: pixel j, coefficient k (scaled by 2^14)
  std::vector<int32_t> basis_t_;  // [k][j]
  std::array<int64_t, kDim> logscale_{};
  std::array<bool, kDim> predict_{};
  int64_t ls_max_ = 0, ls_min_ = 0;
  std::array<int64_t, 64> exp2_{};
  int64_t round_q8_ = 0, recon_q8_ = 0;
  int64_t t_base_ = 0, t_step_ = 1, t_count_ = 1;
  OwnedTables tables_;
};

}  // namespace lmc
