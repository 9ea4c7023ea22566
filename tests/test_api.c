/* ctest-labels: unit cuda */
/*
 * The API's contract on the reference backend: version, status strings, contexts, tensors, and
 * every kind of bad input returning INVALID_VALUE (or NOT_SUPPORTED) with a message and nothing
 * leaked (the sanitizer build runs this file too).
 */
#include "harness.h"
#include "internal.h"
#include "testutil.h"

#include <stdint.h>
#include <string.h>

static cumlp_context *ref_context(void) {
    return test_context_or_skip(CUMLP_BACKEND_REFERENCE);
}

/* The call returned INVALID_VALUE and left a message in ctx. */
#define CHECK_INVALID(ctx, expr)                                                                   \
    do {                                                                                           \
        CHECK_STATUS(expr, CUMLP_ERROR_INVALID_VALUE);                                             \
        CHECK_MSG(cumlp_last_error(ctx)[0] != '\0', "no message for %s", #expr);                   \
    } while (0)

static void test_version_and_status(void) {
    CHECK(cumlp_version_number() == CUMLP_VERSION_NUMBER);
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", CUMLP_VERSION_MAJOR, CUMLP_VERSION_MINOR,
             CUMLP_VERSION_PATCH);
    CHECK(strcmp(cumlp_version_string(), expected) == 0);
    CHECK(strcmp(cumlp_status_string(CUMLP_SUCCESS), "CUMLP_SUCCESS") == 0);
    CHECK(strcmp(cumlp_status_string(CUMLP_ERROR_INVALID_VALUE), "CUMLP_ERROR_INVALID_VALUE") == 0);
    CHECK(strcmp(cumlp_status_string(CUMLP_ERROR_INTERNAL), "CUMLP_ERROR_INTERNAL") == 0);
    CHECK(strcmp(cumlp_status_string((cumlp_status)999), "CUMLP_ERROR_UNKNOWN") == 0);
    /* Stable values. */
    CHECK(CUMLP_ERROR_INVALID_VALUE == 1 && CUMLP_ERROR_NOT_SUPPORTED == 3 &&
          CUMLP_ERROR_NON_FINITE == 12);
}

