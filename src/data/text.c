/* text.c - the text readers: numeric CSV and FANN's training-data format. */
#include "data_internal.h"
#include "io/numeric.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMORY_NAME "<memory>"

/* A growing array of floats (row-major CSV values). */
typedef struct float_vec {
    float *v;
    size_t len, cap;
} float_vec;

static int vec_push(float_vec *a, float x) {
    if (a->len == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        float *bigger = realloc(a->v, cap * sizeof *bigger);
        if (!bigger) return 0;
        a->v = bigger;
        a->cap = cap;
    }
    a->v[a->len++] = x;
    return 1;
}

/* Copies size bytes of text into a NUL-terminated buffer (strtod needs the terminator). */
static cumlp_status terminated_copy(cumlp_context *ctx, const char *name, const char *text,
                                    size_t size, char **out) {
    *out = malloc(size + 1);
    if (!*out) return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "%s: out of memory", name);
    memcpy(*out, text, size);
    (*out)[size] = '\0';
    return CUMLP_SUCCESS;
}

static int is_blank(int c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Whether c is padding around a field: a blank that is not the field separator (a tab or space
 * delimiter separates fields; it is never skipped as padding). */
static int is_padding(int c, int delimiter) {
    return is_blank(c) && c != delimiter;
}

/* Parses a number at *p (after optional padding) in C syntax whatever the process locale; on
 * success moves *p past it. With fvalue it is read as fp32 (strtof: rounded once, so "%.9g" of a
 * float reads back as that float), else as a double into *value. An embedded NUL byte ends the
 * text as far as strtod is concerned, so it reads as garbage. delimiter is the CSV field
 * separator, or 0 for FANN (every blank is padding). */
static int parse_number(const char **p, const char *end, int delimiter, double *value,
                        float *fvalue) {
    const char *s = *p;
    while (s < end && is_padding((unsigned char)*s, delimiter))
        s++;
    /* strtod would skip a blank delimiter or a newline as leading space */
    if (s >= end || isspace((unsigned char)*s) || *s == '\0') return 0;
    char *stop;
    errno = 0;
    double v = 0;
    float f = 0;
    if (fvalue)
        f = cumlp__strtof_c(s, &stop);
    else
        v = cumlp__strtod_c(s, &stop);
    if (stop == s || stop > end) return 0;
    if (fvalue)
        *fvalue = f;
    else
        *value = v;
    *p = stop;
    return 1;
}

/* A NON_FINITE error naming the place unless f is finite; [first, last) is the number's text. */
static cumlp_status check_finite(cumlp_context *ctx, const char *name, int64_t line, int64_t field,
                                 const char *first, const char *last, float f) {
    if (isfinite(f)) return CUMLP_SUCCESS;
    while (is_blank((unsigned char)*first))
        first++;
    int len = last - first > 40 ? 40 : (int)(last - first);
    return cumlp__error(ctx, CUMLP_ERROR_NON_FINITE,
                        "%s: line %lld, field %lld: %.*s is not a finite fp32 number", name,
                        (long long)line, (long long)field, len, first);
}

/* The reader can run only if the "C" locale object for number parsing exists. */
static cumlp_status numbers_ready(cumlp_context *ctx, const char *name) {
    if (cumlp__numeric_ready()) return CUMLP_SUCCESS;
    return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED,
                        "%s: out of memory (cannot create the \"C\" locale for numbers)", name);
}

/* ---- CSV ----------------------------------------------------------------------------------- */

cumlp_status cumlp_csv_defaults(cumlp_csv_options *options) {
    CUMLP_FAIL_IF(!options, NULL, CUMLP_ERROR_INVALID_VALUE, "options is NULL");
    memset(options, 0, sizeof *options);
    options->has_header = 0;
    options->label_column = -1;
    options->num_classes = 0;
    options->delimiter = ',';
    return CUMLP_SUCCESS;
}

typedef struct csv_state {
    cumlp_context *ctx;
    const char *func; /* the public function, named by messages about the call */
    const char *name; /* the path, or "<memory>", named by messages about the text */
    const cumlp_csv_options *o;
    float_vec values; /* row-major, n_cols per row */
    int64_t n_cols, n_rows;
} csv_state;

