// DWA, Dynamic Weight Average (Liu, Johns & Davison, "End-to-End Multi-Task
// Learning with Attention", CVPR 2019, where it is proposed as a loss weighting):
//   w_k(t) = K exp(r_k(t-1) / T) / sum_i exp(r_i(t-1) / T),  r_k(t-1) = L_k(t-1) / L_k(t-2),
// where L_k(t) is task k's training loss averaged over epoch t, T = 2
// (MethodOptions::dwa_temperature), and w_k = 1 in the first two epochs.
// The state is the running sum of the current epoch (closed at the training
// loop's end of epoch) and the two previous averages, saved in checkpoints.
#include <cmath>

#include "engine/error.h"
#include "mtl/methods/loss_method.h"
#include "mtl/methods/method_state.h"
#include "mtl/text.h"

namespace mt {

namespace {

class Dwa : public LossWeighting {
 public:
  Dwa(int K, double T) : K_(K), T_(T), sum_(K, 0.0), prev1_(K, 0.0), prev2_(K, 0.0) {
    MT_CHECK(T > 0 && std::isfinite(T), "dwa", "the temperature T must be > 0, got " + text::num(T));
  }
  std::string name() const override { return "dwa"; }

  std::vector<double> weights(const std::vector<double>& losses, int64_t) override {
    for (int k = 0; k < K_; k++) sum_[k] += losses[k];
    count_++;
    std::vector<double> w(K_, 1.0);
    if (closed_ < 2) return w;
    std::vector<double> r(K_);
    double rmax = -HUGE_VAL;
    for (int k = 0; k < K_; k++) {
      r[k] = prev2_[k] > 0 ? prev1_[k] / prev2_[k] : 1.0;
      rmax = std::max(rmax, r[k]);
    }
    double z = 0;
    for (int k = 0; k < K_; k++) z += std::exp((r[k] - rmax) / T_);
    for (int k = 0; k < K_; k++) w[k] = K_ * std::exp((r[k] - rmax) / T_) / z;
    return w;
  }

  void end_epoch() override {
    if (count_ == 0) return;
    prev2_ = prev1_;
    for (int k = 0; k < K_; k++) prev1_[k] = sum_[k] / count_;
    std::fill(sum_.begin(), sum_.end(), 0.0);
    count_ = 0;
    closed_++;
  }

  void save_state(StFile& f) const override {
    put_i64(f, "method.dwa.counts", {count_, closed_});
    put_doubles(f, "method.dwa.sum", sum_);
    put_doubles(f, "method.dwa.prev1", prev1_);
    put_doubles(f, "method.dwa.prev2", prev2_);
  }
  void load_state(const StFile& f, const std::string& path) override {
    const std::vector<int64_t> c = get_i64(f, "method.dwa.counts", 2, path);
    std::vector<double> sum = get_doubles(f, "method.dwa.sum", K_, path);
    std::vector<double> p1 = get_doubles(f, "method.dwa.prev1", K_, path);
    std::vector<double> p2 = get_doubles(f, "method.dwa.prev2", K_, path);
    count_ = c[0], closed_ = c[1];
    sum_ = sum, prev1_ = p1, prev2_ = p2;
  }

 private:
  int K_;
  double T_;
  int64_t count_ = 0, closed_ = 0;          // steps summed in sum_; epochs closed
  std::vector<double> sum_, prev1_, prev2_;  // running sum; L(t-1), L(t-2)
};

}  // namespace

std::unique_ptr<LossWeighting> make_dwa_weighting(int K, const MethodOptions& opt) {
  return std::make_unique<Dwa>(K, opt.dwa_temperature);
}

}  // namespace mt
