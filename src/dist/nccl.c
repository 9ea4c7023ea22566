/*
 * nccl.c - the NCCL transport of the cuda backend (built with MPI, NCCL and the cuda backend):
 * the NCCL calls of data-parallel training, each on the context's device and stream. comm.c
 * bootstraps the communicator over MPI and agrees on every step that may fail on one rank.
 */
#include "backends/cuda_status.h"
#include "dist/dist.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <string.h>

_Static_assert(CUMLP_NCCL_ID_BYTES == sizeof(ncclUniqueId), "an ncclUniqueId travels as bytes");

/* NCCL binds a communicator to the device that is current when it is created, and its calls
 * expect that device: a poisoned context fails at once, else its device is made current. */
static cumlp_status begin(cumlp_context *ctx) {
    if (ctx->sticky) return ctx->sticky;
    return cumlp__cuda_status(ctx, cudaSetDevice(cumlp__cuda_device(ctx)), "selecting the device");
}

cumlp_status cumlp__nccl_unique_id(cumlp_context *ctx, void *id) {
    cumlp_status st = begin(ctx);
    ncclUniqueId unique;
    if (st == CUMLP_SUCCESS)
        st = cumlp__nccl_status(ctx, ncclGetUniqueId(&unique), "ncclGetUniqueId");
    if (st == CUMLP_SUCCESS) memcpy(id, &unique, sizeof unique);
    return st;
}

cumlp_status cumlp__nccl_init(cumlp_context *ctx, const void *id, int rank, int ranks,
                              void **comm) {
    *comm = NULL;
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    ncclUniqueId unique;
    memcpy(&unique, id, sizeof unique);
    ncclComm_t nccl = NULL;
    st = cumlp__nccl_status(ctx, ncclCommInitRank(&nccl, ranks, unique, rank), "ncclCommInitRank");
    if (st == CUMLP_SUCCESS) *comm = nccl;
    return st;
}

cumlp_status cumlp__nccl_allreduce(cumlp_context *ctx, void *comm, void *buffer, size_t count) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    return cumlp__nccl_status(ctx,
                              ncclAllReduce(buffer, buffer, count, ncclFloat32, ncclSum,
                                            (ncclComm_t)comm,
                                            (cudaStream_t)cumlp__cuda_stream(ctx)),
                              "ncclAllReduce");
}

cumlp_status cumlp__nccl_broadcast(cumlp_context *ctx, void *comm, void *buffer, size_t count) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    return cumlp__nccl_status(ctx,
                              ncclBroadcast(buffer, buffer, count, ncclFloat32, 0, (ncclComm_t)comm,
                                            (cudaStream_t)cumlp__cuda_stream(ctx)),
                              "ncclBroadcast");
}

/* Errors are ignored, as the cuda backend's frees ignore them: after a fault there is nothing
 * better to do than release what can be released. */
void cumlp__nccl_destroy(cumlp_context *ctx, void *comm, int abort) {
    if (!comm) return;
    cudaSetDevice(cumlp__cuda_device(ctx));
    if (abort) {
        ncclCommAbort((ncclComm_t)comm);
    } else {
        /* the communicator's queued collectives finish first */
        cudaStreamSynchronize((cudaStream_t)cumlp__cuda_stream(ctx));
        ncclCommDestroy((ncclComm_t)comm);
    }
    cudaGetLastError();
}
