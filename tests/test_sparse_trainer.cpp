// `mtl train --method chebyshev-al` and `mtl sweep` as a user runs them (build/mtl started
// with std::system, as tests/test_cli.cpp does), plus the library to look inside the
// files. Every run is tiny: 512 training images (128 of them for validation), 256 test
// images, batch 64, one outer iteration of one epoch per phase unless said otherwise.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "engine/safetensors.h"
#include "layers/serialize.h"
#include "mtl/models/model.h"
#include "mtl/sparsity/sparsity.h"
#include "tests/cli_util.h"

namespace fs = std::filesystem;
using namespace mt::testing::cli;

namespace {

// The tiny chebyshev-al setting, into `out`, with more flags (a flag of the setting given
// again in `more` replaces its value: mtl refuses a flag given twice).
std::vector<std::string> tiny(const std::string& cmd, const fs::path& out, std::vector<std::string> more = {}) {
  std::vector<std::string> a = {cmd,           "--data-dir",       data_dir().string(), "--train-limit", "512",
                                "--test-limit", "256",             "--val",             "128",           "--batch",
                                "64",           "--search-iters",  "1",                 "--retrain-iters", "1",
                                "--epochs-per-iter", "1",          "--json",            "--out",         out.string()};
  if (cmd == "train") {
    a.push_back("--method");
    a.push_back("chebyshev-al");
  }
  return with_flags(a, more);
}

std::shared_ptr<mt::MultiTaskModel> multimnist_model(const std::string& arch) {
  return mt::make_model(arch, {{"left", 10}, {"right", 10}}, {1, 28, 28});
}

// Every metrics.csv cell but the timings, by row and column name.
std::vector<std::map<std::string, std::string>> metrics(const fs::path& csv) {
  const auto l = lines_of(read_file(csv));
  REQUIRE(l.size() >= 2);
  const auto head = cells(l[0]);
  std::vector<std::map<std::string, std::string>> rows;
  for (size_t i = 1; i < l.size(); i++) {
    const auto row = cells(l[i]);
    REQUIRE(row.size() == head.size());
    std::map<std::string, std::string> m;
    for (size_t j = 0; j < head.size(); j++)
      if (head[j] != "train_samples_per_s" && head[j] != "epoch_s") m[head[j]] = row[j];
    rows.push_back(m);
  }
  return rows;
}

}  // namespace

