#include "mtl/models/multilenet.h"

#include "engine/error.h"
#include "engine/ops.h"

namespace mt {

// Spatial size after conv 5x5 (valid) then max-pool 2, twice: 28 -> 24 -> 12 -> 8 -> 4.
static int flat_features(const Shape& chw) {
  MT_CHECK(chw.size() == 3, "multilenet", "input must be C x H x W, got " + shape_str(chw));
  int h = chw[1], w = chw[2];
  h = (h - 4) / 2, w = (w - 4) / 2;
  h = (h - 4) / 2, w = (w - 4) / 2;
  MT_CHECK(h > 0 && w > 0, "multilenet", "input " + shape_str(chw) + " is too small (needs at least 12 x 12)");
  return 20 * h * w;
}

MultiLeNetTrunk::MultiLeNetTrunk(const Shape& input_chw, float dropout) {
  const int flat = flat_features(input_chw);
  conv1 = register_module("conv1", std::make_shared<Conv2d>(input_chw[0], 10, 5));
  conv2 = register_module("conv2", std::make_shared<Conv2d>(10, 20, 5));
  drop = register_module("drop", std::make_shared<Dropout2d>(dropout));
  fc = register_module("fc", std::make_shared<Linear>(flat, 50));
}

Tensor MultiLeNetTrunk::forward(const Tensor& x) {
  // max_pool2d_relu: relu(max_pool2d(.)) fused, the same bits in one pass
  Tensor h = max_pool2d_relu(conv1->forward(x), {2});
  h = max_pool2d_relu(drop->forward(conv2->forward(h)), {2});
  return relu(fc->forward(h.flatten(1)));
}

MultiLeNetHead::MultiLeNetHead(const Task& task, float dropout) : log_probs(task.loss == TaskLoss::LogProbNll) {
  fc1 = register_module("fc1", std::make_shared<Linear>(50, 50));
  drop = register_module("drop", std::make_shared<Dropout>(dropout));
  fc2 = register_module("fc2", std::make_shared<Linear>(50, task.output_size()));
}

Tensor MultiLeNetHead::forward(const Tensor& z) {
  Tensor o = fc2->forward(drop->forward(relu(fc1->forward(z))));
  return log_probs ? log_softmax(o) : o;
}

// Classification with log-softmax heads (the paper's), or regression (MSE / L1 / custom).
static void check_tasks(const std::vector<Task>& tasks, const char* model) {
  MT_CHECK(!tasks.empty(), model, "needs at least one task");
  for (const Task& t : tasks) {
    t.validate();
    MT_CHECK(t.is_regression() || t.loss == TaskLoss::LogProbNll || t.loss == TaskLoss::Custom, model,
             "task '" + t.name + "': classification heads end in log-softmax (loss nll), got " +
                 task_loss_name(t.loss));
  }
}

MultiLeNet::MultiLeNet(const std::vector<Task>& tasks, const Shape& input_chw) {
  check_tasks(tasks, "multilenet");
  tasks_ = tasks;
  trunk = register_module("trunk", std::make_shared<MultiLeNetTrunk>(input_chw));
  heads = register_module("heads", std::make_shared<ModuleList>());
  declare_shared(trunk);
  for (size_t t = 0; t < tasks.size(); t++) declare_task((int)t, heads->add(std::make_shared<MultiLeNetHead>(tasks[t])));
}

IndependentMultiLeNet::IndependentMultiLeNet(const std::vector<Task>& tasks, const Shape& input_chw) {
  check_tasks(tasks, "multilenet-stl");
  tasks_ = tasks;
  trunk = register_module("trunk", std::make_shared<ModuleList>());
  heads = register_module("heads", std::make_shared<ModuleList>());
  declare_shared(trunk);  // K trunks, each read by one head only: "shared" in name, independent in fact
  for (size_t t = 0; t < tasks.size(); t++) {
    trunk->add(std::make_shared<MultiLeNetTrunk>(input_chw));
    declare_task((int)t, heads->add(std::make_shared<MultiLeNetHead>(tasks[t])));
  }
}

Tensor IndependentMultiLeNet::shared(const Tensor& x) {
  std::vector<Tensor> zs;
  for (size_t t = 0; t < trunk->size(); t++) zs.push_back((*trunk)[t].forward(x));
  return concat(zs, 1);
}

Tensor IndependentMultiLeNet::head(int t, const Tensor& z, const Tensor&) {
  return (*heads)[t].forward(narrow(z, 1, 50 * t, 50));
}

Tensor IndependentMultiLeNet::last_shared_weight() const {
  return static_cast<MultiLeNetTrunk&>((*trunk)[0]).fc->weight;
}

}  // namespace mt
