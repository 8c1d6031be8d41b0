// C99 emission of a layer graph (see emit_c.h).
#include "mtl/export/emit_c.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <set>

#include "engine/error.h"

namespace mt {

bool is_c_identifier(const std::string& s) {
  if (s.empty() || s.size() > 64 || !(std::isalpha((unsigned char)s[0]) || s[0] == '_')) return false;
  for (char ch : s)
    if (!(std::isalnum((unsigned char)ch) || ch == '_')) return false;
  return true;
}

std::string c_identifier(const std::string& s) {
  std::string r;
  for (char ch : s) r += std::isalnum((unsigned char)ch) ? ch : '_';
  if (r.empty() || std::isdigit((unsigned char)r[0])) r = "_" + r;
  return r;
}

namespace {

std::string str(int64_t v) { return std::to_string(v); }

// A float literal that reads back as the same float ("%.9g" round-trips binary32).
std::string c_float(float v) {
  check(std::isfinite(v), "export", "a weight or scale is not finite (" + std::to_string(v) + ")");
  char b[48];
  std::snprintf(b, sizeof b, "%.9g", (double)v);
  std::string s = b;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s + "f";
}

// Accumulates the const arrays and counts their bytes.
struct Arrays {
  std::string text;
  int64_t bytes = 0;

  template <class T, class F>
  void add(const std::string& type, int elem_bytes, const std::string& name, const std::vector<T>& v, F fmt,
           int per_line) {
    text += "static const " + type + " " + name + "[" + str((int64_t)v.size()) + "] = {";
    for (size_t i = 0; i < v.size(); i++) {
      if (i % (size_t)per_line == 0) text += "\n ";
      text += " " + fmt(v[i]) + (i + 1 < v.size() ? "," : "");
    }
    text += "\n};\n";
    bytes += (int64_t)elem_bytes * (int64_t)v.size();
  }
  void floats(const std::string& name, const std::vector<float>& v) {
    add("float", 4, name, v, c_float, 6);
  }
  void ints(const std::string& type, int elem_bytes, const std::string& name, const std::vector<int64_t>& v) {
    add(type, elem_bytes, name, v, [](int64_t x) { return str(x); }, type == "int8_t" ? 16 : 10);
  }
  // the smallest unsigned type holding every index
  void indices(const std::string& name, const std::vector<int64_t>& v) {
    const int64_t m = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
    if (m < 256) ints("uint8_t", 1, name, v);
    else if (m < 65536) ints("uint16_t", 2, name, v);
    else ints("uint32_t", 4, name, v);
  }
};

struct Emitter {
  const LayerGraph& g;
  const QuantGraph* q;
  const CEmitInfo& info;
  Arrays arrays;
  std::string functions;
  std::string calls;
  MemoryPlan plan;

  bool int8() const { return q != nullptr; }
  std::string elem() const { return int8() ? "int8_t" : "float"; }

  // ---- memory -------------------------------------------------------------------
  bool in_arena(int v) const {
    if (v == 0) return int8();  // fp32 reads the caller's input
    const int p = g.producer(v);
    return p >= 0 && g.layers[(size_t)p].task < 0;  // task outputs go to outputs[]
  }

  void make_plan() {
    const int64_t eb = int8() ? 1 : 4;
    std::vector<ArenaBuffer> bufs;
    for (int v = 0; v < (int)g.values.size(); v++) {
      if (!in_arena(v) || (v > 0 && g.producer(v) < 0)) continue;
      ArenaBuffer b;
      b.name = "v" + str(v);
      b.bytes = g.values[(size_t)v].size() * eb;
      b.first = v == 0 ? 0 : g.producer(v) + 1;
      b.last = b.first;
      for (int c : g.consumers(v)) b.last = std::max(b.last, c + 1);
      b.align = eb;
      bufs.push_back(b);
    }
    for (size_t i = 0; i < g.layers.size(); i++) {
      const GraphLayer& l = g.layers[i];
      if (l.kind != LayerKind::Linear) continue;
      if (l.in.size() > 1) {
        int64_t n = 0;
        for (int v : l.in) n += g.values[(size_t)v].size();
        bufs.push_back({"cat" + str((int64_t)i), n * eb, (int)i + 1, (int)i + 1, eb, -1});
      }
      if (int8())
        bufs.push_back({"acc" + str((int64_t)i), 4 * (int64_t)l.outputs() * q->layers[i].segments(), (int)i + 1,
                        (int)i + 1, 4, -1});
    }
    plan = plan_arena(bufs);
    plan.bytes = (plan.bytes + 3) / 4 * 4;
  }

