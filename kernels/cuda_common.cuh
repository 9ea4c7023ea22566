/*
 * cuda_common.cuh - what the cuda backend's kernel files share: launch geometry, float4 loads and
 * stores with a scalar tail, grid-stride indices and warp reductions. Included by the .cu files of
 * kernels/ only; everything is in an anonymous namespace, so each file has its own copy.
 *
 * Elementwise kernels process four consecutive elements per thread with float4 loads and stores
 * when every pointer is 16-byte aligned, in grid-stride loops.
 */
#ifndef CUMLP_CUDA_COMMON_CUH
#define CUMLP_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <stdint.h>

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

inline bool aligned16(const void *p) {
    return ((uintptr_t)p & 15u) == 0;
}

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

/* ---- four elements at a time --------------------------------------------------------------- */

__device__ __forceinline__ void load4(const float *p, size_t base, size_t n, bool vec, float v[4]) {
    if (vec && base + 4 <= n) {
        float4 t = *reinterpret_cast<const float4 *>(p + base);
        v[0] = t.x;
        v[1] = t.y;
        v[2] = t.z;
        v[3] = t.w;
        return;
    }
    for (int k = 0; k < 4; k++)
        v[k] = base + k < n ? p[base + k] : 0.0f;
}

__device__ __forceinline__ void store4(float *p, size_t base, size_t n, bool vec,
                                       const float v[4]) {
    if (vec && base + 4 <= n) {
        *reinterpret_cast<float4 *>(p + base) = make_float4(v[0], v[1], v[2], v[3]);
        return;
    }
    for (int k = 0; k < 4 && base + k < n; k++)
        p[base + k] = v[k];
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
