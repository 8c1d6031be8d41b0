// Direct stride-1 convolution kernels for one sample, vectorised over eight
// neighbouring output columns (engine/conv_direct.cpp). engine/ops_conv.cpp
// uses them for stride-1 convolutions in place of im2col + sgemm: with the
// small channel counts of MultiLeNet/MDMTN (1->10, 10->20 channels, 5x5) the
// products are too skinny for sgemm and the column matrix costs as much to
// build as to multiply.
//
// An output row of Wo columns is cut into nv = ceil(Wo / 8) "units" of eight
// lanes; lanes past Wo are computed on whatever the input holds there and
// thrown away (forward), or masked to zero (grad_weight). So the input is read
// at columns up to 8*nv + kw - 2, and the caller hands in a buffer that wide
// (ops_conv.cpp copies the sample into a padded buffer when x itself is not).
//
// Every lane adds its products in a fixed order with separate multiplies and
// adds (no FMA: -std=c++17 turns contraction off), so the AVX2 build and the
// portable build give the same bits; the AVX2 one is chosen at run time.
#pragma once
#include <cstdint>

namespace mt::conv_direct {

// One stride-1 cross-correlation of a sample:
//   out[o, i, j] = init + sum_{c, ki, kj} w[o, c, ki, kj] * in[c, i + ki, j + kj]
// for o < O, i < Ho, j < Wo, with init = out[o, i, j] when accumulating (out +=),
// else bias[o] (0 without a bias). The taps (c, ki, kj) are summed in that order.
struct Correlation {
  int C = 0, O = 0, kh = 0, kw = 0;
  const float* in = nullptr;  // in[c, r, col] = in[c * in_plane + r * in_ld + col]
  int64_t in_plane = 0;
  int in_ld = 0;
  const int32_t* taps = nullptr;  // [C*kh*kw] offsets of tap (c, ki, kj): tap_offsets()
  // Optional [Ho][2]: output row i needs only taps [row_taps[2i], row_taps[2i+1]),
  // the others reading zeros there (padding rows); null means all taps everywhere.
  const int32_t* row_taps = nullptr;
  float* out = nullptr;           // out[o, i, j] = out[o * out_plane + i * out_ld + j]
  int64_t out_plane = 0;
  int out_ld = 0;
  int Ho = 0, Wo = 0;
  int units() const { return Ho * ((Wo + 7) / 8); }
};

// taps[(c * kh + ki) * kw + kj] = c * in_plane + ki * in_ld + kj
void tap_offsets(int C, int kh, int kw, int64_t in_plane, int in_ld, int32_t* taps);

// The columns of `in` a Correlation reads: 8 * ceil(Wo / 8) + kw - 1.
inline int columns_read(int Wo, int kw) { return (Wo + 7) / 8 * 8 + kw - 1; }

// out (+)= the correlation of `in` with w [O, C, kh, kw] (bias [O] or null).
void forward(const Correlation& k, const float* w, const float* bias, bool accumulate);

// The weight gradient of that correlation over a run of samples:
//   dw[o * K + t] = sum over samples n < samples, rows i < Ho, columns j < Wo of
//                   dy_n[o, i, j] * in_n[tap t at (i, j)]
// with K = C*kh*kw, in_n = k.in + n * in_stride, dy_n[o, i, j] =
// dy[n * dy_stride + o * dy_plane + i * dy_ld + j]. Unless Wo is a multiple of
// 8, dy must hold zeros in the lanes past Wo (dy_ld >= 8 * ceil(Wo / 8)).
// Each dw is written (not added to): eight lane sums in float, then the lanes in double.
struct GradWeightArgs {
  int samples = 1;
  int64_t in_stride = 0;
  const float* dy = nullptr;
  int64_t dy_stride = 0, dy_plane = 0;
  int dy_ld = 0;
};
void grad_weight(const Correlation& k, const GradWeightArgs& a, float* dw);

// The AVX2 or the portable build is chosen by engine/cpu_dispatch.h.

}  // namespace mt::conv_direct
