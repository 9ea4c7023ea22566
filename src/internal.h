/*
 * internal.h - the structures behind the opaque handles, and helpers shared by the C files in src/.
 * Nothing here is exported: every function is static, or hidden by the build's default
 * visibility, and named cumlp__*.
 */
#ifndef CUMLP_INTERNAL_H
#define CUMLP_INTERNAL_H

#include "backends/backend.h"
#include "cumlp.h"
#include "memtrack.h"

#include <stddef.h>
#include <stdint.h>

#define CUMLP_MESSAGE_SIZE 512
/* Largest matrix dimension: BLAS and cuBLAS take int. */
#define CUMLP_MAX_DIM ((int64_t)INT32_MAX)

struct cumlp_context {
    int backend; /* cumlp_backend, never AUTO */
    const cumlp_backend_ops *ops;
    void *backend_state;    /* owned by the backend */
    int precision;          /* cumlp_precision, one the backend runs (ops->precisions) */
    int epilogues;          /* cumlp_epilogues: OFF unless the backend has the epilogue ops */
    int64_t epilogue_calls; /* GEMM epilogues run so far (forward and backward): what the tests
                               and a GPU run count to see that the setting took effect */
    int graphs;             /* cumlp_context_set_graphs: 1 on a backend with graphs by default */
    int64_t graph_captures, graph_launches; /* so far, for the tests and the benchmark */
    cumlp_status sticky; /* a device error that poisons the context, else CUMLP_SUCCESS */
    char message[CUMLP_MESSAGE_SIZE];
    /* Why AUTO did not pick an earlier backend ("" otherwise); cumlp_context_describe adds it. */
    char fallback_note[CUMLP_MESSAGE_SIZE];
    /* The backend's allocations (its alloc op; the cuda reduction scratch), for
     * cumlp_context_memory. */
    cumlp_memtrack memory;
    double host_timer_start_ms; /* the timer fallback's start mark (src/backends/optional_ops.c) */
};

struct cumlp_tensor {
    cumlp_context *ctx;
    int64_t rows, cols;
    void *data;    /* elements of ctx->ops->elem_size bytes */
    int owns_data; /* 1 if destroy frees data */
};

/* A network's communicator for data-parallel training (src/dist/comm.c); NULL without one. */
typedef struct cumlp_dist cumlp_dist;

/* What a captured training step depends on beyond its network and optimizer (src/train_step.c):
 * a step with another key is captured again. */
typedef struct cumlp_step_graph_key {
    const void *x, *t; /* the batch's device memory */
    int64_t cols;
    int precision, epilogues;
    uint64_t buffers; /* the network's buffers_generation */
    uint64_t frozen;  /* a hash of the layers' frozen flags */
    int score;        /* the right answers the step counts (CUMLP_SCORE_*, the fit loop's) */
} cumlp_step_graph_key;

/* How many graphs, seen keys and refused keys an optimizer keeps (each a ring). */
#define CUMLP_STEP_GRAPHS 4

/* A captured step: the backend's executable graph (NULL: the slot is free), its key, and the GEMM
 * epilogues each launch runs (counted into the context's epilogue_calls). */
typedef struct cumlp_step_graph {
    void *exec;
    cumlp_step_graph_key key;
    int64_t epilogues;
} cumlp_step_graph;

/* One layer's views into the arenas and its work buffers. */
typedef struct cumlp_layer {
    int64_t fan_in, fan_out; /* n_(l-1), n_l */
    int activation;
    size_t weight_offset; /* element offset of W in the arenas; b follows W */
    size_t bias_offset;
    int frozen_weights, frozen_biases;
    void *z; /* pre-activation, n_l x capacity (NULL when f' needs only A) */
    void *a; /* activation, n_l x capacity */
    /* A hidden ReLU layer under GEMM epilogues (cumlp.h): the bitmask of Z > 0 that the forward
     * epilogue keeps for the backward one (backend.h), else NULL. */
    void *relu_mask;
    /* Whether the last training forward pass of the layer ran in a GEMM epilogue and kept what
     * the backward epilogue reads (the bitmask, GELU's Z); else the backward pass takes the fused
     * kernel too (cuBLASLt may have had no algorithm for the forward case). */
    int forward_epilogue;
} cumlp_layer;

