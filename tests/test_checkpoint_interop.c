/* ctest-labels: data */
/* test_checkpoint_interop.c - PyTorch reads cumlp's checkpoints: the C side writes a checkpoint,
 * a batch of inputs and cumlp's outputs, and tests/interop_torch.py rebuilds the network as an
 * nn.Sequential from the file and compares. Skipped (77) when no python3 with torch is found
 * (tried: $CUMLP_PYTHON, /usr/bin/python3, python3 on the PATH). */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "test_checkpoint_util.h"
#include "test_torch_util.h"

#ifndef CUMLP_INTEROP_SCRIPT
#define CUMLP_INTEROP_SCRIPT "tests/interop_torch.py"
#endif

#define BATCH 10

static cumlp_context *ctx;
static const char *python;

/* Trains the network briefly, writes checkpoint, inputs and outputs, runs the script. With
 * scaled, the checkpoint holds a scaling of the inputs and the model info too: the network saw
 * the scaled inputs, the script gets them raw and scales them as the file says. */
static int check_with_torch(cumlp_network *net, const char *tag, int scaled) {
    int64_t n_in = cumlp_network_width(net, 0);
    int64_t n_out = cumlp_network_width(net, cumlp_network_num_layers(net));
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.type = CUMLP_OPT_ADAM;
    oo.learning_rate = 0.05;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &oo, &opt));
    test_rng rng = {42};
    float *X = test_alloc_floats((size_t)(n_in * BATCH));
    float *T = test_alloc_floats((size_t)(n_out * BATCH));
    float *Y = test_alloc_floats((size_t)(n_out * BATCH));
    test_fill_uniform(&rng, X, (size_t)(n_in * BATCH), -2, 2);
    test_fill_one_hot(&rng, T, n_out, BATCH);
    float *raw = test_alloc_floats((size_t)(n_in * BATCH));
    memcpy(raw, X, (size_t)(n_in * BATCH) * sizeof *X);
    cumlp_scaler *scaler = NULL;
    cumlp_model_info info;
    cumlp_model_info_defaults(&info);
    if (scaled) {
        float *offsets = test_alloc_floats((size_t)n_in), *scales = test_alloc_floats((size_t)n_in);
        for (int64_t f = 0; f < n_in; f++) {
            offsets[f] = 0.25f * (float)f - 0.5f;
            scales[f] = 1.5f - 0.125f * (float)f;
        }
        CHECK_OK(cumlp_scaler_create(ctx, n_in, offsets, scales, &scaler));
        for (int64_t i = 0; i < n_in * BATCH; i++)
            X[i] = (X[i] - offsets[i % n_in]) * scales[i % n_in];
        info.task = CUMLP_TASK_REGRESS;
        free(offsets);
        free(scales);
    }
    cumlp_tensor *tx = test_tensor_from(ctx, X, n_in, BATCH);
    cumlp_tensor *tt = test_tensor_from(ctx, T, n_out, BATCH);
    cumlp_tensor *ty = NULL;
    CHECK_OK(cumlp_tensor_create(ctx, n_out, BATCH, &ty));
    for (int s = 0; s < 5; s++)
        CHECK_OK(cumlp_train_step(net, opt, tx, tt, NULL));
    CHECK_OK(cumlp_forward(net, tx, ty));
    CHECK_OK(cumlp_tensor_download(ty, Y, n_out * BATCH));

    char name[64];
    snprintf(name, sizeof name, "interop_%s.safetensors", tag);
    char *ckpt = ckpt_temp_path(name);
    snprintf(name, sizeof name, "interop_%s_x.f32", tag);
    char *xs = ckpt_temp_path(name);
    snprintf(name, sizeof name, "interop_%s_y.f32", tag);
    char *ys = ckpt_temp_path(name);
    CHECK_OK(cumlp_checkpoint_save_with(net, opt, scaler, &info, ckpt));
    /* Column-major n x B is row-major [B, n]: the layout the script reads. */
    CHECK(ckpt_write_file(xs, raw, (size_t)(n_in * BATCH) * sizeof(float)));
    CHECK(ckpt_write_file(ys, Y, (size_t)(n_out * BATCH) * sizeof(float)));
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' '%s'", python, CUMLP_INTEROP_SCRIPT, ckpt, xs,
             ys);
    int rc = torch_run_command(cmd);
    remove(ckpt);
    remove(xs);
    remove(ys);
    free(ckpt);
    free(xs);
    free(ys);
    cumlp_tensor_destroy(tx);
    cumlp_tensor_destroy(tt);
    cumlp_tensor_destroy(ty);
    free(X);
    free(raw);
    free(T);
    free(Y);
    cumlp_scaler_destroy(scaler);
    cumlp_optimizer_destroy(opt);
    return rc;
}

static void test_softmax_network_matches_torch(void) {
    int64_t widths[] = {4, 9, 6, 5, 3};
    int acts[] = {CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_GELU, CUMLP_ACT_TANH, CUMLP_ACT_SOFTMAX};
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
    o.leaky_relu_slope = 0.2;
    cumlp_network *net = NULL;
    CHECK_OK(cumlp_network_create(ctx, 4, widths, acts, &o, &net));
    if (net) CHECK(check_with_torch(net, "softmax", 0) == 0);
    cumlp_network_destroy(net);
}

static void test_regression_network_matches_torch(void) {
    int64_t widths[] = {6, 7, 5, 2};
    int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_SIGMOID, CUMLP_ACT_IDENTITY};
    cumlp_network *net = test_network(ctx, 3, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 5);
    CHECK(check_with_torch(net, "regression", 1) == 0);
    cumlp_network_destroy(net);
}

int main(void) {
    python = torch_find_python();
    if (!python) harness_skip("no python3 with torch (set CUMLP_PYTHON)");
    printf("python: %s, script: %s\n", python, CUMLP_INTEROP_SCRIPT);
    fflush(stdout);
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_REFERENCE;
    if (cumlp_context_create(&ctx, &o) != CUMLP_SUCCESS) return 1;
    RUN(test_softmax_network_matches_torch);
    RUN(test_regression_network_matches_torch);
    cumlp_context_destroy(ctx);
    return harness_finish();
}
