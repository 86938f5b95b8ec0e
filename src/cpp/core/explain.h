// lmcodec core: what a hyperprior stream spends its bits on (lmcodec explain).
//
// Decodes the entropy-coded symbols of a stream exactly as the decoder does
// and returns them with the code length each one took: -log2(freq / 2^16)
// under the very table the coder used, plus for an escape its 6 length bits
// and raw bits (rans.h). The sums equal the SIDE / LATN payloads up to the
// rANS flush (the lanes' final states, a few bytes per stream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/hyperprior.h"
#include "core/rans.h"

namespace lmc {

struct StreamSymbols {
  Latents sym;                 // z [N][zh][zw], r and idx [M][yh][yw]
  std::vector<float> mu;       // [M][yh][yw] the h_s means
  std::vector<float> y_hat;    // [M][yh][yw] (r + mu) * inv_gain: g_s's input
  std::vector<float> bits_z;   // [N][zh][zw] code length of each z symbol
  std::vector<float> bits_y;   // [M][yh][yw] code length of each r symbol
};

// Code length in bits of value v under table t (escape included).
double symbol_code_bits(const OwnedTables& tables, size_t t, int32_t v);

// The symbols of a hyperprior stream's SIDE / LATN payloads (checked as
// decode() checks them: CorruptStream on damage).
StreamSymbols stream_symbols(const HyperpriorModel& model, const uint8_t* side, size_t side_size, const uint8_t* lat,
                             size_t lat_size, uint32_t width, uint32_t height, uint16_t quality_x100,
                             const QualityMap* qmap, dsp::ThreadPool* pool);

}  // namespace lmc
