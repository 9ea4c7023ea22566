/* testutil.c - helpers shared by the tests. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t test_rng_next(test_rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double test_rng_uniform(test_rng *r, double lo, double hi) {
    return lo + (hi - lo) * (double)(test_rng_next(r) >> 11) * 0x1.0p-53;
}

int64_t test_rng_below(test_rng *r, int64_t n) {
    return (int64_t)(test_rng_next(r) % (uint64_t)n);
}

void test_fill_uniform(test_rng *r, float *x, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++)
        x[i] = (float)test_rng_uniform(r, lo, hi);
}

void test_fill_one_hot(test_rng *r, float *y, int64_t rows, int64_t cols) {
    for (int64_t j = 0; j < cols; j++) {
        int64_t k = test_rng_below(r, rows);
        for (int64_t i = 0; i < rows; i++)
            y[i + j * rows] = i == k ? 1.0f : 0.0f;
    }
}

double test_max_rel_error(const float *a, const float *b, size_t n, double floor) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        double denom = fmax(fabs((double)b[i]), floor);
        double rel = fabs((double)a[i] - (double)b[i]) / denom;
        if (rel > worst) worst = rel;
    }
    return worst;
}

float *test_alloc_floats(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "test: out of memory\n");
        abort();
    }
    return p;
}

int test_gpu_required(void) {
    const char *v = getenv("CUMLP_TEST_REQUIRE_GPU");
    return v && strcmp(v, "1") == 0;
}

cumlp_context *test_context_try(const cumlp_context_options *options, char *why, size_t why_size) {
    if (!cumlp_backend_is_built(options->backend)) {
        snprintf(why, why_size, "the %s backend is not built",
                 cumlp_backend_name(options->backend));
        return NULL;
    }
    cumlp_context *ctx = NULL;
    cumlp_status st = cumlp_context_create(&ctx, options);
    if (st == CUMLP_ERROR_NO_DEVICE) {
        snprintf(why, why_size, "%s", cumlp_last_error(NULL));
        return NULL;
    }
    if (st != CUMLP_SUCCESS) {
        fprintf(stderr, "test: cumlp_context_create(%s): %s\n",
                cumlp_backend_name(options->backend), cumlp_last_error(NULL));
        abort();
    }
    return ctx;
}

cumlp_context *test_context_or_skip(int backend) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = backend;
    char why[512];
    cumlp_context *ctx = test_context_try(&o, why, sizeof why);
    if (ctx) return ctx;
    if (backend == CUMLP_BACKEND_CUDA && test_gpu_required()) {
        fprintf(stderr, "test: %s, but CUMLP_TEST_REQUIRE_GPU=1 asks for a GPU\n", why);
        exit(1);
    }
    printf("skipped: %s\n", why);
    exit(77);
}

cumlp_tensor *test_tensor_from(cumlp_context *ctx, const float *host, int64_t rows, int64_t cols) {
    cumlp_tensor *t = NULL;
    if (cumlp_tensor_create(ctx, rows, cols, &t) != CUMLP_SUCCESS ||
        cumlp_tensor_upload(t, host, rows * cols) != CUMLP_SUCCESS) {
        fprintf(stderr, "test: tensor %lldx%lld: %s\n", (long long)rows, (long long)cols,
                cumlp_last_error(ctx));
        abort();
    }
    return t;
}

cumlp_network *test_network(cumlp_context *ctx, int num_layers, const int64_t *widths,
                            const int *activations, int loss, uint64_t seed) {
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.loss = loss;
    o.seed = seed;
    cumlp_network *net = NULL;
    if (cumlp_network_create(ctx, num_layers, widths, activations, &o, &net) != CUMLP_SUCCESS) {
        fprintf(stderr, "test: cumlp_network_create: %s\n", cumlp_last_error(ctx));
        abort();
    }
    return net;
}

void test_overflowing_loss_scaler(cumlp_network *net) {
    cumlp_loss_scaler s;
    cumlp_status st = cumlp_loss_scaler_defaults(&s);
    s.scale = 0x1p40;
    s.growth_interval = 3;
    if (st == CUMLP_SUCCESS) st = cumlp_network_set_loss_scaler(net, &s);
    if (st != CUMLP_SUCCESS) {
        fprintf(stderr, "test: setting the loss scaler failed (status %d)\n", (int)st);
        abort();
    }
}

static void training_batch(const test_training *t, test_rng *r, float *x, float *y) {
    int64_t n_in = t->widths[0], n_out = t->widths[t->num_layers];
    test_fill_uniform(r, x, (size_t)(n_in * t->batch), -1, 1);
    if (t->loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY)
        test_fill_one_hot(r, y, n_out, t->batch);
    else
        test_fill_uniform(r, y, (size_t)(n_out * t->batch), 0.05, 0.95);
}

/* Steps of t on net, each on a batch uploaded to X and Y; returns the first failure. */
static cumlp_status training_steps(cumlp_network *net, cumlp_optimizer *opt, const test_training *t,
                                   int steps, double *losses) {
    int64_t n_in = t->widths[0], n_out = t->widths[t->num_layers];
    cumlp_context *ctx = cumlp_network_context(net);
    float *x = test_alloc_floats((size_t)(n_in * t->batch));
    float *y = test_alloc_floats((size_t)(n_out * t->batch));
    cumlp_tensor *X = NULL, *Y = NULL;
    test_rng data = {t->data_seed};
    cumlp_status st = cumlp_tensor_create(ctx, n_in, t->batch, &X);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_create(ctx, n_out, t->batch, &Y);
    for (int s = 0; s < steps && st == CUMLP_SUCCESS; s++) {
        if (s == 0 || t->fresh_batches) {
            training_batch(t, &data, x, y);
            st = cumlp_tensor_upload(X, x, n_in * t->batch);
            if (st == CUMLP_SUCCESS) st = cumlp_tensor_upload(Y, y, n_out * t->batch);
        }
        losses[s] = NAN;
        if (st == CUMLP_SUCCESS) st = cumlp_train_step(net, opt, X, Y, &losses[s]);
    }
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
    free(x);
    free(y);
    return st;
}

