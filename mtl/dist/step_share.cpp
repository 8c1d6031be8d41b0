// The share of the current step (see step_share.h).
#include "mtl/dist/step_share.h"

#include "engine/error.h"
#include "engine/rng.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "mtl/dist/comm.h"

namespace mt::dist {

namespace {
Comm* g_comm = nullptr;  // set inside a StepScope of a parallel job
BatchShare g_share;
}  // namespace

StepScope::StepScope(Comm& comm, const BatchShare& share) {
  MT_CHECK(g_comm == nullptr, "dist", "training steps cannot nest");
  if (!comm.parallel()) return;
  MT_CHECK(share.rows >= 1 && share.offset >= 0 && share.offset + share.rows <= share.global_rows, "dist",
           "rows [" + std::to_string(share.offset) + ", " + std::to_string(share.offset + share.rows) +
               ") are not in a batch of " + std::to_string(share.global_rows));
  g_comm = &comm;
  g_share = share;
  set_row_shard(RowShard{share.offset, share.rows, share.global_rows});
}

StepScope::~StepScope() {
  if (!g_comm) return;
  g_comm = nullptr;
  g_share = BatchShare{};
  set_row_shard(RowShard{});
}

bool in_parallel_step() { return g_comm != nullptr; }
BatchShare step_share() { return g_share; }

std::vector<double> global_means(const std::vector<double>& v) {
  if (!g_comm) return v;
  std::vector<double> out(v);
  const double s = g_share.share();
  for (double& x : out) x *= s;
  g_comm->allreduce_sum(out);
  return out;
}

void global_gram(std::vector<double>& gram, std::vector<double>& means) {
  if (!g_comm) return;
  const double s = g_share.share();
  std::vector<double> buf;
  buf.reserve(gram.size() + means.size());
  for (double g : gram) buf.push_back(s * s * g);
  for (double m : means) buf.push_back(s * m);
  g_comm->allreduce_sum(buf);
  for (size_t i = 0; i < gram.size(); i++) gram[i] = buf[i];
  for (size_t i = 0; i < means.size(); i++) means[i] = buf[gram.size() + i];
}

}  // namespace mt::dist
