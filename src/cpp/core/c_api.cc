// lmcodec core: the public C API (include/lmcodec.h) -- models, encode,
// decode, info, metadata. Everything below the API throws lmc::Error; here
// it becomes an lmc_status plus a thread-local message.
//
// What every codec shares is done here: arguments, header, limits, the
// thread pool, progress, alpha (core/alpha.cc), metadata chunks and the
// pixel layouts (core/pixels.cc). The colour channels go to the model's
// Codec (core/codecs.h), whichever it is.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/alpha.h"
#include "core/codecs.h"
#include "core/container.h"
#include "core/model_search.h"
#include "core/pixels.h"
#include "core/residual.h"
#include "core/weights.h"
#include "dsp/cpu.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/threadpool.h"
#include "lmcodec.h"

struct lmc_model {
  lmc::Weights weights;
  std::unique_ptr<lmc::Codec> codec;
  lmc::CodecDescription desc;
};

namespace {

thread_local std::string g_last_error;

lmc_status to_status(lmc::Status s) { return static_cast<lmc_status>(static_cast<int>(s)); }

template <typename F>
lmc_status guarded(F&& f) {
  g_last_error.clear();
  try {
    f();
    return LMC_OK;
  } catch (const lmc::Error& e) {
    g_last_error = e.what();
    return to_status(e.code());
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
    return LMC_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    g_last_error = std::string("internal error: ") + e.what();
    return LMC_ERR_INTERNAL;
  } catch (...) {
    g_last_error = "internal error";
    return LMC_ERR_INTERNAL;
  }
}

lmc::Limits make_limits(const lmc_limits* l) {
  lmc::Limits lim;
  if (l) {
    if (l->max_pixels) lim.max_pixels = l->max_pixels;
    if (l->max_chunk_bytes) lim.max_chunk_bytes = l->max_chunk_bytes;
    if (l->max_dimension) {
      LMC_CHECK(l->max_dimension <= 0xFFFFFFFFu, lmc::Status::InvalidArgument, "max_dimension must be below 2^32");
      lim.max_dimension = uint32_t(l->max_dimension);
    }
    if (l->max_chunks) lim.max_chunks = l->max_chunks;
  }
  return lim;
}

// threads 0 = one per core. The pool comes from the process-wide cache, so
// back-to-back calls reuse their worker threads.
std::unique_ptr<lmc::dsp::PoolLease> make_pool(int threads) {
  LMC_CHECK(threads >= 0 && threads <= 1024, lmc::Status::InvalidArgument, "threads must be in 0..1024");
  int n = threads == 0 ? lmc::dsp::ThreadPool::hardware_threads() : threads;
  return std::make_unique<lmc::dsp::PoolLease>(n);
}

void fill_info(const lmc::Header& h, lmc_image_info* info) {
  std::memset(info, 0, sizeof(*info));
  info->width = h.width;
  info->height = h.height;
  info->channels = h.channels;
  info->bit_depth = h.bit_depth;
  info->codec = h.codec;
  info->quality = h.quality_x100 / 100.0f;
  std::memcpy(info->model_id, h.model_id.data(), 16);
  info->flags = h.flags;
  info->strip_rows = h.tile_height;
}

// A residual (lossless / near-lossless) stream's mode and bound in info.
void fill_residual_info(const lmc::ChunkView& resd, lmc_image_info* info) {
  info->residual = 1;
  info->max_error = uint32_t(lmc::residual_max_error(resd.data, resd.size));
}

uint8_t* copy_out(const std::vector<uint8_t>& v) {
  uint8_t* p = static_cast<uint8_t*>(std::malloc(v.empty() ? 1 : v.size()));
  if (!p) throw std::bad_alloc();
  if (!v.empty()) std::memcpy(p, v.data(), v.size());
  return p;
}

void open_model(lmc::Weights w, lmc_model** out) {
  auto m = std::make_unique<lmc_model>();
  m->weights = std::move(w);
  m->codec = lmc::make_codec(m->weights);
  m->desc = m->codec->describe();
  *out = m.release();
}

// The metadata chunks of options->metadata, in file order (before the
// payload, as docs/format.md asks of writers).
void metadata_chunks(const lmc_metadata* md, std::vector<lmc::Chunk>& chunks) {
  if (!md) return;
  struct Item {
    const lmc::ChunkType& type;
    const uint8_t* data;
    size_t size;
    const char* name;
  };
  for (const Item& it : {Item{lmc::kIcc, md->icc, md->icc_size, "icc"}, Item{lmc::kExif, md->exif, md->exif_size, "exif"},
                         Item{lmc::kXmp, md->xmp, md->xmp_size, "xmp"}}) {
    if (it.size == 0) continue;
    LMC_CHECK(it.data != nullptr, lmc::Status::InvalidArgument,
              std::string("metadata ") + it.name + " has a size but no data");
    chunks.push_back(lmc::Chunk{it.type, std::vector<uint8_t>(it.data, it.data + it.size)});
  }
}

}  // namespace

