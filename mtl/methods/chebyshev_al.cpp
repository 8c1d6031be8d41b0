// The Chebyshev augmented-Lagrangian Method (see chebyshev_al.h).
#include "mtl/methods/chebyshev_al.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "mtl/dist/step_share.h"
#include "mtl/sparsity/sparsity.h"

namespace mt {

namespace {

// a one-element tensor as rank 0 (a view), so every term below is rank 0
Tensor as_scalar(const Tensor& v, const char* what) {
  check(v.defined() && v.numel() == 1, "chebyshev-al", std::string(what) + " must have one element");
  return v.dim() == 0 ? v : v.reshape({});
}

StTensor f32(const std::vector<double>& v, std::vector<int64_t> shape) {
  StTensor t;
  t.dtype = "F32";
  t.shape = std::move(shape);
  for (double x : v) t.f32.push_back((float)x);
  return t;
}

// doubles as "%.17g" separated by commas: read back exactly
std::string exact_list(const std::vector<double>& v) {
  std::string s;
  char b[40];
  for (double x : v) {
    std::snprintf(b, sizeof b, "%.17g", x);
    s += (s.empty() ? "" : ",") + std::string(b);
  }
  return s;
}

std::vector<double> parse_list(const std::string& s, const std::string& key, const std::string& path) {
  std::vector<double> v;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t comma = s.find(',', at);
    const std::string tok = s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    char* end = nullptr;
    errno = 0;
    const double x = std::strtod(tok.c_str(), &end);
    if (tok.empty() || end != tok.c_str() + tok.size() || errno == ERANGE)
      throw Error(path + ": metadata '" + key + "' = '" + s + "' is not a list of numbers");
    v.push_back(x);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return v;
}

}  // namespace

Tensor chebyshev_al_objective(AlVariant variant, const ChebyshevConfig& cfg, const AlState& st,
                              const std::vector<Tensor>& f, const Tensor& t_in, std::vector<Tensor>* c_out) {
  const size_t n = f.size();
  check(n >= 1 && cfg.k.size() == n && st.lambda.size() == n && (cfg.a.empty() || cfg.a.size() == n),
        "chebyshev-al", std::to_string(n) + " objectives but " + std::to_string(cfg.k.size()) + " preferences and " +
                            std::to_string(st.lambda.size()) + " multipliers");
  const Tensor t = as_scalar(t_in, "t");
  auto a = [&](size_t i) { return cfg.a.empty() ? 0.0 : cfg.a[i]; };
  // s = sum_j (f_j - a_j)
  Tensor s;
  double a_sum = 0;
  for (size_t j = 0; j < n; j++) {
    const Tensor fj = as_scalar(f[j], "objective");
    s = s.defined() ? s + fj : fj;
    a_sum += a(j);
  }
  s = s - (float)a_sum;
  Tensor L = t;
  if (c_out) c_out->clear();
  for (size_t i = 0; i < n; i++) {
    const double k = cfg.k[i], lambda = st.lambda[i], mu = st.mu;
    // c_i = k_i f_i + k_i eps s - t - k_i a_i
    Tensor c = as_scalar(f[i], "objective") * (float)k + s * (float)(k * cfg.eps) - t - (float)(k * a(i));
    if (c_out) c_out->push_back(c);
    Tensor term;
    if (variant == AlVariant::Published || lambda + mu * c.item() > 0) {
      term = c * (float)lambda + square(c) * (float)(mu / 2);  // lambda_i c_i + (mu/2) c_i^2
    } else {
      term = Tensor::scalar((float)(-lambda * lambda / (2 * mu)));  // standard, inactive
    }
    L = L + term;
  }
  return L;
}

ChebyshevAL::ChebyshevAL(int K, ChebyshevConfig cfg, AlVariant variant, AlState state, double t0,
                         int epochs_per_iter)
    : K_(K), cfg_(std::move(cfg)), variant_(variant), state_(std::move(state)), mu0_(state_.mu),
      epochs_per_iter_(epochs_per_iter), t_(Tensor::scalar((float)t0)), f0_gradient_(variant == AlVariant::Standard) {
  check(K >= 1, "chebyshev-al", "needs at least one task");
  cfg_.validate(K + 1);
  state_.validate(K + 1);
  check(std::isfinite(t0), "chebyshev-al", "t must be finite");
  check(epochs_per_iter >= 1, "chebyshev-al", "an outer iteration needs >= 1 epoch");
  t_.requires_grad_();
  c_sum_.assign((size_t)K + 1, 0.0);
  f_sum_.assign((size_t)K + 1, 0.0);
  best_c_sum_.assign((size_t)K + 1, 0.0);
}

StepStats ChebyshevAL::compute_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y) {
  check(m.num_tasks() == K_, "chebyshev-al",
        "built for " + std::to_string(K_) + " tasks, the model has " + std::to_string(m.num_tasks()));
  Tensor z = m.shared(x);
  std::vector<Tensor> f = task_losses(m, z, x, y);
  std::vector<double> local;  // this rank's L_t (all of the batch without mpirun)
  for (const Tensor& fi : f) local.push_back(fi.item());
  // f_0: sparsity, differentiated or (published, as the reference's detached state_dict()) a number
  f.insert(f.begin(), f0_gradient_ ? group_norm_sum(m) : Tensor::scalar((float)group_norm_sum_value(m)));
  f_.clear();
  for (const Tensor& fi : f) f_.push_back(fi.item());
  if (dist::in_parallel_step()) {
    // Data parallelism (mtl/dist/step_share.h): L_AL is not linear in f, so every rank
    // evaluates it at the global batch's f_t (one allreduce of K numbers), through
    // f_t = L_t^r + (f_t - L_t^r) with the difference a constant: the value is the
    // global one, the gradient this rank's dL_t^r, which the loop scales by n_r / n
    // and sums over the ranks. f_0 is a function of the replicated weights.
    const std::vector<double> global = dist::global_means(local);
    for (int t = 0; t < K_; t++) {
      f_[(size_t)t + 1] = global[(size_t)t];
      f[(size_t)t + 1] = f[(size_t)t + 1] + Tensor::scalar((float)(global[(size_t)t] - local[(size_t)t]));
    }
  }
  Tensor L = chebyshev_al_objective(variant_, cfg_, state_, f, t_);
  const double t = t_.item();
  c_ = chebyshev_constraints(cfg_, f_, t);
  al_gradient(variant_, cfg_, state_, f_, t, dL_df_, dL_dt_);
  for (size_t i = 0; i < c_.size(); i++) {
    c_sum_[i] += c_[i];
    f_sum_[i] += f_[i];
  }
  c_batches_++;
  L_ = L.item();
  backward(L);
  StepStats st;
  st.loss = local;  // this rank's (the loop reduces them)
  st.weight.assign(dL_df_.begin() + 1, dL_df_.end());
  return st;
}

