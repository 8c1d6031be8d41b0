// Small helpers of the training code (mtl/train/): number and list formatting,
// string splitting, metadata look-up.
#pragma once
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "mtl/text.h"
#include "optim/optimizer.h"  // exact_str

namespace mt::run_util {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

using text::join;
using text::split;

inline std::string num(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// The value as a human would type it: 0.05, 1e-30, 3.
inline std::string short_num(double v) { return num("%g", v); }

// exact doubles ("%.17g", optim/optimizer.h), comma separated (checkpoint metadata),
// and back ("" -> {})
inline std::string exact_list(const std::vector<double>& v) {
  std::vector<std::string> s;
  for (double x : v) s.push_back(exact_str(x));
  return join(s, ",");
}

inline std::vector<double> parse_doubles(const std::string& s) {
  std::vector<double> v;
  if (s.empty()) return v;
  for (const auto& p : split(s, ',')) v.push_back(std::strtod(p.c_str(), nullptr));
  return v;
}

inline double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / (double)v.size();
}

inline const char* nonfinite_name(double v) { return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"); }

inline std::string parent_dir(const std::string& file) {
  const std::string p = fs::path(file).parent_path().string();
  return p.empty() ? "." : p;
}

inline const std::string* find_meta(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

}  // namespace mt::run_util
