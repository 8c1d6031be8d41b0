// safetensors reader/writer: round trips, the committed fixture, every
// malformed-file error, and the atomic write.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/safetensors.h"

namespace {

namespace fs = std::filesystem;

// A fresh directory under /tmp, removed with everything in it on scope exit.
struct TmpDir {
  std::string path;
  TmpDir() {
    char tmpl[] = "/tmp/mt_test_st_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TmpDir() {
    std::error_code ec;
    ::chmod(path.c_str(), 0700);
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file with the given JSON header and `data_bytes` bytes of data (0x11 each).
std::string make_file(const std::string& header, size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\x11');
}

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// load_safetensors must throw mt::Error whose message names the file and contains `needle`.
void expect_load_error(const std::string& path, const std::string& needle) {
  std::string msg;
  try {
    mt::load_safetensors(path);
  } catch (const mt::Error& e) {
    msg = e.what();
  }
  INFO("message: " << msg);
  REQUIRE(!msg.empty());
  CHECK(msg.rfind(path + ": ", 0) == 0);
  CHECK(msg.find(needle) != std::string::npos);
}

// Writes `bytes` to a file in `dir` and expects loading it to fail with `needle`.
void expect_bad(const TmpDir& dir, const std::string& bytes, const std::string& needle) {
  static int counter = 0;
  const std::string p = dir.file("bad" + std::to_string(counter++) + ".safetensors");
  write_bytes(p, bytes);
  expect_load_error(p, needle);
}

std::string save_error(const std::string& path, const mt::StFile& f) {
  try {
    mt::save_safetensors(path, f);
  } catch (const mt::Error& e) {
    return e.what();
  }
  return "";
}

mt::StTensor f32_tensor(std::vector<int64_t> shape, std::vector<float> v) {
  mt::StTensor t;
  t.dtype = "F32";
  t.shape = std::move(shape);
  t.f32 = std::move(v);
  return t;
}

mt::StTensor i64_tensor(std::vector<int64_t> shape, std::vector<int64_t> v) {
  mt::StTensor t;
  t.dtype = "I64";
  t.shape = std::move(shape);
  t.i64 = std::move(v);
  return t;
}

std::string fixture_path() {
  const std::string rel = "tests/fixtures/tiny.safetensors";
  if (fs::exists(rel)) return rel;
  return (fs::path(__FILE__).parent_path() / "fixtures" / "tiny.safetensors").string();
}

}  // namespace

TEST_CASE("safetensors: save then load is bit-exact, edge floats included") {
  TmpDir dir;
  const std::vector<uint32_t> edge_bits = {
      0x00000000u,  // +0
      0x80000000u,  // -0
      0x00000001u,  // smallest denormal
      0x807fffffu,  // largest negative denormal
      0x00800000u,  // FLT_MIN
      0x7f7fffffu,  // FLT_MAX
      0x7f800000u,  // +inf
      0xff800000u,  // -inf
      0x7fc00000u,  // quiet NaN
      0xffc12345u,  // negative NaN with payload
      0x7f800001u,  // signalling NaN
      0x3f800000u,  // 1
  };
  std::vector<float> edges;
  for (uint32_t u : edge_bits) edges.push_back(bits_to_float(u));

  mt::StFile f;
  f.tensors["edges"] = f32_tensor({3, 4}, edges);
  f.tensors["ints"] = i64_tensor({5}, {std::numeric_limits<int64_t>::min(), -1, 0, 1,
                                       std::numeric_limits<int64_t>::max()});
  f.tensors["scalar"] = f32_tensor({}, {2.5f});
  f.tensors["empty"] = f32_tensor({0, 3}, {});
  f.tensors["empty_i"] = i64_tensor({2, 0}, {});
  f.tensors["deep"] = f32_tensor({2, 1, 3, 1}, {1, 2, 3, 4, 5, 6});
  const std::string p = dir.file("rt.safetensors");
  mt::save_safetensors(p, f);

  const mt::StFile g = mt::load_safetensors(p);
  REQUIRE(g.tensors.size() == f.tensors.size());
  CHECK(g.metadata.empty());
  for (const auto& kv : f.tensors) {
    INFO("tensor " << kv.first);
    const mt::StTensor& a = kv.second;
    const mt::StTensor& b = mt::st_require(g, kv.first, p);
    CHECK(b.dtype == a.dtype);
    CHECK(b.shape == a.shape);
    CHECK(b.numel() == a.numel());
    REQUIRE(b.f32.size() == a.f32.size());
    REQUIRE(b.i64.size() == a.i64.size());
    if (!a.f32.empty()) CHECK(std::memcmp(a.f32.data(), b.f32.data(), a.f32.size() * sizeof(float)) == 0);
    if (!a.i64.empty()) CHECK(std::memcmp(a.i64.data(), b.i64.data(), a.i64.size() * sizeof(int64_t)) == 0);
  }
  CHECK(g.tensors.at("scalar").numel() == 1);
  CHECK(g.tensors.at("empty").numel() == 0);

  // The file itself: header padded to 8 bytes, JSON object, data laid out in name order.
  const std::string bytes = read_bytes(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK((8 + n) % 8 == 0);
  CHECK(bytes[8] == '{');
  CHECK(bytes.size() == 8 + n + 12 * 4 + 5 * 8 + 4 + 6 * 4);
}

TEST_CASE("safetensors: metadata round trip") {
  TmpDir dir;
  mt::StFile f;
  f.metadata["format"] = "pt";
  f.metadata["task"] = "multi \"mnist\" \xc3\xa9\n";  // quotes, UTF-8, newline
  f.metadata["empty"] = "";
  f.tensors["w"] = f32_tensor({1}, {1.0f});
  const std::string p = dir.file("meta.safetensors");
  mt::save_safetensors(p, f);
  const mt::StFile g = mt::load_safetensors(p);
  CHECK(g.metadata == f.metadata);

  // Metadata only, no tensors, is a valid file too.
  mt::StFile m;
  m.metadata["k"] = "v";
  mt::save_safetensors(p, m);
  const mt::StFile h = mt::load_safetensors(p);
  CHECK(h.metadata == m.metadata);
  CHECK(h.tensors.empty());

  // Nothing at all.
  mt::save_safetensors(p, mt::StFile{});
  CHECK(mt::load_safetensors(p).tensors.empty());
}

TEST_CASE("safetensors: equal content gives identical bytes, and no temporary is left") {
  TmpDir dir;
  mt::StFile a, b;
  a.metadata["x"] = "1";
  a.metadata["a"] = "2";
  a.tensors["zeta"] = f32_tensor({2}, {1.f, 2.f});
  a.tensors["alpha"] = i64_tensor({1}, {7});
  // Same content, inserted in the other order.
  b.tensors["alpha"] = i64_tensor({1}, {7});
  b.tensors["zeta"] = f32_tensor({2}, {1.f, 2.f});
  b.metadata["a"] = "2";
  b.metadata["x"] = "1";
  mt::save_safetensors(dir.file("a.safetensors"), a);
  mt::save_safetensors(dir.file("b.safetensors"), b);
  mt::save_safetensors(dir.file("a.safetensors"), a);  // overwrite in place
  const std::string ba = read_bytes(dir.file("a.safetensors"));
  CHECK(!ba.empty());
  CHECK(ba == read_bytes(dir.file("b.safetensors")));

  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"a.safetensors", "b.safetensors"});
}

TEST_CASE("safetensors: the committed fixture loads with known values") {
  // tests/fixtures/tiny.safetensors was written once by an independent
  // writer (Python struct + json): key order weight, __metadata__, ids, bias,
  // step; data in that order (not name order); JSON with spaces; padded header.
  const std::string p = fixture_path();
  const mt::StFile f = mt::load_safetensors(p);
  CHECK(f.metadata == std::map<std::string, std::string>{{"format", "pt"}, {"note", "tiny fixture"}});
  REQUIRE(f.tensors.size() == 4);

  const mt::StTensor& w = mt::st_require(f, "weight", p);
  CHECK(w.dtype == "F32");
  mt::st_check_shape(w, {2, 3}, "weight", p);
  REQUIRE(w.f32.size() == 6);
  CHECK(w.f32 == std::vector<float>{0.5f, -1.25f, 2.0f, 3.0f, -0.0f, 100.0f});
  CHECK(std::signbit(w.f32[4]));
  CHECK(w.i64.empty());

  const mt::StTensor& ids = mt::st_require(f, "ids", p);
  CHECK(ids.dtype == "I64");
  CHECK(ids.shape == std::vector<int64_t>{4});
  CHECK(ids.i64 == std::vector<int64_t>{-1, 0, 7, int64_t(1) << 40});
  CHECK(ids.f32.empty());

  const mt::StTensor& bias = mt::st_require(f, "bias", p);
  CHECK(bias.shape == std::vector<int64_t>{3});
  CHECK(bias.f32 == std::vector<float>{0.25f, -0.75f, 1.5f});

  const mt::StTensor& step = mt::st_require(f, "step", p);
  CHECK(step.shape.empty());
  CHECK(step.numel() == 1);
  CHECK(step.i64 == std::vector<int64_t>{42});
}

TEST_CASE("safetensors: st_require and st_check_shape messages") {
  mt::StFile f;
  f.tensors["w"] = f32_tensor({2, 3}, std::vector<float>(6, 0.f));
  CHECK_THROWS_WITH_AS(mt::st_require(f, "b", "m.safetensors"), "m.safetensors: missing tensor 'b'", mt::Error);
  CHECK_NOTHROW(mt::st_check_shape(f.tensors["w"], {2, 3}, "w", "m.safetensors"));
  CHECK_THROWS_WITH_AS(mt::st_check_shape(f.tensors["w"], {3, 2}, "w", "m.safetensors"),
                       "m.safetensors: tensor 'w' has shape [2,3], model expects [3,2]", mt::Error);
  CHECK_THROWS_WITH_AS(mt::st_check_shape(f.tensors["w"], {6}, "w", "m.safetensors"),
                       "m.safetensors: tensor 'w' has shape [2,3], model expects [6]", mt::Error);
}

TEST_CASE("safetensors: unreadable, short and oversized files") {
  TmpDir dir;
  expect_load_error(dir.file("nope.safetensors"), "cannot open: No such file or directory");
  expect_load_error(dir.path, "Is a directory");
  expect_bad(dir, "", "file is 0 bytes, shorter than the 8-byte header length");
  expect_bad(dir, std::string("\x05\0\0", 3), "file is 3 bytes");
  expect_bad(dir, le64(1000) + "{}" + std::string(10, ' '), "header length 1000 is larger than the file (20 bytes)");
  expect_bad(dir, le64(~uint64_t(0)) + "{}", "header length 18446744073709551615 is larger than the file (10 bytes)");

  // A header length over 100 MB in a file that is big enough: a sparse file, so it costs nothing.
  const std::string big = dir.file("big.safetensors");
  write_bytes(big, le64(200000000) + "{}");
  fs::resize_file(big, 300000000);
  expect_load_error(big, "header length 200000000 is absurdly large");
  fs::remove(big);
}

TEST_CASE("safetensors: header JSON errors") {
  TmpDir dir;
  expect_bad(dir, make_file("{\"a\": ", 0), "header is not valid JSON: ");
  expect_bad(dir, make_file("{\"a\": ", 0), "parse error");
  expect_bad(dir, make_file("", 0), "header is not valid JSON");
  expect_bad(dir, make_file("{\"\xff\xfe\": 1}", 0), "header is not valid JSON");  // not UTF-8
  expect_bad(dir, make_file("[1,2]", 0), "header is not a JSON object (it is array)");
  expect_bad(dir, make_file("\"x\"", 0), "header is not a JSON object (it is string)");
  expect_bad(dir,
             make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                       8),
             "duplicate key 'a'");
  expect_bad(dir, make_file("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
             "duplicate key 'dtype'");

  // Entries missing a field or with wrong JSON types.
  expect_bad(dir, make_file("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "tensor 'a' has no \"dtype\"");
  expect_bad(dir, make_file("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), "tensor 'a' has no \"shape\"");
  expect_bad(dir, make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "tensor 'a' has no \"data_offsets\"");
  expect_bad(dir, make_file("{\"a\":5}", 0), "tensor 'a' must be a JSON object, got number");
  expect_bad(dir, make_file("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
             "tensor 'a': \"dtype\" must be a string, got number");
  expect_bad(dir, make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4),
             "tensor 'a': \"shape\" must be an array of integers, got string");
  expect_bad(dir, make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4),
             "\"shape\" must be an array of integers, got [1.5]");
  expect_bad(dir, make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,4]}}", 4),
             "\"shape\" must be an array of integers");
  expect_bad(dir, make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4),
             "tensor 'a': \"data_offsets\" must be [begin,end] (two integers), got [0]");
  expect_bad(dir, make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4),
             "\"data_offsets\" must be [begin,end]");
  expect_bad(dir, make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"b\":0}}}", 4),
             "\"data_offsets\" must be [begin,end]");
  expect_bad(dir, make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.0,4]}}", 4),
             "\"data_offsets\" must be [begin,end]");

  // Metadata must be an object of strings.
  expect_bad(dir, make_file("{\"__metadata__\":[1]}", 0), "\"__metadata__\" must be an object of strings, got array");
  expect_bad(dir, make_file("{\"__metadata__\":{\"epoch\":3}}", 0),
             "\"__metadata__\" value for 'epoch' must be a string, got number");
}

