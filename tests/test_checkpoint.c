/* ctest-labels: unit cuda */
/* test_checkpoint.c - saving and loading checkpoints: round trips, layout, backends, resume. */
#define _GNU_SOURCE /* memmem */
#include "harness.h"
#include "internal.h"
#include "test_checkpoint_util.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

static cumlp_context *ref_ctx;

/* Little-endian u64 and f32 from a file image. */
static uint64_t u64_at(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static float f32_at(const unsigned char *p) {
    uint32_t bits =
        (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* save -> load -> save gives the same bytes, with and without optimizer state. */
static void test_round_trip_is_byte_identical(void) {
    int types[] = {-1, CUMLP_OPT_SGD, CUMLP_OPT_MOMENTUM, CUMLP_OPT_NESTEROV, CUMLP_OPT_ADAM};
    char *a = ckpt_temp_path("rt_a.safetensors"), *b = ckpt_temp_path("rt_b.safetensors");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        cumlp_network *net = ckpt_small_network(ref_ctx, 7);
        cumlp_optimizer *opt = ckpt_optimizer(net, types[t] < 0 ? CUMLP_OPT_ADAM : types[t]);
        ckpt_train(net, opt, 3, 11);
        CHECK_OK(cumlp_checkpoint_save(net, types[t] < 0 ? NULL : opt, a));
        cumlp_network *net2 = NULL;
        cumlp_optimizer *opt2 = NULL;
        CHECK_OK(cumlp_checkpoint_load(ref_ctx, a, 0, &net2, &opt2));
        CHECK(net2 != NULL);
        CHECK((opt2 != NULL) == (types[t] >= 0));
        if (opt2) CHECK(cumlp_optimizer_step_count(opt2) == 3);
        if (net2) CHECK_OK(cumlp_checkpoint_save(net2, opt2, b));
        size_t na = 0, nb = 0;
        unsigned char *da = ckpt_read_file(a, &na), *db = ckpt_read_file(b, &nb);
        CHECK(da && db && na == nb && na % 4 == 0 && memcmp(da, db, na) == 0);
        CHECK(da && (8 + u64_at(da)) % 8 == 0); /* payload aligned to 8 */
        free(da);
        free(db);
        cumlp_optimizer_destroy(opt2);
        cumlp_network_destroy(net2);
        cumlp_optimizer_destroy(opt);
        cumlp_network_destroy(net);
    }
    remove(a);
    remove(b);
    free(a);
    free(b);
}

/* Hyper-parameters that are valid but subnormal (strtod flags them ERANGE) save and load back. */
static void test_subnormal_hyper_parameters_round_trip(void) {
    char *a = ckpt_temp_path("sub_a.safetensors"), *b = ckpt_temp_path("sub_b.safetensors");
    cumlp_network *net = ckpt_small_network(ref_ctx, 5);
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults(&o);
    o.type = CUMLP_OPT_ADAM;
    o.learning_rate = 1e-310;
    o.epsilon = 4.9406564584124654e-324;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    CHECK_OK(cumlp_checkpoint_save(net, opt, a));
    cumlp_network *net2 = NULL;
    cumlp_optimizer *opt2 = NULL;
    CHECK_STATUS(cumlp_checkpoint_load(ref_ctx, a, 0, &net2, &opt2), CUMLP_SUCCESS);
    if (opt2) {
        CHECK(cumlp_optimizer_learning_rate(opt2) == 1e-310);
        CHECK_OK(cumlp_checkpoint_save(net2, opt2, b));
        size_t na = 0, nb = 0;
        unsigned char *da = ckpt_read_file(a, &na), *db = ckpt_read_file(b, &nb);
        CHECK(da && db && na == nb && memcmp(da, db, na) == 0);
        free(da);
        free(db);
    }
    cumlp_optimizer_destroy(opt2);
    cumlp_network_destroy(net2);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    remove(a);
    remove(b);
    free(a);
    free(b);
}

/* A new file gets 0666 less the umask (mkstemp alone would make it 0600, a fixed 0644 would
 * ignore a private umask); a replaced file keeps its mode. */
static void test_file_mode_follows_umask(void) {
    char *path = ckpt_temp_path("mode.safetensors");
    cumlp_network *net = ckpt_small_network(ref_ctx, 6);
    const mode_t masks[] = {077, 022, 002};
    mode_t saved = umask(022);
    for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        remove(path);
        umask(masks[i]);
        CHECK_OK(cumlp_checkpoint_save(net, NULL, path));
        struct stat sb;
        CHECK(stat(path, &sb) == 0);
        CHECK_MSG((sb.st_mode & 0777) == (0666 & ~masks[i]), "umask %03o: mode %03o",
                  (unsigned)masks[i], (unsigned)(sb.st_mode & 0777));
    }
    umask(022);
    CHECK(chmod(path, 0640) == 0);
    CHECK_OK(cumlp_checkpoint_save(net, NULL, path));
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0640);
    umask(saved);
    cumlp_network_destroy(net);
    remove(path);
    free(path);
}

