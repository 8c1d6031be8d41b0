#include "layers/residual.h"

#include <string>

#include "engine/ops.h"
#include "layers/init.h"

namespace mt {

static std::shared_ptr<Conv2d> he_conv(int in, int out, int k, int stride) {
  auto c = std::make_shared<Conv2d>(in, out, k, stride, k / 2, /*bias=*/false);
  kaiming_normal_(c->weight, 0, FanMode::Out, Nonlinearity::ReLU);
  return c;
}

ResidualBlock::ResidualBlock(int in, int out, int s) : in_channels(in), out_channels(out), stride(s) {
  MT_CHECK(in > 0 && out > 0, "ResidualBlock",
        "channel counts must be > 0, got " + std::to_string(in) + " and " + std::to_string(out));
  MT_CHECK(s > 0, "ResidualBlock", "stride must be > 0, got " + std::to_string(s));
  conv1 = register_module("conv1", he_conv(in, out, 3, s));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(out));
  conv2 = register_module("conv2", he_conv(out, out, 3, 1));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(out));
  if (s != 1 || in != out) {
    auto d = std::make_shared<Sequential>();
    d->add(he_conv(in, out, 1, s));
    d->add(std::make_shared<BatchNorm2d>(out));
    downsample = register_module("downsample", d);
  }
}

Tensor ResidualBlock::forward(const Tensor& x) {
  MT_CHECK(x.dim() == 4 && x.size(1) == in_channels, "ResidualBlock",
        "expected input [N, " + std::to_string(in_channels) + ", H, W], got " + shape_str(x.shape()));
  // relu(bn1(conv1 x)) and relu(bn2(conv2 h) + shortcut), each one fused op (the composition's very bits)
  Tensor h = bn1->forward_act(conv1->forward(x), Tensor(), true);
  return bn2->forward_act(conv2->forward(h), downsample ? downsample->forward(x) : x, true);
}

std::string ResidualBlock::describe() const {
  std::string s = "ResidualBlock(" + std::to_string(in_channels) + ", " + std::to_string(out_channels);
  if (stride != 1) s += ", stride=" + std::to_string(stride);
  return s + (downsample ? ", projection)" : ")");
}

}  // namespace mt