static void test_contexts(void) {
    cumlp_context *ctx = NULL;
    CHECK_STATUS(cumlp_context_create(NULL, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK(strstr(cumlp_last_error(NULL), "NULL") != NULL);
    cumlp_context_options o;
    CHECK_STATUS(cumlp_context_defaults(NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK_OK(cumlp_context_defaults(&o));
    o.backend = 17;
    CHECK_STATUS(cumlp_context_create(&ctx, &o), CUMLP_ERROR_INVALID_VALUE);
    CHECK(ctx == NULL);
    cumlp_context_defaults(&o);
    o.precision = CUMLP_PRECISION_COUNT;
    CHECK_STATUS(cumlp_context_create(&ctx, &o), CUMLP_ERROR_INVALID_VALUE);
    CHECK(strstr(cumlp_last_error(NULL), "precision") != NULL);
    cumlp_context_defaults(&o);
    o.num_threads = -1;
    CHECK_STATUS(cumlp_context_create(&ctx, &o), CUMLP_ERROR_INVALID_VALUE);
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_REFERENCE;
    int dummy_stream;
    o.stream = &dummy_stream;
    CHECK_STATUS(cumlp_context_create(&ctx, &o), CUMLP_ERROR_INVALID_VALUE);

    /* Backends not built say so; cuda without a GPU says NO_DEVICE. */
    const int backends[] = {CUMLP_BACKEND_CPU, CUMLP_BACKEND_CUDA};
    for (int i = 0; i < 2; i++) {
        cumlp_context_defaults(&o);
        o.backend = backends[i];
        cumlp_status st = cumlp_context_create(&ctx, &o);
        if (!cumlp_backend_is_built(backends[i])) {
            CHECK_STATUS(st, CUMLP_ERROR_NOT_SUPPORTED);
            CHECK(strstr(cumlp_last_error(NULL), "not built") != NULL);
        } else {
            CHECK(st == CUMLP_SUCCESS || st == CUMLP_ERROR_NO_DEVICE);
        }
        cumlp_context_destroy(ctx);
        ctx = NULL;
    }
    CHECK(cumlp_backend_is_built(CUMLP_BACKEND_REFERENCE));

    /* auto always finds something; it is never AUTO afterwards. */
    CHECK_OK(cumlp_context_create(&ctx, NULL));
    CHECK(cumlp_context_backend(ctx) != CUMLP_BACKEND_AUTO && cumlp_context_backend(ctx) > 0);
    char desc[1024];
    CHECK_OK(cumlp_context_describe(ctx, desc, sizeof desc));
    CHECK(strlen(desc) > 0);
    /* auto says why it passed over the backends before the one it chose. */
    if (cumlp_context_backend(ctx) != CUMLP_BACKEND_CUDA)
        CHECK_MSG(strstr(desc, "auto: cuda backend passed over") != NULL, "%s", desc);
    char tiny[8];
    CHECK_OK(cumlp_context_describe(ctx, tiny, sizeof tiny));
    CHECK(strlen(tiny) == 7);
    CHECK_STATUS(cumlp_context_describe(ctx, NULL, 10), CUMLP_ERROR_INVALID_VALUE);
    CHECK_OK(cumlp_context_synchronize(ctx));
    CHECK_STATUS(cumlp_context_set_math_mode(ctx, 9), CUMLP_ERROR_INVALID_VALUE);
    CHECK_OK(cumlp_context_set_math_mode(ctx, CUMLP_MATH_TF32));
    CHECK(cumlp_context_precision(ctx) == CUMLP_PRECISION_TF32);
    cumlp_context_destroy(ctx);
    cumlp_context_destroy(NULL);
    CHECK(cumlp_context_backend(NULL) == -1);
    CHECK(strcmp(cumlp_backend_name(CUMLP_BACKEND_CUDA), "cuda") == 0);
    CHECK(strcmp(cumlp_backend_name(42), "unknown") == 0);
}

static void test_tensors(void) {
    cumlp_context *ctx = ref_context();
    cumlp_tensor *t = NULL, *v = NULL;
    CHECK_STATUS(cumlp_tensor_create(NULL, 2, 2, &t), CUMLP_ERROR_INVALID_VALUE);
    CHECK_INVALID(ctx, cumlp_tensor_create(ctx, 2, 2, NULL));
    CHECK_INVALID(ctx, cumlp_tensor_create(ctx, 0, 2, &t));
    CHECK_INVALID(ctx, cumlp_tensor_create(ctx, 2, -1, &t));
    CHECK_INVALID(ctx, cumlp_tensor_create(ctx, (int64_t)1 << 40, 1, &t));
    /* Each dimension fits in int but the product overflows the largest tensor. */
    CHECK_INVALID(ctx, cumlp_tensor_create(ctx, INT32_MAX, INT32_MAX, &t));
    CHECK(t == NULL);

    float host[6] = {1, 2, 3, 4, 5, 6}, back[6] = {0};
    CHECK_OK(cumlp_tensor_create(ctx, 2, 3, &t));
    CHECK(cumlp_tensor_rows(t) == 2 && cumlp_tensor_cols(t) == 3);
    CHECK_INVALID(ctx, cumlp_tensor_upload(t, host, 5));
    CHECK_INVALID(ctx, cumlp_tensor_upload(t, NULL, 6));
    CHECK_STATUS(cumlp_tensor_upload(NULL, host, 6), CUMLP_ERROR_INVALID_VALUE);
    CHECK_OK(cumlp_tensor_upload(t, host, 6));
    CHECK_OK(cumlp_tensor_download(t, back, 6));
    CHECK(memcmp(host, back, sizeof host) == 0);

    /* A view of columns 1..2 sees the same memory. */
    CHECK_INVALID(ctx, cumlp_tensor_create_view(t, 2, 2, &v));
    CHECK_INVALID(ctx, cumlp_tensor_create_view(t, -1, 1, &v));
    CHECK_INVALID(ctx, cumlp_tensor_create_view(t, 0, 0, &v));
    CHECK_OK(cumlp_tensor_create_view(t, 1, 2, &v));
    float part[4];
    CHECK_OK(cumlp_tensor_download(v, part, 4));
    CHECK(part[0] == 3 && part[3] == 6);
    /* The reference backend stores doubles: no raw fp32 pointer, no wrapping. */
    CHECK(cumlp_tensor_data(t) == NULL);
    cumlp_tensor *w = NULL;
    CHECK_STATUS(cumlp_tensor_wrap(ctx, host, 2, 3, &w), CUMLP_ERROR_NOT_SUPPORTED);
    double d[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, dback[6];
    CHECK_OK(cumlp_tensor_upload_f64(t, d, 6));
    CHECK_OK(cumlp_tensor_download_f64(t, dback, 6));
    CHECK(memcmp(d, dback, sizeof d) == 0);
    cumlp_tensor_destroy(v);
    cumlp_tensor_destroy(t);
    cumlp_tensor_destroy(NULL);
    CHECK(cumlp_tensor_rows(NULL) == -1);
    cumlp_context_destroy(ctx);
}

static void test_network_descriptions(void) {
    cumlp_context *ctx = ref_context();
    cumlp_network *net = NULL;
    const int64_t widths[] = {3, 4, 2};
    const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX};
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
    CHECK_STATUS(cumlp_network_create(NULL, 2, widths, acts, &o, &net), CUMLP_ERROR_INVALID_VALUE);
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, acts, &o, NULL));
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 0, widths, acts, &o, &net));
    CHECK_INVALID(ctx, cumlp_network_create(ctx, -3, widths, acts, &o, &net));
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, NULL, acts, &o, &net));
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, NULL, &o, &net));
    const int64_t zero_width[] = {3, 0, 2};
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, zero_width, acts, &o, &net));
    const int64_t negative_width[] = {-3, 4, 2};
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, negative_width, acts, &o, &net));
    /* Widths that fit one by one but whose product overflows the parameter count. */
    const int64_t huge[] = {INT32_MAX, INT32_MAX, 2};
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, huge, acts, &o, &net));
    CHECK(strstr(cumlp_last_error(ctx), "overflow") != NULL);
    const int bad_act[] = {42, CUMLP_ACT_SOFTMAX};
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, bad_act, &o, &net));
    const int hidden_softmax[] = {CUMLP_ACT_SOFTMAX, CUMLP_ACT_SOFTMAX};
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, hidden_softmax, &o, &net));
    /* A softmax over one output is 1 whatever its input: nothing would ever be learnt. */
    const int64_t one_output[] = {3, 4, 1};
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, one_output, acts, &o, &net));
    CHECK_MSG(strstr(cumlp_last_error(ctx), "at least 2 outputs") != NULL, "%s",
              cumlp_last_error(ctx));
    /* Output activations the loss does not accept. */
    const int relu_out[] = {CUMLP_ACT_RELU, CUMLP_ACT_RELU};
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, relu_out, &o, &net));
    CHECK(strstr(cumlp_last_error(ctx), "loss") != NULL);
    o.loss = CUMLP_LOSS_SQUARED_ERROR;
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, acts, &o, &net));
    o.loss = CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY;
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, acts, &o, &net));
    o.loss = 7;
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, relu_out, &o, &net));
    cumlp_network_defaults(&o);
    o.init = 99;
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, relu_out, &o, &net));
    cumlp_network_defaults(&o);
    o.leaky_relu_slope = 1.5;
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, relu_out, &o, &net));
    cumlp_network_defaults(&o);
    o.init_scale = -1;
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, relu_out, &o, &net));
    cumlp_network_defaults(&o);
    o.bias_init = 3;
    CHECK_INVALID(ctx, cumlp_network_create(ctx, 2, widths, relu_out, &o, &net));
    CHECK(net == NULL);

    CHECK_OK(cumlp_network_create(ctx, 2, widths, relu_out, NULL, &net));
    CHECK(cumlp_network_num_layers(net) == 2);
    CHECK(cumlp_network_width(net, 0) == 3 && cumlp_network_width(net, 2) == 2);
    CHECK(cumlp_network_width(net, 3) == -1 && cumlp_network_width(net, -1) == -1);
    CHECK(cumlp_network_activation(net, 1) == CUMLP_ACT_RELU);
    CHECK(cumlp_network_loss(net) == CUMLP_LOSS_SQUARED_ERROR);
    CHECK(cumlp_network_num_parameters(net) == 4 * 3 + 4 + 2 * 4 + 2);
    CHECK(cumlp_network_context(net) == ctx);
    cumlp_network_destroy(net);
    cumlp_network_destroy(NULL);
    cumlp_context_destroy(ctx);
}

