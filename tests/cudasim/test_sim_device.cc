/*
 * test_sim_device.cc - the CUDA simulator catches the kernel bugs it exists for: a missing barrier
 * before shared memory is read, a barrier under divergence or after a thread returned, a full-mask
 * shuffle in a partial warp or one a lane never reaches, a deadlock, an out-of-bounds write or
 * read, host code touching device memory, a misaligned float4, a host pointer handed to a kernel
 * (or inside a struct argument), an argument freed before the kernel ran, a bad launch
 * configuration; and it runs correct kernels (barriers, every shuffle kind, segments narrower
 * than a warp) right. Compiled as cumlp's kernels are: C++ against
 * tests/cudasim/include/cuda_runtime.h. Faults that end the process (AddressSanitizer, UBSan's
 * alignment check, a SIGSEGV) are provoked in a child process.
 */
#include <cuda_runtime.h>

#include "cudasim_control.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

/* ---- a minimal harness (tests/harness.h is C: its macros use C's conventions) --------------- */

static int passed, failed, current_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);          \
            current_failed = 1;                                                                    \
        }                                                                                          \
    } while (0)

static void run(const char *name, void (*test)()) {
    current_failed = 0;
    cudasim_reset();
    test();
    if (current_failed) {
        failed++;
        std::fprintf(stderr, "FAIL %s\n", name);
    } else {
        passed++;
        std::printf("ok   %s\n", name);
    }
}
#define RUN(test) run(#test, test)

/* ---- device buffers ----------------------------------------------------------------------------
 */

template <class T> struct device_buffer {
    T *ptr = nullptr;
    std::size_t n;
    explicit device_buffer(std::size_t count) : n(count) {
        CHECK(cudaMalloc((void **)&ptr, n * sizeof(T)) == cudaSuccess);
    }
    ~device_buffer() { cudaFree(ptr); }
    void upload(const std::vector<T> &host) {
        CHECK(cudaMemcpyAsync(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice, 0) ==
              cudaSuccess);
    }
    std::vector<T> download() {
        std::vector<T> host(n);
        CHECK(cudaMemcpyAsync(host.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost, 0) ==
              cudaSuccess);
        CHECK(cudaStreamSynchronize(0) == cudaSuccess);
        return host;
    }
};

/* A launch that the simulator must refuse as a fault of the kernel: the synchronize returns the
 * error, and the fault is reported (each test starts with the count reset). */
static void expect_fault(cudaError_t expected) {
    cudaError_t err = cudaStreamSynchronize(0);
    CHECK(err == expected);
    CHECK(cudasim_error_count() > 0);
    if (err != expected) std::fprintf(stderr, "     got %s\n", cudaGetErrorName(err));
    cudasim_reset();
}

/* ---- shared memory and barriers ------------------------------------------------------------- */

constexpr int kBlock = 64;

__global__ void rotate_with_barrier(const float *in, float *out) {
    __shared__ float tile[kBlock];
    int t = (int)threadIdx.x, base = (int)blockIdx.x * kBlock;
    tile[t] = in[base + t];
    __syncthreads();
    out[base + t] = tile[(t + 1) % kBlock];
}

__global__ void rotate_without_barrier(const float *in, float *out) {
    __shared__ float tile[kBlock];
    int t = (int)threadIdx.x, base = (int)blockIdx.x * kBlock;
    tile[t] = in[base + t];
    out[base + t] = tile[(t + 1) % kBlock]; /* the bug: read before every thread has written */
}

/* Each thread reads its right neighbour's value; a missing barrier must show in the result
 * whatever the schedule: thread t needs t + 1 to have run first, and the last needs the first. */
