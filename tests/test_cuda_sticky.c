/* ctest-labels: gpu */
/*
 * A device fault poisons a cuda context: a tensor wrapping an address that is not device memory
 * makes the forward pass fault (cudaErrorIllegalAddress), after which every call on the context
 * returns CUMLP_ERROR_DEVICE, and destroying it still works. The fault is provoked on purpose, so
 * scripts/gpu_sanitize.sh leaves this test out. It runs in its own process because a fault
 * corrupts the process's CUDA context for good.
 */
#include "harness.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void test_fault_is_sticky(void) {
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_CUDA);
    const int64_t widths[] = {256, 256, 256};
    const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_IDENTITY};
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SQUARED_ERROR, 1);
    cumlp_tensor *X = NULL, *Y = NULL;
    /* Not device memory: low addresses are never mapped. */
    CHECK_OK(cumlp_tensor_wrap(ctx, (void *)(uintptr_t)0x1000, 256, 1024, &X));
    CHECK_OK(cumlp_tensor_create(ctx, 256, 1024, &Y));
    cumlp_status st = cumlp_forward(net, X, Y);
    if (st == CUMLP_SUCCESS) st = cumlp_context_synchronize(ctx);
    CHECK_STATUS(st, CUMLP_ERROR_DEVICE);
    CHECK(strlen(cumlp_last_error(ctx)) > 0);
    /* Sticky: every later call fails the same way. */
    CHECK_STATUS(cumlp_context_synchronize(ctx), CUMLP_ERROR_DEVICE);
    cumlp_tensor *other = NULL;
    CHECK_STATUS(cumlp_tensor_create(ctx, 4, 4, &other), CUMLP_ERROR_DEVICE);
    CHECK(other == NULL);
    float *host = test_alloc_floats(256 * 1024);
    CHECK_STATUS(cumlp_tensor_download(Y, host, 256 * 1024), CUMLP_ERROR_DEVICE);
    free(host);
    cumlp_tensor_destroy(X);
    cumlp_tensor_destroy(Y);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx); /* must not crash or hang */
}

int main(void) {
    RUN(test_fault_is_sticky);
    return harness_finish();
}
