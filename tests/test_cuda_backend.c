/* ctest-labels: gpu */
/*
 * What only the cuda backend has (test_backend_ops checks its ops against the reference): host
 * <-> device copies through the pinned staging halves (and without them, when pinned memory
 * fails), overlapped uploads on the copy stream, the scratch memory's growth under queued work,
 * NVTX range ops, and describe. Skipped without a GPU.
 */
#include "harness.h"
#include "internal.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef CUMLP_TEST_CUDA_SIM
#include "cudasim_control.h"
#endif

static cumlp_context *gpu;
static test_rng rng = {12345};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- memory ------------------------------------------------------------------------------------
 */

/* upload and download go through two pinned staging halves of 1 << 19 floats (cuda.c,
 * STAGING_FLOATS), chunk c in half c % 2: sizes that end just past one half, exactly at both, and
 * past three, so that each half is reused while the other's copy is in flight. (test_backend_ops
 * runs the small sizes and the unaligned sub-ranges on every backend.) */
static void test_staged_copies(void) {
    const size_t sizes[] = {(1u << 19) + 7, 2u << 19, (3u << 19) + 1};
    for (int s = 0; s < COUNT(sizes); s++) {
        size_t n = sizes[s];
        float *h = test_alloc_floats(n), *back = test_alloc_floats(n);
        float *original = test_alloc_floats(n);
        test_fill_uniform(&rng, h, n, -10, 10);
        memcpy(original, h, n * sizeof *h);
        void *a = NULL, *b = NULL;
        CHECK_OK(gpu->ops->alloc(gpu, n, &a));
        CHECK_OK(gpu->ops->alloc(gpu, n, &b));
        CHECK_OK(gpu->ops->upload(gpu, a, h, n));
        memset(h, 0, n * sizeof *h); /* upload has returned: the host array is free */
        CHECK_OK(gpu->ops->download(gpu, a, back, n));
        CHECK_MSG(memcmp(back, original, n * sizeof *h) == 0,
                  "upload and download of %zu floats: the data came back changed", n);
        CHECK_OK(gpu->ops->fill(gpu, b, n, NAN));
        CHECK_OK(gpu->ops->copy(gpu, b, a, n));
        CHECK_OK(gpu->ops->download(gpu, b, h, n));
        CHECK_MSG(memcmp(h, back, n * sizeof *h) == 0, "copy of %zu floats differs", n);
        CHECK_OK(gpu->ops->fill(gpu, b, n, 2.5f));
        CHECK_OK(gpu->ops->download(gpu, b, h, n));
        size_t wrong = 0;
        for (size_t i = 0; i < n; i++)
            wrong += h[i] != 2.5f;
        CHECK_MSG(wrong == 0, "fill of %zu floats: %zu wrong", n, wrong);
        /* Unaligned sub-ranges (not 16-byte aligned): the scalar paths. */
        if (n > 3) {
            CHECK_OK(gpu->ops->fill(gpu, cumlp__at(gpu, b, 1), n - 2, -1.0f));
            CHECK_OK(gpu->ops->download(gpu, b, h, n));
            CHECK(h[0] == 2.5f && h[1] == -1.0f && h[n - 2] == -1.0f && h[n - 1] == 2.5f);
        }
        gpu->ops->free(gpu, a);
        gpu->ops->free(gpu, b);
        free(h);
        free(back);
        free(original);
    }
}

/* A context of its own: the staging halves and the scratch memory are made on first use and kept,
 * so the shared one has them already. */
static cumlp_context *fresh_context(void) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_CUDA;
    cumlp_context *ctx = NULL;
    CHECK_OK(cumlp_context_create(&ctx, &o));
    return ctx;
}

/* When pinned memory cannot be had (cudaHostAlloc fails: the system will not page-lock more),
 * upload and download copy directly and wait (cuda.c's copy_and_wait) and still move the data;
 * host_alloc reports the failure. The CUDA simulator fails the pinned allocation on request. */
