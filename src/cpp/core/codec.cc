// lmcodec core: the public C API (include/lmcodec.h) -- models, encode,
// decode, info. Everything below the API throws lmc::Error; here it becomes
// an lmc_status plus a thread-local message.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/alpha.h"
#include "core/container.h"
#include "util/error.h"
#include "util/progress.h"
#include "core/hyperprior.h"
#include "core/pca_codec.h"
#include "core/weights.h"
#include "dsp/cpu.h"
#include "util/threadpool.h"
#include "lmcodec.h"

struct lmc_model {
  lmc::Weights weights;
  uint32_t codec = 0;
  std::unique_ptr<lmc::HyperpriorModel> hyper;
  std::unique_ptr<lmc::PcaCodec> pca;
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

uint8_t* copy_out(const std::vector<uint8_t>& v) {
  uint8_t* p = static_cast<uint8_t*>(std::malloc(v.empty() ? 1 : v.size()));
  if (!p) throw std::bad_alloc();
  if (!v.empty()) std::memcpy(p, v.data(), v.size());
  return p;
}

void open_model(lmc::Weights w, lmc_model** out) {
  auto m = std::make_unique<lmc_model>();
  m->weights = std::move(w);
  const std::string& kind = m->weights.get_str("model");
  if (kind == "hyperprior") {
    m->codec = lmc::kCodecHyperprior;
    m->hyper = std::make_unique<lmc::HyperpriorModel>(m->weights);
  } else if (kind == "pca") {
    m->codec = lmc::kCodecPca;
    m->pca = std::make_unique<lmc::PcaCodec>(m->weights);
  } else {
    lmc::fail(lmc::Status::Unsupported, "unknown model type '" + kind + "'");
  }
  *out = m.release();
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

uint32_t lmc_model_codec(const lmc_model* model) { return model ? model->codec : 0; }

void lmc_model_id(const lmc_model* model, uint8_t out[16]) {
  if (model && out) std::memcpy(out, model->weights.model_id().data(), 16);
}

int64_t lmc_model_param_count(const lmc_model* model) {
  if (!model) return 0;
  if (model->hyper) return model->hyper->parameter_count();
  return 0;
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
    lmc::Header hdr;
    hdr.width = width;
    hdr.height = height;
    hdr.channels = uint8_t(channels);
    hdr.bit_depth = 8;
    hdr.codec = uint8_t(model->codec);
    hdr.quality_x100 = uint16_t(std::lround(double(quality) * 100.0));
    hdr.model_id = model->weights.model_id();
    lmc::validate_header(hdr, lmc::Limits(), true);
    auto pool = make_pool(options ? options->threads : 0);
    lmc::ProgressScope progress(options ? options->progress : nullptr, options ? options->progress_user : nullptr);
    std::vector<lmc::Chunk> chunks;
    if (model->hyper) {
      lmc::Chunk side{lmc::kSideInfo, {}}, lat{lmc::kLatents, {}};
      LMC_CHECK(!options || options->strip_rows >= 0, Status::InvalidArgument, "strip_rows must be >= 0");
      LMC_CHECK(!options || options->plain_rounding == 0 || options->plain_rounding == 1, Status::InvalidArgument,
                "plain_rounding must be 0 or 1");
      model->hyper->encode(pixels, width, height, row_stride, channels, hdr.quality_x100, pool->get(), side.data, lat.data,
                           options ? options->strip_rows : 0, !(options && options->plain_rounding));
      chunks.push_back(std::move(side));
      chunks.push_back(std::move(lat));
    } else {
      const uint8_t* rgb = pixels;
      size_t stride = row_stride;
      std::vector<uint8_t> tmp;
      if (channels != 3) {
        tmp.resize(size_t(width) * height * 3);
        for (uint32_t y = 0; y < height; ++y)
          for (uint32_t x = 0; x < width; ++x)
            for (int c = 0; c < 3; ++c)
              tmp[(size_t(y) * width + x) * 3 + c] = pixels[size_t(y) * row_stride + size_t(x) * channels + (channels == 1 ? 0 : c)];
        rgb = tmp.data();
        stride = size_t(width) * 3;
      }
      lmc::progress(0, 1);
      lmc::Chunk lat{lmc::kLatents, model->pca->encode(rgb, width, height, stride, hdr.quality_x100)};
      chunks.push_back(std::move(lat));
      lmc::progress(1, 1);
    }
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
    LMC_CHECK(h.codec == model->codec, Status::ModelMismatch,
              "stream uses codec " + std::to_string(h.codec) + " but the model is codec " + std::to_string(model->codec));
    lmc::check_model_id(h, model->weights.model_id());
    LMC_CHECK(h.tile_height == 0, Status::Unsupported, "striped streams are not supported by this version");
    const lmc::ChunkView* lat = v.find(lmc::kLatents);
    LMC_CHECK(lat != nullptr, Status::CorruptStream, "stream has no latents chunk");
    LMC_CHECK(v.find_all(lmc::kLatents).size() == 1, Status::CorruptStream, "stream has more than one latents chunk");
    const lmc::ChunkView* alpha = nullptr;
    if (h.channels == 4) {
      alpha = v.find(lmc::kAlpha);
      LMC_CHECK(alpha != nullptr, Status::CorruptStream, "RGBA stream has no alpha chunk");
      // before any pixel is allocated: a broken alpha chunk costs nothing
      lmc::check_alpha(alpha->data, alpha->size, h.width, h.height);
    }
    const lmc::ChunkView* side = nullptr;
    if (model->hyper) {
      side = v.find(lmc::kSideInfo);
      LMC_CHECK(side != nullptr, Status::CorruptStream, "stream has no side-information chunk");
    }
    LMC_CHECK(!options || options->strip_rows >= 0, Status::InvalidArgument, "strip_rows must be >= 0");
    // the payloads' evidence before the output is allocated
    if (model->hyper) model->hyper->check_payload(side->size, lat->size, h.width, h.height);
    else model->pca->check_payload(lat->size, h.width, h.height, h.quality_x100);
    auto pool = make_pool(options ? options->threads : 0);
    lmc::ProgressScope progress(options ? options->progress : nullptr, options ? options->progress_user : nullptr);
    const size_t n = size_t(h.width) * h.height;
    const size_t ch = h.channels;
    // The codecs write packed RGB into the output buffer itself (not
    // value-initialised: they write every byte, and a hostile header must not
    // commit memory before its payload is found to be garbage); gray and RGBA
    // are then converted in place, so the peak is the output (3 bytes a pixel
    // for gray, shrunk afterwards) plus the codec's bounded working set.
    uint8_t* out = static_cast<uint8_t*>(std::malloc(n * std::max<size_t>(ch, 3)));
    if (!out) throw std::bad_alloc();
    std::unique_ptr<uint8_t, decltype(&std::free)> guard(out, &std::free);
    if (model->hyper) {
      model->hyper->decode(side->data, side->size, lat->data, lat->size, h.width, h.height, h.quality_x100, pool->get(),
                           out, options ? options->strip_rows : 0);
    } else {
      lmc::progress(0, 1);
      model->pca->decode(lat->data, lat->size, h.width, h.height, h.quality_x100, out);
      lmc::progress(1, 1);
    }
    if (ch == 1) {
      for (size_t i = 0; i < n; ++i) out[i] = uint8_t((unsigned(out[3 * i]) + out[3 * i + 1] + out[3 * i + 2] + 1) / 3);
      if (uint8_t* shrunk = static_cast<uint8_t*>(std::realloc(out, n))) {
        guard.release();
        out = shrunk;
        guard.reset(out);
      }
    } else if (ch == 4) {
      // back to front: pixel i's RGB (bytes 3i..3i+2) is read before any
      // write reaches it (writes of pixels >= i start at 4i)
      for (size_t i = n; i-- > 0;) {
        out[4 * i + 2] = out[3 * i + 2];
        out[4 * i + 1] = out[3 * i + 1];
        out[4 * i] = out[3 * i];
      }
      lmc::decode_alpha(alpha->data, alpha->size, h.width, h.height, out + 3, 4);
    }
    fill_info(h, out_info);
    *out_pixels = guard.release();
  });
}

lmc_status lmc_info(const uint8_t* data, size_t size, const lmc_limits* limits, lmc_image_info* out_info) {
  return guarded([&] {
    LMC_CHECK(data && out_info, lmc::Status::InvalidArgument, "null argument");
    fill_info(lmc::read_header(data, size, make_limits(limits)), out_info);
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
                   "' (expected auto, scalar, avx2 or avx512)";
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
