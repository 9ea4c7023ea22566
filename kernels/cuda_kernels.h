/*
 * cuda_kernels.h - the launchers of the cuda backend's fused kernels, one .cu file per family
 * (elementwise.cu, loss_reduce.cu, optimizer.cu), called by the host glue in src/backends/cuda.c.
 * Each queues its work on `stream` and returns the launch's cudaError_t as an int
 * (0 = cudaSuccess), so this header needs no CUDA header. All buffers are device memory of fp32
 * elements unless the name says otherwise: a `void *` buffer is in the format its `storage`
 * argument names (kernels/cumlp_storage.h: fp32, bf16 or fp16). Sizes have been validated by the
 * caller.
 */
#ifndef CUMLP_CUDA_KERNELS_H
#define CUMLP_CUDA_KERNELS_H

#include "cumlp_math.h"
#include "cumlp_storage.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Column chunks of the tiled row reductions (bias gradients), a function of the shape only so
 * that results are deterministic. The workspace a reduction needs: rows * chunks partial sums
 * plus one per block for the loss, all doubles. */
int cumlp__cuda_reduction_chunks(int rows, int cols);
size_t cumlp__cuda_reduction_workspace(int rows, int cols);

int cumlp__cuda_fill(void *stream, float *dst, size_t count, float value);

/* x[i] = (float)fma((double)x[i], scale, shift). */
int cumlp__cuda_scale_shift(void *stream, float *x, size_t count, double scale, double shift);

/* Normal draws in place: x holds the first count 32-bit words of the Philox stream
 * (curandGenerate's output) and, when count is odd, *tail (device memory) the next one; words 2p
 * and 2p + 1 become the normals 2p and 2p + 1 by cumlp_box_muller (kernels/philox.h). tail is
 * unused for even count. */
int cumlp__cuda_box_muller(void *stream, float *x, size_t count, const uint32_t *tail);

/* Z = P + b 1^T (into z when z != NULL), A = f(Z) (softmax per column); P, z and a in format
 * `storage`, b fp32; see backend.h. */
int cumlp__cuda_bias_activation(void *stream, int storage, int activation, float slope, int rows,
                                int cols, const void *P, const float *b, void *z, void *a);

/* Output layer of loss `loss` (a cumlp_loss): delta = delta_scale * dE/dz in format delta_storage
 * (may alias a when fp32; the scale read from the device float *delta_scale_on_device when that
 * is not NULL), db = db_scale * row sums of the fp32 delta when db != NULL, and the batch's loss
 * sum into the device double *loss_sum when loss_sum != NULL. workspace holds
 * cumlp__cuda_reduction_workspace(rows, cols) bytes plus cols doubles. */
int cumlp__cuda_loss_delta(void *stream, int loss, int activation, float slope, int rows, int cols,
                           const float *z, const float *a, const float *y, void *delta,
                           int delta_storage, float *db, double db_scale, float delta_scale,
                           const float *delta_scale_on_device, double *loss_sum, void *workspace);

/* Hidden layer: delta = g .* f'(z, a) (delta may alias g), db = db_scale * row sums of the fp32
 * delta; g, z, a and delta in format `storage`. */
int cumlp__cuda_activation_backward(void *stream, int storage, int activation, float slope,
                                    int rows, int cols, const void *g, const void *z, const void *a,
                                    void *delta, float *db, double db_scale, void *workspace);

/* One optimizer update over count parameters with the rule's state arrays (NULL where unused);
 * with param_copy != NULL (format copy_storage) also the updated parameters rounded into it. */
int cumlp__cuda_optimizer_step(void *stream, int type, const cumlp_update_params_f *params,
                               size_t count, float *param, const float *grad,
                               float *const state[CUMLP_OPTIMIZER_MAX_STATES], void *param_copy,
                               int copy_storage);

/* The same update with the hyper-parameters and the decision of a device cumlp_step_state
 * (kernels/step_rule.h): nothing is written unless the step was taken. */
int cumlp__cuda_optimizer_step_decided(void *stream, int type, const void *step_state, size_t count,
                                       float *param, const float *grad,
                                       float *const state[CUMLP_OPTIMIZER_MAX_STATES],
                                       void *param_copy, int copy_storage);

/* cumlp_step_decide (kernels/step_rule.h) on a device cumlp_step_state, in one thread. */
int cumlp__cuda_step_decide(void *stream, void *step_state, double batch_samples);

/* When the device cumlp_step_state's step was taken, adds to its summary_correct the columns of
 * a (rows x cols) that answer y's right (cumlp_column_correct with kind), in one block. */
int cumlp__cuda_step_score(void *stream, void *step_state, int kind, int rows, int cols,
                           const void *a, const void *y);

/* dst[i] = src[i] for i < count, from format src_storage into dst_storage (one fp32, one 16-bit):
 * rounded to nearest even into 16 bits, exact into fp32. */
int cumlp__cuda_convert(void *stream, void *dst, int dst_storage, const void *src, int src_storage,
                        size_t count);

/* *flag (device int) = 1 if some x[i] is NaN or Inf, else 0. */
int cumlp__cuda_find_non_finite(void *stream, const float *x, size_t count, int *flag);

/* *sum (a device double) = sum of x[i]^2 in double: partial sums of a fixed grid (a function of
 * count only), then one block adds them in a fixed order. workspace holds
 * cumlp__cuda_sum_squares_workspace(count) bytes. */
size_t cumlp__cuda_sum_squares_workspace(size_t count);
int cumlp__cuda_sum_squares(void *stream, const float *x, size_t count, double *sum,
                            void *workspace);

#ifdef __cplusplus
}
#endif

#endif /* CUMLP_CUDA_KERNELS_H */
