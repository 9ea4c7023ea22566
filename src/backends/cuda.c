/*
 * cuda.c - the cuda backend's host glue: device, stream, device buffers, cuBLAS GEMMs,
 * cuRAND draws and the launches of the fused kernels (kernels/cuda_kernels.h).
 *
 * A context is bound to one device and one stream (the caller's or its own). Everything is
 * queued on that stream; only download, the loss read-back, check_finite and synchronize wait.
 * Every CUDA, cuBLAS and cuRAND return code is checked: out of memory becomes
 * CUMLP_ERROR_ALLOC_FAILED, a fault that leaves the device unusable (an illegal address, a
 * failed launch) poisons the context with a sticky CUMLP_ERROR_DEVICE.
 */
#include "cuda_status.h"
#include "internal.h"

#include "cuda_kernels.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <curand.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CUMLP_USE_NVTX
#include <nvtx3/nvToolsExt.h>
#define RANGE_PUSH(name) nvtxRangePushA(name)
#define RANGE_POP()      nvtxRangePop()
#else
#define RANGE_PUSH(name) ((void)0)
#define RANGE_POP()      ((void)0)
#endif

/* cuBLASLt's workspace for the epilogue GEMMs (what NVIDIA suggests for Hopper), allocated at the
 * first such GEMM, and how many algorithm choices the context remembers. */
#define LT_WORKSPACE_BYTES ((size_t)32 << 20)
#define LT_PLANS           64

/* What cuBLASLt's choice of algorithm depends on: one epilogue GEMM's case. */
typedef struct lt_key {
    int epilogue; /* cublasLtEpilogue_t */
    int trans_a;
    int m, n, k;
    int ab_type, d_type, compute;
    int64_t aux_ld;
    uint32_t alignment[4];   /* of A, B, C (= D) and D: the largest power of two, up to 256
                                bytes, that divides the pointer */
    uintptr_t aux_alignment; /* the same of the bias and aux pointers together */
} lt_key;

/* A remembered choice: the algorithm, or that cuBLASLt has none for the case. */
typedef struct lt_plan {
    lt_key key;
    int used, supported;
    cublasLtMatmulAlgo_t algo;
} lt_plan;

/* Host <-> device copies go through two pinned staging halves of this many floats each, so that
 * upload returns as soon as the caller's array is copied out and the copies overlap the memcpy. */
#define STAGING_FLOATS ((size_t)1 << 19)

typedef struct cuda_state {
    int device;
    cudaStream_t stream;
    int owns_stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    void *lt_workspace;   /* LT_WORKSPACE_BYTES of device memory, or NULL before the first use */
    void *blas_workspace; /* cuBLAS's workspace, ours from the first capture on (or NULL) */
    lt_plan lt_plans[LT_PLANS];
    int lt_next_plan; /* the slot the next new plan takes (round robin) */
    curandGenerator_t rng;
    void *workspace; /* device scratch of the reductions */
    size_t workspace_bytes;
    uint64_t scratch_generation; /* counts the (re)allocations of the scratch memory (workspace,
                                    lt_workspace) that a captured graph may point into */
    void *host_scalars;          /* pinned: the loss read-back (double) and the finite flag (int) */
    float *staging;              /* pinned, 2 x STAGING_FLOATS, allocated on first use */
    cudaEvent_t staging_free[2];
    cudaStream_t copy_stream; /* overlapped batch uploads */
    cudaEvent_t main_ready, slot_done[2];
    cudaEvent_t timer_begin, timer_end; /* timing events of timer_start/stop */
    int timer_started;                  /* timer_begin is recorded and not yet read */
    char name[256];
    int cc_major, cc_minor;
    size_t total_memory;
} cuda_state;

static cuda_state *state_of(const cumlp_context *ctx) {
    return (cuda_state *)ctx->backend_state;
}

/* ---- errors ---------------------------------------------------------------------------------
 * cuda_status.h turns every CUDA, cuBLAS and cuRAND status into a cumlp status and message. */

/* A launcher's int result (a cudaError_t). */
static cumlp_status launch_error(cumlp_context *ctx, int err, const char *what) {
    return cumlp__cuda_status(ctx, (cudaError_t)err, what);
}

/* Makes the context's device current, ignoring errors: for the frees and the shutdown, which
 * must release what they can even after a device fault. */
static void make_current(const cuda_state *s) {
    int current = -1;
    if (cudaGetDevice(&current) == cudaSuccess && current != s->device) cudaSetDevice(s->device);
}

/* Every op starts here: a poisoned context fails at once; otherwise its device is made current
 * (several contexts on different devices may share a thread, one after the other). */
static cumlp_status begin(cumlp_context *ctx) {
    if (ctx->sticky) return ctx->sticky;
    int current = -1;
    cudaError_t err = cudaGetDevice(&current);
    if (err == cudaSuccess && current != state_of(ctx)->device)
        err = cudaSetDevice(state_of(ctx)->device);
    return cumlp__cuda_status(ctx, err, "selecting the device");
}

/* ---- context ------------------------------------------------------------------------------- */

/* Frees whatever part of the state exists (init failures and shutdown). Errors are ignored:
 * after a device fault the frees fail, and there is nothing better to do. */
static void release(cuda_state *s) {
    if (s->stream) cudaStreamSynchronize(s->stream);
    if (s->copy_stream) cudaStreamSynchronize(s->copy_stream);
    cudaFree(s->workspace);
    cudaFree(s->lt_workspace);
    cudaFree(s->blas_workspace);
    cudaFreeHost(s->host_scalars);
    cudaFreeHost(s->staging);
    for (int i = 0; i < 2; i++) {
        if (s->staging_free[i]) cudaEventDestroy(s->staging_free[i]);
        if (s->slot_done[i]) cudaEventDestroy(s->slot_done[i]);
    }
    if (s->main_ready) cudaEventDestroy(s->main_ready);
    if (s->timer_begin) cudaEventDestroy(s->timer_begin);
    if (s->timer_end) cudaEventDestroy(s->timer_end);
    if (s->copy_stream) cudaStreamDestroy(s->copy_stream);
    if (s->rng) curandDestroyGenerator(s->rng);
    if (s->lt) cublasLtDestroy(s->lt);
    if (s->blas) cublasDestroy(s->blas);
    if (s->stream && s->owns_stream) cudaStreamDestroy(s->stream);
    cudaGetLastError();
    free(s);
}

static cumlp_status find_device(cumlp_context *ctx, int device) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        cudaGetLastError();
        return cumlp__error(ctx, CUMLP_ERROR_NO_DEVICE,
                            "cuda backend: no usable CUDA device: %s (%s)", cudaGetErrorName(err),
                            cudaGetErrorString(err));
    }
    if (count == 0)
        return cumlp__error(ctx, CUMLP_ERROR_NO_DEVICE, "cuda backend: no CUDA device found");
    if (device >= count)
        return cumlp__error(ctx, CUMLP_ERROR_NO_DEVICE,
                            "cuda backend: device %d does not exist (%d CUDA device%s found)",
                            device, count, count == 1 ? "" : "s");
    return CUMLP_SUCCESS;
}

static cumlp_status create_events(cumlp_context *ctx, cuda_state *s) {
    cudaError_t err = cudaStreamCreateWithFlags(&s->copy_stream, cudaStreamNonBlocking);
    for (int i = 0; i < 2 && err == cudaSuccess; i++) {
        err = cudaEventCreateWithFlags(&s->staging_free[i], cudaEventDisableTiming);
        if (err == cudaSuccess)
            err = cudaEventCreateWithFlags(&s->slot_done[i], cudaEventDisableTiming);
    }
    if (err == cudaSuccess) err = cudaEventCreateWithFlags(&s->main_ready, cudaEventDisableTiming);
    if (err == cudaSuccess) err = cudaEventCreate(&s->timer_begin);
    if (err == cudaSuccess) err = cudaEventCreate(&s->timer_end);
    return cumlp__cuda_status(ctx, err, "creating streams and events");
}

