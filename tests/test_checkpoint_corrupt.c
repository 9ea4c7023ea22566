/* ctest-labels: unit */
/* test_checkpoint_corrupt.c - damaged and hostile checkpoints are rejected with the right status,
 * nothing leaks (run under the sanitizer build) and nothing is half-loaded. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "test_checkpoint_util.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

static cumlp_context *ctx;

/* CRC-32 (zlib's), written bit by bit: independent of the library's table version. */
static uint32_t crc32_bitwise(const unsigned char *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

/* A safetensors image: length, header (each "@CRC@" replaced by the payload's CRC-32), payload.
 * length_override >= 0 replaces the length field. */
static unsigned char *make_image(const char *header, const unsigned char *payload, size_t npayload,
                                 int64_t length_override, size_t *size) {
    char crc[9];
    snprintf(crc, sizeof crc, "%08lx", (unsigned long)crc32_bitwise(payload, npayload));
    size_t hlen = strlen(header);
    char *h = malloc(hlen + 1);
    memcpy(h, header, hlen + 1);
    for (char *at; (at = strstr(h, "@CRC@")) != NULL;) {
        /* "@CRC@" is 5 characters, the CRC 8: rebuild the string around it. */
        size_t before = (size_t)(at - h);
        char *grown = malloc(strlen(h) + 4);
        memcpy(grown, h, before);
        memcpy(grown + before, crc, 8);
        strcpy(grown + before + 8, at + 5);
        free(h);
        h = grown;
    }
    hlen = strlen(h);
    *size = 8 + hlen + npayload;
    unsigned char *image = malloc(*size);
    uint64_t length = length_override >= 0 ? (uint64_t)length_override : hlen;
    for (int i = 0; i < 8; i++)
        image[i] = (unsigned char)(length >> (8 * i));
    memcpy(image + 8, h, hlen);
    if (npayload) memcpy(image + 8 + hlen, payload, npayload);
    free(h);
    return image;
}

/* The hand-made images are of format version 1 (their CRC covers the payload only), as cumlp 0.1
 * wrote them: the reader still reads them. */
#define META_HEAD "{\"__metadata__\":{\"format\":\"cumlp\",\"format_version\":\"1\","
#define ARCH      "\"num_layers\":\"1\",\"widths\":\"2,1\",\"activations\":\"identity\","
/* "squared_error": the spelling of cumlp 0.1.0 checkpoints, which the reader still accepts. */
#define LOSS   "\"loss\":\"squared_error\",\"leaky_relu_slope\":\"0.01\","
#define CRC    "\"payload_crc32\":\"@CRC@\"}"
#define META   META_HEAD ARCH LOSS CRC
#define WEIGHT ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}"
#define BIAS   ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}"
#define GOOD   META WEIGHT BIAS "}"
/* the inputs' scaling (2 inputs) after the weight and bias */
#define SCALER_OFFSET                                                                              \
    ",\"scaler.offset\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}"
#define SCALER_SCALE ",\"scaler.scale\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[20,28]}"
#define SCALER_SCALE_FIRST                                                                         \
    ",\"scaler.scale\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}"
#define SCALER_OFFSET_SECOND                                                                       \
    ",\"scaler.offset\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[20,28]}"
#define TASK(task, classes, column)                                                                \
    "\"task\":\"" task "\",\"num_classes\":\"" classes "\",\"label_column\":\"" column "\","
/* the tensors listed bias first, their data in that order */
#define BIAS_FIRST    ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"
#define WEIGHT_SECOND ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[4,12]}"
#define SGD                                                                                        \
    "\"optimizer\":\"sgd\",\"learning_rate\":\"0.01\",\"momentum\":\"0.9\","                       \
    "\"weight_decay\":\"0\",\"beta1\":\"0.9\",\"beta2\":\"0.999\",\"epsilon\":\"1e-08\","

static unsigned char payload[32]; /* W, b, then a scaling whose scales are 0 */

static void make_payload(void) {
    float values[4] = {0.5f, -1.25f, 2.0f, 3.0f};
    for (int k = 0; k < 4; k++) {
        uint32_t bits;
        memcpy(&bits, &values[k], 4);
        for (int i = 0; i < 4; i++)
            payload[4 * k + i] = (unsigned char)(bits >> (8 * i));
    }
}

static cumlp_status load_image(const unsigned char *image, size_t size) {
    cumlp_network *net = (cumlp_network *)&net; /* must be overwritten */
    cumlp_optimizer *opt = (cumlp_optimizer *)&opt;
    cumlp_status st = cumlp_checkpoint_load_memory(ctx, image, size, 0, &net, &opt);
    if (st != CUMLP_SUCCESS) {
        CHECK(net == NULL && opt == NULL);
        CHECK(strstr(cumlp_last_error(ctx), "<memory>") != NULL);
        return st;
    }
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    return st;
}

static cumlp_status load_header(const char *header, size_t npayload) {
    size_t size;
    unsigned char *image = make_image(header, payload, npayload, -1, &size);
    cumlp_status st = load_image(image, size);
    free(image);
    return st;
}

/* A template with the scaling and the model info is valid too (scales 2 and 0.5). */
static void test_template_with_extras_loads(void) {
    unsigned char with[28];
    memcpy(with, payload, 20);
    const float scales[2] = {2.0f, 0.5f};
    for (int k = 0; k < 2; k++) {
        uint32_t bits;
        memcpy(&bits, &scales[k], 4);
        for (int i = 0; i < 4; i++)
            with[20 + 4 * k + i] = (unsigned char)(bits >> (8 * i));
    }
    size_t size;
    unsigned char *image = make_image(META_HEAD ARCH LOSS TASK("regress", "0", "3")
                                          CRC WEIGHT BIAS SCALER_OFFSET SCALER_SCALE "}",
                                      with, 28, -1, &size);
    cumlp_network *net = NULL;
    cumlp_scaler *scaler = NULL;
    cumlp_model_info info;
    CHECK_OK(cumlp_model_info_defaults(&info));
    CHECK_OK(cumlp_checkpoint_load_memory_with(ctx, image, size, 0, &net, NULL, &scaler, &info));
    float offsets[2] = {0, 0}, got[2] = {0, 0};
    if (scaler) CHECK_OK(cumlp_scaler_get(scaler, offsets, got, 2));
    CHECK(got[0] == 2.0f && got[1] == 0.5f && offsets[0] == 3.0f);
    CHECK(info.task == CUMLP_TASK_REGRESS && info.label_column == 3);
    cumlp_scaler_destroy(scaler);
    cumlp_network_destroy(net);
    free(image);
}

/* The hand-made template is a valid checkpoint with the values it was given. */
static void test_template_loads(void) {
    size_t size;
    unsigned char *image = make_image(GOOD, payload, 12, -1, &size);
    cumlp_network *net = NULL;
    CHECK_OK(cumlp_checkpoint_load_memory(ctx, image, size, 0, &net, NULL));
    if (net) {
        float W[2], b[1];
        CHECK_OK(cumlp_network_get_layer(net, 0, W, b));
        CHECK(W[0] == 0.5f && W[1] == -1.25f && b[0] == 2.0f);
    }
    cumlp_network_destroy(net);
    free(image);
}

typedef struct bad_case {
    const char *what;
    const char *header;
    size_t npayload;
    cumlp_status expected;
} bad_case;

static const bad_case cases[] = {
    {"not JSON", "hello", 12, CUMLP_ERROR_FORMAT},
    {"empty header", "", 12, CUMLP_ERROR_FORMAT},
    {"array header", "[]", 12, CUMLP_ERROR_FORMAT},
    {"text after JSON", GOOD "x", 12, CUMLP_ERROR_FORMAT},
    {"no metadata",
     "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}" BIAS "}", 12,
     CUMLP_ERROR_FORMAT},
    {"wrong format name",
     "{\"__metadata__\":{\"format\":\"other\",\"format_version\":\"1\"," ARCH LOSS CRC WEIGHT BIAS
     "}",
     12, CUMLP_ERROR_FORMAT},
    {"wrong version",
     "{\"__metadata__\":{\"format\":\"cumlp\",\"format_version\":\"3\"," ARCH LOSS CRC WEIGHT BIAS
     "}",
     12, CUMLP_ERROR_FORMAT},
    {"version 2 without crc32",
     "{\"__metadata__\":{\"format\":\"cumlp\",\"format_version\":\"2\"," ARCH LOSS CRC WEIGHT BIAS
     "}",
     12, CUMLP_ERROR_FORMAT},
    {"metadata not string", META_HEAD ARCH LOSS "\"x\":1," CRC WEIGHT BIAS "}", 12,
     CUMLP_ERROR_FORMAT},
    {"widths count",
     META_HEAD
     "\"num_layers\":\"1\",\"widths\":\"2,1,3\",\"activations\":\"identity\"," LOSS CRC WEIGHT BIAS
     "}",
     12, CUMLP_ERROR_FORMAT},
    {"width zero",
     META_HEAD
     "\"num_layers\":\"1\",\"widths\":\"0,1\",\"activations\":\"identity\"," LOSS CRC WEIGHT BIAS
     "}",
     12, CUMLP_ERROR_FORMAT},
    {"huge num_layers",
     META_HEAD
     "\"num_layers\":\"99999999999\",\"widths\":\"2,1\",\"activations\":\"identity\"," LOSS CRC
         WEIGHT BIAS "}",
     12, CUMLP_ERROR_FORMAT},
    {"unknown activation",
     META_HEAD
     "\"num_layers\":\"1\",\"widths\":\"2,1\",\"activations\":\"swish\"," LOSS CRC WEIGHT BIAS "}",
     12, CUMLP_ERROR_FORMAT},
    {"softmax with squared error",
     META_HEAD
     "\"num_layers\":\"1\",\"widths\":\"2,1\",\"activations\":\"softmax\"," LOSS CRC WEIGHT BIAS
     "}",
     12, CUMLP_ERROR_FORMAT},
    {"softmax over one output",
     META_HEAD "\"num_layers\":\"1\",\"widths\":\"2,1\",\"activations\":\"softmax\","
               "\"loss\":\"ce\",\"leaky_relu_slope\":\"0.01\"," CRC WEIGHT BIAS "}",
     12, CUMLP_ERROR_FORMAT},
    {"slope out of range",
     META_HEAD ARCH "\"loss\":\"squared_error\",\"leaky_relu_slope\":\"1.5\"," CRC WEIGHT BIAS "}",
     12, CUMLP_ERROR_FORMAT},
    {"slope not a number",
     META_HEAD ARCH "\"loss\":\"squared_error\",\"leaky_relu_slope\":\"nan\"," CRC WEIGHT BIAS "}",
     12, CUMLP_ERROR_FORMAT},
    {"bad crc text", META_HEAD ARCH LOSS "\"payload_crc32\":\"xyz\"}" WEIGHT BIAS "}", 12,
     CUMLP_ERROR_FORMAT},
    {"checksum mismatch", META_HEAD ARCH LOSS "\"payload_crc32\":\"00000000\"}" WEIGHT BIAS "}", 12,
     CUMLP_ERROR_CHECKSUM},
    {"wrong dtype",
     META ",\"0.weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[0,8]}" BIAS "}", 12,
     CUMLP_ERROR_SHAPE_MISMATCH},
    {"wrong shape",
     META ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]}" BIAS "}", 12,
     CUMLP_ERROR_SHAPE_MISMATCH},
    {"wrong rank",
     META ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}" BIAS "}", 12,
     CUMLP_ERROR_SHAPE_MISMATCH},
    {"shape overflow",
     META ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
          "\"data_offsets\":[0,8]}" BIAS "}",
     12, CUMLP_ERROR_SIZE_LIMIT},
    {"dimension beyond 64 bits",
     META ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,99999999999999999999999],"
          "\"data_offsets\":[0,8]}" BIAS "}",
     12, CUMLP_ERROR_SIZE_LIMIT},
    {"negative dimension",
     META ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,8]}" BIAS "}", 12,
     CUMLP_ERROR_FORMAT},
    {"fractional offset",
     META ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8.0]}" BIAS "}", 12,
     CUMLP_ERROR_FORMAT},
    {"offsets span wrong size",
     META ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,12]}" BIAS "}", 12,
     CUMLP_ERROR_FORMAT},
    {"huge offsets",
     META ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],"
          "\"data_offsets\":[18446744073709551608,18446744073709551615]}" BIAS "}",
     12, CUMLP_ERROR_FORMAT},
    {"overlapping tensors",
     META WEIGHT ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 12,
     CUMLP_ERROR_FORMAT},
    {"gap between tensors",
     META WEIGHT ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16,
     CUMLP_ERROR_FORMAT},
    {"extra key in entry",
     META ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8],\"x\":1}" BIAS
          "}",
     12, CUMLP_ERROR_FORMAT},
    {"duplicate tensor", META WEIGHT WEIGHT BIAS "}", 12, CUMLP_ERROR_FORMAT},
    {"duplicate metadata key",
     META_HEAD ARCH LOSS "\"loss\":\"squared_error\"," CRC WEIGHT BIAS "}", 12, CUMLP_ERROR_FORMAT},
    {"missing tensor", META WEIGHT "}", 8, CUMLP_ERROR_FORMAT},
    {"unknown tensor",
     META WEIGHT BIAS ",\"2.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
     16, CUMLP_ERROR_FORMAT},
    {"state without optimizer",
     META WEIGHT BIAS
     ",\"optimizer.state1.0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
     16, CUMLP_ERROR_FORMAT},
    {"tensors out of header order", META BIAS_FIRST WEIGHT_SECOND "}", 12, CUMLP_ERROR_FORMAT},
    {"data out of header order",
     META ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[4,12]},"
          "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     12, CUMLP_ERROR_FORMAT},
    {"scaling without its scales", META WEIGHT BIAS SCALER_OFFSET "}", 20, CUMLP_ERROR_FORMAT},
    {"scaling in the wrong order", META WEIGHT BIAS SCALER_SCALE_FIRST SCALER_OFFSET_SECOND "}", 28,
     CUMLP_ERROR_FORMAT},
    {"scaling of the wrong shape",
     META WEIGHT BIAS
     ",\"scaler.offset\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}" SCALER_SCALE
     "}",
     24, CUMLP_ERROR_SHAPE_MISMATCH},
    {"zero scale", META WEIGHT BIAS SCALER_OFFSET SCALER_SCALE "}", 28, CUMLP_ERROR_FORMAT},
    {"unknown task", META_HEAD ARCH LOSS TASK("sort", "0", "-1") CRC WEIGHT BIAS "}", 12,
     CUMLP_ERROR_FORMAT},
    {"regression with classes", META_HEAD ARCH LOSS TASK("regress", "2", "-1") CRC WEIGHT BIAS "}",
     12, CUMLP_ERROR_FORMAT},
    {"classes that do not fit", META_HEAD ARCH LOSS TASK("classify", "3", "-1") CRC WEIGHT BIAS "}",
     12, CUMLP_ERROR_FORMAT},
    {"label column below -1", META_HEAD ARCH LOSS TASK("regress", "0", "-2") CRC WEIGHT BIAS "}",
     12, CUMLP_ERROR_FORMAT},
    {"task without classes", META_HEAD ARCH LOSS "\"task\":\"regress\"," CRC WEIGHT BIAS "}", 12,
     CUMLP_ERROR_FORMAT},
    {"trailing bytes", GOOD, 16, CUMLP_ERROR_SIZE_LIMIT},
    {"payload short", GOOD, 11, CUMLP_ERROR_TRUNCATED},
    {"step_count beyond int64",
     META_HEAD ARCH LOSS SGD "\"step_count\":\"9999999999999999999\"," CRC WEIGHT BIAS "}", 12,
     CUMLP_ERROR_FORMAT},
    {"step_count INT64_MAX + 1",
     META_HEAD ARCH LOSS SGD "\"step_count\":\"9223372036854775808\"," CRC WEIGHT BIAS "}", 12,
     CUMLP_ERROR_FORMAT},
    {"unknown optimizer", META_HEAD ARCH LOSS "\"optimizer\":\"lbfgs\"," CRC WEIGHT BIAS "}", 12,
     CUMLP_ERROR_FORMAT},
    {"optimizer without hyper-parameters",
     META_HEAD ARCH LOSS "\"optimizer\":\"sgd\"," CRC WEIGHT BIAS "}", 12, CUMLP_ERROR_FORMAT},
    {"invalid UTF-8", META ",\"0.w\xc3\x28ight\":{}}", 12, CUMLP_ERROR_FORMAT},
    {"escaped NUL in key", META ",\"0.weight\\u0000\":{}}", 12, CUMLP_ERROR_FORMAT},
    {"control character", META ",\"0.we\night\":{}}", 12, CUMLP_ERROR_FORMAT},
    {"deep nesting",
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
     12, CUMLP_ERROR_FORMAT},
    {"unterminated string", "{\"abc", 12, CUMLP_ERROR_FORMAT},
    {"bad number", META_HEAD ARCH LOSS CRC ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[01,2]}}",
     12, CUMLP_ERROR_FORMAT},
};

