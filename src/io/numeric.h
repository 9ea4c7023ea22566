/*
 * numeric.h - number parsing and formatting that ignore the process locale.
 *
 * strtod, strtof and printf's %g follow LC_NUMERIC: after a host program calls
 * setlocale(LC_NUMERIC, "de_DE.UTF-8") they read and write "1,5" instead of "1.5". cumlp's file
 * formats (CSV, FANN, checkpoint metadata) are always in C syntax, so every number the library
 * reads from or writes to a file goes through these helpers, which switch the calling thread
 * (only it: POSIX 2008 uselocale) to the "C" locale for the one call. They are thread-safe and
 * never change the process locale. Parsing is as exact as the C library's strtod/strtof
 * (correctly rounded in glibc): "%.17g" of a double reads back as the same double, and "%.9g" of
 * a float through cumlp__strtof_c as the same float.
 */
#ifndef CUMLP_NUMERIC_H
#define CUMLP_NUMERIC_H

#include <stddef.h>

/*
 * Makes sure the "C" locale object the helpers use exists (it is created once per process and
 * kept). Returns 1, or 0 if it cannot be created (out of memory); then the parse helpers convert
 * nothing and cumlp__format_double_c writes "". Call it first to report that case as
 * CUMLP_ERROR_ALLOC_FAILED.
 */
int cumlp__numeric_ready(void);

/* strtod / strtof in the "C" locale: the same syntax, *end and errno behaviour. */
double cumlp__strtod_c(const char *s, char **end);
float cumlp__strtof_c(const char *s, char **end);

/* snprintf(buf, size, "%.17g", x) in the "C" locale (round-trip exact). Returns snprintf's value,
 * or -1 if the locale object is unavailable (buf then holds ""). */
int cumlp__format_double_c(char *buf, size_t size, double x);

#endif
