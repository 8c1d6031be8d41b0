// Where `mtl train` and `mtl eval` get their images, beside make_dataset's
// MNIST composites (multimnist, mnist, ...):
//
//   mnist-grid    datasets/grid_mnist.h: K tasks (2..48) on a grid of real
//                 MNIST digits, 56x56 by default. --tasks K, or task names.
//   imagefolder   datasets/image_folder.h: images named in an attribute file
//                 (CSV or CelebA layout), any number of binary / multi-class
//                 tasks. --images DIR --labels FILE [--partition FILE].
//   celeba        the CelebA layout under --images ROOT (img_align_celeba/,
//                 list_attr_celeba.txt, list_eval_partition.txt), centre-cropped.
//
// Train and test sets of the folders: with a partition file, its rows 0
// (train) and 2 (test); rows 1 (validation) are not used (hold a validation
// set out of the training rows with --val). Without one, every selected image
// is read and test_fraction of them (rounded, at least 1) is held out as the
// test set by a seeded permutation of data_seed, the same split whatever the
// training seed. max_images keeps the first N selected rows, per partition.
// Pixel mean and std come from the training images (pixel_stats) and are
// used for both sets; they are stored in the weight file, so `mtl eval`
// normalises as training did.
//
// cifar10-mnist (make_dataset, datasets/cifar10.h) reads the CIFAR-10 files from
// --cifar-dir (cifar_dir; empty: data/cifar10) and MNIST from --data-dir.
//
// Models: the many-task sets default to "resnet18" (mtl train chooses it),
// cifar10-mnist to "mdmtn-cifar".
// Binary tasks get one-logit heads (TaskLoss::BinaryLogits) on ResNet-18 and
// two-class log-softmax heads on the other architectures (tasks_for_model).
//
// Weight files record what is needed to rebuild the model and reread the test
// set: "binary" (0/1 per task) and "data.*" entries (data_metadata).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "datasets/multi_mnist.h"
#include "mtl/models/model.h"

namespace mt {

struct TrainConfig;
struct EvalConfig;

struct DataSourceOptions {
  std::string images;           // imagefolder: folder the listed names are relative to; celeba: the root
  std::string labels;           // imagefolder: attribute file (CSV or CelebA layout)
  std::string partition;        // imagefolder: optional partition file (celeba: the root's)
  std::string tasks;            // "a,b,c": task names (all three sets); "K": the grid's first K tasks
  int image_size = 0;           // side in pixels; 0: 64 for folders, 56 for the grid
  int channels = 3;             // folders: 1 (grey) or 3 (RGB)
  int max_images = 0;           // folders: keep the first N selected rows (per partition); 0: all
  double test_fraction = 0.2;   // folders without a partition: share held out as the test set
};

// make_dataset's names, then mnist-grid, imagefolder, celeba.
const std::vector<std::string>& train_dataset_names();
// mnist-grid, imagefolder, celeba: the sets whose default model is resnet18.
bool is_many_task_dataset(const std::string& name);
// The architecture's default for a dataset ("resnet18", "mdmtn-cifar" or "multilenet").
std::string default_model_for(const std::string& dataset);

// The CIFAR-10 directory of a config's cifar_dir: kDefaultCifarDir when empty (not given).
std::string cifar_dir_or_default(const std::string& cifar_dir);

// The source flags that make sense for c.dataset, with their ranges; throws
// UsageError naming the flag.
void validate_data_source(const TrainConfig& c);

struct TrainTestSets {
  MultiImageSet train, test;
  std::map<std::string, std::string> metadata;  // "data.*" entries describing the source (for weight files)
};

// Reads (or composes) the training and test sets of c.dataset. The limits
// (train_limit, test_limit) are applied by the caller; the grid composes only
// as many images as they ask for.
TrainTestSets load_train_test(const TrainConfig& c);

// The test set a weight file was evaluated on during training, rebuilt from
// its metadata ("data.*"), with c's overrides (data_dir, source paths,
// test_limit). `dataset` is the resolved name (the file's or --dataset).
MultiImageSet load_eval_test(const std::string& dataset, const std::map<std::string, std::string>& metadata,
                             const EvalConfig& c, uint64_t data_seed, const std::string& weights_path);

// Tasks for an architecture from a set's lists (make_tasks): multi-class tasks
// use task_loss_for_model(arch); binary tasks get BinaryLogits on resnet18*.
std::vector<Task> tasks_for_model(const std::string& arch, const std::vector<std::string>& names,
                                  const std::vector<int>& num_classes, const std::vector<bool>& binary);

// "0,1,1" from binary flags (padded with 0 to n) and back.
std::string binary_flags_str(const std::vector<bool>& binary, size_t n);
std::vector<bool> parse_binary_flags(const std::string& s);

}  // namespace mt
