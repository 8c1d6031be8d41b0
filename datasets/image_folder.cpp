// Image-folder reader. stb_image / stb_image_resize come precompiled in
// Debian's libstb (linked with -lstb): this file only includes the headers,
// no *_IMPLEMENTATION macro is defined anywhere in the engine.
#include "datasets/image_folder.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <system_error>
#include <unordered_map>
#include <unordered_set>

#include "engine/error.h"
#include "engine/parallel.h"

namespace mt {
namespace {

struct Line {
  int number;        // 1-based
  std::string text;  // without the line break (and a trailing '\r')
};

std::vector<Line> read_lines(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int e = errno;
    throw Error(path + ": cannot open " + what + " (" + std::generic_category().message(e) + ")");
  }
  std::vector<Line> lines;
  std::string s;
  int n = 0;
  while (std::getline(in, s)) {
    ++n;
    if (!s.empty() && s.back() == '\r') s.pop_back();
    if (n == 1 && s.compare(0, 3, "\xEF\xBB\xBF") == 0) s.erase(0, 3);  // a UTF-8 byte-order mark
    lines.push_back({n, s});
  }
  if (in.bad()) throw Error(path + ": read error");
  return lines;
}

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char ch) { return std::isspace(ch) != 0; });
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> split_blanks(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  for (;;) {
    const size_t c = s.find(',', b);
    out.push_back(trim(s.substr(b, c == std::string::npos ? std::string::npos : c - b)));
    if (c == std::string::npos) break;
    b = c + 1;
  }
  return out;
}

// Strict decimal integer (optional sign, nothing else).
bool parse_int(const std::string& s, long& v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  v = std::strtol(s.c_str(), &end, 10);
  return errno == 0 && end == s.c_str() + s.size() && !std::isspace(static_cast<unsigned char>(s[0]));
}

std::string at(const std::string& path, int line) { return path + ":" + std::to_string(line) + ": "; }

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

void check_unique_names(const std::vector<std::string>& names, const std::string& where) {
  std::unordered_set<std::string> seen;
  for (const auto& n : names) {
    if (n.empty()) throw Error(where + "empty task name");
    if (!seen.insert(n).second) throw Error(where + "duplicate task name '" + n + "'");
  }
}

const char* partition_name(Partition p) {
  switch (p) {
    case Partition::Train: return "train";
    case Partition::Val: return "val";
    case Partition::Test: return "test";
    default: return "all";
  }
}

}  // namespace

AttributeTable read_celeba_attributes(const std::string& path) {
  const std::vector<Line> lines = read_lines(path, "attribute file");
  AttributeTable t;
  t.source = path;
  size_t k = 0;
  auto next_nonblank = [&]() -> const Line* {
    while (k < lines.size() && is_blank(lines[k].text)) ++k;
    return k < lines.size() ? &lines[k++] : nullptr;
  };
  const Line* count_line = next_nonblank();
  if (!count_line) throw Error(path + ": empty attribute file");
  long count = 0;
  const std::vector<std::string> count_tok = split_blanks(count_line->text);
  if (count_tok.size() != 1 || !parse_int(count_tok[0], count) || count < 0)
    throw Error(at(path, count_line->number) + "expected the number of images, got '" + trim(count_line->text) +
                "'");
  const Line* names_line = next_nonblank();
  if (!names_line) throw Error(path + ": missing the line of attribute names");
  t.task_names = split_blanks(names_line->text);
  check_unique_names(t.task_names, at(path, names_line->number));
  const size_t T = t.task_names.size();
  t.num_classes.assign(T, 2);
  t.binary.assign(T, true);
  t.labels.assign(T, {});
  const std::string expected = "expected " + std::to_string(T + 1) + " columns, got ";
  for (; k < lines.size(); ++k) {
    const Line& ln = lines[k];
    if (is_blank(ln.text)) continue;
    const std::vector<std::string> tok = split_blanks(ln.text);
    if (tok.size() != T + 1) throw Error(at(path, ln.number) + expected + std::to_string(tok.size()));
    for (size_t c = 0; c < T; ++c) {
      long v = 0;
      if (!parse_int(tok[c + 1], v) || (v != -1 && v != 1))
        throw Error(at(path, ln.number) + "attribute '" + t.task_names[c] + "' value " + tok[c + 1] +
                    " is not -1 or 1");
      t.labels[c].push_back(v == 1 ? 1 : 0);
    }
    t.files.push_back(tok[0]);
    t.lines.push_back(ln.number);
  }
  if (static_cast<long>(t.files.size()) != count)
    throw Error(at(path, count_line->number) + "the header says " + std::to_string(count) +
                " images, the file lists " + std::to_string(t.files.size()));
  return t;
}

