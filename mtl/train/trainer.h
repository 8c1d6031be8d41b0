// The training loop of `mtl train` and the evaluation of `mtl eval` as
// library functions, so the command line (apps/mtl.cpp), benchmarks and
// sweeps share one implementation. Nothing here prints: progress goes to a
// TrainObserver, errors are thrown.
//
// One epoch e (0-based; users and files see e + 1):
//   lr = StepLR(lr, lr_step, lr_gamma, lr_first_step).lr_at(e) (constant without --lr-step)
//   model.train(); the loader visits the training set in the order fixed by (seed, e)
//   per batch: zero the gradients, method->compute_gradients(), check every L_t
//              is finite (DivergedError otherwise), optimizer step, method->after_step()
//   model.eval(): accuracy and mean loss per task on the validation set (if any)
//              and on the test set, without recording a tape
//   write OUT/last.safetensors, OUT/best.safetensors (when the selection score
//   improved), OUT/metrics.csv, OUT/checkpoint.safetensors (and OUT/config.json
//   at the first epoch of this process).
//
// Nothing is written to OUT before the first epoch of a run has completed
// (every setting, the data and a --resume checkpoint are validated first),
// and every file is replaced atomically (temporary file + rename), so a run
// that fails leaves OUT as it was after its last good epoch.
//
// Model selection (best.safetensors): with a validation set (val > 0) the
// epoch with the highest mean validation accuracy; without one, the epoch with
// the lowest mean training loss (the mean over tasks of the epoch's mean batch
// loss, measured in training mode). The test set is never used for selection.
//
// Reproducibility: the global RNG is seeded with `seed` before the model is
// built; the data set composition uses `data_seed` (fixed by default, so runs
// with different seeds see the same MultiMNIST); the loader order depends only
// on (seed, epoch); and a checkpoint holds the model, the optimizer, the RNG,
// the method's state and the epoch counter. So a run resumed from the
// checkpoint of epoch k reproduces the uninterrupted run's numbers exactly,
// and (the engine's reductions being in a fixed order) so does any thread count.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "datasets/multi_mnist.h"
#include "engine/error.h"
#include "mtl/train/data_sources.h"
#include "mtl/models/model.h"

namespace mt {

// A bad setting: the command line exits with status 2 (other errors: 1).
struct UsageError : Error {
  explicit UsageError(const std::string& what) : Error(what) {}
};

// Training diverged (a non-finite loss, task weight or parameter).
struct DivergedError : Error {
  explicit DivergedError(const std::string& what) : Error(what) {}
};

struct TrainConfig {
  std::string dataset = "multimnist";
  std::string model = "multilenet";    // the model the method needs is derived from it (model_for_method)
  std::string method = "mgda-ub";
  int epochs = 10;                     // total, counting the epochs of a resumed checkpoint
  int batch = 256;
  double lr = 0.05;
  std::string optimizer = "sgd";       // sgd | adam | adamw
  double momentum = 0.9;               // sgd only
  double weight_decay = 0;
  int lr_step = 0;                     // StepLR every lr_step epochs; 0 = constant lr
  double lr_gamma = 0.1;
  int lr_first_step = 0;               // first decay after this many epochs; 0 = lr_step
  uint64_t seed = 0;                   // initialisation, dropout, shuffling, validation split
  uint64_t data_seed = 0;              // composition of the Multi* data sets
  int threads = 0;                     // 0 = leave the engine's setting (MTL_THREADS or all cores)
  std::string out;                     // empty: default_out_dir(), or the --resume file's directory
  std::string resume;                  // checkpoint to continue from
  bool force = false;                  // allow replacing another run's files in out
  int val = 0;                         // images of the training set held out for validation
  std::vector<double> weights;         // method "fixed"
  std::string normalization = "none";  // mgda / mgda-ub: none | l2 | loss | loss+
  std::string solver = "frank-wolfe";  // mgda / mgda-ub with >= 3 tasks: frank-wolfe | projected-gradient
  int train_limit = 0;                 // use only the first N training images (0 = all)
  int test_limit = 0;                  // use only the first N test images (0 = all)
  std::string data_dir = "data";
  std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
  std::string cifar_dir;               // cifar10-mnist's CIFAR-10 files; empty: data/cifar10 (only that set may set it)
  DataSourceOptions source;            // mnist-grid, imagefolder, celeba (mtl/train/data_sources.h)
};

// "runs/<dataset>-<method>-s<seed>"
std::string default_out_dir(const TrainConfig& c);

// Every check that needs neither data nor files: names, ranges, --weights
// only with "fixed", and so on. Throws UsageError naming the flag.
void validate_train_config(const TrainConfig& c);

struct RunInfo {
  std::vector<std::string> tasks;
  std::string model;                   // the resolved architecture
  int start_epoch = 0;                 // epochs done before this run (resume)
  int epochs = 0;                      // total
  int batches_per_epoch = 0;
  int train_n = 0, val_n = 0, test_n = 0;
  int threads = 1;
  int64_t num_parameters = 0;
  std::string out, resumed_from;
};

struct BatchInfo {
  int epoch = 0;                        // 1-based
  int epochs = 0;
  int batch = 0, batches = 0;           // 1-based index, batches per epoch
  int64_t global_step = 0;
  std::vector<double> loss, weight;     // this batch's L_t and the weight each got
  int64_t samples = 0;                  // done in this epoch
  double seconds = 0;                   // training time in this epoch so far
};

struct EpochRecord {
  int epoch = 0;                        // 1-based
  double lr = 0;
  std::vector<double> train_loss;       // mean batch loss per task
  std::vector<double> weight;           // mean weight (alpha_t for MGDA) per task
  std::vector<double> val_acc, val_loss;    // empty without a validation set
  std::vector<double> test_acc, test_loss;  // accuracy as a fraction in [0,1]
  double train_samples_per_s = 0;       // the training loop alone
  double train_s = 0, epoch_s = 0;      // epoch_s: training, evaluation and the model files
  int64_t global_step = 0;              // optimizer steps after this epoch
  bool best = false;                    // best.safetensors was written from this epoch
};

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_start(const RunInfo&) {}
  virtual void on_batch(const BatchInfo&) {}
  virtual void on_epoch(const EpochRecord&) {}
};