static int rotate(bool with_barrier, float offset) {
    const int blocks = 3, n = blocks * kBlock;
    std::vector<float> in(n);
    for (int i = 0; i < n; i++)
        in[i] = offset + (float)i;
    device_buffer<float> din(n), dout(n);
    din.upload(in);
    if (with_barrier)
        CUMLP_LAUNCH(rotate_with_barrier, blocks, kBlock, 0, 0)(din.ptr, dout.ptr);
    else
        CUMLP_LAUNCH(rotate_without_barrier, blocks, kBlock, 0, 0)(din.ptr, dout.ptr);
    std::vector<float> out = dout.download();
    int wrong = 0;
    for (int b = 0; b < blocks; b++)
        for (int t = 0; t < kBlock; t++)
            wrong += out[b * kBlock + t] != in[b * kBlock + (t + 1) % kBlock];
    return wrong;
}

static void test_barrier_orders_shared_memory() {
    CHECK(rotate(true, 1000.0f) == 0);
    CHECK(rotate(true, 2000.0f) == 0);
}

static void test_missing_barrier_is_caught() {
    CHECK(rotate(false, 3000.0f) > 0);
    CHECK(rotate(false, 4000.0f) > 0); /* also with the last launch's values left in the tile */
}

__global__ void barrier_under_divergence(float *out) {
    if (threadIdx.x % 2)
        __syncthreads();
    else
        __syncthreads();
    out[threadIdx.x] = 1.0f;
}

static void test_barrier_under_divergence_is_caught() {
    device_buffer<float> out(kBlock);
    CUMLP_LAUNCH(barrier_under_divergence, 1, kBlock, 0, 0)(out.ptr);
    expect_fault(cudaErrorLaunchFailure);
}