static void test_parameters_and_batches(void) {
    cumlp_context *ctx = ref_context();
    const int64_t widths[] = {3, 4, 2};
    const int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_IDENTITY};
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 5);
    int64_t n = cumlp_network_num_parameters(net);
    float *p = test_alloc_floats((size_t)n), *q = test_alloc_floats((size_t)n);
    CHECK_INVALID(ctx, cumlp_network_get_parameters(net, p, n - 1));
    CHECK_INVALID(ctx, cumlp_network_get_parameters(net, NULL, n));
    CHECK_OK(cumlp_network_get_parameters(net, p, n));
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)i * 0.01f;
    CHECK_OK(cumlp_network_set_parameters(net, p, n));
    CHECK_OK(cumlp_network_get_parameters(net, q, n));
    CHECK(memcmp(p, q, sizeof(float) * (size_t)n) == 0);
    /* Layer 1's W starts after layer 0's W (12) and b (4). */
    float w[8], b[2];
    CHECK_OK(cumlp_network_get_layer(net, 1, w, b));
    CHECK(w[0] == p[16] && b[1] == p[25]);
    CHECK_INVALID(ctx, cumlp_network_get_layer(net, 2, w, b));
    CHECK_INVALID(ctx, cumlp_network_set_layer(net, -1, w, b));
    CHECK_OK(cumlp_network_set_layer(net, 1, NULL, b));
    CHECK_INVALID(ctx, cumlp_network_freeze(net, 5, 1, 1));

    /* Batches of the wrong shape or from another context. */
    cumlp_tensor *x = NULL, *t = NULL, *y = NULL, *wrong = NULL;
    CHECK_OK(cumlp_tensor_create(ctx, 3, 5, &x));
    CHECK_OK(cumlp_tensor_create(ctx, 2, 5, &t));
    CHECK_OK(cumlp_tensor_create(ctx, 2, 5, &y));
    CHECK_OK(cumlp_tensor_create(ctx, 2, 4, &wrong));
    float xs[15] = {0}, ts[10] = {0};
    CHECK_OK(cumlp_tensor_upload(x, xs, 15));
    CHECK_OK(cumlp_tensor_upload(t, ts, 10));
    double loss;
    CHECK_INVALID(ctx, cumlp_forward(net, x, wrong));
    CHECK_INVALID(ctx, cumlp_forward(net, t, y)); /* 2 rows where 3 are needed */
    CHECK_INVALID(ctx, cumlp_forward(net, x, x));
    CHECK_INVALID(ctx, cumlp_forward(net, NULL, y));
    CHECK_STATUS(cumlp_forward(NULL, x, y), CUMLP_ERROR_INVALID_VALUE);
    CHECK_INVALID(ctx, cumlp_loss_backward(net, x, wrong, &loss));
    CHECK_INVALID(ctx, cumlp_evaluate_loss(net, x, t, NULL));
    cumlp_context *other = ref_context();
    cumlp_tensor *foreign = NULL;
    CHECK_OK(cumlp_tensor_create(other, 3, 5, &foreign));
    CHECK_INVALID(ctx, cumlp_forward(net, foreign, y));
    CHECK_OK(cumlp_forward(net, x, y));
    CHECK_OK(cumlp_loss_backward(net, x, t, &loss));
    CHECK(isfinite(loss));

    /* Optimizers: bad options, a foreign optimizer. */
    cumlp_optimizer *opt = NULL;
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.learning_rate = -1;
    CHECK_INVALID(ctx, cumlp_optimizer_create(net, &oo, &opt));
    cumlp_optimizer_defaults(&oo);
    oo.momentum = 1.0;
    CHECK_INVALID(ctx, cumlp_optimizer_create(net, &oo, &opt));
    cumlp_optimizer_defaults(&oo);
    oo.type = 11;
    CHECK_INVALID(ctx, cumlp_optimizer_create(net, &oo, &opt));
    cumlp_optimizer_defaults(&oo);
    oo.epsilon = 0;
    CHECK_INVALID(ctx, cumlp_optimizer_create(net, &oo, &opt));
    cumlp_optimizer_defaults(&oo);
    oo.weight_decay = NAN;
    CHECK_INVALID(ctx, cumlp_optimizer_create(net, &oo, &opt));
    CHECK(opt == NULL);
    CHECK_STATUS(cumlp_optimizer_create(NULL, NULL, &opt), CUMLP_ERROR_INVALID_VALUE);
    cumlp_network *net2 = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 6);
    cumlp_optimizer *opt2 = NULL;
    CHECK_OK(cumlp_optimizer_create(net2, NULL, &opt2));
    CHECK_INVALID(ctx, cumlp_train_step(net, opt2, x, t, &loss));
    CHECK_INVALID(ctx, cumlp_optimizer_set_learning_rate(opt2, INFINITY));
    CHECK_OK(cumlp_optimizer_set_learning_rate(opt2, 0.5));
    CHECK(cumlp_optimizer_learning_rate(opt2) == 0.5);
    CHECK(cumlp_optimizer_step_count(opt2) == 0);
    CHECK_STATUS(cumlp_optimizer_step(NULL), CUMLP_ERROR_INVALID_VALUE);

    /* NaN in the data: the loss is not finite and no step is taken: skipped, or with
     * non_finite_error an error. */
    xs[4] = NAN;
    CHECK_OK(cumlp_tensor_upload(x, xs, 15));
    CHECK_OK(cumlp_network_get_parameters(net2, p, n));
    CHECK_STATUS(cumlp_train_step(net2, opt2, x, t, &loss), CUMLP_STEP_SKIPPED);
    CHECK(strstr(cumlp_last_error(ctx), "cumlp_train_step: the loss is nan: step skipped"));
    CHECK(isnan(loss) && isnan(cumlp_optimizer_gradient_norm(opt2)));
    CHECK_OK(cumlp_network_get_parameters(net2, q, n));
    CHECK(memcmp(p, q, sizeof(float) * (size_t)n) == 0);
    CHECK(cumlp_optimizer_step_count(opt2) == 0 && cumlp_optimizer_skipped_steps(opt2) == 1);
    cumlp_optimizer *strict = NULL;
    cumlp_optimizer_defaults(&oo);
    oo.non_finite_error = 1;
    CHECK_OK(cumlp_optimizer_create(net2, &oo, &strict));
    CHECK_STATUS(cumlp_train_step(net2, strict, x, t, &loss), CUMLP_ERROR_NON_FINITE);
    CHECK(strstr(cumlp_last_error(ctx), "no step taken"));
    CHECK(cumlp_optimizer_step_count(strict) == 0 && cumlp_optimizer_skipped_steps(strict) == 0);
    cumlp_optimizer_destroy(strict);
    CHECK(cumlp_optimizer_skipped_steps(NULL) == -1 && cumlp_optimizer_gradient_norm(NULL) == -1);

    double errs[4];
    CHECK_INVALID(ctx, cumlp_gradient_check(net, x, t, 0, errs, 3));
    CHECK_INVALID(ctx, cumlp_gradient_check(net, x, t, -1, errs, 4));
    CHECK_INVALID(ctx, cumlp_gradient_check(net, x, t, 0, NULL, 4));

    cumlp_optimizer_destroy(opt2);
    cumlp_optimizer_destroy(NULL);
    cumlp_network_destroy(net2);
    cumlp_tensor_destroy(foreign);
    cumlp_context_destroy(other);
    cumlp_tensor_destroy(x);
    cumlp_tensor_destroy(t);
    cumlp_tensor_destroy(y);
    cumlp_tensor_destroy(wrong);
    cumlp_network_destroy(net);
    free(p);
    free(q);
    cumlp_context_destroy(ctx);
}

