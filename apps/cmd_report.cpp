// mtl report: the HTML report of a run or a sweep directory (apps/report/report.h).
#include <cstdio>

#include "apps/commands.h"
#include "apps/report/report.h"

namespace mt::cli {

namespace {

struct ReportArgs {
  std::string out;
};
using A = ReportArgs;

std::vector<Flag<A>> report_flags() {
  return {
      field<A>("out", "FILE", "report", "the HTML file to write  [DIR/report.html]", [](A& a) -> auto& { return a.out; }),
  };
}

}  // namespace

int cmd_report(int argc, char** argv) {
  static const FlagTable<A> table("report", report_flags());
  // The directory is the one argument that is not a flag or a flag's value.
  std::vector<char*> flags = {argv[0]};
  std::vector<std::string> dirs;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a.size() > 1 && a[0] == '-') {
      flags.push_back(argv[i]);
      if (a == "--out" && i + 1 < argc) flags.push_back(argv[++i]);
    } else {
      dirs.push_back(a);
    }
  }
  A a;
  if (!table.parse((int)flags.size(), flags.data(), a)) {
    std::printf(
        "usage: mtl report DIR [--out FILE]\n\n"
        "Write one self-contained HTML file (inline SVG plots; no script, nothing fetched)\n"
        "for DIR, a run directory (`mtl train --out`) or a sweep directory (`mtl sweep --out`),\n"
        "from its own files only, so it works on old runs too.\n"
        "A run: training loss, test (and validation) accuracy or MAE and loss per task, the\n"
        "learning rate, samples/s, the task weights (mean and spread per epoch), the MGDA\n"
        "solver's iterations and optimality gap, Chebyshev-AL's phases, group sparsity per\n"
        "layer, lambda, mu, t and objectives, the best epoch marked; config.json and result.json.\n"
        "A sweep: the front in each pair of objectives (dominated points marked, the\n"
        "hypervolume and its reference point), each point linked to its run's report\n"
        "(written too, as run-<i>/report.html).\n\n%s"
        "  -h, --help            this text\n",
        table.help().c_str());
    return 0;
  }
  if (dirs.empty()) throw UsageError("mtl report needs a run or sweep directory (see 'mtl report --help')");
  if (dirs.size() > 1) throw UsageError("unexpected argument '" + dirs[1] + "' (see 'mtl report --help')");
  const std::vector<std::string> written = report::write_report(dirs[0], a.out);
  std::printf("wrote %s", written.back().c_str());
  if (written.size() > 1) std::printf(" and %zu run reports", written.size() - 1);
  std::printf("\n");
  return 0;
}

}  // namespace mt::cli
