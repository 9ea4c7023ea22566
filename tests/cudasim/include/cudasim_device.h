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
 * (std::source_location), so threads that wait at different ones have diverged (but one in a
 * helper called from two divergent branches is one place: that divergence is not seen).
 *
 * A launch's pointers, its arguments and the pointers inside struct arguments (members, array
 * elements, nested structs), must be NULL or device memory: a host pointer is reported when the
 * launch is queued, and memory freed before the kernel runs (even when a new allocation has taken
 * its address) when it runs. A pointer the kernel reaches otherwise (read from memory, computed)
 * is not checked.
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
#include <vector>

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

/* The pointers a launch passes, as arguments or inside them (the members of a struct argument, as
 * loss_reduce.cu's DeltaArgs, and the elements of an array member, as optimizer.cu's
 * StateArrays): each must be NULL or device memory. They are checked when the launch is queued,
 * which records the allocation each points into, and again when the kernel runs, which must find
 * the same allocations: one freed in between is a use after free even when a new allocation has
 * taken its address (as copies, cuBLAS and cuRAND check, runtime.cc's still_live). */
class argument_check {
  public:
    explicit argument_check(const char *kernel) : kernel_(kernel) {}
    /* The check when the launch runs, against the allocations recorded when it was queued. */
    argument_check when_run() const {
        argument_check c = *this;
        c.running_ = true;
        return c;
    }
    /* Checks one pointer (`inside`: a member or element of argument `index`); reports and
     * returns false if it is not NULL or device memory, or not in the allocation it was in. */
    bool pointer(int index, bool inside, const void *p);

  private:
    const char *kernel_;
    std::vector<std::uint64_t> ids_; /* the allocation of each pointer when queued, 0: NULL */
    std::size_t next_ = 0;           /* when running: the next of ids_ to compare */
    bool running_ = false;
};

/* Converts to any type (declared only: it is used unevaluated). */
struct any_field {
    template <class T> operator T() const;
};

/* Whether aggregate T can be initialized from sizeof...(I) braced initializers. A braced
 * initializer initializes one member whole (no brace elision into an array member or a nested
 * struct), so the most it takes is its number of members. */
template <class T, std::size_t... I> constexpr bool takes_fields(std::index_sequence<I...>) {
    return requires {
        T{{((void)I, any_field{})}...};
    };
}

constexpr std::size_t kMaxFields = 32; /* the structured bindings below */

template <class T, std::size_t N = 0> constexpr std::size_t field_count() {
    if constexpr (N <= kMaxFields && takes_fields<T>(std::make_index_sequence<N + 1>{}))
        return field_count<T, N + 1>();
    else
        return N;
}

template <class T> bool check_value(argument_check &c, int index, bool inside, const T &value);

/* Every one is checked (and recorded), in order, also after one that fails. */
template <class... F> bool check_values(argument_check &c, int index, const F &...fields) {
    bool ok = true;
    ((ok = check_value(c, index, true, fields) && ok), ...);
    return ok;
}

/* The members of an aggregate argument, bound by a structured binding (a member that cannot be
 * initialized from a braced any_field, a class with constructors, fails to compile here). */
#define CUDASIM_FIELDS(n, ...)                                                                     \
    else if constexpr (count == n) {                                                               \
        const auto &[__VA_ARGS__] = value;                                                         \
        return check_values(c, index, __VA_ARGS__);                                                \
    }
template <class T> bool check_fields(argument_check &c, int index, const T &value) {
    constexpr std::size_t count = field_count<T>();
    static_assert(count <= kMaxFields, "a struct kernel argument with more than 32 members");
    // clang-format off
    if constexpr (count == 0) return true;
    CUDASIM_FIELDS(1, f0)
    CUDASIM_FIELDS(2, f0, f1)
    CUDASIM_FIELDS(3, f0, f1, f2)
    CUDASIM_FIELDS(4, f0, f1, f2, f3)
    CUDASIM_FIELDS(5, f0, f1, f2, f3, f4)
    CUDASIM_FIELDS(6, f0, f1, f2, f3, f4, f5)
    CUDASIM_FIELDS(7, f0, f1, f2, f3, f4, f5, f6)
    CUDASIM_FIELDS(8, f0, f1, f2, f3, f4, f5, f6, f7)
    CUDASIM_FIELDS(9, f0, f1, f2, f3, f4, f5, f6, f7, f8)
    CUDASIM_FIELDS(10, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9)
    CUDASIM_FIELDS(11, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10)
    CUDASIM_FIELDS(12, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11)
    CUDASIM_FIELDS(13, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12)
    CUDASIM_FIELDS(14, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13)
    CUDASIM_FIELDS(15, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14)
    CUDASIM_FIELDS(16, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15)
    CUDASIM_FIELDS(17, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16)
    CUDASIM_FIELDS(18, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17)
    CUDASIM_FIELDS(19, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18)
    CUDASIM_FIELDS(20, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19)
    CUDASIM_FIELDS(21, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20)
    CUDASIM_FIELDS(22, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20, f21)
    CUDASIM_FIELDS(23, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20, f21, f22)
    CUDASIM_FIELDS(24, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20, f21, f22, f23)
    CUDASIM_FIELDS(25, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20, f21, f22, f23, f24)
    CUDASIM_FIELDS(26, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20, f21, f22, f23, f24, f25)
    CUDASIM_FIELDS(27, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26)
    CUDASIM_FIELDS(28, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27)
    CUDASIM_FIELDS(29, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28)
    CUDASIM_FIELDS(30, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29)
    CUDASIM_FIELDS(31, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30)
    CUDASIM_FIELDS(32, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
                   f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31)
    else return true;
    // clang-format on
}
#undef CUDASIM_FIELDS

template <class T> bool check_value(argument_check &c, int index, bool inside, const T &value) {
    if constexpr (std::is_pointer_v<T> && !std::is_function_v<std::remove_pointer_t<T>>) {
        return c.pointer(index, inside, (const void *)value);
    } else if constexpr (std::is_array_v<T>) {
        bool ok = true;
        for (const auto &element : value)
            ok = check_value(c, index, true, element) && ok;
        return ok;
    } else if constexpr (std::is_class_v<T> && std::is_aggregate_v<T>) {
        return check_fields(c, index, value);
    } else {
        return true;
    }
}

template <class Tuple, std::size_t... I>
bool check_arguments(argument_check &c, const Tuple &args, std::index_sequence<I...>) {
    bool ok = true;
    ((ok = check_value(c, (int)I, false, std::get<I>(args)) && ok), ...);
    return ok;
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
        argument_check queued(name);
        bool valid = check_arguments(queued, params, indices);
        enqueue(stream_, name, [=]() -> cudaError_t {
            argument_check running = queued.when_run();
            if (!valid || !check_arguments(running, params, indices))
                return cudaErrorIllegalAddress;
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

/* Stores with the write-back cache hint (cuda_common.cuh's store_quad): the hint means nothing
 * here, the store is a plain one of the whole vector. */
inline void __stwb(float4 *p, float4 value) {
    *p = value;
}
inline void __stwb(uint2 *p, uint2 value) {
    *p = value;
}

using std::isfinite;

#endif /* CUMLP_CUDASIM_DEVICE_H */
