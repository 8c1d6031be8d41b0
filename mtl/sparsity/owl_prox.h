// OWL / GrOWL proximal operators: the sparsity step of the method of
// Hotegni, Berkemeier, Peitz, "Multi-Objective Optimization for Sparse Deep
// Multi-Task Learning" (IJCNN 2024; reference code github.com/salomonhotegni/MDMTN),
// which uses GrOWL from Zhang, Wang, Ma, Zhou, "Learning compact neural networks
// with regularization" (ICML 2018).
//
//   OWL norm   Omega_w(x) = sum_i w_i |x|_[i],  w_1 >= w_2 >= ... >= w_n >= 0,
//              |x|_[1] >= |x|_[2] >= ... (magnitudes sorted non-increasing).
//   prox       prox_{eta Omega_w}(v) = argmin_x 0.5 ||x - v||^2 + eta Omega_w(x).
//   GrOWL      Omega_w applied to the vector of group norms n_g = ||W_g||_2.
//
// The step size eta is folded into the weights by the caller (w_times_eta = eta * w);
// the reference code (GrOWL_utils.py: apply_growl, once after each epoch of the search
// phase) uses eta = 1, i.e. w_times_eta = growl_weights(...).
// Note: here w_1 always goes with the largest magnitude, as OWL is defined. The
// reference code pairs its (permuted) weights with the sorted norms differently and
// uses an iterative segment-averaging instead of exact PAV; we follow the definition.
// Engine independent: plain vectors and raw float arrays.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace mt {

// GrOWL weight sequence theta_1 >= ... >= theta_G for G groups, as in the MDMTN
// reference code (src/utils/GrOWL_utils.py, create_GrOWL_params):
//   "spike":  theta = (beta1 + beta2, beta2, ..., beta2)
//             (= beta2 * l1 + beta1 * l_inf of the group norms)
//   "linear": theta_i = beta1 + beta2 * (G - i) / G,                    i = 1..G
//   "dejiao": p = floor(G/2); theta_i = beta1 + beta2 * (p - i + 1) for i <= p,
//             theta_i = beta2 for i > p  (the GrOWL authors' code, github Dejiao2018/GrOWL)
// The reference defaults are type "spike", beta1 = 0.8, beta2 = 0.2.
// Throws mt::Error for G < 1, an unknown type, or negative / non-finite betas.
std::vector<double> growl_weights(int G, const std::string& type, double beta1 = 0.8,
                                  double beta2 = 0.2);

// Omega_w(x) = sum_i w_i |x|_[i] (w as given, paired with the sorted magnitudes).
double owl_norm(const std::vector<double>& x, const std::vector<double>& w);

// prox_{Omega_w}(v) with w = w_times_eta (non-increasing, >= 0, same length as v):
// sort |v| non-increasing, subtract w, project onto non-increasing sequences by
// pool-adjacent-violators, clip at 0, undo the sort, restore the signs of v.
// Throws mt::Error on a length mismatch, a negative, increasing or non-finite weight.
std::vector<double> owl_prox(const std::vector<double>& v, const std::vector<double>& w_times_eta);

// GrOWL prox on the rows of a row-major rows x cols matrix (group g = row g):
// n_g = ||W_g||_2, x = owl_prox(n, w_times_eta), W_g <- W_g * x_g / n_g
// (row set to 0 when n_g == 0 or x_g == 0). w_times_eta.size() must equal rows.
//
// Cap (max_zero_rows >= 0): after the step at most max(max_zero_rows, #rows that
// were already zero) rows are zero. If the prox zeroes more, the newly zeroed rows
// with the LARGEST original norms get their original (pre-prox) values back, so the
// cap keeps the groups of smallest norm pruned. This is the deterministic version of
// the reference code's rule (apply_growl: when more than floor(max_layerSRate * rows)
// rows are zero, restore some zeroed rows to their original values, there chosen at
// random). max_zero_rows = -1 means no cap. See growl_zero_cap for the ramp.
void growl_prox_rows(float* W, int rows, int cols, const std::vector<double>& w_times_eta,
                     int max_zero_rows = -1);

// The same for a generic grouping: groups[g] lists indices into data[0..size).
// Groups should be disjoint (an index in two groups is rescaled twice). Throws
// mt::Error for an index >= size, an empty group or w_times_eta.size() != groups.size().
void growl_prox_groups(float* data, std::size_t size,
                       const std::vector<std::vector<std::size_t>>& groups,
                       const std::vector<double>& w_times_eta, int max_zero_groups = -1);

// Groupings for growl_prox_groups.
// Columns of a row-major rows x cols matrix (an FC weight [out, in] grouped by input
// neuron, which is the grouping of the reference code: rows of W^T).
std::vector<std::vector<std::size_t>> column_groups(int rows, int cols);
// Input channels of a conv weight [out_ch, in_ch, kernel_elems] (kernel_elems = kh*kw):
// group c = all W[o, c, :] over o. (Output channels are simply rows: growl_prox_rows
// with rows = out_ch, cols = in_ch * kernel_elems.)
std::vector<std::vector<std::size_t>> input_channel_groups(int out_ch, int in_ch,
                                                           int kernel_elems);

// The reference code's ramp of the per-layer cap over the search phase
// (WCsAL_Train.py: max_layerSRate_k = (k + 1) * max_layerSRate / max_iter_search,
// cap = floor(max_layerSRate_k * groups)), iter 0-based in [0, num_iters).
int growl_zero_cap(int groups, double max_layer_sparsity, int iter, int num_iters);

}  // namespace mt
