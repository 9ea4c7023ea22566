/*
 * numeric.c - locale-independent strtod/strtof/printf; see numeric.h.
 *
 * One "C" LC_NUMERIC locale object (POSIX 2008 newlocale) is created on first use and published
 * with an atomic compare-and-swap, so concurrent first calls are safe: the loser frees its copy.
 * Each helper installs it as the calling thread's locale with uselocale() for the one conversion
 * and then restores whatever the thread had, so other threads and the process locale (setlocale)
 * are never touched. The object is kept for the life of the process.
 */
#define _POSIX_C_SOURCE 200809L

#include "numeric.h"

#include <locale.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

static _Atomic(locale_t) c_numeric = (locale_t)0;

static locale_t c_locale(void) {
    locale_t loc = atomic_load_explicit(&c_numeric, memory_order_acquire);
    if (loc != (locale_t)0) return loc;
    /* LC_NUMERIC from "C", every other category from the "C" locale too (base 0). */
    locale_t made = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (made == (locale_t)0) return (locale_t)0;
    locale_t expected = (locale_t)0;
    if (atomic_compare_exchange_strong_explicit(&c_numeric, &expected, made, memory_order_acq_rel,
                                                memory_order_acquire))
        return made;
    freelocale(made); /* another thread published its object first */
    return expected;
}

int cumlp__numeric_ready(void) {
    return c_locale() != (locale_t)0;
}

double cumlp__strtod_c(const char *s, char **end) {
    locale_t loc = c_locale();
    if (loc == (locale_t)0) {
        if (end) *end = (char *)(uintptr_t)s;
        return 0.0;
    }
    locale_t previous = uselocale(loc);
    double v = strtod(s, end);
    uselocale(previous);
    return v;
}

float cumlp__strtof_c(const char *s, char **end) {
    locale_t loc = c_locale();
    if (loc == (locale_t)0) {
        if (end) *end = (char *)(uintptr_t)s;
        return 0.0f;
    }
    locale_t previous = uselocale(loc);
    float v = strtof(s, end);
    uselocale(previous);
    return v;
}

int cumlp__format_double_c(char *buf, size_t size, double x) {
    locale_t loc = c_locale();
    if (loc == (locale_t)0) {
        if (size) buf[0] = '\0';
        return -1;
    }
    locale_t previous = uselocale(loc);
    int n = snprintf(buf, size, "%.17g", x);
    uselocale(previous);
    return n;
}
