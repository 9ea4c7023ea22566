/*
 * optional_ops.c - the front end of the optional backend operations (backend.h). A backend that
 * leaves an optional group NULL gets the fallback here, so that no caller branches on what a
 * backend has: pinned memory falls back to malloc, an overlapped upload to a blocking one,
 * double-precision transfers to a float staging buffer, device timers to the host clock, and
 * profiler ranges to nothing.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "internal.h"

#include <stdlib.h>
#include <time.h>

/* ---- overlapped batch uploads ------------------------------------------------------------- */

cumlp_status cumlp__host_alloc(cumlp_context *ctx, size_t bytes, void **ptr) {
    if (ctx->ops->host_alloc) return ctx->ops->host_alloc(ctx, bytes, ptr);
    *ptr = malloc(bytes ? bytes : 1);
    if (!*ptr)
        return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED,
                            "out of host memory allocating %zu bytes of staging memory", bytes);
    return CUMLP_SUCCESS;
}

void cumlp__host_free(cumlp_context *ctx, void *ptr) {
    if (ctx->ops->host_free)
        ctx->ops->host_free(ctx, ptr);
    else
        free(ptr);
}

/* Without a copy stream the copy is made at once, so there is nothing to join or wait for. */
cumlp_status cumlp__upload_async(cumlp_context *ctx, int slot, void *dst, const float *src,
                                 size_t count) {
    if (ctx->ops->upload_async) return ctx->ops->upload_async(ctx, slot, dst, src, count);
    return ctx->ops->upload(ctx, dst, src, count);
}

cumlp_status cumlp__upload_join(cumlp_context *ctx, int slot) {
    return ctx->ops->upload_join ? ctx->ops->upload_join(ctx, slot) : CUMLP_SUCCESS;
}

cumlp_status cumlp__upload_host_wait(cumlp_context *ctx, int slot) {
    return ctx->ops->upload_host_wait ? ctx->ops->upload_host_wait(ctx, slot) : CUMLP_SUCCESS;
}

/* ---- double-precision transfers ------------------------------------------------------------ */

cumlp_status cumlp__upload_f64(cumlp_context *ctx, void *dst, const double *src, size_t count) {
    if (ctx->ops->upload_f64) return ctx->ops->upload_f64(ctx, dst, src, count);
    float *staging = malloc(count * sizeof *staging);
    if (!staging)
        return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "out of host memory staging %zu values",
                            count);
    for (size_t i = 0; i < count; i++)
        staging[i] = (float)src[i];
    cumlp_status st = ctx->ops->upload(ctx, dst, staging, count);
    free(staging);
    return st;
}

cumlp_status cumlp__download_f64(cumlp_context *ctx, const void *src, double *dst, size_t count) {
    if (ctx->ops->download_f64) return ctx->ops->download_f64(ctx, src, dst, count);
    float *staging = malloc(count * sizeof *staging);
    if (!staging)
        return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "out of host memory staging %zu values",
                            count);
    cumlp_status st = ctx->ops->download(ctx, src, staging, count);
    for (size_t i = 0; st == CUMLP_SUCCESS && i < count; i++)
        dst[i] = staging[i];
    free(staging);
    return st;
}

/* ---- profiler ranges ----------------------------------------------------------------------- */

void cumlp__range_push(cumlp_context *ctx, const char *name) {
    if (ctx->ops->range_push) ctx->ops->range_push(ctx, name);
}

void cumlp__range_pop(cumlp_context *ctx) {
    if (ctx->ops->range_pop) ctx->ops->range_pop(ctx);
}

/* ---- timers -------------------------------------------------------------------------------- */

static double host_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* The host clock measures from the start mark to the end of the queued work: the stop waits
 * for it with synchronize. */
cumlp_status cumlp__timer_start(cumlp_context *ctx) {
    if (ctx->ops->timer_start) return ctx->ops->timer_start(ctx);
    ctx->host_timer_start_ms = host_ms();
    return CUMLP_SUCCESS;
}

