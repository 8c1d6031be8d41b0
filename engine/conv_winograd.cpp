#include "engine/conv_winograd.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/conv_canvas.h"
#include "engine/conv_flat.h"
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

// G (4 x 3), in double for the weight transforms (done once per call).
constexpr double kG[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

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

}  // namespace

bool applies(int kh, int kw, int stride, int pad) { return kh == 3 && kw == 3 && stride == 1 && pad == 1; }

void forward(const Problem& p, const float* bias, float* y, bool accumulate) {
  const int C = p.C, O = p.O, H = p.H, W = p.W;
  const conv_canvas::Plan P = tile_plan(p.N, C, H, W, O);
  const int64_t Qr = conv_flat::round_up(P.Q, kLanes), bands = (p.N + P.G - 1) / P.G;
  const int th = P.g.Ho;

  // U_xi = G g G^T for every (o, c), packed for the correlation (shared by the workers).
  const int64_t packed = conv_flat::packed_size(O, C);
  float* U = scratch<float>(kScratchSetup, kXi * packed + (int64_t)kXi * O * C);
  float* Uoc = U + kXi * packed;  // [xi][o][c]
  for (int o = 0; o < O; o++)
    for (int c = 0; c < C; c++) {
      // g[ki][kj] = W[o, c, ki, kj], or with flip W[c, o, 2 - ki, 2 - kj]
      double g[3][3];
      for (int ki = 0; ki < 3; ki++)
        for (int kj = 0; kj < 3; kj++)
          g[ki][kj] = p.flip ? p.w[(((int64_t)c * O + o) * 3 + 2 - ki) * 3 + 2 - kj]
                             : p.w[(((int64_t)o * C + c) * 3 + ki) * 3 + kj];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
          double u = 0;
          for (int ki = 0; ki < 3; ki++)
            for (int kj = 0; kj < 3; kj++) u += kG[i][ki] * g[ki][kj] * kG[j][kj];
          Uoc[((int64_t)(i * 4 + j) * O + o) * C + c] = (float)u;
        }
    }
  for (int e = 0; e < kXi; e++)
    conv_flat::pack_weights(O, C, [&](int o, int c) { return Uoc[((int64_t)e * O + o) * C + c]; }, U + e * packed);
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
        for (int c = 0; c < C; c++)
          for (int ki = 0; ki < 3; ki++)
            for (int kj = 0; kj < 3; kj++) {
              double v = 0;
              for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                  v += kG[i][ki] * (double)dU[((int64_t)(i * 4 + j) * O + o) * C + c] * kG[j][kj];
              out[(((int64_t)o * C + c) * 3 + ki) * 3 + kj] = (float)v;
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
