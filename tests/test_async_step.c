/* ctest-labels: unit gpu */
/*
 * cumlp_train_step_async and cumlp_optimizer_sync (cumlp.h): steps queued without a wait give the
 * bits of the same steps taken one by one with cumlp_train_step (parameters, the optimizer's
 * counters, the loss scaler), and the summary a sync reads (steps, taken, skipped, failed, the
 * mean loss) is the one the waited-for steps add up to; a failure under non_finite_error halts the
 * later queued steps and is reported by the sync; the getters, cumlp_train_step and a new learning
 * rate wait for queued steps; bad arguments fail at once. On the cuda backend in every precision,
 * with the step's graph and without (the cuda parts are skipped without a GPU), and on the cpu
 * backend, where the host decides each step at once.
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

#define STEPS 24

static cumlp_context *ctx_under_test;

typedef struct run_spec {
    const char *name;
    int optimizer;
    double learning_rate, clip_norm;
    int loss_scaler_stress; /* FP16: a scale that overflows at first, growth every 3 steps */
    int nan_batch;          /* the step whose batch holds a NaN (-1: none) */
    int non_finite_error;   /* the optimizer's option: the NaN batch fails instead of skipping */
} run_spec;

static const run_spec specs[] = {
    {"momentum, clipping", CUMLP_OPT_MOMENTUM, 0.1, 0.05, 0, -1, 0},
    {"adam, NaN batch skipped", CUMLP_OPT_ADAM, 1e-2, 0, 0, 9, 0},
    {"nadam, NaN batch fails", CUMLP_OPT_NADAM, 2e-3, 0, 0, 7, 1},
    {"adamw, loss scaler", CUMLP_OPT_ADAMW, 1e-3, 0, 1, -1, 0},
};

enum { N_IN = 20, N_HIDDEN = 32, N_OUT = 6, BATCH = 24 };

/* What a run gives at its end. */
typedef struct run_record {
    cumlp_status sync_status; /* of the cumlp_optimizer_sync at the end */
    cumlp_step_summary summary;
    double loss_sum; /* the losses cumlp_train_step returned, times BATCH (waited-for runs) */
    int64_t steps, skipped;
    cumlp_loss_scaler scaler;
    float *params, *grads; /* grads: the last step's, as cumlp_network_get_gradients gives them */
    size_t count;
} run_record;

static cumlp_network *make_net(const run_spec *spec) {
    static const int64_t widths[] = {N_IN, N_HIDDEN, N_HIDDEN, N_OUT};
    static const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_TANH, CUMLP_ACT_SOFTMAX};
    cumlp_network *net =
        test_network(ctx_under_test, 3, widths, acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, 4321);
    if (spec->loss_scaler_stress) test_overflowing_loss_scaler(net);
    return net;
}

static cumlp_optimizer *make_optimizer(cumlp_network *net, const run_spec *spec) {
    cumlp_optimizer_options o;
    CHECK_OK(cumlp_optimizer_defaults_for(spec->optimizer, &o));
    o.learning_rate = spec->learning_rate;
    o.clip_norm = spec->clip_norm;
    o.non_finite_error = spec->non_finite_error;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    return opt;
}

/* A network of spec with its optimizer, and a batch of BATCH columns in host and device memory. */
typedef struct fixture {
    cumlp_network *net;
    cumlp_optimizer *opt;
    float *x, *y;
    cumlp_tensor *X, *Y;
} fixture;

/* The fixture's batch is uniform inputs and one-hot targets drawn from rng (uploaded). */
static void draw_batch(fixture *f, test_rng *rng) {
    test_fill_uniform(rng, f->x, (size_t)N_IN * BATCH, -1, 1);
    test_fill_one_hot(rng, f->y, N_OUT, BATCH);
    CHECK_OK(cumlp_tensor_upload(f->X, f->x, N_IN * BATCH));
    CHECK_OK(cumlp_tensor_upload(f->Y, f->y, N_OUT * BATCH));
}