static void test_copies_without_pinned_memory(void) {
#ifdef CUMLP_TEST_CUDA_SIM
    cumlp_context *ctx = fresh_context();
    if (!ctx) return;
    const size_t n = (1u << 19) + 7; /* more than one staging half */
    float *h = test_alloc_floats(n), *back = test_alloc_floats(n);
    test_fill_uniform(&rng, h, n, -10, 10);
    void *d = NULL;
    CHECK_OK(ctx->ops->alloc(ctx, n, &d));
    cudasim_fail_host_allocation(1); /* the staging halves, allocated by this first upload */
    CHECK_OK(ctx->ops->upload(ctx, d, h, n));
    cudasim_fail_host_allocation(1); /* tried again by the download: fails again */
    CHECK_OK(ctx->ops->download(ctx, d, back, n));
    CHECK_MSG(memcmp(back, h, n * sizeof *h) == 0, "the direct copies changed the data");
    CHECK_OK(ctx->ops->fill(ctx, d, n, 0.5f));
    cudasim_fail_host_allocation(1);
    CHECK_OK(ctx->ops->download(ctx, d, back, n));
    CHECK(back[0] == 0.5f && back[n - 1] == 0.5f);
    float *pinned = (float *)&n;
    cudasim_fail_host_allocation(1);
    CHECK_STATUS(ctx->ops->host_alloc(ctx, 100 * sizeof(float), (void **)&pinned),
                 CUMLP_ERROR_ALLOC_FAILED);
    CHECK(pinned == NULL);
    CHECK(strstr(cumlp_last_error(ctx), "pinned host_alloc") != NULL);
    /* Nothing is poisoned: the staging halves come now, and host_alloc works. */
    CHECK_OK(ctx->ops->upload(ctx, d, h, n));
    CHECK_OK(ctx->ops->download(ctx, d, back, n));
    CHECK(memcmp(back, h, n * sizeof *h) == 0);
    CHECK_OK(ctx->ops->host_alloc(ctx, 100 * sizeof(float), (void **)&pinned));
    ctx->ops->host_free(ctx, pinned);
    ctx->ops->free(ctx, d);
    cumlp_context_destroy(ctx);
    free(h);
    free(back);
#else
    printf("     (pinned allocations fail on request in the CUDA simulator only)\n");
#endif
}

/* Growing the device scratch (cuda.c's workspace) waits for the work queued on the old one: a
 * loss_delta with a bias gradient and no loss read-back (so nothing waits) leaves kernels queued
 * that write the scratch, and an activation_backward with more rows needs a larger one. Freeing
 * the old scratch under them would be a use after free (the CUDA simulator reports it in its
 * lazy schedules); the bias gradients must come out right. Squared error and identity: delta is
 * a - y, and G; the values are exact in float. */
