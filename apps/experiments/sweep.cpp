// `mtl sweep` (see sweep.h).
#include "apps/experiments/sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/report/svg_plot.h"
#include "mtl/methods/chebyshev.h"
#include "mtl/solvers/pareto.h"
#include "mtl/train/run_dir.h"

namespace mt {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); i++) s += (i ? sep : "") + v[i];
  return s;
}

// The 1-based line numbers of the lines of a preference file that hold a vector (the
// same rule as parse_pref_file: '#' starts a comment, commas and whitespace separate).
std::vector<int> vector_lines(const std::string& path) {
  std::vector<int> lines;
  std::ifstream in(path);
  std::string line;
  for (int n = 1; std::getline(in, line); n++) {
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    for (char& ch : line)
      if (ch == ',') ch = ' ';
    std::istringstream ss(line);
    std::string tok;
    if (ss >> tok) lines.push_back(n);
  }
  return lines;
}

// Negative, non-finite or all-zero entries; "" when fine.
std::string pref_problem(const std::vector<double>& k) {
  for (size_t i = 0; i < k.size(); i++) {
    if (!std::isfinite(k[i])) return "preference k_" + std::to_string(i) + " is not finite";
    if (k[i] < 0) return "negative preference k_" + std::to_string(i) + " = " + num(k[i]) + " (must be >= 0)";
  }
  if (std::all_of(k.begin(), k.end(), [](double x) { return x == 0; })) return "all preferences are zero";
  return "";
}

std::vector<std::vector<double>> read_pref_file(const std::string& path) {
  try {
    return parse_pref_file(path);
  } catch (const Error& e) {
    throw UsageError(std::string("--prefs-file: ") + e.what());
  }
}

std::string resolve_out(const SweepConfig& c) {
  return c.out.empty() ? "runs/" + c.base.dataset + "-sweep-s" + std::to_string(c.base.seed) : c.out;
}

}  // namespace

void validate_sweep_config(const SweepConfig& c) {
  if (c.base.method != "chebyshev-al")
    throw UsageError("mtl sweep trains --method chebyshev-al only (got --method " + c.base.method + ")");
  TrainConfig base = c.base;
  base.prefs = {1.0};  // per vector, checked below
  base.ref_point.clear();
  base.out = "";
  validate_train_config(base);
  if (!c.base.resume.empty()) throw UsageError("mtl sweep does not take --resume");
  if (c.base.stop_after != 0) throw UsageError("mtl sweep does not take --stop-after");
  if (c.prefs_file.empty() == (c.grid == 0))
    throw UsageError(c.prefs_file.empty() ? "mtl sweep needs --prefs-file FILE or --grid N"
                                          : "--prefs-file and --grid cannot be used together");
  if (c.grid < 0) throw UsageError("--grid must be >= 1, got " + std::to_string(c.grid));
  if (c.sparsity_pref) {
    if (c.grid == 0) throw UsageError("--sparsity-pref is only used with --grid");
    if (!(*c.sparsity_pref >= 0 && *c.sparsity_pref < 1))
      throw UsageError("--sparsity-pref must be in [0, 1), got " + num(*c.sparsity_pref));
  }
  if (c.front != "objectives" && c.front != "metrics")
    throw UsageError("unknown --front '" + c.front + "' (valid: objectives, metrics)");
  for (double r : c.hv_ref)
    if (!std::isfinite(r)) throw UsageError("--hv-ref must be finite");
  if (!c.prefs_file.empty()) {
    const auto vecs = read_pref_file(c.prefs_file);
    const std::vector<int> lines = vector_lines(c.prefs_file);
    for (size_t i = 0; i < vecs.size(); i++) {
      const std::string p = pref_problem(vecs[i]);
      if (!p.empty())
        throw UsageError("--prefs-file: " + c.prefs_file + ":" + std::to_string(i < lines.size() ? lines[i] : 0) +
                         ": " + p);
    }
  }
  const std::string out = resolve_out(c);
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec)) throw UsageError("--out " + out + " exists and is not a directory");
    const bool holds = fs::exists(fs::path(out) / "sweep.csv", ec) || fs::exists(fs::path(out) / "run-0", ec);
    if (holds && !c.force)
      throw UsageError("--out " + out + " already holds a sweep (sweep.csv, run-0/); replace it with --force, " +
                       "or choose another --out");
  }
}

