/* network.c - the network: description, parameter arena, forward and backward passes. */
#include "dist/dist.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest parameter count of a network, and of one work buffer: byte sizes fit in ptrdiff_t. */
#define MAX_ELEMENTS ((int64_t)(PTRDIFF_MAX / 8))

int cumlp__activation_needs_z(int activation) {
    return activation == CUMLP_ACT_GELU;
}

int cumlp__loss_needs_z(int loss) {
    return loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY ||
           loss == CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY;
}

/* Whether layer i keeps its pre-activation Z in training. */
static int layer_keeps_z(const cumlp_network *net, int i) {
    if (cumlp__activation_needs_z(net->layers[i].activation)) return 1;
    return i == net->num_layers - 1 && cumlp__loss_needs_z(net->loss);
}

cumlp_status cumlp_network_defaults(cumlp_network_options *options) {
    CUMLP_FAIL_IF(!options, NULL, CUMLP_ERROR_INVALID_VALUE, "options is NULL");
    memset(options, 0, sizeof *options);
    options->loss = CUMLP_LOSS_SQUARED_ERROR;
    options->init = CUMLP_INIT_XAVIER_UNIFORM;
    options->init_scale = 1.0;
    options->bias_init = CUMLP_BIAS_ZERO;
    options->leaky_relu_slope = 0.01;
    options->seed = 42;
    return CUMLP_SUCCESS;
}

/* ---- validation of a description ---------------------------------------------------------- */

static cumlp_status check_options(const cumlp_context *ctx, const char *func,
                                  const cumlp_network_options *o) {
    if (o->loss < 0 || o->loss >= CUMLP_LOSS_COUNT)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "unknown loss %d", o->loss);
    if (o->init < 0 || o->init >= CUMLP_INIT_COUNT)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "unknown init scheme %d", o->init);
    if (!isfinite(o->init_scale) || o->init_scale < 0)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "init_scale %g must be finite and >= 0", o->init_scale);
    if (o->bias_init != CUMLP_BIAS_ZERO && o->bias_init != CUMLP_BIAS_DRAWN)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "unknown bias_init %d",
                           o->bias_init);
    if (!(o->leaky_relu_slope >= 0 && o->leaky_relu_slope < 1))
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "leaky_relu_slope %g must be in [0, 1)", o->leaky_relu_slope);
    return CUMLP_SUCCESS;
}

static cumlp_status check_layers(const cumlp_context *ctx, const char *func, int num_layers,
                                 const int64_t *widths, const int *activations, int loss,
                                 int64_t *num_params) {
    for (int i = 0; i <= num_layers; i++) {
        if (widths[i] < 1 || widths[i] > CUMLP_MAX_DIM)
            return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                               "widths[%d] is %lld; widths must be between 1 and %lld", i,
                               (long long)widths[i], (long long)CUMLP_MAX_DIM);
    }
    int64_t total = 0;
    for (int l = 0; l < num_layers; l++) {
        int a = activations[l];
        if (a < 0 || a >= CUMLP_ACTIVATION_COUNT)
            return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                               "activations[%d] is %d, not a cumlp_activation", l, a);
        if (a == CUMLP_ACT_SOFTMAX && l != num_layers - 1)
            return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                               "softmax is allowed only on the output layer (layer %d of %d)", l,
                               num_layers);
        int64_t layer_params;
        if (!cumlp__mul_size(widths[l + 1], widths[l] + 1, MAX_ELEMENTS, &layer_params) ||
            total > MAX_ELEMENTS - layer_params)
            return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                               "the parameter count overflows at layer %d (%lld x %lld)", l,
                               (long long)widths[l + 1], (long long)widths[l]);
        total += layer_params;
    }
    int out = activations[num_layers - 1];
    if (out == CUMLP_ACT_SOFTMAX && widths[num_layers] < 2)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "a softmax output layer needs at least 2 outputs: over one output it is "
                           "1 whatever its input (one output takes sigmoid with binary "
                           "cross-entropy)");
    int ok = (loss == CUMLP_LOSS_SQUARED_ERROR && out != CUMLP_ACT_SOFTMAX) ||
             (loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY && out == CUMLP_ACT_SOFTMAX) ||
             (loss == CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY && out == CUMLP_ACT_SIGMOID);
    if (!ok)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "the loss does not accept a %s output layer (squared error takes any "
                           "output but softmax, softmax cross-entropy needs softmax, binary "
                           "cross-entropy needs sigmoid)",
                           cumlp_activation_name(out));
    *num_params = total;
    return CUMLP_SUCCESS;
}

/* ---- initialization ------------------------------------------------------------------------ */

static int init_is_normal(int init) {
    return init == CUMLP_INIT_NORMAL || init == CUMLP_INIT_XAVIER_NORMAL ||
           init == CUMLP_INIT_HE_NORMAL;
}

/* sigma (normal) or half-width (uniform) of a layer's weights. */
static double init_spread(int init, double scale, int64_t fan_in, int64_t fan_out) {
    switch (init) {
    case CUMLP_INIT_XAVIER_NORMAL:
        return scale * sqrt(2.0 / (double)(fan_in + fan_out));
    case CUMLP_INIT_XAVIER_UNIFORM:
        return scale * sqrt(6.0 / (double)(fan_in + fan_out));
    case CUMLP_INIT_HE_NORMAL:
        return scale * sqrt(2.0 / (double)fan_in);
    case CUMLP_INIT_HE_UNIFORM:
        return scale * sqrt(6.0 / (double)fan_in);
    default:
        return scale; /* NORMAL: sigma; UNIFORM: epsilon */
    }
}

