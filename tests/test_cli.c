/* ctest-labels: unit cuda */
/* test_cli.c - the `cumlp` command's exit codes and outputs: usage errors (1), data and file
 * errors (2), numerical failures (3), and working train / eval / predict / gradcheck / info runs
 * on a small CSV dataset the test writes. Runs the cumlp executable of the same build tree
 * (../src/cli/cumlp next to this test); skipped when it is not built. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* wait4 */
#include "harness.h"
#include "testutil.h"

#include "cumlp.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>
#include <unistd.h>

static char exe[1100], dir[512], out_path[700], err_path[700];

static void tmp(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/test_cli_%s", dir, name);
}

/* Runs `<prefix> cumlp <args>` with stdout and stderr in files (stdout in `out` when it is not
 * NULL); returns its exit status. The prefix is shell text run before it, such as a ulimit; every
 * run ends within 60 s (a hang, say on a FIFO, fails the test instead of blocking it). */
static int run_with(const char *prefix, const char *args, const char *out) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s timeout 60 '%s' %s >'%s' 2>'%s'", prefix, exe, args,
             out ? out : out_path, err_path);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs `cumlp <args>` with stdout and stderr in files; returns its exit status. */
static int run(const char *args) {
    return run_with("", args, NULL);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int contains(const char *path, const char *needle) {
    const char *text = slurp(path);
    return text && strstr(text, needle) != NULL;
}

static int count_lines(const char *path) {
    const char *text = slurp(path);
    int n = 0;
    for (const char *p = text; p && *p; p++)
        n += *p == '\n';
    return n;
}

/* A one-line message on stderr naming the subcommand. */
static void check_one_line_error(const char *command) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "cumlp %s", command);
    CHECK_MSG(contains(err_path, prefix), "stderr: %s", slurp(err_path));
    CHECK_MSG(count_lines(err_path) == 1, "stderr: %s", slurp(err_path));
}

static char csv[700], model[700];

/* 150 samples of 3 separable classes: x = class + noise, y = -class + noise. */
static void write_csv(void) {
    FILE *f = fopen(csv, "w");
    if (!f) return;
    fprintf(f, "x,y,class\n");
    for (int i = 0; i < 150; i++) {
        int c = i % 3;
        double nx = ((i * 37) % 11) / 30.0 - 0.15, ny = ((i * 53) % 13) / 35.0 - 0.15;
        fprintf(f, "%g,%g,%d\n", 2.0 * c + nx, -2.0 * c + ny, c);
    }
    fclose(f);
}

static void test_usage_errors(void) {
    CHECK(run("") == 1);
    CHECK(run("--help") == 0 && contains(out_path, "train"));
    CHECK(run("frobnicate") == 1);
    const char *commands[] = {"train", "eval", "predict", "gradcheck", "info"};
    for (int i = 0; i < 5; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", commands[i]);
        CHECK_MSG(run(args) == 0, "%s", args);
        CHECK(contains(out_path, "usage: cumlp"));
    }
    CHECK(run("train --bogus 1") == 1);
    check_one_line_error("train");
    CHECK(run("train --epochs many") == 1);
    check_one_line_error("train");
    CHECK(run("train") == 1); /* no --data */
    check_one_line_error("train");
    CHECK(run("eval --data x.csv") == 1); /* no --model */
    CHECK(run("info --verbose") == 1);
    char args[4096];
    snprintf(args, sizeof args, "train --data '%s' --csv-header --layers 3,4,3", csv);
    CHECK(run(args) == 1); /* the data has 2 features */
    check_one_line_error("train");
    snprintf(args, sizeof args, "train --data '%s' --csv-header --backend gpu", csv);
    CHECK(run(args) == 1);
    /* --transport is checked without mpirun too, where it does nothing */
    snprintf(args, sizeof args, "train --data '%s' --csv-header --epochs 1 --transport ncl", csv);
    CHECK(run(args) == 1);
    check_one_line_error("train");
    /* out-of-range numbers are usage errors, never silently replaced by a default */
    /* ... nor wrapped: strtoull would turn " -1" into 2^64 - 1 */
    const char *bad_values[] = {"--lr -0.5",     "--val-split -0.2", "--val-split 1", "--limit -5",
                                "--classes -2",  "--seed ' -1'",     "--seed -1",     "--seed +7",
                                "--epochs ' 3'", "--seed ''",        "--lr ' 0.1'"};
    for (int i = 0; i < (int)(sizeof bad_values / sizeof bad_values[0]); i++) {
        snprintf(args, sizeof args,
                 "train --data '%s' --csv-header --epochs 1 --backend reference --quiet %s", csv,
                 bad_values[i]);
        CHECK_MSG(run(args) == 1, "%s", bad_values[i]);
        check_one_line_error("train");
    }
    CHECK(run("gradcheck --backend reference --tol -1") == 1);
    check_one_line_error("gradcheck");
    /* Unknown names: the message lists what is accepted (the library's one list). */
    snprintf(args, sizeof args, "train --data '%s' --csv-header --act swish", csv);
    CHECK(run(args) == 1);
    check_one_line_error("train");
    CHECK(contains(err_path, "'swish'") && contains(err_path, "leaky_relu"));
    snprintf(args, sizeof args, "train --data '%s' --csv-header --act softmax", csv);
    CHECK(run(args) == 1);
    CHECK(contains(err_path, "output layer only"));
    /* --precision: the names of the list; bf16 and fp16 only on cuda; --tf32 is tf32 */
    snprintf(args, sizeof args, "train --data '%s' --csv-header --precision fp8", csv);
    CHECK(run(args) == 1);
    check_one_line_error("train");
    CHECK(contains(err_path, "'fp8'") && contains(err_path, "bf16"));
    snprintf(args, sizeof args, "train --data '%s' --csv-header --backend cpu --precision bf16",
             csv);
    CHECK(run(args) == 1);
    check_one_line_error("train");
    CHECK(contains(err_path, "bf16") && contains(err_path, "cuda"));
    snprintf(args, sizeof args, "train --data '%s' --csv-header --tf32 --precision fp16", csv);
    CHECK(run(args) == 1);
    check_one_line_error("train");
    snprintf(args, sizeof args,
             "eval --model '%s' --data '%s' --csv-header --backend reference --precision fp16",
             model, csv);
    CHECK(run(args) == 1);
    check_one_line_error("eval");
    /* --epilogues: the names of the list; anything but off only on cuda */
    snprintf(args, sizeof args, "train --data '%s' --csv-header --epilogues gelu", csv);
    CHECK(run(args) == 1);
    check_one_line_error("train");
    CHECK(contains(err_path, "'gelu'") && contains(err_path, "relu"));
    snprintf(args, sizeof args, "train --data '%s' --csv-header --backend cpu --epilogues relu",
             csv);
    CHECK(run(args) != 0);
    check_one_line_error("train");
    CHECK(contains(err_path, "no GEMM epilogues"));
    /* --graph: on or off; on only where there are graphs */
    snprintf(args, sizeof args, "train --data '%s' --csv-header --graph maybe", csv);
    CHECK(run(args) == 1);
    check_one_line_error("train");
    CHECK(contains(err_path, "'maybe'"));
    snprintf(args, sizeof args, "train --data '%s' --csv-header --backend cpu --graph on", csv);
    CHECK(run(args) != 0);
    check_one_line_error("train");
    CHECK(contains(err_path, "no CUDA graphs"));
}

