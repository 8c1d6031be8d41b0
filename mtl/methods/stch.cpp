// STCH, Smooth Tchebycheff scalarisation (Lin, Zhang, Yang, Zhang & Zhang,
// "Smooth Tchebycheff Scalarization for Multi-Objective Optimization", ICML
// 2024): the smooth stand-in for the Chebyshev scalarisation
// max_i lambda_i (f_i - z_i^*) that Chebyshev-AL handles with constraints,
//   g_mu(x | lambda) = mu log sum_i exp(lambda_i (f_i(x) - z_i^*) / mu)   (the paper's STCH).
// For multi-task learning the authors' code (Xi-L/STCH, STCH_MTL, and LibMTL)
// takes f_i = log(L_i / z_i^nad), lambda_i = 1, z^* = 0, times K:
//   L_STCH = K mu log sum_i exp(log(L_i / z_i^nad) / mu),
// whose gradient is sum_i w_i grad L_i with
//   w_i = K p_i / L_i,  p = softmax(log(L / z^nad) / mu)  (1e-20 inside the logs, as there).
// Before that come warm-up epochs trained on sum_i log L_i (w_i = 1 / L_i); the
// nadir point z^nad is the mean loss over the last warm-up epoch.
// mu = MethodOptions::stch_mu (1.0, the authors' default); the warm-up lasts
// MethodOptions::stch_warmup_epochs epochs of the training loop (1 here: our
// runs are short; the authors' STCH_warmup_epoch = 4 counts only the epochs
// before the averaged one and equals 5 here).
#include <cmath>

#include "engine/error.h"
#include "mtl/methods/loss_method.h"
#include "mtl/methods/method_state.h"
#include "mtl/text.h"

namespace mt {

namespace {

constexpr double kTiny = 1e-20;

class Stch : public LossWeighting {
 public:
  Stch(int K, double mu, int warmup_epochs) : K_(K), mu_(mu), warmup_(warmup_epochs), sum_(K, 0.0), nadir_(K, 0.0) {
    MT_CHECK(mu > 0 && std::isfinite(mu), "stch", "mu must be > 0, got " + text::num(mu));
    MT_CHECK(warmup_epochs >= 1, "stch", "needs at least one warm-up epoch, got " + std::to_string(warmup_epochs));
  }
  std::string name() const override { return "stch"; }

  std::vector<double> weights(const std::vector<double>& L, int64_t) override {
    std::vector<double> w(K_);
    if (epochs_ < warmup_) {  // sum_i log L_i; the last warm-up epoch's mean is the nadir point
      if (epochs_ == warmup_ - 1) {
        for (int i = 0; i < K_; i++) sum_[i] += L[i];
        count_++;
      }
      for (int i = 0; i < K_; i++) w[i] = 1.0 / (L[i] + kTiny);
      return w;
    }
    std::vector<double> f(K_);
    double m = -HUGE_VAL, s = 0;
    for (int i = 0; i < K_; i++) m = std::max(m, f[i] = std::log(L[i] / nadir_[i] + kTiny) / mu_);
    for (int i = 0; i < K_; i++) s += std::exp(f[i] - m);
    for (int i = 0; i < K_; i++) {
      const double p = std::exp(f[i] - m) / s;
      w[i] = K_ * p / (nadir_[i] * (L[i] / nadir_[i] + kTiny));  // K p_i d/dL_i log(L_i / z_i + tiny)
    }
    return w;
  }

  void end_epoch() override {
    if (++epochs_ == warmup_ && count_ > 0)
      for (int i = 0; i < K_; i++) nadir_[i] = sum_[i] / count_;
  }

  void save_state(StFile& f) const override {
    put_i64(f, "method.stch.counts", {epochs_, count_});
    put_doubles(f, "method.stch.sum", sum_);
    put_doubles(f, "method.stch.nadir", nadir_);
  }
  void load_state(const StFile& f, const std::string& path) override {
    const std::vector<int64_t> c = get_i64(f, "method.stch.counts", 2, path);
    std::vector<double> sum = get_doubles(f, "method.stch.sum", K_, path);
    std::vector<double> nadir = get_doubles(f, "method.stch.nadir", K_, path);
    epochs_ = c[0], count_ = c[1], sum_ = sum, nadir_ = nadir;
  }

 private:
  int K_;
  double mu_;
  int warmup_;
  int64_t epochs_ = 0, count_ = 0;   // epochs ended; steps summed into sum_
  std::vector<double> sum_, nadir_;  // running sum of the last warm-up epoch; z^nad
};

}  // namespace

std::unique_ptr<LossWeighting> make_stch_weighting(int K, const MethodOptions& opt) {
  return std::make_unique<Stch>(K, opt.stch_mu, opt.stch_warmup_epochs);
}

}  // namespace mt
