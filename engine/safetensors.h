// The safetensors file format (https://github.com/huggingface/safetensors),
// independent of the tensor class:
//
//   [8 bytes]  N, little-endian uint64: length of the JSON header
//   [N bytes]  UTF-8 JSON object: name -> {"dtype", "shape", "data_offsets"},
//              plus an optional "__metadata__" object of string -> string;
//              may be padded with trailing spaces (we pad to 8-byte alignment)
//   [rest]     raw little-endian tensor data; data_offsets = [begin, end) are
//              relative to the start of this section
//
// This engine writes and reads F32 and I64. Every malformed file is reported
// as an mt::Error whose message starts with the file's path and names the
// problem; nothing is read past a bound that has not been checked. As in the
// reference reader, the tensors must fill the data section exactly: no byte
// may lie between two tensors or after the last one.
//
// Integrity: every file this engine writes carries, in "__metadata__", the key
// "data_crc32": the CRC-32 (zlib's, as gzip and PNG use) of the whole data
// section as 8 lower-case hex digits. Other readers see one more metadata
// string; this reader recomputes it and refuses a file whose data does not
// match (a flipped bit, a torn copy). A file without the key (an older file of
// this engine, or one from another writer) is read without that check. The
// key is the file's, not the caller's: StFile::metadata never holds it.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mt {

struct StTensor {
  std::string dtype;           // "F32" or "I64"
  std::vector<int64_t> shape;  // [] is a scalar (one element)
  std::vector<float> f32;      // filled when dtype == "F32"
  std::vector<int64_t> i64;    // filled when dtype == "I64"
  int64_t numel() const;       // product of shape (1 for a scalar)
};

// The metadata key of the data checksum (see above); reserved.
inline constexpr const char* kDataChecksumKey = "data_crc32";

struct StFile {
  std::map<std::string, std::string> metadata;  // "__metadata__" (without kDataChecksumKey)
  std::map<std::string, StTensor> tensors;      // sorted by name: equal content gives identical bytes
};

// Writes PATH.tmp.<pid>, fsyncs it, then renames it onto PATH, so a crash never
// leaves a half-written PATH. Tensors are laid out in name order, the header
// is padded with spaces to a multiple of 8 bytes. Throws mt::Error naming the
// path on an invalid StFile or any I/O failure, and removes the temporary.
void save_safetensors(const std::string& path, const StFile& f);

// Reads and validates the whole file, the data checksum included when the file
// has one; throws mt::Error "PATH: <problem>".
StFile load_safetensors(const std::string& path);

// "PATH: missing tensor 'name'"
const StTensor& st_require(const StFile& f, const std::string& name, const std::string& path);

// "PATH: tensor 'name' has shape [2,3], model expects [3,2]"
void st_check_shape(const StTensor& t, const std::vector<int64_t>& expected, const std::string& name,
                    const std::string& path);

// Refuses NaN and infinities in the F32 tensors whose names start with `prefix`
// (all of them for ""): "PATH: tensor 'name' holds nan at index 3". For
// weights that training would continue from: a non-finite value there only
// spreads.
void st_check_finite(const StFile& f, const std::string& path, const std::string& prefix = "");

// "[2,3]" (used in messages).
std::string st_shape_str(const std::vector<int64_t>& shape);

}  // namespace mt