static void test_data_errors(void) {
    char args[4096], bad[700];
    tmp(bad, sizeof bad, "missing.csv");
    remove(bad);
    snprintf(args, sizeof args, "train --data '%s'", bad);
    CHECK(run(args) == 2);
    check_one_line_error("train");
    CHECK(contains(err_path, "missing.csv"));
    tmp(bad, sizeof bad, "ragged.csv");
    FILE *f = fopen(bad, "w");
    if (f) {
        fputs("1,2,0\n3,1\n", f);
        fclose(f);
    }
    snprintf(args, sizeof args, "train --data '%s'", bad);
    CHECK(run(args) == 2);
    check_one_line_error("train");
    CHECK(contains(err_path, "line 2"));
    /* a model file that is not a checkpoint */
    snprintf(args, sizeof args, "eval --model '%s' --data '%s' --csv-header", bad, csv);
    CHECK(run(args) == 2);
    check_one_line_error("eval");
    remove(bad);
}

static void test_train_eval_predict(void) {
    char args[4096], log[700], plot[700], pred[700];
    tmp(log, sizeof log, "log.csv");
    tmp(plot, sizeof plot, "curves.svg");
    tmp(pred, sizeof pred, "pred.csv");
    snprintf(args, sizeof args,
             "train --data '%s' --csv-header --layers 2,8,3 --epochs 40 --batch 16 --lr 0.03 "
             "--scale standard --val-split 0.2 --backend reference --save '%s' --log '%s' "
             "--plot '%s' --seed 3",
             csv, model, log, plot);
    CHECK_MSG(run(args) == 0, "stderr: %s", slurp(err_path));
    CHECK(contains(out_path, "done: 40 epochs"));
    CHECK(count_lines(log) == 41); /* header + one line per epoch */
    CHECK(contains(log, "epoch,learning_rate,train_loss"));
    CHECK(contains(log, ",gradient_norm,skipped_steps\n"));
    CHECK(contains(plot, "<svg") && contains(plot, "polyline") && contains(plot, "</svg>"));
    char scale[800];
    snprintf(scale, sizeof scale, "%s.scale", model);
    CHECK(access(scale, F_OK) != 0); /* the scaling is inside the model */

    snprintf(args, sizeof args, "eval --model '%s' --data '%s' --csv-header --backend reference",
             model, csv);
    CHECK_MSG(run(args) == 0, "stderr: %s", slurp(err_path));
    const char *text = slurp(out_path);
    const char *acc = text ? strstr(text, "accuracy ") : NULL;
    double accuracy = acc ? atof(acc + 9) : 0;
    CHECK_MSG(accuracy > 0.95, "eval printed: %s", text ? text : "");

    snprintf(args, sizeof args, "predict --model '%s' --data '%s' --csv-header --out '%s'", model,
             csv, pred);
    CHECK_MSG(run(args) == 0, "stderr: %s", slurp(err_path));
    CHECK(count_lines(pred) == 151);
    CHECK(contains(pred, "class,out0,out1,out2"));
    remove(log);
    remove(plot);
    remove(pred);
}

/* The command on the cuda backend (a GPU, or the CUDA simulator): train, eval, predict and bench
 * with --backend cuda; the trained model evaluates as well as on the reference backend. */
static void test_cuda_backend_commands(void) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_CUDA;
    char why[512];
    cumlp_context *cuda = test_context_try(&o, why, sizeof why);
    if (!cuda) {
        CHECK_MSG(!test_gpu_required(), "%s (CUMLP_TEST_REQUIRE_GPU=1)", why);
        printf("  (cuda backend: %s)\n", why);
        return;
    }
    cumlp_context_destroy(cuda);
    char args[4096], pred[700];
    tmp(pred, sizeof pred, "pred_cuda.csv");
    snprintf(args, sizeof args,
             "train --data '%s' --csv-header --layers 2,8,3 --epochs 40 --batch 16 --lr 0.03 "
             "--scale standard --val-split 0.2 --backend cuda --save '%s' --seed 3 --quiet",
             csv, model);
    CHECK_MSG(run(args) == 0, "stderr: %s", slurp(err_path));
    double accuracy[2] = {0, 0};
    const char *backends[2] = {"cuda", "reference"};
    for (int b = 0; b < 2; b++) {
        snprintf(args, sizeof args, "eval --model '%s' --data '%s' --csv-header --backend %s",
                 model, csv, backends[b]);
        CHECK_MSG(run(args) == 0, "stderr: %s", slurp(err_path));
        const char *text = slurp(out_path);
        const char *acc = text ? strstr(text, "accuracy ") : NULL;
        accuracy[b] = acc ? atof(acc + 9) : 0;
    }
    CHECK_MSG(accuracy[0] > 0.95 && fabs(accuracy[0] - accuracy[1]) < 0.01,
              "accuracy %g on cuda, %g on the reference backend", accuracy[0], accuracy[1]);
    snprintf(args, sizeof args,
             "predict --model '%s' --data '%s' --csv-header --out '%s' --backend cuda", model, csv,
             pred);
    CHECK_MSG(run(args) == 0, "stderr: %s", slurp(err_path));
    CHECK(count_lines(pred) == 151);
    CHECK_MSG(run("bench --layers 6,5,3 --batch 8 --steps 2 --warmup 1 --backend cuda") == 0,
              "stderr: %s", slurp(err_path));
    CHECK(contains(out_path, "custom  cuda"));
    /* bf16 and fp16: trained, the fp32 master weights saved, evaluated in fp32 on the reference
     * backend as well as in the training precision on cuda */
    const char *sixteen[] = {"bf16", "fp16"};
    for (int p = 0; p < 2; p++) {
        snprintf(args, sizeof args,
                 "train --data '%s' --csv-header --layers 2,8,3 --epochs 40 --batch 16 --lr 0.03 "
                 "--scale standard --val-split 0.2 --backend cuda --precision %s --epilogues relu "
                 "--graph %s --save '%s' --seed 3 --quiet",
                 csv, sixteen[p], p ? "off" : "on", model);
        CHECK_MSG(run(args) == 0, "%s: stderr: %s", sixteen[p], slurp(err_path));
        const char *evals[2] = {"--backend reference",
                                "--backend cuda --epilogues all --precision"};
        for (int e = 0; e < 2; e++) {
            snprintf(args, sizeof args, "eval --model '%s' --data '%s' --csv-header %s%s%s", model,
                     csv, evals[e], e ? " " : "", e ? sixteen[p] : "");
            CHECK_MSG(run(args) == 0, "stderr: %s", slurp(err_path));
            const char *text = slurp(out_path);
            const char *acc = text ? strstr(text, "accuracy ") : NULL;
            CHECK_MSG(acc && atof(acc + 9) > 0.95, "%s: %s", sixteen[p], text ? text : "");
        }
    }
    CHECK_MSG(run("bench --layers 6,5,3 --batch 8 --steps 2 --warmup 1 --backend cuda "
                  "--precision bf16,fp16") == 0,
              "stderr: %s", slurp(err_path));
    CHECK(contains(out_path, "custom  cuda      bf16") &&
          contains(out_path, "custom  cuda      fp16"));
    /* the step queued without a wait, beside the graph's and the launch-by-launch one's */
    CHECK_MSG(run("bench --layers 6,5,3 --batch 8 --steps 3 --warmup 1 --backend cuda "
                  "--graph on,off,queued") == 0,
              "stderr: %s", slurp(err_path));
    CHECK(contains(out_path, "fp32 off  queued") && contains(out_path, "fp32 off  on") &&
          contains(out_path, "fp32 off  off"));
    CHECK(run("gradcheck --backend cuda --precision bf16") == 0);
    remove(pred);
}

/* A log at a path that is not a regular file (/dev/full, a device) is refused before training,
 * naming it, and nothing is saved; it used to fail after training. */
