/*
 * cpu.c - the fast CPU backend: fp32 storage, CBLAS GEMMs, OpenMP elementwise passes.
 *
 * Every elementwise pass is one loop over memory that the compiler can vectorize: the activation
 * (or optimizer rule) is picked by a switch outside the loop, and the per-element formula is the
 * shared `_f` function of kernels/cumlp_math.h inlined with a constant selector.
 *
 * Determinism: reductions never use atomics on floats. Each thread owns a fixed, contiguous range
 * of columns (or elements), accumulates in double into its own slot of a scratch buffer, and the
 * slots are combined in thread order. For a given thread count the results are bit-identical from
 * run to run.
 */
#include "internal.h"
#include "rng.h"

#include "cumlp_math.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define CPU_INLINE static inline __attribute__((always_inline))
#else
#define CPU_INLINE static inline
#endif

/* Loops shorter than this run on one thread: waking the team costs more than the work. */
#define PARALLEL_MIN_ELEMENTS 16384

typedef struct cpu_state {
    int threads;     /* OpenMP threads of every parallel region, and BLAS threads */
    double *scratch; /* per-thread partial sums of reductions: threads x scratch_rows */
    size_t scratch_count;
} cpu_state;

static cpu_state *state_of(const cumlp_context *ctx) {
    return (cpu_state *)ctx->backend_state;
}

static int threads_of(const cumlp_context *ctx) {
    return state_of(ctx)->threads;
}

/* The BLAS thread count is process-wide: set it before each GEMM when another context (or the
 * application) changed it. */
static void use_blas_threads(int threads) {
#ifdef CUMLP_HAVE_OPENBLAS_THREADS
    if (openblas_get_num_threads() != threads) openblas_set_num_threads(threads);
#else
    (void)threads;
#endif
}

static cumlp_status cpu_init(cumlp_context *ctx, const cumlp_context_options *options) {
    cpu_state *s = calloc(1, sizeof *s);
    if (!s)
        return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED,
                            "cpu backend: out of host memory for the context");
    s->threads = options->num_threads > 0 ? options->num_threads : omp_get_num_procs();
    if (s->threads < 1) s->threads = 1;
    ctx->backend_state = s;
    use_blas_threads(s->threads);
    return CUMLP_SUCCESS;
}

static void cpu_shutdown(cumlp_context *ctx) {
    cpu_state *s = state_of(ctx);
    if (!s) return;
    free(s->scratch);
    free(s);
    ctx->backend_state = NULL;
}

static cumlp_status cpu_describe(const cumlp_context *ctx, char *buf, size_t buf_size) {
#ifdef CUMLP_HAVE_OPENBLAS_THREADS
    const char *blas = openblas_get_config();
#else
    const char *blas = "CBLAS";
#endif
    snprintf(buf, buf_size, "cpu backend: host, fp32, %d threads, %s", threads_of(ctx), blas);
    return CUMLP_SUCCESS;
}

static cumlp_status cpu_synchronize(cumlp_context *ctx) {
    (void)ctx;
    return CUMLP_SUCCESS;
}

/* Scratch space for `count` doubles, kept between calls. */
static cumlp_status scratch(cumlp_context *ctx, size_t count, double **out) {
    cpu_state *s = state_of(ctx);
    if (count > s->scratch_count) {
        double *grown = realloc(s->scratch, count * sizeof *grown);
        if (!grown)
            return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED,
                                "cpu backend: out of host memory for %zu reduction slots", count);
        s->scratch = grown;
        s->scratch_count = count;
    }
    *out = s->scratch;
    return CUMLP_SUCCESS;
}

/* ---- memory -------------------------------------------------------------------------------- */

static cumlp_status cpu_alloc(cumlp_context *ctx, size_t count, void **buffer) {
    return cumlp__host_buffer_alloc(ctx, count, sizeof(float), buffer);
}

