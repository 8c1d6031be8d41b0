// PCGrad (Yu, Kumar, Gupta, Levine, Hausman & Finn, "Gradient Surgery for
// Multi-Task Learning", NeurIPS 2020), Algorithm 1 in Gram form.
//
// For each task i, g_i^PC starts at g_i; for every other task j, in a random
// order, a conflict is projected away:
//   if <g_i^PC, g_j> < 0:  g_i^PC <- g_i^PC - <g_i^PC, g_j> / ||g_j||^2 g_j
// and the shared part trains on sum_i g_i^PC. Each g_i^PC stays a combination
// sum_k c_ik g_k, so <g_i^PC, g_j> = sum_k c_ik M_kj: the surgery runs on the
// coefficient vectors c_i and the update's weights are w = sum_i c_i.
//
// Order: one permutation per i, drawn from a generator seeded with
// MethodOptions::seed and saved in checkpoints. j = i is skipped, as in the
// paper's Algorithm 1 (the authors' code and LibMTL also test g_i against
// itself, which matters only when earlier projections made <g_i^PC, g_i> < 0).
// A zero g_j is never projected on. Heads train on L_t unchanged: PCGrad
// alters only the shared gradient.
#include "engine/rng.h"
#include "mtl/methods/gram_method.h"
#include "mtl/methods/method_state.h"

namespace mt {

namespace {

class PCGrad : public GramWeighting {
 public:
  explicit PCGrad(uint64_t seed) : rng_(seed ^ 0x5043ULL) {}  // "PC": not the model initialisation's stream
  std::string name() const override { return "pcgrad"; }

  TaskWeights weights(const Gram& M, const std::vector<double>&, int64_t) override {
    const int K = M.K;
    std::vector<double> w(K, 0.0);
    std::vector<int> order(K);
    for (int i = 0; i < K; i++) {
      for (int k = 0; k < K; k++) order[k] = k;
      for (int k = K - 1; k > 0; k--) std::swap(order[k], order[rng_.below(k + 1)]);  // Fisher-Yates
      std::vector<double> c(K, 0.0);  // g_i^PC = sum_k c_k g_k
      c[i] = 1.0;
      for (int j : order) {
        if (j == i || !(M(j, j) > 0)) continue;
        double dot = 0;  // <g_i^PC, g_j>
        for (int k = 0; k < K; k++) dot += c[k] * M(k, j);
        if (dot < 0) c[j] -= dot / M(j, j);
      }
      for (int k = 0; k < K; k++) w[k] += c[k];
    }
    return {w, std::vector<double>(K, 1.0), 0};
  }

  void save_state(StFile& f) const override { put_rng(f, "method.pcgrad.rng", rng_); }
  void load_state(const StFile& f, const std::string& path) override { rng_ = get_rng(f, "method.pcgrad.rng", path); }

 private:
  Rng rng_;
};

}  // namespace

std::unique_ptr<GramWeighting> make_pcgrad_weighting(const MethodOptions& opt) {
  return std::make_unique<PCGrad>(opt.seed);
}

}  // namespace mt