void ChebyshevAL::outer_update(const std::vector<double>& c) {
  check(c.size() == (size_t)K_ + 1, "chebyshev-al",
        "outer update needs " + std::to_string(K_ + 1) + " constraint values, got " + std::to_string(c.size()));
  for (double v : c) check(std::isfinite(v), "chebyshev-al", "outer update with a non-finite constraint value");
  al_update(variant_, state_, c);
}

void ChebyshevAL::reset_epoch() {
  c_sum_.assign((size_t)K_ + 1, 0.0);
  f_sum_.assign((size_t)K_ + 1, 0.0);
  c_batches_ = 0;
}

Columns ChebyshevAL::epoch_metrics(const std::vector<std::string>& tasks) const {
  std::vector<std::string> o = {"sparsity"};
  o.insert(o.end(), tasks.begin(), tasks.end());
  o.resize((size_t)K_ + 1, "");
  const double nb = (double)std::max<int64_t>(1, c_batches_);
  Columns c = {{"mu", state_.mu}, {"t", t()}};
  for (int i = 0; i <= K_; i++) c.emplace_back("lambda_" + o[i], state_.lambda[i]);
  for (int i = 0; i <= K_; i++) c.emplace_back("c_" + o[i], c_sum_[i] / nb);
  for (int i = 0; i <= K_; i++) c.emplace_back("f_" + o[i], f_sum_[i] / nb);
  return c;
}

void ChebyshevAL::end_epoch(const EpochEnd& e) {
  if (e.improved) best_c_sum_ = c_sum_;
  if (++outer_epochs_ < epochs_per_iter_) return;
  outer_epochs_ = 0;
  if (variant_ == AlVariant::Standard) {
    std::vector<double> c_mean(c_sum_);
    for (double& v : c_mean) v /= (double)std::max<int64_t>(1, c_batches_);
    outer_update(c_mean);
  } else {
    outer_update(best_c_sum_);
  }
}

void ChebyshevAL::reset_phase() {
  state_ = make_al_state(K_ + 1, mu0_, state_.rho);  // lambda_i = 1/(K+1), mu = mu0
  best_c_sum_.assign((size_t)K_ + 1, 0.0);
  outer_epochs_ = 0;
  reset_epoch();
}

void ChebyshevAL::set_t(double t) {
  check(std::isfinite(t), "chebyshev-al", "t must be finite");
  t_.data()[0] = (float)t;
}