static fixture setup(const run_spec *spec) {
    fixture f;
    f.net = make_net(spec);
    f.opt = make_optimizer(f.net, spec);
    f.x = test_alloc_floats((size_t)N_IN * BATCH);
    f.y = test_alloc_floats(N_OUT * BATCH);
    CHECK_OK(cumlp_tensor_create(ctx_under_test, N_IN, BATCH, &f.X));
    CHECK_OK(cumlp_tensor_create(ctx_under_test, N_OUT, BATCH, &f.Y));
    return f;
}

/* Destroys what setup made; steps still queued are the destroy calls' to wait for. */
static void teardown(fixture *f) {
    cumlp_tensor_destroy(f->X);
    cumlp_tensor_destroy(f->Y);
    free(f->x);
    free(f->y);
    cumlp_optimizer_destroy(f->opt);
    cumlp_network_destroy(f->net);
}

/* STEPS steps of spec, queued (async) or waited for one by one, on a batch uploaded afresh before
 * every step (queued behind the step before: the upload is ordered on the context's stream), the
 * learning rate halved half-way (which waits for the queued steps: the host's options go to the
 * device with the next queue). The waited-for run stops at the first failure, as a caller would;
 * a queued failure must go on halting the steps queued after that wait. */
static void run(const run_spec *spec, int async, run_record *r) {
    memset(r, 0, sizeof *r);
    fixture f = setup(spec);
    test_rng data = {17};
    for (int s = 0; s < STEPS; s++) {
        draw_batch(&f, &data);
        if (s == STEPS / 2)
            CHECK_OK(cumlp_optimizer_set_learning_rate(f.opt, spec->learning_rate / 2));
        if (s == spec->nan_batch) {
            f.x[5] = NAN;
            CHECK_OK(cumlp_tensor_upload(f.X, f.x, N_IN * BATCH));
        }
        if (async) {
            CHECK_OK(cumlp_train_step_async(f.net, f.opt, f.X, f.Y));
            continue;
        }
        double loss = NAN;
        cumlp_status st = cumlp_train_step(f.net, f.opt, f.X, f.Y, &loss);
        CHECK_MSG(st == CUMLP_SUCCESS || st == CUMLP_STEP_SKIPPED ||
                      (st == CUMLP_ERROR_NON_FINITE && s == spec->nan_batch),
                  "%s, step %d: %s", spec->name, s, cumlp_last_error(ctx_under_test));
        if (isfinite(loss)) r->loss_sum += loss * BATCH;
        if (st == CUMLP_ERROR_NON_FINITE) break;
    }
    r->sync_status = cumlp_optimizer_sync(f.opt, &r->summary);
    r->steps = cumlp_optimizer_step_count(f.opt);
    r->skipped = cumlp_optimizer_skipped_steps(f.opt);
    CHECK_OK(cumlp_network_get_loss_scaler(f.net, &r->scaler));
    r->count = (size_t)cumlp_network_num_parameters(f.net);
    r->params = test_alloc_floats(r->count);
    r->grads = test_alloc_floats(r->count);
    CHECK_OK(cumlp_network_get_parameters(f.net, r->params, (int64_t)r->count));
    CHECK_OK(cumlp_network_get_gradients(f.net, r->grads, (int64_t)r->count));
    teardown(&f);
}

static const char *where(void) {
    static char name[64];
    snprintf(name, sizeof name, "%s %s", cumlp_backend_name(cumlp_context_backend(ctx_under_test)),
             cumlp_precision_name(cumlp_context_precision(ctx_under_test)));
    return name;
}

/* The queued run against the waited-for one: the same bits, and the summary their steps add up
 * to. */
