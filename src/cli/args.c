/* args.c - option parsing, exit codes and the context for the `cumlp` command. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_args_defaults(cli_args *a) {
    memset(a, 0, sizeof *a);
    a->format = "auto";
    a->task = "classify";
    a->scale = NULL; /* minmax for IDX images, else none */
    a->label_column = -1;
    a->classes = 0;
    a->act = "relu";
    a->optimizer = "adam";
    a->schedule = "constant";
    /* per-optimizer defaults (cumlp_optimizer_defaults_for) unless given */
    a->lr = a->momentum = a->weight_decay = a->beta1 = a->beta2 = a->eps = NAN;
    a->alpha = a->rho = a->lr_decay = a->initial_accumulator = a->momentum_decay = NAN;
    a->clip_norm = a->clip_value = 0; /* off */
    a->power = 1.0;
    a->gamma = 0.1;
    a->step_epochs = 10;
    a->epochs = 10;
    a->batch = 128;
    a->seed = 42;
    a->backend = "auto";
    a->transport = "auto";
    a->progress = -1; /* a bar when stderr is a terminal */
    a->tol = NAN;     /* per-backend default */
}

typedef enum { OPT_STRING, OPT_INT, OPT_INT64, OPT_U64, OPT_DOUBLE, OPT_FLAG } opt_kind;

typedef struct opt_spec {
    const char *name;
    opt_kind kind;
    size_t offset;
} opt_spec;

#define OPT(name, kind, field)                                                                     \
    { name, kind, offsetof(cli_args, field) }
static const opt_spec specs[] = {
    OPT("data", OPT_STRING, data),
    OPT("labels", OPT_STRING, labels),
    OPT("format", OPT_STRING, format),
    OPT("task", OPT_STRING, task),
    OPT("scale", OPT_STRING, scale),
    OPT("scale-per-feature", OPT_FLAG, scale_per_feature),
    OPT("test-data", OPT_STRING, test_data),
    OPT("test-labels", OPT_STRING, test_labels),
    OPT("csv-header", OPT_FLAG, csv_header),
    OPT("label-column", OPT_INT, label_column),
    OPT("classes", OPT_INT, classes),
    OPT("limit", OPT_INT64, limit),
    OPT("val-split", OPT_DOUBLE, val_split),
    OPT("layers", OPT_STRING, layers),
    OPT("act", OPT_STRING, act),
    OPT("out-act", OPT_STRING, out_act),
    OPT("loss", OPT_STRING, loss),
    OPT("init", OPT_STRING, init),
    OPT("optimizer", OPT_STRING, optimizer),
    OPT("lr", OPT_DOUBLE, lr),
    OPT("momentum", OPT_DOUBLE, momentum),
    OPT("weight-decay", OPT_DOUBLE, weight_decay),
    OPT("beta1", OPT_DOUBLE, beta1),
    OPT("beta2", OPT_DOUBLE, beta2),
    OPT("eps", OPT_DOUBLE, eps),
    OPT("alpha", OPT_DOUBLE, alpha),
    OPT("rho", OPT_DOUBLE, rho),
    OPT("centered", OPT_FLAG, centered),
    OPT("lr-decay", OPT_DOUBLE, lr_decay),
    OPT("initial-accumulator", OPT_DOUBLE, initial_accumulator),
    OPT("momentum-decay", OPT_DOUBLE, momentum_decay),
    OPT("clip-norm", OPT_DOUBLE, clip_norm),
    OPT("clip-value", OPT_DOUBLE, clip_value),
    OPT("skip-non-finite", OPT_FLAG, skip_non_finite),
    OPT("warmup-epochs", OPT_INT, warmup_epochs),
    OPT("milestones", OPT_STRING, milestones),
    OPT("power", OPT_DOUBLE, power),
    OPT("schedule", OPT_STRING, schedule),
    OPT("gamma", OPT_DOUBLE, gamma),
    OPT("step-epochs", OPT_INT, step_epochs),
    OPT("lr-min", OPT_DOUBLE, lr_min),
    OPT("target-loss", OPT_DOUBLE, target_loss),
    OPT("patience", OPT_INT, patience),
    OPT("min-delta", OPT_DOUBLE, min_delta),
    OPT("restore-best", OPT_FLAG, restore_best),
    OPT("epochs", OPT_INT, epochs),
    OPT("batch", OPT_INT64, batch),
    OPT("seed", OPT_U64, seed),
    OPT("backend", OPT_STRING, backend),
    OPT("transport", OPT_STRING, transport),
    OPT("threads", OPT_INT, threads),
    OPT("precision", OPT_STRING, precision),
    OPT("epilogues", OPT_STRING, epilogues),
    OPT("graph", OPT_STRING, graph),
    OPT("tf32", OPT_FLAG, tf32),
    OPT("quiet", OPT_FLAG, quiet),
    OPT("progress", OPT_FLAG, progress),
    OPT("save", OPT_STRING, save),
    OPT("log", OPT_STRING, log),
    OPT("plot", OPT_STRING, plot),
    OPT("model", OPT_STRING, model),
    OPT("out", OPT_STRING, out),
    OPT("tol", OPT_DOUBLE, tol),
    OPT("step", OPT_DOUBLE, step),
};

/* Whether `name` is a word of the space-separated list. */
static int listed(const char *list, const char *name, size_t len) {
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ' ');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, len) == 0) return 1;
        p += n;
        while (*p == ' ')
            p++;
    }
    return 0;
}

