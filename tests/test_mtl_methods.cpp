// The multi-task methods checked against independent computations on a small
// MultiLeNet: each method's gradients equal those of the objective it claims.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "mtl/methods/method.h"
#include "mtl/models/multilenet.h"

using namespace mt;

namespace {

struct Fixture {
  std::vector<Task> tasks = {{"left", 10}, {"right", 10}};
  std::shared_ptr<MultiTaskModel> model;
  Tensor x;
  Targets y;
  explicit Fixture(const std::string& arch = "multilenet", int n = 16) {
    manual_seed(11);
    model = make_model(arch, tasks, {1, 28, 28});
    model->eval();  // no dropout: two computations of the same objective must agree exactly
    Rng r(5);
    x = Tensor::randn({n, 1, 28, 28}, r);
    y.assign(2, std::vector<int32_t>(n));
    for (auto& yt : y)
      for (auto& v : yt.label) v = (int32_t)r.below(10);
  }
  // Every parameter's gradient, flattened in name order.
  std::vector<float> grads() const {
    std::vector<float> g;
    for (const auto& [name, p] : model->named_parameters()) {
      Tensor gp = p.grad();
      for (int64_t i = 0; i < p.numel(); i++) g.push_back(gp.defined() ? gp.data()[i] : 0.f);
    }
    return g;
  }
  // Gradients of sum_t w_t L_t by one plain backward.
  std::vector<float> weighted_grads(const std::vector<double>& w) {
    model->zero_grad();
    Tensor z = model->shared(x);
    std::vector<Tensor> L = task_losses(*model, z, x, y);
    Tensor total = L[0] * (float)w[0] + L[1] * (float)w[1];
    backward(total);
    return grads();
  }
};

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0, scale = 1e-6;
  for (size_t i = 0; i < a.size(); i++) scale = std::max(scale, (double)std::fabs(b[i]));
  for (size_t i = 0; i < a.size(); i++) m = std::max(m, (double)std::fabs(a[i] - b[i]));
  return m / scale;
}

}  // namespace

TEST_CASE("mgda-ub: alpha is the min-norm point of the gradients w.r.t. Z, and the step is grad of sum alpha_t L_t") {
  Fixture f;
  // g_t = dL_t/dZ computed independently with grad()
  Tensor z = f.model->shared(f.x);
  std::vector<Tensor> L = task_losses(*f.model, z, f.x, f.y);
  Tensor g0 = grad(L[0], {z}, Tensor(), true)[0], g1 = grad(L[1], {z})[0];
  double v11 = 0, v12 = 0, v22 = 0;
  for (int64_t i = 0; i < z.numel(); i++) {
    v11 += (double)g0.data()[i] * g0.data()[i];
    v12 += (double)g0.data()[i] * g1.data()[i];
    v22 += (double)g1.data()[i] * g1.data()[i];
  }
  const double alpha0 = min_norm_2(v11, v12, v22).alpha[0];

  auto method = make_method("mgda-ub", 2, {});
  f.model->zero_grad();
  StepStats st = method->compute_gradients(*f.model, f.x, f.y);
  REQUIRE(st.weight.size() == 2);
  CHECK(st.weight[0] == doctest::Approx(alpha0).epsilon(1e-6));
  CHECK(st.weight[0] + st.weight[1] == doctest::Approx(1.0));
  CHECK(st.weight[0] > 0.0);
  CHECK(st.weight[0] < 1.0);
  std::vector<float> got = f.grads();
  std::vector<float> want = f.weighted_grads(st.weight);
  CHECK(max_rel_diff(got, want) < 1e-5);
}

