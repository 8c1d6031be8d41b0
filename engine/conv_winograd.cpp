#include "engine/conv_winograd.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/conv_canvas.h"
#include "engine/conv_flat.h"
#include "engine/gemm.h"
#include "engine/padded.h"
#include "engine/parallel.h"
#include "engine/workspace.h"

namespace mt::conv_winograd {

namespace {

using conv_flat::kLanes;
constexpr int kXi = 16;  // elements of a 4x4 tile

// The transforms below run over kLanes tiles at once, each a plain loop the
// compiler turns into one vector operation per line in every build (adds and
// subtracts only: the builds give the same bits).
#define MT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define MT_INLINE_W inline __attribute__((always_inline))

// The 4x4 tiles of 16 grid positions: V = B^T d B. d[rho * 4 + sigma] points at
// the tile element (rho, sigma) of the first position; v[xi] (xi = i * 4 + j)
// gets V's element (i, j).
MT_CLONES void input_transform(const float* const* d, float* const* v) {
  float t[kXi][kLanes];
  for (int s = 0; s < 4; s++)
    for (int l = 0; l < kLanes; l++) {  // B^T d, column s
      const float d0 = d[s][l], d1 = d[4 + s][l], d2 = d[8 + s][l], d3 = d[12 + s][l];
      t[s][l] = d0 - d2;
      t[4 + s][l] = d1 + d2;
      t[8 + s][l] = d2 - d1;
      t[12 + s][l] = d1 - d3;
    }
  for (int i = 0; i < 4; i++)
    for (int l = 0; l < kLanes; l++) {  // (B^T d) B, row i
      const float t0 = t[4 * i][l], t1 = t[4 * i + 1][l], t2 = t[4 * i + 2][l], t3 = t[4 * i + 3][l];
      v[4 * i][l] = t0 - t2;
      v[4 * i + 1][l] = t1 + t2;
      v[4 * i + 2][l] = t2 - t1;
      v[4 * i + 3][l] = t1 - t3;
    }
}

// Y = A^T M A for 16 positions: m[xi] -> y[a * 2 + b].
MT_CLONES void output_transform(const float* const* m, float* y) {
  float s[8][kLanes];
  for (int j = 0; j < 4; j++)
    for (int l = 0; l < kLanes; l++) {  // A^T M, column j
      const float m0 = m[j][l], m1 = m[4 + j][l], m2 = m[8 + j][l], m3 = m[12 + j][l];
      s[j][l] = (m0 + m1) + m2;
      s[4 + j][l] = (m1 - m2) - m3;
    }
  for (int a = 0; a < 2; a++)
    for (int l = 0; l < kLanes; l++) {  // (A^T M) A, row a
      const float s0 = s[4 * a][l], s1 = s[4 * a + 1][l], s2 = s[4 * a + 2][l], s3 = s[4 * a + 3][l];
      y[(2 * a) * kLanes + l] = (s0 + s1) + s2;
      y[(2 * a + 1) * kLanes + l] = (s1 - s2) - s3;
    }
}

// dM = A dY A^T for 16 positions: dy[a * 2 + b] -> dm[xi].
MT_CLONES void grad_output_transform(const float* const* dy, float* const* dm) {
  float r[8][kLanes];  // A dY: rows i = 0..3, columns b
  for (int b = 0; b < 2; b++)
    for (int l = 0; l < kLanes; l++) {
      const float y0 = dy[b][l], y1 = dy[2 + b][l];
      r[b][l] = y0;
      r[2 + b][l] = y0 + y1;
      r[4 + b][l] = y0 - y1;
      r[6 + b][l] = -y1;
    }
  for (int i = 0; i < 4; i++)
    for (int l = 0; l < kLanes; l++) {  // (A dY) A^T, row i
      const float r0 = r[2 * i][l], r1 = r[2 * i + 1][l];
      dm[4 * i][l] = r0;
      dm[4 * i + 1][l] = r0 + r1;
      dm[4 * i + 2][l] = r0 - r1;
      dm[4 * i + 3][l] = -r1;
    }
}

// The weight transforms, in double, each value rounded to float once:
// G (4 x 3) = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], applied to columns
// and then rows. G v for v = (a, b, c) is (a, (a + c + b) / 2, (a + c - b) / 2, c),
// and G^T w for w = (a, b, c, d) is (a + (b + c) / 2, (b - c) / 2, (b + c) / 2 + d).
// Both run over 16 input channels c at a time (one lane each).
using Lanes = double[kLanes];
MT_INLINE_W void G_times(const Lanes& a, const Lanes& b, const Lanes& c, Lanes& o0, Lanes& o1, Lanes& o2, Lanes& o3) {
  for (int l = 0; l < kLanes; l++) {
    const double ac = a[l] + c[l];
    o0[l] = a[l], o1[l] = (ac + b[l]) * 0.5, o2[l] = (ac - b[l]) * 0.5, o3[l] = c[l];
  }
}
MT_INLINE_W void Gt_times(const Lanes& a, const Lanes& b, const Lanes& c, const Lanes& d, Lanes& o0, Lanes& o1,
                          Lanes& o2) {
  for (int l = 0; l < kLanes; l++) {
    const double bc = (b[l] + c[l]) * 0.5;
    o0[l] = a[l] + bc, o1[l] = (b[l] - c[l]) * 0.5, o2[l] = bc + d[l];
  }
}

// U_xi = G g G^T for output channel o and input channels [c0, c0 + nc), nc <= 16,
// into Uoc [xi][o][c], where g[ki][kj] = W[o, c, ki, kj], or with flip W[c, o, 2 - ki, 2 - kj].
MT_CLONES void transform_weights_block(const Problem& p, int o, int c0, int nc, float* Uoc) {
  const int O = p.O, C = p.C;
  double g[9][kLanes] = {}, Gg[12][kLanes], u[16][kLanes];
  for (int l = 0; l < nc; l++)
    for (int k = 0; k < 9; k++)
      g[k][l] = p.flip ? p.w[((int64_t)(c0 + l) * O + o) * 9 + 8 - k] : p.w[((int64_t)o * C + c0 + l) * 9 + k];
  for (int kj = 0; kj < 3; kj++) G_times(g[kj], g[3 + kj], g[6 + kj], Gg[kj], Gg[3 + kj], Gg[6 + kj], Gg[9 + kj]);
  for (int i = 0; i < 4; i++)
    G_times(Gg[3 * i], Gg[3 * i + 1], Gg[3 * i + 2], u[4 * i], u[4 * i + 1], u[4 * i + 2], u[4 * i + 3]);
  for (int e = 0; e < 16; e++) {
    float* dst = Uoc + ((int64_t)e * O + o) * C + c0;
    for (int l = 0; l < nc; l++) dst[l] = (float)u[e][l];
  }
}

// U for every (o, c).
void transform_all(const Problem& p, float* Uoc) {
  parallel_for(p.O, 1, [&](int64_t o0, int64_t o1) {
    for (int o = (int)o0; o < (int)o1; o++)
      for (int c0 = 0; c0 < p.C; c0 += kLanes) transform_weights_block(p, o, c0, std::min(kLanes, p.C - c0), Uoc);
  });
}

// The element xi = i * 4 + j of the flipped kernel's transform is the element
// (f(i), f(j)) of the kernel's own, f = (3, 1, 2, 0): G J = F G for the
// reversal J of a kernel's three rows and the swap F of G's first and last
// rows, so G (J g J) G^T = F (G g G^T) F^T. In floating point too: G v for
// v = (a, b, c) is (a, (a + c + b) / 2, (a + c - b) / 2, c), and the reversed
// (c, b, a) gives (c, (c + a + b) / 2, (c + a - b) / 2, a), the same roundings
// (a + c = c + a) in the other order.
int flipped_xi(int xi) {
  static constexpr int f[4] = {3, 1, 2, 0};
  return f[xi / 4] * 4 + f[xi % 4];
}

// U_xi [O x C] of p, as a product's operand: transformed into Uoc, or p.U's
// own (unflipped), or, for the flipped problem, the forward's U_f(xi) [C x O]
// read transposed (the very values transform_all would give).
struct WeightsU {
  const float* at;  // U_xi = at + xi * O * C, transposed when `transposed`
  bool transposed;
  const float* xi(const Problem& p, int e) const {
    return at + (int64_t)(transposed ? flipped_xi(e) : e) * p.O * p.C;
  }
  float operator()(const Problem& p, int e, int o, int c) const {  // U_xi[o][c]
    return transposed ? xi(p, e)[(int64_t)c * p.O + o] : xi(p, e)[(int64_t)o * p.C + c];
  }
};
WeightsU weights_U(const Problem& p, float* Uoc) {
  if (p.U) return {p.U, p.flip};
  transform_all(p, Uoc);
  return {Uoc, false};
}

// dg = G^T dU G for output channel o and input channels [c0, c0 + nc) of dU
// [xi][O][C]: dg[ki * 3 + kj][l] is the weight gradient of channel c0 + l.
MT_CLONES void untransform_weight_grad(const float* dU, int O, int C, int o, int c0, int nc, double dg[9][kLanes]) {
  double u[16][kLanes] = {}, r[12][kLanes];
  for (int e = 0; e < 16; e++)
    for (int l = 0; l < nc; l++) u[e][l] = dU[((int64_t)e * O + o) * C + c0 + l];
  for (int j = 0; j < 4; j++) Gt_times(u[j], u[4 + j], u[8 + j], u[12 + j], r[j], r[4 + j], r[8 + j]);  // G^T dU
  for (int ki = 0; ki < 3; ki++)
    Gt_times(r[4 * ki], r[4 * ki + 1], r[4 * ki + 2], r[4 * ki + 3], dg[3 * ki], dg[3 * ki + 1], dg[3 * ki + 2]);
}

// The tile grid of an input [N, C, H, W]: the canvas plan of a 4x4 stride-2
// correlation padded by 1, with ceil(H/2) x ceil(W/2) outputs (the tiles).
conv_canvas::Plan tile_plan(int N, int C, int H, int W, int O) {
  const conv_canvas::Geometry g{N, C, H, W, O, 4, 4, 2, 1, (H + 1) / 2, (W + 1) / 2};
  // Bands narrow enough that a band's transformed tiles stay in cache.
  return conv_canvas::make_plan(g, conv_canvas::images_per_band(g, 0, 16, false), false);
}

// The input transform of a band: V[xi][c][q] for every grid position q < Qr.
void transform_input(const conv_canvas::Plan& P, const float* canvas, int64_t Qr, float* V) {
  const int C = P.g.C;
  for (int c = 0; c < C; c++)
    for (int64_t q = 0; q < Qr; q += kLanes) {
      const float* d[kXi];
      float* v[kXi];
      for (int e = 0; e < kXi; e++) {
        d[e] = canvas + P.taps[(size_t)c * kXi + e] + q;
        v[e] = V + ((int64_t)e * C + c) * Qr + q;
      }
      input_transform(d, v);
    }
}

// taps[c] = c * Qr: the channels of a transformed plane as a correlation's taps.
std::vector<int32_t> channel_taps(int C, int64_t Qr) {
  std::vector<int32_t> t(C);
  for (int c = 0; c < C; c++) t[c] = (int32_t)(c * Qr);
  return t;
}

// ---- tiles as matrices (small images) ---------------------------------------
//
// Tile t = (n * th + ty) * tw + tx of the batch reads the 4x4 patch at rows
// 2 ty - 1 .. 2 ty + 2 and columns 2 tx - 1 .. 2 tx + 2 of image n (zero
// outside) and owns the 2x2 outputs at (2 ty, 2 tx) that lie inside it. The
// products' operands are [xi][channel][tile] with Tp columns (T tiles rounded
// up to kLanes; the extra columns are zero).
struct Tiles {
  int N = 0, C = 0, H = 0, W = 0, th = 0, tw = 0;
  Padded pad;  // the planes padded by one all round, to whole tiles: (2 th + 2) x (2 tw + 2)
  int64_t T = 0, Tp = 0;
  std::vector<int64_t> at;  // [Tp]: tile t's top-left in the padded x of channel 0 (n C plane + 2 ty ld + 2 tx), or -1
};

Tiles make_tiles(int N, int C, int H, int W) {
  Tiles g;
  g.N = N, g.C = C, g.H = H, g.W = W, g.th = (H + 1) / 2, g.tw = (W + 1) / 2;
  g.pad.top = g.pad.left = 1, g.pad.rows = 2 * g.th + 2, g.pad.ld = 2 * g.tw + 2;
  g.T = (int64_t)N * g.th * g.tw, g.Tp = conv_flat::round_up(g.T, kLanes);
  g.at.assign(g.Tp, -1);
  for (int64_t t = 0; t < g.T; t++) {
    const int64_t n = t / ((int64_t)g.th * g.tw), r = t % ((int64_t)g.th * g.tw);
    g.at[t] = n * C * g.pad.plane() + 2 * (r / g.tw) * g.pad.ld + 2 * (r % g.tw);
  }
  return g;
}

// xp [N, C, rows, ld]: x with a zero border of one (and of two past an odd last row or column).
void pad_planes(const Tiles& g, const float* x, float* xp) {
  parallel_for((int64_t)g.N * g.C, 16, [&](int64_t i0, int64_t i1) {
    std::memset(xp + i0 * g.pad.plane(), 0, sizeof(float) * (i1 - i0) * g.pad.plane());
    copy_padded(x + i0 * g.H * g.W, (int)(i1 - i0), g.H, g.W, g.pad, xp + i0 * g.pad.plane());
  });
}

// V_xi [C x Tp] = B^T d B of every tile's patch d, 16 tiles at a time per channel.
void transform_input_tiles(const Tiles& g, const float* xp, float* V) {
  parallel_for(g.C, 1, [&](int64_t c0, int64_t c1) {
    float d[kXi * kLanes];
    const float* dp[kXi];
    float* vp[kXi];
    for (int e = 0; e < kXi; e++) dp[e] = d + e * kLanes;
    for (int64_t c = c0; c < c1; c++)
      for (int64_t t0 = 0; t0 < g.Tp; t0 += kLanes) {
        for (int e = 0; e < kXi; e++) {
          const int64_t off = c * g.pad.plane() + (e / 4) * g.pad.ld + e % 4;
          for (int l = 0; l < kLanes; l++) d[e * kLanes + l] = g.at[t0 + l] < 0 ? 0.f : xp[g.at[t0 + l] + off];
        }
        for (int e = 0; e < kXi; e++) vp[e] = V + ((int64_t)e * g.C + c) * g.Tp + t0;
        input_transform(dp, vp);
      }
  });
}

// [4 Tp]: where output (a, b) of tile t lies in an [N, O, H, W] tensor (the
// forward's y, the backward's dy), at 4 t + 2 a + b: its offset in channel 0
// of image n (the same for every channel), or -1 outside the image.
std::vector<int64_t> tile_outputs(const Tiles& g, int O) {
  std::vector<int64_t> at(4 * (size_t)g.Tp, -1);
  for (int64_t t = 0; t < g.T; t++) {
    const int64_t n = t / ((int64_t)g.th * g.tw), r = t % ((int64_t)g.th * g.tw);
    for (int ab = 0; ab < 4; ab++) {
      const int h = 2 * (int)(r / g.tw) + ab / 2, w = 2 * (int)(r % g.tw) + ab % 2;
      if (h < g.H && w < g.W) at[4 * t + ab] = (n * O * g.H + h) * g.W + w;
    }
  }
  return at;
}

// y = the correlation (plus bias) or y += it, as forward() below.
void matrices_forward(const Problem& p, const float* bias, float* y, bool accumulate) {
  const int C = p.C, O = p.O;
  const Tiles g = make_tiles(p.N, C, p.H, p.W);
  // the calling thread's buffers, shared by the workers
  float* Uoc = scratch<float>(kScratchSetup, (int64_t)kXi * O * C);
  float* xp = scratch<float>(kScratchCols, (int64_t)p.N * C * g.pad.plane());
  float* V = scratch<float>(kScratchColGrad, kXi * C * g.Tp);
  float* M = scratch<float>(kScratchDx, kXi * O * g.Tp);
  const WeightsU U = weights_U(p, Uoc);
  pad_planes(g, p.x, xp);
  transform_input_tiles(g, xp, V);
  parallel_for(kXi, 1, [&](int64_t e0, int64_t e1) {  // M_xi = U_xi V_xi
    for (int64_t e = e0; e < e1; e++)
      gemm_serial(U.transposed, false, O, (int)g.Tp, C, U.xi(p, (int)e), V + e * C * g.Tp, 0.f, M + e * O * g.Tp);
  });
  const std::vector<int64_t> dst = tile_outputs(g, O);
  const int64_t plane = (int64_t)g.H * g.W;
  parallel_for(O, 1, [&](int64_t o0, int64_t o1) {
    const float* m[kXi];
    float out[4 * kLanes];
    for (int64_t o = o0; o < o1; o++) {
      const float init = bias ? bias[o] : 0.f;
      float* yo = y + o * plane;
      for (int64_t t0 = 0; t0 < g.Tp; t0 += kLanes) {
        for (int e = 0; e < kXi; e++) m[e] = M + ((int64_t)e * O + o) * g.Tp + t0;
        output_transform(m, out);
        for (int l = 0; l < kLanes; l++)
          for (int ab = 0; ab < 4; ab++) {
            const int64_t at = dst[4 * (t0 + l) + ab];
            if (at < 0) continue;
            yo[at] = accumulate ? yo[at] + out[ab * kLanes + l] : init + out[ab * kLanes + l];
          }
      }
    }
  });
}

// dw += the weight gradient, as grad_weight() below.
void matrices_grad_weight(const Problem& p, const float* dy, float* dw) {
  const int C = p.C, O = p.O;
  const Tiles g = make_tiles(p.N, C, p.H, p.W);
  float* xp = scratch<float>(kScratchCols, (int64_t)p.N * C * g.pad.plane());
  float* V = scratch<float>(kScratchColGrad, kXi * C * g.Tp);
  float* dM = scratch<float>(kScratchDx, kXi * O * g.Tp);
  float* dU = scratch<float>(kScratchTileGrad, (int64_t)kXi * O * C);
  pad_planes(g, p.x, xp);
  transform_input_tiles(g, xp, V);
  const std::vector<int64_t> src = tile_outputs(g, O);
  const int64_t plane = (int64_t)g.H * g.W;
  parallel_for(O, 1, [&](int64_t o0, int64_t o1) {  // dM_xi = A dY A^T of every tile's 2x2 block of dy
    float d[4 * kLanes];
    const float* dp[4] = {d, d + kLanes, d + 2 * kLanes, d + 3 * kLanes};
    float* m[kXi];
    for (int64_t o = o0; o < o1; o++) {
      const float* dyo = dy + o * plane;
      for (int64_t t0 = 0; t0 < g.Tp; t0 += kLanes) {
        for (int ab = 0; ab < 4; ab++)
          for (int l = 0; l < kLanes; l++) {
            const int64_t at = src[4 * (t0 + l) + ab];
            d[ab * kLanes + l] = at < 0 ? 0.f : dyo[at];
          }
        for (int e = 0; e < kXi; e++) m[e] = dM + ((int64_t)e * O + o) * g.Tp + t0;
        grad_output_transform(dp, m);
      }
    }
  });
  parallel_for(kXi, 1, [&](int64_t e0, int64_t e1) {  // dU_xi = dM_xi V_xi^T
    for (int64_t e = e0; e < e1; e++)
      gemm_serial(false, true, O, C, (int)g.Tp, dM + e * O * g.Tp, V + e * C * g.Tp, 0.f, dU + e * O * C);
  });
  parallel_for(O, 1, [&](int64_t o0, int64_t o1) {  // dg = G^T dU G
    for (int64_t o = o0; o < o1; o++)
      for (int c0 = 0; c0 < C; c0 += kLanes) {
        double dg[9][kLanes];
        const int nc = std::min(kLanes, C - c0);
        untransform_weight_grad(dU, O, C, (int)o, c0, nc, dg);
        for (int l = 0; l < nc; l++)
          for (int k = 0; k < 9; k++) dw[(o * C + c0 + l) * 9 + k] += (float)dg[k][l];
      }
  });
}

}  // namespace

bool applies(int kh, int kw, int stride, int pad) { return kh == 3 && kw == 3 && stride == 1 && pad == 1; }

void transform_weights(const Problem& p, float* U) {
  Problem q = p;
  q.flip = false;
  transform_all(q, U);
}

void forward(const Problem& p, const float* bias, float* y, bool accumulate) {
  if (p.matrices) return matrices_forward(p, bias, y, accumulate);
  const int C = p.C, O = p.O, H = p.H, W = p.W;
  const conv_canvas::Plan P = tile_plan(p.N, C, H, W, O);
  const int64_t Qr = conv_flat::round_up(P.Q, kLanes), bands = (p.N + P.G - 1) / P.G;
  const int th = P.g.Ho;

  // U_xi = G g G^T for every (o, c), packed for the correlation (shared by the workers).
  const int64_t packed = conv_flat::packed_size(O, C);
  float* U = scratch<float>(kScratchSetup, kXi * packed + (int64_t)kXi * O * C);
  const WeightsU Uoc = weights_U(p, U + kXi * packed);
  for (int e = 0; e < kXi; e++)
    conv_flat::pack_weights(O, C, [&](int o, int c) { return Uoc(p, e, o, c); }, U + e * packed);
  const std::vector<int32_t> taps = channel_taps(C, Qr);
  const int64_t xs = (int64_t)C * H * W, ys = (int64_t)O * H * W;

  parallel_for(bands, 1, [&](int64_t b0, int64_t b1) {
    float* canvas = scratch<float>(kScratchCols, P.x_floats);
    float* V = scratch<float>(kScratchColGrad, kXi * C * Qr);
    float* M = scratch<float>(kScratchDx, kXi * O * Qr);
    float* Y = scratch<float>(kScratchTiles, 4 * Qr);
    for (int64_t band = b0; band < b1; band++) {
      const int64_t n0 = band * P.G;
      const int images = (int)std::min<int64_t>(P.G, p.N - n0);
      conv_canvas::stage_x(P, p.x + n0 * xs, images, canvas);
      transform_input(P, canvas, Qr, V);
      for (int e = 0; e < kXi; e++) {
        conv_flat::Correlate k;
        k.O = O, k.T = C, k.in = V + (int64_t)e * C * Qr, k.taps = taps.data(), k.w = U + e * packed;
        k.out = M + (int64_t)e * O * Qr, k.out_plane = Qr, k.Q = P.Q;
        conv_flat::correlate(k);
      }
      for (int o = 0; o < O; o++) {
        for (int64_t q = 0; q < Qr; q += kLanes) {
          const float* m[kXi];
          for (int e = 0; e < kXi; e++) m[e] = M + ((int64_t)e * O + o) * Qr + q;
          float out[4 * kLanes];
          output_transform(m, out);
          for (int ab = 0; ab < 4; ab++) std::memcpy(Y + ab * Qr + q, out + ab * kLanes, sizeof(float) * kLanes);
        }
        // the 2x2 outputs of each tile into y
        const float init = bias ? bias[o] : 0.f;
        for (int b = 0; b < images; b++)
          for (int ti = 0; ti < th; ti++)
            for (int a = 0; a < 2 && 2 * ti + a < H; a++) {
              float* __restrict row = y + (n0 + b) * ys + ((int64_t)o * H + 2 * ti + a) * W;
              const float* __restrict y0 = Y + (2 * a) * Qr + (int64_t)ti * P.ld + (int64_t)b * P.Sw;
              const float* __restrict y1 = Y + (2 * a + 1) * Qr + (int64_t)ti * P.ld + (int64_t)b * P.Sw;
              const int pairs = W / 2;  // whole 2-column tiles, then an odd last column
              if (accumulate) {
                for (int tj = 0; tj < pairs; tj++) {
                  row[2 * tj] += y0[tj];
                  row[2 * tj + 1] += y1[tj];
                }
                if (W % 2) row[W - 1] += y0[pairs];
              } else {
                for (int tj = 0; tj < pairs; tj++) {
                  row[2 * tj] = init + y0[tj];
                  row[2 * tj + 1] = init + y1[tj];
                }
                if (W % 2) row[W - 1] = init + y0[pairs];
              }
            }
      }
    }
  });
}

void grad_weight(const Problem& p, const float* dy, float* dw) {
  if (p.matrices) return matrices_grad_weight(p, dy, dw);
  const int C = p.C, O = p.O, H = p.H, W = p.W;
  const conv_canvas::Plan P = tile_plan(p.N, C, H, W, O);
  const int64_t Qr = conv_flat::round_up(P.Q, kLanes), bands = (p.N + P.G - 1) / P.G;
  const int64_t OC9 = (int64_t)O * C * 9, xs = (int64_t)C * H * W, ys = (int64_t)O * H * W;
  const std::vector<int32_t> taps = channel_taps(C, Qr);
  float* part = scratch<float>(kScratchPartials, bands * OC9);  // per band, added in band order below

  parallel_for(bands, 1, [&](int64_t b0, int64_t b1) {
    float* canvas = scratch<float>(kScratchCols, P.x_floats);
    float* V = scratch<float>(kScratchColGrad, kXi * C * Qr);
    float* dM = scratch<float>(kScratchDx, kXi * O * Qr);
    float* dYt = scratch<float>(kScratchTiles, 4 * O * Qr);
    float* dU = scratch<float>(kScratchTileGrad, kXi * O * C);
    for (int64_t band = b0; band < b1; band++) {
      const int64_t n0 = band * P.G;
      const int images = (int)std::min<int64_t>(P.G, p.N - n0);
      conv_canvas::stage_x(P, p.x + n0 * xs, images, canvas);
      transform_input(P, canvas, Qr, V);
      // dy's 2x2 blocks on the tile grid (zeros off the outputs), then dM = A dY A^T
      std::memset(dYt, 0, sizeof(float) * 4 * O * Qr);
      for (int b = 0; b < images; b++)
        for (int o = 0; o < O; o++)
          for (int h = 0; h < H; h++) {
            const float* __restrict row = dy + (n0 + b) * ys + ((int64_t)o * H + h) * W;
            const int64_t at = (int64_t)(h / 2) * P.ld + (int64_t)b * P.Sw;
            float* __restrict t0 = dYt + ((int64_t)(2 * (h % 2)) * O + o) * Qr + at;
            float* __restrict t1 = dYt + ((int64_t)(2 * (h % 2) + 1) * O + o) * Qr + at;
            for (int w = 0; w < W; w += 2) t0[w / 2] = row[w];
            for (int w = 1; w < W; w += 2) t1[w / 2] = row[w];
          }
      for (int o = 0; o < O; o++)
        for (int64_t q = 0; q < Qr; q += kLanes) {
          const float* t[4];
          float* m[kXi];
          for (int ab = 0; ab < 4; ab++) t[ab] = dYt + ((int64_t)ab * O + o) * Qr + q;
          for (int e = 0; e < kXi; e++) m[e] = dM + ((int64_t)e * O + o) * Qr + q;
          grad_output_transform(t, m);
        }
      for (int e = 0; e < kXi; e++) {  // dU_xi = dM_xi V_xi^T
        conv_flat::GradWeight k;
        k.O = O, k.T = C, k.in = V + (int64_t)e * C * Qr, k.taps = taps.data();
        k.dy = dM + (int64_t)e * O * Qr, k.dy_plane = Qr, k.Q = P.Q, k.dw = dU + (int64_t)e * O * C;
        conv_flat::grad_weight(k);
      }
      // this band's dg = G^T dU G
      float* out = part + band * OC9;
      for (int o = 0; o < O; o++)
        for (int c0 = 0; c0 < C; c0 += kLanes) {
          double dg[9][kLanes];
          const int nc = std::min(kLanes, C - c0);
          untransform_weight_grad(dU, O, C, o, c0, nc, dg);
          for (int l = 0; l < nc; l++)
            for (int k = 0; k < 9; k++) out[((int64_t)o * C + c0 + l) * 9 + k] = (float)dg[k][l];
        }
    }
  });
  parallel_for(OC9, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      double acc = 0;
      for (int64_t b = 0; b < bands; b++) acc += part[b * OC9 + i];
      dw[i] += (float)acc;
    }
  });
}

}  // namespace mt::conv_winograd