static void test_crafted_headers(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cumlp_status st = load_header(cases[i].header, cases[i].npayload);
        CHECK_MSG(st == cases[i].expected, "%s: got %s (%s)", cases[i].what,
                  cumlp_status_string(st), cumlp_last_error(ctx));
    }
}

/* The options added after cumlp 0.1.0 (optional keys) are checked as the others are, and NAdam's
 * mu_product is required: each bad one is a FORMAT error whose message names it. */
static void test_later_option_metadata(void) {
#define NADAM                                                                                      \
    "\"optimizer\":\"nadam\",\"learning_rate\":\"0.01\",\"momentum\":\"0.9\","                     \
    "\"weight_decay\":\"0\",\"beta1\":\"0.9\",\"beta2\":\"0.999\",\"epsilon\":\"1e-08\","
    static const struct {
        const char *header, *named;
    } bad[] = {
        {META_HEAD ARCH LOSS SGD "\"centered\":\"2\",\"step_count\":\"0\"," CRC WEIGHT BIAS "}",
         "centered"},
        {META_HEAD ARCH LOSS SGD "\"alpha\":\"1\",\"step_count\":\"0\"," CRC WEIGHT BIAS "}",
         "alpha"},
        {META_HEAD ARCH LOSS SGD "\"rho\":\"nan\",\"step_count\":\"0\"," CRC WEIGHT BIAS "}",
         "rho"},
        {META_HEAD ARCH LOSS SGD "\"clip_norm\":\"-1\",\"step_count\":\"0\"," CRC WEIGHT BIAS "}",
         "clip_norm"},
        {META_HEAD ARCH LOSS SGD "\"non_finite_error\":\"01\",\"step_count\":\"0\"," CRC WEIGHT BIAS
                                 "}",
         "non_finite_error"},
        {META_HEAD ARCH LOSS NADAM "\"step_count\":\"3\"," CRC WEIGHT BIAS "}", "mu_product"},
        {META_HEAD ARCH LOSS NADAM "\"step_count\":\"3\",\"mu_product\":\"1.5\"," CRC WEIGHT BIAS
                                   "}",
         "mu_product"},
    };
#undef NADAM
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cumlp_status st = load_header(bad[i].header, 12);
        CHECK_MSG(st == CUMLP_ERROR_FORMAT && strstr(cumlp_last_error(ctx), bad[i].named),
                  "%s: got %s (%s)", bad[i].named, cumlp_status_string(st), cumlp_last_error(ctx));
    }
}