extern "C" {

#define LMC_STR_(x) #x
#define LMC_STR(x) LMC_STR_(x)
// from lmcodec.h's macros, which CMake checks against python/lmcodec/_version.py
const char* lmc_version(void) {
  return LMC_STR(LMC_VERSION_MAJOR) "." LMC_STR(LMC_VERSION_MINOR) "." LMC_STR(LMC_VERSION_PATCH);
}

const char* lmc_last_error(void) { return g_last_error.c_str(); }

lmc_status lmc_model_open(const char* path, lmc_model** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    LMC_CHECK(path && out, lmc::Status::InvalidArgument, "null argument");
    open_model(lmc::Weights::from_file(path), out);
  });
}

lmc_status lmc_model_open_memory(const uint8_t* data, size_t size, lmc_model** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    LMC_CHECK(data && out, lmc::Status::InvalidArgument, "null argument");
    open_model(lmc::Weights::from_bytes(std::vector<uint8_t>(data, data + size)), out);
  });
}

void lmc_model_close(lmc_model* model) { delete model; }

lmc_status lmc_model_open_for_stream(const uint8_t* data, size_t size, const char* search_path, lmc_model** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    LMC_CHECK(data && out, lmc::Status::InvalidArgument, "null argument");
    lmc::Header h = lmc::read_header(data, size, lmc::Limits());
    std::vector<std::string> dirs = lmc::model_search_dirs(search_path);
    std::string path = lmc::find_weights_file(dirs, h.model_id);
    if (path.empty()) {
      std::string where;
      for (const std::string& d : dirs) where += (where.empty() ? "" : ", ") + d;
      lmc::fail(lmc::Status::ModelMismatch, "no weights file with model id " + lmc::model_id_hex(h.model_id) +
                                                " (the stream's) in " + (where.empty() ? "no directory" : where));
    }
    open_model(lmc::Weights::from_file(path), out);
  });
}

uint32_t lmc_model_codec(const lmc_model* model) { return model ? model->desc.id : 0; }

void lmc_model_id(const lmc_model* model, uint8_t out[16]) {
  if (model && out) std::memcpy(out, model->weights.model_id().data(), 16);
}

int64_t lmc_model_param_count(const lmc_model* model) {
  return model ? model->desc.parameters : 0;
}

int lmc_model_meta_number(const lmc_model* model, const char* key, double* out) {
  if (!model || !key || !out || !model->weights.has(key)) return 1;
  try {
    *out = double(model->weights.get_i64(key));
    return 0;
  } catch (const lmc::Error&) {
  }
  try {
    *out = model->weights.get_f64(key);
    return 0;
  } catch (const lmc::Error&) {
  }
  return 1;
}

