// Tests for datasets/image_folder: the CelebA and CSV attribute files, the
// partition file, decoding PNG / JPEG / BMP through stb_image with channel
// conversion, resizing and centre cropping, and every bad-input message. The
// fixture (8x8 images written with stb_image_write, attribute and partition
// files) is written by the test into a fresh temporary directory.
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include "datasets/image_folder.h"
#include "engine/error.h"
#include "engine/parallel.h"

namespace {

struct ImgTempDir {
  std::string path;
  ImgTempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/mt_imgfolder_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    REQUIRE(::mkdtemp(buf.data()) != nullptr);
    path = buf.data();
  }
  ~ImgTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  REQUIRE(f);
  f << text;
}

// The message of the mt::Error that f throws ("" when it does not throw).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const mt::Error& e) {
    return e.what();
  }
  return "";
}

#define CHECK_ERROR(expr, part)                                   \
  do {                                                            \
    const std::string msg_ = error_of([&] { (void)(expr); });     \
    INFO("message: " << msg_);                                    \
    CHECK(msg_.find(part) != std::string::npos);                  \
  } while (0)

// a.png: RGB (30x, 30y, 100); b.jpg: solid RGB (200, 60, 20); c.bmp: grey
// 8x + y; d.png: 12 wide x 8 high RGB, columns 0-1 red, 2-9 green, 10-11 blue.
uint8_t a_px(int x, int y, int ch) { return uint8_t(ch == 0 ? 30 * x : ch == 1 ? 30 * y : 100); }

struct Fixture {
  ImgTempDir dir;
  std::string img, attr, part, csv;
  Fixture() {
    img = dir / "img_align_celeba";
    std::filesystem::create_directory(img);
    std::filesystem::create_directory(dir / "bad");
    std::vector<uint8_t> a(8 * 8 * 3), b(8 * 8 * 3), c(8 * 8), d(12 * 8 * 3);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        for (int ch = 0; ch < 3; ++ch) a[(y * 8 + x) * 3 + ch] = a_px(x, y, ch);
        b[(y * 8 + x) * 3 + 0] = 200, b[(y * 8 + x) * 3 + 1] = 60, b[(y * 8 + x) * 3 + 2] = 20;
        c[y * 8 + x] = uint8_t(8 * x + y);
      }
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 12; ++x) {
        const int ch = x < 2 ? 0 : x < 10 ? 1 : 2;
        d[(y * 12 + x) * 3 + ch] = 255;
      }
    REQUIRE(stbi_write_png((img + "/a.png").c_str(), 8, 8, 3, a.data(), 8 * 3));
    REQUIRE(stbi_write_jpg((img + "/b.jpg").c_str(), 8, 8, 3, b.data(), 95));
    REQUIRE(stbi_write_bmp((img + "/c.bmp").c_str(), 8, 8, 1, c.data()));
    REQUIRE(stbi_write_png((img + "/d.png").c_str(), 12, 8, 3, d.data(), 12 * 3));
    attr = dir / "list_attr_celeba.txt";
    write_text(attr,
               "4\n"
               "Smiling Young Male \n"
               "a.png  1 -1  1\n"
               "b.jpg -1 -1  1\r\n"
               "c.bmp  1  1 -1\n"
               "d.png -1  1 -1\n");
    part = dir / "list_eval_partition.txt";
    write_text(part, "a.png 0\nb.jpg 0\nc.bmp 1\nd.png 2\nextra.jpg 2\n");
    csv = dir / "labels.csv";
    write_text(csv,
               "\xEF\xBB\xBF" "file, digit:10, smile, colour, flag:2\n"
               "a.png, 3, -1, 0, -1\n"
               "\n"
               "b.jpg, 9, 1, 4, 1\n"
               "c.bmp, 0, 1, 2, -1\n");
  }
  mt::ImageFolderOptions opts(int c = 3, int h = 8, int w = 8) const {
    mt::ImageFolderOptions o;
    o.images_dir = img;
    o.labels_path = attr;
    o.channels = c;
    o.height = h;
    o.width = w;
    return o;
  }
  // The same options on a fresh attribute file holding `text`.
  mt::ImageFolderOptions with_attr(const std::string& name, const std::string& text) const {
    write_text(dir / name, text);
    mt::ImageFolderOptions o = opts();
    o.labels_path = dir / name;
    return o;
  }
};

