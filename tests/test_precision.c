/* ctest-labels: unit gpu */
/*
 * test_precision.c - the BF16 and FP16 precisions of the cuda backend beyond the single ops that
 * test_backend_ops.c checks: FP16's dynamic loss scaler (an overflow is a skip, bit for bit, even
 * with non_finite_error, and halves the scale; the scale grows after growth_interval clean steps;
 * every setting applies), the gradients, their norm and the checkpoints seen unscaled, the 16-bit
 * weight copy kept fresh (by the optimizer's pass, and after parameters change outside it), and a
 * network's work buffers following its context's precision. Skipped (77) without the cuda backend
 * and a device (the CUDA simulator counts as one).
 */
#include "harness.h"
#include "internal.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_IN  12
#define N_HID 24
#define N_OUT 5
#define BATCH 64

static float x_host[N_IN * BATCH], y_host[N_OUT * BATCH];

/* A cuda context in `precision` (skips the test without one). */
static cumlp_context *context(int precision) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_CUDA;
    o.precision = precision;
    char why[512];
    cumlp_context *ctx = test_context_try(&o, why, sizeof why);
    if (!ctx && test_gpu_required()) {
        fprintf(stderr, "test: %s, but CUMLP_TEST_REQUIRE_GPU=1 asks for a GPU\n", why);
        exit(1);
    }
    if (!ctx) harness_skip(why);
    return ctx;
}

/* The network of every test (seed fixed): 12 -> 24 tanh -> 5 softmax, cross-entropy. */
static cumlp_network *network(cumlp_context *ctx) {
    const int64_t widths[] = {N_IN, N_HID, N_OUT};
    const int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_SOFTMAX};
    return test_network(ctx, 2, widths, acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, 11);
}

static cumlp_optimizer *adam(cumlp_network *net, int non_finite_error) {
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults_for(CUMLP_OPT_ADAM, &o);
    o.learning_rate = 0.01;
    o.non_finite_error = non_finite_error;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    return opt;
}

typedef struct batch {
    cumlp_tensor *x, *y;
} batch;

static batch make_batch(cumlp_context *ctx) {
    batch b = {test_tensor_from(ctx, x_host, N_IN, BATCH),
               test_tensor_from(ctx, y_host, N_OUT, BATCH)};
    return b;
}

static void free_batch(batch b) {
    cumlp_tensor_destroy(b.x);
    cumlp_tensor_destroy(b.y);
}

/* Everything a skipped step must leave as it was, as bytes: the parameters, the optimizer's state
 * arenas and, in BF16 and FP16, the 16-bit weight copy (read through the convert op). */
typedef struct snapshot {
    unsigned char *bytes;
    size_t size;
} snapshot;

static snapshot take_snapshot(const cumlp_network *net, const cumlp_optimizer *opt) {
    cumlp_context *ctx = net->ctx;
    size_t n = net->num_params, arrays = 2 + CUMLP_OPTIMIZER_MAX_STATES;
    snapshot s = {calloc(arrays * n, sizeof(float)), arrays * n * sizeof(float)};
    float *out = (float *)(void *)s.bytes;
    CHECK_OK(ctx->ops->download(ctx, net->params, out, n));
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
        if (opt->state[k]) CHECK_OK(ctx->ops->download(ctx, opt->state[k], out + (1 + k) * n, n));
    if (net->params16) {
        void *wide = NULL;
        CHECK_OK(ctx->ops->alloc(ctx, n, &wide));
        CHECK_OK(
            ctx->ops->convert(ctx, wide, CUMLP_STORAGE_NATIVE, net->params16, net->storage, n));
        CHECK_OK(ctx->ops->download(ctx, wide, out + (arrays - 1) * n, n));
        ctx->ops->free(ctx, wide);
    }
    return s;
}

static int same_snapshot(snapshot a, snapshot b) {
    int same = a.size == b.size && memcmp(a.bytes, b.bytes, a.size) == 0;
    free(a.bytes);
    free(b.bytes);
    return same;
}

static cumlp_loss_scaler scaler_of(const cumlp_network *net) {
    cumlp_loss_scaler s;
    CHECK_OK(cumlp_network_get_loss_scaler(net, &s));
    return s;
}

