/* ctest-labels: unit gpu */
/*
 * test_backend_ops.c - the conformance suite (DESIGN.md, "Tests"), after ggml's
 * tests/test-backend-ops.cpp: every op of backend.h, and whole networks, on every backend
 * configuration built, against the double-precision reference backend.
 *
 * A configuration (`configs`) is a backend and a precision. A row (`rows`) is an op or a
 * whole-network check with its cases, held on each configuration to the bound row_tolerance()
 * gives it. A new backend or precision is a line in `configs` (and in `precision_bounds`); a new
 * op is a row with its case runner. Cases marked large (past the cuda reductions' chunk cap, or
 * over a million elements) run only where the configuration's large_cases says so.
 *
 * The same fp32 inputs go to both backends; every output is poisoned with NaN first (the
 * backend's fill), so an unwritten element fails, and NaN never passes. In BF16 and FP16 the dut
 * holds the buffers that backend.h puts in 16 bits (GEMM operands, the hidden layers' Z, A and
 * deltas) in that format: an input is rounded into it and the reference gets the rounded values,
 * so that each op is judged on its own arithmetic and the rounding of what it stores. Values are
 * judged by one metric: |dut - ref| <= rel m + abs, where m is the magnitude of the element's terms
 * (see each runner), at least |ref| and at least 1e-3 of the output's largest |ref|. Bit-level rows
 * (random draws, scale_shift, initial parameters, memory ops) count units in the last place.
 *
 * Each configuration ends with one summary line: every row's case count and its worst error as a
 * fraction of its bound. A cuda configuration without a device prints "skipped: ..." and the
 * others go on, unless CUMLP_TEST_REQUIRE_GPU=1 makes that a failure; with no backend but the
 * reference built, the test is skipped (77). CUMLP_TEST_CONFIGS=cuda (names, comma-separated)
 * runs only the configurations named.
 */
#include "harness.h"
#include "internal.h"
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a)    ((int)(sizeof(a) / sizeof((a)[0])))
#define LARGE       1
#define SLOPE       0.05 /* leaky ReLU */
#define CPU_THREADS 2    /* the cpu backend splits its passes even on a one-core machine */
#define STEPS       50   /* of each training trajectory */

/* ---- configurations and their bounds --------------------------------------------------------- */

typedef enum precision { FP32, TF32, BF16, FP16, PRECISION_COUNT } precision;

/* A result may be off by rel times the magnitude of its terms, plus abs. */
typedef struct bound {
    double rel, abs;
} bound;

static const bound precision_bounds[PRECISION_COUNT] = {
    [FP32] = {1e-5, 0}, /* DESIGN.md, "Numerics" */
    /* TF32 keeps 10 of fp32's 23 mantissa bits: each GEMM input is off by less than 2^-10 of
     * itself (truncated; 2^-11 if rounded), so each product a b by less than 2^-9 |a b|, twice
     * DESIGN.md's "about 2^-10 of sum |a||b|"; the fp32 sum adds at most k 2^-24 <= 2^-12 of it for
     * k <= 4096. 2^-8 covers both with room for cuBLAS's order of summation: a worst-case bound on
     * the terms' magnitude |alpha||op(A)||op(B)| + |beta||C|, not a statistical one. (Truncated
     * inputs summed in fp32, emulated on the CPU, reach 0.43 of it at k = 1, 0.02 at k = 4096.) */
    [TF32] = {0x1p-8, 0},
    /* 16-bit GEMM inputs and stored results, fp32 accumulation (DESIGN.md). A stored result is
     * off by half a unit of the format's last place, 2^-9 (bf16) or 2^-12 (fp16) of itself, a
     * small part of these bounds. */
    [BF16] = {1.6e-2, 1e-3},
    [FP16] = {2e-3, 1e-4},
};

typedef struct config {
    const char *name;
    int backend, precision;
    precision gemm, elementwise; /* what the GEMMs and the other ops compute in */
    /* Normal draws: the same Box-Muller in double everywhere, but a device's log, sin and cos may
     * round a draw to the float next to the host's, rarely (kernels/philox.h: at most about one
     * draw in 10^8). How many ulps such a draw may be off (1: the neighbouring float; 0 where the
     * host's own transform runs), and how many draws in a million may be off at all: 2, over 100
     * times the worst expected rate, so that a handful per million (a transform that is not the
     * host's) fails. */
    int normal_draw_ulps, normal_draws_off_per_million;
    int large_cases; /* 0 for a slow backend (a simulator): the cases marked large are left out */
} config;

/* The CUDA simulator (tests/cudasim) runs every CUDA thread as a fiber on the CPU: the large
 * cases would take minutes there, and a GPU runs them. */
#ifdef CUMLP_TEST_CUDA_SIM
#define CUDA_LARGE_CASES 0
#else
#define CUDA_LARGE_CASES 1
#endif

static const config configs[] = {
    {"cpu fp32", CUMLP_BACKEND_CPU, CUMLP_PRECISION_FP32, FP32, FP32, 0, 0, 1},
    {"cuda fp32", CUMLP_BACKEND_CUDA, CUMLP_PRECISION_FP32, FP32, FP32, 1, 2, CUDA_LARGE_CASES},
    /* TF32 changes only the GEMMs. */
    {"cuda tf32", CUMLP_BACKEND_CUDA, CUMLP_PRECISION_TF32, TF32, FP32, 1, 2, CUDA_LARGE_CASES},
    /* 16-bit operands and stored activations; the optimizer's rows stay fp32 (BY_MASTER). */
    {"cuda bf16", CUMLP_BACKEND_CUDA, CUMLP_PRECISION_BF16, BF16, BF16, 1, 2, CUDA_LARGE_CASES},
    {"cuda fp16", CUMLP_BACKEND_CUDA, CUMLP_PRECISION_FP16, FP16, FP16, 1, 2, CUDA_LARGE_CASES},
};

typedef enum judged_by {
    BY_GEMM_PRECISION,        /* the bound of the configuration's GEMM precision */
    BY_ELEMENTWISE_PRECISION, /* of the precision of its other ops */
    BY_MASTER_PRECISION,      /* fp32's in every precision: the master weights, optimizer state */
    BY_BITS,                  /* bit-identical on every configuration */
    BY_BITS_16,               /* bit-identical, on the configurations with 16-bit formats only */
    BY_NORMAL_DRAWS,          /* within the configuration's normal_draw_ulps and off rate */
    BY_NORMAL_PARAMETERS      /* normal draws through scale_shift (see row_tolerance) */
} judged_by;

typedef struct row {
    const char *name;
    void (*run)(void); /* runs every case, each comparison through judge() */
    judged_by judged_by;
    /* A row whose error is not one op's (a trajectory, a rule that amplifies rounding) has its own
     * bound in fp32 and no bound, so no run, at other precisions until a model gives one. */
    const bound *own_fp32;
} row;

/* The bound a row is held to on a configuration. */
typedef struct tolerance {
    int runs;    /* 0: the row has no bound on this configuration */
    bound value; /* for values */
    int ulps;    /* for bit-level rows: how many units in the last place apart (0: identical) */
    int off_per_million; /* and how many elements in a million may be apart at all */
} tolerance;

static tolerance row_tolerance(const row *r, const config *c) {
    tolerance t = {1, {0, 0}, 0, 0};
    precision p = r->judged_by == BY_GEMM_PRECISION     ? c->gemm
                  : r->judged_by == BY_MASTER_PRECISION ? FP32
                                                        : c->elementwise;
    switch (r->judged_by) {
    case BY_GEMM_PRECISION:
    case BY_ELEMENTWISE_PRECISION:
    case BY_MASTER_PRECISION:
        t.runs = !r->own_fp32 || p == FP32;
        t.value = r->own_fp32 ? *r->own_fp32 : precision_bounds[p];
        break;
    case BY_BITS:
        break;
    case BY_BITS_16:
        t.runs = cumlp__precision_storage(c->precision) != CUMLP_STORAGE_NATIVE;
        break;
    case BY_NORMAL_DRAWS:
        t.ulps = c->normal_draw_ulps;
        t.off_per_million = c->normal_draws_off_per_million;
        break;
    case BY_NORMAL_PARAMETERS:
        /* A draw k ulps off, times sigma, is less than 2k ulps of the product off (the product's
         * ulp is more than half the draw's times sigma), and rounding both adds one. A draw that
         * is not off gives the same weight (scale_shift is bit-identical): the same rate. */
        t.ulps = c->normal_draw_ulps ? 2 * c->normal_draw_ulps + 1 : 0;
        t.off_per_million = c->normal_draws_off_per_million;
        break;
    }
    return t;
}

/* ---- the running configuration, row and case ------------------------------------------------- */

static cumlp_context *dut, *ref; /* the backend under test and the reference */
static const config *cfg;
static int work; /* the format of the dut's work buffers (backend.h) in cfg's precision */
static tolerance tol;
static struct {
    int cases, large_left_out, known_bugs;
    double worst;         /* largest error / bound, known bugs left out */
    size_t off, compared; /* elements apart at all, of those compared by off_ratio */
} stats;
static char case_name[160];
static test_rng rng = {20240611u};

/* Starts a case: names it for failure messages and counts it. */
static void begin_case(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void begin_case(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(case_name, sizeof case_name, fmt, ap);
    va_end(ap);
    stats.cases++;
}

/* Library bugs this suite found that are not fixed yet. Their comparison still runs and must
 * still fail, so that the fix removes its line here; meanwhile it is reported, not failed. */
typedef struct known_bug {
    int backend;
    const char *case_name, *what, *why;
} known_bug;

static const known_bug known_bugs[] = {
    {0, NULL, NULL, NULL}, /* the end (the list may be empty) */
};

static const known_bug *known_bug_of(const char *what) {
    for (const known_bug *b = known_bugs; b->case_name; b++) {
        if (b->backend == cfg->backend && strcmp(b->case_name, case_name) == 0 &&
            strcmp(b->what, what) == 0)
            return b;
    }
    return NULL;
}

/* One comparison of the running case: its error as a fraction of its bound (<= 1 passes). */
static void judge(const char *what, double ratio) {
    if (isnan(ratio)) ratio = INFINITY;
    const known_bug *bug = known_bug_of(what);
    if (bug) {
        printf("     known bug: %s: %s: %s: error %.3g times its bound: %s\n", cfg->name, case_name,
               what, ratio, bug->why);
        CHECK_MSG(ratio > 1, "%s: %s: %s passes now: remove it from known_bugs", cfg->name,
                  case_name, what);
        stats.known_bugs++;
        return;
    }
    CHECK_MSG(ratio <= 1, "%s: %s: %s: error %.3g times its bound", cfg->name, case_name, what,
              ratio);
    stats.worst = fmax(stats.worst, ratio);
}

/* Whether to leave out a case: a large one on a configuration without large cases. */
static int left_out(int large) {
    if (!large || cfg->large_cases) return 0;
    stats.large_left_out++;
    return 1;
}

/* ---- the metrics ----------------------------------------------------------------------------- */

/* |d - r| over the bound for an element whose terms have magnitude m; NaN or Inf: INFINITY. */
static double value_ratio(double d, double r, double m) {
    if (!isfinite(d) || !isfinite(r)) return INFINITY;
    double error = fabs(d - r);
    return error == 0 ? 0 : error / (tol.value.rel * m + tol.value.abs);
}

/* Worst value_ratio over a rows x cols block with leading dimension ld. Each element's magnitude
 * is that of its terms (terms, same layout, may be NULL), at least |r|, and at least 1e-3 of the
 * block's largest |r|: entries a thousand times smaller are judged on the block's scale (the
 * convention of cumlp_gradient_check). */
static double block_ratio(const float *d, const float *r, const double *terms, size_t rows,
                          size_t cols, size_t ld) {
    double largest = 0, worst = 0;
    for (size_t j = 0; j < cols; j++)
        for (size_t i = 0; i < rows; i++)
            largest = fmax(largest, fabs((double)r[i + j * ld]));
    double floor = fmax(1e-3 * largest, 1e-30);
    for (size_t j = 0; j < cols; j++) {
        for (size_t i = 0; i < rows; i++) {
            size_t at = i + j * ld;
            double m = fmax(fabs((double)r[at]), floor);
            if (terms) m = fmax(m, terms[at]);
            worst = fmax(worst, value_ratio(d[at], r[at], m));
        }
    }
    return worst;
}

/* Units in the last place between two floats; INFINITY if either is NaN or Inf. */
static double ulps_apart(float a, float b) {
    if (!isfinite(a) || !isfinite(b)) return INFINITY;
    if (a == b) return 0;
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    if ((ia < 0) != (ib < 0)) return INFINITY; /* no draw or weight crosses zero by an ulp */
    return fabs((double)ia - (double)ib);
}

/* x rounded to nearest even into a 16-bit format and widened back, by the definition (11 or 8
 * significant bits, gradual underflow below the smallest normal, past the largest finite value
 * Inf): an oracle of the rounding that owes nothing to CUDA's headers. NaN stays NaN. */
static float round_to_storage(int storage, float x) {
    if (isnan(x) || isinf(x)) return x;
    int fp16 = storage == CUMLP_STORAGE_FP16;
    int significant = fp16 ? 11 : 8, min_exponent = fp16 ? -14 : -126;
    double largest = fp16 ? 65504.0 : 0x1.fep127, a = fabs((double)x);
    int exponent = a == 0 ? min_exponent : ilogb(a);
    if (exponent < min_exponent) exponent = min_exponent;
    double quantum = ldexp(1.0, exponent - (significant - 1));
    double rounded = nearbyint(a / quantum) * quantum; /* the default mode: ties to even */
    if (rounded > largest) return copysignf(INFINITY, x);
    return copysignf((float)rounded, x);
}

/* 0 if every got[i] is round_to_storage(work, x[i]) bit for bit (any NaN for NaN), else
 * INFINITY. */
static double rounding_ratio(const float *x, const float *got, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float want = round_to_storage(work, x[i]);
        if (isnan(want) ? !isnan(got[i]) : memcmp(&want, &got[i], sizeof want) != 0)
            return INFINITY;
    }
    return 0;
}

