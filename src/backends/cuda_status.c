/* cuda_status.c - CUDA, cuBLAS and cuRAND statuses as cumlp statuses; see cuda_status.h. */
#include "cuda_status.h"

/* Errors after which the CUDA context is corrupt: every later call fails the same way. The
 * driver_types.h entries that say "leaves the process in an inconsistent state"; the newer ones
 * by value (stable across releases), so that older toolkits without the names still build. */
static int is_sticky(cudaError_t err) {
    switch ((int)err) {
    case 226: /* cudaErrorContained: a fault held by the GPU's error containment */
    case 721: /* cudaErrorTensorMemoryLeak */
    case 810: /* cudaErrorMpsClientTerminated */
    case 911: /* cudaErrorExternalDevice */
        return 1;
    default:
        break;
    }
    switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorContextIsDestroyed:
    case cudaErrorCudartUnloading:
        return 1;
    default:
        return 0;
    }
}

cumlp_status cumlp__cuda_status(cumlp_context *ctx, cudaError_t err, const char *what) {
    if (err == cudaSuccess) return CUMLP_SUCCESS;
    cudaGetLastError(); /* clear a non-sticky error so that later calls start clean */
    if (err == cudaErrorMemoryAllocation)
        return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "cuda backend: %s: out of device memory",
                            what);
    cumlp__error(ctx, CUMLP_ERROR_DEVICE, "cuda backend: %s: %s (%s)", what, cudaGetErrorName(err),
                 cudaGetErrorString(err));
    if (is_sticky(err)) cumlp__make_sticky(ctx, CUMLP_ERROR_DEVICE);
    return CUMLP_ERROR_DEVICE;
}

cumlp_status cumlp__library_status(cumlp_context *ctx, const char *library, int failed,
                                   int out_of_memory, const char *code, const char *what) {
    if (!failed) return CUMLP_SUCCESS;
    if (out_of_memory)
        return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "cuda backend: %s: %s is out of memory",
                            what, library);
    cudaError_t err = cudaPeekAtLastError();
    if (err != cudaSuccess) return cumlp__cuda_status(ctx, err, what);
    return cumlp__error(ctx, CUMLP_ERROR_DEVICE, "cuda backend: %s: %s failed: %s", what, library,
                        code);
}

const char *cumlp__curand_status_name(curandStatus_t st) {
    switch (st) {
    case CURAND_STATUS_SUCCESS:
        return "CURAND_STATUS_SUCCESS";
    case CURAND_STATUS_VERSION_MISMATCH:
        return "CURAND_STATUS_VERSION_MISMATCH";
    case CURAND_STATUS_NOT_INITIALIZED:
        return "CURAND_STATUS_NOT_INITIALIZED";
    case CURAND_STATUS_ALLOCATION_FAILED:
        return "CURAND_STATUS_ALLOCATION_FAILED";
    case CURAND_STATUS_TYPE_ERROR:
        return "CURAND_STATUS_TYPE_ERROR";
    case CURAND_STATUS_OUT_OF_RANGE:
        return "CURAND_STATUS_OUT_OF_RANGE";
    case CURAND_STATUS_LENGTH_NOT_MULTIPLE:
        return "CURAND_STATUS_LENGTH_NOT_MULTIPLE";
    case CURAND_STATUS_DOUBLE_PRECISION_REQUIRED:
        return "CURAND_STATUS_DOUBLE_PRECISION_REQUIRED";
    case CURAND_STATUS_LAUNCH_FAILURE:
        return "CURAND_STATUS_LAUNCH_FAILURE";
    case CURAND_STATUS_PREEXISTING_FAILURE:
        return "CURAND_STATUS_PREEXISTING_FAILURE";
    case CURAND_STATUS_INITIALIZATION_FAILED:
        return "CURAND_STATUS_INITIALIZATION_FAILED";
    case CURAND_STATUS_ARCH_MISMATCH:
        return "CURAND_STATUS_ARCH_MISMATCH";
    case CURAND_STATUS_INTERNAL_ERROR:
        return "CURAND_STATUS_INTERNAL_ERROR";
    }
    return "an unknown cuRAND status";
}
