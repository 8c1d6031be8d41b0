#include "engine/conv_winograd.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <immintrin.h>

#include "engine/conv_canvas.h"
#include "engine/cpu_dispatch.h"
#include "engine/conv_flat.h"
#include "engine/error.h"
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

// F(4x4, 3x3) (Lavin & Gray, section 4.2): 6x6 tiles 4 apart, 36 products per
// 4x4 outputs and input channel where the direct correlation takes 144, with
// the points 0, 1, -1, 2, -2 and infinity:
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
// These transforms multiply (by 2, 4, 5 and 8); with fused multiply-adds off
// (the Makefile's -ffp-contract=off) every build rounds them alike. Each
// writes a local block and copies it out: six stores a line through the
// pointer arrays kept GCC from vectorising.
constexpr int kXi6 = 36;

// V = B^T d B for 16 tiles: d[rho * 6 + sigma] -> v[i * 6 + j].
MT_CLONES void input_transform6(const float* const* d, float* const* v) {
  float t[kXi6][kLanes], u[kXi6][kLanes];
  for (int s = 0; s < 6; s++)
    for (int l = 0; l < kLanes; l++) {  // B^T d, column s
      const float d0 = d[s][l], d1 = d[6 + s][l], d2 = d[12 + s][l], d3 = d[18 + s][l], d4 = d[24 + s][l],
                  d5 = d[30 + s][l];
      const float a = d4 - 4.f * d2, b = d3 - 4.f * d1, c = d4 - d2, e = 2.f * (d3 - d1);
      t[s][l] = (4.f * d0 - 5.f * d2) + d4;
      t[6 + s][l] = a + b;
      t[12 + s][l] = a - b;
      t[18 + s][l] = c + e;
      t[24 + s][l] = c - e;
      t[30 + s][l] = (4.f * d1 - 5.f * d3) + d5;
    }
  for (int i = 0; i < 6; i++)
    for (int l = 0; l < kLanes; l++) {  // (B^T d) B, row i
      const float t0 = t[6 * i][l], t1 = t[6 * i + 1][l], t2 = t[6 * i + 2][l], t3 = t[6 * i + 3][l],
                  t4 = t[6 * i + 4][l], t5 = t[6 * i + 5][l];
      const float a = t4 - 4.f * t2, b = t3 - 4.f * t1, c = t4 - t2, e = 2.f * (t3 - t1);
      u[6 * i][l] = (4.f * t0 - 5.f * t2) + t4;
      u[6 * i + 1][l] = a + b;
      u[6 * i + 2][l] = a - b;
      u[6 * i + 3][l] = c + e;
      u[6 * i + 4][l] = c - e;
      u[6 * i + 5][l] = (4.f * t1 - 5.f * t3) + t5;
    }
  for (int e = 0; e < kXi6; e++) std::memcpy(v[e], u[e], sizeof(float) * kLanes);
}

// Y = A^T M A for 16 tiles: m[xi] -> y[a * 4 + b].
MT_CLONES void output_transform6(const float* const* m, float* y) {
  float s[24][kLanes];
  for (int j = 0; j < 6; j++)
    for (int l = 0; l < kLanes; l++) {  // A^T M, column j
      const float m0 = m[j][l], m1 = m[6 + j][l], m2 = m[12 + j][l], m3 = m[18 + j][l], m4 = m[24 + j][l],
                  m5 = m[30 + j][l];
      const float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
      s[j][l] = (m0 + a) + c;
      s[6 + j][l] = b + 2.f * d;
      s[12 + j][l] = a + 4.f * c;
      s[18 + j][l] = (b + 8.f * d) + m5;
    }
  for (int i = 0; i < 4; i++)
    for (int l = 0; l < kLanes; l++) {  // (A^T M) A, row i
      const float s0 = s[6 * i][l], s1 = s[6 * i + 1][l], s2 = s[6 * i + 2][l], s3 = s[6 * i + 3][l],
                  s4 = s[6 * i + 4][l], s5 = s[6 * i + 5][l];
      const float a = s1 + s2, b = s1 - s2, c = s3 + s4, d = s3 - s4;
      y[(4 * i) * kLanes + l] = (s0 + a) + c;
      y[(4 * i + 1) * kLanes + l] = b + 2.f * d;
      y[(4 * i + 2) * kLanes + l] = a + 4.f * c;
      y[(4 * i + 3) * kLanes + l] = (b + 8.f * d) + s5;
    }
}