/* Worst ulps_apart over n floats as a fraction of the row's ulps (0 allowed: 0 or INFINITY). */
static double bits_ratio(const float *d, const float *r, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, ulps_apart(d[i], r[i]));
    if (worst == 0) return 0;
    return tol.ulps ? worst / tol.ulps : INFINITY;
}

/* How many of n floats differ at all, over how many the row allows (its rate per million, rounded
 * up: at least one in a case of any size when the rate is not 0); 0 allowed: 0 or INFINITY. */
static double off_ratio(const float *d, const float *r, size_t n) {
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        off += memcmp(&d[i], &r[i], sizeof d[i]) != 0;
    stats.off += off;
    stats.compared += n;
    if (off == 0) return 0;
    size_t allowed = ((size_t)tol.off_per_million * n + 999999) / 1000000;
    return allowed ? (double)off / (double)allowed : INFINITY;
}

/* ---- buffers on both backends ---------------------------------------------------------------- */

/* ---- the dut's buffers in any format ----------------------------------------------------------
 */

/* Writes n host floats into a dut buffer of format `storage` (through an fp32 scratch buffer and
 * the convert op for a 16-bit one, which rounds them). */
static void dut_put(int storage, void *buffer, const float *host, size_t n) {
    if (storage == CUMLP_STORAGE_NATIVE) {
        CHECK_OK(dut->ops->upload(dut, buffer, host, n));
        return;
    }
    void *scratch = NULL;
    CHECK_OK(dut->ops->alloc(dut, n, &scratch));
    CHECK_OK(dut->ops->upload(dut, scratch, host, n));
    CHECK_OK(dut->ops->convert(dut, buffer, storage, scratch, CUMLP_STORAGE_NATIVE, n));
    dut->ops->free(dut, scratch);
}

/* Reads n elements of a dut buffer of format `storage` as floats. */
static void dut_get(int storage, const void *buffer, float *host, size_t n) {
    if (storage == CUMLP_STORAGE_NATIVE) {
        CHECK_OK(dut->ops->download(dut, buffer, host, n));
        return;
    }
    void *scratch = NULL;
    CHECK_OK(dut->ops->alloc(dut, n, &scratch));
    CHECK_OK(dut->ops->convert(dut, scratch, CUMLP_STORAGE_NATIVE, buffer, storage, n));
    CHECK_OK(dut->ops->download(dut, scratch, host, n));
    dut->ops->free(dut, scratch);
}

/* ---- buffers on both backends ---------------------------------------------------------------- */

/* n elements on the dut, in format `storage`, and on the reference (doubles). */
typedef struct twin {
    void *dut, *ref;
    size_t n;
    int storage;
} twin;

static twin twin_new_in(int storage, size_t n) {
    twin t = {NULL, NULL, n, storage};
    if (dut->ops->alloc(dut, cumlp__storage_native_count(dut, storage, n), &t.dut) !=
            CUMLP_SUCCESS ||
        ref->ops->alloc(ref, n, &t.ref) != CUMLP_SUCCESS) {
        fprintf(stderr, "test: backend alloc of %zu elements failed\n", n);
        abort();
    }
    return t;
}

static void twin_free(twin t) {
    dut->ops->free(dut, t.dut);
    ref->ops->free(ref, t.ref);
}

/* The same values on both sides: in a 16-bit buffer, the dut rounds them, and the reference gets
 * the rounded values. */
static void twin_upload(twin t, const float *host) {
    dut_put(t.storage, t.dut, host, t.n);
    if (t.storage == CUMLP_STORAGE_NATIVE) {
        CHECK_OK(ref->ops->upload(ref, t.ref, host, t.n));
        return;
    }
    float *rounded = test_alloc_floats(t.n);
    dut_get(t.storage, t.dut, rounded, t.n);
    CHECK_OK(ref->ops->upload(ref, t.ref, rounded, t.n));
    free(rounded);
}

static void twin_fill(twin t, float value) {
    if (t.storage == CUMLP_STORAGE_NATIVE) {
        CHECK_OK(dut->ops->fill(dut, t.dut, t.n, value));
        CHECK_OK(ref->ops->fill(ref, t.ref, t.n, value));
        return;
    }
    float *host = test_alloc_floats(t.n);
    for (size_t i = 0; i < t.n; i++)
        host[i] = value;
    twin_upload(t, host);
    free(host);
}

/* An output buffer, NaN until the op writes it. */
static twin twin_poisoned_in(int storage, size_t n) {
    twin t = twin_new_in(storage, n);
    twin_fill(t, NAN);
    return t;
}

static twin twin_poisoned(size_t n) {
    return twin_poisoned_in(CUMLP_STORAGE_NATIVE, n);
}

static twin twin_from_in(int storage, const float *host, size_t n) {
    twin t = twin_new_in(storage, n);
    twin_upload(t, host);
    return t;
}

static twin twin_from(const float *host, size_t n) {
    return twin_from_in(CUMLP_STORAGE_NATIVE, host, n);
}

/* Uniform values in [lo, hi). */
static twin twin_random_in(int storage, size_t n, double lo, double hi) {
    float *host = test_alloc_floats(n);
    test_fill_uniform(&rng, host, n, lo, hi);
    twin t = twin_from_in(storage, host, n);
    free(host);
    return t;
}

static twin twin_random(size_t n, double lo, double hi) {
    return twin_random_in(CUMLP_STORAGE_NATIVE, n, lo, hi);
}

/* A view of t from element `offset` on both sides (freed with t, not itself): an operand that is
 * not aligned as an allocation is, as a weight matrix inside the parameter arena often is. */
static twin twin_from_offset(twin t, size_t offset) {
    twin view = {cumlp__at_storage(dut, t.dut, t.storage, offset), cumlp__at(ref, t.ref, offset),
                 t.n - offset, t.storage};
    return view;
}

static float *dut_floats(twin t) {
    float *host = test_alloc_floats(t.n);
    dut_get(t.storage, t.dut, host, t.n);
    return host;
}

static float *ref_floats(twin t) {
    float *host = test_alloc_floats(t.n);
    CHECK_OK(ref->ops->download(ref, t.ref, host, t.n));
    return host;
}

/* Gives the dut the reference's contents rounded to fp32 (and into its 16-bit format, if t has
 * one), and the reference the same rounded values, so that both sides of the next op see one
 * input. */
static void twin_share_ref(twin t) {
    float *host = ref_floats(t);
    twin_upload(t, host);
    free(host);
}

/* A reference buffer of |x| for the reference side of t (the caller frees it). */
static void *ref_abs(twin t) {
    double *host = malloc(t.n * sizeof *host);
    void *out = NULL;
    if (!host || ref->ops->alloc(ref, t.n, &out) != CUMLP_SUCCESS) abort();
    CHECK_OK(ref->ops->download_f64(ref, t.ref, host, t.n));
    for (size_t i = 0; i < t.n; i++)
        host[i] = fabs(host[i]);
    CHECK_OK(ref->ops->upload_f64(ref, out, host, t.n));
    free(host);
    return out;
}

/* A reference buffer's n values (the caller frees them). */
static double *ref_doubles(const void *buffer, size_t n) {
    double *host = malloc(n * sizeof *host);
    if (!host) abort();
    CHECK_OK(ref->ops->download_f64(ref, buffer, host, n));
    return host;
}

/* Error of the dut side against the reference side, each element judged on terms (or NULL). */
static double twin_ratio(twin t, const double *terms) {
    float *d = dut_floats(t), *r = ref_floats(t);
    double ratio = block_ratio(d, r, terms, t.n, 1, t.n);
    free(d);
    free(r);
    return ratio;
}

static double twin_bits_ratio(twin t) {
    float *d = dut_floats(t), *r = ref_floats(t);
    double ratio = bits_ratio(d, r, t.n);
    free(d);
    free(r);
    return ratio;
}

/* ---- shapes ---------------------------------------------------------------------------------- */

/* Layer widths and batch sizes: 1, odd sizes, sizes that are no multiple of a vector width, a
 * warp, a block or a tile, and batches up to 4096. Case i of a sweep takes width i and a batch
 * that runs through every size within COUNT(widths) cases (3 and COUNT(batches) are coprime);
 * `offset` pairs them differently from sweep to sweep. */
static const int widths[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 65, 100, 129, 257};
static const int batches[] = {1, 2, 3, 5, 17, 31, 64, 127, 129, 256, 333, 1000, 1024, 4096};

static int sweep_rows(int i) {
    return widths[i % COUNT(widths)];
}

static int sweep_cols(int i, int offset) {
    return batches[(3 * i + offset) % COUNT(batches)];
}

/* ---- gemm ------------------------------------------------------------------------------------ */

typedef struct gemm_case {
    int trans_a, trans_b, m, n, k;
    double alpha, beta; /* beta == 0: C is poisoned, and must not be read */
    int pad;            /* added to every leading dimension */
} gemm_case;

/* The magnitude of each element's terms, |alpha| |op(A)| |op(B)| + |beta| |C|, computed by the
 * reference from |A|, |B|, |C| before the GEMM overwrites C. */
static void *gemm_terms(const gemm_case *c, twin A, twin B, twin C, int lda, int ldb, int ldc) {
    void *abs_a = ref_abs(A), *abs_b = ref_abs(B), *abs_c = ref_abs(C);
    CHECK_OK(ref->ops->gemm(ref, c->trans_a, c->trans_b, c->m, c->n, c->k, fabs(c->alpha), abs_a,
                            lda, abs_b, ldb, fabs(c->beta), abs_c, ldc, CUMLP_STORAGE_NATIVE,
                            CUMLP_STORAGE_NATIVE));
    ref->ops->free(ref, abs_a);
    ref->ops->free(ref, abs_b);
    return abs_c;
}

/* 0 if the rows of C past m (the padding) are as they were, bit for bit; else INFINITY. */
static double padding_ratio(const float *before, const float *after, int m, int n, int ldc) {
    for (int j = 0; j < n; j++) {
        size_t at = (size_t)j * ldc + m;
        if (memcmp(before + at, after + at, (size_t)(ldc - m) * sizeof *after) != 0)
            return INFINITY;
    }
    return 0;
}

/* A and B in the configuration's format; C too, but in BF16 and FP16 every other case takes an
 * fp32 C (network.c's dW and output layer). */