  // pointer expression to buffer `name` in the arena
  std::string at(const std::string& name) const {
    const int64_t off = plan.find(name).offset;
    return int8() ? "a + " + str(off) : "a + " + str(off / 4);
  }
  std::string value_ptr(int v) const { return (v == 0 && !int8()) ? "input" : at("v" + str(v)); }

  // " /* 10x12x12 -> 20x4x4 */": what a call reads and writes (stored elements)
  std::string shape_comment(const GraphLayer& l) const {
    auto shape = [&](int v) {
      const GraphValue& x = g.values[(size_t)v];
      return x.pos.empty() ? (x.h * x.w == 1 ? str(x.c) : str(x.c) + "x" + str(x.h) + "x" + str(x.w)) : str(x.size());
    };
    std::string in;
    for (int v : l.in) in += (in.empty() ? "" : " + ") + shape(v);
    return " /* " + (in.empty() ? std::string("nothing") : in) + " -> " + shape(l.out) + " */";
  }

  // ---- conv ----------------------------------------------------------------------
  void conv(size_t li) {
    const GraphLayer& l = g.layers[li];
    const std::string id = c_identifier(l.name);
    const GraphValue& x = g.values[(size_t)l.in[0]];
    const GraphValue& y = g.values[(size_t)l.out];
    const int64_t per = (int64_t)l.in_c * l.k * l.k;
    bool identity = (int)l.filter_of.size() == l.filters();
    for (size_t o = 0; o < l.filter_of.size(); o++) identity = identity && l.filter_of[o] == (int)o;
    const bool any_min = std::find(l.min_pool.begin(), l.min_pool.end(), 1) != l.min_pool.end();
    const bool sparse_pos = !y.pos.empty();
    // int8 without padding: sum w (x - z) = sum w x - z sum w, the second term folded into
    // the bias (the same integers; with padding the border reads no x, so it stays explicit)
    const bool fold_zp = int8() && l.pad == 0;
    const int32_t z_in = int8() ? q->values[(size_t)l.in[0]].zero_point : 0;

    // arrays
    if (int8()) {
      const QuantLayer& ql = q->layers[li];
      std::vector<int64_t> bias(ql.bias.begin(), ql.bias.end());
      if (fold_zp)
        for (size_t o = 0; o < bias.size(); o++) {
          int64_t sw = 0;
          for (int64_t i = 0; i < per; i++) sw += ql.W[(size_t)(l.filter_of[o] * per + i)];
          bias[o] -= (int64_t)z_in * sw;
        }
      arrays.ints("int8_t", 1, id + "_w", std::vector<int64_t>(ql.W.begin(), ql.W.end()));
      arrays.ints("int32_t", 4, id + "_b", bias);
      arrays.ints("int32_t", 4, id + "_m", std::vector<int64_t>(ql.multiplier.begin(), ql.multiplier.end()));
      arrays.ints("int8_t", 1, id + "_s", std::vector<int64_t>(ql.shift.begin(), ql.shift.end()));
    } else {
      arrays.floats(id + "_w", l.W);
      arrays.floats(id + "_b", l.b);
    }
    if (!identity) arrays.indices(id + "_f", std::vector<int64_t>(l.filter_of.begin(), l.filter_of.end()));
    if (any_min) arrays.indices(id + "_mp", std::vector<int64_t>(l.min_pool.begin(), l.min_pool.end()));
    if (sparse_pos) {
      std::vector<int64_t> starts{0}, pos;
      for (const auto& p : y.pos) {
        pos.insert(pos.end(), p.begin(), p.end());
        starts.push_back((int64_t)pos.size());
      }
      arrays.indices(id + "_ps", starts);
      arrays.indices(id + "_p", pos);
    }

    const std::string T = elem(), A = int8() ? "int32_t" : "float";
    const std::string K = str(l.k), H = str(x.h), W = str(x.w), P = str(l.pool), S = str(l.stride);
    std::string f;
    f += "/* " + l.name + ": conv " + str(l.in_c) + "->" + str(y.c) + " " + K + "x" + K +
         (l.stride != 1 ? " stride " + S : "") + (l.pad ? " pad " + str(l.pad) : "") +
         (l.pool > 1 ? ", " + std::string(any_min ? "max/min" : "max") + "-pool " + P : "") +
         (l.relu ? ", ReLU" : "") + ": " + str(x.c) + "x" + H + "x" + W + " -> " + str(y.c) + "x" +
         str(y.h) + "x" + str(y.w) + (sparse_pos ? " (" + str(y.size()) + " kept positions)" : "") + " */\n";
    f += "static void " + id + "(const " + T + "* x, " + T + "* y)\n{\n";
    // no padding and a pool window of at most 4: the window's convolutions at once, one
    // accumulator each, so each weight is loaded once
    const bool together = l.pad == 0 && l.pool * l.pool <= 4;
    f += std::string(together ? "  int o, c, i;\n" : l.pad ? "  int o, dy, dx, c, i, j;\n" : "  int o, dy, dx, c, i;\n");
    f += std::string(sparse_pos ? "  int q;\n" : "  int py, px;\n");
    f += "  for (o = 0; o < " + str(y.c) + "; o++) {\n";
    f += "    const " + T + "* const w = " + id + "_w + " + (identity ? std::string("o") : id + "_f[o]") + " * " +
         str(per) + ";\n";
    std::string ind = "    ";
    if (sparse_pos) {
      f += ind + "for (q = " + id + "_ps[o]; q < " + id + "_ps[o + 1]; q++) {\n";
      ind += "  ";
      f += ind + "const int py = " + id + "_p[q] / " + str(y.w) + ", px = " + id + "_p[q] % " + str(y.w) + ";\n";
    } else {
      f += ind + "for (py = 0; py < " + str(y.h) + "; py++)\n";
      f += ind + "  for (px = 0; px < " + str(y.w) + "; px++) {\n";
      ind += "  ";
    }
    auto better = [&](const std::string& a) {
      return any_min ? "(" + id + "_mp[o] ? " + a + " < best : " + a + " > best)" : a + " > best";
    };
    if (together) {
      // window (dy, dx) starts dy * stride rows and dx * stride columns after window (0, 0);
      // accumulator a<dy * pool + dx> gets the same additions in the same order as the loops
      const int n = l.pool * l.pool;
      f += ind + "const " + T + "* xc = x + py * " + str((int64_t)l.pool * l.stride * x.w) + " + px * " +
           str((int64_t)l.pool * l.stride) + ";\n";
      f += ind + "const " + T + "* wp = w;\n";
      f += ind + A + " best";
      for (int a = 0; a < n; a++) f += ", a" + str(a) + " = 0";
      f += ";\n";
      f += ind + "for (c = 0; c < " + str(l.in_c) + "; c++, xc += " + str((int64_t)x.h * x.w) + ")\n";
      f += ind + "  for (i = 0; i < " + K + "; i++, wp += " + K + ") {\n";
      f += ind + "    const " + T + "* const xr = xc + i * " + W + ";\n";
      for (int j = 0; j < l.k; j++) {
        f += ind + "   ";
        for (int a = 0; a < n; a++) {
          const int64_t off = (int64_t)(a / l.pool) * l.stride * x.w + (int64_t)(a % l.pool) * l.stride + j;
          f += " a" + str(a) + " += wp[" + str(j) + "] * xr[" + str(off) + "];";
        }
        f += "\n";
      }
      f += ind + "  }\n";
      f += ind + "best = a0;\n";
      for (int a = 1; a < n; a++) f += ind + "if (" + better("a" + str(a)) + ") best = a" + str(a) + ";\n";
    } else {
      f += ind + A + " best = 0;\n";
      f += ind + "for (dy = 0; dy < " + P + "; dy++)\n";
      f += ind + "  for (dx = 0; dx < " + P + "; dx++) {\n";
      const std::string in2 = ind + "    ";
      f += in2 + "const int y0 = (py * " + P + " + dy) * " + S + " - " + str(l.pad) + ", x0 = (px * " + P + " + dx) * " +
           S + " - " + str(l.pad) + ";\n";
      f += in2 + A + " acc = 0;\n";
      if (l.pad) {
        f += in2 + "for (c = 0; c < " + str(l.in_c) + "; c++)\n";
        f += in2 + "  for (i = 0; i < " + K + "; i++) {\n";
        const std::string in3 = in2 + "    ";
        f += in3 + "if (y0 + i < 0 || y0 + i >= " + H + ") continue;\n";
        f += in3 + "for (j = 0; j < " + K + "; j++) {\n";
        f += in3 + "  if (x0 + j < 0 || x0 + j >= " + W + ") continue;\n";
        const std::string xv = "x[(c * " + H + " + y0 + i) * " + W + " + x0 + j]";
        const std::string wv = "w[(c * " + K + " + i) * " + K + " + j]";
        f += in3 + "  acc += " + wv + " * " + (int8() ? "(" + xv + " - (" + str(z_in) + "))" : xv) + ";\n";
        f += in3 + "}\n";
        f += in2 + "  }\n";
      } else {
        f += in2 + "const " + T + "* xc = x + y0 * " + W + " + x0;\n";
        f += in2 + "const " + T + "* wp = w;\n";
        f += in2 + "for (c = 0; c < " + str(l.in_c) + "; c++, xc += " + str((int64_t)x.h * x.w) + ")\n";
        f += in2 + "  for (i = 0; i < " + K + "; i++, wp += " + K + ") {\n";
        f += in2 + "    const " + T + "* const xr = xc + i * " + W + ";\n";
        for (int j = 0; j < l.k; j++) f += in2 + "    acc += wp[" + str(j) + "] * xr[" + str(j) + "];\n";
        f += in2 + "  }\n";
      }
      f += in2 + "if ((dy == 0 && dx == 0) || " + better("acc") + ") best = acc;\n";
      f += ind + "  }\n";
    }
    if (int8()) {
      const QuantLayer& ql = q->layers[li];
      f += ind + "{\n";
      f += ind + "  const int32_t v = requantize(best + " + id + "_b[o], " + id + "_m[o], " + id + "_s[o]) + (" +
           str(q->values[(size_t)l.out].zero_point) + ");\n";
      f += ind + "  *y++ = (int8_t)(v < " + str(ql.act_min) + " ? " + str(ql.act_min) + " : v > 127 ? 127 : v);\n";
      f += ind + "}\n";
    } else {
      f += ind + "{\n";
      f += ind + "  const float v = best + " + id + "_b[o];\n";
      f += ind + (l.relu ? "  *y++ = v > 0.0f ? v : 0.0f;\n" : "  *y++ = v;\n");
      f += ind + "}\n";
    }
    f += "    }\n";
    f += "  }\n}\n\n";
    functions += f;
    calls += "  " + id + "(" + value_ptr(l.in[0]) + ", " + value_ptr(l.out) + ");" + shape_comment(l) + "\n";
  }