// dM = A dY A^T for 16 tiles: dy[a * 4 + b] -> dm[xi]. A's rows (A^T's columns)
// take (y0, y1, y2, y3) to (y0, p + q, p - q, p' + q', p' - q', y3) with
// p = y0 + y2, q = y1 + y3, p' = y0 + 4 y2, q' = 2 y1 + 8 y3.
MT_CLONES void grad_output_transform6(const float* const* dy, float* const* dm) {
  float r[24][kLanes], u[kXi6][kLanes];  // A dY: rows i = 0..5, columns b
  for (int b = 0; b < 4; b++)
    for (int l = 0; l < kLanes; l++) {
      const float y0 = dy[b][l], y1 = dy[4 + b][l], y2 = dy[8 + b][l], y3 = dy[12 + b][l];
      const float p = y0 + y2, q = y1 + y3, p4 = y0 + 4.f * y2, q4 = 2.f * y1 + 8.f * y3;
      r[b][l] = y0;
      r[4 + b][l] = p + q;
      r[8 + b][l] = p - q;
      r[12 + b][l] = p4 + q4;
      r[16 + b][l] = p4 - q4;
      r[20 + b][l] = y3;
    }
  for (int i = 0; i < 6; i++)
    for (int l = 0; l < kLanes; l++) {  // (A dY) A^T, row i
      const float y0 = r[4 * i][l], y1 = r[4 * i + 1][l], y2 = r[4 * i + 2][l], y3 = r[4 * i + 3][l];
      const float p = y0 + y2, q = y1 + y3, p4 = y0 + 4.f * y2, q4 = 2.f * y1 + 8.f * y3;
      u[6 * i][l] = y0;
      u[6 * i + 1][l] = p + q;
      u[6 * i + 2][l] = p - q;
      u[6 * i + 3][l] = p4 + q4;
      u[6 * i + 4][l] = p4 - q4;
      u[6 * i + 5][l] = y3;
    }
  for (int e = 0; e < kXi6; e++) std::memcpy(dm[e], u[e], sizeof(float) * kLanes);
}

// The weight transforms, in float, 16 lanes to a vector (they were in double,
// two vectors of 8, rounded to float at the end: the transform and its
// untransform took 17 % of a [64,128,4,4] F(4x4, 3x3) layer's three passes
// by perf samples, 8-15 % in float; the last bits of U and dW move, a float's
// rounding or two):
// G (4 x 3) = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], applied to columns
// and then rows. G v for v = (a, b, c) is (a, (a + c + b) / 2, (a + c - b) / 2, c),
// and G^T w for w = (a, b, c, d) is (a + (b + c) / 2, (b - c) / 2, (b + c) / 2 + d).
// F(4x4, 3x3)'s G (6 x 3) takes v to (a / 4, -(a + c + b) / 6, -(a + c - b) / 6,
// (a + 4 c + 2 b) / 24, (a + 4 c - 2 b) / 24, c), and G^T w for w = (w0, ..., w5)
// is (w0 / 4 - (w1 + w2) / 6 + (w3 + w4) / 24, (w2 - w1) / 6 + (w3 - w4) / 12,
// (w3 + w4 - w1 - w2) / 6 + w5).
// All run over 16 input channels c at a time (one lane each), for the tile
// side m (2 or 4), from and into rows `stride` apart.
using Lanes = float[kLanes];
MT_INLINE_W void G_times(int m, const Lanes& a, const Lanes& b, const Lanes& c, Lanes* o, int stride) {
  if (m == 2) {
    for (int l = 0; l < kLanes; l++) {
      const float ac = a[l] + c[l];
      o[0][l] = a[l], o[stride][l] = (ac + b[l]) * 0.5f, o[2 * stride][l] = (ac - b[l]) * 0.5f, o[3 * stride][l] = c[l];
    }
    return;
  }
  constexpr float r6 = 1.f / 6, r24 = 1.f / 24;  // multiplies: a division each would dominate the transform
  for (int l = 0; l < kLanes; l++) {
    const float ac = a[l] + c[l], a4c = a[l] + 4.f * c[l];
    o[0][l] = a[l] * 0.25f, o[stride][l] = -(ac + b[l]) * r6, o[2 * stride][l] = -(ac - b[l]) * r6;
    o[3 * stride][l] = (a4c + 2.f * b[l]) * r24, o[4 * stride][l] = (a4c - 2.f * b[l]) * r24, o[5 * stride][l] = c[l];
  }
}
MT_INLINE_W void Gt_times(int m, const Lanes* w, int stride, Lanes& o0, Lanes& o1, Lanes& o2) {
  if (m == 2) {
    for (int l = 0; l < kLanes; l++) {
      const float a = w[0][l], b = w[stride][l], c = w[2 * stride][l], d = w[3 * stride][l];
      const float bc = (b + c) * 0.5f;
      o0[l] = a + bc, o1[l] = (b - c) * 0.5f, o2[l] = bc + d;
    }
    return;
  }
  constexpr float r6 = 1.f / 6, r12 = 1.f / 12, r24 = 1.f / 24;
  for (int l = 0; l < kLanes; l++) {
    const float w0 = w[0][l], w1 = w[stride][l], w2 = w[2 * stride][l], w3 = w[3 * stride][l],
                 w4 = w[4 * stride][l], w5 = w[5 * stride][l];
    const float s12 = w1 + w2, s34 = w3 + w4;
    o0[l] = (w0 * 0.25f - s12 * r6) + s34 * r24, o1[l] = (w2 - w1) * r6 + (w3 - w4) * r12;
    o2[l] = (s34 - s12) * r6 + w5;
  }
}

