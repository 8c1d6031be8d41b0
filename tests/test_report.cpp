// The run report (apps/report/): the HTML of a tiny MGDA-UB run, a uniform run, a tiny
// Chebyshev-AL run and a sweep made of such runs is well-formed XML (checked by a small
// parser below), references nothing outside itself, and holds one plot per expected
// quantity with one series per task; damaged files are one-line errors naming them; the
// SVG kit's ticks and the sweep's front plot.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/report/report.h"
#include "apps/report/run_files.h"
#include "apps/report/svg_plot.h"
#include "engine/rng.h"
#include "mtl/models/model.h"
#include "mtl/text.h"
#include "mtl/train/trainer.h"
#include "tests/cli_util.h"

namespace fs = std::filesystem;
using namespace mt;
using mt::testing::cli::read_file;
using mt::testing::cli::TempDir;
using mt::testing::cli::write_file;

namespace {

// "" when `s` is well-formed XML after an optional <!DOCTYPE ...>: one root element,
// every element closed in order, attribute values quoted, '&' only in &amp; &lt; &gt;
// &quot; &apos; or &#N; / &#xN;, no '<' inside text or attribute values.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> open;
  bool root_done = false;
  auto is_name = [](char c) { return std::isalnum((unsigned char)c) || c == '-' || c == '_' || c == ':' || c == '.'; };
  auto entity_ok = [&](size_t i) {  // s[i] == '&'
    const size_t semi = s.find(';', i);
    if (semi == std::string::npos || semi - i > 10) return false;
    const std::string e = s.substr(i + 1, semi - i - 1);
    if (e == "amp" || e == "lt" || e == "gt" || e == "quot" || e == "apos") return true;
    if (e.size() >= 2 && e[0] == '#') {
      const bool hex = e[1] == 'x';
      for (size_t k = hex ? 2 : 1; k < e.size(); k++)
        if (!(hex ? std::isxdigit((unsigned char)e[k]) : std::isdigit((unsigned char)e[k]))) return false;
      return e.size() > (hex ? 2u : 1u);
    }
    return false;
  };
  size_t i = 0;
  while (i < s.size() && std::isspace((unsigned char)s[i])) i++;
  if (s.compare(i, 9, "<!DOCTYPE") == 0) i = s.find('>', i) + 1;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '<') {
      if (s.compare(i, 4, "<!--") == 0) {
        const size_t e = s.find("-->", i);
        if (e == std::string::npos) return "unclosed comment";
        i = e + 3;
        continue;
      }
      if (s.compare(i, 2, "</") == 0) {
        size_t j = i + 2;
        while (j < s.size() && is_name(s[j])) j++;
        const std::string name = s.substr(i + 2, j - i - 2);
        if (j >= s.size() || s[j] != '>') return "bad end tag </" + name;
        if (open.empty() || open.back() != name)
          return "</" + name + "> closes <" + (open.empty() ? std::string("nothing") : open.back()) + ">";
        open.pop_back();
        if (open.empty()) root_done = true;
        i = j + 1;
        continue;
      }
      if (root_done) return "content after the root element";
      size_t j = i + 1;
      while (j < s.size() && is_name(s[j])) j++;
      const std::string name = s.substr(i + 1, j - i - 1);
      if (name.empty()) return "a '<' that starts no tag at " + std::to_string(i);
      while (true) {
        while (j < s.size() && std::isspace((unsigned char)s[j])) j++;
        if (j >= s.size()) return "unclosed tag <" + name;
        if (s.compare(j, 2, "/>") == 0) {
          j += 2;
          if (open.empty()) root_done = true;
          break;
        }
        if (s[j] == '>') {
          open.push_back(name);
          j++;
          break;
        }
        size_t k = j;
        while (k < s.size() && is_name(s[k])) k++;
        if (k == j || k >= s.size() || s[k] != '=') return "attribute without a value in <" + name;
        const char q = s[k + 1];
        if (q != '"' && q != '\'') return "unquoted attribute in <" + name;
        const size_t end = s.find(q, k + 2);
        if (end == std::string::npos) return "unclosed attribute in <" + name;
        for (size_t m = k + 2; m < end; m++) {
          if (s[m] == '<') return "'<' in an attribute of <" + name;
          if (s[m] == '&' && !entity_ok(m)) return "bad entity in an attribute of <" + name;
        }
        j = end + 1;
      }
      i = j;
      continue;
    }
    if (c == '&' && !entity_ok(i)) return "bad entity at " + std::to_string(i) + ": " + s.substr(i, 12);
    if (!std::isspace((unsigned char)c) && open.empty()) return "text outside the root element";
    i++;
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  if (!root_done) return "no root element";
  return "";
}

