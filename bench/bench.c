/*
 * bench.c - times full training steps (forward, loss, backward, optimizer) per backend.
 *
 * Each timed step is cumlp_train_step(loss = NULL), timed with CUDA events on the GPU (the
 * backend's timer ops) and with the host's monotonic clock around cumlp_context_synchronize
 * elsewhere. After a warm-up, the median and spread of many steps are reported together
 * with the same GEMMs timed alone through the backend's gemm op, which gives the floor a step
 * could reach and the step's overhead over it.
 */
#include "bench.h"

#include "cumlp.h"
#include "internal.h"
#include "io/atomic_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_LAYERS  64
#define MAX_CONFIGS 96

/* One network, batch, backend and precision to time. */
typedef struct bench_config {
    char name[16]; /* suite name (S, M, L) or "custom" */
    int num_layers;
    int64_t widths[MAX_LAYERS + 1];
    int activation; /* hidden layers */
    int loss;
    int batch;
    int backend;
    int precision; /* a cumlp_precision */
    int epilogues; /* a cumlp_epilogues */
    int graphs;    /* cumlp_context_set_graphs: 1 where the backend has graphs */
    int queued;    /* the timed steps queued with cumlp_train_step_async, one sync at the end */
} bench_config;

/* The launch setting of a configuration as the table and the JSON name it. */
static const char *graph_name(const bench_config *c) {
    return c->queued ? "queued" : c->graphs ? "on" : "off";
}

typedef struct bench_options {
    bench_config custom;
    const char *suite;     /* NULL: the custom configuration */
    const char *backend;   /* cpu, cuda, reference, all */
    const char *precision; /* a list of precisions, or all; NULL: fp32, and in the suite on cuda
                              all four */
    const char *epilogues; /* a list of epilogue settings; NULL: off */
    const char *graph;     /* on, off or on,off; NULL: on where the backend has graphs */
    int steps, warmup, threads;
    int auto_seconds; /* the automatic step count's time per configuration */
    const char *json_path, *commit;
    const char *init_dir; /* NULL, or where each network's initial checkpoint is written */
    int optimizer;        /* a cumlp_optimizer_type; -1: momentum 0.9, rate 0.01 (the default) */
} bench_options;

typedef struct step_stats {
    double median, min, p10, p90, max; /* ms */
} step_stats;

typedef struct bench_result {
    step_stats step;
    double gemm_ms; /* the step's GEMMs timed alone, median */
    int steps;      /* timed steps */
    int skipped;    /* of them, skipped by fp16's loss scaler (an overflow: no optimizer pass) */
    double flops;   /* 6 B sum(n_in n_out) */
    double peak_rss_mb;
    double peak_context_mb; /* the most the context held at once (device memory on cuda) */
    int threads;
    char device[256];
} bench_result;

/* ---- small helpers ----------------------------------------------------------------------------
 */

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile q of sorted[0..n) by linear interpolation. */
static double quantile(const double *sorted, int n, double q) {
    double pos = q * (n - 1);
    int lo = (int)pos;
    int hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

static step_stats summarize(double *ms, int n) {
    qsort(ms, (size_t)n, sizeof *ms, compare_doubles);
    step_stats s = {quantile(ms, n, 0.5), ms[0], quantile(ms, n, 0.1), quantile(ms, n, 0.9),
                    ms[n - 1]};
    return s;
}

static double peak_rss_mb(void) {
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return -1;
    return (double)usage.ru_maxrss / 1024.0; /* Linux reports kilobytes */
}

/* The output activation a loss requires (identity for squared error). */
static int output_activation(int loss) {
    if (loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY) return CUMLP_ACT_SOFTMAX;
    if (loss == CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY) return CUMLP_ACT_SIGMOID;
    return CUMLP_ACT_IDENTITY;
}

static double step_flops(const bench_config *c) {
    double sum = 0;
    for (int l = 0; l < c->num_layers; l++)
        sum += (double)c->widths[l] * (double)c->widths[l + 1];
    return 6.0 * c->batch * sum;
}

/* ---- arguments --------------------------------------------------------------------------------
 */

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: cumlp-bench [options]\n"
        "  --layers 784,256,128,10  widths, input first (default as shown)\n"
        "  --act relu               hidden activation: identity sigmoid tanh relu leaky_relu "
        "gelu\n"
        "  --loss ce                ce (softmax cross-entropy), bce or mse\n"
        "  --batch 256              samples per step\n"
        "  --steps N --warmup 5     timed steps (default: as many as fit in --seconds, 10 to\n"
        "                           200) and untimed warm-up steps\n"
        "  --seconds 10             the time the automatic step count aims at per configuration\n"
        "  --backend all            cpu, cuda, reference, a list such as cpu,cuda, or all\n"
        "                           (every backend built; reference only up to 2 GFLOP/step)\n"
        "  --precision fp32         fp32, tf32, bf16, fp16, a list such as fp32,bf16, or all\n"
        "                           (the suite runs all four on cuda; bf16 and fp16 only there)\n"
        "  --epilogues off          off, relu, all or a list such as off,relu: the GEMM-epilogue\n"
        "                           settings to time (cuda; the other backends run off only)\n"
        "  --graph on               on, off, queued or a list such as on,off: each step as one\n"
        "                           CUDA graph, launch by launch, or as a graph queued without\n"
        "                           a wait (cumlp_train_step_async; the mean step of one timed\n"
        "                           run in every column) (cuda; the other backends run off only)\n"
        "  --threads 0              cpu threads (0: all cores)\n"
        "  --suite S|M|L|all        the standard suite instead of --layers/--act/--loss/--batch\n"
        "  --json FILE              write one JSON object per configuration\n"
        "  --commit HASH            recorded in the JSON\n"
        "  --save-init DIR          write each network's initial parameters to DIR/<config>.\n"
        "                           safetensors (pytorch_bench.py --init-dir starts from them)\n"
        "  --optimizer O            sgd, momentum, nesterov, adam, adamw, adamax, nadam, rmsprop,\n"
        "                           adagrad or adadelta at PyTorch's defaults (default: SGD\n"
        "                           with momentum 0.9, learning rate 0.01, as pytorch_bench.py)\n");
}