static cumlp_status create_libraries(cumlp_context *ctx, cuda_state *s) {
    cumlp_status st =
        cumlp__cublas_status(ctx, cublasCreate(&s->blas), "creating the cuBLAS handle");
    if (st == CUMLP_SUCCESS)
        st = cumlp__cublas_status(ctx, cublasSetStream(s->blas, s->stream),
                                  "binding cuBLAS to the stream");
    if (st == CUMLP_SUCCESS)
        st = cumlp__cublas_status(ctx, cublasLtCreate(&s->lt), "creating the cuBLASLt handle");
    if (st == CUMLP_SUCCESS)
        st = cumlp__curand_status(ctx,
                                  curandCreateGenerator(&s->rng, CURAND_RNG_PSEUDO_PHILOX4_32_10),
                                  "creating the cuRAND generator");
    if (st == CUMLP_SUCCESS)
        st = cumlp__curand_status(ctx, curandSetStream(s->rng, s->stream),
                                  "binding cuRAND to the stream");
    /* The legacy ordering is the one src/backends/rng.c reproduces on the host. */
    if (st == CUMLP_SUCCESS)
        st = cumlp__curand_status(ctx,
                                  curandSetGeneratorOrdering(s->rng, CURAND_ORDERING_PSEUDO_LEGACY),
                                  "setting the cuRAND ordering");
    return st;
}

/* A caller's stream must belong to the context's device: on another device every launch fails. */
static cumlp_status check_user_stream(cumlp_context *ctx, cudaStream_t stream, int device) {
#if CUDART_VERSION >= 12080
    int stream_device = -1;
    cumlp_status st = cumlp__cuda_status(ctx, cudaStreamGetDevice(stream, &stream_device),
                                         "querying options.stream");
    if (st == CUMLP_SUCCESS && stream_device != device)
        st = cumlp__error(ctx, CUMLP_ERROR_INVALID_VALUE,
                          "cuda backend: options.stream belongs to device %d, not to device %d",
                          stream_device, device);
    return st;
#else
    (void)ctx, (void)stream, (void)device; /* no cudaStreamGetDevice before CUDA 12.8 */
    return CUMLP_SUCCESS;
#endif
}

static cumlp_status setup(cumlp_context *ctx, cuda_state *s, const cumlp_context_options *o) {
    struct cudaDeviceProp prop;
    cudaError_t err = cudaSetDevice(s->device);
    if (err == cudaSuccess) err = cudaGetDeviceProperties(&prop, s->device);
    cumlp_status st = cumlp__cuda_status(ctx, err, "opening the device");
    if (st != CUMLP_SUCCESS) return st;
    snprintf(s->name, sizeof s->name, "%s", prop.name);
    s->cc_major = prop.major;
    s->cc_minor = prop.minor;
    s->total_memory = prop.totalGlobalMem;
    if (o->stream) {
        s->stream = (cudaStream_t)o->stream;
        st = check_user_stream(ctx, s->stream, s->device);
    } else {
        st = cumlp__cuda_status(ctx, cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking),
                                "creating the stream");
        s->owns_stream = st == CUMLP_SUCCESS;
    }
    if (st == CUMLP_SUCCESS) st = create_events(ctx, s);
    if (st == CUMLP_SUCCESS)
        st = cumlp__cuda_status(ctx, cudaHostAlloc(&s->host_scalars, 64, cudaHostAllocDefault),
                                "allocating pinned memory");
    if (st == CUMLP_SUCCESS) st = create_libraries(ctx, s);
    return st;
}

static cumlp_status cuda_init(cumlp_context *ctx, const cumlp_context_options *options) {
    ctx->backend_state = NULL;
    cumlp_status st = find_device(ctx, options->device);
    if (st != CUMLP_SUCCESS) return st;
    cuda_state *s = calloc(1, sizeof *s);
    if (!s) return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "cuda backend: out of host memory");
    s->device = options->device;
    st = setup(ctx, s, options);
    if (st != CUMLP_SUCCESS) {
        release(s);
        return st;
    }
    ctx->backend_state = s;
    return CUMLP_SUCCESS;
}

static void cuda_shutdown(cumlp_context *ctx) {
    cuda_state *s = state_of(ctx);
    if (!s) return;
    make_current(s);
    release(s);
    ctx->backend_state = NULL;
}

static cumlp_status cuda_describe(const cumlp_context *ctx, char *buf, size_t buf_size) {
    const cuda_state *s = state_of(ctx);
    snprintf(
        buf, buf_size, "cuda backend: device %d, %s, compute capability %d.%d, %.1f GiB, %s stream",
        s->device, s->name, s->cc_major, s->cc_minor,
        (double)s->total_memory / (1024.0 * 1024.0 * 1024.0), s->owns_stream ? "own" : "caller's");
    return CUMLP_SUCCESS;
}

static cumlp_status cuda_synchronize(cumlp_context *ctx) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    return cumlp__cuda_status(ctx, cudaStreamSynchronize(state_of(ctx)->stream), "synchronize");
}

static cumlp_status cuda_timer_start(cumlp_context *ctx) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    cuda_state *s = state_of(ctx);
    st = cumlp__cuda_status(ctx, cudaEventRecord(s->timer_begin, s->stream),
                            "recording a timer event");
    s->timer_started = st == CUMLP_SUCCESS;
    return st;
}

static cumlp_status cuda_timer_stop(cumlp_context *ctx, double *elapsed_ms) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    cuda_state *s = state_of(ctx);
    if (!s->timer_started)
        return cumlp__error(ctx, CUMLP_ERROR_INTERNAL,
                            "cuda backend: timer_stop without timer_start");
    s->timer_started = 0;
    float ms = 0;
    cudaError_t err = cudaEventRecord(s->timer_end, s->stream);
    if (err == cudaSuccess) err = cudaEventSynchronize(s->timer_end);
    if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, s->timer_begin, s->timer_end);
    *elapsed_ms = ms;
    return cumlp__cuda_status(ctx, err, "reading the timer events");
}

/* Records a new device allocation for cumlp_context_memory; if the table cannot grow, frees it
 * and fails. */
static cumlp_status track_device(cumlp_context *ctx, void **ptr, size_t bytes) {
    if (cumlp__memtrack_add(&ctx->memory, *ptr, bytes) == 0) return CUMLP_SUCCESS;
    cudaFree(*ptr);
    *ptr = NULL;
    return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "out of host memory");
}

/* Device scratch of at least `bytes`. Growing frees the old block once the stream is idle:
 * kernels queued earlier may still use it, and cudaFree is only documented to "may perform
 * implicit synchronization". */
static cumlp_status workspace(cumlp_context *ctx, size_t bytes, void **out) {
    cuda_state *s = state_of(ctx);
    if (bytes > s->workspace_bytes) {
        if (s->workspace) {
            cumlp_status st = cumlp__cuda_status(ctx, cudaStreamSynchronize(s->stream),
                                                 "growing the scratch memory");
            if (st != CUMLP_SUCCESS) return st;
        }
        cumlp__memtrack_remove(&ctx->memory, s->workspace);
        cudaFree(s->workspace);
        s->workspace = NULL;
        s->workspace_bytes = 0;
        cumlp_status st =
            cumlp__cuda_status(ctx, cudaMalloc(&s->workspace, bytes), "allocating scratch");
        if (st != CUMLP_SUCCESS) return st;
        st = track_device(ctx, &s->workspace, bytes);
        if (st != CUMLP_SUCCESS) return st;
        s->workspace_bytes = bytes;
        s->scratch_generation++;
    }
    *out = s->workspace;
    return CUMLP_SUCCESS;
}

/* ---- memory -------------------------------------------------------------------------------- */

