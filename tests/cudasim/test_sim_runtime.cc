/* ctest-labels: unit */
/*
 * The simulator's host half (runtime.cc, cublas.cc, curand.cc): each host-side bug cumlp could
 * make is planted here and must be caught (reported as "cudasim: ..." and failed as on a GPU):
 * a host pointer given as device memory, a copy of the wrong kind or past an allocation's end,
 * an overlapping copy, a use after free, a double free, a missing wait between streams, a pinned
 * staging buffer rewritten too early (or, in the eager schedule, too late). The rest checks what
 * cumlp relies on: event timing rules, fault injection, GEMM against a naive loop (TF32 rounding
 * and the 16-bit formats included), cuRAND against cumlp's host Philox, the device count, stream
 * capture and graph replay (what a capture forbids, a replay after a free), and the report of
 * device memory never freed at exit.
 */
#include "cudasim.h"
#include "cudasim_control.h"
#include "harness.h"
#include "host.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <curand.h>

extern "C" {
#include "backends/rng.h"
}

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#define CHECK_ERR(expr, expected)                                                                  \
    do {                                                                                           \
        cudaError_t check_err_ = (expr);                                                           \
        CHECK_MSG(check_err_ == (expected), "got %s, expected %s", cudaGetErrorName(check_err_),   \
                  cudaGetErrorName(expected));                                                     \
    } while (0)

#define CHECK_CUDA(expr) CHECK_ERR(expr, cudaSuccess)

#define CHECK_BLAS(expr, expected)                                                                 \
    do {                                                                                           \
        cublasStatus_t check_blas_ = (expr);                                                       \
        CHECK_MSG(check_blas_ == (expected), "got %s", cublasGetStatusName(check_blas_));          \
    } while (0)

#define CHECK_RAND(expr, expected)                                                                 \
    do {                                                                                           \
        curandStatus_t check_rand_ = (expr);                                                       \
        CHECK_MSG(check_rand_ == (expected), "got cuRAND status %d", (int)check_rand_);            \
    } while (0)

/* Checks that `body` makes the simulator report exactly `n` faults. */
#define CHECK_REPORTS(n, body)                                                                     \
    do {                                                                                           \
        int check_before_ = cudasim_error_count();                                                 \
        body;                                                                                      \
        CHECK_MSG(cudasim_error_count() - check_before_ == (n), "%d reports, expected %d",         \
                  cudasim_error_count() - check_before_, (n));                                     \
    } while (0)

static const size_t kBytes = 64 * sizeof(float);

/* The eager schedule runs each operation when it is queued: the bugs that need queued work to run
 * late (a free, a missing wait) go unseen in it, as on an idle GPU, and others show instead. */
static const bool eager = cudasim::eager();

static float *device_floats(size_t n) {
    void *p = nullptr;
    CHECK_CUDA(cudaMalloc(&p, n * sizeof(float)));
    return static_cast<float *>(p);
}

static float *pinned_floats(size_t n) {
    void *p = nullptr;
    CHECK_CUDA(cudaHostAlloc(&p, n * sizeof(float), cudaHostAllocDefault));
    return static_cast<float *>(p);
}

static cudaStream_t new_stream(void) {
    cudaStream_t s = nullptr;
    CHECK_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return s;
}

/* Into pageable memory the copy is synchronous: no stream synchronization needed. */
static std::vector<float> download(const float *d, size_t n, cudaStream_t s) {
    std::vector<float> out(n);
    CHECK_CUDA(cudaMemcpyAsync(out.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost, s));
    return out;
}

static void upload(float *d, const std::vector<float> &h, cudaStream_t s) {
    CHECK_CUDA(cudaMemcpyAsync(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice, s));
}

static std::vector<float> iota(size_t n, float first) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++)
        v[i] = first + (float)i;
    return v;
}

/* ---- planted bugs: pointers ------------------------------------------------------------------ */

static void gemm_1x1(cublasHandle_t h, const float *A, const float *B, float *C) {
    const float one = 1.0f, zero = 0.0f;
    CHECK_BLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, A, CUDA_R_32F, 1, B,
                            CUDA_R_32F, 1, &zero, C, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT),
               CUBLAS_STATUS_SUCCESS);
}

static void test_host_pointer_as_device_memory(void) {
    float host[64] = {0}, other[64] = {0};
    float *d = device_floats(64);
    cudaStream_t s = new_stream();
    CHECK_REPORTS(1, CHECK_ERR(cudaMemcpyAsync(other, host, kBytes, cudaMemcpyHostToDevice, s),
                               cudaErrorInvalidValue));
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidValue);
    CHECK_ERR(cudaGetLastError(), cudaSuccess);
    CHECK_REPORTS(1, CHECK_ERR(cudaMemsetAsync(host, 0, kBytes, s), cudaErrorInvalidValue));
    cudaGetLastError();
    /* cuBLAS does not check pointers: the call succeeds, the product faults when it runs. */
    cublasHandle_t h = nullptr;
    CHECK_BLAS(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    CHECK_BLAS(cublasSetStream(h, s), CUBLAS_STATUS_SUCCESS);
    CHECK_REPORTS(1, gemm_1x1(h, d, host, d + 1));
    CHECK_ERR(cudaStreamSynchronize(s), cudaErrorIllegalAddress);
    void *p = nullptr;
    CHECK_ERR(cudaMalloc(&p, 4), cudaErrorIllegalAddress); /* sticky */
    cudasim_reset();
    CHECK_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_CUDA(cudaFree(d));
}

static void test_copy_of_wrong_kind(void) {
    std::vector<float> host(64, 1.0f);
    float *d = device_floats(64), *e = device_floats(64);
    cudaStream_t s = new_stream();
    /* Arguments swapped: the device pointer given as the host destination. */
    CHECK_REPORTS(1, CHECK_ERR(cudaMemcpyAsync(d, host.data(), kBytes, cudaMemcpyDeviceToHost, s),
                               cudaErrorInvalidValue));
    CHECK_REPORTS(1, CHECK_ERR(cudaMemcpyAsync(e, d, kBytes, cudaMemcpyHostToDevice, s),
                               cudaErrorInvalidValue));
    CHECK_REPORTS(1, CHECK_ERR(cudaMemcpyAsync(e, host.data(), kBytes, cudaMemcpyDeviceToDevice, s),
                               cudaErrorInvalidValue));
    CHECK_REPORTS(0, CHECK_ERR(cudaMemcpyAsync(e, d, kBytes, (cudaMemcpyKind)7, s),
                               cudaErrorInvalidMemcpyDirection));
    cudaGetLastError();
    /* cudaMemcpyDefault infers the kinds. */
    CHECK_CUDA(cudaMemcpyAsync(d, host.data(), kBytes, cudaMemcpyDefault, s));
    CHECK(download(d, 64, s) == host);
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_CUDA(cudaFree(d));
    CHECK_CUDA(cudaFree(e));
}

static void test_copy_past_the_end(void) {
    unsigned char host[128] = {0};
    void *d = nullptr;
    CHECK_CUDA(cudaMalloc(&d, 100));
    cudaStream_t s = new_stream();
    CHECK_REPORTS(1, CHECK_ERR(cudaMemcpyAsync(d, host, 104, cudaMemcpyHostToDevice, s),
                               cudaErrorInvalidValue));
    CHECK_REPORTS(1, CHECK_ERR(cudaMemcpyAsync(host, (char *)d + 48, 64, cudaMemcpyDeviceToHost, s),
                               cudaErrorInvalidValue));
    CHECK_REPORTS(1, CHECK_ERR(cudaMemsetAsync(d, 0, 101, s), cudaErrorInvalidValue));
    float *pinned = pinned_floats(16);
    CHECK_REPORTS(1, CHECK_ERR(cudaMemcpyAsync(d, pinned, 68, cudaMemcpyHostToDevice, s),
                               cudaErrorInvalidValue));
    cudaGetLastError();
    CHECK_REPORTS(0, CHECK_CUDA(cudaMemcpyAsync(d, host, 100, cudaMemcpyHostToDevice, s)));
    CHECK_CUDA(cudaStreamSynchronize(s));
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_CUDA(cudaFreeHost(pinned));
    CHECK_CUDA(cudaFree(d));
}

