// The command-line machinery shared by the `mtl` subcommands (see cli.h).
#include "apps/cli.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cxxopts.hpp>
#include <map>

namespace mt::cli {

// ---- values -------------------------------------------------------------------------

int parse_int(const std::string& flag, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || end != s.c_str() + s.size() || errno != 0 || v < INT32_MIN || v > INT32_MAX)
    throw UsageError("--" + flag + " must be a whole number, got '" + s + "'");
  return (int)v;
}

uint64_t parse_u64(const std::string& flag, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || s[0] == '-' || end != s.c_str() + s.size() || errno != 0)
    throw UsageError("--" + flag + " must be a whole number >= 0, got '" + s + "'");
  return (uint64_t)v;
}

double parse_double(const std::string& flag, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v))
    throw UsageError("--" + flag + " must be a finite number, got '" + s + "'");
  return v;
}

std::vector<double> parse_doubles(const std::string& flag, const std::string& s) {
  std::vector<double> v;
  size_t start = 0;
  while (true) {
    const size_t comma = s.find(',', start);
    std::string tok = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!tok.empty() && tok.front() == ' ') tok.erase(tok.begin());
    while (!tok.empty() && tok.back() == ' ') tok.pop_back();
    v.push_back(parse_double(flag, tok));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return v;
}

std::string to_text(int v) { return std::to_string(v); }
std::string to_text(uint64_t v) { return std::to_string(v); }
std::string to_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}
std::string to_text(const std::string& v) { return v; }
std::string to_text(const std::vector<double>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + to_text(v[i]);
  return s;
}

// ---- parsing --------------------------------------------------------------------------

namespace {

// cxxopts quotes with U+2018/U+2019; plain quotes read better in a terminal log.
std::string plain_quotes(const std::string& s) {
  return replace_all(replace_all(s, "\xe2\x80\x98", "'"), "\xe2\x80\x99", "'");
}

}  // namespace

Given parse_command_line(const std::vector<std::pair<std::string, bool>>& names, int argc, char** argv,
                         const std::string& cmd) {
  const std::string see = " (see 'mtl " + cmd + " --help')";
  cxxopts::Options opts("mtl " + cmd, "");
  for (const auto& [name, is_switch] : names) {
    if (is_switch) opts.add_options()(name, "");
    else opts.add_options()(name, "", cxxopts::value<std::string>());
  }
  opts.add_options()("h,help", "");
  Given g;
  try {
    const cxxopts::ParseResult r = opts.parse(argc, argv);
    g.help = r.count("help") > 0;
    if (g.help) return g;
    std::map<std::string, bool> is_flag;
    for (const auto& [name, sw] : names) is_flag[name] = true;
    // cxxopts takes the next word as the value even when it is a flag: `--out --epochs 1`
    for (const auto& kv : r.arguments())
      if (kv.value().size() > 2 && kv.value().compare(0, 2, "--") == 0 && is_flag.count(kv.value().substr(2)))
        throw UsageError("--" + kv.key() + " needs a value, got the flag " + kv.value() + see);
    if (!r.unmatched().empty()) throw UsageError("unexpected argument '" + r.unmatched().front() + "'" + see);
    for (const auto& kv : r.arguments()) {
      const std::string& name = kv.key();
      if (r.count(name) > 1) throw UsageError("--" + name + " is given more than once" + see);
      const std::string value = kv.value();
      bool sw = false;
      for (const auto& [n, s] : names)
        if (n == name) sw = s;
      if (!sw && value.empty()) throw UsageError("--" + name + " must not be empty" + see);
      g.flags.emplace_back(name, sw ? "" : value);
    }
  } catch (const cxxopts::exceptions::no_such_option& e) {
    std::string what = plain_quotes(e.what());  // "Option 'x' does not exist"
    const size_t a = what.find('\''), b = what.rfind('\'');
    const std::string name = (a != std::string::npos && b > a) ? what.substr(a + 1, b - a - 1) : what;
    throw UsageError("unknown flag '" + std::string(name.size() == 1 ? "-" : "--") + name + "' for 'mtl " + cmd +
                     "'" + see);
  } catch (const cxxopts::exceptions::exception& e) {
    throw UsageError(plain_quotes(e.what()) + see);
  }
  return g;
}

std::string help_lines(
    const std::vector<std::tuple<std::string, std::string, std::string, std::string, std::string>>& rows) {
  constexpr size_t kColumn = 24;
  std::string out, group;
  bool first = true;
  for (const auto& [grp, name, arg, help, def] : rows) {
    if (first || grp != group) {
      out += (first ? "" : "\n") + grp + "\n";
      group = grp;
      first = false;
    }
    std::string left = "  --" + name + (arg.empty() ? "" : " " + arg);
    std::string text = help;
    if (!def.empty() && text.find('[') == std::string::npos) text += "  [" + def + "]";
    left += left.size() + 2 <= kColumn ? std::string(kColumn - left.size(), ' ') : "\n" + std::string(kColumn, ' ');
    out += left + replace_all(text, "\n", "\n" + std::string(kColumn, ' ')) + "\n";
  }
  return out;
}

// ---- console ----------------------------------------------------------------------------

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

std::string one_line(std::string s) {
  for (char& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return s;
}

std::string pct(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * fraction);
  return buf;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string short_num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string duration(double s) {
  if (!(s >= 0) || !std::isfinite(s)) return "?";
  const long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

std::string per_task(const std::vector<std::string>& tasks, const std::vector<std::string>& metrics,
                     const std::vector<double>& v) {
  std::string s;
  for (size_t t = 0; t < tasks.size() && t < v.size(); t++)
    s += (t ? "  " : "") + tasks[t] + " " +
         (t < metrics.size() && metrics[t] == "mae" ? "MAE " + short_num(v[t]) : pct(v[t]));
  return s;
}

std::string per_task_numbers(const std::vector<std::string>& tasks, const std::vector<double>& v, int digits) {
  std::string s;
  for (size_t t = 0; t < tasks.size() && t < v.size(); t++) s += (t ? "  " : "") + tasks[t] + " " + fixed(v[t], digits);
  return s;
}

ProgressBar::ProgressBar(bool quiet) : on_(!quiet && ::isatty(STDERR_FILENO)) {}

bool ProgressBar::due(const BatchInfo& b, std::string& head) {
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

void ProgressBar::draw(std::string line) {
  struct winsize ws {};
  const int width = (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) ? ws.ws_col : 100;
  if ((int)line.size() > width - 1) line.resize(width > 1 ? width - 1 : 0);
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (on_ && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  drawn_ = false;
}

}  // namespace mt::cli
