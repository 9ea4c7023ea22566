/*
 * atomic_file.h - crash-safe replacement of files, shared by everything cumlp writes: the
 * library's checkpoints and the `cumlp` command's outputs (internal; not installed).
 */
#ifndef CUMLP_IO_ATOMIC_FILE_H
#define CUMLP_IO_ATOMIC_FILE_H

#include "cumlp.h"

#include <stddef.h>
#include <stdio.h>

/*
 * A file being written crash-safely: its new contents go to a temporary file ".<name>.XXXXXX" in
 * the directory of the file the path names (symbolic links are followed: the link's target is
 * replaced and the link stays), which cumlp__atomic_commit flushes, fsync()s and renames over the
 * target, and then fsync()s the directory. At every moment the target is the old file or the
 * complete new one. An existing target that is not a regular file (a FIFO, a device, a directory,
 * a socket) is never replaced: opening (and committing) fails with CUMLP_ERROR_IO and leaves it as
 * it was. A replaced file keeps its permission bits; a new one gets 0666 less the umask. Messages
 * (in ctx, or the per-thread slot when ctx is NULL) start with func and name the path.
 */
typedef struct cumlp__atomic_file cumlp__atomic_file;

/* Creates the temporary file; *file is NULL on failure (nothing is left behind). */
cumlp_status cumlp__atomic_open(const cumlp_context *ctx, const char *func, const char *path,
                                cumlp__atomic_file **file);

/* The stream to write the new contents to. A failed write is reported by the commit. */
FILE *cumlp__atomic_stream(cumlp__atomic_file *file);

/* Replaces the target with what was written and frees file, or on any failure (a write, the sync,
 * the rename) removes the temporary file and leaves the old one. */
cumlp_status cumlp__atomic_commit(cumlp__atomic_file *file);

/* Removes the temporary file and frees file, leaving the target as it was. Accepts NULL. */
void cumlp__atomic_discard(cumlp__atomic_file *file);

/* What a file of this st_mode is when it is not a regular file ("a FIFO", "a directory", ...). */
const char *cumlp__file_kind(unsigned mode);

/* A piece of a file's new contents. */
typedef struct cumlp__chunk {
    const void *data;
    size_t size;
} cumlp__chunk;

/* The chunks, one after another, as the new contents of path: cumlp__atomic_open, writes and
 * cumlp__atomic_commit. */
cumlp_status cumlp__replace_file(const cumlp_context *ctx, const char *func, const char *path,
                                 const cumlp__chunk *chunks, int num_chunks);

#endif /* CUMLP_IO_ATOMIC_FILE_H */