static cumlp_status cuda_alloc(cumlp_context *ctx, size_t count, void **buffer) {
    *buffer = NULL;
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    if (count > SIZE_MAX / sizeof(float))
        return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "%zu elements overflow size_t", count);
    cudaError_t err = cudaMalloc(buffer, count * sizeof(float));
    if (err != cudaSuccess) {
        *buffer = NULL;
        cudaGetLastError();
        if (err == cudaErrorMemoryAllocation)
            return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED,
                                "cuda backend: out of device memory allocating %zu floats", count);
        return cumlp__cuda_status(ctx, err, "cudaMalloc");
    }
    return track_device(ctx, buffer, count * sizeof(float));
}

/* Waits for both streams first: the buffer may still be read or written by queued work (an
 * asynchronous forward pass, an overlapped upload), and cudaFree is only documented to "may
 * perform implicit synchronization". */
static void cuda_free(cumlp_context *ctx, void *buffer) {
    if (!buffer) return;
    cuda_state *s = state_of(ctx);
    make_current(s);
    cudaStreamSynchronize(s->stream);
    cudaStreamSynchronize(s->copy_stream);
    cumlp__memtrack_remove(&ctx->memory, buffer);
    cudaFree(buffer);
    cudaGetLastError();
}

/* The pinned staging halves, allocated on first use; NULL if pinned memory is not available
 * (the copies then go directly and wait). */
static float *staging(cuda_state *s) {
    if (!s->staging) {
        void *p = NULL;
        if (cudaHostAlloc(&p, 2 * STAGING_FLOATS * sizeof(float), cudaHostAllocDefault) !=
            cudaSuccess) {
            cudaGetLastError();
            return NULL;
        }
        s->staging = p;
    }
    return s->staging;
}

/* Direct copy, then wait: the fallback when no staging memory could be had. */
static cumlp_status copy_and_wait(cumlp_context *ctx, void *dst, const void *src, size_t bytes,
                                  enum cudaMemcpyKind kind, const char *what) {
    cuda_state *s = state_of(ctx);
    cudaError_t err = cudaMemcpyAsync(dst, src, bytes, kind, s->stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(s->stream);
    return cumlp__cuda_status(ctx, err, what);
}

static cumlp_status cuda_upload(cumlp_context *ctx, void *dst, const float *src, size_t count) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    cuda_state *s = state_of(ctx);
    float *stage = staging(s);
    if (!stage)
        return copy_and_wait(ctx, dst, src, count * sizeof(float), cudaMemcpyHostToDevice,
                             "upload");
    /* Chunk c goes through half c % 2 once that half's previous copy is done; the caller's
     * array is free when the loop ends, while the last copies may still be in flight. */
    cudaError_t err = cudaSuccess;
    for (size_t off = 0, c = 0; off < count && err == cudaSuccess; off += STAGING_FLOATS, c++) {
        size_t n = count - off < STAGING_FLOATS ? count - off : STAGING_FLOATS;
        float *half = stage + (c % 2) * STAGING_FLOATS;
        err = cudaEventSynchronize(s->staging_free[c % 2]);
        if (err != cudaSuccess) break;
        memcpy(half, src + off, n * sizeof(float));
        err = cudaMemcpyAsync((float *)dst + off, half, n * sizeof(float), cudaMemcpyHostToDevice,
                              s->stream);
        if (err == cudaSuccess) err = cudaEventRecord(s->staging_free[c % 2], s->stream);
    }
    return cumlp__cuda_status(ctx, err, "upload");
}

static cumlp_status cuda_download(cumlp_context *ctx, const void *src, float *dst, size_t count) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    cuda_state *s = state_of(ctx);
    float *stage = staging(s);
    if (!stage)
        return copy_and_wait(ctx, dst, src, count * sizeof(float), cudaMemcpyDeviceToHost,
                             "download");
    size_t chunks = (count + STAGING_FLOATS - 1) / STAGING_FLOATS;
    cudaError_t err = cudaSuccess;
    /* Chunk c + 1 is in flight while chunk c is copied out of its half. */
    for (size_t c = 0; c <= chunks && err == cudaSuccess; c++) {
        if (c < chunks) {
            size_t off = c * STAGING_FLOATS;
            size_t n = count - off < STAGING_FLOATS ? count - off : STAGING_FLOATS;
            err = cudaMemcpyAsync(stage + (c % 2) * STAGING_FLOATS, (const float *)src + off,
                                  n * sizeof(float), cudaMemcpyDeviceToHost, s->stream);
            if (err == cudaSuccess) err = cudaEventRecord(s->staging_free[c % 2], s->stream);
        }
        if (err == cudaSuccess && c > 0) {
            size_t prev = c - 1, off = prev * STAGING_FLOATS;
            size_t n = count - off < STAGING_FLOATS ? count - off : STAGING_FLOATS;
            err = cudaEventSynchronize(s->staging_free[prev % 2]);
            if (err == cudaSuccess)
                memcpy(dst + off, stage + (prev % 2) * STAGING_FLOATS, n * sizeof(float));
        }
    }
    return cumlp__cuda_status(ctx, err, "download");
}

static cumlp_status cuda_fill(cumlp_context *ctx, void *dst, size_t count, float value) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    return launch_error(ctx, cumlp__cuda_fill(state_of(ctx)->stream, dst, count, value), "fill");
}

static cumlp_status cuda_copy(cumlp_context *ctx, void *dst, const void *src, size_t count) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    return cumlp__cuda_status(ctx,
                              cudaMemcpyAsync(dst, src, count * sizeof(float),
                                              cudaMemcpyDeviceToDevice, state_of(ctx)->stream),
                              "copy");
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

/* cuBLAS's name of a storage format. */
static cudaDataType data_type(int storage) {
    switch (storage) {
    case CUMLP_STORAGE_BF16:
        return CUDA_R_16BF;
    case CUMLP_STORAGE_FP16:
        return CUDA_R_16F;
    default:
        return CUDA_R_32F;
    }
}

/* cublasGemmEx with fp32 compute: fp32 A, B and C (FP32 or TF32), or 16-bit A and B (both bf16 or
 * both fp16) into a C of their format or fp32, the combinations cuBLAS lists for
 * CUBLAS_COMPUTE_32F, run on the tensor cores with fp32 accumulation. */
static cumlp_status cuda_gemm(cumlp_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                              double alpha, const void *A, int lda, const void *B, int ldb,
                              double beta, void *C, int ldc, int ab_storage, int c_storage) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    cuda_state *s = state_of(ctx);
    /* Read the precision at every call: cumlp_context_set_precision may change it between calls.
     * fp32 operands: fp32 compute with the default math mode (no tensor-core down-conversion), or
     * TF32. 16-bit operands: fp32 compute, which uses the tensor cores; a 16-bit C must not make
     * cuBLAS reduce split-K partial sums in 16 bits (DISALLOW_REDUCED_PRECISION_REDUCTION: "force
     * any reductions to use the accumulator type and not output type", cublas_api.h). */
    int tf32 = ab_storage == CUMLP_STORAGE_NATIVE && ctx->precision == CUMLP_PRECISION_TF32;
    cublasComputeType_t compute = tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    cublasMath_t mode = tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
    if (c_storage != CUMLP_STORAGE_NATIVE)
        mode = (cublasMath_t)(mode | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    float a = (float)alpha, b = (float)beta;
    RANGE_PUSH("cumlp:gemm");
    cublasStatus_t bst = cublasSetMathMode(s->blas, mode);
    if (bst == CUBLAS_STATUS_SUCCESS)
        bst = cublasGemmEx(s->blas, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                           trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &a, A,
                           data_type(ab_storage), lda, B, data_type(ab_storage), ldb, &b, C,
                           data_type(c_storage), ldc, compute, CUBLAS_GEMM_DEFAULT);
    RANGE_POP();
    return cumlp__cublas_status(ctx, bst, "gemm");
}