/* The first tensor is "0.weight" [n_out, n_in] row-major: element (j, i) is W[j + i n_out]. */
static void test_weight_layout_is_pytorch_row_major(void) {
    char *path = ckpt_temp_path("layout.safetensors");
    cumlp_network *net = ckpt_small_network(ref_ctx, 3);
    CHECK_OK(cumlp_checkpoint_save(net, NULL, path));
    size_t size = 0;
    unsigned char *data = ckpt_read_file(path, &size);
    CHECK(data != NULL);
    if (data) {
        uint64_t n = u64_at(data);
        char *header = malloc(n + 1);
        memcpy(header, data + 8, n);
        header[n] = '\0';
        CHECK(strstr(header, "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[7,5],"
                             "\"data_offsets\":[0,140]}") != NULL);
        CHECK(strstr(header, "\"2.bias\":{\"dtype\":\"F32\",\"shape\":[4]") != NULL);
        CHECK(strstr(header, "\"widths\":\"5,7,4,3\"") != NULL);
        CHECK(strstr(header, "\"activations\":\"leaky_relu,tanh,softmax\"") != NULL);
        CHECK(strstr(header, "\"loss\":\"ce\"") != NULL); /* the names of cumlp.h's lists */
        CHECK(strstr(header, "\"leaky_relu_slope\":\"0.125\"") != NULL);
        free(header);
        float W[7 * 5], b[7];
        CHECK_OK(cumlp_network_get_layer(net, 0, W, b));
        const unsigned char *payload = data + 8 + n;
        int same = 1;
        for (int j = 0; j < 7; j++) {
            for (int i = 0; i < 5; i++)
                same &= f32_at(payload + 4 * (j * 5 + i)) == W[j + i * 7];
            same &= f32_at(payload + 140 + 4 * j) == b[j];
        }
        CHECK(same);
    }
    free(data);
    cumlp_network_destroy(net);
    remove(path);
    free(path);
}

/* Creates a context for a backend, or NULL if this build or machine lacks it. */
static cumlp_context *context_if_available(int backend) {
    if (!cumlp_backend_is_built(backend)) return NULL;
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = backend;
    cumlp_context *ctx = NULL;
    return cumlp_context_create(&ctx, &o) == CUMLP_SUCCESS ? ctx : NULL;
}

/* Trained on each available backend, loaded on each: bit-identical fp32 parameters. */
static void test_cross_backend_bit_identical(void) {
    int backends[] = {CUMLP_BACKEND_REFERENCE, CUMLP_BACKEND_CPU, CUMLP_BACKEND_CUDA};
    cumlp_context *ctxs[3];
    for (int i = 0; i < 3; i++)
        ctxs[i] = context_if_available(backends[i]);
    CHECK(ctxs[0] != NULL);
    char *path = ckpt_temp_path("xb.safetensors");
    for (int w = 0; w < 3; w++) {
        if (!ctxs[w]) continue;
        cumlp_network *net = ckpt_small_network(ctxs[w], 5);
        cumlp_optimizer *opt = ckpt_optimizer(net, CUMLP_OPT_ADAM);
        ckpt_train(net, opt, 4, 9);
        float *want = ckpt_parameters(net);
        CHECK_OK(cumlp_checkpoint_save(net, opt, path));
        for (int r = 0; r < 3; r++) {
            if (!ctxs[r]) continue;
            cumlp_network *loaded = NULL;
            CHECK_OK(cumlp_checkpoint_load(ctxs[r], path, 0, &loaded, NULL));
            if (!loaded) continue;
            float *got = ckpt_parameters(loaded);
            size_t n = (size_t)cumlp_network_num_parameters(net);
            CHECK_MSG(memcmp(got, want, n * sizeof(float)) == 0, "written on %s, read on %s",
                      cumlp_backend_name(backends[w]), cumlp_backend_name(backends[r]));
            free(got);
            cumlp_network_destroy(loaded);
        }
        free(want);
        cumlp_optimizer_destroy(opt);
        cumlp_network_destroy(net);
    }
    for (int i = 0; i < 3; i++)
        cumlp_context_destroy(ctxs[i]);
    remove(path);
    free(path);
}

