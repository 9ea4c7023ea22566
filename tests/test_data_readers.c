/* ctest-labels: unit */
/* test_data_readers.c - the IDX, CSV and FANN readers on files and buffers the test writes
 * itself, including every kind of bad file; one-hot labels, scaling, shuffle and split. */
#define _POSIX_C_SOURCE 200809L /* mkfifo, alarm */
#include "cumlp.h"
#include "harness.h"

#include <errno.h>
#include <float.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static const char *tmpdir(void) {
    const char *d = getenv("CUMLP_TEST_TMPDIR");
    return d && *d ? d : "/tmp";
}

static void tmp_path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/test_data_readers_%s", tmpdir(), name);
}

static int write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t n = fwrite(data, 1, size, f);
    return fclose(f) == 0 && n == size;
}

static int write_gzip(const char *path, const void *data, size_t size) {
    gzFile g = gzopen(path, "wb");
    if (!g) return 0;
    int n = gzwrite(g, data, (unsigned)size);
    return gzclose(g) == Z_OK && n == (int)size;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX images file of n items of rows x cols unsigned bytes, pixel value (i*7 + k) % 256. */
static size_t make_images(unsigned char *buf, uint32_t n, uint32_t rows, uint32_t cols) {
    buf[0] = buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = 3;
    put_be32(buf + 4, n);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    size_t per = (size_t)rows * cols;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < per; k++)
            buf[16 + i * per + k] = (unsigned char)((i * 7 + k) % 256);
    return 16 + n * per;
}

static size_t make_labels(unsigned char *buf, uint32_t n, const unsigned char *labels) {
    buf[0] = buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = 1;
    put_be32(buf + 4, n);
    memcpy(buf + 8, labels, n);
    return 8 + n;
}

/* Reads an IDX pair from memory, checks the status and that a failure leaves *ds NULL and a
 * message that mentions `needle`. */
static void expect_idx_error(const void *img, size_t img_size, const void *lab, size_t lab_size,
                             int classes, cumlp_status expected, const char *needle) {
    cumlp_dataset *ds = (cumlp_dataset *)(uintptr_t)1;
    CHECK_STATUS(cumlp_dataset_read_idx_memory(NULL, img, img_size, lab, lab_size, classes, &ds),
                 expected);
    CHECK(ds == NULL);
    CHECK_MSG(strstr(cumlp_last_error(NULL), needle) != NULL, "message \"%s\" lacks \"%s\"",
              cumlp_last_error(NULL), needle);
}

static void expect_csv_error(const char *text, const cumlp_csv_options *o, cumlp_status expected,
                             const char *needle) {
    cumlp_dataset *ds = (cumlp_dataset *)(uintptr_t)1;
    CHECK_STATUS(cumlp_dataset_read_csv_memory(NULL, text, strlen(text), o, &ds), expected);
    CHECK(ds == NULL);
    CHECK_MSG(strstr(cumlp_last_error(NULL), needle) != NULL, "message \"%s\" lacks \"%s\"",
              cumlp_last_error(NULL), needle);
}

static void expect_fann_error(const char *text, cumlp_status expected, const char *needle) {
    cumlp_dataset *ds = (cumlp_dataset *)(uintptr_t)1;
    CHECK_STATUS(cumlp_dataset_read_fann_memory(NULL, text, strlen(text), 0, &ds), expected);
    CHECK(ds == NULL);
    CHECK_MSG(strstr(cumlp_last_error(NULL), needle) != NULL, "message \"%s\" lacks \"%s\"",
              cumlp_last_error(NULL), needle);
}

/* ---- IDX ------------------------------------------------------------------------------------ */

static unsigned char img_buf[16 + 5 * 12], lab_buf[8 + 5];
static const unsigned char five_labels[5] = {3, 0, 1, 3, 2};

static void check_idx_content(cumlp_dataset *ds, int classes) {
    CHECK(cumlp_dataset_num_samples(ds) == 5);
    CHECK(cumlp_dataset_num_features(ds) == 12);
    CHECK(cumlp_dataset_num_outputs(ds) == classes);
    CHECK(cumlp_dataset_num_classes(ds) == classes);
    const float *x = cumlp_dataset_features(ds), *y = cumlp_dataset_targets(ds);
    for (int i = 0; i < 5; i++) {
        for (int k = 0; k < 12; k++)
            CHECK(x[i * 12 + k] == (float)((i * 7 + k) % 256));
        CHECK(cumlp_dataset_label(ds, i) == five_labels[i]);
        float sum = 0;
        for (int c = 0; c < classes; c++)
            sum += y[i * classes + c];
        CHECK(sum == 1.0f);
    }
}

static void test_idx_plain_and_gzip(void) {
    size_t ni = make_images(img_buf, 5, 3, 4), nl = make_labels(lab_buf, 5, five_labels);
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_read_idx_memory(NULL, img_buf, ni, lab_buf, nl, 0, &ds));
    if (ds) check_idx_content(ds, 4); /* inferred: largest label 3 + 1 */
    cumlp_dataset_destroy(ds);
    CHECK_OK(cumlp_dataset_read_idx_memory(NULL, img_buf, ni, lab_buf, nl, 10, &ds));
    if (ds) check_idx_content(ds, 10);
    cumlp_dataset_destroy(ds);

    char ip[512], lp[512];
    tmp_path(ip, sizeof ip, "images.idx.gz");
    tmp_path(lp, sizeof lp, "labels.idx");
    CHECK(write_gzip(ip, img_buf, ni));
    CHECK(write_file(lp, lab_buf, nl));
    ds = NULL;
    CHECK_OK(cumlp_dataset_read_idx(NULL, ip, lp, 0, &ds));
    if (ds) check_idx_content(ds, 4);
    cumlp_dataset_destroy(ds);
    remove(ip);
    remove(lp);
}

static void test_idx_other_types(void) {
    /* 2 items of 2 big-endian float32 values, labels as int16 */
    unsigned char img[4 + 8 + 16], lab[4 + 4 + 4];
    img[0] = img[1] = 0;
    img[2] = 0x0D;
    img[3] = 2;
    put_be32(img + 4, 2);
    put_be32(img + 8, 2);
    const float values[4] = {1.5f, -2.0f, 0.25f, 1e3f};
    for (int i = 0; i < 4; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], 4);
        put_be32(img + 12 + 4 * i, bits);
    }
    lab[0] = lab[1] = 0;
    lab[2] = 0x0B;
    lab[3] = 1;
    put_be32(lab + 4, 2);
    lab[8] = 0, lab[9] = 1, lab[10] = 0, lab[11] = 0;
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_read_idx_memory(NULL, img, sizeof img, lab, sizeof lab, 0, &ds));
    if (ds) {
        for (int i = 0; i < 4; i++)
            CHECK(cumlp_dataset_features(ds)[i] == values[i]);
        CHECK(cumlp_dataset_num_classes(ds) == 2);
        CHECK(cumlp_dataset_label(ds, 0) == 1 && cumlp_dataset_label(ds, 1) == 0);
    }
    cumlp_dataset_destroy(ds);
    /* a NaN image value */
    uint32_t nan_bits = 0x7fc00000u;
    put_be32(img + 12 + 8, nan_bits);
    expect_idx_error(img, sizeof img, lab, sizeof lab, 0, CUMLP_ERROR_NON_FINITE, "byte 20");
    /* float labels are refused */
    lab[2] = 0x0D;
    put_be32(lab + 4, 2);
    unsigned char flab[8 + 8];
    memcpy(flab, lab, 8);
    memset(flab + 8, 0, 8);
    put_be32(img + 12 + 8, 0);
    expect_idx_error(img, sizeof img, flab, sizeof flab, 0, CUMLP_ERROR_FORMAT, "integer");
}