lmc_status lmc_encode(const lmc_model* model, const uint8_t* pixels, uint32_t width, uint32_t height, size_t row_stride,
                      uint32_t channels, float quality, const lmc_encode_options* options, uint8_t** out_data,
                      size_t* out_size) {
  if (out_data) *out_data = nullptr;
  if (out_size) *out_size = 0;
  return guarded([&] {
    using lmc::Status;
    LMC_CHECK(model && pixels && out_data && out_size, Status::InvalidArgument, "null argument");
    LMC_CHECK(channels == 1 || channels == 3 || channels == 4, Status::InvalidArgument, "channels must be 1, 3 or 4");
    LMC_CHECK(width >= 1 && height >= 1, Status::InvalidArgument, "image must be at least 1x1");
    LMC_CHECK(std::isfinite(quality) && quality >= 1.0f && quality <= 100.0f, Status::InvalidArgument,
              "quality must be in [1, 100]");
    LMC_CHECK(row_stride >= size_t(width) * channels, Status::InvalidArgument, "row_stride is smaller than a row");
    LMC_CHECK(!options || options->strip_rows >= 0, Status::InvalidArgument, "strip_rows must be >= 0");
    LMC_CHECK(!options || options->plain_rounding == 0 || options->plain_rounding == 1, Status::InvalidArgument,
              "plain_rounding must be 0 or 1");
    LMC_CHECK(!options || options->residual == 0 || options->residual == 1, Status::InvalidArgument,
              "residual must be 0 or 1");
    const bool residual = options && options->residual;
    LMC_CHECK(!residual || (options->max_error >= 0 && options->max_error <= lmc::kMaxResidualError),
              Status::InvalidArgument, "max_error must be in 0.." + std::to_string(lmc::kMaxResidualError));
    // lossless / near-lossless: the residual coder stands in for the model's codec
    const lmc::ResidualCodec residual_codec(model->desc, residual ? options->max_error : 0);
    const lmc::Codec& codec = residual ? static_cast<const lmc::Codec&>(residual_codec) : *model->codec;
    if (residual) quality = 100.0f;
    lmc::Header hdr;
    hdr.width = width;
    hdr.height = height;
    hdr.channels = uint8_t(channels);
    hdr.bit_depth = 8;
    hdr.codec = model->desc.id;
    hdr.quality_x100 = uint16_t(std::lround(double(quality) * 100.0));
    hdr.model_id = model->weights.model_id();
    lmc::validate_header(hdr, lmc::Limits(), true);
    std::vector<lmc::Chunk> chunks;
    metadata_chunks(options ? options->metadata : nullptr, chunks);
    auto pool = make_pool(options ? options->threads : 0);
    lmc::ProgressScope progress(options ? options->progress : nullptr, options ? options->progress_user : nullptr);
    lmc::EncodeRequest req;
    req.pixels = pixels;
    req.width = width;
    req.height = height;
    req.stride = row_stride;
    req.channels = channels;
    req.quality_x100 = hdr.quality_x100;
    req.pool = pool->get();
    req.strip_rows = options ? options->strip_rows : 0;
    req.rdo = !(options && options->plain_rounding);
    LMC_CHECK(!(residual && options->quality_map), Status::InvalidArgument,
              "a quality map cannot be combined with residual (lossless / max_error) coding");
    if (options && options->quality_map) {
      req.quality_map = options->quality_map;
      req.quality_map_cols = options->quality_map_cols;
      req.quality_map_rows = options->quality_map_rows;
    }
    codec.encode(req, chunks);
    if (channels == 4) {
      hdr.flags |= lmc::kFlagHasAlpha;
      chunks.push_back(lmc::Chunk{lmc::kAlpha, lmc::encode_alpha(pixels + 3, width, height, row_stride, 4)});
    }
    std::vector<uint8_t> file = lmc::write_container(hdr, chunks);
    *out_data = copy_out(file);
    *out_size = file.size();
  });
}

