/* optimizer.c - the optimizers of cumlp.h (SGD, momentum, Nesterov, the Adam family, RMSprop,
 * Adagrad, Adadelta) over the parameter arena: options, state arenas and the per-step factors. */
#include "dist/dist.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- options ------------------------------------------------------------------------------- */

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
    options->alpha = 0.99;
    options->rho = 0.9;
    options->centered = 0;
    options->lr_decay = 0.0;
    options->initial_accumulator_value = 0.0;
    options->momentum_decay = 4e-3;
    options->clip_norm = 0.0;
    options->clip_value = 0.0;
    options->non_finite_error = 0;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_optimizer_defaults_for(int type, cumlp_optimizer_options *options) {
    CUMLP_FAIL_IF(!options, NULL, CUMLP_ERROR_INVALID_VALUE, "options is NULL");
    CUMLP_FAIL_IF(type < 0 || type >= CUMLP_OPTIMIZER_COUNT, NULL, CUMLP_ERROR_INVALID_VALUE,
                  "unknown optimizer type %d", type);
    cumlp_optimizer_defaults(options);
    options->type = type;
    switch (type) { /* torch.optim's defaults where they differ from the above */
    case CUMLP_OPT_ADAM:
        options->learning_rate = 1e-3;
        break;
    case CUMLP_OPT_ADAMW:
        options->learning_rate = 1e-3;
        options->weight_decay = 1e-2;
        break;
    case CUMLP_OPT_ADAMAX:
    case CUMLP_OPT_NADAM:
        options->learning_rate = 2e-3;
        break;
    case CUMLP_OPT_RMSPROP:
        options->momentum = 0.0;
        break;
    case CUMLP_OPT_ADAGRAD:
        options->epsilon = 1e-10;
        break;
    case CUMLP_OPT_ADADELTA:
        options->learning_rate = 1.0;
        options->epsilon = 1e-6;
        break;
    default:
        break;
    }
    return CUMLP_SUCCESS;
}

static int in_unit_interval(double x) {
    return x >= 0 && x < 1;
}

static int finite_nonnegative(double x) {
    return isfinite(x) && x >= 0;
}

const char *cumlp__optimizer_options_problem(const cumlp_optimizer_options *o, char *buf,
                                             size_t size) {
    if (o->type < 0 || o->type >= CUMLP_OPTIMIZER_COUNT)
        snprintf(buf, size, "unknown optimizer type %d", o->type);
    else if (!finite_nonnegative(o->learning_rate))
        snprintf(buf, size, "learning_rate %g must be finite and >= 0", o->learning_rate);
    else if (!in_unit_interval(o->momentum))
        snprintf(buf, size, "momentum %g must be in [0, 1)", o->momentum);
    else if (!finite_nonnegative(o->weight_decay))
        snprintf(buf, size, "weight_decay %g must be finite and >= 0", o->weight_decay);
    else if (!in_unit_interval(o->beta1) || !in_unit_interval(o->beta2))
        snprintf(buf, size, "beta1 %g and beta2 %g must be in [0, 1)", o->beta1, o->beta2);
    else if (!isfinite(o->epsilon) || o->epsilon <= 0)
        snprintf(buf, size, "epsilon %g must be finite and > 0", o->epsilon);
    else if (!in_unit_interval(o->alpha) || !in_unit_interval(o->rho))
        snprintf(buf, size, "alpha %g and rho %g must be in [0, 1)", o->alpha, o->rho);
    else if (o->centered != 0 && o->centered != 1)
        snprintf(buf, size, "centered %d must be 0 or 1", o->centered);
    else if (!finite_nonnegative(o->lr_decay))
        snprintf(buf, size, "lr_decay %g must be finite and >= 0", o->lr_decay);
    else if (!finite_nonnegative(o->initial_accumulator_value))
        snprintf(buf, size, "initial_accumulator_value %g must be finite and >= 0",
                 o->initial_accumulator_value);
    else if (!finite_nonnegative(o->momentum_decay))
        snprintf(buf, size, "momentum_decay %g must be finite and >= 0", o->momentum_decay);
    else if (!finite_nonnegative(o->clip_norm) || !finite_nonnegative(o->clip_value))
        snprintf(buf, size, "clip_norm %g and clip_value %g must be finite and >= 0 (0: off)",
                 o->clip_norm, o->clip_value);
    else if (o->non_finite_error != 0 && o->non_finite_error != 1)
        snprintf(buf, size, "non_finite_error %d must be 0 or 1", o->non_finite_error);
    else
        return NULL;
    return buf;
}