static cumlp_status cpu_upload(cumlp_context *ctx, void *dst, const float *src, size_t count) {
    (void)ctx;
    memcpy(dst, src, count * sizeof(float));
    return CUMLP_SUCCESS;
}

static cumlp_status cpu_download(cumlp_context *ctx, const void *src, float *dst, size_t count) {
    (void)ctx;
    memcpy(dst, src, count * sizeof(float));
    return CUMLP_SUCCESS;
}

static cumlp_status cpu_fill(cumlp_context *ctx, void *dst, size_t count, float value) {
    float *d = dst;
#pragma omp parallel for simd schedule(static)                                                     \
    num_threads(threads_of(ctx)) if (count >= PARALLEL_MIN_ELEMENTS)
    for (size_t i = 0; i < count; i++)
        d[i] = value;
    return CUMLP_SUCCESS;
}

static cumlp_status cpu_copy(cumlp_context *ctx, void *dst, const void *src, size_t count) {
    (void)ctx;
    memcpy(dst, src, count * sizeof(float));
    return CUMLP_SUCCESS;
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

static cumlp_status cpu_gemm(cumlp_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                             double alpha, const void *A, int lda, const void *B, int ldb,
                             double beta, void *C, int ldc, int ab_storage, int c_storage) {
    cumlp_status st = cumlp__require_native(ctx, "gemm", ab_storage | c_storage);
    if (st != CUMLP_SUCCESS) return st;
    use_blas_threads(threads_of(ctx));
    /* OpenBLAS (like the reference BLAS) overwrites C without reading it when beta == 0. */
    cblas_sgemm(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, (float)alpha, A, lda, B, ldb,
                (float)beta, C, ldc);
    return CUMLP_SUCCESS;
}

/* ---- thread partitions ---------------------------------------------------------------------- */

/* The contiguous range [*begin, *end) of n items that thread t of `threads` owns. */
static void thread_range(int t, int threads, int n, int *begin, int *end) {
    int base = n / threads, extra = n % threads;
    *begin = t * base + (t < extra ? t : extra);
    *end = *begin + base + (t < extra ? 1 : 0);
}

/* Threads worth using for a rows x cols pass split by columns. */
static int column_team(const cumlp_context *ctx, int rows, int cols) {
    int threads = threads_of(ctx);
    if ((size_t)rows * (size_t)cols < PARALLEL_MIN_ELEMENTS) return 1;
    return cols < threads ? cols : threads;
}

/* db[i] = scale * sum over the team's partials[t * rows + i], in thread order. */
static void combine_partials(const double *partials, int team, int rows, float *db, double scale) {
    for (int i = 0; i < rows; i++) {
        double sum = 0;
        for (int t = 0; t < team; t++)
            sum += partials[(size_t)t * rows + i];
        db[i] = (float)(scale * sum);
    }
}

/* ---- per-activation dispatch ----------------------------------------------------------------- */

/* OpenMP outlines a parallel region before inlining, so an activation passed into the region is
 * no compile-time constant there and a switch inside the element loop would stop it from
 * vectorizing. Instead, each region calls a dispatcher per column (or chunk) that switches once
 * and runs an always-inlined loop in which the activation is a constant. */
#define DISPATCH_ACTIVATION(activation, call)                                                      \
    switch (activation) {                                                                          \
    case CUMLP_ACT_SIGMOID:                                                                        \
        call(CUMLP_ACT_SIGMOID);                                                                   \
        break;                                                                                     \
    case CUMLP_ACT_TANH:                                                                           \
        call(CUMLP_ACT_TANH);                                                                      \
        break;                                                                                     \
    case CUMLP_ACT_RELU:                                                                           \
        call(CUMLP_ACT_RELU);                                                                      \
        break;                                                                                     \
    case CUMLP_ACT_LEAKY_RELU:                                                                     \
        call(CUMLP_ACT_LEAKY_RELU);                                                                \
        break;                                                                                     \
    case CUMLP_ACT_GELU:                                                                           \
        call(CUMLP_ACT_GELU);                                                                      \
        break;                                                                                     \
    default:                                                                                       \
        call(CUMLP_ACT_IDENTITY);                                                                  \
        break;                                                                                     \
    }

/* ---- forward elementwise ------------------------------------------------------------------- */

/* a = f(p + b) over one column, with z = p + b stored when z != NULL. */
CPU_INLINE void activate_loop(int activation, float slope, int rows, const float *p, const float *b,
                              float *z, float *a) {
    if (z) {
#pragma omp simd
        for (int i = 0; i < rows; i++) {
            float v = p[i] + b[i];
            z[i] = v;
            a[i] = cumlp_activate_f(activation, slope, v);
        }
    } else {
#pragma omp simd
        for (int i = 0; i < rows; i++)
            a[i] = cumlp_activate_f(activation, slope, p[i] + b[i]);
    }
}

/* Softmax of one column of logits p + b; the normalizer is summed in double. */
static void softmax_column(int rows, const float *p, const float *b, float *z, float *a) {
    float *logits = z ? z : a;
    float max = -INFINITY;
    for (int i = 0; i < rows; i++) {
        logits[i] = p[i] + b[i];
        if (logits[i] > max) max = logits[i];
    }
    double sum = 0;
    for (int i = 0; i < rows; i++) {
        a[i] = expf(logits[i] - max);
        sum += a[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < rows; i++)
        a[i] *= inv;
}

static void activate_column(int activation, float slope, int rows, const float *p, const float *b,
                            float *z, float *a) {
    if (activation == CUMLP_ACT_SOFTMAX) {
        softmax_column(rows, p, b, z, a);
        return;
    }
#define ACTIVATE(act) activate_loop(act, slope, rows, p, b, z, a)
    DISPATCH_ACTIVATION(activation, ACTIVATE)
#undef ACTIVATE
}

static cumlp_status cpu_bias_activation(cumlp_context *ctx, int storage, int activation,
                                        double slope, int rows, int cols, const void *P,
                                        const void *b, void *z_out, void *a_out) {
    cumlp_status st = cumlp__require_native(ctx, "bias_activation", storage);
    if (st != CUMLP_SUCCESS) return st;
    const float *p = P, *bias = b;
    float *z = z_out, *a = a_out, s = (float)slope;
#pragma omp parallel for schedule(static) num_threads(column_team(ctx, rows, cols))
    for (int j = 0; j < cols; j++) {
        size_t col = (size_t)j * rows;
        activate_column(activation, s, rows, p + col, bias, z ? z + col : NULL, a + col);
    }
    return CUMLP_SUCCESS;
}

/* ---- backward elementwise ------------------------------------------------------------------ */

/* delta = g .* f'(.) over one column, added into the thread's bias-gradient partial. f' is taken
 * from z for GELU and from a otherwise (backend.h: the other pointer may be NULL). */
CPU_INLINE void backward_loop(int activation, float slope, int rows, const float *g, const float *z,
                              const float *a, float *delta, double *partial) {
    if (activation == CUMLP_ACT_GELU) {
#pragma omp simd
        for (int i = 0; i < rows; i++) {
            float d = g[i] * cumlp_activate_deriv_f(activation, slope, z[i], 0.0f);
            delta[i] = d;
            partial[i] += d;
        }
    } else if (activation == CUMLP_ACT_IDENTITY) {
#pragma omp simd
        for (int i = 0; i < rows; i++) {
            delta[i] = g[i];
            partial[i] += g[i];
        }
    } else {
#pragma omp simd
        for (int i = 0; i < rows; i++) {
            float d = g[i] * cumlp_activate_deriv_f(activation, slope, 0.0f, a[i]);
            delta[i] = d;
            partial[i] += d;
        }
    }
}

static void backward_column(int activation, float slope, int rows, const float *g, const float *z,
                            const float *a, float *delta, double *partial) {
#define BACKWARD(act) backward_loop(act, slope, rows, g, z, a, delta, partial)
    DISPATCH_ACTIVATION(activation, BACKWARD)
#undef BACKWARD
}

static cumlp_status cpu_activation_backward(cumlp_context *ctx, int storage, int activation,
                                            double slope, int rows, int cols, const void *G,
                                            const void *Z, const void *A, void *delta, void *db,
                                            double db_scale) {
    int team = column_team(ctx, rows, cols), used = 1;
    double *partials = NULL;
    cumlp_status st = cumlp__require_native(ctx, "activation_backward", storage);
    if (st == CUMLP_SUCCESS) st = scratch(ctx, (size_t)team * rows, &partials);
    if (st != CUMLP_SUCCESS) return st;
    const float *g = G, *z = Z, *a = A;
    float *d = delta, s = (float)slope;
#pragma omp parallel num_threads(team)
    {
        /* The runtime may grant fewer threads than asked: partition by the team that runs. */
        int t = omp_get_thread_num(), threads = omp_get_num_threads(), begin, end;
        if (t == 0) used = threads;
        thread_range(t, threads, cols, &begin, &end);
        double *partial = partials + (size_t)t * rows;
        memset(partial, 0, (size_t)rows * sizeof *partial);
        for (int j = begin; j < end; j++) {
            size_t col = (size_t)j * rows;
            backward_column(activation, s, rows, g + col, z ? z + col : NULL, a ? a + col : NULL,
                            d + col, partial);
        }
    }
    combine_partials(partials, used, rows, db, db_scale);
    return CUMLP_SUCCESS;
}

/* ---- loss and output delta ----------------------------------------------------------------- */

/* Per-sample loss of one column, accumulated in double. */
static double column_loss(int loss, int rows, const float *z, const float *a, const float *y) {
    double e = 0;
    if (loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY) {
        /* lse(z) sum(y) - y.z, lse = max + log sum exp(z - max) */
        float max = z[0];
        for (int i = 1; i < rows; i++)
            if (z[i] > max) max = z[i];
        double sum = 0, y_sum = 0, yz = 0;
        for (int i = 0; i < rows; i++) {
            sum += expf(z[i] - max);
            y_sum += y[i];
            yz += (double)y[i] * z[i];
        }
        e = ((double)max + log(sum)) * y_sum - yz;
    } else if (loss == CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY) {
        /* The terms in double from the fp32 inputs, as the reference and the cuda kernel compute
         * them: in fp32, softplus(z) - y z loses every digit of a confident prediction's term
         * (z = 20, y = 1 gives 0 instead of 2e-9). */
        for (int i = 0; i < rows; i++)
            e += cumlp_bce_term_d(z[i], y[i]);
    } else {
        for (int i = 0; i < rows; i++)
            e += cumlp_squared_error_term_d(a[i], y[i]);
    }
    return e;
}

/* Squared error's delta (a - y) f' over one column (f' from z for GELU, else from a). */
CPU_INLINE void squared_error_loop(int activation, float slope, int rows, const float *z,
                                   const float *a, const float *y, float *d) {
    if (activation == CUMLP_ACT_GELU) {
#pragma omp simd
        for (int i = 0; i < rows; i++)
            d[i] = (a[i] - y[i]) * cumlp_activate_deriv_f(activation, slope, z[i], 0.0f);
    } else {
#pragma omp simd
        for (int i = 0; i < rows; i++)
            d[i] = (a[i] - y[i]) * cumlp_activate_deriv_f(activation, slope, 0.0f, a[i]);
    }
}

/* delta of one column: a - y (the cross-entropy losses) or (a - y) f' (squared error). */
static void output_delta_column(int loss, int activation, float slope, int rows, const float *z,
                                const float *a, const float *y, float *d) {
    if (loss != CUMLP_LOSS_SQUARED_ERROR) {
#pragma omp simd
        for (int i = 0; i < rows; i++)
            d[i] = a[i] - y[i];
        return;
    }
#define SQUARED_ERROR(act) squared_error_loop(act, slope, rows, z, a, y, d)
    DISPATCH_ACTIVATION(activation, SQUARED_ERROR)
#undef SQUARED_ERROR
}

/* Everything the output pass needs, so the per-thread worker takes one pointer. */
typedef struct loss_pass {
    int loss, activation;
    float slope;
    float delta_scale; /* FP16's loss scale: exact in fp32 (a power of two by default); 1 here */
    int rows, cols;
    const float *z, *a, *y;
    float *delta;
    double *partials;    /* team x rows, or NULL without db */
    double *loss_totals; /* team, or NULL without loss_sum */
} loss_pass;

/* Thread t's columns [begin, end): loss, delta and the bias-gradient partial. */
static void loss_delta_range(const loss_pass *lp, int t, int begin, int end) {
    int rows = lp->rows;
    double total = 0, *partial = lp->partials ? lp->partials + (size_t)t * rows : NULL;
    if (partial) memset(partial, 0, (size_t)rows * sizeof *partial);
    for (int j = begin; j < end; j++) {
        size_t col = (size_t)j * rows;
        const float *z = lp->z ? lp->z + col : NULL;
        /* The loss reads A before delta (which may alias A) overwrites it. */
        if (lp->loss_totals) total += column_loss(lp->loss, rows, z, lp->a + col, lp->y + col);
        output_delta_column(lp->loss, lp->activation, lp->slope, rows, z, lp->a + col, lp->y + col,
                            lp->delta + col);
        if (lp->delta_scale != 1.0f) {
            float *d = lp->delta + col;
#pragma omp simd
            for (int i = 0; i < rows; i++)
                d[i] *= lp->delta_scale;
        }
        if (partial) {
            const float *d = lp->delta + col;
#pragma omp simd
            for (int i = 0; i < rows; i++)
                partial[i] += d[i];
        }
    }
    if (lp->loss_totals) lp->loss_totals[t] = total;
}

static cumlp_status cpu_loss_delta(cumlp_context *ctx, int loss, int activation, double slope,
                                   int rows, int cols, const void *Z, const void *A, const void *Y,
                                   void *delta, int delta_storage, void *db, double db_scale,
                                   double delta_scale, double *loss_sum) {
    int team = column_team(ctx, rows, cols), used = 1;
    double *space = NULL;
    /* team x rows partial bias sums, then team loss totals */
    cumlp_status st = cumlp__require_native(ctx, "loss_delta", delta_storage);
    if (st == CUMLP_SUCCESS) st = scratch(ctx, (size_t)team * rows + (size_t)team, &space);
    if (st != CUMLP_SUCCESS) return st;
    loss_pass lp = {.loss = loss,
                    .activation = activation,
                    .slope = (float)slope,
                    .delta_scale = (float)delta_scale,
                    .rows = rows,
                    .cols = cols,
                    .z = Z,
                    .a = A,
                    .y = Y,
                    .delta = delta,
                    .partials = db ? space : NULL,
                    .loss_totals = loss_sum ? space + (size_t)team * rows : NULL};
#pragma omp parallel num_threads(team)
    {
        /* The runtime may grant fewer threads than asked: partition by the team that runs. */
        int t = omp_get_thread_num(), threads = omp_get_num_threads(), begin, end;
        if (t == 0) used = threads;
        thread_range(t, threads, cols, &begin, &end);
        loss_delta_range(&lp, t, begin, end);
    }
    if (db) combine_partials(lp.partials, used, rows, db, db_scale);
    if (loss_sum) {
        double total = 0;
        for (int t = 0; t < used; t++)
            total += lp.loss_totals[t];
        *loss_sum = total;
    }
    return CUMLP_SUCCESS;
}

/* ---- optimizer ----------------------------------------------------------------------------- */

/* One update loop over n elements with a constant rule. `uses` (a constant after inlining) says
 * which state arrays the rule keeps (bit k: s[k]); the others are a local zero per element, so
 * that neither their loads nor any test of them stays in the vectorized loop. */
CPU_INLINE void update_loop(int type, unsigned uses, const cumlp_update_params_f *q, size_t n,
                            float *w, const float *g, float *const s[CUMLP_OPTIMIZER_MAX_STATES]) {
    float *s0 = s[0], *s1 = s[1], *s2 = s[2];
    const cumlp_update_params_f p = *q; /* a local: no store to w or s can change it */
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float z0 = 0, z1 = 0, z2 = 0;
        cumlp_optimizer_update_f(type, &p, &w[i], g[i], uses & 1u ? &s0[i] : &z0,
                                 uses & 2u ? &s1[i] : &z1, uses & 4u ? &s2[i] : &z2);
    }
}

/* The loop of each rule, with the state arrays it uses (s[k] + begin, or NULL). */
static void update_chunk(int type, const cumlp_update_params_f *q, size_t n, float *w,
                         const float *g, float *const s[CUMLP_OPTIMIZER_MAX_STATES]) {
#define LOOP(rule, uses) update_loop(rule, uses, q, n, w, g, s)
    switch (type) {
    case CUMLP_OPT_MOMENTUM:
        LOOP(CUMLP_OPT_MOMENTUM, 1u);
        break;
    case CUMLP_OPT_NESTEROV:
        LOOP(CUMLP_OPT_NESTEROV, 1u);
        break;
    case CUMLP_OPT_ADAM:
        LOOP(CUMLP_OPT_ADAM, 3u);
        break;
    case CUMLP_OPT_ADAMW:
        LOOP(CUMLP_OPT_ADAMW, 3u);
        break;
    case CUMLP_OPT_ADAMAX:
        LOOP(CUMLP_OPT_ADAMAX, 3u);
        break;
    case CUMLP_OPT_NADAM:
        LOOP(CUMLP_OPT_NADAM, 3u);
        break;
    case CUMLP_OPT_RMSPROP: /* the momentum buffer and the gradients' average are optional */
        if (s[1] && s[2])
            LOOP(CUMLP_OPT_RMSPROP, 7u);
        else if (s[1])
            LOOP(CUMLP_OPT_RMSPROP, 3u);
        else if (s[2])
            LOOP(CUMLP_OPT_RMSPROP, 5u);
        else
            LOOP(CUMLP_OPT_RMSPROP, 1u);
        break;
    case CUMLP_OPT_ADAGRAD:
        LOOP(CUMLP_OPT_ADAGRAD, 1u);
        break;
    case CUMLP_OPT_ADADELTA:
        LOOP(CUMLP_OPT_ADADELTA, 3u);
        break;
    default:
        LOOP(CUMLP_OPT_SGD, 0u);
        break;
    }
#undef LOOP
}

static cumlp_status cpu_optimizer_step(cumlp_context *ctx, const cumlp_step_params *p, size_t count,
                                       void *param, const void *grad,
                                       void *const state[CUMLP_OPTIMIZER_MAX_STATES],
                                       void *param_copy, int copy_storage) {
    cumlp_status st = cumlp__require_native(ctx, "optimizer_step",
                                            param_copy ? copy_storage : CUMLP_STORAGE_NATIVE);
    if (st != CUMLP_SUCCESS) return st;
    const cumlp_update_params_f q = cumlp__update_params_f(p);
    float *w = param;
    const float *g = grad;
    int threads = count >= PARALLEL_MIN_ELEMENTS ? threads_of(ctx) : 1;
#pragma omp parallel num_threads(threads)
    {
        /* Contiguous chunks, one per thread; each element is independent of the others. */
        size_t t = (size_t)omp_get_thread_num(), n = (size_t)omp_get_num_threads();
        size_t begin = count / n * t + (t < count % n ? t : count % n);
        size_t len = count / n + (t < count % n ? 1 : 0);
        float *s[CUMLP_OPTIMIZER_MAX_STATES];
        for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
            s[k] = state[k] ? (float *)state[k] + begin : NULL;
        update_chunk(p->type, &q, len, w + begin, g + begin, s);
    }
    return CUMLP_SUCCESS;
}

/* ---- random numbers, helpers --------------------------------------------------------------- */

static cumlp_status cpu_random(cumlp_context *ctx, int distribution, uint64_t seed, size_t count,
                               void *out) {
    (void)ctx;
    cumlp__philox_fill(seed, distribution == CUMLP_DIST_NORMAL, count, out);
    return CUMLP_SUCCESS;
}

static cumlp_status cpu_scale_shift(cumlp_context *ctx, void *x, size_t count, double scale,
                                    double shift) {
    float *v = x;
#pragma omp parallel for schedule(static)                                                          \
    num_threads(threads_of(ctx)) if (count >= PARALLEL_MIN_ELEMENTS)
    for (size_t i = 0; i < count; i++)
        v[i] = (float)fma((double)v[i], scale, shift);
    return CUMLP_SUCCESS;
}

/* The sum of squares of x[0..count), in double: each thread sums a contiguous range (vectorized),
 * and the partials are added in thread order. */
static cumlp_status sum_squares(cumlp_context *ctx, const float *x, size_t count, double *out) {
    int team = count >= PARALLEL_MIN_ELEMENTS ? threads_of(ctx) : 1, used = 1;
    double *partials = NULL;
    cumlp_status st = scratch(ctx, (size_t)team, &partials);
    if (st != CUMLP_SUCCESS) return st;
#pragma omp parallel num_threads(team)
    {
        size_t t = (size_t)omp_get_thread_num(), n = (size_t)omp_get_num_threads();
        size_t begin = count / n * t + (t < count % n ? t : count % n);
        size_t end = begin + count / n + (t < count % n ? 1 : 0);
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (size_t i = begin; i < end; i++)
            sum += (double)x[i] * (double)x[i];
        partials[t] = sum;
        if (t == 0) used = (int)n;
    }
    double total = 0;
    for (int t = 0; t < used; t++)
        total += partials[t];
    *out = total;
    return CUMLP_SUCCESS;
}

static cumlp_status cpu_check_finite(cumlp_context *ctx, const void *x, size_t count,
                                     int *all_finite, double *sum_squares_out) {
    if (sum_squares_out) {
        cumlp_status st = sum_squares(ctx, x, count, sum_squares_out);
        if (st == CUMLP_SUCCESS) *all_finite = isfinite(*sum_squares_out) != 0;
        return st;
    }
    const float *v = x;
    int bad = 0;
    /* x - x is 0 for every finite x and NaN for NaN and +-Inf; this form vectorizes. */
#pragma omp parallel for simd schedule(static) reduction(|                                         \
                                                         : bad)                                    \
    num_threads(threads_of(ctx)) if (count >= PARALLEL_MIN_ELEMENTS)
    for (size_t i = 0; i < count; i++)
        bad |= !(v[i] - v[i] == 0.0f);
    *all_finite = !bad;
    return CUMLP_SUCCESS;
}

static const cumlp_backend_ops cpu_ops = {
    .name = "cpu",
    .elem_size = sizeof(float),
    .precisions = 1u << CUMLP_PRECISION_FP32 | 1u << CUMLP_PRECISION_TF32,
    .init = cpu_init,
    .shutdown = cpu_shutdown,
    .describe = cpu_describe,
    .synchronize = cpu_synchronize,
    .alloc = cpu_alloc,
    .free = cumlp__host_buffer_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .fill = cpu_fill,
    .copy = cpu_copy,
    .gemm = cpu_gemm,
    .bias_activation = cpu_bias_activation,
    .loss_delta = cpu_loss_delta,
    .activation_backward = cpu_activation_backward,
    .optimizer_step = cpu_optimizer_step,
    .random = cpu_random,
    .scale_shift = cpu_scale_shift,
    .check_finite = cpu_check_finite,
};

const cumlp_backend_ops *cumlp__backend_cpu(void) {
    return &cpu_ops;
}