/* ---- fused elementwise passes -------------------------------------------------------------- */

static cumlp_status cuda_bias_activation(cumlp_context *ctx, int storage, int activation,
                                         double slope, int rows, int cols, const void *P,
                                         const void *b, void *z_out, void *a_out) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    RANGE_PUSH("cumlp:bias_activation");
    int err = cumlp__cuda_bias_activation(state_of(ctx)->stream, storage, activation, (float)slope,
                                          rows, cols, P, b, z_out, a_out);
    RANGE_POP();
    return launch_error(ctx, err, "bias_activation");
}

/* Reads the device double the loss reduction left at `device_sum` (waits). */
static cumlp_status read_loss(cumlp_context *ctx, const double *device_sum, double *out) {
    cuda_state *s = state_of(ctx);
    cudaError_t err = cudaMemcpyAsync(s->host_scalars, device_sum, sizeof(double),
                                      cudaMemcpyDeviceToHost, s->stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(s->stream);
    if (err == cudaSuccess) memcpy(out, s->host_scalars, sizeof(double));
    return cumlp__cuda_status(ctx, err, "reading the loss");
}

/* The loss_delta launch; with step != NULL (a device cumlp_step_state) delta's scale is read from
 * it and the loss sum written into it, else the loss sum goes to scratch, whose address *sum_at
 * receives (NULL when with_loss is 0). */
static cumlp_status queue_loss_delta(cumlp_context *ctx, int loss, int activation, double slope,
                                     int rows, int cols, const void *Z, const void *A,
                                     const void *Y, void *delta, int delta_storage, void *db,
                                     double db_scale, double delta_scale, int with_loss,
                                     cumlp_step_state *step, double **sum_at) {
    /* Scratch: the reduction's partials, the per-column losses, then the loss sum. */
    size_t reduction = cumlp__cuda_reduction_workspace(rows, cols);
    size_t loss_at = reduction + (size_t)cols * sizeof(double);
    void *ws = NULL;
    cumlp_status st = workspace(ctx, loss_at + sizeof(double), &ws);
    if (st != CUMLP_SUCCESS) return st;
    double *device_sum = step        ? &step->loss_sum
                         : with_loss ? (double *)((char *)ws + loss_at)
                                     : NULL;
    RANGE_PUSH("cumlp:loss_delta");
    int err =
        cumlp__cuda_loss_delta(state_of(ctx)->stream, loss, activation, (float)slope, rows, cols, Z,
                               A, Y, delta, delta_storage, db, db_scale, (float)delta_scale,
                               step ? &step->delta_scale : NULL, device_sum, ws);
    RANGE_POP();
    if (sum_at) *sum_at = device_sum;
    return launch_error(ctx, err, "loss_delta");
}

static cumlp_status cuda_loss_delta(cumlp_context *ctx, int loss, int activation, double slope,
                                    int rows, int cols, const void *Z, const void *A, const void *Y,
                                    void *delta, int delta_storage, void *db, double db_scale,
                                    double delta_scale, double *loss_sum) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    double *device_sum = NULL;
    st = queue_loss_delta(ctx, loss, activation, slope, rows, cols, Z, A, Y, delta, delta_storage,
                          db, db_scale, delta_scale, loss_sum != NULL, NULL, &device_sum);
    if (st == CUMLP_SUCCESS && loss_sum) st = read_loss(ctx, device_sum, loss_sum);
    return st;
}

/* ---- the device-resident step (kernels/step_rule.h) ----------------------------------------- */

static cumlp_status cuda_loss_delta_step(cumlp_context *ctx, int loss, int activation, double slope,
                                         int rows, int cols, const void *Z, const void *A,
                                         const void *Y, void *delta, int delta_storage, void *db,
                                         double db_scale, void *step) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    return queue_loss_delta(ctx, loss, activation, slope, rows, cols, Z, A, Y, delta, delta_storage,
                            db, db_scale, 1.0, 1, (cumlp_step_state *)step, NULL);
}

static cumlp_status cuda_step_state_copy(cumlp_context *ctx, void *dst, const void *src,
                                         int to_device) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    return cumlp__cuda_status(
        ctx,
        cudaMemcpyAsync(dst, src, sizeof(cumlp_step_state),
                        to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost,
                        state_of(ctx)->stream),
        "copying the step state");
}

static cumlp_status cuda_step_decide(cumlp_context *ctx, void *step, const void *grads,
                                     size_t count, double batch_samples) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    cuda_state *s = state_of(ctx);
    void *ws = NULL;
    st = workspace(ctx, cumlp__cuda_sum_squares_workspace(count), &ws);
    if (st != CUMLP_SUCCESS) return st;
    RANGE_PUSH("cumlp:step_decide");
    int err = cumlp__cuda_sum_squares(s->stream, grads, count,
                                      &((cumlp_step_state *)step)->sum_squares, ws);
    if (!err) err = cumlp__cuda_step_decide(s->stream, step, batch_samples);
    RANGE_POP();
    return launch_error(ctx, err, "step_decide");
}

static cumlp_status cuda_optimizer_step_decided(cumlp_context *ctx, const void *step, int type,
                                                size_t count, void *param, const void *grad,
                                                void *const state[CUMLP_OPTIMIZER_MAX_STATES],
                                                void *param_copy, int copy_storage) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    float *s[CUMLP_OPTIMIZER_MAX_STATES];
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
        s[k] = state[k];
    RANGE_PUSH("cumlp:optimizer_step");
    int err = cumlp__cuda_optimizer_step_decided(state_of(ctx)->stream, type, step, count, param,
                                                 grad, s, param_copy, copy_storage);
    RANGE_POP();
    return launch_error(ctx, err, "optimizer_step");
}

static cumlp_status cuda_step_score(cumlp_context *ctx, void *step, int kind, int rows, int cols,
                                    const void *A, const void *Y) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    RANGE_PUSH("cumlp:step_score");
    int err = cumlp__cuda_step_score(state_of(ctx)->stream, step, kind, rows, cols, A, Y);
    RANGE_POP();
    return launch_error(ctx, err, "step_score");
}

static cumlp_status cuda_activation_backward(cumlp_context *ctx, int storage, int activation,
                                             double slope, int rows, int cols, const void *G,
                                             const void *Z, const void *A, void *delta, void *db,
                                             double db_scale) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    void *ws = NULL;
    st = workspace(ctx, cumlp__cuda_reduction_workspace(rows, cols), &ws);
    if (st != CUMLP_SUCCESS) return st;
    RANGE_PUSH("cumlp:activation_backward");
    int err =
        cumlp__cuda_activation_backward(state_of(ctx)->stream, storage, activation, (float)slope,
                                        rows, cols, G, Z, A, delta, db, db_scale, ws);
    RANGE_POP();
    return launch_error(ctx, err, "activation_backward");
}

/* ---- GEMMs with cuBLASLt epilogues ----------------------------------------------------------- */

/* One epilogue GEMM: D = epilogue(op(A) B), D m x n, op(A) m x k, B k x n (never transposed). */
typedef struct lt_call {
    cublasLtEpilogue_t epilogue;
    int trans_a;
    int m, n, k;
    const void *A, *B;
    void *D;
    int lda, ldb, ldd;
    int ab_storage, d_storage;
    void *bias;     /* the bias (forward) or the bias gradient (backward), of D's type */
    void *aux;      /* the ReLU bitmask or GELU's Z, or NULL */
    int64_t aux_ld; /* in bits for the bitmask, in elements for Z */
} lt_call;

/* The largest power of two, up to 256, that divides a pointer. cuBLASLt's heuristic assumes 256
 * bytes for A, B, C and D unless the preference says less (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*),
 * and a weight matrix inside the parameter arena, or a view of a batch, is often aligned to 4
 * bytes only; the bias and aux pointers it reads from the descriptor itself. */