static void test_idx_bad_files(void) {
    size_t ni = make_images(img_buf, 5, 3, 4), nl = make_labels(lab_buf, 5, five_labels);
    unsigned char bad[sizeof img_buf + 8];
    /* wrong magic */
    memcpy(bad, img_buf, ni);
    bad[2] = 0x07;
    expect_idx_error(bad, ni, lab_buf, nl, 0, CUMLP_ERROR_FORMAT, "magic");
    memcpy(bad, img_buf, ni);
    bad[0] = 1;
    expect_idx_error(bad, ni, lab_buf, nl, 0, CUMLP_ERROR_FORMAT, "byte 0");
    /* too short for the magic, for the header, for the data */
    expect_idx_error(img_buf, 3, lab_buf, nl, 0, CUMLP_ERROR_TRUNCATED, "<memory images>");
    expect_idx_error(img_buf, 10, lab_buf, nl, 0, CUMLP_ERROR_TRUNCATED, "header");
    expect_idx_error(img_buf, ni - 1, lab_buf, nl, 0, CUMLP_ERROR_TRUNCATED, "byte");
    expect_idx_error(img_buf, ni, lab_buf, nl - 2, 0, CUMLP_ERROR_TRUNCATED, "labels");
    /* trailing bytes */
    memcpy(bad, img_buf, ni);
    bad[ni] = 0;
    expect_idx_error(bad, ni + 1, lab_buf, nl, 0, CUMLP_ERROR_FORMAT, "trailing");
    /* counts that disagree */
    unsigned char lab4[8 + 4];
    size_t nl4 = make_labels(lab4, 4, five_labels);
    expect_idx_error(img_buf, ni, lab4, nl4, 0, CUMLP_ERROR_SIZE_LIMIT, "labels");
    /* counts that overflow: 2^32-1 items of 2^32-1 x 2^32-1 */
    memcpy(bad, img_buf, 16);
    put_be32(bad + 4, 0xFFFFFFFFu);
    put_be32(bad + 8, 0xFFFFFFFFu);
    put_be32(bad + 12, 0xFFFFFFFFu);
    expect_idx_error(bad, 16, lab_buf, nl, 0, CUMLP_ERROR_SIZE_LIMIT, "overflow");
    /* huge announced count, tiny file: no allocation, a limit or truncation error */
    memcpy(bad, img_buf, 16);
    put_be32(bad + 4, 0x7FFFFFFFu);
    cumlp_dataset *ds = NULL;
    cumlp_status st = cumlp_dataset_read_idx_memory(NULL, bad, 16, lab_buf, nl, 0, &ds);
    CHECK(st == CUMLP_ERROR_SIZE_LIMIT || st == CUMLP_ERROR_TRUNCATED);
    CHECK(ds == NULL);
    /* a zero dimension */
    memcpy(bad, img_buf, ni);
    put_be32(bad + 8, 0);
    expect_idx_error(bad, ni, lab_buf, nl, 0, CUMLP_ERROR_FORMAT, "dimension 1");
    /* labels out of range for the given class count */
    expect_idx_error(img_buf, ni, lab_buf, nl, 3, CUMLP_ERROR_INVALID_VALUE, "label 3");
    /* a labels file with two dimensions */
    expect_idx_error(img_buf, ni, img_buf, ni, 0, CUMLP_ERROR_FORMAT, "1 dimension");
    /* missing file */
    char missing[512];
    tmp_path(missing, sizeof missing, "does_not_exist");
    CHECK_STATUS(cumlp_dataset_read_idx(NULL, missing, missing, 0, &ds), CUMLP_ERROR_IO);
    CHECK(ds == NULL);
    CHECK(strstr(cumlp_last_error(NULL), "does_not_exist") != NULL);
    /* NULL arguments */
    CHECK_STATUS(cumlp_dataset_read_idx_memory(NULL, NULL, 0, lab_buf, nl, 0, &ds),
                 CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_dataset_read_idx_memory(NULL, img_buf, ni, lab_buf, nl, 0, NULL),
                 CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_dataset_read_idx_memory(NULL, img_buf, ni, lab_buf, nl, -1, &ds),
                 CUMLP_ERROR_INVALID_VALUE);
}

static void test_idx_bad_gzip(void) {
    size_t ni = make_images(img_buf, 5, 3, 4), nl = make_labels(lab_buf, 5, five_labels);
    char path[512];
    tmp_path(path, sizeof path, "bad.gz");
    CHECK(write_gzip(path, img_buf, ni));
    FILE *f = fopen(path, "rb");
    unsigned char gz[1024];
    size_t n = f ? fread(gz, 1, sizeof gz, f) : 0;
    if (f) fclose(f);
    remove(path);
    CHECK(n > 20 && n < sizeof gz);
    /* a truncated gzip stream */
    expect_idx_error(gz, n / 2, lab_buf, nl, 0, CUMLP_ERROR_TRUNCATED, "gzip");
    /* corrupt compressed bytes (the CRC or the deflate data fails) */
    unsigned char bad[1024];
    memcpy(bad, gz, n);
    for (size_t i = 12; i < n - 8; i++)
        bad[i] ^= 0x55;
    cumlp_dataset *ds = NULL;
    cumlp_status st = cumlp_dataset_read_idx_memory(NULL, bad, n, lab_buf, nl, 0, &ds);
    CHECK(st == CUMLP_ERROR_FORMAT || st == CUMLP_ERROR_TRUNCATED);
    CHECK(ds == NULL);
    /* garbage after the stream */
    memcpy(bad, gz, n);
    memcpy(bad + n, "xyz", 3);
    expect_idx_error(bad, n + 3, lab_buf, nl, 0, CUMLP_ERROR_FORMAT, "trailing");
}

/* gzip (in memory) of `head` followed by `zeros` zero bytes, deflated in chunks so that a large
 * stream needs no large buffer; returns the compressed size, 0 on failure. */
static size_t gzip_head_and_zeros(const unsigned char *head, size_t head_size, size_t zeros,
                                  unsigned char *out, size_t out_cap) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
    static unsigned char chunk[1 << 16];
    memset(chunk, 0, sizeof chunk);
    zs.next_out = out;
    zs.avail_out = (uInt)out_cap;
    zs.next_in = (unsigned char *)(uintptr_t)head;
    zs.avail_in = (uInt)head_size;
    int rc = deflate(&zs, Z_NO_FLUSH);
    while (rc == Z_OK && zeros > 0) {
        size_t n = zeros < sizeof chunk ? zeros : sizeof chunk;
        zs.next_in = chunk;
        zs.avail_in = (uInt)n;
        zeros -= n;
        rc = deflate(&zs, Z_NO_FLUSH);
        if (zs.avail_in != 0) rc = Z_BUF_ERROR; /* out of output space */
    }
    if (rc == Z_OK) rc = deflate(&zs, Z_FINISH);
    size_t size = rc == Z_STREAM_END ? zs.total_out : 0;
    deflateEnd(&zs);
    return size;
}

