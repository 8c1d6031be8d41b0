// MDMTN and HPS (mtl/models/mdmtn.h): shapes, the trunk/heads parameter split, alpha's start,
// finite outputs, the layer trace and LSUV initialisation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "mtl/models/mdmtn.h"
#include "mtl/sparsity/sparsity.h"

using namespace mt;

namespace {

const std::vector<Task> kTasks = {{"left", 10}, {"right", 10}};

std::map<std::string, Shape> shapes(const MultiTaskModel& m) {
  std::map<std::string, Shape> s;
  for (const auto& [n, p] : m.named_parameters()) s[n] = p.shape();
  return s;
}

bool all_finite(const Tensor& t) {
  for (int64_t i = 0; i < t.numel(); i++)
    if (!std::isfinite(t.data()[i])) return false;
  return true;
}

}  // namespace

TEST_CASE("mdmtn: MultiMNIST shapes, parameter split and alpha = (1, 0)") {
  manual_seed(1);
  auto m = make_model("mdmtn", kTasks, {1, 28, 28});
  CHECK(m->arch() == "mdmtn");
  auto s = shapes(*m);
  CHECK(s.at("trunk.conv1.weight") == Shape{10, 1, 5, 5});
  CHECK(s.at("trunk.conv2.weight") == Shape{20, 10, 5, 5});
  CHECK(s.at("trunk.fc.weight") == Shape{50, 320});
  for (std::string t : {"0", "1"}) {
    const std::string h = "heads." + t + ".";
    CHECK(s.at(h + "alpha") == Shape{2});
    CHECK(s.at(h + "monitor.conv.weight") == Shape{20, 1, 5, 5});
    CHECK(s.at(h + "monitor.fc.weight") == Shape{50, 2880});
    CHECK(s.at(h + "out.weight") == Shape{10, 50});
    CHECK(s.at(h + "out.bias") == Shape{10});
  }
  // every parameter is either shared or belongs to exactly one task
  size_t split = m->shared_parameters().size() + m->task_parameters(0).size() + m->task_parameters(1).size();
  CHECK(split == m->named_parameters().size());
  int64_t shared = 0;
  for (const auto& [n, p] : m->shared_parameters()) shared += p.numel();
  CHECK(shared == 260 + 5020 + 16050);
  int64_t task0 = 0;
  for (const auto& [n, p] : m->task_parameters(0)) task0 += p.numel();
  CHECK(task0 == 2 + 520 + (2880 * 50 + 50) + 510);
  auto* md = dynamic_cast<Mdmtn*>(m.get());
  REQUIRE(md);
  CHECK(md->alpha(0) == std::vector<double>{1.0, 0.0});
  CHECK(md->alpha(1) == std::vector<double>{1.0, 0.0});
  CHECK(m->last_shared_weight().same(md->trunk->fc->weight));
}

TEST_CASE("mdmtn: outputs are log-probabilities; with alpha = (1, 0) the monitor does not change them") {
  manual_seed(2);
  auto m = make_model("mdmtn", kTasks, {1, 28, 28});
  Rng r(3);
  Tensor x = Tensor::randn({4, 1, 28, 28}, r);
  NoGrad ng;
  Tensor z = m->shared(x);
  CHECK(z.shape() == Shape{4, 50});
  Tensor o = m->head(1, z, x);
  CHECK(o.shape() == Shape{4, 10});
  REQUIRE(all_finite(o));
  for (int i = 0; i < 4; i++) {
    double s = 0;
    for (int c = 0; c < 10; c++) s += std::exp(o.data()[i * 10 + c]);
    CHECK(s == doctest::Approx(1.0).epsilon(1e-5));
  }
  auto* md = dynamic_cast<Mdmtn*>(m.get());
  Tensor before = o.clone();
  Tensor w = md->head_list()[1]->monitor->fc->weight;
  for (int64_t i = 0; i < w.numel(); i++) w.data()[i] += 0.5f;
  Tensor after = m->head(1, m->shared(x), x);
  for (int64_t i = 0; i < after.numel(); i++) CHECK(after.data()[i] == before.data()[i]);
}

