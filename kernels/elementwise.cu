/*
 * elementwise.cu - the cuda backend's elementwise kernels: fill, scale_shift, the Box-Muller
 * transform of normal draws, the forward pass's bias + activation (softmax one warp per column),
 * the NaN/Inf scan, and the conversions between fp32 and the 16-bit formats.
 *
 * Every formula comes from cumlp_math.h (the `_f` functions) or philox.h, __host__ __device__ under
 * nvcc, so the GPU evaluates the same expressions as the CPU backends. The forward pass is a
 * template on the storage type of P, Z and A (cuda_common.cuh); the bias is always fp32.
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

/* Elementwise bias + activation (every activation but softmax). P may alias z or a. A is
 * computed from the fp32 Z, before Z is rounded into z. */
template <class T>
__global__ void bias_activation_kernel(int activation, float slope, int rows, size_t n, const T *P,
                                       const float *b, T *z, T *a, bool vec) {
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

/* Element i of column `col` of Z = P + b: read back from z when it was stored there (then
 * rounded like the Z that the loss reads). */
template <class T>
__device__ __forceinline__ float biased(const T *P, const float *b, const T *z, size_t col,
                                        int64_t i) {
    return z ? to_float(z[col + i]) : to_float(P[col + i]) + b[i];
}

/* Softmax of each column of P + b. When a aliases P (z == NULL), each lane reads its elements of
 * P before the warp-wide reductions and writes them only after, so the in-place pass is safe. The
 * maximum is a shift only: the exponentials and their sum read the same values, so a normalizes
 * the Z that z holds even when the maximum saw Z before it was rounded. */
template <class T>
__global__ void softmax_kernel(int rows, int cols, const T *P, const float *b, T *z, T *a) {
    const int lane = threadIdx.x % 32;
    const int warps = blockDim.x / 32;
    for (int64_t j = (int64_t)blockIdx.x * warps + threadIdx.x / 32; j < cols;
         j += (int64_t)gridDim.x * warps) {
        size_t col = (size_t)j * rows;
        float max = -INFINITY;
        for (int64_t i = lane; i < rows; i += 32) {
            float v = to_float(P[col + i]) + b[i];
            if (z) z[col + i] = from_float<T>(v);
            max = fmaxf(max, v);
        }
        max = warp_max(max);
        double sum = 0;
        for (int64_t i = lane; i < rows; i += 32)
            sum += expf(biased(P, b, z, col, i) - max);
        sum = warp_sum(sum);
        for (int64_t i = lane; i < rows; i += 32)
            a[col + i] = from_float<T>((float)((double)expf(biased(P, b, z, col, i) - max) / sum));
    }
}

/* dst[i] = src[i] converted: rounded to nearest even into a 16-bit format, exact into fp32. */
template <class D, class S>
__global__ void convert_kernel(D *dst, const S *src, size_t n, bool vec) {
    for (size_t q = first_quad(); q * 4 < n; q += quad_stride()) {
        float v[4];
        load4(src, q * 4, n, vec, v);
        store4(dst, q * 4, n, vec, v);
    }
}

/* Launches convert_kernel<D, S> over typed pointers (through a pointer: a template argument
 * list's comma would split the launch macro's arguments). */
template <class D, class S> int launch_convert(cudaStream_t s, D *dst, const S *src, size_t n) {
    void (*const convert)(D *, const S *, size_t, bool) = convert_kernel<D, S>;
    bool vec = aligned_quad(dst) && aligned_quad(src);
    CUMLP_LAUNCH(convert, blocks_for((n + 3) / 4), kThreads, 0, s)(dst, src, n, vec);
    return launched();
}

} /* namespace */

/* ---- launchers ------------------------------------------------------------------------------ */

extern "C" int cumlp__cuda_fill(void *stream, float *dst, size_t count, float value) {
    CUMLP_LAUNCH(fill_kernel, blocks_for((count + 3) / 4), kThreads, 0, (cudaStream_t)stream)
    (dst, count, value, aligned_quad(dst));
    return launched();
}

extern "C" int cumlp__cuda_scale_shift(void *stream, float *x, size_t count, double scale,
                                       double shift) {
    CUMLP_LAUNCH(scale_shift_kernel, blocks_for((count + 3) / 4), kThreads, 0, (cudaStream_t)stream)
    (x, count, scale, shift, aligned_quad(x));
    return launched();
}

extern "C" int cumlp__cuda_box_muller(void *stream, float *x, size_t count, const uint32_t *tail) {
    CUMLP_LAUNCH(box_muller_kernel, blocks_for((count + 1) / 2), kThreads, 0, (cudaStream_t)stream)
    (x, count, tail);
    return launched();
}

extern "C" int cumlp__cuda_bias_activation(void *stream, int storage, int activation, float slope,
                                           int rows, int cols, const void *P, const float *b,
                                           void *z, void *a) {
    cudaStream_t s = (cudaStream_t)stream;
    return dispatch_storage(storage, [&](auto type) {
        using T = decltype(type);
        const T *p = static_cast<const T *>(P);
        T *zt = static_cast<T *>(z), *at = static_cast<T *>(a);
        if (activation == CUMLP_ACT_SOFTMAX) {
            CUMLP_LAUNCH(softmax_kernel<T>, column_blocks(cols), kThreads, 0, s)
            (rows, cols, p, b, zt, at);
            return launched();
        }
        size_t n = (size_t)rows * cols;
        bool vec = aligned_quad(p) && aligned_quad(at) && (!zt || aligned_quad(zt));
        CUMLP_LAUNCH(bias_activation_kernel<T>, blocks_for((n + 3) / 4), kThreads, 0, s)
        (activation, slope, rows, n, p, b, zt, at, vec);
        return launched();
    });
}

extern "C" int cumlp__cuda_find_non_finite(void *stream, const float *x, size_t count, int *flag) {
    cudaStream_t s = (cudaStream_t)stream;
    int err = (int)cudaMemsetAsync(flag, 0, sizeof *flag, s);
    if (err) return err;
    CUMLP_LAUNCH(non_finite_kernel, blocks_for((count + 3) / 4), kThreads, 0, s)
    (x, count, flag, aligned_quad(x));
    return launched();
}

extern "C" int cumlp__cuda_convert(void *stream, void *dst, int dst_storage, const void *src,
                                   int src_storage, size_t count) {
    cudaStream_t s = (cudaStream_t)stream;
    if (src_storage == CUMLP_STORAGE_NATIVE)
        return dispatch_storage(dst_storage, [&](auto type) {
            using T = decltype(type);
            return launch_convert(s, static_cast<T *>(dst), static_cast<const float *>(src), count);
        });
    return dispatch_storage(src_storage, [&](auto type) {
        using T = decltype(type);
        return launch_convert(s, static_cast<float *>(dst), static_cast<const T *>(src), count);
    });
}