static void test_idx_gzip_bomb(void) {
    size_t nl = make_labels(lab_buf, 5, five_labels);
    /* a header announcing 5 images of 3 x 4 bytes, followed by 64 MiB of zeros: the reader must
     * stop inflating at the announced size, not after the whole bomb */
    unsigned char head[16];
    make_images(img_buf, 5, 3, 4);
    memcpy(head, img_buf, 16);
    static unsigned char gz[1 << 18];
    size_t n = gzip_head_and_zeros(head, 16, (size_t)64 << 20, gz, sizeof gz);
    CHECK(n > 0 && n < sizeof gz);
    expect_idx_error(gz, n, lab_buf, nl, 0, CUMLP_ERROR_FORMAT, "inflates past the 76 bytes");
    /* exactly the announced size still reads */
    size_t ni = make_images(img_buf, 5, 3, 4);
    n = gzip_head_and_zeros(img_buf, ni, 0, gz, sizeof gz);
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_read_idx_memory(NULL, gz, n, lab_buf, nl, 0, &ds));
    if (ds) check_idx_content(ds, 4);
    cumlp_dataset_destroy(ds);
    /* one byte short or one too many: truncated, or too much data */
    n = gzip_head_and_zeros(img_buf, ni - 1, 0, gz, sizeof gz);
    expect_idx_error(gz, n, lab_buf, nl, 0, CUMLP_ERROR_TRUNCATED, "byte");
    n = gzip_head_and_zeros(img_buf, ni, 1, gz, sizeof gz);
    expect_idx_error(gz, n, lab_buf, nl, 0, CUMLP_ERROR_FORMAT, "76 bytes");
    /* a bad or oversized header inside gzip is reported as such, before inflating the rest */
    memcpy(head, img_buf, 16);
    head[2] = 0x07;
    n = gzip_head_and_zeros(head, 16, (size_t)64 << 20, gz, sizeof gz);
    expect_idx_error(gz, n, lab_buf, nl, 0, CUMLP_ERROR_FORMAT, "magic");
    memcpy(head, img_buf, 16);
    put_be32(head + 4, 0xFFFFFFFFu);
    put_be32(head + 8, 0xFFFFFFFFu);
    n = gzip_head_and_zeros(head, 16, (size_t)64 << 20, gz, sizeof gz);
    expect_idx_error(gz, n, lab_buf, nl, 0, CUMLP_ERROR_SIZE_LIMIT, "overflow");
}

/* ---- CSV ------------------------------------------------------------------------------------ */

static void test_csv_classification(void) {
    const char *text = "a,b,label\n1,2,0\n 3 , 4.5e0 ,2\r\n\n-1,0.25,1";
    cumlp_csv_options o;
    CHECK_OK(cumlp_csv_defaults(&o));
    o.has_header = 1;
    o.num_classes = -1;
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_read_csv_memory(NULL, text, strlen(text), &o, &ds));
    if (!ds) return;
    CHECK(cumlp_dataset_num_samples(ds) == 3 && cumlp_dataset_num_features(ds) == 2);
    CHECK(cumlp_dataset_num_classes(ds) == 3 && cumlp_dataset_num_outputs(ds) == 3);
    const float *x = cumlp_dataset_features(ds);
    CHECK(x[0] == 1 && x[1] == 2 && x[2] == 3 && x[3] == 4.5f && x[4] == -1 && x[5] == 0.25f);
    CHECK(cumlp_dataset_label(ds, 0) == 0 && cumlp_dataset_label(ds, 1) == 2 &&
          cumlp_dataset_label(ds, 2) == 1);
    cumlp_dataset_destroy(ds);
}

static void test_csv_regression_file(void) {
    /* label in the first column, semicolons, regression */
    const char *text = "0.5;1;2\n-1.5;3;4\n";
    char path[512];
    tmp_path(path, sizeof path, "reg.csv");
    CHECK(write_file(path, text, strlen(text)));
    cumlp_csv_options o;
    cumlp_csv_defaults(&o);
    o.delimiter = ';';
    o.label_column = 0;
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_read_csv(NULL, path, &o, &ds));
    remove(path);
    if (!ds) return;
    CHECK(cumlp_dataset_num_classes(ds) == 0 && cumlp_dataset_num_outputs(ds) == 1);
    CHECK(cumlp_dataset_label(ds, 0) == -1);
    const float *x = cumlp_dataset_features(ds), *y = cumlp_dataset_targets(ds);
    CHECK(x[0] == 1 && x[1] == 2 && x[2] == 3 && x[3] == 4);
    CHECK(y[0] == 0.5f && y[1] == -1.5f);
    cumlp_dataset_destroy(ds);
}

/* Blank delimiters (tab, space) separate fields; they are not padding to skip. */
static void test_csv_blank_delimiters(void) {
    cumlp_csv_options o;
    cumlp_csv_defaults(&o);
    o.delimiter = '\t';
    o.num_classes = -1;
    const char *tsv = "1\t2\t0\n 3 \t4.5\t1\r\n";
    cumlp_dataset *ds = NULL;
    CHECK_MSG(cumlp_dataset_read_csv_memory(NULL, tsv, strlen(tsv), &o, &ds) == CUMLP_SUCCESS, "%s",
              cumlp_last_error(NULL));
    if (ds) {
        CHECK(cumlp_dataset_num_samples(ds) == 2 && cumlp_dataset_num_features(ds) == 2);
        const float *x = cumlp_dataset_features(ds);
        CHECK(x[0] == 1 && x[1] == 2 && x[2] == 3 && x[3] == 4.5f);
        CHECK(cumlp_dataset_label(ds, 0) == 0 && cumlp_dataset_label(ds, 1) == 1);
    }
    cumlp_dataset_destroy(ds);
    /* an empty field between two tabs is an error, not merged away */
    expect_csv_error("1\t2\t0\n1\t\t0\n", &o, CUMLP_ERROR_FORMAT, "line 2, field 2");
    o.delimiter = ' ';
    o.num_classes = 0;
    ds = NULL;
    CHECK_OK(cumlp_dataset_read_csv_memory(NULL, "1 2 3\n4 5 6\n", 12, &o, &ds));
    if (ds) {
        CHECK(cumlp_dataset_num_features(ds) == 2 && cumlp_dataset_num_outputs(ds) == 1);
        CHECK(cumlp_dataset_targets(ds)[1] == 6);
    }
    cumlp_dataset_destroy(ds);
}

