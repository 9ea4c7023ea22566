/* fuzz_idx.c - libFuzzer target: the IDX reader. Input: the images buffer's length n as two
 * little-endian bytes (clamped to what follows), n bytes of images, then the labels buffer. */
#include "cumlp.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t rest = size - 2;
    size_t split = (size_t)data[0] | (size_t)data[1] << 8;
    if (split > rest) split = rest;
    const uint8_t *images = data + 2, *labels = data + 2 + split;
    cumlp_dataset *ds = NULL;
    cumlp_status st =
        cumlp_dataset_read_idx_memory(NULL, images, split, labels, rest - split, 0, &ds);
    if ((st == CUMLP_SUCCESS) != (ds != NULL)) abort();
    cumlp_dataset_destroy(ds);
    return 0;
}
