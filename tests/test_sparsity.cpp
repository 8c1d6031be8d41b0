// Group sparsity (mtl/sparsity/sparsity.h): which tensors are grouped, f_0 and its gradient,
// GrOWL with the cap, the metrics on hand-pruned models, the prune mask and tying
// through optimizer steps.
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "mtl/models/mdmtn.h"
#include "mtl/methods/method.h"
#include "mtl/sparsity/owl_prox.h"
#include "mtl/sparsity/sparsity.h"
#include "optim/adam.h"
#include "tests/gradcheck.h"

using namespace mt;

namespace {

const std::vector<Task> kTasks = {{"left", 10}, {"right", 10}};

std::map<std::string, WeightGroups> by_name(const std::vector<WeightGroups>& gs) {
  std::map<std::string, WeightGroups> m;
  for (const auto& g : gs) m[g.name] = g;
  return m;
}

Tensor param(const MultiTaskModel& m, const std::string& name) {
  for (const auto& [n, p] : m.named_parameters())
    if (n == name) return p;
  FAIL("no parameter " << name);
  return Tensor();
}

// zero input unit j of a Linear weight [out, in] / filter o of a conv weight
// (sizes read once: Tensor::size builds its error message on every call)
void zero_column(Tensor w, int j) {
  const int out = w.size(0), in = w.size(1);
  for (int i = 0; i < out; i++) w.data()[i * in + j] = 0.f;
}
void zero_row(Tensor w, int o) {
  const int64_t n = w.numel() / w.size(0);
  for (int64_t k = 0; k < n; k++) w.data()[o * n + k] = 0.f;
}
bool column_zero(const Tensor& w, int j) {
  const int out = w.size(0), in = w.size(1);
  const float* d = w.data();
  for (int i = 0; i < out; i++)
    if (d[i * in + j] != 0.f) return false;
  return true;
}
bool row_zero(const Tensor& w, int o) {
  const int64_t n = w.numel() / w.size(0);
  const float* d = w.data();
  for (int64_t k = 0; k < n; k++)
    if (d[o * n + k] != 0.f) return false;
  return true;
}
// sum of |g| over the masked groups
double masked_grad_mass(const MultiTaskModel& m, const PruneMask& mask) {
  double s = 0;
  for (const auto& e : mask.entries()) {
    Tensor g = param(m, e.name).grad();
    if (!g.defined()) continue;
    const int64_t R = g.size(0), C = g.numel() / R;
    const float* d = g.data();
    for (int grp : e.groups)
      if (e.kind == GroupKind::Rows)
        for (int64_t k = 0; k < C; k++) s += std::fabs(d[grp * C + k]);
      else
        for (int64_t i = 0; i < R; i++) s += std::fabs(d[i * C + grp]);
  }
  return s;
}

// one loss over both tasks on a small random batch, backward
void loss_backward(MultiTaskModel& m, int n = 8, uint64_t seed = 3) {
  Rng r(seed);
  Tensor x = Tensor::randn({n, 1, 28, 28}, r);
  Targets y(2, std::vector<int32_t>(n));
  for (auto& yt : y)
    for (auto& v : yt.label) v = (int32_t)r.below(10);
  Tensor z = m.shared(x);
  auto L = task_losses(m, z, x, y);
  backward(L[0] + L[1]);
}

}  // namespace

TEST_CASE("sparsity groups: MDMTN regularises conv2 filters, trunk fc and monitor fc input units") {
  manual_seed(1);
  auto m = make_model("mdmtn", kTasks, {1, 28, 28});
  auto all = by_name(weight_groups(*m));
  CHECK(all.size() == 9);
  auto expect = [&](const std::string& n, GroupKind k, int groups, int size, bool reg) {
    CAPTURE(n);
    REQUIRE(all.count(n));
    CHECK(all[n].kind == k);
    CHECK(all[n].groups == groups);
    CHECK(all[n].group_size == size);
    CHECK(all[n].regularized == reg);
  };
  expect("trunk.conv1.weight", GroupKind::Rows, 10, 25, false);  // reads the image
  expect("trunk.conv2.weight", GroupKind::Rows, 20, 250, true);
  expect("trunk.fc.weight", GroupKind::Columns, 320, 50, true);
  for (std::string t : {"0", "1"}) {
    expect("heads." + t + ".monitor.conv.weight", GroupKind::Rows, 20, 25, false);  // reads the image
    expect("heads." + t + ".monitor.fc.weight", GroupKind::Columns, 2880, 50, true);
    expect("heads." + t + ".out.weight", GroupKind::Columns, 50, 10, false);  // output layer
  }
  CHECK(regularized_groups(*m).size() == 4);
  // Cifar sizes: the same rule (conv1 reads 3 channels)
  auto c = by_name(regularized_groups(*make_model("mdmtn-cifar", kTasks, {3, 32, 32})));
  CHECK(c.size() == 4);
  CHECK(c.count("trunk.conv2.weight"));
  CHECK(c.count("heads.1.monitor.fc.weight"));
  // a model without a trace: MultiLeNet's conv2, fc and the heads' fc1
  auto ml = by_name(regularized_groups(*make_model("multilenet", kTasks, {1, 28, 28})));
  CHECK(ml.size() == 4);
  CHECK(ml.count("trunk.conv2.weight"));
  CHECK(ml.count("trunk.fc.weight"));
  CHECK(ml.count("heads.0.fc1.weight"));
  CHECK(ml.count("heads.1.fc1.weight"));
}