/* The column of the target, or -1 for none (CUMLP_CSV_NO_TARGET). */
static int64_t target_column(const csv_state *s) {
    if (s->o->label_column == CUMLP_CSV_NO_TARGET) return -1;
    return s->o->label_column < 0 ? s->n_cols - 1 : s->o->label_column;
}

static const char *line_end(const char *p, const char *end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl : end;
}

static int line_is_blank(const char *p, const char *eol) {
    for (; p < eol; p++)
        if (!is_blank((unsigned char)*p)) return 0;
    return 1;
}

/* Checks that a label value is a class: an integer in [0, num_classes), or below the inferred
 * class limit when num_classes is -1 (a larger one is a size limit). */
static cumlp_status csv_check_class(csv_state *s, int64_t line, float v) {
    int infer = s->o->num_classes < 0;
    int limit = infer ? CUMLP_MAX_INFERRED_CLASSES : s->o->num_classes;
    if (v != floorf(v) || v < 0 || v >= (float)limit)
        return cumlp__error(
            s->ctx, infer && v >= (float)limit ? CUMLP_ERROR_SIZE_LIMIT : CUMLP_ERROR_INVALID_VALUE,
            "%s: line %lld: label %g is not an integer in [0, %d)", s->name, (long long)line, v,
            limit);
    return CUMLP_SUCCESS;
}

/* Parses one non-blank line [p, eol) of fields into s->values. */
static cumlp_status csv_line(csv_state *s, const char *p, const char *eol, int64_t line) {
    int64_t field = 0;
    for (;;) {
        float f = 0.0f;
        const char *start = p;
        if (!parse_number(&p, eol, s->o->delimiter, NULL, &f)) {
            while (start < eol && is_padding((unsigned char)*start, s->o->delimiter))
                start++;
            int len = 0;
            while (start + len < eol && len < 20 && start[len] != s->o->delimiter)
                len++;
            return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT,
                                "%s: line %lld, field %lld: \"%.*s\" is not a number", s->name,
                                (long long)line, (long long)field + 1, len, start);
        }
        cumlp_status st = check_finite(s->ctx, s->name, line, field + 1, start, p, f);
        if (st != CUMLP_SUCCESS) return st;
        if (!vec_push(&s->values, f))
            return cumlp__error(s->ctx, CUMLP_ERROR_ALLOC_FAILED, "%s: out of memory at line %lld",
                                s->name, (long long)line);
        field++;
        while (p < eol && is_padding((unsigned char)*p, s->o->delimiter))
            p++;
        if (p == eol) break;
        if (*p != s->o->delimiter)
            return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT,
                                "%s: line %lld, field %lld: unexpected character '%c' after a "
                                "number",
                                s->name, (long long)line, (long long)field,
                                isprint((unsigned char)*p) ? *p : '?');
        p++;
    }
    int no_target = s->o->label_column == CUMLP_CSV_NO_TARGET;
    if (s->n_cols == 0) {
        if (field < 2 && !no_target)
            return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT,
                                "%s: line %lld has %lld field; a sample needs a feature and a "
                                "target",
                                s->name, (long long)line, (long long)field);
        s->n_cols = field;
    } else if (field != s->n_cols) {
        return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT,
                            "%s: line %lld has %lld fields but the first row has %lld", s->name,
                            (long long)line, (long long)field, (long long)s->n_cols);
    }
    int64_t label = target_column(s);
    if (s->o->num_classes != 0 && label < s->n_cols) {
        cumlp_status st = csv_check_class(s, line, s->values.v[s->values.len - field + label]);
        if (st != CUMLP_SUCCESS) return st;
    }
    s->n_rows++;
    return CUMLP_SUCCESS;
}

static cumlp_status csv_parse(csv_state *s, const char *text, size_t size) {
    const char *p = text, *end = text + size;
    int64_t line = 0;
    while (p < end) {
        const char *eol = line_end(p, end);
        line++;
        if (!(line == 1 && s->o->has_header) && !line_is_blank(p, eol)) {
            cumlp_status st = csv_line(s, p, eol, line);
            if (st != CUMLP_SUCCESS) return st;
        }
        p = eol < end ? eol + 1 : end;
    }
    if (s->n_rows == 0)
        return cumlp__error(s->ctx, CUMLP_ERROR_FORMAT, "%s: no data rows", s->name);
    return CUMLP_SUCCESS;
}

