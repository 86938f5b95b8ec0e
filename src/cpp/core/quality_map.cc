#include "core/quality_map.h"

#include <algorithm>
#include <string>

#include "util/error.h"

namespace lmc {

uint32_t quality_map_cols(uint32_t width) { return uint32_t((uint64_t(width) + 63) / 64); }
uint32_t quality_map_rows(uint32_t height) { return uint32_t((uint64_t(height) + 63) / 64); }

QualityMap quality_map_from_offsets(const int8_t* off, uint32_t cols, uint32_t rows, uint32_t width, uint32_t height,
                                    uint16_t base_qx, Status status) {
  const uint32_t want_c = quality_map_cols(width), want_r = quality_map_rows(height);
  if (cols != want_c || rows != want_r)
    fail(status, "quality map of " + std::to_string(cols) + "x" + std::to_string(rows) + " blocks; a " +
                     std::to_string(width) + "x" + std::to_string(height) + " image needs " + std::to_string(want_c) +
                     "x" + std::to_string(want_r) + " (one per 64x64 block)");
  QualityMap m;
  m.bw = int(cols);
  m.bh = int(rows);
  m.qx.resize(size_t(cols) * rows);
  for (size_t i = 0; i < m.qx.size(); ++i) {
    if (off[i] < -kQualityMapMaxOffset || off[i] > kQualityMapMaxOffset)
      fail(status, "quality map offset " + std::to_string(int(off[i])) + " outside -99..99");
    const int q = int(base_qx) + 100 * int(off[i]);
    m.qx[i] = uint16_t(std::min(10000, std::max(100, q)));
  }
  return m;
}

std::vector<uint8_t> write_quality_map(const int8_t* off, uint32_t cols, uint32_t rows, uint32_t width,
                                       uint32_t height) {
  quality_map_from_offsets(off, cols, rows, width, height, 7500, Status::InvalidArgument);  // the checks
  std::vector<uint8_t> d(kQualityMapHeader + size_t(cols) * rows);
  d[0] = uint8_t(kQualityMapBlockLog2);
  d[1] = 0;
  d[2] = uint8_t(cols & 0xFF);
  d[3] = uint8_t(cols >> 8);
  d[4] = uint8_t(rows & 0xFF);
  d[5] = uint8_t(rows >> 8);
  for (size_t i = 0; i < size_t(cols) * rows; ++i) d[kQualityMapHeader + i] = uint8_t(off[i]);
  return d;
}

namespace {
// Header checks; returns (cols, rows) once the length is exactly right.
void check_chunk(const uint8_t* d, size_t size, uint32_t width, uint32_t height, uint32_t& cols, uint32_t& rows) {
  if (size < kQualityMapHeader) fail(Status::CorruptStream, "QMAP chunk of " + std::to_string(size) + " bytes");
  if (d[0] != kQualityMapBlockLog2)
    fail(Status::Unsupported, "QMAP with blocks of 2^" + std::to_string(int(d[0])) + " pixels (only 64 is defined)");
  if (d[1] != 0) fail(Status::CorruptStream, "QMAP reserved byte is not zero");
  cols = uint32_t(d[2]) | uint32_t(d[3]) << 8;
  rows = uint32_t(d[4]) | uint32_t(d[5]) << 8;
  if (cols != quality_map_cols(width) || rows != quality_map_rows(height))
    fail(Status::CorruptStream, "QMAP grid " + std::to_string(cols) + "x" + std::to_string(rows) +
                                    " does not match the image's 64x64 blocks");
  if (size - kQualityMapHeader != size_t(cols) * rows)
    fail(Status::CorruptStream, "QMAP chunk length does not match its grid");
}
}  // namespace

QualityMap read_quality_map(const uint8_t* d, size_t size, uint32_t width, uint32_t height, uint16_t base_qx) {
  uint32_t cols = 0, rows = 0;
  check_chunk(d, size, width, height, cols, rows);
  return quality_map_from_offsets(reinterpret_cast<const int8_t*>(d + kQualityMapHeader), cols, rows, width, height,
                                  base_qx, Status::CorruptStream);
}

std::vector<int8_t> quality_map_offsets(const uint8_t* d, size_t size, uint32_t width, uint32_t height) {
  uint32_t cols = 0, rows = 0;
  check_chunk(d, size, width, height, cols, rows);
  const int8_t* p = reinterpret_cast<const int8_t*>(d + kQualityMapHeader);
  std::vector<int8_t> out(p, p + size_t(cols) * rows);
  for (int8_t v : out)
    if (v < -kQualityMapMaxOffset || v > kQualityMapMaxOffset)
      fail(Status::CorruptStream, "QMAP offset " + std::to_string(int(v)) + " outside -99..99");
  return out;
}

}  // namespace lmc