TEST_CASE("group_norm_sum: the torch bench's objective, and its gradient") {
  manual_seed(2);
  auto m = make_model("mdmtn", kTasks, {1, 28, 28});
  // sum of filter norms of conv2 + column norms of trunk.fc and the monitors' fc
  double expect = 0;
  auto cols = [&](const Tensor& w) {
    const int R = w.size(0), C = w.size(1);
    const float* d = w.data();
    for (int j = 0; j < C; j++) {
      double s = 0;
      for (int i = 0; i < R; i++) s += (double)d[i * C + j] * d[i * C + j];
      expect += std::sqrt(s);
    }
  };
  const float* c2 = param(*m, "trunk.conv2.weight").data();
  for (int o = 0; o < 20; o++) {
    double s = 0;
    for (int k = 0; k < 250; k++) s += (double)c2[o * 250 + k] * c2[o * 250 + k];
    expect += std::sqrt(s);
  }
  cols(param(*m, "trunk.fc.weight"));
  cols(param(*m, "heads.0.monitor.fc.weight"));
  cols(param(*m, "heads.1.monitor.fc.weight"));
  Tensor f0 = group_norm_sum(*m);
  CHECK(f0.dim() == 0);
  CHECK(f0.item() == doctest::Approx(expect).epsilon(1e-6));
  CHECK(group_norm_sum_value(*m) == doctest::Approx(expect).epsilon(1e-12));
  // backward: dW = W_g / ||W_g|| on the grouped weights, nothing on the others
  backward(f0);
  Tensor g = param(*m, "trunk.fc.weight").grad();
  REQUIRE(g.defined());
  const Tensor w = param(*m, "trunk.fc.weight");
  double n0 = 0;
  for (int i = 0; i < 50; i++) n0 += (double)w.data()[i * 320] * w.data()[i * 320];
  CHECK(g.data()[7 * 320] == doctest::Approx(w.data()[7 * 320] / std::sqrt(n0)).epsilon(1e-5));
  CHECK(!param(*m, "trunk.conv1.weight").grad().defined());
  CHECK(!param(*m, "heads.0.out.weight").grad().defined());
}

TEST_CASE("group_l2_sum: finite differences for both groupings; zero groups get a zero subgradient") {
  Rng r(4);
  for (GroupKind kind : {GroupKind::Rows, GroupKind::Columns}) {
    Tensor W = testing::param({4, 6}, r);
    testing::gradcheck([kind](const std::vector<Tensor>& in) { return group_l2_sum(in[0], kind); }, {W}, 1e-3f,
                       1e-2);
  }
  Tensor C = testing::param({3, 2, 2, 2}, r);  // conv-shaped, filter groups
  testing::gradcheck([](const std::vector<Tensor>& in) { return group_l2_sum(in[0], GroupKind::Rows) * 2.f; }, {C},
                     1e-3f, 1e-2);
  Tensor Z = Tensor::from({2, 3}, {0, 1, 0, 0, 2, 0});  // column 0 and 2 zero
  Z.requires_grad_();
  Tensor s = group_l2_sum(Z, GroupKind::Columns);
  CHECK(s.item() == doctest::Approx(std::sqrt(5.0)));
  backward(s);
  std::vector<float> g = Z.grad().to_vector();
  CHECK(g[0] == 0.f);
  CHECK(g[2] == 0.f);
  CHECK(g[3] == 0.f);
  CHECK(g[5] == 0.f);
  CHECK(g[1] == doctest::Approx(1 / std::sqrt(5.0)));
  CHECK(g[4] == doctest::Approx(2 / std::sqrt(5.0)));
}