// U_xi = G g G^T for output channel o and input channels [c0, c0 + nc), nc <= 16,
// into Uoc [xi][o][c], where g[ki][kj] = W[o, c, ki, kj], or with flip W[c, o, 2 - ki, 2 - kj].
MT_CLONES void transform_weights_block(const Problem& p, int o, int c0, int nc, float* Uoc) {
  const int O = p.O, C = p.C, a = p.m + 2;
  float g[9][kLanes], Gg[18][kLanes], u[kXi6][kLanes];
  for (int k = 0; k < 9; k++)
    for (int l = nc; l < kLanes; l++) g[k][l] = 0.f;
  if (p.flip) {
    for (int l = 0; l < nc; l++) {
      const float* w = p.w + ((int64_t)(c0 + l) * O + o) * 9 + 8;
      for (int k = 0; k < 9; k++) g[k][l] = w[-k];
    }
  } else {
    const float* w = p.w + ((int64_t)o * C + c0) * 9;  // the nc kernels lie one after another
    for (int l = 0; l < nc; l++)
      for (int k = 0; k < 9; k++) g[k][l] = w[l * 9 + k];
  }
  for (int kj = 0; kj < 3; kj++) G_times(p.m, g[kj], g[3 + kj], g[6 + kj], Gg + kj, 3);  // G g, column kj
  for (int i = 0; i < a; i++) G_times(p.m, Gg[3 * i], Gg[3 * i + 1], Gg[3 * i + 2], u + a * i, 1);  // (G g) G^T
  for (int e = 0; e < a * a; e++) {
    float* dst = Uoc + ((int64_t)e * O + o) * C + c0;
    if (nc == kLanes) std::memcpy(dst, u[e], sizeof u[e]);
    else std::memcpy(dst, u[e], sizeof(float) * nc);
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
// [xi][O][C] (tile side m): dg[ki * 3 + kj][l] is the weight gradient of channel c0 + l.
MT_CLONES void untransform_weight_grad(int m, const float* dU, int O, int C, int o, int c0, int nc,
                                       float dg[9][kLanes]) {
  const int a = m + 2;
  float u[kXi6][kLanes], r[18][kLanes];
  for (int e = 0; e < a * a; e++) {
    const float* src = dU + ((int64_t)e * O + o) * C + c0;
    if (nc == kLanes) {
      std::memcpy(u[e], src, sizeof u[e]);
    } else {
      std::memcpy(u[e], src, sizeof(float) * nc);
      for (int l = nc; l < kLanes; l++) u[e][l] = 0.f;
    }
  }
  for (int j = 0; j < a; j++) Gt_times(m, u + j, a, r[j], r[a + j], r[2 * a + j]);  // G^T dU, column j
  for (int ki = 0; ki < 3; ki++) Gt_times(m, r + a * ki, 1, dg[3 * ki], dg[3 * ki + 1], dg[3 * ki + 2]);  // (G^T dU) G
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

// ---- tiles as matrices -------------------------------------------------------
//
// Tile t = (n * th + ty) * tw + tx of the batch reads the (m + 2) x (m + 2)
// patch at rows m ty - 1 .. m ty + m and columns m tx - 1 .. m tx + m of image
// n (zero outside) and owns the m x m outputs at (m ty, m tx) that lie inside
// it (m = 2: F(2x2, 3x3); m = 4: F(4x4, 3x3)). The products' operands are
// [xi][channel][tile] with Tp columns (T tiles rounded up to kLanes; the extra
// columns are zero).
struct Tiles {
  int m = 2, a = 4, xi = kXi;  // output tile side, input tile side m + 2, a * a elements
  int N = 0, C = 0, H = 0, W = 0, th = 0, tw = 0;
  Padded pad;  // the planes padded by one all round, to whole tiles: (m th + 2) x (m tw + 2)
  int64_t T = 0, Tp = 0;
  std::vector<int64_t> at;  // [Tp]: tile t's top-left in the padded x of channel 0 (n C plane + m ty ld + m tx), or -1
};

Tiles make_tiles(int m, int N, int C, int H, int W) {
  Tiles g;
  g.m = m, g.a = m + 2, g.xi = g.a * g.a;
  g.N = N, g.C = C, g.H = H, g.W = W, g.th = (H + m - 1) / m, g.tw = (W + m - 1) / m;
  g.pad.top = g.pad.left = 1, g.pad.rows = m * g.th + 2, g.pad.ld = m * g.tw + 2;
  g.T = (int64_t)N * g.th * g.tw, g.Tp = conv_flat::round_up(g.T, kLanes);
  g.at.assign(g.Tp, -1);
  for (int64_t t = 0; t < g.T; t++) {
    const int64_t n = t / ((int64_t)g.th * g.tw), r = t % ((int64_t)g.th * g.tw);
    g.at[t] = n * C * g.pad.plane() + m * (r / g.tw) * g.pad.ld + m * (r % g.tw);
  }
  return g;
}

// Planes [i0, i1) of xp: each padded row written once, zeros and pixels (a
// memset of the plane and a memcpy per row cost twice as much on small images).
__attribute__((optimize("no-tree-loop-distribute-patterns"))) void pad_rows(const Tiles& g, const float* x,
                                                                           int64_t i0, int64_t i1, float* xp) {
  const Padded& l = g.pad;
  for (int64_t i = i0; i < i1; i++) {
    const float* __restrict src = x + i * g.H * g.W;
    float* __restrict p = xp + i * l.plane();
    for (int r = 0; r < l.rows; r++, p += l.ld) {
      const int h = r - l.top;
      const int from = h >= 0 && h < g.H ? l.left : l.ld, to = from == l.ld ? l.ld : l.left + g.W;
      for (int j = 0; j < from; j++) p[j] = 0.f;
      for (int j = from; j < to; j++) p[j] = src[(int64_t)h * g.W + j - l.left];
      for (int j = to; j < l.ld; j++) p[j] = 0.f;
    }
  }
}

// Moving 16 tiles' patches or blocks into d[element * 16 + tile] (and back)
// is a transposition; element by element it took a quarter of F(4x4, 3x3)'s
// weight gradient. Rows of 4 floats transpose four tiles at a time in SSE
// (every x86-64 build), rows of 6 as eight floats, eight tiles at a time, in
// AVX2 (24 shuffles an 8 x 8 block). They move the same values as the loops
// beside them: the same bits in every build.

// 8 x 8: r[j][s] -> r[s][j].
__attribute__((target("avx2"))) inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int j = 0; j < 8; j += 2) t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]), t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
  for (int j = 0; j < 8; j += 4) {
    u[j] = _mm256_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; j++) {
    r[j] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x20);
    r[j + 4] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x31);
  }
}