/* cumlp_forward refuses an X and a Y that share memory, not only the same tensor: a one-layer
 * network's GEMM would read columns of X after writing them as columns of Y. */
static void test_forward_overlap(void) {
    cumlp_context *ctx = ref_context();
    const int64_t widths[] = {2, 2};
    const int acts[] = {CUMLP_ACT_IDENTITY};
    cumlp_network *net = test_network(ctx, 1, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 1);
    const float data[6] = {1, 2, 3, 4, 5, 6};
    cumlp_tensor *parent = test_tensor_from(ctx, data, 2, 3);
    cumlp_tensor *first = NULL, *second = NULL, *a = NULL, *c = NULL;
    CHECK_OK(cumlp_tensor_create_view(parent, 0, 2, &first));  /* columns 0, 1 */
    CHECK_OK(cumlp_tensor_create_view(parent, 1, 2, &second)); /* columns 1, 2 */
    CHECK_INVALID(ctx, cumlp_forward(net, first, second));
    CHECK_INVALID(ctx, cumlp_forward(net, second, first));
    CHECK_OK(cumlp_tensor_create_view(parent, 0, 1, &a));
    CHECK_OK(cumlp_tensor_create_view(parent, 2, 1, &c));
    CHECK_OK(cumlp_forward(net, a, c)); /* disjoint columns of one parent are fine */
    cumlp_tensor_destroy(first);
    cumlp_tensor_destroy(second);
    cumlp_tensor_destroy(a);
    cumlp_tensor_destroy(c);
    cumlp_tensor_destroy(parent);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* Bytes in use and peak: what each object holds (the reference backend stores 8-byte doubles),
 * views and wrapped memory count nothing, and everything destroyed is 0 again. */
static void check_memory(cumlp_context *ctx, int64_t in_use, int64_t peak) {
    int64_t now = -1, most = -1;
    CHECK_OK(cumlp_context_memory(ctx, &now, &most));
    CHECK_MSG(now == in_use && most == peak, "in use %lld (expected %lld), peak %lld (%lld)",
              (long long)now, (long long)in_use, (long long)most, (long long)peak);
}

static void test_memory_accounting(void) {
    cumlp_context *ctx = ref_context();
    check_memory(ctx, 0, 0);
    cumlp_tensor *small = NULL, *big = NULL, *view = NULL;
    CHECK_OK(cumlp_tensor_create(ctx, 3, 4, &small));
    check_memory(ctx, 96, 96);
    CHECK_OK(cumlp_tensor_create(ctx, 10, 10, &big));
    CHECK_OK(cumlp_tensor_create_view(big, 2, 3, &view));
    check_memory(ctx, 896, 896);
    cumlp_tensor_destroy(view);
    cumlp_tensor_destroy(big);
    check_memory(ctx, 96, 896);
    CHECK_OK(cumlp_context_reset_peak_memory(ctx));
    check_memory(ctx, 96, 96);

    /* 4-5-3: 43 parameters; the network holds parameters and gradients, Adam two moments. */
    const int64_t widths[] = {4, 5, 3};
    const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_IDENTITY};
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 5);
    check_memory(ctx, 96 + 2 * 43 * 8, 96 + 2 * 43 * 8);
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.type = CUMLP_OPT_ADAM;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &oo, &opt));
    int64_t with_optimizer = 96 + 4 * 43 * 8;
    check_memory(ctx, with_optimizer, with_optimizer);
    /* A step of 7 samples adds the work buffers: at least each layer's output, 7 x (5 + 3). */
    float x[28], t[21];
    for (int i = 0; i < 28; i++)
        x[i] = (float)(i % 5) - 2.0f;
    for (int i = 0; i < 21; i++)
        t[i] = (float)(i % 3);
    cumlp_tensor *X = test_tensor_from(ctx, x, 4, 7), *T = test_tensor_from(ctx, t, 3, 7);
    with_optimizer += (28 + 21) * 8;
    CHECK_OK(cumlp_train_step(net, opt, X, T, NULL));
    int64_t in_use = 0, peak = 0;
    CHECK_OK(cumlp_context_memory(ctx, &in_use, &peak));
    CHECK(in_use >= with_optimizer + 7 * 8 * 8 && peak == in_use);
    CHECK_OK(cumlp_context_memory(ctx, NULL, NULL));
    CHECK_INVALID(NULL, cumlp_context_memory(NULL, &in_use, &peak));
    CHECK_INVALID(NULL, cumlp_context_reset_peak_memory(NULL));

    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(T);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_tensor_destroy(small);
    check_memory(ctx, 0, peak); /* nothing left behind */
    cumlp_context_destroy(ctx);
}

