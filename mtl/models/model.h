// A multi-task model: a shared part computing the representation Z from the
// input x, and one head per task reading Z (and x, for models such as MDMTN
// whose task-specific part also sees the input).
//
// The model declares which parameters are shared (theta^sh in Sener & Koltun)
// and which belong to task t (theta^t): its constructor calls declare_shared()
// and declare_task() with the modules (or single tensors) of each part. The
// multi-task methods rely only on that split, never on parameter names, and
// check_parameter_split() refuses a model whose split is empty, overlapping or
// incomplete, naming the part or the parameter.
//
// Tasks are classification (a class index per sample; metric: accuracy) or
// regression (`outputs` values per sample; metric: mean absolute error), each
// with its loss: the built-in ones below, or the user's own (TaskLoss::Custom).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "datasets/targets.h"
#include "engine/tensor.h"
#include "layers/module.h"

namespace mt {

enum class TaskKind { Classification, Regression };

enum class TaskLoss {
  LogProbNll,    // classification: the head ends in log_softmax, nll_loss (MultiLeNet, as the paper's code)
  CrossEntropy,  // classification: the head gives logits, cross_entropy
  BinaryLogits,  // classification with 2 classes: one logit per sample, bce_with_logits against 0/1
  MSE,           // regression: mean squared error over samples and outputs
  L1,            // regression: mean absolute error over samples and outputs
  Custom         // Task::custom_loss(out, target)
};


// The user's loss: a rank-0 tensor (mean over the batch) from the head's output.
using LossFn = std::function<Tensor(const Tensor& out, const TaskTarget& y)>;

// {"digit", 10} is a 10-class task with a log-softmax head; Task::regression("ink") a
// one-number regression task trained with MSE.
struct Task {
  std::string name;
  int num_classes = 10;                 // classification
  TaskLoss loss = TaskLoss::LogProbNll;
  TaskKind kind = TaskKind::Classification;
  int outputs = 1;                      // regression: values per sample
  LossFn custom_loss = nullptr;         // loss == Custom

  static Task classification(std::string name, int classes, TaskLoss loss = TaskLoss::LogProbNll);
  static Task regression(std::string name, int outputs = 1, TaskLoss loss = TaskLoss::MSE);
  static Task custom(std::string name, TaskKind kind, int classes_or_outputs, LossFn loss);

  bool is_regression() const { return kind == TaskKind::Regression; }
  // Width of the head's output: classes (1 for BinaryLogits), or outputs.
  int output_size() const;
  // The per-task metric: "acc" (a fraction, higher is better) or "mae" (lower is better).
  const char* metric() const { return is_regression() ? "mae" : "acc"; }
  // Throws mt::Error naming the task for an impossible combination
  // (a regression loss on a classification task, BinaryLogits without 2 classes, ...).
  void validate() const;
};

// Names written in weight files ("classification", "regression"; "nll", "cross-entropy",
// "binary-logits", "mse", "l1", "custom") and back (mt::Error for an unknown name).
std::string task_kind_name(TaskKind k);
TaskKind parse_task_kind(const std::string& s);
std::string task_loss_name(TaskLoss l);
TaskLoss parse_task_loss(const std::string& s);

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
  std::shared_ptr<Module> at(size_t i) const { return items_.at(i); }
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
  // The weight GradNorm measures gradient norms at. Default: the last shared
  // parameter with two or more dimensions (the last shared layer's weight).
  virtual Tensor last_shared_weight() const;

  int num_tasks() const { return (int)tasks_.size(); }
  const std::vector<Task>& tasks() const { return tasks_; }
  const Task& task(int t) const { return tasks_.at((size_t)t); }
  std::vector<std::string> task_names() const;

  // The declared split, with each tensor's full dotted name (named_parameters order).
  NamedTensors shared_parameters() const;      // theta^sh
  NamedTensors task_parameters(int t) const;   // theta^t
  // Throws mt::Error naming the model and the problem: no shared parameters, a task
  // without parameters, a parameter declared twice, or one that is in no part.
  void check_parameter_split() const;

  // L_t for a batch of outputs (mean over the batch).
  Tensor task_loss(int t, const Tensor& out, const TaskTarget& y) const;
  // Task t's metric summed over the batch: the number of correct predictions
  // (classification) or the sum over samples of the mean absolute error of the
  // outputs (regression). Divided by n it is the accuracy or the MAE.
  double metric_sum(int t, const Tensor& out, const TaskTarget& y) const;

 protected:
  // The parts, from the constructor (after registering the modules).
  void declare_shared(const std::shared_ptr<Module>& part);
  void declare_task(int t, const std::shared_ptr<Module>& part);
  void declare_task(int t, const Tensor& parameter);  // a single registered parameter

  std::vector<Task> tasks_;

 private:
  struct Part {
    std::vector<std::shared_ptr<Module>> modules;
    std::vector<Tensor> tensors;
  };
  NamedTensors part_parameters(const Part& p) const;
  Part shared_part_;
  std::vector<Part> task_parts_;
};

// The models this engine knows, by name: "multilenet" (Sener & Koltun's
// MultiLeNet), "multilenet-stl" (one independent MultiLeNet per task, the
// single-task baseline trained side by side), "mdmtn", "hps" (and -cifar),
// "resnet18[-w<N>]". Throws mt::Error listing the valid names for an unknown one.
std::shared_ptr<MultiTaskModel> make_model(const std::string& name, const std::vector<Task>& tasks,
                                           const Shape& input_chw);
const std::vector<std::string>& model_names();
// A name make_model accepts: model_names() and "resnet18-w<N>" for any width N >= 1.
bool is_model_name(const std::string& name);

}  // namespace mt