lmc_status lmc_decode(const lmc_model* model, const uint8_t* data, size_t size, const lmc_decode_options* options,
                      uint8_t** out_pixels, lmc_image_info* out_info) {
  if (out_pixels) *out_pixels = nullptr;
  return guarded([&] {
    using lmc::Status;
    LMC_CHECK(model && data && out_pixels && out_info, Status::InvalidArgument, "null argument");
    lmc::ContainerView v = lmc::read_container_view(data, size, make_limits(options ? &options->limits : nullptr));
    const lmc::Header& h = v.header;
    // a RESD stream (lossless / near-lossless) needs no weights: any model decodes it
    const lmc::ChunkView* resd = v.find(lmc::kResidual);
    const lmc::ResidualCodec residual_codec(model->desc, 0);
    const lmc::Codec& codec = resd ? static_cast<const lmc::Codec&>(residual_codec) : *model->codec;
    if (!resd) {
      LMC_CHECK(h.codec == model->desc.id, Status::ModelMismatch,
                "stream uses codec " + std::to_string(h.codec) + " but the model is codec " +
                    std::to_string(model->desc.id));
      lmc::check_model_id(h, model->weights.model_id());
    }
    LMC_CHECK(h.tile_height == 0, Status::Unsupported, "striped streams are not supported by this version");
    LMC_CHECK(!options || options->strip_rows >= 0, Status::InvalidArgument, "strip_rows must be >= 0");
    // the payloads' evidence before the output is allocated: a broken alpha
    // or payload chunk costs nothing
    const lmc::ChunkView* alpha = nullptr;
    if (h.channels == 4) {
      alpha = v.find(lmc::kAlpha);
      LMC_CHECK(alpha != nullptr, Status::CorruptStream, "RGBA stream has no alpha chunk");
      lmc::check_alpha(alpha->data, alpha->size, h.width, h.height);
    }
    codec.check(v);
    auto pool = make_pool(options ? options->threads : 0);
    lmc::ProgressScope progress(options ? options->progress : nullptr, options ? options->progress_user : nullptr);
    const size_t n = size_t(h.width) * h.height;
    const size_t ch = h.channels;
    // The codec writes packed RGB into the output buffer itself (not
    // value-initialised: it writes every byte, and a hostile header must not
    // commit memory before its payload is found to be garbage); gray and RGBA
    // are then converted in place, so the peak is the output (3 bytes a pixel
    // for gray, shrunk afterwards) plus the codec's bounded working set.
    uint8_t* out = static_cast<uint8_t*>(std::malloc(n * std::max<size_t>(ch, 3)));
    if (!out) throw std::bad_alloc();
    std::unique_ptr<uint8_t, decltype(&std::free)> guard(out, &std::free);
    lmc::DecodeRequest req;
    req.pool = pool->get();
    req.strip_rows = options ? options->strip_rows : 0;
    codec.decode(v, req, out);
    guard.release();
    lmc::rgb_to_layout_in_place(&out, n, h.channels);
    guard.reset(out);
    if (ch == 4) lmc::decode_alpha(alpha->data, alpha->size, h.width, h.height, out + 3, 4);
    fill_info(h, out_info);
    if (v.find(lmc::kQualityMap)) out_info->flags |= LMC_INFO_QUALITY_MAP;
    if (resd) fill_residual_info(*resd, out_info);
    *out_pixels = guard.release();
  });
}

lmc_status lmc_info(const uint8_t* data, size_t size, const lmc_limits* limits, lmc_image_info* out_info) {
  return guarded([&] {
    LMC_CHECK(data && out_info, lmc::Status::InvalidArgument, "null argument");
    fill_info(lmc::read_header(data, size, make_limits(limits)), out_info);
    if (lmc::has_chunk_type(data, size, lmc::kQualityMap)) out_info->flags |= LMC_INFO_QUALITY_MAP;
    lmc::ChunkView resd;
    if (lmc::peek_chunk(data, size, lmc::kResidual, &resd)) fill_residual_info(resd, out_info);
  });
}

lmc_status lmc_read_metadata(const uint8_t* data, size_t size, const lmc_limits* limits, lmc_metadata* out) {
  if (out) std::memset(out, 0, sizeof(*out));
  return guarded([&] {
    LMC_CHECK(data && out, lmc::Status::InvalidArgument, "null argument");
    lmc::ContainerView v = lmc::read_container_view(data, size, make_limits(limits));
    if (const lmc::ChunkView* c = v.find(lmc::kIcc)) out->icc = c->data, out->icc_size = c->size;
    if (const lmc::ChunkView* c = v.find(lmc::kExif)) out->exif = c->data, out->exif_size = c->size;
    if (const lmc::ChunkView* c = v.find(lmc::kXmp)) out->xmp = c->data, out->xmp_size = c->size;
  });
}

int lmc_check(const uint8_t* data, size_t size) { return data && lmc::sniff(data, size) ? 1 : 0; }

const char* lmc_set_force_scalar(int force) {
  lmc::dsp::set_force_scalar(force != 0);
  return lmc::dsp::active_isa_name();
}

const char* lmc_set_kernels(const char* name) {
  g_last_error.clear();
  lmc::dsp::Isa cap;
  if (!lmc::dsp::parse_isa(name, &cap)) {
    g_last_error = std::string("unknown kernel path '") + (name ? name : "(null)") +
                   "' (expected auto, scalar, simd128, avx2 or avx512)";
    return nullptr;
  }
  lmc::dsp::set_max_isa(cap);
  return lmc::dsp::active_isa_name();
}

int lmc_kernels_available(const char* name) {
  lmc::dsp::Isa isa;
  if (name == nullptr || std::strcmp(name, "auto") == 0 || !lmc::dsp::parse_isa(name, &isa)) return 0;
  return lmc::dsp::isa_available(isa) ? 1 : 0;
}

void lmc_free(void* p) { std::free(p); }

}  // extern "C"
