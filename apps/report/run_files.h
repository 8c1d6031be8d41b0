// Reading what a run directory (mtl/train/run_dir.h) or a sweep directory
// (apps/experiments/sweep.h) holds, for the report: strictly, so that a damaged file is
// one clear error naming it rather than a plot of half a run.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mt::report {

// metrics.csv: a header and one row per epoch, every row with the header's number of
// cells, every cell a number except the text column "phase", the file ending with a
// newline (RunDir writes it whole), epochs increasing. Anything else -> mt::Error
// "PATH: ..." naming the line ("truncated" for a last line without its newline).
struct MetricsTable {
  std::string path;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> cells;  // [row][column]

  size_t rows() const { return cells.size(); }
  bool has(const std::string& column) const;
  std::vector<double> numbers(const std::string& column) const;   // empty when absent
  std::vector<std::string> text(const std::string& column) const; // empty when absent
  // The columns starting with `prefix`, in file order, with the prefix removed.
  std::vector<std::string> suffixes(const std::string& prefix) const;
};
MetricsTable read_metrics_csv(const std::string& path);

// A JSON file; mt::Error "PATH: ..." when it cannot be read or parsed.
nlohmann::ordered_json read_json_file(const std::string& path);

// What a directory holds: a run (metrics.csv), a sweep (sweep.json), or neither.
enum class DirKind { Run, Sweep, Neither };
DirKind dir_kind(const std::string& dir);

}  // namespace mt::report