static uint32_t lt_alignment(const void *p) {
    uintptr_t bits = 256 | (uintptr_t)p;
    return (uint32_t)(bits & (~bits + 1));
}

static lt_key lt_key_of(const cumlp_context *ctx, const lt_call *c) {
    lt_key key;
    memset(&key, 0, sizeof key); /* the padding too: keys are compared with memcmp */
    int tf32 = c->ab_storage == CUMLP_STORAGE_NATIVE && ctx->precision == CUMLP_PRECISION_TF32;
    key.epilogue = (int)c->epilogue;
    key.trans_a = c->trans_a;
    key.m = c->m, key.n = c->n, key.k = c->k;
    key.ab_type = (int)data_type(c->ab_storage);
    key.d_type = (int)data_type(c->d_storage);
    key.compute = (int)(tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);
    key.aux_ld = c->aux ? c->aux_ld : 0;
    key.alignment[0] = lt_alignment(c->A);
    key.alignment[1] = lt_alignment(c->B);
    key.alignment[2] = key.alignment[3] = lt_alignment(c->D);
    key.aux_alignment = lt_alignment((const void *)((uintptr_t)c->bias | (uintptr_t)c->aux));
    return key;
}

/* The descriptors of one call, made and destroyed around it (host memory only). */
typedef struct lt_descriptors {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, d;
} lt_descriptors;

static void lt_destroy(lt_descriptors *x) {
    if (x->op) cublasLtMatmulDescDestroy(x->op);
    if (x->a) cublasLtMatrixLayoutDestroy(x->a);
    if (x->b) cublasLtMatrixLayoutDestroy(x->b);
    if (x->d) cublasLtMatrixLayoutDestroy(x->d);
}

/* Sets one attribute of the operation, unless an earlier step failed. */
#define LT_SET(st, desc, attr, value)                                                              \
    ((st) == CUBLAS_STATUS_SUCCESS                                                                 \
         ? cublasLtMatmulDescSetAttribute(desc, attr, &(value), sizeof(value))                     \
         : (st))

static cublasStatus_t lt_describe(const lt_call *c, const lt_key *key, lt_descriptors *x) {
    memset(x, 0, sizeof *x);
    int32_t trans = c->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    uint32_t epilogue = (uint32_t)c->epilogue;
    /* cuBLASLt's bias and bias gradient are of D's type (cublasLt.h, BIAS_DATA_TYPE: fp32 with a
     * 16-bit D only in FP8 and integer kernels; an H200 found no algorithm for it) */
    int32_t bias_type = (int32_t)key->d_type;
    cublasStatus_t st =
        cublasLtMatmulDescCreate(&x->op, (cublasComputeType_t)key->compute, CUDA_R_32F);
    st = LT_SET(st, x->op, CUBLASLT_MATMUL_DESC_TRANSA, trans);
    st = LT_SET(st, x->op, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
    st = LT_SET(st, x->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, c->bias);
    st = LT_SET(st, x->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type);
    if (c->aux) {
        st = LT_SET(st, x->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, c->aux);
        st = LT_SET(st, x->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, c->aux_ld);
    }
    cudaDataType ab = (cudaDataType)key->ab_type, d = (cudaDataType)key->d_type;
    int a_rows = c->trans_a ? c->k : c->m, a_cols = c->trans_a ? c->m : c->k;
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&x->a, ab, (uint64_t)a_rows, (uint64_t)a_cols, c->lda);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&x->b, ab, (uint64_t)c->k, (uint64_t)c->n, c->ldb);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&x->d, d, (uint64_t)c->m, (uint64_t)c->n, c->ldd);
    return st;
}
#undef LT_SET

/* The search preferences: the workspace, the pointers' alignment, and for a 16-bit D no split-K
 * partial sums reduced in 16 bits (as cuda_gemm's DISALLOW_REDUCED_PRECISION_REDUCTION). */
static cublasStatus_t lt_preference(const lt_call *c, const lt_key *key,
                                    cublasLtMatmulPreference_t *pref) {
    static const cublasLtMatmulPreferenceAttributes_t aligned[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    uint64_t bytes = LT_WORKSPACE_BYTES;
    uint32_t reductions = CUBLASLT_REDUCTION_SCHEME_MASK;
    if (c->d_storage != CUMLP_STORAGE_NATIVE) reductions &= ~CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
    cublasStatus_t st = cublasLtMatmulPreferenceCreate(pref);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                  &bytes, sizeof bytes);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                  &reductions, sizeof reductions);
    for (int i = 0; i < 4 && st == CUBLAS_STATUS_SUCCESS; i++)
        st = cublasLtMatmulPreferenceSetAttribute(*pref, aligned[i], &key->alignment[i],
                                                  sizeof key->alignment[i]);
    return st;
}

/* Asks cuBLASLt for an algorithm; *found = 0: none for the case. */
static cublasStatus_t lt_choose(cuda_state *s, const lt_call *c, const lt_key *key,
                                const lt_descriptors *x, cublasLtMatmulAlgo_t *algo, int *found) {
    cublasLtMatmulPreference_t pref = NULL;
    cublasStatus_t st = lt_preference(c, key, &pref);
    cublasLtMatmulHeuristicResult_t result;
    memset(&result, 0, sizeof result);
    int count = 0;
    *found = 0;
    if (st == CUBLAS_STATUS_SUCCESS) {
        st = cublasLtMatmulAlgoGetHeuristic(s->lt, x->op, x->a, x->b, x->d, x->d, pref, 1, &result,
                                            &count);
        /* "no heuristic function available for current configuration", or a combination the
         * library refuses: no algorithm, not a fault */
        if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE)
            st = CUBLAS_STATUS_SUCCESS, count = 0;
    }
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    *found = st == CUBLAS_STATUS_SUCCESS && count > 0 && result.state == CUBLAS_STATUS_SUCCESS;
    if (*found) *algo = result.algo;
    return st;
}

/* The remembered plan of the case, made (and remembered) on first sight. */
static cumlp_status lt_plan_of(cumlp_context *ctx, const lt_call *c, const lt_descriptors *x,
                               const lt_key *key, const lt_plan **out) {
    cuda_state *s = state_of(ctx);
    for (int i = 0; i < LT_PLANS; i++) {
        if (s->lt_plans[i].used && memcmp(&s->lt_plans[i].key, key, sizeof *key) == 0) {
            *out = &s->lt_plans[i];
            return CUMLP_SUCCESS;
        }
    }
    lt_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.key = *key;
    plan.used = 1;
    cumlp_status st =
        cumlp__cublas_status(ctx, lt_choose(s, c, key, x, &plan.algo, &plan.supported),
                             "choosing an epilogue algorithm");
    if (st != CUMLP_SUCCESS) return st;
    lt_plan *slot = &s->lt_plans[s->lt_next_plan];
    s->lt_next_plan = (s->lt_next_plan + 1) % LT_PLANS;
    *slot = plan;
    *out = slot;
    return CUMLP_SUCCESS;
}

static cumlp_status lt_workspace(cumlp_context *ctx) {
    cuda_state *s = state_of(ctx);
    if (s->lt_workspace) return CUMLP_SUCCESS;
    cumlp_status st = cumlp__cuda_status(ctx, cudaMalloc(&s->lt_workspace, LT_WORKSPACE_BYTES),
                                         "allocating the cuBLASLt workspace");
    if (st != CUMLP_SUCCESS) {
        s->lt_workspace = NULL;
        return st;
    }
    s->scratch_generation++;
    return track_device(ctx, &s->lt_workspace, LT_WORKSPACE_BYTES);
}

/* Runs the call, or returns CUMLP_ERROR_NOT_SUPPORTED (nothing queued) when cuBLASLt has no
 * algorithm for it. */