/* One generator call draws the whole arena (uniform on (0,1] or standard normal); then each
 * layer's range is mapped to its distribution: normal -> sigma x, uniform -> a (2u - 1). */
static cumlp_status init_parameters(cumlp_network *net, const cumlp_network_options *o) {
    cumlp_context *ctx = net->ctx;
    const cumlp_backend_ops *ops = ctx->ops;
    int normal = init_is_normal(o->init);
    cumlp_status st = ops->random(ctx, normal ? CUMLP_DIST_NORMAL : CUMLP_DIST_UNIFORM, o->seed,
                                  net->num_params, net->params);
    for (int l = 0; l < net->num_layers && st == CUMLP_SUCCESS; l++) {
        const cumlp_layer *L = &net->layers[l];
        double spread = init_spread(o->init, o->init_scale, L->fan_in, L->fan_out);
        double scale = normal ? spread : 2.0 * spread;
        double shift = normal ? 0.0 : -spread;
        size_t count = (size_t)(L->fan_in * L->fan_out);
        if (o->bias_init == CUMLP_BIAS_DRAWN) count += (size_t)L->fan_out;
        st = ops->scale_shift(ctx, cumlp__at(ctx, net->params, L->weight_offset), count, scale,
                              shift);
        if (st == CUMLP_SUCCESS && o->bias_init == CUMLP_BIAS_ZERO)
            st = ops->fill(ctx, cumlp__at(ctx, net->params, L->bias_offset), (size_t)L->fan_out,
                           0.0f);
    }
    return st;
}

/* ---- create / destroy ---------------------------------------------------------------------- */

static void free_work_buffers(cumlp_network *net) {
    cumlp_context *ctx = net->ctx;
    for (int l = 0; l < net->num_layers; l++) {
        cumlp_layer *L = &net->layers[l];
        ctx->ops->free(ctx, L->z);
        ctx->ops->free(ctx, L->a);
        ctx->ops->free(ctx, L->relu_mask);
        L->z = L->a = L->relu_mask = NULL;
        L->forward_epilogue = 0;
    }
    ctx->ops->free(ctx, net->grad_a);
    ctx->ops->free(ctx, net->grad_b);
    ctx->ops->free(ctx, net->x16);
    net->grad_a = net->grad_b = net->x16 = NULL;
    net->capacity = 0;
    net->buffers_generation++;
}

void cumlp_network_destroy(cumlp_network *net) {
    if (!net) return;
    (void)cumlp__network_settle(net); /* no queued step may run on freed buffers */
    cumlp__dist_leave(net);
    if (net->layers) free_work_buffers(net);
    net->ctx->ops->free(net->ctx, net->params16);
    net->ctx->ops->free(net->ctx, net->params);
    net->ctx->ops->free(net->ctx, net->grads);
    free(net->layers);
    free(net);
}

cumlp_status cumlp_network_create(cumlp_context *ctx, int num_layers, const int64_t *widths,
                                  const int *activations, const cumlp_network_options *options,
                                  cumlp_network **out) {
    if (out) *out = NULL;
    CUMLP_FAIL_IF(!ctx, NULL, CUMLP_ERROR_INVALID_VALUE, "ctx is NULL");
    CUMLP_FAIL_IF(!out, ctx, CUMLP_ERROR_INVALID_VALUE, "net is NULL");
    if (ctx->sticky) return ctx->sticky;
    CUMLP_FAIL_IF(num_layers < 1, ctx, CUMLP_ERROR_INVALID_VALUE,
                  "num_layers is %d; a network needs at least 1 layer", num_layers);
    CUMLP_FAIL_IF(!widths || !activations, ctx, CUMLP_ERROR_INVALID_VALUE, "%s is NULL",
                  widths ? "activations" : "widths");
    cumlp_network_options defaults;
    cumlp_network_defaults(&defaults);
    const cumlp_network_options *o = options ? options : &defaults;
    cumlp_status st = check_options(ctx, __func__, o);
    int64_t num_params = 0;
    if (st == CUMLP_SUCCESS)
        st = check_layers(ctx, __func__, num_layers, widths, activations, o->loss, &num_params);
    if (st != CUMLP_SUCCESS) return st;

    cumlp_network *net = calloc(1, sizeof *net);
    cumlp_layer *layers = calloc((size_t)num_layers, sizeof *layers);
    if (!net || !layers) {
        free(net);
        free(layers);
        return cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, __func__, "out of host memory");
    }
    net->ctx = ctx;
    net->num_layers = num_layers;
    net->loss = o->loss;
    net->leaky_slope = o->leaky_relu_slope;
    net->layers = layers;
    net->num_params = (size_t)num_params;
    net->storage = CUMLP_STORAGE_NATIVE;
    cumlp_loss_scaler_defaults(&net->scaler);
    net->grads_scale = 1.0;
    size_t offset = 0;
    for (int l = 0; l < num_layers; l++) {
        layers[l].fan_in = widths[l];
        layers[l].fan_out = widths[l + 1];
        layers[l].activation = activations[l];
        layers[l].weight_offset = offset;
        offset += (size_t)(widths[l] * widths[l + 1]);
        layers[l].bias_offset = offset;
        offset += (size_t)widths[l + 1];
        if (widths[l + 1] > net->max_width) net->max_width = widths[l + 1];
    }
    st = ctx->ops->alloc(ctx, net->num_params, &net->params);
    if (st == CUMLP_SUCCESS) st = ctx->ops->alloc(ctx, net->num_params, &net->grads);
    if (st == CUMLP_SUCCESS) st = ctx->ops->fill(ctx, net->grads, net->num_params, 0.0f);
    if (st == CUMLP_SUCCESS) st = init_parameters(net, o);
    if (st != CUMLP_SUCCESS) {
        cumlp_network_destroy(net);
        return st;
    }
    *out = net;
    return CUMLP_SUCCESS;
}

