// Image datasets for multi-task learning: MultiMNIST (Sener & Koltun, 2018),
// Multi-Fashion, Multi-Fashion+MNIST, and plain MNIST / Fashion-MNIST (and, by
// name in make_dataset, Cifar10Mnist of datasets/cifar10.h).
//
// Composition (one output image per image i of the left base set):
//   partner j = rng.below(right.n), drawn in order i = 0, 1, ... from one
//   DataRng seeded with the seed (for same-set composition j may equal i);
//   36x36 canvas, left image at rows/cols 0..27, right image at rows/cols
//   6..33, pixel-wise max where they overlap, 0 elsewhere; nearest-neighbour
//   resize to 28x28 with source index (dst * 36) / 28 (integer division),
//   kept as uint8; labels (left label, right label).
//
// Determinism: DataRng is xoshiro256** whose 256-bit state is filled from the
// seed by splitmix64; below(n) is Lemire's multiply-shift with rejection and
// permutations are Fisher-Yates (i from n-1 down to 1, swap i with below(i+1)).
// Only fixed-width integer arithmetic is used, so one seed gives the same
// dataset, split and shuffles on every machine and compiler.
#pragma once
#include "engine/rng.h"
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "datasets/catalog.h"
#include "datasets/idx.h"

namespace mt {

class DataRng : public Rng {  // the engine's xoshiro256** (engine/rng.h)
 public:
  explicit DataRng(uint64_t seed) : Rng(seed) {}
  uint64_t next() { return next_u64(); }
  uint64_t below(uint64_t n);   // uniform in [0, n), n >= 1
  // A well-mixed 64-bit value from two (for deriving sub-seeds, e.g. per epoch).
  static uint64_t mix(uint64_t a, uint64_t b);
};

// A uniformly random permutation of 0..n-1 determined by the seed.
std::vector<int32_t> seeded_permutation(int n, uint64_t seed);

struct MultiImageSet {           // N images of C x H x W uint8, T label arrays
  int n = 0, c = 1, h = 28, w = 28;
  std::vector<uint8_t> pixels;    // n*c*h*w
  std::vector<std::string> task_names;   // e.g. {"left","right"} or {"digit"}
  std::vector<int> num_classes;          // per task (10); 0 marks a regression task
  std::vector<std::vector<int32_t>> labels;  // labels[task][i] (empty for a regression task)
  // Regression tasks: values[task] holds n x outputs numbers, row-major (empty, or
  // shorter than the task list, for classification tasks).
  std::vector<std::vector<float>> values;
  // binary[t]: task t is a yes/no attribute stored as 0/1 (num_classes[t] == 2)
  // that a model may predict with one logit (TaskLoss::BinaryLogits). Empty
  // (the default) or shorter than the task list means "not binary".
  std::vector<bool> binary;
  float mean = 0.1307f, std = 0.3081f;   // normalisation applied per batch

  size_t image_size() const { return size_t(c) * size_t(h) * size_t(w); }
  int num_tasks() const { return static_cast<int>(task_names.size()); }
  bool is_regression(int t) const { return num_classes.at(size_t(t)) == 0; }
  // Values per sample of regression task t (0 for classification).
  int outputs(int t) const {
    return is_regression(t) && n > 0 ? static_cast<int>(values.at(size_t(t)).size() / size_t(n)) : 0;
  }
  // Throws mt::Error naming `source` on inconsistent sizes, a label outside
  // [0, num_classes) ("label 12 out of range [0,10) at index 5 in SOURCE"), or a
  // regression task whose values are not n x outputs finite numbers.
  void validate(const std::string& source) const;
};

// The samples idx (in that order) of a set.
MultiImageSet subset(const MultiImageSet& set, const std::vector<int32_t>& idx);
// The first n samples (n <= 0 or n >= set.n: the whole set).
MultiImageSet take_first(const MultiImageSet& set, int n);

// Overlays one 28x28 left and one 28x28 right image into a 28x28 output as
// described above (the single-pair kernel of compose_multi).
void compose_pair(const uint8_t* left28, const uint8_t* right28, uint8_t* out28);

// MultiMNIST-style composition; both sets must be 28x28. Tasks {"left","right"}.
MultiImageSet compose_multi(const LabeledImages& left, const LabeledImages& right, uint64_t seed);

// One-task set of the base images (task named `task`).
MultiImageSet make_single(const LabeledImages& base, const std::string& task);

// Seeded split: a permutation of 0..n-1 picks the validation indices (its
// first `count`), the rest are training; both keep the original order. count
// must be in [1, n-1]; the fraction overload uses count = round(fraction * n)
// with fraction in (0,1).
std::pair<MultiImageSet, MultiImageSet> split_validation(const MultiImageSet& set, int count, uint64_t seed);
std::pair<MultiImageSet, MultiImageSet> split_validation(const MultiImageSet& set, double fraction,
                                                         uint64_t seed);

// Names accepted by make_dataset, in the order shown to users.
const std::vector<std::string>& dataset_names();

// Builds a dataset by name: multimnist, multifashion, multifashion-mnist
// (left MNIST digit, right Fashion-MNIST item), mnist, fashion. Train sets
// have 60,000 images, test sets 10,000. The composition seed is `seed` for
// the train set and DataRng::mix(seed, 0x74657374) for the test set. Mean/std
// are those of the left base set (MNIST 0.1307/0.3081, Fashion 0.2860/0.3530).
// cifar10-mnist is make_cifar10_mnist(p.cifar_dir, p.data_dir, train)
// (datasets/cifar10.h: 50,000 / 10,000 3x32x32 images, tasks object and digit,
// mean = std = 0.5); it does not use the seed (CIFAR image i gets MNIST digit i,
// as in the reference). An unknown name throws an error listing the valid names.
MultiImageSet make_dataset(const std::string& name, bool train, const DatasetPaths& p, uint64_t seed);

// The input normalisation (mean, std) the sets of a dataset name are built with:
// MNIST's for mnist, multimnist, multifashion-mnist and mnist-grid, Fashion's for
// fashion and multifashion, 0.5 / 0.5 for cifar10-mnist; false for other names
// (image folders compute theirs from the training images).
bool dataset_normalization(const std::string& name, float& mean, float& std);

}  // namespace mt
