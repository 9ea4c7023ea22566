/* context.c - the version, and the context: backend selection, synchronize, memory. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUMLP_STR2(x) #x
#define CUMLP_STR(x)  CUMLP_STR2(x)

int cumlp_version_number(void) {
    return CUMLP_VERSION_NUMBER;
}

const char *cumlp_version_string(void) {
    return CUMLP_STR(CUMLP_VERSION_MAJOR) "." CUMLP_STR(CUMLP_VERSION_MINOR) "." CUMLP_STR(
        CUMLP_VERSION_PATCH);
}

static const cumlp_backend_ops *backend_ops(int backend) {
    switch (backend) {
    case CUMLP_BACKEND_REFERENCE:
        return cumlp__backend_reference();
    case CUMLP_BACKEND_CPU:
        return cumlp__backend_cpu();
    case CUMLP_BACKEND_CUDA:
        return cumlp__backend_cuda();
    default:
        return NULL;
    }
}

int cumlp_backend_is_built(int backend) {
    return backend_ops(backend) != NULL;
}

cumlp_status cumlp_context_defaults(cumlp_context_options *options) {
    CUMLP_FAIL_IF(!options, NULL, CUMLP_ERROR_INVALID_VALUE, "options is NULL");
    memset(options, 0, sizeof *options);
    options->backend = CUMLP_BACKEND_AUTO;
    options->device = 0;
    options->stream = NULL;
    options->precision = CUMLP_PRECISION_FP32;
    options->num_threads = 0;
    return CUMLP_SUCCESS;
}

static cumlp_status check_options(const char *func, const cumlp_context_options *o) {
    if (o->backend < 0 || o->backend >= CUMLP_BACKEND_COUNT)
        return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "unknown backend %d", o->backend);
    if (o->precision < 0 || o->precision >= CUMLP_PRECISION_COUNT)
        return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "unknown precision %d",
                           o->precision);
    if (o->device < 0)
        return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "device ordinal %d is negative",
                           o->device);
    if (o->num_threads < 0)
        return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "num_threads %d is negative",
                           o->num_threads);
    if (o->stream && o->backend != CUMLP_BACKEND_CUDA && o->backend != CUMLP_BACKEND_AUTO)
        return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func,
                           "a stream was given for the %s backend, which has none",
                           cumlp_backend_name(o->backend));
    return CUMLP_SUCCESS;
}

/* CUMLP_ERROR_NOT_SUPPORTED unless the backend runs the precision. */
static cumlp_status check_precision(const cumlp_context *ctx, const char *func,
                                    const cumlp_backend_ops *ops, int precision) {
    if (ops->precisions & 1u << precision) return CUMLP_SUCCESS;
    return cumlp__fail(ctx, CUMLP_ERROR_NOT_SUPPORTED, func,
                       "the %s backend does not run precision %s (bf16 and fp16 need the cuda "
                       "backend)",
                       ops->name, cumlp_precision_name(precision));
}

