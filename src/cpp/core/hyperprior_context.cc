// lmcodec core: the hyperprior codec with a context model (core/context_model.h)
// -- its encoder after z, the LATC chunk's band streams, and its decoder up to
// the latents (split from hyperprior.cc, which builds and runs the networks).
//
// LATC (docs/format.md): the latent rows are cut into K = ceil(yh / 32)
// bands, and each band is coded on its own: the context model runs on the
// band's rows only (its 3x3 context convolutions see zeros beyond the band,
// as at the image border), and the band's symbols form one rANS stream
// (rans.h), in decode order: for every pass of the context model (groups in
// order, anchors before non-anchors), its channels in order, the band's rows
// in order, the pass's columns in order; each symbol's table is its scale
// index. The chunk holds the sizes of streams 0 .. K-2 (LEB128) and then the
// K streams back to back. So a decoder works band by band in bounded memory
// (h_s strip, context passes, rANS), and a payload that cannot hold a band's
// symbols fails within that band, after work in proportion to it.
#include <algorithm>
#include <cstring>
#include <functional>
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
  // h_s once over the whole image (its rows equal a strip's: integer
  // arithmetic), cut into the bands below
  Buf<int16_t> zi;
  z_to_i16(L.z.data(), L.z.size(), zi);
  Buf<int32_t> full;
  hs_output(zi.data(), L.zh, L.zw, pool, full, "encode h_s");
  zi.release();
  // The RDO weights are relative to the median scale index of the
  // hyperprior alone over the whole image (the final indexes exist only
  // after the last pass); encoder-only.
  int t_med = 0;
  L.idx.resize(n);
  if (rdo && has_rdo()) {
    for (size_t i = 0; i < n; ++i) L.idx[i] = scale_index_(full[n + i]);
    t_med = median_scale_index(L.idx.data(), n, scale_count_);
  }
  L.idx.assign(n, 0);
  L.r.assign(n, 0);
  const float inv = 1.0f / float(int64_t(1) << frac_);
  Buf<int32_t> hs, mu_q, r;
  Buf<uint16_t> idx;
  Buf<float> yb, mub;
  std::vector<int32_t> ib;
  for (int r0 = 0; r0 < yh; r0 += kContextBandRows) {
    const int r1 = std::min(yh, r0 + kContextBandRows), rows = r1 - r0;
    const size_t bp = size_t(rows) * yw, bn = bp * M_;
    plane_rows(full.data(), 2 * M_, yh, yw, r0, rows, hs);
    // the band's y, and its quality map rows (blocks of 4 latent rows; bands start at multiples of 4)
    plane_rows(y, M_, yh, yw, r0, rows, yb);
    mub.resize(bn);
    ib.assign(bn, 0);
    QualityMap band_map;
    const bool mapped = qmap && !qmap->empty();
    if (mapped) {
      band_map.bw = qmap->bw;
      band_map.bh = (rows + 3) / 4;
      band_map.qx.assign(qmap->qx.begin() + size_t(r0 / 4) * qmap->bw,
                         qmap->qx.begin() + size_t(r0 / 4 + band_map.bh) * qmap->bw);
    }
    mu_q.resize(bn);
    idx.resize(bn);
    r.resize(bn);
    ctx_->run(hs.data(), rows, yw, pool,
              [&](const ContextModel::Pass& ps, const int32_t* m, const uint16_t* ix, int32_t* rr) {
                // the pass's means (as floats: the decoder's y = mu + r) and indexes, then its choice of r
                dsp::parallel_for(pool, ps.C, [&](int64_t c, int) {
                  const size_t g = size_t(c) * bp, base = size_t(ps.c0) * bp + g;
                  for (int i = 0; i < rows; ++i)
                    for (int x = ps.phase < 0 ? 0 : (i + ps.phase) & 1; x < yw; x += ps.phase < 0 ? 1 : 2) {
                      const size_t o = size_t(i) * yw + x;
                      mub[base + o] = float(m[g + o]) * inv;
                      ib[base + o] = ix[g + o];
                    }
                });
                profile::Scope prof(true, [] { return std::string("encode quantise y"); });
                quantize_latents(yb.data(), mub.data(), ib.data(), rows, yw, qx, rdo, mapped ? &band_map : nullptr,
                                 pool, r.data(), ps.c0, ps.c0 + ps.C, ps.phase, t_med);
                (void)rr;
              },
              mu_q.data(), idx.data(), r.data(), "encode ctx");
    for (int c = 0; c < M_; ++c) {
      const size_t dst = size_t(c) * plane + size_t(r0) * yw, src = size_t(c) * bp;
      std::memcpy(&L.r[dst], &r[src], sizeof(int32_t) * bp);
      for (size_t o = 0; o < bp; ++o) L.idx[dst + o] = idx[src + o];
    }
  }
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
                                     dsp::ThreadPool* pool, const BandFn& band) const {
  const int yh = 4 * zh, yw = 4 * zw;
  // the band streams
  const int K = band_count(yh);
  const uint8_t* p = lat;
  const uint8_t* end = lat + lat_size;
  std::vector<uint64_t> sizes(size_t(K), 0);
  uint64_t sum = 0;
  for (int b = 0; b + 1 < K; ++b) {
    if (!get_leb128(p, end, sizes[size_t(b)])) fail(Status::CorruptStream, "latents chunk: truncated band sizes");
    sum += sizes[size_t(b)];
    if (sizes[size_t(b)] > lat_size || sum > lat_size)
      fail(Status::CorruptStream, "latents chunk: band sizes exceed the chunk");
  }
  if (sum > uint64_t(end - p)) fail(Status::CorruptStream, "latents chunk: band sizes exceed the chunk");
  sizes[size_t(K - 1)] = uint64_t(end - p) - sum;
  Buf<int32_t> hs, full, mu_q, r;
  Buf<int16_t> zs;
  Buf<uint16_t> idx;
  std::vector<int32_t> ib, sb;
  for (int b = 0; b < K; ++b) {
    const int r0 = b * kContextBandRows, r1 = std::min(yh, r0 + kContextBandRows), rows = r1 - r0;
    const size_t bn = size_t(M_) * rows * yw;
    RansDecoder dec(p, size_t(sizes[size_t(b)]), bn, y_tables_.view());  // CorruptStream: cannot hold the band
    p += sizes[size_t(b)];
    hs_rows(zi, zh, zw, r0, r1, pool, hs, zs, full, "decode h_s");
    mu_q.resize(bn);
    idx.resize(bn);
    r.resize(bn);
    ctx_->run(hs.data(), rows, yw, pool,
              [&](const ContextModel::Pass& ps, const int32_t*, const uint16_t* ix, int32_t* rr) {
                profile::Scope prof(true, [] { return std::string("decode rans y"); });
                ib.clear();
                for_band(ps, 0, rows, [&](size_t o) { ib.push_back(ix[o]); });
                sb.resize(ib.size());
                dec.decode(ib.data(), ib.size(), sb.data());
                size_t k = 0;
                for_band(ps, 0, rows, [&](size_t o) { rr[o] = sb[k++]; });
              },
              mu_q.data(), idx.data(), r.data(), "decode ctx");
    dec.finish();
    band(r0, r1, mu_q.data(), idx.data(), r.data());
  }
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
  const size_t per_z = size_t(L.zh) * L.zw, plane = size_t(L.yh) * L.yw, n = size_t(M_) * plane;
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
  z_to_i16(L.z.data(), L.z.size(), zi);
  const float inv = 1.0f / float(int64_t(1) << frac_);
  mu.resize(n);
  L.idx.resize(n);
  L.r.resize(n);
  decode_context(zi.data(), L.zh, L.zw, lat, lat_size, pool,
                 [&](int r0, int r1, const int32_t* m, const uint16_t* ix, const int32_t* rr) {
                   const size_t bp = size_t(r1 - r0) * L.yw;
                   for (int c = 0; c < M_; ++c)
                     for (size_t o = 0; o < bp; ++o) {
                       const size_t d = size_t(c) * plane + size_t(r0) * L.yw + o, s = size_t(c) * bp + o;
                       mu[d] = float(m[s]) * inv;
                       L.idx[d] = ix[s];
                       L.r[d] = rr[s];
                     }
                 });
}

