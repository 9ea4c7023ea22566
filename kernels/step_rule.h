/*
 * step_rule.h - the rule of one optimizer step, written once for the host and a device: the step's
 * hyper-parameters from the optimizer's options and state (the bias corrections, NAdam's mu
 * products, Adagrad's decayed rate, the clipping factor), whether the step is taken at all (NaN or
 * Inf in the loss or the gradients, FP16's overflow) and the loss scaler's reaction to it.
 *
 * The host path (src/optimizer.c) and the cuda backend's device-resident step (the decision kernel
 * of kernels/optimizer.cu, which a CUDA graph replays) both run cumlp_step_decide on a
 * cumlp_step_state, so that a step decided on the device is the step the host decides. Under nvcc
 * every function here is __host__ __device__ (CUMLP_HD). A device may round a hyper-parameter 1
 * ulp away from the host: CUDA's double pow is within 1 ulp, and nvcc may fuse a product and a sum
 * (1 + (t - 1) lr_decay, 1 - lr weight_decay) into one fma that the host rounds twice. Steps
 * decided on the device (cumlp_train_step on cuda, with or without a graph) agree bit for bit
 * among themselves; against the host's decisions (the cpu and reference backends, a data-parallel
 * step, cumlp_optimizer_step) they agree to that ulp.
 */
#ifndef CUMLP_STEP_RULE_H
#define CUMLP_STEP_RULE_H

#include "cumlp.h"
#include "cumlp_math.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

/* The hyper-parameters of one optimizer step, in double: what the options give, with the per-step
 * factors (the bias corrections, NAdam's mu products, Adagrad's decayed rate) worked out. */
typedef struct cumlp_step_params {
    int type;             /* cumlp_optimizer_type */
    double learning_rate; /* this step's rate: ADAGRAD's is decayed by lr_decay */
    double momentum;
    double weight_decay;
    double beta1;
    double beta2; /* also RMSPROP's alpha and ADADELTA's rho: the squares' decay */
    double epsilon;
    int centered;             /* RMSPROP */
    double bias_correction1;  /* 1 - beta1^t (the Adam family), else 1 */
    double bias_correction2;  /* 1 - beta2^t (the Adam family), else 1 */
    double nadam_grad_factor; /* NADAM: (1 - mu_t) / (1 - P_t), P_t = mu_1 ... mu_t */
    double nadam_avg_factor;  /* NADAM: mu_(t+1) / (1 - P_t mu_(t+1)) */
    double grad_scale;        /* the gradient's factor: min(1, clip_norm / (norm + 1e-6)), else 1;
                                 over the loss scale the arena holds (FP16) */
    double clip_value;        /* > 0: the scaled gradient is clamped to +-clip_value; 0: not */
} cumlp_step_params;

/* The step's hyper-parameters as the shared update rule (kernels/cumlp_math.inc) takes them:
 * every product and 1 - beta computed in double, so that the fp32 rule gets each rounded once. */
CUMLP_HD cumlp_update_params_d cumlp__update_params_d(const cumlp_step_params *p) {
    int decoupled = p->type == CUMLP_OPT_ADAMW;
    cumlp_update_params_d q;
    q.learning_rate = p->learning_rate;
    q.momentum = p->momentum;
    q.l2_decay = decoupled ? 0.0 : p->weight_decay;
    q.decay_factor = decoupled ? 1.0 - p->learning_rate * p->weight_decay : 1.0;
    q.beta1 = p->beta1;
    q.one_minus_beta1 = 1.0 - p->beta1;
    q.beta2 = p->beta2;
    q.one_minus_beta2 = 1.0 - p->beta2;
    q.epsilon = p->epsilon;
    q.bias_correction1 = p->bias_correction1;
    q.bias_correction2 = p->bias_correction2;
    q.nadam_grad_coef = p->learning_rate * p->nadam_grad_factor;
    q.nadam_avg_coef = p->learning_rate * p->nadam_avg_factor;
    q.grad_scale = p->grad_scale;
    q.clip_value = p->clip_value > 0 ? p->clip_value : (double)INFINITY;
    q.centered = p->centered;
    return q;
}

CUMLP_HD cumlp_update_params_f cumlp__update_params_f(const cumlp_step_params *p) {
    const cumlp_update_params_d d = cumlp__update_params_d(p);
    cumlp_update_params_f f;
#define CUMLP_ROUND_FIELD_(name) f.name = (float)d.name;
    CUMLP_UPDATE_PARAMS_FIELDS(CUMLP_ROUND_FIELD_)
#undef CUMLP_ROUND_FIELD_
    f.centered = d.centered;
    return f;
}