static void test_csv_bad_files(void) {
    cumlp_csv_options o;
    cumlp_csv_defaults(&o);
    expect_csv_error("1,2,3\n4,5\n", &o, CUMLP_ERROR_FORMAT, "line 2");
    expect_csv_error("1,2\n3,abc\n", &o, CUMLP_ERROR_FORMAT, "abc");
    expect_csv_error("1,2\n3,4x\n", &o, CUMLP_ERROR_FORMAT, "line 2");
    expect_csv_error("1,,2\n", &o, CUMLP_ERROR_FORMAT, "field 2");
    expect_csv_error("1,2\n3,nan\n", &o, CUMLP_ERROR_NON_FINITE, "line 2");
    expect_csv_error("1,inf\n", &o, CUMLP_ERROR_NON_FINITE, "line 1");
    expect_csv_error("1,1e39\n", &o, CUMLP_ERROR_NON_FINITE, "line 1");
    expect_csv_error("5\n", &o, CUMLP_ERROR_FORMAT, "line 1");
    expect_csv_error("\n  \n", &o, CUMLP_ERROR_FORMAT, "no data");
    o.num_classes = 3;
    expect_csv_error("1,2\n3,3\n", &o, CUMLP_ERROR_INVALID_VALUE, "line 2");
    /* the message names the line of the file, counting the header and blank lines */
    o.has_header = 1;
    expect_csv_error("x,label\n\n1,2\n3,3\n", &o, CUMLP_ERROR_INVALID_VALUE, "line 4: label 3");
    o.has_header = 0;
    expect_csv_error("1,0.5\n", &o, CUMLP_ERROR_INVALID_VALUE, "label 0.5");
    expect_csv_error("1,-1\n", &o, CUMLP_ERROR_INVALID_VALUE, "label -1");
    o.num_classes = -1;
    expect_csv_error("1,1e9\n", &o, CUMLP_ERROR_SIZE_LIMIT, "label");
    /* a label that is no class is out of range, not a size limit, when classes are counted */
    expect_csv_error("1,0\n1,-1\n", &o, CUMLP_ERROR_INVALID_VALUE, "line 2: label -1");
    expect_csv_error("1,0.5\n", &o, CUMLP_ERROR_INVALID_VALUE, "line 1: label 0.5");
    o.num_classes = 0;
    o.label_column = 5;
    expect_csv_error("1,2\n", &o, CUMLP_ERROR_INVALID_VALUE, "label_column");
    o.label_column = -1;
    o.delimiter = '7';
    expect_csv_error("1,2\n", &o, CUMLP_ERROR_INVALID_VALUE, "delimiter");
    /* an embedded NUL byte is not a number */
    cumlp_csv_defaults(&o);
    const char nul_text[] = "1,2\n3,\0\n";
    cumlp_dataset *ds = NULL;
    CHECK_STATUS(cumlp_dataset_read_csv_memory(NULL, nul_text, sizeof nul_text - 1, &o, &ds),
                 CUMLP_ERROR_FORMAT);
    CHECK(ds == NULL);
    char missing[512];
    tmp_path(missing, sizeof missing, "missing.csv");
    CHECK_STATUS(cumlp_dataset_read_csv(NULL, missing, NULL, &ds), CUMLP_ERROR_IO);
}

/* ---- FANN ----------------------------------------------------------------------------------- */

/* Data without targets, for cumlp_predict: a CSV with CUMLP_CSV_NO_TARGET (every column a
 * feature, even a single one) and IDX images without labels; each sample gets one target, 0. */
static void test_without_targets(void) {
    cumlp_csv_options o;
    cumlp_csv_defaults(&o);
    o.label_column = CUMLP_CSV_NO_TARGET;
    cumlp_dataset *ds = NULL;
    const char *text = "1,2,3\n4,5,6\n";
    CHECK_OK(cumlp_dataset_read_csv_memory(NULL, text, strlen(text), &o, &ds));
    CHECK(cumlp_dataset_num_features(ds) == 3 && cumlp_dataset_num_outputs(ds) == 1 &&
          cumlp_dataset_num_samples(ds) == 2 && cumlp_dataset_num_classes(ds) == 0);
    if (ds) {
        CHECK(cumlp_dataset_features(ds)[5] == 6.0f);
        CHECK(cumlp_dataset_targets(ds)[0] == 0.0f && cumlp_dataset_targets(ds)[1] == 0.0f);
    }
    cumlp_dataset_destroy(ds);
    CHECK_OK(cumlp_dataset_read_csv_memory(NULL, "7\n8\n", 4, &o, &ds));
    CHECK(cumlp_dataset_num_features(ds) == 1 && cumlp_dataset_num_samples(ds) == 2);
    cumlp_dataset_destroy(ds);
    o.num_classes = -1; /* classes without a target column */
    CHECK_STATUS(cumlp_dataset_read_csv_memory(NULL, text, strlen(text), &o, &ds),
                 CUMLP_ERROR_INVALID_VALUE);
    o.num_classes = 0;
    o.label_column = -3;
    CHECK_STATUS(cumlp_dataset_read_csv_memory(NULL, text, strlen(text), &o, &ds),
                 CUMLP_ERROR_INVALID_VALUE);

    unsigned char img[16 + 5 * 6];
    size_t ni = make_images(img, 5, 2, 3);
    CHECK_OK(cumlp_dataset_read_idx_memory(NULL, img, ni, NULL, 0, 0, &ds));
    CHECK(cumlp_dataset_num_features(ds) == 6 && cumlp_dataset_num_outputs(ds) == 1 &&
          cumlp_dataset_num_samples(ds) == 5 && cumlp_dataset_num_classes(ds) == 0);
    cumlp_dataset_destroy(ds);
    CHECK_STATUS(cumlp_dataset_read_idx_memory(NULL, img, ni, NULL, 0, 3, &ds),
                 CUMLP_ERROR_INVALID_VALUE);
    char path[512];
    tmp_path(path, sizeof path, "images_only.idx");
    CHECK(write_gzip(path, img, ni));
    CHECK_OK(cumlp_dataset_read_idx(NULL, path, NULL, 0, &ds));
    CHECK(cumlp_dataset_num_samples(ds) == 5);
    cumlp_dataset_destroy(ds);
    remove(path);
}

static void test_fann(void) {
    const char *text = "3 2 1\n0 0\n0\n0 1\n1\n1 0\n1\n";
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_read_fann_memory(NULL, text, strlen(text), 0, &ds));
    if (ds) {
        CHECK(cumlp_dataset_num_samples(ds) == 3 && cumlp_dataset_num_features(ds) == 2 &&
              cumlp_dataset_num_outputs(ds) == 1 && cumlp_dataset_num_classes(ds) == 0);
        const float *x = cumlp_dataset_features(ds), *y = cumlp_dataset_targets(ds);
        CHECK(x[2] == 0 && x[3] == 1 && x[4] == 1 && x[5] == 0);
        CHECK(y[0] == 0 && y[1] == 1 && y[2] == 1);
    }
    cumlp_dataset_destroy(ds);
    /* classification: the largest output is the class; -1/1 outputs become one-hot */
    const char *cls = "2 1 3\n0.5\n-1 1 -1\n2\n1 -1 -1\n";
    char path[512];
    tmp_path(path, sizeof path, "cls.data");
    CHECK(write_file(path, cls, strlen(cls)));
    ds = NULL;
    CHECK_OK(cumlp_dataset_read_fann(NULL, path, 1, &ds));
    remove(path);
    if (ds) {
        CHECK(cumlp_dataset_num_classes(ds) == 3);
        CHECK(cumlp_dataset_label(ds, 0) == 1 && cumlp_dataset_label(ds, 1) == 0);
        const float *y = cumlp_dataset_targets(ds);
        CHECK(y[0] == 0 && y[1] == 1 && y[2] == 0);
    }
    cumlp_dataset_destroy(ds);
}

