// The Chebyshev augmented-Lagrangian training step of Hotegni, Berkemeier, Peitz,
// "Multi-Objective Optimization for Sparse Deep Multi-Task Learning" (IJCNN 2024;
// reference code github.com/salomonhotegni/MDMTN, src/utils/WCsAL_utils.py), as a Method.
//
// Objectives f = (f_0, f_1..f_K): f_0 = group_norm_sum(model) (mtl/sparsity/sparsity.h), f_t the
// task losses. With the preference k, reference point a, augmentation eps (mtl/methods/chebyshev.h)
// and the trainable scalar t:
//   c_i = k_i (f_i - a_i) + k_i eps sum_j (f_j - a_j) - t
//   published:  L = t + sum_i lambda_i c_i + (mu/2) sum_i c_i^2
//   standard:   L = t + sum_i (max(0, lambda_i + mu c_i)^2 - lambda_i^2) / (2 mu)
//               computed as lambda_i c_i + (mu/2) c_i^2 where lambda_i + mu c_i > 0 and
//               the constant -lambda_i^2 / (2 mu) elsewhere (the same function, without
//               the cancellation of two ~lambda^2/mu terms in float)
// f_0's gradient: the reference computes f_0 in model.obj_sparsity() from
// model.state_dict(), whose tensors are detached, so in the published variant f_0 enters
// c_0 (and through it t and lambda_0) as a number only and the weights feel the sparsity
// objective through the GrOWL step alone. The standard variant differentiates f_0 (its
// minimum-norm subgradient, mtl/sparsity/sparsity.h). set_f0_gradient() overrides the variant's
// default (apps/experiments/bench.cpp turns it on to run the torch bench's step, which differentiates
// its group-norm sum).
// One backward of L per batch through the model and t. lambda and mu stay fixed during
// an outer iteration of epochs_per_iter epochs; at its end (end_epoch) the method applies
// al_update (lambda <- lambda + mu c, clipped at 0 for "standard"; mu <- rho mu) with
//   published: as the reference (WCsAL_Train.py), c summed over the batches of the epoch
//              with the best validation score of the phase so far (EpochEnd::improved);
//   standard:  the textbook update at the current iterate, c averaged over the last
//              epoch's batches.
// reset_phase() restarts the multipliers (lambda = 1/(K+1), mu = mu0) and the outer
// iteration count, as the reference does when the retraining phase starts.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "mtl/methods/chebyshev.h"
#include "mtl/methods/method.h"

namespace mt {

// The augmented Lagrangian as a rank-0 tensor from the objectives f (K+1 rank-0 or
// one-element tensors) and t; c_out, when given, receives the c_i tensors.
Tensor chebyshev_al_objective(AlVariant variant, const ChebyshevConfig& cfg, const AlState& state,
                              const std::vector<Tensor>& f, const Tensor& t, std::vector<Tensor>* c_out = nullptr);

class ChebyshevAL : public Method {
 public:
  // num_objectives = K + 1. Validates cfg and state (one-line mt::Error); state.mu is mu0.
  ChebyshevAL(int num_tasks, ChebyshevConfig cfg, AlVariant variant, AlState state, double t0,
              int epochs_per_iter = 3);
  std::string name() const override { return "chebyshev-al"; }

  // f = (group_norm_sum, L_1..L_K), L_AL backward (f_0 a constant unless f0_gradient()).
  // StepStats: loss = L_1..L_K, weight = dL_AL/df_t for the K tasks (al_gradient at this
  // batch's f and t); the sparsity objective's value and weight are last_objectives()[0],
  // last_weights()[0].
  StepStats compute_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y) override;
  NamedTensors parameters() const override { return {{"method.t", t_}}; }  // t, rank 0
  void begin_epoch() override { reset_epoch(); }
  // mu, t, lambda_<o>, c_<o>, f_<o> (o = sparsity, then the tasks): the multipliers and mu
  // used during the epoch, t after it, c and f averaged over its batches.
  Columns epoch_metrics(const std::vector<std::string>& tasks) const override;
  // Records c of an improved epoch; at the end of an outer iteration, the multiplier update.
  void end_epoch(const EpochEnd& e) override;
  void reset_phase() override;
  void save_state(StFile& f) const override;
  void load_state(const StFile& f, const std::string& path) override;

  // The multiplier update of an outer iteration (al_update); c has K + 1 entries.
  void outer_update(const std::vector<double>& c);

  // Constraint values c_i (and objectives f_i) of every batch since the last
  // reset_epoch(), summed (each at its batch's f and t, before the step), and the number
  // of batches.
  const std::vector<double>& epoch_constraint_sum() const { return c_sum_; }
  const std::vector<double>& epoch_objective_sum() const { return f_sum_; }
  int64_t epoch_batches() const { return c_batches_; }
  void reset_epoch();
  int epochs_per_iter() const { return epochs_per_iter_; }

  const AlState& state() const { return state_; }
  const ChebyshevConfig& config() const { return cfg_; }
  AlVariant variant() const { return variant_; }
  bool f0_gradient() const { return f0_gradient_; }
  void set_f0_gradient(bool on) { f0_gradient_ = on; }
  double t() const { return t_.item(); }
  void set_t(double t);
  // Of the last batch: f (K+1 values), c (K+1), dL_AL/df (K+1) and dL_AL/dt.
  const std::vector<double>& last_objectives() const { return f_; }
  const std::vector<double>& last_constraints() const { return c_; }
  const std::vector<double>& last_weights() const { return dL_df_; }
  double last_dt() const { return dL_dt_; }
  double last_value() const { return L_; }  // L_AL of the last batch

 private:
  int K_;
  ChebyshevConfig cfg_;
  AlVariant variant_;
  AlState state_;
  double mu0_;
  int epochs_per_iter_;
  int outer_epochs_ = 0;             // epochs done in the current outer iteration
  std::vector<double> best_c_sum_;   // c_sum_ of the phase's best-validation epoch so far
  Tensor t_;
  bool f0_gradient_;  // default: variant_ == AlVariant::Standard
  std::vector<double> c_sum_, f_sum_;
  int64_t c_batches_ = 0;
  std::vector<double> f_, c_, dL_df_;
  double dL_dt_ = 0, L_ = 0;
};

// K tasks (K + 1 objectives, the sparsity first). lambda0 empty = 1/(K+1) each (the
// reference's start); mu0 > 0; rho >= 1. t starts at a standard normal draw from
// global_rng() (the reference: torch.randn(1)), so manual_seed() fixes it.
// Errors (one line, from ChebyshevConfig::validate / AlState::validate): a preference of
// the wrong length, with a negative or non-finite entry, all zeros; eps < 0; mu <= 0;
// rho < 1; lambda0 of the wrong length.
std::unique_ptr<ChebyshevAL> make_chebyshev_al(int num_tasks, const ChebyshevConfig& cfg, AlVariant variant,
                                               double mu0, double rho, const std::vector<double>& lambda0 = {},
                                               int epochs_per_iter = 3);

}  // namespace mt
