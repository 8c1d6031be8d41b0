// The `mtl` command as a user runs it: build/mtl is started with std::system,
// stdout and stderr go to files in a fresh temporary directory, and the tests
// check the exit code, the one-line errors, the JSON summary and the files in
// --out. Every run is small (512 training and 256 test images, batch 64, one
// or two epochs) and reads the real MNIST files of data/ (`make test` fetches
// them first).
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/cli_util.h"

namespace fs = std::filesystem;
using namespace mt::testing::cli;

namespace {

// `mtl train` on the small setting, into --out OUT, with more flags.
std::vector<std::string> train_args(const fs::path& out, std::vector<std::string> more = {}, int epochs = 1) {
  std::vector<std::string> a = {"train",        "--data-dir", data_dir().string(), "--train-limit", "512",
                                "--test-limit", "256",        "--batch",           "64",            "--epochs",
                                std::to_string(epochs),       "--json",            "--out",         out.string()};
  return with_flags(a, more);
}

// cli::check_one_error, with the status also checked to be non-zero on its
// own (an assertion this file has always counted).
void check_error(const Run& r, int code) {
  {
    INFO(r.cmd << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.code != 0);
  }
  check_one_error(r, code);
}

// Every file of a directory with its content.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::directory_iterator(dir)) m[e.path().filename().string()] = read_file(e.path());
  return m;
}

// The columns of metrics.csv's last row that must be reproducible (all but the timings).
std::map<std::string, std::string> last_metrics(const fs::path& csv) {
  const std::vector<std::string> lines = lines_of(read_file(csv));
  REQUIRE(lines.size() >= 2);
  const auto head = cells(lines.front()), row = cells(lines.back());
  REQUIRE(head.size() == row.size());
  std::map<std::string, std::string> m;
  for (size_t i = 0; i < head.size(); i++)
    if (head[i] != "train_samples_per_s" && head[i] != "epoch_s") m[head[i]] = row[i];
  return m;
}

}  // namespace

TEST_CASE("cli: help, usage and unknown commands") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  Run help = run_mtl(tmp, {"--help"});
  CHECK(help.code == 0);
  CHECK(help.out.find("train") != std::string::npos);
  CHECK(help.out.find("eval") != std::string::npos);
  Run train_help = run_mtl(tmp, {"train", "--help"});
  CHECK(train_help.code == 0);
  for (const char* flag : {"--dataset", "--method", "--resume", "--val", "--json", "--lr-step", "--normalization"})
    CHECK_MESSAGE(train_help.out.find(flag) != std::string::npos, flag);
  CHECK(run_mtl(tmp, {"eval", "--help"}).code == 0);
  Run none = run_mtl(tmp, {});
  CHECK(none.code == 2);
  CHECK(none.err.find("usage") != std::string::npos);
  check_error(run_mtl(tmp, {"frobnicate"}), 2);
}

TEST_CASE("cli: a quick training run writes its files and a JSON summary") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  const fs::path out = tmp / "run";
  Run r = run_mtl(tmp, train_args(out, {}, 2));
  check_ok(r);
  CHECK(r.err.empty());  // not a terminal: no progress bar
  const nlohmann::json j = r.json();
  for (const char* key : {"dataset", "model", "method", "epochs", "seed", "threads", "test_acc", "test_acc_percent",
                          "train_samples_per_s", "wall_s", "out"})
    CHECK_MESSAGE(j.contains(key), key);
  CHECK(j["dataset"] == "multimnist");
  CHECK(j["method"] == "mgda-ub");
  CHECK(j["model"] == "multilenet");
  CHECK(j["epochs"] == 2);
  CHECK(j["out"] == out.string());
  for (const char* task : {"left", "right"}) {
    const double acc = j["test_acc"][task];
    CHECK(acc >= 0.0);
    CHECK(acc <= 1.0);
    CHECK(double(j["test_acc_percent"][task]) == doctest::Approx(100 * acc).epsilon(1e-3));
  }
  CHECK(double(j["train_samples_per_s"]) > 0);
  for (const char* f : {"metrics.csv", "config.json", "last.safetensors", "best.safetensors", "checkpoint.safetensors"})
    CHECK_MESSAGE(fs::is_regular_file(out / f), f);
  const std::vector<std::string> rows = lines_of(read_file(out / "metrics.csv"));
  REQUIRE(rows.size() == 3);  // header + one row per epoch
  CHECK(rows[0].rfind("epoch,lr,", 0) == 0);
  CHECK(rows[1].rfind("1,", 0) == 0);
  CHECK(rows[2].rfind("2,", 0) == 0);
  const nlohmann::json cfg = nlohmann::json::parse(read_file(out / "config.json"));
  CHECK(cfg["threads"] == j["threads"]);
  CHECK(cfg["lr"] == 0.05);
  REQUIRE(cfg["data_files"].size() == 4);
  for (const auto& f : cfg["data_files"]) CHECK(std::string(f["sha256"]).size() == 64);
  // No temporary files left behind.
  for (const auto& e : fs::directory_iterator(out))
    CHECK_MESSAGE(e.path().filename().string().find(".tmp") == std::string::npos, e.path().string());
}

