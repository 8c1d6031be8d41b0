// BatchNorm2d: per-channel normalisation over (N, H, W) with a learned scale
// (weight, "gamma") and shift (bias, "beta"). Training uses the batch's
// statistics and updates the running ones in place
// (running = (1 - momentum) * running + momentum * batch, unbiased variance);
// eval uses the running statistics. As in PyTorch.
#pragma once
#include "layers/module.h"

namespace mt {

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int num_features, float momentum = 0.1f, float eps = 1e-5f);
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> same
  // relu(forward(x) + residual) in one op (batch_norm2d_act): residual may be
  // undefined, relu false leaves the sum as it is.
  Tensor forward_act(const Tensor& x, const Tensor& residual, bool relu);
  std::string describe() const override;
  // weight = 1, bias = 0, running_mean = 0, running_var = 1.
  void reset_parameters();

  const int num_features;
  const float momentum, eps;
  Tensor weight, bias;               // parameters [C]
  Tensor running_mean, running_var;  // buffers [C]
};

}  // namespace mt