uint8_t px(const mt::MultiImageSet& s, int i, int c, int y, int x) {
  return s.pixels[((size_t(i) * s.c + c) * s.h + y) * s.w + x];
}

}  // namespace

TEST_CASE("image folder: CelebA attribute file, RGB, no resize") {
  Fixture fx;
  const mt::MultiImageSet s = mt::load_image_folder(fx.opts());
  REQUIRE(s.n == 4);
  CHECK(s.c == 3);
  CHECK(s.h == 8);
  CHECK(s.w == 8);
  CHECK(s.task_names == std::vector<std::string>{"Smiling", "Young", "Male"});
  CHECK(s.num_classes == std::vector<int>{2, 2, 2});
  CHECK(s.binary == std::vector<bool>{true, true, true});
  CHECK(s.labels[0] == std::vector<int32_t>{1, 0, 1, 0});
  CHECK(s.labels[1] == std::vector<int32_t>{0, 0, 1, 1});
  CHECK(s.labels[2] == std::vector<int32_t>{1, 1, 0, 0});
  // PNG is lossless and channel-major after loading.
  bool exact = true;
  for (int ch = 0; ch < 3; ++ch)
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) exact &= px(s, 0, ch, y, x) == a_px(x, y, ch);
  CHECK(exact);
  // JPEG is close; the grey BMP is replicated into three equal channels.
  CHECK(std::abs(int(px(s, 1, 0, 4, 4)) - 200) <= 6);
  CHECK(std::abs(int(px(s, 1, 1, 4, 4)) - 60) <= 6);
  CHECK(std::abs(int(px(s, 1, 2, 4, 4)) - 20) <= 6);
  CHECK(px(s, 2, 0, 3, 5) == 8 * 5 + 3);
  CHECK(px(s, 2, 1, 3, 5) == 8 * 5 + 3);
  CHECK(px(s, 2, 2, 3, 5) == 8 * 5 + 3);
  CHECK(s.mean == 0.5f);
  CHECK(s.std == 0.5f);
}

TEST_CASE("image folder: grey conversion, resize and centre crop") {
  Fixture fx;
  mt::ImageFolderOptions o = fx.opts(1, 8, 8);
  mt::MultiImageSet g = mt::load_image_folder(o);
  CHECK(g.c == 1);
  // stb's luma: (77 r + 150 g + 29 b) >> 8.
  const int y = 2, x = 5;
  CHECK(px(g, 0, 0, y, x) == ((77 * a_px(x, y, 0) + 150 * a_px(x, y, 1) + 29 * a_px(x, y, 2)) >> 8));
  CHECK(px(g, 2, 0, y, x) == 8 * x + y);

  o = fx.opts(3, 4, 6);  // downsample to 4 high x 6 wide
  mt::MultiImageSet r = mt::load_image_folder(o);
  CHECK(r.h == 4);
  CHECK(r.w == 6);
  CHECK(r.pixels.size() == size_t(4) * 3 * 4 * 6);
  CHECK(std::abs(int(px(r, 1, 0, 2, 3)) - 200) <= 8);  // a flat colour stays flat
  CHECK(std::abs(int(px(r, 1, 1, 2, 3)) - 60) <= 8);
  CHECK(px(r, 0, 2, 1, 1) == 100);  // a constant channel too
  // Upsampling works as well.
  o = fx.opts(3, 16, 16);
  CHECK(mt::load_image_folder(o).pixels.size() == size_t(4) * 3 * 16 * 16);

  // d.png is 12x8: the centred 8x8 square is all green; without the crop the
  // squashed image keeps red on the left.
  o = fx.opts(3, 8, 8);
  o.center_crop = true;
  mt::MultiImageSet c = mt::load_image_folder(o);
  bool green = true;
  for (int yy = 0; yy < 8; ++yy)
    for (int xx = 0; xx < 8; ++xx)
      green &= px(c, 3, 0, yy, xx) == 0 && px(c, 3, 1, yy, xx) == 255 && px(c, 3, 2, yy, xx) == 0;
  CHECK(green);
  o.center_crop = false;
  CHECK(px(mt::load_image_folder(o), 3, 0, 4, 0) > 100);
}

