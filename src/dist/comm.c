/*
 * comm.c - a network's communicator (include/cumlp_mpi.h): joining and leaving it, the ranks'
 * agreement, and the transports' all-reduce and broadcast of an arena. Built without MPI, it holds
 * the stubs of the public calls, which return CUMLP_ERROR_NOT_SUPPORTED, and of the internal ones,
 * which a network without a communicator never reaches.
 */
#include "dist/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cumlp__dist_add_sum(cumlp_dist_values *v, double value) {
    if (v->num_sums == CUMLP_DIST_MAX_VALUES) return v->overflowed = 1, 0;
    v->sums[v->num_sums] = value;
    return v->num_sums++;
}

int cumlp__dist_add_same(cumlp_dist_values *v, uint64_t value, const char *name) {
    if (v->num_same == CUMLP_DIST_MAX_VALUES) return v->overflowed = 1, 0;
    v->same[v->num_same] = value;
    v->same_names[v->num_same] = name;
    return v->num_same++;
}

uint64_t cumlp__dist_hash(uint64_t hash, const void *data, size_t bytes) {
    const unsigned char *p = data;
    size_t words = bytes / 4;
    for (size_t i = 0; i < words; i++) {
        uint32_t w;
        memcpy(&w, p + 4 * i, 4);
        hash = (hash ^ w) * 1099511628211ull;
    }
    for (size_t i = 4 * words; i < bytes; i++)
        hash = (hash ^ p[i]) * 1099511628211ull;
    return hash;
}

#ifdef CUMLP_HAVE_MPI

#include "cumlp_mpi.h"

#include <mpi.h>
#if defined(OPEN_MPI) && OPEN_MPI
#include <mpi-ext.h> /* MPIX_Query_cuda_support */
#endif

_Static_assert(sizeof(MPI_Fint) == sizeof(int), "include/cumlp.f90 binds MPI_Fint as c_int");

/* MPI counts are int: arenas travel in pieces of at most this many elements. */
#define MPI_PIECE ((size_t)1 << 30)

/* The ranks that agree: a communicator, this rank, their count, and the agreement's MPI type and
 * reduction. */
typedef struct party {
    MPI_Comm comm;
    int rank, ranks;
    MPI_Datatype type;
    MPI_Op op;
} party;

struct cumlp_dist {
    party party;    /* over cumlp's duplicate of the caller's communicator */
    int transport;  /* never AUTO: MPI on the host backends, MPI_HOST, MPI_DEVICE or NCCL on cuda */
    float *staging; /* MPI_HOST: an arena in host memory (num_params floats) */
    void *nccl;     /* NCCL: the ncclComm_t */
    int aborted;    /* NCCL: the communicator was aborted after a failure */
};

static cumlp_status mpi_failed(cumlp_context *ctx, int err, const char *call, const char *func) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(err, text, &length) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", err);
    return cumlp__fail(ctx, CUMLP_ERROR_COMMUNICATION, func, "%s failed: %s", call, text);
}

/* ---- the agreement --------------------------------------------------------------------------- */

/* One rank's part of an agreement, reduced element by element: the lowest failed rank, the sums,
 * and each compared value's lowest and highest. */
typedef struct agreement {
    int32_t first_failed; /* the lowest rank whose status was not SUCCESS; the rank count if none */
    int32_t unused;
    double sums[CUMLP_DIST_MAX_VALUES];
    uint64_t low[CUMLP_DIST_MAX_VALUES], high[CUMLP_DIST_MAX_VALUES];
} agreement;

/* The MPI reduction of agreements (an MPI_User_function). MPI may hand it buffers of any
 * alignment: the records are copied out and back. */
static void reduce_agreements(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    for (int i = 0; i < *len; i++) {
        agreement a, b;
        memcpy(&a, (char *)in + (size_t)i * sizeof a, sizeof a);
        memcpy(&b, (char *)inout + (size_t)i * sizeof b, sizeof b);
        if (a.first_failed < b.first_failed) b.first_failed = a.first_failed;
        for (int k = 0; k < CUMLP_DIST_MAX_VALUES; k++) {
            b.sums[k] += a.sums[k];
            if (a.low[k] < b.low[k]) b.low[k] = a.low[k];
            if (a.high[k] > b.high[k]) b.high[k] = a.high[k];
        }
        memcpy((char *)inout + (size_t)i * sizeof b, &b, sizeof b);
    }
}

