/*
 * train_step.c - cumlp_train_step on a backend with the device-resident step (backend.h; cuda):
 * the whole step queued without a wait, its decision (kernels/step_rule.h: the norm, NaN and
 * overflow checks, clipping, the bias corrections, the loss scaler) made on the device from a
 * cumlp_step_state that the step copies in from pinned host memory and back out at its end. The
 * host waits once, at the end, and reads the state: the optimizer's counters, the loss scaler and
 * the loss. The state on the host stays the one truth between steps (a checkpoint, a new learning
 * rate, a changed loss scaler need nothing more).
 */
#include "internal.h"

#include <math.h>
#include <string.h>

/* The optimizer's step state in pinned host memory and on the device, made once. Without pinned
 * memory (the system will not page-lock more) the optimizer's steps are decided on the host, as
 * the copies of a context without staging memory go direct (cuda.c): *pinned = 0. */
static cumlp_status step_buffers(cumlp_optimizer *opt, int *pinned) {
    cumlp_context *ctx = opt->net->ctx;
    *pinned = !opt->step_pinned_failed;
    if (opt->step_device || opt->step_pinned_failed) return CUMLP_SUCCESS;
    if (ctx->ops->host_alloc(ctx, sizeof(cumlp_step_state), &opt->step_host) != CUMLP_SUCCESS) {
        cumlp__clear_error(ctx);
        opt->step_host = NULL;
        opt->step_pinned_failed = 1;
        *pinned = 0;
        return CUMLP_SUCCESS;
    }
    size_t elements = (sizeof(cumlp_step_state) + ctx->ops->elem_size - 1) / ctx->ops->elem_size;
    cumlp_status st = ctx->ops->alloc(ctx, elements, &opt->step_device);
    if (st != CUMLP_SUCCESS) {
        ctx->ops->host_free(ctx, opt->step_host);
        opt->step_host = NULL;
        opt->step_device = NULL;
    }
    return st;
}

/* Queues the step: the state in, the forward and backward passes, the decision, the update, the
 * state out. */
static cumlp_status queue_step(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                               const cumlp_tensor *T) {
    cumlp_context *ctx = net->ctx;
    cumlp_status st = ctx->ops->step_state_copy(ctx, opt->step_device, opt->step_host, 1);
    if (st == CUMLP_SUCCESS) st = cumlp__loss_backward_step(net, X, T, opt->step_device);
    if (st == CUMLP_SUCCESS)
        st = ctx->ops->step_decide(ctx, opt->step_device, net->grads, net->num_params);
    if (st == CUMLP_SUCCESS) st = cumlp__optimizer_queue_decided(opt, opt->step_device);
    if (st == CUMLP_SUCCESS)
        st = ctx->ops->step_state_copy(ctx, opt->step_host, opt->step_device, 0);
    return st;
}

cumlp_status cumlp__train_step_device(cumlp_network *net, cumlp_optimizer *opt,
                                      const cumlp_tensor *X, const cumlp_tensor *T, double *loss,
                                      const char *func) {
    cumlp_context *ctx = net->ctx;
    int pinned = 0;
    cumlp_status st = cumlp__check_loss_batch(net, X, T, func);
    /* the work buffers, the 16-bit weight copy and the gradients' scale before the state is made */
    if (st == CUMLP_SUCCESS) st = cumlp__network_reserve(net, X->cols);
    if (st == CUMLP_SUCCESS) st = step_buffers(opt, &pinned);
    if (st != CUMLP_SUCCESS) return st;
    if (!pinned) return cumlp__train_step_host(net, opt, X, T, loss, func);
    cumlp__set_grads_scale(net);
    cumlp_step_state *state = opt->step_host;
    cumlp__step_state_of(opt, state);
    state->check_loss = loss != NULL;
    st = queue_step(net, opt, X, T);
    if (st == CUMLP_SUCCESS) st = ctx->ops->synchronize(ctx);
    if (st != CUMLP_SUCCESS) return st;
    if (loss) *loss = state->loss_sum / (double)X->cols;
    return cumlp__step_outcome(opt, state, func);
}