static void check_runs(const run_spec *spec, const run_record *queued, const run_record *waited) {
    const char *w = where();
    CHECK_MSG(queued->count == waited->count &&
                  memcmp(queued->params, waited->params, queued->count * sizeof(float)) == 0,
              "%s %s: parameters differ", w, spec->name);
    /* FP16's gradients divide out the loss scale of the step that made them */
    int failing_stops = spec->non_finite_error && spec->nan_batch >= 0;
    CHECK_MSG(failing_stops ||
                  memcmp(queued->grads, waited->grads, queued->count * sizeof(float)) == 0,
              "%s %s: gradients differ", w, spec->name);
    CHECK_MSG(queued->steps == waited->steps && queued->skipped == waited->skipped,
              "%s %s: %lld steps, %lld skipped queued; %lld, %lld waited for", w, spec->name,
              (long long)queued->steps, (long long)queued->skipped, (long long)waited->steps,
              (long long)waited->skipped);
    CHECK_MSG(memcmp(&queued->scaler, &waited->scaler, sizeof queued->scaler) == 0,
              "%s %s: loss scalers differ", w, spec->name);
    const cumlp_step_summary *q = &queued->summary, *s = &waited->summary;
    /* in FP16 non-finite gradients are an overflow, skipped under any option (the fused ReLU
     * maps the NaN of Z to 0, so the loss stays finite and the gradients carry it) */
    int failing = spec->non_finite_error && spec->nan_batch >= 0 &&
                  cumlp_context_precision(ctx_under_test) != CUMLP_PRECISION_FP16;
    CHECK_MSG(q->steps == STEPS, "%s %s: %lld steps in the summary", w, spec->name,
              (long long)q->steps);
    CHECK_MSG(q->taken == s->taken && q->skipped == s->skipped &&
                  q->taken + q->skipped + q->failed == q->steps,
              "%s %s: summary %lld taken %lld skipped %lld failed, waited for %lld %lld %lld", w,
              spec->name, (long long)q->taken, (long long)q->skipped, (long long)q->failed,
              (long long)s->taken, (long long)s->skipped, (long long)s->failed);
    CHECK(q->taken == queued->steps); /* the step count counts the steps taken */
    /* the failing step and every step queued after it */
    if (failing) CHECK(q->failed == STEPS - spec->nan_batch && s->failed == 1);
    if (!failing) CHECK(q->failed == 0);
    CHECK_MSG(queued->sync_status == (failing ? CUMLP_ERROR_NON_FINITE : CUMLP_SUCCESS),
              "%s %s: the sync returned %d", w, spec->name, (int)queued->sync_status);
    CHECK(waited->sync_status == CUMLP_SUCCESS);
    /* the mean loss: the same losses, summed in groups (each wait adds the device's partial sum)
     * where the waited-for steps add one by one, and the losses the steps returned */
    CHECK_MSG(
        fabs(q->loss - s->loss) <= 1e-14 * fabs(s->loss) && q->loss_samples == s->loss_samples,
        "%s %s: loss %.17g/%lld, "
        "waited for %.17g/%lld",
        w, spec->name, q->loss, (long long)q->loss_samples, s->loss, (long long)s->loss_samples);
    double mean = waited->loss_sum / (double)s->loss_samples;
    CHECK_MSG(fabs(s->loss - mean) <= 1e-12 * fabs(mean), "%s %s: summary loss %.17g, steps' %.17g",
              w, spec->name, s->loss, mean);
}

static void test_queued_steps_are_waited_for_steps(void) {
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        const run_spec *spec = &specs[i];
        if (spec->loss_scaler_stress &&
            cumlp_context_precision(ctx_under_test) != CUMLP_PRECISION_FP16)
            continue;
        run_record queued, waited;
        run(spec, 1, &queued);
        run(spec, 0, &waited);
        check_runs(spec, &queued, &waited);
        if (spec->loss_scaler_stress)
            CHECK_MSG(queued.summary.skipped > 0 && queued.scaler.overflows > 0,
                      "the loss scaler never overflowed");
        free(queued.params);
        free(waited.params);
        free(queued.grads);
        free(waited.grads);
    }
}

/* ... with each step as a CUDA graph and launch by launch. */
static void test_queued_steps_with_and_without_graphs(void) {
    int graphs = cumlp_context_graphs(ctx_under_test);
    for (int g = 0; g <= 1; g++) {
        CHECK_OK(cumlp_context_set_graphs(ctx_under_test, g));
        test_queued_steps_are_waited_for_steps();
    }
    CHECK_OK(cumlp_context_set_graphs(ctx_under_test, graphs));
}

/* The getters, a new learning rate and cumlp_train_step wait for the queued steps; a sync with
 * nothing queued reports an empty summary. */
