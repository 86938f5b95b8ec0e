// lmcodec core: lossless coding of the alpha plane (ALPH chunk).
//
// Payload: u8 mode.
//   mode 0: constant plane; one more byte, the value.
//   mode 1: MED-predicted (LOCO-I median edge detector) residuals mod 256,
//           coded with the rANS coder under one static table: 257 u16
//           frequencies (256 residual values + the coder's escape symbol,
//           every one >= 1, sum 65536), then the rANS stream.
// The decoder validates the table (sum, minimum) and the stream's end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lmc {

// alpha: width*height values read at alpha[(y*stride) + x*step].
std::vector<uint8_t> encode_alpha(const uint8_t* alpha, uint32_t width, uint32_t height, size_t stride, size_t step);
// Writes width*height values to out[(y*width + x)*step] (interleaved output).
// Decodes row by row (memory: a few rows, never a plane of residuals).
void decode_alpha(const uint8_t* data, size_t size, uint32_t width, uint32_t height, uint8_t* out, size_t step);
// The checks decode_alpha makes before it decodes anything: mode, table, and
// whether the rANS stream can possibly hold width*height residuals under that
// table (rans.h's bound). CorruptStream otherwise. Cheap: a decoder calls it
// before it allocates the image, so a broken alpha chunk costs no pixels.
void check_alpha(const uint8_t* data, size_t size, uint32_t width, uint32_t height);

}  // namespace lmc
