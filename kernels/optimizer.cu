/*
 * optimizer.cu - the cuda backend's optimizer update: one launch over the whole parameter arena,
 * the update rule being the shared cumlp_optimizer_update_f of cumlp_math.h.
 */
#include "cuda_common.cuh"
#include "cuda_kernels.h"

#include "cumlp_math.h"

namespace {

__global__ void optimizer_kernel(int type, cumlp_update_params_f params, size_t n, float *w,
                                 const float *g, float *s1, float *s2, bool vec) {
    for (size_t q = first_quad(); q * 4 < n; q += quad_stride()) {
        size_t base = q * 4;
        float wv[4], gv[4], m[4] = {0, 0, 0, 0}, v[4] = {0, 0, 0, 0};
        load4(w, base, n, vec, wv);
        load4(g, base, n, vec, gv);
        if (s1) load4(s1, base, n, vec, m);
        if (s2) load4(s2, base, n, vec, v);
        for (int k = 0; k < 4; k++)
            cumlp_optimizer_update_f(type, &params, &wv[k], gv[k], &m[k], &v[k]);
        store4(w, base, n, vec, wv);
        if (s1) store4(s1, base, n, vec, m);
        if (s2) store4(s2, base, n, vec, v);
    }
}

} /* namespace */

extern "C" int cumlp__cuda_optimizer_step(void *stream, int type,
                                          const cumlp_update_params_f *params, size_t count,
                                          float *param, const float *grad, float *state1,
                                          float *state2) {
    bool vec = aligned16(param) && aligned16(grad) && (!state1 || aligned16(state1)) &&
               (!state2 || aligned16(state2));
    CUMLP_LAUNCH(optimizer_kernel, blocks_for((count + 3) / 4), kThreads, 0, (cudaStream_t)stream)
    (type, *params, count, param, grad, state1, state2, vec);
    return launched();
}
