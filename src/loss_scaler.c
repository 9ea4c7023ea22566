/* loss_scaler.c - FP16's dynamic loss scaler (cumlp.h, cumlp_loss_scaler): its settings and
 * state. The scale is applied by the backward pass (src/network.c, the output delta) and divided
 * out by the optimizer step, whose rule (kernels/step_rule.h, cumlp_loss_scaler_react) makes the
 * scaler's reaction to it. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The scale never leaves fp32's normal range (kernels/step_rule.h). */
#define SMALLEST_SCALE CUMLP_LOSS_SCALE_MIN
#define LARGEST_SCALE  CUMLP_LOSS_SCALE_MAX

cumlp_status cumlp_loss_scaler_defaults(cumlp_loss_scaler *scaler) {
    CUMLP_FAIL_IF(!scaler, NULL, CUMLP_ERROR_INVALID_VALUE, "scaler is NULL");
    memset(scaler, 0, sizeof *scaler);
    scaler->scale = 65536.0; /* 2^16, PyTorch's GradScaler's init_scale */
    scaler->growth_factor = 2.0;
    scaler->backoff_factor = 0.5;
    scaler->growth_interval = 2000;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_network_get_loss_scaler(const cumlp_network *net, cumlp_loss_scaler *scaler) {
    CUMLP_FAIL_IF(!net, NULL, CUMLP_ERROR_INVALID_VALUE, "net is NULL");
    CUMLP_FAIL_IF(!scaler, net->ctx, CUMLP_ERROR_INVALID_VALUE, "scaler is NULL");
    cumlp_status st = cumlp__network_settle(net);
    if (st == CUMLP_SUCCESS) *scaler = net->scaler;
    return st;
}

const char *cumlp__loss_scaler_problem(const cumlp_loss_scaler *s, char *buf, size_t size) {
    if (!(s->scale >= SMALLEST_SCALE && s->scale <= LARGEST_SCALE))
        snprintf(buf, size, "scale %g must be in [2^-126, %g] (fp32's normal range)", s->scale,
                 LARGEST_SCALE);
    else if (!(s->growth_factor >= 1 && isfinite(s->growth_factor)))
        snprintf(buf, size, "growth_factor %g must be finite and >= 1", s->growth_factor);
    else if (!(s->backoff_factor > 0 && s->backoff_factor <= 1))
        snprintf(buf, size, "backoff_factor %g must be in (0, 1]", s->backoff_factor);
    else if (s->growth_interval < 0 || s->clean_steps < 0 || s->overflows < 0)
        snprintf(buf, size,
                 "growth_interval %lld, clean_steps %lld and overflows %lld must be >= 0",
                 (long long)s->growth_interval, (long long)s->clean_steps, (long long)s->overflows);
    else
        return NULL;
    return buf;
}

cumlp_status cumlp_network_set_loss_scaler(cumlp_network *net, const cumlp_loss_scaler *scaler) {
    CUMLP_FAIL_IF(!net, NULL, CUMLP_ERROR_INVALID_VALUE, "net is NULL");
    CUMLP_FAIL_IF(!scaler, net->ctx, CUMLP_ERROR_INVALID_VALUE, "scaler is NULL");
    char why[160];
    const char *problem = cumlp__loss_scaler_problem(scaler, why, sizeof why);
    CUMLP_FAIL_IF(problem, net->ctx, CUMLP_ERROR_INVALID_VALUE, "%s", problem);
    cumlp_status st = cumlp__network_settle(net);
    if (st != CUMLP_SUCCESS) return st;
    net->scaler = *scaler;
    return CUMLP_SUCCESS;
}
