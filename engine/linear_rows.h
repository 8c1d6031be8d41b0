// y = x W^T + b for a few rows of x, without sgemm (engine/linear_rows.cpp).
// At batch 1 (inference latency) sgemm spends most of its time packing W, a
// cost made for big products; for the MultiLeNet/MDMTN layers (320->50,
// 50->50, 50->10) one dot product per output is several times faster.
//
// Every output is, in this order (no FMA: -std=c++17 turns contraction off):
//   lane l (l < 8) sums x[k] * W[o, k] for k = l, l + 8, ... < 8 * floor(In / 8),
//   s = ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)),
//   s += x[k] * W[o, k] for the tail k = 8 * floor(In / 8) .. In - 1,
//   y = b[o] + s   (s alone without a bias).
// linear_rows_reference is that order in scalar loops (the tests' oracle); the
// AVX2 build (chosen at run time) and the portable build give the same bits.
#pragma once

namespace mt::linear_rows {

// The row count up to which linear() takes this path (a function of shapes only).
constexpr int kMaxRows = 4;

// y[n, o] for n < N, o < Out; x [N, In], W [Out, In], b [Out] or null, y [N, Out].
void forward(int N, int In, int Out, const float* x, const float* W, const float* b, float* y);
void forward_reference(int N, int In, int Out, const float* x, const float* W, const float* b, float* y);

// The AVX2 or the portable build is chosen by engine/cpu_dispatch.h.

}  // namespace mt::linear_rows
