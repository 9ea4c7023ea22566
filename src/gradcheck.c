/*
 * gradcheck.c - backpropagation checked against central finite differences in double precision.
 *
 * The finite differences run on a reference-backend copy of the network (which stores doubles),
 * so they are accurate to ~1e-10 whatever backend the network itself is on; the analytic
 * gradients come from the network's own backend.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* State of one check, so that every exit frees the same things. */
typedef struct gradcheck {
    const char *func;       /* the public function, which messages name */
    cumlp_context *ctx;     /* the network's context, where errors are reported */
    cumlp_context *ref_ctx; /* the reference context of the copy */
    cumlp_network *copy;
    cumlp_tensor *x, *t;
    double *analytic;      /* num_params */
    double *errors;        /* 2 * num_layers results, copied out only when the check succeeds */
    float *staging;        /* host floats for transfers from a non-reference backend */
    uint64_t base_pattern; /* kink_pattern() at the unperturbed parameters */
} gradcheck;

static void gradcheck_free(gradcheck *g) {
    cumlp_tensor_destroy(g->x);
    cumlp_tensor_destroy(g->t);
    cumlp_network_destroy(g->copy);
    cumlp_context_destroy(g->ref_ctx);
    free(g->analytic);
    free(g->errors);
    free(g->staging);
}

/* dst (reference tensor or arena, doubles) <- src (any backend), through floats unless both are
 * reference buffers, which are copied exactly. */
static cumlp_status transfer(gradcheck *g, const cumlp_context *src_ctx, const void *src, void *dst,
                             size_t count) {
    if (src_ctx->backend == CUMLP_BACKEND_REFERENCE) {
        memcpy(dst, src, count * sizeof(double));
        return CUMLP_SUCCESS;
    }
    cumlp_status st = src_ctx->ops->download((cumlp_context *)src_ctx, src, g->staging, count);
    if (st == CUMLP_SUCCESS) st = g->ref_ctx->ops->upload(g->ref_ctx, dst, g->staging, count);
    return st;
}

static cumlp_status copy_network(gradcheck *g, const cumlp_network *net) {
    int L = net->num_layers;
    int64_t *widths = malloc(sizeof *widths * (size_t)(L + 1));
    int *acts = malloc(sizeof *acts * (size_t)L);
    cumlp_status st = CUMLP_SUCCESS;
    if (!widths || !acts) {
        st = cumlp__fail(net->ctx, CUMLP_ERROR_ALLOC_FAILED, g->func, "out of host memory");
    } else {
        widths[0] = net->layers[0].fan_in;
        for (int l = 0; l < L; l++) {
            widths[l + 1] = net->layers[l].fan_out;
            acts[l] = net->layers[l].activation;
        }
        cumlp_network_options o;
        cumlp_network_defaults(&o);
        o.loss = net->loss;
        o.leaky_relu_slope = net->leaky_slope;
        st = cumlp_network_create(g->ref_ctx, L, widths, acts, &o, &g->copy);
        if (st != CUMLP_SUCCESS)
            st = cumlp__fail(net->ctx, st, g->func, "%s", cumlp_last_error(g->ref_ctx));
    }
    free(widths);
    free(acts);
    if (st == CUMLP_SUCCESS)
        st = transfer(g, net->ctx, net->params, g->copy->params, net->num_params);
    return st;
}

static cumlp_status copy_batch(gradcheck *g, const cumlp_tensor *src, cumlp_tensor **dst) {
    cumlp_status st = cumlp_tensor_create(g->ref_ctx, src->rows, src->cols, dst);
    if (st != CUMLP_SUCCESS)
        return cumlp__fail(g->ctx, st, g->func, "%s", cumlp_last_error(g->ref_ctx));
    return transfer(g, src->ctx, src->data, (*dst)->data, (size_t)(src->rows * src->cols));
}

/* The network's own gradients, left in its arena by the cumlp_loss_backward at the start of the
 * check, widened to double (and in FP16 divided by the loss scale the arena holds them with). */