static int parse_layers(const char *text, bench_config *c) {
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long long w = strtoll(p, &end, 10);
        if (end == p || w < 1 || w > CUMLP_MAX_DIM || n > MAX_LAYERS) return -1;
        c->widths[n++] = w;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    if (n < 2) return -1;
    c->num_layers = n - 1;
    return 0;
}

static int parse_int(const char *text, int min, int *out) {
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < min || v > 1000000000L) return -1;
    *out = (int)v;
    return 0;
}

/* Parses a name with one of cumlp.h's parsers; returns 0, or -1 with the library's message. */
static int parse_name(const char *option, cumlp_status (*parse)(const char *, int *),
                      const char *value, int *out) {
    if (parse(value, out) == CUMLP_SUCCESS) return 0;
    fprintf(stderr, "cumlp-bench: %s: %s\n", option, cumlp_last_error(NULL));
    return -1;
}

/* The hidden layers' activation: any but softmax, which only an output layer may have. */
static int parse_hidden_activation(const char *value, int *out) {
    if (parse_name("--act", cumlp_activation_from_name, value, out) != 0) return -1;
    if (*out != CUMLP_ACT_SOFTMAX) return 0;
    fprintf(stderr, "cumlp-bench: --act: softmax is for the output layer only\n");
    return -1;
}

/* Applies one "--name value" pair; returns 0, or -1 with a message on stderr. */
static int apply_option(bench_options *o, const char *name, const char *value) {
    int bad = 0;
    if (strcmp(name, "--layers") == 0)
        bad = parse_layers(value, &o->custom);
    else if (strcmp(name, "--act") == 0)
        return parse_hidden_activation(value, &o->custom.activation);
    else if (strcmp(name, "--loss") == 0)
        return parse_name(name, cumlp_loss_from_name, value, &o->custom.loss);
    else if (strcmp(name, "--batch") == 0)
        bad = parse_int(value, 1, &o->custom.batch);
    else if (strcmp(name, "--steps") == 0)
        bad = parse_int(value, 0, &o->steps);
    else if (strcmp(name, "--warmup") == 0)
        bad = parse_int(value, 0, &o->warmup);
    else if (strcmp(name, "--seconds") == 0)
        bad = parse_int(value, 1, &o->auto_seconds);
    else if (strcmp(name, "--threads") == 0)
        bad = parse_int(value, 0, &o->threads);
    else if (strcmp(name, "--backend") == 0)
        o->backend = value;
    else if (strcmp(name, "--precision") == 0)
        o->precision = value;
    else if (strcmp(name, "--epilogues") == 0)
        o->epilogues = value;
    else if (strcmp(name, "--graph") == 0)
        o->graph = value;
    else if (strcmp(name, "--suite") == 0)
        o->suite = value;
    else if (strcmp(name, "--json") == 0)
        o->json_path = value;
    else if (strcmp(name, "--commit") == 0)
        o->commit = value;
    else if (strcmp(name, "--save-init") == 0)
        o->init_dir = value;
    else if (strcmp(name, "--optimizer") == 0)
        return parse_name(name, cumlp_optimizer_from_name, value, &o->optimizer);
    else {
        fprintf(stderr, "cumlp-bench: unknown option %s\n", name);
        return -1;
    }
    if (bad) fprintf(stderr, "cumlp-bench: bad value '%s' for %s\n", value, name);
    return bad ? -1 : 0;
}

static int parse_args(int argc, char **argv, bench_options *o) {
    memset(o, 0, sizeof *o);
    parse_layers("784,256,128,10", &o->custom);
    o->custom.activation = CUMLP_ACT_RELU;
    o->custom.loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
    o->custom.batch = 256;
    o->backend = "all";
    o->steps = 0; /* automatic */
    o->warmup = 5;
    o->auto_seconds = 10;
    o->optimizer = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "cumlp-bench: %s needs a value\n", argv[i]);
            return -1;
        }
        if (apply_option(o, argv[i], argv[i + 1]) != 0) return -1;
        i++;
    }
    return 0;
}