TEST_CASE("cli: a resumed run reproduces the uninterrupted run exactly") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  Run straight = run_mtl(tmp, train_args(tmp / "straight", {}, 2));
  check_ok(straight);
  Run first = run_mtl(tmp, train_args(tmp / "split", {}, 1));
  check_ok(first);
  // Without --out the resumed run continues in the checkpoint's directory.
  std::vector<std::string> resume = train_args(tmp / "split", {}, 2);
  resume.erase(resume.end() - 2, resume.end());
  resume.insert(resume.end(), {"--resume", (tmp / "split" / "checkpoint.safetensors").string()});
  Run second = run_mtl(tmp, resume);
  check_ok(second);
  const nlohmann::json a = straight.json(), b = second.json();
  CHECK(b["start_epoch"] == 1);
  CHECK(a["test_acc"] == b["test_acc"]);
  CHECK(a["test_loss"] == b["test_loss"]);
  CHECK(a["train_loss"] == b["train_loss"]);
  CHECK(last_metrics(tmp / "straight" / "metrics.csv") == last_metrics(tmp / "split" / "metrics.csv"));
  CHECK(lines_of(read_file(tmp / "split" / "metrics.csv")).size() == 3);
  CHECK(read_file(tmp / "straight" / "last.safetensors") == read_file(tmp / "split" / "last.safetensors"));
}

TEST_CASE("cli: the same numbers at 1 and 2 threads") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  Run one = run_mtl(tmp, train_args(tmp / "t1", {"--threads", "1"}, 2));
  Run two = run_mtl(tmp, train_args(tmp / "t2", {"--threads", "2"}, 2));
  check_ok(one);
  check_ok(two);
  CHECK(one.json()["threads"] == 1);
  CHECK(two.json()["threads"] == 2);
  CHECK(one.json()["test_acc"] == two.json()["test_acc"]);
  CHECK(one.json()["test_loss"] == two.json()["test_loss"]);
  CHECK(last_metrics(tmp / "t1" / "metrics.csv") == last_metrics(tmp / "t2" / "metrics.csv"));
}

