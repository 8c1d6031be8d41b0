#include "mtl/models/mdmtn.h"

#include "engine/error.h"
#include "engine/ops.h"

namespace mt {

namespace {

// The MultiMNIST / Cifar10Mnist layer sizes (see mdmtn.h).
struct Sizes {
  int k;                       // kernel size
  int c1, c2, z;               // trunk: conv1 out, conv2 out, fc out (= Z)
  int mc;                      // monitor conv out
};
Sizes sizes(bool cifar) { return cifar ? Sizes{3, 16, 32, 32, 32} : Sizes{5, 10, 20, 50, 20}; }

void check_input(const Shape& chw, const char* who) {
  MT_CHECK(chw.size() == 3 && chw[0] > 0 && chw[1] > 0 && chw[2] > 0, who,
        "input must be C x H x W, got " + shape_str(chw));
}

// Spatial size after `convs` rounds of (valid conv k, max-pool 2).
int spatial(int n, int k, int convs) {
  for (int i = 0; i < convs; i++) n = (n - k + 1) / 2;
  return n;
}

int flat(const Shape& chw, int k, int convs, int channels, const char* who) {
  const int h = spatial(chw[1], k, convs), w = spatial(chw[2], k, convs);
  MT_CHECK(h > 0 && w > 0, who, "input " + shape_str(chw) + " is too small for " + std::to_string(convs) +
                                 " rounds of conv " + std::to_string(k) + "x" + std::to_string(k) + " + max-pool 2");
  return channels * h * w;
}

Tensor call(Module& layer, const std::string& name, const Tensor& in, std::vector<TracedLayer>* tr) {
  if (tr) tr->push_back({name, &layer, in});
  return layer.forward(in);
}

// pool, then BN when present, then ReLU (the reference's order); without BN
// the fused max_pool2d_relu, which gives relu(max_pool2d(h))'s very bits
Tensor pool_bn_relu(const Tensor& h, const std::shared_ptr<BatchNorm2d>& bn) {
  if (!bn) return max_pool2d_relu(h, {2});
  return relu(bn->forward(max_pool2d(h, {2})));
}

}  // namespace

MdmtnTrunk::MdmtnTrunk(const Shape& chw, bool cifar) {
  check_input(chw, "mdmtn");
  const Sizes s = sizes(cifar);
  conv1 = register_module("conv1", std::make_shared<Conv2d>(chw[0], s.c1, s.k));
  if (cifar) bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(s.c1));
  conv2 = register_module("conv2", std::make_shared<Conv2d>(s.c1, s.c2, s.k));
  if (cifar) bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(s.c2));
  fc = register_module("fc", std::make_shared<Linear>(flat(chw, s.k, 2, s.c2, "mdmtn"), s.z));
}

Tensor MdmtnTrunk::run(const Tensor& x, std::vector<TracedLayer>* tr, const std::string& prefix) {
  Tensor h = pool_bn_relu(call(*conv1, prefix + "conv1", x, tr), bn1);
  h = pool_bn_relu(call(*conv2, prefix + "conv2", h, tr), bn2);
  return relu(call(*fc, prefix + "fc", h.flatten(1), tr));
}

MdmtnMonitor::MdmtnMonitor(const Shape& chw, int out_features, bool cifar) {
  check_input(chw, "mdmtn");
  const Sizes s = sizes(cifar);
  conv = register_module("conv", std::make_shared<Conv2d>(chw[0], s.mc, s.k));
  if (cifar) bn = register_module("bn", std::make_shared<BatchNorm2d>(s.mc));
  fc = register_module("fc", std::make_shared<Linear>(flat(chw, s.k, 1, s.mc, "mdmtn"), out_features));
}

Tensor MdmtnMonitor::run(const Tensor& x, std::vector<TracedLayer>* tr, const std::string& prefix) {
  Tensor h = pool_bn_relu(call(*conv, prefix + "conv", x, tr), bn);
  return relu(call(*fc, prefix + "fc", h.flatten(1), tr));
}

MdmtnHead::MdmtnHead(const Shape& chw, int z_features, const Task& task, const MdmtnConfig& cfg)
    : loss(task.loss) {
  if (cfg.monitors) {
    alpha = register_parameter("alpha", Tensor::from({2}, {1.f, 0.f}));  // alpha_t = (1, 0)
    monitor = register_module("monitor", std::make_shared<MdmtnMonitor>(chw, z_features, cfg.cifar));
  }
  out = register_module("out", std::make_shared<Linear>(z_features, task.output_size()));
}

Tensor MdmtnHead::run(const Tensor& z, const Tensor& x, std::vector<TracedLayer>* tr, const std::string& prefix) {
  Tensor h = z;
  if (monitor) {
    // h_t = alpha_t0 Z + alpha_t1 M_t(x); the [1] slices broadcast over [N, features]
    Tensor m = monitor->run(x, tr, prefix + "monitor.");
    h = narrow(alpha, 0, 0, 1) * z + narrow(alpha, 0, 1, 1) * m;
  }
  Tensor o = call(*out, prefix + "out", h, tr);
  return loss == TaskLoss::LogProbNll ? log_softmax(o) : o;
}

Mdmtn::Mdmtn(const std::vector<Task>& tasks, const Shape& chw, const MdmtnConfig& cfg)
    : input_chw_(chw), cfg_(cfg) {
  const std::string who = arch();
  check_input(chw, who.c_str());
  MT_CHECK(!tasks.empty(), who.c_str(), "needs at least one task");
  for (const Task& t : tasks) {
    MT_CHECK(t.is_regression() || t.loss == TaskLoss::BinaryLogits || t.num_classes >= 2, who.c_str(),
             "task '" + t.name + "' needs >= 2 classes, got " + std::to_string(t.num_classes));
    t.validate();
  }
  tasks_ = tasks;
  trunk = register_module("trunk", std::make_shared<MdmtnTrunk>(chw, cfg.cifar));
  heads = register_module("heads", std::make_shared<ModuleList>());
  declare_shared(trunk);
  for (const Task& t : tasks) {
    head_list_.push_back(heads->add(std::make_shared<MdmtnHead>(chw, trunk->out_features(), t, cfg)));
    declare_task((int)head_list_.size() - 1, head_list_.back());  // alpha_t, M_t and the output layer
  }
}

std::string Mdmtn::arch() const {
  return std::string(cfg_.monitors ? "mdmtn" : "hps") + (cfg_.cifar ? "-cifar" : "");
}

Tensor Mdmtn::head(int t, const Tensor& z, const Tensor& x) {
  MT_CHECK(t >= 0 && t < num_tasks(), "mdmtn", "task " + std::to_string(t) + " out of range");
  return head_list_[t]->run(z, x, nullptr, "");
}

std::vector<TracedLayer> Mdmtn::trace(const Tensor& x) {
  std::vector<TracedLayer> tr;
  Tensor z = trunk->run(x, &tr, "trunk.");
  for (int t = 0; t < num_tasks(); t++) head_list_[t]->run(z, x, &tr, "heads." + std::to_string(t) + ".");
  return tr;
}

std::vector<double> Mdmtn::alpha(int t) const {
  const MdmtnHead& h = *head_list_.at(t);
  if (!h.alpha.defined()) return {1.0, 0.0};
  return {h.alpha.data()[0], h.alpha.data()[1]};
}

}  // namespace mt
