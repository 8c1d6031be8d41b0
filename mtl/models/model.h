// A multi-task model: a shared part computing the representation Z from the
// input x, and one head per task reading Z (and x, for models such as MDMTN
// whose task-specific part also sees the input).
//
// Parameters are split by name: everything under "trunk." is shared (theta^sh
// in Sener & Koltun), everything under "heads.<t>." belongs to task t
// (theta^t). The multi-task methods rely only on that split.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "layers/module.h"

namespace mt {

enum class TaskLoss {
  LogProbNll,     // the head ends in log_softmax: nll_loss (MultiLeNet, as the paper's code)
  CrossEntropy,   // the head gives logits: cross_entropy
  BinaryLogits    // one logit per sample: bce_with_logits against 0/1 labels
};

struct Task {
  std::string name;
  int num_classes = 10;
  TaskLoss loss = TaskLoss::LogProbNll;
};

using Labels = std::vector<std::vector<int32_t>>;  // labels[t][i]

// Children named "0", "1", ... by position (the task heads, the monitors).
class ModuleList : public Module {
 public:
  template <class M>
  std::shared_ptr<M> add(std::shared_ptr<M> m) {
    register_module(std::to_string(items_.size()), std::shared_ptr<Module>(m));
    items_.push_back(m);
    return m;
  }
  Module& operator[](size_t i) const { return *items_.at(i); }
  size_t size() const { return items_.size(); }
  std::string describe() const override { return "ModuleList"; }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

class MultiTaskModel : public Module {
 public:
  // Z = shared(x), the representation every head reads.
  virtual Tensor shared(const Tensor& x) = 0;
  // Task t's output from Z and the input x.
  virtual Tensor head(int t, const Tensor& z, const Tensor& x) = 0;
  // The architecture's name, stored in weight files ("multilenet", "mdmtn", ...).
  virtual std::string arch() const = 0;
  // The weight GradNorm measures gradient norms at (the last shared layer's).
  virtual Tensor last_shared_weight() const = 0;

  int num_tasks() const { return (int)tasks_.size(); }
  const std::vector<Task>& tasks() const { return tasks_; }
  std::vector<std::string> task_names() const;

  NamedTensors shared_parameters() const;      // "trunk.*"
  NamedTensors task_parameters(int t) const;   // "heads.<t>.*"

  // L_t for a batch of outputs (mean over the batch).
  Tensor task_loss(int t, const Tensor& out, const std::vector<int32_t>& y) const;
  // Number of correct predictions of task t in a batch of outputs.
  int64_t correct(int t, const Tensor& out, const std::vector<int32_t>& y) const;

 protected:
  std::vector<Task> tasks_;
};

// The models this engine knows, by name: "multilenet" (Sener & Koltun's
// MultiLeNet), "multilenet-stl" (one independent MultiLeNet per task, the
// single-task baseline trained side by side), and the names later issues add.
// Throws mt::Error listing the valid names for an unknown one.
std::shared_ptr<MultiTaskModel> make_model(const std::string& name, const std::vector<Task>& tasks,
                                           const Shape& input_chw);
const std::vector<std::string>& model_names();
// A name make_model accepts: model_names() and "resnet18-w<N>" for any width N >= 1.
bool is_model_name(const std::string& name);

}  // namespace mt
