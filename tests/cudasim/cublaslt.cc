/*
 * cublaslt.cc - the cuBLASLt calls cumlp makes, on the CPU (see cudasim.h): cublasLtMatmul with
 * column-major layouts and the epilogues of cumlp's GEMM-epilogue path (bias + ReLU or GELU, with
 * or without the aux output, and dReLU / dGELU with the bias gradient), its descriptors and its
 * heuristic. The product is computed as the simulated cublasGemmEx computes it (blas.h: operands
 * widened to fp32, TF32-rounded for CUBLAS_COMPUTE_32F_FAST_TF32, CBLAS's fp32 sgemm), then the
 * epilogue on the fp32 result, then a 16-bit D rounded once.
 *
 * The epilogue math is what cuBLASLt documents (cublasLt.h), with what it leaves open modelled as
 * follows (a GPU run of the conformance suite checks the real library against the same bounds):
 *  - ReLU keeps z unless z <= 0, so a NaN z stays NaN and its bitmask bit is set (an H200's
 *    cuBLASLt kept the NaN and passed the gradient there; the fused kernels map it to 0);
 *  - GELU is the tanh approximation (kernels/cumlp_math.inc, cumlp_gelu_tanh);
 *  - the ReLU bitmask holds bit i of column j (set unless z <= 0) at bit j * ld + i, least
 * significant bit first; only cuBLASLt reads it, so its layout is the simulator's own;
 *  - the bias gradient sums the fp32 epilogue results of each row (before D is rounded) in fp32, in
 *    column order, and is not scaled by alpha;
 *  - the bias and the bias gradient are of D's type: another CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE
 *    finds no algorithm (cublasLt.h allows one only in FP8 and integer kernels; an H200 found none
 *    for an fp32 bias with a bf16 or fp16 D).
 * An algorithm remembers the pointer alignments its preference promised (256 bytes unless said
 * otherwise), and cublasLtMatmul reports a pointer less aligned than that.
 * cudasim_lt_no_algorithms makes the heuristic find nothing, as for a case cuBLASLt cannot run;
 * cudasim_lt_decline_epilogue does so for one epilogue alone.
 */
#include "blas.h"
#include "cudasim.h"
#include "cudasim_control.h"
#include "host.h"

#include "cumlp_math.h"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

struct cublasLtContext {
    int unused;
};

