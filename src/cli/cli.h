/* cli.h - the pieces of the `cumlp` command shared between its source files. */
#ifndef CUMLP_CLI_H
#define CUMLP_CLI_H

#include "cumlp.h"

#include <stdint.h>
#include <stdio.h>

/* Exit codes of every subcommand. */
enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,    /* bad command line, or an unavailable backend */
    EXIT_DATA = 2,     /* a data or model file is missing or malformed, or another failure */
    EXIT_NUMERICAL = 3 /* NaN or Inf loss, or a failed gradient check */
};

/* Every option of every subcommand; each subcommand reads the ones it documents. */
typedef struct cli_args {
    /* data */
    const char *data, *labels, *format, *task, *scale;
    const char *test_data, *test_labels;
    int csv_header, label_column, classes, scale_per_feature;
    int64_t limit;
    double val_split;
    /* network */
    const char *layers, *act, *out_act, *loss, *init;
    /* optimizer and schedule (an optimizer's hyper-parameter left NaN takes its default) */
    const char *optimizer, *schedule, *milestones;
    double lr, momentum, weight_decay, beta1, beta2, eps, gamma, lr_min, target_loss, min_delta;
    double alpha, rho, lr_decay, initial_accumulator, momentum_decay, clip_norm, clip_value, power;
    int step_epochs, patience, restore_best, centered, skip_non_finite, warmup_epochs;
    /* run */
    int epochs, threads, tf32, quiet, progress;
    int64_t batch;
    uint64_t seed;
    const char *backend, *precision, *epilogues, *graph, *save, *log, *plot, *model, *out;
    const char *transport; /* train under mpirun: the gradients' transport (cumlp_transport) */
    double tol, step;
} cli_args;

/* Fills the defaults. */
void cli_args_defaults(cli_args *a);

/* Parses argv[first..argc) into a; `allowed` is a space-separated list of the option names the
 * subcommand takes (without "--"). Prints a message and returns 0 on a bad option. */
int cli_parse(int argc, char **argv, int first, const char *command, const char *allowed,
              cli_args *a);

/* Whether argv[first..argc) contains -h or --help. */
int cli_wants_help(int argc, char **argv, int first);

/* Prints "cumlp <command>: <message>" on stderr and returns the exit code for status. */
int cli_fail(const char *command, cumlp_status status, const char *message);

/* Prints "cumlp <command>: <message>" and returns EXIT_DATA: for failures to read a data or model
 * file, whatever the library's status (a label out of range is INVALID_VALUE and a NaN cell
 * NON_FINITE there, but both are data errors of the command). */
int cli_fail_data(const char *command, const char *message);

/* The exit code a status maps to. */
int cli_exit_code(cumlp_status status);

/* One of cumlp.h's name parsers (cumlp_activation_from_name, ...). */
typedef cumlp_status (*cli_name_parser)(const char *name, int *value);

/* Parses the value of --option with parse into *out; on failure prints the library's message
 * (which lists the accepted names) and returns 0. */
int cli_parse_name(const char *command, const char *option, cli_name_parser parse,
                   const char *value, int *out);

/* Creates the context for --backend / --threads / --precision (--tf32 is --precision tf32); on
 * failure prints and returns the exit code (else EXIT_OK). */
int cli_context(const char *command, const cli_args *a, cumlp_context **ctx);

/* Loads --data/--labels (or, with test = 1, --test-data/--test-labels) as the options say, for a
 * network of model_outputs outputs (0: not known yet): classes default to the output width, and
 * one output that classifies (a binary classifier) takes one 0/1 target per sample. */
int cli_load_data(const char *command, cumlp_context *ctx, const cli_args *a, int test,
                  int64_t model_outputs, cumlp_dataset **ds);

/* A file the command writes: crash-safely (a temporary file renamed over the target when it is
 * closed; a FIFO or device at the path is refused and left as it is; a symbolic link is followed),
 * or standard output for a NULL path or "-". */
typedef struct cli_output {
    const char *name; /* the path, or "standard output", for messages */
    FILE *f;          /* where to write; NULL once closed */
    struct cumlp__atomic_file *file;
} cli_output;