TEST_CASE("safetensors: dtype, shape and offset errors") {
  TmpDir dir;
  auto one = [](const std::string& dtype, const std::string& shape, const std::string& offs) {
    return "{\"t\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offs + "}}";
  };
  expect_bad(dir, make_file(one("Q7", "[1]", "[0,4]"), 4), "tensor 't' has unknown dtype 'Q7'");
  expect_bad(dir, make_file(one("f32", "[1]", "[0,4]"), 4), "unknown dtype 'f32'");
  expect_bad(dir, make_file(one("F16", "[2]", "[0,4]"), 4), "tensor 't' has unsupported dtype 'F16'");
  expect_bad(dir, make_file(one("BF16", "[2]", "[0,4]"), 4), "unsupported dtype 'BF16'");
  expect_bad(dir, make_file(one("F64", "[1]", "[0,8]"), 8), "unsupported dtype 'F64'");
  expect_bad(dir, make_file(one("F32", "[-2,3]", "[0,0]"), 0), "tensor 't' has negative dimension -2 in shape [-2,3]");
  expect_bad(dir, make_file(one("F32", "[4611686018427387904,4611686018427387904]", "[0,0]"), 0),
             "shape too large");
  expect_bad(dir, make_file(one("F32", "[9223372036854775808]", "[0,0]"), 0), "must be an array of integers");

  expect_bad(dir, make_file(one("F32", "[1]", "[8,4]"), 8), "tensor 't': data_offsets [8,4] must be [begin,end]");
  expect_bad(dir, make_file(one("F32", "[1]", "[-4,0]"), 8), "data_offsets [-4,0] must be [begin,end]");
  expect_bad(dir, make_file(one("F32", "[100]", "[0,400]"), 16),
             "tensor 't': data_offsets [0,400] end past the data section (16 bytes)");
  expect_bad(dir, make_file(one("F32", "[3]", "[0,8]"), 16),
             "tensor 't': data_offsets [0,8] span 8 bytes but shape [3] of F32 needs 12 bytes");
  expect_bad(dir, make_file(one("I64", "[2]", "[0,8]"), 16), "span 8 bytes but shape [2] of I64 needs 16 bytes");
  expect_bad(dir, make_file(one("F32", "[]", "[0,0]"), 16), "span 0 bytes but shape [] of F32 needs 4 bytes");
}

