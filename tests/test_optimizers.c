/* ctest-labels: unit gpu */
/*
 * test_optimizers.c - what every optimizer must do beyond its formula (which test_math checks by
 * hand, test_backend_ops across backends and test_optimizers_torch against PyTorch), on every
 * backend built (cuda skipped without a device, a failure under CUMLP_TEST_REQUIRE_GPU=1):
 *  - a step that meets NaN or Inf is skipped and leaves parameters, state, step count and
 *    everything the next step depends on bit for bit as they were; with non_finite_error it fails;
 *  - clipping by norm and by value bounds the update, and the reported norm is the gradients';
 *  - frozen parameters and their state stay as they are under every rule;
 *  - three interleaved spirals are learnt to >= 0.95 by every rule;
 *  - options out of range are CUMLP_ERROR_INVALID_VALUE with a message naming them.
 */
#include "harness.h"
#include "internal.h"
#include "testutil.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int backend; /* the backend of the running test */

/* threads: of the cpu backend (2 splits its passes even on one core). */
static cumlp_context *context_threads(int threads) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = backend;
    o.num_threads = threads;
    char why[512];
    cumlp_context *ctx = test_context_try(&o, why, sizeof why);
    if (!ctx && backend == CUMLP_BACKEND_CUDA && test_gpu_required())
        CHECK_MSG(0, "%s (CUMLP_TEST_REQUIRE_GPU=1)", why);
    else if (!ctx)
        printf("     skipped: %s\n", why);
    return ctx;
}

static cumlp_context *context(void) {
    return context_threads(2);
}

/* Every rule, RMSprop in its variants, each with weight decay, at PyTorch's defaults. */
typedef struct variant {
    int type;
    double momentum; /* for RMSprop; < 0: the type's default */
    int centered;
} variant;

static const variant variants[] = {
    {CUMLP_OPT_SGD, -1, 0},     {CUMLP_OPT_MOMENTUM, -1, 0}, {CUMLP_OPT_NESTEROV, -1, 0},
    {CUMLP_OPT_ADAM, -1, 0},    {CUMLP_OPT_ADAMW, -1, 0},    {CUMLP_OPT_ADAMAX, -1, 0},
    {CUMLP_OPT_NADAM, -1, 0},   {CUMLP_OPT_RMSPROP, -1, 0},  {CUMLP_OPT_RMSPROP, 0.9, 1},
    {CUMLP_OPT_ADAGRAD, -1, 0}, {CUMLP_OPT_ADADELTA, -1, 0},
};

static cumlp_optimizer_options options_of(const variant *v) {
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults_for(v->type, &o);
    if (v->momentum >= 0) o.momentum = v->momentum;
    o.centered = v->centered;
    o.weight_decay = 1e-3;
    o.initial_accumulator_value = 0.1; /* Adagrad's state must not start at 0 here */
    return o;
}

static const int64_t widths[] = {5, 7, 3};
static const int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_IDENTITY};
#define NUM_PARAMS (5 * 7 + 7 + 7 * 3 + 3)

/* Sets the gradient arena to `step`'s random gradients, with `poison` at index 17 if not 0. */
static void set_gradients(cumlp_network *net, int step, float poison) {
    float g[NUM_PARAMS];
    test_rng rng = {1000u + (uint64_t)step};
    test_fill_uniform(&rng, g, NUM_PARAMS, -1, 1);
    if (poison != 0) g[17] = poison;
    cumlp_context *ctx = net->ctx;
    CHECK_OK(ctx->ops->upload(ctx, net->grads, g, NUM_PARAMS));
}

/* Everything a step depends on and changes, as bytes: parameters, state arenas, step count and
 * NAdam's product. */
typedef struct snapshot {
    float params[NUM_PARAMS], state[CUMLP_OPTIMIZER_MAX_STATES][NUM_PARAMS];
    int64_t steps;
    double mu_product;
} snapshot;

