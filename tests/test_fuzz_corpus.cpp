// The fuzz targets (tests/fuzz/targets.h) on every file of their committed
// corpora: the seeds and the inputs that once found a bug. Each must be
// accepted or refused with mt::Error; under `make test-sanitize` also without
// any sanitizer report.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "tests/fuzz/targets.h"

namespace fs = std::filesystem;

namespace {

fs::path corpus_root() {
  const fs::path rel = "tests/fuzz/corpus";
  if (fs::is_directory(rel)) return rel;
  return fs::path(__FILE__).parent_path() / "fuzz" / "corpus";
}

}  // namespace

TEST_CASE("fuzz corpora: every committed input is accepted or refused with mt::Error") {
  const fs::path root = corpus_root();
  REQUIRE(fs::is_directory(root));
  std::set<std::string> targets, folders;
  for (const auto& t : mt::fuzz::kTargets) targets.insert(t.name);
  for (const auto& e : fs::directory_iterator(root)) folders.insert(e.path().filename().string());
  CHECK(folders == targets);  // a corpus per target, a target per corpus

  for (const auto& t : mt::fuzz::kTargets) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(root / t.name)) files.push_back(e.path());
    INFO("target " << t.name);
    CHECK(files.size() >= 3);
    for (const fs::path& f : files) {
      std::ifstream in(f, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      INFO("input " << f.string());
      CHECK_NOTHROW(CHECK(t.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()) == 0));
    }
  }
}
