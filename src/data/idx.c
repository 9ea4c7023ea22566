/* idx.c - the IDX reader (MNIST, Fashion-MNIST), plain or gzip-compressed. */
#include "data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Largest decompressed size accepted: the largest dataset stored as float64, plus a header. */
#define MAX_DECOMPRESSED ((uint64_t)CUMLP_DATASET_MAX_ELEMENTS * 8u + 4096u)
#define MAX_IDX_DIMS     8

/* A parsed IDX header and where its data starts. */
typedef struct idx_file {
    const char *name;
    const unsigned char *bytes;
    size_t size;
    int type;         /* 0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32, 0x0D float, 0x0E double */
    size_t elem_size; /* bytes per element */
    int ndims;
    uint32_t dims[MAX_IDX_DIMS];
    size_t data_offset; /* byte offset of the first element */
    int64_t count;      /* dims[0] */
    int64_t per_item;   /* product of dims[1..] (1 for a labels file) */
} idx_file;

static int is_gzip(const unsigned char *b, size_t size) {
    return size >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static size_t type_size(int type) {
    switch (type) {
    case 0x08:
    case 0x09:
        return 1;
    case 0x0B:
        return 2;
    case 0x0C:
    case 0x0D:
        return 4;
    case 0x0E:
        return 8;
    default:
        return 0;
    }
}

/* The total size that an IDX header at b[0..len) announces, with the limits parse_header applies:
 * 1 and *size when the header is complete and acceptable, 0 while it is incomplete, -1 when it
 * is malformed or over a limit (parse_header then reports why). */
static int announced_size(const unsigned char *b, size_t len, uint64_t *size) {
    if (len < 4) return 0;
    if (b[0] != 0 || b[1] != 0 || type_size(b[2]) == 0 || b[3] < 1 || b[3] > MAX_IDX_DIMS)
        return -1;
    size_t data_offset = 4 + 4 * (size_t)b[3];
    if (len < data_offset) return 0;
    int64_t per_item = 1, elements;
    for (int d = 1; d < b[3]; d++)
        if (be32(b + 4 + 4 * d) == 0 ||
            !cumlp__mul_size(per_item, be32(b + 4 + 4 * d), CUMLP_MAX_DIM, &per_item))
            return -1;
    if (be32(b + 4) == 0 ||
        !cumlp__mul_size(be32(b + 4), per_item, CUMLP_DATASET_MAX_ELEMENTS, &elements))
        return -1;
    *size = (uint64_t)data_offset + (uint64_t)elements * type_size(b[2]);
    return 1;
}

/* Inflates a whole gzip stream into a new buffer that grows as data arrives (never trusting a
 * size announced by the gzip trailer, so a small corrupt file cannot make a huge allocation). As
 * soon as the IDX header is out, inflating stops at the size it announces: a gzip bomb behind a
 * small header fails at once instead of filling memory. When the header is malformed, inflating
 * stops there too and the partial data is returned for parse_header to report. */
static cumlp_status gunzip(cumlp_context *ctx, const char *name, const unsigned char *in,
                           size_t in_size, unsigned char **out, size_t *out_size) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "%s: cannot start zlib", name);
    size_t cap = in_size * 4 + 1024, len = 0;
    unsigned char *buf = malloc(cap);
    cumlp_status st = buf ? CUMLP_SUCCESS
                          : cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "%s: out of memory", name);
    size_t consumed = 0;
    uint64_t limit = MAX_DECOMPRESSED; /* the announced size, once the header is known */
    int header = 0;                    /* 1: limit is the header's size; -1: bad header */
    int rc = Z_OK;
    while (st == CUMLP_SUCCESS) {
        if (header == 0) header = announced_size(buf, len, &limit);
        if (header < 0) break;
        if ((uint64_t)len > limit) {
            st = cumlp__error(ctx, CUMLP_ERROR_FORMAT,
                              "%s: the gzip data inflates past the %llu bytes its IDX header "
                              "announces (at compressed byte %zu)",
                              name, (unsigned long long)limit, consumed);
            break;
        }
        if (rc == Z_STREAM_END) break;
        if (len == cap) {
            size_t want = cap * 2;
            if (header > 0 && (uint64_t)want > limit + 1) want = (size_t)limit + 1;
            unsigned char *bigger = cap < MAX_DECOMPRESSED ? realloc(buf, want) : NULL;
            if (!bigger) {
                st = cumlp__error(
                    ctx, cap < MAX_DECOMPRESSED ? CUMLP_ERROR_ALLOC_FAILED : CUMLP_ERROR_SIZE_LIMIT,
                    "%s: decompressed data exceeds %zu bytes", name, cap);
                break;
            }
            buf = bigger;
            cap = want;
        }
        size_t in_chunk = in_size - consumed > UINT_MAX ? UINT_MAX : in_size - consumed;
        size_t out_chunk = cap - len > UINT_MAX ? UINT_MAX : cap - len;
        /* one byte past the announced size is enough to tell that there is too much */
        if (header > 0 && out_chunk > limit + 1 - len) out_chunk = (size_t)(limit + 1 - len);
        zs.next_in = (unsigned char *)(uintptr_t)(in + consumed);
        zs.avail_in = (uInt)in_chunk;
        zs.next_out = buf + len;
        zs.avail_out = (uInt)out_chunk;
        rc = inflate(&zs, Z_NO_FLUSH);
        consumed += in_chunk - zs.avail_in;
        len += out_chunk - zs.avail_out;
        if (rc == Z_STREAM_END) continue; /* the size is checked at the top */
        if (rc == Z_BUF_ERROR && consumed == in_size)
            st = cumlp__error(ctx, CUMLP_ERROR_TRUNCATED,
                              "%s: the gzip stream ends early, at compressed byte %zu", name,
                              consumed);
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            st =
                cumlp__error(ctx, rc == Z_MEM_ERROR ? CUMLP_ERROR_ALLOC_FAILED : CUMLP_ERROR_FORMAT,
                             "%s: corrupt gzip data near compressed byte %zu (%s)", name, consumed,
                             zs.msg ? zs.msg : "zlib error");
    }
    inflateEnd(&zs);
    if (st == CUMLP_SUCCESS && header >= 0 && consumed != in_size)
        st = cumlp__error(ctx, CUMLP_ERROR_FORMAT,
                          "%s: %zu bytes of trailing data after the gzip stream, at byte %zu", name,
                          in_size - consumed, consumed);
    if (st != CUMLP_SUCCESS) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_size = len;
    return CUMLP_SUCCESS;
}

