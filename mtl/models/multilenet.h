// MultiLeNet, the MultiMNIST network of Sener & Koltun (2018):
//   trunk: conv 1->10 5x5, max-pool 2, ReLU, conv 10->20 5x5, dropout2d,
//          max-pool 2, ReLU, fc 320->50, ReLU            (Z is this 50-vector)
//   head:  fc 50->50, ReLU, dropout, fc 50->10, log-softmax
//          (a regression task: fc 50->outputs, no log-softmax)
// The trunk is declared shared, head t task t's.
#pragma once
#include "layers/layers.h"
#include "mtl/models/model.h"

namespace mt {

class MultiLeNetTrunk : public Module {
 public:
  explicit MultiLeNetTrunk(const Shape& input_chw, float dropout = 0.5f);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "MultiLeNetTrunk"; }
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<Dropout2d> drop;
  std::shared_ptr<Linear> fc;
};

class MultiLeNetHead : public Module {
 public:
  // fc 50 -> task.output_size(); log-softmax after it for loss nll (classification)
  explicit MultiLeNetHead(const Task& task, float dropout = 0.5f);
  Tensor forward(const Tensor& z) override;
  std::string describe() const override { return "MultiLeNetHead"; }
  const bool log_probs;
  std::shared_ptr<Linear> fc1, fc2;
  std::shared_ptr<Dropout> drop;
};

class MultiLeNet : public MultiTaskModel {
 public:
  MultiLeNet(const std::vector<Task>& tasks, const Shape& input_chw);
  Tensor shared(const Tensor& x) override { return trunk->forward(x); }
  Tensor head(int t, const Tensor& z, const Tensor&) override { return heads->operator[](t).forward(z); }
  std::string arch() const override { return "multilenet"; }
  Tensor last_shared_weight() const override { return trunk->fc->weight; }
  std::shared_ptr<MultiLeNetTrunk> trunk;
  std::shared_ptr<ModuleList> heads;
};

// The single-task baseline: one whole MultiLeNet per task, trained side by
// side on the same batches. Z is the concatenation of the K trunk outputs and
// head t reads only its own trunk's slice, so no gradient crosses tasks: with
// uniform weights this is exactly K independent single-task trainings.
class IndependentMultiLeNet : public MultiTaskModel {
 public:
  IndependentMultiLeNet(const std::vector<Task>& tasks, const Shape& input_chw);
  Tensor shared(const Tensor& x) override;
  Tensor head(int t, const Tensor& z, const Tensor& x) override;
  std::string arch() const override { return "multilenet-stl"; }
  Tensor last_shared_weight() const override;
  std::shared_ptr<ModuleList> trunk, heads;  // trunk t, head t
};

}  // namespace mt
