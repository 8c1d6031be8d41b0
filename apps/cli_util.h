// What the `mtl` subcommands share on the command line (apps/mtl.cpp and
// apps/sparse_commands.h): flag parsing with one-line UsageErrors that name the
// flag, number parsing, and the small formatters of progress lines.
#pragma once
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cxxopts.hpp>
#include <string>
#include <vector>

#include "mtl/train/trainer.h"  // UsageError

namespace mt::cli {

inline std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

// Error messages are printed on one line.
inline std::string one_line(std::string s) {
  for (char& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return s;
}

// cxxopts quotes with U+2018/U+2019; plain quotes read better in a terminal log.
inline std::string plain_quotes(const std::string& s) {
  return replace_all(replace_all(s, "\xe2\x80\x98", "'"), "\xe2\x80\x99", "'");
}

inline std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); i++) s += (i ? sep : "") + v[i];
  return s;
}

inline int parse_int(const std::string& flag, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || end != s.c_str() + s.size() || errno != 0 || v < INT32_MIN || v > INT32_MAX)
    throw UsageError("--" + flag + " must be a whole number, got '" + s + "'");
  return (int)v;
}

inline uint64_t parse_u64(const std::string& flag, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || s[0] == '-' || end != s.c_str() + s.size() || errno != 0)
    throw UsageError("--" + flag + " must be a whole number >= 0, got '" + s + "'");
  return (uint64_t)v;
}

inline double parse_double(const std::string& flag, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v))
    throw UsageError("--" + flag + " must be a finite number, got '" + s + "'");
  return v;
}

inline std::string pct(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * fraction);
  return buf;
}

inline std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

inline std::string duration(double s) {
  if (!(s >= 0) || !std::isfinite(s)) return "?";
  const long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

// The progress bar of a training run on stderr, when stderr is a terminal: redrawn at
// most every 100 ms (and at each epoch's last batch), cut to the terminal's width,
// removed by clear() before an epoch line or an error message.
class ProgressBar {
 public:
  explicit ProgressBar(bool quiet) : on_(!quiet && ::isatty(STDERR_FILENO)) {}
  // Whether to draw batch b now; "epoch e/E [####........] b/B  N samples/s  ETA m:ss" if so.
  bool due(const BatchInfo& b, std::string& head) {
    if (!on_) return false;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && b.batch != b.batches && now - last_draw_ < std::chrono::milliseconds(100)) return false;
    last_draw_ = now;
    const double per_batch = b.seconds / b.batch;
    const double eta = per_batch * ((b.batches - b.batch) + (double)b.batches * (b.epochs - b.epoch));
    const int cells = 12, done = (int)((int64_t)cells * b.batch / b.batches);
    // rate and ETA first: a narrow terminal cuts the end of the line
    head = "epoch " + std::to_string(b.epoch) + "/" + std::to_string(b.epochs) + " [" + std::string(done, '#') +
           std::string(cells - done, '.') + "] " + std::to_string(b.batch) + "/" + std::to_string(b.batches) + "  " +
           fixed(b.seconds > 0 ? b.samples / b.seconds : 0.0, 0) + " samples/s  ETA " + duration(eta);
    return true;
  }
  void draw(std::string line) {
    struct winsize ws {};
    const int width = (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) ? ws.ws_col : 100;
    if ((int)line.size() > width - 1) line.resize(width > 1 ? width - 1 : 0);
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }
  void clear() {
    if (on_ && drawn_) {
      std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
    }
    drawn_ = false;
  }

 private:
  bool on_, drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

inline cxxopts::ParseResult parse_flags(cxxopts::Options& opts, int argc, char** argv, const std::string& cmd) {
  try {
    cxxopts::ParseResult r = opts.parse(argc, argv);
    if (!r.unmatched().empty())
      throw UsageError("unexpected argument '" + r.unmatched().front() + "' (see 'mtl " + cmd + " --help')");
    return r;
  } catch (const cxxopts::exceptions::no_such_option& e) {
    std::string what = plain_quotes(e.what());  // "Option 'x' does not exist"
    size_t a = what.find('\''), b = what.rfind('\'');
    std::string name = (a != std::string::npos && b > a) ? what.substr(a + 1, b - a - 1) : what;
    throw UsageError("unknown flag '" + std::string(name.size() == 1 ? "-" : "--") + name + "' for 'mtl " + cmd +
                     "' (see 'mtl " + cmd + " --help')");
  } catch (const cxxopts::exceptions::exception& e) {
    throw UsageError(plain_quotes(e.what()) + " (see 'mtl " + cmd + " --help')");
  }
}

}  // namespace mt::cli
