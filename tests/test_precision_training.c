/* ctest-labels: gpu data */
/*
 * test_precision_training.c - a bf16 and an fp16 training run reach the fp32 run's test accuracy
 * within half a point (issue 14), on Fashion-MNIST (Debian's dataset-fashion-mnist, or the
 * directory in CUMLP_FASHION_MNIST_DIR; skipped (77) without it, or without the cuda backend and a
 * device). Every run starts from the same initial weights and sees the same batches; only the
 * precision differs. On a GPU the whole data set trains the standard S network (784-256-128-10); on
 * the CUDA simulator, which runs every CUDA thread as a fiber, a subset of the images, each
 * averaged down to 14 x 14 pixels, trains 196-32-10, sized to a few seconds.
 */
#include "harness.h"
#include "testutil.h"

#include "cumlp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef CUMLP_TEST_CUDA_SIM
#define TRAIN_SAMPLES 3000
#define TEST_SAMPLES  2000
#define EPOCHS        5
#define BATCH         100
#define LEARNING_RATE 4e-3
#define POOL          2 /* each 2 x 2 block of pixels averaged into one */
static const int64_t widths[] = {784 / (POOL * POOL), 32, 10};
#else
#define TRAIN_SAMPLES 60000
#define TEST_SAMPLES  10000
#define EPOCHS        5
#define BATCH         128
#define LEARNING_RATE 1e-3
#define POOL          1
static const int64_t widths[] = {784, 256, 128, 10};
#endif
#define NUM_LAYERS ((int)(sizeof widths / sizeof widths[0]) - 1)

static char dir[512];
static cumlp_dataset *train_set, *test_set;

/* The images averaged over POOL x POOL blocks (28 x 28 pixels, one image per column). */
static cumlp_dataset *pooled(const cumlp_dataset *ds) {
    int64_t n = cumlp_dataset_num_samples(ds), side = 28 / POOL;
    cumlp_dataset *out = NULL;
    CHECK_OK(cumlp_dataset_create(NULL, side * side, 10, n, 10, &out));
    if (!out) return NULL;
    const float *x = cumlp_dataset_features((cumlp_dataset *)ds);
    float *y = cumlp_dataset_features(out);
    for (int64_t j = 0; j < n; j++) {
        for (int64_t r = 0; r < side; r++) {
            for (int64_t c = 0; c < side; c++) {
                float sum = 0;
                for (int64_t dr = 0; dr < POOL; dr++)
                    for (int64_t dc = 0; dc < POOL; dc++)
                        sum += x[j * 784 + (r * POOL + dr) * 28 + c * POOL + dc];
                y[j * side * side + r * side + c] = sum / (POOL * POOL);
            }
        }
        int label = cumlp_dataset_label(ds, j);
        float *t = cumlp_dataset_targets(out) + j * 10;
        for (int k = 0; k < 10; k++)
            t[k] = k == label ? 1.0f : 0.0f;
    }
    return out;
}

static cumlp_dataset *read_split(const char *images, const char *labels, int64_t count) {
    char ip[600], lp[600];
    snprintf(ip, sizeof ip, "%s/%s", dir, images);
    snprintf(lp, sizeof lp, "%s/%s", dir, labels);
    cumlp_dataset *all = NULL, *part = NULL;
    CHECK_OK(cumlp_dataset_read_idx(NULL, ip, lp, 10, &all));
    if (all) CHECK_OK(cumlp_dataset_subset(all, 0, count, &part));
    cumlp_dataset_destroy(all);
    if (POOL == 1 || !part) return part;
    cumlp_dataset *small = pooled(part);
    cumlp_dataset_destroy(part);
    return small;
}

/* Trains the network from its seed in `precision` on the cuda backend; the test accuracy. */
static double train(int precision, int64_t *skipped) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_CUDA;
    o.precision = precision;
    char why[512];
    cumlp_context *ctx = test_context_try(&o, why, sizeof why);
    if (!ctx) {
        if (test_gpu_required()) {
            fprintf(stderr, "test: %s, but CUMLP_TEST_REQUIRE_GPU=1 asks for a GPU\n", why);
            exit(1);
        }
        harness_skip(why);
    }
    int acts[NUM_LAYERS];
    for (int l = 0; l < NUM_LAYERS; l++)
        acts[l] = l == NUM_LAYERS - 1 ? CUMLP_ACT_SOFTMAX : CUMLP_ACT_RELU;
    cumlp_network_options no;
    cumlp_network_defaults(&no);
    no.loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
    no.init = CUMLP_INIT_HE_UNIFORM;
    no.seed = 5;
    cumlp_network *net = NULL;
    CHECK_OK(cumlp_network_create(ctx, NUM_LAYERS, widths, acts, &no, &net));
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults_for(CUMLP_OPT_ADAM, &oo);
    oo.learning_rate = LEARNING_RATE;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &oo, &opt));
    cumlp_fit_options fo;
    cumlp_fit_defaults(&fo);
    fo.epochs = EPOCHS;
    fo.batch_size = BATCH;
    fo.seed = 9;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(net, opt, train_set, NULL, &fo, &res));
    cumlp_eval_result e = {0, 0, 0};
    CHECK_OK(cumlp_evaluate(net, test_set, 0, &e));
    *skipped = res.skipped_steps;
    printf(
        "%s: test accuracy %.4f, loss %.4f, train loss %.4f, %lld of %lld steps skipped, %.1fs\n",
        cumlp_precision_name(precision), e.accuracy, e.loss, res.train_loss,
        (long long)res.skipped_steps, (long long)(res.steps + res.skipped_steps), res.seconds);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
    return e.accuracy;
}

static void test_16_bits_reach_fp32_accuracy(void) {
    int64_t skipped[3] = {0, 0, 0};
    double fp32 = train(CUMLP_PRECISION_FP32, &skipped[0]);
    double bf16 = train(CUMLP_PRECISION_BF16, &skipped[1]);
    double fp16 = train(CUMLP_PRECISION_FP16, &skipped[2]);
    CHECK_MSG(fp32 > 0.75, "the fp32 run learns too little to compare with: %.4f", fp32);
    CHECK_MSG(fabs(bf16 - fp32) <= 0.005, "bf16 %.4f, fp32 %.4f", bf16, fp32);
    CHECK_MSG(fabs(fp16 - fp32) <= 0.005, "fp16 %.4f, fp32 %.4f", fp16, fp32);
    CHECK(skipped[0] == 0 && skipped[1] == 0); /* only fp16 overflows */
}

int main(void) {
    const char *env = getenv("CUMLP_FASHION_MNIST_DIR");
    snprintf(dir, sizeof dir, "%s", env && *env ? env : "/usr/share/datasets/fashion-mnist");
    char probe[600];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", dir);
    FILE *f = fopen(probe, "rb");
    if (!f) harness_skip("Fashion-MNIST not found (apt-get install dataset-fashion-mnist)");
    fclose(f);
    train_set =
        read_split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", TRAIN_SAMPLES);
    test_set = read_split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", TEST_SAMPLES);
    cumlp_scaler *s = NULL;
    if (train_set && test_set) {
        CHECK_OK(cumlp_scaler_fit(train_set, CUMLP_SCALE_MINMAX, 0, &s));
        CHECK_OK(cumlp_scaler_apply(s, train_set));
        CHECK_OK(cumlp_scaler_apply(s, test_set));
        RUN(test_16_bits_reach_fp32_accuracy);
    }
    cumlp_scaler_destroy(s);
    cumlp_dataset_destroy(train_set);
    cumlp_dataset_destroy(test_set);
    return harness_finish();
}
