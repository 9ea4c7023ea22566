/* ctest-labels: unit gpu */
/*
 * cumlp_fit with its steps queued (the cuda backend, src/fit.c "the queued steps") against the
 * same fit with every step waited for (cumlp__fit_waiting, the loop of the backends that decide
 * steps on the host): the same bits in the parameters, the result, every progress the callback
 * sees, the optimizer's counters and its summary, the status and the message of a failure. Runs
 * cover the three kinds of training accuracy (largest output, binary, none), validation with a
 * schedule, a callback every few batches and one that stops, NaN batches skipped up to
 * max_consecutive_skips, a NaN batch under non_finite_error, and an epoch longer than the loop's
 * read-back period; in every precision, with the step's graph and without (skipped without a GPU).
 */
#include "harness.h"
#include "internal.h"
#include "testutil.h"
#include "cuda_cases.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static cumlp_context *ctx_under_test;

enum { N_IN = 6, N_HIDDEN = 16, MAX_PROGRESS = 64 };

typedef enum task { CLASSES, BINARY, REGRESSION } task;

typedef struct fit_spec {
    const char *name;
    task task;
    int64_t samples, batch;
    int epochs;
    int64_t nan_first, nan_count;   /* training samples made NaN (shuffle is then off) */
    int64_t nan2_first, nan2_count; /* and a second range */
    int max_consecutive_skips;
    int non_finite_error;
    int64_t callback_every;
    int stop_at_call;     /* the callback asks to stop at this call (0: never) */
    int nan_step_at_call; /* at this call the callback queues a step of its own on NaN (0: never) */
    int validation;
    int restore_best;
    int ends_by_limit;  /* max_consecutive_skips ends the fit, in every precision */
    const char *expect; /* in the message of a failure */
} fit_spec;

/* One spec to a few lines. */
/* clang-format off */
static const fit_spec specs[] = {
    {.name = "classes, validation, a callback every 3 batches", .task = CLASSES, .samples = 150,
     .batch = 16, .epochs = 3, .max_consecutive_skips = 10, .callback_every = 3, .validation = 1},
    {.name = "binary", .task = BINARY, .samples = 100, .batch = 12, .epochs = 2,
     .max_consecutive_skips = 10},
    {.name = "regression, a callback that stops", .task = REGRESSION, .samples = 90, .batch = 10,
     .epochs = 3, .max_consecutive_skips = 10, .callback_every = 2, .stop_at_call = 5,
     .validation = 1},
    /* batches 3..6 of 8 samples hold NaN: the third in a row ends the fit */
    {.name = "NaN batches up to max_consecutive_skips", .task = CLASSES, .samples = 96, .batch = 8,
     .epochs = 2, .nan_first = 24, .nan_count = 32, .max_consecutive_skips = 3,
     .ends_by_limit = 1, .expect = "epoch 1 of 2, batch 6 of 12: 3 steps in a row"},
    /* ... with a callback (a read-back) after batch 4, inside the run */
    {.name = "a run of skips across a read-back", .task = CLASSES, .samples = 96, .batch = 8,
     .epochs = 2, .nan_first = 24, .nan_count = 32, .max_consecutive_skips = 3,
     .callback_every = 2, .ends_by_limit = 1,
     .expect = "epoch 1 of 2, batch 6 of 12: 3 steps in a row"},
    {.name = "NaN batches under the limit", .task = CLASSES, .samples = 96, .batch = 8,
     .epochs = 2, .nan_first = 24, .nan_count = 16, .max_consecutive_skips = 3,
     .callback_every = 2},
    /* the last two batches and the first: the run ends the fit at epoch 2's first step */
    {.name = "a run across epochs, restore_best", .task = CLASSES, .samples = 96, .batch = 8,
     .epochs = 3, .nan_first = 0, .nan_count = 8, .nan2_first = 80, .nan2_count = 16,
     .max_consecutive_skips = 3, .validation = 1, .restore_best = 1, .ends_by_limit = 1,
     .expect = "epoch 2 of 3, batch 1 of 12: 3 steps in a row"},
    {.name = "a NaN batch under non_finite_error", .task = CLASSES, .samples = 96, .batch = 8,
     .epochs = 2, .nan_first = 40, .nan_count = 1, .max_consecutive_skips = 10,
     .non_finite_error = 1, .expect = "epoch 1 of 2, batch 6 of 12: cumlp_train_step: "},
    /* the callback's own step fails: the next batch's step stops the fit */
    {.name = "the callback's queued step fails", .task = CLASSES, .samples = 96, .batch = 8,
     .epochs = 2, .max_consecutive_skips = 10, .non_finite_error = 1, .callback_every = 3,
     .nan_step_at_call = 2,
     .expect = "epoch 1 of 2, batch 7 of 12: cumlp_train_step: a step queued earlier failed"},
    /* 300 batches: the loop reads back every 256 steps; the limit ends the fit after that */
    {.name = "an epoch past the read-back period", .task = CLASSES, .samples = 300, .batch = 1,
     .epochs = 1, .nan_first = 280, .nan_count = 5, .max_consecutive_skips = 4,
     .ends_by_limit = 1, .expect = "epoch 1 of 1, batch 284 of 300: 4 steps in a row"},
};
/* clang-format on */