/* ---- accessors ----------------------------------------------------------------------------- */

int cumlp_network_num_layers(const cumlp_network *net) {
    return net ? net->num_layers : -1;
}

int64_t cumlp_network_width(const cumlp_network *net, int i) {
    if (!net || i < 0 || i > net->num_layers) return -1;
    return i == 0 ? net->layers[0].fan_in : net->layers[i - 1].fan_out;
}

int cumlp_network_activation(const cumlp_network *net, int layer) {
    if (!net || layer < 0 || layer >= net->num_layers) return -1;
    return net->layers[layer].activation;
}

int cumlp_network_loss(const cumlp_network *net) {
    return net ? net->loss : -1;
}

cumlp_context *cumlp_network_context(const cumlp_network *net) {
    return net ? net->ctx : NULL;
}

int64_t cumlp_network_num_parameters(const cumlp_network *net) {
    return net ? (int64_t)net->num_params : -1;
}

/* The four directions of a host transfer; host arrays are float or double. */
typedef enum transfer_kind { TO_HOST_F32, TO_HOST_F64, FROM_HOST_F32, FROM_HOST_F64 } transfer_kind;

static cumlp_status transfer(cumlp_context *ctx, transfer_kind kind, void *buffer, void *host,
                             size_t count) {
    switch (kind) {
    case TO_HOST_F32:
        return ctx->ops->download(ctx, buffer, host, count);
    case TO_HOST_F64:
        return cumlp__download_f64(ctx, buffer, host, count);
    case FROM_HOST_F32:
        return ctx->ops->upload(ctx, buffer, host, count);
    default:
        return cumlp__upload_f64(ctx, buffer, host, count);
    }
}

void cumlp__network_parameters_changed(cumlp_network *net) {
    net->params16_stale = 1;
}

/* The arenas a whole-arena transfer reads or writes. */
typedef enum arena_kind { PARAMETERS, GRADIENTS } arena_kind;

/* Divides the count host values of a gradient download by the scale the arena holds them with
 * (FP16's loss scale; a power of two by default, which makes this exact). */
static void unscale(void *host, transfer_kind kind, size_t count, double scale) {
    if (scale == 1.0) return;
    for (size_t i = 0; i < count; i++) {
        if (kind == TO_HOST_F32)
            ((float *)host)[i] = (float)(((float *)host)[i] / scale);
        else
            ((double *)host)[i] /= scale;
    }
}

/* A whole arena (parameters or gradients) to or from the host. */
static cumlp_status arena_transfer(const cumlp_network *net, arena_kind arena, transfer_kind kind,
                                   void *host, int64_t count, const char *func) {
    if (!net) return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "net is NULL");
    if (!host) return cumlp__fail(net->ctx, CUMLP_ERROR_INVALID_VALUE, func, "host is NULL");
    if (count != (int64_t)net->num_params)
        return cumlp__fail(net->ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "count is %lld but the network has %lld parameters", (long long)count,
                           (long long)net->num_params);
    if (net->ctx->sticky) return net->ctx->sticky;
    cumlp_status st = transfer(net->ctx, kind, arena == PARAMETERS ? net->params : net->grads, host,
                               net->num_params);
    if (st == CUMLP_SUCCESS && arena == GRADIENTS)
        unscale(host, kind, net->num_params, net->grads_scale);
    if (st == CUMLP_SUCCESS && (kind == FROM_HOST_F32 || kind == FROM_HOST_F64))
        cumlp__network_parameters_changed((cumlp_network *)net);
    return st;
}

cumlp_status cumlp_network_get_parameters(const cumlp_network *net, float *host, int64_t count) {
    return arena_transfer(net, PARAMETERS, TO_HOST_F32, host, count, __func__);
}

cumlp_status cumlp_network_set_parameters(cumlp_network *net, const float *host, int64_t count) {
    return arena_transfer(net, PARAMETERS, FROM_HOST_F32, (void *)host, count, __func__);
}

cumlp_status cumlp_network_get_parameters_f64(const cumlp_network *net, double *host,
                                              int64_t count) {
    return arena_transfer(net, PARAMETERS, TO_HOST_F64, host, count, __func__);
}

cumlp_status cumlp_network_set_parameters_f64(cumlp_network *net, const double *host,
                                              int64_t count) {
    return arena_transfer(net, PARAMETERS, FROM_HOST_F64, (void *)host, count, __func__);
}

/* The gradients divide out the loss scale they were computed with, which queued steps change. */
cumlp_status cumlp_network_get_gradients(const cumlp_network *net, float *host, int64_t count) {
    cumlp_status st = cumlp__network_settle(net);
    if (st != CUMLP_SUCCESS) return st;
    return arena_transfer(net, GRADIENTS, TO_HOST_F32, host, count, __func__);
}

