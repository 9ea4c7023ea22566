/* fit.c - the training loop (cumlp_fit), whole-dataset evaluation and prediction. On a network
 * with a communicator (data-parallel training, src/dist/), cumlp_fit trains each rank on its shard
 * of every global batch and cumlp_evaluate scores each rank's shard of the dataset; the ranks agree
 * at every step that communicates (see src/dist/dist.h). */
#include "data/data_internal.h"
#include "dist/dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_EVAL_BATCH 256
#define PI                 3.14159265358979323846

static double now_seconds(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- options and schedules ----------------------------------------------------------------- */

cumlp_status cumlp_fit_defaults(cumlp_fit_options *options) {
    CUMLP_FAIL_IF(!options, NULL, CUMLP_ERROR_INVALID_VALUE, "options is NULL");
    memset(options, 0, sizeof *options);
    options->epochs = 10;
    options->batch_size = 32;
    options->shuffle = 1;
    options->seed = 1;
    options->schedule = CUMLP_LR_CONSTANT;
    options->lr_gamma = 0.1;
    options->lr_step_epochs = 10;
    options->lr_min = 0.0;
    options->target_loss = 0.0;
    options->patience = 0;
    options->min_delta = 0.0;
    options->restore_best = 0;
    options->callback = NULL;
    options->user_data = NULL;
    options->callback_every = 0;
    options->max_consecutive_skips = 10;
    options->warmup_epochs = 0;
    options->milestones = NULL;
    options->num_milestones = 0;
    options->lr_power = 1.0;
    return CUMLP_SUCCESS;
}

/* Whether the milestones (if any) are strictly increasing epochs >= 0; MULTISTEP needs one. */
static int milestones_valid(const cumlp_fit_options *o) {
    if (o->num_milestones < 0 || (o->num_milestones > 0 && !o->milestones)) return 0;
    if (o->schedule == CUMLP_LR_MULTISTEP && o->num_milestones == 0) return 0;
    for (int i = 0; i < o->num_milestones; i++)
        if (o->milestones[i] < 0 || (i > 0 && o->milestones[i] <= o->milestones[i - 1])) return 0;
    return 1;
}

static cumlp_status check_options(const cumlp_context *ctx, const char *func,
                                  const cumlp_fit_options *o) {
    const char *bad = NULL;
    if (o->epochs < 1)
        bad = "epochs must be >= 1";
    else if (o->batch_size < 1 || o->batch_size > CUMLP_MAX_DIM)
        bad = "batch_size must be between 1 and 2^31-1";
    else if (o->schedule < 0 || o->schedule >= CUMLP_SCHEDULE_COUNT)
        bad = "schedule is not a cumlp_lr_schedule";
    else if (!(o->lr_gamma > 0 && o->lr_gamma <= 1))
        bad = "lr_gamma must be in (0, 1]";
    else if (o->lr_step_epochs < 1)
        bad = "lr_step_epochs must be >= 1";
    else if (!(o->lr_min >= 0) || !isfinite(o->lr_min))
        bad = "lr_min must be finite and >= 0";
    else if (!isfinite(o->target_loss) || o->target_loss < 0)
        bad = "target_loss must be finite and >= 0";
    else if (o->patience < 0)
        bad = "patience must be >= 0";
    else if (!(o->min_delta >= 0) || !isfinite(o->min_delta))
        bad = "min_delta must be finite and >= 0";
    else if (o->callback_every < 0)
        bad = "callback_every must be >= 0";
    else if (o->max_consecutive_skips < 0)
        bad = "max_consecutive_skips must be >= 0";
    else if (o->warmup_epochs < 0)
        bad = "warmup_epochs must be >= 0";
    else if (!milestones_valid(o))
        bad = "milestones must be num_milestones strictly increasing epochs >= 0 (at least one "
              "for multistep)";
    else if (!(o->lr_power > 0) || !isfinite(o->lr_power))
        bad = "lr_power must be finite and > 0";
    if (bad) return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "%s", bad);
    return CUMLP_SUCCESS;
}

/* The schedule's rate of `epoch`, before the warm-up. */
static double scheduled_rate(const cumlp_fit_options *o, double base, int epoch) {
    double progress = (double)epoch / o->epochs; /* in [0, 1) for the epochs of a run */
    int passed = 0;
    switch (o->schedule) {
    case CUMLP_LR_STEP:
        return base * pow(o->lr_gamma, (double)(epoch / o->lr_step_epochs));
    case CUMLP_LR_EXPONENTIAL:
        return base * pow(o->lr_gamma, (double)epoch);
    case CUMLP_LR_COSINE:
        return o->lr_min + (base - o->lr_min) * 0.5 * (1.0 + cos(PI * progress));
    case CUMLP_LR_MULTISTEP:
        while (passed < o->num_milestones && o->milestones[passed] <= epoch)
            passed++;
        return base * pow(o->lr_gamma, (double)passed);
    case CUMLP_LR_LINEAR:
        return o->lr_min + (base - o->lr_min) * fmax(0.0, 1.0 - progress);
    case CUMLP_LR_POLY:
        return o->lr_min + (base - o->lr_min) * pow(fmax(0.0, 1.0 - progress), o->lr_power);
    default:
        return base;
    }
}

static double schedule_rate(const cumlp_fit_options *o, double base, int epoch) {
    double rate = scheduled_rate(o, base, epoch);
    if (epoch < o->warmup_epochs) rate *= (double)(epoch + 1) / (o->warmup_epochs + 1.0);
    return rate;
}

cumlp_status cumlp_schedule_learning_rate(const cumlp_fit_options *options, double base_rate,
                                          int epoch, double *rate) {
    CUMLP_FAIL_IF(!options || !rate, NULL, CUMLP_ERROR_INVALID_VALUE, "%s is NULL",
                  options ? "rate" : "options");
    cumlp_status st = check_options(NULL, __func__, options);
    if (st != CUMLP_SUCCESS) return st;
    CUMLP_FAIL_IF(!isfinite(base_rate) || base_rate < 0 || epoch < 0, NULL,
                  CUMLP_ERROR_INVALID_VALUE,
                  "base_rate %g must be finite and >= 0 and epoch %d >= 0", base_rate, epoch);
    *rate = schedule_rate(options, base_rate, epoch);
    return CUMLP_SUCCESS;
}