/* "The memory areas may not overlap" (cudaMemcpyAsync): the reviewer's case, a copy one float
 * up within one allocation. */
static void test_overlapping_copy(void) {
    float *d = device_floats(64);
    cudaStream_t s = new_stream();
    CHECK_REPORTS(
        1, CHECK_ERR(cudaMemcpyAsync(d + 1, d, 32 * sizeof(float), cudaMemcpyDeviceToDevice, s),
                     cudaErrorInvalidValue));
    CHECK_REPORTS(
        1, CHECK_ERR(cudaMemcpyAsync(d, d, 4, cudaMemcpyDeviceToDevice, s), cudaErrorInvalidValue));
    cudaGetLastError();
    CHECK_REPORTS(
        0, CHECK_CUDA(cudaMemcpyAsync(d + 32, d, 32 * sizeof(float), cudaMemcpyDeviceToDevice, s)));
    CHECK_CUDA(cudaStreamSynchronize(s));
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_CUDA(cudaFree(d));
}

/* A pinned buffer rewritten by the host after the copy out of it was queued (the reviewer's case):
 * the lazy schedules run the copy late, so it sees the late write; the eager one has run it, so
 * it does not, as a GPU that was idle would not. */
static void test_host_write_after_queuing_a_copy(void) {
    float *pinned = pinned_floats(1), *d = device_floats(1), out = 0;
    cudaStream_t s = new_stream();
    *pinned = 1.0f;
    CHECK_CUDA(cudaMemcpyAsync(d, pinned, sizeof(float), cudaMemcpyHostToDevice, s));
    *pinned = 2.0f; /* the bug: the copy may have run already */
    CHECK_CUDA(cudaMemcpyAsync(&out, d, sizeof(float), cudaMemcpyDeviceToHost, s));
    CHECK(out == (eager ? 1.0f : 2.0f));
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_CUDA(cudaFreeHost(pinned));
    CHECK_CUDA(cudaFree(d));
}

/* The buffer is freed between the enqueue and the synchronization: the operation faults when it
 * runs (a new allocation of the same size in between does not hide it). In the eager schedule it
 * ran before the free. */
static void test_use_after_free(void) {
    cudaStream_t s = new_stream();
    float *d = device_floats(64);
    CHECK_CUDA(cudaMemsetAsync(d, 0, kBytes, s));
    CHECK_CUDA(cudaFree(d));
    float *again = device_floats(64);
    const cudaError_t late = eager ? cudaSuccess : cudaErrorIllegalAddress;
    CHECK_REPORTS(eager ? 0 : 1, CHECK_ERR(cudaStreamSynchronize(s), late));
    void *p = nullptr;
    if (!eager) {
        CHECK_ERR(cudaMalloc(&p, 4), cudaErrorIllegalAddress);
        CHECK_ERR(cudaGetLastError(), cudaErrorIllegalAddress);
        CHECK_ERR(cudaGetLastError(), cudaErrorIllegalAddress); /* sticky: not cleared */
    }
    cudasim_reset();
    /* A pinned source freed before the copy read it. */
    float *pinned = pinned_floats(64);
    CHECK_CUDA(cudaMemcpyAsync(again, pinned, kBytes, cudaMemcpyHostToDevice, s));
    CHECK_CUDA(cudaFreeHost(pinned));
    CHECK_REPORTS(eager ? 0 : 1, CHECK_ERR(cudaStreamSynchronize(s), late));
    cudasim_reset();
    CHECK_CUDA(cudaFree(again));
    CHECK_CUDA(cudaStreamDestroy(s));
}

/* Device memory opened to host code twice over (mpi.cc's CUDA-aware MPI call inside a queued NCCL
 * collective, nccl.cc) stays open until the outer opening ends: the inner one's end would make the
 * host's next write a SIGSEGV. */
static void test_nested_opening_of_device_memory(void) {
    float *d = device_floats(64);
    {
        cudasim::device_memory_opened outer;
        {
            cudasim::device_memory_opened inner;
            d[0] = 1.0f;
        }
        d[1] = 2.0f;
    }
    cudaStream_t s = new_stream();
    std::vector<float> h = download(d, 2, s);
    CHECK(h[0] == 1.0f && h[1] == 2.0f);
    CHECK_CUDA(cudaFree(d));
    CHECK_CUDA(cudaStreamDestroy(s));
}

static void test_double_free(void) {
    float *d = device_floats(64), *pinned = pinned_floats(64);
    int local = 0;
    CHECK_CUDA(cudaFree(d));
    CHECK_REPORTS(1, CHECK_ERR(cudaFree(d), cudaErrorInvalidValue));
    d = device_floats(64);
    CHECK_REPORTS(1, CHECK_ERR(cudaFree(d + 1), cudaErrorInvalidValue));
    CHECK_REPORTS(1, CHECK_ERR(cudaFree(&local), cudaErrorInvalidValue));
    CHECK_REPORTS(1, CHECK_ERR(cudaFree(pinned), cudaErrorInvalidValue));
    CHECK_REPORTS(1, CHECK_ERR(cudaFreeHost(d), cudaErrorInvalidValue));
    CHECK_REPORTS(0, CHECK_CUDA(cudaFree(nullptr)));
    CHECK_CUDA(cudaFreeHost(pinned));
    CHECK_REPORTS(1, CHECK_ERR(cudaFreeHost(pinned), cudaErrorInvalidValue));
    CHECK_CUDA(cudaFree(d));
    cudaGetLastError();
}

/* ---- planted bugs: ordering ------------------------------------------------------------------ */

/* A pinned upload on stream b, read on stream a. Without the event wait, a reads what was there
 * before (whatever the lazy schedule: a's synchronization does not need b's work); with it, the
 * data. The eager schedule ran b's copy first: the data either way. */
static void test_missing_stream_wait(void) {
    const size_t n = 256;
    float *pinned = pinned_floats(n), *src = device_floats(n), *dst = device_floats(n);
    std::vector<float> data = iota(n, 1.0f);
    std::memcpy(pinned, data.data(), n * sizeof(float));
    cudaStream_t a = new_stream(), b = new_stream();
    cudaEvent_t copied = nullptr;
    CHECK_CUDA(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming));
    for (int wait = 0; wait < 2; wait++) {
        CHECK_CUDA(cudaMemsetAsync(src, 0, n * sizeof(float), a));
        CHECK_CUDA(cudaStreamSynchronize(a));
        CHECK_CUDA(cudaMemcpyAsync(src, pinned, n * sizeof(float), cudaMemcpyHostToDevice, b));
        CHECK_CUDA(cudaEventRecord(copied, b));
        if (wait) CHECK_CUDA(cudaStreamWaitEvent(a, copied, 0));
        CHECK_CUDA(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, a));
        std::vector<float> out = download(dst, n, a);
        CHECK_MSG(wait || eager ? out == data : out == std::vector<float>(n, 0.0f),
                  "%s the wait, out[0] = %g", wait ? "with" : "without", out[0]);
        CHECK_CUDA(cudaStreamSynchronize(b));
    }
    CHECK_CUDA(cudaEventDestroy(copied));
    CHECK_CUDA(cudaStreamDestroy(a));
    CHECK_CUDA(cudaStreamDestroy(b));
    CHECK_CUDA(cudaFreeHost(pinned));
    CHECK_CUDA(cudaFree(src));
    CHECK_CUDA(cudaFree(dst));
}

