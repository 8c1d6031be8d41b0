// Small helpers the two training loops share (mtl/train/trainer.cpp and
// mtl/train/sparse_trainer.cpp; data_sources.cpp uses split): number and list
// formatting, string splitting, the earlier rows of a resumed run's metrics.csv
// and its rewrite, metadata look-up, the observer's batch report and the
// divergence check on parameters.
#pragma once
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "mtl/methods/method.h"
#include "mtl/train/trainer.h"
#include "optim/optimizer.h"

namespace mt::run_util {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// "a,b,,c" -> {"a", "b", "", "c"} (empty pieces kept; "" -> {""}).
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  out.push_back(cur);
  return out;
}

inline std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); i++) s += (i ? sep : "") + v[i];
  return s;
}

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

// Rows of an earlier metrics.csv for epochs 1..upto, when its header matches.
inline std::vector<std::string> previous_rows(const std::string& path, const std::string& header, int upto) {
  std::vector<std::string> rows;
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line) || line != header) return rows;
  while (std::getline(in, line)) {
    const int e = std::atoi(line.c_str());
    if (e >= 1 && e <= upto) rows.push_back(line);
  }
  return rows;
}

inline const std::string* find_meta(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

// The run's directory and its config.json, written when the first epoch's files are
// (so a run that fails before it leaves nothing behind); `ready` remembers it.
inline void make_out_dir_once(bool& ready, const std::string& dir, const std::string& config_path,
                              const std::string& config_text) {
  if (ready) return;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the directory: " + ec.message());
  write_text_atomic(config_path, config_text);
  ready = true;
}

// metrics.csv: the header and one line per row, replacing the file atomically.
inline void write_metrics_csv(const std::string& path, const std::string& header, const std::vector<std::string>& rows) {
  std::string csv = header + "\n";
  for (const auto& r : rows) csv += r + "\n";
  write_text_atomic(path, csv);
}

// What both loops report to the observer after a batch: epoch, batch and global step
// counters, the step's losses and weights, and the epoch's samples and time so far.
inline BatchInfo batch_info(int epoch, int epochs, int batch, int batches, int64_t global_step,
                            const StepStats& st, int64_t samples, Clock::time_point epoch_start) {
  BatchInfo bi;
  bi.epoch = epoch;
  bi.epochs = epochs;
  bi.batch = batch;
  bi.batches = batches;
  bi.global_step = global_step;
  bi.loss = st.loss;
  bi.weight = st.weight;
  bi.samples = samples;
  bi.seconds = seconds_between(epoch_start, Clock::now());
  return bi;
}

inline void check_all_finite(const NamedTensors& params, int epoch, const std::string& last_ckpt) {
  for (const auto& [name, p] : params) {
    const float* d = p.data();
    for (int64_t i = 0; i < p.numel(); i++)
      if (!std::isfinite(d[i]))
        throw DivergedError("non-finite parameter '" + name + "' (" + nonfinite_name(d[i]) + ") after epoch " +
                            std::to_string(epoch) + "; stopping \xe2\x80\x94 " +
                            (last_ckpt.empty() ? "no checkpoint yet" : "last good checkpoint: " + last_ckpt));
  }
}

}  // namespace mt::run_util