/* The largest step count loads exactly (parse_count's overflow check is not off by one). */
static void test_largest_step_count(void) {
    size_t size;
    unsigned char *image = make_image(META_HEAD ARCH LOSS SGD
                                      "\"step_count\":\"9223372036854775807\"," CRC WEIGHT BIAS "}",
                                      payload, 12, -1, &size);
    cumlp_network *net = NULL;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_checkpoint_load_memory(ctx, image, size, 0, &net, &opt));
    CHECK(opt && cumlp_optimizer_step_count(opt) == INT64_MAX);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    free(image);
}

/* A file of a few MB that declares 2^20 layers (the limit) but lists two tensors is refused
 * before anything is allocated per declared tensor (which took 400 MB). */
static void test_many_layers_few_tensors(void) {
    const size_t layers = (size_t)1 << 20;
    size_t cap = 64 * layers + 4096, n = 0;
    char *h = malloc(cap);
    n += (size_t)snprintf(h + n, cap - n, "%s\"num_layers\":\"%zu\",\"widths\":\"2", META_HEAD,
                          layers);
    for (size_t l = 0; l < layers; l++)
        n += (size_t)snprintf(h + n, cap - n, ",1");
    n += (size_t)snprintf(h + n, cap - n, "\",\"activations\":\"identity");
    for (size_t l = 1; l < layers; l++)
        n += (size_t)snprintf(h + n, cap - n, ",identity");
    snprintf(h + n, cap - n, "\"," LOSS CRC WEIGHT BIAS "}");
    CHECK_STATUS(load_header(h, 12), CUMLP_ERROR_FORMAT);
    CHECK_MSG(strstr(cumlp_last_error(ctx), "needs 2097152") != NULL, "%s", cumlp_last_error(ctx));
    free(h);
}

