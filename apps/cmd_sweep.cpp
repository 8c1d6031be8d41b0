// mtl sweep: Chebyshev-AL runs over preference vectors, the Pareto front and its hypervolume.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/experiments/sweep.h"
#include "apps/report/report.h"

namespace mt::cli {

namespace {

// Every run's settings come through mtl train's own flags (into `run`), the sweep's into `sweep`.
struct SweepArgs {
  TrainArgs run = [] {
    TrainArgs t;
    t.c.method = "chebyshev-al";
    return t;
  }();
  SweepConfig sweep;
};
using A = SweepArgs;

std::vector<Flag<A>> sweep_flags() {
  const char* g = "vectors and front";
  std::vector<Flag<A>> flags = {
      field<A>("prefs-file", "FILE", g, "one vector per line (commas or spaces, '#' comments)",
               [](A& a) -> auto& { return a.sweep.prefs_file; }),
      field<A>("grid", "N", g, "the simplex grid {n_i / N}: C(N+K, K) vectors", [](A& a) -> auto& { return a.sweep.grid; }),
      field<A>("sparsity-pref", "K0", g, "with --grid: fix k_0 and grid the task weights, k = (K0, (1-K0) g)",
               [](A& a) -> auto& { return a.sweep.sparsity_pref; }),
      field<A>("front", "SPACE", g,
               "objectives: (f_0 group-norm sum, test loss per task) |\n"
               "metrics: (1 - group sparsity, test error per task)",
               [](A& a) -> auto& { return a.sweep.front; }),
      field<A>("hv-ref", "R0,R1,..", g, "hypervolume reference point  [1.1 x the per-objective max over the runs]",
               [](A& a) -> auto& { return a.sweep.hv_ref; }),
  };
  for (const auto& f : train_flags()) {
    if (f.name == "prefs" || f.name == "resume" || f.name == "stop-after") continue;  // per run
    Flag<A> s = adapt<A>(f, [](A& a) -> TrainArgs& { return a.run; });
    if (f.name == "out") s.help = "[runs/<dataset>-sweep-s<seed>]; run i trains into OUT/run-<i>/";
    if (f.name == "force") s.help = "replace an earlier sweep's files in --out";
    if (f.name == "json") s.help = "print one JSON object (sweep.json without the runs) as the last line";
    if (f.name == "report") s.help = "write OUT/report.html (the front, linked to each run's report) at the end";
    if (f.name == "method") {
      s.help = "chebyshev-al (the only method a sweep trains)";
      s.show = [] { return std::string("chebyshev-al"); };
    }
    flags.push_back(s);
  }
  return flags;
}

class SweepConsole : public SweepObserver {
 public:
  explicit SweepConsole(bool quiet) : quiet_(quiet), run_(quiet) {}
  void on_sweep_start(int runs, const std::vector<std::string>& names) override {
    if (quiet_) return;
    std::printf("mtl sweep: %d preference vectors over (%s)\n", runs, join(names, ", ").c_str());
    std::fflush(stdout);
  }
  void on_run_start(int run, int runs, const std::vector<double>& prefs) override {
    run_.set_prefix("[" + std::to_string(run + 1) + "/" + std::to_string(runs) + "] ");
    if (quiet_) return;
    std::printf("[%d/%d] k = (%s)\n", run + 1, runs, to_text(prefs).c_str());
    std::fflush(stdout);
  }
  void on_run_end(const SweepRow& row) override {
    run_.clear();
    if (quiet_) return;
    if (row.status != "ok") {
      std::printf("[%d] %s\n", row.run + 1, row.status.c_str());
    } else {
      const nlohmann::ordered_json& r = row.result.result;
      std::vector<double> acc;
      for (const auto& t : row.result.info.tasks) acc.push_back(r["test_acc"][t].get<double>());
      std::printf("[%d] test accuracy %s  group sparsity %.2f%%  objectives %s\n", row.run + 1,
                  per_task(row.result.info.tasks, row.result.info.metrics, acc).c_str(),
                  r["group_sparsity"].get<double>(), to_text(r["objectives"].get<std::vector<double>>()).c_str());
    }
    std::fflush(stdout);
  }
  TrainObserver* run_observer() override { return &run_; }
  void clear() { run_.clear(); }

 private:
  bool quiet_;
  Console run_;
};

}  // namespace

int cmd_sweep(int argc, char** argv) {
  static const FlagTable<A> table("sweep", sweep_flags());
  A a;
  if (!table.parse(argc, argv, a)) {
    std::printf(
        "usage: mtl sweep (--prefs-file FILE | --grid N) [flags]\n\n"
        "One `mtl train --method chebyshev-al` run per preference vector k = (k_0 sparsity, k_1..k_K),\n"
        "each into OUT/run-<i>/, then OUT/sweep.csv (one row per vector: k, final objectives, test\n"
        "accuracies, group sparsity, non-dominated flag), OUT/sweep.json (hypervolume and its\n"
        "reference point, every run's result) and OUT/front.svg (every pair of objectives);\n"
        "--report adds OUT/report.html and each run's OUT/run-<i>/report.html (see 'mtl report').\n\n%s"
        "  -h, --help            this text\n",
        table.help().c_str());
    return 0;
  }
  SweepConfig c = a.sweep;
  c.base = a.run.c;
  c.out = c.base.out;
  c.force = c.base.force;
  c.base.out.clear();
  validate_sweep_config(c);
  SweepConsole con(a.run.quiet);
  SweepResult res;
  try {
    res = run_sweep(c, &con);
  } catch (...) {
    con.clear();
    throw;
  }
  if (!a.run.quiet) {
    int nd = 0;
    for (const auto& row : res.rows) nd += row.non_dominated;
    std::printf("done: %zu runs in %.1f s; %d non-dominated in the %s space; hypervolume %s (reference %s)\n",
                res.rows.size(), res.wall_s, nd, c.front.c_str(),
                res.hypervolume ? short_num(*res.hypervolume).c_str() : "n/a", to_text(res.reference).c_str());
    std::printf("files: %s, %s%s%s\n", res.csv_path.c_str(), res.json_path.c_str(), res.svg_path.empty() ? "" : ", ",
                res.svg_path.c_str());
  }
  if (a.run.report) {
    const std::string path = report::write_report(res.config.out).back();
    if (!a.run.quiet) std::printf("report: %s\n", path.c_str());
  }
  if (a.run.json) {
    nlohmann::ordered_json j;
    j["command"] = "sweep";
    j["runs"] = res.rows.size();
    j["objective_names"] = res.objective_names;
    j["front"] = c.front;
    j["reference_point"] = res.reference;
    if (res.hypervolume) j["hypervolume"] = *res.hypervolume;
    else j["hypervolume"] = nullptr;
    std::vector<int> front;
    for (const auto& row : res.rows)
      if (row.non_dominated) front.push_back(row.run);
    j["non_dominated"] = front;
    j["csv"] = res.csv_path;
    j["json"] = res.json_path;
    j["svg"] = res.svg_path;
    j["wall_s"] = std::round(res.wall_s * 1000) / 1000;
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

}  // namespace mt::cli
