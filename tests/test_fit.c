/* ctest-labels: unit cuda */
/* test_fit.c - the training loop: learning-rate schedules, stopping rules (target loss,
 * patience, callback), restore_best, non-finite losses, evaluation and prediction, on the
 * reference backend, the cpu backend when built, and the cuda backend when it finds a device (a
 * GPU, or the CUDA simulator): there the batches are copied on the copy stream while the previous
 * one trains. */
#include "cumlp.h"
#include "harness.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int backend = CUMLP_BACKEND_REFERENCE;

/* Two Gaussian-ish blobs per class on a ring: n samples, 2 features, 3 classes. */
static cumlp_dataset *blobs(int64_t n, uint64_t seed) {
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_create(NULL, 2, 3, n, 3, &ds));
    if (!ds) return NULL;
    test_rng r = {seed};
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    float *x = cumlp_dataset_features(ds);
    for (int64_t i = 0; i < n; i++) {
        int c = (int)test_rng_below(&r, 3);
        double angle = 2.0944 * c;
        x[2 * i] = (float)(2 * cos(angle) + test_rng_uniform(&r, -0.7, 0.7));
        x[2 * i + 1] = (float)(2 * sin(angle) + test_rng_uniform(&r, -0.7, 0.7));
        labels[i] = c;
    }
    CHECK_OK(cumlp_dataset_set_labels(ds, labels, n));
    free(labels);
    return ds;
}

typedef struct model {
    cumlp_context *ctx;
    cumlp_network *net;
    cumlp_optimizer *opt;
} model;

static model make_model(int opt_type, double lr) {
    model m = {test_context_or_skip(backend), NULL, NULL};
    int64_t widths[] = {2, 8, 3};
    int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_SOFTMAX};
    m.net = test_network(m.ctx, 2, widths, acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, 3);
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.type = opt_type;
    oo.learning_rate = lr;
    CHECK_OK(cumlp_optimizer_create(m.net, &oo, &m.opt));
    return m;
}

static void free_model(model *m) {
    cumlp_optimizer_destroy(m->opt);
    cumlp_network_destroy(m->net);
    cumlp_context_destroy(m->ctx);
}

/* ---- schedules ------------------------------------------------------------------------------ */

static void test_schedules(void) {
    cumlp_fit_options o;
    CHECK_OK(cumlp_fit_defaults(&o));
    double rate;
    o.epochs = 10;
    CHECK_OK(cumlp_schedule_learning_rate(&o, 0.5, 7, &rate));
    CHECK(rate == 0.5);
    o.schedule = CUMLP_LR_STEP;
    o.lr_gamma = 0.5;
    o.lr_step_epochs = 3;
    const double step_expected[7] = {1, 1, 1, 0.5, 0.5, 0.5, 0.25};
    for (int e = 0; e < 7; e++) {
        CHECK_OK(cumlp_schedule_learning_rate(&o, 1.0, e, &rate));
        CHECK_NEAR(rate, step_expected[e], 1e-15);
    }
    o.schedule = CUMLP_LR_EXPONENTIAL;
    o.lr_gamma = 0.9;
    CHECK_OK(cumlp_schedule_learning_rate(&o, 2.0, 3, &rate));
    CHECK_NEAR(rate, 2.0 * 0.729, 1e-12);
    o.schedule = CUMLP_LR_COSINE;
    o.lr_min = 0.1;
    CHECK_OK(cumlp_schedule_learning_rate(&o, 1.1, 0, &rate));
    CHECK_NEAR(rate, 1.1, 1e-12);
    CHECK_OK(cumlp_schedule_learning_rate(&o, 1.1, 5, &rate));
    CHECK_NEAR(rate, 0.6, 1e-12); /* halfway: the mean of base and min */
    CHECK_OK(cumlp_schedule_learning_rate(&o, 1.1, 10, &rate));
    CHECK_NEAR(rate, 0.1, 1e-12);
    o.lr_gamma = 0;
    CHECK_STATUS(cumlp_schedule_learning_rate(&o, 1.0, 0, &rate), CUMLP_ERROR_INVALID_VALUE);
}

