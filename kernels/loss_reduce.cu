/*
 * loss_reduce.cu - the cuda backend's reductions: the output layer's loss and delta, the hidden
 * layers' delta * f'(z), the bias gradients (row sums of delta), and the sum of squares of an
 * arena (the gradient norm).
 *
 * Reductions are deterministic: no atomics, a fixed tiling that depends only on the shape, partial
 * sums in double, then a second pass that adds the partials in a fixed order. The delta pass is a
 * template on the storage types of its inputs and of delta (cuda_common.cuh); the bias gradients
 * and the loss sum the fp32 values it computes, before delta is rounded for storage.
 */
#include "cuda_common.cuh"
#include "cuda_kernels.h"

#include "cumlp_math.h"

namespace {

/* Reduction tile: 32 lanes (one warp) of 4 consecutive rows each, x 8 column lanes. */
constexpr int kTileLanes = 32;
constexpr int kRowsPerLane = 4;
constexpr int kTileRows = kTileLanes * kRowsPerLane;
constexpr int kTileCols = 8;
constexpr int kMaxChunks = 128;   /* column chunks of a reduction */
constexpr int kColsPerChunk = 64; /* columns per chunk before the chunk count grows */

/* Per-column softmax cross-entropy lse(z) sum(y) - y.z, in double. */
__global__ void cross_entropy_kernel(int rows, int cols, const float *z, const float *y,
                                     double *column_loss) {
    const int lane = threadIdx.x % 32;
    const int warps = blockDim.x / 32;
    for (int64_t j = (int64_t)blockIdx.x * warps + threadIdx.x / 32; j < cols;
         j += (int64_t)gridDim.x * warps) {
        size_t col = (size_t)j * rows;
        float max = -INFINITY;
        for (int64_t i = lane; i < rows; i += 32)
            max = fmaxf(max, z[col + i]);
        max = warp_max(max);
        double sum = 0, y_sum = 0, yz = 0;
        for (int64_t i = lane; i < rows; i += 32) {
            double zi = z[col + i], yi = y[col + i];
            sum += exp(zi - (double)max);
            y_sum += yi;
            yz += yi * zi;
        }
        sum = warp_sum(sum);
        y_sum = warp_sum(y_sum);
        yz = warp_sum(yz);
        if (lane == 0) column_loss[j] = ((double)max + log(sum)) * y_sum - yz;
    }
}

/* ---- the fused delta pass with its row reductions ------------------------------------------- */

/* How delta is formed from the inputs. */
enum DeltaKind { kDeltaBackward = 0, kDeltaTimesDeriv = 1, kDeltaDiff = 2 };
/* Which per-element loss term is summed (none for softmax CE: per column, see above). */
enum LossTerm { kTermNone = 0, kTermSquared = 1, kTermBce = 2 };

/* g, z and a in TIn (16-bit for the hidden layers' activation_backward, fp32 for loss_delta), the
 * targets y in fp32, delta in TD. */
template <class TIn, class TD> struct DeltaArgs {
    int kind, term, activation;
    float slope;
    float scale; /* delta's factor: FP16's loss scale for the output layer, else 1 */
    const float *scale_on_device; /* the same read from device memory when not NULL */
    int rows, cols;
    const TIn *g, *z, *a;
    const float *y;
    TD *delta;
    double *row_partials;  /* chunks x rows, or NULL for no bias gradient */
    double *loss_partials; /* one per block, or NULL */
    bool vec;              /* rows % 4 == 0 and every array aligned for Quad accesses */
};

/* Block (32, 8) covers rows [128 bx, 128 bx + 128), four consecutive rows a lane, and columns
 * by + 8 k (k >= 0) of chunk by: consecutive lanes read consecutive rows of a column (coalesced).
 * Each row's sum runs over its columns in the same order whatever the rows per lane. A lane's
 * four rows are one Quad access (load4/store4 of the `valid` rows below p.rows): a 2-byte access a
 * lane kept too few bytes in flight to fill the memory bus. */
template <class TIn, class TD> __global__ void delta_kernel(DeltaArgs<TIn, TD> p) {
    __shared__ double row_sum[kTileCols][kTileRows + 1];
    __shared__ double loss_sum[kTileCols * kTileLanes];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t i = (int64_t)blockIdx.x * kTileRows + (int64_t)tx * kRowsPerLane;
    const int64_t below = p.rows - i;
    const int valid = below <= 0 ? 0 : below < kRowsPerLane ? (int)below : kRowsPerLane;
    double acc[kRowsPerLane] = {0, 0, 0, 0}, loss = 0;
    const float scale = p.scale_on_device ? *p.scale_on_device : p.scale;
    for (int64_t j = (int64_t)blockIdx.y * kTileCols + ty; valid > 0 && j < p.cols;
         j += (int64_t)gridDim.y * kTileCols) {
        size_t k = (size_t)j * p.rows + i;
        float zv[4] = {0, 0, 0, 0}, av[4] = {0, 0, 0, 0}, in[4], d[4];
        if (p.z) load4(p.z + k, 0, valid, p.vec, zv);
        if (p.a) load4(p.a + k, 0, valid, p.vec, av);
        if (p.kind == kDeltaBackward)
            load4(p.g + k, 0, valid, p.vec, in);
        else
            load4(p.y + k, 0, valid, p.vec, in);
        for (int e = 0; e < kRowsPerLane; e++) {
            if (p.kind == kDeltaBackward) {
                d[e] = in[e] * cumlp_activate_deriv_f(p.activation, p.slope, zv[e], av[e]);
                continue;
            }
            float yv = in[e], diff = av[e] - yv;
            d[e] = p.kind == kDeltaTimesDeriv
                       ? diff * cumlp_activate_deriv_f(p.activation, p.slope, zv[e], av[e])
                       : diff;
            d[e] = d[e] * scale; /* a power of two by default: exact, and no change for 1 */
            /* The loss terms in double from the fp32 inputs, as the reference computes them: in
             * fp32, softplus(z) - y z loses every digit of a confident prediction's term (z = 20,
             * y = 1 gives 0 instead of 2e-9). */
            if (e < valid && p.term == kTermSquared) loss += cumlp_squared_error_term_d(av[e], yv);
            if (e < valid && p.term == kTermBce) loss += cumlp_bce_term_d(zv[e], yv);
        }
        store4(p.delta + k, 0, valid, p.vec, d);
        for (int e = 0; e < kRowsPerLane; e++)
            acc[e] += d[e];
    }
    for (int e = 0; e < kRowsPerLane; e++)
        row_sum[ty][tx * kRowsPerLane + e] = acc[e];
    loss_sum[ty * kTileLanes + tx] = loss;
    __syncthreads();
    if (ty == 0 && p.row_partials) {
        for (int e = 0; e < valid; e++) {
            double s = 0;
            for (int r = 0; r < kTileCols; r++)
                s += row_sum[r][tx * kRowsPerLane + e];
            p.row_partials[(size_t)blockIdx.y * p.rows + i + e] = s;
        }
    }
    if (!p.loss_partials) return;
    for (int half = kTileCols * kTileLanes / 2; half > 0; half /= 2) {
        int t = ty * kTileLanes + tx;
        if (t < half) loss_sum[t] += loss_sum[t + half];
        __syncthreads();
    }
    if (tx == 0 && ty == 0)
        p.loss_partials[(size_t)blockIdx.y * gridDim.x + blockIdx.x] = loss_sum[0];
}

/* db[i] = scale * sum over chunks of the partials, in chunk order. */
__global__ void finish_rows_kernel(int rows, int chunks, const double *partials, double scale,
                                   float *db) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < rows;
         i += (int64_t)gridDim.x * blockDim.x) {
        double s = 0;
        for (int c = 0; c < chunks; c++)
            s += partials[(size_t)c * rows + i];
        db[i] = (float)(scale * s);
    }
}