static void gemm_run(const gemm_case *c) {
    int c_storage = work != CUMLP_STORAGE_NATIVE && stats.cases % 2 ? CUMLP_STORAGE_NATIVE : work;
    begin_case("gemm %c%c m=%d n=%d k=%d alpha=%g beta=%g pad=%d%s", c->trans_a ? 'T' : 'N',
               c->trans_b ? 'T' : 'N', c->m, c->n, c->k, c->alpha, c->beta, c->pad,
               c_storage != work ? " C fp32" : "");
    int lda = (c->trans_a ? c->k : c->m) + c->pad, ldb = (c->trans_b ? c->n : c->k) + c->pad;
    int ldc = c->m + c->pad;
    twin A = twin_random_in(work, (size_t)lda * (c->trans_a ? c->m : c->k), -1, 1);
    twin B = twin_random_in(work, (size_t)ldb * (c->trans_b ? c->k : c->n), -1, 1);
    twin C = twin_random_in(c_storage, (size_t)ldc * c->n, -1, 1);
    if (c->beta == 0) twin_fill(C, NAN);
    void *terms_buffer = gemm_terms(c, A, B, C, lda, ldb, ldc);
    float *before = dut_floats(C);
    CHECK_OK(dut->ops->gemm(dut, c->trans_a, c->trans_b, c->m, c->n, c->k, c->alpha, A.dut, lda,
                            B.dut, ldb, c->beta, C.dut, ldc, work, c_storage));
    CHECK_OK(ref->ops->gemm(ref, c->trans_a, c->trans_b, c->m, c->n, c->k, c->alpha, A.ref, lda,
                            B.ref, ldb, c->beta, C.ref, ldc, CUMLP_STORAGE_NATIVE,
                            CUMLP_STORAGE_NATIVE));
    float *d = dut_floats(C), *r = ref_floats(C);
    double *terms = ref_doubles(terms_buffer, C.n);
    judge("C", block_ratio(d, r, terms, (size_t)c->m, (size_t)c->n, (size_t)ldc));
    if (c->pad) judge("the padding rows of C", padding_ratio(before, d, c->m, c->n, ldc));
    free(terms);
    free(before);
    free(d);
    free(r);
    ref->ops->free(ref, terms_buffer);
    twin_free(A);
    twin_free(B);
    twin_free(C);
}

static const gemm_case gemm_cases[] = {
    {0, 1, 33, 100, 4096, 1.0 / 4096, 0, 0}, /* dW = delta A^T / B over a batch of 4096 */
    {1, 0, 100, 4096, 33, 1, 0, 0},          /* W^T delta over that batch */
    {0, 0, 257, 1024, 129, -1, 1, 5},        /* accumulating into padded C */
};

static void row_gemm(void) {
    static const double alphas[] = {1, 0.37, -1.0 / 7}, betas[] = {0, 0.5, 0, 1};
    /* Every width as m, and as k, in each transposition, against every batch size as n. */
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < COUNT(widths); i++) {
            gemm_case c = {t & 1,
                           t >> 1,
                           sweep_rows(i),
                           sweep_cols(i, 5 * t),
                           sweep_rows(7 * i + 3 * t + 5),
                           alphas[i % 3],
                           betas[(i + t) % 4],
                           i % 4 == 1 ? 3 : 0};
            gemm_run(&c);
        }
    }
    /* Roughly square products, each size as m, n and k. */
    static const int dims[] = {1, 3, 17, 64, 129, 257};
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < COUNT(dims); i++) {
            int a = dims[i], b = dims[(i + 2) % COUNT(dims)], k = dims[(i + 4) % COUNT(dims)];
            gemm_case c1 = {t & 1, t >> 1, a, b, k, 1, 0, 0},
                      c2 = {t & 1, t >> 1, b, a, k, 1.0 / 7, 0.5, 0};
            gemm_run(&c1);
            gemm_run(&c2);
        }
    }
    for (int i = 0; i < COUNT(gemm_cases); i++)
        gemm_run(&gemm_cases[i]);
}

/* ---- bias_activation ------------------------------------------------------------------------- */

/* Where Z and A go: backend.h lets z_out alias P, and a_out alias P when z_out is NULL. */
enum { SEPARATE_Z_AND_A, A_ALIASES_P, Z_ALIASES_P, NO_Z, ALIASING_COUNT };

typedef struct bias_activation_case {
    int activation, rows, cols, aliasing, large;
} bias_activation_case;

static void bias_activation_run(const bias_activation_case *c) {
    if (left_out(c->large)) return;
    static const char *aliasing_names[] = {"", " A aliases P", " Z aliases P", " no Z"};
    begin_case("bias_activation act=%d %dx%d%s", c->activation, c->rows, c->cols,
               aliasing_names[c->aliasing]);
    size_t n = (size_t)c->rows * c->cols;
    twin P = twin_random_in(work, n, -3, 3), b = twin_random((size_t)c->rows, -1, 1);
    twin Z = c->aliasing == SEPARATE_Z_AND_A ? twin_poisoned_in(work, n) : P;
    twin A = c->aliasing == A_ALIASES_P ? P : twin_poisoned_in(work, n);
    int with_z = c->aliasing == SEPARATE_Z_AND_A || c->aliasing == Z_ALIASES_P;
    CHECK_OK(dut->ops->bias_activation(dut, work, c->activation, SLOPE, c->rows, c->cols, P.dut,
                                       b.dut, with_z ? Z.dut : NULL, A.dut));
    CHECK_OK(ref->ops->bias_activation(ref, CUMLP_STORAGE_NATIVE, c->activation, SLOPE, c->rows,
                                       c->cols, P.ref, b.ref, with_z ? Z.ref : NULL, A.ref));
    /* Relative to A itself: GELU's Phi is 0.5 erfc(-z / sqrt 2), which does not cancel. */
    judge("A", twin_ratio(A, NULL));
    if (with_z) judge("Z", twin_ratio(Z, NULL));
    if (c->aliasing == SEPARATE_Z_AND_A) twin_free(Z);
    if (c->aliasing != A_ALIASES_P) twin_free(A);
    twin_free(P);
    twin_free(b);
}

static const bias_activation_case bias_activation_cases[] = {
    {CUMLP_ACT_SOFTMAX, 1000, 37, SEPARATE_Z_AND_A, 0}, /* wide softmax: the lanes loop */
    {CUMLP_ACT_RELU, 33, 4096, A_ALIASES_P, 0},
    {CUMLP_ACT_SOFTMAX, 4096, 33, A_ALIASES_P, LARGE}, /* in place, 128 elements per lane */
    {CUMLP_ACT_GELU, 1025, 16385, Z_ALIASES_P, LARGE}, /* past the reductions' chunk cap */
};

static void row_bias_activation(void) {
    for (int act = CUMLP_ACT_IDENTITY; act <= CUMLP_ACT_SOFTMAX; act++) {
        for (int i = 0; i < COUNT(widths); i++) {
            bias_activation_case c = {act, sweep_rows(i), sweep_cols(i, 5 * act),
                                      (i + act) % ALIASING_COUNT, 0};
            bias_activation_run(&c);
        }
    }
    for (int i = 0; i < COUNT(bias_activation_cases); i++)
        bias_activation_run(&bias_activation_cases[i]);
}

/* ---- activation_backward --------------------------------------------------------------------- */

/* Z and A = f(Z) computed by the reference from P + b (random, or from p_host with b = 0), shared
 * with the dut rounded to fp32, in format `storage` on the dut (then each rounded on its own). */
static void forward_pair(int storage, int activation, int rows, int cols, const float *p_host,
                         twin *Z, twin *A) {
    size_t n = (size_t)rows * cols;
    twin P = p_host ? twin_from(p_host, n) : twin_random(n, -3, 3);
    twin b = twin_random((size_t)rows, -1, 1);
    if (p_host) twin_fill(b, 0);
    *Z = twin_new_in(storage, n);
    *A = twin_new_in(storage, n);
    CHECK_OK(ref->ops->bias_activation(ref, CUMLP_STORAGE_NATIVE, activation, SLOPE, rows, cols,
                                       P.ref, b.ref, Z->ref, A->ref));
    twin_share_ref(*Z);
    twin_share_ref(*A);
    twin_free(P);
    twin_free(b);
}

/* |x| of the reference side of t, as host doubles. */
static double *abs_terms(twin t) {
    double *terms = ref_doubles(t.ref, t.n);
    for (size_t i = 0; i < t.n; i++)
        terms[i] = fabs(terms[i]);
    return terms;
}

/* A bias gradient's terms: db_scale * sum_j |delta(i, j)|, from the reference delta. */
static double *bias_terms(twin delta, int rows, int cols, double db_scale) {
    double *d = ref_doubles(delta.ref, delta.n), *terms = calloc((size_t)rows, sizeof *terms);
    if (!terms) abort();
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < rows; i++)
            terms[i] += fabs(d[(size_t)j * rows + i]) * db_scale;
    free(d);
    return terms;
}

/* delta and db of an activation_backward or loss_delta case against the reference. */
static void judge_delta_and_db(twin delta, const double *delta_terms, const twin *db, int rows,
                               int cols, double db_scale) {
    judge("delta", twin_ratio(delta, delta_terms));
    if (!db) return;
    double *terms = bias_terms(delta, rows, cols, db_scale);
    judge("db", twin_ratio(*db, terms));
    free(terms);
}

/* UNALIGNED: G (and delta with it when it aliases G) start one element into their memory, so
 * that no wide access may be used on them. */
enum { DELTA_ALIASES_G = 1, BOTH_Z_AND_A = 2, UNALIGNED = 4 };

typedef struct backward_case {
    int activation, rows, cols, variant, large;
} backward_case;

static void backward_run(const backward_case *c) {
    if (left_out(c->large)) return;
    begin_case("activation_backward act=%d %dx%d%s%s%s", c->activation, c->rows, c->cols,
               c->variant & DELTA_ALIASES_G ? " delta aliases G" : "",
               c->variant & BOTH_Z_AND_A ? " with Z and A" : "",
               c->variant & UNALIGNED ? " G one element in" : "");
    twin Z, A;
    forward_pair(work, c->activation, c->rows, c->cols, NULL, &Z, &A);
    size_t skip = c->variant & UNALIGNED ? 1 : 0;
    twin G_memory = twin_random_in(work, Z.n + skip, -1, 1), db = twin_poisoned((size_t)c->rows);
    twin G = twin_from_offset(G_memory, skip);
    twin delta = c->variant & DELTA_ALIASES_G ? G : twin_poisoned_in(work, Z.n);
    /* Every f' here is O(1), but 1 - a^2 (tanh) and GELU's Phi + z phi cancel: an element is
     * judged on the size of its terms, |g|, as a GEMM is on |A||B|. */
    double *terms = abs_terms(G);
    /* The op needs only one of Z and A; the other may be NULL. */
    int needs_z = cumlp__activation_needs_z(c->activation), both = c->variant & BOTH_Z_AND_A;
    int with_z = needs_z || both, with_a = !needs_z || both;
    double db_scale = 1.0 / c->cols;
    CHECK_OK(dut->ops->activation_backward(dut, work, c->activation, SLOPE, c->rows, c->cols, G.dut,
                                           with_z ? Z.dut : NULL, with_a ? A.dut : NULL, delta.dut,
                                           db.dut, db_scale));
    CHECK_OK(ref->ops->activation_backward(ref, CUMLP_STORAGE_NATIVE, c->activation, SLOPE, c->rows,
                                           c->cols, G.ref, with_z ? Z.ref : NULL,
                                           with_a ? A.ref : NULL, delta.ref, db.ref, db_scale));
    judge_delta_and_db(delta, terms, &db, c->rows, c->cols, db_scale);
    free(terms);
    if (!(c->variant & DELTA_ALIASES_G)) twin_free(delta);
    twin_free(Z);
    twin_free(A);
    twin_free(G_memory);
    twin_free(db);
}

static const backward_case backward_cases[] = {
    {CUMLP_ACT_GELU, 4096, 65, 0, 0},
    {CUMLP_ACT_RELU, 64, 33, UNALIGNED, 0}, /* rows a multiple of 4, memory not aligned */
    {CUMLP_ACT_TANH, 128, 20, UNALIGNED | DELTA_ALIASES_G, 0},
    {CUMLP_ACT_RELU, 1025, 16385, DELTA_ALIASES_G, LARGE}, /* past the chunk cap, in place */
};

static void row_activation_backward(void) {
    for (int act = CUMLP_ACT_IDENTITY; act <= CUMLP_ACT_GELU; act++) {
        for (int i = 0; i < COUNT(widths); i++) {
            backward_case c = {act, sweep_rows(i), sweep_cols(i, 3 * act + 1), i % 4, 0};
            backward_run(&c);
        }
    }
    for (int i = 0; i < COUNT(backward_cases); i++)
        backward_run(&backward_cases[i]);
}

/* ---- GEMM epilogues (backend.h's optional group; cuda) --------------------------------------- */

/* The largest |f'| of ReLU (1) and of either GELU (about 1.129, near z = 1.5): how much an error
 * in Z can grow through f. */
#define EPILOGUE_SLOPE_MAX 1.13

/* f and f' of an epilogue as the dut computes them: ReLU, or GELU, the tanh approximation where
 * the backend says that its epilogues compute that one. */