/* ---- configurations ---------------------------------------------------------------------------
 */

/* The standard suite's networks: S, M, L. */
static int suite_network(const char *name, bench_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->activation = CUMLP_ACT_RELU;
    c->loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
    if (strcmp(name, "S") == 0) {
        c->batch = 256;
        return parse_layers("784,256,128,10", c);
    }
    if (strcmp(name, "M") == 0) {
        c->batch = 4096;
        return parse_layers("1024,1024,1024,1024,1024,10", c);
    }
    if (strcmp(name, "L") == 0) {
        c->batch = 16384;
        return parse_layers("1024,4096,4096,4096,1024", c);
    }
    return -1;
}

/* Backends to run: a comma-separated list of names, or every built one for "all". Returns the
 * count (at most 3), or -1 for an unknown name. */
static int backend_list(const char *names, int *out) {
    int n = 0;
    if (strcmp(names, "all") == 0) {
        const int order[] = {CUMLP_BACKEND_CUDA, CUMLP_BACKEND_CPU, CUMLP_BACKEND_REFERENCE};
        for (int i = 0; i < 3; i++)
            if (cumlp_backend_is_built(order[i])) out[n++] = order[i];
        return n;
    }
    for (const char *p = names; *p;) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int b = 0; b < CUMLP_BACKEND_COUNT; b++)
            if (b != CUMLP_BACKEND_AUTO && strlen(cumlp_backend_name(b)) == len &&
                strncmp(p, cumlp_backend_name(b), len) == 0)
                found = b;
        if (found < 0 || n == 3) return -1;
        out[n++] = found;
        p += len + (p[len] == ',');
    }
    return n;
}

/* Parses a comma-separated list of names of one set (option, its parser) into a bit set of their
 * values. */
static int parse_name_list(const char *option, cumlp_status (*parse)(const char *, int *),
                           const char *text, unsigned *set) {
    *set = 0;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, ",");
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p);
        int value = 0;
        if (parse_name(option, parse, name, &value) != 0) return -1;
        *set |= 1u << value;
        p += len + (p[len] == ',');
    }
    return 0;
}

/* Parses --precision (a comma-separated list of names, or all) into a bit set of precisions. */
static int parse_precisions(const char *text, unsigned *set) {
    if (strcmp(text, "all") == 0) {
        *set = (1u << CUMLP_PRECISION_COUNT) - 1;
        return 0;
    }
    return parse_name_list("--precision", cumlp_precision_from_name, text, set);
}

/* The launch settings of --graph by name: 0 off, 1 on (one CUDA graph), 2 queued (without a
 * wait), each a bit of the set parse_name_list makes. */
static cumlp_status graph_from_name(const char *name, int *out) {
    static const char *const names[] = {"off", "on", "queued"};
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = i;
            return CUMLP_SUCCESS;
        }
    return cumlp__error(NULL, CUMLP_ERROR_INVALID_VALUE, "'%s' is not on, off or queued", name);
}

/* Adds a configuration for each precision asked for that the backend runs (bf16 and fp16 only on
 * cuda, and tf32 only there too: the other backends' tf32 is their fp32), and on cuda for each
 * epilogue setting and graph setting asked for (the other backends run off only). */
static void add_precisions(const bench_options *o, unsigned set, unsigned epilogue_set,
                           unsigned graph_set, bench_config base, bench_config *out, int *n) {
    int cuda = base.backend == CUMLP_BACKEND_CUDA;
    if (!o->precision) set = o->suite && cuda ? (1u << CUMLP_PRECISION_COUNT) - 1 : 1u;
    if (!cuda) epilogue_set = 1u << CUMLP_EPILOGUES_OFF, graph_set = 1u;
    for (int p = 0; p < CUMLP_PRECISION_COUNT; p++) {
        if (!(set & 1u << p) || (p != CUMLP_PRECISION_FP32 && !cuda)) continue;
        for (int e = 0; e < CUMLP_EPILOGUES_COUNT; e++) {
            for (int g = 2; g >= 0 && *n < MAX_CONFIGS; g--) {
                if (!(epilogue_set & 1u << e) || !(graph_set & 1u << g)) continue;
                base.precision = p;
                base.epilogues = e;
                base.graphs = g >= 1;
                base.queued = g == 2;
                out[(*n)++] = base;
            }
        }
    }
}

/* The configurations to run; returns their count, or -1 for bad options. L runs only on cuda;
 * with "all", the reference backend runs only networks of at most 2 GFLOP a step. */
