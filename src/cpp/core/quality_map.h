// lmcodec core: the QMAP chunk -- a spatial quality map (docs/format.md).
//
// One signed quality offset (whole quality points, -99..=99) per 64 x 64
// block of the padded image (the z grid); block quality =
// clamp(header quality + offset, 1, 100). The encoder applies each block's
// gains and RDO costs, the decoder its inverse gains (core/hyperprior.h,
// QualityMap). Chunk data:
//
//   offset size  field
//   0      1     block_log2   6 (64-pixel blocks); other values: Unsupported
//   1      1     reserved     0
//   2      2     cols         u16 = padded width / 64
//   4      2     rows         u16 = padded height / 64
//   6      n     offsets      cols * rows int8, row-major, each in -99..=99
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/hyperprior.h"
#include "util/error.h"

namespace lmc {

constexpr int kQualityMapBlockLog2 = 6;
constexpr int kQualityMapMaxOffset = 99;
constexpr size_t kQualityMapHeader = 6;

// Blocks across / down of a width x height image: ceil(width / 64), ceil(height / 64).
uint32_t quality_map_cols(uint32_t width);
uint32_t quality_map_rows(uint32_t height);

// The per-block qualities of an offset grid (cols x rows, row-major) for an
// image of width x height coded at base_qx. Throws `status` (InvalidArgument
// for an encoder's caller, CorruptStream for a stream) when the grid does not
// match the image or an offset is outside -99..=99.
QualityMap quality_map_from_offsets(const int8_t* offsets, uint32_t cols, uint32_t rows, uint32_t width,
                                    uint32_t height, uint16_t base_qx, Status status);

// The QMAP chunk data of an offset grid (checked as above, InvalidArgument).
std::vector<uint8_t> write_quality_map(const int8_t* offsets, uint32_t cols, uint32_t rows, uint32_t width,
                                       uint32_t height);

// Parses a QMAP chunk of a width x height stream at base_qx: CorruptStream
// (Unsupported for another block size) unless it is exactly as above. Reads
// only the given bytes; allocates cols * rows entries once the length is
// known to hold them.
QualityMap read_quality_map(const uint8_t* data, size_t size, uint32_t width, uint32_t height, uint16_t base_qx);

// The offsets stored in a QMAP chunk (after the same checks), for tools.
std::vector<int8_t> quality_map_offsets(const uint8_t* data, size_t size, uint32_t width, uint32_t height);

}  // namespace lmc