cumlp_status cumlp__timer_stop(cumlp_context *ctx, double *elapsed_ms) {
    if (ctx->ops->timer_stop) return ctx->ops->timer_stop(ctx, elapsed_ms);
    cumlp_status st = ctx->ops->synchronize(ctx);
    *elapsed_ms = host_ms() - ctx->host_timer_start_ms;
    return st;
}

/* ---- the contract -------------------------------------------------------------------------- */

cumlp_status cumlp__require_native(cumlp_context *ctx, const char *op, int storage) {
    if (storage == CUMLP_STORAGE_NATIVE) return CUMLP_SUCCESS;
    return cumlp__error(ctx, CUMLP_ERROR_INTERNAL, "%s backend: %s was handed a 16-bit buffer",
                        ctx->ops->name, op);
}

#define REQUIRE(op)                                                                                \
    if (!ops->op)                                                                                  \
    return cumlp__error(NULL, CUMLP_ERROR_INTERNAL, "the %s backend lacks the operation %s",       \
                        ops->name, #op)
#define PRESENT(op) (ops->op != NULL)
/* The members of an optional group are all present or all NULL. */
#define GROUP(present, size)                                                                       \
    if ((present) != 0 && (present) != (size))                                                     \
    return cumlp__error(NULL, CUMLP_ERROR_INTERNAL,                                                \
                        "the %s backend has %d of the %d operations of an optional group",         \
                        ops->name, (present), (size))

cumlp_status cumlp__check_backend_ops(const cumlp_backend_ops *ops) {
    REQUIRE(init);
    REQUIRE(shutdown);
    REQUIRE(describe);
    REQUIRE(synchronize);
    REQUIRE(alloc);
    REQUIRE(free);
    REQUIRE(upload);
    REQUIRE(download);
    REQUIRE(fill);
    REQUIRE(copy);
    REQUIRE(gemm);
    REQUIRE(bias_activation);
    REQUIRE(loss_delta);
    REQUIRE(activation_backward);
    REQUIRE(optimizer_step);
    REQUIRE(random);
    REQUIRE(scale_shift);
    REQUIRE(check_finite);
    GROUP(PRESENT(host_alloc) + PRESENT(host_free) + PRESENT(upload_async) + PRESENT(upload_join) +
              PRESENT(upload_host_wait),
          5);
    GROUP(PRESENT(upload_f64) + PRESENT(download_f64), 2);
    GROUP(PRESENT(range_push) + PRESENT(range_pop), 2);
    GROUP(PRESENT(timer_start) + PRESENT(timer_stop), 2);
    GROUP(PRESENT(gemm_bias_activation) + PRESENT(gemm_activation_backward), 2);
    GROUP(PRESENT(loss_delta_step) + PRESENT(step_state_copy) + PRESENT(step_decide) +
              PRESENT(optimizer_step_decided) + PRESENT(step_score),
          5);
    GROUP(PRESENT(graph_begin) + PRESENT(graph_end) + PRESENT(graph_launch) + PRESENT(graph_free),
          4);
    if (ops->graph_begin && !ops->step_decide)
        return cumlp__error(NULL, CUMLP_ERROR_INTERNAL,
                            "the %s backend has graphs without the device-resident step",
                            ops->name);
    const unsigned sixteen = 1u << CUMLP_PRECISION_BF16 | 1u << CUMLP_PRECISION_FP16;
    if (!(ops->precisions & 1u << CUMLP_PRECISION_FP32))
        return cumlp__error(NULL, CUMLP_ERROR_INTERNAL, "the %s backend does not run fp32",
                            ops->name);
    if ((ops->precisions & sixteen) != 0 && (!ops->convert || ops->elem_size != sizeof(float)))
        return cumlp__error(NULL, CUMLP_ERROR_INTERNAL,
                            "the %s backend runs a 16-bit precision without convert or with a "
                            "native element that is not fp32",
                            ops->name);
    if ((ops->precisions & sixteen) == 0 && ops->convert)
        return cumlp__error(NULL, CUMLP_ERROR_INTERNAL,
                            "the %s backend has convert but runs no 16-bit precision", ops->name);
    return CUMLP_SUCCESS;
}