static cumlp_status csv_build(csv_state *s, cumlp_dataset **out) {
    int64_t label = target_column(s);
    if (label >= s->n_cols)
        return cumlp__error(s->ctx, CUMLP_ERROR_INVALID_VALUE,
                            "%s: label_column %lld but the rows have %lld fields", s->name,
                            (long long)label, (long long)s->n_cols);
    int classify = s->o->num_classes != 0;
    int classes = s->o->num_classes > 0 ? s->o->num_classes : 0;
    /* csv_line has checked every label; with num_classes -1, count the classes */
    for (int64_t r = 0; s->o->num_classes < 0 && r < s->n_rows; r++) {
        int c = (int)s->values.v[r * s->n_cols + label];
        if (c + 1 > classes) classes = c + 1;
    }
    int64_t n_features = label < 0 ? s->n_cols : s->n_cols - 1; /* every column, or all but one */
    cumlp_status st = cumlp__dataset_new(s->ctx, s->func, n_features, classify ? classes : 1,
                                         s->n_rows, classify ? classes : 0, out);
    if (st != CUMLP_SUCCESS) return st;
    cumlp_dataset *ds = *out;
    for (int64_t r = 0; r < s->n_rows; r++) {
        const float *row = s->values.v + r * s->n_cols;
        float *x = ds->x + r * ds->n_features;
        for (int64_t c = 0, f = 0; c < s->n_cols; c++)
            if (c != label) x[f++] = row[c];
        if (classify)
            ds->y[r * ds->n_outputs + (int64_t)row[label]] = 1.0f;
        else if (label >= 0)
            ds->y[r] = row[label];
    }
    return CUMLP_SUCCESS;
}

static cumlp_status csv_read(cumlp_context *ctx, const char *func, const char *name,
                             const char *text, size_t size, const cumlp_csv_options *options,
                             cumlp_dataset **ds) {
    cumlp_csv_options defaults;
    cumlp_csv_defaults(&defaults);
    const cumlp_csv_options *o = options ? options : &defaults;
    if (o->delimiter <= 0 || o->delimiter > 127 || o->delimiter == '\n' || isdigit(o->delimiter) ||
        o->delimiter == '.' || o->delimiter == '-' || o->delimiter == '+' || o->num_classes < -1 ||
        o->num_classes > CUMLP_MAX_INFERRED_CLASSES ||
        (o->label_column < -1 && !(o->label_column == CUMLP_CSV_NO_TARGET && o->num_classes == 0)))
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "bad options (delimiter %d, label_column %d, num_classes %d)",
                           o->delimiter, o->label_column, o->num_classes);
    csv_state s = {ctx, func, name, o, {NULL, 0, 0}, 0, 0};
    char *copy;
    cumlp_status st = numbers_ready(ctx, name);
    if (st == CUMLP_SUCCESS) st = terminated_copy(ctx, name, text, size, &copy);
    if (st != CUMLP_SUCCESS) return st;
    st = csv_parse(&s, copy, size);
    if (st == CUMLP_SUCCESS) st = csv_build(&s, ds);
    free(copy);
    free(s.values.v);
    return st;
}

cumlp_status cumlp_dataset_read_csv_memory(cumlp_context *ctx, const char *text, size_t size,
                                           const cumlp_csv_options *options, cumlp_dataset **ds) {
    if (ds) *ds = NULL;
    CUMLP_FAIL_IF(!ds || !text, ctx, CUMLP_ERROR_INVALID_VALUE, "%s is NULL", ds ? "text" : "ds");
    return csv_read(ctx, __func__, MEMORY_NAME, text, size, options, ds);
}

cumlp_status cumlp_dataset_read_csv(cumlp_context *ctx, const char *path,
                                    const cumlp_csv_options *options, cumlp_dataset **ds) {
    if (ds) *ds = NULL;
    CUMLP_FAIL_IF(!ds || !path, ctx, CUMLP_ERROR_INVALID_VALUE, "%s is NULL", ds ? "path" : "ds");
    char *text;
    size_t size;
    cumlp_status st = cumlp__read_file(ctx, path, &text, &size);
    if (st != CUMLP_SUCCESS) return st;
    st = csv_read(ctx, __func__, path, text, size, options, ds);
    free(text);
    return st;
}

/* ---- FANN ---------------------------------------------------------------------------------- */