namespace {

using cudasim::matrix;
using cudasim::report;

/* The simulator's descriptors, behind the library's opaque pointers. */
struct op_desc {
    cublasComputeType_t compute;
    cudaDataType scale_type;
    int32_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
    uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    void *bias = nullptr;
    int32_t bias_type = -1;
    void *aux = nullptr;
    int64_t aux_ld = 0;
};

struct layout_desc {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};

struct preference_desc {
    uint64_t max_workspace = 0;
    uint32_t reduction_mask = CUBLASLT_REDUCTION_SCHEME_MASK;
    /* CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_{A,B,C,D}_BYTES: what the algorithm may assume of the
     * pointers (256 unless said otherwise) */
    uint32_t min_alignment[4] = {256, 256, 256, 256};
};

/* An algorithm the heuristic returned: data[0] holds this mark, data[1 .. 4] the alignments of
 * A, B, C and D it was chosen for. */
constexpr uint64_t algo_mark = 0x63756d6c70616c67ull;

cudasim::live_handles<cublasLtHandle_t> &handles() {
    static cudasim::live_handles<cublasLtHandle_t> r{"cuBLASLt handles", {}};
    return r;
}

template <class T> std::set<T *> &live() {
    static std::set<T *> r;
    return r;
}

bool no_algorithms = false;
uint32_t declined_epilogue = 0; /* cudasim_lt_decline_epilogue's, 0: none */
unsigned long matmuls_queued = 0;

cublasStatus_t begin(cublasLtHandle_t handle, const char *what) {
    cudaError_t err = cudasim::begin_call();
    if (err == cudaErrorNoDevice) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (err != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (handles().live.count(handle)) return CUBLAS_STATUS_SUCCESS;
    report("%s: handle %p is not a live cuBLASLt handle (never created, or destroyed)", what,
           (void *)handle);
    return CUBLAS_STATUS_NOT_INITIALIZED;
}

/* The simulator's object behind an opaque pointer, or nullptr (reported) if it is not live. */
template <class T> T *find(const void *p, const char *what, const char *kind) {
    T *t = static_cast<T *>(const_cast<void *>(p));
    if (live<T>().count(t)) return t;
    report("%s: %p is not a live %s", what, p, kind);
    return nullptr;
}

template <class T, class Opaque> cublasStatus_t create(Opaque **out, const T &value) {
    auto lock = cudasim::hold();
    if (!out) return CUBLAS_STATUS_INVALID_VALUE;
    T *t = new T(value);
    live<T>().insert(t);
    *out = reinterpret_cast<Opaque *>(t);
    return CUBLAS_STATUS_SUCCESS;
}

template <class T> cublasStatus_t destroy(void *p, const char *what, const char *kind) {
    auto lock = cudasim::hold();
    if (!p) return CUBLAS_STATUS_SUCCESS;
    T *t = find<T>(p, what, kind);
    if (!t) return CUBLAS_STATUS_INVALID_VALUE;
    live<T>().erase(t);
    delete t;
    return CUBLAS_STATUS_SUCCESS;
}

/* Copies an attribute's value of exactly its size. */
template <class V> bool take(V *field, const void *buf, size_t size) {
    if (!buf || size != sizeof *field) return false;
    std::memcpy(field, buf, sizeof *field);
    return true;
}

/* The epilogue flag of "produces or reads the aux buffer" (cublasLt.h builds the values so). */
constexpr uint32_t aux_flag = 128;

bool is_relu(uint32_t e) {
    return e == CUBLASLT_EPILOGUE_RELU_BIAS || e == CUBLASLT_EPILOGUE_RELU_AUX_BIAS ||
           e == CUBLASLT_EPILOGUE_DRELU_BGRAD;
}
bool is_backward(uint32_t e) {
    return e == CUBLASLT_EPILOGUE_DRELU_BGRAD || e == CUBLASLT_EPILOGUE_DGELU_BGRAD;
}
bool has_aux(uint32_t e) {
    return (e & aux_flag) != 0;
}

/* The epilogues simulated: DEFAULT, BIAS, and cumlp's six. */
bool known_epilogue(uint32_t e) {
    switch (e) {
    case CUBLASLT_EPILOGUE_DEFAULT:
    case CUBLASLT_EPILOGUE_BIAS:
    case CUBLASLT_EPILOGUE_RELU_BIAS:
    case CUBLASLT_EPILOGUE_RELU_AUX_BIAS:
    case CUBLASLT_EPILOGUE_GELU_BIAS:
    case CUBLASLT_EPILOGUE_GELU_AUX_BIAS:
    case CUBLASLT_EPILOGUE_DRELU_BGRAD:
    case CUBLASLT_EPILOGUE_DGELU_BGRAD:
        return true;
    default:
        return false;
    }
}

/* A matmul's descriptors behind their opaque pointers, each nullptr (reported) if not live. */
struct operation {
    op_desc *op;
    layout_desc *a, *b, *c, *d;
};

operation lookup(const char *what, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t adesc,
                 cublasLtMatrixLayout_t bdesc, cublasLtMatrixLayout_t cdesc,
                 cublasLtMatrixLayout_t ddesc) {
    return {find<op_desc>(desc, what, "matmul descriptor"),
            find<layout_desc>(adesc, what, "matrix layout"),
            find<layout_desc>(bdesc, what, "matrix layout"),
            find<layout_desc>(cdesc, what, "matrix layout"),
            find<layout_desc>(ddesc, what, "matrix layout")};
}

/* The bias (or bias gradient) type: CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, else D's. */
cudaDataType bias_type(const op_desc &op, const layout_desc &d) {
    return op.bias_type >= 0 ? (cudaDataType)op.bias_type : d.type;
}

/* The checks of a case that the heuristic (and cublasLtMatmul) make: the types of cumlp's GEMMs
 * (as cublasGemmEx's), a known epilogue with its pointers, and the aux leading dimension rules. */
cublasStatus_t check_case(const op_desc &op, const layout_desc &a, const layout_desc &b,
                          const layout_desc &c, const layout_desc &d) {
    bool fp32 = a.type == CUDA_R_32F && b.type == CUDA_R_32F && d.type == CUDA_R_32F &&
                (op.compute == CUBLAS_COMPUTE_32F || op.compute == CUBLAS_COMPUTE_32F_FAST_TF32);
    bool sixteen = (a.type == CUDA_R_16BF || a.type == CUDA_R_16F) && b.type == a.type &&
                   (d.type == a.type || d.type == CUDA_R_32F) && op.compute == CUBLAS_COMPUTE_32F;
    if (!(fp32 || sixteen) || op.scale_type != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    bool c_is_d = c.type == d.type && c.rows == d.rows && c.cols == d.cols && c.ld == d.ld;
    if (!c_is_d) return CUBLAS_STATUS_NOT_SUPPORTED; /* C is D in cumlp's calls */
    if (!known_epilogue(op.epilogue)) return CUBLAS_STATUS_NOT_SUPPORTED;
    bool ta = op.trans_a != CUBLAS_OP_N, tb = op.trans_b != CUBLAS_OP_N;
    uint64_t m = ta ? a.cols : a.rows, k = ta ? a.rows : a.cols;
    uint64_t kb = tb ? b.cols : b.rows, n = tb ? b.rows : b.cols;
    if (k != kb || d.rows != m || d.cols != n) return CUBLAS_STATUS_INVALID_VALUE;
    for (const layout_desc *l : {&a, &b, &d})
        if (l->ld < (int64_t)l->rows || l->ld < 1) return CUBLAS_STATUS_INVALID_VALUE;
    uint32_t e = op.epilogue;
    bool needs_bias = e != CUBLASLT_EPILOGUE_DEFAULT;
    if (needs_bias && !op.bias) return CUBLAS_STATUS_INVALID_VALUE;
    cudaDataType bt = bias_type(op, d);
    if (needs_bias && bt != d.type) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (has_aux(e)) {
        int64_t multiple = is_relu(e) ? 128 : 8;
        if (!op.aux || op.aux_ld < (int64_t)d.rows || op.aux_ld % multiple != 0)
            return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}

/* The bytes of the aux buffer of a case. */
std::size_t aux_bytes(const op_desc &op, const layout_desc &d) {
    if (d.cols == 0) return 0;
    if (is_relu(op.epilogue)) return (std::size_t)(op.aux_ld / 8) * d.cols;
    return ((std::size_t)op.aux_ld * (d.cols - 1) + d.rows) * cudasim::element_bytes(d.type);
}

/* Element i of a buffer of type t, widened to fp32. */
float load(const void *p, cudaDataType t, std::size_t i) {
    if (t == CUDA_R_16BF) return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
    if (t == CUDA_R_16F) return __half2float(static_cast<const __half *>(p)[i]);
    return static_cast<const float *>(p)[i];
}

/* Element i of a buffer of type t, from fp32 (rounded to nearest even into 16 bits). */
void store(void *p, cudaDataType t, std::size_t i, float v) {
    if (t == CUDA_R_16BF)
        static_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(v);
    else if (t == CUDA_R_16F)
        static_cast<__half *>(p)[i] = __float2half_rn(v);
    else
        static_cast<float *>(p)[i] = v;
}

struct matmul {
    op_desc op;
    layout_desc a, b, d;
    const void *A, *B;
    void *D;
    float alpha, beta;
};

/* D = epilogue(alpha op(A) op(B) + beta D) on the CPU. */
void compute(const matmul &g) {
    bool ta = g.op.trans_a != CUBLAS_OP_N, tb = g.op.trans_b != CUBLAS_OP_N;
    bool tf32 = g.op.compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    int m = (int)g.d.rows, n = (int)g.d.cols, k = (int)(ta ? g.a.rows : g.a.cols);
    matrix ma{g.A, (int)g.a.rows, (int)g.a.cols, (int)g.a.ld, g.a.type};
    matrix mb{g.B, (int)g.b.rows, (int)g.b.cols, (int)g.b.ld, g.b.type};
    matrix md{g.D, m, n, (int)g.d.ld, g.d.type};
    std::vector<float> a = cudasim::fp32_copy(ma, tf32), b = cudasim::fp32_copy(mb, tf32);
    std::vector<float> acc = cudasim::fp32_copy(md, false);
    if (g.beta == 0.0f) std::fill(acc.begin(), acc.end(), 0.0f); /* D is not read */
    if (k > 0)
        cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    m, n, k, g.alpha, a.data(), ma.ld, b.data(), mb.ld, g.beta, acc.data(), md.ld);
    uint32_t e = g.op.epilogue;
    cudaDataType bt = bias_type(g.op, g.d);
    std::vector<float> bgrad(is_backward(e) ? m : 0, 0.0f);
    auto *mask = static_cast<unsigned char *>(g.op.aux);
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
            std::size_t at = (std::size_t)j * md.ld + i;
            std::size_t aux_at = (std::size_t)j * (std::size_t)g.op.aux_ld + i;
            float v = acc[at];
            if (is_backward(e)) {
                if (e == CUBLASLT_EPILOGUE_DRELU_BGRAD)
                    v = (mask[aux_at / 8] >> (aux_at % 8)) & 1u ? v : 0.0f;
                else
                    v = v * cumlp_gelu_tanh_deriv_f(load(g.op.aux, g.d.type, aux_at));
                bgrad[i] += v;
            } else if (e != CUBLASLT_EPILOGUE_DEFAULT) {
                float z = v + load(g.op.bias, bt, i);
                if (is_relu(e)) {
                    bool positive = !(z <= 0.0f); /* NaN: kept, and its bit set */
                    if (has_aux(e)) {
                        unsigned bit = 1u << (aux_at % 8);
                        mask[aux_at / 8] = (unsigned char)(positive ? mask[aux_at / 8] | bit
                                                                    : mask[aux_at / 8] & ~bit);
                    }
                    v = positive ? z : 0.0f;
                } else if (e == CUBLASLT_EPILOGUE_GELU_BIAS ||
                           e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS) {
                    if (has_aux(e)) store(g.op.aux, g.d.type, aux_at, z);
                    v = cumlp_gelu_tanh_f(z);
                } else {
                    v = z; /* BIAS */
                }
            }
            store(g.D, g.d.type, at, v);
        }
    }
    for (int i = 0; i < (int)bgrad.size(); i++)
        store(g.op.bias, bt, (std::size_t)i, bgrad[i]);
}

} // namespace