static void test_non_finite_payload(void) {
    unsigned char saved[4];
    memcpy(saved, payload + 4, 4);
    const unsigned char nan_bits[4] = {0x00, 0x00, 0xc0, 0x7f};
    memcpy(payload + 4, nan_bits, 4);
    CHECK_STATUS(load_header(GOOD, 12), CUMLP_ERROR_NON_FINITE);
    memcpy(payload + 4, saved, 4);
}

static void test_bad_length_field(void) {
    size_t size;
    int64_t lengths[] = {(int64_t)1 << 62, 100 * 1000 * 1000 + 1, INT64_MAX};
    for (int i = 0; i < 3; i++) {
        unsigned char *image = make_image(GOOD, payload, 12, lengths[i], &size);
        CHECK_STATUS(load_image(image, size), CUMLP_ERROR_SIZE_LIMIT);
        free(image);
    }
    unsigned char *image = make_image(GOOD, payload, 12, 100000, &size);
    CHECK_STATUS(load_image(image, size), CUMLP_ERROR_TRUNCATED);
    free(image);
    image = make_image(GOOD, payload, 12, 10, &size); /* a short, broken header */
    CHECK_STATUS(load_image(image, size), CUMLP_ERROR_FORMAT);
    free(image);
    /* Magic: a file that is not safetensors at all (a gzip header). */
    const unsigned char gzip[] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4};
    CHECK(load_image(gzip, sizeof gzip) != CUMLP_SUCCESS);
}

