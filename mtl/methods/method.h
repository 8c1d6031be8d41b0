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
//   pcgrad, cagrad, imtl-g, nash-mtl, upgrad, aligned-mtl(-ub)
//                 the weights from the Gram matrix of the task gradients, at Z or at
//                 the shared parameters (gram_method.h; one file per method)
//   dwa, rlw, famo, stch  the weights from the losses alone (loss_method.h)
//   chebyshev-al  the modified weighted Chebyshev scalarisation with a sparsity objective,
//                 by an augmented Lagrangian (Hotegni et al. 2024; mtl/methods/chebyshev_al.h)
//   single-task   uniform on "multilenet-stl": one independent network per task
//
// The training loop (mtl/train/trainer.h) calls, per epoch: begin_epoch(), then per
// batch compute_gradients() and after_step() around the optimizer step, then
// epoch_metrics() (extra metrics.csv columns) and end_epoch(). A multi-phase recipe
// calls reset_phase() when a new phase starts.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/safetensors.h"
#include "mtl/solvers/min_norm.h"
#include "mtl/models/model.h"

namespace mt {

struct StepStats {
  std::vector<double> loss;    // L_t of the batch
  std::vector<double> weight;  // the weight each task's loss got (alpha_t for MGDA)
  bool solver = false;         // a min-norm solver ran (MGDA methods): the next three are set
  int solver_iterations = 0;   // min-norm solver (0 for the closed forms K <= 2)
  double solver_gap = 0;       // its relative duality gap (f(alpha) - min_i (M alpha)_i) / f(alpha), MinNormResult::gap
  double gram_seconds = 0;     // MGDA methods: wall time forming the Gram matrix <g_i, g_j>
  double solver_seconds = 0;   // MGDA methods: wall time of the min-norm solver on it
  std::vector<double> grad_norm;  // Gram methods: ||g_t|| = sqrt(M_tt), the norms the weighting saw (else empty)
};

// Named per-epoch values a method or a recipe adds to metrics.csv ("mu", "lambda_sparsity", ...).
using Columns = std::vector<std::pair<std::string, double>>;

// What the loop tells a method at the end of an epoch.
struct EpochEnd {
  int epoch = 0;          // 1-based over the run
  bool improved = false;  // the best validation score of the current phase so far
};

struct ChebyshevOptions {                 // chebyshev-al (mtl/methods/chebyshev_al.h)
  std::vector<double> prefs;              // k = (k_0 sparsity, k_1..k_K)
  std::vector<double> ref_point;          // a (empty: zeros)
  double eps = 1e-4;                      // augmentation epsilon
  std::string variant = "published";      // published | standard
  double mu0 = 2.5e-8, rho = 2.0;
  int epochs_per_iter = 3;                // epochs of one outer iteration (lambda, mu fixed)
};

// Where the Gram methods take the task gradients g_t (gram_method.h):
// dL_t/dZ (one trunk pass) or dL_t/dtheta_sh (one trunk backward per task).
enum class GradientMode { Representation, Parameters };

// mgda, mgda-ub: what head t trains on. Alpha: alpha_t L_t (the reference
// code: the network trains on sum_t alpha_t L_t); Own: L_t (the paper's
// Algorithm 2, lines 1-3); Mean: L_t / K (the heads' rates under uniform
// weights 1/K, to compare trunk directions at equal head rates).
enum class HeadWeights { Alpha, Own, Mean };
HeadWeights parse_head_weights(const std::string& s);  // "alpha" | "own" | "mean"

struct MethodOptions {
  std::vector<double> weights;                      // fixed: w_t
  GradNormalization normalization = GradNormalization::None;  // mgda, mgda-ub: scaling of g_t before the solver
  MinNormOptions solver;                            // mgda, mgda-ub, K >= 3
  HeadWeights heads = HeadWeights::Alpha;           // mgda, mgda-ub: what head t trains on
  double gradnorm_alpha = 1.5;                      // gradnorm: the asymmetry alpha
  GradientMode gradients = GradientMode::Representation;  // pcgrad, cagrad, imtl-g, nash-mtl, upgrad
  uint64_t seed = 0;                                // pcgrad (projection order), rlw (the weights)
  double cagrad_c = 0.4;                            // cagrad: radius c of the ball around the mean gradient
  double nash_max_norm = 1.0;                       // nash-mtl: clip of the shared gradient norm (0: off)
  double upgrad_reg = 1e-4;                         // upgrad: ridge on the trace-normalised Gram matrix
  double dwa_temperature = 2.0;                     // dwa: T
  double famo_lr = 0.025;                           // famo: Adam step size for the logits xi
  double famo_gamma = 1e-3;                         // famo: weight decay gamma on xi
  double stch_mu = 1.0;                             // stch: smoothing mu
  int stch_warmup_epochs = 1;                       // stch: epochs on sum_t log L_t; the last sets the nadir
  ChebyshevOptions chebyshev;
};

class Method {
 public:
  virtual ~Method() = default;
  virtual std::string name() const = 0;
  virtual StepStats compute_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y) = 0;
  // Trainable parameters of the method itself (uncertainty's s, GradNorm's w, Chebyshev-AL's t),
  // given to the optimizer beside the model's.
  virtual NamedTensors parameters() const { return {}; }
  // Called after the optimizer step (GradNorm renormalises its weights).
  virtual void after_step() {}
  virtual void begin_epoch() {}
  // Extra metrics.csv columns of the epoch that just trained (before end_epoch);
  // tasks: the task names, for column names.
  virtual Columns epoch_metrics(const std::vector<std::string>& /*tasks*/) const { return {}; }
  virtual void end_epoch(const EpochEnd&) {}
  // A new phase of a multi-phase recipe starts (Chebyshev-AL resets lambda and mu).
  virtual void reset_phase() {}
  // Method state for checkpoints (tensors and metadata under "method.").
  virtual void save_state(StFile&) const {}
  virtual void load_state(const StFile&, const std::string& /*path*/) {}
};

std::unique_ptr<Method> make_method(const std::string& name, int num_tasks, const MethodOptions& opt);
const std::vector<std::string>& method_names();
// The model a method needs ("single-task" needs one network per task).
std::string model_for_method(const std::string& method, const std::string& model);

// Forward through shared and heads; the K task losses (helper for methods).
std::vector<Tensor> task_losses(MultiTaskModel& m, const Tensor& z, const Tensor& x, const Targets& y);

}  // namespace mt
