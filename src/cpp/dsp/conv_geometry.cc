// lmcodec dsp: convolution geometry, padding and packing (see conv_geometry.h).
#include "dsp/conv_geometry.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"

namespace lmc {
namespace dsp {
namespace detail {

void check_channels(int cin, int cout) {
  LMC_CHECK(cin >= 1 && cin <= kMaxChannels, Status::InvalidArgument, "conv: cin out of range");
  LMC_CHECK(cout >= 1 && cout <= kMaxChannels, Status::InvalidArgument, "conv: cout out of range");
}

void check_run_args(const void* in, const void* out, int h, int w) {
  LMC_CHECK(in != nullptr && out != nullptr, Status::InvalidArgument, "conv: null tensor");
  LMC_CHECK(h >= 1 && w >= 1, Status::InvalidArgument, "conv: height and width must be >= 1");
  LMC_CHECK(h <= kMaxDim && w <= kMaxDim, Status::LimitExceeded, "conv: image too large");
}

// Taps (ky, kx) of a transposed conv (stride 2, padding k/2) that reach
// output phase (ry, rx): ky = ry + k/2 (mod 2), kx = rx + k/2 (mod 2).
std::vector<int> deconv_phase_taps(int k, int ry, int rx) {
  const int p = k / 2;
  std::vector<int> t;
  for (int ky = 0; ky < k; ++ky)
    for (int kx = 0; kx < k; ++kx)
      if (((ry + p - ky) & 1) == 0 && ((rx + p - kx) & 1) == 0) t.push_back(ky * k + kx);
  return t;
}

// Elements (4 bytes: a float or an int16 pair) between the channels of a
// padded buffer: at least `used`, a multiple of 16 (64-byte lines), and an
// odd number of lines modulo 4 KiB, so that the same row of consecutive
// channels falls in different L1 sets (kernels read several channels' rows
// at once; planes a multiple of 4 KiB apart would share a few sets).
int64_t channel_stride(int64_t used) {
  int64_t cs = round_up64(used, 16);
  if (((cs * 4) % 4096 / 64) % 2 == 0) cs += 16;
  return cs;
}

namespace {
void finish_geometry(Geometry& g) {
  g.cs = channel_stride((int64_t)g.split * g.split * g.hq * g.wq);
  LMC_CHECK(g.cs <= kMaxPlaneElems, Status::LimitExceeded, "conv: image too large");
  g.max_off = 0;
  for (int i = 0; i < g.ngroups; ++i)
    for (int o : g.taps[i]) {
      g.max_off = std::max(g.max_off, o);
      const int row = o - static_cast<int>(o % g.wq);  // the tap's row segment (dx < wq)
      if (std::find(g.rows[0].begin(), g.rows[0].end(), row) == g.rows[0].end()) g.rows[0].push_back(row);
    }
  g.ntiles = ((int64_t)g.valid_h * g.grid_w + kTile - 1) / kTile;
}
}  // namespace

Geometry conv_geometry(int h, int w, int k, int s) {
  Geometry g;
  g.pad = k / 2;
  const int64_t hp = h + 2 * g.pad, wp = w + 2 * g.pad;
  g.split = s;
  g.hq = (hp + s - 1) / s;
  g.wq = (wp + s - 1) / s;
  g.grid_w = static_cast<int>(g.wq);
  g.valid_h = (h - 1) / s + 1;
  g.valid_w = (w - 1) / s + 1;
  const int64_t plane = g.hq * g.wq;
  LMC_CHECK((int64_t)s * s * plane <= kMaxPlaneElems, Status::LimitExceeded, "conv: image too large");
  for (int ky = 0; ky < k; ++ky)
    for (int kx = 0; kx < k; ++kx) {
      const int64_t pl = (int64_t)(ky % s) * s + (kx % s);
      g.taps[0].push_back(static_cast<int>(pl * plane + (ky / s) * g.wq + kx / s));
    }
  finish_geometry(g);
  return g;
}

Geometry deconv_geometry(int h, int w, int k) {
  Geometry g;
  g.pad = 1;
  g.split = 1;
  g.hq = h + 2;
  g.wq = w + 2;
  g.grid_w = static_cast<int>(g.wq);
  g.valid_h = h;
  g.valid_w = w;
  g.ngroups = 4;
  const int p = k / 2;
  for (int r = 0; r < 4; ++r) {
    const int ry = r / 2, rx = r % 2;
    for (int t : deconv_phase_taps(k, ry, rx)) {
      const int ky = t / k, kx = t % k;
      const int dy = (ry + p - ky) / 2 + 1, dx = (rx + p - kx) / 2 + 1;  // exact divisions
      g.taps[r].push_back(static_cast<int>(dy * g.wq + dx));
    }
  }
  finish_geometry(g);
  return g;
}

namespace {
// Fills the padded (and polyphase-split) buffer of one channel: plane
// (py, px) of an s-split holds padded[s*yy + py][s*xx + px], where padded is
// the input with g.pad zero columns (g.pad_top rows) before it, zeros after.
// copy_row(dst, iy, ix0, n, step) copies input row iy, columns ix0 + i*step.
template <class T, class RowFn>
void pad_channel(const Geometry& g, int h, int w, T* dst, RowFn copy_row) {
  const int s = g.split, sy = g.rows_split();
  auto ceil_div = [](int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; };
  for (int py = 0; py < sy; ++py)
    for (int px = 0; px < s; ++px) {
      T* plane = dst + ((int64_t)py * s + px) * g.hq * g.wq;
      // plane columns xx whose input column xx*s + px - pad lies in [0, w)
      const int64_t x0 = std::min<int64_t>(ceil_div(g.pad - px, s), g.wq);
      const int64_t x1 = std::max<int64_t>(x0, std::min<int64_t>(ceil_div(w + g.pad - px, s), g.wq));
      for (int64_t yy = 0; yy < g.hq; ++yy) {
        T* row = plane + yy * g.wq;
        const int64_t iy = yy * sy + py - (g.pad_top < 0 ? g.pad : g.pad_top);
        if (iy < 0 || iy >= h || x1 == x0) {
          std::memset(row, 0, sizeof(T) * g.wq);
          continue;
        }
        std::memset(row, 0, sizeof(T) * x0);
        copy_row(row + x0, iy, x0 * s + px - g.pad, x1 - x0, s);
        std::memset(row + x1, 0, sizeof(T) * (g.wq - x1));
      }
    }
  const int64_t used = (int64_t)sy * s * g.hq * g.wq;
  std::memset(dst + used, 0, sizeof(T) * (g.cs - used));
}
}  // namespace

// in == nullptr: only the zeros (the interior is left as it is; fused padding).
void pad_input_f32(const float* in, int cin, int h, int w, const Geometry& g, float* buf, ThreadPool* pool) {
  parallel_for(pool, cin, [&](int64_t ci, int) {
    const float* src = in ? in + ci * (int64_t)h * w : nullptr;
    pad_channel<float>(g, h, w, buf + ci * g.cs, [&](float* d, int64_t iy, int64_t ix0, int64_t n, int step) {
      if (!src) return;
      const float* sr = src + iy * w + ix0;
      if (step == 1) {
        std::memcpy(d, sr, sizeof(float) * n);
      } else {
        for (int64_t i = 0; i < n; ++i) d[i] = sr[i * step];
      }
    });
  });
  const int64_t tail0 = (int64_t)cin * g.cs, total = g.buffer_elems(cin);
  if (total > tail0) std::memset(buf + tail0, 0, sizeof(float) * (total - tail0));
}

// int16 pairs: element (cp, pixel) = (in[2cp][pixel], in[2cp+1][pixel]).
void pad_input_i16(const int16_t* in, int cin, int h, int w, const Geometry& g, int16_t* buf, ThreadPool* pool) {
  const int ncp = (cin + 1) / 2;
  struct Pair {
    int16_t a, b;
  };
  static_assert(sizeof(Pair) == 4, "int16 pair must be 4 bytes");
  Pair* pbuf = reinterpret_cast<Pair*>(buf);
  parallel_for(pool, ncp, [&](int64_t cp, int) {
    const int16_t* s0 = in + (2 * cp) * (int64_t)h * w;
    const int16_t* s1 = (2 * cp + 1 < cin) ? s0 + (int64_t)h * w : nullptr;
    pad_channel<Pair>(g, h, w, pbuf + cp * g.cs, [&](Pair* d, int64_t iy, int64_t ix0, int64_t n, int step) {
      const int16_t* r0 = s0 + iy * w + ix0;
      const int16_t* r1 = s1 ? s1 + iy * w + ix0 : nullptr;
      for (int64_t i = 0; i < n; ++i) {
        d[i].a = r0[i * step];
        d[i].b = r1 ? r1[i * step] : int16_t(0);
      }
    });
  });
  const int64_t tail0 = (int64_t)ncp * g.cs, total = g.buffer_elems(ncp);
  if (total > tail0) std::memset(pbuf + tail0, 0, sizeof(Pair) * (total - tail0));
}

// Input channels (or int16 channel pairs) per cache chunk, fixed when the
// weights are packed. Per channel (and plane), a tile reads about (rows the
// tile spans + kernel rows) x min(grid width, tile + k) elements, ~1-1.6 KiB.
// The chunk keeps that window in L1 (~16-24 KiB) while the weights stream
// through: 8 for stride-1 convs, 4 for stride-2 convs (4 polyphase planes);
// for transposed convs 16 int16 channel pairs, but only 4 float channels:
// the float accumulators of all 4 output phases (4 x coutp x kTile) share L1
// with the window, and with 16 channels the codec's last layer (64 -> 3)
// thrashed it (measured: that layer 17 % faster with 4 than with 16).
// Measured on Zen 2/3; results do not depend on it.
int chunk_channels(bool transposed, int stride, bool is_float) {
  if (transposed) return is_float ? 4 : 16;
  return stride == 2 ? 4 : 8;
}

std::vector<std::vector<int>> conv_taps(int k) {
  std::vector<int> t(k * k);
  for (int i = 0; i < k * k; ++i) t[i] = i;
  return {t};
}
std::vector<std::vector<int>> deconv_taps(int k) {
  std::vector<std::vector<int>> g;
  for (int r = 0; r < 4; ++r) g.push_back(deconv_phase_taps(k, r / 2, r % 2));
  return g;
}

int post_code(PostOp p) {
  switch (p) {
    case PostOp::Relu: return kPostRelu;
    case PostOp::Gdn: return kPostGdn;
    case PostOp::Igdn: return kPostIgdn;
    case PostOp::None: break;
  }
  return kPostNone;
}

int64_t f32_scratch_elems(int ngroups, int coutp, int post) {
  const int64_t cp = round_up(coutp, kMR);  // GDN scratch rows: the GDN's own padding
  return (int64_t)ngroups * coutp * kTile + ((post == kPostGdn || post == kPostIgdn) ? 2 * cp * kTile : 0);
}

// Output channels per weight block of a direct float conv: 3 for a layer of
// 3, 6, 9, ... channels that kMR does not divide (the codec's 64 -> 3 last
// layer: a quarter of the multiply-adds would go to a padding channel).
int direct_mr(int cout) { return (cout % kMR != 0 && cout % 3 == 0) ? 3 : kMR; }

// pdiag gets gamma's diagonal (and pgamma stays empty) when every
// off-diagonal entry is exactly zero and allow_diagonal is set.
void pack_gdn(int c, const float* beta, const float* gamma, bool allow_diagonal, std::vector<float>& pbeta,
              std::vector<float>& pgamma, std::vector<float>& pdiag) {
  const int cp = round_up(c, kMR);
  pbeta.assign(cp, 1.0f);
  for (int i = 0; i < c; ++i) pbeta[i] = beta[i];
  bool diagonal = allow_diagonal;
  for (int i = 0; i < c && diagonal; ++i)
    for (int j = 0; j < c; ++j)
      if (i != j && gamma[(size_t)i * c + j] != 0.0f) {
        diagonal = false;
        break;
      }
  pgamma.clear();
  pdiag.clear();
  if (diagonal) {
    pdiag.resize(c);
    for (int i = 0; i < c; ++i) pdiag[i] = gamma[(size_t)i * c + i];
    return;
  }
  pgamma.assign((size_t)cp * c, 0.0f);
  for (int i = 0; i < c; ++i)
    for (int j = 0; j < c; ++j) pgamma[((size_t)(i / kMR) * c + j) * kMR + i % kMR] = gamma[(size_t)i * c + j];
}

void check_requant(const Requant& rq) {
  LMC_CHECK(rq.shift >= 0 && rq.shift <= 31, Status::InvalidArgument, "int conv: shift must be in [0, 31]");
  LMC_CHECK(rq.lo <= rq.hi, Status::InvalidArgument, "int conv: clamp range lo > hi");
}

}  // namespace detail
}  // namespace dsp
}  // namespace lmc
