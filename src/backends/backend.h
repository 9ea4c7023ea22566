/*
 * backend.h - the handful of operations every backend implements.
 *
 * The network, optimizer and tensor code (src/ C files) is written only against this table; it
 * never calls BLAS, CUDA or OpenMP itself. A backend owns its memory: buffers are opaque `void *`
 * pointers to elements of `elem_size` bytes (double on the reference backend, float elsewhere),
 * and the front end addresses sub-ranges with cumlp__at(). All matrices are column-major and
 * contiguous unless a leading dimension is given.
 *
 * Precision (cumlp.h, CUMLP_PRECISION_LIST). A backend lists the precisions it runs in
 * `precisions`; the front end refuses the others (contexts, cumlp_context_set_precision). FP32 and
 * TF32 change only how a native GEMM computes (the context's precision, read at every call). BF16
 * and FP16 add buffers in a 16-bit storage format (kernels/cumlp_storage.h), which the ops below
 * take as explicit `storage` arguments, so that no op depends on the context's precision but the
 * GEMM's compute type:
 *  - the front end owns the format of every buffer: in BF16 and FP16 a network keeps a 16-bit copy
 *    of its parameter arena (same layout; the GEMMs read W there), its hidden layers' Z and A, its
 *    deltas (grad_a, grad_b) and a 16-bit copy of the input batch (x16) in that format; the
 *    parameter, gradient and optimizer state arenas, the output layer's Z and A and every
 *    cumlp_tensor stay native. (src/network.c)
 *  - a 16-bit buffer of count elements is allocated with `alloc` as ceil(count / 2) native
 *    elements (only backends whose native element is fp32 run 16-bit formats; internal.h,
 *    cumlp__storage_native_count), and addressed with cumlp__at_storage(); upload, download,
 *    fill and copy are for native buffers only.
 *  - conversions: `convert` (native <-> 16-bit, round to nearest even) makes x16 from the input,
 *    refreshes the weight copy after the parameters change outside a step, and lets tests load and
 *    read 16-bit buffers; `optimizer_step` refreshes the updated elements of the weight copy in its
 *    own pass; the GEMMs and the fused passes read 16-bit operands, compute in fp32 and round what
 *    they store into a 16-bit buffer once.
 *  - reductions never read rounded values: a bias gradient sums the fp32 deltas the pass computed
 *    (before they are rounded for storage), the loss comes from native buffers, and check_finite
 *    reads the native gradient arena.
 *
 * Conventions for every operation:
 *  - Inputs have been validated by the front end (shapes, NULLs, sizes >= 1, overflow, storage
 *    formats the backend runs).
 *  - Operations may be asynchronous (queued on the context's stream); only download, the loss
 *    read-back and synchronize wait.
 *  - A failure returns a status after setting the context's message with cumlp__error().
 */
#ifndef CUMLP_BACKEND_H
#define CUMLP_BACKEND_H

#include "cumlp.h"

#include "cumlp_math.h"
#include "cumlp_storage.h"
#include "step_rule.h"

#include <stddef.h>
#include <stdint.h>

/* Distribution for the initial parameters (one generator call over the whole arena). */
typedef enum cumlp_distribution {
    CUMLP_DIST_UNIFORM = 0,
    CUMLP_DIST_NORMAL = 1
} cumlp_distribution;