static double epilogue_f(int activation, double z) {
    if (activation == CUMLP_ACT_RELU) return z > 0 ? z : 0;
    return dut->ops->gelu_tanh ? cumlp_gelu_tanh_d(z) : cumlp_gelu_d(z);
}

static double epilogue_deriv(int activation, double z) {
    if (activation == CUMLP_ACT_RELU) return z > 0 ? 1 : 0;
    return dut->ops->gelu_tanh ? cumlp_gelu_tanh_deriv_d(z) : cumlp_gelu_deriv_d(z);
}

/* The reference's op(A) B (rows x n, inner dimension `inner`) and its terms |op(A)| |B|, as host
 * doubles (the caller frees both). */
static void reference_product(int trans_a, int rows, int n, int inner, twin A, int lda, twin B,
                              double **product, double **terms) {
    size_t count = (size_t)rows * n;
    void *p = NULL, *abs_p = NULL, *abs_a = ref_abs(A), *abs_b = ref_abs(B);
    CHECK_OK(ref->ops->alloc(ref, count, &p));
    CHECK_OK(ref->ops->alloc(ref, count, &abs_p));
    CHECK_OK(ref->ops->gemm(ref, trans_a, 0, rows, n, inner, 1.0, A.ref, lda, B.ref, inner, 0.0, p,
                            rows, CUMLP_STORAGE_NATIVE, CUMLP_STORAGE_NATIVE));
    CHECK_OK(ref->ops->gemm(ref, trans_a, 0, rows, n, inner, 1.0, abs_a, lda, abs_b, inner, 0.0,
                            abs_p, rows, CUMLP_STORAGE_NATIVE, CUMLP_STORAGE_NATIVE));
    *product = ref_doubles(p, count);
    *terms = ref_doubles(abs_p, count);
    ref->ops->free(ref, p);
    ref->ops->free(ref, abs_p);
    ref->ops->free(ref, abs_a);
    ref->ops->free(ref, abs_b);
}

/* 0 if every element of t (on the dut) is still the NaN it was poisoned with, else INFINITY: an op
 * that declined must not have written. */
static double untouched_ratio(twin t) {
    float *d = dut_floats(t);
    double ratio = 0;
    for (size_t i = 0; i < t.n; i++)
        if (!isnan(d[i])) ratio = INFINITY;
    free(d);
    return ratio;
}

/* A device buffer for a ReLU bitmask of rows x cols. */
static void *dut_mask(int rows, int cols) {
    void *mask = NULL;
    size_t bytes = cumlp__relu_mask_bytes(rows, cols);
    CHECK_OK(dut->ops->alloc(dut, (bytes + dut->ops->elem_size - 1) / dut->ops->elem_size, &mask));
    return mask;
}

typedef struct epilogue_case {
    int activation, m, n, k, keep;
    int offset; /* W and X start this many elements into their buffers */
} epilogue_case;

/* An op that may decline (CUMLP_ERROR_NOT_SUPPORTED) where `may_decline` (a GELU layer whose
 * width is no multiple of 8: cuBLASLt cannot keep its Z; in 16 bits, what networks do not ask
 * for): then nothing is written and the context goes on. Any other case must run, so that a GPU
 * whose cuBLASLt refuses a combination cumlp counts on fails here. Returns whether it ran. */
static int epilogue_ran(cumlp_status st, twin out, int may_decline) {
    if (st != CUMLP_ERROR_NOT_SUPPORTED) {
        CHECK_OK(st);
        return st == CUMLP_SUCCESS;
    }
    judge("declined: output untouched", untouched_ratio(out));
    judge("declined a case it must run", may_decline ? 0 : INFINITY);
    CHECK(cumlp_context_synchronize(dut) == CUMLP_SUCCESS);
    return 0;
}

/* A = f(W X + b) against the reference's product, and GELU's kept Z; every other case into an fp32
 * A (the output layer). */
static void epilogue_forward_run(const epilogue_case *c) {
    int out = work != CUMLP_STORAGE_NATIVE && stats.cases % 2 ? CUMLP_STORAGE_NATIVE : work;
    begin_case("gemm_bias_activation act=%d m=%d n=%d k=%d%s%s offset=%d", c->activation, c->m,
               c->n, c->k, c->keep ? " keeping aux" : "", out != work ? " A fp32" : "", c->offset);
    size_t count = (size_t)c->m * c->n, offset = (size_t)c->offset;
    int gelu_z = c->keep && c->activation == CUMLP_ACT_GELU;
    twin W_buffer = twin_random_in(work, (size_t)c->m * c->k + offset, -1, 1);
    twin X_buffer = twin_random_in(work, (size_t)c->k * c->n + offset, -1, 1);
    twin W = twin_from_offset(W_buffer, offset), X = twin_from_offset(X_buffer, offset);
    twin b = twin_random_in(out, (size_t)c->m, -1, 1); /* of A's type, as cuBLASLt's bias */
    twin A = twin_poisoned_in(out, count), Z = twin_poisoned_in(out, gelu_z ? count : 1);
    void *mask = c->keep && c->activation == CUMLP_ACT_RELU ? dut_mask(c->m, c->n) : NULL;
    cumlp_status st =
        dut->ops->gemm_bias_activation(dut, work, out, c->activation, c->m, c->n, c->k, W.dut,
                                       X.dut, b.dut, gelu_z ? Z.dut : mask, A.dut);
    /* in 16 bits networks run ReLU without aux alone (cumlp.h, "GEMM epilogues") */
    int unused = work != CUMLP_STORAGE_NATIVE && (c->keep || c->activation != CUMLP_ACT_RELU);
    if (epilogue_ran(st, A, unused || (gelu_z && c->m % 8 != 0))) {
        double *p, *terms, *bias = ref_doubles(b.ref, b.n);
        reference_product(0, c->m, c->n, c->k, W, c->m, X, &p, &terms);
        float *want_a = test_alloc_floats(count), *want_z = test_alloc_floats(count);
        for (size_t at = 0; at < count; at++) {
            double z = p[at] + bias[at % (size_t)c->m];
            want_z[at] = (float)z;
            want_a[at] = (float)epilogue_f(c->activation, z);
            terms[at] = EPILOGUE_SLOPE_MAX * (terms[at] + fabs(bias[at % (size_t)c->m]));
        }
        float *got = dut_floats(A);
        judge("A", block_ratio(got, want_a, terms, (size_t)c->m, (size_t)c->n, (size_t)c->m));
        free(got);
        if (gelu_z) {
            got = dut_floats(Z);
            judge("Z", block_ratio(got, want_z, terms, (size_t)c->m, (size_t)c->n, (size_t)c->m));
            free(got);
        }
        free(want_a);
        free(want_z);
        free(p);
        free(terms);
        free(bias);
    }
    dut->ops->free(dut, mask);
    twin_free(W_buffer);
    twin_free(X_buffer);
    twin_free(b);
    twin_free(A);
    twin_free(Z);
}

/* Host values on a grid of 1/64 in [-1, 1] (exact in every format), or +-1. */
static twin twin_grid_in(int storage, size_t n, int signs_only) {
    float *host = test_alloc_floats(n);
    for (size_t i = 0; i < n; i++) {
        int j = (int)(test_rng_next(&rng) % 129) - 64;
        host[i] = signs_only ? (j < 0 ? -1.0f : 1.0f) : (float)j / 64.0f;
    }
    twin t = twin_from_in(storage, host, n);
    free(host);
    return t;
}

/* The layer below (k x n): Z = w x^T + b with w on a grid, x = +-1 and b an odd multiple of 1/256,
 * so that every Z is exact and none is 0 on every configuration (a TF32 GEMM rounds no input), and
 * the ReLU bitmask the dut keeps holds the reference's signs. Its f(Z) into A, its aux into *aux
 * (GELU: Z in a twin; ReLU: a bitmask); *z_host: the exact Z. 0 if the forward op declined. */
static int exact_layer_below(int activation, int k, int n, twin *A, twin *Z, void **mask,
                             double **z_host) {
    twin w = twin_grid_in(work, (size_t)k, 0), x = twin_grid_in(work, (size_t)n, 1);
    float *bias = test_alloc_floats((size_t)k);
    for (int i = 0; i < k; i++)
        bias[i] = (float)(2 * (int)(test_rng_next(&rng) % 128) - 127) / 256.0f;
    twin b = twin_from_in(work, bias, (size_t)k); /* exact in 16 bits too */
    int relu = activation == CUMLP_ACT_RELU;
    *A = twin_poisoned_in(work, (size_t)k * n);
    *Z = twin_poisoned_in(work, relu ? 1 : (size_t)k * n);
    *mask = relu ? dut_mask(k, n) : NULL;
    cumlp_status st = dut->ops->gemm_bias_activation(dut, work, work, activation, k, n, 1, w.dut,
                                                     x.dut, b.dut, relu ? *mask : Z->dut, A->dut);
    int ran = epilogue_ran(st, *A, !relu && k % 8 != 0);
    double *wd = ref_doubles(w.ref, w.n), *xd = ref_doubles(x.ref, x.n);
    *z_host = malloc((size_t)k * n * sizeof **z_host);
    if (!*z_host) abort();
    for (int j = 0; j < n; j++)
        for (int i = 0; i < k; i++)
            (*z_host)[(size_t)j * k + i] = wd[i] * xd[j] + bias[i];
    free(wd);
    free(xd);
    free(bias);
    twin_free(w);
    twin_free(x);
    twin_free(b);
    return ran;
}

/* In 16 bits the backward op declines (backend.h: cuBLASLt's bias gradient would be 16-bit),
 * whatever it is given, and writes nothing. */
static void epilogue_backward_declines(const epilogue_case *c) {
    begin_case("gemm_activation_backward act=%d m=%d n=%d k=%d declines in 16 bits", c->activation,
               c->m, c->n, c->k);
    int relu = c->activation == CUMLP_ACT_RELU;
    size_t count = (size_t)c->k * c->n;
    twin W = twin_random_in(work, (size_t)c->m * c->k, -1, 1);
    twin G = twin_random_in(work, (size_t)c->m * c->n, -1, 1);
    twin Z = twin_random_in(work, relu ? 1 : count, -1, 1);
    twin delta = twin_poisoned_in(work, count), db = twin_poisoned((size_t)c->k);
    void *mask = relu ? dut_mask(c->k, c->n) : NULL;
    cumlp_status st =
        dut->ops->gemm_activation_backward(dut, work, c->activation, c->m, c->n, c->k, W.dut, G.dut,
                                           relu ? mask : Z.dut, delta.dut, db.dut, 1.0 / c->n);
    judge("ran in 16 bits", st == CUMLP_ERROR_NOT_SUPPORTED ? 0 : INFINITY);
    CHECK(cumlp_context_synchronize(dut) == CUMLP_SUCCESS);
    judge("delta untouched", untouched_ratio(delta));
    judge("db untouched", untouched_ratio(db));
    dut->ops->free(dut, mask);
    twin_free(W);
    twin_free(G);
    twin_free(Z);
    twin_free(delta);
    twin_free(db);
}

/* delta = (W^T G) .* f'(Z) and db = (row sums) / n, through the aux the forward op kept. */
static void epilogue_backward_run(const epilogue_case *c) {
    if (work != CUMLP_STORAGE_NATIVE) {
        epilogue_backward_declines(c);
        return;
    }
    begin_case("gemm_activation_backward act=%d m=%d n=%d k=%d", c->activation, c->m, c->n, c->k);
    twin A_below, Z_below;
    void *mask = NULL;
    double *z = NULL;
    int relu = c->activation == CUMLP_ACT_RELU;
    if (exact_layer_below(c->activation, c->k, c->n, &A_below, &Z_below, &mask, &z)) {
        size_t count = (size_t)c->k * c->n;
        twin W = twin_random_in(work, (size_t)c->m * c->k, -1, 1);
        twin G = twin_random_in(work, (size_t)c->m * c->n, -1, 1);
        twin delta = twin_poisoned_in(work, count), db = twin_poisoned((size_t)c->k);
        double db_scale = 1.0 / c->n;
        cumlp_status st = dut->ops->gemm_activation_backward(
            dut, work, c->activation, c->m, c->n, c->k, W.dut, G.dut, relu ? mask : Z_below.dut,
            delta.dut, db.dut, db_scale);
        if (epilogue_ran(st, delta, !relu && c->k % 8 != 0)) {
            /* GELU's f' is taken at the Z the dut kept (rounded into its format) */
            float *kept = relu ? NULL : dut_floats(Z_below);
            double *p, *terms;
            reference_product(1, c->k, c->n, c->m, W, c->m, G, &p, &terms);
            float *want = test_alloc_floats(count), *want_db = test_alloc_floats((size_t)c->k);
            double *db_terms = calloc((size_t)c->k, sizeof *db_terms),
                   *sums = calloc((size_t)c->k, sizeof *sums);
            if (!db_terms || !sums) abort();
            for (size_t at = 0; at < count; at++) {
                size_t i = at % (size_t)c->k;
                double d = p[at] * epilogue_deriv(c->activation, relu ? z[at] : kept[at]);
                want[at] = (float)d;
                terms[at] *= EPILOGUE_SLOPE_MAX;
                sums[i] += d * db_scale;
                db_terms[i] += terms[at] * db_scale;
            }
            for (int i = 0; i < c->k; i++)
                want_db[i] = (float)sums[i];
            float *got = dut_floats(delta), *got_db = dut_floats(db);
            judge("delta", block_ratio(got, want, terms, (size_t)c->k, (size_t)c->n, (size_t)c->k));
            judge("db", block_ratio(got_db, want_db, db_terms, (size_t)c->k, 1, (size_t)c->k));
            free(got);
            free(got_db);
            free(kept);
            free(p);
            free(terms);
            free(want);
            free(want_db);
            free(db_terms);
            free(sums);
        }
        twin_free(W);
        twin_free(G);
        twin_free(delta);
        twin_free(db);
    }
    free(z);
    dut->ops->free(dut, mask);
    twin_free(A_below);
    twin_free(Z_below);
}

