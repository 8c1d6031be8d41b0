// int8 quantisation of a layer graph (see quantize.h).
#include "mtl/export/quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/error.h"
#include "mtl/export/graph_run.h"

namespace mt {

void quantize_multiplier(double m, int32_t* m0, int32_t* shift) {
  if (m == 0.0) {
    *m0 = 0;
    *shift = 0;
    return;
  }
  int e = 0;
  const double q = std::frexp(m, &e);  // m = q 2^e, q in [0.5, 1)
  int64_t q_fixed = (int64_t)std::llround(q * (double)(1LL << 31));
  if (q_fixed == (1LL << 31)) {
    q_fixed /= 2;
    e++;
  }
  if (e < -31) {  // too small to matter: everything rounds to 0
    e = 0;
    q_fixed = 0;
  }
  *m0 = (int32_t)q_fixed;
  *shift = e;
}

int32_t sat_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == std::numeric_limits<int32_t>::min()) return std::numeric_limits<int32_t>::max();
  const int64_t ab = (int64_t)a * (int64_t)b;
  const int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
  return (int32_t)((ab + nudge) / (1LL << 31));  // division truncates toward zero, as gemmlowp
}

int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)((1LL << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t multiply_by_quantized_multiplier(int32_t acc, int32_t m0, int32_t shift) {
  const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  return rounding_divide_by_pot(sat_rounding_doubling_high_mul((int32_t)((int64_t)acc * (1LL << left)), m0), right);
}

namespace {

struct Range {
  float lo = std::numeric_limits<float>::infinity(), hi = -std::numeric_limits<float>::infinity();
  void add(float v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  void add(const Range& r) {
    lo = std::min(lo, r.lo);
    hi = std::max(hi, r.hi);
  }
};

// Asymmetric int8 parameters holding [lo, hi] and 0 (TFLite's ChooseQuantizationParams).
QParams choose_qparams(Range r) {
  const double lo = std::min(0.0, (double)r.lo), hi = std::max(0.0, (double)r.hi);
  QParams q;
  if (!(hi - lo > 0)) return q;  // an all-zero value: any scale; zero point 0 keeps 0 exact
  const double s = (hi - lo) / 255.0;
  q.scale = (float)s;
  const double z = -128.0 - lo / (double)q.scale;
  q.zero_point = (int32_t)std::clamp(std::llround(z), -128LL, 127LL);
  return q;
}

// Per-row symmetric int8 of `rows` rows of `per` weights.
void quantize_rows(const std::vector<float>& W, int rows, int64_t per, std::vector<int8_t>& q, std::vector<float>& s) {
  q.assign(W.size(), 0);
  s.assign((size_t)rows, 1.f);
  for (int r = 0; r < rows; r++) {
    float m = 0.f;
    for (int64_t i = 0; i < per; i++) m = std::max(m, std::fabs(W[(size_t)(r * per + i)]));
    if (m == 0.f) continue;
    s[(size_t)r] = m / 127.f;
    for (int64_t i = 0; i < per; i++) {
      const long v = std::lround((double)W[(size_t)(r * per + i)] / (double)s[(size_t)r]);
      q[(size_t)(r * per + i)] = (int8_t)std::clamp(v, -127L, 127L);
    }
  }
}

int32_t quantize_bias(float b, double scale) {
  const double v = std::round((double)b / scale);
  const double lim = (double)std::numeric_limits<int32_t>::max() / 4;  // headroom for the sum
  check(std::fabs(v) <= lim, "export", "a bias of " + std::to_string(b) + " does not fit an int32 accumulator at scale " +
                                           std::to_string(scale));
  return (int32_t)v;
}

}  // namespace

QuantGraph quantize_graph(const LayerGraph& g, const std::vector<const float*>& calibration) {
  check(!calibration.empty(), "export", "int8 calibration needs at least one image");
  const size_t V = g.values.size();
  // ranges over the calibration images (the outputs of task layers are not requantised)
  std::vector<Range> range(V);
  for (const float* img : calibration) {
    const GraphActivations a = run_graph(g, img);
    for (size_t v = 0; v < V; v++)
      for (float x : a.values[v]) range[v].add(x);
  }
  QuantGraph q;
  q.calibration_images = (int)calibration.size();
  for (size_t v = 0; v < V; v++) q.values.push_back(choose_qparams(range[v]));

  for (const GraphLayer& l : g.layers) {
    QuantLayer ql;
    const QParams out = q.values[(size_t)l.out];
    const int O = l.outputs();
    std::vector<double> unit((size_t)O);  // the accumulator's scale per output
    if (l.kind == LayerKind::Conv) {
      const QParams in = q.values[(size_t)l.in[0]];
      quantize_rows(l.W, l.filters(), (int64_t)l.in_c * l.k * l.k, ql.W, ql.w_scale);
      for (int o = 0; o < O; o++) unit[(size_t)o] = (double)in.scale * ql.w_scale[(size_t)l.filter_of[(size_t)o]];
    } else {
      // the columns of each segment, and each segment's part of a row quantised on its own
      const int J = l.columns(), S = std::max<int>(1, (int)l.in.size());
      ql.seg_columns.assign((size_t)S + 1, J);
      ql.seg_columns[0] = 0;
      for (int j = J - 1; j >= 0; j--) {
        const int seg = g.segment_of_input(l, l.cols[(size_t)j][0]);
        for (int t = 1; t <= seg; t++) ql.seg_columns[(size_t)t] = std::min(ql.seg_columns[(size_t)t], j);
      }
      ql.W.assign(l.W.size(), 0);
      ql.w_scale.assign((size_t)S * O, 1.f);
      auto s_in = [&](int sg) { return l.in.empty() ? 1.f : q.values[(size_t)l.in[(size_t)sg]].scale; };
      for (int o = 0; o < O; o++) {
        for (int sg = 0; sg < S; sg++) {
          const int j0 = ql.seg_columns[(size_t)sg], j1 = ql.seg_columns[(size_t)sg + 1];
          const std::vector<float> part(l.W.begin() + (int64_t)o * J + j0, l.W.begin() + (int64_t)o * J + j1);
          std::vector<int8_t> pq;
          std::vector<float> ps;
          quantize_rows(part, 1, j1 - j0, pq, ps);
          std::copy(pq.begin(), pq.end(), ql.W.begin() + (int64_t)o * J + j0);
          ql.w_scale[(size_t)(sg * O + o)] = ps[0];
          // the accumulator's scale: the finest among the segments the row reads
          const bool reads = std::any_of(part.begin(), part.end(), [](float w) { return w != 0.f; });
          const double u = (double)s_in(sg) * ps[0];
          if (reads && (unit[(size_t)o] == 0 || u < unit[(size_t)o])) unit[(size_t)o] = u;
        }
        if (unit[(size_t)o] == 0) unit[(size_t)o] = s_in(0);  // a row reading nothing: the bias alone
      }
      if (S > 1)
        for (int sg = 0; sg < S; sg++)
          for (int o = 0; o < O; o++) {
            const double u = (double)q.values[(size_t)l.in[(size_t)sg]].scale * ql.w_scale[(size_t)(sg * O + o)];
            int32_t m0, sh;
            quantize_multiplier(u / unit[(size_t)o], &m0, &sh);
            ql.seg_multiplier.push_back(m0);
            ql.seg_shift.push_back(sh);
          }
      if (S == 1) ql.seg_columns.clear();
    }
    for (int o = 0; o < O; o++) {
      ql.bias.push_back(quantize_bias(l.b[(size_t)o], unit[(size_t)o]));
      if (l.task >= 0) {
        ql.out_scale.push_back((float)unit[(size_t)o]);
      } else {
        int32_t m0, sh;
        quantize_multiplier(unit[(size_t)o] / (double)out.scale, &m0, &sh);
        ql.multiplier.push_back(m0);
        ql.shift.push_back(sh);
      }
    }
    ql.act_min = l.relu ? std::max(-128, out.zero_point) : -128;
    q.layers.push_back(std::move(ql));
  }
  return q;
}

}  // namespace mt
