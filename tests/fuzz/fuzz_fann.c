/* fuzz_fann.c - libFuzzer target: the FANN training-data reader. The first byte's low bit picks
 * classification; the rest is the text. */
#include "cumlp.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    cumlp_dataset *ds = NULL;
    cumlp_status st =
        cumlp_dataset_read_fann_memory(NULL, (const char *)data + 1, size - 1, data[0] & 1, &ds);
    if ((st == CUMLP_SUCCESS) != (ds != NULL)) abort();
    cumlp_dataset_destroy(ds);
    return 0;
}