/* Every create-like call sets its output handle to NULL on failure, also when the failure is a
 * NULL input (a stale value in the caller's variable would look like a live object). */
static void test_outputs_null_on_failure(void) {
    cumlp_context *ctx = ref_context();
    void *stale = &stale;
    cumlp_tensor *t = stale;
    CHECK_INVALID(NULL, cumlp_tensor_create(NULL, 2, 2, &t));
    CHECK(t == NULL);
    t = stale;
    CHECK_INVALID(NULL, cumlp_tensor_create_view(NULL, 0, 1, &t));
    CHECK(t == NULL);
    t = stale;
    CHECK_INVALID(NULL, cumlp_tensor_wrap(NULL, stale, 1, 1, &t));
    CHECK(t == NULL);
    cumlp_network *net = stale;
    const int64_t widths[] = {2, 2};
    const int acts[] = {CUMLP_ACT_IDENTITY};
    CHECK_INVALID(NULL, cumlp_network_create(NULL, 1, widths, acts, NULL, &net));
    CHECK(net == NULL);
    cumlp_optimizer *opt = stale;
    CHECK_INVALID(NULL, cumlp_optimizer_create(NULL, NULL, &opt));
    CHECK(opt == NULL);
    net = stale;
    opt = stale;
    CHECK_INVALID(ctx, cumlp_checkpoint_load(ctx, NULL, 0, &net, &opt));
    CHECK(net == NULL && opt == NULL);
    net = stale;
    opt = stale;
    CHECK_INVALID(ctx, cumlp_checkpoint_load_memory(ctx, NULL, 5, 0, &net, &opt));
    CHECK(net == NULL && opt == NULL);
    cumlp_dataset *a = stale, *b = stale;
    CHECK_INVALID(NULL, cumlp_dataset_subset(NULL, 0, 1, &a));
    CHECK(a == NULL);
    a = stale;
    CHECK_INVALID(NULL, cumlp_dataset_split(NULL, 0.5, 1, &a, &b));
    CHECK(a == NULL && b == NULL);
    cumlp_scaler *sc = stale;
    CHECK_INVALID(NULL, cumlp_scaler_fit(NULL, CUMLP_SCALE_MINMAX, 0, &sc));
    CHECK(sc == NULL);
    sc = stale;
    const float one = 1.0f;
    CHECK_INVALID(ctx, cumlp_scaler_create(ctx, 1, NULL, &one, &sc));
    CHECK(sc == NULL);
    cumlp_context_destroy(ctx);
}