static int build_configs(const bench_options *o, bench_config *out) {
    int backends[3], nb = backend_list(o->backend, backends);
    if (nb < 0) {
        fprintf(stderr, "cumlp-bench: unknown backend %s\n", o->backend);
        return -1;
    }
    unsigned precisions = 1u, epilogue_set = 1u << CUMLP_EPILOGUES_OFF, graph_set = 2u;
    if (o->precision && parse_precisions(o->precision, &precisions) != 0) return -1;
    if (o->epilogues &&
        parse_name_list("--epilogues", cumlp_epilogues_from_name, o->epilogues, &epilogue_set) != 0)
        return -1;
    if (o->graph && parse_name_list("--graph", graph_from_name, o->graph, &graph_set) != 0)
        return -1;
    const char *names[3] = {"S", "M", "L"};
    int n = 0;
    for (int s = 0; s < (o->suite ? 3 : 1); s++) {
        bench_config net = o->custom;
        if (o->suite) {
            if (strcmp(o->suite, "all") != 0 && strcmp(o->suite, names[s]) != 0) continue;
            suite_network(names[s], &net);
        } else {
            snprintf(net.name, sizeof net.name, "custom");
        }
        for (int b = 0; b < nb; b++) {
            int all = strcmp(o->backend, "all") == 0;
            if (o->suite && strcmp(net.name, "L") == 0 && backends[b] != CUMLP_BACKEND_CUDA)
                continue;
            if (all && backends[b] == CUMLP_BACKEND_REFERENCE && step_flops(&net) > 2e9) continue;
            net.backend = backends[b];
            add_precisions(o, precisions, epilogue_set, graph_set, net, out, &n);
        }
    }
    if (o->suite && strcmp(o->suite, "all") && strcmp(o->suite, "S") && strcmp(o->suite, "M") &&
        strcmp(o->suite, "L")) {
        fprintf(stderr, "cumlp-bench: unknown suite %s (S, M, L or all)\n", o->suite);
        return -1;
    }
    return n;
}

/* ---- running one configuration ----------------------------------------------------------------
 */

/* Everything one configuration allocates, so that one function frees it all. */
typedef struct bench_run {
    cumlp_context *ctx;
    cumlp_network *net;
    cumlp_optimizer *opt;
    cumlp_tensor *X, *T;
    int queued; /* bench_config's */
} bench_run;

static void run_destroy(bench_run *r) {
    cumlp_tensor_destroy(r->X);
    cumlp_tensor_destroy(r->T);
    cumlp_optimizer_destroy(r->opt);
    cumlp_network_destroy(r->net);
    cumlp_context_destroy(r->ctx);
    memset(r, 0, sizeof *r);
}

/* Random inputs in [-1, 1) and one-hot (or uniform) targets, uploaded once. */
static cumlp_status make_batch(bench_run *r, const bench_config *c) {
    int64_t n_in = c->widths[0], n_out = c->widths[c->num_layers];
    size_t nx = (size_t)(n_in * c->batch), ny = (size_t)(n_out * c->batch);
    float *x = malloc(nx * sizeof *x), *y = calloc(ny, sizeof *y);
    cumlp_status st = x && y ? CUMLP_SUCCESS : CUMLP_ERROR_ALLOC_FAILED;
    uint64_t state = 12345;
    for (size_t i = 0; x && i < nx; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(state >> 11) * 0x1p-52 - 1.0);
    }
    for (int64_t j = 0; y && j < c->batch; j++)
        y[j * n_out + (j * 7919) % n_out] = 1.0f;
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_create(r->ctx, n_in, c->batch, &r->X);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_create(r->ctx, n_out, c->batch, &r->T);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_upload(r->X, x, (int64_t)nx);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_upload(r->T, y, (int64_t)ny);
    free(x);
    free(y);
    return st;
}

/* The benchmark's optimizer: momentum 0.9 at rate 0.01 (what pytorch_bench.py runs), or the one
 * --optimizer names at PyTorch's defaults. */
static void bench_optimizer(int type, cumlp_optimizer_options *oo) {
    cumlp_optimizer_defaults_for(type < 0 ? CUMLP_OPT_MOMENTUM : type, oo);
    if (type < 0) {
        oo->momentum = 0.9;
        oo->learning_rate = 0.01;
    }
}

static cumlp_status run_setup(bench_run *r, const bench_config *c, int threads, int optimizer) {
    cumlp_context_options co;
    cumlp_context_defaults(&co);
    co.backend = c->backend;
    co.precision = c->precision;
    co.num_threads = threads;
    cumlp_status st = cumlp_context_create(&r->ctx, &co);
    if (st == CUMLP_SUCCESS) st = cumlp_context_set_epilogues(r->ctx, c->epilogues);
    if (st == CUMLP_SUCCESS) st = cumlp_context_set_graphs(r->ctx, c->graphs);
    r->queued = c->queued;
    if (st != CUMLP_SUCCESS) return st;
    int acts[MAX_LAYERS];
    for (int l = 0; l < c->num_layers; l++)
        acts[l] = l == c->num_layers - 1 ? output_activation(c->loss) : c->activation;
    cumlp_network_options no;
    cumlp_network_defaults(&no);
    no.loss = c->loss;
    no.init = CUMLP_INIT_HE_UNIFORM;
    st = cumlp_network_create(r->ctx, c->num_layers, c->widths, acts, &no, &r->net);
    cumlp_optimizer_options oo;
    bench_optimizer(optimizer, &oo);
    if (st == CUMLP_SUCCESS) st = cumlp_optimizer_create(r->net, &oo, &r->opt);
    if (st == CUMLP_SUCCESS) st = make_batch(r, c);
    return st;
}