/* The agreement's type and reduction for p (MPI_DATATYPE_NULL and MPI_OP_NULL on failure). */
static int create_agreement(party *p) {
    p->type = MPI_DATATYPE_NULL;
    p->op = MPI_OP_NULL;
    int err = MPI_Type_contiguous((int)sizeof(agreement), MPI_BYTE, &p->type);
    if (err == MPI_SUCCESS) err = MPI_Type_commit(&p->type);
    if (err == MPI_SUCCESS) err = MPI_Op_create(reduce_agreements, 1, &p->op);
    return err;
}

static void free_agreement(party *p) {
    if (p->op != MPI_OP_NULL) MPI_Op_free(&p->op);
    if (p->type != MPI_DATATYPE_NULL) MPI_Type_free(&p->type);
}

/* The lowest failed rank's status and message, sent to every rank. */
static cumlp_status spread_failure(const party *p, cumlp_context *ctx, int first,
                                   cumlp_status local, const char *func) {
    struct {
        int32_t status;
        char message[CUMLP_MESSAGE_SIZE];
    } m;
    memset(&m, 0, sizeof m);
    if (p->rank == first) {
        m.status = (int32_t)local;
        snprintf(m.message, sizeof m.message, "%s", cumlp_last_error(ctx));
    }
    int err = MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, first, p->comm);
    if (err != MPI_SUCCESS) return mpi_failed(ctx, err, "MPI_Bcast", func);
    m.message[sizeof m.message - 1] = '\0';
    if (p->rank != first)
        cumlp__error(ctx, (cumlp_status)m.status, "rank %d of %d: %s", first, p->ranks, m.message);
    return (cumlp_status)m.status;
}

static cumlp_status agree_in(const party *p, cumlp_context *ctx, cumlp_status local,
                             cumlp_dist_values *v, const char *func) {
    if (v && v->overflowed && local == CUMLP_SUCCESS)
        local = cumlp__fail(ctx, CUMLP_ERROR_INTERNAL, func, "more than %d values in one agreement",
                            CUMLP_DIST_MAX_VALUES);
    agreement a;
    memset(&a, 0, sizeof a);
    a.first_failed = local != CUMLP_SUCCESS ? p->rank : p->ranks;
    for (int k = 0; v && k < v->num_sums; k++)
        a.sums[k] = v->sums[k];
    for (int k = 0; v && k < v->num_same; k++)
        a.low[k] = a.high[k] = v->same[k];
    int err = MPI_Allreduce(MPI_IN_PLACE, &a, 1, p->type, p->op, p->comm);
    if (err != MPI_SUCCESS) return mpi_failed(ctx, err, "MPI_Allreduce", func);
    for (int k = 0; v && k < v->num_sums; k++)
        v->sums[k] = a.sums[k];
    if (a.first_failed < p->ranks) return spread_failure(p, ctx, a.first_failed, local, func);
    for (int k = 0; v && k < v->num_same; k++)
        if (a.low[k] != a.high[k])
            return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                               "the ranks disagree on %s (every rank must make this call with "
                               "the same network, options and data)",
                               v->same_names[k]);
    return CUMLP_SUCCESS;
}

static cumlp_status aborted(cumlp_context *ctx, const char *func) {
    return cumlp__fail(ctx, CUMLP_ERROR_COMMUNICATION, func,
                       "the network's NCCL communicator was aborted after a failure; join a "
                       "communicator again (cumlp_network_set_comm)");
}

cumlp_status cumlp__dist_agree(cumlp_network *net, cumlp_status local, cumlp_dist_values *values,
                               const char *func) {
    if (net->dist->aborted) return aborted(net->ctx, func);
    return agree_in(&net->dist->party, net->ctx, local, values, func);
}

/* ---- the transports -------------------------------------------------------------------------- */

