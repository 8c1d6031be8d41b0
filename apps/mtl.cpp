// The `mtl` command: a dispatcher over the subcommands of apps/commands.h, one
// file each (apps/cmd_*.cpp), each with its table of flags (apps/cli.h).
//
// Errors are one line on stderr, "mtl: error: ...", with exit status 2 for a
// bad command line or setting and 1 for anything that goes wrong at run time
// (data, files, divergence). Results go to stdout; with --json its last line
// is one JSON object. To add a subcommand, write `int cmd_NAME(int argc,
// char** argv)` (argv[0] is the subcommand's name) and list it in kCommands.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "apps/commands.h"
#include "engine/error.h"
#include "mtl/dist/comm.h"

using namespace mt;
using namespace mt::cli;

namespace {

struct Command {
  const char* name;
  int (*run)(int argc, char** argv);
  const char* summary;
};

const Command kCommands[] = {
    {"train", cmd_train, "train a multi-task model (MultiLeNet on MultiMNIST with MGDA-UB by default)"},
    {"eval", cmd_eval, "evaluate a saved model on its dataset's test set"},
    {"predict", cmd_predict, "write a saved model's per-image, per-task outputs as CSV"},
    {"sweep", cmd_sweep, "chebyshev-al runs over preference vectors, Pareto front, hypervolume"},
    {"bench", cmd_bench, "measure training/inference speed and memory (one JSON object)"},
    {"scale", cmd_scale, "step cost of uniform, MGDA-UB and MGDA as the number of tasks grows"},
    {"export", cmd_export, "write a trained model as dependency-free C (fp32 or int8), pruned groups removed"},
    {"report", cmd_report, "an HTML report with plots of a run or a sweep directory"},
};

void usage(FILE* f) {
  std::fprintf(f, "usage: mtl COMMAND [flags]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(f, "  %-8s %s\n", c.name, c.summary);
  std::fprintf(f, "\n'mtl COMMAND --help' describes a command's flags.\n");
}

int dispatch(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  for (const Command& c : kCommands)
    if (cmd == c.name) return c.run(argc - 1, argv + 1);
  std::string names;
  for (const Command& c : kCommands) names += (names.empty() ? "" : ", ") + std::string(c.name);
  throw UsageError("unknown command '" + cmd + "' (commands: " + names + "; see 'mtl --help')");
}

// Under mpirun (mtl/dist/comm.h) the error names its rank, and ends the whole job.
int report(const std::string& what, int status) {
  std::fflush(stdout);
  const char* rank = dist::launched_by_mpirun() ? std::getenv("OMPI_COMM_WORLD_RANK") : nullptr;
  std::fprintf(stderr, "mtl: error: %s%s\n", rank ? ("rank " + std::string(rank) + ": ").c_str() : "",
               one_line(what).c_str());
  std::fflush(stderr);
  dist::abort_job(status);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const UsageError& e) {
    return report(e.what(), 2);
  } catch (const Error& e) {
    return report(e.what(), 1);
  } catch (const std::exception& e) {
    return report(std::string("internal error: ") + e.what(), 1);
  }
}
