// Defaults and validation of TrainConfig (see config.h).
#include "mtl/train/config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "engine/parallel.h"
#include "mtl/methods/chebyshev.h"
#include "mtl/methods/gram_method.h"
#include "mtl/methods/method.h"
#include "mtl/models/model.h"
#include "mtl/solvers/min_norm.h"
#include "mtl/train/run_util.h"

namespace mt {

namespace fs = std::filesystem;
using run_util::join;
using run_util::short_num;

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool is_chebyshev(const TrainConfig& c) { return c.method == "chebyshev-al"; }

bool is_mgda(const std::string& method) { return method == "mgda" || method == "mgda-ub"; }

std::string model_name(const TrainConfig& c) {
  if (c.width > 0) return c.width == 16 ? "resnet18" : "resnet18-w" + std::to_string(c.width);
  if (c.model) return *c.model;
  if (is_chebyshev(c)) return c.dataset == "cifar10-mnist" ? "mdmtn-cifar" : "mdmtn";
  return default_model_for(c.dataset);
}

void need_finite(double v, bool ok, const std::string& what) {
  if (!ok || !std::isfinite(v)) throw UsageError(what + ", got " + short_num(v));
}

}  // namespace

const std::vector<std::string>& sparse_model_names() {
  static const std::vector<std::string> names = {"mdmtn", "hps", "mdmtn-cifar", "hps-cifar"};
  return names;
}

std::string default_out_dir(const TrainConfig& c) {
  return "runs/" + c.dataset + "-" + c.method + "-s" + std::to_string(c.seed);
}

TrainConfig resolve_train_config(const TrainConfig& in) {
  TrainConfig c = in;
  c.model = model_for_method(c.method, model_name(c));
  if (is_chebyshev(c)) {
    const bool cifar = c.model->size() > 6 && c.model->compare(c.model->size() - 6, 6, "-cifar") == 0;
    const bool hps = c.model->compare(0, 3, "hps") == 0;
    if (c.prefs.empty()) c.prefs = {0.01, 0.8, 0.19};
    if (!c.eps) c.eps = 1e-4;
    if (!c.rho) c.rho = 2.0;
    if (!c.al_variant) c.al_variant = "published";
    if (!c.mu) c.mu = *c.al_variant == "standard" ? 1.0 : (cifar ? 6.8e-8 : 2.5e-8);
    if (!c.search_iters) c.search_iters = 3;
    if (!c.retrain_iters) c.retrain_iters = 10;
    if (!c.epochs_per_iter) c.epochs_per_iter = 3;
    if (!c.min_sparsity) c.min_sparsity = cifar ? (hps ? 5.0 : 10.0) : (hps ? 10.0 : 20.0);
    if (!c.max_layer_sparsity) c.max_layer_sparsity = cifar ? (hps ? 0.15 : 0.3) : 0.8;
    if (!c.sim_preference) c.sim_preference = cifar ? 0.8 : 0.7;
    if (!c.lr) c.lr = cifar ? 1e-4 : 2.5e-3;
    if (!c.lr_decay) c.lr_decay = cifar ? 0.98 : 0.5;
    if (!c.optimizer) c.optimizer = "adam";
    if (!c.val) c.val = 10000;
    c.epochs = (*c.search_iters + *c.retrain_iters) * *c.epochs_per_iter;
  } else {
    if (!c.optimizer) c.optimizer = "sgd";
    if (!c.lr) c.lr = 0.05;
    if (!c.epochs) c.epochs = 10;
    if (!c.val) c.val = 0;
  }
  if (!c.momentum) c.momentum = *c.optimizer == "sgd" ? 0.9 : 0.0;
  if (!c.weight_decay) c.weight_decay = 0.0;
  if (!c.lr_gamma) c.lr_gamma = 0.1;
  if (!c.normalization) c.normalization = "none";
  if (!c.solver) c.solver = "wolfe";
  if (!c.heads) c.heads = "alpha";
  if (!c.gradnorm_alpha) c.gradnorm_alpha = 1.5;
  if (!c.source.channels) c.source.channels = 3;
  if (!c.source.test_fraction) c.source.test_fraction = 0.2;
  if (c.out.empty()) c.out = c.resume.empty() ? default_out_dir(c) : run_util::parent_dir(c.resume);
  return c;
}

