/*
 * The C side of test_fortran's layout check: sizeof and offsetof of every struct that
 * include/cumlp.f90 mirrors, as the C compiler lays them out. The Fortran test compares them with
 * its bind(C) types, field by field.
 */
#include "cumlp.h"

#include <stddef.h>
#include <stdint.h>

int64_t cumlp_test_c_layout(int s, int field);

#define F(type, member) (int64_t) offsetof(type, member)

/* s selects the struct (see test_fortran.f90); field 0 gives its size, field i the offset of its
 * i-th member (1-based, in declaration order); -1 past the last member. */
int64_t cumlp_test_c_layout(int s, int field) {
    static const int64_t context[] = {
        sizeof(cumlp_context_options),       F(cumlp_context_options, backend),
        F(cumlp_context_options, device),    F(cumlp_context_options, stream),
        F(cumlp_context_options, precision), F(cumlp_context_options, num_threads)};
    static const int64_t network[] = {
        sizeof(cumlp_network_options),       F(cumlp_network_options, loss),
        F(cumlp_network_options, init),      F(cumlp_network_options, init_scale),
        F(cumlp_network_options, bias_init), F(cumlp_network_options, leaky_relu_slope),
        F(cumlp_network_options, seed)};
    static const int64_t optimizer[] = {sizeof(cumlp_optimizer_options),
                                        F(cumlp_optimizer_options, type),
                                        F(cumlp_optimizer_options, learning_rate),
                                        F(cumlp_optimizer_options, momentum),
                                        F(cumlp_optimizer_options, weight_decay),
                                        F(cumlp_optimizer_options, beta1),
                                        F(cumlp_optimizer_options, beta2),
                                        F(cumlp_optimizer_options, epsilon),
                                        F(cumlp_optimizer_options, alpha),
                                        F(cumlp_optimizer_options, rho),
                                        F(cumlp_optimizer_options, centered),
                                        F(cumlp_optimizer_options, lr_decay),
                                        F(cumlp_optimizer_options, initial_accumulator_value),
                                        F(cumlp_optimizer_options, momentum_decay),
                                        F(cumlp_optimizer_options, clip_norm),
                                        F(cumlp_optimizer_options, clip_value),
                                        F(cumlp_optimizer_options, non_finite_error)};
    static const int64_t csv[] = {sizeof(cumlp_csv_options), F(cumlp_csv_options, has_header),
                                  F(cumlp_csv_options, label_column),
                                  F(cumlp_csv_options, num_classes),
                                  F(cumlp_csv_options, delimiter)};
    static const int64_t progress[] = {sizeof(cumlp_fit_progress),
                                       F(cumlp_fit_progress, epoch),
                                       F(cumlp_fit_progress, end_of_epoch),
                                       F(cumlp_fit_progress, batch),
                                       F(cumlp_fit_progress, batches_per_epoch),
                                       F(cumlp_fit_progress, steps),
                                       F(cumlp_fit_progress, learning_rate),
                                       F(cumlp_fit_progress, train_loss),
                                       F(cumlp_fit_progress, train_accuracy),
                                       F(cumlp_fit_progress, validation_loss),
                                       F(cumlp_fit_progress, validation_accuracy),
                                       F(cumlp_fit_progress, validation_mse),
                                       F(cumlp_fit_progress, seconds),
                                       F(cumlp_fit_progress, skipped_steps),
                                       F(cumlp_fit_progress, gradient_norm),
                                       F(cumlp_fit_progress, mean_gradient_norm)};
    static const int64_t fit[] = {sizeof(cumlp_fit_options),
                                  F(cumlp_fit_options, epochs),
                                  F(cumlp_fit_options, batch_size),
                                  F(cumlp_fit_options, shuffle),
                                  F(cumlp_fit_options, seed),
                                  F(cumlp_fit_options, schedule),
                                  F(cumlp_fit_options, lr_gamma),
                                  F(cumlp_fit_options, lr_step_epochs),
                                  F(cumlp_fit_options, lr_min),
                                  F(cumlp_fit_options, target_loss),
                                  F(cumlp_fit_options, patience),
                                  F(cumlp_fit_options, min_delta),
                                  F(cumlp_fit_options, restore_best),
                                  F(cumlp_fit_options, callback),
                                  F(cumlp_fit_options, user_data),
                                  F(cumlp_fit_options, callback_every),
                                  F(cumlp_fit_options, max_consecutive_skips),
                                  F(cumlp_fit_options, warmup_epochs),
                                  F(cumlp_fit_options, milestones),
                                  F(cumlp_fit_options, num_milestones),
                                  F(cumlp_fit_options, lr_power)};
    static const int64_t result[] = {sizeof(cumlp_fit_result),
                                     F(cumlp_fit_result, epochs_run),
                                     F(cumlp_fit_result, stop_reason),
                                     F(cumlp_fit_result, steps),
                                     F(cumlp_fit_result, train_loss),
                                     F(cumlp_fit_result, train_accuracy),
                                     F(cumlp_fit_result, validation_loss),
                                     F(cumlp_fit_result, validation_accuracy),
                                     F(cumlp_fit_result, validation_mse),
                                     F(cumlp_fit_result, best_epoch),
                                     F(cumlp_fit_result, best_validation_loss),
                                     F(cumlp_fit_result, seconds),
                                     F(cumlp_fit_result, skipped_steps)};
    static const int64_t eval[] = {sizeof(cumlp_eval_result), F(cumlp_eval_result, loss),
                                   F(cumlp_eval_result, accuracy), F(cumlp_eval_result, mse)};
    static const int64_t info[] = {sizeof(cumlp_model_info), F(cumlp_model_info, task),
                                   F(cumlp_model_info, num_classes),
                                   F(cumlp_model_info, label_column)};
    static const int64_t scaler[] = {sizeof(cumlp_loss_scaler),
                                     F(cumlp_loss_scaler, scale),
                                     F(cumlp_loss_scaler, growth_factor),
                                     F(cumlp_loss_scaler, backoff_factor),
                                     F(cumlp_loss_scaler, growth_interval),
                                     F(cumlp_loss_scaler, clean_steps),
                                     F(cumlp_loss_scaler, overflows)};
    static const int64_t summary[] = {sizeof(cumlp_step_summary),
                                      F(cumlp_step_summary, steps),
                                      F(cumlp_step_summary, taken),
                                      F(cumlp_step_summary, skipped),
                                      F(cumlp_step_summary, failed),
                                      F(cumlp_step_summary, loss),
                                      F(cumlp_step_summary, loss_samples)};
    static const struct {
        const int64_t *v;
        size_t n;
    } tables[] = {{context, sizeof context / sizeof *context},
                  {network, sizeof network / sizeof *network},
                  {optimizer, sizeof optimizer / sizeof *optimizer},
                  {csv, sizeof csv / sizeof *csv},
                  {progress, sizeof progress / sizeof *progress},
                  {fit, sizeof fit / sizeof *fit},
                  {result, sizeof result / sizeof *result},
                  {eval, sizeof eval / sizeof *eval},
                  {info, sizeof info / sizeof *info},
                  {scaler, sizeof scaler / sizeof *scaler},
                  {summary, sizeof summary / sizeof *summary}};
    if (s < 0 || s >= (int)(sizeof tables / sizeof *tables)) return -1;
    if (field < 0 || (size_t)field >= tables[s].n) return -1;
    return tables[s].v[field];
}

