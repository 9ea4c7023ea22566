/* rng.c - host-side Philox draws shared by the CPU backends. */
#include "rng.h"

#include "../kernels/philox.h"

static void block(uint64_t seed, uint64_t b, uint32_t out[4]) {
    uint32_t counter[4] = {(uint32_t)b, (uint32_t)(b >> 32), 0, 0};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    cumlp_philox4x32_10(counter, key, out);
}

float cumlp__philox_draw(uint64_t seed, int normal, size_t i) {
    uint32_t words[4];
    block(seed, (uint64_t)i / 4, words);
    if (!normal) return cumlp_uniform_from_bits(words[i % 4]);
    size_t pair = (i % 4) / 2 * 2; /* words 0,1 -> normals 0,1; words 2,3 -> normals 2,3 */
    float first, second;
    cumlp_box_muller(words[pair], words[pair + 1], &first, &second);
    return i % 2 == 0 ? first : second;
}

void cumlp__philox_fill(uint64_t seed, int normal, size_t count, float *out) {
    for (size_t b = 0; b * 4 < count; b++) {
        uint32_t words[4];
        block(seed, b, words);
        for (size_t j = 0; j < 4 && b * 4 + j < count; j += 2) {
            if (normal) {
                float first, second;
                cumlp_box_muller(words[j], words[j + 1], &first, &second);
                out[b * 4 + j] = first;
                if (b * 4 + j + 1 < count) out[b * 4 + j + 1] = second;
            } else {
                out[b * 4 + j] = cumlp_uniform_from_bits(words[j]);
                if (b * 4 + j + 1 < count)
                    out[b * 4 + j + 1] = cumlp_uniform_from_bits(words[j + 1]);
            }
        }
    }
}
