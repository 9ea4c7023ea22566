/*
 * cudasim.h - the CPU simulator of the CUDA that cumlp uses: the interface between its parts.
 * (A test build only, -DCUMLP_CUDA_SIM=ON; never installed.)
 *
 *   device.cc   runs kernels: every CUDA thread a fiber, collectives checked (cuda_runtime.h here
 *               is the stand-in header the kernels compile against)
 *   runtime.cc  the CUDA runtime calls cumlp makes: device memory as tracked mappings that host
 *               code cannot touch, streams and events with deferred, reordered (or eager)
 *               execution, errors, fault injection
 *   cublas.cc   cuBLAS's GEMM through CBLAS (TF32 rounding of the inputs when asked for; bf16 and
 *               fp16 inputs widened, an fp32 sum, a 16-bit result rounded to nearest even)
 *   curand.cc   cuRAND's Philox4x32-10 through cumlp's host generator
 *   nccl.cc     NCCL's collectives between rank processes, carried over MPI (a build with MPI)
 *
 * The host glue of the cuda backend (src/backends/cuda.c) is compiled unchanged against the real
 * CUDA headers; only the libraries behind them are these files.
 */
#ifndef CUMLP_CUDASIM_H
#define CUMLP_CUDASIM_H

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <functional>

/* CUDASIM_ASAN: built with AddressSanitizer (GCC's and Clang's spellings), which the simulator
 * must tell when a fiber switches stacks (device.cc) and which bytes past an allocation's end are
 * not to be touched (runtime.cc). */
#if defined(__SANITIZE_ADDRESS__)
#define CUDASIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDASIM_ASAN 1
#endif
#endif

namespace cudasim {

/* ---- schedules (device.cc) ----------------------------------------------------------------------
 * CUDASIM_SCHEDULE chooses the order in which the simulator runs what the real hardware runs in an
 * undefined order: "forward" (default), "reverse", or "shuffle" / "shuffle:SEED" (a seeded
 * shuffle). It orders the threads of a block between two collectives, the blocks of a grid, and
 * the streams whose next operation may run (runtime.cc). Those three run queued work as late as
 * they can (at the synchronization that needs it), which catches work used too early. "eager"
 * runs each operation as soon as it is queued, as an idle GPU does, which catches the opposite:
 * the host writing memory that queued work reads after queuing it (threads and blocks run in
 * forward order). */
enum class order { forward, reverse, shuffle };
order schedule();
/* Whether the schedule is "eager" (schedule() is then order::forward). */
bool eager();
/* A number in [0, n) from the schedule's generator (0 when not shuffling): the calling host
 * thread's own, seeded with the shuffle's seed, so that a thread's draws do not depend on how the
 * host threads interleave. */
std::size_t schedule_pick(std::size_t n);

/* ---- reports ------------------------------------------------------------------------------------
 * Everything the simulator catches is printed to stderr as "cudasim: <message>" and counted
 * (cudasim_error_count in cudasim_control.h), besides the CUDA error it turns into. */
void report(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* ---- the runtime (runtime.cc) ------------------------------------------------------------------
 */

/* Queues op on stream (0 is the legacy default stream). op runs later, when a synchronization
 * point needs it (at once in the eager schedule); its result, if not cudaSuccess, becomes the
 * sticky error of the device (a fault in a kernel: every later call returns it). `what` names the
 * operation in reports. */
void enqueue(cudaStream_t stream, const char *what, std::function<cudaError_t()> op);

/* Records err as the error cudaGetLastError / cudaPeekAtLastError return (not sticky) and returns
 * it: the launch errors of a kernel (a bad configuration). */
cudaError_t set_last_error(cudaError_t err);

/* Whether p points into a live device allocation (cudaMalloc) with at least `bytes` bytes from p
 * to its end. */
bool is_device_range(const void *p, std::size_t bytes);

/* The id of the live device allocation (cudaMalloc) that p points into, 0 if none: an
 * allocation's id is never reused, its address may be. */
std::uint64_t device_allocation(const void *p);

/* Whether the operation running now is one of a graph launch's (runtime.cc). */
bool in_graph_replay();

/* After a kernel: whether the slack after every device allocation (up to its 256-byte rounding,
 * where the guard page begins) is untouched; reports an out-of-bounds write by `kernel` (and
 * restores the slack) when not. */
bool check_guards(const char *kernel);

/* ---- kernels (device.cc) -----------------------------------------------------------------------
 */

/* Runs body once per thread of a grid x block launch of `kernel`, each thread a fiber, and checks
 * the collectives. Returns cudaSuccess, or the error a faulting kernel gives (reported first):
 * cudaErrorLaunchFailure for a collective that not every thread reaches. */
cudaError_t run_grid(const char *kernel, dim3 grid, dim3 block, std::size_t shared_bytes,
                     const std::function<void()> &body);

} // namespace cudasim

#endif /* CUMLP_CUDASIM_H */
