// "Your own multi-task model" (README): a trunk and three heads of the user's own, on
// MNIST, with three tasks -- the digit (10 classes), its parity (2 classes) and the
// image's mean ink (a number, regression) -- trained with MGDA-UB through the
// library's training loop (mt::train), checkpointed after epoch 1, then resumed to
// epoch 2. Built by `make` (build/own_model), so it stays true.
//
//   build/own_model [DATA_DIR [OUT_DIR]]     (defaults: data, runs/own-model)
#include <cmath>
#include <cstdio>
#include <string>

#include "datasets/catalog.h"      // load_mnist
#include "datasets/multi_mnist.h"  // MultiImageSet, make_single, take_first
#include "engine/ops.h"
#include "layers/layers.h"
#include "mtl/train/trainer.h"     // mt::train, TrainConfig, TrainData

using namespace mt;

// Z = trunk(x): conv 1->8 5x5, max-pool 2 + ReLU, conv 8->16 5x5, max-pool 2 + ReLU, fc 256->64, ReLU.
class InkNet : public MultiTaskModel {
 public:
  explicit InkNet(const std::vector<Task>& tasks) {
    tasks_ = tasks;
    trunk = register_module("body", std::make_shared<Sequential>());
    trunk->add(std::make_shared<Conv2d>(1, 8, 5)).add(std::make_shared<MaxPool2d>(2)).add(std::make_shared<ReLU>());
    trunk->add(std::make_shared<Conv2d>(8, 16, 5)).add(std::make_shared<MaxPool2d>(2)).add(std::make_shared<ReLU>());
    trunk->add(std::make_shared<Flatten>()).add(std::make_shared<Linear>(16 * 4 * 4, 64)).add(std::make_shared<ReLU>());
    // one linear head per task, as wide as the task's output (10, 2 and 1)
    for (size_t t = 0; t < tasks.size(); t++)
      heads.push_back(register_module("task_" + tasks[t].name, std::make_shared<Linear>(64, tasks[t].output_size())));
    // The split the methods rely on: declared, whatever the names are.
    declare_shared(trunk);
    for (size_t t = 0; t < heads.size(); t++) declare_task((int)t, heads[t]);
  }
  Tensor shared(const Tensor& x) override { return trunk->forward(x); }
  Tensor head(int t, const Tensor& z, const Tensor&) override { return heads[(size_t)t]->forward(z); }
  std::string arch() const override { return "inknet"; }

  std::shared_ptr<Sequential> trunk;
  std::vector<std::shared_ptr<Linear>> heads;
};

// MNIST with three tasks: digit, parity (labels) and ink, the image's mean pixel value
// standardised as (ink - ink_mean) / ink_std (a regression target of unit scale, so its
// loss and gradients are of the size of the classification tasks').
MultiImageSet three_tasks(const LabeledImages& mnist, int n, float ink_mean, float ink_std) {
  MultiImageSet s = take_first(make_single(mnist, "digit"), n);
  s.task_names = {"digit", "parity", "ink"};
  s.num_classes = {10, 2, 0};  // 0: a regression task
  std::vector<int32_t> parity;
  std::vector<float> ink;
  for (int i = 0; i < s.n; i++) {
    parity.push_back(s.labels[0][(size_t)i] % 2);
    double sum = 0;
    for (size_t p = 0; p < s.image_size(); p++) sum += s.pixels[(size_t)i * s.image_size() + p];
    ink.push_back(((float)(sum / (255.0 * s.image_size())) - ink_mean) / ink_std);
  }
  s.labels = {s.labels[0], parity, {}};
  s.values = {{}, {}, ink};  // values[t]: n x outputs numbers of a regression task
  return s;
}

int main(int argc, char** argv) {
  const std::string data_dir = argc > 1 ? argv[1] : "data", out = argc > 2 ? argv[2] : "runs/own-model";
  try {
    const LabeledImages mnist_train = load_mnist(data_dir, true), mnist_test = load_mnist(data_dir, false);
    // the ink's mean and standard deviation over the training images
    double s1 = 0, s2 = 0;
    const int n = 12000, side = mnist_train.images.rows * mnist_train.images.cols;
    for (int i = 0; i < n; i++) {
      double v = 0;
      for (int p = 0; p < side; p++) v += mnist_train.images.pixels[(size_t)i * side + p];
      v /= 255.0 * side;
      s1 += v, s2 += v * v;
    }
    const float ink_mean = (float)(s1 / n), ink_std = (float)std::sqrt(s2 / n - (s1 / n) * (s1 / n));
    TrainData data;
    data.train = three_tasks(mnist_train, n, ink_mean, ink_std);
    data.test = three_tasks(mnist_test, 2000, ink_mean, ink_std);
    const std::vector<Task> tasks = {Task::classification("digit", 10, TaskLoss::CrossEntropy),
                                     Task::classification("parity", 2, TaskLoss::CrossEntropy),
                                     Task::regression("ink", 1, TaskLoss::MSE)};

    TrainConfig c;
    c.method = "mgda-ub";
    c.normalization = "l2";  // the min-norm solver on g_t / ||g_t|| (no task wins by a small gradient)
    c.epochs = 2;
    c.optimizer = "adam";
    c.lr = 1e-3;
    c.batch = 128;
    c.val = 2000;        // held out of the training images; selects best.safetensors
    c.out = out;
    c.force = true;      // replace an earlier run of this example
    c.stop_after = 1;    // stop after epoch 1 (its checkpoint is written) ...
    auto model = [&] { return std::make_shared<InkNet>(tasks); };
    TrainResult first = train(model, data, c);
    std::printf("epoch 1 done, checkpoint %s\n", first.checkpoint_path.c_str());

    c.stop_after = 0;    // ... and continue from it to epoch 2
    c.force = false;
    c.resume = first.checkpoint_path;
    TrainResult res = train(model, data, c);
    const EpochRecord& e = res.epochs.back();
    for (size_t t = 0; t < tasks.size(); t++)
      std::printf("epoch %d %-6s test %s %.4f  (loss %.4f, MGDA-UB weight %.3f)\n", e.epoch, tasks[t].name.c_str(),
                  tasks[t].metric(), e.test_metric[t], e.test_loss[t], e.weight[t]);
    std::printf("ink MAE %.4f standard deviations = %.4f of the mean pixel value in [0, 1]\n", e.test_metric[2],
                e.test_metric[2] * ink_std);
    std::printf("files: %s, %s\n", res.metrics_path.c_str(), res.best_path.c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "own_model: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
