/*
 * cuda_common.cuh - what the cuda backend's kernel files share: launch geometry, the storage types
 * and their conversions, four-element loads and stores with a scalar tail, grid-stride indices and
 * warp reductions. Included by the .cu files of kernels/ only; everything is in an anonymous
 * namespace, so each file has its own copy.
 *
 * Elementwise kernels process four consecutive elements per thread, with one vector load or store
 * of the four (16 bytes of fp32, 8 of a 16-bit format) when every pointer is aligned to it, in
 * grid-stride loops.
 *
 * Storage types (kernels/cumlp_storage.h): a kernel that reads or writes a 16-bit buffer is a
 * template on its element type T (float, __nv_bfloat16 or __half), and its launcher picks the
 * instantiation from the buffer's format (dispatch_storage). Every value is converted to fp32 as it
 * is read (to_float, exact) and rounded to nearest even as it is stored (from_float<T>); the math
 * between is the fp32 formulas of cumlp_math.h, the same for every format.
 */
#ifndef CUMLP_CUDA_COMMON_CUH
#define CUMLP_CUDA_COMMON_CUH

#include <cuda_runtime.h> /* first: the CUDA simulator's stand-in defines __device__ and the rest */

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "cumlp_storage.h"

/* Every launch is CUMLP_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...): under nvcc
 * exactly kernel<<<grid, block, shared_bytes, stream>>>(args...); the CPU simulator of CUDA
 * (tests/cudasim/) defines it to queue the launch on its own device. */
#ifndef CUMLP_LAUNCH
#define CUMLP_LAUNCH(kernel, grid, block, shared_bytes, stream)                                    \
    kernel<<<grid, block, shared_bytes, stream>>>
#endif

namespace {

constexpr int kThreads = 256;    /* threads per block of the 1-D kernels */
constexpr int kMaxBlocks = 8192; /* grid-stride loops cover the rest */

/* Blocks for `quads` work items of one thread each. */
inline unsigned blocks_for(size_t quads) {
    size_t blocks = (quads + kThreads - 1) / kThreads;
    if (blocks < 1) blocks = 1;
    return (unsigned)(blocks > kMaxBlocks ? kMaxBlocks : blocks);
}

/* Blocks for one warp per column: 32 threads a column, kThreads / 32 columns a block. */
inline unsigned column_blocks(int cols) {
    return blocks_for((size_t)cols * 32);
}

/* The launch's error as the launchers return it (cuda_kernels.h). */
inline int launched() {
    return (int)cudaGetLastError();
}

/* ---- storage types ----------------------------------------------------------------------------
 */

__device__ __forceinline__ float to_float(float x) {
    return x;
}
__device__ __forceinline__ float to_float(__nv_bfloat16 x) {
    return __bfloat162float(x);
}
__device__ __forceinline__ float to_float(__half x) {
    return __half2float(x);
}

/* x rounded to nearest even into T (NaN stays NaN; past T's range, Inf). */
template <class T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) {
    return x;
}
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}
template <> __device__ __forceinline__ __half from_float<__half>(float x) {
    return __float2half_rn(x);
}

/* Calls f(T()) with T the element type of a format: the launchers' one switch per kernel. */
template <class F> inline int dispatch_storage(int storage, F &&f) {
    switch (storage) {
    case CUMLP_STORAGE_BF16:
        return f(__nv_bfloat16());
    case CUMLP_STORAGE_FP16:
        return f(__half());
    default:
        return f(float());
    }
}

/* ---- four elements at a time --------------------------------------------------------------- */

/* Four consecutive elements, aligned to their size: one 16-byte (fp32) or 8-byte access. */
template <class T> struct alignas(4 * sizeof(T)) Quad { T x[4]; };

/* *p = q in one 16-byte (fp32) or 8-byte (16-bit) store. A plain struct assignment may be split
 * into four scalar stores (nvcc did so in the delta pass, kernels/loss_reduce.cu), each then
 * touching four times the sectors a warp's store needs. */
__device__ __forceinline__ void store_quad(float *p, const Quad<float> &q) {
    __stwb(reinterpret_cast<float4 *>(p), make_float4(q.x[0], q.x[1], q.x[2], q.x[3]));
}
template <class T> __device__ __forceinline__ void store_quad(T *p, const Quad<T> &q) {
    static_assert(sizeof(Quad<T>) == sizeof(uint2), "a 16-bit quad is 8 bytes");
    uint2 bits;
    memcpy(&bits, &q, sizeof bits);
    __stwb(reinterpret_cast<uint2 *>(p), bits);
}

/* Whether p is aligned for Quad<T> accesses. */
template <class T> inline bool aligned_quad(const T *p) {
    return ((uintptr_t)p % sizeof(Quad<T>)) == 0;
}

/* Elements base .. base + 3 of p[0..n) in fp32; past n, 0. */
template <class T>
__device__ __forceinline__ void load4(const T *p, size_t base, size_t n, bool vec, float v[4]) {
    if (vec && base + 4 <= n) {
        Quad<T> q = *reinterpret_cast<const Quad<T> *>(p + base);
        for (int k = 0; k < 4; k++)
            v[k] = to_float(q.x[k]);
        return;
    }
    for (int k = 0; k < 4; k++)
        v[k] = base + k < n ? to_float(p[base + k]) : 0.0f;
}

/* Stores v rounded into elements base .. base + 3 of p[0..n) (those below n). */
template <class T>
__device__ __forceinline__ void store4(T *p, size_t base, size_t n, bool vec, const float v[4]) {
    if (vec && base + 4 <= n) {
        Quad<T> q;
        for (int k = 0; k < 4; k++)
            q.x[k] = from_float<T>(v[k]);
        store_quad(p + base, q);
        return;
    }
    for (int k = 0; k < 4 && base + k < n; k++)
        p[base + k] = from_float<T>(v[k]);
}

__device__ __forceinline__ size_t first_quad() {
    return (size_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ size_t quad_stride() {
    return (size_t)gridDim.x * blockDim.x;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int off = 16; off > 0; off /= 2)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

__device__ __forceinline__ double warp_sum(double v) {
    for (int off = 16; off > 0; off /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

} /* namespace */

#endif /* CUMLP_CUDA_COMMON_CUH */