/* Steps that fit in about `seconds`, from the warm-up's time per step, within [10, 200]. */
static int auto_steps(int seconds, double warmup_ms_per_step) {
    double n = seconds * 1e3 / (warmup_ms_per_step > 1e-3 ? warmup_ms_per_step : 1e-3);
    return n < 10 ? 10 : n > 200 ? 200 : (int)n;
}

/* One training step; a step skipped by fp16's loss scaler (an overflow, which the warm-up steps
 * usually absorb) counts as done, in *skipped. */
static cumlp_status train_step(bench_run *r, int *skipped) {
    cumlp_status st = cumlp_train_step(r->net, r->opt, r->X, r->T, NULL);
    if (st != CUMLP_STEP_SKIPPED) return st;
    ++*skipped;
    return CUMLP_SUCCESS;
}

/* `steps` steps queued without a wait (cumlp_train_step_async) and one cumlp_optimizer_sync,
 * timed as a whole: every statistic is the mean step. The skips are the summary's. */
static cumlp_status time_queued_steps(bench_run *r, int steps, step_stats *out, int *skipped) {
    cumlp_step_summary summary;
    cumlp_status st = cumlp_optimizer_sync(r->opt, NULL); /* the warm-up's, out of the summary */
    if (st == CUMLP_SUCCESS) st = cumlp__timer_start(r->ctx);
    for (int i = 0; i < steps && st == CUMLP_SUCCESS; i++)
        st = cumlp_train_step_async(r->net, r->opt, r->X, r->T);
    if (st == CUMLP_SUCCESS) st = cumlp_optimizer_sync(r->opt, &summary);
    double total = 0;
    if (st == CUMLP_SUCCESS) st = cumlp__timer_stop(r->ctx, &total);
    if (st != CUMLP_SUCCESS) return st;
    double mean = total / steps;
    step_stats s = {mean, mean, mean, mean, mean};
    *out = s;
    *skipped = (int)summary.skipped;
    return CUMLP_SUCCESS;
}

/* Warm-up, then `*steps_io` timed steps (chosen by auto_steps when it is 0), *skipped of which
 * the loss scaler skipped. */
static cumlp_status time_steps(bench_run *r, int warmup, int auto_seconds, int *steps_io,
                               step_stats *out, int *skipped) {
    cumlp_status st = CUMLP_SUCCESS;
    int warmup_skipped = 0;
    if (warmup < 1 && *steps_io == 0) warmup = 1; /* the automatic count needs one step's time */
    double warmup_start = now_ms();
    for (int i = 0; i < warmup && st == CUMLP_SUCCESS; i++)
        st = train_step(r, &warmup_skipped);
    if (st == CUMLP_SUCCESS) st = cumlp_context_synchronize(r->ctx);
    if (*steps_io == 0) *steps_io = auto_steps(auto_seconds, (now_ms() - warmup_start) / warmup);
    int steps = *steps_io;
    *skipped = 0;
    if (r->queued) return time_queued_steps(r, steps, out, skipped);
    double *ms = malloc((size_t)steps * sizeof *ms);
    if (!ms) return CUMLP_ERROR_ALLOC_FAILED;
    for (int i = 0; i < steps && st == CUMLP_SUCCESS; i++) {
        st = cumlp__timer_start(r->ctx); /* CUDA events on the GPU, else the host clock */
        if (st == CUMLP_SUCCESS) st = train_step(r, skipped);
        if (st == CUMLP_SUCCESS) st = cumlp__timer_stop(r->ctx, &ms[i]);
    }
    if (st == CUMLP_SUCCESS) *out = summarize(ms, steps);
    free(ms);
    return st;
}

/* ---- the GEMMs alone ---------------------------------------------------------------------------
 */

/* Buffers for the largest layer: W, dW, input and output activations, a delta and the delta
 * below, in the formats the step's GEMMs use (network.c): in bf16 and fp16, W, the activations and
 * the deltas in 16 bits, dW and the output layer's product in fp32 (out holds either). */
typedef struct gemm_buffers {
    void *w, *dw, *in, *out, *delta, *below;
    int storage; /* of W, in, delta and below (and out but for the output layer) */
} gemm_buffers;

static void gemm_buffers_free(cumlp_context *ctx, gemm_buffers *g) {
    void *all[6] = {g->w, g->dw, g->in, g->out, g->delta, g->below};
    for (int i = 0; i < 6; i++)
        ctx->ops->free(ctx, all[i]);
}

