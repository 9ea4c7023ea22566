/*
 * dist_bench.c - step time of data-parallel training against ranks (bench/dist_bench.sh runs it):
 * `mpirun -np P cumlp-dist-bench [--layers W,W,..] [--batch B] [--steps N] [--threads T]
 * [--backend NAME] [--transport NAME] [--alone]`.
 *
 * Every rank trains its shard of one global batch of B samples (SGD with momentum 0.9, as the
 * benchmark suite), N timed steps after 3 untimed ones; the step time is the slowest rank's mean.
 * Then the same communicator's parts of a step are timed alone: the all-reduce of the gradient
 * arena by the network's transport, and one agreement (the small MPI_Allreduce a training step
 * makes three of, four with NCCL); their share of the step is printed. --alone trains without a
 * communicator (one process, the baseline). Reaches the internal all-reduce and agreement through
 * src/dist/dist.h, so it links the static library.
 */
#include "cumlp.h"
#include "cumlp_mpi.h"
#include "dist/dist.h"

#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct options {
    int64_t widths[16];
    int num_layers;
    int64_t batch;
    int steps, threads, alone;
    int backend, transport;
} options;

static int parse_layers(const char *text, options *o) {
    o->num_layers = -1;
    for (const char *p = text; *p && o->num_layers < 15;) {
        char *end;
        long long w = strtoll(p, &end, 10);
        if (end == p || w < 1) return 0;
        o->widths[++o->num_layers] = w;
        p = *end == ',' ? end + 1 : end;
    }
    return o->num_layers >= 1;
}

static int parse(int argc, char **argv, options *o) {
    parse_layers("784,256,128,10", o);
    o->batch = 256;
    o->steps = 50;
    o->threads = 1;
    o->alone = 0;
    o->backend = CUMLP_BACKEND_CPU;
    o->transport = CUMLP_TRANSPORT_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : "";
        int ok = 1;
        if (strcmp(argv[i], "--alone") == 0) {
            o->alone = 1;
            continue;
        }
        if (strcmp(argv[i], "--layers") == 0)
            ok = parse_layers(value, o);
        else if (strcmp(argv[i], "--batch") == 0)
            ok = (o->batch = atoll(value)) >= 1;
        else if (strcmp(argv[i], "--steps") == 0)
            ok = (o->steps = atoi(value)) >= 1;
        else if (strcmp(argv[i], "--threads") == 0)
            ok = (o->threads = atoi(value)) >= 0;
        else if (strcmp(argv[i], "--backend") == 0)
            ok = cumlp_backend_from_name(value, &o->backend) == CUMLP_SUCCESS;
        else if (strcmp(argv[i], "--transport") == 0)
            ok = cumlp_transport_from_name(value, &o->transport) == CUMLP_SUCCESS;
        else
            ok = 0;
        if (!ok) {
            fprintf(stderr, "cumlp-dist-bench: bad option %s %s\n", argv[i], value);
            return 0;
        }
        i++;
    }
    return 1;
}

