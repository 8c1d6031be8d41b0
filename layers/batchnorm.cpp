#include "layers/batchnorm.h"

#include <string>

#include "engine/ops.h"
#include "layers/init.h"

namespace mt {

BatchNorm2d::BatchNorm2d(int C, float m, float e) : num_features(C), momentum(m), eps(e) {
  MT_CHECK(C > 0, "BatchNorm2d", "num_features must be > 0, got " + std::to_string(C));
  MT_CHECK(m >= 0 && m <= 1, "BatchNorm2d", "momentum must be in [0, 1], got " + std::to_string(m));
  MT_CHECK(e > 0, "BatchNorm2d", "eps must be > 0, got " + std::to_string(e));
  weight = register_parameter("weight", Tensor::empty({C}));
  bias = register_parameter("bias", Tensor::empty({C}));
  running_mean = register_buffer("running_mean", Tensor::empty({C}));
  running_var = register_buffer("running_var", Tensor::empty({C}));
  reset_parameters();
}

void BatchNorm2d::reset_parameters() {
  fill_(weight, 1.f);
  fill_(bias, 0.f);
  fill_(running_mean, 0.f);
  fill_(running_var, 1.f);
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  return batch_norm2d(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
}

Tensor BatchNorm2d::forward_act(const Tensor& x, const Tensor& residual, bool relu) {
  return batch_norm2d_act(x, weight, bias, running_mean, running_var, is_training(), momentum, eps, residual, relu);
}

std::string BatchNorm2d::describe() const {
  return "BatchNorm2d(" + std::to_string(num_features) + ", momentum=" + std::to_string(momentum) +
         ", eps=" + std::to_string(eps) + ")";
}

}  // namespace mt