/* The call fails with a message that starts with "fn: ", fn being the called function's exact
 * name, taken from the call itself. */
#define CHECK_NAMES_CALLEE(ctx, fn, args)                                                          \
    do {                                                                                           \
        cumlp_status st_ = fn args;                                                                \
        const char *msg_ = cumlp_last_error(ctx);                                                  \
        int named_ = st_ != CUMLP_SUCCESS && strncmp(msg_, #fn ": ", sizeof(#fn ": ") - 1) == 0;   \
        CHECK_MSG(named_, "%s%s: \"%s\"", #fn, #args, msg_);                                       \
    } while (0)

/* Messages name the function the user called, also when a static helper or a path that several
 * functions share (the _memory readers, the checkpoint loads) reports the failure. */
static void test_messages_name_the_called_function(void) {
    cumlp_context *ctx = ref_context();
    cumlp_context *other = NULL;
    cumlp_context_options co;
    cumlp_context_defaults(&co);
    co.backend = 7; /* check_options */
    CHECK_NAMES_CALLEE(NULL, cumlp_context_create, (&other, &co));
    CHECK_NAMES_CALLEE(NULL, cumlp_context_create, (NULL, NULL));
    int value;
    CHECK_NAMES_CALLEE(NULL, cumlp_activation_from_name, (NULL, &value));

    cumlp_tensor *t = NULL;
    CHECK_NAMES_CALLEE(ctx, cumlp_tensor_create, (ctx, 0, 1, &t)); /* cumlp__check_dim */
    CHECK_OK(cumlp_tensor_create(ctx, 2, 1, &t));
    double host[8] = {0};
    CHECK_NAMES_CALLEE(ctx, cumlp_tensor_download_f64, (t, host, 3)); /* check_transfer */

    const int64_t widths[] = {2, 3, 1};
    int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_IDENTITY};
    cumlp_network_options no;
    cumlp_network_defaults(&no);
    no.loss = 99; /* check_options */
    cumlp_network *net = NULL;
    CHECK_NAMES_CALLEE(ctx, cumlp_network_create, (ctx, 2, widths, acts, &no, &net));
    acts[0] = CUMLP_ACT_SOFTMAX; /* check_layers */
    CHECK_NAMES_CALLEE(ctx, cumlp_network_create, (ctx, 2, widths, acts, NULL, &net));
    acts[0] = CUMLP_ACT_TANH;
    net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 1);
    CHECK_NAMES_CALLEE(ctx, cumlp_network_set_layer_f64, (net, 2, host, host));
    CHECK_NAMES_CALLEE(ctx, cumlp_network_freeze, (net, -1, 1, 1));
    double rel[4];
    CHECK_NAMES_CALLEE(ctx, cumlp_gradient_check, (net, t, t, 0.0, rel, 3));

    cumlp_dataset *ds = NULL, *out = NULL;
    CHECK_NAMES_CALLEE(ctx, cumlp_dataset_create, (ctx, 0, 1, 4, 0, &ds)); /* cumlp__dataset_new */
    CHECK_OK(cumlp_dataset_create(ctx, 2, 1, 4, 0, &ds));
    CHECK_NAMES_CALLEE(ctx, cumlp_dataset_subset, (ds, 3, 2, &out));
    cumlp_eval_result result;
    CHECK_NAMES_CALLEE(ctx, cumlp_evaluate, (net, ds, -1, &result)); /* check_net_ds */
    cumlp_fit_options fo;
    cumlp_fit_defaults(&fo);
    fo.epochs = 0;
    double rate;
    CHECK_NAMES_CALLEE(NULL, cumlp_schedule_learning_rate, (&fo, 0.1, 0, &rate));
    cumlp_csv_options csv;
    cumlp_csv_defaults(&csv);
    csv.delimiter = 0;
    CHECK_NAMES_CALLEE(ctx, cumlp_dataset_read_csv_memory, (ctx, "1,2\n", 4, &csv, &out));
    CHECK_NAMES_CALLEE(ctx, cumlp_dataset_read_fann_memory, (ctx, "1 1 1\n1 1\n", 10, 2, &out));
    CHECK_NAMES_CALLEE(ctx, cumlp_dataset_read_idx_memory, (ctx, host, 4, host, 4, -1, &out));

    const char *missing = "/nonexistent-cumlp-dir/net.safetensors";
    cumlp_network *loaded = NULL;
    cumlp_optimizer *opt = NULL;
    CHECK_NAMES_CALLEE(ctx, cumlp_checkpoint_load, (ctx, missing, 0, &loaded, &opt));
    CHECK_NAMES_CALLEE(ctx, cumlp_checkpoint_load_memory, (ctx, "abc", 3, 0, &loaded, &opt));
    CHECK_NAMES_CALLEE(ctx, cumlp_checkpoint_load_into, (net, NULL, missing, 0));
    CHECK_NAMES_CALLEE(ctx, cumlp_checkpoint_save, (net, NULL, "/nonexistent-cumlp-dir/"));

    cumlp_dataset_destroy(ds);
    cumlp_network_destroy(net);
    cumlp_tensor_destroy(t);
    cumlp_context_destroy(ctx);
}