__global__ void barrier_after_return(float *out) {
    if (threadIdx.x == 5) return;
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

static void test_barrier_not_reached_is_caught() {
    device_buffer<float> out(kBlock);
    CUMLP_LAUNCH(barrier_after_return, 2, kBlock, 0, 0)(out.ptr);
    expect_fault(cudaErrorLaunchFailure);
}

/* ---- warp shuffles --------------------------------------------------------------------------- */

__global__ void warp_sums(const double *in, double *out) {
    double v = in[threadIdx.x];
    for (int offset = 16; offset > 0; offset /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    out[threadIdx.x] = v;
}

__global__ void shuffle_kinds(const int *in, int *out) {
    int lane = (int)threadIdx.x % 32, v = in[threadIdx.x];
    int base = (int)threadIdx.x * 4;
    out[base + 0] = __shfl_sync(0xffffffffu, v, 7);        /* lane 7 of each warp */
    out[base + 1] = __shfl_down_sync(0xffffffffu, v, 3);   /* lane + 3, or its own */
    out[base + 2] = __shfl_up_sync(0xffffffffu, v, 2, 16); /* lane - 2 within 16-lane halves */
    out[base + 3] = __shfl_xor_sync(0xffffffffu, v, 5, 8); /* lane ^ 5 within groups of 8 */
    (void)lane;
}

static void test_shuffles_compute_right() {
    const int n = 64;
    std::vector<double> in(n);
    for (int i = 0; i < n; i++)
        in[i] = 0.5 * i - 3.0;
    device_buffer<double> din(n), dout(n);
    din.upload(in);
    CUMLP_LAUNCH(warp_sums, 1, n, 0, 0)(din.ptr, dout.ptr);
    std::vector<double> out = dout.download();
    for (int w = 0; w < n / 32; w++) {
        double sum = 0;
        for (int l = 0; l < 32; l++)
            sum += in[w * 32 + l];
        for (int l = 0; l < 32; l++)
            CHECK(out[w * 32 + l] == sum);
    }
    std::vector<int> iv(n);
    for (int i = 0; i < n; i++)
        iv[i] = 100 * i + 1;
    device_buffer<int> ii(n), io(4 * n);
    ii.upload(iv);
    CUMLP_LAUNCH(shuffle_kinds, 1, n, 0, 0)(ii.ptr, io.ptr);
    std::vector<int> o = io.download();
    for (int t = 0; t < n; t++) {
        int w = t / 32 * 32, lane = t % 32;
        CHECK(o[t * 4 + 0] == iv[w + 7]);
        CHECK(o[t * 4 + 1] == iv[w + (lane + 3 < 32 ? lane + 3 : lane)]);
        int half = lane / 16 * 16;
        CHECK(o[t * 4 + 2] == iv[w + (lane - 2 >= half ? lane - 2 : lane)]);
        CHECK(o[t * 4 + 3] == iv[w + (lane ^ 5)]);
    }
}

/* Segments narrower than the warp, and arguments past 31 (only their low 5 bits count). */
constexpr int kShuffleCases = 7;

__global__ void shuffle_segments(int *out) {
    int v = 100 + (int)threadIdx.x, *o = out + threadIdx.x * kShuffleCases;
    o[0] = __shfl_xor_sync(0xffffffffu, v, 16, 16); /* the upper half reads the lower */
    o[1] = __shfl_xor_sync(0xffffffffu, v, 12, 8);  /* earlier segments only */
    o[2] = __shfl_xor_sync(0xffffffffu, v, 33);     /* 33: lane ^ 1 */
    o[3] = __shfl_up_sync(0xffffffffu, v, 3, 8);
    o[4] = __shfl_down_sync(0xffffffffu, v, 33, 16); /* 33: lane + 1 */
    o[5] = __shfl_sync(0xffffffffu, v, 35, 16);      /* 35: lane 3 of the segment */
    o[6] = __shfl_sync(0xffffffffu, v, -1, 8);       /* -1: the segment's last lane */
}

/* The CUDA C++ Programming Guide's rules ("Warp Shuffle Functions"), written out per kind: a lane
 * out of range reads its own value. */
static int guide_shuffle(int c, int lane) {
    auto xor_rule = [lane](int mask, int width) {
        int src = lane ^ (mask & 31);
        return src / width <= lane / width ? src : lane; /* earlier groups, never later ones */
    };
    int segment8 = lane / 8 * 8, segment16 = lane / 16 * 16;
    switch (c) {
    case 0:
        return xor_rule(16, 16);
    case 1:
        return xor_rule(12, 8);
    case 2:
        return xor_rule(33, 32);
    case 3:
        return lane - 3 >= segment8 ? lane - 3 : lane;
    case 4:
        return lane + 1 < segment16 + 16 ? lane + 1 : lane;
    case 5:
        return segment16 + 3;
    default:
        return segment8 + 7;
    }
}

static void test_shuffle_segments_follow_the_guide() {
    device_buffer<int> out(32 * kShuffleCases);
    CUMLP_LAUNCH(shuffle_segments, 1, 32, 0, 0)(out.ptr);
    std::vector<int> o = out.download();
    for (int lane = 0; lane < 32; lane++)
        for (int c = 0; c < kShuffleCases; c++) {
            int want = 100 + guide_shuffle(c, lane), got = o[lane * kShuffleCases + c];
            CHECK(got == want);
            if (got != want)
                std::fprintf(stderr, "     case %d lane %d: %d, want %d\n", c, lane, got, want);
        }
    CHECK(o[20 * kShuffleCases] == 104); /* the reviewer's case: lane 20 reads lane 4 */
}

static void test_partial_warp_shuffle_is_caught() {
    const int n = 48; /* the second warp has 16 threads; the full mask names 32 lanes */
    device_buffer<double> din(n), dout(n);
    din.upload(std::vector<double>(n, 1.0));
    CUMLP_LAUNCH(warp_sums, 1, n, 0, 0)(din.ptr, dout.ptr);
    expect_fault(cudaErrorLaunchFailure);
}

__global__ void shuffle_after_return(const double *in, double *out) {
    if (threadIdx.x == 3) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, in[threadIdx.x], 1);
}

static void test_shuffle_not_reached_is_caught() {
    device_buffer<double> din(32), dout(32);
    din.upload(std::vector<double>(32, 2.0));
    CUMLP_LAUNCH(shuffle_after_return, 1, 32, 0, 0)(din.ptr, dout.ptr);
    expect_fault(cudaErrorLaunchFailure);
}

__global__ void shuffle_or_barrier(double *out) {
    if (threadIdx.x < 32) out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0, 1);
    __syncthreads();
    if (threadIdx.x >= 32) out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 2.0, 1);
}

