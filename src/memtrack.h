/*
 * memtrack.h - the bytes a context holds: every backend allocation is recorded with its size, so
 * that cumlp_context_memory can report what is in use now and the most that was at once.
 *
 * A context holds few allocations (a network's arenas and work buffers, tensors, scratch), so a
 * flat array searched from the newest entry is enough.
 */
#ifndef CUMLP_MEMTRACK_H
#define CUMLP_MEMTRACK_H

#include <stddef.h>

typedef struct cumlp_memtrack_entry {
    const void *ptr;
    size_t bytes;
} cumlp_memtrack_entry;

typedef struct cumlp_memtrack {
    cumlp_memtrack_entry *entries;
    size_t count, capacity;
    size_t in_use; /* bytes of the recorded allocations */
    size_t peak;   /* most bytes in use at once since creation or the last reset */
} cumlp_memtrack;

/* Records an allocation (ptr is not const: GCC takes a const pointer to fresh memory as a read
 * of uninitialized bytes); returns 0, or -1 when the table cannot grow (out of host memory): the
 * caller then frees the allocation and fails. */
int cumlp__memtrack_add(cumlp_memtrack *t, void *ptr, size_t bytes);

/* Forgets the allocation at ptr (NULL or unknown: nothing). */
void cumlp__memtrack_remove(cumlp_memtrack *t, const void *ptr);

/* Frees the table itself. */
void cumlp__memtrack_release(cumlp_memtrack *t);

#endif /* CUMLP_MEMTRACK_H */
