// The int8 layer graph run by plain loops: the oracle of the generated int8 C (the same
// integer arithmetic, so the same outputs bit for bit) and the way to measure int8 accuracy
// without a C compiler. See quantize.h for the scheme.
//
//   input   q = clamp(round_half_away(x / s) + z)       (float division, as the C)
//   Conv    acc = sum_{c,i,j} w_q (x_q - z_in) per pooled window; best = max (min) over the
//           window; q = clamp(z_out + requant(best + bias), act_min, 127)
//   Linear  acc[o] = bias[o] + sum_j w_q[o, j] x_j, x_j = sum_{i in cols[j]} (x_q[i] - z_in);
//           with several segments, acc_s[o] = sum over segment s's columns (its own z_in) and
//           acc[o] = bias[o] + sum_s requant_s(acc_s[o]);
//           hidden: q = clamp(z_out + requant(acc), act_min, 127); task output: (float)acc * s
#pragma once
#include <cstdint>
#include <vector>

#include "mtl/export/layer_graph.h"
#include "mtl/export/quantize.h"

namespace mt {

// The outputs (task after task): logits for every task (no log_softmax).
std::vector<float> run_graph_int8(const LayerGraph& g, const QuantGraph& q, const float* input);

// The input quantisation the C uses.
int8_t quantize_input(float x, const QParams& p);

}  // namespace mt
