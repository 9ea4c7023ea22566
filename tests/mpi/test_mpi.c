/* ctest-labels: mpi */
/*
 * test_mpi.c - data-parallel training over MPI, run under mpirun with 2 and 3 ranks (3: uneven
 * shards) by tests/mpi/tests.cmake, once per backend and transport: `test_mpi BACKEND TRANSPORT`
 * (the reference and cpu backends over MPI; in the simulator build the cuda backend over MPI
 * through host memory, over MPI on device pointers, and over NCCL).
 *
 * After N steps, or a cumlp_fit, the parameters match one process trained on the same global
 * batches within 1e-5 of each tensor's largest value, and the replicas are bit-identical to each
 * other. A rank that fails (a bad file, a bad batch, options or data that differ, NaN in its shard,
 * an allocation, an NCCL call) makes every rank return the same error instead of hanging.
 * Built without MPI, it is skipped (exit 77).
 */
#include "cumlp.h"
#include "harness.h"
#include "testutil.h"

#ifndef CUMLP_TEST_HAVE_MPI

int main(void) {
    harness_skip("cumlp is built without MPI");
    return 77;
}

#else

#include "cumlp_mpi.h"

#include <mpi.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CUMLP_TEST_CUDA_SIM
#include "cudasim_control.h"
#endif

static int rank, ranks, last;
static int backend, transport;
static cumlp_context *ctx;

enum { N_IN = 5, N_HIDDEN = 6, N_OUT = 4 };

static cumlp_network *make_net(uint64_t seed, int64_t hidden) {
    const int64_t widths[] = {N_IN, hidden, N_OUT};
    const int acts[] = {CUMLP_ACT_TANH, CUMLP_ACT_SOFTMAX};
    cumlp_network_options o;
    cumlp_network_defaults(&o);
    o.loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
    o.bias_init = CUMLP_BIAS_DRAWN;
    o.seed = seed;
    cumlp_network *net = NULL;
    CHECK_OK(cumlp_network_create(ctx, 2, widths, acts, &o, &net));
    return net;
}

/* Adam with decay and clipping: stateful, and its clipping decision uses the global norm. */
static cumlp_optimizer *make_opt(cumlp_network *net) {
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults_for(CUMLP_OPT_ADAM, &o);
    o.learning_rate = 0.02;
    o.weight_decay = 1e-3;
    o.clip_norm = 0.4;
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    return opt;
}

/* The network's parameters in double (exact on every backend). */
static double *parameters(const cumlp_network *net) {
    int64_t n = cumlp_network_num_parameters(net);
    double *p = malloc((size_t)n * sizeof *p);
    CHECK_OK(cumlp_network_get_parameters_f64(net, p, n));
    return p;
}

/* Each tensor (W, b of each layer) of got within 1e-5 of want's largest |value|. */
static void check_close(const cumlp_network *net, const double *got, const double *want,
                        const char *what) {
    size_t at = 0;
    for (int l = 0; l < cumlp_network_num_layers(net); l++) {
        int64_t fan_in = cumlp_network_width(net, l), fan_out = cumlp_network_width(net, l + 1);
        const int64_t sizes[2] = {fan_in * fan_out, fan_out};
        for (int part = 0; part < 2; part++) {
            double largest = 0, diff = 0;
            for (int64_t i = 0; i < sizes[part]; i++, at++) {
                largest = fmax(largest, fabs(want[at]));
                double d = fabs(got[at] - want[at]);
                diff = d > diff || isnan(d) ? d : diff;
            }
            CHECK_MSG(diff <= 1e-5 * largest, "%s: layer %d %s: %.3g off, largest %.3g", what, l,
                      part ? "b" : "W", diff, largest);
        }
    }
}

