/*
 * atomic_file.c - crash-safe replacement of files: the new contents go to a temporary file in the
 * target's directory, which is flushed, fsync()ed and renamed over the target, and then the
 * directory is fsync()ed. At every moment the target is the old file or the complete new one.
 */
#define _POSIX_C_SOURCE 200809L

#include "atomic_file.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* What a file that is not a regular file is, for messages. */
const char *cumlp__file_kind(unsigned mode) {
    mode_t m = (mode_t)mode;
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
           : S_ISLNK(m)  ? "a symbolic link"
                         : "not a regular file";
}

/* Links followed before giving up, as the kernel's MAXSYMLINKS. */
#define MAX_LINKS 40

/* The file that path names, symbolic links followed (a dangling link names the file it would
 * create), as a new string; NULL with errno set on failure (ELOOP for a loop). */
static char *resolve_links(const char *path) {
    char *p = strdup(path);
    for (int links = 0; p; links++) {
        struct stat sb;
        if (lstat(p, &sb) != 0) {
            if (errno == ENOENT) return p; /* a new file */
            break;
        }
        if (!S_ISLNK(sb.st_mode)) return p;
        if (links == MAX_LINKS) {
            errno = ELOOP;
            break;
        }
        size_t cap = sb.st_size > 0 ? (size_t)sb.st_size + 1 : 4096;
        char *to = malloc(cap);
        ssize_t n = to ? readlink(p, to, cap) : -1;
        if (n < 0 || (size_t)n >= cap) {
            if (n >= 0) errno = ENAMETOOLONG; /* the link changed under us */
            free(to);
            break;
        }
        to[n] = '\0';
        const char *slash = strrchr(p, '/');
        char *next = to;
        if (to[0] != '/' && slash) { /* relative to the link's directory */
            size_t dir_len = (size_t)(slash - p) + 1;
            next = malloc(dir_len + (size_t)n + 1);
            if (next) {
                memcpy(next, p, dir_len);
                memcpy(next + dir_len, to, (size_t)n + 1);
            }
            free(to);
        }
        free(p);
        p = next;
    }
    int saved = errno;
    free(p);
    errno = saved;
    return NULL;
}

struct cumlp__atomic_file {
    const cumlp_context *ctx;
    const char *func;
    char *path;   /* as the caller named it, for messages */
    char *target; /* the file it names, links followed */
    char *dir;    /* the target's directory */
    char *tmp;    /* the temporary file beside the target */
    FILE *stream;
};

static void atomic_free(cumlp__atomic_file *f) {
    free(f->path);
    free(f->target);
    free(f->dir);
    free(f->tmp);
    free(f);
}

/* CUMLP_ERROR_IO naming the file when an existing target (at the end of its links) is not a
 * regular file; such a target is never replaced. */
static cumlp_status check_target(const cumlp__atomic_file *f) {
    struct stat sb;
    if (stat(f->target, &sb) != 0 || S_ISREG(sb.st_mode)) return CUMLP_SUCCESS;
    if (strcmp(f->path, f->target) == 0)
        return cumlp__fail(f->ctx, CUMLP_ERROR_IO, f->func,
                           "%s is %s, not a regular file: refused (it is left as it is)", f->path,
                           cumlp__file_kind(sb.st_mode));
    return cumlp__fail(f->ctx, CUMLP_ERROR_IO, f->func,
                       "%s links to %s, which is %s, not a regular file: refused (it is left as "
                       "it is)",
                       f->path, f->target, cumlp__file_kind(sb.st_mode));
}

