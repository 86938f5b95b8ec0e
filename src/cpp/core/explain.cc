#include "core/explain.h"

#include <cmath>

#include "util/error.h"

namespace lmc {

double symbol_code_bits(const OwnedTables& tables, size_t t, int32_t v) {
  const uint32_t* c = &tables.cdfs[t * tables.stride];
  const int64_t n = tables.lengths[t] - 2;  // regular symbols; the escape is symbol n
  const int64_t s = int64_t(v) - tables.offsets[t];
  if (s >= 0 && s < n) return kCdfPrecision - std::log2(double(c[s + 1] - c[s]));
  // escape, 6 length bits, then floor(log2 m) raw bits (rans.h)
  const uint64_t m = s < 0 ? uint64_t(-s) : uint64_t(s - n + 1);
  int nb = 0;
  while ((m >> (nb + 1)) != 0) ++nb;
  return kCdfPrecision - std::log2(double(c[n + 1] - c[n])) + 6 + nb;
}

StreamSymbols stream_symbols(const HyperpriorModel& model, const uint8_t* side, size_t side_size, const uint8_t* lat,
                             size_t lat_size, uint32_t w, uint32_t h, uint16_t qx, const QualityMap* qmap,
                             dsp::ThreadPool* pool) {
  StreamSymbols out;
  Latents& L = out.sym;
  Buf<float> mu;
  model.decode_symbols(side, side_size, lat, lat_size, w, h, pool, L, mu);
  const size_t per_z = size_t(L.zh) * L.zw;
  out.mu.assign(mu.data(), mu.data() + mu.size());
  out.y_hat.resize(out.mu.size());
  for (size_t i = 0; i < out.y_hat.size(); ++i) out.y_hat[i] = out.mu[i] + float(L.r[i]);  // as decode() adds
  model.apply_inv_gains(out.y_hat.data(), L.yh, L.yw, qx, qmap, pool);
  out.bits_z.resize(L.z.size());
  for (size_t i = 0; i < L.z.size(); ++i) out.bits_z[i] = float(symbol_code_bits(model.z_tables(), i / per_z, L.z[i]));
  out.bits_y.resize(L.r.size());
  for (size_t i = 0; i < L.r.size(); ++i)
    out.bits_y[i] = float(symbol_code_bits(model.y_tables(), size_t(L.idx[i]), L.r[i]));
  return out;
}

}  // namespace lmc