/* ---- shared checks and scoring ------------------------------------------------------------- */

static cumlp_status check_dataset(const cumlp_network *net, const cumlp_dataset *ds,
                                  const char *func, const char *what) {
    if (ds->n_features != cumlp_network_width(net, 0) ||
        ds->n_outputs != cumlp_network_width(net, net->num_layers))
        return cumlp__fail(net->ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "%s has %lld features and %lld outputs but the network takes %lld and "
                           "gives %lld",
                           what, (long long)ds->n_features, (long long)ds->n_outputs,
                           (long long)cumlp_network_width(net, 0),
                           (long long)cumlp_network_width(net, net->num_layers));
    return CUMLP_SUCCESS;
}

/* How a pass counts right answers (a CUMLP_SCORE_*, kernels/step_rule.h): not at all
 * (regression), by the largest output (classes, one-hot targets), or by the side of 0.5 (one
 * sigmoid output with binary cross-entropy: a binary classifier, whatever the dataset's class
 * count). */
static int accuracy_of(const cumlp_network *net, const cumlp_dataset *ds) {
    if (ds->n_outputs == 1 && net->loss == CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY)
        return CUMLP_SCORE_BINARY;
    return ds->num_classes > 0 ? CUMLP_SCORE_LARGEST : CUMLP_SCORE_NONE;
}

/* Running totals of a pass over samples. */
typedef struct score {
    double loss_sum; /* sum over samples of the per-sample loss */
    int64_t correct; /* samples classified right (see accuracy_of) */
    double sq_sum;   /* sum over samples and outputs of (output - target)^2 */
    int64_t samples;
} score;

/* Adds cols columns of outputs (n_out x cols) against their targets to s. */
static void score_outputs(score *s, const float *out, const float *target, int64_t n_out,
                          int64_t cols, int kind) {
    for (int64_t j = 0; j < cols; j++) {
        const float *o = out + j * n_out, *t = target + j * n_out;
        s->correct += cumlp_column_correct(o, t, n_out, kind);
        for (int64_t k = 0; k < n_out; k++) {
            double d = (double)o[k] - (double)t[k];
            s->sq_sum += d * d;
        }
    }
}

/* Downloads the output layer's activations of the last forward pass (n_out x cols). */
static cumlp_status download_outputs(cumlp_network *net, int64_t cols, float *host) {
    cumlp_context *ctx = net->ctx;
    const cumlp_layer *L = &net->layers[net->num_layers - 1];
    return ctx->ops->download(ctx, L->a, host, (size_t)(L->fan_out * cols));
}

/* ---- evaluation and prediction ------------------------------------------------------------- */

/* Device batch tensors X (n_in x B) and T (n_out x B), or only X when with_targets is 0. */
typedef struct batch_tensors {
    cumlp_tensor *x, *t;
} batch_tensors;

static void batch_destroy(batch_tensors *b) {
    cumlp_tensor_destroy(b->x);
    cumlp_tensor_destroy(b->t);
    b->x = b->t = NULL;
}

static cumlp_status batch_create(cumlp_context *ctx, int64_t n_in, int64_t n_out, int64_t cols,
                                 batch_tensors *b) {
    b->x = b->t = NULL;
    cumlp_status st = cumlp_tensor_create(ctx, n_in, cols, &b->x);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_create(ctx, n_out, cols, &b->t);
    if (st != CUMLP_SUCCESS) batch_destroy(b);
    return st;
}

/* Views of the first cols columns of b (the batch tensors themselves when full). */
static cumlp_status batch_views(batch_tensors *b, int64_t cols, batch_tensors *v) {
    v->x = v->t = NULL;
    cumlp_status st = cumlp_tensor_create_view(b->x, 0, cols, &v->x);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_create_view(b->t, 0, cols, &v->t);
    if (st != CUMLP_SUCCESS) batch_destroy(v);
    return st;
}

/* The arguments of evaluate and predict; predict reads the features only (targets: 0). */
static cumlp_status check_net_ds(const cumlp_network *net, const cumlp_dataset *ds,
                                 int64_t *batch_size, const char *func, int targets) {
    if (!net) return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "net is NULL");
    if (!ds) return cumlp__fail(net->ctx, CUMLP_ERROR_INVALID_VALUE, func, "ds is NULL");
    if (*batch_size < 0 || *batch_size > CUMLP_MAX_DIM)
        return cumlp__fail(net->ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "batch_size %lld is out of range", (long long)*batch_size);
    if (*batch_size == 0) *batch_size = DEFAULT_EVAL_BATCH;
    if (*batch_size > ds->n_samples) *batch_size = ds->n_samples;
    if (net->ctx->sticky) return net->ctx->sticky;
    if (!targets && ds->n_features != cumlp_network_width(net, 0))
        return cumlp__fail(net->ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "the dataset has %lld features but the network takes %lld",
                           (long long)ds->n_features, (long long)cumlp_network_width(net, 0));
    return targets ? check_dataset(net, ds, func, "the dataset") : CUMLP_SUCCESS;
}