unsigned cumlp__optimizer_state_slots(const cumlp_optimizer_options *o) {
    switch (o->type) {
    case CUMLP_OPT_SGD:
        return 0;
    case CUMLP_OPT_MOMENTUM:
    case CUMLP_OPT_NESTEROV:
    case CUMLP_OPT_ADAGRAD:
        return 1;
    case CUMLP_OPT_RMSPROP: /* the squares' average, the momentum buffer, the gradients' average */
        return 1u | (o->momentum > 0 ? 2u : 0u) | (o->centered ? 4u : 0u);
    default:
        return 3; /* the Adam family and Adadelta: two averages */
    }
}

/* ---- creation ------------------------------------------------------------------------------ */

void cumlp_optimizer_destroy(cumlp_optimizer *opt) {
    if (!opt) return;
    (void)cumlp__optimizer_settle(opt); /* its queued steps use the state freed below */
    cumlp_context *ctx = opt->net->ctx;
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
        ctx->ops->free(ctx, opt->state[k]);
    ctx->ops->free(ctx, opt->step_device);
    cumlp__host_free(ctx, opt->step_host);
    for (int g = 0; g < CUMLP_STEP_GRAPHS; g++)
        if (opt->graphs[g].exec) ctx->ops->graph_free(ctx, opt->graphs[g].exec);
    free(opt);
}

/* buffer[0..count) = value, exact in the reference backend's doubles (fill takes a float). */
static cumlp_status fill_value(cumlp_context *ctx, void *buffer, size_t count, double value) {
    if ((double)(float)value == value) return ctx->ops->fill(ctx, buffer, count, (float)value);
    enum { CHUNK = 4096 };
    double chunk[CHUNK];
    for (size_t i = 0; i < CHUNK; i++)
        chunk[i] = value;
    cumlp_status st = CUMLP_SUCCESS;
    for (size_t done = 0; done < count && st == CUMLP_SUCCESS; done += CHUNK) {
        size_t n = count - done < CHUNK ? count - done : CHUNK;
        st = cumlp__upload_f64(ctx, cumlp__at(ctx, buffer, done), chunk, n);
    }
    return st;
}

/* The state arenas of the options' rule, with their starting values. */
static cumlp_status create_state(cumlp_optimizer *opt) {
    cumlp_context *ctx = opt->net->ctx;
    size_t n = opt->net->num_params;
    unsigned slots = cumlp__optimizer_state_slots(&opt->options);
    cumlp_status st = CUMLP_SUCCESS;
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES && st == CUMLP_SUCCESS; k++) {
        if (!(slots & (1u << k))) continue;
        double start =
            opt->options.type == CUMLP_OPT_ADAGRAD ? opt->options.initial_accumulator_value : 0.0;
        st = ctx->ops->alloc(ctx, n, &opt->state[k]);
        if (st == CUMLP_SUCCESS) st = fill_value(ctx, opt->state[k], n, start);
    }
    return st;
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
    char why[160];
    const char *problem = cumlp__optimizer_options_problem(o, why, sizeof why);
    CUMLP_FAIL_IF(problem, ctx, CUMLP_ERROR_INVALID_VALUE, "%s", problem);
    cumlp_optimizer *opt = calloc(1, sizeof *opt);
    CUMLP_FAIL_IF(!opt, ctx, CUMLP_ERROR_ALLOC_FAILED, "out of host memory");
    opt->net = net;
    opt->options = *o;
    opt->nadam_mu_product = 1.0;
    opt->gradient_norm = -1.0;
    cumlp_status st = create_state(opt);
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
    cumlp_status st = cumlp__optimizer_settle(opt); /* the next step takes the rate to the device */
    if (st == CUMLP_SUCCESS) opt->options.learning_rate = learning_rate;
    return st;
}