/* count elements at data: summed over the ranks in place, or copied from rank 0. */
static cumlp_status mpi_move(const party *p, cumlp_context *ctx, void *data, size_t count,
                             MPI_Datatype type, size_t elem_size, int broadcast, const char *func) {
    for (size_t done = 0; done < count;) {
        int n = (int)(count - done < MPI_PIECE ? count - done : MPI_PIECE);
        void *piece = (char *)data + done * elem_size;
        int err = broadcast ? MPI_Bcast(piece, n, type, 0, p->comm)
                            : MPI_Allreduce(MPI_IN_PLACE, piece, n, type, MPI_SUM, p->comm);
        if (err != MPI_SUCCESS)
            return mpi_failed(ctx, err, broadcast ? "MPI_Bcast" : "MPI_Allreduce", func);
        done += (size_t)n;
    }
    return CUMLP_SUCCESS;
}

/* A backend buffer of count elements: summed over the ranks, or copied from rank 0. */
static cumlp_status move_buffer(cumlp_network *net, void *buffer, size_t count, int broadcast,
                                const char *func) {
    cumlp_dist *d = net->dist;
    cumlp_context *ctx = net->ctx;
    if (d->aborted) return aborted(ctx, func);
    if (ctx->sticky) return ctx->sticky;
    cumlp_status st = CUMLP_SUCCESS;
    switch (d->transport) {
    case CUMLP_TRANSPORT_NCCL:
#ifdef CUMLP_HAVE_NCCL
        return broadcast ? cumlp__nccl_broadcast(ctx, d->nccl, buffer, count)
                         : cumlp__nccl_allreduce(ctx, d->nccl, buffer, count);
#else
        return cumlp__fail(ctx, CUMLP_ERROR_INTERNAL, func, "NCCL is not built");
#endif
    case CUMLP_TRANSPORT_MPI_HOST: /* the cuda backend, through host memory */
        if (!broadcast || d->party.rank == 0)
            st = ctx->ops->download(ctx, buffer, d->staging, count);
        if (st == CUMLP_SUCCESS)
            st = mpi_move(&d->party, ctx, d->staging, count, MPI_FLOAT, sizeof(float), broadcast,
                          func);
        if (st == CUMLP_SUCCESS && (!broadcast || d->party.rank != 0))
            st = ctx->ops->upload(ctx, buffer, d->staging, count);
        return st;
    case CUMLP_TRANSPORT_MPI_DEVICE: /* a CUDA-aware MPI reads device memory: after the stream */
        st = ctx->ops->synchronize(ctx);
        if (st == CUMLP_SUCCESS)
            st = mpi_move(&d->party, ctx, buffer, count, MPI_FLOAT, sizeof(float), broadcast, func);
        return st;
    default: /* host memory: doubles on the reference backend, floats on the cpu backend */
        return mpi_move(&d->party, ctx, buffer, count,
                        ctx->ops->elem_size == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT,
                        ctx->ops->elem_size, broadcast, func);
    }
}

cumlp_status cumlp__dist_allreduce_gradients(cumlp_network *net, const char *func) {
    return move_buffer(net, net->grads, net->num_params, 0, func);
}

cumlp_status cumlp__dist_broadcast_buffer(cumlp_network *net, void *buffer, size_t count,
                                          const char *func) {
    return move_buffer(net, buffer, count, 1, func);
}

void cumlp__dist_abort(cumlp_network *net) {
    cumlp_dist *d = net->dist;
    if (!d || d->transport != CUMLP_TRANSPORT_NCCL || !d->nccl) return;
#ifdef CUMLP_HAVE_NCCL
    cumlp__nccl_destroy(net->ctx, d->nccl, 1);
#endif
    d->nccl = NULL;
    d->aborted = 1;
}

/* ---- joining and leaving --------------------------------------------------------------------- */

/* Whether MPI says that it reads and writes device memory (a CUDA-aware build). */
static int mpi_is_cuda_aware(void) {
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
    return MPIX_Query_cuda_support() == 1;
#elif defined(MPIX_GPU_SUPPORT_CUDA)
    int supported = 0;
    return MPIX_GPU_query_support(MPIX_GPU_SUPPORT_CUDA, &supported) == MPI_SUCCESS && supported;
#else
    return 0;
#endif
}

