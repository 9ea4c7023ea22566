/* idx.c - the IDX reader (MNIST, Fashion-MNIST), plain or gzip-compressed.
 *
 * The bytes are streamed: a file is read in chunks and, when it is gzip data, inflated chunk by
 * chunk, and each element is converted to fp32 as it arrives. Neither the file nor its inflated
 * form is ever held whole: reading the 47 MB of Fashion-MNIST's training images costs the 188 MB
 * of their features and a few chunks. A plain source's size is checked against its header before
 * anything is allocated; a gzip source's announced size is checked against the most its
 * compressed bytes can inflate to (deflate's limit, 1032:1), so that a small file announcing a
 * huge count allocates nothing, and inflating stops one byte past the size the header announces
 * (a gzip bomb behind a small header fails at once). */
#define _POSIX_C_SOURCE 200809L /* read, fstat */

#include "data_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_IDX_DIMS 8
#define CHUNK        ((size_t)1 << 16) /* bytes read from a file, and decoded, at a time */
#define MAX_INFLATE  1032u             /* deflate's largest ratio of output to input bytes */

/* ---- sources: the decoded bytes of a buffer or a file, plain or gzip ----------------------- */

typedef struct idx_source {
    cumlp_context *ctx;
    const char *name;
    int fd;                   /* -1: the raw bytes are a buffer in memory */
    const unsigned char *raw; /* raw bytes not consumed yet: the buffer's, or a chunk of fd */
    size_t raw_len;
    unsigned char *chunk; /* fd's read buffer */
    uint64_t raw_used;    /* raw bytes consumed before raw (compressed byte offsets) */
    uint64_t raw_size;    /* the whole source's raw size */
    int gzip, inflating;  /* gzip data; inflateInit2 done */
    int stream_end;       /* inflate saw the end of the gzip stream */
    z_stream zs;
    uint64_t offset; /* decoded bytes delivered so far */
} idx_source;

