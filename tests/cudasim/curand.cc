/*
 * curand.cc - the cuRAND calls cumlp makes, on the CPU (see cudasim.h): Philox4x32-10 generators
 * whose draws come from cumlp's host generator (src/backends/rng.c, checked bit for bit against
 * cuRAND's), queued on the generator's stream like the real library's kernels.
 */
#include "cudasim.h"
#include "host.h"

#include <curand.h>

extern "C" {
#include "backends/rng.h"
}

#include <cstdint>
#include <set>

struct curandGenerator_st {
    std::uint64_t seed;
    std::uint64_t offset; /* the next element of the one stream */
    curandOrdering_t ordering;
    cudaStream_t stream;
};

namespace {

using cudasim::report;

cudasim::live_handles<curandGenerator_t> &generators() {
    static cudasim::live_handles<curandGenerator_t> r{"cuRAND generators", {}};
    return r;
}

/* The start of every call: a fault already on the device is a "preexisting failure on library
 * entry"; one injected at this call fails it as a kernel launch failure. */
curandStatus_t begin(curandGenerator_t g, const char *what) {
    bool preexisting = cudasim::sticky_error() != cudaSuccess;
    cudaError_t err = cudasim::begin_call();
    if (err == cudaErrorNoDevice) return CURAND_STATUS_INITIALIZATION_FAILED;
    if (err != cudaSuccess)
        return preexisting ? CURAND_STATUS_PREEXISTING_FAILURE : CURAND_STATUS_LAUNCH_FAILURE;
    if (generators().live.count(g)) return CURAND_STATUS_SUCCESS;
    report("%s: generator %p is not a live cuRAND generator (never created, or destroyed)", what,
           (void *)g);
    return CURAND_STATUS_NOT_INITIALIZED;
}

/* Queues count elements of the generator's stream from its position into out: `fill` writes
 * element i of the stream into slot j. The output is checked now; the library does not check it,
 * so a bad one faults when the kernel runs, as on a GPU. */
template <class T, class Fill>
curandStatus_t generate(curandGenerator_t g, const char *what, T *out, size_t count, Fill fill) {
    if (g->ordering != CURAND_ORDERING_PSEUDO_LEGACY)
        report("%s: only the legacy ordering is simulated (cumlp's host draws reproduce it)", what);
    cudasim::span span{};
    bool ok = cudasim::check_device(what, "outputPtr", out, count * sizeof(T), &span);
    std::uint64_t seed = g->seed, first = g->offset;
    g->offset += count; /* the next call goes on where this one ends */
    cudaError_t err = cudasim::enqueue_op(g->stream, what, [=]() {
        if (!ok) return cudaErrorIllegalAddress; /* reported at the call */
        if (!cudasim::still_live(what, "outputPtr", span)) return cudaErrorIllegalAddress;
        for (size_t i = 0; i < count; i++)
            out[i] = fill(seed, first + i);
        return cudaSuccess;
    });
    return err == cudaSuccess ? CURAND_STATUS_SUCCESS : CURAND_STATUS_LAUNCH_FAILURE;
}

} // namespace

curandStatus_t curandCreateGenerator(curandGenerator_t *generator, curandRngType_t rng_type) {
    auto lock = cudasim::hold();
    curandStatus_t st = CURAND_STATUS_SUCCESS;
    if (cudasim::begin_call() != cudaSuccess) st = CURAND_STATUS_INITIALIZATION_FAILED;
    if (st == CURAND_STATUS_SUCCESS && !generator) st = CURAND_STATUS_NOT_INITIALIZED;
    if (st == CURAND_STATUS_SUCCESS && rng_type != CURAND_RNG_PSEUDO_PHILOX4_32_10)
        st = CURAND_STATUS_TYPE_ERROR; /* the one generator cumlp uses */
    if (st != CURAND_STATUS_SUCCESS) return st;
    *generator = new curandGenerator_st{0, 0, CURAND_ORDERING_PSEUDO_DEFAULT, nullptr};
    generators().live.insert(*generator);
    return st;
}

/* Released even after a fault. */
curandStatus_t curandDestroyGenerator(curandGenerator_t generator) {
    auto lock = cudasim::hold();
    curandStatus_t st = begin(generator, "curandDestroyGenerator");
    if (generators().live.erase(generator)) delete generator;
    return st;
}

curandStatus_t curandSetStream(curandGenerator_t generator, cudaStream_t stream) {
    auto lock = cudasim::hold();
    curandStatus_t st = begin(generator, "curandSetStream");
    if (st == CURAND_STATUS_SUCCESS && !cudasim::is_stream(stream, "curandSetStream"))
        st = CURAND_STATUS_NOT_INITIALIZED;
    if (st == CURAND_STATUS_SUCCESS) generator->stream = stream;
    return st;
}

curandStatus_t curandSetGeneratorOrdering(curandGenerator_t generator, curandOrdering_t order) {
    auto lock = cudasim::hold();
    curandStatus_t st = begin(generator, "curandSetGeneratorOrdering");
    if (st == CURAND_STATUS_SUCCESS &&
        (order < CURAND_ORDERING_PSEUDO_BEST || order > CURAND_ORDERING_PSEUDO_DYNAMIC))
        st = CURAND_STATUS_OUT_OF_RANGE;
    if (st == CURAND_STATUS_SUCCESS) generator->ordering = order;
    return st;
}

curandStatus_t curandSetPseudoRandomGeneratorSeed(curandGenerator_t generator,
                                                  unsigned long long seed) {
    auto lock = cudasim::hold();
    curandStatus_t st = begin(generator, "curandSetPseudoRandomGeneratorSeed");
    if (st == CURAND_STATUS_SUCCESS) generator->seed = seed;
    return st;
}

curandStatus_t curandSetGeneratorOffset(curandGenerator_t generator, unsigned long long offset) {
    auto lock = cudasim::hold();
    curandStatus_t st = begin(generator, "curandSetGeneratorOffset");
    if (st == CURAND_STATUS_SUCCESS) generator->offset = offset;
    return st;
}

curandStatus_t curandGenerateUniform(curandGenerator_t generator, float *outputPtr, size_t num) {
    auto lock = cudasim::hold();
    curandStatus_t st = begin(generator, "curandGenerateUniform");
    if (st != CURAND_STATUS_SUCCESS || num == 0) return st;
    return generate(generator, "curandGenerateUniform", outputPtr, num,
                    [](std::uint64_t seed, size_t i) { return cumlp__philox_draw(seed, 0, i); });
}

/* The stream's 32-bit words as they are (cumlp makes its normals from them). */
curandStatus_t curandGenerate(curandGenerator_t generator, unsigned int *outputPtr, size_t num) {
    auto lock = cudasim::hold();
    curandStatus_t st = begin(generator, "curandGenerate");
    if (st != CURAND_STATUS_SUCCESS || num == 0) return st;
    return generate(generator, "curandGenerate", outputPtr, num,
                    [](std::uint64_t seed, size_t i) { return cumlp__philox_word(seed, i); });
}