/* What a fit gives. */
typedef struct fit_record {
    cumlp_status status;
    char message[CUMLP_MESSAGE_SIZE];
    cumlp_fit_result result;
    cumlp_fit_progress progress[MAX_PROGRESS];
    int calls;
    int stop_at_call;
    int64_t steps, skipped;
    double gradient_norm;
    cumlp_step_summary summary;
    cumlp_loss_scaler scaler;
    float *params;
    size_t count;
    int64_t queued_steps; /* queued without a wait (the optimizer's count) */
    /* the callback's own step */
    const fit_spec *spec;
    cumlp_network *net;
    cumlp_optimizer *opt;
    cumlp_tensor *nan_x, *nan_t;
    cumlp_status callback_step;
    cumlp_status sync_status; /* of the cumlp_optimizer_sync after the fit */
} fit_record;

static int record_progress(const cumlp_fit_progress *p, void *user_data) {
    fit_record *r = user_data;
    if (r->calls < MAX_PROGRESS) {
        r->progress[r->calls] = *p;
        r->progress[r->calls].seconds = 0; /* the one figure that may differ */
    }
    r->calls++;
    if (r->calls == r->spec->nan_step_at_call)
        r->callback_step = cumlp_train_step_async(r->net, r->opt, r->nan_x, r->nan_t);
    return r->stop_at_call > 0 && r->calls == r->stop_at_call;
}

/* Targets of the task for inputs x: three classes by the largest of three input sums, one class
 * by the sign of a sum, or two smooth functions. */
static void targets_of(task t, const float *x, float *y) {
    float a = x[0] + x[1], b = x[2] - x[3], c = x[4] + 0.5f * x[5];
    if (t == CLASSES) {
        int best = a >= b && a >= c ? 0 : b >= c ? 1 : 2;
        for (int k = 0; k < 3; k++)
            y[k] = k == best ? 1.0f : 0.0f;
    } else if (t == BINARY) {
        y[0] = a + b > 0 ? 1.0f : 0.0f;
    } else {
        y[0] = 0.5f * a - b;
        y[1] = c * c;
    }
}

static int64_t outputs_of(task t) {
    return t == CLASSES ? 3 : t == BINARY ? 1 : 2;
}

static cumlp_dataset *make_dataset(const fit_spec *spec, int64_t n, uint64_t seed, int poison) {
    int64_t n_out = outputs_of(spec->task);
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_create(NULL, N_IN, n_out, n, spec->task == CLASSES ? 3 : 0, &ds));
    float *x = cumlp_dataset_features(ds), *y = cumlp_dataset_targets(ds);
    test_rng rng = {seed};
    test_fill_uniform(&rng, x, (size_t)(N_IN * n), -1, 1);
    for (int64_t i = 0; i < n; i++)
        targets_of(spec->task, x + i * N_IN, y + i * n_out);
    for (int64_t i = spec->nan_first; poison && i < spec->nan_first + spec->nan_count; i++)
        x[i * N_IN] = NAN;
    for (int64_t i = spec->nan2_first; poison && i < spec->nan2_first + spec->nan2_count; i++)
        x[i * N_IN] = NAN;
    return ds;
}

