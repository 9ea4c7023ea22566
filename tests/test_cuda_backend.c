/* ctest-labels: gpu */
/*
 * Every op of the cuda backend against the reference backend: the same fp32 inputs go to both
 * through ctx->ops, outputs are poisoned with NaN first (so an unwritten element fails), and the
 * results are compared over many shapes: 1, odd sizes, sizes that are not multiples of a block,
 * a warp or a float4, batches up to 4096. Strict fp32: rel. error <= 1e-5; TF32 GEMMs <= 5e-3.
 * Errors are relative to max(|reference|, 0.05 max |reference|) so that entries near zero in a
 * sum with cancellation are judged on the scale of the result. NaN never passes.
 */
#include "harness.h"
#include "internal.h"
#include "backends/rng.h"
#include "testutil.h"

#include "cumlp_math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static cumlp_context *ref, *gpu;
static test_rng rng = {12345};

/* One array on both backends. */
typedef struct pair {
    void *r, *g;
    size_t n;
} pair;

static pair pair_alloc(size_t n) {
    pair p = {NULL, NULL, n};
    CHECK_OK(ref->ops->alloc(ref, n, &p.r));
    CHECK_OK(gpu->ops->alloc(gpu, n, &p.g));
    return p;
}

static pair pair_from(const float *host, size_t n) {
    pair p = pair_alloc(n);
    CHECK_OK(ref->ops->upload(ref, p.r, host, n));
    CHECK_OK(gpu->ops->upload(gpu, p.g, host, n));
    return p;
}

static pair pair_random(size_t n, double lo, double hi) {
    float *h = test_alloc_floats(n);
    test_fill_uniform(&rng, h, n, lo, hi);
    pair p = pair_from(h, n);
    free(h);
    return p;
}

static void poison(pair p) {
    CHECK_OK(ref->ops->fill(ref, p.r, p.n, NAN));
    CHECK_OK(gpu->ops->fill(gpu, p.g, p.n, NAN));
}

static void pair_free(pair p) {
    ref->ops->free(ref, p.r);
    gpu->ops->free(gpu, p.g);
}

/* Largest error of the cuda result relative to the reference (see the file comment). */
static double pair_error(pair p) {
    float *a = test_alloc_floats(p.n), *b = test_alloc_floats(p.n);
    CHECK_OK(gpu->ops->download(gpu, p.g, a, p.n));
    CHECK_OK(ref->ops->download(ref, p.r, b, p.n));
    double max = 0;
    for (size_t i = 0; i < p.n; i++)
        if (fabs((double)b[i]) > max) max = fabs((double)b[i]);
    double err = test_max_rel_error(a, b, p.n, fmax(0.05 * max, 1e-30));
    free(a);
    free(b);
    return err;
}

static const int rows_list[] = {1, 3, 4, 17, 33, 100, 257};
static const int cols_list[] = {1, 2, 5, 31, 64, 129, 1000, 4096};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- memory ------------------------------------------------------------------------------- */

static void test_upload_download_fill_copy(void) {
    const size_t sizes[] = {1, 3, 5, 1000, (1u << 19) + 7, (3u << 19) + 1};
    for (int s = 0; s < COUNT(sizes); s++) {
        size_t n = sizes[s];
        float *h = test_alloc_floats(n), *back = test_alloc_floats(n);
        test_fill_uniform(&rng, h, n, -10, 10);
        void *a = NULL, *b = NULL;
        CHECK_OK(gpu->ops->alloc(gpu, n, &a));
        CHECK_OK(gpu->ops->alloc(gpu, n, &b));
        CHECK_OK(gpu->ops->upload(gpu, a, h, n));
        memset(h, 0, n * sizeof *h); /* upload has returned: the host array is free */
        CHECK_OK(gpu->ops->download(gpu, a, back, n));
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
    }
}

/* Queues about 10 ms of GEMMs on the context's stream, so that work queued after it is still
 * pending when a copy on another stream could already have run. */
