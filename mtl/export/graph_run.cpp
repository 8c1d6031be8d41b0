// The fp32 layer-graph interpreter (see graph_run.h).
#include "mtl/export/graph_run.h"

#include <algorithm>
#include <cmath>

namespace mt {

namespace {

void run_conv(const LayerGraph& g, const GraphLayer& l, const std::vector<float>& x, std::vector<float>& y) {
  const GraphValue& in = g.values[(size_t)l.in[0]];
  const GraphValue& out = g.values[(size_t)l.out];
  const int C = l.in_c, K = l.k, H = in.h, W = in.w;
  const int64_t per = (int64_t)C * K * K;
  y.assign((size_t)out.size(), 0.f);
  int64_t e = 0;
  for (int o = 0; o < out.c; o++) {
    const float* w = l.W.data() + (size_t)((int64_t)l.filter_of[(size_t)o] * per);
    for (int q = 0; q < out.positions(o); q++, e++) {
      const int p = out.pos.empty() ? q : out.pos[(size_t)o][(size_t)q];
      const int py = p / out.w, px = p % out.w;
      float best = 0.f;
      for (int dy = 0; dy < l.pool; dy++)
        for (int dx = 0; dx < l.pool; dx++) {
          const int cy = (py * l.pool + dy) * l.stride - l.pad, cx = (px * l.pool + dx) * l.stride - l.pad;
          float acc = 0.f;
          for (int c = 0; c < C; c++)
            for (int i = 0; i < K; i++)
              for (int j = 0; j < K; j++) {
                const int iy = cy + i, ix = cx + j;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += w[(c * K + i) * K + j] * x[(size_t)((int64_t)(c * H + iy) * W + ix)];
              }
          const bool first = dy == 0 && dx == 0;
          if (first || (l.min_pool[(size_t)o] ? acc < best : acc > best)) best = acc;
        }
      float v = best + l.b[(size_t)o];
      if (l.relu && !(v > 0.f)) v = 0.f;
      y[(size_t)e] = v;
    }
  }
}

void run_linear(const GraphLayer& l, const std::vector<const std::vector<float>*>& xs, std::vector<float>& y) {
  std::vector<float> x;  // the concatenated input
  for (const auto* s : xs) x.insert(x.end(), s->begin(), s->end());
  const int O = l.outputs(), J = l.columns();
  y = l.b;
  for (int j = 0; j < J; j++) {
    float xj = 0.f;
    for (size_t k = 0; k < l.cols[(size_t)j].size(); k++)
      xj = k == 0 ? x[(size_t)l.cols[(size_t)j][0]] : xj + x[(size_t)l.cols[(size_t)j][k]];
    if (xj == 0.f) continue;  // as the C: an input of 0 adds nothing
    for (int o = 0; o < O; o++) y[(size_t)o] += l.W[(size_t)((int64_t)o * J + j)] * xj;
  }
  if (l.relu)
    for (float& v : y)
      if (!(v > 0.f)) v = 0.f;
}

void log_softmax_inplace(float* x, int n) {
  float m = x[0];
  for (int c = 1; c < n; c++) m = std::max(m, x[c]);
  double s = 0;
  for (int c = 0; c < n; c++) s += std::exp((double)(x[c] - m));
  const float lse = m + (float)std::log(s);
  for (int c = 0; c < n; c++) x[c] = x[c] - lse;
}

}  // namespace

GraphActivations run_graph(const LayerGraph& g, const float* input) {
  GraphActivations a;
  a.values.resize(g.values.size());
  a.values[0].assign(input, input + g.values[0].dense_size());
  a.outputs.assign((size_t)g.output_size(), 0.f);
  for (const GraphLayer& l : g.layers) {
    std::vector<float>& y = a.values[(size_t)l.out];
    if (l.kind == LayerKind::Conv) {
      run_conv(g, l, a.values[(size_t)l.in[0]], y);
    } else {
      std::vector<const std::vector<float>*> xs;
      for (int v : l.in) xs.push_back(&a.values[(size_t)v]);
      run_linear(l, xs, y);
    }
    if (l.task >= 0) {
      float* o = a.outputs.data() + g.output_offset(l.task);
      std::copy(y.begin(), y.end(), o);
      if (l.log_softmax) log_softmax_inplace(o, (int)y.size());
    }
  }
  return a;
}

}  // namespace mt
