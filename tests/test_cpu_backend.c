/* ctest-labels: unit */
/*
 * test_cpu_backend.c - the cpu backend against the reference backend: every op on random shapes
 * (1, odd sizes, sizes that are no multiple of a vector width, batches up to 1024) with outputs
 * poisoned with NaN before each run, whole training trajectories from the same seed, bit-identical
 * initial weights, and bit-identical results for repeated runs with the same thread count.
 */
#include "harness.h"
#include "internal.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OP_TOL         1e-5 /* fp32 op vs the double-precision reference (DESIGN.md) */
#define TRAJECTORY_TOL 1e-4 /* 50 training steps */
#define CPU_THREADS    2

static cumlp_context *cpu_ctx, *ref_ctx;
static test_rng rng = {20240611u};

/* ---- buffers that live on both backends ------------------------------------------------------ */

typedef struct twin {
    void *cpu, *ref;
    size_t n;
} twin;

static twin twin_new(size_t n) {
    twin t = {NULL, NULL, n};
    if (cpu_ctx->ops->alloc(cpu_ctx, n, &t.cpu) != CUMLP_SUCCESS ||
        ref_ctx->ops->alloc(ref_ctx, n, &t.ref) != CUMLP_SUCCESS) {
        fprintf(stderr, "test: backend alloc of %zu elements failed\n", n);
        abort();
    }
    return t;
}

static void twin_upload(twin t, const float *host) {
    CHECK_OK(cpu_ctx->ops->upload(cpu_ctx, t.cpu, host, t.n));
    CHECK_OK(ref_ctx->ops->upload(ref_ctx, t.ref, host, t.n));
}

/* A twin holding uniform values in [lo, hi). */
static twin twin_random(size_t n, double lo, double hi) {
    twin t = twin_new(n);
    float *host = test_alloc_floats(n);
    test_fill_uniform(&rng, host, n, lo, hi);
    twin_upload(t, host);
    free(host);
    return t;
}

/* Copies the reference's contents (rounded to fp32) into the cpu side, so both see one input. */
static void twin_sync_from_ref(twin t) {
    float *host = test_alloc_floats(t.n);
    CHECK_OK(ref_ctx->ops->download(ref_ctx, t.ref, host, t.n));
    twin_upload(t, host);
    free(host);
}

static void twin_poison(twin t) {
    CHECK_OK(cpu_ctx->ops->fill(cpu_ctx, t.cpu, t.n, NAN));
    CHECK_OK(ref_ctx->ops->fill(ref_ctx, t.ref, t.n, NAN));
}

static void twin_free(twin t) {
    cpu_ctx->ops->free(cpu_ctx, t.cpu);
    ref_ctx->ops->free(ref_ctx, t.ref);
}

static void twin_download(twin t, float *cpu, float *ref) {
    CHECK_OK(cpu_ctx->ops->download(cpu_ctx, t.cpu, cpu, t.n));
    CHECK_OK(ref_ctx->ops->download(ref_ctx, t.ref, ref, t.n));
}

/* max |c - r| / max(|r|, scale_i, floor); a NaN or Inf on either side gives INFINITY. floor is
 * 1e-3 of the largest |r|: entries a thousand times smaller than the tensor's largest are judged
 * on the tensor's scale (the convention of cumlp_gradient_check). scale may be NULL. */
static double rel_error(const float *c, const float *r, const double *scale, size_t n) {
    double largest = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        largest = fmax(largest, fabs((double)r[i]));
    double floor = fmax(1e-3 * largest, 1e-30);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(c[i]) || !isfinite(r[i])) return INFINITY;
        double denom = fmax(fabs((double)r[i]), floor);
        if (scale) denom = fmax(denom, scale[i]);
        worst = fmax(worst, fabs((double)c[i] - (double)r[i]) / denom);
    }
    return worst;
}

/* The reference side of a twin as fp32 host values (the caller frees). */
static float *twin_host(twin t) {
    float *host = test_alloc_floats(t.n);
    CHECK_OK(ref_ctx->ops->download(ref_ctx, t.ref, host, t.n));
    return host;
}

/* Relative error between the two sides of a twin. */
static double twin_error(twin t, const double *scale) {
    float *c = test_alloc_floats(t.n), *r = test_alloc_floats(t.n);
    twin_download(t, c, r);
    double e = rel_error(c, r, scale, t.n);
    free(c);
    free(r);
    return e;
}

/* Sizes to draw from: 1, odd, around vector widths, and larger. */
static int random_width(void) {
    static const int widths[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 65, 100, 129, 257};
    return widths[test_rng_below(&rng, (int64_t)(sizeof widths / sizeof widths[0]))];
}

