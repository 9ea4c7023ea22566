/* ctest-labels: unit gpu */
/*
 * The training step as one CUDA graph (cumlp.h, cumlp_context_set_graphs): the same steps with and
 * without the graph give the same bits (parameters, losses, statuses, the optimizer's counters and
 * gradient norms, the loss scaler), with a learning rate changed between steps (a schedule),
 * clipping, the Adam family's bias corrections, NAdam's products, Adagrad's decay, FP16's loss
 * scaler overflowing and growing, and a batch of NaN; the step is captured again when the batch
 * size or a tensor changes, or when the scratch memory it points into moved; a capture that breaks
 * leaves the context usable and the step runs launch by launch. The cuda parts are skipped without
 * a GPU.
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
#endif
#if defined(CUMLP_TEST_CUDA_SIM) || defined(CUMLP_TEST_HAVE_CUDA_TOOLKIT)
#include <cuda_runtime_api.h>
#define HAVE_CUDA_RUNTIME 1
#endif

#define STEPS 30

static cumlp_context *gpu;

static void test_setting_checks(void) {
    CHECK(cumlp_context_set_graphs(NULL, 1) == CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_context_graphs(NULL) == -1);
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    CHECK(cumlp_context_graphs(ctx) == 0);
    CHECK(cumlp_context_set_graphs(ctx, 1) == CUMLP_ERROR_NOT_SUPPORTED);
    CHECK(strstr(cumlp_last_error(ctx), "no CUDA graphs") != NULL);
    CHECK_OK(cumlp_context_set_graphs(ctx, 0));
    cumlp_context_destroy(ctx);
}

/* ---- one run of steps, recorded ------------------------------------------------------------- */

/* What a run of steps gives, step by step and at its end. */
typedef struct run_record {
    cumlp_status status[STEPS];
    double loss[STEPS], norm[STEPS];
    int64_t steps, skipped;
    cumlp_loss_scaler scaler;
    float *params;
    size_t count;
} run_record;

typedef struct run_spec {
    const char *name;
    int optimizer;
    double learning_rate, clip_norm, clip_value, weight_decay;
    int loss_scaler_stress; /* FP16: a scale that overflows, and growth every 3 steps */
    int nan_batch;          /* step at which the batch holds a NaN (-1: none) */
    int batch_change;       /* alternate tensors and batch sizes over the run */
} run_spec;

static const run_spec specs[] = {
    {"momentum, schedule, clipping", CUMLP_OPT_MOMENTUM, 0.1, 0.05, 0, 1e-4, 0, -1, 0},
    {"adam, clip by value", CUMLP_OPT_ADAM, 1e-2, 0, 0.01, 1e-3, 0, -1, 0},
    {"nadam", CUMLP_OPT_NADAM, 2e-3, 0, 0, 0, 0, -1, 0},
    {"adagrad, NaN batch", CUMLP_OPT_ADAGRAD, 0.05, 1.0, 0, 0, 0, 7, 0},
    {"adamw, loss scaler", CUMLP_OPT_ADAMW, 1e-3, 0, 0, 1e-2, 1, -1, 0},
    {"sgd, batch and tensor changes", CUMLP_OPT_SGD, 0.1, 0, 0, 0, 0, -1, 1},
};

enum { N_IN = 24, N_HIDDEN = 40, N_OUT = 8, BATCH = 32 };

/* The batch of step s: which of three tensors (two of BATCH columns, one of BATCH + 7) it uses
 * when the spec changes them, in a pattern that captures, replays and captures again. */