struct TrainResult {
  TrainConfig config;                   // as run: out resolved
  RunInfo info;
  std::vector<EpochRecord> epochs;      // the epochs run by this call
  int best_epoch = 0;                   // 1-based, possibly from before a resume
  std::string best_criterion;           // "val_acc" or "train_loss"
  std::vector<double> best_test_acc;    // test accuracy of best.safetensors
  double train_samples_per_s = 0;       // mean over this call's epochs
  double wall_s = 0;
  std::string metrics_path, config_path, last_path, best_path, checkpoint_path;
};

TrainResult train(const TrainConfig& config, TrainObserver* observer = nullptr);

// ---- evaluation -------------------------------------------------------------

struct SetScores {
  int n = 0;
  std::vector<double> acc, loss;  // per task; accuracy as a fraction, loss the mean over samples
};

// Accuracy and mean loss per task of a whole set, in eval mode without a tape
// (restores the model's training mode afterwards).
SetScores evaluate(MultiTaskModel& model, const MultiImageSet& set, int batch = 1000);

struct EvalConfig {
  std::string weights;                 // a file from `mtl train` (model or checkpoint)
  std::string dataset;                 // empty: the file's "dataset" metadata
  int64_t data_seed = -1;              // < 0: the file's "data_seed" metadata (else 0)
  int test_limit = 0;
  int threads = 0;
  std::string data_dir = "data";
  std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
  std::string cifar_dir;               // cifar10-mnist only; empty: data/cifar10
  DataSourceOptions source;            // imagefolder, celeba: non-empty paths replace the file's
};

struct EvalResult {
  std::string weights, architecture, dataset, method;
  std::vector<std::string> tasks;
  std::map<std::string, std::string> metadata;
  int threads = 1;
  SetScores test;
};

// Builds the model named by the file's metadata, loads its weights (all
// checked first; errors name the file) and evaluates it on the test set.
EvalResult evaluate_weights(const EvalConfig& config);

// ---- helpers shared with other commands ---------------------------------------

// The first n images of a set (n >= set.n: the whole set).
MultiImageSet take_first(const MultiImageSet& set, int n);

// The catalogued files (path and sha256) a data set is read from (for cifar10-mnist
// its MNIST files: the CIFAR-10 files have no catalogued hash).
struct DataFileRecord {
  std::string path, sha256;
};
std::vector<DataFileRecord> dataset_files(const std::string& dataset, const std::string& data_dir,
                                          const std::string& fashion_dir);

// The loss each architecture's heads are built for and trained with (log-softmax + NLL).
TaskLoss task_loss_for_model(const std::string& model);

// The file writing and --out checks of train(), for other trainers (mtl/train/sparse_trainer.h):
// text written to PATH.tmp.<pid>, fsynced and renamed onto PATH (mt::Error naming PATH);
// c.out must be a usable directory that holds no other run's files unless c.force or
// c.resume is a checkpoint in it (UsageError).
void write_text_atomic(const std::string& path, const std::string& text);
void check_run_out_dir(const TrainConfig& c);

}  // namespace mt
