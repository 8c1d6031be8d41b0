// The two-phase training procedure of Hotegni, Berkemeier, Peitz, "Multi-Objective
// Optimization for Sparse Deep Multi-Task Learning" (IJCNN 2024; reference code
// github.com/salomonhotegni/MDMTN, src/utils/WCsAL_Train.py and WCsAL_utils.py), behind
// `mtl train --method chebyshev-al` and `mtl sweep`. Nothing here prints: progress goes
// to a SparseTrainObserver, errors are thrown (UsageError for a bad setting).
//
// Objectives f = (f_0, f_1..f_K): f_0 = group_norm_sum (mtl/sparsity/sparsity.h), f_t the task
// losses; k = preference (k_0 for sparsity), a = reference point (mtl/methods/chebyshev.h).
// One "outer iteration" = epochs_per_iter epochs with lambda and mu fixed; after it
// lambda <- lambda + mu c_best (clipped at 0 in the standard variant), mu <- rho mu
// (ChebyshevAL::outer_update) and lr <- lr * lr_decay. c_best = the constraint values
// summed over the batches of the epoch with the best mean validation accuracy so far in
// the phase (ChebyshevAL::epoch_constraint_sum of that epoch).
//
// SEARCH phase (search_iters outer iterations), when k_0 > 0:
//   LSUV initialisation on the first `batch` training images (unshuffled);
//   per epoch: train every batch (Adam: zero grads, ChebyshevAL::compute_gradients, step),
//   then apply_growl(eta 1, beta1 0.8, beta2 0.2, "spike", max_layer_sparsity, k,
//   search_iters) -- the per-layer cap on pruned groups ramps to (k+1)/search_iters of
//   max_layer_sparsity --, then validation and test evaluation.
//   Selection: the epoch with the best mean validation accuracy among those whose group
//   sparsity (SparsityReport::group_sparsity, percent) is >= min_sparsity
//   (OUT/search_best.safetensors), else the best overall (OUT/search_fallback.safetensors).
// Between the phases: the selected model is reloaded; PruneMask::record;
// ParameterTying::cluster (Affinity Propagation preference sim_preference); tie.apply.
// RETRAIN phase (retrain_iters outer iterations): a fresh Adam at lr, lambda reset to
//   1/(K+1), mu to mu0, t carried over: the value it had at the selected epoch (the
//   reference keeps t in the model's state, so reloading the model reloads its t);
//   per batch: zero grads, compute_gradients, mask.zero_grads, step, mask.apply,
//   tie.apply (pruned groups stay exactly 0, clusters stay tied); per epoch evaluation;
//   the best mean validation accuracy of the phase is the final model.
// When k_0 = 0 (no sparsity objective; the reference then skips LSUV, GrOWL and tying):
//   the same schedule -- the same two phases with the same resets and the same number of
//   epochs, the search phase's best model reloaded before the second -- with the AL
//   objective only: no LSUV, no prox, no mask, no tying. So a (k_0 = 0) run is the
//   accuracy baseline of a (k_0 > 0) run with everything else equal.
//
// Files in OUT (each replaced atomically; nothing is written before the first epoch of a
// run has completed; every setting, the data and a --resume checkpoint are checked first):
//   metrics.csv        one row per epoch (see metrics columns in sparse_trainer.cpp's header)
//   config.json        the settings, at the first epoch of this process
//   last.safetensors   the model after the last epoch
//   best.safetensors   the model the procedure returns so far: in the search phase its
//                      current selection, in the retrain phase the best of that phase
//   search_best.safetensors / search_fallback.safetensors   (k_0 > 0: see above;
//                      k_0 = 0: only the fallback, the search phase's best epoch)
//   checkpoint.safetensors   model, Adam, RNG, the method (lambda, mu, rho, t), the
//                      prune mask and tying (retrain phase) and the counters; a resumed
//                      run gives the uninterrupted run's numbers
//   result.json        at the end: the final model's scores, sparsity and objectives
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "datasets/multi_mnist.h"
#include "mtl/sparsity/sparsity.h"
#include "mtl/train/trainer.h"

namespace mt {

struct SparseTrainConfig {
  // data and run (as TrainConfig)
  std::string dataset = "multimnist";
  std::string model = "mdmtn";         // mdmtn | hps | mdmtn-cifar | hps-cifar (LayerTracer models)
  int batch = 256;
  uint64_t seed = 0;
  uint64_t data_seed = 0;
  int threads = 0;
  std::string out;                     // empty: runs/<dataset>-chebyshev-al-s<seed>, or the --resume file's directory
  std::string resume;
  bool force = false;
  int val = 10000;                     // validation images held out of the training set (> 0: the selection needs it)
  int train_limit = 0, test_limit = 0;
  std::string data_dir = "data";
  std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
  std::string cifar_dir;               // cifar10-mnist only; empty: data/cifar10
  DataSourceOptions source;            // mnist-grid, imagefolder, celeba (mtl/train/data_sources.h)
  int stop_after = 0;                  // > 0: stop after this many epochs in total (continue with resume)