extern "C" void cudasim_lt_no_algorithms(int on) {
    auto lock = cudasim::hold();
    no_algorithms = on != 0;
}

extern "C" void cudasim_lt_decline_epilogue(unsigned epilogue) {
    auto lock = cudasim::hold();
    declined_epilogue = epilogue;
}

extern "C" unsigned long cudasim_lt_matmul_count(void) {
    auto lock = cudasim::hold();
    return matmuls_queued;
}

cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle) {
    auto lock = cudasim::hold();
    if (cudasim::begin_call() != cudaSuccess) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    *handle = new cublasLtContext{0};
    handles().live.insert(*handle);
    return CUBLAS_STATUS_SUCCESS;
}

/* Released even after a fault, as cublasDestroy. */
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
    auto lock = cudasim::hold();
    cublasStatus_t st = begin(handle, "cublasLtDestroy");
    if (handles().live.erase(handle)) delete handle;
    return st == CUBLAS_STATUS_EXECUTION_FAILED ? CUBLAS_STATUS_SUCCESS : st;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, cublasComputeType_t compute,
                                        cudaDataType_t scale_type) {
    op_desc op;
    op.compute = compute;
    op.scale_type = scale_type;
    return create(desc, op);
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
    return destroy<op_desc>(desc, "cublasLtMatmulDescDestroy", "cuBLASLt matmul descriptor");
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attr, const void *buf,
                                              size_t size) {
    auto lock = cudasim::hold();
    op_desc *op = find<op_desc>(desc, "cublasLtMatmulDescSetAttribute", "matmul descriptor");
    if (!op) return CUBLAS_STATUS_INVALID_VALUE;
    bool ok = false;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
        ok = take(&op->trans_a, buf, size);
        break;
    case CUBLASLT_MATMUL_DESC_TRANSB:
        ok = take(&op->trans_b, buf, size);
        break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        ok = take(&op->epilogue, buf, size);
        break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        ok = take(&op->bias, buf, size);
        break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        ok = take(&op->bias_type, buf, size);
        break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER:
        ok = take(&op->aux, buf, size);
        break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD:
        ok = take(&op->aux_ld, buf, size);
        break;
    default:
        report("cublasLtMatmulDescSetAttribute: attribute %d is not simulated", (int)attr);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    return ok ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
    return create(layout, layout_desc{type, rows, cols, ld});
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
    return destroy<layout_desc>(layout, "cublasLtMatrixLayoutDestroy", "matrix layout");
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    return create(pref, preference_desc{});
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    return destroy<preference_desc>(pref, "cublasLtMatmulPreferenceDestroy", "preference");
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void *buf, size_t size) {
    auto lock = cudasim::hold();
    preference_desc *p =
        find<preference_desc>(pref, "cublasLtMatmulPreferenceSetAttribute", "preference");
    if (!p) return CUBLAS_STATUS_INVALID_VALUE;
    bool ok = false;
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
        ok = take(&p->max_workspace, buf, size);
        break;
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK:
        ok = take(&p->reduction_mask, buf, size);
        break;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
        ok = take(&p->min_alignment[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, size);
        break;
    default:
        report("cublasLtMatmulPreferenceSetAttribute: attribute %d is not simulated", (int)attr);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    return ok ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t
cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                               cublasLtMatrixLayout_t adesc, cublasLtMatrixLayout_t bdesc,
                               cublasLtMatrixLayout_t cdesc, cublasLtMatrixLayout_t ddesc,
                               cublasLtMatmulPreference_t pref, int requested,
                               cublasLtMatmulHeuristicResult_t results[], int *returned) {
    static const char *what = "cublasLtMatmulAlgoGetHeuristic";
    auto lock = cudasim::hold();
    cublasStatus_t st = begin(handle, what);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    auto [op, a, b, c, d] = lookup(what, desc, adesc, bdesc, cdesc, ddesc);
    preference_desc *p = find<preference_desc>(pref, what, "preference");
    if (!op || !a || !b || !c || !d || !p || requested <= 0 || !results || !returned)
        return CUBLAS_STATUS_INVALID_VALUE;
    *returned = 0;
    st = check_case(*op, *a, *b, *c, *d);
    if (st != CUBLAS_STATUS_SUCCESS || no_algorithms) return st;
    if (declined_epilogue && op->epilogue == declined_epilogue) return st;
    std::memset(&results[0], 0, sizeof results[0]);
    results[0].algo.data[0] = algo_mark;
    for (int i = 0; i < 4; i++)
        results[0].algo.data[1 + i] = p->min_alignment[i];
    results[0].workspaceSize = 0;
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t adesc, const void *B,
                              cublasLtMatrixLayout_t bdesc, const void *beta, const void *C,
                              cublasLtMatrixLayout_t cdesc, void *D, cublasLtMatrixLayout_t ddesc,
                              const cublasLtMatmulAlgo_t *algo, void *workspace,
                              size_t workspace_bytes, cudaStream_t stream) {
    static const char *what = "cublasLtMatmul";
    auto lock = cudasim::hold();
    cublasStatus_t st = begin(handle, what);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    auto [op, a, b, c, d] = lookup(what, desc, adesc, bdesc, cdesc, ddesc);
    if (!op || !a || !b || !c || !d || !alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    if (algo && algo->data[0] != algo_mark) {
        report("%s: the algorithm did not come from cublasLtMatmulAlgoGetHeuristic", what);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (C != D) return CUBLAS_STATUS_NOT_SUPPORTED; /* cumlp writes in place */
    /* An algorithm chosen for aligned pointers may use vector loads that a less aligned one
     * faults on: the pointers must be as aligned as the preferences promised. */
    const void *operands[4] = {A, B, C, D};
    static const char *const operand_names[4] = {"A", "B", "C", "D"};
    for (int i = 0; algo && i < 4; i++) {
        uintptr_t need = (uintptr_t)algo->data[1 + i];
        if (need && (uintptr_t)operands[i] % need != 0) {
            report("%s: %s %p is not aligned to the %u bytes the algorithm was chosen for "
                   "(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES)",
                   what, operand_names[i], operands[i], (unsigned)need);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    }
    st = check_case(*op, *a, *b, *c, *d);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (!cudasim::is_stream(stream, what)) return CUBLAS_STATUS_INVALID_VALUE;
    if (d->rows == 0 || d->cols == 0) return CUBLAS_STATUS_SUCCESS;
    matmul g{*op,
             *a,
             *b,
             *d,
             A,
             B,
             D,
             *static_cast<const float *>(alpha),
             *static_cast<const float *>(beta)};
    /* Every buffer the GEMM and its epilogue touch must be device memory. */
    uint32_t e = op->epilogue;
    std::size_t bias_bytes =
        e == CUBLASLT_EPILOGUE_DEFAULT ? 0 : d->rows * cudasim::element_bytes(bias_type(*op, *d));
    struct {
        const char *name;
        const void *p;
        std::size_t bytes;
    } buffers[] = {
        {"A", A, matrix{A, (int)a->rows, (int)a->cols, (int)a->ld, a->type}.bytes()},
        {"B", B, matrix{B, (int)b->rows, (int)b->cols, (int)b->ld, b->type}.bytes()},
        {"D", D, matrix{D, (int)d->rows, (int)d->cols, (int)d->ld, d->type}.bytes()},
        {"bias", op->bias, bias_bytes},
        {"aux", op->aux, has_aux(e) ? aux_bytes(*op, *d) : 0},
        {"workspace", workspace, workspace_bytes},
    };
    std::vector<cudasim::span> spans;
    bool ok = true;
    for (const auto &buf : buffers) {
        if (buf.bytes == 0) continue;
        cudasim::span s{};
        if (!cudasim::check_device(what, buf.name, buf.p, buf.bytes, &s)) ok = false;
        spans.push_back(s);
    }
    cudaError_t err = cudasim::enqueue_op(stream, what, [g, spans, ok]() {
        if (!ok) return cudaErrorIllegalAddress; /* reported at the call */
        for (const auto &s : spans)
            if (!cudasim::still_live("cublasLtMatmul", "an operand", s))
                return cudaErrorIllegalAddress;
        compute(g);
        return cudaSuccess;
    });
    if (err == cudaSuccess) matmuls_queued++;
    return err == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}
