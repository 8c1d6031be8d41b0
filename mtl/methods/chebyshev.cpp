// Modified weighted Chebyshev scalarisation and augmented Lagrangian (see chebyshev.h).
#include "mtl/methods/chebyshev.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "engine/error.h"
#include "mtl/text.h"

namespace mt {

namespace {

using text::num;

// a_i, with an empty reference point meaning zeros
double ref(const ChebyshevConfig& cfg, std::size_t i) { return cfg.a.empty() ? 0.0 : cfg.a[i]; }

void check_sizes(const char* who, const ChebyshevConfig& cfg, const std::vector<double>& f) {
  if (f.empty()) throw Error(std::string(who) + ": no objective values");
  if (cfg.k.size() != f.size())
    throw Error(std::string(who) + ": " + std::to_string(f.size()) + " objective values but " +
                std::to_string(cfg.k.size()) + " preferences k");
  if (!cfg.a.empty() && cfg.a.size() != f.size())
    throw Error(std::string(who) + ": " + std::to_string(f.size()) + " objective values but " +
                std::to_string(cfg.a.size()) + " reference values a");
}

void check_state(const char* who, const AlState& st, std::size_t n) {
  if (st.lambda.size() != n)
    throw Error(std::string(who) + ": " + std::to_string(n) + " constraints but " +
                std::to_string(st.lambda.size()) + " multipliers lambda");
}

// Parse a whole token as a finite double; false if it is not one.
bool parse_number(const std::string& tok, double& x) {
  if (tok.empty()) return false;
  errno = 0;
  char* end = nullptr;
  x = std::strtod(tok.c_str(), &end);
  return end == tok.c_str() + tok.size() && errno != ERANGE && std::isfinite(x);
}

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const std::size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// g_i = dL/dc_i
std::vector<double> dL_dc(AlVariant variant, const AlState& st, const std::vector<double>& c) {
  std::vector<double> g(c.size());
  for (std::size_t i = 0; i < c.size(); ++i) {
    const double v = st.lambda[i] + st.mu * c[i];
    g[i] = variant == AlVariant::Published ? v : std::max(0.0, v);
  }
  return g;
}

}  // namespace

void ChebyshevConfig::validate(int num_objectives) const {
  if (k.size() != static_cast<std::size_t>(num_objectives))
    throw Error("preference k has " + std::to_string(k.size()) + " entries, expected " +
                std::to_string(num_objectives) + " (sparsity + " +
                std::to_string(num_objectives - 1) + " tasks)");
  bool any_positive = false;
  for (std::size_t i = 0; i < k.size(); ++i) {
    if (!std::isfinite(k[i]))
      throw Error("preference k has a non-finite entry k_" + std::to_string(i) + " = " + num(k[i]));
    if (k[i] < 0.0)
      throw Error("preference k has a negative entry k_" + std::to_string(i) + " = " + num(k[i]));
    if (k[i] > 0.0) any_positive = true;
  }
  if (!any_positive) throw Error("preference k is all zeros");
  if (!a.empty() && a.size() != k.size())
    throw Error("reference point a has " + std::to_string(a.size()) + " entries, expected " +
                std::to_string(k.size()));
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!std::isfinite(a[i]))
      throw Error("reference point a has a non-finite entry a_" + std::to_string(i) + " = " +
                  num(a[i]));
  if (!std::isfinite(eps) || eps < 0.0) throw Error("eps must be finite and >= 0, got " + num(eps));
}

AlVariant parse_al_variant(const std::string& name) {
  if (name == "published") return AlVariant::Published;
  if (name == "standard") return AlVariant::Standard;
  throw Error("unknown augmented Lagrangian variant '" + name + "' (expected published or standard)");
}

const char* al_variant_name(AlVariant v) {
  return v == AlVariant::Published ? "published" : "standard";
}

void AlState::validate(int num_objectives) const {
  if (lambda.size() != static_cast<std::size_t>(num_objectives))
    throw Error("lambda has " + std::to_string(lambda.size()) + " entries, expected " +
                std::to_string(num_objectives));
  for (std::size_t i = 0; i < lambda.size(); ++i)
    if (!std::isfinite(lambda[i]))
      throw Error("lambda has a non-finite entry lambda_" + std::to_string(i) + " = " +
                  num(lambda[i]));
  if (!(mu > 0.0) || !std::isfinite(mu)) throw Error("mu must be > 0, got " + num(mu));
  if (!(rho >= 1.0) || !std::isfinite(rho)) throw Error("rho must be >= 1, got " + num(rho));
}

AlState make_al_state(int num_objectives, double mu, double rho) {
  if (num_objectives < 1)
    throw Error("number of objectives must be >= 1, got " + std::to_string(num_objectives));
  AlState st;
  st.lambda.assign(static_cast<std::size_t>(num_objectives), 1.0 / num_objectives);
  st.mu = mu;
  st.rho = rho;
  st.validate(num_objectives);
  return st;
}

std::vector<double> chebyshev_constraints(const ChebyshevConfig& cfg, const std::vector<double>& f,
                                          double t) {
  check_sizes("chebyshev_constraints", cfg, f);
  double sum = 0.0;  // sum_j (f_j - a_j)
  for (std::size_t j = 0; j < f.size(); ++j) sum += f[j] - ref(cfg, j);
  std::vector<double> c(f.size());
  for (std::size_t i = 0; i < f.size(); ++i)
    c[i] = cfg.k[i] * (f[i] - ref(cfg, i)) + cfg.k[i] * cfg.eps * sum - t;
  return c;
}

