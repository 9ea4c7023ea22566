/* dataset.c - datasets in host memory: creation, accessors, one-hot labels, shuffle, split,
 * scaling. */
#define _POSIX_C_SOURCE 200809L /* open, fstat, fcntl, read */

#include "data_internal.h"
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- creation and accessors ---------------------------------------------------------------- */

/* A dataset of the given shape whose features are x, or new zeroed ones when x is NULL. */
static cumlp_status dataset_make(cumlp_context *ctx, const char *func, int64_t n_features,
                                 int64_t n_outputs, int64_t n_samples, int num_classes, float *x,
                                 cumlp_dataset **out) {
    *out = NULL;
    int64_t nx, ny;
    cumlp_status st = CUMLP_SUCCESS;
    if (n_features < 1 || n_outputs < 1 || n_samples < 1)
        st = cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                         "a dataset needs at least 1 feature, output and sample (got %lld, %lld, "
                         "%lld)",
                         (long long)n_features, (long long)n_outputs, (long long)n_samples);
    else if (n_features > CUMLP_MAX_DIM || n_outputs > CUMLP_MAX_DIM || n_samples > CUMLP_MAX_DIM ||
             !cumlp__mul_size(n_features, n_samples, CUMLP_DATASET_MAX_ELEMENTS, &nx) ||
             !cumlp__mul_size(n_outputs, n_samples, CUMLP_DATASET_MAX_ELEMENTS, &ny))
        st = cumlp__fail(ctx, CUMLP_ERROR_SIZE_LIMIT, func,
                         "%lld samples of %lld features and %lld outputs exceed the dataset size "
                         "limit",
                         (long long)n_samples, (long long)n_features, (long long)n_outputs);
    else if (num_classes < 0 || (num_classes > 0 && num_classes != n_outputs))
        st = cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                         "num_classes is %d; it must be 0 (regression) or equal n_outputs (%lld)",
                         num_classes, (long long)n_outputs);
    if (st != CUMLP_SUCCESS) {
        free(x);
        return st;
    }
    cumlp_dataset *ds = calloc(1, sizeof *ds);
    if (!x) x = calloc((size_t)nx, sizeof *x);
    float *y = calloc((size_t)ny, sizeof *y);
    if (!ds || !x || !y) {
        free(ds);
        free(x);
        free(y);
        return cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, func,
                           "out of host memory for %lld samples", (long long)n_samples);
    }
    ds->ctx = ctx;
    ds->n_features = n_features;
    ds->n_outputs = n_outputs;
    ds->n_samples = n_samples;
    ds->num_classes = num_classes;
    ds->x = x;
    ds->y = y;
    *out = ds;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp__dataset_new(cumlp_context *ctx, const char *func, int64_t n_features,
                                int64_t n_outputs, int64_t n_samples, int num_classes,
                                cumlp_dataset **out) {
    return dataset_make(ctx, func, n_features, n_outputs, n_samples, num_classes, NULL, out);
}

cumlp_status cumlp__dataset_adopt(cumlp_context *ctx, const char *func, int64_t n_features,
                                  int64_t n_outputs, int64_t n_samples, int num_classes, float *x,
                                  cumlp_dataset **out) {
    return dataset_make(ctx, func, n_features, n_outputs, n_samples, num_classes, x, out);
}

cumlp_status cumlp_dataset_create(cumlp_context *ctx, int64_t n_features, int64_t n_outputs,
                                  int64_t n_samples, int num_classes, cumlp_dataset **ds) {
    CUMLP_FAIL_IF(!ds, ctx, CUMLP_ERROR_INVALID_VALUE, "ds is NULL");
    return cumlp__dataset_new(ctx, __func__, n_features, n_outputs, n_samples, num_classes, ds);
}

void cumlp_dataset_destroy(cumlp_dataset *ds) {
    if (!ds) return;
    free(ds->x);
    free(ds->y);
    free(ds);
}

