/*
 * cumlp_storage.h - the element formats a backend buffer may hold, shared by the backend contract
 * (src/backends/backend.h, which says which buffer holds which) and the cuda backend's launchers
 * (kernels/cuda_kernels.h), which pick a kernel instantiation per format.
 *
 * NATIVE is the backend's own element: double on the reference backend, fp32 on the others. The
 * 16-bit formats exist only on backends that run the BF16 and FP16 precisions (cumlp.h), whose
 * native element is fp32: a 16-bit value is an fp32 value rounded to nearest even, read back
 * exactly (both formats are subsets of fp32).
 */
#ifndef CUMLP_STORAGE_H
#define CUMLP_STORAGE_H

typedef enum cumlp_storage {
    CUMLP_STORAGE_NATIVE = 0, /* the backend's elem_size: double (reference) or fp32 */
    CUMLP_STORAGE_BF16 = 1,   /* bfloat16: fp32's 8 exponent bits, 7 stored mantissa bits */
    CUMLP_STORAGE_FP16 = 2    /* IEEE binary16: 5 exponent bits, 10 mantissa bits, max 65504 */
} cumlp_storage;

/* Bytes per element of a 16-bit format (the native size is the backend's elem_size). */
#define CUMLP_STORAGE_16_BYTES 2

#endif /* CUMLP_STORAGE_H */