typedef struct fann_cursor {
    cumlp_context *ctx;
    const char *name;
    const char *p, *end;
    int64_t line;
} fann_cursor;

/* Skips whitespace, counting lines. */
static void fann_skip(fann_cursor *c) {
    while (c->p < c->end && (is_blank((unsigned char)*c->p) || *c->p == '\n')) {
        if (*c->p == '\n') c->line++;
        c->p++;
    }
}

/* Describes value k (from 0) of `kind` of sample i (from 0), or `kind` alone when k < 0. */
static const char *describe(char *buf, size_t size, const char *kind, int64_t k, int64_t i) {
    if (k < 0) return kind;
    snprintf(buf, size, "%s %lld of sample %lld", kind, (long long)k + 1, (long long)i + 1);
    return buf;
}

/* Reads a number as a double into *v, or with f as fp32 into *f (see parse_number). */
static cumlp_status fann_number(fann_cursor *c, const char *kind, int64_t k, int64_t i, double *v,
                                float *f) {
    char buf[96];
    fann_skip(c);
    if (c->p >= c->end)
        return cumlp__error(c->ctx, CUMLP_ERROR_TRUNCATED,
                            "%s: the file ends at line %lld before %s", c->name, (long long)c->line,
                            describe(buf, sizeof buf, kind, k, i));
    if (!parse_number(&c->p, c->end, 0, v, f))
        return cumlp__error(c->ctx, CUMLP_ERROR_FORMAT, "%s: line %lld: %s is not a number",
                            c->name, (long long)c->line, describe(buf, sizeof buf, kind, k, i));
    if (c->p < c->end && !isspace((unsigned char)*c->p))
        return cumlp__error(c->ctx, CUMLP_ERROR_FORMAT,
                            "%s: line %lld: unexpected character after %s", c->name,
                            (long long)c->line, describe(buf, sizeof buf, kind, k, i));
    return CUMLP_SUCCESS;
}

static cumlp_status fann_count(fann_cursor *c, const char *what, int64_t *n) {
    double v;
    cumlp_status st = fann_number(c, what, -1, 0, &v, NULL);
    if (st != CUMLP_SUCCESS) return st;
    if (v != floor(v) || v < 1)
        return cumlp__error(c->ctx, CUMLP_ERROR_FORMAT,
                            "%s: line %lld: %s is %g; it must be a whole number >= 1", c->name,
                            (long long)c->line, what, v);
    if (v > (double)CUMLP_MAX_DIM)
        return cumlp__error(c->ctx, CUMLP_ERROR_SIZE_LIMIT, "%s: line %lld: %s %g is too large",
                            c->name, (long long)c->line, what, v);
    *n = (int64_t)v;
    return CUMLP_SUCCESS;
}

/* Reads the header "N n_in n_out" and checks that the text can hold the values it announces
 * (each number takes at least two bytes, a digit and a separator) before anything is allocated. */
static cumlp_status fann_header(fann_cursor *c, int64_t n[3]) {
    cumlp_status st = fann_count(c, "the sample count", &n[0]);
    if (st == CUMLP_SUCCESS) st = fann_count(c, "the input count", &n[1]);
    if (st == CUMLP_SUCCESS) st = fann_count(c, "the output count", &n[2]);
    if (st != CUMLP_SUCCESS) return st;
    int64_t values;
    if (!cumlp__mul_size(n[0], n[1] + n[2], CUMLP_DATASET_MAX_ELEMENTS, &values))
        return cumlp__error(c->ctx, CUMLP_ERROR_SIZE_LIMIT,
                            "%s: %lld samples of %lld + %lld values exceed the dataset size limit",
                            c->name, (long long)n[0], (long long)n[1], (long long)n[2]);
    size_t left = (size_t)(c->end - c->p);
    if ((uint64_t)values > left / 2 + 1)
        return cumlp__error(c->ctx, CUMLP_ERROR_TRUNCATED,
                            "%s: the header announces %lld values but only %zu bytes follow",
                            c->name, (long long)values, left);
    return CUMLP_SUCCESS;
}

