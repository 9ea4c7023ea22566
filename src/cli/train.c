/* train.c - `cumlp train`: build a network, fit it, report, save, log and plot. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void train_help(void) {
    printf(
        "usage: cumlp train --data FILE [--labels FILE] [options]\n"
        "Trains a multi-layer perceptron and reports its accuracy (or mean squared error).\n\n"
        "data:\n"
        "  --data FILE            training data: IDX images (with --labels), .csv, or FANN .data\n"
        "  --labels FILE          IDX labels file (IDX files may be gzip-compressed)\n"
        "  --format F             auto (default), idx, csv or fann\n"
        "  --task T               classify (default: one-hot targets) or regress\n"
        "  --classes N            class count (default: the largest label + 1)\n"
        "  --csv-header           the CSV file's first line is a header (one without any\n"
        "                         number is taken for one anyway, with a note)\n"
        "  --label-column N       CSV column of the target, from 0 (default: the last)\n"
        "  --limit N              use only the first N samples of each file\n"
        "  --val-split F          hold out this fraction for validation (default 0: none)\n"
        "  --test-data FILE       evaluate on this set after training (--test-labels for IDX)\n"
        "  --test-labels FILE\n"
        "  --scale S              none, minmax (to [0,1]) or standard (default: minmax for\n"
        "                         IDX images, else none); statistics come from the training\n"
        "                         split only\n"
        "  --scale-per-feature    one min/max or mean/sd per feature (default: one overall)\n"
        "network:\n"
        "  --layers N,N,...       widths from input to output (default IN,128,OUT)\n"
        "  --act A                hidden activation: relu (default), leaky_relu, gelu, tanh,\n"
        "                         sigmoid, identity\n"
        "  --out-act A            output activation (default softmax to classify, else identity)\n"
        "  --loss L               ce (softmax cross-entropy), bce (sigmoid binary\n"
        "                         cross-entropy) or mse (default: from the output activation)\n"
        "  --init I               he (default for relu-like), he-normal, xavier (default\n"
        "                         otherwise), xavier-normal, normal, uniform\n");
    /* one string per part: ISO C guarantees string literals of 4095 characters only */
    printf(
        "optimizer (the defaults are PyTorch's for the optimizer chosen):\n"
        "  --optimizer O          sgd, momentum, nesterov, adam (default), adamw, adamax, nadam,\n"
        "                         rmsprop, adagrad or adadelta\n"
        "  --lr X                 learning rate (default 0.001 adam, adamw; 0.002 adamax, nadam;\n"
        "                         1.0 adadelta; else 0.01)\n"
        "  --weight-decay X       L2 decay (adamw: decoupled; default 0.01 there, else 0)\n"
        "  --momentum X           momentum, nesterov (default 0.9), rmsprop (default 0)\n"
        "  --beta1 X --beta2 X    the adam family's averages (default 0.9, 0.999)\n"
        "  --eps X                (default 1e-8; adagrad 1e-10, adadelta 1e-6)\n"
        "  --alpha X              rmsprop's smoothing (default 0.99); --centered: rmsprop divides\n"
        "                         by the gradients' standard deviation\n"
        "  --rho X                adadelta's decay (default 0.9)\n"
        "  --lr-decay X --initial-accumulator X   adagrad's (default 0, 0)\n"
        "  --momentum-decay X     nadam's (default 0.004)\n"
        "  --clip-norm X          scale the gradients to a global L2 norm of at most X\n"
        "  --clip-value X         clamp each gradient to [-X, X]\n"
        "  --skip-non-finite      skip a step whose loss or gradients are NaN or Inf (at most\n"
        "                         10 in a row) instead of stopping the run\n"
        "schedule (of the learning rate, per epoch):\n"
        "  --schedule S           constant (default), step, exp, cosine, multistep, linear, poly\n"
        "  --gamma X              factor of step, exp and multistep (default 0.1)\n"
        "  --step-epochs N        period of step (default 10)\n"
        "  --milestones N,N,...   the epochs (from 0) where multistep multiplies by gamma\n"
        "  --lr-min X             floor of cosine, linear and poly (default 0)\n"
        "  --power X              poly's power (default 1)\n"
        "  --warmup-epochs N      linear warm-up over the first N epochs, with any schedule\n");
    printf(
        "training:\n"
        "  --epochs N (default 10) --batch N (default 128) --seed N (default 42)\n"
        "  --target-loss X        stop when an epoch's training loss falls below X\n"
        "  --patience N           stop after N epochs without validation improvement\n"
        "  --min-delta X          improvement that counts (default 0)\n"
        "  --restore-best         end with the parameters of the best validation epoch\n"
        "  --backend B            auto (default), cuda, cpu or reference\n"
        "  --threads N            cpu backend threads (default: all cores)\n"
        "  --precision P          fp32 (default), tf32, bf16 or fp16: what the GEMMs read\n"
        "                         and the hidden activations are stored in (bf16 and fp16:\n"
        "                         cuda only, fp32 accumulation and fp32 master weights; fp16\n"
        "                         with dynamic loss scaling); --tf32 is --precision tf32\n"
        "  --epilogues E          off (default), relu or all: ReLU layers (all: and GELU ones,\n"
        "                         as its tanh approximation) in cuBLASLt's GEMM epilogues (cuda)\n"
        "  --graph on|off         each training step as one CUDA graph (cuda; default: on there)\n"
        "  --transport T          under mpirun (data-parallel: --batch is the global batch,\n"
        "                         rank 0 prints and writes the files): auto (default), mpi,\n"
        "                         mpi-host, mpi-device or nccl\n"
        "output:\n"
        "  --save FILE            write the model (safetensors) with its scaling, task and label\n"
        "                         column: eval and predict need nothing else\n"
        "  --log FILE             per-epoch CSV: epoch,lr,train_loss,train_acc,val_loss,...,\n"
        "                         gradient_norm (the epoch's mean),skipped_steps\n"
        "  --plot FILE            SVG of the training and validation curves\n"
        "  --progress             a progress bar even when stderr is not a terminal\n"
        "  --quiet                only the final summary\n\n"
        "exit status: 0 success, 1 usage error, 2 data or file error, 3 NaN/Inf loss or gradients\n"
        "(--save then holds the best validation epoch's parameters with --restore-best, else the\n"
        "last finite ones)\n");
}

