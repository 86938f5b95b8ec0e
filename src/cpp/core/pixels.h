// lmcodec core: pixel layout conversion between the caller's interleaved
// 8-bit pixels and the networks' planar float [0, 1] tensors.
#pragma once

#include <cstddef>
#include <cstdint>

#include "util/buffers.h"

namespace lmc {

// Rows [y0, y1) of the padded planar image (edge-replicated beyond w, h).
void to_planar_rows(const uint8_t* px, uint32_t w, uint32_t h, size_t stride, size_t ch, uint32_t wp, uint32_t y0,
                    uint32_t y1, Buf<float>& out);

// Row of w pixels from three planes to interleaved RGB: each value
// round(clamp(v, 0, 1) * 255), ties to even.
void planar_row_to_rgb(const float* r, const float* g, const float* b, uint32_t w, uint8_t* dst);

}  // namespace lmc
