// Loss-only weightings: the task weights come from the losses (and the
// method's own state) alone, and the network trains on sum_t w_t L_t with one
// forward and one backward pass, whatever K (DWA, RLW, FAMO, STCH; one file
// each). The weights are constants of the step: no gradient flows into them.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtl/methods/method.h"
#include "mtl/methods/method_state.h"

namespace mt {

class LossWeighting : public WeightingState {
 public:
  virtual std::string name() const = 0;
  // losses: L_t of this batch; step: 0 at the first call, then 1, 2, ...
  // (kept across checkpoints). Returns the K weights w_t.
  virtual std::vector<double> weights(const std::vector<double>& losses, int64_t step) = 0;
  // FAMO learns from the same batch's losses after the optimizer step: when
  // true, the method runs one more forward pass (no backward) of the batch in
  // Method::after_step and hands the losses over.
  virtual bool wants_losses_after_step() const { return false; }
  virtual void losses_after_step(const std::vector<double>& /*losses*/) {}
  // The training loop's epoch ends (DWA and STCH work on per-epoch loss averages).
  virtual void end_epoch() {}
};

std::unique_ptr<Method> make_loss_method_from(std::string name, std::unique_ptr<LossWeighting> w);
// "dwa", "rlw", "famo", "stch"; throws mt::Error for another name or bad options.
std::unique_ptr<LossWeighting> make_loss_weighting(const std::string& method, int K, const MethodOptions& opt);
std::unique_ptr<Method> make_loss_method(const std::string& method, int K, const MethodOptions& opt);

}  // namespace mt