/* MULTISTEP, LINEAR, POLY and the warm-up, against their formulas in cumlp.h. */
static void test_later_schedules(void) {
    cumlp_fit_options o;
    CHECK_OK(cumlp_fit_defaults(&o));
    CHECK(o.warmup_epochs == 0 && o.milestones == NULL && o.num_milestones == 0 &&
          o.lr_power == 1.0);
    double rate;
    const int milestones[] = {2, 5, 6};
    o.epochs = 10;
    o.schedule = CUMLP_LR_MULTISTEP;
    o.lr_gamma = 0.5;
    o.milestones = milestones;
    o.num_milestones = 3;
    const double multistep[8] = {1, 1, 0.5, 0.5, 0.5, 0.25, 0.125, 0.125};
    for (int e = 0; e < 8; e++) {
        CHECK_OK(cumlp_schedule_learning_rate(&o, 1.0, e, &rate));
        CHECK_NEAR(rate, multistep[e], 1e-15);
    }
    o.schedule = CUMLP_LR_LINEAR;
    o.lr_min = 0.1;
    CHECK_OK(cumlp_schedule_learning_rate(&o, 1.1, 0, &rate));
    CHECK_NEAR(rate, 1.1, 1e-15);
    CHECK_OK(cumlp_schedule_learning_rate(&o, 1.1, 4, &rate));
    CHECK_NEAR(rate, 0.1 + 1.0 * 0.6, 1e-15);
    CHECK_OK(cumlp_schedule_learning_rate(&o, 1.1, 12, &rate)); /* past the end: the floor */
    CHECK_NEAR(rate, 0.1, 1e-15);
    o.schedule = CUMLP_LR_POLY;
    o.lr_power = 2.0;
    CHECK_OK(cumlp_schedule_learning_rate(&o, 1.1, 4, &rate));
    CHECK_NEAR(rate, 0.1 + 1.0 * 0.36, 1e-15);
    /* warm-up over 3 epochs of POLY: 1/4, 2/4, 3/4 of the schedule's rate, then the schedule */
    o.warmup_epochs = 3;
    const double factor[5] = {0.25, 0.5, 0.75, 1, 1};
    for (int e = 0; e < 5; e++) {
        CHECK_OK(cumlp_schedule_learning_rate(&o, 1.1, e, &rate));
        double schedule = 0.1 + 1.0 * pow(1 - e / 10.0, 2);
        CHECK_NEAR(rate, factor[e] * schedule, 1e-15);
    }
    /* bad milestones, warm-up and power */
    const int unsorted[] = {3, 3}, negative[] = {-1, 2};
    o.schedule = CUMLP_LR_MULTISTEP;
    o.milestones = unsorted;
    o.num_milestones = 2;
    CHECK_STATUS(cumlp_schedule_learning_rate(&o, 1.0, 0, &rate), CUMLP_ERROR_INVALID_VALUE);
    CHECK(strstr(cumlp_last_error(NULL), "milestones") != NULL);
    o.milestones = negative;
    CHECK_STATUS(cumlp_schedule_learning_rate(&o, 1.0, 0, &rate), CUMLP_ERROR_INVALID_VALUE);
    o.milestones = NULL;
    CHECK_STATUS(cumlp_schedule_learning_rate(&o, 1.0, 0, &rate), CUMLP_ERROR_INVALID_VALUE);
    o.num_milestones = 0; /* multistep needs one */
    CHECK_STATUS(cumlp_schedule_learning_rate(&o, 1.0, 0, &rate), CUMLP_ERROR_INVALID_VALUE);
    o.schedule = CUMLP_LR_CONSTANT;
    CHECK_OK(cumlp_schedule_learning_rate(&o, 1.0, 0, &rate));
    o.warmup_epochs = -1;
    CHECK_STATUS(cumlp_schedule_learning_rate(&o, 1.0, 0, &rate), CUMLP_ERROR_INVALID_VALUE);
    o.warmup_epochs = 0;
    o.lr_power = NAN;
    CHECK_STATUS(cumlp_schedule_learning_rate(&o, 1.0, 0, &rate), CUMLP_ERROR_INVALID_VALUE);
    o.lr_power = 0;
    CHECK_STATUS(cumlp_schedule_learning_rate(&o, 1.0, 0, &rate), CUMLP_ERROR_INVALID_VALUE);
}

/* The callback records the learning rate of every epoch. */
typedef struct recorder {
    int epochs_seen, batch_calls;
    double rates[16];
    double last_val_loss;
    int stop_after_batches; /* 0: never */
    int64_t batches_seen;
} recorder;

