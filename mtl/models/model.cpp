#include "mtl/models/model.h"

#include "engine/error.h"
#include "engine/ops.h"

namespace mt {

std::vector<std::string> MultiTaskModel::task_names() const {
  std::vector<std::string> n;
  for (const Task& t : tasks_) n.push_back(t.name);
  return n;
}

static NamedTensors with_prefix(const NamedTensors& all, const std::string& prefix) {
  NamedTensors out;
  for (const auto& [name, t] : all)
    if (name.compare(0, prefix.size(), prefix) == 0) out.emplace_back(name, t);
  return out;
}

NamedTensors MultiTaskModel::shared_parameters() const { return with_prefix(named_parameters(), "trunk."); }

NamedTensors MultiTaskModel::task_parameters(int t) const {
  return with_prefix(named_parameters(), "heads." + std::to_string(t) + ".");
}

Tensor MultiTaskModel::task_loss(int t, const Tensor& out, const std::vector<int32_t>& y) const {
  switch (tasks_.at(t).loss) {
    case TaskLoss::LogProbNll: return nll_loss(out, y);
    case TaskLoss::CrossEntropy: return cross_entropy(out, y);
    case TaskLoss::BinaryLogits: {
      Tensor target = Tensor::empty(out.shape());
      MT_CHECK(out.numel() == (int64_t)y.size(), "task_loss",
            "binary task '" + tasks_[t].name + "' expects one logit per sample, got " + shape_str(out.shape()));
      for (size_t i = 0; i < y.size(); i++) target.data()[i] = (float)y[i];
      return bce_with_logits(out, target);
    }
  }
  throw Error("task_loss: unknown loss kind");
}

int64_t MultiTaskModel::correct(int t, const Tensor& out, const std::vector<int32_t>& y) const {
  int64_t c = 0;
  const float* o = out.data();
  if (tasks_.at(t).loss == TaskLoss::BinaryLogits) {
    for (size_t i = 0; i < y.size(); i++) c += (o[i] > 0) == (y[i] == 1);
    return c;
  }
  const int C = out.size(1);
  for (size_t i = 0; i < y.size(); i++) {
    int best = 0;
    for (int k = 1; k < C; k++)
      if (o[i * C + k] > o[i * C + best]) best = k;
    c += best == y[i];
  }
  return c;
}

}  // namespace mt