TEST_CASE("cli: bad command lines fail with one line and create nothing") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--dataset", "nope"}, "dataset"},
      {{"--model", "nope"}, "model"},
      {{"--method", "nope"}, "method"},
      {{"--no-such-flag"}, "--no-such-flag"},
      {{"--lr", "0"}, "--lr must be > 0, got 0"},
      {{"--lr", "-1"}, "--lr"},
      {{"--lr", "fast"}, "--lr"},
      {{"--batch", "0"}, "--batch"},
      {{"--batch", "-5"}, "--batch"},
      {{"--epochs", "0"}, "--epochs"},
      {{"--val", "512"}, "--val"},
      {{"--method", "fixed"}, "--weights"},
      {{"--method", "fixed", "--weights", "1,2,3"}, "--weights"},
      {{"--optimizer", "rmsprop"}, "optimizer"},
      {{"--normalization", "l3"}, "normalization"},
      {{"--method", "mgda-ub", "--solver", "fw"}, "--solver: unknown min-norm solver 'fw' (allowed: wolfe, frank-wolfe"},
      {{"--method", "mgda-ub", "--heads", "none"}, "--heads: unknown head weights 'none' (valid: alpha, own, mean)"},
      {{"--method", "uniform", "--heads", "own"}, "--heads is only used by --method mgda and mgda-ub"},
      {{"--threads", "0"}, "--threads"},
      {{"--lr-first-step", "9"}, "--lr-first-step needs --lr-step"},
      {{"--lr-step", "10", "--lr-first-step", "0"}, "--lr-first-step must be >= 1, got 0"},
      {{"--resume", (tmp / "no-such-checkpoint.safetensors").string()}, "--resume"},
      {{"surplus"}, "surplus"},
  };
  int k = 0;
  for (const auto& [flags, mention] : cases) {
    const fs::path out = tmp / ("bad-" + std::to_string(k++));
    Run r = run_mtl(tmp, train_args(out, flags));
    check_error(r, 2);
    CHECK_MESSAGE(r.err.find(mention) != std::string::npos, r.err);
    CHECK_MESSAGE(!fs::exists(out), r.cmd);
  }
}

TEST_CASE("cli: data errors are one line naming the file, and create nothing") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  // An empty data directory.
  fs::create_directories(tmp / "empty");
  Run missing = run_mtl(tmp, train_args(tmp / "out-missing", {"--data-dir", (tmp / "empty").string()}));
  check_error(missing, 1);
  CHECK(missing.err.find("train-images-idx3-ubyte") != std::string::npos);
  CHECK(missing.err.find("not found") != std::string::npos);
  CHECK(!fs::exists(tmp / "out-missing"));

  // A private copy of the data: the big files are links to data/mnist, the
  // test labels a real copy that is damaged below. One good run first writes
  // the verification stamps (.verified-*) for this directory, so each damaged
  // file has a stamp vouching for its original content: the checks must not
  // be fooled by it.
  const fs::path d = tmp / "data", mn = d / "mnist";
  fs::create_directories(mn);
  const std::string victim = "t10k-labels-idx1-ubyte";
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"})
    fs::create_symlink(data_dir() / "mnist" / f, mn / f);
  fs::copy_file(data_dir() / "mnist" / victim, mn / victim);
  check_ok(run_mtl(tmp, train_args(tmp / "out-prime", {"--data-dir", d.string()})));
  REQUIRE(fs::exists(mn / (".verified-" + victim)));
  const std::string good = read_file(mn / victim);
  const auto good_time = fs::last_write_time(mn / victim);

  auto attempt = [&](const std::string& name, const std::string& content, bool keep_mtime) {
    write_file(mn / victim, content);
    if (keep_mtime) fs::last_write_time(mn / victim, good_time);
    const fs::path out = tmp / ("out-" + name);
    Run r = run_mtl(tmp, train_args(out, {"--data-dir", d.string()}));
    check_error(r, 1);
    CHECK_MESSAGE(r.err.find(victim) != std::string::npos, r.err);
    CHECK(!fs::exists(out));
    return r;
  };

  std::string flipped = good;
  flipped[100] ^= 1;  // one label byte: same size, new mtime, so the stamp no longer applies
  CHECK(attempt("sha", flipped, false).err.find("sha256 mismatch") != std::string::npos);

  std::string truncated = good.substr(0, good.size() - 1);
  CHECK(attempt("size", truncated, false).err.find("sha256 mismatch") != std::string::npos);

  // Same size and mtime as the stamped file (so only the idx reader can
  // notice): the magic 0x00000801 becomes 0x00000803.
  std::string magic = good;
  magic[3] = 0x03;
  CHECK(attempt("magic", magic, true).err.find("magic") != std::string::npos);

  CHECK(attempt("empty", "", false).err.find("sha256 mismatch") != std::string::npos);
  fs::remove(mn / victim);
  Run gone = run_mtl(tmp, train_args(tmp / "out-gone2", {"--data-dir", d.string()}));
  check_error(gone, 1);
  CHECK(gone.err.find(victim + ": not found") != std::string::npos);
  CHECK(!fs::exists(tmp / "out-gone2"));
}

