// lmcodec core: the codecs behind the Codec interface (see codecs.h) and the
// registry. Each implementation is a thin adapter: the hyperprior codec's
// work is in core/hyperprior.cc, the PCA codec's in core/pca_codec.cc.
#include "core/codecs.h"

#include <vector>

#include "core/hyperprior.h"
#include "core/pca_codec.h"
#include "core/pixels.h"
#include "core/quality_map.h"
#include "util/error.h"
#include "util/progress.h"

namespace lmc {

namespace {

// The one chunk of this type; CorruptStream when absent or repeated.
const ChunkView& single_chunk(const ContainerView& v, const ChunkType& t, const char* what) {
  std::vector<const ChunkView*> all = v.find_all(t);
  LMC_CHECK(!all.empty(), Status::CorruptStream, std::string("stream has no ") + what + " chunk");
  LMC_CHECK(all.size() == 1, Status::CorruptStream, std::string("stream has more than one ") + what + " chunk");
  return *all[0];
}

// The learned codec: payload SIDE (z) then LATN (y), or LATC (y) when the
// weights declare a context model (core/context_model.h).
class HyperpriorCodec final : public Codec {
 public:
  explicit HyperpriorCodec(const Weights& w) : model_(w) {}

  CodecDescription describe() const override { return {kCodecHyperprior, "hyperprior", model_.parameter_count()}; }

  void encode(const EncodeRequest& r, std::vector<Chunk>& chunks) const override {
    Chunk side{kSideInfo, {}}, lat{latents_type(), {}};
    QualityMap qmap;
    if (r.quality_map) {  // QMAP precedes the payload (docs/format.md)
      qmap = quality_map_from_offsets(r.quality_map, r.quality_map_cols, r.quality_map_rows, r.width, r.height,
                                      r.quality_x100, Status::InvalidArgument);
      chunks.push_back(
          Chunk{kQualityMap, write_quality_map(r.quality_map, r.quality_map_cols, r.quality_map_rows, r.width, r.height)});
    }
    model_.encode(r.pixels, r.width, r.height, r.stride, r.channels, r.quality_x100, r.pool, side.data, lat.data,
                  r.strip_rows, r.rdo, &qmap);
    chunks.push_back(std::move(side));
    chunks.push_back(std::move(lat));
  }

  void check(const ContainerView& v) const override {
    const ChunkView& lat = latents(v);
    const ChunkView& side = single_chunk(v, kSideInfo, "side-information");
    model_.check_payload(side.size, lat.size, v.header.width, v.header.height);
    quality_map(v);
  }

  void decode(const ContainerView& v, const DecodeRequest& r, uint8_t* rgb) const override {
    const ChunkView& lat = latents(v);
    const ChunkView& side = single_chunk(v, kSideInfo, "side-information");
    const Header& h = v.header;
    const QualityMap qmap = quality_map(v);
    model_.decode(side.data, side.size, lat.data, lat.size, h.width, h.height, h.quality_x100, r.pool, rgb,
                  r.strip_rows, &qmap);
  }

 private:
  ChunkType latents_type() const { return model_.has_context() ? kLatentsCtx : kLatents; }
  // The latents chunk of the model's kind (LATC with a context model, else
  // LATN); a stream with the other kind is CorruptStream.
  const ChunkView& latents(const ContainerView& v) const {
    LMC_CHECK(v.find(model_.has_context() ? kLatents : kLatentsCtx) == nullptr, Status::CorruptStream,
              model_.has_context() ? "stream has LATN latents, but its model codes LATC"
                                   : "stream has LATC latents, but its model has no context model");
    return single_chunk(v, latents_type(), "latents");
  }

  // The stream's QMAP (checked; CorruptStream on damage), or an empty map.
  static QualityMap quality_map(const ContainerView& v) {
    const ChunkView* q = v.find(kQualityMap);  // at most one (the container's rule)
    return q ? read_quality_map(q->data, q->size, v.header.width, v.header.height, v.header.quality_x100)
             : QualityMap();
  }

  HyperpriorModel model_;
};

// The linear baseline: payload LATN only; RGB in, RGB out (one step: no
// strips, no threads).
class PcaCodecImpl final : public Codec {
 public:
  explicit PcaCodecImpl(const Weights& w) : pca_(w) {}

  CodecDescription describe() const override { return {kCodecPca, "pca", 0}; }

  void encode(const EncodeRequest& r, std::vector<Chunk>& chunks) const override {
    LMC_CHECK(!r.quality_map, Status::InvalidArgument, "quality maps need the hyperprior codec");
    std::vector<uint8_t> tmp;
    size_t stride = r.stride;
    const uint8_t* rgb = pack_rgb(r.pixels, r.width, r.height, r.stride, r.channels, tmp, &stride);
    progress(0, 1);
    chunks.push_back(Chunk{kLatents, pca_.encode(rgb, r.width, r.height, stride, r.quality_x100)});
    progress(1, 1);
  }

  void check(const ContainerView& v) const override {
    const ChunkView& lat = single_chunk(v, kLatents, "latents");
    pca_.check_payload(lat.size, v.header.width, v.header.height, v.header.quality_x100);
  }

  void decode(const ContainerView& v, const DecodeRequest&, uint8_t* rgb) const override {
    const ChunkView& lat = single_chunk(v, kLatents, "latents");
    progress(0, 1);
    pca_.decode(lat.data, lat.size, v.header.width, v.header.height, v.header.quality_x100, rgb);
    progress(1, 1);
  }

 private:
  PcaCodec pca_;
};

}  // namespace

std::unique_ptr<Codec> make_codec(const Weights& w) {
  const std::string& kind = w.get_str("model");
  if (kind == "hyperprior") return std::make_unique<HyperpriorCodec>(w);
  if (kind == "pca") return std::make_unique<PcaCodecImpl>(w);
  fail(Status::Unsupported, "unknown model type '" + kind + "'");
}

}  // namespace lmc