static void keep_stream_busy(void **scratch) {
    const int d = 2048;
    if (!*scratch) CHECK_OK(gpu->ops->alloc(gpu, (size_t)3 * d * d, scratch));
    if (!*scratch) return;
    void *a = *scratch, *b = cumlp__at(gpu, a, (size_t)d * d),
         *c = cumlp__at(gpu, b, (size_t)d * d);
    CHECK_OK(gpu->ops->fill(gpu, a, (size_t)2 * d * d, 1.0f / d));
    for (int i = 0; i < 24; i++)
        CHECK_OK(gpu->ops->gemm(gpu, 0, 0, d, d, d, 1.0, a, d, b, d, 0.0, c, d));
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

/* ---- GEMM --------------------------------------------------------------------------------- */

static void gemm_case(int ta, int tb, int m, int n, int k, double alpha, double beta, double tol) {
    int lda = ta ? k : m, ldb = tb ? n : k;
    pair A = pair_random((size_t)lda * (ta ? m : k), -1, 1);
    pair B = pair_random((size_t)ldb * (tb ? k : n), -1, 1);
    pair C = beta == 0 ? pair_alloc((size_t)m * n) : pair_random((size_t)m * n, -1, 1);
    if (beta == 0) poison(C); /* beta == 0 must not read C */
    CHECK_OK(ref->ops->gemm(ref, ta, tb, m, n, k, alpha, A.r, lda, B.r, ldb, beta, C.r, m));
    CHECK_OK(gpu->ops->gemm(gpu, ta, tb, m, n, k, alpha, A.g, lda, B.g, ldb, beta, C.g, m));
    double err = pair_error(C);
    CHECK_MSG(err <= tol, "gemm %c%c m=%d n=%d k=%d alpha=%g beta=%g: error %g > %g",
              ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, beta, err, tol);
    pair_free(A);
    pair_free(B);
    pair_free(C);
}

static void gemm_sweep(int math_mode, double tol) {
    gpu->math_mode = math_mode;
    const int dims[] = {1, 3, 17, 64, 129, 257};
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < COUNT(dims); i++) {
            int m = dims[i], n = dims[(i + 2) % COUNT(dims)], k = dims[(i + 4) % COUNT(dims)];
            gemm_case(t & 1, t >> 1, m, n, k, 1.0, 0.0, tol);
            gemm_case(t & 1, t >> 1, n, m, k, 1.0 / 7, 0.5, tol);
        }
    gemm_case(0, 1, 33, 100, 4096, 1.0 / 4096, 0.0, tol); /* dW over a large batch */
    gemm_case(1, 0, 100, 4096, 33, 1.0, 0.0, tol);        /* W^T delta */
    gpu->math_mode = CUMLP_MATH_STRICT_FP32;
}

static void test_gemm_strict(void) {
    gemm_sweep(CUMLP_MATH_STRICT_FP32, 1e-5);
}

static void test_gemm_tf32(void) {
    gemm_sweep(CUMLP_MATH_TF32, 5e-3);
}

/* ---- forward elementwise ------------------------------------------------------------------- */

/* aliasing: 0 separate z and a; 1 z aliases P; 2 no z, a aliases P */
static void bias_activation_case(int act, int rows, int cols, int aliasing) {
    size_t n = (size_t)rows * cols;
    pair P = pair_random(n, -4, 4), b = pair_random((size_t)rows, -1, 1);
    pair z = aliasing == 0 ? pair_alloc(n) : P, a = aliasing == 2 ? P : pair_alloc(n);
    if (aliasing == 0) poison(z);
    if (aliasing != 2) poison(a);
    void *zr = aliasing == 2 ? NULL : z.r, *zg = aliasing == 2 ? NULL : z.g;
    CHECK_OK(ref->ops->bias_activation(ref, act, 0.01, rows, cols, P.r, b.r, zr, a.r));
    CHECK_OK(gpu->ops->bias_activation(gpu, act, 0.01, rows, cols, P.g, b.g, zg, a.g));
    double ea = pair_error(a), ez = aliasing == 2 ? 0 : pair_error(z);
    CHECK_MSG(ea <= 1e-5 && ez <= 1e-5, "bias_activation act=%d %dx%d aliasing %d: A %g, Z %g", act,
              rows, cols, aliasing, ea, ez);
    pair_free(P);
    pair_free(b);
    if (aliasing == 0) pair_free(z);
    if (aliasing != 2) pair_free(a);
}