TEST_CASE("mdmtn: the gradient reaches alpha, the monitor and the trunk") {
  manual_seed(4);
  auto m = make_model("mdmtn", kTasks, {1, 28, 28});
  Rng r(5);
  Tensor x = Tensor::randn({3, 1, 28, 28}, r);
  Tensor z = m->shared(x);
  Tensor L = m->task_loss(0, m->head(0, z, x), {1, 2, 3});
  backward(L);
  auto* md = dynamic_cast<Mdmtn*>(m.get());
  Tensor ga = md->head_list()[0]->alpha.grad();
  REQUIRE(ga.defined());
  CHECK(ga.data()[0] != 0.f);
  CHECK(ga.data()[1] != 0.f);  // alpha_t1 = 0 still gets a gradient
  CHECK(md->trunk->conv1->weight.grad().defined());
  // the monitor's weights get 0 through alpha_t1 = 0, but a defined gradient
  CHECK(md->head_list()[0]->monitor->fc->weight.grad().defined());
  // task 1's head is untouched by task 0's loss
  CHECK(!md->head_list()[1]->out->weight.grad().defined());
}

TEST_CASE("hps: the trunk with one fc 50->10 per task") {
  manual_seed(6);
  auto m = make_model("hps", kTasks, {1, 28, 28});
  CHECK(m->arch() == "hps");
  auto s = shapes(*m);
  CHECK(s.size() == 6 + 4);
  CHECK(s.at("heads.0.out.weight") == Shape{10, 50});
  CHECK(s.count("heads.0.alpha") == 0);
  CHECK(m->num_parameters() == 260 + 5020 + 16050 + 2 * 510);
  Rng r(7);
  Tensor x = Tensor::randn({2, 1, 28, 28}, r);
  NoGrad ng;
  Tensor o = m->head(0, m->shared(x), x);
  CHECK(o.shape() == Shape{2, 10});
  CHECK(all_finite(o));
}

TEST_CASE("mdmtn-cifar / hps-cifar: shapes with batch norm, on a 2x3x32x32 batch") {
  manual_seed(8);
  for (const std::string arch : {"mdmtn-cifar", "hps-cifar"}) {
    CAPTURE(arch);
    auto m = make_model(arch, kTasks, {3, 32, 32});
    CHECK(m->arch() == arch);
    auto s = shapes(*m);
    CHECK(s.at("trunk.conv1.weight") == Shape{16, 3, 3, 3});
    CHECK(s.at("trunk.bn1.weight") == Shape{16});
    CHECK(s.at("trunk.conv2.weight") == Shape{32, 16, 3, 3});
    CHECK(s.at("trunk.bn2.weight") == Shape{32});
    CHECK(s.at("trunk.fc.weight") == Shape{32, 1152});  // 32 * 6 * 6
    CHECK(s.at("heads.1.out.weight") == Shape{10, 32});
    if (arch == "mdmtn-cifar") {
      CHECK(s.at("heads.0.monitor.conv.weight") == Shape{32, 3, 3, 3});
      CHECK(s.at("heads.0.monitor.bn.weight") == Shape{32});
      CHECK(s.at("heads.0.monitor.fc.weight") == Shape{32, 7200});  // 32 * 15 * 15
    }
    Rng r(9);
    Tensor x = Tensor::randn({2, 3, 32, 32}, r);
    Tensor z = m->shared(x);
    CHECK(z.shape() == Shape{2, 32});
    for (int t = 0; t < 2; t++) {
      Tensor o = m->head(t, z, x);
      CHECK(o.shape() == Shape{2, 10});
      CHECK(all_finite(o));
    }
  }
}