/* Reads the next chunk of the file into raw (raw_len 0 at the end of the file). */
static cumlp_status refill(idx_source *s) {
    if (s->fd < 0 || s->raw_len > 0) return CUMLP_SUCCESS;
    for (;;) {
        ssize_t n = read(s->fd, s->chunk, CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return cumlp__error(s->ctx, CUMLP_ERROR_IO, "%s: read error at byte %llu: %s", s->name,
                                (unsigned long long)s->raw_used, strerror(errno));
        s->raw = s->chunk;
        s->raw_len = (size_t)n;
        return CUMLP_SUCCESS;
    }
}

static void consume_raw(idx_source *s, size_t n) {
    s->raw += n;
    s->raw_len -= n;
    s->raw_used += n;
}

static cumlp_status source_start(idx_source *s) {
    cumlp_status st = refill(s);
    if (st != CUMLP_SUCCESS) return st;
    s->gzip = s->raw_len >= 2 && s->raw[0] == 0x1f && s->raw[1] == 0x8b;
    if (!s->gzip) return CUMLP_SUCCESS;
    if (inflateInit2(&s->zs, 16 + MAX_WBITS) != Z_OK)
        return cumlp__error(s->ctx, CUMLP_ERROR_ALLOC_FAILED, "%s: cannot start zlib", s->name);
    s->inflating = 1;
    return CUMLP_SUCCESS;
}

static cumlp_status open_memory(idx_source *s, cumlp_context *ctx, const char *name,
                                const void *data, size_t size) {
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
    s->name = name;
    s->fd = -1;
    s->raw = data;
    s->raw_len = size;
    s->raw_size = size;
    return source_start(s);
}

static cumlp_status open_file(idx_source *s, cumlp_context *ctx, const char *path) {
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
    s->name = path;
    s->fd = -1;
    cumlp_status st = cumlp__open_regular(ctx, path, &s->fd);
    struct stat sb;
    if (st == CUMLP_SUCCESS && fstat(s->fd, &sb) != 0)
        st = cumlp__error(ctx, CUMLP_ERROR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (st == CUMLP_SUCCESS) {
        s->raw_size = (uint64_t)sb.st_size;
        s->chunk = malloc(CHUNK);
        if (!s->chunk) st = cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "%s: out of memory", path);
    }
    return st == CUMLP_SUCCESS ? source_start(s) : st;
}

static void source_close(idx_source *s) {
    if (s->inflating) inflateEnd(&s->zs);
    if (s->fd >= 0) close(s->fd);
    free(s->chunk);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* Inflates into dst[0..n); *got < n only at the end of the gzip stream. */
static cumlp_status inflate_into(idx_source *s, unsigned char *dst, size_t n, size_t *got) {
    *got = 0;
    while (*got < n && !s->stream_end) {
        cumlp_status st = refill(s);
        if (st != CUMLP_SUCCESS) return st;
        size_t in = s->raw_len > UINT_MAX ? UINT_MAX : s->raw_len;
        size_t out = n - *got > UINT_MAX ? UINT_MAX : n - *got;
        s->zs.next_in = (unsigned char *)(uintptr_t)s->raw;
        s->zs.avail_in = (uInt)in;
        s->zs.next_out = dst + *got;
        s->zs.avail_out = (uInt)out;
        int rc = inflate(&s->zs, Z_NO_FLUSH);
        consume_raw(s, in - s->zs.avail_in);
        *got += out - s->zs.avail_out;
        if (rc == Z_STREAM_END) s->stream_end = 1;
        if (rc == Z_STREAM_END || rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR && s->raw_len == 0) {
            st = refill(s); /* a file's next chunk, or the end of the data */
            if (st == CUMLP_SUCCESS && s->raw_len > 0) continue;
            return st != CUMLP_SUCCESS ? st
                                       : cumlp__error(s->ctx, CUMLP_ERROR_TRUNCATED,
                                                      "%s: the gzip stream ends early, at "
                                                      "compressed byte %llu",
                                                      s->name, (unsigned long long)s->raw_used);
        }
        return cumlp__error(s->ctx,
                            rc == Z_MEM_ERROR ? CUMLP_ERROR_ALLOC_FAILED : CUMLP_ERROR_FORMAT,
                            "%s: corrupt gzip data near compressed byte %llu (%s)", s->name,
                            (unsigned long long)s->raw_used, s->zs.msg ? s->zs.msg : "zlib error");
    }
    return CUMLP_SUCCESS;
}

/* The next n decoded bytes into dst; *got < n only at the end of the data. */
static cumlp_status source_read(idx_source *s, unsigned char *dst, size_t n, size_t *got) {
    cumlp_status st = CUMLP_SUCCESS;
    if (s->gzip) {
        st = inflate_into(s, dst, n, got);
    } else {
        *got = 0;
        while (st == CUMLP_SUCCESS && *got < n) {
            st = refill(s);
            if (st != CUMLP_SUCCESS || s->raw_len == 0) break;
            size_t take = s->raw_len < n - *got ? s->raw_len : n - *got;
            memcpy(dst + *got, s->raw, take);
            consume_raw(s, take);
            *got += take;
        }
    }
    s->offset += *got;
    return st;
}

/* After the announced bytes: nothing more may follow, neither data nor bytes after a gzip
 * stream. */
static cumlp_status source_finish(idx_source *s) {
    unsigned char extra;
    size_t got = 0;
    if (!s->gzip) {
        cumlp_status st = refill(s);
        if (st != CUMLP_SUCCESS || s->raw_len == 0) return st;
        return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT,
                            "%s: %llu bytes of trailing data after the announced end, at byte %llu",
                            s->name, (unsigned long long)(s->raw_size - s->raw_used),
                            (unsigned long long)s->raw_used);
    }
    uint64_t announced = s->offset;
    cumlp_status st = inflate_into(s, &extra, 1, &got); /* one byte tells that there is more */
    if (st == CUMLP_SUCCESS && got > 0)
        return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT,
                            "%s: the gzip data inflates past the %llu bytes its IDX header "
                            "announces (at compressed byte %llu)",
                            s->name, (unsigned long long)announced,
                            (unsigned long long)s->raw_used);
    if (st == CUMLP_SUCCESS) st = refill(s);
    if (st == CUMLP_SUCCESS && s->raw_len > 0)
        return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT,
                            "%s: %llu bytes of trailing data after the gzip stream, at byte %llu",
                            s->name, (unsigned long long)(s->raw_size - s->raw_used),
                            (unsigned long long)s->raw_used);
    return st;
}

