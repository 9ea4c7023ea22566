/* ctest-labels: unit gpu */
/*
 * The GEMM-epilogue setting (cumlp.h, "GEMM epilogues") through the public API: its checks on every
 * backend, and on cuda whole networks trained with the epilogues against the same networks with
 * the fused kernels, in every precision (test_backend_ops holds the ops themselves to the
 * reference), counting the epilogues that ran, so that a setting that silently keeps the fused
 * kernels fails. In the simulator it also makes cuBLASLt find no algorithm (for every epilogue, or
 * for one), so that the fallbacks run.
 * The cuda parts are skipped without a GPU.
 */
#include "harness.h"
#include "internal.h"
#include "testutil.h"
#include "cuda_cases.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef CUMLP_TEST_CUDA_SIM
#include "cudasim_control.h"

#include <cublasLt.h>
#endif

#define STEPS 20

/* ---- the setting ------------------------------------------------------------------------------
 */

static void test_names(void) {
    CHECK(strcmp(cumlp_epilogues_name(CUMLP_EPILOGUES_OFF), "off") == 0);
    CHECK(strcmp(cumlp_epilogues_name(CUMLP_EPILOGUES_RELU), "relu") == 0);
    CHECK(strcmp(cumlp_epilogues_name(CUMLP_EPILOGUES_ALL), "all") == 0);
    CHECK(strcmp(cumlp_epilogues_name(CUMLP_EPILOGUES_COUNT), "unknown") == 0);
    int value = -1;
    CHECK_OK(cumlp_epilogues_from_name("all", &value));
    CHECK(value == CUMLP_EPILOGUES_ALL);
    CHECK(cumlp_epilogues_from_name("gelu", &value) == CUMLP_ERROR_INVALID_VALUE);
    CHECK(value == CUMLP_EPILOGUES_ALL);
}

/* Every backend starts with OFF; one without the epilogue ops refuses any other setting. */
static void test_setting_checks(void) {
    CHECK(cumlp_context_set_epilogues(NULL, CUMLP_EPILOGUES_OFF) == CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_context_epilogues(NULL) == -1);
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    CHECK(cumlp_context_epilogues(ctx) == CUMLP_EPILOGUES_OFF);
    CHECK(cumlp_context_set_epilogues(ctx, -1) == CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_context_set_epilogues(ctx, CUMLP_EPILOGUES_COUNT) == CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_context_set_epilogues(ctx, CUMLP_EPILOGUES_RELU) == CUMLP_ERROR_NOT_SUPPORTED);
    CHECK(strstr(cumlp_last_error(ctx), "no GEMM epilogues") != NULL);
    CHECK(cumlp_context_epilogues(ctx) == CUMLP_EPILOGUES_OFF);
    CHECK_OK(cumlp_context_set_epilogues(ctx, CUMLP_EPILOGUES_OFF));
    cumlp_context_destroy(ctx);
}

/* ---- networks on cuda --------------------------------------------------------------------------
 */

static cumlp_context *gpu;

static const test_training relu_run = {
    .num_layers = 3,
    .widths = {29, 64, 40, 10},
    .activations = {CUMLP_ACT_RELU, CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX},
    .loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY,
    .init = CUMLP_INIT_HE_UNIFORM,
    .seed = 7,
    .optimizer = CUMLP_OPT_MOMENTUM,
    .learning_rate = 0.05,
    .batch = 64,
    .data_seed = 99,
    .fresh_batches = 1};

/* GELU hidden layers of widths that are multiples of 8 (cuBLASLt's rule for the kept Z) and a
 * ReLU one between them. */
static const test_training gelu_run = {
    .num_layers = 4,
    .widths = {12, 32, 24, 16, 3},
    .activations = {CUMLP_ACT_GELU, CUMLP_ACT_RELU, CUMLP_ACT_GELU, CUMLP_ACT_SIGMOID},
    .loss = CUMLP_LOSS_SQUARED_ERROR,
    .init = CUMLP_INIT_XAVIER_UNIFORM,
    .seed = 11,
    .optimizer = CUMLP_OPT_MOMENTUM,
    .learning_rate = 0.1,
    .batch = 48,
    .data_seed = 5,
    .fresh_batches = 1};

