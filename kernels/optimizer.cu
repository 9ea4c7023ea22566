/*
 * optimizer.cu - the cuda backend's optimizer update: one launch over the whole parameter arena,
 * the update rule being the shared cumlp_optimizer_update_f of cumlp_math.h.
 */
#include "cuda_common.cuh"
#include "cuda_kernels.h"

#include "cumlp_math.h"

namespace {

/* The state arrays by value (a kernel argument), NULL where the rule keeps none. */
struct StateArrays {
    float *s[CUMLP_OPTIMIZER_MAX_STATES];
};

__global__ void optimizer_kernel(int type, cumlp_update_params_f params, size_t n, float *w,
                                 const float *g, StateArrays st, bool vec) {
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
    }
}

} /* namespace */

extern "C" int cumlp__cuda_optimizer_step(void *stream, int type,
                                          const cumlp_update_params_f *params, size_t count,
                                          float *param, const float *grad,
                                          float *const state[CUMLP_OPTIMIZER_MAX_STATES]) {
    StateArrays st;
    bool vec = aligned16(param) && aligned16(grad);
    for (int k = 0; k < CUMLP_OPTIMIZER_MAX_STATES; k++) {
        st.s[k] = state[k];
        vec = vec && (!state[k] || aligned16(state[k]));
    }
    CUMLP_LAUNCH(optimizer_kernel, blocks_for((count + 3) / 4), kThreads, 0, (cudaStream_t)stream)
    (type, *params, count, param, grad, st, vec);
    return launched();
}