static int random_batch(void) {
    static const int batches[] = {1, 3, 17, 64, 127, 256, 333, 1024};
    return batches[test_rng_below(&rng, (int64_t)(sizeof batches / sizeof batches[0]))];
}

/* ---- GEMM ------------------------------------------------------------------------------------ */

/* |x| of every element of a float array, into a new twin on the reference side only. */
static void *ref_abs_copy(twin t) {
    float *host = test_alloc_floats(t.n);
    CHECK_OK(ref_ctx->ops->download(ref_ctx, t.ref, host, t.n));
    for (size_t i = 0; i < t.n; i++)
        host[i] = fabsf(host[i]);
    void *out = NULL;
    CHECK_OK(ref_ctx->ops->alloc(ref_ctx, t.n, &out));
    CHECK_OK(ref_ctx->ops->upload(ref_ctx, out, host, t.n));
    free(host);
    return out;
}

/* Runs one GEMM on both backends and returns the error relative to the magnitude of the terms,
 * |alpha| |op(A)| |op(B)| + |beta| |C| (element by element, computed by the reference). */
static double gemm_case(int ta, int tb, int m, int n, int k, double alpha, double beta, int pad) {
    int rows_a = ta ? k : m, cols_a = ta ? m : k, rows_b = tb ? n : k, cols_b = tb ? k : n;
    int lda = rows_a + pad, ldb = rows_b + pad, ldc = m + pad;
    twin A = twin_random((size_t)lda * cols_a, -1, 1);
    twin B = twin_random((size_t)ldb * cols_b, -1, 1);
    twin C = beta == 0 ? twin_new((size_t)ldc * n) : twin_random((size_t)ldc * n, -1, 1);
    void *abs_a = ref_abs_copy(A), *abs_b = ref_abs_copy(B), *abs_c = ref_abs_copy(C);
    if (beta == 0) twin_poison(C); /* beta == 0 must not read C */
    CHECK_OK(cpu_ctx->ops->gemm(cpu_ctx, ta, tb, m, n, k, alpha, A.cpu, lda, B.cpu, ldb, beta,
                                C.cpu, ldc));
    CHECK_OK(ref_ctx->ops->gemm(ref_ctx, ta, tb, m, n, k, alpha, A.ref, lda, B.ref, ldb, beta,
                                C.ref, ldc));
    CHECK_OK(ref_ctx->ops->gemm(ref_ctx, ta, tb, m, n, k, fabs(alpha), abs_a, lda, abs_b, ldb,
                                fabs(beta), abs_c, ldc));
    float *magnitude = test_alloc_floats(C.n), *c = test_alloc_floats(C.n);
    float *r = test_alloc_floats(C.n);
    CHECK_OK(ref_ctx->ops->download(ref_ctx, abs_c, magnitude, C.n));
    twin_download(C, c, r);
    /* Compare only the m x n block; padding rows of C are not part of the result. */
    double worst = 0;
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
            size_t at = (size_t)j * ldc + i;
            double denom = fmax((double)magnitude[at], 1e-30);
            double e = isfinite(c[at]) ? fabs((double)c[at] - (double)r[at]) / denom : INFINITY;
            worst = fmax(worst, e);
        }
    }
    free(magnitude);
    free(c);
    free(r);
    ref_ctx->ops->free(ref_ctx, abs_a);
    ref_ctx->ops->free(ref_ctx, abs_b);
    ref_ctx->ops->free(ref_ctx, abs_c);
    twin_free(A);
    twin_free(B);
    twin_free(C);
    return worst;
}

static void test_gemm(void) {
    for (int trial = 0; trial < 32; trial++) {
        int ta = trial & 1, tb = (trial >> 1) & 1;
        int m = random_width(), k = random_width();
        int n = trial % 8 == 7 ? 1024 : random_batch();
        double alpha = trial % 3 == 0 ? 1.0 : 0.37;
        double beta = trial % 4 < 2 ? 0.0 : 0.5;
        int pad = trial % 5 == 0 ? 3 : 0;
        double e = gemm_case(ta, tb, m, n, k, alpha, beta, pad);
        CHECK_MSG(e <= OP_TOL, "gemm ta=%d tb=%d m=%d n=%d k=%d alpha=%g beta=%g pad=%d: %g", ta,
                  tb, m, n, k, alpha, beta, pad, e);
    }
}

/* ---- forward elementwise --------------------------------------------------------------------- */

