// GradNorm (Chen, Badrinarayanan, Lee, Rabinovich, ICML 2018).
//
// The network trains on sum_t w_t L_t. The weights w_t are trained on
//   L_grad = sum_t | G_t - Gbar * r_t^alpha |,
// where G_t = w_t ||dL_t/dW|| at the last shared layer's weight W, Gbar the
// mean of G_t, and r_t = (L_t / L_t(0)) / mean_j (L_j / L_j(0)) the relative
// inverse training rate; the target Gbar r_t^alpha is held constant, so
// dL_grad/dw_t = sign(G_t - target_t) ||dL_t/dW||. After each step the
// weights are renormalised to sum to K.
#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "mtl/methods/method.h"

namespace mt {

namespace {

class GradNorm : public Method {
 public:
  GradNorm(int K, double alpha) : K_(K), alpha_(alpha), w_(Tensor::ones({K})), L0_(K, 0.0) {
    MT_CHECK(alpha >= 0, "gradnorm", "alpha must be >= 0, got " + std::to_string(alpha));
    w_.requires_grad_();
  }
  std::string name() const override { return "gradnorm"; }
  NamedTensors parameters() const override { return {{"method.w", w_}}; }

  StepStats compute_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y) override {
    Tensor z = m.shared(x);
    std::vector<Tensor> L = task_losses(m, z, x, y);
    Tensor W = m.last_shared_weight();
    StepStats st;
    std::vector<double> gnorm(K_), G(K_), ratio(K_);
    const float* w = w_.data();
    for (int t = 0; t < K_; t++) {
      Tensor gW = grad(L[t], {W}, Tensor(), /*retain_graph=*/true)[0];
      double s = 0;
      if (gW.defined())
        for (int64_t i = 0; i < gW.numel(); i++) s += (double)gW.data()[i] * gW.data()[i];
      gnorm[t] = std::sqrt(s);
      G[t] = w[t] * gnorm[t];
      st.loss.push_back(L[t].item());
    }
    if (!initialised_) {  // L_t(0): the losses of the first step
      for (int t = 0; t < K_; t++) L0_[t] = st.loss[t] > 0 ? st.loss[t] : 1.0;
      initialised_ = true;
    }
    double Gbar = 0, rbar = 0;
    for (int t = 0; t < K_; t++) {
      Gbar += G[t] / K_;
      ratio[t] = st.loss[t] / L0_[t];
      rbar += ratio[t] / K_;
    }
    Tensor dw = Tensor::empty({K_});
    for (int t = 0; t < K_; t++) {
      const double target = Gbar * std::pow(ratio[t] / rbar, alpha_);
      const double d = G[t] - target;
      dw.data()[t] = (float)((d > 0) - (d < 0)) * (float)gnorm[t];
    }
    Tensor total;
    for (int t = 0; t < K_; t++) {
      Tensor term = L[t] * w[t];
      total = total.defined() ? total + term : term;
      st.weight.push_back(w[t]);
    }
    backward(total);
    backward(w_, dw);  // dL_grad/dw into w's gradient
    return st;
  }

  void after_step() override {  // w_t >= 0, sum_t w_t = K
    float* w = w_.data();
    double s = 0;
    for (int t = 0; t < K_; t++) {
      w[t] = std::max(w[t], 0.f);
      s += w[t];
    }
    for (int t = 0; t < K_; t++) w[t] = s > 0 ? (float)(w[t] * K_ / s) : 1.f;
  }

  void save_state(StFile& f) const override {
    f.tensors["method.w"] = StTensor{"F32", {K_}, w_.to_vector(), {}};
    std::vector<float> l0(L0_.begin(), L0_.end());
    f.tensors["method.L0"] = StTensor{"F32", {K_}, l0, {}};
    f.metadata["method.initialised"] = initialised_ ? "1" : "0";
  }
  void load_state(const StFile& f, const std::string& path) override {
    const StTensor& w = st_require(f, "method.w", path);
    const StTensor& l0 = st_require(f, "method.L0", path);
    st_check_shape(w, {K_}, "method.w", path);
    st_check_shape(l0, {K_}, "method.L0", path);
    std::copy(w.f32.begin(), w.f32.end(), w_.data());
    for (int t = 0; t < K_; t++) L0_[t] = l0.f32[t];
    auto it = f.metadata.find("method.initialised");
    initialised_ = it != f.metadata.end() && it->second == "1";
  }

 private:
  int K_;
  double alpha_;
  Tensor w_;
  std::vector<double> L0_;
  bool initialised_ = false;
};

}  // namespace

std::unique_ptr<Method> make_gradnorm(int K, double alpha) { return std::make_unique<GradNorm>(K, alpha); }

}  // namespace mt
