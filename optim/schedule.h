// Learning-rate schedules: small objects that give the lr of an epoch
// (0-based) from the base lr they were built with. Use between epochs:
//   opt.set_lr(schedule.lr_at(epoch));
#pragma once
#include <memory>

namespace mt {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr_at(int epoch) const = 0;  // epoch >= 0
  double base_lr() const { return base_; }

 protected:
  explicit LrSchedule(double base_lr);
  void check_epoch(int epoch) const;
  double base_;
};

// Multiply by gamma at epochs first_step, first_step + step_size, ...:
//   base * gamma^n,  n = epoch < first_step ? 0 : (epoch - first_step) / step_size + 1.
// first_step defaults to step_size, which gives PyTorch's StepLR,
// base * gamma^floor(epoch / step_size). The MGDA paper (Sener & Koltun 2018) uses
// gamma 0.85 every 10 epochs; its code decays when (epoch + 1) % 10 == 0, i.e.
// first_step 9: ten decays in 100 epochs instead of nine.
class StepLR : public LrSchedule {
 public:
  StepLR(double base_lr, int step_size, double gamma = 0.1, int first_step = 0);  // 0: = step_size
  double lr_at(int epoch) const override;
  const int step_size;
  const double gamma;
  const int first_step;
};

// base * gamma^epoch.
class ExponentialLR : public LrSchedule {
 public:
  ExponentialLR(double base_lr, double gamma);
  double lr_at(int epoch) const override;
  const double gamma;
};

// Cosine annealing from base to eta_min over T_max epochs:
// eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2, and eta_min
// from T_max on (annealing without restarts).
class CosineLR : public LrSchedule {
 public:
  CosineLR(double base_lr, int T_max, double eta_min = 0);
  double lr_at(int epoch) const override;
  const int T_max;
  const double eta_min;
};

// A linear ramp over warmup_epochs, then the inner schedule (started afresh):
// epoch e < W gives inner(0) * (e + 1) / (W + 1); epoch e >= W gives inner(e - W).
class LinearWarmup : public LrSchedule {
 public:
  LinearWarmup(int warmup_epochs, std::shared_ptr<const LrSchedule> inner);
  double lr_at(int epoch) const override;
  const int warmup_epochs;
  const std::shared_ptr<const LrSchedule> inner;
};

}  // namespace mt
