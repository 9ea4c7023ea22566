/*
 * cudasim_device.h - the device side of CUDA C++ as the simulator provides it to the kernels
 * (included by the stand-in cuda_runtime.h; implemented by device.cc).
 *
 * Every CUDA thread runs as a fiber. A thread runs until it reaches a collective (__syncthreads,
 * a warp shuffle) or its end; when no thread of the block can run, the waiting collectives are
 * resolved and checked: a __syncthreads that a thread of the block does not reach (it exited, or
 * waits at another one), a shuffle whose mask names a lane that does not exist (a partial warp) or
 * that does not reach the same shuffle, is reported as a fault of the kernel, which then fails
 * with cudaErrorLaunchFailure. Collectives are told apart by their place in the source
 * (std::source_location), so threads that wait at different ones have diverged.
 */
#ifndef CUMLP_CUDASIM_DEVICE_H
#define CUMLP_CUDASIM_DEVICE_H

#include "cudasim.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <tuple>
#include <type_traits>
#include <utility>

namespace cudasim {

/* The built-in variables of the running CUDA thread. */
struct thread_indices {
    uint3 thread_idx, block_idx;
    dim3 block_dim, grid_dim;
};
const thread_indices &current_indices();

/* ---- collectives ---------------------------------------------------------------------------- */

void syncthreads(const std::source_location &site);

enum class shuffle_kind { index, up, down, xor_ };

/* The shuffle of the calling thread's 8-byte value `bits`: returns the bits of the lane it reads.
 */
std::uint64_t shuffle(shuffle_kind kind, unsigned mask, std::uint64_t bits, int arg, int width,
                      const std::source_location &site);

template <class T>
T shuffle_value(shuffle_kind kind, unsigned mask, T value, int arg, int width,
                const std::source_location &site) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move 8 bytes");
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof value);
    bits = shuffle(kind, mask, bits, arg, width, site);
    T out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
}

/* ---- launches ---------------------------------------------------------------------------------
 */

/* Checks a launch's configuration as the runtime does; on a bad one records the launch error
 * (cudaGetLastError) and returns false. */
bool check_configuration(const char *kernel, dim3 grid, dim3 block, std::size_t shared_bytes);

/* A kernel's pointer argument must be NULL or device memory; reports and returns false if not. */
bool check_pointer_argument(const char *kernel, int index, const void *p);

template <class T> bool check_argument(const char *kernel, int index, const T &value) {
    if constexpr (std::is_pointer_v<T>)
        return check_pointer_argument(kernel, index, (const void *)value);
    else
        return true;
}

template <class Tuple, std::size_t... I>
bool check_arguments(const char *kernel, const Tuple &args, std::index_sequence<I...>) {
    return (check_argument(kernel, (int)I, std::get<I>(args)) & ... & true);
}

/* kernel<<<grid, block, shared_bytes, stream>>>(args...): converts the arguments to the kernel's
 * parameter types and queues the grid on the stream, as a real launch does. */
template <class... P> class launcher {
  public:
    launcher(const char *name, void (*kernel)(P...), dim3 grid, dim3 block,
             std::size_t shared_bytes, cudaStream_t stream)
        : name_(name), kernel_(kernel), grid_(grid), block_(block), shared_(shared_bytes),
          stream_(stream) {}

    template <class... A> void operator()(A &&...args) const {
        static_assert(sizeof...(A) == sizeof...(P),
                      "a kernel launch with the wrong argument count");
        if (!check_configuration(name_, grid_, block_, shared_)) return;
        std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
        const char *name = name_;
        void (*kernel)(P...) = kernel_;
        dim3 grid = grid_, block = block_;
        std::size_t shared = shared_;
        auto indices = std::index_sequence_for<P...>{};
        /* The pointers are checked when the launch is queued and again when it runs: memory
         * freed in between is a use after free. After the kernel, the guards behind every
         * allocation show an out-of-bounds write. */
        bool valid = check_arguments(name, params, indices);
        enqueue(stream_, name, [=]() -> cudaError_t {
            if (!valid || !check_arguments(name, params, indices)) return cudaErrorIllegalAddress;
            cudaError_t err =
                run_grid(name, grid, block, shared, [&] { std::apply(kernel, params); });
            if (err == cudaSuccess && !check_guards(name)) err = cudaErrorIllegalAddress;
            return err;
        });
    }

  private:
    const char *name_;
    void (*kernel_)(P...);
    dim3 grid_, block_;
    std::size_t shared_;
    cudaStream_t stream_;
};

template <class... P>
launcher<P...> launch(const char *name, void (*kernel)(P...), dim3 grid, dim3 block,
                      std::size_t shared_bytes, cudaStream_t stream) {
    return launcher<P...>(name, kernel, grid, block, shared_bytes, stream);
}

} // namespace cudasim

/* ---- what kernels see --------------------------------------------------------------------------
 */

#define threadIdx (::cudasim::current_indices().thread_idx)
#define blockIdx  (::cudasim::current_indices().block_idx)
#define blockDim  (::cudasim::current_indices().block_dim)
#define gridDim   (::cudasim::current_indices().grid_dim)

/* A variable, not a macro, so that host code's cudaDeviceProp::warpSize is left alone. */
constexpr int warpSize = 32;

#define CUMLP_LAUNCH(kernel, grid, block, shared_bytes, stream)                                    \
    ::cudasim::launch(#kernel, kernel, grid, block, shared_bytes, stream)

inline void __syncthreads(const std::source_location &site = std::source_location::current()) {
    ::cudasim::syncthreads(site);
}

template <class T>
T __shfl_sync(unsigned mask, T value, int src_lane, int width = warpSize,
              const std::source_location &site = std::source_location::current()) {
    return ::cudasim::shuffle_value(::cudasim::shuffle_kind::index, mask, value, src_lane, width,
                                    site);
}

template <class T>
T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = warpSize,
                 const std::source_location &site = std::source_location::current()) {
    return ::cudasim::shuffle_value(::cudasim::shuffle_kind::up, mask, value, (int)delta, width,
                                    site);
}

template <class T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = warpSize,
                   const std::source_location &site = std::source_location::current()) {
    return ::cudasim::shuffle_value(::cudasim::shuffle_kind::down, mask, value, (int)delta, width,
                                    site);
}

template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = warpSize,
                  const std::source_location &site = std::source_location::current()) {
    return ::cudasim::shuffle_value(::cudasim::shuffle_kind::xor_, mask, value, lane_mask, width,
                                    site);
}

/* Round to nearest even, as the host's conversion does in the default rounding mode. */
inline float __double2float_rn(double x) {
    return static_cast<float>(x);
}

/* The bits of a float as an unsigned int and back (a NaN's payload kept, as on the GPU). */
inline unsigned int __float_as_uint(float x) {
    unsigned int u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

inline float __uint_as_float(unsigned int u) {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

using std::isfinite;

#endif /* CUMLP_CUDASIM_DEVICE_H */