static void take(const cumlp_optimizer *opt, snapshot *s) {
    memset(s, 0, sizeof *s);
    cumlp_context *ctx = opt->net->ctx;
    CHECK_OK(cumlp_network_get_parameters(opt->net, s->params, NUM_PARAMS));
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
        if (opt->state[k])
            CHECK_OK(ctx->ops->download(ctx, opt->state[k], s->state[k], NUM_PARAMS));
    s->steps = cumlp_optimizer_step_count(opt);
    s->mu_product = opt->nadam_mu_product;
}

/* Steps 1, 2, then NaN, +Inf, -Inf gradients and a NaN loss (each skipped), then step 3: the
 * result must be bit for bit that of steps 1, 2, 3 alone. */
static void skip_run(cumlp_context *ctx, const variant *v) {
    cumlp_optimizer_options o = options_of(v);
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 3);
    cumlp_network *twin = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 3);
    cumlp_optimizer *opt = NULL, *plain = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    CHECK_OK(cumlp_optimizer_create(twin, &o, &plain));
    for (int s = 1; s <= 2; s++) {
        set_gradients(net, s, 0);
        CHECK_OK(cumlp_optimizer_step(opt));
        set_gradients(twin, s, 0);
        CHECK_OK(cumlp_optimizer_step(plain));
    }
    snapshot before, after;
    take(opt, &before);
    const float poisons[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < COUNT(poisons); i++) {
        set_gradients(net, 3, poisons[i]);
        CHECK_STATUS(cumlp_optimizer_step(opt), CUMLP_STEP_SKIPPED);
        CHECK(!isfinite(cumlp_optimizer_gradient_norm(opt)));
        take(opt, &after);
        CHECK_MSG(memcmp(&before, &after, sizeof before) == 0, "%s: a skipped step changed state",
                  cumlp_optimizer_name(v->type));
    }
    float xs[5 * 4], ts[3 * 4];
    test_rng rng = {9};
    test_fill_uniform(&rng, xs, 20, -1, 1);
    test_fill_uniform(&rng, ts, 12, -1, 1);
    xs[6] = NAN;
    cumlp_tensor *x = test_tensor_from(ctx, xs, 5, 4), *t = test_tensor_from(ctx, ts, 3, 4);
    double loss = 0;
    CHECK_STATUS(cumlp_train_step(net, opt, x, t, &loss), CUMLP_STEP_SKIPPED);
    take(opt, &after);
    CHECK(memcmp(&before.params, &after.params, sizeof before.params) == 0);
    CHECK(memcmp(&before.state, &after.state, sizeof before.state) == 0 && after.steps == 2);
    CHECK(cumlp_optimizer_skipped_steps(opt) == 4);
    set_gradients(net, 3, 0);
    CHECK_OK(cumlp_optimizer_step(opt));
    set_gradients(twin, 3, 0);
    CHECK_OK(cumlp_optimizer_step(plain));
    snapshot a, b;
    take(opt, &a);
    take(plain, &b);
    CHECK_MSG(memcmp(&a, &b, sizeof a) == 0, "%s: the step after the skips differs",
              cumlp_optimizer_name(v->type));
    cumlp_tensor_destroy(x);
    cumlp_tensor_destroy(t);
    cumlp_optimizer_destroy(opt);
    cumlp_optimizer_destroy(plain);
    cumlp_network_destroy(net);
    cumlp_network_destroy(twin);
}

static void test_skipped_steps_change_nothing(void) {
    cumlp_context *ctx = context();
    if (!ctx) return;
    for (int i = 0; i < COUNT(variants); i++)
        skip_run(ctx, &variants[i]);
    cumlp_context_destroy(ctx);
}