static void test_waiting_calls(void) {
    fixture f = setup(&specs[0]);
    test_rng data = {5};
    draw_batch(&f, &data);
    cumlp_network *net = f.net;
    cumlp_optimizer *opt = f.opt;
    for (int s = 0; s < 5; s++)
        CHECK_OK(cumlp_train_step_async(net, opt, f.X, f.Y));
    /* queued, not waited for, where the device decides (internal.h) */
    int device = cumlp_context_backend(ctx_under_test) == CUMLP_BACKEND_CUDA;
    CHECK_MSG(opt->queued == (device ? 5 : 0), "%lld steps queued", (long long)opt->queued);
    CHECK(cumlp_optimizer_step_count(opt) == 5 && opt->queued == 0);
    for (int s = 0; s < 3; s++)
        CHECK_OK(cumlp_train_step_async(net, opt, f.X, f.Y));
    CHECK_OK(cumlp_optimizer_set_learning_rate(opt, 0.05));
    CHECK(cumlp_optimizer_step_count(opt) == 8);
    CHECK_OK(cumlp_train_step_async(net, opt, f.X, f.Y));
    double loss = NAN;
    CHECK_OK(cumlp_train_step(net, opt, f.X, f.Y, &loss));
    CHECK(cumlp_optimizer_step_count(opt) == 10 && isfinite(loss));
    /* each of these waits for the queued step before it (seen in opt->queued, internal.h) */
    cumlp_loss_scaler scaler;
    CHECK_OK(cumlp_train_step_async(net, opt, f.X, f.Y));
    CHECK_OK(cumlp_network_get_loss_scaler(net, &scaler));
    CHECK(opt->queued == 0);
    size_t n = (size_t)cumlp_network_num_parameters(net);
    float *grads = test_alloc_floats(n);
    CHECK_OK(cumlp_train_step_async(net, opt, f.X, f.Y));
    CHECK_OK(cumlp_network_get_gradients(net, grads, (int64_t)n));
    CHECK(opt->queued == 0);
    free(grads);
    double errors[6];
    CHECK_OK(cumlp_train_step_async(net, opt, f.X, f.Y));
    CHECK_OK(cumlp_gradient_check(net, f.X, f.Y, 0, errors, 6));
    CHECK(opt->queued == 0);
    CHECK_OK(cumlp_train_step_async(net, opt, f.X, f.Y));
    CHECK_OK(cumlp_optimizer_set_learning_rate(opt, 0.02));
    CHECK(opt->queued == 0);
    CHECK(cumlp_optimizer_step_count(opt) == 14);
    cumlp_step_summary summary;
    CHECK_OK(cumlp_optimizer_sync(opt, &summary));
    CHECK_MSG(summary.steps == 14 && summary.taken == 14 && summary.skipped == 0 &&
                  summary.failed == 0 && summary.loss_samples == 14 * BATCH &&
                  isfinite(summary.loss),
              "summary: %lld steps, %lld taken, %lld samples", (long long)summary.steps,
              (long long)summary.taken, (long long)summary.loss_samples);
    CHECK_OK(cumlp_optimizer_sync(opt, &summary));
    CHECK(summary.steps == 0 && summary.loss_samples == 0 && isnan(summary.loss));
    CHECK_OK(cumlp_optimizer_sync(opt, NULL));
    CHECK_OK(cumlp_train_step_async(net, opt, f.X, f.Y)); /* left to teardown's destroy calls */
    teardown(&f);
}

/* A queued failure under non_finite_error that a wait read back before the sync: steps queued
 * after it are counted, not run; cumlp_train_step, cumlp_optimizer_step and cumlp_fit refuse to
 * run until the sync has reported it (cumlp_fit with its result saying so); then steps run again.
 */