  // ---- linear --------------------------------------------------------------------
  void linear(size_t li) {
    const GraphLayer& l = g.layers[li];
    const std::string id = c_identifier(l.name);
    const int O = l.outputs(), J = l.columns();
    bool single = true, identity = true;
    for (int j = 0; j < J; j++) {
      single = single && l.cols[(size_t)j].size() == 1;
      identity = identity && single && l.cols[(size_t)j][0] == j;
    }
    // column-major weights
    std::vector<float> WT((size_t)O * J);
    std::vector<int64_t> WTq((size_t)O * J);
    for (int o = 0; o < O; o++)
      for (int j = 0; j < J; j++) {
        WT[(size_t)j * O + o] = l.W[(size_t)o * J + j];
        if (int8()) WTq[(size_t)j * O + o] = q->layers[li].W[(size_t)o * J + j];
      }
    const bool output = l.task >= 0;
    if (int8()) {
      const QuantLayer& ql = q->layers[li];
      arrays.ints("int8_t", 1, id + "_w", WTq);
      arrays.ints("int32_t", 4, id + "_b", std::vector<int64_t>(ql.bias.begin(), ql.bias.end()));
      if (output) {
        arrays.floats(id + "_os", ql.out_scale);
      } else {
        arrays.ints("int32_t", 4, id + "_m", std::vector<int64_t>(ql.multiplier.begin(), ql.multiplier.end()));
        arrays.ints("int8_t", 1, id + "_s", std::vector<int64_t>(ql.shift.begin(), ql.shift.end()));
      }
    } else {
      arrays.floats(id + "_w", WT);
      arrays.floats(id + "_b", l.b);
    }
    if (!identity) {
      std::vector<int64_t> idx, starts{0};
      for (const auto& c : l.cols) {
        idx.insert(idx.end(), c.begin(), c.end());
        starts.push_back((int64_t)idx.size());
      }
      arrays.indices(id + "_ci", idx);
      if (!single) arrays.indices(id + "_cs", starts);
    }
    int64_t in_size = 0;
    for (int v : l.in) in_size += g.values[(size_t)v].size();

    const std::string T = elem();
    // int8: one accumulator per input segment, each with its zero point (quantize.h)
    const int S = int8() ? q->layers[li].segments() : 1;
    if (S > 1) {
      const QuantLayer& ql = q->layers[li];
      arrays.ints("int32_t", 4, id + "_sm", std::vector<int64_t>(ql.seg_multiplier.begin(), ql.seg_multiplier.end()));
      arrays.ints("int8_t", 1, id + "_ss", std::vector<int64_t>(ql.seg_shift.begin(), ql.seg_shift.end()));
    }
    std::string f;
    f += "/* " + l.name + ": linear " + str(in_size) + "->" + str(O) +
         (identity ? "" : single ? ", " + str(J) + " columns read" : ", " + str(J) + " columns (tied ones summed)") +
         (l.relu ? ", ReLU" : "") + (output ? ", task '" + g.tasks[(size_t)l.task].name + "'" : "") + " */\n";
    const std::string yt = output ? "float" : T;
    f += "static void " + id + "(const " + T + "* x, " + yt + "* y" + (int8() ? ", int32_t* acc" : "") + ")\n{\n";
    f += J > 0 ? "  int o, j;\n" : "  int o;\n";
    const std::string acc = int8() ? "acc" : "y";
    const std::string A = int8() ? "int32_t" : "float";
    if (S == 1) f += "  for (o = 0; o < " + str(O) + "; o++) " + acc + "[o] = " + id + "_b[o];\n";
    else f += "  for (o = 0; o < " + str(S * O) + "; o++) acc[o] = 0;\n";
    for (int sg = 0; sg < S; sg++) {
      const int j0 = S == 1 ? 0 : q->layers[li].seg_columns[(size_t)sg];
      const int j1 = S == 1 ? J : q->layers[li].seg_columns[(size_t)sg + 1];
      if (j1 <= j0) continue;
      const int32_t zin = int8() && !l.in.empty() ? q->values[(size_t)l.in[(size_t)sg]].zero_point : 0;
      // input element e as the column sums it: x[e], or x[e] - z_in in int8
      auto X = [&](const std::string& e) { return int8() ? "(x[" + e + "] - (" + str(zin) + "))" : "x[" + e + "]"; };
      if (S > 1) f += "  /* segment " + str(sg) + ": " + g.values[(size_t)l.in[(size_t)sg]].name + " */\n";
      f += "  for (j = " + str(j0) + "; j < " + str(j1) + "; j++) {\n";
      if (identity) {
        f += "    const " + A + " xj = " + X("j") + ";\n";
      } else if (single) {
        f += "    const " + A + " xj = " + X(id + "_ci[j]") + ";\n";
      } else {
        f += "    " + A + " xj = " + X(id + "_ci[" + id + "_cs[j]]") + ";\n";
        f += "    int k;\n";
        f += "    for (k = " + id + "_cs[j] + 1; k < " + id + "_cs[j + 1]; k++) xj += " + X(id + "_ci[k]") + ";\n";
      }
      f += "    {\n";
      f += "      const " + std::string(int8() ? "int8_t" : "float") + "* w = " + id + "_w + j * " + str(O) + ";\n";
      f += "      if (xj == 0) continue;\n";
      f += "      for (o = 0; o < " + str(O) + "; o++) " + acc + "[" + (sg ? str((int64_t)sg * O) + " + o" : "o") +
           "] += w[o] * xj;\n";
      f += "    }\n";
      f += "  }\n";
    }
    if (S > 1) {
      f += "  for (o = 0; o < " + str(O) + "; o++) /* each segment's sum to the finest scale, with the bias */\n";
      f += "    acc[o] = " + id + "_b[o]";
      for (int sg = 0; sg < S; sg++) {
        const std::string k = sg ? str((int64_t)sg * O) + " + o" : "o";
        f += " + requantize(acc[" + k + "], " + id + "_sm[" + k + "], " + id + "_ss[" + k + "])";
      }
      f += ";\n";
    }
    if (int8()) {
      const QuantLayer& ql = q->layers[li];
      if (output) {
        f += "  for (o = 0; o < " + str(O) + "; o++) y[o] = (float)acc[o] * " + id + "_os[o];\n";
      } else {
        f += "  for (o = 0; o < " + str(O) + "; o++) {\n";
        f += "    const int32_t v = requantize(acc[o], " + id + "_m[o], " + id + "_s[o]) + (" +
             str(q->values[(size_t)l.out].zero_point) + ");\n";
        f += "    y[o] = (int8_t)(v < " + str(ql.act_min) + " ? " + str(ql.act_min) + " : v > 127 ? 127 : v);\n";
        f += "  }\n";
      }
    } else if (l.relu) {
      f += "  for (o = 0; o < " + str(O) + "; o++)\n";
      f += "    if (!(y[o] > 0.0f)) y[o] = 0.0f;\n";
    }
    f += "}\n\n";
    functions += f;

    // the call: side-by-side copy of several inputs first
    std::string xptr;
    if (l.in.size() > 1) {
      const std::string cat = at("cat" + str((int64_t)li));
      int64_t off = 0;
      calls += "  {\n    int k;\n";
      for (int v : l.in) {
        const int64_t n = g.values[(size_t)v].size();
        calls += "    for (k = 0; k < " + str(n) + "; k++) (" + cat + ")[" + str(off) + " + k] = (" + value_ptr(v) + ")[k];\n";
        off += n;
      }
      calls += "  }\n";
      xptr = cat;
    } else {
      xptr = l.in.empty() ? value_ptr(0) : value_ptr(l.in[0]);
    }
    const std::string yptr = output ? "outputs + " + str(g.output_offset(l.task)) : value_ptr(l.out);
    calls += "  " + id + "(" + xptr + ", " + yptr + (int8() ? ", (int32_t*)(void*)(" + at("acc" + str((int64_t)li)) + ")" : "") +
             ");" + shape_comment(l) + "\n";
    if (output && l.log_softmax && !int8()) calls += "  log_softmax(" + yptr + ", " + str(O) + ");\n";
  }