static void test_log_to_a_device_is_refused(void) {
    if (access("/dev/full", W_OK) != 0) {
        printf("  (no /dev/full here: not tested)\n");
        return;
    }
    char args[4096];
    remove(model);
    snprintf(args, sizeof args,
             "train --data '%s' --csv-header --layers 2,4,3 --epochs 2 --backend reference "
             "--quiet --save '%s' --log /dev/full",
             csv, model);
    CHECK(run(args) == 2);
    check_one_line_error("train");
    CHECK(contains(err_path, "/dev/full") && contains(err_path, "not a regular file"));
    CHECK(access(model, F_OK) != 0);
}

/* A test file that lacks the training set's largest class still gets its one-hot targets over
 * the training set's classes (else its width differs from the network's output). */
static void test_test_set_classes(void) {
    char test_csv[700], args[4096];
    tmp(test_csv, sizeof test_csv, "test_two_classes.csv");
    FILE *f = fopen(test_csv, "w");
    if (f) {
        fprintf(f, "x,y,class\n");
        for (int i = 0; i < 20; i++)
            fprintf(f, "%g,%g,%d\n", 2.0 * (i % 2), -2.0 * (i % 2), i % 2);
        fclose(f);
    }
    snprintf(args, sizeof args,
             "train --data '%s' --test-data '%s' --csv-header --layers 2,8,3 --epochs 20 "
             "--batch 16 --lr 0.03 --backend reference --quiet",
             csv, test_csv);
    CHECK_MSG(run(args) == 0, "stderr: %s", slurp(err_path));
    CHECK(contains(out_path, "test accuracy"));
    remove(test_csv);
}

static void write_bytes(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(bytes, 1, n, f);
    fclose(f);
}

/* The files of test_exit_codes_of_every_error_class, named @name@ in its command lines. */
static const char *const ex_names[] = {"ragged", "neg",   "big",    "frac",  "nan",
                                       "img",    "lab",   "nofile", "model", "notmodel",
                                       "reg",    "nodir", "blobs"};
enum { EX_FILES = sizeof ex_names / sizeof ex_names[0] };
static char ex_paths[EX_FILES][700];

/* The command line with every @name@ replaced by the quoted path of that file. */
static void expand(const char *template, char *out, size_t size) {
    size_t n = 0;
    for (const char *p = template; *p && n + 1 < size;) {
        const char *end = *p == '@' ? strchr(p + 1, '@') : NULL;
        int k = -1;
        for (int i = 0; end && i < EX_FILES; i++)
            if (strlen(ex_names[i]) == (size_t)(end - p - 1) &&
                strncmp(ex_names[i], p + 1, (size_t)(end - p - 1)) == 0)
                k = i;
        if (k < 0) {
            out[n++] = *p++;
            continue;
        }
        n += (size_t)snprintf(out + n, size - n, "'%s'", ex_paths[k]);
        p = end + 1;
    }
    out[n < size ? n : size - 1] = '\0';
}

/* The exit status is README's contract (0 success, 1 usage error, 2 data or file error, 3
 * numerical failure) for every error class through every subcommand that meets it, each with a
 * message on stderr. A label of -1 exited 1, one of 70000 2; a NaN cell 3; a non-integer label 1;
 * a model file holding NaN 3. */
static void test_exit_codes_of_every_error_class(void) {
    for (int i = 0; i < EX_FILES; i++) {
        char name[64];
        /* the text files end in .csv, the format cumlp guesses from the name */
        int text = i <= 4 || i == 7 || i == 10;
        snprintf(name, sizeof name, "ex_%s%s", ex_names[i], text ? ".csv" : "");
        tmp(ex_paths[i], sizeof ex_paths[i], name);
    }
    snprintf(ex_paths[12], sizeof ex_paths[12], "%s", csv);
    snprintf(ex_paths[11] + strlen(ex_paths[11]), 100, "/x"); /* in a missing directory */
    write_bytes(ex_paths[0], "1,2,0\n3,4\n", 10);
    write_bytes(ex_paths[1], "1,2,0\n3,4,-1\n", 13);
    write_bytes(ex_paths[2], "1,2,0\n3,4,70000\n", 16);
    write_bytes(ex_paths[3], "1,2,0\n3,4,1.5\n", 14);
    write_bytes(ex_paths[4], "1,2,0\n3,nan,1\n", 14);
    /* IDX images announcing 4 items of 2 x 1 bytes but holding 3 bytes; 4 labels */
    const unsigned char img[] = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 1, 1, 2, 3};
    const unsigned char lab[] = {0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 0, 1};
    write_bytes(ex_paths[5], img, sizeof img);
    write_bytes(ex_paths[6], lab, sizeof lab);
    remove(ex_paths[7]);
    write_bytes(ex_paths[9], "not a checkpoint\n", 17);
    write_bytes(ex_paths[10], "0,0\n1,1e30\n2,3e30\n3,-1e30\n", 26);
    char args[8192];
    expand("train --data @blobs@ --csv-header --layers 2,4,3 --epochs 1 --backend reference "
           "--quiet --save @model@",
           args, sizeof args);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    /* a checkpoint holding NaN: the model file is bad, not the arithmetic */
    char nan_model[700];
    tmp(nan_model, sizeof nan_model, "ex_nan_model");
    {
        cumlp_context *ctx = NULL;
        cumlp_context_options co;
        cumlp_context_defaults(&co);
        co.backend = CUMLP_BACKEND_REFERENCE;
        cumlp_network *net = NULL;
        CHECK_OK(cumlp_context_create(&ctx, &co));
        CHECK_OK(cumlp_checkpoint_load(ctx, ex_paths[8], 0, &net, NULL));
        float w[8] = {NAN, 0, 0, 0, 0, 0, 0, 0};
        if (net) CHECK_OK(cumlp_network_set_layer(net, 0, w, NULL));
        if (net) CHECK_OK(cumlp_checkpoint_save(net, NULL, nan_model));
        cumlp_network_destroy(net);
        cumlp_context_destroy(ctx);
    }

    static const struct {
        const char *args;
        int expected;
    } rows[] = {
        /* usage errors: an unknown option, a bad number, a missing required option */
        {"train --bogus", 1},
        {"eval --bogus", 1},
        {"predict --bogus", 1},
        {"gradcheck --bogus", 1},
        {"bench --bogus 1", 1},
        {"info --bogus", 1},
        {"train --data @blobs@ --epochs x", 1},
        {"eval --model @model@ --data @blobs@ --batch x", 1},
        {"predict --model @model@ --data @blobs@ --batch x", 1},
        {"gradcheck --batch x", 1},
        {"bench --steps x", 1},
        {"bench --graph sometimes", 1},
        {"train", 1},
        {"eval --data @blobs@", 1},
        {"predict --data @blobs@", 1},
        /* data errors: a missing file, a ragged CSV, bad labels, NaN, a truncated IDX */
        {"train --data @nofile@", 2},
        {"eval --model @model@ --data @nofile@", 2},
        {"predict --model @model@ --data @nofile@", 2},
        {"gradcheck --data @nofile@", 2},
        {"train --data @ragged@", 2},
        {"eval --model @model@ --data @ragged@", 2},
        {"predict --model @model@ --data @ragged@", 2},
        {"gradcheck --data @ragged@", 2},
        {"train --data @neg@", 2},
        {"eval --model @model@ --data @neg@", 2},
        {"gradcheck --data @neg@", 2},
        {"train --data @big@", 2},
        {"eval --model @model@ --data @big@", 2},
        {"gradcheck --data @big@", 2},
        {"train --data @frac@", 2},
        {"eval --model @model@ --data @frac@", 2},
        {"gradcheck --data @frac@", 2},
        {"train --data @nan@", 2},
        {"eval --model @model@ --data @nan@", 2},
        {"predict --model @model@ --data @nan@", 2},
        /* predict does not use the targets: bad labels are no error there */
        {"predict --model @model@ --data @neg@", 0},
        {"predict --model @model@ --data @frac@", 0},
        {"gradcheck --data @nan@", 2},
        {"train --data @img@ --labels @lab@", 2},
        {"eval --model @model@ --data @img@ --labels @lab@", 2},
        {"predict --model @model@ --data @img@ --labels @lab@", 2},
        {"gradcheck --data @img@ --labels @lab@", 2},
        /* file errors: a model that is missing, not a checkpoint or holds NaN; an output that
         * cannot be written */
        {"eval --model @nofile@ --data @blobs@", 2},
        {"predict --model @nofile@ --data @blobs@", 2},
        {"eval --model @notmodel@ --data @blobs@", 2},
        {"predict --model @notmodel@ --data @blobs@", 2},
        {"eval --model @nanmodel@ --data @blobs@", 2},
        {"predict --model @nanmodel@ --data @blobs@", 2},
        {"train --data @blobs@ --csv-header --epochs 1 --save @nodir@", 2},
        {"predict --model @model@ --data @blobs@ --csv-header --out @nodir@", 2},
        {"bench --layers 4,2 --steps 1 --warmup 0 --backend reference --json @nodir@", 2},
        {"bench --layers 4,2 --steps 1 --warmup 0 --backend reference --save-init @nodir@", 2},
        /* numerical failures */
        {"train --data @reg@ --task regress --layers 1,1 --optimizer sgd --lr 1e30 --batch 1 "
         "--backend reference --quiet",
         3},
        {"gradcheck --backend reference --tol 1e-300", 3},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char line[4096];
        snprintf(line, sizeof line, "%s", rows[i].args);
        char *at = strstr(line, "@nanmodel@");
        if (at) {
            char rest[4096];
            snprintf(rest, sizeof rest, "%s", at + strlen("@nanmodel@"));
            snprintf(at, sizeof line - (size_t)(at - line), "'%s'%s", nan_model, rest);
        }
        expand(line, args, sizeof args);
        int rc = run(args);
        CHECK_MSG(rc == rows[i].expected, "cumlp %s: exit status %d, expected %d; stderr: %s",
                  rows[i].args, rc, rows[i].expected, slurp(err_path));
        const char *err = slurp(err_path);
        CHECK_MSG(rows[i].expected == 0 || (err && strlen(err) > 0), "cumlp %s: no message",
                  rows[i].args);
    }
    for (int i = 0; i < EX_FILES - 1; i++)
        remove(ex_paths[i]);
    remove(nan_model);
}

