// OWL / GrOWL proximal operators (see owl_prox.h for the papers and formulas).
#include "mtl/sparsity/owl_prox.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "engine/error.h"
#include "mtl/text.h"

namespace mt {

namespace {

using text::num;

// w must be finite, >= 0 and non-increasing (OWL requires it; otherwise Omega_w
// is not a norm and the sorted-PAV algorithm is not its prox).
void check_owl_weights(const std::vector<double>& w, const char* who) {
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (!std::isfinite(w[i]) || w[i] < 0.0)
      throw Error(std::string(who) + ": weight w_" + std::to_string(i + 1) + " = " + num(w[i]) +
                  " must be finite and >= 0");
    if (i > 0 && w[i] > w[i - 1])
      throw Error(std::string(who) + ": weights must be non-increasing, but w_" +
                  std::to_string(i + 1) + " = " + num(w[i]) + " > w_" + std::to_string(i) +
                  " = " + num(w[i - 1]));
  }
}

// Apply the GrOWL step to precomputed group norms n and return the scale factor
// x_g / n_g of each group (0 = pruned, 1 = restored by the cap).
std::vector<double> growl_scales(const std::vector<double>& n, const std::vector<double>& w,
                                 int max_zero) {
  const std::size_t G = n.size();
  const std::vector<double> x = owl_prox(n, w);
  std::vector<double> scale(G, 0.0);
  std::size_t already_zero = 0;
  std::vector<std::size_t> newly_zero;  // groups the prox pruned
  for (std::size_t g = 0; g < G; ++g) {
    if (n[g] == 0.0) {
      ++already_zero;
    } else if (x[g] == 0.0) {
      newly_zero.push_back(g);
    } else {
      scale[g] = x[g] / n[g];
    }
  }
  if (max_zero >= 0) {
    // Cap: keep the smallest-norm groups pruned, give the largest-norm ones
    // among the newly pruned their original values back.
    const std::size_t cap = std::max<std::size_t>(static_cast<std::size_t>(max_zero), already_zero);
    const std::size_t allowed_new = cap - already_zero;
    if (newly_zero.size() > allowed_new) {
      std::stable_sort(newly_zero.begin(), newly_zero.end(),
                       [&](std::size_t a, std::size_t b) { return n[a] < n[b]; });
      for (std::size_t i = allowed_new; i < newly_zero.size(); ++i) scale[newly_zero[i]] = 1.0;
    }
  }
  return scale;
}

}  // namespace

std::vector<double> growl_weights(int G, const std::string& type, double beta1, double beta2) {
  if (G < 1) throw Error("growl_weights: number of groups must be >= 1, got " + std::to_string(G));
  if (!std::isfinite(beta1) || beta1 < 0.0)
    throw Error("growl_weights: beta1 must be finite and >= 0, got " + num(beta1));
  if (!std::isfinite(beta2) || beta2 < 0.0)
    throw Error("growl_weights: beta2 must be finite and >= 0, got " + num(beta2));
  std::vector<double> theta(static_cast<std::size_t>(G));
  if (type == "spike") {
    // theta = (beta1 + beta2, beta2, ..., beta2)
    std::fill(theta.begin(), theta.end(), beta2);
    theta[0] = beta1 + beta2;
  } else if (type == "linear") {
    // theta_i = beta1 + beta2 (G - i) / G, i = 1..G
    for (int i = 1; i <= G; ++i) theta[i - 1] = beta1 + beta2 * double(G - i) / double(G);
  } else if (type == "dejiao") {
    // p = floor(G/2): theta_i = beta1 + beta2 (p - i + 1) for i <= p, beta2 after
    const int p = G / 2;
    for (int i = 1; i <= G; ++i) theta[i - 1] = i <= p ? beta1 + beta2 * double(p - i + 1) : beta2;
  } else {
    throw Error("growl_weights: unknown type '" + type + "' (expected spike, linear or dejiao)");
  }
  return theta;
}

double owl_norm(const std::vector<double>& x, const std::vector<double>& w) {
  if (x.size() != w.size())
    throw Error("owl_norm: " + std::to_string(x.size()) + " values but " +
                std::to_string(w.size()) + " weights");
  std::vector<double> a(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) a[i] = std::fabs(x[i]);
  std::sort(a.begin(), a.end(), std::greater<double>());
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += w[i] * a[i];
  return s;
}

std::vector<double> owl_prox(const std::vector<double>& v, const std::vector<double>& w) {
  const std::size_t n = v.size();
  if (w.size() != n)
    throw Error("owl_prox: " + std::to_string(n) + " values but " + std::to_string(w.size()) +
                " weights");
  check_owl_weights(w, "owl_prox");
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i]))
      throw Error("owl_prox: value v_" + std::to_string(i + 1) + " = " + num(v[i]) +
                  " is not finite");

  // order: |v|_[1] >= |v|_[2] >= ...
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return std::fabs(v[a]) > std::fabs(v[b]); });

  // z_i = |v|_[i] - w_i, then the non-increasing isotonic fit by
  // pool-adjacent-violators: a stack of blocks (sum, count) with non-increasing means.
  struct Block {
    double sum;
    std::size_t count;
    double mean() const { return sum / double(count); }
  };
  std::vector<Block> blocks;
  blocks.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    blocks.push_back({std::fabs(v[order[i]]) - w[i], 1});
    while (blocks.size() >= 2 && blocks[blocks.size() - 2].mean() < blocks.back().mean()) {
      Block top = blocks.back();
      blocks.pop_back();
      blocks.back().sum += top.sum;
      blocks.back().count += top.count;
    }
  }

  // clip at 0, undo the sort, restore the signs
  std::vector<double> x(n, 0.0);
  std::size_t i = 0;
  for (const Block& b : blocks) {
    const double value = std::max(0.0, b.mean());
    for (std::size_t c = 0; c < b.count; ++c, ++i) {
      const std::size_t j = order[i];
      x[j] = v[j] < 0.0 ? -value : (v[j] > 0.0 ? value : 0.0);
    }
  }
  return x;
}