struct cumlp_network {
    cumlp_context *ctx;
    int num_layers;
    int loss;
    double leaky_slope;
    cumlp_layer *layers;
    size_t num_params;
    void *params;          /* the parameter arena: W1 b1 W2 b2 ... */
    void *grads;           /* the gradient arena, same shape */
    int64_t capacity;      /* batch columns the work buffers hold */
    void *grad_a, *grad_b; /* ping-pong buffers for dE/dA, max width x capacity */
    /* Widest of n_1 .. n_L. The input width n_0 is left out on purpose: no delta is passed down
     * to the input, so no gradient buffer ever holds n_0 rows. */
    int64_t max_width;
    /* Precision (cumlp.h; backend.h says which buffer holds which format). The work buffers but
     * the output layer's, x16 and params16 are in format `storage`: NATIVE, or the 16-bit format
     * of the BF16 or FP16 precision they were made for; cumlp__network_reserve follows the
     * context's precision. */
    int storage;
    void *params16;     /* the 16-bit copy of the parameter arena; NULL when storage is NATIVE */
    int params16_stale; /* the parameters changed outside an optimizer step since params16 was
                           made: refreshed before the next forward pass */
    void *x16;          /* the input batch in 16 bits, n_0 x capacity; NULL when NATIVE */
    int epilogues;      /* the context's epilogue setting the work buffers were made for */
    uint64_t buffers_generation; /* counts the (re)allocations of the work buffers and params16:
                                    a captured step's graph points into them */
    cumlp_loss_scaler scaler;    /* FP16's loss scaler (its settings and state) */
    double grads_scale; /* what the gradient arena holds beyond dE/dparameters: the loss scale the
                           last backward pass ran with in FP16, else 1 */
    int grads_scaled;   /* 1 when that pass ran under the loss scaler (FP16) */
    cumlp_dist *dist;   /* data parallelism (src/dist/), or NULL */
    /* The optimizer whose queued steps (cumlp_train_step_async) the host has not read back, or
     * NULL: the loss scaler and grads_scale above are stale while it is set. */
    cumlp_optimizer *queued_opt;
};

struct cumlp_optimizer {
    cumlp_network *net;
    cumlp_optimizer_options options;
    int64_t steps;
    double nadam_mu_product; /* NAdam's P_t = mu_1 ... mu_t over the steps taken; 1 at first */
    int64_t skipped_steps;   /* CUMLP_STEP_SKIPPED so far */
    double gradient_norm;    /* of the last step's gradients; -1 before the first */
    /* The state arenas, of the parameters' shape: state[k] where bit k of
     * cumlp__optimizer_state_slots(&options) is set, else NULL. */
    void *state[CUMLP_OPTIMIZER_MAX_STATES];
    /* The device-resident step (backend.h; src/train_step.c): its cumlp_step_state in device
     * memory and in pinned host memory, made at the first such step, else NULL. */
    void *step_device, *step_host;
    int step_pinned_failed; /* no pinned memory for step_host: the host decides every step */
    /* The CUDA graphs of the device-resident step (src/train_step.c), a few keys at a time (the
     * fit loop alternates two batch buffers): the graphs captured, the keys seen once (a step is
     * captured at its key's second sight), the keys whose capture broke (never again). */
    cumlp_step_graph graphs[CUMLP_STEP_GRAPHS];
    cumlp_step_graph_key seen[CUMLP_STEP_GRAPHS], refused[CUMLP_STEP_GRAPHS];
    int seen_count, refused_count, next_graph, next_seen, next_refused;
    /* cumlp_train_step_async: the steps queued since the host last read the step state back
     * (while nonzero the device's state is the truth, and the host writes none), the summary so
     * far (its loss as a sum over loss_samples), and the outcome of a step that failed under
     * non_finite_error with its loss sum (0: none), for cumlp_optimizer_sync to report. */
    int64_t queued;
    int queue_score; /* what the queued steps count (cumlp_queue_rules), the same for them all */
    int64_t steps_queued_ever; /* steps queued on the device without a wait (for the tests) */
    cumlp_step_summary summary;
    int halted;
    double halted_loss_sum;
    /* queued steps whose wait failed (a device error), and that error, for cumlp_optimizer_sync */
    int64_t lost_steps;
    cumlp_status lost_status;
    char lost_message[CUMLP_MESSAGE_SIZE]; /* the failed wait's */
};