int64_t cumlp_test_c_constant(int i);

/* The i-th constant (1-based) of the list that test_fortran.f90's test_constants mirrors, as the
 * C header defines it; -1 past the end. */
int64_t cumlp_test_c_constant(int i) {
    static const int64_t values[] = {CUMLP_VERSION_MAJOR,
                                     CUMLP_VERSION_MINOR,
                                     CUMLP_VERSION_PATCH,
                                     CUMLP_VERSION_NUMBER,
                                     CUMLP_SUCCESS,
                                     CUMLP_ERROR_INVALID_VALUE,
                                     CUMLP_ERROR_ALLOC_FAILED,
                                     CUMLP_ERROR_NOT_SUPPORTED,
                                     CUMLP_ERROR_NO_DEVICE,
                                     CUMLP_ERROR_DEVICE,
                                     CUMLP_ERROR_IO,
                                     CUMLP_ERROR_FORMAT,
                                     CUMLP_ERROR_TRUNCATED,
                                     CUMLP_ERROR_SIZE_LIMIT,
                                     CUMLP_ERROR_SHAPE_MISMATCH,
                                     CUMLP_ERROR_CHECKSUM,
                                     CUMLP_ERROR_NON_FINITE,
                                     CUMLP_ERROR_INTERNAL,
                                     CUMLP_STEP_SKIPPED,
                                     CUMLP_ERROR_COMMUNICATION,
                                     CUMLP_STATUS_COUNT,
                                     CUMLP_BACKEND_AUTO,
                                     CUMLP_BACKEND_REFERENCE,
                                     CUMLP_BACKEND_CPU,
                                     CUMLP_BACKEND_CUDA,
                                     CUMLP_BACKEND_COUNT,
                                     CUMLP_PRECISION_FP32,
                                     CUMLP_PRECISION_TF32,
                                     CUMLP_PRECISION_BF16,
                                     CUMLP_PRECISION_FP16,
                                     CUMLP_PRECISION_COUNT,
                                     CUMLP_MATH_STRICT_FP32,
                                     CUMLP_MATH_TF32,
                                     CUMLP_ACT_IDENTITY,
                                     CUMLP_ACT_SIGMOID,
                                     CUMLP_ACT_TANH,
                                     CUMLP_ACT_RELU,
                                     CUMLP_ACT_LEAKY_RELU,
                                     CUMLP_ACT_GELU,
                                     CUMLP_ACT_SOFTMAX,
                                     CUMLP_ACTIVATION_COUNT,
                                     CUMLP_LOSS_SQUARED_ERROR,
                                     CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY,
                                     CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY,
                                     CUMLP_LOSS_COUNT,
                                     CUMLP_INIT_NORMAL,
                                     CUMLP_INIT_UNIFORM,
                                     CUMLP_INIT_XAVIER_NORMAL,
                                     CUMLP_INIT_XAVIER_UNIFORM,
                                     CUMLP_INIT_HE_NORMAL,
                                     CUMLP_INIT_HE_UNIFORM,
                                     CUMLP_INIT_COUNT,
                                     CUMLP_BIAS_ZERO,
                                     CUMLP_BIAS_DRAWN,
                                     CUMLP_OPT_SGD,
                                     CUMLP_OPT_MOMENTUM,
                                     CUMLP_OPT_NESTEROV,
                                     CUMLP_OPT_ADAM,
                                     CUMLP_OPT_ADAMW,
                                     CUMLP_OPT_ADAMAX,
                                     CUMLP_OPT_NADAM,
                                     CUMLP_OPT_RMSPROP,
                                     CUMLP_OPT_ADAGRAD,
                                     CUMLP_OPT_ADADELTA,
                                     CUMLP_OPTIMIZER_COUNT,
                                     CUMLP_CHECKPOINT_ALLOW_NON_FINITE,
                                     CUMLP_SCALE_MINMAX,
                                     CUMLP_SCALE_STANDARDIZE,
                                     CUMLP_LR_CONSTANT,
                                     CUMLP_LR_STEP,
                                     CUMLP_LR_EXPONENTIAL,
                                     CUMLP_LR_COSINE,
                                     CUMLP_LR_MULTISTEP,
                                     CUMLP_LR_LINEAR,
                                     CUMLP_LR_POLY,
                                     CUMLP_SCHEDULE_COUNT,
                                     CUMLP_STOP_EPOCHS,
                                     CUMLP_STOP_TARGET_LOSS,
                                     CUMLP_STOP_PATIENCE,
                                     CUMLP_STOP_CALLBACK,
                                     CUMLP_STOP_ERROR,
                                     CUMLP_DATASET_MAX_ELEMENTS,
                                     CUMLP_TASK_UNKNOWN,
                                     CUMLP_TASK_CLASSIFY,
                                     CUMLP_TASK_REGRESS,
                                     CUMLP_TASK_COUNT,
                                     CUMLP_CSV_NO_TARGET,
                                     CUMLP_TRANSPORT_AUTO,
                                     CUMLP_TRANSPORT_MPI,
                                     CUMLP_TRANSPORT_MPI_HOST,
                                     CUMLP_TRANSPORT_MPI_DEVICE,
                                     CUMLP_TRANSPORT_NCCL,
                                     CUMLP_TRANSPORT_COUNT,
                                     CUMLP_EPILOGUES_OFF,
                                     CUMLP_EPILOGUES_RELU,
                                     CUMLP_EPILOGUES_ALL,
                                     CUMLP_EPILOGUES_COUNT};
    if (i < 1 || (size_t)i > sizeof values / sizeof *values) return -1;
    return values[i - 1];
}