static int record(const cumlp_fit_progress *p, void *user) {
    recorder *r = user;
    if (!p->end_of_epoch) {
        r->batch_calls++;
        r->batches_seen = p->steps;
        return r->stop_after_batches && p->steps >= r->stop_after_batches;
    }
    if (r->epochs_seen < 16) r->rates[r->epochs_seen] = p->learning_rate;
    r->epochs_seen++;
    r->last_val_loss = p->validation_loss;
    return 0;
}

static void test_schedule_applied(void) {
    model m = make_model(CUMLP_OPT_SGD, 0.4);
    cumlp_dataset *ds = blobs(64, 1);
    cumlp_fit_options o;
    cumlp_fit_defaults(&o);
    o.epochs = 5;
    o.batch_size = 16;
    o.schedule = CUMLP_LR_STEP;
    o.lr_gamma = 0.5;
    o.lr_step_epochs = 2;
    recorder r = {0};
    o.callback = record;
    o.user_data = &r;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(m.net, m.opt, ds, NULL, &o, &res));
    CHECK(r.epochs_seen == 5 && res.epochs_run == 5 && res.stop_reason == CUMLP_STOP_EPOCHS);
    const double expected[5] = {0.4, 0.4, 0.2, 0.2, 0.1};
    for (int e = 0; e < 5; e++)
        CHECK_NEAR(r.rates[e], expected[e], 1e-15);
    CHECK(res.steps == 5 * 4 && cumlp_optimizer_step_count(m.opt) == 20);
    CHECK(r.batch_calls == 0); /* callback_every 0: epochs only */
    CHECK(res.validation_loss == -1 && res.best_epoch == -1);
    /* a warm-up of 2 epochs with MULTISTEP, applied by cumlp_fit from the rate it starts with */
    const int milestones[] = {3};
    o.schedule = CUMLP_LR_MULTISTEP;
    o.milestones = milestones;
    o.num_milestones = 1;
    o.warmup_epochs = 2;
    r.epochs_seen = 0;
    CHECK_OK(cumlp_optimizer_set_learning_rate(m.opt, 0.3));
    CHECK_OK(cumlp_fit(m.net, m.opt, ds, NULL, &o, &res));
    const double warm[5] = {0.1, 0.2, 0.3, 0.15, 0.15};
    for (int e = 0; e < 5; e++)
        CHECK_NEAR(r.rates[e], warm[e], 1e-15);
    cumlp_dataset_destroy(ds);
    free_model(&m);
}

/* ---- learning, evaluation and prediction ----------------------------------------------------- */

static void test_learns_and_evaluates(void) {
    model m = make_model(CUMLP_OPT_ADAM, 0.05);
    cumlp_dataset *train = blobs(300, 2), *val = blobs(200, 3);
    cumlp_eval_result before, after;
    CHECK_OK(cumlp_evaluate(m.net, val, 0, &before));
    cumlp_fit_options o;
    cumlp_fit_defaults(&o);
    o.epochs = 30;
    o.batch_size = 32;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(m.net, m.opt, train, val, &o, &res));
    CHECK_OK(cumlp_evaluate(m.net, val, 7, &after)); /* odd batch: a short last batch */
    CHECK_MSG(after.accuracy > 0.95, "validation accuracy %.3f", after.accuracy);
    CHECK(after.loss < before.loss);
    CHECK_NEAR(res.validation_loss, after.loss, 1e-5); /* batching does not change the mean */
    CHECK_NEAR(res.validation_accuracy, after.accuracy, 1e-12);
    CHECK(res.train_accuracy > 0.9);
    /* predict agrees with cumlp_forward, and accuracy agrees with the predictions */
    int64_t n = cumlp_dataset_num_samples(val);
    float *pred = test_alloc_floats((size_t)(3 * n)), *fwd = test_alloc_floats((size_t)(3 * n));
    CHECK_OK(cumlp_predict(m.net, val, 64, pred, 3 * n));
    cumlp_tensor *X = test_tensor_from(m.ctx, cumlp_dataset_features(val), 2, n), *Y = NULL;
    CHECK_OK(cumlp_tensor_create(m.ctx, 3, n, &Y));
    CHECK_OK(cumlp_forward(m.net, X, Y));
    CHECK_OK(cumlp_tensor_download(Y, fwd, 3 * n));
    CHECK(test_max_rel_error(pred, fwd, (size_t)(3 * n), 1e-6) < 1e-5);
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < 3; k++)
            if (pred[3 * i + k] > pred[3 * i + best]) best = k;
        correct += best == cumlp_dataset_label(val, i);
    }
    CHECK_NEAR((double)correct / (double)n, after.accuracy, 1e-12);
    CHECK_STATUS(cumlp_predict(m.net, val, 64, pred, 3 * n - 1), CUMLP_ERROR_INVALID_VALUE);
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
    free(pred);
    free(fwd);
    cumlp_dataset_destroy(train);
    cumlp_dataset_destroy(val);
    free_model(&m);
}

