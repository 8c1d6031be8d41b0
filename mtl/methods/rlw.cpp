// RLW, Random Loss Weighting (Lin, Ye, Xu, Shi & Zhang, "Reasonable
// Effectiveness of Random Weighting: A Litmus Test for Multi-Task Learning",
// TMLR 2022): every step, lambda~ ~ N(0, I_K) and w = softmax(lambda~), the
// paper's normal-distribution variant (LibMTL's RLW). The draws come from a
// generator seeded with MethodOptions::seed, saved in checkpoints.
#include <cmath>

#include "engine/rng.h"
#include "mtl/methods/loss_method.h"
#include "mtl/methods/method_state.h"

namespace mt {

namespace {

class Rlw : public LossWeighting {
 public:
  explicit Rlw(uint64_t seed) : rng_(seed ^ 0x524c57ULL) {}  // "RLW": not the model initialisation's stream
  std::string name() const override { return "rlw"; }

  std::vector<double> weights(const std::vector<double>& losses, int64_t) override {
    std::vector<double> w(losses.size());
    double m = -HUGE_VAL, z = 0;
    for (double& v : w) m = std::max(m, v = rng_.normal());
    for (double& v : w) z += (v = std::exp(v - m));
    for (double& v : w) v /= z;
    return w;
  }

  void save_state(StFile& f) const override { put_rng(f, "method.rlw.rng", rng_); }
  void load_state(const StFile& f, const std::string& path) override { rng_ = get_rng(f, "method.rlw.rng", path); }

 private:
  Rng rng_;
};

}  // namespace

std::unique_ptr<LossWeighting> make_rlw_weighting(const MethodOptions& opt) { return std::make_unique<Rlw>(opt.seed); }

}  // namespace mt