static void test_fann_bad_files(void) {
    expect_fann_error("3 2 1\n0 0\n0\n0 1\n1\n1 0\n", CUMLP_ERROR_TRUNCATED, "sample 3");
    expect_fann_error("2 2 1\n0 0\n0\n0 1\n1\n5\n", CUMLP_ERROR_FORMAT, "after the 2 samples");
    expect_fann_error("1 2 1\n0 x\n0\n", CUMLP_ERROR_FORMAT, "line 2");
    expect_fann_error("1 2 1\n0 nan\n0\n", CUMLP_ERROR_NON_FINITE, "line 2");
    expect_fann_error("1 2\n", CUMLP_ERROR_TRUNCATED, "output count");
    expect_fann_error("0 2 1\n", CUMLP_ERROR_FORMAT, "sample count");
    expect_fann_error("1.5 2 1\n", CUMLP_ERROR_FORMAT, "whole number");
    expect_fann_error("2000000000 2000000000 2000000000\n1\n", CUMLP_ERROR_SIZE_LIMIT, "limit");
    expect_fann_error("1000000 100 1\n1 2 3\n", CUMLP_ERROR_TRUNCATED, "announces");
    expect_fann_error("1 1 1\n1x 2\n", CUMLP_ERROR_FORMAT, "unexpected");
    cumlp_dataset *ds = NULL;
    CHECK_STATUS(cumlp_dataset_read_fann_memory(NULL, "1 1 1\n1\n1\n", 10, 1, &ds),
                 CUMLP_ERROR_INVALID_VALUE); /* classification needs 2 outputs */
    CHECK(ds == NULL);
    CHECK_STATUS(cumlp_dataset_read_fann_memory(NULL, "1 1 1\n1\n1\n", 10, 2, &ds),
                 CUMLP_ERROR_INVALID_VALUE);
}

/* ---- errors go to the context when one is given -----------------------------------------------
 */

static void test_context_messages(void) {
    cumlp_context_options co;
    cumlp_context_defaults(&co);
    co.backend = CUMLP_BACKEND_REFERENCE;
    cumlp_context *ctx = NULL;
    CHECK_OK(cumlp_context_create(&ctx, &co));
    if (!ctx) return;
    cumlp_dataset *ds = NULL;
    CHECK_STATUS(cumlp_dataset_read_csv_memory(ctx, "1,x\n", 4, NULL, &ds), CUMLP_ERROR_FORMAT);
    CHECK(strstr(cumlp_last_error(ctx), "<memory>") != NULL);
    CHECK(strstr(cumlp_last_error(ctx), "line 1") != NULL);
    cumlp_context_destroy(ctx);
}

/* ---- labels, shuffle, split, scaling ----------------------------------------------------------
 */

/* A dataset whose sample i has features (i, 10 i) and class i % 3. */
static cumlp_dataset *numbered(int64_t n) {
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_create(NULL, 2, 3, n, 3, &ds));
    if (!ds) return NULL;
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    for (int64_t i = 0; i < n; i++) {
        cumlp_dataset_features(ds)[2 * i] = (float)i;
        cumlp_dataset_features(ds)[2 * i + 1] = (float)(10 * i);
        labels[i] = (int32_t)(i % 3);
    }
    CHECK_OK(cumlp_dataset_set_labels(ds, labels, n));
    free(labels);
    return ds;
}

/* Each sample's features and label still belong together; returns a bitmap count of ids seen. */
static int64_t check_intact(cumlp_dataset *ds, unsigned char *seen) {
    int64_t distinct = 0;
    for (int64_t i = 0; i < cumlp_dataset_num_samples(ds); i++) {
        const float *x = cumlp_dataset_features(ds) + 2 * i;
        int64_t id = (int64_t)x[0];
        CHECK(x[1] == 10.0f * x[0]);
        CHECK(cumlp_dataset_label(ds, i) == id % 3);
        if (!seen[id]) distinct++;
        seen[id] = 1;
    }
    return distinct;
}

static void test_labels_and_create(void) {
    cumlp_dataset *ds = NULL;
    CHECK_STATUS(cumlp_dataset_create(NULL, 2, 3, 4, 2, &ds), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_dataset_create(NULL, 0, 3, 4, 0, &ds), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_dataset_create(NULL, 1 << 20, 1, 1 << 20, 0, &ds), CUMLP_ERROR_SIZE_LIMIT);
    CHECK(ds == NULL);
    CHECK_OK(cumlp_dataset_create(NULL, 2, 3, 2, 3, &ds));
    int32_t bad[2] = {0, 3}, good[2] = {2, 1};
    CHECK_STATUS(cumlp_dataset_set_labels(ds, bad, 2), CUMLP_ERROR_INVALID_VALUE);
    CHECK(cumlp_dataset_targets(ds)[0] == 0); /* unchanged */
    CHECK_OK(cumlp_dataset_set_labels(ds, good, 2));
    CHECK(cumlp_dataset_label(ds, 0) == 2 && cumlp_dataset_label(ds, 1) == 1);
    CHECK(cumlp_dataset_label(ds, 2) == -1);
    cumlp_dataset_destroy(ds);
    cumlp_dataset_destroy(NULL);
    CHECK(cumlp_dataset_num_samples(NULL) == -1 && cumlp_dataset_features(NULL) == NULL);
}

static void test_shuffle(void) {
    enum { N = 200 };
    cumlp_dataset *a = numbered(N), *b = numbered(N), *c = numbered(N);
    if (!a || !b || !c) return;
    CHECK_OK(cumlp_dataset_shuffle(a, 5));
    CHECK_OK(cumlp_dataset_shuffle(b, 5));
    CHECK_OK(cumlp_dataset_shuffle(c, 6));
    unsigned char seen[N] = {0};
    CHECK(check_intact(a, seen) == N); /* a permutation */
    CHECK(memcmp(cumlp_dataset_features(a), cumlp_dataset_features(b), 2 * N * sizeof(float)) ==
          0); /* same seed, same order */
    CHECK(memcmp(cumlp_dataset_features(a), cumlp_dataset_features(c), 2 * N * sizeof(float)) != 0);
    int64_t moved = 0;
    for (int64_t i = 0; i < N; i++)
        moved += cumlp_dataset_features(a)[2 * i] != (float)i;
    CHECK(moved > N / 2);
    cumlp_dataset_destroy(a);
    cumlp_dataset_destroy(b);
    cumlp_dataset_destroy(c);
}

/* cumlp_dataset_split_off moves the validation samples out of the dataset itself, which keeps the
 * training samples: the same two sets, in the same order, as cumlp_dataset_split gives, without a
 * second copy of the data; a bad fraction changes nothing. */
