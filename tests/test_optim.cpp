// Optimizers against hand-computed PyTorch updates (in double), schedules,
// gradient clipping, hyperparameter validation, and state export/import by name.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "optim/sgd.h"

using namespace mt;

namespace {

// The test problem: L(p) = sum(c_i * p_i^2), so dL/dp_i = 2 c_i p_i.
const double kC[2] = {0.5, 1.5};
const double kP0[2] = {1.0, -2.0};

Tensor fresh_param() {
  Tensor p = Tensor::from({2}, {(float)kP0[0], (float)kP0[1]});
  p.requires_grad_();
  return p;
}

void compute_grad(Tensor& p) {
  p.zero_grad();
  backward(sum(mul(Tensor::from({2}, {(float)kC[0], (float)kC[1]}), square(p))));
}

// Runs 3 steps of the optimizer; returns p after each.
std::vector<std::vector<float>> run3(const std::function<std::unique_ptr<Optimizer>(NamedParams)>& make) {
  Tensor p = fresh_param();
  auto opt = make({{"p", p}});
  std::vector<std::vector<float>> out;
  for (int t = 0; t < 3; t++) {
    compute_grad(p);
    opt->step();
    out.push_back(p.to_vector());
  }
  CHECK(opt->step_count() == 3);
  CHECK(opt->param_step("p") == 3);
  return out;
}

// The reference: a per-element update rule in double, applied 3 times.
using Rule = std::function<void(double& p, double g, double& s1, double& s2, int t)>;
std::vector<std::vector<double>> ref3(const Rule& rule) {
  std::vector<std::vector<double>> out;
  double p[2] = {kP0[0], kP0[1]}, s1[2] = {0, 0}, s2[2] = {0, 0};
  for (int t = 1; t <= 3; t++) {
    for (int i = 0; i < 2; i++) rule(p[i], 2 * kC[i] * p[i], s1[i], s2[i], t);
    out.push_back({p[0], p[1]});
  }
  return out;
}

void check_close(const std::vector<std::vector<float>>& got, const std::vector<std::vector<double>>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t t = 0; t < got.size(); t++)
    for (size_t i = 0; i < 2; i++) {
      INFO("step " << t + 1 << " element " << i);
      CHECK(got[t][i] == doctest::Approx(want[t][i]).epsilon(2e-6));
    }
}

}  // namespace

TEST_CASE("SGD: plain, momentum with dampening, nesterov, weight decay (PyTorch semantics)") {
  SUBCASE("plain") {
    check_close(run3([](NamedParams ps) { return std::make_unique<SGD>(ps, 0.1); }),
                ref3([](double& p, double g, double&, double&, int) { p -= 0.1 * g; }));
  }
  SUBCASE("momentum 0.9, dampening 0.1: the first buffer is the raw gradient") {
    check_close(run3([](NamedParams ps) { return std::make_unique<SGD>(ps, 0.1, 0.9, 0.1); }),
                ref3([](double& p, double g, double& b, double&, int t) {
                  b = t == 1 ? g : 0.9 * b + 0.9 * g;
                  p -= 0.1 * b;
                }));
  }
  SUBCASE("nesterov") {
    check_close(run3([](NamedParams ps) { return std::make_unique<SGD>(ps, 0.05, 0.9, 0, 0, true); }),
                ref3([](double& p, double g, double& b, double&, int t) {
                  b = t == 1 ? g : 0.9 * b + g;
                  p -= 0.05 * (g + 0.9 * b);
                }));
  }
  SUBCASE("weight decay with momentum") {
    check_close(run3([](NamedParams ps) { return std::make_unique<SGD>(ps, 0.1, 0.5, 0, 0.2); }),
                ref3([](double& p, double g, double& b, double&, int t) {
                  const double d = g + 0.2 * p;
                  b = t == 1 ? d : 0.5 * b + d;
                  p -= 0.1 * b;
                }));
  }
}