static void test_pending_failure(void) {
    /* (in FP16 the NaN batch is an overflow, skipped: nothing fails) */
    if (cumlp_context_precision(ctx_under_test) == CUMLP_PRECISION_FP16) return;
    fixture f = setup(&specs[2]); /* non_finite_error */
    test_rng data = {6};
    draw_batch(&f, &data);
    CHECK_OK(cumlp_train_step_async(f.net, f.opt, f.X, f.Y));
    f.x[5] = NAN;
    CHECK_OK(cumlp_tensor_upload(f.X, f.x, N_IN * BATCH));
    CHECK_OK(cumlp_train_step_async(f.net, f.opt, f.X, f.Y));
    draw_batch(&f, &data);
    CHECK_OK(cumlp_train_step_async(f.net, f.opt, f.X, f.Y));
    CHECK(cumlp_optimizer_step_count(f.opt) == 1); /* waits: the failure is read back */
    CHECK_OK(cumlp_train_step_async(f.net, f.opt, f.X, f.Y));
    CHECK(f.opt->queued == 0); /* not even queued */
    CHECK(cumlp_train_step(f.net, f.opt, f.X, f.Y, NULL) == CUMLP_ERROR_NON_FINITE);
    CHECK(strstr(cumlp_last_error(ctx_under_test), "cumlp_optimizer_sync") != NULL);
    CHECK(cumlp_optimizer_step(f.opt) == CUMLP_ERROR_NON_FINITE);
    cumlp_dataset *ds = NULL; /* zero features, class 0 everywhere: fit refuses before reading */
    int32_t labels[BATCH] = {0};
    CHECK_OK(cumlp_dataset_create(ctx_under_test, N_IN, N_OUT, BATCH, N_OUT, &ds));
    CHECK_OK(cumlp_dataset_set_labels(ds, labels, BATCH));
    cumlp_fit_result result;
    memset(&result, 0xff, sizeof result);
    CHECK(cumlp_fit(f.net, f.opt, ds, NULL, NULL, &result) == CUMLP_ERROR_NON_FINITE);
    CHECK(result.stop_reason == CUMLP_STOP_ERROR && result.steps == 0);
    CHECK(cumlp_optimizer_step_count(f.opt) == 1);
    cumlp_step_summary summary;
    CHECK(cumlp_optimizer_sync(f.opt, &summary) == CUMLP_ERROR_NON_FINITE);
    CHECK_MSG(summary.steps == 4 && summary.taken == 1 && summary.failed == 3,
              "%lld steps, %lld taken, %lld failed", (long long)summary.steps,
              (long long)summary.taken, (long long)summary.failed);
    CHECK_OK(cumlp_train_step(f.net, f.opt, f.X, f.Y, NULL));
    CHECK(cumlp_optimizer_step_count(f.opt) == 2);
    cumlp_dataset_destroy(ds);
    teardown(&f);
}

/* Bad arguments fail at once, and queue nothing. */
static void test_bad_arguments(void) {
    const run_spec *spec = &specs[0];
    cumlp_network *net = make_net(spec), *other = make_net(spec);
    cumlp_optimizer *opt = make_optimizer(net, spec);
    cumlp_tensor *X = NULL, *Y = NULL, *wrong = NULL;
    CHECK_OK(cumlp_tensor_create(ctx_under_test, N_IN, BATCH, &X));
    CHECK_OK(cumlp_tensor_create(ctx_under_test, N_OUT, BATCH, &Y));
    CHECK_OK(cumlp_tensor_create(ctx_under_test, N_OUT, BATCH + 1, &wrong));
    CHECK(cumlp_train_step_async(NULL, opt, X, Y) == CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_train_step_async(net, NULL, X, Y) == CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_train_step_async(net, opt, NULL, Y) == CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_train_step_async(net, opt, X, wrong) == CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_train_step_async(net, opt, Y, Y) == CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_train_step_async(other, opt, X, Y) == CUMLP_ERROR_INVALID_VALUE);
    CHECK(strstr(cumlp_last_error(ctx_under_test), "another network") != NULL);
    CHECK(strstr(cumlp_last_error(ctx_under_test), "cumlp_train_step_async") != NULL);
    CHECK(cumlp_optimizer_sync(NULL, NULL) == CUMLP_ERROR_INVALID_VALUE);
    cumlp_step_summary summary;
    CHECK_OK(cumlp_optimizer_sync(opt, &summary));
    CHECK(summary.steps == 0 && cumlp_optimizer_step_count(opt) == 0);
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
    cumlp_tensor_destroy(wrong);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_network_destroy(other);
}

#ifdef CUMLP_TEST_CUDA_SIM
/* Runs test on a fresh context of ctx_under_test's precision (the faults below end a context). */
static void on_fresh_context(void (*test)(void)) {
    cumlp_context *used = ctx_under_test;
    ctx_under_test = fresh_cuda_context(used);
    if (ctx_under_test) {
        test();
        cumlp_context_destroy(ctx_under_test);
    }
    ctx_under_test = used;
    cudasim_reset();
}