/* Element i of the data as a double (big-endian, per the type). */
static double element(const idx_file *f, int64_t i) {
    const unsigned char *p = f->bytes + f->data_offset + (size_t)i * f->elem_size;
    switch (f->type) {
    case 0x08:
        return p[0];
    case 0x09:
        return (signed char)p[0];
    case 0x0B:
        return (int16_t)(uint16_t)((unsigned)p[0] << 8 | p[1]);
    case 0x0C:
        return (int32_t)be32(p);
    case 0x0D: {
        uint32_t bits = be32(p);
        float v;
        memcpy(&v, &bits, sizeof v);
        return v;
    }
    default: {
        uint64_t bits = (uint64_t)be32(p) << 32 | be32(p + 4);
        double v;
        memcpy(&v, &bits, sizeof v);
        return v;
    }
    }
}

static cumlp_status parse_header(cumlp_context *ctx, idx_file *f) {
    const unsigned char *b = f->bytes;
    if (f->size < 4)
        return cumlp__error(ctx, CUMLP_ERROR_TRUNCATED,
                            "%s: %zu bytes, too short for the 4-byte IDX magic", f->name, f->size);
    if (b[0] != 0 || b[1] != 0 || type_size(b[2]) == 0 || b[3] < 1 || b[3] > MAX_IDX_DIMS)
        return cumlp__error(ctx, CUMLP_ERROR_FORMAT,
                            "%s: bad IDX magic %02x %02x %02x %02x at byte 0 (expected 00 00, a "
                            "type 08/09/0B/0C/0D/0E and 1 to %d dimensions)",
                            f->name, b[0], b[1], b[2], b[3], MAX_IDX_DIMS);
    f->type = b[2];
    f->elem_size = type_size(b[2]);
    f->ndims = b[3];
    f->data_offset = 4 + 4 * (size_t)f->ndims;
    if (f->size < f->data_offset)
        return cumlp__error(ctx, CUMLP_ERROR_TRUNCATED,
                            "%s: the header of %d dimensions needs %zu bytes but the file has %zu",
                            f->name, f->ndims, f->data_offset, f->size);
    int64_t per_item = 1;
    for (int d = 0; d < f->ndims; d++) {
        f->dims[d] = be32(b + 4 + 4 * d);
        if (f->dims[d] == 0)
            return cumlp__error(ctx, CUMLP_ERROR_FORMAT, "%s: dimension %d is 0 (byte %d)", f->name,
                                d, 4 + 4 * d);
        if (d > 0 && !cumlp__mul_size(per_item, f->dims[d], CUMLP_MAX_DIM, &per_item))
            return cumlp__error(ctx, CUMLP_ERROR_SIZE_LIMIT,
                                "%s: the item size overflows at dimension %d (byte %d)", f->name, d,
                                4 + 4 * d);
    }
    f->count = f->dims[0];
    f->per_item = per_item;
    int64_t elements;
    if (!cumlp__mul_size(f->count, per_item, CUMLP_DATASET_MAX_ELEMENTS, &elements))
        return cumlp__error(ctx, CUMLP_ERROR_SIZE_LIMIT,
                            "%s: %lld items of %lld values exceed the dataset size limit", f->name,
                            (long long)f->count, (long long)per_item);
    uint64_t need = (uint64_t)f->data_offset + (uint64_t)elements * f->elem_size;
    if ((uint64_t)f->size < need)
        return cumlp__error(ctx, CUMLP_ERROR_TRUNCATED,
                            "%s: the header announces %llu bytes but the data ends at byte %zu",
                            f->name, (unsigned long long)need, f->size);
    if ((uint64_t)f->size > need)
        return cumlp__error(ctx, CUMLP_ERROR_FORMAT,
                            "%s: %llu bytes of trailing data after the announced end, at byte %llu",
                            f->name, (unsigned long long)((uint64_t)f->size - need),
                            (unsigned long long)need);
    return CUMLP_SUCCESS;
}

