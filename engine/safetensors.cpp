// safetensors reader and writer; see safetensors.h for the layout.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "engine/error.h"

// Tensor bytes are copied straight between memory and the file, which is only
// correct on a little-endian host (the format is little-endian).
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp assumes a little-endian host"
#endif

namespace mt {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;  // 100 MB
const char* const kMetadataKey = "__metadata__";

void check_little_endian() {
  const uint32_t one = 1;
  unsigned char b[4];
  std::memcpy(b, &one, 4);
  if (b[0] != 1) throw Error("safetensors: this engine needs a little-endian host");
}

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw Error(path + ": " + what); }

std::string errno_str(int e) { return std::strerror(e); }

// Size in bytes of one element, 0 for a dtype name the format does not define.
size_t dtype_size(const std::string& d) {
  static const std::map<std::string, size_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
      {"F32", 4},  {"F64", 8}, {"I64", 8}, {"U64", 8},     {"C64", 8},     {"F4", 1},
      {"F6_E2M3", 1}, {"F6_E3M2", 1}};
  auto it = sizes.find(d);
  return it == sizes.end() ? 0 : it->second;
}

bool supported(const std::string& d) { return d == "F32" || d == "I64"; }

// numel of a shape with every dim >= 0; false on int64 overflow.
bool checked_numel(const std::vector<int64_t>& shape, int64_t* out) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) return false;
  }
  *out = n;
  return true;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

std::string range_str(uint64_t b, uint64_t e) { return "[" + std::to_string(b) + "," + std::to_string(e) + "]"; }

// The data checksum: zlib's CRC-32 over byte runs, fed in file order. (An
// empty run is skipped: zlib restarts at the initial value for a null buffer.)
uint32_t crc_add(uint32_t crc, const void* p, size_t n) {
  return n ? (uint32_t)crc32_z(crc, static_cast<const Bytef*>(p), n) : crc;
}
const uint32_t kCrcStart = 0;  // crc32(0, Z_NULL, 0)
std::string crc_hex(uint32_t crc) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", crc);
  return buf;
}

// ---- reading ----------------------------------------------------------------

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads exactly n bytes at offset off; throws on error or a short file.
void pread_all(int fd, void* buf, uint64_t n, uint64_t off, const std::string& path) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, 1ull << 30));
    ssize_t r = ::pread(fd, p, chunk, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(path, "read error: " + errno_str(errno));
    }
    if (r == 0) fail(path, "unexpected end of file at byte " + std::to_string(off));
    p += r;
    n -= static_cast<uint64_t>(r);
    off += static_cast<uint64_t>(r);
  }
}

// A JSON integer as int64; `ok` false when it is not an integer or out of range.
bool json_int(const json& v, int64_t* out) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    *out = v.get<int64_t>();
    return true;
  }
  return false;
}

struct Entry {
  std::string name;
  StTensor* t;
  uint64_t begin, end;
};

}  // namespace

int64_t StTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string st_shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