cumlp_status cumlp_network_get_gradients_f64(const cumlp_network *net, double *host,
                                             int64_t count) {
    cumlp_status st = cumlp__network_settle(net);
    if (st != CUMLP_SUCCESS) return st;
    return arena_transfer(net, GRADIENTS, TO_HOST_F64, host, count, __func__);
}

static cumlp_status check_layer_index(const cumlp_network *net, int layer, const char *func) {
    if (!net) return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "net is NULL");
    if (layer < 0 || layer >= net->num_layers)
        return cumlp__fail(net->ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "layer %d is out of range [0, %d)", layer, net->num_layers);
    return net->ctx->sticky;
}

/* One layer's W and/or b (either host pointer may be NULL) to or from the host. */
static cumlp_status layer_transfer(const cumlp_network *net, int layer, transfer_kind kind,
                                   void *weights, void *biases, const char *func) {
    cumlp_status st = check_layer_index(net, layer, func);
    if (st != CUMLP_SUCCESS) return st;
    cumlp_context *ctx = net->ctx;
    const cumlp_layer *L = &net->layers[layer];
    if (weights)
        st = transfer(ctx, kind, cumlp__at(ctx, net->params, L->weight_offset), weights,
                      (size_t)(L->fan_in * L->fan_out));
    if (st == CUMLP_SUCCESS && biases)
        st = transfer(ctx, kind, cumlp__at(ctx, net->params, L->bias_offset), biases,
                      (size_t)L->fan_out);
    if (kind == FROM_HOST_F32 || kind == FROM_HOST_F64)
        cumlp__network_parameters_changed((cumlp_network *)net);
    return st;
}

cumlp_status cumlp_network_get_layer(const cumlp_network *net, int layer, float *weights,
                                     float *biases) {
    return layer_transfer(net, layer, TO_HOST_F32, weights, biases, __func__);
}

cumlp_status cumlp_network_set_layer(cumlp_network *net, int layer, const float *weights,
                                     const float *biases) {
    return layer_transfer(net, layer, FROM_HOST_F32, (void *)weights, (void *)biases, __func__);
}

cumlp_status cumlp_network_get_layer_f64(const cumlp_network *net, int layer, double *weights,
                                         double *biases) {
    return layer_transfer(net, layer, TO_HOST_F64, weights, biases, __func__);
}

cumlp_status cumlp_network_set_layer_f64(cumlp_network *net, int layer, const double *weights,
                                         const double *biases) {
    return layer_transfer(net, layer, FROM_HOST_F64, (void *)weights, (void *)biases, __func__);
}

cumlp_status cumlp_network_freeze(cumlp_network *net, int layer, int freeze_weights,
                                  int freeze_biases) {
    cumlp_status st = check_layer_index(net, layer, __func__);
    if (st != CUMLP_SUCCESS) return st;
    net->layers[layer].frozen_weights = freeze_weights != 0;
    net->layers[layer].frozen_biases = freeze_biases != 0;
    return CUMLP_SUCCESS;
}

/* ---- work buffers and the precision's formats ----------------------------------------------- */

/* The format of layer l's Z and A: the output layer's stay native (the loss, the softmax and the
 * predictions read them in fp32), the hidden layers' are in the network's format. */
static int layer_storage(const cumlp_network *net, int l) {
    return l == net->num_layers - 1 ? CUMLP_STORAGE_NATIVE : net->storage;
}

/* count elements of format `storage`. */
static cumlp_status alloc_storage(cumlp_context *ctx, int storage, size_t count, void **buffer) {
    return ctx->ops->alloc(ctx, cumlp__storage_native_count(ctx, storage, count), buffer);
}

/* BF16 and FP16 have no backward epilogues: cuBLASLt would write the bias gradient in 16 bits
 * (backend.h), where cumlp sums in fp32. Their ReLU layers run the forward epilogue alone, and
 * the fused kernel's backward pass reads A as it does without epilogues. */
static int no_backward_epilogues(const cumlp_network *net) {
    return net->storage != CUMLP_STORAGE_NATIVE;
}

/* Whether layer l runs the second halves of its passes in GEMM epilogues under the context's
 * setting (cumlp.h, "GEMM epilogues"). */
static int layer_epilogue(const cumlp_network *net, int l) {
    const cumlp_context *ctx = net->ctx;
    const cumlp_layer *L = &net->layers[l];
    if (!ctx->ops->gemm_bias_activation) return 0;
    if (L->activation == CUMLP_ACT_RELU) return ctx->epilogues != CUMLP_EPILOGUES_OFF;
    /* GELU: a hidden layer (the loss differentiates the output layer's exact GELU) whose kept Z
     * cuBLASLt can store (its leading dimension a multiple of 8), in inference as in training,
     * so that the network predicts with the function it was trained as; and in FP32 and TF32
     * only, where the backward epilogue takes the tanh GELU's derivative too (no_backward) */
    return L->activation == CUMLP_ACT_GELU && ctx->epilogues == CUMLP_EPILOGUES_ALL &&
           l < net->num_layers - 1 && L->fan_out % 8 == 0 && !no_backward_epilogues(net);
}

/* Whether layer l keeps a ReLU bitmask: a hidden ReLU layer under epilogues (the output layer's
 * delta comes from the loss, which reads A) in a format that has backward epilogues. */
