/* ctest-labels: gpu */
/*
 * Whole training runs on the cuda backend against the reference backend: the same seed gives the
 * same initial weights (bit for bit for uniform inits), 50 steps keep the loss trajectories within
 * 1e-4 relative and end with parameters within 1e-4; seed 003's worked example on the GPU; and
 * device memory: free memory after destroy equals free memory before create, and repeated
 * create/destroy does not grow it.
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "harness.h"
#include "testutil.h"

#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IN    12
#define BATCH 96
#define STEPS 50

typedef struct run_config {
    int num_layers;
    int64_t widths[4];
    int acts[3];
    int loss, init, optimizer;
    double learning_rate;
} run_config;

static cumlp_network *make_network(cumlp_context *ctx, const run_config *c, uint64_t seed) {
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.loss = c->loss;
    o.init = c->init;
    o.seed = seed;
    o.bias_init = CUMLP_BIAS_DRAWN;
    cumlp_network *net = NULL;
    CHECK_OK(cumlp_network_create(ctx, c->num_layers, c->widths, c->acts, &o, &net));
    return net;
}

static float *parameters(cumlp_network *net) {
    int64_t n = cumlp_network_num_parameters(net);
    float *p = test_alloc_floats((size_t)n);
    CHECK_OK(cumlp_network_get_parameters(net, p, n));
    return p;
}

/* Trains the same network from the same seed on both backends and compares them. */
static void train_both(const run_config *c, uint64_t seed) {
    cumlp_context *ctx[2] = {test_context_or_skip(CUMLP_BACKEND_CUDA),
                             test_context_or_skip(CUMLP_BACKEND_REFERENCE)};
    int64_t out = c->widths[c->num_layers];
    test_rng r = {seed};
    float *x = test_alloc_floats(IN * BATCH), *y = test_alloc_floats((size_t)(out * BATCH));
    test_fill_uniform(&r, x, IN * BATCH, -1, 1);
    if (c->loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY)
        test_fill_one_hot(&r, y, out, BATCH);
    else
        test_fill_uniform(&r, y, (size_t)(out * BATCH), 0.05, 0.95);
    cumlp_network *net[2];
    cumlp_optimizer *opt[2];
    cumlp_tensor *X[2], *Y[2];
    double loss[2][STEPS];
    for (int b = 0; b < 2; b++) {
        net[b] = make_network(ctx[b], c, seed);
        cumlp_optimizer_options oo;
        cumlp_optimizer_defaults(&oo);
        oo.type = c->optimizer;
        oo.learning_rate = c->learning_rate;
        oo.weight_decay = 1e-4;
        opt[b] = NULL;
        CHECK_OK(cumlp_optimizer_create(net[b], &oo, &opt[b]));
        X[b] = test_tensor_from(ctx[b], x, IN, BATCH);
        Y[b] = test_tensor_from(ctx[b], y, out, BATCH);
    }
    /* Initial weights: the same draws on both backends. */
    float *p0 = parameters(net[0]), *p1 = parameters(net[1]);
    size_t n = (size_t)cumlp_network_num_parameters(net[0]);
    int uniform = c->init == CUMLP_INIT_XAVIER_UNIFORM || c->init == CUMLP_INIT_HE_UNIFORM ||
                  c->init == CUMLP_INIT_UNIFORM;
    if (uniform)
        CHECK_MSG(memcmp(p0, p1, n * sizeof(float)) == 0, "uniform init differs between backends");
    else
        CHECK_MSG(test_max_rel_error(p0, p1, n, 1e-6) <= 1e-6, "normal init differs: %g",
                  test_max_rel_error(p0, p1, n, 1e-6));
    free(p0);
    free(p1);
    for (int s = 0; s < STEPS; s++)
        for (int b = 0; b < 2; b++)
            CHECK_OK(cumlp_train_step(net[b], opt[b], X[b], Y[b], &loss[b][s]));
    for (int s = 0; s < STEPS; s++) {
        double rel = fabs(loss[0][s] - loss[1][s]) / fmax(fabs(loss[1][s]), 1e-12);
        CHECK_MSG(rel <= 1e-4, "step %d: loss %.9g (cuda) vs %.9g (reference)", s, loss[0][s],
                  loss[1][s]);
    }
    CHECK_MSG(loss[1][STEPS - 1] < loss[1][0], "the reference did not learn: %g -> %g", loss[1][0],
              loss[1][STEPS - 1]);
    p0 = parameters(net[0]);
    p1 = parameters(net[1]);
    double max = 0;
    for (size_t i = 0; i < n; i++)
        max = fmax(max, fabs((double)p1[i]));
    double err = test_max_rel_error(p0, p1, n, 0.05 * max);
    CHECK_MSG(err <= 1e-4, "final parameters differ by %g", err);
    free(p0);
    free(p1);
    for (int b = 0; b < 2; b++) {
        cumlp_tensor_destroy(X[b]);
        cumlp_tensor_destroy(Y[b]);
        cumlp_optimizer_destroy(opt[b]);
        cumlp_network_destroy(net[b]);
        cumlp_context_destroy(ctx[b]);
    }
    free(x);
    free(y);
}

