/* rng.c - host-side Philox draws shared by the CPU backends. */
#include "rng.h"

#include "philox.h"

/* The four 32-bit words of block q of the stream for seed. */
static void block(uint64_t seed, uint64_t q, uint32_t out[4]) {
    uint32_t counter[4];
    cumlp_philox_block_counter(q, counter);
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    cumlp_philox4x32_10(counter, key, out);
}

/* Element j (0..3) of a block's draws. */
static float draw_in_block(const uint32_t words[4], int normal, size_t j) {
    if (!normal) return cumlp_uniform_from_bits(words[j]);
    size_t pair = j / 2 * 2; /* words 0,1 -> normals 0,1; words 2,3 -> normals 2,3 */
    float first, second;
    cumlp_box_muller(words[pair], words[pair + 1], &first, &second);
    return j % 2 == 0 ? first : second;
}

uint32_t cumlp__philox_word(uint64_t seed, size_t i) {
    uint32_t words[4];
    block(seed, (uint64_t)i / 4, words);
    return words[i % 4];
}

float cumlp__philox_draw(uint64_t seed, int normal, size_t i) {
    uint32_t words[4];
    block(seed, (uint64_t)i / 4, words);
    return draw_in_block(words, normal, i % 4);
}

void cumlp__philox_fill(uint64_t seed, int normal, size_t count, float *out) {
    for (size_t q = 0; q * 4 < count; q++) {
        uint32_t words[4];
        block(seed, q, words);
        for (size_t j = 0; j < 4 && q * 4 + j < count; j++)
            out[q * 4 + j] = draw_in_block(words, normal, j);
    }
}
