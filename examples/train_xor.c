/* train_xor.c - the smallest complete use of cumlp: learn XOR with a 2-4-1 sigmoid network.
 *
 *   ./train_xor [backend]     backend: auto (default), reference, cpu or cuda
 */
#include <cumlp.h>

#include <stdio.h>
#include <string.h>

#define TRY(call)                                                                                  \
    do {                                                                                           \
        cumlp_status st_ = (call);                                                                 \
        if (st_ != CUMLP_SUCCESS) {                                                                \
            fprintf(stderr, "%s failed: %s: %s\n", #call, cumlp_status_string(st_),                \
                    cumlp_last_error(ctx));                                                        \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

static int parse_backend(const char *name) {
    const int all[] = {CUMLP_BACKEND_AUTO, CUMLP_BACKEND_REFERENCE, CUMLP_BACKEND_CPU,
                       CUMLP_BACKEND_CUDA};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, cumlp_backend_name(all[i])) == 0) return all[i];
    return -1;
}

int main(int argc, char **argv) {
    /* Four samples, one per column: inputs 2 x 4 and targets 1 x 4. */
    const float X[] = {0, 0, 0, 1, 1, 0, 1, 1};
    const float T[] = {0, 1, 1, 0};
    const int64_t widths[] = {2, 4, 1};
    const int activations[] = {CUMLP_ACT_TANH, CUMLP_ACT_SIGMOID};
    int rc = 1;
    cumlp_context *ctx = NULL;
    cumlp_network *net = NULL;
    cumlp_optimizer *opt = NULL;
    cumlp_tensor *x = NULL, *t = NULL, *y = NULL;

    cumlp_context_options copts;
    cumlp_context_defaults(&copts);
    copts.backend = parse_backend(argc > 1 ? argv[1] : "auto");
    if (copts.backend < 0) {
        fprintf(stderr, "usage: %s [auto|reference|cpu|cuda]\n", argv[0]);
        return 1;
    }
    if (cumlp_context_create(&ctx, &copts) != CUMLP_SUCCESS) {
        fprintf(stderr, "cumlp_context_create: %s\n", cumlp_last_error(NULL));
        return 1;
    }
    cumlp_network_options nopts;
    cumlp_network_defaults(&nopts);
    nopts.loss = CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY;
    nopts.seed = 7;
    cumlp_optimizer_options oopts;
    cumlp_optimizer_defaults(&oopts);
    oopts.type = CUMLP_OPT_MOMENTUM;
    oopts.learning_rate = 0.5;

    TRY(cumlp_network_create(ctx, 2, widths, activations, &nopts, &net));
    TRY(cumlp_optimizer_create(net, &oopts, &opt));
    TRY(cumlp_tensor_create(ctx, 2, 4, &x));
    TRY(cumlp_tensor_create(ctx, 1, 4, &t));
    TRY(cumlp_tensor_create(ctx, 1, 4, &y));
    TRY(cumlp_tensor_upload(x, X, 8));
    TRY(cumlp_tensor_upload(t, T, 4));

    double loss = 0;
    for (int step = 1; step <= 1000; step++) {
        TRY(cumlp_train_step(net, opt, x, t, &loss));
        if (step % 200 == 0) printf("step %4d  loss %.6f\n", step, loss);
    }
    float out[4];
    TRY(cumlp_forward(net, x, y));
    TRY(cumlp_tensor_download(y, out, 4));
    int correct = 0;
    for (int j = 0; j < 4; j++) {
        printf("xor(%g, %g) = %.4f\n", X[2 * j], X[2 * j + 1], out[j]);
        correct += (out[j] > 0.5f) == (T[j] > 0.5f);
    }
    printf("backend %s: %d/4 correct\n", cumlp_backend_name(cumlp_context_backend(ctx)), correct);
    rc = correct == 4 ? 0 : 1;
done:
    cumlp_tensor_destroy(x);
    cumlp_tensor_destroy(t);
    cumlp_tensor_destroy(y);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    cumlp_context_destroy(ctx);
    return rc;
}