static int tensor_of(const run_spec *spec, int s) {
    static const int pattern[STEPS] = {0, 0, 0, 0, 1, 1, 1, 0, 0, 2, 2, 2, 2, 0, 0,
                                       0, 1, 1, 2, 2, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    return spec->batch_change ? pattern[s] : 0;
}

static void record_free(run_record *r) {
    free(r->params);
}

/* STEPS steps of spec on gpu with graphs on or off, every step's outcome recorded. */
static void run(const run_spec *spec, int graphs, run_record *r) {
    memset(r, 0, sizeof *r);
    CHECK_OK(cumlp_context_set_graphs(gpu, graphs));
    static const int64_t widths[] = {N_IN, N_HIDDEN, N_HIDDEN, N_OUT};
    static const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_TANH, CUMLP_ACT_SOFTMAX};
    cumlp_network *net = test_network(gpu, 3, widths, acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, 1234);
    if (spec->loss_scaler_stress) test_overflowing_loss_scaler(net);
    cumlp_optimizer_options o;
    CHECK_OK(cumlp_optimizer_defaults_for(spec->optimizer, &o));
    o.learning_rate = spec->learning_rate;
    o.clip_norm = spec->clip_norm;
    o.clip_value = spec->clip_value;
    o.weight_decay = spec->weight_decay;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    cumlp_tensor *X[3], *Y[3];
    float *x[3];
    test_rng data = {99};
    for (int t = 0; t < 3; t++) {
        int64_t cols = t == 2 ? BATCH + 7 : BATCH;
        float *y = test_alloc_floats(N_OUT * cols);
        x[t] = test_alloc_floats((size_t)(N_IN * cols));
        test_fill_uniform(&data, x[t], (size_t)(N_IN * cols), -1, 1);
        test_fill_one_hot(&data, y, N_OUT, cols);
        X[t] = test_tensor_from(gpu, x[t], N_IN, cols);
        Y[t] = test_tensor_from(gpu, y, N_OUT, cols);
        free(y);
    }
    for (int s = 0; s < STEPS; s++) {
        int t = tensor_of(spec, s);
        /* a schedule: the rate changes every 4 steps */
        CHECK_OK(cumlp_optimizer_set_learning_rate(opt, spec->learning_rate / (1 + s / 4)));
        int64_t n = N_IN * cumlp_tensor_cols(X[t]);
        float clean = x[t][3];
        if (s == spec->nan_batch) {
            x[t][3] = NAN;
            CHECK_OK(cumlp_tensor_upload(X[t], x[t], n));
        }
        r->status[s] = cumlp_train_step(net, opt, X[t], Y[t], &r->loss[s]);
        r->norm[s] = cumlp_optimizer_gradient_norm(opt);
        if (s == spec->nan_batch) {
            x[t][3] = clean;
            CHECK_OK(cumlp_tensor_upload(X[t], x[t], n));
        }
        CHECK_MSG(r->status[s] == CUMLP_SUCCESS || r->status[s] == CUMLP_STEP_SKIPPED,
                  "%s, graphs %d, step %d: %s", spec->name, graphs, s, cumlp_last_error(gpu));
    }
    r->steps = cumlp_optimizer_step_count(opt);
    r->skipped = cumlp_optimizer_skipped_steps(opt);
    CHECK_OK(cumlp_network_get_loss_scaler(net, &r->scaler));
    r->count = (size_t)cumlp_network_num_parameters(net);
    r->params = test_alloc_floats(r->count);
    CHECK_OK(cumlp_network_get_parameters(net, r->params, (int64_t)r->count));
    for (int t = 0; t < 3; t++) {
        cumlp_tensor_destroy(X[t]);
        cumlp_tensor_destroy(Y[t]);
        free(x[t]);
    }
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
}

/* Two records the same bit for bit (NaN equal to NaN). */
static void check_same(const run_spec *spec, const run_record *a, const run_record *b) {
    const char *p = cumlp_precision_name(cumlp_context_precision(gpu));
    CHECK_MSG(memcmp(a->status, b->status, sizeof a->status) == 0, "%s %s: statuses differ", p,
              spec->name);
    CHECK_MSG(memcmp(a->loss, b->loss, sizeof a->loss) == 0, "%s %s: losses differ", p, spec->name);
    CHECK_MSG(memcmp(a->norm, b->norm, sizeof a->norm) == 0, "%s %s: gradient norms differ", p,
              spec->name);
    CHECK_MSG(a->steps == b->steps && a->skipped == b->skipped, "%s %s: %lld/%lld steps, %lld/%lld",
              p, spec->name, (long long)a->steps, (long long)a->skipped, (long long)b->steps,
              (long long)b->skipped);
    CHECK_MSG(memcmp(&a->scaler, &b->scaler, sizeof a->scaler) == 0, "%s %s: loss scalers differ",
              p, spec->name);
    CHECK_MSG(a->count == b->count && memcmp(a->params, b->params, a->count * sizeof(float)) == 0,
              "%s %s: parameters differ", p, spec->name);
}

