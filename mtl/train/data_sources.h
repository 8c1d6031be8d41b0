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
// two-class log-softmax heads on the other architectures (tasks_for_set).
//
// Weight files record what is needed to rebuild the model (mtl/models/model_file.h)
// and to reread the test set: "data.*" entries (TrainTestSets::metadata).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "datasets/multi_mnist.h"
#include "mtl/models/model.h"
#include "mtl/train/config.h"

namespace mt {

// The CIFAR-10 directory of a config's cifar_dir: kDefaultCifarDir when empty (not given).
std::string cifar_dir_or_default(const std::string& cifar_dir);

struct TrainTestSets {
  MultiImageSet train, test;
  std::map<std::string, std::string> metadata;  // "data.*" entries describing the source (for weight files)
};

// Reads (or composes) the training and test sets of c.dataset. The limits
// (train_limit, test_limit) are applied by the caller; the grid composes only
// as many images as they ask for.
TrainTestSets load_train_test(const DataConfig& c);

// The sets of one training run: training (without the validation images), validation
// (empty without one) and test, and the source's "data.*" entries for weight files.
struct TrainData {
  MultiImageSet train, val, test;
  std::map<std::string, std::string> metadata;
};

// load_train_test with the limits applied and `val` images split off the training
// set by `seed`.
TrainData load_train_data(const DataConfig& c, int val, uint64_t seed);
// Splits `val` images off data.train by `seed` when val > 0 and data.val is empty
// (UsageError when val is not smaller than the training set).
void split_off_validation(TrainData& data, int val, uint64_t seed);

// The test set a weight file was evaluated on during training, rebuilt from
// its metadata ("data.*"), with c's overrides (data_dir, source paths,
// test_limit). `dataset` is the resolved name (the file's or --dataset).
MultiImageSet load_eval_test(const std::string& dataset, const std::map<std::string, std::string>& metadata,
                             const DataConfig& c, uint64_t data_seed, const std::string& weights_path);

// The catalogued files (path and sha256) a data set is read from (for cifar10-mnist
// its MNIST files: the CIFAR-10 files have no catalogued hash).
struct DataFileRecord {
  std::string path, sha256;
};
std::vector<DataFileRecord> dataset_files(const std::string& dataset, const std::string& data_dir,
                                          const std::string& fashion_dir);

// The tasks of a built-in architecture for a set: classification tasks get log-softmax
// heads with NLL (the MGDA paper's code), binary tasks one logit (BinaryLogits) on
// resnet18*; regression tasks (num_classes 0) MSE over the set's outputs.
std::vector<Task> tasks_for_set(const std::string& arch, const MultiImageSet& set);

}  // namespace mt