static void test_scratch_growth_waits_for_queued_work(void) {
    cumlp_context *ctx = fresh_context();
    if (!ctx) return;
    const int cols = 64, small = 8, large = 1000;
    size_t n_small = (size_t)small * cols, n_large = (size_t)large * cols;
    float *a = test_alloc_floats(n_small), *y = test_alloc_floats(n_small);
    float *g = test_alloc_floats(n_large), *db = test_alloc_floats(large);
    for (size_t i = 0; i < n_small; i++) {
        a[i] = (float)(i % 7) * 0.25f;
        y[i] = (float)(i % 5) * 0.125f;
    }
    for (size_t i = 0; i < n_large; i++)
        g[i] = (float)((int)(i % 9) - 4) * 0.5f;
    void *A = NULL, *Y = NULL, *D = NULL, *DB = NULL, *G = NULL, *GD = NULL, *GB = NULL;
    CHECK_OK(ctx->ops->alloc(ctx, n_small, &A));
    CHECK_OK(ctx->ops->alloc(ctx, n_small, &Y));
    CHECK_OK(ctx->ops->alloc(ctx, n_small, &D));
    CHECK_OK(ctx->ops->alloc(ctx, (size_t)small, &DB));
    CHECK_OK(ctx->ops->alloc(ctx, n_large, &G));
    CHECK_OK(ctx->ops->alloc(ctx, n_large, &GD));
    CHECK_OK(ctx->ops->alloc(ctx, (size_t)large, &GB));
    CHECK_OK(ctx->ops->upload(ctx, A, a, n_small));
    CHECK_OK(ctx->ops->upload(ctx, Y, y, n_small));
    CHECK_OK(ctx->ops->upload(ctx, G, g, n_large));
    CHECK_OK(ctx->ops->loss_delta(ctx, CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_IDENTITY, 0, small, cols,
                                  A, A, Y, D, CUMLP_STORAGE_NATIVE, DB, 1.0, 1.0, NULL));
    CHECK_OK(ctx->ops->activation_backward(ctx, CUMLP_STORAGE_NATIVE, CUMLP_ACT_IDENTITY, 0, large,
                                           cols, G, G, NULL, GD, GB, 1.0));
    CHECK_OK(ctx->ops->download(ctx, DB, db, (size_t)small));
    for (int r = 0; r < small; r++) {
        double want = 0;
        for (int c = 0; c < cols; c++)
            want += (double)a[r + (size_t)c * small] - (double)y[r + (size_t)c * small];
        CHECK_MSG(db[r] == (float)want, "loss_delta's db[%d] = %g, want %g", r, db[r], want);
    }
    CHECK_OK(ctx->ops->download(ctx, GB, db, (size_t)large));
    for (int r = 0; r < large; r++) {
        double want = 0;
        for (int c = 0; c < cols; c++)
            want += g[r + (size_t)c * large];
        CHECK_MSG(db[r] == (float)want, "activation_backward's db[%d] = %g, want %g", r, db[r],
                  want);
    }
    void *bufs[] = {A, Y, D, DB, G, GD, GB};
    for (int i = 0; i < COUNT(bufs); i++)
        ctx->ops->free(ctx, bufs[i]);
    CHECK_OK(cumlp_context_synchronize(ctx));
    cumlp_context_destroy(ctx);
    free(a);
    free(y);
    free(g);
    free(db);
}

/* Queues about 10 ms of GEMMs on the context's stream, so that work queued after it is still
 * pending when a copy on another stream could already have run. */
static void keep_stream_busy(void **scratch) {
#ifdef CUMLP_TEST_CUDA_SIM
    const int d = 64; /* the simulator runs queued work late and out of issue order anyway */
#else
    const int d = 2048;
#endif
    if (!*scratch) CHECK_OK(gpu->ops->alloc(gpu, (size_t)3 * d * d, scratch));
    if (!*scratch) return;
    void *a = *scratch, *b = cumlp__at(gpu, a, (size_t)d * d),
         *c = cumlp__at(gpu, b, (size_t)d * d);
    CHECK_OK(gpu->ops->fill(gpu, a, (size_t)2 * d * d, 1.0f / d));
    for (int i = 0; i < 24; i++)
        CHECK_OK(gpu->ops->gemm(gpu, 0, 0, d, d, d, 1.0, a, d, b, d, 0.0, c, d,
                                CUMLP_STORAGE_NATIVE, CUMLP_STORAGE_NATIVE));
}

/* upload_async must wait for the work already queued on the context's stream (a fill queued
 * behind busy work would otherwise land after the copy and leave NaN), and upload_join alone
 * must order later work on the context's stream after the copy (the download runs before
 * upload_host_wait, so the host wait cannot hide a missing join). Two rounds reuse the slots. */