/* NAdam's momentum coefficient of step t (Dozat's schedule, as torch.optim.NAdam has it). */
CUMLP_HD double cumlp_nadam_mu(const cumlp_optimizer_options *o, int64_t t) {
    return o->beta1 * (1.0 - 0.5 * pow(0.96, (double)t * o->momentum_decay));
}

CUMLP_HD int cumlp_adam_family(int type) {
    return type == CUMLP_OPT_ADAM || type == CUMLP_OPT_ADAMW || type == CUMLP_OPT_ADAMAX ||
           type == CUMLP_OPT_NADAM;
}

/* clip_grad_norm_'s factor: 1 (exactly) unless the norm exceeds clip_norm. */
CUMLP_HD double cumlp_clip_factor(const cumlp_optimizer_options *o, double gradient_norm) {
    if (o->clip_norm <= 0) return 1.0;
    double factor = o->clip_norm / (gradient_norm + 1e-6);
    return factor < 1.0 ? factor : 1.0;
}

/* The hyper-parameters of step t (from 1) with options o, whose gradients have the global L2 norm
 * gradient_norm (for clip_norm), mu_product being NAdam's P_(t-1) (1 before the first step);
 * *next_mu_product receives P_t. */
CUMLP_HD void cumlp_step_params_of(const cumlp_optimizer_options *o, int64_t t,
                                   double gradient_norm, double mu_product, cumlp_step_params *p,
                                   double *next_mu_product) {
    p->type = o->type;
    p->learning_rate = o->learning_rate;
    if (o->type == CUMLP_OPT_ADAGRAD)
        p->learning_rate = o->learning_rate / (1.0 + (double)(t - 1) * o->lr_decay);
    p->momentum = o->momentum;
    p->weight_decay = o->weight_decay;
    p->beta1 = o->beta1;
    p->beta2 = o->type == CUMLP_OPT_RMSPROP    ? o->alpha
               : o->type == CUMLP_OPT_ADADELTA ? o->rho
                                               : o->beta2;
    p->epsilon = o->epsilon;
    p->centered = o->centered;
    p->bias_correction1 = cumlp_adam_family(o->type) ? 1.0 - pow(o->beta1, (double)t) : 1.0;
    p->bias_correction2 = cumlp_adam_family(o->type) ? 1.0 - pow(o->beta2, (double)t) : 1.0;
    p->nadam_grad_factor = 0.0;
    p->nadam_avg_factor = 0.0;
    p->grad_scale = cumlp_clip_factor(o, gradient_norm);
    p->clip_value = o->clip_value;
    *next_mu_product = mu_product;
    if (o->type == CUMLP_OPT_NADAM) {
        double mu = cumlp_nadam_mu(o, t), mu_next = cumlp_nadam_mu(o, t + 1);
        *next_mu_product = mu_product * mu;
        p->nadam_grad_factor = (1.0 - mu) / (1.0 - *next_mu_product);
        p->nadam_avg_factor = mu_next / (1.0 - *next_mu_product * mu_next);
    }
}

/* The loss scale never leaves fp32's normal range: the kernels take it as an fp32 value. */
#define CUMLP_LOSS_SCALE_MIN 0x1p-126
#define CUMLP_LOSS_SCALE_MAX ((double)FLT_MAX)

/* The loss scaler's reaction to a step on gradients computed under it: an overflow (finite = 0)
 * backs the scale off, a step taken counts towards growth (cumlp.h, cumlp_loss_scaler). */
CUMLP_HD void cumlp_loss_scaler_react(cumlp_loss_scaler *s, int finite) {
    if (!finite) {
        s->overflows++;
        s->clean_steps = 0;
        s->scale = fmax(s->scale * s->backoff_factor, CUMLP_LOSS_SCALE_MIN);
        return;
    }
    s->clean_steps++;
    if (s->growth_interval == 0 || s->clean_steps < s->growth_interval) return;
    s->clean_steps = 0;
    if (s->scale * s->growth_factor <= CUMLP_LOSS_SCALE_MAX) s->scale *= s->growth_factor;
}

