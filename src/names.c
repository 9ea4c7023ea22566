/*
 * names.c - the names of cumlp's named values and their parsers, generated from the lists in
 * cumlp.h (CUMLP_<SET>_LIST): one table per set, so that the CLI, the checkpoint metadata, the
 * benchmarks and the Fortran module all spell a value the same way.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* A set of named values: the names indexed by value, and the C identifiers (without the prefix)
 * whose lower-case forms the parser also accepts. */
typedef struct name_set {
    const char *what; /* for messages: "activation" */
    const char *const *names;
    const char *const *identifiers;
    int count;
} name_set;

static const char *name_of(const name_set *set, int value) {
    return value >= 0 && value < set->count ? set->names[value] : "unknown";
}

/* Whether text[0..length) is `identifier` in lower case. */
static int is_lower_identifier(const char *text, size_t length, const char *identifier) {
    if (strlen(identifier) != length) return 0;
    for (size_t i = 0; i < length; i++) {
        char c = identifier[i];
        char lower = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        if (text[i] != lower) return 0;
    }
    return 1;
}

static int value_of(const name_set *set, const char *text, size_t length) {
    for (int v = 0; v < set->count; v++) {
        const char *name = set->names[v];
        if (strlen(name) == length && memcmp(name, text, length) == 0) return v;
    }
    for (int v = 0; v < set->count; v++)
        if (is_lower_identifier(text, length, set->identifiers[v])) return v;
    return -1;
}

/* "a, b, c or d" into buf. */
static void list_names(const name_set *set, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int v = 0; v < set->count && used < size; v++) {
        const char *sep = v == 0 ? "" : v == set->count - 1 ? " or " : ", ";
        int n = snprintf(buf + used, size - used, "%s%s", sep, set->names[v]);
        if (n < 0) break;
        used += (size_t)n;
    }
}

static cumlp_status parse(const name_set *set, const char *func, const char *name, int *value) {
    if (!name || !value)
        return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "%s is NULL",
                           name ? "value" : "name");
    int v = value_of(set, name, strlen(name));
    if (v < 0) {
        char names[256];
        list_names(set, names, sizeof names);
        return cumlp__error(NULL, CUMLP_ERROR_INVALID_VALUE, "unknown %s '%s' (expected %s)",
                            set->what, name, names);
    }
    *value = v;
    return CUMLP_SUCCESS;
}

#define NAME_ENTRY(id, value, name)       [value] = name,
#define IDENTIFIER_ENTRY(id, value, name) [value] = #id,

/* A repeated value in a list is an overridden initializer: make it an error, not a warning. */
#if defined(__GNUC__)
#pragma GCC diagnostic error "-Woverride-init"
#endif

/* The name table of one list, its identifiers, and a check that the values run from 0 to
 * COUNT - 1: a gap or a value past the end would make the table longer than the count. */
#define NAME_SET(set, what_text, LIST, COUNT)                                                      \
    static const char *const set##_names[] = {LIST(NAME_ENTRY)};                                   \
    static const char *const set##_identifiers[] = {LIST(IDENTIFIER_ENTRY)};                       \
    _Static_assert(sizeof set##_names / sizeof set##_names[0] == (COUNT),                          \
                   #LIST " must hold the values 0 .. " #COUNT " - 1");                             \
    static const name_set set##_set = {what_text, set##_names, set##_identifiers, (COUNT)}

NAME_SET(status, "status", CUMLP_STATUS_LIST, CUMLP_STATUS_COUNT);
NAME_SET(backend, "backend", CUMLP_BACKEND_LIST, CUMLP_BACKEND_COUNT);
NAME_SET(precision, "precision", CUMLP_PRECISION_LIST, CUMLP_PRECISION_COUNT);
NAME_SET(epilogues, "epilogue setting", CUMLP_EPILOGUES_LIST, CUMLP_EPILOGUES_COUNT);
NAME_SET(activation, "activation", CUMLP_ACTIVATION_LIST, CUMLP_ACTIVATION_COUNT);
NAME_SET(loss, "loss", CUMLP_LOSS_LIST, CUMLP_LOSS_COUNT);
NAME_SET(init, "init scheme", CUMLP_INIT_LIST, CUMLP_INIT_COUNT);
NAME_SET(optimizer, "optimizer", CUMLP_OPTIMIZER_LIST, CUMLP_OPTIMIZER_COUNT);
NAME_SET(schedule, "learning-rate schedule", CUMLP_SCHEDULE_LIST, CUMLP_SCHEDULE_COUNT);
NAME_SET(task, "task", CUMLP_TASK_LIST, CUMLP_TASK_COUNT);
NAME_SET(transport, "transport", CUMLP_TRANSPORT_LIST, CUMLP_TRANSPORT_COUNT);

const char *cumlp_status_string(cumlp_status status) {
    int value = (int)status;
    return value >= 0 && value < status_set.count ? status_names[value] : "CUMLP_ERROR_UNKNOWN";
}

/* The public name and parser of each set, and the internal parser of text that is not
 * NUL-terminated (checkpoint metadata). */
#define NAME_FUNCTIONS(set)                                                                        \
    const char *cumlp_##set##_name(int value) {                                                    \
        return name_of(&set##_set, value);                                                         \
    }                                                                                              \
    cumlp_status cumlp_##set##_from_name(const char *name, int *value) {                           \
        return parse(&set##_set, __func__, name, value);                                           \
    }                                                                                              \
    int cumlp__##set##_value(const char *text, size_t length) {                                    \
        return value_of(&set##_set, text, length);                                                 \
    }

NAME_FUNCTIONS(backend)
NAME_FUNCTIONS(precision)
NAME_FUNCTIONS(epilogues)
NAME_FUNCTIONS(activation)
NAME_FUNCTIONS(loss)
NAME_FUNCTIONS(init)
NAME_FUNCTIONS(optimizer)
NAME_FUNCTIONS(schedule)
NAME_FUNCTIONS(task)
NAME_FUNCTIONS(transport)