/* count values in [-0.5, 0.5] (no denormals, no NaN) into a new buffer of format `storage`. */
static cumlp_status random_buffer(cumlp_context *ctx, int storage, size_t count, uint64_t seed,
                                  void **out) {
    void *native = NULL;
    cumlp_status st = ctx->ops->alloc(ctx, count, &native);
    if (st == CUMLP_SUCCESS) st = ctx->ops->random(ctx, CUMLP_DIST_UNIFORM, seed, count, native);
    if (st == CUMLP_SUCCESS) st = ctx->ops->scale_shift(ctx, native, count, 1.0, -0.5);
    if (st != CUMLP_SUCCESS || storage == CUMLP_STORAGE_NATIVE) {
        *out = native;
        return st;
    }
    st = ctx->ops->alloc(ctx, cumlp__storage_native_count(ctx, storage, count), out);
    if (st == CUMLP_SUCCESS)
        st = ctx->ops->convert(ctx, *out, storage, native, CUMLP_STORAGE_NATIVE, count);
    ctx->ops->free(ctx, native);
    return st;
}

static cumlp_status gemm_buffers_alloc(cumlp_context *ctx, const bench_config *c, gemm_buffers *g) {
    size_t weights = 0, acts = 0;
    for (int l = 0; l < c->num_layers; l++) {
        size_t w = (size_t)(c->widths[l] * c->widths[l + 1]);
        size_t a = (size_t)(c->widths[l] > c->widths[l + 1] ? c->widths[l] : c->widths[l + 1]);
        if (w > weights) weights = w;
        if (a * (size_t)c->batch > acts) acts = a * (size_t)c->batch;
    }
    memset(g, 0, sizeof *g);
    g->storage = cumlp__precision_storage(c->precision);
    void **all[6] = {&g->w, &g->dw, &g->in, &g->out, &g->delta, &g->below};
    size_t sizes[6] = {weights, weights, acts, acts, acts, acts};
    int storages[6] = {g->storage,           CUMLP_STORAGE_NATIVE, g->storage,
                       CUMLP_STORAGE_NATIVE, g->storage,           g->storage};
    cumlp_status st = CUMLP_SUCCESS;
    for (int i = 0; i < 6 && st == CUMLP_SUCCESS; i++)
        st = random_buffer(ctx, storages[i], sizes[i], 1000u + (uint64_t)i, all[i]);
    if (st != CUMLP_SUCCESS) gemm_buffers_free(ctx, g);
    return st;
}

/* The step's GEMMs once: per layer the forward product, dW, and the delta passed down (except
 * for the first layer), with the shapes, transposes and formats network.c uses. */
static cumlp_status gemm_pass(cumlp_context *ctx, const bench_config *c, const gemm_buffers *g) {
    const cumlp_backend_ops *ops = ctx->ops;
    int cols = c->batch, S = g->storage, native = CUMLP_STORAGE_NATIVE;
    cumlp_status st = CUMLP_SUCCESS;
    for (int l = 0; l < c->num_layers && st == CUMLP_SUCCESS; l++) {
        int m = (int)c->widths[l + 1], k = (int)c->widths[l];
        int out = l == c->num_layers - 1 ? native : S;
        st = ops->gemm(ctx, 0, 0, m, cols, k, 1.0, g->w, m, g->in, k, 0.0, g->out, m, S, out);
        if (st == CUMLP_SUCCESS)
            st = ops->gemm(ctx, 0, 1, m, k, cols, 1.0 / cols, g->delta, m, g->in, k, 0.0, g->dw, m,
                           S, native);
        if (st == CUMLP_SUCCESS && l > 0)
            st =
                ops->gemm(ctx, 1, 0, k, cols, m, 1.0, g->w, m, g->delta, m, 0.0, g->below, k, S, S);
    }
    return st;
}

static cumlp_status time_gemms(cumlp_context *ctx, const bench_config *c, int reps, double *ms) {
    gemm_buffers g;
    cumlp_status st = gemm_buffers_alloc(ctx, c, &g);
    if (st != CUMLP_SUCCESS) return st;
    double *times = malloc((size_t)reps * sizeof *times);
    if (!times) st = CUMLP_ERROR_ALLOC_FAILED;
    if (st == CUMLP_SUCCESS) st = gemm_pass(ctx, c, &g); /* warm-up */
    if (st == CUMLP_SUCCESS) st = cumlp_context_synchronize(ctx);
    for (int i = 0; i < reps && st == CUMLP_SUCCESS; i++) {
        st = cumlp__timer_start(ctx);
        if (st == CUMLP_SUCCESS) st = gemm_pass(ctx, c, &g);
        if (st == CUMLP_SUCCESS) st = cumlp__timer_stop(ctx, &times[i]);
    }
    if (st == CUMLP_SUCCESS) *ms = summarize(times, reps).median;
    free(times);
    gemm_buffers_free(ctx, &g);
    return st;
}