static cumlp_status join_nothing(cumlp_context *ctx, int slot) {
    (void)ctx, (void)slot;
    return CUMLP_SUCCESS;
}

/* Precisions: every backend runs fp32 and tf32 (the default fp32); bf16 and fp16 only cuda, and
 * the others refuse them, at creation and when set, naming the precision and cuda. */
static void test_precisions(void) {
    CHECK(CUMLP_MATH_STRICT_FP32 == CUMLP_PRECISION_FP32 &&
          CUMLP_MATH_TF32 == CUMLP_PRECISION_TF32);
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    CHECK(o.precision == CUMLP_PRECISION_FP32);
    CHECK(cumlp_context_precision(NULL) == -1);
    CHECK_STATUS(cumlp_context_set_precision(NULL, 0), CUMLP_ERROR_INVALID_VALUE);
    const int backends[] = {CUMLP_BACKEND_REFERENCE, CUMLP_BACKEND_CPU, CUMLP_BACKEND_CUDA};
    for (int b = 0; b < 3; b++) {
        for (int p = 0; p < CUMLP_PRECISION_COUNT; p++) {
            cumlp_context_defaults(&o);
            o.backend = backends[b];
            o.precision = p;
            cumlp_context *ctx = NULL;
            cumlp_status st = cumlp_context_create(&ctx, &o);
            int runs = p <= CUMLP_PRECISION_TF32 || backends[b] == CUMLP_BACKEND_CUDA;
            if (!cumlp_backend_is_built(backends[b]) || st == CUMLP_ERROR_NO_DEVICE) continue;
            if (runs) {
                CHECK_OK(st);
                CHECK(cumlp_context_precision(ctx) == p);
            } else {
                CHECK_STATUS(st, CUMLP_ERROR_NOT_SUPPORTED);
                const char *why = cumlp_last_error(NULL);
                CHECK_MSG(strstr(why, cumlp_precision_name(p)) && strstr(why, "cuda"), "%s", why);
            }
            cumlp_context_destroy(ctx);
        }
    }
    /* A refused precision leaves the context's as it was. */
    cumlp_context *ref = ref_context();
    CHECK_OK(cumlp_context_set_precision(ref, CUMLP_PRECISION_TF32));
    CHECK_STATUS(cumlp_context_set_precision(ref, CUMLP_PRECISION_BF16), CUMLP_ERROR_NOT_SUPPORTED);
    CHECK_STATUS(cumlp_context_set_precision(ref, -1), CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_context_precision(ref) == CUMLP_PRECISION_TF32);
    cumlp_context_destroy(ref);
    /* auto with a 16-bit precision: cuda, or a failure naming every backend passed over. */
    cumlp_context_defaults(&o);
    o.precision = CUMLP_PRECISION_FP16;
    cumlp_context *ctx = NULL;
    cumlp_status st = cumlp_context_create(&ctx, &o);
    if (st == CUMLP_SUCCESS) {
        CHECK(cumlp_context_backend(ctx) == CUMLP_BACKEND_CUDA);
    } else {
        CHECK_STATUS(st, CUMLP_ERROR_NOT_SUPPORTED);
        const char *why = cumlp_last_error(NULL);
        CHECK_MSG(strstr(why, "cuda backend passed over") && strstr(why, "reference"), "%s", why);
    }
    cumlp_context_destroy(ctx);
}

/* The loss scaler: PyTorch's GradScaler defaults, set and read back whole, and a value out of
 * range refused with nothing changed. */
