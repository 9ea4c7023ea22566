/*
 * reference.c - the reference backend: the oracle every other backend is tested against.
 *
 * Clarity first: straight loops, no BLAS, no threads. Everything is stored and computed in double
 * precision (uploads widen fp32 to double, downloads round back), so its results are the fp32
 * backends' results without their rounding errors, and the gradient check can take finite
 * differences on it.
 */
#include "internal.h"
#include "rng.h"

#include "cumlp_math.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef double real;

static cumlp_status ref_init(cumlp_context *ctx, const cumlp_context_options *options) {
    (void)options;
    ctx->backend_state = NULL;
    return CUMLP_SUCCESS;
}

static void ref_shutdown(cumlp_context *ctx) {
    (void)ctx;
}

static cumlp_status ref_describe(const cumlp_context *ctx, char *buf, size_t buf_size) {
    (void)ctx;
    snprintf(buf, buf_size, "reference backend: host, double precision, 1 thread");
    return CUMLP_SUCCESS;
}

static cumlp_status ref_synchronize(cumlp_context *ctx) {
    (void)ctx;
    return CUMLP_SUCCESS;
}

/* ---- memory -------------------------------------------------------------------------------- */

/* The memory ops of the backends whose buffers are host memory (this one's doubles and the cpu
 * backend's floats): 64-byte aligned (whole cache lines for BLAS panels and vector loops) and
 * recorded in the context's memory table. */
cumlp_status cumlp__host_buffer_alloc(cumlp_context *ctx, size_t count, size_t elem_size,
                                      void **buffer) {
    *buffer = NULL;
    if (count > (SIZE_MAX - 63) / elem_size)
        return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "%zu elements overflow size_t", count);
    /* aligned_alloc wants a multiple of the alignment; the table records what was asked for. */
    size_t bytes = (count * elem_size + 63) / 64 * 64;
    if (bytes == 0) bytes = 64;
    *buffer = aligned_alloc(64, bytes);
    if (*buffer && cumlp__memtrack_add(&ctx->memory, *buffer, count * elem_size) != 0) {
        free(*buffer);
        *buffer = NULL;
    }
    if (!*buffer)
        return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED,
                            "out of host memory allocating %zu elements of %zu bytes", count,
                            elem_size);
    return CUMLP_SUCCESS;
}

void cumlp__host_buffer_free(cumlp_context *ctx, void *buffer) {
    cumlp__memtrack_remove(&ctx->memory, buffer);
    free(buffer);
}

static cumlp_status ref_alloc(cumlp_context *ctx, size_t count, void **buffer) {
    return cumlp__host_buffer_alloc(ctx, count, sizeof(real), buffer);
}

static cumlp_status ref_upload(cumlp_context *ctx, void *dst, const float *src, size_t count) {
    (void)ctx;
    real *d = dst;
    for (size_t i = 0; i < count; i++)
        d[i] = src[i];
    return CUMLP_SUCCESS;
}

static cumlp_status ref_download(cumlp_context *ctx, const void *src, float *dst, size_t count) {
    (void)ctx;
    const real *s = src;
    for (size_t i = 0; i < count; i++)
        dst[i] = (float)s[i];
    return CUMLP_SUCCESS;
}

static cumlp_status ref_upload_f64(cumlp_context *ctx, void *dst, const double *src, size_t count) {
    (void)ctx;
    memcpy(dst, src, count * sizeof(real));
    return CUMLP_SUCCESS;
}

static cumlp_status ref_download_f64(cumlp_context *ctx, const void *src, double *dst,
                                     size_t count) {
    (void)ctx;
    memcpy(dst, src, count * sizeof(real));
    return CUMLP_SUCCESS;
}

static cumlp_status ref_fill(cumlp_context *ctx, void *dst, size_t count, float value) {
    (void)ctx;
    real *d = dst;
    for (size_t i = 0; i < count; i++)
        d[i] = value;
    return CUMLP_SUCCESS;
}

static cumlp_status ref_copy(cumlp_context *ctx, void *dst, const void *src, size_t count) {
    (void)ctx;
    memcpy(dst, src, count * sizeof(real));
    return CUMLP_SUCCESS;
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

/* Element (i, j) of op(X) for a column-major X with leading dimension ld. */
static real op_at(const real *X, int ld, int trans, int i, int j) {
    return trans ? X[j + (size_t)i * ld] : X[i + (size_t)j * ld];
}

static cumlp_status ref_gemm(cumlp_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                             double alpha, const void *A, int lda, const void *B, int ldb,
                             double beta, void *C, int ldc, int ab_storage, int c_storage) {
    cumlp_status st = cumlp__require_native(ctx, "gemm", ab_storage | c_storage);
    if (st != CUMLP_SUCCESS) return st;
    real *c = C;
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
            real sum = 0;
            for (int p = 0; p < k; p++)
                sum += op_at(A, lda, trans_a, i, p) * op_at(B, ldb, trans_b, p, j);
            real *cij = &c[i + (size_t)j * ldc];
            *cij = beta == 0 ? alpha * sum : alpha * sum + beta * *cij;
        }
    }
    return CUMLP_SUCCESS;
}