float *test_train(cumlp_context *ctx, const test_training *t, int steps, double *losses) {
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.loss = t->loss;
    o.init = t->init;
    o.bias_init = CUMLP_BIAS_DRAWN;
    o.seed = t->seed;
    o.leaky_relu_slope = 0.05;
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.type = t->optimizer;
    oo.learning_rate = t->learning_rate;
    oo.weight_decay = t->weight_decay;
    cumlp_network *net = NULL;
    cumlp_optimizer *opt = NULL;
    float *params = NULL;
    int64_t n = 0;
    cumlp_status st = cumlp_network_create(ctx, t->num_layers, t->widths, t->activations, &o, &net);
    if (st == CUMLP_SUCCESS) st = cumlp_optimizer_create(net, &oo, &opt);
    if (st == CUMLP_SUCCESS) st = training_steps(net, opt, t, steps, losses);
    if (st == CUMLP_SUCCESS) {
        n = cumlp_network_num_parameters(net);
        params = test_alloc_floats((size_t)n);
        st = cumlp_network_get_parameters(net, params, n);
    }
    if (st != CUMLP_SUCCESS) {
        fprintf(stderr, "test: training on %s: %s\n",
                cumlp_backend_name(cumlp_context_backend(ctx)), cumlp_last_error(ctx));
        free(params);
        params = NULL;
    }
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    return params;
}

static int64_t argmax_column(const float *x, int64_t rows, int64_t j) {
    int64_t best = 0;
    for (int64_t i = 1; i < rows; i++)
        if (x[i + j * rows] > x[best + j * rows]) best = i;
    return best;
}

double test_accuracy(cumlp_network *net, const float *X, const float *Y, int64_t n_in,
                     int64_t n_out, int64_t cols) {
    cumlp_context *ctx = cumlp_network_context(net);
    cumlp_tensor *x = test_tensor_from(ctx, X, n_in, cols);
    cumlp_tensor *y = NULL;
    float *out = test_alloc_floats((size_t)(n_out * cols));
    int64_t correct = 0;
    if (cumlp_tensor_create(ctx, n_out, cols, &y) == CUMLP_SUCCESS &&
        cumlp_forward(net, x, y) == CUMLP_SUCCESS &&
        cumlp_tensor_download(y, out, n_out * cols) == CUMLP_SUCCESS) {
        for (int64_t j = 0; j < cols; j++) {
            if (n_out == 1)
                correct += (out[j] > 0.5f) == (Y[j] > 0.5f);
            else
                correct += argmax_column(out, n_out, j) == argmax_column(Y, n_out, j);
        }
    }
    free(out);
    cumlp_tensor_destroy(x);
    cumlp_tensor_destroy(y);
    return (double)correct / (double)cols;
}