TEST_CASE("cli: resuming another model's checkpoint fails and changes nothing") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  const fs::path stl = tmp / "stl";
  check_ok(run_mtl(tmp, train_args(stl, {"--method", "single-task"})));
  const auto before = snapshot(stl);
  Run r = run_mtl(tmp, train_args(stl, {"--resume", (stl / "checkpoint.safetensors").string()}, 2));
  check_error(r, 1);
  CHECK(r.err.find("multilenet-stl") != std::string::npos);
  CHECK(r.err.find((stl / "config.json").string()) != std::string::npos);  // where the run's flags are
  CHECK(snapshot(stl) == before);
  // A checkpoint that already has all the epochs asked for.
  Run done = run_mtl(tmp, train_args(stl, {"--method", "single-task", "--resume", (stl / "checkpoint.safetensors").string()}, 1));
  check_error(done, 2);
  CHECK(snapshot(stl) == before);
}

TEST_CASE("cli: --out holding another run is refused unless --force") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  const fs::path out = tmp / "run";
  check_ok(run_mtl(tmp, train_args(out)));
  const auto before = snapshot(out);
  Run again = run_mtl(tmp, train_args(out, {"--seed", "1"}));
  check_error(again, 2);
  CHECK(again.err.find("--force") != std::string::npos);
  CHECK(snapshot(out) == before);
  check_ok(run_mtl(tmp, train_args(out, {"--seed", "1", "--force"})));
  CHECK(snapshot(out) != before);
}

TEST_CASE("cli: a diverging run names the task and step and keeps the last good files") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  // Diverging in the very first epoch: nothing is created.
  Run fresh = run_mtl(tmp, train_args(tmp / "fresh", {"--lr", "1e30"}));
  check_error(fresh, 1);
  CHECK(fresh.err.find("non-finite loss") != std::string::npos);
  CHECK(fresh.err.find("no checkpoint yet") != std::string::npos);
  CHECK(!fs::exists(tmp / "fresh"));

  // One good epoch, then a resumed epoch with an absurd learning rate.
  const fs::path out = tmp / "run";
  check_ok(run_mtl(tmp, train_args(out)));
  const auto before = snapshot(out);
  const std::string ckpt = (out / "checkpoint.safetensors").string();
  Run r = run_mtl(tmp, train_args(out, {"--resume", ckpt, "--lr", "1e30"}, 3));
  check_error(r, 1);
  const std::string& e = r.err_lines.at(0);
  CHECK_MESSAGE(e.find("non-finite loss (") != std::string::npos, e);
  CHECK_MESSAGE(e.find("in task 'left'") != std::string::npos, e);
  CHECK_MESSAGE(e.find("at epoch 2, step ") != std::string::npos, e);
  CHECK_MESSAGE(e.find("(global step ") != std::string::npos, e);
  CHECK_MESSAGE(e.find("last good checkpoint: " + ckpt) != std::string::npos, e);
  CHECK(snapshot(out) == before);  // byte for byte, the checkpoint included
}

TEST_CASE("cli: eval of the saved model reproduces the reported test accuracy") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  const fs::path out = tmp / "run";
  Run tr = run_mtl(tmp, train_args(out));
  check_ok(tr);
  const nlohmann::json t = tr.json();
  Run ev = run_mtl(tmp, {"eval", "--weights", (out / "best.safetensors").string(), "--data-dir", data_dir().string(),
                         "--test-limit", "256", "--json"});
  check_ok(ev);
  const nlohmann::json e = ev.json();
  CHECK(e["test_acc"] == t["best_test_acc"]);
  CHECK(e["test_acc"] == t["test_acc"]);  // one epoch: best is last
  CHECK(e["test_loss"] == t["test_loss"]);
  CHECK(e["model"] == "multilenet");
  CHECK(e["dataset"] == "multimnist");
  // The checkpoint holds the same model.
  Run ck = run_mtl(tmp, {"eval", "--weights", (out / "checkpoint.safetensors").string(), "--data-dir",
                         data_dir().string(), "--test-limit", "256", "--json"});
  check_ok(ck);
  CHECK(ck.json()["test_acc"] == t["test_acc"]);

  write_file(tmp / "notes.txt", "these are not weights\n");
  Run bad = run_mtl(tmp, {"eval", "--weights", (tmp / "notes.txt").string(), "--data-dir", data_dir().string()});
  check_error(bad, 1);
  CHECK(bad.err.find("notes.txt") != std::string::npos);
  check_error(run_mtl(tmp, {"eval"}), 2);
}

