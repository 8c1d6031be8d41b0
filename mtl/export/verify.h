// Checking an export against the engine: compile NAME.c with the host C compiler
// (-std=c99 -O2 -Wall -Wextra -pedantic -Werror -ffp-contract=off) together with its test
// program (test_program.h) in a temporary directory, run it on test images, and compare
// its outputs with the engine's forward pass (eval mode) on the same images.
//
// An int8 export gives logits where the engine gives log-probabilities: log_softmax is
// applied to them (as the engine computes it) before the difference is taken; the argmax
// is the same either way.
#pragma once
#include <string>
#include <vector>

#include "datasets/multi_mnist.h"
#include "mtl/export/layer_graph.h"
#include "mtl/models/model.h"

namespace mt {

struct VerifyResult {
  int images = 0;
  double max_abs_diff = 0;            // max over images and outputs of |C - engine|
  std::vector<std::string> metric;    // per task: "acc" (classification) or "mae" (regression)
  std::vector<double> agreement;      // per task: fraction of images where C and the engine predict the
                                      // same class (regression: where all outputs are within 1e-3)
  std::vector<double> metric_c, metric_engine;  // per task: accuracy or mean absolute error on the labels
  std::vector<float> outputs;         // C's raw outputs, image after image
};

// The C compiler command: $CC when set, else "cc".
std::string host_cc();

// dir holds NAME.h and NAME.c (int8: an int8 export); the first n images of set (n <= set.n) are used.
VerifyResult verify_export(const std::string& dir, const std::string& name, const LayerGraph& g, MultiTaskModel& model,
                           const MultiImageSet& set, int n, bool int8, const std::string& cc = host_cc());

// The engine's outputs (task after task, as the export orders them) for images [first, first + n)
// of set, normalised with (pixel / 255 - set.mean) / set.std as the training loader does.
std::vector<float> engine_outputs(MultiTaskModel& model, const MultiImageSet& set, int first, int n);

// Runs a shell command, returning its exit status and standard output (stderr folded in
// when merge_stderr).
int run_command(const std::string& cmd, std::string& output, bool merge_stderr = true);

}  // namespace mt