void validate_train_config(const TrainConfig& in, bool named) {
  if (named) validate_data_config(in);
  if (!contains(method_names(), in.method))
    throw UsageError("unknown method '" + in.method + "' (valid: " + join(method_names(), ", ") + ")");
  if (in.width != 0) {
    if (in.width < 1 || in.width > 999) throw UsageError("--width must be in 1..999, got " + std::to_string(in.width));
    if (in.model && *in.model != "resnet18")
      throw UsageError("--width sets the width of resnet18; it cannot be combined with --model " + *in.model);
  }
  const std::string model = model_name(in);
  if (named) {
    if (!is_model_name(model))
      throw UsageError("unknown model '" + model + "' (valid: " + join(model_names(), ", ") + ")");
    try {
      model_for_method(in.method, model);
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }

  // Flags one kind of method does not use: refused, with the reason.
  const bool cheb = is_chebyshev(in);
  auto refuse = [&](bool given, const char* flag, const std::string& why) {
    if (given) throw UsageError(std::string("--") + flag + " is not used by --method " + in.method + ": " + why);
  };
  if (cheb) {
    if (named && !contains(sparse_model_names(), model))
      throw UsageError("--method chebyshev-al needs --model " + join(sparse_model_names(), ", ") + " (got '" + model +
                       "')");
    const std::string schedule = "the procedure's own schedule is set by --search-iters, --retrain-iters, "
                                 "--epochs-per-iter, --lr and --lr-decay (Adam)";
    refuse(in.epochs.has_value(), "epochs", schedule);
    refuse(in.optimizer.has_value(), "optimizer", schedule);
    refuse(in.momentum.has_value(), "momentum", schedule);
    refuse(in.weight_decay.has_value(), "weight-decay", schedule);
    refuse(in.lr_step.has_value(), "lr-step", schedule);
    refuse(in.lr_gamma.has_value(), "lr-gamma", schedule);
    refuse(in.lr_first_step.has_value(), "lr-first-step", schedule);
    refuse(!in.weights.empty(), "weights", "the preference vector is --prefs");
    refuse(in.normalization.has_value(), "normalization", "it belongs to --method mgda / mgda-ub");
    refuse(in.solver.has_value(), "solver", "it belongs to --method mgda / mgda-ub");
    refuse(in.heads.has_value(), "heads", "it belongs to --method mgda / mgda-ub");
  } else {
    const std::string only = "it belongs to --method chebyshev-al";
    refuse(!in.prefs.empty(), "prefs", only);
    refuse(!in.ref_point.empty(), "ref-point", only);
    refuse(in.eps.has_value(), "eps", only);
    refuse(in.mu.has_value(), "mu", only);
    refuse(in.rho.has_value(), "rho", only);
    refuse(in.al_variant.has_value(), "al-variant", only);
    refuse(in.search_iters.has_value(), "search-iters", only);
    refuse(in.retrain_iters.has_value(), "retrain-iters", only);
    refuse(in.epochs_per_iter.has_value(), "epochs-per-iter", only);
    refuse(in.min_sparsity.has_value(), "min-sparsity", only);
    refuse(in.max_layer_sparsity.has_value(), "max-layer-sparsity", only);
    refuse(in.sim_preference.has_value(), "sim-preference", only);
    refuse(in.lr_decay.has_value(), "lr-decay", only);
  }
  if (in.optimizer && *in.optimizer != "sgd" && in.momentum)
    throw UsageError("--momentum is only used by --optimizer sgd (got --optimizer " + *in.optimizer + ")");
  if (in.lr_gamma && !in.lr_step) throw UsageError("--lr-gamma needs --lr-step");
  if (in.lr_first_step && !in.lr_step) throw UsageError("--lr-first-step needs --lr-step");
  if (in.method == "fixed") {
    if (in.weights.empty()) throw UsageError("--method fixed needs --weights w1,w2,... (one per task)");
  } else if (!in.weights.empty()) {
    throw UsageError("--weights is only used by --method fixed (got --method " + in.method + ")");
  }
  if (!is_mgda(in.method) && in.normalization)
    throw UsageError("--normalization is only used by --method mgda and mgda-ub (got --method " + in.method + ")");
  if (!is_mgda(in.method) && in.solver)
    throw UsageError("--solver is only used by --method mgda and mgda-ub (got --method " + in.method + ")");
  if (!is_mgda(in.method) && in.heads)
    throw UsageError("--heads is only used by --method mgda and mgda-ub (got --method " + in.method + ")");
  if (in.method != "gradnorm" && in.gradnorm_alpha)
    throw UsageError("--gradnorm-alpha is only used by --method gradnorm (got --method " + in.method + ")");
  auto only = [&](bool given, const char* flag, bool applies, const std::string& methods) {
    if (given && !applies)
      throw UsageError(std::string("--") + flag + " is only used by --method " + methods + " (got --method " +
                       in.method + ")");
  };
  only(in.gradients.has_value(), "gradients", takes_gradient_mode(in.method), join(gradient_mode_methods(), ", "));
  only(in.cagrad_c.has_value(), "cagrad-c", in.method == "cagrad", "cagrad");
  only(in.nash_max_norm.has_value(), "nash-max-norm", in.method == "nash-mtl", "nash-mtl");
  only(in.upgrad_reg.has_value(), "upgrad-reg", in.method == "upgrad", "upgrad");
  only(in.dwa_temperature.has_value(), "dwa-temperature", in.method == "dwa", "dwa");
  only(in.famo_lr.has_value(), "famo-lr", in.method == "famo", "famo");
  only(in.famo_gamma.has_value(), "famo-gamma", in.method == "famo", "famo");
  only(in.stch_mu.has_value(), "stch-mu", in.method == "stch", "stch");
  only(in.stch_warmup.has_value(), "stch-warmup", in.method == "stch", "stch");
  if (in.gradients && *in.gradients != "representation" && *in.gradients != "parameters")
    throw UsageError("unknown --gradients '" + *in.gradients + "' (valid: representation, parameters)");
  if (in.cagrad_c) need_finite(*in.cagrad_c, *in.cagrad_c >= 0, "--cagrad-c must be >= 0");
  if (in.nash_max_norm) need_finite(*in.nash_max_norm, *in.nash_max_norm >= 0, "--nash-max-norm must be >= 0");
  if (in.upgrad_reg) need_finite(*in.upgrad_reg, *in.upgrad_reg >= 0, "--upgrad-reg must be >= 0");
  if (in.dwa_temperature) need_finite(*in.dwa_temperature, *in.dwa_temperature > 0, "--dwa-temperature must be > 0");
  if (in.famo_lr) need_finite(*in.famo_lr, *in.famo_lr > 0, "--famo-lr must be > 0");
  if (in.famo_gamma) need_finite(*in.famo_gamma, *in.famo_gamma >= 0, "--famo-gamma must be >= 0");
  if (in.stch_mu) need_finite(*in.stch_mu, *in.stch_mu > 0, "--stch-mu must be > 0");
  if (in.stch_warmup && *in.stch_warmup < 1)
    throw UsageError("--stch-warmup must be >= 1, got " + std::to_string(*in.stch_warmup));

  // Ranges, on the resolved settings.
  const TrainConfig c = resolve_train_config(in);
  if (*c.epochs < 1) throw UsageError("--epochs must be >= 1, got " + std::to_string(*c.epochs));
  if (c.batch < 1) throw UsageError("--batch must be >= 1, got " + std::to_string(c.batch));
  need_finite(*c.lr, *c.lr > 0, "--lr must be > 0");
  if (*c.optimizer != "sgd" && *c.optimizer != "adam" && *c.optimizer != "adamw")
    throw UsageError("unknown optimizer '" + *c.optimizer + "' (valid: sgd, adam, adamw)");
  need_finite(*c.momentum, *c.momentum >= 0, "--momentum must be >= 0");
  need_finite(*c.weight_decay, *c.weight_decay >= 0, "--weight-decay must be >= 0");
  need_finite(*c.lr_gamma, *c.lr_gamma > 0, "--lr-gamma must be > 0");
  if (c.lr_step && *c.lr_step < 1) throw UsageError("--lr-step must be >= 1, got " + std::to_string(*c.lr_step));
  if (c.lr_first_step && *c.lr_first_step < 1)
    throw UsageError("--lr-first-step must be >= 1, got " + std::to_string(*c.lr_first_step));
  if (c.threads && (*c.threads < 1 || *c.threads > kMaxThreads))
    throw UsageError("--threads must be in 1.." + std::to_string(kMaxThreads) + ", got " + std::to_string(*c.threads));
  if (*c.val < 0) throw UsageError("--val must be >= 0, got " + std::to_string(*c.val));
  if (c.stop_after < 0) throw UsageError("--stop-after must be >= 1, got " + std::to_string(c.stop_after));
  if (c.method == "fixed")
    for (double w : c.weights) need_finite(w, w >= 0, "--weights must be finite and >= 0");
  if (c.method == "fixed" && std::all_of(c.weights.begin(), c.weights.end(), [](double w) { return w == 0; }))
    throw UsageError("--weights are all zero");
  try {
    parse_grad_normalization(*c.normalization);
  } catch (const Error&) {
    throw UsageError("unknown --normalization '" + *c.normalization + "' (valid: none, l2, loss, loss+)");
  }
  try {
    parse_min_norm_algo(*c.solver);
  } catch (const Error& e) {
    throw UsageError(std::string("--solver: ") + e.what());
  }
  try {
    parse_head_weights(*c.heads);
  } catch (const Error& e) {
    throw UsageError(std::string("--heads: ") + e.what());
  }
  need_finite(*c.gradnorm_alpha, *c.gradnorm_alpha >= 0, "--gradnorm-alpha must be >= 0");
  if (cheb) {
    if (*c.val < 1)
      throw UsageError("--val must be >= 1 for --method chebyshev-al (the model selection uses a validation set), got " +
                       std::to_string(*c.val));
    // the preference vector: its length is checked against the data set later
    for (size_t i = 0; i < c.prefs.size(); i++) {
      if (!std::isfinite(c.prefs[i])) throw UsageError("--prefs entry k_" + std::to_string(i) + " is not a finite number");
      if (c.prefs[i] < 0)
        throw UsageError("--prefs has a negative entry k_" + std::to_string(i) + " = " + short_num(c.prefs[i]) +
                         " (preferences must be >= 0)");
    }
    if (std::all_of(c.prefs.begin(), c.prefs.end(), [](double k) { return k == 0; }))
      throw UsageError("--prefs are all zero (at least one preference must be > 0)");
    if (!c.ref_point.empty() && c.ref_point.size() != c.prefs.size())
      throw UsageError("--ref-point needs one value per objective like --prefs (" + std::to_string(c.prefs.size()) +
                       "), got " + std::to_string(c.ref_point.size()));
    for (double a : c.ref_point)
      if (!std::isfinite(a)) throw UsageError("--ref-point must be finite");
    need_finite(*c.eps, *c.eps >= 0, "--eps must be >= 0");
    need_finite(*c.mu, *c.mu > 0, "--mu must be > 0");
    need_finite(*c.rho, *c.rho >= 1, "--rho must be >= 1");
    try {
      parse_al_variant(*c.al_variant);
    } catch (const Error&) {
      throw UsageError("unknown --al-variant '" + *c.al_variant + "' (valid: published, standard)");
    }
    try {
      ChebyshevConfig{c.prefs, c.ref_point, *c.eps}.validate((int)c.prefs.size());
    } catch (const Error& e) {
      throw UsageError(std::string("--prefs: ") + e.what());
    }
    if (*c.search_iters < 1) throw UsageError("--search-iters must be >= 1, got " + std::to_string(*c.search_iters));
    if (*c.retrain_iters < 0) throw UsageError("--retrain-iters must be >= 0, got " + std::to_string(*c.retrain_iters));
    if (*c.epochs_per_iter < 1)
      throw UsageError("--epochs-per-iter must be >= 1, got " + std::to_string(*c.epochs_per_iter));
    if (!(*c.min_sparsity >= 0 && *c.min_sparsity <= 100))
      throw UsageError("--min-sparsity must be a percentage in [0, 100], got " + short_num(*c.min_sparsity));
    if (!(*c.max_layer_sparsity >= 0 && *c.max_layer_sparsity <= 1))
      throw UsageError("--max-layer-sparsity must be in [0, 1], got " + short_num(*c.max_layer_sparsity));
    need_finite(*c.sim_preference, true, "--sim-preference must be finite");
    need_finite(*c.lr_decay, *c.lr_decay > 0, "--lr-decay must be > 0");
  }
  if (!c.resume.empty()) {
    std::error_code ec;
    if (!fs::exists(c.resume, ec)) throw UsageError("--resume " + c.resume + ": no such file");
    if (!fs::is_regular_file(c.resume, ec)) throw UsageError("--resume " + c.resume + ": not a regular file");
  }
}

}  // namespace mt