TEST_CASE("mdmtn: registry, task kinds and bad inputs") {
  const auto& names = model_names();
  for (const char* n : {"mdmtn", "hps", "mdmtn-cifar", "hps-cifar"})
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
  // logits for CrossEntropy tasks
  manual_seed(10);
  auto m = make_model("hps", {{"a", 4, TaskLoss::CrossEntropy}}, {1, 28, 28});
  Rng r(11);
  Tensor x = Tensor::randn({2, 1, 28, 28}, r);
  Tensor o = m->head(0, m->shared(x), x);
  CHECK(o.shape() == Shape{2, 4});
  double s = 0;
  for (int c = 0; c < 4; c++) s += std::exp(o.data()[c]);
  CHECK(std::fabs(s - 1.0) > 1e-3);  // not log-probabilities
  CHECK_THROWS_WITH_AS(make_model("mdmtn", kTasks, {1, 10, 10}), doctest::Contains("too small"), Error);
  CHECK_THROWS_WITH_AS(make_model("mdmtn", {}, {1, 28, 28}), doctest::Contains("at least one task"), Error);
}

TEST_CASE("mdmtn: the trace records every Conv2d/Linear input in execution order") {
  manual_seed(12);
  auto m = make_model("mdmtn", kTasks, {1, 28, 28});
  auto* tr = dynamic_cast<LayerTracer*>(m.get());
  REQUIRE(tr);
  CHECK(tr->input_chw() == Shape{1, 28, 28});
  Rng r(13);
  Tensor x = Tensor::randn({2, 1, 28, 28}, r);
  NoGrad ng;
  auto t = tr->trace(x);
  std::vector<std::string> names;
  for (const auto& l : t) names.push_back(l.name);
  CHECK(names == std::vector<std::string>{"trunk.conv1", "trunk.conv2", "trunk.fc", "heads.0.monitor.conv",
                                          "heads.0.monitor.fc", "heads.0.out", "heads.1.monitor.conv",
                                          "heads.1.monitor.fc", "heads.1.out"});
  CHECK(t[0].input.same(x));
  CHECK(t[2].input.shape() == Shape{2, 320});
  CHECK(t[4].input.shape() == Shape{2, 2880});
  CHECK(t[5].input.shape() == Shape{2, 50});
}

TEST_CASE("lsuv: every layer's output std ends within the tolerance of 1") {
  for (const std::string arch : {"mdmtn", "hps-cifar"}) {
    CAPTURE(arch);
    manual_seed(14);
    const Shape chw = arch == "mdmtn" ? Shape{1, 28, 28} : Shape{3, 32, 32};
    auto m = make_model(arch, kTasks, chw);
    Rng r(15);
    Shape bs = chw;
    bs.insert(bs.begin(), 16);
    Tensor x = Tensor::randn(bs, r);
    m->train();
    auto res = lsuv_init(*m, x);
    CHECK(m->is_training());  // mode restored
    CHECK(res.size() == (arch == "mdmtn" ? 9u : 5u));
    for (const auto& ns : res) {
      const auto& name = ns.first;  // (not a binding: C++17 lambdas, as in CAPTURE, cannot capture one)
      const auto s = ns.second;
      CAPTURE(name);
      CHECK(std::fabs(s - 1.0) <= 0.1);
    }
    // biases were zeroed by the orthonormal start
    auto* md = dynamic_cast<Mdmtn*>(m.get());
    for (int64_t i = 0; i < md->trunk->fc->bias.numel(); i++) CHECK(md->trunk->fc->bias.data()[i] == 0.f);
  }
  // a model without a trace is refused
  manual_seed(16);
  auto ml = make_model("multilenet", kTasks, {1, 28, 28});
  Rng r(17);
  CHECK_THROWS_WITH_AS(lsuv_init(*ml, Tensor::randn({2, 1, 28, 28}, r)), doctest::Contains("cannot trace"), Error);
}