TEST_CASE("Adam and AdamW: first 3 steps against the formulas") {
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  auto adam_core = [=](double& p, double d, double& m, double& v, int t) {
    m = b1 * m + (1 - b1) * d;
    v = b2 * v + (1 - b2) * d * d;
    const double mhat = m / (1 - std::pow(b1, t)), vhat = v / (1 - std::pow(b2, t));
    p -= lr * mhat / (std::sqrt(vhat) + eps);
  };
  SUBCASE("Adam") {
    check_close(run3([=](NamedParams ps) { return std::make_unique<Adam>(ps, lr); }),
                ref3([=](double& p, double g, double& m, double& v, int t) { adam_core(p, g, m, v, t); }));
  }
  SUBCASE("Adam with L2 weight decay in the gradient") {
    check_close(run3([=](NamedParams ps) { return std::make_unique<Adam>(ps, lr, b1, b2, eps, 0.3); }),
                ref3([=](double& p, double g, double& m, double& v, int t) { adam_core(p, g + 0.3 * p, m, v, t); }));
  }
  SUBCASE("AdamW: decoupled decay, default weight_decay 0.01") {
    check_close(run3([=](NamedParams ps) { return std::make_unique<AdamW>(ps, lr); }),
                ref3([=](double& p, double g, double& m, double& v, int t) {
                  p *= 1 - lr * 0.01;
                  adam_core(p, g, m, v, t);
                }));
    check_close(run3([=](NamedParams ps) { return std::make_unique<AdamW>(ps, lr, 0.8, 0.99, 1e-6, 0.5); }),
                ref3([=](double& p, double g, double& m, double& v, int t) {
                  p *= 1 - lr * 0.5;
                  m = 0.8 * m + 0.2 * g;
                  v = 0.99 * v + 0.01 * g * g;
                  p -= lr * (m / (1 - std::pow(0.8, t))) / (std::sqrt(v / (1 - std::pow(0.99, t))) + 1e-6);
                }));
  }
}

TEST_CASE("optimizers skip parameters without a gradient; zero_grad; set_lr") {
  Tensor a = fresh_param(), b = fresh_param();
  Adam opt({{"a", a}, {"b", b}}, 0.1);
  compute_grad(a);
  opt.step();
  CHECK(b.to_vector() == std::vector<float>{1.f, -2.f});
  CHECK(opt.param_step("a") == 1);
  CHECK(opt.param_step("b") == 0);
  CHECK(!opt.state("b", "exp_avg").defined());
  CHECK(opt.state("a", "exp_avg").defined());
  opt.zero_grad();
  CHECK(a.grad().to_vector() == std::vector<float>{0.f, 0.f});
  opt.set_lr(0.05);
  CHECK(opt.lr() == 0.05);
  opt.set_lr(0);  // an annealed schedule may reach 0
  CHECK_THROWS_WITH_AS(opt.set_lr(-1), "Adam: lr must be >= 0, got -1", Error);
}

TEST_CASE("bad hyperparameters are rejected with messages") {
  auto ps = [] { return NamedParams{{"p", fresh_param()}}; };
  CHECK_THROWS_WITH_AS(SGD(ps(), 0), doctest::Contains("lr must be > 0, got 0"), Error);
  CHECK_THROWS_WITH_AS(SGD(ps(), -0.1), "SGD: lr must be > 0, got -0.1", Error);
  CHECK_THROWS_WITH_AS(SGD(ps(), NAN), doctest::Contains("lr must be > 0"), Error);
  CHECK_THROWS_WITH_AS(SGD(ps(), 0.1, -0.5), "SGD: momentum must be >= 0, got -0.5", Error);
  CHECK_THROWS_WITH_AS(SGD(ps(), 0.1, 0.9, 1.5), "SGD: dampening must be in [0, 1], got 1.5", Error);
  CHECK_THROWS_WITH_AS(SGD(ps(), 0.1, 0, 0, -1), "SGD: weight_decay must be >= 0, got -1", Error);
  CHECK_THROWS_WITH_AS(SGD(ps(), 0.1, 0, 0, 0, true), doctest::Contains("nesterov momentum needs momentum > 0"),
                       Error);
  CHECK_THROWS_WITH_AS(SGD(ps(), 0.1, 0.9, 0.1, 0, true), doctest::Contains("and dampening 0"), Error);
  CHECK_THROWS_WITH_AS(Adam(ps(), 0), "Adam: lr must be > 0, got 0", Error);
  CHECK_THROWS_WITH_AS(Adam(ps(), 1e-3, 1.0), "Adam: beta1 must be in [0, 1), got 1", Error);
  CHECK_THROWS_WITH_AS(Adam(ps(), 1e-3, 0.9, -0.1), "Adam: beta2 must be in [0, 1), got -0.1", Error);
  CHECK_THROWS_WITH_AS(Adam(ps(), 1e-3, 0.9, 0.999, -1e-8), "Adam: eps must be >= 0, got -1e-08", Error);
  CHECK_THROWS_WITH_AS(AdamW(ps(), 1e-3, 0.9, 0.999, 1e-8, -0.01), "AdamW: weight_decay must be >= 0, got -0.01",
                       Error);
  CHECK_THROWS_WITH_AS(Adam(NamedParams{}), "Adam: empty parameter list", Error);
  Tensor p = fresh_param();
  CHECK_THROWS_WITH_AS(Adam(NamedParams{{"p", p}, {"p", p}}), "Adam: parameter name 'p' appears twice", Error);
  CHECK_THROWS_WITH_AS(Adam(NamedParams{{"q", Tensor()}}), "Adam: parameter 'q' is an undefined tensor", Error);
}