static void test_split_off_in_place(void) {
    enum { N = 1001 };
    cumlp_dataset *ds = numbered(N), *copy = numbered(N), *train = NULL, *val = NULL, *val2 = NULL;
    if (!ds || !copy) return;
    CHECK_OK(cumlp_dataset_split(copy, 0.3, 77, &train, &val));
    CHECK_OK(cumlp_dataset_split_off(ds, 0.3, 77, &val2));
    CHECK(cumlp_dataset_num_samples(ds) == cumlp_dataset_num_samples(train) &&
          cumlp_dataset_num_samples(val2) == cumlp_dataset_num_samples(val));
    if (train && val && val2 && cumlp_dataset_num_samples(ds) == cumlp_dataset_num_samples(train)) {
        size_t nt = (size_t)cumlp_dataset_num_samples(train);
        size_t nv = (size_t)cumlp_dataset_num_samples(val);
        CHECK(memcmp(cumlp_dataset_features(ds), cumlp_dataset_features(train),
                     nt * 2 * sizeof(float)) == 0);
        CHECK(memcmp(cumlp_dataset_targets(ds), cumlp_dataset_targets(train),
                     nt * 3 * sizeof(float)) == 0);
        CHECK(memcmp(cumlp_dataset_features(val2), cumlp_dataset_features(val),
                     nv * 2 * sizeof(float)) == 0);
    }
    cumlp_dataset *kept = val2;
    val2 = (cumlp_dataset *)&val2;
    CHECK_STATUS(cumlp_dataset_split_off(ds, 1.0, 77, &val2), CUMLP_ERROR_INVALID_VALUE);
    CHECK(val2 == NULL && cumlp_dataset_num_samples(ds) == cumlp_dataset_num_samples(train));
    CHECK_STATUS(cumlp_dataset_split_off(NULL, 0.5, 77, &val2), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_dataset_split_off(ds, 0.5, 77, NULL), CUMLP_ERROR_INVALID_VALUE);
    cumlp_dataset_destroy(kept);
    cumlp_dataset_destroy(train);
    cumlp_dataset_destroy(val);
    cumlp_dataset_destroy(copy);
    cumlp_dataset_destroy(ds);
}

/* The process's memory (kB) from /proc/self/status: "VmRSS" now, "VmHWM" its peak. */
static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') kb = atol(line + n + 1);
    if (f) fclose(f);
    return kb;
}

/* Resets the peak (Linux 4.0+) and returns the memory in use now, or -1. Freed memory that the
 * allocator still holds is returned first, so that reusing it does not hide an allocation. */
static long reset_peak(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int ok = f && fputs("5", f) >= 0;
    if (f) ok &= fclose(f) == 0;
    return ok ? status_kb("VmRSS") : -1;
}

/* Memory: reading IDX data holds neither the file nor its inflated copy beside the dataset (it
 * held the compressed file, the inflated bytes and the features at once), and splitting off a
 * validation set copies only the validation samples. Measured as the growth of the process's
 * peak; not under AddressSanitizer, whose allocator keeps freed memory. */
static void test_memory_of_reading_and_splitting(void) {
#if defined(__SANITIZE_ADDRESS__)
    printf("  (AddressSanitizer build: peak memory is not the library's own)\n");
    return;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    printf("  (AddressSanitizer build: peak memory is not the library's own)\n");
    return;
#endif
#endif
    if (reset_peak() < 0) {
        printf("  (no /proc/self/clear_refs: not measured)\n");
        return;
    }
    enum { N = 20000, SIDE = 28 };
    size_t n_img = 16 + (size_t)N * SIDE * SIDE;
    unsigned char *img = malloc(n_img), lab[8 + N];
    if (!img) return;
    make_images(img, N, SIDE, SIDE);
    for (size_t i = 16; i < n_img; i++) /* hard to compress */
        img[i] = (unsigned char)((i * 2654435761u) >> 24);
    unsigned char classes[N];
    for (int i = 0; i < N; i++)
        classes[i] = (unsigned char)(i % 10);
    make_labels(lab, N, classes);
    char gz[512], plain[512], lp[512];
    tmp_path(gz, sizeof gz, "mem_images.gz");
    tmp_path(plain, sizeof plain, "mem_images.idx");
    tmp_path(lp, sizeof lp, "mem_labels.idx");
    CHECK(write_gzip(gz, img, n_img) && write_file(plain, img, n_img));
    CHECK(write_file(lp, lab, sizeof lab));
    free(img);
    double features_mb = (double)N * SIDE * SIDE * sizeof(float) / 1048576.0;
    double targets_mb = (double)N * 10 * sizeof(float) / 1048576.0;
    const char *paths[2] = {gz, plain};
    for (int k = 0; k < 2; k++) {
        cumlp_dataset *ds = NULL;
        long before = reset_peak();
        CHECK_OK(cumlp_dataset_read_idx(NULL, paths[k], lp, 0, &ds));
        double grown = (double)(status_kb("VmHWM") - before) / 1024.0;
        printf("  reading %s: %.1f MB for %.1f MB of features and %.1f MB of targets\n",
               k ? "plain IDX" : "gzip IDX", grown, features_mb, targets_mb);
        CHECK_MSG(grown <= 1.05 * (features_mb + targets_mb) + 2, "reading %s took %.1f MB",
                  paths[k], grown);
        if (k == 1) {
            cumlp_dataset *val = NULL;
            before = reset_peak();
            CHECK_OK(cumlp_dataset_split_off(ds, 0.1, 3, &val));
            grown = (double)(status_kb("VmHWM") - before) / 1024.0;
            printf("  splitting off 10%%: %.1f MB\n", grown);
            CHECK_MSG(grown <= 0.1 * 1.05 * (features_mb + targets_mb) + 2,
                      "splitting off took %.1f MB", grown);
            cumlp_dataset_destroy(val);
        }
        cumlp_dataset_destroy(ds);
    }
    remove(gz);
    remove(plain);
    remove(lp);
}

static void test_split_and_subset(void) {
    enum { N = 101 };
    cumlp_dataset *ds = numbered(N), *train = NULL, *val = NULL, *sub = NULL;
    if (!ds) return;
    CHECK_OK(cumlp_dataset_split(ds, 0.2, 9, &train, &val));
    CHECK(cumlp_dataset_num_samples(val) == 20 && cumlp_dataset_num_samples(train) == 81);
    unsigned char seen[N] = {0};
    int64_t distinct = train ? check_intact(train, seen) : 0;
    distinct += val ? check_intact(val, seen) : 0;
    CHECK(distinct == N);                               /* disjoint and complete */
    CHECK(cumlp_dataset_features(ds)[2 * 50] == 50.0f); /* ds unchanged */
    cumlp_dataset_destroy(train);
    cumlp_dataset_destroy(val);
    CHECK_STATUS(cumlp_dataset_split(ds, 0.0, 9, &train, &val), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_dataset_split(ds, 0.999, 9, &train, &val), CUMLP_ERROR_INVALID_VALUE);
    CHECK(train == NULL && val == NULL);
    CHECK_OK(cumlp_dataset_subset(ds, 10, 5, &sub));
    if (sub) {
        CHECK(cumlp_dataset_num_samples(sub) == 5);
        CHECK(cumlp_dataset_features(sub)[0] == 10.0f && cumlp_dataset_label(sub, 4) == 14 % 3);
    }
    cumlp_dataset_destroy(sub);
    CHECK_STATUS(cumlp_dataset_subset(ds, 100, 2, &sub), CUMLP_ERROR_INVALID_VALUE);
    CHECK(sub == NULL);
    cumlp_dataset_destroy(ds);
}

