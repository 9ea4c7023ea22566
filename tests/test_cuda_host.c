/* ctest-labels: unit cuda */
/*
 * The cuda backend's host side, which runs without a GPU: on a machine without a usable device a
 * cuda context fails with CUMLP_ERROR_NO_DEVICE and leaks nothing (the ASan build runs this),
 * AUTO falls back to a CPU backend; the host Philox stream of src/backends/rng.c (used by the CPU
 * backends) is cuRAND's Philox4x32-10 stream, checked against cuRAND's own host generator; the
 * profiler range ops come as a pair; and CUDA, cuBLAS and cuRAND statuses become cumlp statuses
 * as src/backends/cuda_status.h says.
 */
#include "harness.h"
#include "internal.h"
#include "backends/rng.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Defined by tests/CMakeLists.txt: the real CUDA libraries are linked (their host generator
 * is there to compare with), or the CUDA simulator stands in for them (the status checks only). */
#if defined(CUMLP_TEST_HAVE_CUDA_TOOLKIT) || defined(CUMLP_TEST_CUDA_SIM)
#include "backends/cuda_status.h"
#define HAVE_CUDA_STATUS 1
#endif
#ifdef CUMLP_TEST_HAVE_CUDA_TOOLKIT
#include <curand.h>
#define HAVE_CURAND_HEADER 1
#endif

static int device_present(void) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_CUDA;
    cumlp_context *ctx = NULL;
    cumlp_status st = cumlp_context_create(&ctx, &o);
    cumlp_context_destroy(ctx);
    return st == CUMLP_SUCCESS;
}

static void test_no_device(void) {
    if (device_present()) {
        printf("     (a CUDA device is present: the no-device path is not exercised)\n");
        return;
    }
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_CUDA;
    for (int i = 0; i < 3; i++) { /* repeated failures must not accumulate anything */
        cumlp_context *ctx = (cumlp_context *)&o; /* must be reset to NULL */
        CHECK_STATUS(cumlp_context_create(&ctx, &o), CUMLP_ERROR_NO_DEVICE);
        CHECK(ctx == NULL);
        CHECK(strstr(cumlp_last_error(NULL), "cuda backend") != NULL);
    }
    o.device = 7;
    cumlp_context *ctx = NULL;
    CHECK_STATUS(cumlp_context_create(&ctx, &o), CUMLP_ERROR_NO_DEVICE);
    CHECK(ctx == NULL);
}

static void test_device_out_of_range(void) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_CUDA;
    o.device = 4096; /* no machine has that many GPUs */
    cumlp_context *ctx = NULL;
    CHECK_STATUS(cumlp_context_create(&ctx, &o), CUMLP_ERROR_NO_DEVICE);
    CHECK(ctx == NULL);
    CHECK(cumlp_last_error(NULL)[0] != '\0');
}

static void test_auto_falls_back(void) {
    cumlp_context *ctx = NULL;
    CHECK_OK(cumlp_context_create(&ctx, NULL)); /* AUTO */
    if (!ctx) return;
    int backend = cumlp_context_backend(ctx);
    if (device_present())
        CHECK(backend == CUMLP_BACKEND_CUDA);
    else
        CHECK(backend == CUMLP_BACKEND_CPU || backend == CUMLP_BACKEND_REFERENCE);
    /* The context it fell back to works. */
    const float host[3] = {1.0f, -2.5f, 3.25f};
    float back[3] = {0};
    cumlp_tensor *t = test_tensor_from(ctx, host, 3, 1);
    CHECK_OK(cumlp_tensor_download(t, back, 3));
    CHECK(memcmp(host, back, sizeof host) == 0);
    cumlp_tensor_destroy(t);
    cumlp_context_destroy(ctx);
}

/* The profiler range ops (NVTX when the build enables it) come as a pair: the front end calls
 * pop after every push it made, so one without the other would unbalance the ranges. */
static void test_range_ops_pair(void) {
    const cumlp_backend_ops *ops = cumlp__backend_cuda();
    CHECK(ops != NULL);
    if (!ops) return;
    CHECK((ops->range_push == NULL) == (ops->range_pop == NULL));
    printf("     range ops: %s\n", ops->range_push ? "NVTX" : "none (CUMLP_NVTX=OFF)");
}

#ifdef HAVE_CURAND_HEADER

/* Distance in units in the last place between two finite floats of the same sign. */
static int64_t ulp_distance(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    if ((ia < 0) != (ib < 0)) return a == b ? 0 : INT64_MAX;
    return llabs((int64_t)ia - (int64_t)ib);
}

