/*
 * nccl.cc - the NCCL calls cumlp makes, on the CPU (see cudasim.h), in a build with MPI: the ranks
 * of a communicator are MPI processes, each with its own simulated device. ncclCommInitRank finds
 * the other ranks over MPI_COMM_WORLD and makes an MPI communicator of them, in NCCL's rank order;
 * ncclAllReduce and ncclBroadcast check their arguments at the call, as the library does, and are
 * queued on their stream like kernels, to run as MPI_Allreduce and MPI_Bcast of the device memory
 * when the stream runs.
 *
 * As on a GPU, a queued collective completes only when every rank's runs. Here it runs when a
 * synchronization of its rank needs it, and that rank's host waits in MPI for the others' to run:
 * the ranks must reach the synchronizations that run their collectives in the same order as their
 * other MPI calls (a GPU runs them without the host, so there they need not). cumlp does so: it
 * agrees over MPI that every rank queued its collective before any rank waits for its stream, and
 * no collective of a call outlives it but the training step's all-reduce, which the step's
 * optimizer runs at the same point on every rank.
 *
 * What is reported ("cudasim: ..."): a call with a device pointer that is not device memory or is
 * too short, a communicator that is not live, a device other than the communicator's, a type or
 * reduction cumlp does not use, a communicator destroyed while collectives are still queued on it,
 * and communicators never destroyed.
 */
#include "cudasim.h"
#include "cudasim_control.h"
#include "host.h"

#include <mpi.h>
#include <nccl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace {

using cudasim::report;

/* What ncclGetUniqueId writes: a tag, the creating process's rank in MPI_COMM_WORLD (the ranks
 * meet there), and that process's count of ids, which tells communicators apart. */
struct unique_id {
    char magic[16];
    std::int32_t world_rank;
    std::uint32_t serial;
};
static_assert(sizeof(unique_id) <= sizeof(ncclUniqueId), "the id fits NCCL's");
constexpr char kMagic[16] = "cudasim-nccl-id";
/* MPI_COMM_WORLD tags of the meetings of ncclCommInitRank (MPI_TAG_UB is at least 32767). */
constexpr int kTagBase = 31000, kTags = 1000;

struct comm_state {
    MPI_Comm mpi = MPI_COMM_NULL; /* the ranks, in NCCL's rank order */
    int rank = 0, ranks = 0;
    int device = 0;         /* current at ncclCommInitRank */
    bool aborted = false;   /* ncclCommAbort: queued collectives do nothing */
    std::size_t queued = 0; /* collectives queued and not yet run */
};

} // namespace

struct ncclComm {
    std::shared_ptr<comm_state> state;
};

namespace {

/* cudasim_nccl_fail_collective's countdown. */
int fail_collective = 0;

cudasim::live_handles<ncclComm_t> &comms() {
    static cudasim::live_handles<ncclComm_t> r{"NCCL communicators", {}};
    return r;
}

bool mpi_running(const char *what) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) return true;
    report("%s: MPI is not running (the simulator carries NCCL over MPI)", what);
    return false;
}

/* The start of a call: a fault on the device fails it as the library reports CUDA's errors. */
ncclResult_t begin(const char *what, ncclComm_t comm, bool needs_comm) {
    cudaError_t err = cudasim::begin_call();
    if (err != cudaSuccess) return ncclUnhandledCudaError;
    if (!needs_comm || comms().live.count(comm)) return ncclSuccess;
    report("%s: communicator %p is not a live NCCL communicator (never created, or destroyed)",
           what, (void *)comm);
    return ncclInvalidArgument;
}

/* The ranks' meeting: each sends its NCCL rank to the id's creator, which answers every rank with
 * the world ranks of all, in NCCL's rank order. */