static cumlp_network *make_net(const fit_spec *spec) {
    const int64_t widths[] = {N_IN, N_HIDDEN, N_HIDDEN, outputs_of(spec->task)};
    int out_act = spec->task == CLASSES  ? CUMLP_ACT_SOFTMAX
                  : spec->task == BINARY ? CUMLP_ACT_SIGMOID
                                         : CUMLP_ACT_IDENTITY;
    int loss = spec->task == CLASSES  ? CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY
               : spec->task == BINARY ? CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY
                                      : CUMLP_LOSS_SQUARED_ERROR;
    const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_TANH, out_act};
    return test_network(ctx_under_test, 3, widths, acts, loss, 77);
}

/* One fit of spec, queued (cumlp_fit) or waited for step by step. */
static void run_fit(const fit_spec *spec, int queued, fit_record *r) {
    memset(r, 0, sizeof *r);
    r->stop_at_call = spec->stop_at_call;
    r->spec = spec;
    cumlp_dataset *train = make_dataset(spec, spec->samples, 5, 1);
    cumlp_dataset *val = spec->validation ? make_dataset(spec, 40, 6, 0) : NULL;
    cumlp_network *net = make_net(spec);
    cumlp_optimizer_options oo;
    CHECK_OK(cumlp_optimizer_defaults_for(CUMLP_OPT_ADAM, &oo));
    oo.learning_rate = 1e-2;
    oo.clip_norm = 1.0;
    oo.non_finite_error = spec->non_finite_error;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &oo, &opt));
    r->net = net;
    r->opt = opt;
    int64_t n_out = outputs_of(spec->task);
    float *nan_x = test_alloc_floats(N_IN * spec->batch),
          *t = test_alloc_floats(n_out * spec->batch);
    for (int64_t i = 0; i < N_IN * spec->batch; i++)
        nan_x[i] = NAN;
    for (int64_t i = 0; i < n_out * spec->batch; i++)
        t[i] = i % n_out == 0 ? 1.0f : 0.0f;
    r->nan_x = test_tensor_from(ctx_under_test, nan_x, N_IN, spec->batch);
    r->nan_t = test_tensor_from(ctx_under_test, t, n_out, spec->batch);
    free(nan_x);
    free(t);
    cumlp_fit_options fo;
    CHECK_OK(cumlp_fit_defaults(&fo));
    fo.epochs = spec->epochs;
    fo.batch_size = spec->batch;
    fo.schedule = CUMLP_LR_COSINE;
    fo.max_consecutive_skips = spec->max_consecutive_skips;
    fo.callback = record_progress;
    fo.user_data = r;
    fo.callback_every = spec->callback_every;
    fo.restore_best = spec->restore_best;
    fo.shuffle = spec->nan_count == 0 && spec->nan2_count == 0;
    r->status = queued ? cumlp_fit(net, opt, train, val, &fo, &r->result)
                       : cumlp__fit_waiting(net, opt, train, val, &fo, &r->result);
    snprintf(r->message, sizeof r->message, "%s",
             r->status ? cumlp_last_error(ctx_under_test) : "");
    r->result.seconds = 0;
    CHECK(opt->queued == 0); /* the fit reads every step back before it returns */
    r->queued_steps = opt->steps_queued_ever;
    r->steps = cumlp_optimizer_step_count(opt);
    r->skipped = cumlp_optimizer_skipped_steps(opt);
    r->gradient_norm = cumlp_optimizer_gradient_norm(opt);
    /* the fit reports its own steps' failures; the sync only that of the callback's step */
    r->sync_status = cumlp_optimizer_sync(opt, &r->summary);
    CHECK(r->sync_status == CUMLP_SUCCESS || spec->nan_step_at_call > 0);
    CHECK_OK(cumlp_network_get_loss_scaler(net, &r->scaler));
    r->count = (size_t)cumlp_network_num_parameters(net);
    r->params = test_alloc_floats(r->count);
    CHECK_OK(cumlp_network_get_parameters(net, r->params, (int64_t)r->count));
    cumlp_tensor_destroy(r->nan_x);
    cumlp_tensor_destroy(r->nan_t);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_dataset_destroy(train);
    cumlp_dataset_destroy(val);
}

static const char *where(const fit_spec *spec) {
    static char name[160];
    snprintf(name, sizeof name, "%s, graphs %s: %s",
             cumlp_precision_name(cumlp_context_precision(ctx_under_test)),
             cumlp_context_graphs(ctx_under_test) ? "on" : "off", spec->name);
    return name;
}

