/* output.c - the files the `cumlp` command writes: each one crash-safely (src/io/atomic_file.h:
 * a temporary file renamed over the target; a FIFO or device at the path is refused), or standard
 * output, which messages name as such. */
#include "cli.h"
#include "io/atomic_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int cli_output_open(const char *command, const char *path, cli_output *out) {
    memset(out, 0, sizeof *out);
    if (!path || strcmp(path, "-") == 0) {
        out->name = "standard output";
        out->f = stdout;
        return EXIT_OK;
    }
    out->name = path;
    /* NULL function name: the library's message is "<path>: ..." */
    if (cumlp__atomic_open(NULL, NULL, path, &out->file) != CUMLP_SUCCESS)
        return cli_fail(command, CUMLP_ERROR_IO, cumlp_last_error(NULL));
    out->f = cumlp__atomic_stream(out->file);
    return EXIT_OK;
}

int cli_output_close(const char *command, cli_output *out) {
    if (!out->f) return EXIT_OK;
    out->f = NULL;
    if (!out->file) {
        if (fflush(stdout) == 0 && !ferror(stdout)) return EXIT_OK;
        fprintf(stderr, "cumlp %s: error writing standard output (%s)\n", command,
                strerror(errno ? errno : EIO));
        return EXIT_DATA;
    }
    cumlp__atomic_file *file = out->file;
    out->file = NULL;
    if (cumlp__atomic_commit(file) == CUMLP_SUCCESS) return EXIT_OK;
    return cli_fail(command, CUMLP_ERROR_IO, cumlp_last_error(NULL));
}

void cli_output_discard(cli_output *out) {
    cumlp__atomic_discard(out->file);
    memset(out, 0, sizeof *out);
}

int cli_output_check(const char *command, const char *path) {
    cli_output out;
    int rc = cli_output_open(command, path, &out);
    cli_output_discard(&out);
    return rc;
}