TEST_CASE("mgda (exact): alpha is the min-norm point of the shared-parameter gradients") {
  Fixture f;
  NamedTensors shared = f.model->shared_parameters();
  std::vector<std::vector<float>> g(2);
  for (int t = 0; t < 2; t++) {
    f.model->zero_grad();
    Tensor z = f.model->shared(f.x);
    backward(f.model->task_loss(t, f.model->head(t, z, f.x), f.y[t]));
    for (const auto& [name, p] : shared)
      for (int64_t i = 0; i < p.numel(); i++) g[t].push_back(p.grad().data()[i]);
  }
  std::vector<double> M = gram_matrix({g[0].data(), g[1].data()}, g[0].size());
  const double alpha0 = min_norm(M, 2).alpha[0];

  auto method = make_method("mgda", 2, {});
  f.model->zero_grad();
  StepStats st = method->compute_gradients(*f.model, f.x, f.y);
  CHECK(st.weight[0] == doctest::Approx(alpha0).epsilon(1e-5));
  std::vector<float> got = f.grads();
  std::vector<float> want = f.weighted_grads(st.weight);
  CHECK(max_rel_diff(got, want) < 1e-5);
}

TEST_CASE("mgda-ub with K = 3 tasks keeps alpha on the simplex and reports the solver's gap") {
  manual_seed(3);
  std::vector<Task> tasks = {{"a", 10}, {"b", 10}, {"c", 10}};
  auto model = make_model("multilenet", tasks, {1, 28, 28});
  Rng r(9);
  Tensor x = Tensor::randn({8, 1, 28, 28}, r);
  Targets y(3, std::vector<int32_t>(8));
  for (auto& yt : y)
    for (auto& v : yt.label) v = (int32_t)r.below(10);
  for (const std::string& solver : min_norm_algo_names()) {
    CAPTURE(solver);
    MethodOptions o;
    o.solver.algo = parse_min_norm_algo(solver);
    o.normalization = GradNormalization::L2;
    auto method = make_method("mgda-ub", 3, o);
    model->zero_grad();
    StepStats st = method->compute_gradients(*model, x, y);
    double s = 0;
    for (double a : st.weight) {
      CHECK(a >= 0.0);
      s += a;
    }
    CHECK(s == doctest::Approx(1.0));
    CHECK(std::isfinite(st.solver_gap));
    CHECK(st.solver_gap >= 0.0);
    if (solver == "wolfe") CHECK(st.solver_gap <= 1e-10);  // the solver's own stopping test
  }
  MethodOptions start_only;  // no iteration: the best pair, not optimal here, so the gap must show
  start_only.solver.algo = MinNormAlgo::FrankWolfe;
  start_only.solver.max_iter = 0;
  model->zero_grad();
  CHECK(make_method("mgda-ub", 3, start_only)->compute_gradients(*model, x, y).solver_gap > 1e-3);
}

TEST_CASE("uniform and fixed weights give the gradient of the weighted sum") {
  Fixture f;
  MethodOptions o;
  o.weights = {0.3, 1.7};
  auto fixed = make_method("fixed", 2, o);
  f.model->zero_grad();
  fixed->compute_gradients(*f.model, f.x, f.y);
  std::vector<float> got = f.grads();
  CHECK(max_rel_diff(got, f.weighted_grads({0.3, 1.7})) < 1e-6);
  auto uniform = make_method("uniform", 2, {});
  f.model->zero_grad();
  uniform->compute_gradients(*f.model, f.x, f.y);
  got = f.grads();
  CHECK(max_rel_diff(got, f.weighted_grads({1.0, 1.0})) < 1e-6);
}

TEST_CASE("uncertainty weighting: d/ds_t of exp(-s_t) L_t + s_t/2") {
  Fixture f;
  auto method = make_method("uncertainty", 2, {});
  NamedTensors extra = method->parameters();
  REQUIRE(extra.size() == 1);
  Tensor s = extra[0].second;
  s.data()[0] = 0.4f;
  s.data()[1] = -0.3f;
  f.model->zero_grad();
  s.zero_grad();
  StepStats st = method->compute_gradients(*f.model, f.x, f.y);
  for (int t = 0; t < 2; t++) {
    const double want = -std::exp(-s.data()[t]) * st.loss[t] + 0.5;
    CHECK(s.grad().data()[t] == doctest::Approx(want).epsilon(1e-5));
    CHECK(st.weight[t] == doctest::Approx(std::exp(-s.data()[t])));
  }
  std::vector<float> got = f.grads();
  CHECK(max_rel_diff(got, f.weighted_grads({std::exp(-0.4), std::exp(0.3)})) < 1e-5);
}

