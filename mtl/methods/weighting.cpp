// Loss-weighting methods: uniform, fixed weights, and uncertainty weighting.
#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "mtl/methods/method.h"

namespace mt {

namespace {

// sum_t w_t L_t with constant weights w.
class LinearScalarization : public Method {
 public:
  LinearScalarization(std::string name, std::vector<double> w) : name_(std::move(name)), w_(std::move(w)) {}
  std::string name() const override { return name_; }
  StepStats compute_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y) override {
    Tensor z = m.shared(x);
    std::vector<Tensor> L = task_losses(m, z, x, y);
    StepStats st;
    Tensor total;
    for (size_t t = 0; t < L.size(); t++) {
      Tensor term = L[t] * (float)w_[t];
      total = total.defined() ? total + term : term;
      st.loss.push_back(L[t].item());
    }
    st.weight = w_;
    backward(total);
    return st;
  }

 private:
  std::string name_;
  std::vector<double> w_;
};

// Kendall, Gal, Cipolla (2018), classification form: sum_t exp(-s_t) L_t + s_t / 2,
// with s_t = log sigma_t^2 trained beside the network (initialised at 0).
class Uncertainty : public Method {
 public:
  explicit Uncertainty(int K) : s_(Tensor::zeros({K})) { s_.requires_grad_(); }
  std::string name() const override { return "uncertainty"; }
  NamedTensors parameters() const override { return {{"method.s", s_}}; }
  StepStats compute_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y) override {
    Tensor z = m.shared(x);
    std::vector<Tensor> L = task_losses(m, z, x, y);
    StepStats st;
    Tensor total;
    for (size_t t = 0; t < L.size(); t++) {
      Tensor s_t = narrow(s_, 0, (int)t, 1);
      Tensor term = exp(neg(s_t)) * L[t] + s_t * 0.5f;
      total = total.defined() ? total + term : term;
      st.loss.push_back(L[t].item());
      st.weight.push_back(std::exp(-s_.data()[t]));
    }
    backward(sum(total));
    return st;
  }
  void save_state(StFile& f) const override {
    StTensor t{"F32", {s_.numel()}, s_.to_vector(), {}};
    f.tensors["method.s"] = t;
  }
  void load_state(const StFile& f, const std::string& path) override {
    const StTensor& t = st_require(f, "method.s", path);
    st_check_shape(t, {s_.numel()}, "method.s", path);
    std::copy(t.f32.begin(), t.f32.end(), s_.data());
  }

 private:
  Tensor s_;
};

}  // namespace

std::unique_ptr<Method> make_uniform(int K) {
  return std::make_unique<LinearScalarization>("uniform", std::vector<double>(K, 1.0));
}

std::unique_ptr<Method> make_fixed(int K, const std::vector<double>& w) {
  MT_CHECK((int)w.size() == K, "fixed", "needs " + std::to_string(K) + " weights (--weights), got " +
                                         std::to_string(w.size()));
  double total = 0;
  for (double v : w) {
    MT_CHECK(std::isfinite(v) && v >= 0, "fixed", "weights must be finite and >= 0, got " + std::to_string(v));
    total += v;
  }
  MT_CHECK(total > 0, "fixed", "weights are all zero");
  return std::make_unique<LinearScalarization>("fixed", w);
}

std::unique_ptr<Method> make_uncertainty(int K) { return std::make_unique<Uncertainty>(K); }

}  // namespace mt
