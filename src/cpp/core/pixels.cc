// lmcodec core: pixel layout conversion (see pixels.h).
#include "core/pixels.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

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

}  // namespace lmc
