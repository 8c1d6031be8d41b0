#include "datasets/multi_mnist.h"

#include <algorithm>
#include <cmath>

#include "datasets/cifar10.h"
#include "engine/error.h"

namespace mt {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr int kSide = 28, kCanvas = 36, kShift = 6;

struct ResizeMap {
  int src[kSide];
  ResizeMap() {
    for (int d = 0; d < kSide; ++d) src[d] = d * kCanvas / kSide;
  }
};
const ResizeMap kMap;

std::string src_name(const LabeledImages& s) {
  return s.images_path.empty() ? std::string("<memory>") : s.images_path;
}

void need_28x28(const LabeledImages& s) {
  if (s.images.rows != kSide || s.images.cols != kSide)
    throw Error(src_name(s) + ": images are " + std::to_string(s.images.rows) + "x" +
                std::to_string(s.images.cols) + ", the MultiMNIST composition needs 28x28");
  if (s.images.n < 1) throw Error(src_name(s) + ": empty dataset (0 images)");
}

}  // namespace

MultiImageSet subset(const MultiImageSet& s, const std::vector<int32_t>& idx) {
  MultiImageSet o;
  o.n = static_cast<int>(idx.size());
  o.c = s.c;
  o.h = s.h;
  o.w = s.w;
  o.task_names = s.task_names;
  o.num_classes = s.num_classes;
  o.binary = s.binary;
  o.mean = s.mean;
  o.std = s.std;
  const size_t sz = s.image_size();
  o.pixels.resize(sz * idx.size());
  for (size_t k = 0; k < idx.size(); ++k)
    std::copy_n(s.pixels.data() + size_t(idx[k]) * sz, sz, o.pixels.data() + k * sz);
  o.labels.assign(s.labels.size(), {});
  for (size_t t = 0; t < s.labels.size(); ++t) {
    if (s.labels[t].empty()) continue;  // a regression task
    o.labels[t].resize(idx.size());
    for (size_t k = 0; k < idx.size(); ++k) o.labels[t][k] = s.labels[t][size_t(idx[k])];
  }
  o.values.assign(s.values.size(), {});
  for (size_t t = 0; t < s.values.size(); ++t) {
    if (s.values[t].empty() || s.n == 0) continue;
    const size_t k_out = s.values[t].size() / size_t(s.n);
    o.values[t].resize(idx.size() * k_out);
    for (size_t k = 0; k < idx.size(); ++k)
      std::copy_n(s.values[t].data() + size_t(idx[k]) * k_out, k_out, o.values[t].data() + k * k_out);
  }
  return o;
}

MultiImageSet take_first(const MultiImageSet& s, int n) {
  if (n <= 0 || n >= s.n) return s;
  std::vector<int32_t> idx(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) idx[size_t(i)] = i;
  return subset(s, idx);
}

uint64_t DataRng::below(uint64_t n) {
  if (n == 0) throw Error("DataRng::below: range is empty (n = 0)");
  return Rng::below(n);
}

uint64_t DataRng::mix(uint64_t a, uint64_t b) {
  uint64_t x = a;
  uint64_t h = splitmix64(x);
  x = h ^ b;
  return splitmix64(x);
}

std::vector<int32_t> seeded_permutation(int n, uint64_t seed) {
  if (n < 0) throw Error("seeded_permutation: negative size " + std::to_string(n));
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) p[size_t(i)] = i;
  DataRng rng(seed);
  for (int i = n - 1; i > 0; --i) {
    const auto j = static_cast<size_t>(rng.below(uint64_t(i) + 1));
    std::swap(p[size_t(i)], p[j]);
  }
  return p;
}

