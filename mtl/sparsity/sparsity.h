// Group sparsity for the method of Hotegni, Berkemeier, Peitz (IJCNN 2024; reference
// code github.com/salomonhotegni/MDMTN, src/utils/GrOWL_utils.py, src/utils/lsuv.py):
// the groups of a model's weights, the sparsity objective f_0, the GrOWL proximal step,
// the prune mask and parameter tying of the retraining phase, LSUV initialisation and
// the sparsity / compression metrics.
//
// GROUPS. Every parameter of rank >= 2 is split into groups:
//   Linear weight W [out, in]       group j = column j = W[:, j]   (input unit j; the rows
//                                   of W^T, as the reference code)          GroupKind::Columns
//   Conv2d weight W [O, C, k, k]    group o = W[o, :, :, :]        (output filter o)
//                                   and any other rank >= 2 tensor: its rows  GroupKind::Rows
// (The reference reshapes a conv weight with view(C, -1), which splits the flat buffer
// into C equal chunks rather than per-channel groups; the torch bench in
// shared/bench/torch_multimnist.py and this engine use output filters.)
//
// REGULARISED groups (f_0, GrOWL, clustering and tying) are those of every Conv2d and
// Linear weight EXCEPT
//   - a Conv2d reading the input image: in_channels == the input's channel count (the
//     reference's "skip_layer" rule; the channel count is LayerTracer::input_chw()[0],
//     else the in_channels of the first Conv2d under "trunk.");
//     in MDMTN: trunk.conv1 and every heads.<t>.monitor.conv;
//   - the output layer of each task: the last Conv2d/Linear under "heads.<t>." in
//     registration order (heads.<t>.out in MDMTN/HPS, fc2 in MultiLeNet).
// Biases, BatchNorm parameters and alpha (rank 1) are never grouped.
// For MDMTN (MultiMNIST sizes, 2 tasks) the regularised tensors are
//   trunk.conv2.weight (20 filters of 250), trunk.fc.weight (320 input units of 50),
//   heads.<t>.monitor.fc.weight (2880 input units of 50), t = 0, 1
// exactly the groups of the torch bench's sparsity objective.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"
#include "layers/module.h"
#include "mtl/models/model.h"