static double mean_seconds_max_over_ranks(double seconds, int count) {
    double mean = seconds / count, slowest = 0;
    MPI_Allreduce(&mean, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return slowest;
}

/* The mean time of `count` calls of what, after a barrier, the slowest rank's. */
#define TIMED(count, what)                                                                         \
    do {                                                                                           \
        MPI_Barrier(MPI_COMM_WORLD);                                                               \
        double start_ = MPI_Wtime();                                                               \
        for (int k_ = 0; k_ < (count); k_++)                                                       \
            what;                                                                                  \
        elapsed = mean_seconds_max_over_ranks(MPI_Wtime() - start_, (count));                      \
    } while (0)

static int run(const options *o, int rank, int ranks) {
    cumlp_context_options co;
    cumlp_context_defaults(&co);
    co.backend = o->backend;
    co.num_threads = o->threads;
    cumlp_context *ctx = NULL;
    if (cumlp_context_create(&ctx, &co) != CUMLP_SUCCESS) {
        fprintf(stderr, "cumlp-dist-bench: %s\n", cumlp_last_error(NULL));
        return 2;
    }
    int acts[15];
    for (int l = 0; l < o->num_layers; l++)
        acts[l] = l + 1 < o->num_layers ? CUMLP_ACT_RELU : CUMLP_ACT_SOFTMAX;
    cumlp_network_options no;
    cumlp_network_defaults(&no);
    no.loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
    no.init = CUMLP_INIT_HE_UNIFORM;
    cumlp_network *net = NULL;
    cumlp_optimizer *opt = NULL;
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults_for(CUMLP_OPT_MOMENTUM, &oo);
    cumlp_status st = cumlp_network_create(ctx, o->num_layers, o->widths, acts, &no, &net);
    if (st == CUMLP_SUCCESS && !o->alone)
        st = cumlp_network_set_comm(net, MPI_COMM_WORLD, o->transport);
    if (st == CUMLP_SUCCESS) st = cumlp_optimizer_create(net, &oo, &opt);
    /* this rank's shard of one global batch */
    int64_t first = 0, cols = o->batch;
    if (!o->alone) cumlp__shard(o->batch, rank, ranks, &first, &cols);
    int64_t n_in = o->widths[0], n_out = o->widths[o->num_layers];
    float *x = calloc((size_t)(n_in * cols), sizeof *x), *y = calloc((size_t)(n_out * cols), 4);
    for (int64_t j = 0; x && y && j < cols; j++) {
        for (int64_t i = 0; i < n_in; i++)
            x[j * n_in + i] = (float)(((first + j) * 31 + i * 17) % 97) / 97.0f - 0.5f;
        y[j * n_out + (first + j) % n_out] = 1;
    }
    cumlp_tensor *X = NULL, *Y = NULL;
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_create(ctx, n_in, cols, &X);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_create(ctx, n_out, cols, &Y);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_upload(X, x, n_in * cols);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_upload(Y, y, n_out * cols);
    double step = 0, allreduce = 0, agreement = 0, elapsed = 0;
    for (int k = 0; k < 3 && st == CUMLP_SUCCESS; k++)
        st = cumlp_train_step(net, opt, X, Y, NULL);
    if (st == CUMLP_SUCCESS) {
        TIMED(o->steps, st |= cumlp_train_step(net, opt, X, Y, NULL));
        step = elapsed;
    }
    if (st == CUMLP_SUCCESS && !o->alone) {
        TIMED(o->steps, st |= cumlp__dist_allreduce_gradients(net, "bench"));
        allreduce = elapsed;
        TIMED(o->steps * 10, st |= cumlp__dist_agree(net, CUMLP_SUCCESS, NULL, "bench"));
        agreement = elapsed;
        cumlp_context_synchronize(ctx);
    }
    if (st != CUMLP_SUCCESS) {
        fprintf(stderr, "cumlp-dist-bench: rank %d: %s\n", rank, cumlp_last_error(ctx));
    } else if (rank == 0) {
        char layers[128] = "";
        for (int l = 0, used = 0; l <= o->num_layers; l++)
            used += snprintf(layers + used, sizeof layers - (size_t)used, l ? ",%lld" : "%lld",
                             (long long)o->widths[l]);
        int agreements = cumlp_network_transport(net) == CUMLP_TRANSPORT_NCCL ? 4 : 3;
        double comm = allreduce + agreements * agreement;
        printf("%-22s batch %5lld  %d rank%s x %d thread%s  %-10s step %9.3f ms", layers,
               (long long)o->batch, o->alone ? 1 : ranks, ranks > 1 && !o->alone ? "s" : " ",
               o->threads, o->threads > 1 ? "s" : " ",
               o->alone ? "(alone)" : cumlp_transport_name(cumlp_network_transport(net)),
               1e3 * step);
        if (!o->alone)
            printf("  all-reduce %8.3f ms  agreement %6.1f us  communication %4.1f%% of the step",
                   1e3 * allreduce, 1e6 * agreement, 100.0 * comm / step);
        printf("\n");
    }
    free(x);
    free(y);
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
    return st == CUMLP_SUCCESS ? 0 : 2;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    options o;
    int rc = parse(argc, argv, &o) ? run(&o, rank, ranks) : 1;
    MPI_Finalize();
    return rc;
}