AttributeTable read_csv_attributes(const std::string& path) {
  const std::vector<Line> lines = read_lines(path, "attribute file");
  AttributeTable t;
  t.source = path;
  size_t k = 0;
  while (k < lines.size() && is_blank(lines[k].text)) ++k;
  if (k == lines.size()) throw Error(path + ": empty attribute file");
  const Line& head = lines[k++];
  const std::vector<std::string> cols = split_commas(head.text);
  if (cols.size() < 2)
    throw Error(at(path, head.number) + "expected a header 'file,task1,...' with at least one task, got '" +
                head.text + "'");
  const size_t T = cols.size() - 1;
  std::vector<int> declared(T, 0);  // 0: infer from the values
  for (size_t c = 0; c < T; ++c) {
    std::string name = cols[c + 1];
    const size_t colon = name.rfind(':');
    if (colon != std::string::npos) {
      long K = 0;
      const std::string ks = trim(name.substr(colon + 1));
      if (!parse_int(ks, K) || K < 2 || K > (1L << 30))
        throw Error(at(path, head.number) + "column '" + name + "': the class count after ':' must be >= 2");
      declared[c] = static_cast<int>(K);
      name = trim(name.substr(0, colon));
    }
    t.task_names.push_back(name);
  }
  check_unique_names(t.task_names, at(path, head.number));

  // Raw values first: a column's kind may depend on all of its values.
  std::vector<std::vector<long>> raw(T);
  const std::string expected = "expected " + std::to_string(T + 1) + " columns, got ";
  for (; k < lines.size(); ++k) {
    const Line& ln = lines[k];
    if (is_blank(ln.text)) continue;
    const std::vector<std::string> tok = split_commas(ln.text);
    if (tok.size() != T + 1) throw Error(at(path, ln.number) + expected + std::to_string(tok.size()));
    if (tok[0].empty()) throw Error(at(path, ln.number) + "empty file name");
    for (size_t c = 0; c < T; ++c) {
      long v = 0;
      if (!parse_int(tok[c + 1], v))
        throw Error(at(path, ln.number) + "task '" + t.task_names[c] + "' value '" + tok[c + 1] +
                    "' is not an integer");
      raw[c].push_back(v);
    }
    t.files.push_back(tok[0]);
    t.lines.push_back(ln.number);
  }

  t.num_classes.assign(T, 0);
  t.binary.assign(T, false);
  t.labels.assign(T, {});
  const size_t n = t.files.size();
  for (size_t c = 0; c < T; ++c) {
    const std::string task = "task '" + t.task_names[c] + "'";
    bool has_minus = false, has_zero = false, only_pm = true, only_01 = true;
    long hi = 0;
    for (long v : raw[c]) {
      has_minus |= v == -1;
      has_zero |= v == 0;
      only_pm &= v == -1 || v == 1;
      only_01 &= v == 0 || v == 1;
      hi = std::max(hi, v);
    }
    const bool binary = declared[c] == 2 || (declared[c] == 0 && (only_pm || only_01));
    auto& lab = t.labels[c];
    lab.resize(n);
    if (binary) {
      for (size_t i = 0; i < n; ++i) {
        const long v = raw[c][i];
        if (v != -1 && v != 0 && v != 1)
          throw Error(at(path, t.lines[i]) + task + " value " + std::to_string(v) +
                      " is not binary (0/1 or -1/1)");
        if (has_minus && has_zero)
          throw Error(at(path, t.lines[i]) + task + " mixes -1 and 0 (binary columns are 0/1 or -1/1)");
        lab[i] = v == 1 ? 1 : 0;
      }
      t.num_classes[c] = 2;
      t.binary[c] = true;
      continue;
    }
    long K = declared[c];
    if (K == 0) {
      // Inferred multi-class: negative values cannot be class ids.
      for (size_t i = 0; i < n; ++i)
        if (raw[c][i] < 0)
          throw Error(at(path, t.lines[i]) + task + " value " + std::to_string(raw[c][i]) +
                      " is negative (class ids are >= 0; binary columns are 0/1 or -1/1)");
      K = hi + 1;
      if (K > (1L << 30)) throw Error(path + ": " + task + " has too many classes (" + std::to_string(K) + ")");
    }
    for (size_t i = 0; i < n; ++i) {
      const long v = raw[c][i];
      if (v < 0 || v >= K)
        throw Error(at(path, t.lines[i]) + task + " value " + std::to_string(v) + " outside [0, " +
                    std::to_string(K) + ")");
      lab[i] = static_cast<int32_t>(v);
    }
    t.num_classes[c] = static_cast<int>(K);
  }
  return t;
}