ChunkType HyperpriorModel::latents_chunk() const { return ctx_ ? kLatentsCtx : kLatents; }

std::vector<uint8_t> HyperpriorModel::latents_payload(const int32_t* z, int zh, int zw, const int32_t* r_in,
                                                      dsp::ThreadPool* pool) const {
  Latents L;
  L.M = M_;
  L.N = N_;
  L.zh = zh;
  L.zw = zw;
  L.yh = 4 * zh;
  L.yw = 4 * zw;
  const size_t plane = size_t(L.yh) * L.yw, n = plane * M_;
  L.z.assign(z, z + size_t(N_) * zh * zw);
  L.r.assign(r_in, r_in + n);
  std::vector<uint8_t> out;
  if (!ctx_) {
    Buf<float> mu;
    entropy_params(L.z.data(), zh, zw, pool, mu, L.idx, false);
    rans_encode(L.r.data(), L.idx.data(), n, y_tables_.view(), out);
    return out;
  }
  Buf<int16_t> zi, zs;
  z_to_i16(L.z.data(), L.z.size(), zi);
  L.idx.assign(n, 0);
  Buf<int32_t> hs, full, mu_q, r;
  Buf<uint16_t> idx;
  for (int r0 = 0; r0 < L.yh; r0 += kContextBandRows) {
    const int r1 = std::min(L.yh, r0 + kContextBandRows), rows = r1 - r0;
    const size_t bp = size_t(rows) * L.yw, bn = bp * M_;
    hs_rows(zi.data(), zh, zw, r0, r1, pool, hs, zs, full, "encode h_s");
    mu_q.resize(bn);
    idx.resize(bn);
    r.resize(bn);
    plane_rows(r_in, M_, L.yh, L.yw, r0, rows, r);
    // the given integers stay as they are; the passes give each its index
    ctx_->run(hs.data(), rows, L.yw, pool, [](const ContextModel::Pass&, const int32_t*, const uint16_t*, int32_t*) {},
              mu_q.data(), idx.data(), r.data(), "encode ctx");
    for (int c = 0; c < M_; ++c)
      for (size_t o = 0; o < bp; ++o) L.idx[size_t(c) * plane + size_t(r0) * L.yw + o] = idx[size_t(c) * bp + o];
  }
  encode_context_latents(L, out);
  return out;
}

}  // namespace lmc
