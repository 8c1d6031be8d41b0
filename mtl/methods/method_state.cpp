// Exact method state in checkpoints (see method_state.h).
#include "mtl/methods/method_state.h"

#include <cstring>

#include "engine/error.h"

namespace mt {

void put_i64(StFile& f, const std::string& name, const std::vector<int64_t>& v) {
  f.tensors[name] = StTensor{"I64", {(int64_t)v.size()}, {}, v};
}

void put_doubles(StFile& f, const std::string& name, const std::vector<double>& v) {
  std::vector<int64_t> bits(v.size());
  if (!v.empty()) std::memcpy(bits.data(), v.data(), sizeof(double) * v.size());
  put_i64(f, name, bits);
}

void put_rng(StFile& f, const std::string& name, const Rng& r) {
  std::vector<int64_t> s;
  for (uint64_t w : r.state()) s.push_back((int64_t)w);
  put_i64(f, name, s);
}

std::vector<int64_t> get_i64(const StFile& f, const std::string& name, size_t n, const std::string& path) {
  const StTensor& t = st_require(f, name, path);
  if (t.dtype != "I64") throw Error(path + ": tensor '" + name + "' must be I64, got " + t.dtype);
  st_check_shape(t, {(int64_t)n}, name, path);
  return t.i64;
}

std::vector<double> get_doubles(const StFile& f, const std::string& name, size_t n, const std::string& path) {
  const std::vector<int64_t> bits = get_i64(f, name, n, path);
  std::vector<double> v(n);
  if (n) std::memcpy(v.data(), bits.data(), sizeof(double) * n);
  return v;
}

Rng get_rng(const StFile& f, const std::string& name, const std::string& path) {
  const std::vector<int64_t> s = get_i64(f, name, 4, path);
  if (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0)
    throw Error(path + ": tensor '" + name + "' is all zeros (not a generator state)");
  Rng r;
  r.set_state({(uint64_t)s[0], (uint64_t)s[1], (uint64_t)s[2], (uint64_t)s[3]});
  return r;
}

void save_step_state(StFile& f, int64_t step, const WeightingState& w) {
  put_i64(f, "method.step", {step});
  w.save_state(f);
}

int64_t load_step_state(const StFile& f, const std::string& path, WeightingState& w) {
  const int64_t step = get_i64(f, "method.step", 1, path)[0];
  if (step < 0) throw Error(path + ": tensor 'method.step' is negative");
  w.load_state(f, path);
  return step;
}

}  // namespace mt