static void test_bias_activation(void) {
    for (int act = CUMLP_ACT_IDENTITY; act <= CUMLP_ACT_SOFTMAX; act++)
        for (int r = 0; r < COUNT(rows_list); r++)
            for (int c = 0; c < COUNT(cols_list); c += 2)
                bias_activation_case(act, rows_list[r], cols_list[c], (r + c + act) % 3);
    bias_activation_case(CUMLP_ACT_SOFTMAX, 1000, 37, 0); /* wide softmax: lanes loop */
    bias_activation_case(CUMLP_ACT_RELU, 33, 4096, 2);
    bias_activation_case(CUMLP_ACT_SOFTMAX, 4096, 33, 2); /* in place, 128 elements per lane */
    bias_activation_case(CUMLP_ACT_GELU, 1025, 16385, 1); /* a large batch */
}

/* ---- loss and backward ---------------------------------------------------------------------- */

/* Host Z, A = f(Z) (softmax per column) and targets Y for a loss, as fp32. */
static void output_data(int loss, int act, int rows, int cols, float *z, float *a, float *y) {
    size_t n = (size_t)rows * cols;
    test_fill_uniform(&rng, z, n, -3, 3);
    if (loss == CUMLP_LOSS_SQUARED_ERROR || loss == CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY)
        test_fill_uniform(&rng, y, n, 0, 1);
    else
        test_fill_one_hot(&rng, y, rows, cols);
    for (int j = 0; j < cols; j++) {
        const float *zc = z + (size_t)j * rows;
        float *ac = a + (size_t)j * rows;
        if (act != CUMLP_ACT_SOFTMAX) {
            for (int i = 0; i < rows; i++)
                ac[i] = (float)cumlp_activate_d(act, 0.01, zc[i]);
            continue;
        }
        double max = zc[0], sum = 0;
        for (int i = 1; i < rows; i++)
            max = fmax(max, zc[i]);
        for (int i = 0; i < rows; i++)
            sum += exp(zc[i] - max);
        for (int i = 0; i < rows; i++)
            ac[i] = (float)(exp(zc[i] - max) / sum);
    }
}

static void loss_delta_case(int loss, int act, int rows, int cols, int with_db, int with_loss,
                            int delta_aliases_a) {
    size_t n = (size_t)rows * cols;
    float *hz = test_alloc_floats(n), *ha = test_alloc_floats(n), *hy = test_alloc_floats(n);
    output_data(loss, act, rows, cols, hz, ha, hy);
    pair Z = pair_from(hz, n), A = pair_from(ha, n), Y = pair_from(hy, n);
    pair delta = delta_aliases_a ? A : pair_alloc(n), db = pair_alloc((size_t)rows);
    if (!delta_aliases_a) poison(delta);
    poison(db);
    int z_needed = loss != CUMLP_LOSS_SQUARED_ERROR || cumlp__activation_needs_z(act);
    double lr = NAN, lg = NAN;
    CHECK_OK(ref->ops->loss_delta(ref, loss, act, 0.01, rows, cols, z_needed ? Z.r : NULL, A.r, Y.r,
                                  delta.r, with_db ? db.r : NULL, 1.0 / cols,
                                  with_loss ? &lr : NULL));
    CHECK_OK(gpu->ops->loss_delta(gpu, loss, act, 0.01, rows, cols, z_needed ? Z.g : NULL, A.g, Y.g,
                                  delta.g, with_db ? db.g : NULL, 1.0 / cols,
                                  with_loss ? &lg : NULL));
    double ed = pair_error(delta), eb = with_db ? pair_error(db) : 0;
    double el = with_loss ? fabs(lg - lr) / fmax(fabs(lr), 1e-30) : 0;
    CHECK_MSG(ed <= 1e-5 && eb <= 1e-5 && el <= 1e-5,
              "loss_delta loss=%d act=%d %dx%d: delta %g, db %g, loss %g (%.9g vs %.9g)", loss, act,
              rows, cols, ed, eb, el, lg, lr);
    pair_free(Z);
    if (!delta_aliases_a) pair_free(delta);
    pair_free(A);
    pair_free(Y);
    pair_free(db);
    free(hz);
    free(ha);
    free(hy);
}

