/* ctest-labels: unit cuda */
/*
 * The cuda backend's error paths, driven by the CUDA simulator's fault injection (so this test runs
 * only in a -DCUMLP_CUDA_SIM=ON build; elsewhere it is skipped): every device allocation a
 * context, a network, an optimizer and a training step make is failed in turn, and each failure
 * must come back as CUMLP_ERROR_ALLOC_FAILED with nothing changed and nothing leaked (the simulator
 * reports device memory never freed, ASan host memory); every pinned allocation failed in turn
 * must fail the context's creation the same way or leave the copies to go direct (the same loss);
 * and a device fault at every call in turn must come back as CUMLP_ERROR_DEVICE, sticky, with the
 * objects still destroyable. Both in FP32 and in FP16 (the 16-bit weight copy, input copy and work
 * buffers: BF16 makes the same ones).
 */
#include "harness.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#ifdef CUMLP_TEST_CUDA_SIM
#include "cudasim_control.h"

#define IN    9
#define OUT   4
#define BATCH 33

typedef struct session {
    cumlp_context *ctx;
    cumlp_network *net;
    cumlp_optimizer *opt;
    cumlp_tensor *X, *Y;
} session;

static void session_destroy(session *s) {
    cumlp_tensor_destroy(s->X);
    cumlp_tensor_destroy(s->Y);
    cumlp_optimizer_destroy(s->opt);
    cumlp_network_destroy(s->net);
    cumlp_context_destroy(s->ctx);
    memset(s, 0, sizeof *s);
}

static int precision; /* of the sessions */

/* Everything a training program does once, stopping at the first failure, whose status it
 * returns; the last step's loss in *loss_out when not NULL. */
static cumlp_status session_run(session *s, double *loss_out) {
    cumlp_context_options co;
    cumlp_context_defaults(&co);
    co.backend = CUMLP_BACKEND_CUDA;
    co.precision = precision;
    cumlp_status st = cumlp_context_create(&s->ctx, &co);
    const int64_t widths[] = {IN, 17, OUT};
    const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_SOFTMAX};
    cumlp_network_options no;
    cumlp_network_defaults(&no);
    no.loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY;
    no.init = CUMLP_INIT_HE_NORMAL;
    if (st == CUMLP_SUCCESS) st = cumlp_network_create(s->ctx, 2, widths, acts, &no, &s->net);
    cumlp_optimizer_options oo;
    cumlp_optimizer_defaults(&oo);
    oo.type = CUMLP_OPT_ADAM;
    if (st == CUMLP_SUCCESS) st = cumlp_optimizer_create(s->net, &oo, &s->opt);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_create(s->ctx, IN, BATCH, &s->X);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_create(s->ctx, OUT, BATCH, &s->Y);
    float x[IN * BATCH], y[OUT * BATCH];
    test_rng r = {11};
    test_fill_uniform(&r, x, IN * BATCH, -1, 1);
    test_fill_one_hot(&r, y, OUT, BATCH);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_upload(s->X, x, IN * BATCH);
    if (st == CUMLP_SUCCESS) st = cumlp_tensor_upload(s->Y, y, OUT * BATCH);
    double loss = 0;
    for (int step = 0; step < 2 && st == CUMLP_SUCCESS; step++)
        st = cumlp_train_step(s->net, s->opt, s->X, s->Y, &loss);
    if (st == CUMLP_SUCCESS) st = cumlp_context_synchronize(s->ctx);
    if (loss_out) *loss_out = loss;
    return st;
}

/* Fails the 1st, 2nd, ... device allocation until a run makes no more than that. */
static void test_every_allocation_failure(void) {
    int failures = 0;
    for (int nth = 1; nth < 200; nth++) {
        session s = {0};
        cudasim_reset();
        cudasim_fail_allocation(nth);
        cumlp_status st = session_run(&s, NULL);
        int outputs_clean = 1;
        if (st != CUMLP_SUCCESS) {
            CHECK_MSG(st == CUMLP_ERROR_ALLOC_FAILED, "allocation %d: %s: %s", nth,
                      cumlp_status_string(st), cumlp_last_error(s.ctx));
            CHECK_MSG(cumlp_last_error(s.ctx)[0] != '\0', "allocation %d: no message", nth);
            failures++;
        }
        /* A failed create leaves its output NULL (the later objects were never made). */
        if (st != CUMLP_SUCCESS && !s.ctx) outputs_clean = !s.net && !s.opt && !s.X && !s.Y;
        CHECK_MSG(outputs_clean, "allocation %d: objects left after a failed create", nth);
        session_destroy(&s);
        cudasim_fail_allocation(0);
        if (st == CUMLP_SUCCESS) break; /* the nth allocation was past the last one */
    }
    CHECK_MSG(failures >= 5, "only %d allocations were made", failures);
    CHECK_MSG(cudasim_error_count() == 0, "the simulator reported %d faults",
              cudasim_error_count());
}

