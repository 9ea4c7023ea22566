/* json.c - a small strict JSON reader; see json.h for what "strict" means here. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const unsigned char *text;
    size_t size, pos;
    int depth;
    cumlp_json_failure failure;
    char *error;
    size_t error_size;
    /* 1: the counting pass, which checks the syntax and counts values but builds nothing */
    int dry;
    size_t values, max_values;
    /* decoded strings and number literals, back to back (size + 1 bytes always suffice) */
    char *arena;
    size_t arena_used, arena_size;
} parser;

static int fail(parser *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int fail(parser *p, const char *fmt, ...) {
    if (p->error[0] != '\0') return 0; /* keep the first (innermost) reason */
    char what[160];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    snprintf(p->error, p->error_size, "%s at byte %zu of the JSON header", what, p->pos);
    return 0;
}

static int fail_memory(parser *p) {
    p->failure = CUMLP_JSON_OUT_OF_MEMORY;
    return fail(p, "out of memory");
}

/* n bytes of the text arena, or NULL (a bug: the arena is sized for the worst case). */
static char *arena_take(parser *p, size_t n) {
    if (n > p->arena_size - p->arena_used) {
        fail(p, "internal error: the string arena is full");
        return NULL;
    }
    char *s = p->arena + p->arena_used;
    p->arena_used += n;
    return s;
}

/* Appends n bytes to a string being decoded; the counting pass (dst NULL) only counts them. */
static void put(char *dst, size_t *len, const char *src, size_t n) {
    if (dst) memcpy(dst + *len, src, n);
    *len += n;
}

static void skip_whitespace(parser *p) {
    while (p->pos < p->size) {
        unsigned char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int at_end(const parser *p) {
    return p->pos >= p->size;
}

static int peek(const parser *p) {
    return at_end(p) ? -1 : p->text[p->pos];
}

static int parse_value(parser *p, cumlp_json *out);

/* ---- literals and numbers ------------------------------------------------------------------ */

static int parse_literal(parser *p, const char *word, cumlp_json_type type, cumlp_json *out) {
    size_t n = strlen(word);
    if (p->size - p->pos < n || memcmp(p->text + p->pos, word, n) != 0)
        return fail(p, "invalid literal");
    p->pos += n;
    out->type = type;
    return 1;
}

static int is_digit(int c) {
    return c >= '0' && c <= '9';
}

static size_t skip_digits(parser *p) {
    size_t start = p->pos;
    while (is_digit(peek(p)))
        p->pos++;
    return p->pos - start;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(parser *p, cumlp_json *out) {
    size_t start = p->pos;
    if (peek(p) == '-') p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (skip_digits(p) == 0) {
        return fail(p, "invalid number");
    }
    if (peek(p) == '.') {
        p->pos++;
        if (skip_digits(p) == 0) return fail(p, "digits expected after '.'");
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-') p->pos++;
        if (skip_digits(p) == 0) return fail(p, "digits expected in exponent");
    }
    out->type = CUMLP_JSON_NUMBER;
    if (p->dry) return 1;
    size_t n = p->pos - start;
    out->text = arena_take(p, n + 1);
    if (!out->text) return 0;
    memcpy(out->text, p->text + start, n);
    out->text[n] = '\0';
    return 1;
}

/* ---- strings ------------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (at most avail bytes), or 0 if ill-formed
 * (overlong forms, surrogates and code points above U+10FFFF are ill-formed). */
static size_t utf8_sequence(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    size_t n;
    unsigned min, cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, min = 0x80, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, min = 0x800, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static int hex4(parser *p, unsigned *out) {
    if (p->size - p->pos < 4) return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p->text[p->pos + (size_t)i];
        int d = is_digit(c)              ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0) return fail(p, "bad hex digit in \\u escape");
        v = v * 16 + (unsigned)d;
    }
    p->pos += 4;
    *out = v;
    return 1;
}

static size_t encode_utf8(unsigned cp, char *dst) {
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A \uXXXX escape (after the "\u"), with a surrogate pair when it is one; appends UTF-8. */
static int parse_unicode_escape(parser *p, char *dst, size_t *len) {
    unsigned cp;
    if (!hex4(p, &cp)) return 0;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(p, "unpaired low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned low;
        if (p->size - p->pos < 2 || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u')
            return fail(p, "unpaired high surrogate");
        p->pos += 2;
        if (!hex4(p, &low)) return 0;
        if (low < 0xDC00 || low > 0xDFFF) return fail(p, "bad low surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (cp == 0) return fail(p, "NUL character in string");
    char utf8[4];
    put(dst, len, utf8, encode_utf8(cp, utf8));
    return 1;
}

static int parse_escape(parser *p, char *dst, size_t *len) {
    if (at_end(p)) return fail(p, "unterminated string");
    int c = p->text[p->pos++];
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    const char *hit = c ? strchr(from, c) : NULL;
    if (hit) {
        put(dst, len, &to[hit - from], 1);
        return 1;
    }
    if (c == 'u') return parse_unicode_escape(p, dst, len);
    p->pos--;
    return fail(p, "invalid escape");
}

/* Bytes from pos to the closing quote (or to the end of the text if there is none). */
static size_t raw_string_length(const parser *p) {
    size_t i = p->pos;
    while (i < p->size && p->text[i] != '"')
        i += p->text[i] == '\\' ? 2 : 1;
    return (i < p->size ? i : p->size) - p->pos;
}

/* After the opening quote. A decoded string is never longer than its source text. The counting
 * pass (p->dry) checks the string and stores nothing (*out stays NULL). */
static int parse_string_text(parser *p, char **out) {
    char *dst = NULL;
    if (!p->dry) {
        dst = arena_take(p, raw_string_length(p) + 1);
        if (!dst) return 0;
    }
    size_t len = 0;
    for (;;) {
        if (at_end(p)) return fail(p, "unterminated string");
        unsigned char c = p->text[p->pos];
        int ok = 1;
        if (c == '"') {
            p->pos++;
            break;
        } else if (c == '\\') {
            p->pos++;
            ok = parse_escape(p, dst, &len);
        } else if (c < 0x20) {
            ok = fail(p, "control character in string");
        } else {
            size_t n = utf8_sequence(p->text + p->pos, p->size - p->pos);
            if (n == 0) {
                ok = fail(p, "invalid UTF-8 in string");
            } else {
                put(dst, &len, (const char *)p->text + p->pos, n);
                p->pos += n;
            }
        }
        if (!ok) return 0;
    }
    if (dst) {
        dst[len] = '\0';
        p->arena_used = (size_t)(dst - p->arena) + len + 1; /* give back what escapes saved */
        *out = dst;
    }
    return 1;
}

static int parse_string(parser *p, cumlp_json *out) {
    p->pos++; /* the opening quote */
    if (!parse_string_text(p, &out->text)) return 0;
    out->type = CUMLP_JSON_STRING;
    return 1;
}

/* ---- arrays and objects -------------------------------------------------------------------- */

/* Makes room for one more item (and key, for objects). The capacity doubles, but never beyond
 * what the values not yet parsed can fill (the counting pass told how many there are). */
static int grow(parser *p, cumlp_json *v, size_t *capacity) {
    if (v->count < *capacity) return 1;
    size_t cap = *capacity ? *capacity * 2 : 4;
    size_t most = v->count + (p->max_values - p->values) + 1;
    if (cap > most) cap = most;
    cumlp_json *items = realloc(v->items, cap * sizeof *items);
    if (!items) return fail_memory(p);
    v->items = items;
    if (v->type == CUMLP_JSON_OBJECT) {
        char **keys = realloc(v->keys, cap * sizeof *keys);
        if (!keys) return fail_memory(p);
        v->keys = keys;
    }
    *capacity = cap;
    return 1;
}

static int parse_array(parser *p, cumlp_json *out) {
    out->type = CUMLP_JSON_ARRAY;
    p->pos++;
    size_t capacity = 0;
    skip_whitespace(p);
    if (peek(p) == ']') {
        p->pos++;
        return 1;
    }
    for (;;) {
        cumlp_json scratch, *item = &scratch; /* the counting pass keeps no items */
        if (!p->dry) {
            if (!grow(p, out, &capacity)) return 0;
            item = &out->items[out->count];
            out->count++;
        }
        memset(item, 0, sizeof *item);
        if (!parse_value(p, item)) return 0;
        skip_whitespace(p);
        int c = peek(p);
        p->pos++;
        if (c == ']') return 1;
        if (c != ',') {
            p->pos--;
            return fail(p, "',' or ']' expected");
        }
    }
}

static int compare_keys(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Duplicate keys, found by sorting a copy of the key pointers: O(n log n) for any header. */
static int check_duplicate_keys(parser *p, const cumlp_json *object) {
    if (object->count < 2) return 1;
    char **sorted = malloc(object->count * sizeof *sorted);
    if (!sorted) return fail_memory(p);
    memcpy(sorted, object->keys, object->count * sizeof *sorted);
    qsort(sorted, object->count, sizeof *sorted, compare_keys);
    int ok = 1;
    for (size_t i = 1; i < object->count && ok; i++) {
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            ok = fail(p, "duplicate key \"%.64s\"", sorted[i]);
    }
    free(sorted);
    return ok;
}

static int parse_member(parser *p, cumlp_json *object) {
    skip_whitespace(p);
    if (peek(p) != '"') return fail(p, "string key expected");
    cumlp_json scratch, *item = &scratch; /* the counting pass keeps no members */
    char *scratch_key = NULL, **key = &scratch_key;
    if (!p->dry) {
        item = &object->items[object->count];
        key = &object->keys[object->count];
    }
    memset(item, 0, sizeof *item);
    *key = NULL;
    p->pos++;
    if (!parse_string_text(p, key)) return 0;
    if (!p->dry) object->count++; /* from here on the key and item are owned by the object */
    skip_whitespace(p);
    if (peek(p) != ':') return fail(p, "':' expected");
    p->pos++;
    return parse_value(p, item);
}

static int parse_object(parser *p, cumlp_json *out) {
    out->type = CUMLP_JSON_OBJECT;
    p->pos++;
    size_t capacity = 0;
    skip_whitespace(p);
    if (peek(p) == '}') {
        p->pos++;
        return 1;
    }
    for (;;) {
        if ((!p->dry && !grow(p, out, &capacity)) || !parse_member(p, out)) return 0;
        skip_whitespace(p);
        int c = peek(p);
        p->pos++;
        if (c == '}') return p->dry || check_duplicate_keys(p, out);
        if (c != ',') {
            p->pos--;
            return fail(p, "',' or '}' expected");
        }
    }
}

static int parse_value(parser *p, cumlp_json *out) {
    skip_whitespace(p);
    if (at_end(p)) return fail(p, "value expected");
    if (p->depth >= CUMLP_JSON_MAX_DEPTH) return fail(p, "nesting too deep");
    if (p->values >= p->max_values) {
        p->failure = CUMLP_JSON_TOO_MANY_VALUES;
        return fail(p, "more than %zu values", p->max_values);
    }
    p->values++;
    p->depth++;
    int ok;
    switch (p->text[p->pos]) {
    case '{':
        ok = parse_object(p, out);
        break;
    case '[':
        ok = parse_array(p, out);
        break;
    case '"':
        ok = parse_string(p, out);
        break;
    case 't':
        ok = parse_literal(p, "true", CUMLP_JSON_TRUE, out);
        break;
    case 'f':
        ok = parse_literal(p, "false", CUMLP_JSON_FALSE, out);
        break;
    case 'n':
        ok = parse_literal(p, "null", CUMLP_JSON_NULL, out);
        break;
    default:
        ok = parse_number(p, out);
        break;
    }
    p->depth--;
    return ok;
}

/* ---- public helpers ------------------------------------------------------------------------ */

/* The root of a parsed tree, with the arena that holds its strings and numbers. */
typedef struct document {
    cumlp_json root; /* first: cumlp__json_free gets &root */
    char *arena;
} document;

static void free_contents(cumlp_json *v) {
    for (size_t i = 0; i < v->count; i++)
        free_contents(&v->items[i]);
    free(v->items);
    free(v->keys); /* the key and value texts live in the arena */
}

void cumlp__json_free(cumlp_json *value) {
    if (!value) return;
    document *doc = (document *)(void *)value;
    free_contents(&doc->root);
    free(doc->arena);
    free(doc);
}

/* One pass over the whole text: the counting pass (dry) or the building pass. */
static int parse_text(parser *p, cumlp_json *root) {
    int ok = parse_value(p, root);
    if (ok) {
        skip_whitespace(p);
        if (!at_end(p)) ok = fail(p, "unexpected text after the JSON value");
    }
    return ok;
}

int cumlp__json_parse(const char *text, size_t size, size_t max_values, cumlp_json **out,
                      char *error, size_t error_size, cumlp_json_failure *failure) {
    parser p;
    memset(&p, 0, sizeof p);
    p.text = (const unsigned char *)text;
    p.size = size;
    p.error = error;
    p.error_size = error_size;
    p.failure = CUMLP_JSON_SYNTAX;
    p.max_values = max_values;
    *out = NULL;
    error[0] = '\0';
    /* First check the syntax and count the values without allocating anything, so that a text
     * of too many values is refused before it costs memory. */
    p.dry = 1;
    cumlp_json scratch;
    memset(&scratch, 0, sizeof scratch);
    if (!parse_text(&p, &scratch)) {
        *failure = p.failure;
        return 0;
    }
    p.dry = 0;
    p.max_values = p.values; /* the exact count: grow() never reserves more */
    p.values = 0;
    p.pos = 0;
    /* Every string or number takes at most its source length + 1 bytes, and a number's + 1 is
     * the delimiter after it: size + 1 bytes hold them all. */
    p.arena_size = size + 1;
    document *doc = calloc(1, sizeof *doc);
    p.arena = malloc(p.arena_size);
    if (!doc || !p.arena) {
        free(doc);
        free(p.arena);
        *failure = CUMLP_JSON_OUT_OF_MEMORY;
        snprintf(error, error_size, "out of memory");
        return 0;
    }
    doc->arena = p.arena;
    if (!parse_text(&p, &doc->root)) {
        *failure = p.failure;
        cumlp__json_free(&doc->root);
        return 0;
    }
    *out = &doc->root;
    return 1;
}

const cumlp_json *cumlp__json_get(const cumlp_json *object, const char *key) {
    if (!object || object->type != CUMLP_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < object->count; i++) {
        if (strcmp(object->keys[i], key) == 0) return &object->items[i];
    }
    return NULL;
}

int cumlp__json_to_u64(const cumlp_json *value, uint64_t *out) {
    if (!value || value->type != CUMLP_JSON_NUMBER) return 0;
    const char *s = value->text;
    if (!is_digit(s[0])) return 0;
    uint64_t v = 0;
    for (; *s; s++) {
        if (!is_digit(*s)) return 0;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}