/* cumlp.h, CUMLP_EPILOGUES_RELU: cuBLASLt's ReLU keeps a NaN pre-activation in A and sets its
 * bitmask bit, so the backward pass passes the gradient there (the fused kernels map it to 0).
 * Column 1 of X is NaN, so column 1 of Z is: A's column 1 must be NaN, and delta's column 1 in
 * the backward pass W^T G. Each failure says what the element was. */
static void epilogue_nan_run(void) {
    if (work != CUMLP_STORAGE_NATIVE) return; /* 16 bits: no aux kept, no backward epilogue */
    int m = 16, n = 3, k = 5;
    begin_case("ReLU epilogue keeps NaN m=%d n=%d k=%d", m, n, k);
    twin W = twin_random_in(work, (size_t)m * k, -1, 1), b = twin_random((size_t)m, -1, 1);
    float x[15];
    for (int i = 0; i < 15; i++)
        x[i] = i / 5 == 1 ? NAN : 0.25f;
    twin X = twin_from_in(work, x, 15);
    twin A = twin_poisoned_in(work, (size_t)m * n);
    void *mask = dut_mask(m, n);
    if (epilogue_ran(dut->ops->gemm_bias_activation(dut, work, work, CUMLP_ACT_RELU, m, n, k, W.dut,
                                                    X.dut, b.dut, mask, A.dut),
                     A, 0)) {
        float *a = dut_floats(A);
        for (int i = 0; i < m; i++)
            CHECK_MSG(isnan(a[m + i]), "%s: A(%d, 1) of a NaN column is %g, not NaN", cfg->name, i,
                      a[m + i]);
        free(a);
        twin Wup = twin_random_in(work, (size_t)k * m, -1, 1); /* k x m above: m rows below */
        twin G = twin_random_in(work, (size_t)k * n, 1, 2), delta = twin_poisoned_in(work, A.n);
        twin db = twin_poisoned((size_t)m);
        if (epilogue_ran(dut->ops->gemm_activation_backward(dut, work, CUMLP_ACT_RELU, k, n, m,
                                                            Wup.dut, G.dut, mask, delta.dut, db.dut,
                                                            1.0),
                         delta, 0)) {
            double *p, *terms;
            reference_product(1, m, n, k, Wup, k, G, &p, &terms);
            float *d = dut_floats(delta);
            float want[16];
            for (int i = 0; i < m; i++)
                want[i] = (float)p[m + i];
            double ratio = block_ratio(d + m, want, terms + m, (size_t)m, 1, (size_t)m);
            if (!(ratio <= 1))
                printf("     %s: delta(0, 1) of a NaN column is %g where W^T G is %g\n", cfg->name,
                       d[m], want[0]);
            judge("delta of a NaN column", ratio);
            free(d);
            free(p);
            free(terms);
        }
        twin_free(Wup);
        twin_free(G);
        twin_free(delta);
        twin_free(db);
    }
    dut->ops->free(dut, mask);
    twin_free(W);
    twin_free(b);
    twin_free(X);
    twin_free(A);
}

static void row_epilogue_forward(void) {
    if (!dut->ops->gemm_bias_activation) return; /* no epilogues on this backend */
    static const int activations[] = {CUMLP_ACT_RELU, CUMLP_ACT_GELU};
    for (int a = 0; a < COUNT(activations); a++) {
        for (int i = 0; i < COUNT(widths); i++) {
            epilogue_case c = {activations[a],
                               sweep_rows(i),
                               sweep_cols(i, 5 * a + 2),
                               sweep_rows(7 * i + 3 * a + 5),
                               i % 2,
                               i % 3 == 1};
            epilogue_forward_run(&c);
        }
    }
    /* GELU layers that keep their Z (widths that are multiples of 8), and misaligned operands */
    static const epilogue_case cases[] = {{CUMLP_ACT_GELU, 64, 129, 33, 1, 1},
                                          {CUMLP_ACT_GELU, 256, 17, 100, 1, 0},
                                          {CUMLP_ACT_RELU, 128, 333, 65, 1, 3}};
    for (int i = 0; i < COUNT(cases); i++)
        epilogue_forward_run(&cases[i]);
    epilogue_nan_run();
}

static void row_epilogue_backward(void) {
    if (!dut->ops->gemm_activation_backward) return;
    static const int activations[] = {CUMLP_ACT_RELU, CUMLP_ACT_GELU};
    for (int a = 0; a < COUNT(activations); a++) {
        for (int i = 0; i < COUNT(widths); i++) {
            epilogue_case c = {activations[a],
                               sweep_rows(7 * i + 3 * a + 5),
                               sweep_cols(i, 3 * a + 1),
                               sweep_rows(i),
                               1,
                               0};
            epilogue_backward_run(&c);
        }
    }
    static const epilogue_case cases[] = {{CUMLP_ACT_GELU, 33, 127, 64, 1, 0},
                                          {CUMLP_ACT_GELU, 100, 64, 256, 1, 0}};
    for (int i = 0; i < COUNT(cases); i++)
        epilogue_backward_run(&cases[i]);
}

/* ---- loss_delta ------------------------------------------------------------------------------ */

/* SCALED: delta times 2^10, FP16's loss scale at work. */
enum { DELTA_ALIASES_A = 1, NO_DB = 2, NO_LOSS_SUM = 4, CONFIDENT = 8, SCALED = 16 };

typedef struct loss_case {
    int loss, activation, rows, cols, variant, large;
} loss_case;

/* Logits and targets of confident correct predictions (z = +-(8..20), y = 1 where z > 0): each
 * loss term is tiny next to softplus(z) and y z, so that an fp32 evaluation of softplus(z) - y z
 * would lose it. */
static void confident_outputs(float *p, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int positive = i % 3 != 0;
        p[i] = (positive ? 1.0f : -1.0f) * (8.0f + (float)(i % 13));
        y[i] = positive ? 1.0f : 0.0f;
    }
}

/* Z, A and the targets Y of a loss case. */
static void loss_inputs(const loss_case *c, twin *Z, twin *A, twin *Y) {
    size_t n = (size_t)c->rows * c->cols;
    float *p = NULL, *y = test_alloc_floats(n);
    if (c->variant & CONFIDENT) {
        p = test_alloc_floats(n);
        confident_outputs(p, y, n);
    } else if (c->loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY) {
        test_fill_one_hot(&rng, y, c->rows, c->cols);
    } else {
        test_fill_uniform(&rng, y, n, 0, 1);
    }
    forward_pair(CUMLP_STORAGE_NATIVE, c->activation, c->rows, c->cols, p, Z, A);
    *Y = twin_from(y, n);
    free(p);
    free(y);
}

/* delta = scale (a - y) f' is judged on the size of its terms, scale (|a| + |y|) (f' is O(1)). */
static double *loss_delta_terms(twin A, twin Y, double scale) {
    double *terms = abs_terms(A), *y = abs_terms(Y);
    for (size_t i = 0; i < A.n; i++)
        terms[i] = (terms[i] + y[i]) * scale;
    free(y);
    return terms;
}

/* Z, A and Y are fp32 in every configuration (the output layer's), delta is in the
 * configuration's format: it may alias A only where that is fp32. */
static void loss_run(const loss_case *c) {
    if (left_out(c->large)) return;
    int variant = work == CUMLP_STORAGE_NATIVE ? c->variant : c->variant & ~DELTA_ALIASES_A;
    double delta_scale = variant & SCALED ? 1024 : 1;
    begin_case("loss_delta loss=%d act=%d %dx%d%s%s%s%s%s", c->loss, c->activation, c->rows,
               c->cols, variant & DELTA_ALIASES_A ? " delta aliases A" : "",
               variant & NO_DB ? " no db" : "", variant & NO_LOSS_SUM ? " no loss" : "",
               variant & CONFIDENT ? " confident" : "", variant & SCALED ? " scaled" : "");
    twin Z, A, Y;
    loss_inputs(c, &Z, &A, &Y);
    twin delta = variant & DELTA_ALIASES_A ? A : twin_poisoned_in(work, A.n);
    twin db = twin_poisoned((size_t)c->rows);
    double *terms = loss_delta_terms(A, Y, delta_scale);
    int with_z = cumlp__loss_needs_z(c->loss) || cumlp__activation_needs_z(c->activation);
    int with_db = !(variant & NO_DB), with_loss = !(variant & NO_LOSS_SUM);
    double loss_dut = NAN, loss_ref = NAN, db_scale = 1.0 / c->cols;
    CHECK_OK(dut->ops->loss_delta(dut, c->loss, c->activation, SLOPE, c->rows, c->cols,
                                  with_z ? Z.dut : NULL, A.dut, Y.dut, delta.dut, work,
                                  with_db ? db.dut : NULL, db_scale, delta_scale,
                                  with_loss ? &loss_dut : NULL));
    CHECK_OK(ref->ops->loss_delta(ref, c->loss, c->activation, SLOPE, c->rows, c->cols,
                                  with_z ? Z.ref : NULL, A.ref, Y.ref, delta.ref,
                                  CUMLP_STORAGE_NATIVE, with_db ? db.ref : NULL, db_scale,
                                  delta_scale, with_loss ? &loss_ref : NULL));
    judge_delta_and_db(delta, terms, with_db ? &db : NULL, c->rows, c->cols, db_scale);
    if (with_loss) judge("loss", value_ratio(loss_dut, loss_ref, fabs(loss_ref)));
    free(terms);
    if (!(variant & DELTA_ALIASES_A)) twin_free(delta);
    twin_free(Z);
    twin_free(A);
    twin_free(Y);
    twin_free(db);
}

static const loss_case loss_cases[] = {
    {CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, CUMLP_ACT_SIGMOID, 7, 33, CONFIDENT, 0},
    {CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, CUMLP_ACT_SIGMOID, 4096, 257, DELTA_ALIASES_A, 0},
    /* A batch past the reductions' chunk cap. */
    {CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, CUMLP_ACT_SOFTMAX, 10, 16385, 0, LARGE},
    {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_TANH, 33, 16385, 0, LARGE},
};

/* The losses with each output activation they accept. */
static void row_loss_delta(void) {
    static const int pairs[][2] = {
        {CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, CUMLP_ACT_SOFTMAX},
        {CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, CUMLP_ACT_SIGMOID},
        {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_IDENTITY},
        {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_SIGMOID},
        {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_TANH},
        {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_RELU},
        {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_LEAKY_RELU},
        {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_GELU},
    };
    for (int p = 0; p < COUNT(pairs); p++) {
        for (int i = 0; i < COUNT(widths); i++) {
            /* Every combination of delta aliasing A, db and loss_sum twice over; a third of the
             * cases scaled. */
            loss_case c = {pairs[p][0],
                           pairs[p][1],
                           sweep_rows(i),
                           sweep_cols(i, 2 * p + 3),
                           i % 8 | (i % 3 == 2 ? SCALED : 0),
                           0};
            loss_run(&c);
        }
    }
    for (int i = 0; i < COUNT(loss_cases); i++)
        loss_run(&loss_cases[i]);
}

/* ---- optimizer_step -------------------------------------------------------------------------- */