/* What became of a step. */
enum {
    CUMLP_STEP_TAKEN = 0,
    CUMLP_STEP_LOSS_NON_FINITE = 1,  /* the loss is NaN or Inf (judged when check_loss is set) */
    CUMLP_STEP_GRADS_NON_FINITE = 2, /* a gradient is NaN or Inf (no loss scaler) */
    CUMLP_STEP_OVERFLOW = 3,         /* the loss-scaled gradients overflowed (FP16) */
    CUMLP_STEP_HALTED = 4            /* not applied: a queued step before it failed (halted) */
};

/* One step's decision: the optimizer's and the loss scaler's state before it, what the backward
 * pass measured, and what the rule makes of them. Plain data, copied between host and device. */
typedef struct cumlp_step_state {
    cumlp_optimizer_options options;
    cumlp_loss_scaler scaler; /* FP16's; reacts only when grads_scaled */
    int64_t steps, skipped_steps;
    double mu_product;    /* NAdam's P_t over the steps taken */
    double gradient_norm; /* out: of this step's gradients (NaN when the loss was not finite) */
    double grads_scale;   /* what the gradient arena holds beyond the gradients (FP16's scale) */
    int grads_scaled;     /* the gradients were computed under the loss scaler */
    int check_loss;       /* judge loss_sum too */
    double loss_sum;      /* in: the batch's summed loss (when check_loss) */
    double sum_squares;   /* in: of the gradient arena, as it holds them */
    int grads_finite;     /* in: no gradient is NaN or Inf (check_finite's flag; on the device
                             isfinite(sum_squares), exact for fp32 squares summed in double) */
    float delta_scale;    /* in: the factor the backward pass multiplied the output delta by */
    int outcome;          /* out: a CUMLP_STEP_* */
    cumlp_step_params params;     /* out, when taken: the update's hyper-parameters */
    cumlp_update_params_f update; /* out, when taken: the same as the fp32 rule takes them */
    /* Queued steps (cumlp_train_step_async): the host writes the state before the first and
     * reads it after the last, so the counters below run on over the steps between. */
    double batch_samples;    /* in: the batch's columns, for the summary's mean loss */
    int halt_on_failure;     /* a failure (options.non_finite_error) halts the later steps */
    int halted;              /* out: the outcome of the step that failed, 0 while none has */
    double halted_loss_sum;  /* out: its loss_sum */
    int64_t summary_steps;   /* out: steps decided since the host wrote the state */
    int64_t summary_taken;   /* out: of them taken */
    int64_t summary_skipped; /* out: skipped (counted in skipped_steps) */
    int64_t summary_failed;  /* out: failed (non_finite_error) or halted */
    double summary_loss_sum; /* out: the finite losses (check_loss), summed over their samples */
    double summary_samples;  /* out: those losses' samples */
    double step_grads_scale; /* out: the grads_scale the last decided step's gradients carry */
    /* What the fit loop (src/fit.c) reads of its queued steps beyond the summary. */
    int64_t max_skips_in_a_row;   /* in: a run of this many skipped steps halts (0: none does) */
    int64_t skips_in_a_row;       /* in/out: the run of skipped steps up to the last decided */
    int halted_by_skips;          /* out: the halt was that run's (the step was skipped) */
    int64_t halted_at;            /* out: summary_steps when the step that halted was decided */
    double halted_scale_before;   /* out: the loss scale that step's gradients carried (FP16) */
    int64_t summary_correct;      /* out: the taken steps' right answers (step_score) */
    double summary_taken_loss;    /* in/out: the taken steps' losses, mean x samples, added */
    double summary_taken_samples; /* out: the taken steps' samples */
    double summary_taken_norms;   /* in/out: the taken steps' gradient norms, added */
} cumlp_step_state;

/* The decision itself (cumlp_step_decide). */
CUMLP_HD void cumlp_step_decide_one(cumlp_step_state *s) {
    if (s->check_loss && !isfinite(s->loss_sum)) {
        s->gradient_norm = (double)NAN;
        s->outcome = CUMLP_STEP_LOSS_NON_FINITE;
        if (!s->options.non_finite_error) s->skipped_steps++;
        return;
    }
    int finite = s->grads_finite;
    s->gradient_norm = sqrt(s->sum_squares) / s->grads_scale;
    if (!finite && s->grads_scaled) {
        cumlp_loss_scaler_react(&s->scaler, 0);
        s->skipped_steps++;
        s->outcome = CUMLP_STEP_OVERFLOW;
        return;
    }
    if (!finite) {
        s->outcome = CUMLP_STEP_GRADS_NON_FINITE;
        if (!s->options.non_finite_error) s->skipped_steps++;
        return;
    }
    int64_t t = s->steps + 1;
    double mu_product = s->mu_product;
    cumlp_step_params_of(&s->options, t, s->gradient_norm, s->mu_product, &s->params, &mu_product);
    s->params.grad_scale /= s->grads_scale;
    s->update = cumlp__update_params_f(&s->params);
    s->steps = t;
    s->mu_product = mu_product;
    if (s->grads_scaled) cumlp_loss_scaler_react(&s->scaler, 1);
    s->outcome = CUMLP_STEP_TAKEN;
}