/* Checks the labels and finds the class count (num_classes, or the largest label + 1). */
static cumlp_status check_labels(cumlp_context *ctx, const idx_file *lab, int num_classes,
                                 int *classes) {
    if (lab->ndims != 1)
        return cumlp__error(ctx, CUMLP_ERROR_FORMAT,
                            "%s: a labels file has 1 dimension, this one %d (byte 3)", lab->name,
                            lab->ndims);
    if (lab->type == 0x0D || lab->type == 0x0E)
        return cumlp__error(ctx, CUMLP_ERROR_FORMAT,
                            "%s: labels must have an integer type, not type %02x (byte 2)",
                            lab->name, lab->type);
    int limit = num_classes > 0 ? num_classes : CUMLP_MAX_INFERRED_CLASSES;
    int largest = 0;
    for (int64_t i = 0; i < lab->count; i++) {
        double v = element(lab, i);
        if (v < 0 || v >= limit)
            return cumlp__error(
                ctx, num_classes > 0 ? CUMLP_ERROR_INVALID_VALUE : CUMLP_ERROR_SIZE_LIMIT,
                "%s: label %.0f at byte %zu is outside [0, %d)", lab->name, v,
                lab->data_offset + (size_t)i * lab->elem_size, limit);
        if ((int)v > largest) largest = (int)v;
    }
    *classes = num_classes > 0 ? num_classes : largest + 1;
    return CUMLP_SUCCESS;
}

static cumlp_status fill_dataset(cumlp_context *ctx, const idx_file *img, const idx_file *lab,
                                 cumlp_dataset *ds) {
    int64_t total = img->count * img->per_item;
    for (int64_t i = 0; i < total; i++) {
        double v = element(img, i);
        float fv = (float)v;
        if (!isfinite(fv))
            return cumlp__error(ctx, CUMLP_ERROR_NON_FINITE,
                                "%s: value %g at byte %zu is not a finite fp32 number", img->name,
                                v, img->data_offset + (size_t)i * img->elem_size);
        ds->x[i] = fv;
    }
    for (int64_t i = 0; lab && i < lab->count; i++) {
        int64_t label = (int64_t)element(lab, i);
        ds->y[i * ds->n_outputs + label] = 1.0f;
    }
    return CUMLP_SUCCESS;
}

