/* optimizer.c - SGD, momentum, Nesterov and Adam over the parameter arena. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

cumlp_status cumlp_optimizer_defaults(cumlp_optimizer_options *options) {
    CUMLP_FAIL_IF(!options, NULL, CUMLP_ERROR_INVALID_VALUE, "options is NULL");
    memset(options, 0, sizeof *options);
    options->type = CUMLP_OPT_SGD;
    options->learning_rate = 0.01;
    options->momentum = 0.9;
    options->weight_decay = 0.0;
    options->beta1 = 0.9;
    options->beta2 = 0.999;
    options->epsilon = 1e-8;
    return CUMLP_SUCCESS;
}

static int in_unit_interval(double x) {
    return x >= 0 && x < 1;
}

static cumlp_status check_options(const cumlp_context *ctx, const char *func,
                                  const cumlp_optimizer_options *o) {
    if (o->type < 0 || o->type >= CUMLP_OPTIMIZER_COUNT)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "unknown optimizer type %d",
                           o->type);
    if (!isfinite(o->learning_rate) || o->learning_rate < 0)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "learning_rate %g must be finite and >= 0", o->learning_rate);
    if (!in_unit_interval(o->momentum))
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "momentum %g must be in [0, 1)",
                           o->momentum);
    if (!isfinite(o->weight_decay) || o->weight_decay < 0)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "weight_decay %g must be finite and >= 0", o->weight_decay);
    if (!in_unit_interval(o->beta1) || !in_unit_interval(o->beta2))
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "beta1 %g and beta2 %g must be in [0, 1)", o->beta1, o->beta2);
    if (!isfinite(o->epsilon) || o->epsilon <= 0)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "epsilon %g must be > 0",
                           o->epsilon);
    return CUMLP_SUCCESS;
}

unsigned cumlp__optimizer_state_slots(const cumlp_optimizer_options *o) {
    switch (o->type) {
    case CUMLP_OPT_SGD:
        return 0;
    case CUMLP_OPT_ADAM:
        return 3;
    default:
        return 1;
    }
}

void cumlp_optimizer_destroy(cumlp_optimizer *opt) {
    if (!opt) return;
    cumlp_context *ctx = opt->net->ctx;
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
        ctx->ops->free(ctx, opt->state[k]);
    free(opt);
}

cumlp_status cumlp_optimizer_create(cumlp_network *net, const cumlp_optimizer_options *options,
                                    cumlp_optimizer **out) {
    if (out) *out = NULL;
    CUMLP_FAIL_IF(!net, NULL, CUMLP_ERROR_INVALID_VALUE, "net is NULL");
    cumlp_context *ctx = net->ctx;
    CUMLP_FAIL_IF(!out, ctx, CUMLP_ERROR_INVALID_VALUE, "opt is NULL");
    if (ctx->sticky) return ctx->sticky;
    cumlp_optimizer_options defaults;
    cumlp_optimizer_defaults(&defaults);
    const cumlp_optimizer_options *o = options ? options : &defaults;
    cumlp_status st = check_options(ctx, __func__, o);
    if (st != CUMLP_SUCCESS) return st;
    cumlp_optimizer *opt = calloc(1, sizeof *opt);
    CUMLP_FAIL_IF(!opt, ctx, CUMLP_ERROR_ALLOC_FAILED, "out of host memory");
    opt->net = net;
    opt->options = *o;
    unsigned slots = cumlp__optimizer_state_slots(o);
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES && st == CUMLP_SUCCESS; k++) {
        if (!(slots & (1u << k))) continue;
        st = ctx->ops->alloc(ctx, net->num_params, &opt->state[k]);
        if (st == CUMLP_SUCCESS) st = ctx->ops->fill(ctx, opt->state[k], net->num_params, 0.0f);
    }
    if (st != CUMLP_SUCCESS) {
        cumlp_optimizer_destroy(opt);
        return st;
    }
    *out = opt;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_optimizer_set_learning_rate(cumlp_optimizer *opt, double learning_rate) {
    CUMLP_FAIL_IF(!opt, NULL, CUMLP_ERROR_INVALID_VALUE, "opt is NULL");
    CUMLP_FAIL_IF(!isfinite(learning_rate) || learning_rate < 0, opt->net->ctx,
                  CUMLP_ERROR_INVALID_VALUE, "%g must be finite and >= 0", learning_rate);
    opt->options.learning_rate = learning_rate;
    return CUMLP_SUCCESS;
}

double cumlp_optimizer_learning_rate(const cumlp_optimizer *opt) {
    return opt ? opt->options.learning_rate : -1.0;
}

int64_t cumlp_optimizer_step_count(const cumlp_optimizer *opt) {
    return opt ? opt->steps : -1;
}

/* Applies the update to arena elements [begin, end). */
static cumlp_status step_range(cumlp_optimizer *opt, const cumlp_step_params *p, size_t begin,
                               size_t end) {
    cumlp_context *ctx = opt->net->ctx;
    void *s[CUMLP_OPTIMIZER_MAX_STATES];
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
        s[k] = opt->state[k] ? cumlp__at(ctx, opt->state[k], begin) : NULL;
    return ctx->ops->optimizer_step(ctx, p, end - begin, cumlp__at(ctx, opt->net->params, begin),
                                    cumlp__at(ctx, opt->net->grads, begin), s);
}