/* The transport that `transport` means on ctx's backend (see cumlp_network_set_comm). */
static cumlp_status resolve_transport(cumlp_context *ctx, int transport, int *out,
                                      const char *func) {
    int device = ctx->backend == CUMLP_BACKEND_CUDA;
    if (transport < 0 || transport >= CUMLP_TRANSPORT_COUNT)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "unknown transport %d", transport);
    if (transport == CUMLP_TRANSPORT_AUTO)
        transport = device && cumlp_transport_is_built(CUMLP_TRANSPORT_NCCL) ? CUMLP_TRANSPORT_NCCL
                                                                             : CUMLP_TRANSPORT_MPI;
    if (transport == CUMLP_TRANSPORT_NCCL && !device)
        return cumlp__fail(ctx, CUMLP_ERROR_NOT_SUPPORTED, func,
                           "the nccl transport needs the cuda backend, not %s",
                           cumlp_backend_name(ctx->backend));
    if (transport == CUMLP_TRANSPORT_NCCL && !cumlp_transport_is_built(transport))
        return cumlp__fail(ctx, CUMLP_ERROR_NOT_SUPPORTED, func, "cumlp was built without NCCL");
    if (transport != CUMLP_TRANSPORT_NCCL && !device) transport = CUMLP_TRANSPORT_MPI;
    if (transport == CUMLP_TRANSPORT_MPI && device)
        transport = mpi_is_cuda_aware() ? CUMLP_TRANSPORT_MPI_DEVICE : CUMLP_TRANSPORT_MPI_HOST;
    *out = transport;
    return CUMLP_SUCCESS;
}

/* What must be the same on every rank that joins: the architecture, the backend and transport. */
static uint64_t architecture_hash(const cumlp_network *net) {
    uint64_t h = cumlp__dist_hash(CUMLP_DIST_HASH_START, &net->num_layers, sizeof net->num_layers);
    for (int l = 0; l < net->num_layers; l++) {
        const cumlp_layer *L = &net->layers[l];
        int64_t shape[3] = {L->fan_in, L->fan_out, L->activation};
        h = cumlp__dist_hash(h, shape, sizeof shape);
    }
    h = cumlp__dist_hash(h, &net->loss, sizeof net->loss);
    return cumlp__dist_hash(h, &net->leaky_slope, sizeof net->leaky_slope);
}

/* Frees what a joining or joined communicator holds; MPI's part only while MPI runs (a program
 * may have finalized MPI before destroying its networks). */
static void release(cumlp_dist *d, cumlp_context *ctx) {
#ifdef CUMLP_HAVE_NCCL
    if (d->nccl) cumlp__nccl_destroy(ctx, d->nccl, 0);
#else
    (void)ctx;
#endif
    d->nccl = NULL;
    free(d->staging);
    d->staging = NULL;
    int finalized = 1;
    MPI_Finalized(&finalized);
    if (finalized) return;
    free_agreement(&d->party);
    if (d->party.comm != MPI_COMM_NULL) MPI_Comm_free(&d->party.comm);
}

void cumlp__dist_leave(cumlp_network *net) {
    if (!net->dist) return;
    release(net->dist, net->ctx);
    free(net->dist);
    net->dist = NULL;
}

/* NCCL's bootstrap: rank 0's ncclUniqueId, broadcast over MPI; every rank's ncclCommInitRank.
 * Each step that may fail locally is agreed on before the next one that needs every rank. */
static cumlp_status join_nccl(cumlp_dist *d, cumlp_context *ctx, const char *func) {
#ifdef CUMLP_HAVE_NCCL
    unsigned char id[CUMLP_NCCL_ID_BYTES];
    memset(id, 0, sizeof id);
    cumlp_status local = d->party.rank == 0 ? cumlp__nccl_unique_id(ctx, id) : CUMLP_SUCCESS;
    cumlp_status st = agree_in(&d->party, ctx, local, NULL, func);
    if (st != CUMLP_SUCCESS) return st;
    int err = MPI_Bcast(id, (int)sizeof id, MPI_BYTE, 0, d->party.comm);
    if (err != MPI_SUCCESS) return mpi_failed(ctx, err, "MPI_Bcast", func);
    local = cumlp__nccl_init(ctx, id, d->party.rank, d->party.ranks, &d->nccl);
    return agree_in(&d->party, ctx, local, NULL, func);
#else
    (void)d;
    return cumlp__fail(ctx, CUMLP_ERROR_INTERNAL, func, "NCCL is not built");
#endif
}

static cumlp_status check_mpi_running(cumlp_context *ctx, const char *func) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) return CUMLP_SUCCESS;
    return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                       "MPI is %s (cumlp never initializes MPI: the program calls MPI_Init)",
                       finalized ? "finalized" : "not initialized");
}