int count_of(const std::string& s, const std::string& needle) {
  int c = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) c++;
  return c;
}

// The <svg> element with id `id`, "" when absent.
std::string plot(const std::string& html, const std::string& id) {
  const size_t at = html.find("id=\"" + id + "\"");
  if (at == std::string::npos) return "";
  const size_t start = html.rfind("<svg", at), end = html.find("</svg>", at);
  return html.substr(start, end - start);
}

bool has_series(const std::string& svg, const std::string& column) {
  return svg.find("class=\"series\" data-series=\"" + column + "\"") != std::string::npos;
}

// Self-contained: nothing fetched, nothing run.
void check_self_contained(const std::string& html) {
  CHECK(xml_problem(html) == "");
  for (const char* bad : {"http:", "https:", "src=", "<script", "<link", "url(", "@import", "<img", "<iframe"})
    CHECK_MESSAGE(html.find(bad) == std::string::npos, bad);
}

// n random 28x28 images with two 10-class tasks (nothing to learn: the report only needs numbers).
MultiImageSet noise_set(int n, uint64_t seed) {
  Rng r(seed);
  MultiImageSet s;
  s.n = n, s.c = 1, s.h = 28, s.w = 28;
  s.task_names = {"left", "right"};
  s.num_classes = {10, 10};
  s.labels.assign(2, {});
  s.values.assign(2, {});
  s.mean = 0.5f, s.std = 0.3f;
  for (int i = 0; i < n * 28 * 28; i++) s.pixels.push_back((uint8_t)r.below(256));
  for (int i = 0; i < n; i++)
    for (int t = 0; t < 2; t++) s.labels[(size_t)t].push_back((int)r.below(10));
  return s;
}

// A tiny run into `out`: 96 training images (16 of them for validation), 32 test, batch 16.
void tiny_run(const std::string& method, const std::string& arch, const fs::path& out) {
  TrainData data;
  data.train = noise_set(96, 1);
  data.test = noise_set(32, 2);
  TrainConfig c;
  c.method = method;
  c.model = arch;
  c.batch = 16;
  c.val = 16;
  c.threads = 1;
  c.out = out.string();
  if (method == "chebyshev-al") {
    c.prefs = {0.01, 0.8, 0.19};
    c.search_iters = 1;
    c.retrain_iters = 2;
    c.epochs_per_iter = 1;
  } else {
    c.epochs = 3;
    c.lr = 0.01;
  }
  const std::vector<Task> tasks = {{"left", 10}, {"right", 10}};
  train([&] { return make_model(arch, tasks, {1, 28, 28}); }, data, c);
}

const std::vector<std::string> kTasks = {"left", "right"};

}  // namespace