/* Training resumed from a checkpoint continues exactly as the uninterrupted run. */
static void test_resume_matches_uninterrupted(void) {
    int types[] = {CUMLP_OPT_MOMENTUM, CUMLP_OPT_NESTEROV, CUMLP_OPT_ADAM};
    char *path = ckpt_temp_path("resume.safetensors");
    for (int t = 0; t < 3; t++) {
        cumlp_network *net = ckpt_small_network(ref_ctx, 21);
        cumlp_optimizer *opt = ckpt_optimizer(net, types[t]);
        ckpt_train(net, opt, 3, 4);
        CHECK_OK(cumlp_checkpoint_save(net, opt, path));
        ckpt_train(net, opt, 3, 5);
        float *want = ckpt_parameters(net);

        cumlp_network *net2 = NULL;
        cumlp_optimizer *opt2 = NULL;
        CHECK_OK(cumlp_checkpoint_load(ref_ctx, path, 0, &net2, &opt2));
        CHECK(opt2 != NULL);
        if (net2 && opt2) {
            CHECK(cumlp_optimizer_step_count(opt2) == 3);
            CHECK(cumlp_optimizer_learning_rate(opt2) == 0.05);
            ckpt_train(net2, opt2, 3, 5);
            float *got = ckpt_parameters(net2);
            size_t n = (size_t)cumlp_network_num_parameters(net);
            /* fp32 rounding of the saved state: equal to fp32 round-off of a few steps. */
            CHECK(test_max_rel_error(got, want, n, 1e-3) < 1e-5);
            free(got);
        }
        /* load_into an existing pair restores the same state. */
        cumlp_network *net3 = ckpt_small_network(ref_ctx, 99);
        cumlp_optimizer *opt3 = ckpt_optimizer(net3, types[t]);
        CHECK_OK(cumlp_checkpoint_load_into(net3, opt3, path, 0));
        CHECK(cumlp_optimizer_step_count(opt3) == 3);
        ckpt_train(net3, opt3, 3, 5);
        float *got3 = ckpt_parameters(net3);
        float *got2 = net2 ? ckpt_parameters(net2) : NULL;
        size_t n = (size_t)cumlp_network_num_parameters(net);
        CHECK(got2 && memcmp(got2, got3, n * sizeof(float)) == 0);
        free(got2);
        free(got3);
        free(want);
        cumlp_optimizer_destroy(opt3);
        cumlp_network_destroy(net3);
        cumlp_optimizer_destroy(opt2);
        cumlp_network_destroy(net2);
        cumlp_optimizer_destroy(opt);
        cumlp_network_destroy(net);
    }
    remove(path);
    free(path);
}

/* Every rule with its options, for the bit-exact resume. */
static cumlp_optimizer_options resume_options(int i) {
    static const int types[] = {CUMLP_OPT_SGD,     CUMLP_OPT_MOMENTUM, CUMLP_OPT_NESTEROV,
                                CUMLP_OPT_ADAM,    CUMLP_OPT_ADAMW,    CUMLP_OPT_ADAMAX,
                                CUMLP_OPT_NADAM,   CUMLP_OPT_RMSPROP,  CUMLP_OPT_RMSPROP,
                                CUMLP_OPT_ADAGRAD, CUMLP_OPT_ADADELTA};
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults_for(types[i], &o);
    o.weight_decay = 1e-3;
    o.learning_rate *= 5;
    if (i == 8) { /* the RMSprop that keeps all three state arenas */
        o.centered = 1;
        o.momentum = 0.5;
        o.clip_norm = 0.5;
    }
    if (types[i] == CUMLP_OPT_ADAGRAD) {
        o.lr_decay = 0.3;
        o.initial_accumulator_value = 0.1;
        o.clip_value = 0.05;
    }
    if (types[i] == CUMLP_OPT_NADAM) o.momentum_decay = 0.3; /* mu_t changes from step to step */
    return o;
}
#define RESUME_CASES 11

/* The values a checkpoint stores: parameters and state rounded to fp32 (nothing changes on the
 * fp32 backends). */
static void round_to_file_precision(cumlp_optimizer *opt) {
    cumlp_network *net = opt->net;
    cumlp_context *ctx = net->ctx;
    float *host = test_alloc_floats(net->num_params);
    for (int k = -1; k < CUMLP_OPTIMIZER_MAX_STATES; k++) {
        void *arena = k < 0 ? net->params : opt->state[k];
        if (!arena) continue;
        CHECK_OK(ctx->ops->download(ctx, arena, host, net->num_params));
        CHECK_OK(ctx->ops->upload(ctx, arena, host, net->num_params));
    }
    free(host);
}

static double *parameters_f64(const cumlp_network *net) {
    int64_t n = cumlp_network_num_parameters(net);
    double *p = malloc((size_t)n * sizeof *p);
    if (!p || cumlp_network_get_parameters_f64(net, p, n) != CUMLP_SUCCESS) abort();
    return p;
}

/* 4 steps, save, 5 more on other data, against 4 steps, the file's rounding, 5 more: the same
 * bits, through cumlp_checkpoint_load and cumlp_checkpoint_load_into. */
