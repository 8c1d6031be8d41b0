// What a sample is labelled with, per task: a class index (classification) or
// one or more numbers (regression). A batch's targets are a TaskTarget per task.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace mt {

// One task's targets for a batch (or a whole set) of n samples.
struct TaskTarget {
  std::vector<int32_t> label;  // classification: n class indices
  std::vector<float> value;    // regression: n x outputs values, row-major
  TaskTarget() = default;
  TaskTarget(std::vector<int32_t> labels) : label(std::move(labels)) {}  // NOLINT: implicit on purpose
  TaskTarget(std::initializer_list<int32_t> labels) : label(labels) {}
  static TaskTarget values(std::vector<float> v) {
    TaskTarget t;
    t.value = std::move(v);
    return t;
  }
};
using Targets = std::vector<TaskTarget>;  // targets[t]: task t's

}  // namespace mt
