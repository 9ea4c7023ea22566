/* dist.c - `cumlp train` under an MPI launcher (mpirun, mpiexec, srun): MPI is initialized when
 * the launcher's environment says so (the library never initializes it; the command is a
 * program), every rank reads the same files, the network joins MPI_COMM_WORLD (--transport),
 * rank 0 alone prints and writes files, and every step that may fail on one rank alone is agreed
 * on before the next collective one. A cumlp built without MPI refuses a launch of several
 * processes: each would train alone and write the same files. */
#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef CUMLP_CLI_HAVE_MPI
#include "cumlp_mpi.h"

#include <mpi.h>
#endif

static int rank, mpi_running;

/* The process count an MPI launcher announces (Open MPI, then PMI and PMIx as MPICH's Hydra and
 * Slurm set them), or 0 when none started this process. */
static int launched_ranks(void) {
    static const char *const names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *text = getenv(names[i]);
        char *end = NULL;
        long n = text ? strtol(text, &end, 10) : 0;
        if (text && end != text && *end == '\0' && n >= 1 && n <= INT_MAX) return (int)n;
    }
    return getenv("PMIX_RANK") ? 1 : 0;
}

int cli_dist_begin(const char *command) {
    int launched = launched_ranks();
    if (launched == 0) return EXIT_OK;
#ifdef CUMLP_CLI_HAVE_MPI
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        fprintf(stderr, "cumlp %s: MPI_Init failed\n", command);
        return EXIT_DATA;
    }
    mpi_running = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return EXIT_OK;
#else
    if (launched == 1) return EXIT_OK;
    fprintf(stderr,
            "cumlp %s: started by an MPI launcher as %d processes, but this cumlp is built "
            "without MPI: each would train alone (rebuild with libopenmpi-dev installed)\n",
            command, launched);
    return EXIT_USAGE;
#endif
}

int cli_dist_rank(void) {
    return rank;
}

void cli_dist_rank0_outputs(cli_args *a) {
    if (rank == 0) return;
    a->quiet = 1;
    a->progress = 0;
    a->save = a->log = a->plot = NULL;
    if (!freopen("/dev/null", "w", stdout)) return; /* then stdout is closed: printf fails */
}

int cli_dist_agree(int rc) {
#ifdef CUMLP_CLI_HAVE_MPI
    if (!mpi_running) return rc;
    /* the lowest failed rank, with its exit code (codes are below 16) */
    int mine = rc != EXIT_OK ? rank * 16 + rc : INT_MAX, first = INT_MAX;
    if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
        return rc != EXIT_OK ? rc : EXIT_DATA;
    return first == INT_MAX ? EXIT_OK : first % 16;
#else
    return rc;
#endif
}

int cli_dist_rank0_value(int value) {
#ifdef CUMLP_CLI_HAVE_MPI
    if (mpi_running) MPI_Bcast(&value, 1, MPI_INT, 0, MPI_COMM_WORLD); /* cumlp_fit checks it */
#endif
    return value;
}

int cli_dist_attach(const char *command, const cli_args *a, int rc, cumlp_network *net) {
    int transport = CUMLP_TRANSPORT_AUTO;
    /* checked also without mpirun, where it does nothing: a misspelling is not passed over */
    if (rc == EXIT_OK &&
        !cli_parse_name(command, "transport", cumlp_transport_from_name, a->transport, &transport))
        rc = EXIT_USAGE;
    rc = cli_dist_agree(rc);
    if (rc != EXIT_OK || !mpi_running) return rc;
#ifdef CUMLP_CLI_HAVE_MPI
    cumlp_status st = cumlp_network_set_comm(net, MPI_COMM_WORLD, transport);
    if (st != CUMLP_SUCCESS)
        return cli_dist_fail(command, st, cumlp_last_error(cumlp_network_context(net)));
    if (!a->quiet)
        printf("data parallel: %d ranks, transport %s, global batch %lld\n",
               cumlp_network_num_ranks(net), cumlp_transport_name(cumlp_network_transport(net)),
               (long long)a->batch);
#else
    (void)net; /* MPI is never running */
#endif
    return EXIT_OK;
}

int cli_dist_fail(const char *command, cumlp_status status, const char *message) {
    if (rank == 0) return cli_fail(command, status, message);
    return cli_exit_code(status);
}

void cli_dist_end(void) {
#ifdef CUMLP_CLI_HAVE_MPI
    if (mpi_running) MPI_Finalize();
    mpi_running = 0;
#endif
}
