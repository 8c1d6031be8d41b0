// Evaluation: a model's per-task metric and loss on a whole set (used by the training
// loop each epoch), `mtl eval` on a saved model, and `mtl predict`'s per-image outputs.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/multi_mnist.h"
#include "mtl/models/model.h"
#include "mtl/train/config.h"

namespace mt {

struct SetScores {
  int n = 0;
  // per task: accuracy as a fraction (classification) or the mean absolute error
  // (regression; averaged over the task's outputs), and the mean loss over samples
  std::vector<double> metric, loss;
};

// The whole set in eval mode without recording a tape (restores the model's
// training mode afterwards).
SetScores evaluate(MultiTaskModel& model, const MultiImageSet& set, int batch = 1000);

// Per batch of a set in eval mode, no tape: the first sample's index and the outputs of
// every task's head (the tensors handed to task_loss).
void predict(MultiTaskModel& model, const MultiImageSet& set, int batch,
             const std::function<void(int first, const std::vector<Tensor>& outputs)>& on_batch);

// ---- mtl eval / mtl predict --------------------------------------------------------

// DataConfig's dataset empty (the default here): the file's; data_seed: the file's
// unless data_seed_override; the source paths, when set, replace the file's.
struct EvalConfig : DataConfig {
  EvalConfig() { dataset.clear(); }
  std::string weights;                 // a file from `mtl train` (model or checkpoint)
  std::optional<uint64_t> data_seed_override;
  std::optional<int> threads;          // unset: MTL_THREADS or all cores
  std::string out;                     // mtl predict: the CSV file to write
};

struct EvalResult {
  std::string weights, architecture, dataset, method;
  std::vector<std::string> tasks, metrics;  // metrics: "acc" / "mae" per task
  std::map<std::string, std::string> metadata;
  int threads = 1;
  SetScores test;
  int64_t rows_written = 0;            // mtl predict
};

// Rebuilds the model from the file (load_model), reads the test set its metadata
// names (or config's dataset), checks that the tasks match and evaluates it. Errors
// name the file.
EvalResult evaluate_weights(const EvalConfig& config);

// mtl predict: the same model and test set; writes config.out, one CSV row per image:
// index, then per task <task>_pred and <task>_true (class, or value per output
// <task>_pred_<j> / <task>_true_<j> for regression) and, for classification,
// <task>_p: the predicted class's probability. Written atomically.
EvalResult predict_weights(const EvalConfig& config);

nlohmann::ordered_json eval_json(const EvalResult& r, const std::string& command);

}  // namespace mt
