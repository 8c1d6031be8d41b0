// Model weights in safetensors (engine/safetensors.h): every parameter and
// buffer under its dotted name ("trunk.conv1.weight") as F32, plus metadata:
// "format": "mtl-engine-v1" and whatever the caller adds (architecture name,
// task names), so other tools (Python's safetensors) open the file as is.
//
// Loading is all or nothing: the whole file is read and checked first (every
// expected tensor present, F32, the model's shape, finite, nothing
// unexpected, and the caller's expected metadata), and only then copied into
// the module.
// Errors name the file: "PATH: missing tensor 'trunk.fc.weight'".
#pragma once
#include <map>
#include <string>

#include "engine/safetensors.h"
#include "layers/module.h"

namespace mt {

using Metadata = std::map<std::string, std::string>;

inline constexpr const char* kFormatName = "mtl-engine-v1";

// Writes atomically (temporary file + rename). Caller metadata may not
// override "format".
void save_module(const std::string& path, const Module& m, const Metadata& metadata = {});

// Loads the weights into `m` and returns the file's metadata. Each entry of
// `expect` must be in the file's metadata with the same value (e.g.
// {"architecture", "multilenet"}). Also accepts a training checkpoint
// (optim/checkpoint.h) and then takes its "model." tensors.
Metadata load_module(const std::string& path, Module& m, const Metadata& expect = {});

// ---- building blocks (also used by optim/checkpoint.cpp) --------------------

// Adds every parameter and buffer of m to f as prefix + name.
void module_to_st(const Module& m, const std::string& prefix, StFile& f);
// Checks that f holds every tensor of m under prefix with its shape as F32,
// and that no other tensor name starting with prefix is in f (with an empty
// prefix: no other tensor at all). Throws "PATH: ..." and modifies nothing.
void check_module_st(const StFile& f, const Module& m, const std::string& prefix, const std::string& path);
// Copies the (checked) tensors into m.
void copy_module_st(const StFile& f, Module& m, const std::string& prefix);
// Each (key, value) of expect must be in f.metadata with that value.
void check_metadata(const StFile& f, const Metadata& expect, const std::string& path);
// The "format" entry, if present, must be kFormatName.
void check_format(const StFile& f, const std::string& path);

}  // namespace mt