/* The captures and launches one graph run makes: one capture at the second step of each key's
 * first stretch, launches for every step after it. */
static void check_graph_use(const run_spec *spec, int64_t captures, int64_t launches) {
    if (!spec->batch_change) {
        CHECK_MSG(captures == 1 && launches == STEPS - 1, "%s: %lld captures, %lld launches",
                  spec->name, (long long)captures, (long long)launches);
        return;
    }
    /* key changes at steps 4, 7, 9, 13, 16, 18, 20, 25; the pattern's stretches of 2 or more
     * capture at their second step unless the graph holds their key already */
    CHECK_MSG(captures >= 5 && launches >= captures, "%s: %lld captures, %lld launches", spec->name,
              (long long)captures, (long long)launches);
}

static void test_graph_is_bit_identical(void) {
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        const run_spec *spec = &specs[i];
        if (spec->loss_scaler_stress && cumlp_context_precision(gpu) != CUMLP_PRECISION_FP16)
            continue;
        run_record without, with;
        run(spec, 0, &without);
        int64_t captures = gpu->graph_captures, launches = gpu->graph_launches;
        run(spec, 1, &with);
        check_same(spec, &with, &without);
        check_graph_use(spec, gpu->graph_captures - captures, gpu->graph_launches - launches);
        if (spec->loss_scaler_stress)
            CHECK_MSG(with.skipped > 0 && with.scaler.overflows > 0,
                      "the loss scaler never overflowed: the test lost its point");
        if (spec->nan_batch >= 0) CHECK(with.status[spec->nan_batch] == CUMLP_STEP_SKIPPED);
        record_free(&without);
        record_free(&with);
    }
    CHECK_OK(cumlp_context_set_graphs(gpu, 1));
}

/* The scratch memory a graph points into grows (a larger batch evaluated in between): the next
 * launch is refused and the step captured again, with the same results as without a graph. */
static void test_scratch_moved(void) {
    static const int64_t widths[] = {N_IN, N_HIDDEN, N_OUT};
    static const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX};
    float results[2][N_OUT * (N_HIDDEN + 1) + N_HIDDEN * (N_IN + 1)];
    int64_t captures[2] = {0, 0};
    for (int graphs = 0; graphs <= 1; graphs++) {
        CHECK_OK(cumlp_context_set_graphs(gpu, graphs));
        cumlp_network *net =
            test_network(gpu, 2, widths, acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, 77);
        cumlp_optimizer *opt = NULL;
        CHECK_OK(cumlp_optimizer_create(net, NULL, &opt));
        test_rng data = {5};
        int64_t big = 4096;
        float *x = test_alloc_floats(N_IN * big), *y = test_alloc_floats(N_OUT * big);
        test_fill_uniform(&data, x, N_IN * big, -1, 1);
        test_fill_one_hot(&data, y, N_OUT, big);
        cumlp_tensor *X = test_tensor_from(gpu, x, N_IN, BATCH);
        cumlp_tensor *Y = test_tensor_from(gpu, y, N_OUT, BATCH);
        cumlp_tensor *XB = test_tensor_from(gpu, x, N_IN, big);
        cumlp_tensor *YB = test_tensor_from(gpu, y, N_OUT, big);
        int64_t before = gpu->graph_captures;
        for (int s = 0; s < 8; s++) {
            double loss = 0;
            if (s == 4) CHECK_OK(cumlp_evaluate_loss(net, XB, YB, &loss)); /* grows the scratch */
            CHECK_OK(cumlp_train_step(net, opt, X, Y, NULL));
        }
        captures[graphs] = gpu->graph_captures - before;
        CHECK_OK(
            cumlp_network_get_parameters(net, results[graphs], cumlp_network_num_parameters(net)));
        cumlp_tensor_destroy(X);
        cumlp_tensor_destroy(Y);
        cumlp_tensor_destroy(XB);
        cumlp_tensor_destroy(YB);
        cumlp_optimizer_destroy(opt);
        cumlp_network_destroy(net);
        free(x);
        free(y);
    }
    CHECK_MSG(memcmp(results[0], results[1], sizeof results[0]) == 0,
              "a step captured again after the scratch moved differs");
    /* the evaluation's larger batch reallocates the work buffers too: a new key, captured at
     * its second sight; or the same buffers with moved scratch: captured again at once */
    CHECK_MSG(captures[0] == 0 && captures[1] == 2, "%lld captures without, %lld with graphs",
              (long long)captures[0], (long long)captures[1]);
    CHECK_OK(cumlp_context_set_graphs(gpu, 1));
}