TEST_CASE("report: a tiny MGDA-UB run gives well-formed, self-contained HTML with one plot per quantity") {
  TempDir tmp("/tmp/mtl-report-");
  const fs::path run = tmp / "run";
  tiny_run("mgda-ub", "multilenet", run);
  // the spread of alpha over the steps is in metrics.csv beside its mean
  const report::MetricsTable m = report::read_metrics_csv((run / "metrics.csv").string());
  REQUIRE(m.rows() == 3);
  for (const auto& t : kTasks) {
    REQUIRE(m.has("weight_std_" + t));
    for (double sd : m.numbers("weight_std_" + t)) CHECK(sd > 0);  // MGDA-UB's alpha moves from step to step
    REQUIRE(m.has("grad_norm_" + t));  // ||g_t|| at Z, what alpha answers to
    for (double n : m.numbers("grad_norm_" + t)) CHECK(n > 0);
  }
  const std::vector<std::string> written = report::write_report(run.string());
  REQUIRE(written.size() == 1);
  CHECK(written[0] == (run / "report.html").string());
  const std::string html = read_file(run / "report.html");
  check_self_contained(html);
  // plot id -> the metrics.csv columns it draws
  const std::vector<std::pair<std::string, std::vector<std::string>>> expected = {
      {"plot-train-loss", {"train_loss_left", "train_loss_right"}},
      {"plot-test-acc", {"test_acc_left", "test_acc_right", "val_acc_left", "val_acc_right"}},
      {"plot-test-loss", {"test_loss_left", "test_loss_right", "val_loss_left", "val_loss_right"}},
      {"plot-lr", {"lr"}},
      {"plot-throughput", {"train_samples_per_s"}},
      {"plot-weights", {"weight_left", "weight_right"}},
      {"plot-grad-norms", {"grad_norm_left", "grad_norm_right"}},
      {"plot-solver-iterations", {"solver_iterations"}},
      {"plot-solver-gap", {"solver_gap_mean", "solver_gap_max"}},
  };
  for (const auto& e : expected) {  // (no structured binding: clang cannot capture one in CHECK_MESSAGE)
    const std::string& id = e.first;
    const auto& cols = e.second;
    CHECK_MESSAGE(count_of(html, "id=\"" + id + "\"") == 1, id);
    const std::string svg = plot(html, id);
    CHECK_MESSAGE(count_of(svg, "class=\"series\"") == (int)cols.size(), id);
    for (const auto& col : cols) CHECK_MESSAGE(has_series(svg, col), id << ": " << col);
  }
  CHECK(count_of(html, "<svg class=\"plot\"") == (int)expected.size());
  CHECK(count_of(html, "<polygon class=\"band\"") == 2);  // alpha's spread, one band per task
  // the same task has the same colour in every plot
  const std::string left = report::task_colour(0);
  CHECK(plot(html, "plot-train-loss").find("stroke=\"" + left + "\"") != std::string::npos);
  CHECK(plot(html, "plot-weights").find("stroke=\"" + left + "\"") != std::string::npos);
  CHECK(report::task_colour(1) != left);
  // the best epoch is marked on every plot; no Chebyshev-AL section
  int best_epoch = 0;
  const auto b = m.numbers("best");
  for (size_t i = 0; i < b.size(); i++)
    if (b[i] == 1) best_epoch = (int)m.numbers("epoch")[i];
  REQUIRE(best_epoch > 0);
  CHECK(count_of(html, "best: epoch " + std::to_string(best_epoch)) == (int)expected.size());
  CHECK(html.find("plot-lambda") == std::string::npos);
  CHECK(html.find("Configuration (config.json)") != std::string::npos);
  CHECK(html.find("Result (result.json)") != std::string::npos);
}

TEST_CASE("report: constant task weights are a sentence, not a plot; --out elsewhere") {
  TempDir tmp("/tmp/mtl-report-");
  const fs::path run = tmp / "run";
  tiny_run("uniform", "multilenet", run);
  const report::MetricsTable m = report::read_metrics_csv((run / "metrics.csv").string());
  for (const auto& t : kTasks)
    for (double sd : m.numbers("weight_std_" + t)) CHECK(sd == 0);
  CHECK_FALSE(m.has("grad_norm_left"));  // no Gram matrix, no norms
  const std::string out = (tmp / "elsewhere.html").string();
  report::write_report(run.string(), out);
  CHECK_FALSE(fs::exists(run / "report.html"));
  const std::string html = read_file(out);
  check_self_contained(html);
  CHECK(html.find("id=\"plot-weights\"") == std::string::npos);
  CHECK(html.find("The task weights are constant") != std::string::npos);
  CHECK(html.find("plot-solver-gap") == std::string::npos);
}

