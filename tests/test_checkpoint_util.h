/* test_checkpoint_util.h - helpers shared by the checkpoint tests (files, small trained nets). */
#ifndef CUMLP_TEST_CHECKPOINT_UTIL_H
#define CUMLP_TEST_CHECKPOINT_UTIL_H

#include "cumlp.h"
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A path in the test's scratch directory, unique to this process: dir/ckpt_<pid>_<name>. */
static inline char *ckpt_temp_path(const char *name) {
    const char *dir = getenv("CUMLP_TEST_TMPDIR");
    if (!dir || !dir[0]) dir = "/tmp";
    size_t n = strlen(dir) + strlen(name) + 64;
    char *path = malloc(n);
    if (!path) abort();
    snprintf(path, n, "%s/ckpt_%ld_%s", dir, (long)getpid(), name);
    return path;
}

/* Recomputes a format-2 checkpoint's "crc32" after a test edited the file: CRC-32 (zlib's,
 * computed bit by bit here, independent of the library) of the whole file with the checksum's own
 * 8 digits as zeros. Returns 0 if the file has no such field. */
static inline int ckpt_reseal(unsigned char *data, size_t size) {
    static const char key[] = "\"crc32\":\"";
    size_t keylen = sizeof key - 1;
    unsigned char *digits = NULL;
    for (size_t i = 8; i + keylen + 8 <= size && !digits; i++)
        if (memcmp(data + i, key, keylen) == 0) digits = data + i + keylen;
    if (!digits) return 0;
    memset(digits, '0', 8);
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    char text[9];
    snprintf(text, sizeof text, "%08lx", (unsigned long)~crc);
    memcpy(digits, text, 8);
    return 1;
}

/* The whole file in a malloc'ed buffer (NULL if it cannot be read). */
static inline unsigned char *ckpt_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(n > 0 ? (size_t)n : 1);
    if (!data || fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}

static inline int ckpt_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

/* A 3-layer network 5 -> 7 -> 4 -> 3 (leaky ReLU, tanh, softmax) with cross-entropy. */
static inline cumlp_network *ckpt_small_network(cumlp_context *ctx, uint64_t seed) {
    int64_t widths[] = {5, 7, 4, 3};
    int acts[] = {CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_TANH, CUMLP_ACT_SOFTMAX};
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
    o.leaky_relu_slope = 0.125;
    o.bias_init = CUMLP_BIAS_DRAWN;
    o.seed = seed;
    cumlp_network *net = NULL;
    if (cumlp_network_create(ctx, 3, widths, acts, &o, &net) != CUMLP_SUCCESS) {
        fprintf(stderr, "network: %s\n", cumlp_last_error(ctx));
        abort();
    }
    return net;
}

static inline cumlp_optimizer *ckpt_optimizer(cumlp_network *net, int type) {
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults(&o);
    o.type = type;
    o.learning_rate = 0.05;
    o.weight_decay = 1e-3;
    cumlp_optimizer *opt = NULL;
    if (cumlp_optimizer_create(net, &o, &opt) != CUMLP_SUCCESS) abort();
    return opt;
}

/* Runs `steps` training steps on a fixed random batch of 16 samples drawn from data_seed. */
static inline void ckpt_train(cumlp_network *net, cumlp_optimizer *opt, int steps,
                              uint64_t data_seed) {
    cumlp_context *ctx = cumlp_network_context(net);
    test_rng rng = {data_seed};
    float X[5 * 16], Y[3 * 16];
    test_fill_uniform(&rng, X, 5 * 16, -1, 1);
    test_fill_one_hot(&rng, Y, 3, 16);
    cumlp_tensor *tx = test_tensor_from(ctx, X, 5, 16);
    cumlp_tensor *ty = test_tensor_from(ctx, Y, 3, 16);
    for (int s = 0; s < steps; s++) {
        if (cumlp_train_step(net, opt, tx, ty, NULL) != CUMLP_SUCCESS) abort();
    }
    cumlp_tensor_destroy(tx);
    cumlp_tensor_destroy(ty);
}

/* All parameters of a network in a malloc'ed array. */
static inline float *ckpt_parameters(const cumlp_network *net) {
    int64_t n = cumlp_network_num_parameters(net);
    float *p = test_alloc_floats((size_t)n);
    if (cumlp_network_get_parameters(net, p, n) != CUMLP_SUCCESS) abort();
    return p;
}

#endif