TEST_CASE("chebyshev-al: a tiny run with k_0 > 0 prunes groups, keeps them at zero and writes its files") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-sparse-");
  const fs::path out = tmp / "run";
  const Run r = run_mtl(tmp, tiny("train", out));
  check_ok(r);
  const nlohmann::json j = r.json();
  for (const char* key : {"group_sparsity", "param_sparsity", "compression", "sharing", "flops", "dense_flops",
                          "bytes", "dense_bytes", "test_acc", "test_loss", "objectives", "objective_names", "lambda",
                          "mu", "t", "variant", "prefs", "sparsity_report", "best_epoch", "out"})
    CHECK_MESSAGE(j.contains(key), key);
  CHECK(j["variant"] == "published");
  CHECK(j["finished"] == true);
  CHECK(j["prefs"].size() == 3);
  CHECK(j["objectives"].size() == 3);
  CHECK(j["lambda"].size() == 3);
  CHECK(j["test_acc"].contains("left"));
  CHECK(j["test_acc"].contains("right"));
  CHECK(j["mu"].get<double>() == doctest::Approx(2 * 2.5e-8));  // one outer update of the retrain phase: mu0 * rho
  // the GrOWL step of the search phase pruned groups (with one search iteration the cap
  // is the full 80% per layer; this setting prunes ~74% of the groups)
  CHECK(j["group_sparsity"].get<double>() > 20.0);
  CHECK(j["param_sparsity"].get<double>() > 0.0);
  CHECK(j["compression"].get<double>() > 1.0);
  CHECK(j["flops"].get<double>() < j["dense_flops"].get<double>());
  CHECK(j["bytes"].get<double>() < j["dense_bytes"].get<double>());
  CHECK(j["best_epoch"] == 2);  // the retraining phase's best (its only epoch)
  for (const char* f : {"metrics.csv", "config.json", "last.safetensors", "best.safetensors", "checkpoint.safetensors",
                        "result.json", "search_best.safetensors", "search_fallback.safetensors"})
    CHECK_MESSAGE(fs::exists(out / f), f);
  CHECK(nlohmann::json::parse(read_file(out / "result.json"))["group_sparsity"] == j["group_sparsity"]);

  const auto rows = metrics(out / "metrics.csv");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].at("phase") == "search");
  CHECK(rows[1].at("phase") == "retrain");
  for (const char* col : {"lr", "mu", "t", "lambda_sparsity", "lambda_left", "c_sparsity", "c_right", "f_sparsity",
                          "f_left", "f_right", "group_sparsity", "val_acc_left", "test_acc_right"})
    CHECK_MESSAGE(rows[1].count(col) == 1, col);
  CHECK(std::stod(rows[0].at("group_sparsity")) > 20.0);
  CHECK(rows[1].at("group_sparsity") == rows[0].at("group_sparsity"));  // retraining keeps the pruned groups

  // The prune mask of the retraining phase (in the checkpoint) against the final model.
  auto model = multimnist_model("mdmtn");
  mt::load_module((out / "best.safetensors").string(), *model);
  const std::string ckpt = (out / "checkpoint.safetensors").string();
  const mt::StFile cf = mt::load_safetensors(ckpt);
  const mt::PruneMask mask = mt::PruneMask::load(cf, "extra.mask.", *model, ckpt);
  CHECK(mask.pruned_groups() > 0);
  CHECK(mask.pruned_groups() == j["zero_groups"].get<int64_t>());
  int64_t checked = 0;
  for (const auto& g : mt::weight_groups(*model)) {
    const std::vector<bool> z = mt::zero_groups(g);
    for (const auto& e : mask.entries())
      if (e.name == g.name)
        for (int i : e.groups) {
          CHECK_MESSAGE(z[(size_t)i], g.name << " group " << i << " is not zero after retraining");
          checked++;
        }
  }
  CHECK(checked == mask.pruned_groups());
  // and the tied groups are equal within each cluster
  const mt::ParameterTying tie = mt::ParameterTying::load(cf, "extra.tie.", *model, ckpt);
  CHECK(tie.tied_groups() > 0);
  for (const auto& g : mt::regularized_groups(*model))
    for (const auto& e : tie.entries()) {
      if (e.name != g.name) continue;
      const std::vector<float> m = mt::group_matrix(g);
      std::map<int, int> first;
      for (int i = 0; i < g.groups; i++) {
        const int l = e.labels[(size_t)i];
        if (l < 0) continue;
        if (!first.count(l)) {
          first[l] = i;
          continue;
        }
        const int f = first[l];
        CHECK(std::equal(m.begin() + (ptrdiff_t)i * g.group_size, m.begin() + (ptrdiff_t)(i + 1) * g.group_size,
                         m.begin() + (ptrdiff_t)f * g.group_size));
      }
    }
}

TEST_CASE("chebyshev-al: k_0 = 0 runs the same schedule without pruning") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-sparse-");
  const fs::path out = tmp / "run";
  const Run r = run_mtl(tmp, tiny("train", out, {"--prefs", "0,0.8,0.19", "--model", "hps"}));
  check_ok(r);
  const nlohmann::json j = r.json();
  CHECK(j["group_sparsity"].get<double>() == 0.0);
  CHECK(j["param_sparsity"].get<double>() == 0.0);
  CHECK(j["pruned_groups"] == 0);
  CHECK(j["compression"].get<double>() == doctest::Approx(1.0));
  CHECK(j["model"] == "hps");
  CHECK(j["finished"] == true);
  CHECK_FALSE(fs::exists(out / "search_best.safetensors"));
  CHECK(fs::exists(out / "search_fallback.safetensors"));
  const auto rows = metrics(out / "metrics.csv");
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].at("phase") == "retrain");
  CHECK(std::stod(rows[1].at("zero_groups")) == 0);
}

