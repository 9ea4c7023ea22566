/* ctest-labels: unit */
/*
 * test_cpu_backend.c - what only the cpu backend has (test_backend_ops checks its ops and whole
 * training runs against the reference): bit-identical results for repeated runs with the same
 * thread count, its memory accounting in whole 64-byte lines, wrapped caller memory, describe.
 */
#include "harness.h"
#include "internal.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static cumlp_context *cpu_context(int threads) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_CPU;
    o.num_threads = threads;
    cumlp_context *ctx = NULL;
    if (cumlp_context_create(&ctx, &o) != CUMLP_SUCCESS) {
        fprintf(stderr, "test: cpu context: %s\n", cumlp_last_error(NULL));
        abort();
    }
    return ctx;
}

static cumlp_context *cpu_ctx;

/* Backend allocations are counted as the bytes asked for (as on every backend, though the block
 * is rounded up to whole 64-byte lines), and free returns them all. */
static void test_memory_accounting(void) {
    const size_t n = 70001;
    void *a = NULL, *b = NULL;
    int64_t before = -1, after = -1;
    CHECK_OK(cumlp_context_memory(cpu_ctx, &before, NULL));
    CHECK_OK(cpu_ctx->ops->alloc(cpu_ctx, n, &a));
    CHECK_OK(cpu_ctx->ops->alloc(cpu_ctx, n, &b));
    CHECK_OK(cumlp_context_memory(cpu_ctx, &after, NULL));
    CHECK(after - before == 2 * 70001 * (int64_t)sizeof(float));
    cpu_ctx->ops->free(cpu_ctx, a);
    cpu_ctx->ops->free(cpu_ctx, b);
    cpu_ctx->ops->free(cpu_ctx, NULL);
    CHECK_OK(cumlp_context_memory(cpu_ctx, &after, NULL));
    CHECK(after == before);
    char text[256];
    CHECK_OK(cumlp_context_describe(cpu_ctx, text, sizeof text));
    CHECK(strstr(text, "cpu") != NULL);
}

/* Wrapped caller memory: the tensor reads and writes the caller's array in place; a pointer that
 * is not 4-byte aligned is refused before anything reads it. */
static void test_wrap(void) {
    _Alignas(16) float storage[13] = {0};
    float values[12], back[12];
    for (int i = 0; i < 12; i++)
        values[i] = 0.5f * (float)i - 2.0f;
    cumlp_tensor *t = NULL;
    int64_t before = -1, after = -1;
    CHECK_OK(cumlp_context_memory(cpu_ctx, &before, NULL));
    CHECK_OK(cumlp_tensor_wrap(cpu_ctx, storage, 3, 4, &t));
    CHECK_OK(cumlp_context_memory(cpu_ctx, &after, NULL));
    CHECK(after == before); /* the caller's memory is not counted */
    CHECK(cumlp_tensor_data(t) == storage);
    CHECK_OK(cumlp_tensor_upload(t, values, 12));
    CHECK(memcmp(storage, values, sizeof values) == 0);
    storage[5] = 42.0f;
    CHECK_OK(cumlp_tensor_download(t, back, 12));
    CHECK(back[5] == 42.0f && back[4] == values[4]);
    cumlp_tensor_destroy(t);
    CHECK(storage[0] == values[0]); /* not freed, still the caller's */

    cumlp_tensor *bad = (cumlp_tensor *)&storage[0]; /* must be overwritten with NULL */
    CHECK_STATUS(cumlp_tensor_wrap(cpu_ctx, (char *)storage + 2, 3, 4, &bad),
                 CUMLP_ERROR_INVALID_VALUE);
    CHECK(bad == NULL);
    CHECK(strstr(cumlp_last_error(cpu_ctx), "aligned") != NULL);
    CHECK_STATUS(cumlp_tensor_wrap(cpu_ctx, NULL, 3, 4, &bad), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_tensor_wrap(cpu_ctx, storage, 0, 4, &bad), CUMLP_ERROR_INVALID_VALUE);
}

/* Same thread count, same results, bit for bit; with batches large enough that the elementwise
 * passes and their reductions really split across threads. */
static void test_repeatable(void) {
    const int thread_counts[] = {1, 2, 3};
    const test_training t = {.num_layers = 3,
                             .widths = {29, 256, 129, 10},
                             .activations = {CUMLP_ACT_RELU, CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX},
                             .loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY,
                             .init = CUMLP_INIT_XAVIER_UNIFORM,
                             .seed = 7,
                             .optimizer = CUMLP_OPT_MOMENTUM,
                             .learning_rate = 0.05,
                             .batch = 512,
                             .data_seed = 99,
                             .fresh_batches = 1};
    enum { STEPS = 6 };
    size_t n = (size_t)(256 * 30 + 129 * 257 + 10 * 130);
    for (size_t i = 0; i < sizeof thread_counts / sizeof thread_counts[0]; i++) {
        cumlp_context *ctx = cpu_context(thread_counts[i]);
        double l1[STEPS], l2[STEPS];
        float *p1 = test_train(ctx, &t, STEPS, l1), *p2 = test_train(ctx, &t, STEPS, l2);
        CHECK(p1 && p2);
        if (p1 && p2)
            CHECK_MSG(memcmp(p1, p2, n * sizeof(float)) == 0 && memcmp(l1, l2, sizeof l1) == 0,
                      "%d threads: two runs differ", thread_counts[i]);
        free(p1);
        free(p2);
        cumlp_context_destroy(ctx);
    }
}

int main(void) {
    if (!cumlp_backend_is_built(CUMLP_BACKEND_CPU)) harness_skip("the cpu backend is not built");
    cpu_ctx = cpu_context(2);
    RUN(test_memory_accounting);
    RUN(test_wrap);
    RUN(test_repeatable);
    cumlp_context_destroy(cpu_ctx);
    return harness_finish();
}
