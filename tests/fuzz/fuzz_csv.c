/* fuzz_csv.c - libFuzzer target: the CSV reader. The first byte picks the options (header line,
 * class mode, delimiter); the rest is the text. */
#include "cumlp.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    cumlp_csv_options o;
    cumlp_csv_defaults(&o);
    o.has_header = data[0] & 1;
    o.num_classes = (data[0] >> 1) % 3 == 0 ? 0 : (data[0] >> 1) % 3 == 1 ? -1 : 4;
    o.label_column = (data[0] & 8) ? 0 : -1;
    o.delimiter = (data[0] & 16) ? ';' : ',';
    cumlp_dataset *ds = NULL;
    cumlp_status st =
        cumlp_dataset_read_csv_memory(NULL, (const char *)data + 1, size - 1, &o, &ds);
    if ((st == CUMLP_SUCCESS) != (ds != NULL)) abort();
    cumlp_dataset_destroy(ds);
    return 0;
}
