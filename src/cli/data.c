/* data.c - loading datasets and scalers for the `cumlp` command. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Whether a regular file starts as IDX data does: gzip's magic (cumlp reads gzip for IDX only),
 * or IDX's (0, 0, an element type, 1 to 8 dimensions). */
static int looks_like_idx(const char *path) {
    struct stat sb;
    unsigned char b[4];
    FILE *f = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? fopen(path, "rb") : NULL;
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return 1;
    if (n < 4) return 0;
    int type = b[2] == 0x08 || b[2] == 0x09 || (b[2] >= 0x0B && b[2] <= 0x0E);
    return b[0] == 0 && b[1] == 0 && type && b[3] >= 1 && b[3] <= 8;
}

/* The format named by --format, or guessed from the file names, or from the data's first bytes
 * (IDX images without labels). */
static const char *data_format(const cli_args *a, const char *path, const char *labels) {
    if (strcmp(a->format, "auto") != 0) return a->format;
    if (labels) return "idx";
    if (ends_with(path, ".csv")) return "csv";
    if (ends_with(path, ".data") || ends_with(path, ".fann")) return "fann";
    if (looks_like_idx(path)) return "idx";
    return NULL;
}

/* What the first lines of a CSV file say about its layout. Fields are split at commas, as
 * cumlp_csv_options' default delimiter. */
typedef struct csv_peek {
    int header;    /* line 1 is a header: --csv-header, or it holds no number at all */
    int detected;  /* ... found so here (no --csv-header) */
    int mixed;     /* line 1, not a header, has fields that are not numbers */
    int64_t width; /* fields of the first data line; -1 when the file cannot be read here */
} csv_peek;

/* Counts the comma-separated fields of a line and those that are numbers (C syntax). */
static int64_t count_fields(const char *line, int64_t *numbers) {
    int64_t fields = 0;
    *numbers = 0;
    for (const char *p = line;; p++) {
        const char *end = p + strcspn(p, ",\n");
        char *stop;
        strtod(p, &stop);
        while (stop < end && strchr(" \t\r\v\f", *stop))
            stop++;
        fields++;
        *numbers += stop == end && end > p && strspn(p, " \t\r\v\f") < (size_t)(end - p);
        p = end;
        if (*p != ',') break;
    }
    return fields;
}

/* Reads the first lines of path (a regular file; otherwise width is -1 and the reader reports
 * it): whether line 1 is a header (given, or detected as a line without any number) and the
 * width of the first data line. */
static void peek_csv(const char *path, int has_header, csv_peek *p) {
    memset(p, 0, sizeof *p);
    p->width = -1;
    p->header = has_header;
    struct stat sb;
    FILE *f = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? fopen(path, "r") : NULL;
    char *line = NULL;
    size_t cap = 0;
    for (int64_t n = 1; f && p->width < 0 && getline(&line, &cap, f) >= 0; n++) {
        int64_t numbers = 0, fields = count_fields(line, &numbers);
        int blank = strspn(line, " \t\r\n\v\f") == strlen(line);
        if (n == 1 && !blank && !has_header) {
            p->detected = p->header = numbers == 0;
            p->mixed = numbers > 0 && numbers < fields;
        }
        if ((n == 1 && p->header) || blank) continue;
        p->width = fields;
    }
    free(line);
    if (f) fclose(f);
}

/* Reads the file; classes: 0 for regression targets, -1 for classes counted from the labels, or
 * the class count (IDX labels are always classes); label_column as cumlp_csv_options has it. A
 * CSV header is detected (with a note); a bad number on a first line that could be one suggests
 * --csv-header. */
static int read_dataset(const char *command, cumlp_context *ctx, const cli_args *a,
                        const char *format, const char *path, const char *labels, int classes,
                        int label_column, cumlp_dataset **ds) {
    cumlp_status st;
    csv_peek peek = {0, 0, 0, -1};
    if (strcmp(format, "idx") == 0) {
        st = cumlp_dataset_read_idx(ctx, path, labels, classes > 0 ? classes : 0, ds);
    } else if (strcmp(format, "fann") == 0) {
        st = cumlp_dataset_read_fann(ctx, path, classes != 0, ds);
    } else {
        peek_csv(path, a->csv_header, &peek);
        if (peek.detected)
            fprintf(stderr, "cumlp %s: note: line 1 of %s holds no number: read as a header\n",
                    command, path);
        cumlp_csv_options o;
        cumlp_csv_defaults(&o);
        o.has_header = peek.header;
        o.label_column = label_column;
        o.num_classes = classes;
        st = cumlp_dataset_read_csv(ctx, path, &o, ds);
    }
    if (st == CUMLP_SUCCESS) return EXIT_OK;
    if (st != CUMLP_ERROR_FORMAT || !peek.mixed)
        return cli_fail_data(command, cumlp_last_error(ctx));
    fprintf(stderr, "cumlp %s: %s (if line 1 is a header, give --csv-header)\n", command,
            cumlp_last_error(ctx));
    return EXIT_DATA;
}