/* A device fault while a getter waits for queued steps: the getter cannot say so, the sync does
 * (the steps' outcome is lost), and nothing says success. */
static void lose_queued_steps(void) {
    fixture f = setup(&specs[0]);
    test_rng data = {8};
    draw_batch(&f, &data);
    for (int s = 0; s < 3; s++)
        CHECK_OK(cumlp_train_step_async(f.net, f.opt, f.X, f.Y));
    cudasim_inject_sticky_error(1); /* the wait's own call */
    (void)cumlp_optimizer_step_count(f.opt);
    cumlp_step_summary summary;
    cumlp_status st = cumlp_optimizer_sync(f.opt, &summary);
    CHECK_MSG(st != CUMLP_SUCCESS, "the sync says success after a device fault");
    CHECK_MSG(strstr(cumlp_last_error(ctx_under_test), "3 queued steps") != NULL, "%s",
              cumlp_last_error(ctx_under_test));
    CHECK(cumlp_optimizer_sync(f.opt, &summary) != CUMLP_SUCCESS); /* the context stays failed */
    teardown(&f);
}

static void test_lost_steps(void) {
    on_fresh_context(lose_queued_steps);
}

/* Without pinned memory for the step state the host decides each step at once: the summary has
 * every step and its loss all the same. */
static void queue_without_pinned_memory(void) {
    fixture f = setup(&specs[0]);
    test_rng data = {9};
    draw_batch(&f, &data);
    cudasim_fail_host_allocation(1); /* the step state's, at the first step */
    for (int s = 0; s < 3; s++)
        CHECK_OK(cumlp_train_step_async(f.net, f.opt, f.X, f.Y));
    cudasim_fail_host_allocation(0);
    CHECK(f.opt->queued == 0 && f.opt->step_pinned_failed);
    cumlp_step_summary summary;
    CHECK_OK(cumlp_optimizer_sync(f.opt, &summary));
    CHECK_MSG(summary.steps == 3 && summary.taken == 3 && summary.loss_samples == 3 * BATCH &&
                  isfinite(summary.loss),
              "%lld steps, %lld taken, %lld samples, loss %g", (long long)summary.steps,
              (long long)summary.taken, (long long)summary.loss_samples, summary.loss);
    teardown(&f);
}

static void test_no_pinned_memory(void) {
    on_fresh_context(queue_without_pinned_memory);
}
#endif

static void on_cpu(void (*test)(void)) {
    ctx_under_test = test_context_or_skip(CUMLP_BACKEND_CPU);
    test();
    cumlp_context_destroy(ctx_under_test);
    ctx_under_test = NULL;
}

static void test_cpu_queued_steps(void) {
    on_cpu(test_queued_steps_are_waited_for_steps);
}

static void test_cpu_waiting_calls(void) {
    on_cpu(test_waiting_calls);
}

static void test_cpu_pending_failure(void) {
    on_cpu(test_pending_failure);
}

static void test_cpu_bad_arguments(void) {
    on_cpu(test_bad_arguments);
}

int main(void) {
    harness_run("cpu: queued steps are waited-for steps", test_cpu_queued_steps);
    harness_run("cpu: waiting calls", test_cpu_waiting_calls);
    harness_run("cpu: bad arguments", test_cpu_bad_arguments);
    harness_run("cpu: a pending failure", test_cpu_pending_failure);
    static const cuda_case cases[] = {
        {"queued steps are waited-for steps, graphs on and off",
         test_queued_steps_with_and_without_graphs, 0},
        {"waiting calls", test_waiting_calls, 0},
        {"bad arguments", test_bad_arguments, 0},
        {"a pending failure", test_pending_failure, 0},
#ifdef CUMLP_TEST_CUDA_SIM
        {"a device fault while waiting", test_lost_steps, 1},
        {"no pinned memory", test_no_pinned_memory, 1},
#endif
    };
    if (run_cuda_cases(cases, (int)(sizeof cases / sizeof cases[0]), &ctx_under_test)) return 1;
    return harness_finish();
}