TEST_CASE("report: a tiny Chebyshev-AL run, then a sweep of two such runs") {
  TempDir tmp("/tmp/mtl-report-");
  const fs::path sweep = tmp / "sweep", run = sweep / "run-0";
  fs::create_directories(sweep);
  tiny_run("chebyshev-al", "mdmtn", run);
  const report::MetricsTable m = report::read_metrics_csv((run / "metrics.csv").string());
  const std::vector<std::string> layers = m.suffixes("layer_sparsity_");
  REQUIRE(layers.size() >= 2);  // per-layer group sparsity is in metrics.csv
  report::write_report(run.string());
  const std::string html = read_file(run / "report.html");
  check_self_contained(html);
  const std::vector<std::string> objectives = {"sparsity", "left", "right"};
  std::vector<std::pair<std::string, std::vector<std::string>>> expected = {
      {"plot-lambda", {"lambda_sparsity", "lambda_left", "lambda_right"}},
      {"plot-c", {"c_sparsity", "c_left", "c_right"}},
      {"plot-mu", {"mu"}},
      {"plot-t", {"t"}},
      {"plot-f0", {"f_sparsity"}},
      {"plot-f-tasks", {"f_left", "f_right"}},
      {"plot-weights", {"weight_left", "weight_right"}},
  };
  std::vector<std::string> sparsity = {"group_sparsity", "param_sparsity"};
  for (const auto& l : layers) sparsity.push_back("layer_sparsity_" + l);
  expected.emplace_back("plot-sparsity", sparsity);
  for (const auto& e : expected) {  // (no structured binding: clang cannot capture one in CHECK_MESSAGE)
    const std::string& id = e.first;
    const auto& cols = e.second;
    const std::string svg = plot(html, id);
    CHECK_MESSAGE(count_of(svg, "class=\"series\"") == (int)cols.size(), id);
    for (const auto& col : cols) CHECK_MESSAGE(has_series(svg, col), id << ": " << col);
  }
  // the two phases are shaded and labelled on every plot
  const int plots = count_of(html, "<svg class=\"plot\"");
  CHECK(plots >= 13);
  CHECK(count_of(html, ">search phase</text>") == plots);
  CHECK(count_of(html, ">retrain phase</text>") == plots);
  CHECK(plot(html, "plot-mu").find("log axis") != std::string::npos);

  // a second run and the sweep.json mtl sweep would write
  fs::copy(run, sweep / "run-1", fs::copy_options::recursive);
  fs::remove(sweep / "run-0" / "report.html");
  write_file(sweep / "sweep.json", R"({"command": "sweep", "dataset": "multimnist", "model": "mdmtn",
    "tasks": ["left", "right"], "objective_names": ["sparsity", "left", "right"], "front": "objectives",
    "front_axes": ["f_sparsity", "f_left", "f_right"], "reference_point": [3.3, 2.75, 2.86],
    "reference_rule": "1.1 x per-objective max over the runs", "hypervolume": 0.125, "non_dominated": [0],
    "runs": [{"run": 0, "prefs": [0.01, 0.8, 0.19], "status": "ok", "point": [2, 2.5, 2.2], "non_dominated": true,
              "result": {"test_acc": {"left": 0.1, "right": 0.12}, "group_sparsity": 30}},
             {"run": 1, "prefs": [0.01, 0.19, 0.8], "status": "ok", "point": [3, 2.5, 2.6], "non_dominated": false,
              "result": {"test_acc": {"left": 0.1, "right": 0.11}, "group_sparsity": 20}},
             {"run": 2, "prefs": [0.01, 0.5, 0.49], "status": "diverged: non-finite loss", "point": [],
              "non_dominated": false}],
    "runs_done": 3, "runs_total": 3})");
  const std::vector<std::string> written = report::write_report(sweep.string());
  REQUIRE(written.size() == 3);  // two runs' reports, then the sweep's
  CHECK(written.back() == (sweep / "report.html").string());
  const std::string sh = read_file(sweep / "report.html");
  check_self_contained(sh);
  CHECK(count_of(sh, "<svg class=\"scatter\"") == 3);  // (f_0, f_1), (f_0, f_2), (f_1, f_2)
  CHECK(count_of(sh, "class=\"point nd\"") == 3);
  CHECK(count_of(sh, "class=\"point dominated\"") == 3);
  CHECK(count_of(sh, "<a href=\"run-0/report.html\">") == 3 + 1);  // each plot's point and the table
  CHECK(count_of(sh, "<a href=\"run-1/report.html\">") == 3 + 1);
  CHECK(count_of(sh, "class=\"reference\"") == 3);
  CHECK(sh.find("0.125 with reference point r = [3.3, 2.75, 2.86]") != std::string::npos);
  CHECK(sh.find("diverged: non-finite loss") != std::string::npos);
  const std::string r0 = read_file(sweep / "run-0" / "report.html");
  check_self_contained(r0);
  CHECK(r0.find("<a href=\"../report.html\">") != std::string::npos);
  // written elsewhere, the links follow
  report::write_report(sweep.string(), (tmp / "sweep.html").string());
  CHECK(count_of(read_file(tmp / "sweep.html"), "<a href=\"sweep/run-1/report.html\">") == 4);
}