/* cudaDeviceSynchronize runs two independent streams in the schedule's order, not the host's:
 * "forward" runs the latest issued first, "reverse" the earliest; "eager" ran each when issued. */
static void test_device_synchronize_follows_the_schedule(void) {
    const size_t n = 64;
    float *pinned = pinned_floats(n), *src = device_floats(n), *dst = device_floats(n);
    std::vector<float> data = iota(n, 1.0f);
    std::memcpy(pinned, data.data(), n * sizeof(float));
    cudaStream_t a = new_stream(), b = new_stream();
    CHECK_CUDA(cudaMemsetAsync(src, 0, n * sizeof(float), a));
    CHECK_CUDA(cudaStreamSynchronize(a));
    CHECK_CUDA(cudaMemcpyAsync(src, pinned, n * sizeof(float), cudaMemcpyHostToDevice, b));
    CHECK_CUDA(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, a));
    CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<float> out = download(dst, n, a);
    if (eager)
        CHECK(out == data);
    else if (cudasim::schedule() == cudasim::order::forward)
        CHECK(out == std::vector<float>(n, 0.0f));
    if (cudasim::schedule() == cudasim::order::reverse) CHECK(out == data);
    CHECK_CUDA(cudaStreamDestroy(a));
    CHECK_CUDA(cudaStreamDestroy(b));
    CHECK_CUDA(cudaFreeHost(pinned));
    CHECK_CUDA(cudaFree(src));
    CHECK_CUDA(cudaFree(dst));
}

/* cumlp's upload: chunks through two pinned halves, each rewritten only after the event recorded
 * behind its previous copy has completed. Without that wait, the copies (which read pinned memory
 * when they run) see the half's latest contents (not in the eager schedule, where each has run
 * before the half is rewritten). `late`: the half is filled after the copy out of it is queued,
 * which only the eager schedule shows (the copy has read the half's old contents). */
static std::vector<float> staged_upload(const std::vector<float> &src, bool wait,
                                        bool late = false) {
    const size_t chunk = 64, n = src.size();
    float *stage = pinned_floats(2 * chunk), *dst = device_floats(n);
    cudaStream_t s = new_stream();
    cudaEvent_t free_half[2];
    for (cudaEvent_t &e : free_half)
        CHECK_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    for (size_t off = 0, c = 0; off < n; off += chunk, c++) {
        float *h = stage + (c % 2) * chunk;
        size_t count = std::min(chunk, n - off);
        if (wait) CHECK_CUDA(cudaEventSynchronize(free_half[c % 2]));
        if (!late) std::memcpy(h, src.data() + off, count * sizeof(float));
        CHECK_CUDA(cudaMemcpyAsync(dst + off, h, count * sizeof(float), cudaMemcpyHostToDevice, s));
        if (late) std::memcpy(h, src.data() + off, count * sizeof(float));
        CHECK_CUDA(cudaEventRecord(free_half[c % 2], s));
    }
    std::vector<float> out = download(dst, n, s);
    for (cudaEvent_t e : free_half)
        CHECK_CUDA(cudaEventDestroy(e));
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_CUDA(cudaFreeHost(stage));
    CHECK_CUDA(cudaFree(dst));
    return out;
}

static void test_staging_pipeline(void) {
    std::vector<float> src = iota(5 * 64 + 7, 0.5f);
    CHECK(staged_upload(src, true) == src);
    CHECK(eager ? staged_upload(src, false) == src : staged_upload(src, false) != src);
    CHECK(eager ? staged_upload(src, true, true) != src : staged_upload(src, true, true) == src);
    /* A pageable source is read at the call: rewriting it afterwards changes nothing. */
    cudaStream_t s = new_stream();
    float *d = device_floats(64);
    std::vector<float> host = iota(64, 1.0f), before = host;
    upload(d, host, s);
    host.assign(64, -1.0f);
    CHECK(download(d, 64, s) == before);
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_CUDA(cudaFree(d));
}

/* ---- events and streams ---------------------------------------------------------------------- */

static void test_event_rules(void) {
    cudaStream_t s = new_stream();
    float *d = device_floats(64);
    cudaEvent_t start, stop, untimed, never;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    CHECK_CUDA(cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming));
    CHECK_CUDA(cudaEventCreate(&never));
    CHECK_CUDA(cudaEventRecord(start, s));
    CHECK_CUDA(cudaMemsetAsync(d, 0, kBytes, s));
    CHECK_CUDA(cudaEventRecord(stop, s));
    CHECK_CUDA(cudaEventRecord(untimed, s));
    CHECK_CUDA(cudaMemsetAsync(d, 1, kBytes, s));
    float ms = -1;
    if (!eager) {
        CHECK_ERR(cudaEventElapsedTime(&ms, start, stop), cudaErrorNotReady); /* nothing ran */
        CHECK_ERR(cudaGetLastError(), cudaSuccess);                           /* not an error */
    }
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    CHECK(ms >= 0);
    CHECK_ERR(cudaEventElapsedTime(&ms, start, never), cudaErrorInvalidResourceHandle);
    CHECK_CUDA(cudaEventSynchronize(untimed));
    CHECK_ERR(cudaEventElapsedTime(&ms, start, untimed), cudaErrorInvalidResourceHandle);
    CHECK_CUDA(cudaEventQuery(never)); /* never recorded: complete */
    CHECK_CUDA(cudaEventSynchronize(never));
    /* The event synchronizations ran only up to the records: the last memset is still queued. */
    if (!eager) CHECK_ERR(cudaStreamQuery(s), cudaErrorNotReady);
    CHECK_CUDA(cudaStreamQuery(s));
    cudaGetLastError();
    for (cudaEvent_t e : {start, stop, untimed, never})
        CHECK_CUDA(cudaEventDestroy(e));
    CHECK_REPORTS(1, CHECK_ERR(cudaEventRecord(start, s), cudaErrorInvalidResourceHandle));
    cudaGetLastError();
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_CUDA(cudaFree(d));
}

/* A stream destroyed with work queued: the work stays and runs when needed; the handle is dead. */
static void test_destroyed_stream(void) {
    cudaStream_t s = new_stream();
    unsigned char *d = nullptr;
    CHECK_CUDA(cudaMalloc((void **)&d, 16));
    CHECK_CUDA(cudaMemsetAsync(d, 7, 16, s));
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_REPORTS(1, CHECK_ERR(cudaMemsetAsync(d, 0, 16, s), cudaErrorInvalidResourceHandle));
    cudaGetLastError();
    CHECK_CUDA(cudaDeviceSynchronize());
    unsigned char out[16];
    CHECK_CUDA(cudaMemcpyAsync(out, d, 16, cudaMemcpyDeviceToHost, nullptr));
    CHECK(out[0] == 7 && out[15] == 7);
    CHECK_CUDA(cudaFree(d));
}

/* ---- fault injection ------------------------------------------------------------------------- */

static void test_failed_allocation(void) {
    void *p1 = nullptr, *p2 = (void *)1, *p3 = nullptr;
    cudasim_fail_allocation(2);
    CHECK_CUDA(cudaMalloc(&p1, 16));
    CHECK_ERR(cudaMalloc(&p2, 16), cudaErrorMemoryAllocation);
    CHECK(p2 == nullptr);
    CHECK_ERR(cudaGetLastError(), cudaErrorMemoryAllocation);
    CHECK_CUDA(cudaMalloc(&p3, 16));
    CHECK_CUDA(cudaFree(p1));
    CHECK_CUDA(cudaFree(p3));
    /* Pinned memory fails on its own count; device allocations go on. */
    void *h1 = (void *)1, *h2 = nullptr;
    cudasim_fail_host_allocation(1);
    CHECK_CUDA(cudaMalloc(&p1, 16));
    CHECK_ERR(cudaHostAlloc(&h1, 16, cudaHostAllocDefault), cudaErrorMemoryAllocation);
    CHECK(h1 == nullptr);
    CHECK_ERR(cudaGetLastError(), cudaErrorMemoryAllocation);
    CHECK_CUDA(cudaHostAlloc(&h2, 16, cudaHostAllocDefault));
    CHECK_CUDA(cudaFreeHost(h2));
    CHECK_CUDA(cudaFree(p1));
}