static cumlp_status lt_matmul(cumlp_context *ctx, const lt_call *c) {
    cuda_state *s = state_of(ctx);
    lt_key key = lt_key_of(ctx, c);
    lt_descriptors x;
    const lt_plan *plan = NULL;
    cumlp_status st = cumlp__cublas_status(ctx, lt_describe(c, &key, &x), "describing an epilogue");
    if (st == CUMLP_SUCCESS) st = lt_plan_of(ctx, c, &x, &key, &plan);
    if (st == CUMLP_SUCCESS && !plan->supported)
        st = cumlp__error(ctx, CUMLP_ERROR_NOT_SUPPORTED,
                          "cuda backend: cuBLASLt has no algorithm for epilogue %d on a %d x %d x "
                          "%d GEMM",
                          (int)c->epilogue, c->m, c->n, c->k);
    if (st == CUMLP_SUCCESS) st = lt_workspace(ctx);
    if (st == CUMLP_SUCCESS) {
        const float one = 1.0f, zero = 0.0f;
        RANGE_PUSH("cumlp:gemm_epilogue");
        cublasStatus_t bst =
            cublasLtMatmul(s->lt, x.op, &one, c->A, x.a, c->B, x.b, &zero, c->D, x.d, c->D, x.d,
                           &plan->algo, s->lt_workspace, LT_WORKSPACE_BYTES, s->stream);
        RANGE_POP();
        st = cumlp__cublas_status(ctx, bst, "gemm epilogue");
    }
    lt_destroy(&x);
    return st;
}

/* The start of both epilogue ops: the context's checks, and an activation that has epilogues. */
static cumlp_status epilogue_begin(cumlp_context *ctx, int activation) {
    cumlp_status st = begin(ctx);
    if (st == CUMLP_SUCCESS && activation != CUMLP_ACT_RELU && activation != CUMLP_ACT_GELU)
        st = cumlp__error(ctx, CUMLP_ERROR_INTERNAL, "cuda backend: no epilogue for activation %d",
                          activation);
    return st;
}

static cumlp_status cuda_gemm_bias_activation(cumlp_context *ctx, int ab_storage, int out_storage,
                                              int activation, int m, int n, int k, const void *W,
                                              const void *X, const void *b, void *aux,
                                              void *a_out) {
    cumlp_status st = epilogue_begin(ctx, activation);
    if (st != CUMLP_SUCCESS) return st;
    int relu = activation == CUMLP_ACT_RELU;
    lt_call c = {
        .epilogue = relu ? (aux ? CUBLASLT_EPILOGUE_RELU_AUX_BIAS : CUBLASLT_EPILOGUE_RELU_BIAS)
                         : (aux ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_BIAS),
        .m = m,
        .n = n,
        .k = k,
        .A = W,
        .B = X,
        .D = a_out,
        .lda = m,
        .ldb = k,
        .ldd = m,
        .ab_storage = ab_storage,
        .d_storage = out_storage,
        .bias = (void *)b,
        .aux = aux,
        .aux_ld = relu ? cumlp__relu_mask_ld(m) : m,
    };
    return lt_matmul(ctx, &c);
}

static cumlp_status cuda_gemm_activation_backward(cumlp_context *ctx, int storage, int activation,
                                                  int m, int n, int k, const void *W, const void *G,
                                                  const void *aux, void *delta, void *db,
                                                  double db_scale) {
    cumlp_status st = epilogue_begin(ctx, activation);
    if (st != CUMLP_SUCCESS) return st;
    /* The bias gradient would be of delta's type: a 16-bit sum where cumlp's are fp32. */
    if (storage != CUMLP_STORAGE_NATIVE)
        return cumlp__error(
            ctx, CUMLP_ERROR_NOT_SUPPORTED,
            "cuda backend: no backward epilogue in 16 bits (cuBLASLt would write the "
            "bias gradient in 16 bits)");
    int relu = activation == CUMLP_ACT_RELU;
    /* D = (W^T G) .* f'(aux), k x n; the epilogue's bias gradient is the plain row sum of D. */
    lt_call c = {
        .epilogue = relu ? CUBLASLT_EPILOGUE_DRELU_BGRAD : CUBLASLT_EPILOGUE_DGELU_BGRAD,
        .trans_a = 1,
        .m = k,
        .n = n,
        .k = m,
        .A = W,
        .B = G,
        .D = delta,
        .lda = m,
        .ldb = m,
        .ldd = k,
        .ab_storage = storage,
        .d_storage = storage,
        .bias = db,
        .aux = (void *)aux,
        .aux_ld = relu ? cumlp__relu_mask_ld(k) : k,
    };
    st = lt_matmul(ctx, &c);
    if (st == CUMLP_SUCCESS && db_scale != 1.0)
        st = launch_error(
            ctx, cumlp__cuda_scale_shift(state_of(ctx)->stream, db, (size_t)k, db_scale, 0.0),
            "gemm_activation_backward");
    return st;
}

static cumlp_status cuda_optimizer_step(cumlp_context *ctx, const cumlp_step_params *p,
                                        size_t count, void *param, const void *grad,
                                        void *const state[CUMLP_OPTIMIZER_MAX_STATES],
                                        void *param_copy, int copy_storage) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    RANGE_PUSH("cumlp:optimizer_step");
    const cumlp_update_params_f q = cumlp__update_params_f(p);
    float *s[CUMLP_OPTIMIZER_MAX_STATES];
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
        s[k] = state[k];
    int err = cumlp__cuda_optimizer_step(state_of(ctx)->stream, p->type, &q, count, param, grad, s,
                                         param_copy, copy_storage);
    RANGE_POP();
    return launch_error(ctx, err, "optimizer_step");
}

static cumlp_status cuda_convert(cumlp_context *ctx, void *dst, int dst_storage, const void *src,
                                 int src_storage, size_t count) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    RANGE_PUSH("cumlp:convert");
    int err = cumlp__cuda_convert(state_of(ctx)->stream, dst, dst_storage, src, src_storage, count);
    RANGE_POP();
    return launch_error(ctx, err, "convert");
}

/* ---- random numbers, helpers --------------------------------------------------------------- */

/* count elements of the stream from element `first` into out: its 32-bit words as they are, or
 * cuRAND's uniform floats of them (the generator offset counts words either way). */
static cumlp_status generate(cumlp_context *ctx, int words, uint64_t seed, size_t first,
                             size_t count, void *out) {
    curandGenerator_t rng = state_of(ctx)->rng;
    curandStatus_t rst = curandSetPseudoRandomGeneratorSeed(rng, (unsigned long long)seed);
    if (rst == CURAND_STATUS_SUCCESS) rst = curandSetGeneratorOffset(rng, first);
    if (rst == CURAND_STATUS_SUCCESS)
        rst = words ? curandGenerate(rng, out, count) : curandGenerateUniform(rng, out, count);
    return cumlp__curand_status(ctx, rst, "random");
}

static cumlp_status cuda_random(cumlp_context *ctx, int distribution, uint64_t seed, size_t count,
                                void *out) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    RANGE_PUSH("cumlp:random");
    if (distribution != CUMLP_DIST_NORMAL) {
        st = generate(ctx, 0, seed, 0, count, out);
    } else {
        /* Not cuRAND's normals (its device transform uses fast sin and cos): the words, count of
         * them into out and the partner of an odd last one into scratch, then cumlp's own
         * transform in place, the one the host applies (kernels/philox.h). */
        int odd = count % 2 == 1;
        void *tail = NULL;
        st = generate(ctx, 1, seed, 0, count, out);
        if (st == CUMLP_SUCCESS && odd) st = workspace(ctx, sizeof(uint32_t), &tail);
        if (st == CUMLP_SUCCESS && odd) st = generate(ctx, 1, seed, count, 1, tail);
        if (st == CUMLP_SUCCESS)
            st = launch_error(ctx, cumlp__cuda_box_muller(state_of(ctx)->stream, out, count, tail),
                              "random");
    }
    RANGE_POP();
    return st;
}

