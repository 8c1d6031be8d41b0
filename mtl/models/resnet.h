// ResNet-18 for multi-task learning on the CPU: a shared ResNet-18 trunk
// (He et al. 2016) and one linear head per task.
//
//   trunk  stem: conv 3x3 (C -> w, stride s, pad 1, no bias), BN, ReLU
//          layer1: 2 residual blocks  w -> w     stride 1
//          layer2: 2 residual blocks  w -> 2w    stride 2 (first block, projection)
//          layer3: 2 residual blocks 2w -> 4w    stride 2
//          layer4: 2 residual blocks 4w -> 8w    stride 2
//          global average pooling -> Z [N, 8w]
//   head t Linear(8w -> classes) for TaskLoss::CrossEntropy (logits), the same
//          followed by log_softmax for TaskLoss::LogProbNll, Linear(8w -> 1) for
//          TaskLoss::BinaryLogits (one logit; the task must have 2 classes).
//
// CPU-sized stem: no 7x7 stride-2 conv and no max-pool (ImageNet's stem,
// which throws away most of a small image). A 3x3 conv with stride s instead,
// s = the smallest power of two with min(H, W) / s <= 32 unless given, so
// layer1 never runs above ~32x32: 32x32 (CIFAR) s = 1 -> 32, 16, 8, 4;
// 56x56 s = 2 -> 28, 14, 7, 4; 64x64 s = 2 -> 32, 16, 8, 4; 128x128 s = 4.
// Width w (default 16; torchvision's is 64) scales every stage.
//
// Tensor names follow torchvision: trunk.conv1, trunk.bn1,
// trunk.layer1.0.conv1.weight, ..., trunk.layer4.1.bn2.bias; heads.<t>.fc.*.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/layers.h"
#include "layers/residual.h"
#include "mtl/models/model.h"

namespace mt {

// The automatic stem stride for an input of H x W (see above).
int resnet_stem_stride(int h, int w);

class ResNet18Trunk : public Module {
 public:
  // input_chw = {C, H, W}; stem_stride 0 = automatic.
  explicit ResNet18Trunk(const Shape& input_chw, int width = 16, int stem_stride = 0);
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> [N, 8w]
  std::string describe() const override;
  int features() const { return 8 * width; }

  const Shape input_chw;
  const int width, stem_stride;
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<Sequential> layer1, layer2, layer3, layer4;
};

class ResNetHead : public Module {
 public:
  ResNetHead(int features, const Task& task);
  Tensor forward(const Tensor& z) override;  // [N, 8w] -> [N, classes] or [N, 1]
  std::string describe() const override;
  const bool log_probs;                      // LogProbNll: log_softmax after fc
  std::shared_ptr<Linear> fc;
};

class ResNet18 : public MultiTaskModel {
 public:
  ResNet18(const std::vector<Task>& tasks, const Shape& input_chw, int width = 16, int stem_stride = 0);
  Tensor shared(const Tensor& x) override { return trunk->forward(x); }
  Tensor head(int t, const Tensor& z, const Tensor&) override { return (*heads)[size_t(t)].forward(z); }
  // "resnet18" at width 16, "resnet18-w<N>" otherwise (make_model accepts both).
  std::string arch() const override;
  // layer4's last convolution.
  Tensor last_shared_weight() const override;
  std::shared_ptr<ResNet18Trunk> trunk;
  std::shared_ptr<ModuleList> heads;
};

// Tasks from a dataset's task lists (e.g. MultiImageSet's task_names,
// num_classes, binary): binary tasks (binary[t], which needs num_classes 2)
// get TaskLoss::BinaryLogits when binary_logits, else `multiclass` with 2
// classes; the others get `multiclass`. `binary` may be empty or shorter.
std::vector<Task> make_tasks(const std::vector<std::string>& names, const std::vector<int>& num_classes,
                             const std::vector<bool>& binary, TaskLoss multiclass = TaskLoss::CrossEntropy,
                             bool binary_logits = true);

}  // namespace mt