  // the method; unset optionals take the reference's defaults for the model (see resolve)
  std::vector<double> prefs = {0.01, 0.8, 0.19};  // k = (k_0 sparsity, k_1..k_K tasks)
  std::vector<double> ref_point;       // a; empty = zeros
  double eps = 1e-4;                   // augmentation epsilon
  std::optional<double> mu;            // mu0; published: 2.5e-8 (MultiMNIST) / 6.8e-8 (-cifar); standard: 1.0
  double rho = 2.0;
  std::string variant = "published";   // published | standard
  int search_iters = 3, retrain_iters = 10, epochs_per_iter = 3;
  std::optional<double> min_sparsity;       // percent: mdmtn 20, hps 10; -cifar: 10, 5
  std::optional<double> max_layer_sparsity; // 0.8; -cifar: mdmtn 0.3, hps 0.15
  std::optional<double> sim_preference;     // 0.7; -cifar 0.8
  std::optional<double> lr;                 // 2.5e-3; -cifar 1e-4
  std::optional<double> lr_decay;           // 0.5; -cifar 0.98
};

// The default --model of a data set: "mdmtn-cifar" for cifar10-mnist, else "mdmtn".
std::string default_sparse_model_for(const std::string& dataset);

// The settings with every default filled in (mu, min_sparsity, ... from the model name).
SparseTrainConfig resolve_sparse_config(const SparseTrainConfig& c);

// Every check that needs neither data nor files (names, ranges, the preference's
// entries, mu > 0, rho >= 1, eps >= 0, ...). Throws UsageError naming the flag.
// The preference's length (K + 1) is checked once the data set is known.
void validate_sparse_config(const SparseTrainConfig& c);

// The data of a run: training (without the validation images), validation, test.
struct SparseData {
  MultiImageSet train, val, test;
  std::map<std::string, std::string> metadata;  // "data.*" entries of the source (weight files)
};
// Reads the data set (catalogued files checked) and splits off the validation set.
SparseData load_sparse_data(const SparseTrainConfig& c);

// Names of the K + 1 objectives: "sparsity", then the task names.
std::vector<std::string> objective_names(const std::vector<std::string>& tasks);

struct SparseEpochRecord {
  int epoch = 0;                       // 1-based over the whole run
  int epochs = 0;                      // total
  std::string phase;                   // "search" | "retrain"
  int outer = 0, outers = 0;           // 1-based outer iteration within the phase
  int outer_epoch = 0;                 // 1-based epoch within the outer iteration
  double lr = 0;
  std::vector<double> lambda;          // multipliers used in this epoch (K + 1)
  double mu = 0;                       // penalty used in this epoch
  double t = 0;                        // t after the epoch
  std::vector<double> c_mean;          // constraint values, mean over the epoch's batches
  std::vector<double> f_mean;          // objectives f_0..f_K, mean over the epoch's batches
  double group_sparsity = 0;           // percent, after the epoch (and its GrOWL step)
  double param_sparsity = 0;
  int64_t zero_groups = 0, groups = 0;
  std::vector<double> val_acc, val_loss, test_acc, test_loss;
  double train_samples_per_s = 0, train_s = 0, epoch_s = 0;
  bool phase_best = false;             // best mean validation accuracy of the phase so far
  bool selected = false;               // best.safetensors was written from this epoch
};

class SparseTrainObserver {
 public:
  virtual ~SparseTrainObserver() = default;
  virtual void on_start(const RunInfo&) {}
  virtual void on_batch(const BatchInfo&) {}
  virtual void on_epoch(const SparseEpochRecord&) {}
  // phase changes and notable events, one line each ("retrain phase: 123 groups pruned, ...")
  virtual void on_note(const std::string&) {}
};

struct SparseTrainResult {
  SparseTrainConfig config;            // resolved, out set
  RunInfo info;
  std::vector<SparseEpochRecord> epochs;  // the epochs run by this call
  bool finished = false;               // false when stopped by stop_after
  int best_epoch = 0;                  // 1-based epoch of best.safetensors
  bool search_found_sparse = false;    // the search phase met min_sparsity (k_0 > 0)
  // the final model (best.safetensors) once finished
  SetScores test;                      // accuracy and loss per task on the test set
  std::vector<double> objectives;      // f_0 = group_norm_sum of the model, f_t = test loss of task t
  SparsityReport sparsity;
  std::string sparsity_text;           // format_sparsity
  std::vector<double> lambda;          // the method's state at the end
  double mu = 0, t = 0;
  int64_t pruned_groups = 0, clusters = 0, tied_groups = 0;  // the retrain phase's mask and tying
  double wall_s = 0;
  std::string metrics_path, config_path, last_path, best_path, checkpoint_path, result_path;
};

// Runs (or, with c.resume, continues) the procedure. data: the already loaded
// load_sparse_data(c) (a sweep reads the data once), or null to read it here.
SparseTrainResult train_chebyshev_al(const SparseTrainConfig& c, SparseTrainObserver* observer = nullptr,
                                     const SparseData* data = nullptr);

// The JSON summary of a finished run (result.json and the --json line).
nlohmann::ordered_json sparse_result_json(const SparseTrainResult& r);

}  // namespace mt