/* The joining ranks' agreement on what they join with: every rank's checks (`local`), the
 * network's architecture, backend and transport. */
static cumlp_status agree_to_join(cumlp_dist *d, cumlp_network *net, cumlp_status local,
                                  const char *func) {
    cumlp_dist_values v = {0};
    cumlp__dist_add_same(&v, architecture_hash(net), "the network's architecture");
    cumlp__dist_add_same(&v, (uint64_t)net->ctx->backend, "the backend");
    cumlp__dist_add_same(&v, (uint64_t)d->transport, "the transport");
    return agree_in(&d->party, net->ctx, local, &v, func);
}

/* Joins comm (not MPI_COMM_NULL): its duplicate, the agreement, the transport; on failure nothing
 * is left behind. */
static cumlp_status join(cumlp_network *net, MPI_Comm comm, int transport, cumlp_dist **out,
                         const char *func) {
    cumlp_context *ctx = net->ctx;
    cumlp_dist joining;
    memset(&joining, 0, sizeof joining);
    joining.party.comm = MPI_COMM_NULL;
    joining.party.type = MPI_DATATYPE_NULL;
    joining.party.op = MPI_OP_NULL;
    int err = MPI_Comm_dup(comm, &joining.party.comm);
    if (err != MPI_SUCCESS) return mpi_failed(ctx, err, "MPI_Comm_dup", func);
    err = MPI_Comm_set_errhandler(joining.party.comm, MPI_ERRORS_RETURN);
    if (err == MPI_SUCCESS) err = MPI_Comm_rank(joining.party.comm, &joining.party.rank);
    if (err == MPI_SUCCESS) err = MPI_Comm_size(joining.party.comm, &joining.party.ranks);
    if (err == MPI_SUCCESS) err = create_agreement(&joining.party);
    if (err != MPI_SUCCESS) {
        release(&joining, ctx);
        return mpi_failed(ctx, err, "setting up cumlp's duplicate of the communicator", func);
    }
    cumlp_status local = ctx->sticky;
    if (local == CUMLP_SUCCESS) local = resolve_transport(ctx, transport, &joining.transport, func);
    if (local == CUMLP_SUCCESS && joining.transport == CUMLP_TRANSPORT_MPI_HOST) {
        joining.staging = malloc(net->num_params * sizeof(float));
        if (!joining.staging)
            local = cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory");
    }
    cumlp_status st = agree_to_join(&joining, net, local, func);
    if (st == CUMLP_SUCCESS && joining.transport == CUMLP_TRANSPORT_NCCL)
        st = join_nccl(&joining, ctx, func);
    cumlp_dist *d = NULL;
    if (st == CUMLP_SUCCESS) {
        d = malloc(sizeof *d);
        local =
            d ? CUMLP_SUCCESS : cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of memory");
        st = agree_in(&joining.party, ctx, local, NULL, func);
    }
    if (st != CUMLP_SUCCESS) {
        free(d);
        release(&joining, ctx);
        return st;
    }
    *d = joining;
    *out = d;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_network_set_comm(cumlp_network *net, MPI_Comm comm, int transport) {
    CUMLP_FAIL_IF(!net, NULL, CUMLP_ERROR_INVALID_VALUE, "net is NULL");
    cumlp_status st = check_mpi_running(net->ctx, __func__);
    if (st != CUMLP_SUCCESS) return st;
    cumlp__dist_leave(net);
    if (comm == MPI_COMM_NULL) return CUMLP_SUCCESS;
    st = join(net, comm, transport, &net->dist, __func__);
    /* the replicas start from rank 0's parameters */
    if (st == CUMLP_SUCCESS) st = cumlp_network_broadcast(net, NULL);
    if (st != CUMLP_SUCCESS) cumlp__dist_leave(net);
    return st;
}

cumlp_status cumlp_network_set_comm_f(cumlp_network *net, MPI_Fint comm, int transport) {
    return cumlp_network_set_comm(net, MPI_Comm_f2c(comm), transport);
}

cumlp_status cumlp_mpi_agree(MPI_Comm comm, cumlp_status status, cumlp_context *ctx) {
    cumlp_status st = check_mpi_running(ctx, __func__);
    if (st != CUMLP_SUCCESS) return st;
    CUMLP_FAIL_IF(comm == MPI_COMM_NULL, ctx, CUMLP_ERROR_INVALID_VALUE, "comm is MPI_COMM_NULL");
    party p = {comm, 0, 0, MPI_DATATYPE_NULL, MPI_OP_NULL};
    int err = MPI_Comm_rank(comm, &p.rank);
    if (err == MPI_SUCCESS) err = MPI_Comm_size(comm, &p.ranks);
    if (err == MPI_SUCCESS) err = create_agreement(&p);
    if (err != MPI_SUCCESS) {
        free_agreement(&p);
        return mpi_failed(ctx, err, "setting up the agreement", __func__);
    }
    st = agree_in(&p, ctx, status, NULL, __func__);
    free_agreement(&p);
    return st;
}

cumlp_status cumlp_mpi_agree_f(MPI_Fint comm, int status, cumlp_context *ctx) {
    return cumlp_mpi_agree(MPI_Comm_f2c(comm), (cumlp_status)status, ctx);
}

int cumlp_transport_is_built(int transport) {
    if (transport == CUMLP_TRANSPORT_NCCL) {
#ifdef CUMLP_HAVE_NCCL
        return 1;
#else
        return 0;
#endif
    }
    return transport >= 0 && transport < CUMLP_TRANSPORT_COUNT;
}

int cumlp__dist_ranks(const cumlp_network *net) {
    return net->dist ? net->dist->party.ranks : 1;
}

int cumlp__dist_rank(const cumlp_network *net) {
    return net->dist ? net->dist->party.rank : 0;
}

int cumlp_network_transport(const cumlp_network *net) {
    return net && net->dist ? net->dist->transport : -1;
}

#else /* no MPI: every network is alone */

/* Declared in include/cumlp_mpi.h with MPI_Fint, which is int wherever cumlp is built with MPI. */
CUMLP_API cumlp_status cumlp_network_set_comm_f(cumlp_network *net, int comm, int transport);
CUMLP_API cumlp_status cumlp_mpi_agree_f(int comm, int status, cumlp_context *ctx);

static cumlp_status no_mpi(cumlp_context *ctx, const char *func) {
    return cumlp__fail(ctx, CUMLP_ERROR_NOT_SUPPORTED, func,
                       "cumlp was built without MPI (see CUMLP_MPI in cmake/mpi.cmake)");
}

cumlp_status cumlp_network_set_comm_f(cumlp_network *net, int comm, int transport) {
    (void)comm, (void)transport;
    return no_mpi(net ? net->ctx : NULL, __func__);
}

cumlp_status cumlp_mpi_agree_f(int comm, int status, cumlp_context *ctx) {
    (void)comm, (void)status;
    return no_mpi(ctx, __func__);
}

int cumlp_transport_is_built(int transport) {
    (void)transport;
    return 0;
}

/* Never reached: a network has a communicator only in a build with MPI. */
cumlp_status cumlp__dist_agree(cumlp_network *net, cumlp_status local, cumlp_dist_values *values,
                               const char *func) {
    (void)values;
    return local != CUMLP_SUCCESS ? local : no_mpi(net->ctx, func);
}

cumlp_status cumlp__dist_allreduce_gradients(cumlp_network *net, const char *func) {
    return no_mpi(net->ctx, func);
}

cumlp_status cumlp__dist_broadcast_buffer(cumlp_network *net, void *buffer, size_t count,
                                          const char *func) {
    (void)buffer, (void)count;
    return no_mpi(net->ctx, func);
}

void cumlp__dist_abort(cumlp_network *net) {
    (void)net;
}

void cumlp__dist_leave(cumlp_network *net) {
    (void)net;
}

int cumlp__dist_ranks(const cumlp_network *net) {
    (void)net;
    return 1;
}

int cumlp__dist_rank(const cumlp_network *net) {
    (void)net;
    return 0;
}

int cumlp_network_transport(const cumlp_network *net) {
    (void)net;
    return -1;
}

#endif /* CUMLP_HAVE_MPI */

int cumlp_network_num_ranks(const cumlp_network *net) {
    return net ? cumlp__dist_ranks(net) : -1;
}

int cumlp_network_rank(const cumlp_network *net) {
    return net ? cumlp__dist_rank(net) : -1;
}