typedef struct optimizer_case {
    cumlp_optimizer_options o;
    size_t count;
    int steps;            /* each with a new gradient */
    double gradient_norm; /* what the front end would have found: sets clip_norm's factor */
} optimizer_case;

/* A case of rule `type` with hyper-parameters exact in fp32 (so that only the arithmetic's
 * rounding differs from the reference), weight decay wd, over count elements. */
static optimizer_case optimizer_case_of(int type, size_t count, double wd, int steps) {
    optimizer_case c = {.count = count, .steps = steps};
    cumlp_optimizer_defaults_for(type, &c.o);
    c.o.learning_rate = 0.03;
    c.o.weight_decay = wd;
    c.o.beta1 = 0.875;
    c.o.beta2 = 1.0 - 0x1p-10;
    c.o.alpha = 1.0 - 0x1p-7;
    c.o.rho = 0.875;
    c.o.epsilon = 0x1p-20;
    c.o.lr_decay = 0.125;
    c.o.momentum_decay = 0x1p-8;
    return c;
}

/* The initial values of state array k: signed for a velocity or first moment, in [0.01, 0.02)
 * for an average of squares (which must stay >= 0, and above a centered RMSprop's squared
 * gradient average), small and signed for that average. */
static twin optimizer_state_start(int type, int k, size_t count) {
    int velocity_first = type == CUMLP_OPT_MOMENTUM || type == CUMLP_OPT_NESTEROV ||
                         type == CUMLP_OPT_ADAM || type == CUMLP_OPT_ADAMW ||
                         type == CUMLP_OPT_ADAMAX || type == CUMLP_OPT_NADAM;
    if (k == 0)
        return velocity_first ? twin_random(count, -0.1, 0.1) : twin_random(count, 0.01, 0.02);
    if (k == 1) return twin_random(count, 0, 0.01);
    return twin_random(count, -0.05, 0.05);
}

/* The parameters and the state an optimizer updates, and the magnitude of their terms: the same
 * updates, run by the reference on |w|, |g|, |s| with the learning rate negated, so that every
 * term adds (w + lr g, mu v + lr g, b1 m + (1 - b1) g, ...). */
typedef struct optimizer_arrays {
    twin w, s[CUMLP_OPTIMIZER_MAX_STATES];
    void *terms[1 + CUMLP_OPTIMIZER_MAX_STATES]; /* reference buffers for w, then each s */
    unsigned slots;                              /* the state arrays the rule uses */
    void *copy; /* the dut's 16-bit weight copy in BF16 and FP16, else NULL */
} optimizer_arrays;

/* The state arrays of one side (side 0: the dut, 1: the reference, 2: the terms), NULL where the
 * rule keeps none. */
static void state_pointers(const optimizer_arrays *o, int side,
                           void *out[CUMLP_OPTIMIZER_MAX_STATES]) {
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++) {
        void *arrays[3] = {o->s[k].dut, o->s[k].ref, o->terms[1 + k]};
        out[k] = (o->slots >> k) & 1u ? arrays[side] : NULL;
    }
}

/* Step `step` (from 1) on both backends, and of the terms; *mu_product is NAdam's P_(step-1). */
static void optimizer_step_both(const optimizer_case *c, optimizer_arrays *o, int step,
                                double *mu_product) {
    twin g = twin_random(o->w.n, -1, 1);
    void *abs_g = ref_abs(g);
    cumlp_step_params p, q;
    cumlp_step_params_of(&c->o, step, c->gradient_norm, *mu_product, &p, mu_product);
    q = p;
    q.learning_rate = -p.learning_rate;
    size_t n = o->w.n;
    void *s_dut[CUMLP_OPTIMIZER_MAX_STATES], *s_ref[CUMLP_OPTIMIZER_MAX_STATES],
        *s_terms[CUMLP_OPTIMIZER_MAX_STATES];
    state_pointers(o, 0, s_dut);
    state_pointers(o, 1, s_ref);
    state_pointers(o, 2, s_terms);
    CHECK_OK(dut->ops->optimizer_step(dut, &p, n, o->w.dut, g.dut, s_dut, o->copy, work));
    CHECK_OK(ref->ops->optimizer_step(ref, &p, n, o->w.ref, g.ref, s_ref, NULL, 0));
    CHECK_OK(ref->ops->optimizer_step(ref, &q, n, o->terms[0], abs_g, s_terms, NULL, 0));
    ref->ops->free(ref, abs_g);
    twin_free(g);
}

static void judge_optimizer_array(const char *what, twin t, const void *terms_buffer) {
    double *terms = ref_doubles(terms_buffer, t.n);
    judge(what, twin_ratio(t, terms));
    free(terms);
}

/* The 16-bit weight copy the step refreshed: the dut's new w rounded, bit for bit. */
static void judge_weight_copy(const optimizer_arrays *o) {
    float *w = dut_floats(o->w), *copy = test_alloc_floats(o->w.n);
    dut_get(work, o->copy, copy, o->w.n);
    judge("the 16-bit copy of w", rounding_ratio(w, copy, o->w.n));
    free(w);
    free(copy);
}

static void optimizer_run(const optimizer_case *c) {
    const cumlp_optimizer_options *oo = &c->o;
    begin_case("optimizer_step %s count=%zu wd=%g steps=%d beta1=%g beta2=%.10g momentum=%g "
               "centered=%d clip=%g/%g",
               cumlp_optimizer_name(oo->type), c->count, oo->weight_decay, c->steps, oo->beta1,
               oo->beta2, oo->momentum, oo->centered, oo->clip_norm, oo->clip_value);
    optimizer_arrays o = {twin_random(c->count, -1, 1), {{0}}, {NULL}, 0, NULL};
    o.slots = cumlp__optimizer_state_slots(oo);
    if (work != CUMLP_STORAGE_NATIVE) { /* poisoned: every element must be written */
        twin copy = twin_poisoned_in(work, c->count);
        o.copy = copy.dut;
        ref->ops->free(ref, copy.ref);
    }
    o.terms[0] = ref_abs(o.w);
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++) {
        o.s[k] = optimizer_state_start(oo->type, k, c->count);
        o.terms[1 + k] = ref_abs(o.s[k]);
    }
    double mu_product = 1.0;
    for (int step = 1; step <= c->steps; step++)
        optimizer_step_both(c, &o, step, &mu_product);
    judge_optimizer_array("w", o.w, o.terms[0]);
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++) {
        char what[32];
        snprintf(what, sizeof what, "state%d", k + 1);
        if ((o.slots >> k) & 1u) judge_optimizer_array(what, o.s[k], o.terms[1 + k]);
    }
    if (o.copy) judge_weight_copy(&o);
    dut->ops->free(dut, o.copy);
    twin_free(o.w);
    for (int k = 0; k <= CUMLP_OPTIMIZER_MAX_STATES; k++)
        ref->ops->free(ref, o.terms[k]);
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
        twin_free(o.s[k]);
}

static const size_t optimizer_counts[] = {1, 3, 4, 7, 1000, 1001, 4099, 65537, 65539};

/* Every rule with and without weight decay, for one step and for three, hyper-parameters exact in
 * fp32; RMSprop in its four variants (momentum on or off, centered or not); clipping by norm (a
 * third of the gradient) and by value on two sizes. */
static void row_optimizer_step(void) {
    for (int type = 0; type < CUMLP_OPTIMIZER_COUNT; type++) {
        for (int i = 0; i < COUNT(optimizer_counts); i++) {
            optimizer_case c =
                optimizer_case_of(type, optimizer_counts[i], i & 1 ? 1e-3 : 0, i & 2 ? 3 : 1);
            if (type == CUMLP_OPT_RMSPROP) { /* each variant with and without decay */
                int variant = i / 2 % 4;
                c.o.momentum = variant & 1 ? 0.875 : 0.0;
                c.o.centered = variant >> 1;
            }
            if (i == 5 || i == 8) {
                c.o.clip_norm = 1.0;
                c.o.clip_value = 0.25;
                c.gradient_norm = 3.0;
            }
            optimizer_run(&c);
        }
    }
}

/* The defaults (beta1 0.9, beta2 0.999, RMSprop's alpha 0.99, Adadelta's rho 0.9) are not floats:
 * the shared fp32 rule's rounded factors bound its agreement with the double reference
 * (DESIGN.md: Adam-like rules amplify the rounding), hence the row's own bound. */
static const bound default_factors_bound = {2e-5, 0};

static void row_default_factors(void) {
    static const int types[] = {CUMLP_OPT_ADAM,    CUMLP_OPT_ADAMW,   CUMLP_OPT_ADAMAX,
                                CUMLP_OPT_NADAM,   CUMLP_OPT_RMSPROP, CUMLP_OPT_ADAGRAD,
                                CUMLP_OPT_ADADELTA};
    static const struct {
        size_t count;
        double wd;
        int steps;
    } sizes[] = {{4099, 0, 1}, {4099, 1e-3, 3}, {65539, 1e-3, 3}};
    for (int t = 0; t < COUNT(types); t++) {
        for (int i = 0; i < COUNT(sizes); i++) {
            optimizer_case c = {.count = sizes[i].count, .steps = sizes[i].steps};
            cumlp_optimizer_defaults_for(types[t], &c.o);
            c.o.weight_decay = sizes[i].wd;
            c.o.centered = i == 2;
            c.o.momentum = types[t] == CUMLP_OPT_RMSPROP && i > 0 ? 0.9 : c.o.momentum;
            optimizer_run(&c);
        }
    }
}

/* ---- random, scale_shift, check_finite ------------------------------------------------------- */

typedef struct flat_case {
    size_t count;
    size_t offset; /* of the buffer's start (1: not 8- or 16-byte aligned) */
    int large;
} flat_case;

static const flat_case flat_cases[] = {
    {1, 0, 0},      {1, 1, 0},      {2, 0, 0},           {3, 1, 0},
    {5, 0, 0},      {6, 1, 0},      {7, 0, 0},           {17, 1, 0},
    {1000, 0, 0},   {1001, 1, 0},   {4099, 0, 0},        {40003, 1, 0},
    {100000, 0, 0}, {262147, 1, 0}, {1000001, 0, LARGE}, {1000003, 1, LARGE},
};

/* Elements of a view's buffer: offset before it, count in it and one after it. */
static size_t buffer_count(const flat_case *c) {
    return c->offset + c->count + 1;
}

/* A dut buffer of buffer_count elements, NaN; *view is its element `offset`. The NaN around the
 * view shows an op that reads or writes past its ends. */
static void *dut_view(const flat_case *c, void **view) {
    void *buffer = NULL;
    CHECK_OK(dut->ops->alloc(dut, buffer_count(c), &buffer));
    CHECK_OK(dut->ops->fill(dut, buffer, buffer_count(c), NAN));
    *view = cumlp__at(dut, buffer, c->offset);
    return buffer;
}

/* 0 if the elements around the view of a downloaded buffer are still NaN, else INFINITY. */
static double guard_ratio(const flat_case *c, const float *buffer) {
    for (size_t i = 0; i < c->offset; i++)
        if (!isnan(buffer[i])) return INFINITY;
    return isnan(buffer[c->offset + c->count]) ? 0 : INFINITY;
}

static void random_run(int distribution, const flat_case *c, uint64_t seed) {
    if (left_out(c->large)) return;
    begin_case("random dist=%d count=%zu offset=%zu seed=%llu", distribution, c->count, c->offset,
               (unsigned long long)seed);
    void *view = NULL, *buffer = dut_view(c, &view), *expected = NULL;
    CHECK_OK(ref->ops->alloc(ref, c->count, &expected));
    CHECK_OK(dut->ops->random(dut, distribution, seed, c->count, view));
    CHECK_OK(ref->ops->random(ref, distribution, seed, c->count, expected));
    float *d = test_alloc_floats(buffer_count(c)), *r = test_alloc_floats(c->count);
    CHECK_OK(dut->ops->download(dut, buffer, d, buffer_count(c)));
    CHECK_OK(ref->ops->download(ref, expected, r, c->count));
    judge("draws", bits_ratio(d + c->offset, r, c->count));
    judge("draws off", off_ratio(d + c->offset, r, c->count));
    judge("the elements around the view", guard_ratio(c, d));
    free(d);
    free(r);
    dut->ops->free(dut, buffer);
    ref->ops->free(ref, expected);
}

static void row_random_uniform(void) {
    for (int i = 0; i < COUNT(flat_cases); i++)
        random_run(CUMLP_DIST_UNIFORM, &flat_cases[i], 42 + (uint64_t)i);
}

