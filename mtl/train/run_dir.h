// RunDir: the one owner of a run's directory (--out). Every file in it is written
// through here, each to PATH.tmp.<pid> first, fsynced and renamed onto PATH, so a
// file is always either the old one or the complete new one.
//
//   config.json              the settings, written with the first epoch's files
//   metrics.csv              one row per epoch (rewritten whole each epoch)
//   last.safetensors         the model after the last epoch
//   best.safetensors         the model the selection rule picked so far
//   checkpoint.safetensors   everything needed to continue (written last each epoch,
//                            so it never claims an epoch whose other files are missing)
//   result.json              at the end of a run
//   (and whatever a recipe adds, e.g. search_best.safetensors)
//
// Opening a directory checks, before any work starts, that it is usable: a directory
// (or creatable as one) that is writable, and not another run's files unless `force`
// or resuming that very run. A run that died before its first checkpoint (at most one
// metrics row, no checkpoint) is not "another run": it is replaced without --force.
// Temporary files left by a killed process (NAME.tmp.<pid> whose process is gone) are
// removed when the directory is opened.
#pragma once
#include <string>
#include <vector>

#include "layers/serialize.h"
#include "optim/checkpoint.h"

namespace mt {

// Text written to PATH.tmp.<pid>, fsynced and renamed onto PATH (mt::Error naming PATH).
void write_text_atomic(const std::string& path, const std::string& text);

class RunDir {
 public:
  // Throws UsageError (mtl/train/config.h) when `out` cannot hold this run (check()),
  // then removes the stale temporary files in it. writer = false (the ranks other than
  // 0 of a data-parallel job, mtl/dist/): the checks alone, and every write below is
  // skipped.
  RunDir(std::string out, const std::string& resume, bool force, bool writer = true);
  // The checks alone, changing nothing.
  static void check(const std::string& out, const std::string& resume, bool force);

  const std::string& dir() const { return dir_; }
  std::string path(const std::string& name) const;  // dir/name
  // Leftover temporary files removed when the directory was opened.
  const std::vector<std::string>& removed_temporaries() const { return removed_; }

  // The directory and config.json are created by the first write below.
  void set_config(std::string config_json) { config_ = std::move(config_json); }

  void save_model(const std::string& name, const Module& m, const Metadata& meta);
  void save_checkpoint(const Module& model, const Optimizer& opt, const CheckpointExtra& extra);
  void write_text(const std::string& name, const std::string& text);
  // metrics.csv: the header and one line per row.
  void write_metrics(const std::string& header, const std::vector<std::string>& rows);

  // Rows of an earlier metrics.csv for epochs 1..upto, when its header matches (resume).
  static std::vector<std::string> previous_rows(const std::string& metrics_path, const std::string& header,
                                                int upto);

 private:
  void ensure_created();
  std::string dir_, config_;
  bool writer_ = true;
  bool created_ = false;
  std::vector<std::string> removed_;
};

}  // namespace mt