/* One pass over the arena when nothing is frozen; otherwise one per maximal run of unfrozen
 * parameters (the arena is W1 b1 W2 b2 ..., so runs are unions of adjacent W and b). */
static cumlp_status step_unfrozen(cumlp_optimizer *opt, const cumlp_step_params *p) {
    const cumlp_network *net = opt->net;
    size_t run_begin = 0, cursor = 0;
    int in_run = 0;
    cumlp_status st = CUMLP_SUCCESS;
    for (int l = 0; l < net->num_layers && st == CUMLP_SUCCESS; l++) {
        const cumlp_layer *L = &net->layers[l];
        size_t sizes[2] = {(size_t)(L->fan_in * L->fan_out), (size_t)L->fan_out};
        int frozen[2] = {L->frozen_weights, L->frozen_biases};
        for (int part = 0; part < 2 && st == CUMLP_SUCCESS; part++) {
            if (!frozen[part] && !in_run) {
                run_begin = cursor;
                in_run = 1;
            } else if (frozen[part] && in_run) {
                st = step_range(opt, p, run_begin, cursor);
                in_run = 0;
            }
            cursor += sizes[part];
        }
    }
    if (st == CUMLP_SUCCESS && in_run) st = step_range(opt, p, run_begin, cursor);
    return st;
}

cumlp_status cumlp_optimizer_step(cumlp_optimizer *opt) {
    CUMLP_FAIL_IF(!opt, NULL, CUMLP_ERROR_INVALID_VALUE, "opt is NULL");
    cumlp_context *ctx = opt->net->ctx;
    if (ctx->sticky) return ctx->sticky;
    const cumlp_optimizer_options *o = &opt->options;
    int64_t t = opt->steps + 1;
    cumlp_step_params p = {
        .type = o->type,
        .learning_rate = o->learning_rate,
        .momentum = o->momentum,
        .weight_decay = o->weight_decay,
        .beta1 = o->beta1,
        .beta2 = o->beta2,
        .epsilon = o->epsilon,
        .bias_correction1 = o->type == CUMLP_OPT_ADAM ? 1.0 - pow(o->beta1, (double)t) : 1.0,
        .bias_correction2 = o->type == CUMLP_OPT_ADAM ? 1.0 - pow(o->beta2, (double)t) : 1.0,
    };
    cumlp__range_push(ctx, "cumlp:optimizer");
    cumlp_status st = step_unfrozen(opt, &p);
    cumlp__range_pop(ctx);
    if (st == CUMLP_SUCCESS) opt->steps = t;
    return st;
}

cumlp_status cumlp_train_step(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                              const cumlp_tensor *T, double *loss) {
    CUMLP_FAIL_IF(!net || !opt, net ? net->ctx : NULL, CUMLP_ERROR_INVALID_VALUE, "%s is NULL",
                  net ? "opt" : "net");
    CUMLP_FAIL_IF(opt->net != net, net->ctx, CUMLP_ERROR_INVALID_VALUE,
                  "the optimizer was created for another network");
    cumlp_status st = cumlp_loss_backward(net, X, T, loss);
    if (st != CUMLP_SUCCESS) return st;
    return cumlp_optimizer_step(opt);
}