static int layer_keeps_mask(const cumlp_network *net, int l) {
    return l < net->num_layers - 1 && net->layers[l].activation == CUMLP_ACT_RELU &&
           layer_epilogue(net, l) && !no_backward_epilogues(net);
}

/* Follows the context's precision and epilogue setting: a change of format or setting drops the
 * work buffers (the next reserve makes them anew); a change of format drops the weight copy too,
 * which BF16 and FP16 make here. */
static cumlp_status follow_precision(cumlp_network *net) {
    cumlp_context *ctx = net->ctx;
    int storage = cumlp__precision_storage(ctx->precision);
    if (ctx->epilogues != net->epilogues || storage != net->storage) {
        cumlp_status st = cumlp__network_settle(net); /* queued steps use the buffers */
        if (st != CUMLP_SUCCESS) return st;
    }
    if (ctx->epilogues != net->epilogues) {
        free_work_buffers(net);
        net->epilogues = ctx->epilogues;
    }
    if (storage != net->storage) {
        free_work_buffers(net);
        ctx->ops->free(ctx, net->params16);
        net->params16 = NULL;
        net->storage = storage;
    }
    if (storage == CUMLP_STORAGE_NATIVE || net->params16) return CUMLP_SUCCESS;
    net->params16_stale = 1;
    net->buffers_generation++;
    return alloc_storage(ctx, storage, net->num_params, &net->params16);
}

/* Makes the weight copy from the parameters when they changed outside an optimizer step. */
static cumlp_status refresh_params16(cumlp_network *net) {
    if (!net->params16 || !net->params16_stale) return CUMLP_SUCCESS;
    cumlp_context *ctx = net->ctx;
    cumlp_status st = ctx->ops->convert(ctx, net->params16, net->storage, net->params,
                                        CUMLP_STORAGE_NATIVE, net->num_params);
    if (st == CUMLP_SUCCESS) net->params16_stale = 0;
    return st;
}

static cumlp_status alloc_work_buffers(cumlp_network *net, int64_t cols, size_t delta_count) {
    cumlp_context *ctx = net->ctx;
    cumlp_status st = CUMLP_SUCCESS;
    for (int l = 0; l < net->num_layers && st == CUMLP_SUCCESS; l++) {
        size_t n = (size_t)(net->layers[l].fan_out * cols);
        int storage = layer_storage(net, l);
        st = alloc_storage(ctx, storage, n, &net->layers[l].a);
        if (st == CUMLP_SUCCESS && layer_keeps_z(net, l))
            st = alloc_storage(ctx, storage, n, &net->layers[l].z);
        size_t mask_bytes = cumlp__relu_mask_bytes(net->layers[l].fan_out, cols);
        if (st == CUMLP_SUCCESS && layer_keeps_mask(net, l))
            st = ctx->ops->alloc(ctx, (mask_bytes + ctx->ops->elem_size - 1) / ctx->ops->elem_size,
                                 &net->layers[l].relu_mask);
    }
    if (st == CUMLP_SUCCESS) st = alloc_storage(ctx, net->storage, delta_count, &net->grad_a);
    if (st == CUMLP_SUCCESS) st = alloc_storage(ctx, net->storage, delta_count, &net->grad_b);
    if (st == CUMLP_SUCCESS && net->storage != CUMLP_STORAGE_NATIVE)
        st = alloc_storage(ctx, net->storage, (size_t)(net->layers[0].fan_in * cols), &net->x16);
    return st;
}

cumlp_status cumlp__network_reserve(cumlp_network *net, int64_t cols) {
    cumlp_status st = follow_precision(net);
    if (st == CUMLP_SUCCESS) st = refresh_params16(net);
    if (st != CUMLP_SUCCESS || cols <= net->capacity) return st;
    cumlp_context *ctx = net->ctx;
    int64_t count, input_count;
    if (!cumlp__mul_size(net->max_width, cols, MAX_ELEMENTS, &count) ||
        !cumlp__mul_size(net->layers[0].fan_in, cols, MAX_ELEMENTS, &input_count))
        return cumlp__error(ctx, CUMLP_ERROR_INVALID_VALUE,
                            "a batch of %lld columns overflows the work buffers", (long long)cols);
    st = cumlp__network_settle(net); /* queued steps use the buffers */
    if (st != CUMLP_SUCCESS) return st;
    free_work_buffers(net);
    st = alloc_work_buffers(net, cols, (size_t)count);
    if (st != CUMLP_SUCCESS) {
        free_work_buffers(net);
        return st;
    }
    net->capacity = cols;
    return CUMLP_SUCCESS;
}

/* ---- forward and backward ------------------------------------------------------------------ */

static cumlp_status check_batch(const cumlp_network *net, const cumlp_tensor *X,
                                const cumlp_tensor *T, int64_t out_rows, const char *func,
                                const char *t_name) {
    if (!net) return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "net is NULL");
    cumlp_context *ctx = net->ctx;
    if (!X || !T)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "%s is NULL", X ? t_name : "X");
    if (X->ctx != ctx || T->ctx != ctx)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "the tensors must belong to the network's context");
    if (X->rows != net->layers[0].fan_in)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "X has %lld rows but the network's input width is %lld",
                           (long long)X->rows, (long long)net->layers[0].fan_in);
    if (T->rows != out_rows || T->cols != X->cols)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "%s is %lld x %lld but must be %lld x %lld (output width x batch)",
                           t_name, (long long)T->rows, (long long)T->cols, (long long)out_rows,
                           (long long)X->cols);
    return ctx->sticky;
}