AttributeTable read_attribute_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string first;
  while (in && std::getline(in, first) && is_blank(first)) {
  }
  if (first.compare(0, 3, "\xEF\xBB\xBF") == 0) first.erase(0, 3);
  const std::vector<std::string> tok = split_blanks(first);
  long v = 0;
  // (An unreadable file goes to the CSV reader, which reports it.)
  if (tok.size() == 1 && parse_int(tok[0], v)) return read_celeba_attributes(path);
  return read_csv_attributes(path);
}

std::vector<int> read_partition_file(const std::string& path, const AttributeTable& table) {
  const std::vector<Line> lines = read_lines(path, "partition file");
  std::unordered_map<std::string, int> part;
  bool first = true;
  for (const Line& ln : lines) {
    if (is_blank(ln.text)) continue;
    std::vector<std::string> tok =
        ln.text.find(',') != std::string::npos ? split_commas(ln.text) : split_blanks(ln.text);
    if (tok.size() != 2)
      throw Error(at(path, ln.number) + "expected 2 columns, got " + std::to_string(tok.size()));
    long v = -1;
    const bool ok = parse_int(tok[1], v);
    if (first && !ok) {  // a header such as "image_id,partition"
      first = false;
      continue;
    }
    first = false;
    if (!ok || v < 0 || v > 2)
      throw Error(at(path, ln.number) + "partition '" + tok[1] + "' is not 0, 1 or 2");
    part[tok[0]] = static_cast<int>(v);
  }
  std::vector<int> out(table.files.size());
  for (size_t i = 0; i < table.files.size(); ++i) {
    const auto it = part.find(table.files[i]);
    if (it == part.end())
      throw Error(path + ": no entry for '" + table.files[i] + "' (listed at " + table.source + ":" +
                  std::to_string(table.lines[i]) + ")");
    out[i] = it->second;
  }
  return out;
}

// A binary PNM (P5 grey, P6 RGB) must hold the pixels its header declares:
// stb_image reads a 16-bit one (maxval > 255) that is cut short past the end
// of its buffer (found by the fuzzer: a 75 x 7652 16-bit P5 of 15 bytes). The
// file's length against w * h * comp samples of 1 or 2 bytes (the header adds
// to the length, so this only refuses files too short for the pixels alone).
// The file position is restored.
static void check_pnm_length(FILE* f, const std::string& path, int iw, int ih, int comp, const std::string& where) {
  const long at = std::ftell(f);
  char magic[2] = {0, 0};
  const bool pnm = std::fread(magic, 1, 2, f) == 2 && magic[0] == 'P' && (magic[1] == '5' || magic[1] == '6');
  std::fseek(f, 0, SEEK_END);
  const long length = std::ftell(f);
  std::fseek(f, at, SEEK_SET);
  if (!pnm) return;
  const int bytes = stbi_is_16_bit_from_file(f) ? 2 : 1;  // restores the position too
  const int64_t need = int64_t(iw) * ih * comp * bytes;
  if (length < need)
    throw Error(path + ": truncated PNM image: its header declares " + std::to_string(iw) + "x" + std::to_string(ih) +
                " pixels of " + std::to_string(comp * bytes) + " bytes (" + std::to_string(need) +
                " bytes), the file holds " + std::to_string(length) + where);
}

// A PNG's chunks must lie inside the file: stb_image grows its buffer for an
// IDAT chunk to the length the chunk declares before it reads the data (found
// by the fuzzer: a 209-byte PNG whose second IDAT declares 2019451701 bytes
// made it allocate 2 GB). Each chunk's length against the bytes left, up to
// IEND; other files are left alone. The file position is restored.
static void check_png_chunks(FILE* f, const std::string& path, const std::string& where) {
  const long at = std::ftell(f);
  static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  unsigned char head[8];
  const bool png = std::fread(head, 1, 8, f) == 8 && std::memcmp(head, signature, 8) == 0;
  std::fseek(f, 0, SEEK_END);
  const long length = std::ftell(f);
  std::string error;
  for (long pos = 8; png && pos + 8 <= length;) {
    std::fseek(f, pos, SEEK_SET);
    unsigned char c[8];
    if (std::fread(c, 1, 8, f) != 8) break;
    const uint32_t n = uint32_t(c[0]) << 24 | uint32_t(c[1]) << 16 | uint32_t(c[2]) << 8 | c[3];
    const std::string type(reinterpret_cast<const char*>(c + 4), 4);
    const long left = length - pos - 12;  // after the chunk's length, type and CRC
    if (int64_t(n) > left) {
      error = path + ": PNG chunk '" + type + "' at byte " + std::to_string(pos) + " declares " + std::to_string(n) +
              " bytes, past the end of the file (" + std::to_string(length) + " bytes)" + where;
      break;
    }
    if (type == "IEND") break;
    pos += 12 + long(n);
  }
  std::fseek(f, at, SEEK_SET);
  if (!error.empty()) throw Error(error);
}