// gather_patches<6> for 16 whole tiles (at[l] >= 0): each row read as eight
// floats (two past the patch: padded_floats leaves xp the slack).
__attribute__((target("avx2"))) void gather_patches6_avx2(const float* xp_c, const int64_t* at, int64_t shift,
                                                          int64_t ld, float* __restrict d) {
  for (int r = 0; r < 6; r++)
    for (int h = 0; h < kLanes; h += 8) {
      __m256 row[8];
      for (int j = 0; j < 8; j++) row[j] = _mm256_loadu_ps(xp_c + (at[h + j] - shift) + r * ld);
      transpose8(row);
      for (int s = 0; s < 6; s++) _mm256_storeu_ps(d + (r * 6 + s) * kLanes + h, row[s]);
    }
}

// d[e * 16 + l] = element e of the a x a patch of tile t0 + l in channel plane
// xp_c of images padded from the one `shift` floats into the batch's padded x
// (zeros for the padding tiles past T): a patch's rows are contiguous.
template <int a>
void gather_patches(const Tiles& g, const float* xp_c, int64_t shift, int64_t t0, float* __restrict d) {
  const int64_t ld = g.pad.ld;
  if (a == 6 && t0 + kLanes <= g.T && cpu_dispatch::use_avx2())
    return gather_patches6_avx2(xp_c, g.at.data() + t0, shift, ld, d);
  for (int l = 0; l < kLanes; l++) {
    const int64_t at = g.at[t0 + l];
    if (at < 0) {
      for (int e = 0; e < a * a; e++) d[e * kLanes + l] = 0.f;
      continue;
    }
    const float* __restrict p = xp_c + (at - shift);
    for (int r = 0; r < a; r++)
      for (int s = 0; s < a; s++) d[(r * a + s) * kLanes + l] = p[r * ld + s];
  }
}

// The size of x [N, C, H, W] padded into planes xp [N, C, rows, ld] (a zero
// border of one, and more past the last row and column, to whole tiles), for
// `images` of its images: plus the slack the eight-float rows of
// gather_patches6_avx2 read past the last patch.
int64_t padded_floats(const Tiles& g, int64_t images) { return images * g.C * g.pad.plane() + 8; }

