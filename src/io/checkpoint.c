/*
 * checkpoint.c - safetensors checkpoints: crash-safe writing and defensive reading.
 *
 * File layout (see "Checkpoints" in cumlp.h): u64 little-endian header length N, N bytes of JSON
 * (padded with spaces so the payload starts at a multiple of 8), then the tensors back to back:
 *   "<2k>.weight" [n_out, n_in], "<2k>.bias" [n_out] for each layer k, then each state arena the
 *   optimizer keeps, "optimizer.state<i>.<2k>.weight" ... in the same order, then the inputs'
 *   scaling "scaler.offset" [n_in], "scaler.scale" [n_in] when it was saved.
 * The names are nn.Sequential indices (Linear at 0, 2, 4, ...) so PyTorch loads them directly.
 *
 * Weight layout: cumlp's W is n_out x n_in column-major: W[j + i * n_out] connects input i to
 * unit j. PyTorch's Linear.weight is [n_out, n_in] row-major: element (j, i) at j * n_in + i.
 * So the file holds W transposed in memory: file[j * n_in + i] = W[j + i * n_out].
 *
 * Reading decodes and checks the whole file into host arrays first (struct decoded); only then
 * is a network created or an existing one changed, so a bad file changes nothing.
 */
#define _POSIX_C_SOURCE 200809L

#include "atomic_file.h"
#include "internal.h"
#include "json.h"
#include "numeric.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT_NAME "cumlp"
/* Version 2: "crc32" covers the whole file; version 1 files ("payload_crc32", the payload only) are
 * still read. */
#define FORMAT_VERSION "2"
#define CRC_KEY        "\"crc32\":\""
/* 16 MiB hold the header of a network of about 20000 layers with Adam state (about 800 bytes
 * per layer), or 80000 without optimizer state. */
#define MAX_HEADER_BYTES ((uint64_t)16 << 20)
/* Parsing a JSON value costs a 40-byte node; a header of tiny values ("[0,0,0,...]") would cost
 * 20 times its size. Every value of a valid header takes about 8 bytes or more (a tensor entry,
 * {"dtype":"F32","shape":[1],"data_offsets":[0,4]} with its name, is 7 values in 59 bytes), so a
 * header may hold at most one value per MIN_BYTES_PER_VALUE bytes (plus a few): the parser's
 * memory stays within a few times the header's size, never more than a valid header needs. */
#define MIN_BYTES_PER_VALUE 6
#define HEADER_VALUE_SLACK  64
#define MAX_LAYERS          ((int64_t)1 << 20)
#define MEMORY_NAME         "<memory>"
#define STATE_PREFIX        "optimizer.state"
#define SCALING_TENSORS     2 /* scaler.offset, scaler.scale */
#define METADATA_KEY        "__metadata__"
#define FLOAT_BYTES         4
#define MAX_PARTS           (1 + CUMLP_OPTIMIZER_MAX_STATES)
#define KNOWN_FLAGS         CUMLP_CHECKPOINT_ALLOW_NON_FINITE

#define COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A file's tensors come in parts: part 0 the parameters, part k >= 1 the optimizer's state arena
 * state[k - 1], named "optimizer.state<k>.<2l>.weight" and so on. A file holds the parts of a mask
 * (bit k for part k; bit 0 always), in increasing order. */
static unsigned parts_of(const cumlp_optimizer_options *o) {
    return 1u | (o ? cumlp__optimizer_state_slots(o) << 1 : 0u);
}

static int has_part(unsigned parts, int part) {
    return (parts >> part) & 1u;
}

static int part_count(unsigned parts) {
    int n = 0;
    for (int part = 0; part < MAX_PARTS; part++)
        n += has_part(parts, part);
    return n;
}

/* The tensor name prefix of a part. */
static const char *part_prefix(int part) {
    static const char *const prefixes[MAX_PARTS] = {"", STATE_PREFIX "1.", STATE_PREFIX "2.",
                                                    STATE_PREFIX "3."};
    _Static_assert(MAX_PARTS == 4, "one prefix per part");
    return prefixes[part];
}

/* ---- CRC-32 (ISO-HDLC: reflected polynomial 0xEDB88320, as zlib.crc32) ---------------------- */

/* The CRC-32 of crc's data followed by size bytes at data (zlib.crc32(data, crc)); crc = 0 starts
 * a new one. */
static uint32_t crc32_update(uint32_t crc, const unsigned char *data, size_t size) {
    uint32_t table[256];
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
    crc ^= 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++)
        crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

/* ---- little-endian scalars ----------------------------------------------------------------- */