/* Whether two tensors' memory overlaps: views of one parent may share columns. (A one-layer
 * network's GEMM would read X while writing Y.) */
static int tensors_overlap(const cumlp_tensor *a, const cumlp_tensor *b) {
    size_t elem = a->ctx->ops->elem_size;
    uintptr_t a_begin = (uintptr_t)a->data, b_begin = (uintptr_t)b->data;
    uintptr_t a_end = a_begin + (size_t)(a->rows * a->cols) * elem;
    uintptr_t b_end = b_begin + (size_t)(b->rows * b->cols) * elem;
    return a_begin < b_end && b_begin < a_end;
}

/* Where the GEMMs read W: the 16-bit copy in BF16 and FP16, else the parameters. */
static const void *weights_of(const cumlp_network *net, const cumlp_layer *L) {
    if (net->storage == CUMLP_STORAGE_NATIVE)
        return cumlp__at(net->ctx, net->params, L->weight_offset);
    return cumlp__at_storage(net->ctx, net->params16, net->storage, L->weight_offset);
}

/* The bias of L in format `storage`: the parameters, or their 16-bit copy (the same rounding of
 * the fp32 bias that W's copy is of W). */
static const void *bias_in(const cumlp_network *net, const cumlp_layer *L, int storage) {
    if (storage == CUMLP_STORAGE_NATIVE) return cumlp__at(net->ctx, net->params, L->bias_offset);
    return cumlp__at_storage(net->ctx, net->params16, storage, L->bias_offset);
}

/* Layer l in one GEMM with the bias and activation in its epilogue, keeping for the backward pass
 * (keep) GELU's Z in z_out or a hidden ReLU layer's bitmask. CUMLP_ERROR_NOT_SUPPORTED (nothing
 * done) where cuBLASLt has no algorithm for it. */
static cumlp_status layer_forward_epilogue(cumlp_network *net, int l, const void *a_prev, int cols,
                                           void *z_out, void *a_out, int out_storage, int keep) {
    cumlp_context *ctx = net->ctx;
    cumlp_layer *L = &net->layers[l];
    int relu = L->activation == CUMLP_ACT_RELU;
    void *aux = !keep ? NULL : relu ? L->relu_mask : z_out;
    cumlp_status st = ctx->ops->gemm_bias_activation(
        ctx, net->storage, out_storage, L->activation, (int)L->fan_out, cols, (int)L->fan_in,
        weights_of(net, L), a_prev, bias_in(net, L, out_storage), aux, a_out);
    L->forward_epilogue = st == CUMLP_SUCCESS && aux;
    if (st == CUMLP_SUCCESS) ctx->epilogue_calls++;
    return st;
}

/* Layer l: P = W A_prev into `p`, then the fused bias + activation into z_out / a_out, which are
 * in format out_storage (A_prev, like W, in the network's); or all of it in a GEMM epilogue
 * (keep: in a training pass, whose backward pass follows). */
static cumlp_status layer_forward(cumlp_network *net, int l, const void *a_prev, int cols,
                                  void *z_out, void *a_out, int out_storage, int keep) {
    cumlp_context *ctx = net->ctx;
    const cumlp_layer *L = &net->layers[l];
    net->layers[l].forward_epilogue = 0;
    if (layer_epilogue(net, l)) {
        cumlp_status st =
            layer_forward_epilogue(net, l, a_prev, cols, z_out, a_out, out_storage, keep);
        if (st != CUMLP_ERROR_NOT_SUPPORTED) return st;
        cumlp__clear_error(ctx); /* the fused kernels compute the same */
    }
    int m = (int)L->fan_out, k = (int)L->fan_in;
    void *p = z_out ? z_out : a_out;
    cumlp_status st = ctx->ops->gemm(ctx, 0, 0, m, cols, k, 1.0, weights_of(net, L), m, a_prev, k,
                                     0.0, p, m, net->storage, out_storage);
    if (st != CUMLP_SUCCESS) return st;
    return ctx->ops->bias_activation(ctx, out_storage, L->activation, net->leaky_slope, m, cols, p,
                                     cumlp__at(ctx, net->params, L->bias_offset), z_out, a_out);
}

/* The first layer's input: X, or in BF16 and FP16 X rounded into x16 (after a reserve). */
static cumlp_status layer_input(cumlp_network *net, const cumlp_tensor *X, const void **input) {
    cumlp_context *ctx = net->ctx;
    *input = X->data;
    if (net->storage == CUMLP_STORAGE_NATIVE) return CUMLP_SUCCESS;
    *input = net->x16;
    return ctx->ops->convert(ctx, net->x16, net->storage, X->data, CUMLP_STORAGE_NATIVE,
                             (size_t)(X->rows * X->cols));
}

cumlp_status cumlp__forward_train(cumlp_network *net, const cumlp_tensor *X) {
    const void *a_prev = NULL;
    cumlp_status st = cumlp__network_reserve(net, X->cols);
    cumlp__range_push(net->ctx, "cumlp:forward");
    if (st == CUMLP_SUCCESS) st = layer_input(net, X, &a_prev);
    for (int l = 0; l < net->num_layers && st == CUMLP_SUCCESS; l++) {
        st = layer_forward(net, l, a_prev, (int)X->cols, net->layers[l].z, net->layers[l].a,
                           layer_storage(net, l), 1);
        a_prev = net->layers[l].a;
    }
    cumlp__range_pop(net->ctx);
    return st;
}

