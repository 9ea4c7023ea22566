/*
 * philox.h - the Philox4x32-10 counter-based generator (Salmon et al., SC'11) and the transforms
 * cuRAND applies to its output: uniform floats on (0, 1] and Box-Muller normals. Host+device, so
 * that the CPU backends can draw the same numbers as cuRAND's Philox generator on the GPU.
 */
#ifndef CUMLP_PHILOX_H
#define CUMLP_PHILOX_H

#include "cumlp_math.h"

#include <stdint.h>

#define CUMLP_PHILOX_M0 0xD2511F53u
#define CUMLP_PHILOX_M1 0xCD9E8D57u
#define CUMLP_PHILOX_W0 0x9E3779B9u
#define CUMLP_PHILOX_W1 0xBB67AE85u
/* 2^-32, and 2^-32 * 2 pi: the scale factors of cuRAND's uniform and Box-Muller transforms. */
#define CUMLP_2POW32_INV     2.3283064e-10f
#define CUMLP_2POW32_INV_2PI 1.4629181e-09f

/* out = Philox4x32-10(counter, key). */
CUMLP_HD void cumlp_philox4x32_10(const uint32_t counter[4], const uint32_t key[2],
                                  uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)CUMLP_PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)CUMLP_PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += CUMLP_PHILOX_W0;
        k1 += CUMLP_PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* cuRAND's Philox generator (legacy ordering, the default) lays its output out as 65536
 * subsequences side by side: 32-bit word i of the stream is word i % 4 of block q = i / 4, and
 * block q is Philox4x32-10 of the counter {r, r >> 32, s, 0} with s = q % 65536 the subsequence
 * and r = q / 65536 the position within it, under the key {seed, seed >> 32}. (Measured against
 * curandCreateGeneratorHost; tests/test_cuda_host.c checks it.) */
#define CUMLP_PHILOX_SUBSEQUENCES 65536u

/* The counter of block q of the stream. */
CUMLP_HD void cumlp_philox_block_counter(uint64_t q, uint32_t counter[4]) {
    uint64_t subsequence = q % CUMLP_PHILOX_SUBSEQUENCES;
    uint64_t position = q / CUMLP_PHILOX_SUBSEQUENCES;
    counter[0] = (uint32_t)position;
    counter[1] = (uint32_t)(position >> 32);
    counter[2] = (uint32_t)subsequence;
    counter[3] = 0;
}

/* A 32-bit draw as a float on (0, 1], as cuRAND's curand_uniform computes it. */
CUMLP_HD float cumlp_uniform_from_bits(uint32_t x) {
    return (float)x * CUMLP_2POW32_INV + CUMLP_2POW32_INV / 2.0f;
}

/* Two standard normals from two 32-bit draws (Box-Muller, as cuRAND's float transform). */
CUMLP_HD void cumlp_box_muller(uint32_t x, uint32_t y, float *first, float *second) {
    float u = (float)x * CUMLP_2POW32_INV + CUMLP_2POW32_INV / 2.0f;
    float v = (float)y * CUMLP_2POW32_INV_2PI + CUMLP_2POW32_INV_2PI / 2.0f;
    float s = sqrtf(-2.0f * logf(u));
    *first = sinf(v) * s;
    *second = cosf(v) * s;
}

#endif /* CUMLP_PHILOX_H */