TEST_CASE("image folder: partitions, task selection, max_images, CelebA layout") {
  Fixture fx;
  mt::ImageFolderOptions o = mt::celeba_options(fx.dir.path, mt::Partition::Train);
  o.height = o.width = 8;
  mt::MultiImageSet tr = mt::load_image_folder(o);
  CHECK(tr.n == 2);
  CHECK(tr.labels[0] == std::vector<int32_t>{1, 0});
  o.partition = mt::Partition::Val;
  mt::MultiImageSet va = mt::load_image_folder(o);
  REQUIRE(va.n == 1);
  CHECK(px(va, 0, 0, 3, 5) == 8 * 5 + 3);  // c.bmp
  o.partition = mt::Partition::Test;
  CHECK(mt::load_image_folder(o).n == 1);

  o.partition = mt::Partition::All;
  o.tasks = {"Male", "Smiling"};
  o.max_images = 3;
  mt::MultiImageSet s = mt::load_image_folder(o);
  CHECK(s.n == 3);
  CHECK(s.task_names == std::vector<std::string>{"Male", "Smiling"});
  CHECK(s.labels[0] == std::vector<int32_t>{1, 1, 0});
  CHECK(s.labels[1] == std::vector<int32_t>{1, 0, 1});
  CHECK(s.num_tasks() == 2);

  // A CSV partition with a header line works too.
  mt::ImageFolderOptions p = fx.opts();
  p.partition_path = fx.dir / "part.csv";
  write_text(p.partition_path, "image_id,partition\na.png,2\nb.jpg,0\nc.bmp,0\nd.png,2\n");
  p.partition = mt::Partition::Test;
  CHECK(mt::load_image_folder(p).labels[0] == std::vector<int32_t>{1, 0});
}

TEST_CASE("image folder: CSV attributes with declared and inferred classes") {
  Fixture fx;
  mt::ImageFolderOptions o = fx.opts(1, 8, 8);
  o.labels_path = fx.csv;
  mt::MultiImageSet s = mt::load_image_folder(o);
  REQUIRE(s.n == 3);
  CHECK(s.task_names == std::vector<std::string>{"digit", "smile", "colour", "flag"});
  CHECK(s.num_classes == std::vector<int>{10, 2, 5, 2});
  CHECK(s.binary == std::vector<bool>{false, true, false, true});
  CHECK(s.labels[0] == std::vector<int32_t>{3, 9, 0});
  CHECK(s.labels[1] == std::vector<int32_t>{0, 1, 1});  // -1/1 -> 0/1
  CHECK(s.labels[2] == std::vector<int32_t>{0, 4, 2});
  CHECK(s.labels[3] == std::vector<int32_t>{0, 1, 0});  // declared binary, -1 -> 0

  const mt::AttributeTable t = mt::read_attribute_file(fx.csv);
  CHECK(t.lines == std::vector<int>{2, 4, 5});
  CHECK(t.files == std::vector<std::string>{"a.png", "b.jpg", "c.bmp"});
  CHECK(mt::read_attribute_file(fx.attr).rows() == 4);
  // A UTF-8 byte-order mark before CelebA's count line is skipped.
  const mt::MultiImageSet bom = mt::load_image_folder(fx.with_attr("bom.txt", "\xEF\xBB\xBF" "2\nSmiling\na.png 1\nb.jpg -1\n"));
  CHECK(bom.labels[0] == std::vector<int32_t>{1, 0});
}

