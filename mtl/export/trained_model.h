// The model to export: a weight file (or training checkpoint) read by load_model
// (mtl/models/model_file.h), with what the export needs besides the weights: the
// architecture checked against the ones the export knows, the dataset, method and data
// seed of the run, and the prune mask and tying a Chebyshev-AL checkpoint carries,
// checked against its weights.
//
// A checkpoint's prune mask ("extra.mask.<param>") must hold: every group it lists is
// exactly zero in the weights; its tying labels ("extra.tie.<param>") too: groups with one
// label are bitwise equal, label -1 groups are zero. Otherwise the file is refused
// ("inconsistent"), before anything is written.
#pragma once
#include <map>
#include <string>

#include "mtl/models/model_file.h"

namespace mt {

struct TrainedModel {
  std::string path;
  LoadedModel loaded;                       // the model (eval mode), its ModelInfo and metadata
  std::string dataset, method;              // "" when the file does not say
  uint64_t data_seed = 0;
  int64_t mask_groups = 0, tied_groups = 0;  // what a checkpoint's mask and tying list (checked)
  MultiTaskModel& model() const { return *loaded.model; }
  const ModelInfo& info() const { return loaded.info; }
};

// Throws mt::Error "PATH: ..." naming the problem.
TrainedModel read_trained_model(const std::string& path);

}  // namespace mt