/* With non_finite_error the step fails instead, and changes nothing either. */
static void test_non_finite_error(void) {
    cumlp_context *ctx = context();
    if (!ctx) return;
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 3);
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults_for(CUMLP_OPT_ADAM, &o);
    o.non_finite_error = 1;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    set_gradients(net, 1, 0);
    CHECK_OK(cumlp_optimizer_step(opt));
    snapshot before, after;
    take(opt, &before);
    set_gradients(net, 2, NAN);
    CHECK_STATUS(cumlp_optimizer_step(opt), CUMLP_ERROR_NON_FINITE);
    CHECK(strstr(cumlp_last_error(ctx), "cumlp_optimizer_step: the gradients hold NaN or Inf"));
    take(opt, &after);
    CHECK(memcmp(&before, &after, sizeof before) == 0);
    CHECK(cumlp_optimizer_skipped_steps(opt) == 0);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* One SGD step with learning rate 1 from gradients g scaled by `scale`: the update w0 - w1 is the
 * clipped gradient. Returns ||w0 - w1|| and its largest |element|; *norm gets the reported norm
 * and *expected the gradients' own. */
static double clipped_update(cumlp_context *ctx, double clip_norm, double clip_value, double scale,
                             double *largest, double *norm, double *expected) {
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 4);
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults(&o);
    o.learning_rate = 1.0;
    o.clip_norm = clip_norm;
    o.clip_value = clip_value;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    float g[NUM_PARAMS];
    double w0[NUM_PARAMS], w1[NUM_PARAMS], sum = 0, step = 0;
    test_rng rng = {5};
    test_fill_uniform(&rng, g, NUM_PARAMS, -scale, scale);
    for (int i = 0; i < NUM_PARAMS; i++)
        sum += (double)g[i] * g[i];
    *expected = sqrt(sum);
    CHECK_OK(ctx->ops->upload(ctx, net->grads, g, NUM_PARAMS));
    CHECK_OK(cumlp_network_get_parameters_f64(net, w0, NUM_PARAMS));
    CHECK_OK(cumlp_optimizer_step(opt));
    CHECK_OK(cumlp_network_get_parameters_f64(net, w1, NUM_PARAMS));
    *largest = 0;
    for (int i = 0; i < NUM_PARAMS; i++) {
        step += (w0[i] - w1[i]) * (w0[i] - w1[i]);
        *largest = fmax(*largest, fabs(w0[i] - w1[i]));
    }
    *norm = cumlp_optimizer_gradient_norm(opt);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    return sqrt(step);
}

static void test_clipping_bounds_the_update(void) {
    cumlp_context *ctx = context();
    if (!ctx) return;
    /* fp32 backends round w0 - g and w0: the update is known to a few ulps of w (|w| < 2) */
    double slack = backend == CUMLP_BACKEND_REFERENCE ? 1e-12 : 1e-5;
    double largest, norm, expected;
    /* gradients of norm about 20, clipped to 1 */
    double update = clipped_update(ctx, 1.0, 0, 5.0, &largest, &norm, &expected);
    CHECK_MSG(update <= 1.0 + slack && update >= 1.0 - 1e-4, "norm %.9g after clipping to 1",
              update);
    CHECK_NEAR(norm, expected, 1e-12 * expected);
    /* a norm below clip_norm: the plain gradient (the factor is exactly 1) */
    update = clipped_update(ctx, 100.0, 0, 5.0, &largest, &norm, &expected);
    CHECK_NEAR(update, expected, slack * expected);
    /* by value: every element within 0.5, the norm below sqrt(n) 0.5 */
    update = clipped_update(ctx, 0, 0.5, 5.0, &largest, &norm, &expected);
    CHECK_MSG(largest <= 0.5 + slack && largest >= 0.5 - 1e-4, "largest %.9g", largest);
    /* both: each bound holds */
    update = clipped_update(ctx, 1.0, 0.1, 5.0, &largest, &norm, &expected);
    CHECK(update <= 1.0 + slack && largest <= 0.1 + slack);
    cumlp_context_destroy(ctx);
}

