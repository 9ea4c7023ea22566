/* main.c - the `cumlp` command: dispatches to its subcommands. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#ifdef CUMLP_CLI_HAVE_BENCH
#include "bench.h"
#endif

static void usage(FILE *f) {
    fprintf(f, "usage: cumlp <command> [options]   (cumlp <command> --help for its options)\n\n"
               "commands:\n"
               "  train      train a network on a dataset (IDX, CSV or FANN) and save it\n"
               "  eval       loss and accuracy or MSE of a saved model on a dataset\n"
               "  predict    a saved model's outputs on a dataset, as CSV\n"
               "  gradcheck  compare backpropagation with finite differences\n"
               "  info       version, backends built, the devices they see, their precisions\n"
#ifdef CUMLP_CLI_HAVE_BENCH
               "  bench      benchmarks\n"
#endif
               "\nexit status: 0 success, 1 usage error, 2 data or file error, 3 numerical "
               "failure\n");
}

/* The precisions a context's backend runs, as the names --precision takes. */
static void print_precisions(cumlp_context *ctx) {
    printf("%-10s precisions:", "");
    for (int p = 0; p < CUMLP_PRECISION_COUNT; p++)
        if (cumlp_context_set_precision(ctx, p) == CUMLP_SUCCESS)
            printf(" %s", cumlp_precision_name(p));
    printf("\n");
}

static int info(int argc, char **argv) {
    if (cli_wants_help(argc, argv, 2)) {
        printf("usage: cumlp info\nPrints the library version, the backends this build "
               "contains, the device each one uses and the precisions it runs.\n");
        return EXIT_OK;
    }
    if (argc > 2) {
        fprintf(stderr, "cumlp info: takes no options\n");
        return EXIT_USAGE;
    }
    printf("cumlp %s\n", cumlp_version_string());
    static const int backends[] = {CUMLP_BACKEND_CUDA, CUMLP_BACKEND_CPU, CUMLP_BACKEND_REFERENCE};
    for (int i = 0; i < 3; i++) {
        const char *name = cumlp_backend_name(backends[i]);
        if (!cumlp_backend_is_built(backends[i])) {
            printf("%-10s not built\n", name);
            continue;
        }
        cumlp_context_options o;
        cumlp_context_defaults(&o);
        o.backend = backends[i];
        cumlp_context *ctx;
        char text[256] = "";
        if (cumlp_context_create(&ctx, &o) != CUMLP_SUCCESS) {
            printf("%-10s built, unavailable: %s\n", name, cumlp_last_error(NULL));
            continue;
        }
        cumlp_context_describe(ctx, text, sizeof text);
        printf("%-10s %s\n", name, text);
        print_precisions(ctx);
        cumlp_context_destroy(ctx);
    }
    cumlp_context *ctx;
    if (cumlp_context_create(&ctx, NULL) == CUMLP_SUCCESS) {
        printf("auto       -> %s\n", cumlp_backend_name(cumlp_context_backend(ctx)));
        cumlp_context_destroy(ctx);
    }
    return EXIT_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
        strcmp(command, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(command, "--version") == 0) {
        printf("cumlp %s\n", cumlp_version_string());
        return EXIT_OK;
    }
    if (strcmp(command, "train") == 0) return cli_train(argc, argv);
    if (strcmp(command, "eval") == 0) return cli_eval(argc, argv);
    if (strcmp(command, "predict") == 0) return cli_predict(argc, argv);
    if (strcmp(command, "gradcheck") == 0) return cli_gradcheck(argc, argv);
    if (strcmp(command, "info") == 0) return info(argc, argv);
#ifdef CUMLP_CLI_HAVE_BENCH
    if (strcmp(command, "bench") == 0) return cumlp_bench_main(argc - 1, argv + 1);
#endif
    fprintf(stderr, "cumlp: unknown command \"%s\"\n", command);
    usage(stderr);
    return EXIT_USAGE;
}