/* Output layers and losses that cannot work together are refused before training (a 1-wide
 * softmax trained nothing and reported loss 0, exit 0), and a binary classifier with one sigmoid
 * output reports its accuracy, in training and from its file. */
static void test_output_layer_and_loss_fit(void) {
    char args[4096], fann[700], reg[700], bin[700], bin_model[700];
    tmp(fann, sizeof fann, "fit3.data");
    tmp(reg, sizeof reg, "fit_reg.csv");
    tmp(bin, sizeof bin, "fit_bin.csv");
    tmp(bin_model, sizeof bin_model, "fit_bin.safetensors");
    FILE *f = fopen(fann, "w");
    if (f) {
        fprintf(f, "4 2 3\n");
        for (int i = 0; i < 4; i++)
            fprintf(f, "%d %d\n%d 0.5 %d\n", i, i % 2, i * 2, 7 - i);
        fclose(f);
    }
    f = fopen(reg, "w");
    for (int i = 0; f && i < 20; i++)
        fprintf(f, "%d,%d,%d\n", i, i % 3, 5 * i);
    if (f) fclose(f);
    f = fopen(bin, "w");
    for (int i = 0; f && i < 60; i++)
        fprintf(f, "%g,%g,%d\n", (i % 2) * 2.0 - 1 + (i % 7) * 0.05, (i % 5) * 0.1, i % 2);
    if (f) fclose(f);
    const char *quick = "--epochs 1 --backend reference --quiet";
    snprintf(args, sizeof args,
             "train --data '%s' --csv-header --task regress --out-act softmax %s", csv, quick);
    CHECK(run(args) == 1);
    check_one_line_error("train");
    CHECK_MSG(contains(err_path, "at least 2 outputs"), "%s", slurp(err_path));
    snprintf(args, sizeof args, "train --data '%s' --task regress --out-act softmax --loss ce %s",
             fann, quick);
    CHECK(run(args) == 1);
    check_one_line_error("train");
    CHECK_MSG(contains(err_path, "classif"), "%s", slurp(err_path));
    snprintf(args, sizeof args, "train --data '%s' --task regress --out-act sigmoid --loss bce %s",
             reg, quick);
    CHECK(run(args) == 1);
    check_one_line_error("train");
    CHECK_MSG(contains(err_path, "[0, 1]"), "%s", slurp(err_path));
    /* one sigmoid output: binary cross-entropy by default, and an accuracy */
    snprintf(args, sizeof args,
             "train --data '%s' --layers 2,4,1 --epochs 30 --lr 0.05 --backend reference "
             "--save '%s'",
             bin, bin_model);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    CHECK_MSG(contains(out_path, "train accuracy"), "%s", slurp(out_path));
    snprintf(args, sizeof args, "eval --model '%s' --data '%s' --backend reference", bin_model,
             bin);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    const char *text = slurp(out_path);
    const char *acc = text ? strstr(text, "accuracy ") : NULL;
    CHECK_MSG(acc && atof(acc + 9) > 0.9, "%s", text ? text : "");
    snprintf(args, sizeof args, "predict --model '%s' --data '%s' --backend reference", bin_model,
             bin);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    CHECK_MSG(contains(out_path, "class,out0\n") && contains(out_path, "\n1,") &&
                  contains(out_path, "\n0,"),
              "%s", slurp(out_path));
    snprintf(args, sizeof args,
             "train --data '%s' --task regress --out-act sigmoid --loss bce --layers 2,4,1 %s", bin,
             quick);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    CHECK_MSG(contains(out_path, "train accuracy"), "%s", slurp(out_path));
    remove(fann);
    remove(reg);
    remove(bin);
    remove(bin_model);
}

/* The number after `key` in the text, or NAN. */
static double number_after(const char *text, const char *key) {
    const char *at = text ? strstr(text, key) : NULL;
    return at ? atof(at + strlen(key)) : NAN;
}

/* One file is the model: its scaling, task, classes and label column live in the safetensors
 * file, so a model copied alone evaluates as it did in training (it depended on a FILE.scale
 * beside it: the demo model copied alone gave loss 49.9 instead of 0.30), and eval and predict
 * need only --model and --data. A model of cumlp 0.1 with its FILE.scale is still read, with a
 * note. */