int cli_data_is_idx(const cli_args *a) {
    const char *format = a->data ? data_format(a, a->data, a->labels) : NULL;
    return format && strcmp(format, "idx") == 0;
}

/* Checks the data options and finds the format; IDX data needs labels unless labels_optional. */
static int data_source(const char *command, const cli_args *a, int test, int labels_optional,
                       const char **format_out) {
    const char *path = test ? a->test_data : a->data;
    const char *labels = test ? a->test_labels : a->labels;
    const char *option = test ? "--test-data" : "--data";
    if (!path) {
        fprintf(stderr, "cumlp %s: %s is required\n", command, option);
        return EXIT_USAGE;
    }
    if (a->limit < 0 || a->classes < 0) {
        fprintf(stderr,
                "cumlp %s: --limit and --classes must be >= 0 (0: all samples, classes "
                "from the labels)\n",
                command);
        return EXIT_USAGE;
    }
    const char *format = data_format(a, path, labels);
    if (!format ||
        (strcmp(format, "idx") != 0 && strcmp(format, "csv") != 0 && strcmp(format, "fann") != 0)) {
        struct stat sb;
        if (!format && stat(path, &sb) != 0) { /* say that it is missing, not its format */
            fprintf(stderr, "cumlp %s: %s: cannot open: %s\n", command, path, strerror(errno));
            return EXIT_DATA;
        }
        fprintf(stderr,
                "cumlp %s: cannot tell the format of %s: give --format idx|csv|fann (idx also "
                "needs --labels)\n",
                command, path);
        return EXIT_USAGE;
    }
    if (strcmp(format, "idx") == 0 && !labels && !labels_optional) {
        fprintf(stderr, "cumlp %s: IDX data needs %s\n", command,
                test ? "--test-labels" : "--labels");
        return EXIT_USAGE;
    }
    if (a->task && strcmp(a->task, "classify") != 0 && strcmp(a->task, "regress") != 0) {
        fprintf(stderr, "cumlp %s: --task must be classify or regress\n", command);
        return EXIT_USAGE;
    }
    *format_out = format;
    return EXIT_OK;
}

/* --limit: the first samples only. */
static int apply_limit(const char *command, cumlp_context *ctx, const cli_args *a,
                       cumlp_dataset **ds) {
    if (a->limit <= 0 || a->limit >= cumlp_dataset_num_samples(*ds)) return EXIT_OK;
    cumlp_dataset *part;
    cumlp_status st = cumlp_dataset_subset(*ds, 0, a->limit, &part);
    cumlp_dataset_destroy(*ds);
    *ds = part;
    if (st != CUMLP_SUCCESS) return cli_fail_data(command, cumlp_last_error(ctx));
    return EXIT_OK;
}

int cli_load_features(const char *command, cumlp_context *ctx, const cli_args *a, int64_t inputs,
                      cumlp_dataset **ds) {
    *ds = NULL;
    const char *format = NULL;
    int rc = data_source(command, a, 0, 1, &format);
    if (rc != EXIT_OK) return rc;
    /* a CSV file as wide as the model's input holds features only */
    int label_column = a->label_column;
    csv_peek peek = {0, 0, 0, -1};
    if (strcmp(format, "csv") == 0) peek_csv(a->data, a->csv_header, &peek);
    int64_t width = peek.width;
    if (width == inputs) label_column = CUMLP_CSV_NO_TARGET;
    if (width >= 0 && width != inputs && width != inputs + 1) {
        fprintf(stderr,
                "cumlp %s: %s: the rows have %lld fields, but the model takes %lld features: "
                "give them alone, or with the target\n",
                command, a->data, (long long)width, (long long)inputs);
        return EXIT_DATA;
    }
    /* the targets, if any, are not used: read as they are, labels unchecked */
    rc = read_dataset(command, ctx, a, format, a->data, a->labels, 0, label_column, ds);
    return rc == EXIT_OK ? apply_limit(command, ctx, a, ds) : rc;
}

/* The data of a binary classifier (one sigmoid output): one target per sample, 0 or 1. Text files
 * were read as regression targets, which must be 0 or 1; IDX labels (one-hot over at most 2
 * classes) become the second class's column. */