/* mode 0: z_out separate; 1: z_out NULL and a_out aliases P; 2: z_out aliases P. */
static void bias_activation_case(int activation, int rows, int cols, int mode) {
    size_t n = (size_t)rows * cols;
    twin P = twin_random(n, -3, 3), b = twin_random((size_t)rows, -1, 1);
    twin Z = twin_new(n), A = twin_new(n);
    twin_poison(Z);
    twin_poison(A);
    void *zc = mode == 0 ? Z.cpu : mode == 2 ? P.cpu : NULL;
    void *zr = mode == 0 ? Z.ref : mode == 2 ? P.ref : NULL;
    void *ac = mode == 1 ? P.cpu : A.cpu, *ar = mode == 1 ? P.ref : A.ref;
    /* fp32 GELU, 0.5 z (1 + erf(z / sqrt 2)), loses relative accuracy for z < -2 where 1 + erf
     * cancels; there it is judged on the size of its terms, |z| (z = p + b, taken before the op,
     * which may overwrite P). */
    double *terms = NULL;
    if (activation == CUMLP_ACT_GELU) {
        float *ph = twin_host(P), *bh = twin_host(b);
        terms = malloc(n * sizeof *terms);
        for (size_t i = 0; i < n; i++)
            terms[i] = fabs((double)ph[i] + (double)bh[i % (size_t)rows]);
        free(ph);
        free(bh);
    }
    double slope = 0.05;
    CHECK_OK(cpu_ctx->ops->bias_activation(cpu_ctx, activation, slope, rows, cols, P.cpu, b.cpu, zc,
                                           ac));
    CHECK_OK(ref_ctx->ops->bias_activation(ref_ctx, activation, slope, rows, cols, P.ref, b.ref, zr,
                                           ar));
    double ea = twin_error(mode == 1 ? P : A, terms);
    free(terms);
    CHECK_MSG(ea <= OP_TOL, "bias_activation act=%d %dx%d mode %d: A error %g", activation, rows,
              cols, mode, ea);
    if (mode != 1) {
        double ez = twin_error(mode == 0 ? Z : P, NULL);
        CHECK_MSG(ez <= OP_TOL, "bias_activation act=%d %dx%d mode %d: Z error %g", activation,
                  rows, cols, mode, ez);
    }
    twin_free(P);
    twin_free(b);
    twin_free(Z);
    twin_free(A);
}

static void test_bias_activation(void) {
    for (int act = CUMLP_ACT_IDENTITY; act <= CUMLP_ACT_SOFTMAX; act++)
        for (int trial = 0; trial < 6; trial++)
            bias_activation_case(act, random_width(), trial == 5 ? 1024 : random_batch(),
                                 trial % 3);
}

/* ---- backward elementwise -------------------------------------------------------------------- */

/* Z and A = f(Z) computed by the reference and shared (rounded to fp32) with the cpu side. */
static void forward_pair(int activation, int rows, int cols, twin *Z, twin *A) {
    size_t n = (size_t)rows * cols;
    twin P = twin_random(n, -3, 3), b = twin_random((size_t)rows, -1, 1);
    *Z = twin_new(n);
    *A = twin_new(n);
    CHECK_OK(ref_ctx->ops->bias_activation(ref_ctx, activation, 0.05, rows, cols, P.ref, b.ref,
                                           Z->ref, A->ref));
    twin_sync_from_ref(*Z);
    twin_sync_from_ref(*A);
    twin_free(P);
    twin_free(b);
}

/* Per-row scale of a bias gradient: db_scale * sum_j |delta(i, j)| from the reference delta. */
static double *bias_scale(twin delta, int rows, int cols, double db_scale) {
    float *d = test_alloc_floats(delta.n);
    CHECK_OK(ref_ctx->ops->download(ref_ctx, delta.ref, d, delta.n));
    double *scale = calloc((size_t)rows, sizeof *scale);
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < rows; i++)
            scale[i] += fabs((double)d[(size_t)j * rows + i]) * db_scale;
    free(d);
    return scale;
}