static const char *train_options =
    "data labels format task classes csv-header label-column limit val-split test-data "
    "test-labels scale scale-per-feature layers act out-act loss init optimizer lr momentum "
    "weight-decay beta1 beta2 eps alpha rho centered lr-decay initial-accumulator momentum-decay "
    "clip-norm clip-value skip-non-finite schedule gamma step-epochs milestones lr-min power "
    "warmup-epochs epochs batch seed target-loss patience min-delta restore-best backend threads "
    "precision epilogues graph tf32 transport save log plot progress quiet";

/* ---- network description -------------------------------------------------------------------- */

static int parse_layers(const char *command, const char *text, net_spec *n) {
    int count = 0;
    for (const char *p = text; *p;) {
        char *end;
        long long w = strtoll(p, &end, 10);
        if (end == p || w < 1 || w > 2147483647LL || count == 64 || (*end && *end != ',')) {
            fprintf(stderr, "cumlp %s: --layers wants widths like 784,256,10 (at most 64)\n",
                    command);
            return 0;
        }
        n->widths[count++] = w;
        p = *end ? end + 1 : end;
    }
    if (count < 2) {
        fprintf(stderr, "cumlp %s: --layers needs the input and output widths at least\n", command);
        return 0;
    }
    n->num_layers = count - 1;
    return 1;
}

/* The hidden layers' activation: any but softmax, which only an output layer may have. */
static int parse_hidden_activation(const char *command, const char *value, int *out) {
    if (!cli_parse_name(command, "act", cumlp_activation_from_name, value, out)) return 0;
    if (*out != CUMLP_ACT_SOFTMAX) return 1;
    fprintf(stderr, "cumlp %s: --act: softmax is for the output layer only (--out-act)\n", command);
    return 0;
}