/* ---- headers and elements ------------------------------------------------------------------ */

/* A parsed IDX header. */
typedef struct idx_header {
    int type;         /* 0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32, 0x0D float, 0x0E double */
    size_t elem_size; /* bytes per element */
    int ndims;
    size_t data_offset; /* byte offset of the first element */
    int64_t count;      /* dims[0] */
    int64_t per_item;   /* product of dims[1..] (1 for a labels file) */
} idx_header;

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

/* An element of the given type at p (big-endian) as a double. */
static double element(int type, const unsigned char *p) {
    switch (type) {
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

/* Reads and checks the header; a plain source's size must be exactly what it announces. */
static cumlp_status read_header(idx_source *s, idx_header *h) {
    unsigned char b[4 + 4 * MAX_IDX_DIMS];
    size_t got;
    cumlp_status st = source_read(s, b, 4, &got);
    if (st != CUMLP_SUCCESS) return st;
    if (got < 4)
        return cumlp__error(s->ctx, CUMLP_ERROR_TRUNCATED,
                            "%s: %zu bytes, too short for the 4-byte IDX magic", s->name, got);
    if (b[0] != 0 || b[1] != 0 || type_size(b[2]) == 0 || b[3] < 1 || b[3] > MAX_IDX_DIMS)
        return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT,
                            "%s: bad IDX magic %02x %02x %02x %02x at byte 0 (expected 00 00, a "
                            "type 08/09/0B/0C/0D/0E and 1 to %d dimensions)",
                            s->name, b[0], b[1], b[2], b[3], MAX_IDX_DIMS);
    h->type = b[2];
    h->elem_size = type_size(b[2]);
    h->ndims = b[3];
    h->data_offset = 4 + 4 * (size_t)h->ndims;
    st = source_read(s, b + 4, h->data_offset - 4, &got);
    if (st != CUMLP_SUCCESS) return st;
    if (got < h->data_offset - 4)
        return cumlp__error(s->ctx, CUMLP_ERROR_TRUNCATED,
                            "%s: the header of %d dimensions needs %zu bytes but the file has %zu",
                            s->name, h->ndims, h->data_offset, 4 + got);
    int64_t per_item = 1;
    for (int d = 0; d < h->ndims; d++) {
        uint32_t dim = be32(b + 4 + 4 * d);
        if (dim == 0)
            return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT, "%s: dimension %d is 0 (byte %d)",
                                s->name, d, 4 + 4 * d);
        if (d > 0 && !cumlp__mul_size(per_item, dim, CUMLP_MAX_DIM, &per_item))
            return cumlp__error(s->ctx, CUMLP_ERROR_SIZE_LIMIT,
                                "%s: the item size overflows at dimension %d (byte %d)", s->name, d,
                                4 + 4 * d);
    }
    h->count = be32(b + 4);
    h->per_item = per_item;
    int64_t elements;
    if (!cumlp__mul_size(h->count, per_item, CUMLP_DATASET_MAX_ELEMENTS, &elements))
        return cumlp__error(s->ctx, CUMLP_ERROR_SIZE_LIMIT,
                            "%s: %lld items of %lld values exceed the dataset size limit", s->name,
                            (long long)h->count, (long long)per_item);
    uint64_t need = (uint64_t)h->data_offset + (uint64_t)elements * h->elem_size;
    if (!s->gzip && s->raw_size < need)
        return cumlp__error(s->ctx, CUMLP_ERROR_TRUNCATED,
                            "%s: the header announces %llu bytes but the data ends at byte %llu",
                            s->name, (unsigned long long)need, (unsigned long long)s->raw_size);
    if (!s->gzip && s->raw_size > need)
        return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT,
                            "%s: %llu bytes of trailing data after the announced end, at byte %llu",
                            s->name, (unsigned long long)(s->raw_size - need),
                            (unsigned long long)need);
    if (s->gzip && need / MAX_INFLATE > s->raw_size)
        return cumlp__error(s->ctx, CUMLP_ERROR_TRUNCATED,
                            "%s: the header announces %llu bytes, more than %llu bytes of gzip "
                            "data can hold",
                            s->name, (unsigned long long)need, (unsigned long long)s->raw_size);
    return CUMLP_SUCCESS;
}

