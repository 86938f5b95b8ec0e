// lmcodec core: lossless and near-lossless (L-infinity bounded) coding of
// the colour planes (RESD chunk, docs/format.md section 3.1).
//
// READ ME FIRST
// -------------
// A classical predictive coder, chosen by measurement over a learned
// "lossy base + residual" design (docs/lossless.md has the numbers):
//
//   * planes G, then R and B (gray: the one plane), pixel by pixel in raster
//     order; R and B are predicted on their difference to G ("subtract
//     green", on reconstructed values so that it also works in the
//     near-lossless loop);
//   * prediction: MED (the LOCO-I median edge detector) on the causal
//     neighbours W, N, NW;
//   * residual e = x - pred quantised with step s = 2k + 1 (k = max_error;
//     k = 0: s = 1, lossless), q = sign(e) * floor((|e| + k) / s), and the
//     reconstruction pred + q*s clamped to [0, 255], so |x - x'| <= k holds
//     for every sample by construction (JPEG-LS NEAR);
//   * q is coded with the project's rANS under one of 16 static tables per
//     plane, chosen by a context: the quantised activity of the causal
//     neighbourhood (gradients of the reconstruction and the magnitudes of
//     the neighbours' residuals, plus the co-located residual of the planes
//     coded before). The encoder makes two passes (histograms, then
//     coding) and stores the tables' frequencies in the chunk;
//   * the image is cut into independent horizontal strips, each its own
//     rANS stream, decoded in parallel; a strip's working set is a few rows.
// Everything is integer, so every machine, kernel path and thread count
// decodes the same pixels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/codecs.h"
#include "core/container.h"

namespace lmc {
namespace dsp {
class ThreadPool;
}

constexpr int kMaxResidualError = 255;  // largest max_error (a u8 in the chunk)

// Codes the first min(channels, 3) channels of an interleaved image (alpha,
// if any, is the ALPH chunk's job). pixel (x, y) channel c is at
// pixels[y*stride + x*channels + c]. max_error in [0, kMaxResidualError].
std::vector<uint8_t> encode_residual(const uint8_t* pixels, uint32_t width, uint32_t height, size_t stride,
                                     uint32_t channels, int max_error, dsp::ThreadPool* pool);

// The checks decode_residual makes before it touches pixels: layout, tables,
// strip sizes, and whether each strip's rANS stream can possibly hold its
// samples (rans.h's bound). CorruptStream otherwise. Cheap: call it before
// allocating the image.
void check_residual(const uint8_t* data, size_t size, uint32_t width, uint32_t height, uint32_t channels);

// Writes every pixel of the packed RGB output rgb (width*height*3 bytes;
// gray: the one plane in all three, which the C API's gray conversion turns
// back into exactly that value).
void decode_residual(const uint8_t* data, size_t size, uint32_t width, uint32_t height, uint32_t channels,
                     uint8_t* rgb, dsp::ThreadPool* pool);

// The bound a chunk promises (0 = lossless), read from its first bytes;
// CorruptStream if they are not a residual chunk's.
int residual_max_error(const uint8_t* data, size_t size);

// The residual coder behind the C API's Codec interface: it stands in for
// the model's codec when a caller asks for lossless / max_error, or when a
// stream has a RESD chunk. It uses no weights; the header keeps the model's
// codec id and model id.
class ResidualCodec : public Codec {
 public:
  ResidualCodec(CodecDescription model, int max_error) : model_(std::move(model)), max_error_(max_error) {}
  CodecDescription describe() const override { return model_; }
  void encode(const EncodeRequest& r, std::vector<Chunk>& chunks) const override;
  void check(const ContainerView& v) const override;
  void decode(const ContainerView& v, const DecodeRequest& r, uint8_t* rgb) const override;

 private:
  CodecDescription model_;
  int max_error_;
};

}  // namespace lmc
