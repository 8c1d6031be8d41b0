// MGDA and MGDA-UB (Sener & Koltun, NeurIPS 2018).
//
// Both find alpha on the simplex minimising || sum_t alpha_t g_t ||^2 and
// train on sum_t alpha_t L_t. They differ in which gradients g_t are:
//   mgda     g_t = dL_t / d theta^sh, over every shared parameter: one
//            backward through the trunk per task.
//   mgda-ub  g_t = dL_t / dZ, the shared representation (the upper bound of
//            the paper's Theorem 1): one trunk forward, the heads' backward
//            on a detached Z, then a single trunk backward with upstream
//            gradient sum_t alpha_t g_t.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "mtl/dist/step_share.h"
#include "mtl/methods/method.h"

namespace mt {

namespace {

// alpha from the per-task gradients (each n floats), with the chosen
// normalisation of g_t applied to the Gram matrix M before the solver.
// Also records the wall time of the Gram matrix and of the solver in st.
// per_sample: g_t are gradients w.r.t. Z (MGDA-UB), per sample, so under data
// parallelism the global batch's Gram matrix is the sum of the ranks' (mtl/dist/step_share.h).
MinNormResult solve_alpha(const std::vector<const float*>& g, size_t n, std::vector<double> losses,
                          const MethodOptions& opt, StepStats& st, bool per_sample = false) {
  using Clock = std::chrono::steady_clock;
  const int K = (int)g.size();
  const auto t0 = Clock::now();
  std::vector<double> M = gram_matrix(g, n);
  if (per_sample) dist::global_gram(M, losses);  // no-op without mpirun
  const auto t1 = Clock::now();
  st.gram_seconds = std::chrono::duration<double>(t1 - t0).count();
  std::vector<double> norms(K);
  for (int t = 0; t < K; t++) norms[t] = std::sqrt(std::max(0.0, M[t * K + t]));
  std::vector<double> s = normalization_scales(opt.normalization, losses, norms);
  for (double& v : s)
    if (!(v > 0)) v = 1.0;  // a zero gradient or loss: leave that task unscaled
  for (int i = 0; i < K; i++)
    for (int j = 0; j < K; j++) M[i * K + j] /= s[i] * s[j];  // <g_i / s_i, g_j / s_j>
  const auto t2 = Clock::now();
  MinNormResult r = min_norm(M, K, opt.solver);
  st.solver_seconds = std::chrono::duration<double>(Clock::now() - t2).count();
  st.solver = true;
  st.solver_iterations = r.iterations;
  st.solver_gap = r.gap;  // the certificate of the solve (MinNormResult::gap)
  return r;
}

void scale_grads(const NamedTensors& params, float a) {
  for (const auto& [name, p] : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    float* d = g.data();
    for (int64_t i = 0; i < g.numel(); i++) d[i] *= a;
  }
}

class MgdaUB : public Method {
 public:
  explicit MgdaUB(MethodOptions opt) : opt_(std::move(opt)) {}
  std::string name() const override { return "mgda-ub"; }

  StepStats compute_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y) override {
    const int K = m.num_tasks();
    MT_CHECK((int)y.size() == K, "mgda-ub", "got labels for " + std::to_string(y.size()) + " tasks, the model has " +
                                             std::to_string(K));
    Tensor z = m.shared(x);                       // Z: the trunk runs forward once
    Tensor zd = z.detach().requires_grad_();      // the heads see Z as a leaf
    StepStats st;
    std::vector<Tensor> g(K);                     // g_t = dL_t / dZ
    for (int t = 0; t < K; t++) {
      Tensor L = m.task_loss(t, m.head(t, zd, x), y[t]);
      backward(L);                                // head t's gradients, and dL_t/dZ in zd.grad
      g[t] = zd.grad().clone();
      zd.zero_grad();
      st.loss.push_back(L.item());
    }
    std::vector<const float*> gp;
    for (auto& gt : g) gp.push_back(gt.data());
    MinNormResult r = solve_alpha(gp, (size_t)z.numel(), st.loss, opt_, st, /*per_sample=*/true);
    // Head t trains on alpha_t L_t; the trunk on sum_t alpha_t L_t, whose
    // gradient at Z is sum_t alpha_t g_t.
    Tensor upstream = Tensor::zeros(z.shape());
    float* u = upstream.data();
    for (int t = 0; t < K; t++) {
      scale_grads(m.task_parameters(t), (float)r.alpha[t]);
      const float a = (float)r.alpha[t], *gt = g[t].data();
      for (int64_t i = 0; i < upstream.numel(); i++) u[i] += a * gt[i];
    }
    backward(z, upstream);                        // the trunk runs backward once
    st.weight = r.alpha;
    return st;
  }

 private:
  MethodOptions opt_;
};

class Mgda : public Method {
 public:
  explicit Mgda(MethodOptions opt) : opt_(std::move(opt)) {}
  std::string name() const override { return "mgda"; }

  StepStats compute_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y) override {
    const int K = m.num_tasks();
    Tensor z = m.shared(x);
    std::vector<Tensor> L = task_losses(m, z, x, y);
    NamedTensors shared = m.shared_parameters();
    size_t n = 0;
    for (const auto& [name, p] : shared) n += (size_t)p.numel();
    StepStats st;
    // g_t: the flat gradient of L_t over all shared parameters, one backward per task
    std::vector<std::vector<float>> g(K, std::vector<float>(n, 0.f));
    for (int t = 0; t < K; t++) {
      for (const auto& [name, p] : shared) p.zero_grad();
      backward(L[t], /*retain_graph=*/t + 1 < K);
      size_t at = 0;
      for (const auto& [name, p] : shared) {
        Tensor gp = p.grad();
        if (gp.defined()) std::memcpy(g[t].data() + at, gp.data(), sizeof(float) * p.numel());
        at += (size_t)p.numel();
      }
      st.loss.push_back(L[t].item());
    }
    std::vector<const float*> gp;
    for (auto& gt : g) gp.push_back(gt.data());
    MinNormResult r = solve_alpha(gp, n, st.loss, opt_, st);
    // shared gradient = sum_t alpha_t g_t; head t's gradient scaled by alpha_t
    size_t at = 0;
    for (const auto& [name, p] : shared) {
      Tensor gp = p.grad();
      if (!gp.defined()) {
        at += (size_t)p.numel();
        continue;
      }
      float* d = gp.data();
      for (int64_t i = 0; i < p.numel(); i++) {
        double acc = 0;
        for (int t = 0; t < K; t++) acc += r.alpha[t] * g[t][at + i];
        d[i] = (float)acc;
      }
      at += (size_t)p.numel();
    }
    for (int t = 0; t < K; t++) scale_grads(m.task_parameters(t), (float)r.alpha[t]);
    st.weight = r.alpha;
    return st;
  }

 private:
  MethodOptions opt_;
};

}  // namespace

std::unique_ptr<Method> make_mgda(int, const MethodOptions& opt) { return std::make_unique<Mgda>(opt); }
std::unique_ptr<Method> make_mgda_ub(int, const MethodOptions& opt) { return std::make_unique<MgdaUB>(opt); }

}  // namespace mt