/* Collective: every rank's parameters are bit-identical to rank 0's. */
static void check_replicas(const cumlp_network *net, const char *what) {
    int64_t n = cumlp_network_num_parameters(net);
    double *mine = parameters(net);
    double *all = rank == 0 ? malloc((size_t)(n * ranks) * sizeof *all) : NULL;
    MPI_Gather(mine, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    for (int r = 1; rank == 0 && r < ranks; r++)
        CHECK_MSG(memcmp(all, all + r * n, (size_t)n * sizeof *all) == 0,
                  "%s: rank %d's replica differs from rank 0's", what, r);
    free(mine);
    free(all);
}

/* a's parameters are b's bit for bit. */
static void check_same_parameters(const cumlp_network *a, const cumlp_network *b,
                                  const char *what) {
    double *got = parameters(a), *want = parameters(b);
    CHECK_MSG(memcmp(got, want, (size_t)cumlp_network_num_parameters(a) * sizeof *got) == 0,
              "rank %d: %s: parameters differ", rank, what);
    free(got);
    free(want);
}

static void check_message(const char *needle) {
    const char *message = cumlp_last_error(ctx);
    CHECK_MSG(strstr(message, needle) != NULL, "rank %d: \"%s\" lacks \"%s\"", rank, message,
              needle);
}

/* The message of a failure on the last rank, as another rank sees it. */
static void check_from_last_rank(void) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "rank %d of %d: ", last, ranks);
    if (rank != last) check_message(prefix);
}

static void join(cumlp_network *net) {
    CHECK_OK(cumlp_network_set_comm(net, MPI_COMM_WORLD, transport));
}

/* ---- joining ----------------------------------------------------------------------------------
 */

static void test_join(void) {
    cumlp_network *net = make_net(100 + (uint64_t)rank, N_HIDDEN);
    join(net);
    CHECK(cumlp_network_num_ranks(net) == ranks);
    CHECK(cumlp_network_rank(net) == rank);
    int expected = transport, joined = cumlp_network_transport(net);
    if (backend != CUMLP_BACKEND_CUDA) expected = CUMLP_TRANSPORT_MPI;
    if (transport == CUMLP_TRANSPORT_AUTO)
        expected = backend == CUMLP_BACKEND_CUDA ? CUMLP_TRANSPORT_NCCL : CUMLP_TRANSPORT_MPI;
    /* mpi on cuda: through device memory where MPI is CUDA-aware, else through host memory */
    if (backend == CUMLP_BACKEND_CUDA && expected == CUMLP_TRANSPORT_MPI &&
        (joined == CUMLP_TRANSPORT_MPI_HOST || joined == CUMLP_TRANSPORT_MPI_DEVICE))
        expected = joined;
    CHECK_MSG(joined == expected, "transport %s, expected %s", cumlp_transport_name(joined),
              cumlp_transport_name(expected));
    /* every replica starts from rank 0's parameters */
    cumlp_network *rank0 = make_net(100, N_HIDDEN);
    double *got = parameters(net), *want = parameters(rank0);
    CHECK(memcmp(got, want, (size_t)cumlp_network_num_parameters(net) * sizeof *got) == 0);
    check_replicas(net, "joined");
    CHECK_OK(cumlp_network_set_comm(net, MPI_COMM_NULL, transport));
    CHECK(cumlp_network_num_ranks(net) == 1 && cumlp_network_rank(net) == 0);
    CHECK(cumlp_network_transport(net) == -1);
    free(got);
    free(want);
    cumlp_network_destroy(rank0);
    cumlp_network_destroy(net);
}

static void test_join_errors(void) {
    cumlp_network *net = make_net(3, N_HIDDEN);
    if (backend != CUMLP_BACKEND_CUDA) {
        CHECK_STATUS(cumlp_network_set_comm(net, MPI_COMM_WORLD, CUMLP_TRANSPORT_NCCL),
                     CUMLP_ERROR_NOT_SUPPORTED);
        check_message("needs the cuda backend");
    }
    CHECK_STATUS(cumlp_network_set_comm(net, MPI_COMM_WORLD, rank == last ? 99 : transport),
                 CUMLP_ERROR_INVALID_VALUE);
    check_message("unknown transport 99");
    check_from_last_rank();
    CHECK(cumlp_network_num_ranks(net) == 1);
    cumlp_network_destroy(net);
    /* replicas of different architectures */
    net = make_net(3, rank == last ? N_HIDDEN + 1 : N_HIDDEN);
    CHECK_STATUS(cumlp_network_set_comm(net, MPI_COMM_WORLD, transport), CUMLP_ERROR_INVALID_VALUE);
    check_message("the ranks disagree on the network's architecture");
    CHECK(cumlp_network_num_ranks(net) == 1);
    cumlp_network_destroy(net);
}

/* ---- training steps against one process ---------------------------------------------------------
 */

enum { GLOBAL = 13, STEPS = 6 };