void MultiImageSet::validate(const std::string& source) const {
  if (n < 0 || c < 1 || h < 1 || w < 1)
    throw Error(source + ": bad image set shape n=" + std::to_string(n) + " c=" + std::to_string(c) +
                " h=" + std::to_string(h) + " w=" + std::to_string(w));
  if (pixels.size() != size_t(n) * image_size())
    throw Error(source + ": pixel buffer holds " + std::to_string(pixels.size()) + " bytes, expected " +
                std::to_string(size_t(n) * image_size()) + " (" + std::to_string(n) + "x" + std::to_string(c) +
                "x" + std::to_string(h) + "x" + std::to_string(w) + ")");
  if (task_names.empty()) throw Error(source + ": no task");
  if (num_classes.size() != task_names.size() || labels.size() != task_names.size())
    throw Error(source + ": " + std::to_string(task_names.size()) + " task names but " +
                std::to_string(num_classes.size()) + " class counts and " + std::to_string(labels.size()) +
                " label arrays");
  if (!(std > 0.0f) || !std::isfinite(mean) || !std::isfinite(std))
    throw Error(source + ": normalisation std must be > 0 and mean finite, got mean=" + std::to_string(mean) +
                " std=" + std::to_string(std));
  for (size_t t = 0; t < labels.size(); ++t) {
    if (num_classes[t] == 0) {  // regression: n x outputs finite values, no labels
      const size_t m = t < values.size() ? values[t].size() : 0;
      if (!labels[t].empty() || m == 0 || n == 0 || m % size_t(n) != 0)
        throw Error(source + ": regression task '" + task_names[t] + "' needs n x outputs values (n = " +
                    std::to_string(n) + ") and no labels, got " + std::to_string(m) + " values and " +
                    std::to_string(labels[t].size()) + " labels");
      for (size_t i = 0; i < m; ++i)
        if (!std::isfinite(values[t][i]))
          throw Error(source + ": regression task '" + task_names[t] + "' has a non-finite value at index " +
                      std::to_string(i));
      continue;
    }
    if (num_classes[t] < 1)
      throw Error(source + ": task '" + task_names[t] + "' has " + std::to_string(num_classes[t]) + " classes");
    if (t < values.size() && !values[t].empty())
      throw Error(source + ": classification task '" + task_names[t] + "' has regression values");
    if (labels[t].size() != size_t(n))
      throw Error(source + ": task '" + task_names[t] + "' has " + std::to_string(labels[t].size()) +
                  " labels for " + std::to_string(n) + " images");
    for (size_t i = 0; i < labels[t].size(); ++i) {
      const int32_t v = labels[t][i];
      if (v < 0 || v >= num_classes[t])
        throw Error("label " + std::to_string(v) + " out of range [0," + std::to_string(num_classes[t]) +
                    ") at index " + std::to_string(i) + " in " + source);
    }
  }
}

void compose_pair(const uint8_t* left, const uint8_t* right, uint8_t* out) {
  for (int dy = 0; dy < kSide; ++dy) {
    const int y = kMap.src[dy];  // canvas row
    const bool ly = y < kSide, ry = y >= kShift && y < kShift + kSide;
    for (int dx = 0; dx < kSide; ++dx) {
      const int x = kMap.src[dx];
      uint8_t v = 0;
      if (ly && x < kSide) v = left[y * kSide + x];
      if (ry && x >= kShift && x < kShift + kSide) v = std::max(v, right[(y - kShift) * kSide + (x - kShift)]);
      out[dy * kSide + dx] = v;
    }
  }
}

MultiImageSet compose_multi(const LabeledImages& left, const LabeledImages& right, uint64_t seed) {
  validate_labeled(left);
  validate_labeled(right);
  need_28x28(left);
  need_28x28(right);
  MultiImageSet o;
  o.n = left.images.n;
  o.task_names = {"left", "right"};
  o.num_classes = {left.num_classes, right.num_classes};
  o.labels.assign(2, std::vector<int32_t>(size_t(o.n)));
  o.pixels.resize(size_t(o.n) * kSide * kSide);
  DataRng rng(seed);
  const size_t sz = kSide * kSide;
  for (int i = 0; i < o.n; ++i) {
    const auto j = static_cast<size_t>(rng.below(uint64_t(right.images.n)));
    compose_pair(left.images.pixels.data() + size_t(i) * sz, right.images.pixels.data() + j * sz,
                 o.pixels.data() + size_t(i) * sz);
    o.labels[0][size_t(i)] = left.labels[size_t(i)];
    o.labels[1][size_t(i)] = right.labels[j];
  }
  o.validate(src_name(left) + " + " + src_name(right));
  return o;
}