TEST_CASE("gradnorm: the weights move toward balanced gradient norms and stay summing to K") {
  Fixture f;
  auto method = make_method("gradnorm", 2, {});
  Tensor w = method->parameters()[0].second;
  f.model->zero_grad();
  w.zero_grad();
  StepStats st = method->compute_gradients(*f.model, f.x, f.y);
  REQUIRE(w.grad().defined());
  // at the first step r_t = 1, so the target is the mean of G_t = w_t ||dL_t/dW||:
  // the task with the larger gradient norm gets a positive dL_grad/dw
  Tensor W = f.model->last_shared_weight();
  double n[2];
  for (int t = 0; t < 2; t++) {
    Tensor z = f.model->shared(f.x);
    Tensor gW = grad(f.model->task_loss(t, f.model->head(t, z, f.x), f.y[t]), {W})[0];
    double s = 0;
    for (int64_t i = 0; i < gW.numel(); i++) s += (double)gW.data()[i] * gW.data()[i];
    n[t] = std::sqrt(s);
  }
  const int big = n[0] > n[1] ? 0 : 1;
  CHECK(w.grad().data()[big] == doctest::Approx(n[big]).epsilon(1e-4));
  CHECK(w.grad().data()[1 - big] == doctest::Approx(-n[1 - big]).epsilon(1e-4));
  w.data()[0] = 3.f;
  w.data()[1] = 1.f;
  method->after_step();
  CHECK(w.data()[0] + w.data()[1] == doctest::Approx(2.0));
  CHECK(w.data()[0] == doctest::Approx(1.5));
  std::vector<float> got = f.grads();
  CHECK(max_rel_diff(got, f.weighted_grads(st.weight)) < 1e-5);
}

TEST_CASE("single-task baseline: no gradient crosses from one task's network to another's") {
  Fixture f("multilenet-stl");
  CHECK(model_for_method("single-task", "multilenet") == "multilenet-stl");
  f.model->zero_grad();
  Tensor z = f.model->shared(f.x);
  CHECK(z.shape() == Shape{16, 100});
  backward(f.model->task_loss(0, f.model->head(0, z, f.x), f.y[0]));
  for (const auto& np : f.model->named_parameters()) {
    const std::string& name = np.first;  // (not a binding: C++17 lambdas, as in CHECK_MESSAGE, cannot capture one)
    const Tensor& p = np.second;
    const bool task0 = name.rfind("trunk.0.", 0) == 0 || name.rfind("heads.0.", 0) == 0;
    double s = 0;
    if (p.grad().defined())
      for (int64_t i = 0; i < p.numel(); i++) s += std::fabs(p.grad().data()[i]);
    if (task0) CHECK_MESSAGE(s > 0, name);
    else CHECK_MESSAGE(s == 0, name);
  }
}

TEST_CASE("method and model errors") {
  CHECK_THROWS_WITH_AS(make_method("mgda-xx", 2, {}), doctest::Contains("unknown method 'mgda-xx' (valid: "), Error);
  MethodOptions o;
  o.weights = {1.0};
  CHECK_THROWS_WITH_AS(make_method("fixed", 2, o), doctest::Contains("needs 2 weights"), Error);
  o.weights = {1.0, -1.0};
  CHECK_THROWS_WITH_AS(make_method("fixed", 2, o), doctest::Contains(">= 0"), Error);
  o.weights = {0.0, 0.0};
  CHECK_THROWS_WITH_AS(make_method("fixed", 2, o), doctest::Contains("all zero"), Error);
  std::vector<Task> tasks = {{"a", 10}};
  CHECK_THROWS_WITH_AS(make_model("lenet9", tasks, {1, 28, 28}), doctest::Contains("unknown model 'lenet9'"), Error);
  CHECK_THROWS_WITH_AS(make_model("multilenet", tasks, {1, 8, 8}), doctest::Contains("too small"), Error);
  Fixture f;
  auto m = make_method("mgda-ub", 2, {});
  Targets one = {f.y[0]};
  CHECK_THROWS_WITH_AS(m->compute_gradients(*f.model, f.x, one), doctest::Contains("labels for 1 tasks"), Error);
}