/* A real checkpoint (network + Adam) written by the library. */
static unsigned char *real_checkpoint(size_t *size, char **path_out) {
    char *path = ckpt_temp_path("corrupt_src.safetensors");
    cumlp_network *net = ckpt_small_network(ctx, 3);
    cumlp_optimizer *opt = ckpt_optimizer(net, CUMLP_OPT_ADAM);
    ckpt_train(net, opt, 2, 1);
    if (cumlp_checkpoint_save(net, opt, path) != CUMLP_SUCCESS) abort();
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    unsigned char *data = ckpt_read_file(path, size);
    *path_out = path;
    return data;
}

static void test_truncated_at_every_offset(void) {
    size_t size;
    char *path;
    unsigned char *data = real_checkpoint(&size, &path);
    CHECK_OK(load_image(data, size));
    int wrong = 0;
    for (size_t n = 0; n < size; n++)
        wrong += load_image(data, n) != CUMLP_ERROR_TRUNCATED;
    CHECK_MSG(wrong == 0, "%d of %zu truncations not reported as TRUNCATED", wrong, size);
    /* The file variant names the path. */
    char *cut = ckpt_temp_path("truncated.safetensors");
    CHECK(ckpt_write_file(cut, data, size / 2));
    cumlp_network *net = NULL;
    CHECK_STATUS(cumlp_checkpoint_load(ctx, cut, 0, &net, NULL), CUMLP_ERROR_TRUNCATED);
    CHECK(strstr(cumlp_last_error(ctx), cut) != NULL);
    remove(cut);
    free(cut);
    free(data);
    remove(path);
    free(path);
}

