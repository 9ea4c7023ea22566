/* ctest-labels: unit */
/* test_checkpoint_crash.c - a writer killed with SIGKILL at random moments never leaves an
 * unreadable checkpoint: the target is always the old or the new complete file. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "test_checkpoint_util.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define KILLS 40

static cumlp_context *ctx;

/* A network big enough (about 1 MB with Adam state) that a save takes a while. */
static cumlp_network *big_network(uint64_t seed) {
    int64_t widths[] = {64, 256, 256, 10};
    int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_RELU, CUMLP_ACT_IDENTITY};
    return test_network(ctx, 3, widths, acts, CUMLP_LOSS_SQUARED_ERROR, seed);
}

static void sleep_microseconds(long us) {
    struct timespec t = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&t, NULL);
}

/* Removes the temporary files that killed writers left behind (".<base>.XXXXXX"). */
static int remove_leftovers(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096], prefix[512], victim[8192];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    snprintf(prefix, sizeof prefix, ".%s.", slash + 1);
    DIR *d = opendir(dir);
    int removed = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        snprintf(victim, sizeof victim, "%s/%s", dir, e->d_name);
        removed += remove(victim) == 0;
    }
    if (d) closedir(d);
    return removed;
}

static void test_killed_writer_leaves_old_or_new(void) {
    char *path = ckpt_temp_path("crash.safetensors");
    cumlp_network *nets[2] = {big_network(1), big_network(2)};
    cumlp_optimizer *opts[2] = {ckpt_optimizer(nets[0], CUMLP_OPT_ADAM),
                                ckpt_optimizer(nets[1], CUMLP_OPT_ADAM)};
    float *params[2] = {ckpt_parameters(nets[0]), ckpt_parameters(nets[1])};
    size_t n = (size_t)cumlp_network_num_parameters(nets[0]);
    CHECK_OK(cumlp_checkpoint_save(nets[0], opts[0], path));
    test_rng rng = {777};
    int unreadable = 0, seen[2] = {0, 0}, killed_mid_write = 0;
    for (int k = 0; k < KILLS; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (int i = 0;; i ^= 1)
                cumlp_checkpoint_save(nets[i ^ 1], opts[i ^ 1], path);
        }
        sleep_microseconds(500 + (long)test_rng_below(&rng, 30000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        killed_mid_write += remove_leftovers(path) > 0;
        cumlp_network *loaded = NULL;
        cumlp_optimizer *opt = NULL;
        if (cumlp_checkpoint_load(ctx, path, 0, &loaded, &opt) != CUMLP_SUCCESS) {
            fprintf(stderr, "after kill %d: %s\n", k, cumlp_last_error(ctx));
            unreadable++;
            continue;
        }
        float *got = ckpt_parameters(loaded);
        int which = memcmp(got, params[0], n * sizeof(float)) == 0   ? 0
                    : memcmp(got, params[1], n * sizeof(float)) == 0 ? 1
                                                                     : -1;
        if (which < 0)
            unreadable++;
        else
            seen[which]++;
        free(got);
        cumlp_optimizer_destroy(opt);
        cumlp_network_destroy(loaded);
    }
    CHECK_MSG(unreadable == 0, "%d of %d kills left a bad checkpoint", unreadable, KILLS);
    printf("kills: %d, old file %d times, new file %d times, %d killed during a write\n", KILLS,
           seen[0], seen[1], killed_mid_write);
    CHECK(killed_mid_write > 0); /* the test did interrupt writes */
    for (int i = 0; i < 2; i++) {
        free(params[i]);
        cumlp_optimizer_destroy(opts[i]);
        cumlp_network_destroy(nets[i]);
    }
    remove(path);
    free(path);
}

int main(void) {
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_REFERENCE;
    if (cumlp_context_create(&ctx, &o) != CUMLP_SUCCESS) return 1;
    RUN(test_killed_writer_leaves_old_or_new);
    cumlp_context_destroy(ctx);
    return harness_finish();
}