  // ---- the two files ----------------------------------------------------------------
  std::string header(const std::string& N, const std::string& G) const {
    const GraphValue& in = g.values[0];
    std::string h;
    h += "/* " + info.name + ".h: " + g.arch + " as dependency-free C99, " +
         (int8() ? "int8 (TFLite scheme)" : "fp32") + ". Generated by `mtl export`; do not edit.\n";
    h += " * Weights: " + info.source + (info.method.empty() ? "" : " (method " + info.method + ")") +
         (info.dataset.empty() ? "" : ", trained on " + info.dataset) + ".\n *\n";
    h += " * int " + info.name + "_predict(const float* input, float* outputs): returns 0 (-1 for a NULL pointer).\n";
    h += " *   input:   " + G + "_INPUT_C x " + G + "_INPUT_H x " + G + "_INPUT_W floats, channel after channel, row\n";
    h += " *            after row, normalised as in training: input = (pixel / 255 - " + G + "_INPUT_MEAN) / " + G +
         "_INPUT_STD\n *            for pixels 0..255.\n";
    h += " *   outputs: " + G + "_OUTPUT_SIZE floats, task after task:\n";
    for (size_t t = 0; t < g.tasks.size(); t++) {
      const GraphTask& task = g.tasks[t];
      std::string kind = task.kind;
      if (int8() && kind == "log-probabilities") kind = "logits (log_softmax left out; the class is the argmax)";
      else if (kind == "binary-logit") kind = "one logit (class 1 when > 0)";
      else kind += " (the class is the argmax)";
      h += " *     task " + str((int64_t)t) + " '" + task.name + "': " + str(task.classes) + " classes, outputs[" +
           str(g.output_offset((int)t)) + " .. " + str(g.output_offset((int)t) + task.outputs - 1) + "], " + kind + "\n";
    }
    h += " * Memory: no heap; one static arena of " + G + "_ARENA_BYTES bytes (not reentrant: one call at a\n";
    h += " * time); " + G + "_CONST_BYTES bytes of const weights and tables (flash on a microcontroller).\n";
    if (int8())
      h += " * int8: per-channel symmetric weights, asymmetric activations calibrated on " +
           str(q->calibration_images) + " training images, int32\n * accumulators, fixed-point requantisation; no libm.\n";
    else
      h += " * fp32: needs exp and log from the C library (log_softmax); build with -ffp-contract=off (implied by\n"
           " * -std=c99 in GCC) for the engine's order of operations.\n";
    h += " */\n";
    h += "#ifndef " + G + "_H\n#define " + G + "_H\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n";
    h += "#define " + G + "_INPUT_C " + str(in.c) + "\n";
    h += "#define " + G + "_INPUT_H " + str(in.h) + "\n";
    h += "#define " + G + "_INPUT_W " + str(in.w) + "\n";
    h += "#define " + G + "_INPUT_SIZE " + str(in.dense_size()) + "\n";
    h += "#define " + G + "_INPUT_MEAN " + c_float(info.input_mean) + "\n";
    h += "#define " + G + "_INPUT_STD " + c_float(info.input_std) + "\n";
    h += "#define " + G + "_NUM_TASKS " + str((int64_t)g.tasks.size()) + "\n";
    h += "#define " + G + "_OUTPUT_SIZE " + str(g.output_size()) + "\n";
    std::set<std::string> used;
    for (size_t t = 0; t < g.tasks.size(); t++) {
      const std::string T = G + "_TASK" + str((int64_t)t);
      h += "#define " + T + "_OFFSET " + str(g.output_offset((int)t)) + "\n";
      h += "#define " + T + "_SIZE " + str(g.tasks[t].outputs) + "\n";
      h += "#define " + T + "_CLASSES " + str(g.tasks[t].classes) + "\n";
      std::string up = c_identifier(g.tasks[t].name);
      for (char& ch : up) ch = (char)std::toupper((unsigned char)ch);
      if (used.insert(up).second) {
        h += "#define " + G + "_" + up + "_OFFSET " + T + "_OFFSET\n";
        h += "#define " + G + "_" + up + "_SIZE " + T + "_SIZE\n";
      }
    }
    h += "#define " + G + "_ARENA_BYTES " + str(plan.bytes) + "\n";
    h += "#define " + G + "_CONST_BYTES " + str(arrays.bytes) + "\n";
    h += "#define " + G + "_PARAMS " + str(g.params()) + "\n";
    h += "#define " + G + "_MACS " + str(g.macs()) + "\n\n";
    h += "int " + N + "_predict(const float* input, float* outputs);\n\n";
    h += "#ifdef __cplusplus\n}\n#endif\n\n#endif\n";
    return h;
  }