static void row_random_normal(void) {
    for (int i = 0; i < COUNT(flat_cases); i++)
        random_run(CUMLP_DIST_NORMAL, &flat_cases[i], 0xdeadbeefcafef00dull + (uint64_t)i);
}

/* x = (float)fma(x, scale, shift) rounds once, the same way everywhere: bit for bit. */
static void scale_shift_run(const flat_case *c, double scale, double shift) {
    if (left_out(c->large)) return;
    begin_case("scale_shift count=%zu offset=%zu scale=%.17g shift=%.17g", c->count, c->offset,
               scale, shift);
    twin t = twin_random(buffer_count(c), -3, 3); /* the whole twin is compared */
    CHECK_OK(dut->ops->scale_shift(dut, cumlp__at(dut, t.dut, c->offset), c->count, scale, shift));
    CHECK_OK(ref->ops->scale_shift(ref, cumlp__at(ref, t.ref, c->offset), c->count, scale, shift));
    judge("x", twin_bits_ratio(t));
    twin_free(t);
}

static void row_scale_shift(void) {
    for (int i = 0; i < COUNT(flat_cases); i++) {
        scale_shift_run(&flat_cases[i], 0.3183, -0.1591);
        scale_shift_run(&flat_cases[i], 0.2449489742783178, -0.1224744871391589);
    }
}

/* all_finite must be 1 for finite data and 0 with one NaN, +Inf or -Inf at a random index. */
static void check_finite_run(const flat_case *c) {
    if (left_out(c->large)) return;
    begin_case("check_finite count=%zu offset=%zu", c->count, c->offset);
    static const float bad[] = {NAN, INFINITY, -INFINITY};
    float *host = test_alloc_floats(c->count);
    test_fill_uniform(&rng, host, c->count, -1e30, 1e30);
    void *view = NULL, *buffer = dut_view(c, &view);
    for (int b = -1; b < COUNT(bad); b++) {
        size_t at = (size_t)test_rng_below(&rng, (int64_t)c->count);
        float saved = host[at];
        if (b >= 0) host[at] = bad[b];
        CHECK_OK(dut->ops->upload(dut, view, host, c->count));
        int finite = -1;
        CHECK_OK(dut->ops->check_finite(dut, view, c->count, &finite, NULL));
        char what[64];
        snprintf(what, sizeof what, "%g at %zu", b >= 0 ? (double)bad[b] : 0.0, at);
        judge(b < 0 ? "finite data" : what, finite == (b < 0) ? 0 : INFINITY);
        host[at] = saved;
    }
    dut->ops->free(dut, buffer);
    free(host);
}

static void row_check_finite(void) {
    for (int i = 0; i < COUNT(flat_cases); i++)
        check_finite_run(&flat_cases[i]);
}

/* check_finite's sum of squares (the gradient norm): against the reference's plain double loop
 * on finite data, and not finite, with all_finite 0, after one NaN, +Inf or -Inf. */
static void sum_squares_run(const flat_case *c) {
    if (left_out(c->large)) return;
    begin_case("sum_squares count=%zu offset=%zu", c->count, c->offset);
    static const float bad[] = {NAN, INFINITY, -INFINITY};
    float *host = test_alloc_floats(c->count);
    test_fill_uniform(&rng, host, c->count, -1e3, 1e3);
    void *view = NULL, *buffer = dut_view(c, &view), *expected = NULL;
    CHECK_OK(ref->ops->alloc(ref, c->count, &expected));
    for (int b = -1; b < COUNT(bad); b++) {
        size_t at = (size_t)test_rng_below(&rng, (int64_t)c->count);
        float saved = host[at];
        if (b >= 0) host[at] = bad[b];
        CHECK_OK(dut->ops->upload(dut, view, host, c->count));
        CHECK_OK(ref->ops->upload(ref, expected, host, c->count));
        int finite = -1, ref_finite = -1;
        double sum = NAN, ref_sum = NAN;
        CHECK_OK(dut->ops->check_finite(dut, view, c->count, &finite, &sum));
        CHECK_OK(ref->ops->check_finite(ref, expected, c->count, &ref_finite, &ref_sum));
        if (b < 0) {
            judge("all_finite", finite == 1 && ref_finite == 1 ? 0 : INFINITY);
            judge("sum", value_ratio(sum, ref_sum, ref_sum));
        } else {
            char what[64];
            snprintf(what, sizeof what, "%g at %zu", (double)bad[b], at);
            judge(what, finite == 0 && !isfinite(sum) ? 0 : INFINITY);
        }
        host[at] = saved;
    }
    dut->ops->free(dut, buffer);
    ref->ops->free(ref, expected);
    free(host);
}

static void row_sum_squares(void) {
    for (int i = 0; i < COUNT(flat_cases); i++)
        sum_squares_run(&flat_cases[i]);
}

/* The squares of floats are exact in double; their sum in any order is within count 2^-53 of
 * the exact sum (relative: the terms are positive), 1.1e-10 for the largest case. */
static const bound sum_squares_bound = {1e-9, 0};

/* ---- convert: fp32 <-> 16 bits --------------------------------------------------------------- */

/* n values that probe the format's rounding: ordinary ones, every binade from below the smallest
 * subnormal to past the largest finite value, exact ties between two neighbours (which must go to
 * the even one), and the special values. */
static void rounding_probes(float *x, size_t n) {
    int fp16 = work == CUMLP_STORAGE_FP16;
    int lowest = fp16 ? -27 : -136, highest = fp16 ? 17 : 127, significant = fp16 ? 11 : 8;
    static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1.0f, -1.0f};
    for (size_t i = 0; i < n; i++) {
        double sign = test_rng_below(&rng, 2) ? -1 : 1;
        int exponent = lowest + (int)test_rng_below(&rng, highest - lowest + 1);
        switch (i % 4) {
        case 0:
            x[i] = (float)test_rng_uniform(&rng, -3, 3);
            break;
        case 1: /* a random value of the binade */
            x[i] = (float)(sign * ldexp(test_rng_uniform(&rng, 1, 2), exponent));
            break;
        case 2: { /* halfway between two values of the format (representable in fp32) */
            int64_t m = (int64_t)1 << (significant - 1);
            double mantissa = (double)(m + test_rng_below(&rng, m)) + 0.5;
            x[i] = (float)(sign * ldexp(mantissa, exponent - (significant - 1)));
            break;
        }
        default:
            x[i] = specials[(i / 4) % COUNT(specials)];
        }
    }
    if (n > 2) x[n - 1] = fp16 ? 65520.0f : 0x1.ffp127f;     /* the first tie that rounds to Inf */
    if (n > 3) x[n - 2] = fp16 ? 65519.0f : 0x1.fefffep127f; /* the last that does not */
}

/* fp32 -> 16 bits -> fp32 over a view of a guarded 16-bit buffer: each value rounded to nearest
 * even (round_to_storage), widened back exactly, and nothing written around the view. */
static void convert_run(const flat_case *c) {
    if (left_out(c->large)) return;
    begin_case("convert count=%zu offset=%zu", c->count, c->offset);
    size_t total = buffer_count(c);
    float *x = test_alloc_floats(c->count), *all = test_alloc_floats(total);
    rounding_probes(x, c->count);
    void *source = NULL, *back = NULL, *buffer = NULL;
    CHECK_OK(dut->ops->alloc(dut, c->count, &source));
    CHECK_OK(dut->ops->alloc(dut, c->count, &back));
    CHECK_OK(dut->ops->alloc(dut, cumlp__storage_native_count(dut, work, total), &buffer));
    for (size_t i = 0; i < total; i++)
        all[i] = NAN;
    dut_put(work, buffer, all, total); /* the guards */
    void *view = cumlp__at_storage(dut, buffer, work, c->offset);
    CHECK_OK(dut->ops->upload(dut, source, x, c->count));
    CHECK_OK(dut->ops->convert(dut, view, work, source, CUMLP_STORAGE_NATIVE, c->count));
    CHECK_OK(dut->ops->fill(dut, back, c->count, 7.0f));
    CHECK_OK(dut->ops->convert(dut, back, CUMLP_STORAGE_NATIVE, view, work, c->count));
    float *got = test_alloc_floats(c->count);
    CHECK_OK(dut->ops->download(dut, back, got, c->count));
    judge("rounded values", rounding_ratio(x, got, c->count));
    dut_get(work, buffer, all, total);
    judge("the elements around the view", guard_ratio(c, all));
    dut->ops->free(dut, source);
    dut->ops->free(dut, back);
    dut->ops->free(dut, buffer);
    free(x);
    free(all);
    free(got);
}

static void row_convert(void) {
    for (int i = 0; i < COUNT(flat_cases); i++)
        convert_run(&flat_cases[i]);
}

/* ---- memory: upload, download, fill, copy ---------------------------------------------------- */

/* Downloads n elements of buffer into got and judges them against want, bit for bit. */
static void judge_download(const char *what, const void *buffer, float *got, const float *want,
                           size_t n) {
    CHECK_OK(dut->ops->download(dut, buffer, got, n));
    judge(what, bits_ratio(got, want, n));
}

/* Round trips through buffers a and b (n elements each); a ends holding h. */
static void memory_round_trips(void *a, void *b, const float *h, float *want, float *got,
                               size_t n) {
    memcpy(got, h, n * sizeof *got);
    CHECK_OK(dut->ops->upload(dut, a, got, n));
    memset(got, 0, n * sizeof *got); /* upload has returned: its source is free */
    judge_download("upload, download", a, got, h, n);
    CHECK_OK(dut->ops->fill(dut, b, n, NAN));
    CHECK_OK(dut->ops->copy(dut, b, a, n));
    judge_download("copy", b, got, h, n);
    for (size_t i = 0; i < n; i++)
        want[i] = 2.5f;
    CHECK_OK(dut->ops->fill(dut, b, n, 2.5f));
    judge_download("fill", b, got, want, n);
}

/* The same ops on sub-ranges that start one or two elements in (not 8- or 16-byte aligned, so
 * that vector paths must handle the edges); a holds h and b 2.5, n > 2. */
static void memory_sub_ranges(void *a, void *b, const float *h, float *want, float *got, size_t n) {
    CHECK_OK(dut->ops->copy(dut, cumlp__at(dut, b, 1), cumlp__at(dut, a, 1), n - 2));
    memcpy(want + 1, h + 1, (n - 2) * sizeof *want); /* want[0] = want[n - 1] = 2.5 */
    if (n > 4) {
        CHECK_OK(dut->ops->fill(dut, cumlp__at(dut, b, 2), n - 4, -1.0f));
        for (size_t i = 2; i < n - 2; i++)
            want[i] = -1.0f;
    }
    judge_download("sub-range copy, fill", b, got, want, n);
    float *h2 = test_alloc_floats(n - 2);
    test_fill_uniform(&rng, h2, n - 2, -10, 10);
    CHECK_OK(dut->ops->upload(dut, cumlp__at(dut, a, 1), h2, n - 2));
    memcpy(want, h, n * sizeof *want);
    memcpy(want + 1, h2, (n - 2) * sizeof *want);
    judge_download("sub-range upload", a, got, want, n);
    judge_download("sub-range download", cumlp__at(dut, a, 1), got, h2, n - 2);
    free(h2);
}

static void memory_run(size_t n) {
    begin_case("memory count=%zu", n);
    float *h = test_alloc_floats(n), *want = test_alloc_floats(n), *got = test_alloc_floats(n);
    test_fill_uniform(&rng, h, n, -10, 10);
    void *a = NULL, *b = NULL;
    CHECK_OK(dut->ops->alloc(dut, n, &a));
    CHECK_OK(dut->ops->alloc(dut, n, &b));
    memory_round_trips(a, b, h, want, got, n);
    if (n > 2) memory_sub_ranges(a, b, h, want, got, n);
    dut->ops->free(dut, a);
    dut->ops->free(dut, b);
    free(h);
    free(want);
    free(got);
}

static void row_memory(void) {
    static const size_t counts[] = {1, 3, 4, 5, 1000, 70001};
    for (int i = 0; i < COUNT(counts); i++)
        memory_run(counts[i]);
}

/* ---- whole networks -------------------------------------------------------------------------- */

static float *initial_parameters(cumlp_context *ctx, int init, int bias_init, uint64_t seed,
                                 int64_t *count) {
    static const int64_t layer_widths[] = {37, 65, 17, 3};
    static const int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_RELU, CUMLP_ACT_IDENTITY};
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.init = init;
    o.bias_init = bias_init;
    o.seed = seed;
    cumlp_network *net = NULL;
    CHECK_OK(cumlp_network_create(ctx, 3, layer_widths, acts, &o, &net));
    *count = net ? cumlp_network_num_parameters(net) : 0;
    float *p = test_alloc_floats((size_t)*count);
    if (net) CHECK_OK(cumlp_network_get_parameters(net, p, *count));
    cumlp_network_destroy(net);
    return p;
}

