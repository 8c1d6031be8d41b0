// What the `mtl` subcommands share on the command line: one table of flags per
// command, from which both the parser (cxxopts) and the help text come, and the
// console helpers (progress bar, number formats).
//
// A flag is written once, as a table entry: its name, the value it takes, its help
// line and where it goes in the command's settings. The value is converted to the
// field's type (a bad number is a UsageError naming the flag); the default shown in
// --help is the field's value in a default-constructed settings object, or, for
// defaults that depend on other settings, the text in the help line. Ranges and
// combinations are checked once, by the library (validate_train_config and friends).
//
// Parsing refuses an unknown flag, a flag given twice, a stray argument, and a flag
// whose value is another flag (`--out --epochs 1`), each with a one-line UsageError.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "mtl/text.h"
#include "mtl/train/config.h"  // UsageError
#include "mtl/train/trainer.h"  // BatchInfo

namespace mt::cli {

// ---- values -------------------------------------------------------------------------

int parse_int(const std::string& flag, const std::string& s);
uint64_t parse_u64(const std::string& flag, const std::string& s);
double parse_double(const std::string& flag, const std::string& s);
std::vector<double> parse_doubles(const std::string& flag, const std::string& s);  // "1,2.5,3"

inline void from_text(const std::string& f, const std::string& s, int& v) { v = parse_int(f, s); }
inline void from_text(const std::string& f, const std::string& s, uint64_t& v) { v = parse_u64(f, s); }
inline void from_text(const std::string& f, const std::string& s, double& v) { v = parse_double(f, s); }
inline void from_text(const std::string&, const std::string& s, std::string& v) { v = s; }
inline void from_text(const std::string& f, const std::string& s, std::vector<double>& v) { v = parse_doubles(f, s); }
template <class T>
void from_text(const std::string& f, const std::string& s, std::optional<T>& v) {
  T x{};
  from_text(f, s, x);
  v = x;
}

std::string to_text(int v);
std::string to_text(uint64_t v);
std::string to_text(double v);
std::string to_text(const std::string& v);
std::string to_text(const std::vector<double>& v);
template <class T>
std::string to_text(const std::optional<T>& v) {
  return v ? to_text(*v) : "";
}

// ---- the table ------------------------------------------------------------------------

template <class A>
struct Flag {
  std::string name;   // "epochs" (--epochs); "h,help" style aliases are not used
  std::string arg;    // "N", "X", "DIR", ...; empty for a switch
  std::string group;  // the --help section
  std::string help;   // one or more lines ('\n' continues at the help column)
  std::function<void(A&, const std::string&)> set;  // a switch gets ""
  std::function<std::string()> show;                 // the default shown in --help ("": none)
};

// A flag stored in the field `get(args)` returns (int, uint64_t, double, string,
// vector<double>, or an optional of one of them).
template <class A, class Get>
Flag<A> field(std::string name, std::string arg, std::string group, std::string help, Get get) {
  Flag<A> f{name, std::move(arg), std::move(group), std::move(help), {}, {}};
  f.set = [name, get](A& a, const std::string& v) { from_text(name, v, get(a)); };
  f.show = [get] {
    A d{};
    return to_text(get(d));
  };
  return f;
}

// A switch setting a bool field to true.
template <class A, class Get>
Flag<A> toggle(std::string name, std::string group, std::string help, Get get) {
  return Flag<A>{name, "", std::move(group), std::move(help), [get](A& a, const std::string&) { get(a) = true; },
                 [] { return std::string(); }};
}

// The same flag for settings B that hold an A (`mtl sweep`'s train flags).
template <class B, class A, class Get>
Flag<B> adapt(const Flag<A>& f, Get get) {
  return Flag<B>{f.name, f.arg, f.group, f.help, [s = f.set, get](B& b, const std::string& v) { s(get(b), v); },
                 f.show};
}

// Parsed command line: the flags given, in order, with their values.
struct Given {
  std::vector<std::pair<std::string, std::string>> flags;
  bool help = false;
};

// cxxopts over the table's names (every flag a string, switches bool); errors as above.
Given parse_command_line(const std::vector<std::pair<std::string, bool>>& names, int argc, char** argv,
                         const std::string& cmd);

// "  --epochs N            total epochs ...  [10]" lines, grouped, in table order.
std::string help_lines(const std::vector<std::tuple<std::string, std::string, std::string, std::string, std::string>>& rows);

template <class A>
class FlagTable {
 public:
  FlagTable(std::string cmd, std::vector<Flag<A>> flags) : cmd_(std::move(cmd)), flags_(std::move(flags)) {}
  const std::vector<Flag<A>>& flags() const { return flags_; }
  // Sets the given flags on `a`; false when --help was asked for.
  bool parse(int argc, char** argv, A& a) const {
    std::vector<std::pair<std::string, bool>> names;
    for (const auto& f : flags_) names.emplace_back(f.name, f.arg.empty());
    const Given g = parse_command_line(names, argc, argv, cmd_);
    if (g.help) return false;
    for (const auto& [name, value] : g.flags)
      for (const auto& f : flags_)
        if (f.name == name) f.set(a, value);
    return true;
  }
  std::string help() const {
    std::vector<std::tuple<std::string, std::string, std::string, std::string, std::string>> rows;
    for (const auto& f : flags_) rows.emplace_back(f.group, f.name, f.arg, f.help, f.show ? f.show() : "");
    return help_lines(rows);
  }

 private:
  std::string cmd_;
  std::vector<Flag<A>> flags_;
};

// ---- console ------------------------------------------------------------------------

using text::join;
std::string replace_all(std::string s, const std::string& from, const std::string& to);
std::string one_line(std::string s);          // error messages are printed on one line
std::string pct(double fraction);             // "93.12%"
std::string fixed(double v, int digits);
std::string short_num(double v);              // "%.4g"
std::string duration(double seconds);         // "m:ss" or "h:mm:ss"
// "left 93.12%  right 0.0312" (accuracy as a percentage, MAE as a number)
std::string per_task(const std::vector<std::string>& tasks, const std::vector<std::string>& metrics,
                     const std::vector<double>& v);
std::string per_task_numbers(const std::vector<std::string>& tasks, const std::vector<double>& v, int digits);

// The progress bar of a run on stderr, when stderr is a terminal: redrawn at most every
// 100 ms (and at each epoch's last batch), cut to the terminal's width, removed by
// clear() before an epoch line or an error message.
class ProgressBar {
 public:
  explicit ProgressBar(bool quiet);
  // Whether to draw batch b now; "epoch e/E [####........] b/B  N samples/s  ETA m:ss" if so.
  bool due(const BatchInfo& b, std::string& head);
  void draw(std::string line);
  void clear();

 private:
  bool on_, drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace mt::cli
