// lmcodec core: the hyperprior's quality-dependent steps -- where a quality
// falls on the anchor axis, the gains and inverse gains (per channel, or per
// block of a quality map), and the encoder's rate-distortion optimised
// quantiser (split from hyperprior.cc, which builds and runs the networks).
#include <algorithm>
#include <cmath>
#include <map>

#include "core/hyperprior.h"
#include "util/error.h"

namespace lmc {

HyperpriorModel::AnchorPos HyperpriorModel::anchor_position(uint16_t qx) const {
  const double q = std::min(100.0, std::max(1.0, qx / 100.0));
  const double t = (q - 1.0) / 99.0 * (anchors_ - 1);
  AnchorPos p;
  if (anchors_ > 1) {
    p.i = std::min(int(std::floor(t)), anchors_ - 2);
    p.f = t - p.i;
  }
  return p;
}

void HyperpriorModel::gains(uint16_t qx, std::vector<float>& gain, std::vector<float>& inv_gain) const {
  const AnchorPos pos = anchor_position(qx);
  const int i = pos.i;
  const float f = float(pos.f);  // the gains interpolate in float (decoders depend on these bits)
  gain.resize(M_);
  inv_gain.resize(M_);
  for (int c = 0; c < M_; ++c) {
    const float* a = &log_gain_[size_t(i) * M_];
    const float* ai = &log_inv_gain_[size_t(i) * M_];
    if (anchors_ > 1) {
      gain[c] = std::exp(a[c] * (1 - f) + a[c + M_] * f);
      inv_gain[c] = std::exp(ai[c] * (1 - f) + ai[c + M_] * f);
    } else {
      gain[c] = std::exp(a[c]);
      inv_gain[c] = std::exp(ai[c]);
    }
  }
}

void HyperpriorModel::apply_gains(float* y, int yh, int yw, uint16_t qx, const QualityMap* qmap, bool inverse,
                                  dsp::ThreadPool* pool) const {
  std::vector<float> g, ig;
  if (!qmap || qmap->empty()) {
    gains(qx, g, ig);
    dsp::scale_channels(y, M_, int64_t(yh) * yw, inverse ? ig.data() : g.data(), pool);
    return;
  }
  LMC_CHECK(qmap->bw * 4 == yw && qmap->bh * 4 == yh && qmap->qx.size() == size_t(qmap->bw) * qmap->bh,
            Status::Internal, "quality map does not match the latent grid");
  // the gains of each distinct block quality ([blocks][M]), then one float
  // multiply per latent: the same product on every kernel path and thread count
  const size_t nb = qmap->qx.size();
  std::vector<float> per(nb * size_t(M_));
  std::map<uint16_t, size_t> seen;
  for (size_t b = 0; b < nb; ++b) {
    auto it = seen.find(qmap->qx[b]);
    if (it != seen.end()) {
      std::copy_n(&per[it->second * M_], M_, &per[b * M_]);
      continue;
    }
    gains(qmap->qx[b], g, ig);
    std::copy_n((inverse ? ig : g).data(), M_, &per[b * M_]);
    seen.emplace(qmap->qx[b], b);
  }
  const int bw = qmap->bw;
  dsp::parallel_for(pool, M_, [&](int64_t c, int) {
    float* p = y + size_t(c) * yh * yw;
    for (int i = 0; i < yh; ++i)
      for (int x = 0; x < yw; ++x) p[size_t(i) * yw + x] *= per[(size_t(i / 4) * bw + x / 4) * M_ + size_t(c)];
  });
}

void HyperpriorModel::apply_inv_gains(float* y, int yh, int yw, uint16_t qx, const QualityMap* qmap,
                                      dsp::ThreadPool* pool) const {
  apply_gains(y, yh, yw, qx, qmap, true, pool);
}

std::vector<float> HyperpriorModel::rdo_costs(uint16_t qx) const {
  // the same position and log-linear interpolation as gains(), in double
  const AnchorPos pos = anchor_position(qx);
  const int i = pos.i;
  const double f = pos.f;
  std::vector<float> k(M_);
  for (int c = 0; c < M_; ++c) {
    const double* a = &log_rdo_[size_t(i) * M_ + c];
    k[c] = float(std::exp(anchors_ > 1 ? a[0] * (1 - f) + a[M_] * f : a[0]));
  }
  return k;
}

float HyperpriorModel::symbol_bits(int k, int32_t v) const {
  const int n = y_tables_.lengths[size_t(k)] - 2;  // regular symbols
  const int64_t s = int64_t(v) - y_tables_.offsets[size_t(k)];
  const float* b = &y_bits_[size_t(k) * y_tables_.stride];
  if (s >= 0 && s < n) return b[s];
  // escape symbol, 6 length bits, then floor(log2 m) raw bits (rans.h)
  const uint64_t m = s < 0 ? uint64_t(-s) : uint64_t(s - n + 1);
  int nb = 0;
  while ((m >> (nb + 1)) != 0) ++nb;
  return b[n] + float(6 + nb);
}

int median_scale_index(const int32_t* idx, size_t n, int count) {
  std::vector<int64_t> hist(size_t(count), 0);
  for (size_t i = 0; i < n; ++i) ++hist[size_t(idx[i])];
  int t_med = 0;
  for (int64_t below = 0; t_med < count; ++t_med) {
    below += hist[size_t(t_med)];
    if (2 * below >= int64_t(n)) break;
  }
  return t_med;
}

// r = the integer coded for each latent. Plain: round(y - mu) to nearest.
// RDO: of the two integers around y - mu (the nearest and the next one on
// the other side; the one above when y - mu is an integer), take the one with
// the lower cost
//   J(r) = k_c * w_t * (y - mu - r)^2 + bits(r | scale index t),
// where k_c (rdo.cost, interpolated at this quality) is what a unit squared
// error in channel c costs in bits under the training objective
// lambda*255^2*MSE + bpp, measured at export (training/export.py,
// rdo_cost_table), and w_t the scale-relative weight below. Encoder-only:
// the decoder is unchanged. The arithmetic is plain float in a fixed order
// (this file is built without FP contraction), so the choice is the same on
// every CPU and kernel path, and the Python reference encoder makes it the
// same way.
void HyperpriorModel::quantize_latents(const float* y, const float* mu, const int32_t* idx, int yh, int yw,
                                       uint16_t qx, bool rdo, const QualityMap* qmap, dsp::ThreadPool* pool,
                                       int32_t* r, int c0, int c1, int phase, int t_med_in) const {
  const size_t plane = size_t(yh) * yw;
  if (c1 < 0) c1 = M_;
  auto clamp_i32 = [](float v) {
    v = std::max(-2147483520.0f, std::min(2147483520.0f, v));
    return int32_t(v);
  };
  // the positions of row i this call quantises: x0, x0 + dx, ...
  const int dx = phase < 0 ? 1 : 2;
  auto first_x = [phase](int i) { return phase < 0 ? 0 : (i + phase) & 1; };
  if (!rdo || log_rdo_.empty()) {
    for (int c = c0; c < c1; ++c)
      for (int i = 0; i < yh; ++i)
        for (int x = first_x(i); x < yw; x += dx) {
          const size_t j = size_t(c) * plane + size_t(i) * yw + x;
          r[j] = clamp_i32(std::nearbyint(y[j] - mu[j]));
        }
    return;
  }
  // k_c per block of the quality map ([blocks][M]; one block without a map)
  const bool mapped = qmap && !qmap->empty();
  std::vector<float> k;
  if (mapped) {
    std::map<uint16_t, std::vector<float>> at;
    k.resize(qmap->qx.size() * size_t(M_));
    for (size_t b = 0; b < qmap->qx.size(); ++b) {
      auto it = at.find(qmap->qx[b]);
      if (it == at.end()) it = at.emplace(qmap->qx[b], rdo_costs(qmap->qx[b])).first;
      for (int c = 0; c < M_; ++c) k[size_t(c) * qmap->qx.size() + b] = it->second[size_t(c)];
    }
  } else {
    k = rdo_costs(qx);
  }
  const size_t n_blocks = mapped ? qmap->qx.size() : 1;
  const int bw = mapped ? qmap->bw : 1;
  // Scale-relative weight: an element whose predicted scale is above the
  // image's median scale weighs its error more, (s_t / s_median)^p with
  // p = rdo.scale_power; the scales are log-spaced, so this is
  // exp(p * step * (t - t_median)). t_median: the smallest index with at
  // least half of the elements at or below it (integer histogram, exact).
  std::vector<float> scale_w(size_t(scale_count_), 1.0f);
  if (rdo_scale_power_ > 0.0) {
    int t_med = t_med_in;
    if (t_med < 0) t_med = median_scale_index(idx, plane * M_, scale_count_);
    for (int t = 0; t < scale_count_; ++t)
      scale_w[size_t(t)] = float(std::exp(rdo_scale_power_ * log_scale_step_ * double(t - t_med)));
  }
  const float* sw = scale_w.data();
  const float* bits = y_bits_.data();
  const size_t stride = y_tables_.stride;
  const int32_t* lengths = y_tables_.lengths.data();
  const int32_t* offsets = y_tables_.offsets.data();
  // each element's choice depends only on its own inputs
  const float* kv = k.data();
  // (captures by value: the loop reads them without reloading through references)
  auto run = [this, sw, bits, stride, lengths, offsets, y, mu, idx, r, clamp_i32](size_t j0, size_t j1, size_t dj,
                                                                                   float kc) {
    for (size_t j = j0; j < j1; j += dj) {
      const float res = y[j] - mu[j];
      // nearest, ties to even: the 1.5 * 2^23 trick is exact below 2^22 (and
      // inline, unlike the nearbyint library call)
      const float r0 = std::fabs(res) < 4194304.0f ? (res + 12582912.0f) - 12582912.0f : std::nearbyint(res);
      if (!(std::fabs(r0) < 1e9f)) {  // absurd values (or NaN): no choice to make
        r[j] = clamp_i32(r0);
        continue;
      }
      // the neighbour on the other side; r0 + 1 when res == r0 (+ 0.0f turns -0 into +0)
      const float r1 = r0 + std::copysign(1.0f, (res - r0) + 0.0f);
      const int32_t q0 = int32_t(r0), q1 = int32_t(r1);
      const int t = idx[j];
      const int64_t n = lengths[t] - 2, s0 = int64_t(q0) - offsets[t], s1 = int64_t(q1) - offsets[t];
      float b0, b1;
      if (s0 >= 0 && s0 < n && s1 >= 0 && s1 < n) {  // the common case: both regular symbols
        b0 = bits[size_t(t) * stride + size_t(s0)];
        b1 = bits[size_t(t) * stride + size_t(s1)];
      } else {
        b0 = symbol_bits(t, q0);
        b1 = symbol_bits(t, q1);
      }
      const float d0 = res - r0, d1 = res - r1;
      const float wj = kc * sw[t];
      const float j0 = wj * d0 * d0 + b0;
      const float j1 = wj * d1 * d1 + b1;
      r[j] = j1 < j0 ? q1 : q0;
    }
  };
  // one task per channel; with a map, runs of 4 latent columns share a block's k_c
  dsp::parallel_for(pool, c1 - c0, [&](int64_t cc, int) {
    const int64_t c = c0 + cc;
    const size_t base = size_t(c) * plane;
    const float* kc = kv + size_t(c) * n_blocks;
    if (!mapped && phase < 0) return run(base, base + plane, 1, kc[0]);
    for (int i = 0; i < yh; ++i) {
      const size_t row = base + size_t(i) * yw;
      if (!mapped) {
        run(row + first_x(i), row + yw, 2, kc[0]);
        continue;
      }
      for (int x0 = 0; x0 < yw; x0 += 4) {  // a block's 4 columns (x0 is even: the phase's first is x0 or x0 + 1)
        const int xs = phase < 0 ? x0 : x0 + ((x0 + i + phase) & 1);
        run(row + xs, row + std::min(yw, x0 + 4), size_t(dx), kc[size_t(i / 4) * bw + x0 / 4]);
      }
    }
  });
}

}  // namespace lmc
