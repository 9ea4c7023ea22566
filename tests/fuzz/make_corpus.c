/* make_corpus.c - writes the seed corpora of the fuzz targets and their work directories:
 *   make_corpus <dir>  ->  <dir>/seeds/{checkpoint,idx,csv,fann}/ and <dir>/work/<same>/
 * The checkpoint seeds are written by the library itself; the dataset seeds are small valid
 * files in each reader's input framing (see the fuzz_*.c targets). */
#define _POSIX_C_SOURCE 200809L
#include "cumlp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const targets[] = {"checkpoint", "idx", "csv", "fann"};

static void die(const char *what, const char *detail) {
    fprintf(stderr, "make_corpus: %s: %s\n", what, detail);
    exit(1);
}

/* mkdir -p: creates path and any missing parents. */
static void make_dir(const char *path) {
    char partial[4096];
    size_t n = strlen(path);
    if (n >= sizeof partial) die(path, "path too long");
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        memcpy(partial, path, i);
        partial[i] = '\0';
        if (mkdir(partial, 0755) != 0 && errno != EEXIST) die(partial, strerror(errno));
    }
}

static void write_seed(const char *dir, const char *target, const char *name, const void *data,
                       size_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/seeds/%s/%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) die(path, "cannot write");
}

/* A seed that is a one-byte option prefix followed by text. */
static void write_text_seed(const char *dir, const char *target, const char *name,
                            unsigned char option, const char *text) {
    size_t n = strlen(text);
    unsigned char *buf = malloc(n + 1);
    if (!buf) die(name, "out of memory");
    buf[0] = option;
    memcpy(buf + 1, text, n);
    write_seed(dir, target, name, buf, n + 1);
    free(buf);
}

static void checkpoint_seed(const char *dir, cumlp_context *ctx, const char *name, int layers,
                            const int64_t *widths, const int *acts, int loss, int opt_type) {
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.loss = loss;
    cumlp_network *net = NULL;
    cumlp_optimizer *opt = NULL;
    if (cumlp_network_create(ctx, layers, widths, acts, &o, &net) != CUMLP_SUCCESS)
        die(name, cumlp_last_error(ctx));
    if (opt_type >= 0) {
        cumlp_optimizer_options oo;
        cumlp_optimizer_defaults(&oo);
        oo.type = opt_type;
        if (cumlp_optimizer_create(net, &oo, &opt) != CUMLP_SUCCESS)
            die(name, cumlp_last_error(ctx));
    }
    /* with the inputs' scaling and the model info when there is an optimizer */
    cumlp_scaler *scaler = NULL;
    cumlp_model_info info;
    cumlp_model_info_defaults(&info);
    const float offsets[3] = {0.5f, -2.0f, 1e-3f}, scales[3] = {4.0f, 0.25f, -1.0f};
    if (opt_type >= 0) {
        if (cumlp_scaler_create(ctx, widths[0], offsets, scales, &scaler) != CUMLP_SUCCESS)
            die(name, cumlp_last_error(ctx));
        int classify = loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
        info.task = classify ? CUMLP_TASK_CLASSIFY : CUMLP_TASK_REGRESS;
        info.num_classes = classify ? (int)widths[layers] : 0;
        info.label_column = 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/seeds/checkpoint/%s", dir, name);
    if (cumlp_checkpoint_save_with(net, opt, scaler, &info, path) != CUMLP_SUCCESS)
        die(name, cumlp_last_error(ctx));
    cumlp_scaler_destroy(scaler);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
}

static void checkpoint_seeds(const char *dir) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_REFERENCE;
    cumlp_context *ctx = NULL;
    if (cumlp_context_create(&ctx, &o) != CUMLP_SUCCESS) die("context", cumlp_last_error(NULL));
    int64_t w1[] = {2, 1}, w3[] = {3, 4, 3, 2};
    int a1[] = {CUMLP_ACT_IDENTITY};
    int a3[] = {CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_GELU, CUMLP_ACT_SOFTMAX};
    int a3b[] = {CUMLP_ACT_TANH, CUMLP_ACT_RELU, CUMLP_ACT_SIGMOID};
    checkpoint_seed(dir, ctx, "linear", 1, w1, a1, CUMLP_LOSS_SQUARED_ERROR, -1);
    checkpoint_seed(dir, ctx, "softmax_adam", 3, w3, a3, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY,
                    CUMLP_OPT_ADAM);
    checkpoint_seed(dir, ctx, "sigmoid_momentum", 3, w3, a3b,
                    CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, CUMLP_OPT_MOMENTUM);
    checkpoint_seed(dir, ctx, "linear_sgd", 1, w1, a1, CUMLP_LOSS_SQUARED_ERROR, CUMLP_OPT_SGD);
    cumlp_context_destroy(ctx);
}

