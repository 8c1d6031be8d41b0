// Every differentiable op. Each is defined, forward and backward side by
// side, in the file named in its section. Shape errors throw mt::Error naming
// the op and the shapes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace mt {

// ---- elementwise (engine/ops_elementwise.cpp) ------------------------------
// Binary ops broadcast numpy-style (trailing dims aligned, size-1 dims stretch).
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& a);
Tensor add_scalar(const Tensor& a, float s);
Tensor mul_scalar(const Tensor& a, float s);
Tensor pow_scalar(const Tensor& a, float p);   // a^p (a > 0 for non-integer p)
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor square(const Tensor& a);
Tensor abs(const Tensor& a);
Tensor relu(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor tanh(const Tensor& a);
Tensor clamp_min(const Tensor& a, float lo);   // max(a, lo), gradient 0 below lo

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, float s) { return add_scalar(a, s); }
inline Tensor operator-(const Tensor& a, float s) { return add_scalar(a, -s); }
inline Tensor operator*(const Tensor& a, float s) { return mul_scalar(a, s); }
inline Tensor operator*(float s, const Tensor& a) { return mul_scalar(a, s); }

// ---- reductions (engine/ops_reduce.cpp) -------------------------------------
// Sums run in double over fixed chunks, so results do not depend on threads.
Tensor sum(const Tensor& a);                                  // rank 0
Tensor mean(const Tensor& a);                                 // rank 0
Tensor sum(const Tensor& a, int axis, bool keepdim = false);
Tensor mean(const Tensor& a, int axis, bool keepdim = false);
Tensor max(const Tensor& a, int axis, bool keepdim = false);  // gradient to the first maximum
Tensor dot(const Tensor& a, const Tensor& b);                 // 1-D . 1-D -> rank 0

// ---- linear algebra (engine/ops_matmul.cpp) ---------------------------------
Tensor matmul(const Tensor& a, const Tensor& b);              // [M,K] x [K,N] -> [M,N], sgemm
// y = x W^T + b with W [out, in] (PyTorch's layout); b may be undefined.
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& b);
Tensor transpose2d(const Tensor& a);                          // [M,N] -> [N,M] (a copy)

// ---- shape (engine/ops_shape.cpp) -------------------------------------------
Tensor concat(const std::vector<Tensor>& ts, int axis);
Tensor stack(const std::vector<Tensor>& ts, int axis);
Tensor narrow(const Tensor& x, int axis, int start, int length);  // the slice [start, start+length) (a copy)
// (reshape and flatten are views: Tensor::reshape, Tensor::flatten)

// ---- losses (engine/ops_loss.cpp) --------------------------------------------
Tensor log_softmax(const Tensor& x);                          // over axis 1 of [N, C]
// Mean over the batch of -logp[i, y_i]; labels outside [0, C) are an error.
Tensor nll_loss(const Tensor& logp, const std::vector<int32_t>& y);
Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& y);  // fused log_softmax + nll
Tensor mse_loss(const Tensor& pred, const Tensor& target);    // mean of squares
// Binary cross-entropy on logits, mean over all elements; targets in [0, 1].
Tensor bce_with_logits(const Tensor& logits, const Tensor& target);

// ---- convolution (engine/ops_conv.cpp; naive oracle in engine/conv_naive.cpp)
struct Conv2dArgs { int stride = 1, pad = 0; };
// x [N,C,H,W], W [O,C,kh,kw], b [O] or undefined -> [N,O,Ho,Wo]
Tensor conv2d(const Tensor& x, const Tensor& W, const Tensor& b, Conv2dArgs a = {});
// The six nested loops: the definition, the teaching text and the test oracle (no autograd).
Tensor conv2d_naive(const Tensor& x, const Tensor& W, const Tensor& b, Conv2dArgs a = {});
// Its gradients by the same loops, for an upstream gy [N,O,Ho,Wo] (the backward's oracle):
// dx [N,C,H,W], dW [O,C,kh,kw], db [O].
struct Conv2dGrads { Tensor dx, dW, db; };
Conv2dGrads conv2d_backward_naive(const Tensor& x, const Tensor& W, const Tensor& gy, Conv2dArgs a = {});
// conv2d picks its kernels by shape (engine/ops_conv.cpp): Columns (im2col +
// sgemm), Direct (engine/conv_direct.h, stride 1), Flat (engine/conv_flat.h)
// or Winograd (engine/conv_winograd.h, 3x3 stride 1 padding 1: F(4x4, 3x3)
// with its tiles as matrices, a block of tiles at a time, from 16 input and
// output channels; F(2x2, 3x3) only when forced).
// Tests: force one path for every shape it takes (Direct and Winograd fall
// back to the columns where they do not apply; Winograd takes canvases,
// WinogradMatrices matrices, Winograd4x4 matrices with F(4x4, 3x3)); Auto
// restores the choice by shape.
enum class ConvPath { Auto, Columns, Direct, Flat, Winograd, WinogradMatrices, Winograd4x4 };
void conv2d_force_path(ConvPath p);
// The kernels conv2d takes for these shapes, e.g. "flat" or "flat (dx columns x16, dW columns x16)"
// (benchmarks, reports).
std::string conv2d_path_name(const Shape& x, const Shape& w, Conv2dArgs a = {});

// ---- pooling (engine/ops_pool.cpp) -------------------------------------------
struct Pool2dArgs { int kernel = 2, stride = 0 /* 0 = kernel */, pad = 0; };
Tensor max_pool2d(const Tensor& x, Pool2dArgs a = {});
// relu(max_pool2d(x, a)) in one pass with one output, the same bits forward
// and backward (the gradient goes to the first maximum of a window whose
// pooled value is > 0). The oracle is the composition.
Tensor max_pool2d_relu(const Tensor& x, Pool2dArgs a = {});
Tensor avg_pool2d(const Tensor& x, Pool2dArgs a = {});        // padding counts in the divisor (PyTorch's default)
Tensor max_pool2d_naive(const Tensor& x, Pool2dArgs a = {});
Tensor avg_pool2d_naive(const Tensor& x, Pool2dArgs a = {});
Tensor global_avg_pool2d(const Tensor& x);                    // [N,C,H,W] -> [N,C]

// ---- regularisation and normalisation (engine/ops_dropout.cpp, engine/ops_batchnorm.cpp)
// Inverted dropout: zero with probability p, scale the rest by 1/(1-p). The
// masks come from global_rng(), drawn serially. Identity when !training or p == 0.
Tensor dropout(const Tensor& x, float p, bool training);
Tensor dropout2d(const Tensor& x, float p, bool training);    // one draw per (sample, channel)
// Batch norm over (N,H,W) per channel. Training: batch statistics, and the
// running statistics updated in place (momentum, unbiased variance, as PyTorch);
// eval: the running statistics. gamma/beta may be undefined (no affine).
Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                    Tensor& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);
// act(batch_norm2d(x) + residual) in one op: residual undefined (none) or of
// x's shape, act relu or the identity. The very bits of the composition
// relu(add(batch_norm2d(...), residual)), forward and backward, in one pass
// and one tensor (a ResNet block's bn1 + relu and bn2 + shortcut + relu).
Tensor batch_norm2d_act(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                        Tensor& running_var, bool training, float momentum, float eps, const Tensor& residual,
                        bool relu);
// The bytes of one tensor a block of channels may span in batch_norm2d's two
// passes (0: the default, 32 MB). For tests, which walk small tensors in many
// blocks with it; the results do not depend on it.
void batch_norm2d_block_bytes(int64_t bytes);

}  // namespace mt