/* cuRAND's host generator: count draws of seed's stream from element `offset`. */
static int curand_host_draws(uint64_t seed, int normal, size_t offset, size_t count, float *out) {
    curandGenerator_t g;
    if (curandCreateGeneratorHost(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10) != CURAND_STATUS_SUCCESS)
        return 0;
    curandStatus_t st = curandSetGeneratorOrdering(g, CURAND_ORDERING_PSEUDO_LEGACY);
    if (st == CURAND_STATUS_SUCCESS) st = curandSetPseudoRandomGeneratorSeed(g, seed);
    if (st == CURAND_STATUS_SUCCESS) st = curandSetGeneratorOffset(g, offset);
    if (st == CURAND_STATUS_SUCCESS)
        st = normal ? curandGenerateNormal(g, out, count, 0.0f, 1.0f)
                    : curandGenerateUniform(g, out, count);
    curandDestroyGenerator(g);
    return st == CURAND_STATUS_SUCCESS;
}

/* More than 65536 blocks of four, so the stream wraps into the second position of every
 * subsequence; even, as cuRAND's normal generator wants. */
#define STREAM_LENGTH ((size_t)600002)

static void compare_stream(uint64_t seed, int normal) {
    float *ours = test_alloc_floats(STREAM_LENGTH), *theirs = test_alloc_floats(STREAM_LENGTH);
    int generated = curand_host_draws(seed, normal, 0, STREAM_LENGTH, theirs);
    CHECK_MSG(generated, "cuRAND's host generator failed");
    cumlp__philox_fill(seed, normal, STREAM_LENGTH, ours);
    size_t inexact = 0;
    int64_t worst = 0;
    for (size_t i = 0; generated && i < STREAM_LENGTH; i++) {
        if (memcmp(&ours[i], &theirs[i], sizeof(float)) == 0) continue;
        inexact++;
        int64_t d = ulp_distance(ours[i], theirs[i]);
        if (d > worst) worst = d;
    }
    if (!normal) {
        /* Uniform draws are one fp32 multiply-add of the same bits: identical. */
        CHECK_MSG(inexact == 0, "seed %llu: %zu uniform draws differ (worst %lld ulp)",
                  (unsigned long long)seed, inexact, (long long)worst);
    } else {
        /* Box-Muller goes through logf/sqrtf/sinf/cosf: with glibc the draws are identical, a
         * different libm may differ in the last bit or two (see src/backends/rng.h). */
        CHECK_MSG(worst <= 2, "seed %llu: %zu normal draws differ, worst by %lld ulp",
                  (unsigned long long)seed, inexact, (long long)worst);
        if (inexact)
            printf("     seed %llu: %zu of %zu normal draws differ in the last bits (<= 2 ulp)\n",
                   (unsigned long long)seed, inexact, STREAM_LENGTH);
    }
    /* Element access agrees with the fill, including around the subsequence wrap. */
    const size_t probes[] = {0, 1, 2, 3, 4, 262143, 262144, 262145, 524290, STREAM_LENGTH - 1};
    for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
        float one = cumlp__philox_draw(seed, normal, probes[p]);
        CHECK(memcmp(&one, &ours[probes[p]], sizeof one) == 0);
    }
    free(ours);
    free(theirs);
}

static void test_philox_matches_curand_uniform(void) {
    const uint64_t seeds[] = {0, 42, 0x123456789abcdef0ull, UINT64_MAX};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++)
        compare_stream(seeds[s], 0);
}

static void test_philox_matches_curand_normal(void) {
    const uint64_t seeds[] = {1, 42, 0xfedcba9876543210ull};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++)
        compare_stream(seeds[s], 1);
}

/* The cuda backend draws an odd tail element with a generator offset: offsets count elements
 * of the one stream (checked here on the host generator, which the device generator mirrors). */
static void test_curand_offset_is_an_element_index(void) {
    const size_t offsets[] = {1, 2, 6, 262142, 262144, 300001};
    float ours[8], theirs[8];
    for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
        for (int normal = 0; normal <= 1; normal++) {
            size_t first = normal ? offsets[k] / 2 * 2 : offsets[k]; /* normals come in pairs */
            CHECK(curand_host_draws(77, normal, first, 8, theirs));
            for (size_t i = 0; i < 8; i++)
                ours[i] = cumlp__philox_draw(77, normal, first + i);
            for (size_t i = 0; i < 8; i++)
                CHECK_MSG(ulp_distance(ours[i], theirs[i]) <= (normal ? 2 : 0),
                          "offset %zu element %zu: %.9g vs %.9g", first, i, ours[i], theirs[i]);
        }
    }
}