std::vector<std::vector<double>> sweep_vectors(const SweepConfig& c, int K) {
  std::vector<std::vector<double>> out;
  if (!c.prefs_file.empty()) {
    out = read_pref_file(c.prefs_file);
    const std::vector<int> lines = vector_lines(c.prefs_file);
    for (size_t i = 0; i < out.size(); i++) {
      const std::string where = "--prefs-file: " + c.prefs_file + ":" + std::to_string(i < lines.size() ? lines[i] : 0);
      if ((int)out[i].size() != K + 1)
        throw UsageError(where + ": " + std::to_string(out[i].size()) + " values, but the data set has " +
                         std::to_string(K) + " task" + (K == 1 ? "" : "s") + ": each vector needs " +
                         std::to_string(K + 1) + " (k_0 for sparsity, then one per task)");
      const std::string p = pref_problem(out[i]);
      if (!p.empty()) throw UsageError(where + ": " + p);
    }
    return out;
  }
  if (c.sparsity_pref) {
    const double k0 = *c.sparsity_pref;
    for (const auto& g : pref_grid(K, c.grid)) {
      std::vector<double> k = {k0};
      for (double x : g) k.push_back((1 - k0) * x);
      out.push_back(k);
    }
  } else {
    out = pref_grid(K + 1, c.grid);
  }
  return out;
}