TEST_CASE("image folder: bad attribute and partition files") {
  Fixture fx;
  const std::string hdr = "4\nSmiling Young Male\na.png 1 -1 1\nb.jpg -1 -1 1\n";
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("bad/list_attr_celeba.txt", hdr + "c.bmp 1 1 -1\nd.png -1 1\n")),
              "list_attr_celeba.txt:6: expected 4 columns, got 3");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("a1.txt", hdr + "c.bmp 1 0 -1\nd.png -1 1 1\n")),
              "a1.txt:5: attribute 'Young' value 0 is not -1 or 1");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("a2.txt", hdr + "c.bmp 1 yes -1\nd.png -1 1 1\n")),
              "a2.txt:5: attribute 'Young' value yes is not -1 or 1");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("a3.txt", hdr + "c.bmp 1 1 -1\n")),
              "a3.txt:1: the header says 4 images, the file lists 3");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("a4.txt", "4\nSmiling Smiling\n")),
              "a4.txt:2: duplicate task name 'Smiling'");

  CHECK_ERROR(mt::load_image_folder(fx.with_attr("c1.csv", "file,digit:10\na.png,3\nb.jpg,12\n")),
              "c1.csv:3: task 'digit' value 12 outside [0, 10)");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("c2.csv", "file,digit,smile\na.png,3,1\nb.jpg,4\n")),
              "c2.csv:3: expected 3 columns, got 2");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("c3.csv", "file,digit\na.png,3\nb.jpg,x\n")),
              "c3.csv:3: task 'digit' value 'x' is not an integer");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("c4.csv", "file,smile\na.png,-1\nb.jpg,0\nc.bmp,1\n")),
              "c4.csv:2: task 'smile' value -1 is negative");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("c5.csv", "file,smile:2\na.png,-1\nb.jpg,0\n")),
              "c5.csv:2: task 'smile' mixes -1 and 0");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("c6.csv", "file,smile:2\na.png,1\nb.jpg,3\n")),
              "c6.csv:3: task 'smile' value 3 is not binary");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("c7.csv", "file,digit:1\na.png,0\n")),
              "c7.csv:1: column 'digit:1': the class count after ':' must be >= 2");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("c8.csv", "file\na.png\n")), "c8.csv:1: expected a header");

  mt::ImageFolderOptions o = fx.opts();
  o.labels_path = fx.dir / "nope.txt";
  CHECK_ERROR(mt::load_image_folder(o), "nope.txt: cannot open attribute file (No such file or directory)");
  o = fx.opts();
  o.tasks = {"Smiling", "Bald"};
  CHECK_ERROR(mt::load_image_folder(o), "no task 'Bald' in " + fx.attr + " (tasks: Smiling, Young, Male)");
  o = fx.opts();
  o.partition = mt::Partition::Val;
  CHECK_ERROR(mt::load_image_folder(o), "selecting the val partition needs a partition file");
  o.partition_path = fx.dir / "p1.txt";
  write_text(o.partition_path, "a.png 0\nb.jpg 0\nc.bmp 1\n");
  CHECK_ERROR(mt::load_image_folder(o), "p1.txt: no entry for 'd.png' (listed at " + fx.attr + ":6)");
  write_text(o.partition_path, "a.png 0\nb.jpg 3\n");
  CHECK_ERROR(mt::load_image_folder(o), "p1.txt:2: partition '3' is not 0, 1 or 2");
  write_text(o.partition_path, "a.png 0\nb.jpg\n");
  CHECK_ERROR(mt::load_image_folder(o), "p1.txt:2: expected 2 columns, got 1");
  write_text(o.partition_path, "a.png 0\nb.jpg 0\nc.bmp 0\nd.png 0\n");
  CHECK_ERROR(mt::load_image_folder(o), "no image selected from " + fx.attr + " (partition val)");
  o = fx.opts();
  o.channels = 4;
  CHECK_ERROR(mt::load_image_folder(o), "channels must be 1 or 3, got 4");
}