  std::string requant_helpers() const {
    return R"(/* real = s (q - z); acc (scale s_in s_w) -> acc * M, M = M0 2^(shift - 31): TFLite's
   MultiplyByQuantizedMultiplier with gemmlowp's SaturatingRoundingDoublingHighMul and
   RoundingDivideByPOT, written without shifts of negative numbers (the same results). */
static int32_t floor_shift(int32_t x, int e) { return x >= 0 ? x >> e : ~((~x) >> e); }

static int32_t requantize(int32_t acc, int32_t m0, int shift)
{
  const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  const int64_t a = (int64_t)acc * ((int64_t)1 << left);
  const int32_t x = (int32_t)a;
  int64_t ab, n;
  int32_t h, mask, rem, thr;
  if (x == m0 && x == INT32_MIN) {
    h = INT32_MAX;
  } else {
    ab = (int64_t)x * m0;
    n = ab + (ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30));
    h = (int32_t)(n >= 0 ? n / ((int64_t)1 << 31) : -((-n) / ((int64_t)1 << 31)));
  }
  mask = (int32_t)(((int64_t)1 << right) - 1);
  rem = h & mask;
  thr = (mask >> 1) + (h < 0 ? 1 : 0);
  return floor_shift(h, right) + (rem > thr ? 1 : 0);
}

)";
  }