static cumlp_status read_analytic_gradients(gradcheck *g, const cumlp_network *net) {
    if (net->ctx->backend == CUMLP_BACKEND_REFERENCE) {
        memcpy(g->analytic, net->grads, net->num_params * sizeof(double));
        return CUMLP_SUCCESS;
    }
    cumlp_status st = net->ctx->ops->download(net->ctx, net->grads, g->staging, net->num_params);
    for (size_t i = 0; st == CUMLP_SUCCESS && i < net->num_params; i++)
        g->analytic[i] = g->staging[i] / net->grads_scale;
    return st;
}

/* Which side of its kink every ReLU / leaky ReLU unit of the copy is on after the last
 * evaluation, as a hash: a finite difference whose evaluations see different patterns straddles a
 * kink, where the loss is not differentiable along the step. */
static uint64_t kink_pattern(const gradcheck *g) {
    uint64_t hash = 1469598103934665603ull; /* FNV-1a */
    const cumlp_network *net = g->copy;
    for (int l = 0; l < net->num_layers; l++) {
        int act = net->layers[l].activation;
        if (act != CUMLP_ACT_RELU && act != CUMLP_ACT_LEAKY_RELU) continue;
        const double *a = net->layers[l].a;
        size_t n = (size_t)(net->layers[l].fan_out * g->x->cols);
        for (size_t k = 0; k < n; k++)
            hash = (hash ^ (uint64_t)(a[k] > 0)) * 1099511628211ull;
    }
    return hash;
}

/* E at parameter i set to value; *same_side = 0 if a kink lies between it and the base point. */
static cumlp_status loss_at(gradcheck *g, size_t i, double value, double *loss, int *same_side) {
    double *w = (double *)g->copy->params + i;
    double saved = *w;
    *w = value;
    cumlp_status st = cumlp_evaluate_loss(g->copy, g->x, g->t, loss);
    *w = saved;
    if (st != CUMLP_SUCCESS)
        return cumlp__fail(g->ctx, st, g->func, "at parameter %zu: %s", i,
                           cumlp_last_error(g->ref_ctx));
    if (kink_pattern(g) != g->base_pattern) *same_side = 0;
    return CUMLP_SUCCESS;
}

/* The central difference D(h) = (E(w + h) - E(w - h)) / 2h for parameter i of the copy. */
static cumlp_status central_difference(gradcheck *g, size_t i, double h, double *out,
                                       int *same_side) {
    double w = ((double *)g->copy->params)[i], plus, minus;
    cumlp_status st = loss_at(g, i, w + h, &plus, same_side);
    if (st == CUMLP_SUCCESS) st = loss_at(g, i, w - h, &minus, same_side);
    if (st == CUMLP_SUCCESS) *out = (plus - minus) / (2 * h);
    return st;
}

/* D(h) and D(h/2) combined by Richardson extrapolation, (4 D(h/2) - D(h)) / 3: the h^2 error
 * terms cancel, leaving O(h^4), so a step large enough to keep rounding small still gives
 * ~1e-12 accuracy. A step that straddles a ReLU kink is shrunk tenfold, up to four times. */
static cumlp_status finite_difference(gradcheck *g, size_t i, double h, double *out) {
    cumlp_status st = CUMLP_SUCCESS;
    for (int attempt = 0; attempt < 5 && st == CUMLP_SUCCESS; attempt++, h /= 10) {
        double coarse, fine;
        int same_side = 1;
        st = central_difference(g, i, h, &coarse, &same_side);
        if (st == CUMLP_SUCCESS) st = central_difference(g, i, h / 2, &fine, &same_side);
        if (st == CUMLP_SUCCESS) *out = (4 * fine - coarse) / 3;
        if (same_side) break;
    }
    return st;
}

/* Largest relative error over params [begin, begin + count) (see cumlp.h for the measure). */
static cumlp_status tensor_error(gradcheck *g, size_t begin, size_t count, double h, double *err) {
    double *numeric = malloc(sizeof *numeric * count);
    if (!numeric)
        return cumlp__fail(g->ctx, CUMLP_ERROR_ALLOC_FAILED, g->func, "out of host memory");
    cumlp_status st = CUMLP_SUCCESS;
    double scale = 0;
    for (size_t i = 0; i < count && st == CUMLP_SUCCESS; i++) {
        st = finite_difference(g, begin + i, h, &numeric[i]);
        if (st == CUMLP_SUCCESS)
            scale = fmax(scale, fmax(fabs(numeric[i]), fabs(g->analytic[begin + i])));
    }
    double worst = 0;
    for (size_t i = 0; i < count && st == CUMLP_SUCCESS; i++) {
        double a = g->analytic[begin + i], n = numeric[i];
        double denom = fmax(fmax(fabs(a), fabs(n)), fmax(1e-3 * scale, 1e-8));
        double rel = fabs(a - n) / denom;
        if (isnan(rel)) { /* a NaN (or an Inf against an Inf) is the answer: it never passes */
            worst = rel;
            break;
        }
        if (rel > worst) worst = rel;
    }
    free(numeric);
    if (st == CUMLP_SUCCESS) *err = worst;
    return st;
}