/* *out = sum of in[0..n), one block, fixed order. */
__global__ void sum_doubles_kernel(const double *in, size_t n, double *out) {
    __shared__ double s[kThreads];
    double acc = 0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
        acc += in[i];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = s[0];
}

/* partials[block] = sum over the block's grid-stride quads of x^2, in double. */
__global__ void sum_squares_kernel(const float *x, size_t n, bool vec, double *partials) {
    __shared__ double s[kThreads];
    double acc = 0;
    for (size_t q = first_quad(); q * 4 < n; q += quad_stride()) {
        float v[4];
        load4(x, q * 4, n, vec, v); /* the tail's missing elements load as 0 */
        for (int k = 0; k < 4; k++)
            acc += (double)v[k] * (double)v[k];
    }
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[blockIdx.x] = s[0];
}

dim3 delta_grid(int rows, int cols) {
    return dim3((unsigned)(((int64_t)rows + kTileRows - 1) / kTileRows),
                (unsigned)cumlp__cuda_reduction_chunks(rows, cols));
}

/* Runs the delta pass, then the bias gradient's second pass when db != NULL. */
template <class TIn, class TD>
int run_delta(cudaStream_t s, DeltaArgs<TIn, TD> p, float *db, double db_scale) {
    dim3 grid = delta_grid(p.rows, p.cols);
    /* aligned_quad(NULL) holds: an absent array never stops the wide accesses */
    p.vec = p.rows % kRowsPerLane == 0 && aligned_quad(p.g) && aligned_quad(p.z) &&
            aligned_quad(p.a) && aligned_quad(p.y) && aligned_quad(p.delta);
    /* Through a pointer: the template arguments' comma would split the launch macro's. */
    void (*const delta)(DeltaArgs<TIn, TD>) = delta_kernel<TIn, TD>;
    CUMLP_LAUNCH(delta, grid, dim3(kTileLanes, kTileCols), 0, s)(p);
    int err = launched();
    if (err || !db) return err;
    CUMLP_LAUNCH(finish_rows_kernel, blocks_for((size_t)p.rows), kThreads, 0, s)
    (p.rows, (int)grid.y, p.row_partials, db_scale, db);
    return launched();
}

} /* namespace */

