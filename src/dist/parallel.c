/*
 * parallel.c - the collective calls on a network with a communicator (cumlp.h, "Data-parallel
 * training over MPI"): the training step and the loss's backward pass over a global batch, the
 * broadcast of parameters and optimizer state, and cumlp_fit's first agreement. Written on
 * comm.c's agreement and transports alone, so that it builds with or without MPI.
 */
#include "data/data_internal.h"
#include "dist/dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The agreement after a transport (an all-reduce or broadcast that this rank queued or ran, with
 * status `transport`) and this rank's work after it (`local`), with the caller's values (or NULL).
 * When a rank's transport failed while others may have NCCL work queued that waits for it, every
 * rank aborts the NCCL communicator. */
static cumlp_status agree_after_transport(cumlp_network *net, cumlp_status transport,
                                          cumlp_status local, cumlp_dist_values *values,
                                          const char *func) {
    cumlp_dist_values own = {0};
    cumlp_dist_values *v = values ? values : &own;
    int failed = cumlp__dist_add_sum(v, transport != CUMLP_SUCCESS ? 1.0 : 0.0);
    cumlp_status st =
        cumlp__dist_agree(net, transport != CUMLP_SUCCESS ? transport : local, v, func);
    if (st != CUMLP_SUCCESS && v->sums[failed] > 0) cumlp__dist_abort(net);
    return st;
}

/* NCCL only queues its collectives: before any rank waits for its stream (which holds them), the
 * ranks agree that every one of them queued its part. The MPI transports have finished, and their
 * status is agreed on with the work after them. Returns the status to carry into that agreement. */
static cumlp_status settle_queued_transport(cumlp_network *net, cumlp_status transport,
                                            cumlp_status *agreed, const char *func) {
    *agreed = CUMLP_SUCCESS;
    if (cumlp_network_transport(net) != CUMLP_TRANSPORT_NCCL) return transport;
    *agreed = agree_after_transport(net, transport, CUMLP_SUCCESS, NULL, func);
    return CUMLP_SUCCESS;
}

/* ---- the training step ---------------------------------------------------------------------- */

/* The forward and backward pass of this rank's shard (X, T; NULL for an empty one), the ranks'
 * gradients summed, each rank's divided by the global batch's columns first: *global_cols, or when
 * 0 the sum of the shards' columns, agreed on first and stored there. *loss (when loss is not
 * NULL) receives the global batch's mean loss, and *transport the status of this rank's
 * all-reduce, which the caller agrees on. Returns the agreed status of the passes. */