static int store(const opt_spec *s, const char *value, cli_args *a) {
    char *field = (char *)a + s->offset, *end = NULL;
    /* The strto* functions skip leading blanks and strtoull negates "-1" into 2^64 - 1: a number
     * must start with its sign or first digit, and an unsigned one with a digit. */
    int number = s->kind != OPT_STRING && s->kind != OPT_FLAG;
    if (number && (value[0] == '\0' || isspace((unsigned char)value[0]))) return 0;
    if (s->kind == OPT_U64 && !isdigit((unsigned char)value[0])) return 0;
    errno = 0;
    switch (s->kind) {
    case OPT_STRING:
        *(const char **)(void *)field = value;
        return 1;
    case OPT_FLAG:
        *(int *)(void *)field = 1;
        return 1;
    case OPT_INT: {
        long v = strtol(value, &end, 10);
        if (errno || *end || end == value || v < -2147483647L || v > 2147483647L) return 0;
        *(int *)(void *)field = (int)v;
        return 1;
    }
    case OPT_INT64: {
        long long v = strtoll(value, &end, 10);
        if (errno || *end || end == value) return 0;
        *(int64_t *)(void *)field = (int64_t)v;
        return 1;
    }
    case OPT_U64: {
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || *end || end == value) return 0;
        *(uint64_t *)(void *)field = (uint64_t)v;
        return 1;
    }
    default: {
        double v = strtod(value, &end);
        if (errno || *end || end == value || !isfinite(v)) return 0;
        *(double *)(void *)field = v;
        return 1;
    }
    }
}

int cli_parse(int argc, char **argv, int first, const char *command, const char *allowed,
              cli_args *a) {
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "cumlp %s: unexpected argument \"%s\" (see cumlp %s --help)\n", command,
                    arg, command);
            return 0;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const opt_spec *s = NULL;
        for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++)
            if (strlen(specs[k].name) == len && strncmp(specs[k].name, name, len) == 0)
                s = &specs[k];
        if (!s || !listed(allowed, name, len)) {
            fprintf(stderr, "cumlp %s: unknown option --%.*s (see cumlp %s --help)\n", command,
                    (int)len, name, command);
            return 0;
        }
        const char *value = NULL;
        if (s->kind != OPT_FLAG) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                fprintf(stderr, "cumlp %s: --%s needs a value\n", command, s->name);
                return 0;
            }
        } else if (eq) {
            fprintf(stderr, "cumlp %s: --%s takes no value\n", command, s->name);
            return 0;
        }
        if (!store(s, value, a)) {
            fprintf(stderr, "cumlp %s: --%s: \"%s\" is not a valid number\n", command, s->name,
                    value);
            return 0;
        }
    }
    return 1;
}

int cli_wants_help(int argc, char **argv, int first) {
    for (int i = first; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

int cli_exit_code(cumlp_status status) {
    switch (status) {
    case CUMLP_SUCCESS:
        return EXIT_OK;
    case CUMLP_ERROR_NON_FINITE:
    case CUMLP_STEP_SKIPPED:
        return EXIT_NUMERICAL;
    case CUMLP_ERROR_INVALID_VALUE:
    case CUMLP_ERROR_NOT_SUPPORTED:
    case CUMLP_ERROR_NO_DEVICE:
        return EXIT_USAGE;
    default:
        return EXIT_DATA;
    }
}

int cli_fail(const char *command, cumlp_status status, const char *message) {
    fprintf(stderr, "cumlp %s: %s\n", command, message && *message ? message : "failed");
    return cli_exit_code(status);
}

int cli_fail_data(const char *command, const char *message) {
    fprintf(stderr, "cumlp %s: %s\n", command, message && *message ? message : "failed");
    return EXIT_DATA;
}

int cli_parse_name(const char *command, const char *option, cli_name_parser parse,
                   const char *value, int *out) {
    if (parse(value, out) == CUMLP_SUCCESS) return 1;
    fprintf(stderr, "cumlp %s: --%s: %s\n", command, option, cumlp_last_error(NULL));
    return 0;
}

int cli_context(const char *command, const cli_args *a, cumlp_context **ctx) {
    int backend = 0, precision = a->tf32 ? CUMLP_PRECISION_TF32 : CUMLP_PRECISION_FP32;
    int epilogues = CUMLP_EPILOGUES_OFF;
    if (!cli_parse_name(command, "backend", cumlp_backend_from_name, a->backend, &backend))
        return EXIT_USAGE;
    if (a->epilogues &&
        !cli_parse_name(command, "epilogues", cumlp_epilogues_from_name, a->epilogues, &epilogues))
        return EXIT_USAGE;
    if (a->graph && strcmp(a->graph, "on") != 0 && strcmp(a->graph, "off") != 0) {
        fprintf(stderr, "cumlp %s: --graph: '%s' is not on or off\n", command, a->graph);
        return EXIT_USAGE;
    }
    if (a->precision &&
        !cli_parse_name(command, "precision", cumlp_precision_from_name, a->precision, &precision))
        return EXIT_USAGE;
    if (a->tf32 && precision != CUMLP_PRECISION_TF32) {
        fprintf(stderr, "cumlp %s: --tf32 (--precision tf32) contradicts --precision %s\n", command,
                a->precision);
        return EXIT_USAGE;
    }
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = backend;
    o.num_threads = a->threads;
    o.precision = precision;
    cumlp_status st = cumlp_context_create(ctx, &o);
    if (st != CUMLP_SUCCESS) return cli_fail(command, st, cumlp_last_error(NULL));
    st = cumlp_context_set_epilogues(*ctx, epilogues);
    /* --graph on asks for graphs (an error where there are none); the backend's default else */
    if (st == CUMLP_SUCCESS && a->graph)
        st = cumlp_context_set_graphs(*ctx, strcmp(a->graph, "on") == 0);
    if (st != CUMLP_SUCCESS) {
        int code = cli_fail(command, st, cumlp_last_error(*ctx));
        cumlp_context_destroy(*ctx);
        *ctx = NULL;
        return code;
    }
    return EXIT_OK;
}
