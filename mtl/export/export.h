// `mtl export`: a trained model to DIR/NAME.h and DIR/NAME.c (emit_c.h), its pruned
// structure removed (prune.h), in fp32 or int8 (quantize.h), optionally with a self-test
// program DIR/NAME_test.c (test_program.h).
//
// Everything is computed and checked before anything is written; the files are written to
// a temporary directory beside DIR and renamed into place. DIR may be new, empty, or hold
// only this export's own files (NAME.h, NAME.c, NAME_test.c), which are replaced; any
// other content is an error and DIR is left as it was.
#pragma once
#include <string>
#include <vector>

#include "datasets/multi_mnist.h"
#include "mtl/export/layer_graph.h"
#include "mtl/export/prune.h"
#include "mtl/export/quantize.h"
#include "mtl/export/trained_model.h"
#include "mtl/train/config.h"

namespace mt {

struct ExportOptions {
  std::string weights;      // a weight file (or checkpoint) written by mtl train
  std::string out;          // the directory to write
  std::string name;         // C identifier; "" = the architecture's name (mdmtn, hps_cifar, ...)
  bool int8 = false;
  int calib = 100;          // int8: calibration images (the first N training images)
  bool prune = true;        // false: keep the dense structure (the zeros stay)
  int test_images = 0;      // > 0: also write NAME_test.c with the first N test images
  DataConfig data;          // where the data is (data_dir, ...); the dataset is the file's
};

struct ExportFigures {
  int64_t params = 0, macs = 0, const_bytes = 0, arena_bytes = 0;
};

struct ExportResult {
  std::string dir, name;
  std::vector<std::string> files;  // written, in DIR
  TrainedModel model;
  LayerGraph dense_graph;          // before pruning
  LayerGraph graph;                // as exported (pruned unless options.prune is false)
  QuantGraph quant;                // int8 only
  bool int8 = false;
  ExportFigures dense, exported;   // the graph before pruning and as exported
  PruneReport prune;
};

ExportResult export_model(const ExportOptions& o);

// The test set the model was evaluated on (load_eval_test: the file's dataset and data
// seed), normalised as the model was trained, for --test-images and --verify.
MultiImageSet export_test_set(const TrainedModel& m, const DataConfig& data);

}  // namespace mt