double cumlp_optimizer_learning_rate(const cumlp_optimizer *opt) {
    return opt ? opt->options.learning_rate : -1.0;
}

/* The getters below read host counters that queued steps run ahead of: they wait for those steps
 * first (the optimizer is the caller's, never a const object, so settling it is fine). A device
 * error there stays in the context and shows at the next call that returns a status. */
static const cumlp_optimizer *settled(const cumlp_optimizer *opt) {
    if (opt) (void)cumlp__optimizer_settle((cumlp_optimizer *)opt);
    return opt;
}

int64_t cumlp_optimizer_step_count(const cumlp_optimizer *opt) {
    return settled(opt) ? opt->steps : -1;
}

int64_t cumlp_optimizer_skipped_steps(const cumlp_optimizer *opt) {
    return settled(opt) ? opt->skipped_steps : -1;
}

double cumlp_optimizer_gradient_norm(const cumlp_optimizer *opt) {
    return settled(opt) ? opt->gradient_norm : -1.0;
}

/* ---- one step ------------------------------------------------------------------------------ */

/* Applies the update to arena elements [begin, end), and in BF16 and FP16 refreshes their 16-bit
 * copy in the same pass. */
static cumlp_status step_range(cumlp_optimizer *opt, const cumlp_step_params *p,
                               const void *decided, size_t begin, size_t end) {
    const cumlp_network *net = opt->net;
    cumlp_context *ctx = net->ctx;
    void *s[CUMLP_OPTIMIZER_MAX_STATES];
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
        s[k] = opt->state[k] ? cumlp__at(ctx, opt->state[k], begin) : NULL;
    void *copy = net->params16 ? cumlp__at_storage(ctx, net->params16, net->storage, begin) : NULL;
    void *param = cumlp__at(ctx, net->params, begin);
    const void *grad = cumlp__at(ctx, net->grads, begin);
    if (decided)
        return ctx->ops->optimizer_step_decided(ctx, decided, opt->options.type, end - begin, param,
                                                grad, s, copy, net->storage);
    return ctx->ops->optimizer_step(ctx, p, end - begin, param, grad, s, copy, net->storage);
}

/* One pass over the arena when nothing is frozen; otherwise one per maximal run of unfrozen
 * parameters (the arena is W1 b1 W2 b2 ..., so runs are unions of adjacent W and b). With
 * decided != NULL the passes take their hyper-parameters from that device step state. */
static cumlp_status step_unfrozen(cumlp_optimizer *opt, const cumlp_step_params *p,
                                  const void *decided) {
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
                st = step_range(opt, p, decided, run_begin, cursor);
                in_run = 0;
            }
            cursor += sizes[part];
        }
    }
    if (st == CUMLP_SUCCESS && in_run) st = step_range(opt, p, decided, run_begin, cursor);
    return st;
}

/* The status and message of a step not taken because of NaN or Inf (`why`), already counted. */
static cumlp_status not_taken_status(const cumlp_optimizer *opt, const char *func,
                                     const char *why) {
    cumlp_context *ctx = opt->net->ctx;
    if (opt->options.non_finite_error)
        return cumlp__fail(ctx, CUMLP_ERROR_NON_FINITE, func,
                           "%s: no step taken (non_finite_error is set)", why);
    return cumlp__fail(ctx, CUMLP_STEP_SKIPPED, func,
                       "%s: step skipped, parameters and optimizer state unchanged", why);
}

cumlp_status cumlp__optimizer_not_taken(cumlp_optimizer *opt, const char *func, const char *why) {
    opt->summary.steps++;
    if (!opt->options.non_finite_error) {
        opt->skipped_steps++;
        opt->summary.skipped++;
    } else {
        opt->summary.failed++;
    }
    return not_taken_status(opt, func, why);
}