static void test_model_is_one_file(void) {
    char args[4096], data[700], trained[700], copy[700], old[700], scale[800];
    tmp(data, sizeof data, "onefile.csv");
    tmp(trained, sizeof trained, "onefile.safetensors");
    tmp(copy, sizeof copy, "onefile_copy.safetensors");
    tmp(old, sizeof old, "onefile_old.safetensors");
    /* the target first, then two features of very different scales */
    FILE *f = fopen(data, "w");
    for (int i = 0; f && i < 60; i++) {
        double a = 1000 + 10 * ((i * 7) % 13), b = 0.001 * ((i * 5) % 11);
        fprintf(f, "%g,%g,%g\n", (a - 1060) / 40 + (b - 0.005) * 300, a, b);
    }
    if (f) fclose(f);
    snprintf(scale, sizeof scale, "%s.scale", trained);
    f = fopen(scale, "w"); /* a stale scaling from an earlier model */
    if (f) {
        fputs("cumlp-scaler 1 2\n0 1\n0 1\n", f);
        fclose(f);
    }
    snprintf(args, sizeof args,
             "train --data '%s' --task regress --label-column 0 --scale standard --layers 2,8,1 "
             "--act tanh --epochs 60 --batch 8 --lr 0.01 --backend reference --test-data '%s' "
             "--save '%s' --quiet",
             data, data, trained);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    double test_loss = number_after(slurp(out_path), "  loss ");
    CHECK_MSG(test_loss < 2, "%s", slurp(out_path));
    CHECK_MSG(access(scale, F_OK) != 0, "%s is left beside the model", scale);
    /* the file alone, somewhere else, with nothing but --model and --data */
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", trained, copy);
    CHECK(system(cmd) == 0);
    snprintf(args, sizeof args, "eval --model '%s' --data '%s' --backend reference", copy, data);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    double loss = number_after(slurp(out_path), "loss ");
    CHECK_MSG(fabs(loss - test_loss) <= 1e-3 * test_loss + 1e-4,
              "the copy evaluates to loss %g, training's test set to %g", loss, test_loss);
    CHECK_MSG(contains(out_path, "mse") && !contains(out_path, "accuracy"), "%s", slurp(out_path));
    snprintf(args, sizeof args, "predict --model '%s' --data '%s' --backend reference", copy, data);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    CHECK(count_lines(out_path) == 61 && contains(out_path, "out0") &&
          !contains(out_path, "class"));

    /* a model of cumlp 0.1: no model info in the file, the scaling in FILE.scale */
    cumlp_context *ctx = NULL;
    cumlp_context_options co;
    cumlp_context_defaults(&co);
    co.backend = CUMLP_BACKEND_REFERENCE;
    CHECK_OK(cumlp_context_create(&ctx, &co));
    cumlp_network *net = NULL;
    cumlp_scaler *scaler = NULL;
    CHECK_OK(cumlp_checkpoint_load_with(ctx, trained, 0, &net, NULL, &scaler, NULL));
    if (net) CHECK_OK(cumlp_checkpoint_save(net, NULL, old));
    snprintf(scale, sizeof scale, "%s.scale", old);
    f = fopen(scale, "w");
    float offsets[2] = {0, 0}, scales[2] = {1, 1};
    if (scaler) CHECK_OK(cumlp_scaler_get(scaler, offsets, scales, 2));
    if (f) {
        fprintf(f, "cumlp-scaler 1 2\n%.9g %.9g\n%.9g %.9g\n", offsets[0], scales[0], offsets[1],
                scales[1]);
        fclose(f);
    }
    cumlp_scaler_destroy(scaler);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
    snprintf(args, sizeof args,
             "eval --model '%s' --data '%s' --task regress --label-column 0 --backend reference",
             old, data);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    CHECK_MSG(contains(err_path, "note") && contains(err_path, scale), "%s", slurp(err_path));
    loss = number_after(slurp(out_path), "loss ");
    CHECK_MSG(fabs(loss - test_loss) <= 1e-3 * test_loss + 1e-4, "old model: loss %g, not %g", loss,
              test_loss);
    remove(scale);
    remove(data);
    remove(trained);
    remove(copy);
    remove(old);
}

/* predict reads data with or without the target column: a CSV as wide as the model's input is
 * features only, IDX images need no --labels (and are told from their bytes, whatever their
 * name). It refused both. */
static void test_predict_without_targets(void) {
    char args[4096], features[700], with[700], without[700], img[700], lab[700], idx_model[700];
    tmp(features, sizeof features, "features_only.csv");
    tmp(with, sizeof with, "pred_with.csv");
    tmp(without, sizeof without, "pred_without.csv");
    tmp(img, sizeof img, "pred_images.bin");
    tmp(lab, sizeof lab, "pred_labels.bin");
    tmp(idx_model, sizeof idx_model, "pred_idx.safetensors");
    /* the blobs without their class column */
    FILE *in = fopen(csv, "r"), *out = fopen(features, "w");
    char line[256];
    while (in && out && fgets(line, sizeof line, in)) {
        char *last = strrchr(line, ',');
        if (last) strcpy(last, "\n");
        fputs(line, out);
    }
    if (in) fclose(in);
    if (out) fclose(out);
    snprintf(args, sizeof args,
             "train --data '%s' --csv-header --layers 2,8,3 --epochs 20 --batch 16 --lr 0.03 "
             "--backend reference --quiet --save '%s'",
             csv, model);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    snprintf(args, sizeof args, "predict --model '%s' --data '%s' --csv-header --out '%s'", model,
             csv, with);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    snprintf(args, sizeof args, "predict --model '%s' --data '%s' --csv-header --out '%s'", model,
             features, without);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    char *a = slurp(with) ? strdup(slurp(with)) : NULL;
    const char *b = slurp(without);
    CHECK_MSG(a && b && strcmp(a, b) == 0 && count_lines(without) == 151,
              "the predictions differ with and without the target column");
    free(a);
    /* a CSV of neither width */
    write_bytes(features, "1,2,3,4\n5,6,7,8\n", 16);
    snprintf(args, sizeof args, "predict --model '%s' --data '%s'", model, features);
    CHECK(run(args) == 2);
    check_one_line_error("predict");
    CHECK_MSG(contains(err_path, "4 fields") && contains(err_path, "2 features"), "%s",
              slurp(err_path));

    /* IDX images without labels: 6 items of 2 x 1 bytes, 2 classes */
    const unsigned char images[] = {0, 0, 8, 3, 0, 0, 0, 6, 0, 0, 0, 2, 0, 0,
                                    0, 1, 0, 9, 9, 0, 1, 8, 8, 1, 0, 7, 7, 0};
    const unsigned char labels[] = {0, 0, 8, 1, 0, 0, 0, 6, 0, 1, 0, 1, 0, 1};
    write_bytes(img, images, sizeof images);
    write_bytes(lab, labels, sizeof labels);
    snprintf(args, sizeof args,
             "train --data '%s' --labels '%s' --layers 2,4,2 --epochs 50 --batch 2 --lr 0.05 "
             "--backend reference --quiet --save '%s'",
             img, lab, idx_model);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    snprintf(args, sizeof args, "predict --model '%s' --data '%s' --backend reference", idx_model,
             img);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    CHECK_MSG(count_lines(out_path) == 7 && contains(out_path, "class,out0,out1"), "%s",
              slurp(out_path));
    remove(features);
    remove(with);
    remove(without);
    remove(img);
    remove(lab);
    remove(idx_model);
}

/* Peak memory of `cumlp <args>` (kB), run without a shell so that it is the command's own. */
static long peak_kb(const char *args_text) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", args_text);
    char *argv[64];
    int argc = 0;
    argv[argc++] = exe;
    for (char *tok = strtok(copy, " "); tok && argc < 63; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        FILE *o = freopen(out_path, "w", stdout), *e = freopen(err_path, "w", stderr);
        (void)o;
        (void)e;
        execv(exe, argv);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return -1;
    return ru.ru_maxrss;
}

/* Memory: the training data is held once; the validation split used to copy all of it (572 MB
 * peak on Fashion-MNIST for 188 MB of data). Splitting off 10% for validation may raise the
 * command's peak by about those 10%, not by the whole data set. (What the command takes beside
 * its data depends on the libraries it loads, the CUDA ones above all, so the peak is compared
 * with the same run without the split; test_data_readers measures the reading itself.) */
