// int8 quantisation of a layer graph, the TFLite scheme (Jacob et al., "Quantization and
// Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference", CVPR 2018;
// TFLite's int8 spec):
//
//   activations  real = s (q - z), q in [-128, 127], asymmetric: per value, s and z from the
//                min/max seen on N calibration images (the range widened to hold 0, so 0 is
//                exact): s = (max - min) / 255, z = round(-128 - min / s);
//   weights      per output channel (conv filter / Linear row) symmetric: s_w = max|w| / 127,
//                q = round(w / s_w) in [-127, 127], zero point 0;
//   bias         int32, round(b / (s_in s_w)) (the accumulator's scale);
//   layer        int32 acc = bias + sum_j w_q (x_q - z_in), then the fixed-point
//                requantisation q_out = z_out + round(acc * M), M = s_in s_w / s_out stored as a
//                Q31 multiplier M0 and a power-of-two shift (TFLite's QuantizeMultiplier,
//                gemmlowp's SaturatingRoundingDoublingHighMul and RoundingDivideByPOT), then
//                clamped to [-128, 127] (ReLU: to [z_out, 127]);
//   pooling      on the int32 accumulators before requantising: requantisation is monotone,
//                so this is exactly TFLite's conv, then max-pool on the int8 values (a min-pool
//                channel, from a folded negative BatchNorm scale, likewise with min);
//   outputs      a task's output layer is not requantised: logit = (float)acc * (s_in s_w),
//                one rounding, the same on every IEEE machine; log_softmax is left out
//                (it does not change the argmax, and the int8 path needs no libm).
//   segments     a Linear reading several values (MDMTN's [Z, M_t]: Z within [0, 0.7], M_t
//                within [0, 9] in a trained model) keeps each value's own scale and zero
//                point, and quantises each segment's part of a weight row on its own: one
//                int32 accumulator per segment, acc_s (scale u_s = s_in,s s_w,s), brought to
//                the finest of the row's scales u by the fixed-point multiplier u_s / u
//                (>= 1: acc_s counts in coarser units) and summed with the bias: acc = bias +
//                sum_s requant(acc_s). (One shared scale, as TFLite's concatenation would
//                impose, left Z about 20 levels and cost 1-2 points of accuracy.)
#pragma once
#include <cstdint>
#include <vector>

#include "mtl/export/layer_graph.h"

namespace mt {

struct QParams {
  float scale = 1.f;       // real = scale * (q - zero_point)
  int32_t zero_point = 0;
};

struct QuantLayer {
  std::vector<int8_t> W;            // as GraphLayer::W, int8
  std::vector<float> w_scale;       // conv: per filter; Linear: per segment and output, [s * O + o]
  std::vector<int32_t> bias;        // per output, at the accumulator's scale
  std::vector<int32_t> multiplier;  // per output: accumulator -> output, M0 (Q31); empty for a task output
  std::vector<int32_t> shift;       // per output: M = M0 2^(shift - 31)
  std::vector<float> out_scale;     // task output layer: the accumulator's scale per output
  std::vector<int32_t> seg_multiplier, seg_shift;  // Linear of >= 2 segments: [s * O + o], acc_s -> acc
  std::vector<int> seg_columns;     // Linear: columns of segment s are [seg_columns[s], seg_columns[s + 1])
  int32_t act_min = -128, act_max = 127;
  int segments() const { return seg_columns.empty() ? 1 : (int)seg_columns.size() - 1; }
};

struct QuantGraph {
  std::vector<QParams> values;  // per value of the graph
  std::vector<QuantLayer> layers;
  int calibration_images = 0;
};

// Calibrates on the images (each C*H*W floats, normalised) and quantises every layer.
QuantGraph quantize_graph(const LayerGraph& g, const std::vector<const float*>& calibration);

// TFLite's QuantizeMultiplier: m = M0 2^(shift - 31) with M0 in [2^30, 2^31) (or 0).
void quantize_multiplier(double m, int32_t* m0, int32_t* shift);

// The integer arithmetic the generated C uses (the same definitions, for tests):
// gemmlowp's SaturatingRoundingDoublingHighMul, RoundingDivideByPOT and TFLite's
// MultiplyByQuantizedMultiplier.
int32_t sat_rounding_doubling_high_mul(int32_t a, int32_t b);
int32_t rounding_divide_by_pot(int32_t x, int exponent);
int32_t multiply_by_quantized_multiplier(int32_t acc, int32_t m0, int32_t shift);

}  // namespace mt
