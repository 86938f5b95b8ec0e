// lmcodec core: CRC-32 (IEEE 802.3 polynomial, as in PNG, zlib and gzip).
//
// Reflected polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF.
// crc32("123456789") == 0xCBF43926. Incremental use:
//   uint32_t c = 0;                    // the CRC of the empty string
//   c = lmc::crc32(c, part1, n1);
//   c = lmc::crc32(c, part2, n2);      // == crc32(0, part1+part2, n1+n2)
// Slicing-by-8, portable (no SIMD, endian independent), about 1-2 GB/s.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lmc {

uint32_t crc32(uint32_t crc, const uint8_t* data, size_t size) noexcept;

inline uint32_t crc32(const uint8_t* data, size_t size) noexcept { return crc32(0, data, size); }

}  // namespace lmc