static cumlp_status backward_and_reduce(cumlp_network *net, const cumlp_tensor *X,
                                        const cumlp_tensor *T, cumlp_status local,
                                        int64_t *global_cols, double *loss, cumlp_status *transport,
                                        const char *func) {
    cumlp_context *ctx = net->ctx;
    int64_t cols = local == CUMLP_SUCCESS && X ? X->cols : 0;
    *transport = CUMLP_SUCCESS;
    if (*global_cols == 0) {
        cumlp_dist_values count = {0};
        cumlp__dist_add_sum(&count, (double)cols);
        cumlp_status st = cumlp__dist_agree(net, local, &count, func);
        if (st != CUMLP_SUCCESS) return st;
        *global_cols = (int64_t)count.sums[0];
    }
    double loss_sum = 0;
    if (local == CUMLP_SUCCESS && cols > 0)
        local =
            cumlp__loss_backward_local(net, X, T, (double)*global_cols, loss ? &loss_sum : NULL);
    else if (local == CUMLP_SUCCESS) {          /* an empty shard adds nothing to the sum */
        local = cumlp__network_reserve(net, 0); /* follows the context's precision, as a pass */
        cumlp__set_grads_scale(net); /* what the other ranks' gradients are multiplied by */
        if (local == CUMLP_SUCCESS) local = ctx->ops->fill(ctx, net->grads, net->num_params, 0.0f);
    }
    cumlp_dist_values losses = {0};
    cumlp__dist_add_sum(&losses, loss_sum);
    const double scale[2] = {net->grads_scale, net->grads_scaled};
    cumlp__dist_add_same(&losses, cumlp__dist_hash(CUMLP_DIST_HASH_START, scale, sizeof scale),
                         "the loss scale (the precision, and the loss scaler that "
                         "cumlp_network_broadcast copies from rank 0)");
    cumlp_status st = cumlp__dist_agree(net, local, &losses, func);
    if (st != CUMLP_SUCCESS) return st;
    *transport = cumlp__dist_allreduce_gradients(net, func);
    if (loss) *loss = losses.sums[0] / (double)*global_cols;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp__dist_loss_backward(cumlp_network *net, const cumlp_tensor *X,
                                       const cumlp_tensor *T, cumlp_status local, double *loss,
                                       const char *func) {
    double value = 0;
    int64_t global_cols = 0; /* agreed on */
    cumlp_status transport;
    cumlp_status st =
        backward_and_reduce(net, X, T, local, &global_cols, loss ? &value : NULL, &transport, func);
    if (st == CUMLP_SUCCESS) st = agree_after_transport(net, transport, CUMLP_SUCCESS, NULL, func);
    if (st != CUMLP_SUCCESS) return st;
    if (!loss) return CUMLP_SUCCESS;
    *loss = value;
    if (!isfinite(value))
        return cumlp__fail(net->ctx, CUMLP_ERROR_NON_FINITE, func, "the loss is %g", value);
    return CUMLP_SUCCESS;
}

cumlp_status cumlp__dist_train_step(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                                    const cumlp_tensor *T, cumlp_status local, int64_t global_cols,
                                    double *loss, const char *func) {
    /* cumlp_train_step's batch is checked here; cumlp_fit's shards are its own views */
    if (local == CUMLP_SUCCESS && (X || global_cols == 0))
        local = cumlp__check_loss_batch(net, X, T, func);
    double value = NAN;
    cumlp_status transport;
    cumlp_status st =
        backward_and_reduce(net, X, T, local, &global_cols, loss ? &value : NULL, &transport, func);
    if (st == CUMLP_SUCCESS) transport = settle_queued_transport(net, transport, &st, func);
    if (st != CUMLP_SUCCESS) return st;
    if (loss) *loss = value;
    cumlp_status step = CUMLP_SUCCESS;
    if (transport == CUMLP_SUCCESS && loss && !isfinite(value)) {
        char why[64];
        snprintf(why, sizeof why, "the loss is %g", value);
        opt->gradient_norm = NAN;
        step = cumlp__optimizer_not_taken(opt, func, why);
    } else if (transport == CUMLP_SUCCESS) {
        step = cumlp__optimizer_take_step(opt, func);
    }
    /* A skip (or CUMLP_ERROR_NON_FINITE instead of one) is decided on the loss and gradients that
     * every rank shares: every rank made it. Anything else failed here alone. */
    int shared = step == CUMLP_STEP_SKIPPED || step == CUMLP_ERROR_NON_FINITE;
    st = agree_after_transport(net, transport, shared ? CUMLP_SUCCESS : step, NULL, func);
    /* the summary's loss: a finite one of a step decided, taken or not (the global batch's) */
    if (st == CUMLP_SUCCESS && (step == CUMLP_SUCCESS || shared))
        cumlp__optimizer_add_loss(opt, loss, global_cols);
    return st != CUMLP_SUCCESS ? st : step;
}

/* ---- broadcast ------------------------------------------------------------------------------ */

cumlp_status cumlp_network_broadcast(cumlp_network *net, cumlp_optimizer *opt) {
    CUMLP_FAIL_IF(!net, NULL, CUMLP_ERROR_INVALID_VALUE, "net is NULL");
    cumlp_context *ctx = net->ctx;
    cumlp_status local = CUMLP_SUCCESS;
    if (opt && opt->net != net)
        local = cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, __func__,
                            "the optimizer was created for another network");
    if (!net->dist) return local != CUMLP_SUCCESS ? local : ctx->sticky;
    if (local == CUMLP_SUCCESS) local = cumlp__network_settle(net);
    int with_state = opt && local == CUMLP_SUCCESS;
    unsigned slots = with_state ? cumlp__optimizer_state_slots(&opt->options) : 0;
    cumlp_dist_values v = {0};
    cumlp__dist_add_same(&v, opt != NULL, "whether an optimizer is broadcast");
    cumlp__dist_add_same(&v, with_state ? (uint64_t)opt->options.type : 0, "the optimizer's type");
    cumlp__dist_add_same(&v, slots, "the optimizer's state arenas");
    cumlp_status st = cumlp__dist_agree(net, local, &v, __func__);
    if (st != CUMLP_SUCCESS) return st;

    cumlp_status transport =
        cumlp__dist_broadcast_buffer(net, net->params, net->num_params, __func__);
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES && with_state; k++)
        if (transport == CUMLP_SUCCESS && opt->state[k])
            transport = cumlp__dist_broadcast_buffer(net, opt->state[k], net->num_params, __func__);
    /* NCCL's broadcasts are queued: every rank waits for them here, once every rank queued its own,
     * so that none outlives this call (a rank's next wait on the stream could come after MPI
     * calls of its own that the others do not make then). */
    transport = settle_queued_transport(net, transport, &st, __func__);
    if (st != CUMLP_SUCCESS) return st;
    if (cumlp_network_transport(net) == CUMLP_TRANSPORT_NCCL)
        transport = ctx->ops->synchronize(ctx);
    /* The host side of the optimizer and the loss scaler travel as sums to which only rank 0
     * adds: exact. */
    int root = cumlp__dist_rank(net) == 0;
    cumlp_dist_values scalars = {0};
    int steps = cumlp__dist_add_sum(&scalars, with_state && root ? (double)opt->steps : 0.0);
    int product = cumlp__dist_add_sum(&scalars, with_state && root ? opt->nadam_mu_product : 0.0);
    const cumlp_loss_scaler *s = &net->scaler;
    const double scaler[] = {s->scale,           s->growth_factor, s->backoff_factor,
                             s->growth_interval, s->clean_steps,   s->overflows};
    int first = scalars.num_sums;
    for (size_t k = 0; k < sizeof scaler / sizeof *scaler; k++)
        cumlp__dist_add_sum(&scalars, root ? scaler[k] : 0.0);
    st = agree_after_transport(net, transport, CUMLP_SUCCESS, &scalars, __func__);
    if (st != CUMLP_SUCCESS) return st;
    if (with_state) {
        opt->steps = (int64_t)scalars.sums[steps];
        opt->nadam_mu_product = scalars.sums[product];
    }
    const double *got = &scalars.sums[first];
    net->scaler = (cumlp_loss_scaler){.scale = got[0],
                                      .growth_factor = got[1],
                                      .backoff_factor = got[2],
                                      .growth_interval = (int64_t)got[3],
                                      .clean_steps = (int64_t)got[4],
                                      .overflows = (int64_t)got[5]};
    cumlp__network_parameters_changed(net); /* the 16-bit weight copy is made anew */
    return CUMLP_SUCCESS;
}