/* Global batch `step`: GLOBAL samples, the same on every rank. */
static void global_batch(int step, float *x, float *y) {
    test_rng r = {1000 + (uint64_t)step};
    test_fill_uniform(&r, x, N_IN * GLOBAL, -1, 1);
    test_fill_one_hot(&r, y, N_OUT, GLOBAL);
}

/* Trains net for STEPS steps on columns [first, first + cols) of each global batch. */
static void train_steps(cumlp_network *net, cumlp_optimizer *opt, int64_t first, int64_t cols,
                        double *losses) {
    float x[N_IN * GLOBAL], y[N_OUT * GLOBAL];
    for (int s = 0; s < STEPS; s++) {
        global_batch(s, x, y);
        cumlp_tensor *X = test_tensor_from(ctx, x + first * N_IN, N_IN, cols);
        cumlp_tensor *Y = test_tensor_from(ctx, y + first * N_OUT, N_OUT, cols);
        CHECK_OK(cumlp_train_step(net, opt, X, Y, &losses[s]));
        cumlp_tensor_destroy(X);
        cumlp_tensor_destroy(Y);
    }
}

static void test_steps_match_one_process(void) {
    cumlp_network *net = make_net(7 + (uint64_t)rank, N_HIDDEN);
    join(net);
    cumlp_optimizer *opt = make_opt(net);
    /* uneven shards: rank r takes [r G / P, (r + 1) G / P) */
    int64_t first = (int64_t)GLOBAL * rank / ranks, end = (int64_t)GLOBAL * (rank + 1) / ranks;
    double losses[STEPS];
    train_steps(net, opt, first, end - first, losses);
    check_replicas(net, "after the steps");
    if (rank == 0) {
        cumlp_network *one = make_net(7, N_HIDDEN);
        cumlp_optimizer *one_opt = make_opt(one);
        double one_losses[STEPS];
        train_steps(one, one_opt, 0, GLOBAL, one_losses);
        for (int s = 0; s < STEPS; s++)
            CHECK_NEAR(losses[s], one_losses[s], 1e-5 * fabs(one_losses[s]));
        double *got = parameters(net), *want = parameters(one);
        check_close(net, got, want, "steps");
        CHECK(cumlp_optimizer_step_count(opt) == STEPS);
        CHECK_NEAR(cumlp_optimizer_gradient_norm(opt), cumlp_optimizer_gradient_norm(one_opt),
                   1e-5 * cumlp_optimizer_gradient_norm(one_opt));
        free(got);
        free(want);
        cumlp_optimizer_destroy(one_opt);
        cumlp_network_destroy(one);
    }
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
}

/* cumlp_train_step_async with a communicator: the collective steps run at once, the same as
 * cumlp_train_step's, and the summary has the global batches' mean loss on every rank; a bad
 * argument fails on every rank (it used to crash one without an optimizer). */
static void test_queued_steps(void) {
    cumlp_network *net = make_net(7 + (uint64_t)rank, N_HIDDEN), *twin = make_net(7, N_HIDDEN);
    join(net);
    join(twin);
    cumlp_optimizer *opt = make_opt(net), *twin_opt = make_opt(twin);
    int64_t first = (int64_t)GLOBAL * rank / ranks, end = (int64_t)GLOBAL * (rank + 1) / ranks;
    double losses[STEPS], sum = 0;
    train_steps(twin, twin_opt, first, end - first, losses);
    float x[N_IN * GLOBAL], y[N_OUT * GLOBAL];
    for (int s = 0; s < STEPS; s++) {
        global_batch(s, x, y);
        cumlp_tensor *X = test_tensor_from(ctx, x + first * N_IN, N_IN, end - first);
        cumlp_tensor *Y = test_tensor_from(ctx, y + first * N_OUT, N_OUT, end - first);
        CHECK_OK(cumlp_train_step_async(net, opt, X, Y));
        if (s == 0) CHECK(cumlp_train_step_async(net, NULL, X, Y) == CUMLP_ERROR_INVALID_VALUE);
        cumlp_tensor_destroy(X);
        cumlp_tensor_destroy(Y);
        sum += losses[s];
    }
    cumlp_step_summary summary;
    CHECK_OK(cumlp_optimizer_sync(opt, &summary));
    CHECK_MSG(summary.steps == STEPS && summary.taken == STEPS &&
                  summary.loss_samples == (int64_t)STEPS * GLOBAL,
              "rank %d: %lld steps, %lld taken, %lld samples", rank, (long long)summary.steps,
              (long long)summary.taken, (long long)summary.loss_samples);
    CHECK_NEAR(summary.loss, sum / STEPS, 1e-12 * fabs(sum / STEPS));
    check_same_parameters(net, twin, "queued steps against waited-for ones");
    cumlp_optimizer_destroy(opt);
    cumlp_optimizer_destroy(twin_opt);
    cumlp_network_destroy(net);
    cumlp_network_destroy(twin);
}

