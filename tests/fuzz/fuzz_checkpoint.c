/* fuzz_checkpoint.c - libFuzzer target: the checkpoint reader on arbitrary bytes. */
#include "cumlp.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cumlp_context *reference_context(void) {
    static cumlp_context *ctx;
    if (!ctx) {
        cumlp_context_options o;
        cumlp_context_defaults(&o);
        o.backend = CUMLP_BACKEND_REFERENCE;
        if (cumlp_context_create(&ctx, &o) != CUMLP_SUCCESS) abort();
    }
    return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cumlp_context *ctx = reference_context();
    cumlp_network *net = NULL;
    cumlp_optimizer *opt = NULL;
    cumlp_scaler *scaler = NULL;
    cumlp_model_info info;
    cumlp_model_info_defaults(&info);
    cumlp_status st =
        cumlp_checkpoint_load_memory_with(ctx, data, size, 0, &net, &opt, &scaler, &info);
    /* The contract: a network exactly on success, and never an optimizer or scaler without one. */
    if ((st == CUMLP_SUCCESS) != (net != NULL) || (opt && !net) || (scaler && !net)) abort();
    cumlp_scaler_destroy(scaler);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    return 0;
}
