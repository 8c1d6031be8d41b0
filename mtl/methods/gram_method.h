// The gradient-balancing methods that decide the update from the K x K Gram
// matrix of the task gradients M_ij = <g_i, g_j> (and the losses), and the one
// Method that applies any of them. Every such method trains the shared part on
// a direction d = sum_t w_t g_t; what differs is how w comes from M. Working on
// M alone makes each method a few lines of K x K arithmetic (as TorchJD's
// "Gramian weightings") and lets the same code run in both places where the
// engine computes task gradients (MethodOptions::gradients):
//
//   representation  g_t = dL_t / dZ, the gradient at the shared representation
//                   (Sener & Koltun's MGDA-UB): one trunk forward, the heads'
//                   backward on a detached Z, then a single trunk backward with
//                   upstream sum_t w_t g_t. Costs one trunk pass whatever K.
//   parameters      g_t = dL_t / dtheta_sh over every shared parameter: K
//                   backwards through the trunk; the shared parameters'
//                   gradient is set to sum_t w_t g_t.
//
// What the representation mode means. With J = dZ/dtheta_sh the parameter
// gradients are J^T g_t, and both modes step along J^T sum_t w_t g_t: the
// update is always a combination of the true task gradients, only the weights
// w are chosen from the Gram matrix of the Z-gradients, G_Z, instead of
// G_theta = G_Z J J^T G_Z^T. The two coincide when J J^T is a multiple of the
// identity (an orthonormal Jacobian; tests/test_gram_methods.cpp checks a
// linear trunk on orthonormal inputs). Otherwise a property a method proves
// about d holds for d_Z = sum_t w_t dL_t/dZ, not for the parameter step: e.g.
// UPGrad's <g_t, d> >= 0 and IMTL-G's equal projections hold at Z. MGDA-UB's
// Theorem 1 is the one guarantee that carries over (|| J^T d_Z || <= ||J|| ||d_Z||,
// so min-norm at Z minimises an upper bound). Weights that carry a scale see
// the Z-gradients' one: Nash-MTL's alpha_t ~ 1 / ||g_t|| is ~ sqrt(batch) times
// larger at Z (mean losses make each sample's dL/dZ ~ 1/batch) than at the
// parameters, and its heads train on alpha_t L_t. Per-sample Z-gradients are kept
// whole (batch x features), as Sener & Koltun's code; LibMTL's rep_grad mode
// sums them over the batch first, which is a different Gram matrix.
//
// Heads. Head t's parameters get head_t * dL_t/dtheta_t: the task weight for
// methods whose paper trains on sum_t w_t L_t (MGDA, Nash-MTL), 1 for the
// gradient-surgery methods that only change the shared update (PCGrad, CAGrad,
// IMTL-G, Aligned-MTL, UPGrad: their papers' and reference code's choice).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtl/methods/method.h"
#include "mtl/methods/method_state.h"

namespace mt {

// The K x K Gram matrix, row-major, in double.
struct Gram {
  int K = 0;
  std::vector<double> v;  // v[i * K + j] = <g_i, g_j>
  double operator()(int i, int j) const { return v[size_t(i) * K + j]; }
};

struct TaskWeights {
  std::vector<double> shared;  // w_t: the shared part trains on d = sum_t w_t g_t
  std::vector<double> heads;   // head t's gradient is scaled by heads[t]
  int iterations = 0;          // of the method's inner solver, if any (StepStats::solver_iterations)
  bool min_norm = false;       // MGDA: the min-norm solver ran, and gap is its certificate (StepStats::solver)
  double gap = 0;              // its relative duality gap, MinNormResult::gap (StepStats::solver_gap)
};

class GramWeighting : public WeightingState {
 public:
  virtual std::string name() const = 0;
  // M: the Gram matrix of this step's task gradients; losses: L_t; step: 0 at
  // the first call, then 1, 2, ... (kept across checkpoints).
  virtual TaskWeights weights(const Gram& M, const std::vector<double>& losses, int64_t step) = 0;
  // > 0: after the trunk backward, the shared parameters' gradient is clipped
  // to this global norm (Nash-MTL's reference code does so).
  virtual double shared_max_norm() const { return 0; }
};

// The representation mode in its three parts (GramMethod runs them in a row). A
// data-parallel step (mtl/dist/) sums the ranks' local Gram matrices and losses
// between z_gram() and the weighting: with each rank's L_t the mean over its own
// b samples and the global loss the mean over N b, the global Gram matrix is
// (1 / N^2) sum_r M_r (tests/test_gram_methods.cpp checks N = 2).
struct ZGradients {
  Tensor z;                  // Z = trunk(x), its graph kept for z_backward()
  std::vector<Tensor> g;     // g_t = dL_t/dZ, per sample (Z's shape)
  std::vector<double> loss;  // L_t
};
// 1. One trunk forward; per task, the head's backward on a detached Z (which
//    leaves dL_t/dtheta_t in head t's parameters) gives g_t.
ZGradients z_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y);
// 2. M_ij = <g_i, g_j> (a sum over the batch's samples, in double).
Gram z_gram(const ZGradients& zg);
// 3. (after the weighting) head t's gradient scaled by w.heads[t]; one trunk
//    backward with upstream sum_t w.shared[t] g_t.
void z_backward(MultiTaskModel& m, const ZGradients& zg, const TaskWeights& w);

// The Method that applies `w` in the given mode (fixed for the run).
std::unique_ptr<Method> make_gram_method_from(std::string name, std::unique_ptr<GramWeighting> w, GradientMode mode);

// By method name: "mgda", "pcgrad", "cagrad", "imtl-g", "nash-mtl", "upgrad",
// "aligned-mtl" (parameter mode), "mgda-ub", "aligned-mtl-ub" (representation
// mode); the others in opt.gradients. Throws mt::Error for another name.
std::unique_ptr<GramWeighting> make_gram_weighting(const std::string& method, int K, const MethodOptions& opt);
std::unique_ptr<Method> make_gram_method(const std::string& method, int K, const MethodOptions& opt);
// The methods that take MethodOptions::gradients (the rest fix it in their name),
// and their list in method_names() order.
bool takes_gradient_mode(const std::string& method);
// Where `method` takes its g_t: the mode its name fixes, else `requested`.
GradientMode gradient_mode_of(const std::string& method, GradientMode requested);
std::vector<std::string> gradient_mode_methods();
// "representation" | "parameters"; anything else throws mt::Error naming it.
GradientMode parse_gradient_mode(const std::string& s);
const char* gradient_mode_name(GradientMode m);

}  // namespace mt