static void test_every_header_byte_flipped(void) {
    size_t size;
    char *path;
    unsigned char *data = real_checkpoint(&size, &path);
    size_t header_end = 8;
    for (int i = 0; i < 8; i++)
        header_end += (size_t)data[i] << (8 * i);
    int accepted = 0;
    for (size_t i = 0; i < header_end; i++) {
        data[i] ^= 0xFF;
        accepted += load_image(data, size) == CUMLP_SUCCESS;
        data[i] ^= 0xFF;
    }
    CHECK_MSG(accepted == 0, "%d header byte flips accepted", accepted);
    int unnoticed = 0;
    for (size_t i = header_end; i < size; i += 3) {
        data[i] ^= 0x01;
        unnoticed += load_image(data, size) != CUMLP_ERROR_CHECKSUM;
        data[i] ^= 0x01;
    }
    CHECK_MSG(unnoticed == 0, "%d payload bit flips not reported as CHECKSUM", unnoticed);
    free(data);
    remove(path);
    free(path);
}

/* The header of a file image as a string, and the offset of its payload. */
static char *header_of(const unsigned char *image, size_t *payload_at) {
    size_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (size_t)image[i] << (8 * i);
    char *h = malloc(n + 1);
    memcpy(h, image + 8, n);
    h[n] = '\0';
    *payload_at = 8 + n;
    return h;
}

/* A file image from a header and the payload of another image (the length field recomputed);
 * with restamp, the "crc32" of the format-2 header is recomputed over the new file, as a writer
 * would, so that only the reader's other checks can catch a change. */
