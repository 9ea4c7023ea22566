/* ctest-labels: unit cuda */
/*
 * Backpropagation against central finite differences in double precision, for every hidden
 * activation with every loss and each output activation that loss accepts, on shapes that include
 * 1x1, odd widths and batches of 1 and 7: max relative error <= 1e-6 on the reference backend.
 * The fp32 backends (when built and usable) are held to 1e-3: their analytic gradients carry fp32
 * rounding.
 */
#include "harness.h"
#include "testutil.h"

#include <stdio.h>

typedef struct combo {
    int loss;
    int output;
} combo;

static const combo combos[] = {
    {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_IDENTITY},
    {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_SIGMOID},
    {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_TANH},
    {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_RELU},
    {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_LEAKY_RELU},
    {CUMLP_LOSS_SQUARED_ERROR, CUMLP_ACT_GELU},
    {CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, CUMLP_ACT_SOFTMAX},
    {CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, CUMLP_ACT_SIGMOID},
};
static const int hidden_acts[] = {CUMLP_ACT_IDENTITY, CUMLP_ACT_SIGMOID,    CUMLP_ACT_TANH,
                                  CUMLP_ACT_RELU,     CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_GELU};

/* Targets the loss accepts: one-hot columns for CE, values in [0, 1] for BCE, any for SE. */
static void fill_targets(test_rng *r, int loss, float *t, int64_t rows, int64_t cols) {
    if (loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY && rows > 1)
        test_fill_one_hot(r, t, rows, cols);
    else if (loss == CUMLP_LOSS_SQUARED_ERROR)
        test_fill_uniform(r, t, (size_t)(rows * cols), -1, 1);
    else
        test_fill_uniform(r, t, (size_t)(rows * cols), 0, 1);
}

/* The larger of two errors, where a NaN is worse than anything (and stays the answer). */
static double worse(double a, double b) {
    return isnan(a) || b <= a ? a : b;
}

/* Worst relative error of one network and batch on ctx's backend. */
static double check_one(cumlp_context *ctx, int num_layers, const int64_t *widths, const int *acts,
                        int loss, int64_t batch, uint64_t seed) {
    test_rng r = {seed};
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.loss = loss;
    o.seed = seed;
    o.bias_init = CUMLP_BIAS_DRAWN; /* nonzero biases exercise their gradients fully */
    o.leaky_relu_slope = 0.1;
    cumlp_network *net = NULL;
    if (cumlp_network_create(ctx, num_layers, widths, acts, &o, &net) != CUMLP_SUCCESS) {
        CHECK_MSG(0, "create: %s", cumlp_last_error(ctx));
        return INFINITY;
    }
    int64_t n_in = widths[0], n_out = widths[num_layers];
    float *x = test_alloc_floats((size_t)(n_in * batch));
    float *t = test_alloc_floats((size_t)(n_out * batch));
    test_fill_uniform(&r, x, (size_t)(n_in * batch), -1, 1);
    fill_targets(&r, loss, t, n_out, batch);
    cumlp_tensor *X = test_tensor_from(ctx, x, n_in, batch);
    cumlp_tensor *T = test_tensor_from(ctx, t, n_out, batch);
    double errors[8], worst = 0;
    cumlp_status st = cumlp_gradient_check(net, X, T, 0, errors, 2 * num_layers);
    CHECK_MSG(st == CUMLP_SUCCESS, "gradient check: %s", cumlp_last_error(ctx));
    for (int i = 0; i < 2 * num_layers && st == CUMLP_SUCCESS; i++)
        worst = worse(worst, errors[i]);
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(T);
    cumlp_network_destroy(net);
    free(x);
    free(t);
    return st == CUMLP_SUCCESS ? worst : INFINITY;
}

/* Every combination on three shapes and two batch sizes. */
static void check_backend(int backend, double tolerance) {
    cumlp_context_options co;
    cumlp_context_defaults(&co);
    co.backend = backend;
    cumlp_context *ctx = NULL;
    if (!cumlp_backend_is_built(backend) || cumlp_context_create(&ctx, &co) != CUMLP_SUCCESS) {
        /* the reference backend is always there: its absence must not pass as a skip */
        CHECK(backend != CUMLP_BACKEND_REFERENCE);
        return;
    }
    const int64_t batches[] = {1, 7};
    uint64_t seed = 1;
    for (size_t c = 0; c < sizeof combos / sizeof combos[0]; c++) {
        for (size_t h = 0; h < sizeof hidden_acts / sizeof hidden_acts[0]; h++) {
            for (size_t b = 0; b < 2; b++) {
                /* 1x1 single layer (the hidden activation is unused there: once per combo). */
                const int one_act[] = {combos[c].output};
                const int64_t one[] = {1, 1};
                /* a softmax over one unit is constant: give CE two outputs */
                const int64_t one_ce[] = {1, 2};
                int ce = combos[c].loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
                double e1 = h == 0 ? check_one(ctx, 1, ce ? one_ce : one, one_act, combos[c].loss,
                                               batches[b], seed++)
                                   : 0;
                const int two_act[] = {hidden_acts[h], combos[c].output};
                const int64_t odd[] = {3, 5, 3};
                double e2 = check_one(ctx, 2, odd, two_act, combos[c].loss, batches[b], seed++);
                const int three_act[] = {hidden_acts[h], hidden_acts[(h + 1) % 6],
                                         combos[c].output};
                const int64_t deep[] = {4, 7, 1, 5};
                double e3 = check_one(ctx, 3, deep, three_act, combos[c].loss, batches[b], seed++);
                double worst = fmax(e1, fmax(e2, e3));
                CHECK_MSG(worst <= tolerance,
                          "%s: loss %d output %d hidden %d batch %lld: max rel error %g",
                          cumlp_backend_name(backend), combos[c].loss, combos[c].output,
                          hidden_acts[h], (long long)batches[b], worst);
            }
        }
    }
    cumlp_context_destroy(ctx);
}