/* Bits of two doubles (NaN included) or of two records' memory. */
static int same_bits(const void *a, const void *b, size_t bytes) {
    return memcmp(a, b, bytes) == 0;
}

static void check_fits(const fit_spec *spec, const fit_record *q, const fit_record *w) {
    const char *at = where(spec);
    /* the queued loop queued every step it ran (and the halted ones after a failure), the
     * waited-for loop none but the callback's own */
    int64_t own = spec->nan_step_at_call > 0 && q->calls >= spec->nan_step_at_call;
    CHECK_MSG(q->queued_steps >= q->summary.steps && q->queued_steps > own &&
                  w->queued_steps ==
                      (spec->nan_step_at_call > 0 && w->calls >= spec->nan_step_at_call),
              "%s: %lld steps queued of %lld, %lld by the waited-for loop", at,
              (long long)q->queued_steps, (long long)q->summary.steps, (long long)w->queued_steps);
    CHECK(q->callback_step == w->callback_step && q->sync_status == w->sync_status);
    CHECK_MSG(q->status == w->status && strcmp(q->message, w->message) == 0,
              "%s: queued %d \"%s\", waited for %d \"%s\"", at, (int)q->status, q->message,
              (int)w->status, w->message);
    CHECK_MSG(same_bits(&q->result, &w->result, sizeof q->result),
              "%s: results differ: loss %.17g / %.17g, accuracy %.17g / %.17g, steps %lld / %lld, "
              "skipped %lld / %lld",
              at, q->result.train_loss, w->result.train_loss, q->result.train_accuracy,
              w->result.train_accuracy, (long long)q->result.steps, (long long)w->result.steps,
              (long long)q->result.skipped_steps, (long long)w->result.skipped_steps);
    CHECK_MSG(q->calls == w->calls, "%s: %d callbacks queued, %d waited for", at, q->calls,
              w->calls);
    for (int c = 0; c < q->calls && c < w->calls && c < MAX_PROGRESS; c++) {
        const cumlp_fit_progress *a = &q->progress[c], *b = &w->progress[c];
        CHECK_MSG(same_bits(a, b, sizeof *a),
                  "%s: callback %d differs: epoch %d/%d batch %lld/%lld steps %lld/%lld loss "
                  "%.17g/%.17g accuracy %.17g/%.17g norm %.17g/%.17g mean norm %.17g/%.17g",
                  at, c, a->epoch, b->epoch, (long long)a->batch, (long long)b->batch,
                  (long long)a->steps, (long long)b->steps, a->train_loss, b->train_loss,
                  a->train_accuracy, b->train_accuracy, a->gradient_norm, b->gradient_norm,
                  a->mean_gradient_norm, b->mean_gradient_norm);
    }
    CHECK_MSG(q->count == w->count && same_bits(q->params, w->params, q->count * sizeof(float)),
              "%s: parameters differ", at);
    CHECK_MSG(q->steps == w->steps && q->skipped == w->skipped &&
                  same_bits(&q->gradient_norm, &w->gradient_norm, sizeof(double)),
              "%s: the optimizer's counters differ", at);
    CHECK_MSG(same_bits(&q->scaler, &w->scaler, sizeof q->scaler), "%s: loss scalers differ", at);
    const cumlp_step_summary *a = &q->summary, *b = &w->summary;
    /* the summary's loss: the same losses, summed in groups where the waited-for steps add them
     * one by one */
    CHECK_MSG(a->steps == b->steps && a->taken == b->taken && a->skipped == b->skipped &&
                  a->failed == b->failed && a->loss_samples == b->loss_samples &&
                  fabs(a->loss - b->loss) <= 1e-14 * fabs(b->loss),
              "%s: summaries differ: %lld/%lld steps %lld/%lld taken %lld/%lld skipped %lld/%lld "
              "failed, loss %.17g/%.17g",
              at, (long long)a->steps, (long long)b->steps, (long long)a->taken,
              (long long)b->taken, (long long)a->skipped, (long long)b->skipped,
              (long long)a->failed, (long long)b->failed, a->loss, b->loss);
}

