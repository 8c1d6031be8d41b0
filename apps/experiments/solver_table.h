// `solver-table`: the min-norm solver table of issue "Many tasks that work"
// (relative gap to a long-double optimum and time per solve, per K and
// solver, on the hard families of min_norm_cases.h). See solver_table.cpp.
#pragma once

namespace mt {

// Prints a markdown table on stdout; returns the exit status. Throws mt::Error
// for a bad flag.
int cmd_solver_table(int argc, char** argv);

}  // namespace mt