/* The network's gradients in double. */
static double *gradients(const cumlp_network *net) {
    int64_t n = cumlp_network_num_parameters(net);
    double *g = malloc((size_t)n * sizeof *g);
    CHECK_OK(cumlp_network_get_gradients_f64(net, g, n));
    return g;
}

/* cumlp_loss_backward alone: every rank holds the global batch's mean gradient and loss. */
static void test_loss_backward_gives_global_gradients(void) {
    cumlp_network *net = make_net(8, N_HIDDEN);
    join(net);
    float x[N_IN * GLOBAL], y[N_OUT * GLOBAL];
    global_batch(0, x, y);
    int64_t first = (int64_t)GLOBAL * rank / ranks, end = (int64_t)GLOBAL * (rank + 1) / ranks;
    cumlp_tensor *X = test_tensor_from(ctx, x + first * N_IN, N_IN, end - first);
    cumlp_tensor *Y = test_tensor_from(ctx, y + first * N_OUT, N_OUT, end - first);
    double loss = 0;
    CHECK_OK(cumlp_loss_backward(net, X, Y, &loss));
    double *got = gradients(net);
    if (rank == 0) {
        cumlp_network *one = make_net(8, N_HIDDEN);
        cumlp_tensor *X1 = test_tensor_from(ctx, x, N_IN, GLOBAL);
        cumlp_tensor *Y1 = test_tensor_from(ctx, y, N_OUT, GLOBAL);
        double one_loss = 0;
        CHECK_OK(cumlp_loss_backward(one, X1, Y1, &one_loss));
        CHECK_NEAR(loss, one_loss, 1e-5 * one_loss);
        double *want = gradients(one);
        check_close(net, got, want, "gradients");
        free(want);
        cumlp_tensor_destroy(X1);
        cumlp_tensor_destroy(Y1);
        cumlp_network_destroy(one);
    }
    /* without the loss, and destroyed right after: NCCL's all-reduce is still queued */
    CHECK_OK(cumlp_loss_backward(net, X, Y, NULL));
    cumlp_network_destroy(net);
    free(got);
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
}

/* ---- cumlp_fit and cumlp_evaluate against one process ------------------------------------------
 */

/* n samples of N_IN features, N_OUT classes drawn from seed (the same on every rank). */
static cumlp_dataset *dataset(int64_t n, uint64_t seed) {
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_create(ctx, N_IN, N_OUT, n, N_OUT, &ds));
    test_rng r = {seed};
    float *x = cumlp_dataset_features(ds);
    int32_t labels[64];
    for (int64_t i = 0; i < n; i++) {
        labels[i] = (int32_t)test_rng_below(&r, N_OUT);
        for (int k = 0; k < N_IN; k++)
            x[i * N_IN + k] = (float)test_rng_uniform(&r, -1, 1) + (k == labels[i] ? 1.5f : 0.0f);
    }
    CHECK_OK(cumlp_dataset_set_labels(ds, labels, n));
    return ds;
}

typedef struct progress_log {
    int calls, epochs, stop_at_epoch;
    double last_train_accuracy, last_validation_accuracy;
} progress_log;

static int on_progress(const cumlp_fit_progress *p, void *user) {
    progress_log *log = user;
    log->calls++;
    if (p->end_of_epoch) {
        log->epochs++;
        log->last_train_accuracy = p->train_accuracy;
        log->last_validation_accuracy = p->validation_accuracy;
    }
    return p->end_of_epoch && p->epoch == log->stop_at_epoch;
}

static void fit_options(cumlp_fit_options *o, progress_log *log) {
    cumlp_fit_defaults(o);
    o->epochs = 3;
    o->batch_size = 16; /* 33 samples: batches of 16, 16 and 1, whose shards are mostly empty */
    o->seed = 5;
    o->schedule = CUMLP_LR_COSINE;
    o->restore_best = 1;
    o->callback = on_progress;
    o->user_data = log;
    o->callback_every = 1;
}

