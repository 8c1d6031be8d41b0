// The communicator (see comm.h): Open MPI when the build found it (MT_HAVE_MPI,
// from `pkg-config ompi` in the Makefile) and the process runs under mpirun;
// otherwise one rank and no-ops.
#include "mtl/dist/comm.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/error.h"
#include "engine/tensor.h"

#ifdef MT_HAVE_MPI
#include <mpi.h>
#endif

namespace mt::dist {

namespace {

using Clock = std::chrono::steady_clock;

// Adds the elapsed time to `total` when it goes out of scope.
struct Timer {
  double& total;
  Clock::time_point t0 = Clock::now();
  ~Timer() { total += std::chrono::duration<double>(Clock::now() - t0).count(); }
};

#ifdef MT_HAVE_MPI
void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(std::string("MPI: ") + what + " failed: " + std::string(msg, (size_t)len));
}
#endif

}  // namespace

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr;
}

Comm::Comm() {
#ifdef MT_HAVE_MPI
  if (!launched_by_mpirun()) return;
  int provided = 0;
  // Only the main thread calls MPI (the loader's thread and OpenMP's never do).
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  std::atexit(finalize_at_exit);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
#else
  if (launched_by_mpirun())
    throw Error("started by mpirun, but this build has no MPI (install libopenmpi-dev: `make setup`, then rebuild)");
#endif
}

Comm& world() {
  static Comm comm;
  return comm;
}

void Comm::allreduce_sum(float* data, size_t n) {
  if (size_ == 1 || n == 0) return;
#ifdef MT_HAVE_MPI
  Timer timer{seconds_};
  const int N = size_, r = rank_;
  const int next = (r + 1) % N, prev = (r + N - 1) % N;
  auto lo = [&](int c) { return n * (size_t)c / (size_t)N; };
  auto len = [&](int c) { return lo(c + 1) - lo(c); };
  std::vector<float> in(len(N - 1) + 1);  // the largest chunk
  // Reduce-scatter: at step s rank r sends chunk (r - s) and adds chunk (r - s - 1)
  // from prev; after N - 1 steps rank r holds the sum of chunk (r + 1) mod N.
  for (int s = 0; s < N - 1; s++) {
    const int cs = ((r - s) % N + N) % N, cr = ((r - s - 1) % N + N) % N;
    check(MPI_Sendrecv(data + lo(cs), (int)len(cs), MPI_FLOAT, next, 0, in.data(), (int)len(cr), MPI_FLOAT, prev, 0,
                       MPI_COMM_WORLD, MPI_STATUS_IGNORE),
          "ring allreduce");
    float* d = data + lo(cr);
    for (size_t i = 0; i < len(cr); i++) d[i] += in[i];
    bytes_sent_ += len(cs) * sizeof(float);
  }
  // Allgather: the summed chunks travel once around the ring (copied, so every
  // rank ends with the same bits).
  for (int s = 0; s < N - 1; s++) {
    const int cs = ((r + 1 - s) % N + N) % N, cr = ((r - s) % N + N) % N;
    check(MPI_Sendrecv(data + lo(cs), (int)len(cs), MPI_FLOAT, next, 1, data + lo(cr), (int)len(cr), MPI_FLOAT, prev,
                       1, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
          "ring allreduce");
    bytes_sent_ += len(cs) * sizeof(float);
  }
#else
  (void)data;
#endif
}

void Comm::allreduce_sum(double* data, size_t n) {
  if (size_ == 1 || n == 0) return;
#ifdef MT_HAVE_MPI
  Timer timer{seconds_};
  std::vector<double> all(n * (size_t)size_);
  check(MPI_Allgather(data, (int)n, MPI_DOUBLE, all.data(), (int)n, MPI_DOUBLE, MPI_COMM_WORLD), "allgather");
  bytes_sent_ += n * sizeof(double) * (uint64_t)(size_ - 1);
  for (size_t i = 0; i < n; i++) {
    double s = all[i];
    for (int q = 1; q < size_; q++) s += all[(size_t)q * n + i];
    data[i] = s;
  }
#endif
}

void Comm::broadcast(void* data, size_t bytes, int root) {
  if (size_ == 1 || bytes == 0) return;
#ifdef MT_HAVE_MPI
  Timer timer{seconds_};
  char* p = static_cast<char*>(data);
  for (size_t at = 0; at < bytes;) {  // counts are int: pieces of at most 1 GiB
    const size_t piece = std::min<size_t>(bytes - at, size_t(1) << 30);
    check(MPI_Bcast(p + at, (int)piece, MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
    at += piece;
  }
  if (rank_ == root) bytes_sent_ += bytes;
#else
  (void)data;
  (void)root;
#endif
}

std::vector<uint64_t> Comm::allgather(uint64_t value) {
  std::vector<uint64_t> all((size_t)size_, value);
#ifdef MT_HAVE_MPI
  if (size_ > 1) {
    Timer timer{seconds_};
    check(MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD), "allgather");
    bytes_sent_ += sizeof(uint64_t) * (uint64_t)(size_ - 1);
  }
#endif
  return all;
}

void Comm::barrier() {
#ifdef MT_HAVE_MPI
  if (size_ > 1) {
    Timer timer{seconds_};
    check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
  }
#endif
}

void abort_job(int status) {
#ifdef MT_HAVE_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) world().abort(status);
#endif
  (void)status;
}

void Comm::abort(int status) {
#ifdef MT_HAVE_MPI
  if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, status);
#endif
  (void)status;
}

}  // namespace mt::dist
