/* ctest-labels: mpi */
/*
 * test_mpi_cli.c - `cumlp train` under mpirun (tests/mpi/tests.cmake runs this test itself, which
 * starts mpirun): on 2 and 3 ranks it trains the model one process trains on the same global
 * batches (the saved parameters within 1e-5 of each tensor's largest value, the log's losses and
 * accuracies the same), rank 0 alone prints and writes the files; a bad file on one rank, or
 * ranks given different options, make every rank exit with the error (never a hang).
 * `test_mpi_cli BACKEND TRANSPORT`; skipped (77) without MPI.
 */
#define _POSIX_C_SOURCE 200809L
#include "cumlp.h"
#include "harness.h"
#include "testutil.h"

#if !defined(CUMLP_TEST_MPIEXEC) || !defined(CUMLP_TEST_CLI)

int main(void) {
    harness_skip("cumlp is built without MPI");
    return 77;
}

#else

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *backend, *transport;
static char dir[512];

static void file(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/test_mpi_cli_%s", dir, name);
}

/* `cumlp train` on the data file `data`, with the options every run shares and `args`. */
static void command(char *buf, size_t size, const char *data, const char *args) {
    snprintf(buf, size,
             "'%s' train --data '%s/test_mpi_cli_%s' --layers 4,8,3 --backend %s --threads 1 "
             "--transport %s --epochs 3 --batch 16 --val-split 0.2 --optimizer adam --lr 0.01 %s",
             CUMLP_TEST_CLI, dir, data, backend, transport, args);
}

/* Runs `launcher cumlp train ... args` (see command) with stdout and stderr in <tag>.out and
 * <tag>.err; returns the exit status. */
static int train(const char *launcher, const char *tag, const char *args) {
    char out[700], err[700], train_cmd[2048], cmd[8192];
    file(out, sizeof out, tag);
    strcat(out, ".out");
    file(err, sizeof err, tag);
    strcat(err, ".err");
    command(train_cmd, sizeof train_cmd, "data.csv", args);
    /* a hang (a rank left waiting) fails the check in two minutes */
    snprintf(cmd, sizeof cmd, "timeout -k 10 120 %s %s >'%s' 2>'%s'", launcher, train_cmd, out,
             err);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *tag, const char *suffix) {
    char path[700];
    file(path, sizeof path, tag);
    strcat(path, suffix);
    FILE *f = fopen(path, "rb");
    static char buf[4][1 << 14];
    static int next;
    char *b = buf[next++ % 4];
    b[0] = '\0';
    if (!f) return b;
    size_t n = fread(b, 1, sizeof buf[0] - 1, f);
    fclose(f);
    b[n] = '\0';
    return b;
}

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* 200 samples of 4 features, 3 classes. */
static void write_data(void) {
    char path[700];
    file(path, sizeof path, "data.csv");
    FILE *f = fopen(path, "w");
    test_rng r = {3};
    for (int i = 0; i < 200; i++) {
        int c = (int)test_rng_below(&r, 3);
        for (int k = 0; k < 4; k++)
            fprintf(f, "%.6f,", test_rng_uniform(&r, -1, 1) + (k == c ? 1.5 : 0.0));
        fprintf(f, "%d\n", c);
    }
    fclose(f);
    file(path, sizeof path, "bad.csv");
    f = fopen(path, "w");
    fputs("0.5,0.25,1,2,0\n0.5,x,1,2,1\n", f);
    fclose(f);
}

/* The parameters of a saved model, in double. */
static double *saved_parameters(const char *name, cumlp_network **net) {
    char path[700];
    file(path, sizeof path, name);
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_REFERENCE;
    cumlp_context *ctx = NULL;
    CHECK_OK(cumlp_context_create(&ctx, &o));
    *net = NULL;
    CHECK_OK(cumlp_checkpoint_load(ctx, path, 0, net, NULL));
    if (!*net) return NULL;
    int64_t n = cumlp_network_num_parameters(*net);
    double *p = malloc((size_t)n * sizeof *p);
    CHECK_OK(cumlp_network_get_parameters_f64(*net, p, n));
    return p;
}

static void free_saved(cumlp_network *net, double *p) {
    cumlp_context *ctx = cumlp_network_context(net);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
    free(p);
}

/* Each tensor of the model saved as `got` within 1e-5 of the largest value of want's. */
static void check_models(const char *got_name, const char *want_name) {
    cumlp_network *got_net, *want_net;
    double *got = saved_parameters(got_name, &got_net);
    double *want = saved_parameters(want_name, &want_net);
    if (!got || !want) return;
    size_t at = 0;
    for (int l = 0; l < cumlp_network_num_layers(want_net); l++) {
        int64_t fan_in = cumlp_network_width(want_net, l);
        int64_t fan_out = cumlp_network_width(want_net, l + 1);
        const int64_t sizes[2] = {fan_in * fan_out, fan_out};
        for (int part = 0; part < 2; part++) {
            double largest = 0, diff = 0;
            for (int64_t i = 0; i < sizes[part]; i++, at++) {
                largest = fmax(largest, fabs(want[at]));
                diff = fmax(diff, fabs(got[at] - want[at]));
            }
            CHECK_MSG(diff <= 1e-5 * largest, "%s: layer %d %s: %.3g off, largest %.3g", got_name,
                      l, part ? "b" : "W", diff, largest);
        }
    }
    free_saved(got_net, got);
    free_saved(want_net, want);
}

