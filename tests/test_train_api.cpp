// The training loop as a library (mtl/train/trainer.h): the user's own model, tasks
// (classification, regression, a custom loss) and data through mt::train; the model's
// declared parameter split and its errors; regression losses and metrics; resume; the
// model file's metadata and load_model.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/layers.h"
#include "mtl/methods/method.h"
#include "mtl/models/model_file.h"
#include "mtl/models/multilenet.h"
#include "mtl/train/trainer.h"
#include "tests/cli_util.h"
#include "tests/gradcheck.h"

using namespace mt;
using mt::testing::cli::read_file;
using mt::testing::cli::TempDir;

namespace {

// A user's model: trunk "enc" (flatten, linear 64 -> 16, tanh), one linear head per task
// under "out_<name>" -- names that say nothing about the split, which is declared.
// `mistake` breaks the declaration on purpose.
enum class Mistake { None, NoShared, NoTask1, Overlap, Undeclared };

class TinyNet : public MultiTaskModel {
 public:
  TinyNet(const std::vector<Task>& tasks, Mistake mistake = Mistake::None) {
    tasks_ = tasks;
    enc = register_module("enc", std::make_shared<Sequential>());
    enc->add(std::make_shared<Flatten>()).add(std::make_shared<Linear>(64, 16)).add(std::make_shared<Tanh>());
    for (const Task& t : tasks) outs.push_back(register_module("out_" + t.name, std::make_shared<Linear>(16, t.output_size())));
    if (mistake == Mistake::Undeclared) extra = register_parameter("scale", Tensor::ones({1}));
    if (mistake != Mistake::NoShared) declare_shared(enc);
    for (size_t t = 0; t < outs.size(); t++)
      if (!(mistake == Mistake::NoTask1 && t == 1)) declare_task((int)t, outs[t]);
    if (mistake == Mistake::Overlap) declare_task(0, enc);
  }
  Tensor shared(const Tensor& x) override { return enc->forward(x); }
  Tensor head(int t, const Tensor& z, const Tensor&) override { return outs[(size_t)t]->forward(z); }
  std::string arch() const override { return "tinynet"; }
  std::shared_ptr<Sequential> enc;
  std::vector<std::shared_ptr<Linear>> outs;
  Tensor extra;
};

// n images of 1x8x8: task "cls" (3 classes, by the brightest third of the image), task
// "reg" (2 numbers: the mean of the top and of the bottom half, standardised).
MultiImageSet toy_set(int n, uint64_t seed) {
  Rng r(seed);
  MultiImageSet s;
  s.n = n, s.c = 1, s.h = 8, s.w = 8;
  s.task_names = {"cls", "reg"};
  s.num_classes = {3, 0};
  s.labels.assign(2, {});
  s.values.assign(2, {});
  s.mean = 0.5f, s.std = 0.25f;
  for (int i = 0; i < n; i++) {
    const int k = (int)r.below(3);
    double top = 0, bottom = 0;
    for (int p = 0; p < 64; p++) {
      const int band = p / 22;  // three bands of rows
      const uint8_t v = (uint8_t)(band == k ? 180 + r.below(60) : r.below(100));
      s.pixels.push_back(v);
      (p < 32 ? top : bottom) += v / 255.0 / 32;
    }
    s.labels[0].push_back(k);
    s.values[1].push_back((float)((top - 0.4) / 0.2));
    s.values[1].push_back((float)((bottom - 0.4) / 0.2));
  }
  return s;
}

std::vector<Task> toy_tasks() { return {Task::classification("cls", 3, TaskLoss::CrossEntropy), Task::regression("reg", 2)}; }

TrainData toy_data() {
  TrainData d;
  d.train = toy_set(192, 1);
  d.test = toy_set(64, 2);
  return d;
}

TrainConfig toy_config(const std::string& out) {
  TrainConfig c;
  c.method = "mgda-ub";
  c.epochs = 4;
  c.batch = 32;
  c.optimizer = "adam";
  c.lr = 0.01;
  c.threads = 1;
  c.val = 32;
  c.out = out;
  return c;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("train api: the user's model with a regression task trains, writes its files and resumes exactly") {
  TempDir tmp("/tmp/mtl-api-");
  const TrainData data = toy_data();
  auto model = [] { return std::make_shared<TinyNet>(toy_tasks()); };
  const TrainResult full = train(model, data, toy_config((tmp / "full").string()));
  REQUIRE(full.finished);
  REQUIRE(full.epochs.size() == 4);
  CHECK(full.info.metrics == std::vector<std::string>{"acc", "mae"});
  // the tasks are learned: accuracy up from chance, the regression error down
  CHECK(full.epochs.back().test_metric[0] > 0.6);
  CHECK(full.epochs.back().test_metric[1] < full.epochs.front().test_metric[1]);
  CHECK(full.epochs.back().train_loss[1] < full.epochs.front().train_loss[1]);
  // metrics.csv names each task's metric; MGDA-UB's solver columns are there
  const std::string header = mt::testing::cli::lines_of(read_file(tmp / "full" / "metrics.csv"))[0];
  for (const char* col : {"test_acc_cls", "test_mae_reg", "val_mae_reg", "train_loss_reg", "weight_reg",
                          "solver_iterations", "solver_gap_max", "best"})
    CHECK_MESSAGE(header.find(col) != std::string::npos, col);
  // selection by the mean validation loss (a task is a regression)
  CHECK(full.best_criterion == "val_loss");
  const nlohmann::json result = nlohmann::json::parse(read_file(tmp / "full" / "result.json"));
  CHECK(result["metrics"] == nlohmann::json::array({"acc", "mae"}));
  // the min-norm solver for K >= 3 defaults to Wolfe's (exact, with a certificate)
  CHECK(nlohmann::json::parse(read_file(tmp / "full" / "config.json"))["solver"] == "wolfe");

  // stopped after epoch 2, then resumed: the same numbers and the same best model
  TrainConfig part = toy_config((tmp / "part").string());
  part.stop_after = 2;
  const TrainResult first = train(model, data, part);
  CHECK_FALSE(first.finished);
  part.stop_after = 0;
  part.resume = first.checkpoint_path;
  const TrainResult rest = train(model, data, part);
  REQUIRE(rest.finished);
  auto strip = [](const std::string& csv) {  // every cell but the timings
    std::string out;
    for (const auto& line : mt::testing::cli::lines_of(csv)) {
      auto c = mt::testing::cli::cells(line);
      c.erase(c.end() - 3, c.end() - 1);  // train_samples_per_s, epoch_s (best is last)
      for (const auto& v : c) out += v + ",";
      out += "\n";
    }
    return out;
  };
  CHECK(strip(read_file(tmp / "full" / "metrics.csv")) == strip(read_file(tmp / "part" / "metrics.csv")));
  CHECK(read_file(tmp / "full" / "best.safetensors") == read_file(tmp / "part" / "best.safetensors"));
  CHECK(read_file(tmp / "full" / "last.safetensors") == read_file(tmp / "part" / "last.safetensors"));
}

TEST_CASE("train api: a model whose parameter split is wrong is refused, naming the problem") {
  TempDir tmp("/tmp/mtl-api-");
  const TrainData data = toy_data();
  auto run = [&](Mistake m) {
    return message_of([&] {
      train([m] { return std::make_shared<TinyNet>(toy_tasks(), m); }, data, toy_config((tmp / "x").string()));
    });
  };
  CHECK(run(Mistake::NoShared) ==
        "model: model 'tinynet' declares no shared parameters (call declare_shared() with the trunk in its constructor)");
  CHECK(run(Mistake::NoTask1) ==
        "model: model 'tinynet' declares no parameters of task 'reg' (call declare_task(1, head) in its constructor)");
  CHECK(run(Mistake::Overlap).find("parameter 'enc.1.weight' is declared both shared and of task 'cls'") !=
        std::string::npos);
  CHECK(run(Mistake::Undeclared) ==
        "model: model 'tinynet': parameter 'scale' is neither shared nor of any task (declare it)");
  CHECK_FALSE(std::filesystem::exists(tmp / "x"));  // nothing written
  // the split as declared, with the full names
  TinyNet ok(toy_tasks());
  CHECK(ok.shared_parameters().size() == 2);
  CHECK(ok.shared_parameters()[0].first == "enc.1.weight");
  CHECK(ok.task_parameters(1).size() == 2);
  CHECK(ok.task_parameters(1)[0].first == "out_reg.weight");
  CHECK(ok.last_shared_weight().same(ok.shared_parameters()[0].second));
}

TEST_CASE("train api: mgda-ub scales each declared head by alpha_t, whatever the names") {
  TinyNet m(toy_tasks());
  const MultiImageSet s = toy_set(16, 3);
  Tensor x = Tensor::empty({16, 1, 8, 8});
  for (int64_t i = 0; i < x.numel(); i++) x.data()[i] = (s.pixels[(size_t)i] / 255.f - 0.5f) / 0.25f;
  const Targets y = {s.labels[0], TaskTarget::values(s.values[1])};
  // head t's own gradient of L_t
  std::vector<std::vector<float>> own;
  for (int t = 0; t < 2; t++) {
    m.zero_grad();
    backward(m.task_loss(t, m.head(t, m.shared(x), x), y[t]));
    own.push_back(m.outs[(size_t)t]->weight.grad().to_vector());
  }
  m.zero_grad();
  MethodOptions o;
  const StepStats st = make_method("mgda-ub", 2, o)->compute_gradients(m, x, y);
  REQUIRE(st.weight.size() == 2);
  CHECK(st.solver);
  CHECK(st.solver_gap >= 0);
  for (int t = 0; t < 2; t++) {
    const std::vector<float> g = m.outs[(size_t)t]->weight.grad().to_vector();
    for (size_t i = 0; i < g.size(); i += 7) CHECK(g[i] == doctest::Approx(st.weight[t] * own[t][i]).epsilon(1e-5));
  }
}

TEST_CASE("tasks: regression losses and the MAE metric; a custom loss; bad task settings") {
  Rng r(4);
  Tensor out = Tensor::randn({5, 2}, r);
  out.requires_grad_();
  std::vector<float> v(10);
  for (auto& e : v) e = r.uniform() * 2 - 1;
  struct Model : MultiTaskModel {
    explicit Model(std::vector<Task> t) { tasks_ = std::move(t); }
    Tensor shared(const Tensor& x) override { return x; }
    Tensor head(int, const Tensor& z, const Tensor&) override { return z; }
    std::string arch() const override { return "m"; }
  };
  const TaskTarget y = TaskTarget::values(v);
  auto mean_of = [&](auto f) {
    double s = 0;
    for (int i = 0; i < 10; i++) s += f((double)out.data()[i] - v[(size_t)i]);
    return s / 10;
  };
  Model mse({Task::regression("a", 2, TaskLoss::MSE)}), l1({Task::regression("a", 2, TaskLoss::L1)});
  CHECK(mse.task_loss(0, out, y).item() == doctest::Approx(mean_of([](double e) { return e * e; })).epsilon(1e-5));
  CHECK(l1.task_loss(0, out, y).item() == doctest::Approx(mean_of([](double e) { return std::fabs(e); })).epsilon(1e-5));
  // MAE per sample averaged over its outputs, summed over samples
  CHECK(mse.metric_sum(0, out, y) / 5 == doctest::Approx(mean_of([](double e) { return std::fabs(e); })).epsilon(1e-6));
  // gradients by finite differences
  for (Model* m : {&mse, &l1})
    mt::testing::gradcheck([&](const std::vector<Tensor>& in) { return m->task_loss(0, in[0], y); }, {out});
  // a custom loss: sum of squares / 2, through the same task_loss
  Model custom({Task::custom("a", TaskKind::Regression, 2, [](const Tensor& o, const TaskTarget& t) {
    return sum(square(o - Tensor::from(o.shape(), t.value))) * 0.5f;
  })});
  CHECK(custom.task_loss(0, out, y).item() == doctest::Approx(5 * mean_of([](double e) { return e * e; })).epsilon(1e-5));
  // bad settings
  CHECK(message_of([] { Task::regression("r", 1, TaskLoss::CrossEntropy).validate(); })
            .find("a regression task takes loss mse, l1 or custom") != std::string::npos);
  CHECK(message_of([] { Task::classification("c", 3, TaskLoss::MSE).validate(); })
            .find("a classification task takes loss") != std::string::npos);
  CHECK(message_of([] { Task::classification("c", 3, TaskLoss::BinaryLogits).validate(); })
            .find("binary-logits needs 2 classes") != std::string::npos);
  CHECK(message_of([] { Task::custom("c", TaskKind::Classification, 3, nullptr).validate(); })
            .find("loss custom without a loss function") != std::string::npos);
  CHECK(message_of([&] { mse.task_loss(0, out, TaskTarget::values({1, 2, 3})); }).find("do not match") !=
        std::string::npos);
}

TEST_CASE("train api: data that does not match the model's tasks is refused") {
  TempDir tmp("/tmp/mtl-api-");
  TrainData data = toy_data();
  const std::vector<Task> three_outputs = {Task::classification("cls", 3, TaskLoss::CrossEntropy),
                                           Task::regression("reg", 3)};
  CHECK(message_of([&] {
          train([&] { return std::make_shared<TinyNet>(three_outputs); }, data, toy_config((tmp / "x").string()));
        }) == "regression task 'reg' has 3 outputs in the model, 2 values per image in the training set");
  const std::vector<Task> renamed = {Task::classification("kind", 3, TaskLoss::CrossEntropy), Task::regression("reg", 2)};
  CHECK(message_of([&] {
          train([&] { return std::make_shared<TinyNet>(renamed); }, data, toy_config((tmp / "x").string()));
        }) == "the training set's tasks (cls, reg) are not the model's (kind, reg)");
  data.train.values[1][3] = NAN;
  CHECK(message_of([&] {
          train([] { return std::make_shared<TinyNet>(toy_tasks()); }, data, toy_config((tmp / "x").string()));
        }) == "the training set: regression task 'reg' has a non-finite value at index 3");
}

TEST_CASE("model files: metadata round trip and load_model rebuilds a built-in model with a regression head") {
  TempDir tmp("/tmp/mtl-api-");
  manual_seed(3);
  const std::vector<Task> tasks = {{"digit", 10}, Task::regression("ink", 1, TaskLoss::L1)};
  MultiLeNet m(tasks, {1, 28, 28});
  m.eval();
  const std::string path = (tmp / "m.safetensors").string();
  save_module(path, m, model_metadata(m, {1, 28, 28}, 0.25f, 0.5f));
  const LoadedModel l = load_model(path);
  CHECK(l.info.architecture == "multilenet");
  CHECK(l.info.input_mean == 0.25f);
  CHECK(l.info.input_std == 0.5f);
  REQUIRE(l.info.tasks.size() == 2);
  CHECK(l.info.tasks[1].is_regression());
  CHECK(l.info.tasks[1].loss == TaskLoss::L1);
  CHECK(l.info.tasks[0].num_classes == 10);
  Rng r(1);
  Tensor x = Tensor::randn({3, 1, 28, 28}, r);
  NoGrad ng;
  for (int t = 0; t < 2; t++)
    CHECK(l.model->head(t, l.model->shared(x), x).to_vector() == m.head(t, m.shared(x), x).to_vector());
  // a file from before task kinds: classification by the architecture's rule, normalisation by the dataset
  const ModelInfo old = read_model_info({{"architecture", "multilenet"}, {"tasks", "left,right"}, {"classes", "10,10"},
                                         {"input_shape", "1,28,28"}, {"dataset", "multimnist"}},
                                        "old.safetensors");
  CHECK(old.tasks.size() == 2);
  CHECK(old.tasks[0].loss == TaskLoss::LogProbNll);
  CHECK(old.input_mean == doctest::Approx(0.1307));
  // errors name the file and the entry
  CHECK(message_of([] { read_model_info({{"architecture", "nope"}}, "f.safetensors"); })
            .find("f.safetensors: architecture 'nope' is not a model this engine knows") != std::string::npos);
  CHECK(message_of([] {
          read_model_info({{"architecture", "multilenet"}, {"tasks", "a,b"}, {"classes", "10"}}, "f.safetensors");
        }) == "f.safetensors: metadata 'classes' has 1 entries for 2 tasks");
}