namespace mt {

// ---- tracing (LSUV, FLOPs) --------------------------------------------------------
struct TracedLayer {
  std::string name;  // the layer's dotted name, e.g. "trunk.conv1"
  Module* layer;     // a Conv2d or Linear of the model
  Tensor input;      // what its forward received in the traced pass
};

// A model that can run one forward pass (trunk and every head) recording the input of
// each Conv2d/Linear in execution order. (layers/ has no hooks; MDMTN/HPS implement it.)
class LayerTracer {
 public:
  virtual ~LayerTracer() = default;
  virtual std::vector<TracedLayer> trace(const Tensor& x) = 0;
  virtual Shape input_chw() const = 0;
};

// ---- groups ---------------------------------------------------------------------
enum class GroupKind { Columns, Rows };

struct WeightGroups {
  std::string name;  // parameter name, "trunk.fc.weight"
  Tensor weight;     // the parameter (shares storage with the model)
  GroupKind kind = GroupKind::Rows;
  int groups = 0;      // number of groups
  int group_size = 0;  // elements per group
  bool conv = false;   // a Conv2d weight (FLOPs scale with the output's H*W)
  bool regularized = false;
};

// Every rank >= 2 parameter in registration order, with its grouping and whether it is
// regularised (see the top of this file).
std::vector<WeightGroups> weight_groups(const MultiTaskModel& m);
std::vector<WeightGroups> regularized_groups(const MultiTaskModel& m);  // the regularised ones

// The groups as a groups x group_size row-major matrix (a copy), and writing it back.
std::vector<float> group_matrix(const WeightGroups& g);
void set_group_matrix(const WeightGroups& g, const std::vector<float>& m);
std::vector<double> group_norms(const WeightGroups& g);  // ||w_g||_2, in double
std::vector<bool> zero_groups(const WeightGroups& g);    // every element exactly 0

// ---- f_0 --------------------------------------------------------------------------
// sum_g ||W_g||_2 of one weight as a differentiable rank-0 tensor: a custom op (norms
// in double) whose backward gives W_g / ||W_g||_2 for a non-zero group and 0 for a
// zero group (the minimum-norm subgradient: no epsilon, so f_0 is exact).
Tensor group_l2_sum(const Tensor& W, GroupKind kind);
// f_0 = sum over the regularised weights of group_l2_sum (rank 0).
Tensor group_norm_sum(const MultiTaskModel& m);
double group_norm_sum_value(const MultiTaskModel& m);  // the same number, no graph

// ---- GrOWL step (search phase, once per epoch) -------------------------------------
struct GrowlStats {
  int64_t zero_groups = 0, total_groups = 0;  // over the regularised weights, after the step
};
// For each regularised weight with G groups: theta = growl_weights(G, type, beta1, beta2),
// the OWL prox of the group norms with eta * theta, and at most
// growl_zero_cap(G, max_layer_sparsity, iter, num_iters) zero groups (iter 0-based outer
// iteration of the search phase). See mtl/sparsity/owl_prox.h.
GrowlStats apply_growl(const MultiTaskModel& m, double eta, double beta1, double beta2,
                       const std::string& type, double max_layer_sparsity, int iter, int num_iters);

// ---- retraining: prune mask and parameter tying -------------------------------------
// The zero groups of every grouped weight (regularised or not, as the reference's
// get_sparse_model_info / keep_sparse), kept at zero during retraining: call
// zero_grads() before the optimizer step (Adam's moments then stay 0 there) and apply()
// after it. Keyed by parameter name.
class PruneMask {
 public:
  struct Entry {
    std::string name;
    GroupKind kind;
    std::vector<int> groups;  // indices of the pruned groups
  };
  static PruneMask record(const MultiTaskModel& m);
  void apply(const MultiTaskModel& m) const;       // zero the pruned groups' weights
  void zero_grads(const MultiTaskModel& m) const;  // zero their gradients (if any)
  int64_t pruned_groups() const;
  const std::vector<Entry>& entries() const { return entries_; }
  // I64 tensors PREFIX<name> = group indices (for checkpoints).
  void save(StFile& f, const std::string& prefix) const;
  static PruneMask load(const StFile& f, const std::string& prefix, const MultiTaskModel& m,
                        const std::string& path);

 private:
  std::vector<Entry> entries_;
};

struct TieOptions {
  double preference = 0.7;  // Affinity Propagation preference (reference: 0.7 MultiMNIST, 0.8 Cifar10Mnist)
  double damping = 0.5;
  int max_iter = 200, conv_iter = 15;
};

// Clusters the groups of each regularised weight by Affinity Propagation on
// row_similarity of the group vectors (mtl/sparsity/affinity_propagation.h), after the search
// phase. Zero groups get label -1: they are not clustered and stay zero. A weight
// whose groups are all zero is skipped. apply() replaces each cluster's groups by their
// mean (tie_rows_to_cluster_means), after each optimizer step of the retraining.
class ParameterTying {
 public:
  struct Entry {
    std::string name;
    GroupKind kind;
    std::vector<int> labels;  // per group: cluster in [0, clusters) or -1
    int clusters = 0;
  };
  static ParameterTying cluster(const MultiTaskModel& m, const TieOptions& opt = {});
  void apply(const MultiTaskModel& m) const;
  int64_t clusters() const;      // summed over the weights
  int64_t tied_groups() const;   // groups with a label >= 0
  const std::vector<Entry>& entries() const { return entries_; }
  // I64 tensors PREFIX<name> = labels (for checkpoints).
  void save(StFile& f, const std::string& prefix) const;
  static ParameterTying load(const StFile& f, const std::string& prefix, const MultiTaskModel& m,
                             const std::string& path);