static void test_softmax_momentum(void) {
    run_config c = {3,
                    {IN, 40, 24, 5},
                    {CUMLP_ACT_TANH, CUMLP_ACT_GELU, CUMLP_ACT_SOFTMAX},
                    CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY,
                    CUMLP_INIT_XAVIER_UNIFORM,
                    CUMLP_OPT_MOMENTUM,
                    0.05};
    train_both(&c, 7);
}

static void test_squared_error_adam(void) {
    run_config c = {3,
                    {IN, 33, 17, 3},
                    {CUMLP_ACT_RELU, CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_SIGMOID},
                    CUMLP_LOSS_SQUARED_ERROR,
                    CUMLP_INIT_HE_NORMAL,
                    CUMLP_OPT_ADAM,
                    1e-3};
    train_both(&c, 2024);
}

static void test_bce_nesterov(void) {
    run_config c = {2,
                    {IN, 31, 4, 0},
                    {CUMLP_ACT_SIGMOID, CUMLP_ACT_SIGMOID, 0},
                    CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY,
                    CUMLP_INIT_XAVIER_NORMAL,
                    CUMLP_OPT_NESTEROV,
                    0.1};
    train_both(&c, 99);
}

/* Seed 003: inputs 0.05, 0.10; targets 0.01, 0.99; sigmoid, squared error, lr 0.5, biases
 * frozen. fp32 on the GPU: the printed digits to within fp32 resolution (1e-6). */
static void test_worked_example(void) {
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_CUDA);
    const int64_t widths[] = {2, 2, 2};
    const int acts[] = {CUMLP_ACT_SIGMOID, CUMLP_ACT_SIGMOID};
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 1);
    const float w1[] = {0.15f, 0.25f, 0.20f, 0.30f}, b1[] = {0.35f, 0.35f};
    const float w2[] = {0.40f, 0.50f, 0.45f, 0.55f}, b2[] = {0.60f, 0.60f};
    const float x[] = {0.05f, 0.10f}, t[] = {0.01f, 0.99f};
    CHECK_OK(cumlp_network_set_layer(net, 0, w1, b1));
    CHECK_OK(cumlp_network_set_layer(net, 1, w2, b2));
    CHECK_OK(cumlp_network_freeze(net, 0, 0, 1));
    CHECK_OK(cumlp_network_freeze(net, 1, 0, 1));
    cumlp_tensor *X = test_tensor_from(ctx, x, 2, 1), *T = test_tensor_from(ctx, t, 2, 1);
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.type = CUMLP_OPT_SGD;
    oo.learning_rate = 0.5;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &oo, &opt));
    double loss = 0;
    CHECK_OK(cumlp_train_step(net, opt, X, T, &loss));
    CHECK_NEAR(loss, 0.298371109, 1e-6);
    float nw1[4], nb1[2], nw2[4], nb2[2];
    CHECK_OK(cumlp_network_get_layer(net, 0, nw1, nb1));
    CHECK_OK(cumlp_network_get_layer(net, 1, nw2, nb2));
    CHECK_NEAR(nw2[0], 0.35891648, 1e-6);  /* w5 */
    CHECK_NEAR(nw2[2], 0.408666186, 1e-6); /* w6 */
    CHECK_NEAR(nw2[1], 0.511301270, 1e-6); /* w7 */
    CHECK_NEAR(nw2[3], 0.561370121, 1e-6); /* w8 */
    CHECK_NEAR(nw1[0], 0.149780716, 1e-6); /* w1 */
    CHECK_NEAR(nw1[2], 0.19956143, 1e-6);  /* w2 */
    CHECK_NEAR(nw1[1], 0.24975114, 1e-6);  /* w3 */
    CHECK_NEAR(nw1[3], 0.29950229, 1e-6);  /* w4 */
    CHECK(memcmp(nb1, b1, sizeof b1) == 0 && memcmp(nb2, b2, sizeof b2) == 0);
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(T);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* cudaMemGetInfo from the CUDA runtime the library links, looked up at run time so that this
 * file needs no CUDA header. */