static void test_scaling(void) {
    cumlp_dataset *train = numbered(11), *test = numbered(21);
    if (!train || !test) return;
    cumlp_scaler *s = NULL;
    /* per feature min-max from the training split: feature 0 in [0, 10], feature 1 in [0, 100] */
    CHECK_OK(cumlp_scaler_fit(train, CUMLP_SCALE_MINMAX, 1, &s));
    CHECK(cumlp_scaler_num_features(s) == 2);
    CHECK_OK(cumlp_scaler_apply(s, train));
    CHECK_OK(cumlp_scaler_apply(s, test));
    const float *x = cumlp_dataset_features(train), *t = cumlp_dataset_features(test);
    CHECK(x[0] == 0 && x[1] == 0);
    CHECK_NEAR(x[20], 1.0, 1e-6);
    CHECK_NEAR(x[21], 1.0, 1e-6);
    CHECK_NEAR(t[40], 2.0, 1e-6); /* test sample 20 lies outside the training range */
    CHECK_NEAR(t[41], 2.0, 1e-6);
    cumlp_scaler_destroy(s);
    /* overall standardization: one mean and deviation over both features */
    cumlp_dataset *d = numbered(4);
    CHECK_OK(cumlp_scaler_fit(d, CUMLP_SCALE_STANDARDIZE, 0, &s));
    float off[2], sc[2];
    CHECK_OK(cumlp_scaler_get(s, off, sc, 2));
    /* values 0,0,1,10,2,20,3,30: mean 8.25 */
    CHECK_NEAR(off[0], 8.25, 1e-5);
    CHECK(off[0] == off[1] && sc[0] == sc[1]);
    double var = 0;
    const double v[8] = {0, 0, 1, 10, 2, 20, 3, 30};
    for (int i = 0; i < 8; i++)
        var += (v[i] - 8.25) * (v[i] - 8.25) / 8;
    CHECK_NEAR(sc[0], 1 / sqrt(var), 1e-6);
    CHECK_OK(cumlp_scaler_apply(s, d));
    double mean = 0;
    for (int i = 0; i < 8; i++)
        mean += cumlp_dataset_features(d)[i] / 8.0;
    CHECK_NEAR(mean, 0.0, 1e-6);
    cumlp_scaler_destroy(s);
    /* rebuilt from stored statistics, and refused on a shape mismatch */
    cumlp_scaler *r = NULL;
    CHECK_OK(cumlp_scaler_create(NULL, 2, off, sc, &r));
    cumlp_dataset *three = NULL;
    CHECK_OK(cumlp_dataset_create(NULL, 3, 1, 1, 0, &three));
    CHECK_STATUS(cumlp_scaler_apply(r, three), CUMLP_ERROR_INVALID_VALUE);
    sc[1] = 0;
    cumlp_scaler *z = NULL;
    CHECK_STATUS(cumlp_scaler_create(NULL, 2, off, sc, &z), CUMLP_ERROR_INVALID_VALUE);
    CHECK(z == NULL);
    cumlp_scaler_destroy(r);
    cumlp_dataset_destroy(three);
    cumlp_dataset_destroy(d);
    cumlp_dataset_destroy(train);
    cumlp_dataset_destroy(test);
}

/* fp32 values are rounded once, from the decimal text to the nearest float (strtof), not through
 * a double: just above the midpoint between 1 and the next float, the double rounding (to the
 * midpoint, then ties-to-even) would give 1. */
static void test_fp32_rounded_once(void) {
    const char *above = "1.000000059604644775390625001"; /* 1 + 2^-24 + 1e-27 */
    const char *midpoint = "1.000000059604644775390625"; /* 1 + 2^-24 exactly: ties to even */
    const float up = nextafterf(1.0f, 2.0f);
    char text[160];
    snprintf(text, sizeof text, "%s,%s,0\n", above, midpoint);
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_read_csv_memory(NULL, text, strlen(text), NULL, &ds));
    if (ds) {
        const float *x = cumlp_dataset_features(ds);
        CHECK_MSG(x[0] == up && x[1] == 1.0f, "csv: %.9g %.9g", x[0], x[1]);
    }
    cumlp_dataset_destroy(ds);
    snprintf(text, sizeof text, "1 2 1\n%s %s\n%s\n", above, midpoint, above);
    ds = NULL;
    CHECK_OK(cumlp_dataset_read_fann_memory(NULL, text, strlen(text), 0, &ds));
    if (ds) {
        const float *x = cumlp_dataset_features(ds), *y = cumlp_dataset_targets(ds);
        CHECK_MSG(x[0] == up && x[1] == 1.0f && y[0] == up, "fann: %.9g %.9g %.9g", x[0], x[1],
                  y[0]);
    }
    cumlp_dataset_destroy(ds);
    /* a value beyond fp32 is named by its text */
    expect_csv_error("1e39,0\n", NULL, CUMLP_ERROR_NON_FINITE, "1e39 is not a finite fp32 number");
    expect_fann_error("1 1 1\n-1e39\n0\n", CUMLP_ERROR_NON_FINITE, "-1e39 is not a finite");
}

/* A feature whose spread is nonzero but so small (subnormal values) that 1/spread overflows fp32
 * is treated as constant, scale 1, like a zero spread; it used to fail with NON_FINITE. */