/* Frozen W of layer 0 and b of layer 1: under every rule they and their state stay unchanged;
 * everything else moves. */
static void test_frozen_parameters(void) {
    cumlp_context *ctx = context();
    if (!ctx) return;
    const int w0_end = 5 * 7, b1_begin = 5 * 7 + 7 + 7 * 3;
    for (int i = 0; i < COUNT(variants); i++) {
        cumlp_optimizer_options o = options_of(&variants[i]);
        cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 8);
        cumlp_optimizer *opt = NULL;
        CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
        CHECK_OK(cumlp_network_freeze(net, 0, 1, 0));
        CHECK_OK(cumlp_network_freeze(net, 1, 0, 1));
        snapshot before, after;
        take(opt, &before);
        for (int s = 1; s <= 3; s++) {
            set_gradients(net, s, 0);
            CHECK_OK(cumlp_optimizer_step(opt));
        }
        take(opt, &after);
        for (int j = 0; j < NUM_PARAMS; j++) {
            int frozen = j < w0_end || j >= b1_begin;
            int same = after.params[j] == before.params[j];
            for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
                if (opt->state[k] && frozen) same &= after.state[k][j] == before.state[k][j];
            CHECK_MSG(frozen ? same : !same, "%s: parameter %d (%s) %s",
                      cumlp_optimizer_name(o.type), j, frozen ? "frozen" : "unfrozen",
                      frozen ? "changed" : "did not change");
        }
        cumlp_optimizer_destroy(opt);
        cumlp_network_destroy(net);
    }
    cumlp_context_destroy(ctx);
}

/* ---- three interleaved spirals ---------------------------------------------------------------
 * The classic problem a linear classifier solves about a third of (test_training.c): 3 arms of
 * 100 points, a 2-64-3 ReLU network, 400 full-batch steps. Learning rates, tuned once per rule
 * (each reaches 0.98 to 0.993 here): SGD 0.5, momentum and Nesterov 0.1, Adam, AdamW, AdaMax and
 * NAdam 0.02, RMSprop 0.005 (centered with momentum 0.9: 0.002), Adagrad 0.1, Adadelta 1.0
 * (PyTorch's default). */