TEST_CASE("optimizer state export/import is keyed by parameter name") {
  Tensor a = fresh_param(), b = Tensor::from({3}, {1, 2, 3});
  b.requires_grad_();
  Adam opt({{"net.a", a}, {"net.b", b}}, 0.01);
  for (int t = 0; t < 2; t++) {
    compute_grad(a);
    opt.step();
  }
  StFile f;
  opt.save_state(f, "optim.");
  CHECK(f.metadata.at("optim.type") == "Adam");
  CHECK(f.metadata.at("optim.step") == "2");
  CHECK(f.tensors.count("optim.exp_avg.net.a") == 1);
  CHECK(f.tensors.count("optim.exp_avg.net.b") == 0);  // b never had a gradient: no state
  CHECK(f.tensors.at("optim.step.net.a").i64 == std::vector<int64_t>{2});

  // A fresh optimizer listing the parameters in the other order gets the same state.
  Tensor a2 = fresh_param(), b2 = Tensor::zeros({3});
  Adam other({{"net.b", b2}, {"net.a", a2}}, 0.5);
  other.load_state(f, "optim.", "ckpt");
  CHECK(other.lr() == 0.01);
  CHECK(other.step_count() == 2);
  CHECK(other.param_step("net.a") == 2);
  CHECK(other.state("net.a", "exp_avg_sq").to_vector() == opt.state("net.a", "exp_avg_sq").to_vector());
  CHECK(!other.state("net.b", "exp_avg").defined());

  SUBCASE("another optimizer type") {
    SGD sgd({{"net.a", a2}}, 0.1, 0.9);
    CHECK_THROWS_WITH_AS(sgd.load_state(f, "optim.", "ckpt"), "ckpt: optimizer state is for Adam, this optimizer is SGD",
                         Error);
  }
  SUBCASE("a parameter the optimizer does not have") {
    Adam small({{"net.b", b2}}, 0.1);
    CHECK_THROWS_WITH_AS(small.load_state(f, "optim.", "ckpt"),
                         doctest::Contains("ckpt: unexpected tensor 'optim.exp_avg.net.a'"), Error);
    CHECK(small.step_count() == 0);
  }
  SUBCASE("misshaped and partial state") {
    StFile g = f;
    g.tensors["optim.exp_avg.net.a"].shape = {1, 2};
    CHECK_THROWS_WITH_AS(other.load_state(g, "optim.", "ckpt"),
                         "ckpt: tensor 'optim.exp_avg.net.a' has shape [1,2], model expects [2]", Error);
    g = f;
    g.tensors.erase("optim.exp_avg_sq.net.a");
    CHECK_THROWS_WITH_AS(other.load_state(g, "optim.", "ckpt"), "ckpt: missing tensor 'optim.exp_avg_sq.net.a'",
                         Error);
    g = f;
    g.metadata.erase("optim.lr");
    CHECK_THROWS_WITH_AS(other.load_state(g, "optim.", "ckpt"), "ckpt: missing metadata 'optim.lr'", Error);
  }
}

