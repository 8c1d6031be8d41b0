// The `mtl` subcommands, one file each (apps/cmd_*.cpp), dispatched by apps/mtl.cpp.
// Each takes (argc, argv) with argv[0] the subcommand's name and returns the exit
// status; errors are thrown (UsageError -> exit 2, other mt::Error -> exit 1).
#pragma once
#include <cstdio>
#include <vector>

#include "apps/cli.h"
#include "mtl/train/config.h"

namespace mt::cli {

// The settings of `mtl train`: the library's TrainConfig and the console's switches.
struct TrainArgs {
  TrainConfig c;
  bool json = false, quiet = false, report = false;
  std::string steps_csv;  // mtl train --steps-csv
};
// The flags of `mtl train` (mtl sweep takes most of them).
const std::vector<Flag<TrainArgs>>& train_flags();

// A TrainObserver printing progress: a bar on a terminal, one line per epoch and per note.
class Console : public TrainObserver {
 public:
  Console(bool quiet, std::string prefix = "");
  void set_prefix(const std::string& p) { prefix_ = p; }
  void on_start(const RunInfo& info) override;
  void on_batch(const BatchInfo& b) override;
  void on_epoch(const EpochRecord& r) override;
  void on_note(const std::string& note) override;
  void clear() { bar_.clear(); }
  // Every step's losses and task weights (of the global batch under mpirun) to a CSV
  // file, opened at the start of training (mt::Error naming it when it cannot be).
  void log_steps(const std::string& path) { steps_path_ = path; }
  ~Console() override;

 private:
  std::string steps_path_;
  std::FILE* steps_ = nullptr;
  bool quiet_;
  ProgressBar bar_;
  std::string prefix_, weight_name_;
  RunInfo info_;
};

int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_predict(int argc, char** argv);
int cmd_sweep(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_scale(int argc, char** argv);
int cmd_report(int argc, char** argv);
int cmd_export(int argc, char** argv);

}  // namespace mt::cli
