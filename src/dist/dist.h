/*
 * dist.h - data-parallel training (cumlp.h, "Data-parallel training over MPI"): what the core
 * (network.c, optimizer.c, fit.c) asks of a network's communicator.
 *
 *   comm.c      MPI: joining a communicator, the ranks' agreement, the transports' all-reduce and
 *               broadcast of an arena (stubs when cumlp is built without MPI)
 *   nccl.c      the NCCL transport on the cuda backend (built with MPI, NCCL and the cuda backend)
 *   parallel.c  the collective calls on a network with a communicator: the training step, the
 *               reductions of cumlp_fit and cumlp_evaluate
 *
 * Every collective step follows one rule: a rank that fails locally does not stop, it carries its
 * status into the next agreement (cumlp__dist_agree), which every rank reaches; the agreement
 * returns the same status on every rank, so that the ranks' control flow never parts.
 */
#ifndef CUMLP_DIST_H
#define CUMLP_DIST_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* Rank r's shard of a batch of `cols` columns split over `ranks`: columns [*first, *first +
 * *count). Shards differ by at most one column; a shard is empty when cols < ranks. */
static inline void cumlp__shard(int64_t cols, int rank, int ranks, int64_t *first, int64_t *count) {
    int64_t lo = cols * rank / ranks, hi = cols * (rank + 1) / ranks;
    *first = lo;
    *count = hi - lo;
}

/* What one agreement carries besides the statuses: values summed over the ranks, and values that
 * must be the same on every rank (a hash, a count), each with a name for the message. */
#define CUMLP_DIST_MAX_VALUES 16
typedef struct cumlp_dist_values {
    int num_sums, num_same;
    int overflowed; /* a value added past CUMLP_DIST_MAX_VALUES (not kept): the agreement fails */
    double sums[CUMLP_DIST_MAX_VALUES];
    uint64_t same[CUMLP_DIST_MAX_VALUES];
    const char *same_names[CUMLP_DIST_MAX_VALUES]; /* "the training set" */
} cumlp_dist_values;

/* Adds a value to sum, or one that must be the same on every rank; returns its index. Past
 * CUMLP_DIST_MAX_VALUES nothing is added and the agreement fails with CUMLP_ERROR_INTERNAL (on
 * every rank: the ranks run the same code). */
int cumlp__dist_add_sum(cumlp_dist_values *v, double value);
int cumlp__dist_add_same(cumlp_dist_values *v, uint64_t value, const char *name);

/* A 64-bit hash of bytes (FNV-1a over 32-bit words), to compare data between ranks. Continues
 * from `hash` (start with CUMLP_DIST_HASH_START). */
#define CUMLP_DIST_HASH_START 14695981039346656037ull
uint64_t cumlp__dist_hash(uint64_t hash, const void *data, size_t bytes);

/* ---- comm.c ---------------------------------------------------------------------------------- */

/* The agreement, collective over the network's communicator: every rank passes the status of its
 * own work since the last agreement (`local`, with its message in the context) and, with values,
 * its values to sum (replaced by the sums, also when a rank failed) and to compare (values may be
 * NULL). Returns on every rank: the status of
 * the lowest rank that failed, with its message ("rank r of P: ..." on the others); else
 * CUMLP_ERROR_INVALID_VALUE when a value to compare differs ("func: the ranks disagree on <name>");
 * else CUMLP_SUCCESS. CUMLP_ERROR_COMMUNICATION when MPI fails, or after an NCCL abort. */
cumlp_status cumlp__dist_agree(cumlp_network *net, cumlp_status local, cumlp_dist_values *values,
                               const char *func);

/* Sums the gradient arena over the ranks by the network's transport. Local: its status is agreed
 * on afterwards (the all-reduce of NCCL is only queued). */
cumlp_status cumlp__dist_allreduce_gradients(cumlp_network *net, const char *func);

/* Copies count elements of a backend buffer (an arena) from rank 0 to every rank, by the network's
 * transport. Local, like the all-reduce. */
cumlp_status cumlp__dist_broadcast_buffer(cumlp_network *net, void *buffer, size_t count,
                                          const char *func);

/* After an agreement that failed with NCCL work queued on some rank: every rank aborts the NCCL
 * communicator, whose queued collectives would otherwise wait for the ranks that never queued
 * theirs. The network's later collective calls fail until it joins a communicator again. */
void cumlp__dist_abort(cumlp_network *net);

/* The number of ranks (1 without a communicator) and this process's rank. */
int cumlp__dist_ranks(const cumlp_network *net);
int cumlp__dist_rank(const cumlp_network *net);

/* cumlp_network_destroy's part: leaves the communicator (cumlp's duplicate, the NCCL one). */
void cumlp__dist_leave(cumlp_network *net);

/* ---- nccl.c (CUMLP_HAVE_NCCL) ---------------------------------------------------------------- */

/* An ncclUniqueId's bytes, travelling as bytes through MPI. */
#define CUMLP_NCCL_ID_BYTES 128

/* ncclGetUniqueId (on rank 0) into id[CUMLP_NCCL_ID_BYTES]. */
cumlp_status cumlp__nccl_unique_id(cumlp_context *ctx, void *id);
/* ncclCommInitRank on the context's device; *comm is the ncclComm_t. */
cumlp_status cumlp__nccl_init(cumlp_context *ctx, const void *id, int rank, int ranks, void **comm);
/* ncclAllReduce (sum, in place) and ncclBroadcast (from rank 0, in place) of count floats on the
 * context's stream. */
cumlp_status cumlp__nccl_allreduce(cumlp_context *ctx, void *comm, void *buffer, size_t count);
cumlp_status cumlp__nccl_broadcast(cumlp_context *ctx, void *comm, void *buffer, size_t count);
/* ncclCommDestroy, after the context's stream has finished its work; with abort, ncclCommAbort
 * (which ends the communicator's queued work) and no wait. */
void cumlp__nccl_destroy(cumlp_context *ctx, void *comm, int abort);

/* ---- parallel.c ------------------------------------------------------------------------------ */

/* cumlp_loss_backward on a network with a communicator. `local`: the status of the call's own
 * checks (X and T are not used when it failed). */
cumlp_status cumlp__dist_loss_backward(cumlp_network *net, const cumlp_tensor *X,
                                       const cumlp_tensor *T, cumlp_status local, double *loss,
                                       const char *func);

/* The training step of cumlp_train_step and cumlp_fit on a network with a communicator. `local`:
 * the status of this rank's work so far (its argument checks, cumlp_fit's upload of the batch).
 * X, T: this rank's shard of the global batch, NULL for an empty one (cumlp_fit's, when the batch
 * has fewer columns than there are ranks). global_cols: the global batch's columns when every rank
 * knows it (cumlp_fit), or 0: the ranks agree on it first. */
cumlp_status cumlp__dist_train_step(cumlp_network *net, cumlp_optimizer *opt, const cumlp_tensor *X,
                                    const cumlp_tensor *T, cumlp_status local, int64_t global_cols,
                                    double *loss, const char *func);

/* cumlp_fit's first agreement: every rank's checks and set-up (`local`), and that the ranks hold
 * the same datasets, parameters, optimizer and options. */
cumlp_status cumlp__dist_fit_agree(cumlp_network *net, const cumlp_optimizer *opt,
                                   const cumlp_dataset *train, const cumlp_dataset *validation,
                                   const cumlp_fit_options *options, cumlp_status local,
                                   const char *func);

#endif /* CUMLP_DIST_H */