static void put_u64_le(unsigned char *dst, uint64_t v) {
    for (int i = 0; i < 8; i++)
        dst[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64_le(const unsigned char *src) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | src[i];
    return v;
}

static void put_f32_le(unsigned char *dst, float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    for (int i = 0; i < 4; i++)
        dst[i] = (unsigned char)(bits >> (8 * i));
}

static float get_f32_le(const unsigned char *src) {
    uint32_t bits =
        (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 | (uint32_t)src[3] << 24;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* ---- decimal numbers in metadata, independent of the C locale ------------------------------- */

/* %.17g in the "C" locale (numeric.h) round-trips every double, whatever LC_NUMERIC says.
 * Returns 0 only if the "C" locale object cannot be created (out of memory). */
static int format_double(double x, char *buf, size_t size) {
    int n = cumlp__format_double_c(buf, size, x);
    return n > 0 && (size_t)n < size;
}

/* A finite decimal number: [-]digits[.digits][e[+-]digits] and nothing else, read in the "C"
 * locale. */
static int parse_double(const char *s, double *out) {
    size_t n = strlen(s);
    if (n == 0 || n > 64 || strspn(s, "0123456789+-.eE") != n) return 0;
    char *end;
    double v = cumlp__strtod_c(s, &end);
    /* No errno check: strtod reports ERANGE for subnormal results too, and a subnormal written by
     * format_double must read back; overflow gives HUGE_VAL, which isfinite rejects. */
    if (end == s || *end != '\0' || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* Decimal digits [first, first+length) as an integer in [0, limit]. */
static int parse_count(const char *first, size_t length, int64_t limit, int64_t *out) {
    if (length == 0 || length > 19 || (length > 1 && first[0] == '0')) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < length; i++) {
        if (first[i] < '0' || first[i] > '9') return 0;
        int digit = first[i] - '0';
        if (v > limit / 10 || v * 10 > limit - digit) return 0; /* > limit, never overflows */
        v = v * 10 + digit;
    }
    *out = v;
    return 1;
}

/* ---- the architecture and contents of a checkpoint, on the host ---------------------------- */

typedef struct decoded {
    int num_layers;
    int64_t *widths; /* num_layers + 1 */
    int *activations;
    int loss;
    double slope;
    int has_optimizer;
    cumlp_optimizer_options opt_options;
    int64_t steps;
    double mu_product; /* NAdam's */
    int has_scaler;    /* the network's loss scaler (FP16), with the optimizer's state */
    cumlp_loss_scaler scaler;
    size_t num_params;
    float *params;                             /* flat order: W1 b1 W2 b2 ..., W column-major */
    float *states[CUMLP_OPTIMIZER_MAX_STATES]; /* same order; NULL where the file has none */
    cumlp_model_info info;
    float *scaling[SCALING_TENSORS]; /* offsets and scales of the inputs; NULL without */
} decoded;

static void decoded_free(decoded *d) {
    free(d->widths);
    free(d->activations);
    free(d->params);
    for (int i = 0; i < CUMLP_OPTIMIZER_MAX_STATES; i++)
        free(d->states[i]);
    for (int i = 0; i < SCALING_TENSORS; i++)
        free(d->scaling[i]);
    memset(d, 0, sizeof *d);
}

/* ---- what a checkpoint records beside the network ------------------------------------------ */

static const char *const scaling_names[SCALING_TENSORS] = {"scaler.offset", "scaler.scale"};

cumlp_status cumlp_model_info_defaults(cumlp_model_info *info) {
    CUMLP_FAIL_IF(!info, NULL, CUMLP_ERROR_INVALID_VALUE, "info is NULL");
    info->task = CUMLP_TASK_UNKNOWN;
    info->num_classes = 0;
    info->label_column = -1;
    return CUMLP_SUCCESS;
}

/* What is wrong with a model info for a network of n_out outputs, or NULL. */
static const char *model_info_problem(const cumlp_model_info *info, int64_t n_out, char *why,
                                      size_t size) {
    int want = info->task != CUMLP_TASK_CLASSIFY ? 0 : n_out == 1 ? 2 : (int)n_out;
    if (info->task < 0 || info->task >= CUMLP_TASK_COUNT)
        snprintf(why, size, "task %d is not a cumlp_task", info->task);
    else if (info->num_classes != want)
        snprintf(why, size,
                 "num_classes %d does not fit the %s task of a network of %lld outputs "
                 "(it must be %d)",
                 info->num_classes, cumlp_task_name(info->task), (long long)n_out, want);
    else if (info->label_column < -1)
        snprintf(why, size, "label_column %d is below -1", info->label_column);
    else
        return NULL;
    return why;
}

static unsigned decoded_parts(const decoded *d) {
    return parts_of(d->has_optimizer ? &d->opt_options : NULL);
}

/* Whether a loss accepts an output activation, and softmax only at the output: the rules of
 * cumlp_network_create, checked here so a file breaking them is a FORMAT error. */
static int architecture_is_valid(const decoded *d) {
    for (int l = 0; l + 1 < d->num_layers; l++) {
        if (d->activations[l] == CUMLP_ACT_SOFTMAX) return 0;
    }
    int out = d->activations[d->num_layers - 1];
    if (out == CUMLP_ACT_SOFTMAX && d->widths[d->num_layers] < 2) return 0;
    switch (d->loss) {
    case CUMLP_LOSS_SQUARED_ERROR:
        return out != CUMLP_ACT_SOFTMAX;
    case CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY:
        return out == CUMLP_ACT_SOFTMAX;
    default:
        return out == CUMLP_ACT_SIGMOID;
    }
}

/* ===========================================================================================
 * Writing
 * =========================================================================================== */

/* A growing string; after a failed allocation it stays failed and appends nothing. */
typedef struct strbuf {
    char *data;
    size_t length, capacity;
    int failed;
} strbuf;

static void sb_append(strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void sb_append(strbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    size_t need = b->length + (size_t)n + 1;
    if (need > b->capacity) {
        size_t cap = b->capacity ? b->capacity : 256;
        while (cap < need)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data) {
            b->failed = 1;
            return;
        }
        b->data = data;
        b->capacity = cap;
    }
    va_start(args, fmt);
    vsnprintf(b->data + b->length, (size_t)n + 1, fmt, args);
    va_end(args);
    b->length += (size_t)n;
}

static void sb_meta_double(strbuf *b, const char *key, double value) {
    char num[64];
    if (!format_double(value, num, sizeof num)) {
        b->failed = 1; /* reported as out of host memory */
        return;
    }
    sb_append(b, ",\"%s\":\"%s\"", key, num);
}

/* What cumlp_checkpoint_save_with records beside the network; either may be NULL. */
typedef struct extras {
    const cumlp_scaler *scaler;
    const cumlp_model_info *info;
} extras;

static void append_model_info(strbuf *b, const cumlp_model_info *info) {
    if (!info || info->task == CUMLP_TASK_UNKNOWN) return;
    sb_append(b, ",\"task\":\"%s\",\"num_classes\":\"%d\",\"label_column\":\"%d\"",
              cumlp_task_name(info->task), info->num_classes, info->label_column);
}

/* The metadata; "crc32" is written as 8 zeros at *crc_at, to be filled in once the file is
 * known. */

/* The network's loss scaler, training state like the optimizer's (FP16 resumes bit for bit). */
static void append_scaler(strbuf *b, const cumlp_loss_scaler *s) {
    sb_meta_double(b, "loss_scale", s->scale);
    sb_meta_double(b, "loss_scale_growth_factor", s->growth_factor);
    sb_meta_double(b, "loss_scale_backoff_factor", s->backoff_factor);
    sb_append(b, ",\"loss_scale_growth_interval\":\"%lld\"", (long long)s->growth_interval);
    sb_append(b, ",\"loss_scale_clean_steps\":\"%lld\"", (long long)s->clean_steps);
    sb_append(b, ",\"loss_scale_overflows\":\"%lld\"", (long long)s->overflows);
}

static void append_metadata(strbuf *b, const cumlp_network *net, const cumlp_optimizer *opt,
                            const extras *x, size_t *crc_at) {
    sb_append(b,
              "\"" METADATA_KEY "\":{\"format\":\"" FORMAT_NAME
              "\",\"format_version\":\"" FORMAT_VERSION "\",\"num_layers\":\"%d\"",
              net->num_layers);
    sb_append(b, ",\"widths\":\"%lld", (long long)net->layers[0].fan_in);
    for (int l = 0; l < net->num_layers; l++)
        sb_append(b, ",%lld", (long long)net->layers[l].fan_out);
    sb_append(b, "\",\"activations\":\"");
    for (int l = 0; l < net->num_layers; l++)
        sb_append(b, "%s%s", l ? "," : "", cumlp_activation_name(net->layers[l].activation));
    sb_append(b, "\",\"loss\":\"%s\"", cumlp_loss_name(net->loss));
    sb_meta_double(b, "leaky_relu_slope", net->leaky_slope);
    append_model_info(b, x->info);
    if (opt) {
        const cumlp_optimizer_options *o = &opt->options;
        sb_append(b, ",\"optimizer\":\"%s\"", cumlp_optimizer_name(o->type));
        sb_meta_double(b, "learning_rate", o->learning_rate);
        sb_meta_double(b, "momentum", o->momentum);
        sb_meta_double(b, "weight_decay", o->weight_decay);
        sb_meta_double(b, "beta1", o->beta1);
        sb_meta_double(b, "beta2", o->beta2);
        sb_meta_double(b, "epsilon", o->epsilon);
        sb_meta_double(b, "alpha", o->alpha);
        sb_meta_double(b, "rho", o->rho);
        sb_append(b, ",\"centered\":\"%d\"", o->centered);
        sb_meta_double(b, "lr_decay", o->lr_decay);
        sb_meta_double(b, "initial_accumulator_value", o->initial_accumulator_value);
        sb_meta_double(b, "momentum_decay", o->momentum_decay);
        sb_meta_double(b, "clip_norm", o->clip_norm);
        sb_meta_double(b, "clip_value", o->clip_value);
        sb_append(b, ",\"non_finite_error\":\"%d\"", o->non_finite_error);
        sb_append(b, ",\"step_count\":\"%lld\"", (long long)opt->steps);
        if (o->type == CUMLP_OPT_NADAM) sb_meta_double(b, "mu_product", opt->nadam_mu_product);
        append_scaler(b, &net->scaler);
    }
    sb_append(b, "," CRC_KEY);
    *crc_at = b->length;
    sb_append(b, "00000000\"}");
}

static void append_tensor_entries(strbuf *b, const cumlp_network *net, unsigned parts) {
    uint64_t offset = 0;
    for (int part = 0; part < MAX_PARTS; part++) {
        if (!has_part(parts, part)) continue;
        for (int l = 0; l < net->num_layers; l++) {
            const cumlp_layer *L = &net->layers[l];
            uint64_t wbytes = (uint64_t)(L->fan_out * L->fan_in) * FLOAT_BYTES;
            uint64_t bbytes = (uint64_t)L->fan_out * FLOAT_BYTES;
            sb_append(b,
                      ",\"%s%d.weight\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],"
                      "\"data_offsets\":[%llu,%llu]}",
                      part_prefix(part), 2 * l, (long long)L->fan_out, (long long)L->fan_in,
                      (unsigned long long)offset, (unsigned long long)(offset + wbytes));
            offset += wbytes;
            sb_append(b,
                      ",\"%s%d.bias\":{\"dtype\":\"F32\",\"shape\":[%lld],"
                      "\"data_offsets\":[%llu,%llu]}",
                      part_prefix(part), 2 * l, (long long)L->fan_out, (unsigned long long)offset,
                      (unsigned long long)(offset + bbytes));
            offset += bbytes;
        }
    }
}

/* The scaling's tensors, after the others' offset bytes. */
static void append_scaling_entries(strbuf *b, int64_t n_in, uint64_t offset) {
    uint64_t bytes = (uint64_t)n_in * FLOAT_BYTES;
    for (int k = 0; k < SCALING_TENSORS; k++, offset += bytes)
        sb_append(b, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}",
                  scaling_names[k], (long long)n_in, (unsigned long long)offset,
                  (unsigned long long)(offset + bytes));
}

/* The header JSON, padded with spaces so that 8 + length is a multiple of 8; payload_size is the
 * network's and optimizer's bytes, which the scaling follows. */
static int build_header(const cumlp_network *net, const cumlp_optimizer *opt, unsigned parts,
                        const extras *x, size_t payload_size, size_t *crc_at, strbuf *b) {
    sb_append(b, "{");
    append_metadata(b, net, opt, x, crc_at);
    append_tensor_entries(b, net, parts);
    if (x->scaler) append_scaling_entries(b, net->layers[0].fan_in, payload_size);
    sb_append(b, "}");
    while (!b->failed && b->length % 8 != 0)
        sb_append(b, " ");
    return !b->failed;
}

/* Writes one arena (flat order, W column-major) into the payload in file layout. */
static unsigned char *encode_arena(const cumlp_network *net, const float *arena,
                                   unsigned char *dst) {
    for (int l = 0; l < net->num_layers; l++) {
        const cumlp_layer *L = &net->layers[l];
        const float *W = arena + L->weight_offset;
        for (int64_t j = 0; j < L->fan_out; j++) {
            for (int64_t i = 0; i < L->fan_in; i++, dst += FLOAT_BYTES)
                put_f32_le(dst, W[j + i * L->fan_out]);
        }
        const float *bias = arena + L->bias_offset;
        for (int64_t j = 0; j < L->fan_out; j++, dst += FLOAT_BYTES)
            put_f32_le(dst, bias[j]);
    }
    return dst;
}

/* Downloads the parameters and optimizer state and encodes them into *payload. */
static cumlp_status build_payload(const char *func, const cumlp_network *net,
                                  const cumlp_optimizer *opt, unsigned parts,
                                  unsigned char **payload, size_t *payload_size) {
    cumlp_context *ctx = net->ctx;
    size_t n = net->num_params;
    *payload = NULL;
    *payload_size = n * FLOAT_BYTES * (size_t)part_count(parts);
    float *host = malloc(n * sizeof *host);
    unsigned char *buf = malloc(*payload_size);
    if (!host || !buf) {
        free(host);
        free(buf);
        return cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory (%zu bytes)",
                           *payload_size);
    }
    unsigned char *dst = buf;
    cumlp_status st = CUMLP_SUCCESS;
    for (int part = 0; part < MAX_PARTS && st == CUMLP_SUCCESS; part++) {
        if (!has_part(parts, part)) continue;
        st = ctx->ops->download(ctx, part ? opt->state[part - 1] : net->params, host, n);
        if (st == CUMLP_SUCCESS) dst = encode_arena(net, host, dst);
    }
    free(host);
    if (st != CUMLP_SUCCESS) {
        free(buf);
        return st;
    }
    *payload = buf;
    return CUMLP_SUCCESS;
}

/* The scaling's offsets and scales in file layout (little-endian fp32), in *bytes. */
static cumlp_status encode_scaling(const char *func, const cumlp_network *net,
                                   const cumlp_scaler *scaler, unsigned char **bytes,
                                   size_t *size) {
    *bytes = NULL;
    *size = 0;
    if (!scaler) return CUMLP_SUCCESS;
    int64_t n = net->layers[0].fan_in;
    float *values = malloc((size_t)n * SCALING_TENSORS * sizeof *values);
    *bytes = malloc((size_t)n * SCALING_TENSORS * FLOAT_BYTES);
    if (!values || !*bytes) {
        free(values);
        free(*bytes);
        *bytes = NULL;
        return cumlp__fail(net->ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory");
    }
    cumlp_scaler_get(scaler, values, values + n, n);
    for (int64_t i = 0; i < n * SCALING_TENSORS; i++)
        put_f32_le(*bytes + i * FLOAT_BYTES, values[i]);
    free(values);
    *size = (size_t)n * SCALING_TENSORS * FLOAT_BYTES;
    return CUMLP_SUCCESS;
}

static cumlp_status save_common(const char *func, const cumlp_network *net,
                                const cumlp_optimizer *opt, const extras *x, const char *path) {
    if (!net) return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "net is NULL");
    cumlp_context *ctx = net->ctx;
    if (!path || !path[0])
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "path is NULL or empty");
    if (opt && opt->net != net)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "the optimizer was created for another network");
    cumlp_status settled = cumlp__network_settle(net); /* the counters queued steps ran ahead */
    if (settled != CUMLP_SUCCESS) return settled;
    int64_t n_in = net->layers[0].fan_in, n_out = net->layers[net->num_layers - 1].fan_out;
    if (x->scaler && cumlp_scaler_num_features(x->scaler) != n_in)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "the scaler has %lld features but the network takes %lld inputs",
                           (long long)cumlp_scaler_num_features(x->scaler), (long long)n_in);
    char why[160];
    if (x->info && model_info_problem(x->info, n_out, why, sizeof why))
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "info: %s", why);
    if (ctx->sticky) return ctx->sticky;
    unsigned parts = parts_of(opt ? &opt->options : NULL);
    unsigned char *payload, *scaling = NULL;
    size_t payload_size, scaling_size = 0;
    cumlp_status st = build_payload(func, net, opt, parts, &payload, &payload_size);
    if (st == CUMLP_SUCCESS) st = encode_scaling(func, net, x->scaler, &scaling, &scaling_size);
    if (st != CUMLP_SUCCESS) {
        free(payload);
        return st;
    }
    strbuf header = {0};
    size_t crc_at = 0;
    if (!build_header(net, opt, parts, x, payload_size, &crc_at, &header)) {
        st = cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory");
    } else {
        unsigned char length[8];
        put_u64_le(length, header.length);
        /* the whole file, with the CRC's own digits as zeros */
        uint32_t crc = crc32_update(0, length, 8);
        crc = crc32_update(crc, (const unsigned char *)header.data, header.length);
        crc = crc32_update(crc, payload, payload_size);
        crc = crc32_update(crc, scaling, scaling_size);
        char digits[9];
        snprintf(digits, sizeof digits, "%08lx", (unsigned long)crc);
        memcpy(header.data + crc_at, digits, 8);
        cumlp__chunk chunks[4] = {{length, 8},
                                  {header.data, header.length},
                                  {payload, payload_size},
                                  {scaling, scaling_size}};
        st = cumlp__replace_file(ctx, func, path, chunks, 4);
    }
    free(header.data);
    free(payload);
    free(scaling);
    return st;
}

