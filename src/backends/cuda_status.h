/*
 * cuda_status.h - every status the cuda backend's libraries return, turned into a cumlp status and
 * message in one place: the CUDA runtime's cudaError_t (with the faults that poison a context),
 * and, through one generic checker, the libraries' own status types (cuBLAS, cuRAND and, with
 * data-parallel training, NCCL; cuBLASLt adds an adapter here). Messages read
 * "cuda backend: <what>: <reason>".
 */
#ifndef CUMLP_CUDA_STATUS_H
#define CUMLP_CUDA_STATUS_H

#include "internal.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <curand.h>

/* SUCCESS for cudaSuccess; out of memory is ALLOC_FAILED; any other error is DEVICE, and an error
 * after which the CUDA context is corrupt also poisons ctx (sticky). Clears a non-sticky error so
 * that later calls start clean. */
cumlp_status cumlp__cuda_status(cumlp_context *ctx, cudaError_t err, const char *what);

/* The generic checker: a library call that `failed` with the status named `code` becomes
 * ALLOC_FAILED when it is the library's out-of-memory status, else DEVICE, reported as the
 * device fault behind it when the runtime has one (a library failure may hide a sticky fault). */
cumlp_status cumlp__library_status(cumlp_context *ctx, const char *library, int failed,
                                   int out_of_memory, const char *code, const char *what);

/* The name of a cuRAND status ("CURAND_STATUS_LAUNCH_FAILURE"); cuRAND has no such call. */
const char *cumlp__curand_status_name(curandStatus_t st);

static inline cumlp_status cumlp__cublas_status(cumlp_context *ctx, cublasStatus_t st,
                                                const char *what) {
    return cumlp__library_status(ctx, "cuBLAS", st != CUBLAS_STATUS_SUCCESS,
                                 st == CUBLAS_STATUS_ALLOC_FAILED, cublasGetStatusName(st), what);
}

static inline cumlp_status cumlp__curand_status(cumlp_context *ctx, curandStatus_t st,
                                                const char *what) {
    return cumlp__library_status(ctx, "cuRAND", st != CURAND_STATUS_SUCCESS,
                                 st == CURAND_STATUS_ALLOCATION_FAILED,
                                 cumlp__curand_status_name(st), what);
}

#ifdef CUMLP_HAVE_NCCL
#include <nccl.h>

/* NCCL's failures: one with a CUDA fault behind it (ncclUnhandledCudaError, or a fault the runtime
 * holds) through the generic checker, as the device's; the others (a system or remote error, an
 * invalid argument or use) are CUMLP_ERROR_COMMUNICATION. NCCL has no out-of-memory status. */
static inline cumlp_status cumlp__nccl_status(cumlp_context *ctx, ncclResult_t st,
                                              const char *what) {
    if (st == ncclSuccess) return CUMLP_SUCCESS;
    if (st == ncclUnhandledCudaError || cudaPeekAtLastError() != cudaSuccess)
        return cumlp__library_status(ctx, "NCCL", 1, 0, ncclGetErrorString(st), what);
    return cumlp__error(ctx, CUMLP_ERROR_COMMUNICATION, "cuda backend: %s: NCCL failed: %s", what,
                        ncclGetErrorString(st));
}
#endif

/* The context's stream (a cudaStream_t) and device, for the NCCL transport (src/dist/nccl.c);
 * defined in cuda.c. */
void *cumlp__cuda_stream(const cumlp_context *ctx);
int cumlp__cuda_device(const cumlp_context *ctx);

#endif /* CUMLP_CUDA_STATUS_H */
