// FAMO, Fast Adaptive Multitask Optimization (Liu, Liu, Jin, Stone & Liu,
// NeurIPS 2023), Algorithm 1, with L_i^* = 0 (the authors' default).
//
// Task weights z = softmax(xi), logits xi in R^K starting at 0. The network
// steps along the gradient of sum_i z_i log(L_i + eps) / c with
// c = sum_i z_i / (L_i + eps) held constant, i.e. along sum_i w_i grad L_i with
//   w_i = z_i / (c (L_i + eps)),  eps = 1e-8
// (equal rates of decrease of the log losses). After the optimizer step, with
// the same batch's losses L'_i at the new parameters,
//   delta_i = log(L_i + eps) - log(L'_i + eps),
// xi takes one Adam step (step size MethodOptions::famo_lr = 0.025, weight
// decay gamma = MethodOptions::famo_gamma = 1e-3, LibMTL's defaults) on the
// gradient J_softmax(xi)^T delta, whose component j is z_j (delta_j - <z, delta>).
// O(1) in K: no per-task backward, only one more forward pass of the batch
// (no backward), as the authors' and LibMTL's training loops do. xi and its
// Adam state are saved in checkpoints.
#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "mtl/methods/loss_method.h"
#include "optim/adam.h"

namespace mt {

namespace {

constexpr double kEps = 1e-8;

Tensor zero_logits(int K) {
  Tensor t = Tensor::zeros({K});
  t.requires_grad_();
  return t;
}

class Famo : public LossWeighting {
 public:
  Famo(int K, double lr, double gamma)
      : K_(K), xi_(zero_logits(K)), adam_(NamedParams{{"xi", xi_}}, lr, 0.9, 0.999, 1e-8, gamma) {}
  std::string name() const override { return "famo"; }

  std::vector<double> weights(const std::vector<double>& losses, int64_t) override {
    const std::vector<double> z = softmax_xi();
    log_d_.resize(K_);
    std::vector<double> w(K_);
    double c = 0;
    for (int i = 0; i < K_; i++) {
      log_d_[i] = std::log(losses[i] + kEps);
      c += z[i] / (losses[i] + kEps);
    }
    for (int i = 0; i < K_; i++) w[i] = z[i] / (c * (losses[i] + kEps));
    return w;
  }

  bool wants_losses_after_step() const override { return true; }
  void losses_after_step(const std::vector<double>& after) override {
    const std::vector<double> z = softmax_xi();
    std::vector<double> delta(K_);
    double zd = 0;  // <z, delta>
    for (int i = 0; i < K_; i++) {
      delta[i] = log_d_[i] - std::log(after[i] + kEps);
      zd += z[i] * delta[i];
    }
    Tensor g = Tensor::empty({K_});
    for (int j = 0; j < K_; j++) g.data()[j] = (float)(z[j] * (delta[j] - zd));
    adam_.zero_grad();
    backward(xi_, g);  // J^T delta into xi's gradient
    adam_.step();
  }

  void save_state(StFile& f) const override {
    f.tensors["method.famo.xi"] = StTensor{"F32", {K_}, xi_.to_vector(), {}};
    adam_.save_state(f, "method.famo.adam.");
  }
  void load_state(const StFile& f, const std::string& path) override {
    const StTensor& xi = st_require(f, "method.famo.xi", path);
    st_check_shape(xi, {K_}, "method.famo.xi", path);
    if (xi.dtype != "F32") throw Error(path + ": tensor 'method.famo.xi' must be F32, got " + xi.dtype);
    adam_.check_state(f, "method.famo.adam.", path);
    std::copy(xi.f32.begin(), xi.f32.end(), xi_.data());
    adam_.load_state(f, "method.famo.adam.", path);
  }

 private:
  std::vector<double> softmax_xi() const {
    const float* x = xi_.data();
    double m = -HUGE_VAL, s = 0;
    for (int i = 0; i < K_; i++) m = std::max(m, (double)x[i]);
    std::vector<double> z(K_);
    for (int i = 0; i < K_; i++) s += (z[i] = std::exp((double)x[i] - m));
    for (double& v : z) v /= s;
    return z;
  }

  int K_;
  Tensor xi_;                 // the logits xi
  Adam adam_;                 // xi's own optimizer
  std::vector<double> log_d_; // log(L_i + eps) of the step in flight
};

}  // namespace

std::unique_ptr<LossWeighting> make_famo_weighting(int K, const MethodOptions& opt) {
  MT_CHECK(opt.famo_lr > 0 && std::isfinite(opt.famo_lr), "famo", "the step size must be > 0");
  return std::make_unique<Famo>(K, opt.famo_lr, opt.famo_gamma);
}

}  // namespace mt
