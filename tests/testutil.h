/* testutil.h - helpers shared by the tests: random data, comparisons, contexts. */
#ifndef CUMLP_TESTUTIL_H
#define CUMLP_TESTUTIL_H

#include "cumlp.h"

#include <stddef.h>
#include <stdint.h>

/* A small deterministic generator for test data (splitmix64). */
typedef struct test_rng {
    uint64_t state;
} test_rng;

uint64_t test_rng_next(test_rng *r);
/* Uniform double in [lo, hi). */
double test_rng_uniform(test_rng *r, double lo, double hi);
/* Uniform integer in [0, n). */
int64_t test_rng_below(test_rng *r, int64_t n);
/* Fills x[0..n) with uniform floats in [lo, hi). */
void test_fill_uniform(test_rng *r, float *x, size_t n, double lo, double hi);
/* One-hot columns: rows x cols, a random class per column. */
void test_fill_one_hot(test_rng *r, float *y, int64_t rows, int64_t cols);

/* Largest |a - b| / max(|b|, floor) over n elements; NaN or Inf anywhere returns INFINITY. */
double test_max_rel_error(const float *a, const float *b, size_t n, double floor);

/* Allocates n floats (test aborts on failure: tests may exit, the library may not). */
float *test_alloc_floats(size_t n);

/* Whether CUMLP_TEST_REQUIRE_GPU=1 is set: the run is on a GPU machine (scripts/gpu_check.sh,
 * scripts/gpu_sanitize.sh), where a cuda backend that is not built or finds no device is a failure,
 * not a skip. */
int test_gpu_required(void);

/* Creates a context from options; returns NULL with the reason in why[why_size] when the backend
 * is not built or finds no device (the caller decides whether that skips), and aborts on any other
 * failure. */
cumlp_context *test_context_try(const cumlp_context_options *options, char *why, size_t why_size);

/* Creates a context for `backend`; exits 77 (skip) if the backend is not built or, for cuda,
 * finds no device (exits 1 instead for cuda under test_gpu_required()). */
cumlp_context *test_context_or_skip(int backend);

/* A tensor of ctx holding host[0..rows*cols). Aborts on failure. */
cumlp_tensor *test_tensor_from(cumlp_context *ctx, const float *host, int64_t rows, int64_t cols);

/* Creates a network; aborts with the message on failure. */
cumlp_network *test_network(cumlp_context *ctx, int num_layers, const int64_t *widths,
                            const int *activations, int loss, uint64_t seed);

/* Gives net a loss scaler that overflows fp16 at first (2^40, backed off step by step) and grows
 * every 3 clean steps: FP16's skips and growth within a few dozen steps. Aborts on failure. */
void test_overflowing_loss_scaler(cumlp_network *net);

/* A training run to compare backends by: the network, its initialization (biases drawn like the
 * weights, leaky ReLU slope 0.05), the optimizer and the data: inputs uniform in [-1, 1), targets
 * one-hot for softmax cross-entropy, else uniform in [0.05, 0.95). */
typedef struct test_training {
    int num_layers;
    int64_t widths[5];
    int activations[4];
    int loss, init;
    uint64_t seed; /* of the network's initial parameters */
    int optimizer; /* a cumlp_optimizer_type, with the defaults but for these two */
    double learning_rate, weight_decay;
    int64_t batch;
    uint64_t data_seed;
    int fresh_batches; /* 1: a new batch every step; 0: the same batch for every step */
} test_training;

/* Runs `steps` training steps of t in ctx, losses[s] being step s's loss. Returns the final
 * parameters (the caller frees them), or NULL after printing why when a call fails. */
float *test_train(cumlp_context *ctx, const test_training *t, int steps, double *losses);

/* Fraction of columns whose largest output is at the target's largest entry. */
double test_accuracy(cumlp_network *net, const float *X, const float *Y, int64_t n_in,
                     int64_t n_out, int64_t cols);

#endif