void cumlp__step_absorb(cumlp_optimizer *opt, const cumlp_step_state *s) {
    cumlp_network *net = opt->net;
    opt->steps = s->steps;
    opt->skipped_steps = s->skipped_steps;
    opt->nadam_mu_product = s->mu_product;
    opt->gradient_norm = s->gradient_norm;
    net->scaler = s->scaler;
    if (s->summary_steps > 0) net->grads_scale = s->step_grads_scale;
    opt->summary.steps += s->summary_steps;
    opt->summary.taken += s->summary_taken;
    opt->summary.skipped += s->summary_skipped;
    opt->summary.failed += s->summary_failed;
    opt->summary.loss += s->summary_loss_sum; /* a sum until cumlp_optimizer_sync */
    opt->summary.loss_samples += (int64_t)s->summary_samples;
    if (s->halted && !opt->halted) {
        opt->halted = s->halted;
        opt->halted_loss_sum = s->halted_loss_sum;
    }
}

void cumlp__step_state_of(const cumlp_optimizer *opt, cumlp_step_state *s) {
    const cumlp_network *net = opt->net;
    memset(s, 0, sizeof *s);
    s->options = opt->options;
    s->scaler = net->scaler;
    s->steps = opt->steps;
    s->skipped_steps = opt->skipped_steps;
    s->mu_product = opt->nadam_mu_product;
    s->gradient_norm = opt->gradient_norm;
    s->grads_scale = net->grads_scale;
    s->grads_scaled = net->grads_scaled;
    s->delta_scale = (float)net->grads_scale;
}

/* Why a step that met NaN or Inf (outcome, not an overflow) was not taken, into why[64]. */
static void non_finite_why(int outcome, double loss_sum, char why[64]) {
    /* a sum that is not finite prints as its mean would (nan, inf or -inf) */
    if (outcome == CUMLP_STEP_LOSS_NON_FINITE)
        snprintf(why, 64, "the loss is %g", loss_sum);
    else
        snprintf(why, 64, "the gradients hold NaN or Inf");
}

cumlp_status cumlp__step_not_taken(const cumlp_optimizer *opt, int outcome, double loss_sum,
                                   double scale_before, double scale_after, const char *func) {
    char why[64];
    non_finite_why(outcome, loss_sum, why);
    if (outcome != CUMLP_STEP_OVERFLOW) return not_taken_status(opt, func, why);
    /* always skipped, never an error: the scaler expects overflows */
    return cumlp__fail(opt->net->ctx, CUMLP_STEP_SKIPPED, func,
                       "the gradients, computed with loss scale %g, overflowed fp16: step "
                       "skipped, parameters and optimizer state unchanged, loss scale now %g",
                       scale_before, scale_after);
}

cumlp_status cumlp__step_outcome(cumlp_optimizer *opt, const cumlp_step_state *s,
                                 const char *func) {
    double scale_before = opt->net->scaler.scale;
    cumlp__step_absorb(opt, s);
    if (s->outcome == CUMLP_STEP_TAKEN) return CUMLP_SUCCESS;
    /* counted by the rule */
    return cumlp__step_not_taken(opt, s->outcome, s->loss_sum, scale_before, s->scaler.scale, func);
}

/* The gradients' norm and finiteness, then the update of every unfrozen parameter: the rule of
 * kernels/step_rule.h on the host. The gradient arena holds the gradients times grads_scale
 * (FP16's loss scale), which the norm and the gradients' factor divide out. */
cumlp_status cumlp__optimizer_take_step(cumlp_optimizer *opt, const char *func) {
    cumlp_network *net = opt->net;
    cumlp_context *ctx = net->ctx;
    if (ctx->sticky) return ctx->sticky;
    cumlp_step_state s;
    cumlp__step_state_of(opt, &s);
    int finite = 0;
    cumlp_status st =
        ctx->ops->check_finite(ctx, net->grads, net->num_params, &finite, &s.sum_squares);
    if (st != CUMLP_SUCCESS) return st;
    s.grads_finite = finite;
    cumlp_step_decide(&s);
    if (s.outcome == CUMLP_STEP_TAKEN) {
        cumlp__range_push(ctx, "cumlp:optimizer");
        st = step_unfrozen(opt, &s.params, NULL);
        cumlp__range_pop(ctx);
        if (st != CUMLP_SUCCESS) return st; /* nothing counted */
    }
    return cumlp__step_outcome(opt, &s, func);
}