static void test_reproducible_and_shuffled(void) {
    cumlp_dataset *ds = blobs(100, 4);
    float params[3][2 * 8 + 8 + 8 * 3 + 3];
    const uint64_t seeds[3] = {11, 11, 12};
    for (int k = 0; k < 3; k++) {
        model m = make_model(CUMLP_OPT_MOMENTUM, 0.05);
        cumlp_fit_options o;
        cumlp_fit_defaults(&o);
        o.epochs = 3;
        o.batch_size = 10;
        o.seed = seeds[k];
        CHECK_OK(cumlp_fit(m.net, m.opt, ds, NULL, &o, NULL));
        CHECK_OK(cumlp_network_get_parameters(m.net, params[k], 51));
        free_model(&m);
    }
    CHECK(memcmp(params[0], params[1], sizeof params[0]) == 0);
    CHECK(memcmp(params[0], params[2], sizeof params[0]) != 0); /* another order of batches */
    cumlp_dataset_destroy(ds);
}

/* ---- stopping rules ------------------------------------------------------------------------- */

static void test_target_loss(void) {
    model m = make_model(CUMLP_OPT_ADAM, 0.05);
    cumlp_dataset *ds = blobs(200, 5);
    cumlp_fit_options o;
    cumlp_fit_defaults(&o);
    o.epochs = 200;
    o.target_loss = 0.2;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(m.net, m.opt, ds, NULL, &o, &res));
    CHECK(res.stop_reason == CUMLP_STOP_TARGET_LOSS);
    CHECK(res.train_loss < 0.2 && res.epochs_run < 200);
    cumlp_dataset_destroy(ds);
    free_model(&m);
}

static void test_patience(void) {
    /* a learning rate of 0 never improves the validation loss: the first epoch is the best, and
     * training stops `patience` epochs later */
    model m = make_model(CUMLP_OPT_SGD, 0.0);
    cumlp_dataset *train = blobs(50, 6), *val = blobs(30, 7);
    cumlp_fit_options o;
    cumlp_fit_defaults(&o);
    o.epochs = 50;
    o.patience = 3;
    recorder r = {0};
    o.callback = record;
    o.user_data = &r;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(m.net, m.opt, train, val, &o, &res));
    CHECK(res.stop_reason == CUMLP_STOP_PATIENCE);
    CHECK(res.epochs_run == 4 && res.best_epoch == 0 && r.epochs_seen == 4);
    CHECK_NEAR(res.best_validation_loss, r.last_val_loss, 1e-12);
    cumlp_dataset_destroy(train);
    cumlp_dataset_destroy(val);
    free_model(&m);
}

static void test_restore_best(void) {
    /* a huge learning rate makes later epochs worse than an early one: restore_best must end
     * with the best epoch's validation loss */
    model m = make_model(CUMLP_OPT_SGD, 0.3);
    cumlp_dataset *train = blobs(100, 8), *val = blobs(60, 9);
    cumlp_fit_options o;
    cumlp_fit_defaults(&o);
    o.epochs = 12;
    o.schedule = CUMLP_LR_EXPONENTIAL;
    o.lr_gamma = 1.0;
    o.restore_best = 1;
    o.batch_size = 5;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(m.net, m.opt, train, val, &o, &res));
    cumlp_eval_result e;
    CHECK_OK(cumlp_evaluate(m.net, val, 0, &e));
    CHECK(res.best_epoch >= 0);
    CHECK_NEAR(e.loss, res.best_validation_loss, 1e-6);
    CHECK(res.best_validation_loss <= res.validation_loss);
    cumlp_dataset_destroy(train);
    cumlp_dataset_destroy(val);
    free_model(&m);
}

