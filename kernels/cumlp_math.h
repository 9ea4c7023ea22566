/*
 * cumlp_math.h - the elementwise math of cumlp, written once and shared by every backend:
 * activations and their derivatives, loss terms and optimizer update rules.
 *
 * The formulas live in cumlp_math.inc, which this header includes twice: once with REAL = double
 * (functions suffixed _d, used by the reference backend) and once with REAL = float (suffixed _f,
 * used by the cpu and cuda backends). Under nvcc every function is __host__ __device__, so the
 * GPU kernels and the CPU loops evaluate the same expressions.
 *
 * Activations, losses and optimizers are selected by cumlp.h's own enums (CUMLP_ACT_*,
 * CUMLP_OPT_*): the public header is plain C that nvcc compiles too, so there is no second list of
 * codes here to keep equal to it.
 */
#ifndef CUMLP_MATH_H
#define CUMLP_MATH_H

#include "cumlp.h"

#include <math.h>

/* The most state arenas an optimizer keeps (centered RMSprop with momentum: the squares' average,
 * the momentum buffer and the gradients' average). */
#define CUMLP_OPTIMIZER_MAX_STATES 3

/* The real-valued hyper-parameters of one optimizer step, listed once: the fields of
 * cumlp_update_params_d and _f (cumlp_math.inc), which src/backends/backend.h fills from the
 * host's double-precision step parameters field by field. */
#define CUMLP_UPDATE_PARAMS_FIELDS(X)                                                              \
    X(learning_rate)   /* this step's rate (ADAGRAD's decayed by lr_decay) */                      \
    X(momentum)        /* MOMENTUM, NESTEROV, RMSPROP */                                           \
    X(l2_decay)        /* added to the gradient times w: weight_decay, but 0 for ADAMW */          \
    X(decay_factor)    /* ADAMW's decoupled 1 - lr weight_decay, else 1 */                         \
    X(beta1)           /* the first moment's decay */                                              \
    X(one_minus_beta1) /* 1 - beta1, rounded once from double */                                   \
    X(beta2)           /* the squares' decay: beta2, RMSPROP's alpha, ADADELTA's rho */            \
    X(one_minus_beta2) /* 1 - that, rounded once from double */                                    \
    X(epsilon)                                                                                     \
    X(bias_correction1) /* 1 - beta1^t */                                                          \
    X(bias_correction2) /* 1 - beta2^t */                                                          \
    X(nadam_grad_coef)  /* NADAM: lr (1 - mu_t) / (1 - P_t) */                                     \
    X(nadam_avg_coef)   /* NADAM: lr mu_(t+1) / (1 - P_t mu_(t+1)) */                              \
    X(grad_scale)       /* clip_norm's factor of the gradient, else 1 */                           \
    X(clip_value)       /* the gradient is clamped to [-clip_value, clip_value]; +inf: off */

#if defined(__CUDACC__)
#define CUMLP_HD __host__ __device__ __forceinline__
#else
#define CUMLP_HD static inline
#endif

#define CUMLP_MATH_REAL     double
#define CUMLP_MATH_FN(name) name##_d
#define CUMLP_LIBM_EXP      exp
#define CUMLP_LIBM_LOG1P    log1p
#define CUMLP_LIBM_TANH     tanh
#define CUMLP_LIBM_ERF      erf
#define CUMLP_LIBM_ERFC     erfc
#define CUMLP_LIBM_SQRT     sqrt
#define CUMLP_LIBM_FABS     fabs
#include "cumlp_math.inc"
#undef CUMLP_MATH_REAL
#undef CUMLP_MATH_FN
#undef CUMLP_LIBM_EXP
#undef CUMLP_LIBM_LOG1P
#undef CUMLP_LIBM_TANH
#undef CUMLP_LIBM_ERF
#undef CUMLP_LIBM_ERFC
#undef CUMLP_LIBM_SQRT
#undef CUMLP_LIBM_FABS

#define CUMLP_MATH_REAL     float
#define CUMLP_MATH_FN(name) name##_f
#define CUMLP_LIBM_EXP      expf
#define CUMLP_LIBM_LOG1P    log1pf
#define CUMLP_LIBM_TANH     tanhf
#define CUMLP_LIBM_ERF      erff
#define CUMLP_LIBM_ERFC     erfcf
#define CUMLP_LIBM_SQRT     sqrtf
#define CUMLP_LIBM_FABS     fabsf
#include "cumlp_math.inc"
#undef CUMLP_MATH_REAL
#undef CUMLP_MATH_FN
#undef CUMLP_LIBM_EXP
#undef CUMLP_LIBM_LOG1P
#undef CUMLP_LIBM_TANH
#undef CUMLP_LIBM_ERF
#undef CUMLP_LIBM_ERFC
#undef CUMLP_LIBM_SQRT
#undef CUMLP_LIBM_FABS

#endif /* CUMLP_MATH_H */