TEST_CASE("report: a run written before the one training loop ('selected', config 'model' only, no train_loss) still reads") {
  TempDir tmp("/tmp/mtl-report-");
  const fs::path run = tmp / "run";
  tiny_run("uniform", "multilenet", run);
  const report::MetricsTable m = report::read_metrics_csv((run / "metrics.csv").string());
  int best_epoch = 0;
  const auto b = m.numbers("best");
  for (size_t i = 0; i < b.size(); i++)
    if (b[i] == 1) best_epoch = (int)m.numbers("epoch")[i];
  REQUIRE(best_epoch > 0);
  // the old names: the best column was "selected"; config.json said "model", not "architecture"
  std::string csv = read_file(run / "metrics.csv");
  const size_t at = csv.find(",best\n");
  REQUIRE(at != std::string::npos);
  csv.replace(at, 6, ",selected\n");
  // and had no train_loss_<task> columns (Chebyshev-AL logged f_t only)
  std::vector<std::string> lines = text::split(csv.substr(0, csv.size() - 1), '\n');
  const std::vector<std::string> header = text::split(lines[0], ',');
  for (auto& line : lines) {
    std::vector<std::string> cells = text::split(line, ','), kept;
    for (size_t j = 0; j < cells.size(); j++)
      if (header[j].rfind("train_loss_", 0) != 0) kept.push_back(cells[j]);
    line = text::join(kept, ",");
  }
  write_file(run / "metrics.csv", text::join(lines, "\n") + "\n");
  std::string cfg = read_file(run / "config.json");
  const size_t a = cfg.find("\"architecture\"");
  REQUIRE(a != std::string::npos);
  cfg.replace(a, 14, "\"arch_renamed\"");
  write_file(run / "config.json", cfg);
  report::write_report(run.string());
  const std::string html = read_file(run / "report.html");
  check_self_contained(html);
  CHECK(count_of(html, "best: epoch " + std::to_string(best_epoch)) == count_of(html, "<svg class=\"plot\""));
  CHECK(html.find("(multilenet): run report</title>") != std::string::npos);
  CHECK(html.find("id=\"plot-train-loss\"") == std::string::npos);
  CHECK(html.find("no train_loss_&lt;task&gt; columns") != std::string::npos);
  CHECK(html.find("id=\"plot-test-acc\"") != std::string::npos);
}

