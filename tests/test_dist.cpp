// Data-parallel training (mtl/dist/) as a user runs it: `mpirun -np N build/mtl train`
// on loopback (as root: OMPI_ALLOW_RUN_AS_ROOT, and --oversubscribe on this 2-core
// machine), compared with the single-process run of the same settings; and the ring
// allreduce of mtl/dist/comm.h on 3 ranks, run by this binary under mpirun (the test
// cases "dist worker: ..." are skipped unless asked for with --no-skip).
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "mtl/dist/comm.h"
#include "tests/cli_util.h"

namespace fs = std::filesystem;
using namespace mt::testing::cli;

namespace {

std::string mpirun(int np) {
  std::string env = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1";
  // Under make test-sanitize: Open MPI unloads its components (dlclose) in MPI_Finalize,
  // so LeakSanitizer sees their allocations from "<unknown module>", which no suppression
  // can name; the ranks keep ASan and UBSan but not the leak check.
  if (const char* a = std::getenv("ASAN_OPTIONS")) env += " ASAN_OPTIONS='" + std::string(a) + ":detect_leaks=0'";
  return env + " mpirun -np " + std::to_string(np) + " --oversubscribe";
}

bool have_mpirun() {
  const bool ok = std::system("command -v mpirun >/dev/null 2>&1") == 0;
  if (!ok) MESSAGE("mpirun missing: `make setup` installs openmpi-bin");
  return ok;
}

std::vector<std::string> small_run(const fs::path& out, std::vector<std::string> more) {
  std::vector<std::string> a = {"train", "--data-dir", data_dir().string(), "--train-limit", "512", "--test-limit",
                                "256",   "--batch",    "64",                "--threads",     "1",   "--json",
                                "--out", out.string()};
  return with_flags(a, more);
}

// metrics.csv as columns of numbers, without the timings (and the phase names).
std::map<std::string, std::vector<double>> metrics(const fs::path& csv) {
  const std::vector<std::string> lines = lines_of(read_file(csv));
  REQUIRE(lines.size() >= 2);
  const auto head = cells(lines.front());
  std::map<std::string, std::vector<double>> m;
  for (size_t r = 1; r < lines.size(); r++) {
    const auto row = cells(lines[r]);
    REQUIRE(row.size() == head.size());
    for (size_t i = 0; i < head.size(); i++)
      if (head[i] != "train_samples_per_s" && head[i] != "epoch_s" && head[i] != "phase")
        m[head[i]].push_back(std::stod(row[i]));
  }
  return m;
}

// N ranks against one process: the same columns, every value within float summation
// order: relative 1e-5 (measured drift after two epochs: ~1e-8), an accuracy within
// one test image.
void check_agree(const fs::path& one, const fs::path& many, const std::string& what) {
  const auto a = metrics(one / "metrics.csv"), b = metrics(many / "metrics.csv");
  REQUIRE(a.size() == b.size());
  for (const auto& column : a) {  // (no structured binding: clang cannot capture one in INFO)
    const auto& col = column.first;
    const auto& va = column.second;
    INFO(what << ": column " << col);
    REQUIRE(b.count(col) == 1);
    const auto& vb = b.at(col);
    REQUIRE(va.size() == vb.size());
    const bool acc = col.find("_acc_") != std::string::npos;
    for (size_t e = 0; e < va.size(); e++)
      CHECK(std::fabs(va[e] - vb[e]) <= (acc ? 1.0 / 256 + 1e-9 : 1e-5 * std::max(1.0, std::fabs(va[e]))));
  }
}

// The files a finished run leaves, with their tensors.
void check_complete(const fs::path& out) {
  for (const char* f : {"metrics.csv", "config.json", "last.safetensors", "best.safetensors",
                        "checkpoint.safetensors", "result.json"})
    CHECK_MESSAGE(fs::is_regular_file(out / f), (out / f).string());
  for (const auto& e : fs::directory_iterator(out))
    CHECK_MESSAGE(e.path().filename().string().find(".tmp.") == std::string::npos, e.path().string());
}

}  // namespace