static void resume_run(cumlp_context *ctx, const cumlp_optimizer_options *o, const char *path) {
    cumlp_network *net = ckpt_small_network(ctx, 21), *net3 = ckpt_small_network(ctx, 5);
    cumlp_optimizer *opt = NULL, *opt3 = NULL;
    CHECK_OK(cumlp_optimizer_create(net, o, &opt));
    CHECK_OK(cumlp_optimizer_create(net3, o, &opt3));
    ckpt_train(net, opt, 4, 4);
    CHECK_OK(cumlp_checkpoint_save(net, opt, path));
    round_to_file_precision(opt);
    ckpt_train(net, opt, 5, 5);
    cumlp_network *net2 = NULL;
    cumlp_optimizer *opt2 = NULL;
    CHECK_OK(cumlp_checkpoint_load(ctx, path, 0, &net2, &opt2));
    CHECK_OK(cumlp_checkpoint_load_into(net3, opt3, path, 0));
    if (net2 && opt2) {
        CHECK(cumlp_optimizer_step_count(opt2) == 4 && cumlp_optimizer_step_count(opt3) == 4);
        CHECK(memcmp(&opt2->options, o, sizeof *o) == 0);
        ckpt_train(net2, opt2, 5, 5);
        ckpt_train(net3, opt3, 5, 5);
        size_t n = (size_t)cumlp_network_num_parameters(net);
        double *want = parameters_f64(net), *got = parameters_f64(net2),
               *got3 = parameters_f64(net3);
        CHECK_MSG(memcmp(got, want, n * sizeof *want) == 0, "%s on %s: load",
                  cumlp_optimizer_name(o->type), cumlp_backend_name(cumlp_context_backend(ctx)));
        CHECK_MSG(memcmp(got3, want, n * sizeof *want) == 0, "%s on %s: load_into",
                  cumlp_optimizer_name(o->type), cumlp_backend_name(cumlp_context_backend(ctx)));
        free(want);
        free(got);
        free(got3);
    }
    cumlp_optimizer_destroy(opt2);
    cumlp_network_destroy(net2);
    cumlp_optimizer_destroy(opt3);
    cumlp_network_destroy(net3);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
}

/* Every optimizer resumes bit for bit (issue: train N+M steps in one go, or N then M with a save
 * and load between): on the cpu backend exactly; on the reference backend, whose double
 * parameters and state the fp32 file rounds, against the uninterrupted run with that rounding. */
static void test_resume_is_bit_exact(void) {
    char *path = ckpt_temp_path("resume_exact.safetensors");
    static const int backends[] = {CUMLP_BACKEND_REFERENCE, CUMLP_BACKEND_CPU};
    for (int b = 0; b < 2; b++) {
        if (!cumlp_backend_is_built(backends[b])) continue;
        cumlp_context *ctx = test_context_or_skip(backends[b]);
        for (int i = 0; i < RESUME_CASES; i++) {
            cumlp_optimizer_options o = resume_options(i);
            resume_run(ctx, &o, path);
        }
        cumlp_context_destroy(ctx);
    }
    remove(path);
    free(path);
}

/* A file written before the options after epsilon existed (their metadata blanked out with
 * spaces, which keeps the header valid JSON of the same length, and the checksum recomputed)
 * reads with their defaults. */
static void test_reads_files_without_new_options(void) {
    char *path = ckpt_temp_path("old_options.safetensors");
    cumlp_network *net = ckpt_small_network(ref_ctx, 3);
    cumlp_optimizer *opt = ckpt_optimizer(net, CUMLP_OPT_ADAM);
    ckpt_train(net, opt, 2, 3);
    CHECK_OK(cumlp_checkpoint_save(net, opt, path));
    size_t size = 0;
    unsigned char *data = ckpt_read_file(path, &size);
    const char *keys[] = {
        "alpha",          "rho",       "centered",   "lr_decay",        "initial_accumulator_value",
        "momentum_decay", "clip_norm", "clip_value", "non_finite_error"};
    size_t header = data ? (size_t)u64_at(data) : 0;
    for (size_t k = 0; data && k < sizeof keys / sizeof *keys; k++) {
        char key[64];
        snprintf(key, sizeof key, ",\"%s\":\"", keys[k]);
        char *at = memmem(data + 8, header, key, strlen(key));
        CHECK_MSG(at != NULL, "no %s", keys[k]);
        char *end = at ? memchr(at + strlen(key), '"', header) : NULL;
        if (end) memset(at, ' ', (size_t)(end + 1 - at));
    }
    CHECK(data && ckpt_reseal(data, size)); /* the checksum covers the header */
    cumlp_network *net2 = NULL;
    cumlp_optimizer *opt2 = NULL;
    CHECK_OK(cumlp_checkpoint_load_memory(ref_ctx, data, size, 0, &net2, &opt2));
    cumlp_optimizer_options want;
    cumlp_optimizer_defaults(&want);
    want.type = CUMLP_OPT_ADAM;
    want.learning_rate = 0.05;
    want.weight_decay = 1e-3;
    CHECK(opt2 && memcmp(&opt2->options, &want, sizeof want) == 0);
    CHECK(opt2 && cumlp_optimizer_step_count(opt2) == 2);
    free(data);
    cumlp_optimizer_destroy(opt2);
    cumlp_network_destroy(net2);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    remove(path);
    free(path);
}