TEST_CASE("sparsity_report: exact numbers on HPS with 3 of 50 head input units and 2 of 20 filters zeroed") {
  manual_seed(5);
  auto m = make_model("hps", kTasks, {1, 28, 28});
  SparsityReport r0 = sparsity_report(*m);
  CHECK(r0.groups == 10 + 20 + 320 + 50 + 50);
  CHECK(r0.zero_groups == 0);
  CHECK(r0.group_sparsity == 0.0);
  CHECK(r0.compression_rate == 1.0);
  CHECK(r0.flops_known);
  // dense: conv1 2*10*25*24*24, conv2 2*20*250*8*8, fc 2*320*50, heads 2*(2*50*10)
  CHECK(r0.dense_flops == 288000.0 + 640000.0 + 32000.0 + 2000.0);
  CHECK(r0.flops == r0.dense_flops);
  CHECK(r0.params == 22350);
  CHECK(r0.stored_params == 22350);
  CHECK(r0.bytes == 4 * 22350);

  Tensor head = param(*m, "heads.0.out.weight");
  for (int j : {3, 17, 40}) zero_column(head, j);
  Tensor conv2 = param(*m, "trunk.conv2.weight");
  for (int o : {0, 11}) zero_row(conv2, o);
  SparsityReport r = sparsity_report(*m);
  CHECK(r.zero_groups == 5);
  CHECK(r.group_sparsity == doctest::Approx(100.0 * 5 / 450));
  CHECK(r.weights == 250 + 5000 + 16000 + 500 + 500);
  CHECK(r.zero_weights == 3 * 10 + 2 * 250);
  CHECK(r.param_sparsity == doctest::Approx(100.0 * 530 / 22250));
  CHECK(r.unique_nonzero_groups == 445);
  CHECK(r.compression_rate == doctest::Approx(450.0 / 445));
  CHECK(r.sharing_ratio == doctest::Approx(1.0));
  CHECK(r.flops == doctest::Approx(288000.0 + 640000.0 * 18 / 20 + 32000.0 + 1000.0 * 47 / 50 + 1000.0));
  // stored: conv1 250, conv2 18*250, fc 16000, heads 47*10 + 500, biases 100; maps for conv2 and head 0
  CHECK(r.stored_params == 250 + 4500 + 16000 + 470 + 500 + 100);
  CHECK(r.bytes == 4 * r.stored_params + 4 * (20 + 50));
  for (const auto& l : r.layers)
    if (l.name == "trunk.conv2.weight") {
      CHECK(l.zero_groups == 2);
      CHECK(l.regularized);
    }
  // tying: filter 5 := filter 6 -> one group fewer is unique
  const int64_t n = 250;
  for (int64_t k = 0; k < n; k++) conv2.data()[5 * n + k] = conv2.data()[6 * n + k];
  SparsityReport t = sparsity_report(*m);
  CHECK(t.unique_nonzero_groups == 444);
  CHECK(t.compression_rate == doctest::Approx(450.0 / 444));
  CHECK(t.sharing_ratio == doctest::Approx(445.0 / 444));
  CHECK(format_sparsity(t).find("group sparsity 1.111%") == 0);
}

TEST_CASE("apply_growl: prox on the regularised weights only, within the per-layer cap") {
  manual_seed(6);
  auto m = make_model("hps", kTasks, {1, 28, 28});
  const std::vector<float> conv1 = param(*m, "trunk.conv1.weight").to_vector();
  const std::vector<float> out0 = param(*m, "heads.0.out.weight").to_vector();
  // iteration 0 of 2 with max layer sparsity 0.5: at most floor(0.25 G) zero groups
  GrowlStats st = apply_growl(*m, 1.0, 0.8, 0.2, "spike", 0.5, 0, 2);
  CHECK(st.total_groups == 20 + 320);
  CHECK(st.zero_groups > 0);
  auto gs = by_name(weight_groups(*m));
  int zeros = 0;
  for (const char* n : {"trunk.conv2.weight", "trunk.fc.weight"}) {
    int z = 0;
    for (bool b : zero_groups(gs[n])) z += b;
    CHECK(z <= growl_zero_cap(gs[n].groups, 0.5, 0, 2));
    zeros += z;
  }
  CHECK(zeros == st.zero_groups);
  CHECK(param(*m, "trunk.conv1.weight").to_vector() == conv1);
  CHECK(param(*m, "heads.0.out.weight").to_vector() == out0);
  // the second iteration may prune more, never un-prunes
  GrowlStats st2 = apply_growl(*m, 1.0, 0.8, 0.2, "spike", 0.5, 1, 2);
  CHECK(st2.zero_groups >= st.zero_groups);
  CHECK_THROWS_WITH_AS(apply_growl(*m, -1, 0.8, 0.2, "spike", 0.5, 0, 2), doctest::Contains("eta"), Error);
  CHECK_THROWS_WITH_AS(apply_growl(*m, 1, 0.8, 0.2, "spiky", 0.5, 0, 2), doctest::Contains("unknown type"), Error);
}