static unsigned char *rebuild(const char *header, const unsigned char *old, size_t old_size,
                              size_t payload_at, int restamp, size_t *size) {
    size_t hlen = strlen(header), npayload = old_size - payload_at;
    *size = 8 + hlen + npayload;
    unsigned char *image = malloc(*size);
    for (int i = 0; i < 8; i++)
        image[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(image + 8, header, hlen);
    memcpy(image + 8 + hlen, old + payload_at, npayload);
    char *digits = strstr((char *)image + 8, "\"crc32\":\"");
    if (restamp && digits) {
        digits += strlen("\"crc32\":\"");
        memcpy(digits, "00000000", 8);
        char crc[9];
        snprintf(crc, sizeof crc, "%08lx", (unsigned long)crc32_bitwise(image, *size));
        memcpy(digits, crc, 8);
    }
    return image;
}

/* Swaps two equal-length substrings of s (the first occurrences of a and b). */
static int swap_text(char *s, const char *a, const char *b) {
    char *pa = strstr(s, a), *pb = strstr(s, b);
    size_t n = strlen(a);
    if (!pa || !pb || strlen(b) != n) return 0;
    char *t = malloc(n);
    memcpy(t, pa, n);
    memcpy(pa, pb, n);
    memcpy(pb, t, n);
    free(t);
    return 1;
}

/* The header is covered by the checksum, and the tensors must be in header order (their data in
 * the order the header lists them, the header in the order cumlp writes): two same-shape
 * tensors' offsets swapped, or two tensors' names swapped, or an activation renamed, used to load
 * silently with another meaning. */
static void test_header_is_checked(void) {
    int64_t widths[] = {8, 5, 5, 5, 2};
    int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_RELU, CUMLP_ACT_TANH, CUMLP_ACT_IDENTITY};
    cumlp_network *net = test_network(ctx, 4, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 9);
    char *path = ckpt_temp_path("header.safetensors");
    CHECK_OK(cumlp_checkpoint_save(net, NULL, path));
    size_t size = 0, payload_at = 0, n = 0;
    unsigned char *image = ckpt_read_file(path, &size);
    char *h = header_of(image, &payload_at);
    /* 2.weight and 4.weight are both [5, 5]: their data_offsets swapped */
    char *swapped = malloc(strlen(h) + 1);
    strcpy(swapped, h);
    CHECK(swap_text(swapped, "[180,280]", "[300,400]"));
    for (int restamp = 0; restamp < 2; restamp++) {
        unsigned char *bad = rebuild(swapped, image, size, payload_at, restamp, &n);
        /* the order is checked before the checksum */
        CHECK_MSG(load_image(bad, n) == CUMLP_ERROR_FORMAT, "offsets swapped%s: %s",
                  restamp ? ", checksum recomputed" : "", cumlp_last_error(ctx));
        free(bad);
    }
    /* their names swapped instead */
    strcpy(swapped, h);
    CHECK(swap_text(swapped, "\"2.weight\"", "\"4.weight\""));
    for (int restamp = 0; restamp < 2; restamp++) {
        unsigned char *bad = rebuild(swapped, image, size, payload_at, restamp, &n);
        CHECK_MSG(load_image(bad, n) == CUMLP_ERROR_FORMAT, "names swapped%s: %s",
                  restamp ? ", checksum recomputed" : "", cumlp_last_error(ctx));
        free(bad);
    }
    /* an activation renamed (tanh -> gelu: a valid architecture) */
    strcpy(swapped, h);
    char *act = strstr(swapped, "tanh,relu");
    CHECK(act != NULL);
    if (act) memcpy(act, "gelu", 4);
    unsigned char *bad = rebuild(swapped, image, size, payload_at, 0, &n);
    CHECK_STATUS(load_image(bad, n), CUMLP_ERROR_CHECKSUM);
    free(bad);
    /* the unchanged header, rebuilt, still loads */
    bad = rebuild(h, image, size, payload_at, 1, &n);
    CHECK_OK(load_image(bad, n));
    free(bad);
    free(swapped);
    free(h);
    free(image);
    remove(path);
    free(path);
    cumlp_network_destroy(net);
}

/* Random damage: any status, never a crash or leak (the sanitizer build runs this). */
static void test_random_damage(void) {
    size_t size;
    char *path;
    unsigned char *data = real_checkpoint(&size, &path);
    unsigned char *copy = malloc(size);
    test_rng rng = {12345};
    int accepted = 0;
    for (int round = 0; round < 2000; round++) {
        memcpy(copy, data, size);
        int flips = 1 + (int)test_rng_below(&rng, 4);
        for (int f = 0; f < flips; f++)
            copy[test_rng_below(&rng, (int64_t)size)] = (unsigned char)test_rng_next(&rng);
        size_t n = size - (size_t)test_rng_below(&rng, 3);
        accepted += load_image(copy, n) == CUMLP_SUCCESS;
    }
    CHECK(accepted < 2000);
    free(copy);
    free(data);
    remove(path);
    free(path);
}

/* A header of tiny JSON values up to the header size limit (16 MiB): "[0,0,0,...]", or the same
 * array inside an otherwise valid header. Parsed into a tree it cost about 30 times its size (GBs
 * at the old 100 MB limit); now more than one value per 6 header bytes is SIZE_LIMIT, found by a
 * counting pass before anything is allocated. */
