/*
 * cublas.cc - the cuBLAS calls cumlp makes, on the CPU (see cudasim.h): a handle holds its stream
 * and math mode; cublasGemmEx checks its arguments as cuBLAS does, checks the matrices against the
 * device memory registry, and queues the product on the handle's stream, where CBLAS computes it
 * (from inputs rounded to TF32 when the call allows TF32). The 16-bit GEMMs of cumlp's BF16 and
 * FP16 precisions (bf16 or fp16 A and B, C of their format or fp32, CUBLAS_COMPUTE_32F) are
 * modelled as the tensor cores compute them: every product of two 16-bit values is exact in fp32
 * (at most 11 x 11 significant bits), the sum is accumulated in fp32 (here by CBLAS's sgemm on the
 * inputs widened exactly), and a 16-bit C is rounded once to nearest even from the fp32 result.
 * The order of the fp32 summation is CBLAS's, not the tensor cores'.
 */
#include "blas.h"
#include "cudasim.h"
#include "host.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <vector>

struct cublasContext {
    cudaStream_t stream;
    cublasMath_t mode;
};

namespace cudasim {

/* cvt.rna.tf32.f32, the tensor cores' conversion: 10 mantissa bits, round to nearest, ties away
 * from zero (half an ulp added to the magnitude, then truncated); NaN and Inf are kept. */
float to_tf32(float x) {
    if (!std::isfinite(x)) return x;
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    bits = (bits + 0x1000u) & ~0x1fffu;
    std::memcpy(&x, &bits, sizeof x);
    return x;
}

/* Bytes of one element of the data types cumlp's GEMMs use. */
std::size_t element_bytes(cudaDataType type) {
    return type == CUDA_R_16BF || type == CUDA_R_16F ? 2 : sizeof(float);
}

/* The operand widened to fp32 (exact for bf16 and fp16), and rounded to TF32 when tf32 is set,
 * with the padding between its columns (which CBLAS skips). */
std::vector<float> fp32_copy(const matrix &m, bool tf32) {
    std::vector<float> out(m.elements());
    for (std::size_t i = 0; i < out.size(); i++) {
        if (m.type == CUDA_R_16BF)
            out[i] = __bfloat162float(static_cast<const __nv_bfloat16 *>(m.p)[i]);
        else if (m.type == CUDA_R_16F)
            out[i] = __half2float(static_cast<const __half *>(m.p)[i]);
        else
            out[i] = static_cast<const float *>(m.p)[i];
        if (tf32) out[i] = to_tf32(out[i]);
    }
    return out;
}

/* Stores the rows x cols results among fp32 values (laid out as m) into the 16-bit operand m,
 * rounded to nearest even as the GEMM's epilogue does (cuda_bf16.h's and cuda_fp16.h's host
 * conversions, which round as the device's cvt.rn); the padding between columns is not written. */
void store_rounded(const std::vector<float> &values, const matrix &m) {
    for (int j = 0; j < m.cols; j++) {
        for (int i = 0; i < m.rows; i++) {
            std::size_t at = (std::size_t)j * m.ld + i;
            if (m.type == CUDA_R_16BF)
                static_cast<__nv_bfloat16 *>(const_cast<void *>(m.p))[at] =
                    __float2bfloat16_rn(values[at]);
            else
                static_cast<__half *>(const_cast<void *>(m.p))[at] = __float2half_rn(values[at]);
        }
    }
}

} // namespace cudasim

