/* ctest-labels: unit */
/*
 * Whole training runs on the reference backend: XOR to 100%, three interleaved spirals (a problem
 * a linear classifier solves only about a third of) to >= 97%, online training (batches of 1),
 * every optimizer reducing the loss, reproducibility bit for bit from a seed, and frozen layers.
 */
#include "harness.h"
#include "testutil.h"

#include <string.h>

typedef struct run {
    cumlp_context *ctx;
    cumlp_network *net;
    cumlp_optimizer *opt;
} run;

static run start(int num_layers, const int64_t *widths, const int *acts, int loss, uint64_t seed,
                 int opt_type, double lr) {
    run r;
    r.ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    r.net = test_network(r.ctx, num_layers, widths, acts, loss, seed);
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults(&o);
    o.type = opt_type;
    o.learning_rate = lr;
    r.opt = NULL;
    CHECK_OK(cumlp_optimizer_create(r.net, &o, &r.opt));
    return r;
}

static void finish(run *r) {
    cumlp_optimizer_destroy(r->opt);
    cumlp_network_destroy(r->net);
    cumlp_context_destroy(r->ctx);
}

static const float XOR_X[] = {0, 0, 0, 1, 1, 0, 1, 1};
static const float XOR_T[] = {0, 1, 1, 0};

static void test_xor(void) {
    const int64_t widths[] = {2, 4, 1};
    const int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_SIGMOID};
    run r = start(2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 11, CUMLP_OPT_MOMENTUM, 0.5);
    cumlp_tensor *x = test_tensor_from(r.ctx, XOR_X, 2, 4),
                 *t = test_tensor_from(r.ctx, XOR_T, 1, 4);
    double first = 0, loss = 0;
    for (int i = 0; i < 2000; i++)
        CHECK_OK(cumlp_train_step(r.net, r.opt, x, t, i ? &loss : &first));
    CHECK_MSG(loss < 0.01 * first, "loss %g from %g", loss, first);
    CHECK(test_accuracy(r.net, XOR_X, XOR_T, 2, 1, 4) == 1.0);
    cumlp_tensor_destroy(x);
    cumlp_tensor_destroy(t);
    finish(&r);
}

/* Online training: one sample per step, cycling through XOR's four. */
static void test_xor_online(void) {
    const int64_t widths[] = {2, 3, 1};
    const int acts[] = {CUMLP_ACT_SIGMOID, CUMLP_ACT_SIGMOID};
    run r = start(2, widths, acts, CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, 4, CUMLP_OPT_SGD, 0.5);
    cumlp_tensor *x[4], *t[4];
    for (int j = 0; j < 4; j++) {
        x[j] = test_tensor_from(r.ctx, XOR_X + 2 * j, 2, 1);
        t[j] = test_tensor_from(r.ctx, XOR_T + j, 1, 1);
    }
    for (int epoch = 0; epoch < 4000; epoch++)
        for (int j = 0; j < 4; j++)
            CHECK_OK(cumlp_train_step(r.net, r.opt, x[j], t[j], NULL));
    CHECK(test_accuracy(r.net, XOR_X, XOR_T, 2, 1, 4) == 1.0);
    CHECK(cumlp_optimizer_step_count(r.opt) == 16000);
    for (int j = 0; j < 4; j++) {
        cumlp_tensor_destroy(x[j]);
        cumlp_tensor_destroy(t[j]);
    }
    finish(&r);
}

/* K interleaved spiral arms of N points each in the plane, one-hot labels (the classic
 * non-linearly-separable toy problem). */
static void spirals(int K, int N, float *x, float *y, uint64_t seed) {
    test_rng r = {seed};
    for (int k = 0; k < K; k++) {
        for (int i = 0; i < N; i++) {
            int j = k * N + i;
            double radius = (double)i / N;
            double theta = k * 4.0 + 4.0 * radius + test_rng_uniform(&r, -0.2, 0.2);
            x[2 * j] = (float)(radius * sin(theta));
            x[2 * j + 1] = (float)(radius * cos(theta));
            for (int c = 0; c < K; c++)
                y[K * j + c] = c == k ? 1.0f : 0.0f;
        }
    }
}

