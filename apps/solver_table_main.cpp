// build/solver-table: runs apps/experiments/solver_table.cpp on its own (`make build/solver-table`).
#include <cstdio>

#include "apps/experiments/solver_table.h"
#include "engine/error.h"

int main(int argc, char** argv) {
  try {
    return mt::cmd_solver_table(argc, argv);
  } catch (const mt::Error& e) {
    std::fprintf(stderr, "solver-table: error: %s\n", e.what());
    return 2;
  }
}
