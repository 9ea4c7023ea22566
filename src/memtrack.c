/* memtrack.c - the bytes a context holds (see memtrack.h). */
#include "memtrack.h"

#include <stdlib.h>

int cumlp__memtrack_add(cumlp_memtrack *t, void *ptr, size_t bytes) {
    if (t->count == t->capacity) {
        size_t capacity = t->capacity ? 2 * t->capacity : 16;
        cumlp_memtrack_entry *grown = realloc(t->entries, capacity * sizeof *grown);
        if (!grown) return -1;
        t->entries = grown;
        t->capacity = capacity;
    }
    t->entries[t->count].ptr = ptr;
    t->entries[t->count].bytes = bytes;
    t->count++;
    t->in_use += bytes;
    if (t->in_use > t->peak) t->peak = t->in_use;
    return 0;
}

void cumlp__memtrack_remove(cumlp_memtrack *t, const void *ptr) {
    if (!ptr) return;
    for (size_t i = t->count; i-- > 0;) {
        if (t->entries[i].ptr != ptr) continue;
        t->in_use -= t->entries[i].bytes;
        t->entries[i] = t->entries[t->count - 1];
        t->count--;
        return;
    }
}

void cumlp__memtrack_release(cumlp_memtrack *t) {
    free(t->entries);
    t->entries = NULL;
    t->count = t->capacity = 0;
}
