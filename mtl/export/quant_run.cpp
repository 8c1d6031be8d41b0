// The int8 layer-graph interpreter (see quant_run.h).
#include "mtl/export/quant_run.h"

#include <algorithm>

namespace mt {

int8_t quantize_input(float x, const QParams& p) {
  float v = x / p.scale;
  if (!(v >= -256.f)) v = -256.f;  // also NaN
  if (v > 256.f) v = 256.f;
  int32_t r = (int32_t)v;  // truncates; v - r is exact
  if (v - (float)r >= 0.5f) r++;
  else if (v - (float)r <= -0.5f) r--;
  r += p.zero_point;
  return (int8_t)std::clamp(r, -128, 127);
}

namespace {

int8_t finish(int32_t acc, const QuantLayer& ql, size_t o, int32_t z_out) {
  const int32_t v = multiply_by_quantized_multiplier(acc, ql.multiplier[o], ql.shift[o]) + z_out;
  return (int8_t)std::clamp(v, ql.act_min, ql.act_max);
}

}  // namespace

std::vector<float> run_graph_int8(const LayerGraph& g, const QuantGraph& q, const float* input) {
  std::vector<std::vector<int8_t>> val(g.values.size());
  const int64_t n_in = g.values[0].dense_size();
  for (int64_t i = 0; i < n_in; i++) val[0].push_back(quantize_input(input[i], q.values[0]));
  std::vector<float> outputs((size_t)g.output_size());
  for (size_t li = 0; li < g.layers.size(); li++) {
    const GraphLayer& l = g.layers[li];
    const QuantLayer& ql = q.layers[li];
    const GraphValue& out = g.values[(size_t)l.out];
    const int32_t z_out = q.values[(size_t)l.out].zero_point;
    std::vector<int8_t>& y = val[(size_t)l.out];
    if (l.kind == LayerKind::Conv) {
      const GraphValue& in = g.values[(size_t)l.in[0]];
      const std::vector<int8_t>& x = val[(size_t)l.in[0]];
      const int32_t z_in = q.values[(size_t)l.in[0]].zero_point;
      const int C = l.in_c, K = l.k;
      for (int o = 0; o < out.c; o++) {
        const int8_t* w = ql.W.data() + (int64_t)l.filter_of[(size_t)o] * C * K * K;
        for (int qi = 0; qi < out.positions(o); qi++) {
          const int p = out.pos.empty() ? qi : out.pos[(size_t)o][(size_t)qi];
          const int py = p / out.w, px = p % out.w;
          int32_t best = 0;
          for (int dy = 0; dy < l.pool; dy++)
            for (int dx = 0; dx < l.pool; dx++) {
              const int cy = (py * l.pool + dy) * l.stride - l.pad, cx = (px * l.pool + dx) * l.stride - l.pad;
              int32_t acc = 0;
              for (int c = 0; c < C; c++)
                for (int i = 0; i < K; i++)
                  for (int j = 0; j < K; j++) {
                    const int iy = cy + i, ix = cx + j;
                    if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w) continue;
                    acc += (int32_t)w[(c * K + i) * K + j] * ((int32_t)x[(size_t)((c * in.h + iy) * in.w + ix)] - z_in);
                  }
              if ((dy == 0 && dx == 0) || (l.min_pool[(size_t)o] ? acc < best : acc > best)) best = acc;
            }
          y.push_back(finish(best + ql.bias[(size_t)o], ql, (size_t)o, z_out));
        }
      }
    } else {
      std::vector<int8_t> x;
      for (int v : l.in) x.insert(x.end(), val[(size_t)v].begin(), val[(size_t)v].end());
      const int O = l.outputs(), J = l.columns(), S = ql.segments();
      // one accumulator per segment (the bias in it when there is one segment)
      std::vector<int32_t> acc(S == 1 ? ql.bias : std::vector<int32_t>((size_t)S * O, 0));
      for (int sg = 0; sg < S; sg++) {
        const int j0 = S == 1 ? 0 : ql.seg_columns[(size_t)sg], j1 = S == 1 ? J : ql.seg_columns[(size_t)sg + 1];
        const int32_t z_in = l.in.empty() ? 0 : q.values[(size_t)l.in[(size_t)sg]].zero_point;
        int32_t* a = acc.data() + (size_t)sg * O;
        for (int j = j0; j < j1; j++) {
          int32_t xj = 0;
          for (int i : l.cols[(size_t)j]) xj += (int32_t)x[(size_t)i] - z_in;
          if (xj == 0) continue;
          for (int o = 0; o < O; o++) a[o] += (int32_t)ql.W[(size_t)((int64_t)o * J + j)] * xj;
        }
      }
      if (S > 1) {  // to the finest scale, with the bias
        std::vector<int32_t> sum(ql.bias);
        for (int sg = 0; sg < S; sg++)
          for (int o = 0; o < O; o++) {
            const size_t k = (size_t)(sg * O + o);
            sum[(size_t)o] += multiply_by_quantized_multiplier(acc[k], ql.seg_multiplier[k], ql.seg_shift[k]);
          }
        acc = sum;
      }
      if (l.task >= 0) {
        float* dst = outputs.data() + g.output_offset(l.task);
        for (int o = 0; o < O; o++) dst[o] = (float)acc[(size_t)o] * ql.out_scale[(size_t)o];
      } else {
        for (int o = 0; o < O; o++) y.push_back(finish(acc[(size_t)o], ql, (size_t)o, z_out));
      }
    }
  }
  return outputs;
}

}  // namespace mt