static void set_scale(cumlp_network *net, double scale, int64_t growth_interval) {
    cumlp_loss_scaler s = scaler_of(net);
    s.scale = scale;
    s.growth_interval = growth_interval;
    CHECK_OK(cumlp_network_set_loss_scaler(net, &s));
}

/* A scale so large that the output deltas overflow fp16: the step is skipped (not an error, even
 * with non_finite_error set), parameters, optimizer state and weight copy keep every bit, the scale
 * halves, the overflow is counted, the clean steps start again. */
static void test_overflow_skips_bit_for_bit(void) {
    cumlp_context *ctx = context(CUMLP_PRECISION_FP16);
    cumlp_network *net = network(ctx);
    cumlp_optimizer *opt = adam(net, 1);
    batch b = make_batch(ctx);
    double loss;
    set_scale(net, 0x1p10, 1000);
    CHECK_OK(cumlp_train_step(net, opt, b.x, b.y, &loss)); /* some optimizer state first */
    cumlp_loss_scaler before = scaler_of(net);
    CHECK(before.clean_steps == 1 && before.overflows == 0);
    set_scale(net, 0x1p40, 1000);
    snapshot s0 = take_snapshot(net, opt);
    CHECK_STATUS(cumlp_train_step(net, opt, b.x, b.y, &loss), CUMLP_STEP_SKIPPED);
    CHECK_MSG(strstr(cumlp_last_error(ctx), "overflowed fp16"), "%s", cumlp_last_error(ctx));
    CHECK(isfinite(loss)); /* the loss does not see the scale */
    CHECK(same_snapshot(s0, take_snapshot(net, opt)));
    cumlp_loss_scaler after = scaler_of(net);
    CHECK(after.scale == 0x1p39 && after.overflows == 1 && after.clean_steps == 0);
    CHECK(cumlp_optimizer_skipped_steps(opt) == 1 && cumlp_optimizer_step_count(opt) == 1);
    CHECK(!isfinite(cumlp_optimizer_gradient_norm(opt)));
    /* The same through cumlp_optimizer_step after cumlp_loss_backward. */
    s0 = take_snapshot(net, opt);
    CHECK_OK(cumlp_loss_backward(net, b.x, b.y, &loss));
    CHECK_STATUS(cumlp_optimizer_step(opt), CUMLP_STEP_SKIPPED);
    CHECK(same_snapshot(s0, take_snapshot(net, opt)));
    CHECK(scaler_of(net).scale == 0x1p38 && scaler_of(net).overflows == 2);
    /* Overflows halve the scale until a step goes through (each one skipped). */
    int skipped = 0;
    cumlp_status st;
    while ((st = cumlp_train_step(net, opt, b.x, b.y, &loss)) == CUMLP_STEP_SKIPPED && skipped < 40)
        skipped++;
    CHECK_OK(st);
    cumlp_loss_scaler s = scaler_of(net);
    CHECK_MSG(s.scale == ldexp(1, 38 - skipped) && s.overflows == 2 + skipped && s.clean_steps == 1,
              "scale %g after %d more overflows", s.scale, skipped);
    CHECK(s.scale <= 0x1p16); /* deltas of order 1 overflow 65504 above that */
    printf("fp16: from 2^38, %d overflows before a step at scale 2^%d\n", skipped, 38 - skipped);
    free_batch(b);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* growth_interval clean steps in a row multiply the scale by growth_factor and start the count
 * again; an overflow resets it; growth_interval 0 never grows; backoff_factor applies. */
static void test_growth_and_settings(void) {
    cumlp_context *ctx = context(CUMLP_PRECISION_FP16);
    cumlp_network *net = network(ctx);
    cumlp_optimizer *opt = adam(net, 0);
    batch b = make_batch(ctx);
    cumlp_loss_scaler s = scaler_of(net);
    s.scale = 0x1p4;
    s.growth_interval = 3;
    s.growth_factor = 4;
    s.backoff_factor = 0.125;
    CHECK_OK(cumlp_network_set_loss_scaler(net, &s));
    const double scales[] = {0x1p4, 0x1p4, 0x1p6, 0x1p6, 0x1p6, 0x1p8, 0x1p8};
    const int64_t clean[] = {1, 2, 0, 1, 2, 0, 1};
    for (int i = 0; i < 7; i++) {
        CHECK_OK(cumlp_train_step(net, opt, b.x, b.y, NULL));
        s = scaler_of(net);
        CHECK_MSG(s.scale == scales[i] && s.clean_steps == clean[i],
                  "step %d: scale %g, %lld clean steps", i, s.scale, (long long)s.clean_steps);
    }
    /* An overflow (a scale past fp16's range) divides by 8 and restarts the count. */
    s.scale = 0x1p40;
    CHECK_OK(cumlp_network_set_loss_scaler(net, &s));
    CHECK_STATUS(cumlp_train_step(net, opt, b.x, b.y, NULL), CUMLP_STEP_SKIPPED);
    s = scaler_of(net);
    CHECK(s.scale == 0x1p37 && s.clean_steps == 0 && s.overflows == 1);
    /* growth_interval 0: a fixed scale. */
    s.scale = 0x1p8;
    s.growth_interval = 0;
    CHECK_OK(cumlp_network_set_loss_scaler(net, &s));
    for (int i = 0; i < 5; i++)
        CHECK_OK(cumlp_train_step(net, opt, b.x, b.y, NULL));
    s = scaler_of(net);
    CHECK(s.scale == 0x1p8 && s.clean_steps == 5);
    /* Growth stops short of fp32's largest value. */
    s.scale = 0x1p127;
    s.growth_interval = 1;
    s.growth_factor = 2;
    CHECK_OK(cumlp_network_set_loss_scaler(net, &s));
    cumlp_status st = cumlp_train_step(net, opt, b.x, b.y, NULL);
    CHECK(st == CUMLP_STEP_SKIPPED && scaler_of(net).scale == 0x1p124);
    free_batch(b);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* The gradients of one batch in `precision` (with FP16 at `scale`), unscaled by the readers,
 * and their norm as the optimizer step sees it. */
static void gradients(int precision, double scale, float *grads, double *norm) {
    cumlp_context *ctx = context(precision);
    cumlp_network *net = network(ctx);
    cumlp_optimizer *opt = NULL;
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults(&o);
    o.learning_rate = 0;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    set_scale(net, scale, 2000);
    batch b = make_batch(ctx);
    double loss;
    CHECK_OK(cumlp_train_step(net, opt, b.x, b.y, &loss));
    CHECK_OK(cumlp_network_get_gradients(net, grads, cumlp_network_num_parameters(net)));
    *norm = cumlp_optimizer_gradient_norm(opt);
    free_batch(b);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* The L2 norm of a - b over that of b. */
static double relative_l2(const float *a, const float *b, int n) {
    double diff = 0, norm = 0;
    for (int i = 0; i < n; i++) {
        diff += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        norm += (double)b[i] * b[i];
    }
    return sqrt(diff / norm);
}

/* What the loss scale does to the gradients is undone before anyone sees them: in FP16 at scales
 * 2^4 and 2^14 the gradients and their norm agree with FP32's to fp16's precision, and BF16's
 * (never scaled) to bf16's; the scale is applied, though: the arena holds 2^14 times them. */
static void test_gradients_unscaled(void) {
    enum { P = N_HID * (N_IN + 1) + N_OUT * (N_HID + 1) };
    static float g32[P], g16a[P], g16b[P], gbf[P];
    double n32, n16a, n16b, nbf;
    gradients(CUMLP_PRECISION_FP32, 0x1p14, g32, &n32);
    gradients(CUMLP_PRECISION_FP16, 0x1p4, g16a, &n16a);
    gradients(CUMLP_PRECISION_FP16, 0x1p14, g16b, &n16b);
    gradients(CUMLP_PRECISION_BF16, 0x1p14, gbf, &nbf);
    /* The whole gradient's error (single gradients that cancel over the batch are off by more). */
    double e16a = relative_l2(g16a, g32, P), e16b = relative_l2(g16b, g32, P);
    double ebf = relative_l2(gbf, g32, P);
    printf("gradients against fp32 (relative L2): fp16 at 2^4 %.2e, at 2^14 %.2e, bf16 %.2e; "
           "norms %.6g %.6g %.6g %.6g\n",
           e16a, e16b, ebf, n32, n16a, n16b, nbf);
    CHECK_MSG(e16a < 2e-3 && e16b < 2e-3 && ebf < 2e-2, "%g %g %g", e16a, e16b, ebf);
    CHECK_MSG(fabs(n16a / n32 - 1) < 1e-2 && fabs(n16b / n32 - 1) < 1e-2 &&
                  fabs(nbf / n32 - 1) < 5e-2,
              "norms %g %g %g %g", n32, n16a, n16b, nbf);
    /* The arena itself holds the scaled gradients. */
    cumlp_context *ctx = context(CUMLP_PRECISION_FP16);
    cumlp_network *net = network(ctx);
    set_scale(net, 0x1p14, 2000);
    batch b = make_batch(ctx);
    CHECK_OK(cumlp_loss_backward(net, b.x, b.y, NULL));
    float *arena = test_alloc_floats(P);
    CHECK_OK(ctx->ops->download(ctx, net->grads, arena, P));
    for (int i = 0; i < P; i++)
        CHECK_MSG(arena[i] == g16b[i] * 0x1p14f, "gradient %d: %g in the arena, %g read", i,
                  arena[i], g16b[i]);
    free(arena);
    free_batch(b);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* The parameters after one SGD step (rate 0.5) in `precision` from the common start, minus the
 * start, into delta. */
static void sgd_step(int precision, float *delta, int64_t n) {
    cumlp_context *ctx = context(precision);
    cumlp_network *net = network(ctx);
    set_scale(net, 0x1p14, 2000);
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults(&o);
    o.learning_rate = 0.5;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    float *before = test_alloc_floats((size_t)n);
    CHECK_OK(cumlp_network_get_parameters(net, before, n));
    batch b = make_batch(ctx);
    CHECK_OK(cumlp_train_step(net, opt, b.x, b.y, NULL));
    CHECK_OK(cumlp_network_get_parameters(net, delta, n));
    for (int64_t i = 0; i < n; i++)
        delta[i] -= before[i];
    free(before);
    free_batch(b);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* The step divides the loss scale out: an SGD step in FP16 (scale 2^14) moves the parameters as
 * one in FP32 does, to fp16's precision (a rule like Adam's would not show it: it divides any
 * scale of the gradient out by itself). */
static void test_step_unscaled(void) {
    enum { P = N_HID * (N_IN + 1) + N_OUT * (N_HID + 1) };
    static float d32[P], d16[P];
    sgd_step(CUMLP_PRECISION_FP32, d32, P);
    sgd_step(CUMLP_PRECISION_FP16, d16, P);
    double e = relative_l2(d16, d32, P);
    printf("an SGD step in fp16 against fp32: relative L2 %.2e\n", e);
    CHECK_MSG(e < 2e-3, "%g", e);
}

/* Y = the network's outputs for the test batch. */
static void outputs(cumlp_network *net, float *y) {
    cumlp_context *ctx = cumlp_network_context(net);
    cumlp_tensor *x = test_tensor_from(ctx, x_host, N_IN, BATCH), *out = NULL;
    CHECK_OK(cumlp_tensor_create(ctx, N_OUT, BATCH, &out));
    CHECK_OK(cumlp_forward(net, x, out));
    CHECK_OK(cumlp_tensor_download(out, y, N_OUT * BATCH));
    cumlp_tensor_destroy(x);
    cumlp_tensor_destroy(out);
}

/* The 16-bit weight copy follows the parameters: after set_parameters and set_layer (outside any
 * step) and after optimizer steps (in their own pass, frozen layers left), a forward pass gives
 * what a network holding the same parameters from the start gives, bit for bit. */
static void test_weight_copy_follows_parameters(void) {
    const int precisions[] = {CUMLP_PRECISION_BF16, CUMLP_PRECISION_FP16};
    for (int p = 0; p < 2; p++) {
        cumlp_context *ctx = context(precisions[p]);
        cumlp_network *net = network(ctx), *fresh = NULL;
        int64_t n = cumlp_network_num_parameters(net);
        float *w = test_alloc_floats((size_t)n), *y = test_alloc_floats(N_OUT * BATCH),
              *y_fresh = test_alloc_floats(N_OUT * BATCH);
        outputs(net, y); /* makes the copy */
        test_rng r = {77};
        test_fill_uniform(&r, w, (size_t)n, -0.5, 0.5);
        CHECK_OK(cumlp_network_set_parameters(net, w, n));
        fresh = network(ctx);
        CHECK_OK(cumlp_network_set_parameters(fresh, w, n));
        outputs(net, y);
        outputs(fresh, y_fresh);
        CHECK_MSG(memcmp(y, y_fresh, sizeof(float) * N_OUT * BATCH) == 0,
                  "%s: set_parameters did not reach the 16-bit copy",
                  cumlp_precision_name(precisions[p]));
        float bias[N_OUT] = {0.5f, -0.25f, 1, 2, -3};
        CHECK_OK(cumlp_network_set_layer(net, 1, NULL, bias));
        CHECK_OK(cumlp_network_set_layer(fresh, 1, NULL, bias));
        outputs(net, y);
        outputs(fresh, y_fresh);
        CHECK(memcmp(y, y_fresh, sizeof(float) * N_OUT * BATCH) == 0);
        /* Steps with the first layer's weights frozen. */
        CHECK_OK(cumlp_network_freeze(net, 0, 1, 0));
        cumlp_optimizer *opt = adam(net, 0);
        batch b = make_batch(ctx);
        for (int i = 0; i < 3; i++)
            CHECK_OK(cumlp_train_step(net, opt, b.x, b.y, NULL));
        CHECK_OK(cumlp_network_get_parameters(net, w, n));
        CHECK_OK(cumlp_network_set_parameters(fresh, w, n));
        outputs(net, y);
        outputs(fresh, y_fresh);
        CHECK_MSG(memcmp(y, y_fresh, sizeof(float) * N_OUT * BATCH) == 0,
                  "%s: the optimizer's pass left the 16-bit copy behind",
                  cumlp_precision_name(precisions[p]));
        free_batch(b);
        cumlp_optimizer_destroy(opt);
        cumlp_network_destroy(fresh);
        cumlp_network_destroy(net);
        free(w);
        free(y);
        free(y_fresh);
        cumlp_context_destroy(ctx);
    }
}

/* One network through FP32, BF16, FP16 and back: its work buffers follow the context, its
 * parameters do not move, and back in FP32 it computes exactly what it did before. */
static void test_network_follows_precision(void) {
    cumlp_context *ctx = context(CUMLP_PRECISION_FP32);
    cumlp_network *net = network(ctx);
    float y32[N_OUT * BATCH], y[N_OUT * BATCH];
    outputs(net, y32);
    const int order[] = {CUMLP_PRECISION_BF16, CUMLP_PRECISION_FP16, CUMLP_PRECISION_TF32,
                         CUMLP_PRECISION_FP32};
    for (int i = 0; i < 4; i++) {
        CHECK_OK(cumlp_context_set_precision(ctx, order[i]));
        outputs(net, y);
        double e = test_max_rel_error(y, y32, N_OUT * BATCH, 1e-3);
        CHECK_MSG(e < 1e-1, "%s: outputs %g off", cumlp_precision_name(order[i]), e);
        CHECK(net->storage == (order[i] == CUMLP_PRECISION_BF16   ? CUMLP_STORAGE_BF16
                               : order[i] == CUMLP_PRECISION_FP16 ? CUMLP_STORAGE_FP16
                                                                  : CUMLP_STORAGE_NATIVE));
        CHECK((net->params16 != NULL) == (net->storage != CUMLP_STORAGE_NATIVE));
    }
    CHECK(memcmp(y, y32, sizeof y) == 0);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* A checkpoint of FP16 training holds the loss scaler with the optimizer's state: training resumed
 * from it is the uninterrupted run, bit for bit, and a file without the scaler's keys leaves the
 * network's own. The parameters are fp32: they load on the reference backend bit for bit. */
static void test_checkpoint_resumes_fp16(void) {
    cumlp_context *ctx = context(CUMLP_PRECISION_FP16);
    cumlp_network *net = network(ctx);
    cumlp_optimizer *opt = adam(net, 0);
    batch b = make_batch(ctx);
    set_scale(net, 0x1p30, 3); /* overflows first, then clean steps and growth */
    for (int i = 0; i < 12; i++)
        (void)cumlp_train_step(net, opt, b.x, b.y, NULL);
    cumlp_loss_scaler saved = scaler_of(net);
    CHECK(saved.overflows > 0);
    char path[600];
    const char *tmp = getenv("CUMLP_TEST_TMPDIR");
    snprintf(path, sizeof path, "%s/test_precision_resume.safetensors", tmp ? tmp : ".");
    CHECK_OK(cumlp_checkpoint_save(net, opt, path));
    for (int i = 0; i < 5; i++)
        (void)cumlp_train_step(net, opt, b.x, b.y, NULL);
    int64_t n = cumlp_network_num_parameters(net);
    float *w = test_alloc_floats((size_t)n), *w_resumed = test_alloc_floats((size_t)n);
    CHECK_OK(cumlp_network_get_parameters(net, w, n));

    cumlp_network *net2 = network(ctx);
    cumlp_optimizer *opt2 = adam(net2, 0);
    CHECK_OK(cumlp_train_step(net2, opt2, b.x, b.y, NULL)); /* its own 16-bit weights first */
    CHECK_OK(cumlp_checkpoint_load_into(net2, opt2, path, 0));
    cumlp_loss_scaler loaded = scaler_of(net2);
    CHECK(memcmp(&loaded, &saved, sizeof saved) == 0);
    for (int i = 0; i < 5; i++)
        (void)cumlp_train_step(net2, opt2, b.x, b.y, NULL);
    CHECK_OK(cumlp_network_get_parameters(net2, w_resumed, n));
    CHECK_MSG(memcmp(w, w_resumed, sizeof(float) * (size_t)n) == 0,
              "fp16 training resumed from a checkpoint is not the uninterrupted run");
    cumlp_network *net3 = NULL;
    cumlp_optimizer *opt3 = NULL;
    CHECK_OK(cumlp_checkpoint_load(ctx, path, 0, &net3, &opt3));
    loaded = scaler_of(net3);
    CHECK(memcmp(&loaded, &saved, sizeof saved) == 0);

    /* The master weights on the reference backend, bit for bit. */
    cumlp_context *ref = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    cumlp_network *on_ref = NULL;
    CHECK_OK(cumlp_checkpoint_load(ref, path, 0, &on_ref, NULL));
    CHECK_OK(cumlp_network_get_parameters(net3, w, n));
    CHECK_OK(cumlp_network_get_parameters(on_ref, w_resumed, n));
    CHECK(memcmp(w, w_resumed, sizeof(float) * (size_t)n) == 0);
    cumlp_network_destroy(on_ref);
    cumlp_context_destroy(ref);
    remove(path);
    free(w);
    free(w_resumed);
    free_batch(b);
    cumlp_optimizer_destroy(opt3);
    cumlp_network_destroy(net3);
    cumlp_optimizer_destroy(opt2);
    cumlp_network_destroy(net2);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* In BF16 the scaler is neither applied nor updated; a non-finite loss (here from a NaN input) is
 * not an overflow in FP16: it follows non_finite_error and leaves the scaler alone. */
static void test_scaler_only_in_fp16(void) {
    cumlp_context *ctx = context(CUMLP_PRECISION_BF16);
    cumlp_network *net = network(ctx);
    cumlp_optimizer *opt = adam(net, 0);
    batch b = make_batch(ctx);
    cumlp_loss_scaler before = scaler_of(net);
    for (int i = 0; i < 3; i++)
        CHECK_OK(cumlp_train_step(net, opt, b.x, b.y, NULL));
    cumlp_loss_scaler after = scaler_of(net);
    CHECK(memcmp(&before, &after, sizeof before) == 0);
    CHECK_OK(cumlp_context_set_precision(ctx, CUMLP_PRECISION_FP16));
    cumlp_optimizer_destroy(opt);
    opt = adam(net, 1);
    float bad[N_IN * BATCH];
    memcpy(bad, x_host, sizeof bad);
    bad[3] = NAN;
    CHECK_OK(cumlp_tensor_upload(b.x, bad, N_IN * BATCH));
    double loss;
    CHECK_STATUS(cumlp_train_step(net, opt, b.x, b.y, &loss), CUMLP_ERROR_NON_FINITE);
    after = scaler_of(net);
    CHECK(memcmp(&before, &after, sizeof before) == 0);
    free_batch(b);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

int main(void) {
    test_rng r = {2026};
    test_fill_uniform(&r, x_host, N_IN * BATCH, -1, 1);
    test_fill_one_hot(&r, y_host, N_OUT, BATCH);
    RUN(test_overflow_skips_bit_for_bit);
    RUN(test_growth_and_settings);
    RUN(test_gradients_unscaled);
    RUN(test_step_unscaled);
    RUN(test_weight_copy_follows_parameters);
    RUN(test_network_follows_precision);
    RUN(test_checkpoint_resumes_fp16);
    RUN(test_scaler_only_in_fp16);
    return harness_finish();
}