static cumlp_status cuda_scale_shift(cumlp_context *ctx, void *x, size_t count, double scale,
                                     double shift) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    return launch_error(ctx, cumlp__cuda_scale_shift(state_of(ctx)->stream, x, count, scale, shift),
                        "scale_shift");
}

/* The sum of squares of x[0..count) in double, read back (waits). */
static cumlp_status sum_squares(cumlp_context *ctx, const void *x, size_t count, double *out) {
    cuda_state *s = state_of(ctx);
    size_t partials = cumlp__cuda_sum_squares_workspace(count);
    void *ws = NULL;
    cumlp_status st = workspace(ctx, partials + sizeof(double), &ws);
    if (st != CUMLP_SUCCESS) return st;
    double *device_sum = (double *)((char *)ws + partials);
    st = launch_error(ctx, cumlp__cuda_sum_squares(s->stream, x, count, device_sum, ws),
                      "check_finite");
    if (st != CUMLP_SUCCESS) return st;
    cudaError_t err = cudaMemcpyAsync(s->host_scalars, device_sum, sizeof(double),
                                      cudaMemcpyDeviceToHost, s->stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(s->stream);
    if (err == cudaSuccess) memcpy(out, s->host_scalars, sizeof(double));
    return cumlp__cuda_status(ctx, err, "reading the sum of squares");
}

static cumlp_status cuda_check_finite(cumlp_context *ctx, const void *x, size_t count,
                                      int *all_finite, double *sum_squares_out) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    if (sum_squares_out) {
        RANGE_PUSH("cumlp:sum_squares");
        st = sum_squares(ctx, x, count, sum_squares_out);
        RANGE_POP();
        /* fp32 squares summed in double overflow never: the sum is finite iff every x[i] is */
        if (st == CUMLP_SUCCESS) *all_finite = isfinite(*sum_squares_out) != 0;
        return st;
    }
    cuda_state *s = state_of(ctx);
    void *ws = NULL;
    st = workspace(ctx, sizeof(int), &ws);
    if (st != CUMLP_SUCCESS) return st;
    RANGE_PUSH("cumlp:check_finite");
    st = launch_error(ctx, cumlp__cuda_find_non_finite(s->stream, x, count, ws), "check_finite");
    int *flag = (int *)((char *)s->host_scalars + sizeof(double));
    if (st == CUMLP_SUCCESS) {
        cudaError_t err = cudaMemcpyAsync(flag, ws, sizeof(int), cudaMemcpyDeviceToHost, s->stream);
        if (err == cudaSuccess) err = cudaStreamSynchronize(s->stream);
        st = cumlp__cuda_status(ctx, err, "check_finite");
    }
    RANGE_POP();
    if (st == CUMLP_SUCCESS) *all_finite = *flag == 0;
    return st;
}

/* ---- CUDA graphs of the device-resident step ------------------------------------------------- */

/* cudaGraphInstantiate with flags and cudaGraphExecUpdate with a result struct are CUDA 12's: with
 * an older toolkit the group is left out and every step runs launch by launch. */
#if CUDART_VERSION >= 12000

/* An executable graph and the scratch memory it was captured with. */
typedef struct cuda_graph {
    cudaGraphExec_t exec;
    uint64_t scratch_generation;
} cuda_graph;

/* Before the first capture cuBLAS gets a workspace of ours ("cublasSetWorkspace ... is
 * recommended for ... CUDA graph capture", cuBLAS docs): its own may be allocated during the
 * capture, which a graph must not do. The same size as cuBLASLt's. */
static cumlp_status blas_workspace(cumlp_context *ctx) {
    cuda_state *s = state_of(ctx);
    if (s->blas_workspace) return CUMLP_SUCCESS;
    void *p = NULL;
    cumlp_status st = cumlp__cuda_status(ctx, cudaMalloc(&p, LT_WORKSPACE_BYTES),
                                         "allocating the cuBLAS workspace");
    if (st != CUMLP_SUCCESS) return st;
    st = track_device(ctx, &p, LT_WORKSPACE_BYTES);
    if (st != CUMLP_SUCCESS) return st;
    st = cumlp__cublas_status(ctx, cublasSetWorkspace(s->blas, p, LT_WORKSPACE_BYTES),
                              "setting the cuBLAS workspace");
    if (st != CUMLP_SUCCESS) { /* cuBLAS keeps its own */
        cumlp__memtrack_remove(&ctx->memory, p);
        cudaFree(p);
        return st;
    }
    s->blas_workspace = p;
    return CUMLP_SUCCESS;
}

/* Thread-local capture: the calls that would break it are prohibited on this thread only, so that
 * other threads' CUDA work (another context) goes on. */
static cumlp_status cuda_graph_begin(cumlp_context *ctx) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    if (blas_workspace(ctx) != CUMLP_SUCCESS) {
        if (ctx->sticky) return ctx->sticky;
        char why[CUMLP_MESSAGE_SIZE]; /* the step runs without a graph */
        snprintf(why, sizeof why, "%s", ctx->message);
        return cumlp__error(ctx, CUMLP_ERROR_NOT_SUPPORTED,
                            "cuda backend: no cuBLAS workspace for a graph (%s)", why);
    }
    cudaStream_t stream = state_of(ctx)->stream;
    cudaError_t err = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    /* the legacy default stream, given as options.stream, cannot be captured */
    if (err == cudaErrorStreamCaptureUnsupported) {
        cudaGetLastError();
        return cumlp__error(ctx, CUMLP_ERROR_NOT_SUPPORTED,
                            "cuda backend: the context's stream cannot be captured");
    }
    return cumlp__cuda_status(ctx, err, "beginning a capture");
}

static void destroy_graph(cuda_graph *g) {
    if (!g) return;
    cudaGraphExecDestroy(g->exec);
    cudaGetLastError();
    free(g);
}

/* The executable graph of `graph`: *out updated in place when the topology is the same, else a
 * new one. */
static cumlp_status instantiate(cumlp_context *ctx, cudaGraph_t graph, cuda_graph **out) {
    cuda_state *s = state_of(ctx);
    cuda_graph *g = *out;
    if (g) {
        cudaGraphExecUpdateResultInfo info;
        if (cudaGraphExecUpdate(g->exec, graph, &info) == cudaSuccess) {
            g->scratch_generation = s->scratch_generation;
            return CUMLP_SUCCESS;
        }
        cudaGetLastError(); /* another topology: a new executable graph */
        destroy_graph(g);
        *out = NULL;
    }
    g = calloc(1, sizeof *g);
    if (!g) return cumlp__error(ctx, CUMLP_ERROR_ALLOC_FAILED, "out of host memory");
    cumlp_status st = cumlp__cuda_status(ctx, cudaGraphInstantiate(&g->exec, graph, 0),
                                         "instantiating the step's graph");
    if (st != CUMLP_SUCCESS) {
        free(g);
        return st;
    }
    g->scratch_generation = s->scratch_generation;
    *out = g;
    return CUMLP_SUCCESS;
}

/* Ends the capture even on a poisoned context, so that the stream is not left capturing. */
static cumlp_status cuda_graph_end(cumlp_context *ctx, void **graph) {
    make_current(state_of(ctx));
    cudaGraph_t captured = NULL;
    cudaError_t err = cudaStreamEndCapture(state_of(ctx)->stream, &captured);
    if (ctx->sticky) {
        if (err == cudaSuccess) cudaGraphDestroy(captured);
        cudaGetLastError();
        return ctx->sticky;
    }
    if (err == cudaErrorStreamCaptureInvalidated || err == cudaErrorIllegalState) {
        cudaGetLastError();
        return cumlp__error(ctx, CUMLP_ERROR_NOT_SUPPORTED,
                            "cuda backend: the step's capture broke (%s)", cudaGetErrorName(err));
    }
    cumlp_status st = cumlp__cuda_status(ctx, err, "ending a capture");
    if (st != CUMLP_SUCCESS) return st;
    cuda_graph *g = *graph;
    st = instantiate(ctx, captured, &g);
    cudaGraphDestroy(captured);
    *graph = g;
    return st;
}

