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
  model.check_payload(side_size, lat_size, w, h);  // before allocating for the symbols
  StreamSymbols out;
  Latents& L = out.sym;
  L.M = model.M();
  L.N = model.N();
  L.zh = int((h + 63) / 64);
  L.zw = int((w + 63) / 64);
  L.yh = 4 * L.zh;
  L.yw = 4 * L.zw;
  const size_t per_z = size_t(L.zh) * L.zw, per_y = size_t(L.yh) * L.yw;
  std::vector<int32_t> zidx(size_t(L.N) * per_z);
  for (size_t i = 0; i < zidx.size(); ++i) zidx[i] = int32_t(i / per_z);
  L.z.resize(zidx.size());
  rans_decode(side, side_size, zidx.data(), zidx.size(), model.z_tables().view(), L.z.data());
  Buf<float> mu;
  model.entropy_params(L.z.data(), L.zh, L.zw, pool, mu, L.idx, true);
  if (L.idx.size() != size_t(L.M) * per_y) fail(Status::Internal, "latent shape mismatch");
  L.r.resize(L.idx.size());
  rans_decode(lat, lat_size, L.idx.data(), L.idx.size(), model.y_tables().view(), L.r.data());
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