static size_t parameter_count(const test_training *t) {
    size_t n = 0;
    for (int l = 0; l < t->num_layers; l++)
        n += (size_t)(t->widths[l + 1] * (t->widths[l] + 1));
    return n;
}

/* STEPS steps of t on gpu with the setting; the final parameters (the caller frees them). */
static float *train_with(const test_training *t, int epilogues, double *losses) {
    CHECK_OK(cumlp_context_set_epilogues(gpu, epilogues));
    float *p = test_train(gpu, t, STEPS, losses);
    CHECK_MSG(p != NULL, "training with epilogues %s failed", cumlp_epilogues_name(epilogues));
    return p;
}

/* The largest |a - b| / max(|b|, floor) over two parameter vectors (INFINITY if one is missing). */
static double parameters_apart(const float *a, const float *b, size_t n) {
    return a && b ? test_max_rel_error(a, b, n, 1e-2) : INFINITY;
}

/* How close the epilogue path stays to the fused kernels over STEPS steps: the ops differ by
 * their rounding only (test_backend_ops), which training grows. In FP32 and TF32 the parameters
 * are compared; in BF16 and FP16, where a rounding of P that the epilogue skips turns the sign of
 * some Z near 0 and so the gradient of that sample, the losses are. */
static int compares_parameters(void) {
    int p = cumlp_context_precision(gpu);
    return p == CUMLP_PRECISION_FP32 || p == CUMLP_PRECISION_TF32;
}

static double parameter_bound(void) {
    return cumlp_context_precision(gpu) == CUMLP_PRECISION_FP32 ? 1e-4 : 2e-2;
}

/* Checks two runs' parameters (n) and losses against the precision's bounds, plus `extra` (a
 * different function: the tanh GELU). */
static void check_close(const char *what, const float *a, const float *b, size_t n,
                        const double *loss_a, const double *loss_b, double extra) {
    const char *precision = cumlp_precision_name(cumlp_context_precision(gpu));
    if (compares_parameters()) {
        double apart = parameters_apart(a, b, n);
        CHECK_MSG(apart <= parameter_bound() + extra, "%s: %s: parameters %.3g apart", precision,
                  what, apart);
    }
    double loss_bound = (compares_parameters() ? 1e-3 : 3e-2) + extra;
    for (int s = 0; s < STEPS; s++)
        CHECK_MSG(fabs(loss_a[s] - loss_b[s]) <= loss_bound * fabs(loss_b[s]),
                  "%s: %s: step %d: loss %g against %g", precision, what, s, loss_a[s], loss_b[s]);
}

/* GEMM epilogues run in the context so far (forward and backward; internal.h): counted by the
 * front end, so that a GPU run shows the setting took effect as the simulator does. */
static int64_t epilogue_calls(void) {
    return gpu->epilogue_calls;
}

/* Whether the precision runs backward epilogues: not BF16 and FP16, whose ReLU layers run the
 * forward one alone and whose GELU layers none (cumlp.h, "GEMM epilogues"). */
static int has_backward_epilogues(void) {
    return compares_parameters();
}

/* ReLU layers with RELU follow the fused kernels' trajectory, and run through cuBLASLt: two
 * forward and two backward epilogues per step (the softmax output keeps its kernel), the forward
 * ones alone in 16 bits. */