// The whole batch padded, in the calling thread's scratch (shared by the workers).
const float* padded_input(const Tiles& g, const float* x) {
  float* xp = scratch<float>(kScratchCols, padded_floats(g, g.N));
  parallel_for((int64_t)g.N * g.C, 16, [&](int64_t i0, int64_t i1) { pad_rows(g, x, i0, i1, xp); });
  return xp;
}

// The floats from one element's matrix [rows x nb] of a block to the next:
// 16 past the matrix, so that the 36 rows a transform reads or writes at once
// do not all fall on one cache set (with nb a multiple of 64 and rows a power
// of 2 they were 4 KB apart: blocks of 64 or 128 tiles were slower than of 48
// or 112, [64,16,28,28] 1.94 / 2.32 ms against 1.75 / 2.13).
int64_t element_stride(int rows, int nb) { return (int64_t)rows * nb + kLanes; }

// f(i0, i1) over [0, n): split among the threads when `split`, else all on
// this one (the work and its arithmetic are the same either way).
template <class F>
void run_split(bool split, int64_t n, F&& f) {
  if (split) parallel_for(n, 1, f);
  else f(0, n);
}

// V_xi [C x nb] = B^T d B of the patches d of tiles t0 .. t0 + nb (a block),
// 16 tiles at a time per channel, the channels split among the threads when `split`.
void transform_input_block(const Tiles& g, const float* xp, int64_t shift, int64_t t0, int nb, float* V,
                           bool split) {
  const int64_t sv = element_stride(g.C, nb);
  run_split(split, g.C, [&](int64_t c0, int64_t c1) {
    float d[kXi6 * kLanes];
    const float* dp[kXi6];
    float* vp[kXi6];
    for (int e = 0; e < g.xi; e++) dp[e] = d + e * kLanes;
    for (int64_t c = c0; c < c1; c++)
      for (int l0 = 0; l0 < nb; l0 += kLanes) {
        if (g.m == 2) gather_patches<4>(g, xp + c * g.pad.plane(), shift, t0 + l0, d);
        else gather_patches<6>(g, xp + c * g.pad.plane(), shift, t0 + l0, d);
        for (int e = 0; e < g.xi; e++) vp[e] = V + e * sv + c * nb + l0;
        if (g.m == 2) input_transform(dp, vp);
        else input_transform6(dp, vp);
      }
  });
}

// Where tile t's m x m outputs lie in an [N, O, H, W] tensor (the forward's y,
// the backward's dy): from `at` in channel 0 (the same for every channel),
// `rows` x `cols` of them inside the image (none for the padding tiles past T).
// Computed per tile as it is needed (a table of every output's offset, built
// serially each call, cost more than the gathers that read it).
struct Block {
  int64_t at = 0;
  int rows = 0, cols = 0;
};
Block output_block(const Tiles& g, int O, int64_t t) {
  Block b;
  if (t >= g.T) return b;
  const int m = g.m;
  const int64_t per_image = (int64_t)g.th * g.tw, n = t / per_image, r = t % per_image;
  const int h = m * (int)(r / g.tw), w = m * (int)(r % g.tw);
  b.at = (n * O * g.H + h) * g.W + w, b.rows = std::min(m, g.H - h), b.cols = std::min(m, g.W - w);
  return b;
}

// The blocks of tiles t0 .. t0 + 15 (computed once for all the channels), and
// whether all 16 are whole (m x m inside the image).
bool output_blocks(const Tiles& g, int O, int64_t t0, Block* b) {
  bool whole = true;
  for (int l = 0; l < kLanes; l++) {
    b[l] = output_block(g, O, t0 + l);
    whole = whole && b[l].rows == g.m && b[l].cols == g.m;
  }
  return whole;
}