static void test_scaling_tiny_spread(void) {
    cumlp_dataset *d = NULL;
    CHECK_OK(cumlp_dataset_create(NULL, 3, 1, 4, 0, &d));
    if (!d) return;
    float *x = cumlp_dataset_features(d);
    const float tiny[4] = {1e-40f, 2e-40f, 1e-40f, 2e-40f}; /* sd 5e-41, 1/sd 2e40 > FLT_MAX */
    const float normal[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
        x[3 * i + 0] = tiny[i];
        x[3 * i + 1] = normal[i];
        x[3 * i + 2] = 7; /* exactly constant */
    }
    for (int method = CUMLP_SCALE_MINMAX; method <= CUMLP_SCALE_STANDARDIZE; method++) {
        cumlp_scaler *s = NULL;
        CHECK_MSG(cumlp_scaler_fit(d, method, 1, &s) == CUMLP_SUCCESS, "method %d: %s", method,
                  cumlp_last_error(NULL));
        float off[3] = {0, 0, 0}, sc[3] = {0, 0, 0};
        if (s) CHECK_OK(cumlp_scaler_get(s, off, sc, 3));
        int standardize = method == CUMLP_SCALE_STANDARDIZE;
        float mean = (float)(((double)tiny[0] + tiny[1]) / 2);
        CHECK(sc[0] == 1.0f && off[0] == (standardize ? mean : tiny[0]));
        CHECK(sc[2] == 1.0f && off[2] == 7.0f);
        CHECK_NEAR(sc[1], standardize ? 1 / sqrt(1.25) : 1 / 3.0, 1e-6);
        cumlp_scaler_destroy(s);
    }
    /* one pair over all features: the tiny spread of the whole dataset, likewise */
    for (int i = 0; i < 4; i++)
        x[3 * i + 1] = x[3 * i + 2] = tiny[i];
    for (int method = CUMLP_SCALE_MINMAX; method <= CUMLP_SCALE_STANDARDIZE; method++) {
        cumlp_scaler *s = NULL;
        CHECK_MSG(cumlp_scaler_fit(d, method, 0, &s) == CUMLP_SUCCESS, "method %d: %s", method,
                  cumlp_last_error(NULL));
        float off[3] = {0, 0, 0}, sc[3] = {0, 0, 0};
        if (s) CHECK_OK(cumlp_scaler_get(s, off, sc, 3));
        CHECK(sc[0] == 1.0f && sc[1] == 1.0f && sc[2] == 1.0f);
        if (s) CHECK_OK(cumlp_scaler_apply(s, d));
        for (int i = 0; i < 12; i++)
            CHECK(isfinite(x[i]) && fabsf(x[i]) < 1e-39f);
        for (int i = 0; i < 4; i++) /* back to the tiny values for the next method */
            x[3 * i] = x[3 * i + 1] = x[3 * i + 2] = tiny[i];
        cumlp_scaler_destroy(s);
    }
    cumlp_dataset_destroy(d);
}

/* A NULL path or text is INVALID_VALUE and still sets *ds to NULL (a stale handle in the
 * caller's variable would otherwise look like a dataset). */
static void test_null_inputs(void) {
    cumlp_dataset *sentinel = (cumlp_dataset *)&sentinel, *ds = sentinel;
    CHECK_STATUS(cumlp_dataset_read_csv(NULL, NULL, NULL, &ds), CUMLP_ERROR_INVALID_VALUE);
    CHECK(ds == NULL);
    ds = sentinel;
    CHECK_STATUS(cumlp_dataset_read_csv_memory(NULL, NULL, 0, NULL, &ds),
                 CUMLP_ERROR_INVALID_VALUE);
    CHECK(ds == NULL);
    ds = sentinel;
    CHECK_STATUS(cumlp_dataset_read_fann(NULL, NULL, 0, &ds), CUMLP_ERROR_INVALID_VALUE);
    CHECK(ds == NULL);
    ds = sentinel;
    CHECK_STATUS(cumlp_dataset_read_fann_memory(NULL, NULL, 0, 0, &ds), CUMLP_ERROR_INVALID_VALUE);
    CHECK(ds == NULL);
    ds = sentinel;
    CHECK_STATUS(cumlp_dataset_read_idx(NULL, NULL, NULL, 0, &ds), CUMLP_ERROR_INVALID_VALUE);
    CHECK(ds == NULL);
    CHECK_STATUS(cumlp_dataset_read_csv(NULL, "x.csv", NULL, NULL), CUMLP_ERROR_INVALID_VALUE);
}

/* A reader given a FIFO (or another non-regular file) fails at once with CUMLP_ERROR_IO instead
 * of blocking in open() until a writer appears. alarm() turns a hang into a failure. */
static void test_readers_refuse_fifo(void) {
    char fifo[512], good_img[512], good_lab[512];
    tmp_path(fifo, sizeof fifo, "fifo");
    tmp_path(good_img, sizeof good_img, "fifo_images.idx");
    tmp_path(good_lab, sizeof good_lab, "fifo_labels.idx");
    remove(fifo);
    if (mkfifo(fifo, 0600) != 0) {
        CHECK_MSG(0, "mkfifo %s: %s", fifo, strerror(errno));
        return;
    }
    size_t ni = make_images(img_buf, 5, 3, 4), nl = make_labels(lab_buf, 5, five_labels);
    CHECK(write_file(good_img, img_buf, ni) && write_file(good_lab, lab_buf, nl));
    alarm(10);
    cumlp_dataset *ds = (cumlp_dataset *)(uintptr_t)1;
    CHECK_STATUS(cumlp_dataset_read_csv(NULL, fifo, NULL, &ds), CUMLP_ERROR_IO);
    CHECK(ds == NULL);
    CHECK_MSG(strstr(cumlp_last_error(NULL), fifo) && strstr(cumlp_last_error(NULL), "FIFO"), "%s",
              cumlp_last_error(NULL));
    ds = (cumlp_dataset *)(uintptr_t)1;
    CHECK_STATUS(cumlp_dataset_read_fann(NULL, fifo, 0, &ds), CUMLP_ERROR_IO);
    CHECK(ds == NULL);
    CHECK(strstr(cumlp_last_error(NULL), fifo) != NULL);
    /* IDX: the FIFO as the images file and as the labels file */
    ds = (cumlp_dataset *)(uintptr_t)1;
    CHECK_STATUS(cumlp_dataset_read_idx(NULL, fifo, good_lab, 0, &ds), CUMLP_ERROR_IO);
    CHECK(ds == NULL);
    CHECK(strstr(cumlp_last_error(NULL), fifo) != NULL);
    ds = (cumlp_dataset *)(uintptr_t)1;
    CHECK_STATUS(cumlp_dataset_read_idx(NULL, good_img, fifo, 0, &ds), CUMLP_ERROR_IO);
    CHECK(ds == NULL);
    CHECK(strstr(cumlp_last_error(NULL), fifo) != NULL);
    /* a directory, too */
    ds = (cumlp_dataset *)(uintptr_t)1;
    CHECK_STATUS(cumlp_dataset_read_csv(NULL, tmpdir(), NULL, &ds), CUMLP_ERROR_IO);
    CHECK(strstr(cumlp_last_error(NULL), "directory") != NULL);
    alarm(0);
    /* the regular files still read */
    ds = NULL;
    CHECK_OK(cumlp_dataset_read_idx(NULL, good_img, good_lab, 0, &ds));
    cumlp_dataset_destroy(ds);
    remove(fifo);
    remove(good_img);
    remove(good_lab);
}

int main(void) {
    RUN(test_idx_plain_and_gzip);
    RUN(test_idx_other_types);
    RUN(test_idx_bad_files);
    RUN(test_idx_bad_gzip);
    RUN(test_idx_gzip_bomb);
    RUN(test_csv_classification);
    RUN(test_csv_regression_file);
    RUN(test_csv_blank_delimiters);
    RUN(test_csv_bad_files);
    RUN(test_without_targets);
    RUN(test_fann);
    RUN(test_fann_bad_files);
    RUN(test_context_messages);
    RUN(test_labels_and_create);
    RUN(test_shuffle);
    RUN(test_split_and_subset);
    RUN(test_split_off_in_place);
    RUN(test_memory_of_reading_and_splitting);
    RUN(test_scaling);
    RUN(test_fp32_rounded_once);
    RUN(test_scaling_tiny_spread);
    RUN(test_readers_refuse_fifo);
    RUN(test_null_inputs);
    return harness_finish();
}