/* Which state arenas an optimizer keeps: bit k set for state[k], which checkpoints name
 * "optimizer.state<k + 1>." (see cumlp.h, "Checkpoints"). */
unsigned cumlp__optimizer_state_slots(const cumlp_optimizer_options *o);

/* NULL if the options are valid; else a message naming the first bad one, written into buf. */
const char *cumlp__optimizer_options_problem(const cumlp_optimizer_options *o, char *buf,
                                             size_t size);

/* Error helpers: set the message (ctx may be NULL: the per-thread slot) and return status. */
cumlp_status cumlp__error(const cumlp_context *ctx, cumlp_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void cumlp__clear_error(const cumlp_context *ctx);

/* Messages start with the called public function's name, never typed by hand: cumlp__fail sets
 * "func: <fmt ...>". Use CUMLP_FAIL_IF in the public function itself (it returns the status, named
 * by __func__); a static helper that reports on behalf of a public function takes
 * `const char *func`, calls cumlp__fail, and the public function passes __func__. */
cumlp_status cumlp__fail(const cumlp_context *ctx, cumlp_status status, const char *func,
                         const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
#define CUMLP_FAIL_IF(cond, ctx, status, ...)                                                      \
    do {                                                                                           \
        if (cond) return cumlp__fail((ctx), (status), __func__, __VA_ARGS__);                      \
    } while (0)

/* CUMLP_ERROR_INTERNAL, naming `op`, unless `storage` is CUMLP_STORAGE_NATIVE (0; callers may
 * pass several formats or'ed): the ops of a backend without 16-bit formats check what the front
 * end must never hand them (src/backends/optional_ops.c). */
cumlp_status cumlp__require_native(cumlp_context *ctx, const char *op, int storage);

/* Returns the sticky device error of ctx, or SUCCESS. */
static inline cumlp_status cumlp__ctx_ok(const cumlp_context *ctx) {
    return ctx->sticky;
}

/* Records a device failure that leaves the context unusable (called by backends). */
cumlp_status cumlp__make_sticky(cumlp_context *ctx, cumlp_status status);

/* Pointer to element `offset` of a backend buffer. */
static inline void *cumlp__at(const cumlp_context *ctx, const void *buffer, size_t offset) {
    return (char *)buffer + offset * ctx->ops->elem_size;
}

/* The format a precision stores the work buffers in (backend.h): bf16 or fp16, else native. */
static inline int cumlp__precision_storage(int precision) {
    return precision == CUMLP_PRECISION_BF16   ? CUMLP_STORAGE_BF16
           : precision == CUMLP_PRECISION_FP16 ? CUMLP_STORAGE_FP16
                                               : CUMLP_STORAGE_NATIVE;
}

/* Element `offset` of a buffer in format `storage` (kernels/cumlp_storage.h). */
static inline void *cumlp__at_storage(const cumlp_context *ctx, const void *buffer, int storage,
                                      size_t offset) {
    size_t bytes = storage == CUMLP_STORAGE_NATIVE ? ctx->ops->elem_size : CUMLP_STORAGE_16_BYTES;
    return (char *)buffer + offset * bytes;
}

/* The native elements that hold count elements of format `storage`: what alloc is asked for. */
static inline size_t cumlp__storage_native_count(const cumlp_context *ctx, int storage,
                                                 size_t count) {
    if (storage == CUMLP_STORAGE_NATIVE) return count;
    size_t elem = ctx->ops->elem_size;
    return (count * CUMLP_STORAGE_16_BYTES + elem - 1) / elem;
}

/* a * b into *out unless it overflows or exceeds limit; returns 1 on success. */
int cumlp__mul_size(int64_t a, int64_t b, int64_t limit, int64_t *out);

/* Checks 1 <= value <= CUMLP_MAX_DIM; on failure sets the message naming `what`. */
cumlp_status cumlp__check_dim(const cumlp_context *ctx, const char *func, const char *what,
                              int64_t value);

/* The value that text[0..length) names in a list of cumlp.h (its name, or its identifier in lower
 * case), or -1; for text that is not NUL-terminated, such as checkpoint metadata (src/names.c). */
int cumlp__backend_value(const char *text, size_t length);
int cumlp__precision_value(const char *text, size_t length);
int cumlp__epilogues_value(const char *text, size_t length);
int cumlp__activation_value(const char *text, size_t length);
int cumlp__loss_value(const char *text, size_t length);
int cumlp__init_value(const char *text, size_t length);
int cumlp__optimizer_value(const char *text, size_t length);
int cumlp__schedule_value(const char *text, size_t length);
int cumlp__task_value(const char *text, size_t length);
int cumlp__transport_value(const char *text, size_t length);

/* Whether an activation's derivative needs Z (else it is computed from A alone). */
int cumlp__activation_needs_z(int activation);
/* Whether Z must be kept for the loss of the output layer. */
int cumlp__loss_needs_z(int loss);

/* Network work buffers for at least `cols` batch columns, in the format of the context's
 * precision, and in BF16 or FP16 an up-to-date 16-bit copy of the parameters. */
cumlp_status cumlp__network_reserve(cumlp_network *net, int64_t cols);

/* Says that the parameter arena was written other than by an optimizer step (a checkpoint load):
 * the 16-bit copy, if any, is refreshed before the next forward pass. */
void cumlp__network_parameters_changed(cumlp_network *net);

/* NULL if the loss scaler's settings and state are valid; else a message naming the first bad
 * value, written into buf. */
const char *cumlp__loss_scaler_problem(const cumlp_loss_scaler *s, char *buf, size_t size);

/* Forward pass keeping every layer's Z/A in the work buffers; the output is layers[L-1].a. */
cumlp_status cumlp__forward_train(cumlp_network *net, const cumlp_tensor *X);

/* cumlp_loss_backward's checks of X and T, in the name of the public function func. */
cumlp_status cumlp__check_loss_batch(const cumlp_network *net, const cumlp_tensor *X,
                                     const cumlp_tensor *T, const char *func);

/* The forward pass, loss and backward pass of a checked batch on this rank alone, the gradients
 * being the sum over its columns divided by `count` (its own columns, or a global batch's in
 * data-parallel training). *loss_sum, the sum of the per-sample losses, unless loss_sum is NULL. */
cumlp_status cumlp__loss_backward_local(cumlp_network *net, const cumlp_tensor *X,
                                        const cumlp_tensor *T, double count, double *loss_sum);

/* Records the factor the next backward pass multiplies the gradients by (FP16's loss scale, else
 * 1) in net->grads_scale and net->grads_scaled, which the optimizer step divides out. */
void cumlp__set_grads_scale(cumlp_network *net);

/* The state kernels/step_rule.h decides a step of opt from: the optimizer's and its network's
 * loss scaler's, with the gradient arena's scale of the last backward pass. */
void cumlp__step_state_of(const cumlp_optimizer *opt, cumlp_step_state *s);

/* Takes a decided step's state back into opt and its network: the counters, the loss scaler, the
 * summary, a failure that halts queued steps. */
void cumlp__step_absorb(cumlp_optimizer *opt, const cumlp_step_state *s);

/* The status and message (in the name of func) of a step of opt that came to `outcome`, not
 * CUMLP_STEP_TAKEN: CUMLP_STEP_SKIPPED or CUMLP_ERROR_NON_FINITE, saying why (its loss_sum; the
 * loss scale before and after an FP16 overflow). Counts nothing. */
cumlp_status cumlp__step_not_taken(const cumlp_optimizer *opt, int outcome, double loss_sum,
                                   double scale_before, double scale_after, const char *func);

/* Takes a decided step's state back into opt and its network and returns its status:
 * CUMLP_SUCCESS when taken, else CUMLP_STEP_SKIPPED or CUMLP_ERROR_NON_FINITE with the message of
 * the step not taken, in the name of func. */
cumlp_status cumlp__step_outcome(cumlp_optimizer *opt, const cumlp_step_state *s, const char *func);

/* Queues the update of every unfrozen parameter with the hyper-parameters and the decision of the
 * device cumlp_step_state `step` (the device-resident step). */
cumlp_status cumlp__optimizer_queue_decided(cumlp_optimizer *opt, const void *step);

/* The forward pass, loss and backward pass of a checked batch queued for the device-resident step:
 * delta's scale read from, and the loss sum written into, the device cumlp_step_state `step`. */
cumlp_status cumlp__loss_backward_step(cumlp_network *net, const cumlp_tensor *X,
                                       const cumlp_tensor *T, void *step);

/* cumlp_train_step decided on the host: cumlp_loss_backward, then the optimizer step (in the name
 * of func); net and opt are checked, X and T not yet. */
cumlp_status cumlp__train_step_host(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                                    const cumlp_tensor *T, double *loss, const char *func);

/* cumlp_train_step on a backend with the device-resident step (src/train_step.c), in the name of
 * func; net and opt are checked, X and T not yet. */
cumlp_status cumlp__train_step_device(cumlp_network *net, cumlp_optimizer *opt,
                                      const cumlp_tensor *X, const cumlp_tensor *T, double *loss,
                                      const char *func);

/* cumlp_optimizer_step's body (the norm and NaN check, then the update), in the name of func. */
cumlp_status cumlp__optimizer_take_step(cumlp_optimizer *opt, const char *func);

/* A step not taken because of NaN or Inf (`why`): CUMLP_STEP_SKIPPED (counted), or
 * CUMLP_ERROR_NON_FINITE with the optimizer's non_finite_error. */
cumlp_status cumlp__optimizer_not_taken(cumlp_optimizer *opt, const char *func, const char *why);

/* CUMLP_ERROR_NON_FINITE (in the name of func) while a queued step's failure waits for
 * cumlp_optimizer_sync to report it: no step runs until then. */
cumlp_status cumlp__optimizer_check_halted(cumlp_optimizer *opt, const char *func);

/* Adds a step's loss (a mean over `samples`; NULL or not finite: nothing) to opt's summary. */
void cumlp__optimizer_add_loss(cumlp_optimizer *opt, const double *loss, int64_t samples);

/* cumlp_train_step_async where the host decides the step (net, opt and the batch checked, no
 * failure pending): run now, its outcome kept in the summary for cumlp_optimizer_sync (a failure
 * under non_finite_error halts the later steps). */
cumlp_status cumlp__train_step_now(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                                   const cumlp_tensor *T, const char *func);

/* What the fit loop asks of its queued steps beyond cumlp_train_step_async's: the right answers
 * counted, and a run of skipped steps that halts them (kernels/step_rule.h). */
typedef struct cumlp_queue_rules {
    int score_kind;             /* CUMLP_SCORE_* */
    int64_t max_skips_in_a_row; /* 0: no run halts */
    int64_t skips_in_a_row;     /* the run before the first queued step */
    /* the sums the taken steps' losses and gradient norms are added to one by one, in the order
     * the waited-for loop adds them (a sum of partial sums would round differently) */
    double taken_loss, taken_norms;
} cumlp_queue_rules;

/* cumlp_train_step_async on a backend with the device-resident step (src/train_step.c), in the
 * name of func, with the fit loop's rules (NULL: none), which apply from the first step queued
 * since the last settle to the next settle; net, opt and the batch are checked, no failure is
 * pending. */
cumlp_status cumlp__train_step_queue(cumlp_network *net, cumlp_optimizer *opt,
                                     const cumlp_tensor *X, const cumlp_tensor *T,
                                     const cumlp_queue_rules *rules, const char *func);

/* cumlp_fit with every step waited for, as on a backend that decides steps on the host: the loop
 * that the queued one (src/fit.c) must agree with bit for bit, for the tests. */
cumlp_status cumlp__fit_waiting(cumlp_network *net, cumlp_optimizer *opt,
                                const cumlp_dataset *train, const cumlp_dataset *validation,
                                const cumlp_fit_options *options, cumlp_fit_result *result);

/* Whether opt's steps are queued on the device (the backend has the device-resident step and its
 * state could be made in pinned memory); *status: a failure making it. */
int cumlp__optimizer_can_queue(cumlp_optimizer *opt, cumlp_status *status);

/* Waits for opt's queued steps and reads their state back (nothing to do when none are queued);
 * cumlp__network_settle does so for the optimizer with steps queued on net, if any. Every function
 * that reads or writes the optimizer's counters or the network's loss scaler calls one first. */
cumlp_status cumlp__optimizer_settle(cumlp_optimizer *opt);
cumlp_status cumlp__network_settle(const cumlp_network *net);

#endif /* CUMLP_INTERNAL_H */