/* Reads the header's count x per_item elements as fp32 into *values (malloc'ed), chunk by chunk,
 * then checks that nothing follows. */
static cumlp_status read_values(idx_source *s, const idx_header *h, float **values) {
    size_t total = (size_t)(h->count * h->per_item), done = 0;
    float *v = malloc(total * sizeof *v);
    unsigned char *buf = malloc(CHUNK);
    cumlp_status st = v && buf ? CUMLP_SUCCESS
                               : cumlp__error(s->ctx, CUMLP_ERROR_ALLOC_FAILED,
                                              "%s: out of memory for %zu values", s->name, total);
    size_t per_chunk = CHUNK / h->elem_size;
    while (st == CUMLP_SUCCESS && done < total) {
        size_t want = total - done < per_chunk ? total - done : per_chunk, got = 0;
        st = source_read(s, buf, want * h->elem_size, &got);
        if (st == CUMLP_SUCCESS && got < want * h->elem_size)
            st = cumlp__error(s->ctx, CUMLP_ERROR_TRUNCATED,
                              "%s: the header announces %llu bytes but the data ends at byte %llu",
                              s->name,
                              (unsigned long long)(h->data_offset + (uint64_t)total * h->elem_size),
                              (unsigned long long)s->offset);
        for (size_t i = 0; st == CUMLP_SUCCESS && i < want; i++) {
            double x = element(h->type, buf + i * h->elem_size);
            float fx = (float)x;
            if (!isfinite(fx))
                st = cumlp__error(s->ctx, CUMLP_ERROR_NON_FINITE,
                                  "%s: value %g at byte %llu is not a finite fp32 number", s->name,
                                  x,
                                  (unsigned long long)(h->data_offset + (done + i) * h->elem_size));
            v[done + i] = fx;
        }
        done += want;
    }
    free(buf);
    if (st == CUMLP_SUCCESS) st = source_finish(s);
    if (st != CUMLP_SUCCESS) {
        free(v);
        return st;
    }
    *values = v;
    return CUMLP_SUCCESS;
}

/* Checks the labels and finds the class count (num_classes, or the largest label + 1). */
static cumlp_status check_labels(idx_source *s, const idx_header *h, const float *labels,
                                 int num_classes, int *classes) {
    int limit = num_classes > 0 ? num_classes : CUMLP_MAX_INFERRED_CLASSES;
    int largest = 0;
    for (int64_t i = 0; i < h->count; i++) {
        float v = labels[i];
        if (v < 0 || v >= (float)limit)
            return cumlp__error(
                s->ctx, num_classes > 0 ? CUMLP_ERROR_INVALID_VALUE : CUMLP_ERROR_SIZE_LIMIT,
                "%s: label %.0f at byte %zu is outside [0, %d)", s->name, v,
                h->data_offset + (size_t)i * h->elem_size, limit);
        if ((int)v > largest) largest = (int)v;
    }
    *classes = num_classes > 0 ? num_classes : largest + 1;
    return CUMLP_SUCCESS;
}