ncclResult_t meet(const unique_id &id, int rank, int ranks, std::vector<int> &worlds) {
    int me = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    int tag = kTagBase + (int)(id.serial % kTags);
    worlds.assign((std::size_t)ranks, -1);
    if (me != id.world_rank) {
        if (MPI_Send(&rank, 1, MPI_INT, id.world_rank, tag, MPI_COMM_WORLD) != MPI_SUCCESS ||
            MPI_Recv(worlds.data(), ranks, MPI_INT, id.world_rank, tag, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return ncclSystemError;
        return worlds[(std::size_t)rank] == me ? ncclSuccess : ncclInvalidUsage;
    }
    worlds[(std::size_t)rank] = me;
    bool unique = true;
    for (int i = 1; i < ranks; i++) {
        int other = -1;
        MPI_Status status;
        if (MPI_Recv(&other, 1, MPI_INT, MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &status) !=
            MPI_SUCCESS)
            return ncclSystemError;
        if (other < 0 || other >= ranks || worlds[(std::size_t)other] != -1) unique = false;
        if (other >= 0 && other < ranks) worlds[(std::size_t)other] = status.MPI_SOURCE;
    }
    if (!unique) {
        report("ncclCommInitRank: two processes claim one rank of %d", ranks);
        worlds.assign((std::size_t)ranks, -1);
    }
    for (int i = 0; i < ranks; i++)
        if (i != rank && worlds[(std::size_t)i] >= 0 &&
            MPI_Send(worlds.data(), ranks, MPI_INT, worlds[(std::size_t)i], tag, MPI_COMM_WORLD) !=
                MPI_SUCCESS)
            return ncclSystemError;
    return unique ? ncclSuccess : ncclInvalidUsage;
}

/* The MPI type of a data type cumlp uses, or MPI_DATATYPE_NULL (reported). */
MPI_Datatype mpi_type(ncclDataType_t type, const char *what, std::size_t *size) {
    if (type == ncclFloat32) return *size = 4, MPI_FLOAT;
    if (type == ncclFloat64) return *size = 8, MPI_DOUBLE;
    report("%s: data type %d is not simulated (cumlp sends fp32)", what, (int)type);
    return MPI_DATATYPE_NULL;
}

/* Checks a collective's communicator, device and buffers at the call; returns its state. */
ncclResult_t check_collective(const char *what, ncclComm_t comm, const void *send, void *recv,
                              std::size_t bytes, cudasim::span spans[2],
                              std::shared_ptr<comm_state> &state) {
    ncclResult_t st = begin(what, comm, true);
    if (st != ncclSuccess) return st;
    if (fail_collective > 0 && --fail_collective == 0) return ncclSystemError;
    state = comm->state;
    if (state->device != cudasim::current_device_id()) {
        report("%s: the communicator belongs to device %d, but device %d is current", what,
               state->device, cudasim::current_device_id());
        return ncclInvalidUsage;
    }
    if (!cudasim::check_device(what, "sendbuff", send, bytes, &spans[0]) ||
        !cudasim::check_device(what, "recvbuff", recv, bytes, &spans[1]))
        return ncclInvalidArgument;
    return ncclSuccess;
}

/* Queues a collective; `transfer` runs the MPI call when the stream runs (unless the communicator
 * was aborted by then). */
template <class Transfer>
ncclResult_t queue(const char *what, cudaStream_t stream, std::shared_ptr<comm_state> state,
                   const cudasim::span spans[2], Transfer transfer) {
    /* counts the collective as queued for as long as the stream holds it (run or dropped) */
    auto held = std::shared_ptr<comm_state>(state.get(), [state](comm_state *s) { s->queued--; });
    state->queued++;
    cudasim::span send = spans[0], recv = spans[1];
    cudaError_t err = cudasim::enqueue_op(stream, what, [=]() {
        if (held->aborted) return cudaSuccess;
        if (!cudasim::still_live(what, "sendbuff", send) ||
            !cudasim::still_live(what, "recvbuff", recv))
            return cudaErrorIllegalAddress;
        int mpi_err = transfer(held->mpi);
        if (mpi_err == MPI_SUCCESS) return cudaSuccess;
        char text[MPI_MAX_ERROR_STRING];
        int length = 0;
        MPI_Error_string(mpi_err, text, &length);
        report("%s: the MPI transfer failed: %s", what, text);
        return cudaErrorUnknown;
    });
    return err == cudaSuccess ? ncclSuccess : ncclInvalidArgument;
}

/* Frees a communicator (destroyed or aborted), whatever the device's state. */
void release(ncclComm_t comm) {
    std::shared_ptr<comm_state> state = comm->state;
    int finalized = 1;
    MPI_Finalized(&finalized);
    if (!finalized && state->mpi != MPI_COMM_NULL) MPI_Comm_free(&state->mpi);
    comms().live.erase(comm);
    delete comm;
}

} // namespace

/* ---- the calls ------------------------------------------------------------------------------- */

void cudasim_nccl_fail_collective(int nth) {
    auto lock = cudasim::hold();
    fail_collective = nth;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId) {
    static std::uint32_t serial = 0;
    auto lock = cudasim::hold();
    ncclResult_t st = begin("ncclGetUniqueId", nullptr, false);
    if (st != ncclSuccess) return st;
    if (!uniqueId) return ncclInvalidArgument;
    if (!mpi_running("ncclGetUniqueId")) return ncclSystemError;
    unique_id id{};
    std::memcpy(id.magic, kMagic, sizeof id.magic);
    MPI_Comm_rank(MPI_COMM_WORLD, &id.world_rank);
    id.serial = serial++;
    std::memset(uniqueId, 0, sizeof *uniqueId);
    std::memcpy(uniqueId, &id, sizeof id);
    return ncclSuccess;
}

/* Blocks until every rank of the communicator has called it, as NCCL's does. */
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank) {
    int device = 0;
    {
        auto lock = cudasim::hold();
        ncclResult_t st = begin("ncclCommInitRank", nullptr, false);
        if (st != ncclSuccess) return st;
        device = cudasim::current_device_id();
    }
    if (!comm || nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
    *comm = nullptr;
    unique_id id;
    std::memcpy(&id, &commId, sizeof id);
    if (std::memcmp(id.magic, kMagic, sizeof id.magic) != 0) {
        report("ncclCommInitRank: the id was not made by ncclGetUniqueId");
        return ncclInvalidArgument;
    }
    if (!mpi_running("ncclCommInitRank")) return ncclSystemError;
    std::vector<int> worlds;
    ncclResult_t st = meet(id, rank, nranks, worlds);
    if (st != ncclSuccess) return st;
    MPI_Group world_group, group;
    MPI_Comm mpi = MPI_COMM_NULL;
    MPI_Comm_group(MPI_COMM_WORLD, &world_group);
    MPI_Group_incl(world_group, nranks, worlds.data(), &group);
    int err =
        MPI_Comm_create_group(MPI_COMM_WORLD, group, kTagBase + (int)(id.serial % kTags), &mpi);
    MPI_Group_free(&group);
    MPI_Group_free(&world_group);
    if (err != MPI_SUCCESS) return ncclSystemError;
    MPI_Comm_set_errhandler(mpi, MPI_ERRORS_RETURN);
    auto lock = cudasim::hold();
    auto state = std::make_shared<comm_state>();
    state->mpi = mpi;
    state->rank = rank;
    state->ranks = nranks;
    state->device = device;
    *comm = new ncclComm{state};
    comms().live.insert(*comm);
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream) {
    const char *what = "ncclAllReduce";
    auto lock = cudasim::hold();
    std::size_t size = 0;
    MPI_Datatype type = mpi_type(datatype, what, &size);
    if (type == MPI_DATATYPE_NULL) return ncclInvalidArgument;
    if (op != ncclSum) {
        report("%s: reduction %d is not simulated (cumlp sums)", what, (int)op);
        return ncclInvalidArgument;
    }
    cudasim::span spans[2]{};
    std::shared_ptr<comm_state> state;
    ncclResult_t st = check_collective(what, comm, sendbuff, recvbuff, count * size, spans, state);
    if (st != ncclSuccess || count == 0) return st;
    const void *in = sendbuff == recvbuff ? MPI_IN_PLACE : sendbuff;
    return queue(what, stream, state, spans, [=](MPI_Comm mpi) {
        return MPI_Allreduce(in, recvbuff, (int)count, type, MPI_SUM, mpi);
    });
}

ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm,
                           cudaStream_t stream) {
    const char *what = "ncclBroadcast";
    auto lock = cudasim::hold();
    std::size_t size = 0;
    MPI_Datatype type = mpi_type(datatype, what, &size);
    if (type == MPI_DATATYPE_NULL) return ncclInvalidArgument;
    cudasim::span spans[2]{};
    std::shared_ptr<comm_state> state;
    /* only the root's send buffer is read: the others may pass their receive buffer */
    ncclResult_t st = check_collective(what, comm, sendbuff ? sendbuff : recvbuff, recvbuff,
                                       count * size, spans, state);
    if (st != ncclSuccess || count == 0) return st;
    if (root < 0 || root >= state->ranks) return ncclInvalidArgument;
    bool copy = state->rank == root && sendbuff != recvbuff;
    return queue(what, stream, state, spans, [=](MPI_Comm mpi) {
        if (copy) std::memmove(recvbuff, sendbuff, count * size);
        return MPI_Bcast(recvbuff, (int)count, type, root, mpi);
    });
}

/* NCCL's documentation has it free the local resources; destroying a communicator whose
 * collectives are still queued is cumlp's bug (it waits for its stream first). */
ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    auto lock = cudasim::hold();
    if (!comms().live.count(comm)) return begin("ncclCommDestroy", comm, true);
    if (comm->state->queued)
        report("ncclCommDestroy: %zu collectives still queued on the communicator",
               comm->state->queued);
    release(comm);
    return ncclSuccess;
}

/* "aborts any operations that might still be running on the device": they do nothing. */
ncclResult_t ncclCommAbort(ncclComm_t comm) {
    auto lock = cudasim::hold();
    if (!comms().live.count(comm)) return begin("ncclCommAbort", comm, true);
    comm->state->aborted = true;
    release(comm);
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t result) {
    switch (result) {
    case ncclSuccess:
        return "no error";
    case ncclUnhandledCudaError:
        return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError:
        return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError:
        return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument:
        return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage:
        return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError:
        return "remote process exited or there was a network error";
    case ncclInProgress:
        return "NCCL operation in progress";
    default:
        return "unknown result code";
    }
}