static void test_memory_holds_data_once(void) {
#if defined(__SANITIZE_ADDRESS__)
    printf("  (AddressSanitizer build: peak memory is not the program's own)\n");
    return;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    printf("  (AddressSanitizer build: peak memory is not the program's own)\n");
    return;
#endif
#endif
    enum { N = 30000, SIDE = 28 };
    char img[700], lab[700], args[4096];
    tmp(img, sizeof img, "mem_images.idx.gz");
    tmp(lab, sizeof lab, "mem_labels.idx");
    size_t n_img = 16 + (size_t)N * SIDE * SIDE;
    unsigned char *bytes = malloc(n_img);
    if (!bytes) return;
    const unsigned char head[16] = {0, 0, 8, 3,    0, 0, N >> 8, N & 255,
                                    0, 0, 0, SIDE, 0, 0, 0,      SIDE};
    memcpy(bytes, head, 16);
    for (size_t i = 16; i < n_img; i++)
        bytes[i] = (unsigned char)((i * 2654435761u) >> 24);
    gzFile g = gzopen(img, "wb1");
    if (g) {
        gzwrite(g, bytes, (unsigned)n_img);
        gzclose(g);
    }
    for (size_t i = 0; i < N; i++)
        bytes[8 + i] = (unsigned char)(i % 10);
    const unsigned char lab_head[8] = {0, 0, 8, 1, 0, 0, N >> 8, N & 255};
    memcpy(bytes, lab_head, 8);
    write_bytes(lab, bytes, 8 + N);
    free(bytes);
    long peak[2];
    for (int split = 0; split < 2; split++) {
        snprintf(args, sizeof args,
                 "train --data %s --labels %s --val-split %s --scale minmax --layers 784,10 "
                 "--epochs 1 --batch 256 --backend reference --quiet",
                 img, lab, split ? "0.1" : "0");
        peak[split] = peak_kb(args);
        CHECK_MSG(peak[split] > 0, "%s", slurp(err_path));
    }
    double data_mb = (double)N * (SIDE * SIDE + 10) * sizeof(float) / 1048576.0;
    double more_mb = (double)(peak[1] - peak[0]) / 1024.0;
    printf("  peak %.1f MB, %.1f MB more with --val-split 0.1, for %.1f MB of data\n",
           peak[1] / 1024.0, more_mb, data_mb);
    CHECK_MSG(more_mb <= 0.25 * data_mb + 8,
              "--val-split 0.1 took %.1f MB more for %.1f MB of data", more_mb, data_mb);
    remove(img);
    remove(lab);
}

/* Friction removed: a CSV header is detected (a first line without a number), with a note; a bad
 * number on a first line that is not a header suggests --csv-header; --save is checked before
 * training; --scale defaults to minmax for IDX images (and stays none for other data). */
static void test_friction(void) {
    char args[4096], mixed[700], saved[700], img[700], lab[700];
    tmp(mixed, sizeof mixed, "mixed_header.csv");
    tmp(saved, sizeof saved, "friction.safetensors");
    tmp(img, sizeof img, "friction_images.idx");
    tmp(lab, sizeof lab, "friction_labels.idx");
    /* blobs.csv starts with "x,y,class": no --csv-header needed, with a note */
    snprintf(args, sizeof args,
             "train --data '%s' --layers 2,8,3 --epochs 2 --backend reference --quiet --save '%s'",
             csv, saved);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    CHECK_MSG(contains(err_path, "note") && contains(err_path, "header"), "%s", slurp(err_path));
    snprintf(args, sizeof args, "eval --model '%s' --data '%s' --backend reference", saved, csv);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    CHECK(contains(out_path, "samples 150"));
    snprintf(args, sizeof args, "predict --model '%s' --data '%s' --backend reference", saved, csv);
    CHECK_MSG(run(args) == 0 && count_lines(out_path) == 151, "%s", slurp(err_path));
    /* a first line with a number in it is data: its bad field suggests --csv-header */
    write_bytes(mixed, "x,2,class\n1,2,0\n3,4,1\n", 22);
    snprintf(args, sizeof args, "train --data '%s' --epochs 1 --backend reference --quiet", mixed);
    CHECK(run(args) == 2);
    check_one_line_error("train");
    CHECK_MSG(contains(err_path, "--csv-header"), "%s", slurp(err_path));
    /* --save into a directory that does not exist: refused before training */
    snprintf(args, sizeof args,
             "train --data '%s' --csv-header --epochs 1 --backend reference "
             "--save '%s/no_such_dir/m'",
             csv, dir);
    CHECK(run(args) == 2);
    check_one_line_error("train");
    CHECK_MSG(contains(err_path, "no_such_dir") && !contains(out_path, "done:"), "%s",
              slurp(err_path));
    /* IDX images: minmax scaling unless told otherwise */
    const unsigned char images[] = {0, 0, 8, 3, 0, 0,   0,   4, 0, 0,   0,  2,
                                    0, 0, 0, 1, 0, 200, 100, 0, 0, 250, 50, 10};
    const unsigned char labels[] = {0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 0, 1};
    write_bytes(img, images, sizeof images);
    write_bytes(lab, labels, sizeof labels);
    cumlp_context *ctx = NULL;
    cumlp_context_options co;
    cumlp_context_defaults(&co);
    co.backend = CUMLP_BACKEND_REFERENCE;
    CHECK_OK(cumlp_context_create(&ctx, &co));
    for (int none = 0; none < 2; none++) {
        snprintf(args, sizeof args,
                 "train --data '%s' --labels '%s' --layers 2,3,2 --epochs 1 --backend reference "
                 "--quiet --save '%s'%s",
                 img, lab, saved, none ? " --scale none" : "");
        CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
        cumlp_network *net = NULL;
        cumlp_scaler *scaler = NULL;
        CHECK_OK(cumlp_checkpoint_load_with(ctx, saved, 0, &net, NULL, &scaler, NULL));
        float offsets[2] = {-1, -1}, scales[2] = {-1, -1};
        if (scaler) CHECK_OK(cumlp_scaler_get(scaler, offsets, scales, 2));
        if (none)
            CHECK_MSG(!scaler, "--scale none scaled the images");
        else
            CHECK_MSG(scaler && offsets[0] == 0 && scales[0] == 1.0f / 250,
                      "IDX images without --scale: offset %g, scale %g", offsets[0], scales[0]);
        cumlp_scaler_destroy(scaler);
        cumlp_network_destroy(net);
    }
    cumlp_context_destroy(ctx);
    remove(mixed);
    remove(saved);
    remove(img);
    remove(lab);
}

static void test_numerical_failure(void) {
    char reg[700], args[4096];
    tmp(reg, sizeof reg, "reg.csv");
    FILE *f = fopen(reg, "w");
    if (f) {
        for (int i = 0; i < 20; i++)
            fprintf(f, "%d,%d\n", i, 3 * i);
        fclose(f);
    }
    char saved[700];
    tmp(saved, sizeof saved, "nan.safetensors");
    remove(saved);
    snprintf(args, sizeof args,
             "train --data '%s' --task regress --layers 1,1 --optimizer sgd --lr 1e30 "
             "--epochs 50 --batch 1 --backend reference --quiet --save '%s'",
             reg, saved);
    CHECK(run(args) == 3);
    check_one_line_error("train");
    /* where it happened, and what to try */
    CHECK_MSG(contains(err_path, "epoch 1 of 50, batch ") && contains(err_path, "--lr") &&
                  contains(err_path, "--clip-norm"),
              "stderr: %s", slurp(err_path));
    /* the model is saved anyway, with finite parameters (the run overflowed them: the initial
     * ones), and loads */
    snprintf(args, sizeof args, "eval --model '%s' --data '%s' --task regress", saved, reg);
    CHECK_MSG(run(args) == 0, "stderr: %s", slurp(err_path));
    /* with --skip-non-finite the steps are skipped until 10 in a row stop the run */
    snprintf(args, sizeof args,
             "train --data '%s' --task regress --layers 1,1 --optimizer sgd --lr 1e30 "
             "--epochs 50 --batch 1 --backend reference --quiet --skip-non-finite",
             reg);
    CHECK(run(args) == 3);
    CHECK_MSG(contains(err_path, "10 steps in a row skipped"), "stderr: %s", slurp(err_path));
    remove(reg);
    remove(saved);
}