static void test_callback_stops(void) {
    model m = make_model(CUMLP_OPT_SGD, 0.1);
    cumlp_dataset *ds = blobs(100, 10);
    cumlp_fit_options o;
    cumlp_fit_defaults(&o);
    o.epochs = 10;
    o.batch_size = 10; /* 10 batches per epoch */
    o.callback_every = 3;
    recorder r = {0};
    r.stop_after_batches = 15;
    o.callback = record;
    o.user_data = &r;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(m.net, m.opt, ds, NULL, &o, &res));
    /* called after batches 3, 6, 9 of epoch 1, then 3 and 6 of epoch 2 (steps 13, 16): stops */
    CHECK(res.stop_reason == CUMLP_STOP_CALLBACK);
    CHECK(res.steps == 16 && r.batches_seen == 16 && res.epochs_run == 2);
    CHECK(r.epochs_seen == 1);
    cumlp_dataset_destroy(ds);
    free_model(&m);
}

/* ---- failures ------------------------------------------------------------------------------- */

static void test_non_finite_loss(void) {
    /* regression with an enormous learning rate diverges to Inf/NaN within a few steps */
    cumlp_context *ctx = test_context_or_skip(backend);
    int64_t widths[] = {1, 1};
    int acts[] = {CUMLP_ACT_IDENTITY};
    cumlp_network *net = test_network(ctx, 1, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 1);
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.learning_rate = 1e30;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &oo, &opt));
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_create(NULL, 1, 1, 8, 0, &ds));
    for (int i = 0; i < 8; i++) {
        cumlp_dataset_features(ds)[i] = (float)(i + 1);
        cumlp_dataset_targets(ds)[i] = (float)(2 * i);
    }
    cumlp_fit_options o;
    cumlp_fit_defaults(&o);
    o.epochs = 100;
    o.batch_size = 1;
    cumlp_fit_result res;
    CHECK_STATUS(cumlp_fit(net, opt, ds, NULL, &o, &res), CUMLP_ERROR_NON_FINITE);
    CHECK(res.stop_reason == CUMLP_STOP_ERROR);
    CHECK(strlen(cumlp_last_error(ctx)) > 0);
    float w[2];
    CHECK_OK(cumlp_network_get_parameters(net, w, 2));
    CHECK(!isnan(w[0]) && !isnan(w[1])); /* no step was taken from the non-finite loss */
    cumlp_dataset_destroy(ds);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* A sample with a NaN feature: its batch's step is skipped every epoch and counted; the other
 * batches train as usual; the progress reports the skips and the gradient norms. */
static int progress_checks(const cumlp_fit_progress *p, void *user) {
    int *bad = user;
    if (p->end_of_epoch && (p->skipped_steps != p->epoch + 1 || !(p->gradient_norm > 0) ||
                            !(p->mean_gradient_norm > 0) || p->steps != 9 * (p->epoch + 1)))
        ++*bad;
    return 0;
}

static void test_skipped_steps_counted(void) {
    model m = make_model(CUMLP_OPT_ADAM, 0.01);
    cumlp_dataset *ds = blobs(100, 12);
    cumlp_dataset_features(ds)[2 * 37] = NAN; /* sample 37: in batch 3 of 10 (no shuffle) */
    cumlp_fit_options o;
    cumlp_fit_defaults(&o);
    o.epochs = 4;
    o.batch_size = 10;
    o.shuffle = 0;
    int bad = 0;
    o.callback = progress_checks;
    o.user_data = &bad;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(m.net, m.opt, ds, NULL, &o, &res));
    CHECK(bad == 0);
    CHECK(res.skipped_steps == 4 && res.steps == 36 && cumlp_optimizer_step_count(m.opt) == 36);
    CHECK(cumlp_optimizer_skipped_steps(m.opt) == 4);
    CHECK(isfinite(res.train_loss) && res.train_accuracy > 0.8);
    /* every batch bad: 3 skipped in a row stop it, with the epoch and batch in the message */
    for (int i = 0; i < 100; i++)
        cumlp_dataset_features(ds)[2 * i + 1] = INFINITY;
    o.max_consecutive_skips = 3;
    o.callback = NULL;
    CHECK_STATUS(cumlp_fit(m.net, m.opt, ds, NULL, &o, &res), CUMLP_ERROR_NON_FINITE);
    CHECK(res.stop_reason == CUMLP_STOP_ERROR && res.skipped_steps == 3 && res.steps == 0);
    CHECK_MSG(strstr(cumlp_last_error(m.ctx), "cumlp_fit: epoch 1 of 4, batch 3 of 10: 3 steps in "
                                              "a row skipped"),
              "%s", cumlp_last_error(m.ctx));
    cumlp_dataset_destroy(ds);
    free_model(&m);
}