/* a * b rounded on its own: nvcc would fuse it with the sum it feeds into one fma, which the host
 * rounds twice. */
CUMLP_HD double cumlp_mul_unfused(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}

/* Halts the steps after the one just decided (by_skips: a run of skipped steps ended it), keeping
 * what its failure's message needs. */
CUMLP_HD void cumlp_step_halt(cumlp_step_state *s, int by_skips) {
    s->halted = s->outcome;
    s->halted_by_skips = by_skips;
    s->halted_at = s->summary_steps;
    s->halted_loss_sum = s->loss_sum;
    s->halted_scale_before = s->grads_scale;
}

/* Decides the step s describes and advances its state: a step taken counts (steps, the NAdam
 * product, the scaler's growth) and gets its hyper-parameters; a step not taken counts as skipped
 * unless options.non_finite_error makes it an error, an overflow always counts and backs the scale
 * off. The gradient norm divides out grads_scale, and so does the update's grad_scale. Then the
 * summary counts the step, and the loss scale of the next step is the scaler's (FP16), so that
 * steps queued one after another need nothing from the host between them. */
CUMLP_HD void cumlp_step_decide(cumlp_step_state *s) {
    s->summary_steps++;
    s->step_grads_scale = s->grads_scale;
    if (s->halted) {
        s->outcome = CUMLP_STEP_HALTED;
        s->summary_failed++;
        return;
    }
    cumlp_step_decide_one(s);
    if (s->check_loss && isfinite(s->loss_sum)) {
        s->summary_loss_sum += s->loss_sum;
        s->summary_samples += s->batch_samples;
    }
    if (s->outcome == CUMLP_STEP_TAKEN) {
        s->summary_taken++;
        s->skips_in_a_row = 0;
        /* the mean times the samples, as the fit loop adds up the losses it waited for */
        s->summary_taken_loss +=
            cumlp_mul_unfused(s->loss_sum / s->batch_samples, s->batch_samples);
        s->summary_taken_samples += s->batch_samples;
        s->summary_taken_norms += s->gradient_norm;
    } else if (s->outcome == CUMLP_STEP_OVERFLOW || !s->options.non_finite_error) {
        s->summary_skipped++;
        s->skips_in_a_row++;
        if (s->halt_on_failure && s->max_skips_in_a_row > 0 &&
            s->skips_in_a_row >= s->max_skips_in_a_row)
            cumlp_step_halt(s, 1);
    } else {
        s->summary_failed++;
        if (s->halt_on_failure) cumlp_step_halt(s, 0);
    }
    if (s->grads_scaled) s->grads_scale = s->scaler.scale, s->delta_scale = (float)s->scaler.scale;
}

/* ---- the training accuracy of a step's batch ----------------------------------------------- */

/* What counts as a right answer: nothing (regression), the largest output matching the largest
 * target (classes, one-hot targets), or the one output on the target's side of 0.5 (a sigmoid
 * output with binary cross-entropy). */
enum { CUMLP_SCORE_NONE = 0, CUMLP_SCORE_LARGEST = 1, CUMLP_SCORE_BINARY = 2 };

/* The index of the largest of v[0..n): the first of equals, a number before a NaN. */
CUMLP_HD int64_t cumlp_argmax(const float *v, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best] || (isnan(v[best]) && !isnan(v[i]))) best = i;
    return best;
}

/* Whether one sample's outputs out[0..rows) answer its targets target[0..rows) right. */
CUMLP_HD int cumlp_column_correct(const float *out, const float *target, int64_t rows, int kind) {
    if (kind == CUMLP_SCORE_LARGEST) return cumlp_argmax(out, rows) == cumlp_argmax(target, rows);
    if (kind == CUMLP_SCORE_BINARY) return (out[0] >= 0.5f) == (target[0] >= 0.5f);
    return 0;
}

#endif /* CUMLP_STEP_RULE_H */
