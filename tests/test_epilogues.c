/* ctest-labels: unit gpu */
/*
 * The GEMM-epilogue setting (cumlp.h, "GEMM epilogues") through the public API: its checks on every
 * backend, and on cuda whole networks trained with the epilogues against the same networks with
 * the fused kernels, in every precision (test_backend_ops holds the ops themselves to the
 * reference). In the simulator it also counts the cuBLASLt calls, so that a setting that silently
 * keeps the fused kernels fails, and makes cuBLASLt find no algorithm, so that the fallback runs.
 * The cuda parts are skipped without a GPU.
 */
#include "harness.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef CUMLP_TEST_CUDA_SIM
#include "cudasim_control.h"
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
static char gpu_missing[256];

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

#ifdef CUMLP_TEST_CUDA_SIM
static unsigned long lt_calls(void) {
    return cudasim_lt_matmul_count();
}
#endif

/* ReLU layers with RELU follow the fused kernels' trajectory, and run through cuBLASLt: two
 * forward and two backward epilogues per step (the softmax output keeps its kernel). */
static void test_relu_network(void) {
    double off[STEPS], on[STEPS];
    float *fused = train_with(&relu_run, CUMLP_EPILOGUES_OFF, off);
#ifdef CUMLP_TEST_CUDA_SIM
    unsigned long before = lt_calls();
#endif
    float *epilogue = train_with(&relu_run, CUMLP_EPILOGUES_RELU, on);
#ifdef CUMLP_TEST_CUDA_SIM
    CHECK_MSG(lt_calls() - before == 4 * STEPS, "%lu cuBLASLt calls in %d steps, not 4 per step",
              lt_calls() - before, STEPS);
#endif
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
    float *relu_only = train_with(&gelu_run, CUMLP_EPILOGUES_RELU, relu);
#ifdef CUMLP_TEST_CUDA_SIM
    unsigned long before = lt_calls();
#endif
    float *every = train_with(&gelu_run, CUMLP_EPILOGUES_ALL, all);
#ifdef CUMLP_TEST_CUDA_SIM
    /* forward: the three hidden layers; backward: the three deltas passed down to them */
    CHECK_MSG(lt_calls() - before == 6 * STEPS, "%lu cuBLASLt calls in %d steps, not 6 per step",
              lt_calls() - before, STEPS);
#endif
    size_t n = parameter_count(&gelu_run);
    check_close("RELU on a GELU network", relu_only, fused, n, relu, off, 0);
    /* the approximation is within about 5e-4 of the exact GELU (cumlp.h) */
    check_close("ALL against the exact GELU", every, fused, n, all, off, 1e-2);
    free(fused);
    free(relu_only);
    free(every);
    CHECK_OK(cumlp_context_set_epilogues(gpu, CUMLP_EPILOGUES_OFF));
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
    CHECK_OK(cumlp_forward(net, X, Y));
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
/* Where cuBLASLt has no algorithm, every layer falls back to the fused kernels: the same bits as
 * OFF, no cuBLASLt call, and no error left behind. */
static void test_fallback(void) {
    double off[STEPS], on[STEPS];
    float *fused = train_with(&gelu_run, CUMLP_EPILOGUES_OFF, off);
    /* a fresh context: gpu remembers the algorithms cuBLASLt found for these cases */
    cumlp_context *used = gpu;
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_CUDA;
    o.precision = cumlp_context_precision(used);
    gpu = test_context_try(&o, gpu_missing, sizeof gpu_missing);
    CHECK_MSG(gpu != NULL, "%s", gpu_missing);
    if (!gpu) {
        gpu = used;
        free(fused);
        return;
    }
    cudasim_lt_no_algorithms(1);
    unsigned long before = lt_calls();
    float *fallback = train_with(&gelu_run, CUMLP_EPILOGUES_ALL, on);
    cudasim_lt_no_algorithms(0);
    CHECK(lt_calls() == before);
    size_t n = parameter_count(&gelu_run);
    CHECK_MSG(fused && fallback && memcmp(fused, fallback, n * sizeof *fused) == 0,
              "the fallback is not the fused path bit for bit");
    CHECK(memcmp(on, off, sizeof on) == 0);
    free(fused);
    free(fallback);
    cumlp_context_destroy(gpu);
    gpu = used;
}
#endif

int main(void) {
    harness_run("epilogue names", test_names);
    harness_run("epilogue setting checks", test_setting_checks);
    for (int p = CUMLP_PRECISION_FP32; p < CUMLP_PRECISION_COUNT; p++) {
        cumlp_context_options o;
        cumlp_context_defaults(&o);
        o.backend = CUMLP_BACKEND_CUDA;
        o.precision = p;
        gpu = test_context_try(&o, gpu_missing, sizeof gpu_missing);
        if (!gpu) {
            if (test_gpu_required()) {
                fprintf(stderr, "CUMLP_TEST_REQUIRE_GPU=1: %s\n", gpu_missing);
                return 1;
            }
            printf("skipped: the cuda parts: %s\n", gpu_missing);
            break;
        }
        char name[96];
        snprintf(name, sizeof name, "%s: relu network", cumlp_precision_name(p));
        harness_run(name, test_relu_network);
        snprintf(name, sizeof name, "%s: gelu network", cumlp_precision_name(p));
        harness_run(name, test_gelu_network);
        snprintf(name, sizeof name, "%s: inference", cumlp_precision_name(p));
        harness_run(name, test_inference);
#ifdef CUMLP_TEST_CUDA_SIM
        snprintf(name, sizeof name, "%s: fallback", cumlp_precision_name(p));
        harness_run(name, test_fallback);
#endif
        cumlp_context_destroy(gpu);
        gpu = NULL;
    }
    return harness_finish();
}