static void activation_backward_case(int activation, int rows, int cols, int alias) {
    twin Z, A;
    forward_pair(activation, rows, cols, &Z, &A);
    twin G = twin_random(Z.n, -1, 1), D = twin_new(Z.n), db = twin_new((size_t)rows);
    twin_poison(D);
    twin_poison(db);
    twin out = alias ? G : D;
    double db_scale = 1.0 / cols;
    /* Every f' here is O(1), but 1 - a^2 (tanh) and GELU's Phi + z phi cancel: an element is
     * judged on the size of its terms, |g|, as a GEMM is judged on |A||B|. */
    float *g = twin_host(G);
    double *terms = malloc(G.n * sizeof *terms);
    for (size_t i = 0; i < G.n; i++)
        terms[i] = fabs((double)g[i]);
    free(g);
    CHECK_OK(cpu_ctx->ops->activation_backward(cpu_ctx, activation, 0.05, rows, cols, G.cpu, Z.cpu,
                                               A.cpu, out.cpu, db.cpu, db_scale));
    CHECK_OK(ref_ctx->ops->activation_backward(ref_ctx, activation, 0.05, rows, cols, G.ref, Z.ref,
                                               A.ref, out.ref, db.ref, db_scale));
    double ed = twin_error(out, terms);
    double *scale = bias_scale(out, rows, cols, db_scale);
    double eb = twin_error(db, scale);
    free(terms);
    CHECK_MSG(ed <= OP_TOL && eb <= OP_TOL,
              "activation_backward act=%d %dx%d alias %d: delta error %g, db error %g", activation,
              rows, cols, alias, ed, eb);
    free(scale);
    twin_free(Z);
    twin_free(A);
    twin_free(G);
    twin_free(D);
    twin_free(db);
}

static void test_activation_backward(void) {
    for (int act = CUMLP_ACT_IDENTITY; act <= CUMLP_ACT_GELU; act++)
        for (int trial = 0; trial < 6; trial++)
            activation_backward_case(act, random_width(), trial == 5 ? 1024 : random_batch(),
                                     trial % 2);
}

/* ---- loss and output delta ------------------------------------------------------------------- */

static void loss_delta_case(int loss, int activation, int rows, int cols, int variant) {
    twin Z, A;
    forward_pair(activation, rows, cols, &Z, &A);
    size_t n = Z.n;
    twin Y = twin_new(n);
    float *y = test_alloc_floats(n);
    if (loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY)
        test_fill_one_hot(&rng, y, rows, cols);
    else
        test_fill_uniform(&rng, y, n, 0, 1);
    twin_upload(Y, y);
    free(y);
    /* variant bit 0: delta aliases A; bit 1: no db; bit 2: no loss_sum */
    int alias = variant & 1, with_db = !(variant & 2), with_loss = !(variant & 4);
    twin D = twin_new(n), db = twin_new((size_t)rows);
    twin_poison(D);
    twin_poison(db);
    twin out = alias ? A : D;
    /* delta = (a - y) f': judged on the size of its terms, |a| + |y| (f' is O(1)). */
    float *a = twin_host(A), *yy = twin_host(Y);
    double *terms = malloc(n * sizeof *terms);
    for (size_t i = 0; i < n; i++)
        terms[i] = fabs((double)a[i]) + fabs((double)yy[i]);
    free(a);
    free(yy);
    double loss_cpu = NAN, loss_ref = NAN, db_scale = 1.0 / cols;
    const void *zc = cumlp__loss_needs_z(loss) || activation == CUMLP_ACT_GELU ? Z.cpu : NULL;
    const void *zr = zc ? Z.ref : NULL;
    CHECK_OK(cpu_ctx->ops->loss_delta(cpu_ctx, loss, activation, 0.05, rows, cols, zc, A.cpu, Y.cpu,
                                      out.cpu, with_db ? db.cpu : NULL, db_scale,
                                      with_loss ? &loss_cpu : NULL));
    CHECK_OK(ref_ctx->ops->loss_delta(ref_ctx, loss, activation, 0.05, rows, cols, zr, A.ref, Y.ref,
                                      out.ref, with_db ? db.ref : NULL, db_scale,
                                      with_loss ? &loss_ref : NULL));
    double ed = twin_error(out, terms);
    free(terms);
    CHECK_MSG(ed <= OP_TOL, "loss_delta loss=%d act=%d %dx%d variant %d: delta error %g", loss,
              activation, rows, cols, variant, ed);
    if (with_db) {
        double *scale = bias_scale(out, rows, cols, db_scale);
        double eb = twin_error(db, scale);
        CHECK_MSG(eb <= OP_TOL, "loss_delta loss=%d act=%d %dx%d: db error %g", loss, activation,
                  rows, cols, eb);
        free(scale);
    }
    if (with_loss) {
        double el = fabs(loss_cpu - loss_ref) / fmax(fabs(loss_ref), 1e-30);
        CHECK_MSG(isfinite(loss_cpu) && el <= OP_TOL,
                  "loss_delta loss=%d act=%d %dx%d: loss %.9g vs %.9g", loss, activation, rows,
                  cols, loss_cpu, loss_ref);
    }
    twin_free(Z);
    twin_free(A);
    twin_free(Y);
    twin_free(D);
    twin_free(db);
}

