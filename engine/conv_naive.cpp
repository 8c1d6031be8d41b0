// conv2d_naive: the teaching text of convolution and the oracle the fast
// kernel (engine/ops_conv.cpp) is tested against. No autograd, no tricks:
//
//   y[n,o,i,j] = b[o] + sum_{c,ki,kj} x[n, c, i*s - p + ki, j*s - p + kj] * W[o,c,ki,kj]
//
// where x reads as 0 outside the image (zero padding), s is the stride, p the
// padding, and the output is Ho x Wo with Ho = (H + 2p - kh) / s + 1 (floor).
// (Like every deep-learning library, this is a cross-correlation: the kernel is
// not flipped.)
#include <vector>

#include "engine/ops.h"

namespace mt {

Tensor conv2d_naive(const Tensor& x, const Tensor& W, const Tensor& b, Conv2dArgs a) {
  MT_CHECK(x.defined() && W.defined(), "conv2d_naive", "undefined input or weight");
  MT_CHECK(x.dim() == 4 && W.dim() == 4, "conv2d_naive",
        "input " + shape_str(x.shape()) + " and weight " + shape_str(W.shape()) + " must both be 4-D");
  const int N = x.size(0), C = x.size(1), H = x.size(2), Wd = x.size(3);
  const int O = W.size(0), kh = W.size(2), kw = W.size(3);
  const int s = a.stride, p = a.pad;
  MT_CHECK(W.size(1) == C, "conv2d_naive", "channel mismatch: input " + shape_str(x.shape()) + ", weight " +
                                            shape_str(W.shape()));
  MT_CHECK(s >= 1 && p >= 0, "conv2d_naive", "stride must be >= 1 and pad >= 0");
  MT_CHECK(H + 2 * p >= kh && Wd + 2 * p >= kw, "conv2d_naive", "kernel larger than the padded input");
  MT_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == O), "conv2d_naive", "bias must have shape [O]");
  const int Ho = (H + 2 * p - kh) / s + 1, Wo = (Wd + 2 * p - kw) / s + 1;

  Tensor y = Tensor::zeros({N, O, Ho, Wo});
  const float* X = x.data();
  const float* K = W.data();
  float* Y = y.data();
  for (int n = 0; n < N; n++)
    for (int o = 0; o < O; o++)
      for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++) {
          double acc = b.defined() ? b.data()[o] : 0.0;
          for (int c = 0; c < C; c++)
            for (int ki = 0; ki < kh; ki++)
              for (int kj = 0; kj < kw; kj++) {
                const int hi = i * s - p + ki, wj = j * s - p + kj;
                if (hi < 0 || hi >= H || wj < 0 || wj >= Wd) continue;  // zero padding
                acc += (double)X[((n * C + c) * H + hi) * Wd + wj] * K[((o * C + c) * kh + ki) * kw + kj];
              }
          Y[((n * O + o) * Ho + i) * Wo + j] = (float)acc;
        }
  return y;
}

// The backward of the same sum, term by term: each product x * W that made
// y[n,o,i,j] sends gy[n,o,i,j] * W to dx and gy[n,o,i,j] * x to dW. Sums in double.
Conv2dGrads conv2d_backward_naive(const Tensor& x, const Tensor& W, const Tensor& gy, Conv2dArgs a) {
  MT_CHECK(x.defined() && W.defined() && gy.defined(), "conv2d_backward_naive", "undefined input, weight or gradient");
  MT_CHECK(x.dim() == 4 && W.dim() == 4 && gy.dim() == 4 && W.size(1) == x.size(1), "conv2d_backward_naive",
        "shapes " + shape_str(x.shape()) + ", " + shape_str(W.shape()) + ", " + shape_str(gy.shape()));
  const int N = x.size(0), C = x.size(1), H = x.size(2), Wd = x.size(3);
  const int O = W.size(0), kh = W.size(2), kw = W.size(3);
  const int s = a.stride, p = a.pad;
  const int Ho = (H + 2 * p - kh) / s + 1, Wo = (Wd + 2 * p - kw) / s + 1;
  MT_CHECK(gy.shape() == Shape({N, O, Ho, Wo}), "conv2d_backward_naive",
        "gradient " + shape_str(gy.shape()) + " does not match the output's shape");
  std::vector<double> dx((size_t)N * C * H * Wd, 0.0), dW((size_t)O * C * kh * kw, 0.0), db(O, 0.0);
  const float* X = x.data();
  const float* K = W.data();
  const float* G = gy.data();
  for (int n = 0; n < N; n++)
    for (int o = 0; o < O; o++)
      for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++) {
          const double g = G[((n * O + o) * Ho + i) * Wo + j];
          db[o] += g;
          for (int c = 0; c < C; c++)
            for (int ki = 0; ki < kh; ki++)
              for (int kj = 0; kj < kw; kj++) {
                const int hi = i * s - p + ki, wj = j * s - p + kj;
                if (hi < 0 || hi >= H || wj < 0 || wj >= Wd) continue;  // zero padding
                const size_t xi = ((size_t)(n * C + c) * H + hi) * Wd + wj, wi = ((size_t)(o * C + c) * kh + ki) * kw + kj;
                dx[xi] += g * K[wi];
                dW[wi] += g * X[xi];
              }
        }
  auto to_tensor = [](const Shape& shape, const std::vector<double>& v) {
    Tensor t = Tensor::empty(shape);
    for (size_t i = 0; i < v.size(); i++) t.data()[i] = (float)v[i];
    return t;
  };
  return {to_tensor(x.shape(), dx), to_tensor(W.shape(), dW), to_tensor({O}, db)};
}

}  // namespace mt
