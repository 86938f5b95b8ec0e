// lmcodec core: the Codec interface, one implementation per value of the
// container's codec field, and the registry that builds one from a weights
// file.
//
// The C API (core/c_api.cc) knows only this interface: it parses the
// container, handles what every codec shares (header, alpha, metadata,
// pixel layouts, limits, threads, progress) and leaves the colour channels
// to the Codec. A new codec (or a new entropy model of the hyperprior one)
// is a new implementation here, registered in make_codec(), never another
// `if` in the C API.
//
//   std::unique_ptr<Codec> c = make_codec(weights);      // by "model" key
//   c->encode(request, chunks);                          // appends payload chunks
//   c->check(view);                                      // before allocating
//   c->decode(view, request, rgb);                       // packed RGB out
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/container.h"
#include "core/weights.h"

namespace lmc {
namespace dsp {
class ThreadPool;
}

// What a codec codes: the colour channels of an interleaved 8-bit image.
// channels 1 (gray: the codec reads channel 0 as R = G = B), 3 or 4 (the
// codec reads channels 0..2; the C API codes alpha itself).
struct EncodeRequest {
  const uint8_t* pixels = nullptr;
  uint32_t width = 0, height = 0;
  size_t stride = 0;  // bytes per row
  uint32_t channels = 3;
  uint16_t quality_x100 = 0;
  dsp::ThreadPool* pool = nullptr;  // may be null (caller's thread only)
  int strip_rows = 0;               // 0 = the codec's default
  bool rdo = true;                  // rate-distortion optimised quantisation where the codec has it
  // spatial quality map (core/quality_map.h; hyperprior only): cols x rows
  // quality offsets, one per 64x64 block; null = none
  const int8_t* quality_map = nullptr;
  uint32_t quality_map_cols = 0, quality_map_rows = 0;
};

struct DecodeRequest {
  dsp::ThreadPool* pool = nullptr;
  int strip_rows = 0;
};

// What describe() tells about a codec (lmc_model_codec, lmc_model_param_count).
struct CodecDescription {
  uint8_t id = 0;            // Header::codec: kCodecHyperprior, kCodecPca, ...
  std::string name;          // "hyperprior", "pca": the weights file's "model" key
  int64_t parameters = 0;    // learned parameters of the networks (0 for PCA)
};

class Codec {
 public:
  virtual ~Codec() = default;
  virtual CodecDescription describe() const = 0;
  // Appends the payload chunks of the colour channels, in file order.
  virtual void encode(const EncodeRequest& r, std::vector<Chunk>& chunks) const = 0;
  // Finds the payload chunks of a parsed stream (whose header names this
  // codec and model) and checks them against the header: CorruptStream when
  // one is missing or cannot possibly hold the symbols the image needs.
  // Cheap; the C API calls it before it allocates the output.
  virtual void check(const ContainerView& v) const = 0;
  // Decodes the colour channels into packed RGB (width * height * 3 bytes;
  // every byte written). Call check() first.
  virtual void decode(const ContainerView& v, const DecodeRequest& r, uint8_t* rgb) const = 0;
};

// The codec a weights file declares (its "model" key); Unsupported for an
// unknown one, InvalidArgument for a malformed file.
std::unique_ptr<Codec> make_codec(const Weights& w);

}  // namespace lmc