static void test_relu_network(void) {
    double off[STEPS], on[STEPS];
    float *fused = train_with(&relu_run, CUMLP_EPILOGUES_OFF, off);
    int64_t before = epilogue_calls();
    float *epilogue = train_with(&relu_run, CUMLP_EPILOGUES_RELU, on);
    int per_step = has_backward_epilogues() ? 4 : 2;
    CHECK_MSG(epilogue_calls() - before == per_step * STEPS,
              "%lld epilogues in %d steps, not %d per step", (long long)(epilogue_calls() - before),
              STEPS, per_step);
    check_close("RELU against OFF", epilogue, fused, parameter_count(&relu_run), on, off, 0);
    CHECK_MSG(on[STEPS - 1] < on[0], "RELU epilogues do not learn: loss %g -> %g", on[0],
              on[STEPS - 1]);
    free(fused);
    free(epilogue);
    CHECK_OK(cumlp_context_set_epilogues(gpu, CUMLP_EPILOGUES_OFF));
}

/* RELU leaves GELU layers on the fused kernels; ALL moves them to cuBLASLt's GELU, the tanh
 * approximation, which trains to a nearby point. */
static void test_gelu_network(void) {
    double off[STEPS], relu[STEPS], all[STEPS];
    float *fused = train_with(&gelu_run, CUMLP_EPILOGUES_OFF, off);
    int64_t before = epilogue_calls();
    float *relu_only = train_with(&gelu_run, CUMLP_EPILOGUES_RELU, relu);
    /* the one ReLU layer: its forward pass and the delta passed down to it (forward alone in 16
     * bits, where ALL adds no GELU epilogue either) */
    int relu_per_step = has_backward_epilogues() ? 2 : 1;
    CHECK_MSG(epilogue_calls() - before == relu_per_step * STEPS,
              "RELU: %lld epilogues in %d steps", (long long)(epilogue_calls() - before), STEPS);
    before = epilogue_calls();
    float *every = train_with(&gelu_run, CUMLP_EPILOGUES_ALL, all);
    /* forward: the three hidden layers; backward: the three deltas passed down to them */
    int all_per_step = has_backward_epilogues() ? 6 : 1;
    CHECK_MSG(epilogue_calls() - before == all_per_step * STEPS, "ALL: %lld epilogues in %d steps",
              (long long)(epilogue_calls() - before), STEPS);
    size_t n = parameter_count(&gelu_run);
    check_close("RELU on a GELU network", relu_only, fused, n, relu, off, 0);
    /* the approximation is within about 5e-4 of the exact GELU (cumlp.h) */
    check_close("ALL against the exact GELU", every, fused, n, all, off, 1e-2);
    free(fused);
    free(relu_only);
    free(every);
    CHECK_OK(cumlp_context_set_epilogues(gpu, CUMLP_EPILOGUES_OFF));
}

/* A GELU output layer, and a hidden GELU layer whose width is no multiple of 8, keep the fused
 * kernels under ALL, in training and in inference alike (cumlp.h): no epilogue runs, and the
 * network is the fused path's bit for bit. */
static void test_gelu_layers_left_out(void) {
    static const test_training odd = {.num_layers = 2,
                                      .widths = {6, 12, 8},
                                      .activations = {CUMLP_ACT_GELU, CUMLP_ACT_GELU},
                                      .loss = CUMLP_LOSS_SQUARED_ERROR,
                                      .init = CUMLP_INIT_XAVIER_UNIFORM,
                                      .seed = 4,
                                      .optimizer = CUMLP_OPT_SGD,
                                      .learning_rate = 0.1,
                                      .batch = 16,
                                      .data_seed = 8,
                                      .fresh_batches = 1};
    /* (in FP16 its first steps overflow the loss scale, which test_train counts as a failure) */
    if (cumlp_context_precision(gpu) == CUMLP_PRECISION_FP16) return;
    double off[STEPS], all[STEPS];
    float *fused = train_with(&odd, CUMLP_EPILOGUES_OFF, off);
    int64_t before = epilogue_calls();
    float *left_out = train_with(&odd, CUMLP_EPILOGUES_ALL, all);
    CHECK(epilogue_calls() == before);
    CHECK_MSG(fused && left_out &&
                  memcmp(fused, left_out, parameter_count(&odd) * sizeof *fused) == 0,
              "ALL changed a network whose GELU layers it must leave to the fused kernels");
    free(fused);
    free(left_out);
    CHECK_OK(cumlp_context_set_epilogues(gpu, CUMLP_EPILOGUES_OFF));
}

