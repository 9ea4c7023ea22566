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

/*
 * Parses size bytes at text. On success *out is the tree (free it with cumlp__json_free) and 1
 * is returned. On failure 0 is returned, *out is NULL and error (error_size bytes) says what and
 * at which byte offset; *out_of_memory is set to 1 when the cause was an allocation failure.
 */
int cumlp__json_parse(const char *text, size_t size, cumlp_json **out, char *error,
                      size_t error_size, int *out_of_memory);

void cumlp__json_free(cumlp_json *value);

/* The value of key in an object, or NULL (also when value is not an object). */
const cumlp_json *cumlp__json_get(const cumlp_json *object, const char *key);

/* A non-negative integer number without sign, fraction or exponent, that fits in uint64_t:
 * stores it and returns 1; else 0. */
int cumlp__json_to_u64(const cumlp_json *value, uint64_t *out);

#endif /* CUMLP_JSON_H */