static void test_spirals(void) {
    enum { K = 3, N = 100 };
    float x[2 * K * N], y[K * K * N];
    spirals(K, N, x, y, 77);
    const int64_t widths[] = {2, 64, K};
    const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX};
    run r = start(2, widths, acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, 21, CUMLP_OPT_ADAM, 0.02);
    cumlp_tensor *xt = test_tensor_from(r.ctx, x, 2, K * N),
                 *yt = test_tensor_from(r.ctx, y, K, K * N);
    /* A linear model (no hidden layer) for comparison: it cannot separate the arms. */
    const int64_t lin_widths[] = {2, K};
    const int lin_acts[] = {CUMLP_ACT_SOFTMAX};
    run lin =
        start(1, lin_widths, lin_acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, 21, CUMLP_OPT_ADAM, 0.02);
    cumlp_tensor *xl = test_tensor_from(lin.ctx, x, 2, K * N),
                 *yl = test_tensor_from(lin.ctx, y, K, K * N);
    for (int i = 0; i < 1500; i++) {
        CHECK_OK(cumlp_train_step(r.net, r.opt, xt, yt, NULL));
        CHECK_OK(cumlp_train_step(lin.net, lin.opt, xl, yl, NULL));
    }
    double acc = test_accuracy(r.net, x, y, 2, K, K * N);
    double lin_acc = test_accuracy(lin.net, x, y, 2, K, K * N);
    CHECK_MSG(acc >= 0.97, "MLP accuracy %g", acc);
    CHECK_MSG(lin_acc < 0.65, "linear accuracy %g", lin_acc);
    cumlp_tensor_destroy(xt);
    cumlp_tensor_destroy(yt);
    cumlp_tensor_destroy(xl);
    cumlp_tensor_destroy(yl);
    finish(&r);
    finish(&lin);
}

/* Trains 20 steps and returns the final parameters (caller frees). */
static float *train_twenty(uint64_t seed, int opt_type, double *final_loss) {
    const int64_t widths[] = {5, 6, 4, 3};
    const int acts[] = {CUMLP_ACT_GELU, CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_SOFTMAX};
    run r = start(3, widths, acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, seed, opt_type, 0.05);
    test_rng rng = {1234}; /* the same data for every seed */
    float x[5 * 9], y[3 * 9];
    test_fill_uniform(&rng, x, 45, -1, 1);
    test_fill_one_hot(&rng, y, 3, 9);
    cumlp_tensor *xt = test_tensor_from(r.ctx, x, 5, 9), *yt = test_tensor_from(r.ctx, y, 3, 9);
    for (int i = 0; i < 20; i++)
        CHECK_OK(cumlp_train_step(r.net, r.opt, xt, yt, final_loss));
    int64_t n = cumlp_network_num_parameters(r.net);
    float *p = test_alloc_floats((size_t)n);
    CHECK_OK(cumlp_network_get_parameters(r.net, p, n));
    cumlp_tensor_destroy(xt);
    cumlp_tensor_destroy(yt);
    finish(&r);
    return p;
}

static void test_reproducible(void) {
    const size_t n = 5 * 6 + 6 + 6 * 4 + 4 + 4 * 3 + 3;
    const int types[] = {CUMLP_OPT_SGD, CUMLP_OPT_MOMENTUM, CUMLP_OPT_NESTEROV, CUMLP_OPT_ADAM};
    for (int i = 0; i < 4; i++) {
        double la, lb, lc;
        float *a = train_twenty(5, types[i], &la), *b = train_twenty(5, types[i], &lb);
        float *c = train_twenty(6, types[i], &lc);
        CHECK_MSG(memcmp(a, b, n * sizeof(float)) == 0, "optimizer %d not reproducible", types[i]);
        CHECK(la == lb);
        CHECK(memcmp(a, c, n * sizeof(float)) != 0);
        CHECK(la != lc);
        free(a);
        free(b);
        free(c);
    }
}

/* Every optimizer (with weight decay too, decoupled for AdamW) lowers the loss of a small
 * regression. */
