/* ctest-labels: data */
/* test_data_fashion.c - the IDX reader on the real Fashion-MNIST files (Debian package
 * dataset-fashion-mnist, or the directory in env CUMLP_FASHION_MNIST_DIR), and a short training
 * run on a subset that must beat a stated accuracy. Skipped (77) when the files are absent. */
#include "cumlp.h"
#include "harness.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[512];

static void path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", dir, name);
}

static cumlp_dataset *read_split(const char *images, const char *labels) {
    char ip[600], lp[600];
    path(ip, sizeof ip, images);
    path(lp, sizeof lp, labels);
    cumlp_dataset *ds = NULL;
    cumlp_status st = cumlp_dataset_read_idx(NULL, ip, lp, 10, &ds);
    CHECK_MSG(st == CUMLP_SUCCESS, "%s", cumlp_last_error(NULL));
    return ds;
}

static cumlp_dataset *train_set, *test_set;

static void test_shapes_and_labels(void) {
    CHECK(cumlp_dataset_num_samples(train_set) == 60000);
    CHECK(cumlp_dataset_num_samples(test_set) == 10000);
    CHECK(cumlp_dataset_num_features(train_set) == 784);
    CHECK(cumlp_dataset_num_classes(train_set) == 10);
    /* Fashion-MNIST is balanced: 6000 training and 1000 test images per class */
    int64_t counts[10] = {0}, test_counts[10] = {0};
    for (int64_t i = 0; i < 60000; i++)
        counts[cumlp_dataset_label(train_set, i)]++;
    for (int64_t i = 0; i < 10000; i++)
        test_counts[cumlp_dataset_label(test_set, i)]++;
    for (int c = 0; c < 10; c++)
        CHECK(counts[c] == 6000 && test_counts[c] == 1000);
    /* the first training image is an ankle boot (class 9), the first test image too */
    CHECK(cumlp_dataset_label(train_set, 0) == 9);
    CHECK(cumlp_dataset_label(test_set, 0) == 9);
    /* pixels are bytes: 0 .. 255, and images are not blank */
    const float *x = cumlp_dataset_features(train_set);
    float lo = 255, hi = 0;
    for (int64_t i = 0; i < 784 * 100; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    CHECK(lo == 0 && hi == 255);
    for (int64_t i = 0; i < 784 * 100; i++)
        CHECK(x[i] == (float)(int)x[i]);
}

static void test_truncated_real_file(void) {
    /* the real labels file cut short must fail cleanly */
    char lp[600], ip[600];
    path(lp, sizeof lp, "t10k-labels-idx1-ubyte.gz");
    path(ip, sizeof ip, "t10k-images-idx3-ubyte.gz");
    FILE *f = fopen(ip, "rb");
    static unsigned char buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(n == sizeof buf);
    FILE *g = fopen(lp, "rb");
    static unsigned char lab[1 << 16];
    size_t m = g ? fread(lab, 1, sizeof lab, g) : 0;
    if (g) fclose(g);
    cumlp_dataset *ds = NULL;
    cumlp_status st = cumlp_dataset_read_idx_memory(NULL, buf, n, lab, m, 10, &ds);
    CHECK_STATUS(st, CUMLP_ERROR_TRUNCATED);
    CHECK(ds == NULL);
}

static void test_short_training_run(void) {
    /* 3000 training images, 784-64-10, five epochs of Adam: above 0.75 on 2000 test images */
    int backend =
        cumlp_backend_is_built(CUMLP_BACKEND_CPU) ? CUMLP_BACKEND_CPU : CUMLP_BACKEND_REFERENCE;
    cumlp_context *ctx = test_context_or_skip(backend);
    cumlp_dataset *train = NULL, *test = NULL;
    CHECK_OK(cumlp_dataset_subset(train_set, 0, 3000, &train));
    CHECK_OK(cumlp_dataset_subset(test_set, 0, 2000, &test));
    cumlp_scaler *s = NULL;
    CHECK_OK(cumlp_scaler_fit(train, CUMLP_SCALE_MINMAX, 0, &s));
    CHECK_OK(cumlp_scaler_apply(s, train));
    CHECK_OK(cumlp_scaler_apply(s, test));
    CHECK(cumlp_dataset_features(test)[0] >= 0);
    int64_t widths[] = {784, 64, 10};
    int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX};
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, 1);
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.type = CUMLP_OPT_ADAM;
    oo.learning_rate = 1e-3;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &oo, &opt));
    cumlp_fit_options fo;
    cumlp_fit_defaults(&fo);
    fo.epochs = 5;
    fo.batch_size = 64;
    cumlp_fit_result res;
    CHECK_OK(cumlp_fit(net, opt, train, NULL, &fo, &res));
    cumlp_eval_result e;
    CHECK_OK(cumlp_evaluate(net, test, 0, &e));
    printf("fashion-mnist subset: test accuracy %.4f, loss %.4f, %.2fs on %s\n", e.accuracy, e.loss,
           res.seconds, cumlp_backend_name(backend));
    CHECK_MSG(e.accuracy > 0.75, "test accuracy %.4f", e.accuracy);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_scaler_destroy(s);
    cumlp_dataset_destroy(train);
    cumlp_dataset_destroy(test);
    cumlp_context_destroy(ctx);
}

int main(void) {
    const char *env = getenv("CUMLP_FASHION_MNIST_DIR");
    snprintf(dir, sizeof dir, "%s", env && *env ? env : "/usr/share/datasets/fashion-mnist");
    char probe[600];
    path(probe, sizeof probe, "train-images-idx3-ubyte.gz");
    FILE *f = fopen(probe, "rb");
    if (!f) harness_skip("Fashion-MNIST not found (apt-get install dataset-fashion-mnist)");
    fclose(f);
    train_set = read_split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
    test_set = read_split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");
    if (!train_set || !test_set) {
        harness_finish();
        return 1;
    }
    RUN(test_shapes_and_labels);
    RUN(test_truncated_real_file);
    RUN(test_short_training_run);
    cumlp_dataset_destroy(train_set);
    cumlp_dataset_destroy(test_set);
    return harness_finish();
}