static void check_results(const cumlp_fit_result *got, const cumlp_fit_result *want) {
    CHECK(got->epochs_run == want->epochs_run && got->steps == want->steps);
    CHECK(got->best_epoch == want->best_epoch && got->stop_reason == want->stop_reason);
    CHECK_NEAR(got->train_loss, want->train_loss, 1e-5 * want->train_loss);
    CHECK_NEAR(got->validation_loss, want->validation_loss, 1e-5 * want->validation_loss);
    /* one sample's output may tip the other way in rounding */
    CHECK_NEAR(got->train_accuracy, want->train_accuracy, 1.0 / 33 + 1e-12);
    CHECK_NEAR(got->validation_accuracy, want->validation_accuracy, 1.0 / 17 + 1e-12);
}

/* cumlp_fit in FP16 on one sample: its one column is the last rank's, every other shard is empty,
 * and those ranks, which never ran a pass, must still divide out the loss scale that the last
 * rank's gradients carry. The last rank ran a forward pass before joining, so it holds a 16-bit
 * copy of its own weights, which the joining's broadcast of rank 0's parameters must replace; and
 * rank 0's loss scaler is every rank's after joining. The all-reduce adds zeros to the last rank's
 * gradients: the replicas end as one process. */
static void test_fp16_fit_with_empty_shards(void) {
    CHECK_OK(cumlp_context_set_precision(ctx, CUMLP_PRECISION_FP16));
    const cumlp_loss_scaler scaler = {1024, 2, 0.5, 2000, 5, 0};
    cumlp_network *net = make_net(30 + (uint64_t)rank, N_HIDDEN);
    cumlp_dataset *train = dataset(1, 31);
    if (rank == last) {
        cumlp_tensor *X = test_tensor_from(ctx, cumlp_dataset_features(train), N_IN, 1);
        cumlp_tensor *out = NULL;
        CHECK_OK(cumlp_tensor_create(ctx, N_OUT, 1, &out));
        CHECK_OK(cumlp_forward(net, X, out));
        cumlp_tensor_destroy(X);
        cumlp_tensor_destroy(out);
    }
    if (rank == 0) CHECK_OK(cumlp_network_set_loss_scaler(net, &scaler));
    join(net);
    cumlp_loss_scaler got;
    CHECK_OK(cumlp_network_get_loss_scaler(net, &got));
    CHECK(memcmp(&got, &scaler, sizeof got) == 0);
    cumlp_optimizer *opt = make_opt(net);
    cumlp_fit_options o;
    cumlp_fit_defaults(&o);
    o.epochs = 3;
    o.batch_size = 4;
    cumlp_fit_result r;
    CHECK_OK(cumlp_fit(net, opt, train, NULL, &o, &r));
    CHECK(r.steps == 3);
    check_replicas(net, "after cumlp_fit in fp16");
    if (rank == 0) {
        cumlp_network *one = make_net(30, N_HIDDEN);
        CHECK_OK(cumlp_network_set_loss_scaler(one, &scaler));
        cumlp_optimizer *one_opt = make_opt(one);
        cumlp_fit_result one_r;
        CHECK_OK(cumlp_fit(one, one_opt, train, NULL, &o, &one_r));
        check_same_parameters(net, one, "fp16 fit against one process");
        cumlp_optimizer_destroy(one_opt);
        cumlp_network_destroy(one);
    }
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_dataset_destroy(train);
    CHECK_OK(cumlp_context_set_precision(ctx, CUMLP_PRECISION_FP32));
}

