// The Method behind every Gram weighting, in both gradient modes (see gram_method.h).
#include "mtl/methods/gram_method.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "mtl/dist/step_share.h"
#include "mtl/methods/method_state.h"
#include "optim/clip.h"

namespace mt {

// One factory per method file.
std::unique_ptr<GramWeighting> make_min_norm_weighting(const MethodOptions& opt);        // mgda.cpp
std::unique_ptr<GramWeighting> make_pcgrad_weighting(const MethodOptions& opt);          // pcgrad.cpp
std::unique_ptr<GramWeighting> make_cagrad_weighting(const MethodOptions& opt);          // cagrad.cpp
std::unique_ptr<GramWeighting> make_imtl_g_weighting();                                  // imtl_g.cpp
std::unique_ptr<GramWeighting> make_nash_mtl_weighting(int K, const MethodOptions& opt); // nash_mtl.cpp
std::unique_ptr<GramWeighting> make_aligned_mtl_weighting();                             // aligned_mtl.cpp
std::unique_ptr<GramWeighting> make_upgrad_weighting(const MethodOptions& opt);          // upgrad.cpp

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void scale_grads(const NamedTensors& params, double a) {
  if (a == 1.0) return;
  const float f = (float)a;
  for (const auto& [name, p] : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    float* d = g.data();
    for (int64_t i = 0; i < g.numel(); i++) d[i] *= f;
  }
}

class GramMethod : public Method {
 public:
  GramMethod(std::string name, std::unique_ptr<GramWeighting> w, GradientMode mode)
      : name_(std::move(name)), w_(std::move(w)), mode_(mode) {}
  std::string name() const override { return name_; }

  StepStats compute_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y) override {
    const int K = m.num_tasks();
    MT_CHECK((int)y.size() == K, name_.c_str(),
             "got labels for " + std::to_string(y.size()) + " tasks, the model has " + std::to_string(K));
    StepStats st = mode_ == GradientMode::Representation ? representation_step(m, x, y) : parameter_step(m, x, y);
    if (w_->shared_max_norm() > 0) clip_grad_norm(m.shared_parameters(), w_->shared_max_norm());
    step_++;
    return st;
  }

  void save_state(StFile& f) const override { save_step_state(f, step_, *w_); }
  void load_state(const StFile& f, const std::string& path) override { step_ = load_step_state(f, path, *w_); }

 private:
  // The weighting's decision on the Gram matrix M and the losses, timed for StepStats.
  TaskWeights decide(const Gram& M, const std::vector<double>& losses, StepStats& st) {
    const auto t0 = Clock::now();
    TaskWeights w = w_->weights(M, losses, step_);
    st.solver_seconds = seconds_since(t0);
    MT_CHECK((int)w.shared.size() == M.K && (int)w.heads.size() == M.K, name_.c_str(), "weighting gave a wrong count");
    st.weight = w.shared;
    st.solver_iterations = w.iterations;
    st.solver = w.min_norm;
    st.solver_gap = w.gap;
    st.grad_norm.resize(M.K);
    for (int t = 0; t < M.K; t++) st.grad_norm[t] = std::sqrt(std::max(0.0, M(t, t)));
    return w;
  }

  // g_t = dL_t/dZ: one trunk forward, the heads' backward on a detached Z,
  // one trunk backward with upstream sum_t w_t g_t.
  StepStats representation_step(MultiTaskModel& m, const Tensor& x, const Targets& y) {
    ZGradients zg = z_gradients(m, x, y);
    StepStats st;
    st.loss = zg.loss;
    const auto t0 = Clock::now();
    Gram M = z_gram(zg);
    // Under mpirun, the global batch's Gram matrix and losses (K^2 + K numbers, one
    // allreduce; mtl/dist/step_share.h), so every rank decides the same weights; st.loss
    // stays this rank's (the loop reduces it). Without mpirun a no-op.
    std::vector<double> losses = zg.loss;
    dist::global_gram(M.v, losses);
    st.gram_seconds = seconds_since(t0);
    z_backward(m, zg, decide(M, losses, st));
    return st;
  }

  // g_t = dL_t/dtheta_sh: one backward through the trunk per task.
  StepStats parameter_step(MultiTaskModel& m, const Tensor& x, const Targets& y) {
    const int K = m.num_tasks();
    Tensor z = m.shared(x);
    std::vector<Tensor> L = task_losses(m, z, x, y);
    NamedTensors shared = m.shared_parameters();
    size_t n = 0;
    for (const auto& [name, p] : shared) n += (size_t)p.numel();
    StepStats st;
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
    const auto t0 = Clock::now();
    const Gram M{K, gram_matrix(gp, n)};
    st.gram_seconds = seconds_since(t0);
    const TaskWeights w = decide(M, st.loss, st);  // (not run under mpirun: the trainer refuses it)
    size_t at = 0;  // the shared gradient = sum_t w_t g_t (summed in double)
    for (const auto& [name, p] : shared) {
      Tensor gp = p.grad();
      if (gp.defined()) {
        float* d = gp.data();
        for (int64_t i = 0; i < p.numel(); i++) {
          double acc = 0;
          for (int t = 0; t < K; t++) acc += w.shared[t] * g[t][at + i];
          d[i] = (float)acc;
        }
      }
      at += (size_t)p.numel();
    }
    for (int t = 0; t < K; t++) scale_grads(m.task_parameters(t), w.heads[t]);
    return st;
  }