/* ---- forward elementwise ------------------------------------------------------------------- */

/* a[0..rows) = softmax(z[0..rows)), shifting by the maximum so that exp never overflows. */
static void softmax_column(const real *z, real *a, int rows) {
    real max = z[0];
    for (int i = 1; i < rows; i++)
        if (z[i] > max) max = z[i];
    real sum = 0;
    for (int i = 0; i < rows; i++)
        sum += exp(z[i] - max);
    for (int i = 0; i < rows; i++)
        a[i] = exp(z[i] - max) / sum;
}

static cumlp_status ref_bias_activation(cumlp_context *ctx, int storage, int activation,
                                        double slope, int rows, int cols, const void *P,
                                        const void *b, void *z_out, void *a_out) {
    cumlp_status st = cumlp__require_native(ctx, "bias_activation", storage);
    if (st != CUMLP_SUCCESS) return st;
    const real *p = P, *bias = b;
    real *zo = z_out, *ao = a_out;
    for (int j = 0; j < cols; j++) {
        size_t col = (size_t)j * rows;
        /* Z = P + b first (in place or into z_out), then A from Z. */
        real *z = zo ? zo + col : ao + col;
        for (int i = 0; i < rows; i++)
            z[i] = p[col + i] + bias[i];
        if (activation == CUMLP_ACT_SOFTMAX) {
            softmax_column(z, ao + col, rows);
        } else {
            for (int i = 0; i < rows; i++)
                ao[col + i] = cumlp_activate_d(activation, slope, z[i]);
        }
    }
    return CUMLP_SUCCESS;
}

/* ---- loss and backward elementwise --------------------------------------------------------- */

/* Loss of one sample (column) from its logits z (or outputs a) and targets y. */
static real column_loss(int loss, const real *z, const real *a, const real *y, int rows) {
    real e = 0;
    if (loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY) {
        /* -sum y_k (z_k - lse(z)) = lse(z) sum(y) - y.z, with lse = max + log sum exp(z - max) */
        real max = z[0];
        for (int i = 1; i < rows; i++)
            if (z[i] > max) max = z[i];
        real sum = 0, y_sum = 0, yz = 0;
        for (int i = 0; i < rows; i++) {
            sum += exp(z[i] - max);
            y_sum += y[i];
            yz += y[i] * z[i];
        }
        e = (max + log(sum)) * y_sum - yz;
    } else if (loss == CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY) {
        for (int i = 0; i < rows; i++)
            e += cumlp_bce_term_d(z[i], y[i]);
    } else {
        for (int i = 0; i < rows; i++)
            e += cumlp_squared_error_term_d(a[i], y[i]);
    }
    return e;
}

/* db[i] = scale * sum_j delta(i, j) */
static void bias_gradient(const real *delta, int rows, int cols, real *db, double scale) {
    for (int i = 0; i < rows; i++) {
        real sum = 0;
        for (int j = 0; j < cols; j++)
            sum += delta[i + (size_t)j * rows];
        db[i] = scale * sum;
    }
}

static cumlp_status ref_loss_delta(cumlp_context *ctx, int loss, int activation, double slope,
                                   int rows, int cols, const void *Z, const void *A, const void *Y,
                                   void *delta, int delta_storage, void *db, double db_scale,
                                   double delta_scale, double *loss_sum) {
    cumlp_status st = cumlp__require_native(ctx, "loss_delta", delta_storage);
    if (st != CUMLP_SUCCESS) return st;
    const real *z = Z, *a = A, *y = Y;
    real *d = delta;
    real total = 0;
    for (int j = 0; j < cols; j++) {
        size_t col = (size_t)j * rows;
        if (loss_sum) total += column_loss(loss, z ? z + col : NULL, a + col, y + col, rows);
        for (int i = 0; i < rows; i++) {
            size_t k = col + i;
            real diff = a[k] - y[k];
            /* softmax + CE and sigmoid + BCE: dE/dz = a - y; squared error: (a - y) f'(z) */
            d[k] = delta_scale *
                   (loss == CUMLP_LOSS_SQUARED_ERROR
                        ? diff * cumlp_activate_deriv_d(activation, slope, z ? z[k] : 0, a[k])
                        : diff);
        }
    }
    if (db) bias_gradient(d, rows, cols, db, db_scale);
    if (loss_sum) *loss_sum = total;
    return CUMLP_SUCCESS;
}