cumlp_status cumlp_checkpoint_save(const cumlp_network *net, const cumlp_optimizer *opt,
                                   const char *path) {
    extras none = {NULL, NULL};
    return save_common(__func__, net, opt, &none, path);
}

cumlp_status cumlp_checkpoint_save_with(const cumlp_network *net, const cumlp_optimizer *opt,
                                        const cumlp_scaler *scaler, const cumlp_model_info *info,
                                        const char *path) {
    extras x = {scaler, info};
    return save_common(__func__, net, opt, &x, path);
}

/* ===========================================================================================
 * Reading
 * =========================================================================================== */

typedef struct reader {
    const cumlp_context *ctx;
    const char *func;
    const char *name; /* the path, or "<memory>" */
    int flags;
    const unsigned char *payload;
    size_t payload_size;
    const unsigned char *file; /* the whole file */
    size_t file_size;
    int version; /* the file's format_version */
} reader;

static cumlp_status bad(const reader *r, cumlp_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static cumlp_status bad(const reader *r, cumlp_status status, const char *fmt, ...) {
    char what[CUMLP_MESSAGE_SIZE];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    return cumlp__fail(r->ctx, status, r->func, "%s: %s", r->name, what);
}

/* ---- metadata ------------------------------------------------------------------------------ */

static cumlp_status meta_string(const reader *r, const cumlp_json *meta, const char *key,
                                const char **out) {
    const cumlp_json *v = cumlp__json_get(meta, key);
    *out = "";
    if (!v) return bad(r, CUMLP_ERROR_FORMAT, "metadata \"%s\" is missing", key);
    *out = v->text;
    return CUMLP_SUCCESS;
}

static cumlp_status meta_double(const reader *r, const cumlp_json *meta, const char *key,
                                double *out) {
    const char *s = NULL;
    cumlp_status st = meta_string(r, meta, key, &s);
    if (st == CUMLP_SUCCESS && !parse_double(s, out))
        st =
            bad(r, CUMLP_ERROR_FORMAT, "metadata \"%s\" is \"%.40s\", not a finite number", key, s);
    return st;
}

/* Splits a comma-separated list; calls item(i, first, length) for each of exactly count items. */
static int split_list(const char *s, int count,
                      int (*item)(void *ctx, int i, const char *first, size_t length), void *ctx) {
    for (int i = 0; i < count; i++) {
        const char *comma = strchr(s, ',');
        size_t length = comma ? (size_t)(comma - s) : strlen(s);
        if ((comma != NULL) != (i + 1 < count) || !item(ctx, i, s, length)) return 0;
        s += length + 1;
    }
    return 1;
}

static int width_item(void *ctx, int i, const char *first, size_t length) {
    int64_t *widths = ctx;
    return parse_count(first, length, CUMLP_MAX_DIM, &widths[i]) && widths[i] >= 1;
}

static int activation_item(void *ctx, int i, const char *first, size_t length) {
    int *activations = ctx;
    activations[i] = cumlp__activation_value(first, length);
    return activations[i] >= 0;
}

static cumlp_status parse_architecture(const reader *r, const cumlp_json *meta, decoded *d) {
    const char *s = NULL;
    cumlp_status st = meta_string(r, meta, "num_layers", &s);
    int64_t layers = 0;
    if (st == CUMLP_SUCCESS && !parse_count(s, strlen(s), MAX_LAYERS, &layers))
        st = bad(r, CUMLP_ERROR_FORMAT, "metadata \"num_layers\" is \"%.40s\"", s);
    if (st == CUMLP_SUCCESS && layers < 1)
        st = bad(r, CUMLP_ERROR_FORMAT, "metadata \"num_layers\" is 0");
    if (st != CUMLP_SUCCESS) return st;
    d->num_layers = (int)layers;
    d->widths = malloc((size_t)(layers + 1) * sizeof *d->widths);
    d->activations = malloc((size_t)layers * sizeof *d->activations);
    if (!d->widths || !d->activations)
        return cumlp__fail(r->ctx, CUMLP_ERROR_ALLOC_FAILED, r->func, "out of host memory");
    st = meta_string(r, meta, "widths", &s);
    if (st == CUMLP_SUCCESS && !split_list(s, d->num_layers + 1, width_item, d->widths))
        st = bad(r, CUMLP_ERROR_FORMAT,
                 "metadata \"widths\" must be %d comma-separated integers in 1..%lld",
                 d->num_layers + 1, (long long)CUMLP_MAX_DIM);
    if (st == CUMLP_SUCCESS) st = meta_string(r, meta, "activations", &s);
    if (st == CUMLP_SUCCESS && !split_list(s, d->num_layers, activation_item, d->activations))
        st = bad(r, CUMLP_ERROR_FORMAT,
                 "metadata \"activations\" must be %d comma-separated activation names",
                 d->num_layers);
    if (st == CUMLP_SUCCESS) st = meta_string(r, meta, "loss", &s);
    if (st == CUMLP_SUCCESS) {
        d->loss = cumlp__loss_value(s, strlen(s));
        if (d->loss < 0) st = bad(r, CUMLP_ERROR_FORMAT, "unknown loss \"%.40s\"", s);
    }
    if (st == CUMLP_SUCCESS) st = meta_double(r, meta, "leaky_relu_slope", &d->slope);
    if (st == CUMLP_SUCCESS && !(d->slope >= 0 && d->slope < 1))
        st = bad(r, CUMLP_ERROR_FORMAT, "leaky_relu_slope %g is not in [0, 1)", d->slope);
    if (st == CUMLP_SUCCESS && !architecture_is_valid(d))
        st = bad(r, CUMLP_ERROR_FORMAT,
                 "the loss does not accept the output activation, or softmax is not last or "
                 "has fewer than 2 outputs");
    return st;
}

/* A decimal integer in [-1, INT32_MAX]. */
static int parse_column(const char *s, int *out) {
    int64_t v = 0;
    if (strcmp(s, "-1") == 0)
        v = -1;
    else if (!parse_count(s, strlen(s), INT32_MAX, &v))
        return 0;
    *out = (int)v;
    return 1;
}

/* "task", "num_classes", "label_column": all three or none (the defaults). */
static cumlp_status parse_model_info(const reader *r, const cumlp_json *meta, decoded *d) {
    cumlp_model_info_defaults(&d->info);
    const cumlp_json *task = cumlp__json_get(meta, "task");
    if (!task) return CUMLP_SUCCESS;
    cumlp_model_info *info = &d->info;
    info->task = cumlp__task_value(task->text, strlen(task->text));
    if (info->task < 0) return bad(r, CUMLP_ERROR_FORMAT, "unknown task \"%.40s\"", task->text);
    const char *s = NULL;
    int64_t classes = 0;
    cumlp_status st = meta_string(r, meta, "num_classes", &s);
    if (st == CUMLP_SUCCESS && !parse_count(s, strlen(s), INT32_MAX, &classes))
        st = bad(r, CUMLP_ERROR_FORMAT, "metadata \"num_classes\" is \"%.40s\"", s);
    info->num_classes = (int)classes;
    if (st == CUMLP_SUCCESS) st = meta_string(r, meta, "label_column", &s);
    if (st == CUMLP_SUCCESS && !parse_column(s, &info->label_column))
        st = bad(r, CUMLP_ERROR_FORMAT, "metadata \"label_column\" is \"%.40s\"", s);
    char why[160];
    if (st == CUMLP_SUCCESS && model_info_problem(info, d->widths[d->num_layers], why, sizeof why))
        st = bad(r, CUMLP_ERROR_FORMAT, "%s", why);
    return st;
}

static cumlp_status check_optimizer_options(const reader *r, const cumlp_optimizer_options *o) {
    char why[160];
    const char *problem = cumlp__optimizer_options_problem(o, why, sizeof why);
    return problem ? bad(r, CUMLP_ERROR_FORMAT, "optimizer hyper-parameters: %s", problem)
                   : CUMLP_SUCCESS;
}

/* The options added after cumlp 0.1.0: files written before lack them and read as the defaults
 * (which those files' optimizers had in effect). */
static cumlp_status parse_later_options(const reader *r, const cumlp_json *meta,
                                        cumlp_optimizer_options *o) {
    const char *keys[] = {"alpha",          "rho",       "lr_decay",  "initial_accumulator_value",
                          "momentum_decay", "clip_norm", "clip_value"};
    double *values[] = {
        &o->alpha,          &o->rho,       &o->lr_decay,  &o->initial_accumulator_value,
        &o->momentum_decay, &o->clip_norm, &o->clip_value};
    cumlp_status st = CUMLP_SUCCESS;
    for (int i = 0; i < COUNT_OF(keys) && st == CUMLP_SUCCESS; i++)
        if (cumlp__json_get(meta, keys[i])) st = meta_double(r, meta, keys[i], values[i]);
    const char *flags[] = {"centered", "non_finite_error"};
    int *flag_values[] = {&o->centered, &o->non_finite_error};
    for (int i = 0; i < COUNT_OF(flags) && st == CUMLP_SUCCESS; i++) {
        const cumlp_json *v = cumlp__json_get(meta, flags[i]);
        int64_t flag = 0;
        if (v && !parse_count(v->text, strlen(v->text), 1, &flag))
            st = bad(r, CUMLP_ERROR_FORMAT, "metadata \"%s\" is \"%.40s\", not 0 or 1", flags[i],
                     v->text);
        if (v) *flag_values[i] = (int)flag;
    }
    return st;
}

/* NAdam's product of its momentum coefficients so far, which resuming needs. */
static cumlp_status parse_mu_product(const reader *r, const cumlp_json *meta, decoded *d) {
    cumlp_status st = meta_double(r, meta, "mu_product", &d->mu_product);
    if (st == CUMLP_SUCCESS && !(d->mu_product >= 0 && d->mu_product <= 1))
        st = bad(r, CUMLP_ERROR_FORMAT, "metadata \"mu_product\" %g is not in [0, 1]",
                 d->mu_product);
    return st;
}

/* The loss scaler saved with the optimizer's state; files written before cumlp had one lack the
 * keys, and the network keeps its own. */
static cumlp_status parse_scaler(const reader *r, const cumlp_json *meta, decoded *d) {
    if (!cumlp__json_get(meta, "loss_scale")) return CUMLP_SUCCESS;
    cumlp_loss_scaler *s = &d->scaler;
    cumlp_loss_scaler_defaults(s);
    const char *doubles[] = {"loss_scale", "loss_scale_growth_factor", "loss_scale_backoff_factor"};
    double *double_values[] = {&s->scale, &s->growth_factor, &s->backoff_factor};
    cumlp_status st = CUMLP_SUCCESS;
    for (int i = 0; i < COUNT_OF(doubles) && st == CUMLP_SUCCESS; i++)
        st = meta_double(r, meta, doubles[i], double_values[i]);
    const char *counts[] = {"loss_scale_growth_interval", "loss_scale_clean_steps",
                            "loss_scale_overflows"};
    int64_t *count_values[] = {&s->growth_interval, &s->clean_steps, &s->overflows};
    for (int i = 0; i < COUNT_OF(counts) && st == CUMLP_SUCCESS; i++) {
        const char *text = NULL;
        st = meta_string(r, meta, counts[i], &text);
        if (st == CUMLP_SUCCESS && !parse_count(text, strlen(text), INT64_MAX, count_values[i]))
            st = bad(r, CUMLP_ERROR_FORMAT, "metadata \"%s\" is \"%.40s\"", counts[i], text);
    }
    char why[160];
    const char *problem =
        st == CUMLP_SUCCESS ? cumlp__loss_scaler_problem(s, why, sizeof why) : NULL;
    if (problem) st = bad(r, CUMLP_ERROR_FORMAT, "loss scaler: %s", problem);
    d->has_scaler = st == CUMLP_SUCCESS;
    return st;
}

static cumlp_status parse_optimizer(const reader *r, const cumlp_json *meta, decoded *d) {
    const cumlp_json *type = cumlp__json_get(meta, "optimizer");
    if (!type) return CUMLP_SUCCESS;
    cumlp_optimizer_options *o = &d->opt_options;
    cumlp_optimizer_defaults(o);
    o->type = cumlp__optimizer_value(type->text, strlen(type->text));
    if (o->type < 0) return bad(r, CUMLP_ERROR_FORMAT, "unknown optimizer \"%.40s\"", type->text);
    d->has_optimizer = 1;
    const char *keys[] = {"learning_rate", "momentum", "weight_decay", "beta1", "beta2", "epsilon"};
    double *values[] = {&o->learning_rate, &o->momentum, &o->weight_decay,
                        &o->beta1,         &o->beta2,    &o->epsilon};
    cumlp_status st = CUMLP_SUCCESS;
    for (int i = 0; i < COUNT_OF(keys) && st == CUMLP_SUCCESS; i++)
        st = meta_double(r, meta, keys[i], values[i]);
    if (st == CUMLP_SUCCESS) st = parse_later_options(r, meta, o);
    if (st == CUMLP_SUCCESS) st = check_optimizer_options(r, o);
    d->mu_product = 1.0;
    if (st == CUMLP_SUCCESS && o->type == CUMLP_OPT_NADAM) st = parse_mu_product(r, meta, d);
    const char *s = NULL;
    if (st == CUMLP_SUCCESS) st = meta_string(r, meta, "step_count", &s);
    if (st == CUMLP_SUCCESS && !parse_count(s, strlen(s), INT64_MAX, &d->steps))
        st = bad(r, CUMLP_ERROR_FORMAT, "metadata \"step_count\" is \"%.40s\"", s);
    if (st == CUMLP_SUCCESS) st = parse_scaler(r, meta, d);
    return st;
}

/* The checksum the metadata announces: "crc32" (version 2) or "payload_crc32" (version 1). */
static cumlp_status parse_crc(const reader *r, const cumlp_json *meta, uint32_t *crc) {
    const char *key = r->version == 1 ? "payload_crc32" : "crc32", *s = NULL;
    cumlp_status st = meta_string(r, meta, key, &s);
    if (st != CUMLP_SUCCESS) return st;
    if (strlen(s) != 8 || strspn(s, "0123456789abcdef") != 8)
        return bad(r, CUMLP_ERROR_FORMAT, "metadata \"%s\" must be 8 hex digits", key);
    *crc = (uint32_t)strtoul(s, NULL, 16);
    return CUMLP_SUCCESS;
}

/* The CRC-32 a file's checksum covers: version 2 the whole file, with the 8 digits that follow
 * the header's one "crc32":" as zeros; version 1 the payload. */
static cumlp_status actual_crc(const reader *r, uint32_t *crc) {
    if (r->version == 1) {
        *crc = crc32_update(0, r->payload, r->payload_size);
        return CUMLP_SUCCESS;
    }
    const unsigned char *header = r->file + 8, *at = NULL;
    size_t header_size = (size_t)(r->payload - header), key = strlen(CRC_KEY);
    for (size_t i = 0; i + key + 8 <= header_size; i++) {
        if (memcmp(header + i, CRC_KEY, key) != 0) continue;
        if (at) return bad(r, CUMLP_ERROR_FORMAT, "the header holds " CRC_KEY " twice");
        at = header + i + key;
    }
    if (!at) return bad(r, CUMLP_ERROR_FORMAT, "the header does not hold " CRC_KEY "<8 digits>");
    *crc = crc32_update(0, r->file, (size_t)(at - r->file));
    *crc = crc32_update(*crc, (const unsigned char *)"00000000", 8);
    *crc = crc32_update(*crc, at + 8, r->file_size - (size_t)(at + 8 - r->file));
    return CUMLP_SUCCESS;
}

/* Checks the metadata object: string values only (safetensors), format name and version. */
static cumlp_status parse_metadata(reader *r, const cumlp_json *header, decoded *d, uint32_t *crc) {
    const cumlp_json *meta = cumlp__json_get(header, METADATA_KEY);
    if (!meta || meta->type != CUMLP_JSON_OBJECT)
        return bad(r, CUMLP_ERROR_FORMAT, "no \"" METADATA_KEY "\" object in the header");
    for (size_t i = 0; i < meta->count; i++) {
        if (meta->items[i].type != CUMLP_JSON_STRING)
            return bad(r, CUMLP_ERROR_FORMAT, "metadata \"%.40s\" is not a string", meta->keys[i]);
    }
    const char *s = NULL;
    cumlp_status st = meta_string(r, meta, "format", &s);
    if (st == CUMLP_SUCCESS && strcmp(s, FORMAT_NAME) != 0)
        st = bad(r, CUMLP_ERROR_FORMAT, "format \"%.40s\" is not \"" FORMAT_NAME "\"", s);
    if (st == CUMLP_SUCCESS) st = meta_string(r, meta, "format_version", &s);
    if (st == CUMLP_SUCCESS && strcmp(s, FORMAT_VERSION) != 0 && strcmp(s, "1") != 0)
        st = bad(r, CUMLP_ERROR_FORMAT, "format version \"%.40s\" is not supported", s);
    if (st == CUMLP_SUCCESS) r->version = s[0] - '0';
    if (st == CUMLP_SUCCESS) st = parse_architecture(r, meta, d);
    if (st == CUMLP_SUCCESS) st = parse_model_info(r, meta, d);
    if (st == CUMLP_SUCCESS) st = parse_optimizer(r, meta, d);
    if (st == CUMLP_SUCCESS) st = parse_crc(r, meta, crc);
    return st;
}

/* ---- tensors ------------------------------------------------------------------------------- */

/* What the architecture says the file holds: one entry per tensor, in file order. */
typedef struct expected_tensor {
    int part, layer, is_bias;
    int64_t rows, cols; /* the file's shape: [rows, cols], or [rows] for a bias */
    uint64_t bytes;
    uint64_t begin, end;     /* data_offsets found in the header */
    const cumlp_json *entry; /* the header entry; NULL until seen */
} expected_tensor;

/* Index of a tensor name in the expected list, or -1 if the file may not hold it. */
static int tensor_index(const char *name, const decoded *d, unsigned parts) {
    int part = 0;
    for (int k = 1; k < MAX_PARTS; k++) {
        if (strncmp(name, part_prefix(k), strlen(part_prefix(k))) == 0) part = k;
    }
    if (!has_part(parts, part)) return -1;
    const char *s = name + strlen(part_prefix(part));
    const char *dot = strchr(s, '.');
    int64_t index;
    if (!dot || !parse_count(s, (size_t)(dot - s), 2 * (int64_t)d->num_layers, &index) ||
        index % 2 != 0 || index / 2 >= d->num_layers)
        return -1;
    int is_bias = strcmp(dot, ".bias") == 0;
    if (!is_bias && strcmp(dot, ".weight") != 0) return -1;
    int position = part_count(parts & ((1u << part) - 1u)); /* the parts before it */
    return (position * d->num_layers + (int)(index / 2)) * 2 + is_bias;
}

/* Reads a JSON integer that is a size or offset: FORMAT if it is not a non-negative integer,
 * SIZE_LIMIT if it does not fit in 64 bits. */
static cumlp_status read_size(const reader *r, const cumlp_json *v, const char *tensor,
                              uint64_t *out) {
    if (cumlp__json_to_u64(v, out)) return CUMLP_SUCCESS;
    if (v->type == CUMLP_JSON_NUMBER && strspn(v->text, "0123456789") == strlen(v->text))
        return bad(r, CUMLP_ERROR_SIZE_LIMIT, "tensor \"%.64s\": %.40s does not fit in 64 bits",
                   tensor, v->text);
    return bad(r, CUMLP_ERROR_FORMAT, "tensor \"%.64s\": sizes and offsets must be integers >= 0",
               tensor);
}

static cumlp_status check_shape(const reader *r, const char *name, const cumlp_json *shape,
                                const expected_tensor *t) {
    if (!shape || shape->type != CUMLP_JSON_ARRAY)
        return bad(r, CUMLP_ERROR_FORMAT, "tensor \"%.64s\": \"shape\" is not an array", name);
    uint64_t dims[2] = {0, 0}, bytes = FLOAT_BYTES;
    for (size_t i = 0; i < shape->count; i++) {
        uint64_t dim;
        cumlp_status st = read_size(r, &shape->items[i], name, &dim);
        if (st != CUMLP_SUCCESS) return st;
        if (dim != 0 && bytes > UINT64_MAX / dim)
            return bad(r, CUMLP_ERROR_SIZE_LIMIT, "tensor \"%.64s\": the shape's size overflows",
                       name);
        bytes *= dim;
        if (i < 2) dims[i] = dim;
    }
    size_t rank = t->is_bias ? 1 : 2;
    if (shape->count != rank || dims[0] != (uint64_t)t->rows ||
        (rank == 2 && dims[1] != (uint64_t)t->cols)) {
        if (t->is_bias)
            return bad(r, CUMLP_ERROR_SHAPE_MISMATCH,
                       "tensor \"%.64s\": shape disagrees with the architecture [%lld]", name,
                       (long long)t->rows);
        return bad(r, CUMLP_ERROR_SHAPE_MISMATCH,
                   "tensor \"%.64s\": shape disagrees with the architecture [%lld, %lld]", name,
                   (long long)t->rows, (long long)t->cols);
    }
    return CUMLP_SUCCESS;
}

static cumlp_status check_offsets(const reader *r, const char *name, const cumlp_json *offsets,
                                  expected_tensor *t) {
    if (!offsets || offsets->type != CUMLP_JSON_ARRAY || offsets->count != 2)
        return bad(r, CUMLP_ERROR_FORMAT, "tensor \"%.64s\": \"data_offsets\" is not [begin, end]",
                   name);
    cumlp_status st = read_size(r, &offsets->items[0], name, &t->begin);
    if (st == CUMLP_SUCCESS) st = read_size(r, &offsets->items[1], name, &t->end);
    if (st == CUMLP_SUCCESS && (t->end < t->begin || t->end - t->begin != t->bytes))
        st = bad(r, CUMLP_ERROR_FORMAT,
                 "tensor \"%.64s\": data_offsets [%llu, %llu] do not span its %llu bytes", name,
                 (unsigned long long)t->begin, (unsigned long long)t->end,
                 (unsigned long long)t->bytes);
    return st;
}

static cumlp_status check_entry(const reader *r, const char *name, const cumlp_json *entry,
                                expected_tensor *t) {
    if (entry->type != CUMLP_JSON_OBJECT)
        return bad(r, CUMLP_ERROR_FORMAT, "tensor \"%.64s\" is not an object", name);
    const cumlp_json *dtype = cumlp__json_get(entry, "dtype");
    const cumlp_json *shape = cumlp__json_get(entry, "shape");
    const cumlp_json *offsets = cumlp__json_get(entry, "data_offsets");
    if (!dtype || !shape || !offsets || entry->count != 3)
        return bad(r, CUMLP_ERROR_FORMAT,
                   "tensor \"%.64s\" must have exactly \"dtype\", \"shape\" and \"data_offsets\"",
                   name);
    if (dtype->type != CUMLP_JSON_STRING)
        return bad(r, CUMLP_ERROR_FORMAT, "tensor \"%.64s\": dtype is not a string", name);
    if (strcmp(dtype->text, "F32") != 0)
        return bad(r, CUMLP_ERROR_SHAPE_MISMATCH, "tensor \"%.64s\": dtype \"%.16s\", not F32",
                   name, dtype->text);
    cumlp_status st = check_shape(r, name, shape, t);
    if (st == CUMLP_SUCCESS) st = check_offsets(r, name, offsets, t);
    return st;
}

/* The expected tensors of the architecture, with their sizes; the total must fit the limits. */
static cumlp_status expect_tensors(const reader *r, decoded *d, unsigned parts,
                                   expected_tensor **out, size_t *count) {
    int part_of_position[MAX_PARTS], positions = 0;
    for (int part = 0; part < MAX_PARTS; part++)
        if (has_part(parts, part)) part_of_position[positions++] = part;
    *count = (size_t)d->num_layers * 2 * (size_t)positions;
    expected_tensor *list = calloc(*count, sizeof *list);
    if (!list) return cumlp__fail(r->ctx, CUMLP_ERROR_ALLOC_FAILED, r->func, "out of host memory");
    int64_t params = 0, limit = INT64_MAX / (FLOAT_BYTES * MAX_PARTS);
    for (int l = 0; l < d->num_layers; l++) {
        int64_t layer;
        if (!cumlp__mul_size(d->widths[l + 1], d->widths[l] + 1, limit, &layer) ||
            params > limit - layer) {
            free(list);
            return bad(r, CUMLP_ERROR_SIZE_LIMIT, "the parameter count overflows at layer %d", l);
        }
        params += layer;
    }
    for (size_t i = 0; i < *count; i++) {
        expected_tensor *t = &list[i];
        t->is_bias = (int)(i % 2);
        t->layer = (int)((i / 2) % (size_t)d->num_layers);
        t->part = part_of_position[i / 2 / (size_t)d->num_layers];
        t->rows = d->widths[t->layer + 1];
        t->cols = t->is_bias ? 1 : d->widths[t->layer];
        t->bytes = (uint64_t)(t->rows * t->cols) * FLOAT_BYTES;
    }
    d->num_params = (size_t)params;
    *out = list;
    return CUMLP_SUCCESS;
}

/* The name of the tensor at position i of the expected order (the list, then the scaling), such
 * as "optimizer.state1.2.bias", in buf. */
static const char *expected_name(const expected_tensor *list, size_t count, size_t i, char *buf,
                                 size_t size) {
    if (i >= count) return scaling_names[i - count];
    const expected_tensor *t = &list[i];
    snprintf(buf, size, "%s%d.%s", part_prefix(t->part), 2 * t->layer,
             t->is_bias ? "bias" : "weight");
    return buf;
}

/* The scaling's tensors as the architecture expects them: [n_in] each. */
static void expect_scaling(const decoded *d, expected_tensor scaling[SCALING_TENSORS]) {
    for (int k = 0; k < SCALING_TENSORS; k++) {
        memset(&scaling[k], 0, sizeof scaling[k]);
        scaling[k].is_bias = 1; /* one dimension */
        scaling[k].rows = d->widths[0];
        scaling[k].cols = 1;
        scaling[k].bytes = (uint64_t)d->widths[0] * FLOAT_BYTES;
    }
}

/* 0 for "scaler.offset", 1 for "scaler.scale", else -1. */
static int scaling_index(const char *name) {
    for (int k = 0; k < SCALING_TENSORS; k++)
        if (strcmp(name, scaling_names[k]) == 0) return k;
    return -1;
}

/* The tensors' data ends exactly at the end of the file. */
static cumlp_status check_end(const reader *r, uint64_t cursor) {
    cumlp_status st = CUMLP_SUCCESS;
    if (cursor > r->payload_size)
        st = bad(r, CUMLP_ERROR_TRUNCATED, "the file ends %llu bytes before its tensor data does",
                 (unsigned long long)(cursor - r->payload_size));
    if (cursor < r->payload_size)
        st = bad(r, CUMLP_ERROR_SIZE_LIMIT, "%llu bytes follow the tensor data",
                 (unsigned long long)(r->payload_size - cursor));
    return st;
}

/* Matches every header entry to an expected tensor (of the list, or the optional scaling after
 * it) and checks it. The tensors must be in header order: the header lists them in the order cumlp
 * writes them, and each one's data starts where the previous one's ended, so that neither two
 * names nor two offsets can be swapped unnoticed (a version 1 file's checksum does not cover its
 * header). */
static cumlp_status match_tensors(const reader *r, const cumlp_json *header, const decoded *d,
                                  unsigned parts, expected_tensor *list, size_t count,
                                  expected_tensor scaling[SCALING_TENSORS]) {
    size_t position = 0; /* of the next tensor in the expected order */
    uint64_t cursor = 0; /* where its data must start */
    char expected[96];
    for (size_t i = 0; i < header->count; i++) {
        const char *name = header->keys[i];
        if (strcmp(name, METADATA_KEY) == 0) continue;
        int extra = scaling_index(name);
        int index = extra >= 0 ? (int)count + extra : tensor_index(name, d, parts);
        if (index < 0) return bad(r, CUMLP_ERROR_FORMAT, "unknown tensor \"%.64s\"", name);
        expected_tensor *t = extra >= 0 ? &scaling[extra] : &list[index];
        if (t->entry) return bad(r, CUMLP_ERROR_FORMAT, "duplicate tensor \"%.64s\"", name);
        if ((size_t)index < position)
            return bad(r, CUMLP_ERROR_FORMAT,
                       "tensor \"%.64s\" is out of order: the header lists %s before it", name,
                       expected_name(list, count, position - 1, expected, sizeof expected));
        if ((size_t)index > position)
            return bad(r, CUMLP_ERROR_FORMAT, "missing tensor %s (the header lists \"%.64s\")",
                       expected_name(list, count, position, expected, sizeof expected), name);
        t->entry = &header->items[i];
        cumlp_status st = check_entry(r, name, t->entry, t);
        if (st != CUMLP_SUCCESS) return st;
        if (t->begin != cursor)
            return bad(r, CUMLP_ERROR_FORMAT,
                       "tensor \"%.64s\": its data starts at byte %llu, not at %llu where the "
                       "tensor before it in the header ends",
                       name, (unsigned long long)t->begin, (unsigned long long)cursor);
        cursor = t->end;
        position++;
    }
    /* the scaling is optional, but both of its tensors or neither */
    if (position < count || position == count + 1)
        return bad(r, CUMLP_ERROR_FORMAT, "missing tensor %s",
                   expected_name(list, count, position, expected, sizeof expected));
    return check_end(r, cursor);
}

/* ---- payload decoding ---------------------------------------------------------------------- */

/* Decodes one tensor to dst: a bias as it is, a weight transposed back to column-major. Returns
 * 0 if it holds NaN or Inf. */
static int decode_tensor(const reader *r, const expected_tensor *t, float *dst) {
    const unsigned char *src = r->payload + t->begin;
    int64_t n_out = t->rows, n_in = t->cols;
    int finite = 1;
    for (int64_t j = 0; j < n_out; j++) {
        for (int64_t i = 0; i < n_in; i++, src += FLOAT_BYTES) {
            float x = get_f32_le(src);
            finite &= isfinite(x) != 0;
            dst[j + i * n_out] = x;
        }
    }
    return finite;
}

/* Fills d->params and d->states from the payload. The tensors of a part in list order are the
 * flat order W1 b1 W2 b2 ..., so each goes right after the previous one. */
static cumlp_status decode_payload(const reader *r, decoded *d, const expected_tensor *list,
                                   size_t count, unsigned parts) {
    float **arenas[MAX_PARTS] = {&d->params};
    for (int k = 1; k < MAX_PARTS; k++)
        arenas[k] = &d->states[k - 1];
    for (int part = 0; part < MAX_PARTS; part++) {
        if (!has_part(parts, part)) continue;
        *arenas[part] = malloc(d->num_params * sizeof(float));
        if (!*arenas[part])
            return cumlp__fail(r->ctx, CUMLP_ERROR_ALLOC_FAILED, r->func,
                               "out of host memory (%zu parameters)", d->num_params);
    }
    size_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        const expected_tensor *t = &list[i];
        if (i > 0 && t->part != list[i - 1].part) offset = 0;
        int finite = decode_tensor(r, t, *arenas[t->part] + offset);
        offset += (size_t)(t->rows * t->cols);
        if (!finite && !(r->flags & CUMLP_CHECKPOINT_ALLOW_NON_FINITE))
            return bad(r, CUMLP_ERROR_NON_FINITE, "tensor %s%d.%s holds NaN or Inf",
                       part_prefix(t->part), 2 * t->layer, t->is_bias ? "bias" : "weight");
    }
    return CUMLP_SUCCESS;
}