  std::string name_;
  std::unique_ptr<GramWeighting> w_;
  GradientMode mode_;
  int64_t step_ = 0;
};

}  // namespace

ZGradients z_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y) {
  const int K = m.num_tasks();
  ZGradients zg;
  zg.z = m.shared(x);                          // Z: the trunk runs forward once
  Tensor zd = zg.z.detach().requires_grad_();  // the heads see Z as a leaf
  for (int t = 0; t < K; t++) {
    Tensor L = m.task_loss(t, m.head(t, zd, x), y[t]);
    backward(L);  // head t's gradients, and dL_t/dZ in zd.grad
    zg.g.push_back(zd.grad().clone());
    zd.zero_grad();
    zg.loss.push_back(L.item());
  }
  return zg;
}

Gram z_gram(const ZGradients& zg) {
  std::vector<const float*> gp;
  for (const auto& gt : zg.g) gp.push_back(gt.data());
  return Gram{(int)zg.g.size(), gram_matrix(gp, (size_t)zg.z.numel())};
}

void z_backward(MultiTaskModel& m, const ZGradients& zg, const TaskWeights& w) {
  const int K = (int)zg.g.size();
  MT_CHECK((int)w.shared.size() == K && (int)w.heads.size() == K, "z_backward",
           "got " + std::to_string(w.shared.size()) + " weights for " + std::to_string(K) + " tasks");
  Tensor upstream = Tensor::zeros(zg.z.shape());
  float* u = upstream.data();
  for (int t = 0; t < K; t++) {
    scale_grads(m.task_parameters(t), w.heads[t]);
    const float a = (float)w.shared[t], *gt = zg.g[t].data();
    for (int64_t i = 0; i < upstream.numel(); i++) u[i] += a * gt[i];
  }
  backward(zg.z, upstream);  // the trunk runs backward once
}

std::unique_ptr<Method> make_gram_method_from(std::string name, std::unique_ptr<GramWeighting> w, GradientMode mode) {
  return std::make_unique<GramMethod>(std::move(name), std::move(w), mode);
}

std::unique_ptr<GramWeighting> make_gram_weighting(const std::string& method, int K, const MethodOptions& opt) {
  if (method == "mgda" || method == "mgda-ub") return make_min_norm_weighting(opt);
  if (method == "pcgrad") return make_pcgrad_weighting(opt);
  if (method == "cagrad") return make_cagrad_weighting(opt);
  if (method == "imtl-g") return make_imtl_g_weighting();
  if (method == "nash-mtl") return make_nash_mtl_weighting(K, opt);
  if (method == "aligned-mtl" || method == "aligned-mtl-ub") return make_aligned_mtl_weighting();
  if (method == "upgrad") return make_upgrad_weighting(opt);
  throw Error("'" + method + "' is not a Gram-matrix method");
}

GradientMode gradient_mode_of(const std::string& method, GradientMode requested) {
  if (method == "mgda" || method == "aligned-mtl") return GradientMode::Parameters;
  if (method == "mgda-ub" || method == "aligned-mtl-ub") return GradientMode::Representation;
  return requested;
}

std::unique_ptr<Method> make_gram_method(const std::string& method, int K, const MethodOptions& opt) {
  return make_gram_method_from(method, make_gram_weighting(method, K, opt), gradient_mode_of(method, opt.gradients));
}

bool takes_gradient_mode(const std::string& method) {
  return method == "pcgrad" || method == "cagrad" || method == "imtl-g" || method == "nash-mtl" ||
         method == "upgrad";
}

std::vector<std::string> gradient_mode_methods() {
  std::vector<std::string> v;
  for (const auto& n : method_names())
    if (takes_gradient_mode(n)) v.push_back(n);
  return v;
}

GradientMode parse_gradient_mode(const std::string& s) {
  if (s == "representation") return GradientMode::Representation;
  if (s == "parameters") return GradientMode::Parameters;
  throw Error("unknown gradient mode '" + s + "' (valid: representation, parameters)");
}

const char* gradient_mode_name(GradientMode m) {
  return m == GradientMode::Representation ? "representation" : "parameters";
}

}  // namespace mt
