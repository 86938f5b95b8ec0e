// lmcodec core: pixel layout conversion between the caller's interleaved
// 8-bit pixels and the networks' planar float [0, 1] tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "util/buffers.h"

namespace lmc {

// Rows [y0, y1) of the padded planar image (edge-replicated beyond w, h).
void to_planar_rows(const uint8_t* px, uint32_t w, uint32_t h, size_t stride, size_t ch, uint32_t wp, uint32_t y0,
                    uint32_t y1, Buf<float>& out);

// Row of w pixels from three planes to interleaved RGB: each value
// round(clamp(v, 0, 1) * 255), ties to even.
void planar_row_to_rgb(const float* r, const float* g, const float* b, uint32_t w, uint8_t* dst);

// The image as packed-or-strided RGB for a codec that reads only RGB:
// channels 3 returns px itself (*out_stride = stride); 1 (gray, replicated)
// and 4 (alpha dropped) are converted into tmp (*out_stride = width * 3).
const uint8_t* pack_rgb(const uint8_t* px, uint32_t w, uint32_t h, size_t stride, uint32_t channels,
                        std::vector<uint8_t>& tmp, size_t* out_stride);

// A decoder's packed RGB (n pixels, malloc'ed, n * max(channels, 3) bytes)
// turned into the stream's layout in place: 3 = unchanged; 1 = gray, the
// rounded mean of R, G and B (the buffer is then shrunk to n bytes with
// realloc, which may move it: *buf is updated); 4 = RGBx with the alpha
// bytes left for the caller to fill.
void rgb_to_layout_in_place(uint8_t** buf, size_t n, uint32_t channels);

}  // namespace lmc