namespace {

using cudasim::fp32_copy;
using cudasim::matrix;
using cudasim::report;
using cudasim::store_rounded;

cudasim::live_handles<cublasHandle_t> &handles() {
    static cudasim::live_handles<cublasHandle_t> r{"cuBLAS handles", {}};
    return r;
}

/* The start of every call: a fault already on the device (or one injected now) makes it fail as
 * a failed kernel launch does. */
cublasStatus_t begin(cublasHandle_t handle, const char *what) {
    cudaError_t err = cudasim::begin_call();
    if (err == cudaErrorNoDevice) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (err != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (handles().live.count(handle)) return CUBLAS_STATUS_SUCCESS;
    report("%s: handle %p is not a live cuBLAS handle (never created, or destroyed)", what,
           (void *)handle);
    return CUBLAS_STATUS_NOT_INITIALIZED;
}

bool is_transpose(cublasOperation_t op) {
    return op == CUBLAS_OP_T || op == CUBLAS_OP_C; /* real data: C is T */
}

/* cuBLAS's own checks of cublasGemmEx's arguments. */
cublasStatus_t check_gemm_args(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                               const void *alpha, const void *beta, int lda, int ldb, int ldc) {
    bool ops = (ta == CUBLAS_OP_N || is_transpose(ta)) && (tb == CUBLAS_OP_N || is_transpose(tb));
    int a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
    bool dims = m >= 0 && n >= 0 && k >= 0;
    bool lds = lda >= std::max(1, a_rows) && ldb >= std::max(1, b_rows) && ldc >= std::max(1, m);
    return ops && dims && lds && alpha && beta ? CUBLAS_STATUS_SUCCESS
                                               : CUBLAS_STATUS_INVALID_VALUE;
}

/* What cumlp uses of cublasGemmEx's table of types: fp32 data with fp32 compute, which may
 * down-convert to TF32; and for CUBLAS_COMPUTE_32F, bf16 A and B into a bf16 or fp32 C, fp16 A
 * and B into an fp16 or fp32 C (cuBLAS lists no 16-bit A and B with a _FAST_TF32 compute type). */
cublasStatus_t check_gemm_types(cudaDataType a, cudaDataType b, cudaDataType c,
                                cublasComputeType_t compute) {
    bool fp32 = a == CUDA_R_32F && b == CUDA_R_32F && c == CUDA_R_32F &&
                (compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_FAST_TF32);
    bool sixteen = (a == CUDA_R_16BF || a == CUDA_R_16F) && b == a && (c == a || c == CUDA_R_32F) &&
                   compute == CUBLAS_COMPUTE_32F;
    return fp32 || sixteen ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
}

/* Whether the inputs go through TF32: CUBLAS_COMPUTE_32F_FAST_TF32 "allows down-converting inputs
 * to TF32", and CUBLAS_TF32_TENSOR_OP_MATH "allow[s] accelerating single precision routines using
 * TF32 tensor cores" (cublas_api.h), which cuBLAS does for CUBLAS_COMPUTE_32F. */
bool uses_tf32(cublasComputeType_t compute, cublasMath_t mode) {
    return compute == CUBLAS_COMPUTE_32F_FAST_TF32 || (mode & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH;
}

struct gemm {
    bool ta, tb, tf32;
    int m, n, k;
    float alpha, beta;
    matrix a, b, c;
};

/* C = alpha op(A) op(B) + beta C by CBLAS, in fp32 from A and B widened (and TF32-rounded) when
 * they are not fp32 already, into a 16-bit C through an fp32 copy. With beta == 0, cuBLAS does not
 * read C (it may hold NaN); the BLAS standard says so too ("C need not be set on input"), but C is
 * zeroed first so that this holds whichever BLAS is linked. */
void compute(const gemm &g) {
    bool copy_ab = g.k > 0 && (g.tf32 || g.a.type != CUDA_R_32F);
    bool copy_c = g.c.type != CUDA_R_32F;
    std::vector<float> a = copy_ab ? fp32_copy(g.a, g.tf32) : std::vector<float>();
    std::vector<float> b = copy_ab ? fp32_copy(g.b, g.tf32) : std::vector<float>();
    std::vector<float> c = copy_c ? fp32_copy(g.c, false) : std::vector<float>();
    const float *pa = copy_ab ? a.data() : static_cast<const float *>(g.a.p);
    const float *pb = copy_ab ? b.data() : static_cast<const float *>(g.b.p);
    float *pc = copy_c ? c.data() : static_cast<float *>(const_cast<void *>(g.c.p));
    if (g.beta == 0.0f)
        for (int j = 0; j < g.n; j++)
            std::memset(pc + (std::size_t)j * g.c.ld, 0, (std::size_t)g.m * sizeof(float));
    cblas_sgemm(CblasColMajor, g.ta ? CblasTrans : CblasNoTrans, g.tb ? CblasTrans : CblasNoTrans,
                g.m, g.n, g.k, g.alpha, pa, g.a.ld, pb, g.b.ld, g.beta, pc, g.c.ld);
    if (copy_c) store_rounded(c, g.c);
}

/* Queues the checked product. An operand that is not device memory is reported now; cuBLAS does
 * not check pointers, so the call succeeds and the kernel faults when it runs, as on a GPU. */
cublasStatus_t queue_gemm(cudaStream_t stream, const gemm &g) {
    static const char *const names[3] = {"A", "B", "C"};
    const matrix operands[3] = {g.a, g.b, g.c};
    cudasim::span spans[3]{};
    bool ok = true;
    for (int i = g.k > 0 ? 0 : 2; i < 3; i++) /* k == 0 reads neither A nor B */
        if (!cudasim::check_device("cublasGemmEx", names[i], operands[i].p, operands[i].bytes(),
                                   &spans[i]))
            ok = false;
    cudaError_t err = cudasim::enqueue_op(stream, "cublasGemmEx", [g, spans, ok]() {
        if (!ok) return cudaErrorIllegalAddress; /* reported at the call */
        for (int i = 0; i < 3; i++)
            if (!cudasim::still_live("cublasGemmEx", names[i], spans[i]))
                return cudaErrorIllegalAddress;
        compute(g);
        return cudaSuccess;
    });
    return err == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

} // namespace

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    auto lock = cudasim::hold();
    if (cudasim::begin_call() != cudaSuccess) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    *handle = new cublasContext{nullptr, CUBLAS_DEFAULT_MATH};
    handles().live.insert(*handle);
    return CUBLAS_STATUS_SUCCESS;
}

/* "the release of those resources by calling cublasDestroy() will implicitly call
 * cudaDeviceSynchronize()" (cuBLAS, cublasCreate). Released even after a fault. */
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    auto lock = cudasim::hold();
    cublasStatus_t st = begin(handle, "cublasDestroy");
    if (st == CUBLAS_STATUS_SUCCESS && cudasim::synchronize_all() != cudaSuccess)
        st = CUBLAS_STATUS_EXECUTION_FAILED;
    if (handles().live.erase(handle)) delete handle;
    return st;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    auto lock = cudasim::hold();
    cublasStatus_t st = begin(handle, "cublasSetStream");
    if (st == CUBLAS_STATUS_SUCCESS && !cudasim::is_stream(stream, "cublasSetStream"))
        st = CUBLAS_STATUS_INVALID_VALUE;
    if (st == CUBLAS_STATUS_SUCCESS) handle->stream = stream;
    return st;
}

/* The caller's workspace replaces the library's own (which a stream capture must not allocate):
 * it must be device memory; the simulated GEMMs need none of it. */
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void *workspace, size_t bytes) {
    auto lock = cudasim::hold();
    cublasStatus_t st = begin(handle, "cublasSetWorkspace");
    cudasim::span span{};
    if (st == CUBLAS_STATUS_SUCCESS && bytes > 0 &&
        !cudasim::check_device("cublasSetWorkspace", "workspace", workspace, bytes, &span))
        st = CUBLAS_STATUS_INVALID_VALUE;
    return st;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    auto lock = cudasim::hold();
    cublasStatus_t st = begin(handle, "cublasSetMathMode");
    unsigned base = (unsigned)mode & ~(unsigned)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    if (st == CUBLAS_STATUS_SUCCESS && base > CUBLAS_FP32_EMULATED_BF16X9_MATH &&
        base != CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH)
        st = CUBLAS_STATUS_INVALID_VALUE;
    if (st == CUBLAS_STATUS_SUCCESS) handle->mode = mode;
    return st;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C,
                            cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo) {
    (void)algo; /* every algorithm computes the same product here */
    auto lock = cudasim::hold();
    cublasStatus_t st = begin(handle, "cublasGemmEx");
    if (st == CUBLAS_STATUS_SUCCESS)
        st = check_gemm_args(transa, transb, m, n, k, alpha, beta, lda, ldb, ldc);
    if (st == CUBLAS_STATUS_SUCCESS) st = check_gemm_types(Atype, Btype, Ctype, computeType);
    if (st != CUBLAS_STATUS_SUCCESS || m == 0 || n == 0) return st;
    gemm g{};
    g.ta = is_transpose(transa);
    g.tb = is_transpose(transb);
    g.tf32 = uses_tf32(computeType, handle->mode);
    g.m = m, g.n = n, g.k = k;
    g.alpha = *static_cast<const float *>(alpha); /* host pointer mode: read at the call */
    g.beta = *static_cast<const float *>(beta);
    g.a = {A, g.ta ? k : m, g.ta ? m : k, lda, Atype};
    g.b = {B, g.tb ? n : k, g.tb ? k : n, ldb, Btype};
    g.c = {C, m, n, ldc, Ctype};
    return queue_gemm(handle->stream, g);
}