static void test_optimizers_learn(void) {
    const int types[] = {CUMLP_OPT_SGD,     CUMLP_OPT_MOMENTUM, CUMLP_OPT_NESTEROV,
                         CUMLP_OPT_ADAM,    CUMLP_OPT_ADAMW,    CUMLP_OPT_ADAMAX,
                         CUMLP_OPT_NADAM,   CUMLP_OPT_RMSPROP,  CUMLP_OPT_ADAGRAD,
                         CUMLP_OPT_ADADELTA};
    const double rates[] = {0.1, 0.05, 0.05, 0.01, 0.01, 0.01, 0.01, 0.005, 0.1, 1.0};
    test_rng rng = {5};
    float x[3 * 16], y[2 * 16];
    test_fill_uniform(&rng, x, 48, -1, 1);
    for (int j = 0; j < 16; j++) {
        y[2 * j] = x[3 * j] * x[3 * j + 1];
        y[2 * j + 1] = sinf(x[3 * j + 2]);
    }
    const int64_t widths[] = {3, 8, 2};
    const int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_IDENTITY};
    for (int i = 0; i < (int)(sizeof types / sizeof *types); i++) {
        for (int decay = 0; decay < 2; decay++) {
            cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
            cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 8);
            cumlp_optimizer_options o;
            cumlp_optimizer_defaults_for(types[i], &o);
            o.learning_rate = rates[i];
            o.weight_decay = decay ? 1e-3 : 0;
            cumlp_optimizer *opt = NULL;
            CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
            cumlp_tensor *xt = test_tensor_from(ctx, x, 3, 16),
                         *yt = test_tensor_from(ctx, y, 2, 16);
            double first = 0, last = 0;
            CHECK_OK(cumlp_evaluate_loss(net, xt, yt, &first));
            for (int s = 0; s < 300; s++)
                CHECK_OK(cumlp_train_step(net, opt, xt, yt, NULL));
            CHECK_OK(cumlp_evaluate_loss(net, xt, yt, &last));
            CHECK_MSG(last < 0.3 * first, "optimizer %d decay %d: %g -> %g", types[i], decay, first,
                      last);
            cumlp_tensor_destroy(xt);
            cumlp_tensor_destroy(yt);
            cumlp_optimizer_destroy(opt);
            cumlp_network_destroy(net);
            cumlp_context_destroy(ctx);
        }
    }
}

/* A step applies exactly the rule to each parameter: SGD with decay, checked element by
 * element from the gradients, and frozen parts left bit for bit. */
static void test_step_matches_rule_and_freeze(void) {
    const int64_t widths[] = {3, 4, 2};
    const int acts[] = {CUMLP_ACT_SIGMOID, CUMLP_ACT_IDENTITY};
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 2);
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults(&o);
    o.learning_rate = 0.25;
    o.weight_decay = 0.1;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    test_rng rng = {3};
    float x[15], y[10];
    test_fill_uniform(&rng, x, 15, -1, 1);
    test_fill_uniform(&rng, y, 10, -1, 1);
    cumlp_tensor *xt = test_tensor_from(ctx, x, 3, 5), *yt = test_tensor_from(ctx, y, 2, 5);
    enum { N = 12 + 4 + 8 + 2 };
    double before[N], grad[N], after[N];
    CHECK_OK(cumlp_network_freeze(net, 0, 0, 1)); /* layer 0's biases */
    CHECK_OK(cumlp_network_freeze(net, 1, 1, 0)); /* layer 1's weights */
    CHECK_OK(cumlp_network_get_parameters_f64(net, before, N));
    CHECK_OK(cumlp_loss_backward(net, xt, yt, NULL));
    CHECK_OK(cumlp_network_get_gradients_f64(net, grad, N));
    CHECK_OK(cumlp_optimizer_step(opt));
    CHECK_OK(cumlp_network_get_parameters_f64(net, after, N));
    for (int i = 0; i < N; i++) {
        int frozen = (i >= 12 && i < 16) || (i >= 16 && i < 24);
        double expected = frozen ? before[i] : before[i] - 0.25 * (grad[i] + 0.1 * before[i]);
        CHECK_MSG(after[i] == expected || (!frozen && fabs(after[i] - expected) < 1e-15),
                  "parameter %d: %.17g, expected %.17g", i, after[i], expected);
    }
    cumlp_tensor_destroy(xt);
    cumlp_tensor_destroy(yt);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

int main(void) {
    RUN(test_xor);
    RUN(test_xor_online);
    RUN(test_spirals);
    RUN(test_reproducible);
    RUN(test_optimizers_learn);
    RUN(test_step_matches_rule_and_freeze);
    return harness_finish();
}
