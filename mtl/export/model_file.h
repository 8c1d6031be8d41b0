// A trained model read back from a weight file written by `mtl train` (or a training
// checkpoint), with what the export needs besides the weights: the input shape and
// normalisation, the dataset it was trained on, and the prune mask and tying a
// Chebyshev-AL checkpoint carries.
//
// The normalisation is the metadata's input_mean / input_std when present; otherwise the
// one the dataset code applies to the file's dataset (MultiImageSet::mean / std, read by
// building the dataset's test set). (This loader stands in for load_model until the
// weight-file metadata carries the normalisation and the task kinds.)
//
// A Chebyshev-AL checkpoint's prune mask ("extra.mask.<param>") must hold: every group it
// lists is exactly zero in the weights; its tying labels ("extra.tie.<param>") too: groups
// with one label are bitwise equal, label -1 groups are zero. Otherwise the file is
// refused ("inconsistent").
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datasets/catalog.h"
#include "mtl/models/model.h"

namespace mt {

struct ModelFile {
  std::string path;
  std::map<std::string, std::string> metadata;
  std::string architecture, dataset, method;
  std::shared_ptr<MultiTaskModel> model;  // in eval mode
  Shape input_chw;                         // C, H, W
  float input_mean = 0.f, input_std = 1.f;
  uint64_t data_seed = 0;
  int64_t mask_groups = 0, tied_groups = 0;  // what a checkpoint's mask and tying list (checked)
};

// Throws mt::Error "PATH: ..." naming the problem.
ModelFile read_model_file(const std::string& path, const DatasetPaths& paths);

}  // namespace mt