struct libraries {
    cudaStream_t s = nullptr;
    cublasHandle_t blas = nullptr;
    curandGenerator_t rng = nullptr;
    float *d = nullptr;
};

static libraries open_libraries(void) {
    libraries l;
    l.s = new_stream();
    l.d = device_floats(64);
    CHECK_BLAS(cublasCreate(&l.blas), CUBLAS_STATUS_SUCCESS);
    CHECK_BLAS(cublasSetStream(l.blas, l.s), CUBLAS_STATUS_SUCCESS);
    CHECK_RAND(curandCreateGenerator(&l.rng, CURAND_RNG_PSEUDO_PHILOX4_32_10),
               CURAND_STATUS_SUCCESS);
    CHECK_RAND(curandSetStream(l.rng, l.s), CURAND_STATUS_SUCCESS);
    CHECK_RAND(curandSetGeneratorOrdering(l.rng, CURAND_ORDERING_PSEUDO_LEGACY),
               CURAND_STATUS_SUCCESS);
    return l;
}

static void close_libraries(libraries &l) {
    CHECK_RAND(curandDestroyGenerator(l.rng), CURAND_STATUS_SUCCESS);
    CHECK_BLAS(cublasDestroy(l.blas), CUBLAS_STATUS_SUCCESS);
    CHECK_CUDA(cudaStreamDestroy(l.s));
    CHECK_CUDA(cudaFree(l.d));
}

static cublasStatus_t small_gemm(const libraries &l) {
    const float one = 1.0f;
    return cublasGemmEx(l.blas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, l.d, CUDA_R_32F, 2,
                        l.d + 4, CUDA_R_32F, 2, &one, l.d + 8, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT);
}

static void test_injected_sticky_error(void) {
    libraries l = open_libraries();
    void *p = nullptr;
    cudasim_inject_sticky_error(2);
    CHECK_CUDA(cudaMemsetAsync(l.d, 0, kBytes, l.s));
    CHECK_ERR(cudaStreamSynchronize(l.s), cudaErrorIllegalAddress);
    CHECK_ERR(cudaMalloc(&p, 16), cudaErrorIllegalAddress);
    CHECK_ERR(cudaMemsetAsync(l.d, 0, kBytes, l.s), cudaErrorIllegalAddress);
    CHECK_ERR(cudaGetLastError(), cudaErrorIllegalAddress);
    CHECK_ERR(cudaGetLastError(), cudaErrorIllegalAddress);
    CHECK_ERR(cudaPeekAtLastError(), cudaErrorIllegalAddress);
    CHECK_BLAS(small_gemm(l), CUBLAS_STATUS_EXECUTION_FAILED);
    CHECK_BLAS(cublasSetStream(l.blas, l.s), CUBLAS_STATUS_EXECUTION_FAILED);
    CHECK_RAND(curandGenerateUniform(l.rng, l.d, 4), CURAND_STATUS_PREEXISTING_FAILURE);
    CHECK_RAND(curandSetPseudoRandomGeneratorSeed(l.rng, 1), CURAND_STATUS_PREEXISTING_FAILURE);
    cudasim_reset();
    CHECK_CUDA(cudaMalloc(&p, 16));
    CHECK_BLAS(small_gemm(l), CUBLAS_STATUS_SUCCESS);
    CHECK_RAND(curandGenerateUniform(l.rng, l.d, 4), CURAND_STATUS_SUCCESS);
    CHECK_CUDA(cudaStreamSynchronize(l.s));
    /* Injected at a library call; the memory is still released by a failing free. */
    cudasim_inject_sticky_error(1);
    CHECK_RAND(curandGenerateUniform(l.rng, l.d, 4), CURAND_STATUS_LAUNCH_FAILURE);
    CHECK_ERR(cudaPeekAtLastError(), cudaErrorIllegalAddress);
    CHECK_ERR(cudaFree(p), cudaErrorIllegalAddress);
    cudasim_reset();
    cudasim_inject_sticky_error(1);
    CHECK_BLAS(small_gemm(l), CUBLAS_STATUS_EXECUTION_FAILED);
    cudasim_reset();
    CHECK_ERR(cudaFree(p), cudaErrorInvalidValue); /* freed above */
    cudasim_reset();
    close_libraries(l);
}

/* ---- cuBLAS ---------------------------------------------------------------------------------- */

struct gemm_case {
    bool ta, tb;
    int m, n, k, lda, ldb, ldc;
    float alpha, beta;
};

/* C = alpha op(A) op(B) + beta C in double, column-major. */
static std::vector<float> naive_gemm(const gemm_case &g, const std::vector<float> &A,
                                     const std::vector<float> &B, std::vector<float> C) {
    for (int j = 0; j < g.n; j++)
        for (int i = 0; i < g.m; i++) {
            double sum = 0;
            for (int p = 0; p < g.k; p++)
                sum += (double)A[g.ta ? p + (size_t)i * g.lda : i + (size_t)p * g.lda] *
                       B[g.tb ? j + (size_t)p * g.ldb : p + (size_t)j * g.ldb];
            float &c = C[i + (size_t)j * g.ldc];
            c = (float)(g.alpha * sum + (g.beta == 0 ? 0.0 : g.beta * (double)c));
        }
    return C;
}

static std::vector<float> device_gemm(const libraries &l, const gemm_case &g,
                                      const std::vector<float> &A, const std::vector<float> &B,
                                      const std::vector<float> &C, cublasComputeType_t compute) {
    float *a = device_floats(A.size()), *b = device_floats(B.size()), *c = device_floats(C.size());
    upload(a, A, l.s);
    upload(b, B, l.s);
    upload(c, C, l.s);
    CHECK_BLAS(cublasGemmEx(l.blas, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                            g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k, &g.alpha, a,
                            CUDA_R_32F, g.lda, b, CUDA_R_32F, g.ldb, &g.beta, c, CUDA_R_32F, g.ldc,
                            compute, CUBLAS_GEMM_DEFAULT),
               CUBLAS_STATUS_SUCCESS);
    std::vector<float> out = download(c, C.size(), l.s);
    CHECK_CUDA(cudaFree(a));
    CHECK_CUDA(cudaFree(b));
    CHECK_CUDA(cudaFree(c));
    return out;
}

static std::vector<float> pseudo_random(size_t n, unsigned seed) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)(seed >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
    return v;
}

/* Every transpose case, with padded leading dimensions; beta 0 over a NaN C (padding included:
 * it must come back untouched). */
static void test_gemm_against_naive_loop(void) {
    libraries l = open_libraries();
    for (int t = 0; t < 8; t++) {
        gemm_case g{(t & 1) != 0, (t & 2) != 0, 5, 4, 3, 0, 0, 7, 1.5f, t < 4 ? 0.0f : 0.5f};
        g.lda = (g.ta ? g.k : g.m) + 2;
        g.ldb = (g.tb ? g.n : g.k) + 1;
        std::vector<float> A = pseudo_random((size_t)g.lda * (g.ta ? g.m : g.k), 1 + t);
        std::vector<float> B = pseudo_random((size_t)g.ldb * (g.tb ? g.k : g.n), 9 + t);
        std::vector<float> C = g.beta == 0 ? std::vector<float>((size_t)g.ldc * g.n, NAN)
                                           : pseudo_random((size_t)g.ldc * g.n, 17 + t);
        std::vector<float> want = naive_gemm(g, A, B, C);
        std::vector<float> got = device_gemm(l, g, A, B, C, CUBLAS_COMPUTE_32F);
        for (size_t i = 0; i < got.size(); i++) {
            bool padding = (int)(i % g.ldc) >= g.m;
            bool same = padding ? std::memcmp(&got[i], &C[i], sizeof(float)) == 0
                                : std::fabs(got[i] - want[i]) <= 1e-6f * (1 + std::fabs(want[i]));
            CHECK_MSG(same, "case %d, element %zu: %g, expected %g", t, i, got[i],
                      padding ? C[i] : want[i]);
        }
    }
    close_libraries(l);
}