static void test_loss_delta(void) {
    const int se_acts[] = {CUMLP_ACT_IDENTITY, CUMLP_ACT_SIGMOID,    CUMLP_ACT_TANH,
                           CUMLP_ACT_RELU,     CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_GELU};
    int k = 0;
    for (int r = 0; r < COUNT(rows_list); r++)
        for (int c = 0; c < COUNT(cols_list); c++, k++) {
            int rows = rows_list[r], cols = cols_list[c];
            loss_delta_case(CUMLP_LOSS_SQUARED_ERROR, se_acts[k % COUNT(se_acts)], rows, cols,
                            k % 2, 1, k % 3 == 0);
            loss_delta_case(CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, CUMLP_ACT_SOFTMAX, rows, cols, 1,
                            k % 4 != 1, k % 3 == 1);
            loss_delta_case(CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, CUMLP_ACT_SIGMOID, rows, cols,
                            k % 3 != 2, 1, k % 3 == 2);
        }
    /* A batch past the reductions' chunk cap (16385 columns), and a wide output layer. */
    loss_delta_case(CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, CUMLP_ACT_SOFTMAX, 10, 16385, 1, 1, 0);
    loss_delta_case(CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, CUMLP_ACT_SIGMOID, 4096, 257, 1, 1, 1);
    loss_delta_case(CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_TANH, 33, 16385, 1, 1, 0);
}

/* Confident correct BCE predictions: each loss term is tiny next to softplus(z) and y z, so an
 * fp32 evaluation of softplus(z) - y z loses it; the reference evaluates it in double. */
static void test_bce_loss_of_confident_outputs(void) {
    const int rows = 7, cols = 33;
    size_t n = (size_t)rows * cols;
    float *hz = test_alloc_floats(n), *ha = test_alloc_floats(n), *hy = test_alloc_floats(n);
    for (size_t i = 0; i < n; i++) {
        int positive = i % 3 != 0;
        hz[i] = (positive ? 1.0f : -1.0f) * (8.0f + (float)(i % 13));
        hy[i] = positive ? 1.0f : 0.0f;
        ha[i] = (float)cumlp_sigmoid_d(hz[i]);
    }
    pair Z = pair_from(hz, n), A = pair_from(ha, n), Y = pair_from(hy, n), delta = pair_alloc(n);
    double lr = NAN, lg = NAN;
    CHECK_OK(ref->ops->loss_delta(ref, CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, CUMLP_ACT_SIGMOID,
                                  0.01, rows, cols, Z.r, A.r, Y.r, delta.r, NULL, 1.0 / cols, &lr));
    CHECK_OK(gpu->ops->loss_delta(gpu, CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, CUMLP_ACT_SIGMOID,
                                  0.01, rows, cols, Z.g, A.g, Y.g, delta.g, NULL, 1.0 / cols, &lg));
    CHECK_MSG(fabs(lg - lr) <= 1e-5 * lr, "BCE loss of confident outputs: %.9g vs %.9g", lg, lr);
    pair_free(Z);
    pair_free(A);
    pair_free(Y);
    pair_free(delta);
    free(hz);
    free(ha);
    free(hy);
}

static void backward_case(int act, int rows, int cols, int delta_aliases_g) {
    size_t n = (size_t)rows * cols;
    float *hz = test_alloc_floats(n), *ha = test_alloc_floats(n), *hy = test_alloc_floats(n);
    output_data(CUMLP_LOSS_SQUARED_ERROR, act, rows, cols, hz, ha, hy);
    pair Z = pair_from(hz, n), A = pair_from(ha, n), G = pair_random(n, -1, 1);
    pair delta = delta_aliases_g ? G : pair_alloc(n), db = pair_alloc((size_t)rows);
    if (!delta_aliases_g) poison(delta);
    poison(db);
    int needs_z = cumlp__activation_needs_z(act);
    CHECK_OK(ref->ops->activation_backward(ref, act, 0.01, rows, cols, G.r, needs_z ? Z.r : NULL,
                                           needs_z ? NULL : A.r, delta.r, db.r, 1.0 / cols));
    CHECK_OK(gpu->ops->activation_backward(gpu, act, 0.01, rows, cols, G.g, needs_z ? Z.g : NULL,
                                           needs_z ? NULL : A.g, delta.g, db.g, 1.0 / cols));
    double ed = pair_error(delta), eb = pair_error(db);
    CHECK_MSG(ed <= 1e-5 && eb <= 1e-5, "activation_backward act=%d %dx%d: delta %g, db %g", act,
              rows, cols, ed, eb);
    pair_free(Z);
    pair_free(A);
    if (!delta_aliases_g) pair_free(delta);
    pair_free(G);
    pair_free(db);
    free(hz);
    free(ha);
    free(hy);
}

