/*
 * host.h - what the host half of the simulator shares (runtime.cc with cublas.cc, curand.cc,
 * nccl.cc and mpi.cc);
 * not part of the interface with device.cc, which is cudasim.h.
 */
#ifndef CUMLP_CUDASIM_HOST_H
#define CUMLP_CUDASIM_HOST_H

#include "cudasim.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>

namespace cudasim {

/* The one lock around the shim's state. Recursive: queued operations run under it, and what they
 * call (a kernel's report, a library's checks) may take it again on the same thread. */
std::unique_lock<std::recursive_mutex> hold();

/* Every runtime, cuBLAS and cuRAND call starts here, holding the lock: the sticky error when one
 * is set or an injected one fires now (cudasim_inject_sticky_error counts these calls), else
 * cudaErrorNoDevice when there is no device, else cudaSuccess. */
cudaError_t begin_call();

/* The sticky error, cudaSuccess when none: the libraries ask before begin_call to tell a
 * preexisting fault from one that fires at their own call. */
cudaError_t sticky_error();

/* Memory that a queued operation uses, with the allocation it was found in (0: pageable host
 * memory, which cannot be checked), so that the operation can check again when it runs that the
 * same allocation is still live. */
struct span {
    const void *p;
    std::size_t bytes;
    std::uint64_t allocation;
};

/* Whether [p, p + bytes) lies in one live device allocation; reports why not, naming the call
 * `what` and the argument `name`. */
bool check_device(const char *what, const char *name, const void *p, std::size_t bytes, span *out);

/* When a queued operation runs: whether s is still in the allocation it was checked in; reports a
 * use after free when not (the operation then fails with cudaErrorIllegalAddress). */
bool still_live(const char *what, const char *name, const span &s);

/* Queues op on stream, as enqueue does for kernels, but returns the error (an unknown stream, or
 * one of another device) instead of recording it as the last error. Takes no begin_call. */
cudaError_t enqueue_op(cudaStream_t stream, const char *what, std::function<cudaError_t()> op);

/* Whether stream is the default stream or a live one (reports when not). */
bool is_stream(cudaStream_t stream, const char *what);

/* Runs every queued operation, as cudaDeviceSynchronize does; the sticky error if one faults. */
cudaError_t synchronize_all();

/* The calling thread's current device (cudaSetDevice), without a runtime call's checks. */
int current_device_id();

/* Host code may touch device memory while one lives, as queued work does: a CUDA-aware MPI call
 * on device buffers (mpi.cc). Holds the lock meanwhile. */
class device_memory_opened {
  public:
    device_memory_opened();
    ~device_memory_opened();
    device_memory_opened(const device_memory_opened &) = delete;
    device_memory_opened &operator=(const device_memory_opened &) = delete;

  private:
    std::unique_lock<std::recursive_mutex> lock_; /* taken before the opening, freed after */
};

/* The live handles of a library (cuBLAS handles, cuRAND generators): the ones still live at exit
 * are reported as never destroyed, then freed. */
template <class Handle> struct live_handles {
    const char *what; /* "cuBLAS handles" */
    std::set<Handle> live;
    ~live_handles() {
        if (!live.empty()) report("%zu %s never destroyed", live.size(), what);
        for (Handle h : live)
            delete h;
    }
};

} // namespace cudasim

#endif /* CUMLP_CUDASIM_HOST_H */