static void put_u32_be(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* [images length, 2 bytes LE][IDX images: 3 samples of 2 x 2 bytes][IDX labels: 3 bytes]. */
static void idx_seeds(const char *dir) {
    unsigned char seed[2 + 16 + 12 + 12 + 3];
    unsigned char *images = seed + 2, *labels = seed + 2 + 28;
    put_u32_be(images, 0x00000803);
    put_u32_be(images + 4, 3), put_u32_be(images + 8, 2), put_u32_be(images + 12, 2);
    for (int i = 0; i < 12; i++)
        images[16 + i] = (unsigned char)(i * 20);
    put_u32_be(labels, 0x00000801);
    put_u32_be(labels + 4, 3);
    labels[8] = 0, labels[9] = 2, labels[10] = 1;
    seed[0] = 28, seed[1] = 0;
    write_seed(dir, "idx", "uint8_images", seed, 2 + 28 + 11);
    /* float32 images: type code 0x0D, 2 samples of 1 value. */
    unsigned char f[2 + 20 + 10];
    put_u32_be(f + 2, 0x00000D02);
    put_u32_be(f + 6, 2), put_u32_be(f + 10, 1);
    put_u32_be(f + 14, 0x3f800000), put_u32_be(f + 18, 0xbf000000);
    put_u32_be(f + 22, 0x00000801), put_u32_be(f + 26, 2);
    f[30] = 1, f[31] = 0;
    f[0] = 20, f[1] = 0;
    write_seed(dir, "idx", "float_images", f, sizeof f);
}

static void text_seeds(const char *dir) {
    write_text_seed(dir, "csv", "regression", 0, "1,2,3\n4.5,-6e-1,7\n8, 9 ,10\n");
    write_text_seed(dir, "csv", "header_classes", 1 | (1 << 1),
                    "a,b,label\n0.1,0.2,0\r\n0.3,0.4,2\n");
    write_text_seed(dir, "csv", "first_column_fixed_classes", (2 << 1) | 8, "3,0.5,0.25\n1,1,2\n");
    write_text_seed(dir, "csv", "semicolon", 16, "1;2\n3;4");
    write_text_seed(dir, "fann", "xor", 0, "4 2 1\n0 0\n0\n0 1\n1\n1 0\n1\n1 1\n0\n");
    write_text_seed(dir, "fann", "classes", 1, "2 3 2\n0.1 0.2 0.3\n1 0\n-1 2e3 0.5\n0 1\n");
}

int main(int argc, char **argv) {
    if (argc != 2) die("usage", "make_corpus <dir>");
    const char *dir = argv[1];
    char path[4096];
    make_dir(dir);
    const char *kinds[] = {"seeds", "work"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, kinds[k]);
        make_dir(path);
        for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
            snprintf(path, sizeof path, "%s/%s/%s", dir, kinds[k], targets[t]);
            make_dir(path);
        }
    }
    checkpoint_seeds(dir);
    idx_seeds(dir);
    text_seeds(dir);
    return 0;
}
