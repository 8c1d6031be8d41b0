// The Method behind every loss-only weighting (see loss_method.h).
#include "mtl/methods/loss_method.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "mtl/methods/method_state.h"

namespace mt {

// One factory per method file.
std::unique_ptr<LossWeighting> make_dwa_weighting(int K, const MethodOptions& opt);   // dwa.cpp
std::unique_ptr<LossWeighting> make_rlw_weighting(const MethodOptions& opt);          // rlw.cpp
std::unique_ptr<LossWeighting> make_famo_weighting(int K, const MethodOptions& opt);  // famo.cpp
std::unique_ptr<LossWeighting> make_stch_weighting(int K, const MethodOptions& opt);  // stch.cpp

namespace {

class LossMethod : public Method {
 public:
  LossMethod(std::string name, std::unique_ptr<LossWeighting> w) : name_(std::move(name)), w_(std::move(w)) {}
  std::string name() const override { return name_; }

  StepStats compute_gradients(MultiTaskModel& m, const Tensor& x, const Targets& y) override {
    Tensor z = m.shared(x);
    std::vector<Tensor> L = task_losses(m, z, x, y);
    StepStats st;
    for (const Tensor& l : L) st.loss.push_back(l.item());
    st.weight = w_->weights(st.loss, step_);
    MT_CHECK(st.weight.size() == L.size(), name_.c_str(), "weighting returned the wrong count");
    Tensor total;
    for (size_t t = 0; t < L.size(); t++) {
      Tensor term = L[t] * (float)st.weight[t];
      total = total.defined() ? total + term : term;
    }
    backward(total);
    step_++;
    if (w_->wants_losses_after_step()) model_ = &m, x_ = x, y_ = y;
    return st;
  }

  void after_step() override {
    if (!model_) return;
    std::vector<double> losses;
    {
      NoGrad no_grad;
      Tensor z = model_->shared(x_);
      for (const Tensor& l : task_losses(*model_, z, x_, y_)) losses.push_back(l.item());
    }
    model_ = nullptr, x_ = Tensor(), y_.clear();
    w_->losses_after_step(losses);
  }

  void end_epoch(const EpochEnd&) override { w_->end_epoch(); }

  void save_state(StFile& f) const override { save_step_state(f, step_, *w_); }
  void load_state(const StFile& f, const std::string& path) override { step_ = load_step_state(f, path, *w_); }

 private:
  std::string name_;
  std::unique_ptr<LossWeighting> w_;
  int64_t step_ = 0;
  MultiTaskModel* model_ = nullptr;  // the last batch, while a weighting waits for its losses after the step
  Tensor x_;
  Targets y_;
};

}  // namespace

std::unique_ptr<Method> make_loss_method_from(std::string name, std::unique_ptr<LossWeighting> w) {
  return std::make_unique<LossMethod>(std::move(name), std::move(w));
}

std::unique_ptr<LossWeighting> make_loss_weighting(const std::string& method, int K, const MethodOptions& opt) {
  if (method == "dwa") return make_dwa_weighting(K, opt);
  if (method == "rlw") return make_rlw_weighting(opt);
  if (method == "famo") return make_famo_weighting(K, opt);
  if (method == "stch") return make_stch_weighting(K, opt);
  throw Error("'" + method + "' is not a loss-weighting method");
}

std::unique_ptr<Method> make_loss_method(const std::string& method, int K, const MethodOptions& opt) {
  return make_loss_method_from(method, make_loss_weighting(method, K, opt));
}

}  // namespace mt