cumlp_status cumlp__atomic_open(const cumlp_context *ctx, const char *func, const char *path,
                                cumlp__atomic_file **out) {
    *out = NULL;
    cumlp__atomic_file *f = calloc(1, sizeof *f);
    if (!f) return cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory");
    f->ctx = ctx;
    f->func = func;
    f->path = strdup(path);
    if (!f->path) {
        atomic_free(f);
        return cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory");
    }
    f->target = resolve_links(path);
    if (!f->target) {
        int saved = errno;
        atomic_free(f);
        return cumlp__fail(ctx, saved == ENOMEM ? CUMLP_ERROR_ALLOC_FAILED : CUMLP_ERROR_IO, func,
                           "%s: cannot follow the path (%s); nothing was written", path,
                           strerror(saved));
    }
    const char *base;
    f->dir = directory_of(f->target, &base);
    f->tmp = f->dir ? malloc(strlen(f->dir) + strlen(base) + 16) : NULL;
    if (!f->tmp) {
        atomic_free(f);
        return cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory");
    }
    if (base[0] == '\0') {
        atomic_free(f);
        return cumlp__fail(ctx, CUMLP_ERROR_IO, func, "%s: the path names a directory", path);
    }
    cumlp_status st = check_target(f);
    if (st != CUMLP_SUCCESS) {
        atomic_free(f);
        return st;
    }
    sprintf(f->tmp, "%s/.%s.XXXXXX", f->dir, base);
    const char *failed_step = NULL;
    int fd = mkstemp(f->tmp);
    if (fd < 0) failed_step = "cannot create a temporary file in its directory";
    if (!failed_step && fchmod(fd, target_mode(f->target)) != 0)
        failed_step = "cannot set the mode";
    if (!failed_step && !(f->stream = fdopen(fd, "wb"))) failed_step = "cannot open a stream";
    if (failed_step) {
        int saved = errno;
        if (fd >= 0) {
            close(fd);
            unlink(f->tmp);
        }
        st = cumlp__fail(ctx, CUMLP_ERROR_IO, func, "%s: %s (%s); nothing was written", path,
                         failed_step, strerror(saved));
        atomic_free(f);
        return st;
    }
    *out = f;
    return CUMLP_SUCCESS;
}

FILE *cumlp__atomic_stream(cumlp__atomic_file *f) {
    return f->stream;
}

void cumlp__atomic_discard(cumlp__atomic_file *f) {
    if (!f) return;
    fclose(f->stream);
    unlink(f->tmp);
    atomic_free(f);
}

cumlp_status cumlp__atomic_commit(cumlp__atomic_file *f) {
    const char *failed_step = NULL;
    int saved_errno = 0;
    if (fflush(f->stream) != 0 || ferror(f->stream)) {
        failed_step = "cannot write";
        saved_errno = ferror(f->stream) && errno == 0 ? EIO : errno;
    }
    if (!failed_step && fsync(fileno(f->stream)) != 0) failed_step = "cannot sync";
    if (fclose(f->stream) != 0 && !failed_step) failed_step = "cannot close";
    if (!failed_step) {
        /* once more just before the rename: a special file may have appeared meanwhile */
        cumlp_status st = check_target(f);
        if (st != CUMLP_SUCCESS) {
            unlink(f->tmp);
            atomic_free(f);
            return st;
        }
    }
    if (!failed_step && rename(f->tmp, f->target) != 0)
        failed_step = "cannot rename the temporary file";
    if (failed_step && saved_errno == 0) saved_errno = errno;
    if (failed_step) unlink(f->tmp);
    cumlp_status st = CUMLP_SUCCESS;
    if (failed_step) {
        st = cumlp__fail(f->ctx, CUMLP_ERROR_IO, f->func, "%s: %s (%s); the old file is unchanged",
                         f->path, failed_step, strerror(saved_errno));
    } else if (!sync_directory(f->dir)) {
        st = cumlp__fail(f->ctx, CUMLP_ERROR_IO, f->func,
                         "%s: the file was replaced but its directory %s cannot be synced (%s)",
                         f->path, f->dir, strerror(errno));
    }
    atomic_free(f);
    return st;
}

cumlp_status cumlp__replace_file(const cumlp_context *ctx, const char *func, const char *path,
                                 const cumlp__chunk *chunks, int num_chunks) {
    cumlp__atomic_file *f;
    cumlp_status st = cumlp__atomic_open(ctx, func, path, &f);
    if (st != CUMLP_SUCCESS) return st;
    for (int i = 0; i < num_chunks; i++)
        if (chunks[i].size > 0 && fwrite(chunks[i].data, 1, chunks[i].size, f->stream) == 0)
            break; /* the stream's error flag makes the commit fail */
    return cumlp__atomic_commit(f);
}