/* Fills d->scaling from the payload when the file has it: finite offsets, finite nonzero scales. */
static cumlp_status decode_scaling(const reader *r, decoded *d,
                                   const expected_tensor scaling[SCALING_TENSORS]) {
    if (!scaling[0].entry) return CUMLP_SUCCESS;
    int64_t n = d->widths[0];
    for (int k = 0; k < SCALING_TENSORS; k++) {
        d->scaling[k] = malloc((size_t)n * sizeof(float));
        if (!d->scaling[k])
            return cumlp__fail(r->ctx, CUMLP_ERROR_ALLOC_FAILED, r->func, "out of host memory");
        for (int64_t i = 0; i < n; i++) {
            float v = get_f32_le(r->payload + scaling[k].begin + (size_t)i * FLOAT_BYTES);
            if (!isfinite(v) || (k == 1 && v == 0))
                return bad(r, CUMLP_ERROR_FORMAT,
                           "tensor %s: element %lld is %g (offsets must be finite, scales finite "
                           "and nonzero)",
                           scaling_names[k], (long long)i, v);
            d->scaling[k][i] = v;
        }
    }
    return CUMLP_SUCCESS;
}

/* ---- the whole file ------------------------------------------------------------------------ */

static cumlp_status parse_header_json(const reader *r, const unsigned char *text, size_t size,
                                      cumlp_json **header) {
    char why[200];
    cumlp_json_failure failure;
    size_t max_values = size / MIN_BYTES_PER_VALUE + HEADER_VALUE_SLACK;
    if (!cumlp__json_parse((const char *)text, size, max_values, header, why, sizeof why,
                           &failure)) {
        if (failure == CUMLP_JSON_OUT_OF_MEMORY)
            return cumlp__fail(r->ctx, CUMLP_ERROR_ALLOC_FAILED, r->func, "out of host memory");
        if (failure == CUMLP_JSON_TOO_MANY_VALUES)
            return bad(r, CUMLP_ERROR_SIZE_LIMIT,
                       "the %zu-byte header holds more than %zu JSON values (the limit is one per "
                       "%d bytes, plus %d)",
                       size, max_values, MIN_BYTES_PER_VALUE, HEADER_VALUE_SLACK);
        return bad(r, CUMLP_ERROR_FORMAT, "bad header: %s", why);
    }
    if ((*header)->type != CUMLP_JSON_OBJECT) {
        cumlp__json_free(*header);
        *header = NULL;
        return bad(r, CUMLP_ERROR_FORMAT, "the header is not a JSON object");
    }
    return CUMLP_SUCCESS;
}