static void spiral_data(float *x, float *y) {
    enum { K = 3, N = 100 };
    test_rng r = {77};
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

static double spiral_rate(const variant *v) {
    switch (v->type) {
    case CUMLP_OPT_SGD:
        return 0.5;
    case CUMLP_OPT_MOMENTUM:
    case CUMLP_OPT_NESTEROV:
    case CUMLP_OPT_ADAGRAD:
        return 0.1;
    case CUMLP_OPT_RMSPROP:
        return v->centered ? 0.002 : 0.005;
    case CUMLP_OPT_ADADELTA:
        return 1.0;
    default:
        return 0.02;
    }
}

static void test_spirals_every_optimizer(void) {
    if (backend == CUMLP_BACKEND_CUDA) return; /* the rules are the cpu's; cuda's are compared */
    /* One thread: OpenMP teams that spin while ctest runs another test on the other core would
     * make 4400 small steps slow (a minute under ASan on 2 cores). */
    cumlp_context *ctx = context_threads(1);
    if (!ctx) return;
    static float x[2 * 300], y[3 * 300];
    spiral_data(x, y);
    const int64_t w[] = {2, 64, 3};
    const int a[] = {CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX};
    cumlp_tensor *xt = test_tensor_from(ctx, x, 2, 300), *yt = test_tensor_from(ctx, y, 3, 300);
    for (int i = 0; i < COUNT(variants); i++) {
        cumlp_network_options no;
        cumlp_network_defaults(&no);
        no.loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
        no.init = CUMLP_INIT_HE_UNIFORM;
        no.seed = 21;
        cumlp_network *net = NULL;
        CHECK_OK(cumlp_network_create(ctx, 2, w, a, &no, &net));
        cumlp_optimizer_options o;
        cumlp_optimizer_defaults_for(variants[i].type, &o);
        if (variants[i].momentum >= 0) o.momentum = variants[i].momentum;
        o.centered = variants[i].centered;
        o.learning_rate = spiral_rate(&variants[i]);
        cumlp_optimizer *opt = NULL;
        CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
        for (int s = 0; s < 400; s++)
            CHECK_OK(cumlp_train_step(net, opt, xt, yt, NULL));
        double acc = test_accuracy(net, x, y, 2, 3, 300);
        printf("     %s spirals: %-8s%s accuracy %.4f\n", cumlp_backend_name(backend),
               cumlp_optimizer_name(o.type), o.centered ? " (centered, momentum 0.9)" : "", acc);
        CHECK_MSG(acc >= 0.95, "%s: accuracy %g", cumlp_optimizer_name(o.type), acc);
        cumlp_optimizer_destroy(opt);
        cumlp_network_destroy(net);
    }
    cumlp_tensor_destroy(xt);
    cumlp_tensor_destroy(yt);
    cumlp_context_destroy(ctx);
}

/* ---- options ------------------------------------------------------------------------------- */

/* Each bad option alone: CUMLP_ERROR_INVALID_VALUE, no optimizer, the option named. */
static void test_bad_options(void) {
    if (backend != CUMLP_BACKEND_REFERENCE) return;
    cumlp_context *ctx = context();
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 1);
    static const struct {
        const char *field;
        size_t offset;
        double value;
    } doubles[] = {
#define BAD(field, value) {#field, offsetof(cumlp_optimizer_options, field), value}
        BAD(learning_rate, -1),
        BAD(learning_rate, NAN),
        BAD(momentum, 1),
        BAD(momentum, -0.1),
        BAD(weight_decay, NAN),
        BAD(weight_decay, -1),
        BAD(beta1, 1),
        BAD(beta2, NAN),
        BAD(epsilon, 0),
        BAD(epsilon, INFINITY),
        BAD(alpha, 1),
        BAD(alpha, NAN),
        BAD(rho, -0.5),
        BAD(rho, 1),
        BAD(lr_decay, -1),
        BAD(lr_decay, NAN),
        BAD(initial_accumulator_value, -1),
        BAD(initial_accumulator_value, INFINITY),
        BAD(momentum_decay, -1),
        BAD(momentum_decay, NAN),
        BAD(clip_norm, -1),
        BAD(clip_norm, NAN),
        BAD(clip_value, -1),
        BAD(clip_value, INFINITY),
#undef BAD
    };
    for (int i = 0; i < COUNT(doubles); i++) {
        cumlp_optimizer_options o;
        cumlp_optimizer_defaults(&o);
        memcpy((char *)&o + doubles[i].offset, &doubles[i].value, sizeof(double));
        cumlp_optimizer *opt = (cumlp_optimizer *)&o; /* must become NULL */
        CHECK_STATUS(cumlp_optimizer_create(net, &o, &opt), CUMLP_ERROR_INVALID_VALUE);
        CHECK(opt == NULL);
        CHECK_MSG(strstr(cumlp_last_error(ctx), doubles[i].field), "%s = %g: \"%s\"",
                  doubles[i].field, doubles[i].value, cumlp_last_error(ctx));
    }
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults(&o);
    o.centered = 2;
    cumlp_optimizer *opt = NULL;
    CHECK_STATUS(cumlp_optimizer_create(net, &o, &opt), CUMLP_ERROR_INVALID_VALUE);
    CHECK(strstr(cumlp_last_error(ctx), "centered"));
    cumlp_optimizer_defaults(&o);
    o.non_finite_error = -1;
    CHECK_STATUS(cumlp_optimizer_create(net, &o, &opt), CUMLP_ERROR_INVALID_VALUE);
    CHECK(strstr(cumlp_last_error(ctx), "non_finite_error"));
    o.non_finite_error = 0;
    o.type = CUMLP_OPTIMIZER_COUNT;
    CHECK_STATUS(cumlp_optimizer_create(net, &o, &opt), CUMLP_ERROR_INVALID_VALUE);
    CHECK(strstr(cumlp_last_error(ctx), "unknown optimizer type"));
    CHECK_STATUS(cumlp_optimizer_defaults_for(-1, &o), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_optimizer_defaults_for(CUMLP_OPT_ADAM, NULL), CUMLP_ERROR_INVALID_VALUE);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* cumlp_optimizer_defaults_for: PyTorch's defaults of each type. */
static void test_defaults_for(void) {
    if (backend != CUMLP_BACKEND_REFERENCE) return;
    static const struct {
        int type;
        double lr, wd, momentum, eps;
    } want[] = {
        {CUMLP_OPT_SGD, 0.01, 0, 0.9, 1e-8},      {CUMLP_OPT_MOMENTUM, 0.01, 0, 0.9, 1e-8},
        {CUMLP_OPT_NESTEROV, 0.01, 0, 0.9, 1e-8}, {CUMLP_OPT_ADAM, 1e-3, 0, 0.9, 1e-8},
        {CUMLP_OPT_ADAMW, 1e-3, 1e-2, 0.9, 1e-8}, {CUMLP_OPT_ADAMAX, 2e-3, 0, 0.9, 1e-8},
        {CUMLP_OPT_NADAM, 2e-3, 0, 0.9, 1e-8},    {CUMLP_OPT_RMSPROP, 1e-2, 0, 0, 1e-8},
        {CUMLP_OPT_ADAGRAD, 1e-2, 0, 0.9, 1e-10}, {CUMLP_OPT_ADADELTA, 1.0, 0, 0.9, 1e-6},
    };
    CHECK(COUNT(want) == CUMLP_OPTIMIZER_COUNT);
    for (int i = 0; i < COUNT(want); i++) {
        cumlp_optimizer_options o;
        CHECK_OK(cumlp_optimizer_defaults_for(want[i].type, &o));
        CHECK_MSG(o.type == want[i].type && o.learning_rate == want[i].lr &&
                      o.weight_decay == want[i].wd && o.momentum == want[i].momentum &&
                      o.epsilon == want[i].eps && o.beta1 == 0.9 && o.beta2 == 0.999 &&
                      o.alpha == 0.99 && o.rho == 0.9 && o.centered == 0 && o.lr_decay == 0 &&
                      o.initial_accumulator_value == 0 && o.momentum_decay == 4e-3 &&
                      o.clip_norm == 0 && o.clip_value == 0 && o.non_finite_error == 0,
                  "defaults of %s", cumlp_optimizer_name(want[i].type));
    }
}

int main(void) {
    static const int backends[] = {CUMLP_BACKEND_REFERENCE, CUMLP_BACKEND_CPU, CUMLP_BACKEND_CUDA};
    static const struct {
        const char *name;
        void (*run)(void);
    } tests[] = {
        {"skipped steps change nothing", test_skipped_steps_change_nothing},
        {"non_finite_error", test_non_finite_error},
        {"clipping bounds the update", test_clipping_bounds_the_update},
        {"frozen parameters", test_frozen_parameters},
        {"spirals, every optimizer", test_spirals_every_optimizer},
        {"bad options", test_bad_options},
        {"defaults_for", test_defaults_for},
    };
    for (int b = 0; b < COUNT(backends); b++) {
        if (!cumlp_backend_is_built(backends[b])) continue;
        backend = backends[b];
        for (int t = 0; t < COUNT(tests); t++) {
            char name[128];
            snprintf(name, sizeof name, "%s: %s", cumlp_backend_name(backend), tests[t].name);
            harness_run(name, tests[t].run);
        }
    }
    return harness_finish();
}
