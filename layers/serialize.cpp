#include "layers/serialize.h"

#include <cstring>
#include <set>

#include "engine/error.h"

namespace mt {

static std::vector<int64_t> st_shape(const Shape& s) { return std::vector<int64_t>(s.begin(), s.end()); }

static bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

void module_to_st(const Module& m, const std::string& prefix, StFile& f) {
  for (const auto& kv : m.named_tensors()) {
    StTensor t;
    t.dtype = "F32";
    t.shape = st_shape(kv.second.shape());
    t.f32 = kv.second.to_vector();
    f.tensors[prefix + kv.first] = std::move(t);
  }
}

void check_module_st(const StFile& f, const Module& m, const std::string& prefix, const std::string& path) {
  std::set<std::string> expected;
  for (const auto& kv : m.named_tensors()) {
    const std::string name = prefix + kv.first;
    expected.insert(name);
    const StTensor& t = st_require(f, name, path);
    if (t.dtype != "F32")
      throw Error(path + ": tensor '" + name + "' has dtype " + t.dtype + ", model expects F32");
    st_check_shape(t, st_shape(kv.second.shape()), name, path);
  }
  for (const auto& kv : f.tensors)
    if (starts_with(kv.first, prefix) && !expected.count(kv.first))
      throw Error(path + ": unexpected tensor '" + kv.first + "' (the model has no such parameter or buffer)");
}

void copy_module_st(const StFile& f, Module& m, const std::string& prefix) {
  for (auto& kv : m.named_tensors()) {
    const StTensor& t = f.tensors.at(prefix + kv.first);
    if (!t.f32.empty()) std::memcpy(kv.second.data(), t.f32.data(), t.f32.size() * sizeof(float));
  }
}

void check_metadata(const StFile& f, const Metadata& expect, const std::string& path) {
  for (const auto& kv : expect) {
    auto it = f.metadata.find(kv.first);
    if (it == f.metadata.end())
      throw Error(path + ": metadata '" + kv.first + "' is missing, expected '" + kv.second + "'");
    if (it->second != kv.second)
      throw Error(path + ": metadata '" + kv.first + "' is '" + it->second + "', expected '" + kv.second + "'");
  }
}

void check_format(const StFile& f, const std::string& path) {
  auto it = f.metadata.find("format");
  if (it != f.metadata.end() && it->second != kFormatName)
    throw Error(path + ": format '" + it->second + "' is not " + kFormatName);
}

void save_module(const std::string& path, const Module& m, const Metadata& metadata) {
  StFile f;
  f.metadata = metadata;
  auto it = metadata.find("format");
  if (it != metadata.end() && it->second != kFormatName)
    throw Error(path + ": metadata 'format' is reserved (it is always " + kFormatName + ")");
  f.metadata["format"] = kFormatName;
  module_to_st(m, "", f);
  save_safetensors(path, f);
}

Metadata load_module(const std::string& path, Module& m, const Metadata& expect) {
  StFile f = load_safetensors(path);
  check_format(f, path);
  check_metadata(f, expect, path);
  auto kind = f.metadata.find("kind");
  const std::string prefix = (kind != f.metadata.end() && kind->second == "checkpoint") ? "model." : "";
  check_module_st(f, m, prefix, path);
  st_check_finite(f, path, prefix);
  copy_module_st(f, m, prefix);
  return f.metadata;
}

}  // namespace mt
