/*
 * elementwise.cu - the cuda backend's elementwise kernels: fill, scale_shift, the Box-Muller
 * transform of normal draws, the forward pass's bias + activation (softmax one warp per column),
 * and the NaN/Inf scan.
 *
 * Every formula comes from cumlp_math.h (the `_f` functions) or philox.h, __host__ __device__ under
 * nvcc, so the GPU evaluates the same expressions as the CPU backends.
 */
#include "cuda_common.cuh"
#include "cuda_kernels.h"

#include "cumlp_math.h"
#include "philox.h"

namespace {

__global__ void fill_kernel(float *dst, size_t n, float value, bool vec) {
    const float v[4] = {value, value, value, value};
    for (size_t q = first_quad(); q * 4 < n; q += quad_stride())
        store4(dst, q * 4, n, vec, v);
}

__global__ void scale_shift_kernel(float *x, size_t n, double scale, double shift, bool vec) {
    for (size_t q = first_quad(); q * 4 < n; q += quad_stride()) {
        float v[4];
        load4(x, q * 4, n, vec, v);
        for (int k = 0; k < 4; k++)
            v[k] = __double2float_rn(fma((double)v[k], scale, shift));
        store4(x, q * 4, n, vec, v);
    }
}

/* Normal draws in place from the stream's 32-bit words: x[0..n) holds words 0..n-1 (as cuRAND wrote
 * them, read back as bits), *tail word n when n is odd. Words 2p and 2p + 1 become normals 2p and
 * 2p + 1, one pair per thread, each thread reading both words before writing either. */
__global__ void box_muller_kernel(float *x, size_t n, const uint32_t *tail) {
    for (size_t p = first_quad(); 2 * p < n; p += quad_stride()) {
        size_t i = 2 * p;
        uint32_t second_word = i + 1 < n ? __float_as_uint(x[i + 1]) : *tail;
        float z[2];
        cumlp_box_muller(__float_as_uint(x[i]), second_word, &z[0], &z[1]);
        x[i] = z[0];
        if (i + 1 < n) x[i + 1] = z[1];
    }
}

/* Elementwise bias + activation (every activation but softmax). P may alias z or a. */
__global__ void bias_activation_kernel(int activation, float slope, int rows, size_t n,
                                       const float *P, const float *b, float *z, float *a,
                                       bool vec) {
    for (size_t q = first_quad(); q * 4 < n; q += quad_stride()) {
        size_t base = q * 4;
        float v[4];
        load4(P, base, n, vec, v);
        int row = (int)(base % (size_t)rows);
        for (int k = 0; k < 4; k++) {
            v[k] += b[row];
            row = row + 1 == rows ? 0 : row + 1;
        }
        if (z) store4(z, base, n, vec, v);
        for (int k = 0; k < 4; k++)
            v[k] = cumlp_activate_f(activation, slope, v[k]);
        store4(a, base, n, vec, v);
    }
}

/* Sets *flag = 1 on any NaN or Inf (every writer stores the same value: no atomics needed). */
__global__ void non_finite_kernel(const float *x, size_t n, int *flag, bool vec) {
    for (size_t q = first_quad(); q * 4 < n; q += quad_stride()) {
        float v[4];
        load4(x, q * 4, n, vec, v);
        if (!(isfinite(v[0]) && isfinite(v[1]) && isfinite(v[2]) && isfinite(v[3]))) *flag = 1;
    }
}

/* Element i of column `col` of Z = P + b: read back from z when it was stored there. */
__device__ __forceinline__ float biased(const float *P, const float *b, const float *z, size_t col,
                                        int64_t i) {
    return z ? z[col + i] : P[col + i] + b[i];
}

/* Softmax of each column of P + b. When a aliases P (z == NULL), each lane reads its elements of
 * P before the warp-wide reductions and writes them only after, so the in-place pass is safe. */
__global__ void softmax_kernel(int rows, int cols, const float *P, const float *b, float *z,
                               float *a) {
    const int lane = threadIdx.x % 32;
    const int warps = blockDim.x / 32;
    for (int64_t j = (int64_t)blockIdx.x * warps + threadIdx.x / 32; j < cols;
         j += (int64_t)gridDim.x * warps) {
        size_t col = (size_t)j * rows;
        float max = -INFINITY;
        for (int64_t i = lane; i < rows; i += 32) {
            float v = P[col + i] + b[i];
            if (z) z[col + i] = v;
            max = fmaxf(max, v);
        }
        max = warp_max(max);
        double sum = 0;
        for (int64_t i = lane; i < rows; i += 32)
            sum += expf(biased(P, b, z, col, i) - max);
        sum = warp_sum(sum);
        for (int64_t i = lane; i < rows; i += 32)
            a[col + i] = (float)((double)expf(biased(P, b, z, col, i) - max) / sum);
    }
}

} /* namespace */

/* ---- launchers ------------------------------------------------------------------------------ */

extern "C" int cumlp__cuda_fill(void *stream, float *dst, size_t count, float value) {
    CUMLP_LAUNCH(fill_kernel, blocks_for((count + 3) / 4), kThreads, 0, (cudaStream_t)stream)
    (dst, count, value, aligned16(dst));
    return launched();
}

extern "C" int cumlp__cuda_scale_shift(void *stream, float *x, size_t count, double scale,
                                       double shift) {
    CUMLP_LAUNCH(scale_shift_kernel, blocks_for((count + 3) / 4), kThreads, 0, (cudaStream_t)stream)
    (x, count, scale, shift, aligned16(x));
    return launched();
}

extern "C" int cumlp__cuda_box_muller(void *stream, float *x, size_t count, const uint32_t *tail) {
    CUMLP_LAUNCH(box_muller_kernel, blocks_for((count + 1) / 2), kThreads, 0, (cudaStream_t)stream)
    (x, count, tail);
    return launched();
}

extern "C" int cumlp__cuda_bias_activation(void *stream, int activation, float slope, int rows,
                                           int cols, const float *P, const float *b, float *z,
                                           float *a) {
    cudaStream_t s = (cudaStream_t)stream;
    if (activation == CUMLP_ACT_SOFTMAX) {
        CUMLP_LAUNCH(softmax_kernel, column_blocks(cols), kThreads, 0, s)(rows, cols, P, b, z, a);
        return launched();
    }
    size_t n = (size_t)rows * cols;
    bool vec = aligned16(P) && aligned16(a) && (!z || aligned16(z));
    CUMLP_LAUNCH(bias_activation_kernel, blocks_for((n + 3) / 4), kThreads, 0, s)
    (activation, slope, rows, n, P, b, z, a, vec);
    return launched();
}

extern "C" int cumlp__cuda_find_non_finite(void *stream, const float *x, size_t count, int *flag) {
    cudaStream_t s = (cudaStream_t)stream;
    int err = (int)cudaMemsetAsync(flag, 0, sizeof *flag, s);
    if (err) return err;
    CUMLP_LAUNCH(non_finite_kernel, blocks_for((count + 3) / 4), kThreads, 0, s)
    (x, count, flag, aligned16(x));
    return launched();
}
