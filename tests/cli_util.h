// Running the `mtl` command from the tests as a user runs it: build/mtl (named
// by MTL_BIN, else found beside the test binary, else under the working
// directory; so build/sanitize/tests runs build/sanitize/mtl)
// is started with std::system, with stdout and stderr going to files in a
// fresh temporary directory, and the tests check the exit code, the one-line
// errors and the JSON summary that is the last line of stdout. Shared by
// tests/test_cli.cpp, tests/test_cli_imagefolder.cpp and
// tests/test_sparse_trainer.cpp.
#pragma once
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace mt::testing::cli {

namespace fs = std::filesystem;

inline fs::path find_binary() {
  if (const char* e = std::getenv("MTL_BIN")) return fs::absolute(e);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);  // build/tests: mtl is beside it
  if (!ec && fs::is_regular_file(exe.parent_path() / "mtl", ec)) return exe.parent_path() / "mtl";
  for (const char* p : {"build/mtl", "../build/mtl", "../../build/mtl"})
    if (fs::is_regular_file(p, ec)) return fs::absolute(p);
  return {};
}

// build/mtl, or empty when it is missing.
inline const fs::path& binary() {
  static const fs::path p = find_binary();
  return p;
}

// data/ of the repository holding build/mtl (or build/sanitize/mtl, ...).
inline fs::path data_dir() {
  std::error_code ec;
  for (fs::path p = binary().parent_path(); p.has_relative_path(); p = p.parent_path())
    if (fs::is_directory(p / "data", ec)) return p / "data";
  return binary().parent_path().parent_path() / "data";
}

inline bool have_binary_and_data() {
  std::error_code ec;
  const bool ok = !binary().empty() && fs::is_regular_file(data_dir() / "mnist" / "train-images-idx3-ubyte", ec) &&
                  fs::is_regular_file(data_dir() / "mnist" / "t10k-labels-idx1-ubyte", ec);
  if (!ok) MESSAGE("build/mtl or data/mnist missing (run `make build/mtl data`): " << binary().string());
  return ok;
}

// A fresh directory PREFIXxxxxxx (e.g. prefix "/tmp/mtl-cli-"), removed with its content at the end.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& prefix) {
    std::string tmpl = prefix + "XXXXXX";
    const char* p = ::mkdtemp(tmpl.data());
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path operator/(const std::string& s) const { return path / s; }
};

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// False when the file could not be written.
inline bool write_file(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
  return bool(out);
}

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> v;
  std::istringstream in(s);
  std::string part;
  while (std::getline(in, part, sep)) v.push_back(part);
  return v;
}
inline std::vector<std::string> lines_of(const std::string& s) { return split(s, '\n'); }
inline std::vector<std::string> cells(const std::string& csv_line) { return split(csv_line, ','); }

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

struct Run {
  int code = -1;
  std::string out, err, cmd;
  std::vector<std::string> out_lines, err_lines;
  nlohmann::json json() const {  // the last line of stdout
    REQUIRE_MESSAGE(!out_lines.empty(), cmd << "\nstderr: " << err);
    return nlohmann::json::parse(out_lines.back());
  }
};

// `base` with the flags of `more`: a flag that `base` already has ("--x" followed by
// its value) gets the new value (mtl refuses a flag given twice); the rest is appended.
inline std::vector<std::string> with_flags(std::vector<std::string> base, const std::vector<std::string>& more) {
  for (size_t i = 0; i < more.size(); i++) {
    auto at = std::find(base.begin(), base.end(), more[i]);
    if (at != base.end() && more[i].compare(0, 2, "--") == 0 && i + 1 < more.size() && at + 1 != base.end()) {
      *(at + 1) = more[++i];
      continue;
    }
    base.push_back(more[i]);
  }
  return base;
}

// build/mtl ARGS..., with stdout and stderr in files of `dir`, stdin empty; `launcher`
// (a shell command line, e.g. "mpirun -np 2") goes before it.
inline Run run_mtl(const TempDir& dir, const std::vector<std::string>& args, const std::string& launcher = "") {
  static int counter = 0;
  const int k = counter++;
  const fs::path o = dir / ("stdout-" + std::to_string(k)), e = dir / ("stderr-" + std::to_string(k));
  Run r;
  r.cmd = (launcher.empty() ? "" : launcher + " ") + shell_quote(binary().string());
  for (const auto& a : args) r.cmd += " " + shell_quote(a);
  const std::string full = r.cmd + " >" + shell_quote(o.string()) + " 2>" + shell_quote(e.string()) + " </dev/null";
  const int st = std::system(full.c_str());
  r.code = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
  r.out = read_file(o);
  r.err = read_file(e);
  r.out_lines = lines_of(r.out);
  r.err_lines = lines_of(r.err);
  return r;
}

inline void check_ok(const Run& r) {
  INFO(r.cmd << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.code == 0);
}

// A failure the way users see it: exit status `code` and exactly one line on
// stderr, "mtl: error: ...", containing `mention` when one is given.
inline void check_one_error(const Run& r, int code, const std::string& mention = "") {
  INFO(r.cmd << "\nstdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.code == code);
  REQUIRE(r.err_lines.size() == 1);
  CHECK(r.err_lines[0].rfind("mtl: error: ", 0) == 0);
  if (!mention.empty())
    CHECK_MESSAGE(r.err_lines[0].find(mention) != std::string::npos,
                  "expected '" << mention << "' in: " << r.err_lines[0]);
}

}  // namespace mt::testing::cli