typedef struct cumlp_backend_ops {
    const char *name;
    size_t elem_size;    /* bytes per stored element: sizeof(double) or sizeof(float) */
    unsigned precisions; /* bit p set for each cumlp_precision p the backend runs */

    /* Set up ctx->backend_state from the options (device, stream, threads). On failure leave
     * nothing allocated. */
    cumlp_status (*init)(cumlp_context *ctx, const cumlp_context_options *options);
    void (*shutdown)(cumlp_context *ctx);
    cumlp_status (*describe)(const cumlp_context *ctx, char *buf, size_t buf_size);
    cumlp_status (*synchronize)(cumlp_context *ctx);

    /* Memory: count elements. free accepts NULL. */
    cumlp_status (*alloc)(cumlp_context *ctx, size_t count, void **buffer);
    void (*free)(cumlp_context *ctx, void *buffer);
    /* Host float <-> buffer, count elements starting at the buffer pointer. */
    cumlp_status (*upload)(cumlp_context *ctx, void *dst, const float *src, size_t count);
    cumlp_status (*download)(cumlp_context *ctx, const void *src, float *dst, size_t count);
    /* dst[i] = value for i < count (also used to poison buffers in tests). */
    cumlp_status (*fill)(cumlp_context *ctx, void *dst, size_t count, float value);
    /* dst[i] = src[i]; the ranges do not overlap. */
    cumlp_status (*copy)(cumlp_context *ctx, void *dst, const void *src, size_t count);

    /* C = alpha op(A) op(B) + beta C, op(X) = X or X^T; C is m x n, op(A) m x k, op(B) k x n.
     * With beta == 0 the old contents of C are not read (C may hold NaN). A and B are in format
     * ab_storage, C in c_storage: native, native (computed as the context's precision says, FP32
     * or TF32), or 16-bit A and B with fp32 accumulation into a 16-bit C of the same format or a
     * native C. */
    cumlp_status (*gemm)(cumlp_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                         double alpha, const void *A, int lda, const void *B, int ldb, double beta,
                         void *C, int ldc, int ab_storage, int c_storage);

    /* Forward elementwise pass of one layer, rows x cols:
     *   Z = P + b 1^T (written to z_out when z_out != NULL), A = f(Z) (written to a_out).
     * P is the GEMM result W A_prev. z_out may alias P (Z computed in place); a_out may alias P
     * only when z_out is NULL; z_out and a_out never alias each other. Softmax normalizes each
     * column. P, z_out and a_out are in format `storage`, b is native; A is computed from the
     * fp32 Z, before Z is rounded for storage. */
    cumlp_status (*bias_activation)(cumlp_context *ctx, int storage, int activation, double slope,
                                    int rows, int cols, const void *P, const void *b, void *z_out,
                                    void *a_out);

    /* Output layer: per-sample loss and delta = dE/dZ for each column, rows x cols.
     *   squared error: E = 1/2 sum (a - y)^2, delta = (a - y) f'(z)
     *   softmax CE:    E = lse(z) sum(y) - y.z, delta = a - y
     *   sigmoid BCE:   E = sum softplus(z) - y z,  delta = a - y
     * Z is the pre-activation, A the output. Z may be NULL only for squared error with an
     * activation whose derivative needs only A (the cross-entropy losses read Z for the loss).
     * delta is scaled by delta_scale (the loss scale of FP16; 1 elsewhere, which changes no bit)
     * and stored in format delta_storage; Z, A, Y and db are native. Also writes db = db_scale *
     * (row sums of the fp32 delta) (length rows) unless db is NULL. If loss_sum != NULL, stores
     * the sum over the batch of E (unscaled) in *loss_sum (waiting for the device). delta may
     * alias A (not Z or Y) when it is native. */
    cumlp_status (*loss_delta)(cumlp_context *ctx, int loss, int activation, double slope, int rows,
                               int cols, const void *Z, const void *A, const void *Y, void *delta,
                               int delta_storage, void *db, double db_scale, double delta_scale,
                               double *loss_sum);

    /* Hidden layer backward elementwise pass, rows x cols:
     *   delta = G .* f'(Z)   (f' from Z or from A, whichever the activation needs; the other
     *   may be NULL), and db = db_scale * (row sums of the fp32 delta). G, Z, A and delta are in
     *   format `storage`, db is native. delta may alias G. */
    cumlp_status (*activation_backward)(cumlp_context *ctx, int storage, int activation,
                                        double slope, int rows, int cols, const void *G,
                                        const void *Z, const void *A, void *delta, void *db,
                                        double db_scale);

    /* One optimizer update over count parameters: param, grad and the state arrays
     * state[0 .. CUMLP_OPTIMIZER_MAX_STATES), each count elements at the same offset as param,
     * NULL where the rule keeps no such state (see cumlp__optimizer_state_slots in internal.h).
     * Element i of every array is updated from element i alone. With param_copy != NULL (the
     * 16-bit weight copy at the same offset, format copy_storage), the same pass also stores each
     * updated parameter rounded into it. */
    cumlp_status (*optimizer_step)(cumlp_context *ctx, const cumlp_step_params *p, size_t count,
                                   void *param, const void *grad,
                                   void *const state[CUMLP_OPTIMIZER_MAX_STATES], void *param_copy,
                                   int copy_storage);

    /* dst[i] = src[i] for i < count, from format src_storage to dst_storage, one native and one
     * 16-bit: rounded to nearest even into 16 bits (NaN stays NaN, a value past the format's range
     * becomes Inf), exact into native. Required exactly when `precisions` holds BF16 or FP16, else
     * NULL. */
    cumlp_status (*convert)(cumlp_context *ctx, void *dst, int dst_storage, const void *src,
                            int src_storage, size_t count);

    /* Fills out[0..count) with fp32 draws of the distribution, from Philox4x32-10 keyed by the
     * seed, the 32-bit words of the one stream that cuRAND's Philox generator makes for that seed
     * (offset 0): uniform on (0, 1], element i from word i by cuRAND's transform, or standard
     * normal, elements 2p and 2p + 1 from words 2p and 2p + 1 by cumlp_box_muller
     * (kernels/philox.h, in double, rounded once). Bit-identical on every backend, but for normal
     * draws on a device whose log, sin and cos round differently from the host's: at most about
     * one draw in 10^8 is then 1 ulp off (src/backends/rng.h). */
    cumlp_status (*random)(cumlp_context *ctx, int distribution, uint64_t seed, size_t count,
                           void *out);

    /* x[i] = (float)fma((double)x[i], scale, shift) for i < count: turns the raw draws into a
     * layer's initial values, rounded to fp32 the same way on every backend (the reference
     * backend stores the rounded value), so one seed gives bit-identical weights everywhere
     * (but for the rare normal draw `random` leaves 1 ulp off on a device). */
    cumlp_status (*scale_shift)(cumlp_context *ctx, void *x, size_t count, double scale,
                                double shift);

    /* *all_finite = 1 if no element of x[0..count) is NaN or Inf, else 0 (waits). With
     * sum_squares != NULL, the same pass also gives *sum_squares = sum of x[i]^2, accumulated in
     * double in an order that depends only on count (and the cpu backend's thread count), so
     * that the gradient norm of a step is the same from run to run; it is not finite exactly when
     * some x[i] is not (fp32 squares summed in double cannot overflow). */
    cumlp_status (*check_finite)(cumlp_context *ctx, const void *x, size_t count, int *all_finite,
                                 double *sum_squares);

    /* ---- Optional operations, in groups that are all present or all NULL. Call them through the
     * front end below (cumlp__upload_async, ...), which falls back when a group is NULL. ----
     *
     * ---- Optional: overlapped batch uploads (NULL on backends without a device). ----
     * The fit loop double-buffers batches in slots 0 and 1: while the step on slot s runs, the
     * next batch is copied into slot 1 - s.
     * host_alloc/host_free: host memory that upload_async may read (pinned on CUDA).
     * upload_async: queues the copy of count floats from src (host_alloc memory) to dst on a copy
     *   stream, after all work already queued on the context's stream (so dst may be a buffer that
     *   earlier steps read); records the copy's completion for `slot`.
     * upload_join: makes work queued later on the context's stream wait for slot's copy.
     * upload_host_wait: blocks the host until slot's copy is done (its host buffer is free). */
    cumlp_status (*host_alloc)(cumlp_context *ctx, size_t bytes, void **ptr);
    void (*host_free)(cumlp_context *ctx, void *ptr);
    cumlp_status (*upload_async)(cumlp_context *ctx, int slot, void *dst, const float *src,
                                 size_t count);
    cumlp_status (*upload_join)(cumlp_context *ctx, int slot);
    cumlp_status (*upload_host_wait)(cumlp_context *ctx, int slot);

    /* ---- Optional: double-precision transfers (NULL: the front end converts through a host
     * float buffer and calls upload/download). The reference backend keeps doubles exactly. */
    cumlp_status (*upload_f64)(cumlp_context *ctx, void *dst, const double *src, size_t count);
    cumlp_status (*download_f64)(cumlp_context *ctx, const void *src, double *dst, size_t count);

    /* ---- Optional: profiler ranges around the phases of a step (NVTX on CUDA). push opens a
     * range named `name` (a string literal), pop closes the innermost. NULL: no profiler. */
    void (*range_push)(cumlp_context *ctx, const char *name);
    void (*range_pop)(cumlp_context *ctx);

    /* ---- Optional: GEMMs with fused epilogues (cuBLASLt on cuda; NULL elsewhere). ----
     * The second half of a layer's forward or backward pass done in the GEMM's epilogue (cumlp.h,
     * "GEMM epilogues"), for activation CUMLP_ACT_RELU or CUMLP_ACT_GELU; gelu_tanh says which
     * GELU a backend without the exact one computes (cuBLASLt's is the tanh approximation: 1).
     * Either op returns CUMLP_ERROR_NOT_SUPPORTED, having queued nothing and left the context
     * usable, when the library has no algorithm for the case; the front end then runs gemm and
     * the fused op, which compute the same thing.
     * gemm_bias_activation: A_out = f(W X + b 1^T), m x n. W is m x k (ld m) and X k x n (ld k),
     *   both in format ab_storage; A_out (ld m) and b are in out_storage (cuBLASLt's bias is of
     *   D's type). With aux == NULL nothing is kept for the backward pass; else aux receives, for
     *   ReLU, a bitmask with bit i of column j set where Z(i, j) is not <= 0 (a NaN Z stays NaN in
     *   A_out and its bit is set, as cuBLASLt's ReLU does; columns cumlp__relu_mask_ld(m) bits
     *   apart, cumlp__relu_mask_bytes(m, n) bytes in all), for GELU, Z itself (m x n, ld m, in
     *   out_storage).
     * gemm_activation_backward: delta = (W^T G) .* f'(Z) and db = db_scale * (row sums of delta),
     *   k x n. W is m x k (ld m), G m x n (ld m) and delta k x n (ld k), all in format storage;
     *   aux is what gemm_bias_activation kept for the k rows of the layer below; db is native.
     *   storage must be native: in 16 bits cuBLASLt would write db in 16 bits, and the op
     *   declines (CUMLP_ERROR_NOT_SUPPORTED). */
    int gelu_tanh;
    cumlp_status (*gemm_bias_activation)(cumlp_context *ctx, int ab_storage, int out_storage,
                                         int activation, int m, int n, int k, const void *W,
                                         const void *X, const void *b, void *aux, void *a_out);
    cumlp_status (*gemm_activation_backward)(cumlp_context *ctx, int storage, int activation, int m,
                                             int n, int k, const void *W, const void *G,
                                             const void *aux, void *delta, void *db,
                                             double db_scale);

    /* ---- Optional: the device-resident training step (cuda; NULL elsewhere). ----
     * A step whose decision (kernels/step_rule.h) is made on the device from a cumlp_step_state
     * in device memory, so that nothing in it waits for the host and the whole step can be one
     * CUDA graph (src/train_step.c). The front end queues: step_state_copy to the device (from
     * host_alloc memory), the forward pass, loss_delta_step, the backward pass, step_decide,
     * optimizer_step_decided for each range of parameters, step_state_copy back to the host;
     * then synchronizes and reads the state.
     * loss_delta_step: loss_delta with delta's scale read from the state's delta_scale and the
     *   loss sum written into its loss_sum (always computed).
     * step_state_copy: one cumlp_step_state between host_alloc memory and a device buffer.
     * step_decide: the sum of squares of grads[0..count) into the state's sum_squares (as
     *   check_finite computes it) and batch_samples into its batch_samples, then
     *   cumlp_step_decide on the state.
     * optimizer_step_decided: optimizer_step with the state's update; nothing is written unless
     *   its outcome is CUMLP_STEP_TAKEN. type is the optimizer's.
     * step_score: when the state's outcome is CUMLP_STEP_TAKEN, adds to its summary_correct the
     *   columns of the outputs A that answer the targets Y right (cumlp_column_correct with
     *   `kind`, a CUMLP_SCORE_* other than NONE), both rows x cols, native; queued after
     *   step_decide (the fit loop's training accuracy, src/fit.c). */
    cumlp_status (*loss_delta_step)(cumlp_context *ctx, int loss, int activation, double slope,
                                    int rows, int cols, const void *Z, const void *A, const void *Y,
                                    void *delta, int delta_storage, void *db, double db_scale,
                                    void *step);
    cumlp_status (*step_state_copy)(cumlp_context *ctx, void *dst, const void *src, int to_device);
    cumlp_status (*step_decide)(cumlp_context *ctx, void *step, const void *grads, size_t count,
                                double batch_samples);
    cumlp_status (*optimizer_step_decided)(cumlp_context *ctx, const void *step, int type,
                                           size_t count, void *param, const void *grad,
                                           void *const state[CUMLP_OPTIMIZER_MAX_STATES],
                                           void *param_copy, int copy_storage);
    cumlp_status (*step_score)(cumlp_context *ctx, void *step, int kind, int rows, int cols,
                               const void *A, const void *Y);

    /* ---- Optional: CUDA graphs of the device-resident step (cuda; NULL elsewhere). ----
     * graph_begin: starts capturing the context's stream: what is queued on it until graph_end
     *   is recorded, not run (nothing in between may wait for the device or allocate).
     * graph_end: ends the capture; into *graph an executable graph of what was recorded (the one
     *   *graph held, if any, updated in place when it can be, else replaced). A capture that broke
     *   (something waited or allocated) gives CUMLP_ERROR_NOT_SUPPORTED and leaves *graph as it
     *   was; so does a call while nothing is being captured.
     * graph_launch: queues the graph on the context's stream. CUMLP_ERROR_NOT_SUPPORTED, queuing
     *   nothing, when memory the graph may use was reallocated since its capture (the backend's
     *   scratch): it must be captured again.
     * graph_free: accepts NULL. */
    cumlp_status (*graph_begin)(cumlp_context *ctx);
    cumlp_status (*graph_end)(cumlp_context *ctx, void **graph);
    cumlp_status (*graph_launch)(cumlp_context *ctx, void *graph);
    void (*graph_free)(cumlp_context *ctx, void *graph);

    /* ---- Optional: device timing (CUDA events on the context's stream), for the benchmarks.
     * timer_start records a start mark after the work queued so far; timer_stop records an end
     * mark, waits for it and returns the device time between the marks in milliseconds. NULL:
     * time with the host clock around cumlp_context_synchronize. */
    cumlp_status (*timer_start)(cumlp_context *ctx);
    cumlp_status (*timer_stop)(cumlp_context *ctx, double *elapsed_ms);
} cumlp_backend_ops;