void load_image_chw(const std::string& path, int channels, int h, int w, bool center_crop, uint8_t* out,
                    const std::string& where) {
  if (channels != 1 && channels != 3)
    throw Error("load_image: channels must be 1 or 3, got " + std::to_string(channels));
  if (h < 1 || w < 1)
    throw Error("load_image: size must be >= 1x1, got " + std::to_string(h) + "x" + std::to_string(w));
  struct Closer {
    void operator()(FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<FILE, Closer> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    const int e = errno;
    throw Error(path + ": cannot open image (" + std::generic_category().message(e) + ")" + where);
  }
  auto decode_error = [&]() {
    const char* why = stbi_failure_reason();
    return Error(path + ": cannot decode image (" + std::string(why ? why : "unknown reason") + ")" + where);
  };
  // The declared size first, from the header (stbi_info restores the file
  // position): a few bytes can declare a canvas that costs gigabytes to decode.
  // stb_image also accepts some zero sizes (a PNM of width 0), on which
  // stb_image_resize would abort.
  int iw = 0, ih = 0, comp = 0;
  auto check_size = [&](const char* what) {
    if (iw < 1 || ih < 1 || iw > kMaxImageSide || ih > kMaxImageSide || int64_t(iw) * ih > kMaxImagePixels)
      throw Error(path + ": image " + what + " " + std::to_string(iw) + "x" + std::to_string(ih) +
                  " pixels, outside the limit (sides 1.." + std::to_string(kMaxImageSide) + ", at most " +
                  std::to_string(kMaxImagePixels) + " pixels)" + where);
  };
  if (!stbi_info_from_file(f.get(), &iw, &ih, &comp)) throw decode_error();
  check_size("declares");
  check_pnm_length(f.get(), path, iw, ih, comp, where);
  check_png_chunks(f.get(), path, where);
  stbi_uc* px = stbi_load_from_file(f.get(), &iw, &ih, &comp, channels);
  f.reset();
  if (!px) throw decode_error();
  std::unique_ptr<stbi_uc, void (*)(void*)> hold(px, stbi_image_free);
  check_size("decodes to");  // the same as declared, for every format stb_image reads
  const stbi_uc* src = px;
  const int stride = iw * channels;
  int sw = iw, sh = ih;
  if (center_crop && iw != ih) {
    const int side = std::min(iw, ih);
    src += size_t((ih - side) / 2) * size_t(stride) + size_t((iw - side) / 2) * size_t(channels);
    sw = sh = side;
  }
  std::vector<uint8_t> hwc;
  if (sw != w || sh != h) {
    hwc.resize(size_t(h) * size_t(w) * size_t(channels));
    if (!stbir_resize_uint8(src, sw, sh, stride, hwc.data(), w, h, 0, channels))
      throw Error(path + ": cannot resize image from " + std::to_string(sw) + "x" + std::to_string(sh) + " to " +
                  std::to_string(w) + "x" + std::to_string(h) + where);
    src = hwc.data();
  }
  const int row = sw != w || sh != h ? w * channels : stride;
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        out[(size_t(c) * size_t(h) + size_t(y)) * size_t(w) + size_t(x)] =
            src[size_t(y) * size_t(row) + size_t(x) * size_t(channels) + size_t(c)];
}

ImageFolderOptions celeba_options(const std::string& root, Partition partition) {
  ImageFolderOptions o;
  o.images_dir = join_path(root, "img_align_celeba");
  o.labels_path = join_path(root, "list_attr_celeba.txt");
  o.partition_path = join_path(root, "list_eval_partition.txt");
  o.partition = partition;
  return o;
}

MultiImageSet load_image_folder(const ImageFolderOptions& o) {
  const std::string me = "imagefolder: ";
  if (o.channels != 1 && o.channels != 3)
    throw Error(me + "channels must be 1 or 3, got " + std::to_string(o.channels));
  if (o.height < 1 || o.width < 1)
    throw Error(me + "image size must be >= 1x1, got " + std::to_string(o.height) + "x" + std::to_string(o.width));
  if (o.max_images < 0) throw Error(me + "max_images must be >= 0, got " + std::to_string(o.max_images));
  if (o.labels_path.empty()) throw Error(me + "no attribute file given");
  if (o.partition != Partition::All && o.partition_path.empty())
    throw Error(me + std::string("selecting the ") + partition_name(o.partition) + " partition needs a partition file");

  const AttributeTable table = read_attribute_file(o.labels_path);

  std::vector<int> task_idx;
  if (o.tasks.empty()) {
    for (size_t c = 0; c < table.task_names.size(); ++c) task_idx.push_back(static_cast<int>(c));
  } else {
    std::unordered_set<std::string> seen;
    for (const auto& name : o.tasks) {
      const auto it = std::find(table.task_names.begin(), table.task_names.end(), name);
      if (it == table.task_names.end())
        throw Error(me + "no task '" + name + "' in " + o.labels_path + " (tasks: " + join(table.task_names) + ")");
      if (!seen.insert(name).second) throw Error(me + "task '" + name + "' selected twice");
      task_idx.push_back(static_cast<int>(it - table.task_names.begin()));
    }
  }

  std::vector<int> rows;
  if (o.partition == Partition::All) {
    for (int i = 0; i < table.rows(); ++i) rows.push_back(i);
  } else {
    const std::vector<int> part = read_partition_file(o.partition_path, table);
    for (int i = 0; i < table.rows(); ++i)
      if (part[size_t(i)] == static_cast<int>(o.partition)) rows.push_back(i);
  }
  if (o.max_images > 0 && static_cast<int>(rows.size()) > o.max_images) rows.resize(size_t(o.max_images));
  if (rows.empty())
    throw Error(me + "no image selected from " + o.labels_path + " (partition " + partition_name(o.partition) + ")");

  MultiImageSet s;
  s.n = static_cast<int>(rows.size());
  s.c = o.channels;
  s.h = o.height;
  s.w = o.width;
  s.mean = o.mean;
  s.std = o.std;
  s.pixels.resize(size_t(s.n) * s.image_size());
  for (int c : task_idx) {
    s.task_names.push_back(table.task_names[size_t(c)]);
    s.num_classes.push_back(table.num_classes[size_t(c)]);
    s.binary.push_back(table.binary[size_t(c)]);
    std::vector<int32_t> lab(rows.size());
    for (size_t k = 0; k < rows.size(); ++k) lab[k] = table.labels[size_t(c)][size_t(rows[k])];
    s.labels.push_back(std::move(lab));
  }

  // Decode in parallel; remember the first failure in file order.
  std::vector<std::string> errors(rows.size());
  std::vector<char> failed(rows.size(), 0);
  const size_t sz = s.image_size();
  parallel_for(static_cast<int64_t>(rows.size()), 32, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const int r = rows[size_t(k)];
      const std::string& name = table.files[size_t(r)];
      const std::string path = (name[0] == '/' || o.images_dir.empty()) ? name : join_path(o.images_dir, name);
      try {
        load_image_chw(path, o.channels, o.height, o.width, o.center_crop, s.pixels.data() + size_t(k) * sz,
                       ", listed at " + table.source + ":" + std::to_string(table.lines[size_t(r)]));
      } catch (const std::exception& ex) {
        errors[size_t(k)] = ex.what();
        failed[size_t(k)] = 1;
      }
    }
  });
  for (size_t k = 0; k < rows.size(); ++k)
    if (failed[k]) throw Error(errors[k]);
  s.validate(o.labels_path);
  return s;
}

std::pair<float, float> pixel_stats(const MultiImageSet& s) {
  if (s.pixels.empty()) throw Error("pixel_stats: empty set");
  // Integer histogram: exact and independent of order.
  std::vector<uint64_t> hist(256, 0);
  for (uint8_t p : s.pixels) ++hist[p];
  double n = 0, sum = 0, sq = 0;
  for (int v = 0; v < 256; ++v) {
    const double x = v / 255.0, c = double(hist[size_t(v)]);
    n += c;
    sum += c * x;
    sq += c * x * x;
  }
  const double mean = sum / n;
  const double sd = std::sqrt(std::max(0.0, sq / n - mean * mean));
  return {static_cast<float>(mean), static_cast<float>(sd > 1e-6 ? sd : 1.0)};  // constant images: std 1
}

}  // namespace mt