static void test_loss_delta(void) {
    for (int trial = 0; trial < 8; trial++) {
        int cols = trial == 7 ? 1024 : random_batch();
        loss_delta_case(CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, CUMLP_ACT_SOFTMAX, random_width(), cols,
                        trial);
        loss_delta_case(CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, CUMLP_ACT_SIGMOID, random_width(),
                        cols, trial);
    }
    for (int act = CUMLP_ACT_IDENTITY; act <= CUMLP_ACT_GELU; act++)
        for (int trial = 0; trial < 4; trial++)
            loss_delta_case(CUMLP_LOSS_SQUARED_ERROR, act, random_width(),
                            trial == 3 ? 1024 : random_batch(), trial * 3 % 8);
}

/* ---- optimizer ------------------------------------------------------------------------------- */

/* The magnitude of an optimizer update's terms: the same update on |w|, |g|, |s1|, |s2| with the
 * learning rate negated, so that every term adds (w + lr g, mu v + lr g, b1 m + (1-b1) g, ...). */
static double *update_terms(const cumlp_step_params *p, twin W, twin G, twin S1, twin S2,
                            int which) {
    size_t n = W.n;
    twin parts[4] = {W, G, S1, S2};
    void *abs_parts[4];
    for (int i = 0; i < 4; i++)
        abs_parts[i] = ref_abs_copy(parts[i]);
    cumlp_step_params q = *p;
    q.learning_rate = -p->learning_rate;
    CHECK_OK(ref_ctx->ops->optimizer_step(ref_ctx, &q, n, abs_parts[0], abs_parts[1],
                                          p->type != CUMLP_OPT_SGD ? abs_parts[2] : NULL,
                                          p->type == CUMLP_OPT_ADAM ? abs_parts[3] : NULL));
    float *host = test_alloc_floats(n);
    CHECK_OK(ref_ctx->ops->download(ref_ctx, abs_parts[which], host, n));
    double *terms = malloc(n * sizeof *terms);
    for (size_t i = 0; i < n; i++)
        terms[i] = fabs((double)host[i]);
    free(host);
    for (int i = 0; i < 4; i++)
        ref_ctx->ops->free(ref_ctx, abs_parts[i]);
    return terms;
}

static void optimizer_case(int type, size_t count, double weight_decay, double beta2, double tol) {
    twin W = twin_random(count, -1, 1), G = twin_random(count, -1, 1);
    twin S1 = twin_random(count, -0.1, 0.1), S2 = twin_random(count, 0, 0.01);
    cumlp_step_params p = {.type = type,
                           .learning_rate = 0.03,
                           .momentum = 0.9,
                           .weight_decay = weight_decay,
                           .beta1 = 0.875,
                           .beta2 = beta2,
                           .epsilon = 1e-8,
                           .bias_correction1 = type == CUMLP_OPT_ADAM ? 1 - pow(0.875, 3) : 1,
                           .bias_correction2 = type == CUMLP_OPT_ADAM ? 1 - pow(beta2, 3) : 1};
    int uses1 = type != CUMLP_OPT_SGD, uses2 = type == CUMLP_OPT_ADAM;
    double *terms[3] = {update_terms(&p, W, G, S1, S2, 0), update_terms(&p, W, G, S1, S2, 2),
                        update_terms(&p, W, G, S1, S2, 3)};
    CHECK_OK(cpu_ctx->ops->optimizer_step(cpu_ctx, &p, count, W.cpu, G.cpu, uses1 ? S1.cpu : NULL,
                                          uses2 ? S2.cpu : NULL));
    CHECK_OK(ref_ctx->ops->optimizer_step(ref_ctx, &p, count, W.ref, G.ref, uses1 ? S1.ref : NULL,
                                          uses2 ? S2.ref : NULL));
    double ew = twin_error(W, terms[0]), e1 = twin_error(S1, terms[1]);
    double e2 = twin_error(S2, terms[2]);
    CHECK_MSG(ew <= tol && e1 <= tol && e2 <= tol,
              "optimizer type %d count %zu wd %g beta2 %g: errors %g %g %g", type, count,
              weight_decay, beta2, ew, e1, e2);
    for (int i = 0; i < 3; i++)
        free(terms[i]);
    twin_free(W);
    twin_free(G);
    twin_free(S1);
    twin_free(S2);
}

static void test_optimizer_step(void) {
    const size_t counts[] = {1, 7, 1000, 65537};
    for (int type = CUMLP_OPT_SGD; type <= CUMLP_OPT_ADAM; type++)
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
            optimizer_case(type, counts[c], c % 2 ? 1e-3 : 0.0, 1.0 - 0x1p-10, OP_TOL);
    /* Adam's default beta2 = 0.999 is not a float: the shared fp32 formula's 1 - (float)0.999 is
     * 9.9998713e-4, 1.3e-5 off, which bounds the second moment's agreement with the double
     * reference. (The betas above are exact in fp32.) */
    optimizer_case(CUMLP_OPT_ADAM, 4099, 0.0, 0.999, 2e-5);
}