TEST_CASE("chebyshev-al: bad settings fail with one line and exit 2 before anything is written") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-sparse-");
  const fs::path out = tmp / "run";
  check_one_error(run_mtl(tmp, tiny("train", out, {"--prefs", "0.01,-0.8,0.19"})), 2, "negative entry k_1");
  check_one_error(run_mtl(tmp, tiny("train", out, {"--prefs", "0.5,0.5"})), 2, "needs 3");
  check_one_error(run_mtl(tmp, tiny("train", out, {"--prefs", "0.1,0.3,0.3,0.3"})), 2, "needs 3");
  check_one_error(run_mtl(tmp, tiny("train", out, {"--prefs", "0,0,0"})), 2, "all zero");
  check_one_error(run_mtl(tmp, tiny("train", out, {"--mu", "0"})), 2, "--mu must be > 0");
  check_one_error(run_mtl(tmp, tiny("train", out, {"--mu", "-1e-3"})), 2, "--mu must be > 0");
  check_one_error(run_mtl(tmp, tiny("train", out, {"--rho", "0.5"})), 2, "--rho must be >= 1");
  check_one_error(run_mtl(tmp, tiny("train", out, {"--eps", "-0.1"})), 2, "--eps must be >= 0");
  check_one_error(run_mtl(tmp, tiny("train", out, {"--prefs", "0.1,x,0.3"})), 2, "--prefs");
  check_one_error(run_mtl(tmp, tiny("train", out, {"--al-variant", "fancy"})), 2, "--al-variant");
  check_one_error(run_mtl(tmp, tiny("train", out, {"--model", "multilenet"})), 2, "--model");
  check_one_error(run_mtl(tmp, tiny("train", out, {"--epochs", "5"})), 2, "--epochs is not used");
  CHECK_FALSE(fs::exists(out));
  const Run help = run_mtl(tmp, {"train", "--method", "chebyshev-al", "--help"});
  CHECK(help.code == 0);
  for (const char* flag : {"--prefs", "--ref-point", "--eps", "--mu", "--rho", "--al-variant", "--search-iters",
                           "--retrain-iters", "--epochs-per-iter", "--min-sparsity", "--max-layer-sparsity",
                           "--sim-preference", "--lr-decay", "--resume"})
    CHECK_MESSAGE(help.out.find(flag) != std::string::npos, flag);
}

TEST_CASE("chebyshev-al: resuming inside the search phase gives the uninterrupted run's numbers (standard variant)") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-sparse-");
  const std::vector<std::string> more = {"--search-iters", "2", "--al-variant", "standard", "--model", "hps"};
  const Run full = run_mtl(tmp, tiny("train", tmp / "full", more));
  check_ok(full);
  std::vector<std::string> first = more;
  first.insert(first.end(), {"--stop-after", "1"});
  const Run part = run_mtl(tmp, tiny("train", tmp / "part", first));
  check_ok(part);
  CHECK(part.json()["finished"] == false);
  CHECK(metrics(tmp / "part" / "metrics.csv").size() == 1);
  std::vector<std::string> rest = more;
  rest.insert(rest.end(), {"--resume", (tmp / "part" / "checkpoint.safetensors").string()});
  const Run resumed = run_mtl(tmp, tiny("train", tmp / "part", rest));
  check_ok(resumed);
  nlohmann::json a = full.json(), b = resumed.json();
  CHECK(b["start_epoch"] == 1);
  for (const char* k : {"wall_s", "out", "start_epoch", "train_samples_per_s"}) {  // timings and places
    a.erase(k);
    b.erase(k);
  }
  CHECK(a.dump() == b.dump());
  CHECK(metrics(tmp / "full" / "metrics.csv") == metrics(tmp / "part" / "metrics.csv"));
  CHECK(read_file(tmp / "full" / "best.safetensors") == read_file(tmp / "part" / "best.safetensors"));
  // standard variant: lambda stays >= 0, mu0 = 1 by default, doubled once in the retraining
  for (const auto& l : a["lambda"]) CHECK(l.get<double>() >= 0.0);
  CHECK(a["mu"].get<double>() == doctest::Approx(2.0));
  // and the textbook multiplier update at the end of search iteration 1 (epoch 1):
  // lambda_i <- max(0, lambda_i + mu c_i), c_i the mean over epoch 1's batches
  const auto rows = metrics(tmp / "full" / "metrics.csv");
  REQUIRE(rows.size() == 3);
  for (const char* o : {"sparsity", "left", "right"}) {
    const double before = std::stod(rows[0].at(std::string("lambda_") + o)), mu = std::stod(rows[0].at("mu"));
    const double c = std::stod(rows[0].at(std::string("c_") + o));
    CHECK_MESSAGE(std::stod(rows[1].at(std::string("lambda_") + o)) ==
                      doctest::Approx(std::max(0.0, before + mu * c)).epsilon(1e-6),
                  o);
  }
}

