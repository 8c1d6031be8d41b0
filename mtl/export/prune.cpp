// Structural pruning of a layer graph (see prune.h).
#include "mtl/export/prune.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "engine/error.h"

namespace mt {

namespace {

bool is_zero(const float* p, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (p[i] != 0.f) return false;
  return true;
}

int segment_of(const GraphLayer& l, int v) {
  for (size_t s = 0; s < l.in.size(); s++)
    if (l.in[s] == v) return (int)s;
  throw Error("export: prune: layer " + l.name + " does not read value " + std::to_string(v));
}

int64_t per_filter(const GraphLayer& l) { return (int64_t)l.in_c * l.k * l.k; }

// The channel of each stored element of a value.
std::vector<int> element_channels(const GraphValue& v) {
  std::vector<int> ch;
  for (int c = 0; c < v.c; c++) ch.insert(ch.end(), (size_t)v.positions(c), c);
  return ch;
}

bool never_pruned(const LayerGraph& g, int v) {
  const int p = g.producer(v);
  return p < 0 || g.layers[(size_t)p].task >= 0;
}

// The elements of value v that some consumer reads.
std::vector<bool> needed_elements(const LayerGraph& g, int v) {
  const GraphValue& val = g.values[(size_t)v];
  const int64_t n = val.size();
  std::vector<bool> need((size_t)n, never_pruned(g, v));
  if (never_pruned(g, v)) return need;
  const std::vector<int> ch = element_channels(val);
  bool read_by_conv = false;
  for (int li : g.consumers(v)) {
    const GraphLayer& l = g.layers[(size_t)li];
    if (l.kind == LayerKind::Linear) {
      const int64_t B = g.segment_starts(l)[(size_t)segment_of(l, v)];
      for (const auto& col : l.cols)
        for (int i : col)
          if (i >= B && i < B + n) need[(size_t)(i - B)] = true;
    } else {
      read_by_conv = true;
      std::vector<bool> live((size_t)val.c, false);
      const int kk = l.k * l.k;
      for (int f = 0; f < l.filters(); f++)
        for (int c = 0; c < l.in_c; c++)
          if (!is_zero(l.W.data() + (size_t)(f * per_filter(l) + c * kk), kk)) live[(size_t)c] = true;
      // a conv keeps at least one input channel (an all-zero conv is a constant, folded first)
      if (std::find(live.begin(), live.end(), true) == live.end()) live[0] = true;
      for (int64_t e = 0; e < n; e++)
        if (live[(size_t)ch[(size_t)e]]) need[(size_t)e] = true;
    }
  }
  if (read_by_conv) {  // a conv reads whole channels: keep every position of a needed channel
    std::vector<bool> any((size_t)val.c, false);
    for (int64_t e = 0; e < n; e++) any[(size_t)ch[(size_t)e]] = any[(size_t)ch[(size_t)e]] || need[(size_t)e];
    for (int64_t e = 0; e < n; e++) need[(size_t)e] = any[(size_t)ch[(size_t)e]];
  }
  return need;
}

// Deletes the elements of value v with keep[e] false from its producer and consumers.
void remove_elements(LayerGraph& g, int v, const std::vector<bool>& keep, PruneReport& r) {
  GraphValue& val = g.values[(size_t)v];
  std::vector<int> newidx(keep.size(), -1);
  int kept = 0;
  for (size_t i = 0; i < keep.size(); i++)
    if (keep[i]) newidx[i] = kept++;
  const std::vector<int> ch = element_channels(val);
  std::vector<bool> channel_kept((size_t)val.c, false);
  for (size_t e = 0; e < keep.size(); e++)
    if (keep[e]) channel_kept[(size_t)ch[e]] = true;

  // consumers (their indices refer to the old layout)
  for (int li : g.consumers(v)) {
    GraphLayer& l = g.layers[(size_t)li];
    if (l.kind == LayerKind::Linear) {
      const std::vector<int64_t> old_b = g.segment_starts(l);
      const int s = segment_of(l, v);
      const int64_t B = old_b[(size_t)s], n = (int64_t)keep.size(), shrink = n - kept;
      for (auto& col : l.cols)
        for (int& i : col) {
          if (i >= B + n) {
            i -= (int)shrink;
          } else if (i >= B) {
            check(newidx[(size_t)(i - B)] >= 0, "export", "prune: " + l.name + " reads a deleted element");
            i = (int)B + newidx[(size_t)(i - B)];
          }
        }
    } else {
      const int kk = l.k * l.k;
      int nc = 0;
      for (bool k : channel_kept) nc += k;
      std::vector<float> W;
      for (int f = 0; f < l.filters(); f++)
        for (int c = 0; c < l.in_c; c++)
          if (channel_kept[(size_t)c]) {
            const float* src = l.W.data() + (size_t)(f * per_filter(l) + c * kk);
            W.insert(W.end(), src, src + kk);
          }
      l.W = std::move(W);
      l.in_c = nc;
    }
  }

  // the producer
  const int pi = g.producer(v);
  GraphLayer& p = g.layers[(size_t)pi];
  if (p.kind == LayerKind::Linear) {
    const int J = p.columns();
    std::vector<float> W, b;
    for (int o = 0; o < val.c; o++)
      if (keep[(size_t)o]) {
        W.insert(W.end(), p.W.begin() + (int64_t)o * J, p.W.begin() + (int64_t)(o + 1) * J);
        b.push_back(p.b[(size_t)o]);
      }
    r.units_removed += val.c - kept;
    p.W = std::move(W);
    p.b = std::move(b);
    val.c = kept;
  } else {
    std::vector<std::vector<int>> pos;
    std::vector<float> b;
    std::vector<int> filter_of;
    std::vector<uint8_t> min_pool;
    bool dense = true;
    int64_t e = 0;
    for (int c = 0; c < val.c; c++) {
      std::vector<int> kp;
      for (int q = 0; q < val.positions(c); q++, e++)
        if (keep[(size_t)e]) kp.push_back(val.pos.empty() ? q : val.pos[(size_t)c][(size_t)q]);
      if (kp.empty()) {
        r.channels_removed++;
        continue;
      }
      r.positions_removed += val.positions(c) - (int64_t)kp.size();
      dense = dense && (int)kp.size() == val.h * val.w;
      pos.push_back(std::move(kp));
      b.push_back(p.b[(size_t)c]);
      filter_of.push_back(p.filter_of[(size_t)c]);
      min_pool.push_back(p.min_pool[(size_t)c]);
    }
    // keep only the filters still used, renumbered in order
    std::vector<int> renum((size_t)p.filters(), -1);
    std::vector<float> W;
    int nf = 0;
    for (int& f : filter_of) {
      if (renum[(size_t)f] < 0) {
        renum[(size_t)f] = nf++;
        W.insert(W.end(), p.W.begin() + f * per_filter(p), p.W.begin() + (f + 1) * per_filter(p));
      }
      f = renum[(size_t)f];
    }
    p.W = std::move(W);
    p.b = std::move(b);
    p.filter_of = std::move(filter_of);
    p.min_pool = std::move(min_pool);
    val.c = (int)pos.size();
    val.pos = dense ? std::vector<std::vector<int>>{} : std::move(pos);
  }

  // a producer left with no output is deleted, and its consumers stop reading it
  if (val.c == 0) {
    g.layers.erase(g.layers.begin() + pi);
    for (GraphLayer& l : g.layers) l.in.erase(std::remove(l.in.begin(), l.in.end(), v), l.in.end());
  }
}

// Zero-weight Linear columns.
bool drop_zero_columns(LayerGraph& g, PruneReport& r) {
  bool changed = false;
  for (GraphLayer& l : g.layers) {
    if (l.kind != LayerKind::Linear) continue;
    const int O = l.outputs(), J = l.columns();
    std::vector<bool> zero((size_t)J, true);
    for (int o = 0; o < O; o++)
      for (int j = 0; j < J; j++)
        if (l.W[(size_t)((int64_t)o * J + j)] != 0.f) zero[(size_t)j] = false;
    const int nz = (int)std::count(zero.begin(), zero.end(), true);
    if (nz == 0) continue;
    std::vector<float> W;
    for (int o = 0; o < O; o++)
      for (int j = 0; j < J; j++)
        if (!zero[(size_t)j]) W.push_back(l.W[(size_t)((int64_t)o * J + j)]);
    std::vector<std::vector<int>> cols;
    for (int j = 0; j < J; j++)
      if (!zero[(size_t)j]) cols.push_back(l.cols[(size_t)j]);
    l.W = std::move(W);
    l.cols = std::move(cols);
    r.zero_columns += nz;
    changed = true;
  }
  return changed;
}

// The constant elements of value v (all-zero weights): value act(b) per element, or
// nothing. A value read by a padded conv has no foldable constants (the border differs).
bool constant_elements(const LayerGraph& g, int v, std::vector<float>& value, std::vector<bool>& is_const) {
  if (never_pruned(g, v)) return false;
  for (int li : g.consumers(v))
    if (g.layers[(size_t)li].kind == LayerKind::Conv && g.layers[(size_t)li].pad != 0) return false;
  const GraphValue& val = g.values[(size_t)v];
  const GraphLayer& p = g.layers[(size_t)g.producer(v)];
  value.assign((size_t)val.size(), 0.f);
  is_const.assign((size_t)val.size(), false);
  bool any = false;
  auto act = [&](float b) { return p.relu && !(b > 0.f) ? 0.f : b; };
  if (p.kind == LayerKind::Linear) {
    const int J = p.columns();
    for (int o = 0; o < val.c; o++)
      if (is_zero(p.W.data() + (size_t)((int64_t)o * J), J)) {
        value[(size_t)o] = act(p.b[(size_t)o]);
        is_const[(size_t)o] = any = true;
      }
  } else {
    int64_t e = 0;
    for (int c = 0; c < val.c; c++) {
      const bool zero = is_zero(p.W.data() + (size_t)(p.filter_of[(size_t)c] * per_filter(p)), per_filter(p));
      for (int q = 0; q < val.positions(c); q++, e++)
        if (zero) {
          value[(size_t)e] = act(p.b[(size_t)c]);
          is_const[(size_t)e] = any = true;
        }
    }
  }
  return any;
}

// Folds v's constant elements into its consumers' biases; they are then dead.
bool fold_constants(LayerGraph& g, int v, PruneReport& r) {
  std::vector<float> value;
  std::vector<bool> is_const;
  if (!constant_elements(g, v, value, is_const)) return false;
  const GraphValue& val = g.values[(size_t)v];
  const std::vector<int> ch = element_channels(val);
  bool changed = false;
  for (int li : g.consumers(v)) {
    GraphLayer& l = g.layers[(size_t)li];
    if (l.kind == LayerKind::Linear) {
      const int64_t B = g.segment_starts(l)[(size_t)segment_of(l, v)], n = val.size();
      const int O = l.outputs(), J = l.columns();
      for (int j = 0; j < J; j++) {
        auto& col = l.cols[(size_t)j];
        for (size_t k = 0; k < col.size();) {
          const int64_t i = col[k];
          if (i >= B && i < B + n && is_const[(size_t)(i - B)]) {
            const float c = value[(size_t)(i - B)];
            for (int o = 0; o < O; o++) l.b[(size_t)o] += l.W[(size_t)((int64_t)o * J + j)] * c;
            col.erase(col.begin() + (int64_t)k);
            changed = true;
          } else {
            k++;
          }
        }
      }
      // columns left reading nothing go (their weights no longer matter)
      std::vector<float> W;
      std::vector<std::vector<int>> cols;
      for (int o = 0; o < O; o++)
        for (int j = 0; j < J; j++)
          if (!l.cols[(size_t)j].empty()) W.push_back(l.W[(size_t)((int64_t)o * J + j)]);
      for (auto& col : l.cols)
        if (!col.empty()) cols.push_back(std::move(col));
      l.W = std::move(W);
      l.cols = std::move(cols);
    } else {
      // a whole constant channel c of a conv's input (no padding): b[o] += c * sum W[f(o), c]
      const int kk = l.k * l.k;
      std::vector<bool> const_channel((size_t)val.c, false);
      for (int c = 0; c < val.c; c++) const_channel[(size_t)c] = is_const[(size_t)val.channel_offset(c)];
      for (int c = 0; c < val.c; c++) {
        if (!const_channel[(size_t)c]) continue;
        const float cv = value[(size_t)val.channel_offset(c)];
        std::vector<float> sums((size_t)l.filters(), 0.f);
        for (int f = 0; f < l.filters(); f++) {
          float* w = l.W.data() + (size_t)(f * per_filter(l) + c * kk);
          if (is_zero(w, kk)) continue;
          for (int i = 0; i < kk; i++) sums[(size_t)f] += w[i];
          std::fill(w, w + kk, 0.f);
          changed = true;
        }
        for (int o = 0; o < l.outputs(); o++) l.b[(size_t)o] += cv * sums[(size_t)l.filter_of[(size_t)o]];
      }
    }
  }
  if (changed)
    for (bool c : is_const) r.constants_folded += c;
  return changed;
}

bool remove_dead(LayerGraph& g, int v, PruneReport& r) {
  if (never_pruned(g, v) || g.producer(v) < 0) return false;
  const std::vector<bool> need = needed_elements(g, v);
  if (std::find(need.begin(), need.end(), false) == need.end()) return false;
  remove_elements(g, v, need, r);
  return true;
}

// Bitwise-equal Linear columns of one segment become one column reading the sum of their
// inputs (within a segment: int8 gives each segment its own scale).
void merge_tied_columns(LayerGraph& g, PruneReport& r) {
  for (GraphLayer& l : g.layers) {
    if (l.kind != LayerKind::Linear) continue;
    const int O = l.outputs(), J = l.columns();
    std::map<std::vector<uint32_t>, int> first;  // segment and column bits -> the column kept
    std::vector<int> target((size_t)J);
    for (int j = 0; j < J; j++) {
      std::vector<uint32_t> bits((size_t)O + 1);
      bits[0] = (uint32_t)g.segment_of_input(l, l.cols[(size_t)j][0]);
      for (int o = 0; o < O; o++) std::memcpy(&bits[(size_t)o + 1], &l.W[(size_t)((int64_t)o * J + j)], 4);
      target[(size_t)j] = first.emplace(bits, j).first->second;
    }
    if ((int)first.size() == J) continue;
    std::vector<std::vector<int>> cols;
    std::vector<int> new_of((size_t)J, -1);
    for (int j = 0; j < J; j++) {
      if (target[(size_t)j] == j) {
        new_of[(size_t)j] = (int)cols.size();
        cols.push_back(l.cols[(size_t)j]);
      } else {
        auto& c = cols[(size_t)new_of[(size_t)target[(size_t)j]]];
        c.insert(c.end(), l.cols[(size_t)j].begin(), l.cols[(size_t)j].end());
      }
    }
    for (auto& c : cols) std::sort(c.begin(), c.end());
    std::vector<float> W;
    for (int o = 0; o < O; o++)
      for (int j = 0; j < J; j++)
        if (target[(size_t)j] == j) W.push_back(l.W[(size_t)((int64_t)o * J + j)]);
    r.columns_merged += J - (int64_t)cols.size();
    l.W = std::move(W);
    l.cols = std::move(cols);
  }
}

// Bitwise-equal conv filters are stored once.
void merge_tied_filters(LayerGraph& g, PruneReport& r) {
  for (GraphLayer& l : g.layers) {
    if (l.kind != LayerKind::Conv) continue;
    const int64_t per = per_filter(l);
    std::map<std::vector<uint32_t>, int> first;
    std::vector<int> renum((size_t)l.filters());
    std::vector<float> W;
    for (int f = 0; f < l.filters(); f++) {
      std::vector<uint32_t> bits((size_t)per);
      std::memcpy(bits.data(), l.W.data() + f * per, (size_t)per * 4);
      auto it = first.emplace(bits, (int)first.size());
      if (it.second) W.insert(W.end(), l.W.begin() + f * per, l.W.begin() + (f + 1) * per);
      renum[(size_t)f] = it.first->second;
    }
    r.filters_merged += l.filters() - (int64_t)first.size();
    for (int& f : l.filter_of) f = renum[(size_t)f];
    l.W = std::move(W);
  }
}

}  // namespace

PruneReport prune_graph(LayerGraph& g) {
  PruneReport r;
  for (bool changed = true; changed;) {
    changed = drop_zero_columns(g, r);
    for (int v = 1; v < (int)g.values.size(); v++) {
      if (g.producer(v) < 0) continue;  // a value whose producer was deleted
      changed = fold_constants(g, v, r) || changed;
      changed = remove_dead(g, v, r) || changed;
    }
  }
  merge_tied_columns(g, r);
  merge_tied_filters(g, r);
  g.validate();
  return r;
}

}  // namespace mt