static int same_parameters(const cumlp_network *net, const float *want);

/* load_into: an RMSprop optimizer whose momentum or centered option keeps other state arenas than
 * the file's is a SHAPE_MISMATCH, and nothing changes. */
static void test_load_into_state_arrays_must_agree(void) {
    char *path = ckpt_temp_path("rmsprop.safetensors");
    cumlp_network *net = ckpt_small_network(ref_ctx, 3);
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults_for(CUMLP_OPT_RMSPROP, &o);
    o.centered = 1;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    ckpt_train(net, opt, 2, 3);
    CHECK_OK(cumlp_checkpoint_save(net, opt, path));
    size_t size = 0;
    unsigned char *data = ckpt_read_file(path, &size);
    CHECK(data && memmem(data, size, "optimizer.state3.0.weight", 25) &&
          !memmem(data, size, "optimizer.state2.", 17));
    free(data);
    cumlp_network *other = ckpt_small_network(ref_ctx, 4);
    float *before = ckpt_parameters(other);
    o.centered = 0;
    o.momentum = 0.5;
    cumlp_optimizer *plain = NULL;
    CHECK_OK(cumlp_optimizer_create(other, &o, &plain));
    CHECK_STATUS(cumlp_checkpoint_load_into(other, plain, path, 0), CUMLP_ERROR_SHAPE_MISMATCH);
    CHECK(strstr(cumlp_last_error(ref_ctx), "state arrays") != NULL);
    CHECK(same_parameters(other, before) && cumlp_optimizer_step_count(plain) == 0);
    free(before);
    cumlp_optimizer_destroy(plain);
    cumlp_network_destroy(other);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    remove(path);
    free(path);
}

static int same_parameters(const cumlp_network *net, const float *want) {
    float *got = ckpt_parameters(net);
    int same = memcmp(got, want, (size_t)cumlp_network_num_parameters(net) * sizeof(float)) == 0;
    free(got);
    return same;
}

/* load_into refuses other architectures and optimizer types and then changes nothing. */
static void test_load_into_mismatch_leaves_network(void) {
    char *path = ckpt_temp_path("into.safetensors");
    cumlp_network *src = ckpt_small_network(ref_ctx, 1);
    cumlp_optimizer *src_opt = ckpt_optimizer(src, CUMLP_OPT_ADAM);
    ckpt_train(src, src_opt, 2, 3);
    CHECK_OK(cumlp_checkpoint_save(src, src_opt, path));

    int64_t widths[] = {5, 7, 4, 2};
    int acts[] = {CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_TANH, CUMLP_ACT_SIGMOID};
    cumlp_network *other = test_network(ref_ctx, 3, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 8);
    float *before = ckpt_parameters(other);
    CHECK_STATUS(cumlp_checkpoint_load_into(other, NULL, path, 0), CUMLP_ERROR_SHAPE_MISMATCH);
    CHECK(strstr(cumlp_last_error(ref_ctx), path) != NULL);
    CHECK(same_parameters(other, before));
    free(before);

    cumlp_network *net = ckpt_small_network(ref_ctx, 2);
    cumlp_optimizer *momentum = ckpt_optimizer(net, CUMLP_OPT_MOMENTUM);
    before = ckpt_parameters(net);
    CHECK_STATUS(cumlp_checkpoint_load_into(net, momentum, path, 0), CUMLP_ERROR_SHAPE_MISMATCH);
    CHECK(same_parameters(net, before));
    CHECK(cumlp_optimizer_step_count(momentum) == 0);
    /* Without the optimizer the parameters load. */
    CHECK_OK(cumlp_checkpoint_load_into(net, NULL, path, 0));
    float *want = ckpt_parameters(src);
    CHECK(same_parameters(net, want));
    free(want);
    free(before);
    cumlp_optimizer_destroy(momentum);
    cumlp_network_destroy(net);
    cumlp_network_destroy(other);
    cumlp_optimizer_destroy(src_opt);
    cumlp_network_destroy(src);
    remove(path);
    free(path);
}

static void test_non_finite_rejected_unless_allowed(void) {
    char *path = ckpt_temp_path("nan.safetensors");
    cumlp_network *net = ckpt_small_network(ref_ctx, 4);
    float *p = ckpt_parameters(net);
    int64_t n = cumlp_network_num_parameters(net);
    p[n - 1] = INFINITY;
    p[3] = NAN;
    CHECK_OK(cumlp_network_set_parameters(net, p, n));
    CHECK_OK(cumlp_checkpoint_save(net, NULL, path));
    cumlp_network *loaded = (cumlp_network *)&loaded;
    CHECK_STATUS(cumlp_checkpoint_load(ref_ctx, path, 0, &loaded, NULL), CUMLP_ERROR_NON_FINITE);
    CHECK(loaded == NULL);
    CHECK(strstr(cumlp_last_error(ref_ctx), "0.weight") != NULL);
    CHECK_OK(
        cumlp_checkpoint_load(ref_ctx, path, CUMLP_CHECKPOINT_ALLOW_NON_FINITE, &loaded, NULL));
    if (loaded) {
        float *q = ckpt_parameters(loaded);
        CHECK(isnan(q[3]) && isinf(q[n - 1]) && q[0] == p[0]);
        free(q);
    }
    cumlp_network_destroy(loaded);
    free(p);
    cumlp_network_destroy(net);
    remove(path);
    free(path);
}