static void test_header_of_tiny_values(void) {
    const size_t limit = (size_t)16 << 20;
    char *h = malloc(limit + 1);
    if (!h) abort();
    /* a top-level array filling the whole limit */
    size_t n = 0;
    h[n++] = '[';
    while (n + 3 < limit - 16) {
        h[n++] = '0';
        h[n++] = ',';
    }
    h[n++] = '0';
    h[n++] = ']';
    h[n] = '\0';
    CHECK_STATUS(load_header(h, 12), CUMLP_ERROR_SIZE_LIMIT);
    CHECK_MSG(strstr(cumlp_last_error(ctx), "JSON values") != NULL, "%s", cumlp_last_error(ctx));
    /* the same values as an extra key of a valid header */
    n = (size_t)snprintf(h, limit, "%s,\"x\":[0", META);
    while (n + 2 < limit - 256) {
        h[n++] = ',';
        h[n++] = '0';
    }
    snprintf(h + n, limit - n, "]" WEIGHT BIAS "}");
    CHECK_STATUS(load_header(h, 12), CUMLP_ERROR_SIZE_LIMIT);
    /* the limit itself: 16 MiB of whitespace-padded "{}" is parsed (and lacks metadata), one
     * byte more is refused before parsing */
    char *w = malloc(limit + 2);
    if (!w) abort();
    memset(w, ' ', limit + 1);
    w[0] = '{';
    w[limit - 1] = '}';
    w[limit] = '\0';
    CHECK_STATUS(load_header(w, 12), CUMLP_ERROR_FORMAT);
    w[limit - 1] = ' ';
    w[limit] = '}';
    w[limit + 1] = '\0';
    CHECK_STATUS(load_header(w, 12), CUMLP_ERROR_SIZE_LIMIT);
    CHECK_MSG(strstr(cumlp_last_error(ctx), "exceeds the limit") != NULL, "%s",
              cumlp_last_error(ctx));
    free(w);
    free(h);
}

/* A network of thousands of layers with Adam state still saves and loads: the header limits
 * admit every realistic network. */
static void test_thousands_of_layers(void) {
    enum { LAYERS = 5000 };
    int64_t *widths = malloc((LAYERS + 1) * sizeof *widths);
    int *acts = malloc(LAYERS * sizeof *acts);
    if (!widths || !acts) abort();
    for (int l = 0; l <= LAYERS; l++)
        widths[l] = 1 + l % 3;
    for (int l = 0; l < LAYERS; l++)
        acts[l] = CUMLP_ACT_TANH;
    cumlp_network *net = NULL, *back = NULL;
    cumlp_optimizer *opt = NULL, *back_opt = NULL;
    CHECK_OK(cumlp_network_create(ctx, LAYERS, widths, acts, NULL, &net));
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults(&o);
    o.type = CUMLP_OPT_ADAM;
    if (net) CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    char *path = ckpt_temp_path("thousands.safetensors");
    if (opt) CHECK_OK(cumlp_checkpoint_save(net, opt, path));
    CHECK_MSG(cumlp_checkpoint_load(ctx, path, 0, &back, &back_opt) == CUMLP_SUCCESS, "%s",
              cumlp_last_error(ctx));
    CHECK(cumlp_network_num_layers(back) == LAYERS && back_opt != NULL);
    cumlp_optimizer_destroy(back_opt);
    cumlp_network_destroy(back);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    remove(path);
    free(path);
    free(widths);
    free(acts);
}

/* Loading from a FIFO fails at once with CUMLP_ERROR_IO; it used to block in open() until a
 * writer appeared. alarm() turns a hang into a failure. */
static void test_fifo_is_refused(void) {
    char *path = ckpt_temp_path("fifo.safetensors");
    remove(path);
    if (mkfifo(path, 0600) != 0) {
        CHECK_MSG(0, "mkfifo %s: %s", path, strerror(errno));
        free(path);
        return;
    }
    alarm(10);
    cumlp_network *net = (cumlp_network *)&net;
    CHECK_STATUS(cumlp_checkpoint_load(ctx, path, 0, &net, NULL), CUMLP_ERROR_IO);
    CHECK(net == NULL);
    CHECK_MSG(strstr(cumlp_last_error(ctx), path) && strstr(cumlp_last_error(ctx), "FIFO"), "%s",
              cumlp_last_error(ctx));
    cumlp_network *existing = ckpt_small_network(ctx, 3);
    CHECK_STATUS(cumlp_checkpoint_load_into(existing, NULL, path, 0), CUMLP_ERROR_IO);
    CHECK(strstr(cumlp_last_error(ctx), path) != NULL);
    alarm(0);
    cumlp_network_destroy(existing);
    remove(path);
    free(path);
}

int main(void) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_REFERENCE;
    if (cumlp_context_create(&ctx, &o) != CUMLP_SUCCESS) return 1;
    make_payload();
    RUN(test_template_loads);
    RUN(test_template_with_extras_loads);
    RUN(test_crafted_headers);
    RUN(test_later_option_metadata);
    RUN(test_largest_step_count);
    RUN(test_many_layers_few_tensors);
    RUN(test_non_finite_payload);
    RUN(test_bad_length_field);
    RUN(test_truncated_at_every_offset);
    RUN(test_every_header_byte_flipped);
    RUN(test_header_is_checked);
    RUN(test_random_damage);
    RUN(test_header_of_tiny_values);
    RUN(test_thousands_of_layers);
    RUN(test_fifo_is_refused);
    cumlp_context_destroy(ctx);
    return harness_finish();
}
