/* ctest-labels: unit */
/*
 * The shared elementwise math (kernels/cumlp_math.h) and the Philox generator with its normal
 * transform (kernels/philox.h): known values, derivatives against finite differences, numerical
 * stability at extreme inputs, and the statistics of the normal draws and the initial weights.
 */
#include "harness.h"
#include "testutil.h"

#include "backends/rng.h"
#include "cumlp_math.h"
#include "philox.h"

#include <string.h>

/* Random123's known-answer vectors for Philox4x32-10. */
static void test_philox_known_answers(void) {
    const uint32_t ctr0[4] = {0, 0, 0, 0}, key0[2] = {0, 0};
    const uint32_t want0[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    const uint32_t ctr1[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    const uint32_t key1[2] = {0xffffffffu, 0xffffffffu};
    const uint32_t want1[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
    const uint32_t ctr2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    const uint32_t key2[2] = {0xa4093822u, 0x299f31d0u};
    const uint32_t want2[4] = {0xd16cfe09u, 0x94fdcceb, 0x5001e420u, 0x24126ea1u};
    uint32_t out[4];
    cumlp_philox4x32_10(ctr0, key0, out);
    CHECK(memcmp(out, want0, sizeof out) == 0);
    cumlp_philox4x32_10(ctr1, key1, out);
    CHECK(memcmp(out, want1, sizeof out) == 0);
    cumlp_philox4x32_10(ctr2, key2, out);
    CHECK(memcmp(out, want2, sizeof out) == 0);
    /* cuRAND's uniform transform: (0, 1], never 0. */
    CHECK(cumlp_uniform_from_bits(0) > 0.0f);
    CHECK(cumlp_uniform_from_bits(0xffffffffu) <= 1.0f);
}

/* The bits of a float, to compare draws exactly. */
static uint32_t bits_of(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* cumlp_box_muller at known words. Each expected float is the one nearest the exact value of
 * r sin t and r cos t, with u and v exact and t the double 2 pi (x) v (the one rounding before sin
 * and cos), computed with mpmath at 300 bits; each lies more than 7 x 10^7 units of double's last
 * place from a float rounding boundary, so the few by which log, sin and cos may be off cannot
 * move it. The radius at both ends of u: x = 0 (u = 2^-33, the largest, sqrt(66 ln 2)) and
 * x = 2^32 - 1 (u = 1 - 2^-33, the smallest, 2^-16: never 0); angles next to 0, pi/2, 2 pi/3 and
 * 3 pi/2, so that each of sin and cos is tiny once, with its sign. */
static void test_box_muller_known_values(void) {
    CHECK(cumlp_unit_from_bits_d(0) == 0x1p-33);
    CHECK(cumlp_unit_from_bits_d(0xffffffffu) == 1 - 0x1p-33);
    CHECK(cumlp_unit_from_bits_d(0x9e3779b9u) == 1 - cumlp_unit_from_bits_d(~0x9e3779b9u));
    static const struct {
        uint32_t x, y, first, second;
    } cases[] = {
        {0, 0, 0x31a9fd8fu, 0x40d87047u},                     /* 4.9473736e-9, 6.7637057 */
        {0xffffffffu, 0x3fffffffu, 0x37800000u, 0x28490fddu}, /* 2^-16, 1.1161181e-14 */
        {0x80000000u, 0x55555555u, 0x3f828473u, 0xbf16b55fu}, /* 1.019667, -0.588705 */
        {0x12345678u, 0xc0000000u, 0xc0132899u, 0x30e727fcu}, /* -2.2993529, 1.6818826e-9 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float first, second;
        cumlp_box_muller(cases[i].x, cases[i].y, &first, &second);
        CHECK_MSG(bits_of(first) == cases[i].first && bits_of(second) == cases[i].second,
                  "words %#x, %#x: %.9g, %.9g (bits %#x, %#x), expected bits %#x, %#x",
                  (unsigned)cases[i].x, (unsigned)cases[i].y, first, second,
                  (unsigned)bits_of(first), (unsigned)bits_of(second), (unsigned)cases[i].first,
                  (unsigned)cases[i].second);
    }
}

#define NORMAL_DRAWS 1000000 /* a multiple of 4: whole Philox blocks */

/* The host's normal stream (src/backends/rng.c, which the reference and cpu backends draw) against
 * the formula written out here in plain double arithmetic, on the stream's words paired 0,1 and
 * 2,3 within each block: the same operations of the same C library, so bit for bit. */
static void check_normal_stream(uint64_t seed, const float *z) {
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const double pi = 3.14159265358979323846;
    size_t differ = 0, first_differ = 0;
    for (size_t q = 0; q < NORMAL_DRAWS / 4; q++) {
        uint32_t counter[4], w[4];
        cumlp_philox_block_counter(q, counter);
        cumlp_philox4x32_10(counter, key, w);
        for (size_t k = 0; k < 4; k += 2) {
            double u1 = (w[k] + 0.5) / 4294967296.0, u2 = (w[k + 1] + 0.5) / 4294967296.0;
            double radius = sqrt(-2 * log(u1)), angle = 2 * pi * u2;
            float want[2] = {(float)(radius * sin(angle)), (float)(radius * cos(angle))};
            for (size_t j = 0; j < 2; j++) {
                if (bits_of(z[4 * q + k + j]) == bits_of(want[j])) continue;
                if (differ++ == 0) first_differ = 4 * q + k + j;
            }
        }
    }
    CHECK_MSG(differ == 0, "%zu of %d normal draws differ from the formula, the first at %zu",
              differ, NORMAL_DRAWS, first_differ);
}

/* Moments and tails of the host's normal draws, each within 5 standard errors of the standard
 * normal's (a fixed seed: the check is deterministic), all finite and within the largest radius
 * sqrt(66 ln 2); and the two normals of a pair uncorrelated. */
static void check_normal_statistics(const float *z) {
    const double n = NORMAL_DRAWS;
    double sum = 0, sum2 = 0, sum3 = 0, sum4 = 0, pair = 0;
    size_t positive = 0, beyond2 = 0, beyond3 = 0, bad = 0;
    for (size_t i = 0; i < NORMAL_DRAWS; i++) {
        double x = z[i];
        if (!(fabs(x) <= 6.7637058)) bad++; /* NaN fails too */
        sum += x;
        sum2 += x * x;
        sum3 += x * x * x;
        sum4 += x * x * x * x;
        positive += x > 0;
        beyond2 += fabs(x) > 2;
        beyond3 += fabs(x) > 3;
        if (i % 2 == 0) pair += x * z[i + 1];
    }
    CHECK_MSG(bad == 0, "%zu draws are NaN, infinite or beyond sqrt(66 ln 2)", bad);
    double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK_MSG(fabs(mean) < 5 / sqrt(n), "mean %g", mean);
    CHECK_MSG(fabs(var - 1) < 5 * sqrt(2 / n), "variance %g", var);
    CHECK_MSG(fabs(sum3 / n) < 5 * sqrt(15 / n), "third moment %g", sum3 / n);
    CHECK_MSG(fabs(sum4 / n - 3) < 5 * sqrt(96 / n), "fourth moment %g", sum4 / n);
    CHECK_MSG(fabs(positive / n - 0.5) < 5 * 0.5 / sqrt(n), "%zu positive", positive);
    const double p2 = 0.0455002638963584, p3 = 0.00269979606326019; /* P(|z| > 2), P(|z| > 3) */
    CHECK_MSG(fabs(beyond2 / n - p2) < 5 * sqrt(p2 * (1 - p2) / n), "%zu beyond 2", beyond2);
    CHECK_MSG(fabs(beyond3 / n - p3) < 5 * sqrt(p3 * (1 - p3) / n), "%zu beyond 3", beyond3);
    CHECK_MSG(fabs(pair / (n / 2)) < 5 / sqrt(n / 2), "pair correlation %g", pair / (n / 2));
}

static void test_normal_stream(void) {
    const uint64_t seed = 0x5eed2024u;
    float *z = test_alloc_floats(NORMAL_DRAWS);
    cumlp__philox_fill(seed, 1, NORMAL_DRAWS, z);
    check_normal_stream(seed, z);
    check_normal_statistics(z);
    free(z);
}

static void test_activation_values(void) {
    CHECK_NEAR(cumlp_sigmoid_d(0), 0.5, 0);
    CHECK_NEAR(cumlp_sigmoid_d(0.3775), 0.593269992, 5e-10);
    /* Saturation without NaN or overflow. */
    CHECK(cumlp_sigmoid_d(-1000) == 0.0 && cumlp_sigmoid_d(1000) == 1.0);
    CHECK(cumlp_sigmoid_f(-200.0f) == 0.0f && cumlp_sigmoid_f(200.0f) == 1.0f);
    CHECK_NEAR(cumlp_gelu_d(1.0), 0.8413447460685429, 1e-15);
    CHECK_NEAR(cumlp_gelu_d(-1.0), -0.15865525393145707, 1e-15);
    /* In fp32, 1 + erf(z / sqrt 2) cancels for negative z; the erfc form keeps full precision. */
    for (double z = -8; z <= -1; z += 0.5) {
        double exact = cumlp_gelu_d(z);
        double rel = fabs(cumlp_gelu_f((float)z) - exact) / fabs(exact);
        CHECK_MSG(rel < 1e-5, "gelu_f(%g) relative error %g", z, rel);
        double d_exact = cumlp_gelu_deriv_d(z);
        double d_rel = fabs(cumlp_gelu_deriv_f((float)z) - d_exact) / fabs(d_exact);
        CHECK_MSG(d_rel < 1e-4, "gelu_deriv_f(%g) relative error %g", z, d_rel);
    }
    /* The tanh approximation (cuBLASLt's GELU): its known value at 1, within 5e-4 of the exact
     * GELU everywhere (cumlp.h says so), its derivative a central difference of it. */
    CHECK_NEAR(cumlp_gelu_tanh_d(1.0), 0.5 * (1 + tanh(0.7978845608028654 * 1.044715)), 1e-15);
    double widest = 0;
    for (double z = -6; z <= 6; z += 1.0 / 64) {
        widest = fmax(widest, fabs(cumlp_gelu_tanh_d(z) - cumlp_gelu_d(z)));
        double h = 1e-6;
        double numeric = (cumlp_gelu_tanh_d(z + h) - cumlp_gelu_tanh_d(z - h)) / (2 * h);
        CHECK_NEAR(cumlp_gelu_tanh_deriv_d(z), numeric, 1e-8);
        CHECK_NEAR(cumlp_gelu_tanh_f((float)z), cumlp_gelu_tanh_d(z), 2e-6 * (1 + fabs(z)));
    }
    CHECK_MSG(widest < 5e-4 && widest > 1e-4, "tanh GELU is %g from the exact one", widest);
    CHECK_NEAR(cumlp_activate_d(CUMLP_ACT_LEAKY_RELU, 0.01, -2.0), -0.02, 1e-17);
    CHECK_NEAR(cumlp_activate_d(CUMLP_ACT_RELU, 0.01, -2.0), 0.0, 0);
    CHECK_NEAR(cumlp_activate_d(CUMLP_ACT_TANH, 0, 0.5), tanh(0.5), 0);
    CHECK_NEAR(cumlp_activate_d(CUMLP_ACT_IDENTITY, 0, 3.25), 3.25, 0);
    /* Stable loss terms for large logits. */
    CHECK_NEAR(cumlp_softplus_d(1000), 1000, 0);
    CHECK_NEAR(cumlp_softplus_d(-1000), 0, 1e-300);
    CHECK_NEAR(cumlp_bce_term_d(800, 1), 0, 1e-300);
    CHECK_NEAR(cumlp_bce_term_d(-800, 1), 800, 1e-12);
    CHECK(isfinite(cumlp_bce_term_f(-100.0f, 1.0f)));
    CHECK_NEAR(cumlp_squared_error_term_d(0.7513650695523157, 0.01), 0.274811083, 5e-10);
}

/* f'(z) from the shared code against a central difference of f, for every activation. */
static void test_derivatives(void) {
    const int acts[] = {CUMLP_ACT_IDENTITY, CUMLP_ACT_SIGMOID,    CUMLP_ACT_TANH,
                        CUMLP_ACT_RELU,     CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_GELU};
    const double zs[] = {-3.1, -0.7, -0.01, 0.02, 0.9, 2.6};
    const double h = 1e-6, slope = 0.05;
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        for (size_t j = 0; j < sizeof zs / sizeof zs[0]; j++) {
            double z = zs[j];
            double a = cumlp_activate_d(acts[i], slope, z);
            double numeric = (cumlp_activate_d(acts[i], slope, z + h) -
                              cumlp_activate_d(acts[i], slope, z - h)) /
                             (2 * h);
            double analytic = cumlp_activate_deriv_d(acts[i], slope, z, a);
            CHECK_MSG(fabs(numeric - analytic) <= 1e-8, "activation %d at %g: %.12g vs %.12g",
                      acts[i], z, analytic, numeric);
            float af = cumlp_activate_f(acts[i], (float)slope, (float)z);
            CHECK_NEAR(af, a, 1e-6 * fmax(1, fabs(a)));
        }
    }
}

/* The hyper-parameters of one step, with 1 - beta in double as the backends pass them. */
static cumlp_update_params_d params(double lr, double mu, double wd, double beta1, double beta2,
                                    double eps, int t) {
    cumlp_update_params_d q = {.learning_rate = lr,
                               .momentum = mu,
                               .l2_decay = wd,
                               .decay_factor = 1,
                               .beta1 = beta1,
                               .one_minus_beta1 = 1 - beta1,
                               .beta2 = beta2,
                               .one_minus_beta2 = 1 - beta2,
                               .epsilon = eps,
                               .bias_correction1 = 1 - pow(beta1, t),
                               .bias_correction2 = 1 - pow(beta2, t),
                               .grad_scale = 1,
                               .clip_value = INFINITY};
    return q;
}

/* The optimizer rules of cumlp.h, one step by hand. */
static void test_optimizer_rules(void) {
    double w = 1.0, s[CUMLP_OPTIMIZER_MAX_STATES] = {0.5, 0, 0};
    cumlp_update_params_d q = params(0.1, 0, 0.01, 0, 0, 0, 1);
    cumlp_optimizer_update_d(CUMLP_OPT_SGD, &q, &w, 2.0, &s[0], &s[1], &s[2]);
    CHECK_NEAR(w, 1.0 - 0.1 * (2.0 + 0.01 * 1.0), 1e-15);
    CHECK(s[0] == 0.5); /* SGD keeps no state */
    w = 1.0;
    q = params(0.1, 0.9, 0, 0, 0, 0, 1);
    cumlp_optimizer_update_d(CUMLP_OPT_MOMENTUM, &q, &w, 2.0, &s[0], &s[1], &s[2]);
    CHECK_NEAR(s[0], 0.9 * 0.5 - 0.1 * 2.0, 1e-15);
    CHECK_NEAR(w, 1.0 + 0.25, 1e-15);
    w = 1.0;
    s[0] = 0.5;
    cumlp_optimizer_update_d(CUMLP_OPT_NESTEROV, &q, &w, 2.0, &s[0], &s[1], &s[2]);
    CHECK_NEAR(s[0], 0.25, 1e-15);
    CHECK_NEAR(w, 1.0 + 0.9 * 0.25 - 0.1 * 2.0, 1e-15);
    w = 1.0;
    s[0] = 0;
    /* Adam's first step moves every weight by about lr, whatever the gradient's size. */
    q = params(0.01, 0, 0, 0.9, 0.999, 1e-8, 1);
    cumlp_optimizer_update_d(CUMLP_OPT_ADAM, &q, &w, 123.0, &s[0], &s[1], &s[2]);
    CHECK_NEAR(w, 1.0 - 0.01, 1e-9);
    CHECK_NEAR(s[0], 0.1 * 123.0, 1e-12);
    CHECK_NEAR(s[1], 0.001 * 123.0 * 123.0, 1e-9);
    /* In fp32 the second moment's factor is 1 - beta2 rounded once, not 1.0f - 0.999f. */
    float wf = 1.0f, sf[CUMLP_OPTIMIZER_MAX_STATES] = {0, 0, 0};
    cumlp_update_params_f qf = {.learning_rate = 0.01f,
                                .beta1 = 0.9f,
                                .one_minus_beta1 = 0.1f,
                                .beta2 = 0.999f,
                                .one_minus_beta2 = 0.001f,
                                .epsilon = 1e-8f,
                                .bias_correction1 = 0.1f,
                                .bias_correction2 = 0.001f,
                                .grad_scale = 1.0f,
                                .clip_value = INFINITY};
    cumlp_optimizer_update_f(CUMLP_OPT_ADAM, &qf, &wf, 3.0f, &sf[0], &sf[1], &sf[2]);
    CHECK_NEAR(sf[1], 0.001 * 9.0, 1e-9);
}

/* The rules added after Adam, one or two steps by hand from their formulas in cumlp.h. */
static void test_more_optimizer_rules(void) {
    const double g = -3.0, eps = 1e-8;
    double w = 2.0, s[CUMLP_OPTIMIZER_MAX_STATES] = {0, 0, 0};
    /* AdamW: the decay multiplies w, and the gradient carries none of it. */
    cumlp_update_params_d q = params(0.01, 0, 0, 0.9, 0.999, eps, 1);
    q.decay_factor = 1 - 0.01 * 0.5;
    cumlp_optimizer_update_d(CUMLP_OPT_ADAMW, &q, &w, g, &s[0], &s[1], &s[2]);
    CHECK_NEAR(w, 2.0 * (1 - 0.005) + 0.01 * 3.0 / (3.0 + eps), 1e-15);
    /* AdaMax: u = max(b2 u, |g| + eps); the step is lr / (1 - b1^t) m / u. */
    w = 2.0;
    s[0] = s[1] = 0;
    q = params(0.002, 0, 0, 0.9, 0.999, eps, 1);
    cumlp_optimizer_update_d(CUMLP_OPT_ADAMAX, &q, &w, g, &s[0], &s[1], &s[2]);
    CHECK_NEAR(s[1], 3.0 + eps, 1e-15);
    CHECK_NEAR(w, 2.0 + 0.002 / 0.1 * (0.3 / (3.0 + eps)), 1e-15);
    cumlp_optimizer_update_d(CUMLP_OPT_ADAMAX, &q, &w, 0.5, &s[0], &s[1],
                             &s[2]); /* u keeps 0.999 (3 + eps) */
    CHECK_NEAR(s[1], 0.999 * (3.0 + eps), 1e-15);
    /* NAdam: the gradient and the moment with the coefficients the host gives. */
    w = 2.0;
    s[0] = s[1] = 0;
    q = params(0.002, 0, 0, 0.9, 0.999, eps, 1);
    q.nadam_grad_coef = 0.25;
    q.nadam_avg_coef = 0.125;
    cumlp_optimizer_update_d(CUMLP_OPT_NADAM, &q, &w, g, &s[0], &s[1], &s[2]);
    double d = sqrt(0.001 * 9.0 / 0.001) + eps;
    CHECK_NEAR(w, 2.0 - 0.25 * g / d - 0.125 * (0.1 * g) / d, 1e-15);
    /* RMSprop, plain: lr g / (sqrt((1 - alpha) g^2) + eps). */
    w = 2.0;
    s[0] = s[1] = s[2] = 0;
    q = params(0.01, 0, 0, 0, 0.99, eps, 1);
    cumlp_optimizer_update_d(CUMLP_OPT_RMSPROP, &q, &w, g, &s[0], &s[1], &s[2]);
    CHECK_NEAR(w, 2.0 - 0.01 * g / (sqrt(0.01 * 9.0) + eps), 1e-15);
    CHECK_NEAR(s[0], 0.01 * 9.0, 1e-15); /* s[1], s[2] stand for arenas it does not keep */
    /* centered, with momentum: the variance alpha (1 - alpha) g^2, the buffer g / d. */
    w = 2.0;
    s[0] = s[1] = s[2] = 0;
    q = params(0.01, 0.5, 0, 0, 0.99, eps, 1);
    q.centered = 1;
    cumlp_optimizer_update_d(CUMLP_OPT_RMSPROP, &q, &w, g, &s[0], &s[1], &s[2]);
    d = sqrt(0.99 * 0.01 * 9.0) + eps;
    CHECK_NEAR(s[2], 0.01 * g, 1e-15);
    CHECK_NEAR(s[1], g / d, 1e-12);
    CHECK_NEAR(w, 2.0 - 0.01 * g / d, 1e-13);
    /* Adagrad from an initial accumulator of 0.5. */
    w = 2.0;
    s[0] = 0.5;
    q = params(0.1, 0, 0, 0, 0, 1e-10, 1);
    cumlp_optimizer_update_d(CUMLP_OPT_ADAGRAD, &q, &w, g, &s[0], &s[1], &s[2]);
    CHECK_NEAR(s[0], 9.5, 1e-15);
    CHECK_NEAR(w, 2.0 - 0.1 * g / (sqrt(9.5) + 1e-10), 1e-15);
    /* Adadelta: the first update is sqrt(eps) / sqrt((1 - rho) g^2 + eps) g. */
    w = 2.0;
    s[0] = s[1] = 0;
    q = params(1.0, 0, 0, 0, 0.9, 1e-6, 1);
    cumlp_optimizer_update_d(CUMLP_OPT_ADADELTA, &q, &w, g, &s[0], &s[1], &s[2]);
    double delta = sqrt(1e-6) / sqrt(0.1 * 9.0 + 1e-6) * g;
    CHECK_NEAR(w, 2.0 - delta, 1e-15);
    CHECK_NEAR(s[1], 0.1 * delta * delta, 1e-18);
}

/* Mean and standard deviation of one layer's initial weights for each scheme. */
static void test_initialization(void) {
    cumlp_context *ctx = test_context_or_skip(CUMLP_BACKEND_REFERENCE);
    const int64_t widths[] = {200, 300, 10};
    const int acts[] = {CUMLP_ACT_RELU, CUMLP_ACT_IDENTITY};
    const int inits[] = {CUMLP_INIT_NORMAL,         CUMLP_INIT_UNIFORM,   CUMLP_INIT_XAVIER_NORMAL,
                         CUMLP_INIT_XAVIER_UNIFORM, CUMLP_INIT_HE_NORMAL, CUMLP_INIT_HE_UNIFORM};
    const double fan_in = 200, fan_out = 300, scale = 0.5;
    const double expected_std[] = {scale,
                                   scale / sqrt(3.0),
                                   scale * sqrt(2 / (fan_in + fan_out)),
                                   scale * sqrt(6 / (fan_in + fan_out)) / sqrt(3.0),
                                   scale * sqrt(2 / fan_in),
                                   scale * sqrt(6 / fan_in) / sqrt(3.0)};
    size_t nw = 200 * 300;
    float *w = test_alloc_floats(nw);
    float b[300];
    for (int i = 0; i < 6; i++) {
        cumlp_network_options o;
        cumlp_network_defaults(&o);
        o.init = inits[i];
        o.init_scale = scale;
        o.bias_init = i % 2 ? CUMLP_BIAS_DRAWN : CUMLP_BIAS_ZERO;
        cumlp_network *net = NULL;
        CHECK_OK(cumlp_network_create(ctx, 2, widths, acts, &o, &net));
        CHECK_OK(cumlp_network_get_layer(net, 0, w, b));
        double sum = 0, sq = 0, max_abs = 0;
        for (size_t k = 0; k < nw; k++) {
            sum += w[k];
            sq += (double)w[k] * w[k];
            max_abs = fmax(max_abs, fabs(w[k]));
        }
        double mean = sum / nw, sd = sqrt(sq / nw - mean * mean);
        CHECK_MSG(fabs(mean) < 0.02 * expected_std[i], "init %d mean %g", i, mean);
        CHECK_MSG(fabs(sd / expected_std[i] - 1) < 0.02, "init %d std %g, expected %g", i, sd,
                  expected_std[i]);
        if (inits[i] % 2 == 1) /* uniform schemes stay inside [-a, a] */
            CHECK(max_abs <= expected_std[i] * sqrt(3.0) * (1 + 1e-6));
        int bias_nonzero = 0;
        for (int k = 0; k < 300; k++)
            bias_nonzero += b[k] != 0;
        CHECK(o.bias_init == CUMLP_BIAS_DRAWN ? bias_nonzero > 290 : bias_nonzero == 0);
        cumlp_network_destroy(net);
    }
    free(w);
    cumlp_context_destroy(ctx);
}

int main(void) {
    RUN(test_philox_known_answers);
    RUN(test_box_muller_known_values);
    RUN(test_normal_stream);
    RUN(test_activation_values);
    RUN(test_derivatives);
    RUN(test_optimizer_rules);
    RUN(test_more_optimizer_rules);
    RUN(test_initialization);
    return harness_finish();
}
