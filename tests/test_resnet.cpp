// Tests for layers/residual and mtl/resnet: the residual block's gradients by
// finite differences (batch norm in training mode) with both shortcuts, the
// projection's shapes and names, the ResNet-18 trunk's output shape and stem
// rule, heads per task kind (binary logit / logits / log-probabilities) with
// their loss and accuracy, the registry names and make_tasks.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "layers/residual.h"
#include "mtl/models/resnet.h"
#include "optim/sgd.h"
#include "tests/gradcheck.h"

namespace {

bool has_name(const mt::NamedTensors& ts, const std::string& name) {
  for (const auto& [n, t] : ts)
    if (n == name) return true;
  return false;
}

std::string resnet_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const mt::Error& e) {
    return e.what();
  }
  return "";
}

// Check the block's gradient w.r.t. its input and every parameter.
void check_block_gradients(mt::ResidualBlock& block, const mt::Shape& x_shape, uint64_t seed) {
  mt::Rng rng(seed);
  block.train();
  // Random affine batch-norm parameters, so gamma/beta gradients are generic.
  for (auto& [name, p] : block.named_parameters())
    if (name.find("bn") != std::string::npos || name.find("downsample.1") != std::string::npos) {
      float* d = p.data();
      for (int64_t i = 0; i < p.numel(); i++) d[i] = 0.5f + rng.uniform();
    }
  std::vector<mt::Tensor> inputs = {mt::testing::param(x_shape, rng)};
  for (auto& [name, p] : block.named_parameters()) inputs.push_back(p);
  // A small step: batch norm couples every output to every input, so a larger
  // one moves many pre-activations across ReLU's kink at once.
  mt::testing::gradcheck([&](const std::vector<mt::Tensor>& in) { return block.forward(in[0]); }, inputs, 1e-3f,
                         1e-2, seed);
}

}  // namespace

TEST_CASE("residual block: identity shortcut, gradients by finite differences") {
  mt::manual_seed(3);
  mt::ResidualBlock block(3, 3, 1);
  CHECK_FALSE(block.has_projection());
  CHECK(block.named_parameters().size() == 6);  // conv1, bn1 (2), conv2, bn2 (2)
  mt::Rng rng(1);
  mt::Tensor x = mt::Tensor::uniform({2, 3, 4, 4}, -1, 1, rng);
  CHECK(block.forward(x).shape() == mt::Shape{2, 3, 4, 4});
  check_block_gradients(block, {2, 3, 4, 4}, 21);
}

TEST_CASE("residual block: projection shortcut, shapes, names, gradients") {
  mt::manual_seed(4);
  mt::ResidualBlock down(2, 4, 2);
  CHECK(down.has_projection());
  const mt::NamedTensors p = down.named_parameters();
  CHECK(has_name(p, "downsample.0.weight"));
  CHECK(has_name(p, "downsample.1.weight"));
  CHECK(has_name(p, "downsample.1.bias"));
  CHECK(has_name(down.named_buffers(), "downsample.1.running_var"));
  CHECK(down.downsample->parameters()[0].shape() == mt::Shape{4, 2, 1, 1});
  mt::Rng rng(2);
  CHECK(down.forward(mt::Tensor::uniform({2, 2, 5, 5}, -1, 1, rng)).shape() == mt::Shape{2, 4, 3, 3});
  CHECK(down.forward(mt::Tensor::uniform({1, 2, 8, 6}, -1, 1, rng)).shape() == mt::Shape{1, 4, 4, 3});
  // A channel change alone (stride 1) also projects.
  mt::ResidualBlock widen(2, 3, 1);
  CHECK(widen.has_projection());
  CHECK(widen.forward(mt::Tensor::uniform({2, 2, 4, 4}, -1, 1, rng)).shape() == mt::Shape{2, 3, 4, 4});
  CHECK(resnet_error([&] { down.forward(mt::Tensor::zeros({2, 3, 4, 4})); }).find("expected input [N, 2, H, W]") !=
        std::string::npos);
  check_block_gradients(down, {2, 2, 5, 5}, 22);
}

