/*
 * json.h - a small strict JSON reader (RFC 8259) for file headers such as safetensors'.
 *
 * The whole text is parsed into a tree. Strict means: UTF-8 only (validated), no control
 * characters or NUL in strings (not even as \u0000), no duplicate keys in an object, nothing but
 * whitespace after the top-level value, nesting at most CUMLP_JSON_MAX_DEPTH deep. Numbers are
 * checked against the JSON grammar and kept as their text; the caller converts them.
 */
#ifndef CUMLP_JSON_H
#define CUMLP_JSON_H

#include <stddef.h>
#include <stdint.h>

#define CUMLP_JSON_MAX_DEPTH 32

typedef enum cumlp_json_type {
    CUMLP_JSON_NULL,
    CUMLP_JSON_FALSE,
    CUMLP_JSON_TRUE,
    CUMLP_JSON_NUMBER,
    CUMLP_JSON_STRING,
    CUMLP_JSON_ARRAY,
    CUMLP_JSON_OBJECT
} cumlp_json_type;

typedef struct cumlp_json cumlp_json;

struct cumlp_json {
    cumlp_json_type type;
    char *text;        /* STRING: decoded, NUL-terminated; NUMBER: the literal as written */
    size_t count;      /* ARRAY / OBJECT: number of items */
    cumlp_json *items; /* ARRAY / OBJECT: the values, in file order */
    char **keys;       /* OBJECT: the decoded keys, parallel to items */
};

typedef enum cumlp_json_failure {
    CUMLP_JSON_SYNTAX = 0,         /* not strict JSON */
    CUMLP_JSON_OUT_OF_MEMORY = 1,  /* an allocation failed */
    CUMLP_JSON_TOO_MANY_VALUES = 2 /* more than max_values values */
} cumlp_json_failure;

/*
 * Parses size bytes at text. On success *out is the tree (free it with cumlp__json_free) and 1
 * is returned. On failure 0 is returned, *out is NULL, error (error_size bytes) says what and
 * at which byte offset, and *failure says why.
 *
 * Memory is bounded by max_values, the most values (numbers, strings, literals, arrays and
 * objects, at any depth; object keys are not counted) the text may hold: the text is first
 * checked and its values counted without allocating anything, and one that holds more fails with
 * CUMLP_JSON_TOO_MANY_VALUES. Only then is the tree built: size + 1 bytes for all strings and
 * numbers, plus one cumlp_json node (and one key pointer in objects) per value; item arrays grow
 * by doubling, but never past the number of values still to come.
 */
int cumlp__json_parse(const char *text, size_t size, size_t max_values, cumlp_json **out,
                      char *error, size_t error_size, cumlp_json_failure *failure);

/* Frees a tree returned by cumlp__json_parse (its root only, not a subtree). Accepts NULL. */
void cumlp__json_free(cumlp_json *value);

/* The value of key in an object, or NULL (also when value is not an object). */
const cumlp_json *cumlp__json_get(const cumlp_json *object, const char *key);

/* A non-negative integer number without sign, fraction or exponent, that fits in uint64_t:
 * stores it and returns 1; else 0. */
int cumlp__json_to_u64(const cumlp_json *value, uint64_t *out);

#endif /* CUMLP_JSON_H */