TEST_CASE("cli: predict writes one row per test image that agrees with eval") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  const fs::path out = tmp / "run";
  check_ok(run_mtl(tmp, train_args(out)));
  const fs::path csv = tmp / "preds.csv";
  Run p = run_mtl(tmp, {"predict", "--weights", (out / "best.safetensors").string(), "--data-dir",
                        data_dir().string(), "--test-limit", "256", "--out", csv.string(), "--json"});
  check_ok(p);
  CHECK(p.json()["rows"] == 256);
  const auto rows = lines_of(read_file(csv));
  REQUIRE(rows.size() == 257);
  CHECK(rows[0] == "index,left_pred,left_true,left_p,right_pred,right_true,right_p");
  int correct = 0;
  for (size_t i = 1; i < rows.size(); i++) {
    const auto c = cells(rows[i]);
    REQUIRE(c.size() == 7);
    CHECK(c[0] == std::to_string(i - 1));
    correct += c[1] == c[2];
    const double prob = std::stod(c[3]);
    CHECK(prob >= 0.1);  // the predicted class of 10 is at least as likely as the mean
    CHECK(prob <= 1.0);
  }
  Run ev = run_mtl(tmp, {"eval", "--weights", (out / "best.safetensors").string(), "--data-dir", data_dir().string(),
                         "--test-limit", "256", "--json"});
  check_ok(ev);
  CHECK(correct / 256.0 == doctest::Approx(ev.json()["test_acc"]["left"].get<double>()).epsilon(1e-3));
  check_one_error(run_mtl(tmp, {"predict", "--weights", (out / "best.safetensors").string()}), 2, "--out");
}

TEST_CASE("cli: a flag given twice, or followed by another flag instead of its value, is one line") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  const std::string out = (tmp / "run").string();
  check_one_error(run_mtl(tmp, {"train", "--epochs", "1", "--epochs", "2", "--out", out}), 2,
                  "--epochs is given more than once");
  check_one_error(run_mtl(tmp, {"train", "--out", "--epochs", "1"}), 2, "--out needs a value, got the flag --epochs");
  check_one_error(run_mtl(tmp, {"train", "--out", ""}), 2, "--out must not be empty");
  check_one_error(run_mtl(tmp, {"eval", "--weights", "a", "--weights", "b"}), 2, "--weights is given more than once");
  check_one_error(run_mtl(tmp, {"train", "--threads", "100000", "--out", out}), 2, "--threads must be in 1..1024");
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("cli: a run killed in its first epoch restarts without --force; stale temporaries are removed") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-");
  const fs::path out = tmp / "run";
  // what a run killed while writing its first epoch's files leaves: config.json, one
  // metrics row, a temporary of a process that is gone, no checkpoint
  fs::create_directories(out);
  write_file(out / "config.json", "{}\n");
  write_file(out / "metrics.csv", "epoch,lr\n1,0.05\n");
  write_file(out / "checkpoint.safetensors.tmp.999999999", "partial");
  Run r = run_mtl(tmp, train_args(out));
  check_ok(r);
  CHECK(r.out.find("removed 1 temporary file") != std::string::npos);
  CHECK_FALSE(fs::exists(out / "checkpoint.safetensors.tmp.999999999"));
  CHECK(fs::exists(out / "checkpoint.safetensors"));
  // a run that got as far as a checkpoint is not replaced without --force
  check_one_error(run_mtl(tmp, train_args(out)), 2, "already holds a run");
}
