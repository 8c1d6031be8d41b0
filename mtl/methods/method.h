// The training methods behind one interface: given a batch, a method runs
// the forward pass, combines the task losses its own way, and leaves the
// gradient of its objective in every parameter's .grad (the caller zeroes the
// gradients before and applies the optimizer after).
//
//   uniform       sum_t L_t
//   fixed         sum_t w_t L_t, w given
//   uncertainty   sum_t exp(-s_t) L_t + s_t / 2 (Kendall et al. 2018; s_t = log sigma_t^2 trained)
//   gradnorm      sum_t w_t L_t with w_t trained to balance gradient norms (Chen et al. 2018)
//   mgda          min-norm alpha over the gradients of all shared parameters (Sener & Koltun, exact)
//   mgda-ub       min-norm alpha over the gradients w.r.t. Z (Sener & Koltun's upper bound)
//   single-task   uniform on "multilenet-stl": one independent network per task
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "mtl/solvers/min_norm.h"
#include "mtl/models/model.h"

namespace mt {

struct StepStats {
  std::vector<double> loss;    // L_t of the batch
  std::vector<double> weight;  // the weight each task's loss got (alpha_t for MGDA)
  int solver_iterations = 0;   // min-norm solver (MGDA methods)
  double solver_gap = 0;       // MGDA methods: the solver's relative duality gap (MinNormResult::gap)
  double gram_seconds = 0;     // MGDA methods: wall time forming the Gram matrix <g_i, g_j>
  double solver_seconds = 0;   // MGDA methods: wall time of the min-norm solver on it
};

struct MethodOptions {
  std::vector<double> weights;                      // fixed: w_t
  GradNormalization normalization = GradNormalization::None;  // mgda, mgda-ub: scaling of g_t before the solver
  MinNormOptions solver;                            // mgda, mgda-ub, K >= 3
  double gradnorm_alpha = 1.5;                      // gradnorm: the asymmetry alpha
};

class Method {
 public:
  virtual ~Method() = default;
  virtual std::string name() const = 0;
  virtual StepStats compute_gradients(MultiTaskModel& m, const Tensor& x, const Labels& y) = 0;
  // Trainable parameters of the method itself (uncertainty's s, GradNorm's w),
  // given to the optimizer beside the model's.
  virtual NamedTensors parameters() const { return {}; }
  // Called after the optimizer step (GradNorm renormalises its weights).
  virtual void after_step() {}
  // Method state for checkpoints (tensors under "method.").
  virtual void save_state(StFile&) const {}
  virtual void load_state(const StFile&, const std::string& /*path*/) {}
};

std::unique_ptr<Method> make_method(const std::string& name, int num_tasks, const MethodOptions& opt);
const std::vector<std::string>& method_names();
// The model a method needs ("single-task" needs one network per task).
std::string model_for_method(const std::string& method, const std::string& model);

// Forward through shared and heads; the K task losses (helper for methods).
std::vector<Tensor> task_losses(MultiTaskModel& m, const Tensor& z, const Tensor& x, const Labels& y);

}  // namespace mt