StFile load_safetensors(const std::string& path) {
  check_little_endian();
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) fail(path, "cannot open: " + errno_str(errno));
  struct stat st;
  if (::fstat(f.fd, &st) != 0) fail(path, "cannot stat: " + errno_str(errno));
  if (S_ISDIR(st.st_mode)) fail(path, "cannot read: " + errno_str(EISDIR));
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);

  if (file_size < 8)
    fail(path, "file is " + std::to_string(file_size) +
                   " bytes, shorter than the 8-byte header length of a safetensors file");
  unsigned char len8[8];
  pread_all(f.fd, len8, 8, 0, path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len8[i];
  if (n > file_size - 8)
    fail(path, "header length " + std::to_string(n) + " is larger than the file (" + std::to_string(file_size) +
                   " bytes)");
  if (n > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(n) + " is absurdly large (limit " +
                   std::to_string(kMaxHeaderBytes) + " bytes)");
  const uint64_t data_start = 8 + n;
  const uint64_t data_size = file_size - data_start;

  std::string text(static_cast<size_t>(n), '\0');
  if (n) pread_all(f.fd, &text[0], n, 8, path);

  // Parse, noting the first duplicate key in any object (nlohmann keeps the last silently).
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto cb = [&](int, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (ev == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (ev == json::parse_event_t::key && !open_objects.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text.begin(), text.end(), cb);
  } catch (const json::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!root.is_object()) fail(path, std::string("header is not a JSON object (it is ") + root.type_name() + ")");
  if (!duplicate.empty()) fail(path, "header has duplicate key " + quote(duplicate));

  StFile out;
  std::vector<Entry> entries;
  std::string checksum;  // the file's kDataChecksumKey, "" when it has none
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == kMetadataKey) {
      if (!v.is_object())
        fail(path, std::string("\"__metadata__\" must be an object of strings, got ") + v.type_name());
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          fail(path, "\"__metadata__\" value for " + quote(m.key()) + " must be a string, got " +
                         m.value().type_name());
        if (m.key() == kDataChecksumKey) {
          checksum = m.value().get<std::string>();
          if (checksum.size() != 8 || checksum.find_first_not_of("0123456789abcdef") != std::string::npos)
            fail(path, "metadata " + quote(kDataChecksumKey) + " is " + quote(checksum) +
                           ", not 8 lower-case hex digits");
        } else {
          out.metadata[m.key()] = m.value().get<std::string>();
        }
      }
      continue;
    }
    const std::string where = "tensor " + quote(name);
    if (!v.is_object()) fail(path, where + " must be a JSON object, got " + v.type_name());
    for (const char* k : {"dtype", "shape", "data_offsets"})
      if (!v.contains(k)) fail(path, where + " has no \"" + k + "\"");

    const json& jd = v["dtype"];
    if (!jd.is_string()) fail(path, where + ": \"dtype\" must be a string, got " + jd.type_name());
    const std::string dtype = jd.get<std::string>();
    const size_t esize = dtype_size(dtype);
    if (esize == 0) fail(path, where + " has unknown dtype " + quote(dtype));
    if (!supported(dtype))
      fail(path, where + " has unsupported dtype " + quote(dtype) + " (this engine reads F32 and I64)");

    const json& js = v["shape"];
    if (!js.is_array()) fail(path, where + ": \"shape\" must be an array of integers, got " + js.type_name());
    std::vector<int64_t> shape;
    for (const json& d : js) {
      int64_t x;
      if (!json_int(d, &x)) fail(path, where + ": \"shape\" must be an array of integers, got " + js.dump());
      if (x < 0) fail(path, where + " has negative dimension " + std::to_string(x) + " in shape " + js.dump());
      shape.push_back(x);
    }
    int64_t numel;
    if (!checked_numel(shape, &numel) || static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / esize)
      fail(path, where + " has a shape too large to address: " + st_shape_str(shape));
    const uint64_t need = static_cast<uint64_t>(numel) * esize;

    const json& jo = v["data_offsets"];
    int64_t b, e;
    if (!jo.is_array() || jo.size() != 2 || !json_int(jo[0], &b) || !json_int(jo[1], &e))
      fail(path, where + ": \"data_offsets\" must be [begin,end] (two integers), got " + jo.dump());
    if (b < 0 || e < 0 || b > e)
      fail(path, where + ": data_offsets " + jo.dump() + " must be [begin,end] with 0 <= begin <= end");
    const uint64_t ub = static_cast<uint64_t>(b), ue = static_cast<uint64_t>(e);
    if (ue > data_size)
      fail(path, where + ": data_offsets " + range_str(ub, ue) + " end past the data section (" +
                     std::to_string(data_size) + " bytes)");
    if (ue - ub != need)
      fail(path, where + ": data_offsets " + range_str(ub, ue) + " span " + std::to_string(ue - ub) +
                     " bytes but shape " + st_shape_str(shape) + " of " + dtype + " needs " + std::to_string(need) +
                     " bytes");

    StTensor& t = out.tensors[name];
    t.dtype = dtype;
    t.shape = std::move(shape);
    entries.push_back({name, &t, ub, ue});
  }

  // Reject overlapping byte ranges (empty tensors overlap nothing); gaps are allowed.
  std::vector<const Entry*> order;
  for (const Entry& en : entries)
    if (en.end > en.begin) order.push_back(&en);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->name < b->name;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    const Entry* prev = order[i - 1];
    const Entry* cur = order[i];
    // Sorted by begin: while neighbours are disjoint, ends increase too, so
    // prev holds the furthest end so far and the first overlap shows here.
    if (cur->begin < prev->end)
      fail(path, "tensors " + quote(prev->name) + " " + range_str(prev->begin, prev->end) + " and " +
                     quote(cur->name) + " " + range_str(cur->begin, cur->end) + " overlap");
  }
  // Disjoint and sorted: they fill the data section when each starts where
  // the one before ends, and the last ends with the file.
  uint64_t filled = 0;
  for (const Entry* cur : order) {
    if (cur->begin != filled)
      fail(path, "bytes " + range_str(filled, cur->begin) + " of the data section belong to no tensor (a gap before " +
                     quote(cur->name) + ")");
    filled = cur->end;
  }
  if (filled != data_size)
    fail(path, std::to_string(data_size - filled) + " trailing bytes after the tensor data (the tensors end at byte " +
                   std::to_string(filled) + " of a " + std::to_string(data_size) + "-byte data section)");

  for (Entry& en : entries) {
    StTensor& t = *en.t;
    const uint64_t bytes = en.end - en.begin;
    const size_t count = static_cast<size_t>(t.numel());
    void* dst;
    if (t.dtype == "F32") {
      t.f32.resize(count);
      dst = t.f32.data();
    } else {
      t.i64.resize(count);
      dst = t.i64.data();
    }
    if (bytes) pread_all(f.fd, dst, bytes, data_start + en.begin, path);
  }

  if (!checksum.empty()) {  // the data section is the tensors in offset order
    uint32_t crc = kCrcStart;
    for (const Entry* en : order) {
      const StTensor& t = *en->t;
      crc = t.dtype == "F32" ? crc_add(crc, t.f32.data(), t.f32.size() * sizeof(float))
                             : crc_add(crc, t.i64.data(), t.i64.size() * sizeof(int64_t));
    }
    if (crc_hex(crc) != checksum)
      fail(path, "data checksum mismatch: metadata " + quote(kDataChecksumKey) + " is " + checksum +
                     ", the data has " + crc_hex(crc) + " (the file is corrupt)");
  }
  return out;
}

