// lmcodec dsp: Winograd plans (see winograd.h).
#include "dsp/winograd.h"

#include <algorithm>

#include "util/error.h"

namespace lmc {
namespace dsp {
namespace detail {

namespace {
// ---------------------------------------------------------------------------
// Winograd F(bh x 2, a x b) plans
// ---------------------------------------------------------------------------
// 1-D transforms in correlation form, y_u = sum_i g_i d_{u+i}:
// F(m, r): V = BT d, U = G g, y = AT (U .* V), with m + r - 1 points.
// F(2, 3) and F(2, 2): points 0, +-1 (resp. 0, 1) and infinity; +-1 entries
// in BT and AT. F(4, 3): points 0, +-1, +-2, infinity (the usual choice);
// F(4, 2): 0, +-1, 2, infinity. BT and AT are small integers (exact in
// float), G has the fractions. tools: each table satisfies
// sum_j AT[u][j] G[j][k] BT[j][i] == (i == u + k), which test_dsp checks.
const double kBT3[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
const double kG3[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
const double kAT3[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
const double kBT2[3][3] = {{1, -1, 0}, {0, 1, 0}, {0, -1, 1}};
const double kG2[3][2] = {{1, 0}, {1, 1}, {0, 1}};
const double kAT2[2][3] = {{1, 1, 0}, {0, 1, 1}};
const double kBT43[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                            {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
const double kG43[6][3] = {{1.0 / 4, 0, 0},
                           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                           {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                           {1.0 / 24, 1.0 / 12, 1.0 / 6},
                           {1.0 / 24, -1.0 / 12, 1.0 / 6},
                           {0, 0, 1}};
const double kAT43[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
const double kBT42[5][5] = {{2, -1, -2, 1, 0}, {0, -2, -1, 1, 0}, {0, 2, -3, 1, 0}, {0, -1, 0, 1, 0}, {0, 2, -1, -2, 1}};
const double kG42[5][2] = {{1.0 / 2, 0}, {-1.0 / 2, -1.0 / 2}, {-1.0 / 6, 1.0 / 6}, {1.0 / 6, 1.0 / 3}, {0, 1}};
const double kAT42[4][5] = {{1, 1, 1, 1, 0}, {0, 1, -1, 2, 0}, {0, 1, 1, 4, 0}, {0, 1, -1, 8, 1}};
}  // namespace

double wino_bt(int m, int r, int xi, int i) {
  if (m == 4) return r == 3 ? kBT43[xi][i] : kBT42[xi][i];
  return r == 3 ? kBT3[xi][i] : kBT2[xi][i];
}
double wino_g(int m, int r, int xi, int i) {
  if (m == 4) return r == 3 ? kG43[xi][i] : kG42[xi][i];
  return r == 3 ? kG3[xi][i] : kG2[xi][i];
}
double wino_at(int m, int r, int u, int xi) {
  if (m == 4) return r == 3 ? kAT43[u][xi] : kAT42[u][xi];
  return r == 3 ? kAT3[u][xi] : kAT2[u][xi];
}

std::vector<SubConv> wino_subconvs(bool transposed, int k, int s) {
  std::vector<SubConv> subs;
  if (!transposed && s == 1) {
    if (k != 3) return {};
    SubConv sc;
    sc.a = sc.b = 3;
    sc.ky = sc.kx = {0, 1, 2};
    subs.push_back(sc);
  } else if (!transposed) {  // stride 2: polyphase plane (py, px) holds taps py, py+2, ...
    for (int r = 0; r < 4; ++r) {
      SubConv sc;
      sc.py = r / 2;
      sc.px = r % 2;
      for (int t = sc.py; t < k; t += 2) sc.ky.push_back(t);
      for (int t = sc.px; t < k; t += 2) sc.kx.push_back(t);
      subs.push_back(sc);
    }
  } else {  // output phase (ry, rx) reads padded rows y + dy, dy = (ry + p - ky)/2 + 1
    const int p = k / 2;
    for (int r = 0; r < 4; ++r) {
      const int ry = r / 2, rx = r % 2;
      SubConv sc;
      for (int d = 0; d <= 2; ++d) {  // ascending dy <=> descending ky
        const int ky = ry + p + 2 - 2 * d, kx = rx + p + 2 - 2 * d;
        if (ky >= 0 && ky < k) {
          if (sc.ky.empty()) sc.oy = d;
          sc.ky.push_back(ky);
        }
        if (kx >= 0 && kx < k) {
          if (sc.kx.empty()) sc.ox = d;
          sc.kx.push_back(kx);
        }
      }
      subs.push_back(sc);
    }
  }
  for (SubConv& sc : subs) {
    sc.a = static_cast<int>(sc.ky.size());
    sc.b = static_cast<int>(sc.kx.size());
    if (sc.a < 2 || sc.a > 3 || sc.b < 2 || sc.b > 3) return {};
  }
  return subs;
}

Geometry wino_geometry(bool transposed, int h, int w, int k, int s, const std::vector<SubConv>& subs, int shift,
                       int bh) {
  Geometry g;
  const int sst = transposed ? 1 : s;
  const int fy = bh * sst, fx = 2 * sst;
  g.split = fx;
  g.split_y = fy;
  g.bh = bh;
  g.pad = transposed ? 1 : k / 2;
  g.pad_top = g.pad + sst * shift;
  g.row_shift = shift;
  g.valid_h = transposed ? h : (h - 1) / s + 1;
  g.valid_w = transposed ? w : (w - 1) / s + 1;
  g.blocks_h = (g.valid_h + shift + bh - 1) / bh;
  g.blocks_w = (g.valid_w + 1) / 2;
  g.ngroups = static_cast<int>(subs.size());
  g.tile = kWinoBlocks;
  // block (Y, X) of sub-conv sc reads padded row sst*(bh*Y + oy + i') + py,
  // i' < a + bh - 1, = plane row Y + (sst*(oy + i') + py) / fy of row phase
  // (sst*(oy + i') + py) % fy; columns likewise with 2 and fx.
  int max_r = 0, max_c = 0;
  for (const SubConv& sc : subs) {
    max_r = std::max(max_r, (sst * (sc.oy + sc.a + bh - 2) + sc.py) / fy);
    max_c = std::max(max_c, (sst * (sc.ox + sc.b) + sc.px) / fx);
  }
  g.hq = g.blocks_h + max_r;
  g.wq = g.blocks_w + max_c;
  g.grid_w = static_cast<int>(g.wq);
  const int64_t plane = g.hq * g.wq;
  LMC_CHECK((int64_t)fy * fx * plane <= kMaxPlaneElems, Status::LimitExceeded, "conv: image too large");
  for (int si = 0; si < g.ngroups; ++si) {
    const SubConv& sc = subs[si];
    for (int xi = 0; xi < sc.a + bh - 1; ++xi)
      for (int eta = 0; eta <= sc.b; ++eta) {
        WinoComp c{};
        for (int i = 0; i < sc.a + bh - 1; ++i)
          for (int j = 0; j <= sc.b; ++j) {
            const double sg = wino_bt(bh, sc.a, xi, i) * wino_bt(2, sc.b, eta, j);
            if (sg == 0.0) continue;
            const int r = sst * (sc.oy + i) + sc.py, q = sst * (sc.ox + j) + sc.px;
            c.off[c.nterms] = static_cast<int>((int64_t)((r % fy) * fx + q % fx) * plane + (r / fy) * g.wq + q / fx);
            c.sign[c.nterms] = static_cast<float>(sg);
            ++c.nterms;
          }
        for (int u = 0; u < bh; ++u)
          for (int v = 0; v < 2; ++v)
            c.coef[2 * u + v] = static_cast<float>(wino_at(bh, sc.a, u, xi) * wino_at(2, sc.b, v, eta));
        g.comps[si].push_back(c);
      }
    if (bh == 4) {  // the same window, for the separable transform
      WinoSep& sp = g.seps[si];
      sp.a = sc.a;
      sp.b = sc.b;
      for (int i = 0; i < sc.a + 3; ++i)
        for (int j = 0; j <= sc.b; ++j) {
          const int r = sst * (sc.oy + i) + sc.py, q = sst * (sc.ox + j) + sc.px;
          sp.off[i][j] = static_cast<int>((int64_t)((r % fy) * fx + q % fx) * plane + (r / fy) * g.wq + q / fx);
        }
    }
    // distinct row segments (column offset 0) for prefetching
    for (int i = 0; i < sc.a + bh - 1; ++i)
      for (int q = 0; q < fx; ++q) {
        const int r = sst * (sc.oy + i) + sc.py;
        const int row = static_cast<int>((int64_t)((r % fy) * fx + q) * plane + (r / fy) * g.wq);
        bool seen = false;
        for (int x : g.rows[si]) seen = seen || x == row;
        if (!seen) g.rows[si].push_back(row);
      }
  }
  g.cs = channel_stride((int64_t)fy * fx * plane);
  g.max_off = 0;
  for (int si = 0; si < g.ngroups; ++si)
    for (const WinoComp& c : g.comps[si])
      for (int t = 0; t < c.nterms; ++t) g.max_off = std::max(g.max_off, c.off[t]);
  g.ntiles = ((int64_t)g.blocks_h * g.grid_w + kWinoBlocks - 1) / kWinoBlocks;
  return g;
}

}  // namespace detail
}  // namespace dsp
}  // namespace lmc
