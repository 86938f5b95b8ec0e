// lmcodec core: pixel layout conversion (see pixels.h).
#include "core/pixels.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>

namespace lmc {

namespace {

// round(clamp(v, 0, 1) * 255) to 8 bits, ties to even: adding and removing
// 1.5 * 2^23 rounds a float in [0, 2^22) to the nearest integer in the
// default rounding mode, exactly as std::nearbyint does, without a libm call
// (so the loop vectorises; -ffp-contract=off keeps the two steps apart).
inline uint8_t to_u8(float v) {
  const float c = std::min(1.0f, std::max(0.0f, v)) * 255.0f;
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
  return uint8_t(std::nearbyint(c));  // excess precision (x87) would break the trick
#else
  constexpr float kMagic = 12582912.0f;
  return uint8_t(int32_t((c + kMagic) - kMagic));
#endif
}

}  // namespace

// Rows [y0, y1) of the padded planar image (edge-replicated beyond w, h).
void to_planar_rows(const uint8_t* px, uint32_t w, uint32_t h, size_t stride, size_t ch, uint32_t wp, uint32_t y0,
                    uint32_t y1, Buf<float>& out) {
  const uint32_t rows = y1 - y0;
  out.resize(size_t(3) * rows * wp);
  for (int c = 0; c < 3; ++c) {
    size_t src_c = ch >= 3 ? size_t(c) : 0;  // gray: replicate
    for (uint32_t y = y0; y < y1; ++y) {
      const uint8_t* row = px + size_t(std::min(y, h - 1)) * stride;
      float* o = &out[(size_t(c) * rows + (y - y0)) * wp];
      for (uint32_t x = 0; x < w; ++x) o[x] = row[size_t(x) * ch + src_c] * (1.0f / 255.0f);
      for (uint32_t x = w; x < wp; ++x) o[x] = o[w - 1];
    }
  }
}

void planar_row_to_rgb(const float* r, const float* g, const float* b, uint32_t w, uint8_t* dst) {
  for (uint32_t x = 0; x < w; ++x) {
    dst[3 * size_t(x)] = to_u8(r[x]);
    dst[3 * size_t(x) + 1] = to_u8(g[x]);
    dst[3 * size_t(x) + 2] = to_u8(b[x]);
  }
}

const uint8_t* pack_rgb(const uint8_t* px, uint32_t w, uint32_t h, size_t stride, uint32_t channels,
                        std::vector<uint8_t>& tmp, size_t* out_stride) {
  if (channels == 3) {
    *out_stride = stride;
    return px;
  }
  tmp.resize(size_t(w) * h * 3);
  for (uint32_t y = 0; y < h; ++y) {
    const uint8_t* row = px + size_t(y) * stride;
    uint8_t* o = &tmp[size_t(y) * w * 3];
    for (uint32_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) o[size_t(x) * 3 + c] = row[size_t(x) * channels + (channels == 1 ? 0 : c)];
  }
  *out_stride = size_t(w) * 3;
  return tmp.data();
}

void rgb_to_layout_in_place(uint8_t** buf, size_t n, uint32_t channels) {
  uint8_t* out = *buf;
  if (channels == 1) {
    for (size_t i = 0; i < n; ++i) out[i] = uint8_t((unsigned(out[3 * i]) + out[3 * i + 1] + out[3 * i + 2] + 1) / 3);
    if (uint8_t* shrunk = static_cast<uint8_t*>(std::realloc(out, n ? n : 1))) *buf = shrunk;
  } else if (channels == 4) {
    // back to front: pixel i's RGB (bytes 3i..3i+2) is read before any
    // write reaches it (writes of pixels >= i start at 4i)
    for (size_t i = n; i-- > 0;) {
      out[4 * i + 2] = out[3 * i + 2];
      out[4 * i + 1] = out[3 * i + 1];
      out[4 * i] = out[3 * i];
    }
  }
}

}  // namespace lmc