double al_objective(AlVariant variant, const ChebyshevConfig& cfg, const AlState& st,
                    const std::vector<double>& f, double t) {
  const std::vector<double> c = chebyshev_constraints(cfg, f, t);
  check_state("al_objective", st, c.size());
  double L = t;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (variant == AlVariant::Published) {
      L += st.lambda[i] * c[i] + 0.5 * st.mu * c[i] * c[i];  // lambda_i c_i + (mu/2) c_i^2
    } else {
      const double p = std::max(0.0, st.lambda[i] + st.mu * c[i]);
      L += (p * p - st.lambda[i] * st.lambda[i]) / (2.0 * st.mu);
    }
  }
  return L;
}

void al_gradient(AlVariant variant, const ChebyshevConfig& cfg, const AlState& st,
                 const std::vector<double>& f, double t, std::vector<double>& dL_df, double& dL_dt) {
  const std::vector<double> c = chebyshev_constraints(cfg, f, t);
  check_state("al_gradient", st, c.size());
  const std::vector<double> g = dL_dc(variant, st, c);
  // dc_i/df_j = k_i (delta_ij + eps), dc_i/dt = -1
  double kg = 0.0, gsum = 0.0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    kg += cfg.k[i] * g[i];
    gsum += g[i];
  }
  dL_df.resize(f.size());
  for (std::size_t j = 0; j < f.size(); ++j) dL_df[j] = cfg.k[j] * g[j] + cfg.eps * kg;
  dL_dt = 1.0 - gsum;
}

void al_update(AlVariant variant, AlState& st, const std::vector<double>& c) {
  check_state("al_update", st, c.size());
  for (std::size_t i = 0; i < c.size(); ++i) {
    const double v = st.lambda[i] + st.mu * c[i];  // lambda + mu c
    st.lambda[i] = variant == AlVariant::Published ? v : std::max(0.0, v);
  }
  st.mu *= st.rho;
}

double weighted_chebyshev_value(const ChebyshevConfig& cfg, const std::vector<double>& f) {
  check_sizes("weighted_chebyshev_value", cfg, f);
  double sum = 0.0;
  for (std::size_t j = 0; j < f.size(); ++j) sum += f[j] - ref(cfg, j);
  double best = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < f.size(); ++i)
    best = std::max(best, cfg.k[i] * ((f[i] - ref(cfg, i)) + cfg.eps * sum));
  return best;
}

std::vector<double> parse_prefs(const std::string& text) {
  std::vector<double> out;
  if (trim(text).empty()) throw Error("preference list is empty");
  std::size_t start = 0;
  for (int entry = 1;; ++entry) {
    const std::size_t comma = text.find(',', start);
    const std::string tok = trim(text.substr(start, comma == std::string::npos ? std::string::npos
                                                                               : comma - start));
    double x;
    if (!parse_number(tok, x))
      throw Error("preference list '" + text + "': entry " + std::to_string(entry) + " '" + tok +
                  "' is not a number");
    out.push_back(x);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<std::vector<double>> parse_pref_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open preference file " + path);
  std::vector<std::vector<double>> out;
  std::string line;
  int first_line = 0;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    const std::size_t hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    for (char& ch : line)
      if (ch == ',') ch = ' ';
    std::istringstream ss(line);
    std::vector<double> v;
    std::string tok;
    while (ss >> tok) {
      double x;
      if (!parse_number(tok, x))
        throw Error(path + ":" + std::to_string(lineno) + ": '" + tok + "' is not a number");
      v.push_back(x);
    }
    if (v.empty()) continue;
    if (!out.empty() && v.size() != out[0].size())
      throw Error(path + ":" + std::to_string(lineno) + ": " + std::to_string(v.size()) +
                  " values, but line " + std::to_string(first_line) + " has " +
                  std::to_string(out[0].size()));
    if (out.empty()) first_line = lineno;
    out.push_back(std::move(v));
  }
  if (in.bad()) throw Error("error reading preference file " + path);
  if (out.empty()) throw Error("preference file " + path + " has no preference vectors");
  return out;
}

std::vector<std::vector<double>> pref_grid(int num_objectives, int steps) {
  if (num_objectives < 1)
    throw Error("pref_grid: number of objectives must be >= 1, got " + std::to_string(num_objectives));
  if (steps < 1) throw Error("pref_grid: steps must be >= 1, got " + std::to_string(steps));
  std::vector<std::vector<double>> out;
  std::vector<int> n(static_cast<std::size_t>(num_objectives), 0);
  // n_0..n_{m-2} free with the running sum <= steps, n_{m-1} = the rest
  std::function<void(int, int)> rec = [&](int i, int left) {
    if (i == num_objectives - 1) {
      n[i] = left;
      std::vector<double> k(n.size());
      for (std::size_t j = 0; j < n.size(); ++j) k[j] = double(n[j]) / double(steps);
      out.push_back(std::move(k));
      return;
    }
    for (int v = 0; v <= left; ++v) {
      n[i] = v;
      rec(i + 1, left - v);
    }
  };
  rec(0, steps);
  return out;
}

}  // namespace mt