// The m x m output blocks of tiles t0 .. t0 + 15 in a plane: a whole block's
// rows are contiguous (four tiles' rows at a time through an SSE transpose
// when all 16 are whole and m = 4); others go element by element.
// gather: d[ab * 16 + l] = block element ab of tile t0 + l (zeros outside).
template <int m>
void gather_blocks(const Block* b, bool whole, int W, const float* plane, float* __restrict d) {
  if (m == 4 && whole) {
    for (int q = 0; q < kLanes; q += 4)  // tiles q .. q + 3
      for (int r = 0; r < 4; r++) {
        __m128 v[4];
        for (int j = 0; j < 4; j++) v[j] = _mm_loadu_ps(plane + b[q + j].at + (int64_t)r * W);
        _MM_TRANSPOSE4_PS(v[0], v[1], v[2], v[3]);
        for (int c = 0; c < 4; c++) _mm_storeu_ps(d + (r * 4 + c) * kLanes + q, v[c]);
      }
    return;
  }
  for (int l = 0; l < kLanes; l++)
    for (int r = 0; r < m; r++)
      for (int c = 0; c < m; c++)
        d[(r * m + c) * kLanes + l] = r < b[l].rows && c < b[l].cols ? plane[b[l].at + (int64_t)r * W + c] : 0.f;
}
// scatter: plane's block element ab of tile t0 + l = init + out[ab * 16 + l], or += it when accumulate.
template <int m>
void scatter_blocks(const Block* b, bool whole, int W, const float* __restrict out, float init, bool accumulate,
                    float* plane) {
  if (m == 4 && whole) {
    const __m128 i4 = _mm_set1_ps(init);
    for (int q = 0; q < kLanes; q += 4)  // tiles q .. q + 3
      for (int r = 0; r < 4; r++) {
        __m128 v[4];
        for (int c = 0; c < 4; c++) v[c] = _mm_loadu_ps(out + (r * 4 + c) * kLanes + q);
        _MM_TRANSPOSE4_PS(v[0], v[1], v[2], v[3]);  // v[j]: row r of tile q + j
        for (int j = 0; j < 4; j++) {
          float* p = plane + b[q + j].at + (int64_t)r * W;
          _mm_storeu_ps(p, accumulate ? _mm_add_ps(_mm_loadu_ps(p), v[j]) : _mm_add_ps(i4, v[j]));
        }
      }
    return;
  }
  for (int l = 0; l < kLanes; l++)
    for (int r = 0; r < b[l].rows; r++)
      for (int c = 0; c < b[l].cols; c++) {
        float& v = plane[b[l].at + (int64_t)r * W + c];
        v = accumulate ? v + out[(r * m + c) * kLanes + l] : init + out[(r * m + c) * kLanes + l];
      }
}

// The tiles of a block, a multiple of 16: p.tile_block, or by the pass. Its V
// and M, xi (C + O) tb floats, stay in a core's L2 at 64 tiles up to 64
// channels; the weight gradient's products sum over the block's tiles and
// gain more from longer sums than they lose to the cache (measured per call
// on ResNet-18's layers, 16 to 256 channels, blocks of 32 to 256 tiles: the
// forward alike from 32 to 192, the weight gradient 5-10 % faster at 128
// than at 64). Where those give an odd number of blocks (more than one), a
// block of k 16-tile groups instead that splits the Tp tiles into an even
// number of whole blocks, k the nearest such to the target (within a factor
// of 2): two threads then take equal shares. A 28x28 image's batch of 64 has
// 3136 tiles, 49 blocks of 64 (one thread took 25 to the other's 24, and
// finished 30-70 us later every call, instrumented) and 24.5 of 128; 28 of
// 112 serve both passes (per call, 2 threads, [64,16,28,28]: forward 0.83-1.00
// -> 0.81-0.86 ms, weight gradient 0.96-1.17 -> 0.94; 1 thread alike).
int tile_block(const Problem& p, bool weight_grad, int64_t Tp) {
  if (p.tile_block > 0) return p.tile_block;
  const int target = weight_grad ? 128 : 64;
  const int64_t blocks = (Tp + target - 1) / target, groups = Tp / kLanes;
  if (blocks <= 1 || blocks % 2 == 0 || groups % 2 != 0) return target;
  int best = target;
  double best_ratio = 2.0;  // accepted within a factor of 2 of the target
  for (int64_t k = 1; k <= groups / 2; k++) {
    if ((groups / 2) % k != 0) continue;  // groups / k blocks, an even number
    const double ratio = std::max<double>(k * kLanes, target) / std::min<double>(k * kLanes, target);
    if (ratio < best_ratio) best = (int)(k * kLanes), best_ratio = ratio;
  }
  return best;
}

