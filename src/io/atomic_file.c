/*
 * atomic_file.c - crash-safe replacement of files: the new contents go to a temporary file in the
 * target's directory, which is flushed, fsync()ed and renamed over the target, and then the
 * directory is fsync()ed. At every moment the target is the old file or the complete new one.
 */
#define _POSIX_C_SOURCE 200809L

#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const void *data, size_t size) {
    const unsigned char *p = data;
    while (size > 0) {
        size_t chunk = size < ((size_t)1 << 30) ? size : ((size_t)1 << 30);
        ssize_t n = write(fd, p, chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        p += n;
        size -= (size_t)n;
    }
    return 1;
}

/* Splits path into a newly allocated directory ("." when there is none) and its last part. */
static char *directory_of(const char *path, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (slash && n == 0) n = 1; /* "/name": the root directory */
    char *dir = malloc(n + 1);
    if (!dir) return NULL;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    return dir;
}

/* fsync of the directory makes the rename durable. Some file systems cannot sync a directory
 * (EINVAL); that is not an error of the save. */
static int sync_directory(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return 0;
    int ok = fsync(fd) == 0 || errno == EINVAL;
    close(fd);
    return ok;
}

/* The process's umask without changing it (umask() sets it, racing with other threads): the
 * "Umask:" line of /proc/self/status (Linux 4.7+), else the common 022. */
static mode_t current_umask(void) {
    mode_t mask = 022;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return mask;
    char line[256];
    unsigned value;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "Umask: %o", &value) == 1) {
            mask = (mode_t)(value & 0777);
            break;
        }
    }
    fclose(f);
    return mask;
}

/* New files get the mode of the file they replace, or what open(path, O_CREAT, 0666) would give
 * (mkstemp makes them 0600 whatever the umask). */
static mode_t target_mode(const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) return sb.st_mode & 07777;
    return 0666 & ~current_umask();
}

cumlp_status cumlp__replace_file(const cumlp_context *ctx, const char *func, const char *path,
                                 const cumlp__chunk *chunks, int num_chunks) {
    const char *base;
    char *dir = directory_of(path, &base);
    char *tmp = dir ? malloc(strlen(dir) + strlen(base) + 16) : NULL;
    if (!tmp) {
        free(dir);
        return cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory");
    }
    if (base[0] == '\0') {
        free(dir);
        free(tmp);
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func, "%s: the path names a directory",
                           path);
    }
    sprintf(tmp, "%s/.%s.XXXXXX", dir, base);
    const char *failed_step = NULL;
    int fd = mkstemp(tmp);
    if (fd < 0) failed_step = "cannot create a temporary file in its directory";
    if (!failed_step && fchmod(fd, target_mode(path)) != 0) failed_step = "cannot set the mode";
    for (int i = 0; i < num_chunks && !failed_step; i++) {
        if (!write_all(fd, chunks[i].data, chunks[i].size)) failed_step = "cannot write";
    }
    if (!failed_step && fsync(fd) != 0) failed_step = "cannot sync";
    if (fd >= 0 && close(fd) != 0 && !failed_step) failed_step = "cannot close";
    if (!failed_step && rename(tmp, path) != 0) failed_step = "cannot rename the temporary file";
    int saved_errno = errno;
    if (failed_step && fd >= 0) unlink(tmp);
    cumlp_status st = CUMLP_SUCCESS;
    if (failed_step) {
        st = cumlp__fail(ctx, CUMLP_ERROR_IO, func, "%s: %s (%s); the old file is unchanged", path,
                         failed_step, strerror(saved_errno));
    } else if (!sync_directory(dir)) {
        st = cumlp__fail(ctx, CUMLP_ERROR_IO, func,
                         "%s: the file was replaced but its directory %s cannot be synced (%s)",
                         path, dir, strerror(errno));
    }
    free(tmp);
    free(dir);
    return st;
}
