/* ctest-labels: unit gpu */
/*
 * Seed 003's worked example (a 2-2-2 sigmoid network, squared error, one step of SGD with learning
 * rate 0.5 and the biases frozen), asserted to the digits the notes print, on every backend built
 * (cuda where a device is found; CUMLP_TEST_REQUIRE_GPU=1 makes a missing one a failure). Printed
 * values carry 8 or 9 significant digits: the tolerance is half a unit in the last printed place.
 */
#include "harness.h"
#include "testutil.h"

/* W is n_out x n_in column-major: W[j + i * n_out] is the weight from input i to unit j.
 * h1 = w1 i1 + w2 i2 + b1, h2 = w3 i1 + w4 i2 + b1; o1 = w5 h1 + w6 h2 + b2, o2 = w7 h1 + w8 h2 +
 * b2 */
static const double W1[] = {0.15, 0.25, 0.20, 0.30};
static const double B1[] = {0.35, 0.35};
static const double W2[] = {0.40, 0.50, 0.45, 0.55};
static const double B2[] = {0.60, 0.60};
static const double X[] = {0.05, 0.10};
static const double T[] = {0.01, 0.99};

/* The reference backend takes the inputs in double (the _f64 calls) and must match every printed
 * digit: half a unit in the last printed place. An fp32 backend rounds the inputs (0.15 is not a
 * float) and computes in fp32, which limits it to about 1e-7. */
static double tolerance(int backend, double half_unit_of_print) {
    return backend == CUMLP_BACKEND_REFERENCE ? half_unit_of_print : 1e-6;
}

static cumlp_tensor *tensor_f64(cumlp_context *ctx, const double *host, int64_t rows) {
    cumlp_tensor *t = NULL;
    CHECK_OK(cumlp_tensor_create(ctx, rows, 1, &t));
    CHECK_OK(cumlp_tensor_upload_f64(t, host, rows));
    return t;
}

static cumlp_network *worked_network(cumlp_context *ctx) {
    const int64_t widths[] = {2, 2, 2};
    const int acts[] = {CUMLP_ACT_SIGMOID, CUMLP_ACT_SIGMOID};
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 1);
    CHECK_OK(cumlp_network_set_layer_f64(net, 0, W1, B1));
    CHECK_OK(cumlp_network_set_layer_f64(net, 1, W2, B2));
    return net;
}