/* Fills n from the options and the data's shape. */
int cli_describe_network(const char *command, const cli_args *a, int64_t in, int64_t out,
                         int classify, net_spec *n) {
    char defaults[64];
    snprintf(defaults, sizeof defaults, "%lld,128,%lld", (long long)in, (long long)out);
    if (!parse_layers(command, a->layers ? a->layers : defaults, n)) return 0;
    if (n->widths[0] != in || n->widths[n->num_layers] != out) {
        fprintf(stderr,
                "cumlp %s: --layers %s does not fit the data: it has %lld features and %lld "
                "outputs\n",
                command, a->layers, (long long)in, (long long)out);
        return 0;
    }
    int hidden, output, loss, init;
    const char *out_act = a->out_act  ? a->out_act
                          : !classify ? "identity"
                          : out > 1   ? "softmax"
                                      : "sigmoid";
    if (!parse_hidden_activation(command, a->act, &hidden) ||
        !cli_parse_name(command, "out-act", cumlp_activation_from_name, out_act, &output))
        return 0;
    const char *loss_name = a->loss                                   ? a->loss
                            : output == CUMLP_ACT_SOFTMAX             ? "ce"
                            : output == CUMLP_ACT_SIGMOID && classify ? "bce"
                                                                      : "mse";
    if (!cli_parse_name(command, "loss", cumlp_loss_from_name, loss_name, &loss)) return 0;
    if (output == CUMLP_ACT_SOFTMAX && out < 2) {
        fprintf(stderr,
                "cumlp %s: --out-act softmax needs at least 2 outputs, the network has %lld: over "
                "one output it is 1 whatever the input (one output takes sigmoid with --loss "
                "bce, or identity with mse)\n",
                command, (long long)out);
        return 0;
    }
    if (loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY && !classify) {
        fprintf(stderr,
                "cumlp %s: --loss ce (softmax cross-entropy) needs classification targets "
                "(--task classify); regression takes --loss mse\n",
                command);
        return 0;
    }
    int relu_like =
        hidden == CUMLP_ACT_RELU || hidden == CUMLP_ACT_LEAKY_RELU || hidden == CUMLP_ACT_GELU;
    const char *init_name = a->init ? a->init : relu_like ? "he" : "xavier";
    if (!cli_parse_name(command, "init", cumlp_init_from_name, init_name, &init)) return 0;
    for (int l = 0; l < n->num_layers; l++)
        n->acts[l] = l + 1 < n->num_layers ? hidden : output;
    cumlp_network_defaults(&n->options);
    n->options.loss = loss;
    n->options.init = init;
    n->options.seed = a->seed;
    return 1;
}

/* *field = value when the option was given (not NaN); else the optimizer's default stays. */
static void given(double *field, double value) {
    if (!isnan(value)) *field = value;
}

static int optimizer_options(const char *command, const cli_args *a, cumlp_optimizer_options *o) {
    int type = 0;
    if (!cli_parse_name(command, "optimizer", cumlp_optimizer_from_name, a->optimizer, &type))
        return 0;
    cumlp_optimizer_defaults_for(type, o);
    given(&o->learning_rate, a->lr);
    given(&o->momentum, a->momentum);
    given(&o->weight_decay, a->weight_decay);
    given(&o->beta1, a->beta1);
    given(&o->beta2, a->beta2);
    given(&o->epsilon, a->eps);
    given(&o->alpha, a->alpha);
    given(&o->rho, a->rho);
    given(&o->lr_decay, a->lr_decay);
    given(&o->initial_accumulator_value, a->initial_accumulator);
    given(&o->momentum_decay, a->momentum_decay);
    o->centered = a->centered;
    o->clip_norm = a->clip_norm;
    o->clip_value = a->clip_value;
    /* by default a NaN or Inf step ends the run (exit status 3, the model saved) */
    o->non_finite_error = !a->skip_non_finite;
    return 1;
}

/* ---- progress, log and history ------------------------------------------------------------- */

typedef struct reporter {
    const cli_args *a;
    int bar; /* draw a progress bar on stderr */
    int bar_drawn;
    double last_draw;   /* seconds into training of the last redraw */
    FILE *log;          /* log_out's stream while it is open */
    cli_output log_out; /* --log, written to a temporary file and put in place at the end */
    int log_failed;     /* a write to the log failed (reported when training ends) */
    cli_history history;
    int history_failed;
    /* With --save: the parameters of the last epoch that ended with finite ones (0: the initial
     * ones), what --save writes if a step leaves NaN or Inf in the network's; two buffers, the
     * newest in snapshot. */
    cumlp_network *net;
    float *snapshot, *spare;
    int snapshot_epoch; /* -1: none */
} reporter;