/* ---- random numbers, scale_shift, check_finite, memory ----------------------------------------
 */

/* Both sides of a twin hold the same fp32 values, bit for bit. */
static int twin_identical(twin t) {
    float *c = test_alloc_floats(t.n), *r = test_alloc_floats(t.n);
    twin_download(t, c, r);
    int same = memcmp(c, r, t.n * sizeof(float)) == 0;
    free(c);
    free(r);
    return same;
}

static void test_random_and_scale_shift(void) {
    const size_t counts[] = {1, 2, 3, 5, 1001, 40003};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        for (int dist = CUMLP_DIST_UNIFORM; dist <= CUMLP_DIST_NORMAL; dist++) {
            twin t = twin_new(counts[c]);
            twin_poison(t);
            uint64_t seed = 0x1234567890abcdefull + c;
            CHECK_OK(cpu_ctx->ops->random(cpu_ctx, dist, seed, t.n, t.cpu));
            CHECK_OK(ref_ctx->ops->random(ref_ctx, dist, seed, t.n, t.ref));
            CHECK_MSG(twin_identical(t), "random dist %d count %zu differs", dist, t.n);
            CHECK_OK(cpu_ctx->ops->scale_shift(cpu_ctx, t.cpu, t.n, 0.3183, -0.1591));
            CHECK_OK(ref_ctx->ops->scale_shift(ref_ctx, t.ref, t.n, 0.3183, -0.1591));
            CHECK_MSG(twin_identical(t), "scale_shift dist %d count %zu differs", dist, t.n);
            twin_free(t);
        }
    }
}

static void test_check_finite(void) {
    const size_t counts[] = {1, 17, 100000};
    const float bad[] = {NAN, INFINITY, -INFINITY};
    cumlp_context *ctx = cpu_ctx;
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        size_t n = counts[c];
        float *host = test_alloc_floats(n);
        test_fill_uniform(&rng, host, n, -1e30, 1e30);
        void *buf = NULL;
        CHECK_OK(ctx->ops->alloc(ctx, n, &buf));
        CHECK_OK(ctx->ops->upload(ctx, buf, host, n));
        int finite = -1;
        CHECK_OK(ctx->ops->check_finite(ctx, buf, n, &finite));
        CHECK(finite == 1);
        for (size_t b = 0; b < 3; b++) {
            size_t at = (size_t)test_rng_below(&rng, (int64_t)n);
            float saved = host[at];
            host[at] = bad[b];
            CHECK_OK(ctx->ops->upload(ctx, buf, host, n));
            finite = -1;
            CHECK_OK(ctx->ops->check_finite(ctx, buf, n, &finite));
            CHECK_MSG(finite == 0, "count %zu, %g at %zu not found", n, (double)bad[b], at);
            host[at] = saved;
        }
        ctx->ops->free(ctx, buf);
        free(host);
    }
}

