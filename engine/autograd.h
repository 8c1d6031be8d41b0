// Reverse-mode autograd on a tape.
//
// Every op that sees an input requiring grad records a Node: a closure that,
// given dL/d(output), adds dL/d(input) into each input's grad buffer (the
// backward lives next to the forward in each op's file). Nodes go on a tape in
// the order they were made; backward walks the tape once, in reverse, and runs
// the nodes that the gradient reached. No recursion, no topological sort.
//
// A node runs at most once: after its backward it releases what it saved, and
// a gradient arriving at it again is the error "second backward through a
// consumed tape". Leaf tensors accumulate (+=) until zero_grad().
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace mt {

struct Node {
  const char* op;                                 // for error messages
  TensorImpl* out;                                // owned by out->node; valid while the node is
  uint64_t seq;                                   // position on the tape
  std::function<void(const Tensor& gout)> backward;
  bool consumed = false;
};

// Forward side, used inside ops.
bool grad_enabled();                              // false inside a NoGrad scope
bool any_requires_grad(std::initializer_list<const Tensor*> ts);
// The input handle to accumulate into, or null when it needs no gradient
// (the "needs_input_grad" of an op: conv1 skips dX this way).
std::shared_ptr<TensorImpl> grad_target(const Tensor& t);
// Attach a node to `out` (marks it requires_grad) and push it on the tape.
void record(Tensor& out, const char* op, std::function<void(const Tensor& gout)> backward);

// What a closure may keep of its op's own output: the values, never the
// handle (the handle owns the node, so capturing it would make a cycle that
// leaks every graph that is not backpropagated).
struct SavedOutput {
  std::shared_ptr<Storage> storage;
  const float* p = nullptr;
  explicit SavedOutput(const Tensor& out) : storage(out.impl()->storage), p(out.data()) {}
  const float* data() const { return p; }
};

// Backward side, used inside closures: the zero-initialised grad buffer of t
// (same shape as t), to be added into.
float* acc_grad(const std::shared_ptr<TensorImpl>& t);
// The same buffer for an op that sets every element of it: when this call
// creates the buffer it is left uninitialised and `fresh` is true, and the op
// must write each element as 0.f + g (the very bits of adding g into the zeros
// acc_grad would have made: -0 becomes +0); otherwise `fresh` is false and the
// op adds into it as with acc_grad.
float* grad_buffer(const std::shared_ptr<TensorImpl>& t, bool& fresh);

// User API. With retain_graph the nodes stay usable for another backward
// (exact MGDA and GradNorm take one backward per task through the trunk).
void backward(const Tensor& loss, bool retain_graph = false);                       // loss must have one element
void backward(const Tensor& t, const Tensor& upstream, bool retain_graph = false);  // seed dL/dt = upstream
// Gradients of `output` w.r.t. `inputs` (any tensors on its graph), returned
// without touching any .grad; undefined tensors for inputs not reached.
std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs,
                         const Tensor& upstream = Tensor(), bool retain_graph = false);

// Inside a NoGrad scope nothing is recorded (inference, metric computation).
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool prev_;
};

size_t tape_size();  // live nodes on this thread's tape (tests)

}  // namespace mt