cumlp_status cumlp__optimizer_queue_decided(cumlp_optimizer *opt, const void *step) {
    cumlp_context *ctx = opt->net->ctx;
    cumlp__range_push(ctx, "cumlp:optimizer");
    cumlp_status st = step_unfrozen(opt, NULL, step);
    cumlp__range_pop(ctx);
    return st;
}

cumlp_status cumlp_optimizer_step(cumlp_optimizer *opt) {
    CUMLP_FAIL_IF(!opt, NULL, CUMLP_ERROR_INVALID_VALUE, "opt is NULL");
    cumlp_status st = cumlp__network_settle(opt->net);
    if (st == CUMLP_SUCCESS) st = cumlp__optimizer_check_halted(opt, __func__);
    if (st != CUMLP_SUCCESS) return st;
    return cumlp__optimizer_take_step(opt, __func__);
}

/* cumlp_train_step's own checks of net and opt. */
static cumlp_status check_step_args(const cumlp_network *net, const cumlp_optimizer *opt,
                                    const char *func) {
    if (!net || !opt)
        return cumlp__fail(net ? net->ctx : NULL, CUMLP_ERROR_INVALID_VALUE, func, "%s is NULL",
                           net ? "opt" : "net");
    if (opt->net != net)
        return cumlp__fail(net->ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "the optimizer was created for another network");
    return CUMLP_SUCCESS;
}

cumlp_status cumlp__optimizer_check_halted(cumlp_optimizer *opt, const char *func) {
    if (!opt->halted) return CUMLP_SUCCESS;
    return cumlp__fail(opt->net->ctx, CUMLP_ERROR_NON_FINITE, func,
                       "a step queued earlier failed (non_finite_error is set): no step runs until "
                       "cumlp_optimizer_sync has reported it");
}

void cumlp__optimizer_add_loss(cumlp_optimizer *opt, const double *loss, int64_t samples) {
    if (!loss || !isfinite(*loss)) return;
    opt->summary.loss += *loss * (double)samples;
    opt->summary.loss_samples += samples;
}

/* The step of cumlp_train_step, in the name of func: on the device where the backend decides
 * steps there, else on the host, the loss of the latter added to the summary. */
static cumlp_status train_step(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                               const cumlp_tensor *T, double *loss, const char *func) {
    cumlp_status st = check_step_args(net, opt, func);
    if (st == CUMLP_SUCCESS) st = cumlp__network_settle(net);
    if (net && net->dist) return cumlp__dist_train_step(net, opt, X, T, st, 0, loss, func);
    if (st == CUMLP_SUCCESS) st = cumlp__optimizer_check_halted(opt, func);
    if (st != CUMLP_SUCCESS) return st;
    if (net->ctx->ops->step_decide) return cumlp__train_step_device(net, opt, X, T, loss, func);
    return cumlp__train_step_host(net, opt, X, T, loss, func);
}

cumlp_status cumlp_train_step(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                              const cumlp_tensor *T, double *loss) {
    return train_step(net, opt, X, T, loss, __func__);
}

/* The queued step with a communicator: the collective step at once (every rank makes it, a
 * failure is returned on every rank, nothing halts), a skip only counted. */
static cumlp_status train_step_collective(cumlp_network *net, cumlp_optimizer *opt,
                                          const cumlp_tensor *X, const cumlp_tensor *T,
                                          const char *func) {
    double loss = NAN;
    cumlp_status st = train_step(net, opt, X, T, &loss, func);
    if (st != CUMLP_STEP_SKIPPED) return st;
    cumlp__clear_error(net->ctx);
    return CUMLP_SUCCESS;
}

