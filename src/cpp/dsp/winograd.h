// lmcodec dsp: Winograd F(bh x 2, a x b) plans: the 1-D transforms, the
// sub-convolutions of a layer, the pre-transformed weights and the input
// geometry of a Winograd run (the tiles are in conv_tile.h).
#pragma once

#include <vector>

#include "dsp/conv_geometry.h"

namespace lmc {
namespace dsp {
namespace detail {

// m outputs, r taps: BT[xi][i] (xi, i < m + r - 1), G[xi][i] (i < r), AT[u][xi] (u < m)

double wino_bt(int m, int r, int xi, int i);
double wino_g(int m, int r, int xi, int i);
double wino_at(int m, int r, int u, int xi);

// One sub-convolution of a Winograd plan: an a x b kernel (a, b in {2, 3})
// whose tap (i, j) is the layer's kernel tap (ky[i], kx[j]) and reads padded
// input row sst*(y + oy + i) + py, column sst*(x + ox + j) + px for output (y, x).
struct SubConv {
  int a = 0, b = 0, oy = 0, ox = 0, py = 0, px = 0;
  std::vector<int> ky, kx;
};

// The sub-convs of a layer, or none when Winograd does not apply
// (only 2- and 3-tap sub-kernels: k=5 stride 2, k=3 stride 1, k=5 transposed).
std::vector<SubConv> wino_subconvs(bool transposed, int k, int s);

// Packs U = G g G^T for every sub-conv, component and block of kMR output
// channels: [nci][kMR] each, in the order the tiles read them.
// get(co, ci, ky, kx) reads the PyTorch tensor.
template <class Get>
std::vector<float> pack_wino_weights(int cin, int cout, int coutp, const std::vector<SubConv>& subs, int bh, Get get) {
  size_t n = 0;
  for (const SubConv& sc : subs) n += (size_t)(sc.a + bh - 1) * (sc.b + 1) * coutp * cin;
  std::vector<float> pw(n, 0.0f);
  size_t pos = 0;
  const int nob = coutp / kMR;
  std::vector<double> kern;
  for (const SubConv& sc : subs) {
    // the sub-kernels, gathered once in the order the packing loops read them:
    // [ob][ci][m][i * b + j] (reading the layer's tensor once per component
    // made loading a model take ~0.3 s)
    const int ab = sc.a * sc.b;
    kern.assign((size_t)nob * cin * kMR * ab, 0.0);
    for (int ob = 0; ob < nob; ++ob)
      for (int ci = 0; ci < cin; ++ci)
        for (int m = 0; m < kMR; ++m) {
          const int co = ob * kMR + m;
          if (co >= cout) continue;
          double* kp = &kern[(((size_t)ob * cin + ci) * kMR + m) * ab];
          for (int i = 0; i < sc.a; ++i)
            for (int j = 0; j < sc.b; ++j) kp[i * sc.b + j] = get(co, ci, sc.ky[i], sc.kx[j]);
        }
    for (int xi = 0; xi < sc.a + bh - 1; ++xi)
      for (int eta = 0; eta <= sc.b; ++eta) {
        double coef[9];
        for (int i = 0; i < sc.a; ++i)
          for (int j = 0; j < sc.b; ++j) coef[i * sc.b + j] = wino_g(bh, sc.a, xi, i) * wino_g(2, sc.b, eta, j);
        const double* kp = kern.data();
        for (int ob = 0; ob < nob; ++ob)
          for (int ci = 0; ci < cin; ++ci)
            for (int m = 0; m < kMR; ++m, kp += ab) {
              double u = 0.0;  // same products, same order as sum_i sum_j G[xi][i] G[eta][j] g[i][j]
              if (ob * kMR + m < cout)
                for (int t = 0; t < ab; ++t) u += coef[t] * kp[t];
              pw[pos++] = static_cast<float>(u);
            }
      }
  }
  return pw;
}

// Input layout and per-component transforms of a Winograd run. The padded
// input is split into fy x fx polyphase planes (fy = bh * input stride of
// the sub-convs, fx = 2 * that stride), so that the bh x 2 output blocks
// read contiguous rows. shift (0 <= shift < bh) starts the block grid shift
// (sub-conv output) rows above the tensor, so that blocks stay on the rows
// of a larger image that are multiples of bh when the tensor starts at row
// first_row = shift (mod bh) of it (strip-wise processing, see Conv2d::run).
Geometry wino_geometry(bool transposed, int h, int w, int k, int s, const std::vector<SubConv>& subs, int shift,
                       int bh);

}  // namespace detail
}  // namespace dsp
}  // namespace lmc