TEST_CASE("resnet18 trunk: output shape, stem rule, names") {
  CHECK(mt::resnet_stem_stride(32, 32) == 1);
  CHECK(mt::resnet_stem_stride(28, 28) == 1);
  CHECK(mt::resnet_stem_stride(56, 56) == 2);
  CHECK(mt::resnet_stem_stride(64, 64) == 2);
  CHECK(mt::resnet_stem_stride(218, 178) == 8);

  mt::manual_seed(5);
  mt::Rng rng(3);
  mt::ResNet18Trunk cifar({3, 32, 32}, 4);
  CHECK(cifar.stem_stride == 1);
  CHECK(cifar.features() == 32);
  CHECK(cifar.forward(mt::Tensor::uniform({2, 3, 32, 32}, -1, 1, rng)).shape() == mt::Shape{2, 32});
  mt::ResNet18Trunk grid({1, 56, 56}, 4);
  CHECK(grid.stem_stride == 2);
  CHECK(grid.forward(mt::Tensor::uniform({2, 1, 56, 56}, -1, 1, rng)).shape() == mt::Shape{2, 32});
  grid.eval();
  CHECK(grid.forward(mt::Tensor::uniform({1, 1, 56, 56}, -1, 1, rng)).shape() == mt::Shape{1, 32});

  const mt::NamedTensors p = cifar.named_parameters();
  CHECK(has_name(p, "conv1.weight"));
  CHECK(has_name(p, "layer1.0.conv1.weight"));
  CHECK(has_name(p, "layer2.0.downsample.0.weight"));
  CHECK(has_name(p, "layer4.1.bn2.bias"));
  CHECK_FALSE(has_name(p, "layer1.0.downsample.0.weight"));  // w -> w, stride 1: identity
  // 1 stem conv + 16 block convs + 3 projections, each followed by a batch norm.
  CHECK(p.size() == size_t(20 + 2 * 20));
  CHECK(resnet_error([] { mt::ResNet18Trunk bad({3, 32}, 4); }).find("input must be C x H x W") !=
        std::string::npos);
  CHECK(resnet_error([] { mt::ResNet18Trunk bad({3, 32, 32}, 0); }).find("width must be > 0") != std::string::npos);
}

