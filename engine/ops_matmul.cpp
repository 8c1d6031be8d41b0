// matmul and linear on sgemm (engine/gemm.h). Backward accumulates straight
// into the gradient buffers (beta = 1). linear's forward on a few rows (batch-1
// inference) takes dot products instead (engine/linear_rows.h): chosen by the
// row count alone, so the same shapes always give the same numbers.
#include "engine/autograd.h"
#include "engine/gemm.h"
#include "engine/linear_rows.h"
#include "engine/ops.h"

namespace mt {

Tensor matmul(const Tensor& a, const Tensor& b) {
  MT_CHECK(a.defined() && b.defined(), "matmul", "undefined operand");
  MT_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0), "matmul",
        "cannot multiply " + shape_str(a.shape()) + " by " + shape_str(b.shape()));
  const int M = a.size(0), K = a.size(1), N = b.size(1);
  Tensor out = Tensor::empty({M, N});
  if (M * N > 0) {
    if (K == 0) std::fill(out.data(), out.data() + out.numel(), 0.f);
    else gemm(false, false, M, N, K, a.data(), b.data(), 0.f, out.data());
  }
  if (any_requires_grad({&a, &b})) {
    auto ga = grad_target(a), gb = grad_target(b);
    record(out, "matmul", [a, b, ga, gb, M, N, K](const Tensor& g) {
      if (M == 0 || N == 0 || K == 0) return;
      if (ga) gemm(false, true, M, K, N, g.data(), b.data(), 1.f, acc_grad(ga));  // dA = G B^T
      if (gb) gemm(true, false, K, N, M, a.data(), g.data(), 1.f, acc_grad(gb));  // dB = A^T G
    });
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& W, const Tensor& b) {
  MT_CHECK(x.defined() && W.defined(), "linear", "undefined operand");
  MT_CHECK(W.dim() == 2, "linear", "weight must be [out, in], got " + shape_str(W.shape()));
  MT_CHECK(x.dim() == 2 && x.size(1) == W.size(1), "linear",
        "input " + shape_str(x.shape()) + " does not match weight " + shape_str(W.shape()) + " (expects [N, " +
            std::to_string(W.size(1)) + "])");
  const int N = x.size(0), In = W.size(1), Out = W.size(0);
  MT_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == Out), "linear",
        "bias " + (b.defined() ? shape_str(b.shape()) : std::string()) + " does not match " + std::to_string(Out) +
            " outputs");
  Tensor y = Tensor::empty({N, Out});
  float* Y = y.data();
  if (N <= linear_rows::kMaxRows) {
    linear_rows::forward(N, In, Out, x.data(), W.data(), b.defined() ? b.data() : nullptr, Y);
  } else {
    if (b.defined()) {
      for (int i = 0; i < N; i++) std::copy(b.data(), b.data() + Out, Y + (int64_t)i * Out);
    }
    if (Out > 0) gemm(false, true, N, Out, In, x.data(), W.data(), b.defined() ? 1.f : 0.f, Y);  // Y = x W^T (+ b)
  }
  if (any_requires_grad({&x, &W, &b})) {
    auto gx = grad_target(x), gw = grad_target(W), gb = grad_target(b);
    record(y, "linear", [x, W, gx, gw, gb, N, In, Out](const Tensor& g) {
      if (N == 0) return;
      const float* G = g.data();
      if (gx) gemm(false, false, N, In, Out, G, W.data(), 1.f, acc_grad(gx));  // dx = G W
      if (gw) gemm(true, false, Out, In, N, G, x.data(), 1.f, acc_grad(gw));   // dW = G^T x
      if (gb) {                                                                // db = sum_i G_i
        float* dB = acc_grad(gb);
        for (int o = 0; o < Out; o++) {
          double acc = 0;
          for (int i = 0; i < N; i++) acc += G[(int64_t)i * Out + o];
          dB[o] += (float)acc;
        }
      }
    });
  }
  return y;
}

Tensor transpose2d(const Tensor& a) {
  MT_CHECK(a.defined() && a.dim() == 2, "transpose2d", "needs a 2-D tensor, got " +
                                                        (a.defined() ? shape_str(a.shape()) : std::string("undefined")));
  const int M = a.size(0), N = a.size(1);
  Tensor out = Tensor::empty({N, M});
  const float* A = a.data();
  float* O = out.data();
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) O[(int64_t)j * M + i] = A[(int64_t)i * N + j];
  if (any_requires_grad({&a})) {
    auto ga = grad_target(a);
    record(out, "transpose2d", [ga, M, N](const Tensor& g) {
      const float* G = g.data();
      float* dA = acc_grad(ga);
      for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) dA[(int64_t)i * N + j] += G[(int64_t)j * M + i];
    });
  }
  return out;
}

}  // namespace mt