static void test_overlapped_upload(void) {
    size_t n = 100003;
    float *pinned[2] = {NULL, NULL}, *back = test_alloc_floats(n);
    void *dst[2] = {NULL, NULL}, *scratch = NULL;
    for (int s = 0; s < 2; s++) {
        CHECK_OK(gpu->ops->host_alloc(gpu, n * sizeof(float), (void **)&pinned[s]));
        CHECK_OK(gpu->ops->alloc(gpu, n, &dst[s]));
    }
    for (int round = 0; round < 2 && pinned[0] && pinned[1] && dst[0] && dst[1]; round++) {
        keep_stream_busy(&scratch);
        for (int s = 0; s < 2; s++) {
            CHECK_OK(gpu->ops->upload_host_wait(gpu, s)); /* the slot's host buffer is free */
            for (size_t i = 0; i < n; i++)
                pinned[s][i] = (float)(i * (s + 1) + round) * 0.5f;
            CHECK_OK(gpu->ops->fill(gpu, dst[s], n, NAN)); /* queued behind the GEMMs */
            CHECK_OK(gpu->ops->upload_async(gpu, s, dst[s], pinned[s], n));
        }
        for (int s = 0; s < 2; s++) {
            CHECK_OK(gpu->ops->upload_join(gpu, s));
            CHECK_OK(gpu->ops->download(gpu, dst[s], back, n));
            CHECK_MSG(memcmp(back, pinned[s], n * sizeof(float)) == 0,
                      "round %d slot %d: the overlapped upload was overwritten or not waited for",
                      round, s);
        }
    }
    for (int s = 0; s < 2; s++) {
        if (pinned[s]) CHECK_OK(gpu->ops->upload_host_wait(gpu, s));
        gpu->ops->free(gpu, dst[s]);
        gpu->ops->host_free(gpu, pinned[s]);
    }
    gpu->ops->free(gpu, scratch);
    free(back);
}

/* The profiler range ops come as a pair (both NVTX, or both NULL in a build without it); a
 * range around queued work changes nothing. */
static void test_ranges(void) {
    const cumlp_backend_ops *ops = gpu->ops;
    CHECK((ops->range_push == NULL) == (ops->range_pop == NULL));
    if (!ops->range_push) {
        printf("     (built without NVTX: no range ops)\n");
        return;
    }
    void *x = NULL;
    CHECK_OK(ops->alloc(gpu, 5, &x));
    ops->range_push(gpu, "cumlp:test_outer");
    ops->range_push(gpu, "cumlp:test_inner");
    CHECK_OK(ops->fill(gpu, x, 5, 3.0f));
    ops->range_pop(gpu);
    ops->range_pop(gpu);
    float back[5];
    CHECK_OK(ops->download(gpu, x, back, 5));
    CHECK(back[0] == 3.0f && back[4] == 3.0f);
    ops->free(gpu, x);
}

/* The device timer measures queued work between two marks; a stop without a start is an error of
 * the caller, not a device fault. */
static void test_timer(void) {
    double ms = -1;
    CHECK_STATUS(gpu->ops->timer_stop(gpu, &ms), CUMLP_ERROR_INTERNAL);
    CHECK(cumlp_context_synchronize(gpu) == CUMLP_SUCCESS); /* the context is not poisoned */
    CHECK_OK(gpu->ops->timer_start(gpu));
    void *x = NULL;
    CHECK_OK(gpu->ops->alloc(gpu, 1000, &x));
    CHECK_OK(gpu->ops->fill(gpu, x, 1000, 1.0f));
    CHECK_OK(gpu->ops->timer_stop(gpu, &ms));
    CHECK(ms >= 0);
    CHECK_STATUS(gpu->ops->timer_stop(gpu, &ms), CUMLP_ERROR_INTERNAL); /* one stop per start */
    gpu->ops->free(gpu, x);
}

static void test_describe(void) {
    char buf[512];
    CHECK_OK(cumlp_context_describe(gpu, buf, sizeof buf));
    CHECK(strstr(buf, "compute capability") != NULL);
    printf("     %s\n", buf);
}

/* Freeing pinned memory waits for the copies still queued from it (cudaFreeHost would otherwise
 * free memory an overlapped upload has yet to read: the CUDA simulator reports it). */