TEST_CASE("report: a damaged run is a one-line error naming the file; not a run is a usage error") {
  TempDir tmp("/tmp/mtl-report-");
  const fs::path run = tmp / "run";
  tiny_run("uniform", "multilenet", run);
  const std::string csv = (run / "metrics.csv").string();
  const std::string good = read_file(csv);
  auto fails = [&](const std::string& text, const std::string& mention) {
    write_file(csv, text);
    std::string what;
    try {
      report::write_report(run.string());
    } catch (const UsageError& e) {
      what = std::string("usage: ") + e.what();
    } catch (const Error& e) {
      what = e.what();
    }
    CHECK_MESSAGE(what.rfind(csv + ": ", 0) == 0, what);
    CHECK_MESSAGE(what.find(mention) != std::string::npos, what);
    CHECK(what.find('\n') == std::string::npos);
    CHECK_FALSE(fs::exists(run / "report.html"));
  };
  fails(good.substr(0, good.size() - 7), "truncated");                     // cut inside the last row
  const size_t second = good.find('\n') + 1, third = good.find('\n', second) + 1, fourth = good.find('\n', third) + 1;
  fails(good.substr(0, third - 1) + ",1\n" + good.substr(third), "line 2 has");  // a ragged row
  std::string cell = good;
  cell.replace(third, 1, "x");  // the second row's epoch
  fails(cell, "line 3: column 'epoch' holds");
  fails(good.substr(0, second), "no epochs");
  fails("", "empty");
  fails(good.substr(second), "not a metrics.csv header");
  fails(good.substr(0, fourth) + good.substr(second, third - second), "line 4: epoch 1 does not follow epoch 2");
  write_file(csv, good);
  report::write_report(run.string());
  CHECK(fs::exists(run / "report.html"));

  fs::remove(run / "config.json");
  CHECK_THROWS_WITH_AS(report::write_report(run.string()),
                       ((run / "config.json").string() + ": missing (a run directory holds config.json beside metrics.csv)")
                           .c_str(),
                       Error);
  CHECK_THROWS_WITH_AS(report::write_report((tmp / "nope").string()), ((tmp / "nope").string() + ": no such directory").c_str(),
                       UsageError);
  fs::create_directories(tmp / "empty");
  CHECK_THROWS_WITH_AS(report::write_report((tmp / "empty").string()),
                       ((tmp / "empty").string() +
                        ": not a run directory (no metrics.csv) nor a sweep directory (no sweep.json)")
                           .c_str(),
                       UsageError);
  write_file(tmp / "empty" / "sweep.json", "{\"runs\": [");
  CHECK_THROWS_WITH_AS(report::write_report((tmp / "empty").string()), doctest::Contains("sweep.json: not valid JSON"),
                       Error);
}

TEST_CASE("mtl report: the command's exit codes and one-line errors") {
  using namespace mt::testing::cli;
  if (binary().empty()) return;
  TempDir tmp("/tmp/mtl-report-");
  const fs::path run = tmp / "run";
  tiny_run("uniform", "multilenet", run);
  Run r = run_mtl(tmp, {"report", run.string(), "--out", (tmp / "r.html").string()});
  check_ok(r);
  CHECK(r.out.find("wrote " + (tmp / "r.html").string()) != std::string::npos);
  CHECK(xml_problem(read_file(tmp / "r.html")) == "");
  check_one_error(run_mtl(tmp, {"report"}), 2, "needs a run or sweep directory");
  check_one_error(run_mtl(tmp, {"report", (tmp / "nope").string()}), 2, "no such directory");
  check_one_error(run_mtl(tmp, {"report", tmp.path.string()}), 2, "not a run directory");
  check_one_error(run_mtl(tmp, {"report", run.string(), run.string()}), 2, "unexpected argument");
  check_one_error(run_mtl(tmp, {"report", run.string(), "--bogus"}), 2, "--bogus");
  const std::string csv = read_file(run / "metrics.csv");
  write_file(run / "metrics.csv", csv.substr(0, csv.size() - 3));
  check_one_error(run_mtl(tmp, {"report", run.string()}), 1, (run / "metrics.csv").string() + ": truncated");
}