int64_t cumlp_dataset_num_samples(const cumlp_dataset *ds) {
    return ds ? ds->n_samples : -1;
}

int64_t cumlp_dataset_num_features(const cumlp_dataset *ds) {
    return ds ? ds->n_features : -1;
}

int64_t cumlp_dataset_num_outputs(const cumlp_dataset *ds) {
    return ds ? ds->n_outputs : -1;
}

int cumlp_dataset_num_classes(const cumlp_dataset *ds) {
    return ds ? ds->num_classes : -1;
}

float *cumlp_dataset_features(cumlp_dataset *ds) {
    return ds ? ds->x : NULL;
}

float *cumlp_dataset_targets(cumlp_dataset *ds) {
    return ds ? ds->y : NULL;
}

int cumlp_dataset_label(const cumlp_dataset *ds, int64_t i) {
    if (!ds || ds->num_classes == 0 || i < 0 || i >= ds->n_samples) return -1;
    return (int)cumlp_argmax(ds->y + i * ds->n_outputs, ds->n_outputs);
}

cumlp_status cumlp_dataset_set_labels(cumlp_dataset *ds, const int32_t *labels, int64_t count) {
    CUMLP_FAIL_IF(!ds, NULL, CUMLP_ERROR_INVALID_VALUE, "ds is NULL");
    CUMLP_FAIL_IF(!labels, ds->ctx, CUMLP_ERROR_INVALID_VALUE, "labels is NULL");
    CUMLP_FAIL_IF(ds->num_classes == 0, ds->ctx, CUMLP_ERROR_INVALID_VALUE,
                  "the dataset is a regression dataset (no classes)");
    CUMLP_FAIL_IF(count != ds->n_samples, ds->ctx, CUMLP_ERROR_INVALID_VALUE,
                  "count is %lld but the dataset has %lld samples", (long long)count,
                  (long long)ds->n_samples);
    for (int64_t i = 0; i < count; i++)
        CUMLP_FAIL_IF(labels[i] < 0 || labels[i] >= ds->num_classes, ds->ctx,
                      CUMLP_ERROR_INVALID_VALUE, "label %ld of sample %lld is outside [0, %d)",
                      (long)labels[i], (long long)i, ds->num_classes);
    memset(ds->y, 0, (size_t)(ds->n_outputs * ds->n_samples) * sizeof *ds->y);
    for (int64_t i = 0; i < count; i++)
        ds->y[i * ds->n_outputs + labels[i]] = 1.0f;
    return CUMLP_SUCCESS;
}

/* ---- random permutations ------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, n) by rejection, so that every permutation is equally likely. */
static uint64_t below(uint64_t *state, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do
        r = splitmix64(state);
    while (r >= limit);
    return r % n;
}