TEST_CASE("resnet18 model: heads per task kind, binary loss and accuracy, training step") {
  mt::manual_seed(6);
  const std::vector<mt::Task> tasks = mt::make_tasks({"digit", "smile", "parity"}, {10, 2, 2}, {false, true},
                                                     mt::TaskLoss::CrossEntropy);
  REQUIRE(tasks.size() == 3);
  CHECK(tasks[0].loss == mt::TaskLoss::CrossEntropy);
  CHECK(tasks[1].loss == mt::TaskLoss::BinaryLogits);
  CHECK(tasks[2].loss == mt::TaskLoss::CrossEntropy);  // binary shorter than the list: not binary
  std::vector<mt::Task> with_nll = tasks;
  with_nll[2].loss = mt::TaskLoss::LogProbNll;

  auto model = mt::make_model("resnet18-w4", with_nll, {3, 16, 16});
  CHECK(model->arch() == "resnet18-w4");
  CHECK(mt::make_model("resnet18", tasks, {1, 8, 8})->arch() == "resnet18");
  CHECK(model->last_shared_weight().shape() == mt::Shape{32, 32, 3, 3});
  CHECK(model->task_parameters(1).size() == 2);
  CHECK(model->task_parameters(1)[0].first == "heads.1.fc.weight");
  CHECK(model->task_parameters(1)[0].second.shape() == mt::Shape{1, 32});
  CHECK(model->shared_parameters().size() == 60);

  mt::Rng rng(9);
  const int N = 8;
  mt::Tensor x = mt::Tensor::uniform({N, 3, 16, 16}, -1, 1, rng);
  const std::vector<int32_t> digit = {0, 1, 2, 3, 4, 5, 6, 7}, smile = {1, 0, 0, 1, 1, 0, 1, 0},
                             parity = {0, 1, 0, 1, 0, 1, 0, 1};
  mt::Tensor z = model->shared(x);
  CHECK(z.shape() == mt::Shape{N, 32});
  mt::Tensor o0 = model->head(0, z, x), o1 = model->head(1, z, x), o2 = model->head(2, z, x);
  CHECK(o0.shape() == mt::Shape{N, 10});
  CHECK(o1.shape() == mt::Shape{N, 1});
  CHECK(o2.shape() == mt::Shape{N, 2});
  double psum = 0;  // log-probabilities: each row's exp sums to 1
  for (int k = 0; k < 2; k++) psum += std::exp(o2.data()[k]);
  CHECK(psum == doctest::Approx(1.0).epsilon(1e-5));

  // Binary loss = mean BCE on the one logit; accuracy = sign agreement.
  double bce = 0;
  int64_t right = 0;
  for (int i = 0; i < N; i++) {
    const double l = o1.data()[i], y = smile[size_t(i)];
    bce += std::max(l, 0.0) - l * y + std::log1p(std::exp(-std::fabs(l)));
    right += (l > 0) == (y == 1);
  }
  CHECK(model->task_loss(1, o1, smile).item() == doctest::Approx(bce / N).epsilon(1e-5));
  CHECK((int64_t)model->metric_sum(1, o1, smile) == right);
  CHECK(model->task_loss(0, o0, digit).item() > 0);
  CHECK(model->task_loss(2, o2, parity).item() > 0);

  // A few SGD steps on the summed loss fit the batch.
  mt::SGD opt(model->named_parameters(), 0.05, 0.9);
  float first = 0, last = 0;
  for (int step = 0; step < 12; step++) {
    opt.zero_grad();
    mt::Tensor zz = model->shared(x);
    mt::Tensor loss = model->task_loss(0, model->head(0, zz, x), digit) +
                      model->task_loss(1, model->head(1, zz, x), smile) +
                      model->task_loss(2, model->head(2, zz, x), parity);
    if (step == 0) first = loss.item();
    last = loss.item();
    mt::backward(loss);
    opt.step();
  }
  CHECK(last < 0.7f * first);
  mt::Tensor zz = model->shared(x);
  CHECK(model->metric_sum(1, model->head(1, zz, x), smile) >= 6);
}

TEST_CASE("resnet18: task validation and make_tasks errors") {
  std::vector<mt::Task> bad = {{"smile", 10, mt::TaskLoss::BinaryLogits}};
  CHECK(resnet_error([&] { mt::make_model("resnet18-w4", bad, {3, 8, 8}); })
            .find("binary task 'smile' must have 2 classes, got 10") != std::string::npos);
  bad = {{"one", 1, mt::TaskLoss::CrossEntropy}};
  CHECK(resnet_error([&] { mt::make_model("resnet18-w4", bad, {3, 8, 8}); })
            .find("task 'one' needs >= 2 classes") != std::string::npos);
  CHECK(resnet_error([] { mt::make_model("resnet18-w4", {}, {3, 8, 8}); }).find("needs at least one task") !=
        std::string::npos);
  CHECK(resnet_error([] { mt::make_tasks({"a"}, {3}, {true}); }).find("binary task 'a' has 3 classes") !=
        std::string::npos);
  CHECK(resnet_error([] { mt::make_tasks({"a", "b"}, {3}, {}); }).find("2 task names but 1 class counts") !=
        std::string::npos);
  CHECK(resnet_error([] { mt::make_model("resnet18-wx", {{"a", 2, mt::TaskLoss::CrossEntropy}}, {3, 8, 8}); })
            .find("unknown model 'resnet18-wx'") != std::string::npos);
  // Binary tasks kept as 2-class heads (e.g. for MultiLeNet's log-softmax heads).
  const auto t = mt::make_tasks({"a", "b"}, {10, 2}, {false, true}, mt::TaskLoss::LogProbNll, false);
  CHECK(t[1].loss == mt::TaskLoss::LogProbNll);
  CHECK(t[1].num_classes == 2);
}
