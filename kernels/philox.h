/*
 * philox.h - the Philox4x32-10 counter-based generator (Salmon et al., SC'11), cuRAND's transform
 * of its words into uniform floats on (0, 1], and cumlp's own Box-Muller transform into normals.
 * Host+device, so that every backend draws the same numbers: the CPU backends make the words here,
 * the cuda backend has cuRAND's Philox generator make them, and both apply the same transforms.
 */
#ifndef CUMLP_PHILOX_H
#define CUMLP_PHILOX_H

#include "cumlp_math.h"

#include <stdint.h>

#define CUMLP_PHILOX_M0 0xD2511F53u
#define CUMLP_PHILOX_M1 0xCD9E8D57u
#define CUMLP_PHILOX_W0 0x9E3779B9u
#define CUMLP_PHILOX_W1 0xBB67AE85u
/* 2^-32, the scale factor of cuRAND's uniform transform. */
#define CUMLP_2POW32_INV 2.3283064e-10f
/* 2 pi, rounded to double. */
#define CUMLP_2PI 6.28318530717958647692

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

/* A 32-bit draw as the double (x + 1/2) 2^-32, on (0, 1): exact (33 significant bits), from 2^-33
 * at x = 0 to 1 - 2^-33 at x = 2^32 - 1, and symmetric (the word ~x gives 1 - u). */
CUMLP_HD double cumlp_unit_from_bits_d(uint32_t x) {
    return ((double)x + 0.5) * 0x1p-32;
}

/* Two standard normals from two 32-bit draws: Box-Muller in double, each result rounded once to
 * float. With u = cumlp_unit_from_bits_d(x) and v = cumlp_unit_from_bits_d(y),
 *
 *     r = sqrt(-2 log u),   t = 2 pi v,   first = (float)(r sin t),   second = (float)(r cos t),
 *
 * x feeding the radius and y the angle, sin first, as cuRAND's float transform does. The uniforms
 * come from the words, not from cumlp_uniform_from_bits: that float rounds x 2^-32 to 24 bits,
 * which merges runs of up to 257 words into one value near 1 (128 words give u = 1, r = 0) and
 * steps the angle by up to 2^-24 turns, coarser than the float results; here every word counts,
 * u is never 0 or 1, and 2^-16 <= r <= sqrt(66 ln 2) = 6.76. The expressions have no a b + c for
 * FMA contraction to fuse.
 *
 * Every backend evaluates these same operations, the C library's log, sin and cos on the host and
 * CUDA's on the device. Those are not correctly rounded (glibc's within 1 ulp of double, CUDA's
 * within 1 for log and 2 for sin and cos), so the double r sin t of host and device may be a few
 * units of double's last place apart: at most about 6, most often 0. A float's ulp is 2^29 of
 * double's, so the two round to different floats only when a rounding boundary lies between them:
 * at most 6 in 2^29 draws (one in 9 x 10^7), in practice fewer, and then to neighbouring floats
 * (1 ulp apart). Every other draw is bit-identical on every backend. */
CUMLP_HD void cumlp_box_muller(uint32_t x, uint32_t y, float *first, float *second) {
    double r = sqrt(-2.0 * log(cumlp_unit_from_bits_d(x)));
    double t = CUMLP_2PI * cumlp_unit_from_bits_d(y);
    *first = (float)(r * sin(t));
    *second = (float)(r * cos(t));
}

#endif /* CUMLP_PHILOX_H */