TEST_CASE("dist: mpirun -np 2 trains as one process does (uniform, mgda-ub, chebyshev-al)") {
  if (!have_binary_and_data() || !have_mpirun()) return;
  TempDir tmp("/tmp/mtl-dist-");
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"uniform", {"--method", "uniform", "--epochs", "2"}},
      {"mgda-ub", {"--method", "mgda-ub", "--epochs", "2"}},
      {"chebyshev-al",
       {"--method", "chebyshev-al", "--search-iters", "1", "--retrain-iters", "1", "--epochs-per-iter", "1", "--val",
        "64"}},
  };
  for (const auto& [name, flags] : cases) {
    const Run one = run_mtl(tmp, small_run(tmp / (name + "-1"), flags));
    check_ok(one);
    const Run two = run_mtl(tmp, small_run(tmp / (name + "-2"), flags), mpirun(2));
    check_ok(two);
    check_complete(tmp / (name + "-2"));
    check_agree(tmp / (name + "-1"), tmp / (name + "-2"), name);
    // rank 0 alone prints: one summary line, not two
    CHECK(two.json()["data_parallel"]["ranks"] == 2);
    CHECK(one.json().count("data_parallel") == 0);
    size_t summaries = 0;
    for (const auto& line : two.out_lines) summaries += line.rfind("done: ", 0) == 0 || line.rfind("{", 0) == 0;
    CHECK(summaries == 2);  // rank 0's "done: ..." and its JSON line
  }
}

TEST_CASE("dist: a given N gives the same bits run to run; -np 1 is the single-process run") {
  if (!have_binary_and_data() || !have_mpirun()) return;
  TempDir tmp("/tmp/mtl-dist-");
  const std::vector<std::string> flags = {"--method", "mgda-ub", "--epochs", "1"};
  check_ok(run_mtl(tmp, small_run(tmp / "a", flags), mpirun(2)));
  check_ok(run_mtl(tmp, small_run(tmp / "b", flags), mpirun(2)));
  CHECK(metrics(tmp / "a" / "metrics.csv") == metrics(tmp / "b" / "metrics.csv"));
  CHECK(read_file(tmp / "a" / "checkpoint.safetensors") == read_file(tmp / "b" / "checkpoint.safetensors"));
  check_ok(run_mtl(tmp, small_run(tmp / "p1", flags), mpirun(1)));
  check_ok(run_mtl(tmp, small_run(tmp / "p0", flags)));
  CHECK(metrics(tmp / "p1" / "metrics.csv") == metrics(tmp / "p0" / "metrics.csv"));
}

TEST_CASE("dist: --resume with another number of ranks continues the run") {
  if (!have_binary_and_data() || !have_mpirun()) return;
  TempDir tmp("/tmp/mtl-dist-");
  const std::vector<std::string> flags = {"--method", "mgda-ub", "--epochs", "2"};
  check_ok(run_mtl(tmp, small_run(tmp / "whole", flags)));
  // epoch 1 on 2 ranks, epoch 2 on one process, and the other way round
  check_ok(run_mtl(tmp, small_run(tmp / "a", with_flags(flags, {"--stop-after", "1"})), mpirun(2)));
  CHECK(!fs::exists(tmp / "a" / "result.json"));
  check_ok(run_mtl(tmp, small_run(tmp / "a", with_flags(flags, {"--resume", (tmp / "a" / "checkpoint.safetensors").string()}))));
  check_agree(tmp / "whole", tmp / "a", "2 ranks, then 1");
  check_ok(run_mtl(tmp, small_run(tmp / "b", with_flags(flags, {"--stop-after", "1"}))));
  check_ok(run_mtl(tmp, small_run(tmp / "b", with_flags(flags, {"--resume", (tmp / "b" / "checkpoint.safetensors").string()})),
                   mpirun(2)));
  check_complete(tmp / "b");
  check_agree(tmp / "whole", tmp / "b", "1 rank, then 2");
}

