/*
 * optimizer.cu - the cuda backend's optimizer update: one launch over the whole parameter arena,
 * the update rule being the shared cumlp_optimizer_update_f of cumlp_math.h. In BF16 and FP16 the
 * same pass stores each updated parameter rounded into the 16-bit weight copy the GEMMs read, so
 * that the copy costs no launch of its own.
 */
#include "cuda_common.cuh"
#include "cuda_kernels.h"

#include "cumlp_math.h"
#include "step_rule.h"

namespace {

/* The state arrays by value (a kernel argument), NULL where the rule keeps none. */
struct StateArrays {
    float *s[CUMLP_OPTIMIZER_MAX_STATES];
};

/* C: the element type of the weight copy w16 (NULL for none; float is the instantiation without
 * one). With decided != NULL the hyper-parameters are its update, and nothing is written unless
 * its step was taken (the device-resident step). */
template <class C>
__global__ void optimizer_kernel(int type, cumlp_update_params_f given, size_t n, float *w,
                                 const float *g, StateArrays st, C *w16, bool vec,
                                 const cumlp_step_state *decided) {
    if (decided && decided->outcome != CUMLP_STEP_TAKEN) return;
    const cumlp_update_params_f params = decided ? decided->update : given;
    for (size_t q = first_quad(); q * 4 < n; q += quad_stride()) {
        size_t base = q * 4;
        float wv[4], gv[4], s[CUMLP_OPTIMIZER_MAX_STATES][4] = {};
        load4(w, base, n, vec, wv);
        load4(g, base, n, vec, gv);
        for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
            if (st.s[k]) load4(st.s[k], base, n, vec, s[k]);
        for (int e = 0; e < 4; e++) /* absent arenas: zeros, written but never stored */
            cumlp_optimizer_update_f(type, &params, &wv[e], gv[e], &s[0][e], &s[1][e], &s[2][e]);
        store4(w, base, n, vec, wv);
        for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++)
            if (st.s[k]) store4(st.s[k], base, n, vec, s[k]);
        if (w16) store4(w16, base, n, vec, wv);
    }
}

} /* namespace */

/* The launch of both entry points below. */
static int launch_update(void *stream, int type, const cumlp_update_params_f *params,
                         const cumlp_step_state *decided, size_t count, float *param,
                         const float *grad, float *const state[CUMLP_OPTIMIZER_MAX_STATES],
                         void *param_copy, int copy_storage) {
    StateArrays st;
    bool vec = aligned_quad(param) && aligned_quad(grad);
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++) {
        st.s[k] = state[k];
        vec = vec && (!state[k] || aligned_quad(state[k]));
    }
    return dispatch_storage(param_copy ? copy_storage : CUMLP_STORAGE_NATIVE, [&](auto copy_type) {
        using C = decltype(copy_type);
        C *copy = static_cast<C *>(param_copy);
        bool v = vec && (!copy || aligned_quad(copy));
        CUMLP_LAUNCH(optimizer_kernel<C>, blocks_for((count + 3) / 4), kThreads, 0,
                     (cudaStream_t)stream)
        (type, *params, count, param, grad, st, copy, v, decided);
        return launched();
    });
}

extern "C" int cumlp__cuda_optimizer_step(void *stream, int type,
                                          const cumlp_update_params_f *params, size_t count,
                                          float *param, const float *grad,
                                          float *const state[CUMLP_OPTIMIZER_MAX_STATES],
                                          void *param_copy, int copy_storage) {
    return launch_update(stream, type, params, NULL, count, param, grad, state, param_copy,
                         copy_storage);
}

extern "C" int cumlp__cuda_optimizer_step_decided(void *stream, int type, const void *step_state,
                                                  size_t count, float *param, const float *grad,
                                                  float *const state[CUMLP_OPTIMIZER_MAX_STATES],
                                                  void *param_copy, int copy_storage) {
    const cumlp_update_params_f unused = {};
    return launch_update(stream, type, &unused, static_cast<const cumlp_step_state *>(step_state),
                         count, param, grad, state, param_copy, copy_storage);
}

namespace {

__global__ void step_decide_kernel(cumlp_step_state *s, double batch_samples) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    /* fp32 squares summed in double never overflow: the sum is finite iff every gradient is */
    s->grads_finite = isfinite(s->sum_squares);
    s->batch_samples = batch_samples;
    cumlp_step_decide(s);
}

} /* namespace */

extern "C" int cumlp__cuda_step_decide(void *stream, void *step_state, double batch_samples) {
    CUMLP_LAUNCH(step_decide_kernel, 1, 1, 0, (cudaStream_t)stream)
    (static_cast<cumlp_step_state *>(step_state), batch_samples);
    return launched();
}

namespace {

/* One block: each thread counts its columns, the block adds the counts in a fixed order. */
__global__ void step_score_kernel(cumlp_step_state *s, int kind, int rows, int cols, const float *a,
                                  const float *y) {
    __shared__ int64_t count[kThreads];
    if (s->outcome != CUMLP_STEP_TAKEN) return; /* the same for every thread */
    int64_t mine = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
        mine += cumlp_column_correct(a + j * rows, y + j * rows, rows, kind);
    count[threadIdx.x] = mine;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) count[threadIdx.x] += count[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) s->summary_correct += count[0];
}

} /* namespace */

extern "C" int cumlp__cuda_step_score(void *stream, void *step_state, int kind, int rows, int cols,
                                      const void *a, const void *y) {
    CUMLP_LAUNCH(step_score_kernel, 1, kThreads, 0, (cudaStream_t)stream)
    (static_cast<cumlp_step_state *>(step_state), kind, rows, cols, static_cast<const float *>(a),
     static_cast<const float *>(y));
    return launched();
}