static void test_argument_errors(void) {
    char *path = ckpt_temp_path("args.safetensors");
    cumlp_network *net = ckpt_small_network(ref_ctx, 4);
    cumlp_network *other = ckpt_small_network(ref_ctx, 5);
    cumlp_optimizer *other_opt = ckpt_optimizer(other, CUMLP_OPT_SGD);
    cumlp_network *out = NULL;
    CHECK_STATUS(cumlp_checkpoint_save(NULL, NULL, path), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_checkpoint_save(net, NULL, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_checkpoint_save(net, NULL, ""), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_checkpoint_save(net, other_opt, path), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_checkpoint_load(NULL, path, 0, &out, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_checkpoint_load(ref_ctx, NULL, 0, &out, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_checkpoint_load(ref_ctx, path, 0, NULL, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK_OK(cumlp_checkpoint_save(net, NULL, path));
    CHECK_STATUS(cumlp_checkpoint_load(ref_ctx, path, 0x100, &out, NULL),
                 CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_checkpoint_load_into(net, other_opt, path, 0), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_checkpoint_load_into(NULL, NULL, path, 0), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_checkpoint_load_memory(ref_ctx, NULL, 0, 0, &out, NULL),
                 CUMLP_ERROR_TRUNCATED);
    CHECK_STATUS(cumlp_checkpoint_load_memory(ref_ctx, NULL, 5, 0, &out, NULL),
                 CUMLP_ERROR_INVALID_VALUE);
    char *missing = ckpt_temp_path("does_not_exist.safetensors");
    CHECK_STATUS(cumlp_checkpoint_load(ref_ctx, missing, 0, &out, NULL), CUMLP_ERROR_IO);
    CHECK(strstr(cumlp_last_error(ref_ctx), missing) != NULL);
    const char *dir = getenv("CUMLP_TEST_TMPDIR") ? getenv("CUMLP_TEST_TMPDIR") : "/tmp";
    CHECK_STATUS(cumlp_checkpoint_load(ref_ctx, dir, 0, &out, NULL), CUMLP_ERROR_IO);
    CHECK(out == NULL);
    free(missing);
    cumlp_optimizer_destroy(other_opt);
    cumlp_network_destroy(other);
    cumlp_network_destroy(net);
    remove(path);
    free(path);
}

/* Names in the directory of path that start with ".<base>." (the save's temporary files). */
static int count_temporaries(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096], prefix[512];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    snprintf(prefix, sizeof prefix, ".%s.", slash + 1);
    DIR *d = opendir(dir);
    if (!d) return -1;
    int count = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        count += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return count;
}

/* A save that fails (file size limit, missing directory, target is a directory) leaves the old
 * file intact and no temporary file behind. */
static void test_failed_save_keeps_old_file(void) {
    char *path = ckpt_temp_path("keep.safetensors");
    cumlp_network *old_net = ckpt_small_network(ref_ctx, 31);
    CHECK_OK(cumlp_checkpoint_save(old_net, NULL, path));
    size_t old_size = 0;
    unsigned char *old = ckpt_read_file(path, &old_size);

    pid_t pid = fork();
    if (pid == 0) {
        /* In the child: writes beyond 600 bytes fail with EFBIG. */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit limit = {600, 600};
        setrlimit(RLIMIT_FSIZE, &limit);
        cumlp_network *big = ckpt_small_network(ref_ctx, 32);
        cumlp_optimizer *opt = ckpt_optimizer(big, CUMLP_OPT_ADAM);
        cumlp_status st = cumlp_checkpoint_save(big, opt, path);
        _exit(st == CUMLP_ERROR_IO ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t now_size = 0;
    unsigned char *now = ckpt_read_file(path, &now_size);
    CHECK(old && now && now_size == old_size && memcmp(old, now, old_size) == 0);
    CHECK(count_temporaries(path) == 0);

    char *nodir = ckpt_temp_path("no_such_dir/x.safetensors");
    CHECK_STATUS(cumlp_checkpoint_save(old_net, NULL, nodir), CUMLP_ERROR_IO);
    CHECK(strstr(cumlp_last_error(ref_ctx), nodir) != NULL);
    char *dirpath = ckpt_temp_path("a_directory");
    CHECK(mkdir(dirpath, 0755) == 0);
    CHECK_STATUS(cumlp_checkpoint_save(old_net, NULL, dirpath), CUMLP_ERROR_IO);
    CHECK(count_temporaries(dirpath) == 0);
    rmdir(dirpath);
    free(dirpath);
    free(nodir);
    free(old);
    free(now);
    cumlp_network_destroy(old_net);
    remove(path);
    free(path);
}

/* A save never replaces what is not a regular file: a FIFO (or a device, or a directory) at the
 * path, or at the end of a symbolic link, is refused with CUMLP_ERROR_IO and left as it was (as
 * root, `--save /dev/null` used to rename a regular file over the device node). A symbolic link is
 * followed: its target is replaced (created, for a dangling link) and the link stays a link. */
static void test_save_refuses_special_files_and_follows_links(void) {
    cumlp_network *net = ckpt_small_network(ref_ctx, 41);
    char *fifo = ckpt_temp_path("special.fifo");
    remove(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK_STATUS(cumlp_checkpoint_save(net, NULL, fifo), CUMLP_ERROR_IO);
    CHECK_MSG(strstr(cumlp_last_error(ref_ctx), fifo) && strstr(cumlp_last_error(ref_ctx), "FIFO"),
              "%s", cumlp_last_error(ref_ctx));
    struct stat sb;
    CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    CHECK(count_temporaries(fifo) == 0);

    char *link_to_fifo = ckpt_temp_path("link_to_fifo.safetensors");
    remove(link_to_fifo);
    CHECK(symlink(fifo, link_to_fifo) == 0);
    CHECK_STATUS(cumlp_checkpoint_save(net, NULL, link_to_fifo), CUMLP_ERROR_IO);
    CHECK(lstat(link_to_fifo, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));

    /* a link to a regular file: the file gets the new contents, the link stays */
    char *target = ckpt_temp_path("link_target.safetensors");
    char *link = ckpt_temp_path("link.safetensors");
    remove(link);
    CHECK(ckpt_write_file(target, "old", 3));
    const char *slash = strrchr(target, '/');
    CHECK(symlink(slash + 1, link) == 0); /* relative to the link's directory */
    CHECK_OK(cumlp_checkpoint_save(net, NULL, link));
    CHECK(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode));
    cumlp_network *back = NULL;
    CHECK_OK(cumlp_checkpoint_load(ref_ctx, target, 0, &back, NULL));
    cumlp_network_destroy(back);
    CHECK(count_temporaries(target) == 0 && count_temporaries(link) == 0);

    /* a dangling link: its target is created */
    remove(target);
    CHECK_OK(cumlp_checkpoint_save(net, NULL, link));
    CHECK(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK(stat(target, &sb) == 0 && S_ISREG(sb.st_mode));

    /* a loop of links is an error, not a hang */
    char *loop = ckpt_temp_path("loop.safetensors");
    remove(loop);
    CHECK(symlink(strrchr(loop, '/') + 1, loop) == 0);
    CHECK_STATUS(cumlp_checkpoint_save(net, NULL, loop), CUMLP_ERROR_IO);
    CHECK(lstat(loop, &sb) == 0 && S_ISLNK(sb.st_mode));

    char *paths[] = {fifo, link_to_fifo, target, link, loop};
    for (int i = 0; i < 5; i++) {
        remove(paths[i]);
        free(paths[i]);
    }
    cumlp_network_destroy(net);
}

/* One file is the whole model: the inputs' scaling and what the outputs mean travel inside the
 * checkpoint (cumlp_checkpoint_save_with / load_with), bit for bit, and a file without them reads
 * as "nothing recorded"; the plain functions and load_into still read such files. */
static void test_model_info_and_scaling_round_trip(void) {
    char *path = ckpt_temp_path("with.safetensors");
    cumlp_network *net = ckpt_small_network(ref_ctx, 51); /* 5 -> 7 -> 4 -> 3 */
    cumlp_optimizer *opt = ckpt_optimizer(net, CUMLP_OPT_ADAM);
    const float offsets[5] = {0.5f, -1.25f, 3e-8f, 1e20f, 0.0f};
    const float scales[5] = {2.0f, 0.1f, 1e-30f, -4.0f, 1.0f / 3.0f};
    cumlp_scaler *scaler = NULL;
    CHECK_OK(cumlp_scaler_create(ref_ctx, 5, offsets, scales, &scaler));
    cumlp_model_info info;
    CHECK_OK(cumlp_model_info_defaults(&info));
    CHECK(info.task == CUMLP_TASK_UNKNOWN && info.num_classes == 0 && info.label_column == -1);
    info.task = CUMLP_TASK_CLASSIFY;
    info.num_classes = 3;
    info.label_column = 0;
    CHECK_OK(cumlp_checkpoint_save_with(net, opt, scaler, &info, path));

    cumlp_network *back = NULL;
    cumlp_optimizer *back_opt = NULL;
    cumlp_scaler *back_scaler = NULL;
    cumlp_model_info back_info;
    CHECK_OK(cumlp_model_info_defaults(&back_info));
    CHECK_OK(
        cumlp_checkpoint_load_with(ref_ctx, path, 0, &back, &back_opt, &back_scaler, &back_info));
    CHECK(back && back_opt && back_scaler);
    CHECK(back_info.task == CUMLP_TASK_CLASSIFY && back_info.num_classes == 3 &&
          back_info.label_column == 0);
    float got_offsets[5], got_scales[5];
    if (back_scaler) CHECK_OK(cumlp_scaler_get(back_scaler, got_offsets, got_scales, 5));
    CHECK(memcmp(got_offsets, offsets, sizeof offsets) == 0);
    CHECK(memcmp(got_scales, scales, sizeof scales) == 0);
    /* save_with of what was loaded gives the same bytes */
    char *again = ckpt_temp_path("with_again.safetensors");
    CHECK_OK(cumlp_checkpoint_save_with(back, back_opt, back_scaler, &back_info, again));
    size_t a_size = 0, b_size = 0;
    unsigned char *a = ckpt_read_file(path, &a_size), *b = ckpt_read_file(again, &b_size);
    CHECK(a && b && a_size == b_size && memcmp(a, b, a_size) == 0);
    free(a);
    free(b);
    /* the plain readers take the file too */
    cumlp_network *plain = NULL;
    CHECK_OK(cumlp_checkpoint_load(ref_ctx, path, 0, &plain, NULL));
    CHECK_OK(cumlp_checkpoint_load_into(plain, NULL, path, 0));
    cumlp_network_destroy(plain);

    /* a file saved without them: no scaler, task unknown */
    CHECK_OK(cumlp_checkpoint_save(net, NULL, again));
    cumlp_network *bare = NULL;
    cumlp_scaler *none = (cumlp_scaler *)&none;
    back_info.task = CUMLP_TASK_REGRESS;
    CHECK_OK(cumlp_checkpoint_load_with(ref_ctx, again, 0, &bare, NULL, &none, &back_info));
    CHECK(none == NULL && back_info.task == CUMLP_TASK_UNKNOWN && back_info.num_classes == 0);
    cumlp_network_destroy(bare);

    /* bad arguments change nothing on disk */
    cumlp_scaler *narrow = NULL;
    CHECK_OK(cumlp_scaler_create(ref_ctx, 4, offsets, scales, &narrow));
    CHECK_STATUS(cumlp_checkpoint_save_with(net, NULL, narrow, NULL, again),
                 CUMLP_ERROR_INVALID_VALUE);
    info.num_classes = 4; /* the network has 3 outputs */
    CHECK_STATUS(cumlp_checkpoint_save_with(net, NULL, NULL, &info, again),
                 CUMLP_ERROR_INVALID_VALUE);
    info.task = CUMLP_TASK_REGRESS;
    info.num_classes = 0;
    info.label_column = -2;
    CHECK_STATUS(cumlp_checkpoint_save_with(net, NULL, NULL, &info, again),
                 CUMLP_ERROR_INVALID_VALUE);
    info.task = 7;
    info.label_column = -1;
    CHECK_STATUS(cumlp_checkpoint_save_with(net, NULL, NULL, &info, again),
                 CUMLP_ERROR_INVALID_VALUE);
    /* on a failed load the outputs are NULL and info is unchanged */
    remove(again);
    cumlp_scaler *failed = (cumlp_scaler *)&failed;
    back_info.task = CUMLP_TASK_REGRESS;
    CHECK_STATUS(cumlp_checkpoint_load_with(ref_ctx, again, 0, &bare, NULL, &failed, &back_info),
                 CUMLP_ERROR_IO);
    CHECK(bare == NULL && failed == NULL && back_info.task == CUMLP_TASK_REGRESS);

    cumlp_scaler_destroy(narrow);
    cumlp_scaler_destroy(back_scaler);
    cumlp_optimizer_destroy(back_opt);
    cumlp_network_destroy(back);
    cumlp_scaler_destroy(scaler);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    remove(path);
    free(path);
    free(again);
}

int main(void) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_REFERENCE;
    if (cumlp_context_create(&ref_ctx, &o) != CUMLP_SUCCESS) return 1;
    RUN(test_round_trip_is_byte_identical);
    RUN(test_subnormal_hyper_parameters_round_trip);
    RUN(test_file_mode_follows_umask);
    RUN(test_weight_layout_is_pytorch_row_major);
    RUN(test_cross_backend_bit_identical);
    RUN(test_resume_matches_uninterrupted);
    RUN(test_resume_is_bit_exact);
    RUN(test_reads_files_without_new_options);
    RUN(test_load_into_state_arrays_must_agree);
    RUN(test_load_into_mismatch_leaves_network);
    RUN(test_non_finite_rejected_unless_allowed);
    RUN(test_argument_errors);
    RUN(test_failed_save_keeps_old_file);
    RUN(test_save_refuses_special_files_and_follows_links);
    RUN(test_model_info_and_scaling_round_trip);
    cumlp_context_destroy(ref_ctx);
    return harness_finish();
}