static cumlp_status read_pair(cumlp_context *ctx, const char *func, idx_file *img, idx_file *lab,
                              int num_classes, cumlp_dataset **out) {
    /* without labels (lab NULL): one target per sample, 0 */
    cumlp_status st = parse_header(ctx, img);
    if (st == CUMLP_SUCCESS && lab) st = parse_header(ctx, lab);
    int classes = 0;
    if (st == CUMLP_SUCCESS && lab) st = check_labels(ctx, lab, num_classes, &classes);
    if (st == CUMLP_SUCCESS && lab && img->count != lab->count)
        st = cumlp__error(ctx, CUMLP_ERROR_SIZE_LIMIT,
                          "%s holds %lld items but %s holds %lld labels", img->name,
                          (long long)img->count, lab->name, (long long)lab->count);
    cumlp_dataset *ds = NULL;
    if (st == CUMLP_SUCCESS)
        st = cumlp__dataset_new(ctx, func, img->per_item, lab ? classes : 1, img->count, classes,
                                &ds);
    if (st == CUMLP_SUCCESS) st = fill_dataset(ctx, img, lab, ds);
    if (st != CUMLP_SUCCESS) {
        cumlp_dataset_destroy(ds);
        return st;
    }
    *out = ds;
    return CUMLP_SUCCESS;
}

/* Sets f to the bytes, inflating gzip data into *owned (freed by the caller). */
static cumlp_status open_bytes(cumlp_context *ctx, const char *name, const void *data, size_t size,
                               idx_file *f, unsigned char **owned) {
    memset(f, 0, sizeof *f);
    f->name = name;
    f->bytes = data;
    f->size = size;
    if (!is_gzip(data, size)) return CUMLP_SUCCESS;
    cumlp_status st = gunzip(ctx, name, data, size, owned, &f->size);
    f->bytes = *owned;
    return st;
}

static cumlp_status read_buffers(cumlp_context *ctx, const char *func, const char *img_name,
                                 const void *images, size_t images_size, const char *lab_name,
                                 const void *labels, size_t labels_size, int num_classes,
                                 cumlp_dataset **ds) {
    idx_file img, lab;
    unsigned char *img_owned = NULL, *lab_owned = NULL;
    cumlp_status st = open_bytes(ctx, img_name, images, images_size, &img, &img_owned);
    if (st == CUMLP_SUCCESS && labels)
        st = open_bytes(ctx, lab_name, labels, labels_size, &lab, &lab_owned);
    if (st == CUMLP_SUCCESS) st = read_pair(ctx, func, &img, labels ? &lab : NULL, num_classes, ds);
    free(img_owned);
    free(lab_owned);
    return st;
}

static cumlp_status check_args(cumlp_context *ctx, const char *func, const void *a, const void *b,
                               int num_classes, cumlp_dataset **ds) {
    if (!ds) return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "ds is NULL");
    *ds = NULL;
    if (!a) return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "the images are NULL");
    if (!b && num_classes != 0)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "num_classes is %d but there are no labels", num_classes);
    if (num_classes < 0 || num_classes > CUMLP_MAX_INFERRED_CLASSES)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "num_classes %d is outside [0, %d]", num_classes,
                           CUMLP_MAX_INFERRED_CLASSES);
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_dataset_read_idx_memory(cumlp_context *ctx, const void *images,
                                           size_t images_size, const void *labels,
                                           size_t labels_size, int num_classes,
                                           cumlp_dataset **ds) {
    cumlp_status st = check_args(ctx, __func__, images, labels, num_classes, ds);
    if (st != CUMLP_SUCCESS) return st;
    return read_buffers(ctx, __func__, "<memory images>", images, images_size, "<memory labels>",
                        labels, labels_size, num_classes, ds);
}

cumlp_status cumlp_dataset_read_idx(cumlp_context *ctx, const char *images_path,
                                    const char *labels_path, int num_classes, cumlp_dataset **ds) {
    cumlp_status st = check_args(ctx, __func__, images_path, labels_path, num_classes, ds);
    if (st != CUMLP_SUCCESS) return st;
    char *images = NULL, *labels = NULL;
    size_t images_size = 0, labels_size = 0;
    st = cumlp__read_file(ctx, images_path, &images, &images_size);
    if (st == CUMLP_SUCCESS && labels_path)
        st = cumlp__read_file(ctx, labels_path, &labels, &labels_size);
    if (st == CUMLP_SUCCESS)
        st = read_buffers(ctx, __func__, images_path, images, images_size, labels_path, labels,
                          labels_size, num_classes, ds);
    free(images);
    free(labels);
    return st;
}