TEST_CASE("schedules: values and argument errors") {
  StepLR step(0.1, 10, 0.85);
  CHECK(step.lr_at(0) == doctest::Approx(0.1));
  CHECK(step.lr_at(9) == doctest::Approx(0.1));
  CHECK(step.lr_at(10) == doctest::Approx(0.085));
  CHECK(step.lr_at(25) == doctest::Approx(0.1 * 0.85 * 0.85));
  StepLR mgda_code(0.1, 10, 0.85, 9);  // decays when (epoch + 1) % 10 == 0
  CHECK(mgda_code.lr_at(8) == doctest::Approx(0.1));
  CHECK(mgda_code.lr_at(9) == doctest::Approx(0.085));
  CHECK(mgda_code.lr_at(18) == doctest::Approx(0.085));
  CHECK(mgda_code.lr_at(19) == doctest::Approx(0.1 * 0.85 * 0.85));
  CHECK(mgda_code.lr_at(99) == doctest::Approx(0.1 * std::pow(0.85, 10)));
  CHECK(step.lr_at(99) == doctest::Approx(0.1 * std::pow(0.85, 9)));
  ExponentialLR ex(0.2, 0.5);
  CHECK(ex.lr_at(0) == doctest::Approx(0.2));
  CHECK(ex.lr_at(3) == doctest::Approx(0.025));
  CosineLR cos(1.0, 10, 0.1);
  CHECK(cos.lr_at(0) == doctest::Approx(1.0));
  CHECK(cos.lr_at(5) == doctest::Approx(0.55));
  CHECK(cos.lr_at(10) == doctest::Approx(0.1));
  CHECK(cos.lr_at(15) == doctest::Approx(0.1));
  CHECK(cos.lr_at(2) == doctest::Approx(0.1 + 0.9 * (1 + std::cos(M_PI * 0.2)) / 2));
  LinearWarmup warm(3, std::make_shared<StepLR>(0.4, 5, 0.5));
  CHECK(warm.base_lr() == 0.4);
  CHECK(warm.lr_at(0) == doctest::Approx(0.1));
  CHECK(warm.lr_at(2) == doctest::Approx(0.3));
  CHECK(warm.lr_at(3) == doctest::Approx(0.4));
  CHECK(warm.lr_at(8) == doctest::Approx(0.2));
  LinearWarmup none(0, std::make_shared<ExponentialLR>(0.2, 0.5));
  CHECK(none.lr_at(1) == doctest::Approx(0.1));

  CHECK_THROWS_WITH_AS(StepLR(0.1, 0), "StepLR: step_size must be >= 1, got 0", Error);
  CHECK_THROWS_WITH_AS(StepLR(0.1, 10, 0), "StepLR: gamma must be > 0, got 0", Error);
  CHECK_THROWS_WITH_AS(StepLR(0.1, 10, 0.5, -1), "StepLR: first_step must be >= 1 (0 for step_size), got -1", Error);
  CHECK_THROWS_WITH_AS(ExponentialLR(0.1, -1), "ExponentialLR: gamma must be > 0, got -1", Error);
  CHECK_THROWS_WITH_AS(CosineLR(0.1, 0), "CosineLR: T_max must be >= 1, got 0", Error);
  CHECK_THROWS_WITH_AS(CosineLR(0.1, 5, 0.5), doctest::Contains("eta_min must be in [0, base lr]"), Error);
  CHECK_THROWS_WITH_AS(StepLR(0, 5), "lr schedule: base lr must be > 0, got 0", Error);
  CHECK_THROWS_WITH_AS(step.lr_at(-1), "lr schedule: epoch must be >= 0, got -1", Error);
  CHECK_THROWS_WITH_AS(LinearWarmup(-1, std::make_shared<StepLR>(0.1, 1)),
                       "LinearWarmup: warmup_epochs must be >= 0, got -1", Error);
  CHECK_THROWS_WITH_AS(LinearWarmup(2, nullptr), "LinearWarmup: the inner schedule is null", Error);
}

TEST_CASE("clip_grad_norm: global L2 norm, returns the norm before clipping") {
  Tensor a = Tensor::zeros({2}), b = Tensor::zeros({1}), c = Tensor::zeros({3});
  for (Tensor* t : {&a, &b, &c}) t->requires_grad_();
  backward(sum(mul(a, Tensor::from({2}, {3, 4}))) + sum(mul(b, Tensor::from({1}, {12}))));
  REQUIRE(!c.grad().defined());  // skipped
  CHECK(grad_norm({a, b, c}) == doctest::Approx(13.0));
  CHECK(clip_grad_norm({a, b, c}, 20.0) == doctest::Approx(13.0));
  CHECK(a.grad().to_vector() == std::vector<float>{3, 4});  // under the limit: untouched
  CHECK(clip_grad_norm(NamedParams{{"a", a}, {"b", b}, {"c", c}}, 6.5) == doctest::Approx(13.0));
  CHECK(a.grad().data()[0] == doctest::Approx(1.5).epsilon(1e-6));
  CHECK(a.grad().data()[1] == doctest::Approx(2.0).epsilon(1e-6));
  CHECK(b.grad().data()[0] == doctest::Approx(6.0).epsilon(1e-6));
  CHECK(grad_norm({a, b}) == doctest::Approx(6.5).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(clip_grad_norm({a}, 0), doctest::Contains("max_norm must be > 0"), Error);
}
