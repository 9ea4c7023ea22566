/* rng.h - host-side Philox draws shared by the CPU backends (reference and cpu). */
#ifndef CUMLP_RNG_H
#define CUMLP_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Element i of the Philox stream for `seed` (see backend.h, op `random`): uniform on (0, 1] when
 * normal == 0, else standard normal. Block b of four 32-bit words is Philox4x32-10 of the counter
 * {b, b >> 32, 0, 0} under the key {seed, seed >> 32}; uniforms take one word each, normals a pair
 * of consecutive words through Box-Muller. */
float cumlp__philox_draw(uint64_t seed, int normal, size_t i);

/* Fills out[0..count) with cumlp__philox_draw(seed, normal, i). */
void cumlp__philox_fill(uint64_t seed, int normal, size_t count, float *out);

#endif