static void test_activation_backward(void) {
    for (int act = CUMLP_ACT_IDENTITY; act <= CUMLP_ACT_GELU; act++)
        for (int r = 0; r < COUNT(rows_list); r++)
            for (int c = 0; c < COUNT(cols_list); c += 1 + (r % 2))
                backward_case(act, rows_list[r], cols_list[c], (r + c) % 2);
    backward_case(CUMLP_ACT_RELU, 1025, 16385, 1); /* past the chunk cap, in place */
    backward_case(CUMLP_ACT_GELU, 4096, 65, 0);
}

/* ---- optimizer, random, helpers ------------------------------------------------------------ */

static void test_optimizer_step(void) {
    const size_t counts[] = {1, 3, 4, 1001, 65539};
    for (int type = CUMLP_OPT_SGD; type <= CUMLP_OPT_ADAM; type++)
        for (int c = 0; c < COUNT(counts); c++) {
            size_t n = counts[c];
            pair w = pair_random(n, -1, 1), s1 = pair_random(n, 0, 0), s2 = pair_random(n, 0, 0);
            for (int step = 1; step <= 3; step++) {
                pair g = pair_random(n, -1, 1);
                cumlp_step_params p = {type,
                                       0.05,
                                       0.9,
                                       1e-3,
                                       0.9,
                                       0.999,
                                       1e-8,
                                       1 - pow(0.9, step),
                                       1 - pow(0.999, step)};
                int uses1 = type != CUMLP_OPT_SGD, uses2 = type == CUMLP_OPT_ADAM;
                CHECK_OK(ref->ops->optimizer_step(ref, &p, n, w.r, g.r, uses1 ? s1.r : NULL,
                                                  uses2 ? s2.r : NULL));
                CHECK_OK(gpu->ops->optimizer_step(gpu, &p, n, w.g, g.g, uses1 ? s1.g : NULL,
                                                  uses2 ? s2.g : NULL));
                pair_free(g);
            }
            double ew = pair_error(w), e1 = pair_error(s1), e2 = pair_error(s2);
            CHECK_MSG(ew <= 1e-5 && e1 <= 1e-5 && e2 <= 1e-5,
                      "optimizer type %d count %zu: w %g, s1 %g, s2 %g", type, n, ew, e1, e2);
            pair_free(w);
            pair_free(s1);
            pair_free(s2);
        }
}

/* Device draws against src/backends/rng.c: uniform bit for bit; normal within 2 ulp (the device's
 * logf/sinf/cosf may differ from the host's in the last bit, see src/backends/rng.h). */
static void random_case(int normal, uint64_t seed, size_t count, size_t misalign) {
    void *buf = NULL;
    CHECK_OK(gpu->ops->alloc(gpu, count + misalign, &buf));
    void *out = cumlp__at(gpu, buf, misalign);
    CHECK_OK(gpu->ops->fill(gpu, out, count, NAN));
    CHECK_OK(
        gpu->ops->random(gpu, normal ? CUMLP_DIST_NORMAL : CUMLP_DIST_UNIFORM, seed, count, out));
    float *dev = test_alloc_floats(count), *host = test_alloc_floats(count);
    CHECK_OK(gpu->ops->download(gpu, out, dev, count));
    cumlp__philox_fill(seed, normal, count, host);
    size_t bad = 0, inexact = 0;
    for (size_t i = 0; i < count; i++) {
        if (memcmp(&dev[i], &host[i], sizeof(float)) == 0) continue;
        inexact++;
        int32_t a, b;
        memcpy(&a, &dev[i], 4);
        memcpy(&b, &host[i], 4);
        if (!normal || !isfinite(dev[i]) || (a < 0) != (b < 0) || llabs((long long)a - b) > 2)
            bad++;
    }
    CHECK_MSG(bad == 0, "random normal=%d seed %llu count %zu: %zu draws differ", normal,
              (unsigned long long)seed, count, bad);
    if (inexact > bad)
        printf("     normal draws: %zu of %zu differ from the host in the last bits\n", inexact,
               count);
    gpu->ops->free(gpu, buf);
    free(dev);
    free(host);
}