cumlp_status cumlp_forward(cumlp_network *net, const cumlp_tensor *X, cumlp_tensor *Y) {
    int64_t out_rows = net ? net->layers[net->num_layers - 1].fan_out : 0;
    cumlp_status st = check_batch(net, X, Y, out_rows, __func__, "Y");
    if (st != CUMLP_SUCCESS) return st;
    CUMLP_FAIL_IF(tensors_overlap(X, Y), net->ctx, CUMLP_ERROR_INVALID_VALUE,
                  "X and Y share memory (the same tensor or overlapping views)");
    int last = net->num_layers - 1;
    /* One layer in a native precision needs no work buffer: its output is Y. */
    if (last > 0 || cumlp__precision_storage(net->ctx->precision) != CUMLP_STORAGE_NATIVE)
        st = cumlp__network_reserve(net, X->cols);
    else
        st = follow_precision(net);
    const void *a_prev = NULL;
    cumlp__range_push(net->ctx, "cumlp:forward");
    if (st == CUMLP_SUCCESS) st = layer_input(net, X, &a_prev);
    for (int l = 0; l < last && st == CUMLP_SUCCESS; l++) {
        st = layer_forward(net, l, a_prev, (int)X->cols, NULL, net->layers[l].a,
                           layer_storage(net, l), 0);
        a_prev = net->layers[l].a;
    }
    if (st == CUMLP_SUCCESS)
        st = layer_forward(net, last, a_prev, (int)X->cols, NULL, Y->data, CUMLP_STORAGE_NATIVE, 0);
    cumlp__range_pop(net->ctx);
    return st;
}

/* The factor of the output delta: FP16's loss scale, else 1. */
static double delta_scale(const cumlp_network *net) {
    return net->storage == CUMLP_STORAGE_FP16 ? net->scaler.scale : 1.0;
}

void cumlp__set_grads_scale(cumlp_network *net) {
    net->grads_scale = delta_scale(net);
    net->grads_scaled = net->storage == CUMLP_STORAGE_FP16;
}

/* Output delta (into grad_a, times delta_scale) and loss; *loss_sum only when loss_sum != NULL.
 * db may be NULL (loss only), else it receives the bias gradient divided by `count`. With step
 * (a device cumlp_step_state), the scale comes from and the loss sum goes to it. */
static cumlp_status output_delta(cumlp_network *net, const cumlp_tensor *T, int cols, void *db,
                                 double count, double *loss_sum, void *step) {
    cumlp_context *ctx = net->ctx;
    const cumlp_layer *L = &net->layers[net->num_layers - 1];
    cumlp__range_push(ctx, "cumlp:loss");
    cumlp_status st =
        step ? ctx->ops->loss_delta_step(ctx, net->loss, L->activation, net->leaky_slope,
                                         (int)L->fan_out, cols, L->z, L->a, T->data, net->grad_a,
                                         net->storage, db, 1.0 / count, step)
             : ctx->ops->loss_delta(ctx, net->loss, L->activation, net->leaky_slope,
                                    (int)L->fan_out, cols, L->z, L->a, T->data, net->grad_a,
                                    net->storage, db, 1.0 / count, delta_scale(net), loss_sum);
    cumlp__range_pop(ctx);
    return st;
}

/* Layer l's delta (m x cols) passed down to the layer below: below = (W^T delta) .* f'(.) with
 * the bias gradient, in one GEMM with a dReLU / dGELU epilogue where the forward pass kept what it
 * needs, else a GEMM and the fused kernel. */
static cumlp_status delta_below(cumlp_network *net, int l, int cols, double count,
                                const void *delta, void *below) {
    cumlp_context *ctx = net->ctx;
    const cumlp_layer *L = &net->layers[l], *B = &net->layers[l - 1];
    int m = (int)L->fan_out, k = (int)L->fan_in, S = net->storage;
    void *db = cumlp__at(ctx, net->grads, B->bias_offset);
    int relu = B->activation == CUMLP_ACT_RELU;
    /* Where the forward epilogue ran but the backward one has no algorithm, a GELU layer takes
     * the fused kernel's exact derivative of the epilogue's tanh GELU: about 2e-3 off at worst
     * (cumlp.h), and only where cuBLASLt runs one epilogue of a shape but not the other. */
    if (layer_epilogue(net, l - 1) && B->forward_epilogue) {
        cumlp_status st = ctx->ops->gemm_activation_backward(
            ctx, S, B->activation, m, cols, k, weights_of(net, L), delta,
            relu ? B->relu_mask : B->z, below, db, 1.0 / count);
        if (st == CUMLP_SUCCESS) ctx->epilogue_calls++;
        if (st != CUMLP_ERROR_NOT_SUPPORTED) return st;
        cumlp__clear_error(ctx); /* the fused kernel computes the same */
    }
    cumlp_status st = ctx->ops->gemm(ctx, 1, 0, k, cols, m, 1.0, weights_of(net, L), m, delta, m,
                                     0.0, below, k, S, S);
    if (st != CUMLP_SUCCESS) return st;
    return ctx->ops->activation_backward(ctx, S, B->activation, net->leaky_slope, k, cols, below,
                                         B->z, B->a, below, db, 1.0 / count);
}

