/* rng.h - host-side Philox draws shared by the CPU backends (reference and cpu). */
#ifndef CUMLP_RNG_H
#define CUMLP_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Element i of the Philox stream for `seed` (see backend.h, op `random`): uniform on (0, 1] when
 * normal == 0, else standard normal. The stream is the one cuRAND's Philox4x32-10 generator
 * (CURAND_ORDERING_PSEUDO_LEGACY, offset 0) produces for that seed: 32-bit word i is word i % 4
 * of block i / 4, whose counter cumlp_philox_block_counter() (kernels/philox.h) gives, under the
 * key {seed, seed >> 32}. Uniforms take one word each; normals a pair of words (0,1 or 2,3 of a
 * block) through cumlp_box_muller (kernels/philox.h).
 *
 * Uniform draws equal cuRAND's bit for bit (one multiply-add in fp32). Normal draws are cumlp's
 * own, not cuRAND's: Box-Muller in double, rounded once to float, the same code on the host and in
 * the cuda backend's kernel. They are bit-identical on the reference and cpu backends; on the cuda
 * backend too, except that the device's log, sin and cos (not correctly rounded, like the C
 * library's) may put a draw on the other side of a float rounding boundary: at most about one draw
 * in 10^8, 1 ulp off (kernels/philox.h), which the cuda tests allow for and count. */
float cumlp__philox_draw(uint64_t seed, int normal, size_t i);

/* 32-bit word i of the Philox stream for `seed`, as cuRAND's curandGenerate gives it. */
uint32_t cumlp__philox_word(uint64_t seed, size_t i);

/* Fills out[0..count) with cumlp__philox_draw(seed, normal, i). */
void cumlp__philox_fill(uint64_t seed, int normal, size_t count, float *out);

#endif
