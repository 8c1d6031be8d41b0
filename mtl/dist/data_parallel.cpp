// Data-parallel training: the loop's side (see data_parallel.h).
#include "mtl/dist/data_parallel.h"

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "engine/error.h"
#include "engine/tensor.h"

namespace mt::dist {

void broadcast_tensors(Comm& comm, const NamedTensors& tensors) {
  if (!comm.parallel()) return;
  for (const auto& [name, t] : tensors) {
    Tensor c = t;  // tensors are contiguous (engine/tensor.h)
    comm.broadcast(c.data(), sizeof(float) * (size_t)c.numel(), 0);
  }
}

GradientReducer::GradientReducer() {
  const char* p = std::getenv("MTL_DIST_PROFILE");
  profile_ = p && std::string(p) == "1";
}

void GradientReducer::allreduce(Comm& comm, const NamedTensors& params, double share, std::vector<double>& losses) {
  if (!comm.parallel()) return;
  using Clock = std::chrono::steady_clock;
  const auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  if (profile_) {
    const auto t = Clock::now();
    comm.barrier();
    wait_s_ += since(t);
  }
  size_t n = 0;
  for (const auto& [name, p] : params) n += (size_t)p.numel();
  buf_.assign(n + losses.size(), 0.f);
  const float s = (float)share;
  size_t at = 0;
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (g.defined()) {
      const float* d = g.data();
      for (int64_t i = 0; i < g.numel(); i++) buf_[at + (size_t)i] = s * d[i];
    }
    at += (size_t)p.numel();
  }
  for (size_t t = 0; t < losses.size(); t++) buf_[n + t] = (float)(share * losses[t]);
  const auto t = Clock::now();
  comm.allreduce_sum(buf_.data(), buf_.size());
  reduce_s_ += since(t);
  at = 0;
  for (const auto& [name, p] : params) {
    Tensor g = p.grad();
    if (g.defined()) std::memcpy(g.data(), buf_.data() + at, sizeof(float) * (size_t)g.numel());
    at += (size_t)p.numel();
  }
  for (size_t t = 0; t < losses.size(); t++) losses[t] = buf_[n + t];
}

void average_buffers(Comm& comm, const NamedTensors& buffers) {
  if (!comm.parallel() || buffers.empty()) return;
  std::vector<float> buf;
  for (const auto& [name, b] : buffers) buf.insert(buf.end(), b.data(), b.data() + b.numel());
  comm.allreduce_sum(buf.data(), buf.size());
  const float inv = 1.f / (float)comm.size();
  size_t at = 0;
  for (const auto& [name, b] : buffers) {
    Tensor t = b;
    float* d = t.data();
    for (int64_t i = 0; i < t.numel(); i++) d[i] = buf[at + (size_t)i] * inv;
    at += (size_t)t.numel();
  }
}

uint64_t tensors_hash(const NamedTensors& tensors) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  auto mix = [&](const void* p, size_t bytes) {
    const unsigned char* c = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < bytes; i++) h = (h ^ c[i]) * 1099511628211ull;
  };
  for (const auto& [name, t] : tensors) {
    mix(name.data(), name.size());
    for (int64_t d : t.shape()) mix(&d, sizeof d);
    mix(t.data(), sizeof(float) * (size_t)t.numel());
  }
  return h;
}

void check_replicas(Comm& comm, const NamedTensors& tensors, const std::string& when) {
  if (!comm.parallel()) return;
  const std::vector<uint64_t> all = comm.allgather(tensors_hash(tensors));
  std::string differ;
  for (size_t r = 1; r < all.size(); r++)
    if (all[r] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  if (!differ.empty())
    throw Error("the model's replicas differ after " + when + ": the parameters of rank" +
                (differ.find(',') == std::string::npos ? " " : "s ") + differ + " are not rank 0's (a bug: please report it)");
}

}  // namespace mt::dist
