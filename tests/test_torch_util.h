/* test_torch_util.h - finding a python3 with torch, for the tests that compare with PyTorch
 * (test_checkpoint_interop, test_optimizers_torch). */
#ifndef CUMLP_TEST_TORCH_UTIL_H
#define CUMLP_TEST_TORCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* Runs a shell command; its exit status, or -1. */
static inline int torch_run_command(const char *cmd) {
    int status = system(cmd);
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The first of $CUMLP_PYTHON, /usr/bin/python3 and python3 on the PATH that imports torch, or
 * NULL. */
static inline const char *torch_find_python(void) {
    static char chosen[1024];
    const char *candidates[] = {getenv("CUMLP_PYTHON"), "/usr/bin/python3", "python3"};
    for (int i = 0; i < 3; i++) {
        if (!candidates[i] || !candidates[i][0]) continue;
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "'%s' -c 'import torch' >/dev/null 2>&1", candidates[i]);
        if (torch_run_command(cmd) == 0) {
            snprintf(chosen, sizeof chosen, "%s", candidates[i]);
            return chosen;
        }
    }
    return NULL;
}

#endif