/* At the end of epoch 2 (of 3), puts a NaN into the last batch's samples. */
static int poison_after_two(const cumlp_fit_progress *p, void *user) {
    if (p->end_of_epoch && p->epoch == 1) cumlp_dataset_features(user)[2 * 95] = NAN;
    return 0;
}

/* With the optimizer's non_finite_error the first NaN stops training, and restore_best ends with
 * the best validation epoch's parameters (what `cumlp train` saves). */
static void test_non_finite_error_restores_best(void) {
    model m = make_model(CUMLP_OPT_SGD, 0.1);
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.learning_rate = 0.1;
    oo.non_finite_error = 1;
    cumlp_optimizer *strict = NULL;
    CHECK_OK(cumlp_optimizer_create(m.net, &oo, &strict));
    cumlp_dataset *train = blobs(100, 13), *val = blobs(50, 14);
    cumlp_fit_options o;
    cumlp_fit_defaults(&o);
    o.epochs = 3;
    o.batch_size = 10;
    o.restore_best = 1;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(m.net, strict, train, val, &o, &res));
    cumlp_dataset_features(train)[5] = NAN;
    o.shuffle = 0;
    CHECK_STATUS(cumlp_fit(m.net, strict, train, val, &o, &res), CUMLP_ERROR_NON_FINITE);
    CHECK(res.stop_reason == CUMLP_STOP_ERROR && res.best_epoch == -1 && res.steps == 0);
    CHECK(strstr(cumlp_last_error(m.ctx), "epoch 1 of 3, batch 1 of 10") != NULL);
    /* NaN in the last epoch's last batch: epochs 1 and 2 validated, the best restored */
    cumlp_dataset_features(train)[5] = 1.0f;
    o.callback = poison_after_two;
    o.user_data = train;
    CHECK_STATUS(cumlp_fit(m.net, strict, train, val, &o, &res), CUMLP_ERROR_NON_FINITE);
    CHECK(res.best_epoch >= 0 && res.best_epoch <= 1 && res.steps == 29);
    cumlp_eval_result e;
    CHECK_OK(cumlp_evaluate(m.net, val, 0, &e));
    CHECK_NEAR(e.loss, res.best_validation_loss, 1e-6);
    cumlp_optimizer_destroy(strict);
    cumlp_dataset_destroy(train);
    cumlp_dataset_destroy(val);
    free_model(&m);
}