TEST_CASE("dist: settings data parallelism cannot run are refused, naming the rank") {
  if (!have_binary_and_data() || !have_mpirun()) return;
  TempDir tmp("/tmp/mtl-dist-");
  const Run mgda = run_mtl(tmp, small_run(tmp / "m", {"--method", "mgda"}), mpirun(2));
  CHECK(mgda.code == 2);
  CHECK(mgda.err.find("mtl: error: rank 0: --method mgda does not run data-parallel") != std::string::npos);
  const Run small = run_mtl(tmp, small_run(tmp / "s", {"--train-limit", "513"}), mpirun(2));
  CHECK(small.code == 2);
  CHECK(small.err.find("leaves a batch of 1 samples for 2 ranks") != std::string::npos);
  CHECK(!fs::exists(tmp / "m"));
  CHECK(!fs::exists(tmp / "s"));
}

// The worker: this binary under `mpirun -np 3` (the test below starts it).
TEST_CASE("dist worker: ring allreduce, allgather and broadcast on every rank" * doctest::skip()) {
  mt::dist::Comm& comm = mt::dist::world();
  REQUIRE_MESSAGE(comm.size() == 3, "run under mpirun -np 3");
  const int r = comm.rank();
  // float ring: sizes below, at and above N, chunk sizes unequal; values whose sums are exact
  for (size_t n : {1, 2, 3, 7, 1000, 100003}) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) v[i] = (float)((i % 97) * (r + 1)) + 0.25f * (float)r;
    comm.allreduce_sum(v.data(), n);
    for (size_t i = 0; i < n; i++) {
      const float want = (float)((i % 97) * 6) + 0.75f;  // (1 + 2 + 3), 0.25 (0 + 1 + 2)
      if (v[i] != want) FAIL("n " << n << " element " << i << ": " << v[i] << " != " << want << " on rank " << r);
    }
  }
  // rounding in a fixed order: every rank ends with the same bits
  std::vector<float> w(1001);
  for (size_t i = 0; i < w.size(); i++) w[i] = 1.0f / (float)(3 + i + 7 * r);
  comm.allreduce_sum(w.data(), w.size());
  uint64_t h = 0;
  for (float x : w) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    h = h * 1000003 + u;
  }
  const std::vector<uint64_t> hs = comm.allgather(h);
  CHECK(hs[0] == hs[1]);
  CHECK(hs[1] == hs[2]);
  std::vector<double> d = {1.0 * r, 0.5, -2.0 * r};
  comm.allreduce_sum(d);
  CHECK(d == std::vector<double>{3.0, 1.5, -6.0});
  std::vector<float> b(5, (float)r);
  comm.broadcast(b.data(), b.size() * sizeof(float), 0);
  CHECK(b == std::vector<float>(5, 0.f));
  CHECK(comm.bytes_sent() > 0);
}

TEST_CASE("dist: the ring allreduce on 3 ranks (this binary under mpirun)") {
  if (!have_mpirun()) return;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  REQUIRE(!ec);
  TempDir tmp("/tmp/mtl-dist-");
  const std::string cmd = mpirun(3) + " " + shell_quote(self.string()) +
                          " --no-skip --no-colors --test-case='dist worker: *' >" + shell_quote((tmp / "out").string()) + " 2>&1";
  const int st = std::system(cmd.c_str());
  INFO(cmd << "\n" << read_file(tmp / "out"));
  CHECK(st == 0);
  // each of the 3 ranks ran the worker's case and passed it
  const std::string out = read_file(tmp / "out");
  size_t runs = 0;
  for (size_t at = out.find("test cases: 1 | 1 passed"); at != std::string::npos;
       at = out.find("test cases: 1 | 1 passed", at + 1))
    runs++;
  CHECK(runs == 3);
}
