// The layer graph run in fp32 by plain loops, one image at a time: the oracle of the
// generated fp32 C (same loops, same order of additions, so the same bits when the C
// compiler does not contract a*b+c), the check that pruning changes nothing, and the
// source of the int8 calibration ranges.
//
//   Conv    acc(y, x) = sum_{c, i, j} W[f, c, i, j] x[c, s y + i - p, s x + j - p]  (c, i, j in
//           that order, from 0; zero padding), pooled = max (or min) over the pool window,
//           y = pooled + b, then ReLU. (max(a) + b = max(a + b) exactly: rounding is monotone.)
//   Linear  y[o] = b[o], then y[o] += W[o, j] * x_j for j = 0, 1, ... where x_j is the sum of
//           column j's input elements in list order (columns with x_j = 0 skipped); then ReLU.
//   log_softmax as the engine (engine/ops_loss.cpp): m = max, s = sum exp((double)(x - m)),
//           out = x - (m + (float)log(s)).
#pragma once
#include <vector>

#include "mtl/export/layer_graph.h"

namespace mt {

struct GraphActivations {
  std::vector<std::vector<float>> values;  // every value's stored elements (values[0]: the input)
  std::vector<float> outputs;              // the model's outputs, task after task
};

// input: C*H*W floats, normalised as the model was trained.
GraphActivations run_graph(const LayerGraph& g, const float* input);

}  // namespace mt