static void test_memory_ops(void) {
    const size_t n = 70001;
    float *host = test_alloc_floats(n), *back = test_alloc_floats(n);
    test_fill_uniform(&rng, host, n, -5, 5);
    void *a = NULL, *b = NULL;
    int64_t before = -1, after = -1;
    CHECK_OK(cumlp_context_memory(cpu_ctx, &before, NULL));
    CHECK_OK(cpu_ctx->ops->alloc(cpu_ctx, n, &a));
    CHECK_OK(cpu_ctx->ops->alloc(cpu_ctx, n, &b));
    CHECK_OK(cumlp_context_memory(cpu_ctx, &after, NULL));
    CHECK(after - before == 2 * 280064); /* 70001 floats in whole 64-byte lines */
    CHECK_OK(cpu_ctx->ops->upload(cpu_ctx, a, host, n));
    CHECK_OK(cpu_ctx->ops->fill(cpu_ctx, b, n, NAN));
    CHECK_OK(cpu_ctx->ops->copy(cpu_ctx, b, a, n));
    CHECK_OK(cpu_ctx->ops->download(cpu_ctx, b, back, n));
    CHECK(memcmp(host, back, n * sizeof(float)) == 0);
    CHECK_OK(cpu_ctx->ops->fill(cpu_ctx, b, n, 2.5f));
    CHECK_OK(cpu_ctx->ops->download(cpu_ctx, b, back, n));
    int all = 1;
    for (size_t i = 0; i < n; i++)
        all &= back[i] == 2.5f;
    CHECK(all);
    cpu_ctx->ops->free(cpu_ctx, a);
    cpu_ctx->ops->free(cpu_ctx, b);
    cpu_ctx->ops->free(cpu_ctx, NULL);
    CHECK_OK(cumlp_context_memory(cpu_ctx, &after, NULL));
    CHECK(after == before);
    free(host);
    free(back);
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

/* ---- whole networks -------------------------------------------------------------------------- */

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

static cumlp_network *make_network(cumlp_context *ctx, int num_layers, const int64_t *widths,
                                   const int *acts, int loss, int init, int bias_init,
                                   uint64_t seed) {
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.loss = loss;
    o.init = init;
    o.bias_init = bias_init;
    o.seed = seed;
    o.leaky_relu_slope = 0.05;
    cumlp_network *net = NULL;
    cumlp_status st = cumlp_network_create(ctx, num_layers, widths, acts, &o, &net);
    if (st != CUMLP_SUCCESS) {
        fprintf(stderr, "test: network: %s\n", cumlp_last_error(ctx));
        abort();
    }
    return net;
}

static float *parameters_of(cumlp_network *net) {
    int64_t n = cumlp_network_num_parameters(net);
    float *p = test_alloc_floats((size_t)n);
    CHECK_OK(cumlp_network_get_parameters(net, p, n));
    return p;
}

static void test_initial_parameters_identical(void) {
    const int64_t widths[] = {37, 65, 17, 3};
    const int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_RELU, CUMLP_ACT_IDENTITY};
    for (int init = CUMLP_INIT_NORMAL; init <= CUMLP_INIT_HE_UNIFORM; init++) {
        for (int bias_init = CUMLP_BIAS_ZERO; bias_init <= CUMLP_BIAS_DRAWN; bias_init++) {
            uint64_t seed = 1000u + (uint64_t)init * 7u + (uint64_t)bias_init;
            cumlp_network *c = make_network(cpu_ctx, 3, widths, acts, CUMLP_LOSS_SQUARED_ERROR,
                                            init, bias_init, seed);
            cumlp_network *r = make_network(ref_ctx, 3, widths, acts, CUMLP_LOSS_SQUARED_ERROR,
                                            init, bias_init, seed);
            float *pc = parameters_of(c), *pr = parameters_of(r);
            size_t n = (size_t)cumlp_network_num_parameters(c);
            CHECK_MSG(memcmp(pc, pr, n * sizeof(float)) == 0,
                      "init %d bias_init %d: initial parameters differ", init, bias_init);
            free(pc);
            free(pr);
            cumlp_network_destroy(c);
            cumlp_network_destroy(r);
        }
    }
}

/* A training set-up: architecture, loss, optimizer and data. */
typedef struct trajectory {
    int num_layers;
    int64_t widths[5];
    int acts[4];
    int loss;
    cumlp_optimizer_options opt;
    int batch;
} trajectory;

/* Runs `steps` training steps of `t` in ctx from seed 7; returns the parameters and fills
 * losses[steps]. The data come from a fixed generator so every call sees the same batches. */
static float *train(cumlp_context *ctx, const trajectory *t, int steps, double *losses) {
    cumlp_network *net = make_network(ctx, t->num_layers, t->widths, t->acts, t->loss,
                                      CUMLP_INIT_XAVIER_UNIFORM, CUMLP_BIAS_DRAWN, 7);
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &t->opt, &opt));
    int64_t n_in = t->widths[0], n_out = t->widths[t->num_layers];
    float *x = test_alloc_floats((size_t)(n_in * t->batch));
    float *y = test_alloc_floats((size_t)(n_out * t->batch));
    test_rng data = {99};
    for (int s = 0; s < steps; s++) {
        test_fill_uniform(&data, x, (size_t)(n_in * t->batch), -1, 1);
        if (t->loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY)
            test_fill_one_hot(&data, y, n_out, t->batch);
        else
            test_fill_uniform(&data, y, (size_t)(n_out * t->batch), 0, 1);
        cumlp_tensor *X = test_tensor_from(ctx, x, n_in, t->batch);
        cumlp_tensor *Y = test_tensor_from(ctx, y, n_out, t->batch);
        losses[s] = NAN;
        CHECK_OK(cumlp_train_step(net, opt, X, Y, &losses[s]));
        cumlp_tensor_destroy(X);
        cumlp_tensor_destroy(Y);
    }
    float *params = parameters_of(net);
    free(x);
    free(y);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    return params;
}

