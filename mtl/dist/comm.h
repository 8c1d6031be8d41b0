// The communicator of data-parallel training: the processes ("ranks") of one job,
// started by `mpirun -np N build/mtl ...` (Open MPI). Started any other way, the
// process is a job of one rank and every operation below is a no-op that touches no
// MPI function, so `build/mtl train` without mpirun runs exactly as before.
//
// Reductions are deterministic: the same N and the same inputs give the same bits,
// and every rank gets the same bits (so replicated parameters stay identical).
//   allreduce_sum(float)   a ring allreduce (reduce-scatter then allgather over
//                          MPI_Sendrecv with the neighbours, as Horovod and NCCL):
//                          each rank sends and receives 2 (N-1)/N of the buffer,
//                          each chunk is summed in a fixed rank order.
//   allreduce_sum(double)  for small buffers (Gram matrices, losses): allgather, then
//                          every rank sums the N copies in rank order 0..N-1.
// Faults: MPI's default error handler (MPI_ERRORS_ARE_FATAL) aborts the job on a
// communication error, and mpirun ends every rank when one dies; abort() ends the
// job from an error this program found.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mt::dist {

class Comm {
 public:
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool parallel() const { return size_ > 1; }
  bool root() const { return rank_ == 0; }

  void allreduce_sum(float* data, size_t n);
  void allreduce_sum(double* data, size_t n);
  void allreduce_sum(std::vector<double>& v) { allreduce_sum(v.data(), v.size()); }
  void broadcast(void* data, size_t bytes, int root = 0);
  // Every rank's value, in rank order.
  std::vector<uint64_t> allgather(uint64_t value);
  void barrier();
  // Ends every rank of the job with this exit status (returns only without mpirun).
  void abort(int status);

  // Communication cost since the start: wall time inside the calls above and the
  // bytes this rank sent (both 0 without mpirun).
  double seconds() const { return seconds_; }
  uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  friend Comm& world();
  Comm();
  int rank_ = 0, size_ = 1;
  double seconds_ = 0;
  uint64_t bytes_sent_ = 0;
};

// The job's communicator (MPI_COMM_WORLD under mpirun), initialised on first use;
// MPI_Finalize runs at exit.
Comm& world();

// True when this process was started by mpirun (Open MPI's environment).
bool launched_by_mpirun();

// After an error: when MPI runs with more than one rank, ends the whole job with this
// status (MPI_Abort; mpirun names the rank); otherwise returns.
void abort_job(int status);

}  // namespace mt::dist
