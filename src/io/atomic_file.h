/*
 * atomic_file.h - crash-safe replacement of files, shared by everything cumlp writes (internal;
 * not installed).
 */
#ifndef CUMLP_IO_ATOMIC_FILE_H
#define CUMLP_IO_ATOMIC_FILE_H

#include "internal.h"

#include <stddef.h>

/* A piece of a file's new contents. */
typedef struct cumlp__chunk {
    const void *data;
    size_t size;
} cumlp__chunk;

/* Writes the chunks to a temporary file beside path, syncs it, and renames it over path, then
 * syncs the directory. A failure leaves the old file and no temporary file; the message (in ctx,
 * or the per-thread slot when ctx is NULL) starts with func and names path. A replaced file keeps
 * its permission bits; a new one gets 0666 less the umask. */
cumlp_status cumlp__replace_file(const cumlp_context *ctx, const char *func, const char *path,
                                 const cumlp__chunk *chunks, int num_chunks);

#endif /* CUMLP_IO_ATOMIC_FILE_H */
