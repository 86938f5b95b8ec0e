// lmcodec core: the scale-index rule of the hyperprior (docs/weights.md):
// an integer log-scale in the h_s output's fixed point -> the index of the
// Gaussian table that codes the latent, k = clamp(floor((ls - base) / step),
// 0, count - 1). Integer only, so encoder and decoders agree everywhere.
#pragma once

#include <algorithm>
#include <cstdint>

namespace lmc {

struct ScaleIndexRule {
  int64_t base = 0, step = 1;  // scale_index.base / .step (step >= 1)
  int count = 1;               // scale.count
  uint16_t operator()(int64_t ls) const {
    const int64_t d = ls - base;
    return uint16_t(std::min<int64_t>(d < 0 ? 0 : d / step, count - 1));
  }
};

}  // namespace lmc