MultiImageSet make_single(const LabeledImages& base, const std::string& task) {
  validate_labeled(base);
  if (base.images.n < 1) throw Error(src_name(base) + ": empty dataset (0 images)");
  MultiImageSet o;
  o.n = base.images.n;
  o.c = 1;
  o.h = base.images.rows;
  o.w = base.images.cols;
  o.pixels = base.images.pixels;
  o.task_names = {task};
  o.num_classes = {base.num_classes};
  o.labels.assign(1, std::vector<int32_t>(base.labels.begin(), base.labels.end()));
  o.validate(src_name(base));
  return o;
}

std::pair<MultiImageSet, MultiImageSet> split_validation(const MultiImageSet& set, int count, uint64_t seed) {
  set.validate("split_validation");
  if (count < 1 || count >= set.n)
    throw Error("split_validation: validation count must be in [1, " + std::to_string(set.n - 1) + "] for " +
                std::to_string(set.n) + " samples, got " + std::to_string(count));
  const std::vector<int32_t> perm = seeded_permutation(set.n, seed);
  std::vector<int32_t> val(perm.begin(), perm.begin() + count), train(perm.begin() + count, perm.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return {subset(set, train), subset(set, val)};
}

std::pair<MultiImageSet, MultiImageSet> split_validation(const MultiImageSet& set, double fraction,
                                                         uint64_t seed) {
  if (!(fraction > 0.0 && fraction < 1.0))
    throw Error("split_validation: validation fraction must be in (0,1), got " + std::to_string(fraction));
  const double c = std::round(fraction * double(set.n));
  if (c < 1.0 || c >= double(set.n))
    throw Error("split_validation: fraction " + std::to_string(fraction) + " of " + std::to_string(set.n) +
                " samples leaves an empty train or validation part");
  return split_validation(set, static_cast<int>(c), seed);
}

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"multimnist", "multifashion", "multifashion-mnist", "mnist",
                                                 "fashion",    "cifar10-mnist"};
  return names;
}

MultiImageSet make_dataset(const std::string& name, bool train, const DatasetPaths& p, uint64_t seed) {
  const auto& names = dataset_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw Error("unknown dataset '" + name + "'; valid names: " + list);
  }
  // CIFAR image i with MNIST digit i, as the reference pairs them: no seed; its own mean/std
  if (name == "cifar10-mnist") return make_cifar10_mnist(p.cifar_dir, p.data_dir, train);
  const uint64_t s = train ? seed : DataRng::mix(seed, 0x74657374ULL);
  MultiImageSet o;
  if (name == "mnist") {
    o = make_single(load_mnist(p.data_dir, train), "digit");
  } else if (name == "fashion") {
    o = make_single(load_fashion(p.fashion_dir, train), "fashion");
  } else if (name == "multimnist") {
    const LabeledImages m = load_mnist(p.data_dir, train);
    o = compose_multi(m, m, s);
  } else if (name == "multifashion") {
    const LabeledImages f = load_fashion(p.fashion_dir, train);
    o = compose_multi(f, f, s);
  } else {  // multifashion-mnist
    o = compose_multi(load_mnist(p.data_dir, train), load_fashion(p.fashion_dir, train), s);
  }
  dataset_normalization(name, o.mean, o.std);
  return o;
}

bool dataset_normalization(const std::string& name, float& mean, float& std) {
  constexpr float kMnistMean = 0.1307f, kMnistStd = 0.3081f;
  constexpr float kFashionMean = 0.2860f, kFashionStd = 0.3530f;
  if (name == "fashion" || name == "multifashion") {
    mean = kFashionMean, std = kFashionStd;
  } else if (name == "cifar10-mnist") {
    mean = 0.5f, std = 0.5f;
  } else if (name == "mnist" || name == "multimnist" || name == "multifashion-mnist" || name == "mnist-grid") {
    mean = kMnistMean, std = kMnistStd;
  } else {
    return false;
  }
  return true;
}

}  // namespace mt