// ---- writing ----------------------------------------------------------------

namespace {

void write_all(int fd, const void* buf, size_t n, const std::string& path, const std::string& tmp) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    ssize_t w = ::write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(path, "cannot write " + tmp + ": " + errno_str(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void save_safetensors(const std::string& path, const StFile& f) {
  check_little_endian();

  // Validate and build the header (std::map keeps tensors and keys sorted).
  json header = json::object();
  json meta = json::object();
  for (const auto& kv : f.metadata) {
    if (kv.first == kDataChecksumKey)
      fail(path, "metadata key " + quote(kDataChecksumKey) + " is reserved (the writer sets it)");
    meta[kv.first] = kv.second;
  }
  uint32_t crc = kCrcStart;  // of the data, in the order it is written
  uint64_t offset = 0;
  for (const auto& kv : f.tensors) {
    const std::string& name = kv.first;
    const StTensor& t = kv.second;
    const std::string where = "cannot save tensor " + quote(name);
    if (name == kMetadataKey) fail(path, where + ": the name is reserved for metadata");
    if (!supported(t.dtype))
      fail(path, where + ": dtype " + quote(t.dtype) + " is not supported (this engine writes F32 and I64)");
    for (int64_t d : t.shape)
      if (d < 0) fail(path, where + ": negative dimension in shape " + st_shape_str(t.shape));
    int64_t numel;
    if (!checked_numel(t.shape, &numel) || numel > std::numeric_limits<int64_t>::max() / 8)
      fail(path, where + ": shape too large " + st_shape_str(t.shape));
    const bool is_f32 = t.dtype == "F32";
    const size_t have = is_f32 ? t.f32.size() : t.i64.size();
    const size_t other = is_f32 ? t.i64.size() : t.f32.size();
    if (have != static_cast<size_t>(numel))
      fail(path, where + ": shape " + st_shape_str(t.shape) + " has " + std::to_string(numel) + " elements but " +
                     t.dtype + " data has " + std::to_string(have));
    if (other != 0) fail(path, where + ": dtype is " + t.dtype + " but the other data vector is not empty");
    const uint64_t bytes = static_cast<uint64_t>(numel) * 4u * (is_f32 ? 1u : 2u);
    header[name] = json{{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    crc = is_f32 ? crc_add(crc, t.f32.data(), t.f32.size() * sizeof(float))
                 : crc_add(crc, t.i64.data(), t.i64.size() * sizeof(int64_t));
  }
  meta[kDataChecksumKey] = crc_hex(crc);
  header[kMetadataKey] = std::move(meta);
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    fail(path, std::string("cannot encode the header (names and metadata must be UTF-8): ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char len8[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len8[i] = static_cast<unsigned char>(n >> (8 * i));

  const std::string tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "cannot create temporary " + tmp + ": " + errno_str(errno));
  try {
    write_all(fd, len8, 8, path, tmp);
    write_all(fd, text.data(), text.size(), path, tmp);
    for (const auto& kv : f.tensors) {
      const StTensor& t = kv.second;
      if (t.dtype == "F32")
        write_all(fd, t.f32.data(), t.f32.size() * sizeof(float), path, tmp);
      else
        write_all(fd, t.i64.data(), t.i64.size() * sizeof(int64_t), path, tmp);
    }
    if (::fsync(fd) != 0) fail(path, "cannot fsync " + tmp + ": " + errno_str(errno));
    int rc = ::close(fd);
    fd = -1;
    if (rc != 0) fail(path, "cannot close " + tmp + ": " + errno_str(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      fail(path, "cannot rename " + tmp + " onto it: " + errno_str(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable (best effort: some filesystems refuse).
  int dfd = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

// ---- helpers for callers ----------------------------------------------------

const StTensor& st_require(const StFile& f, const std::string& name, const std::string& path) {
  auto it = f.tensors.find(name);
  if (it == f.tensors.end()) fail(path, "missing tensor " + quote(name));
  return it->second;
}

void st_check_finite(const StFile& f, const std::string& path, const std::string& prefix) {
  for (const auto& kv : f.tensors) {
    if (kv.second.dtype != "F32" || kv.first.compare(0, prefix.size(), prefix) != 0) continue;
    const std::vector<float>& v = kv.second.f32;
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]))
        fail(path, "tensor " + quote(kv.first) + " holds " + (std::isnan(v[i]) ? "nan" : v[i] > 0 ? "inf" : "-inf") +
                       " at index " + std::to_string(i) + " (refusing to continue from non-finite weights)");
  }
}

void st_check_shape(const StTensor& t, const std::vector<int64_t>& expected, const std::string& name,
                    const std::string& path) {
  if (t.shape != expected)
    fail(path, "tensor " + quote(name) + " has shape " + st_shape_str(t.shape) + ", model expects " +
                   st_shape_str(expected));
}

}  // namespace mt