/* Opens path for writing; on failure prints why (naming the file) and returns EXIT_DATA. */
int cli_output_open(const char *command, const char *path, cli_output *out);
/* Puts what was written in place (or flushes standard output); on failure prints why, naming the
 * file, leaves the old file and returns EXIT_DATA. */
int cli_output_close(const char *command, cli_output *out);
/* Drops what was written (the target stays as it was). Accepts an output never opened. */
void cli_output_discard(cli_output *out);
/* Whether path can be written (its directory exists and takes a new file, and what is at the
 * path is a regular file or nothing), by opening and discarding it: prints why not and returns
 * EXIT_DATA; before a long run, so that it does not fail at the end. */
int cli_output_check(const char *command, const char *path);

/* Whether --data is IDX (named so, with --labels, or by its first bytes). */
int cli_data_is_idx(const cli_args *a);

/* Loads --data (and --labels, which IDX data may lack) for predict: the features of a model of
 * `inputs` inputs, with or without the targets (a CSV file as wide as the model's input is
 * features only); the targets are read as they are and not used. */
int cli_load_features(const char *command, cumlp_context *ctx, const cli_args *a, int64_t inputs,
                      cumlp_dataset **ds);

/* What the model file records about its data: --task, the classes (the output width, 2 for one
 * output) and --label-column. */
cumlp_model_info cli_model_info(const cli_args *a, const cumlp_network *net);

/* The scaler file that cumlp 0.1 kept beside a model file: "<model>.scale". */
void cli_scaler_path(const char *model, char *buf, size_t size);
/* Removes a <--save>.scale left by cumlp 0.1: the model file holds its scaling now. */
void cli_remove_stale_scaler(const cli_args *a);
/* Reads such a scaler file (a count line, then one "offset scale" pair per line) with a note;
 * *s is NULL when there is none. */
int cli_load_scaler(const char *command, cumlp_context *ctx, const char *path, cumlp_scaler **s);

/* A network description from the options and the data's shape. */
typedef struct net_spec {
    int num_layers;
    int64_t widths[64];
    int acts[63];
    cumlp_network_options options;
} net_spec;

/* Fills n from --layers, --act, --out-act, --loss, --init, --seed and the data's shape (n_in,
 * n_out, classify); prints and returns 0 when they do not fit. */
int cli_describe_network(const char *command, const cli_args *a, int64_t n_in, int64_t n_out,
                         int classify, net_spec *n);

/* ---- `cumlp train` under an MPI launcher (src/cli/dist.c); without one these do nothing. ---- */

/* Initializes MPI when an MPI launcher started the process; prints and returns the exit code of
 * a failure (else EXIT_OK). */
int cli_dist_begin(const char *command);
/* This process's rank in MPI_COMM_WORLD (0 without MPI). */
int cli_dist_rank(void);
/* On ranks other than 0: no output on stdout, no progress bar, no files (--save, --log, --plot). */
void cli_dist_rank0_outputs(cli_args *a);
/* Collective: every rank's exit code in, the lowest failed rank's out (EXIT_OK when none). */
int cli_dist_agree(int rc);
/* Collective: rank 0's value on every rank (value itself without MPI), for what must not depend on
 * a rank's own terminal or options, such as how often cumlp_fit calls back. */
int cli_dist_rank0_value(int value);
/* Collective: agrees on rc, then the network joins MPI_COMM_WORLD with --transport. */
int cli_dist_attach(const char *command, const cli_args *a, int rc, cumlp_network *net);
/* cli_fail for a status every rank shares (a collective call's): rank 0 alone prints it. */
int cli_dist_fail(const char *command, cumlp_status status, const char *message);
/* MPI_Finalize, when cli_dist_begin initialized MPI. */
void cli_dist_end(void);

/* Subcommands. */
int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_predict(int argc, char **argv);
int cli_gradcheck(int argc, char **argv);

/* Per-epoch history for the plot. */
typedef struct cli_history {
    int count, cap;
    double *train_loss, *val_loss, *train_acc, *val_acc;
} cli_history;

int cli_history_add(cli_history *h, double train_loss, double val_loss, double train_acc,
                    double val_acc);
void cli_history_free(cli_history *h);
/* Writes the training and validation curves as an SVG file; on failure prints why and returns
 * EXIT_DATA. */
int cli_write_svg(const char *command, const cli_history *h, const char *path);

#endif