static void test_fit_matches_one_process(void) {
    cumlp_dataset *train = dataset(33, 11), *val = dataset(17, 12);
    cumlp_network *net = make_net(9, N_HIDDEN);
    join(net);
    cumlp_optimizer *opt = make_opt(net);
    cumlp_fit_options o;
    progress_log log = {0, 0, -1, 0, 0};
    fit_options(&o, &log);
    cumlp_fit_result r;
    CHECK_OK(cumlp_fit(net, opt, train, val, &o, &r));
    CHECK(log.epochs == 3 && log.calls == 3 * 2 + 3); /* two mid-epoch calls and the epoch's */
    CHECK(log.last_train_accuracy == r.train_accuracy);
    check_replicas(net, "after cumlp_fit");
    cumlp_eval_result e;
    CHECK_OK(cumlp_evaluate(net, val, 5, &e));
    if (rank == 0) {
        cumlp_network *one = make_net(9, N_HIDDEN);
        cumlp_optimizer *one_opt = make_opt(one);
        progress_log one_log = {0, 0, -1, 0, 0};
        fit_options(&o, &one_log);
        cumlp_fit_result one_r;
        CHECK_OK(cumlp_fit(one, one_opt, train, val, &o, &one_r));
        check_results(&r, &one_r);
        double *got = parameters(net), *want = parameters(one);
        check_close(net, got, want, "cumlp_fit");
        cumlp_eval_result one_e;
        CHECK_OK(cumlp_evaluate(one, val, 5, &one_e));
        CHECK_NEAR(e.loss, one_e.loss, 1e-5 * one_e.loss);
        CHECK_NEAR(e.mse, one_e.mse, 1e-5 * one_e.mse);
        CHECK_NEAR(e.accuracy, one_e.accuracy, 1.0 / 17 + 1e-12);
        free(got);
        free(want);
        cumlp_optimizer_destroy(one_opt);
        cumlp_network_destroy(one);
    }
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_dataset_destroy(train);
    cumlp_dataset_destroy(val);
}

/* A callback that asks to stop on the last rank alone stops every rank. */
static void test_callback_stops_every_rank(void) {
    cumlp_dataset *train = dataset(33, 11);
    cumlp_network *net = make_net(9, N_HIDDEN);
    join(net);
    cumlp_optimizer *opt = make_opt(net);
    cumlp_fit_options o;
    progress_log log = {0, 0, rank == last ? 1 : -1, 0, 0};
    fit_options(&o, &log);
    cumlp_fit_result r;
    CHECK_OK(cumlp_fit(net, opt, train, NULL, &o, &r));
    CHECK(r.stop_reason == CUMLP_STOP_CALLBACK && r.epochs_run == 2 && log.epochs == 2);
    check_replicas(net, "after a stop");
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_dataset_destroy(train);
}

/* ---- a rank that fails ----------------------------------------------------------------------- */

static void path(char *buf, size_t size, const char *name) {
    const char *dir = getenv("CUMLP_TEST_TMPDIR");
    snprintf(buf, size, "%s/test_mpi_%d_%s", dir ? dir : ".", ranks, name);
}