/* Splits the file into header and payload and parses the header. */
static cumlp_status read_header(reader *r, const unsigned char *data, size_t size,
                                cumlp_json **header) {
    if (size < 8)
        return bad(r, CUMLP_ERROR_TRUNCATED,
                   "%zu bytes: too short for the 8-byte header length of safetensors", size);
    uint64_t length = get_u64_le(data);
    if (length > MAX_HEADER_BYTES)
        return bad(r, CUMLP_ERROR_SIZE_LIMIT, "header length %llu exceeds the limit of %llu bytes",
                   (unsigned long long)length, (unsigned long long)MAX_HEADER_BYTES);
    if (length > size - 8)
        return bad(r, CUMLP_ERROR_TRUNCATED,
                   "header length %llu, but only %zu bytes follow the length field",
                   (unsigned long long)length, size - 8);
    r->payload = data + 8 + length;
    r->payload_size = size - 8 - (size_t)length;
    return parse_header_json(r, data + 8, (size_t)length, header);
}

/* Checks everything and decodes a checkpoint image into *d (freed on failure). */
static cumlp_status decode(reader *r, const unsigned char *data, size_t size, decoded *d) {
    memset(d, 0, sizeof *d);
    r->file = data;
    r->file_size = size;
    cumlp_json *header = NULL;
    expected_tensor *list = NULL, scaling[SCALING_TENSORS];
    size_t count = 0;
    uint32_t crc = 0;
    cumlp_status st = read_header(r, data, size, &header);
    if (st == CUMLP_SUCCESS) st = parse_metadata(r, header, d, &crc);
    unsigned parts = decoded_parts(d);
    /* Before allocating per expected tensor: a small file must not declare 2^20 layers. */
    size_t needed = (size_t)d->num_layers * 2 * (size_t)part_count(parts);
    if (st == CUMLP_SUCCESS && header->count - 1 < needed)
        st = bad(r, CUMLP_ERROR_FORMAT, "the header lists %zu tensors, the architecture needs %zu",
                 header->count - 1, needed);
    if (st == CUMLP_SUCCESS) st = expect_tensors(r, d, parts, &list, &count);
    if (st == CUMLP_SUCCESS) expect_scaling(d, scaling);
    if (st == CUMLP_SUCCESS) st = match_tensors(r, header, d, parts, list, count, scaling);
    uint32_t actual = 0;
    if (st == CUMLP_SUCCESS) st = actual_crc(r, &actual);
    if (st == CUMLP_SUCCESS && actual != crc)
        st = bad(r, CUMLP_ERROR_CHECKSUM, "the %s's CRC-32 is %08lx, the header says %08lx",
                 r->version == 1 ? "payload" : "file", (unsigned long)actual, (unsigned long)crc);
    if (st == CUMLP_SUCCESS) st = decode_payload(r, d, list, count, parts);
    if (st == CUMLP_SUCCESS) st = decode_scaling(r, d, scaling);
    free(list);
    cumlp__json_free(header);
    if (st != CUMLP_SUCCESS) decoded_free(d);
    return st;
}