cumlp_status cumlp_gradient_check(cumlp_network *net, const cumlp_tensor *X, const cumlp_tensor *T,
                                  double step_size, double *max_rel_error, int64_t count) {
    CUMLP_FAIL_IF(!net, NULL, CUMLP_ERROR_INVALID_VALUE, "net is NULL");
    cumlp_context *ctx = net->ctx;
    CUMLP_FAIL_IF(!max_rel_error, ctx, CUMLP_ERROR_INVALID_VALUE, "max_rel_error is NULL");
    CUMLP_FAIL_IF(count != 2 * (int64_t)net->num_layers, ctx, CUMLP_ERROR_INVALID_VALUE,
                  "count is %lld; it must be 2 * num_layers = %d", (long long)count,
                  2 * net->num_layers);
    CUMLP_FAIL_IF(!(step_size >= 0) || !isfinite(step_size), ctx, CUMLP_ERROR_INVALID_VALUE,
                  "step_size %g must be finite and >= 0", step_size);
    double h = step_size > 0 ? step_size : 1e-3;

    gradcheck g = {.func = __func__, .ctx = ctx};
    /* Validates X and T and leaves the analytic gradients in the network's arena: this rank's
     * own, never all-reduced (the check is local on a network with a communicator). */
    cumlp_status st = cumlp__check_loss_batch(net, X, T, __func__);
    if (st == CUMLP_SUCCESS) st = cumlp__network_settle(net); /* the loss scale queued steps set */
    if (st == CUMLP_SUCCESS) st = cumlp__loss_backward_local(net, X, T, (double)X->cols, NULL);
    if (st != CUMLP_SUCCESS) return st;
    size_t staging = net->num_params;
    if ((size_t)(X->rows * X->cols) > staging) staging = (size_t)(X->rows * X->cols);
    if ((size_t)(T->rows * T->cols) > staging) staging = (size_t)(T->rows * T->cols);
    g.analytic = malloc(sizeof *g.analytic * net->num_params);
    g.staging = malloc(sizeof *g.staging * staging);
    g.errors = malloc(sizeof *g.errors * (size_t)count);
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_REFERENCE;
    if (!g.analytic || !g.staging || !g.errors)
        st = cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, __func__, "out of host memory");
    else if ((st = cumlp_context_create(&g.ref_ctx, &o)) != CUMLP_SUCCESS)
        cumlp__fail(ctx, st, __func__, "%s", cumlp_last_error(NULL));
    if (st == CUMLP_SUCCESS) st = copy_network(&g, net);
    if (st == CUMLP_SUCCESS) st = copy_batch(&g, X, &g.x);
    if (st == CUMLP_SUCCESS) st = copy_batch(&g, T, &g.t);
    if (st == CUMLP_SUCCESS) st = read_analytic_gradients(&g, net);
    double base_loss;
    if (st == CUMLP_SUCCESS) st = cumlp_evaluate_loss(g.copy, g.x, g.t, &base_loss);
    if (st == CUMLP_SUCCESS) g.base_pattern = kink_pattern(&g);
    for (int l = 0; l < net->num_layers && st == CUMLP_SUCCESS; l++) {
        const cumlp_layer *L = &net->layers[l];
        st = tensor_error(&g, L->weight_offset, (size_t)(L->fan_in * L->fan_out), h,
                          &g.errors[2 * l]);
        if (st == CUMLP_SUCCESS)
            st = tensor_error(&g, L->bias_offset, (size_t)L->fan_out, h, &g.errors[2 * l + 1]);
    }
    if (st == CUMLP_SUCCESS) memcpy(max_rel_error, g.errors, sizeof *g.errors * (size_t)count);
    gradcheck_free(&g);
    return st;
}