/* Tries one backend; on success *ctx owns an initialized context. */
static cumlp_status try_backend(const char *func, int backend, const cumlp_context_options *o,
                                cumlp_context **out) {
    const cumlp_backend_ops *ops = backend_ops(backend);
    if (!ops)
        return cumlp__fail(NULL, CUMLP_ERROR_NOT_SUPPORTED, func,
                           "the %s backend is not built into this library (see "
                           "cumlp_backend_is_built)",
                           cumlp_backend_name(backend));
    cumlp_status st = cumlp__check_backend_ops(ops);
    if (st != CUMLP_SUCCESS) return st;
    st = check_precision(NULL, func, ops, o->precision);
    if (st != CUMLP_SUCCESS) return st;
    cumlp_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return cumlp__fail(NULL, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory");
    ctx->backend = backend;
    ctx->ops = ops;
    ctx->precision = o->precision;
    ctx->graphs = ops->graph_begin != NULL;
    st = ops->init(ctx, o);
    if (st != CUMLP_SUCCESS) {
        /* The backend wrote its reason into ctx->message; hand it to the thread slot. */
        cumlp__error(NULL, st, "%s", ctx->message);
        free(ctx);
        return st;
    }
    *out = ctx;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_context_create(cumlp_context **ctx, const cumlp_context_options *options) {
    CUMLP_FAIL_IF(!ctx, NULL, CUMLP_ERROR_INVALID_VALUE, "ctx is NULL");
    *ctx = NULL;
    cumlp_context_options defaults;
    cumlp_context_defaults(&defaults);
    const cumlp_context_options *o = options ? options : &defaults;
    cumlp_status st = check_options(__func__, o);
    if (st != CUMLP_SUCCESS) return st;
    if (o->backend != CUMLP_BACKEND_AUTO) return try_backend(__func__, o->backend, o, ctx);

    /* auto: the first backend that is built and finds what it needs; the context remembers
     * why the ones before it were passed over. */
    const int order[] = {CUMLP_BACKEND_CUDA, CUMLP_BACKEND_CPU, CUMLP_BACKEND_REFERENCE};
    char note[CUMLP_MESSAGE_SIZE] = "";
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (o->stream && order[i] != CUMLP_BACKEND_CUDA) break; /* a stream demands cuda */
        st = try_backend(__func__, order[i], o, ctx);
        if (st == CUMLP_SUCCESS) {
            snprintf((*ctx)->fallback_note, sizeof(*ctx)->fallback_note, "%s", note);
            cumlp__clear_error(NULL); /* the reasons live on in the note, not as an error */
            return st;
        }
        size_t used = strlen(note);
        snprintf(note + used, sizeof note - used, "%sauto: %s backend passed over: %s",
                 used ? "; " : "", cumlp_backend_name(order[i]), cumlp_last_error(NULL));
    }
    CUMLP_FAIL_IF(o->stream, NULL, CUMLP_ERROR_NO_DEVICE,
                  "a CUDA stream was given but no usable GPU was found");
    /* Every backend passed over (a precision only cuda runs, without a GPU): say why each was. */
    return cumlp__fail(NULL, st, __func__, "no backend can run these options (%s)", note);
}

void cumlp_context_destroy(cumlp_context *ctx) {
    if (!ctx) return;
    ctx->ops->shutdown(ctx);
    cumlp__memtrack_release(&ctx->memory);
    free(ctx);
}

int cumlp_context_backend(const cumlp_context *ctx) {
    return ctx ? ctx->backend : -1;
}

cumlp_status cumlp_context_synchronize(cumlp_context *ctx) {
    CUMLP_FAIL_IF(!ctx, NULL, CUMLP_ERROR_INVALID_VALUE, "ctx is NULL");
    if (ctx->sticky) return ctx->sticky;
    return ctx->ops->synchronize(ctx);
}

cumlp_status cumlp_context_set_precision(cumlp_context *ctx, int precision) {
    CUMLP_FAIL_IF(!ctx, NULL, CUMLP_ERROR_INVALID_VALUE, "ctx is NULL");
    CUMLP_FAIL_IF(precision < 0 || precision >= CUMLP_PRECISION_COUNT, ctx,
                  CUMLP_ERROR_INVALID_VALUE, "unknown precision %d", precision);
    cumlp_status st = check_precision(ctx, __func__, ctx->ops, precision);
    if (st == CUMLP_SUCCESS) ctx->precision = precision;
    return st;
}

int cumlp_context_precision(const cumlp_context *ctx) {
    return ctx ? ctx->precision : -1;
}

cumlp_status cumlp_context_set_epilogues(cumlp_context *ctx, int epilogues) {
    CUMLP_FAIL_IF(!ctx, NULL, CUMLP_ERROR_INVALID_VALUE, "ctx is NULL");
    CUMLP_FAIL_IF(epilogues < 0 || epilogues >= CUMLP_EPILOGUES_COUNT, ctx,
                  CUMLP_ERROR_INVALID_VALUE, "unknown epilogue setting %d", epilogues);
    CUMLP_FAIL_IF(epilogues != CUMLP_EPILOGUES_OFF && !ctx->ops->gemm_bias_activation, ctx,
                  CUMLP_ERROR_NOT_SUPPORTED,
                  "the %s backend has no GEMM epilogues (only \"off\"; they need the cuda backend)",
                  ctx->ops->name);
    ctx->epilogues = epilogues;
    return CUMLP_SUCCESS;
}

int cumlp_context_epilogues(const cumlp_context *ctx) {
    return ctx ? ctx->epilogues : -1;
}

cumlp_status cumlp_context_set_graphs(cumlp_context *ctx, int on) {
    CUMLP_FAIL_IF(!ctx, NULL, CUMLP_ERROR_INVALID_VALUE, "ctx is NULL");
    CUMLP_FAIL_IF(on && !ctx->ops->graph_begin, ctx, CUMLP_ERROR_NOT_SUPPORTED,
                  "the %s backend has no CUDA graphs (only 0; they need the cuda backend)",
                  ctx->ops->name);
    ctx->graphs = on != 0;
    return CUMLP_SUCCESS;
}

int cumlp_context_graphs(const cumlp_context *ctx) {
    return ctx ? ctx->graphs : -1;
}

cumlp_status cumlp_context_set_math_mode(cumlp_context *ctx, int math_mode) {
    return cumlp_context_set_precision(ctx, math_mode);
}

cumlp_status cumlp_context_describe(const cumlp_context *ctx, char *buf, size_t buf_size) {
    CUMLP_FAIL_IF(!ctx, NULL, CUMLP_ERROR_INVALID_VALUE, "ctx is NULL");
    CUMLP_FAIL_IF(!buf || buf_size == 0, ctx, CUMLP_ERROR_INVALID_VALUE,
                  "buf is NULL or buf_size is 0");
    cumlp_status st = ctx->ops->describe(ctx, buf, buf_size);
    if (st == CUMLP_SUCCESS && ctx->fallback_note[0]) {
        size_t used = strlen(buf); /* buf holds a string only when describe succeeded */
        snprintf(buf + used, buf_size - used, " (%s)", ctx->fallback_note);
    }
    return st;
}

cumlp_status cumlp_context_memory(const cumlp_context *ctx, int64_t *in_use_bytes,
                                  int64_t *peak_bytes) {
    CUMLP_FAIL_IF(!ctx, NULL, CUMLP_ERROR_INVALID_VALUE, "ctx is NULL");
    if (in_use_bytes) *in_use_bytes = (int64_t)ctx->memory.in_use;
    if (peak_bytes) *peak_bytes = (int64_t)ctx->memory.peak;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_context_reset_peak_memory(cumlp_context *ctx) {
    CUMLP_FAIL_IF(!ctx, NULL, CUMLP_ERROR_INVALID_VALUE, "ctx is NULL");
    ctx->memory.peak = ctx->memory.in_use;
    return CUMLP_SUCCESS;
}

/* Backends left out of this build (see CMakeLists.txt) are reported as absent. */
#ifndef CUMLP_HAVE_CPU_BACKEND
const cumlp_backend_ops *cumlp__backend_cpu(void) {
    return NULL;
}
#endif
#ifndef CUMLP_HAVE_CUDA_BACKEND
const cumlp_backend_ops *cumlp__backend_cuda(void) {
    return NULL;
}
#endif