/* Reads a whole regular file into memory. O_NONBLOCK keeps open() from waiting for a FIFO's
 * writer (or a device); anything but a regular file is refused, then blocking reads come back. */
static cumlp_status read_file(const reader *r, const char *path, unsigned char **data,
                              size_t *size) {
    *data = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return bad(r, CUMLP_ERROR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    cumlp_status st = CUMLP_SUCCESS;
    int flags;
    if (fstat(fd, &sb) != 0) {
        st = bad(r, CUMLP_ERROR_IO, "cannot stat: %s", strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        st = bad(r, CUMLP_ERROR_IO, "not a regular file (%s)", cumlp__file_kind(sb.st_mode));
    } else if ((flags = fcntl(fd, F_GETFL)) == -1 ||
               fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
        st = bad(r, CUMLP_ERROR_IO, "cannot set blocking reads: %s", strerror(errno));
    } else if ((uint64_t)sb.st_size > SIZE_MAX - 1) {
        st = bad(r, CUMLP_ERROR_SIZE_LIMIT, "the file is too large for this machine");
    } else {
        *size = (size_t)sb.st_size;
        *data = malloc(*size ? *size : 1);
        if (!*data)
            st = cumlp__fail(r->ctx, CUMLP_ERROR_ALLOC_FAILED, r->func, "out of host memory");
    }
    size_t done = 0;
    while (st == CUMLP_SUCCESS && done < *size) {
        ssize_t n = read(fd, *data + done, *size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) st = bad(r, CUMLP_ERROR_IO, "read failed: %s", strerror(errno));
        if (n == 0) st = bad(r, CUMLP_ERROR_TRUNCATED, "the file shrank while being read");
        if (n > 0) done += (size_t)n;
    }
    close(fd);
    if (st != CUMLP_SUCCESS) {
        free(*data);
        *data = NULL;
    }
    return st;
}

/* Reads and decodes the file at path (or the image at data when path is NULL). */
static cumlp_status decode_source(reader *r, const char *path, const void *data, size_t size,
                                  decoded *d) {
    if (r->flags & ~KNOWN_FLAGS)
        return cumlp__fail(r->ctx, CUMLP_ERROR_INVALID_VALUE, r->func, "unknown flags %#x",
                           (unsigned)r->flags);
    if (!path) return decode(r, data, size, d);
    unsigned char *image;
    cumlp_status st = read_file(r, path, &image, &size);
    if (st == CUMLP_SUCCESS) st = decode(r, image, size, d);
    free(image);
    return st;
}

/* ---- making or filling networks ------------------------------------------------------------ */

/* Uploads host arrays to fresh device buffers, so that a failure changes no existing buffer. */
static cumlp_status stage(cumlp_context *ctx, const float *host, size_t count, void **buffer) {
    cumlp_status st = ctx->ops->alloc(ctx, count, buffer);
    if (st == CUMLP_SUCCESS) st = ctx->ops->upload(ctx, *buffer, host, count);
    if (st != CUMLP_SUCCESS) {
        ctx->ops->free(ctx, *buffer);
        *buffer = NULL;
    }
    return st;
}

/* What a load returns beside the network: each may be NULL (not wanted). */
typedef struct load_outputs {
    cumlp_optimizer **opt;
    cumlp_scaler **scaler;
    cumlp_model_info *info;
} load_outputs;

static cumlp_status create_from(cumlp_context *ctx, const decoded *d, cumlp_network **net_out,
                                const load_outputs *out) {
    cumlp_optimizer **opt_out = out->opt;
    cumlp_scaler *scaler = NULL;
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.loss = d->loss;
    o.leaky_relu_slope = d->slope;
    cumlp_network *net = NULL;
    cumlp_optimizer *opt = NULL;
    cumlp_status st = cumlp_network_create(ctx, d->num_layers, d->widths, d->activations, &o, &net);
    if (st == CUMLP_SUCCESS) st = ctx->ops->upload(ctx, net->params, d->params, d->num_params);
    if (st == CUMLP_SUCCESS) cumlp__network_parameters_changed(net);
    if (st == CUMLP_SUCCESS && opt_out && d->has_scaler) net->scaler = d->scaler;
    if (st == CUMLP_SUCCESS && opt_out && d->has_optimizer) {
        st = cumlp_optimizer_create(net, &d->opt_options, &opt);
        for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES && st == CUMLP_SUCCESS; k++)
            if (d->states[k])
                st = ctx->ops->upload(ctx, opt->state[k], d->states[k], d->num_params);
        if (st == CUMLP_SUCCESS) {
            opt->steps = d->steps;
            opt->nadam_mu_product = d->mu_product;
        }
    }
    if (st == CUMLP_SUCCESS && out->scaler && d->scaling[0])
        st = cumlp_scaler_create(ctx, d->widths[0], d->scaling[0], d->scaling[1], &scaler);
    if (st != CUMLP_SUCCESS) {
        cumlp_optimizer_destroy(opt);
        cumlp_network_destroy(net);
        return st;
    }
    *net_out = net;
    if (opt_out) *opt_out = opt;
    if (out->scaler) *out->scaler = scaler;
    if (out->info) *out->info = d->info;
    return CUMLP_SUCCESS;
}

static cumlp_status load_common(cumlp_context *ctx, const char *func, const char *path,
                                const void *data, size_t size, int flags, cumlp_network **net,
                                const load_outputs *out) {
    /* The public entry points have already set *net, *opt and *scaler to NULL. */
    if (!ctx) return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "ctx is NULL");
    if (!net) return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "net is NULL");
    if (ctx->sticky) return ctx->sticky;
    reader r = {.ctx = ctx, .func = func, .name = path ? path : MEMORY_NAME, .flags = flags};
    decoded d;
    cumlp_status st = decode_source(&r, path, data, size, &d);
    if (st != CUMLP_SUCCESS) return st;
    st = create_from(ctx, &d, net, out);
    decoded_free(&d);
    return st;
}

