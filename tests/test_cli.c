/* ctest-labels: unit cuda */
/* test_cli.c - the `cumlp` command's exit codes and outputs: usage errors (1), data and file
 * errors (2), numerical failures (3), and working train / eval / predict / gradcheck / info runs
 * on a small CSV dataset the test writes. Runs the cumlp executable of the same build tree
 * (../src/cli/cumlp next to this test); skipped when it is not built. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "testutil.h"

#include "cumlp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char exe[1100], dir[512], out_path[700], err_path[700];

static void tmp(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/test_cli_%s", dir, name);
}

/* Runs `cumlp <args>` with stdout and stderr in files; returns its exit status. */
static int run(const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", exe, args, out_path, err_path);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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
    CHECK(contains(scale, "cumlp-scaler 1 2"));

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
                 "--scale standard --val-split 0.2 --backend cuda --precision %s --save '%s' "
                 "--seed 3 --quiet",
                 csv, sixteen[p], model);
        CHECK_MSG(run(args) == 0, "%s: stderr: %s", sixteen[p], slurp(err_path));
        const char *evals[2] = {"--backend reference", "--backend cuda --precision"};
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
    CHECK(run("gradcheck --backend cuda --precision bf16") == 0);
    remove(pred);
}

/* A log that cannot be written (a full disk: /dev/full) fails the run after training, with the
 * model still saved. */
static void test_log_write_error(void) {
    if (access("/dev/full", W_OK) != 0) {
        printf("  (no /dev/full here: log write error not tested)\n");
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
    CHECK(contains(err_path, "/dev/full"));
    CHECK(access(model, R_OK) == 0);
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
    RUN(test_log_write_error);
    RUN(test_test_set_classes);
    RUN(test_numerical_failure);
    RUN(test_optimizer_options);
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
