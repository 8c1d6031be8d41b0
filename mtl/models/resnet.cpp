#include "mtl/models/resnet.h"

#include <algorithm>

#include "engine/error.h"
#include "engine/ops.h"

namespace mt {

int resnet_stem_stride(int h, int w) {
  MT_CHECK(h > 0 && w > 0, "resnet18", "input size must be positive, got " + std::to_string(h) + "x" + std::to_string(w));
  int s = 1;
  while (std::min(h, w) / s > 32) s *= 2;
  return s;
}

static std::shared_ptr<Sequential> stage(int in, int out, int stride) {
  auto s = std::make_shared<Sequential>();
  s->add(std::make_shared<ResidualBlock>(in, out, stride));
  s->add(std::make_shared<ResidualBlock>(out, out, 1));
  return s;
}

ResNet18Trunk::ResNet18Trunk(const Shape& chw, int w, int ss)
    : input_chw(chw), width(w), stem_stride(ss ? ss : (chw.size() == 3 ? resnet_stem_stride(chw[1], chw[2]) : 1)) {
  MT_CHECK(chw.size() == 3 && chw[0] > 0 && chw[1] > 0 && chw[2] > 0, "resnet18",
        "input must be C x H x W, got " + shape_str(chw));
  MT_CHECK(w > 0, "resnet18", "width must be > 0, got " + std::to_string(w));
  MT_CHECK(stem_stride > 0, "resnet18", "stem stride must be > 0, got " + std::to_string(stem_stride));
  conv1 = register_module("conv1", std::make_shared<Conv2d>(chw[0], w, 3, stem_stride, 1, /*bias=*/false));
  kaiming_normal_(conv1->weight, 0, FanMode::Out, Nonlinearity::ReLU);
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(w));
  layer1 = register_module("layer1", stage(w, w, 1));
  layer2 = register_module("layer2", stage(w, 2 * w, 2));
  layer3 = register_module("layer3", stage(2 * w, 4 * w, 2));
  layer4 = register_module("layer4", stage(4 * w, 8 * w, 2));
}

Tensor ResNet18Trunk::forward(const Tensor& x) {
  MT_CHECK(x.dim() == 4 && x.size(1) == input_chw[0], "resnet18",
        "expected input [N, " + std::to_string(input_chw[0]) + ", H, W], got " + shape_str(x.shape()));
  Tensor h = bn1->forward_act(conv1->forward(x), Tensor(), true);  // relu(bn1(conv1 x)), fused
  h = layer4->forward(layer3->forward(layer2->forward(layer1->forward(h))));
  return global_avg_pool2d(h);
}

std::string ResNet18Trunk::describe() const {
  return "ResNet18Trunk(input=" + shape_str(input_chw) + ", width=" + std::to_string(width) +
         ", stem_stride=" + std::to_string(stem_stride) + ")";
}

static int head_outputs(const Task& t) {
  if (t.is_regression()) {
    t.validate();
    return t.outputs;
  }
  if (t.loss == TaskLoss::BinaryLogits) {
    MT_CHECK(t.num_classes == 2, "resnet18",
          "binary task '" + t.name + "' must have 2 classes, got " + std::to_string(t.num_classes));
    return 1;
  }
  MT_CHECK(t.num_classes >= 2, "resnet18",
        "task '" + t.name + "' needs >= 2 classes, got " + std::to_string(t.num_classes));
  return t.num_classes;
}

ResNetHead::ResNetHead(int features, const Task& task) : log_probs(task.loss == TaskLoss::LogProbNll) {
  fc = register_module("fc", std::make_shared<Linear>(features, head_outputs(task)));
}

Tensor ResNetHead::forward(const Tensor& z) {
  Tensor y = fc->forward(z);
  return log_probs ? log_softmax(y) : y;
}

std::string ResNetHead::describe() const { return log_probs ? "ResNetHead(log_softmax)" : "ResNetHead"; }

ResNet18::ResNet18(const std::vector<Task>& tasks, const Shape& input_chw, int width, int stem_stride) {
  MT_CHECK(!tasks.empty(), "resnet18", "needs at least one task");
  tasks_ = tasks;
  trunk = register_module("trunk", std::make_shared<ResNet18Trunk>(input_chw, width, stem_stride));
  heads = register_module("heads", std::make_shared<ModuleList>());
  declare_shared(trunk);
  for (size_t t = 0; t < tasks.size(); t++)
    declare_task((int)t, heads->add(std::make_shared<ResNetHead>(trunk->features(), tasks[t])));
}

std::string ResNet18::arch() const {
  return trunk->width == 16 ? "resnet18" : "resnet18-w" + std::to_string(trunk->width);
}

Tensor ResNet18::last_shared_weight() const {
  return static_cast<ResidualBlock&>((*trunk->layer4)[1]).conv2->weight;
}

std::vector<Task> make_tasks(const std::vector<std::string>& names, const std::vector<int>& num_classes,
                             const std::vector<bool>& binary, TaskLoss multiclass, bool binary_logits) {
  MT_CHECK(names.size() == num_classes.size(), "make_tasks",
        std::to_string(names.size()) + " task names but " + std::to_string(num_classes.size()) + " class counts");
  MT_CHECK(multiclass != TaskLoss::BinaryLogits, "make_tasks", "the multi-class loss cannot be BinaryLogits");
  std::vector<Task> tasks;
  for (size_t t = 0; t < names.size(); t++) {
    Task k;
    k.name = names[t];
    k.num_classes = num_classes[t];
    const bool bin = t < binary.size() && binary[t];
    MT_CHECK(!bin || num_classes[t] == 2, "make_tasks",
          "binary task '" + names[t] + "' has " + std::to_string(num_classes[t]) + " classes");
    k.loss = bin && binary_logits ? TaskLoss::BinaryLogits : multiclass;
    tasks.push_back(k);
  }
  return tasks;
}

}  // namespace mt