/* A bad file on the last rank: cumlp_mpi_agree gives every rank its error. */
static void test_bad_file_on_one_rank(void) {
    char good[512], bad[512];
    path(good, sizeof good, "good.csv");
    path(bad, sizeof bad, "bad.csv");
    if (rank == 0) {
        FILE *f = fopen(good, "w");
        fputs("1,2,0\n3,4,1\n", f);
        fclose(f);
        f = fopen(bad, "w");
        fputs("1,2,0\n3,x,1\n", f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    cumlp_dataset *ds = NULL;
    cumlp_status st = cumlp_dataset_read_csv(ctx, rank == last ? bad : good, NULL, &ds);
    CHECK_STATUS(cumlp_mpi_agree(MPI_COMM_WORLD, st, ctx), CUMLP_ERROR_FORMAT);
    check_message("bad.csv");
    check_from_last_rank();
    /* the Fortran handle's variant, with every rank well */
    CHECK_OK(cumlp_mpi_agree_f(MPI_Comm_c2f(MPI_COMM_WORLD), CUMLP_SUCCESS, ctx));
    cumlp_dataset_destroy(ds);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) remove(good), remove(bad);
}

/* A bad batch on the last rank fails the step on every rank; the next step works. */
static void test_bad_batch_on_one_rank(void) {
    cumlp_network *net = make_net(21, N_HIDDEN);
    join(net);
    cumlp_optimizer *opt = make_opt(net);
    float x[N_IN * GLOBAL], y[N_OUT * GLOBAL];
    global_batch(0, x, y);
    cumlp_tensor *X = test_tensor_from(ctx, x, rank == last ? N_IN - 1 : N_IN, 3);
    cumlp_tensor *Y = test_tensor_from(ctx, y, N_OUT, 3);
    double loss = 0;
    CHECK_STATUS(cumlp_train_step(net, opt, X, Y, &loss), CUMLP_ERROR_INVALID_VALUE);
    check_message("X has 4 rows but the network's input width is 5");
    check_from_last_rank();
    CHECK_STATUS(cumlp_loss_backward(net, X, Y, &loss), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_train_step(net, rank == last ? NULL : opt, X, Y, &loss),
                 CUMLP_ERROR_INVALID_VALUE);
    check_from_last_rank();
    cumlp_tensor_destroy(X);
    X = test_tensor_from(ctx, x, N_IN, 3);
    CHECK_OK(cumlp_train_step(net, opt, X, Y, &loss));
    CHECK(cumlp_optimizer_step_count(opt) == 1);
    check_replicas(net, "after a failed step");
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
}

/* NaN in the last rank's shard: the global loss is NaN, every rank skips the step. */
static void test_nan_on_one_rank(void) {
    cumlp_network *net = make_net(22, N_HIDDEN);
    join(net);
    cumlp_optimizer *opt = make_opt(net);
    float x[N_IN * GLOBAL], y[N_OUT * GLOBAL];
    global_batch(0, x, y);
    if (rank == last) x[3] = NAN;
    cumlp_tensor *X = test_tensor_from(ctx, x, N_IN, 2);
    cumlp_tensor *Y = test_tensor_from(ctx, y, N_OUT, 2);
    double *before = parameters(net), *after = NULL;
    double loss = 0;
    CHECK_STATUS(cumlp_train_step(net, opt, X, Y, &loss), CUMLP_STEP_SKIPPED);
    CHECK(isnan(loss) && cumlp_optimizer_skipped_steps(opt) == 1);
    /* without the loss, the gradients hold the NaN */
    CHECK_STATUS(cumlp_train_step(net, opt, X, Y, NULL), CUMLP_STEP_SKIPPED);
    CHECK(cumlp_optimizer_skipped_steps(opt) == 2 && cumlp_optimizer_step_count(opt) == 0);
    after = parameters(net);
    CHECK(memcmp(before, after, (size_t)cumlp_network_num_parameters(net) * sizeof *after) == 0);
    check_replicas(net, "after skipped steps");
    free(before);
    free(after);
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
}

/* Ranks whose data or options differ: cumlp_fit fails on every rank before training. */
static void test_fit_disagreements(void) {
    cumlp_dataset *train = dataset(33, rank == last ? 99 : 11);
    cumlp_network *net = make_net(9, N_HIDDEN);
    join(net);
    cumlp_optimizer *opt = make_opt(net);
    cumlp_fit_options o;
    progress_log log = {0, 0, -1, 0, 0};
    fit_options(&o, &log);
    CHECK_STATUS(cumlp_fit(net, opt, train, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    check_message("the ranks disagree on the training set");
    cumlp_dataset_destroy(train);
    train = dataset(33, 11);
    if (rank == last) o.epochs = 2;
    CHECK_STATUS(cumlp_fit(net, opt, train, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    check_message("the ranks disagree on the fit options");
    fit_options(&o, &log);
    if (rank == last) o.batch_size = 0;
    CHECK_STATUS(cumlp_fit(net, opt, train, NULL, &o, NULL), CUMLP_ERROR_INVALID_VALUE);
    check_message("batch_size must be between 1 and 2^31-1");
    check_from_last_rank();
    CHECK(log.calls == 0 && cumlp_optimizer_step_count(opt) == 0);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_dataset_destroy(train);
}

#ifdef CUMLP_TEST_CUDA_SIM
/* The last rank's device runs out of memory in a step: every rank fails, the next step works. */
static void test_allocation_fails_on_one_rank(void) {
    cumlp_network *net = make_net(23, N_HIDDEN);
    join(net);
    cumlp_optimizer *opt = make_opt(net);
    float x[N_IN * GLOBAL], y[N_OUT * GLOBAL];
    global_batch(0, x, y);
    cumlp_tensor *X = test_tensor_from(ctx, x, N_IN, 4);
    cumlp_tensor *Y = test_tensor_from(ctx, y, N_OUT, 4);
    if (rank == last) cudasim_fail_allocation(1); /* the first work buffer */
    CHECK_STATUS(cumlp_train_step(net, opt, X, Y, NULL), CUMLP_ERROR_ALLOC_FAILED);
    check_from_last_rank();
    CHECK_OK(cumlp_train_step(net, opt, X, Y, NULL));
    check_replicas(net, "after a failed allocation");
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
}

/* The last rank's ncclAllReduce fails where the others' are queued: every rank fails and aborts the
 * NCCL communicator (the others' all-reduce would wait for the last rank's forever); the network
 * joins again and trains. */
static void test_nccl_fails_on_one_rank(void) {
    cumlp_network *net = make_net(24, N_HIDDEN);
    join(net);
    cumlp_optimizer *opt = make_opt(net);
    float x[N_IN * GLOBAL], y[N_OUT * GLOBAL];
    global_batch(0, x, y);
    cumlp_tensor *X = test_tensor_from(ctx, x, N_IN, 4);
    cumlp_tensor *Y = test_tensor_from(ctx, y, N_OUT, 4);
    if (rank == last) cudasim_nccl_fail_collective(1);
    CHECK_STATUS(cumlp_train_step(net, opt, X, Y, NULL), CUMLP_ERROR_COMMUNICATION);
    check_message("NCCL failed");
    check_from_last_rank();
    CHECK_STATUS(cumlp_train_step(net, opt, X, Y, NULL), CUMLP_ERROR_COMMUNICATION);
    check_message("aborted");
    join(net);
    CHECK_OK(cumlp_train_step(net, opt, X, Y, NULL));
    check_replicas(net, "after an aborted NCCL communicator");
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
}
#endif

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    last = ranks - 1;
    if (argc != 3 || cumlp_backend_from_name(argv[1], &backend) != CUMLP_SUCCESS ||
        cumlp_transport_from_name(argv[2], &transport) != CUMLP_SUCCESS) {
        fprintf(stderr, "usage: mpirun -np N test_mpi BACKEND TRANSPORT\n");
        MPI_Finalize();
        return 2;
    }
    if (rank != 0 && !freopen("/dev/null", "w", stdout)) return 1;
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = backend;
    o.num_threads = 1; /* the ranks share the cores */
    char why[512];
#ifndef CUMLP_TEST_CUDA_SIM
    /* a GPU per rank where there are enough; NCCL needs one (it refuses two ranks on one GPU) */
    if (backend == CUMLP_BACKEND_CUDA) {
        o.device = rank;
        ctx = test_context_try(&o, why, sizeof why);
        o.device = 0;
        if (!ctx && transport == CUMLP_TRANSPORT_NCCL)
            snprintf(why, sizeof why, "NCCL needs a GPU per rank");
    }
    if (!ctx && !(backend == CUMLP_BACKEND_CUDA && transport == CUMLP_TRANSPORT_NCCL))
#endif
        ctx = test_context_try(&o, why, sizeof why);
    /* every rank runs or every rank skips: a rank left alone would wait in a collective forever
     * (two ranks on a machine with one GPU: rank 0 finds its GPU, rank 1 none) */
    int have = ctx != NULL, all_have = 0;
    MPI_Allreduce(&have, &all_have, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (ctx && !all_have) {
        snprintf(why, sizeof why, "another rank has no context (%s)",
                 transport == CUMLP_TRANSPORT_NCCL ? "NCCL needs a GPU per rank"
                                                   : "see its output");
        cumlp_context_destroy(ctx);
        ctx = NULL;
    }
    if (!ctx) {
        int required = backend == CUMLP_BACKEND_CUDA && test_gpu_required() &&
                       transport != CUMLP_TRANSPORT_NCCL; /* NCCL may lack a GPU per rank */
        if (required) fprintf(stderr, "test_mpi: %s, but CUMLP_TEST_REQUIRE_GPU=1\n", why);
        MPI_Finalize();
        if (required) return 1;
        harness_skip(why);
    }
    printf("%d ranks, the %s backend, transport %s\n", ranks, argv[1], argv[2]);
    RUN(test_join);
    RUN(test_join_errors);
    RUN(test_loss_backward_gives_global_gradients);
    RUN(test_steps_match_one_process);
    RUN(test_queued_steps);
    RUN(test_fit_matches_one_process);
    RUN(test_callback_stops_every_rank);
    RUN(test_bad_file_on_one_rank);
    RUN(test_bad_batch_on_one_rank);
    RUN(test_nan_on_one_rank);
    RUN(test_fit_disagreements);
    if (backend == CUMLP_BACKEND_CUDA) RUN(test_fp16_fit_with_empty_shards);
#ifdef CUMLP_TEST_CUDA_SIM
    RUN(test_allocation_fails_on_one_rank);
    if (transport == CUMLP_TRANSPORT_NCCL) RUN(test_nccl_fails_on_one_rank);
#endif
    cumlp_context_destroy(ctx);
    int failed = harness_finish();
    MPI_Finalize();
    return failed;
}

#endif /* CUMLP_TEST_HAVE_MPI */