static void initial_parameters_run(int init, int bias_init) {
    begin_case("initial parameters init=%d bias_init=%d", init, bias_init);
    uint64_t seed = 1000u + (uint64_t)init * 7u + (uint64_t)bias_init;
    int64_t nd = 0, nr = 0;
    float *d = initial_parameters(dut, init, bias_init, seed, &nd);
    float *r = initial_parameters(ref, init, bias_init, seed, &nr);
    CHECK(nd == nr);
    if (nd == nr) {
        judge("parameters", bits_ratio(d, r, (size_t)nd));
        judge("parameters off", off_ratio(d, r, (size_t)nd));
    }
    free(d);
    free(r);
}

static void row_initial_uniform(void) {
    static const int inits[] = {CUMLP_INIT_UNIFORM, CUMLP_INIT_XAVIER_UNIFORM,
                                CUMLP_INIT_HE_UNIFORM};
    for (int i = 0; i < COUNT(inits); i++)
        for (int bias = CUMLP_BIAS_ZERO; bias <= CUMLP_BIAS_DRAWN; bias++)
            initial_parameters_run(inits[i], bias);
}

static void row_initial_normal(void) {
    static const int inits[] = {CUMLP_INIT_NORMAL, CUMLP_INIT_XAVIER_NORMAL, CUMLP_INIT_HE_NORMAL};
    for (int i = 0; i < COUNT(inits); i++)
        for (int bias = CUMLP_BIAS_ZERO; bias <= CUMLP_BIAS_DRAWN; bias++)
            initial_parameters_run(inits[i], bias);
}

typedef struct trajectory {
    const char *name;
    test_training run;
} trajectory;

/* test_cpu_backend.c's three runs (a new batch every step) and test_cuda_training.c's three (one
 * batch throughout): every activation, loss, optimizer and init family. */
static const trajectory trajectories[] = {
    {"relu softmax-CE momentum",
     {.num_layers = 3,
      .widths = {29, 64, 33, 10},
      .activations = {CUMLP_ACT_RELU, CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX},
      .loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY,
      .init = CUMLP_INIT_XAVIER_UNIFORM,
      .seed = 7,
      .optimizer = CUMLP_OPT_MOMENTUM,
      .learning_rate = 0.05,
      .batch = 64,
      .data_seed = 99,
      .fresh_batches = 1}},
    {"tanh gelu BCE sgd",
     {.num_layers = 3,
      .widths = {13, 31, 17, 5},
      .activations = {CUMLP_ACT_TANH, CUMLP_ACT_GELU, CUMLP_ACT_SIGMOID},
      .loss = CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY,
      .init = CUMLP_INIT_XAVIER_UNIFORM,
      .seed = 7,
      .optimizer = CUMLP_OPT_SGD,
      .learning_rate = 0.5,
      .batch = 48,
      .data_seed = 99,
      .fresh_batches = 1}},
    {"sigmoid leaky squared-error nesterov",
     {.num_layers = 3,
      .widths = {11, 23, 19, 3},
      .activations = {CUMLP_ACT_SIGMOID, CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_IDENTITY},
      .loss = CUMLP_LOSS_SQUARED_ERROR,
      .init = CUMLP_INIT_XAVIER_UNIFORM,
      .seed = 7,
      .optimizer = CUMLP_OPT_NESTEROV,
      .learning_rate = 0.02,
      .weight_decay = 1e-3,
      .batch = 37,
      .data_seed = 99,
      .fresh_batches = 1}},
    {"tanh gelu softmax-CE momentum",
     {.num_layers = 3,
      .widths = {12, 40, 24, 5},
      .activations = {CUMLP_ACT_TANH, CUMLP_ACT_GELU, CUMLP_ACT_SOFTMAX},
      .loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY,
      .init = CUMLP_INIT_XAVIER_UNIFORM,
      .seed = 7,
      .optimizer = CUMLP_OPT_MOMENTUM,
      .learning_rate = 0.05,
      .weight_decay = 1e-4,
      .batch = 96,
      .data_seed = 7}},
    {"relu leaky squared-error adam",
     {.num_layers = 3,
      .widths = {12, 33, 17, 3},
      .activations = {CUMLP_ACT_RELU, CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_SIGMOID},
      .loss = CUMLP_LOSS_SQUARED_ERROR,
      .init = CUMLP_INIT_HE_NORMAL,
      .seed = 2024,
      .optimizer = CUMLP_OPT_ADAM,
      .learning_rate = 1e-3,
      .weight_decay = 1e-4,
      .batch = 96,
      .data_seed = 2024}},
    {"sigmoid BCE nesterov",
     {.num_layers = 2,
      .widths = {12, 31, 4},
      .activations = {CUMLP_ACT_SIGMOID, CUMLP_ACT_SIGMOID},
      .loss = CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY,
      .init = CUMLP_INIT_XAVIER_NORMAL,
      .seed = 99,
      .optimizer = CUMLP_OPT_NESTEROV,
      .learning_rate = 0.1,
      .weight_decay = 1e-4,
      .batch = 96,
      .data_seed = 99}},
};

static size_t parameter_count(const test_training *t) {
    size_t n = 0;
    for (int l = 0; l < t->num_layers; l++)
        n += (size_t)(t->widths[l + 1] * (t->widths[l] + 1));
    return n;
}

static void trajectory_run(const trajectory *t) {
    begin_case("trajectory %s", t->name);
    double ld[STEPS], lr[STEPS];
    float *d = test_train(dut, &t->run, STEPS, ld), *r = test_train(ref, &t->run, STEPS, lr);
    CHECK_MSG(d && r, "%s: %s: training failed", cfg->name, case_name);
    if (d && r) {
        double worst = 0;
        for (int s = 0; s < STEPS; s++)
            worst = fmax(worst, value_ratio(ld[s], lr[s], fabs(lr[s])));
        judge("losses", worst);
        size_t n = parameter_count(&t->run);
        judge("final parameters", block_ratio(d, r, NULL, n, 1, n));
        CHECK_MSG(lr[STEPS - 1] < lr[0], "%s: %s does not learn: loss %g -> %g", cfg->name,
                  case_name, lr[0], lr[STEPS - 1]);
    }
    free(d);
    free(r);
}

static void row_trajectory(void) {
    for (int i = 0; i < COUNT(trajectories); i++)
        trajectory_run(&trajectories[i]);
}

/* 50 steps in fp32 against double (test_cpu_backend.c's and test_cuda_training.c's bound). */
static const bound trajectory_bound = {1e-4, 0};

/* ---- the table and the driver ---------------------------------------------------------------- */

static const row rows[] = {
    {"gemm", row_gemm, BY_GEMM_PRECISION, NULL},
    {"bias_activation", row_bias_activation, BY_ELEMENTWISE_PRECISION, NULL},
    {"activation_backward", row_activation_backward, BY_ELEMENTWISE_PRECISION, NULL},
    {"gemm epilogue forward", row_epilogue_forward, BY_GEMM_PRECISION, NULL},
    {"gemm epilogue backward", row_epilogue_backward, BY_GEMM_PRECISION, NULL},
    {"loss_delta", row_loss_delta, BY_ELEMENTWISE_PRECISION, NULL},
    {"optimizer_step", row_optimizer_step, BY_MASTER_PRECISION, NULL},
    {"optimizer_step default factors", row_default_factors, BY_MASTER_PRECISION,
     &default_factors_bound},
    {"random uniform", row_random_uniform, BY_BITS, NULL},
    {"random normal", row_random_normal, BY_NORMAL_DRAWS, NULL},
    {"scale_shift", row_scale_shift, BY_BITS, NULL},
    {"check_finite", row_check_finite, BY_BITS, NULL},
    {"check_finite sum_squares", row_sum_squares, BY_MASTER_PRECISION, &sum_squares_bound},
    {"memory", row_memory, BY_BITS, NULL},
    {"convert", row_convert, BY_BITS_16, NULL},
    {"initial parameters uniform", row_initial_uniform, BY_BITS, NULL},
    {"initial parameters normal", row_initial_normal, BY_NORMAL_PARAMETERS, NULL},
    {"trajectory", row_trajectory, BY_GEMM_PRECISION, &trajectory_bound},
};

/* Appends one row's entry to a summary line, after a comma unless it is the first. */
static void append(char *line, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void append(char *line, size_t size, const char *fmt, ...) {
    size_t used = strlen(line);
    if (used) used += (size_t)snprintf(line + used, size - used, ", ");
    va_list ap;
    va_start(ap, fmt);
    if (used < size) vsnprintf(line + used, size - used, fmt, ap);
    va_end(ap);
}

/* Every row on the configuration cfg, then its summary line. */
static void run_configuration(void) {
    char line[2048] = "", name[128];
    int rows_run = 0, cases = 0, left = 0, bugs = 0;
    for (int i = 0; i < COUNT(rows); i++) {
        tol = row_tolerance(&rows[i], cfg);
        if (!tol.runs) {
            append(line, sizeof line, "%s n/a", rows[i].name);
            continue;
        }
        memset(&stats, 0, sizeof stats);
        snprintf(name, sizeof name, "%s: %s", cfg->name, rows[i].name);
        harness_run(name, rows[i].run);
        rows_run++;
        cases += stats.cases;
        left += stats.large_left_out;
        bugs += stats.known_bugs;
        append(line, sizeof line, "%s %.2g [%d]", rows[i].name, stats.worst, stats.cases);
        if (tol.off_per_million)
            printf("     %s: %zu of %zu elements off (allowed: %d per million)\n", name, stats.off,
                   stats.compared, tol.off_per_million);
    }
    printf("summary %s: %d rows, %d cases", cfg->name, rows_run, cases);
    if (left) printf(", %d large cases left out", left);
    if (bugs) printf(", known bugs: %d", bugs);
    printf("; worst error / bound [cases]: %s\n", line);
}

static char device_missing[512];

/* Whether cfg must run: a cuda configuration under CUMLP_TEST_REQUIRE_GPU=1. */
static int gpu_required(void) {
    return cfg->backend == CUMLP_BACKEND_CUDA && test_gpu_required();
}

static void test_device_present(void) {
    CHECK_MSG(0, "%s (CUMLP_TEST_REQUIRE_GPU=1: a GPU run must not skip)", device_missing);
}

/* The dut context of cfg, or NULL after reporting the skip (or, where a GPU is required, the
 * failure). */
static cumlp_context *configuration_context(void) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = cfg->backend;
    o.precision = cfg->precision;
    o.num_threads = CPU_THREADS;
    cumlp_context *ctx = test_context_try(&o, device_missing, sizeof device_missing);
    if (ctx) return ctx;
    char name[128];
    snprintf(name, sizeof name, "%s: device", cfg->name);
    if (gpu_required())
        harness_run(name, test_device_present);
    else
        printf("skipped: %s: %s\n", cfg->name, device_missing);
    return NULL;
}

/* Whether CUMLP_TEST_CONFIGS (a comma-separated list of configuration names or backend names,
 * "cuda" or "cuda tf32") leaves cfg out; unset or empty runs every configuration. The GPU scripts
 * use it to keep the cpu rows out of the compute-sanitizer runs. */
static int filtered_out(void) {
    const char *list = getenv("CUMLP_TEST_CONFIGS");
    if (!list || !*list) return 0;
    const char *backend = cumlp_backend_name(cfg->backend);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if ((strlen(cfg->name) == n && strncmp(p, cfg->name, n) == 0) ||
            (strlen(backend) == n && strncmp(p, backend, n) == 0))
            return 0;
        p += n + (p[n] == ',');
    }
    printf("left out: %s (CUMLP_TEST_CONFIGS=%s)\n", cfg->name, list);
    return 1;
}

int main(void) {
    ref = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    int built = 0, ran = 0;
    for (int i = 0; i < COUNT(configs); i++) {
        cfg = &configs[i];
        work = cumlp__precision_storage(cfg->precision);
        if (filtered_out()) continue;
        if (!cumlp_backend_is_built(cfg->backend) && !gpu_required()) continue;
        built++;
        dut = configuration_context();
        if (!dut) continue;
        run_configuration();
        cumlp_context_destroy(dut);
        ran++;
    }
    cumlp_context_destroy(ref);
    if (!built) harness_skip("no backend but the reference is built");
    if (!ran && !harness_failed) harness_skip("no configuration could create a context");
    return harness_finish();
}
