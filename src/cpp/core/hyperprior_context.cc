// lmcodec core: the hyperprior codec with a context model (core/context_model.h)
// -- its encoder after z, the LATC chunk's band streams, and its decoder up to
// the latents (split from hyperprior.cc, which builds and runs the networks).
//
// LATC (docs/format.md): the latent rows are cut into K = ceil(yh / 32)
// bands; band b's symbols form one rANS stream (rans.h), in decode order: for
// every pass of the context model (groups in order, anchors before
// non-anchors), its channels in order, the band's rows in order, the pass's
// columns in order; each symbol's table is its scale index. The chunk holds
// the sizes of streams 0 .. K-2 (LEB128) and then the K streams back to
// back. Each pass decodes its K bands in parallel.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "core/context_model.h"
#include "core/hyperprior.h"
#include "util/buffers.h"
#include "util/error.h"
#include "util/profile.h"

namespace lmc {

namespace {

int band_count(int yh) { return (yh + HyperpriorModel::kContextBandRows - 1) / HyperpriorModel::kContextBandRows; }

void put_leb128(uint64_t v, std::vector<uint8_t>& out) {
  do {
    uint8_t b = uint8_t(v & 0x7f);
    v >>= 7;
    out.push_back(uint8_t(b | (v ? 0x80 : 0)));
  } while (v);
}

bool get_leb128(const uint8_t*& p, const uint8_t* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p == end) return false;
    const uint8_t b = *p++;
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// The positions of one band of one pass, in stream order: calls f(offset in
// the [C][h][w] group planes).
template <typename F>
void for_band(const ContextModel::Pass& ps, int r0, int r1, F&& f) {
  const size_t plane = size_t(ps.h) * ps.w;
  const int dx = ps.phase < 0 ? 1 : 2;
  for (int c = 0; c < ps.C; ++c)
    for (int i = r0; i < r1; ++i)
      for (int x = ps.phase < 0 ? 0 : (i + ps.phase) & 1; x < ps.w; x += dx) f(size_t(c) * plane + size_t(i) * ps.w + x);
}

}  // namespace

void HyperpriorModel::analyse_context(const float* y, Latents& L, uint16_t qx, bool rdo, const QualityMap* qmap,
                                      dsp::ThreadPool* pool) const {
  const int yh = L.yh, yw = L.yw;
  const size_t plane = size_t(yh) * yw, n = plane * M_;
  Buf<int16_t> zi;
  zi.resize(L.z.size());
  for (size_t i = 0; i < zi.size(); ++i) zi[i] = int16_t(std::max(-32767, std::min(32767, L.z[i])));
  Buf<int32_t> hs;
  hs_output(zi.data(), L.zh, L.zw, pool, hs, "encode h_s");
  if (hs.size() != 2 * n) fail(Status::Internal, "h_s shape");
  // The RDO weights are relative to the median scale index of the hyperprior
  // alone (the final indexes exist only after the last pass); encoder-only.
  L.idx.resize(n);
  int t_med = 0;
  {
    for (size_t i = 0; i < n; ++i) {
      const int64_t d = int64_t(hs[n + i]) - idx_base_;
      L.idx[i] = int32_t(std::min<int64_t>(d < 0 ? 0 : d / idx_step_, scale_count_ - 1));
    }
    t_med = median_scale_index(L.idx.data(), n, scale_count_);
  }
  Buf<int32_t> mu_q;
  mu_q.resize(n);
  Buf<uint16_t> idx;
  idx.resize(n);
  Buf<float> mu;
  mu.resize(n);
  L.r.assign(n, 0);
  const float inv = 1.0f / float(int64_t(1) << frac_);
  profile::Scope prof(true, [] { return std::string("encode context passes (incl. quantise y)"); });
  ctx_->run(hs.data(), yh, yw, pool,
            [&](const ContextModel::Pass& ps, const int32_t* m, const uint16_t* ix, int32_t*) {
              // the pass's means (as floats: the decoder's y = mu + r) and indexes, then its choice of r
              dsp::parallel_for(pool, ps.C, [&](int64_t c, int) {
                const size_t base = size_t(ps.c0 + c) * plane, g = size_t(c) * plane;
                for (int i = 0; i < yh; ++i)
                  for (int x = ps.phase < 0 ? 0 : (i + ps.phase) & 1; x < yw; x += ps.phase < 0 ? 1 : 2) {
                    const size_t o = size_t(i) * yw + x;
                    mu[base + o] = float(m[g + o]) * inv;
                    L.idx[base + o] = ix[g + o];
                  }
              });
              quantize_latents(y, mu.data(), L.idx.data(), yh, yw, qx, rdo, qmap, pool, L.r.data(), ps.c0,
                               ps.c0 + ps.C, ps.phase, t_med);
            },
            mu_q.data(), idx.data(), L.r.data());
}

void HyperpriorModel::encode_context_latents(const Latents& L, std::vector<uint8_t>& out) const {
  const int K = band_count(L.yh);
  const size_t plane = size_t(L.yh) * L.yw;
  std::vector<std::vector<uint8_t>> streams(static_cast<size_t>(K));
  const std::vector<ContextModel::Pass> passes = ctx_->passes(L.yh, L.yw);
  for (int b = 0; b < K; ++b) {
    const int r0 = b * kContextBandRows, r1 = std::min(L.yh, r0 + kContextBandRows);
    std::vector<int32_t> sym, ix;
    sym.reserve(size_t(M_) * (r1 - r0) * L.yw);
    ix.reserve(sym.capacity());
    for (const ContextModel::Pass& ps : passes) {
      const size_t base = size_t(ps.c0) * plane;
      for_band(ps, r0, r1, [&](size_t o) {
        sym.push_back(L.r[base + o]);
        ix.push_back(L.idx[base + o]);
      });
    }
    rans_encode(sym.data(), ix.data(), sym.size(), y_tables_.view(), streams[size_t(b)]);
  }
  out.clear();
  for (int b = 0; b + 1 < K; ++b) put_leb128(streams[size_t(b)].size(), out);
  for (const auto& s : streams) out.insert(out.end(), s.begin(), s.end());
}

void HyperpriorModel::decode_context(const int16_t* zi, int zh, int zw, const uint8_t* lat, size_t lat_size,
                                     dsp::ThreadPool* pool, Buf<int32_t>& mu_q, Buf<uint16_t>& idx,
                                     Buf<int32_t>& r) const {
  const int yh = 4 * zh, yw = 4 * zw;
  const size_t plane = size_t(yh) * yw, n = plane * M_;
  // the band streams
  const int K = band_count(yh);
  const uint8_t* p = lat;
  const uint8_t* end = lat + lat_size;
  std::vector<uint64_t> sizes(size_t(K), 0);
  uint64_t sum = 0;
  for (int b = 0; b + 1 < K; ++b) {
    if (!get_leb128(p, end, sizes[size_t(b)])) fail(Status::CorruptStream, "latents chunk: truncated band sizes");
    sum += sizes[size_t(b)];
    if (sizes[size_t(b)] > lat_size || sum > size_t(end - p))
      fail(Status::CorruptStream, "latents chunk: band sizes exceed the chunk");
  }
  if (sum > uint64_t(end - p)) fail(Status::CorruptStream, "latents chunk: band sizes exceed the chunk");
  sizes[size_t(K - 1)] = uint64_t(end - p) - sum;
  std::vector<std::unique_ptr<RansDecoder>> dec;
  for (int b = 0; b < K; ++b) {
    const int r0 = b * kContextBandRows, r1 = std::min(yh, r0 + kContextBandRows);
    dec.push_back(std::make_unique<RansDecoder>(p, size_t(sizes[size_t(b)]), size_t(M_) * (r1 - r0) * yw,
                                                y_tables_.view()));
    p += sizes[size_t(b)];
  }
  Buf<int32_t> hs;
  hs_output(zi, zh, zw, pool, hs, "decode h_s");
  if (hs.size() != 2 * n) fail(Status::Internal, "h_s shape");
  mu_q.resize(n);
  idx.resize(n);
  r.resize(n);
  profile::Scope prof(true, [] { return std::string("decode context passes (incl. rans y)"); });
  ctx_->run(hs.data(), yh, yw, pool,
            [&](const ContextModel::Pass& ps, const int32_t*, const uint16_t* ix, int32_t* rr) {
              dsp::parallel_for(pool, K, [&](int64_t b, int) {
                const int r0 = int(b) * kContextBandRows, r1 = std::min(yh, r0 + kContextBandRows);
                std::vector<int32_t> ib, sb;
                ib.reserve(size_t(ps.C) * (r1 - r0) * yw);
                for_band(ps, r0, r1, [&](size_t o) { ib.push_back(ix[o]); });
                sb.resize(ib.size());
                dec[size_t(b)]->decode(ib.data(), ib.size(), sb.data());
                size_t k = 0;
                for_band(ps, r0, r1, [&](size_t o) { rr[o] = sb[k++]; });
              });
            },
            mu_q.data(), idx.data(), r.data());
  for (auto& d : dec) d->finish();
}

void HyperpriorModel::decode_symbols(const uint8_t* side, size_t side_size, const uint8_t* lat, size_t lat_size,
                                     uint32_t w, uint32_t h, dsp::ThreadPool* pool, Latents& L, Buf<float>& mu) const {
  check_payload(side_size, lat_size, w, h);  // before allocating for the symbols
  L.M = M_;
  L.N = N_;
  L.zh = int((h + 63) / 64);
  L.zw = int((w + 63) / 64);
  L.yh = 4 * L.zh;
  L.yw = 4 * L.zw;
  const size_t per_z = size_t(L.zh) * L.zw, n = size_t(M_) * L.yh * L.yw;
  std::vector<int32_t> zidx(size_t(N_) * per_z);
  for (size_t i = 0; i < zidx.size(); ++i) zidx[i] = int32_t(i / per_z);
  L.z.resize(zidx.size());
  rans_decode(side, side_size, zidx.data(), zidx.size(), z_tables_.view(), L.z.data());
  if (!ctx_) {
    entropy_params(L.z.data(), L.zh, L.zw, pool, mu, L.idx, true);
    if (L.idx.size() != n) fail(Status::Internal, "latent shape mismatch");
    L.r.resize(n);
    rans_decode(lat, lat_size, L.idx.data(), n, y_tables_.view(), L.r.data());
    return;
  }
  Buf<int16_t> zi;
  zi.resize(L.z.size());
  for (size_t i = 0; i < zi.size(); ++i) zi[i] = int16_t(std::max(-32767, std::min(32767, L.z[i])));
  Buf<int32_t> mu_q, r;
  Buf<uint16_t> idx;
  decode_context(zi.data(), L.zh, L.zw, lat, lat_size, pool, mu_q, idx, r);
  const float inv = 1.0f / float(int64_t(1) << frac_);
  mu.resize(n);
  L.idx.resize(n);
  L.r.assign(r.data(), r.data() + n);
  for (size_t i = 0; i < n; ++i) {
    mu[i] = float(mu_q[i]) * inv;
    L.idx[i] = idx[i];
  }
}

}  // namespace lmc