TEST_CASE("safetensors: overlaps, gaps and trailing bytes are rejected") {
  TmpDir dir;
  auto two = [](const std::string& oa, const std::string& ob) {
    return "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" + oa +
           "},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" + ob + "}}";
  };
  expect_bad(dir, make_file(two("[0,8]", "[4,12]"), 16), "tensors 'a' [0,8] and 'b' [4,12] overlap");
  expect_bad(dir, make_file(two("[8,16]", "[8,16]"), 16), "tensors 'a' [8,16] and 'b' [8,16] overlap");
  expect_bad(dir, make_file(two("[4,12]", "[0,8]"), 16), "tensors 'b' [0,8] and 'a' [4,12] overlap");
  // A third tensor inside the first, behind a second that is disjoint from it.
  expect_bad(dir,
             make_file("{\"big\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},"
                       "\"in\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                       32),
             "overlap");

  // As the reference reader: bytes that belong to no tensor, between tensors,
  // before the first or after the last, make the file invalid.
  expect_bad(dir, make_file(two("[12,20]", "[0,8]"), 20),
             "bytes [8,12] of the data section belong to no tensor (a gap before 'a')");
  expect_bad(dir, make_file(two("[4,12]", "[12,20]"), 20), "bytes [0,4] of the data section belong to no tensor");
  expect_bad(dir, make_file(two("[8,16]", "[0,8]"), 17),
             "1 trailing bytes after the tensor data (the tensors end at byte 16 of a 17-byte data section)");
  expect_bad(dir, make_file("{}", 3), "3 trailing bytes");

  // Tensors in any order that fill the data section, spaces after the JSON: accepted.
  const std::string p = dir.file("order.safetensors");
  std::string hdr = two("[8,16]", "[0,8]") + "       ";
  std::string bytes = le64(hdr.size()) + hdr;
  const float av[2] = {1.f, 2.f}, bv[2] = {-3.f, 4.f};
  std::string data(16, '\x7f');
  std::memcpy(&data[8], av, 8);
  std::memcpy(&data[0], bv, 8);
  write_bytes(p, bytes + data);
  const mt::StFile f = mt::load_safetensors(p);
  CHECK(f.tensors.at("a").f32 == std::vector<float>{1.f, 2.f});
  CHECK(f.tensors.at("b").f32 == std::vector<float>{-3.f, 4.f});

  // Empty tensors at the same offset overlap nothing.
  const std::string q = dir.file("empties.safetensors");
  write_bytes(q, make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                           "\"b\":{\"dtype\":\"I64\",\"shape\":[3,0],\"data_offsets\":[0,0]}}",
                           0));
  const mt::StFile g = mt::load_safetensors(q);
  CHECK(g.tensors.at("b").shape == std::vector<int64_t>{3, 0});
  CHECK(g.tensors.at("b").i64.empty());
}

