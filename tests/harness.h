/*
 * harness.h - the test harness: no framework, a few macros.
 *
 *   static void test_something(void) { CHECK(x == 1); CHECK_OK(cumlp_call(...)); }
 *   int main(void) { RUN(test_something); return harness_finish(); }
 *
 * Every CHECK that fails prints file:line and the expression and marks the running test failed;
 * the test goes on so that one run shows every failure. harness_finish() prints
 * "N passed, N failed" and returns the process exit code (0, or 1 on any failure).
 * harness_skip() exits with 77, which ctest shows as skipped.
 */
#ifndef CUMLP_HARNESS_H
#define CUMLP_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int harness_passed, harness_failed, harness_current_failed;
static const char *harness_current = "";

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, harness_current,  \
                    #cond);                                                                        \
            harness_current_failed = 1;                                                            \
        }                                                                                          \
    } while (0)

/* CHECK with a printf-style explanation. */
#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s: CHECK(%s) failed: ", __FILE__, __LINE__, harness_current,  \
                    #cond);                                                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            harness_current_failed = 1;                                                            \
        }                                                                                          \
    } while (0)

/* Checks that a cumlp call returns `expected`; prints the status names on failure. */
#define CHECK_STATUS(expr, expected)                                                               \
    do {                                                                                           \
        cumlp_status harness_st_ = (expr);                                                         \
        CHECK_MSG(harness_st_ == (expected), "got %s, expected %s",                                \
                  cumlp_status_string(harness_st_), cumlp_status_string(expected));                \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, CUMLP_SUCCESS)

/* |actual - expected| <= tol; NaN never passes. */
#define CHECK_NEAR(actual, expected, tol)                                                          \
    do {                                                                                           \
        double harness_a_ = (actual), harness_e_ = (expected);                                     \
        CHECK_MSG(fabs(harness_a_ - harness_e_) <= (tol), "%.12g vs %.12g (tol %g)", harness_a_,   \
                  harness_e_, (double)(tol));                                                      \
    } while (0)

/* Runs test as RUN does, under a name made at run time (it must live until test returns). */
static inline void harness_run(const char *name, void (*test)(void)) {
    harness_current = name;
    harness_current_failed = 0;
    test();
    if (harness_current_failed) {
        harness_failed++;
        fprintf(stderr, "FAIL %s\n", name);
    } else {
        harness_passed++;
        printf("ok   %s\n", name);
    }
}

#define RUN(test) harness_run(#test, test)

static inline int harness_finish(void) {
    printf("%d passed, %d failed\n", harness_passed, harness_failed);
    return harness_failed ? 1 : 0;
}

static inline void harness_skip(const char *why) {
    printf("skipped: %s\n", why);
    exit(77);
}

#endif /* CUMLP_HARNESS_H */