/* The log's rows: train loss, train accuracy, validation loss and accuracy within rounding. */
static void check_logs(const char *got_name, const char *want_name) {
    const char *got = slurp(got_name, ""), *want = slurp(want_name, "");
    CHECK_MSG(count(got, "\n") == 4 && count(want, "\n") == 4, "logs:\n%s\n%s", got, want);
    got = strchr(got, '\n');
    want = strchr(want, '\n');
    for (int row = 0; got && want && row < 3; row++) {
        double g[7], w[7];
        int ng = sscanf(got + 1, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &g[0], &g[1], &g[2], &g[3], &g[4],
                        &g[5], &g[6]);
        int nw = sscanf(want + 1, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &w[0], &w[1], &w[2], &w[3], &w[4],
                        &w[5], &w[6]);
        CHECK(ng == 7 && nw == 7);
        for (int k = 2; k < 7; k++)
            CHECK_MSG(fabs(g[k] - w[k]) <= 1e-5 * fabs(w[k]) + 1e-12,
                      "%s row %d column %d: %.9g "
                      "vs %.9g",
                      got_name, row + 1, k + 1, g[k], w[k]);
        got = strchr(got + 1, '\n');
        want = strchr(want + 1, '\n');
    }
}

/* MPI's launcher for `ranks` processes of the command that follows. */
static void launcher(char *buf, size_t size, int ranks) {
    snprintf(buf, size, "%s %s %d", CUMLP_TEST_MPIEXEC, CUMLP_TEST_MPIEXEC_NP, ranks);
}

static void test_ranks_train_one_process_model(void) {
    CHECK(train("", "one", "--save test_mpi_cli_one.st --log test_mpi_cli_one.csv") == 0);
    for (int ranks = 2; ranks <= 3; ranks++) {
        char mpirun[600], tag[16], args[256];
        launcher(mpirun, sizeof mpirun, ranks);
        snprintf(tag, sizeof tag, "np%d", ranks);
        snprintf(args, sizeof args,
                 "--save test_mpi_cli_np%d.st --log test_mpi_cli_np%d.csv --test-data "
                 "test_mpi_cli_data.csv",
                 ranks, ranks);
        CHECK_MSG(train(mpirun, tag, args) == 0, "%s", slurp(tag, ".err"));
        char st[32], csv[32];
        snprintf(st, sizeof st, "np%d.st", ranks);
        snprintf(csv, sizeof csv, "np%d.csv", ranks);
        check_models(st, "one.st");
        check_logs(csv, "one.csv");
        /* rank 0 alone prints */
        const char *out = slurp(tag, ".out");
        char line[64];
        snprintf(line, sizeof line, "data parallel: %d ranks", ranks);
        CHECK_MSG(count(out, line) == 1 && count(out, "done: 3 epochs") == 1 &&
                      count(out, "epoch 3/3") == 1 && count(out, "test accuracy") == 1,
                  "stdout:\n%s", out);
        CHECK_MSG(count(slurp(tag, ".err"), "cudasim:") == 0, "%s", slurp(tag, ".err"));
    }
}

/* --progress: rank 0 draws the bar, and every rank asks cumlp_fit for rank 0's callbacks (the ranks
 * check that their fit options agree). */
static void test_progress_under_mpirun(void) {
    char mpirun[600];
    launcher(mpirun, sizeof mpirun, 2);
    CHECK_MSG(train(mpirun, "progress", "--progress") == 0, "%s", slurp("progress", ".err"));
    CHECK_MSG(count(slurp("progress", ".err"), "epoch 1/3") >= 1, "%s", slurp("progress", ".err"));
}

/* Two ranks started as `first : <the shared command>` (MPI's multiple-program launch). */
static void two_programs(char *buf, size_t size, const char *first) {
    char one[600];
    launcher(one, sizeof one, 1);
    snprintf(buf, size, "%s %s : %s 1", one, first, CUMLP_TEST_MPIEXEC_NP);
}

static void test_bad_file_on_one_rank(void) {
    char first[2048], mpirun[4096];
    /* rank 0 is given a bad --data: both ranks exit with the data error, printed once */
    command(first, sizeof first, "bad.csv", "");
    two_programs(mpirun, sizeof mpirun, first);
    CHECK(train(mpirun, "bad", "") == 2);
    const char *err = slurp("bad", ".err");
    CHECK_MSG(count(err, "test_mpi_cli_bad.csv") == 1 && count(err, "is not a number") == 1, "%s",
              err);
    /* ranks given different options: cumlp_fit refuses on every rank, rank 0 prints it */
    command(first, sizeof first, "data.csv", "--epochs 2");
    two_programs(mpirun, sizeof mpirun, first);
    CHECK(train(mpirun, "options", "") == 1);
    err = slurp("options", ".err");
    CHECK_MSG(count(err, "the ranks disagree on the fit options") == 1, "%s", err);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_mpi_cli BACKEND TRANSPORT\n");
        return 2;
    }
    backend = argv[1];
    transport = argv[2];
    const char *tmp = getenv("CUMLP_TEST_TMPDIR");
    snprintf(dir, sizeof dir, "%s", tmp ? tmp : ".");
    if (chdir(dir) != 0) return 2;
    write_data();
    RUN(test_ranks_train_one_process_model);
    RUN(test_progress_under_mpirun);
    RUN(test_bad_file_on_one_rank);
    return harness_finish();
}

#endif
