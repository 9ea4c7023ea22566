/*
 * train_step.c - cumlp_train_step on a backend with the device-resident step (backend.h; cuda):
 * the whole step queued without a wait, its decision (kernels/step_rule.h: the norm, NaN and
 * overflow checks, clipping, the bias corrections, the loss scaler) made on the device from a
 * cumlp_step_state that the step copies in from pinned host memory and back out at its end. The
 * host waits once, at the end, and reads the state: the optimizer's counters, the loss scaler and
 * the loss. The state on the host stays the one truth between steps (a checkpoint, a new learning
 * rate, a changed loss scaler need nothing more). The step is queued whole, so that where the
 * context uses graphs one captured graph replays it unchanged step after step.
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

/* ---- the step's CUDA graph ------------------------------------------------------------------ */

static cumlp_step_graph_key key_of(const cumlp_network *net, const cumlp_tensor *X,
                                   const cumlp_tensor *T) {
    cumlp_step_graph_key key;
    memset(&key, 0, sizeof key); /* the padding too: keys are compared with memcmp */
    key.x = X->data;
    key.t = T->data;
    key.cols = X->cols;
    key.precision = net->ctx->precision;
    key.epilogues = net->ctx->epilogues;
    key.buffers = net->buffers_generation;
    key.frozen = 1469598103934665603ull; /* FNV-1a over the flags */
    for (int l = 0; l < net->num_layers; l++) {
        unsigned flags =
            (unsigned)(net->layers[l].frozen_weights | net->layers[l].frozen_biases << 1);
        key.frozen = (key.frozen ^ flags) * 1099511628211ull;
    }
    return key;
}

static int same_key(const cumlp_step_graph_key *a, const cumlp_step_graph_key *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

/* Queues a launch of opt's graph, counting it and the epilogues it runs. */
static cumlp_status launch(cumlp_context *ctx, cumlp_optimizer *opt) {
    cumlp_status st = ctx->ops->graph_launch(ctx, opt->graph);
    if (st == CUMLP_SUCCESS) {
        ctx->graph_launches++;
        ctx->epilogue_calls += opt->graph_epilogues;
    }
    return st;
}

/* Captures the step into opt->graph and launches it. CUMLP_ERROR_NOT_SUPPORTED when the capture
 * broke (nothing of the step has run: the caller runs it launch by launch). */
static cumlp_status capture_and_launch(cumlp_network *net, cumlp_optimizer *opt,
                                       const cumlp_tensor *X, const cumlp_tensor *T,
                                       const cumlp_step_graph_key *key) {
    cumlp_context *ctx = net->ctx;
    cumlp_status st = ctx->ops->graph_begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    /* the epilogues are counted when a launch runs them, not at the capture */
    int64_t epilogues_before = ctx->epilogue_calls;
    cumlp_status queued = queue_step(net, opt, X, T);
    opt->graph_epilogues = ctx->epilogue_calls - epilogues_before;
    ctx->epilogue_calls = epilogues_before;
    void *graph = opt->graph;
    st = ctx->ops->graph_end(ctx, &graph);
    opt->graph = graph;
    /* A capture that broke (something waited or allocated, which a failed queuing may be the
     * symptom of) ran nothing: the caller runs the step launch by launch, which meets any real
     * error again. A step that failed to queue in an intact capture fails; its partial graph
     * must never be launched. */
    if (st == CUMLP_ERROR_NOT_SUPPORTED) return st;
    if (queued != CUMLP_SUCCESS || st != CUMLP_SUCCESS) {
        ctx->ops->graph_free(ctx, opt->graph);
        opt->graph = NULL;
        return queued != CUMLP_SUCCESS ? queued : st;
    }
    opt->graph_key = *key;
    ctx->graph_captures++;
    return launch(ctx, opt);
}

/* Queues the step as a graph where it can: a replay of the graph captured for this key, else a
 * capture at the key's second sight (the first, launch by launch, has sized every buffer and
 * chosen every algorithm), else launch by launch. */
static cumlp_status run_step(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                             const cumlp_tensor *T) {
    cumlp_context *ctx = net->ctx;
    if (!ctx->graphs) return queue_step(net, opt, X, T);
    cumlp_step_graph_key key = key_of(net, X, T);
    if (opt->has_refused && same_key(&key, &opt->refused_key)) return queue_step(net, opt, X, T);
    if (opt->graph && same_key(&key, &opt->graph_key)) {
        cumlp_status st = launch(ctx, opt);
        if (st != CUMLP_ERROR_NOT_SUPPORTED) return st;
        cumlp__clear_error(ctx); /* the scratch memory moved: captured again below */
    } else if (!opt->has_seen || !same_key(&key, &opt->seen_key)) {
        opt->seen_key = key;
        opt->has_seen = 1;
        return queue_step(net, opt, X, T);
    }
    cumlp_status st = capture_and_launch(net, opt, X, T, &key);
    if (st != CUMLP_ERROR_NOT_SUPPORTED) return st;
    cumlp__clear_error(ctx); /* this step cannot be a graph: never again for this key */
    opt->refused_key = key;
    opt->has_refused = 1;
    return queue_step(net, opt, X, T);
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
    st = ctx->ops->graph_begin ? run_step(net, opt, X, T) : queue_step(net, opt, X, T);
    if (st == CUMLP_SUCCESS) st = ctx->ops->synchronize(ctx);
    if (st != CUMLP_SUCCESS) return st;
    if (loss) *loss = state->loss_sum / (double)X->cols;
    return cumlp__step_outcome(opt, state, func);
}
