/* ctest-labels: gpu */
/*
 * Device memory across training on the cuda backend: after a context with a network, a training
 * step and a synchronize is destroyed, free device memory is what it was before, also after many
 * such cycles, and each destroy returns its object's bytes to the context's count. (Training runs
 * against the reference are rows of test_backend_ops; seed 003's worked example runs on every
 * backend in test_worked_example.)
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "harness.h"
#include "testutil.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

/* cudaMemGetInfo from the CUDA runtime the library links, looked up at run time so that this
 * file needs no CUDA header. */
typedef int (*mem_get_info_fn)(size_t *free_bytes, size_t *total_bytes);

static size_t device_free_memory(void) {
    void *sym = dlsym(RTLD_DEFAULT, "cudaMemGetInfo");
    mem_get_info_fn fn;
    if (!sym) return 0;
    memcpy(&fn, &sym, sizeof fn);
    size_t free_bytes = 0, total = 0;
    if (fn(&free_bytes, &total) != 0) return 0;
    return free_bytes;
}

/* A context with a network, one training step and a synchronize, then everything destroyed. */
static void one_cycle(void) {
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_CUDA);
    const int64_t widths[] = {64, 256, 10};
    const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX};
    cumlp_network *net = test_network(ctx, 2, widths, acts, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, 3);
    test_rng r = {5};
    float *x = test_alloc_floats(64 * 512), *y = test_alloc_floats(10 * 512);
    test_fill_uniform(&r, x, 64 * 512, -1, 1);
    test_fill_one_hot(&r, y, 10, 512);
    cumlp_tensor *X = test_tensor_from(ctx, x, 64, 512), *Y = test_tensor_from(ctx, y, 10, 512);
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, NULL, &opt));
    double loss;
    CHECK_OK(cumlp_train_step(net, opt, X, Y, &loss));
    CHECK_OK(cumlp_context_synchronize(ctx));
    /* The context's count: at least the tensors, parameters and gradients (plain SGD). */
    int64_t params = 64 * 256 + 256 + 256 * 10 + 10, in_use = 0, peak = 0;
    CHECK_OK(cumlp_context_memory(ctx, &in_use, &peak));
    CHECK_MSG(in_use >= (int64_t)sizeof(float) * (74 * 512 + 2 * params) && peak >= in_use,
              "in use %lld, peak %lld", (long long)in_use, (long long)peak);
    /* Each destroy returns its object's bytes: exactly for the tensors, at least the arenas and
     * the work buffers (each layer's output, 266 x 512) for the network. The scratch stays. */
    int64_t after = 0;
    cumlp_tensor_destroy(X);
    CHECK_OK(cumlp_context_memory(ctx, &after, NULL));
    CHECK_MSG(in_use - after == 64 * 512 * 4, "X returned %lld bytes", (long long)(in_use - after));
    in_use = after;
    cumlp_tensor_destroy(Y);
    CHECK_OK(cumlp_context_memory(ctx, &after, NULL));
    CHECK_MSG(in_use - after == 10 * 512 * 4, "Y returned %lld bytes", (long long)(in_use - after));
    in_use = after;
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    CHECK_OK(cumlp_context_memory(ctx, &after, NULL));
    CHECK_MSG(in_use - after >= 4 * (2 * params + 266 * 512), "the network returned %lld bytes",
              (long long)(in_use - after));
    cumlp_context_destroy(ctx);
    free(x);
    free(y);
}

/* Device-wide free memory is only this process's to compare when no other process uses the GPU:
 * ctest's device lock keeps cumlp's other tests away, but compute-sanitizer allocates device
 * memory of its own while it runs (scripts/gpu_sanitize.sh sets CUMLP_TEST_UNDER_SANITIZER). */
static int under_compute_sanitizer(void) {
    const char *v = getenv("CUMLP_TEST_UNDER_SANITIZER");
    return v && strcmp(v, "1") == 0;
}

static void test_memory_returns(void) {
    one_cycle(); /* warm-up: the runtime's own context and lazily loaded modules stay */
    if (under_compute_sanitizer()) {
        printf("     (under compute-sanitizer: the per-object counts only, not free memory)\n");
        for (int i = 0; i < 3; i++)
            one_cycle();
        return;
    }
    size_t before = device_free_memory();
    CHECK_MSG(before > 0, "cudaMemGetInfo is not available");
    one_cycle();
    size_t after_one = device_free_memory();
    CHECK_MSG(after_one == before, "free memory %zu before, %zu after one context", before,
              after_one);
    for (int i = 0; i < 10; i++)
        one_cycle();
    size_t after_many = device_free_memory();
    CHECK_MSG(after_many == before, "free memory %zu before, %zu after 10 more contexts", before,
              after_many);
}

int main(void) {
    cumlp_context_destroy(test_context_or_skip(CUMLP_BACKEND_CUDA)); /* skips without a GPU */
    RUN(test_memory_returns);
    return harness_finish();
}