/* Every optimizer, schedule and option of `cumlp train` runs, and bad values are usage errors
 * (exit 1) whose message names them. */
static void test_optimizer_options(void) {
    static const char *const optimizers[] = {"sgd",     "momentum", "nesterov", "adam",
                                             "adamw",   "adamax",   "nadam",    "rmsprop",
                                             "adagrad", "adadelta"};
    static const char *const extras[] = {
        "",
        "--momentum 0.5 --clip-value 1",
        "--weight-decay 1e-3 --schedule multistep --milestones 1,2",
        "--beta1 0.8 --beta2 0.99 --eps 1e-7 --schedule linear --lr-min 1e-4",
        "--weight-decay 0.05 --schedule poly --power 2",
        "--clip-norm 1 --warmup-epochs 2",
        "--momentum-decay 0.01 --schedule cosine",
        "--alpha 0.9 --centered --momentum 0.5",
        "--lr-decay 0.01 --initial-accumulator 0.1",
        "--rho 0.95 --skip-non-finite",
    };
    char args[4096];
    for (int i = 0; i < 10; i++) {
        snprintf(args, sizeof args,
                 "train --data '%s' --csv-header --layers 2,8,3 --epochs 3 --batch 16 "
                 "--backend reference --quiet --optimizer %s %s",
                 csv, optimizers[i], extras[i]);
        CHECK_MSG(run(args) == 0, "%s: stderr: %s", args, slurp(err_path));
    }
    static const struct {
        const char *options, *named;
    } bad[] = {
        {"--optimizer lbfgs", "adadelta"},
        {"--optimizer rmsprop --alpha 1", "alpha"},
        {"--optimizer adadelta --rho -1", "rho"},
        {"--lr-decay nan", "lr-decay"},
        {"--clip-norm -1", "clip_norm"},
        {"--schedule multistep", "milestones"},
        {"--schedule multistep --milestones 3,2", "milestones"},
        {"--milestones x", "milestones"},
        {"--power 0 --schedule poly", "lr_power"},
        {"--warmup-epochs -2", "warmup_epochs"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args,
                 "train --data '%s' --csv-header --layers 2,8,3 --epochs 1 --backend reference "
                 "--quiet %s",
                 csv, bad[i].options);
        CHECK_MSG(run(args) == 1 && contains(err_path, bad[i].named), "%s: stderr: %s",
                  bad[i].options, slurp(err_path));
    }
}

static void test_gradcheck_and_info(void) {
    CHECK(run("gradcheck --backend reference") == 0);
    CHECK(contains(out_path, "layer 1") && contains(out_path, ": ok"));
    CHECK(run("gradcheck --backend reference --loss mse --out-act sigmoid --layers 3,4,4,2") == 0);
    /* an impossible tolerance: the check fails with the numerical exit code */
    CHECK(run("gradcheck --backend reference --tol 1e-300") == 3);
    CHECK(run("info") == 0);
    CHECK(contains(out_path, "reference"));
    CHECK(contains(out_path, "precisions: fp32 tf32\n")); /* the reference backend's */
    if (cumlp_backend_is_built(CUMLP_BACKEND_CUDA) && !contains(out_path, "unavailable"))
        CHECK(contains(out_path, "precisions: fp32 tf32 bf16 fp16"));
}

/* The initial parameters `cumlp bench --save-init` writes are the ones a network of the same
 * widths gets from cumlp_network_create with the bench's options (He uniform, default seed). */
static void check_initial_parameters(const char *path, int n, const int64_t *widths) {
    cumlp_context *ctx = NULL;
    cumlp_context_options co;
    cumlp_context_defaults(&co);
    co.backend = CUMLP_BACKEND_REFERENCE;
    CHECK_OK(cumlp_context_create(&ctx, &co));
    cumlp_network *saved = NULL, *fresh = NULL;
    CHECK_OK(cumlp_checkpoint_load(ctx, path, 0, &saved, NULL));
    int acts[2] = {CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX};
    cumlp_network_options no;
    cumlp_network_defaults(&no);
    no.loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
    no.init = CUMLP_INIT_HE_UNIFORM;
    CHECK_OK(cumlp_network_create(ctx, n, widths, acts, &no, &fresh));
    int64_t count = cumlp_network_num_parameters(fresh);
    CHECK(saved && cumlp_network_num_parameters(saved) == count);
    float *a = calloc((size_t)count, sizeof *a), *b = calloc((size_t)count, sizeof *b);
    if (saved && fresh && a && b && cumlp_network_num_parameters(saved) == count) {
        CHECK_OK(cumlp_network_get_parameters(saved, a, count));
        CHECK_OK(cumlp_network_get_parameters(fresh, b, count));
        CHECK(memcmp(a, b, (size_t)count * sizeof *a) == 0);
        float max_abs = 0;
        for (int64_t i = 0; i < count; i++)
            max_abs = fabsf(a[i]) > max_abs ? fabsf(a[i]) : max_abs;
        CHECK(max_abs > 0); /* not all zero */
    }
    free(a);
    free(b);
    cumlp_network_destroy(saved);
    cumlp_network_destroy(fresh);
    cumlp_context_destroy(ctx);
}

/* `cumlp bench`: a row per configuration, the JSON, the initial checkpoint; bad options. */
static void test_bench(void) {
    char args[4096], json[700], init[700];
    tmp(json, sizeof json, "bench.json");
    snprintf(init, sizeof init, "%s/custom.safetensors", dir); /* named by the bench */
    remove(init);
    snprintf(args, sizeof args,
             "bench --layers 6,5,3 --batch 8 --steps 4 --warmup 1 --backend reference --json '%s' "
             "--save-init '%s'",
             json, dir);
    CHECK_MSG(run(args) == 0, "stderr: %s", slurp(err_path));
    CHECK(contains(out_path, "custom  reference fp32"));
    CHECK(contains(json, "\"tool\": \"cumlp\"") && contains(json, "\"steps\": 4"));
    CHECK(contains(json, "\"flops_per_step\": 2160")); /* 6 * 8 * (6*5 + 5*3) */
    int64_t widths[3] = {6, 5, 3};
    check_initial_parameters(init, 2, widths);
    /* cumlp bench takes the names cumlp train takes, and no others. */
    CHECK_MSG(run("bench --layers 4,3,2 --act leaky_relu --loss bce --batch 4 --steps 1 --warmup 0 "
                  "--backend reference") == 0,
              "stderr: %s", slurp(err_path));
    CHECK(contains(out_path, "custom  reference fp32"));
    CHECK(run("bench --layers 4,3,2 --loss ce --steps 1 --warmup 0 --backend reference") == 0);
    CHECK(run("bench --act leaky-relu") == 1);
    CHECK(run("bench --loss softmax-ce") == 1);
    CHECK(run("bench --act softmax") == 1);
    CHECK(run("bench --steps many") == 1);
    CHECK(run("bench --backend abacus") == 1);
    CHECK(run("bench --precision fp8") == 1 && contains(err_path, "bf16"));
    CHECK(run("bench --math fp32") == 1); /* --precision replaced it */
    /* --optimizer: every rule at PyTorch's defaults, recorded in the JSON */
    snprintf(args, sizeof args,
             "bench --layers 4,3,2 --batch 4 --steps 1 --warmup 0 --backend reference "
             "--optimizer adadelta --json '%s'",
             json);
    CHECK_MSG(run(args) == 0, "stderr: %s", slurp(err_path));
    CHECK(contains(json, "\"optimizer\": \"adadelta\"") && contains(json, "\"learning_rate\": 1,"));
    CHECK(run("bench --optimizer lbfgs") == 1 && contains(err_path, "adadelta"));
    CHECK(run("bench --save-init /nonexistent/dir --layers 4,2 --steps 1 --backend reference") ==
          2);
    CHECK(contains(err_path, "nonexistent"));
    remove(json);
    remove(init);
}