/* ---- cumlp_fit's agreement ------------------------------------------------------------------ */

static uint64_t hash_doubles(const double *values, size_t count) {
    return cumlp__dist_hash(CUMLP_DIST_HASH_START, values, count * sizeof *values);
}

/* The options that decide the ranks' steps and the calls they make together. */
static uint64_t options_hash(const cumlp_fit_options *o) {
    const double values[] = {o->epochs,
                             (double)o->batch_size,
                             o->shuffle,
                             (double)o->seed,
                             o->schedule,
                             o->lr_gamma,
                             o->lr_step_epochs,
                             o->lr_min,
                             o->target_loss,
                             o->patience,
                             o->min_delta,
                             o->restore_best,
                             o->callback != 0,
                             (double)o->callback_every,
                             o->max_consecutive_skips,
                             o->warmup_epochs,
                             o->num_milestones,
                             o->lr_power};
    uint64_t h = hash_doubles(values, sizeof values / sizeof values[0]);
    for (int i = 0; i < o->num_milestones; i++)
        h = cumlp__dist_hash(h, &o->milestones[i], sizeof o->milestones[i]);
    return h;
}

static uint64_t optimizer_hash(const cumlp_optimizer *opt) {
    const cumlp_optimizer_options *o = &opt->options;
    const double values[] = {o->type,
                             o->learning_rate,
                             o->momentum,
                             o->weight_decay,
                             o->beta1,
                             o->beta2,
                             o->epsilon,
                             o->alpha,
                             o->rho,
                             o->centered,
                             o->lr_decay,
                             o->initial_accumulator_value,
                             o->momentum_decay,
                             o->clip_norm,
                             o->clip_value,
                             o->non_finite_error,
                             (double)opt->steps,
                             opt->nadam_mu_product};
    return hash_doubles(values, sizeof values / sizeof values[0]);
}

static uint64_t dataset_hash(const cumlp_dataset *ds) {
    if (!ds) return 0;
    const int64_t shape[4] = {ds->n_samples, ds->n_features, ds->n_outputs, ds->num_classes};
    uint64_t h = cumlp__dist_hash(CUMLP_DIST_HASH_START, shape, sizeof shape);
    h = cumlp__dist_hash(h, ds->x, (size_t)(ds->n_features * ds->n_samples) * sizeof(float));
    return cumlp__dist_hash(h, ds->y, (size_t)(ds->n_outputs * ds->n_samples) * sizeof(float));
}

/* The parameters' hash, read in double (exact on every backend). */
static cumlp_status parameters_hash(cumlp_network *net, uint64_t *hash, const char *func) {
    double *host = malloc(net->num_params * sizeof *host);
    if (!host) return cumlp__fail(net->ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory");
    cumlp_status st = cumlp_network_get_parameters_f64(net, host, (int64_t)net->num_params);
    if (st == CUMLP_SUCCESS) *hash = hash_doubles(host, net->num_params);
    free(host);
    return st;
}

cumlp_status cumlp__dist_fit_agree(cumlp_network *net, const cumlp_optimizer *opt,
                                   const cumlp_dataset *train, const cumlp_dataset *validation,
                                   const cumlp_fit_options *options, cumlp_status local,
                                   const char *func) {
    uint64_t params = 0;
    if (local == CUMLP_SUCCESS) local = parameters_hash(net, &params, func);
    int ok = local == CUMLP_SUCCESS;
    cumlp_dist_values v = {0};
    cumlp__dist_add_same(&v, ok ? options_hash(options) : 0, "the fit options");
    cumlp__dist_add_same(&v, ok ? optimizer_hash(opt) : 0, "the optimizer's options and steps");
    cumlp__dist_add_same(&v, ok ? dataset_hash(train) : 0, "the training set");
    cumlp__dist_add_same(&v, ok ? dataset_hash(validation) : 0, "the validation set");
    cumlp__dist_add_same(&v, params,
                         "the parameters (cumlp_network_broadcast makes them rank 0's)");
    cumlp__dist_add_same(&v, (uint64_t)net->ctx->precision, "the precision");
    return cumlp__dist_agree(net, local, &v, func);
}