/* Backward from delta of the output layer (in grad_a) down to layer 0's dW; a_input is what the
 * first layer read (X or x16). Every delta and G is in the network's format, dW and db native; the
 * gradients are the sums over the columns divided by `count`. */
static cumlp_status backward(cumlp_network *net, const void *a_input, int cols, double count) {
    cumlp_context *ctx = net->ctx;
    int S = net->storage;
    void *delta = net->grad_a, *below = net->grad_b;
    cumlp_status st = CUMLP_SUCCESS;
    cumlp__range_push(ctx, "cumlp:backward");
    for (int l = net->num_layers - 1; l >= 0 && st == CUMLP_SUCCESS; l--) {
        const cumlp_layer *L = &net->layers[l];
        int m = (int)L->fan_out, k = (int)L->fan_in;
        const void *a_prev = l > 0 ? net->layers[l - 1].a : a_input;
        /* dW = delta A_prev^T / B */
        st = ctx->ops->gemm(ctx, 0, 1, m, k, cols, 1.0 / count, delta, m, a_prev, k, 0.0,
                            cumlp__at(ctx, net->grads, L->weight_offset), m, S,
                            CUMLP_STORAGE_NATIVE);
        if (st != CUMLP_SUCCESS || l == 0) break;
        st = delta_below(net, l, cols, count, delta, below);
        void *swap = delta;
        delta = below;
        below = swap;
    }
    cumlp__range_pop(ctx);
    return st;
}

static cumlp_status finish_loss(cumlp_network *net, double loss_sum, int64_t cols, double *loss,
                                const char *func) {
    *loss = loss_sum / (double)cols;
    if (!isfinite(*loss))
        return cumlp__fail(net->ctx, CUMLP_ERROR_NON_FINITE, func, "the loss is %g", *loss);
    return CUMLP_SUCCESS;
}

cumlp_status cumlp__check_loss_batch(const cumlp_network *net, const cumlp_tensor *X,
                                     const cumlp_tensor *T, const char *func) {
    int64_t out_rows = net ? net->layers[net->num_layers - 1].fan_out : 0;
    return check_batch(net, X, T, out_rows, func, "T");
}

/* The forward pass, loss and backward pass (see cumlp__loss_backward_local), with step as
 * output_delta takes it. */
static cumlp_status loss_backward(cumlp_network *net, const cumlp_tensor *X, const cumlp_tensor *T,
                                  double count, double *loss_sum, void *step) {
    cumlp_context *ctx = net->ctx;
    const cumlp_layer *out = &net->layers[net->num_layers - 1];
    cumlp_status st = cumlp__forward_train(net, X);
    if (st == CUMLP_SUCCESS) {
        cumlp__set_grads_scale(net);
        st = output_delta(net, T, (int)X->cols, cumlp__at(ctx, net->grads, out->bias_offset), count,
                          loss_sum, step);
    }
    if (st == CUMLP_SUCCESS)
        st = backward(net, net->storage == CUMLP_STORAGE_NATIVE ? X->data : net->x16, (int)X->cols,
                      count);
    return st;
}

cumlp_status cumlp__loss_backward_local(cumlp_network *net, const cumlp_tensor *X,
                                        const cumlp_tensor *T, double count, double *loss_sum) {
    return loss_backward(net, X, T, count, loss_sum, NULL);
}

cumlp_status cumlp__loss_backward_step(cumlp_network *net, const cumlp_tensor *X,
                                       const cumlp_tensor *T, void *step) {
    return loss_backward(net, X, T, (double)X->cols, NULL, step);
}

cumlp_status cumlp_loss_backward(cumlp_network *net, const cumlp_tensor *X, const cumlp_tensor *T,
                                 double *loss) {
    cumlp_status st = cumlp__check_loss_batch(net, X, T, __func__);
    if (st == CUMLP_SUCCESS) st = cumlp__network_settle(net); /* its loss scale */
    if (net && net->dist) return cumlp__dist_loss_backward(net, X, T, st, loss, __func__);
    if (st != CUMLP_SUCCESS) return st;
    double loss_sum = 0;
    st = cumlp__loss_backward_local(net, X, T, (double)X->cols, loss ? &loss_sum : NULL);
    if (st == CUMLP_SUCCESS && loss) st = finish_loss(net, loss_sum, X->cols, loss, __func__);
    return st;
}

cumlp_status cumlp_evaluate_loss(cumlp_network *net, const cumlp_tensor *X, const cumlp_tensor *T,
                                 double *loss) {
    int64_t out_rows = net ? net->layers[net->num_layers - 1].fan_out : 0;
    cumlp_status st = check_batch(net, X, T, out_rows, __func__, "T");
    if (st != CUMLP_SUCCESS) return st;
    CUMLP_FAIL_IF(!loss, net->ctx, CUMLP_ERROR_INVALID_VALUE, "loss is NULL");
    double loss_sum = 0;
    st = cumlp__forward_train(net, X);
    if (st == CUMLP_SUCCESS)
        st = output_delta(net, T, (int)X->cols, NULL, (double)X->cols, &loss_sum, NULL);
    if (st == CUMLP_SUCCESS) st = finish_loss(net, loss_sum, X->cols, loss, __func__);
    return st;
}