/* What the spec's fit must come to, whichever loop ran it. */
static void check_outcome(const fit_spec *spec, const fit_record *w) {
    const char *at = where(spec);
    int fp16 = cumlp_context_precision(ctx_under_test) == CUMLP_PRECISION_FP16;
    int nan_data = spec->nan_count + spec->nan2_count > 0;
    if (nan_data && !spec->non_finite_error)
        CHECK_MSG(w->result.skipped_steps > 0, "%s: no step skipped", at);
    if (spec->ends_by_limit)
        CHECK_MSG(w->status == CUMLP_ERROR_NON_FINITE &&
                      strstr(w->message, "in a row skipped (max_consecutive_skips)") != NULL,
                  "%s: status %d: %s", at, (int)w->status, w->message);
    /* in FP16 a NaN reaches the gradients as an overflow (the fused ReLU maps it to 0): skipped
     * under any option */
    if (spec->non_finite_error && !fp16)
        CHECK_MSG(w->status == CUMLP_ERROR_NON_FINITE &&
                      strstr(w->message, "non_finite_error is set") != NULL,
                  "%s: status %d: %s", at, (int)w->status, w->message);
    if (!spec->ends_by_limit && !spec->non_finite_error)
        CHECK_MSG(w->status == CUMLP_SUCCESS, "%s: %s", at, w->message);
    if (spec->task != REGRESSION && w->status == CUMLP_SUCCESS)
        CHECK_MSG(w->result.train_accuracy > 0.3, "%s: training accuracy %g", at,
                  w->result.train_accuracy);
    if (spec->stop_at_call > 0)
        CHECK(w->result.stop_reason == CUMLP_STOP_CALLBACK && w->calls == spec->stop_at_call);
    if (w->status != CUMLP_SUCCESS)
        CHECK_MSG(spec->expect && strstr(w->message, spec->expect) != NULL, "%s: %s", at,
                  w->message);
}

static void test_queued_fit_is_waited_fit(void) {
    int graphs = cumlp_context_graphs(ctx_under_test);
    for (int g = 1; g >= 0; g--) {
        CHECK_OK(cumlp_context_set_graphs(ctx_under_test, g));
        for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
            fit_record q, w;
            run_fit(&specs[i], 1, &q);
            run_fit(&specs[i], 0, &w);
            check_fits(&specs[i], &q, &w);
            check_outcome(&specs[i], &w);
            free(q.params);
            free(w.params);
        }
    }
    CHECK_OK(cumlp_context_set_graphs(ctx_under_test, graphs));
}

/* The accuracy rule that the device counts by (kernels/step_rule.h), on the edge cases. */
static void test_score_rule(void) {
    const float nan = NAN;
    const float tie[3] = {0.5f, 0.5f, 0.1f}, first[3] = {1, 0, 0}, second[3] = {0, 1, 0};
    CHECK(cumlp_column_correct(tie, first, 3, CUMLP_SCORE_LARGEST)); /* the first of equals */
    CHECK(!cumlp_column_correct(tie, second, 3, CUMLP_SCORE_LARGEST));
    const float lead_nan[3] = {nan, 0.2f, 0.7f}, third[3] = {0, 0, 1};
    CHECK(cumlp_column_correct(lead_nan, third, 3, CUMLP_SCORE_LARGEST)); /* NaN never wins */
    const float all_nan[2] = {nan, nan}, one_hot[2] = {1, 0};
    CHECK(cumlp_column_correct(all_nan, one_hot, 2, CUMLP_SCORE_LARGEST));
    const float half = 0.5f, below = 0.49f, yes = 1, no = 0;
    CHECK(cumlp_column_correct(&half, &yes, 1, CUMLP_SCORE_BINARY)); /* 0.5 is the upper side */
    CHECK(cumlp_column_correct(&below, &no, 1, CUMLP_SCORE_BINARY));
    CHECK(!cumlp_column_correct(&nan, &yes, 1, CUMLP_SCORE_BINARY));
    CHECK(!cumlp_column_correct(&half, &yes, 1, CUMLP_SCORE_NONE));
}

int main(void) {
    harness_run("the accuracy rule", test_score_rule);
    static const cuda_case cases[] = {
        {"queued fit is waited-for fit, graphs on and off", test_queued_fit_is_waited_fit, 0},
    };
    if (run_cuda_cases(cases, (int)(sizeof cases / sizeof cases[0]), &ctx_under_test)) return 1;
    return harness_finish();
}