static cumlp_status load_path(cumlp_context *ctx, const char *func, const char *path, int flags,
                              cumlp_network **net, const load_outputs *out) {
    if (net) *net = NULL;
    if (out->opt) *out->opt = NULL;
    if (out->scaler) *out->scaler = NULL;
    if (ctx && !path) return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "path is NULL");
    return load_common(ctx, func, path, NULL, 0, flags, net, out);
}

static cumlp_status load_memory(cumlp_context *ctx, const char *func, const void *data, size_t size,
                                int flags, cumlp_network **net, const load_outputs *out) {
    if (net) *net = NULL;
    if (out->opt) *out->opt = NULL;
    if (out->scaler) *out->scaler = NULL;
    if (ctx && !data && size == 0 && net)
        return cumlp__fail(ctx, CUMLP_ERROR_TRUNCATED, func, MEMORY_NAME ": the buffer is empty");
    if (ctx && !data) return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "data is NULL");
    return load_common(ctx, func, NULL, data, size, flags, net, out);
}

cumlp_status cumlp_checkpoint_load(cumlp_context *ctx, const char *path, int flags,
                                   cumlp_network **net, cumlp_optimizer **opt) {
    load_outputs out = {opt, NULL, NULL};
    return load_path(ctx, __func__, path, flags, net, &out);
}