/* The column stride, in bits, of a ReLU bitmask for `rows` rows: cuBLASLt's leading dimension of
 * the mask must be a multiple of 128 bits. */
static inline int64_t cumlp__relu_mask_ld(int64_t rows) {
    return (rows + 127) / 128 * 128;
}

/* The bytes of a ReLU bitmask of rows x cols. */
static inline size_t cumlp__relu_mask_bytes(int64_t rows, int64_t cols) {
    return (size_t)(cumlp__relu_mask_ld(rows) / 8) * (size_t)cols;
}

/* ---- The optional operations' front end (src/backends/optional_ops.c). Callers use these and
 * never test an optional op for NULL: where a backend leaves a group NULL, these fall back to
 * what a backend without a device does. ---- */

/* host_alloc / host_free, else malloc / free. */
cumlp_status cumlp__host_alloc(cumlp_context *ctx, size_t bytes, void **ptr);
void cumlp__host_free(cumlp_context *ctx, void *ptr);
/* upload_async, else a blocking upload; upload_join and upload_host_wait, else nothing to do. */
cumlp_status cumlp__upload_async(cumlp_context *ctx, int slot, void *dst, const float *src,
                                 size_t count);
cumlp_status cumlp__upload_join(cumlp_context *ctx, int slot);
cumlp_status cumlp__upload_host_wait(cumlp_context *ctx, int slot);
/* Host double <-> backend buffer: the f64 ops, else through a temporary float buffer. */
cumlp_status cumlp__upload_f64(cumlp_context *ctx, void *dst, const double *src, size_t count);
cumlp_status cumlp__download_f64(cumlp_context *ctx, const void *src, double *dst, size_t count);
/* Profiler ranges around the phases of a step (forward, loss, backward, optimizer), else none. */
void cumlp__range_push(cumlp_context *ctx, const char *name);
void cumlp__range_pop(cumlp_context *ctx);
/* The device timer, else the host clock from the start mark to a synchronize at the stop. */
cumlp_status cumlp__timer_start(cumlp_context *ctx);
cumlp_status cumlp__timer_stop(cumlp_context *ctx, double *elapsed_ms);

/* The alloc and free ops of the backends whose buffers are host memory (reference.c, cpu.c):
 * count elements of elem_size bytes, 64-byte aligned, recorded in ctx->memory. */
cumlp_status cumlp__host_buffer_alloc(cumlp_context *ctx, size_t count, size_t elem_size,
                                      void **buffer);
void cumlp__host_buffer_free(cumlp_context *ctx, void *buffer);

/* CUMLP_ERROR_INTERNAL, with the message naming the op, if a required op is NULL or an optional
 * group is only partly there; checked before a backend is used. */
cumlp_status cumlp__check_backend_ops(const cumlp_backend_ops *ops);

/* The backends this build contains (NULL where not built). */
const cumlp_backend_ops *cumlp__backend_reference(void);
const cumlp_backend_ops *cumlp__backend_cpu(void);
const cumlp_backend_ops *cumlp__backend_cuda(void);

#endif /* CUMLP_BACKEND_H */