// Units of work (blocks, or the weight gradient's runs of blocks), each with
// the images under its tiles padded. The units go to the threads whole, a
// contiguous range each, when they share out evenly or are many: a thread
// pads the images under a few of its units at a time (as many as keep them
// within 512 KB, padded) into its own scratch, and works through those units
// while the padded images are in its cache (from a padded copy of the whole
// batch, written out to memory and read back, the gathers took 1.6-1.8x the
// perf samples, a ResNet-18 step at 56x56 5 % more); an image under two such
// groups is padded twice. Otherwise (a 4x4 image's batch is one block) the
// whole batch is padded and the units run one after another, each one's steps
// split among the threads (channels, products, output channels). Either way
// the same arithmetic: the choice may follow the thread count.
// f(u, xp, shift, split) for unit u, whose tiles are [first_tile(u),
// first_tile(u + 1)), reading padded images xp whose planes lie `shift`
// floats before where they would in the whole batch's padded x.
template <class FirstTile, class F>
void run_units(const Tiles& g, const float* x, int64_t units, FirstTile first_tile, F&& f) {
  const int64_t threads = num_threads();
  if (threads > 1 && units % threads != 0 && units < 4 * threads) {
    const float* xp = padded_input(g, x);
    for (int64_t u = 0; u < units; u++) f(u, xp, 0, true);
    return;
  }
  const int64_t per_image = (int64_t)g.th * g.tw, image_floats = (int64_t)g.C * g.pad.plane();
  const int64_t budget = std::max<int64_t>(1, (int64_t(512) << 10) / (int64_t)sizeof(float) / image_floats);
  const auto first_image = [&](int64_t u) { return first_tile(u) / per_image; };
  const auto end_image = [&](int64_t u) { return (std::min(first_tile(u), g.T) - 1) / per_image + 1; };
  const int64_t workers = std::min(threads, units);
  parallel_for(workers, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; w++)
      for (int64_t u0 = w * units / workers, end = (w + 1) * units / workers, u1; u0 < end; u0 = u1) {
        const int64_t n0 = first_image(u0);
        for (u1 = u0 + 1; u1 < end && end_image(u1 + 1) - n0 <= budget;) u1++;
        const int64_t n1 = end_image(u1);
        float* xp = scratch<float>(kScratchCols, padded_floats(g, n1 - n0));
        pad_rows(g, x + n0 * g.C * g.H * g.W, 0, (n1 - n0) * g.C, xp);
        for (int64_t u = u0; u < u1; u++) f(u, xp, n0 * image_floats, false);
      }
  });
}

// y = the correlation (plus bias) or y += it, as forward() below: each block of
// tiles transformed, multiplied (xi products M_xi [O x nb] = U_xi V_xi, one
// sgemm each) and transformed back while it is in cache.
void matrices_forward(const Problem& p, const float* bias, float* y, bool accumulate) {
  const int C = p.C, O = p.O;
  const Tiles g = make_tiles(p.m, p.N, C, p.H, p.W);
  const int xi = g.xi, tb = tile_block(p, false, g.Tp);
  // the calling thread's buffers, shared by the workers
  float* Uoc = scratch<float>(kScratchSetup, (int64_t)xi * O * C);
  const WeightsU U = weights_U(p, Uoc);
  const int64_t plane = (int64_t)g.H * g.W, blocks = (g.Tp + tb - 1) / tb;
  const auto first_tile = [&](int64_t b) { return b * tb; };
  run_units(g, p.x, blocks, first_tile, [&](int64_t b, const float* xp, int64_t shift, bool split) {
    float* V = scratch<float>(kScratchColGrad, xi * element_stride(C, tb));
    float* M = scratch<float>(kScratchDx, xi * element_stride(O, tb));
    const int64_t t0 = b * tb;
    const int nb = (int)std::min<int64_t>(tb, g.Tp - t0);
    const int64_t sv = element_stride(C, nb), sm = element_stride(O, nb);
    transform_input_block(g, xp, shift, t0, nb, V, split);
    run_split(split, xi, [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; e++)
        gemm_serial(U.transposed, false, O, nb, C, U.xi(p, (int)e), V + e * sv, 0.f, M + e * sm);
    });
    run_split(split, O, [&](int64_t o0, int64_t o1) {
      const float* m[kXi6];
      float out[16 * kLanes];
      Block blk[kLanes];
      for (int l0 = 0; l0 < nb; l0 += kLanes) {
        const bool whole = output_blocks(g, O, t0 + l0, blk);
        for (int64_t o = o0; o < o1; o++) {
          const float init = bias ? bias[o] : 0.f;
          for (int e = 0; e < xi; e++) m[e] = M + e * sm + o * nb + l0;
          if (g.m == 2) {
            output_transform(m, out);
            scatter_blocks<2>(blk, whole, g.W, out, init, accumulate, y + o * plane);
          } else {
            output_transform6(m, out);
            scatter_blocks<4>(blk, whole, g.W, out, init, accumulate, y + o * plane);
          }
        }
      }
    });
  });
}