TEST_CASE("image folder: missing, truncated and non-image files") {
  Fixture fx;
  const std::string hdr = "file,smile\na.png,1\n";
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("m.csv", hdr + "missing.png,0\n")),
              fx.img + "/missing.png: cannot open image (No such file or directory), listed at " + fx.dir.path +
                  "/m.csv:3");

  // A PNG cut in half, a JPEG cut after its header, a text file named .bmp.
  for (const std::string name : {"a.png", "b.jpg"}) {
    std::ifstream in(fx.img + "/" + name, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_text(fx.img + "/cut_" + name, bytes.substr(0, bytes.size() / 2));
  }
  write_text(fx.img + "/text.bmp", "this is not an image\n");
  // (the cut PNG's last chunk now runs past the end: refused by its length, before decoding)
  for (const std::string name : {"cut_a.png", "cut_b.jpg", "text.bmp"}) {
    CAPTURE(name);
    const std::string msg =
        error_of([&] { mt::load_image_folder(fx.with_attr("t.csv", hdr + "b.jpg,0\n" + name + ",1\n")); });
    INFO("message: " << msg);
    const std::string why = name == "cut_a.png" ? ": PNG chunk 'IDAT' at byte " : ": cannot decode image (";
    CHECK(msg.find(fx.img + "/" + name + why) != std::string::npos);
    CHECK(msg.find(", listed at " + fx.dir.path + "/t.csv:4") != std::string::npos);
  }
  CHECK_ERROR(mt::load_image_chw(fx.img + "/text.bmp", 1, 8, 8, false, nullptr), "unknown image type");
}