TEST_CASE("svg_plot: ticks, and the front plot of 2 and 3 objectives") {
  using report::log_ticks;
  using report::nice_ticks;
  const auto u = nice_ticks(0, 1, 6);  // steps of 0.2
  REQUIRE(u.size() == 6);
  for (size_t i = 0; i < u.size(); i++) CHECK(u[i] == doctest::Approx(0.2 * (double)i));
  const auto t = nice_ticks(0.931, 0.968, 6);  // range 0.037 -> steps of 0.01 from 0.93 to 0.97
  REQUIRE(t.size() == 5);
  CHECK(t.front() == doctest::Approx(0.93));
  CHECK(t.back() == doctest::Approx(0.97));
  CHECK(log_ticks(1e-8, 1e-6).size() == 7);  // 1, 2, 5 per decade over two decades, and 1e-6
  CHECK(log_ticks(1e-3, 1e3).size() == 7);   // the powers of ten alone over six decades

  const std::vector<std::vector<double>> p2 = {{1, 3}, {2, 2}, {3, 1}, {3, 3}, {2.5, 2.5}};
  const std::vector<bool> nd2 = {true, true, true, false, false};
  const std::string s2 = report::front_svg(p2, nd2, {"loss task 1", "loss <task 2>"}, "Front & test", {3.3, 3.3});
  CHECK(s2.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);  // a file of its own: the namespace
  CHECK(xml_problem(s2) == "");
  CHECK(count_of(s2, "class=\"point nd\"") == 3);
  CHECK(count_of(s2, "class=\"point dominated\"") == 2);
  CHECK(count_of(s2, "class=\"staircase\"") == 1);
  CHECK(count_of(s2, "class=\"reference\"") == 1);
  CHECK(s2.find("loss &lt;task 2&gt;") != std::string::npos);
  CHECK(s2.find("Front &amp; test") != std::string::npos);

  const std::vector<std::vector<double>> p3 = {{0.1, 0.9, 0.5}, {0.5, 0.5, 0.2}, {0.9, 0.1, 0.9}, {0.9, 0.9, 0.9}};
  const std::string s3 = report::front_svg(p3, {true, true, true, false}, {"sparsity", "task 1", "task 2"}, "3 objectives",
                                           {}, {"a.html", "b.html", "c.html", "d.html"});
  CHECK(xml_problem(s3) == "");
  CHECK(count_of(s3, "class=\"point ") == 3 * 4);  // three pairs
  CHECK(count_of(s3, "class=\"staircase\"") == 0);
  CHECK(count_of(s3, "<a href=\"c.html\">") == 3);
  CHECK(xml_problem(report::front_svg({}, {}, {}, "empty")) == "");

  CHECK_THROWS_WITH_AS(report::front_svg(p2, {true}, {}, "x"), "front plot: 5 points but 1 flags", Error);
  CHECK_THROWS_WITH_AS(report::front_svg({{1}}, {true}, {}, "x"), "front plot: needs 2 or more objectives, got 1", Error);
  CHECK_THROWS_WITH_AS(report::front_svg({{1, 2}, {1, 2, 3}}, {true, true}, {}, "x"),
                       "front plot: point 1 has 3 objectives, expected 2", Error);
  CHECK_THROWS_WITH_AS(report::front_svg({{1, NAN}}, {true}, {}, "x"), "front plot: point 0 is not finite", Error);
  CHECK_THROWS_AS(report::front_svg(p2, nd2, {}, "x", {1, 2, 3}), Error);
}

TEST_CASE("xml_problem: the checker itself catches what it must") {
  CHECK(xml_problem("<!DOCTYPE html>\n<a><b x=\"1\"/>t &amp; &#160;</a>\n") == "");
  CHECK(xml_problem("<a><b></a></b>") != "");
  CHECK(xml_problem("<a>") != "");
  CHECK(xml_problem("<a x=1></a>") != "");
  CHECK(xml_problem("<a>&nbsp;</a>") != "");
  CHECK(xml_problem("<a>1 < 2</a>") != "");
  CHECK(xml_problem("<a></a><b></b>") != "");
  CHECK(xml_problem("<a x=\"<\"></a>") != "");
}