/* Reads a labels file whole (it is small beside the images): its header must agree with the
 * images' count. */
static cumlp_status read_labels(idx_source *s, const idx_header *images, int num_classes,
                                float **labels, int *classes) {
    idx_header h;
    cumlp_status st = read_header(s, &h);
    if (st != CUMLP_SUCCESS) return st;
    if (h.ndims != 1)
        return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT,
                            "%s: a labels file has 1 dimension, this one %d (byte 3)", s->name,
                            h.ndims);
    if (h.type == 0x0D || h.type == 0x0E)
        return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT,
                            "%s: labels must have an integer type, not type %02x (byte 2)", s->name,
                            h.type);
    st = read_values(s, &h, labels);
    if (st == CUMLP_SUCCESS) st = check_labels(s, &h, *labels, num_classes, classes);
    if (st == CUMLP_SUCCESS && h.count != images->count)
        st =
            cumlp__error(s->ctx, CUMLP_ERROR_SIZE_LIMIT, "%s holds %lld labels but the images %lld",
                         s->name, (long long)h.count, (long long)images->count);
    if (st != CUMLP_SUCCESS) {
        free(*labels);
        *labels = NULL;
    }
    return st;
}

/* Reads the images (and labels, when lab is not NULL) into a new dataset. Without labels each
 * sample gets one target, 0. */
static cumlp_status read_sources(cumlp_context *ctx, const char *func, idx_source *img,
                                 idx_source *lab, int num_classes, cumlp_dataset **out) {
    idx_header h;
    float *labels = NULL, *features = NULL;
    int classes = 0;
    cumlp_status st = read_header(img, &h);
    if (st == CUMLP_SUCCESS && lab) st = read_labels(lab, &h, num_classes, &labels, &classes);
    if (st == CUMLP_SUCCESS) st = read_values(img, &h, &features);
    cumlp_dataset *ds = NULL;
    if (st == CUMLP_SUCCESS)
        st = cumlp__dataset_adopt(ctx, func, h.per_item, lab ? classes : 1, h.count, classes,
                                  features, &ds);
    for (int64_t i = 0; st == CUMLP_SUCCESS && lab && i < h.count; i++)
        ds->y[i * ds->n_outputs + (int64_t)labels[i]] = 1.0f;
    free(labels);
    if (st != CUMLP_SUCCESS) return st;
    *out = ds;
    return CUMLP_SUCCESS;
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
    idx_source img, lab;
    memset(&lab, 0, sizeof lab);
    lab.fd = -1;
    st = open_memory(&img, ctx, "<memory images>", images, images_size);
    if (st == CUMLP_SUCCESS && labels)
        st = open_memory(&lab, ctx, "<memory labels>", labels, labels_size);
    if (st == CUMLP_SUCCESS)
        st = read_sources(ctx, __func__, &img, labels ? &lab : NULL, num_classes, ds);
    source_close(&img);
    source_close(&lab);
    return st;
}

cumlp_status cumlp_dataset_read_idx(cumlp_context *ctx, const char *images_path,
                                    const char *labels_path, int num_classes, cumlp_dataset **ds) {
    cumlp_status st = check_args(ctx, __func__, images_path, labels_path, num_classes, ds);
    if (st != CUMLP_SUCCESS) return st;
    idx_source img, lab;
    memset(&lab, 0, sizeof lab);
    lab.fd = -1;
    st = open_file(&img, ctx, images_path);
    if (st == CUMLP_SUCCESS && labels_path) st = open_file(&lab, ctx, labels_path);
    if (st == CUMLP_SUCCESS)
        st = read_sources(ctx, __func__, &img, labels_path ? &lab : NULL, num_classes, ds);
    source_close(&img);
    source_close(&lab);
    return st;
}