/* Names in the directory of path that start with ".<base>." (temporary files of crash-safe
 * writes). */
static int count_temporaries(const char *path) {
    const char *slash = strrchr(path, '/');
    char d[700], prefix[512];
    snprintf(d, sizeof d, "%.*s", (int)(slash - path), path);
    snprintf(prefix, sizeof prefix, ".%s.", slash + 1);
    DIR *dp = opendir(d);
    int count = 0;
    for (struct dirent *e; dp && (e = readdir(dp)) != NULL;)
        count += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (dp) closedir(dp);
    return count;
}

static int is_fifo(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISFIFO(sb.st_mode);
}

static int is_link(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

/* Every file the command writes (model, log, plot, predictions, bench JSON) is written to a
 * temporary file and renamed: a FIFO (or device) at the path is refused with exit status 2 and
 * left as it was (as root, `--save /dev/null` used to replace the device node; opening a FIFO for
 * the log blocked), a symbolic link is followed and its target replaced, a write that fails
 * halfway leaves the old file and no temporary file, and standard output is named as such. */
static void test_output_files_are_crash_safe(void) {
    char args[4096], fifo[700], pred[700], target[700], link[700], json[700];
    tmp(fifo, sizeof fifo, "out.fifo");
    tmp(pred, sizeof pred, "safe_pred.csv");
    tmp(target, sizeof target, "safe_target.csv");
    tmp(link, sizeof link, "safe_link.csv");
    tmp(json, sizeof json, "safe_bench.json");
    remove(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    snprintf(args, sizeof args,
             "train --data '%s' --csv-header --layers 2,4,3 --epochs 1 --backend reference "
             "--quiet --save '%s'",
             csv, model);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    const char *train = "train --data '%s' --csv-header --layers 2,4,3 --epochs 1 --backend "
                        "reference --quiet %s '%s'";
    const char *outputs[] = {"--save", "--log", "--plot"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, train, csv, outputs[i], fifo);
        CHECK_MSG(run(args) == 2, "%s to a FIFO", outputs[i]);
        CHECK_MSG(contains(err_path, fifo) && contains(err_path, "FIFO"), "%s: %s", outputs[i],
                  slurp(err_path));
        CHECK_MSG(!contains(out_path, "done:"), "%s: refused after training", outputs[i]);
        CHECK(is_fifo(fifo) && count_temporaries(fifo) == 0);
    }
    snprintf(args, sizeof args, "predict --model '%s' --data '%s' --csv-header --out '%s'", model,
             csv, fifo);
    CHECK(run(args) == 2);
    CHECK(contains(err_path, fifo) && is_fifo(fifo));
    snprintf(args, sizeof args,
             "bench --layers 4,3,2 --batch 4 --steps 1 --warmup 0 --backend reference --json '%s'",
             fifo);
    CHECK(run(args) == 2);
    CHECK_MSG(contains(err_path, fifo) && is_fifo(fifo), "%s", slurp(err_path));

    /* a link: its target gets the predictions, the link stays */
    FILE *f = fopen(target, "w");
    if (f) {
        fputs("old\n", f);
        fclose(f);
    }
    remove(link);
    CHECK(symlink(target, link) == 0);
    snprintf(args, sizeof args, "predict --model '%s' --data '%s' --csv-header --out '%s'", model,
             csv, link);
    CHECK_MSG(run(args) == 0, "%s", slurp(err_path));
    CHECK(is_link(link) && count_lines(target) == 151 && count_temporaries(target) == 0);

    /* a write that fails halfway (file size limit of 512 bytes) leaves the old predictions */
    f = fopen(pred, "w");
    if (f) {
        fputs("old\n", f);
        fclose(f);
    }
    snprintf(args, sizeof args, "predict --model '%s' --data '%s' --csv-header --out '%s'", model,
             csv, pred);
    CHECK(run_with("trap '' XFSZ; ulimit -f 1;", args, NULL) == 2);
    CHECK_MSG(contains(err_path, pred), "%s", slurp(err_path));
    CHECK(contains(pred, "old") && count_lines(pred) == 1 && count_temporaries(pred) == 0);
    /* ... and so does bench --json, with a message (it failed silently) */
    snprintf(args, sizeof args,
             "bench --layers 4,3,2 --batch 4 --steps 1 --warmup 0 --backend reference --json '%s'",
             json);
    remove(json);
    CHECK(run_with("trap '' XFSZ; ulimit -f 1;", args, NULL) == 2);
    CHECK_MSG(contains(err_path, json), "%s", slurp(err_path));
    CHECK(access(json, F_OK) != 0 && count_temporaries(json) == 0);

    /* standard output that cannot be written is named as such */
    if (access("/dev/full", W_OK) == 0) {
        snprintf(args, sizeof args, "predict --model '%s' --data '%s' --csv-header", model, csv);
        CHECK(run_with("", args, "/dev/full") == 2);
        CHECK_MSG(contains(err_path, "standard output") && !contains(err_path, "(null)"), "%s",
                  slurp(err_path));
    }
    remove(fifo);
    remove(pred);
    remove(target);
    remove(link);
    remove(json);
}

int main(int argc, char **argv) {
    (void)argc;
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) harness_skip("cannot find this test's directory");
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    snprintf(exe, sizeof exe, "%s/../src/cli/cumlp", self);
    if (access(exe, X_OK) != 0) harness_skip("the cumlp executable is not built");
    (void)argv;
    const char *d = getenv("CUMLP_TEST_TMPDIR");
    snprintf(dir, sizeof dir, "%s", d && *d ? d : "/tmp");
    tmp(out_path, sizeof out_path, "stdout.txt");
    tmp(err_path, sizeof err_path, "stderr.txt");
    tmp(csv, sizeof csv, "blobs.csv");
    tmp(model, sizeof model, "model.safetensors");
    write_csv();
    RUN(test_usage_errors);
    RUN(test_data_errors);
    RUN(test_train_eval_predict);
    RUN(test_log_to_a_device_is_refused);
    RUN(test_output_files_are_crash_safe);
    RUN(test_test_set_classes);
    RUN(test_numerical_failure);
    RUN(test_optimizer_options);
    RUN(test_model_is_one_file);
    RUN(test_predict_without_targets);
    RUN(test_memory_holds_data_once);
    RUN(test_friction);
    RUN(test_output_layer_and_loss_fit);
    RUN(test_exit_codes_of_every_error_class);
    RUN(test_gradcheck_and_info);
    RUN(test_bench);
    RUN(test_cuda_backend_commands);
    remove(csv);
    remove(model);
    char scale[800];
    snprintf(scale, sizeof scale, "%s.scale", model);
    remove(scale);
    remove(out_path);
    remove(err_path);
    return harness_finish();
}