/* Fails the 1st, 2nd, ... pinned allocation (the context's own for the loss read-back, then the
 * staging halves of the first upload): a failed context creation is CUMLP_ERROR_ALLOC_FAILED;
 * without staging memory the copies go direct and wait (cuda.c's copy_and_wait), and the run
 * gives the loss of a run without the failure, bit for bit. */
static void test_every_pinned_allocation_failure(void) {
    session s = {0};
    double want = 0;
    cudasim_reset();
    CHECK_OK(session_run(&s, &want));
    session_destroy(&s);
    int failed = 0, fell_back = 0;
    for (int nth = 1; nth <= 4; nth++) {
        double loss = 0;
        cudasim_reset();
        cudasim_fail_host_allocation(nth);
        cumlp_status st = session_run(&s, &loss);
        if (st != CUMLP_SUCCESS) {
            CHECK_MSG(st == CUMLP_ERROR_ALLOC_FAILED && !s.ctx, "pinned allocation %d: %s: %s", nth,
                      cumlp_status_string(st), cumlp_last_error(NULL));
            failed++;
        } else {
            CHECK_MSG(loss == want, "pinned allocation %d: loss %.17g, want %.17g", nth, loss,
                      want);
            fell_back += nth == 2;
        }
        session_destroy(&s);
    }
    cudasim_fail_host_allocation(0);
    CHECK_MSG(failed == 1 && fell_back == 1, "%d failed creations, %d direct-copy runs", failed,
              fell_back);
    CHECK_MSG(cudasim_error_count() == 0, "the simulator reported %d faults",
              cudasim_error_count());
}

/* A device fault at the 1st, 2nd, ... call: the run fails with a device error, and every later
 * call on the context fails the same way. */
static void test_every_sticky_fault(void) {
    int faults = 0;
    for (int nth = 1; nth < 400; nth++) {
        session s = {0};
        cudasim_reset();
        cudasim_inject_sticky_error(nth);
        cumlp_status st = session_run(&s, NULL);
        if (st == CUMLP_SUCCESS) {
            session_destroy(&s);
            cudasim_inject_sticky_error(0);
            break;
        }
        faults++;
        CHECK_MSG(st == CUMLP_ERROR_DEVICE || st == CUMLP_ERROR_NO_DEVICE ||
                      st == CUMLP_ERROR_ALLOC_FAILED,
                  "call %d: %s", nth, cumlp_status_string(st));
        if (s.ctx && st == CUMLP_ERROR_DEVICE) {
            /* Sticky: the context refuses everything after the fault. */
            CHECK_STATUS(cumlp_context_synchronize(s.ctx), CUMLP_ERROR_DEVICE);
            cumlp_tensor *t = (cumlp_tensor *)&s;
            CHECK_STATUS(cumlp_tensor_create(s.ctx, 2, 2, &t), CUMLP_ERROR_DEVICE);
            CHECK(t == NULL);
        }
        session_destroy(&s); /* must release what it can */
    }
    CHECK_MSG(faults >= 20, "only %d calls were made", faults);
    cudasim_reset();
}
#endif

int main(void) {
#ifdef CUMLP_TEST_CUDA_SIM
    cumlp_context_destroy(test_context_or_skip(CUMLP_BACKEND_CUDA));
    const int precisions[] = {CUMLP_PRECISION_FP32, CUMLP_PRECISION_FP16};
    for (int p = 0; p < 2; p++) {
        precision = precisions[p];
        printf("precision %s:\n", cumlp_precision_name(precision));
        RUN(test_every_allocation_failure);
        RUN(test_every_pinned_allocation_failure);
        RUN(test_every_sticky_fault);
    }
    return harness_finish();
#else
    harness_skip("fault injection needs the CUDA simulator (-DCUMLP_CUDA_SIM=ON)");
#endif
}
