#include "optim/schedule.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "engine/error.h"

namespace mt {

static std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

LrSchedule::LrSchedule(double base_lr) : base_(base_lr) {
  if (!(base_lr > 0) || !std::isfinite(base_lr)) throw Error("lr schedule: base lr must be > 0, got " + num(base_lr));
}

void LrSchedule::check_epoch(int epoch) const {
  if (epoch < 0) throw Error("lr schedule: epoch must be >= 0, got " + std::to_string(epoch));
}

StepLR::StepLR(double base_lr, int s, double g, int first)
    : LrSchedule(base_lr), step_size(s), gamma(g), first_step(first == 0 ? s : first) {
  if (s < 1) throw Error("StepLR: step_size must be >= 1, got " + std::to_string(s));
  if (!(g > 0) || !std::isfinite(g)) throw Error("StepLR: gamma must be > 0, got " + num(g));
  if (first < 0) throw Error("StepLR: first_step must be >= 1 (0 for step_size), got " + std::to_string(first));
}

double StepLR::lr_at(int epoch) const {
  check_epoch(epoch);
  const int decays = epoch < first_step ? 0 : (epoch - first_step) / step_size + 1;
  return base_ * std::pow(gamma, (double)decays);
}

ExponentialLR::ExponentialLR(double base_lr, double g) : LrSchedule(base_lr), gamma(g) {
  if (!(g > 0) || !std::isfinite(g)) throw Error("ExponentialLR: gamma must be > 0, got " + num(g));
}

double ExponentialLR::lr_at(int epoch) const {
  check_epoch(epoch);
  return base_ * std::pow(gamma, (double)epoch);
}

CosineLR::CosineLR(double base_lr, int t, double e) : LrSchedule(base_lr), T_max(t), eta_min(e) {
  if (t < 1) throw Error("CosineLR: T_max must be >= 1, got " + std::to_string(t));
  if (!(e >= 0) || e > base_lr) throw Error("CosineLR: eta_min must be in [0, base lr], got " + num(e));
}

double CosineLR::lr_at(int epoch) const {
  check_epoch(epoch);
  if (epoch >= T_max) return eta_min;
  const double pi = 3.14159265358979323846;
  return eta_min + (base_ - eta_min) * (1 + std::cos(pi * epoch / T_max)) / 2;
}

static double inner_base(const std::shared_ptr<const LrSchedule>& inner) {
  if (!inner) throw Error("LinearWarmup: the inner schedule is null");
  return inner->base_lr();
}

LinearWarmup::LinearWarmup(int w, std::shared_ptr<const LrSchedule> in)
    : LrSchedule(inner_base(in)), warmup_epochs(w), inner(std::move(in)) {
  if (w < 0) throw Error("LinearWarmup: warmup_epochs must be >= 0, got " + std::to_string(w));
}

double LinearWarmup::lr_at(int epoch) const {
  check_epoch(epoch);
  if (epoch < warmup_epochs) return inner->lr_at(0) * (epoch + 1) / (warmup_epochs + 1);
  return inner->lr_at(epoch - warmup_epochs);
}

}  // namespace mt
