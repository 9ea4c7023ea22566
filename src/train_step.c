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
#include <stdio.h>
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
 * right answers counted (score: a CUMLP_SCORE_*, for the fit loop), the state out. */
static cumlp_status queue_step(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                               const cumlp_tensor *T, int score) {
    cumlp_context *ctx = net->ctx;
    cumlp_status st = ctx->ops->step_state_copy(ctx, opt->step_device, opt->step_host, 1);
    if (st == CUMLP_SUCCESS) st = cumlp__loss_backward_step(net, X, T, opt->step_device);
    if (st == CUMLP_SUCCESS)
        st = ctx->ops->step_decide(ctx, opt->step_device, net->grads, net->num_params,
                                   (double)X->cols);
    if (st == CUMLP_SUCCESS) st = cumlp__optimizer_queue_decided(opt, opt->step_device);
    if (st == CUMLP_SUCCESS && score != CUMLP_SCORE_NONE) {
        const cumlp_layer *out = &net->layers[net->num_layers - 1];
        st = ctx->ops->step_score(ctx, opt->step_device, score, (int)out->fan_out, (int)X->cols,
                                  out->a, T->data);
    }
    if (st == CUMLP_SUCCESS)
        st = ctx->ops->step_state_copy(ctx, opt->step_host, opt->step_device, 0);
    return st;
}

/* ---- the step's CUDA graph ------------------------------------------------------------------ */