TEST_CASE("sweep: three vectors from a file give sweep.csv, sweep.json with a hypervolume and front.svg") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-sparse-");
  const fs::path prefs = tmp / "prefs.txt";
  write_file(prefs, "# k0, k_left, k_right\n0.01, 0.8, 0.19\n\n0.1 0.45 0.45   # spaces work too\n0,0.2,0.8\n");
  const fs::path out = tmp / "sweep";
  const Run r = run_mtl(tmp, tiny("sweep", out, {"--prefs-file", prefs.string(), "--model", "hps"}));
  check_ok(r);
  const nlohmann::json j = r.json();
  CHECK(j["runs"] == 3);
  CHECK(j["hypervolume"].is_number());
  CHECK(j["hypervolume"].get<double>() > 0.0);
  const auto l = lines_of(read_file(out / "sweep.csv"));
  REQUIRE(l.size() == 4);
  const auto head = cells(l[0]);
  for (const char* col : {"run", "k_sparsity", "k_left", "k_right", "status", "f_sparsity", "f_left", "f_right",
                          "test_acc_left", "test_acc_right", "group_sparsity", "non_dominated"})
    CHECK_MESSAGE(std::find(head.begin(), head.end(), col) != head.end(), col);
  const size_t nd_col = (size_t)(std::find(head.begin(), head.end(), "non_dominated") - head.begin());
  int nd = 0;
  for (size_t i = 1; i < l.size(); i++) {
    const auto row = cells(l[i]);
    REQUIRE(row.size() == head.size());
    CHECK(row[4] == "ok");
    nd += row[nd_col] == "1";
  }
  CHECK(nd >= 1);
  CHECK(cells(l[1])[1] == "0.01");
  CHECK(cells(l[3])[1] == "0");
  const nlohmann::json sj = nlohmann::json::parse(read_file(out / "sweep.json"));
  CHECK(sj["hypervolume"].get<double>() == doctest::Approx(j["hypervolume"].get<double>()));
  CHECK(sj["reference_point"].size() == 3);
  CHECK(sj["runs"].size() == 3);
  CHECK(sj["front"] == "objectives");
  const std::string svg = read_file(out / "front.svg");
  CHECK(svg.find("<svg") != std::string::npos);
  for (int i = 0; i < 3; i++) CHECK(fs::exists(out / ("run-" + std::to_string(i)) / "result.json"));
}

TEST_CASE("sweep: a preference file with a bad line fails naming the file and line") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-sparse-");
  const fs::path out = tmp / "sweep";
  const fs::path bad = tmp / "bad.txt";
  write_file(bad, "0.01,0.8,0.19\n# comment\n0.2, oops, 0.3\n");
  check_one_error(run_mtl(tmp, tiny("sweep", out, {"--prefs-file", bad.string()})), 2, bad.string() + ":3");
  write_file(bad, "0.01,0.8,0.19\n\n0.5,0.5\n");
  check_one_error(run_mtl(tmp, tiny("sweep", out, {"--prefs-file", bad.string()})), 2, bad.string() + ":3");
  write_file(bad, "0.01,0.8,0.19\n0.1,-0.5,0.3\n");
  check_one_error(run_mtl(tmp, tiny("sweep", out, {"--prefs-file", bad.string()})), 2, bad.string() + ":2: negative");
  write_file(bad, "0.5,0.5\n0.2,0.8\n");
  check_one_error(run_mtl(tmp, tiny("sweep", out, {"--prefs-file", bad.string()})), 2, bad.string() + ":1: 2 values");
  check_one_error(run_mtl(tmp, tiny("sweep", out, {"--prefs-file", (tmp / "missing.txt").string()})), 2, "missing.txt");
  check_one_error(run_mtl(tmp, tiny("sweep", out, {})), 2, "--prefs-file FILE or --grid N");
  CHECK_FALSE(fs::exists(out));
}