/* ---- launchers ------------------------------------------------------------------------------ */

extern "C" int cumlp__cuda_reduction_chunks(int rows, int cols) {
    (void)rows;
    int64_t chunks = ((int64_t)cols + kColsPerChunk - 1) / kColsPerChunk;
    return chunks < 1 ? 1 : chunks > kMaxChunks ? kMaxChunks : (int)chunks;
}

extern "C" size_t cumlp__cuda_reduction_workspace(int rows, int cols) {
    dim3 grid = delta_grid(rows, cols);
    size_t partials = (size_t)rows * grid.y;
    size_t loss_blocks = (size_t)grid.x * grid.y;
    return (partials + loss_blocks) * sizeof(double);
}

extern "C" int cumlp__cuda_loss_delta(void *stream, int loss, int activation, float slope, int rows,
                                      int cols, const float *z, const float *a, const float *y,
                                      void *delta, int delta_storage, float *db, double db_scale,
                                      float delta_scale, const float *delta_scale_on_device,
                                      double *loss_sum, void *workspace) {
    cudaStream_t s = (cudaStream_t)stream;
    dim3 grid = delta_grid(rows, cols);
    double *row_partials = (double *)workspace;
    double *loss_partials = row_partials + (size_t)rows * grid.y;
    int term = !loss_sum                                         ? kTermNone
               : loss == CUMLP_LOSS_SQUARED_ERROR                ? kTermSquared
               : loss == CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY ? kTermBce
                                                                 : kTermNone;
    if (loss_sum && loss == CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY) {
        /* The per-column losses go after the reduction's partials. */
        double *column_loss = loss_partials + (size_t)grid.x * grid.y;
        CUMLP_LAUNCH(cross_entropy_kernel, column_blocks(cols), kThreads, 0, s)
        (rows, cols, z, y, column_loss);
        int err = launched();
        if (err) return err;
        CUMLP_LAUNCH(sum_doubles_kernel, 1, kThreads, 0, s)(column_loss, (size_t)cols, loss_sum);
        if ((err = launched())) return err;
    }
    int err = dispatch_storage(delta_storage, [&](auto type) {
        using TD = decltype(type);
        DeltaArgs<float, TD> p = {};
        p.kind = loss == CUMLP_LOSS_SQUARED_ERROR ? kDeltaTimesDeriv : kDeltaDiff;
        p.term = term;
        p.activation = activation;
        p.slope = slope;
        p.scale = delta_scale;
        p.scale_on_device = delta_scale_on_device;
        p.rows = rows;
        p.cols = cols;
        p.z = z;
        p.a = a;
        p.y = y;
        p.delta = static_cast<TD *>(delta);
        p.row_partials = db ? row_partials : NULL;
        p.loss_partials = term != kTermNone ? loss_partials : NULL;
        return run_delta(s, p, db, db_scale);
    });
    if (err || term == kTermNone) return err;
    CUMLP_LAUNCH(sum_doubles_kernel, 1, kThreads, 0, s)
    (loss_partials, (size_t)grid.x * grid.y, loss_sum);
    return launched();
}

extern "C" int cumlp__cuda_activation_backward(void *stream, int storage, int activation,
                                               float slope, int rows, int cols, const void *g,
                                               const void *z, const void *a, void *delta, float *db,
                                               double db_scale, void *workspace) {
    return dispatch_storage(storage, [&](auto type) {
        using T = decltype(type);
        DeltaArgs<T, T> p = {};
        p.kind = kDeltaBackward;
        p.term = kTermNone;
        p.activation = activation;
        p.slope = slope;
        p.scale = 1.0f;
        p.rows = rows;
        p.cols = cols;
        p.g = static_cast<const T *>(g);
        p.z = static_cast<const T *>(z);
        p.a = static_cast<const T *>(a);
        p.delta = static_cast<T *>(delta);
        p.row_partials = db ? (double *)workspace : NULL;
        return run_delta((cudaStream_t)stream, p, db, db_scale);
    });
}

extern "C" size_t cumlp__cuda_sum_squares_workspace(size_t count) {
    return (size_t)blocks_for((count + 3) / 4) * sizeof(double);
}

extern "C" int cumlp__cuda_sum_squares(void *stream, const float *x, size_t count, double *sum,
                                       void *workspace) {
    cudaStream_t s = (cudaStream_t)stream;
    unsigned blocks = blocks_for((count + 3) / 4);
    double *partials = (double *)workspace;
    CUMLP_LAUNCH(sum_squares_kernel, blocks, kThreads, 0, s)(x, count, aligned_quad(x), partials);
    int err = launched();
    if (err) return err;
    CUMLP_LAUNCH(sum_doubles_kernel, 1, kThreads, 0, s)(partials, blocks, sum);
    return launched();
}
