// `mtl train` / `mtl eval` on Cifar10Mnist (--dataset cifar10-mnist --cifar-dir DIR) as a
// user runs them: a tiny CIFAR-10 fixture (five data_batch files and a test_batch, 8
// training and 4 test images) is written to a temporary directory and paired with the
// real MNIST digits of data/ (tests/cli_util.h). Every run takes well under a second.
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/cli_util.h"

namespace fs = std::filesystem;
using namespace mt::testing::cli;

namespace {

// n CIFAR-10 records: label (i + label_offset) % 10, pixel value (i + channel * 7 + p) % 256
std::string cifar_records(int n, int label_offset = 0) {
  std::string b;
  for (int i = 0; i < n; i++) {
    b += (char)((i + label_offset) % 10);
    for (int ch = 0; ch < 3; ch++)
      for (int p = 0; p < 1024; p++) b += (char)((i + ch * 7 + p) % 256);
  }
  return b;
}

// DIR/data_batch_1.bin .. data_batch_5.bin with 2, 2, 2, 1, 1 images and DIR/test_batch.bin with 4.
void write_cifar_fixture(const fs::path& dir) {
  fs::create_directories(dir);
  for (int k = 1; k <= 5; k++)
    REQUIRE(write_file(dir / ("data_batch_" + std::to_string(k) + ".bin"), cifar_records(k <= 3 ? 2 : 1, k)));
  REQUIRE(write_file(dir / "test_batch.bin", cifar_records(4)));
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("cifar10-mnist cli: train (uniform and chebyshev-al) and eval on a tiny CIFAR-10 fixture") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-cifar-");
  const fs::path cifar = tmp / "cifar";
  write_cifar_fixture(cifar);
  const std::string data = data_dir().string();

  for (const std::vector<std::string>& help :
       {std::vector<std::string>{"train", "--help"}, {"train", "--method", "chebyshev-al", "--help"}, {"sweep", "--help"}}) {
    Run r = run_mtl(tmp, help);
    check_ok(r);
    CHECK_MESSAGE(has(r.out, "cifar10-mnist"), r.cmd);
    CHECK_MESSAGE(has(r.out, "--cifar-dir"), r.cmd);
  }
  CHECK(has(run_mtl(tmp, {"eval", "--help"}).out, "--cifar-dir"));

  // (a) a plain method: the model defaults to mdmtn-cifar
  const fs::path out = tmp / "uniform";
  Run a = run_mtl(tmp, {"train", "--dataset", "cifar10-mnist", "--cifar-dir", cifar.string(), "--data-dir", data,
                        "--method", "uniform", "--epochs", "1", "--batch", "4", "--val", "0", "--threads", "1",
                        "--out", out.string(), "--json"});
  check_ok(a);
  const nlohmann::json ja = a.json();
  CHECK(ja["dataset"] == "cifar10-mnist");
  CHECK(ja["model"] == "mdmtn-cifar");
  CHECK(ja["tasks"] == nlohmann::json::array({"object", "digit"}));
  CHECK(ja["train_images"] == 8);
  CHECK(ja["test_images"] == 4);
  const nlohmann::json cfg = nlohmann::json::parse(read_file(out / "config.json"));
  CHECK(cfg["cifar_dir"] == cifar.string());
  CHECK(cfg["input_shape"] == nlohmann::json::array({3, 32, 32}));
  REQUIRE(cfg["data_files"].size() == 4);  // the MNIST files; CIFAR-10 has no catalogued hash
  for (const auto& f : cfg["data_files"]) CHECK(has(f["path"].get<std::string>(), "/mnist/"));

  // (b) chebyshev-al: --model defaults to mdmtn-cifar, and with it the -cifar settings (lr 1e-4, mu0 6.8e-8).
  // k_0 = 0 keeps the test fast: with k_0 > 0 the tying between the phases (Affinity Propagation
  // over mdmtn-cifar's ~11,000 groups) takes some 15 s whatever the data size.
  Run b = run_mtl(tmp, {"train", "--method", "chebyshev-al", "--dataset", "cifar10-mnist", "--cifar-dir",
                        cifar.string(), "--data-dir", data, "--prefs", "0,0.5,0.5", "--search-iters", "1",
                        "--retrain-iters", "1", "--epochs-per-iter", "1", "--val", "2", "--batch", "4", "--threads",
                        "1", "--out", (tmp / "cheb").string(), "--json"});
  check_ok(b);
  const nlohmann::json jb = b.json();
  CHECK(jb["model"] == "mdmtn-cifar");
  CHECK(jb["tasks"] == nlohmann::json::array({"object", "digit"}));
  CHECK(jb["finished"] == true);
  CHECK(jb["train_images"] == 6);
  CHECK(jb["val_images"] == 2);
  CHECK(jb["lr"] == doctest::Approx(1e-4));
  CHECK(jb["mu0"] == doctest::Approx(6.8e-8));
  CHECK(nlohmann::json::parse(read_file(tmp / "cheb" / "config.json"))["cifar_dir"] == cifar.string());

  // (c) eval of (a)'s model reads the same test set and reproduces its accuracy
  Run c = run_mtl(tmp, {"eval", "--weights", (out / "best.safetensors").string(), "--cifar-dir", cifar.string(),
                        "--data-dir", data, "--threads", "1", "--json"});
  check_ok(c);
  const nlohmann::json jc = c.json();
  CHECK(jc["dataset"] == "cifar10-mnist");
  CHECK(jc["model"] == "mdmtn-cifar");
  CHECK(jc["test_images"] == 4);
  CHECK(jc["test_acc"] == ja["best_test_acc"]);

  // eval of a cifar10-mnist model on another dataset does not take --cifar-dir
  check_one_error(run_mtl(tmp, {"eval", "--weights", (out / "best.safetensors").string(), "--dataset", "multimnist",
                                "--cifar-dir", cifar.string(), "--data-dir", data}),
                  2, "--cifar-dir is only used by --dataset cifar10-mnist (--dataset multimnist)");
}

TEST_CASE("cifar10-mnist cli: a missing CIFAR-10 directory or --cifar-dir with another dataset is one line") {
  if (!have_binary_and_data()) return;
  TempDir tmp("/tmp/mtl-cli-cifar-");
  const std::string data = data_dir().string(), none = (tmp / "none").string();
  const fs::path out = tmp / "out";

  // (d) the missing file is named, with exit status 1, and --out is not created
  for (const std::vector<std::string>& method :
       {std::vector<std::string>{"--method", "uniform"}, {"--method", "chebyshev-al", "--val", "2"}}) {
    std::vector<std::string> args = {"train", "--dataset", "cifar10-mnist", "--cifar-dir", none, "--data-dir", data,
                                     "--out", out.string()};
    args.insert(args.end(), method.begin(), method.end());
    Run r = run_mtl(tmp, args);
    check_one_error(r, 1, "CIFAR-10: missing " + none + "/data_batch_1.bin");
    CHECK_MESSAGE(!fs::exists(out), r.cmd);
  }

  // (e) --cifar-dir belongs to cifar10-mnist
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"train"}, {"train", "--method", "chebyshev-al"}, {"sweep", "--grid", "2"}}) {
    std::vector<std::string> args = cmd;
    for (const char* a : {"--dataset", "multimnist", "--cifar-dir"}) args.push_back(a);
    args.push_back(none);
    args.push_back("--out");
    args.push_back(out.string());
    Run r = run_mtl(tmp, args);
    check_one_error(r, 2, "--cifar-dir is only used by --dataset cifar10-mnist (--dataset multimnist)");
    CHECK_MESSAGE(!fs::exists(out), r.cmd);
  }
  check_one_error(run_mtl(tmp, {"train", "--dataset", "cifar10-mnist", "--cifar-dir", ""}), 2,
                  "--cifar-dir must not be empty");
}