#ifdef CUMLP_TEST_CUDA_SIM
/* A capture that breaks (as one that waits or allocates would): the step runs launch by launch
 * with the results of a run without graphs, the context goes on, and the key is not captured
 * again. */
static void test_broken_capture(void) {
    const run_spec *spec = &specs[0];
    run_record without, with;
    run(spec, 0, &without);
    int64_t captures = gpu->graph_captures, launches = gpu->graph_launches;
    cudasim_break_capture(5);
    run(spec, 1, &with);
    cudasim_break_capture(0);
    check_same(spec, &with, &without);
    CHECK(gpu->graph_captures == captures && gpu->graph_launches == launches);
    CHECK(cumlp_context_synchronize(gpu) == CUMLP_SUCCESS);
    record_free(&without);
    record_free(&with);
}
#endif

/* cumlp_fit alternates two batch buffers (the next batch is copied while one trains): both keys
 * are captured and replayed, and the fit's result is the one without graphs, bit for bit. */
static void test_fit_uses_graphs(void) {
    enum { SAMPLES = 320, FEATURES = 6, CLASSES = 3 };
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_create(NULL, FEATURES, CLASSES, SAMPLES, CLASSES, &ds));
    if (!ds) return;
    test_rng r = {17};
    int32_t labels[SAMPLES];
    float *x = cumlp_dataset_features(ds);
    for (int i = 0; i < SAMPLES; i++) {
        labels[i] = (int32_t)test_rng_below(&r, CLASSES);
        for (int f = 0; f < FEATURES; f++)
            x[i * FEATURES + f] =
                (float)(labels[i] == f % CLASSES) + (float)test_rng_uniform(&r, -0.5, 0.5);
    }
    CHECK_OK(cumlp_dataset_set_labels(ds, labels, SAMPLES));
    static const int64_t widths[] = {FEATURES, 16, CLASSES};
    static const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX};
    float params[2][16 * (FEATURES + 1) + CLASSES * 17];
    double losses[2] = {0, 0};
    int64_t launches[2] = {0, 0};
    for (int graphs = 0; graphs <= 1; graphs++) {
        CHECK_OK(cumlp_context_set_graphs(gpu, graphs));
        cumlp_network *net =
            test_network(gpu, 2, widths, acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, 21);
        cumlp_optimizer *opt = NULL;
        CHECK_OK(cumlp_optimizer_create(net, NULL, &opt));
        cumlp_fit_options o;
        CHECK_OK(cumlp_fit_defaults(&o));
        o.epochs = 3;
        o.batch_size = 32;
        o.schedule = CUMLP_LR_COSINE;
        cumlp_fit_result res;
        int64_t before = gpu->graph_launches;
        CHECK_OK(cumlp_fit(net, opt, ds, NULL, &o, &res));
        launches[graphs] = gpu->graph_launches - before;
        losses[graphs] = res.train_loss;
        CHECK_OK(
            cumlp_network_get_parameters(net, params[graphs], cumlp_network_num_parameters(net)));
        cumlp_optimizer_destroy(opt);
        cumlp_network_destroy(net);
    }
    /* 30 steps: two captured at their second sight, the others (but the first two) replayed */
    CHECK_MSG(launches[0] == 0 && launches[1] >= 3 * 10 - 4, "%lld, %lld graph launches",
              (long long)launches[0], (long long)launches[1]);
    CHECK(memcmp(&losses[0], &losses[1], sizeof losses[0]) == 0);
    CHECK_MSG(memcmp(params[0], params[1], sizeof params[0]) == 0,
              "a fit with graphs differs from one without");
    cumlp_dataset_destroy(ds);
    CHECK_OK(cumlp_context_set_graphs(gpu, 1));
}