/* A column of values times 1: the TF32 rounding of each (round to nearest, ties away from zero)
 * shows in the product; fp32 compute keeps them exact. */
static void test_gemm_tf32_rounding(void) {
    const float e = std::ldexp(1.0f, -12);
    const std::vector<float> A = {1 + e, 1 + 2 * e, -(1 + 2 * e), 1 + 3 * e, 3.0f, INFINITY, NAN};
    const std::vector<float> tf32 = {1.0f, 1 + 4 * e, -(1 + 4 * e), 1 + 4 * e, 3.0f, INFINITY, NAN};
    gemm_case g{false, false, (int)A.size(), 1, 1, (int)A.size(), 1, (int)A.size(), 1.0f, 0.0f};
    libraries l = open_libraries();
    auto same = [](const std::vector<float> &x, const std::vector<float> &y) {
        for (size_t i = 0; i < x.size(); i++)
            if (!(x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i])))) return false;
        return true;
    };
    std::vector<float> C(A.size(), 0.0f), one = {1.0f};
    CHECK(same(device_gemm(l, g, A, one, C, CUBLAS_COMPUTE_32F), A));
    CHECK(same(device_gemm(l, g, A, one, C, CUBLAS_COMPUTE_32F_FAST_TF32), tf32));
    CHECK_BLAS(cublasSetMathMode(l.blas, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
    CHECK(same(device_gemm(l, g, A, one, C, CUBLAS_COMPUTE_32F), tf32));
    close_libraries(l);
}

/* A 16-bit GEMM as the tensor cores compute it (cumlp's BF16 and FP16): 16-bit A and B widened
 * exactly, products and sums in fp32, a 16-bit C rounded once to nearest even (ties to the even
 * neighbour, overflow to Inf) and its padding left as it was; an fp32 C keeps the exact sums. The
 * operands are raw bits, so this owes nothing to cuda_bf16.h and cuda_fp16.h. Row i of C sums row
 * i of A (2 columns) times B = (1, 1). */
static void test_gemm_16bit(void) {
    struct format {
        cudaDataType type;
        uint16_t one, a1[4]; /* A's second column; its first is 1, 1, 1, a3 */
        uint16_t a3;
        uint16_t want16[4]; /* C in the format: 1 + a1 rounded, with beta 0 */
        float want32[4];    /* C in fp32 */
        uint16_t beta_row2; /* row 2 with beta = 0.5 over C = 1: 2 + 0.5 */
    };
    /* bf16: 1 + 2^-8 is a tie (to 1.0), 1 + 3 2^-8 one too (to 1 + 2^-6, the even neighbour).
     * fp16: 1 + 2^-11 and 1 + 3 2^-11 likewise, and 60000 + 60000 overflows. */
    const format formats[] = {
        {CUDA_R_16BF,
         0x3f80,
         {0x3b80, 0x3c40, 0x3f80, 0x3f80},
         0x3f80,
         {0x3f80, 0x3f82, 0x4000, 0x4000},
         {1.00390625f, 1.01171875f, 2.0f, 2.0f},
         0x4020},
        {CUDA_R_16F,
         0x3c00,
         {0x1000, 0x1600, 0x3c00, 0x7b53},
         0x7b53,
         {0x3c00, 0x3c02, 0x4000, 0x7c00},
         {1.00048828125f, 1.00146484375f, 2.0f, 120000.0f},
         0x4100},
    };
    libraries l = open_libraries();
    const float one = 1.0f, zero = 0.0f, point_five = 0.5f;
    void *a = nullptr, *b = nullptr, *c = nullptr;
    CHECK_CUDA(cudaMalloc(&a, 8 * sizeof(uint16_t)));
    CHECK_CUDA(cudaMalloc(&b, 2 * sizeof(uint16_t)));
    CHECK_CUDA(cudaMalloc(&c, 6 * sizeof(float)));
    for (const format &f : formats) {
        const uint16_t A[8] = {f.one, f.one, f.one, f.a3, f.a1[0], f.a1[1], f.a1[2], f.a1[3]};
        const uint16_t B[2] = {f.one, f.one};
        CHECK_CUDA(cudaMemcpyAsync(a, A, sizeof A, cudaMemcpyHostToDevice, l.s));
        CHECK_CUDA(cudaMemcpyAsync(b, B, sizeof B, cudaMemcpyHostToDevice, l.s));
        /* 16-bit C with ldc 6: rows 4 and 5 are padding, holding a NaN with a payload. */
        uint16_t C[6] = {0, 0, 0, f.one, 0x7fc1, 0x7fc1}, got[6];
        CHECK_CUDA(cudaMemcpyAsync(c, C, sizeof C, cudaMemcpyHostToDevice, l.s));
        CHECK_BLAS(cublasGemmEx(l.blas, CUBLAS_OP_N, CUBLAS_OP_N, 4, 1, 2, &one, a, f.type, 4, b,
                                f.type, 2, &zero, c, f.type, 6, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
        CHECK_CUDA(cudaMemcpyAsync(got, c, sizeof got, cudaMemcpyDeviceToHost, l.s));
        for (int i = 0; i < 4; i++)
            CHECK_MSG(got[i] == f.want16[i], "type %d, row %d: %04x, expected %04x", (int)f.type, i,
                      got[i], f.want16[i]);
        CHECK(got[4] == 0x7fc1 && got[5] == 0x7fc1);
        /* beta reads the 16-bit C: row 2 is 2 + 0.5 * 1 */
        const uint16_t ones[4] = {f.one, f.one, f.one, f.one};
        CHECK_CUDA(cudaMemcpyAsync(c, ones, sizeof ones, cudaMemcpyHostToDevice, l.s));
        CHECK_BLAS(cublasGemmEx(l.blas, CUBLAS_OP_N, CUBLAS_OP_N, 4, 1, 2, &one, a, f.type, 4, b,
                                f.type, 2, &point_five, c, f.type, 4, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
        CHECK_CUDA(cudaMemcpyAsync(got, c, 4 * sizeof(uint16_t), cudaMemcpyDeviceToHost, l.s));
        CHECK_MSG(got[2] == f.beta_row2, "type %d: %04x, expected %04x", (int)f.type, got[2],
                  f.beta_row2);
        /* fp32 C: the exact sums */
        CHECK_BLAS(cublasGemmEx(l.blas, CUBLAS_OP_N, CUBLAS_OP_N, 4, 1, 2, &one, a, f.type, 4, b,
                                f.type, 2, &zero, c, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
        float sums[4];
        CHECK_CUDA(cudaMemcpyAsync(sums, c, sizeof sums, cudaMemcpyDeviceToHost, l.s));
        for (int i = 0; i < 4; i++)
            CHECK_MSG(sums[i] == f.want32[i], "type %d, row %d: %.9g, expected %.9g", (int)f.type,
                      i, sums[i], f.want32[i]);
    }
    CHECK_CUDA(cudaFree(a));
    CHECK_CUDA(cudaFree(b));
    CHECK_CUDA(cudaFree(c));
    close_libraries(l);
}

static void test_gemm_argument_checks(void) {
    libraries l = open_libraries();
    const float one = 1.0f;
    float *d = l.d;
    CHECK_BLAS(cublasGemmEx(l.blas, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 2, &one, d, CUDA_R_32F, 3, d,
                            CUDA_R_32F, 2, &one, d, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT),
               CUBLAS_STATUS_INVALID_VALUE); /* lda < m */
    CHECK_BLAS(cublasGemmEx(l.blas, CUBLAS_OP_N, CUBLAS_OP_N, -1, 2, 2, &one, d, CUDA_R_32F, 1, d,
                            CUDA_R_32F, 2, &one, d, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT),
               CUBLAS_STATUS_INVALID_VALUE);
    /* Type combinations outside cuBLAS's table (and cumlp's use): mixed 16-bit A and B, a C of
     * the other 16-bit format, fp32 A with a 16-bit C, 16-bit inputs with a TF32 compute type. */
    const struct {
        cudaDataType a, b, c;
        cublasComputeType_t compute;
    } unsupported[] = {
        {CUDA_R_16F, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F},
        {CUDA_R_16F, CUDA_R_16F, CUDA_R_16BF, CUBLAS_COMPUTE_32F},
        {CUDA_R_32F, CUDA_R_32F, CUDA_R_16F, CUBLAS_COMPUTE_32F},
        {CUDA_R_16BF, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32},
    };
    for (const auto &u : unsupported)
        CHECK_BLAS(cublasGemmEx(l.blas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, d, u.a, 2, d, u.b,
                                2, &one, d, u.c, 2, u.compute, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_NOT_SUPPORTED);
    /* C past the end of its allocation: reported at the call, a fault when it runs. */
    CHECK_REPORTS(1,
                  CHECK_BLAS(cublasGemmEx(l.blas, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 1, &one, d,
                                          CUDA_R_32F, 8, d, CUDA_R_32F, 1, &one, d + 8, CUDA_R_32F,
                                          8, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                             CUBLAS_STATUS_SUCCESS));
    CHECK_ERR(cudaStreamSynchronize(l.s), cudaErrorIllegalAddress);
    cudasim_reset();
    CHECK_REPORTS(
        1, CHECK_BLAS(cublasSetStream((cublasHandle_t)&one, l.s), CUBLAS_STATUS_NOT_INITIALIZED));
    close_libraries(l);
}

/* ---- cuRAND ---------------------------------------------------------------------------------- */

static bool equals_host_draws(const std::vector<float> &got, uint64_t seed, size_t first) {
    for (size_t i = 0; i < got.size(); i++) {
        float want = cumlp__philox_draw(seed, 0, first + i);
        if (std::memcmp(&got[i], &want, sizeof want) != 0) return false;
    }
    return true;
}

static std::vector<float> uniforms(const libraries &l, size_t count) {
    CHECK_RAND(curandGenerateUniform(l.rng, l.d, count), CURAND_STATUS_SUCCESS);
    return download(l.d, count, l.s);
}

/* The words, read back through the float buffer they were written to. */
static bool words_equal_host(const libraries &l, uint64_t seed, size_t first, size_t count) {
    CHECK_RAND(curandGenerate(l.rng, reinterpret_cast<unsigned int *>(l.d), count),
               CURAND_STATUS_SUCCESS);
    std::vector<float> got = download(l.d, count, l.s);
    for (size_t i = 0; i < count; i++) {
        std::uint32_t bits;
        std::memcpy(&bits, &got[i], sizeof bits);
        if (bits != cumlp__philox_word(seed, first + i)) return false;
    }
    return true;
}

static void test_curand_matches_host_philox(void) {
    libraries l = open_libraries();
    const uint64_t seed = 0x123456789abcdefull;
    CHECK_RAND(curandSetPseudoRandomGeneratorSeed(l.rng, seed), CURAND_STATUS_SUCCESS);
    CHECK(equals_host_draws(uniforms(l, 10), seed, 0));
    CHECK(equals_host_draws(uniforms(l, 7), seed, 10)); /* goes on where the last call ended */
    CHECK_RAND(curandSetGeneratorOffset(l.rng, 6), CURAND_STATUS_SUCCESS);
    CHECK(equals_host_draws(uniforms(l, 9), seed, 6));
    CHECK_RAND(curandSetGeneratorOffset(l.rng, 0), CURAND_STATUS_SUCCESS);
    CHECK(words_equal_host(l, seed, 0, 12));
    CHECK_RAND(curandSetGeneratorOffset(l.rng, 5), CURAND_STATUS_SUCCESS);
    CHECK(words_equal_host(l, seed, 5, 7));
    curandGenerator_t other = nullptr;
    CHECK_RAND(curandCreateGenerator(&other, CURAND_RNG_PSEUDO_XORWOW), CURAND_STATUS_TYPE_ERROR);
    close_libraries(l);
}

/* Outputs the library does not check: the fill faults when it runs. */
static void test_curand_bad_outputs(void) {
    libraries l = open_libraries();
    std::vector<float> host(8);
    CHECK_REPORTS(1,
                  CHECK_RAND(curandGenerateUniform(l.rng, host.data(), 8), CURAND_STATUS_SUCCESS));
    CHECK_ERR(cudaStreamSynchronize(l.s), cudaErrorIllegalAddress);
    cudasim_reset();
    CHECK_REPORTS(1, CHECK_RAND(curandGenerate(l.rng, reinterpret_cast<unsigned int *>(l.d), 1000),
                                CURAND_STATUS_SUCCESS)); /* past the end of the buffer */
    CHECK_ERR(cudaStreamSynchronize(l.s), cudaErrorIllegalAddress);
    cudasim_reset();
    close_libraries(l);
}

/* ---- devices, memory, errors ----------------------------------------------------------------- */

static void test_device_count(void) {
    int n = -1, device = -1;
    setenv("CUDASIM_DEVICES", "0", 1);
    CHECK_ERR(cudaGetDeviceCount(&n), cudaErrorNoDevice);
    CHECK(n == 0);
    void *p = nullptr;
    CHECK_ERR(cudaMalloc(&p, 4), cudaErrorNoDevice);
    cublasHandle_t h = nullptr;
    CHECK_BLAS(cublasCreate(&h), CUBLAS_STATUS_NOT_INITIALIZED);
    curandGenerator_t g = nullptr;
    CHECK_RAND(curandCreateGenerator(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10),
               CURAND_STATUS_INITIALIZATION_FAILED);
    setenv("CUDASIM_DEVICES", "2", 1);
    cudaGetLastError();
    CHECK_CUDA(cudaGetDeviceCount(&n));
    CHECK(n == 2);
    CHECK_ERR(cudaSetDevice(2), cudaErrorInvalidDevice);
    CHECK_CUDA(cudaSetDevice(1));
    cudaStream_t s = new_stream();
    CHECK_CUDA(cudaStreamGetDevice(s, &device));
    CHECK(device == 1);
    cudaDeviceProp prop;
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 1));
    CHECK(prop.major == 9 && prop.warpSize == 32 && std::strstr(prop.name, "cudasim"));
    CHECK_CUDA(cudaSetDevice(0));
    float *d = device_floats(4);
    /* Work on another device's stream fails, as a kernel launch there would. */
    CHECK_REPORTS(1, CHECK_ERR(cudaMemsetAsync(d, 0, 16, s), cudaErrorInvalidResourceHandle));
    cudaGetLastError();
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_CUDA(cudaFree(d));
    unsetenv("CUDASIM_DEVICES");
    CHECK_CUDA(cudaGetDeviceCount(&n));
    CHECK(n == 1);
    CHECK_CUDA(cudaGetDevice(&device));
    CHECK(device == 0);
}

static void test_memory_info(void) {
    size_t free0 = 0, total = 0, free1 = 0, free2 = 0;
    CHECK_CUDA(cudaMemGetInfo(&free0, &total));
    CHECK(total == (size_t)16384 << 20 && free0 <= total);
    void *p = nullptr;
    CHECK_CUDA(cudaMalloc(&p, 1000));
    CHECK_CUDA(cudaMemGetInfo(&free1, &total));
    CHECK(free0 - free1 == 1024); /* rounded to the 256-byte alignment */
    CHECK_CUDA(cudaFree(p));
    CHECK_CUDA(cudaMemGetInfo(&free2, &total));
    CHECK(free2 == free0);
    setenv("CUDASIM_MEMORY_MB", "1", 1);
    CHECK_ERR(cudaMalloc(&p, 2 << 20), cudaErrorMemoryAllocation);
    unsetenv("CUDASIM_MEMORY_MB");
    cudaGetLastError();
}

static void test_error_names(void) {
    CHECK(std::strcmp(cudaGetErrorName(cudaErrorIllegalAddress), "cudaErrorIllegalAddress") == 0);
    CHECK(std::strcmp(cudaGetErrorString(cudaErrorIllegalAddress),
                      "an illegal memory access was encountered") == 0);
    CHECK(std::strcmp(cudaGetErrorName((cudaError_t)12345), "unrecognized error code") == 0);
    CHECK(std::strcmp(cublasGetStatusName(CUBLAS_STATUS_EXECUTION_FAILED),
                      "CUBLAS_STATUS_EXECUTION_FAILED") == 0);
    CHECK(std::strlen(cublasGetStatusString(CUBLAS_STATUS_NOT_SUPPORTED)) > 0);
    CHECK_ERR(cudaSetDevice(-1), cudaErrorInvalidDevice);
    CHECK_ERR(cudaPeekAtLastError(), cudaErrorInvalidDevice);
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidDevice);
    CHECK_ERR(cudaPeekAtLastError(), cudaSuccess);
}

/* Threads share the shim (one lock); each has its own last error, as in the runtime. */
static void test_threads(void) {
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; t++)
        threads.emplace_back([&wrong, t]() {
            cudaStream_t s = nullptr;
            void *d = nullptr;
            unsigned char out[64];
            for (int i = 0; i < 50; i++) {
                bool ok =
                    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess &&
                    cudaMalloc(&d, sizeof out) == cudaSuccess &&
                    cudaMemsetAsync(d, t, sizeof out, s) == cudaSuccess &&
                    cudaMemcpyAsync(out, d, sizeof out, cudaMemcpyDeviceToHost, s) == cudaSuccess &&
                    out[0] == t && out[63] == t && cudaFree(d) == cudaSuccess &&
                    cudaStreamDestroy(s) == cudaSuccess;
                if (t == 0) cudaSetDevice(-1); /* an error in this thread only */
                ok = ok && cudaGetLastError() == (t == 0 ? cudaErrorInvalidDevice : cudaSuccess);
                wrong += !ok;
            }
        });
    for (std::thread &t : threads)
        t.join();
    CHECK_MSG(wrong == 0, "%d rounds went wrong", wrong.load());
}

/* Device memory never freed is reported at exit (in a child process, which exits with it). */
static void test_leak_reported_at_exit(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t child = fork();
    if (child == 0) {
        dup2(fds[1], 2);
        void *p = nullptr;
        cudaMalloc(&p, 100);
        std::exit(0);
    }
    close(fds[1]);
    std::string text;
    char buf[256];
    for (ssize_t got; (got = read(fds[0], buf, sizeof buf)) > 0;)
        text.append(buf, (size_t)got);
    close(fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    CHECK_MSG(text.find("cudasim: 1 device allocations (100 bytes) never freed") !=
                  std::string::npos,
              "the child said: %s", text.c_str());
}

/* ---- stream capture and graphs ------------------------------------------------------------- */

/* b[5] read back (a copy into pageable memory waits for the stream). */
static float element_5(const float *b, cudaStream_t s) {
    float host[64];
    CHECK_CUDA(cudaMemcpyAsync(host, b, kBytes, cudaMemcpyDeviceToHost, s));
    return host[5];
}

/* The work captured on a stream does not run at the capture; each launch of the graph runs it
 * again, reading memory (a pinned source here) when it runs; an update with the same operations
 * on other buffers takes, one with other operations is refused and changes nothing. */
static void test_graph_capture_and_replay(void) {
    cudaStream_t s = new_stream();
    float *pinned = pinned_floats(64), *a = device_floats(64), *b = device_floats(64);
    float *c = device_floats(64);
    CHECK_CUDA(cudaMemsetAsync(b, 0, kBytes, s));
    CHECK_CUDA(cudaMemsetAsync(c, 0, kBytes, s));
    CHECK_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    CHECK_CUDA(cudaStreamIsCapturing(s, &status));
    CHECK(status == cudaStreamCaptureStatusActive);
    CHECK_CUDA(cudaMemcpyAsync(a, pinned, kBytes, cudaMemcpyHostToDevice, s));
    CHECK_CUDA(cudaMemcpyAsync(b, a, kBytes, cudaMemcpyDeviceToDevice, s));
    cudaGraph_t graph = nullptr;
    CHECK_CUDA(cudaStreamEndCapture(s, &graph));
    CHECK(graph != nullptr);
    CHECK(element_5(b, s) == 0.0f); /* captured, not run */
    cudaGraphExec_t exec = nullptr;
    CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    for (int launch = 1; launch <= 3; launch++) {
        for (int i = 0; i < 64; i++)
            pinned[i] = (float)(i * launch);
        CHECK_CUDA(cudaGraphLaunch(exec, s));
        CHECK(element_5(b, s) == 5.0f * launch);
    }
    /* the same two copies into c instead of b: updated in place */
    cudaGraph_t into_c = nullptr, memset_only = nullptr;
    CHECK_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK_CUDA(cudaMemcpyAsync(a, pinned, kBytes, cudaMemcpyHostToDevice, s));
    CHECK_CUDA(cudaMemcpyAsync(c, a, kBytes, cudaMemcpyDeviceToDevice, s));
    CHECK_CUDA(cudaStreamEndCapture(s, &into_c));
    cudaGraphExecUpdateResultInfo info;
    CHECK_CUDA(cudaGraphExecUpdate(exec, into_c, &info));
    CHECK(info.result == cudaGraphExecUpdateSuccess);
    CHECK_CUDA(cudaGraphLaunch(exec, s));
    CHECK(element_5(c, s) == 15.0f);
    /* a graph of other operations: refused, and the executable graph still writes c */
    CHECK_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK_CUDA(cudaMemsetAsync(c, 0, kBytes, s));
    CHECK_CUDA(cudaStreamEndCapture(s, &memset_only));
    CHECK_ERR(cudaGraphExecUpdate(exec, memset_only, &info), cudaErrorGraphExecUpdateFailure);
    CHECK(info.result == cudaGraphExecUpdateErrorTopologyChanged);
    cudaGetLastError();
    CHECK_CUDA(cudaMemsetAsync(c, 0, kBytes, s));
    CHECK_CUDA(cudaGraphLaunch(exec, s));
    CHECK(element_5(c, s) == 15.0f);
    CHECK_CUDA(cudaGraphExecDestroy(exec));
    CHECK_CUDA(cudaGraphDestroy(graph));
    CHECK_CUDA(cudaGraphDestroy(into_c));
    CHECK_CUDA(cudaGraphDestroy(memset_only));
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_CUDA(cudaFreeHost(pinned));
    CHECK_CUDA(cudaFree(a));
    CHECK_CUDA(cudaFree(b));
    CHECK_CUDA(cudaFree(c));
}

/* A cuBLAS GEMM captured with host scalars: the replay reads the matrices when it runs and keeps
 * the scalars of the capture (cuBLAS's host pointer mode reads them at the call). */
static void test_gemm_in_graph(void) {
    libraries l = open_libraries();
    float *a = device_floats(4), *b = device_floats(4), *c = device_floats(4);
    float *pinned = pinned_floats(4), host[4];
    const float identity[4] = {1, 0, 0, 1}, two = 2.0f, zero = 0.0f;
    CHECK_CUDA(cudaMemcpyAsync(a, identity, sizeof identity, cudaMemcpyHostToDevice, l.s));
    CHECK_CUDA(cudaStreamBeginCapture(l.s, cudaStreamCaptureModeGlobal));
    CHECK_CUDA(cudaMemcpyAsync(b, pinned, 4 * sizeof(float), cudaMemcpyHostToDevice, l.s));
    float alpha = two;
    CHECK_BLAS(cublasGemmEx(l.blas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &alpha, a, CUDA_R_32F, 2, b,
                            CUDA_R_32F, 2, &zero, c, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT),
               CUBLAS_STATUS_SUCCESS);
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    CHECK_CUDA(cudaStreamEndCapture(l.s, &graph));
    CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    alpha = 100.0f; /* too late: the capture took 2 */
    for (int launch = 1; launch <= 2; launch++) {
        for (int i = 0; i < 4; i++)
            pinned[i] = (float)(i + launch);
        CHECK_CUDA(cudaGraphLaunch(exec, l.s));
        CHECK_CUDA(cudaMemcpyAsync(host, c, sizeof host, cudaMemcpyDeviceToHost, l.s));
        for (int i = 0; i < 4; i++)
            CHECK_MSG(host[i] == 2.0f * (float)(i + launch), "launch %d: c[%d] = %g", launch, i,
                      host[i]);
    }
    CHECK_CUDA(cudaGraphExecDestroy(exec));
    CHECK_CUDA(cudaGraphDestroy(graph));
    CHECK_CUDA(cudaFree(a));
    CHECK_CUDA(cudaFree(b));
    CHECK_CUDA(cudaFree(c));
    CHECK_CUDA(cudaFreeHost(pinned));
    close_libraries(l);
}

/* Begins a capture on s and makes `call` break it: the call fails with
 * cudaErrorStreamCaptureUnsupported, the capture ends invalidated with no graph, and the stream
 * goes on (the error is not sticky). */
template <class Call>
static void check_breaks_capture(cudaStream_t s, const char *what, Call call) {
    CHECK_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    cudaError_t err = call();
    CHECK_MSG(err == cudaErrorStreamCaptureUnsupported, "%s during a capture: %s", what,
              cudaGetErrorName(err));
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    CHECK_CUDA(cudaStreamIsCapturing(s, &status));
    CHECK_MSG(status == cudaStreamCaptureStatusInvalidated, "%s: the capture is not invalidated",
              what);
    cudaGraph_t graph = reinterpret_cast<cudaGraph_t>(&status);
    CHECK_ERR(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
    CHECK(graph == nullptr);
    cudaGetLastError();
    CHECK_CUDA(cudaStreamSynchronize(s));
}

/* What a capture forbids (cumlp's capture must avoid each, and its error paths must leave the
 * stream usable), and the capture calls' own misuse. */
static void test_capture_prohibitions(void) {
    cudaStream_t s = new_stream();
    float *d = device_floats(64), host[64] = {0};
    void *p = nullptr;
    check_breaks_capture(s, "cudaMalloc", [&] { return cudaMalloc(&p, 64); });
    check_breaks_capture(s, "cudaFree", [&] { return cudaFree(d); });
    check_breaks_capture(s, "cudaHostAlloc", [&] { return cudaHostAlloc(&p, 64, 0); });
    float *pinned = pinned_floats(4);
    check_breaks_capture(s, "cudaFreeHost", [&] { return cudaFreeHost(pinned); });
    CHECK_CUDA(cudaFreeHost(pinned));
    check_breaks_capture(s, "cudaStreamSynchronize", [&] { return cudaStreamSynchronize(s); });
    check_breaks_capture(s, "cudaDeviceSynchronize", [&] { return cudaDeviceSynchronize(); });
    check_breaks_capture(s, "a copy into pageable memory", [&] {
        return cudaMemcpyAsync(host, d, kBytes, cudaMemcpyDeviceToHost, s);
    });
    check_breaks_capture(s, "a copy from pageable memory", [&] {
        return cudaMemcpyAsync(d, host, kBytes, cudaMemcpyHostToDevice, s);
    });
    /* a relaxed capture allows the allocation */
    CHECK_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    CHECK_CUDA(cudaMalloc(&p, 64));
    cudaGraph_t graph = nullptr;
    CHECK_CUDA(cudaStreamEndCapture(s, &graph));
    CHECK_CUDA(cudaGraphDestroy(graph));
    CHECK_CUDA(cudaFree(p));
    /* misuse */
    CHECK_ERR(cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeGlobal),
              cudaErrorStreamCaptureUnsupported);
    CHECK_ERR(cudaStreamEndCapture(s, &graph), cudaErrorIllegalState);
    CHECK_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK_ERR(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaErrorIllegalState);
    CHECK_CUDA(cudaStreamEndCapture(s, &graph));
    CHECK(graph != nullptr); /* an empty graph */
    CHECK_CUDA(cudaGraphDestroy(graph));
    CHECK_ERR(cudaGraphDestroy(graph), cudaErrorInvalidValue);
    cudaGetLastError();
    CHECK_CUDA(cudaStreamDestroy(s));
    CHECK_CUDA(cudaFree(d));
}

/* A buffer the graph uses, freed before a launch: the replay faults as the queued operation
 * would (use after free). */
static void test_graph_replay_after_free(void) {
    cudaStream_t s = new_stream();
    float *d = device_floats(64);
    CHECK_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK_CUDA(cudaMemsetAsync(d, 0, kBytes, s));
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    CHECK_CUDA(cudaStreamEndCapture(s, &graph));
    CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    CHECK_CUDA(cudaFree(d));
    CHECK_REPORTS(1, {
        cudaGraphLaunch(exec, s);
        CHECK_ERR(cudaStreamSynchronize(s), cudaErrorIllegalAddress);
    });
    cudasim_reset();
    cudaGetLastError();
    CHECK_CUDA(cudaGraphExecDestroy(exec));
    CHECK_CUDA(cudaGraphDestroy(graph));
    CHECK_CUDA(cudaStreamDestroy(s));
}

int main(void) {
    RUN(test_leak_reported_at_exit); /* first: the child forks before any other work */
    RUN(test_host_pointer_as_device_memory);
    RUN(test_copy_of_wrong_kind);
    RUN(test_copy_past_the_end);
    RUN(test_overlapping_copy);
    RUN(test_use_after_free);
    RUN(test_nested_opening_of_device_memory);
    RUN(test_double_free);
    RUN(test_missing_stream_wait);
    RUN(test_device_synchronize_follows_the_schedule);
    RUN(test_staging_pipeline);
    RUN(test_host_write_after_queuing_a_copy);
    RUN(test_event_rules);
    RUN(test_destroyed_stream);
    RUN(test_failed_allocation);
    RUN(test_injected_sticky_error);
    RUN(test_gemm_against_naive_loop);
    RUN(test_gemm_tf32_rounding);
    RUN(test_gemm_16bit);
    RUN(test_gemm_argument_checks);
    RUN(test_curand_matches_host_philox);
    RUN(test_curand_bad_outputs);
    RUN(test_device_count);
    RUN(test_memory_info);
    RUN(test_error_names);
    RUN(test_threads);
    RUN(test_graph_capture_and_replay);
    RUN(test_capture_prohibitions);
    RUN(test_graph_replay_after_free);
    RUN(test_gemm_in_graph);
    return harness_finish();
}