/* A network trained under OFF and then switched to RELU makes its bitmasks at its next pass and
 * runs all four epilogues from then on. */
static void test_setting_changed_between_runs(void) {
    const test_training *t = &relu_run;
    cumlp_network *net = test_network(gpu, t->num_layers, t->widths, t->activations, t->loss, 5);
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, NULL, &opt));
    float *x = test_alloc_floats((size_t)(t->widths[0] * t->batch));
    float *y = test_alloc_floats((size_t)(t->widths[3] * t->batch));
    test_rng rng = {31};
    test_fill_uniform(&rng, x, (size_t)(t->widths[0] * t->batch), -1, 1);
    test_fill_one_hot(&rng, y, t->widths[3], t->batch);
    cumlp_tensor *X = test_tensor_from(gpu, x, t->widths[0], t->batch);
    cumlp_tensor *Y = test_tensor_from(gpu, y, t->widths[3], t->batch);
    for (int setting = CUMLP_EPILOGUES_OFF; setting <= CUMLP_EPILOGUES_RELU; setting++) {
        CHECK_OK(cumlp_context_set_epilogues(gpu, setting));
        int64_t before = epilogue_calls();
        for (int s = 0; s < 3; s++)
            CHECK_OK(cumlp_train_step(net, opt, X, Y, NULL));
        int per_step = setting ? has_backward_epilogues() ? 4 : 2 : 0;
        CHECK_MSG(epilogue_calls() - before == 3 * per_step, "%s: %lld epilogues in 3 steps",
                  cumlp_epilogues_name(setting), (long long)(epilogue_calls() - before));
    }
    CHECK_OK(cumlp_context_set_epilogues(gpu, CUMLP_EPILOGUES_OFF));
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    free(x);
    free(y);
}

/* cumlp_forward with the epilogues (no aux kept) gives the fused kernels' predictions. */
static void test_inference(void) {
    cumlp_network *net =
        test_network(gpu, 3, relu_run.widths, relu_run.activations, relu_run.loss, 3);
    int64_t n_in = relu_run.widths[0], n_out = relu_run.widths[3], cols = 33;
    float *x = test_alloc_floats((size_t)(n_in * cols));
    float *y_off = test_alloc_floats((size_t)(n_out * cols));
    float *y_on = test_alloc_floats((size_t)(n_out * cols));
    test_rng rng = {77};
    test_fill_uniform(&rng, x, (size_t)(n_in * cols), -1, 1);
    cumlp_tensor *X = test_tensor_from(gpu, x, n_in, cols), *Y = NULL;
    CHECK_OK(cumlp_tensor_create(gpu, n_out, cols, &Y));
    CHECK_OK(cumlp_forward(net, X, Y));
    CHECK_OK(cumlp_tensor_download(Y, y_off, n_out * cols));
    CHECK_OK(cumlp_context_set_epilogues(gpu, CUMLP_EPILOGUES_ALL));
    int64_t before = epilogue_calls();
    CHECK_OK(cumlp_forward(net, X, Y));
    CHECK(epilogue_calls() - before == 2);
    CHECK_OK(cumlp_tensor_download(Y, y_on, n_out * cols));
    double bound = cumlp_context_precision(gpu) == CUMLP_PRECISION_FP32 ? 1e-5 : 2e-2;
    double apart = test_max_rel_error(y_on, y_off, (size_t)(n_out * cols), 1e-3);
    CHECK_MSG(apart <= bound, "predictions with epilogues %.3g from the fused kernels'", apart);
    CHECK_OK(cumlp_context_set_epilogues(gpu, CUMLP_EPILOGUES_OFF));
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
    cumlp_network_destroy(net);
    free(x);
    free(y_off);
    free(y_on);
}