#ifdef CUMLP_TEST_CUDA_SIM
/* Without pinned memory for its step state the optimizer's steps are decided on the host: the
 * same bits as the device's decisions here, where the simulator's device math is the host's (a
 * GPU may differ by an ulp, kernels/step_rule.h), and no graph. */
static void test_host_decides_alike(void) {
    const run_spec *spec = &specs[1]; /* Adam: bias corrections, clipping by value */
    run_record device, host;
    run(spec, 1, &device);
    int64_t captures = gpu->graph_captures;
    cudasim_fail_host_allocation(1); /* the step state's pinned memory, at the first step */
    run(spec, 1, &host);
    cudasim_fail_host_allocation(0);
    CHECK(gpu->graph_captures == captures);
    check_same(spec, &host, &device);
    record_free(&device);
    record_free(&host);
}
#endif

#ifdef HAVE_CUDA_RUNTIME
/* A context on the caller's stream: its steps are graphs as on the context's own. On the legacy
 * default stream, which cannot be captured, they run launch by launch: the same results, and the
 * context goes on. */
static void test_callers_streams(void) {
    const run_spec *spec = &specs[0];
    run_record own;
    run(spec, 1, &own);
    cudaStream_t mine = NULL;
    CHECK(cudaStreamCreateWithFlags(&mine, cudaStreamNonBlocking) == cudaSuccess);
    cudaStream_t streams[2] = {mine, cudaStreamLegacy};
    cumlp_context *saved = gpu;
    for (int i = 0; i < 2; i++) {
        cumlp_context_options o;
        cumlp_context_defaults(&o);
        o.backend = CUMLP_BACKEND_CUDA;
        o.precision = cumlp_context_precision(saved);
        o.stream = streams[i];
        char why[256];
        gpu = test_context_try(&o, why, sizeof why);
        CHECK_MSG(gpu != NULL, "%s", why);
        if (!gpu) break;
        run_record rec;
        run(spec, 1, &rec);
        CHECK_MSG(gpu->graph_captures == (i == 0 ? 1 : 0), "stream %d: %lld captures", i,
                  (long long)gpu->graph_captures);
        check_same(spec, &rec, &own);
        CHECK(cumlp_context_synchronize(gpu) == CUMLP_SUCCESS);
        record_free(&rec);
        cumlp_context_destroy(gpu);
    }
    gpu = saved;
    if (mine) cudaStreamDestroy(mine);
    record_free(&own);
}
#endif

/* Graphs are on by default on cuda. */
static void test_default(void) {
    CHECK(cumlp_context_graphs(gpu) == 1);
}

int main(void) {
    harness_run("graph setting checks", test_setting_checks);
    static const cuda_case cases[] = {
        {"on by default", test_default, 0},
        {"graph is bit-identical", test_graph_is_bit_identical, 0},
        {"scratch moved", test_scratch_moved, 0},
        {"fit uses graphs", test_fit_uses_graphs, 0},
#ifdef HAVE_CUDA_RUNTIME
        {"caller's streams", test_callers_streams, 0},
#endif
#ifdef CUMLP_TEST_CUDA_SIM
        {"broken capture", test_broken_capture, 1},
        {"host decides alike", test_host_decides_alike, 1},
#endif
    };
    if (run_cuda_cases(cases, (int)(sizeof cases / sizeof cases[0]), &gpu)) return 1;
    return harness_finish();
}