// Peak resident memory of this process so far, in MB.
long peak_rss_mb() {
  struct rusage u {};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

// A 57-byte GIF whose screen descriptor declares w x h (one 1x1 frame follows):
// stb_image would allocate and clear 4*w*h bytes, and more, for its canvas.
std::string huge_gif(int w, int h) {
  std::string g = "GIF89a";
  g += char(w & 0xff), g += char(w >> 8), g += char(h & 0xff), g += char(h >> 8);
  g += std::string("\x80\x00\x00", 3);                    // global colour table of 2 entries
  g += std::string("\x00\x00\x00\xff\xff\xff", 6);     // black, white
  g += std::string("\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00", 10);  // a 1x1 frame at (0, 0)
  g += std::string("\x02\x02\x44\x01\x00", 5);          // its LZW data
  g += ";";
  g.resize(57, '\0');
  return g;
}

TEST_CASE("image folder: degenerate and huge declared sizes are named errors, rejected before decoding") {
  Fixture fx;
  const std::string hdr = "file,smile\na.png,1\n";
  // A PNM of width 0 decodes (stb_image accepts it) to a 0x5 image, on which
  // stb_image_resize aborted the process.
  write_text(fx.img + "/zero.pgm", "P5\n0 5\n255\n");
  write_text(fx.img + "/flat.pgm", "P5\n7 0\n255\n");
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("z.csv", hdr + "zero.pgm,0\n")),
              fx.img + "/zero.pgm: image declares 0x5 pixels, outside the limit (sides 1..16384, at most 16777216 "
                       "pixels), listed at " + fx.dir.path + "/z.csv:3");
  CHECK_ERROR(mt::load_image_chw(fx.img + "/flat.pgm", 3, 8, 8, true, nullptr), "image declares 7x0 pixels");

  // A binary PNM cut short: stb_image read a 16-bit one past its buffer (the
  // fuzzer's input, tests/fuzz/corpus/image/crash-pnm16-truncated); refused by
  // length, 8-bit and 16-bit alike, while a complete 16-bit one decodes.
  write_text(fx.img + "/short16.pgm", "P5\n75\n7652\n652\n" + std::string(100, '\0'));
  write_text(fx.img + "/short8.ppm", "P6\n4 4\n255\n" + std::string(20, '\x7f'));
  write_text(fx.img + "/full16.pgm", "P5\n2 2\n65535\n" + std::string(8, '\xff'));
  CHECK_ERROR(mt::load_image_chw(fx.img + "/short16.pgm", 1, 8, 8, false, nullptr),
              fx.img + "/short16.pgm: truncated PNM image: its header declares 75x7652 pixels of 2 bytes (1147800 "
                       "bytes), the file holds 115");
  CHECK_ERROR(mt::load_image_chw(fx.img + "/short8.ppm", 3, 8, 8, false, nullptr),
              "short8.ppm: truncated PNM image: its header declares 4x4 pixels of 3 bytes (48 bytes), the file holds 31");
  std::vector<uint8_t> px(8 * 8);
  mt::load_image_chw(fx.img + "/full16.pgm", 1, 8, 8, false, px.data());
  CHECK(px[0] == 255);

  // A PNG chunk declaring more bytes than the file holds: stb_image grew its
  // buffer to the declared length first (the fuzzer's input,
  // tests/fuzz/corpus/image/crash-png-idat-length: 2 GB for a 209-byte file);
  // refused by the chunk's length, before any decoding.
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + std::string("\0\0\0\x0dIHDR", 8) +
                    std::string("\0\0\0\x08\0\0\0\x08\x08\x02\0\0\0", 13) + "CRC!" +
                    std::string("\x78\x5e\0\0IDAT", 8) + std::string(20, 'x');
  write_text(fx.img + "/long-idat.png", png);
  CHECK_ERROR(mt::load_image_chw(fx.img + "/long-idat.png", 3, 8, 8, false, nullptr),
              fx.img + "/long-idat.png: PNG chunk 'IDAT' at byte 33 declares 2019426304 bytes, past the end of the "
                       "file (61 bytes)");

  // Tiny files declaring huge canvases, a folder of them decoded in parallel:
  // the first in file order is named, and no canvas is ever allocated.
  std::string rows = hdr;
  for (int i = 0; i < 64; ++i) {
    const std::string name = "huge" + std::to_string(i) + ".gif";
    write_text(fx.img + "/" + name, huge_gif(18735, 14406));
    rows += name + ",1\n";
  }
  REQUIRE(std::filesystem::file_size(fx.img + "/huge0.gif") == 57);
  const int saved = mt::num_threads();
  mt::set_num_threads(2);
  const long before = peak_rss_mb();
  CHECK_ERROR(mt::load_image_folder(fx.with_attr("h.csv", rows)),
              fx.img + "/huge0.gif: image declares 18735x14406 pixels, outside the limit");
  mt::set_num_threads(saved);
  // One decode of such a file would clear a 1 GB canvas (4 x 18735 x 14406 bytes).
  CHECK(peak_rss_mb() - before < 200);
  // Each side and the product are limits of their own.
  write_text(fx.img + "/wide.gif", huge_gif(16385, 1));
  write_text(fx.img + "/big.gif", huge_gif(4097, 4096));
  write_text(fx.img + "/fits.gif", huge_gif(16384, 2));
  CHECK_ERROR(mt::load_image_chw(fx.img + "/wide.gif", 3, 8, 8, false, nullptr), "image declares 16385x1 pixels");
  CHECK_ERROR(mt::load_image_chw(fx.img + "/big.gif", 3, 8, 8, false, nullptr), "image declares 4097x4096 pixels");
  std::vector<uint8_t> out(3 * 8 * 8);
  CHECK_NOTHROW(mt::load_image_chw(fx.img + "/fits.gif", 3, 8, 8, false, out.data()));
}

TEST_CASE("image folder: same pixels at 1 and 2 threads; pixel statistics") {
  Fixture fx;
  const int saved = mt::num_threads();
  mt::set_num_threads(1);
  const mt::MultiImageSet a = mt::load_image_folder(fx.opts(3, 5, 7));
  mt::set_num_threads(2);
  const mt::MultiImageSet b = mt::load_image_folder(fx.opts(3, 5, 7));
  mt::set_num_threads(saved);
  CHECK(a.pixels == b.pixels);

  mt::MultiImageSet s;
  s.pixels = {0, 255, 0, 255};
  auto [m, sd] = mt::pixel_stats(s);
  CHECK(m == doctest::Approx(0.5));
  CHECK(sd == doctest::Approx(0.5));
  s.pixels = {51, 51};
  std::tie(m, sd) = mt::pixel_stats(s);
  CHECK(m == doctest::Approx(0.2));
  CHECK(sd == 1.0f);
}
