/*
 * data_internal.h - the dataset structure and helpers shared by the dataset code (src/data/) and
 * the training loop (src/fit.c). Not installed; every function is hidden and named cumlp__*.
 */
#ifndef CUMLP_DATA_INTERNAL_H
#define CUMLP_DATA_INTERNAL_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* Largest class count a reader infers from the labels (a bound on the one-hot allocation). */
#define CUMLP_MAX_INFERRED_CLASSES 65536

struct cumlp_dataset {
    cumlp_context *ctx; /* for error messages only; may be NULL */
    int64_t n_features, n_outputs, n_samples;
    int num_classes; /* 0: regression */
    float *x;        /* n_features x n_samples, column-major */
    float *y;        /* n_outputs x n_samples, column-major */
};

/* Allocates a zeroed dataset after checking the shape (messages name the public function func).
 * Counts above CUMLP_DATASET_MAX_ELEMENTS fail with CUMLP_ERROR_SIZE_LIMIT. */
cumlp_status cumlp__dataset_new(cumlp_context *ctx, const char *func, int64_t n_features,
                                int64_t n_outputs, int64_t n_samples, int num_classes,
                                cumlp_dataset **out);

/* cumlp__dataset_new with the features x (n_features x n_samples floats from malloc), which the
 * dataset takes over; on failure x is freed. */
cumlp_status cumlp__dataset_adopt(cumlp_context *ctx, const char *func, int64_t n_features,
                                  int64_t n_outputs, int64_t n_samples, int num_classes, float *x,
                                  cumlp_dataset **out);

/* Opens a regular file for reading into *fd; a FIFO, a device or a directory is CUMLP_ERROR_IO at
 * once (never a blocking open). */
cumlp_status cumlp__open_regular(cumlp_context *ctx, const char *path, int *fd);

/* perm[0..n) = a permutation of 0..n-1 drawn from seed (Fisher-Yates, unbiased). */
void cumlp__permutation(uint64_t seed, int64_t n, int64_t *perm);

/* Reads a whole file into a new buffer with one extra NUL byte after the data. */
cumlp_status cumlp__read_file(cumlp_context *ctx, const char *path, char **data, size_t *size);

#endif