TEST_CASE("safetensors: the data checksum catches a flipped bit; files without one load unchecked") {
  TmpDir dir;
  mt::StFile f;
  f.metadata["note"] = "x";
  f.tensors["w"] = f32_tensor({64}, std::vector<float>(64, 0.25f));
  f.tensors["ids"] = i64_tensor({3}, {1, 2, 3});
  const std::string p = dir.file("sum.safetensors");
  mt::save_safetensors(p, f);
  const std::string good = read_bytes(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(good[i]);
  const std::string header = good.substr(8, n);
  // The key is in the file for other readers, not in the loaded metadata.
  CHECK(header.find("\"data_crc32\":\"") != std::string::npos);
  CHECK(mt::load_safetensors(p).metadata == f.metadata);

  // One bit flipped in the middle of the data, at either end, in the I64 tensor.
  for (size_t at : {size_t(8 + n), size_t(8 + n + 100), good.size() - 1, size_t(8 + n + 3)}) {
    for (int bit : {0, 7}) {
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
      const std::string q = dir.file("flip.safetensors");
      write_bytes(q, bad);
      INFO("byte " << at << " bit " << bit);
      expect_load_error(q, "data checksum mismatch: metadata 'data_crc32' is ");
    }
  }
  // A malformed checksum value is named.
  {
    std::string bad = good;
    const size_t k = bad.find("\"data_crc32\":\"") + 14;
    bad[k] = 'X';
    const std::string q = dir.file("badsum.safetensors");
    write_bytes(q, bad);
    expect_load_error(q, "metadata 'data_crc32' is 'X");
    expect_load_error(q, "not 8 lower-case hex digits");
  }
  // Without the key (an older file, another writer) the same bytes load, flipped or not.
  {
    std::string hdr = header;
    const size_t k = hdr.find("\"data_crc32\":\"");
    hdr.replace(k, 24, std::string(24, ' '));  // "data_crc32":"xxxxxxxx", (the first key of the metadata)
    REQUIRE(hdr.find("data_crc32") == std::string::npos);
    const std::string data = good.substr(8 + n);
    const std::string q = dir.file("old.safetensors");
    write_bytes(q, le64(hdr.size()) + hdr + data);
    CHECK(mt::load_safetensors(q).tensors.at("w").f32 == f.tensors.at("w").f32);
    std::string flipped = data;
    flipped[30] = static_cast<char>(flipped[30] ^ 1);  // in w (ids, 24 bytes, comes first)
    write_bytes(q, le64(hdr.size()) + hdr + flipped);
    CHECK(mt::load_safetensors(q).tensors.at("w").f32 != f.tensors.at("w").f32);
  }
  // The key belongs to the writer.
  mt::StFile g = f;
  g.metadata["data_crc32"] = "00000000";
  CHECK(save_error(dir.file("r.safetensors"), g).find("metadata key 'data_crc32' is reserved") != std::string::npos);
}

TEST_CASE("safetensors: st_check_finite names the tensor, the value and its index") {
  mt::StFile f;
  f.tensors["model.w"] = f32_tensor({3}, {1.f, 2.f, 3.f});
  f.tensors["ids"] = i64_tensor({1}, {-1});
  CHECK_NOTHROW(mt::st_check_finite(f, "c.safetensors"));
  f.tensors["model.b"] = f32_tensor({2}, {0.f, std::nanf("")});
  CHECK_THROWS_WITH_AS(mt::st_check_finite(f, "c.safetensors"),
                       "c.safetensors: tensor 'model.b' holds nan at index 1 (refusing to continue from non-finite "
                       "weights)",
                       mt::Error);
  CHECK_NOTHROW(mt::st_check_finite(f, "c.safetensors", "optim."));  // other prefixes only
  f.tensors["model.b"].f32[1] = -std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(mt::st_check_finite(f, "c.safetensors", "model."),
                       "c.safetensors: tensor 'model.b' holds -inf at index 1 (refusing to continue from non-finite "
                       "weights)",
                       mt::Error);
}

TEST_CASE("safetensors: save rejects invalid content and names the path") {
  TmpDir dir;
  const std::string p = dir.file("x.safetensors");
  auto err = [&](const mt::StTensor& t, const std::string& name = "t") {
    mt::StFile f;
    f.tensors[name] = t;
    return save_error(p, f);
  };
  mt::StTensor h = f32_tensor({1}, {1.f});
  h.dtype = "F16";
  CHECK(err(h).find(p + ": cannot save tensor 't': dtype 'F16' is not supported") == 0);
  CHECK(err(f32_tensor({2, 2}, {1.f})).find("shape [2,2] has 4 elements but F32 data has 1") != std::string::npos);
  CHECK(err(f32_tensor({-1}, {})).find("negative dimension") != std::string::npos);
  mt::StTensor mixed = f32_tensor({1}, {1.f});
  mixed.i64 = {3};
  CHECK(err(mixed).find("other data vector is not empty") != std::string::npos);
  CHECK(err(f32_tensor({1}, {1.f}), "__metadata__").find("reserved") != std::string::npos);
  CHECK(err(f32_tensor({1}, {1.f}), "bad\xff").find("UTF-8") != std::string::npos);
  CHECK(!fs::exists(p));
  CHECK(fs::is_empty(dir.path));

  const std::string missing = dir.file("no/such/dir/x.safetensors");
  const std::string msg = save_error(missing, mt::StFile{});
  CHECK(msg.find(missing + ": cannot create temporary") == 0);
  CHECK(msg.find("No such file or directory") != std::string::npos);
}

TEST_CASE("safetensors: a failed save leaves the old file intact and no temporary") {
  TmpDir dir;
  const std::string p = dir.file("model.safetensors");
  mt::StFile old_f, new_f;
  old_f.tensors["w"] = f32_tensor({2}, {1.f, 2.f});
  new_f.tensors["w"] = f32_tensor({3}, {7.f, 8.f, 9.f});
  mt::save_safetensors(p, old_f);
  const std::string old_bytes = read_bytes(p);

  // The temporary cannot be created (a directory is in its way; works as root too).
  const std::string tmp = p + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  fs::create_directory(tmp);
  std::string msg = save_error(p, new_f);
  CHECK(msg.find(p + ": cannot create temporary " + tmp) == 0);
  CHECK(read_bytes(p) == old_bytes);
  CHECK(mt::load_safetensors(p).tensors.at("w").f32 == std::vector<float>{1.f, 2.f});
  fs::remove(tmp);

  // An unwritable directory (only meaningful when not root: root ignores the mode bits).
  if (::geteuid() != 0) {
    ::chmod(dir.path.c_str(), 0500);
    msg = save_error(p, new_f);
    ::chmod(dir.path.c_str(), 0700);
    CHECK(msg.find(p + ": cannot create temporary") == 0);
    CHECK(msg.find("Permission denied") != std::string::npos);
    CHECK(read_bytes(p) == old_bytes);
  }

  // The rename fails (the target is a non-empty directory): the written temporary is removed.
  const std::string dpath = dir.file("occupied");
  fs::create_directory(dpath);
  write_bytes(dpath + "/keep", "x");
  msg = save_error(dpath, new_f);
  CHECK(msg.find(dpath + ": cannot rename") == 0);
  CHECK(fs::exists(dpath + "/keep"));

  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"model.safetensors", "occupied"});

  // And a later save over the old file works.
  mt::save_safetensors(p, new_f);
  CHECK(mt::load_safetensors(p).tensors.at("w").f32 == std::vector<float>{7.f, 8.f, 9.f});
}