static cumlp_status cuda_graph_launch(cumlp_context *ctx, void *graph) {
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    cuda_state *s = state_of(ctx);
    const cuda_graph *g = graph;
    if (g->scratch_generation != s->scratch_generation)
        return cumlp__error(ctx, CUMLP_ERROR_NOT_SUPPORTED,
                            "cuda backend: the scratch memory moved since the graph's capture");
    return cumlp__cuda_status(ctx, cudaGraphLaunch(g->exec, s->stream), "launching the graph");
}

/* Waits for the stream first, as cuda_free does: a launch may still be queued. */
static void cuda_graph_free(cumlp_context *ctx, void *graph) {
    if (!graph) return;
    make_current(state_of(ctx));
    cudaStreamSynchronize(state_of(ctx)->stream);
    destroy_graph(graph);
}

#define CUDA_GRAPH_BEGIN  cuda_graph_begin
#define CUDA_GRAPH_END    cuda_graph_end
#define CUDA_GRAPH_LAUNCH cuda_graph_launch
#define CUDA_GRAPH_FREE   cuda_graph_free
#else
#define CUDA_GRAPH_BEGIN  NULL
#define CUDA_GRAPH_END    NULL
#define CUDA_GRAPH_LAUNCH NULL
#define CUDA_GRAPH_FREE   NULL
#endif

/* ---- profiler ranges ----------------------------------------------------------------------- */

#ifdef CUMLP_USE_NVTX
/* The phases of a step (forward, loss, backward, optimizer) as NVTX ranges: host-side markers
 * that enclose the per-op ranges above; they queue nothing and cannot fail. */
static void cuda_range_push(cumlp_context *ctx, const char *name) {
    (void)ctx;
    nvtxRangePushA(name);
}

static void cuda_range_pop(cumlp_context *ctx) {
    (void)ctx;
    nvtxRangePop();
}
#define CUDA_RANGE_PUSH_OP cuda_range_push
#define CUDA_RANGE_POP_OP  cuda_range_pop
#else
#define CUDA_RANGE_PUSH_OP NULL
#define CUDA_RANGE_POP_OP  NULL
#endif

/* ---- overlapped batch uploads -------------------------------------------------------------- */

static cumlp_status cuda_host_alloc(cumlp_context *ctx, size_t bytes, void **ptr) {
    *ptr = NULL;
    cumlp_status st = begin(ctx);
    if (st != CUMLP_SUCCESS) return st;
    st = cumlp__cuda_status(ctx, cudaHostAlloc(ptr, bytes, cudaHostAllocDefault),
                            "pinned host_alloc");
    if (st != CUMLP_SUCCESS) *ptr = NULL;
    return st;
}

/* Waits for the copy stream first, as cuda_free does for device memory: an overlapped upload may
 * still be queued to read this memory, and the caller need not have waited for its slot. */
static void cuda_host_free(cumlp_context *ctx, void *ptr) {
    if (!ptr) return;
    cuda_state *s = state_of(ctx);
    make_current(s);
    cudaStreamSynchronize(s->copy_stream);
    cudaFreeHost(ptr);
    cudaGetLastError();
}

static cumlp_status check_slot(cumlp_context *ctx, int slot) {
    if (slot == 0 || slot == 1) return CUMLP_SUCCESS;
    return cumlp__error(ctx, CUMLP_ERROR_INTERNAL, "cuda backend: upload slot %d is not 0 or 1",
                        slot);
}

static cumlp_status cuda_upload_async(cumlp_context *ctx, int slot, void *dst, const float *src,
                                      size_t count) {
    cumlp_status st = begin(ctx);
    if (st == CUMLP_SUCCESS) st = check_slot(ctx, slot);
    if (st != CUMLP_SUCCESS) return st;
    cuda_state *s = state_of(ctx);
    /* The copy waits for the work already queued (which may still read dst). */
    cudaError_t err = cudaEventRecord(s->main_ready, s->stream);
    if (err == cudaSuccess) err = cudaStreamWaitEvent(s->copy_stream, s->main_ready, 0);
    if (err == cudaSuccess)
        err = cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyHostToDevice,
                              s->copy_stream);
    if (err == cudaSuccess) err = cudaEventRecord(s->slot_done[slot], s->copy_stream);
    return cumlp__cuda_status(ctx, err, "upload_async");
}

static cumlp_status cuda_upload_join(cumlp_context *ctx, int slot) {
    cumlp_status st = begin(ctx);
    if (st == CUMLP_SUCCESS) st = check_slot(ctx, slot);
    if (st != CUMLP_SUCCESS) return st;
    cuda_state *s = state_of(ctx);
    return cumlp__cuda_status(ctx, cudaStreamWaitEvent(s->stream, s->slot_done[slot], 0),
                              "upload_join");
}

static cumlp_status cuda_upload_host_wait(cumlp_context *ctx, int slot) {
    cumlp_status st = begin(ctx);
    if (st == CUMLP_SUCCESS) st = check_slot(ctx, slot);
    if (st != CUMLP_SUCCESS) return st;
    return cumlp__cuda_status(ctx, cudaEventSynchronize(state_of(ctx)->slot_done[slot]),
                              "upload_host_wait");
}

static const cumlp_backend_ops cuda_ops = {
    .name = "cuda",
    .elem_size = sizeof(float),
    .precisions = 1u << CUMLP_PRECISION_FP32 | 1u << CUMLP_PRECISION_TF32 |
                  1u << CUMLP_PRECISION_BF16 | 1u << CUMLP_PRECISION_FP16,
    .init = cuda_init,
    .shutdown = cuda_shutdown,
    .describe = cuda_describe,
    .synchronize = cuda_synchronize,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .fill = cuda_fill,
    .copy = cuda_copy,
    .gemm = cuda_gemm,
    .bias_activation = cuda_bias_activation,
    .loss_delta = cuda_loss_delta,
    .activation_backward = cuda_activation_backward,
    .optimizer_step = cuda_optimizer_step,
    .random = cuda_random,
    .scale_shift = cuda_scale_shift,
    .check_finite = cuda_check_finite,
    .convert = cuda_convert,
    .host_alloc = cuda_host_alloc,
    .host_free = cuda_host_free,
    .upload_async = cuda_upload_async,
    .upload_join = cuda_upload_join,
    .upload_host_wait = cuda_upload_host_wait,
    .timer_start = cuda_timer_start,
    .timer_stop = cuda_timer_stop,
    .gelu_tanh = 1,
    .gemm_bias_activation = cuda_gemm_bias_activation,
    .gemm_activation_backward = cuda_gemm_activation_backward,
    .loss_delta_step = cuda_loss_delta_step,
    .step_state_copy = cuda_step_state_copy,
    .step_decide = cuda_step_decide,
    .optimizer_step_decided = cuda_optimizer_step_decided,
    .step_score = cuda_step_score,
    .graph_begin = CUDA_GRAPH_BEGIN,
    .graph_end = CUDA_GRAPH_END,
    .graph_launch = CUDA_GRAPH_LAUNCH,
    .graph_free = CUDA_GRAPH_FREE,
    .range_push = CUDA_RANGE_PUSH_OP,
    .range_pop = CUDA_RANGE_POP_OP,
};

const cumlp_backend_ops *cumlp__backend_cuda(void) {
    return &cuda_ops;
}

void *cumlp__cuda_stream(const cumlp_context *ctx) {
    return state_of(ctx)->stream;
}

int cumlp__cuda_device(const cumlp_context *ctx) {
    return state_of(ctx)->device;
}