static void test_host_free_waits_for_copies(void) {
    const size_t n = 4099;
    float *pinned = NULL;
    void *dst = NULL, *scratch = NULL;
    CHECK_OK(gpu->ops->host_alloc(gpu, n * sizeof(float), (void **)&pinned));
    CHECK_OK(gpu->ops->alloc(gpu, n, &dst));
    if (!pinned || !dst) return;
    keep_stream_busy(&scratch); /* the copy waits for this work */
    for (size_t i = 0; i < n; i++)
        pinned[i] = (float)i;
    CHECK_OK(gpu->ops->upload_async(gpu, 0, dst, pinned, n));
    gpu->ops->host_free(gpu, pinned); /* no upload_host_wait before it */
    CHECK_OK(gpu->ops->upload_join(gpu, 0));
    float *back = test_alloc_floats(n);
    CHECK_OK(gpu->ops->download(gpu, dst, back, n));
    CHECK(back[0] == 0.0f && back[n - 1] == (float)(n - 1));
    free(back);
    gpu->ops->free(gpu, dst);
    gpu->ops->free(gpu, scratch);
}

/* Softmax and the cross-entropy loss give each column one warp: ceil(cols / 8) blocks of 256
 * threads (8 warps), up to the 8192 of a grid-stride loop. The simulator counts the blocks. */
static void test_column_kernels_launch_a_warp_per_column(void) {
#ifdef CUMLP_TEST_CUDA_SIM
    const int rows = 10, cols_list[] = {1, 8, 9, 1000, 70000};
    for (int c = 0; c < COUNT(cols_list); c++) {
        int cols = cols_list[c];
        size_t n = (size_t)rows * cols;
        void *P = NULL, *b = NULL, *A = NULL, *Y = NULL, *D = NULL;
        CHECK_OK(gpu->ops->alloc(gpu, n, &P));
        CHECK_OK(gpu->ops->alloc(gpu, rows, &b));
        CHECK_OK(gpu->ops->alloc(gpu, n, &A));
        CHECK_OK(gpu->ops->alloc(gpu, n, &Y));
        CHECK_OK(gpu->ops->alloc(gpu, n, &D));
        CHECK_OK(gpu->ops->fill(gpu, P, n, 0.5f));
        CHECK_OK(gpu->ops->fill(gpu, b, rows, 0.0f));
        CHECK_OK(gpu->ops->fill(gpu, Y, n, 0.1f));
        CHECK_OK(gpu->ops->bias_activation(gpu, CUMLP_STORAGE_NATIVE, CUMLP_ACT_SOFTMAX, 0, rows,
                                           cols, P, b, P, A));
        double loss = 0;
        CHECK_OK(gpu->ops->loss_delta(gpu, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, CUMLP_ACT_SOFTMAX, 0,
                                      rows, cols, P, A, Y, D, CUMLP_STORAGE_NATIVE, NULL, 1.0, 1.0,
                                      &loss));
        unsigned long want = (unsigned long)((cols + 7) / 8);
        if (want > 8192) want = 8192;
        /* The simulator names a launch by its kernel argument as written: a template's too. */
        CHECK_MSG(cudasim_last_launch_blocks("softmax_kernel<T>") == want,
                  "%d columns: softmax ran %lu blocks, want %lu", cols,
                  cudasim_last_launch_blocks("softmax_kernel<T>"), want);
        CHECK_MSG(cudasim_last_launch_blocks("cross_entropy_kernel") == want,
                  "%d columns: cross-entropy ran %lu blocks, want %lu", cols,
                  cudasim_last_launch_blocks("cross_entropy_kernel"), want);
        gpu->ops->free(gpu, P);
        gpu->ops->free(gpu, b);
        gpu->ops->free(gpu, A);
        gpu->ops->free(gpu, Y);
        gpu->ops->free(gpu, D);
    }
#else
    printf("     (launch sizes are counted by the CUDA simulator only)\n");
#endif
}

int main(void) {
    gpu = test_context_or_skip(CUMLP_BACKEND_CUDA);
    RUN(test_describe);
    RUN(test_staged_copies);
    RUN(test_copies_without_pinned_memory);
    RUN(test_scratch_growth_waits_for_queued_work);
    RUN(test_overlapped_upload);
    RUN(test_ranges);
    RUN(test_host_free_waits_for_copies);
    RUN(test_timer);
    RUN(test_column_kernels_launch_a_warp_per_column);
    CHECK_OK(cumlp_context_synchronize(gpu));
    cumlp_context_destroy(gpu);
    return harness_finish();
}