static void test_loss_scaler_settings(void) {
    cumlp_loss_scaler s;
    CHECK_STATUS(cumlp_loss_scaler_defaults(NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK_OK(cumlp_loss_scaler_defaults(&s));
    CHECK(s.scale == 65536 && s.growth_factor == 2 && s.backoff_factor == 0.5 &&
          s.growth_interval == 2000 && s.clean_steps == 0 && s.overflows == 0);
    cumlp_context *ctx = ref_context();
    const int64_t widths[] = {3, 4, 2};
    const int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_IDENTITY};
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 1);
    cumlp_loss_scaler got;
    CHECK_OK(cumlp_network_get_loss_scaler(net, &got));
    CHECK(memcmp(&got, &s, sizeof s) == 0);
    s.scale = 1024, s.growth_factor = 4, s.backoff_factor = 0.25, s.growth_interval = 7;
    s.clean_steps = 3, s.overflows = 11;
    CHECK_OK(cumlp_network_set_loss_scaler(net, &s));
    CHECK_OK(cumlp_network_get_loss_scaler(net, &got));
    CHECK(memcmp(&got, &s, sizeof s) == 0);
    const cumlp_loss_scaler good = s;
    struct {
        const char *what;
        double scale, growth, backoff;
        int64_t interval, clean, overflows;
    } bad[] = {
        {"scale", NAN, 2, 0.5, 1, 0, 0},          {"scale", 0, 2, 0.5, 1, 0, 0},
        {"scale", 0x1p-127, 2, 0.5, 1, 0, 0},     {"scale", INFINITY, 2, 0.5, 1, 0, 0},
        {"growth_factor", 8, 0.5, 0.5, 1, 0, 0},  {"growth_factor", 8, NAN, 0.5, 1, 0, 0},
        {"backoff_factor", 8, 2, 0, 1, 0, 0},     {"backoff_factor", 8, 2, 1.5, 1, 0, 0},
        {"growth_interval", 8, 2, 0.5, -1, 0, 0}, {"clean_steps", 8, 2, 0.5, 1, -1, 0},
        {"overflows", 8, 2, 0.5, 1, 0, -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cumlp_loss_scaler b = {bad[i].scale,    bad[i].growth, bad[i].backoff,
                               bad[i].interval, bad[i].clean,  bad[i].overflows};
        CHECK_STATUS(cumlp_network_set_loss_scaler(net, &b), CUMLP_ERROR_INVALID_VALUE);
        CHECK_MSG(strstr(cumlp_last_error(ctx), bad[i].what), "%s", cumlp_last_error(ctx));
        CHECK_OK(cumlp_network_get_loss_scaler(net, &got));
        CHECK(memcmp(&got, &good, sizeof good) == 0);
    }
    CHECK_STATUS(cumlp_network_set_loss_scaler(net, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_network_get_loss_scaler(NULL, &got), CUMLP_ERROR_INVALID_VALUE);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
}

/* The backend contract is checked before a backend is used: a missing required op, or part of an
 * optional group, is an internal error naming the backend. */
static void test_backend_contract(void) {
    const cumlp_backend_ops *ref = cumlp__backend_reference();
    CHECK_OK(cumlp__check_backend_ops(ref));
    if (cumlp_backend_is_built(CUMLP_BACKEND_CPU))
        CHECK_OK(cumlp__check_backend_ops(cumlp__backend_cpu()));
    if (cumlp_backend_is_built(CUMLP_BACKEND_CUDA))
        CHECK_OK(cumlp__check_backend_ops(cumlp__backend_cuda()));
    cumlp_backend_ops broken = *ref;
    broken.gemm = NULL;
    CHECK_STATUS(cumlp__check_backend_ops(&broken), CUMLP_ERROR_INTERNAL);
    CHECK(strstr(cumlp_last_error(NULL), "gemm") && strstr(cumlp_last_error(NULL), "reference"));
    broken = *ref;
    broken.upload_f64 = NULL; /* download_f64 left: half a group */
    CHECK_STATUS(cumlp__check_backend_ops(&broken), CUMLP_ERROR_INTERNAL);
    broken = *ref;
    broken.upload_join = join_nothing; /* one of the five upload ops */
    CHECK_STATUS(cumlp__check_backend_ops(&broken), CUMLP_ERROR_INTERNAL);
    broken = *ref; /* a 16-bit precision without convert, on a double-precision backend */
    broken.precisions |= 1u << CUMLP_PRECISION_BF16;
    CHECK_STATUS(cumlp__check_backend_ops(&broken), CUMLP_ERROR_INTERNAL);
    CHECK(strstr(cumlp_last_error(NULL), "16-bit") != NULL);
}

/* The optional ops' fallbacks on the reference backend, which has none of the upload and timer
 * ops: staging memory from malloc, an upload that is done when it returns, no-op joins, and a
 * host-clock timer. */
static void test_optional_op_fallbacks(void) {
    cumlp_context *ctx = ref_context();
    CHECK(ctx->ops->upload_async == NULL && ctx->ops->timer_start == NULL);
    float *host = NULL;
    CHECK_OK(cumlp__host_alloc(ctx, 3 * sizeof(float), (void **)&host));
    cumlp_tensor *t = NULL;
    CHECK_OK(cumlp_tensor_create(ctx, 3, 1, &t));
    if (host && t) {
        host[0] = 1.5f, host[1] = -2.0f, host[2] = 0.25f;
        CHECK_OK(cumlp__upload_host_wait(ctx, 0));
        CHECK_OK(cumlp__upload_async(ctx, 0, t->data, host, 3));
        host[0] = host[1] = host[2] = 0.0f; /* the blocking fallback has copied already */
        CHECK_OK(cumlp__upload_join(ctx, 0));
        float back[3];
        CHECK_OK(cumlp_tensor_download(t, back, 3));
        CHECK(back[0] == 1.5f && back[1] == -2.0f && back[2] == 0.25f);
    }
    cumlp__host_free(ctx, host);
    double ms = -1;
    CHECK_OK(cumlp__timer_start(ctx));
    CHECK_OK(cumlp__timer_stop(ctx, &ms));
    CHECK(ms >= 0 && ms < 60e3);
    cumlp__range_push(ctx, "cumlp:test"); /* no profiler: nothing happens */
    cumlp__range_pop(ctx);
    cumlp_tensor_destroy(t);
    cumlp_context_destroy(ctx);
}

int main(void) {
    RUN(test_version_and_status);
    RUN(test_contexts);
    RUN(test_precisions);
    RUN(test_loss_scaler_settings);
    RUN(test_tensors);
    RUN(test_network_descriptions);
    RUN(test_parameters_and_batches);
    RUN(test_forward_overlap);
    RUN(test_memory_accounting);
    RUN(test_outputs_null_on_failure);
    RUN(test_messages_name_the_called_function);
    RUN(test_backend_contract);
    RUN(test_optional_op_fallbacks);
    return harness_finish();
}
