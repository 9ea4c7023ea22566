/*
 * cuda_cases.h - running a test file's cuda cases in every precision (test_epilogues.c,
 * test_graph.c). Include after harness.h and testutil.h; the cases read the context from the
 * pointer the file passes.
 */
#ifndef CUMLP_TEST_CUDA_CASES_H
#define CUMLP_TEST_CUDA_CASES_H

#include "harness.h"
#include "testutil.h"

#include <stdio.h>

/* A test of the cuda backend in one precision. */
typedef struct cuda_case {
    const char *name;
    void (*run)(void);
    int sim_only; /* drives the simulator's controls: runs only in the simulator build */
} cuda_case;

/* Runs every case (named "<precision>: <name>") with *ctx a fresh cuda context of each precision
 * in turn. Without a device it prints why the cuda parts are skipped and returns 0, unless
 * CUMLP_TEST_REQUIRE_GPU=1: then it says so and returns 1. */
static inline int run_cuda_cases(const cuda_case *cases, int count, cumlp_context **ctx) {
    for (int p = CUMLP_PRECISION_FP32; p < CUMLP_PRECISION_COUNT; p++) {
        cumlp_context_options o;
        cumlp_context_defaults(&o);
        o.backend = CUMLP_BACKEND_CUDA;
        o.precision = p;
        char why[256];
        *ctx = test_context_try(&o, why, sizeof why);
        if (!*ctx) {
            if (test_gpu_required()) fprintf(stderr, "CUMLP_TEST_REQUIRE_GPU=1: %s\n", why);
            if (!test_gpu_required()) printf("skipped: the cuda parts: %s\n", why);
            return test_gpu_required();
        }
        for (int i = 0; i < count; i++) {
#ifndef CUMLP_TEST_CUDA_SIM
            if (cases[i].sim_only) continue;
#endif
            char name[128];
            snprintf(name, sizeof name, "%s: %s", cumlp_precision_name(p), cases[i].name);
            harness_run(name, cases[i].run);
        }
        cumlp_context_destroy(*ctx);
        *ctx = NULL;
    }
    return 0;
}

/* A fresh cuda context of ctx's precision (a case that must not share ctx's state: remembered
 * algorithms, a fault injected on purpose); NULL, with a failed check saying why, if it cannot be
 * made. */
static inline cumlp_context *fresh_cuda_context(const cumlp_context *ctx) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_CUDA;
    o.precision = cumlp_context_precision(ctx);
    char why[256];
    cumlp_context *fresh = test_context_try(&o, why, sizeof why);
    CHECK_MSG(fresh != NULL, "%s", why);
    return fresh;
}

#endif /* CUMLP_TEST_CUDA_CASES_H */
