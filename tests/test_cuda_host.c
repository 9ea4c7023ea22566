/* ctest-labels: unit cuda */
/*
 * The cuda backend's host side, which runs without a GPU: on a machine without a usable device a
 * cuda context fails with CUMLP_ERROR_NO_DEVICE and leaks nothing (the ASan build runs this),
 * AUTO falls back to a CPU backend; the host Philox stream of src/backends/rng.c (used by the CPU
 * backends) is cuRAND's Philox4x32-10 stream, checked against cuRAND's own host generator: its
 * words, its uniforms, and the normals that the cuda backend makes from its words; the profiler
 * range ops come as a pair; and CUDA, cuBLAS and cuRAND statuses become cumlp statuses as
 * src/backends/cuda_status.h says.
 */
#include "harness.h"
#include "internal.h"
#include "backends/rng.h"
#include "philox.h"
#include "testutil.h"

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

/* The four words of block q of seed's stream, from cumlp's host Philox (kernels/philox.h). */
static void our_block(uint64_t seed, uint64_t q, uint32_t words[4]) {
    uint32_t counter[4], key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    cumlp_philox_block_counter(q, counter);
    cumlp_philox4x32_10(counter, key, words);
}

/* Word i of seed's stream. */
static uint32_t our_word(uint64_t seed, size_t i) {
    uint32_t words[4];
    our_block(seed, (uint64_t)i / 4, words);
    return words[i % 4];
}

/* cuRAND's host generator: count elements of seed's stream from element `offset`, as 32-bit words
 * (curandGenerate, what the cuda backend transforms into normals) or uniform floats. */
static int curand_host_draws(uint64_t seed, int words, size_t offset, size_t count, void *out) {
    curandGenerator_t g;
    if (curandCreateGeneratorHost(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10) != CURAND_STATUS_SUCCESS)
        return 0;
    curandStatus_t st = curandSetGeneratorOrdering(g, CURAND_ORDERING_PSEUDO_LEGACY);
    if (st == CURAND_STATUS_SUCCESS) st = curandSetPseudoRandomGeneratorSeed(g, seed);
    if (st == CURAND_STATUS_SUCCESS) st = curandSetGeneratorOffset(g, offset);
    if (st == CURAND_STATUS_SUCCESS)
        st = words ? curandGenerate(g, out, count) : curandGenerateUniform(g, out, count);
    curandDestroyGenerator(g);
    return st == CURAND_STATUS_SUCCESS;
}

/* More than 65536 blocks of four, so the stream wraps into the second position of every
 * subsequence; even, so that the normals come in whole pairs. */
#define STREAM_LENGTH ((size_t)600002)

/* Uniform draws are one fp32 multiply-add of the same bits: identical to cuRAND's. */
static void compare_uniform_stream(uint64_t seed) {
    float *ours = test_alloc_floats(STREAM_LENGTH), *theirs = test_alloc_floats(STREAM_LENGTH);
    int generated = curand_host_draws(seed, 0, 0, STREAM_LENGTH, theirs);
    CHECK_MSG(generated, "cuRAND's host generator failed");
    cumlp__philox_fill(seed, 0, STREAM_LENGTH, ours);
    size_t differ = 0;
    for (size_t i = 0; generated && i < STREAM_LENGTH; i++)
        differ += memcmp(&ours[i], &theirs[i], sizeof(float)) != 0;
    CHECK_MSG(differ == 0, "seed %llu: %zu uniform draws differ", (unsigned long long)seed, differ);
    /* Element access agrees with the fill, including around the subsequence wrap. */
    const size_t probes[] = {0, 1, 2, 3, 4, 262143, 262144, 262145, 524290, STREAM_LENGTH - 1};
    for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
        float one = cumlp__philox_draw(seed, 0, probes[p]);
        CHECK(memcmp(&one, &ours[probes[p]], sizeof one) == 0);
    }
    free(ours);
    free(theirs);
}

static void test_philox_matches_curand_uniform(void) {
    const uint64_t seeds[] = {0, 42, 0x123456789abcdef0ull, UINT64_MAX};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++)
        compare_uniform_stream(seeds[s]);
}

/* The cuda backend's normals are cumlp_box_muller of curandGenerate's words, pair by pair (words
 * 2p, 2p + 1 -> normals 2p, 2p + 1). Here, with cuRAND's host generator and the host's C library,
 * that must be the host's normal stream bit for bit, and the words themselves cumlp's; on the
 * device only its log, sin and cos differ (test_backend_ops.c bounds the effect). */
static void compare_normal_stream(uint64_t seed) {
    uint32_t *words = malloc(STREAM_LENGTH * sizeof *words);
    float *ours = test_alloc_floats(STREAM_LENGTH), *theirs = test_alloc_floats(STREAM_LENGTH);
    int generated = words && curand_host_draws(seed, 1, 0, STREAM_LENGTH, words);
    CHECK_MSG(generated, "cuRAND's host generator failed");
    cumlp__philox_fill(seed, 1, STREAM_LENGTH, ours);
    size_t words_differ = 0, differ = 0;
    uint32_t block[4];
    for (size_t i = 0; generated && i < STREAM_LENGTH; i += 2) {
        if (i % 4 == 0) our_block(seed, i / 4, block);
        words_differ += (words[i] != block[i % 4]) + (words[i + 1] != block[i % 4 + 1]);
        cumlp_box_muller(words[i], words[i + 1], &theirs[i], &theirs[i + 1]);
        differ += (memcmp(&ours[i], &theirs[i], sizeof(float)) != 0) +
                  (memcmp(&ours[i + 1], &theirs[i + 1], sizeof(float)) != 0);
    }
    CHECK_MSG(words_differ == 0, "seed %llu: %zu of cuRAND's words differ from cumlp's",
              (unsigned long long)seed, words_differ);
    CHECK_MSG(differ == 0,
              "seed %llu: %zu normal draws differ from the transform of cuRAND's words",
              (unsigned long long)seed, differ);
    const size_t probes[] = {0, 1, 2, 3, 262143, 262144, 262145, STREAM_LENGTH - 1};
    for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
        float one = cumlp__philox_draw(seed, 1, probes[p]);
        CHECK(memcmp(&one, &ours[probes[p]], sizeof one) == 0);
    }
    free(words);
    free(ours);
    free(theirs);
}

static void test_normals_from_curand_words(void) {
    const uint64_t seeds[] = {1, 42, 0xfedcba9876543210ull};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++)
        compare_normal_stream(seeds[s]);
}

/* The cuda backend draws the partner word of an odd last normal with a generator offset: offsets
 * count elements of the one stream, words and uniforms alike, odd ones too (checked here on the
 * host generator, which the device generator mirrors). */
static void test_curand_offset_is_an_element_index(void) {
    const size_t offsets[] = {1, 2, 5, 6, 262142, 262144, 300001};
    for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
        size_t first = offsets[k];
        uint32_t words[8];
        float uniforms[8];
        CHECK(curand_host_draws(77, 1, first, 8, words));
        CHECK(curand_host_draws(77, 0, first, 8, uniforms));
        for (size_t i = 0; i < 8; i++) {
            float ours = cumlp__philox_draw(77, 0, first + i);
            CHECK_MSG(words[i] == our_word(77, first + i), "offset %zu word %zu: %#x vs %#x", first,
                      i, (unsigned)words[i], (unsigned)our_word(77, first + i));
            CHECK_MSG(memcmp(&ours, &uniforms[i], sizeof ours) == 0,
                      "offset %zu uniform %zu: %.9g vs %.9g", first, i, ours, uniforms[i]);
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
    RUN(test_normals_from_curand_words);
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