void ChebyshevAL::save_state(StFile& f) const {
  const int64_t n = K_ + 1;
  f.tensors["method.lambda"] = f32(state_.lambda, {n});
  f.tensors["method.mu"] = f32({state_.mu}, {1});
  f.tensors["method.rho"] = f32({state_.rho}, {1});
  f.tensors["method.t"] = f32({t()}, {});
  f.tensors["method.c_sum"] = f32(c_sum_, {n});
  f.tensors["method.f_sum"] = f32(f_sum_, {n});
  f.tensors["method.best_c_sum"] = f32(best_c_sum_, {n});
  StTensor b;
  b.dtype = "I64";
  b.shape = {1};
  b.i64 = {c_batches_};
  f.tensors["method.c_batches"] = b;
  // the exact doubles (the F32 tensors are for reading with other tools)
  f.metadata["method.lambda"] = exact_list(state_.lambda);
  f.metadata["method.mu"] = exact_list({state_.mu});
  f.metadata["method.rho"] = exact_list({state_.rho});
  f.metadata["method.c_sum"] = exact_list(c_sum_);
  f.metadata["method.f_sum"] = exact_list(f_sum_);
  f.metadata["method.best_c_sum"] = exact_list(best_c_sum_);
  f.metadata["method.mu0"] = exact_list({mu0_});
  f.metadata["method.outer_epochs"] = std::to_string(outer_epochs_);
}

void ChebyshevAL::load_state(const StFile& f, const std::string& path) {
  const int64_t n = K_ + 1;
  auto get = [&](const char* name, std::vector<int64_t> shape, const char* dtype) -> const StTensor& {
    const StTensor& t = st_require(f, name, path);
    st_check_shape(t, shape, name, path);
    if (t.dtype != dtype) throw Error(path + ": tensor '" + name + "' must be " + dtype + ", got " + t.dtype);
    return t;
  };
  const StTensor& lambda = get("method.lambda", {n}, "F32");
  const StTensor& mu = get("method.mu", {1}, "F32");
  const StTensor& rho = get("method.rho", {1}, "F32");
  const StTensor& t = get("method.t", {}, "F32");
  const StTensor& cs = get("method.c_sum", {n}, "F32");
  const StTensor& cb = get("method.c_batches", {1}, "I64");
  const StTensor& fs = get("method.f_sum", {n}, "F32");
  const StTensor& bcs = get("method.best_c_sum", {n}, "F32");
  // exact values from the metadata when present, else the F32 tensors
  auto exact = [&](const char* key, const StTensor& tensor) {
    auto it = f.metadata.find(key);
    std::vector<double> v = it == f.metadata.end() ? std::vector<double>(tensor.f32.begin(), tensor.f32.end())
                                                   : parse_list(it->second, key, path);
    if ((int64_t)v.size() != tensor.numel())
      throw Error(path + ": metadata '" + key + "' has " + std::to_string(v.size()) + " values, expected " +
                  std::to_string(tensor.numel()));
    return v;
  };
  AlState st;
  st.lambda = exact("method.lambda", lambda);
  st.mu = exact("method.mu", mu)[0];
  st.rho = exact("method.rho", rho)[0];
  const std::vector<double> c_sum = exact("method.c_sum", cs);
  const std::vector<double> f_sum = exact("method.f_sum", fs);
  const std::vector<double> best_c_sum = exact("method.best_c_sum", bcs);
  auto it0 = f.metadata.find("method.mu0");
  const double mu0 = it0 == f.metadata.end() ? mu0_ : parse_list(it0->second, "method.mu0", path).at(0);
  int outer = 0;
  if (auto it = f.metadata.find("method.outer_epochs"); it != f.metadata.end()) {
    char* end = nullptr;
    const long v = std::strtol(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != 0 || v < 0 || v >= epochs_per_iter_)
      throw Error(path + ": metadata 'method.outer_epochs' = '" + it->second + "' is not in 0.." +
                  std::to_string(epochs_per_iter_ - 1));
    outer = (int)v;
  }
  try {
    st.validate(K_ + 1);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  if (!std::isfinite(t.f32[0])) throw Error(path + ": method.t is not finite");
  state_ = st;
  t_.data()[0] = t.f32[0];
  c_sum_ = c_sum;
  f_sum_ = f_sum;
  best_c_sum_ = best_c_sum;
  mu0_ = mu0;
  outer_epochs_ = outer;
  c_batches_ = cb.i64[0];
}

std::unique_ptr<ChebyshevAL> make_chebyshev_al(int K, const ChebyshevConfig& cfg, AlVariant variant, double mu0,
                                               double rho, const std::vector<double>& lambda0, int epochs_per_iter) {
  check(K >= 1, "chebyshev-al", "needs at least one task");
  cfg.validate(K + 1);
  AlState st = make_al_state(K + 1, mu0, rho);  // lambda_i = 1/(K+1); checks mu and rho
  if (!lambda0.empty()) {
    st.lambda = lambda0;
    st.validate(K + 1);
  }
  const double t0 = global_rng().normal();  // as the reference's torch.randn(1)
  return std::make_unique<ChebyshevAL>(K, cfg, variant, st, t0, epochs_per_iter);
}

}  // namespace mt
