// The method factory and what the methods share.
#include "mtl/methods/method.h"

#include "engine/error.h"
#include "mtl/methods/chebyshev_al.h"

namespace mt {

std::unique_ptr<Method> make_uniform(int K);
std::unique_ptr<Method> make_fixed(int K, const std::vector<double>& w);
std::unique_ptr<Method> make_uncertainty(int K);
std::unique_ptr<Method> make_gradnorm(int K, double alpha);
std::unique_ptr<Method> make_mgda(int K, const MethodOptions& opt);
std::unique_ptr<Method> make_mgda_ub(int K, const MethodOptions& opt);

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {"single-task", "uniform", "fixed",   "uncertainty",
                                                 "gradnorm",    "mgda",    "mgda-ub", "chebyshev-al"};
  return names;
}

static std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& n : v) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::unique_ptr<Method> make_method(const std::string& name, int K, const MethodOptions& opt) {
  MT_CHECK(K >= 1, "method", "needs at least one task");
  if (name == "uniform" || name == "single-task") return make_uniform(K);
  if (name == "fixed") return make_fixed(K, opt.weights);
  if (name == "uncertainty") return make_uncertainty(K);
  if (name == "gradnorm") return make_gradnorm(K, opt.gradnorm_alpha);
  if (name == "mgda") return make_mgda(K, opt);
  if (name == "mgda-ub") return make_mgda_ub(K, opt);
  if (name == "chebyshev-al") {
    const ChebyshevOptions& c = opt.chebyshev;
    MT_CHECK((int)c.prefs.size() == K + 1, "chebyshev-al",
             "the preference needs " + std::to_string(K + 1) + " values (k_0 for sparsity, then one per task), got " +
                 std::to_string(c.prefs.size()));
    return make_chebyshev_al(K, ChebyshevConfig{c.prefs, c.ref_point, c.eps}, parse_al_variant(c.variant), c.mu0,
                             c.rho, {}, c.epochs_per_iter);
  }
  throw Error("unknown method '" + name + "' (valid: " + joined(method_names()) + ")");
}

std::string model_for_method(const std::string& method, const std::string& model) {
  if (method == "single-task") {
    MT_CHECK(model == "multilenet" || model == "multilenet-stl", "method",
          "single-task trains one MultiLeNet per task; model '" + model + "' has no single-task variant");
    return "multilenet-stl";
  }
  return model;
}

std::vector<Tensor> task_losses(MultiTaskModel& m, const Tensor& z, const Tensor& x, const Targets& y) {
  MT_CHECK((int)y.size() == m.num_tasks(), "method",
        "got labels for " + std::to_string(y.size()) + " tasks, the model has " + std::to_string(m.num_tasks()));
  std::vector<Tensor> L;
  for (int t = 0; t < m.num_tasks(); t++) L.push_back(m.task_loss(t, m.head(t, z, x), y[t]));
  return L;
}

}  // namespace mt