void cumlp__permutation(uint64_t seed, int64_t n, int64_t *perm) {
    uint64_t state = seed;
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)below(&state, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static void swap_columns(float *m, int64_t rows, int64_t a, int64_t b) {
    float *ca = m + a * rows, *cb = m + b * rows;
    for (int64_t r = 0; r < rows; r++) {
        float t = ca[r];
        ca[r] = cb[r];
        cb[r] = t;
    }
}

cumlp_status cumlp_dataset_shuffle(cumlp_dataset *ds, uint64_t seed) {
    CUMLP_FAIL_IF(!ds, NULL, CUMLP_ERROR_INVALID_VALUE, "ds is NULL");
    uint64_t state = seed;
    for (int64_t i = ds->n_samples - 1; i > 0; i--) {
        int64_t j = (int64_t)below(&state, (uint64_t)i + 1);
        if (j == i) continue;
        swap_columns(ds->x, ds->n_features, i, j);
        swap_columns(ds->y, ds->n_outputs, i, j);
    }
    return CUMLP_SUCCESS;
}

/* ---- subsets and splits -------------------------------------------------------------------- */

/* A new dataset of the samples idx[0..count) of ds. */
static cumlp_status gather(const cumlp_dataset *ds, const char *func, const int64_t *idx,
                           int64_t count, cumlp_dataset **out) {
    cumlp_status st = cumlp__dataset_new(ds->ctx, func, ds->n_features, ds->n_outputs, count,
                                         ds->num_classes, out);
    if (st != CUMLP_SUCCESS) return st;
    size_t fx = (size_t)ds->n_features, fy = (size_t)ds->n_outputs;
    for (int64_t i = 0; i < count; i++) {
        memcpy((*out)->x + (size_t)i * fx, ds->x + (size_t)idx[i] * fx, fx * sizeof(float));
        memcpy((*out)->y + (size_t)i * fy, ds->y + (size_t)idx[i] * fy, fy * sizeof(float));
    }
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_dataset_subset(const cumlp_dataset *ds, int64_t first, int64_t count,
                                  cumlp_dataset **out) {
    if (out) *out = NULL;
    CUMLP_FAIL_IF(!ds || !out, ds ? ds->ctx : NULL, CUMLP_ERROR_INVALID_VALUE, "%s is NULL",
                  ds ? "out" : "ds");
    CUMLP_FAIL_IF(first < 0 || count < 1 || first >= ds->n_samples || count > ds->n_samples - first,
                  ds->ctx, CUMLP_ERROR_INVALID_VALUE,
                  "samples [%lld, %lld + %lld) are outside [0, %lld) or empty", (long long)first,
                  (long long)first, (long long)count, (long long)ds->n_samples);
    int64_t *idx = malloc((size_t)count * sizeof *idx);
    CUMLP_FAIL_IF(!idx, ds->ctx, CUMLP_ERROR_ALLOC_FAILED, "out of memory");
    for (int64_t i = 0; i < count; i++)
        idx[i] = first + i;
    cumlp_status st = gather(ds, __func__, idx, count, out);
    free(idx);
    return st;
}

/* The samples a split gives the validation side: validation_fraction of them, rounded, leaving
 * at least one on each side. */
static cumlp_status validation_count(const cumlp_dataset *ds, const char *func,
                                     double validation_fraction, int64_t *count) {
    *count = 0;
    double n_val = floor(validation_fraction * (double)ds->n_samples + 0.5);
    if (!(validation_fraction > 0 && validation_fraction < 1) || n_val < 1 ||
        n_val > (double)(ds->n_samples - 1))
        return cumlp__fail(ds->ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "validation_fraction %g of %lld samples must leave at least one sample "
                           "on each side",
                           validation_fraction, (long long)ds->n_samples);
    *count = (int64_t)n_val;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_dataset_split(const cumlp_dataset *ds, double validation_fraction, uint64_t seed,
                                 cumlp_dataset **train, cumlp_dataset **validation) {
    if (train) *train = NULL;
    if (validation) *validation = NULL;
    CUMLP_FAIL_IF(!ds || !train || !validation, ds ? ds->ctx : NULL, CUMLP_ERROR_INVALID_VALUE,
                  "a NULL argument");
    int64_t nv;
    cumlp_status st = validation_count(ds, __func__, validation_fraction, &nv);
    if (st != CUMLP_SUCCESS) return st;
    int64_t *perm = malloc((size_t)ds->n_samples * sizeof *perm);
    CUMLP_FAIL_IF(!perm, ds->ctx, CUMLP_ERROR_ALLOC_FAILED, "out of memory");
    cumlp__permutation(seed, ds->n_samples, perm);
    st = gather(ds, __func__, perm, nv, validation);
    if (st == CUMLP_SUCCESS) st = gather(ds, __func__, perm + nv, ds->n_samples - nv, train);
    free(perm);
    if (st != CUMLP_SUCCESS) {
        cumlp_dataset_destroy(*validation);
        *validation = NULL;
    }
    return st;
}

/* Puts column order[j] of the rows x n column-major matrix m at column j, for every j, in place:
 * each cycle of the permutation moves through tmp (one column); done marks the columns set. */
static void permute_columns(float *m, int64_t rows, const int64_t *order, int64_t n,
                            unsigned char *done, float *tmp) {
    size_t bytes = (size_t)rows * sizeof *m;
    memset(done, 0, (size_t)n);
    for (int64_t start = 0; start < n; start++) {
        if (done[start]) continue;
        memcpy(tmp, m + start * rows, bytes);
        for (int64_t j = start;;) {
            done[j] = 1;
            int64_t k = order[j];
            if (k == start) {
                memcpy(m + j * rows, tmp, bytes);
                break;
            }
            memcpy(m + j * rows, m + k * rows, bytes);
            j = k;
        }
    }
}

/* Reverses a[0..n). */
static void reverse(int64_t *a, int64_t n) {
    for (int64_t i = 0, j = n - 1; i < j; i++, j--) {
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

cumlp_status cumlp_dataset_split_off(cumlp_dataset *ds, double validation_fraction, uint64_t seed,
                                     cumlp_dataset **validation) {
    if (validation) *validation = NULL;
    CUMLP_FAIL_IF(!ds || !validation, ds ? ds->ctx : NULL, CUMLP_ERROR_INVALID_VALUE,
                  "a NULL argument");
    int64_t nv;
    cumlp_status st = validation_count(ds, __func__, validation_fraction, &nv);
    if (st != CUMLP_SUCCESS) return st;
    int64_t n = ds->n_samples, nt = n - nv;
    size_t widest = (size_t)(ds->n_features > ds->n_outputs ? ds->n_features : ds->n_outputs);
    int64_t *order = malloc((size_t)n * sizeof *order);
    unsigned char *done = malloc((size_t)n);
    float *tmp = malloc(widest * sizeof *tmp);
    st = order && done && tmp
             ? CUMLP_SUCCESS
             : cumlp__fail(ds->ctx, CUMLP_ERROR_ALLOC_FAILED, __func__, "out of memory");
    if (st == CUMLP_SUCCESS) {
        cumlp__permutation(seed, n, order); /* as cumlp_dataset_split draws it */
        st = gather(ds, __func__, order, nv, validation);
    }
    if (st == CUMLP_SUCCESS) {
        /* rotated left by nv: the training samples first, in cumlp_dataset_split's order */
        reverse(order, nv);
        reverse(order + nv, nt);
        reverse(order, n);
        permute_columns(ds->x, ds->n_features, order, n, done, tmp);
        permute_columns(ds->y, ds->n_outputs, order, n, done, tmp);
        ds->n_samples = nt;
        float *x = realloc(ds->x, (size_t)(ds->n_features * nt) * sizeof *x);
        float *y = realloc(ds->y, (size_t)(ds->n_outputs * nt) * sizeof *y);
        if (x) ds->x = x; /* a failed shrink keeps the larger block */
        if (y) ds->y = y;
    }
    free(order);
    free(done);
    free(tmp);
    return st;
}

/* ---- scaling ------------------------------------------------------------------------------- */

struct cumlp_scaler {
    cumlp_context *ctx;
    int64_t n;
    float *offset, *scale;
};

static cumlp_status scaler_new(cumlp_context *ctx, const char *func, int64_t n,
                               cumlp_scaler **out) {
    cumlp_scaler *s = calloc(1, sizeof *s);
    float *offset = malloc((size_t)n * sizeof *offset);
    float *scale = malloc((size_t)n * sizeof *scale);
    if (!s || !offset || !scale) {
        free(s);
        free(offset);
        free(scale);
        return cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory");
    }
    s->ctx = ctx;
    s->n = n;
    s->offset = offset;
    s->scale = scale;
    *out = s;
    return CUMLP_SUCCESS;
}

void cumlp_scaler_destroy(cumlp_scaler *scaler) {
    if (!scaler) return;
    free(scaler->offset);
    free(scaler->scale);
    free(scaler);
}

/* Statistics of the values x[f + i * stride] for f in [first, first + width), all samples i. */
static void statistics(const cumlp_dataset *ds, int64_t first, int64_t width, int method,
                       double *offset, double *scale) {
    int64_t nf = ds->n_features, n = ds->n_samples;
    double count = (double)width * (double)n;
    if (method == CUMLP_SCALE_MINMAX) {
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < n; i++)
            for (int64_t f = first; f < first + width; f++) {
                double v = ds->x[i * nf + f];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
        *offset = lo;
        *scale = hi > lo ? 1.0 / (hi - lo) : 1.0;
        return;
    }
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t f = first; f < first + width; f++)
            sum += ds->x[i * nf + f];
    double mean = sum / count;
    for (int64_t i = 0; i < n; i++)
        for (int64_t f = first; f < first + width; f++) {
            double d = ds->x[i * nf + f] - mean;
            sq += d * d;
        }
    double sd = sqrt(sq / count);
    *offset = mean;
    *scale = sd > 0 ? 1.0 / sd : 1.0;
}

cumlp_status cumlp_scaler_fit(const cumlp_dataset *train, int method, int per_feature,
                              cumlp_scaler **scaler) {
    if (scaler) *scaler = NULL;
    CUMLP_FAIL_IF(!train || !scaler, train ? train->ctx : NULL, CUMLP_ERROR_INVALID_VALUE,
                  "%s is NULL", train ? "scaler" : "train");
    CUMLP_FAIL_IF(method != CUMLP_SCALE_MINMAX && method != CUMLP_SCALE_STANDARDIZE, train->ctx,
                  CUMLP_ERROR_INVALID_VALUE, "unknown method %d", method);
    cumlp_scaler *s = NULL;
    cumlp_status st = scaler_new(train->ctx, __func__, train->n_features, &s);
    if (st != CUMLP_SUCCESS) return st;
    double offset = 0, scale = 1;
    if (!per_feature) statistics(train, 0, train->n_features, method, &offset, &scale);
    for (int64_t f = 0; f < train->n_features; f++) {
        if (per_feature) statistics(train, f, 1, method, &offset, &scale);
        s->offset[f] = (float)offset;
        s->scale[f] = (float)scale;
        /* A spread so small (a subnormal sd or range) that 1/spread overflows fp32 is treated as
         * none at all: the feature is constant for the network's purposes, scale 1. */
        if (!isfinite(s->scale[f])) s->scale[f] = 1.0f;
        if (!isfinite(s->offset[f]) || s->scale[f] == 0) {
            cumlp_scaler_destroy(s);
            return cumlp__fail(train->ctx, CUMLP_ERROR_NON_FINITE, __func__,
                               "feature %lld has no finite fp32 scaling (offset %g, scale %g)",
                               (long long)f, offset, scale);
        }
    }
    *scaler = s;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_scaler_create(cumlp_context *ctx, int64_t count, const float *offsets,
                                 const float *scales, cumlp_scaler **scaler) {
    if (scaler) *scaler = NULL;
    CUMLP_FAIL_IF(!offsets || !scales || !scaler, ctx, CUMLP_ERROR_INVALID_VALUE,
                  "a NULL argument");
    CUMLP_FAIL_IF(count < 1 || count > CUMLP_MAX_DIM, ctx, CUMLP_ERROR_INVALID_VALUE,
                  "count %lld is out of range", (long long)count);
    for (int64_t f = 0; f < count; f++)
        CUMLP_FAIL_IF(!isfinite(offsets[f]) || !isfinite(scales[f]) || scales[f] == 0, ctx,
                      CUMLP_ERROR_INVALID_VALUE,
                      "feature %lld has offset %g and scale %g (need finite, scale nonzero)",
                      (long long)f, offsets[f], scales[f]);
    cumlp_status st = scaler_new(ctx, __func__, count, scaler);
    if (st != CUMLP_SUCCESS) return st;
    memcpy((*scaler)->offset, offsets, (size_t)count * sizeof *offsets);
    memcpy((*scaler)->scale, scales, (size_t)count * sizeof *scales);
    return CUMLP_SUCCESS;
}

int64_t cumlp_scaler_num_features(const cumlp_scaler *scaler) {
    return scaler ? scaler->n : -1;
}

cumlp_status cumlp_scaler_get(const cumlp_scaler *scaler, float *offsets, float *scales,
                              int64_t count) {
    CUMLP_FAIL_IF(!scaler, NULL, CUMLP_ERROR_INVALID_VALUE, "scaler is NULL");
    CUMLP_FAIL_IF(count != scaler->n, scaler->ctx, CUMLP_ERROR_INVALID_VALUE,
                  "count is %lld but the scaler has %lld features", (long long)count,
                  (long long)scaler->n);
    if (offsets) memcpy(offsets, scaler->offset, (size_t)count * sizeof *offsets);
    if (scales) memcpy(scales, scaler->scale, (size_t)count * sizeof *scales);
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_scaler_apply(const cumlp_scaler *scaler, cumlp_dataset *ds) {
    CUMLP_FAIL_IF(!scaler || !ds, scaler ? scaler->ctx : NULL, CUMLP_ERROR_INVALID_VALUE,
                  "%s is NULL", scaler ? "ds" : "scaler");
    CUMLP_FAIL_IF(ds->n_features != scaler->n, ds->ctx, CUMLP_ERROR_INVALID_VALUE,
                  "the dataset has %lld features but the scaler %lld", (long long)ds->n_features,
                  (long long)scaler->n);
    for (int64_t i = 0; i < ds->n_samples; i++) {
        float *col = ds->x + i * ds->n_features;
        for (int64_t f = 0; f < ds->n_features; f++)
            col[f] = (col[f] - scaler->offset[f]) * scaler->scale[f];
    }
    return CUMLP_SUCCESS;
}

/* ---- files --------------------------------------------------------------------------------- */

/* Opens a regular file for reading. O_NONBLOCK keeps open() from waiting for a FIFO's writer (or
 * a device); anything but a regular file is refused, and then blocking reads are restored. */
cumlp_status cumlp__open_regular(cumlp_context *ctx, const char *path, int *fd_out) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return cumlp__error(ctx, CUMLP_ERROR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    cumlp_status st = CUMLP_SUCCESS;
    int flags;
    if (fstat(fd, &sb) != 0)
        st = cumlp__error(ctx, CUMLP_ERROR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = cumlp__error(ctx, CUMLP_ERROR_IO, "%s: is %s, not a regular file", path,
                          cumlp__file_kind(sb.st_mode));
    else if ((flags = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1)
        st = cumlp__error(ctx, CUMLP_ERROR_IO, "%s: cannot set blocking reads: %s", path,
                          strerror(errno));
    if (st != CUMLP_SUCCESS) {
        close(fd);
        return st;
    }
    *fd_out = fd;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp__read_file(cumlp_context *ctx, const char *path, char **data, size_t *size) {
    *data = NULL;
    *size = 0;
    int fd = -1;
    cumlp_status st = cumlp__open_regular(ctx, path, &fd);
    if (st != CUMLP_SUCCESS) return st;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) st = cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "%s: out of memory", path);
    while (st == CUMLP_SUCCESS) {
        if (len == cap) {
            char *bigger = cap < SIZE_MAX / 4 ? realloc(buf, cap * 2 + 1) : NULL;
            if (!bigger) {
                st = cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "%s: out of memory at %zu bytes",
                                  path, len);
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0)
            st = cumlp__error(ctx, CUMLP_ERROR_IO, "%s: read error at byte %zu: %s", path, len,
                              strerror(errno));
        if (got <= 0) break;
        len += (size_t)got;
    }
    close(fd);
    if (st != CUMLP_SUCCESS) {
        free(buf);
        return st;
    }
    buf[len] = '\0';
    *data = buf;
    *size = len;
    return CUMLP_SUCCESS;
}
