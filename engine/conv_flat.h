// Convolution kernels on flattened canvases: the ResNet path of conv2d
// (engine/ops_conv.cpp; the canvases are laid out by engine/conv_canvas.h,
// and engine/conv_winograd.h runs its products on these kernels too).
//
// A canvas holds planes of `rows x ld` floats; a correlation's output
// positions q are taken along the flattened plane, so a run of 16 consecutive
// q is one vector whatever the image's width, and a tap (channel, ki, kj) is
// one offset taps[t] into the canvas: the input under output q for tap t is
// in[taps[t] + q]. Positions that are not outputs (the gaps between images,
// the ends of rows) are computed too and thrown away. This is the implicit
// GEMM of a convolution: out [O x Q] = W [O x T] * col [T x Q], with col
// never written out (col[t][q] = in[taps[t] + q]).
//
// Two kernels, each beside its naive twin (the test oracle):
//   correlate    out[o * out_plane + q] = sum_t wt[t][o] * in[taps[t] + q]
//                forward, and the input gradient (a correlation of dy)
//   grad_weight  dw[o * T + t] = sum_band sum_q dy[o][q] * in[taps[t] + q]
//                weight gradient
//
// Arithmetic. Each output of correlate is one lane: a fused multiply-add
// per tap, in tap order, from 0. grad_weight sums in 16 lanes (lane l takes
// the q = l mod 16), a fused multiply-add per position in band and q order,
// then adds the 16 lanes in a fixed tree (lane l + 8, then + 4, + 2, + 1).
// The AVX-512 build (one 16-lane register) and the AVX2 build (two 8-lane
// halves) do exactly this and give the same bits; the portable build (SSE2,
// no FMA instruction on baseline x86-64) rounds the product before the add,
// so its last bits differ (README, "Kernels and bits"). None depends on the
// thread count: callers split work at shape-fixed boundaries.
#pragma once
#include <cstdint>

namespace mt::conv_flat {

constexpr int kLanes = 16;  // positions per vector in every build
constexpr int kOB = 8;      // output channels per block of packed weights

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Packed weights for correlate: blocks of kOB output channels, each [T][kOB]
// (channels past O are zero). w(o, t) gives W's value for output o, tap t.
int64_t packed_size(int O, int T);  // floats
template <class F>
void pack_weights(int O, int T, F w, float* packed) {
  for (int o0 = 0; o0 < O; o0 += kOB)
    for (int t = 0; t < T; t++)
      for (int b = 0; b < kOB; b++) packed[(int64_t)o0 * T + (int64_t)t * kOB + b] = o0 + b < O ? w(o0 + b, t) : 0.f;
}

// out[o * out_plane + q] = sum_{t < T} w(o, t) * in[taps[t] + q] for o < O and
// q < round_up(Q, 16): out must hold that many positions per channel and
// in[taps[t] + q] must be readable (finite or not: only outputs q < Q count).
struct Correlate {
  int O = 0, T = 0;
  const float* in = nullptr;
  const int32_t* taps = nullptr;
  const float* w = nullptr;  // pack_weights
  float* out = nullptr;
  int64_t out_plane = 0;
  int64_t Q = 0;
};
void correlate(const Correlate& k);
void correlate_naive(const Correlate& k);  // sums in double (the oracle)

// dw[o * T + t] = sum_{b < bands} sum_{q < round_up(Q, 16)} dy_b[o * dy_plane + q] * in_b[taps[t] + q]
// with in_b = in + b * in_band and dy_b = dy + b * dy_band (written, not added to).
// dy must be 0 at every position that is not an output (and finite input there).
struct GradWeight {
  int O = 0, T = 0, bands = 1;
  const float* in = nullptr;
  int64_t in_band = 0;
  const int32_t* taps = nullptr;
  const float* dy = nullptr;
  int64_t dy_plane = 0, dy_band = 0;
  int64_t Q = 0;
  float* dw = nullptr;
};
void grad_weight(const GradWeight& k);
void grad_weight_naive(const GradWeight& k);  // sums in double (the oracle)

// The build that runs (engine/cpu_dispatch.h): "avx512", "avx2" or "portable".
const char* build_name();

}  // namespace mt::conv_flat