TEST_CASE("PruneMask: pruned groups stay zero through Adam steps") {
  manual_seed(7);
  auto m = make_model("mdmtn", kTasks, {1, 28, 28});
  Tensor fc = param(*m, "trunk.fc.weight"), c2 = param(*m, "trunk.conv2.weight"),
         mon = param(*m, "heads.1.monitor.fc.weight");
  for (int j : {0, 5, 319}) zero_column(fc, j);
  zero_row(c2, 4);
  for (int j = 0; j < 100; j++) zero_column(mon, j * 7);
  PruneMask mask = PruneMask::record(*m);
  CHECK(mask.pruned_groups() == 3 + 1 + 100);
  Adam opt(m->named_parameters(), 1e-2);
  const std::vector<float> fc_before = fc.to_vector();
  for (int step = 0; step < 3; step++) {
    opt.zero_grad();
    loss_backward(*m, 8, 10 + step);
    CHECK(masked_grad_mass(*m, mask) > 0);  // the gradient would move pruned weights
    mask.zero_grads(*m);
    CHECK(masked_grad_mass(*m, mask) == 0);
    opt.step();
    mask.apply(*m);
  }
  for (int j : {0, 5, 319}) CHECK(column_zero(fc, j));
  CHECK(row_zero(c2, 4));
  for (int j = 0; j < 100; j++) CHECK(column_zero(mon, j * 7));
  CHECK(!column_zero(fc, 1));
  CHECK(fc.to_vector() != fc_before);
  // save / load by name
  StFile f;
  mask.save(f, "prune.");
  PruneMask back = PruneMask::load(f, "prune.", *m, "mask.safetensors");
  CHECK(back.pruned_groups() == mask.pruned_groups());
  f.tensors["prune.trunk.nothing"] = f.tensors.begin()->second;
  CHECK_THROWS_WITH_AS(PruneMask::load(f, "prune.", *m, "mask.safetensors"),
                       doctest::Contains("names no grouped weight"), Error);
}

TEST_CASE("ParameterTying: a planted cluster of input units is found and stays tied after a step") {
  manual_seed(8);
  auto m = make_model("hps", kTasks, {1, 28, 28});
  Tensor fc = param(*m, "trunk.fc.weight");  // [50, 320]
  Rng r(9);
  // input units 10..19 = one vector plus 1% noise; unit 30 pruned
  std::vector<float> v(50);
  for (auto& x : v) x = r.normal() * 0.1f;
  for (int j = 10; j < 20; j++)
    for (int i = 0; i < 50; i++) fc.data()[i * 320 + j] = v[i] * (1.f + 0.01f * r.normal());
  zero_column(fc, 30);
  TieOptions opt;
  opt.preference = 0.7;
  ParameterTying tie = ParameterTying::cluster(*m, opt);
  const ParameterTying::Entry* e = nullptr;
  for (const auto& x : tie.entries())
    if (x.name == "trunk.fc.weight") e = &x;
  REQUIRE(e);
  CHECK(e->labels[30] == -1);
  for (int j = 11; j < 20; j++) CHECK(e->labels[j] == e->labels[10]);
  int same = 0;
  for (int j = 0; j < 320; j++) same += e->labels[j] == e->labels[10];
  CHECK(same == 10);
  tie.apply(*m);
  PruneMask mask = PruneMask::record(*m);
  Adam opt_(m->named_parameters(), 1e-2);
  opt_.zero_grad();
  loss_backward(*m);
  mask.zero_grads(*m);
  opt_.step();
  mask.apply(*m);
  tie.apply(*m);
  for (int j = 11; j < 20; j++)
    for (int i = 0; i < 50; i++) CHECK(fc.data()[i * 320 + j] == fc.data()[i * 320 + 10]);
  CHECK(column_zero(fc, 30));
  SparsityReport rep = sparsity_report(*m);
  CHECK(rep.sharing_ratio > 1.0);
  // save / load
  StFile f;
  tie.save(f, "tie.");
  ParameterTying back = ParameterTying::load(f, "tie.", *m, "t.safetensors");
  CHECK(back.clusters() == tie.clusters());
  CHECK(back.tied_groups() == tie.tied_groups());
}