typedef int (*mem_get_info_fn)(size_t *free_bytes, size_t *total_bytes);

static size_t device_free_memory(void) {
    void *sym = dlsym(RTLD_DEFAULT, "cudaMemGetInfo");
    mem_get_info_fn fn;
    if (!sym) return 0;
    memcpy(&fn, &sym, sizeof fn);
    size_t free_bytes = 0, total = 0;
    if (fn(&free_bytes, &total) != 0) return 0;
    return free_bytes;
}

/* A context with a network, one training step and a synchronize, then everything destroyed. */
static void one_cycle(void) {
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_CUDA);
    const int64_t widths[] = {64, 256, 10};
    const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX};
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, 3);
    test_rng r = {5};
    float *x = test_alloc_floats(64 * 512), *y = test_alloc_floats(10 * 512);
    test_fill_uniform(&r, x, 64 * 512, -1, 1);
    test_fill_one_hot(&r, y, 10, 512);
    cumlp_tensor *X = test_tensor_from(ctx, x, 64, 512), *Y = test_tensor_from(ctx, y, 10, 512);
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, NULL, &opt));
    double loss;
    CHECK_OK(cumlp_train_step(net, opt, X, Y, &loss));
    CHECK_OK(cumlp_context_synchronize(ctx));
    /* The context's count: at least the tensors, parameters and gradients (plain SGD). */
    int64_t params = 64 * 256 + 256 + 256 * 10 + 10, in_use = 0, peak = 0;
    CHECK_OK(cumlp_context_memory(ctx, &in_use, &peak));
    CHECK_MSG(in_use >= (int64_t)sizeof(float) * (74 * 512 + 2 * params) && peak >= in_use,
              "in use %lld, peak %lld", (long long)in_use, (long long)peak);
    /* Each destroy returns its object's bytes: exactly for the tensors, at least the arenas and
     * the work buffers (each layer's output, 266 x 512) for the network. The scratch stays. */
    int64_t after = 0;
    cumlp_tensor_destroy(X);
    CHECK_OK(cumlp_context_memory(ctx, &after, NULL));
    CHECK_MSG(in_use - after == 64 * 512 * 4, "X returned %lld bytes", (long long)(in_use - after));
    in_use = after;
    cumlp_tensor_destroy(Y);
    CHECK_OK(cumlp_context_memory(ctx, &after, NULL));
    CHECK_MSG(in_use - after == 10 * 512 * 4, "Y returned %lld bytes", (long long)(in_use - after));
    in_use = after;
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    CHECK_OK(cumlp_context_memory(ctx, &after, NULL));
    CHECK_MSG(in_use - after >= 4 * (2 * params + 266 * 512), "the network returned %lld bytes",
              (long long)(in_use - after));
    cumlp_context_destroy(ctx);
    free(x);
    free(y);
}

static void test_memory_returns(void) {
    one_cycle(); /* warm-up: the runtime's own context and lazily loaded modules stay */
    size_t before = device_free_memory();
    CHECK_MSG(before > 0, "cudaMemGetInfo is not available");
    one_cycle();
    size_t after_one = device_free_memory();
    CHECK_MSG(after_one == before, "free memory %zu before, %zu after one context", before,
              after_one);
    for (int i = 0; i < 10; i++)
        one_cycle();
    size_t after_many = device_free_memory();
    CHECK_MSG(after_many == before, "free memory %zu before, %zu after 10 more contexts", before,
              after_many);
}

int main(void) {
    cumlp_context_destroy(test_context_or_skip(CUMLP_BACKEND_CUDA)); /* skips without a GPU */
    RUN(test_softmax_momentum);
    RUN(test_squared_error_adam);
    RUN(test_bce_nesterov);
    RUN(test_worked_example);
    RUN(test_memory_returns);
    return harness_finish();
}