static cumlp_step_graph_key key_of(const cumlp_network *net, const cumlp_tensor *X,
                                   const cumlp_tensor *T, int score) {
    cumlp_step_graph_key key;
    memset(&key, 0, sizeof key); /* the padding too: keys are compared with memcmp */
    key.x = X->data;
    key.t = T->data;
    key.cols = X->cols;
    key.precision = net->ctx->precision;
    key.epilogues = net->ctx->epilogues;
    key.buffers = net->buffers_generation;
    key.score = score;
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

/* Whether key is among the first count of keys. */
static int key_in(const cumlp_step_graph_key *keys, int count, const cumlp_step_graph_key *key) {
    for (int i = 0; i < count; i++)
        if (same_key(&keys[i], key)) return 1;
    return 0;
}

/* Adds key to a ring of CUMLP_STEP_GRAPHS keys holding *count of them, *next the slot to take. */
static void remember(cumlp_step_graph_key *keys, int *count, int *next,
                     const cumlp_step_graph_key *key) {
    keys[*next] = *key;
    *next = (*next + 1) % CUMLP_STEP_GRAPHS;
    if (*count < CUMLP_STEP_GRAPHS) ++*count;
}

/* The graph captured for key, or NULL. */
static cumlp_step_graph *graph_of(cumlp_optimizer *opt, const cumlp_step_graph_key *key) {
    for (int g = 0; g < CUMLP_STEP_GRAPHS; g++)
        if (opt->graphs[g].exec && same_key(&opt->graphs[g].key, key)) return &opt->graphs[g];
    return NULL;
}

/* Queues a launch of a graph, counting it and the epilogues it runs. */
static cumlp_status launch(cumlp_context *ctx, const cumlp_step_graph *g) {
    cumlp_status st = ctx->ops->graph_launch(ctx, g->exec);
    if (st == CUMLP_SUCCESS) {
        ctx->graph_launches++;
        ctx->epilogue_calls += g->epilogues;
    }
    return st;
}

/* Captures the step into slot g (its old graph, if any, updated in place or replaced) and launches
 * it. CUMLP_ERROR_NOT_SUPPORTED when the capture broke: nothing of the step has run, and the
 * caller runs it launch by launch. */
static cumlp_status capture_and_launch(cumlp_network *net, cumlp_optimizer *opt,
                                       const cumlp_tensor *X, const cumlp_tensor *T,
                                       const cumlp_step_graph_key *key, cumlp_step_graph *g) {
    cumlp_context *ctx = net->ctx;
    cumlp_status st = ctx->ops->graph_begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    /* the epilogues are counted when a launch runs them, not at the capture */
    int64_t epilogues_before = ctx->epilogue_calls;
    cumlp_status queued = queue_step(net, opt, X, T, key->score);
    int64_t epilogues = ctx->epilogue_calls - epilogues_before;
    ctx->epilogue_calls = epilogues_before;
    st = ctx->ops->graph_end(ctx, &g->exec);
    /* A capture that broke (something waited or allocated; the queuing may have failed for that
     * alone) ran nothing, and left the slot's graph as it was. A step that failed to queue in an
     * intact capture fails; its partial graph must never be launched. */
    if (st == CUMLP_ERROR_NOT_SUPPORTED) return st;
    if (queued != CUMLP_SUCCESS || st != CUMLP_SUCCESS) {
        ctx->ops->graph_free(ctx, g->exec);
        g->exec = NULL;
        return queued != CUMLP_SUCCESS ? queued : st;
    }
    g->key = *key;
    g->epilogues = epilogues;
    ctx->graph_captures++;
    return launch(ctx, g);
}

/* Queues the step as a graph where it can: a replay of the graph captured for this key, else a
 * capture at the key's second sight (the first, launch by launch, has sized every buffer and
 * chosen every algorithm), else launch by launch. */
static cumlp_status run_step(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                             const cumlp_tensor *T, int score) {
    cumlp_context *ctx = net->ctx;
    if (!ctx->graphs) return queue_step(net, opt, X, T, score);
    cumlp_step_graph_key key = key_of(net, X, T, score);
    if (key_in(opt->refused, opt->refused_count, &key)) return queue_step(net, opt, X, T, score);
    cumlp_step_graph *g = graph_of(opt, &key);
    if (g) {
        cumlp_status st = launch(ctx, g);
        if (st != CUMLP_ERROR_NOT_SUPPORTED) return st;
        cumlp__clear_error(ctx); /* the scratch memory moved: captured again below */
    } else if (!key_in(opt->seen, opt->seen_count, &key)) {
        remember(opt->seen, &opt->seen_count, &opt->next_seen, &key);
        return queue_step(net, opt, X, T, score);
    } else {
        g = &opt->graphs[opt->next_graph]; /* the oldest slot */
        opt->next_graph = (opt->next_graph + 1) % CUMLP_STEP_GRAPHS;
    }
    cumlp_status st = capture_and_launch(net, opt, X, T, &key, g);
    if (st != CUMLP_ERROR_NOT_SUPPORTED) return st;
    cumlp__clear_error(ctx); /* this step cannot be a graph: never again for this key */
    remember(opt->refused, &opt->refused_count, &opt->next_refused, &key);
    return queue_step(net, opt, X, T, score);
}

/* ---- the step, waited for or queued ------------------------------------------------------- */

cumlp_status cumlp__optimizer_settle(cumlp_optimizer *opt) {
    if (!opt || !opt->queued) return CUMLP_SUCCESS;
    cumlp_network *net = opt->net;
    int64_t queued = opt->queued;
    opt->queued = 0;
    if (net->queued_opt == opt) net->queued_opt = NULL;
    cumlp_status st = net->ctx->ops->synchronize(net->ctx);
    if (st != CUMLP_SUCCESS) {
        /* kept for cumlp_optimizer_sync, whoever waited: the steps' state is lost */
        opt->lost_steps += queued;
        if (opt->lost_status == CUMLP_SUCCESS) {
            opt->lost_status = st;
            snprintf(opt->lost_message, sizeof opt->lost_message, "%s", cumlp_last_error(net->ctx));
        }
        return st;
    }
    /* the last queued step's outcome is the summary's, not a status of this call */
    cumlp__step_absorb(opt, opt->step_host);
    return CUMLP_SUCCESS;
}

cumlp_status cumlp__network_settle(const cumlp_network *net) {
    return net ? cumlp__optimizer_settle(net->queued_opt) : CUMLP_SUCCESS;
}

/* What both steps do before queuing: the batch checked, the work buffers, the 16-bit weight copy
 * and the gradients' scale made, steps queued by another optimizer of net waited for, the step
 * state allocated (*pinned = 0: none could be, and the host decides the step). */
static cumlp_status prepare(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                            const cumlp_tensor *T, int *pinned, const char *func) {
    cumlp_status st = cumlp__check_loss_batch(net, X, T, func);
    if (st == CUMLP_SUCCESS && net->queued_opt != opt) st = cumlp__network_settle(net);
    if (st == CUMLP_SUCCESS) st = cumlp__network_reserve(net, X->cols);
    if (st == CUMLP_SUCCESS) st = step_buffers(opt, pinned);
    return st;
}

/* Queues the step as a graph where the context uses graphs, else launch by launch. */
static cumlp_status queue_whole_step(cumlp_network *net, cumlp_optimizer *opt,
                                     const cumlp_tensor *X, const cumlp_tensor *T, int score) {
    return net->ctx->ops->graph_begin ? run_step(net, opt, X, T, score)
                                      : queue_step(net, opt, X, T, score);
}

cumlp_status cumlp__train_step_device(cumlp_network *net, cumlp_optimizer *opt,
                                      const cumlp_tensor *X, const cumlp_tensor *T, double *loss,
                                      const char *func) {
    cumlp_context *ctx = net->ctx;
    int pinned = 0;
    cumlp_status st = prepare(net, opt, X, T, &pinned, func); /* cumlp_train_step has waited */
    if (st != CUMLP_SUCCESS) return st;
    if (!pinned) return cumlp__train_step_host(net, opt, X, T, loss, func);
    cumlp__set_grads_scale(net);
    cumlp_step_state *state = opt->step_host;
    cumlp__step_state_of(opt, state);
    state->check_loss = loss != NULL;
    st = queue_whole_step(net, opt, X, T, CUMLP_SCORE_NONE);
    if (st == CUMLP_SUCCESS) st = ctx->ops->synchronize(ctx);
    if (st != CUMLP_SUCCESS) return st;
    if (loss) *loss = state->loss_sum / (double)X->cols;
    return cumlp__step_outcome(opt, state, func);
}

/* Queued steps share one state: the host writes it before the first (the loss judged, and a
 * failure under non_finite_error halting the later steps, with the fit loop's rules) and leaves it
 * to the device until cumlp__optimizer_settle; each step's copy in reads what the step before
 * copied out. */
cumlp_status cumlp__train_step_queue(cumlp_network *net, cumlp_optimizer *opt,
                                     const cumlp_tensor *X, const cumlp_tensor *T,
                                     const cumlp_queue_rules *rules, const char *func) {
    int pinned = 0;
    cumlp_status st = prepare(net, opt, X, T, &pinned, func);
    if (st != CUMLP_SUCCESS) return st;
    if (!pinned) return cumlp__train_step_now(net, opt, X, T, func); /* the host decides */
    if (!opt->queued) {
        cumlp_step_state *state = opt->step_host;
        cumlp__set_grads_scale(net);
        cumlp__step_state_of(opt, state);
        state->check_loss = 1;
        state->halt_on_failure = 1;
        opt->queue_score = rules ? rules->score_kind : CUMLP_SCORE_NONE;
        if (rules) {
            state->max_skips_in_a_row = rules->max_skips_in_a_row;
            state->skips_in_a_row = rules->skips_in_a_row;
            state->summary_taken_loss = rules->taken_loss;
            state->summary_taken_norms = rules->taken_norms;
        }
    }
    st = queue_whole_step(net, opt, X, T, opt->queue_score);
    if (st != CUMLP_SUCCESS) return st;
    opt->queued++;
    opt->steps_queued_ever++;
    net->queued_opt = opt;
    return CUMLP_SUCCESS;
}

int cumlp__optimizer_can_queue(cumlp_optimizer *opt, cumlp_status *status) {
    int pinned = 0;
    *status = CUMLP_SUCCESS;
    if (!opt->net->ctx->ops->step_decide) return 0;
    *status = step_buffers(opt, &pinned);
    return *status == CUMLP_SUCCESS && pinned;
}
