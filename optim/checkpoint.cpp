#include "optim/checkpoint.h"

#include <cerrno>
#include <cstdlib>

#include "engine/error.h"
#include "engine/rng.h"
#include "layers/serialize.h"

namespace mt {

namespace {

const char* const kModel = "model.";
const char* const kOptim = "optim.";
const char* const kExtra = "extra.";
const char* const kRng = "rng.global";

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool reserved_key(const std::string& k) {
  return k == "format" || k == "kind" || k == "step" || k == "epoch" || starts_with(k, kOptim);
}

int64_t counter(const StFile& f, const std::string& key, const std::string& path) {
  auto it = f.metadata.find(key);
  if (it == f.metadata.end()) throw Error(path + ": missing metadata '" + key + "'");
  const std::string& s = it->second;
  char* end = nullptr;
  errno = 0;
  long long v = s.empty() ? -1 : std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || errno != 0 || end != s.c_str() + s.size() || v < 0)
    throw Error(path + ": metadata '" + key + "' is '" + s + "', not a count >= 0");
  return v;
}

}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const Optimizer& opt,
                     const CheckpointExtra& extra) {
  if (extra.step < 0 || extra.epoch < 0)
    throw Error(path + ": cannot save a checkpoint with a negative step or epoch");
  StFile f;
  for (const auto& kv : extra.metadata) {
    if (reserved_key(kv.first)) throw Error(path + ": checkpoint metadata key '" + kv.first + "' is reserved");
    f.metadata[kv.first] = kv.second;
  }
  f.metadata["format"] = kFormatName;
  f.metadata["kind"] = "checkpoint";
  f.metadata["step"] = std::to_string(extra.step);
  f.metadata["epoch"] = std::to_string(extra.epoch);
  module_to_st(model, kModel, f);
  opt.save_state(f, kOptim);
  StTensor rng;
  rng.dtype = "I64";
  rng.shape = {4};
  for (uint64_t w : global_rng().state()) rng.i64.push_back((int64_t)w);
  f.tensors[kRng] = std::move(rng);
  for (const auto& kv : extra.tensors) f.tensors[kExtra + kv.first] = kv.second;
  save_safetensors(path, f);  // validates the extra tensors, writes a temporary, renames
}

CheckpointExtra load_checkpoint(const std::string& path, Module& model, Optimizer& opt,
                                const std::map<std::string, std::string>& expect) {
  const StFile f = load_safetensors(path);

  // 1. Validate everything.
  auto fmt = f.metadata.find("format");
  if (fmt == f.metadata.end() || fmt->second != kFormatName)
    throw Error(path + ": not an " + kFormatName + " file (metadata 'format' is " +
                (fmt == f.metadata.end() ? std::string("missing") : "'" + fmt->second + "'") + ")");
  auto kind = f.metadata.find("kind");
  if (kind == f.metadata.end() || kind->second != "checkpoint")
    throw Error(path + ": not a training checkpoint (metadata 'kind' is " +
                (kind == f.metadata.end() ? std::string("missing") : "'" + kind->second + "'") + ")");
  check_metadata(f, expect, path);
  CheckpointExtra extra;
  extra.step = counter(f, "step", path);
  extra.epoch = counter(f, "epoch", path);
  check_module_st(f, model, kModel, path);
  opt.check_state(f, kOptim, path);
  st_check_finite(f, path);  // model, optimizer state and the caller's tensors alike
  auto rng_it = f.tensors.find(kRng);
  if (rng_it == f.tensors.end()) throw Error(path + ": missing tensor '" + std::string(kRng) + "'");
  const StTensor& rng = rng_it->second;
  if (rng.dtype != "I64" || rng.shape != std::vector<int64_t>{4})
    throw Error(path + ": tensor '" + std::string(kRng) + "' must be I64 [4], got " + rng.dtype + " " +
                st_shape_str(rng.shape));
  if (rng.i64[0] == 0 && rng.i64[1] == 0 && rng.i64[2] == 0 && rng.i64[3] == 0)
    throw Error(path + ": tensor '" + std::string(kRng) + "' is all zeros (not a generator state)");
  for (const auto& kv : f.tensors) {
    const std::string& k = kv.first;
    if (starts_with(k, kModel) || starts_with(k, kOptim) || k == kRng) continue;
    if (!starts_with(k, kExtra)) throw Error(path + ": unexpected tensor '" + k + "' in a checkpoint");
    extra.tensors[k.substr(std::string(kExtra).size())] = kv.second;
  }
  for (const auto& kv : f.metadata)
    if (!reserved_key(kv.first)) extra.metadata[kv.first] = kv.second;

  // 2. Nothing can fail from here on: apply.
  copy_module_st(f, model, kModel);
  opt.load_state(f, kOptim, path);
  std::array<uint64_t, 4> s;
  for (int i = 0; i < 4; i++) s[i] = (uint64_t)rng.i64[i];
  global_rng().set_state(s);
  return extra;
}

}  // namespace mt
