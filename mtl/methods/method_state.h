// Method state in checkpoints, exactly: integers and doubles are stored as I64
// tensors (a double bit for bit), so a resumed run continues with the very
// same numbers. Names start with "method." (see Method::save_state).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/safetensors.h"

namespace mt {

void put_i64(StFile& f, const std::string& name, const std::vector<int64_t>& v);
void put_doubles(StFile& f, const std::string& name, const std::vector<double>& v);
void put_rng(StFile& f, const std::string& name, const Rng& r);

// Each throws mt::Error "PATH: ..." when the tensor is missing or has another
// dtype or length than n.
std::vector<int64_t> get_i64(const StFile& f, const std::string& name, size_t n, const std::string& path);
std::vector<double> get_doubles(const StFile& f, const std::string& name, size_t n, const std::string& path);
Rng get_rng(const StFile& f, const std::string& name, const std::string& path);

// What a weighting keeps across checkpoints (tensors named "method.<name>.*");
// the Gram and loss weightings derive from it.
class WeightingState {
 public:
  virtual ~WeightingState() = default;
  virtual void save_state(StFile&) const {}
  virtual void load_state(const StFile&, const std::string& /*path*/) {}
};

// A weighting method's state: its step counter ("method.step") and the weighting's.
void save_step_state(StFile& f, int64_t step, const WeightingState& w);
// Restores the weighting's state and returns the step counter; throws (and
// changes nothing of its own) when either is missing or malformed.
int64_t load_step_state(const StFile& f, const std::string& path, WeightingState& w);

}  // namespace mt