/* Correct: the first warp shuffles, then all meet at the barrier, then the second shuffles. */
static void test_collectives_in_sequence_run() {
    device_buffer<double> out(64);
    CUMLP_LAUNCH(shuffle_or_barrier, 1, 64, 0, 0)(out.ptr);
    std::vector<double> o = out.download();
    for (int t = 0; t < 64; t++)
        CHECK(o[t] == (t < 32 ? 1.0 : 2.0));
}

/* Half of each warp waits at a full-mask shuffle for lanes that wait at the barrier. */
__global__ void deadlock(double *out) {
    if (threadIdx.x % 32 < 16) out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0, 1);
    __syncthreads();
}

static void test_deadlock_is_caught() {
    device_buffer<double> out(64);
    CUMLP_LAUNCH(deadlock, 1, 64, 0, 0)(out.ptr);
    expect_fault(cudaErrorLaunchFailure);
}

/* ---- memory ---------------------------------------------------------------------------------- */

__global__ void write_n_plus_one(float *out, int n) {
    int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i <= n) out[i] = 1.0f; /* the bug: <= */
}

__global__ void misaligned_vector_store(float *out) {
    if (threadIdx.x == 0) *reinterpret_cast<float4 *>(out + 1) = make_float4(1, 2, 3, 4);
}

__global__ void fill_kernel(float *out, int n) {
    int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) out[i] = 3.0f;
}