#endif /* HAVE_CURAND_HEADER */

#ifdef HAVE_CUDA_STATUS
/* The runtime's errors: out of memory, a fault that poisons the context, and one that does not.
 * No device is needed: the statuses are handed in. A reference context stands in for the cuda
 * one (only its message and sticky status are used). */
static void test_cuda_status(void) {
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    CHECK_OK(cumlp__cuda_status(ctx, cudaSuccess, "copy"));
    CHECK_STATUS(cumlp__cuda_status(ctx, cudaErrorMemoryAllocation, "copy"),
                 CUMLP_ERROR_ALLOC_FAILED);
    CHECK(strcmp(cumlp_last_error(ctx), "cuda backend: copy: out of device memory") == 0);
    CHECK_STATUS(cumlp__cuda_status(ctx, cudaErrorInvalidValue, "copy"), CUMLP_ERROR_DEVICE);
    CHECK(strstr(cumlp_last_error(ctx), "cudaErrorInvalidValue") != NULL);
    CHECK(ctx->sticky == CUMLP_SUCCESS); /* an invalid argument leaves the context usable */
    CHECK_STATUS(cumlp__cuda_status(ctx, cudaErrorIllegalAddress, "gemm"), CUMLP_ERROR_DEVICE);
    CHECK(ctx->sticky == CUMLP_ERROR_DEVICE);
    cumlp_context_destroy(ctx);
}

/* The one generic checker of library statuses, through the cuBLAS and cuRAND adapters. */
static void test_library_status(void) {
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    CHECK_OK(cumlp__cublas_status(ctx, CUBLAS_STATUS_SUCCESS, "gemm"));
    CHECK_OK(cumlp__curand_status(ctx, CURAND_STATUS_SUCCESS, "random"));
    CHECK_STATUS(cumlp__cublas_status(ctx, CUBLAS_STATUS_ALLOC_FAILED, "gemm"),
                 CUMLP_ERROR_ALLOC_FAILED);
    CHECK(strcmp(cumlp_last_error(ctx), "cuda backend: gemm: cuBLAS is out of memory") == 0);
    CHECK_STATUS(cumlp__curand_status(ctx, CURAND_STATUS_ALLOCATION_FAILED, "random"),
                 CUMLP_ERROR_ALLOC_FAILED);
    CHECK(strcmp(cumlp_last_error(ctx), "cuda backend: random: cuRAND is out of memory") == 0);
    /* Any other failure is a device error: the library's code, or the runtime fault behind it
     * when one is pending (without a GPU the runtime may report its own initialization error). */
    CHECK_STATUS(cumlp__cublas_status(ctx, CUBLAS_STATUS_EXECUTION_FAILED, "gemm"),
                 CUMLP_ERROR_DEVICE);
    CHECK(strncmp(cumlp_last_error(ctx), "cuda backend: gemm: ", 20) == 0);
    CHECK_STATUS(cumlp__curand_status(ctx, CURAND_STATUS_LAUNCH_FAILURE, "random"),
                 CUMLP_ERROR_DEVICE);
    CHECK(strncmp(cumlp_last_error(ctx), "cuda backend: random: ", 22) == 0);
    CHECK(strcmp(cumlp__curand_status_name(CURAND_STATUS_LAUNCH_FAILURE),
                 "CURAND_STATUS_LAUNCH_FAILURE") == 0);
    CHECK(strcmp(cumlp__curand_status_name((curandStatus_t)12345), "an unknown cuRAND status") ==
          0);
    cumlp_context_destroy(ctx);
}
#endif /* HAVE_CUDA_STATUS */

int main(void) {
    if (!cumlp_backend_is_built(CUMLP_BACKEND_CUDA)) harness_skip("the cuda backend is not built");
    RUN(test_no_device);
    RUN(test_device_out_of_range);
    RUN(test_auto_falls_back);
    RUN(test_range_ops_pair);
#ifdef HAVE_CURAND_HEADER
    RUN(test_philox_matches_curand_uniform);
    RUN(test_philox_matches_curand_normal);
    RUN(test_curand_offset_is_an_element_index);
#else
    printf("     (cuRAND's host generator is not linked: no Philox comparison)\n");
#endif
#ifdef HAVE_CUDA_STATUS
    RUN(test_cuda_status);
    RUN(test_library_status);
#endif
    return harness_finish();
}