SweepResult run_sweep(const SweepConfig& config, SweepObserver* obs) {
  const auto t_start = Clock::now();
  validate_sweep_config(config);
  SweepConfig c = config;
  c.out = resolve_out(c);
  SweepResult res;

  TrainConfig base = c.base;
  base.method = "chebyshev-al";
  base.prefs = {1.0};
  base = resolve_train_config(base);
  const TrainData data = load_train_data(base, *base.val, base.seed);
  const std::vector<Task> tasks = tasks_for_set(*base.model, data.train);
  const Shape chw = {data.train.c, data.train.h, data.train.w};
  const int K = data.train.num_tasks();
  const std::vector<std::vector<double>> vectors = sweep_vectors(c, K);
  res.config = c;
  res.tasks = data.train.task_names;
  res.objective_names = objective_names(res.tasks);
  if (c.front == "objectives") {
    for (const auto& o : res.objective_names) res.front_axes.push_back("f_" + o);
  } else {
    res.front_axes.push_back("group density");
    for (const auto& t : res.tasks) res.front_axes.push_back("error " + t);
  }
  if (!c.hv_ref.empty() && (int)c.hv_ref.size() != K + 1)
    throw UsageError("--hv-ref needs " + std::to_string(K + 1) + " values (one per objective), got " +
                     std::to_string(c.hv_ref.size()));
  const fs::path out(c.out);
  res.csv_path = (out / "sweep.csv").string();
  res.json_path = (out / "sweep.json").string();
  if (obs) obs->on_sweep_start((int)vectors.size(), res.objective_names);

  auto write_files = [&]() {
    // the front over the runs that finished
    std::vector<std::vector<double>> pts;
    std::vector<size_t> idx;
    for (size_t i = 0; i < res.rows.size(); i++)
      if (res.rows[i].status == "ok") {
        pts.push_back(res.rows[i].point);
        idx.push_back(i);
      }
    std::vector<bool> nd = pts.empty() ? std::vector<bool>{} : non_dominated(pts);
    for (auto& r : res.rows) r.non_dominated = false;
    for (size_t j = 0; j < idx.size(); j++) res.rows[idx[j]].non_dominated = nd[j];
    const size_t d = (size_t)K + 1;
    res.reference = c.hv_ref;
    if (res.reference.empty() && !pts.empty()) {
      for (size_t j = 0; j < d; j++) {
        double m = pts[0][j];
        for (const auto& p : pts) m = std::max(m, p[j]);
        res.reference.push_back(m > 0 ? 1.1 * m : m + 0.1);
      }
    }
    res.hypervolume.reset();
    if (!pts.empty() && (d == 2 || d == 3)) res.hypervolume = hypervolume(pts, res.reference);

    // sweep.csv
    std::vector<std::string> cols = {"run"};
    for (const auto& o : res.objective_names) cols.push_back("k_" + o);
    cols.push_back("status");
    for (const auto& o : res.objective_names) cols.push_back("f_" + o);
    for (const auto& t : res.tasks) cols.push_back("test_acc_" + t);
    for (const char* s : {"group_sparsity", "param_sparsity", "compression", "non_dominated", "out"}) cols.push_back(s);
    std::string csv = join(cols, ",") + "\n";
    for (const auto& r : res.rows) {
      std::vector<std::string> v = {std::to_string(r.run)};
      for (double k : r.prefs) v.push_back(num(k));
      std::string status = r.status;
      for (char& ch : status)
        if (ch == ',' || ch == '\n') ch = ';';
      v.push_back(status);
      const bool ok = r.status == "ok";
      const nlohmann::ordered_json& rj = r.result.result;
      for (size_t j = 0; j < d; j++) v.push_back(ok ? num(rj["objectives"][j].get<double>()) : "");
      for (int t = 0; t < K; t++) v.push_back(ok ? num(rj["test_acc"][res.tasks[t]].get<double>()) : "");
      for (const char* key : {"group_sparsity", "param_sparsity", "compression"})
        v.push_back(ok ? num(rj[key].get<double>()) : "");
      v.push_back(r.non_dominated ? "1" : "0");
      v.push_back(r.result.config.out);
      csv += join(v, ",") + "\n";
    }
    write_text_atomic(res.csv_path, csv);

    // front.svg: every pair of objectives, each point tagged with its run
    if (!pts.empty()) {
      res.svg_path = (out / "front.svg").string();
      std::string title = "Chebyshev-AL sweep: " + std::to_string(pts.size()) + " runs, " + c.front;
      if (res.hypervolume) title += ", hypervolume " + num(*res.hypervolume);
      std::vector<std::string> tags;
      for (size_t i : idx) tags.push_back(std::to_string(res.rows[i].run));
      write_text_atomic(res.svg_path, report::front_svg(pts, nd, res.front_axes, title, res.reference, {}, tags));
    }

    // sweep.json
    nlohmann::ordered_json j;
    j["command"] = "sweep";
    j["dataset"] = c.base.dataset;
    j["model"] = *base.model;
    j["variant"] = *base.al_variant;
    j["tasks"] = res.tasks;
    j["objective_names"] = res.objective_names;
    if (!c.prefs_file.empty()) j["prefs_file"] = c.prefs_file;
    else j["grid"] = c.grid;
    if (c.sparsity_pref) j["sparsity_pref"] = *c.sparsity_pref;
    j["vectors"] = vectors;
    j["front"] = c.front;
    j["front_axes"] = res.front_axes;
    j["reference_point"] = res.reference;
    j["reference_rule"] = c.hv_ref.empty() ? "1.1 x per-objective max over the runs" : "--hv-ref";
    if (res.hypervolume) j["hypervolume"] = *res.hypervolume;
    else j["hypervolume"] = nullptr;
    std::vector<int> front;
    for (const auto& r : res.rows)
      if (r.non_dominated) front.push_back(r.run);
    j["non_dominated"] = front;
    nlohmann::ordered_json runs = nlohmann::ordered_json::array();
    for (const auto& r : res.rows) {
      nlohmann::ordered_json o;
      o["run"] = r.run;
      o["prefs"] = r.prefs;
      o["status"] = r.status;
      o["point"] = r.point;
      o["non_dominated"] = r.non_dominated;
      if (r.status == "ok") o["result"] = r.result.result;
      runs.push_back(o);
    }
    j["runs"] = runs;
    j["runs_done"] = res.rows.size();
    j["runs_total"] = vectors.size();
    j["wall_s"] = std::chrono::duration<double>(Clock::now() - t_start).count();
    write_text_atomic(res.json_path, j.dump(2) + "\n");
  };

  for (size_t i = 0; i < vectors.size(); i++) {
    if (obs) obs->on_run_start((int)i, (int)vectors.size(), vectors[i]);
    SweepRow row;
    row.run = (int)i;
    row.prefs = vectors[i];
    TrainConfig rc = c.base;
    rc.method = "chebyshev-al";
    rc.prefs = vectors[i];
    rc.out = (out / ("run-" + std::to_string(i))).string();
    rc.force = c.force;
    try {
      row.result = train([&] { return make_model(*base.model, tasks, chw); }, data, rc,
                         obs ? obs->run_observer() : nullptr);
      row.status = "ok";
      const nlohmann::ordered_json& r = row.result.result;
      if (c.front == "objectives") {
        row.point = r["objectives"].get<std::vector<double>>();
      } else {
        row.point.push_back(1.0 - r["group_sparsity"].get<double>() / 100.0);
        for (const auto& t : res.tasks) row.point.push_back(1.0 - r["test_acc"][t].get<double>());
      }
    } catch (const DivergedError& e) {
      row.status = std::string("diverged: ") + e.what();
      row.result.config = resolve_train_config(rc);
    }
    res.rows.push_back(row);
    write_files();
    if (obs) obs->on_run_end(res.rows.back());
  }
  res.wall_s = std::chrono::duration<double>(Clock::now() - t_start).count();
  return res;
}

}  // namespace mt