static int binary_targets(const char *command, const char *path, cumlp_dataset **ds) {
    int64_t n = cumlp_dataset_num_samples(*ds), n_out = cumlp_dataset_num_outputs(*ds);
    int classes = cumlp_dataset_num_classes(*ds);
    if (classes > 2 || (classes == 0 && n_out != 1)) {
        fprintf(stderr,
                "cumlp %s: %s has %lld %s, but a classifier with one output takes 2 classes\n",
                command, path, (long long)(classes ? classes : n_out),
                classes ? "classes" : "targets per sample");
        return EXIT_DATA;
    }
    const float *y = cumlp_dataset_targets(*ds);
    for (int64_t i = 0; classes == 0 && i < n; i++)
        if (y[i] != 0 && y[i] != 1) {
            fprintf(stderr,
                    "cumlp %s: %s: sample %lld has label %g, but a classifier with one output "
                    "takes labels 0 and 1\n",
                    command, path, (long long)i + 1, y[i]);
            return EXIT_DATA;
        }
    if (classes == 0) return EXIT_OK;
    int64_t nf = cumlp_dataset_num_features(*ds);
    cumlp_dataset *one = NULL;
    if (cumlp_dataset_create(NULL, nf, 1, n, 0, &one) != CUMLP_SUCCESS)
        return cli_fail_data(command, cumlp_last_error(NULL));
    memcpy(cumlp_dataset_features(one), cumlp_dataset_features(*ds),
           (size_t)(nf * n) * sizeof(float));
    float *t = cumlp_dataset_targets(one);
    for (int64_t i = 0; i < n; i++)
        t[i] = cumlp_dataset_label(*ds, i) == 1 ? 1.0f : 0.0f;
    cumlp_dataset_destroy(*ds);
    *ds = one;
    return EXIT_OK;
}

int cli_load_data(const char *command, cumlp_context *ctx, const cli_args *a, int test,
                  int64_t model_outputs, cumlp_dataset **ds) {
    const char *path = test ? a->test_data : a->data;
    const char *labels = test ? a->test_labels : a->labels;
    *ds = NULL;
    const char *format = NULL;
    int rc = data_source(command, a, test, 0, &format);
    if (rc != EXIT_OK) return rc;
    int classify = strcmp(a->task, "classify") == 0;
    /* classes: as --classes says, else as many as the model has outputs, else from the labels */
    int binary = classify && model_outputs == 1;
    int classes = !classify || binary ? 0
                  : a->classes > 0    ? a->classes
                  : model_outputs > 1 ? (int)model_outputs
                                      : -1;
    if (binary && strcmp(format, "idx") == 0) classes = a->classes;
    rc = read_dataset(command, ctx, a, format, path, labels, classes, a->label_column, ds);
    if (rc == EXIT_OK && binary) rc = binary_targets(command, path, ds);
    return rc == EXIT_OK ? apply_limit(command, ctx, a, ds) : rc;
}

void cli_scaler_path(const char *model, char *buf, size_t size) {
    snprintf(buf, size, "%s.scale", model);
}

cumlp_model_info cli_model_info(const cli_args *a, const cumlp_network *net) {
    cumlp_model_info info;
    cumlp_model_info_defaults(&info);
    int64_t out = cumlp_network_width(net, cumlp_network_num_layers(net));
    int classify = strcmp(a->task, "classify") == 0;
    info.task = classify ? CUMLP_TASK_CLASSIFY : CUMLP_TASK_REGRESS;
    info.num_classes = !classify ? 0 : out == 1 ? 2 : (int)out;
    info.label_column = a->label_column;
    return info;
}

void cli_remove_stale_scaler(const cli_args *a) {
    char path[4096];
    cli_scaler_path(a->save, path, sizeof path);
    if (remove(path) == 0 && !a->quiet)
        printf("removed %s (cumlp 0.1's scaling file: the scaling is inside %s now)\n", path,
               a->save);
}

int cli_load_scaler(const char *command, cumlp_context *ctx, const char *path, cumlp_scaler **s) {
    *s = NULL;
    FILE *f = fopen(path, "r");
    if (!f) return EXIT_OK; /* no scaler saved with this model */
    fprintf(stderr,
            "cumlp %s: note: scaling the data as %s says (a model of cumlp 0.1; one saved by "
            "cumlp train now holds its scaling)\n",
            command, path);
    long long n = 0;
    int ok = fscanf(f, "cumlp-scaler 1 %lld", &n) == 1 && n >= 1 && n <= 2147483647LL;
    float *offsets = ok ? malloc((size_t)n * sizeof *offsets) : NULL;
    float *scales = ok ? malloc((size_t)n * sizeof *scales) : NULL;
    ok = ok && offsets && scales;
    for (long long i = 0; ok && i < n; i++)
        ok = fscanf(f, "%f %f", &offsets[i], &scales[i]) == 2;
    fclose(f);
    cumlp_status st = ok ? cumlp_scaler_create(ctx, n, offsets, scales, s) : CUMLP_ERROR_FORMAT;
    free(offsets);
    free(scales);
    if (st != CUMLP_SUCCESS) {
        fprintf(stderr, "cumlp %s: %s is not a valid scaler file\n", command, path);
        return EXIT_DATA;
    }
    return EXIT_OK;
}