static cumlp_status ref_activation_backward(cumlp_context *ctx, int storage, int activation,
                                            double slope, int rows, int cols, const void *G,
                                            const void *Z, const void *A, void *delta, void *db,
                                            double db_scale) {
    cumlp_status st = cumlp__require_native(ctx, "activation_backward", storage);
    if (st != CUMLP_SUCCESS) return st;
    const real *g = G, *z = Z, *a = A;
    real *d = delta;
    size_t n = (size_t)rows * cols;
    for (size_t k = 0; k < n; k++)
        d[k] = g[k] * cumlp_activate_deriv_d(activation, slope, z ? z[k] : 0, a ? a[k] : 0);
    bias_gradient(d, rows, cols, db, db_scale);
    return CUMLP_SUCCESS;
}

/* ---- optimizer, random numbers, helpers ---------------------------------------------------- */

static cumlp_status ref_optimizer_step(cumlp_context *ctx, const cumlp_step_params *p, size_t count,
                                       void *param, const void *grad,
                                       void *const state[CUMLP_OPTIMIZER_MAX_STATES],
                                       void *param_copy, int copy_storage) {
    cumlp_status st = cumlp__require_native(ctx, "optimizer_step",
                                            param_copy ? copy_storage : CUMLP_STORAGE_NATIVE);
    if (st != CUMLP_SUCCESS) return st;
    real *w = param;
    const real *g = grad;
    const cumlp_update_params_d q = cumlp__update_params_d(p);
    real *s0 = state[0], *s1 = state[1], *s2 = state[2];
    for (size_t i = 0; i < count; i++) {
        real z0 = 0, z1 = 0, z2 = 0; /* in place of the arenas the rule does not keep */
        cumlp_optimizer_update_d(p->type, &q, &w[i], g[i], s0 ? &s0[i] : &z0, s1 ? &s1[i] : &z1,
                                 s2 ? &s2[i] : &z2);
    }
    return CUMLP_SUCCESS;
}

static cumlp_status ref_random(cumlp_context *ctx, int distribution, uint64_t seed, size_t count,
                               void *out) {
    real *o = out;
    for (size_t i = 0; i < count; i++)
        o[i] = cumlp__philox_draw(seed, distribution == CUMLP_DIST_NORMAL, i);
    (void)ctx;
    return CUMLP_SUCCESS;
}

static cumlp_status ref_scale_shift(cumlp_context *ctx, void *x, size_t count, double scale,
                                    double shift) {
    (void)ctx;
    real *v = x;
    for (size_t i = 0; i < count; i++)
        v[i] = (float)fma(v[i], scale, shift);
    return CUMLP_SUCCESS;
}

static cumlp_status ref_check_finite(cumlp_context *ctx, const void *x, size_t count,
                                     int *all_finite, double *sum_squares) {
    (void)ctx;
    const real *v = x;
    double sum = 0;
    *all_finite = 1;
    for (size_t i = 0; i < count; i++) {
        *all_finite &= isfinite(v[i]) != 0;
        sum += v[i] * v[i];
    }
    if (sum_squares) *sum_squares = sum;
    return CUMLP_SUCCESS;
}

static const cumlp_backend_ops reference_ops = {
    .name = "reference",
    .elem_size = sizeof(real),
    .precisions = 1u << CUMLP_PRECISION_FP32 | 1u << CUMLP_PRECISION_TF32,
    .init = ref_init,
    .shutdown = ref_shutdown,
    .describe = ref_describe,
    .synchronize = ref_synchronize,
    .alloc = ref_alloc,
    .free = cumlp__host_buffer_free,
    .upload = ref_upload,
    .download = ref_download,
    .fill = ref_fill,
    .copy = ref_copy,
    .gemm = ref_gemm,
    .bias_activation = ref_bias_activation,
    .loss_delta = ref_loss_delta,
    .activation_backward = ref_activation_backward,
    .optimizer_step = ref_optimizer_step,
    .random = ref_random,
    .scale_shift = ref_scale_shift,
    .check_finite = ref_check_finite,
    .upload_f64 = ref_upload_f64,
    .download_f64 = ref_download_f64,
};

const cumlp_backend_ops *cumlp__backend_reference(void) {
    return &reference_ops;
}