  std::string source(const std::string& N, const std::string& G) {
    std::string s;
    s += "/* " + info.name + ".c: see " + info.name + ".h. Generated by `mtl export`; do not edit. */\n";
    s += "#include \"" + info.name + ".h\"\n\n";
    s += int8() ? "#include <stdint.h>\n\n" : "#include <math.h>\n#include <stdint.h>\n\n";
    const int64_t words = plan.bytes / 4;
    s += "/* the arena: every activation, at offsets planned at export time */\n";
    if (int8()) s += "static int32_t arena[" + str(std::max<int64_t>(words, 1)) + "]; /* " + G + "_ARENA_BYTES */\n\n";
    else s += "static float arena[" + str(std::max<int64_t>(words, 1)) + "]; /* " + G + "_ARENA_BYTES */\n\n";
    s += arrays.text + "\n";
    if (int8()) {
      s += requant_helpers();
      const QParams& qi = q->values[0];
      s += "/* the input: round(x / s) + z, halves away from zero, clamped to int8 */\n";
      s += "static int8_t quantize_input(float x)\n{\n";
      s += "  float v = x / " + c_float(qi.scale) + ";\n";
      s += "  int32_t r;\n";
      s += "  if (!(v >= -256.0f)) v = -256.0f; /* also NaN */\n";
      s += "  if (v > 256.0f) v = 256.0f;\n";
      s += "  r = (int32_t)v; /* truncates; v - r is exact */\n";
      s += "  if (v - (float)r >= 0.5f) r++;\n";
      s += "  else if (v - (float)r <= -0.5f) r--;\n";
      s += "  r += " + str(qi.zero_point) + ";\n";
      s += "  return (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);\n}\n\n";
    } else {
      bool lsm = false;
      for (const auto& l : g.layers) lsm = lsm || (l.task >= 0 && l.log_softmax);
      if (lsm)
        s += "/* log_softmax in place, as the engine: x - (max + log(sum exp(x - max))) */\n"
             "static void log_softmax(float* x, int n)\n{\n"
             "  float m = x[0], lse;\n  double s = 0;\n  int c;\n"
             "  for (c = 1; c < n; c++) if (x[c] > m) m = x[c];\n"
             "  for (c = 0; c < n; c++) s += exp((double)(x[c] - m));\n"
             "  lse = m + (float)log(s);\n"
             "  for (c = 0; c < n; c++) x[c] = x[c] - lse;\n}\n\n";
    }
    s += functions;
    s += "int " + N + "_predict(const float* input, float* outputs)\n{\n";
    s += std::string(int8() ? "  int8_t* const a = (int8_t*)(void*)arena;\n" : "  float* const a = arena;\n");
    if (int8()) s += "  int i;\n";
    s += "  if (input == 0 || outputs == 0) return -1;\n";
    if (int8())
      s += "  for (i = 0; i < " + str(g.values[0].dense_size()) + "; i++) (" + at("v0") + ")[i] = quantize_input(input[i]);\n";
    s += calls;
    s += "  return 0;\n}\n";
    return s;
  }
};

}  // namespace

CSources emit_c(const LayerGraph& g, const QuantGraph* q, const CEmitInfo& info) {
  check(is_c_identifier(info.name), "export",
        "the name '" + info.name + "' is not a C identifier (letters, digits and _, not starting with a digit)");
  g.validate();
  if (q)
    check(q->layers.size() == g.layers.size() && q->values.size() == g.values.size(), "export",
          "the quantisation does not match the graph");
  Emitter e{g, q, info, {}, {}, {}, {}};
  e.make_plan();
  for (size_t i = 0; i < g.layers.size(); i++) {
    if (g.layers[i].kind == LayerKind::Conv) e.conv(i);
    else e.linear(i);
  }
  std::string G = info.name;
  for (char& ch : G) ch = (char)std::toupper((unsigned char)ch);
  CSources out;
  out.source = e.source(info.name, G);
  out.header = e.header(info.name, G);
  out.const_bytes = e.arrays.bytes;
  out.arena_bytes = e.plan.bytes;
  out.plan = e.plan;
  return out;
}

}  // namespace mt