 private:
  std::vector<Entry> entries_;
};

// ---- LSUV (Mishkin & Matas, "All you need is a good init", ICLR 2016) ----------------
struct LsuvOptions {
  double target_std = 1.0;  // wanted std of each layer's output
  double tol = 0.1;         // stop when |std - target| <= tol
  int max_attempts = 10;    // rescalings per layer
  bool orthonormal = true;  // first W <- orthogonal (gain 1), bias <- 0
};
// Needs a LayerTracer model. In eval mode and without gradients: optionally the
// orthonormal pre-initialisation of every Conv2d/Linear (in trace order), then for each
// traced layer l in execution order: trace the batch x, run layer l on its recorded
// input, and while |std(output) - target| > tol (at most max_attempts times) scale its
// weight by target / (std + 1e-8) (std over all output elements, as numpy's std).
// Layers traced more than once (none in MDMTN/HPS) are treated at their first call.
// Returns each layer's final output std, by name. Restores the train/eval mode.
std::vector<std::pair<std::string, double>> lsuv_init(MultiTaskModel& m, const Tensor& x,
                                                      const LsuvOptions& opt = {},
                                                      Rng& rng = global_rng());

// ---- metrics ------------------------------------------------------------------------
struct LayerSparsity {
  std::string name;
  bool regularized = false;
  int groups = 0, zero_groups = 0, unique_nonzero_groups = 0;
  int64_t weights = 0, zero_weights = 0;
  double dense_flops = 0, flops = 0;  // per sample; 0 when unknown
};

// Definitions (all over the rank >= 2 weights with the grouping above, regularised or not):
//   group_sparsity   = 100 * zero groups / groups                         (reference: "Sparsity Rate")
//   param_sparsity   = 100 * zero weight elements / weight elements
//   compression_rate = groups / unique non-zero groups, where groups of one tensor that are
//                      exactly equal (bitwise, after tying) count once; >= 1 (reference:
//                      groups / unique groups, counting the zero group)
//   sharing_ratio    = non-zero groups / unique non-zero groups: 1 = no tying
//                      (reference: "Parameter Sharing")
//   params           = all parameters of the model (biases, BN, alpha included)
//   stored_params    = what a pruned and tied model stores: unique non-zero groups *
//                      group_size per grouped tensor, plus every other parameter
//   dense_bytes      = 4 * params
//   bytes            = 4 * stored_params + 4 * groups of every grouped tensor that has a
//                      zero or a shared group (an int32 map group -> stored group, -1 = zero)
//   dense_flops      = 2 * multiply-adds per sample of every Conv2d and Linear in one
//                      forward of the whole model (trunk and all heads): conv
//                      2*O*C*k*k*Ho*Wo, linear 2*out*in; bias, pooling, BN, activations
//                      not counted
//   flops            = the same with each layer's zero groups removed: a layer with G
//                      groups of which z are zero costs dense * (G - z) / G (a zero filter
//                      skips its output channel, a zero input unit its column). Knock-on
//                      effects on the next layer are not counted.
// FLOPs need a LayerTracer model (one traced pass on a zero batch of 1 in eval mode);
// otherwise flops_known = false and the FLOP fields are 0.
struct SparsityReport {
  std::vector<LayerSparsity> layers;
  int64_t groups = 0, zero_groups = 0, unique_nonzero_groups = 0;
  int64_t weights = 0, zero_weights = 0;
  double group_sparsity = 0, param_sparsity = 0, compression_rate = 1, sharing_ratio = 1;
  int64_t params = 0, stored_params = 0, dense_bytes = 0, bytes = 0;
  bool flops_known = false;
  double dense_flops = 0, flops = 0;
};
SparsityReport sparsity_report(MultiTaskModel& m);
// One line: "group sparsity 12.3% (45/366 groups), params 4.5% zero, compression 1.14, ..."
std::string format_sparsity(const SparsityReport& r);

}  // namespace mt
