// The two-phase training procedure of Hotegni, Berkemeier, Peitz, "Multi-Objective
// Optimization for Sparse Deep Multi-Task Learning" (IJCNN 2024; reference code
// github.com/salomonhotegni/MDMTN, src/utils/WCsAL_Train.py and WCsAL_utils.py), as a
// recipe of the one training loop (mtl/train/trainer.h), with the Chebyshev-AL method
// (mtl/methods/chebyshev_al.h) as the objective.
//
// One "outer iteration" = epochs_per_iter epochs with lambda and mu fixed (the method
// updates them at its end); the lr of outer iteration k of a phase is lr * lr_decay^k
// (Adam).
//
// SEARCH phase (search_iters outer iterations), when k_0 > 0:
//   LSUV initialisation on the first `batch` training images (unshuffled);
//   per epoch: train every batch, then apply_growl(eta 1, beta1 0.8, beta2 0.2, "spike",
//   max_layer_sparsity, k, search_iters) -- the per-layer cap on pruned groups ramps to
//   (k+1)/search_iters of max_layer_sparsity --, then validation and test evaluation.
//   Selection: the epoch with the best mean validation accuracy among those whose group
//   sparsity (SparsityReport::group_sparsity, percent) is >= min_sparsity
//   (OUT/search_best.safetensors), else the best overall (OUT/search_fallback.safetensors).
// Between the phases: the selected model (and t, the method's parameter, as it was at
//   that epoch: the reference keeps t in the model's state) is reloaded;
//   PruneMask::record; ParameterTying::cluster (Affinity Propagation preference
//   sim_preference); tie.apply; a fresh Adam at lr; the method's reset_phase()
//   (lambda = 1/(K+1), mu = mu0).
// RETRAIN phase (retrain_iters outer iterations): per batch, the pruned groups'
//   gradients zeroed before the step, the mask and the tying applied after it (pruned
//   groups stay exactly 0, clusters stay tied); per epoch evaluation; the best mean
//   validation accuracy of the phase is the final model.
// When k_0 = 0 (no sparsity objective; the reference then skips LSUV, GrOWL and tying):
//   the same two phases with the same resets and epochs, the search phase's best model
//   reloaded before the second, without LSUV, prox, mask or tying. So a (k_0 = 0) run is
//   the accuracy baseline of a (k_0 > 0) run with everything else equal.
//
// metrics.csv gets the method's columns (mu, t, lambda_*, c_*, f_*) and outer,
// outer_epoch, group_sparsity, param_sparsity (percent), zero_groups and, per layer,
// layer_sparsity_<layer> (percent of its groups that are zero), all after the epoch's
// GrOWL step; result.json the final model's test scores, sparsity, compression,
// FLOPs and objectives f = (group-norm sum, test loss per task).
#pragma once
#include <string>
#include <vector>

#include "mtl/sparsity/sparsity.h"
#include "mtl/train/recipe.h"

namespace mt {

// Names of the K + 1 objectives: "sparsity", then the task names.
std::vector<std::string> objective_names(const std::vector<std::string>& tasks);

class SparseRecipe : public Recipe {
 public:
  explicit SparseRecipe(const TrainConfig& resolved);
  int epochs() const override { return total_epochs_; }
  double lr_at(int epoch) const override;
  std::string phase_at(int epoch) const override { return epoch < search_epochs_ ? "search" : "retrain"; }
  bool has_phases() const override { return true; }
  std::string criterion() const override { return "val_acc"; }

  void start(RunContext& ctx) override;
  void begin_epoch(int epoch, RunContext& ctx) override;
  void before_step(RunContext& ctx) override;
  void after_step(RunContext& ctx) override;
  void end_training(int epoch, RunContext& ctx) override;
  Columns epoch_columns(RunContext& ctx) override;
  Selection select(const EpochRecord& rec, RunContext& ctx) override;
  void epoch_files(const EpochRecord& rec, RunContext& ctx) override;
  void save_state(StFile& f) const override;
  void load_state(const StFile& f, const std::string& path, RunContext& ctx) override;
  void finish(RunContext& ctx, nlohmann::ordered_json& result) override;
  void describe(nlohmann::ordered_json& j) const override;

 private:
  int outer_index(int epoch) const;  // 0-based outer iteration within the epoch's phase
  void start_retrain(RunContext& ctx);

  TrainConfig c_;
  bool sparse_;  // k_0 > 0: LSUV, GrOWL, mask and tying (as the reference)
  int epi_, search_epochs_, total_epochs_;
  int epoch_ = 0;  // the current epoch (0-based)
  // the procedure's state (all of it in the checkpoint)
  bool transitioned_ = false;       // the retrain phase has been set up
  double phase_best_score_ = -1;    // best mean validation accuracy of the current phase (-1: none yet)
  double sparse_best_score_ = -1;   // search: best mean val accuracy with group sparsity >= min
  int sparse_best_epoch_ = 0, fallback_epoch_ = 0, best_epoch_ = 0;
  StFile snap_sparse_, snap_fallback_, snap_best_;  // model + method parameters of those epochs
  PruneMask mask_;
  ParameterTying tie_;
  SparsityReport report_;           // of the last epoch (epoch_columns)
};

}  // namespace mt