/* The statuses with the real library's strings. */
#define CUDASIM_CUBLAS_STATUSES(X)                                                                 \
    X(CUBLAS_STATUS_SUCCESS, "success")                                                            \
    X(CUBLAS_STATUS_NOT_INITIALIZED, "the library was not initialized")                            \
    X(CUBLAS_STATUS_ALLOC_FAILED, "the resource allocation failed")                                \
    X(CUBLAS_STATUS_INVALID_VALUE, "an invalid numeric value was used as an argument")             \
    X(CUBLAS_STATUS_ARCH_MISMATCH, "an absent device architectural feature is required")           \
    X(CUBLAS_STATUS_MAPPING_ERROR, "an access to GPU memory space failed")                         \
    X(CUBLAS_STATUS_EXECUTION_FAILED, "the GPU program failed to execute")                         \
    X(CUBLAS_STATUS_INTERNAL_ERROR, "an internal operation failed")                                \
    X(CUBLAS_STATUS_NOT_SUPPORTED, "the functionality requested is not supported")                 \
    X(CUBLAS_STATUS_LICENSE_ERROR, "error detected trying to check the license")

static const char *status_text(cublasStatus_t status, bool name) {
    switch (status) {
#define CUDASIM_STATUS_CASE(s, text)                                                               \
    case s:                                                                                        \
        return name ? #s : text;
        CUDASIM_CUBLAS_STATUSES(CUDASIM_STATUS_CASE)
#undef CUDASIM_STATUS_CASE
    }
    return name ? "CUBLAS_STATUS_UNKNOWN" : "unknown error";
}

const char *cublasGetStatusName(cublasStatus_t status) {
    return status_text(status, true);
}

const char *cublasGetStatusString(cublasStatus_t status) {
    return status_text(status, false);
}