/* Writes the network's parameters before any step to <init_dir>/<config name>.safetensors. The
 * initial parameters depend only on the network and its seed, not on the backend, so every
 * configuration of one network writes the same file. */
static cumlp_status save_initial(const bench_run *r, const bench_config *c, const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s.safetensors", dir, c->name) >= (int)sizeof path)
        return cumlp__error(r->ctx, CUMLP_ERROR_INVALID_VALUE, "--save-init: path too long");
    return cumlp_checkpoint_save(r->net, NULL, path);
}

/* Runs one configuration; on failure prints why and returns the status. */
static cumlp_status run_config(const bench_config *c, const bench_options *o, bench_result *res) {
    bench_run r;
    memset(&r, 0, sizeof r);
    memset(res, 0, sizeof *res);
    cumlp_status st = run_setup(&r, c, o->threads, o->optimizer);
    if (st == CUMLP_SUCCESS && o->init_dir) st = save_initial(&r, c, o->init_dir);
    res->steps = o->steps;
    if (st == CUMLP_SUCCESS)
        st = time_steps(&r, o->warmup, o->auto_seconds, &res->steps, &res->step, &res->skipped);
    /* The training step's peak, before the GEMM timing below allocates its own buffers. */
    int64_t peak_bytes = 0;
    if (st == CUMLP_SUCCESS) st = cumlp_context_memory(r.ctx, NULL, &peak_bytes);
    res->peak_context_mb = (double)peak_bytes / (1024.0 * 1024.0);
    int reps = res->steps < 10 ? 10 : res->steps > 50 ? 50 : res->steps;
    if (st == CUMLP_SUCCESS) st = time_gemms(r.ctx, c, reps, &res->gemm_ms);
    if (st == CUMLP_SUCCESS) st = cumlp_context_describe(r.ctx, res->device, sizeof res->device);
    if (st != CUMLP_SUCCESS)
        fprintf(stderr, "cumlp-bench: %s on %s: %s: %s\n", c->name, cumlp_backend_name(c->backend),
                cumlp_status_string(st), cumlp_last_error(r.ctx));
    res->flops = step_flops(c);
    res->peak_rss_mb = peak_rss_mb();
    res->threads = c->backend == CUMLP_BACKEND_CPU
                       ? (o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN))
                       : 1;
    run_destroy(&r);
    return st;
}

/* ---- output ------------------------------------------------------------------------------------
 */

/* TFLOP/s of the step's FLOPs done in ms milliseconds. */
static double tflops(const bench_result *r, double ms) {
    return r->flops / (ms * 1e-3) / 1e12;
}

/* The step's rate and, beside it, the rate of the same GEMMs timed alone (GEMM TF/s): the ratio of
 * the two is the share of the GEMMs' own rate the whole step keeps. */
static void print_header(void) {
    printf("%-7s %-9s %-4s %-4s %-5s %3s %10s %28s %11s %8s %9s %9s %6s %8s %8s\n", "config",
           "backend", "prec", "epi", "graph", "thr", "ms/step", "[min p10 p90 max]", "samples/s",
           "TFLOP/s", "GEMM ms", "GEMM TF/s", "ratio", "RSS MB", "mem MB");
}

static void print_row(const bench_config *c, const bench_result *r) {
    char spread[64];
    snprintf(spread, sizeof spread, "[%.2f %.2f %.2f %.2f]", r->step.min, r->step.p10, r->step.p90,
             r->step.max);
    printf("%-7s %-9s %-4s %-4s %-5s %3d %10.3f %28s %11.0f %8.3f %9.3f %9.3f %6.2f %8.1f %8.1f\n",
           c->name, cumlp_backend_name(c->backend), cumlp_precision_name(c->precision),
           cumlp_epilogues_name(c->epilogues), graph_name(c), r->threads, r->step.median, spread,
           c->batch / (r->step.median * 1e-3), tflops(r, r->step.median), r->gemm_ms,
           tflops(r, r->gemm_ms), r->step.median / r->gemm_ms, r->peak_rss_mb, r->peak_context_mb);
    if (r->skipped)
        printf("        (%d of the %d timed steps skipped by the loss scaler: no optimizer pass)\n",
               r->skipped, r->steps);
    fflush(stdout);
}

/* Writes s as a JSON string (quotes, backslashes and control characters escaped). */
static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_key_string(FILE *f, const char *key, const char *value) {
    fprintf(f, "\"%s\": ", key);
    json_string(f, value);
    fputs(", ", f);
}

static void json_context(FILE *f, const bench_options *o, const char *date, const char *host) {
    json_key_string(f, "tool", "cumlp");
    json_key_string(f, "variant", "cumlp");
    json_key_string(f, "date", date);
    json_key_string(f, "host", host);
    json_key_string(f, "commit", o->commit ? o->commit : "");
    cumlp_optimizer_options oo;
    bench_optimizer(o->optimizer, &oo);
    json_key_string(f, "optimizer",
                    o->optimizer < 0 ? "sgd-momentum-0.9" : cumlp_optimizer_name(o->optimizer));
    json_key_string(f, "init", "cumlp-he-uniform");
    fprintf(f, "\"learning_rate\": %.9g, \"warmup\": %d, ", oo.learning_rate, o->warmup);
}