cumlp_status cumlp__train_step_now(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                                   const cumlp_tensor *T, const char *func) {
    double loss = NAN;
    cumlp_status st = train_step(net, opt, X, T, &loss, func);
    if (st == CUMLP_STEP_SKIPPED) {
        cumlp__clear_error(net->ctx);
        return CUMLP_SUCCESS;
    }
    if (st == CUMLP_ERROR_NON_FINITE && opt->options.non_finite_error) {
        opt->halted = isfinite(loss) ? CUMLP_STEP_GRADS_NON_FINITE : CUMLP_STEP_LOSS_NON_FINITE;
        opt->halted_loss_sum = loss * (double)X->cols;
        cumlp__clear_error(net->ctx);
        return CUMLP_SUCCESS;
    }
    return st;
}

cumlp_status cumlp_train_step_async(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                                    const cumlp_tensor *T) {
    if (net && net->dist) return train_step_collective(net, opt, X, T, __func__);
    cumlp_status st = check_step_args(net, opt, __func__);
    if (st == CUMLP_SUCCESS) st = cumlp__check_loss_batch(net, X, T, __func__);
    if (st != CUMLP_SUCCESS) return st;
    if (opt->halted) { /* a failure a wait read back: nothing more runs until the sync */
        opt->summary.steps++;
        opt->summary.failed++;
        return CUMLP_SUCCESS;
    }
    if (net->ctx->ops->step_decide) return cumlp__train_step_queue(net, opt, X, T, NULL, __func__);
    return cumlp__train_step_now(net, opt, X, T, __func__);
}

cumlp_status cumlp_optimizer_sync(cumlp_optimizer *opt, cumlp_step_summary *summary) {
    CUMLP_FAIL_IF(!opt, NULL, CUMLP_ERROR_INVALID_VALUE, "opt is NULL");
    (void)cumlp__optimizer_settle(opt); /* a failure is kept as lost steps */
    cumlp_status lost = opt->lost_status;
    int64_t lost_steps = opt->lost_steps;
    opt->lost_status = CUMLP_SUCCESS;
    opt->lost_steps = 0;
    cumlp_step_summary s = opt->summary;
    s.loss = s.loss_samples > 0 ? s.loss / (double)s.loss_samples : NAN;
    if (summary) *summary = s;
    memset(&opt->summary, 0, sizeof opt->summary);
    int halted = opt->halted;
    opt->halted = 0;
    if (lost != CUMLP_SUCCESS)
        return cumlp__fail(opt->net->ctx, lost, __func__,
                           "waiting for %lld queued steps failed, and what they came to is lost "
                           "(not in the summary)%s: %s",
                           (long long)lost_steps,
                           halted ? "; a step queued before them had failed (non_finite_error)"
                                  : "",
                           opt->lost_message);
    if (opt->net->ctx->sticky) return opt->net->ctx->sticky; /* a device fault ended the context */
    if (!halted) return CUMLP_SUCCESS;
    char why[64];
    non_finite_why(halted, opt->halted_loss_sum, why);
    return cumlp__fail(opt->net->ctx, CUMLP_ERROR_NON_FINITE, __func__,
                       "a queued step failed: %s (non_finite_error is set); %lld of the %lld steps "
                       "since the last sync failed or were not applied after it",
                       why, (long long)s.failed, (long long)s.steps);
}

cumlp_status cumlp__train_step_host(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                                    const cumlp_tensor *T, double *loss, const char *func) {
    cumlp_status st = cumlp_loss_backward(net, X, T, loss);
    if (st == CUMLP_ERROR_NON_FINITE) { /* cumlp_loss_backward's one cause of it: the loss */
        char why[64];
        snprintf(why, sizeof why, "the loss is %g", loss ? *loss : NAN);
        opt->gradient_norm = NAN;
        return cumlp__optimizer_not_taken(opt, func, why);
    }
    if (st != CUMLP_SUCCESS) return st;
    st = cumlp__optimizer_take_step(opt, func);
    /* the summary's loss, as the device's counts it: a finite one, the step taken or not */
    if (st == CUMLP_SUCCESS || st == CUMLP_STEP_SKIPPED || st == CUMLP_ERROR_NON_FINITE)
        cumlp__optimizer_add_loss(opt, loss, X->cols);
    return st;
}