static void test_bad_arguments(void) {
    model m = make_model(CUMLP_OPT_SGD, 0.1);
    model other = make_model(CUMLP_OPT_SGD, 0.1);
    cumlp_dataset *ds = blobs(10, 11), *wrong = NULL;
    CHECK_OK(cumlp_dataset_create(NULL, 3, 3, 10, 3, &wrong));
    cumlp_fit_options o;
    cumlp_fit_defaults(&o);
    CHECK_STATUS(cumlp_fit(NULL, m.opt, ds, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_fit(m.net, NULL, ds, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_fit(m.net, m.opt, NULL, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_fit(m.net, other.opt, ds, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_fit(m.net, m.opt, wrong, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK(strstr(cumlp_last_error(m.ctx), "training set") != NULL);
    CHECK_STATUS(cumlp_fit(m.net, m.opt, ds, wrong, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    o.epochs = 0;
    CHECK_STATUS(cumlp_fit(m.net, m.opt, ds, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    cumlp_fit_defaults(&o);
    o.batch_size = 0;
    CHECK_STATUS(cumlp_fit(m.net, m.opt, ds, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    cumlp_fit_defaults(&o);
    o.patience = -1;
    CHECK_STATUS(cumlp_fit(m.net, m.opt, ds, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    cumlp_fit_defaults(&o);
    o.max_consecutive_skips = -1;
    CHECK_STATUS(cumlp_fit(m.net, m.opt, ds, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_optimizer_step_count(m.opt) == 0); /* nothing trained */
    cumlp_eval_result e;
    CHECK_STATUS(cumlp_evaluate(m.net, wrong, 0, &e), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_evaluate(m.net, ds, -1, &e), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_evaluate(m.net, ds, 0, NULL), CUMLP_ERROR_INVALID_VALUE);
    /* a batch larger than the dataset is fine */
    cumlp_fit_defaults(&o);
    o.batch_size = 1000;
    o.epochs = 1;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(m.net, m.opt, ds, NULL, &o, &res));
    CHECK(res.steps == 1);
    cumlp_dataset_destroy(ds);
    cumlp_dataset_destroy(wrong);
    free_model(&m);
    free_model(&other);
}

/* A binary classifier with one sigmoid output and binary cross-entropy reports its accuracy, the
 * fraction of samples whose output is on their target's side of 0.5, on a dataset of 0/1 targets
 * (a regression dataset: one output): it reported -1 and accuracy was lost. */
static void test_binary_classifier_accuracy(void) {
    enum { N = 200 };
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_create(NULL, 2, 1, N, 0, &ds));
    if (!ds) return;
    float *x = cumlp_dataset_features(ds), *y = cumlp_dataset_targets(ds);
    test_rng r = {5};
    for (int i = 0; i < N; i++) {
        y[i] = (float)(i % 2);
        x[2 * i] = (float)(y[i] * 2 - 1 + test_rng_uniform(&r, -0.5, 0.5));
        x[2 * i + 1] = (float)test_rng_uniform(&r, -1, 1);
    }
    cumlp_context *ctx = test_context_or_skip(backend);
    int64_t widths[] = {2, 4, 1};
    int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_SIGMOID};
    cumlp_network *net =
        test_network(ctx, 2, widths, acts, CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, 3);
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.type = CUMLP_OPT_ADAM;
    oo.learning_rate = 0.05;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &oo, &opt));
    cumlp_fit_options fo;
    cumlp_fit_defaults(&fo);
    fo.epochs = 20;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(net, opt, ds, ds, &fo, &res));
    CHECK_MSG(res.train_accuracy > 0.9 && res.validation_accuracy > 0.9,
              "train accuracy %g, validation accuracy %g", res.train_accuracy,
              res.validation_accuracy);
    cumlp_eval_result e;
    CHECK_OK(cumlp_evaluate(net, ds, 0, &e));
    float out[N];
    CHECK_OK(cumlp_predict(net, ds, 0, out, N));
    /* predict reads the features only: a dataset of other targets gives the same outputs */
    cumlp_dataset *features = NULL;
    CHECK_OK(cumlp_dataset_create(NULL, 2, 3, N, 0, &features));
    if (features) {
        memcpy(cumlp_dataset_features(features), x, sizeof(float) * 2 * N);
        float again[N];
        CHECK_OK(cumlp_predict(net, features, 0, again, N));
        CHECK(memcmp(out, again, sizeof out) == 0);
        CHECK_STATUS(cumlp_predict(net, features, 0, again, 3 * N), CUMLP_ERROR_INVALID_VALUE);
    }
    cumlp_dataset_destroy(features);
    int correct = 0;
    for (int i = 0; i < N; i++)
        correct += (out[i] >= 0.5f) == (y[i] >= 0.5f);
    CHECK_MSG(e.accuracy == (double)correct / N, "accuracy %g, %d of %d right", e.accuracy, correct,
              N);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
    cumlp_dataset_destroy(ds);
}

static void run_all(void) {
    RUN(test_schedule_applied);
    RUN(test_learns_and_evaluates);
    RUN(test_reproducible_and_shuffled);
    RUN(test_target_loss);
    RUN(test_patience);
    RUN(test_restore_best);
    RUN(test_callback_stops);
    RUN(test_non_finite_loss);
    RUN(test_skipped_steps_counted);
    RUN(test_non_finite_error_restores_best);
    RUN(test_bad_arguments);
    RUN(test_binary_classifier_accuracy);
}

int main(void) {
    RUN(test_schedules);
    RUN(test_later_schedules);
    run_all();
    if (cumlp_backend_is_built(CUMLP_BACKEND_CPU)) {
        printf("-- cpu backend\n");
        backend = CUMLP_BACKEND_CPU;
        run_all();
    }
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_CUDA;
    char why[512];
    cumlp_context *cuda = test_context_try(&o, why, sizeof why);
    if (cuda) {
        cumlp_context_destroy(cuda);
        printf("-- cuda backend\n");
        backend = CUMLP_BACKEND_CUDA;
        run_all();
    } else if (test_gpu_required()) {
        fprintf(stderr, "FAIL cuda backend: %s (CUMLP_TEST_REQUIRE_GPU=1)\n", why);
        harness_failed++;
    } else {
        printf("-- cuda backend skipped: %s\n", why);
    }
    return harness_finish();
}