#ifdef CUMLP_TEST_CUDA_SIM
/* Where cuBLASLt has no algorithm for `declined` (0: for any epilogue), the layers fall back to
 * the fused kernels; a backward epilogue runs only where the forward one kept its aux. Trains the
 * GELU network under ALL on a fresh context; *calls: the epilogues that ran. */
static float *train_declining(unsigned declined, double *losses, int64_t *calls) {
    cumlp_context *used = gpu;
    gpu = fresh_cuda_context(used); /* gpu's remembered algorithms would skip the heuristic */
    float *p = NULL;
    if (gpu) {
        if (declined)
            cudasim_lt_decline_epilogue(declined);
        else
            cudasim_lt_no_algorithms(1);
        p = train_with(&gelu_run, CUMLP_EPILOGUES_ALL, losses);
        cudasim_lt_decline_epilogue(0);
        cudasim_lt_no_algorithms(0);
        *calls = gpu->epilogue_calls;
        cumlp_context_destroy(gpu);
    }
    gpu = used;
    return p;
}

/* No algorithm at all: the fused path bit for bit, and no error left behind. No algorithm for
 * the ReLU layer's forward epilogue alone: its backward epilogue must not run on a bitmask the
 * forward pass never wrote (the GELU layers still take theirs). No algorithm for the backward
 * dReLU alone: the forward epilogue runs, the fused kernel differentiates from A. (In 16 bits,
 * only the ReLU forward epilogue runs at all.) */
static void test_fallback(void) {
    double off[STEPS], none[STEPS], no_forward[STEPS], no_backward[STEPS];
    float *fused = train_with(&gelu_run, CUMLP_EPILOGUES_OFF, off);
    int64_t calls = -1;
    size_t n = parameter_count(&gelu_run);
    float *fallback = train_declining(0, none, &calls);
    CHECK(calls == 0);
    CHECK_MSG(fused && fallback && memcmp(fused, fallback, n * sizeof *fused) == 0,
              "the fallback is not the fused path bit for bit");
    CHECK(memcmp(none, off, sizeof none) == 0);
    /* in 16 bits the ReLU layer's forward epilogue keeps no bitmask, and it is the only one */
    int full = has_backward_epilogues();
    float *gelu_only = train_declining(
        full ? CUBLASLT_EPILOGUE_RELU_AUX_BIAS : CUBLASLT_EPILOGUE_RELU_BIAS, no_forward, &calls);
    CHECK_MSG(calls == (full ? 4 : 0) * STEPS, "no ReLU forward epilogue: %lld epilogues",
              (long long)calls);
    double all[STEPS];
    float *every = train_with(&gelu_run, CUMLP_EPILOGUES_ALL, all);
    check_close("no ReLU epilogues against ALL", gelu_only, every, n, no_forward, all, 0);
    float *forward_only = train_declining(CUBLASLT_EPILOGUE_DRELU_BGRAD, no_backward, &calls);
    CHECK_MSG(calls == (full ? 5 : 1) * STEPS, "no dReLU epilogue: %lld epilogues",
              (long long)calls);
    check_close("no dReLU epilogue against ALL", forward_only, every, n, no_backward, all, 0);
    CHECK_OK(cumlp_context_set_epilogues(gpu, CUMLP_EPILOGUES_OFF));
    free(fused);
    free(fallback);
    free(gelu_only);
    free(every);
    free(forward_only);
}
#endif

int main(void) {
    harness_run("epilogue names", test_names);
    harness_run("epilogue setting checks", test_setting_checks);
    static const cuda_case cases[] = {
        {"relu network", test_relu_network, 0},
        {"gelu network", test_gelu_network, 0},
        {"gelu layers left out", test_gelu_layers_left_out, 0},
        {"setting changed between runs", test_setting_changed_between_runs, 0},
        {"inference", test_inference, 0},
#ifdef CUMLP_TEST_CUDA_SIM
        {"fallback", test_fallback, 1},
#endif
    };
    if (run_cuda_cases(cases, (int)(sizeof cases / sizeof cases[0]), &gpu)) return 1;
    return harness_finish();
}