cumlp_status cumlp_checkpoint_load_with(cumlp_context *ctx, const char *path, int flags,
                                        cumlp_network **net, cumlp_optimizer **opt,
                                        cumlp_scaler **scaler, cumlp_model_info *info) {
    load_outputs out = {opt, scaler, info};
    return load_path(ctx, __func__, path, flags, net, &out);
}

cumlp_status cumlp_checkpoint_load_memory(cumlp_context *ctx, const void *data, size_t size,
                                          int flags, cumlp_network **net, cumlp_optimizer **opt) {
    load_outputs out = {opt, NULL, NULL};
    return load_memory(ctx, __func__, data, size, flags, net, &out);
}

cumlp_status cumlp_checkpoint_load_memory_with(cumlp_context *ctx, const void *data, size_t size,
                                               int flags, cumlp_network **net,
                                               cumlp_optimizer **opt, cumlp_scaler **scaler,
                                               cumlp_model_info *info) {
    load_outputs out = {opt, scaler, info};
    return load_memory(ctx, __func__, data, size, flags, net, &out);
}

/* Whether an existing network has the file's architecture. */
static int same_architecture(const cumlp_network *net, const decoded *d) {
    if (net->num_layers != d->num_layers || net->loss != d->loss) return 0;
    int uses_slope = 0;
    for (int l = 0; l < d->num_layers; l++) {
        const cumlp_layer *L = &net->layers[l];
        if (L->fan_in != d->widths[l] || L->fan_out != d->widths[l + 1] ||
            L->activation != d->activations[l])
            return 0;
        uses_slope |= L->activation == CUMLP_ACT_LEAKY_RELU;
    }
    return !uses_slope || net->leaky_slope == d->slope;
}

/* Stages everything on the device first, then copies into net and opt. */
static cumlp_status fill_existing(cumlp_network *net, cumlp_optimizer *opt, const decoded *d) {
    cumlp_context *ctx = net->ctx;
    unsigned parts = opt ? decoded_parts(d) : 1u;
    void *staged[MAX_PARTS] = {NULL};
    const float *host[MAX_PARTS] = {d->params};
    void *targets[MAX_PARTS] = {net->params};
    for (int k = 1; k < MAX_PARTS; k++) {
        host[k] = d->states[k - 1];
        targets[k] = opt ? opt->state[k - 1] : NULL;
    }
    cumlp_status st = CUMLP_SUCCESS;
    for (int i = 0; i < MAX_PARTS && st == CUMLP_SUCCESS; i++)
        if (has_part(parts, i)) st = stage(ctx, host[i], d->num_params, &staged[i]);
    for (int i = 0; i < MAX_PARTS && st == CUMLP_SUCCESS; i++)
        if (has_part(parts, i)) st = ctx->ops->copy(ctx, targets[i], staged[i], d->num_params);
    if (st == CUMLP_SUCCESS) st = ctx->ops->synchronize(ctx);
    cumlp__network_parameters_changed(net);
    for (int i = 0; i < MAX_PARTS; i++)
        ctx->ops->free(ctx, staged[i]);
    if (st == CUMLP_SUCCESS && opt && d->has_optimizer) {
        opt->steps = d->steps;
        opt->nadam_mu_product = d->mu_product;
        if (d->has_scaler) net->scaler = d->scaler;
    }
    return st;
}

cumlp_status cumlp_checkpoint_load_into(cumlp_network *net, cumlp_optimizer *opt, const char *path,
                                        int flags) {
    CUMLP_FAIL_IF(!net, NULL, CUMLP_ERROR_INVALID_VALUE, "net is NULL");
    cumlp_context *ctx = net->ctx;
    CUMLP_FAIL_IF(!path, ctx, CUMLP_ERROR_INVALID_VALUE, "path is NULL");
    CUMLP_FAIL_IF(opt && opt->net != net, ctx, CUMLP_ERROR_INVALID_VALUE,
                  "the optimizer was created for another network");
    if (ctx->sticky) return ctx->sticky;
    cumlp_status settled = cumlp__network_settle(net); /* what queued steps would overwrite */
    if (settled != CUMLP_SUCCESS) return settled;
    reader r = {.ctx = ctx, .func = __func__, .name = path, .flags = flags};
    decoded d;
    cumlp_status st = decode_source(&r, path, NULL, 0, &d);
    if (st != CUMLP_SUCCESS) return st;
    if (!same_architecture(net, &d)) {
        st = bad(&r, CUMLP_ERROR_SHAPE_MISMATCH,
                 "the checkpoint's architecture (widths, activations, loss) differs from the "
                 "network's");
    } else if (opt && d.has_optimizer && opt->options.type != d.opt_options.type) {
        st = bad(&r, CUMLP_ERROR_SHAPE_MISMATCH,
                 "the checkpoint holds %s state, the optimizer is %s",
                 cumlp_optimizer_name(d.opt_options.type), cumlp_optimizer_name(opt->options.type));
    } else if (opt && d.has_optimizer &&
               cumlp__optimizer_state_slots(&opt->options) !=
                   cumlp__optimizer_state_slots(&d.opt_options)) {
        st = bad(&r, CUMLP_ERROR_SHAPE_MISMATCH,
                 "the checkpoint's %s state arrays differ from the optimizer's (its momentum or "
                 "centered option differs)",
                 cumlp_optimizer_name(d.opt_options.type));
    } else {
        st = fill_existing(net, opt, &d);
    }
    decoded_free(&d);
    return st;
}