/* One evaluated batch of cols samples starting at `first`. */
static cumlp_status eval_batch(cumlp_network *net, const cumlp_dataset *ds, batch_tensors *b,
                               int64_t first, int64_t cols, float *out, score *s) {
    batch_tensors v;
    cumlp_status st = batch_views(b, cols, &v);
    if (st != CUMLP_SUCCESS) return st;
    double loss = 0;
    st = cumlp_tensor_upload(v.x, ds->x + first * ds->n_features, ds->n_features * cols);
    if (st == CUMLP_SUCCESS)
        st = cumlp_tensor_upload(v.t, ds->y + first * ds->n_outputs, ds->n_outputs * cols);
    if (st == CUMLP_SUCCESS) st = cumlp_evaluate_loss(net, v.x, v.t, &loss);
    if (st == CUMLP_SUCCESS) st = download_outputs(net, cols, out);
    if (st == CUMLP_SUCCESS) {
        s->loss_sum += loss * (double)cols;
        s->samples += cols;
        score_outputs(s, out, ds->y + first * ds->n_outputs, ds->n_outputs, cols,
                      accuracy_of(net, ds));
    }
    batch_destroy(&v);
    return st;
}

/* Scores samples [begin, end) of ds in batches of batch_size into *s. */
static cumlp_status score_samples(cumlp_network *net, const cumlp_dataset *ds, int64_t begin,
                                  int64_t end, int64_t batch_size, score *s, const char *func) {
    batch_tensors b;
    float *out = malloc((size_t)(ds->n_outputs * batch_size) * sizeof *out);
    if (!out) return cumlp__fail(net->ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of memory");
    cumlp_status st = batch_create(net->ctx, ds->n_features, ds->n_outputs, batch_size, &b);
    for (int64_t first = begin; st == CUMLP_SUCCESS && first < end; first += batch_size) {
        int64_t cols = end - first < batch_size ? end - first : batch_size;
        st = eval_batch(net, ds, &b, first, cols, out, s);
    }
    batch_destroy(&b);
    free(out);
    return st;
}

/* cumlp_evaluate on a network with a communicator: this rank scores its shard, the ranks' scores
 * are summed. `local`: the status of the call's checks. */
static cumlp_status evaluate_shard(cumlp_network *net, const cumlp_dataset *ds, int64_t batch_size,
                                   score *s, cumlp_status local, const char *func) {
    int64_t first = 0, count = 0;
    if (local == CUMLP_SUCCESS) {
        cumlp__shard(ds->n_samples, cumlp__dist_rank(net), cumlp__dist_ranks(net), &first, &count);
        if (count > 0) local = score_samples(net, ds, first, first + count, batch_size, s, func);
    }
    int ok = local == CUMLP_SUCCESS;
    const int64_t shape[4] = {ok ? ds->n_samples : 0, ok ? ds->n_features : 0,
                              ok ? ds->n_outputs : 0, ok ? ds->num_classes : 0};
    cumlp_dist_values v = {0};
    int loss = cumlp__dist_add_sum(&v, s->loss_sum);
    int correct = cumlp__dist_add_sum(&v, (double)s->correct);
    int sq = cumlp__dist_add_sum(&v, s->sq_sum);
    int samples = cumlp__dist_add_sum(&v, (double)s->samples);
    cumlp__dist_add_same(&v, cumlp__dist_hash(CUMLP_DIST_HASH_START, shape, sizeof shape),
                         "the dataset's shape");
    cumlp_status st = cumlp__dist_agree(net, local, &v, func);
    s->loss_sum = v.sums[loss];
    s->correct = (int64_t)v.sums[correct];
    s->sq_sum = v.sums[sq];
    s->samples = (int64_t)v.sums[samples];
    return st;
}

cumlp_status cumlp_evaluate(cumlp_network *net, const cumlp_dataset *ds, int64_t batch_size,
                            cumlp_eval_result *result) {
    cumlp_status st = check_net_ds(net, ds, &batch_size, __func__, 1);
    if (st == CUMLP_SUCCESS && !result)
        st = cumlp__fail(net->ctx, CUMLP_ERROR_INVALID_VALUE, __func__, "result is NULL");
    score s = {0, 0, 0, 0};
    if (net && net->dist)
        st = evaluate_shard(net, ds, batch_size, &s, st, __func__);
    else if (st == CUMLP_SUCCESS)
        st = score_samples(net, ds, 0, ds->n_samples, batch_size, &s, __func__);
    if (st != CUMLP_SUCCESS) return st;
    result->loss = s.loss_sum / (double)s.samples;
    result->accuracy =
        accuracy_of(net, ds) != CUMLP_SCORE_NONE ? (double)s.correct / (double)s.samples : -1.0;
    result->mse = s.sq_sum / ((double)s.samples * (double)ds->n_outputs);
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_predict(cumlp_network *net, const cumlp_dataset *ds, int64_t batch_size,
                           float *out, int64_t count) {
    cumlp_status st = check_net_ds(net, ds, &batch_size, __func__, 0);
    if (st != CUMLP_SUCCESS) return st;
    CUMLP_FAIL_IF(!out, net->ctx, CUMLP_ERROR_INVALID_VALUE, "out is NULL");
    int64_t n_out = cumlp_network_width(net, net->num_layers);
    CUMLP_FAIL_IF(count != n_out * ds->n_samples, net->ctx, CUMLP_ERROR_INVALID_VALUE,
                  "count is %lld but the outputs take %lld x %lld", (long long)count,
                  (long long)n_out, (long long)ds->n_samples);
    batch_tensors b; /* t holds the outputs */
    st = batch_create(net->ctx, ds->n_features, n_out, batch_size, &b);
    for (int64_t first = 0; st == CUMLP_SUCCESS && first < ds->n_samples; first += batch_size) {
        int64_t cols = ds->n_samples - first < batch_size ? ds->n_samples - first : batch_size;
        batch_tensors v;
        st = batch_views(&b, cols, &v);
        if (st == CUMLP_SUCCESS)
            st = cumlp_tensor_upload(v.x, ds->x + first * ds->n_features, ds->n_features * cols);
        if (st == CUMLP_SUCCESS) st = cumlp_forward(net, v.x, v.t);
        if (st == CUMLP_SUCCESS) st = cumlp_tensor_download(v.t, out + first * n_out, n_out * cols);
        batch_destroy(&v);
    }
    batch_destroy(&b);
    return st;
}

/* ---- the training loop --------------------------------------------------------------------- */

/* Everything one cumlp_fit call owns. Batches are double-buffered in slots 0 and 1: host staging
 * memory (pinned where the backend can copy asynchronously) and device tensors per slot. On a
 * backend without overlapped uploads the front end copies at once (src/backends/optional_ops.c).
 * With a communicator, the slots hold this rank's shard of each batch. */
typedef struct fit_state {
    cumlp_network *net;
    cumlp_optimizer *opt;
    const cumlp_dataset *train, *val;
    const cumlp_fit_options *o;
    cumlp_context *ctx;
    int64_t batch;    /* columns of a full (global) batch */
    int64_t batches;  /* per epoch */
    int rank, ranks;  /* in the network's communicator: 0 and 1 without one */
    int64_t capacity; /* columns of this rank's largest shard: the batch without a communicator */
    int64_t *order;   /* sample order of the current epoch */
    float *host[2];   /* per slot: X (n_in x capacity) then T (n_out x capacity) */
    batch_tensors dev[2];
    float *out;       /* the output layer's activations of one batch, for training accuracy
                         (the waited-for loop; NULL when the steps are queued) */
    float *best;      /* parameters of the best validation epoch (restore_best) */
    double base_rate; /* the optimizer's rate when cumlp_fit was called */
    double start;
    cumlp_fit_progress progress;
    score epoch_score;
    int skips_in_a_row;
    int skip_limit_hit;         /* the step that failed ended a run of max_consecutive_skips */
    double epoch_norm_sum;      /* of the gradient norms of this epoch's steps taken */
    int64_t epoch_steps_before; /* progress.steps when the epoch began */
    int queues;                 /* the steps are queued (see "the queued steps" below) */
    int64_t synced;             /* batches of this epoch whose steps have been read back */
} fit_state;

static cumlp_status host_buffers(fit_state *f) {
    size_t floats = (size_t)((f->train->n_features + f->train->n_outputs) * f->capacity);
    for (int s = 0; s < 2; s++) {
        cumlp_status st = cumlp__host_alloc(f->ctx, floats * sizeof(float), (void **)&f->host[s]);
        if (st != CUMLP_SUCCESS) return st;
    }
    return CUMLP_SUCCESS;
}

static void fit_release(fit_state *f) {
    for (int s = 0; s < 2; s++) {
        if (f->host[s]) {
            cumlp__upload_host_wait(f->ctx, s); /* a copy may still read it after an error */
            cumlp__host_free(f->ctx, f->host[s]);
        }
        batch_destroy(&f->dev[s]);
    }
    free(f->order);
    free(f->out);
    free(f->best);
}

static cumlp_status fit_setup(fit_state *f, const char *func) {
    const cumlp_dataset *t = f->train;
    f->batch = f->o->batch_size < t->n_samples ? f->o->batch_size : t->n_samples;
    f->batches = (t->n_samples + f->batch - 1) / f->batch;
    f->rank = cumlp__dist_rank(f->net);
    f->ranks = cumlp__dist_ranks(f->net);
    f->capacity = (f->batch + f->ranks - 1) / f->ranks;
    f->order = malloc((size_t)t->n_samples * sizeof *f->order);
    /* the waited-for loop scores the outputs on the host; queued steps count on the device */
    if (!f->queues) f->out = malloc((size_t)(t->n_outputs * f->capacity) * sizeof *f->out);
    if (f->o->restore_best && f->val) f->best = malloc(f->net->num_params * sizeof *f->best);
    if (!f->order || (!f->queues && !f->out) || (f->o->restore_best && f->val && !f->best))
        return cumlp__fail(f->ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of memory");
    cumlp_status st = host_buffers(f);
    for (int s = 0; s < 2 && st == CUMLP_SUCCESS; s++)
        st = batch_create(f->ctx, t->n_features, t->n_outputs, f->capacity, &f->dev[s]);
    return st;
}

static int64_t batch_cols(const fit_state *f, int64_t k) {
    int64_t left = f->train->n_samples - k * f->batch;
    return left < f->batch ? left : f->batch;
}

/* This rank's shard of batch k: its first column in the batch and its columns (all of them
 * without a communicator). */
static int64_t shard_cols(const fit_state *f, int64_t k, int64_t *first) {
    int64_t count;
    cumlp__shard(batch_cols(f, k), f->rank, f->ranks, first, &count);
    return count;
}

/* Gathers this rank's samples of batch k (in this epoch's order) into the host staging memory of
 * slot s. */
static void gather_batch(fit_state *f, int64_t k, int s) {
    const cumlp_dataset *t = f->train;
    int64_t first;
    int64_t cols = shard_cols(f, k, &first);
    float *x = f->host[s], *y = f->host[s] + t->n_features * cols;
    size_t nx = (size_t)t->n_features, ny = (size_t)t->n_outputs;
    for (int64_t j = 0; j < cols; j++) {
        int64_t i = f->order[k * f->batch + first + j];
        memcpy(x + (size_t)j * nx, t->x + (size_t)i * nx, nx * sizeof(float));
        memcpy(y + (size_t)j * ny, t->y + (size_t)i * ny, ny * sizeof(float));
    }
}

/* Stages batch k (this rank's shard of it) into slot s: waits until the slot's staging memory is
 * free, gathers the shard there, and queues its copy to the slot's device tensors. */
static cumlp_status stage_batch(fit_state *f, int64_t k, int s) {
    int64_t first;
    int64_t cols = shard_cols(f, k, &first);
    if (cols == 0) return CUMLP_SUCCESS;
    size_t nx = (size_t)(f->train->n_features * cols), ny = (size_t)(f->train->n_outputs * cols);
    cumlp_status st = cumlp__upload_host_wait(f->ctx, s);
    if (st != CUMLP_SUCCESS) return st;
    gather_batch(f, k, s);
    st = cumlp__upload_async(f->ctx, s, f->dev[s].x->data, f->host[s], nx);
    if (st == CUMLP_SUCCESS)
        st = cumlp__upload_async(f->ctx, s, f->dev[s].t->data, f->host[s] + nx, ny);
    return st;
}

/* The epoch's scores so far into the progress. With a communicator and `share`, the ranks sum
 * their shards' correct counts (collective; the losses are the global batches' already), agreeing
 * on the status `carry` of each rank's work since its last step. */
static cumlp_status fill_progress_scores(fit_state *f, int share, cumlp_status carry,
                                         const char *func) {
    cumlp_fit_progress *p = &f->progress;
    const score *s = &f->epoch_score;
    double correct = (double)s->correct;
    cumlp_status st = CUMLP_SUCCESS;
    if (share && f->net->dist) {
        cumlp_dist_values v = {0};
        cumlp__dist_add_sum(&v, correct);
        st = cumlp__dist_agree(f->net, carry, &v, func);
        correct = v.sums[0];
    }
    p->train_loss = s->samples ? s->loss_sum / (double)s->samples : 0.0;
    p->train_accuracy = accuracy_of(f->net, f->train) != CUMLP_SCORE_NONE && s->samples
                            ? correct / (double)s->samples
                            : -1.0;
    p->seconds = now_seconds() - f->start;
    return st;
}

/* Calls the callback; returns 1 to stop: when it asks on any rank, or *st fails (the agreement on
 * `carry`, see fill_progress_scores). */
static int call_back(fit_state *f, cumlp_status carry, cumlp_status *st, const char *func) {
    if (!f->o->callback) return 0;
    *st = fill_progress_scores(f, 1, carry, func);
    if (*st != CUMLP_SUCCESS) return 1;
    int stop = f->o->callback(&f->progress, f->o->user_data) != 0;
    if (f->net->dist) {
        cumlp_dist_values v = {0};
        cumlp__dist_add_sum(&v, stop);
        *st = cumlp__dist_agree(f->net, CUMLP_SUCCESS, &v, func);
        stop = v.sums[0] > 0 || *st != CUMLP_SUCCESS;
    }
    return stop;
}

/* Counts a skipped step; CUMLP_ERROR_NON_FINITE after max_consecutive_skips in a row (the
 * message, the skipped step's, is completed by step_failed). */
static cumlp_status count_skip(fit_state *f) {
    f->progress.skipped_steps++;
    int limit = f->o->max_consecutive_skips;
    f->skip_limit_hit = ++f->skips_in_a_row >= limit && limit > 0;
    return f->skip_limit_hit ? CUMLP_ERROR_NON_FINITE : CUMLP_SUCCESS;
}

/* The mean gradient norm of this epoch's steps taken so far (-1: none yet). */
static void update_mean_norm(fit_state *f) {
    cumlp_fit_progress *p = &f->progress;
    int64_t taken = p->steps - f->epoch_steps_before;
    p->mean_gradient_norm = taken > 0 ? f->epoch_norm_sum / (double)taken : -1;
}

/* The training step on slot s holding batch k (this rank's shard of it, whose copy has status
 * `local`): with a communicator the ranks' collective step, which every rank makes even when its
 * shard is empty or its copy failed. */
static cumlp_status step_batch(fit_state *f, int64_t k, batch_tensors *v, cumlp_status local,
                               double *loss) {
    if (!f->net->dist) return cumlp_train_step(f->net, f->opt, v->x, v->t, loss);
    return cumlp__dist_train_step(f->net, f->opt, v->x, v->t, local, batch_cols(f, k), loss,
                                  "cumlp_train_step");
}

/* Trains on slot s holding batch k; reads the loss (and outputs for classification). *taken is 1
 * when the step was taken, 0 when it was skipped. *carry: in, the status of this rank's copy of
 * the batch; out, with a communicator, that of its work after the step (reading the outputs),
 * which the next agreement carries (without one such a failure is returned). */
static cumlp_status train_batch(fit_state *f, int64_t k, int s, cumlp_status *carry, int *taken) {
    int64_t first;
    int64_t cols = shard_cols(f, k, &first);
    batch_tensors v = {NULL, NULL};
    cumlp_status st = *carry;
    *carry = CUMLP_SUCCESS;
    if (st == CUMLP_SUCCESS && cols > 0) st = batch_views(&f->dev[s], cols, &v);
    if (st != CUMLP_SUCCESS && !f->net->dist) return st;
    double loss = 0;
    st = step_batch(f, k, &v, st, &loss);
    f->progress.gradient_norm = cumlp_optimizer_gradient_norm(f->opt);
    *taken = st == CUMLP_SUCCESS;
    if (st == CUMLP_STEP_SKIPPED) st = count_skip(f);
    if (*taken) {
        f->skips_in_a_row = 0;
        f->epoch_norm_sum += f->progress.gradient_norm;
    }
    cumlp_status after = CUMLP_SUCCESS;
    int kind = accuracy_of(f->net, f->train);
    if (*taken && kind != CUMLP_SCORE_NONE && cols > 0) {
        after = download_outputs(f->net, cols, f->out);
        const float *targets = f->host[s] + f->train->n_features * cols;
        if (after == CUMLP_SUCCESS)
            score_outputs(&f->epoch_score, f->out, targets, f->train->n_outputs, cols, kind);
    }
    if (st == CUMLP_SUCCESS && after == CUMLP_SUCCESS && *taken) {
        /* the loss is the global batch's */
        f->epoch_score.loss_sum += loss * (double)batch_cols(f, k);
        f->epoch_score.samples += batch_cols(f, k);
    }
    batch_destroy(&v);
    if (after != CUMLP_SUCCESS && f->net->dist)
        *carry = after;
    else if (after != CUMLP_SUCCESS)
        st = after;
    return st;
}

/* A failed step's message, with its epoch and batch in front. */
static cumlp_status step_failed(fit_state *f, cumlp_status st, int64_t k, const char *func) {
    char why[CUMLP_MESSAGE_SIZE], limit[96] = "";
    snprintf(why, sizeof why, "%s", cumlp_last_error(f->ctx));
    if (f->skip_limit_hit && st == CUMLP_ERROR_NON_FINITE)
        snprintf(
            limit, sizeof limit,
            "%d steps in a row skipped (max_consecutive_skips), the last: ", f->skips_in_a_row);
    return cumlp__fail(f->ctx, st, func, "epoch %d of %d, batch %lld of %lld: %s%s",
                       f->progress.epoch + 1, f->o->epochs, (long long)k + 1, (long long)f->batches,
                       limit, why);
}

/* ---- the queued steps ------------------------------------------------------------------------
 * Where the backend decides steps on the device (cuda) and there is no communicator, the loop
 * queues its steps without waiting for them (cumlp__train_step_queue): each step adds its loss,
 * its gradient norm and its batch's right answers to the step state when it is taken, and a run of
 * max_consecutive_skips skipped steps halts the later ones there, as a failure under
 * non_finite_error does (kernels/step_rule.h). The loop reads the state back (sync_steps) before a
 * callback, at the end of an epoch and every SYNC_STEPS steps, so that a failure wastes at most
 * that many steps of device time. The figures are the bits the waited-for loop gets. */
#define SYNC_STEPS 256

/* The failure of a queued step, batch k of the epoch, that halted the steps after it: these are
 * taken out of the optimizer's summary (they never ran, as in the waited-for loop) and the failure
 * is the fit's to report, not cumlp_optimizer_sync's. */
static cumlp_status queued_step_failed(fit_state *f, const cumlp_step_state *t, int64_t k,
                                       const char *func) {
    cumlp_optimizer *opt = f->opt;
    int64_t never_ran = t->summary_steps - t->halted_at;
    opt->summary.steps -= never_ran;
    opt->summary.failed -= never_ran;
    opt->halted = 0;
    f->progress.batch = k;
    f->skip_limit_hit = t->halted_by_skips;
    cumlp_status st =
        cumlp__step_not_taken(opt, t->halted, t->halted_loss_sum, t->halted_scale_before,
                              f->net->scaler.scale, "cumlp_train_step");
    return step_failed(f, t->halted_by_skips ? CUMLP_ERROR_NON_FINITE : st, k, func);
}

/* Waits for opt's queued steps, batches first + 1 to done of the epoch (1-based). A failed wait
 * (a device error) is the fit's to report, with the batches it may have come from (a queued step's
 * error is known only at the wait), not cumlp_optimizer_sync's too. */
static cumlp_status settle_steps(fit_state *f, int64_t first, int64_t done, const char *func) {
    cumlp_optimizer *opt = f->opt;
    cumlp_status st = cumlp__optimizer_settle(opt);
    if (st == CUMLP_SUCCESS) return st;
    opt->lost_status = CUMLP_SUCCESS;
    opt->lost_steps = 0;
    char why[CUMLP_MESSAGE_SIZE], which[96];
    snprintf(why, sizeof why, "%s", cumlp_last_error(f->ctx));
    if (first < done)
        snprintf(which, sizeof which, "batches %lld to %lld of %lld (queued)", (long long)first + 1,
                 (long long)done, (long long)f->batches);
    else /* steps the callback queued */
        snprintf(which, sizeof which, "after batch %lld of %lld, the callback's queued steps",
                 (long long)done, (long long)f->batches);
    return cumlp__fail(f->ctx, st, func, "epoch %d of %d, %s: %s", f->progress.epoch + 1,
                       f->o->epochs, which, why);
}

/* Waits for the steps queued since the last read, up to batch `done` (exclusive) of the epoch, and
 * adds what they came to into the progress. */
static cumlp_status sync_steps(fit_state *f, int64_t done, const char *func) {
    int64_t first = f->synced;
    f->synced = done;
    if (!f->opt->queued) return CUMLP_SUCCESS;
    cumlp_status st = settle_steps(f, first, done, func);
    if (st != CUMLP_SUCCESS) return st;
    const cumlp_step_state *t = f->opt->step_host; /* read back: the host's until the next step */
    cumlp_fit_progress *p = &f->progress;
    p->batch = done;
    p->steps += t->summary_taken;
    p->skipped_steps += t->summary_skipped;
    p->gradient_norm = f->opt->gradient_norm;
    f->skips_in_a_row = (int)t->skips_in_a_row;
    f->epoch_score.loss_sum = t->summary_taken_loss; /* the sums carried on (queue_batch) */
    f->epoch_score.samples += (int64_t)t->summary_taken_samples;
    f->epoch_score.correct += t->summary_correct;
    f->epoch_norm_sum = t->summary_taken_norms;
    update_mean_norm(f);
    return t->halted ? queued_step_failed(f, t, first + t->halted_at - 1, func) : CUMLP_SUCCESS;
}

/* Queues the step on slot s holding batch k. A failure of a step the callback queued, which its
 * wait found, stops the fit as cumlp_train_step stops the waited-for loop. */
static cumlp_status queue_batch(fit_state *f, int64_t k, int s) {
    if (!f->opt->queued && f->opt->halted)
        return cumlp__optimizer_check_halted(f->opt, "cumlp_train_step");
    batch_tensors v;
    cumlp_status st = batch_views(&f->dev[s], batch_cols(f, k), &v);
    cumlp_queue_rules rules = {accuracy_of(f->net, f->train), f->o->max_consecutive_skips,
                               f->skips_in_a_row, f->epoch_score.loss_sum, f->epoch_norm_sum};
    if (st == CUMLP_SUCCESS)
        st = cumlp__train_step_queue(f->net, f->opt, v.x, v.t, &rules, "cumlp_train_step");
    batch_destroy(&v);
    return st;
}

/* Whether the callback is due after batch k. */
static int callback_due(const fit_state *f, int64_t k) {
    const cumlp_fit_options *o = f->o;
    return o->callback && o->callback_every > 0 && (k + 1) % o->callback_every == 0 &&
           k + 1 < f->batches;
}

/* The epoch's batches with their steps queued; *stop is set when the callback asks to stop. */
static cumlp_status queue_epoch(fit_state *f, int *stop, const char *func) {
    cumlp_status st = stage_batch(f, 0, 0);
    f->synced = 0;
    for (int64_t k = 0; k < f->batches && st == CUMLP_SUCCESS; k++) {
        int s = (int)(k % 2);
        st = cumlp__upload_join(f->ctx, s);
        /* the next batch is copied while this one trains */
        if (st == CUMLP_SUCCESS && k + 1 < f->batches) st = stage_batch(f, k + 1, 1 - s);
        int queuing = st == CUMLP_SUCCESS;
        if (queuing) st = queue_batch(f, k, s);
        if (st != CUMLP_SUCCESS) {
            /* a failed copy is returned as it is, as the waited-for loop does */
            if (queuing) st = step_failed(f, st, k, func);
            /* a step queued before may have failed first */
            cumlp_status before = sync_steps(f, k, func);
            return before != CUMLP_SUCCESS ? before : st;
        }
        int calls = callback_due(f, k);
        if (calls || k + 1 - f->synced >= SYNC_STEPS) st = sync_steps(f, k + 1, func);
        if (st == CUMLP_SUCCESS && calls && call_back(f, CUMLP_SUCCESS, &st, func)) {
            *stop = st == CUMLP_SUCCESS;
            return st;
        }
        /* steps the callback itself queued are not the loop's to count */
        if (st == CUMLP_SUCCESS && calls && f->opt->queued)
            st = settle_steps(f, k + 1, k + 1, func);
    }
    if (st == CUMLP_SUCCESS) st = sync_steps(f, f->batches, func);
    return st;
}

/* The epoch's batches, each step waited for; *stop is set when the callback asks to stop. */
static cumlp_status wait_epoch(fit_state *f, int *stop, const char *func) {
    cumlp_fit_progress *p = &f->progress;
    cumlp_status st = CUMLP_SUCCESS;
    /* A failed copy ends the epoch; with a communicator it is carried into the step's agreement,
     * so that every rank ends it at the same batch. */
    cumlp_status local = stage_batch(f, 0, 0);
    for (int64_t k = 0; k < f->batches; k++) {
        int s = (int)(k % 2);
        if (local == CUMLP_SUCCESS) local = cumlp__upload_join(f->ctx, s);
        /* the next batch is copied while this one trains */
        if (local == CUMLP_SUCCESS && k + 1 < f->batches) local = stage_batch(f, k + 1, 1 - s);
        if (local != CUMLP_SUCCESS && !f->net->dist) {
            st = local;
            break;
        }
        int taken = 0;
        st = train_batch(f, k, s, &local, &taken);
        if (st != CUMLP_SUCCESS) {
            st = step_failed(f, st, k, func);
            break;
        }
        p->batch = k + 1;
        p->steps += taken;
        update_mean_norm(f);
        int calls = callback_due(f, k);
        if (calls && call_back(f, local, &st, func)) {
            *stop = st == CUMLP_SUCCESS;
            break;
        }
        if (calls) local = CUMLP_SUCCESS; /* the callback's agreement carried it */
    }
    /* After an error (the same on every rank) the ranks share nothing more. */
    cumlp_status scores = fill_progress_scores(f, st == CUMLP_SUCCESS, local, func);
    return st != CUMLP_SUCCESS ? st : scores;
}

/* One epoch; *stop is set when the callback asks to stop. */
static cumlp_status run_epoch(fit_state *f, int epoch, int *stop, const char *func) {
    const cumlp_fit_options *o = f->o;
    double rate = schedule_rate(o, f->base_rate, epoch);
    cumlp_status st = cumlp_optimizer_set_learning_rate(f->opt, rate);
    if (st != CUMLP_SUCCESS) return st;
    if (o->shuffle)
        cumlp__permutation(o->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1)),
                           f->train->n_samples, f->order);
    else
        for (int64_t i = 0; i < f->train->n_samples; i++)
            f->order[i] = i;
    memset(&f->epoch_score, 0, sizeof f->epoch_score);
    f->epoch_norm_sum = 0;
    cumlp_fit_progress *p = &f->progress;
    f->epoch_steps_before = p->steps;
    p->epoch = epoch;
    p->end_of_epoch = 0;
    p->learning_rate = rate;
    p->mean_gradient_norm = -1;
    p->validation_loss = p->validation_accuracy = p->validation_mse = -1.0;
    if (!f->queues) return wait_epoch(f, stop, func);
    st = queue_epoch(f, stop, func);
    cumlp_status scores = fill_progress_scores(f, 0, CUMLP_SUCCESS, func);
    return st != CUMLP_SUCCESS ? st : scores;
}

static cumlp_status validate(fit_state *f, cumlp_fit_result *r, int epoch, int *since_best) {
    cumlp_eval_result e;
    cumlp_status st = cumlp_evaluate(f->net, f->val, f->batch, &e);
    if (st != CUMLP_SUCCESS) return st;
    f->progress.validation_loss = r->validation_loss = e.loss;
    f->progress.validation_accuracy = r->validation_accuracy = e.accuracy;
    f->progress.validation_mse = r->validation_mse = e.mse;
    if (r->best_epoch < 0 || e.loss < r->best_validation_loss - f->o->min_delta) {
        r->best_epoch = epoch;
        r->best_validation_loss = e.loss;
        *since_best = 0;
        if (f->best)
            st = cumlp_network_get_parameters(f->net, f->best, (int64_t)f->net->num_params);
    } else {
        ++*since_best;
    }
    return st;
}

static cumlp_status fit_loop(fit_state *f, cumlp_fit_result *r, const char *func) {
    int since_best = 0;
    cumlp_status st = CUMLP_SUCCESS;
    for (int epoch = 0; epoch < f->o->epochs; epoch++) {
        int stop = 0;
        r->epochs_run = epoch + 1;
        st = run_epoch(f, epoch, &stop, func);
        r->steps = f->progress.steps;
        r->skipped_steps = f->progress.skipped_steps;
        r->train_loss = f->progress.train_loss;
        r->train_accuracy = f->progress.train_accuracy;
        if (st != CUMLP_SUCCESS) break;
        if (stop) {
            r->stop_reason = CUMLP_STOP_CALLBACK;
            break;
        }
        if (f->val) st = validate(f, r, epoch, &since_best);
        if (st != CUMLP_SUCCESS) break;
        f->progress.end_of_epoch = 1;
        if (call_back(f, CUMLP_SUCCESS, &st, func)) {
            if (st != CUMLP_SUCCESS) break;
            r->stop_reason = CUMLP_STOP_CALLBACK;
            break;
        }
        if (f->o->target_loss > 0 && r->train_loss < f->o->target_loss) {
            r->stop_reason = CUMLP_STOP_TARGET_LOSS;
            break;
        }
        if (f->val && f->o->patience > 0 && since_best >= f->o->patience) {
            r->stop_reason = CUMLP_STOP_PATIENCE;
            break;
        }
    }
    if (st != CUMLP_SUCCESS) r->stop_reason = CUMLP_STOP_ERROR;
    /* After NaN or Inf the best epoch's parameters are still the best ones to end with. */
    int restore = st == CUMLP_SUCCESS || st == CUMLP_ERROR_NON_FINITE;
    if (restore && f->best && r->best_epoch >= 0) {
        cumlp_status restored =
            cumlp_network_set_parameters(f->net, f->best, (int64_t)f->net->num_params);
        if (restored != CUMLP_SUCCESS) st = restored;
    }
    return st;
}

static cumlp_status check_fit_args(const char *func, cumlp_network *net, cumlp_optimizer *opt,
                                   const cumlp_dataset *train, const cumlp_dataset *validation) {
    if (!net) return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "net is NULL");
    if (!opt || !train)
        return cumlp__fail(net->ctx, CUMLP_ERROR_INVALID_VALUE, func, "%s is NULL",
                           opt ? "train" : "opt");
    if (opt->net != net)
        return cumlp__fail(net->ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "the optimizer was created for another network");
    if (net->ctx->sticky) return net->ctx->sticky;
    cumlp_status st = check_dataset(net, train, func, "the training set");
    if (st == CUMLP_SUCCESS && validation)
        st = check_dataset(net, validation, func, "the validation set");
    return st;
}