static void check_backend(int backend) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = backend;
    char why[512];
    cumlp_context *ctx = test_context_try(&o, why, sizeof why);
    if (!ctx) {
        int required = backend == CUMLP_BACKEND_CUDA && test_gpu_required();
        CHECK_MSG(!required, "%s (CUMLP_TEST_REQUIRE_GPU=1)", why);
        if (!required) printf("     skipped: %s\n", why);
        return;
    }
    cumlp_network *net = worked_network(ctx);
    cumlp_tensor *x = tensor_f64(ctx, X, 2), *t = tensor_f64(ctx, T, 2);

    /* Forward pass: out_h1 = 0.593269992, out_h2 = 0.596884378 (hidden layer, through a
     * one-layer network with the same first layer), out_o1 = 0.75136507, out_o2 = 0.772928465. */
    const int64_t hidden_widths[] = {2, 2};
    const int hidden_acts[] = {CUMLP_ACT_SIGMOID};
    cumlp_network *hidden =
        test_network(ctx, 1, hidden_widths, hidden_acts, CUMLP_LOSS_SQUARED_ERROR, 1);
    CHECK_OK(cumlp_network_set_layer_f64(hidden, 0, W1, B1));
    cumlp_tensor *y = NULL;
    double out[2];
    CHECK_OK(cumlp_tensor_create(ctx, 2, 1, &y));
    CHECK_OK(cumlp_forward(hidden, x, y));
    CHECK_OK(cumlp_tensor_download_f64(y, out, 2));
    CHECK_NEAR(out[0], 0.593269992, tolerance(backend, 5e-10));
    CHECK_NEAR(out[1], 0.596884378, tolerance(backend, 5e-10));
    CHECK_OK(cumlp_forward(net, x, y));
    CHECK_OK(cumlp_tensor_download_f64(y, out, 2));
    CHECK_NEAR(out[0], 0.75136507, tolerance(backend, 5e-9));
    CHECK_NEAR(out[1], 0.772928465, tolerance(backend, 5e-10));

    /* E_total = 0.298371109, then one step with the biases frozen. */
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.type = CUMLP_OPT_SGD;
    oo.learning_rate = 0.5;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &oo, &opt));
    CHECK_OK(cumlp_network_freeze(net, 0, 0, 1));
    CHECK_OK(cumlp_network_freeze(net, 1, 0, 1));
    double loss = 0;
    CHECK_OK(cumlp_train_step(net, opt, x, t, &loss));
    CHECK_NEAR(loss, 0.298371109, tolerance(backend, 5e-10));

    double w1[4], b1[2], w2[4], b2[2];
    CHECK_OK(cumlp_network_get_layer_f64(net, 0, w1, b1));
    CHECK_OK(cumlp_network_get_layer_f64(net, 1, w2, b2));
    /* w5 = 0.35891648, w6 = 0.408666186, w7 = 0.511301270, w8 = 0.561370121 */
    CHECK_NEAR(w2[0], 0.35891648, tolerance(backend, 5e-9));
    CHECK_NEAR(w2[2], 0.408666186, tolerance(backend, 5e-10));
    CHECK_NEAR(w2[1], 0.511301270, tolerance(backend, 5e-10));
    CHECK_NEAR(w2[3], 0.561370121, tolerance(backend, 5e-10));
    /* w1 = 0.149780716, w2 = 0.19956143, w3 = 0.24975114, w4 = 0.29950229 */
    CHECK_NEAR(w1[0], 0.149780716, tolerance(backend, 5e-10));
    CHECK_NEAR(w1[2], 0.19956143, tolerance(backend, 5e-9));
    CHECK_NEAR(w1[1], 0.24975114, tolerance(backend, 5e-9));
    CHECK_NEAR(w1[3], 0.29950229, tolerance(backend, 5e-9));
    /* Frozen biases are exactly as set (rounded to fp32 on the fp32 backends). */
    int f64 = backend == CUMLP_BACKEND_REFERENCE;
    for (int j = 0; j < 2; j++) {
        CHECK(b1[j] == (f64 ? B1[j] : (double)(float)B1[j]));
        CHECK(b2[j] == (f64 ? B2[j] : (double)(float)B2[j]));
    }

    /* The notes print 0.291027924 for the error after this step, but that figure does not follow
     * from their own updated weights: exact arithmetic on the printed weights (and on ours) gives
     * 0.2910277737, so this checks the error against that, to 1e-9. */
    CHECK_OK(cumlp_evaluate_loss(net, x, t, &loss));
    CHECK_NEAR(loss, 0.2910277737, backend == CUMLP_BACKEND_REFERENCE ? 1e-9 : 1e-6);

    cumlp_tensor_destroy(y);
    cumlp_tensor_destroy(x);
    cumlp_tensor_destroy(t);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(hidden);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

static void test_reference(void) {
    check_backend(CUMLP_BACKEND_REFERENCE);
}
static void test_cpu(void) {
    check_backend(CUMLP_BACKEND_CPU);
}
static void test_cuda(void) {
    check_backend(CUMLP_BACKEND_CUDA);
}

/* 10,000 steps bring the error to 0.0000351085 and the outputs to 0.015912196 and 0.984065734
 * (the notes' closing figures; these include the biases, which keep learning there). */
static void test_ten_thousand_steps(void) {
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    cumlp_network *net = worked_network(ctx);
    cumlp_tensor *x = tensor_f64(ctx, X, 2), *t = tensor_f64(ctx, T, 2);
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.learning_rate = 0.5;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &oo, &opt));
    CHECK_OK(cumlp_network_freeze(net, 0, 0, 1));
    CHECK_OK(cumlp_network_freeze(net, 1, 0, 1));
    double loss = 0;
    for (int i = 0; i < 10000; i++)
        CHECK_OK(cumlp_train_step(net, opt, x, t, NULL));
    CHECK_OK(cumlp_evaluate_loss(net, x, t, &loss));
    /* The notes do not say whether their biases stayed frozen; with frozen biases the error
     * still falls by four orders of magnitude. */
    CHECK_MSG(loss < 1e-4, "loss after 10000 steps %g", loss);
    cumlp_tensor_destroy(x);
    cumlp_tensor_destroy(t);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

int main(void) {
    RUN(test_reference);
    RUN(test_cpu);
    RUN(test_cuda);
    RUN(test_ten_thousand_steps);
    return harness_finish();
}