/* Runs `body` in a child process and returns what it wrote on stderr, or "" when it exited 0. */
template <class F> static std::string in_child(F body) {
    char path[] = "/tmp/cudasim_child_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return "mkstemp failed";
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        std::_Exit(body() ? 0 : 3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    std::string text;
    char buf[4096];
    ssize_t got;
    lseek(fd, 0, SEEK_SET);
    while ((got = read(fd, buf, sizeof buf)) > 0)
        text.append(buf, (std::size_t)got);
    close(fd);
    unlink(path);
    bool clean_exit = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return clean_exit ? "" : text.empty() ? "(no message)" : text;
}

/* An out-of-bounds write is caught by AddressSanitizer in the sanitizer build and by the
 * simulator's guard bytes after each allocation otherwise. */
static void test_out_of_bounds_write_is_caught() {
    std::string err = in_child([] {
        float *p = nullptr;
        if (cudaMalloc((void **)&p, 100 * sizeof(float)) != cudaSuccess) return true;
        CUMLP_LAUNCH(write_n_plus_one, 2, 64, 0, 0)(p, 100);
        return cudaStreamSynchronize(0) == cudaSuccess;
    });
    CHECK(!err.empty());
    CHECK(err.find("cudasim") != std::string::npos ||
          err.find("AddressSanitizer") != std::string::npos);
}

__global__ void read_from(const float *in, int first, float *out) {
    out[threadIdx.x] = in[first + (int)threadIdx.x];
}

__global__ void write_at(float *out, int first) {
    out[first + (int)threadIdx.x] = 1.0f;
}

/* An access past the slack (an allocation's size rounded to 256 bytes) hits the guard page after
 * it: the process dies, the simulator's handler having named the allocation (ASan then gives its
 * own report). 256 floats leave no slack: the first float past them faults. */
static void test_access_past_the_guard_is_caught() {
    for (int write = 0; write < 2; write++) {
        std::string err = in_child([write] {
            float *p = nullptr, *out = nullptr;
            if (cudaMalloc((void **)&p, 256 * sizeof(float)) != cudaSuccess ||
                cudaMalloc((void **)&out, 32 * sizeof(float)) != cudaSuccess)
                return true;
            if (write)
                CUMLP_LAUNCH(write_at, 1, 32, 0, 0)(p, 250);
            else
                CUMLP_LAUNCH(read_from, 1, 32, 0, 0)(p, 250, out);
            return cudaStreamSynchronize(0) == cudaSuccess;
        });
        CHECK(err.find("cudasim: an access past the end of the device allocation at") !=
              std::string::npos);
        CHECK(err.find("(1024 bytes): address") != std::string::npos);
        if (err.find("past the end") == std::string::npos)
            std::fprintf(stderr, "     the child said: %s\n", err.c_str());
    }
}

/* A read in the slack (the reviewer's case: 10 floats, read from float 10 on): NaN without ASan
 * (the slack's pattern), ASan's report with it (the slack is poisoned). */
static void test_read_in_the_slack_shows() {
#ifdef TEST_ASAN
    std::string err = in_child([] {
        float *p = nullptr, *out = nullptr;
        if (cudaMalloc((void **)&p, 10 * sizeof(float)) != cudaSuccess ||
            cudaMalloc((void **)&out, 32 * sizeof(float)) != cudaSuccess)
            return true;
        CUMLP_LAUNCH(read_from, 1, 32, 0, 0)(p, 10, out);
        return cudaStreamSynchronize(0) == cudaSuccess;
    });
    CHECK(err.find("AddressSanitizer") != std::string::npos);
#else
    device_buffer<float> in(10), out(32);
    in.upload(std::vector<float>(10, 1.0f));
    CUMLP_LAUNCH(read_from, 1, 32, 0, 0)(in.ptr, 10, out.ptr);
    int nan = 0;
    for (float x : out.download())
        nan += std::isnan(x);
    CHECK(nan == 32);
#endif
}

/* Host code that dereferences a device pointer dies as on a GPU; the simulator's handler names
 * the address and the allocation (in the ASan build ASan's report follows). */
static void test_host_touching_device_memory_is_caught() {
    for (int write = 0; write < 2; write++) {
        std::string err = in_child([write] {
            float *d = nullptr;
            if (cudaMalloc((void **)&d, 4 * sizeof(float)) != cudaSuccess ||
                cudaMemsetAsync(d, 0, 4 * sizeof(float), 0) != cudaSuccess ||
                cudaStreamSynchronize(0) != cudaSuccess)
                return true;
            volatile float *v = d;
            if (write)
                v[1] = 1.0f;
            else
                (void)v[0];
            return true;
        });
        CHECK(err.find("cudasim: host code touched device memory at") != std::string::npos);
        CHECK(err.find("16 bytes") != std::string::npos);
        if (err.find("touched") == std::string::npos)
            std::fprintf(stderr, "     the child said: %s\n", err.c_str());
    }
}

/* The kernels are compiled with UBSan's alignment check in every simulator build. */
static void test_misaligned_float4_is_caught() {
    std::string err = in_child([] {
        float *p = nullptr;
        if (cudaMalloc((void **)&p, 16 * sizeof(float)) != cudaSuccess) return true;
        CUMLP_LAUNCH(misaligned_vector_store, 1, 32, 0, 0)(p);
        return cudaStreamSynchronize(0) == cudaSuccess;
    });
    CHECK(err.find("misaligned") != std::string::npos);
}

static void test_host_pointer_argument_is_caught() {
    std::vector<float> host(64);
    CUMLP_LAUNCH(fill_kernel, 1, 64, 0, 0)(host.data(), 64);
    expect_fault(cudaErrorIllegalAddress);
    CHECK(host[0] == 0.0f); /* the kernel did not run on host memory */
}

/* Pointers inside a struct argument (as loss_reduce.cu's DeltaArgs), in an array member (as
 * optimizer.cu's StateArrays) and in a nested struct are checked as the arguments themselves. */
struct outputs {
    float *first[2];
};

struct struct_args {
    int n;
    outputs out;
    const float *in;
};

__global__ void copy_through_struct(struct_args a) {
    int i = (int)threadIdx.x;
    if (i >= a.n) return;
    a.out.first[0][i] = a.in[i];
    if (a.out.first[1]) a.out.first[1][i] = 2.0f * a.in[i];
}

static void test_host_pointer_in_struct_argument_is_caught() {
    device_buffer<float> in(32), out(32), twice(32);
    in.upload(std::vector<float>(32, 1.5f));
    CUMLP_LAUNCH(copy_through_struct, 1, 32, 0, 0)(struct_args{32, {{out.ptr, twice.ptr}}, in.ptr});
    CHECK(out.download() == std::vector<float>(32, 1.5f));
    CHECK(twice.download() == std::vector<float>(32, 3.0f));
    CHECK(cudasim_error_count() == 0);
    std::vector<float> host(32, 0.0f);
    for (int k = 0; k < 3; k++) { /* the member, the array element, the nested member */
        struct_args a{32, {{out.ptr, nullptr}}, in.ptr};
        if (k == 0) a.in = host.data();
        if (k == 1) a.out.first[1] = host.data();
        if (k == 2) a.out.first[0] = host.data();
        CUMLP_LAUNCH(copy_through_struct, 1, 32, 0, 0)(a);
        expect_fault(cudaErrorIllegalAddress);
        CHECK(host[0] == 0.0f); /* the kernel did not run on host memory */
    }
}

__global__ void write_one(float *p) {
    if (threadIdx.x == 0) p[0] = 7.0f;
}

/* A kernel's argument freed before the kernel ran: a use after free, also when a new allocation
 * of the same size has taken the address (the reviewer's case, which the check by address alone
 * missed). The eager schedule has run the kernel before the free: no fault there. */
static void test_argument_freed_before_the_kernel_ran_is_caught() {
    cudaStream_t s = nullptr;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
    for (int realloc = 0; realloc < 2; realloc++) {
        void *a = nullptr, *b = nullptr;
        CHECK(cudaMalloc(&a, 1024) == cudaSuccess);
        CUMLP_LAUNCH(write_one, 1, 32, 0, s)(static_cast<float *>(a));
        CHECK(cudaFree(a) == cudaSuccess);
        if (realloc) CHECK(cudaMalloc(&b, 1024) == cudaSuccess);
        cudaError_t err = cudaStreamSynchronize(s);
        CHECK(err == (cudasim::eager() ? cudaSuccess : cudaErrorIllegalAddress));
        CHECK(cudasim_error_count() == (cudasim::eager() ? 0 : 1));
        if (realloc) std::printf("     the address was %sreused\n", a == b ? "" : "not ");
        cudasim_reset();
        cudaFree(b);
    }
    CHECK(cudaStreamDestroy(s) == cudaSuccess);
}

static void test_bad_configuration_is_a_launch_error() {
    device_buffer<float> out(64);
    cudaGetLastError();
    CUMLP_LAUNCH(fill_kernel, 1, 2048, 0, 0)(out.ptr, 64); /* more than 1024 threads */
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    CHECK(cudaGetLastError() == cudaSuccess);            /* not sticky */
    CUMLP_LAUNCH(fill_kernel, 0, 64, 0, 0)(out.ptr, 64); /* no blocks */
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    /* past maxGridSize[0], 2^31 - 1 (the reviewer's case: it was queued, to run 2^31 blocks) */
    CUMLP_LAUNCH(fill_kernel, dim3(0x80000000u), 64, 0, 0)(out.ptr, 64);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    CHECK(cudaStreamSynchronize(0) == cudaSuccess);
}

int main() {
    RUN(test_barrier_orders_shared_memory);
    RUN(test_missing_barrier_is_caught);
    RUN(test_barrier_under_divergence_is_caught);
    RUN(test_barrier_not_reached_is_caught);
    RUN(test_shuffles_compute_right);
    RUN(test_shuffle_segments_follow_the_guide);
    RUN(test_partial_warp_shuffle_is_caught);
    RUN(test_shuffle_not_reached_is_caught);
    RUN(test_collectives_in_sequence_run);
    RUN(test_deadlock_is_caught);
    RUN(test_out_of_bounds_write_is_caught);
    RUN(test_access_past_the_guard_is_caught);
    RUN(test_read_in_the_slack_shows);
    RUN(test_host_touching_device_memory_is_caught);
    RUN(test_misaligned_float4_is_caught);
    RUN(test_host_pointer_argument_is_caught);
    RUN(test_host_pointer_in_struct_argument_is_caught);
    RUN(test_argument_freed_before_the_kernel_ran_is_caught);
    RUN(test_bad_configuration_is_a_launch_error);
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