static void result_init(cumlp_fit_result *r) {
    memset(r, 0, sizeof *r);
    r->stop_reason = CUMLP_STOP_EPOCHS;
    r->train_accuracy = r->validation_loss = r->validation_accuracy = r->validation_mse = -1.0;
    r->best_epoch = -1;
    r->best_validation_loss = -1.0;
}

/* cumlp_fit, its steps queued where they can be (may_queue) or each waited for. */
static cumlp_status fit(cumlp_network *net, cumlp_optimizer *opt, const cumlp_dataset *train,
                        const cumlp_dataset *validation, const cumlp_fit_options *options,
                        cumlp_fit_result *result, int may_queue, const char *func) {
    cumlp_fit_options defaults;
    cumlp_fit_defaults(&defaults);
    const cumlp_fit_options *o = options ? options : &defaults;
    cumlp_status st = check_fit_args(func, net, opt, train, validation);
    if (st == CUMLP_SUCCESS) st = check_options(net->ctx, func, o);
    /* with a communicator every rank agrees, on its checks and on what the ranks hold */
    if (net && net->dist) st = cumlp__dist_fit_agree(net, opt, train, validation, o, st, func);
    if (st != CUMLP_SUCCESS) return st;
    fit_state f;
    memset(&f, 0, sizeof f);
    f.net = net;
    f.opt = opt;
    f.train = train;
    f.val = validation;
    f.o = o;
    f.ctx = net->ctx;
    f.base_rate = cumlp_optimizer_learning_rate(opt);
    f.start = now_seconds();
    cumlp_fit_result local;
    cumlp_fit_result *r = result ? result : &local;
    result_init(r);
    /* queued steps first (their state is the optimizer's); a failure among them stops the fit */
    st = cumlp__network_settle(net);
    if (st == CUMLP_SUCCESS && !net->dist) st = cumlp__optimizer_check_halted(opt, func);
    if (st != CUMLP_SUCCESS) {
        r->stop_reason = CUMLP_STOP_ERROR;
        return st;
    }
    if (!net->dist && may_queue) f.queues = cumlp__optimizer_can_queue(opt, &st);
    if (st == CUMLP_SUCCESS) st = fit_setup(&f, func);
    if (net->dist) st = cumlp__dist_agree(net, st, NULL, func);
    f.progress.batches_per_epoch = f.batches;
    f.progress.gradient_norm = f.progress.mean_gradient_norm = -1;
    if (st == CUMLP_SUCCESS)
        st = fit_loop(&f, r, func);
    else
        r->stop_reason = CUMLP_STOP_ERROR;
    fit_release(&f);
    r->seconds = now_seconds() - f.start;
    return st;
}

cumlp_status cumlp_fit(cumlp_network *net, cumlp_optimizer *opt, const cumlp_dataset *train,
                       const cumlp_dataset *validation, const cumlp_fit_options *options,
                       cumlp_fit_result *result) {
    return fit(net, opt, train, validation, options, result, 1, __func__);
}

cumlp_status cumlp__fit_waiting(cumlp_network *net, cumlp_optimizer *opt,
                                const cumlp_dataset *train, const cumlp_dataset *validation,
                                const cumlp_fit_options *options, cumlp_fit_result *result) {
    return fit(net, opt, train, validation, options, result, 0, "cumlp_fit");
}
