#include "mtl/models/model.h"

#include <cmath>
#include <map>

#include "engine/error.h"
#include "engine/ops.h"

namespace mt {

// ---- tasks ---------------------------------------------------------------------

Task Task::classification(std::string name, int classes, TaskLoss loss) {
  Task t;
  t.name = std::move(name);
  t.kind = TaskKind::Classification;
  t.num_classes = classes;
  t.loss = loss;
  return t;
}

Task Task::regression(std::string name, int outputs, TaskLoss loss) {
  Task t;
  t.name = std::move(name);
  t.kind = TaskKind::Regression;
  t.num_classes = 0;
  t.outputs = outputs;
  t.loss = loss;
  return t;
}

Task Task::custom(std::string name, TaskKind kind, int classes_or_outputs, LossFn loss) {
  Task t = kind == TaskKind::Regression ? regression(std::move(name), classes_or_outputs)
                                        : classification(std::move(name), classes_or_outputs);
  t.loss = TaskLoss::Custom;
  t.custom_loss = std::move(loss);
  return t;
}

int Task::output_size() const {
  if (is_regression()) return outputs;
  return loss == TaskLoss::BinaryLogits ? 1 : num_classes;
}

void Task::validate() const {
  const std::string who = "task '" + name + "'";
  MT_CHECK(!name.empty(), "task", "a task needs a name");
  if (is_regression()) {
    MT_CHECK(outputs >= 1, "task", who + ": a regression task needs >= 1 output, got " + std::to_string(outputs));
    MT_CHECK(loss == TaskLoss::MSE || loss == TaskLoss::L1 || loss == TaskLoss::Custom, "task",
             who + ": a regression task takes loss mse, l1 or custom, not " + task_loss_name(loss));
  } else {
    MT_CHECK(num_classes >= 2, "task",
             who + ": a classification task needs >= 2 classes, got " + std::to_string(num_classes));
    MT_CHECK(loss != TaskLoss::MSE && loss != TaskLoss::L1, "task",
             who + ": a classification task takes loss nll, cross-entropy, binary-logits or custom, not " +
                 task_loss_name(loss));
    MT_CHECK(loss != TaskLoss::BinaryLogits || num_classes == 2, "task",
             who + ": binary-logits needs 2 classes, got " + std::to_string(num_classes));
  }
  MT_CHECK(loss != TaskLoss::Custom || (bool)custom_loss, "task", who + ": loss custom without a loss function");
}

namespace {
const std::map<TaskLoss, std::string> kLossNames = {
    {TaskLoss::LogProbNll, "nll"}, {TaskLoss::CrossEntropy, "cross-entropy"}, {TaskLoss::BinaryLogits, "binary-logits"},
    {TaskLoss::MSE, "mse"},        {TaskLoss::L1, "l1"},                       {TaskLoss::Custom, "custom"}};
}  // namespace

std::string task_kind_name(TaskKind k) { return k == TaskKind::Regression ? "regression" : "classification"; }

TaskKind parse_task_kind(const std::string& s) {
  if (s == "classification") return TaskKind::Classification;
  if (s == "regression") return TaskKind::Regression;
  throw Error("unknown task kind '" + s + "' (valid: classification, regression)");
}

std::string task_loss_name(TaskLoss l) { return kLossNames.at(l); }

TaskLoss parse_task_loss(const std::string& s) {
  for (const auto& [l, n] : kLossNames)
    if (n == s) return l;
  throw Error("unknown task loss '" + s + "' (valid: nll, cross-entropy, binary-logits, mse, l1, custom)");
}

// ---- the declared split ---------------------------------------------------------

std::vector<std::string> MultiTaskModel::task_names() const {
  std::vector<std::string> n;
  for (const Task& t : tasks_) n.push_back(t.name);
  return n;
}

void MultiTaskModel::declare_shared(const std::shared_ptr<Module>& part) {
  MT_CHECK(part != nullptr, "model", "declare_shared: null module");
  shared_part_.modules.push_back(part);
}

void MultiTaskModel::declare_task(int t, const std::shared_ptr<Module>& part) {
  MT_CHECK(part != nullptr, "model", "declare_task: null module");
  MT_CHECK(t >= 0, "model", "declare_task: negative task index");
  if ((int)task_parts_.size() <= t) task_parts_.resize((size_t)t + 1);
  task_parts_[(size_t)t].modules.push_back(part);
}

void MultiTaskModel::declare_task(int t, const Tensor& parameter) {
  MT_CHECK(parameter.defined(), "model", "declare_task: undefined tensor");
  MT_CHECK(t >= 0, "model", "declare_task: negative task index");
  if ((int)task_parts_.size() <= t) task_parts_.resize((size_t)t + 1);
  task_parts_[(size_t)t].tensors.push_back(parameter);
}

// The model's parameters (full names) that belong to a part: the same tensors
// (same storage) as the part's modules' parameters and its single tensors.
NamedTensors MultiTaskModel::part_parameters(const Part& p) const {
  std::vector<const TensorImpl*> mine;
  for (const auto& m : p.modules)
    for (const Tensor& t : m->parameters()) mine.push_back(t.impl());
  for (const Tensor& t : p.tensors) mine.push_back(t.impl());
  NamedTensors out;
  for (const auto& [name, t] : named_parameters())
    for (const TensorImpl* id : mine)
      if (t.impl() == id) {
        out.emplace_back(name, t);
        break;
      }
  return out;
}

NamedTensors MultiTaskModel::shared_parameters() const { return part_parameters(shared_part_); }

NamedTensors MultiTaskModel::task_parameters(int t) const {
  if (t < 0 || t >= (int)task_parts_.size()) return {};
  return part_parameters(task_parts_[(size_t)t]);
}

void MultiTaskModel::check_parameter_split() const {
  const std::string who = "model '" + arch() + "'";
  MT_CHECK(num_tasks() >= 1, "model", who + " has no task");
  for (const Task& t : tasks_) t.validate();
  std::map<const TensorImpl*, std::string> owner;  // tensor -> "shared" | "task 'name'"
  auto claim = [&](const NamedTensors& part, const std::string& what) {
    for (const auto& [name, t] : part) {
      auto [it, fresh] = owner.emplace(t.impl(), what);
      MT_CHECK(fresh, "model", who + ": parameter '" + name + "' is declared both " + it->second + " and " + what);
    }
  };
  const NamedTensors sh = shared_parameters();
  MT_CHECK(!sh.empty(), "model",
           who + " declares no shared parameters (call declare_shared() with the trunk in its constructor)");
  claim(sh, "shared");
  for (int t = 0; t < num_tasks(); t++) {
    const NamedTensors tp = task_parameters(t);
    const std::string what = "of task '" + tasks_[(size_t)t].name + "'";
    MT_CHECK(!tp.empty(), "model",
             who + " declares no parameters " + what + " (call declare_task(" + std::to_string(t) +
                 ", head) in its constructor)");
    claim(tp, what);
  }
  MT_CHECK((int)task_parts_.size() <= num_tasks(), "model",
           who + " declares parameters for task " + std::to_string(task_parts_.size() - 1) + " but has " +
               std::to_string(num_tasks()) + " tasks");
  for (const auto& [name, t] : named_parameters())
    MT_CHECK(owner.count(t.impl()), "model",
             who + ": parameter '" + name + "' is neither shared nor of any task (declare it)");
}

Tensor MultiTaskModel::last_shared_weight() const {
  const NamedTensors sh = shared_parameters();
  for (auto it = sh.rbegin(); it != sh.rend(); ++it)
    if (it->second.dim() >= 2) return it->second;
  throw Error("model '" + arch() + "': no shared weight with two or more dimensions (GradNorm needs one)");
}

// ---- losses and metrics ----------------------------------------------------------

namespace {

// The regression target as a tensor of the output's shape.
Tensor value_tensor(const Task& task, const Tensor& out, const TaskTarget& y) {
  MT_CHECK(out.dim() >= 1 && (int64_t)y.value.size() == out.numel() &&
               out.numel() == (int64_t)out.size(0) * task.outputs,
           "task_loss",
           "regression task '" + task.name + "': output " + shape_str(out.shape()) + " and " +
               std::to_string(y.value.size()) + " target values (" + std::to_string(task.outputs) +
               " per sample) do not match");
  return Tensor::from(out.shape(), y.value);
}

void check_labels(const Task& task, const Tensor& out, const TaskTarget& y) {
  MT_CHECK(out.dim() >= 1 && (int64_t)y.label.size() == out.size(0), "task_loss",
           "classification task '" + task.name + "': output " + shape_str(out.shape()) + " for " +
               std::to_string(y.label.size()) + " labels");
}

}  // namespace

Tensor MultiTaskModel::task_loss(int t, const Tensor& out, const TaskTarget& y) const {
  const Task& task = tasks_.at((size_t)t);
  switch (task.loss) {
    case TaskLoss::LogProbNll: check_labels(task, out, y); return nll_loss(out, y.label);
    case TaskLoss::CrossEntropy: check_labels(task, out, y); return cross_entropy(out, y.label);
    case TaskLoss::BinaryLogits: {
      check_labels(task, out, y);
      MT_CHECK(out.numel() == (int64_t)y.label.size(), "task_loss",
               "binary task '" + task.name + "' expects one logit per sample, got " + shape_str(out.shape()));
      Tensor target = Tensor::empty(out.shape());
      for (size_t i = 0; i < y.label.size(); i++) target.data()[i] = (float)y.label[i];
      return bce_with_logits(out, target);
    }
    case TaskLoss::MSE: return mse_loss(out, value_tensor(task, out, y));
    case TaskLoss::L1: return mean(abs(out - value_tensor(task, out, y)));
    case TaskLoss::Custom: {
      MT_CHECK((bool)task.custom_loss, "task_loss", "task '" + task.name + "': loss custom without a function");
      Tensor L = task.custom_loss(out, y);
      MT_CHECK(L.defined() && L.numel() == 1, "task_loss",
               "task '" + task.name + "': the custom loss must return one value, got " +
                   (L.defined() ? shape_str(L.shape()) : std::string("nothing")));
      return L.dim() == 0 ? L : L.reshape({});
    }
  }
  throw Error("task_loss: unknown loss kind");
}

double MultiTaskModel::metric_sum(int t, const Tensor& out, const TaskTarget& y) const {
  const Task& task = tasks_.at((size_t)t);
  const float* o = out.data();
  if (task.is_regression()) {
    const int k = task.outputs;
    MT_CHECK((int64_t)y.value.size() == out.numel() && out.numel() % k == 0, "metric",
             "regression task '" + task.name + "': " + std::to_string(out.numel()) + " outputs for " +
                 std::to_string(y.value.size()) + " target values");
    const int64_t n = out.numel() / k;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
      double e = 0;
      for (int j = 0; j < k; j++) e += std::fabs((double)o[i * k + j] - (double)y.value[(size_t)(i * k + j)]);
      s += e / k;
    }
    return s;
  }
  check_labels(task, out, y);
  int64_t c = 0;
  if (task.loss == TaskLoss::BinaryLogits || (out.numel() == (int64_t)y.label.size() && task.num_classes == 2 &&
                                              (out.dim() == 1 || out.size(1) == 1))) {
    for (size_t i = 0; i < y.label.size(); i++) c += (o[i] > 0) == (y.label[i] == 1);
    return (double)c;
  }
  const int C = out.size(1);
  for (size_t i = 0; i < y.label.size(); i++) {
    int best = 0;
    for (int k = 1; k < C; k++)
      if (o[i * C + k] > o[i * C + best]) best = k;
    c += best == y.label[i];
  }
  return (double)c;
}

}  // namespace mt
