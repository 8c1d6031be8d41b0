// The min-norm solver table (issue "Many tasks that work"): per K, how far each
// solver of mtl/solvers/min_norm.h stops from the optimum on the hard families
// of min_norm_cases.h, and what a solve costs. A benchmark, not a test.
//
// For each case the optimum f* comes from the long-double reference
// (min_norm_reference: exact enumeration for K <= 10; for larger K the least
// f among the reference's and the three solvers' alphas, in long double, with
// the certified lower bound max 2 min_t (M b)_t - f(b) over the same alphas
// printed as a check). The relative gap of a solver is (f(alpha) - f*) / f*,
// over the cases with f* > 1e-13 max_t M_tt; the others are zero optima (0 in
// the hull; f* is rounding noise of M), where the column "zero optima" gives
// the worst (f(alpha) - f*) / max_t M_tt instead.
// Time per solve: the median of `repeats` timed calls, the three solvers taking
// turns case by case, so a busy machine hits them alike.
#include "apps/experiments/solver_table.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "apps/experiments/min_norm_cases.h"
#include "apps/experiments/timing.h"
#include "engine/error.h"
#include "mtl/solvers/min_norm.h"

namespace mt {

namespace {


std::vector<int> parse_ints(const std::string& s, const char* flag) {
  std::vector<int> out;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t comma = std::min(s.find(',', at), s.size());
    const std::string tok = s.substr(at, comma - at);
    char* end = nullptr;
    const long v = std::strtol(tok.c_str(), &end, 10);
    if (tok.empty() || *end != '\0' || v < 3 || v > 64)
      throw Error(std::string("solver-table: ") + flag + " wants integers in 3..64, got '" + tok + "'");
    out.push_back(int(v));
    at = comma + 1;
  }
  return out;
}

int parse_int(const std::string& s, const char* flag, int lo) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < lo)
    throw Error(std::string("solver-table: ") + flag + " wants an integer >= " + std::to_string(lo) + ", got '" + s + "'");
  return int(v);
}

struct Stats {
  std::vector<double> rel_gap, seconds, iterations;
  int converged = 0, capped = 0, zero_optima = 0;
  std::string worst_family;
  double worst = 0.0, worst_zero = 0.0;  // relative gap; (f - f*) / max_t M_tt on zero optima
};

}  // namespace

int cmd_solver_table(int argc, char** argv) {
  std::vector<int> Ks = {3, 5, 10, 20, 40};
  int per_family = 20, repeats = 5, max_iter = MinNormOptions{}.max_iter;
  uint64_t seed = 2024;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error("solver-table: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--tasks") Ks = parse_ints(value(), "--tasks");
    else if (a == "--per-family") per_family = parse_int(value(), "--per-family", 1);
    else if (a == "--repeats") repeats = parse_int(value(), "--repeats", 1);
    else if (a == "--max-iter") max_iter = parse_int(value(), "--max-iter", 0);
    else if (a == "--seed") seed = uint64_t(parse_int(value(), "--seed", 0));
    else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: solver-table [--tasks 3,5,10,20,40] [--per-family 20] [--repeats 5] [--max-iter 250] [--seed 2024]\n"
          "Per K: median and worst relative gap (f(alpha) - f*) / f* of each min-norm solver against\n"
          "a long-double reference (zero optima, f* <= 1e-13 max_t M_tt: worst (f - f*) / max_t M_tt),\n"
          "over per-family cases of each of the families %s;\n"
          "time per solve (median of --repeats calls).\n",
          "random, rank-deficient, nearly-collinear, dominating, conflicting, badly-scaled");
      return 0;
    } else {
      throw Error("solver-table: unknown flag '" + a + "' (try --help)");
    }
  }

  using Clock = std::chrono::steady_clock;
  const std::vector<std::string>& names = min_norm_algo_names();
  std::printf("| K | solver | cases | median rel. gap | worst rel. gap (family) | zero optima: cases, worst excess / max M_tt | "
              "converged | hit cap | mean iters | time per solve (us) |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (int K : Ks) {
    const std::vector<MinNormCase> cases = hard_min_norm_cases(K, per_family, seed);
    std::vector<Stats> st(names.size());
    long double worst_certificate = 0;  // (f* - lower bound) / f*: how sure f* is (K > 10, non-zero optima)
    for (const MinNormCase& c : cases) {
      std::vector<MinNormResult> res(names.size());
      std::vector<std::vector<double>> times(names.size());
      for (int r = 0; r < repeats; ++r)
        for (size_t s = 0; s < names.size(); ++s) {
          MinNormOptions opt;
          opt.algo = MinNormAlgo(s);
          opt.max_iter = max_iter;
          const auto t0 = Clock::now();
          res[s] = min_norm(c.M, K, opt);
          times[s].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
        }
      const MinNormReference ref = min_norm_reference(c.M, K);
      long double f_star = ref.upper, lower = ref.lower;
      std::vector<long double> f(names.size());
      for (size_t s = 0; s < names.size(); ++s) {
        f[s] = objective_ld(c.M, res[s].alpha);
        if (!ref.exact) {
          f_star = std::min(f_star, f[s]);
          lower = std::max(lower, lower_bound_ld(c.M, res[s].alpha));
        }
      }
      double max_diag = 0.0;
      for (int t = 0; t < K; ++t) max_diag = std::max(max_diag, c.M[size_t(t) * K + t]);
      const bool zero_optimum = f_star <= 1e-13L * max_diag;
      if (!ref.exact && !zero_optimum) worst_certificate = std::max(worst_certificate, (f_star - lower) / f_star);
      for (size_t s = 0; s < names.size(); ++s) {
        Stats& x = st[s];
        const long double excess = std::max(0.0L, f[s] - f_star);
        if (zero_optimum) {
          ++x.zero_optima;
          x.worst_zero = std::max(x.worst_zero, double(excess / max_diag));
        } else {
          const double rel = double(excess / f_star);
          x.rel_gap.push_back(rel);
          if (rel >= x.worst) {
            x.worst = rel;
            x.worst_family = c.family;
          }
        }
        x.seconds.push_back(median(times[s]));
        x.iterations.push_back(res[s].iterations);
        x.converged += res[s].converged;
        x.capped += res[s].iterations >= max_iter;
      }
    }
    for (size_t s = 0; s < names.size(); ++s) {
      const Stats& x = st[s];
      double iters = 0;
      for (double v : x.iterations) iters += v;
      std::printf("| %d | %s | %zu | %.1e | %.1e (%s) | %d, %.1e | %d | %d | %.1f | %.1f |\n", K, names[s].c_str(),
                  cases.size(), median(x.rel_gap), x.worst, x.worst_family.c_str(), x.zero_optima, x.worst_zero,
                  x.converged, x.capped, iters / double(cases.size()), 1e6 * median(x.seconds));
    }
    if (K > kEnumerateMaxK)
      std::printf("| %d | (f* for K > %d) | certified on the non-zero optima: (f* - lower bound) / f* <= %.1e |||||||||\n",
                  K, kEnumerateMaxK, double(worst_certificate));
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace mt