static trajectory trajectory_case(int which) {
    trajectory t;
    memset(&t, 0, sizeof t);
    cumlp_optimizer_defaults(&t.opt);
    if (which == 0) { /* ReLU, softmax cross-entropy, momentum */
        t = (trajectory){3,
                         {29, 64, 33, 10},
                         {CUMLP_ACT_RELU, CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX},
                         CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY,
                         t.opt,
                         64};
        t.opt.type = CUMLP_OPT_MOMENTUM;
        t.opt.learning_rate = 0.05;
    } else if (which == 1) { /* tanh + GELU, sigmoid BCE, plain SGD */
        t = (trajectory){3,
                         {13, 31, 17, 5},
                         {CUMLP_ACT_TANH, CUMLP_ACT_GELU, CUMLP_ACT_SIGMOID},
                         CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY,
                         t.opt,
                         48};
        t.opt.type = CUMLP_OPT_SGD;
        t.opt.learning_rate = 0.5;
    } else { /* sigmoid + leaky ReLU, squared error, Nesterov with weight decay */
        t = (trajectory){3,
                         {11, 23, 19, 3},
                         {CUMLP_ACT_SIGMOID, CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_IDENTITY},
                         CUMLP_LOSS_SQUARED_ERROR,
                         t.opt,
                         37};
        t.opt.type = CUMLP_OPT_NESTEROV;
        t.opt.learning_rate = 0.02;
        t.opt.weight_decay = 1e-3;
    }
    return t;
}

static void test_training_trajectory(void) {
    enum { STEPS = 50 };
    for (int which = 0; which < 3; which++) {
        trajectory t = trajectory_case(which);
        double lc[STEPS], lr[STEPS];
        float *pc = train(cpu_ctx, &t, STEPS, lc), *pr = train(ref_ctx, &t, STEPS, lr);
        double worst_loss = 0;
        for (int s = 0; s < STEPS; s++)
            worst_loss =
                fmax(worst_loss, isfinite(lc[s]) ? fabs(lc[s] - lr[s]) / fabs(lr[s]) : INFINITY);
        size_t n = 0;
        for (int l = 0; l < t.num_layers; l++)
            n += (size_t)(t.widths[l + 1] * (t.widths[l] + 1));
        double ep = rel_error(pc, pr, NULL, n);
        CHECK_MSG(worst_loss <= TRAJECTORY_TOL && ep <= TRAJECTORY_TOL,
                  "trajectory %d: loss error %g, parameter error %g (losses %g -> %g)", which,
                  worst_loss, ep, lr[0], lr[STEPS - 1]);
        CHECK_MSG(lr[STEPS - 1] < lr[0], "trajectory %d does not learn: %g -> %g", which, lr[0],
                  lr[STEPS - 1]);
        free(pc);
        free(pr);
    }
}

/* Same thread count, same results, bit for bit; with batches large enough that the elementwise
 * passes and their reductions really split across threads. */
static void test_repeatable(void) {
    const int thread_counts[] = {1, 2, 3};
    trajectory t = trajectory_case(0);
    t.widths[1] = 256;
    t.widths[2] = 129;
    t.batch = 512;
    enum { STEPS = 6 };
    for (size_t i = 0; i < sizeof thread_counts / sizeof thread_counts[0]; i++) {
        cumlp_context *ctx = cpu_context(thread_counts[i]);
        double l1[STEPS], l2[STEPS];
        float *p1 = train(ctx, &t, STEPS, l1), *p2 = train(ctx, &t, STEPS, l2);
        size_t n = (size_t)(t.widths[1] * (t.widths[0] + 1) + t.widths[2] * (t.widths[1] + 1) +
                            t.widths[3] * (t.widths[2] + 1));
        CHECK_MSG(memcmp(p1, p2, n * sizeof(float)) == 0 && memcmp(l1, l2, sizeof l1) == 0,
                  "%d threads: two runs differ", thread_counts[i]);
        free(p1);
        free(p2);
        cumlp_context_destroy(ctx);
    }
}

int main(void) {
    if (!cumlp_backend_is_built(CUMLP_BACKEND_CPU)) harness_skip("the cpu backend is not built");
    cpu_ctx = cpu_context(CPU_THREADS);
    ref_ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    RUN(test_memory_ops);
    RUN(test_wrap);
    RUN(test_gemm);
    RUN(test_bias_activation);
    RUN(test_activation_backward);
    RUN(test_loss_delta);
    RUN(test_optimizer_step);
    RUN(test_random_and_scale_shift);
    RUN(test_check_finite);
    RUN(test_initial_parameters_identical);
    RUN(test_training_trajectory);
    RUN(test_repeatable);
    cumlp_context_destroy(cpu_ctx);
    cumlp_context_destroy(ref_ctx);
    return harness_finish();
}
