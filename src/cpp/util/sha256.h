// SHA-256 (FIPS 180-4), used to compute a weights file's model id.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace lmc {
std::array<uint8_t, 32> sha256(const uint8_t* data, size_t size);
}