static void json_config(FILE *f, const bench_config *c) {
    json_key_string(f, "config", c->name);
    json_key_string(f, "backend", cumlp_backend_name(c->backend));
    json_key_string(f, "precision", cumlp_precision_name(c->precision));
    json_key_string(f, "epilogues", cumlp_epilogues_name(c->epilogues));
    json_key_string(f, "graph", graph_name(c));
    fputs("\"layers\": [", f);
    for (int l = 0; l <= c->num_layers; l++)
        fprintf(f, "%s%lld", l ? ", " : "", (long long)c->widths[l]);
    fputs("], ", f);
    json_key_string(f, "activation", cumlp_activation_name(c->activation));
    json_key_string(f, "loss", cumlp_loss_name(c->loss));
    fprintf(f, "\"batch\": %d, ", c->batch);
}

static void json_result(FILE *f, const bench_config *c, const bench_result *r) {
    json_key_string(f, "device", r->device);
    fprintf(f,
            "\"steps\": %d, \"threads\": %d, \"ms_per_step\": {\"median\": %.6f, \"min\": %.6f, "
            "\"p10\": %.6f, "
            "\"p90\": %.6f, \"max\": %.6f}, \"samples_per_s\": %.3f, \"flops_per_step\": %.0f, "
            "\"tflops\": %.6f, \"gemm_ms\": %.6f, \"gemm_tflops\": %.6f, "
            "\"step_to_gemm_ratio\": %.4f, \"skipped_steps\": %d, ",
            r->steps, r->threads, r->step.median, r->step.min, r->step.p10, r->step.p90,
            r->step.max, c->batch / (r->step.median * 1e-3), r->flops, tflops(r, r->step.median),
            r->gemm_ms, tflops(r, r->gemm_ms), r->step.median / r->gemm_ms, r->skipped);
    if (r->peak_rss_mb >= 0)
        fprintf(f, "\"peak_host_rss_mb\": %.1f, ", r->peak_rss_mb);
    else
        fputs("\"peak_host_rss_mb\": null, ", f);
    fprintf(f, "\"peak_context_mb\": %.1f, ", r->peak_context_mb);
    if (c->backend == CUMLP_BACKEND_CUDA)
        fprintf(f, "\"peak_device_mb\": %.1f}", r->peak_context_mb);
    else
        fputs("\"peak_device_mb\": null}", f);
}

static int write_json(const bench_options *o, const bench_config *c, const bench_result *r,
                      const int *ok, int n) {
    /* written crash-safely, as the `cumlp` command writes every file */
    cumlp__atomic_file *file;
    if (cumlp__atomic_open(NULL, NULL, o->json_path, &file) != CUMLP_SUCCESS) {
        fprintf(stderr, "cumlp-bench: %s\n", cumlp_last_error(NULL));
        return -1;
    }
    FILE *f = cumlp__atomic_stream(file);
    char date[32], host[128] = "unknown";
    time_t t = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    gethostname(host, sizeof host - 1);
    fputs("[\n", f);
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (!ok[i]) continue;
        fputs(first ? "  {" : ",\n  {", f);
        first = 0;
        json_context(f, o, date, host);
        json_config(f, &c[i]);
        json_result(f, &c[i], &r[i]);
    }
    fputs("\n]\n", f);
    if (cumlp__atomic_commit(file) == CUMLP_SUCCESS) return 0;
    fprintf(stderr, "cumlp-bench: %s\n", cumlp_last_error(NULL));
    return -1;
}

/* ---- entry point -------------------------------------------------------------------------------
 */

int cumlp_bench_main(int argc, char **argv) {
    bench_options o;
    int parsed = parse_args(argc, argv, &o);
    if (parsed != 0) return parsed > 0 ? 0 : 1;
    bench_config configs[MAX_CONFIGS];
    bench_result results[MAX_CONFIGS];
    int ok[MAX_CONFIGS] = {0};
    int n = build_configs(&o, configs);
    if (n < 0) return 1;
    if (n == 0) {
        fprintf(stderr, "cumlp-bench: nothing to run (no suitable backend built)\n");
        return 1;
    }
    print_header();
    int failures = 0, skipped = 0;
    for (int i = 0; i < n; i++) {
        cumlp_status st = run_config(&configs[i], &o, &results[i]);
        ok[i] = st == CUMLP_SUCCESS;
        if (ok[i])
            print_row(&configs[i], &results[i]);
        else if (st == CUMLP_ERROR_NO_DEVICE)
            skipped++;
        else
            failures++;
    }
    if (skipped) printf("(%d configuration(s) skipped: no usable GPU)\n", skipped);
    if (o.json_path && write_json(&o, configs, results, ok, n) != 0) return 2;
    return failures ? 2 : 0;
}
