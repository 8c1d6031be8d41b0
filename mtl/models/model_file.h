// What a weight file says about its model, and load_model(): a built-in model rebuilt
// from its file alone.
//
// Metadata of every model file (and checkpoint) that `mtl train` writes:
//   architecture   the make_model name ("multilenet", "mdmtn", "resnet18-w8", ...)
//   tasks          task names, comma separated
//   task_kinds     classification | regression per task
//   task_losses    nll | cross-entropy | binary-logits | mse | l1 | custom per task
//   classes        classes per task (0 for a regression task)
//   outputs        values per sample of each task's head (classes, 1 for binary-logits)
//   input_shape    C,H,W
//   input_mean, input_std   the input normalisation: x = (pixel / 255 - mean) / std
// Files written before task_kinds existed hold classification tasks only; their
// losses follow the architecture (log-softmax heads, binary-logits on ResNet-18's
// binary tasks, the "binary" entry).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mtl/models/model.h"

namespace mt {

struct ModelInfo {
  std::string architecture;
  std::vector<Task> tasks;   // a custom loss comes back as cross-entropy / mse (same heads)
  Shape input_chw;
  float input_mean = 0, input_std = 1;
};

// The entries above for a model (its tasks and arch()) fed with images of input_chw
// normalised by (mean, std).
std::map<std::string, std::string> model_metadata(const MultiTaskModel& m, const Shape& input_chw, float mean,
                                                  float std);

// Parses those entries; errors name `path` and the entry.
ModelInfo read_model_info(const std::map<std::string, std::string>& metadata, const std::string& path);

struct LoadedModel {
  std::shared_ptr<MultiTaskModel> model;  // in eval mode
  ModelInfo info;
  std::map<std::string, std::string> metadata;  // the file's
};

// Reads a model file or a training checkpoint, rebuilds its built-in architecture and
// loads the weights (everything checked first; errors name the file).
LoadedModel load_model(const std::string& path);

}  // namespace mt
