// A run's directory (see run_dir.h).
#include "mtl/train/run_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "mtl/train/config.h"

namespace mt {

namespace fs = std::filesystem;

void write_text_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot write: " + std::strerror(errno));
  size_t done = 0;
  bool ok = true;
  while (ok && done < text.size()) {
    ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) ok = false; else done += (size_t)w;
  }
  const int err = ok ? 0 : errno;
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = err ? err : errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot write: " + std::strerror(e));
  }
}

namespace {

std::string parent_dir(const std::string& file) {
  const std::string p = fs::path(file).parent_path().string();
  return p.empty() ? "." : p;
}

// Data rows of a metrics.csv (lines after the header); 0 when absent.
int metrics_rows(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  int n = -1;
  while (std::getline(in, line))
    if (!line.empty()) n++;
  return n < 0 ? 0 : n;
}

// NAME.tmp.<pid> with <pid> not a live process.
bool is_stale_temporary(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at == 0) return false;
  const std::string pid = name.substr(at + 5);
  if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) return false;
  const long p = std::strtol(pid.c_str(), nullptr, 10);
  if (p <= 0 || p == (long)::getpid()) return false;
  return ::kill((pid_t)p, 0) != 0 && errno == ESRCH;
}

}  // namespace

void RunDir::check(const std::string& dir, const std::string& resume, bool force) {
  if (dir.empty()) throw UsageError("--out must not be empty");
  std::error_code ec;
  const fs::path d(dir);
  if (fs::exists(d, ec)) {
    if (!fs::is_directory(d, ec)) throw UsageError("--out " + dir + " exists and is not a directory");
    if (::access(dir.c_str(), W_OK) != 0) throw UsageError("--out " + dir + " is not writable");
    const bool checkpoint = fs::exists(d / "checkpoint.safetensors", ec);
    // A run that got as far as its first checkpoint is a run; one that died in its
    // first epoch's files (config.json, at most one metrics row, no checkpoint) is not.
    const bool holds_run = checkpoint || metrics_rows(d / "metrics.csv") > 1;
    bool same_run = false;
    if (!resume.empty()) same_run = fs::equivalent(fs::path(parent_dir(resume)), d, ec);
    if (holds_run && !same_run && !force)
      throw UsageError("--out " + dir + " already holds a run (metrics.csv, checkpoint.safetensors); continue it " +
                       "with --resume " + (d / "checkpoint.safetensors").string() +
                       ", replace it with --force, or choose another --out");
    return;
  }
  // The nearest existing ancestor must be a writable directory.
  fs::path p = fs::absolute(d, ec).parent_path();
  while (!p.empty() && !fs::exists(p, ec) && p != p.parent_path()) p = p.parent_path();
  if (!fs::is_directory(p, ec))
    throw UsageError("--out " + dir + ": cannot be created (" + p.string() + " is not a directory)");
  if (::access(p.c_str(), W_OK) != 0)
    throw UsageError("--out " + dir + ": cannot be created (" + p.string() + " is not writable)");
}

RunDir::RunDir(std::string out, const std::string& resume, bool force, bool writer)
    : dir_(std::move(out)), writer_(writer) {
  check(dir_, resume, force);
  std::error_code ec;
  if (!writer_ || !fs::is_directory(dir_, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(ec) && is_stale_temporary(name) && fs::remove(entry.path(), ec)) removed_.push_back(name);
  }
}

std::string RunDir::path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

void RunDir::ensure_created() {
  if (created_) return;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error(dir_ + ": cannot create the directory: " + ec.message());
  if (!config_.empty()) write_text_atomic(path("config.json"), config_);
  created_ = true;
}

void RunDir::save_model(const std::string& name, const Module& m, const Metadata& meta) {
  if (!writer_) return;
  ensure_created();
  save_module(path(name), m, meta);
}

void RunDir::save_checkpoint(const Module& model, const Optimizer& opt, const CheckpointExtra& extra) {
  if (!writer_) return;
  ensure_created();
  mt::save_checkpoint(path("checkpoint.safetensors"), model, opt, extra);
}

void RunDir::write_text(const std::string& name, const std::string& text) {
  if (!writer_) return;
  ensure_created();
  write_text_atomic(path(name), text);
}

void RunDir::write_metrics(const std::string& header, const std::vector<std::string>& rows) {
  std::string csv = header + "\n";
  for (const auto& r : rows) csv += r + "\n";
  write_text("metrics.csv", csv);
}

std::vector<std::string> RunDir::previous_rows(const std::string& metrics_path, const std::string& header, int upto) {
  std::vector<std::string> rows;
  std::ifstream in(metrics_path);
  std::string line;
  if (!in || !std::getline(in, line) || line != header) return rows;
  while (std::getline(in, line)) {
    const int e = std::atoi(line.c_str());
    if (e >= 1 && e <= upto) rows.push_back(line);
  }
  return rows;
}

}  // namespace mt