// dw += the weight gradient, as grad_weight() below. The blocks of tiles fall
// into at most 16 runs fixed by the shape (fewer where their partial dU would
// pass 16 MB); a run's blocks add into its own dU_xi += dM_xi V_xi^T
// (dM = A dY A^T), and the runs' sums are added in run order: the same bits at
// any thread count.
void matrices_grad_weight(const Problem& p, const float* dy, float* dw) {
  const int C = p.C, O = p.O;
  const Tiles g = make_tiles(p.m, p.N, C, p.H, p.W);
  const int xi = g.xi, mm = p.m * p.m, tb = tile_block(p, true, g.Tp);
  const int64_t plane = (int64_t)g.H * g.W, blocks = (g.Tp + tb - 1) / tb, UOC = (int64_t)xi * O * C;
  const int64_t runs = std::min<int64_t>({blocks, 16, std::max<int64_t>(2, (int64_t(1) << 22) / UOC)});
  const auto first_block = [&](int64_t r) { return r * blocks / runs; };  // run r: as even as the blocks allow
  float* dU = scratch<float>(kScratchPartials, runs * UOC);
  const auto first_tile = [&](int64_t r) { return first_block(r) * tb; };
  run_units(g, p.x, runs, first_tile, [&](int64_t r, const float* xp, int64_t shift, bool split) {
    float* V = scratch<float>(kScratchColGrad, xi * element_stride(C, tb));
    float* dM = scratch<float>(kScratchDx, xi * element_stride(O, tb));
    const int64_t first = first_block(r), last = first_block(r + 1);
    for (int64_t b = first; b < last; b++) {
      const int64_t t0 = b * tb;
      const int nb = (int)std::min<int64_t>(tb, g.Tp - t0);
      const int64_t sv = element_stride(C, nb), sm = element_stride(O, nb);
      transform_input_block(g, xp, shift, t0, nb, V, split);
      run_split(split, O, [&](int64_t o0, int64_t o1) {  // dM_xi = A dY A^T of every tile's m x m block of dy
        float d[16 * kLanes];
        const float* dp[16];
        float* m[kXi6];
        for (int ab = 0; ab < mm; ab++) dp[ab] = d + ab * kLanes;
        Block blk[kLanes];
        for (int l0 = 0; l0 < nb; l0 += kLanes) {
          const bool whole = output_blocks(g, O, t0 + l0, blk);
          for (int64_t o = o0; o < o1; o++) {
            if (g.m == 2) gather_blocks<2>(blk, whole, g.W, dy + o * plane, d);
            else gather_blocks<4>(blk, whole, g.W, dy + o * plane, d);
            for (int e = 0; e < xi; e++) m[e] = dM + e * sm + o * nb + l0;
            if (g.m == 2) grad_output_transform(dp, m);
            else grad_output_transform6(dp, m);
          }
        }
      });
      run_split(split, xi, [&](int64_t e0, int64_t e1) {  // dU_xi (+)= dM_xi V_xi^T
        for (int64_t e = e0; e < e1; e++)
          gemm_serial(false, true, O, C, nb, dM + e * sm, V + e * sv, b == first ? 0.f : 1.f,
                      dU + r * UOC + e * O * C);
      });
    }
  });
  parallel_for(UOC, 4096, [&](int64_t i0, int64_t i1) {  // the runs' sums, in run order, into run 0's
    for (int64_t r = 1; r < runs; r++)
      for (int64_t i = i0; i < i1; i++) dU[i] += dU[r * UOC + i];
  });
  parallel_for(O, 1, [&](int64_t o0, int64_t o1) {  // dg = G^T dU G
    for (int64_t o = o0; o < o1; o++)
      for (int c0 = 0; c0 < C; c0 += kLanes) {
        float dg[9][kLanes];
        const int nc = std::min(kLanes, C - c0);
        untransform_weight_grad(p.m, dU, O, C, (int)o, c0, nc, dg);
        for (int l = 0; l < nc; l++)
          for (int k = 0; k < 9; k++) dw[(o * C + c0 + l) * 9 + k] += (float)dg[k][l];
      }
  });
}

}  // namespace

bool applies(int kh, int kw, int stride, int pad) { return kh == 3 && kw == 3 && stride == 1 && pad == 1; }

// F(4x4, 3x3) is built as matrices only, and its flipped kernel's U is not a
// permutation of the forward's (G has no such symmetry): no U from outside.
void check_tile(const Problem& p) {
  if (p.m != 2 && p.m != 4) throw Error("conv_winograd: output tile side m = " + std::to_string(p.m) + ", not 2 or 4");
  if (p.m == 4 && (!p.matrices || p.U))
    throw Error("conv_winograd: F(4x4, 3x3) takes the matrices layout and transforms its own weights (U null)");
  if (p.tile_block < 0 || p.tile_block % kLanes)
    throw Error("conv_winograd: tile_block = " + std::to_string(p.tile_block) + ", not 0 or a positive multiple of " +
                std::to_string(kLanes));
}

void transform_weights(const Problem& p, float* U) {
  Problem q = p;
  q.flip = false, q.m = 2;
  transform_all(q, U);
}

int block_tiles(const Problem& p, bool weight_grad) {
  return tile_block(p, weight_grad, make_tiles(p.m, p.N, p.C, p.H, p.W).Tp);
}

void forward(const Problem& p, const float* bias, float* y, bool accumulate) {
  check_tile(p);
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
  check_tile(p);
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
          float dg[9][kLanes];
          const int nc = std::min(kLanes, C - c0);
          untransform_weight_grad(2, dU, O, C, o, c0, nc, dg);
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