static void test_random(void) {
    const size_t counts[] = {1, 2, 3, 7, 1001, 262147, 1000001};
    for (int c = 0; c < COUNT(counts); c++)
        for (int normal = 0; normal <= 1; normal++) {
            random_case(normal, 42 + (uint64_t)c, counts[c], 0);
            random_case(normal, 0xdeadbeefcafef00dull, counts[c], 1); /* not 8-byte aligned */
        }
}

static void test_scale_shift(void) {
    const size_t counts[] = {1, 5, 1000, 262147};
    for (int c = 0; c < COUNT(counts); c++) {
        size_t n = counts[c];
        pair x = pair_random(n, 0, 1);
        CHECK_OK(ref->ops->scale_shift(ref, x.r, n, 0.2449489742783178, -0.1224744871391589));
        CHECK_OK(gpu->ops->scale_shift(gpu, x.g, n, 0.2449489742783178, -0.1224744871391589));
        float *a = test_alloc_floats(n), *b = test_alloc_floats(n);
        CHECK_OK(gpu->ops->download(gpu, x.g, a, n));
        CHECK_OK(ref->ops->download(ref, x.r, b, n));
        CHECK_MSG(memcmp(a, b, n * sizeof(float)) == 0, "scale_shift of %zu is not bit-exact", n);
        pair_free(x);
        free(a);
        free(b);
    }
}

static void test_check_finite(void) {
    const size_t counts[] = {1, 6, 4099, 1000003};
    const float bad_values[] = {NAN, INFINITY, -INFINITY};
    for (int c = 0; c < COUNT(counts); c++) {
        size_t n = counts[c];
        float *h = test_alloc_floats(n);
        test_fill_uniform(&rng, h, n, -1e30, 1e30);
        void *x = NULL;
        CHECK_OK(gpu->ops->alloc(gpu, n, &x));
        CHECK_OK(gpu->ops->upload(gpu, x, h, n));
        int finite = -1;
        CHECK_OK(gpu->ops->check_finite(gpu, x, n, &finite));
        CHECK(finite == 1);
        for (int v = 0; v < COUNT(bad_values); v++) {
            size_t at = (size_t)test_rng_below(&rng, (int64_t)n);
            float saved = h[at];
            h[at] = bad_values[v];
            CHECK_OK(gpu->ops->upload(gpu, x, h, n));
            CHECK_OK(gpu->ops->check_finite(gpu, x, n, &finite));
            CHECK_MSG(finite == 0, "%g at %zu of %zu not found", bad_values[v], at, n);
            h[at] = saved;
        }
        gpu->ops->free(gpu, x);
        free(h);
    }
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

static void test_describe(void) {
    char buf[512];
    CHECK_OK(cumlp_context_describe(gpu, buf, sizeof buf));
    CHECK(strstr(buf, "compute capability") != NULL);
    printf("     %s\n", buf);
}

int main(void) {
    gpu = test_context_or_skip(CUMLP_BACKEND_CUDA);
    ref = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    RUN(test_describe);
    RUN(test_upload_download_fill_copy);
    RUN(test_overlapped_upload);
    RUN(test_gemm_strict);
    RUN(test_gemm_tf32);
    RUN(test_bias_activation);
    RUN(test_loss_delta);
    RUN(test_bce_loss_of_confident_outputs);
    RUN(test_activation_backward);
    RUN(test_optimizer_step);
    RUN(test_random);
    RUN(test_scale_shift);
    RUN(test_check_finite);
    RUN(test_ranges);
    CHECK_OK(cumlp_context_synchronize(gpu));
    cumlp_context_destroy(gpu);
    cumlp_context_destroy(ref);
    return harness_finish();
}
