#include "engine/autograd.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "engine/error.h"

namespace mt {

namespace {
struct Tape {
  std::vector<std::weak_ptr<Node>> nodes;   // in creation order; a node dies with its output
  uint64_t next_seq = 0;
  uint64_t pass = 0;                        // id of the running backward pass
  size_t compact_at = 1024;
  bool enabled = true;
  // grad() mode: gradients go to `redirect` (keyed by the handle) instead of .grad
  bool functional = false;
  std::unordered_map<TensorImpl*, Tensor> redirect;
  std::vector<Tensor> scratch;              // sinks for leaves grad() was not asked about
};
thread_local Tape tape;

void compact() {
  auto& v = tape.nodes;
  v.erase(std::remove_if(v.begin(), v.end(), [](const std::weak_ptr<Node>& w) { return w.expired(); }), v.end());
  tape.compact_at = std::max<size_t>(1024, 2 * v.size());
}
}  // namespace

bool grad_enabled() { return tape.enabled; }

bool any_requires_grad(std::initializer_list<const Tensor*> ts) {
  if (!tape.enabled) return false;
  for (const Tensor* t : ts)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

std::shared_ptr<TensorImpl> grad_target(const Tensor& t) {
  return (t.defined() && t.requires_grad()) ? t.ptr() : nullptr;
}

void record(Tensor& out, const char* op, std::function<void(const Tensor&)> backward) {
  if (!tape.enabled) return;
  auto n = std::make_shared<Node>();
  n->op = op;
  n->out = out.impl();
  n->seq = tape.next_seq++;
  n->backward = std::move(backward);
  out.impl()->node = n;
  out.impl()->requires_grad = true;
  if (tape.nodes.size() >= tape.compact_at) compact();
  tape.nodes.push_back(n);
}

// The gradient buffer of t, made when missing: zero-filled, or left
// uninitialised when `zero` is false; `made` tells whether it was made here.
static float* grad_slot(const std::shared_ptr<TensorImpl>& t, bool zero, bool& made) {
  t->pass = tape.pass;
  made = false;
  auto make = [&]() {
    made = true;
    return zero ? Tensor::zeros(t->shape) : Tensor::empty(t->shape);
  };
  if (tape.functional) {
    auto it = tape.redirect.find(t.get());
    if (it != tape.redirect.end()) {
      if (!it->second.defined()) it->second = make();
      return it->second.data();
    }
    if (!t->node) {  // a leaf nobody asked about: a sink, thrown away afterwards
      tape.scratch.push_back(make());
      return tape.scratch.back().data();
    }
  }
  if (!t->grad) t->grad = make().ptr();
  return t->grad->data();
}

float* acc_grad(const std::shared_ptr<TensorImpl>& t) {
  bool made;
  return grad_slot(t, true, made);
}

float* grad_buffer(const std::shared_ptr<TensorImpl>& t, bool& fresh) { return grad_slot(t, false, fresh); }

// Walk the tape from the root's node down, running each node the pass reached.
static void run_backward(const Tensor& root, const Tensor& seed, bool retain) {
  TensorImpl* r = root.impl();
  MT_CHECK(r->requires_grad, "backward", "tensor does not require grad (no input of it required grad, or it was "
                                      "made in a NoGrad scope)");
  MT_CHECK(seed.shape() == r->shape || seed.numel() == r->numel(), "backward",
        "upstream gradient of shape " + shape_str(seed.shape()) + " for a tensor of shape " + shape_str(r->shape));
  tape.pass++;
  float* g0 = acc_grad(root.ptr());
  const float* s = seed.data();
  for (int64_t i = 0, n = seed.numel(); i < n; i++) g0[i] += s[i];
  if (!r->node) return;  // a leaf: the seed is its gradient
  const uint64_t top = r->node->seq;
  // In functional mode the gradient of a non-leaf lives in `redirect` or its .grad
  auto grad_of = [](TensorImpl* t) -> Tensor {
    if (tape.functional) {
      auto it = tape.redirect.find(t);
      if (it != tape.redirect.end()) return it->second;
    }
    return t->grad ? Tensor(t->grad) : Tensor();
  };
  // Hold every candidate node and its output for the whole pass: running a
  // node's backward releases what it saved, which may be the last owner of an
  // earlier node's output (and so of that node).
  std::vector<std::pair<std::shared_ptr<Node>, std::shared_ptr<TensorImpl>>> held;
  held.reserve(tape.nodes.size());
  for (auto& w : tape.nodes)
    if (auto n = w.lock())
      if (n->seq <= top) {
        auto out = n->out->shared_from_this();
        held.emplace_back(std::move(n), std::move(out));
      }
  bool any_consumed = false;
  for (size_t i = held.size(); i-- > 0;) {
    Node* n = held[i].first.get();
    TensorImpl* out = n->out;
    if (out->pass != tape.pass) continue;  // the gradient did not reach this node
    if (n->consumed)
      throw Error(std::string("backward: second backward through a consumed tape at op '") + n->op +
                  "' (each forward supports one backward; run the forward again)");
    Tensor g = grad_of(out);
    if (!g.defined()) continue;
    if (retain) {
      n->backward(g);
    } else {
      auto fn = std::move(n->backward);
      n->backward = nullptr;  // release what the op saved
      n->consumed = true;
      any_consumed = true;
      fn(g);
    }
    if (!out->retain_grad && !tape.functional) out->grad.reset();  // intermediate gradient no longer needed
  }
  if (any_consumed && tape.nodes.size() >= tape.compact_at / 2) compact();
}

void backward(const Tensor& loss, bool retain_graph) {
  MT_CHECK(loss.defined(), "backward", "undefined tensor");
  MT_CHECK(loss.numel() == 1, "backward", "loss must have one element, got shape " + shape_str(loss.shape()) +
                                           " (use backward(t, upstream) for a non-scalar)");
  run_backward(loss, Tensor::ones(loss.shape()), retain_graph);
}

void backward(const Tensor& t, const Tensor& upstream, bool retain_graph) {
  MT_CHECK(t.defined() && upstream.defined(), "backward", "undefined tensor");
  MT_CHECK(upstream.shape() == t.shape(), "backward", "upstream gradient of shape " + shape_str(upstream.shape()) +
                                                       " for a tensor of shape " + shape_str(t.shape()));
  run_backward(t, upstream, retain_graph);
}

std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs, const Tensor& upstream,
                         bool retain_graph) {
  MT_CHECK(output.defined(), "grad", "undefined output");
  Tensor seed = upstream;
  if (!seed.defined()) {
    MT_CHECK(output.numel() == 1, "grad", "output of shape " + shape_str(output.shape()) +
                                           " is not a scalar: pass an upstream gradient");
    seed = Tensor::ones(output.shape());
  }
  MT_CHECK(seed.shape() == output.shape(), "grad", "upstream gradient of shape " + shape_str(seed.shape()) +
                                                    " for an output of shape " + shape_str(output.shape()));
  struct Reset {  // leave the tape in normal mode whatever happens
    ~Reset() {
      tape.functional = false;
      tape.redirect.clear();
      tape.scratch.clear();
    }
  } reset;
  tape.functional = true;
  for (const Tensor& t : inputs) {
    MT_CHECK(t.defined(), "grad", "undefined input");
    tape.redirect[t.impl()] = Tensor();
  }
  // every non-leaf on the way keeps its intermediate gradient in `redirect` too
  for (auto& w : tape.nodes)
    if (auto n = w.lock())
      if (!tape.redirect.count(n->out)) tape.redirect[n->out] = Tensor();
  run_backward(output, seed, retain_graph);
  std::vector<Tensor> out;
  for (const Tensor& t : inputs) out.push_back(tape.redirect[t.impl()]);
  return out;
}

NoGrad::NoGrad() : prev_(tape.enabled) { tape.enabled = false; }
NoGrad::~NoGrad() { tape.enabled = prev_; }

size_t tape_size() {
  compact();
  return tape.nodes.size();
}

}  // namespace mt