void growl_prox_rows(float* W, int rows, int cols, const std::vector<double>& w, int max_zero_rows) {
  if (rows < 1 || cols < 1)
    throw Error("growl_prox_rows: bad shape " + std::to_string(rows) + " x " + std::to_string(cols));
  if (w.size() != static_cast<std::size_t>(rows))
    throw Error("growl_prox_rows: " + std::to_string(rows) + " rows but " +
                std::to_string(w.size()) + " weights");
  if (max_zero_rows < -1)
    throw Error("growl_prox_rows: max_zero_rows must be >= -1, got " + std::to_string(max_zero_rows));
  // n_g = ||W_g||_2 (accumulated in double)
  std::vector<double> n(static_cast<std::size_t>(rows));
  for (int g = 0; g < rows; ++g) {
    const float* r = W + std::size_t(g) * std::size_t(cols);
    double s = 0.0;
    for (int j = 0; j < cols; ++j) s += double(r[j]) * double(r[j]);
    n[g] = std::sqrt(s);
  }
  const std::vector<double> scale = growl_scales(n, w, max_zero_rows);
  // W_g <- W_g * x_g / n_g
  for (int g = 0; g < rows; ++g) {
    if (scale[g] == 1.0) continue;
    float* r = W + std::size_t(g) * std::size_t(cols);
    for (int j = 0; j < cols; ++j) r[j] = scale[g] == 0.0 ? 0.0f : float(double(r[j]) * scale[g]);
  }
}

void growl_prox_groups(float* data, std::size_t size,
                       const std::vector<std::vector<std::size_t>>& groups,
                       const std::vector<double>& w, int max_zero_groups) {
  if (groups.empty()) throw Error("growl_prox_groups: no groups");
  if (w.size() != groups.size())
    throw Error("growl_prox_groups: " + std::to_string(groups.size()) + " groups but " +
                std::to_string(w.size()) + " weights");
  if (max_zero_groups < -1)
    throw Error("growl_prox_groups: max_zero_groups must be >= -1, got " +
                std::to_string(max_zero_groups));
  std::vector<double> n(groups.size());
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].empty()) throw Error("growl_prox_groups: group " + std::to_string(g) + " is empty");
    double s = 0.0;
    for (std::size_t idx : groups[g]) {
      if (idx >= size)
        throw Error("growl_prox_groups: group " + std::to_string(g) + " has index " +
                    std::to_string(idx) + " >= size " + std::to_string(size));
      s += double(data[idx]) * double(data[idx]);
    }
    n[g] = std::sqrt(s);
  }
  const std::vector<double> scale = growl_scales(n, w, max_zero_groups);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (scale[g] == 1.0) continue;
    for (std::size_t idx : groups[g])
      data[idx] = scale[g] == 0.0 ? 0.0f : float(double(data[idx]) * scale[g]);
  }
}

std::vector<std::vector<std::size_t>> column_groups(int rows, int cols) {
  if (rows < 1 || cols < 1)
    throw Error("column_groups: bad shape " + std::to_string(rows) + " x " + std::to_string(cols));
  std::vector<std::vector<std::size_t>> groups(static_cast<std::size_t>(cols));
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < rows; ++i) groups[j].push_back(std::size_t(i) * std::size_t(cols) + j);
  return groups;
}

std::vector<std::vector<std::size_t>> input_channel_groups(int out_ch, int in_ch, int kernel_elems) {
  if (out_ch < 1 || in_ch < 1 || kernel_elems < 1)
    throw Error("input_channel_groups: bad shape [" + std::to_string(out_ch) + ", " +
                std::to_string(in_ch) + ", " + std::to_string(kernel_elems) + "]");
  std::vector<std::vector<std::size_t>> groups(static_cast<std::size_t>(in_ch));
  for (int c = 0; c < in_ch; ++c)
    for (int o = 0; o < out_ch; ++o)
      for (int k = 0; k < kernel_elems; ++k)
        groups[c].push_back((std::size_t(o) * std::size_t(in_ch) + std::size_t(c)) *
                                std::size_t(kernel_elems) + std::size_t(k));
  return groups;
}

int growl_zero_cap(int groups, double max_layer_sparsity, int iter, int num_iters) {
  if (groups < 0) throw Error("growl_zero_cap: groups must be >= 0, got " + std::to_string(groups));
  if (!(max_layer_sparsity >= 0.0 && max_layer_sparsity <= 1.0))
    throw Error("growl_zero_cap: max layer sparsity must be in [0, 1], got " +
                num(max_layer_sparsity));
  if (num_iters < 1 || iter < 0 || iter >= num_iters)
    throw Error("growl_zero_cap: iteration " + std::to_string(iter) + " outside [0, " +
                std::to_string(num_iters) + ")");
  // max_layerSRate_k = (k + 1) * max_layerSRate / K;  cap = floor(rate_k * G)
  // (the 1e-9 keeps e.g. 0.3 * 10 = 2.9999... from flooring to 2)
  const double rate = double(iter + 1) * max_layer_sparsity / double(num_iters);
  return static_cast<int>(std::floor(rate * double(groups) + 1e-9));
}

}  // namespace mt
