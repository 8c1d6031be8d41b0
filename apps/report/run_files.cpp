// Reading a run's and a sweep's files (see run_files.h).
#include "apps/report/run_files.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "mtl/text.h"

namespace mt::report {

namespace fs = std::filesystem;

namespace {

bool parse_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

}  // namespace

bool MetricsTable::has(const std::string& column) const {
  for (const auto& c : columns)
    if (c == column) return true;
  return false;
}

std::vector<double> MetricsTable::numbers(const std::string& column) const {
  std::vector<double> v;
  for (size_t j = 0; j < columns.size(); j++)
    if (columns[j] == column)
      for (const auto& row : cells) v.push_back(std::strtod(row[j].c_str(), nullptr));
  return v;
}

std::vector<std::string> MetricsTable::text(const std::string& column) const {
  std::vector<std::string> v;
  for (size_t j = 0; j < columns.size(); j++)
    if (columns[j] == column)
      for (const auto& row : cells) v.push_back(row[j]);
  return v;
}

std::vector<std::string> MetricsTable::suffixes(const std::string& prefix) const {
  std::vector<std::string> v;
  for (const auto& c : columns)
    if (c.size() > prefix.size() && c.compare(0, prefix.size(), prefix) == 0) v.push_back(c.substr(prefix.size()));
  return v;
}

MetricsTable read_metrics_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read the file");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string content = ss.str();
  if (content.empty()) throw Error(path + ": the file is empty");
  if (content.back() != '\n') throw Error(path + ": truncated (the last line does not end with a newline)");
  MetricsTable t;
  t.path = path;
  std::istringstream lines(content);
  std::string line;
  std::getline(lines, line);
  t.columns = text::split(line, ',');
  if (t.columns.empty() || t.columns[0] != "epoch")
    throw Error(path + ": line 1 is not a metrics.csv header (its first column is not 'epoch')");
  for (size_t j = 0; j < t.columns.size(); j++)
    if (t.columns[j].empty()) throw Error(path + ": line 1: column " + std::to_string(j + 1) + " has no name");
  double last_epoch = 0;
  for (int n = 2; std::getline(lines, line); n++) {
    const std::string where = path + ": line " + std::to_string(n);
    std::vector<std::string> row = text::split(line, ',');
    if (row.size() != t.columns.size())
      throw Error(where + " has " + std::to_string(row.size()) + " cells, the header " +
                  std::to_string(t.columns.size()) + " (a truncated or ragged file)");
    for (size_t j = 0; j < row.size(); j++) {
      double v = 0;
      if (t.columns[j] == "phase") {
        if (row[j].empty()) throw Error(where + ": the phase is empty");
        continue;
      }
      if (!parse_number(row[j], v))
        throw Error(where + ": column '" + t.columns[j] + "' holds '" + row[j] + "', not a number");
      if (j == 0) {
        if (v != std::floor(v) || v < 1 || v <= last_epoch)
          throw Error(where + ": epoch " + row[j] + " does not follow epoch " + std::to_string((int)last_epoch));
        last_epoch = v;
      }
    }
    t.cells.push_back(std::move(row));
  }
  if (t.cells.empty()) throw Error(path + ": no epochs (a header only)");
  return t;
}

nlohmann::ordered_json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read the file");
  try {
    return nlohmann::ordered_json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    const size_t at = what.find("] ");
    throw Error(path + ": not valid JSON (" + (at == std::string::npos ? what : what.substr(at + 2)) + ")");
  }
}

DirKind dir_kind(const std::string& dir) {
  std::error_code ec;
  if (fs::is_regular_file(fs::path(dir) / "metrics.csv", ec)) return DirKind::Run;
  if (fs::is_regular_file(fs::path(dir) / "sweep.json", ec)) return DirKind::Sweep;
  return DirKind::Neither;
}

}  // namespace mt::report