static void test_reference(void) {
    check_backend(CUMLP_BACKEND_REFERENCE, 1e-6);
}
static void test_fp32_backends(void) {
    check_backend(CUMLP_BACKEND_CPU, 1e-3);
    check_backend(CUMLP_BACKEND_CUDA, 1e-3);
}

/* The check must be able to fail: with a step of 1 the finite differences of a tanh network are
 * far from the derivative, and the check reports a large error rather than a pass. */
static void test_reports_disagreement(void) {
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    const int64_t widths[] = {3, 4, 2};
    const int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_TANH};
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 3);
    test_rng r = {9};
    float x[6], t[4];
    test_fill_uniform(&r, x, 6, -1, 1);
    test_fill_uniform(&r, t, 4, -1, 1);
    cumlp_tensor *X = test_tensor_from(ctx, x, 3, 2), *T = test_tensor_from(ctx, t, 2, 2);
    double fine[4], coarse[4];
    CHECK_OK(cumlp_gradient_check(net, X, T, 0, fine, 4));
    CHECK_OK(cumlp_gradient_check(net, X, T, 1.0, coarse, 4));
    double worst_fine = 0, worst_coarse = 0;
    for (int i = 0; i < 4; i++) {
        worst_fine = fmax(worst_fine, fine[i]);
        worst_coarse = fmax(worst_coarse, coarse[i]);
    }
    CHECK(worst_fine <= 1e-6);
    CHECK_MSG(worst_coarse > 1e-3, "a step of 1 still agrees to %g", worst_coarse);
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(T);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* A NaN relative error never passes, wherever it sits in its tensor. On an fp32 backend,
 * dE/dW[0] = delta * 1e38 overflows to Inf while the double-precision differences stay finite:
 * Inf against Inf is NaN, and the finite element after it must not hide it. */
static void test_nan_never_passes(void) {
    cumlp_context_options co;
    cumlp_context_defaults(&co);
    co.backend = CUMLP_BACKEND_CPU;
    cumlp_context *ctx = NULL;
    if (!cumlp_backend_is_built(co.backend) || cumlp_context_create(&ctx, &co) != CUMLP_SUCCESS)
        return; /* needs an fp32 backend */
    const int64_t widths[] = {2, 1};
    const int acts[] = {CUMLP_ACT_IDENTITY};
    cumlp_network *net = test_network(ctx, 1, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 1);
    const float w[] = {2e-38f, 0.5f}, b[] = {0}, x[] = {1e38f, 1}, t[] = {-10};
    CHECK_OK(cumlp_network_set_layer(net, 0, w, b));
    cumlp_tensor *X = test_tensor_from(ctx, x, 2, 1), *T = test_tensor_from(ctx, t, 1, 1);
    double errors[2] = {0, 0};
    CHECK_OK(cumlp_gradient_check(net, X, T, 0, errors, 2));
    CHECK_MSG(isnan(errors[0]), "W's error is %g, not NaN", errors[0]);
    CHECK(errors[1] <= 1e-6); /* the bias gradient, 12.5, is fine */
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(T);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* A check that fails part-way (here the second layer's differences overflow the loss) leaves
 * max_rel_error as it was, although the first layer's errors were already computed. */
static void test_failure_leaves_results_unchanged(void) {
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    const int64_t widths[] = {1, 1, 1};
    const int acts[] = {CUMLP_ACT_IDENTITY, CUMLP_ACT_IDENTITY};
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 1);
    /* a1 = 1e160 through W2 = 0: the loss is finite, but W2 + h makes it overflow. */
    const double w1[] = {0.5}, b1[] = {1e160}, w2[] = {0}, b2[] = {0.25};
    CHECK_OK(cumlp_network_set_layer_f64(net, 0, w1, b1));
    CHECK_OK(cumlp_network_set_layer_f64(net, 1, w2, b2));
    const float x[] = {1}, t[] = {0};
    cumlp_tensor *X = test_tensor_from(ctx, x, 1, 1), *T = test_tensor_from(ctx, t, 1, 1);
    double errors[4] = {-1, -1, -1, -1};
    CHECK_STATUS(cumlp_gradient_check(net, X, T, 0, errors, 4), CUMLP_ERROR_NON_FINITE);
    CHECK(cumlp_last_error(ctx)[0] != '\0');
    for (int i = 0; i < 4; i++)
        CHECK_MSG(errors[i] == -1, "errors[%d] changed to %g", i, errors[i]);
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(T);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

int main(void) {
    RUN(test_nan_never_passes);
    RUN(test_failure_leaves_results_unchanged);
    RUN(test_reference);
    RUN(test_fp32_backends);
    RUN(test_reports_disagreement);
    return harness_finish();
}
