// The data sets of `mtl train` / `mtl eval` (see data_sources.h).
#include "mtl/train/data_sources.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "datasets/grid_mnist.h"
#include "datasets/image_folder.h"
#include "mtl/models/resnet.h"
#include "mtl/train/run_util.h"

namespace mt {
using run_util::join;
using run_util::short_num;
}

namespace mt {

namespace fs = std::filesystem;

namespace {

bool is_folder(const std::string& d) { return d == "imagefolder" || d == "celeba"; }

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
}

// A float / double that reads back to the same value.
std::string float_str(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", (double)v);
  return buf;
}
std::string double_str(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string absolute_or_empty(const std::string& p) {
  if (p.empty()) return p;
  std::error_code ec;
  const fs::path a = fs::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

const std::string* find(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

// The grid options of --tasks: "K" or task names.
GridMnistOptions grid_options(const std::string& tasks, int image_size) {
  GridMnistOptions o;
  if (tasks.empty()) {
    o.tasks = 4;
  } else if (all_digits(tasks)) {
    o.tasks = std::atoi(tasks.c_str());
  } else {
    o.names = run_util::split(tasks, ',');
  }
  o.size = image_size > 0 ? image_size : 56;
  return o;
}

// The folder options shared by training and evaluation.
ImageFolderOptions folder_options(const std::string& dataset, const std::string& images, const std::string& labels,
                                  const std::string& partition, int image_size, int channels, int max_images) {
  ImageFolderOptions o;
  if (dataset == "celeba") {
    o = celeba_options(images, Partition::All);
    o.center_crop = true;  // 178 x 218 portraits: the centred square
  } else {
    o.images_dir = images;
    o.labels_path = labels;
    o.partition_path = partition;
  }
  o.channels = channels;
  o.height = o.width = image_size > 0 ? image_size : 64;
  o.max_images = max_images;
  return o;
}

// Train / test of a folder: its partitions, or a seeded hold-out.
std::pair<MultiImageSet, MultiImageSet> folder_train_test(ImageFolderOptions o, double test_fraction,
                                                          uint64_t data_seed) {
  if (!o.partition_path.empty()) {
    o.partition = Partition::Train;
    MultiImageSet train = load_image_folder(o);
    o.partition = Partition::Test;
    MultiImageSet test = load_image_folder(o);
    return {std::move(train), std::move(test)};
  }
  o.partition = Partition::All;
  MultiImageSet all = load_image_folder(o);
  if (all.n < 2)
    throw Error(o.labels_path + ": " + std::to_string(all.n) +
                " image selected; holding out a test set needs at least 2 (or give a partition file)");
  const int count = std::min(all.n - 1, std::max(1, (int)std::lround(test_fraction * all.n)));
  return split_validation(all, count, data_seed);  // (train, held-out test)
}

}  // namespace

const std::vector<std::string>& train_dataset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v = dataset_names();
    for (const char* n : {"mnist-grid", "imagefolder", "celeba"}) v.push_back(n);
    return v;
  }();
  return names;
}

bool is_many_task_dataset(const std::string& name) { return name == "mnist-grid" || is_folder(name); }

std::string default_model_for(const std::string& dataset) {
  if (dataset == "cifar10-mnist") return "mdmtn-cifar";
  return is_many_task_dataset(dataset) ? "resnet18" : "multilenet";
}

std::string cifar_dir_or_default(const std::string& cifar_dir) {
  return cifar_dir.empty() ? kDefaultCifarDir : cifar_dir;
}

void validate_data_config(const DataConfig& c) {
  const auto& names = train_dataset_names();
  if (std::find(names.begin(), names.end(), c.dataset) == names.end())
    throw UsageError("unknown dataset '" + c.dataset + "' (valid: " + join(train_dataset_names(), ", ") + ")");
  const DataSourceOptions& s = c.source;
  const std::string& d = c.dataset;
  const std::string on = " (--dataset " + d + ")";
  if (c.data_dir.empty()) throw UsageError("--data-dir must not be empty");
  if (c.fashion_dir.empty()) throw UsageError("--fashion-dir must not be empty");
  if (!c.cifar_dir.empty() && d != "cifar10-mnist")
    throw UsageError("--cifar-dir is only used by --dataset cifar10-mnist" + on);
  if (c.train_limit < 0)
    throw UsageError("--train-limit must be >= 1 (or 0 for all), got " + std::to_string(c.train_limit));
  if (c.test_limit < 0)
    throw UsageError("--test-limit must be >= 1 (or 0 for all), got " + std::to_string(c.test_limit));
  if (!is_folder(d)) {
    if (!s.images.empty()) throw UsageError("--images is only used by --dataset imagefolder and celeba" + on);
    if (!s.labels.empty()) throw UsageError("--labels is only used by --dataset imagefolder" + on);
    if (!s.partition.empty()) throw UsageError("--partition is only used by --dataset imagefolder" + on);
    if (s.max_images != 0) throw UsageError("--max-images is only used by --dataset imagefolder and celeba" + on);
    if (s.channels) throw UsageError("--channels is only used by --dataset imagefolder and celeba" + on);
    if (s.test_fraction) throw UsageError("--test-fraction is only used by --dataset imagefolder and celeba" + on);
  }
  if (!is_many_task_dataset(d)) {
    if (!s.tasks.empty()) throw UsageError("--tasks is only used by --dataset mnist-grid, imagefolder and celeba" + on);
    if (s.image_size != 0)
      throw UsageError("--image-size is only used by --dataset mnist-grid, imagefolder and celeba" + on);
  }
  if (s.image_size < 0 || s.image_size > 4096)
    throw UsageError("--image-size must be in 1..4096, got " + std::to_string(s.image_size));
  if (s.channels && *s.channels != 1 && *s.channels != 3)
    throw UsageError("--channels must be 1 or 3, got " + std::to_string(*s.channels));
  if (s.max_images < 0) throw UsageError("--max-images must be >= 1, got " + std::to_string(s.max_images));
  if (s.test_fraction && !(*s.test_fraction > 0 && *s.test_fraction < 1))
    throw UsageError("--test-fraction must be in (0, 1), got " + short_num(*s.test_fraction));
  if (d == "imagefolder") {
    if (s.images.empty() || s.labels.empty())
      throw UsageError("--dataset imagefolder needs --images DIR and --labels FILE (see 'mtl train --help')");
  } else if (d == "celeba") {
    if (s.images.empty()) throw UsageError("--dataset celeba needs --images ROOT (the folder holding img_align_celeba/)");
    if (!s.labels.empty() || !s.partition.empty())
      throw UsageError("--dataset celeba reads ROOT/list_attr_celeba.txt and ROOT/list_eval_partition.txt; "
                       "use --dataset imagefolder for other files");
  } else if (d == "mnist-grid") {
    const std::string range = "--tasks must be in 2.." + std::to_string(kGridMaxTasks) + " for --dataset mnist-grid, got ";
    if (all_digits(s.tasks)) {
      const int K = std::atoi(s.tasks.c_str());
      if (K < 2 || K > kGridMaxTasks) throw UsageError(range + s.tasks);
    } else if (!s.tasks.empty() && s.tasks.find_first_not_of("0123456789-+") == std::string::npos) {
      throw UsageError(range + s.tasks);
    }
    try {
      grid_mnist_layout(grid_options(s.tasks, s.image_size));
    } catch (const Error& e) {
      throw UsageError(std::string("--tasks: ") + e.what());
    }
  }
  if (is_folder(d) && !s.tasks.empty())
    for (const auto& t : run_util::split(s.tasks, ','))
      if (t.empty()) throw UsageError("--tasks has an empty task name: '" + s.tasks + "'");
}

TrainTestSets load_train_test(const DataConfig& c) {
  TrainTestSets r;
  const DataSourceOptions& s = c.source;
  if (c.dataset == "mnist-grid") {
    GridMnistOptions o = grid_options(s.tasks, s.image_size);
    o.grid = grid_mnist_layout(o).grid;
    o.count = c.train_limit;
    r.train = load_grid_mnist(c.data_dir, true, o, c.data_seed);
    o.count = c.test_limit;
    r.test = load_grid_mnist(c.data_dir, false, o, c.data_seed);
    r.metadata["data.grid"] = std::to_string(o.grid);
    r.metadata["data.image_size"] = std::to_string(o.size);
    return r;
  }
  if (is_folder(c.dataset)) {
    ImageFolderOptions o =
        folder_options(c.dataset, s.images, s.labels, s.partition, s.image_size, s.channels.value_or(3), s.max_images);
    if (!s.tasks.empty()) o.tasks = run_util::split(s.tasks, ',');
    const double test_fraction = s.test_fraction.value_or(0.2);
    auto parts = folder_train_test(o, test_fraction, c.data_seed);
    r.train = std::move(parts.first);
    r.test = std::move(parts.second);
    const auto stats = pixel_stats(r.train);
    r.train.mean = r.test.mean = stats.first;
    r.train.std = r.test.std = stats.second;
    r.metadata["data.images"] = absolute_or_empty(s.images);
    if (c.dataset == "imagefolder") {
      r.metadata["data.labels"] = absolute_or_empty(s.labels);
      r.metadata["data.partition"] = absolute_or_empty(s.partition);
    }
    r.metadata["data.image_size"] = std::to_string(o.height);
    r.metadata["data.channels"] = std::to_string(o.channels);
    r.metadata["data.max_images"] = std::to_string(o.max_images);
    r.metadata["data.test_fraction"] = double_str(test_fraction);
    r.metadata["data.mean"] = float_str(stats.first);
    r.metadata["data.std"] = float_str(stats.second);
    return r;
  }
  DatasetPaths paths;
  paths.data_dir = c.data_dir;
  paths.fashion_dir = c.fashion_dir;
  paths.cifar_dir = cifar_dir_or_default(c.cifar_dir);
  r.train = make_dataset(c.dataset, true, paths, c.data_seed);
  r.test = make_dataset(c.dataset, false, paths, c.data_seed);
  return r;
}

MultiImageSet load_eval_test(const std::string& dataset, const std::map<std::string, std::string>& meta,
                             const DataConfig& c, uint64_t data_seed, const std::string& path) {
  auto need = [&](const std::string& key) -> std::string {
    const std::string* v = find(meta, key);
    if (!v) throw Error(path + ": metadata '" + key + "' is missing (needed to read the " + dataset + " test set)");
    return *v;
  };
  auto need_int = [&](const std::string& key) {
    const std::string v = need(key);
    if (!all_digits(v)) throw Error(path + ": metadata '" + key + "' is '" + v + "', not a whole number");
    return std::atoi(v.c_str());
  };
  const std::vector<std::string> tasks = run_util::split(need("tasks"), ',');
  if (dataset == "mnist-grid") {
    GridMnistOptions o;
    o.names = tasks;
    o.grid = find(meta, "data.grid") ? need_int("data.grid") : 0;
    o.size = find(meta, "data.image_size") ? need_int("data.image_size") : 56;
    o.count = c.test_limit;
    return load_grid_mnist(c.data_dir, false, o, data_seed);
  }
  if (is_folder(dataset)) {
    const std::string images = c.source.images.empty() ? need("data.images") : c.source.images;
    std::string labels, partition;
    if (dataset == "imagefolder") {
      labels = c.source.labels.empty() ? need("data.labels") : c.source.labels;
      partition = !c.source.partition.empty() || !c.source.labels.empty() ? c.source.partition
                                                                          : need("data.partition");
    }
    ImageFolderOptions o = folder_options(dataset, images, labels, partition, need_int("data.image_size"),
                                          need_int("data.channels"), need_int("data.max_images"));
    o.tasks = tasks;
    const double fraction = std::strtod(need("data.test_fraction").c_str(), nullptr);
    MultiImageSet test = folder_train_test(o, fraction, data_seed).second;
    test.mean = std::strtof(need("data.mean").c_str(), nullptr);
    test.std = std::strtof(need("data.std").c_str(), nullptr);
    if (c.test_limit > 0) test = take_first(test, c.test_limit);
    return test;
  }
  DatasetPaths paths;
  paths.data_dir = c.data_dir;
  paths.fashion_dir = c.fashion_dir;
  paths.cifar_dir = cifar_dir_or_default(c.cifar_dir);
  return take_first(make_dataset(dataset, false, paths, data_seed), c.test_limit);
}

std::vector<Task> tasks_for_set(const std::string& arch, const MultiImageSet& set) {
  const bool resnet = arch.compare(0, 8, "resnet18") == 0;
  std::vector<Task> tasks;
  for (int t = 0; t < set.num_tasks(); t++) {
    const std::string& name = set.task_names[(size_t)t];
    if (set.is_regression(t)) {
      tasks.push_back(Task::regression(name, set.outputs(t), TaskLoss::MSE));
      continue;
    }
    const bool binary = (size_t)t < set.binary.size() && set.binary[(size_t)t];
    MT_CHECK(!binary || set.num_classes[(size_t)t] == 2, "tasks",
             "binary task '" + name + "' has " + std::to_string(set.num_classes[(size_t)t]) + " classes");
    tasks.push_back(Task::classification(name, set.num_classes[(size_t)t],
                                         binary && resnet ? TaskLoss::BinaryLogits : TaskLoss::LogProbNll));
  }
  return tasks;
}

TrainData load_train_data(const DataConfig& c, int val, uint64_t seed) {
  TrainTestSets sets = load_train_test(c);
  TrainData d;
  d.metadata = std::move(sets.metadata);
  d.train = take_first(sets.train, c.train_limit);
  d.test = take_first(sets.test, c.test_limit);
  sets = TrainTestSets{};  // free the full sets
  split_off_validation(d, val, seed);
  return d;
}

void split_off_validation(TrainData& d, int val, uint64_t seed) {
  if (val <= 0 || d.val.n > 0) return;
  if (val >= d.train.n)
    throw UsageError("--val " + std::to_string(val) + " must be smaller than the training set (" +
                     std::to_string(d.train.n) + " images)");
  auto parts = split_validation(d.train, val, seed);  // (train, validation)
  d.train = std::move(parts.first);
  d.val = std::move(parts.second);
}

std::vector<DataFileRecord> dataset_files(const std::string& dataset, const std::string& data_dir,
                                          const std::string& fashion_dir) {
  // cifar10-mnist: only its MNIST files; the CIFAR-10 files have no catalogued sha256 (they are
  // read unverified from cifar_dir, which config.json records)
  const bool mnist = dataset == "multimnist" || dataset == "mnist" || dataset == "multifashion-mnist" ||
                     dataset == "mnist-grid" || dataset == "cifar10-mnist";
  const bool fashion = dataset == "fashion" || dataset == "multifashion" || dataset == "multifashion-mnist";
  std::vector<DataFileRecord> out;
  for (bool train : {true, false})
    for (bool images : {true, false}) {
      if (mnist) {
        DataFile f = mnist_file(train, images);
        out.push_back({join_path(mnist_dir(data_dir), f.name), f.sha256});
      }
      if (fashion) {
        DataFile f = fashion_file(train, images);
        out.push_back({join_path(fashion_dir, f.name), f.sha256});
      }
    }
  return out;
}

}  // namespace mt