static cumlp_status fann_values(fann_cursor *c, float *dst, int64_t count, int64_t sample,
                                const char *kind) {
    for (int64_t k = 0; k < count; k++) {
        char what[96];
        snprintf(what, sizeof what, "%s %lld of sample %lld", kind, (long long)k + 1,
                 (long long)sample + 1);
        const char *first = c->p;
        cumlp_status st = fann_number(c, what, -1, 0, NULL, &dst[k]);
        if (st == CUMLP_SUCCESS) {
            while (first < c->p && (is_blank((unsigned char)*first) || *first == '\n'))
                first++;
            st = check_finite(c->ctx, c->name, c->line, k + 1, first, c->p, dst[k]);
        }
        if (st != CUMLP_SUCCESS) return st;
    }
    return CUMLP_SUCCESS;
}

static cumlp_status fann_body(fann_cursor *c, int classification, cumlp_dataset *ds) {
    for (int64_t i = 0; i < ds->n_samples; i++) {
        cumlp_status st = fann_values(c, ds->x + i * ds->n_features, ds->n_features, i, "input");
        if (st == CUMLP_SUCCESS)
            st = fann_values(c, ds->y + i * ds->n_outputs, ds->n_outputs, i, "output");
        if (st != CUMLP_SUCCESS) return st;
        if (classification) {
            float *y = ds->y + i * ds->n_outputs;
            int64_t best = cumlp_argmax(y, ds->n_outputs);
            memset(y, 0, (size_t)ds->n_outputs * sizeof *y);
            y[best] = 1.0f;
        }
    }
    fann_skip(c);
    if (c->p < c->end)
        return cumlp__error(c->ctx, CUMLP_ERROR_FORMAT,
                            "%s: line %lld: data after the %lld samples the header announces",
                            c->name, (long long)c->line, (long long)ds->n_samples);
    return CUMLP_SUCCESS;
}

static cumlp_status fann_read(cumlp_context *ctx, const char *func, const char *name,
                              const char *text, size_t size, int classification,
                              cumlp_dataset **ds) {
    if (classification != 0 && classification != 1)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "classification is %d; it must be 0 or 1", classification);
    char *copy;
    cumlp_status st = numbers_ready(ctx, name);
    if (st == CUMLP_SUCCESS) st = terminated_copy(ctx, name, text, size, &copy);
    if (st != CUMLP_SUCCESS) return st;
    fann_cursor c = {ctx, name, copy, copy + size, 1};
    int64_t n[3];
    st = fann_header(&c, n);
    if (st == CUMLP_SUCCESS && classification && n[2] < 2)
        st = cumlp__error(ctx, CUMLP_ERROR_INVALID_VALUE,
                          "%s: classification needs at least 2 outputs, the header says %lld", name,
                          (long long)n[2]);
    if (st == CUMLP_SUCCESS && classification && n[2] > CUMLP_MAX_INFERRED_CLASSES)
        st = cumlp__error(ctx, CUMLP_ERROR_SIZE_LIMIT, "%s: %lld classes exceed the limit %d", name,
                          (long long)n[2], CUMLP_MAX_INFERRED_CLASSES);
    if (st == CUMLP_SUCCESS)
        st = cumlp__dataset_new(ctx, func, n[1], n[2], n[0], classification ? (int)n[2] : 0, ds);
    if (st == CUMLP_SUCCESS) st = fann_body(&c, classification, *ds);
    if (st != CUMLP_SUCCESS) {
        cumlp_dataset_destroy(*ds);
        *ds = NULL;
    }
    free(copy);
    return st;
}

cumlp_status cumlp_dataset_read_fann_memory(cumlp_context *ctx, const char *text, size_t size,
                                            int classification, cumlp_dataset **ds) {
    if (ds) *ds = NULL;
    CUMLP_FAIL_IF(!ds || !text, ctx, CUMLP_ERROR_INVALID_VALUE, "%s is NULL", ds ? "text" : "ds");
    return fann_read(ctx, __func__, MEMORY_NAME, text, size, classification, ds);
}

cumlp_status cumlp_dataset_read_fann(cumlp_context *ctx, const char *path, int classification,
                                     cumlp_dataset **ds) {
    if (ds) *ds = NULL;
    CUMLP_FAIL_IF(!ds || !path, ctx, CUMLP_ERROR_INVALID_VALUE, "%s is NULL", ds ? "path" : "ds");
    char *text;
    size_t size;
    cumlp_status st = cumlp__read_file(ctx, path, &text, &size);
    if (st != CUMLP_SUCCESS) return st;
    st = fann_read(ctx, __func__, path, text, size, classification, ds);
    free(text);
    return st;
}