static int all_finite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* Keeps the network's parameters as the snapshot of `epoch` when they are all finite. */
static void take_snapshot(reporter *r, int epoch) {
    int64_t n = cumlp_network_num_parameters(r->net);
    if (!r->spare || cumlp_network_get_parameters(r->net, r->spare, n) != CUMLP_SUCCESS ||
        !all_finite(r->spare, n))
        return;
    float *newest = r->spare;
    r->spare = r->snapshot;
    r->snapshot = newest;
    r->snapshot_epoch = epoch;
}

static void format_time(double s, char *buf, size_t size) {
    long t = s > 0 && s < 1e7 ? (long)(s + 0.5) : 0;
    snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static void draw_bar(reporter *r, const cumlp_fit_progress *p) {
    double per_epoch = (double)p->batches_per_epoch;
    double done = p->epoch * per_epoch + (double)p->batch;
    double total = r->a->epochs * per_epoch;
    double rate = p->seconds > 0 ? done * (double)r->a->batch / p->seconds : 0;
    double left = done > 0 ? p->seconds * (total - done) / done : 0;
    int width = 30, filled = per_epoch > 0 ? (int)(width * (double)p->batch / per_epoch) : 0;
    char eta[32], bar[64];
    format_time(left, eta, sizeof eta);
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '=' : i == filled ? '>' : ' ';
    bar[width] = '\0';
    fprintf(stderr, "\repoch %d/%d [%s] %3.0f%% %.0f samples/s, %s left, loss %.4f  ", p->epoch + 1,
            r->a->epochs, bar, 100.0 * (double)p->batch / per_epoch, rate, eta, p->train_loss);
    fflush(stderr);
    r->bar_drawn = 1;
}

static void print_epoch(const cli_args *a, const cumlp_fit_progress *p) {
    printf("epoch %d/%d  lr %.3g  loss %.4f", p->epoch + 1, a->epochs, p->learning_rate,
           p->train_loss);
    if (p->train_accuracy >= 0) printf("  acc %.4f", p->train_accuracy);
    if (p->validation_loss >= 0) {
        printf("  val_loss %.4f", p->validation_loss);
        if (p->validation_accuracy >= 0)
            printf("  val_acc %.4f", p->validation_accuracy);
        else
            printf("  val_mse %.4g", p->validation_mse);
    }
    if (p->mean_gradient_norm >= 0) printf("  |g| %.3g", p->mean_gradient_norm);
    if (p->skipped_steps > 0) printf("  skipped %lld", (long long)p->skipped_steps);
    printf("  %.1fs\n", p->seconds);
    fflush(stdout);
}

static int on_progress(const cumlp_fit_progress *p, void *user) {
    reporter *r = user;
    if (!p->end_of_epoch) {
        /* at most ten redraws a second */
        if (r->bar && (!r->bar_drawn || p->seconds - r->last_draw >= 0.1)) {
            draw_bar(r, p);
            r->last_draw = p->seconds;
        }
        return 0;
    }
    if (r->bar_drawn) {
        fprintf(stderr, "\r%*s\r", 110, "");
        r->bar_drawn = 0;
    }
    if (!r->a->quiet) print_epoch(r->a, p);
    take_snapshot(r, p->epoch + 1);
    /* One line per epoch, flushed, so that the log can be watched while training runs. */
    if (r->log && (fprintf(r->log, "%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.3f,%.9g,%lld\n",
                           p->epoch + 1, p->learning_rate, p->train_loss, p->train_accuracy,
                           p->validation_loss, p->validation_accuracy, p->validation_mse,
                           p->seconds, p->mean_gradient_norm, (long long)p->skipped_steps) < 0 ||
                   fflush(r->log) != 0))
        r->log_failed = 1;
    if (!cli_history_add(&r->history, p->train_loss, p->validation_loss, p->train_accuracy,
                         p->validation_accuracy))
        r->history_failed = 1;
    return 0;
}

/* ---- the subcommand ------------------------------------------------------------------------- */

typedef struct train_run {
    cumlp_context *ctx;
    cumlp_dataset *all, *train, *val, *test;
    cumlp_scaler *scaler;
    cumlp_network *net;
    cumlp_optimizer *opt;
    reporter rep;
    int milestones[64];
} train_run;

static void run_free(train_run *t) {
    /* a run that failed still leaves its log so far (a NaN epoch, say) */
    if (t->rep.log) cli_output_close("train", &t->rep.log_out);
    free(t->rep.snapshot);
    free(t->rep.spare);
    cli_history_free(&t->rep.history);
    cumlp_optimizer_destroy(t->opt);
    cumlp_network_destroy(t->net);
    cumlp_scaler_destroy(t->scaler);
    if (t->train != t->all) cumlp_dataset_destroy(t->train);
    cumlp_dataset_destroy(t->all);
    cumlp_dataset_destroy(t->val);
    cumlp_dataset_destroy(t->test);
    cumlp_context_destroy(t->ctx);
}

/* The output width --layers asks for (0 without --layers). */
static int64_t layers_output_width(const char *layers) {
    const char *last = layers ? strrchr(layers, ',') : NULL;
    return last ? strtoll(last + 1, NULL, 10) : 0;
}

/* Loads the data, splits off validation, scales. */
static int prepare_data(const char *cmd, const cli_args *a, train_run *t) {
    /* one output that classifies (--layers ...,1): a binary classifier with 0/1 targets */
    int64_t outputs = layers_output_width(a->layers) == 1 ? 1 : 0;
    int rc = cli_load_data(cmd, t->ctx, a, 0, outputs, &t->all);
    if (rc == EXIT_OK && a->test_data) {
        /* the test set's one-hot targets take the training set's classes, even when the test
         * file happens to lack the largest class */
        cli_args test_args = *a;
        if (test_args.classes == 0) test_args.classes = cumlp_dataset_num_classes(t->all);
        rc = cli_load_data(cmd, t->ctx, &test_args, 1, outputs, &t->test);
    }
    if (rc != EXIT_OK) return rc;
    t->train = t->all;
    cumlp_status st = CUMLP_SUCCESS;
    if (a->val_split > 0) /* in place: the data is held once */
        st = cumlp_dataset_split_off(t->all, a->val_split, a->seed, &t->val);
    if (st != CUMLP_SUCCESS) return cli_fail(cmd, st, cumlp_last_error(t->ctx));
    const char *scale = a->scale ? a->scale : cli_data_is_idx(a) ? "minmax" : "none";
    if (strcmp(scale, "none") == 0) return EXIT_OK;
    int method = strcmp(scale, "minmax") == 0     ? CUMLP_SCALE_MINMAX
                 : strcmp(scale, "standard") == 0 ? CUMLP_SCALE_STANDARDIZE
                                                  : -1;
    if (method < 0) {
        fprintf(stderr, "cumlp %s: --scale must be none, minmax or standard\n", cmd);
        return EXIT_USAGE;
    }
    st = cumlp_scaler_fit(t->train, method, a->scale_per_feature, &t->scaler);
    if (st == CUMLP_SUCCESS) st = cumlp_scaler_apply(t->scaler, t->train);
    if (st == CUMLP_SUCCESS && t->val) st = cumlp_scaler_apply(t->scaler, t->val);
    if (st == CUMLP_SUCCESS && t->test) st = cumlp_scaler_apply(t->scaler, t->test);
    if (st != CUMLP_SUCCESS) return cli_fail_data(cmd, cumlp_last_error(t->ctx));
    return EXIT_OK;
}

/* Binary cross-entropy takes targets in [0, 1] (0/1 labels or probabilities): anything else has no
 * minimum to learn. */
static int targets_fit_bce(const char *cmd, cumlp_dataset *ds) {
    const float *y = cumlp_dataset_targets(ds);
    int64_t n = cumlp_dataset_num_outputs(ds) * cumlp_dataset_num_samples(ds);
    for (int64_t i = 0; ds && i < n; i++)
        if (!(y[i] >= 0 && y[i] <= 1)) {
            fprintf(stderr,
                    "cumlp %s: --loss bce needs targets in [0, 1], but sample %lld has %g (for "
                    "regression use --loss mse)\n",
                    cmd, (long long)(i / cumlp_dataset_num_outputs(ds)) + 1, y[i]);
            return 0;
        }
    return 1;
}

static int build_model(const char *cmd, const cli_args *a, train_run *t) {
    net_spec n;
    cumlp_optimizer_options oo;
    if (!cli_describe_network(cmd, a, cumlp_dataset_num_features(t->train),
                              cumlp_dataset_num_outputs(t->train), strcmp(a->task, "classify") == 0,
                              &n) ||
        !optimizer_options(cmd, a, &oo))
        return EXIT_USAGE;
    if (n.options.loss == CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY &&
        (!targets_fit_bce(cmd, t->train) || (t->val && !targets_fit_bce(cmd, t->val))))
        return EXIT_USAGE;
    cumlp_status st =
        cumlp_network_create(t->ctx, n.num_layers, n.widths, n.acts, &n.options, &t->net);
    if (st == CUMLP_SUCCESS) st = cumlp_optimizer_create(t->net, &oo, &t->opt);
    if (st != CUMLP_SUCCESS) return cli_fail(cmd, st, cumlp_last_error(t->ctx));
    return EXIT_OK;
}

/* --milestones 30,60,90 into t->milestones; the library checks their order. */
static int parse_milestones(const char *cmd, const char *text, train_run *t, int *count) {
    *count = 0;
    for (const char *p = text; p && *p;) {
        char *end;
        long m = strtol(p, &end, 10);
        if (end == p || m < 0 || m > 1000000000L || *count == 64 || (*end && *end != ',')) {
            fprintf(stderr, "cumlp %s: --milestones wants epochs like 30,60,90 (at most 64)\n",
                    cmd);
            return 0;
        }
        t->milestones[(*count)++] = (int)m;
        p = *end ? end + 1 : end;
    }
    return 1;
}

static int fit_options(const char *cmd, const cli_args *a, train_run *t, cumlp_fit_options *fo) {
    cumlp_fit_defaults(fo);
    if (!cli_parse_name(cmd, "schedule", cumlp_schedule_from_name, a->schedule, &fo->schedule))
        return EXIT_USAGE;
    if (!parse_milestones(cmd, a->milestones, t, &fo->num_milestones)) return EXIT_USAGE;
    fo->milestones = fo->num_milestones ? t->milestones : NULL;
    fo->warmup_epochs = a->warmup_epochs;
    fo->lr_power = a->power;
    fo->epochs = a->epochs;
    fo->batch_size = a->batch;
    fo->seed = a->seed;
    fo->lr_gamma = a->gamma;
    fo->lr_step_epochs = a->step_epochs;
    fo->lr_min = a->lr_min;
    fo->target_loss = a->target_loss;
    fo->patience = a->patience;
    fo->min_delta = a->min_delta;
    fo->restore_best = a->restore_best;
    fo->callback = on_progress;
    fo->user_data = &t->rep;
    t->rep.a = a;
    t->rep.bar = !a->quiet && (a->progress > 0 || isatty(STDERR_FILENO));
    t->rep.net = t->net;
    t->rep.snapshot_epoch = -1;
    if (a->save) { /* a failed allocation only leaves no snapshot */
        size_t n = (size_t)cumlp_network_num_parameters(t->net);
        t->rep.snapshot = malloc(n * sizeof(float));
        t->rep.spare = t->rep.snapshot ? malloc(n * sizeof(float)) : NULL;
        take_snapshot(&t->rep, 0);
    }
    int64_t n = cumlp_dataset_num_samples(t->train);
    int64_t batches = (n + (a->batch > 0 ? a->batch : 1) - 1) / (a->batch > 0 ? a->batch : 1);
    /* every rank calls back as often as rank 0, the one that draws (cumlp_fit checks the options)
     */
    fo->callback_every = cli_dist_rank0_value(t->rep.bar) ? (batches > 100 ? batches / 100 : 1) : 0;
    if (a->log) {
        int rc = cli_output_open(cmd, a->log, &t->rep.log_out);
        if (rc != EXIT_OK) return rc;
        t->rep.log = t->rep.log_out.f;
        if (fprintf(t->rep.log, "epoch,learning_rate,train_loss,train_accuracy,validation_loss,"
                                "validation_accuracy,validation_mse,seconds,gradient_norm,"
                                "skipped_steps\n") < 0)
            t->rep.log_failed = 1;
    }
    return EXIT_OK;
}

/* Closes the CSV log; a failed write or close (disk full, say) is an error of the run. */
static int close_log(const char *cmd, const cli_args *a, reporter *r) {
    if (!r->log) return EXIT_OK;
    r->log = NULL;
    if (!r->log_failed) return cli_output_close(cmd, &r->log_out);
    cli_output_discard(&r->log_out);
    fprintf(stderr, "cumlp %s: cannot write %s (the old file is unchanged)\n", cmd, a->log);
    return EXIT_DATA;
}

static const char *stop_name(int reason) {
    static const char *const names[] = {"all epochs ran", "training loss below the target",
                                        "validation stopped improving", "stopped by callback",
                                        "error"};
    return reason >= 0 && reason <= CUMLP_STOP_ERROR ? names[reason] : "unknown";
}

/* Writes --save, if asked: the model with its scaling and what its outputs mean (nothing else
 * travels with it), with the optimizer when with_optimizer; `what` says which parameters. */
static int save_model(const char *cmd, const cli_args *a, train_run *t, int with_optimizer,
                      const char *what) {
    if (!a->save) return EXIT_OK;
    cumlp_model_info info = cli_model_info(a, t->net);
    cumlp_status st = cumlp_checkpoint_save_with(t->net, with_optimizer ? t->opt : NULL, t->scaler,
                                                 &info, a->save);
    if (st != CUMLP_SUCCESS) return cli_fail(cmd, st, cumlp_last_error(t->ctx));
    cli_remove_stale_scaler(a);
    if (!a->quiet) printf("saved %s%s\n", a->save, what);
    return EXIT_OK;
}

/* The plot (--plot) and the end of the log (--log). */
static int write_history(const char *cmd, const cli_args *a, train_run *t) {
    if (a->plot && t->rep.history_failed) {
        fprintf(stderr, "cumlp %s: out of memory for the history of %s\n", cmd, a->plot);
        return EXIT_DATA;
    }
    if (a->plot && cli_write_svg(cmd, &t->rep.history, a->plot) != EXIT_OK) return EXIT_DATA;
    return close_log(cmd, a, &t->rep);
}

/* The finite parameters to save after a NaN or Inf step, put into the network, and what they
 * are: the network's own when finite (cumlp_fit left the best validation epoch's with
 * --restore-best, else those before the failing step, which was not taken; a step before it may
 * have overflowed them), else the last snapshot. NULL when there is none. */
static const char *finite_parameters(const cli_args *a, train_run *t, const cumlp_fit_result *r,
                                     char *what, size_t size) {
    reporter *rep = &t->rep;
    int64_t n = cumlp_network_num_parameters(t->net);
    if (rep->spare && cumlp_network_get_parameters(t->net, rep->spare, n) == CUMLP_SUCCESS &&
        all_finite(rep->spare, n)) {
        if (r->best_epoch >= 0 && a->restore_best)
            snprintf(what, size, "the parameters of the best validation epoch, %d",
                     r->best_epoch + 1);
        else
            snprintf(what, size, "the last finite parameters, before the failing step");
        return what;
    }
    if (rep->snapshot_epoch < 0 ||
        cumlp_network_set_parameters(t->net, rep->snapshot, n) != CUMLP_SUCCESS)
        return NULL;
    if (rep->snapshot_epoch == 0)
        snprintf(what, size, "the initial parameters (epoch 1 left NaN or Inf in them)");
    else
        snprintf(what, size, "the parameters at the end of epoch %d (a later step overflowed)",
                 rep->snapshot_epoch);
    return what;
}

/* A NaN or Inf step ended the run: --save still writes finite parameters (without the optimizer
 * state, which a diverged run should not resume from), the log and plot so far are written;
 * exit status 3 and one line saying where and what to try. */
static int non_finite_end(const char *cmd, const cli_args *a, train_run *t,
                          const cumlp_fit_result *r) {
    char why[600], what[128], saved[160];
    snprintf(why, sizeof why, "%s", cumlp_last_error(t->ctx));
    int rc = EXIT_OK;
    if (a->save) {
        const char *which = finite_parameters(a, t, r, what, sizeof what);
        snprintf(saved, sizeof saved, ": %s, without optimizer state", which ? which : "");
        if (which) rc = save_model(cmd, a, t, 0, saved);
        if (!which) fprintf(stderr, "cumlp %s: no finite parameters to save\n", cmd);
    }
    int history = write_history(cmd, a, t);
    if (cli_dist_rank() == 0)
        fprintf(stderr, "cumlp %s: %s; try a lower --lr (it was %g) or --clip-norm (1, say)\n", cmd,
                why, cumlp_optimizer_learning_rate(t->opt));
    return rc != EXIT_OK ? rc : history != EXIT_OK ? history : EXIT_NUMERICAL;
}

/* Saves the model, evaluates on the test set, writes the plot. */
static int finish(const char *cmd, const cli_args *a, train_run *t) {
    int rc =
        cli_dist_agree(save_model(cmd, a, t, 1, "")); /* rank 0 saves; the test is collective */
    if (rc != EXIT_OK) return rc;
    if (t->test) {
        cumlp_eval_result e;
        cumlp_status st = cumlp_evaluate(t->net, t->test, a->batch, &e);
        if (st != CUMLP_SUCCESS) return cli_dist_fail(cmd, st, cumlp_last_error(t->ctx));
        if (e.accuracy >= 0)
            printf("test accuracy %.4f  loss %.4f\n", e.accuracy, e.loss);
        else
            printf("test mse %.6g  loss %.6g\n", e.mse, e.loss);
    }
    return write_history(cmd, a, t);
}

static int train_with(const char *cmd, const cli_args *a, train_run *t) {
    int rc = cli_context(cmd, a, &t->ctx);
    if (rc == EXIT_OK) rc = prepare_data(cmd, a, t);
    if (rc == EXIT_OK) rc = build_model(cmd, a, t);
    /* the files written after training can be written: found out now, not after the run */
    if (rc == EXIT_OK && a->save) rc = cli_output_check(cmd, a->save);
    if (rc == EXIT_OK && a->plot) rc = cli_output_check(cmd, a->plot);
    rc = cli_dist_attach(cmd, a, rc, t->net); /* under mpirun: every rank got here, then join */
    cumlp_fit_options fo;
    if (rc == EXIT_OK) rc = fit_options(cmd, a, t, &fo);
    rc = cli_dist_agree(rc);
    if (rc != EXIT_OK) return rc;
    if (!a->quiet)
        printf("training on %lld samples (%lld validation) with the %s backend\n",
               (long long)cumlp_dataset_num_samples(t->train),
               (long long)(t->val ? cumlp_dataset_num_samples(t->val) : 0),
               cumlp_backend_name(cumlp_context_backend(t->ctx)));
    cumlp_fit_result r;
    cumlp_status st = cumlp_fit(t->net, t->opt, t->train, t->val, &fo, &r);
    if (t->rep.bar_drawn) fprintf(stderr, "\n");
    if (st == CUMLP_ERROR_NON_FINITE) return non_finite_end(cmd, a, t, &r);
    if (st != CUMLP_SUCCESS) return cli_dist_fail(cmd, st, cumlp_last_error(t->ctx));
    printf("done: %d epochs (%s), %.1fs, train loss %.4f", r.epochs_run, stop_name(r.stop_reason),
           r.seconds, r.train_loss);
    if (r.train_accuracy >= 0) printf(", train accuracy %.4f", r.train_accuracy);
    if (r.best_epoch >= 0)
        printf(", best validation loss %.4f at epoch %d", r.best_validation_loss, r.best_epoch + 1);
    if (r.skipped_steps > 0)
        printf(", %lld steps skipped (NaN or Inf)", (long long)r.skipped_steps);
    printf("\n");
    return finish(cmd, a, t);
}

/* The command line into a, with the checks that need no data. */
static int check_args(const char *cmd, int argc, char **argv, cli_args *a) {
    if (!cli_parse(argc, argv, 2, cmd, train_options, a)) return EXIT_USAGE;
    if (a->epochs < 1 || a->batch < 1) {
        fprintf(stderr, "cumlp %s: --epochs and --batch must be >= 1\n", cmd);
        return EXIT_USAGE;
    }
    if (!(a->val_split >= 0 && a->val_split < 1)) {
        fprintf(stderr, "cumlp %s: --val-split must be in [0, 1) (0: no validation)\n", cmd);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int cli_train(int argc, char **argv) {
    const char *cmd = "train";
    if (cli_wants_help(argc, argv, 2)) {
        train_help();
        return EXIT_OK;
    }
    /* Under mpirun every rank runs all of this; the ranks agree at each step that one of them
     * may fail alone (src/cli/dist.c). */
    int rc = cli_dist_begin(cmd);
    if (rc != EXIT_OK) return rc;
    cli_args a;
    cli_args_defaults(&a);
    rc = cli_dist_agree(check_args(cmd, argc, argv, &a));
    if (rc == EXIT_OK) {
        cli_dist_rank0_outputs(&a);
        train_run t;
        memset(&t, 0, sizeof t);
        rc = train_with(cmd, &a, &t);
        run_free(&t);
    }
    rc = cli_dist_agree(rc);
    cli_dist_end();
    return rc;
}
