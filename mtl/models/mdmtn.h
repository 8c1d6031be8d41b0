// MDMTN, the monitored deep multi-task network of Hotegni, Berkemeier, Peitz,
// "Multi-Objective Optimization for Sparse Deep Multi-Task Learning" (IJCNN 2024;
// reference code github.com/salomonhotegni/MDMTN, src/MDMTN_model_MM.py and _CM.py),
// and HPS, the same network without monitors (hard parameter sharing).
//
//   Z   = S(x)                                   the shared trunk          "trunk.*"
//   h_t = alpha_t0 Z + alpha_t1 M_t(x)           alpha_t trained, (1, 0) at the start
//   out = head_t(h_t)                            fc, then log_softmax (TaskLoss::LogProbNll,
//                                                as the reference and the torch bench)
// Everything of task t (monitor M_t, alpha_t, head) is declared task t's and lives under "heads.<t>.":
//   heads.<t>.alpha [2], heads.<t>.monitor.{conv,bn,fc}.*, heads.<t>.out.*
// HPS is the same with h_t = Z (no monitor, no alpha).
//
// Sizes (valid convolutions, max-pool 2, "MultiMNIST" = mdmtn / hps on 1x28x28):
//   S    conv C->10 5x5, pool, ReLU, conv 10->20 5x5, pool, ReLU, fc 320->50, ReLU
//        (the MultiLeNet trunk without dropout: 28 -> 24 -> 12 -> 8 -> 4, 20*4*4 = 320)
//   M_t  conv C->20 5x5, pool, ReLU, fc 2880->50, ReLU   (28 -> 24 -> 12, 20*12*12 = 2880)
//   head fc 50->classes
// "Cifar10Mnist" = mdmtn-cifar / hps-cifar on 3x32x32 (BatchNorm after each pool):
//   S    conv C->16 3x3, pool, BN, ReLU, conv 16->32 3x3, pool, BN, ReLU, fc 1152->32, ReLU
//        (32 -> 30 -> 15 -> 13 -> 6, 32*6*6 = 1152)
//   M_t  conv C->32 3x3, pool, BN, ReLU, fc 7200->32, ReLU   (32 -> 30 -> 15, 32*15*15 = 7200)
//   head fc 32->classes
// The flat sizes are computed from the input shape, so other sizes work when they
// survive the convolutions.
//
// Both models implement LayerTracer (mtl/sparsity/sparsity.h): one forward pass that records
// the input of every Conv2d/Linear, used by LSUV initialisation and the FLOP count.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/layers.h"
#include "mtl/models/model.h"
#include "mtl/sparsity/sparsity.h"

namespace mt {

struct MdmtnConfig {
  bool monitors = true;  // false: HPS
  bool cifar = false;    // false: the MultiMNIST sizes, true: the Cifar10Mnist sizes
};

// S: the shared trunk.
class MdmtnTrunk : public Module {
 public:
  MdmtnTrunk(const Shape& input_chw, bool cifar);
  Tensor forward(const Tensor& x) override { return run(x, nullptr, ""); }
  // forward, recording each Conv2d/Linear input under prefix + its name when tr is set
  Tensor run(const Tensor& x, std::vector<TracedLayer>* tr, const std::string& prefix);
  std::string describe() const override { return "MdmtnTrunk"; }
  int out_features() const { return fc->out_features; }

  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;  // null in the MultiMNIST sizes
  std::shared_ptr<Linear> fc;
};

// M_t: a task's monitor, reading the input image.
class MdmtnMonitor : public Module {
 public:
  MdmtnMonitor(const Shape& input_chw, int out_features, bool cifar);
  Tensor forward(const Tensor& x) override { return run(x, nullptr, ""); }
  Tensor run(const Tensor& x, std::vector<TracedLayer>* tr, const std::string& prefix);
  std::string describe() const override { return "MdmtnMonitor"; }

  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;  // null in the MultiMNIST sizes
  std::shared_ptr<Linear> fc;
};

// Everything of one task: alpha_t and M_t (MDMTN only) and the output layer.
class MdmtnHead : public Module {
 public:
  MdmtnHead(const Shape& input_chw, int z_features, const Task& task, const MdmtnConfig& cfg);
  Tensor run(const Tensor& z, const Tensor& x, std::vector<TracedLayer>* tr, const std::string& prefix);
  std::string describe() const override { return "MdmtnHead"; }

  Tensor alpha;                           // [2] = (alpha_t0, alpha_t1); undefined in HPS
  std::shared_ptr<MdmtnMonitor> monitor;  // null in HPS
  std::shared_ptr<Linear> out;
  TaskLoss loss;
};

class Mdmtn : public MultiTaskModel, public LayerTracer {
 public:
  // Tasks: LogProbNll (log_softmax output), CrossEntropy (logits) or BinaryLogits
  // (one logit); input_chw = C x H x W.
  Mdmtn(const std::vector<Task>& tasks, const Shape& input_chw, const MdmtnConfig& cfg);
  Tensor shared(const Tensor& x) override { return trunk->forward(x); }
  Tensor head(int t, const Tensor& z, const Tensor& x) override;
  std::string arch() const override;  // "mdmtn", "hps", "mdmtn-cifar", "hps-cifar"
  Tensor last_shared_weight() const override { return trunk->fc->weight; }
  std::vector<TracedLayer> trace(const Tensor& x) override;
  Shape input_chw() const override { return input_chw_; }
  const MdmtnConfig& config() const { return cfg_; }
  // alpha_t as two numbers ((1, 0) for HPS)
  std::vector<double> alpha(int t) const;
  // The task modules heads.0, heads.1, ... (the children of `heads`, typed).
  const std::vector<std::shared_ptr<MdmtnHead>>& head_list() const { return head_list_; }

  std::shared_ptr<MdmtnTrunk> trunk;
  std::shared_ptr<ModuleList> heads;

 private:
  std::vector<std::shared_ptr<MdmtnHead>> head_list_;
  Shape input_chw_;
  MdmtnConfig cfg_;
};

}  // namespace mt
